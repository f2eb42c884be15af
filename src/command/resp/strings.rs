//! String commands: GET, SET and its options, counters, ranges, multi-key get/set.
//!
//! Strings are the same items memcached sees (flags 0 when written here), so a key set over
//! RESP reads back with memcached `get` and the other way round. Read-modify-write commands
//! run inside one [`Store::edit`](crate::store::Store::edit), so they are atomic per key.

use ferrocache_protocol::resp::{format_double, Encoder};

use super::error::RespError;
use super::{err, events, is, parse_f64, parse_i64, reply_store_error, Call};
use crate::command::Flow;
use crate::metrics::WorkerStats;
use crate::store::{Expiry, StoreError};

/// GET key
pub fn get(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ctx = call.ctx;
    let hit = ctx.shared.store.get(
        call.arg(1),
        ctx.now_ms,
        call.read_options(),
        |view| match view {
            None => {
                enc.null();
                false
            }
            Some(item) if item.object().is_some() => {
                enc.error(err::WRONGTYPE);
                true
            }
            Some(item) => {
                let value = item.value();
                if crate::zerocopy::wants(value.len()) {
                    // Sent from the segment while the socket drains (crate::zerocopy).
                    enc.bulk_header(value.len());
                    crate::zerocopy::defer(enc.out, item.pin_value(), value);
                    enc.out.extend_from_slice(b"\r\n");
                } else {
                    enc.bulk(value);
                }
                true
            }
        },
    );
    count_lookup(ctx, hit);
    Ok(Flow::Continue)
}

/// Counts a key lookup for INFO's keyspace_hits / keyspace_misses.
pub fn count_lookup(ctx: &crate::command::Context<'_>, hit: bool) {
    let stats = ctx.stats;
    WorkerStats::incr(if hit {
        &stats.keyspace_hits
    } else {
        &stats.keyspace_misses
    });
}

/// An expiry option parsed from SET/GETEX-style arguments.
#[derive(Clone, Copy)]
enum TtlOption {
    Keep,
    Persist,
    At(Expiry),
}

/// The one parser of SET's and GETEX's expiry options: tries `args[i]` as `EX s | PX ms |
/// EXAT s | PXAT ms` or as the command's word that stands alone (`KEEPTTL` for SET, `PERSIST`
/// for GETEX), accepting only one expiry option per command. Returns how many arguments it
/// took (0: not an expiry option here) or Redis's error line.
fn ttl_option(
    call: &Call<'_, '_>,
    i: usize,
    command: &str,
    alone: (&str, TtlOption),
    ttl: &mut Option<TtlOption>,
) -> Result<usize, String> {
    if ttl.is_some() {
        return Ok(0);
    }
    let arg = call.arg(i);
    if is(arg, alone.0) {
        *ttl = Some(alone.1);
        return Ok(1);
    }
    if !["EX", "PX", "EXAT", "PXAT"].iter().any(|w| is(arg, w)) || i + 1 >= call.args.len() {
        return Ok(0);
    }
    let value = parse_i64(call.arg(i + 1)).ok_or_else(|| err::NOT_INTEGER.to_string())?;
    let invalid = || format!("ERR invalid expire time in '{command}' command");
    if value <= 0 {
        return Err(invalid());
    }
    let now = call.ctx.now_ms as i64;
    let at = match arg.to_ascii_uppercase().as_slice() {
        b"EX" => value.checked_mul(1000).and_then(|ms| ms.checked_add(now)),
        b"PX" => value.checked_add(now),
        b"EXAT" => value.checked_mul(1000),
        _ => Some(value),
    };
    *ttl = Some(TtlOption::At(Expiry::AtMs(at.ok_or_else(invalid)? as u64)));
    Ok(2)
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]
pub fn set(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (mut nx, mut xx, mut get, mut ttl) = (false, false, false, None);
    let mut i = 3;
    while i < call.args.len() {
        let arg = call.arg(i);
        match ttl_option(call, i, "set", ("KEEPTTL", TtlOption::Keep), &mut ttl) {
            Ok(0) => {}
            Ok(taken) => {
                i += taken;
                continue;
            }
            Err(message) => {
                return Err(message.into());
            }
        }
        if is(arg, "NX") && !xx {
            nx = true;
        } else if is(arg, "XX") && !nx {
            xx = true;
        } else if is(arg, "GET") {
            get = true;
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 1;
    }
    let value = call.arg(2);
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let old = if get {
                match entry.string() {
                    Ok(old) => Some(old.map(<[u8]>::to_vec)),
                    Err(_) => return Err(StoreError::WrongType),
                }
            } else {
                None
            };
            if (nx && entry.exists()) || (xx && !entry.exists()) {
                return Ok((false, old));
            }
            let expiry = match ttl {
                Some(TtlOption::Keep) => entry.expiry().unwrap_or(Expiry::Never),
                Some(TtlOption::At(at)) => at,
                _ => Expiry::Never,
            };
            events::label(entry, call);
            if matches!(ttl, Some(TtlOption::At(_))) {
                entry.label("expire");
            }
            entry.put_string(value, 0, expiry)?;
            Ok((true, old))
        });
    match result {
        Err(outcome) => reply_store_error(enc, outcome),
        Ok((_, Some(old))) => match old {
            Some(old) => enc.bulk(&old),
            None => enc.null(),
        },
        Ok((true, None)) => enc.ok(),
        Ok((false, None)) => enc.null(),
    }
    Ok(Flow::Continue)
}

