//! Overload and fault tests on the real binary, each bounded in time: thousands of
//! connections, connection storms, slow and dying clients, flush_all under load. After each,
//! the server must answer, its counters must add up, its memory must be back near where it
//! started, and every acknowledged write that was not deleted must still be readable.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{rss_bytes, TestServer};

fn wait_for_connections(server: &TestServer, wanted: u64) {
    let mut c = server.connect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Our own connection counts too.
        let now = c.stat("curr_connections");
        if now == wanted + 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "curr_connections stuck at {now}, wanted {}",
            wanted + 1
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn five_thousand_concurrent_connections() {
    let server = TestServer::start(&["-c", "6000", "-t", "2"]);
    let pid = server.child.as_ref().unwrap().id();
    let mut setup = server.connect();
    setup.roundtrip(b"set anchor 0 0 2\r\nok\r\n", b"STORED\r\n");
    let baseline = rss_bytes(pid);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let stream = TcpStream::connect(server.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        conns.push(stream);
    }
    // Every one of them is served.
    for stream in conns.iter_mut() {
        stream.write_all(b"get anchor\r\n").unwrap();
    }
    let expected = b"VALUE anchor 0 2\r\nok\r\nEND\r\n";
    for stream in conns.iter_mut() {
        let mut reply = [0u8; 27];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, expected);
    }
    drop(conns);
    drop(setup);
    wait_for_connections(&server, 0);
    let after = rss_bytes(pid);
    assert!(
        after < baseline + 64 * 1024 * 1024,
        "RSS grew from {baseline} to {after} and stayed"
    );
}

