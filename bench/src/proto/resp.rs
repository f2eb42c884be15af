//! Redis RESP2: encoding GET, SET, MGET, HSET, HGET, ZADD, ZRANGE and PUBLISH as arrays of bulk
//! strings, and parsing replies.
//!
//! Invariants: requests are always `*<n>` arrays of `$<len>` bulk strings; a reply is one RESP2
//! value (simple string, error, integer, bulk or array of bulks, with `$-1`/`*-1` nulls).
//! An error reply (`-ERR ..`, `-WRONGTYPE ..`) is [`Reply::Error`]; a value of the wrong type for
//! the request, or bytes that are not RESP, are a [`ParseError`].

use super::{
    find_crlf, push_u64, Encoder, Op, OpKind, ParseError, Parsed, Protocol, Reply, Scratch,
};
use crate::keyspace::write_key;

pub(crate) fn bulk(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'$');
    push_u64(out, s.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_u64(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Encodes `op` as a RESP command.
pub fn encode(enc: &Encoder, op: &Op, out: &mut Vec<u8>, s: &mut Scratch) {
    match op.kind {
        OpKind::Get => {
            array(out, 2);
            bulk(out, b"GET");
            bulk(out, &s.key);
        }
        OpKind::Set => {
            array(out, 3);
            bulk(out, b"SET");
            bulk(out, &s.key);
            bulk(out, &s.value);
        }
        OpKind::MultiGet => {
            array(out, 1 + op.batch.len());
            bulk(out, b"MGET");
            for &k in &op.batch {
                s.key.clear();
                write_key(&mut s.key, b'k', k, enc.key_size);
                bulk(out, &s.key);
            }
        }
        OpKind::HSet => {
            array(out, 4);
            bulk(out, b"HSET");
            bulk(out, &s.key);
            bulk(out, b"f");
            bulk(out, &s.value);
        }
        OpKind::HGet => {
            array(out, 3);
            bulk(out, b"HGET");
            bulk(out, &s.key);
            bulk(out, b"f");
        }
        OpKind::ZAdd => {
            let mut num = Vec::with_capacity(12);
            array(out, 4);
            bulk(out, b"ZADD");
            bulk(out, &s.key);
            push_u64(&mut num, u64::from(op.version));
            bulk(out, &num);
            num.clear();
            num.push(b'm');
            push_u64(&mut num, u64::from(op.version % 128));
            bulk(out, &num);
        }
        OpKind::ZRange => {
            array(out, 4);
            bulk(out, b"ZRANGE");
            bulk(out, &s.key);
            bulk(out, b"0");
            bulk(out, b"9");
        }
        OpKind::Publish => {
            array(out, 3);
            bulk(out, b"PUBLISH");
            bulk(out, &s.key);
            bulk(out, &s.value);
        }
    }
}

/// A parsed item and the bytes it used, `None` if incomplete.
pub(crate) type Partial<T> = Result<Option<(T, usize)>, ParseError>;

/// One RESP2 value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Integer(i64),
    Bulk(Option<&'a [u8]>),
    Array(Option<Vec<Option<&'a [u8]>>>),
}

fn bad(detail: impl Into<String>) -> ParseError {
    ParseError::new(Protocol::Resp, detail)
}

fn parse_int(s: &[u8]) -> Result<i64, ParseError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad(format!("bad integer {:?}", String::from_utf8_lossy(s))))
}

/// Parses a bulk string (or null) at `buf`; the value and bytes used.
fn parse_bulk(buf: &[u8]) -> Partial<Option<&[u8]>> {
    let Some(eol) = find_crlf(buf) else {
        return Ok(None);
    };
    if buf[0] != b'$' {
        return Err(bad("array element is not a bulk string"));
    }
    let n = parse_int(&buf[1..eol])?;
    if n < 0 {
        return Ok(Some((None, eol + 2)));
    }
    let start = eol + 2;
    let end = start + n as usize;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(bad("bulk string not followed by CRLF"));
    }
    Ok(Some((Some(&buf[start..end]), end + 2)))
}

pub(crate) fn parse_value(buf: &[u8]) -> Partial<Value<'_>> {
    let Some(eol) = find_crlf(buf) else {
        if let Some(&b) = buf.first() {
            if !b"+-:$*".contains(&b) {
                return Err(bad(format!("reply starts with {:?}", b as char)));
            }
        }
        return Ok(None);
    };
    let line = &buf[1..eol];
    let next = eol + 2;
    Ok(Some(match buf[0] {
        b'+' => (Value::Simple(line), next),
        b'-' => (Value::Error(line), next),
        b':' => (Value::Integer(parse_int(line)?), next),
        b'$' => match parse_bulk(buf)? {
            Some((v, used)) => (Value::Bulk(v), used),
            None => return Ok(None),
        },
        b'*' => {
            let n = parse_int(line)?;
            if n < 0 {
                (Value::Array(None), next)
            } else {
                let mut items = Vec::with_capacity(n as usize);
                let mut pos = next;
                for _ in 0..n {
                    if pos >= buf.len() {
                        return Ok(None);
                    }
                    let Some((item, used)) = parse_bulk(&buf[pos..])? else {
                        return Ok(None);
                    };
                    items.push(item);
                    pos += used;
                }
                (Value::Array(Some(items)), pos)
            }
        }
        other => return Err(bad(format!("reply starts with {:?}", other as char))),
    }))
}

