//! memcached meta commands (`mg`, `ms`, `md`, `ma`, `me`; `doc/protocol.txt` §Meta Commands).
//!
//! Return flags are echoed in the order the client sent them; after them come `Z` (a win token
//! was already handed out), `X` (stale) and `W` (this client won the recache), as memcached
//! 1.6 writes them. In quiet mode `mg` hides only `EN`, `ms`/`md` hide only `HD`, and `ma`
//! hides its success reply; failures are always answered.

use ferrocache_protocol::memcache::{
    reply, write_data_block, ArithDirection, MetaKeyed, MetaLine, MetaMode, MetaStatus, MAX_KEY_LEN,
};

use super::kv::{self, ArithOutcome};
use super::{memcached_expiry, Context, Flow};
use crate::metrics::WorkerStats;
use crate::store::{Delete, Expiry, Outcome, ReadOptions, Recency, StaleCas, Write, WriteMode};
use crate::zerocopy;

/// `mg`: read an item and return what the flags ask for.
pub fn get(meta: &MetaKeyed<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) -> Flow {
    let stats = ctx.stats;
    WorkerStats::incr(&stats.cmd_meta);
    WorkerStats::incr(&stats.cmd_get);
    let flags = &meta.flags;
    let mut scratch = [0u8; MAX_KEY_LEN];
    let key = meta.decode_key(&mut scratch);
    let options = ReadOptions {
        recency: if flags.no_lru_bump {
            Recency::Keep
        } else {
            Recency::Bump
        },
        touch: flags.ttl.map(|t| memcached_expiry(t.0, ctx.now_ms)),
        vivify: flags.vivify_ttl.map(|t| memcached_expiry(t.0, ctx.now_ms)),
        recache_below_secs: flags.recache_ttl,
        claim_win: true,
    };
    if options.touch.is_some() {
        WorkerStats::incr(&stats.cmd_touch);
    }
    let hit = ctx.shared.store.get(key, ctx.now_ms, options, |view| {
        let Some(item) = view else {
            if !flags.quiet {
                let mut line = MetaLine::status(out, MetaStatus::Miss);
                echo_identity(meta, &mut line);
                line.finish();
            }
            return false;
        };
        let value = item.value();
        let mut line = if flags.return_value {
            MetaLine::value(out, value.len())
        } else {
            MetaLine::status(out, MetaStatus::Done)
        };
        for flag in flags.in_order() {
            match flag.letter {
                b'c' => {
                    line.flag_u64(b'c', item.cas());
                }
                b'f' => {
                    line.flag_u64(b'f', u64::from(item.flags()));
                }
                b'h' => {
                    line.flag_u64(b'h', u64::from(item.fetched_before()));
                }
                b'l' => {
                    line.flag_u64(b'l', item.idle_secs());
                }
                b's' => {
                    line.flag_u64(b's', value.len() as u64);
                }
                b't' => {
                    line.flag_i64(b't', item.ttl_secs().unwrap_or(-1));
                }
                b'k' | b'O' => echo_one(meta, flag.letter, &mut line),
                _ => {}
            }
        }
        if item.win_already_sent() {
            line.flag(b'Z');
        }
        if item.is_stale() {
            line.flag(b'X');
        }
        if item.won() {
            line.flag(b'W');
        }
        line.finish();
        if flags.return_value && zerocopy::wants(value.len()) {
            // Sent from the segment while the socket drains (crate::zerocopy).
            zerocopy::defer(out, item.pin_value(), value);
            out.extend_from_slice(b"\r\n");
        } else if flags.return_value {
            write_data_block(out, value);
        }
        true
    });
    WorkerStats::incr(if hit {
        &stats.get_hits
    } else {
        &stats.get_misses
    });
    Flow::Continue
}

