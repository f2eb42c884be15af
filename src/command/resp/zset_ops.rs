//! Sorted-set commands over several keys: ZUNION, ZINTER, ZDIFF (and their STORE forms),
//! ZINTERCARD and ZRANGESTORE.
//!
//! Atomicity: these commands carry the EXCLUSIVE flag in the command table, so the dispatcher
//! holds every worker's gate while they read their sources and write their destination; no
//! other client runs in between. Sources are copied out of the store one key at a time (the
//! store never holds two shard locks), combined here, and the result is stored whole: an empty
//! result deletes the destination, as Redis does. Errors are checked in Redis's order: numkeys,
//! then each source's type, then the options.

use std::rc::Rc;

use crate::hashing::HashMap;

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::zset::reply_members;
use super::zset_range::{parse_range, RangeForm, ZError};
use super::{err, is, parse_f64, parse_i64, Call};
use crate::command::Flow;
use crate::store::{Object, StoreError, ZSet};

/// Members and scores copied out of a sorted set, lowest first.
type Members = Vec<(Box<[u8]>, f64)>;

/// One source set, copied out of the store, with its weight. A key named several times is
/// copied once and shared, so repeating a big key cannot multiply what a request allocates.
struct Source {
    members: Rc<Members>,
    weight: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Combines two weighted scores as Redis's `zunionInterAggregate` does (a NaN sum, from
    /// `inf + -inf`, becomes 0).
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let sum = a + b;
                if sum.is_nan() {
                    0.0
                } else {
                    sum
                }
            }
            Aggregate::Min => a.min(b),
            Aggregate::Max => a.max(b),
        }
    }
}

/// Runs `f` on the sorted set at `key` (None if absent); `Err` if the key holds another type.
fn with_zset<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    f: impl FnOnce(Option<&ZSet>) -> R,
) -> Result<R, ZError> {
    let ctx = call.ctx;
    let (hit, result) =
        ctx.shared
            .store
            .get(key, ctx.now_ms, call.read_options(), |view| match view {
                None => (false, Ok(f(None))),
                Some(item) => match item.object() {
                    Some(Object::ZSet(zset)) => (true, Ok(f(Some(zset)))),
                    _ => (true, Err(ZError::Store(StoreError::WrongType))),
                },
            });
    super::strings::count_lookup(ctx, hit);
    result
}

/// Copies the sorted set at `key` out of the store (empty if absent). A plain set is a
/// source too, each member scoring 1, as Redis's `zuiInitIterator` takes it.
fn load(call: &Call<'_, '_>, key: &[u8]) -> Result<Members, ZError> {
    let ctx = call.ctx;
    let (hit, result) =
        ctx.shared
            .store
            .get(key, ctx.now_ms, call.read_options(), |view| match view {
                None => (false, Ok(Members::default())),
                Some(item) => match item.object() {
                    Some(Object::ZSet(zset)) => {
                        (true, Ok(zset.iter().map(|(m, s)| (m.into(), s)).collect()))
                    }
                    Some(Object::Set(set)) => (
                        true,
                        Ok(set.iter().map(|m| (m.as_ref().into(), 1.0)).collect()),
                    ),
                    _ => (true, Err(ZError::Store(StoreError::WrongType))),
                },
            });
    super::strings::count_lookup(ctx, hit);
    result
}

/// `numkeys key [key ...]` at `args[at]`: the loaded sources and the index after the keys.
fn load_sources(call: &Call<'_, '_>, at: usize) -> Result<(Vec<Source>, usize), ZError> {
    let numkeys = parse_i64(call.arg(at)).ok_or(ZError::Reply(err::NOT_INTEGER))?;
    if numkeys < 1 {
        return Err(ZError::Owned(format!(
            "ERR at least 1 input key is needed for '{}' command",
            call.name()
        )));
    }
    let first = at + 1;
    if numkeys as usize > call.args.len() - first {
        return Err(ZError::Reply(err::SYNTAX));
    }
    let end = first + numkeys as usize;
    let mut loaded: HashMap<&[u8], Rc<Members>> = HashMap::default();
    let sources = call.args[first..end]
        .iter()
        .map(|key| {
            let members = match loaded.get(&key[..]) {
                Some(members) => members.clone(),
                None => {
                    let members = Rc::new(load(call, key)?);
                    loaded.insert(key, members.clone());
                    members
                }
            };
            Ok(Source {
                members,
                weight: 1.0,
            })
        })
        .collect::<Result<Vec<_>, ZError>>()?;
    Ok((sources, end))
}

