//! The incremental RESP request parser (multibulk and inline).
//!
//! Invariants: on `Ok(Some((command, consumed)))`, `consumed <= buf.len()` and every argument
//! borrows from `buf` (inline arguments with quotes or escapes are the one exception: they are
//! unescaped into owned bytes). `Ok(None)` means incomplete. Lengths are checked against
//! [`Limits`] before any allocation sized by them.

use std::borrow::Cow;

/// Limits Redis enforces on requests (`networking.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most elements in one multibulk request (Redis: 1024*1024 unless authenticated... we
    /// apply it always).
    pub max_multibulk_len: usize,
    /// Largest bulk argument (`proto-max-bulk-len`, capped by the item size limit).
    pub max_bulk_len: usize,
    /// Longest inline request line (`PROTO_INLINE_MAX_SIZE`, 64 KiB).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_multibulk_len: 1024 * 1024,
            max_bulk_len: 512 * 1024 * 1024,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A request the connection cannot continue after: Redis replies with the error and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

impl ProtocolError {
    /// The error line Redis sends before closing, with `\r\n`.
    pub fn reply(&self) -> Vec<u8> {
        format!("-ERR {self}\r\n").into_bytes()
    }
}

/// One command: its arguments (the first is the name). An empty argument list is possible for
/// an empty inline line or `*0`, which Redis silently skips.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command<'a> {
    pub args: Vec<Cow<'a, [u8]>>,
}

impl<'a> Command<'a> {
    pub fn len(&self) -> usize {
        self.args.len()
    }

    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    pub fn arg(&self, i: usize) -> &[u8] {
        &self.args[i]
    }

    /// The command name, lower-cased into `scratch` (for table lookup).
    pub fn name_lowercase<'s>(&self, scratch: &'s mut [u8; 32]) -> Option<&'s [u8]> {
        let name = self.args.first()?;
        if name.len() > scratch.len() {
            return None;
        }
        for (dst, src) in scratch.iter_mut().zip(name.iter()) {
            *dst = src.to_ascii_lowercase();
        }
        Some(&scratch[..name.len()])
    }
}

/// Parses one command from the front of `buf`.
pub fn parse<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Command<'a>, usize)>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// Finds `\r\n` at or after `from`; returns the index of `\r`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let nl = memchr::memchr(b'\n', &buf[at..])? + at;
        if nl > from && buf[nl - 1] == b'\r' {
            return Some(nl - 1);
        }
        at = nl + 1;
    }
}

fn parse_int(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_multibulk<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Command<'a>, usize)>, ProtocolError> {
    let Some(end) = find_crlf(buf, 1) else {
        if buf.len() > limits.max_inline_len {
            return Err(ProtocolError::TooBigMultibulkCount);
        }
        return Ok(None);
    };
    let count = parse_int(&buf[1..end]).ok_or(ProtocolError::InvalidMultibulkLength)?;
    if count > limits.max_multibulk_len as i64 {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    let mut pos = end + 2;
    if count <= 0 {
        return Ok(Some((Command::default(), pos)));
    }
    let count = count as usize;
    // Cap the up-front reservation: a client may announce many arguments and send few.
    let mut args = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let Some(&first) = buf.get(pos) else {
            return Ok(None);
        };
        if first != b'$' {
            return Err(ProtocolError::ExpectedDollar(first as char));
        }
        let Some(end) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > 32 {
                return Err(ProtocolError::TooBigBulkCount);
            }
            return Ok(None);
        };
        let len = parse_int(&buf[pos + 1..end]).ok_or(ProtocolError::InvalidBulkLength)?;
        if len < 0 || len as u64 > limits.max_bulk_len as u64 {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let start = end + 2;
        let stop = start + len as usize;
        if buf.len() < stop + 2 {
            return Ok(None);
        }
        // Redis does not check the trailing CRLF; it skips two bytes whatever they are.
        args.push(Cow::Borrowed(&buf[start..stop]));
        pos = stop + 2;
    }
    Ok(Some((Command { args }, pos)))
}

fn parse_inline<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Command<'a>, usize)>, ProtocolError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        if buf.len() > limits.max_inline_len {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(None);
    };
    if nl > limits.max_inline_len {
        return Err(ProtocolError::TooBigInline);
    }
    let line = if nl > 0 && buf[nl - 1] == b'\r' {
        &buf[..nl - 1]
    } else {
        &buf[..nl]
    };
    let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
    Ok(Some((Command { args }, nl + 1)))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits an inline line as Redis's `sdssplitargs` does: spaces separate arguments; "double
