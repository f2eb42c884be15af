//! Reply amplification: one small request whose reply is far larger than anything stored (the
//! same big key named 20,000 times, a transaction of thousands of reads, a huge SCAN COUNT).
//! The server must bound the reply while the command runs: RSS stays under the memory limit
//! plus the output limit, the attacking connection is closed (or, for pipelines of separate
//! requests, paused until it reads), every other client is served and nothing stored is lost.
//! Each attack is bounded in time; none sends traffic beyond loopback.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{incompressible, peak_rss_bytes, rss_bytes, TestServer};

/// The big value: 500 KB that compression cannot shrink.
const VALUE_LEN: usize = 500_000;
/// Times the attack names the big key: a 10 GB reply.
const REPEATS: usize = 20_000;
/// The server's default output limit (`max_output_buffer`).
const OUTPUT_LIMIT: u64 = 64 << 20;

/// A server with a 64 MB store holding `big` (memcached side) and `bighash`/`zbig` (RESP).
fn server_with_big_value() -> TestServer {
    let server = TestServer::start_with_resp(&["-m", "64", "-t", "2"]);
    let value = incompressible(VALUE_LEN, 7);
    let mut c = server.connect();
    let mut request = format!("set big 0 0 {VALUE_LEN}\r\n").into_bytes();
    request.extend_from_slice(&value);
    request.extend_from_slice(b"\r\n");
    c.roundtrip(&request, b"STORED\r\n");
    let mut r = server.redis();
    let _: () = redis::cmd("HSET")
        .arg("bighash")
        .arg("f")
        .arg(&value)
        .query(&mut r)
        .unwrap();
    server
}

