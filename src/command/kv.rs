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
    Delete, Expiry, ItemState, ItemView, Mutation, Outcome, ReadOptions, StaleCas, Store, Write,
    WriteMode,
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

/// Runs a storage command of text or binary. Counts as [`write`].
pub fn store(ctx: &Context<'_>, args: StoreArgs<'_>) -> Outcome {
    let write = Write {
        key: args.key,
        value: args.value,
        flags: args.flags,
        expiry: memcached_expiry(args.exptime.0, ctx.now_ms),
        mode: write_mode(args.mode),
        compare_cas: args.cas_unique,
        new_cas: None,
        stale_cas: StaleCas::Refuse,
    };
    self::write(ctx, write)
}

/// Writes an item for any memcached dialect (text `set`…`cas`, binary Set…PrependQ, meta
/// `ms`). Counts `cmd_set`; a write that compares a cas counts `cas_hits`, `cas_badval` or
/// `cas_misses` (memcached's `NREAD_CAS`, which meta's `C` and a binary header cas select as
/// text's `cas` does); a refusal for memory counts `store_no_memory`.
pub fn write(ctx: &Context<'_>, write: Write<'_>) -> Outcome {
    let stats = ctx.stats;
    WorkerStats::incr(&stats.cmd_set);
    let outcome = ctx.shared.store.apply(Mutation::Write(write), ctx.now_ms);
    if write.compare_cas.is_some() {
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

/// Deletes a key, only if its cas unique matches when one is given. Counts as
/// [`delete_with`].
pub fn delete(ctx: &Context<'_>, key: &[u8], cas_unique: Option<u64>) -> Outcome {
    let delete = Delete {
        key,
        compare_cas: cas_unique,
        new_cas: None,
        invalidate: None,
    };
    delete_with(ctx, delete)
}

/// A delete of any dialect, meta's invalidation (`md I`) included. Counts delete hits and
/// misses (a cas mismatch is neither, as in memcached's text and binary delete).
pub fn delete_with(ctx: &Context<'_>, delete: Delete<'_>) -> Outcome {
    let outcome = ctx.shared.store.apply(Mutation::Delete(delete), ctx.now_ms);
    match outcome {
        Outcome::Deleted => WorkerStats::incr(&ctx.stats.delete_hits),
        Outcome::NotFound => WorkerStats::incr(&ctx.stats.delete_misses),
        _ => {}
    }
    outcome
}

/// An increment or decrement of a decimal value (text `incr`/`decr`, binary Increment and
/// Decrement, meta `ma`).
#[derive(Debug, Clone, Copy)]
pub struct Arith<'a> {
    pub key: &'a [u8],
    pub direction: ArithDirection,
    pub delta: u64,
    /// Only if the item still has this cas unique.
    pub compare_cas: Option<u64>,
    /// Give the result this cas unique instead of a fresh one (meta `E`).
    pub new_cas: Option<u64>,
    /// On a miss, create the counter with this value and expiry instead of failing.
    pub vivify: Option<(u64, Expiry)>,
    /// On success, also set the expiry.
    pub expiry: Option<Expiry>,
}

/// What an incr/decr did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The counter after the change: its value, cas and expiry.
    Counter {
        value: u64,
        cas: u64,
        expiry: Expiry,
    },
    /// The item's value is not a decimal number memcached can count with.
    NotNumeric,
    /// The store's answer when no counter changed (NotFound, Exists, WrongType, OutOfMemory).
    Failed(Outcome),
}

/// incr/decr. `create` (binary only) makes a missing counter with that initial value and
/// expiry. Counts as [`arith_with`].
pub fn arith(
    ctx: &Context<'_>,
    direction: ArithDirection,
    key: &[u8],
    delta: u64,
    cas_unique: Option<u64>,
    create: Option<(u64, Exptime)>,
) -> ArithOutcome {
    let arith = Arith {
        key,
        direction,
        delta,
        compare_cas: cas_unique,
        new_cas: None,
        vivify: create.map(|(initial, exptime)| (initial, memcached_expiry(exptime.0, ctx.now_ms))),
        expiry: None,
    };
    arith_with(ctx, arith)
}

/// Runs an incr/decr and counts hits (a non-numeric value counts as a hit, as in memcached)
/// and misses.
pub fn arith_with(ctx: &Context<'_>, arith: Arith<'_>) -> ArithOutcome {
    let outcome = apply_arith(&ctx.shared.store, arith, ctx.now_ms);
    let stats = ctx.stats;
    let (hits, misses) = match arith.direction {
        ArithDirection::Incr => (&stats.incr_hits, &stats.incr_misses),
        ArithDirection::Decr => (&stats.decr_hits, &stats.decr_misses),
    };
    match outcome {
        ArithOutcome::Counter { .. } | ArithOutcome::NotNumeric => WorkerStats::incr(hits),
        ArithOutcome::Failed(Outcome::NotFound) => WorkerStats::incr(misses),
        _ => {}
    }
    outcome
}

