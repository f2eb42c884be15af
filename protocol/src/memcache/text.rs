//! The commands of memcached's original text protocol, one function each, mirroring the
//! `process_*_command` functions of memcached 1.6's `proto_text.c`.
//!
//! `parse.rs` has already checked the token counts memcached checks before calling them
//! (`WANT_TOKENS*`), so each function may read the tokens those counts guarantee. Every
//! check happens in memcached's order, so a line with several faults gets memcached's answer.
//! `noreply` suppresses exactly the errors memcached suppresses (those written after its
//! `set_noreply_maybe`).

use crate::memcache::lines::{data_block, Data, Limits, Parsed, Tokens};
use crate::memcache::number::{safe_strtol, safe_strtoul, safe_strtoull};
use crate::memcache::request::{ArithDirection, Exptime, Keys, Reply, StatsGroup, StoreMode};
use crate::memcache::words::valid_key;
use crate::memcache::{ParseError, Request};

const BAD_FORMAT: &str = "bad command line format";

fn client<'a>(message: &'static str, consumed: usize, reply: Reply) -> ParseError<'a> {
    ParseError::Client {
        message,
        consumed,
        swallow: 0,
        reply,
    }
}

/// `get`, `gets`, `gat`, `gats` and the ancient `bget` (a plain `get`).
pub(crate) fn get<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let cmd = t.get(0);
    let cas = cmd == b"gets" || cmd == b"gats";
    let (touch, first_key) = if cmd == b"gat" || cmd == b"gats" {
        match safe_strtol(t.get(1)) {
            Some(e) => (Some(Exptime(i64::from(e))), 2),
            None => return Err(client("invalid exptime argument", line_len, Reply::Yes)),
        }
    } else {
        (None, 1)
    };
    // `gat <exptime>` with no key is valid: memcached answers END.
    let raw = t.raw_from(first_key);
    let keys = Keys::new(raw);
    // memcached stops at the first bad key and answers only the error (it drops the hits it
    // had queued), so rejecting the whole line is exact.
    if keys.iter().any(|k| !valid_key(k)) {
        return Err(client(BAD_FORMAT, line_len, Reply::Yes));
    }
    Ok(Some((Request::Get { keys, cas, touch }, line_len)))
}

/// `set`, `add`, `replace`, `append`, `prepend`, `cas` (`process_update_command`).
pub(crate) fn store<'a>(
    t: &Tokens<'a>,
    buf: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Parsed<'a> {
    let mode = match t.get(0) {
        b"set" => StoreMode::Set,
        b"add" => StoreMode::Add,
        b"replace" => StoreMode::Replace,
        b"append" => StoreMode::Append,
        b"prepend" => StoreMode::Prepend,
        _ => StoreMode::Cas,
    };
    // Note: `noreply` is looked for in the last token, whatever it is: memcached does the
    // same, so `set k 0 0 noreply` fails silently, and a 6th token other than `noreply`
    // (`set k 0 0 1 foo`) is ignored.
    let reply = t.reply();
    // A bad key does not swallow the data block: its line is then read as a command.
    let key = t.get(1);
    if !valid_key(key) {
        return Err(client(BAD_FORMAT, line_len, reply));
    }
    let (Some(flags), Some(exptime), Some(vlen)) = (
        safe_strtoul(t.get(2)),
        safe_strtol(t.get(3)),
        safe_strtol(t.get(4)),
    ) else {
        return Err(client(BAD_FORMAT, line_len, reply));
    };
    let cas_unique = if mode == StoreMode::Cas {
        match safe_strtoull(t.get(5)) {
            Some(c) => Some(c),
            None => return Err(client(BAD_FORMAT, line_len, reply)),
        }
    } else {
        None
    };
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return Err(client(BAD_FORMAT, line_len, reply));
    }
    let vlen = vlen as usize;
    if vlen > limits.item_size_max {
        return Err(ParseError::TooLarge {
            key,
            base64_key: false,
            // memcached unlinks the old value only for `set`.
            unlink: mode == StoreMode::Set,
            consumed: line_len,
            swallow: vlen + 2,
            reply,
        });
    }
    let consumed = line_len + vlen + 2;
    let value = match data_block(buf, line_len, vlen) {
        Data::Incomplete => return Ok(None),
        Data::Bad => return Err(client("bad data chunk", consumed, reply)),
        Data::Value(v) => v,
    };
    Ok(Some((
        Request::Store {
            mode,
            key,
            flags,
            exptime: Exptime(i64::from(exptime)),
            value,
            cas_unique,
            reply,
        },
        consumed,
    )))
}

/// `incr`/`decr <key> <delta> [noreply]`.
pub(crate) fn arith<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let direction = if t.get(0) == b"incr" {
        ArithDirection::Incr
    } else {
        ArithDirection::Decr
    };
    let reply = t.reply();
    let key = t.get(1);
    if !valid_key(key) {
        return Err(client(BAD_FORMAT, line_len, reply));
    }
    let Some(delta) = safe_strtoull(t.get(2)) else {
        return Err(client("invalid numeric delta argument", line_len, reply));
    };
    Ok(Some((
        Request::Arith {
            direction,
            key,
            delta,
            reply,
        },
        line_len,
    )))
}

