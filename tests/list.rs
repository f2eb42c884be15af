//! Lists end to end on the real binary with the `redis` crate: the work-queue pattern across
//! workers (producers LPUSH, consumers RPOP, every item taken exactly once and in order per
//! producer), edge cases checked against redis-server 7.0.15, keyspace notifications, MULTI,
//! and the memory limit.

mod common;

use std::collections::HashMap;
use std::thread;

use common::TestServer;
use redis::Commands;

#[test]
fn queue_across_workers_delivers_each_item_once_in_order() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    const PRODUCERS: usize = 4;
    const ITEMS: usize = 2000;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut r = server.redis();
            thread::spawn(move || {
                for i in 0..ITEMS {
                    let _: i64 = r.lpush("jobs", format!("{p}:{i}")).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..8)
        .map(|_| {
            let mut r = server.redis();
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut idle = 0;
                while idle < 200 {
                    match r.rpop::<_, Option<String>>("jobs", None).unwrap() {
                        Some(item) => {
                            got.push(item);
                            idle = 0;
                        }
                        None => {
                            idle += 1;
                            thread::sleep(std::time::Duration::from_millis(2));
                        }
                    }
                }
                got
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let mut seen: HashMap<usize, Vec<usize>> = HashMap::new();
    for consumer in consumers {
        // Each consumer sees each producer's items in the order they were pushed.
        let mut last: HashMap<usize, usize> = HashMap::new();
        for item in consumer.join().unwrap() {
            let (p, i) = item.split_once(':').unwrap();
            let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
            if let Some(prev) = last.insert(p, i) {
                assert!(prev < i, "producer {p}: {prev} came before {i}");
            }
            seen.entry(p).or_default().push(i);
        }
    }
    for p in 0..PRODUCERS {
        let mut items = seen.remove(&p).unwrap_or_default();
        items.sort_unstable();
        assert_eq!(items, (0..ITEMS).collect::<Vec<_>>(), "producer {p}");
    }
    let mut r = server.redis();
    assert!(
        !r.exists::<_, bool>("jobs").unwrap(),
        "the drained list is gone"
    );
}

#[test]
fn edge_cases_answer_as_redis_does() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: i64 = r.rpush("l", &["a", "b", "c", "a", "b", "a"]).unwrap();
    // LPOS with RANK, COUNT and MAXLEN (redis-server 7.0.15 gives the same).
    let at: Vec<i64> = redis::cmd("LPOS")
        .arg("l")
        .arg("a")
        .arg("RANK")
        .arg(-1)
        .arg("COUNT")
        .arg(0)
        .query(&mut r)
        .unwrap();
    assert_eq!(at, vec![5, 3, 0]);
    let none: Option<i64> = redis::cmd("LPOS")
        .arg("l")
        .arg("a")
        .arg("RANK")
        .arg(4)
        .query(&mut r)
        .unwrap();
    assert_eq!(none, None);
    // Count 0 is an empty array, a missing key with a count is a null array.
    let empty: Vec<String> = redis::cmd("LPOP").arg("l").arg(0).query(&mut r).unwrap();
    assert!(empty.is_empty());
    let missing: Option<Vec<String>> = redis::cmd("LPOP")
        .arg("nokey")
        .arg(3)
        .query(&mut r)
        .unwrap();
    assert_eq!(missing, None);
    // LINSERT with a missing pivot, LMOVE onto itself.
    let missing_pivot: i64 = r.linsert_before("l", "zz", "x").unwrap();
    assert_eq!(missing_pivot, -1);
    let moved: String = redis::cmd("LMOVE")
        .arg("l")
        .arg("l")
        .arg("LEFT")
        .arg("RIGHT")
        .query(&mut r)
        .unwrap();
    assert_eq!(moved, "a");
    let all: Vec<String> = r.lrange("l", 0, -1).unwrap();
    assert_eq!(all, ["b", "c", "a", "b", "a", "a"]);
    let tail: Vec<String> = r.lrange("l", -2, 100).unwrap();
    assert_eq!(tail, ["a", "a"]);
    // WRONGTYPE both ways.
    let _: () = r.set("s", "v").unwrap();
    let err = r.lpush::<_, _, i64>("s", "x").unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    let err = r.get::<_, String>("l").unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    let kind: String = redis::cmd("TYPE").arg("l").query(&mut r).unwrap();
    assert_eq!(kind, "list");
}

#[test]
fn pushes_notify_keyspace_subscribers() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Kl")
        .query(&mut r)
        .unwrap();
    let mut sub = server.redis();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("__keyspace@0__:q").unwrap();
    let _: i64 = r.rpush("q", "job").unwrap();
    let message = pubsub.get_message().unwrap();
    // Redis names the push by its end.
    assert_eq!(message.get_payload::<String>().unwrap(), "rpush");
}

#[test]
fn lists_count_against_the_memory_limit() {
    let server = TestServer::start_with_resp(&["-m", "4"]);
    let mut r = server.redis();
    // 200 lists of 1,000 elements of ~60 bytes is far beyond 4 MB: old lists must go.
    for list in 0..200 {
        let elements: Vec<String> = (0..1000)
            .map(|i| format!("{list:03}-element-{i:06}-{}", "x".repeat(40)))
            .collect();
        let _: i64 = r.rpush(format!("l{list}"), &elements).unwrap();
    }
    let alive = (0..200)
        .filter(|list| r.exists::<_, bool>(format!("l{list}")).unwrap())
        .count();
    assert!(alive < 100, "{alive} lists of ~60 KB fit in 4 MB?");
    assert!(
        r.exists::<_, bool>("l199").unwrap(),
        "the newest list survives"
    );
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("l199")
        .query(&mut r)
        .unwrap();
    assert_eq!(encoding, "quicklist");
}

/// Reads one reply with a deadline; `None` if nothing arrived in `wait`.
fn try_reply<T: redis::FromRedisValue>(
    r: &mut redis::Connection,
    wait: std::time::Duration,
) -> Option<T> {
    r.set_read_timeout(Some(wait)).unwrap();
    match r.recv_response() {
        Ok(value) => Some(redis::from_redis_value(&value).unwrap()),
        Err(e) if e.is_timeout() => None,
        Err(e) => panic!("{e}"),
    }
}

/// Sends a command without waiting for its reply.
fn send(r: &mut redis::Connection, cmd: &redis::Cmd) {
    r.send_packed_command(&cmd.get_packed_command()).unwrap();
}

/// Gives a command just sent time to reach the server and park (the order in which clients
/// block is what the FIFO test relies on).
fn settle() {
    thread::sleep(std::time::Duration::from_millis(100));
}

#[test]
fn brpop_queue_across_workers_each_item_once_in_order() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 8;
    const ITEMS: usize = 1000;
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let mut r = server.redis();
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let item: Option<(String, String)> = redis::cmd("BRPOP")
                        .arg("jobs")
                        .arg(0.5)
                        .query(&mut r)
                        .unwrap();
                    match item {
                        Some((key, item)) if item != "stop" => {
                            assert_eq!(key, "jobs");
                            got.push(item);
                        }
                        _ => return got,
                    }
                }
            })
        })
        .collect();
    settle();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut r = server.redis();
            thread::spawn(move || {
                for i in 0..ITEMS {
                    let _: i64 = r.lpush("jobs", format!("{p}:{i}")).unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    let mut r = server.redis();
    for _ in 0..CONSUMERS {
        let _: i64 = r.lpush("jobs", "stop").unwrap();
    }
    let mut seen: HashMap<usize, Vec<usize>> = HashMap::new();
    for consumer in consumers {
        let mut last: HashMap<usize, usize> = HashMap::new();
        for item in consumer.join().unwrap() {
            let (p, i) = item.split_once(':').unwrap();
            let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
            if let Some(prev) = last.insert(p, i) {
                assert!(prev < i, "producer {p}: {prev} came before {i}");
            }
            seen.entry(p).or_default().push(i);
        }
    }
    for p in 0..PRODUCERS {
        let mut items = seen.remove(&p).unwrap_or_default();
        items.sort_unstable();
        assert_eq!(
            items,
            (0..ITEMS).collect::<Vec<_>>(),
            "producer {p}: lost or twice"
        );
    }
}

#[test]
fn blocked_clients_are_served_first_blocked_first_across_workers() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    // Six clients, dealt round robin to the two workers, block one after the other.
    let mut waiting: Vec<redis::Connection> = (0..6).map(|_| server.redis()).collect();
    for r in waiting.iter_mut() {
        send(r, redis::cmd("BLPOP").arg("q").arg(0));
        settle();
    }
    let mut r = server.redis();
    let info: String = redis::cmd("INFO").arg("clients").query(&mut r).unwrap();
    assert!(info.contains("blocked_clients:6\r\n"), "{info}");
    let _: i64 = r.rpush("q", &["0", "1", "2", "3", "4", "5"]).unwrap();
    for (n, client) in waiting.iter_mut().enumerate() {
        let got: Option<(String, String)> = try_reply(client, std::time::Duration::from_secs(5));
        assert_eq!(got, Some(("q".into(), n.to_string())), "client {n}");
    }
    let info: String = redis::cmd("INFO").arg("clients").query(&mut r).unwrap();
    assert!(info.contains("blocked_clients:0\r\n"), "{info}");
}

#[test]
fn blocking_pops_time_out_stay_blocked_across_type_changes_and_lose_nothing() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut r = server.redis();
    // A timeout answers a null array, for the moves too (redis-server 7.0.15 does).
    let started = std::time::Instant::now();
    let none: Option<(String, String)> =
        redis::cmd("BLPOP").arg("q").arg(0.2).query(&mut r).unwrap();
    assert_eq!(none, None);
    // It waited (deadlines follow the wall clock, which may be slewed against `Instant`).
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
    let none: redis::Value = redis::cmd("BLMOVE")
        .arg("q")
        .arg("d")
        .arg("LEFT")
        .arg("RIGHT")
        .arg(0.1)
        .query(&mut r)
        .unwrap();
    assert_eq!(none, redis::Value::Nil);
    // Blocked on k while k becomes a string, then is deleted, then a list: served only then,
    // as redis-server 7.0.15 does (the first reply it gets is the element).
    let mut waiter = server.connect_resp();
    waiter.send(b"BLPOP k 5\r\n");
    settle();
    let _: () = r.set("k", "v").unwrap();
    settle();
    let _: i64 = r.del("k").unwrap();
    let _: i64 = r.rpush("k", "a").unwrap();
    let expected = b"*2\r\n$1\r\nk\r\n$1\r\na\r\n";
    assert_eq!(waiter.read_exact(expected.len()), expected);
    // A client that leaves while blocked takes nothing with it.
    let mut leaver = server.redis();
    send(&mut leaver, redis::cmd("BRPOP").arg("gone").arg(0));
    settle();
    drop(leaver);
    settle();
    let _: i64 = r.rpush("gone", "kept").unwrap();
    let left: Vec<String> = r.lrange("gone", 0, -1).unwrap();
    assert_eq!(left, ["kept"]);
    // BLMOVE waiting on an empty source is served by the push, and the element moves.
    let mut mover = server.redis();
    send(
        &mut mover,
        redis::cmd("BLMOVE")
            .arg("src")
            .arg("dst")
            .arg("LEFT")
            .arg("RIGHT")
            .arg(5),
    );
    settle();
    let _: i64 = r.lpush("src", "m").unwrap();
    let moved: Option<String> = try_reply(&mut mover, std::time::Duration::from_secs(5));
    assert_eq!(moved.as_deref(), Some("m"));
    let dst: Vec<String> = r.lrange("dst", 0, -1).unwrap();
    assert_eq!(dst, ["m"]);
    assert!(!r.exists::<_, bool>("src").unwrap());
}
