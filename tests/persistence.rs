//! Snapshots end to end on the real binary: SAVE and BGSAVE, a restart that comes back with
//! the same keyspace over both protocols, a damaged file refused at start (or the start
//! refused), a save at shutdown when `save` rules are set, SHUTDOWN [SAVE|NOSAVE], memcached's
//! `save`/`bgsave`, and what clients are told while the snapshot loads.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, TestServer};
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

/// Starts the server and waits until its snapshot (if any) is loaded.
fn start_loaded(args: &[&str]) -> TestServer {
    let server = TestServer::start_with_resp(args);
    wait_for(&mut server.redis(), "loading", "0");
    server
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
    let server = start_loaded(&["--dir", dir_arg]);
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
    let server = start_loaded(&["--dir", dir_arg, "--dbfilename", "snap.fcs"]);
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
    let server = start_loaded(&["--dir", dir_arg]);
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
    let server = start_loaded(&["--dir", dir_arg]);
    let mut con = server.redis();
    let kept: String = con.get("kept").unwrap();
    assert_eq!(kept, "across a restart");
}

/// Saves a snapshot holding `k` = `v` in `dir`.
fn snapshot_with_one_key(dir_arg: &str) {
    let server = TestServer::start_with_resp(&["--dir", dir_arg]);
    let mut con = server.redis();
    let _: () = con.set("k", "v").unwrap();
    let _: String = redis::cmd("SAVE").query(&mut con).unwrap();
}

/// Spawns the binary on free ports with `env` set; the memcached and RESP addresses.
fn spawn_with_env(
    args: &[&str],
    env: (&str, &str),
) -> (std::process::Child, SocketAddr, SocketAddr) {
    let (port, resp_port) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .args(["-l", "127.0.0.1", "-p", &port.to_string()])
        .args(["--resp-port", &resp_port.to_string()])
        .args(args)
        .env(env.0, env.1)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ferrocache");
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    (child, addr(port), addr(resp_port))
}

fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn while_the_snapshot_loads_clients_are_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    snapshot_with_one_key(dir_arg);
    let (child, addr, resp_addr) = spawn_with_env(
        &["--dir", dir_arg],
        ("FERROCACHE_TEST_LOAD_DELAY_MS", "3000"),
    );
    let server = TestServer::adopt(addr, child);
    wait_listening(resp_addr);
    wait_listening(addr);
    let client = redis::Client::open(format!("redis://{resp_addr}/")).unwrap();
    let mut con = client.get_connection().unwrap();
    // The data commands are refused with Redis's words; INFO answers, with the load's figures.
    let get: redis::RedisResult<Option<String>> = con.get("k");
    let error = get.unwrap_err();
    assert_eq!(error.code(), Some("LOADING"), "{error}");
    let ping: redis::RedisResult<String> = redis::cmd("PING").query(&mut con);
    assert_eq!(ping.unwrap_err().code(), Some("LOADING"));
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("loading:1\r\n"), "{info}");
    assert!(info.contains("loading_total_bytes:"), "{info}");
    assert!(info.contains("loading_loaded_perc:"), "{info}");
    // memcached clients: SERVER_ERROR loading, and stats say so.
    let mut mc = server.connect();
    mc.roundtrip(b"get k\r\n", b"SERVER_ERROR loading\r\n");
    mc.roundtrip(b"set k 0 0 1\r\nx\r\n", b"SERVER_ERROR loading\r\n");
    assert_eq!(mc.stat("snapshot_loading"), 1);
    // Once loaded, everything is served, and the write refused meanwhile changed nothing.
    wait_for(&mut con, "loading", "0");
    let k: String = con.get("k").unwrap();
    assert_eq!(k, "v");
    mc.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    assert_eq!(mc.stat("snapshot_loading"), 0);
}

#[test]
fn a_damaged_snapshot_stops_the_start_when_so_configured() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    snapshot_with_one_key(dir_arg);
    let path = dir.path().join("dump.fcs");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
    let config = dir.path().join("ferrocache.toml");
    std::fs::write(&config, "[persistence]\non_load_error = \"exit\"\n").unwrap();
    let config_arg = config.to_str().unwrap();
    let (mut child, _, _) = spawn_with_env(&["--dir", dir_arg, "--config", config_arg], ("_", ""));
    let status = common::wait_exit(&mut child, Duration::from_secs(20));
    assert!(!status.success(), "a refused snapshot must stop the start");
    // The file is left as it was, for an operator to look at.
    assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len() - 5);
}