/// `ms`: store a value with the mode, cas and invalidation the flags ask for.
pub fn set(meta: &MetaKeyed<'_>, value: &[u8], ctx: &Context<'_>, out: &mut Vec<u8>) -> Flow {
    let stats = ctx.stats;
    WorkerStats::incr(&stats.cmd_meta);
    let flags = &meta.flags;
    let mut scratch = [0u8; MAX_KEY_LEN];
    let key = meta.decode_key(&mut scratch);
    let mode = match flags.mode {
        Some(MetaMode::Add) => WriteMode::Add,
        Some(MetaMode::Replace) => WriteMode::Replace,
        Some(MetaMode::Append) => WriteMode::Append,
        Some(MetaMode::Prepend) => WriteMode::Prepend,
        _ => WriteMode::Set,
    };
    let write = Write {
        key,
        value,
        flags: flags.client_flags.unwrap_or(0),
        expiry: flags
            .ttl
            .map_or(Expiry::Never, |t| memcached_expiry(t.0, ctx.now_ms)),
        mode,
        compare_cas: flags.compare_cas,
        new_cas: flags.new_cas,
        stale_cas: if flags.invalidate {
            StaleCas::Invalidate
        } else {
            StaleCas::Refuse
        },
    };
    let (status, cas) = match kv::write(ctx, write) {
        Outcome::Stored { cas } => (MetaStatus::Done, Some(cas)),
        Outcome::Exists => (MetaStatus::Exists, None),
        Outcome::NotFound => (MetaStatus::NotFound, None),
        Outcome::OutOfMemory => {
            out.extend_from_slice(reply::OUT_OF_MEMORY);
            return Flow::Continue;
        }
        _ => (MetaStatus::NotStored, None),
    };
    if flags.quiet && status == MetaStatus::Done {
        return Flow::Continue;
    }
    let mut line = MetaLine::status(out, status);
    for flag in flags.in_order() {
        match (flag.letter, cas) {
            // memcached reports c0 when nothing was stored (NS, EX, NF).
            (b'c', cas) => {
                line.flag_u64(b'c', cas.unwrap_or(0));
            }
            (b'k' | b'O', _) => echo_one(meta, flag.letter, &mut line),
            _ => {}
        }
    }
    line.finish();
    Flow::Continue
}

/// `md`: delete, or with `I` mark stale.
pub fn delete(meta: &MetaKeyed<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) -> Flow {
    let stats = ctx.stats;
    WorkerStats::incr(&stats.cmd_meta);
    let flags = &meta.flags;
    let mut scratch = [0u8; MAX_KEY_LEN];
    let key = meta.decode_key(&mut scratch);
    let delete = Delete {
        key,
        compare_cas: flags.compare_cas,
        new_cas: flags.new_cas,
        invalidate: flags
            .invalidate
            .then(|| flags.ttl.map(|t| memcached_expiry(t.0, ctx.now_ms))),
    };
    let status = match kv::delete_with(ctx, delete) {
        Outcome::Deleted => MetaStatus::Done,
        Outcome::Exists => {
            // memcached 1.6 counts a meta delete refused for its cas as a miss.
            WorkerStats::incr(&stats.delete_misses);
            MetaStatus::Exists
        }
        _ => MetaStatus::NotFound,
    };
    if flags.quiet && status == MetaStatus::Done {
        return Flow::Continue;
    }
    let mut line = MetaLine::status(out, status);
    echo_identity(meta, &mut line);
    line.finish();
    Flow::Continue
}

