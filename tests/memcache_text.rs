//! The memcached text protocol end to end, on the real binary: exact bytes over raw sockets
//! and the `memcache` client crate.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;

#[test]
fn storage_commands_answer_with_memcached_bytes() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"set foo 5 0 3\r\nbar\r\n", b"STORED\r\n");
    c.roundtrip(b"get foo\r\n", b"VALUE foo 5 3\r\nbar\r\nEND\r\n");
    c.roundtrip(b"add foo 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"replace nope 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"append foo 0 0 2\r\n!!\r\n", b"STORED\r\n");
    c.roundtrip(b"prepend foo 0 0 2\r\n<<\r\n", b"STORED\r\n");
    c.roundtrip(b"get foo nope\r\n", b"VALUE foo 5 7\r\n<<bar!!\r\nEND\r\n");
    c.roundtrip(b"delete foo\r\n", b"DELETED\r\n");
    c.roundtrip(b"delete foo\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"set n 0 0 2\r\n10\r\n", b"STORED\r\n");
    c.roundtrip(b"decr n 1\r\n", b"9\r\n");
    c.roundtrip(b"get n\r\n", b"VALUE n 0 2\r\n9 \r\nEND\r\n");
    c.roundtrip(b"decr n 100\r\n", b"0\r\n");
    c.roundtrip(b"set n 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n");
    c.roundtrip(b"incr n 2\r\n", b"1\r\n");
    c.roundtrip(b"set s 0 0 3\r\nabc\r\n", b"STORED\r\n");
    c.roundtrip(
        b"incr s 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    c.roundtrip(b"incr nope 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"touch s 100\r\n", b"TOUCHED\r\n");
    c.roundtrip(b"touch nope 100\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(
        b"set q 0 0 1 noreply\r\nq\r\nget q\r\n",
        b"VALUE q 0 1\r\nq\r\nEND\r\n",
    );
    c.roundtrip(b"bogus\r\n", b"ERROR\r\n");
    c.roundtrip(b"version\r\n", b"VERSION 1.6.21\r\n");
    c.roundtrip(b"verbosity 1\r\n", b"OK\r\n");
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    c.roundtrip(b"get s\r\n", b"END\r\n");
}

#[test]
fn cas_conflicts_across_two_connections() {
    let server = TestServer::start(&[]);
    let mut a = server.connect();
    let mut b = server.connect();
    a.roundtrip(b"set k 0 0 1\r\n1\r\n", b"STORED\r\n");
    a.send(b"gets k\r\n");
    let reply = String::from_utf8(a.read_until(b"END\r\n")).unwrap();
    let cas: u64 = reply
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    b.send(b"gets k\r\n");
    let reply_b = String::from_utf8(b.read_until(b"END\r\n")).unwrap();
    assert_eq!(reply, reply_b, "same item, same cas unique");
    b.roundtrip(
        format!("cas k 0 0 1 {cas}\r\n2\r\n").as_bytes(),
        b"STORED\r\n",
    );
    a.roundtrip(
        format!("cas k 0 0 1 {cas}\r\n3\r\n").as_bytes(),
        b"EXISTS\r\n",
    );
    a.roundtrip(b"cas nope 0 0 1 1\r\n3\r\n", b"NOT_FOUND\r\n");
    a.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\n2\r\nEND\r\n");
    assert_eq!(a.stat("cas_hits"), 1);
    assert_eq!(a.stat("cas_badval"), 1);
    assert_eq!(a.stat("cas_misses"), 1);
}

#[test]
fn items_expire() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"set short 0 1 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"set gone 0 -1 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"get gone\r\n", b"END\r\n");
    c.roundtrip(b"get short\r\n", b"VALUE short 0 1\r\nx\r\nEND\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        c.send(b"get short\r\n");
        let reply = c.read_until(b"END\r\n");
        if reply == b"END\r\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "item with a 1 s TTL still there after 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // gat sets a new expiry and returns the value.
    c.roundtrip(b"set g 3 0 1\r\ny\r\n", b"STORED\r\n");
    c.roundtrip(b"gat -1 g\r\n", b"VALUE g 3 1\r\ny\r\nEND\r\n");
    c.roundtrip(b"get g\r\n", b"END\r\n");
}

