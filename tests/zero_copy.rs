//! Zero-copy replies on the real binary: large values sent from segment memory come out whole
//! while their segments are reclaimed and evicted under them (a tiny `-m`, writers replacing
//! every key, readers that read their multi-get replies slowly so the server's socket fills and
//! the values stay pinned), and small values are unaffected.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestServer;

const KEYS: u64 = 24;

/// A value that says which key and version it is, then a pattern only they produce.
fn value(key: u64, version: u64) -> Vec<u8> {
    let len = 60_000 + ((key * 7919 + version * 104_729) % 200_000) as usize;
    let mut out = format!("{key:05}-{version:010}-").into_bytes();
    let mut x =
        key.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ version.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(b'a' + (x % 26) as u8);
    }
    out
}

fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).expect("read");
        line.push(byte[0]);
    }
    String::from_utf8(line).expect("a text line")
}

/// Reads `n` bytes in small pieces, pausing between them (a slow client).
fn read_slowly(stream: &mut TcpStream, n: usize, pause: Duration) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut at = 0;
    while at < n {
        let step = (n - at).min(16 << 10);
        stream
            .read_exact(&mut out[at..at + step])
            .expect("read value");
        at += step;
        std::thread::sleep(pause);
    }
    out
}

fn small_receive_buffer(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 64 << 10;
    // SAFETY: setsockopt reads `size` for the length given; the fd is the stream's own.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

#[test]
fn issue_28_large_values_come_out_whole_while_their_segments_are_reclaimed_under_slow_readers() {
    let server = TestServer::start(&["-m", "8", "-t", "2"]);
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                let mut version = w;
                while !stop.load(Ordering::Relaxed) {
                    version += 2;
                    let key = (version * 13 + w) % KEYS;
                    let v = value(key, version);
                    let mut request = format!("set k{key} 0 0 {}\r\n", v.len()).into_bytes();
                    request.extend_from_slice(&v);
                    request.extend_from_slice(b"\r\n");
                    stream.write_all(&request).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                    let reply = read_line(&mut stream);
                    assert!(
                        reply == "STORED\r\n" || reply.starts_with("SERVER_ERROR out of memory"),
                        "{reply}"
                    );
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4u64)
        .map(|r| {
            let (stop, checked) = (stop.clone(), checked.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                small_receive_buffer(&stream);
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut round = r;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    // Every key four times: a reply of ~15 MB, far more than socket buffers.
                    let keys: Vec<String> = (0..4 * KEYS)
                        .map(|i| format!("k{}", (round * 5 + i) % KEYS))
                        .collect();
                    stream
                        .write_all(format!("get {}\r\n", keys.join(" ")).as_bytes())
                        .unwrap();
                    // Not reading for a while: the server's socket fills and the rest of the
                    // reply waits in the store's segments while the writers replace the keys.
                    std::thread::sleep(Duration::from_millis(100));
                    loop {
                        let line = read_line(&mut stream);
                        if line == "END\r\n" {
                            break;
                        }
                        let fields: Vec<&str> = line.split_whitespace().collect();
                        assert_eq!(fields[0], "VALUE", "{line}");
                        let len: usize = fields[3].parse().unwrap();
                        let got = read_slowly(&mut stream, len + 2, Duration::from_millis(2));
                        let (key, version) = (&got[..5], &got[6..16]);
                        let key: u64 = std::str::from_utf8(key).unwrap().parse().unwrap();
                        let version: u64 = std::str::from_utf8(version).unwrap().parse().unwrap();
                        assert_eq!(fields[1], format!("k{key}"), "the value of another key");
                        assert!(
                            got[..len] == value(key, version)[..],
                            "k{key} v{version} torn"
                        );
                        assert_eq!(&got[len..], b"\r\n");
                        checked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut admin = server.connect();
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let retired_seen = admin.stat("segments_retired_total");
    stop.store(true, Ordering::Relaxed);
    for thread in writers.into_iter().chain(readers) {
        thread.join().expect("no torn or foreign value");
    }
    let stats = admin.stats("");
    let stat = |name: &str| -> u64 {
        stats
            .iter()
            .find(|(k, _)| k == name)
            .unwrap()
            .1
            .parse()
            .unwrap()
    };
    assert!(
        checked.load(Ordering::Relaxed) > 50,
        "values checked: {checked:?}"
    );
    assert!(
        stat("evictions") > 0,
        "segments were reclaimed under the readers"
    );
    assert!(
        retired_seen > 0,
        "a reclaimed segment was held for a reply still being sent"
    );
    // Once every reply is sent, no segment stays held.
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.stat("segments_retired") > 0 {
        assert!(Instant::now() < deadline, "retired segments never released");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn v_key(len: usize) -> String {
    format!("v{len}")
}

/// A binary request with no extras and no value.
fn binary_request(opcode: u8, key: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, opcode];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(key);
    out
}

#[test]
fn values_below_the_zero_copy_size_and_above_it_read_the_same() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    for len in [
        1usize,
        100,
        16 * 1024 - 1,
        16 * 1024,
        16 * 1024 + 1,
        500_000,
    ] {
        let v: Vec<u8> = (0..len).map(|i| b'a' + (i * 7 % 26) as u8).collect();
        let mut request = format!("set v{len} 3 0 {}\r\n", v.len()).into_bytes();
        request.extend_from_slice(&v);
        request.extend_from_slice(b"\r\n");
        c.roundtrip(&request, b"STORED\r\n");
        // Twice in one request (two splices in one write), then gets with its cas.
        let mut expected = Vec::new();
        for _ in 0..2 {
            expected.extend_from_slice(format!("VALUE v{len} 3 {}\r\n", v.len()).as_bytes());
            expected.extend_from_slice(&v);
            expected.extend_from_slice(b"\r\n");
        }
        expected.extend_from_slice(b"END\r\n");
        c.roundtrip(format!("get v{len} v{len}\r\n").as_bytes(), &expected);
        // Meta: the value block after the VA line, and a pipelined no-op after it.
        let mut expected = format!("VA {} f3\r\n", v.len()).into_bytes();
        expected.extend_from_slice(&v);
        expected.extend_from_slice(b"\r\nMN\r\n");
        c.roundtrip(format!("mg v{len} v f\r\nmn\r\n").as_bytes(), &expected);
        // Binary GetK then a NoOp, on a binary connection.
        let mut b = server.connect();
        let mut request = binary_request(0x0c, v_key(len).as_bytes());
        request.extend(binary_request(0x0a, b""));
        b.send(&request);
        let head = b.read_exact(24);
        assert_eq!((head[0], head[1], &head[6..8]), (0x81, 0x0c, &[0u8, 0][..]));
        let body = u32::from_be_bytes(head[8..12].try_into().unwrap()) as usize;
        let body = b.read_exact(body);
        let key = v_key(len);
        assert_eq!(&body[..4], &3u32.to_be_bytes());
        assert_eq!(&body[4..4 + key.len()], key.as_bytes());
        assert!(
            body[4 + key.len()..] == v[..],
            "binary value of {len} bytes"
        );
        let noop = b.read_exact(24);
        assert_eq!(noop[1], 0x0a);
    }
}

fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn resp_get_sends_large_values_from_pinned_segments_whole_under_eviction() {
    let server = TestServer::start_with_resp(&["-m", "8", "-t", "2"]);
    let addr = server.resp_addr.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                let mut version = w;
                while !stop.load(Ordering::Relaxed) {
                    version += 2;
                    let key = (version * 13 + w) % KEYS;
                    let k = format!("k{key}");
                    let request = resp_command(&[b"SET", k.as_bytes(), &value(key, version)]);
                    stream.write_all(&request).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                    let reply = read_line(&mut stream);
                    assert!(reply == "+OK\r\n" || reply.starts_with("-OOM"), "{reply}");
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..3u64)
        .map(|r| {
            let (stop, checked) = (stop.clone(), checked.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                small_receive_buffer(&stream);
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut round = r;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    // A pipeline of GETs of every key, twice: far more than socket buffers.
                    let mut request = Vec::new();
                    for i in 0..2 * KEYS {
                        let k = format!("k{}", (round * 5 + i) % KEYS);
                        request.extend_from_slice(&resp_command(&[b"GET", k.as_bytes()]));
                    }
                    stream.write_all(&request).unwrap();
                    std::thread::sleep(Duration::from_millis(100));
                    for _ in 0..2 * KEYS {
                        let header = read_line(&mut stream);
                        if header == "$-1\r\n" {
                            continue;
                        }
                        let len: usize = header[1..header.len() - 2].parse().expect(&header);
                        let got = read_slowly(&mut stream, len + 2, Duration::from_millis(2));
                        let key: u64 = std::str::from_utf8(&got[..5]).unwrap().parse().unwrap();
                        let version: u64 =
                            std::str::from_utf8(&got[6..16]).unwrap().parse().unwrap();
                        assert!(
                            got[..len] == value(key, version)[..],
                            "k{key} v{version} torn"
                        );
                        assert_eq!(&got[len..], b"\r\n");
                        checked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let mut admin = server.connect();
    std::thread::sleep(Duration::from_secs(5));
    let retired_seen = admin.stat("segments_retired_total");
    stop.store(true, Ordering::Relaxed);
    for thread in writers.into_iter().chain(readers) {
        thread.join().expect("no torn value");
    }
    assert!(
        checked.load(Ordering::Relaxed) > 30,
        "values checked: {checked:?}"
    );
    // Only a pinned value keeps a reclaimed segment: RESP GET sent from the store's memory.
    assert!(
        retired_seen > 0,
        "no segment was held for a RESP reply being sent"
    );
}

#[test]
fn resp_large_values_under_client_reply_off_and_in_exec_come_out_right() {
    let server = TestServer::start_with_resp(&[]);
    let mut c = server.connect_resp();
    let big = value(1, 1);
    c.send(&resp_command(&[b"SET", b"big", &big]));
    c.read_until(b"+OK\r\n");
    // A silenced reply leaves nothing behind, not even the value sent by reference.
    c.send(&resp_command(&[b"CLIENT", b"REPLY", b"OFF"]));
    c.send(&resp_command(&[b"GET", b"big"]));
    c.send(&resp_command(&[b"CLIENT", b"REPLY", b"ON"]));
    c.send(&resp_command(&[b"GET", b"big"]));
    let mut expected = b"+OK\r\n".to_vec();
    expected.extend_from_slice(format!("${}\r\n", big.len()).as_bytes());
    expected.extend_from_slice(&big);
    expected.extend_from_slice(b"\r\n");
    assert!(
        c.read_exact(expected.len()) == expected,
        "silenced GET leaked"
    );
    // Inside EXEC the value goes out in its place in the array.
    c.send(b"MULTI\r\n");
    c.read_until(b"+OK\r\n");
    c.send(&resp_command(&[b"GET", b"big"]));
    c.read_until(b"+QUEUED\r\n");
    c.send(b"EXEC\r\nPING\r\n");
    let mut expected = format!("*1\r\n${}\r\n", big.len()).into_bytes();
    expected.extend_from_slice(&big);
    expected.extend_from_slice(b"\r\n+PONG\r\n");
    assert!(
        c.read_exact(expected.len()) == expected,
        "EXEC reply out of order"
    );
}