/// SETNX key value
pub fn setnx(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let value = call.arg(2);
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            if entry.exists() {
                return Ok(false);
            }
            events::label(entry, call);
            entry.put_string(value, 0, Expiry::Never).map(|_| true)
        });
    match result {
        Ok(stored) => enc.integer(i64::from(stored)),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// SETEX key seconds value / PSETEX key ms value
pub fn setex(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let millis = is(call.arg(0), "PSETEX");
    let Some(amount) = parse_i64(call.arg(2)) else {
        return Err(err::NOT_INTEGER.into());
    };
    let at = if millis {
        Some(amount)
    } else {
        amount.checked_mul(1000)
    }
    .and_then(|ms| ms.checked_add(call.ctx.now_ms as i64));
    let (Some(at), true) = (at, amount > 0) else {
        return Err(format!("ERR invalid expire time in '{}' command", call.name()).into());
    };
    let value = call.arg(3);
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            events::label(entry, call);
            entry.label("expire");
            entry.put_string(value, 0, Expiry::AtMs(at as u64))
        });
    match result {
        Ok(_) => enc.ok(),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// GETSET key value
pub fn getset(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let value = call.arg(2);
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let old = entry
                .string()
                .map_err(|_| StoreError::WrongType)?
                .map(<[u8]>::to_vec);
            events::label(entry, call);
            entry.put_string(value, 0, Expiry::Never)?;
            Ok(old)
        });
    match result {
        Ok(Some(old)) => enc.bulk(&old),
        Ok(None) => enc.null(),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// GETDEL key
pub fn getdel(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let old = entry
                .string()
                .map_err(|_| StoreError::WrongType)?
                .map(<[u8]>::to_vec);
            if old.is_some() {
                entry.remove();
            }
            Ok(old)
        });
    match result {
        Ok(Some(old)) => enc.bulk(&old),
        Ok(None) => enc.null(),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]
