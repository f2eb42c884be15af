//! Snapshots end to end on the real binary: SAVE and BGSAVE, a restart that comes back with
//! the same keyspace over both protocols, a damaged file refused at start, and a save at
//! shutdown when `save` rules are set.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use redis::Commands;

fn info_field(con: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO persistence has no {field}: {info}"))
        .trim()
        .to_string()
}

/// Waits (at most 20 s) until INFO persistence shows `field:value`.
fn wait_for(con: &mut redis::Connection, field: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(con, field) != value {
        assert!(Instant::now() < deadline, "{field} never became {value}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_dataset(server: &TestServer) {
    let mut c = server.connect();
    c.roundtrip(b"set mc:plain 42 0 5\r\nhello\r\n", b"STORED\r\n");
    c.roundtrip(b"set mc:ttl 7 3600 3\r\nabc\r\n", b"STORED\r\n");
    let big = "x".repeat(200_000);
    c.roundtrip(
        format!("set mc:big 1 0 {}\r\n{big}\r\n", big.len()).as_bytes(),
        b"STORED\r\n",
    );
    let mut con = server.redis();
    let _: () = con
        .hset_multiple("h", &[("f1", "v1"), ("f2", "v2")])
        .unwrap();
    let _: () = con.zadd_multiple("z", &[(1.5, "a"), (2.5, "b")]).unwrap();
    let _: () = con.rpush("l", &["x", "y", "z"]).unwrap();
    let _: () = con.sadd("s", &["m1", "m2"]).unwrap();
    let _: () = con.set_ex("r:ttl", "v", 1000).unwrap();
}

/// What a client sees of the dataset (TTLs rounded to the minute).
fn read_dataset(server: &TestServer) -> Vec<String> {
    let mut c = server.connect();
    c.send(b"gets mc:plain mc:ttl mc:big\r\n");
    let reply = c.read_until(b"END\r\n");
    let headers: Vec<String> = String::from_utf8_lossy(&reply)
        .lines()
        .filter(|l| l.starts_with("VALUE"))
        .map(str::to_string)
        .collect();
    let mut con = server.redis();
    let mut out = headers;
    let h: Vec<(String, String)> = con.hgetall("h").unwrap();
    let z: Vec<(String, f64)> = con.zrange_withscores("z", 0, -1).unwrap();
    let l: Vec<String> = con.lrange("l", 0, -1).unwrap();
    let mut s: Vec<String> = con.smembers("s").unwrap();
    s.sort();
    let mc_ttl: i64 = con.ttl("mc:ttl").unwrap();
    let r_ttl: i64 = con.ttl("r:ttl").unwrap();
    out.push(format!("{h:?} {z:?} {l:?} {s:?}"));
    out.push(format!("ttl {} {}", (mc_ttl + 30) / 60, (r_ttl + 30) / 60));
    out
}

#[test]
fn save_then_restart_brings_the_keyspace_back() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let before;
    {
        let server = TestServer::start_with_resp(&["--dir", dir_arg]);
        write_dataset(&server);
        before = read_dataset(&server);
        let mut con = server.redis();
        let lastsave_before: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
        assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "8");
        let reply: String = redis::cmd("SAVE").query(&mut con).unwrap();
        assert_eq!(reply, "OK");
        assert_eq!(info_field(&mut con, "rdb_saves"), "1");
        assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "0");
        assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
        let lastsave: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
        assert!(lastsave >= lastsave_before);
    } // the server is killed (SIGKILL): only the snapshot survives
    assert!(dir.path().join("dump.fcs").exists());
    let server = TestServer::start_with_resp(&["--dir", dir_arg]);
    assert_eq!(read_dataset(&server), before);
    let mut con = server.redis();
    assert_eq!(info_field(&mut con, "rdb_last_load_keys_loaded"), "8");
    assert_eq!(before.len(), 5, "{before:?}");
    assert!(before[0].starts_with("VALUE mc:plain 42 5"), "{before:?}");
}

#[test]
fn bgsave_runs_in_the_background_and_serving_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let server = TestServer::start_with_resp(&["--dir", dir_arg, "--dbfilename", "snap.fcs"]);
    let mut con = server.redis();
    for i in 0..2000 {
        let _: () = con.set(format!("k{i}"), i).unwrap();
    }
    let reply: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(reply, "Background saving started");
    let _: () = con.set("during", "yes").unwrap();
    wait_for(&mut con, "rdb_saves", "1");
    wait_for(&mut con, "rdb_bgsave_in_progress", "0");
    let bad: redis::RedisResult<String> = redis::cmd("BGSAVE").arg("NOW").query(&mut con);
    assert!(bad.unwrap_err().to_string().contains("syntax error"));
    drop(con);
    drop(server);
    let server = TestServer::start_with_resp(&["--dir", dir_arg, "--dbfilename", "snap.fcs"]);
    let mut con = server.redis();
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap_or(-1);
    let k1999: String = con.get("k1999").unwrap();
    assert_eq!(k1999, "1999");
    // The write during BGSAVE is either in the snapshot or not, never half.
    let during: Option<String> = con.get("during").unwrap();
    assert!(during.is_none() || during.as_deref() == Some("yes"));
    assert!(n == -1 || n >= 2000, "dbsize {n}");
}

#[test]
fn a_damaged_snapshot_is_refused_and_the_server_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    {
        let server = TestServer::start_with_resp(&["--dir", dir_arg]);
        let mut con = server.redis();
        let _: () = con.set("k", "v").unwrap();
        let _: String = redis::cmd("SAVE").query(&mut con).unwrap();
    }
    let path = dir.path().join("dump.fcs");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 12;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let server = TestServer::start_with_resp(&["--dir", dir_arg]);
    let mut con = server.redis();
    let k: Option<String> = con.get("k").unwrap();
    assert_eq!(k, None);
    assert_eq!(info_field(&mut con, "rdb_last_load_keys_loaded"), "0");
}

#[test]
fn with_save_rules_the_server_saves_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    {
        let mut server = TestServer::start_with_resp(&["--dir", dir_arg, "--save", "3600 1"]);
        let mut con = server.redis();
        let _: () = con.set("kept", "across a restart").unwrap();
        drop(con);
        assert!(server.terminate().success());
    }
    let server = TestServer::start_with_resp(&["--dir", dir_arg]);
    let mut con = server.redis();
    let kept: String = con.get("kept").unwrap();
    assert_eq!(kept, "across a restart");
}

/// CONFIG SET save puts rules in force while the server runs (and CONFIG GET shows them): a
/// rule of one change in one second saves in the background without any SAVE.
#[test]
fn config_set_save_rules_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let server = TestServer::start_with_resp(&["--dir", dir_arg]);
    let mut con = server.redis();
    let refused = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("60")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        refused.to_string().contains("Invalid save parameters"),
        "{refused}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("1 1")
        .query(&mut con)
        .unwrap();
    let shown: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query(&mut con)
        .unwrap();
    assert_eq!(shown, ["save", "1 1"]);
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while info_field(&mut con, "rdb_saves") == "0" {
        assert!(std::time::Instant::now() < deadline, "the rule never saved");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(dir.path().join("dump.fcs").exists());
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("save")
        .arg("")
        .query(&mut con)
        .unwrap();
}
