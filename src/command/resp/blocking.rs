//! The blocking pops of lists (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) and sorted sets
//! (BZPOPMIN, BZPOPMAX, BZMPOP) and the serving of parked clients after a push.
//!
//! A blocking pop first tries at once, as its non-blocking twin does. With nothing to take it
//! parks the client in the shared [`crate::blocking::Registry`] and answers
//! [`Flow::Block`]: the connection stops serving its input until a push serves it or its
//! timeout passes (both handled by its worker). Inside MULTI/EXEC it never blocks: it answers
//! the timeout reply at once, as Redis does. After every push (or ZADD, ZINCRBY, Z*STORE),
//! [`serve_waiters`] hands the new elements to the key's waiters of that type, first blocked
//! first served.
//! This module never touches a socket: replies for other clients are encoded here and
//! handed to their workers through the registry.

use ferrocache_protocol::resp::{Encoder, RespVersion};

use super::error::RespError;
use super::list_ops::{mpop_first, parse_end, parse_mpop, pop_event, pop_some, reply_mpop};
use super::zset_pop::{self, parse_zmpop, pop_first, reply_bzpop, reply_zmpop};
use super::{err, is, reply_store_error, Call};
use crate::blocking::{GiveBack, Kind, Parked, Served, Taken, WaitFor, Waiter};
use crate::command::{Context, Flow};
use crate::store::{End, IfMissing, StoreError};

const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";

/// Parses a timeout in seconds (decimals allowed) into milliseconds; 0 waits for ever.
fn parse_timeout(arg: &[u8]) -> Result<u64, &'static str> {
    let text = std::str::from_utf8(arg).map_err(|_| TIMEOUT_NOT_FLOAT)?;
    if text.is_empty() || text.trim() != text {
        return Err(TIMEOUT_NOT_FLOAT);
    }
    let seconds: f64 = text.parse().map_err(|_| TIMEOUT_NOT_FLOAT)?;
    if seconds.is_nan() {
        return Err(TIMEOUT_NOT_FLOAT);
    }
    // Redis 7.0 reports an infinite timeout as negative (it overflows its conversion).
    if seconds < 0.0 || seconds.is_infinite() {
        return Err(TIMEOUT_NEGATIVE);
    }
    Ok((seconds * 1000.0).ceil().min(u64::MAX as f64 / 2.0) as u64)
}

/// The reply of a timed-out (or, in MULTI, an unserved) blocking pop: a null array.
fn timeout_reply(version: RespVersion) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(&mut out, version).null_array();
    out
}

/// Parks the caller as `wait_for` on `keys`, or answers the timeout reply inside EXEC.
pub(super) fn park_or_answer(
    call: &mut Call<'_, '_>,
    enc: &mut Encoder<'_>,
    keys: Vec<Vec<u8>>,
    wait_for: WaitFor,
    timeout_ms: u64,
) -> Result<Flow, RespError> {
    park_or_answer_with(call, enc, keys, wait_for, timeout_ms, serve_waiters)
}

