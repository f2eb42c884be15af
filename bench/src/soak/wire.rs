//! The soak's requests on the wire: get, set (with a TTL), delete and incr in memcached text,
//! meta and binary and in RESP, plus RESP's HSET/HGET and ZADD/ZSCORE; and their replies.
//!
//! Built on the reply parsers of `proto` (written from the protocol documents, not from the
//! server's code). Invariants as there: [`encode`] appends exactly one request, [`parse`]
//! consumes exactly its one reply or returns `Ok(None)` and consumes nothing; an error reply
//! from the server is [`Answer::Error`], bytes that are not a valid reply to the request are a
//! [`ParseError`] (a protocol error: the connection can no longer be trusted).

use crate::proto::binary::packet;
use crate::proto::resp::{bulk, parse_value, Value};
use crate::proto::text::{data_block, is_error_line, malformed, parse_meta, parse_text};
use crate::proto::{find_crlf, parse_usize, push_u64, OpKind, ParseError, Protocol, Reply};

/// What a request does. Field and member names are `f<n>` and `m<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    /// Set with a TTL in seconds (0 = none).
    Set {
        ttl: u32,
    },
    Delete,
    Incr {
        delta: u64,
    },
    HSet {
        field: u32,
    },
    HGet {
        field: u32,
    },
    /// ZADD with an integer score.
    ZAdd {
        member: u32,
        score: u32,
    },
    ZScore {
        member: u32,
    },
}

/// A reply, borrowing from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<'a> {
    Stored,
    Miss,
    Value(&'a [u8]),
    /// A delete: whether the key existed.
    Deleted(bool),
    /// memcached incr: the new value, `None` if the key was not found.
    Incr(Option<u64>),
    /// A RESP integer.
    Int(i64),
    /// The server said no: its words.
    Error(String),
}

/// Result of parsing one reply.
pub type Parsed<'a> = Result<Option<(Answer<'a>, usize)>, ParseError>;

const BIN_GET: u8 = 0x00;
const BIN_SET: u8 = 0x01;
const BIN_DELETE: u8 = 0x04;
const BIN_INCR: u8 = 0x05;

fn bin_header(out: &mut Vec<u8>, opcode: u8, key: usize, extras: usize, value: usize) {
    out.extend_from_slice(&[0x80, opcode]);
    out.extend_from_slice(&(key as u16).to_be_bytes());
    out.extend_from_slice(&[extras as u8, 0, 0, 0]);
    out.extend_from_slice(&((extras + key + value) as u32).to_be_bytes());
    out.extend_from_slice(&[0; 12]); // opaque, cas
}

fn resp_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    push_u64(out, args.len() as u64);
    out.extend_from_slice(b"\r\n");
    for a in args {
        bulk(out, a);
    }
}

fn named(prefix: u8, n: u32) -> Vec<u8> {
    let mut v = vec![prefix];
    push_u64(&mut v, u64::from(n));
    v
}

fn decimal(n: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(20);
    push_u64(&mut v, n);
    v
}

