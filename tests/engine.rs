//! The storage engine through the real server: compression is invisible to memcached and
//! Redis clients, pools are counted (`stats pools`), and a full memory behaves as each
//! eviction policy says (the robustness issue's "full memory with every eviction policy").

mod common;

use common::{incompressible, TestServer};
use redis::Commands;

fn json_like(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                r#"{{"id":{i},"user":"user-{}","score":{},"tags":["a","b"]}},"#,
                i % 97,
                i * 7
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

/// Polls `stats` (bounded) until `name` reaches `want`.
fn wait_stat(c: &mut common::Conn, name: &str, want: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.stat(name) != want {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never reached {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn compressed_values_are_invisible_to_memcached_and_redis_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.toml");
    // Values turn cold at once, so the maintenance thread packs them within a tick.
    std::fs::write(&path, "[store]\ncompression_cold_secs = 0\n").unwrap();
    let server = TestServer::start_with_resp(&["--config", path.to_str().unwrap()]);
    let mut c = server.connect();
    let value = json_like(100_000);
    let mut req = format!("set doc 5 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    wait_stat(&mut c, "compressed_items", 1);
    assert!(c.stat("compressed_saved_bytes") > 80_000);
    assert!(c.stat("bytes") < 20_000, "stored compressed");
    c.roundtrip(
        b"get doc\r\n",
        &[
            format!("VALUE doc 5 {}\r\n", value.len()).as_bytes(),
            &value,
            b"\r\nEND\r\n",
        ]
        .concat(),
    );
    // gets + cas, append: all on the original bytes.
    c.send(b"gets doc\r\n");
    let reply = c.read_until(b"\r\nEND\r\n");
    let header_end = reply.iter().position(|&b| b == b'\r').unwrap();
    let header = String::from_utf8_lossy(&reply[..header_end]).to_string();
    let cas: u64 = header.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert_eq!(&reply[header_end + 2..reply.len() - 7], &value[..]);
    c.roundtrip(
        format!("cas doc 5 0 1 {cas}\r\nX\r\n").as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(
        &[
            b"append doc 0 0 ".as_slice(),
            format!("{}\r\n", value.len()).as_bytes(),
            &value,
            b"\r\n",
        ]
        .concat(),
        b"STORED\r\n",
    );
    let mut expected = b"X".to_vec();
    expected.extend_from_slice(&value);
    let mut r = server.redis();
    let got: Vec<u8> = r.get("doc").unwrap();
    assert_eq!(got, expected);
    let len: usize = r.strlen("doc").unwrap();
    assert_eq!(len, value.len() + 1);
    let _: () = r.set("rdoc", &value[..]).unwrap();
    let got: Vec<u8> = r.getrange("rdoc", 0, 99).unwrap();
    assert_eq!(got, &value[..100]);
    // Both turn cold again (reads promoted them) and are packed again.
    wait_stat(&mut c, "compressed_items", 2);
}

#[test]
fn pools_are_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.toml");
    std::fs::write(
        &path,
        "[[pool]]\nname = \"sessions\"\nprefix = \"sess:\"\n\n[[pool]]\nname = \"pages\"\nprefix = \"page:\"\n",
    )
    .unwrap();
    let server = TestServer::start(&["--config", path.to_str().unwrap()]);
    let mut c = server.connect();
    c.roundtrip(b"set sess:1 0 0 1\r\na\r\n", b"STORED\r\n");
    c.roundtrip(b"set sess:2 0 0 1\r\nb\r\n", b"STORED\r\n");
    c.roundtrip(b"set page:1 0 0 1\r\nc\r\n", b"STORED\r\n");
    c.roundtrip(b"set other 0 0 1\r\nd\r\n", b"STORED\r\n");
    c.roundtrip(b"get sess:1\r\n", b"VALUE sess:1 0 1\r\na\r\nEND\r\n");
    c.roundtrip(b"get sess:9\r\n", b"END\r\n");
    c.roundtrip(b"get page:7\r\n", b"END\r\n");
    let mut big = b"set sess:big 0 0 2000000\r\n".to_vec();
    big.extend_from_slice(&vec![b'x'; 2_000_000]);
    big.extend_from_slice(b"\r\n");
    c.roundtrip(&big, b"SERVER_ERROR object too large for cache\r\n");
    // The integer counters (hit_ratio and the latency percentiles are decimals).
    let stats: std::collections::HashMap<String, u64> = c
        .stats("pools")
        .into_iter()
        .filter_map(|(name, value)| value.parse().ok().map(|value| (name, value)))
        .collect();
    assert_eq!(stats["pool:sessions:items"], 2);
    assert_eq!(stats["pool:sessions:hits"], 1);
    assert_eq!(stats["pool:sessions:misses"], 1);
    assert_eq!(stats["pool:sessions:too_large"], 1);
    assert_eq!(stats["pool:pages:items"], 1);
    assert_eq!(stats["pool:pages:misses"], 1);
    assert_eq!(stats["pool:default:items"], 1);
    assert!(stats["pool:sessions:bytes"] > 0);
}

/// Starts a server with `policy` and 2 MB of memory, writes 500 keys without expiry, then
/// tries 5,000 keys with one, then 5,000 more without; returns the server, a connection and
/// the replies of the last two rounds.
fn fill(policy: &str) -> (TestServer, common::Conn, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.toml");
    std::fs::write(&path, format!("[store]\neviction_policy = \"{policy}\"\n")).unwrap();
    let server = TestServer::start(&["-m", "2", "--config", path.to_str().unwrap()]);
    let mut c = server.connect();
    let value = incompressible(1000, 11);
    let send = |c: &mut common::Conn, key: String, exptime: u32| {
        let mut req = format!("set {key} 0 {exptime} {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        c.send(&req);
        c.read_until(b"\r\n")
    };
    for i in 0..500 {
        assert_eq!(send(&mut c, format!("keep{i}"), 0), b"STORED\r\n");
    }
    let with_ttl = (0..5000)
        .map(|i| send(&mut c, format!("ttl{i}"), 3600 + i))
        .collect();
    let without = (0..5000)
        .map(|i| send(&mut c, format!("more{i}"), 0))
        .collect();
    (server, c, with_ttl, without)
}

fn count(replies: &[Vec<u8>], reply: &[u8]) -> usize {
    replies.iter().filter(|r| r.as_slice() == reply).count()
}

#[test]
fn a_full_memory_under_every_eviction_policy() {
    const OOM: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "volatile-lru",
        "volatile-lfu",
        "volatile-ttl",
        "noeviction",
    ] {
        let (server, mut c, with_ttl, without) = fill(policy);
        let stored = count(&with_ttl, b"STORED\r\n") + count(&without, b"STORED\r\n");
        assert_eq!(
            stored + count(&with_ttl, OOM) + count(&without, OOM),
            10_000,
            "{policy}"
        );
        let evictions = c.stat("evictions");
        let items = c.stat("curr_items");
        // Every acknowledged write is either still there or counted as evicted.
        assert_eq!(items + evictions, 500 + stored as u64, "{policy}");
        assert!(c.stat("bytes") <= 2 << 20, "{policy}");
        let keep_left = (0..500)
            .filter(|i| {
                c.send(format!("mg keep{i}\r\n").as_bytes());
                c.read_until(b"\r\n") == b"HD\r\n"
            })
            .count();
        match policy {
            "allkeys-lru" | "allkeys-lfu" => {
                assert_eq!(stored, 10_000, "{policy} never refuses");
                assert!(evictions >= 8_000, "{policy}");
            }
            "noeviction" => {
                assert_eq!(evictions, 0);
                assert_eq!(keep_left, 500);
                assert!(count(&with_ttl, OOM) > 3_000, "{policy}");
            }
            _ => {
                // volatile-*: only keys with an expiry go; once none are left, writes fail.
                assert_eq!(keep_left, 500, "{policy} evicted a key without expiry");
                assert_eq!(count(&with_ttl, b"STORED\r\n"), 5_000, "{policy}");
                assert!(evictions > 0, "{policy}");
                assert!(count(&without, OOM) > 3_000, "{policy}");
            }
        }
        // The server still answers; the allkeys policies still take writes (volatile ones
        // have evicted every key with an expiry by now, as Redis would).
        let after: &[u8] = if policy.starts_with("allkeys") {
            b"STORED\r\n"
        } else {
            OOM
        };
        c.roundtrip(b"set after 0 60 1\r\nz\r\n", after);
        c.roundtrip(b"mn\r\n", b"MN\r\n");
        drop(server);
    }
}

#[test]
fn redis_clients_get_oom_under_noeviction_and_see_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.toml");
    std::fs::write(&path, "[store]\neviction_policy = \"volatile-lfu\"\n").unwrap();
    let server = TestServer::start_with_resp(&["-m", "2", "--config", path.to_str().unwrap()]);
    let mut r = server.redis();
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut r)
        .unwrap();
    assert_eq!(policy, ["maxmemory-policy", "volatile-lfu"]);
    let value = incompressible(1000, 12);
    let mut refused = None;
    for i in 0..5000 {
        if let Err(err) = r.set::<_, _, ()>(format!("k{i}"), &value[..]) {
            refused = Some(err);
            break;
        }
    }
    let err = refused.expect("keys without expiry cannot be evicted under volatile-lfu");
    assert_eq!(err.code(), Some("OOM"), "{err}");
}

#[test]
fn values_up_to_the_item_size_limit_span_segments() {
    let server = TestServer::start_with_resp(&["-I", "16m", "-m", "128"]);
    let mut c = server.connect();
    let value = incompressible(12 << 20, 13);
    let mut req = format!("set big 3 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"STORED\r\n");
    c.send(b"get big\r\n");
    let reply = c.read_until(b"\r\nEND\r\n");
    let header = format!("VALUE big 3 {}\r\n", value.len());
    assert_eq!(&reply[..header.len()], header.as_bytes());
    assert!(
        reply[header.len()..reply.len() - 7] == value[..],
        "value differs"
    );
    assert!(c.stat("segments_in_use") >= 12);
    let mut r = server.redis();
    let got: Vec<u8> = r.get("big").unwrap();
    assert!(got == value);
    // Just past the limit: refused, and the old value is gone (memcached unlinks it).
    let mut req = format!("set big 0 0 {}\r\n", (16 << 20) + 1).into_bytes();
    req.extend_from_slice(&vec![b'x'; (16 << 20) + 1]);
    req.extend_from_slice(b"\r\n");
    c.roundtrip(&req, b"SERVER_ERROR object too large for cache\r\n");
    c.roundtrip(b"get big\r\n", b"END\r\n");
}

#[test]
fn expired_memory_is_reclaimed_within_seconds_without_reads() {
    let server = TestServer::start(&["-m", "64"]);
    let mut c = server.connect();
    let value = incompressible(1000, 14);
    for i in 0..6000 {
        let mut req = format!("set t{i} 0 1 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        c.send(&req);
    }
    let replies = c.read_exact(6000 * b"STORED\r\n".len());
    assert!(replies.chunks(8).all(|r| r == b"STORED\r\n"));
    c.roundtrip(b"set keep 0 0 1\r\nk\r\n", b"STORED\r\n");
    assert!(c.stat("segments_in_use") >= 6);
    // Nothing reads the expired keys: the background sweep drops their segments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.stat("curr_items") > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(c.stat("curr_items"), 1);
    assert_eq!(c.stat("reclaimed"), 6000);
    assert!(
        c.stat("segments_in_use") <= 2,
        "{}",
        c.stat("segments_in_use")
    );
    c.roundtrip(b"get keep\r\n", b"VALUE keep 0 1\r\nk\r\nEND\r\n");
}

#[test]
fn redis_keys_longer_than_a_quarter_segment_get_an_error() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let key = "k".repeat(300_000);
    let err = r.set::<_, _, ()>(&key, "v").unwrap_err();
    assert!(
        err.to_string().contains("exceeds maximum allowed size"),
        "{err}"
    );
    let err = r.hset::<_, _, _, ()>(&key, "f", "v").unwrap_err();
    assert!(
        err.to_string().contains("exceeds maximum allowed size"),
        "{err}"
    );
    let exists: bool = r.exists(&key).unwrap();
    assert!(!exists);
    let short = "k".repeat(200_000);
    let _: () = r.set(&short, "v").unwrap();
    let got: String = r.get(&short).unwrap();
    assert_eq!(got, "v");
}
