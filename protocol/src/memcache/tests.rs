//! Tests of the memcached text and meta parser: every command, every error path, golden
//! answers recorded from a real memcached 1.6.18 (`golden.rs`), split-point equivalence of a
//! pipelined stream, and invariants over generated garbage.

use super::golden::GOLDEN;
use super::*;

fn lim() -> Limits {
    Limits::default()
}

fn p(input: &[u8]) -> Result<Option<(Request<'_>, usize)>, ParseError<'_>> {
    parse(input, &lim())
}

/// Parses a whole request that must succeed and use the whole input.
fn ok(input: &[u8]) -> Request<'_> {
    match p(input) {
        Ok(Some((r, n))) => {
            assert_eq!(
                n,
                input.len(),
                "consumed for {:?}",
                String::from_utf8_lossy(input)
            );
            r
        }
        other => panic!("{:?} => {other:?}", String::from_utf8_lossy(input)),
    }
}

fn err(input: &[u8]) -> ParseError<'_> {
    match p(input) {
        Err(e) => e,
        other => panic!("{:?} => {other:?}", String::from_utf8_lossy(input)),
    }
}

/// The CLIENT_ERROR message, consumed, swallow and reply of a client error.
fn client(input: &[u8]) -> (&'static str, usize, usize, Reply) {
    match err(input) {
        ParseError::Client {
            message,
            consumed,
            swallow,
            reply,
        } => (message, consumed, swallow, reply),
        other => panic!("{:?} => {other:?}", String::from_utf8_lossy(input)),
    }
}

fn keys<'a>(r: &Request<'a>) -> Vec<&'a [u8]> {
    match r {
        Request::Get { keys, .. } => keys.iter().collect(),
        other => panic!("not a get: {other:?}"),
    }
}

fn meta<'a>(r: &Request<'a>) -> MetaKeyed<'a> {
    match r {
        Request::MetaGet(m)
        | Request::MetaDelete(m)
        | Request::MetaArith(m)
        | Request::MetaDebug(m)
        | Request::MetaSet { meta: m, .. } => m.clone(),
        other => panic!("not a keyed meta command: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// A model server: answers every request as memcached does on an empty cache, errors with
// `ParseError::write_reply`. Used to replay the golden cases.

fn respond(req: &Request<'_>, out: &mut Vec<u8>) -> bool {
    let mut line = |bytes: &[u8], reply: Reply| {
        if reply.wanted() {
            out.extend_from_slice(bytes);
        }
    };
    match req {
        Request::Get { .. } => line(reply::END, Reply::Yes),
        Request::Store { mode, reply, .. } => line(
            match mode {
                StoreMode::Set | StoreMode::Add => reply::STORED,
                StoreMode::Cas => reply::NOT_FOUND,
                _ => reply::NOT_STORED,
            },
            *reply,
        ),
        Request::Delete { reply, .. }
        | Request::Arith { reply, .. }
        | Request::Touch { reply, .. } => line(reply::NOT_FOUND, *reply),
        Request::FlushAll { reply, .. }
        | Request::Verbosity { reply, .. }
        | Request::CacheMemlimit { reply, .. } => line(reply::OK, *reply),
        Request::Version => write_version(out, "1.6.18"),
        Request::Quit => return true,
        Request::Stats(StatsGroup::Reset) => out.extend_from_slice(reply::RESET),
        Request::Stats(other) => panic!("model has no stats {other:?}"),
        Request::Shutdown { .. } => panic!("model does not shut down"),
        Request::MetaNoop => out.extend_from_slice(reply::META_NOOP),
        Request::MetaDebug(_) => out.extend_from_slice(reply::META_MISS),
        Request::MetaSet { meta, .. } => {
            if !meta.flags.quiet {
                MetaLine::status(out, MetaStatus::Done).finish();
            }
        }
        Request::MetaGet(m) | Request::MetaDelete(m) | Request::MetaArith(m) => {
            let status = if matches!(req, Request::MetaGet(_)) {
                if m.flags.quiet {
                    return false;
                }
                MetaStatus::Miss
            } else {
                MetaStatus::NotFound
            };
            let mut l = MetaLine::status(out, status);
            for f in m.flags.in_order() {
                match f.letter {
                    b'O' => {
                        l.flag_bytes(b'O', f.token);
                    }
                    b'k' => {
                        l.flag_bytes(b'k', m.key);
                    }
                    _ => {}
                }
            }
            l.finish();
        }
    }
    false
}

/// Feeds `input` to the parser like a connection would; returns the reply bytes and whether
/// the connection was closed. Stops (as memcached would wait) when the rest is incomplete.
fn serve(input: &[u8], limits: &Limits) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        match parse(&input[pos..], limits) {
            Ok(None) => break,
            Ok(Some((req, n))) => {
                assert!(n > 0 && n <= input.len() - pos);
                if respond(&req, &mut out) {
                    return (out, true);
                }
                pos += n;
            }
            Err(e) => {
                e.write_reply(&mut out);
                if e.closes_connection() {
                    return (out, true);
                }
                assert!(e.consumed() > 0 && e.consumed() <= input.len() - pos);
                pos += e.consumed() + e.swallow();
            }
        }
    }
    (out, false)
}