#[test]
fn shutdown_nosave_saves_nothing_and_shutdown_save_saves() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let snapshot = dir.path().join("dump.fcs");
    {
        // With save rules, NOSAVE still saves nothing.
        let mut server = TestServer::start_with_resp(&["--dir", dir_arg, "--save", "3600 1"]);
        let mut con = server.redis();
        let _: () = con.set("a", "1").unwrap();
        let bad: redis::RedisResult<()> = redis::cmd("SHUTDOWN")
            .arg("SAVE")
            .arg("NOSAVE")
            .query(&mut con);
        assert!(bad.unwrap_err().to_string().contains("syntax error"));
        let abort: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("ABORT").query(&mut con);
        assert!(abort
            .unwrap_err()
            .to_string()
            .contains("No shutdown in progress"));
        let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
        let child = server.child.as_mut().unwrap();
        assert!(common::wait_exit(child, Duration::from_secs(20)).success());
    }
    assert!(!snapshot.exists(), "SHUTDOWN NOSAVE wrote a snapshot");
    {
        // Without rules, SAVE saves.
        let mut server = TestServer::start_with_resp(&["--dir", dir_arg]);
        let mut con = server.redis();
        let _: () = con.set("b", "2").unwrap();
        let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut con);
        let child = server.child.as_mut().unwrap();
        assert!(common::wait_exit(child, Duration::from_secs(20)).success());
    }
    let server = start_loaded(&["--dir", dir_arg]);
    let mut con = server.redis();
    let b: String = con.get("b").unwrap();
    assert_eq!(b, "2");
    // Inside MULTI it is refused and the transaction fails.
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let queued: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(&mut con);
    assert!(queued
        .unwrap_err()
        .to_string()
        .contains("not allowed inside a transaction"));
    let exec: redis::RedisResult<()> = redis::cmd("EXEC").query(&mut con);
    assert_eq!(exec.unwrap_err().code(), Some("EXECABORT"));
}

#[test]
fn memcached_clients_save_and_see_the_snapshot_state_in_stats() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    {
        let server = TestServer::start(&["--dir", dir_arg]);
        let mut c = server.connect();
        c.roundtrip(b"set mc 5 0 2\r\nhi\r\n", b"STORED\r\n");
        assert_eq!(c.stat("snapshot_changes_since_save"), 1);
        c.roundtrip(b"save\r\n", b"OK\r\n");
        assert_eq!(c.stat("snapshot_saves"), 1);
        assert_eq!(c.stat("snapshot_changes_since_save"), 0);
        c.roundtrip(b"set mc2 0 0 2\r\nho\r\n", b"STORED\r\n");
        c.roundtrip(b"bgsave\r\n", b"OK\r\n");
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.stat("snapshot_saves") < 2 {
            assert!(Instant::now() < deadline, "bgsave never finished");
            std::thread::sleep(Duration::from_millis(20));
        }
        c.roundtrip(b"save now\r\n", b"ERROR\r\n");
    }
    let server = start_loaded(&["--dir", dir_arg]);
    let mut c = server.connect();
    c.roundtrip(
        b"get mc mc2\r\n",
        b"VALUE mc 5 2\r\nhi\r\nVALUE mc2 0 2\r\nho\r\nEND\r\n",
    );
    assert_eq!(c.stat("snapshot_last_load_items"), 2);
}

#[test]
fn kill_9_during_bgsave_leaves_the_previous_snapshot_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    {
        let server = TestServer::start_with_resp(&["--dir", dir_arg, "-m", "512"]);
        let mut con = server.redis();
        let _: () = con.set("old", "kept").unwrap();
        let _: String = redis::cmd("SAVE").query(&mut con).unwrap();
        // Enough data that the next save takes a while.
        let mut pipe = redis::pipe();
        for i in 0..3000u64 {
            pipe.set(format!("new{i}"), common::incompressible(16 * 1024, i))
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        let started: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
        assert_eq!(started, "Background saving started");
        wait_for(&mut con, "rdb_bgsave_in_progress", "1");
        // `server` drops here: SIGKILL, mid-save.
    }
    let server = start_loaded(&["--dir", dir_arg, "-m", "512"]);
    let mut con = server.redis();
    let old: String = con.get("old").unwrap();
    assert_eq!(old, "kept");
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 1, "the half-written save must not be the one loaded");
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