pub fn getex(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let mut ttl = None;
    let mut i = 2;
    while i < call.args.len() {
        match ttl_option(call, i, "getex", ("PERSIST", TtlOption::Persist), &mut ttl) {
            Ok(0) => {
                return Err(err::SYNTAX.into());
            }
            Ok(taken) => i += taken,
            Err(message) => {
                return Err(message.into());
            }
        }
    }
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let value = entry
                .string()
                .map_err(|_| StoreError::WrongType)?
                .map(<[u8]>::to_vec);
            if value.is_some() {
                match ttl {
                    Some(TtlOption::Persist) if entry.expiry() != Some(Expiry::Never) => {
                        entry.label("persist");
                        entry.set_expiry(Expiry::Never);
                    }
                    Some(TtlOption::At(at)) => {
                        entry.label("expire");
                        entry.set_expiry(at);
                    }
                    _ => {}
                }
            }
            Ok(value)
        });
    match result {
        Ok(Some(value)) => enc.bulk(&value),
        Ok(None) => enc.null(),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// MGET key [key ...]
pub fn mget(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ctx = call.ctx;
    enc.array(call.args.len() - 1);
    for key in &call.args[1..] {
        if enc.output_full() {
            break; // over the output limit: the connection closes, the rest is not built
        }
        let hit = ctx
            .shared
            .store
            .get(key, ctx.now_ms, call.read_options(), |view| match view {
                Some(item) if item.object().is_none() => {
                    enc.bulk(item.value());
                    true
                }
                _ => {
                    enc.null();
                    false
                }
            });
        count_lookup(ctx, hit);
    }
    Ok(Flow::Continue)
}

/// MSET key value [key value ...] (runs with every gate held, so it is atomic)
pub fn mset(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.args.len().is_multiple_of(2) {
        return Err(format!(
            "ERR wrong number of arguments for '{}' command",
            call.name()
        )
        .into());
    }
    let nx = is(call.arg(0), "MSETNX");
    let store = &call.ctx.shared.store;
    let now = call.ctx.now_ms;
    if nx
        && call.args[1..]
            .chunks(2)
            .any(|pair| store.peek(&pair[0], now, |entry| entry.exists()))
    {
        enc.integer(0);
        return Ok(Flow::Continue);
    }
    for pair in call.args[1..].chunks(2) {
        if let Err(outcome) = store.edit(&pair[0], now, |entry| {
            events::label(entry, call);
            entry.put_string(&pair[1], 0, Expiry::Never)
        }) {
            reply_store_error(enc, outcome);
            return Ok(Flow::Continue);
        }
    }
    if nx {
        enc.integer(1);
    } else {
        enc.ok();
    }
    Ok(Flow::Continue)
}

/// INCR, DECR, INCRBY, DECRBY
pub fn incr(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let name = call.arg(0).to_ascii_uppercase();
    let delta = match name.as_slice() {
        b"INCR" => Some(1),
        b"DECR" => Some(-1),
        b"INCRBY" => parse_i64(call.arg(2)),
        _ => parse_i64(call.arg(2)).and_then(i64::checked_neg),
    };
    let Some(delta) = delta else {
        return Err(err::NOT_INTEGER.into());
    };
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let current = match entry.string() {
                Err(_) => return Err(err::WRONGTYPE),
                Ok(None) => 0,
                Ok(Some(bytes)) => parse_i64(bytes).ok_or(err::NOT_INTEGER)?,
            };
            let next = current
                .checked_add(delta)
                .ok_or("ERR increment or decrement would overflow")?;
            let flags = entry.flags().unwrap_or(0);
            let expiry = entry.expiry().unwrap_or(Expiry::Never);
            events::label(entry, call);
            entry
                .put_string(next.to_string().as_bytes(), flags, expiry)
                .map_err(|_| err::OOM)?;
            Ok(next)
        });
    match result {
        Ok(n) => enc.integer(n),
        Err(message) => enc.error(message),
    }
    Ok(Flow::Continue)
}

/// INCRBYFLOAT key increment
pub fn incrbyfloat(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(delta) = parse_f64(call.arg(2)) else {
        return Err(err::NOT_FLOAT.into());
    };
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let current = match entry.string() {
                Err(_) => return Err(err::WRONGTYPE),
                Ok(None) => 0.0,
                Ok(Some(bytes)) => parse_f64(bytes).ok_or(err::NOT_FLOAT)?,
            };
            let next = current + delta;
            if !next.is_finite() {
                return Err("ERR increment would produce NaN or Infinity");
            }
            let text = format_double(next);
            let flags = entry.flags().unwrap_or(0);
            let expiry = entry.expiry().unwrap_or(Expiry::Never);
            events::label(entry, call);
            entry
                .put_string(text.as_bytes(), flags, expiry)
                .map_err(|_| err::OOM)?;
            Ok(text)
        });
    match result {
        Ok(text) => enc.bulk(text.as_bytes()),
        Err(message) => enc.error(message),
    }
    Ok(Flow::Continue)
}

