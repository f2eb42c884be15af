//! The memcached text protocol through the public parser: retrieval (`get`, `gets`, `gat`,
//! `gats`), storage (`set`, `add`, `replace`, `append`, `prepend`, `cas`) and its limits, the
//! other commands (`incr`/`decr`, `touch`, `delete`, `flush_all`, `stats`, ...), unknown
//! commands and line-length limits; every success and every error path.
//!
//! Only the crate's public API: never a crate-private item, never I/O.

mod common;

use common::*;
use ferrocache_protocol::memcache::*;

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
