//! Unit tests of the binary parser and encoder: one per opcode family and per error, plus the
//! split-anywhere property. Expected bytes were captured from memcached 1.6.18 (`-B binary`).

use super::*;
use crate::memcache::{ArithDirection, Exptime, Limits, Reply, StoreMode};

const OPAQUE: u32 = 0xdead_beef;

/// A request frame; `body_len` defaults to the real body length.
fn frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    frame_with(
        opcode,
        extras,
        key,
        value,
        cas,
        extras.len() + key.len() + value.len(),
    )
}

fn frame_with(
    opcode: u8,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
    cas: u64,
    body_len: usize,
) -> Vec<u8> {
    let mut out = vec![REQUEST_MAGIC, opcode];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.push(0);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.extend_from_slice(&OPAQUE.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

fn set_extras(flags: u32, exptime: u32) -> Vec<u8> {
    let mut e = flags.to_be_bytes().to_vec();
    e.extend_from_slice(&exptime.to_be_bytes());
    e
}

fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    let mut e = delta.to_be_bytes().to_vec();
    e.extend_from_slice(&initial.to_be_bytes());
    e.extend_from_slice(&exptime.to_be_bytes());
    e
}

fn limits() -> Limits {
    Limits::default()
}

/// Parses a whole frame and checks it consumed `expected_consumed` bytes.
fn ok(bytes: &[u8], expected_consumed: usize) -> Command<'_> {
    let (request, consumed) = parse(bytes, &limits()).expect("parses").expect("complete");
    assert_eq!(consumed, expected_consumed);
    assert_eq!(request.header.opaque, OPAQUE);
    request.command
}

fn err(bytes: &[u8]) -> ParseError<'_> {
    parse(bytes, &limits()).expect_err("refused")
}

#[test]
fn get_family_decodes_key_quietness_and_key_echo() {
    for (op, with_key, reply) in [
        (0x00, false, Reply::Yes),
        (0x09, false, Reply::No),
        (0x0c, true, Reply::Yes),
        (0x0d, true, Reply::No),
    ] {
        let f = frame(op, &[], b"foo", &[], 0);
        assert_eq!(
            ok(&f, f.len()),
            Command::Get {
                key: b"foo",
                touch: None,
                with_key,
                reply
            },
            "opcode {op:#x}"
        );
    }
}

#[test]
fn gat_family_and_touch_carry_the_expiration() {
    let e = 100u32.to_be_bytes();
    for (op, with_key, reply) in [
        (0x1d, false, Reply::Yes),
        (0x1e, false, Reply::No),
        (0x23, true, Reply::Yes),
        (0x24, true, Reply::No),
    ] {
        let f = frame(op, &e, b"k", &[], 0);
        assert_eq!(
            ok(&f, f.len()),
            Command::Get {
                key: b"k",
                touch: Some(Exptime(100)),
                with_key,
                reply
            }
        );
    }
    let f = frame(0x1c, &e, b"k", &[], 0);
    assert_eq!(
        ok(&f, f.len()),
        Command::Touch {
            key: b"k",
            exptime: Exptime(100)
        }
    );
}

#[test]
fn storage_opcodes_decode_mode_flags_exptime_value() {
    let e = set_extras(0xcafe, 30);
    for (op, mode, reply) in [
        (0x01, StoreMode::Set, Reply::Yes),
        (0x11, StoreMode::Set, Reply::No),
        (0x02, StoreMode::Add, Reply::Yes),
        (0x12, StoreMode::Add, Reply::No),
        (0x03, StoreMode::Replace, Reply::Yes),
        (0x13, StoreMode::Replace, Reply::No),
    ] {
        let f = frame(op, &e, b"key", b"value", 0);
        assert_eq!(
            ok(&f, f.len()),
            Command::Store {
                mode,
                key: b"key",
                flags: 0xcafe,
                exptime: Exptime(30),
                value: b"value",
                cas_unique: None,
                reply
            }
        );
    }
}

