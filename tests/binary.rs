//! memcached's binary protocol against the real binary: hand-built frames (every opcode the
//! `memcache` crate does not expose, and exact status codes) plus the `memcache` crate's
//! binary mode, including SASL. Without `-S` flags these also run against real memcached with
//! `FERROCACHE_TEST_ADDR=127.0.0.1:PORT` (started with `-B binary` or the default `-B auto`).

mod common;

use std::io::{Read, Write};

use common::{Conn, TestServer};

const OPAQUE: u32 = 0x0102_0304;

const GET: u8 = 0x00;
const SET: u8 = 0x01;
const ADD: u8 = 0x02;
const DELETE: u8 = 0x04;
const INCREMENT: u8 = 0x05;
const DECREMENT: u8 = 0x06;
const FLUSHQ: u8 = 0x18;
const GETQ: u8 = 0x09;
const NOOP: u8 = 0x0a;
const VERSION: u8 = 0x0b;
const GETK: u8 = 0x0c;
const GETKQ: u8 = 0x0d;
const APPEND: u8 = 0x0e;
const STAT: u8 = 0x10;
const SETQ: u8 = 0x11;
const ADDQ: u8 = 0x12;
const DELETEQ: u8 = 0x14;
const INCREMENTQ: u8 = 0x15;
const TOUCH: u8 = 0x1c;
const GAT: u8 = 0x1d;
const SASL_LIST: u8 = 0x20;
const SASL_AUTH: u8 = 0x21;
const SASL_STEP: u8 = 0x22;

/// A request frame with the test opaque.
fn frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    frame_opaque(opcode, extras, key, value, cas, OPAQUE)
}