/// Appends the request `verb` on `key` (with `value` for writes) in `protocol`.
/// Hash and sorted-set verbs exist in RESP only (the caller never asks otherwise).
pub fn encode(protocol: Protocol, verb: Verb, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    match (protocol, verb) {
        (Protocol::Text, Verb::Get) => {
            out.extend_from_slice(b"get ");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Text, Verb::Set { ttl }) => {
            out.extend_from_slice(b"set ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" 0 ");
            push_u64(out, u64::from(ttl));
            out.push(b' ');
            push_u64(out, value.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Text, Verb::Delete) => {
            out.extend_from_slice(b"delete ");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Text, Verb::Incr { delta }) => {
            out.extend_from_slice(b"incr ");
            out.extend_from_slice(key);
            out.push(b' ');
            push_u64(out, delta);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Meta, Verb::Get) => {
            out.extend_from_slice(b"mg ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" v\r\n");
        }
        (Protocol::Meta, Verb::Set { ttl }) => {
            out.extend_from_slice(b"ms ");
            out.extend_from_slice(key);
            out.push(b' ');
            push_u64(out, value.len() as u64);
            if ttl > 0 {
                out.extend_from_slice(b" T");
                push_u64(out, u64::from(ttl));
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Meta, Verb::Delete) => {
            out.extend_from_slice(b"md ");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Meta, Verb::Incr { delta }) => {
            out.extend_from_slice(b"ma ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" D");
            push_u64(out, delta);
            out.extend_from_slice(b" v\r\n");
        }
        (Protocol::Binary, Verb::Get) => {
            bin_header(out, BIN_GET, key.len(), 0, 0);
            out.extend_from_slice(key);
        }
        (Protocol::Binary, Verb::Set { ttl }) => {
            bin_header(out, BIN_SET, key.len(), 8, value.len());
            out.extend_from_slice(&0u32.to_be_bytes()); // flags
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(value);
        }
        (Protocol::Binary, Verb::Delete) => {
            bin_header(out, BIN_DELETE, key.len(), 0, 0);
            out.extend_from_slice(key);
        }
        (Protocol::Binary, Verb::Incr { delta }) => {
            bin_header(out, BIN_INCR, key.len(), 20, 0);
            out.extend_from_slice(&delta.to_be_bytes());
            out.extend_from_slice(&0u64.to_be_bytes()); // initial
            out.extend_from_slice(&u32::MAX.to_be_bytes()); // fail on a miss
            out.extend_from_slice(key);
        }
        (Protocol::Resp, Verb::Get) => resp_command(out, &[b"GET", key]),
        (Protocol::Resp, Verb::Set { ttl: 0 }) => resp_command(out, &[b"SET", key, value]),
        (Protocol::Resp, Verb::Set { ttl }) => {
            resp_command(out, &[b"SET", key, value, b"EX", &decimal(u64::from(ttl))])
        }
        (Protocol::Resp, Verb::Delete) => resp_command(out, &[b"DEL", key]),
        (Protocol::Resp, Verb::Incr { delta }) => {
            resp_command(out, &[b"INCRBY", key, &decimal(delta)])
        }
        (Protocol::Resp, Verb::HSet { field }) => {
            resp_command(out, &[b"HSET", key, &named(b'f', field), value])
        }
        (Protocol::Resp, Verb::HGet { field }) => {
            resp_command(out, &[b"HGET", key, &named(b'f', field)])
        }
        (Protocol::Resp, Verb::ZAdd { member, score }) => resp_command(
            out,
            &[
                b"ZADD",
                key,
                &decimal(u64::from(score)),
                &named(b'm', member),
            ],
        ),
        (Protocol::Resp, Verb::ZScore { member }) => {
            resp_command(out, &[b"ZSCORE", key, &named(b'm', member)])
        }
        (p, v) => unreachable!("{v:?} is not sent over {p:?}"),
    }
}

fn from_reply(parsed: crate::proto::Parsed<'_>) -> Parsed<'_> {
    Ok(parsed?.map(|(reply, n)| {
        let answer = match reply {
            Reply::Stored => Answer::Stored,
            Reply::Miss => Answer::Miss,
            Reply::Value(v) => Answer::Value(v),
            Reply::Error(e) => Answer::Error(e),
            Reply::Integer(i) => Answer::Int(i),
            Reply::Keyed(_) | Reply::Array(_) => unreachable!("single-key requests only"),
        };
        (answer, n)
    }))
}

/// One line (without CRLF) and the bytes it used.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    find_crlf(buf).map(|eol| (&buf[..eol], eol + 2))
}

/// Parses the reply to `verb` in `protocol`.
pub fn parse(protocol: Protocol, verb: Verb, buf: &[u8]) -> Parsed<'_> {
    match protocol {
        Protocol::Text => parse_text_reply(verb, buf),
        Protocol::Meta => parse_meta_reply(verb, buf),
        Protocol::Binary => parse_binary_reply(verb, buf),
        Protocol::Resp => parse_resp_reply(verb, buf),
    }
}

fn parse_text_reply(verb: Verb, buf: &[u8]) -> Parsed<'_> {
    let p = Protocol::Text;
    match verb {
        Verb::Get => from_reply(parse_text(OpKind::Get, buf)),
        Verb::Set { .. } => from_reply(parse_text(OpKind::Set, buf)),
        Verb::Delete => {
            let Some((l, n)) = line(buf) else {
                return Ok(None);
            };
            let a = match l {
                b"DELETED" => Answer::Deleted(true),
                b"NOT_FOUND" => Answer::Deleted(false),
                l if is_error_line(l) => Answer::Error(String::from_utf8_lossy(l).into()),
                l => return Err(malformed(p, "unexpected reply to delete", l)),
            };
            Ok(Some((a, n)))
        }
        Verb::Incr { .. } => {
            let Some((l, n)) = line(buf) else {
                return Ok(None);
            };
            let a = match l {
                b"NOT_FOUND" => Answer::Incr(None),
                l if is_error_line(l) => Answer::Error(String::from_utf8_lossy(l).into()),
                l => match std::str::from_utf8(l).ok().and_then(|s| s.parse().ok()) {
                    Some(v) => Answer::Incr(Some(v)),
                    None => return Err(malformed(p, "unexpected reply to incr", l)),
                },
            };
            Ok(Some((a, n)))
        }
        v => unreachable!("{v:?} over text"),
    }
}

fn parse_meta_reply(verb: Verb, buf: &[u8]) -> Parsed<'_> {
    let p = Protocol::Meta;
    match verb {
        Verb::Get => from_reply(parse_meta(OpKind::Get, buf)),
        Verb::Set { .. } => from_reply(parse_meta(OpKind::Set, buf)),
        Verb::Delete => {
            let Some((l, n)) = line(buf) else {
                return Ok(None);
            };
            let a = match l {
                b"HD" => Answer::Deleted(true),
                b"NF" => Answer::Deleted(false),
                l if is_error_line(l) => Answer::Error(String::from_utf8_lossy(l).into()),
                l => return Err(malformed(p, "unexpected reply to md", l)),
            };
            Ok(Some((a, n)))
        }
        Verb::Incr { .. } => {
            let Some((l, n)) = line(buf) else {
                return Ok(None);
            };
            if l == b"NF" {
                return Ok(Some((Answer::Incr(None), n)));
            }
            if is_error_line(l) {
                return Ok(Some((Answer::Error(String::from_utf8_lossy(l).into()), n)));
            }
            let len = l
                .strip_prefix(b"VA ")
                .and_then(|rest| parse_usize(rest.split(|&b| b == b' ').next()?))
                .ok_or_else(|| malformed(p, "unexpected reply to ma", l))?;
            let Some((data, used)) = data_block(p, buf, n, len)? else {
                return Ok(None);
            };
            let v = std::str::from_utf8(data)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| malformed(p, "ma value is not a number", data))?;
            Ok(Some((Answer::Incr(Some(v)), used)))
        }
        v => unreachable!("{v:?} over meta"),
    }
}

fn parse_binary_reply(verb: Verb, buf: &[u8]) -> Parsed<'_> {
    let p = Protocol::Binary;
    let Some(pkt) = packet(buf)? else {
        return Ok(None);
    };
    let want = match verb {
        Verb::Get => BIN_GET,
        Verb::Set { .. } => BIN_SET,
        Verb::Delete => BIN_DELETE,
        Verb::Incr { .. } => BIN_INCR,
        v => unreachable!("{v:?} over binary"),
    };
    if pkt.opcode != want {
        return Err(ParseError::new(
            p,
            format!("response opcode 0x{:02x} to 0x{want:02x}", pkt.opcode),
        ));
    }
    let answer = match (verb, pkt.status) {
        (Verb::Get, 0) => Answer::Value(pkt.value),
        (Verb::Get, 1) => Answer::Miss,
        (Verb::Set { .. }, 0) => Answer::Stored,
        (Verb::Delete, 0) => Answer::Deleted(true),
        (Verb::Delete, 1) => Answer::Deleted(false),
        (Verb::Incr { .. }, 0) => {
            let bytes: [u8; 8] = pkt
                .value
                .try_into()
                .map_err(|_| ParseError::new(p, "increment value is not 8 bytes"))?;
            Answer::Incr(Some(u64::from_be_bytes(bytes)))
        }
        (Verb::Incr { .. }, 1) => Answer::Incr(None),
        (_, status) => Answer::Error(format!(
            "binary status 0x{status:04x}: {}",
            String::from_utf8_lossy(pkt.value)
        )),
    };
    Ok(Some((answer, pkt.len)))
}