/// Options after the keys: WEIGHTS and AGGREGATE (not for ZDIFF), WITHSCORES (not when
/// storing). Returns the aggregate and whether scores are wanted.
fn parse_options(
    call: &Call<'_, '_>,
    from: usize,
    op: Op,
    storing: bool,
    sources: &mut [Source],
) -> Result<(Aggregate, bool), ZError> {
    let (mut aggregate, mut withscores) = (Aggregate::Sum, false);
    let mut i = from;
    while i < call.args.len() {
        let left = call.args.len() - i - 1;
        let arg = call.arg(i);
        if op != Op::Diff && is(arg, "WEIGHTS") && left >= sources.len() {
            for (j, source) in sources.iter_mut().enumerate() {
                source.weight = parse_f64(call.arg(i + 1 + j))
                    .ok_or(ZError::Reply("ERR weight value is not a float"))?;
            }
            i += sources.len();
        } else if op != Op::Diff && is(arg, "AGGREGATE") && left >= 1 {
            aggregate = match call.arg(i + 1).to_ascii_uppercase().as_slice() {
                b"SUM" => Aggregate::Sum,
                b"MIN" => Aggregate::Min,
                b"MAX" => Aggregate::Max,
                _ => return Err(ZError::Reply(err::SYNTAX)),
            };
            i += 1;
        } else if !storing && is(arg, "WITHSCORES") {
            withscores = true;
        } else {
            return Err(ZError::Reply(err::SYNTAX));
        }
        i += 1;
    }
    Ok((aggregate, withscores))
}

/// A source member's weighted score (`inf * 0` is 0, as in Redis).
fn weighted(score: f64, weight: f64) -> f64 {
    let value = score * weight;
    if value.is_nan() {
        0.0
    } else {
        value
    }
}

/// Computes the union, intersection or difference of `sources`.
fn combine(mut sources: Vec<Source>, op: Op, aggregate: Aggregate) -> ZSet {
    let mut result = ZSet::new();
    match op {
        Op::Union => {
            // Smallest first, as Redis orders its sources (it fixes the order of float sums).
            sources.sort_by_key(|s| s.members.len());
            let mut acc: HashMap<&[u8], f64> = HashMap::default();
            let mut order: Vec<&[u8]> = Vec::new();
            for source in &sources {
                for (member, score) in source.members.iter() {
                    let value = weighted(*score, source.weight);
                    match acc.get_mut(&member[..]) {
                        Some(current) => *current = aggregate.apply(*current, value),
                        None => {
                            acc.insert(member, value);
                            order.push(member);
                        }
                    }
                }
            }
            for member in order {
                result.insert(member, acc[member]);
            }
        }
        Op::Inter => {
            sources.sort_by_key(|s| s.members.len());
            let Some((first, rest)) = sources.split_first() else {
                return result;
            };
            let lookups: Vec<HashMap<&[u8], f64>> = rest
                .iter()
                .map(|s| s.members.iter().map(|(m, v)| (&m[..], *v)).collect())
                .collect();
            'members: for (member, score) in first.members.iter() {
                let mut value = weighted(*score, first.weight);
                for (lookup, source) in lookups.iter().zip(rest) {
                    let Some(other) = lookup.get(&member[..]) else {
                        continue 'members;
                    };
                    value = aggregate.apply(value, weighted(*other, source.weight));
                }
                result.insert(member, value);
            }
        }
        Op::Diff => {
            let Some((first, rest)) = sources.split_first() else {
                return result;
            };
            let others: Vec<HashMap<&[u8], f64>> = rest
                .iter()
                .map(|s| s.members.iter().map(|(m, v)| (&m[..], *v)).collect())
                .collect();
            for (member, score) in first.members.iter() {
                if !others.iter().any(|o| o.contains_key(&member[..])) {
                    result.insert(member, *score);
                }
            }
        }
    }
    result
}