fn frame_opaque(
    opcode: u8,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
    cas: u64,
    opaque: u32,
) -> Vec<u8> {
    let mut out = vec![0x80, opcode];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

fn set_frame(opcode: u8, key: &[u8], value: &[u8], flags: u32, cas: u64) -> Vec<u8> {
    let mut extras = flags.to_be_bytes().to_vec();
    extras.extend_from_slice(&0u32.to_be_bytes());
    frame(opcode, &extras, key, value, cas)
}

fn arith_frame(opcode: u8, key: &[u8], delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    let mut extras = delta.to_be_bytes().to_vec();
    extras.extend_from_slice(&initial.to_be_bytes());
    extras.extend_from_slice(&exptime.to_be_bytes());
    frame(opcode, &extras, key, &[], 0)
}

/// One decoded response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    opcode: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

fn read_response(c: &mut Conn) -> Response {
    let header = c.read_exact(24);
    assert_eq!(header[0], 0x81, "response magic in {header:?}");
    let key_len = u16::from_be_bytes([header[2], header[3]]) as usize;
    let extras_len = header[4] as usize;
    let body_len = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
    let body = c.read_exact(body_len);
    Response {
        opcode: header[1],
        status: u16::from_be_bytes([header[6], header[7]]),
        opaque: u32::from_be_bytes(header[12..16].try_into().unwrap()),
        cas: u64::from_be_bytes(header[16..24].try_into().unwrap()),
        extras: body[..extras_len].to_vec(),
        key: body[extras_len..extras_len + key_len].to_vec(),
        value: body[extras_len + key_len..].to_vec(),
    }
}

/// Sends one frame and reads one response.
fn call(c: &mut Conn, request: &[u8]) -> Response {
    c.send(request);
    let response = read_response(c);
    assert_eq!(response.opaque, OPAQUE, "opaque echoed");
    response
}

/// The status of the next response after sending `request`, with its opcode checked.
fn status_of(c: &mut Conn, request: &[u8]) -> u16 {
    let response = call(c, request);
    assert_eq!(response.opcode, request[1]);
    response.status
}

fn flush(c: &mut Conn) {
    assert_eq!(status_of(c, &frame(0x08, &[], &[], &[], 0)), 0);
}

fn connect_binary(server: &TestServer) -> Conn {
    let mut c = server.connect();
    flush(&mut c);
    c
}

#[test]
fn get_family_returns_flags_cas_key_and_exact_misses() {
    let server = TestServer::start(&[]);
    let mut c = connect_binary(&server);
    let stored = call(&mut c, &set_frame(SET, b"k", b"hello", 5, 0));
    assert_eq!((stored.status, stored.value.len()), (0, 0));
    assert_ne!(stored.cas, 0, "a set answers with the new cas");

    let hit = call(&mut c, &frame(GET, &[], b"k", &[], 0));
    assert_eq!(hit.status, 0);
    assert_eq!(hit.extras, 5u32.to_be_bytes());
    assert!(hit.key.is_empty());
    assert_eq!(hit.value, b"hello");
    assert_eq!(hit.cas, stored.cas);

    let hit = call(&mut c, &frame(GETK, &[], b"k", &[], 0));
    assert_eq!(
        (hit.key.as_slice(), hit.value.as_slice()),
        (&b"k"[..], &b"hello"[..])
    );

    let miss = call(&mut c, &frame(GET, &[], b"nokey", &[], 0));
    assert_eq!((miss.status, miss.value.as_slice()), (1, &b"Not found"[..]));
    assert_eq!(miss.cas, 0);
    let miss = call(&mut c, &frame(GETK, &[], b"nokey", &[], 0));
    assert_eq!(
        (miss.status, miss.key.as_slice(), miss.value.as_slice()),
        (1, &b"nokey"[..], &b""[..])
    );

    // Touch answers flags and cas without the value; GAT with the value.
    let exptime = 100u32.to_be_bytes();
    let touched = call(&mut c, &frame(TOUCH, &exptime, b"k", &[], 0));
    assert_eq!(
        (
            touched.status,
            touched.extras.as_slice(),
            touched.value.len()
        ),
        (0, &5u32.to_be_bytes()[..], 0)
    );
    let gat = call(&mut c, &frame(GAT, &exptime, b"k", &[], 0));
    assert_eq!((gat.status, gat.value.as_slice()), (0, &b"hello"[..]));
    assert_eq!(
        status_of(&mut c, &frame(TOUCH, &exptime, b"nokey", &[], 0)),
        1
    );
}

#[test]
fn a_pipeline_of_100_getkq_and_a_noop_answers_only_the_hits() {
    let server = TestServer::start(&[]);
    let mut c = connect_binary(&server);
    let mut batch = Vec::new();
    for i in (0..100).step_by(2) {
        batch.extend(set_frame(SETQ, format!("key{i}").as_bytes(), b"v", 0, 0));
    }
    for i in 0..100 {
        batch.extend(frame_opaque(
            GETKQ,
            &[],
            format!("key{i}").as_bytes(),
            &[],
            0,
            i,
        ));
    }
    batch.extend(frame_opaque(NOOP, &[], &[], &[], 0, 0xffff));
    c.send(&batch);
    let mut hits = Vec::new();
    loop {
        let response = read_response(&mut c);
        if response.opcode == NOOP {
            assert_eq!(response.opaque, 0xffff);
            break;
        }
        assert_eq!((response.opcode, response.status), (GETKQ, 0));
        assert_eq!(response.key, format!("key{}", response.opaque).into_bytes());
        hits.push(response.opaque);
    }
    let expected: Vec<u32> = (0..100).step_by(2).collect();
    assert_eq!(hits, expected, "the 50 hits, in order, and no miss");
}

#[test]
fn cas_conflicts_answer_key_exists_and_missing_keys_not_found() {
    let server = TestServer::start(&[]);
    let mut c = connect_binary(&server);
    let first = call(&mut c, &set_frame(SET, b"c", b"1", 0, 0)).cas;
    assert_eq!(
        status_of(&mut c, &set_frame(SET, b"c", b"2", 0, first + 1)),
        2
    );
    let second = call(&mut c, &set_frame(SET, b"c", b"2", 0, first));
    assert_eq!(second.status, 0);
    assert_ne!(second.cas, first);
    // The old cas is stale now, for set, append and delete alike.
    assert_eq!(status_of(&mut c, &set_frame(SET, b"c", b"3", 0, first)), 2);
    assert_eq!(status_of(&mut c, &frame(APPEND, &[], b"c", b"x", first)), 2);
    assert_eq!(status_of(&mut c, &frame(DELETE, &[], b"c", &[], first)), 2);
    assert_eq!(
        status_of(&mut c, &frame(DELETE, &[], b"c", &[], second.cas)),
        0
    );
    // A cas store on a missing key: not found; add/replace words follow memcached.
    assert_eq!(status_of(&mut c, &set_frame(SET, b"c", b"4", 0, 99)), 1);
    assert_eq!(status_of(&mut c, &set_frame(ADD, b"c", b"5", 0, 0)), 0);
    assert_eq!(status_of(&mut c, &set_frame(ADD, b"c", b"6", 0, 0)), 2);
    assert_eq!(status_of(&mut c, &set_frame(0x03, b"zz", b"6", 0, 0)), 1);
    assert_eq!(status_of(&mut c, &frame(APPEND, &[], b"zz", b"x", 0)), 5);
}

#[test]
fn incr_creates_with_the_initial_value_unless_the_expiration_is_all_ones() {
    let server = TestServer::start(&[]);
    let mut c = connect_binary(&server);
    let created = call(&mut c, &arith_frame(INCREMENT, b"n", 1, 10, 0));
    assert_eq!(
        (created.status, created.value.as_slice()),
        (0, &10u64.to_be_bytes()[..])
    );
    assert_ne!(created.cas, 0);
    let bumped = call(&mut c, &arith_frame(INCREMENT, b"n", 5, 10, 0));
    assert_eq!(bumped.value, 15u64.to_be_bytes());
    let lowered = call(&mut c, &arith_frame(DECREMENT, b"n", 100, 0, 0));
    assert_eq!(lowered.value, 0u64.to_be_bytes(), "decr stops at 0");
    // 0xffffffff: fail on a miss instead of creating.
    let missing = call(&mut c, &arith_frame(INCREMENT, b"m", 1, 10, 0xffff_ffff));
    assert_eq!(
        (missing.status, missing.value.as_slice()),
        (1, &b"Not found"[..])
    );
    assert_eq!(status_of(&mut c, &frame(GET, &[], b"m", &[], 0)), 1);
    // Text and binary share the counter (a connection keeps the dialect of its first byte).
    let mut text = server.connect();
    text.roundtrip(b"incr n 7\r\n", b"7\r\n");
    // Non-numeric value.
    assert_eq!(status_of(&mut c, &set_frame(SET, b"s", b"abc", 0, 0)), 0);
    let bad = call(&mut c, &arith_frame(INCREMENT, b"s", 1, 0, 0));
    assert_eq!(bad.status, 6);
    assert_eq!(bad.value, b"Non-numeric server-side value for incr or decr");
}

#[test]
fn quiet_commands_are_silent_on_success_but_not_on_errors() {
    let server = TestServer::start(&[]);
    let mut c = connect_binary(&server);
    let mut batch = Vec::new();
    batch.extend(set_frame(SETQ, b"q", b"1", 0, 0)); // silent
    batch.extend(set_frame(ADDQ, b"q", b"1", 0, 0)); // exists: answered
    batch.extend(frame(GETQ, &[], b"nokey", &[], 0)); // miss: silent
    batch.extend(arith_frame(INCREMENTQ, b"q", 1, 0, 0)); // silent
    batch.extend(frame(DELETEQ, &[], b"nokey", &[], 0)); // miss: answered
    batch.extend(frame(GETQ, &[], b"q", &[], 0)); // hit: answered
    batch.extend(frame(FLUSHQ, &[], &[], &[], 0)); // silent
    batch.extend(frame(NOOP, &[], &[], &[], 0));
    c.send(&batch);
    let got: Vec<(u8, u16)> = (0..4)
        .map(|_| {
            let r = read_response(&mut c);
            (r.opcode, r.status)
        })
        .collect();
    assert_eq!(
        got,
        vec![(ADDQ, 2), (DELETEQ, 1), (GETQ, 0), (NOOP, 0)],
        "only errors, the hit and the noop"
    );
}

#[test]
fn text_and_binary_share_one_port_and_one_store() {
    let server = TestServer::start(&[]);
    let mut binary = connect_binary(&server);
    assert_eq!(
        status_of(&mut binary, &set_frame(SET, b"shared", b"v", 3, 0)),
        0
    );
    let mut text = server.connect();
    text.roundtrip(b"get shared\r\n", b"VALUE shared 3 1\r\nv\r\nEND\r\n");
    let version = call(&mut binary, &frame(VERSION, &[], &[], &[], 0));
    assert_eq!(version.status, 0);
    assert!(version.value.starts_with(b"1.6."));
}

#[test]
fn bad_headers_close_the_connection_as_memcached_does() {
    let server = TestServer::start(&[]);
    // A bad magic after the first frame: closed without a reply.
    let mut c = connect_binary(&server);
    let mut bad = frame(NOOP, &[], &[], &[], 0);
    bad[0] = 0x81;
    c.send(&bad);
    assert!(c.is_closed());
    // A key over 250 bytes: Invalid arguments, then close.
    let mut c = connect_binary(&server);
    assert_eq!(status_of(&mut c, &frame(GET, &[], &[b'k'; 251], &[], 0)), 4);
    assert!(c.is_closed());
    // Extras on a get: Invalid arguments, then close.
    let mut c = connect_binary(&server);
    assert_eq!(status_of(&mut c, &frame(GET, b"1234", b"k", &[], 0)), 4);
    assert!(c.is_closed());
    // Key longer than the body: Unknown command, then close.
    let mut c = connect_binary(&server);
    let mut inconsistent = frame(GET, &[], b"abc", &[], 0);
    inconsistent[8..12].copy_from_slice(&1u32.to_be_bytes());
    assert_eq!(status_of(&mut c, &inconsistent), 0x81);
    assert!(c.is_closed());
    // An unknown opcode: Unknown command, and the connection stays.
    let mut c = connect_binary(&server);
    let unknown = call(&mut c, &frame(0x55, &[], &[], &[], 0));
    assert_eq!(
        (unknown.status, unknown.value.as_slice()),
        (0x81, &b"Unknown command"[..])
    );
    assert_eq!(status_of(&mut c, &frame(NOOP, &[], &[], &[], 0)), 0);
}

#[test]
fn a_value_over_the_item_limit_is_too_large_and_its_bytes_are_skipped() {
    let server = TestServer::start(&["-I", "1k"]);
    let mut c = connect_binary(&server);
    assert_eq!(status_of(&mut c, &set_frame(SET, b"big", b"old", 0, 0)), 0);
    let too_large = call(&mut c, &set_frame(SET, b"big", &[b'x'; 2000], 0, 0));
    assert_eq!(
        (too_large.status, too_large.value.as_slice()),
        (3, &b"Too large."[..])
    );
    // The value was skipped, not parsed as frames; the old value was unlinked.
    assert_eq!(status_of(&mut c, &frame(NOOP, &[], &[], &[], 0)), 0);
    assert_eq!(status_of(&mut c, &frame(GET, &[], b"big", &[], 0)), 1);
    assert_eq!(server.connect().stat("store_too_large"), 1);
}

#[test]
fn stat_answers_one_packet_per_statistic_then_an_empty_one() {
    let server = TestServer::start(&[]);
    let mut c = connect_binary(&server);
    c.send(&frame(STAT, &[], &[], &[], 0));
    let mut names = Vec::new();
    loop {
        let r = read_response(&mut c);
        assert_eq!((r.opcode, r.status, r.opaque), (STAT, 0, OPAQUE));
        if r.key.is_empty() {
            assert!(r.value.is_empty());
            break;
        }
        names.push(String::from_utf8(r.key).unwrap());
    }
    for name in ["pid", "cmd_get", "auth_cmds", "auth_errors", "curr_items"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let bogus = call(&mut c, &frame(STAT, &[], b"bogus", &[], 0));
    assert_eq!(
        (bogus.status, bogus.value.as_slice()),
        (1, &b"Not found"[..])
    );
    let reset = call(&mut c, &frame(STAT, &[], b"reset", &[], 0));
    assert_eq!(
        (reset.status, reset.key.len(), reset.value.len()),
        (0, 0, 0)
    );
}

#[test]
fn the_memcache_crate_works_in_binary_mode() {
    let server = TestServer::start(&[]);
    let client = memcache::Client::connect(format!(
        "memcache://{}?timeout=10&protocol=binary",
        server.addr
    ))
    .expect("binary client");
    client.flush().unwrap();
    client.set("greeting", "hello", 0).unwrap();
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    client.append("greeting", " world").unwrap();
    client.prepend("greeting", ">").unwrap();
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some(">hello world")
    );
    assert!(client.add("greeting", "again", 0).is_err());
    client.replace("greeting", "bye", 0).unwrap();
    // The crate sends initial value 0 and expiration 0: a missing counter is created.
    assert_eq!(client.increment("created", 5).unwrap(), 0);
    client.set("hits", 10u64, 0).unwrap();
    assert_eq!(client.increment("hits", 5).unwrap(), 15);
    assert_eq!(client.decrement("hits", 20).unwrap(), 0);
    assert!(client.touch("hits", 100).unwrap());
    assert!(!client.touch("nothing", 100).unwrap());
    let values: std::collections::HashMap<String, String> =
        client.gets(&["greeting", "nothing"]).unwrap();
    assert_eq!(values.len(), 1);
    assert!(client.delete("greeting").unwrap());
    assert!(!client.delete("greeting").unwrap());
    assert!(client.get::<String>("greeting").unwrap().is_none());
    assert_eq!(client.version().unwrap().len(), 1);
    let stats = client.stats().unwrap();
    assert!(stats[0].1.contains_key("cmd_get"));
}

/// A password file in memcached's format, and a server with `-S` reading it.
fn sasl_server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    std::fs::write(&path, "alice:secret\nbob:pw:ignored\n").unwrap();
    let server = TestServer::start(&["-S", "--sasl-pwdb", path.to_str().unwrap()]);
    (server, dir)
}