#[test]
fn small_memory_limit_evicts_instead_of_failing() {
    let server = TestServer::start(&["-m", "2"]);
    let mut c = server.connect();
    let value = common::incompressible(10_000, 7);
    for i in 0..1000 {
        let mut req = format!("set key{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        c.roundtrip(&req, b"STORED\r\n");
    }
    assert!(c.stat("evictions") > 700, "10 MB written into 2 MB");
    assert!(c.stat("bytes") <= 2 * 1024 * 1024);
    c.roundtrip(
        b"get key999\r\n",
        &[
            b"VALUE key999 0 10000\r\n".as_slice(),
            &value,
            b"\r\nEND\r\n",
        ]
        .concat(),
    );
}

#[test]
fn hundred_concurrent_connections() {
    let server = TestServer::start(&[]);
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let mut c = server.connect();
            std::thread::spawn(move || {
                for j in 0..50 {
                    let key = format!("c{i}-{j}");
                    c.roundtrip(
                        format!("set {key} {i} 0 {}\r\n{key}\r\n", key.len()).as_bytes(),
                        b"STORED\r\n",
                    );
                    c.roundtrip(
                        format!("get {key}\r\n").as_bytes(),
                        format!("VALUE {key} {i} {}\r\n{key}\r\nEND\r\n", key.len()).as_bytes(),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.connect().stat("curr_items"), 5000);
}

#[test]
fn deep_pipeline_answers_in_order() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10_000 {
        request.extend_from_slice(
            format!(
                "set p{i} 0 0 {}\r\n{i}\r\nget p{i}\r\n",
                i.to_string().len()
            )
            .as_bytes(),
        );
        expected.extend_from_slice(
            format!(
                "STORED\r\nVALUE p{i} 0 {}\r\n{i}\r\nEND\r\n",
                i.to_string().len()
            )
            .as_bytes(),
        );
    }
    // Write from another thread: the server must keep answering while we are still sending.
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&request).unwrap();
    });
    let got = c.read_exact(expected.len());
    sender.join().unwrap();
    assert!(got == expected, "pipelined replies differ");
}

#[test]
fn request_sent_one_byte_at_a_time() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    for byte in b"set slow 7 0 5\r\nhello\r\nget slow\r\n" {
        c.send(&[*byte]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        c.read_until(b"END\r\n"),
        b"STORED\r\nVALUE slow 7 5\r\nhello\r\nEND\r\n"
    );
}

#[test]
fn one_megabyte_value_stored_and_one_byte_more_rejected() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    let limit = 1024 * 1024;
    let value = vec![b'x'; limit];
    let mut req = format!("set big 0 0 {limit}\r\n").into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    c.send(b"get big\r\n");
    let reply = c.read_until(b"END\r\n");
    assert_eq!(
        reply.len(),
        format!("VALUE big 0 {limit}\r\n").len() + limit + 7
    );

    let mut req = format!("set big 0 0 {}\r\n", limit + 1).into_bytes();
    req.extend_from_slice(&vec![b'y'; limit + 1]);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"SERVER_ERROR object too large for cache\r\n");
    // The connection is still usable, and the rejected set removed the old value as memcached does.
    c.roundtrip(b"get big\r\n", b"END\r\n");
    c.roundtrip(b"set after 0 0 2\r\nok\r\n", b"STORED\r\n");
}

#[test]
fn garbage_then_a_fresh_connection_still_reads_earlier_data() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"set keep 1 0 4\r\nsafe\r\n", b"STORED\r\n");
    let mut garbage = c.stream.try_clone().unwrap();
    {
        use std::io::Write;
        let junk: Vec<u8> = (0..5000u32)
            .map(|i| (i * 7 % 251) as u8)
            .filter(|b| *b != b'\n')
            .collect();
        let _ = garbage.write_all(&junk);
    }
    // A line over 2048 bytes without a newline closes the connection, as memcached does.
    assert!(c.is_closed());
    let mut fresh = server.connect();
    fresh.roundtrip(b"get keep\r\n", b"VALUE keep 1 4\r\nsafe\r\nEND\r\n");
}

