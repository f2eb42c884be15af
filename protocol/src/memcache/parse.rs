//! The incremental parser of memcached's text and meta protocols: framing and dispatch.
//!
//! This module owns finding the request line (`memchr` for `\n`), the line-length limits and
//! the choice of command (memcached's `process_command_ascii`). The tokenizer and the other
//! words every command parser shares are in `lines.rs`; the commands themselves are parsed in
//! `text.rs` and `meta_commands.rs`.
//!
//! Invariants: `parse` never panics, never allocates, borrows everything from `buf`, and for
//! any buffer returns the same answer as for any longer buffer that starts with it, unless it
//! answered `Ok(None)` (so a stream split at any point parses the same). `consumed` never
//! exceeds `buf.len()`. Every key it returns is valid (see `request.rs`).
//!
//! Framing follows memcached's `try_read_command_ascii`: a line ends at `\n`; one `\r` before
//! it is dropped when the line has at least two bytes before the `\n`; a NUL byte ends the
//! line early (memcached's tokenizer uses `strlen`), the bytes after it up to `\n` are ignored.

use memchr::memchr;

use crate::memcache::lines::{Limits, Parsed, Tokens};
use crate::memcache::meta_commands::parse_meta;
use crate::memcache::text;
use crate::memcache::{ParseError, Request};

/// Parses one request from the front of `buf`.
///
/// - `Ok(Some((request, consumed)))`: a whole request (with its data block) was at the front;
///   drop `consumed` bytes once `request` is no longer used.
/// - `Ok(None)`: incomplete, read more bytes and call again with the grown buffer.
/// - `Err(e)`: see [`ParseError`] for what to answer and how much to drop.
///
/// Deviation on long lines: memcached closes a connection only when more than 2048 bytes
/// without `\n` sit in its read buffer, so whether a long line survives depends on how it
/// arrived. We decide on the line alone: more than `max_line_len` bytes before the `\n`
/// (`max_multiget_line_len` for `get`/`gets`) is [`ParseError::LineTooLong`], however the bytes
/// arrived.
pub fn parse<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Request<'a>, usize)>, ParseError<'a>> {
    let Some((line, line_len)) = frame_line(buf, limits)? else {
        return Ok(None);
    };
    let tokens = Tokens::new(line);
    dispatch(&tokens, buf, line_len, limits)
}

/// Finds the first request line: `(line without \r\n, bytes up to and including the \n)`.
fn frame_line<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>, ParseError<'a>> {
    match memchr(b'\n', buf) {
        Some(nl) => {
            if nl > limits.max_line_len && nl > line_limit(&buf[..nl], limits) {
                return Err(ParseError::LineTooLong);
            }
            let mut end = nl;
            if nl > 1 && buf[nl - 1] == b'\r' {
                end -= 1;
            }
            let line = &buf[..end];
            let line = match memchr(0, line) {
                Some(nul) => &line[..nul],
                None => line,
            };
            Ok(Some((line, nl + 1)))
        }
        None => {
            if buf.len() > limits.max_line_len && buf.len() > line_limit(buf, limits) {
                return Err(ParseError::LineTooLong);
            }
            Ok(None)
        }
    }
}

/// The line limit for a line starting with `start` (memcached's multiget exemption: at most
/// 100 leading spaces, then `get ` or `gets `).
fn line_limit(start: &[u8], limits: &Limits) -> usize {
    let spaces = start.iter().take_while(|b| **b == b' ').count();
    let rest = &start[spaces..];
    if spaces <= 100 && (rest.starts_with(b"get ") || rest.starts_with(b"gets ")) {
        limits.max_multiget_line_len.max(limits.max_line_len)
    } else {
        limits.max_line_len
    }
}

/// Commands memcached knows that ferrocache does not implement: answered `ERROR` (memcached
/// would run them), but, like memcached, never treated as HTTP.
const KNOWN_UNSUPPORTED: &[&[u8]] = &[b"lru_crawler", b"watch", b"lru", b"extstore"];

fn dispatch<'a>(t: &Tokens<'a>, buf: &'a [u8], line_len: usize, limits: &Limits) -> Parsed<'a> {
    let unknown = Err(ParseError::UnknownCommand { consumed: line_len });
    if t.kept() == 0 || t.get(0).len() < 2 {
        return unknown;
    }
    let cmd = t.get(0);
    let nt = t.ntokens();
    let want = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ParseError::UnknownCommand { consumed: line_len })
        }
    };
    if cmd.len() == 2 && cmd[0] == b'm' {
        return parse_meta(cmd[1], t, buf, line_len, limits);
    }
    let simple = |r: Request<'a>| Ok(Some((r, line_len)));
    match cmd {
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" => {
            want(nt >= 3)?;
            text::get(t, line_len)
        }
        b"set" | b"add" | b"append" | b"replace" | b"prepend" => {
            want(nt == 6 || nt == 7)?;
            text::store(t, buf, line_len, limits)
        }
        b"cas" => {
            want(nt == 7 || nt == 8)?;
            text::store(t, buf, line_len, limits)
        }
        b"stats" => simple(text::stats(t)),
        b"shutdown" => text::shutdown(t, line_len),
        b"save" | b"bgsave" => {
            want(nt == 2)?;
            simple(Request::Save {
                background: cmd == b"bgsave",
            })
        }
        b"cache_memlimit" => {
            want(nt == 3 || nt == 4)?;
            text::cache_memlimit(t, line_len)
        }
        b"incr" | b"decr" => {
            want(nt == 4 || nt == 5)?;
            text::arith(t, line_len)
        }
        b"delete" => {
            want((3..=5).contains(&nt))?;
            text::delete(t, line_len)
        }
        b"touch" => {
            want(nt == 4 || nt == 5)?;
            text::touch(t, line_len)
        }
        b"flush_all" => {
            want((2..=4).contains(&nt))?;
            text::flush_all(t, line_len)
        }
        b"version" => simple(Request::Version),
        b"quit" => simple(Request::Quit),
        b"verbosity" => {
            want(nt == 3 || nt == 4)?;
            text::verbosity(t, line_len)
        }
        _ => {
            // memcached dispatches on the first letter first: an unknown command starting
            // with one of these letters gets ERROR without the HTTP check.
            let lettered = matches!(cmd[0], b'g' | b's' | b'a' | b'c' | b'i' | b'd' | b't');
            if !lettered
                && !KNOWN_UNSUPPORTED.contains(&cmd)
                && t.get(t.kept() - 1).starts_with(b"HTTP/")
            {
                return Err(ParseError::HttpRequest);
            }
            unknown
        }
    }
}