fn plain(user: &str, password: &str) -> Vec<u8> {
    frame(
        SASL_AUTH,
        &[],
        b"PLAIN",
        format!("\0{user}\0{password}").as_bytes(),
        0,
    )
}

#[test]
fn sasl_plain_success_and_failure() {
    let (server, _dir) = sasl_server();
    // Before authenticating: Version and the SASL commands work, everything else gets Auth
    // failure and the connection closes.
    let mut c = server.connect();
    assert_eq!(status_of(&mut c, &frame(VERSION, &[], &[], &[], 0)), 0);
    let mechs = call(&mut c, &frame(SASL_LIST, &[], &[], &[], 0));
    assert_eq!((mechs.status, mechs.value.as_slice()), (0, &b"PLAIN"[..]));
    let refused = call(&mut c, &frame(GET, &[], b"k", &[], 0));
    assert_eq!(
        (refused.status, refused.value.as_slice()),
        (0x20, &b"Auth failure."[..])
    );
    assert!(c.is_closed());

    // A wrong password fails but keeps the connection; the right one works.
    let mut c = server.connect();
    assert_eq!(status_of(&mut c, &plain("alice", "wrong")), 0x20);
    assert_eq!(status_of(&mut c, &plain("nobody", "secret")), 0x20);
    let ok = call(&mut c, &plain("alice", "secret"));
    assert_eq!((ok.status, ok.value.as_slice()), (0, &b"Authenticated"[..]));
    assert_eq!(status_of(&mut c, &set_frame(SET, b"k", b"v", 0, 0)), 0);
    assert_eq!(call(&mut c, &frame(GET, &[], b"k", &[], 0)).value, b"v");

    // PLAIN without data continues (0x21); the step carries the response.
    let mut c = server.connect();
    let started = call(&mut c, &frame(SASL_AUTH, &[], b"PLAIN", &[], 0));
    assert_eq!((started.status, started.value.len()), (0x21, 0));
    let stepped = call(&mut c, &frame(SASL_STEP, &[], b"PLAIN", b"\0bob\0pw", 0));
    assert_eq!(stepped.status, 0);
    assert_eq!(status_of(&mut c, &frame(NOOP, &[], &[], &[], 0)), 0);
    // Counters: 2 failures, 2 successes so far, seen over binary Stat.
    c.send(&frame(STAT, &[], &[], &[], 0));
    let mut auth = Vec::new();
    loop {
        let r = read_response(&mut c);
        if r.key.is_empty() {
            break;
        }
        if r.key.starts_with(b"auth_") {
            auth.push((
                String::from_utf8(r.key).unwrap(),
                String::from_utf8(r.value).unwrap(),
            ));
        }
    }
    assert_eq!(
        auth,
        vec![
            ("auth_cmds".to_string(), "4".to_string()),
            ("auth_errors".to_string(), "2".to_string())
        ]
    );

    // In SASL mode the port speaks binary only: a text command closes the connection.
    let mut text = server.connect();
    text.send(b"get k k k k k k k k k k\r\n");
    assert!(text.is_closed());
}