fn op_of(name: &[u8]) -> Op {
    let name = name.to_ascii_uppercase();
    if name.starts_with(b"ZINTER") {
        Op::Inter
    } else if name.starts_with(b"ZDIFF") {
        Op::Diff
    } else {
        Op::Union
    }
}

/// Stores `result` at `key` (deleting it when empty); replies with the member count.
fn store_result(call: &Call<'_, '_>, key: &[u8], result: ZSet, enc: &mut Encoder<'_>) {
    let len = result.len();
    match call.ctx.shared.store.edit(key, call.ctx.now_ms, |entry| {
        // An empty result deletes the destination: only `del` is told.
        if !result.is_empty() {
            super::events::label(entry, call);
        }
        entry.put_zset(result)
    }) {
        Ok(()) => {
            enc.integer(len as i64);
            super::blocking::signal_ready(call, key);
        }
        Err(outcome) => ZError::Store(outcome).answer(enc),
    }
}

/// ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE destination numkeys key [key ...] [options]
pub fn zstore(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let op = op_of(call.arg(0));
    let result = load_sources(call, 2).and_then(|(mut sources, next)| {
        let (aggregate, _) = parse_options(call, next, op, true, &mut sources)?;
        Ok(combine(sources, op, aggregate))
    });
    match result {
        Ok(result) => store_result(call, call.arg(1), result, enc),
        Err(error) => error.answer(enc),
    }
    Ok(Flow::Continue)
}

/// ZUNION / ZINTER / ZDIFF numkeys key [key ...] [options] [WITHSCORES]
pub fn zcombine(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let op = op_of(call.arg(0));
    let result = load_sources(call, 1).and_then(|(mut sources, next)| {
        let (aggregate, withscores) = parse_options(call, next, op, false, &mut sources)?;
        Ok((combine(sources, op, aggregate), withscores))
    });
    match result {
        Ok((result, withscores)) => reply_members(enc, result.iter(), withscores),
        Err(error) => error.answer(enc),
    }
    Ok(Flow::Continue)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let result = load_sources(call, 1).and_then(|(sources, next)| {
        let mut limit = 0usize;
        let mut i = next;
        while i < call.args.len() {
            if is(call.arg(i), "LIMIT") && i + 1 < call.args.len() {
                limit = parse_i64(call.arg(i + 1))
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or(ZError::Reply("ERR LIMIT can't be negative"))?;
                i += 2;
            } else {
                return Err(ZError::Reply(err::SYNTAX));
            }
        }
        let count = combine(sources, Op::Inter, Aggregate::Sum).len();
        Ok(if limit == 0 { count } else { count.min(limit) })
    });
    match result {
        Ok(count) => enc.integer(count as i64),
        Err(error) => error.answer(enc),
    }
    Ok(Flow::Continue)
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let args: Vec<&[u8]> = call.args[3..].iter().map(|a| &a[..]).collect();
    let query = match parse_range(&args, RangeForm::Generic { store: true }) {
        Ok(query) => query,
        Err(error) => {
            error.answer(enc);
            return Ok(Flow::Continue);
        }
    };
    let selected = with_zset(call, call.arg(2), |zset| {
        let mut result = ZSet::new();
        if let Some(zset) = zset {
            for (member, score) in query.select(zset) {
                result.insert(member, score);
            }
        }
        result
    });
    match selected {
        Ok(result) => store_result(call, call.arg(1), result, enc),
        Err(error) => error.answer(enc),
    }
    Ok(Flow::Continue)
}
