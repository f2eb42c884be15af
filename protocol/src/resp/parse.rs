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
    /// Most elements in one multibulk request (Redis: `INT_MAX`; the request's total size is
    /// bounded by the connection's query buffer limit).
    pub max_multibulk_len: usize,
    /// Largest bulk argument (`proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Longest inline request line (`PROTO_INLINE_MAX_SIZE`, 64 KiB).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_multibulk_len: i32::MAX as usize,
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

/// Where an incomplete multibulk request stopped, so the next call resumes there instead of
/// parsing from byte 0 again (a request of a million arguments arriving a packet at a time
/// would otherwise cost quadratic time). The connection keeps one per RESP session.
///
/// Offsets are relative to the start of the request, which must stay at the front of the
/// buffer (unconsumed) between calls: the caller consumes input only after a complete request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Arguments the multibulk header announced (0: no header parsed yet).
    announced: usize,
    /// Where the next argument's `$` header starts.
    resume_at: usize,
    /// `(start, len)` of each argument parsed so far.
    spans: Vec<(usize, usize)>,
    /// Bytes the request is known to need in all (through the end of the argument being
    /// read), so the caller can make room for a large value at once; 0 when unknown.
    needed: usize,
}

impl Progress {
    /// The bytes the pending request is known to need in all (0 when unknown or none pending).
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// Forgets a partly parsed request, keeping a modest allocation for the next one.
    fn reset(&mut self) {
        self.announced = 0;
        self.resume_at = 0;
        self.needed = 0;
        self.spans.clear();
        if self.spans.capacity() > 1024 {
            self.spans = Vec::new();
        }
    }
}

/// Parses one command from the front of `buf`, from scratch.
pub fn parse<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Command<'a>, usize)>, ProtocolError> {
    parse_resumable(buf, limits, &mut Progress::default())
}

/// Parses one command from the front of `buf`, resuming where `progress` says an earlier call
/// on the same (now longer) request stopped. On a complete request or an error, `progress` is
/// reset for the next one.
pub fn parse_resumable<'a>(
    buf: &'a [u8],
    limits: &Limits,
    progress: &mut Progress,
) -> Result<Option<(Command<'a>, usize)>, ProtocolError> {
    let parsed = match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, limits, progress),
        Some(_) => parse_inline(buf, limits),
    };
    if !matches!(parsed, Ok(None)) {
        progress.reset();
    }
    parsed
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
    progress: &mut Progress,
) -> Result<Option<(Command<'a>, usize)>, ProtocolError> {
    if progress.announced == 0 {
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
        if count <= 0 {
            return Ok(Some((Command::default(), end + 2)));
        }
        progress.announced = count as usize;
        progress.resume_at = end + 2;
        // Cap the up-front reservation: a client may announce many arguments and send few.
        progress.spans.reserve(progress.announced.min(1024));
    }
    let mut pos = progress.resume_at;
    while progress.spans.len() < progress.announced {
        progress.resume_at = pos;
        let Some(&first) = buf.get(pos) else {
            progress.needed = 0;
            return Ok(None);
        };
        if first != b'$' {
            return Err(ProtocolError::ExpectedDollar(first as char));
        }
        let Some(end) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > 32 {
                return Err(ProtocolError::TooBigBulkCount);
            }
            progress.needed = 0;
            return Ok(None);
        };
        let len = parse_int(&buf[pos + 1..end]).ok_or(ProtocolError::InvalidBulkLength)?;
        if len < 0 || len as u64 > limits.max_bulk_len as u64 {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let start = end + 2;
        let stop = start + len as usize;
        if buf.len() < stop + 2 {
            progress.needed = stop + 2;
            return Ok(None);
        }
        // Redis does not check the trailing CRLF; it skips two bytes whatever they are.
        progress.spans.push((start, len as usize));
        pos = stop + 2;
    }
    let args = progress
        .spans
        .iter()
        .map(|&(start, len)| Cow::Borrowed(&buf[start..start + len]))
        .collect();
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
pub fn split_args(line: &[u8]) -> Option<Vec<Cow<'_, [u8]>>> {
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
    fn resuming_at_every_split_point_gives_the_same_command() {
        let whole = b"*4\r\n$3\r\nSET\r\n$5\r\nhello\r\n$0\r\n\r\n$11\r\nhello world\r\n";
        let expected = parse(whole, &Limits::default()).unwrap().unwrap();
        for cut in 0..whole.len() {
            let mut progress = Progress::default();
            assert_eq!(
                parse_resumable(&whole[..cut], &Limits::default(), &mut progress),
                Ok(None),
                "cut at {cut}"
            );
            let resumed = parse_resumable(whole, &Limits::default(), &mut progress);
            assert_eq!(resumed, Ok(Some(expected.clone())), "cut at {cut}");
            assert_eq!(progress, Progress::default(), "reset after cut {cut}");
        }
    }

    #[test]
    fn resuming_starts_after_the_arguments_already_parsed() {
        // A byte-at-a-time arrival: each call must start where the last one stopped, so the
        // argument headers before it are not read again. Poison an argument header that
        // was already parsed: a parser that starts over trips on it, a resuming one does not.
        let whole = b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n".to_vec();
        let mut progress = Progress::default();
        let cut = b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$".len();
        assert_eq!(
            parse_resumable(&whole[..cut], &Limits::default(), &mut progress),
            Ok(None)
        );
        assert_eq!(progress.spans.len(), 2);
        let mut poisoned = whole.clone();
        poisoned[4] = b'!'; // the first argument's `$`
        let (command, used) = parse_resumable(&poisoned, &Limits::default(), &mut progress)
            .unwrap()
            .unwrap();
        assert_eq!(used, whole.len());
        assert_eq!(command.arg(2), b"c");
        // Without the progress, the same bytes are an error.
        assert_eq!(
            parse(&poisoned, &Limits::default()),
            Err(ProtocolError::ExpectedDollar('!'))
        );
    }

    #[test]
    fn an_incomplete_bulk_says_how_many_bytes_the_request_needs() {
        let mut progress = Progress::default();
        let head = b"*2\r\n$3\r\nSET\r\n$1000000\r\nabc";
        assert_eq!(
            parse_resumable(head, &Limits::default(), &mut progress),
            Ok(None)
        );
        let value_start = b"*2\r\n$3\r\nSET\r\n$1000000\r\n".len();
        assert_eq!(progress.needed(), value_start + 1_000_000 + 2);
    }

    #[test]
    fn a_million_arguments_are_accepted() {
        let mut request = b"*1000001\r\n$4\r\nMSET\r\n".to_vec();
        for _ in 0..1_000_000 {
            request.extend_from_slice(b"$1\r\nk\r\n");
        }
        let (command, used) = parse(&request, &Limits::default()).unwrap().unwrap();
        assert_eq!((command.len(), used), (1_000_001, request.len()));
        assert_eq!(
            parse(b"*3000000000\r\n", &Limits::default()),
            Err(ProtocolError::InvalidMultibulkLength)
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
