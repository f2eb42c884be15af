//! Parsing a complete RESP2/RESP3 reply into a tree, for the server's own consumers of
//! replies (a Lua script's `redis.call` reads what the command it ran answered).
//!
//! The input is trusted to be whole replies the [`Encoder`](super::Encoder) wrote; a
//! truncated or malformed one is an error, never a panic. Strings borrow from the input. No
//! I/O. Element counts are bounded by the input's length before anything is reserved.

/// One reply value. RESP2's null bulk and null array are kept apart from RESP3's null because
/// their consumers tell them apart (Lua sees `false` for the first two, `nil` for the last).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<'a> {
    Simple(&'a [u8]),
    /// The error line without its `-` (or a RESP3 blob error's text).
    Error(&'a [u8]),
    Integer(i64),
    Bulk(&'a [u8]),
    /// `$-1`
    NullBulk,
    /// `*-1`
    NullArray,
    /// RESP3 `_`
    Null,
    Array(Vec<Reply<'a>>),
    Map(Vec<(Reply<'a>, Reply<'a>)>),
    Set(Vec<Reply<'a>>),
    Double(f64),
    Boolean(bool),
    BigNumber(&'a [u8]),
    Verbatim {
        format: &'a [u8],
        text: &'a [u8],
    },
}

/// The input does not hold one whole well-formed reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed or incomplete RESP reply")]
pub struct ReplyError;

/// Parses the reply at the front of `buf`: the reply and the bytes it took. Attributes
/// (`|`) are skipped: the value after them is returned.
pub fn parse_reply(buf: &[u8]) -> Result<(Reply<'_>, usize), ReplyError> {
    let mut at = 0;
    let reply = value(buf, &mut at, 0)?;
    Ok((reply, at))
}

/// Deeper nesting than this is refused (the recursion must stay bounded).
const MAX_DEPTH: usize = 1000;

fn line<'a>(buf: &'a [u8], at: &mut usize) -> Result<&'a [u8], ReplyError> {
    let rest = buf.get(*at..).ok_or(ReplyError)?;
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or(ReplyError)?;
    *at += end + 2;
    Ok(&rest[..end])
}

fn number(text: &[u8]) -> Result<i64, ReplyError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(ReplyError)
}

fn blob<'a>(buf: &'a [u8], at: &mut usize, len: i64) -> Result<&'a [u8], ReplyError> {
    let len = usize::try_from(len).map_err(|_| ReplyError)?;
    let end = at.checked_add(len).ok_or(ReplyError)?;
    let bytes = buf.get(*at..end).ok_or(ReplyError)?;
    if buf.get(end..end + 2) != Some(b"\r\n") {
        return Err(ReplyError);
    }
    *at = end + 2;
    Ok(bytes)
}

/// A count of elements, each taking at least 3 bytes of what is left.
fn count(buf: &[u8], at: usize, n: i64, per: usize) -> Result<usize, ReplyError> {
    let n = usize::try_from(n).map_err(|_| ReplyError)?;
    if n.saturating_mul(3 * per) > buf.len().saturating_sub(at) {
        return Err(ReplyError);
    }
    Ok(n)
}

fn value<'a>(buf: &'a [u8], at: &mut usize, depth: usize) -> Result<Reply<'a>, ReplyError> {
    if depth > MAX_DEPTH {
        return Err(ReplyError);
    }
    let kind = *buf.get(*at).ok_or(ReplyError)?;
    *at += 1;
    let head = line(buf, at)?;
    Ok(match kind {
        b'+' => Reply::Simple(head),
        b'-' => Reply::Error(head),
        b':' => Reply::Integer(number(head)?),
        b'$' => match number(head)? {
            -1 => Reply::NullBulk,
            len => Reply::Bulk(blob(buf, at, len)?),
        },
        b'!' => Reply::Error(blob(buf, at, number(head)?)?),
        b'(' => Reply::BigNumber(head),
        b'_' => Reply::Null,
        b'#' => match head {
            b"t" => Reply::Boolean(true),
            b"f" => Reply::Boolean(false),
            _ => return Err(ReplyError),
        },
        b',' => Reply::Double(parse_double(head)?),
        b'=' => {
            let text = blob(buf, at, number(head)?)?;
            if text.len() < 4 || text[3] != b':' {
                return Err(ReplyError);
            }
            Reply::Verbatim {
                format: &text[..3],
                text: &text[4..],
            }
        }
        b'*' | b'~' | b'>' => match number(head)? {
            -1 if kind == b'*' => Reply::NullArray,
            n => {
                let n = count(buf, *at, n, 1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(value(buf, at, depth + 1)?);
                }
                if kind == b'~' {
                    Reply::Set(items)
                } else {
                    Reply::Array(items)
                }
            }
        },
        b'%' | b'|' => {
            let n = count(buf, *at, number(head)?, 2)?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let key = value(buf, at, depth + 1)?;
                pairs.push((key, value(buf, at, depth + 1)?));
            }
            if kind == b'|' {
                return value(buf, at, depth + 1);
            }
            Reply::Map(pairs)
        }
        _ => return Err(ReplyError),
    })
}

fn parse_double(text: &[u8]) -> Result<f64, ReplyError> {
    match text {
        b"inf" => Ok(f64::INFINITY),
        b"-inf" => Ok(f64::NEG_INFINITY),
        b"nan" => Ok(f64::NAN),
        _ => std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(ReplyError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let input = b"*9\r\n+OK\r\n-ERR x\r\n:-5\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n_\r\n#t\r\n,1.5\r\n";
        let (reply, used) = parse_reply(input).unwrap();
        assert_eq!(used, input.len());
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Simple(b"OK"),
                Reply::Error(b"ERR x"),
                Reply::Integer(-5),
                Reply::Bulk(b"abc"),
                Reply::NullBulk,
                Reply::NullArray,
                Reply::Null,
                Reply::Boolean(true),
                Reply::Double(1.5),
            ])
        );
        let (map, _) = parse_reply(b"%1\r\n+a\r\n~1\r\n:1\r\n").unwrap();
        assert_eq!(
            map,
            Reply::Map(vec![(
                Reply::Simple(b"a"),
                Reply::Set(vec![Reply::Integer(1)])
            )])
        );
        let (verbatim, _) = parse_reply(b"=8\r\ntxt:abcd\r\n").unwrap();
        assert_eq!(
            verbatim,
            Reply::Verbatim {
                format: b"txt",
                text: b"abcd"
            }
        );
        let (after_attribute, _) = parse_reply(b"|1\r\n+k\r\n+v\r\n:7\r\n").unwrap();
        assert_eq!(after_attribute, Reply::Integer(7));
    }

    #[test]
    fn refuses_truncated_and_huge_counts() {
        assert_eq!(parse_reply(b"$5\r\nab\r\n"), Err(ReplyError));
        assert_eq!(parse_reply(b"*1000000000\r\n"), Err(ReplyError));
        assert_eq!(parse_reply(b"*2\r\n:1\r\n"), Err(ReplyError));
        assert_eq!(parse_reply(b"?\r\n"), Err(ReplyError));
        assert_eq!(parse_reply(b""), Err(ReplyError));
    }
}