/// Parses the reply to a RESP request of `kind` (`batch` keys for MGET).
pub fn parse(kind: OpKind, batch: usize, buf: &[u8]) -> Parsed<'_> {
    let Some((value, used)) = parse_value(buf)? else {
        return Ok(None);
    };
    let reply = match (kind, value) {
        (_, Value::Error(e)) => Reply::Error(String::from_utf8_lossy(e).into_owned()),
        (OpKind::Set, Value::Simple(b"OK")) => Reply::Stored,
        (OpKind::Get | OpKind::HGet, Value::Bulk(None)) => Reply::Miss,
        (OpKind::Get | OpKind::HGet, Value::Bulk(Some(v))) => Reply::Value(v),
        (OpKind::HSet | OpKind::ZAdd | OpKind::Publish, Value::Integer(n)) => Reply::Integer(n),
        (OpKind::MultiGet, Value::Array(Some(items))) if items.len() == batch => {
            Reply::Array(items)
        }
        (OpKind::ZRange, Value::Array(Some(items))) => Reply::Array(items),
        (kind, value) => return Err(bad(format!("unexpected reply {value:?} to {kind:?}"))),
    };
    Ok(Some((reply, used)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Values;

    fn encode_op(kind: OpKind, keys: &[u64], version: u32) -> Vec<u8> {
        let enc = Encoder {
            protocol: Protocol::Resp,
            key_size: 3,
            values: Values::new(1, 8, 8),
        };
        let mut out = Vec::new();
        enc.encode(
            &Op::new(kind, keys, version),
            &mut out,
            &mut Scratch::default(),
        );
        out
    }

    #[test]
    fn requests() {
        assert_eq!(
            encode_op(OpKind::Get, &[4], 0),
            b"*2\r\n$3\r\nGET\r\n$3\r\nk04\r\n"
        );
        assert_eq!(
            encode_op(OpKind::Set, &[4], 10),
            b"*3\r\n$3\r\nSET\r\n$3\r\nk04\r\n$8\r\n0000000a\r\n"
        );
        assert_eq!(
            encode_op(OpKind::MultiGet, &[1, 2], 0),
            b"*3\r\n$4\r\nMGET\r\n$3\r\nk01\r\n$3\r\nk02\r\n"
        );
        assert_eq!(
            encode_op(OpKind::HSet, &[4], 1),
            b"*4\r\n$4\r\nHSET\r\n$3\r\nh04\r\n$1\r\nf\r\n$8\r\n00000001\r\n"
        );
        assert_eq!(
            encode_op(OpKind::HGet, &[4], 1),
            b"*3\r\n$4\r\nHGET\r\n$3\r\nh04\r\n$1\r\nf\r\n"
        );
        assert_eq!(
            encode_op(OpKind::ZAdd, &[4], 130),
            b"*4\r\n$4\r\nZADD\r\n$3\r\nz04\r\n$3\r\n130\r\n$2\r\nm2\r\n"
        );
        assert_eq!(
            encode_op(OpKind::ZRange, &[4], 0),
            b"*4\r\n$6\r\nZRANGE\r\n$3\r\nz04\r\n$1\r\n0\r\n$1\r\n9\r\n"
        );
        assert!(encode_op(OpKind::Publish, &[4], 0)
            .starts_with(b"*3\r\n$7\r\nPUBLISH\r\n$3\r\nc04\r\n$8\r\n"));
    }

    #[test]
    fn replies() {
        assert_eq!(
            parse(OpKind::Set, 1, b"+OK\r\n"),
            Ok(Some((Reply::Stored, 5)))
        );
        assert_eq!(
            parse(OpKind::Get, 1, b"$-1\r\n"),
            Ok(Some((Reply::Miss, 5)))
        );
        assert_eq!(
            parse(OpKind::Get, 1, b"$5\r\nhello\r\n+OK"),
            Ok(Some((Reply::Value(b"hello"), 11)))
        );
        assert_eq!(parse(OpKind::Get, 1, b"$5\r\nhel"), Ok(None));
        assert_eq!(
            parse(OpKind::HSet, 1, b":1\r\n"),
            Ok(Some((Reply::Integer(1), 4)))
        );
        assert_eq!(
            parse(OpKind::Publish, 1, b":0\r\n"),
            Ok(Some((Reply::Integer(0), 4)))
        );
        let arr = b"*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n";
        assert_eq!(
            parse(OpKind::MultiGet, 3, arr),
            Ok(Some((
                Reply::Array(vec![Some(&b"a"[..]), None, Some(b"bc")]),
                arr.len()
            )))
        );
        for cut in 0..arr.len() {
            assert_eq!(
                parse(OpKind::MultiGet, 3, &arr[..cut]),
                Ok(None),
                "cut {cut}"
            );
        }
        assert!(parse(OpKind::MultiGet, 2, arr).is_err());
        assert_eq!(
            parse(OpKind::ZRange, 0, b"*0\r\n"),
            Ok(Some((Reply::Array(vec![]), 4)))
        );
        assert_eq!(
            parse(OpKind::HGet, 1, b"-ERR unknown command 'HGET'\r\n"),
            Ok(Some((
                Reply::Error("ERR unknown command 'HGET'".into()),
                29
            )))
        );
        assert!(parse(OpKind::Get, 1, b"ERROR\r\n").is_err());
        assert!(parse(OpKind::Get, 1, b"E").is_err());
        assert!(parse(OpKind::Set, 1, b":1\r\n").is_err());
    }
}