/// APPEND key value
pub fn append(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let tail = call.arg(2);
    let limit = call.ctx.shared.clients.proto_max_bulk_len();
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let mut value = entry
                .string()
                .map_err(|_| StoreError::WrongType)?
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            if value.len() + tail.len() > limit {
                return Err(StoreError::TooLarge);
            }
            value.extend_from_slice(tail);
            let flags = entry.flags().unwrap_or(0);
            let expiry = entry.expiry().unwrap_or(Expiry::Never);
            events::label(entry, call);
            entry.put_string(&value, flags, expiry)?;
            Ok(value.len())
        });
    match result {
        Ok(len) => enc.integer(len as i64),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// STRLEN key
pub fn strlen(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ctx = call.ctx;
    ctx.shared.store.get(
        call.arg(1),
        ctx.now_ms,
        call.read_options(),
        |view| match view {
            None => enc.integer(0),
            Some(item) if item.object().is_some() => enc.error(err::WRONGTYPE),
            Some(item) => enc.integer(item.value().len() as i64),
        },
    );
    Ok(Flow::Continue)
}

/// GETRANGE key start end (and its old name SUBSTR)
pub fn getrange(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (Some(start), Some(end)) = (parse_i64(call.arg(2)), parse_i64(call.arg(3))) else {
        return Err(err::NOT_INTEGER.into());
    };
    let ctx = call.ctx;
    ctx.shared.store.get(
        call.arg(1),
        ctx.now_ms,
        call.read_options(),
        |view| match view {
            None => enc.bulk(b""),
            Some(item) if item.object().is_some() => enc.error(err::WRONGTYPE),
            Some(item) => {
                let value = item.value();
                let len = value.len() as i64;
                if start < 0 && end < 0 && start > end {
                    enc.bulk(b"");
                    return;
                }
                // Redis's getrangeCommand: negative offsets count from the end, then both
                // are clamped into the string.
                let from = if start < 0 { len + start } else { start }.max(0);
                let to = if end < 0 { len + end } else { end }.clamp(0, (len - 1).max(0));
                if len == 0 || from > to || from >= len {
                    enc.bulk(b"");
                } else {
                    enc.bulk(&value[from as usize..=to as usize]);
                }
            }
        },
    );
    Ok(Flow::Continue)
}

/// SETRANGE key offset value
pub fn setrange(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(offset) = parse_i64(call.arg(2)) else {
        return Err(err::NOT_INTEGER.into());
    };
    if offset < 0 {
        return Err("ERR offset is out of range".into());
    }
    let patch = call.arg(3);
    let limit = call.ctx.shared.clients.proto_max_bulk_len() as u64;
    let store_limit = call.ctx.shared.store.memory_limit();
    let result = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let current = entry.string().map_err(|_| StoreError::WrongType)?;
            if patch.is_empty() {
                return Ok(current.map_or(0, <[u8]>::len));
            }
            if offset as u64 + patch.len() as u64 > limit {
                return Err(StoreError::TooLarge);
            }
            // Refused before the zero-filled value is built, not after.
            if offset as usize + patch.len() > store_limit {
                return Err(StoreError::OutOfMemory);
            }
            let mut value = current.map(<[u8]>::to_vec).unwrap_or_default();
            let end = offset as usize + patch.len();
            if value.len() < end {
                value.resize(end, 0);
            }
            value[offset as usize..end].copy_from_slice(patch);
            let flags = entry.flags().unwrap_or(0);
            let expiry = entry.expiry().unwrap_or(Expiry::Never);
            events::label(entry, call);
            entry.put_string(&value, flags, expiry)?;
            Ok(value.len())
        });
    match result {
        Ok(len) => enc.integer(len as i64),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}
