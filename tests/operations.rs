//! Running ferrocache as a service: `--check-config`, SIGHUP reload, journald-form logging
//! when `JOURNAL_STREAM` names stderr, and `READY=1` on systemd's notify socket only once the
//! listeners are bound (the test plays the notify socket itself, so no systemd is needed).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{free_port, listens_on, wait_exit, TestServer};

/// Spawns the binary on a free memcached port (RESP off) with `args`, `env` and the stderr
/// `make_stderr` gives, and waits until that port is listening. Another test may take the
/// port between `free_port` and the bind: then it tries again on another.
fn spawn(args: &[&str], env: &[(&str, &str)], make_stderr: impl Fn() -> Stdio) -> TestServer {
    for _attempt in 0..5 {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocache"));
        command
            .args(["-l", "127.0.0.1", "-p", &port.to_string()])
            .args(["--resp-port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(make_stderr());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut server = TestServer::adopt(
            format!("127.0.0.1:{port}").parse().unwrap(),
            command.spawn().expect("spawn ferrocache"),
        );
        let child = server.child.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listens_on(child.id(), port) && child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "ferrocache did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        if listens_on(child.id(), port) {
            return server;
        }
    }
    panic!("ferrocache did not start in 5 attempts");
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    let sent = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(sent, 0, "kill");
}

/// Lines of the child's stderr, read on a thread, for waiting on a log line.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a log line containing every one of `words`; panics with the lines seen.
fn wait_for_line(lines: &mpsc::Receiver<String>, words: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if words.iter().all(|w| line.contains(w)) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no log line with {words:?}; saw {seen:#?}");
}

fn limit_maxbytes(server: &TestServer) -> u64 {
    server.connect().stat("limit_maxbytes")
}

fn check_config(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .args(["--check-config", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .expect("run ferrocache --check-config")
}

#[test]
fn check_config_accepts_the_shipped_file_and_rejects_a_bad_one() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/ferrocache.toml");
    let output = check_config(&shipped);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[store]\neviction_policy = \"sometimes\"\n").unwrap();
    let output = check_config(&bad);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("store.eviction_policy"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // SASL on with a password file that is not there: start-up would fail, so the check does.
    std::fs::write(
        &bad,
        format!(
            "[sasl]\nenabled = true\npassword_file = \"{}\"\n",
            dir.path().join("missing").display()
        ),
    )
    .unwrap();
    let output = check_config(&bad);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing"));
}

#[test]
fn sighup_applies_live_settings_logs_restart_only_ones_and_survives_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.toml");
    std::fs::write(
        &path,
        "[store]\nmemory_limit = \"64MiB\"\n[log]\nverbosity = 1\n",
    )
    .unwrap();
    let mut server = spawn(&["--config", path.to_str().unwrap()], &[], Stdio::piped);
    let lines = stderr_lines(server.child.as_mut().unwrap());
    assert_eq!(limit_maxbytes(&server), 64 << 20);

    std::fs::write(
        &path,
        "[store]\nmemory_limit = \"32MiB\"\nitem_size_max = \"2MiB\"\n[log]\nverbosity = 1\n",
    )
    .unwrap();
    signal(server.child.as_ref().unwrap(), libc::SIGHUP);
    wait_for_line(&lines, &["store.memory_limit", "32MiB"]);
    wait_for_line(&lines, &["store.item_size_max", "restart-only"]);
    assert_eq!(limit_maxbytes(&server), 32 << 20);
    let item_size_max = server
        .connect()
        .stats("settings")
        .into_iter()
        .find(|(name, _)| name == "item_size_max")
        .expect("item_size_max in stats settings")
        .1;
    assert_eq!(
        item_size_max,
        (1 << 20).to_string(),
        "restart-only: unchanged"
    );

    std::fs::write(&path, "[store]\nmemory_limit = \"16MiB\"\nbogus = 1\n").unwrap();
    signal(server.child.as_ref().unwrap(), libc::SIGHUP);
    wait_for_line(&lines, &["keeping the running config", "bogus"]);
    assert_eq!(
        limit_maxbytes(&server),
        32 << 20,
        "a bad file changes nothing"
    );
    assert!(server.terminate().success());
}

#[test]
fn logs_carry_syslog_priorities_and_no_timestamp_when_stderr_is_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    for journal in [true, false] {
        let log_path = dir.path().join(format!("stderr-{journal}.log"));
        let log_file = std::fs::File::create(&log_path).unwrap();
        let meta = log_file.metadata().unwrap();
        // systemd sets JOURNAL_STREAM to the device and inode of the service's stderr; a
        // value naming another file must leave the plain format.
        let inode = if journal { meta.ino() } else { meta.ino() + 1 };
        let stream = format!("{}:{}", meta.dev(), inode);
        let mut server = spawn(&["-v"], &[("JOURNAL_STREAM", &stream)], || {
            Stdio::from(log_file.try_clone().unwrap())
        });
        let port = server.addr.port();
        assert!(server.terminate().success(), "SIGTERM exits 0");
        let text = std::fs::read_to_string(&log_path).unwrap();
        let listening = format!("memcached protocol on tcp 127.0.0.1:{port}");
        assert!(text.contains(&listening), "{text}");
        if journal {
            assert!(text.contains(&format!("<6>{listening}\n")), "{text}");
            for line in text.lines() {
                let bytes = line.as_bytes();
                assert!(
                    bytes.len() > 3
                        && bytes[0] == b'<'
                        && (b'0'..=b'7').contains(&bytes[1])
                        && bytes[2] == b'>'
                        && !line.contains(" INFO ")
                        && !line.contains("Z "),
                    "not a journald line: {line:?}"
                );
            }
        } else {
            assert!(!text.contains("<6>"), "{text}");
            assert!(text.contains(" INFO "), "{text}");
        }
    }
}

