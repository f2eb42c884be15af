//! Hot raw, cold packed, on the real binary: values of every size class, compressible and
//! not, written and read back over memcached text, meta, binary and RESP, raw (just written),
//! packed (after the cold pass, here with `compression_cold_secs = 0`) and raw again (after
//! the first read promoted them); and the cold pass's counters in `stats` and `INFO`.

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::{Conn, TestServer};

const SIZES: [usize; 6] = [1, 100, 4_096, 20_000, 100_000, 1_500_000];

/// Compressible: JSON-like records (different per seed).
fn json(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = seed;
    while out.len() < len {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(
            format!(
                r#"{{"id":{},"tag":"t{}","ok":true}},"#,
                i >> 44,
                (i >> 20) & 0xfff
            )
            .as_bytes(),
        );
    }
    out.truncate(len);
    out
}

fn value(len: usize, compressible: bool, seed: u64) -> Vec<u8> {
    if compressible {
        json(len, seed)
    } else {
        common::incompressible(len, seed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Text,
    Meta,
    Binary,
    Resp,
}

const PROTOS: [Proto; 4] = [Proto::Text, Proto::Meta, Proto::Binary, Proto::Resp];

fn binary_frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, opcode];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// One reply line, read a byte at a time (so nothing after it is consumed).
fn read_line(conn: &mut Conn) -> Vec<u8> {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        line.extend(conn.read_exact(1));
    }
    line
}

fn set(conn: &mut Conn, proto: Proto, key: &str, value: &[u8]) {
    match proto {
        Proto::Text => {
            conn.send(format!("set {key} 7 0 {}\r\n", value.len()).as_bytes());
            conn.send(value);
            conn.roundtrip(b"\r\n", b"STORED\r\n");
        }
        Proto::Meta => {
            conn.send(format!("ms {key} {} F7\r\n", value.len()).as_bytes());
            conn.send(value);
            conn.roundtrip(b"\r\n", b"HD\r\n");
        }
        Proto::Binary => {
            let mut extras = 7u32.to_be_bytes().to_vec();
            extras.extend_from_slice(&0u32.to_be_bytes());
            conn.send(&binary_frame(0x01, &extras, key.as_bytes(), value));
            let header = conn.read_exact(24);
            assert_eq!(&header[6..8], &[0, 0], "binary set status");
            let body = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
            conn.read_exact(body);
        }
        Proto::Resp => {
            let mut request = format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
                key.len(),
                value.len()
            )
            .into_bytes();
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
            conn.roundtrip(&request, b"+OK\r\n");
        }
    }
}

fn get(conn: &mut Conn, proto: Proto, key: &str) -> Vec<u8> {
    match proto {
        Proto::Text => {
            conn.send(format!("get {key}\r\n").as_bytes());
            let header = read_line(conn);
            let header = String::from_utf8(header).unwrap();
            let fields: Vec<&str> = header.split_whitespace().collect();
            assert_eq!(&fields[..3], &["VALUE", key, "7"], "{header}");
            let len: usize = fields[3].parse().unwrap();
            let value = conn.read_exact(len);
            assert_eq!(conn.read_exact(7), b"\r\nEND\r\n");
            value
        }
        Proto::Meta => {
            conn.send(format!("mg {key} v f\r\n").as_bytes());
            let header = String::from_utf8(read_line(conn)).unwrap();
            let fields: Vec<&str> = header.split_whitespace().collect();
            assert_eq!((fields[0], fields[2]), ("VA", "f7"), "{header}");
            let len: usize = fields[1].parse().unwrap();
            let value = conn.read_exact(len);
            assert_eq!(conn.read_exact(2), b"\r\n");
            value
        }
        Proto::Binary => {
            conn.send(&binary_frame(0x00, &[], key.as_bytes(), &[]));
            let header = conn.read_exact(24);
            assert_eq!(&header[6..8], &[0, 0], "binary get status");
            let extras = header[4] as usize;
            let body = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
            let body = conn.read_exact(body);
            assert_eq!(&body[..4], &7u32.to_be_bytes(), "flags");
            body[extras..].to_vec()
        }
        Proto::Resp => {
            conn.send(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes());
            let header = String::from_utf8(read_line(conn)).unwrap();
            let len: usize = header.trim_end()[1..].parse().unwrap();
            let value = conn.read_exact(len);
            assert_eq!(conn.read_exact(2), b"\r\n");
            value
        }
    }
}

/// Waits (polling `stats`, bounded) until the cold pass has handled `n` values.
fn wait_packed(admin: &mut Conn, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = admin.stat("compress_packed") + admin.stat("compress_incompressible");
        if done >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cold pass handled {done} of {n} values: {:?}",
            admin.stats("")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue_28_every_size_round_trips_raw_packed_and_promoted_over_every_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferrocache.toml");
    std::fs::File::create(&config)
        .unwrap()
        .write_all(b"[store]\ncompression_cold_secs = 0\ncompression_segments_per_tick = 64\n")
        .unwrap();
    let server = TestServer::start_with_resp(&[
        "--config",
        config.to_str().unwrap(),
        "-m",
        "256",
        "-I",
        "2m",
    ]);
    let mut admin = server.connect();
    let mut conns: Vec<(Proto, Conn)> = PROTOS
        .iter()
        .map(|&proto| {
            let conn = match proto {
                Proto::Resp => server.connect_resp(),
                _ => server.connect(),
            };
            (proto, conn)
        })
        .collect();
    let mut expected = Vec::new();
    let mut candidates = 0;
    for (p, (proto, conn)) in conns.iter_mut().enumerate() {
        for (s, &len) in SIZES.iter().enumerate() {
            for compressible in [true, false] {
                let seed = (p * 100 + s * 2 + usize::from(compressible)) as u64;
                let key = format!("{proto:?}-{len}-{compressible}");
                let value = value(len, compressible, seed);
                set(conn, *proto, &key, &value);
                assert!(get(conn, *proto, &key) == value, "{key} just written");
                candidates += u64::from(len >= 4096);
                expected.push((*proto, key, value));
            }
        }
    }
    wait_packed(&mut admin, candidates);
    assert!(admin.stat("compressed_items") > 0);
    for (proto, key, value) in &expected {
        let conn = &mut conns.iter_mut().find(|(p, _)| p == proto).unwrap().1;
        assert!(get(conn, *proto, key) == *value, "{key} packed");
        assert!(get(conn, *proto, key) == *value, "{key} read again");
    }
    assert!(admin.stat("compress_promoted") > 0);
    assert!(admin.stat("decompressions") > 0);
    // The same figures in INFO.
    let resp = &mut conns
        .iter_mut()
        .find(|(p, _)| matches!(p, Proto::Resp))
        .unwrap()
        .1;
    resp.send(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n");
    let header = String::from_utf8(read_line(resp)).unwrap();
    let len: usize = header.trim_end()[1..].parse().unwrap();
    let info = String::from_utf8(resp.read_exact(len + 2)).unwrap();
    for field in [
        "compressed_items:",
        "compress_packed:",
        "decompress_time_us:",
    ] {
        assert!(info.contains(field), "{field} in {info}");
    }
}