/// quotes" take `\n \r \t \b \a \\ \" \xHH` escapes; 'single quotes' take `\'`; a closing quote
/// must be followed by a space or the end. `None` on unbalanced quotes.
fn split_args(line: &[u8]) -> Option<Vec<Cow<'_, [u8]>>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        match line[i] {
            b'"' => {
                let mut arg = Vec::new();
                i += 1;
                loop {
                    let &c = line.get(i)?;
                    if c == b'\\' && line.get(i + 1) == Some(&b'x') {
                        let digit = |at: usize| line.get(at).and_then(|b| hex(*b));
                        if let (Some(h), Some(l)) = (digit(i + 2), digit(i + 3)) {
                            arg.push(h * 16 + l);
                            i += 4;
                            continue;
                        }
                    }
                    if c == b'\\' && i + 1 < line.len() {
                        arg.push(match line[i + 1] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                        i += 2;
                    } else if c == b'"' {
                        i += 1;
                        if i < line.len() && !line[i].is_ascii_whitespace() {
                            return None;
                        }
                        break;
                    } else {
                        arg.push(c);
                        i += 1;
                    }
                }
                args.push(Cow::Owned(arg));
            }
            b'\'' => {
                let mut arg = Vec::new();
                i += 1;
                loop {
                    let &c = line.get(i)?;
                    if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                        arg.push(b'\'');
                        i += 2;
                    } else if c == b'\'' {
                        i += 1;
                        if i < line.len() && !line[i].is_ascii_whitespace() {
                            return None;
                        }
                        break;
                    } else {
                        arg.push(c);
                        i += 1;
                    }
                }
                args.push(Cow::Owned(arg));
            }
            _ => {
                let start = i;
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    i += 1;
                }
                args.push(Cow::Borrowed(&line[start..i]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(buf: &[u8]) -> Vec<Vec<u8>> {
        let (cmd, used) = parse(buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(used, buf.len());
        cmd.args.iter().map(|a| a.to_vec()).collect()
    }

    #[test]
    fn multibulk_and_inline() {
        assert_eq!(
            args(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            vec![b"GET".to_vec(), b"k".to_vec()]
        );
        assert_eq!(args(b"*1\r\n$0\r\n\r\n"), vec![Vec::<u8>::new()]);
        assert_eq!(args(b"PING\r\n"), vec![b"PING".to_vec()]);
        assert_eq!(
            args(b"set  a   b\n"),
            vec![b"set".to_vec(), b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(
            args(b"set \"a b\" 'c\\'d' \"\\x41\\n\"\r\n"),
            vec![
                b"set".to_vec(),
                b"a b".to_vec(),
                b"c'd".to_vec(),
                b"A\n".to_vec()
            ]
        );
        assert!(args(b"\r\n").is_empty());
        assert!(args(b"*0\r\n").is_empty());
    }

    #[test]
    fn every_split_point_is_incomplete_until_the_end() {
        let whole = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n";
        for cut in 0..whole.len() {
            assert_eq!(
                parse(&whole[..cut], &Limits::default()),
                Ok(None),
                "cut at {cut}"
            );
        }
        assert!(parse(whole, &Limits::default()).unwrap().is_some());
    }

    #[test]
    fn limits_and_errors_use_redis_words() {
        let limits = Limits {
            max_bulk_len: 10,
            max_multibulk_len: 3,
            max_inline_len: 16,
        };
        assert_eq!(
            parse(b"*4\r\n", &limits),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse(b"*x\r\n", &limits),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse(b"*1\r\n$11\r\n", &limits),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse(b"*1\r\n$-1\r\n", &limits),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse(b"*1\r\n:1\r\n", &limits),
            Err(ProtocolError::ExpectedDollar(':'))
        );
        assert_eq!(
            parse(b"aaaaaaaaaaaaaaaaaaaaa", &limits),
            Err(ProtocolError::TooBigInline)
        );
        assert_eq!(
            parse(b"set \"a\r\n", &limits),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse(b"set \"a\"b\r\n", &limits),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            String::from_utf8(ProtocolError::ExpectedDollar('x').reply()).unwrap(),
            "-ERR Protocol error: expected '$', got 'x'\r\n"
        );
    }

    #[test]
    fn a_huge_announced_count_does_not_allocate_it() {
        let (cmd, _) = parse(b"*1\r\n$3\r\nGET\r\n", &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(cmd.len(), 1);
        assert_eq!(parse(b"*1048576\r\n$1\r\n", &Limits::default()), Ok(None));
    }
}
