//! Automatic failover by a stock Redis Sentinel (issue 23), on the real binary:
//! - what a Sentinel reads from a node and sends it, without a Sentinel: `replica-priority`,
//!   `replica-announce-ip/port`, `replica-announced` (config file, CONFIG SET/GET/REWRITE,
//!   INFO, the primary's INFO and ROLE), CLIENT KILL TYPE master | replica | normal;
//! - a failover run by three Debian `redis-sentinel` processes over one primary and two
//!   replicas on loopback: SIGKILL of the primary under a memcached + RESP write load, the
//!   kill→writable time printed, the other replica following by partial resync, ROLE on every
//!   node, and the old primary restarted as a replica of the new one (from the config file
//!   Sentinel's CONFIG REWRITE left).
//!
//! The Sentinel test prints a note and passes when `redis-sentinel` is not installed (CI
//! installs it, `.ci/run`).

mod common;
#[allow(dead_code)] // shared with tests/replication.rs, which uses all of it
mod replication_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::TestServer;
use replication_support::*;

fn config_get(server: &TestServer, name: &str) -> String {
    let mut con = server.redis();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query(&mut con)
        .unwrap();
    got.get(1).cloned().unwrap_or_default()
}

fn config_set(server: &TestServer, name: &str, value: &str) -> redis::RedisResult<()> {
    let mut con = server.redis();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(&mut con)
}

fn client_kill_type(server: &TestServer, kind: &str) -> i64 {
    let mut con = server.redis();
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg(kind)
        .query(&mut con)
        .unwrap()
}

