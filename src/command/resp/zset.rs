//! Sorted-set commands on one key: ZADD and friends, ranges by rank, score and lex, pops,
//! random picks, range removals and ZSCAN. The multi-key set algebra lives in `zset_ops`.
//!
//! Replies follow Redis 7: scores are RESP3 doubles or RESP2 bulk strings (see
//! [`Encoder::double`]); WITHSCORES replies are flat in RESP2 and `[member, score]` pairs in
//! RESP3. Error texts were checked one by one against redis-server 7.0 (WITHSCORE of
//! ZRANK/ZREVRANK is 7.2's). Arguments are validated before the key is touched, so a refused
//! command changes nothing. An emptied set is removed by the store's
//! [`Entry`](crate::store::Entry) when the edit ends. The range grammar (bounds, LIMIT,
//! BYSCORE/BYLEX/REV) and the family's errors live in `zset_range`.
//!
//! Never parses a bound or a range option itself: every range argument goes through
//! `zset_range`, so ZRANGE, ZCOUNT, ZREMRANGE* and ZRANGESTORE refuse the same inputs.

use ferrocache_protocol::resp::{format_score, Encoder};

use super::blocking::signal_ready;
use super::error::RespError;
use super::zset_pop::{parse_zmpop, pop_first, reply_zmpop, take};
use super::zset_range::{
    clamp_ranks, parse_int, parse_lex_range, parse_range, parse_score_range, zerr, RangeBy,
    RangeForm, ZError,
};
use super::{err, events, is, parse_f64, parse_scan, Call, ScanArgs};
use crate::command::Flow;
use crate::glob;
use crate::store::{IfMissing, Object, ZSet};

/// Runs `read` on the sorted set at `key` (None if absent); WRONGTYPE is answered here.
pub(super) fn read_zset(
    call: &Call<'_, '_>,
    key: &[u8],
    enc: &mut Encoder<'_>,
    read: impl FnOnce(Option<&ZSet>, &mut Encoder<'_>),
) {
    let ctx = call.ctx;
    let hit = ctx
        .shared
        .store
        .get(key, ctx.now_ms, call.read_options(), |view| match view {
            None => {
                read(None, enc);
                false
            }
            Some(item) => {
                match item.object() {
                    Some(Object::ZSet(zset)) => read(Some(zset), enc),
                    _ => enc.error(err::WRONGTYPE),
                }
                true
            }
        });
    super::strings::count_lookup(ctx, hit);
}

/// Runs `write` on the sorted set at `key`, created empty first if `create`; the change is
/// named by the command's event.
fn write_zset<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    missing: IfMissing,
    write: impl FnOnce(Option<&mut ZSet>) -> R,
) -> Result<R, ZError> {
    write_zset_as(call, key, missing, events::of(call.arg(0)), write, |_| true)
}

/// [`write_zset`] naming the change `event`, or no event when `changed` says the result
/// changed nothing.
fn write_zset_as<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    missing: IfMissing,
    event: Option<&'static str>,
    write: impl FnOnce(Option<&mut ZSet>) -> R,
    changed: impl FnOnce(&R) -> bool,
) -> Result<R, ZError> {
    call.ctx.shared.store.edit(key, call.ctx.now_ms, |entry| {
        let result = write(entry.zset_mut(missing)?);
        events::label_if(entry, event, changed(&result));
        Ok(result)
    })
}

/// Encodes members (and scores): flat in RESP2, `[member, score]` pairs in RESP3.
pub(super) fn reply_members<'z>(
    enc: &mut Encoder<'_>,
    members: impl ExactSizeIterator<Item = (&'z [u8], f64)>,
    withscores: bool,
) {
    enc.array(members.len() * super::random::items_per_pick(enc, withscores));
    for (member, score) in members {
        if enc.output_full() {
            break; // over the output limit: the connection closes
        }
        write_member(enc, member, score, withscores);
    }
}