/// Sends `attack` on a fresh connection that never reads, and watches the server's RSS until
/// the server has dropped the connection and a second more, or for 20 s. Returns the highest
/// RSS seen above the baseline and whether the server closed the attacking connection.
fn attack(server: &TestServer, connect_to: std::net::SocketAddr, attack: &[u8]) -> (u64, bool) {
    let pid = server.child.as_ref().unwrap().id();
    let mut watcher = server.connect();
    let baseline = rss_bytes(pid);
    let mut stream = TcpStream::connect(connect_to).unwrap();
    // The server's connection table names the attacker by its address (`stats conns`): other
    // connections that open or close meanwhile cannot be mistaken for it.
    let attacker = format!("tcp:{}", stream.local_addr().unwrap());
    let is_listed = |watcher: &mut common::Conn| {
        watcher
            .stats("conns")
            .iter()
            .any(|(name, value)| name.ends_with(":addr") && *value == attacker)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_listed(&mut watcher) {
        assert!(
            Instant::now() < deadline,
            "the attacking connection never showed up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stream.write_all(attack).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut peak = baseline;
    let mut closed_at: Option<Instant> = None;
    while Instant::now() < deadline {
        peak = peak.max(rss_bytes(pid));
        if peak - baseline > 2 * GROWTH_BOUND {
            break; // already failed: do not let the server take the machine's memory
        }
        if closed_at.is_none() && !is_listed(&mut watcher) {
            closed_at = Some(Instant::now());
        }
        // After the close, keep watching a little: memory must not grow after it either.
        // A connection that stays open is watched for 4 s.
        match closed_at {
            Some(at) if at.elapsed() > Duration::from_secs(1) => break,
            None if deadline - Instant::now() < Duration::from_secs(16) => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stream);
    (peak.saturating_sub(baseline), closed_at.is_some())
}

/// The server still serves others, the stored items are whole, and the count of connections
/// closed over their output limit is `closed` (RESP INFO).
fn assert_still_serving(server: &TestServer) {
    let mut c = server.connect();
    c.send(b"get big\r\n");
    let reply = c.read_until(b"END\r\n");
    assert_eq!(
        reply.len(),
        b"VALUE big 0 500000\r\n".len() + VALUE_LEN + 2 + 5
    );
    assert_eq!(
        &reply[b"VALUE big 0 500000\r\n".len()..][..VALUE_LEN],
        &incompressible(VALUE_LEN, 7)[..]
    );
    let mut r = server.redis();
    let field: Vec<u8> = redis::cmd("HGET")
        .arg("bighash")
        .arg("f")
        .query(&mut r)
        .unwrap();
    assert_eq!(field.len(), VALUE_LEN);
}

fn output_limit_disconnections(server: &TestServer) -> u64 {
    let mut r = server.redis();
    let info: String = redis::cmd("INFO").arg("stats").query(&mut r).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("client_output_buffer_limit_disconnections:"))
        .expect("INFO stats has client_output_buffer_limit_disconnections")
        .trim()
        .parse()
        .unwrap()
}

/// The bound on the server's growth during an attack: the output limit, one value past it,
/// the request, and allocator slack.
const GROWTH_BOUND: u64 = OUTPUT_LIMIT + 2 * VALUE_LEN as u64 + (48 << 20);

#[test]
fn issue_19_a_multiget_of_one_big_key_repeated_is_cut_off_at_the_output_limit() {
    let server = server_with_big_value();
    // memcached takes long lines for get and gets only; gat and gats lines end at 2048 bytes
    // (longer ones close the connection, there as here), which still names the key 500 times.
    for (verb, repeats) in [
        ("get", REPEATS),
        ("gets", REPEATS),
        ("gat 0", 500),
        ("gats 0", 500),
    ] {
        let mut line = verb.as_bytes().to_vec();
        for _ in 0..repeats {
            line.extend_from_slice(b" big");
        }
        line.extend_from_slice(b"\r\n");
        let (growth, closed) = attack(&server, server.addr, &line);
        assert!(
            closed,
            "{verb}: the connection over its output limit is closed"
        );
        assert!(
            growth < GROWTH_BOUND,
            "{verb}: RSS grew {growth} bytes, over {GROWTH_BOUND}"
        );
        assert_still_serving(&server);
    }
    assert_eq!(output_limit_disconnections(&server), 4);
}

#[test]
fn issue_19_resp_mget_hmget_and_exec_of_a_big_value_are_cut_off() {
    let server = server_with_big_value();
    let resp = server.resp_addr.unwrap();
    let multibulk = |args: &[&[u8]]| {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    };
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(std::iter::repeat_n(&b"big"[..], REPEATS));
    let mut hmget: Vec<&[u8]> = vec![b"HMGET", b"bighash"];
    hmget.extend(std::iter::repeat_n(&b"f"[..], REPEATS));
    // A transaction of 2,000 reads of the big key, then a write: past the output limit the
    // connection closes, but the transaction still runs whole.
    let mut exec = multibulk(&[b"MULTI"]);
    for _ in 0..2_000 {
        exec.extend_from_slice(&multibulk(&[b"GET", b"big"]));
    }
    exec.extend_from_slice(&multibulk(&[b"SET", b"after-exec", b"done"]));
    exec.extend_from_slice(&multibulk(&[b"EXEC"]));
    for (name, request) in [
        ("MGET", multibulk(&mget)),
        ("HMGET", multibulk(&hmget)),
        ("EXEC", exec),
    ] {
        let (growth, closed) = attack(&server, resp, &request);
        assert!(
            closed,
            "{name}: the connection over its output limit is closed"
        );
        assert!(
            growth < GROWTH_BOUND,
            "{name}: RSS grew {growth} bytes, over {GROWTH_BOUND}"
        );
        assert_still_serving(&server);
    }
    let mut r = server.redis();
    let after: Option<String> = redis::cmd("GET").arg("after-exec").query(&mut r).unwrap();
    assert_eq!(after.as_deref(), Some("done"), "the whole transaction ran");
    assert_eq!(output_limit_disconnections(&server), 3);
}

#[test]
fn issue_19_pipelines_of_separate_reads_wait_for_the_reader_with_bounded_memory() {
    // Meta gets and binary GetKQs are separate requests: the server stops parsing while the
    // client does not read, so memory stays bounded and the connection stays open.
    let server = server_with_big_value();
    let mut meta = Vec::new();
    for _ in 0..REPEATS {
        meta.extend_from_slice(b"mg big v q\r\n");
    }
    meta.extend_from_slice(b"mn\r\n");
    let mut binary = Vec::new();
    for _ in 0..REPEATS {
        // GetKQ (0x0d), key "big": 24-byte header + key.
        let mut header = [0u8; 24];
        header[0] = 0x80;
        header[1] = 0x0d;
        header[2..4].copy_from_slice(&3u16.to_be_bytes());
        header[8..12].copy_from_slice(&3u32.to_be_bytes());
        binary.extend_from_slice(&header);
        binary.extend_from_slice(b"big");
    }
    for (name, request) in [("meta", meta), ("binary", binary)] {
        let (growth, closed) = attack(&server, server.addr, &request);
        assert!(
            !closed,
            "{name}: a pipeline that waits for its reader stays open"
        );
        assert!(
            growth < GROWTH_BOUND,
            "{name}: RSS grew {growth} bytes, over {GROWTH_BOUND}"
        );
        assert_still_serving(&server);
    }
}

/// A server whose output limit is 1 MiB, with `n` keys, a hash and a sorted set of `n`
/// elements of 1 KB: every whole-keyspace or whole-object reply passes the limit.
fn server_with_small_output_limit(n: usize) -> (TestServer, tempfile_path::TempConfig) {
    let config = tempfile_path::TempConfig::new("[server]\nmax_output_buffer = \"1MiB\"\n");
    let server = TestServer::start_with_resp(&["-m", "256", "--config", config.path()]);
    let mut r = server.redis();
    let filler = vec![b'x'; 1000];
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SET")
            .arg(format!("key:{i:0>1000}"))
            .arg(&filler)
            .ignore();
        pipe.cmd("HSET")
            .arg("h")
            .arg(format!("f{i}"))
            .arg(&filler)
            .ignore();
        pipe.cmd("ZADD")
            .arg("z")
            .arg(i)
            .arg(format!("{i:0>1000}"))
            .ignore();
    }
    let _: () = pipe.query(&mut r).unwrap();
    (server, config)
}

#[test]
fn issue_19_whole_object_and_keyspace_replies_stop_at_the_output_limit() {
    let (server, _config) = server_with_small_output_limit(3_000);
    let mut expected_closes = 0;
    for args in [
        vec!["HGETALL", "h"],
        vec!["HVALS", "h"],
        vec!["HSCAN", "h", "0", "COUNT", "100000"],
        vec!["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        vec!["ZSCAN", "z", "0", "COUNT", "100000"],
        vec!["KEYS", "*"],
        vec!["SCAN", "0", "COUNT", "1000000"],
        vec!["ZUNION", "3", "z", "z", "z"],
    ] {
        let mut c = TcpStream::connect(server.resp_addr.unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in &args {
            request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        c.write_all(&request).unwrap();
        let mut conn = common::Conn { stream: c };
        assert!(conn.is_closed(), "{args:?}: closed over the output limit");
        expected_closes += 1;
        assert_eq!(
            output_limit_disconnections(&server),
            expected_closes,
            "{args:?}"
        );
    }
    // Replies under the limit still come whole, and the data is all there.
    let mut r = server.redis();
    let keys: Vec<String> = redis::cmd("KEYS").arg("key:*99").query(&mut r).unwrap();
    assert_eq!(keys.len(), 30);
    let (cursor, page): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(10)
        .query(&mut r)
        .unwrap();
    assert!(cursor != 0 && !page.is_empty());
    let len: usize = redis::cmd("HLEN").arg("h").query(&mut r).unwrap();
    assert_eq!(len, 3_000);
}

/// A config file that lives as long as the test.
mod tempfile_path {
    pub struct TempConfig(std::path::PathBuf);

    impl TempConfig {
        pub fn new(text: &str) -> TempConfig {
            let path = std::env::temp_dir().join(format!(
                "ferrocache-amplification-{}-{:?}.toml",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&path, text).unwrap();
            TempConfig(path)
        }

        pub fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempConfig {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn issue_19_a_message_past_the_subscribers_limit_is_not_copied_for_each_of_them() {
    // 20 subscribers that never read, one PUBLISH of 40 MB: past the pub/sub hard limit
    // (32 MiB), so every subscriber is cut off, and none gets a copy on the way.
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let pid = server.child.as_ref().unwrap().id();
    let mut subscribers = Vec::new();
    for _ in 0..20 {
        let mut s = server.connect_resp();
        s.send(b"SUBSCRIBE news\r\n");
        s.read_until(b":1\r\n");
        subscribers.push(s);
    }
    let before = peak_rss_bytes(pid);
    let message = vec![b'm'; 40 << 20];
    let mut r = server.redis();
    let receivers: usize = redis::cmd("PUBLISH")
        .arg("news")
        .arg(&message)
        .query(&mut r)
        .unwrap();
    assert_eq!(receivers, 20);
    for s in subscribers.iter_mut() {
        assert!(
            s.is_closed(),
            "a subscriber past its hard limit is disconnected"
        );
    }
    // The request and the one encoded frame (shared by all subscribers) cost a few copies of
    // the message; a copy per subscriber would be 800 MB.
    let growth = peak_rss_bytes(pid).saturating_sub(before);
    assert!(growth < 300 << 20, "peak RSS grew {growth} bytes");
    let numsub: (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .query(&mut r)
        .unwrap();
    assert_eq!(numsub.1, 0);
}