fn parse_resp_reply(verb: Verb, buf: &[u8]) -> Parsed<'_> {
    let Some((value, n)) = parse_value(buf)? else {
        return Ok(None);
    };
    let answer = match (verb, value) {
        (_, Value::Error(e)) => Answer::Error(String::from_utf8_lossy(e).into()),
        (Verb::Set { .. }, Value::Simple(b"OK")) => Answer::Stored,
        (Verb::Get | Verb::HGet { .. } | Verb::ZScore { .. }, Value::Bulk(None)) => Answer::Miss,
        (Verb::Get | Verb::HGet { .. } | Verb::ZScore { .. }, Value::Bulk(Some(v))) => {
            Answer::Value(v)
        }
        (Verb::Delete, Value::Integer(i @ (0 | 1))) => Answer::Deleted(i == 1),
        (Verb::Incr { .. } | Verb::HSet { .. } | Verb::ZAdd { .. }, Value::Integer(i)) => {
            Answer::Int(i)
        }
        (verb, value) => {
            return Err(ParseError::new(
                Protocol::Resp,
                format!("unexpected reply {value:?} to {verb:?}"),
            ))
        }
    };
    Ok(Some((answer, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(p: Protocol, verb: Verb, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(p, verb, b"k1", value, &mut out);
        out
    }

    #[test]
    fn text_and_meta_requests_and_replies() {
        let t = Protocol::Text;
        assert_eq!(
            enc(t, Verb::Set { ttl: 5 }, b"a\r\n"),
            b"set k1 0 5 3\r\na\r\n\r\n"
        );
        assert_eq!(enc(t, Verb::Delete, b""), b"delete k1\r\n");
        assert_eq!(enc(t, Verb::Incr { delta: 7 }, b""), b"incr k1 7\r\n");
        let v = Verb::Incr { delta: 1 };
        assert_eq!(
            parse(t, v, b"42\r\n"),
            Ok(Some((Answer::Incr(Some(42)), 4)))
        );
        assert_eq!(
            parse(t, v, b"NOT_FOUND\r\n"),
            Ok(Some((Answer::Incr(None), 11)))
        );
        assert_eq!(parse(t, v, b"4"), Ok(None));
        assert!(parse(t, v, b"STORED\r\n").is_err());
        assert_eq!(
            parse(t, Verb::Delete, b"DELETED\r\n"),
            Ok(Some((Answer::Deleted(true), 9)))
        );
        assert!(matches!(
            parse(t, Verb::Delete, b"CLIENT_ERROR bad\r\n"),
            Ok(Some((Answer::Error(_), 18)))
        ));
        let got = b"VALUE k1 0 3\r\na\r\n\r\nEND\r\n";
        assert_eq!(
            parse(t, Verb::Get, got),
            Ok(Some((Answer::Value(b"a\r\n"), got.len())))
        );

        let m = Protocol::Meta;
        assert_eq!(enc(m, Verb::Set { ttl: 0 }, b"ab"), b"ms k1 2\r\nab\r\n");
        assert_eq!(enc(m, Verb::Set { ttl: 9 }, b"ab"), b"ms k1 2 T9\r\nab\r\n");
        assert_eq!(enc(m, Verb::Incr { delta: 3 }, b""), b"ma k1 D3 v\r\n");
        assert_eq!(
            parse(m, v, b"VA 2\r\n10\r\n"),
            Ok(Some((Answer::Incr(Some(10)), 10)))
        );
        assert_eq!(parse(m, v, b"VA 2\r\n1"), Ok(None));
        assert_eq!(parse(m, v, b"NF\r\n"), Ok(Some((Answer::Incr(None), 4))));
        assert_eq!(
            parse(m, Verb::Delete, b"NF\r\n"),
            Ok(Some((Answer::Deleted(false), 4)))
        );
        assert!(parse(m, Verb::Delete, b"DELETED\r\n").is_err());
    }

    fn response(opcode: u8, status: u16, value: &[u8]) -> Vec<u8> {
        let mut out = vec![0x81, opcode, 0, 0, 0, 0];
        out.extend_from_slice(&status.to_be_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn binary_requests_and_replies() {
        let b = Protocol::Binary;
        let set = enc(b, Verb::Set { ttl: 9 }, b"xyz");
        assert_eq!(&set[..2], &[0x80, BIN_SET]);
        assert_eq!(set[4], 8);
        assert_eq!(&set[8..12], &(8 + 2 + 3u32).to_be_bytes());
        assert_eq!(&set[28..32], &9u32.to_be_bytes());
        assert_eq!(&set[32..], b"k1xyz");
        let incr = enc(b, Verb::Incr { delta: 5 }, b"");
        assert_eq!((incr[1], incr[4], incr.len()), (BIN_INCR, 20, 24 + 20 + 2));
        assert_eq!(&incr[40..44], &[0xff; 4]);
        let v = Verb::Incr { delta: 5 };
        let r = response(BIN_INCR, 0, &9u64.to_be_bytes());
        assert_eq!(parse(b, v, &r), Ok(Some((Answer::Incr(Some(9)), 32))));
        let r = response(BIN_INCR, 1, b"Not found");
        assert_eq!(parse(b, v, &r), Ok(Some((Answer::Incr(None), r.len()))));
        let r = response(BIN_DELETE, 0, b"");
        assert_eq!(
            parse(b, Verb::Delete, &r),
            Ok(Some((Answer::Deleted(true), 24)))
        );
        assert!(parse(b, Verb::Get, &r).is_err(), "opcode mismatch");
        let r = response(BIN_SET, 0x82, b"Out of memory");
        assert!(matches!(
            parse(b, Verb::Set { ttl: 0 }, &r),
            Ok(Some((Answer::Error(_), _)))
        ));
    }

    #[test]
    fn resp_requests_and_replies() {
        let r = Protocol::Resp;
        assert_eq!(
            enc(r, Verb::Set { ttl: 4 }, b"v"),
            b"*5\r\n$3\r\nSET\r\n$2\r\nk1\r\n$1\r\nv\r\n$2\r\nEX\r\n$1\r\n4\r\n"
        );
        assert_eq!(
            enc(
                r,
                Verb::ZAdd {
                    member: 3,
                    score: 12
                },
                b""
            ),
            b"*4\r\n$4\r\nZADD\r\n$2\r\nk1\r\n$2\r\n12\r\n$2\r\nm3\r\n"
        );
        assert_eq!(
            enc(r, Verb::HGet { field: 2 }, b""),
            b"*3\r\n$4\r\nHGET\r\n$2\r\nk1\r\n$2\r\nf2\r\n"
        );
        assert_eq!(
            parse(r, Verb::Delete, b":1\r\n"),
            Ok(Some((Answer::Deleted(true), 4)))
        );
        assert!(parse(r, Verb::Delete, b":2\r\n").is_err());
        assert_eq!(
            parse(r, Verb::Incr { delta: 1 }, b":-3\r\n"),
            Ok(Some((Answer::Int(-3), 5)))
        );
        assert_eq!(
            parse(r, Verb::ZScore { member: 1 }, b"$2\r\n12\r\n"),
            Ok(Some((Answer::Value(b"12"), 8)))
        );
        assert_eq!(
            parse(r, Verb::HGet { field: 1 }, b"$-1\r\n"),
            Ok(Some((Answer::Miss, 5)))
        );
        assert!(matches!(
            parse(r, Verb::HSet { field: 1 }, b"-WRONGTYPE x\r\n"),
            Ok(Some((Answer::Error(_), 14)))
        ));
        assert!(parse(r, Verb::Get, b":1\r\n").is_err());
    }
}
