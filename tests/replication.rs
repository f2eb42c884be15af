//! Replication on the real binary, primary and replicas as processes on loopback (issue 22):
//! mixed writes over memcached text, meta and binary and RESP reach every replica identical
//! (a key dump with values, flags, CAS and absolute expiries); a dropped link resumes with
//! `+CONTINUE`; a replica that fell behind the backlog gets a full resync; a promoted replica
//! lets its sibling continue (PSYNC2); replicas refuse writes over every protocol; a flush
//! racing writes, WAIT, min-replicas, chained replicas, a stopped replica's lag, masterauth,
//! and a script's writes and a stream with its consumer group on the replica.
//! Helpers (servers, key dumps, the mixed load, a cuttable relay) live in
//! `replication_support/`.

mod common;
mod replication_support;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Conn, TestServer};
use replication_support::*;

#[test]
fn mixed_writes_over_every_protocol_reach_two_replicas_identical() {
    let ops: usize = std::env::var("FERROCACHE_REPL_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let primary = TestServer::start_with_resp(&[]);
    let port = resp_port(&primary);
    let first = start_replica_of(port, &[]);
    wait_caught_up(&primary, &[&first]);
    // Half the writes before the second replica attaches (it gets them by full sync, taken
    // while the writes go on), half after.
    let second = std::thread::scope(|scope| {
        let handle = scope.spawn(|| mixed_writes(&primary, ops / 2, 7));
        std::thread::sleep(Duration::from_millis(200));
        let second = start_replica_of(port, &[]);
        handle.join().unwrap();
        second
    });
    mixed_writes(&primary, ops / 2, 11);
    wait_caught_up(&primary, &[&first, &second]);
    let expected = dump(&primary);
    assert!(expected.len() > 500, "only {} keys", expected.len());
    assert!(expected
        .values()
        .any(|v| v.starts_with("hash") && v.contains("@[1")));
    assert!(expected
        .values()
        .any(|v| v.starts_with("string") && !v.contains(" f0 ")));
    for replica in [&first, &second] {
        let got = dump(replica);
        let differing: Vec<_> = expected
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(v))
            .take(5)
            .map(|(k, v)| format!("{k}: primary {v:?}, replica {:?}", got.get(k)))
            .collect();
        assert!(differing.is_empty(), "{differing:#?}");
        assert_eq!(got.len(), expected.len());
    }
    assert_eq!(field(&primary, "replication", "connected_slaves"), "2");
    assert_eq!(field(&primary, "stats", "sync_full"), "2");
}

#[test]
fn a_dropped_link_resumes_from_the_backlog_and_a_replica_past_it_resyncs_fully() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("primary.toml");
    std::fs::write(&config, "[replication]\nbacklog_size = \"64KiB\"\n").unwrap();
    let primary = TestServer::start_with_resp(&["--config", config.to_str().unwrap()]);
    let relay = Relay::to(primary.resp_addr.unwrap());
    let replica = start_replica_of(relay.addr.port(), &[]);
    set_many(&primary, 0, 100, 10);
    wait_caught_up(&primary, &[&replica]);
    assert_eq!(field(&primary, "stats", "sync_full"), "1");

    // A short cut: the writes meanwhile fit in the backlog, so the replica continues.
    relay.cut();
    wait_for("the link to go down", Duration::from_secs(10), || {
        field(&replica, "replication", "master_link_status") == "down"
    });
    set_many(&primary, 100, 100, 10);
    relay.restore();
    wait_caught_up(&primary, &[&replica]);
    assert_eq!(field(&primary, "stats", "sync_partial_ok"), "1");
    assert_eq!(field(&primary, "stats", "sync_full"), "1");
    assert_eq!(dump(&replica), dump(&primary));

    // A long cut: 2,000 items of 100 bytes outrun a 64 KiB backlog: a full resync.
    relay.cut();
    wait_for("the link to go down", Duration::from_secs(10), || {
        field(&replica, "replication", "master_link_status") == "down"
    });
    set_many(&primary, 200, 2000, 100);
    relay.restore();
    wait_caught_up(&primary, &[&replica]);
    assert_eq!(field(&primary, "stats", "sync_full"), "2");
    assert_eq!(field(&primary, "stats", "sync_partial_err"), "1");
    assert_eq!(dump(&replica), dump(&primary));
}

