//! The meta commands `mg ms md ma mn me`, mirroring `process_m*_command` in memcached 1.6's
//! `proto_text.c`: the same checks in the same order with the same messages.
//!
//! Meta errors are never suppressed by `q` (memcached writes them with `out_errstring`).
//! Only `ms` swallows: once its datalen is known, every later error also discards the data
//! block (`swallow` = datalen + 2), as memcached does.
//!
//! Invariant: a returned [`MetaKeyed`] has a valid key: a text key (1..=250 bytes, no space
//! or control byte) or, with `b`, base64 text of at most 250 bytes that decodes to 1..=250
//! bytes (binary keys may hold any byte).

use crate::memcache::lines::{data_block, Data, Limits, Parsed, Tokens};
use crate::memcache::meta_flags::{opaque_too_long, preparse, MetaMode, Preparsed};
use crate::memcache::number::safe_strtol;
use crate::memcache::request::{MetaKeyed, Reply};
use crate::memcache::words::{valid_key, MAX_KEY_LEN};
use crate::memcache::{MetaFlags, ParseError, Request};

/// memcached's `MFLAG_MAX_OPT_LENGTH`, compared with its `ntokens`.
const MAX_OPT_TOKENS: usize = 20;

const BAD_FORMAT: &str = "bad command line format";

fn client<'a>(message: &'static str, consumed: usize, swallow: usize) -> ParseError<'a> {
    ParseError::Client {
        message,
        consumed,
        swallow,
        reply: Reply::Yes,
    }
}

/// The key check every keyed meta command makes first. memcached only checks the length;
/// we also reject control bytes in a text key (see `parse::valid_key`). A base64 key is
/// checked when the `b` flag is parsed.
fn key_ok(key: &[u8], flag_tokens: &[&[u8]]) -> bool {
    let base64 = flag_tokens.iter().any(|t| t.first() == Some(&b'b'));
    key.len() <= MAX_KEY_LEN && (base64 || valid_key(key))
}

pub(crate) fn parse_meta<'a>(
    sub: u8,
    t: &Tokens<'a>,
    buf: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Parsed<'a> {
    let nt = t.ntokens();
    let unknown = Err(ParseError::UnknownCommand { consumed: line_len });
    match sub {
        b'n' => Ok(Some((Request::MetaNoop, line_len))),
        b'e' => meta_debug(t, line_len),
        b'g' | b'd' | b'a' | b's' if nt < 3 => unknown,
        b'g' => mg(t, line_len),
        b'd' => md(t, line_len),
        b'a' => ma(t, line_len),
        b's' => ms(t, buf, line_len, limits),
        _ => unknown,
    }
}

fn mg<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let key = t.get(1);
    let mut toks = [&[][..]; 23];
    let n = t.collect_from(2, &mut toks);
    let toks = &toks[..n];
    if !key_ok(key, toks) {
        return Err(client(BAD_FORMAT, line_len, 0));
    }
    if t.ntokens() > MAX_OPT_TOKENS {
        return Err(client("options flags are too long", line_len, 0));
    }
    let Preparsed { flags, .. } = preparse(key, toks).map_err(|m| client(m, line_len, 0))?;
    if opaque_too_long(&flags) {
        return Err(client("opaque token too long", line_len, 0));
    }
    Ok(Some((Request::MetaGet(MetaKeyed { key, flags }), line_len)))
}

fn md<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let key = t.get(1);
    let mut toks = [&[][..]; 23];
    let n = t.collect_from(2, &mut toks);
    let toks = &toks[..n];
    if !key_ok(key, toks) {
        return Err(client(BAD_FORMAT, line_len, 0));
    }
    if t.ntokens() > MAX_OPT_TOKENS {
        return Err(client("options flags too long", line_len, 0));
    }
    // md and ma report every preparse failure with one message.
    let Preparsed { flags, .. } =
        preparse(key, toks).map_err(|_| client("invalid or duplicate flag", line_len, 0))?;
    if opaque_too_long(&flags) {
        return Err(client("opaque token too long", line_len, 0));
    }
    Ok(Some((
        Request::MetaDelete(MetaKeyed { key, flags }),
        line_len,
    )))
}

