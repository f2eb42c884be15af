//! What the sorted-set pops share (ZPOPMIN/ZPOPMAX, ZMPOP and the blocking BZPOPMIN,
//! BZPOPMAX, BZMPOP): taking the lowest or highest members out of a sorted set, the
//! `numkeys key [key ...] MIN|MAX [COUNT count]` grammar, popping from the first non-empty key
//! and the reply shapes. Below both `zset.rs` and `blocking.rs` (which import it and never
//! each other's helpers); never parks or serves blocked clients itself.
//!
//! Reply shapes follow redis-server 7.0's `genericZpopCommand`: BZPOPMIN/BZPOPMAX answer a
//! flat `[key, member, score]`; ZMPOP/BZMPOP a nested `[key, [[member, score], ...]]` in RESP2
//! and RESP3 alike.

use std::borrow::Cow;

use ferrocache_protocol::resp::Encoder;

use super::list_ops::{COUNT_ZERO, NUMKEYS};
use super::{err, is, parse_i64};
use crate::command::Context;
use crate::store::{IfMissing, StoreError, ZSet};

/// Members taken out of a sorted set, with their scores, in the order they were popped.
pub(super) type Members = Vec<(Vec<u8>, f64)>;

/// Removes up to `count` members from the low end (`max` false) or the high end, returning
/// them lowest first (ZPOPMIN) or highest first (ZPOPMAX).
pub(super) fn take(zset: &mut ZSet, max: bool, count: usize) -> Members {
    let n = count.min(zset.len());
    let ranks = if max {
        zset.len() - n..zset.len()
    } else {
        0..n
    };
    let taken: Members = if max {
        zset.range_rev(ranks.clone())
            .map(|(m, s)| (m.to_vec(), s))
            .collect()
    } else {
        zset.range(ranks.clone())
            .map(|(m, s)| (m.to_vec(), s))
            .collect()
    };
    zset.remove_range(ranks);
    taken
}

/// Pops up to `count` members from the sorted set at `key`: `Ok(None)` when it is absent.
pub(super) fn pop_key(
    ctx: &Context<'_>,
    key: &[u8],
    max: bool,
    count: usize,
) -> Result<Option<Members>, StoreError> {
    ctx.shared.store.edit(key, ctx.now_ms, |entry| {
        entry.label(if max { "zpopmax" } else { "zpopmin" });
        Ok(entry
            .zset_mut(IfMissing::Leave)?
            .map(|zset| take(zset, max, count)))
    })
}

/// ZMPOP's parsed arguments.
pub(super) struct Zmpop<'c> {
    pub keys: &'c [Cow<'c, [u8]>],
    pub max: bool,
    pub count: usize,
}

/// Parses `numkeys key [key ...] MIN|MAX [COUNT count]` starting at `args[at]`, with Redis's
/// errors in Redis's order (numkeys, the side, then the options).
pub(super) fn parse_zmpop<'c>(
    args: &'c [Cow<'c, [u8]>],
    at: usize,
) -> Result<Zmpop<'c>, &'static str> {
    let numkeys = parse_i64(&args[at]).filter(|n| *n > 0).ok_or(NUMKEYS)? as u64;
    if numkeys >= (args.len() - at - 1) as u64 {
        return Err(err::SYNTAX);
    }
    let side_at = at + 1 + numkeys as usize;
    let max = if is(&args[side_at], "MIN") {
        false
    } else if is(&args[side_at], "MAX") {
        true
    } else {
        return Err(err::SYNTAX);
    };
    let count = match &args[side_at + 1..] {
        [] => 1,
        [word, value] if is(word, "COUNT") => {
            parse_i64(value).filter(|n| *n > 0).ok_or(COUNT_ZERO)? as usize
        }
        _ => return Err(err::SYNTAX),
    };
    Ok(Zmpop {
        keys: &args[at + 1..side_at],
        max,
        count,
    })
}

/// Pops from the first of `keys` that exists (WRONGTYPE if that one is not a sorted set, as
/// Redis checks only up to the first existing key); `None` when none exists.
pub(super) fn pop_first(
    ctx: &Context<'_>,
    keys: &[Cow<'_, [u8]>],
    max: bool,
    count: usize,
) -> Result<Option<(Vec<u8>, Members)>, StoreError> {
    for key in keys {
        if let Some(members) = pop_key(ctx, key, max, count)? {
            return Ok(Some((key.to_vec(), members)));
        }
    }
    Ok(None)
}

/// ZMPOP / BZMPOP's `[key, [[member, score], ...]]`.
pub(super) fn reply_zmpop(enc: &mut Encoder<'_>, key: &[u8], members: &[(Vec<u8>, f64)]) {
    enc.array(2);
    enc.bulk(key);
    enc.array(members.len());
    for (member, score) in members {
        if enc.output_full() {
            break; // over the output limit: the connection closes
        }
        enc.array(2);
        enc.bulk(member);
        enc.double(*score);
    }
}

/// BZPOPMIN / BZPOPMAX's `[key, member, score]`.
pub(super) fn reply_bzpop(enc: &mut Encoder<'_>, key: &[u8], member: &[u8], score: f64) {
    enc.array(3);
    enc.bulk(key);
    enc.bulk(member);
    enc.double(score);
}