/// Receives one datagram from the notify socket, or None after `limit`.
fn notification(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn ready_is_sent_only_once_every_listener_is_bound() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // Another test may take a port between free_port and the bind: then the server exits
    // without READY (as checked below) and this tries again on other ports.
    let (mut server, port, resp_port, ready) = (0..5)
        .find_map(|_attempt| {
            let (port, resp_port) = (free_port(), free_port());
            let child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
                .args(["-l", "127.0.0.1", "-p", &port.to_string()])
                .args(["--resp-port", &resp_port.to_string()])
                .env("NOTIFY_SOCKET", &socket_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            // Killed on drop, so a failed assertion leaves no server behind.
            let mut server = TestServer::adopt(format!("127.0.0.1:{port}").parse().unwrap(), child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(message) = notification(&socket, Duration::from_millis(50)) {
                    return Some((server, port, resp_port, message));
                }
                if server.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                    return None;
                }
            }
            panic!("no notification within 10 s");
        })
        .expect("ferrocache did not start in 5 attempts");
    let child = server.child.as_mut().unwrap();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // At READY both listeners already listen: systemd may start clients right now.
    assert!(
        listens_on(child.id(), port),
        "memcached port not bound at READY"
    );
    assert!(
        listens_on(child.id(), resp_port),
        "RESP port not bound at READY"
    );
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopping = notification(&socket, Duration::from_secs(10)).expect("STOPPING");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(wait_exit(child, Duration::from_secs(10)).success());

    // The RESP port is taken: start-up fails, and systemd must never have heard READY.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .args(["-l", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["--resp-port", &taken_port])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    server.child = Some(child);
    let status = wait_exit(server.child.as_mut().unwrap(), Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "a bind failure exits 1");
    let heard = notification(&socket, Duration::from_millis(200));
    assert!(
        heard.as_deref().is_none_or(|m| !m.contains("READY=1")),
        "READY sent although a listener could not bind: {heard:?}"
    );
}

#[test]
fn config_rewrite_writes_changed_live_settings_into_the_file_keeping_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.toml");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/ferrocache.toml");
    std::fs::copy(&shipped, &path).unwrap();
    let config = path.to_str().unwrap();
    {
        let server = TestServer::start_with_resp(&["--config", config]);
        let mut con = server.redis();
        for (name, value) in [
            ("maxmemory", "100mb"),
            ("timeout", "30"),
            ("notify-keyspace-events", "KEA"),
            ("slowlog-max-len", "50"),
        ] {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(value)
                .query(&mut con)
                .unwrap();
        }
        // Sentinel's failover makes a node a replica, then rewrites: the role must survive a
        // restart.
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg("1")
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let original = std::fs::read_to_string(&shipped).unwrap();
    // Only the changed keys differ; every comment and other line is where it was.
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        vec![
            ("idle_timeout_secs = 0", "idle_timeout_secs = 30"),
            ("memory_limit = \"64MiB\"", "memory_limit = \"100MiB\""),
            (
                "notify_keyspace_events = \"\"",
                "notify_keyspace_events = \"AKE\""
            ),
            ("replicaof = \"\"", "replicaof = \"127.0.0.1 1\""),
            ("slowlog_max_len = 128", "slowlog_max_len = 50"),
        ]
    );
    assert_eq!(text.lines().count(), original.lines().count());
    // A restart from the file comes back with the rewritten settings.
    let server = TestServer::start_with_resp(&["--config", config]);
    let mut con = server.redis();
    let timeout: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("timeout")
        .query(&mut con)
        .unwrap();
    assert_eq!(timeout[1], "30");
    // Without a config file there is nothing to rewrite.
    let bare = TestServer::start_with_resp(&[]);
    let refused: redis::RedisResult<()> =
        redis::cmd("CONFIG").arg("REWRITE").query(&mut bare.redis());
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("running without a config file"));
}