/// One member of a reply: its name, and with `withscores` its score (a `[member, score]` pair
/// in RESP3).
fn write_member(enc: &mut Encoder<'_>, member: &[u8], score: f64, withscores: bool) {
    if withscores && enc.is_resp3() {
        enc.array(2);
    }
    enc.bulk(member);
    if withscores {
        enc.double(score);
    }
}

fn arg_slices<'c>(call: &'c Call<'_, '_>, from: usize) -> Vec<&'c [u8]> {
    call.args[from..].iter().map(|a| &a[..]).collect()
}

/// The range form a legacy or generic range command name implies.
fn range_form(name: &[u8]) -> RangeForm {
    match name.to_ascii_uppercase().as_slice() {
        b"ZREVRANGE" => RangeForm::ByRank { rev: true },
        b"ZRANGEBYSCORE" => RangeForm::ByScore { rev: false },
        b"ZREVRANGEBYSCORE" => RangeForm::ByScore { rev: true },
        b"ZRANGEBYLEX" => RangeForm::ByLex { rev: false },
        b"ZREVRANGEBYLEX" => RangeForm::ByLex { rev: true },
        _ => RangeForm::Generic { store: false },
    }
}

/// ZRANGE / ZREVRANGE / ZRANGEBYSCORE / ZREVRANGEBYSCORE / ZRANGEBYLEX / ZREVRANGEBYLEX
pub fn zrange(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let query = match parse_range(&arg_slices(call, 2), range_form(call.arg(0))) {
        Ok(query) => query,
        Err(error) => {
            error.answer(enc);
            return Ok(Flow::Continue);
        }
    };
    read_zset(call, call.arg(1), enc, |zset, enc| match zset {
        Some(zset) => reply_members(enc, query.select(zset), query.withscores),
        None => enc.array(0),
    });
    Ok(Flow::Continue)
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, false);
    let mut i = 2;
    while i < call.args.len() {
        let flag = match call.arg(i).to_ascii_uppercase().as_slice() {
            b"NX" => &mut nx,
            b"XX" => &mut xx,
            b"GT" => &mut gt,
            b"LT" => &mut lt,
            b"CH" => &mut ch,
            b"INCR" => &mut incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let pairs = &call.args[i..];
    let refusal = if pairs.is_empty() || pairs.len() % 2 == 1 {
        Some(err::SYNTAX)
    } else if nx && xx {
        Some("ERR XX and NX options at the same time are not compatible")
    } else if (nx && (gt || lt)) || (gt && lt) {
        Some("ERR GT, LT, and/or NX options at the same time are not compatible")
    } else if incr && pairs.len() > 2 {
        Some("ERR INCR option supports a single increment-element pair")
    } else {
        None
    };
    if let Some(message) = refusal {
        return Err(message.into());
    }
    let mut scored = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        let Some(score) = parse_f64(&pair[0]) else {
            return Err(err::NOT_FLOAT.into());
        };
        scored.push((score, &pair[1][..]));
    }
    let event = Some(if incr { "zincr" } else { "zadd" });
    let result = write_zset_as(
        call,
        call.arg(1),
        if xx {
            IfMissing::Leave
        } else {
            IfMissing::Create
        },
        event,
        |zset| {
            let Some(zset) = zset else {
                return Ok((0, None, false));
            };
            // `touched`: a member was added or its score updated (Redis notifies only then).
            let (mut changed, mut last, mut touched) = (0usize, None, false);
            for &(score, member) in &scored {
                last = None;
                match zset.score(member) {
                    Some(_) if nx => {}
                    Some(current) => {
                        let next = if incr { current + score } else { score };
                        if next.is_nan() {
                            return Err(ZError::Reply(zerr::NAN));
                        }
                        if (gt && next <= current) || (lt && next >= current) {
                            continue;
                        }
                        last = Some(next);
                        if next != current {
                            zset.insert(member, next);
                            changed += usize::from(ch);
                            touched = true;
                        }
                    }
                    None if xx => {}
                    None => {
                        zset.insert(member, score);
                        last = Some(score);
                        changed += 1;
                        touched = true;
                    }
                }
            }
            Ok((changed, last, touched))
        },
        |result| matches!(result, Ok((_, _, true))),
    );
    match result.and_then(|inner| inner) {
        Ok((_, last, _)) if incr => match last {
            Some(score) => enc.double(score),
            None => enc.null(),
        },
        Ok((changed, _, _)) => enc.integer(changed as i64),
        Err(error) => error.answer(enc),
    }
    signal_ready(call, call.arg(1));
    Ok(Flow::Continue)
}

