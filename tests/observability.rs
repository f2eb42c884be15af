//! Observability on the real binary: `stats latency`, `stats pools`, INFO commandstats /
//! latencystats / cpu, LATENCY HISTOGRAM, SLOWLOG and CONFIG GET move as known traffic says.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{incompressible, TestServer};

fn stats_map(c: &mut common::Conn, group: &str) -> HashMap<String, String> {
    c.stats(group).into_iter().collect()
}

/// INFO's `name:value` lines as a map.
fn info(r: &mut redis::Connection, section: &str) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg(section).query(r).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `calls=2,usec=...` as a map.
fn fields(value: &str) -> HashMap<String, String> {
    value
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pool_config(dir: &tempfile::TempDir, extra: &str) -> String {
    let path = dir.path().join("ferrocache.toml");
    std::fs::write(
        &path,
        format!("{extra}\n[[pool]]\nname = \"sessions\"\nprefix = \"sess:\"\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn stats_latency_counts_memcached_commands_by_name() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n");
    c.roundtrip(b"get nope\r\n", b"END\r\n");
    c.roundtrip(
        b"incr a 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    let s = stats_map(&mut c, "latency");
    assert_eq!(s["memcache:get:calls"], "2");
    assert_eq!(s["memcache:set:calls"], "1");
    assert_eq!(s["memcache:incr:failed"], "1");
    assert_eq!(s["memcache:get:failed"], "0");
    let p50: f64 = s["memcache:get:p50_us"].parse().unwrap();
    let p999: f64 = s["memcache:get:p999_us"].parse().unwrap();
    assert!(p50 > 0.0 && p50 <= p999, "{p50} {p999}");
    c.roundtrip(b"stats reset\r\n", b"RESET\r\n");
    assert!(!stats_map(&mut c, "latency").contains_key("memcache:get:calls"));
}

#[test]
fn stats_pools_give_hit_ratio_and_evictions_by_reason_under_a_small_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = pool_config(&dir, "");
    let server = TestServer::start(&["-m", "2", "--config", &config]);
    let mut c = server.connect();
    c.roundtrip(b"set sess:1 0 0 1\r\na\r\n", b"STORED\r\n");
    for _ in 0..3 {
        c.roundtrip(b"get sess:1\r\n", b"VALUE sess:1 0 1\r\na\r\nEND\r\n");
    }
    c.roundtrip(b"get sess:2\r\n", b"END\r\n");
    let s = stats_map(&mut c, "pools");
    // Latency per pool: the 5 commands that named a sessions key (set, 3 hits, 1 miss).
    assert_eq!(s["pool:sessions:calls"], "5");
    assert_eq!(s["pool:default:calls"], "0");
    let p99: f64 = s["pool:sessions:p99_us"].parse().unwrap();
    assert!(p99 > 0.0, "{p99}");
    assert_eq!(s["pool:sessions:hits"], "3");
    assert_eq!(s["pool:sessions:misses"], "1");
    assert_eq!(s["pool:sessions:hit_ratio"], "0.7500");
    assert_eq!(s["pool:default:hit_ratio"], "0.0000");
    // Fill 2 MB with 1 KB values of the default pool: the LRU evicts.
    let value = incompressible(1000, 3);
    for i in 0..6000 {
        let mut req = format!("set fill{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        c.send(&req);
        assert_eq!(c.read_until(b"\r\n"), b"STORED\r\n");
    }
    let s = stats_map(&mut c, "pools");
    let evicted: u64 = s["pool:default:evicted_lru"].parse().unwrap();
    assert!(evicted > 0, "{s:?}");
    assert_eq!(s["pool:default:evicted_lfu"], "0");
    assert!(c.stat("evictions") >= evicted);
}

#[test]
fn expirations_are_counted_per_pool() {
    let dir = tempfile::tempdir().unwrap();
    let config = pool_config(&dir, "");
    let server = TestServer::start(&["--config", &config]);
    let mut c = server.connect();
    c.roundtrip(b"set sess:t 0 1 1\r\na\r\n", b"STORED\r\n");
    // Bounded wait for the TTL to pass (it ends by the item being gone, not by a sleep).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        c.send(b"get sess:t\r\n");
        if c.read_until(b"END\r\n") == b"END\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "sess:t never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = stats_map(&mut c, "pools");
    assert_eq!(s["pool:sessions:expired"], "1", "{s:?}");
    // Every get of the polling loop and the set named a sessions key.
    let calls: u64 = s["pool:sessions:calls"].parse().unwrap();
    assert!(calls >= 2, "{calls}");
}

#[test]
fn info_commandstats_and_latencystats_use_redis_names() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut r).unwrap();
    let _: String = redis::cmd("GET").arg("k").query(&mut r).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("missing").query(&mut r).unwrap();
    assert!(redis::cmd("GET").query::<String>(&mut r).is_err()); // arity: rejected
    assert!(redis::cmd("INCR").arg("k").query::<i64>(&mut r).is_err()); // not a number: failed
    let stats = info(&mut r, "commandstats");
    let get = fields(&stats["cmdstat_get"]);
    assert_eq!(get["calls"], "2");
    assert_eq!(get["rejected_calls"], "1");
    assert_eq!(get["failed_calls"], "0");
    let per_call: f64 = get["usec_per_call"].parse().unwrap();
    assert!(per_call >= 0.0);
    assert_eq!(fields(&stats["cmdstat_incr"])["failed_calls"], "1");
    let latency = info(&mut r, "latencystats");
    let get = fields(&latency["latency_percentiles_usec_get"]);
    for p in ["p50", "p99", "p99.9"] {
        let v: f64 = get[p].parse().unwrap();
        assert!(v > 0.0, "{p}={v}");
    }
    // INFO (default) leaves both out; INFO ALL and EVERYTHING have them, and cpu.
    let default = info(&mut r, "default");
    assert!(!default.contains_key("cmdstat_get"));
    assert!(default.contains_key("used_cpu_user"));
    for all in ["all", "everything"] {
        let every = info(&mut r, all);
        assert!(every.contains_key("cmdstat_get"), "{all}");
        assert!(every.contains_key("latency_percentiles_usec_get"), "{all}");
        assert!(every.contains_key("used_cpu_sys"), "{all}");
        assert!(every.contains_key("mem_fragmentation_ratio"), "{all}");
    }
    // Commands queued by MULTI count when EXEC runs them, as in Redis.
    let _: () = redis::cmd("MULTI").query(&mut r).unwrap();
    let queued: String = redis::cmd("GET").arg("k").query(&mut r).unwrap();
    assert_eq!(queued, "QUEUED");
    let _: String = redis::cmd("INCR").arg("k").query(&mut r).unwrap();
    // EXEC's reply holds INCR's error; only the counters matter here.
    let _ = redis::cmd("EXEC").query::<redis::Value>(&mut r);
    let stats = info(&mut r, "commandstats");
    assert_eq!(fields(&stats["cmdstat_get"])["calls"], "3");
    assert_eq!(fields(&stats["cmdstat_incr"])["failed_calls"], "2");
    assert_eq!(fields(&stats["cmdstat_exec"])["calls"], "1");
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut r).unwrap();
    assert!(!info(&mut r, "commandstats").contains_key("cmdstat_get"));
}