/// `touch <key> <exptime> [noreply]`.
pub(crate) fn touch<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let reply = t.reply();
    let key = t.get(1);
    if !valid_key(key) {
        return Err(client(BAD_FORMAT, line_len, reply));
    }
    let Some(exptime) = safe_strtol(t.get(2)) else {
        return Err(client("invalid exptime argument", line_len, reply));
    };
    Ok(Some((
        Request::Touch {
            key,
            exptime: Exptime(i64::from(exptime)),
            reply,
        },
        line_len,
    )))
}

/// `delete <key> [0] [noreply]`: the legacy hold time is accepted only as `0`.
pub(crate) fn delete<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let nt = t.ntokens();
    let mut reply = Reply::Yes;
    if nt > 3 {
        let hold_is_zero = t.get(2) == b"0";
        reply = t.reply();
        let sets_noreply = reply == Reply::No;
        let valid = (nt == 4 && (hold_is_zero || sets_noreply))
            || (nt == 5 && hold_is_zero && sets_noreply);
        if !valid {
            return Err(client(
                "bad command line format.  Usage: delete <key> [noreply]",
                line_len,
                reply,
            ));
        }
    }
    let key = t.get(1);
    if !valid_key(key) {
        return Err(client(BAD_FORMAT, line_len, reply));
    }
    Ok(Some((Request::Delete { key, reply }, line_len)))
}

/// `flush_all [delay] [noreply]`.
///
/// Deviation: with flush disabled (`-F`) memcached answers `flush_all not allowed` before it
/// looks at the delay; we reject a bad delay first.
pub(crate) fn flush_all<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let reply = t.reply();
    let expected = if reply == Reply::No { 3 } else { 2 };
    let delay = if t.ntokens() != expected {
        // `flush_all noreply 10` lands here and fails on "noreply", as in memcached.
        match safe_strtol(t.get(1)) {
            Some(d) => Some(Exptime(i64::from(d))),
            None => return Err(client("invalid exptime argument", line_len, reply)),
        }
    } else {
        None
    };
    Ok(Some((Request::FlushAll { delay, reply }, line_len)))
}

/// `verbosity <level> [noreply]`; the level must be an unsigned number.
pub(crate) fn verbosity<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let reply = t.reply();
    let Some(level) = safe_strtoul(t.get(1)) else {
        return Err(client(BAD_FORMAT, line_len, reply));
    };
    Ok(Some((Request::Verbosity { level, reply }, line_len)))
}

/// `cache_memlimit <megabytes> [noreply]`; a bad number is a bare `ERROR` that `noreply`
/// suppresses. The number is read into 32 bits like memcached (`4294967396` is 100).
pub(crate) fn cache_memlimit<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    let reply = t.reply();
    let Some(mb) = safe_strtoul(t.get(1)) else {
        return Err(ParseError::BareError {
            consumed: line_len,
            reply,
        });
    };
    Ok(Some((
        Request::CacheMemlimit {
            megabytes: u64::from(mb),
            reply,
        },
        line_len,
    )))
}

/// `shutdown [graceful]`: any other argument (or more of them) is `invalid shutdown mode`,
/// never suppressed.
///
/// Deviation: when shutdown is disabled (no `-A`) memcached answers
/// `ERROR: shutdown not enabled` even to a bad mode; the parser cannot know the setting.
pub(crate) fn shutdown<'a>(t: &Tokens<'a>, line_len: usize) -> Parsed<'a> {
    match t.ntokens() {
        2 => Ok(Some((Request::Shutdown { graceful: false }, line_len))),
        3 if t.get(1) == b"graceful" => Ok(Some((Request::Shutdown { graceful: true }, line_len))),
        _ => Err(client("invalid shutdown mode", line_len, Reply::Yes)),
    }
}

/// `stats [group ...]`: the group is the first argument (extra tokens are ignored for the
/// named groups, as in memcached); anything else is [`StatsGroup::Other`] with the raw
/// arguments, e.g. `detail on` or `cachedump 1 10`.
pub(crate) fn stats<'a>(t: &Tokens<'a>) -> Request<'a> {
    if t.ntokens() == 2 {
        return Request::Stats(StatsGroup::General);
    }
    let group = match t.get(1) {
        b"settings" => StatsGroup::Settings,
        b"items" => StatsGroup::Items,
        b"slabs" => StatsGroup::Slabs,
        b"sizes" => StatsGroup::Sizes,
        b"conns" => StatsGroup::Conns,
        b"reset" => StatsGroup::Reset,
        _ => {
            let raw = t.raw_from(1);
            let end = raw.iter().rposition(|b| *b != b' ').map_or(0, |i| i + 1);
            StatsGroup::Other(&raw[..end])
        }
    };
    Request::Stats(group)
}
