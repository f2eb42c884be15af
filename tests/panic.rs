//! A panic while serving a request is contained: only its connection closes, with the
//! cleanup of any close, the panic is counted, and the server serves on. A thread that dies
//! anyway makes the process exit non-zero.
//!
//! The panics are forced with `FERROCACHE-TEST-PANIC`, a command compiled into debug builds
//! only and enabled by `FERROCACHE_TEST_HOOKS` in the server's environment (see
//! `src/command/resp/table.rs`). A release build has no such command, hence no such tests.
#![cfg(debug_assertions)]

mod common;

use std::time::{Duration, Instant};

use common::{wait_exit, Conn, TestServer};

/// A server with the test hooks enabled, two workers and a RESP port.
fn start() -> TestServer {
    // Each test file is its own process; every test here wants the hooks.
    std::env::set_var("FERROCACHE_TEST_HOOKS", "1");
    TestServer::start_with_resp(&["-t", "2"])
}

/// A RESP command as a multibulk request.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// Opens `n` RESP connections, one after another, each answering a PING before the next is
/// opened, so the acceptor deals them to the workers in turn.
fn open_resp(server: &TestServer, n: usize) -> Vec<Conn> {
    (0..n)
        .map(|_| {
            let mut conn = server.connect_resp();
            conn.roundtrip(&resp(&["PING"]), b"+PONG\r\n");
            conn
        })
        .collect()
}

/// Asserts that `check` holds within five seconds (a closed connection's cleanup happens on
/// its worker, after the client already sees the close).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "never true: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn numsub(redis: &mut redis::Connection, channel: &str) -> i64 {
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(redis)
        .unwrap();
    count
}

fn client_list(redis: &mut redis::Connection) -> String {
    redis::cmd("CLIENT").arg("LIST").query(redis).unwrap()
}

fn info_panics(redis: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(redis).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("worker_panics:"))
        .expect("INFO stats has worker_panics")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_panicking_request_closes_only_its_connection() {
    let server = start();
    let mut redis = server.redis();
    let mut memcache = server.connect();
    memcache.roundtrip(b"set kept 0 0 2\r\nok\r\n", b"STORED\r\n");
    // Six connections over two workers: the victim's worker serves three of them.
    let mut conns = open_resp(&server, 6);
    conns[1].roundtrip(&resp(&["SET", "resp-kept", "yes"]), b"+OK\r\n");
    let victim = &mut conns[0];
    victim.send(&resp(&["HELLO", "3", "SETNAME", "victim"]));
    victim.read_until(b"modules\r\n*0\r\n");
    victim.roundtrip(
        &resp(&["SUBSCRIBE", "victim-channel"]),
        b">3\r\n$9\r\nsubscribe\r\n$14\r\nvictim-channel\r\n:1\r\n",
    );
    assert!(client_list(&mut redis).contains("name=victim"));
    assert_eq!(numsub(&mut redis, "victim-channel"), 1);
    let connections = memcache.stat("curr_connections");
    assert_eq!(memcache.stat("worker_panics"), 0);

    victim.send(&resp(&["FERROCACHE-TEST-PANIC", "TURN"]));
    assert!(victim.is_closed(), "the panicking connection stays open");

    // Its cleanup ran: counted out, gone from CLIENT LIST, unsubscribed.
    eventually("curr_connections drops by one", || {
        memcache.stat("curr_connections") == connections - 1
    });
    assert!(!client_list(&mut redis).contains("name=victim"));
    assert_eq!(numsub(&mut redis, "victim-channel"), 0);
    assert_eq!(memcache.stat("worker_panics"), 1);
    assert_eq!(info_panics(&mut redis), 1);
    // Everyone else, on either worker, is served, and the data is all there.
    for conn in &mut conns[1..] {
        conn.roundtrip(&resp(&["GET", "resp-kept"]), b"$3\r\nyes\r\n");
        conn.roundtrip(&resp(&["GET", "kept"]), b"$2\r\nok\r\n");
    }
    memcache.roundtrip(b"get kept\r\n", b"VALUE kept 0 2\r\nok\r\nEND\r\n");

    // A panic with a store shard locked, after growing a hash in place: the shard is not
    // left locked, the worker gates neither (MSET takes them all), and the heap is charged
    // for the growth, so deleting the hash leaves the count at zero, not wrapped around.
    let mut victim = server.connect_resp();
    victim.send(&resp(&["FERROCACHE-TEST-PANIC", "STORE", "grown"]));
    assert!(victim.is_closed(), "the panicking connection stays open");
    conns[1].roundtrip(&resp(&["HLEN", "grown"]), b":1\r\n");
    conns[2].roundtrip(&resp(&["MSET", "a", "1", "b", "2"]), b"+OK\r\n");
    conns[3].roundtrip(&resp(&["DEL", "grown"]), b":1\r\n");
    assert_eq!(memcache.stat("heap_bytes"), 0);
    assert_eq!(memcache.stat("worker_panics"), 2);
    assert_eq!(info_panics(&mut redis), 2);

    // New connections still land on working workers.
    for mut conn in open_resp(&server, 6) {
        conn.roundtrip(&resp(&["GET", "a"]), b"$1\r\n1\r\n");
    }
    for _ in 0..4 {
        server
            .connect()
            .roundtrip(b"get kept\r\n", b"VALUE kept 0 2\r\nok\r\nEND\r\n");
    }
}

#[test]
fn a_worker_dying_outside_a_turn_ends_the_process_non_zero() {
    let mut server = start();
    let mut conn = server.connect_resp();
    conn.roundtrip(&resp(&["FERROCACHE-TEST-PANIC", "THREAD"]), b"+OK\r\n");
    let status = wait_exit(server.child.as_mut().unwrap(), Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{status:?}");
}
