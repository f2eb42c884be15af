//! RESP request limits on the real binary: values past memcached's item size (bounded by
//! `proto-max-bulk-len` as in Redis), `client-query-buffer-limit`, `maxmemory-clients`, and
//! their CONFIG SET/GET. Error texts were checked against redis-server 7.0.15 from Debian.

mod common;

use std::time::{Duration, Instant};

use common::{incompressible, TestServer};
use redis::Commands;

fn info_field(r: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(r).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn issue_19_values_past_a_megabyte_round_trip_over_resp() {
    // The memcached item size (-I, 1 MiB) does not bound RESP: a redis-py SET of 1 MB + 17
    // bytes was refused with a protocol error and a reset connection.
    let server = TestServer::start_with_resp(&["-m", "128"]);
    let mut r = server.redis();
    for len in [(1 << 20) + 17, 8 << 20] {
        let value = incompressible(len, len as u64);
        let _: () = r.set("blob", &value).unwrap();
        let back: Vec<u8> = r.get("blob").unwrap();
        assert!(back == value, "{len}-byte value came back whole");
        assert_eq!(r.strlen::<_, usize>("blob").unwrap(), len);
        let appended: usize = r.append("blob", "tail").unwrap();
        assert_eq!(appended, len + 4);
    }
    // memcached reads the same item.
    let mut c = server.connect();
    c.send(b"mg blob s\r\n");
    assert_eq!(
        c.read_until(b"\r\n"),
        format!("HD s{}\r\n", (8 << 20) + 4).into_bytes()
    );
}

#[test]
fn issue_19_proto_max_bulk_len_bounds_an_argument_as_in_redis() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("proto-max-bulk-len")
        .query(&mut r)
        .unwrap();
    assert_eq!(got, ["proto-max-bulk-len", "536870912"]);
    let refused = redis::cmd("CONFIG")
        .arg("SET")
        .arg("proto-max-bulk-len")
        .arg("1000")
        .query::<()>(&mut r)
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("argument must be between 1048576 and 9223372036854775807 inclusive"),
        "{refused}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("proto-max-bulk-len")
        .arg("1mb")
        .query(&mut r)
        .unwrap();
    // A 2 MB argument is now a protocol error that closes the connection.
    let mut raw = server.connect_resp();
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n");
    assert_eq!(
        raw.read_until(b"\r\n"),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(raw.is_closed());
    // 1 MiB exactly still goes.
    let value = vec![b'v'; 1 << 20];
    let _: () = r.set("k", &value).unwrap();
    assert_eq!(r.strlen::<_, usize>("k").unwrap(), 1 << 20);
    // APPEND past the limit gets Redis's error.
    let err = r.append::<_, _, usize>("k", "x").unwrap_err();
    assert!(
        err.to_string()
            .contains("string exceeds maximum allowed size (proto-max-bulk-len)"),
        "{err}"
    );
}

#[test]
fn issue_19_a_request_past_the_query_buffer_limit_closes_its_connection() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-query-buffer-limit")
        .arg("1mb")
        .query(&mut r)
        .unwrap();
    let refused = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-query-buffer-limit")
        .arg("1x")
        .query::<()>(&mut r)
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("argument must be a memory value"),
        "{refused}"
    );
    // A 3 MB value (under proto-max-bulk-len) that cannot fit the 1 MiB query buffer.
    let mut raw = server.connect_resp();
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0;
    while sent < 3_000_000 && Instant::now() < deadline {
        if std::io::Write::write_all(&mut raw.stream, &chunk).is_err() {
            break; // closed under us
        }
        sent += chunk.len();
    }
    assert!(raw.is_closed());
    assert_eq!(
        info_field(&mut r, "stats", "client_query_buffer_limit_disconnections"),
        1
    );
    assert!(!r.exists::<_, bool>("k").unwrap());
}

#[test]
fn issue_19_maxmemory_clients_closes_the_biggest_client() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let mut idle = server.connect_resp();
    idle.roundtrip(b"PING\r\n", b"+PONG\r\n");
    for (value, shown) in [("10%", "10%"), ("5mb", "5242880"), ("2mb", "2097152")] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-clients")
            .arg(value)
            .query(&mut r)
            .unwrap();
        let got: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-clients")
            .query(&mut r)
            .unwrap();
        assert_eq!(got[1], shown);
    }
    let refused = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-clients")
        .arg("101%")
        .query::<()>(&mut r)
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("percentage argument must be less or equal to 100"),
        "{refused}"
    );
    // One client holds a large unfinished request: its buffer passes the 2 MiB total.
    let mut big = server.connect_resp();
    big.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$50000000\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..64 {
        if std::io::Write::write_all(&mut big.stream, &chunk).is_err() {
            break;
        }
    }
    assert!(big.is_closed(), "the biggest client is closed");
    assert_eq!(info_field(&mut r, "stats", "evicted_clients"), 1);
    // The small clients are still served, and the memory of the closed one is given back.
    idle.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(&mut r, "memory", "mem_clients_normal") > 1 << 20 {
        assert!(Instant::now() < deadline, "client memory not given back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue_19_client_list_and_info_show_the_buffers_a_client_holds() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let mut pending = server.connect_resp();
    pending.roundtrip(b"CLIENT SETNAME pending\r\n", b"+OK\r\n");
    pending.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$300000\r\n");
    std::io::Write::write_all(&mut pending.stream, &vec![b'x'; 200_000]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut r).unwrap();
        let line = list
            .lines()
            .find(|l| l.contains(" name=pending "))
            .expect("the pending client is listed")
            .to_string();
        let field = |name: &str| -> usize {
            line.split(' ')
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        if field("qbuf") >= 200_000 {
            assert_eq!(field("qbuf") + field("qbuf-free"), field("rbs"), "{line}");
            assert!(field("tot-mem") >= field("rbs"), "{line}");
            assert!(info_field(&mut r, "memory", "mem_clients_normal") >= field("rbs") as u64);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "qbuf never showed the pending request: {line}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue_19_a_transaction_queue_counts_as_client_memory() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-clients")
        .arg("4mb")
        .query(&mut r)
        .unwrap();
    // MULTI, then commands queued forever: each is small, their queue is not.
    let mut queuer = server.connect_resp();
    queuer.roundtrip(b"MULTI\r\n", b"+OK\r\n");
    let value = "v".repeat(10_000);
    let command = format!(
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{value}\r\n",
        value.len()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closed = false;
    for _ in 0..2_000 {
        if Instant::now() > deadline
            || std::io::Write::write_all(&mut queuer.stream, command.as_bytes()).is_err()
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed || queuer.is_closed(),
        "the queue passed maxmemory-clients"
    );
    assert_eq!(info_field(&mut r, "stats", "evicted_clients"), 1);
    assert!(
        !r.exists::<_, bool>("k").unwrap(),
        "the transaction never ran"
    );
}