/// `ma`: increment or decrement, optionally creating the counter.
pub fn arith(meta: &MetaKeyed<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) -> Flow {
    let stats = ctx.stats;
    WorkerStats::incr(&stats.cmd_meta);
    let flags = &meta.flags;
    let mut scratch = [0u8; MAX_KEY_LEN];
    let key = meta.decode_key(&mut scratch);
    let direction = if flags.mode == Some(MetaMode::Decr) {
        ArithDirection::Decr
    } else {
        ArithDirection::Incr
    };
    let arith = kv::Arith {
        key,
        direction,
        delta: flags.delta.unwrap_or(1),
        compare_cas: flags.compare_cas,
        new_cas: flags.new_cas,
        vivify: flags.vivify_ttl.map(|t| {
            (
                flags.initial.unwrap_or(0),
                memcached_expiry(t.0, ctx.now_ms),
            )
        }),
        expiry: flags.ttl.map(|t| memcached_expiry(t.0, ctx.now_ms)),
    };
    match kv::arith_with(ctx, arith) {
        ArithOutcome::Counter { value, cas, expiry } => {
            if flags.quiet {
                return Flow::Continue;
            }
            let mut digits = Vec::with_capacity(20);
            ferrocache_protocol::memcache::write_u64(&mut digits, value);
            let mut line = if flags.return_value {
                MetaLine::value(out, digits.len())
            } else {
                MetaLine::status(out, MetaStatus::Done)
            };
            for flag in flags.in_order() {
                match flag.letter {
                    b'c' => {
                        line.flag_u64(b'c', cas);
                    }
                    b't' => {
                        let ttl = match expiry {
                            Expiry::Never => -1,
                            Expiry::AtMs(at) => (at.saturating_sub(ctx.now_ms) as i64 + 999) / 1000,
                        };
                        line.flag_i64(b't', ttl);
                    }
                    b'k' | b'O' => echo_one(meta, flag.letter, &mut line),
                    _ => {}
                }
            }
            line.finish();
            if flags.return_value {
                write_data_block(out, &digits);
            }
        }
        ArithOutcome::NotNumeric => out.extend_from_slice(reply::NON_NUMERIC),
        ArithOutcome::Failed(outcome) => {
            let status = match outcome {
                Outcome::Exists => MetaStatus::Exists,
                Outcome::OutOfMemory | Outcome::NotStored => MetaStatus::NotStored,
                _ => MetaStatus::NotFound,
            };
            let mut line = MetaLine::status(out, status);
            echo_identity(meta, &mut line);
            line.finish();
        }
    }
    Flow::Continue
}

/// `me`: memcached's debug line for one item.
pub fn debug(meta: &MetaKeyed<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) -> Flow {
    WorkerStats::incr(&ctx.stats.cmd_meta);
    let mut scratch = [0u8; MAX_KEY_LEN];
    let key = meta.decode_key(&mut scratch);
    let options = ReadOptions {
        recency: Recency::Keep,
        ..ReadOptions::default()
    };
    ctx.shared
        .store
        .get(key, ctx.now_ms, options, |view| match view {
            None => out.extend_from_slice(reply::META_MISS),
            Some(item) => {
                out.extend_from_slice(b"ME ");
                out.extend_from_slice(meta.key);
                out.extend_from_slice(b" exp=");
                ferrocache_protocol::memcache::write_i64(out, item.ttl_secs().unwrap_or(-1));
                out.extend_from_slice(b" la=");
                ferrocache_protocol::memcache::write_u64(out, item.idle_secs());
                out.extend_from_slice(b" cas=");
                ferrocache_protocol::memcache::write_u64(out, item.cas());
                out.extend_from_slice(if item.fetched_before() {
                    b" fetch=yes"
                } else {
                    b" fetch=no"
                });
                // One pseudo slab class: this store has no slab classes.
                out.extend_from_slice(b" cls=1 size=");
                let size = item.key().len() + item.value().len() + crate::store::ITEM_OVERHEAD;
                ferrocache_protocol::memcache::write_u64(out, size as u64);
                out.extend_from_slice(b"\r\n");
            }
        });
    Flow::Continue
}

/// Echoes `k` (with ` b` for a base64 key) and `O` in request order, as every status does.
fn echo_identity(meta: &MetaKeyed<'_>, line: &mut MetaLine<'_>) {
    for flag in meta.flags.in_order() {
        if matches!(flag.letter, b'k' | b'O') {
            echo_one(meta, flag.letter, line);
        }
    }
}

fn echo_one(meta: &MetaKeyed<'_>, letter: u8, line: &mut MetaLine<'_>) {
    match letter {
        b'k' => {
            line.flag_bytes(b'k', meta.key);
            if meta.flags.base64_key {
                line.flag(b'b');
            }
        }
        b'O' => {
            if let Some(opaque) = meta.flags.opaque {
                line.flag_bytes(b'O', opaque);
            }
        }
        _ => {}
    }
}
