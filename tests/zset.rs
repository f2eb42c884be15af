//! Sorted sets end to end on the real binary with the `redis` crate: a leaderboard, a
//! sliding-window rate limiter (ZREMRANGEBYSCORE + ZADD + ZCARD in MULTI, several clients at
//! once), set algebra, TTLs and the memory limit.

mod common;

use std::thread;

use common::TestServer;
use redis::Commands;

#[test]
fn leaderboard() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    // 1,000 players, scores updated in rounds with ZINCRBY, as a game would.
    for round in 0..3 {
        let mut pipe = redis::pipe();
        for player in 0..1000 {
            pipe.zincr(
                "board",
                format!("player:{player:04}"),
                (player * (round + 1)) % 997,
            )
            .ignore();
        }
        let _: () = pipe.query(&mut r).unwrap();
    }
    let score = |p: i64| ((p % 997) + ((p * 2) % 997) + ((p * 3) % 997)) as f64;
    let mut expected: Vec<(String, f64)> = (0..1000)
        .map(|p| (format!("player:{p:04}"), score(p)))
        .collect();
    // Highest first; ties broken by member bytes, descending (ZREVRANGE order).
    expected.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    assert_eq!(r.zcard::<_, i64>("board").unwrap(), 1000);
    let top: Vec<(String, f64)> = r.zrevrange_withscores("board", 0, 9).unwrap();
    assert_eq!(top, expected[..10].to_vec());
    // Every player's rank agrees with the sorted order.
    for (rank, (player, points)) in expected.iter().enumerate().step_by(37) {
        let got: Option<i64> = r.zrevrank("board", player).unwrap();
        assert_eq!(got, Some(rank as i64), "{player}");
        assert_eq!(r.zscore::<_, _, f64>("board", player).unwrap(), *points);
    }
    // Page 3 of 20 per page, via the generic ZRANGE ... REV.
    let page: Vec<String> = redis::cmd("ZRANGE")
        .arg("board")
        .arg(40)
        .arg(59)
        .arg("REV")
        .query(&mut r)
        .unwrap();
    let want: Vec<String> = expected[40..60].iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(page, want);
    // Players within a score band, and how many.
    let band: Vec<String> = r.zrangebyscore("board", 1000, "(1100").unwrap();
    let in_band: Vec<&(String, f64)> = expected
        .iter()
        .filter(|(_, s)| (1000.0..1100.0).contains(s))
        .collect();
    assert_eq!(band.len(), in_band.len());
    assert_eq!(
        r.zcount::<_, _, _, usize>("board", 1000, "(1100").unwrap(),
        in_band.len()
    );
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("board")
        .query(&mut r)
        .unwrap();
    assert_eq!(encoding, "skiplist");
    // Season over: keep the top 100, archive the union with last season.
    let removed: i64 = r.zremrangebyrank("board", 0, -101).unwrap();
    assert_eq!(removed, 900);
    let _: () = r.zadd("last-season", "player:0001", 5000).unwrap();
    let stored: i64 = redis::cmd("ZUNIONSTORE")
        .arg("hall")
        .arg(2)
        .arg("board")
        .arg("last-season")
        .arg("AGGREGATE")
        .arg("MAX")
        .query(&mut r)
        .unwrap();
    assert_eq!(stored, 101);
    let first: Vec<(String, f64)> = r.zrevrange_withscores("hall", 0, 0).unwrap();
    assert_eq!(first, vec![("player:0001".to_string(), 5000.0)]);
}

/// One request through a sliding-window limiter: drop entries older than the window, record
/// this request, count the window, all in one transaction. Allowed if within `limit`.
fn allow(r: &mut redis::Connection, key: &str, now_ms: u64, id: &str, limit: usize) -> bool {
    let window_ms = 1000;
    let (count,): (usize,) = redis::pipe()
        .atomic()
        .zrembyscore(
            key,
            "-inf",
            format!("({}", now_ms.saturating_sub(window_ms)),
        )
        .ignore()
        .zadd(key, id, now_ms)
        .ignore()
        .zcard(key)
        .pexpire(key, window_ms as i64)
        .ignore()
        .query(r)
        .unwrap();
    count <= limit
}