/// ZINCRBY key increment member
pub fn zincrby(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(delta) = parse_f64(call.arg(2)) else {
        return Err(err::NOT_FLOAT.into());
    };
    let member = call.arg(3);
    let result = write_zset(call, call.arg(1), IfMissing::Create, |zset| {
        let zset = zset.expect("created");
        let next = zset.score(member).unwrap_or(0.0) + delta;
        if next.is_nan() {
            return Err(ZError::Reply(zerr::NAN));
        }
        zset.insert(member, next);
        Ok(next)
    });
    match result.and_then(|inner| inner) {
        Ok(score) => enc.double(score),
        Err(error) => error.answer(enc),
    }
    signal_ready(call, call.arg(1));
    Ok(Flow::Continue)
}

/// ZREM key member [member ...]
pub fn zrem(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let members = &call.args[2..];
    let write = |zset: Option<&mut ZSet>| {
        zset.map_or(0, |z| {
            members.iter().filter(|m| z.remove(m).is_some()).count()
        })
    };
    match write_zset_as(
        call,
        call.arg(1),
        IfMissing::Leave,
        Some("zrem"),
        write,
        |n| *n > 0,
    ) {
        Ok(n) => enc.integer(n as i64),
        Err(error) => error.answer(enc),
    }
    Ok(Flow::Continue)
}

/// ZSCORE key member
pub fn zscore(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let member = call.arg(2);
    read_zset(call, call.arg(1), enc, |zset, enc| {
        match zset.and_then(|z| z.score(member)) {
            Some(score) => enc.double(score),
            None => enc.null(),
        }
    });
    Ok(Flow::Continue)
}

/// ZMSCORE key member [member ...]
pub fn zmscore(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let members = &call.args[2..];
    read_zset(call, call.arg(1), enc, |zset, enc| {
        enc.array(members.len());
        for member in members {
            if enc.output_full() {
                break; // over the output limit: the connection closes
            }
            match zset.and_then(|z| z.score(member)) {
                Some(score) => enc.double(score),
                None => enc.null(),
            }
        }
    });
    Ok(Flow::Continue)
}

/// ZCARD key
pub fn zcard(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    read_zset(call, call.arg(1), enc, |zset, enc| {
        enc.integer(zset.map_or(0, ZSet::len) as i64)
    });
    Ok(Flow::Continue)
}

/// ZCOUNT key min max / ZLEXCOUNT key min max
pub fn zcount(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let by = if is(call.arg(0), "ZLEXCOUNT") {
        parse_lex_range(call.arg(2), call.arg(3)).map(RangeBy::Lex)
    } else {
        parse_score_range(call.arg(2), call.arg(3)).map(RangeBy::Score)
    };
    let by = match by {
        Ok(by) => by,
        Err(error) => {
            error.answer(enc);
            return Ok(Flow::Continue);
        }
    };
    read_zset(call, call.arg(1), enc, |zset, enc| {
        let count = match (zset, &by) {
            (None, _) => 0,
            (Some(z), RangeBy::Lex(range)) => z.lex_ranks(range).len(),
            (Some(z), RangeBy::Score(range)) => z.score_ranks(range).len(),
            (Some(_), RangeBy::Rank(..)) => unreachable!("ZCOUNT ranges are score or lex"),
        };
        enc.integer(count as i64)
    });
    Ok(Flow::Continue)
}