#[test]
fn a_promoted_replica_lets_its_sibling_continue() {
    let mut primary = TestServer::start_with_resp(&[]);
    let port = resp_port(&primary);
    let a = start_replica_of(port, &[]);
    let b = start_replica_of(port, &[]);
    set_many(&primary, 0, 300, 20);
    wait_caught_up(&primary, &[&a, &b]);
    let old_id = field(&primary, "replication", "master_replid");
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe {
        libc::kill(primary.child.as_ref().unwrap().id() as i32, libc::SIGKILL);
    }
    let _ = primary.child.as_mut().unwrap().wait();
    let mut con = a.redis();
    let () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut con)
        .unwrap();
    assert_eq!(field(&a, "replication", "role"), "master");
    assert_eq!(field(&a, "replication", "master_replid2"), old_id);
    let mut con_b = b.redis();
    let () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(resp_port(&a))
        .query(&mut con_b)
        .unwrap();
    set_many(&a, 1000, 50, 20);
    wait_caught_up(&a, &[&b]);
    assert_eq!(field(&a, "stats", "sync_partial_ok"), "1");
    assert_eq!(field(&a, "stats", "sync_full"), "0");
    assert_eq!(dump(&b), dump(&a));
    assert_eq!(dump(&b).len(), 350);
}

#[test]
fn a_replica_refuses_writes_over_every_protocol() {
    let primary = TestServer::start_with_resp(&[]);
    let http_port = common::free_port().to_string();
    let replica = start_replica_of(resp_port(&primary), &["--http-port", &http_port]);
    wait_caught_up(&primary, &[&replica]);
    let mut resp = replica.connect_resp();
    resp.roundtrip(
        &resp_command(&[b"SET", b"k", b"v"]),
        b"-READONLY You can't write against a read only replica.\r\n",
    );
    let mut http = Conn {
        stream: TcpStream::connect(format!("127.0.0.1:{http_port}")).unwrap(),
    };
    http.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    http.send(b"PUT /v1/cache/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv");
    let head = http.read_exact(12);
    assert_eq!(head, b"HTTP/1.1 503", "{}", String::from_utf8_lossy(&head));
    resp.roundtrip(&resp_command(&[b"GET", b"k"]), b"$-1\r\n");
    let mut text = replica.connect();
    let refused = b"SERVER_ERROR You can't write against a read only replica.\r\n";
    text.roundtrip(b"set k 0 0 1\r\nv\r\n", refused);
    text.roundtrip(b"delete k noreply\r\n", refused);
    text.roundtrip(b"ms k 1 q\r\nv\r\n", refused);
    text.roundtrip(b"get k\r\n", b"END\r\n");
    let mut binary = replica.connect();
    binary.send(&binary_request(0x01, b"k", &[0; 8], b"v"));
    binary.send(&binary_request(0x0a, b"", b"", b""));
    assert_eq!(read_binary_until_noop(&mut binary), vec![0x0005]);
    // ROLE says so.
    let mut con = replica.redis();
    let role: redis::Value = redis::cmd("ROLE").query(&mut con).unwrap();
    assert!(format!("{role:?}").contains("slave"), "{role:?}");
    // CONFIG SET replica-read-only no lifts it, live.
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("replica-read-only")
        .arg("no")
        .query(&mut con)
        .unwrap();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("replica-read-only")
        .query(&mut con)
        .unwrap();
    assert_eq!(got, ["replica-read-only", "no"]);
    resp.roundtrip(&resp_command(&[b"SET", b"local", b"v"]), b"+OK\r\n");
    text.roundtrip(b"set local2 0 0 1\r\nv\r\n", b"STORED\r\n");
}

#[test]
fn writes_racing_a_flush_reach_the_replica_as_they_stand_on_the_primary() {
    // memcached's flush_all runs beside other workers' writes (no gate excludes them): a
    // write is either flushed or kept, on the replica as on the primary.
    let primary = TestServer::start_with_resp(&["-t", "4"]);
    let replica = start_replica_of(resp_port(&primary), &[]);
    wait_caught_up(&primary, &[&replica]);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for writer in 0..2 {
            let (primary, stop) = (&primary, &stop);
            scope.spawn(move || {
                let mut conn = primary.connect();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut batch = Vec::new();
                    for _ in 0..50 {
                        i += 1;
                        batch.extend_from_slice(
                            format!("set w{writer}:{} 0 0 2 noreply\r\nab\r\n", i % 5000)
                                .as_bytes(),
                        );
                    }
                    batch.extend_from_slice(b"mn\r\n");
                    conn.send(&batch);
                    conn.read_until(b"MN\r\n");
                }
            });
        }
        let mut flusher = primary.connect();
        for _ in 0..40 {
            flusher.roundtrip(b"flush_all\r\n", b"OK\r\n");
            std::thread::sleep(Duration::from_millis(25));
        }
        stop.store(true, Ordering::Relaxed);
    });
    wait_caught_up(&primary, &[&replica]);
    let expected = dump(&primary);
    let got = dump(&replica);
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(5)
        .collect();
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "extra {extra:?}, missing {missing:?}"
    );
    assert_eq!(got, expected);
}

