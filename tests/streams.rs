//! Streams end to end on the real binary with the `redis` crate: a consumer group shared by
//! four consumers across workers, one of them killed mid-way, every entry acknowledged
//! exactly once after XAUTOCLAIM; a blocking XREAD woken by an XADD from another connection
//! on another worker; a snapshot and restart that keep entries, ids and groups.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::TestServer;
use redis::Value;

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        other => panic!("not an array: {other:?}"),
    }
}

/// The entry ids of an XREAD / XREADGROUP reply (`[[key, [[id, fields] ...]] ...]`, or nil).
fn read_ids(reply: &Value) -> Vec<String> {
    match reply {
        Value::Nil => Vec::new(),
        reply => items(reply)
            .iter()
            .flat_map(|part| items(&items(part)[1]).iter())
            .map(|entry| text(&items(entry)[0]))
            .collect(),
    }
}

fn blocked_clients(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[test]
fn a_consumer_group_acknowledges_every_entry_once_after_a_consumer_dies() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    const ENTRIES: usize = 400;
    let mut admin = server.redis();
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", "jobs", "workers", "$", "MKSTREAM"])
        .query(&mut admin)
        .unwrap();
    let produced = Arc::new(AtomicBool::new(false));
    let producer = {
        let mut r = server.redis();
        let produced = produced.clone();
        thread::spawn(move || {
            let mut ids = Vec::new();
            for i in 0..ENTRIES {
                let id: String = redis::cmd("XADD")
                    .arg(&["jobs", "*", "n", &i.to_string()])
                    .query(&mut r)
                    .unwrap();
                ids.push(id);
            }
            produced.store(true, Ordering::SeqCst);
            ids
        })
    };
    // Consumer 3 takes two batches, acknowledges nothing and drops its connection.
    let consumers: Vec<_> = (0..4)
        .map(|c| {
            let mut r = server.redis();
            let produced = produced.clone();
            thread::spawn(move || {
                let name = format!("c{c}");
                let mut acked = Vec::new();
                let mut batches = 0;
                loop {
                    let reply: Value = redis::cmd("XREADGROUP")
                        .arg(&["GROUP", "workers", &name, "COUNT", "7", "BLOCK", "100"])
                        .arg(&["STREAMS", "jobs", ">"])
                        .query(&mut r)
                        .unwrap();
                    let ids = read_ids(&reply);
                    if ids.is_empty() {
                        if produced.load(Ordering::SeqCst) {
                            return acked;
                        }
                        continue;
                    }
                    batches += 1;
                    if c == 3 {
                        if batches == 2 {
                            return acked; // killed: its entries stay pending
                        }
                        continue;
                    }
                    for id in ids {
                        let n: i64 = redis::cmd("XACK")
                            .arg(&["jobs", "workers", &id])
                            .query(&mut r)
                            .unwrap();
                        assert_eq!(n, 1, "{id} acknowledged once");
                        acked.push(id);
                    }
                }
            })
        })
        .collect();
    let ids = producer.join().unwrap();
    let mut acked: Vec<String> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let pending: Value = redis::cmd("XPENDING")
        .arg(&["jobs", "workers"])
        .query(&mut admin)
        .unwrap();
    let stranded = match &items(&pending)[0] {
        Value::Int(n) => *n,
        other => panic!("{other:?}"),
    };
    assert!(stranded > 0, "the killed consumer left entries pending");
    // A survivor claims what the dead consumer held, page by page, and acknowledges it.
    let mut cursor = "0-0".to_string();
    for page in 0.. {
        assert!(page < ENTRIES, "XAUTOCLAIM's cursor never came back to 0-0");
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(&["jobs", "workers", "c0", "0", &cursor, "COUNT", "5"])
            .query(&mut admin)
            .unwrap();
        let parts = items(&reply);
        for entry in items(&parts[1]) {
            let id = text(&items(entry)[0]);
            let n: i64 = redis::cmd("XACK")
                .arg(&["jobs", "workers", &id])
                .query(&mut admin)
                .unwrap();
            assert_eq!(n, 1, "{id} acknowledged once");
            acked.push(id);
        }
        assert!(items(&parts[2]).is_empty(), "nothing was deleted");
        cursor = text(&parts[0]);
        if cursor == "0-0" {
            break;
        }
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &acked {
        *counts.entry(id).or_default() += 1;
    }
    assert_eq!(counts.len(), ENTRIES, "every entry acknowledged");
    assert!(counts.values().all(|&n| n == 1), "none twice");
    assert!(ids.iter().all(|id| counts.contains_key(id.as_str())));
    let pending: Value = redis::cmd("XPENDING")
        .arg(&["jobs", "workers"])
        .query(&mut admin)
        .unwrap();
    assert_eq!(items(&pending)[0], Value::Int(0));
}

#[test]
fn a_blocking_xread_is_woken_by_an_xadd_from_another_connection() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut writer = server.redis();
    let reader = {
        let mut r = server.redis();
        thread::spawn(move || {
            let reply: Value = redis::cmd("XREAD")
                .arg(&["BLOCK", "10000", "STREAMS", "events", "$"])
                .query(&mut r)
                .unwrap();
            read_ids(&reply)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_clients(&mut writer) == 0 {
        assert!(Instant::now() < deadline, "the reader never blocked");
        thread::yield_now();
    }
    let id: String = redis::cmd("XADD")
        .arg(&["events", "*", "kind", "ping"])
        .query(&mut writer)
        .unwrap();
    assert_eq!(reader.join().unwrap(), vec![id]);
    assert_eq!(blocked_clients(&mut writer), 0);
}

/// A blocked XREADGROUP woken by its group's end (XGROUP DESTROY) or its key's (SET) gets
/// Redis's error, counted as Redis counts it: one `errorstat_NOGROUP`, one error reply, and
/// one call of XREADGROUP that failed.
#[test]
fn a_blocked_group_reader_woken_by_an_error_counts_it() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut admin = server.redis();
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", "s", "g", "$", "MKSTREAM"])
        .query(&mut admin)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg(&["RESETSTAT"])
        .query(&mut admin)
        .unwrap();
    let park = |args: &'static [&'static str]| {
        let mut r = server.redis();
        thread::spawn(move || {
            redis::cmd("XREADGROUP")
                .arg(args)
                .query::<Value>(&mut r)
                .unwrap_err()
                .to_string()
        })
    };
    let wait_blocked = |admin: &mut redis::Connection, n: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while blocked_clients(admin) != n {
            assert!(Instant::now() < deadline, "never {n} blocked");
            thread::yield_now();
        }
    };
    let reader = park(&["GROUP", "g", "alice", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut admin, 1);
    let _: i64 = redis::cmd("XGROUP")
        .arg(&["DESTROY", "s", "g"])
        .query(&mut admin)
        .unwrap();
    let error = reader.join().unwrap();
    assert!(error.contains("NOGROUP"), "{error}");
    let info: String = redis::cmd("INFO")
        .arg("everything")
        .query(&mut admin)
        .unwrap();
    assert!(info.contains("errorstat_NOGROUP:count=1\r\n"), "{info}");
    assert!(info.contains("total_error_replies:1\r\n"), "{info}");
    let stat = info
        .lines()
        .find(|l| l.starts_with("cmdstat_xreadgroup:"))
        .expect("xreadgroup stats");
    assert!(
        stat.starts_with("cmdstat_xreadgroup:calls=1,") && stat.ends_with("failed_calls=1"),
        "{stat}"
    );

    // The key turned into a string: the stream is gone.
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", "s", "g", "$"])
        .query(&mut admin)
        .unwrap();
    let reader = park(&["GROUP", "g", "bob", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut admin, 1);
    let _: () = redis::cmd("SET")
        .arg(&["s", "v"])
        .query(&mut admin)
        .unwrap();
    let error = reader.join().unwrap();
    assert!(error.contains("no longer exists"), "{error}");
}

#[test]
fn a_snapshot_keeps_entries_ids_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let query = |con: &mut redis::Connection, args: &[&str]| -> Value {
        redis::cmd(args[0]).arg(&args[1..]).query(con).unwrap()
    };
    let before;
    {
        let server = TestServer::start_with_resp(&["--dir", dir_arg]);
        let mut con = server.redis();
        for i in 1..=250 {
            query(
                &mut con,
                &[
                    "XADD",
                    "s",
                    &format!("{i}-1"),
                    "f",
                    "v",
                    "n",
                    &i.to_string(),
                ],
            );
        }
        query(&mut con, &["XADD", "s", "300-0", "other", "shape"]);
        query(&mut con, &["XDEL", "s", "2-1"]);
        query(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]);
        query(
            &mut con,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "COUNT",
                "3",
                "STREAMS",
                "s",
                ">",
            ],
        );
        query(&mut con, &["XACK", "s", "g", "1-1"]);
        query(&mut con, &["XGROUP", "CREATECONSUMER", "s", "g", "bob"]);
        query(&mut con, &["XSETID", "s", "400-0"]);
        before = (
            query(&mut con, &["XRANGE", "s", "-", "+"]),
            query(&mut con, &["XINFO", "STREAM", "s"]),
            query(&mut con, &["XPENDING", "s", "g", "-", "+", "10"]),
            query(&mut con, &["XINFO", "GROUPS", "s"]),
        );
        assert_eq!(query(&mut con, &["SAVE"]), Value::Okay);
    } // killed: only the snapshot survives
    let server = TestServer::start_with_resp(&["--dir", dir_arg]);
    let mut con = server.redis();
    assert_eq!(query(&mut con, &["XRANGE", "s", "-", "+"]), before.0);
    assert_eq!(query(&mut con, &["XINFO", "STREAM", "s"]), before.1);
    // Idle times moved on; owners and delivery counts did not.
    let strip = |v: Value| -> Vec<(String, String, Value)> {
        items(&v)
            .iter()
            .map(|row| {
                let row = items(row);
                (text(&row[0]), text(&row[1]), row[3].clone())
            })
            .collect()
    };
    let pending = strip(query(&mut con, &["XPENDING", "s", "g", "-", "+", "10"]));
    assert_eq!(pending, strip(before.2));
    assert_eq!(pending.len(), 2);
    assert_eq!(query(&mut con, &["XINFO", "GROUPS", "s"]), before.3);
    let id: String = redis::cmd("XADD")
        .arg(&["s", "400-*", "f", "v"])
        .query(&mut con)
        .unwrap();
    assert_eq!(id, "400-1", "the last id survived");
}