/// ZRANK / ZREVRANK key member [WITHSCORE]
pub fn zrank(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let rev = is(call.arg(0), "ZREVRANK");
    let withscore = match call.args.len() {
        3 => false,
        4 if is(call.arg(3), "WITHSCORE") => true,
        4 => {
            return Err(err::SYNTAX.into());
        }
        _ => {
            return Err(format!(
                "ERR wrong number of arguments for '{}' command",
                call.name()
            )
            .into());
        }
    };
    let member = call.arg(2);
    read_zset(call, call.arg(1), enc, |zset, enc| {
        let found = zset.and_then(|z| {
            let rank = z.rank(member)?;
            let rank = if rev { z.len() - 1 - rank } else { rank };
            Some((rank, z.score(member)?))
        });
        match (found, withscore) {
            (Some((rank, _)), false) => enc.integer(rank as i64),
            (Some((rank, score)), true) => {
                enc.array(2);
                enc.integer(rank as i64);
                enc.double(score);
            }
            (None, false) => enc.null(),
            (None, true) => enc.null_array(),
        }
    });
    Ok(Flow::Continue)
}

/// ZPOPMIN / ZPOPMAX key [count]
pub fn zpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let max = is(call.arg(0), "ZPOPMAX");
    let count = match super::pop_count(call) {
        Ok(count) => count,
        Err(message) => {
            return Err(message.into());
        }
    };
    let popped = write_zset(call, call.arg(1), IfMissing::Leave, |zset| {
        zset.map_or_else(Vec::new, |zset| take(zset, max, count.unwrap_or(1)))
    });
    match popped {
        Err(error) => error.answer(enc),
        // Without a count the reply is one flat pair even in RESP3, as Redis answers.
        Ok(popped) if count.is_none() => {
            enc.array(popped.len() * 2);
            for (member, score) in &popped {
                enc.bulk(member);
                enc.double(*score);
            }
        }
        Ok(popped) => reply_members(enc, popped.iter().map(|(m, s)| (&m[..], *s)), true),
    }
    Ok(Flow::Continue)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let zmpop = match parse_zmpop(call.args, 1) {
        Ok(zmpop) => zmpop,
        Err(message) => {
            return Err(message.into());
        }
    };
    match pop_first(call.ctx, zmpop.keys, zmpop.max, zmpop.count) {
        Ok(Some((key, members))) => reply_zmpop(enc, &key, &members),
        Ok(None) => enc.null_array(),
        Err(outcome) => ZError::Store(outcome).answer(enc),
    }
    Ok(Flow::Continue)
}

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (count, withscores) = match super::random::parse_args(call, "WITHSCORES") {
        Ok(parsed) => parsed,
        Err(message) => {
            return Err(message.into());
        }
    };
    let output_limit = enc.output_limit;
    let mut flow = Ok(Flow::Continue);
    read_zset(call, call.arg(1), enc, |zset, enc| {
        let len = zset.map_or(0, ZSet::len);
        let Some(count) = count else {
            match zset.and_then(|z| z.get(super::random::random() as usize % len.max(1))) {
                Some((member, _)) => enc.bulk(member),
                None => enc.null(),
            }
            return;
        };
        let Some(zset) = zset.filter(|_| count != 0) else {
            enc.array(0);
            return;
        };
        let member = |rank: usize| zset.get(rank).expect("rank < len");
        if count > 0 {
            let ranks = super::random::distinct_positions(len, count.unsigned_abs());
            reply_members(enc, ranks.into_iter().map(member), withscores);
            return;
        }
        flow = super::random::reply_repeated(
            enc,
            len,
            count.unsigned_abs(),
            super::random::items_per_pick(enc, withscores),
            output_limit,
            |enc, rank| {
                let (name, score) = member(rank);
                write_member(enc, name, score, withscores);
            },
        );
    });
    flow
}

