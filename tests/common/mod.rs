//! Shared helpers of the integration tests: start the real `ferrocache` binary on free
//! loopback ports, wait until it accepts (never a fixed sleep), and talk raw bytes to it.
//!
//! `FERROCACHE_TEST_ADDR=host:port` points the protocol tests at an already running server
//! (real memcached, say) instead of spawning one; tests that need flags skip that mode.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server; killed when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The RESP listener, when started with [`TestServer::start_with_resp`].
    pub resp_addr: Option<SocketAddr>,
    pub child: Option<Child>,
    /// The snapshot directory (`--dir`) unless the test names one: never the working
    /// directory, so no test loads or leaves a `dump.fcs` there.
    _dir: Option<tempfile::TempDir>,
}

/// Whether process `pid` holds a socket listening on TCP `port` (from /proc/net/tcp{,6} and
/// the process's descriptors), so a test never mistakes another test's server for its own.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let wanted = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1, state field 3 (0A = LISTEN), inode field 9.
            if fields.len() > 9 && fields[1].ends_with(&wanted) && fields[3] == "0A" {
                inodes.push(format!("socket:[{}]", fields[9]));
            }
        }
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

/// A port nobody listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestServer {
    /// Starts the binary with a memcached port and a RESP port, both free.
    pub fn start_with_resp(args: &[&str]) -> TestServer {
        for _attempt in 0..5 {
            let resp_port = free_port();
            let port_text = resp_port.to_string();
            let mut all = vec!["--resp-port", port_text.as_str()];
            all.extend_from_slice(args);
            let mut server = TestServer::start(&all);
            let resp_addr: SocketAddr = format!("127.0.0.1:{resp_port}").parse().unwrap();
            let pid = server.child.as_ref().map(Child::id);
            if pid.is_none_or(|pid| listens_on(pid, resp_port))
                && TcpStream::connect(resp_addr).is_ok()
            {
                server.resp_addr = Some(resp_addr);
                return server;
            }
        }
        panic!("ferrocache did not start with a RESP port");
    }

    /// A `redis` crate connection to the RESP listener.
    pub fn redis(&self) -> redis::Connection {
        let addr = self.resp_addr.expect("started with a RESP port");
        let client = redis::Client::open(format!("redis://{addr}/")).expect("redis client");
        client.get_connection().expect("redis connection")
    }

    /// A raw connection to the RESP listener.
    pub fn connect_resp(&self) -> Conn {
        let stream = TcpStream::connect(self.resp_addr.expect("RESP port")).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Conn { stream }
    }

    /// Starts the binary with `-l 127.0.0.1 -p <free port>` plus `args` (`--resp-port 0`
    /// unless `args` names one).
    pub fn start(args: &[&str]) -> TestServer {
        if let Ok(addr) = std::env::var("FERROCACHE_TEST_ADDR") {
            if args.is_empty() {
                return TestServer {
                    addr: addr.parse().expect("FERROCACHE_TEST_ADDR is host:port"),
                    resp_addr: None,
                    child: None,
                    _dir: None,
                };
            }
        }
        for _attempt in 0..5 {
            let port = free_port();
            let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocache"));
            command.args(["-l", "127.0.0.1", "-p", &port.to_string()]);
            if !args.contains(&"--resp-port") {
                command.args(["--resp-port", "0"]);
            }
            let dir = (!args.contains(&"--dir")).then(|| tempfile::tempdir().expect("temp dir"));
            if let Some(dir) = &dir {
                command.arg("--dir").arg(dir.path());
            }
            let mut child = command
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn ferrocache");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: most likely a port was taken meanwhile; try another
                }
                // Another test's server may have taken the port between free_port() and our
                // bind: only a listener owned by our child counts.
                if listens_on(child.id(), port) && TcpStream::connect(addr).is_ok() {
                    return TestServer {
                        addr,
                        resp_addr: None,
                        child: Some(child),
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("ferrocache did not start");
    }

    /// A server this test spawned itself, listening on `addr`.
    pub fn adopt(addr: SocketAddr, child: Child) -> TestServer {
        TestServer {
            addr,
            resp_addr: None,
            child: Some(child),
            _dir: None,
        }
    }

    pub fn connect(&self) -> Conn {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream }
    }

    /// A `memcache` crate client over the text protocol.
    pub fn client(&self) -> memcache::Client {
        memcache::Client::connect(format!(
            "memcache://{}?timeout=10&protocol=ascii",
            self.addr
        ))
        .expect("memcache client")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("spawned server");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        wait_exit(child, Duration::from_secs(10))
    }
}

/// Waits up to `limit` for the child to exit.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw client connection.
pub struct Conn {
    pub stream: TcpStream,
}

impl Conn {
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.stream.read_exact(&mut buf).expect("read reply");
        buf
    }

    /// Sends `request` and asserts the reply is exactly `expected`.
    pub fn roundtrip(&mut self, request: &[u8], expected: &[u8]) {
        self.send(request);
        let got = self.read_exact(expected.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "reply to {:?}",
            String::from_utf8_lossy(&request[..request.len().min(120)])
        );
    }

    /// Reads until the buffer ends with `terminator`.
    pub fn read_until(&mut self, terminator: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut byte = [0u8; 4096];
        while !out.ends_with(terminator) {
            let n = self.stream.read(&mut byte).expect("read");
            assert!(
                n > 0,
                "connection closed before {:?}",
                String::from_utf8_lossy(terminator)
            );
            out.extend_from_slice(&byte[..n]);
        }
        out
    }

    /// True if the server closes the connection (EOF or reset) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// `stats` as (name, value) pairs.
    pub fn stats(&mut self, group: &str) -> Vec<(String, String)> {
        let cmd = if group.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {group}\r\n")
        };
        self.send(cmd.as_bytes());
        let text = String::from_utf8(self.read_until(b"END\r\n")).unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("STAT "))
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    pub fn stat(&mut self, name: &str) -> u64 {
        self.stats("")
            .into_iter()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("no stat {name}"))
            .1
            .parse()
            .unwrap()
    }
}

/// Resident memory of a process in bytes (Linux /proc).
pub fn rss_bytes(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS") * 1024
}

/// The kernel's record of a process's peak resident memory (VmHWM), in bytes.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM") * 1024
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `len` bytes of noise (xorshift), which zstd cannot shrink: for tests that fill memory and
/// must not have the store's compression make values smaller than they look.
#[allow(dead_code)]
pub fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A RESP request of `args`.
pub fn request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// Sends `args` and reads one line-terminated reply chunk (enough for the simple replies
/// these tests check, which all fit one read).
pub fn ask(conn: &mut Conn, args: &[&str]) -> String {
    conn.send(&request(args));
    String::from_utf8_lossy(&conn.read_until(b"\r\n")).into_owned()
}
