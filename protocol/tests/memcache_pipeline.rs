//! A pipelined stream of mixed memcached commands, valid and not, with data blocks: it must
//! parse to the same requests and errors wherever the reads split it (every two-chunk split,
//! byte by byte, every prefix of a request).
//!
//! Only the crate's public API: never a crate-private item, never I/O.

mod common;

use common::*;
use ferrocache_protocol::memcache::*;

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
