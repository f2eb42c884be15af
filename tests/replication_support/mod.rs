//! Helpers of `tests/replication.rs`: servers started as replicas, INFO fields, bounded
//! waits, a full key dump (values, flags, CAS, absolute expiries, field expiries), a mixed
//! write load over memcached text, meta, binary and RESP, and a TCP relay that can be cut.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Conn, TestServer};

pub fn start_replica_of(port: u16, extra: &[&str]) -> TestServer {
    let port = port.to_string();
    let mut args = vec!["--replicaof", "127.0.0.1", port.as_str()];
    args.extend_from_slice(extra);
    TestServer::start_with_resp(&args)
}

pub fn resp_port(server: &TestServer) -> u16 {
    server.resp_addr.expect("RESP port").port()
}

/// One INFO section as a map. A connection closed under the request (Sentinel's
/// reconfiguration of a node ends with `CLIENT KILL TYPE normal`) is retried on a new one.
pub fn info(server: &TestServer, section: &str) -> BTreeMap<String, String> {
    let mut failures = Vec::new();
    while failures.len() < 20 {
        let mut con = server.redis();
        match redis::cmd("INFO").arg(section).query::<String>(&mut con) {
            Ok(text) => {
                return text
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                    .collect()
            }
            Err(e) => failures.push(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("INFO {section} failed 20 times: {failures:?}");
}

pub fn field(server: &TestServer, section: &str, name: &str) -> String {
    info(server, section).remove(name).unwrap_or_default()
}

/// Waits (bounded) until `check` holds.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// Waits until every replica's link is up at the primary's offset.
pub fn wait_caught_up(primary: &TestServer, replicas: &[&TestServer]) {
    wait_for("the replicas to catch up", Duration::from_secs(60), || {
        let offset = field(primary, "replication", "master_repl_offset");
        replicas.iter().all(|replica| {
            let info = info(replica, "replication");
            info.get("master_link_status").map(String::as_str) == Some("up")
                && info.get("master_repl_offset") == Some(&offset)
        })
    });
}

/// Every key with its type, value, memcached flags and CAS (strings), and absolute expiry
/// in ms, hash fields with their own expiries.
pub fn dump(server: &TestServer) -> BTreeMap<String, String> {
    let mut con = server.redis();
    let mut mc = Replies::new(server.connect());
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    let mut out = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut con).unwrap();
        let expiry: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(&mut con).unwrap();
        let value = match kind.as_str() {
            "string" => {
                mc.conn.send(format!("mg {key} v f c\r\n").as_bytes());
                let head = mc.line();
                let len: usize = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                let data = mc.exact(len + 2);
                format!(
                    "{} {}",
                    head.trim_end(),
                    String::from_utf8_lossy(&data).trim_end()
                )
            }
            "hash" => {
                let all: Vec<String> = redis::cmd("HGETALL").arg(&key).query(&mut con).unwrap();
                let mut fields: Vec<String> = all
                    .chunks(2)
                    .map(|pair| {
                        let at: Vec<i64> = redis::cmd("HPEXPIRETIME")
                            .arg(&key)
                            .arg("FIELDS")
                            .arg(1)
                            .arg(&pair[0])
                            .query(&mut con)
                            .unwrap();
                        format!("{}={}@{:?}", pair[0], pair[1], at)
                    })
                    .collect();
                fields.sort();
                fields.join(",")
            }
            "zset" => {
                let all: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(&mut con)
                    .unwrap();
                all.join(",")
            }
            other => panic!("unexpected type {other} of {key}"),
        };
        out.insert(key, format!("{kind} {expiry} {value}"));
    }
    out
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A buffered reader over a raw connection (replies read line by line never lose the bytes
/// that arrived after the line).
pub struct Replies {
    pub conn: Conn,
    buf: Vec<u8>,
}

impl Replies {
    pub fn new(conn: Conn) -> Replies {
        Replies {
            conn,
            buf: Vec::new(),
        }
    }

    pub fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.conn.stream.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    pub fn line(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..at + 2]).into_owned();
                self.buf.drain(..at + 2);
                return line;
            }
            self.fill();
        }
    }

    pub fn exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill();
        }
        self.buf.drain(..n).collect()
    }

    /// One RESP reply (any type); returns its first line.
    pub fn reply(&mut self) -> String {
        let line = self.line();
        match line.as_bytes()[0] {
            b'$' => {
                let len: i64 = line[1..].trim_end().parse().unwrap();
                if len >= 0 {
                    self.exact(len as usize + 2);
                }
            }
            b'*' => {
                let n: i64 = line[1..].trim_end().parse().unwrap();
                for _ in 0..n.max(0) {
                    self.reply();
                }
            }
            _ => {}
        }
        line
    }
}