#[test]
fn a_header_cas_turns_set_add_replace_into_cas() {
    for op in [0x01, 0x02, 0x03] {
        let f = frame(op, &set_extras(0, 0), b"k", b"v", 42);
        match ok(&f, f.len()) {
            Command::Store {
                mode, cas_unique, ..
            } => {
                assert_eq!(mode, StoreMode::Cas);
                assert_eq!(cas_unique, Some(42));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn append_prepend_have_no_extras_and_keep_their_cas() {
    for (op, mode, reply) in [
        (0x0e, StoreMode::Append, Reply::Yes),
        (0x19, StoreMode::Append, Reply::No),
        (0x0f, StoreMode::Prepend, Reply::Yes),
        (0x1a, StoreMode::Prepend, Reply::No),
    ] {
        let f = frame(op, &[], b"k", b"tail", 7);
        assert_eq!(
            ok(&f, f.len()),
            Command::Store {
                mode,
                key: b"k",
                flags: 0,
                exptime: Exptime(0),
                value: b"tail",
                cas_unique: Some(7),
                reply
            }
        );
    }
    // Extras are not allowed on append.
    let f = frame(0x0e, &[0; 8], b"k", b"v", 0);
    assert!(matches!(err(&f), ParseError::Invalid { .. }));
}

#[test]
fn delete_decodes_cas_and_quietness() {
    let f = frame(0x04, &[], b"k", &[], 0);
    assert_eq!(
        ok(&f, f.len()),
        Command::Delete {
            key: b"k",
            cas_unique: None,
            reply: Reply::Yes
        }
    );
    let f = frame(0x14, &[], b"k", &[], 9);
    assert_eq!(
        ok(&f, f.len()),
        Command::Delete {
            key: b"k",
            cas_unique: Some(9),
            reply: Reply::No
        }
    );
}

#[test]
fn arith_decodes_delta_initial_and_the_no_create_expiration() {
    let f = frame(0x05, &arith_extras(5, 10, 60), b"c", &[], 0);
    assert_eq!(
        ok(&f, f.len()),
        Command::Arith {
            direction: ArithDirection::Incr,
            key: b"c",
            delta: 5,
            create: Some((10, Exptime(60))),
            cas_unique: None,
            reply: Reply::Yes
        }
    );
    let f = frame(0x16, &arith_extras(1, 0, ARITH_NO_CREATE), b"c", &[], 0);
    assert_eq!(
        ok(&f, f.len()),
        Command::Arith {
            direction: ArithDirection::Decr,
            key: b"c",
            delta: 1,
            create: None,
            cas_unique: None,
            reply: Reply::No
        }
    );
    for op in [0x06, 0x15] {
        let f = frame(op, &arith_extras(1, 0, 0), b"c", &[], 0);
        assert!(matches!(ok(&f, f.len()), Command::Arith { .. }));
    }
    // Wrong extras length or a value: invalid.
    let f = frame(0x05, &[0; 8], b"c", &[], 0);
    assert!(matches!(err(&f), ParseError::Invalid { .. }));
    let f = frame(0x05, &arith_extras(1, 0, 0), b"c", b"x", 0);
    assert!(matches!(err(&f), ParseError::Invalid { .. }));
}

#[test]
fn bodiless_opcodes_decode() {
    for (op, command) in [
        (0x07, Command::Quit { reply: Reply::Yes }),
        (0x17, Command::Quit { reply: Reply::No }),
        (
            0x08,
            Command::Flush {
                delay: None,
                reply: Reply::Yes,
            },
        ),
        (
            0x18,
            Command::Flush {
                delay: None,
                reply: Reply::No,
            },
        ),
        (0x0a, Command::Noop),
        (0x0b, Command::Version),
        (0x20, Command::SaslListMechs),
        (0x10, Command::Stat { group: b"" }),
    ] {
        let f = frame(op, &[], &[], &[], 0);
        assert_eq!(ok(&f, 24), command, "opcode {op:#x}");
    }
    let f = frame(0x08, &5u32.to_be_bytes(), &[], &[], 0);
    assert_eq!(
        ok(&f, f.len()),
        Command::Flush {
            delay: Some(Exptime(5)),
            reply: Reply::Yes
        }
    );
    // Noop, Version, Quit with any body: invalid arguments, close.
    for op in [0x07, 0x0a, 0x0b, 0x17, 0x20] {
        let f = frame(op, b"x", &[], &[], 0);
        let e = err(&f);
        assert!(matches!(e, ParseError::Invalid { .. }), "{op:#x}");
        assert!(e.closes_connection());
        assert_eq!(e.status(), Some(Status::InvalidArguments));
    }
}

#[test]
fn stat_takes_its_group_from_the_key_and_leaves_a_surplus_body() {
    let f = frame(0x10, &[], b"settings", b"XX", 0);
    // memcached reads header + key only; the two surplus bytes start the next frame.
    assert_eq!(ok(&f, 24 + 8), Command::Stat { group: b"settings" });
}

#[test]
fn sasl_opcodes_carry_mechanism_and_data() {
    let f = frame(0x21, &[], b"PLAIN", b"\0u\0p", 0);
    assert_eq!(
        ok(&f, f.len()),
        Command::SaslAuth {
            mechanism: b"PLAIN",
            data: b"\0u\0p"
        }
    );
    let f = frame(0x22, &[], b"PLAIN", b"", 0);
    assert_eq!(
        ok(&f, f.len()),
        Command::SaslStep {
            mechanism: b"PLAIN",
            data: b""
        }
    );
    let f = frame(0x21, &[], b"", b"x", 0);
    assert!(matches!(err(&f), ParseError::Invalid { .. }));
}

#[test]
fn a_bad_magic_closes_silently() {
    let mut f = frame(0x0a, &[], &[], &[], 0);
    f[0] = 0x81;
    let e = err(&f);
    assert_eq!(e, ParseError::BadMagic { magic: 0x81 });
    assert!(e.closes_connection());
    assert_eq!(e.status(), None);
    assert!(e.header().is_none());
}

#[test]
fn key_and_extras_longer_than_the_body_is_unknown_command_and_close() {
    let f = frame_with(0x00, &[], b"abcde", &[], 0, 1);
    let e = err(&f);
    assert!(matches!(e, ParseError::BadLengths { .. }));
    assert_eq!(e.status(), Some(Status::UnknownCommand));
    assert!(e.closes_connection());
}

#[test]
fn keys_over_250_bytes_and_empty_get_keys_are_invalid() {
    let long = vec![b'k'; 251];
    let f = frame(0x00, &[], &long, &[], 0);
    assert!(matches!(err(&f), ParseError::Invalid { .. }));
    let f = frame(0x00, &[], &vec![b'k'; 250], &[], 0);
    assert!(matches!(ok(&f, f.len()), Command::Get { .. }));
    let f = frame(0x00, &[], &[], &[], 0);
    assert!(matches!(err(&f), ParseError::Invalid { .. }));
    let f = frame(0x00, b"1234", b"k", &[], 0);
    assert!(matches!(err(&f), ParseError::Invalid { .. }));
}

#[test]
fn unknown_opcodes_consume_prefix_and_swallow_the_whole_body_again() {
    let f = frame(0x55, &[], &[], &[], 0);
    let e = err(&f);
    assert_eq!(e.status(), Some(Status::UnknownCommand));
    assert!(!e.closes_connection());
    assert_eq!((e.consumed(), e.swallow()), (24, 0));
    let f = frame(0x55, &[], b"abc", b"xyz", 0);
    let e = err(&f);
    assert_eq!((e.consumed(), e.swallow()), (27, 6));
    // Verbosity is defined but memcached 1.6 does not dispatch it.
    let f = frame(0x1b, &1u32.to_be_bytes(), &[], &[], 0);
    let e = err(&f);
    assert!(matches!(e, ParseError::UnknownCommand { .. }));
    assert_eq!((e.consumed(), e.swallow()), (28, 4));
}

#[test]
fn an_oversized_value_is_refused_before_its_bytes_arrive() {
    let limits = Limits {
        item_size_max: 1024,
        ..Limits::default()
    };
    // Only the header, extras and key are present: the decision needs no value bytes.
    let f = frame_with(0x01, &set_extras(0, 0), b"big", &[], 0, 8 + 3 + 1025);
    let e = parse(&f, &limits).expect_err("too large");
    assert_eq!(e.status(), Some(Status::TooLarge));
    assert_eq!((e.consumed(), e.swallow()), (24 + 8 + 3, 1025));
    assert_eq!(e.unlink_key(), Some(&b"big"[..]));
    // Append too large: no unlink.
    let f = frame_with(0x0e, &[], b"big", &[], 0, 3 + 1025);
    let e = parse(&f, &limits).expect_err("too large");
    assert_eq!(e.unlink_key(), None);
    // SASL data too large: out of memory, as memcached fails to allocate.
    let f = frame_with(0x21, &[], b"PLAIN", &[], 0, 5 + 1025);
    let e = parse(&f, &limits).expect_err("too large");
    assert_eq!(e.status(), Some(Status::OutOfMemory));
    // A value of exactly the limit waits for its bytes.
    let f = frame_with(0x01, &set_extras(0, 0), b"ok", &[], 0, 8 + 2 + 1024);
    assert_eq!(parse(&f, &limits), Ok(None));
    // A body length of 4 GiB - 1 is refused from the header alone.
    let f = frame_with(0x01, &set_extras(0, 0), b"k", &[], 0, u32::MAX as usize);
    assert!(matches!(
        parse(&f, &limits),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn any_split_of_a_pipeline_parses_the_same() {
    let mut stream = Vec::new();
    stream.extend(frame(0x01, &set_extras(1, 0), b"a", b"hello", 0));
    stream.extend(frame(0x0d, &[], b"a", &[], 0));
    stream.extend(frame(0x05, &arith_extras(1, 0, 0), b"n", &[], 0));
    stream.extend(frame(0x0a, &[], &[], &[], 0));
    let whole: Vec<usize> = {
        let mut at = 0;
        let mut sizes = Vec::new();
        while at < stream.len() {
            let (_, n) = parse(&stream[at..], &limits()).unwrap().unwrap();
            sizes.push(n);
            at += n;
        }
        sizes
    };
    assert_eq!(whole.len(), 4);
    for cut in 0..stream.len() {
        let mut at = 0;
        let mut sizes = Vec::new();
        let mut seen = &stream[..cut];
        loop {
            match parse(&seen[at..], &limits()).unwrap() {
                Some((_, n)) => {
                    sizes.push(n);
                    at += n;
                }
                None if seen.len() < stream.len() => seen = &stream[..],
                None => break,
            }
        }
        assert_eq!(sizes, whole, "cut at {cut}");
    }
}

#[test]
fn every_known_opcode_round_trips_through_from_byte() {
    for byte in 0..=255u8 {
        if let Some(op) = Opcode::from_byte(byte) {
            assert_eq!(op as u8, byte);
        }
    }
    assert_eq!(Opcode::from_byte(0x1f), None);
    assert_eq!(Opcode::from_byte(0x30), None);
    assert!(!needs_auth(0x0b));
    assert!(!needs_auth(0x21));
    assert!(needs_auth(0x00));
    assert!(needs_auth(0x99));
}

#[test]
fn responses_match_memcached_bytes() {
    let request = Header::read(&frame(0x00, &[], b"k", &[], 0)).unwrap();
    let mut out = Vec::new();
    write_item(
        &mut out,
        ResponseHead::to(&request, Status::Success).with_cas(2),
        5,
        None,
        b"hello",
    );
    // Captured from memcached 1.6.18: get hit, flags 5, cas 2.
    let mut expected = vec![
        0x81, 0x00, 0, 0, 4, 0, 0, 0, 0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef,
    ];
    expected.extend_from_slice(&2u64.to_be_bytes());
    expected.extend_from_slice(b"\0\0\0\x05hello");
    assert_eq!(out, expected);

    out.clear();
    write_error(&mut out, &request, Status::KeyNotFound);
    let mut expected = vec![
        0x81, 0x00, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef,
    ];
    expected.extend_from_slice(&0u64.to_be_bytes());
    expected.extend_from_slice(b"Not found");
    assert_eq!(out, expected);

    // GetK miss: status 1, the key as key and body, no text.
    let request = Header::read(&frame(0x0c, &[], b"nokey", &[], 0)).unwrap();
    out.clear();
    write_response(
        &mut out,
        ResponseHead::to(&request, Status::KeyNotFound),
        &[],
        b"nokey",
        &[],
    );
    assert_eq!(&out[..12], &[0x81, 0x0c, 0, 5, 0, 0, 0, 1, 0, 0, 0, 5]);
    assert_eq!(&out[24..], b"nokey");
}

#[test]
fn status_texts_are_memcached_s() {
    assert_eq!(Status::KeyExists.message(), b"Data exists for key.");
    assert_eq!(Status::NotStored.message(), b"Not stored.");
    assert_eq!(Status::TooLarge.message(), b"Too large.");
    assert_eq!(
        Status::NonNumeric.message(),
        b"Non-numeric server-side value for incr or decr"
    );
    assert_eq!(Status::AuthError.message(), b"Auth failure.");
    assert_eq!(Status::UnknownCommand.message(), b"Unknown command");
}