/// ZREMRANGEBYRANK / ZREMRANGEBYSCORE / ZREMRANGEBYLEX key min max
pub fn zremrange(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let name = call.arg(0).to_ascii_uppercase();
    let (min, max) = (call.arg(2), call.arg(3));
    let by = match name.as_slice() {
        b"ZREMRANGEBYRANK" => parse_int(min).and_then(|a| Ok(RangeBy::Rank(a, parse_int(max)?))),
        b"ZREMRANGEBYLEX" => parse_lex_range(min, max).map(RangeBy::Lex),
        _ => parse_score_range(min, max).map(RangeBy::Score),
    };
    let by = match by {
        Ok(by) => by,
        Err(error) => {
            error.answer(enc);
            return Ok(Flow::Continue);
        }
    };
    let write = |zset: Option<&mut ZSet>| {
        let Some(zset) = zset else { return 0 };
        let ranks = match &by {
            RangeBy::Rank(start, stop) => clamp_ranks(*start, *stop, zset.len()),
            RangeBy::Score(range) => zset.score_ranks(range),
            RangeBy::Lex(range) => zset.lex_ranks(range),
        };
        zset.remove_range(ranks)
    };
    let event = events::of(call.arg(0));
    match write_zset_as(call, call.arg(1), IfMissing::Leave, event, write, |n| {
        *n > 0
    }) {
        Ok(n) => enc.integer(n as i64),
        Err(error) => error.answer(enc),
    }
    Ok(Flow::Continue)
}

/// ZSCAN key cursor [MATCH pattern] [COUNT n]
pub fn zscan(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ScanArgs {
        cursor,
        pattern,
        count,
        ..
    } = match parse_scan(call.args, 2, false, false) {
        Ok(scan) => scan,
        Err(message) => {
            return Err(message.into());
        }
    };
    read_zset(call, call.arg(1), enc, |zset, enc| {
        let compact = zset.is_some_and(|z| z.encoding() == "listpack");
        let (found, next) = zset.map_or((Vec::new(), 0), |z| z.scan(cursor, count));
        let chosen: Vec<(&[u8], f64)> = found
            .into_iter()
            .filter(|(m, _)| pattern.as_deref().is_none_or(|p| glob::matches(p, m)))
            .collect();
        enc.array(2);
        enc.bulk(next.to_string().as_bytes());
        // Scores are bulk strings here even in RESP3, as Redis answers SCAN-family commands.
        enc.array(chosen.len() * 2);
        for (member, score) in chosen {
            if enc.output_full() {
                break; // over the output limit: the connection closes
            }
            enc.bulk(member);
            enc.bulk(scan_score(score, compact).as_bytes());
        }
    });
    Ok(Flow::Continue)
}

/// A score as ZSCAN prints it. Redis 7.0 answers from the stored form: a listpack keeps an
/// integral score within ±2^62 as an integer (`100000000000000000`), a skip list prints
/// `%.17g` (`1e+17`). Checked against redis-server 7.0.
fn scan_score(score: f64, compact: bool) -> String {
    const LIMIT: f64 = 4_611_686_018_427_387_904.0; // 2^62, Redis's `double2ll` bound
    if compact && score.fract() == 0.0 && (-LIMIT..=LIMIT).contains(&score) {
        (score as i64).to_string()
    } else {
        format_score(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_scores_follow_the_stored_form() {
        assert_eq!(scan_score(1e17, true), "100000000000000000");
        assert_eq!(scan_score(1e17, false), "1e+17");
        assert_eq!(
            scan_score(4_611_686_018_427_387_904.0, true),
            "4611686018427387904"
        );
        assert_eq!(scan_score(5e18, true), "5e+18");
        assert_eq!(scan_score(-4e18, true), "-4000000000000000000");
        assert_eq!(scan_score(0.1, true), "0.10000000000000001");
        assert_eq!(scan_score(f64::INFINITY, true), "inf");
    }
}