/// memcached's `do_add_delta` on the store, as one locked edit of the key: incr wraps at
/// 2^64, decr stops at 0, and a result no longer than the old value is written over it padded
/// with spaces, keeping the item's marks; a longer one makes a new item that starts fresh
/// (neither fetched nor stale, no win token out).
pub fn apply_arith(store: &Store, arith: Arith<'_>, now_ms: u64) -> ArithOutcome {
    store.edit(arith.key, now_ms, |entry| {
        let Some(cas) = entry.cas() else {
            let Some((initial, expiry)) = arith.vivify else {
                return ArithOutcome::Failed(Outcome::NotFound);
            };
            let mut digits = Vec::with_capacity(20);
            ferrocache_protocol::memcache::write_u64(&mut digits, initial);
            return match entry.put_string_with_cas(&digits, 0, expiry, arith.new_cas) {
                Ok(cas) => ArithOutcome::Counter {
                    value: initial,
                    cas,
                    expiry,
                },
                Err(error) => ArithOutcome::Failed(error.into()),
            };
        };
        if arith.compare_cas.is_some_and(|expected| expected != cas) {
            return ArithOutcome::Failed(Outcome::Exists);
        }
        let old = match entry.string() {
            Ok(old) => old.unwrap_or_default(),
            Err(_) => return ArithOutcome::Failed(Outcome::WrongType),
        };
        let Some(current) = parse_counter(old) else {
            return ArithOutcome::NotNumeric;
        };
        let value = match arith.direction {
            ArithDirection::Incr => current.wrapping_add(arith.delta),
            ArithDirection::Decr => current.saturating_sub(arith.delta),
        };
        let mut digits = Vec::with_capacity(20);
        ferrocache_protocol::memcache::write_u64(&mut digits, value);
        let state = if digits.len() <= old.len() {
            digits.resize(old.len(), b' ');
            ItemState::Keep
        } else {
            ItemState::Fresh
        };
        let expiry = arith.expiry.or(entry.expiry()).unwrap_or(Expiry::Never);
        let expiry = Expiry::from_ms(expiry.as_ms());
        match entry.rewrite_string(&digits, expiry, arith.new_cas, state) {
            Ok(cas) => ArithOutcome::Counter { value, cas, expiry },
            Err(error) => ArithOutcome::Failed(error.into()),
        }
    })
}

/// Reads a decimal counter as memcached's `safe_strtoull` does: optional leading whitespace
/// and `+`, at least one digit, then the end or a whitespace character (whatever follows that
/// is ignored, so "8  007" reads as 8), no `-`, no overflow.
fn parse_counter(value: &[u8]) -> Option<u64> {
    let start = value.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &value[start..];
    let rest = rest.strip_prefix(b"+").unwrap_or(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    if let Some(next) = rest.get(digits) {
        if !next.is_ascii_whitespace() {
            return None;
        }
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;

    const NOW: u64 = 1_700_000_000_000;

    fn set(store: &Store, key: &[u8], value: &[u8]) -> u64 {
        let write = Write {
            key,
            value,
            flags: 0,
            expiry: Expiry::Never,
            mode: WriteMode::Set,
            compare_cas: None,
            new_cas: None,
            stale_cas: StaleCas::Refuse,
        };
        let Outcome::Stored { cas } = store.apply(Mutation::Write(write), NOW) else {
            panic!("set failed")
        };
        cas
    }

    fn value(store: &Store, key: &[u8]) -> Option<Vec<u8>> {
        store.get(key, NOW, ReadOptions::plain(), |view| {
            view.map(|item| item.value().to_vec())
        })
    }

    fn arith(key: &[u8], direction: ArithDirection, delta: u64) -> Arith<'_> {
        Arith {
            key,
            direction,
            delta,
            compare_cas: None,
            new_cas: None,
            vivify: None,
            expiry: None,
        }
    }

    #[test]
    fn incr_gives_a_new_cas_and_a_stale_cas_fails() {
        let store = Store::new(StoreConfig::default());
        let first = set(&store, b"k", b"1");
        let ArithOutcome::Counter {
            cas: second,
            value: 2,
            ..
        } = apply_arith(&store, arith(b"k", ArithDirection::Incr, 1), NOW)
        else {
            panic!()
        };
        assert_ne!(first, second);
        let stale = Arith {
            compare_cas: Some(first),
            ..arith(b"k", ArithDirection::Incr, 1)
        };
        assert_eq!(
            apply_arith(&store, stale, NOW),
            ArithOutcome::Failed(Outcome::Exists)
        );
    }

    #[test]
    fn decr_pads_in_place_like_memcached() {
        let store = Store::new(StoreConfig::default());
        set(&store, b"n", b"10");
        apply_arith(&store, arith(b"n", ArithDirection::Decr, 1), NOW);
        assert_eq!(value(&store, b"n").as_deref(), Some(&b"9 "[..]));
        apply_arith(&store, arith(b"n", ArithDirection::Incr, 91), NOW);
        assert_eq!(value(&store, b"n").as_deref(), Some(&b"100"[..]));
        assert!(matches!(
            apply_arith(&store, arith(b"n", ArithDirection::Decr, 1000), NOW),
            ArithOutcome::Counter { value: 0, .. }
        ));
        set(&store, b"word", b"abc");
        assert_eq!(
            apply_arith(&store, arith(b"word", ArithDirection::Incr, 1), NOW),
            ArithOutcome::NotNumeric
        );
        assert_eq!(
            apply_arith(&store, arith(b"none", ArithDirection::Incr, 1), NOW),
            ArithOutcome::Failed(Outcome::NotFound)
        );
    }

    #[test]
    fn counters_parse_like_strtoull() {
        assert_eq!(parse_counter(b"42"), Some(42));
        assert_eq!(parse_counter(b"9 "), Some(9));
        assert_eq!(parse_counter(b" 7"), Some(7));
        assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_counter(b"18446744073709551616"), None);
        assert_eq!(parse_counter(b"-1"), None);
        assert_eq!(parse_counter(b"1a"), None);
        assert_eq!(parse_counter(b""), None);
        assert_eq!(parse_counter(b"8  007"), Some(8));
        assert_eq!(parse_counter(b"+5"), Some(5));
        assert_eq!(parse_counter(b"5\r\n"), Some(5));
    }
}