#[test]
fn sliding_window_rate_limiter() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut r = server.redis();
    // One client: 5 per second; time is the caller's.
    let decisions: Vec<bool> = (0..8)
        .map(|i| allow(&mut r, "rl:alice", 10_000 + i * 100, &format!("req{i}"), 5))
        .collect();
    assert_eq!(
        decisions,
        [true, true, true, true, true, false, false, false]
    );
    // The window slides: at 11,050 the request at 10,000 is out, seven remain, so one more
    // is still refused (refused requests count too); by 11,700 three entries are left.
    assert!(!allow(&mut r, "rl:alice", 11_050, "late", 5));
    assert!(allow(&mut r, "rl:alice", 11_700, "later", 5));
    let left: Vec<String> = r.zrange("rl:alice", 0, -1).unwrap();
    assert!(left.iter().all(|id| id != "req0"), "{left:?}");
    // Many clients on both workers share one limiter: the transaction makes the count exact,
    // so the i-th request of the window sees exactly i entries.
    let clients = 8;
    let per_client = 25;
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let mut conn = server.redis();
            thread::spawn(move || {
                (0..per_client)
                    .map(|i| {
                        let (count,): (usize,) = redis::pipe()
                            .atomic()
                            .zrembyscore("rl:shared", "-inf", "(0")
                            .ignore()
                            .zadd("rl:shared", format!("c{c}-{i}"), 1)
                            .ignore()
                            .zcard("rl:shared")
                            .query(&mut conn)
                            .unwrap();
                        count
                    })
                    .collect::<Vec<usize>>()
            })
        })
        .collect();
    let mut counts: Vec<usize> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    counts.sort_unstable();
    let expected: Vec<usize> = (1..=clients * per_client).collect();
    assert_eq!(counts, expected, "every count seen exactly once");
}

#[test]
fn lex_ranges_set_algebra_and_ttl() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let words = ["apple", "apricot", "banana", "blueberry", "cherry", "date"];
    for w in words {
        let _: () = r.zadd("words", w, 0).unwrap();
    }
    let ap: Vec<String> = r.zrangebylex("words", "[ap", "(aq").unwrap();
    assert_eq!(ap, ["apple", "apricot"]);
    let n: usize = r.zlexcount("words", "[b", "(c").unwrap();
    assert_eq!(n, 2);
    let _: () = r
        .zadd_multiple("a", &[(1, "x"), (2, "y"), (3, "z")])
        .unwrap();
    let _: () = r
        .zadd_multiple("b", &[(10, "y"), (20, "z"), (30, "w")])
        .unwrap();
    let inter: Vec<(String, f64)> = redis::cmd("ZINTER")
        .arg(2)
        .arg("a")
        .arg("b")
        .arg("WEIGHTS")
        .arg(1)
        .arg(0.5)
        .arg("WITHSCORES")
        .query(&mut r)
        .unwrap();
    assert_eq!(inter, [("y".to_string(), 7.0), ("z".to_string(), 13.0)]);
    let card: usize = redis::cmd("ZINTERCARD")
        .arg(2)
        .arg("a")
        .arg("b")
        .query(&mut r)
        .unwrap();
    assert_eq!(card, 2);
    let diff: Vec<String> = redis::cmd("ZDIFF")
        .arg(2)
        .arg("a")
        .arg("b")
        .query(&mut r)
        .unwrap();
    assert_eq!(diff, ["x"]);
    // A sorted set takes a TTL like any key.
    let _: () = redis::cmd("PEXPIRE").arg("a").arg(1).query(&mut r).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while r.exists::<_, bool>("a").unwrap() {
        assert!(std::time::Instant::now() < deadline, "zset never expired");
        thread::yield_now();
    }
    assert_eq!(r.zcard::<_, i64>("a").unwrap(), 0);
    let err = r.zadd::<_, _, _, i64>("words", "x", "nan").unwrap_err();
    assert!(err.to_string().contains("not a valid float"), "{err}");
}

#[test]
fn zsets_count_against_the_memory_limit() {
    let server = TestServer::start_with_resp(&["-m", "4"]);
    let mut r = server.redis();
    // ~200 sets of 1,000 members of ~60 bytes is far beyond 4 MB: old sets must be evicted.
    for set in 0..200 {
        let members: Vec<(f64, String)> = (0..1000)
            .map(|i| {
                (
                    i as f64,
                    format!("{set:03}-member-{i:06}-{}", "x".repeat(40)),
                )
            })
            .collect();
        let _: () = r.zadd_multiple(format!("z{set}"), &members).unwrap();
    }
    let alive = (0..200)
        .filter(|set| r.exists::<_, bool>(format!("z{set}")).unwrap())
        .count();
    assert!(alive < 100, "{alive} sets of ~100 KB fit in 4 MB?");
    assert!(
        r.exists::<_, bool>("z199").unwrap(),
        "the newest set survives"
    );
    let dbsize: usize = redis::cmd("DBSIZE").query(&mut r).unwrap();
    assert_eq!(dbsize, alive);
}

/// Gives a command just sent time to reach the server and park (the order in which clients
/// block is what the FIFO checks rely on).
fn settle() {
    thread::sleep(std::time::Duration::from_millis(100));
}

