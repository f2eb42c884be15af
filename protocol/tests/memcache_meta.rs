//! The memcached meta protocol through the public parser: `mg`, `ms`, `md`, `ma`, `me` and
//! `mn`, their flags, base64 keys, opaques, and every error path (what is consumed and what
//! is swallowed).
//!
//! Only the crate's public API: never a crate-private item, never I/O.

mod common;

use common::*;
use ferrocache_protocol::memcache::*;

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
