//! Hash commands, including Redis 7.4's per-field TTLs (HEXPIRE family).
//!
//! Reads skip fields whose TTL has passed; writes purge them first. An emptied hash is
//! removed (the store's [`Entry`](crate::store::Entry) does that when the edit ends).

use ferrocache_protocol::resp::{format_double, Encoder};

use super::error::RespError;
use super::{err, events, is, parse_f64, parse_i64, parse_scan, reply_store_error, Call, ScanArgs};
use crate::command::Flow;
use crate::glob;
use crate::store::{Field, HashObject, IfMissing, Object, StoreError};

fn live<'h>(hash: &'h HashObject, now_ms: u64) -> impl Iterator<Item = &'h Field> + 'h {
    hash.iter().filter(move |f| !f.is_expired(now_ms))
}

fn live_field<'h>(hash: &'h HashObject, name: &[u8], now_ms: u64) -> Option<&'h Field> {
    hash.get(name).filter(|f| !f.is_expired(now_ms))
}

/// Runs `read` on the hash at `key` (None if absent); WRONGTYPE is answered here.
fn read_hash(
    call: &Call<'_, '_>,
    enc: &mut Encoder<'_>,
    read: impl FnOnce(Option<&HashObject>, &mut Encoder<'_>),
) {
    let ctx = call.ctx;
    let hit = ctx.shared.store.get(
        call.arg(1),
        ctx.now_ms,
        call.read_options(),
        |view| match view {
            None => {
                read(None, enc);
                false
            }
            Some(item) => {
                match item.object() {
                    Some(Object::Hash(hash)) => read(Some(hash), enc),
                    _ => enc.error(err::WRONGTYPE),
                }
                true
            }
        },
    );
    super::strings::count_lookup(ctx, hit);
}

/// Runs `write` on the hash at `key` (created if `create`), after purging expired fields;
/// the change is named by the command's event.
fn write_hash<R>(
    call: &Call<'_, '_>,
    missing: IfMissing,
    write: impl FnOnce(Option<&mut HashObject>, u64) -> R,
) -> Result<R, StoreError> {
    write_hash_as(call, missing, events::of(call.arg(0)), write, |_| true)
}

/// [`write_hash`] naming the change `event`, or no event when `changed` says the result
/// changed nothing.
fn write_hash_as<R>(
    call: &Call<'_, '_>,
    missing: IfMissing,
    event: Option<&'static str>,
    write: impl FnOnce(Option<&mut HashObject>, u64) -> R,
    changed: impl FnOnce(&R) -> bool,
) -> Result<R, StoreError> {
    let now = call.ctx.now_ms;
    call.ctx.shared.store.edit(call.arg(1), now, |entry| {
        let hash = entry.hash_mut(missing)?;
        let result = match hash {
            Some(hash) => {
                hash.purge_expired(now);
                write(Some(hash), now)
            }
            None => write(None, now),
        };
        events::label_if(entry, event, changed(&result));
        Ok(result)
    })
}

/// HSET key field value [field value ...] / HMSET
pub fn hset(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.args.len() % 2 == 1 {
        return Err(format!(
            "ERR wrong number of arguments for '{}' command",
            call.name()
        )
        .into());
    }
    let legacy = is(call.arg(0), "HMSET");
    let pairs = &call.args[2..];
    match write_hash(call, IfMissing::Create, |hash, _| {
        let hash = hash.expect("created");
        pairs
            .chunks(2)
            .filter(|pair| hash.set(&pair[0], &pair[1], false))
            .count()
    }) {
        Ok(_) if legacy => enc.ok(),
        Ok(added) => enc.integer(added as i64),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// HSETNX key field value
pub fn hsetnx(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (field, value) = (call.arg(2).to_vec(), call.arg(3).to_vec());
    let write = |hash: Option<&mut HashObject>, _| {
        let hash = hash.expect("created");
        if hash.get(&field).is_some() {
            false
        } else {
            hash.set(&field, &value, false)
        }
    };
    match write_hash_as(call, IfMissing::Create, Some("hset"), write, |added| *added) {
        Ok(added) => enc.integer(i64::from(added)),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// HGET key field
pub fn hget(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let now = call.ctx.now_ms;
    let field = call.arg(2).to_vec();
    read_hash(call, enc, |hash, enc| {
        match hash.and_then(|h| live_field(h, &field, now)) {
            Some(f) => enc.bulk(&f.value),
            None => enc.null(),
        }
    });
    Ok(Flow::Continue)
}

/// HMGET key field [field ...]
pub fn hmget(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let now = call.ctx.now_ms;
    let fields = &call.args[2..];
    read_hash(call, enc, |hash, enc| {
        enc.array(fields.len());
        for name in fields {
            if enc.output_full() {
                break; // over the output limit: the connection closes
            }
            match hash.and_then(|h| live_field(h, name, now)) {
                Some(f) => enc.bulk(&f.value),
                None => enc.null(),
            }
        }
    });
    Ok(Flow::Continue)
}

/// HGETALL / HKEYS / HVALS key
pub fn hgetall(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let now = call.ctx.now_ms;
    let which = call.arg(0).to_ascii_uppercase();
    read_hash(call, enc, |hash, enc| {
        let fields: Vec<&Field> = hash.map(|h| live(h, now).collect()).unwrap_or_default();
        match which.as_slice() {
            b"HGETALL" => {
                enc.map(fields.len());
                for f in fields {
                    if enc.output_full() {
                        break; // over the output limit: the connection closes
                    }
                    enc.bulk(&f.name);
                    enc.bulk(&f.value);
                }
            }
            b"HKEYS" => {
                enc.array(fields.len());
                for f in fields {
                    if enc.output_full() {
                        break;
                    }
                    enc.bulk(&f.name);
                }
            }
            _ => {
                enc.array(fields.len());
                for f in fields {
                    if enc.output_full() {
                        break;
                    }
                    enc.bulk(&f.value);
                }
            }
        }
    });
    Ok(Flow::Continue)
}

/// HDEL key field [field ...]
pub fn hdel(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let fields = &call.args[2..];
    let write = |hash: Option<&mut HashObject>, _| {
        hash.map_or(0, |h| fields.iter().filter(|f| h.remove(f)).count())
    };
    match write_hash_as(call, IfMissing::Leave, Some("hdel"), write, |n| *n > 0) {
        Ok(n) => enc.integer(n as i64),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// HEXISTS key field
pub fn hexists(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let now = call.ctx.now_ms;
    let field = call.arg(2).to_vec();
    read_hash(call, enc, |hash, enc| {
        enc.integer(i64::from(
            hash.and_then(|h| live_field(h, &field, now)).is_some(),
        ))
    });
    Ok(Flow::Continue)
}

/// HLEN key
pub fn hlen(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let now = call.ctx.now_ms;
    read_hash(call, enc, |hash, enc| {
        enc.integer(hash.map_or(0, |h| live(h, now).count()) as i64)
    });
    Ok(Flow::Continue)
}

/// HSTRLEN key field
pub fn hstrlen(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let now = call.ctx.now_ms;
    let field = call.arg(2).to_vec();
    read_hash(call, enc, |hash, enc| {
        enc.integer(
            hash.and_then(|h| live_field(h, &field, now))
                .map_or(0, |f| f.value.len()) as i64,
        )
    });
    Ok(Flow::Continue)
}

/// HINCRBY key field delta
pub fn hincrby(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(delta) = parse_i64(call.arg(3)) else {
        return Err(err::NOT_INTEGER.into());
    };
    let field = call.arg(2).to_vec();
    let result = write_hash(call, IfMissing::Create, |hash, _| {
        let hash = hash.expect("created");
        let current = match hash.get(&field) {
            None => 0,
            Some(f) => parse_i64(&f.value).ok_or("ERR hash value is not an integer")?,
        };
        let next = current
            .checked_add(delta)
            .ok_or("ERR increment or decrement would overflow")?;
        hash.set(&field, next.to_string().as_bytes(), true);
        Ok(next)
    });
    match result {
        Ok(Ok(n)) => enc.integer(n),
        Ok(Err(message)) => enc.error(message),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// HINCRBYFLOAT key field delta
pub fn hincrbyfloat(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(delta) = parse_f64(call.arg(3)) else {
        return Err(err::NOT_FLOAT.into());
    };
    // Redis 7.0 refuses an infinite increment itself, before the key is touched (unlike
    // INCRBYFLOAT, which reports the result).
    if !delta.is_finite() {
        return Err("ERR value is NaN or Infinity".into());
    }
    let field = call.arg(2).to_vec();
    let result = write_hash(call, IfMissing::Create, |hash, _| {
        let hash = hash.expect("created");
        let current = match hash.get(&field) {
            None => 0.0,
            Some(f) => parse_f64(&f.value).ok_or("ERR hash value is not a float")?,
        };
        let next = current + delta;
        if !next.is_finite() {
            return Err("ERR increment would produce NaN or Infinity");
        }
        let text = format_double(next);
        hash.set(&field, text.as_bytes(), true);
        Ok(text)
    });
    match result {
        Ok(Ok(text)) => enc.bulk(text.as_bytes()),
        Ok(Err(message)) => enc.error(message),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// HSCAN key cursor [MATCH pattern] [COUNT n] [NOVALUES]
pub fn hscan(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ScanArgs {
        cursor,
        pattern,
        count,
        novalues,
        ..
    } = match parse_scan(call.args, 2, false, true) {
        Ok(scan) => scan,
        Err(message) => {
            return Err(message.into());
        }
    };
    let now = call.ctx.now_ms;
    read_hash(call, enc, |hash, enc| {
        let (fields, next) = match hash {
            // Small hashes come back whole, as Redis does for its compact encoding.
            Some(h) if h.encoding() == "listpack" => (h.iter().collect(), 0),
            Some(h) => h.scan(cursor as usize, count),
            None => (Vec::new(), 0),
        };
        let chosen: Vec<&Field> = fields
            .into_iter()
            .filter(|f| {
                !f.is_expired(now) && pattern.as_deref().is_none_or(|p| glob::matches(p, &f.name))
            })
            .collect();
        enc.array(2);
        enc.bulk(next.to_string().as_bytes());
        enc.array(if novalues {
            chosen.len()
        } else {
            chosen.len() * 2
        });
        for f in chosen {
            if enc.output_full() {
                break; // over the output limit: the connection closes
            }
            enc.bulk(&f.name);
            if !novalues {
                enc.bulk(&f.value);
            }
        }
    });
    Ok(Flow::Continue)
}

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (count, withvalues) = match super::random::parse_args(call, "WITHVALUES") {
        Ok(parsed) => parsed,
        Err(message) => {
            return Err(message.into());
        }
    };
    let now = call.ctx.now_ms;
    let output_limit = enc.output_limit;
    let mut flow = Ok(Flow::Continue);
    read_hash(call, enc, |hash, enc| {
        let fields: Vec<&Field> = hash.map(|h| live(h, now).collect()).unwrap_or_default();
        let Some(count) = count else {
            if fields.is_empty() {
                enc.null();
            } else {
                enc.bulk(&fields[super::random::random() as usize % fields.len()].name);
            }
            return;
        };
        let items = super::random::items_per_pick(enc, withvalues);
        if count >= 0 {
            let picks = super::random::distinct_positions(fields.len(), count.unsigned_abs());
            enc.array(picks.len() * items);
            for i in picks {
                write_pick(enc, fields[i], withvalues);
            }
            return;
        }
        if fields.is_empty() {
            enc.array(0);
            return;
        }
        flow = super::random::reply_repeated(
            enc,
            fields.len(),
            count.unsigned_abs(),
            items,
            output_limit,
            |enc, i| write_pick(enc, fields[i], withvalues),
        );
    });
    flow
}

/// One pick of HRANDFIELD: its name, and with WITHVALUES its value (a `[name, value]` pair in
/// RESP3).
fn write_pick(enc: &mut Encoder<'_>, field: &Field, withvalues: bool) {
    if withvalues && enc.is_resp3() {
        enc.array(2);
    }
    enc.bulk(&field.name);
    if withvalues {
        enc.bulk(&field.value);
    }
}

/// Parses `FIELDS numfields field ...` starting at `args[at]`.
fn fields_argument<'c>(call: &'c Call<'_, '_>, at: usize) -> Result<Vec<&'c [u8]>, &'static str> {
    if call.args.len() <= at || !is(call.arg(at), "FIELDS") {
        return Err("ERR Mandatory argument FIELDS is missing or not at the right position");
    }
    let count = call
        .args
        .get(at + 1)
        .and_then(|a| parse_i64(a))
        .ok_or(err::NOT_INTEGER)?;
    if count <= 0 {
        return Err("ERR Parameter `numFields` should be greater than 0");
    }
    let fields: Vec<&[u8]> = call.args[at + 2..].iter().map(|f| &f[..]).collect();
    if fields.len() != count as usize {
        return Err("ERR The `numfields` parameter must match the number of arguments");
    }
    Ok(fields)
}

/// HEXPIRE / HPEXPIRE / HEXPIREAT / HPEXPIREAT key time [NX|XX|GT|LT] FIELDS n field ...
pub fn hexpire(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let name = call.arg(0).to_ascii_uppercase();
    let Some(amount) = parse_i64(call.arg(2)) else {
        return Err(err::NOT_INTEGER.into());
    };
    let mut at = 3;
    let condition = call
        .args
        .get(3)
        .map(|a| a.to_ascii_uppercase())
        .filter(|a| matches!(a.as_slice(), b"NX" | b"XX" | b"GT" | b"LT"));
    if condition.is_some() {
        at = 4;
    }
    let fields = match fields_argument(call, at) {
        Ok(fields) => fields,
        Err(message) => {
            return Err(message.into());
        }
    };
    let now = call.ctx.now_ms as i64;
    let at_ms = match name.as_slice() {
        b"HEXPIRE" => amount.checked_mul(1000).and_then(|ms| ms.checked_add(now)),
        b"HPEXPIRE" => amount.checked_add(now),
        b"HEXPIREAT" => amount.checked_mul(1000),
        _ => Some(amount),
    };
    let Some(at_ms) = at_ms.filter(|_| amount >= 0) else {
        return Err(format!("ERR invalid expire time in '{}' command", call.name()).into());
    };
    let result = write_hash(call, IfMissing::Leave, |hash, now| {
        let mut codes = Vec::with_capacity(fields.len());
        let mut hash = hash;
        for field in &fields {
            let Some(hash) = hash.as_deref_mut() else {
                codes.push(-2);
                continue;
            };
            let Some(current) = hash.get(field).map(|f| f.expires_at_ms) else {
                codes.push(-2);
                continue;
            };
            let current_ms = if current == 0 {
                i64::MAX
            } else {
                current as i64
            };
            let refused = match condition.as_deref() {
                Some(b"NX") => current != 0,
                Some(b"XX") => current == 0,
                Some(b"GT") => at_ms <= current_ms,
                Some(b"LT") => at_ms >= current_ms,
                _ => false,
            };
            if refused {
                codes.push(0);
            } else if at_ms <= now as i64 {
                hash.remove(field);
                codes.push(2);
            } else {
                hash.set_field_expiry(field, at_ms as u64);
                codes.push(1);
            }
        }
        codes
    });
    match result {
        Ok(codes) => {
            enc.array(codes.len());
            for code in codes {
                enc.integer(code);
            }
        }
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// HTTL / HPTTL / HEXPIRETIME / HPEXPIRETIME key FIELDS n field ...
pub fn httl(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let name = call.arg(0).to_ascii_uppercase();
    let fields: Vec<Vec<u8>> = match fields_argument(call, 2) {
        Ok(fields) => fields.into_iter().map(<[u8]>::to_vec).collect(),
        Err(message) => {
            return Err(message.into());
        }
    };
    let now = call.ctx.now_ms;
    read_hash(call, enc, |hash, enc| {
        enc.array(fields.len());
        for field in &fields {
            let reply = match hash.and_then(|h| live_field(h, field, now)) {
                None => -2,
                Some(f) if f.expires_at_ms == 0 => -1,
                Some(f) => match name.as_slice() {
                    b"HTTL" => ((f.expires_at_ms - now + 500) / 1000) as i64,
                    b"HPTTL" => (f.expires_at_ms - now) as i64,
                    b"HEXPIRETIME" => (f.expires_at_ms / 1000) as i64,
                    _ => f.expires_at_ms as i64,
                },
            };
            enc.integer(reply);
        }
    });
    Ok(Flow::Continue)
}

/// HPERSIST key FIELDS n field ...
pub fn hpersist(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let fields: Vec<Vec<u8>> = match fields_argument(call, 2) {
        Ok(fields) => fields.into_iter().map(<[u8]>::to_vec).collect(),
        Err(message) => {
            return Err(message.into());
        }
    };
    let result = write_hash(call, IfMissing::Leave, |hash, _| {
        let mut hash = hash;
        let mut codes = Vec::with_capacity(fields.len());
        for field in &fields {
            let code = match hash.as_deref_mut() {
                None => -2,
                Some(h) => match h.get(field).map(|f| f.expires_at_ms) {
                    None => -2,
                    Some(0) => -1,
                    Some(_) => {
                        h.set_field_expiry(field, 0);
                        1
                    }
                },
            };
            codes.push(code);
        }
        codes
    });
    match result {
        Ok(codes) => {
            enc.array(codes.len());
            for code in codes {
                enc.integer(code);
            }
        }
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}