#[test]
fn latency_histogram_is_cumulative_per_command() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    for i in 0..20 {
        let _: () = redis::cmd("SET").arg(i).arg(i).query(&mut r).unwrap();
    }
    let _: String = redis::cmd("GET").arg(1).query(&mut r).unwrap();
    let reply: redis::Value = redis::cmd("LATENCY")
        .arg("HISTOGRAM")
        .arg("set")
        .query(&mut r)
        .unwrap();
    // RESP2: ["set", ["calls", 20, "histogram_usec", [bucket, cumulative, ...]]]
    let redis::Value::Array(top) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(top.len(), 2, "only the command asked for: {top:?}");
    assert_eq!(top[0], redis::Value::BulkString(b"set".to_vec()));
    let redis::Value::Array(entry) = &top[1] else {
        panic!()
    };
    assert_eq!(entry[1], redis::Value::Int(20));
    let redis::Value::Array(points) = &entry[3] else {
        panic!()
    };
    let counts: Vec<i64> = points
        .iter()
        .skip(1)
        .step_by(2)
        .map(|v| match v {
            redis::Value::Int(n) => *n,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
    assert_eq!(counts.last(), Some(&20));
}

#[test]
fn slowlog_records_commands_over_the_threshold() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let threshold: HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("slowlog-log-slower-than")
        .query(&mut r)
        .unwrap();
    assert_eq!(threshold["slowlog-log-slower-than"], "10000");
    let _: () = redis::cmd("SET")
        .arg("fast")
        .arg("1")
        .query(&mut r)
        .unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut r).unwrap();
    assert_eq!(len, 0);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg("0")
        .query(&mut r)
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("probe")
        .query(&mut r)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("slow")
        .arg("2")
        .query(&mut r)
        .unwrap();
    let entries: redis::Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1)
        .query(&mut r)
        .unwrap();
    let redis::Value::Array(entries) = entries else {
        panic!()
    };
    let redis::Value::Array(entry) = &entries[0] else {
        panic!()
    };
    assert_eq!(entry.len(), 6);
    assert_eq!(
        entry[3],
        redis::Value::Array(vec![
            redis::Value::BulkString(b"SET".to_vec()),
            redis::Value::BulkString(b"slow".to_vec()),
            redis::Value::BulkString(b"2".to_vec()),
        ])
    );
    assert_eq!(entry[5], redis::Value::BulkString(b"probe".to_vec()));
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut r).unwrap();
    assert!(len >= 2);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg("-1")
        .query(&mut r)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut r).unwrap();
    let _: () = redis::cmd("SET").arg("x").arg("1").query(&mut r).unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut r).unwrap();
    assert_eq!(len, 0);
}