fn ma<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let key = t.get(1);
    let mut toks = [&[][..]; 23];
    let n = t.collect_from(2, &mut toks);
    let toks = &toks[..n];
    if !key_ok(key, toks) {
        return Err(client(BAD_FORMAT, line_len, 0));
    }
    if t.ntokens() > MAX_OPT_TOKENS {
        return Err(client("options flags too long", line_len, 0));
    }
    let Preparsed {
        mut flags,
        mode_char,
    } = preparse(key, toks).map_err(|_| client("invalid or duplicate flag", line_len, 0))?;
    flags.mode = match mode_char {
        None => None,
        Some(b'I' | b'+') => Some(MetaMode::Incr),
        Some(b'D' | b'-') => Some(MetaMode::Decr),
        Some(_) => return Err(client("invalid mode for ma M token", line_len, 0)),
    };
    if opaque_too_long(&flags) {
        return Err(client("opaque token too long", line_len, 0));
    }
    Ok(Some((
        Request::MetaArith(MetaKeyed { key, flags }),
        line_len,
    )))
}

fn ms<'a>(t: &Tokens<'a>, buf: &'a [u8], line_len: usize, limits: &Limits) -> Parsed<'a> {
    let nt = t.ntokens();
    let key = t.get(1);
    let mut toks = [&[][..]; 23];
    let n = t.collect_from(3, &mut toks);
    let toks = &toks[..n];
    // Errors before the datalen is known swallow nothing: the data line is then read as a
    // command (memcached does the same).
    if !key_ok(key, toks) || nt == 3 {
        return Err(client(BAD_FORMAT, line_len, 0));
    }
    if nt > MAX_OPT_TOKENS {
        return Err(client("options flags too long", line_len, 0));
    }
    let vlen = match safe_strtol(t.get(2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => return Err(client(BAD_FORMAT, line_len, 0)),
    };
    let swallow = vlen + 2;
    let Preparsed {
        mut flags,
        mode_char,
    } = preparse(key, toks).map_err(|m| client(m, line_len, swallow))?;
    if opaque_too_long(&flags) {
        return Err(client("opaque token too long", line_len, swallow));
    }
    flags.mode = match mode_char {
        None => None,
        Some(b'E') => Some(MetaMode::Add),
        Some(b'A') => Some(MetaMode::Append),
        Some(b'P') => Some(MetaMode::Prepend),
        Some(b'R') => Some(MetaMode::Replace),
        Some(b'S') => Some(MetaMode::Set),
        Some(_) => return Err(client("invalid mode for ms M token", line_len, swallow)),
    };
    if vlen > limits.item_size_max {
        // memcached unlinks the key whatever the mode, and ignores q here.
        return Err(ParseError::TooLarge {
            key,
            base64_key: flags.base64_key,
            unlink: true,
            consumed: line_len,
            swallow,
            reply: Reply::Yes,
        });
    }
    let consumed = line_len + swallow;
    let value = match data_block(buf, line_len, vlen) {
        Data::Incomplete => return Ok(None),
        // ms always reports a bad chunk, q or not.
        Data::Bad => return Err(client("bad data chunk", consumed, 0)),
        Data::Value(v) => v,
    };
    Ok(Some((
        Request::MetaSet {
            meta: MetaKeyed { key, flags },
            value,
        },
        consumed,
    )))
}

/// `me <key> [b]`: every fault is `bad command line format`; tokens after the key other than
/// an exact `b` right after it are ignored.
fn meta_debug<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    if t.ntokens() < 3 {
        return Err(client(BAD_FORMAT, line_len, 0));
    }
    let key = t.get(1);
    let base64_key = t.ntokens() >= 4 && t.get(2) == b"b";
    let ok = if base64_key {
        let mut scratch = [0u8; MAX_KEY_LEN];
        crate::memcache::meta_flags::decode_base64_key(key, &mut scratch).is_some()
    } else {
        valid_key(key)
    };
    if !ok {
        return Err(client(BAD_FORMAT, line_len, 0));
    }
    let flags = MetaFlags {
        base64_key,
        ..MetaFlags::default()
    };
    Ok(Some((
        Request::MetaDebug(MetaKeyed { key, flags }),
        line_len,
    )))
}
