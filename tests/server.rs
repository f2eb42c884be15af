//! Process-level behaviour of the binary: flags, connection limit, unix socket, shutdown,
//! `stats` groups.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_exit, TestServer};

#[test]
fn sigterm_flushes_and_exits_zero() {
    let mut server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"set a 0 0 1\r\n1\r\n", b"STORED\r\n");
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn shutdown_command_needs_the_flag() {
    let server = TestServer::start(&[]);
    server
        .connect()
        .roundtrip(b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n");

    let mut enabled = TestServer::start(&["-A"]);
    let mut c = enabled.connect();
    c.send(b"shutdown\r\n");
    assert!(c.is_closed());
    let status = wait_exit(enabled.child.as_mut().unwrap(), Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn connections_past_the_limit_are_refused_with_memcached_error() {
    let server = TestServer::start(&["-c", "3"]);
    // The start-up probe's connection closes asynchronously: wait until only ours is counted.
    let mut first = server.connect();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while first.stat("curr_connections") != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "probe connection never closed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut held = vec![first, server.connect(), server.connect()];
    for c in &mut held {
        c.roundtrip(b"version\r\n", b"VERSION 1.6.21\r\n");
    }
    let mut extra = server.connect();
    let mut reply = Vec::new();
    extra.stream.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"SERVER_ERROR Too many open connections\r\n");
    drop(held.pop());
    // Once one closes, a new one gets in (the worker notices the close asynchronously).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = server.connect();
        c.send(b"version\r\n");
        let mut buf = [0u8; 64];
        let n = c.stream.read(&mut buf).unwrap_or(0);
        if buf[..n].starts_with(b"VERSION") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(held[0].stat("rejected_connections") >= 1);
}

#[test]
fn unix_socket_serves_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.sock");
    let server = TestServer::start(&["-s", path.to_str().unwrap(), "-a", "700"]);
    server
        .connect()
        .roundtrip(b"set shared 0 0 2\r\nhi\r\n", b"STORED\r\n");
    let mut unix = std::os::unix::net::UnixStream::connect(&path).unwrap();
    unix.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    unix.write_all(b"get shared\r\n").unwrap();
    let mut buf = vec![0u8; 27];
    unix.read_exact(&mut buf).unwrap();
    assert_eq!(buf, b"VALUE shared 0 2\r\nhi\r\nEND\r\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn bad_flag_exits_non_zero_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .arg("--no-such-flag")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // The README's promise: status 64 (EX_USAGE), not just any failure.
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[store]\nmemory_limt = \"1m\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .args(["--config", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("memory_limt"), "{stderr}");

    // A flag whose value is out of range fails the same way (validation, not parsing).
    let output = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .args(["-m", "0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn help_and_version_exit_zero() {
    for flag in ["-h", "-V"] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(output.status.success(), "{flag}");
        assert!(!output.stdout.is_empty(), "{flag}");
    }
}

#[test]
fn stats_groups_use_memcached_names() {
    let server = TestServer::start(&["-m", "16", "-t", "2"]);
    let mut c = server.connect();
    c.roundtrip(b"set a 0 0 1\r\n1\r\n", b"STORED\r\n");
    c.roundtrip(b"get a b\r\n", b"VALUE a 0 1\r\n1\r\nEND\r\n");
    let general = c.stats("");
    let find = |name: &str| {
        general
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(find("get_hits").as_deref(), Some("1"));
    assert_eq!(find("get_misses").as_deref(), Some("1"));
    assert_eq!(find("cmd_get").as_deref(), Some("2"));
    assert_eq!(find("curr_items").as_deref(), Some("1"));
    assert_eq!(find("limit_maxbytes").as_deref(), Some("16777216"));
    assert_eq!(find("threads").as_deref(), Some("2"));
    // The start-up probe's connection closes asynchronously; only ours remains in the end.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while c.stat("curr_connections") != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "curr_connections never settled at 1"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let settings = c.stats("settings");
    assert!(settings
        .iter()
        .any(|(k, v)| k == "maxbytes" && v == "16777216"));
    assert!(c
        .stats("items")
        .iter()
        .any(|(k, v)| k == "items:1:number" && v == "1"));
    assert!(c.stats("slabs").iter().any(|(k, _)| k == "active_slabs"));
    assert!(c.stats("conns").iter().any(|(k, _)| k.ends_with(":addr")));
    c.roundtrip(b"stats reset\r\n", b"RESET\r\n");
    assert_eq!(c.stat("get_hits"), 0);
    c.roundtrip(b"stats nonsense\r\n", b"ERROR\r\n");
    c.roundtrip(
        b"cache_memlimit 4\r\n",
        b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
    );
    c.roundtrip(b"cache_memlimit 32\r\n", b"OK\r\n");
    assert_eq!(c.stat("limit_maxbytes"), 32 * 1024 * 1024);
    // memcached 1.6 refuses more than 10^9 MB (it assumes bytes were sent) and keeps the
    // old limit; noreply silences its refusals too.
    c.roundtrip(
        b"cache_memlimit 1000000001\r\n",
        b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n",
    );
    c.roundtrip(
        b"cache_memlimit 4294967295\r\n",
        b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n",
    );
    c.roundtrip(b"cache_memlimit 4 noreply\r\nmn\r\n", b"MN\r\n");
    c.roundtrip(b"cache_memlimit 4294967295 noreply\r\nmn\r\n", b"MN\r\n");
    assert_eq!(c.stat("limit_maxbytes"), 32 * 1024 * 1024);
}

#[test]
fn flush_all_can_be_disabled() {
    let server = TestServer::start(&["-F"]);
    server
        .connect()
        .roundtrip(b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n");
}

#[test]
fn idle_connections_are_closed_after_the_timeout_but_blocked_ones_are_not() {
    let server = TestServer::start_with_resp(&["-o", "idle_timeout=1"]);
    let mut idle = server.connect();
    let mut busy = server.connect();
    let mut blocked = server.connect_resp();
    blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$4\r\nlist\r\n$1\r\n0\r\n");
    let mut redis = server.redis();
    let timeout: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("timeout")
        .query(&mut redis)
        .unwrap();
    assert_eq!(timeout, vec!["timeout".to_string(), "1".to_string()]);
    // Keep `busy` and `redis` talking past the timeout; `idle` says nothing.
    for _ in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        busy.roundtrip(b"version\r\n", b"VERSION 1.6.21\r\n");
        let _: String = redis::cmd("PING").query(&mut redis).unwrap();
    }
    assert!(idle.is_closed(), "an idle connection outlived the timeout");
    assert!(busy.stat("idle_kicks") >= 1);
    // The blocked client is still there and gets its element.
    let _: i64 = redis::cmd("RPUSH")
        .arg("list")
        .arg("x")
        .query(&mut redis)
        .unwrap();
    let reply = blocked.read_until(b"x\r\n");
    assert!(
        reply.ends_with(b"$1\r\nx\r\n"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // CONFIG SET timeout 0 turns it off.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg("0")
        .query(&mut redis)
        .unwrap();
    let bad: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("timeout")
        .arg("-1")
        .query(&mut redis);
    assert!(bad.is_err());
}