/// What redis_exporter sends on each scrape (`exporter/redis.go` `scrapeRedisHost`), with the
/// fields it reads from the replies.
#[test]
fn the_commands_redis_exporter_sends_are_answered() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let config: HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut r)
        .unwrap();
    for key in ["maxmemory", "maxclients", "slowlog-log-slower-than"] {
        assert!(config.contains_key(key), "{key}");
    }
    let all = info(&mut r, "ALL");
    for key in [
        "redis_version",
        "uptime_in_seconds",
        "connected_clients",
        "used_memory",
        "maxmemory",
        "total_connections_received",
        "total_commands_processed",
        "keyspace_hits",
        "keyspace_misses",
        "evicted_keys",
        "expired_keys",
        "role",
        "used_cpu_sys",
        "used_cpu_user",
    ] {
        assert!(all.contains_key(key), "INFO ALL lacks {key}");
    }
    let _: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut r).unwrap();
    let _: redis::Value = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1)
        .query(&mut r)
        .unwrap();
    let latest: Vec<redis::Value> = redis::cmd("LATENCY").arg("LATEST").query(&mut r).unwrap();
    assert!(latest.is_empty());
    let _: redis::Value = redis::cmd("LATENCY")
        .arg("HISTOGRAM")
        .query(&mut r)
        .unwrap();
}

#[test]
fn errorstats_count_error_replies_by_code_as_redis_does() {
    let server = TestServer::start_with_resp(&[]);
    let mut con = server.redis();
    let _: () = redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let _: redis::RedisResult<String> = redis::cmd("GET").arg("h").query(&mut con);
    let _: redis::RedisResult<String> = redis::cmd("NOSUCH").query(&mut con);
    let _: redis::RedisResult<String> = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg("-1")
        .query(&mut con);
    // A refused queued command, then EXECABORT; a WRONGTYPE inside EXEC.
    let mut raw = server.connect_resp();
    raw.send(b"MULTI\r\nSET a\r\nEXEC\r\nMULTI\r\nINCR h\r\nSET b 1\r\nEXEC\r\n");
    raw.read_until(b"kind of value\r\n+OK\r\n");
    let info: String = redis::cmd("INFO")
        .arg("errorstats")
        .query(&mut con)
        .unwrap();
    // What redis-server 7.0 answers after the same requests.
    assert_eq!(
        info.trim_end(),
        "# Errorstats\r\nerrorstat_ERR:count=3\r\nerrorstat_EXECABORT:count=1\r\nerrorstat_WRONGTYPE:count=2"
    );
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    assert!(stats.contains("total_error_replies:6\r\n"), "{stats}");
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("errorstats")
        .query(&mut con)
        .unwrap();
    assert_eq!(info.trim_end(), "# Errorstats");
}

#[test]
fn binary_protocol_commands_count_in_their_pools_latency() {
    let dir = tempfile::tempdir().unwrap();
    let config = pool_config(&dir, "");
    let server = TestServer::start(&["--config", &config]);
    let mut b = server.connect();
    // Binary GET (opcode 0x00) of sess:1 and of other:1: header, then the key.
    for key in [&b"sess:1"[..], b"other:1"] {
        let mut frame = vec![0x80, 0x00];
        frame.extend_from_slice(&(key.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&(key.len() as u32).to_be_bytes());
        frame.extend_from_slice(&[0; 12]);
        frame.extend_from_slice(key);
        b.send(&frame);
        let head = b.read_exact(24);
        let body = u32::from_be_bytes(head[8..12].try_into().unwrap()) as usize;
        b.read_exact(body);
    }
    let s = stats_map(&mut server.connect(), "pools");
    assert_eq!(s["pool:sessions:calls"], "1", "{s:?}");
    assert_eq!(s["pool:default:calls"], "1", "{s:?}");
}

/// Commands read off a connection are timed on a lap clock (the reading that ends one starts
/// the next), which restarts at every connection turn: the time a client waits between
/// requests, or another connection's traffic, is never counted in a command's latency.
#[test]
fn idle_time_between_requests_is_not_counted_as_latency() {
    const PAUSE: Duration = Duration::from_millis(300);
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let mut c = server.connect();
    for _ in 0..3 {
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut r).unwrap();
        c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
        std::thread::sleep(PAUSE);
    }
    // Three commands of each kind, each after a pause: counting a pause would put the total
    // past 2 × PAUSE, while three real runs stay far below one PAUSE even on a loaded machine.
    let set = fields(&info(&mut r, "commandstats")["cmdstat_set"]);
    assert_eq!(set["calls"], "3");
    let usec: u64 = set["usec"].parse().unwrap();
    assert!(usec < PAUSE.as_micros() as u64, "SET: {usec} µs in all");
    let s = stats_map(&mut c, "latency");
    assert_eq!(s["memcache:get:calls"], "3");
    let usec: f64 = s["memcache:get:usec"].parse().unwrap();
    assert!(usec < PAUSE.as_micros() as f64, "get: {usec} µs in all");
}
