//! memcached text and meta protocols: encoding `get`/`set`/multi-key `get` and `mg`/`ms`/quiet
//! `mg` batches, and parsing their replies.
//!
//! Invariants: a text multi-get is one `get k1 .. kn` line answered by `VALUE` blocks then `END`;
//! a meta batch is `mg <k> k v q` per key then `mn`, answered by `VA` blocks for hits only (quiet
//! mode suppresses `EN`) then `MN`. Server error lines (`ERROR`, `CLIENT_ERROR ..`,
//! `SERVER_ERROR ..`) and unexpected store results become [`Reply::Error`]; anything else that is
//! not the expected shape is a [`ParseError`].

use super::{
    find_crlf, parse_usize, push_u64, Encoder, Op, OpKind, ParseError, Parsed, Protocol, Reply,
    Scratch,
};
use crate::keyspace::write_key;

/// Encodes `op` in the text protocol.
pub fn encode_text(enc: &Encoder, op: &Op, out: &mut Vec<u8>, s: &mut Scratch) {
    match op.kind {
        OpKind::Get => {
            out.extend_from_slice(b"get ");
            out.extend_from_slice(&s.key);
            out.extend_from_slice(b"\r\n");
        }
        OpKind::MultiGet => {
            out.extend_from_slice(b"get");
            for &k in &op.batch {
                out.push(b' ');
                write_key(out, b'k', k, enc.key_size);
            }
            out.extend_from_slice(b"\r\n");
        }
        OpKind::Set => {
            out.extend_from_slice(b"set ");
            out.extend_from_slice(&s.key);
            out.extend_from_slice(b" 0 0 ");
            push_u64(out, s.value.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&s.value);
            out.extend_from_slice(b"\r\n");
        }
        other => unreachable!("{other:?} is not a text-protocol op (rejected at startup)"),
    }
}

/// Encodes `op` in the meta protocol.
pub fn encode_meta(enc: &Encoder, op: &Op, out: &mut Vec<u8>, s: &mut Scratch) {
    match op.kind {
        OpKind::Get => {
            out.extend_from_slice(b"mg ");
            out.extend_from_slice(&s.key);
            out.extend_from_slice(b" v\r\n");
        }
        OpKind::MultiGet => {
            for &k in &op.batch {
                out.extend_from_slice(b"mg ");
                write_key(out, b'k', k, enc.key_size);
                out.extend_from_slice(b" k v q\r\n");
            }
            out.extend_from_slice(b"mn\r\n");
        }
        OpKind::Set => {
            out.extend_from_slice(b"ms ");
            out.extend_from_slice(&s.key);
            out.push(b' ');
            push_u64(out, s.value.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&s.value);
            out.extend_from_slice(b"\r\n");
        }
        other => unreachable!("{other:?} is not a meta-protocol op (rejected at startup)"),
    }
}

pub(crate) fn is_error_line(line: &[u8]) -> bool {
    line == b"ERROR"
        || line.starts_with(b"CLIENT_ERROR")
        || line.starts_with(b"SERVER_ERROR")
        || line.starts_with(b"ERROR ")
}

fn error(line: &[u8]) -> Reply<'static> {
    Reply::Error(String::from_utf8_lossy(line).into_owned())
}

pub(crate) fn malformed(protocol: Protocol, what: &str, line: &[u8]) -> ParseError {
    ParseError::new(
        protocol,
        format!(
            "{what}: {:?}",
            String::from_utf8_lossy(&line[..line.len().min(80)])
        ),
    )
}

/// Splits off a data block of `len` bytes plus CRLF at `buf[at..]`: the block and the offset after
/// it, `Ok(None)` if incomplete.
pub(crate) fn data_block(
    protocol: Protocol,
    buf: &[u8],
    at: usize,
    len: usize,
) -> Result<Option<(&[u8], usize)>, ParseError> {
    let end = at + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ParseError::new(protocol, "data block not followed by CRLF"));
    }
    Ok(Some((&buf[at..end], end + 2)))
}

