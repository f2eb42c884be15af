//! Key commands: existence, deletion, TTLs, renaming, type, iteration, flushing.
//!
//! TTL replies follow Redis: -2 for a missing key, -1 for a key without expiry. SCAN cursors
//! come from the store ([`Store::scan`](crate::store::Store::scan)): every key present for a
//! whole scan is returned at least once, whatever is written meanwhile.

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::{err, is, parse_i64, parse_scan, Call, ScanArgs};
use crate::command::Flow;
use crate::glob;
use crate::store::{Expiry, Mutation, Object, ReadOptions, Recency};

/// DEL key [key ...] / UNLINK
pub fn del(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let store = &call.ctx.shared.store;
    let removed = call.args[1..]
        .iter()
        .filter(|key| store.edit(key, call.ctx.now_ms, |e| e.remove()))
        .count();
    enc.integer(removed as i64);
    Ok(Flow::Continue)
}

/// EXISTS key [key ...] (a key named twice counts twice)
pub fn exists(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let store = &call.ctx.shared.store;
    let found = call.args[1..]
        .iter()
        .filter(|key| store.peek(key, call.ctx.now_ms, |e| e.exists()))
        .count();
    enc.integer(found as i64);
    Ok(Flow::Continue)
}

/// TOUCH key [key ...]: counts existing keys and marks them used.
pub fn touch(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ctx = call.ctx;
    let found = call.args[1..]
        .iter()
        .filter(|key| {
            ctx.shared
                .store
                .get(key, ctx.now_ms, ReadOptions::plain(), |v| v.is_some())
        })
        .count();
    enc.integer(found as i64);
    Ok(Flow::Continue)
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX|XX|GT|LT]
pub fn expire(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let name = call.arg(0).to_ascii_uppercase();
    let Some(amount) = parse_i64(call.arg(2)) else {
        return Err(err::NOT_INTEGER.into());
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for arg in &call.args[3..] {
        match arg.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Err(
                    format!("ERR Unsupported option {}", String::from_utf8_lossy(arg)).into(),
                );
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if gt && lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    let now = call.ctx.now_ms as i64;
    let at_ms = match name.as_slice() {
        b"EXPIRE" => amount.checked_mul(1000).and_then(|ms| ms.checked_add(now)),
        b"PEXPIRE" => amount.checked_add(now),
        b"EXPIREAT" => amount.checked_mul(1000),
        _ => Some(amount),
    };
    let Some(at_ms) = at_ms else {
        return Err(format!("ERR invalid expire time in '{}' command", call.name()).into());
    };
    let changed = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| {
            let Some(current) = entry.expiry() else {
                return false;
            };
            // Redis compares with "no expiry" as an infinite TTL.
            let current_ms = match current {
                Expiry::Never => i64::MAX,
                Expiry::AtMs(at) => at as i64,
            };
            let has_ttl = current != Expiry::Never;
            if (nx && has_ttl)
                || (xx && !has_ttl)
                || (gt && at_ms <= current_ms)
                || (lt && at_ms >= current_ms)
            {
                return false;
            }
            // A time already past deletes the key: Redis then tells only `del`.
            if at_ms <= now {
                entry.remove();
            } else {
                entry.label("expire");
                entry.set_expiry(Expiry::AtMs(at_ms as u64));
            }
            true
        });
    enc.integer(i64::from(changed));
    Ok(Flow::Continue)
}

/// TTL / PTTL / EXPIRETIME / PEXPIRETIME key
pub fn ttl(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let name = call.arg(0).to_ascii_uppercase();
    let now = call.ctx.now_ms;
    let expiry = call
        .ctx
        .shared
        .store
        .peek(call.arg(1), now, |entry| entry.expiry());
    let reply = match expiry {
        None => -2,
        Some(Expiry::Never) => -1,
        Some(Expiry::AtMs(at)) => match name.as_slice() {
            b"TTL" => ((at.saturating_sub(now) + 500) / 1000) as i64,
            b"PTTL" => at.saturating_sub(now) as i64,
            b"EXPIRETIME" => (at / 1000) as i64,
            _ => at as i64,
        },
    };
    enc.integer(reply);
    Ok(Flow::Continue)
}

/// PERSIST key
pub fn persist(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let changed = call
        .ctx
        .shared
        .store
        .edit(call.arg(1), call.ctx.now_ms, |entry| match entry.expiry() {
            Some(Expiry::AtMs(_)) => {
                entry.label("persist");
                entry.set_expiry(Expiry::Never)
            }
            _ => false,
        });
    enc.integer(i64::from(changed));
    Ok(Flow::Continue)
}

/// The Redis type name of what an entry holds.
fn type_name(object: Option<&Object>) -> &'static str {
    match object {
        None => "string",
        Some(Object::Hash(_)) => "hash",
        Some(Object::ZSet(_)) => "zset",
        Some(Object::List(_)) => "list",
        Some(Object::Set(_)) => "set",
        Some(Object::Stream(_)) => "stream",
    }
}

