//! Overload and fault tests on the real binary, each bounded in time: thousands of
//! connections, connection storms, slow and dying clients, flush_all under load. After each,
//! the server must answer, its counters must add up, its memory must be back near where it
//! started, and every acknowledged write that was not deleted must still be readable.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::TestServer;

/// Resident memory of a process in bytes (Linux /proc).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

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

#[test]
fn flush_all_under_load_keeps_every_write_after_it() {
    let server = TestServer::start(&["-t", "2"]);
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut n = 0u32;
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    s.write_all(format!("set w{w}:{n} 0 0 1\r\nv\r\n").as_bytes())
                        .unwrap();
                    let mut reply = [0u8; 8];
                    s.read_exact(&mut reply).unwrap();
                    assert_eq!(&reply, b"STORED\r\n");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut c = server.connect();
    for _ in 0..20 {
        c.roundtrip(b"flush_all\r\n", b"OK\r\n");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(written > 0);
    // Writes acknowledged after the last flush are all there.
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    for i in 0..100 {
        c.roundtrip(
            format!("set after{i} 0 0 1\r\na\r\n").as_bytes(),
            b"STORED\r\n",
        );
    }
    for i in 0..100 {
        c.roundtrip(
            format!("get after{i}\r\n").as_bytes(),
            format!("VALUE after{i} 0 1\r\na\r\nEND\r\n").as_bytes(),
        );
    }
    assert_eq!(c.stat("curr_items"), 100);
    assert_eq!(c.stat("cmd_flush"), 21);
}