/// Parses the reply to a text-protocol request of `kind`.
pub fn parse_text(kind: OpKind, buf: &[u8]) -> Parsed<'_> {
    let p = Protocol::Text;
    match kind {
        OpKind::Set => {
            let Some(eol) = find_crlf(buf) else {
                return Ok(None);
            };
            let line = &buf[..eol];
            let reply = if line == b"STORED" {
                Reply::Stored
            } else if is_error_line(line)
                || matches!(line, b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND")
            {
                error(line)
            } else {
                return Err(malformed(p, "unexpected reply to set", line));
            };
            Ok(Some((reply, eol + 2)))
        }
        OpKind::Get | OpKind::MultiGet => {
            let mut pos = 0;
            let mut hits = Vec::new();
            loop {
                let Some(eol) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                let line = &buf[pos..pos + eol];
                let next = pos + eol + 2;
                if line == b"END" {
                    let reply = match (kind, hits.len()) {
                        (OpKind::MultiGet, _) => Reply::Keyed(hits),
                        (_, 0) => Reply::Miss,
                        (_, 1) => Reply::Value(hits[0].1),
                        _ => return Err(ParseError::new(p, "several VALUE blocks for one key")),
                    };
                    return Ok(Some((reply, next)));
                }
                if pos == 0 && is_error_line(line) {
                    return Ok(Some((error(line), next)));
                }
                let mut parts = line.split(|&b| b == b' ');
                let (Some(b"VALUE"), Some(key), Some(_flags), Some(len)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(malformed(p, "expected VALUE or END", line));
                };
                let len = parse_usize(len).ok_or_else(|| malformed(p, "bad VALUE length", line))?;
                let Some((data, after)) = data_block(p, buf, next, len)? else {
                    return Ok(None);
                };
                hits.push((key, data));
                pos = after;
            }
        }
        other => unreachable!("{other:?} is not a text-protocol op"),
    }
}

/// Parses the reply to a meta-protocol request of `kind`.
pub fn parse_meta(kind: OpKind, buf: &[u8]) -> Parsed<'_> {
    let p = Protocol::Meta;
    match kind {
        OpKind::Set => {
            let Some(eol) = find_crlf(buf) else {
                return Ok(None);
            };
            let line = &buf[..eol];
            let reply = if line == b"HD" || line.starts_with(b"HD ") {
                Reply::Stored
            } else if is_error_line(line)
                || [&b"NS"[..], b"EX", b"NF"]
                    .iter()
                    .any(|w| line.starts_with(w))
            {
                error(line)
            } else {
                return Err(malformed(p, "unexpected reply to ms", line));
            };
            Ok(Some((reply, eol + 2)))
        }
        OpKind::Get => {
            let Some(eol) = find_crlf(buf) else {
                return Ok(None);
            };
            let line = &buf[..eol];
            if line == b"EN" {
                return Ok(Some((Reply::Miss, eol + 2)));
            }
            if is_error_line(line) {
                return Ok(Some((error(line), eol + 2)));
            }
            let (len, _) = parse_va(line).ok_or_else(|| malformed(p, "expected VA or EN", line))?;
            Ok(data_block(p, buf, eol + 2, len)?.map(|(d, after)| (Reply::Value(d), after)))
        }
        OpKind::MultiGet => {
            let mut pos = 0;
            let mut hits = Vec::new();
            loop {
                let Some(eol) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                let line = &buf[pos..pos + eol];
                let next = pos + eol + 2;
                if line == b"MN" {
                    return Ok(Some((Reply::Keyed(hits), next)));
                }
                if pos == 0 && is_error_line(line) {
                    // The rest of the batch may also answer with errors; the caller drops the
                    // connection's state on any error in a batch, so one is enough.
                    return Ok(Some((error(line), next)));
                }
                let (len, key) =
                    parse_va(line).ok_or_else(|| malformed(p, "expected VA or MN", line))?;
                let key = key.ok_or_else(|| malformed(p, "VA without k flag in a batch", line))?;
                let Some((data, after)) = data_block(p, buf, next, len)? else {
                    return Ok(None);
                };
                hits.push((key, data));
                pos = after;
            }
        }
        other => unreachable!("{other:?} is not a meta-protocol op"),
    }
}

