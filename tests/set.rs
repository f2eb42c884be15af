//! Sets end to end on the real binary with the `redis` crate: deduplication from several
//! clients across workers, tag algebra, SSCAN over a large set while it changes, encodings,
//! and the memory limit.

mod common;

use std::collections::HashSet;
use std::thread;

use common::TestServer;
use redis::Commands;

#[test]
fn unique_visitors_from_many_clients_are_counted_once() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    // Four clients record overlapping visitor ids: 0..3000 each shifted by 500.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut r = server.redis();
            thread::spawn(move || {
                let mut added = 0;
                for id in (w * 500)..(w * 500 + 3000) {
                    added += r
                        .sadd::<_, _, i64>("visitors", format!("user:{id}"))
                        .unwrap();
                }
                added
            })
        })
        .collect();
    let added: i64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let mut r = server.redis();
    assert_eq!(added, 4500, "each new member counted by exactly one SADD");
    assert_eq!(r.scard::<_, i64>("visitors").unwrap(), 4500);
    let members: HashSet<String> = r.smembers("visitors").unwrap();
    assert_eq!(members.len(), 4500);
    assert!(r.sismember::<_, _, bool>("visitors", "user:4499").unwrap());
    assert!(!r.sismember::<_, _, bool>("visitors", "user:4500").unwrap());
}

#[test]
fn tag_algebra_and_encodings() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: i64 = r.sadd("tag:rust", &["a1", "a2", "a3"]).unwrap();
    let _: i64 = r.sadd("tag:db", &["a2", "a3", "a4"]).unwrap();
    let both: HashSet<String> = r.sinter(&["tag:rust", "tag:db"]).unwrap();
    assert_eq!(both, HashSet::from(["a2".to_string(), "a3".to_string()]));
    let either: i64 = r.sunionstore("tag:any", &["tag:rust", "tag:db"]).unwrap();
    assert_eq!(either, 4);
    let only: HashSet<String> = r.sdiff(&["tag:rust", "tag:db"]).unwrap();
    assert_eq!(only, HashSet::from(["a1".to_string()]));
    let moved: bool = r.smove("tag:rust", "tag:db", "a1").unwrap();
    assert!(moved);
    assert_eq!(r.scard::<_, i64>("tag:db").unwrap(), 4);
    let kind: String = redis::cmd("TYPE").arg("tag:db").query(&mut r).unwrap();
    assert_eq!(kind, "set");
    let encoding = |r: &mut redis::Connection, key: &str| -> String {
        redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(r)
            .unwrap()
    };
    assert_eq!(encoding(&mut r, "tag:db"), "hashtable");
    let _: i64 = r.sadd("ids", &[3, 1, 2]).unwrap();
    assert_eq!(encoding(&mut r, "ids"), "intset");
    let ids: Vec<i64> = r.smembers("ids").unwrap();
    assert_eq!(ids, [1, 2, 3], "an intset answers in order");
    let _: () = r.set("plain", "v").unwrap();
    let err = r.sadd::<_, _, i64>("plain", "x").unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
}

#[test]
fn sscan_returns_every_member_present_throughout() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let members: Vec<String> = (0..5000).map(|i| format!("m{i}")).collect();
    let _: i64 = r.sadd("big", &members).unwrap();
    let mut seen = HashSet::new();
    let mut cursor = 0u64;
    let mut round = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(100)
            .query(&mut r)
            .unwrap();
        seen.extend(batch);
        // The set changes during the scan: members come and go beside the stable ones.
        let _: i64 = r.sadd("big", format!("new{round}")).unwrap();
        let _: i64 = r.srem("big", format!("new{}", round / 2)).unwrap();
        round += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for member in &members {
        assert!(seen.contains(member), "{member} missed");
    }
}

#[test]
fn sets_count_against_the_memory_limit() {
    let server = TestServer::start_with_resp(&["-m", "4"]);
    let mut r = server.redis();
    for set in 0..200 {
        let members: Vec<String> = (0..1000)
            .map(|i| format!("{set:03}-member-{i:06}-{}", "x".repeat(40)))
            .collect();
        let _: i64 = r.sadd(format!("s{set}"), &members).unwrap();
    }
    let alive = (0..200)
        .filter(|set| r.exists::<_, bool>(format!("s{set}")).unwrap())
        .count();
    assert!(alive < 100, "{alive} sets of ~60 KB fit in 4 MB?");
    assert!(
        r.exists::<_, bool>("s199").unwrap(),
        "the newest set survives"
    );
}