#[test]
fn the_memcache_crate_authenticates_with_sasl() {
    let (server, _dir) = sasl_server();
    let url = |user: &str, password: &str| {
        format!(
            "memcache://{user}:{password}@{}?timeout=10&protocol=binary",
            server.addr
        )
    };
    let client = memcache::Client::connect(url("alice", "secret")).expect("authenticated");
    client.set("k", "v", 0).unwrap();
    assert_eq!(client.get::<String>("k").unwrap().as_deref(), Some("v"));
    // The pool retries a failing connection until its timeout: keep that short.
    let refused = memcache::Client::builder()
        .add_server(url("alice", "nope"))
        .unwrap()
        .with_connection_timeout(std::time::Duration::from_millis(500))
        .build();
    assert!(refused.is_err(), "a wrong password is refused");
}

#[test]
fn sasl_commands_are_unknown_when_sasl_is_off() {
    let server = TestServer::start(&[]);
    let mut c = connect_binary(&server);
    assert_eq!(status_of(&mut c, &frame(SASL_LIST, &[], &[], &[], 0)), 0x81);
    assert_eq!(status_of(&mut c, &plain("alice", "secret")), 0x81);
    assert_eq!(status_of(&mut c, &frame(NOOP, &[], &[], &[], 0)), 0);
}

#[test]
fn a_frame_split_into_single_bytes_is_served_once_complete() {
    let server = TestServer::start(&[]);
    let mut c = connect_binary(&server);
    let request = set_frame(SET, b"slow", b"value", 0, 0);
    for byte in &request {
        c.stream.write_all(std::slice::from_ref(byte)).unwrap();
        c.stream.flush().unwrap();
    }
    assert_eq!(read_response(&mut c).status, 0);
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let mut extra = [0u8; 1];
    assert!(c.stream.read(&mut extra).is_err(), "exactly one response");
}