/// TYPE key
pub fn type_of(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ctx = call.ctx;
    let options = ReadOptions {
        recency: Recency::Keep,
        ..ReadOptions::default()
    };
    let name = ctx
        .shared
        .store
        .get(call.arg(1), ctx.now_ms, options, |view| {
            view.map_or("none", |item| type_name(item.object()))
        });
    enc.simple(name);
    Ok(Flow::Continue)
}

/// RENAME's reply when the source key is missing.
const NO_SUCH_KEY: &str = "ERR no such key";

/// RENAME / RENAMENX source destination (runs with every gate held)
///
/// The gates keep other commands out, not the store's own removals: the maintenance
/// thread's sweep, a due delayed flush or eviction may drop the source between two store
/// calls. So the first look at the source only orders the errors as Redis does ("no such
/// key" before RENAMENX's 0), and the rename happens at the `take`, which finds and removes
/// the source under one shard lock; a source gone by then is "no such key", as if it had
/// gone before the command.
pub fn rename(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let nx = is(call.arg(0), "RENAMENX");
    let store = &call.ctx.shared.store;
    let now = call.ctx.now_ms;
    let (from, to) = (call.arg(1), call.arg(2));
    if !store.peek(from, now, |e| e.exists()) {
        return Err(NO_SUCH_KEY.into());
    }
    if from == to {
        if nx {
            enc.integer(0);
        } else {
            enc.ok();
        }
        return Ok(Flow::Continue);
    }
    if nx && store.peek(to, now, |e| e.exists()) {
        enc.integer(0);
        return Ok(Flow::Continue);
    }
    let Some(moved) = store.edit(from, now, |e| {
        e.label("rename_from");
        e.take()
    }) else {
        return Err(NO_SUCH_KEY.into());
    };
    let put = store.edit(to, now, |e| {
        e.label("rename_to");
        e.put_moved(moved)
    });
    if put.is_err() {
        return Err(err::OOM.into());
    }
    // A stream arriving under a key may feed (or, lacking their group, fail) its readers.
    let to = to.to_vec();
    super::stream_read::stream_ready(call, &to);
    if nx {
        enc.integer(1);
    } else {
        enc.ok();
    }
    Ok(Flow::Continue)
}