#[test]
fn memcache_crate_client_works_unchanged() {
    let server = TestServer::start(&[]);
    let client = server.client();
    client.set("greeting", "hello", 0).unwrap();
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    let _ = client.add("greeting", "x", 0);
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some("hello"),
        "add must not overwrite"
    );
    client.set("counter", 10u64, 0).unwrap();
    assert_eq!(client.increment("counter", 5).unwrap(), 15);
    assert_eq!(client.decrement("counter", 20).unwrap(), 0);
    assert!(client.touch("greeting", 100).unwrap());
    assert!(!client.touch("missing", 100).unwrap());
    client.append("greeting", " world").unwrap();
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some("hello world")
    );
    let many: std::collections::HashMap<String, String> =
        client.gets(&["greeting", "missing"]).unwrap();
    assert_eq!(many.len(), 1);
    assert!(client.delete("greeting").unwrap());
    assert!(!client.delete("greeting").unwrap());
    client.flush().unwrap();
    assert_eq!(client.get::<String>("counter").unwrap(), None);
}

#[test]
fn a_reader_that_lags_gets_every_reply_through_backpressure() {
    // 20 MB of replies against a 1 MiB output limit: only backpressure (the server stops
    // reading requests while its unsent output is over the soft cap) gets them all through.
    // A server that answered everything it had read would pass the limit and close.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small-output.toml");
    std::fs::write(&path, "[server]\nmax_output_buffer = \"1MiB\"\n").unwrap();
    let server = TestServer::start(&["--config", path.to_str().unwrap()]);
    let mut c = server.connect();
    let value = vec![b'z'; 100_000];
    let mut req = b"set big 0 0 100000\r\n".to_vec();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    // 200 gets of 100 KB = 20 MB of replies, requested before reading any of them.
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&b"get big\r\n".repeat(200)).unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    let one = [b"VALUE big 0 100000\r\n".as_slice(), &value, b"\r\nEND\r\n"].concat();
    for i in 0..200 {
        assert!(c.read_exact(one.len()) == one, "reply {i}");
    }
    sender.join().unwrap();
    // The connection is still there, with nothing left over.
    c.roundtrip(b"mn\r\n", b"MN\r\n");
}

#[test]
fn replies_past_the_output_limit_close_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small-output.toml");
    std::fs::write(&path, "[server]\nmax_output_buffer = \"1MiB\"\n").unwrap();
    let server = TestServer::start(&["--config", path.to_str().unwrap()]);
    let mut c = server.connect();
    let mut req = b"set big 0 0 600000\r\n".to_vec();
    req.extend_from_slice(&vec![b'q'; 600_000]);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    // One multiget whose reply (2.4 MB) cannot fit the 1 MiB limit: the server closes rather
    // than buffering it for a client that is not reading.
    c.stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"get big big big big\r\n");
    std::thread::sleep(Duration::from_millis(300));
    assert!(c.is_closed());
    server.connect().roundtrip(b"get nope\r\n", b"END\r\n");
}

#[test]
fn disable_evictions_flag_reports_out_of_memory_instead() {
    let server = TestServer::start(&["-m", "1", "-M"]);
    let mut c = server.connect();
    let value = common::incompressible(10_000, 9);
    let mut stored = 0;
    for i in 0..200 {
        let mut req = format!("set key{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        c.send(&req);
        let reply = c.read_until(b"\r\n");
        if reply == b"STORED\r\n" {
            stored += 1;
        } else {
            assert_eq!(reply, b"SERVER_ERROR out of memory storing object\r\n");
        }
    }
    assert!(stored > 50 && stored < 200, "{stored}");
    assert_eq!(c.stat("evictions"), 0);
    c.roundtrip(
        b"get key0\r\n",
        &[b"VALUE key0 0 10000\r\n".as_slice(), &value, b"\r\nEND\r\n"].concat(),
    );
    assert!(c
        .stats("settings")
        .iter()
        .any(|(k, v)| k == "evictions" && v == "off"));
}
