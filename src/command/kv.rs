//! The memcached key-value commands, once for every memcached dialect.
//!
//! Text (`memcache.rs`) and binary (`binary.rs`) decode to the same arguments and call these
//! functions; each maps the returned [`Outcome`] to its own words. This module owns the store
//! call and the `stats` counters of each command, so a counter means the same whichever
//! protocol moved it. It never writes a reply: that is the dialect's job.

use ferrocache_protocol::memcache::{ArithDirection, Exptime, StoreMode};

use super::{memcached_expiry, Context};
use crate::metrics::WorkerStats;
use crate::store::{
    Arith, Delete, Expiry, ItemView, Mutation, Outcome, ReadOptions, Write, WriteMode,
};

/// A storage command's arguments (text `set`…`cas`, binary Set…PrependQ).
#[derive(Debug, Clone, Copy)]
pub struct StoreArgs<'a> {
    pub mode: StoreMode,
    pub key: &'a [u8],
    pub flags: u32,
    pub exptime: Exptime,
    pub value: &'a [u8],
    /// Store only if the item still has this cas unique (text `cas`, binary header cas).
    pub cas_unique: Option<u64>,
}

/// Reads one key for a get (`touch: None`) or a get-and-touch, counting it as memcached does:
/// `cmd_get` per key, `cmd_touch` too when touching, then the hit or miss counter of the kind.
/// `read` sees the item under the store's lock (encode it straight into the output there).
pub fn get<R>(
    ctx: &Context<'_>,
    key: &[u8],
    touch: Option<Exptime>,
    read: impl FnOnce(Option<ItemView<'_>>) -> R,
) -> R {
    let stats = ctx.stats;
    let expiry = touch.map(|t| memcached_expiry(t.0, ctx.now_ms));
    WorkerStats::incr(&stats.cmd_get);
    if expiry.is_some() {
        WorkerStats::incr(&stats.cmd_touch);
    }
    let options = ReadOptions {
        touch: expiry,
        ..ReadOptions::plain()
    };
    let (hit, result) = ctx.shared.store.get(key, ctx.now_ms, options, |view| {
        // Typed values (RESP hashes) have no memcached form: a miss here.
        let view = view.filter(|item| item.object().is_none());
        (view.is_some(), read(view))
    });
    let counter = match (hit, expiry.is_some()) {
        (true, false) => &stats.get_hits,
        (false, false) => &stats.get_misses,
        (true, true) => &stats.touch_hits,
        (false, true) => &stats.touch_misses,
    };
    WorkerStats::incr(counter);
    result
}

/// Runs a storage command. Counts `cmd_set`, the cas counters for a cas store and
/// `store_no_memory`.
pub fn store(ctx: &Context<'_>, args: StoreArgs<'_>) -> Outcome {
    let stats = ctx.stats;
    WorkerStats::incr(&stats.cmd_set);
    let write = Write {
        key: args.key,
        value: args.value,
        flags: args.flags,
        expiry: memcached_expiry(args.exptime.0, ctx.now_ms),
        mode: write_mode(args.mode),
        compare_cas: args.cas_unique,
        new_cas: None,
        invalidate: false,
    };
    let outcome = ctx.shared.store.apply(Mutation::Write(write), ctx.now_ms);
    if args.mode == StoreMode::Cas {
        let counter = match outcome {
            Outcome::Stored { .. } => Some(&stats.cas_hits),
            Outcome::Exists => Some(&stats.cas_badval),
            Outcome::NotFound => Some(&stats.cas_misses),
            _ => None,
        };
        if let Some(counter) = counter {
            WorkerStats::incr(counter);
        }
    }
    if outcome == Outcome::OutOfMemory {
        WorkerStats::incr(&stats.store_no_memory);
    }
    outcome
}

/// After a storage command was refused as too large: counts it and, when memcached does
/// (`unlink`: text `set`, binary Set), unlinks the key so no stale value survives.
pub fn refused_too_large(ctx: &Context<'_>, unlink: Option<&[u8]>) {
    WorkerStats::incr(&ctx.stats.store_too_large);
    if let Some(key) = unlink {
        ctx.shared.store.count_too_large(key);
        ctx.shared.store.apply(Mutation::Unlink { key }, ctx.now_ms);
    }
}

/// Deletes a key, only if its cas unique matches when one is given. Counts delete hits and
/// misses (a cas mismatch is neither, as in memcached).
pub fn delete(ctx: &Context<'_>, key: &[u8], cas_unique: Option<u64>) -> Outcome {
    let delete = Delete {
        key,
        compare_cas: cas_unique,
        new_cas: None,
        invalidate: None,
    };
    let outcome = ctx.shared.store.apply(Mutation::Delete(delete), ctx.now_ms);
    match outcome {
        Outcome::Deleted => WorkerStats::incr(&ctx.stats.delete_hits),
        Outcome::NotFound => WorkerStats::incr(&ctx.stats.delete_misses),
        _ => {}
    }
    outcome
}

/// incr/decr. `create` (binary only) makes a missing counter with that initial value and
/// expiry. Counts hits (a non-numeric value counts as a hit, as in memcached) and misses.
pub fn arith(
    ctx: &Context<'_>,
    direction: ArithDirection,
    key: &[u8],
    delta: u64,
    cas_unique: Option<u64>,
    create: Option<(u64, Exptime)>,
) -> Outcome {
    let incr = direction == ArithDirection::Incr;
    let arith = Arith {
        key,
        incr,
        delta,
        compare_cas: cas_unique,
        new_cas: None,
        vivify: create.map(|(initial, exptime)| (initial, memcached_expiry(exptime.0, ctx.now_ms))),
        expiry: None,
    };
    let outcome = ctx.shared.store.apply(Mutation::Arith(arith), ctx.now_ms);
    let stats = ctx.stats;
    let (hits, misses) = if incr {
        (&stats.incr_hits, &stats.incr_misses)
    } else {
        (&stats.decr_hits, &stats.decr_misses)
    };
    match outcome {
        Outcome::Counter { .. } | Outcome::NotNumeric => WorkerStats::incr(hits),
        Outcome::NotFound => WorkerStats::incr(misses),
        _ => {}
    }
    outcome
}

/// Changes a key's expiry. Counts `cmd_touch` and touch hits/misses.
pub fn touch(ctx: &Context<'_>, key: &[u8], exptime: Exptime) -> Outcome {
    WorkerStats::incr(&ctx.stats.cmd_touch);
    let expiry = memcached_expiry(exptime.0, ctx.now_ms);
    let outcome = ctx
        .shared
        .store
        .apply(Mutation::Touch { key, expiry }, ctx.now_ms);
    WorkerStats::incr(if outcome == Outcome::Touched {
        &ctx.stats.touch_hits
    } else {
        &ctx.stats.touch_misses
    });
    outcome
}

/// Changes a key's expiry and reads the item (binary Touch answers with its flags and cas).
/// Counts like [`touch`].
pub fn touch_item<R>(
    ctx: &Context<'_>,
    key: &[u8],
    exptime: Exptime,
    read: impl FnOnce(Option<ItemView<'_>>) -> R,
) -> R {
    WorkerStats::incr(&ctx.stats.cmd_touch);
    let options = ReadOptions {
        touch: Some(memcached_expiry(exptime.0, ctx.now_ms)),
        ..ReadOptions::plain()
    };
    let (hit, result) = ctx.shared.store.get(key, ctx.now_ms, options, |view| {
        // Typed values (RESP hashes) have no memcached form: a miss here.
        let view = view.filter(|item| item.object().is_none());
        (view.is_some(), read(view))
    });
    WorkerStats::incr(if hit {
        &ctx.stats.touch_hits
    } else {
        &ctx.stats.touch_misses
    });
    result
}

/// `flush_all` was turned off with `-F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("flush_all not allowed")]
pub struct FlushDisabled;

/// Invalidates every item now, or those written before `delay` from now (memcached's rules:
/// 0 or none = now). Counts `cmd_flush`.
pub fn flush_all(ctx: &Context<'_>, delay: Option<Exptime>) -> Result<(), FlushDisabled> {
    if !ctx.shared.config.server.enable_flush {
        return Err(FlushDisabled);
    }
    WorkerStats::incr(&ctx.stats.cmd_flush);
    let at_ms = match delay {
        Some(delay) if delay.0 > 0 => match memcached_expiry(delay.0, ctx.now_ms) {
            Expiry::AtMs(at) => Some(at),
            Expiry::Never => None,
        },
        _ => None,
    };
    ctx.shared
        .store
        .apply(Mutation::FlushAll { at_ms }, ctx.now_ms);
    Ok(())
}

fn write_mode(mode: StoreMode) -> WriteMode {
    match mode {
        StoreMode::Set | StoreMode::Cas => WriteMode::Set,
        StoreMode::Add => WriteMode::Add,
        StoreMode::Replace => WriteMode::Replace,
        StoreMode::Append => WriteMode::Append,
        StoreMode::Prepend => WriteMode::Prepend,
    }
}