#[test]
fn replica_priority_and_announced_address_reach_info_role_and_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let primary = TestServer::start_with_resp(&[]);
    let config = dir.path().join("replica.toml");
    std::fs::write(
        &config,
        format!(
            "# kept by CONFIG REWRITE\n[replication]\nreplicaof = \"127.0.0.1 {}\"\nreplica_priority = 7\nreplica_announce_ip = \"10.9.8.7\"\nreplica_announce_port = 4242\n",
            resp_port(&primary)
        ),
    )
    .unwrap();
    let replica = TestServer::start_with_resp(&["--config", config.to_str().unwrap()]);
    wait_caught_up(&primary, &[&replica]);
    // The primary lists the replica where it said it is reachable.
    let listed = field(&primary, "replication", "slave0");
    assert!(
        listed.starts_with("ip=10.9.8.7,port=4242,state=online,"),
        "{listed}"
    );
    let mut con = primary.redis();
    let role: (String, i64, Vec<(String, String, String)>) =
        redis::cmd("ROLE").query(&mut con).unwrap();
    assert_eq!(
        (role.2[0].0.as_str(), role.2[0].1.as_str()),
        ("10.9.8.7", "4242")
    );

    // INFO shows the priority and replica_announced as set, and follows CONFIG SET.
    assert_eq!(field(&replica, "replication", "slave_priority"), "7");
    assert_eq!(field(&replica, "replication", "replica_announced"), "1");
    config_set(&replica, "replica-priority", "0").unwrap();
    config_set(&replica, "replica-announced", "no").unwrap();
    assert_eq!(field(&replica, "replication", "slave_priority"), "0");
    assert_eq!(field(&replica, "replication", "replica_announced"), "0");
    assert_eq!(config_get(&replica, "slave-priority"), "0");
    assert_eq!(config_get(&replica, "replica-announce-ip"), "10.9.8.7");
    assert_eq!(config_get(&replica, "replica-announce-port"), "4242");
    assert_eq!(config_get(&replica, "replica-announced"), "no");
    // Redis's refusals, under the setting's canonical name.
    let refused = config_set(&replica, "slave-priority", "-1").unwrap_err();
    assert!(
        refused.to_string().contains(
            "CONFIG SET failed (possibly related to argument 'replica-priority') - argument must be between 0 and 2147483647 inclusive"
        ),
        "{refused}"
    );
    let refused = config_set(&replica, "replica-announce-port", "65536").unwrap_err();
    assert!(
        refused.to_string().contains("between 0 and 65535"),
        "{refused}"
    );
    let refused = config_set(&replica, "replica-announced", "maybe").unwrap_err();
    assert!(refused.to_string().contains("'yes' or 'no'"), "{refused}");

    // A new announce address is used at the next handshake (CLIENT KILL TYPE master).
    config_set(&replica, "replica-announce-ip", "").unwrap();
    config_set(&replica, "replica-announce-port", "0").unwrap();
    assert_eq!(client_kill_type(&replica, "master"), 1);
    wait_for("the replica to reattach", Duration::from_secs(30), || {
        field(&primary, "replication", "slave0").starts_with(&format!(
            "ip=127.0.0.1,port={},state=online",
            resp_port(&replica)
        ))
    });

    // CONFIG REWRITE keeps the file's comment and writes the live values.
    let mut con = replica.redis();
    let () = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("# kept by CONFIG REWRITE\n"), "{text}");
    for line in [
        "replica_priority = 0",
        "replica_announce_ip = \"\"",
        "replica_announce_port = 0",
        "replica_announced = false",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn client_kill_type_master_replica_and_normal_follow_redis() {
    let primary = TestServer::start_with_resp(&[]);
    let replica = start_replica_of(resp_port(&primary), &[]);
    set_many(&primary, 0, 50, 10);
    wait_caught_up(&primary, &[&replica]);
    assert_eq!(field(&primary, "stats", "sync_full"), "1");

    // TYPE master on the replica drops its link; it comes back and continues.
    assert_eq!(client_kill_type(&replica, "master"), 1);
    wait_for("a partial resync", Duration::from_secs(30), || {
        field(&primary, "stats", "sync_partial_ok") == "1"
    });
    wait_for("the old link to go", Duration::from_secs(10), || {
        field(&primary, "replication", "connected_slaves") == "1"
    });
    // TYPE replica on the primary closes the replica's link; it continues again.
    assert_eq!(client_kill_type(&primary, "replica"), 1);
    wait_for("a second partial resync", Duration::from_secs(30), || {
        field(&primary, "stats", "sync_partial_ok") == "2"
    });
    set_many(&primary, 50, 50, 10);
    wait_caught_up(&primary, &[&replica]);
    assert_eq!(field(&primary, "stats", "sync_full"), "1");
    assert_eq!(dump(&replica), dump(&primary));
    // Nothing to kill: a primary has no master, a replica no replicas.
    assert_eq!(client_kill_type(&primary, "master"), 0);
    assert_eq!(client_kill_type(&replica, "slave"), 0);

    // TYPE normal spares the caller (SKIPME yes) and the replication link, and kills an
    // ordinary client; TYPE pubsub kills the subscriber only.
    let mut bystander = primary.connect_resp();
    let mut subscriber = primary.connect_resp();
    subscriber.roundtrip(
        &resp_command(&[b"SUBSCRIBE", b"__sentinel__:hello"]),
        b"*3\r\n$9\r\nsubscribe\r\n$18\r\n__sentinel__:hello\r\n:1\r\n",
    );
    bystander.roundtrip(&resp_command(&[b"PING"]), b"+PONG\r\n");
    let mut killer = primary.connect_resp();
    killer.roundtrip(
        &resp_command(&[b"CLIENT", b"KILL", b"TYPE", b"normal"]),
        b":1\r\n",
    );
    assert!(bystander.is_closed());
    killer.roundtrip(
        &resp_command(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"]),
        b":1\r\n",
    );
    assert!(subscriber.is_closed());
    killer.roundtrip(&resp_command(&[b"PING"]), b"+PONG\r\n");
    assert_eq!(field(&primary, "replication", "connected_slaves"), "1");
    assert_eq!(field(&replica, "replication", "master_link_status"), "up");
}

// ---------------------------------------------------------------------------------------
// A failover run by stock Sentinels.

fn sentinel_installed() -> bool {
    Command::new("redis-sentinel")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One `redis-sentinel` process on a free loopback port, its config in `dir`.
struct Sentinel {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sentinel {
    fn start(dir: &Path, n: usize, primary_port: u16, down_after_ms: u64) -> Sentinel {
        for _attempt in 0..5 {
            let port = common::free_port();
            let conf = dir.join(format!("sentinel-{n}.conf"));
            let log = dir.join(format!("sentinel-{n}.log"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\nlogfile {}\n\
                     sentinel monitor m 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds m {down_after_ms}\n\
                     sentinel failover-timeout m 10000\n\
                     sentinel parallel-syncs m 1\n",
                    dir.display(),
                    log.display()
                ),
            )
            .unwrap();
            let mut child = Command::new("redis-sentinel")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn redis-sentinel");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile: another one
                }
                if common::listens_on(child.id(), port) {
                    return Sentinel { child, port, log };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-sentinel did not start");
    }

    fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }

    /// `INFO sentinel`'s `master0` line.
    fn master0(&self) -> String {
        let mut con = self.redis();
        let text: String = redis::cmd("INFO").arg("sentinel").query(&mut con).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("master0:"))
            .unwrap_or_default()
            .to_string()
    }

    fn master_port(&self) -> u16 {
        let mut con = self.redis();
        let addr: Vec<String> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg("m")
            .query(&mut con)
            .unwrap();
        addr[1].parse().unwrap()
    }

    fn debug(&self, option: &str, ms: u64) {
        let mut con = self.redis();
        let () = redis::cmd("SENTINEL")
            .arg("DEBUG")
            .arg(option)
            .arg(ms)
            .query(&mut con)
            .unwrap();
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(&self.log) {
                eprintln!("--- sentinel on {} ---\n{log}", self.port);
            }
        }
    }
}

/// A ferrocache node on a given RESP port with its own config file (what Sentinel's CONFIG
/// REWRITE edits).
fn start_node(resp_port: u16, config: &Path) -> TestServer {
    let port = resp_port.to_string();
    let mut server =
        TestServer::start(&["--resp-port", &port, "--config", config.to_str().unwrap()]);
    server.resp_addr = Some(format!("127.0.0.1:{resp_port}").parse().unwrap());
    server
}

/// One RESP command on a fresh connection with short timeouts; the first reply line.
fn quick_resp(addr: SocketAddr, args: &[&[u8]]) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(&resp_command(args)).ok()?;
    read_line(&mut stream)
}

/// A memcached `set` on a fresh connection; the reply line.
fn quick_mc_set(addr: SocketAddr, key: &str, value: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let request = format!("set {key} 0 0 {}\r\n{value}\r\n", value.len());
    stream.write_all(request.as_bytes()).ok()?;
    read_line(&mut stream)
}

fn read_line(stream: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&line[..line.len() - 2]).into_owned())
}