#[test]
fn a_primary_with_min_replicas_to_write_refuses_writes_until_a_replica_acks() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("primary.toml");
    std::fs::write(
        &config,
        "[replication]\nmin_replicas_to_write = 1\nmin_replicas_max_lag_secs = 10\n",
    )
    .unwrap();
    let primary = TestServer::start_with_resp(&["--config", config.to_str().unwrap()]);
    let mut resp = primary.connect_resp();
    resp.roundtrip(
        &resp_command(&[b"SET", b"k", b"v"]),
        b"-NOREPLICAS Not enough good replicas to write.\r\n",
    );
    let mut text = primary.connect();
    text.roundtrip(
        b"set k 0 0 1\r\nv\r\n",
        b"SERVER_ERROR Not enough good replicas to write.\r\n",
    );
    resp.roundtrip(&resp_command(&[b"GET", b"k"]), b"$-1\r\n");
    let replica = start_replica_of(resp_port(&primary), &[]);
    wait_caught_up(&primary, &[&replica]);
    wait_for(
        "the replica to count as good",
        Duration::from_secs(10),
        || {
            let mut resp = primary.connect_resp();
            resp.send(&resp_command(&[b"SET", b"k", b"v"]));
            resp.read_until(b"\r\n") == b"+OK\r\n"
        },
    );
    text.roundtrip(b"set k2 0 0 1\r\nw\r\n", b"STORED\r\n");
}

