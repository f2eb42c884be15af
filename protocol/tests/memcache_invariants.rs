//! Invariants of the memcached parser over generated input (deterministic xorshift, no
//! dependency; `FUZZ_ITERS` for a longer run): every request keeps its keys within the
//! limits, every answer consumes at least one byte and no more than it was given, and every
//! error reply is whole lines.
//!
//! Only the crate's public API: never a crate-private item, never I/O.

use ferrocache_protocol::memcache::*;

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
        b"save",
        b"bgsave",
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