/// [`park_or_answer`] for waiters that `serve` serves once parked (a write on another
/// worker may have come between the first try and the parking): the blocking pops'
/// [`serve_waiters`], or the stream readers' own.
pub(super) fn park_or_answer_with(
    call: &mut Call<'_, '_>,
    enc: &mut Encoder<'_>,
    keys: Vec<Vec<u8>>,
    wait_for: WaitFor,
    timeout_ms: u64,
    serve: fn(&Context<'_>, &[u8]),
) -> Result<Flow, RespError> {
    if call.session.in_exec {
        // Redis's words inside EXEC: a null bulk for the moves, a null array for the pops
        // (a timeout answers a null array for all of them).
        match wait_for {
            WaitFor::Move { .. } => enc.null(),
            WaitFor::Pop { .. } | WaitFor::ZPop { .. } | WaitFor::Acks | WaitFor::Stream(_) => {
                enc.null_array()
            }
        }
        return Ok(Flow::Continue);
    }
    let ctx = call.ctx;
    let waiter = Waiter {
        seq: 0,
        conn_id: call.session.info.id,
        worker: ctx.worker,
        keys: keys.clone(),
        wait_for,
        resp3: enc.is_resp3(),
    };
    let seq = ctx.shared.blocked.park(waiter);
    call.session.parked = Some(Parked {
        seq,
        command: call
            .commands
            .lookup(&call.arg(0).to_ascii_lowercase())
            .map_or("", |spec| spec.name),
        deadline_ms: (timeout_ms > 0).then(|| ctx.now_ms.saturating_add(timeout_ms)),
        timeout_reply: timeout_reply(enc.version),
    });
    // A push on another worker may have come between the first try and the parking: serve
    // the keys now, in queue order (possibly this very client, through its worker's inbox).
    for key in &keys {
        serve(ctx, key);
    }
    Ok(Flow::Block)
}

/// BLPOP / BRPOP key [key ...] timeout
pub fn blpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let end = if is(call.arg(0), "BLPOP") {
        End::Head
    } else {
        End::Tail
    };
    let timeout_ms = match parse_timeout(call.arg(call.args.len() - 1)) {
        Ok(ms) => ms,
        Err(message) => {
            return Err(message.into());
        }
    };
    let keys: Vec<Vec<u8>> = call.args[1..call.args.len() - 1]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    for key in &keys {
        match super::list_ops::write_list(call, key, IfMissing::Leave, |list| {
            list.and_then(|l| l.pop(end))
        }) {
            Err(outcome) => {
                reply_store_error(enc, outcome);
                return Ok(Flow::Continue);
            }
            Ok(Some(element)) => {
                enc.array(2);
                enc.bulk(key);
                enc.bulk(&element);
                return Ok(Flow::Continue);
            }
            Ok(None) => {}
        }
    }
    park_or_answer(
        call,
        enc,
        keys,
        WaitFor::Pop { end, count: None },
        timeout_ms,
    )
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout / BRPOPLPUSH source destination
/// timeout
pub fn blmove(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ends = if call.args.len() == 4 {
        Some((End::Tail, End::Head))
    } else {
        parse_end(call.arg(3)).zip(parse_end(call.arg(4)))
    };
    let Some((from, to)) = ends else {
        return Err(err::SYNTAX.into());
    };
    let timeout_ms = match parse_timeout(call.arg(call.args.len() - 1)) {
        Ok(ms) => ms,
        Err(message) => {
            return Err(message.into());
        }
    };
    let (source, destination) = (call.arg(1).to_vec(), call.arg(2).to_vec());
    // EXCLUSIVE in the command table: no other client runs between the pop and the push.
    match super::list_ops::move_in_store(call.ctx, &source, &destination, from, to) {
        Ok(Some(element)) => {
            enc.bulk(&element);
            signal_ready(call, &destination);
            Ok(Flow::Continue)
        }
        Ok(None) => park_or_answer(
            call,
            enc,
            vec![source],
            WaitFor::Move {
                destination,
                from,
                to,
            },
            timeout_ms,
        ),
        Err(outcome) => {
            reply_store_error(enc, outcome);
            Ok(Flow::Continue)
        }
    }
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn blmpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let timeout_ms = match parse_timeout(call.arg(1)) {
        Ok(ms) => ms,
        Err(message) => {
            return Err(message.into());
        }
    };
    let mpop = match parse_mpop(call.args, 2) {
        Ok(mpop) => mpop,
        Err(message) => {
            return Err(message.into());
        }
    };
    match mpop_first(call, &mpop, enc.output_limit) {
        Ok(Some(popped)) => Ok(reply_mpop(enc, &popped.key, &popped.elements, mpop.count)),
        Ok(None) => {
            let keys = mpop.keys.iter().map(|k| k.to_vec()).collect();
            let wait_for = WaitFor::Pop {
                end: mpop.end,
                count: Some(mpop.count),
            };
            park_or_answer(call, enc, keys, wait_for, timeout_ms)
        }
        Err(outcome) => {
            reply_store_error(enc, outcome);
            Ok(Flow::Continue)
        }
    }
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout
pub fn bzpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let max = is(call.arg(0), "BZPOPMAX");
    let timeout_ms = match parse_timeout(call.arg(call.args.len() - 1)) {
        Ok(ms) => ms,
        Err(message) => {
            return Err(message.into());
        }
    };
    let keys = &call.args[1..call.args.len() - 1];
    match pop_first(call.ctx, keys, max, 1) {
        Ok(Some((key, members))) => {
            let (member, score) = &members[0];
            reply_bzpop(enc, &key, member, *score);
            Ok(Flow::Continue)
        }
        Ok(None) => {
            let keys = keys.iter().map(|k| k.to_vec()).collect();
            let wait_for = WaitFor::ZPop { max, count: None };
            park_or_answer(call, enc, keys, wait_for, timeout_ms)
        }
        Err(outcome) => {
            reply_store_error(enc, outcome);
            Ok(Flow::Continue)
        }
    }
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn bzmpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    // Redis parses the keys and options before the timeout here (unlike BLMPOP).
    let parsed = parse_zmpop(call.args, 2)
        .and_then(|zmpop| parse_timeout(call.arg(1)).map(|timeout_ms| (zmpop, timeout_ms)));
    let (zmpop, timeout_ms) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            return Err(message.into());
        }
    };
    match pop_first(call.ctx, zmpop.keys, zmpop.max, zmpop.count) {
        Ok(Some((key, members))) => {
            reply_zmpop(enc, &key, &members);
            Ok(Flow::Continue)
        }
        Ok(None) => {
            let keys = zmpop.keys.iter().map(|k| k.to_vec()).collect();
            let wait_for = WaitFor::ZPop {
                max: zmpop.max,
                count: Some(zmpop.count),
            };
            park_or_answer(call, enc, keys, wait_for, timeout_ms)
        }
        Err(outcome) => {
            reply_store_error(enc, outcome);
            Ok(Flow::Continue)
        }
    }
}