#[test]
fn blocked_zset_pops_are_served_first_blocked_first_by_type_across_workers() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut r = server.redis();
    // Clients dealt round robin to the two workers block on k one after the other: a
    // BZPOPMIN, a BLPOP (waits for a list: skipped while k is a sorted set), a BZMPOP.
    let mut zmin = server.connect_resp();
    zmin.send(b"BZPOPMIN k 5\r\n");
    settle();
    let mut list = server.connect_resp();
    list.send(b"BLPOP k 5\r\n");
    settle();
    let mut zmpop = server.connect_resp();
    zmpop.send(b"BZMPOP 5 2 other k MAX COUNT 2\r\n");
    settle();
    // Replies as redis-server 7.0.15 gives them for the same sequence.
    let added: i64 = r
        .zadd_multiple("k", &[(1, "a"), (2, "b"), (3, "c")])
        .unwrap();
    assert_eq!(added, 3);
    let expected = b"*3\r\n$1\r\nk\r\n$1\r\na\r\n$1\r\n1\r\n";
    assert_eq!(zmin.read_exact(expected.len()), expected);
    let expected =
        b"*2\r\n$1\r\nk\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n";
    assert_eq!(zmpop.read_exact(expected.len()), expected);
    assert!(!r.exists::<_, bool>("k").unwrap());
    let _: i64 = r.rpush("k", "x").unwrap();
    let expected = b"*2\r\n$1\r\nk\r\n$1\r\nx\r\n";
    assert_eq!(list.read_exact(expected.len()), expected);
    // ZINCRBY and ZUNIONSTORE create the key and serve a waiter too; a timeout answers a
    // null array.
    let mut waiter = server.connect_resp();
    waiter.send(b"BZPOPMAX s 5\r\n");
    settle();
    let _: f64 = r.zincr("s", "m", 2.5).unwrap();
    let expected = b"*3\r\n$1\r\ns\r\n$1\r\nm\r\n$3\r\n2.5\r\n";
    assert_eq!(waiter.read_exact(expected.len()), expected);
    waiter.send(b"BZMPOP 5 1 u MIN\r\n");
    settle();
    let _: i64 = r.zadd("src", "n", 7).unwrap();
    let _: i64 = r.zunionstore("u", &["src"]).unwrap();
    let expected = b"*2\r\n$1\r\nu\r\n*1\r\n*2\r\n$1\r\nn\r\n$1\r\n7\r\n";
    assert_eq!(waiter.read_exact(expected.len()), expected);
    // COPY creates the key as any write does, and serves it too.
    waiter.send(b"BZPOPMIN c 5\r\n");
    settle();
    let copied: i64 = redis::cmd("COPY")
        .arg("src")
        .arg("c")
        .query(&mut r)
        .unwrap();
    assert_eq!(copied, 1);
    let expected = b"*3\r\n$1\r\nc\r\n$1\r\nn\r\n$1\r\n7\r\n";
    assert_eq!(waiter.read_exact(expected.len()), expected);
    waiter.send(b"BZPOPMIN none 0.1\r\n");
    assert_eq!(waiter.read_exact(5), b"*-1\r\n");
}

/// Blocked clients are served after a whole EXEC, as Redis serves them after the command: a
/// ZADD (or LPUSH) undone by a DEL in the same transaction wakes no one, and the next write
/// serves the waiter (Redis's "ZADD + DEL should not awake blocked client").
#[test]
fn a_push_undone_inside_exec_wakes_no_one() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut r = server.redis();
    for (block, undo, push, expected) in [
        (
            &b"BZPOPMIN z 5\r\n"[..],
            ["ZADD", "z", "0", "foo"],
            ["ZADD", "z", "1", "bar"],
            &b"*3\r\n$1\r\nz\r\n$3\r\nbar\r\n$1\r\n1\r\n"[..],
        ),
        (
            &b"BLPOP l 5\r\n"[..],
            ["RPUSH", "l", "foo", "foo"],
            ["RPUSH", "l", "bar", "bar"],
            &b"*2\r\n$1\r\nl\r\n$3\r\nbar\r\n"[..],
        ),
    ] {
        let mut waiter = server.connect_resp();
        waiter.send(block);
        settle();
        let key = undo[1];
        let _: () = redis::pipe()
            .atomic()
            .cmd(undo[0])
            .arg(&undo[1..])
            .ignore()
            .cmd("DEL")
            .arg(key)
            .ignore()
            .query(&mut r)
            .unwrap();
        let _: () = redis::cmd(push[0]).arg(&push[1..]).query(&mut r).unwrap();
        assert_eq!(waiter.read_exact(expected.len()), expected);
    }
}