/// Parses `VA <len> <flags>*`: the length and the key of a `k` flag if present.
fn parse_va(line: &[u8]) -> Option<(usize, Option<&[u8]>)> {
    let mut parts = line.split(|&b| b == b' ');
    if parts.next()? != b"VA" {
        return None;
    }
    let len = parse_usize(parts.next()?)?;
    let key = parts.find(|t| t.first() == Some(&b'k')).map(|t| &t[1..]);
    Some((len, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Values;

    fn enc(protocol: Protocol) -> Encoder {
        Encoder {
            protocol,
            key_size: 4,
            values: Values::new(1, 10, 10),
        }
    }

    fn encode(protocol: Protocol, kind: OpKind, keys: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        let op = Op::new(kind, keys, 2);
        enc(protocol).encode(&op, &mut out, &mut Scratch::default());
        out
    }

    #[test]
    fn text_requests() {
        assert_eq!(encode(Protocol::Text, OpKind::Get, &[7]), b"get k007\r\n");
        assert_eq!(
            encode(Protocol::Text, OpKind::MultiGet, &[1, 22]),
            b"get k001 k022\r\n"
        );
        let set = encode(Protocol::Text, OpKind::Set, &[7]);
        assert!(
            set.starts_with(b"set k007 0 0 10\r\n00000002"),
            "{:?}",
            String::from_utf8_lossy(&set)
        );
        assert!(set.ends_with(b"\r\n") && set.len() == 17 + 10 + 2);
    }

    #[test]
    fn meta_requests() {
        assert_eq!(encode(Protocol::Meta, OpKind::Get, &[7]), b"mg k007 v\r\n");
        assert_eq!(
            encode(Protocol::Meta, OpKind::MultiGet, &[1, 2]),
            b"mg k001 k v q\r\nmg k002 k v q\r\nmn\r\n"
        );
        assert!(encode(Protocol::Meta, OpKind::Set, &[7]).starts_with(b"ms k007 10\r\n00000002"));
    }

    #[test]
    fn text_replies() {
        assert_eq!(
            parse_text(OpKind::Set, b"STORED\r\nget"),
            Ok(Some((Reply::Stored, 8)))
        );
        assert_eq!(parse_text(OpKind::Set, b"STOR"), Ok(None));
        assert_eq!(
            parse_text(OpKind::Set, b"SERVER_ERROR out of memory\r\n"),
            Ok(Some((
                Reply::Error("SERVER_ERROR out of memory".into()),
                28
            )))
        );
        assert_eq!(
            parse_text(OpKind::Get, b"END\r\n"),
            Ok(Some((Reply::Miss, 5)))
        );
        let hit = b"VALUE k1 0 5\r\nhello\r\nEND\r\n";
        assert_eq!(
            parse_text(OpKind::Get, hit),
            Ok(Some((Reply::Value(b"hello"), hit.len())))
        );
        for cut in 0..hit.len() {
            assert_eq!(parse_text(OpKind::Get, &hit[..cut]), Ok(None), "cut {cut}");
        }
        // A value containing CRLF is skipped by length.
        let tricky = b"VALUE k1 0 4\r\nEN\r\n\r\nEND\r\n";
        assert_eq!(
            parse_text(OpKind::Get, tricky),
            Ok(Some((Reply::Value(b"EN\r\n"), tricky.len())))
        );
        let multi = b"VALUE k1 0 1\r\na\r\nVALUE k3 9 2\r\nbc\r\nEND\r\n";
        assert_eq!(
            parse_text(OpKind::MultiGet, multi),
            Ok(Some((
                Reply::Keyed(vec![(&b"k1"[..], &b"a"[..]), (b"k3", b"bc")]),
                multi.len()
            )))
        );
        assert_eq!(
            parse_text(OpKind::Get, b"ERROR\r\n"),
            Ok(Some((Reply::Error("ERROR".into()), 7)))
        );
        assert!(parse_text(OpKind::Get, b"+OK\r\n").is_err());
        assert!(parse_text(OpKind::Get, b"VALUE k 0 1\r\nab\r\n").is_err());
    }

    #[test]
    fn meta_replies() {
        assert_eq!(
            parse_meta(OpKind::Set, b"HD\r\n"),
            Ok(Some((Reply::Stored, 4)))
        );
        assert!(matches!(
            parse_meta(OpKind::Set, b"NS\r\n"),
            Ok(Some((Reply::Error(_), 4)))
        ));
        assert_eq!(
            parse_meta(OpKind::Get, b"EN\r\n"),
            Ok(Some((Reply::Miss, 4)))
        );
        assert_eq!(
            parse_meta(OpKind::Get, b"VA 2 t-1\r\nhi\r\n"),
            Ok(Some((Reply::Value(b"hi"), 14)))
        );
        assert_eq!(parse_meta(OpKind::Get, b"VA 2\r\nh"), Ok(None));
        let batch = b"VA 1 kk1\r\na\r\nVA 2 f0 kk9\r\nbc\r\nMN\r\n";
        assert_eq!(
            parse_meta(OpKind::MultiGet, batch),
            Ok(Some((
                Reply::Keyed(vec![(&b"k1"[..], &b"a"[..]), (b"k9", b"bc")]),
                batch.len()
            )))
        );
        assert_eq!(
            parse_meta(OpKind::MultiGet, b"MN\r\n"),
            Ok(Some((Reply::Keyed(vec![]), 4)))
        );
        assert!(parse_meta(OpKind::MultiGet, b"VA 1\r\na\r\nMN\r\n").is_err());
        assert!(parse_meta(OpKind::Get, b"STORED\r\n").is_err());
    }
}