#[test]
fn golden_answers_match_memcached() {
    let mut failures = Vec::new();
    for (input, expected, closed) in GOLDEN {
        let (out, did_close) = serve(input, &lim());
        if out != *expected || did_close != *closed {
            failures.push(format!(
                "{:?}\n   memcached: {:?} closed={}\n   ours:      {:?} closed={}",
                String::from_utf8_lossy(input),
                String::from_utf8_lossy(expected),
                closed,
                String::from_utf8_lossy(&out),
                did_close
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Retrieval commands.

#[test]
fn get_family() {
    let r = ok(b"get a bb ccc\r\n");
    assert_eq!(keys(&r), vec![&b"a"[..], b"bb", b"ccc"]);
    assert!(matches!(
        r,
        Request::Get {
            cas: false,
            touch: None,
            ..
        }
    ));
    assert!(matches!(
        ok(b"gets a\r\n"),
        Request::Get {
            cas: true,
            touch: None,
            ..
        }
    ));
    assert!(matches!(
        ok(b"bget a\r\n"),
        Request::Get {
            cas: false,
            touch: None,
            ..
        }
    ));
    let r = ok(b"gat 100 a b\r\n");
    assert_eq!(keys(&r), vec![&b"a"[..], b"b"]);
    assert!(matches!(
        r,
        Request::Get {
            cas: false,
            touch: Some(Exptime(100)),
            ..
        }
    ));
    assert!(matches!(
        ok(b"gats -1 a\n"),
        Request::Get {
            cas: true,
            touch: Some(Exptime(-1)),
            ..
        }
    ));
    // gat with no key: memcached answers END.
    assert_eq!(keys(&ok(b"gat 10\r\n")), Vec::<&[u8]>::new());
    // Runs of spaces, leading and trailing spaces, bare \n.
    assert_eq!(keys(&ok(b"  get   a  b  \n")), vec![&b"a"[..], b"b"]);
    // More keys than memcached's 24-token window.
    let mut line = b"get".to_vec();
    for i in 0..100 {
        line.extend_from_slice(format!(" key{i}").as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    assert_eq!(keys(&ok(&line)).len(), 100);
    // A NUL ends the line, as memcached's strlen does.
    assert_eq!(keys(&ok(b"get a\0 b c\r\n")), vec![&b"a"[..]]);
}

#[test]
fn get_errors() {
    for input in [
        &b"get\r\n"[..],
        b"get \r\n",
        b"gets\r\n",
        b"gat\r\n",
        b"get\0 a\r\n",
    ] {
        assert_eq!(
            err(input),
            ParseError::UnknownCommand {
                consumed: input.len()
            },
            "{input:?}"
        );
    }
    assert_eq!(
        client(b"gat x a\r\n"),
        ("invalid exptime argument", 9, 0, Reply::Yes)
    );
    let long = [b"get a ", &[b'k'; 251][..], b"\r\n"].concat();
    assert_eq!(client(&long).0, "bad command line format");
    let max = [b"get ", &[b'k'; 250][..], b"\r\n"].concat();
    assert_eq!(keys(&ok(&max))[0].len(), 250);
    // Deviation: control bytes in keys are rejected (memcached stores them).
    assert_eq!(client(b"get a\tb\r\n").0, "bad command line format");
    assert_eq!(client(b"get a\r\r\n").0, "bad command line format");
    assert_eq!(client(b"get a\x7f\r\n").0, "bad command line format");
    // UTF-8 is fine.
    assert_eq!(keys(&ok("get clé\r\n".as_bytes())), vec!["clé".as_bytes()]);
}

// ---------------------------------------------------------------------------------------
// Storage commands.

#[test]
fn storage_commands() {
    let r = ok(b"set k 5 100 3\r\nabc\r\n");
    assert_eq!(
        r,
        Request::Store {
            mode: StoreMode::Set,
            key: b"k",
            flags: 5,
            exptime: Exptime(100),
            value: b"abc",
            cas_unique: None,
            reply: Reply::Yes,
        }
    );
    for (cmd, mode) in [
        ("add", StoreMode::Add),
        ("replace", StoreMode::Replace),
        ("append", StoreMode::Append),
        ("prepend", StoreMode::Prepend),
    ] {
        let input = format!("{cmd} k 0 0 1 noreply\r\nx\r\n");
        match ok(input.as_bytes()) {
            Request::Store {
                mode: m,
                reply,
                cas_unique,
                ..
            } => {
                assert_eq!((m, reply, cas_unique), (mode, Reply::No, None));
            }
            other => panic!("{other:?}"),
        }
    }
    match ok(b"cas k 0 0 1 18446744073709551615\r\nx\r\n") {
        Request::Store {
            mode,
            cas_unique,
            reply,
            ..
        } => {
            assert_eq!(
                (mode, cas_unique, reply),
                (StoreMode::Cas, Some(u64::MAX), Reply::Yes)
            );
        }
        other => panic!("{other:?}"),
    }
    // Empty value, bare \n after the line, binary data holding \r\n.
    assert!(matches!(
        ok(b"set k 0 0 0\n\r\n"),
        Request::Store { value: b"", .. }
    ));
    assert!(matches!(
        ok(b"set k 0 0 4\r\n\r\n\r\n\r\n"),
        Request::Store {
            value: b"\r\n\r\n",
            ..
        }
    ));
    // memcached's number quirks: 32-bit truncation, signs, trailing whitespace.
    assert!(matches!(
        ok(b"set k 4294967297 0 1\r\nx\r\n"),
        Request::Store { flags: 1, .. }
    ));
    assert!(matches!(
        ok(b"set k +5 -0 1\r\nx\r\n"),
        Request::Store {
            flags: 5,
            exptime: Exptime(0),
            ..
        }
    ));
    assert!(matches!(
        ok(b"set k 0 4294967306 1\r\nx\r\n"),
        Request::Store {
            exptime: Exptime(10),
            ..
        }
    ));
    assert!(matches!(
        ok(b"set k 0 0 4294967297\r\nx\r\n"),
        Request::Store { value: b"x", .. }
    ));
    assert!(matches!(
        ok(b"set k 0 0 1\r\r\nx\r\n"),
        Request::Store { value: b"x", .. }
    ));
    assert!(matches!(
        ok(b"set k 0 0 1\tjunk\r\nx\r\n"),
        Request::Store { value: b"x", .. }
    ));
    // A 6th token that is not noreply is ignored.
    assert!(matches!(
        ok(b"set k 0 0 1 foo\r\nx\r\n"),
        Request::Store {
            reply: Reply::Yes,
            ..
        }
    ));
}

#[test]
fn storage_errors() {
    // Wrong token counts: ERROR, only the line is consumed.
    for input in [
        &b"set k 0 0\r\n"[..],
        b"set k 0 0 1 noreply x\r\n",
        b"cas k 0 0 1\r\n",
        b"SET k 0 0 1\r\n",
    ] {
        assert_eq!(
            err(input),
            ParseError::UnknownCommand {
                consumed: input.len()
            }
        );
    }
    // Bad numbers: CLIENT_ERROR bad command line format, data not swallowed.
    for input in [
        &b"set k 0 0 -1\r\n"[..],
        b"set k 0 0 abc\r\n",
        b"set k -1 0 1\r\n",
        b"set k 0 abc 1\r\n",
        b"set k 0 0 2147483646\r\n",
        b"cas k 0 0 1 abc\r\n",
        b"cas k 0 0 1 -1\r\n",
        b"cas k 0 0 1 18446744073709551616\r\n",
    ] {
        assert_eq!(
            client(input),
            ("bad command line format", input.len(), 0, Reply::Yes),
            "{input:?}"
        );
    }
    // noreply suppresses them, even when "noreply" took the place of a number.
    assert_eq!(
        client(b"set k 0 0 noreply\r\n"),
        ("bad command line format", 19, 0, Reply::No)
    );
    assert_eq!(
        client(b"cas k 0 0 1 noreply\r\n"),
        ("bad command line format", 21, 0, Reply::No)
    );
    // Key too long: the data line is left to be parsed as a command.
    let long = [b"set ", &[b'a'; 251][..], b" 0 0 1\r\nx\r\n"].concat();
    assert_eq!(
        client(&long),
        ("bad command line format", long.len() - 3, 0, Reply::Yes)
    );
    let long_nr = [b"set ", &[b'a'; 251][..], b" 0 0 1 noreply\r\nx\r\n"].concat();
    assert_eq!(client(&long_nr).3, Reply::No);
    // Bad data chunk: line + length + 2 consumed.
    assert_eq!(
        client(b"set k 0 0 1\r\nxyz\r\n"),
        ("bad data chunk", 16, 0, Reply::Yes)
    );
    assert_eq!(
        client(b"set k 0 0 1 noreply\r\nxyz"),
        ("bad data chunk", 24, 0, Reply::No)
    );
    assert_eq!(
        client(b"set k 0 0 1\r\nx\nv"),
        ("bad data chunk", 16, 0, Reply::Yes)
    );
}

#[test]
fn too_large() {
    let limits = Limits {
        item_size_max: 10,
        ..Limits::default()
    };
    // Exactly the limit is fine.
    assert!(matches!(
        parse(b"set k 0 0 10\r\n0123456789\r\n", &limits),
        Ok(Some((Request::Store { .. }, 26)))
    ));
    // One more: SERVER_ERROR object too large for cache, swallow value + \r\n.
    let e = parse(b"set k 0 0 11\r\n", &limits).unwrap_err();
    assert_eq!(
        e,
        ParseError::TooLarge {
            key: b"k",
            base64_key: false,
            unlink: true,
            consumed: 14,
            swallow: 13,
            reply: Reply::Yes,
        }
    );
    let mut scratch = [0u8; MAX_KEY_LEN];
    assert_eq!(e.unlink_key(&mut scratch), Some(&b"k"[..]));
    let mut out = Vec::new();
    e.write_reply(&mut out);
    assert_eq!(out, b"SERVER_ERROR object too large for cache\r\n");
    // Only set unlinks; noreply silences it.
    match parse(b"add k 0 0 11 noreply\r\n", &limits).unwrap_err() {
        ParseError::TooLarge {
            unlink,
            reply,
            swallow,
            ..
        } => {
            assert_eq!((unlink, reply, swallow), (false, Reply::No, 13));
        }
        other => panic!("{other:?}"),
    }
    // ms: always answered, always unlinks, key may be base64.
    let e = parse(b"ms Zm9v 11 b q\r\n", &limits).unwrap_err();
    assert!(matches!(
        e,
        ParseError::TooLarge {
            base64_key: true,
            unlink: true,
            reply: Reply::Yes,
            swallow: 13,
            ..
        }
    ));
    assert_eq!(e.unlink_key(&mut scratch), Some(&b"foo"[..]));
    assert_eq!(err(b"bogus\r\n").unlink_key(&mut scratch), None);
    // A huge declared length is refused without waiting for (or allocating) the data.
    let e = err(b"set k 0 0 2147483645\r\n");
    assert_eq!(e.swallow(), 2_147_483_647);
}

// ---------------------------------------------------------------------------------------
// Other text commands.

#[test]
fn arith_touch_delete() {
    assert_eq!(
        ok(b"incr k 5\r\n"),
        Request::Arith {
            direction: ArithDirection::Incr,
            key: b"k",
            delta: 5,
            reply: Reply::Yes
        }
    );
    assert_eq!(
        ok(b"decr k 18446744073709551615 noreply\r\n"),
        Request::Arith {
            direction: ArithDirection::Decr,
            key: b"k",
            delta: u64::MAX,
            reply: Reply::No
        }
    );
    assert!(matches!(
        ok(b"incr k 5 foo\r\n"),
        Request::Arith {
            reply: Reply::Yes,
            ..
        }
    ));
    for input in [
        &b"incr k abc\r\n"[..],
        b"incr k -1\r\n",
        b"decr k 18446744073709551616\r\n",
        b"incr k  5x\r\n",
    ] {
        assert_eq!(
            client(input),
            ("invalid numeric delta argument", input.len(), 0, Reply::Yes)
        );
    }
    assert_eq!(client(b"incr k noreply\r\n").3, Reply::No);
    assert_eq!(
        err(b"incr k\r\n"),
        ParseError::UnknownCommand { consumed: 8 }
    );
    assert_eq!(
        err(b"incr k 1 noreply x\r\n"),
        ParseError::UnknownCommand { consumed: 20 }
    );

    assert_eq!(
        ok(b"touch k 10\r\n"),
        Request::Touch {
            key: b"k",
            exptime: Exptime(10),
            reply: Reply::Yes
        }
    );
    assert!(matches!(
        ok(b"touch k 10 noreply\r\n"),
        Request::Touch {
            reply: Reply::No,
            ..
        }
    ));
    assert_eq!(
        client(b"touch k abc\r\n"),
        ("invalid exptime argument", 13, 0, Reply::Yes)
    );
    assert_eq!(client(b"touch k abc noreply\r\n").3, Reply::No);
    assert_eq!(
        err(b"touch k\r\n"),
        ParseError::UnknownCommand { consumed: 9 }
    );

    assert_eq!(
        ok(b"delete k\r\n"),
        Request::Delete {
            key: b"k",
            reply: Reply::Yes
        }
    );
    assert_eq!(
        ok(b"delete k 0\r\n"),
        Request::Delete {
            key: b"k",
            reply: Reply::Yes
        }
    );
    assert_eq!(
        ok(b"delete k noreply\r\n"),
        Request::Delete {
            key: b"k",
            reply: Reply::No
        }
    );
    assert_eq!(
        ok(b"delete k 0 noreply\r\n"),
        Request::Delete {
            key: b"k",
            reply: Reply::No
        }
    );
    let usage = "bad command line format.  Usage: delete <key> [noreply]";
    assert_eq!(client(b"delete k 5\r\n"), (usage, 12, 0, Reply::Yes));
    assert_eq!(client(b"delete k 0 foo\r\n"), (usage, 16, 0, Reply::Yes));
    assert_eq!(client(b"delete k 5 noreply\r\n"), (usage, 20, 0, Reply::No));
    assert_eq!(
        err(b"delete k x y z\r\n"),
        ParseError::UnknownCommand { consumed: 16 }
    );
    assert_eq!(
        err(b"delete\r\n"),
        ParseError::UnknownCommand { consumed: 8 }
    );
    let long = [b"delete ", &[b'a'; 251][..], b" noreply\r\n"].concat();
    assert_eq!(
        client(&long),
        ("bad command line format", long.len(), 0, Reply::No)
    );
}

#[test]
fn misc_commands() {
    assert_eq!(ok(b"version\r\n"), Request::Version);
    assert_eq!(ok(b"version foo\r\n"), Request::Version);
    assert_eq!(ok(b"quit\r\n"), Request::Quit);
    assert_eq!(ok(b"quit now\n"), Request::Quit);

    assert_eq!(
        ok(b"flush_all\r\n"),
        Request::FlushAll {
            delay: None,
            reply: Reply::Yes
        }
    );
    assert_eq!(
        ok(b"flush_all 0\r\n"),
        Request::FlushAll {
            delay: Some(Exptime(0)),
            reply: Reply::Yes
        }
    );
    assert_eq!(
        ok(b"flush_all noreply\r\n"),
        Request::FlushAll {
            delay: None,
            reply: Reply::No
        }
    );
    assert_eq!(
        ok(b"flush_all 10 noreply\r\n"),
        Request::FlushAll {
            delay: Some(Exptime(10)),
            reply: Reply::No
        }
    );
    assert_eq!(
        ok(b"flush_all 10 foo\r\n"),
        Request::FlushAll {
            delay: Some(Exptime(10)),
            reply: Reply::Yes
        }
    );
    assert_eq!(
        ok(b"flush_all -5\r\n"),
        Request::FlushAll {
            delay: Some(Exptime(-5)),
            reply: Reply::Yes
        }
    );
    assert_eq!(
        client(b"flush_all abc\r\n"),
        ("invalid exptime argument", 15, 0, Reply::Yes)
    );
    assert_eq!(client(b"flush_all abc noreply\r\n").3, Reply::No);
    assert_eq!(client(b"flush_all noreply 10\r\n").3, Reply::Yes);
    assert_eq!(
        err(b"flush_all 1 2 3\r\n"),
        ParseError::UnknownCommand { consumed: 17 }
    );

    assert_eq!(
        ok(b"verbosity 1\r\n"),
        Request::Verbosity {
            level: 1,
            reply: Reply::Yes
        }
    );
    assert_eq!(
        ok(b"verbosity 1 noreply\r\n"),
        Request::Verbosity {
            level: 1,
            reply: Reply::No
        }
    );
    assert_eq!(
        ok(b"verbosity 1 2\r\n"),
        Request::Verbosity {
            level: 1,
            reply: Reply::Yes
        }
    );
    assert_eq!(
        err(b"verbosity\r\n"),
        ParseError::UnknownCommand { consumed: 11 }
    );
    assert_eq!(
        err(b"verbosity 1 2 3\r\n"),
        ParseError::UnknownCommand { consumed: 17 }
    );
    assert_eq!(
        client(b"verbosity x\r\n"),
        ("bad command line format", 13, 0, Reply::Yes)
    );
    assert_eq!(client(b"verbosity -1\r\n").0, "bad command line format");
    assert_eq!(client(b"verbosity noreply\r\n").3, Reply::No);

    assert_eq!(
        ok(b"cache_memlimit 100\r\n"),
        Request::CacheMemlimit {
            megabytes: 100,
            reply: Reply::Yes
        }
    );
    assert_eq!(
        ok(b"cache_memlimit 100 noreply\r\n"),
        Request::CacheMemlimit {
            megabytes: 100,
            reply: Reply::No
        }
    );
    assert_eq!(
        ok(b"cache_memlimit 4294967396\r\n"),
        Request::CacheMemlimit {
            megabytes: 100,
            reply: Reply::Yes
        }
    );
    assert_eq!(
        err(b"cache_memlimit abc\r\n"),
        ParseError::BareError {
            consumed: 20,
            reply: Reply::Yes
        }
    );
    let e = err(b"cache_memlimit abc noreply\r\n");
    assert_eq!(
        e,
        ParseError::BareError {
            consumed: 28,
            reply: Reply::No
        }
    );
    let mut out = Vec::new();
    e.write_reply(&mut out);
    assert!(out.is_empty());
    assert_eq!(
        err(b"cache_memlimit\r\n"),
        ParseError::UnknownCommand { consumed: 16 }
    );

    assert_eq!(ok(b"shutdown\r\n"), Request::Shutdown { graceful: false });
    assert_eq!(
        ok(b"shutdown graceful\r\n"),
        Request::Shutdown { graceful: true }
    );
    assert_eq!(
        client(b"shutdown foo\r\n"),
        ("invalid shutdown mode", 14, 0, Reply::Yes)
    );
    assert_eq!(
        client(b"shutdown graceful foo\r\n").0,
        "invalid shutdown mode"
    );
    assert_eq!(client(b"shutdown foo noreply\r\n").3, Reply::Yes);
}

#[test]
fn stats_groups() {
    assert_eq!(ok(b"stats\r\n"), Request::Stats(StatsGroup::General));
    assert_eq!(ok(b"stats   \r\n"), Request::Stats(StatsGroup::General));
    for (arg, group) in [
        ("settings", StatsGroup::Settings),
        ("items", StatsGroup::Items),
        ("slabs", StatsGroup::Slabs),
        ("sizes", StatsGroup::Sizes),
        ("conns", StatsGroup::Conns),
        ("reset", StatsGroup::Reset),
        ("reset foo", StatsGroup::Reset),
    ] {
        assert_eq!(
            ok(format!("stats {arg}\r\n").as_bytes()),
            Request::Stats(group)
        );
    }
    assert_eq!(
        ok(b"stats detail on\r\n"),
        Request::Stats(StatsGroup::Other(b"detail on"))
    );
    assert_eq!(
        ok(b"stats cachedump  1 2  \r\n"),
        Request::Stats(StatsGroup::Other(b"cachedump  1 2"))
    );
    assert_eq!(
        ok(b"stats noreply\r\n"),
        Request::Stats(StatsGroup::Other(b"noreply"))
    );
    assert_eq!(
        ok(b"stats Items\r\n"),
        Request::Stats(StatsGroup::Other(b"Items"))
    );
}

#[test]
fn unknown_and_closing() {
    for input in [
        &b"\r\n"[..],
        b"\n",
        b"\r\r\n",
        b" \r\n",
        b"g\r\n",
        b"bogus\r\n",
        b"Get k\r\n",
        b"GETS k\r\n",
        b"slabs automove 1\r\n",
        b"lru_crawler enable HTTP/1.1\r\n",
        b"mx k\r\n",
        b"m\r\n",
        b"mgx k\r\n",
        b"gx k HTTP/1.1\r\n",
        b"\0version\r\n",
    ] {
        assert_eq!(
            err(input),
            ParseError::UnknownCommand {
                consumed: input.len()
            },
            "{input:?}"
        );
    }
    // An unknown command ending in an HTTP version closes the connection.
    for input in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"HTTP/1.0\r\n",
        b"POST /x HTTP/2\r\n",
        b"mget k HTTP/1.1\r\n",
    ] {
        let e = err(input);
        assert_eq!(e, ParseError::HttpRequest);
        assert!(e.closes_connection());
        assert_eq!(e.consumed(), 0);
    }
    // `get HTTP/1.0` is just a get.
    assert_eq!(keys(&ok(b"get HTTP/1.0\r\n")), vec![&b"HTTP/1.0"[..]]);
}

#[test]
fn line_limits() {
    let l = lim();
    // 2048 bytes before the \n (its \r included) are fine, 2049 close the connection;
    // without a \n the same holds for the buffered bytes.
    let mut line = b"version".to_vec();
    line.resize(2048, b' ');
    assert_eq!(p(&line), Ok(None));
    line.push(b'\n');
    assert_eq!(p(&line), Ok(Some((Request::Version, 2049))));
    line.truncate(2047);
    line.extend_from_slice(b"\r\n");
    assert_eq!(p(&line), Ok(Some((Request::Version, 2049))));
    let mut long = b"version".to_vec();
    long.resize(2049, b' ');
    assert_eq!(p(&long), Err(ParseError::LineTooLong));
    long.push(b'\n');
    assert_eq!(p(&long), Err(ParseError::LineTooLong));
    long.truncate(2048);
    long.extend_from_slice(b"\r\n");
    assert_eq!(p(&long), Err(ParseError::LineTooLong));
    assert!(ParseError::LineTooLong.closes_connection());
    // get/gets multigets may be longer, after at most 100 leading spaces.
    let mut get = b"get".to_vec();
    while get.len() < 5000 {
        get.extend_from_slice(b" somekey");
    }
    assert_eq!(p(&get), Ok(None));
    get.extend_from_slice(b"\r\n");
    assert!(matches!(p(&get), Ok(Some((Request::Get { .. }, _)))));
    let spaced = [&[b' '; 100][..], &get].concat();
    assert!(matches!(p(&spaced), Ok(Some((Request::Get { .. }, _)))));
    let too_spaced = [&[b' '; 101][..], &get].concat();
    assert_eq!(p(&too_spaced), Err(ParseError::LineTooLong));
    let gets = [b"gets", &get[3..]].concat();
    assert!(matches!(
        p(&gets),
        Ok(Some((Request::Get { cas: true, .. }, _)))
    ));
    // gat is not exempt in memcached.
    let gat = [b"gat 0", &get[3..]].concat();
    assert_eq!(p(&gat), Err(ParseError::LineTooLong));
    // Up to the multiget limit only.
    let small = Limits {
        max_multiget_line_len: 3000,
        ..l
    };
    assert_eq!(parse(&get, &small), Err(ParseError::LineTooLong));
    assert_eq!(parse(&get[..2999], &small), Ok(None));
    assert_eq!(parse(&get[..3001], &small), Err(ParseError::LineTooLong));
}

// ---------------------------------------------------------------------------------------
// Meta commands.

#[test]
fn meta_get_flags() {
    let r = ok(b"mg Zm9v s v t c f h k l O123 q u T30 N40 R50 b\r\n");
    let m = meta(&r);
    assert_eq!(m.key, b"Zm9v");
    let f = &m.flags;
    assert!(f.return_size && f.return_value && f.return_ttl && f.return_cas && f.return_flags);
    assert!(f.return_hit && f.return_key && f.return_last_access && f.quiet && f.no_lru_bump);
    assert!(f.base64_key);
    assert_eq!(f.opaque, Some(&b"123"[..]));
    assert_eq!(f.ttl, Some(Exptime(30)));
    assert_eq!(f.vivify_ttl, Some(Exptime(40)));
    assert_eq!(f.recache_ttl, Some(50));
    let letters: Vec<u8> = f.in_order().iter().map(|x| x.letter).collect();
    assert_eq!(letters, b"svtcfhklOquTNRb");
    assert_eq!(f.in_order()[8].token, b"123");
    let mut scratch = [0u8; MAX_KEY_LEN];
    assert_eq!(m.decode_key(&mut scratch), b"foo");
    let f = meta(&ok(b"mg k P L I E7 x C8 F9 J1 D2\r\n")).flags;
    assert!(f.invalidate && f.remove_value);
    assert_eq!(
        (f.new_cas, f.compare_cas, f.client_flags),
        (Some(7), Some(8), Some(9))
    );
    assert_eq!((f.initial, f.delta), (Some(1), Some(2)));

    let m = meta(&ok(b"mg k\r\n"));
    assert_eq!(m.key, b"k");
    assert_eq!(m.flags, MetaFlags::default());
    // Only the first byte of a plain flag counts; mg ignores M.
    let m = meta(&ok(b"mg k vfoo MZ\r\n"));
    assert!(m.flags.return_value);
    assert_eq!(m.flags.in_order()[0].token, b"foo");
    assert_eq!(m.flags.mode, None);
    // Opaque: 31 bytes fit, the token with its O is at most 32.
    let o31 = [b"mg k O", &[b'a'; 31][..], b"\r\n"].concat();
    assert_eq!(meta(&ok(&o31)).flags.opaque.map(<[u8]>::len), Some(31));
    let o32 = [b"mg k O", &[b'a'; 32][..], b"\r\n"].concat();
    assert_eq!(
        client(&o32),
        ("opaque token too long", o32.len(), 0, Reply::Yes)
    );
    // Base64 key.
    let m = meta(&ok(b"mg Zm9vIGJhcg== b v\r\n"));
    assert_eq!(m.decode_key(&mut scratch), b"foo bar");
    // 17 flags pass, 18 are too many.
    let fl17 = b"mg k k s t c f v h u l q P L I O C1 D1 J1\r\n";
    assert_eq!(meta(&ok(fl17)).flags.in_order().len(), 17);
    let fl18 = b"mg k k s t c f v h u l q P L I O C1 D1 J1 M1\r\n";
    assert_eq!(client(fl18).0, "options flags are too long");
}

#[test]
fn meta_get_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"mg k zz\r\n", "invalid flag"),
        (b"mg k \t\r\n", "invalid flag"),
        (b"mg k v v\r\n", "duplicate flag"),
        (b"mg k \x80\r\n", "duplicate flag"),
        (b"mg k \x7f\r\n", "duplicate flag"),
        (b"mg k Tabc\r\n", "bad token in command line format"),
        (b"mg k T\r\n", "bad token in command line format"),
        (b"mg k Nx\r\n", "bad token in command line format"),
        (b"mg k Rx\r\n", "bad token in command line format"),
        (b"mg k Cx\r\n", "bad token in command line format"),
        (b"mg k C-1\r\n", "bad token in command line format"),
        (b"mg k Ex\r\n", "bad token in command line format"),
        (b"mg k Fx\r\n", "bad command line format"),
        (b"mg k Tx Fx\r\n", "bad token in command line format"),
        (b"mg k Tx Dx\r\n", "invalid numeric delta value"),
        (b"mg k Tx zz\r\n", "invalid flag"),
        (b"mg k Tx v v\r\n", "duplicate flag"),
        (b"mg k Dx\r\n", "invalid numeric delta value"),
        (b"mg k Jx\r\n", "invalid numeric initial value"),
        (b"mg k MXX\r\n", "incorrect length for M token"),
        (b"mg k M\r\n", "incorrect length for M token"),
        (b"mg k b\r\n", "error decoding key"),
        (b"mg bWs b\r\n", "error decoding key"),
        (b"mg !!!! b\r\n", "error decoding key"),
        (b"mg k\tx v\r\n", "bad command line format"),
    ];
    for (input, message) in cases {
        assert_eq!(
            client(input),
            (*message, input.len(), 0, Reply::Yes),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let long = [b"mg ", &[b'a'; 251][..], b" zz\r\n"].concat();
    assert_eq!(client(&long).0, "bad command line format");
    // The key check counts the base64 text.
    let long_b64 = [b"mg ", &[b'A'; 252][..], b" b\r\n"].concat();
    assert_eq!(client(&long_b64).0, "bad command line format");
    assert_eq!(err(b"mg\r\n"), ParseError::UnknownCommand { consumed: 4 });
    // q never silences a meta error.
    assert_eq!(client(b"mg k q zz\r\n").3, Reply::Yes);
}

#[test]
fn meta_set() {
    let r = ok(b"ms Zm9v 3 T10 F5 c k O1 q I MA C99 E100 N30 b\r\nabc\r\n");
    match &r {
        Request::MetaSet { meta, value } => {
            assert_eq!(*value, b"abc");
            let f = &meta.flags;
            assert_eq!(f.ttl, Some(Exptime(10)));
            assert_eq!(f.client_flags, Some(5));
            assert_eq!(f.mode, Some(MetaMode::Append));
            assert_eq!(f.compare_cas, Some(99));
            assert_eq!(f.new_cas, Some(100));
            assert_eq!(f.vivify_ttl, Some(Exptime(30)));
            assert!(f.return_cas && f.return_key && f.quiet && f.invalidate);
            assert_eq!(f.opaque, Some(&b"1"[..]));
        }
        other => panic!("{other:?}"),
    }
    for (m, mode) in [
        ("E", MetaMode::Add),
        ("A", MetaMode::Append),
        ("P", MetaMode::Prepend),
        ("R", MetaMode::Replace),
        ("S", MetaMode::Set),
    ] {
        let input = format!("ms k 1 M{m}\r\nx\r\n");
        assert_eq!(meta(&ok(input.as_bytes())).flags.mode, Some(mode));
    }
    assert_eq!(meta(&ok(b"ms k 1\r\nx\r\n")).flags.mode, None);
    assert!(matches!(
        ok(b"ms k 0\r\n\r\n"),
        Request::MetaSet { value: b"", .. }
    ));
    // Datalen truncated to 32 bits, like memcached.
    assert!(matches!(
        ok(b"ms k 4294967299\r\nabc\r\n"),
        Request::MetaSet { value: b"abc", .. }
    ));
    assert_eq!(
        meta(&ok(b"ms k 1 F4294967297\r\nx\r\n")).flags.client_flags,
        Some(1)
    );
    // 16 flags pass; 17 are too many, without swallowing.
    let fl16 = b"ms k 1 k s t c f v h u l q P L I O C1 D1\r\nx\r\n";
    assert_eq!(meta(&ok(fl16)).flags.in_order().len(), 16);
    let fl17 = b"ms k 1 k s t c f v h u l q P L I O C1 D1 J1\r\nx\r\n";
    assert_eq!(
        client(fl17),
        ("options flags too long", fl17.len() - 3, 0, Reply::Yes)
    );
}

#[test]
fn meta_set_errors() {
    // Before the datalen is known: nothing swallowed.
    assert_eq!(
        client(b"ms k\r\n"),
        ("bad command line format", 6, 0, Reply::Yes)
    );
    assert_eq!(
        client(b"ms k abc\r\n"),
        ("bad command line format", 10, 0, Reply::Yes)
    );
    assert_eq!(
        client(b"ms k -1\r\n"),
        ("bad command line format", 9, 0, Reply::Yes)
    );
    assert_eq!(
        client(b"ms k 2147483646\r\n"),
        ("bad command line format", 17, 0, Reply::Yes)
    );
    let long = [b"ms ", &[b'a'; 251][..], b" 3\r\n"].concat();
    assert_eq!(
        client(&long),
        ("bad command line format", long.len(), 0, Reply::Yes)
    );
    assert_eq!(err(b"ms\r\n"), ParseError::UnknownCommand { consumed: 4 });
    // After it: the data block is swallowed, whether or not it has arrived.
    let cases: &[(&[u8], &str)] = &[
        (b"ms k 3 zz\r\n", "invalid flag"),
        (b"ms k 3 c c\r\n", "duplicate flag"),
        (b"ms k 3 Tx\r\n", "bad token in command line format"),
        (b"ms k 3 Fx\r\n", "bad command line format"),
        (b"ms k 3 MZ\r\n", "invalid mode for ms M token"),
        (b"ms k 3 Ms\r\n", "invalid mode for ms M token"),
        (b"ms k 3 MSS\r\n", "incorrect length for M token"),
        (b"ms k 3 q zz\r\n", "invalid flag"),
        (b"ms !!!! 3 b\r\n", "error decoding key"),
        (b"ms k 3 S1\r\n", "invalid flag"),
    ];
    for (input, message) in cases {
        assert_eq!(
            client(input),
            (*message, input.len(), 5, Reply::Yes),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let o = [b"ms k 3 O", &[b'a'; 32][..], b"\r\n"].concat();
    assert_eq!(
        client(&o),
        ("opaque token too long", o.len(), 5, Reply::Yes)
    );
    // Bad data chunk, reported even with q.
    assert_eq!(
        client(b"ms k 3 q\r\nabcd\r\n"),
        ("bad data chunk", 15, 0, Reply::Yes)
    );
    assert_eq!(
        client(b"ms k 3\nabc\nv"),
        ("bad data chunk", 12, 0, Reply::Yes)
    );
}

#[test]
fn meta_delete_arith_debug_noop() {
    let m = meta(&ok(b"md k q C5 I T30 x O9 k\r\n"));
    assert!(m.flags.quiet && m.flags.invalidate && m.flags.remove_value && m.flags.return_key);
    assert_eq!(
        (m.flags.compare_cas, m.flags.ttl),
        (Some(5), Some(Exptime(30)))
    );
    assert!(matches!(ok(b"md k\r\n"), Request::MetaDelete(_)));
    assert_eq!(meta(&ok(b"md k MZ\r\n")).flags.mode, None);
    for input in [
        &b"md k zz\r\n"[..],
        b"md k q q\r\n",
        b"md k Tx\r\n",
        b"md !!!! b\r\n",
        b"md k \x80\r\n",
    ] {
        assert_eq!(
            client(input),
            ("invalid or duplicate flag", input.len(), 0, Reply::Yes)
        );
    }
    let o = [b"md k O", &[b'a'; 32][..], b"\r\n"].concat();
    assert_eq!(client(&o).0, "opaque token too long");
    assert_eq!(
        client(b"md k k s t c f v h u l q P L I O C1 D1 J1 M1\r\n").0,
        "options flags too long"
    );
    assert_eq!(err(b"md\r\n"), ParseError::UnknownCommand { consumed: 4 });

    let m = meta(&ok(b"ma k N0 J10 D3 MD v t c T5 q\r\n"));
    let f = &m.flags;
    assert_eq!(
        (f.vivify_ttl, f.initial, f.delta, f.mode),
        (Some(Exptime(0)), Some(10), Some(3), Some(MetaMode::Decr))
    );
    assert!(f.return_value && f.return_ttl && f.return_cas && f.quiet);
    assert_eq!(f.ttl, Some(Exptime(5)));
    for (m, mode) in [
        ("I", MetaMode::Incr),
        ("+", MetaMode::Incr),
        ("D", MetaMode::Decr),
        ("-", MetaMode::Decr),
    ] {
        let input = format!("ma k M{m}\r\n");
        assert_eq!(meta(&ok(input.as_bytes())).flags.mode, Some(mode));
    }
    assert_eq!(meta(&ok(b"ma k\r\n")).flags.delta, None);
    for input in [&b"ma k Mi\r\n"[..], b"ma k Md\r\n", b"ma k MZ v\r\n"] {
        assert_eq!(client(input).0, "invalid mode for ma M token");
    }
    for input in [
        &b"ma k Dx\r\n"[..],
        b"ma k Jx\r\n",
        b"ma k zz\r\n",
        b"ma k D-1\r\n",
        b"ma k MDD\r\n",
        b"ma k D18446744073709551616\r\n",
    ] {
        assert_eq!(client(input).0, "invalid or duplicate flag");
    }
    // ma checks the mode before the opaque.
    let o = [b"ma k MZ O", &[b'a'; 32][..], b"\r\n"].concat();
    assert_eq!(client(&o).0, "invalid mode for ma M token");
    assert_eq!(err(b"ma\r\n"), ParseError::UnknownCommand { consumed: 4 });

    assert_eq!(ok(b"mn\r\n"), Request::MetaNoop);
    assert_eq!(ok(b"mn foo bar\r\n"), Request::MetaNoop);
    let m = meta(&ok(b"me k\r\n"));
    assert_eq!((m.key, m.flags.base64_key), (&b"k"[..], false));
    let m = meta(&ok(b"me Zm9v b\r\n"));
    let mut scratch = [0u8; MAX_KEY_LEN];
    assert_eq!(m.decode_key(&mut scratch), b"foo");
    assert!(matches!(ok(b"me k foo bar\r\n"), Request::MetaDebug(_)));
    for input in [&b"me\r\n"[..], b"me !!!! b\r\n", b"me a\tb\r\n"] {
        assert_eq!(client(input).0, "bad command line format");
    }
}

// ---------------------------------------------------------------------------------------
// Pipelines and split points.

/// A pipeline of many mixed commands, valid and not, with data blocks.
fn pipeline() -> Vec<u8> {
    let mut s = Vec::new();
    let parts: &[&[u8]] = &[
        b"set foo 1 2 3\r\nbar\r\n",
        b"get foo\r\n",
        b"gets foo baz qux\n",
        b"gat 10 foo\r\n",
        b"gats 0 foo bar\r\n",
        b"add a 0 0 0\r\n\r\n",
        b"replace a 0 0 2 noreply\r\nhi\r\n",
        b"append a 0 0 1\r\n!\r\n",
        b"prepend a 0 0 1\r\n^\r\n",
        b"cas a 0 0 1 42\r\nz\r\n",
        b"incr n 1\r\n",
        b"decr n 2 noreply\r\n",
        b"touch a 100\r\n",
        b"delete a\r\n",
        b"delete a 0 noreply\r\n",
        b"ms mk 5 T0 F3 c k O77\r\nhello\r\n",
        b"mg mk v s t c f k O1 q\r\n",
        b"mg Zm9v b v\r\n",
        b"md mk q I T30\r\n",
        b"ma cnt N0 J5 D2 MD v\r\n",
        b"mn\r\n",
        b"me mk\r\n",
        b"flush_all 0\r\n",
        b"verbosity 1 noreply\r\n",
        b"stats\r\n",
        b"stats items\r\n",
        b"version\r\n",
        b"cache_memlimit 100\r\n",
        // errors
        b"bogus command\r\n",
        b"set k 0 0 1\r\nxyz\r\n",
        b"set k 0 0 -1\r\n",
        b"incr n abc\r\n",
        b"mg k zz\r\n",
        b"ms k 3 zz\r\nabc\r\n",
        b"ms k 3 q\r\nabcd\r\n",
        b"md k Tx\r\n",
        b"ma k MZ\r\n",
        b"gat x k\r\n",
        b"\r\n",
        b"delete k 5\r\n",
        b"cache_memlimit x noreply\r\n",
        b"shutdown now\r\n",
        b"ms k 2000000 T0\r\n",
        b"get last\r\n",
        // swallows past the end of the stream
        b"set big 0 0 1048577\r\n",
    ];
    for part in parts {
        s.extend_from_slice(part);
    }
    s
}

/// Outcomes of parsing a whole buffer request by request: each result and where it started.
fn outcomes(stream: &[u8]) -> Vec<(usize, String)> {
    let mut v = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        match parse(&stream[pos..], &lim()) {
            Ok(None) => break,
            Ok(Some((r, n))) => {
                v.push((pos, format!("{r:?} {n}")));
                pos += n;
            }
            Err(e) => {
                v.push((pos, format!("{e:?}")));
                if e.closes_connection() {
                    break;
                }
                pos += e.consumed() + e.swallow();
            }
        }
    }
    v
}

/// A connection that receives `stream` in pieces ending at each of `cuts` (then the rest):
/// the parser sees a growing buffer and is called again after each read.
fn chunked(stream: &[u8], cuts: &[usize]) -> Vec<(usize, String)> {
    let mut v = Vec::new();
    let mut pos = 0; // start of the unparsed bytes
    let mut skip_to = 0; // bytes before this are being swallowed
    for avail in cuts.iter().copied().chain(std::iter::once(stream.len())) {
        loop {
            if pos < skip_to {
                pos = skip_to.min(avail);
                if pos < skip_to {
                    break;
                }
            }
            if pos >= avail {
                break;
            }
            match parse(&stream[pos..avail], &lim()) {
                Ok(None) => break,
                Ok(Some((r, n))) => {
                    v.push((pos, format!("{r:?} {n}")));
                    pos += n;
                }
                Err(e) => {
                    v.push((pos, format!("{e:?}")));
                    if e.closes_connection() {
                        return v;
                    }
                    pos += e.consumed();
                    skip_to = pos + e.swallow();
                }
            }
        }
    }
    v
}

#[test]
// Under Miri each parse call retags the 2 MB buffer per byte (Stacked Borrows keeps a borrow
// stack per byte): 30 minutes were not enough. The byte-by-byte test below runs there.
#[cfg_attr(miri, ignore = "a 2 MB buffer parsed ~1,300 times: hours under Miri")]
fn pipeline_parses_the_same_at_every_split_point() {
    // Data blocks may be large here: shrink them to the default limits.
    let mut stream = pipeline();
    // The 2 MB ms above is TooLarge and swallows 2000002 bytes: give it its data.
    let tail = b"ms k 2000000 T0\r\n";
    let at = stream.windows(tail.len()).position(|w| w == tail).unwrap() + tail.len();
    let mut data = vec![b'x'; 2_000_000];
    data.extend_from_slice(b"\r\n");
    stream.splice(at..at, data);
    let whole = outcomes(&stream);
    assert!(whole.len() > 40, "{whole:?}");
    assert!(
        whole[whole.len() - 2].1.contains("[108, 97, 115, 116]"),
        "{:?}",
        whole[whole.len() - 2]
    );
    assert!(
        whole[whole.len() - 1].1.starts_with("TooLarge"),
        "{:?}",
        whole.last()
    );
    // Every two-chunk split, except inside the 2 MB block, where we sample.
    let mut points: Vec<usize> = (0..at).collect();
    points.extend((at..at + 2_000_002).step_by(99_991));
    points.extend(at + 2_000_000..=stream.len());
    for k in points {
        assert_eq!(chunked(&stream, &[k]), whole, "split at {k}");
    }
}

#[test]
fn pipeline_delivered_byte_by_byte_parses_the_same() {
    // The pipeline up to its 2 MB request: every request split at every byte at once.
    let stream = pipeline();
    let tail = b"ms k 2000000 T0\r\n";
    let end = stream.windows(tail.len()).position(|w| w == tail).unwrap();
    let small = &stream[..end];
    let whole = outcomes(small);
    assert!(whole.len() > 40, "{whole:?}");
    let cuts: Vec<usize> = (1..small.len()).collect();
    assert_eq!(chunked(small, &cuts), whole);
}

#[test]
fn every_prefix_of_a_request_is_incomplete_or_the_same_answer() {
    let stream = pipeline();
    let mut pos = 0;
    while pos < stream.len() {
        let rest = &stream[pos..];
        let full = parse(rest, &lim());
        let needed = match &full {
            Ok(Some((_, n))) => *n,
            Ok(None) => break,
            Err(e) => e.consumed(),
        };
        for len in 0..rest.len() {
            let r = parse(&rest[..len], &lim());
            if len < needed {
                assert!(
                    matches!(r, Ok(None)) || r == full,
                    "prefix {len} of {:?}",
                    String::from_utf8_lossy(&rest[..needed])
                );
            } else {
                assert_eq!(r, full, "prefix {len}");
            }
        }
        match full {
            Ok(Some((_, n))) => pos += n,
            Err(e) => pos += e.consumed() + e.swallow(),
            Ok(None) => unreachable!(),
        }
    }
    assert!(pos > stream.len(), "the last request swallows past the end");
}

// ---------------------------------------------------------------------------------------
// Invariants over generated input.

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check_request_invariants(r: &Request<'_>) {
    let text_key = |k: &[u8]| {
        assert!(
            !k.is_empty() && k.len() <= MAX_KEY_LEN,
            "key length {}",
            k.len()
        );
        assert!(k.iter().all(|&b| b > b' ' && b != 0x7f), "key {k:?}");
    };
    match r {
        Request::Get { keys, .. } => keys.iter().for_each(text_key),
        Request::Store {
            key,
            cas_unique,
            mode,
            ..
        } => {
            text_key(key);
            assert_eq!(cas_unique.is_some(), *mode == StoreMode::Cas);
        }
        Request::Delete { key, .. } | Request::Arith { key, .. } | Request::Touch { key, .. } => {
            text_key(key)
        }
        Request::MetaGet(m)
        | Request::MetaDelete(m)
        | Request::MetaArith(m)
        | Request::MetaDebug(m)
        | Request::MetaSet { meta: m, .. } => {
            let mut scratch = [0u8; MAX_KEY_LEN];
            let k = m.decode_key(&mut scratch);
            assert!(!k.is_empty() && k.len() <= MAX_KEY_LEN);
            if !m.flags.base64_key {
                text_key(k);
            }
            assert!(m.flags.in_order().len() <= 17);
            if let Some(o) = m.flags.opaque {
                assert!(o.len() < MAX_OPAQUE_LEN);
            }
        }
        _ => {}
    }
}

#[test]
fn generated_input_keeps_the_invariants() {
    let words: &[&[u8]] = &[
        b"get",
        b"gets",
        b"gat",
        b"gats",
        b"set",
        b"add",
        b"cas",
        b"append",
        b"incr",
        b"decr",
        b"touch",
        b"delete",
        b"flush_all",
        b"stats",
        b"version",
        b"verbosity",
        b"shutdown",
        b"cache_memlimit",
        b"mg",
        b"ms",
        b"md",
        b"ma",
        b"mn",
        b"me",
        b"noreply",
        b"0",
        b"1",
        b"3",
        b"-1",
        b"10",
        b"4294967297",
        b"18446744073709551616",
        b"k",
        b"key",
        b"Zm9v",
        b"b",
        b"v",
        b"q",
        b"T10",
        b"O1",
        b"MZ",
        b"ME",
        b"MD",
        b"C5",
        b"F1",
        b"x",
        b"abc",
        b"HTTP/1.1",
        b"\t",
        b"\x00",
        b"\x80",
        b"=",
    ];
    let seps: &[&[u8]] = &[b" ", b" ", b" ", b"  ", b"\r\n", b"\n", b"\r"];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let limits = Limits {
        item_size_max: 64,
        max_line_len: 128,
        max_multiget_line_len: 512,
    };
    // FUZZ_ITERS=1000000 for a longer run.
    let iters = std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    for _ in 0..iters {
        let mut buf = Vec::new();
        for _ in 0..rng.below(40) {
            buf.extend_from_slice(words[rng.below(words.len())]);
            buf.extend_from_slice(seps[rng.below(seps.len())]);
            if rng.below(20) == 0 {
                buf.push(rng.next() as u8);
            }
        }
        let mut pos = 0;
        while pos < buf.len() {
            match parse(&buf[pos..], &limits) {
                Ok(None) => break,
                Ok(Some((r, n))) => {
                    assert!(n > 0 && n <= buf.len() - pos);
                    check_request_invariants(&r);
                    pos += n;
                }
                Err(e) => {
                    if e.closes_connection() {
                        break;
                    }
                    assert!(e.consumed() > 0 && e.consumed() <= buf.len() - pos);
                    let mut out = Vec::new();
                    e.write_reply(&mut out);
                    assert!(out.is_empty() || out.ends_with(b"\r\n"));
                    pos += e.consumed() + e.swallow();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Differential replay against answers recorded from a real memcached
// (`protocol/tools/diff_memcached.py`): from the file MEMCACHED_DIFF_CASES names, or else
// recorded on the spot from a memcached this test starts. Ignored by a plain `cargo test`
// (recording takes seconds and needs memcached and python3); CI runs it.

/// What memcached answers on a cache where every key misses, or `None` when this model does
/// not know (the case is then skipped).
fn respond_miss(req: &Request<'_>, out: &mut Vec<u8>) -> Option<bool> {
    use base64::Engine as _;
    let echo = |m: &MetaKeyed<'_>, l: &mut MetaLine<'_>, letters: &[u8]| {
        for f in m.flags.in_order() {
            if !letters.contains(&f.letter) {
                continue;
            }
            match f.letter {
                b'O' => {
                    l.flag_bytes(b'O', f.token);
                }
                b'k' if m.flags.base64_key => {
                    let mut scratch = [0u8; MAX_KEY_LEN];
                    let enc = base64::engine::general_purpose::STANDARD
                        .encode(m.decode_key(&mut scratch));
                    l.flag_bytes(b'k', enc.as_bytes()).flag(b'b');
                }
                b'k' => {
                    l.flag_bytes(b'k', m.key);
                }
                _ => {}
            }
        }
    };
    match req {
        Request::Stats(StatsGroup::Reset) => out.extend_from_slice(reply::RESET),
        Request::Stats(_) | Request::Shutdown { .. } => return None,
        Request::CacheMemlimit { megabytes, reply } => {
            if reply.wanted() {
                out.extend_from_slice(match megabytes {
                    0..=7 => &b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"[..],
                    8..=1_000_000_000 => reply::OK,
                    _ => b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n",
                });
            }
        }
        Request::MetaGet(m) => {
            if m.flags.vivify_ttl.is_some() {
                return None;
            }
            if !m.flags.quiet {
                let mut l = MetaLine::status(out, MetaStatus::Miss);
                echo(m, &mut l, b"Ok");
                l.finish();
            }
        }
        Request::MetaDelete(m) => {
            let mut l = MetaLine::status(out, MetaStatus::NotFound);
            echo(m, &mut l, b"Ok");
            l.finish();
        }
        Request::MetaArith(m) => {
            if m.flags.vivify_ttl.is_some() {
                return None;
            }
            let mut l = MetaLine::status(out, MetaStatus::NotFound);
            echo(m, &mut l, b"Ok");
            l.finish();
        }
        Request::MetaSet { meta: m, .. } => {
            let f = &m.flags;
            if f.return_cas || f.compare_cas.is_some() || f.invalidate || f.vivify_ttl.is_some() {
                return None;
            }
            let stored = matches!(f.mode, None | Some(MetaMode::Set) | Some(MetaMode::Add));
            if stored && f.quiet {
                return Some(false);
            }
            let status = if stored {
                MetaStatus::Done
            } else {
                MetaStatus::NotStored
            };
            let mut l = MetaLine::status(out, status);
            echo(m, &mut l, b"Ok");
            l.finish();
        }
        other => return Some(respond(other, out)),
    }
    Some(false)
}

fn from_hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A memcached started for the differential, killed when dropped.
struct SpawnedMemcached(std::process::Child);

impl Drop for SpawnedMemcached {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the differential must compare (CI sets this), so that a missing memcached fails
/// the test instead of skipping it.
const REQUIRE_MEMCACHED: &str = "FERROCACHE_REQUIRE_MEMCACHED";

/// The recorded cases: the file MEMCACHED_DIFF_CASES names, or `MEMCACHED_DIFF_N` (3000)
/// cases recorded now from a memcached (`MEMCACHED_BIN`, else `memcached` on the PATH)
/// started on a free loopback port. Err says why neither could be had.
fn recorded_cases() -> Result<String, String> {
    use std::process::{Command, Stdio};
    if let Ok(path) = std::env::var("MEMCACHED_DIFF_CASES") {
        return std::fs::read_to_string(&path)
            .map_err(|e| format!("MEMCACHED_DIFF_CASES={path}: {e}"));
    }
    let binary = std::env::var("MEMCACHED_BIN").unwrap_or_else(|_| "memcached".into());
    let version = Command::new(&binary)
        .arg("-V")
        .output()
        .map_err(|e| format!("no memcached to record from ({binary}: {e})"))?;
    if !version.status.success() {
        return Err(format!("`{binary} -V` failed: {version:?}"));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    // No -A: `shutdown` is not generated. `-u root` only matters when run as root.
    let _server = SpawnedMemcached(
        Command::new(&binary)
            .args([
                "-u",
                "root",
                "-U",
                "0",
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {binary}: {e}"))?,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "{binary} did not listen on port {port} within 10 s"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let cases = std::env::var("MEMCACHED_DIFF_N").unwrap_or_else(|_| "3000".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/diff_memcached.py");
    let recorded = Command::new("python3")
        .args([script, &port.to_string(), &cases])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running python3 {script}: {e}"))?;
    if !recorded.status.success() {
        return Err(format!("{script} failed: {:?}", recorded.status));
    }
    eprintln!(
        "recorded {cases} cases from {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    String::from_utf8(recorded.stdout).map_err(|e| format!("{script} wrote non-UTF-8: {e}"))
}

/// `VERSION <any>\r\n` as this parser's model answers it (`respond` says 1.6.18), so cases
/// recorded from another memcached version compare on everything else.
fn normalize_version(reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply.len());
    let mut rest = reply;
    while let Some(at) = rest.windows(8).position(|w| w == b"VERSION ") {
        let line_start = at == 0 || rest[at - 1] == b'\n';
        let end = rest[at..].windows(2).position(|w| w == b"\r\n");
        match end {
            Some(end) if line_start => {
                out.extend_from_slice(&rest[..at]);
                out.extend_from_slice(b"VERSION 1.6.18");
                rest = &rest[at + end..];
            }
            _ => {
                out.extend_from_slice(&rest[..at + 8]);
                rest = &rest[at + 8..];
            }
        }
    }
    out.extend_from_slice(rest);
    out
}

#[test]
#[ignore = "records from a real memcached: FERROCACHE_REQUIRE_MEMCACHED=1 cargo test -p ferrocache-protocol --lib -- --ignored diff_against_recorded_memcached"]
fn diff_against_recorded_memcached() {
    let text = match recorded_cases() {
        Ok(text) => text,
        Err(why) if std::env::var_os(REQUIRE_MEMCACHED).is_some() => {
            panic!("{REQUIRE_MEMCACHED} is set but there is nothing to compare with: {why}")
        }
        Err(why) => {
            eprintln!(
                "\n*** SKIPPED diff_against_recorded_memcached: {why}.\n*** Nothing was \
                 compared. Install memcached (apt-get install memcached) or set \
                 MEMCACHED_DIFF_CASES; set {REQUIRE_MEMCACHED}=1 to make this a failure.\n"
            );
            return;
        }
    };
    let (mut compared, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    'cases: for line in text.lines() {
        let mut parts = line.split(' ');
        let input = from_hex(parts.next().unwrap());
        let expected = normalize_version(&from_hex(parts.next().unwrap()));
        let closed = parts.next().unwrap() == "1";
        if input.first() == Some(&0x80) {
            // memcached (-B auto) takes a first byte 0x80 for the binary protocol.
            skipped += 1;
            continue;
        }
        let mut out = Vec::new();
        let mut did_close = false;
        let mut pos = 0;
        while pos < input.len() {
            match parse(&input[pos..], &lim()) {
                Ok(None) => break,
                Ok(Some((req, n))) => {
                    match respond_miss(&req, &mut out) {
                        None => {
                            skipped += 1;
                            continue 'cases;
                        }
                        Some(true) => {
                            did_close = true;
                            break;
                        }
                        Some(false) => {}
                    }
                    pos += n;
                }
                Err(e) => {
                    let line_end = input[pos..].iter().position(|b| *b == b'\n').unwrap_or(0);
                    let line = &input[pos..pos + line_end];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if matches!(
                        e,
                        ParseError::Client {
                            message: "bad command line format",
                            ..
                        }
                    ) && line.iter().any(|&b| (b < b' ' && b != 0) || b == 0x7f)
                    {
                        // Known deviation: a control byte in a key.
                        skipped += 1;
                        continue 'cases;
                    }
                    // memcached sends the reply only once it has swallowed the data block.
                    if pos + e.consumed() + e.swallow() <= input.len() {
                        e.write_reply(&mut out);
                    }
                    if e.closes_connection() {
                        did_close = true;
                        break;
                    }
                    pos += e.consumed() + e.swallow();
                }
            }
        }
        compared += 1;
        if out != expected || did_close != closed {
            failures.push(format!(
                "{:?}\n   memcached: {:?} closed={closed}\n   ours:      {:?} closed={did_close}",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&out),
            ));
        }
    }
    eprintln!("compared {compared}, skipped {skipped}");
    // Most cases are within the model (about 85 % of the generator's); a file or recording
    // that compares little has gone wrong, however green its few comparisons are.
    assert!(
        compared >= 100 && compared * 2 >= compared + skipped,
        "compared only {compared} of {} cases",
        compared + skipped
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