/// COPY's reply when source and destination are one key.
const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// COPY source destination [DB destination-db] [REPLACE] (runs with every gate held)
///
/// Only database 0 exists: any other DB index is "out of range", as Redis answers for a
/// database it does not have. The copy is taken under the source's shard lock and written in
/// one edit of the destination (one effect for it, replacing what was there with REPLACE).
/// A source dropped by the store between the two (expiry, eviction) copies nothing: 0.
pub fn copy(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let mut replace = false;
    let mut i = 3;
    while i < call.args.len() {
        if is(call.arg(i), "REPLACE") {
            replace = true;
        } else if is(call.arg(i), "DB") && i + 1 < call.args.len() {
            let refusal = match parse_i64(call.arg(i + 1)) {
                Some(0) => None,
                Some(n) if i32::try_from(n).is_err() => {
                    Some("ERR value is out of range, value must between -2147483648 and 2147483647")
                }
                Some(_) => Some("ERR DB index is out of range"),
                None => Some(err::NOT_INTEGER),
            };
            if let Some(message) = refusal {
                return Err(message.into());
            }
            i += 1;
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 1;
    }
    let (source, destination) = (call.arg(1), call.arg(2));
    if source == destination {
        return Err(SAME_OBJECT.into());
    }
    let store = &call.ctx.shared.store;
    let now = call.ctx.now_ms;
    let Some(copied) = store.peek(source, now, |e| e.copy_out()) else {
        enc.integer(0);
        return Ok(Flow::Continue);
    };
    let written = store.edit(destination, now, |e| {
        if e.exists() && !replace {
            return Ok(false);
        }
        e.label("copy_to");
        e.put_moved(copied).map(|()| true)
    });
    match written {
        Ok(true) => {
            enc.integer(1);
            super::blocking::signal_ready(call, destination);
        }
        Ok(false) => enc.integer(0),
        Err(error) => super::reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// MEMORY USAGE key [SAMPLES count]: the bytes the key is charged (item header, key, and
/// its string or typed value, as `-m` counts them), nil when it is absent. The only MEMORY
/// subcommand.
pub fn memory(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if !is(call.arg(1), "USAGE") {
        return Err(format!(
            "ERR unknown subcommand '{}'. Try MEMORY HELP.",
            String::from_utf8_lossy(call.arg(1))
        )
        .into());
    }
    if call.args.len() < 3 {
        return Err("ERR wrong number of arguments for 'memory|usage' command".into());
    }
    match &call.args[3..] {
        [] => {}
        [word, count] if is(word, "SAMPLES") => {
            if parse_i64(count).is_none() {
                return Err(err::NOT_INTEGER.into());
            }
        }
        _ => {
            return Err(err::SYNTAX.into());
        }
    }
    let ctx = call.ctx;
    let usage = ctx.shared.store.peek(call.arg(2), ctx.now_ms, |entry| {
        let view = entry.view()?;
        let value = view.object().map_or(view.value().len(), Object::bytes);
        Some(crate::store::ITEM_OVERHEAD + view.key().len() + value)
    });
    match usage {
        Some(bytes) => enc.integer(bytes as i64),
        None => enc.null(),
    }
    Ok(Flow::Continue)
}

/// KEYS pattern
pub fn keys(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let pattern = call.arg(1);
    let start = enc.out.len();
    let mut found = 0;
    let mut cursor = 0;
    loop {
        cursor = call
            .ctx
            .shared
            .store
            .scan(cursor, 1024, call.ctx.now_ms, |item| {
                // Past the output limit the connection closes: stop building the reply.
                if !enc.output_full() && glob::matches(pattern, item.key()) {
                    enc.bulk(item.key());
                    found += 1;
                }
            });
        if cursor == 0 || enc.output_full() {
            break;
        }
    }
    put_header_before(enc, start, |header| header.array(found));
    Ok(Flow::Continue)
}

/// Writes a reply's head (an array header, a cursor) in front of the parts already written
/// from `start` on. The parts go straight into the output as the store yields them (no copy
/// of every key first); their count is known only at the end, so the head is inserted then:
/// one move of the reply, once.
fn put_header_before(enc: &mut Encoder<'_>, start: usize, head: impl FnOnce(&mut Encoder<'_>)) {
    let mut header = Vec::new();
    head(&mut Encoder::new(&mut header, enc.version));
    enc.out.splice(start..start, header);
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]
pub fn scan(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ScanArgs {
        cursor,
        pattern,
        count,
        kind,
        ..
    } = match parse_scan(call.args, 1, true, false) {
        Ok(scan) => scan,
        Err(message) => {
            return Err(message.into());
        }
    };
    let start = enc.out.len();
    let mut found = 0;
    let next = call
        .ctx
        .shared
        .store
        .scan(cursor, count, call.ctx.now_ms, |item| {
            if enc.output_full() {
                return; // a huge COUNT: the connection closes over its output limit
            }
            let pattern_ok = pattern
                .as_deref()
                .is_none_or(|p| glob::matches(p, item.key()));
            let type_ok = kind
                .as_deref()
                .is_none_or(|k| k == type_name(item.object()));
            if pattern_ok && type_ok {
                enc.bulk(item.key());
                found += 1;
            }
        });
    put_header_before(enc, start, |header| {
        header.array(2);
        header.bulk(next.to_string().as_bytes());
        header.array(found);
    });
    Ok(Flow::Continue)
}

/// RANDOMKEY
pub fn randomkey(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    // A new draw per call: calls within one millisecond (a pipeline) need not agree.
    let seed = super::random::random();
    match call.ctx.shared.store.random_key(seed, call.ctx.now_ms) {
        Some(key) => enc.bulk(&key),
        None => enc.null(),
    }
    Ok(Flow::Continue)
}

/// DBSIZE
pub fn dbsize(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    enc.integer(call.ctx.shared.store.stats().curr_items as i64);
    Ok(Flow::Continue)
}

/// FLUSHDB / FLUSHALL [ASYNC|SYNC]
pub fn flushall(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if let Some(mode) = call.args.get(1) {
        if !(is(mode, "ASYNC") || is(mode, "SYNC")) || call.args.len() > 2 {
            return Err(err::SYNTAX.into());
        }
    }
    call.ctx
        .shared
        .store
        .apply(Mutation::FlushAll { at_ms: None }, call.ctx.now_ms);
    enc.ok();
    Ok(Flow::Continue)
}

/// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT|HELP key
pub fn object(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let sub = call.arg(1).to_ascii_uppercase();
    if sub == b"HELP" {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Print this help.",
        ];
        super::reply_help(enc, &lines);
        return Ok(Flow::Continue);
    }
    if call.args.len() != 3
        || !matches!(
            sub.as_slice(),
            b"ENCODING" | b"FREQ" | b"IDLETIME" | b"REFCOUNT"
        )
    {
        return Err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(call.arg(1))
        )
        .into());
    }
    let ctx = call.ctx;
    let options = ReadOptions {
        recency: Recency::Keep,
        ..ReadOptions::default()
    };
    let lfu = matches!(
        ctx.shared.store.eviction_policy(),
        crate::store::EvictionPolicy::AllKeysLfu | crate::store::EvictionPolicy::VolatileLfu
    );
    ctx.shared.store.get(call.arg(2), ctx.now_ms, options, |view| {
        let Some(item) = view else {
            enc.null();
            return;
        };
        match sub.as_slice() {
            b"ENCODING" => match item.object() {
                Some(Object::Hash(hash)) => enc.bulk(hash.encoding().as_bytes()),
                Some(Object::ZSet(zset)) => enc.bulk(zset.encoding().as_bytes()),
                Some(Object::List(list)) => enc.bulk(list.encoding().as_bytes()),
                Some(Object::Set(set)) => enc.bulk(set.encoding().as_bytes()),
                Some(Object::Stream(_)) => enc.bulk(b"stream"),
                None => {
                    let value = item.value();
                    let encoding: &[u8] = if value.len() <= 20 && super::parse_i64(value).is_some() {
                        b"int"
                    } else if value.len() <= 44 {
                        b"embstr"
                    } else {
                        b"raw"
                    };
                    enc.bulk(encoding);
                }
            },
            b"FREQ" if lfu => enc.integer(i64::from(item.frequency())),
            b"FREQ" => enc.error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that \
                 when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
            b"IDLETIME" if lfu => enc.error(
                "ERR An LRU maxmemory policy is not selected, access time not tracked. Please note that \
                 when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
            b"IDLETIME" => enc.integer(item.idle_secs() as i64),
            _ => enc.integer(1),
        }
    });
    Ok(Flow::Continue)
}