#[test]
fn wait_counts_the_replicas_that_acked_the_writes_before_it() {
    let primary = TestServer::start_with_resp(&[]);
    let mut resp = primary.connect_resp();
    // No replica: WAIT 0 answers at once, WAIT 1 when its timeout passes.
    resp.roundtrip(&resp_command(&[b"WAIT", b"0", b"0"]), b":0\r\n");
    let started = Instant::now();
    resp.roundtrip(&resp_command(&[b"WAIT", b"1", b"200"]), b":0\r\n");
    assert!(started.elapsed() >= Duration::from_millis(200));
    let replica = start_replica_of(resp_port(&primary), &[]);
    wait_caught_up(&primary, &[&replica]);
    // A write, then WAIT for one replica: answered when it acks, long before the timeout.
    let started = Instant::now();
    resp.send(&resp_command(&[b"SET", b"k", b"v"]));
    resp.send(&resp_command(&[b"WAIT", b"1", b"10000"]));
    resp.roundtrip(b"", b"+OK\r\n:1\r\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Two wanted, one there: the timeout answers with the one.
    resp.roundtrip(&resp_command(&[b"WAIT", b"2", b"300"]), b":1\r\n");
    resp.roundtrip(
        &resp_command(&[b"WAIT", b"x", b"1"]),
        b"-ERR value is not an integer or out of range\r\n",
    );
    let mut on_replica = replica.connect_resp();
    on_replica.send(&resp_command(&[b"WAIT", b"1", b"0"]));
    let reply = on_replica.read_until(b"\r\n");
    assert!(reply.starts_with(b"-ERR WAIT cannot be used with replica instances"));
}

#[test]
fn a_replica_of_a_replica_follows_the_same_stream_at_the_same_offsets() {
    let primary = TestServer::start_with_resp(&[]);
    let middle = start_replica_of(resp_port(&primary), &[]);
    wait_caught_up(&primary, &[&middle]);
    let last = start_replica_of(resp_port(&middle), &[]);
    set_many(&primary, 0, 500, 30);
    mixed_writes(&primary, 4000, 3);
    wait_caught_up(&primary, &[&middle]);
    wait_caught_up(&middle, &[&last]);
    assert_eq!(
        field(&last, "replication", "master_repl_offset"),
        field(&primary, "replication", "master_repl_offset")
    );
    assert_eq!(
        field(&last, "replication", "master_replid"),
        field(&primary, "replication", "master_replid")
    );
    assert_eq!(dump(&last), dump(&primary));
}

#[test]
fn a_stopped_replica_shows_growing_lag_then_catches_up() {
    let primary = TestServer::start_with_resp(&[]);
    let replica = start_replica_of(resp_port(&primary), &[]);
    set_many(&primary, 0, 100, 10);
    wait_caught_up(&primary, &[&replica]);
    let pid = replica.child.as_ref().unwrap().id() as i32;
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    set_many(&primary, 100, 100, 10);
    let lag = || -> u64 {
        let line = field(&primary, "replication", "slave0");
        line.rsplit("lag=").next().unwrap().parse().unwrap()
    };
    wait_for("the lag to grow", Duration::from_secs(10), || lag() >= 2);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_caught_up(&primary, &[&replica]);
    wait_for("the lag to fall", Duration::from_secs(5), || lag() <= 1);
    assert_eq!(dump(&replica), dump(&primary));
    assert_eq!(field(&primary, "stats", "sync_full"), "1");
}

#[test]
fn a_replica_authenticates_with_masterauth() {
    let dir = tempfile::tempdir().unwrap();
    let primary_config = dir.path().join("primary.toml");
    std::fs::write(&primary_config, "[resp]\nrequirepass = \"sesame\"\n").unwrap();
    let primary = TestServer::start_with_resp(&["--config", primary_config.to_str().unwrap()]);
    let port = resp_port(&primary).to_string();
    let authed = |con: &mut redis::Connection| {
        let () = redis::cmd("AUTH").arg("sesame").query(con).unwrap();
    };
    let offset = || -> String {
        let mut con = primary.redis();
        authed(&mut con);
        let text: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut con)
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("master_repl_offset:"))
            .unwrap()
            .to_string()
    };
    // Without the password the handshake is refused and the link stays down.
    let refused = start_replica_of(resp_port(&primary), &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(field(&refused, "replication", "master_link_status"), "down");
    let replica_config = dir.path().join("replica.toml");
    std::fs::write(&replica_config, "[replication]\nmasterauth = \"sesame\"\n").unwrap();
    let replica = TestServer::start_with_resp(&[
        "--config",
        replica_config.to_str().unwrap(),
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    set_many(&primary, 0, 50, 5);
    wait_for("the replica to catch up", Duration::from_secs(20), || {
        let info = info(&replica, "replication");
        info.get("master_link_status").map(String::as_str) == Some("up")
            && info.get("master_repl_offset") == Some(&offset())
    });
    let mut con = replica.redis();
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(dbsize, 50);
    assert_eq!(field(&refused, "replication", "master_link_status"), "down");
}

#[test]
fn a_scripts_writes_and_a_stream_with_its_group_reach_the_replica() {
    let primary = TestServer::start_with_resp(&[]);
    let replica = start_replica_of(resp_port(&primary), &[]);
    wait_caught_up(&primary, &[&replica]);
    let mut resp = primary.connect_resp();
    // A script's writes travel as their effects: the replica never runs the script.
    let script = b"redis.call('RPUSH', KEYS[1], 'a'); redis.call('RPUSH', KEYS[1], 'b'); \
                   redis.call('INCRBY', KEYS[2], 5); return redis.call('LLEN', KEYS[1])";
    resp.roundtrip(
        &resp_command(&[b"EVAL", script, b"2", b"l", b"n"]),
        b":2\r\n",
    );
    resp.roundtrip(
        &resp_command(&[b"XADD", b"s", b"1-1", b"f", b"v"]),
        b"$3\r\n1-1\r\n",
    );
    resp.roundtrip(
        &resp_command(&[b"XGROUP", b"CREATE", b"s", b"g", b"0"]),
        b"+OK\r\n",
    );
    wait_caught_up(&primary, &[&replica]);
    let mut on_replica = replica.connect_resp();
    on_replica.roundtrip(
        &resp_command(&[b"LRANGE", b"l", b"0", b"-1"]),
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
    );
    on_replica.roundtrip(&resp_command(&[b"GET", b"n"]), b"$1\r\n5\r\n");
    on_replica.roundtrip(&resp_command(&[b"XLEN", b"s"]), b":1\r\n");
    on_replica.send(&resp_command(&[b"XINFO", b"GROUPS", b"s"]));
    let groups = String::from_utf8_lossy(&on_replica.read_until(b"lag\r\n:1\r\n")).into_owned();
    assert!(
        groups.starts_with("*1\r\n") && groups.contains("$4\r\nname\r\n$1\r\ng\r\n"),
        "the group did not reach the replica: {groups}"
    );
}