/// Sets its flag when dropped, also while unwinding.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn role(server: &TestServer) -> redis::Value {
    let mut con = server.redis();
    redis::cmd("ROLE").query(&mut con).unwrap()
}

#[test]
fn sentinels_fail_over_a_killed_primary_under_load() {
    if !sentinel_installed() {
        eprintln!("SKIPPED: redis-sentinel is not installed (apt-get install redis-sentinel)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| common::free_port()).collect();
    let configs: Vec<PathBuf> = (0..3)
        .map(|n| dir.path().join(format!("node-{n}.toml")))
        .collect();
    std::fs::write(&configs[0], "# the primary at first\n").unwrap();
    for config in &configs[1..] {
        std::fs::write(
            config,
            format!(
                "# a replica at first\n[replication]\nreplicaof = \"127.0.0.1 {}\"\n",
                ports[0]
            ),
        )
        .unwrap();
    }
    let mut nodes: Vec<Option<TestServer>> = ports
        .iter()
        .zip(&configs)
        .map(|(port, config)| Some(start_node(*port, config)))
        .collect();
    {
        let primary = nodes[0].as_ref().unwrap();
        set_many(primary, 0, 200, 20);
        let replicas: Vec<&TestServer> = nodes[1..].iter().map(|n| n.as_ref().unwrap()).collect();
        wait_caught_up(primary, &replicas);
    }
    let sentinels: Vec<Sentinel> = (0..3)
        .map(|n| Sentinel::start(dir.path(), n, ports[0], 1000))
        .collect();
    wait_for(
        "every sentinel to know both replicas and the other sentinels",
        Duration::from_secs(30),
        || {
            sentinels
                .iter()
                .all(|s| s.master0().ends_with(",slaves=2,sentinels=3"))
        },
    );
    for sentinel in &sentinels {
        // Refresh INFO every second (instead of 10) so the restarted old primary is seen
        // and converted within the test's bounds, as Redis's own Sentinel tests do.
        sentinel.debug("info-period", 1000);
    }

    // Writers: memcached text and RESP, each to whichever node takes writes, until told to
    // stop; every acknowledged write is counted.
    let stop = AtomicBool::new(false);
    let acked = AtomicU64::new(0);
    let first_ack_after_kill_ms = AtomicU64::new(u64::MAX);
    let killed_at: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let mc_addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.as_ref().unwrap().addr).collect();
    let resp_addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
        .collect();
    let (promoted_port, held) = std::thread::scope(|scope| {
        for writer in 0..2u64 {
            let (stop, acked, first, killed_at) =
                (&stop, &acked, &first_ack_after_kill_ms, &killed_at);
            let (mc_addrs, resp_addrs) = (&mc_addrs, &resp_addrs);
            scope.spawn(move || {
                let mut i = 0u64;
                // The node that took the last write is tried first.
                let mut at = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let key = format!("w{writer}-{i}");
                    let mut took = false;
                    for n in (0..3).map(|k| (at + k) % 3) {
                        let ok = if writer == 0 {
                            quick_mc_set(mc_addrs[n], &key, "v").as_deref() == Some("STORED")
                        } else {
                            quick_resp(resp_addrs[n], &[b"SET", key.as_bytes(), b"v"]).as_deref()
                                == Some("+OK")
                        };
                        if ok {
                            acked.fetch_add(1, Ordering::Relaxed);
                            if n != 0 {
                                if let Some(at) = killed_at.get() {
                                    first.fetch_min(
                                        at.elapsed().as_millis() as u64,
                                        Ordering::Relaxed,
                                    );
                                }
                            }
                            at = n;
                            took = true;
                            break;
                        }
                    }
                    if !took {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            });
        }
        // However this scope ends (a failed wait panics), the writers stop.
        let _stop_writers = StopOnDrop(&stop);
        wait_for("the load to start", Duration::from_secs(10), || {
            acked.load(Ordering::Relaxed) > 100
        });
        let child = nodes[0].as_mut().unwrap().child.as_mut().unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = killed_at.set(Instant::now());
        let _ = child.wait();
        // Hold the dead node's ports, so no other test's server takes them and looks like
        // the old primary rebooted: a listener that never answers, as a dead host.
        let held = [mc_addrs[0], resp_addrs[0]].map(|addr| TcpListener::bind(addr).ok());
        wait_for("a replica to take writes", Duration::from_secs(30), || {
            first_ack_after_kill_ms.load(Ordering::Relaxed) != u64::MAX
        });
        let ms = first_ack_after_kill_ms.load(Ordering::Relaxed);
        eprintln!("failover: kill -> writable in {ms} ms (down-after-milliseconds 1000)");
        // Writes go on a little on the new primary, then stop.
        let at = acked.load(Ordering::Relaxed);
        wait_for("writes on the new primary", Duration::from_secs(10), || {
            acked.load(Ordering::Relaxed) > at + 50
        });
        stop.store(true, Ordering::Relaxed);
        wait_for(
            "every sentinel to name the new primary",
            Duration::from_secs(30),
            || {
                let got: Vec<u16> = sentinels.iter().map(Sentinel::master_port).collect();
                got.iter().all(|p| *p == got[0] && *p != ports[0])
            },
        );
        (sentinels[0].master_port(), held)
    });
    let new = ports.iter().position(|p| *p == promoted_port).unwrap();
    let other = 3 - new;
    {
        let promoted = nodes[new].as_ref().unwrap();
        let follower = nodes[other].as_ref().unwrap();
        wait_caught_up(promoted, &[follower]);
        assert_eq!(
            field(follower, "replication", "master_port"),
            promoted_port.to_string()
        );
        // The other replica continued from the promoted one's backlog: no full copy.
        assert_eq!(field(promoted, "stats", "sync_full"), "0");
        assert_eq!(field(promoted, "stats", "sync_partial_ok"), "1");
        assert_eq!(dump(follower), dump(promoted));
        assert!(dump(promoted).len() >= 200);
        let role_new = format!("{:?}", role(promoted));
        assert!(role_new.contains("master"), "{role_new}");
        let role_other = format!("{:?}", role(follower));
        assert!(
            role_other.contains("slave") && role_other.contains(&promoted_port.to_string()),
            "{role_other}"
        );
        // Sentinel's CONFIG REWRITE made both roles survive a restart.
        let promoted_file = std::fs::read_to_string(&configs[new]).unwrap();
        assert!(
            promoted_file.contains("replicaof = \"\""),
            "{promoted_file}"
        );
        let other_file = std::fs::read_to_string(&configs[other]).unwrap();
        assert!(
            other_file.contains(&format!("replicaof = \"127.0.0.1 {promoted_port}\"")),
            "{other_file}"
        );
    }

    // The old primary comes back (from its own config file, which still says primary):
    // Sentinel turns it into a replica of the new one, and rewrites its file.
    nodes[0] = None;
    drop(held);
    nodes[0] = Some(start_node(ports[0], &configs[0]));
    let old = nodes[0].as_ref().unwrap();
    wait_for(
        "the old primary to follow the new one",
        Duration::from_secs(40),
        || {
            let info = info(old, "replication");
            info.get("role").map(String::as_str) == Some("slave")
                && info.get("master_port") == Some(&promoted_port.to_string())
                && info.get("master_link_status").map(String::as_str) == Some("up")
        },
    );
    let old_file = std::fs::read_to_string(&configs[0]).unwrap();
    assert!(
        old_file.starts_with("# the primary at first\n"),
        "{old_file}"
    );
    assert!(
        old_file.contains(&format!("replicaof = \"127.0.0.1 {promoted_port}\"")),
        "{old_file}"
    );
    // Restarted once more, it is a replica from its first second: never a second primary.
    nodes[0] = None;
    nodes[0] = Some(start_node(ports[0], &configs[0]));
    let old = nodes[0].as_ref().unwrap();
    assert_eq!(field(old, "replication", "role"), "slave");
    let masters = nodes
        .iter()
        .filter(|n| field(n.as_ref().unwrap(), "replication", "role") == "master")
        .count();
    assert_eq!(masters, 1);
}