/// A binary-protocol request (memcached `protocol_binary.h`): magic 0x80, opcode, key,
/// extras, value.
pub fn binary_request(opcode: u8, key: &[u8], extras: &[u8], value: &[u8]) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    let mut out = vec![0x80, opcode];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Reads binary responses until the NOOP's (opcode 0x0a); returns the statuses before it.
pub fn read_binary_until_noop(conn: &mut Conn) -> Vec<u16> {
    let mut statuses = Vec::new();
    loop {
        let header = conn.read_exact(24);
        let body = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
        conn.read_exact(body);
        if header[1] == 0x0a {
            return statuses;
        }
        statuses.push(u16::from_be_bytes([header[6], header[7]]));
    }
}

/// Sends `ops` mixed writes over four connections (text, meta, binary, RESP) in batches,
/// with one FLUSHALL in the middle; every batch is finished before the next starts.
pub fn mixed_writes(primary: &TestServer, ops: usize, seed: u64) {
    let mut rng = Rng(seed | 1);
    let mut text = primary.connect();
    let mut meta = primary.connect();
    let mut binary = primary.connect();
    let mut resp = Replies::new(primary.connect_resp());
    const KEYS: u64 = 1500;
    const BATCH: usize = 400;
    let mut done = 0;
    let mut flushed = false;
    while done < ops {
        let (mut t, mut m, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut resp_count = 0;
        for _ in 0..BATCH {
            let i = rng.below(KEYS);
            let value = format!(
                "v{}-{}",
                rng.below(1_000_000),
                "x".repeat(rng.below(40) as usize)
            );
            let flags = rng.below(1 << 16);
            let ttl = [0u64, 300, 1000, 5000][rng.below(4) as usize];
            match rng.below(20) {
                0..=3 => t.extend_from_slice(
                    format!(
                        "set s:{i} {flags} {ttl} {} noreply\r\n{value}\r\n",
                        value.len()
                    )
                    .as_bytes(),
                ),
                4 => t.extend_from_slice(format!("delete s:{i} noreply\r\n").as_bytes()),
                5 => t.extend_from_slice(format!("incr n:{i} 3 noreply\r\n").as_bytes()),
                6 => t.extend_from_slice(format!("touch s:{i} 2000 noreply\r\n").as_bytes()),
                7 | 8 => m.extend_from_slice(
                    format!("ms s:{i} {} F{flags} T{ttl} q\r\n{value}\r\n", value.len()).as_bytes(),
                ),
                9 => m.extend_from_slice(format!("md s:{i} q\r\n").as_bytes()),
                10 | 11 => {
                    let mut extras = (flags as u32).to_be_bytes().to_vec();
                    extras.extend_from_slice(&(ttl as u32).to_be_bytes());
                    b.extend(binary_request(
                        0x11,
                        format!("s:{i}").as_bytes(),
                        &extras,
                        value.as_bytes(),
                    ));
                }
                12 => {
                    // INCREMENTQ by 2, created at 10 when missing.
                    let mut extras = 2u64.to_be_bytes().to_vec();
                    extras.extend_from_slice(&10u64.to_be_bytes());
                    extras.extend_from_slice(&0u32.to_be_bytes());
                    b.extend(binary_request(
                        0x15,
                        format!("n:{i}").as_bytes(),
                        &extras,
                        b"",
                    ));
                }
                13 => {
                    let px = (100_000 + rng.below(100_000)).to_string();
                    r.extend(resp_command(&[
                        b"SET",
                        format!("s:{i}").as_bytes(),
                        value.as_bytes(),
                        b"PX",
                        px.as_bytes(),
                    ]));
                    resp_count += 1;
                }
                14 => {
                    r.extend(resp_command(&[
                        b"INCRBY",
                        format!("n:{i}").as_bytes(),
                        b"7",
                    ]));
                    resp_count += 1;
                }
                15 | 16 => {
                    let key = format!("h:{}", i % 300);
                    let name = format!("f{}", rng.below(20));
                    r.extend(resp_command(&[
                        b"HSET",
                        key.as_bytes(),
                        name.as_bytes(),
                        value.as_bytes(),
                    ]));
                    if rng.below(3) == 0 {
                        let ms = (200_000 + rng.below(100_000)).to_string();
                        r.extend(resp_command(&[
                            b"HPEXPIRE",
                            key.as_bytes(),
                            ms.as_bytes(),
                            b"FIELDS",
                            b"1",
                            name.as_bytes(),
                        ]));
                        resp_count += 1;
                    }
                    resp_count += 1;
                }
                17 => {
                    let key = format!("h:{}", i % 300);
                    let name = format!("f{}", rng.below(20));
                    r.extend(resp_command(&[b"HDEL", key.as_bytes(), name.as_bytes()]));
                    resp_count += 1;
                }
                18 => {
                    let key = format!("z:{}", i % 300);
                    let member = format!("m{}", rng.below(30));
                    let score = format!("{}.25", rng.below(1000));
                    r.extend(resp_command(&[
                        b"ZADD",
                        key.as_bytes(),
                        score.as_bytes(),
                        member.as_bytes(),
                    ]));
                    resp_count += 1;
                }
                _ => {
                    let key = format!("z:{}", i % 300);
                    let member = format!("m{}", rng.below(30));
                    if rng.below(2) == 0 {
                        r.extend(resp_command(&[b"ZREM", key.as_bytes(), member.as_bytes()]));
                    } else {
                        r.extend(resp_command(&[b"DEL", format!("s:{i}").as_bytes()]));
                    }
                    resp_count += 1;
                }
            }
        }
        t.extend_from_slice(b"mn\r\n");
        m.extend_from_slice(b"mn\r\n");
        b.extend(binary_request(0x0a, b"", b"", b""));
        text.send(&t);
        meta.send(&m);
        binary.send(&b);
        resp.conn.send(&r);
        text.read_until(b"MN\r\n");
        meta.read_until(b"MN\r\n");
        read_binary_until_noop(&mut binary);
        for _ in 0..resp_count {
            let reply = resp.reply();
            assert!(!reply.starts_with('-'), "RESP error {reply}");
        }
        done += BATCH;
        if !flushed && done >= ops / 2 {
            resp.conn.send(&resp_command(&[b"FLUSHALL"]));
            assert_eq!(resp.reply(), "+OK\r\n");
            flushed = true;
        }
    }
}

/// A TCP relay the test can cut: every relayed connection is shut down, and new ones are
/// refused until it is restored.
pub struct Relay {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub fn to(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (open2, streams2) = (open.clone(), streams.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !open2.load(Ordering::SeqCst) {
                    continue; // dropped: refused while cut
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                streams2.lock().unwrap().extend([client, server]);
            }
        });
        Relay {
            addr,
            open,
            streams,
        }
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

pub fn set_many(server: &TestServer, from: usize, count: usize, value_len: usize) {
    let mut conn = server.connect();
    let value = "y".repeat(value_len);
    let mut batch = Vec::new();
    for i in from..from + count {
        batch.extend_from_slice(
            format!("set k{i} {i} 0 {value_len} noreply\r\n{value}\r\n").as_bytes(),
        );
    }
    batch.extend_from_slice(b"mn\r\n");
    conn.send(&batch);
    conn.read_until(b"MN\r\n");
}