/// What serving one waiter did.
enum Serve {
    /// Its reply is on the way to its worker.
    Done,
    /// The key had nothing for it (or held another type): it stays parked.
    Nothing,
}

/// A write made `key` hold a list or a sorted set (or more of one): its blocked clients are
/// served now, or inside EXEC once the transaction ends, as Redis serves them after the whole
/// command (a ZADD undone by a DEL in the same EXEC wakes no one).
pub fn signal_ready(call: &Call<'_, '_>, key: &[u8]) {
    if call.session.in_exec {
        call.session.ready_keys.borrow_mut().push(key.to_vec());
    } else {
        serve_waiters(call.ctx, key);
    }
}

/// The type of waiter `key`'s value can serve, if any.
fn kind_at(ctx: &Context<'_>, key: &[u8]) -> Option<Kind> {
    ctx.shared.store.peek(key, ctx.now_ms, |entry| {
        if matches!(entry.list(), Ok(Some(_))) {
            Some(Kind::List)
        } else if matches!(entry.zset(), Ok(Some(_))) {
            Some(Kind::ZSet)
        } else {
            None
        }
    })
}

/// Hands what `key` now holds to the clients blocked on it for that type, first blocked first
/// served, until the value is empty or nobody waits. Called after every write that can
/// create or grow a list or a sorted set.
pub fn serve_waiters(ctx: &Context<'_>, key: &[u8]) {
    let registry = &ctx.shared.blocked;
    if registry.parked() == 0 {
        return;
    }
    let Some(kind) = kind_at(ctx, key) else {
        return;
    };
    // Each round serves one waiter or stops; moves may feed other keys' waiters (bounded:
    // each serve takes one waiter out of the registry for good).
    let mut fed = Vec::new();
    while let Some(waiter) = registry.take_first(key, kind) {
        match serve_one(ctx, key, &waiter, &mut fed) {
            Serve::Done => {}
            Serve::Nothing => {
                registry.restore(waiter);
                break;
            }
        }
    }
    for destination in fed {
        serve_waiters(ctx, &destination);
    }
}

fn serve_one(ctx: &Context<'_>, key: &[u8], waiter: &Waiter, fed: &mut Vec<Vec<u8>>) -> Serve {
    let store = &ctx.shared.store;
    let now = ctx.now_ms;
    let version = if waiter.resp3 {
        RespVersion::Resp3
    } else {
        RespVersion::Resp2
    };
    let mut reply = Vec::new();
    let mut enc = Encoder::new(&mut reply, version);
    let give_back = match &waiter.wait_for {
        WaitFor::Pop { end, count } => {
            let wanted = count.unwrap_or(1);
            let popped = store.edit(key, now, |entry| {
                entry.label(pop_event(*end));
                match entry.list_mut(IfMissing::Leave) {
                    Ok(Some(list)) => {
                        pop_some(list, *end, wanted, ctx.shared.clients.output_buffer_limit())
                    }
                    _ => Vec::new(),
                }
            });
            if popped.is_empty() {
                return Serve::Nothing;
            }
            match count {
                None => {
                    enc.array(2);
                    enc.bulk(key);
                    enc.bulk(&popped[0]);
                }
                Some(count) => {
                    let _ = reply_mpop(&mut enc, key, &popped, *count);
                }
            }
            Some(GiveBack {
                key: key.to_vec(),
                taken: Taken::List {
                    end: *end,
                    elements: popped,
                },
            })
        }
        WaitFor::Move {
            destination,
            from,
            to,
        } => {
            // Two store edits under the pusher's own gate only: unlike LMOVE, a client on
            // another worker may glimpse the element in neither list for that moment.
            let moved: Result<Option<Vec<u8>>, StoreError> =
                super::list_ops::move_in_store(ctx, key, destination, *from, *to);
            let Ok(Some(element)) = moved else {
                return Serve::Nothing;
            };
            enc.bulk(&element);
            fed.push(destination.clone());
            None
        }
        WaitFor::ZPop { max, count } => {
            let popped = zset_pop::pop_key(ctx, key, *max, count.unwrap_or(1));
            let Ok(Some(members)) = popped else {
                return Serve::Nothing;
            };
            match count {
                None => reply_bzpop(&mut enc, key, &members[0].0, members[0].1),
                Some(_) => reply_zmpop(&mut enc, key, &members),
            }
            Some(GiveBack {
                key: key.to_vec(),
                taken: Taken::ZSet { members },
            })
        }
        // Parked on no key: never served by a push.
        WaitFor::Acks => return Serve::Nothing,
        // Served by `stream_read::serve_stream_waiters` after stream writes.
        WaitFor::Stream(_) => return Serve::Nothing,
    };
    let served = Served {
        conn_id: waiter.conn_id,
        seq: waiter.seq,
        reply,
        give_back,
    };
    ctx.shared.blocked.wake(waiter.worker, served, store, now);
    Serve::Done
}