#[test]
fn connection_storm_then_normal_service() {
    let server = TestServer::start(&[]);
    let addr = server.addr;
    let deadline = Instant::now() + Duration::from_secs(30);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..250 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let mut s = TcpStream::connect(addr).unwrap();
                    if i % 2 == 0 {
                        // Half send a request and leave without reading the reply.
                        let _ = s.write_all(format!("set storm{t}:{i} 0 0 1\r\nx\r\n").as_bytes());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    wait_for_connections(&server, 0);
    let mut c = server.connect();
    c.roundtrip(b"version\r\n", b"VERSION 1.6.21\r\n");
    let stats = c.stats("");
    let get = |name: &str| {
        stats
            .iter()
            .find(|(k, _)| k == name)
            .unwrap()
            .1
            .parse::<u64>()
            .unwrap()
    };
    assert!(
        get("total_connections") >= 2000,
        "{}",
        get("total_connections")
    );
    assert_eq!(
        get("curr_items"),
        get("cmd_set"),
        "every set that was read was stored"
    );
}

#[test]
fn slow_clients_do_not_hold_up_others() {
    let server = TestServer::start(&[]);
    // 200 slowloris clients, each trickling a set one byte at a time.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    let request = b"set slow 0 0 10\r\n0123456789\r\n";
    let mut fast = server.connect();
    for (step, byte) in request.iter().enumerate().take(request.len() - 1) {
        for s in slow.iter_mut() {
            s.write_all(&[*byte]).unwrap();
        }
        // Meanwhile a normal client is answered right away.
        let started = Instant::now();
        fast.roundtrip(
            format!("set fast{step} 0 0 1\r\nf\r\n").as_bytes(),
            b"STORED\r\n",
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a fast client waited behind slow ones"
        );
    }
    for s in slow.iter_mut() {
        s.write_all(b"\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reply = [0u8; 8];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"STORED\r\n");
    }
}

#[test]
fn a_client_killed_mid_request_stores_nothing_and_harms_no_one() {
    let server = TestServer::start(&[]);
    for i in 0..50 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        // Header and half the value, then the connection dies.
        s.write_all(format!("set half{i} 0 0 100\r\n").as_bytes())
            .unwrap();
        s.write_all(&[b'h'; 50]).unwrap();
    }
    wait_for_connections(&server, 0);
    let mut c = server.connect();
    for i in 0..50 {
        c.roundtrip(format!("get half{i}\r\n").as_bytes(), b"END\r\n");
    }
    assert_eq!(c.stat("curr_items"), 0);
}

/// One write a load thread got `STORED` for: when its request left and its reply came back.
struct AckedWrite {
    writer: usize,
    n: u32,
    sent: Instant,
    acked: Instant,
}

impl AckedWrite {
    fn key(&self) -> String {
        format!("w{}:{}", self.writer, self.n)
    }
    fn value(&self) -> String {
        format!("{}.{}", self.writer, self.n)
    }
}

/// A key and the value written to it.
type KeyValue = (String, String);

/// Reads `keys` with multi-gets of 100; returns the value of each key that is there.
fn get_many(c: &mut common::Conn, keys: &[String]) -> std::collections::HashMap<String, String> {
    let mut found = std::collections::HashMap::new();
    for batch in keys.chunks(100) {
        c.send(format!("get {}\r\n", batch.join(" ")).as_bytes());
        let reply = String::from_utf8(c.read_until(b"END\r\n")).unwrap();
        let mut lines = reply.split("\r\n");
        while let Some(line) = lines.next() {
            let Some(header) = line.strip_prefix("VALUE ") else {
                assert!(line == "END" || line.is_empty(), "{reply}");
                continue;
            };
            let key = header.split(' ').next().unwrap().to_string();
            found.insert(key, lines.next().unwrap().to_string());
        }
    }
    found
}

/// Writers set fresh keys as fast as they can while flush_all runs 20 times. After each
/// flush: every write acknowledged before the flush was sent is gone, and every write sent
/// after its `OK` came back is there with its value (checked before the next flush). Writes
/// in flight across the flush may go either way.
#[test]
fn flush_all_under_load_keeps_every_write_after_it() {
    const FLUSHES: usize = 20;
    let server = TestServer::start(&["-t", "2"]);
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<AckedWrite>::new()));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut n = 0u32;
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    let mut write = AckedWrite {
                        writer,
                        n,
                        sent: Instant::now(),
                        acked: Instant::now(),
                    };
                    let value = write.value();
                    let request = format!("set {} 0 0 {}\r\n{value}\r\n", write.key(), value.len());
                    write.sent = Instant::now();
                    s.write_all(request.as_bytes()).unwrap();
                    let mut reply = [0u8; 8];
                    s.read_exact(&mut reply).unwrap();
                    assert_eq!(&reply, b"STORED\r\n");
                    write.acked = Instant::now();
                    acked.lock().unwrap().push(write);
                    n += 1;
                }
            })
        })
        .collect();
    let mut c = server.connect();
    let (mut kept_checked, mut gone_checked) = (0usize, 0usize);
    let mut previous_flush_sent: Option<Instant> = None;
    for round in 0..FLUSHES {
        std::thread::sleep(Duration::from_millis(30));
        let flush_sent = Instant::now();
        c.roundtrip(b"flush_all\r\n", b"OK\r\n");
        let flush_ok = Instant::now();
        // Let writes land after the flush, then check both sides of it.
        std::thread::sleep(Duration::from_millis(30));
        let (gone, kept): (Vec<KeyValue>, Vec<KeyValue>) = {
            let acked = acked.lock().unwrap();
            // Writes acknowledged before the previous flush was sent were checked then.
            let gone = acked
                .iter()
                .filter(|w| {
                    w.acked < flush_sent && previous_flush_sent.is_none_or(|p| w.acked >= p)
                })
                .map(|w| (w.key(), w.value()));
            let kept = acked
                .iter()
                .filter(|w| w.sent > flush_ok)
                .map(|w| (w.key(), w.value()));
            (gone.collect(), kept.collect())
        };
        previous_flush_sent = Some(flush_sent);
        let keys: Vec<String> = gone.iter().map(|(k, _)| k.clone()).collect();
        let present = get_many(&mut c, &keys);
        assert!(
            present.is_empty(),
            "flush {round}: {} of {} writes acknowledged before it survived, e.g. {:?}",
            present.len(),
            keys.len(),
            present.iter().next()
        );
        let keys: Vec<String> = kept.iter().map(|(k, _)| k.clone()).collect();
        let present = get_many(&mut c, &keys);
        for (key, value) in &kept {
            assert_eq!(
                present.get(key),
                Some(value),
                "flush {round}: a write sent after it ({} such) is missing",
                kept.len()
            );
        }
        gone_checked += gone.len();
        kept_checked += kept.len();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    // The check had something to check, on both sides, and every flush counted.
    assert!(
        kept_checked > FLUSHES,
        "{kept_checked} writes checked after flushes"
    );
    assert!(
        gone_checked > FLUSHES,
        "{gone_checked} writes checked flushed"
    );
    assert_eq!(c.stat("cmd_flush"), FLUSHES as u64);
}
