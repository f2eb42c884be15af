//! The blocking list pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) and the serving of
//! parked clients after a push.
//!
//! A blocking pop first tries at once, as its non-blocking twin does. With nothing to take it
//! parks the client in the shared [`crate::blocking::Registry`] and answers
//! [`Flow::Block`]: the connection stops serving its input until a push serves it or its
//! timeout passes (both handled by its worker). Inside MULTI/EXEC it never blocks: it answers
//! the timeout reply at once, as Redis does. After every push, [`serve_waiters`] hands the
//! new elements to the key's waiters, first blocked first served.
//! This module never touches a socket: replies for other clients are encoded here and
//! handed to their workers through the registry.

use ferrocache_protocol::resp::{Encoder, RespVersion};

use super::list_ops::{mpop_first, parse_end, parse_mpop, pop_some, reply_mpop};
use super::{err, is, reply_store_error, Call};
use crate::blocking::{GiveBack, Parked, Served, WaitFor, Waiter};
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
) -> Flow {
    if call.session.in_exec {
        // Redis's words inside EXEC: a null bulk for the moves, a null array for the pops
        // (a timeout answers a null array for all of them).
        match wait_for {
            WaitFor::Move { .. } => enc.null(),
            WaitFor::Pop { .. } | WaitFor::Stream(_) => enc.null_array(),
        }
        return Flow::Continue;
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
        deadline_ms: (timeout_ms > 0).then(|| ctx.now_ms.saturating_add(timeout_ms)),
        timeout_reply: timeout_reply(enc.version),
    });
    // A push on another worker may have come between the first try and the parking: serve
    // the keys now, in queue order (possibly this very client, through its worker's inbox).
    for key in &keys {
        serve_waiters(ctx, key);
        super::stream_read::serve_stream_waiters(ctx, key);
    }
    Flow::Block
}

/// BLPOP / BRPOP key [key ...] timeout
pub fn blpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let end = if is(call.arg(0), "BLPOP") {
        End::Head
    } else {
        End::Tail
    };
    let timeout_ms = match parse_timeout(call.arg(call.args.len() - 1)) {
        Ok(ms) => ms,
        Err(message) => {
            enc.error(message);
            return Flow::Continue;
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
                return Flow::Continue;
            }
            Ok(Some(element)) => {
                enc.array(2);
                enc.bulk(key);
                enc.bulk(&element);
                return Flow::Continue;
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
pub fn blmove(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let ends = if call.args.len() == 4 {
        Some((End::Tail, End::Head))
    } else {
        parse_end(call.arg(3)).zip(parse_end(call.arg(4)))
    };
    let Some((from, to)) = ends else {
        enc.error(err::SYNTAX);
        return Flow::Continue;
    };
    let timeout_ms = match parse_timeout(call.arg(call.args.len() - 1)) {
        Ok(ms) => ms,
        Err(message) => {
            enc.error(message);
            return Flow::Continue;
        }
    };
    let (source, destination) = (call.arg(1).to_vec(), call.arg(2).to_vec());
    // EXCLUSIVE in the command table: no other client runs between the pop and the push.
    match super::list_ops::move_in_store(call.ctx, &source, &destination, from, to) {
        Ok(Some(element)) => {
            enc.bulk(&element);
            serve_waiters(call.ctx, &destination);
            Flow::Continue
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
            Flow::Continue
        }
    }
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn blmpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let timeout_ms = match parse_timeout(call.arg(1)) {
        Ok(ms) => ms,
        Err(message) => {
            enc.error(message);
            return Flow::Continue;
        }
    };
    let mpop = match parse_mpop(call.args, 2) {
        Ok(mpop) => mpop,
        Err(message) => {
            enc.error(message);
            return Flow::Continue;
        }
    };
    match mpop_first(call, &mpop, enc.output_limit) {
        Ok(Some(popped)) => reply_mpop(enc, &popped.key, &popped.elements, mpop.count),
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
            Flow::Continue
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

/// Hands what `key` now holds to the clients blocked on it, first blocked first served, until
/// the list is empty or nobody waits. Called after every push.
pub fn serve_waiters(ctx: &Context<'_>, key: &[u8]) {
    let registry = &ctx.shared.blocked;
    // Each round serves one waiter or stops; moves may feed other keys' waiters (bounded:
    // each serve takes one waiter out of the registry for good).
    let mut fed = Vec::new();
    while let Some(waiter) = registry.take_first(key) {
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
            let popped = store.edit(key, now, |entry| match entry.list_mut(IfMissing::Leave) {
                Ok(Some(list)) => {
                    pop_some(list, *end, wanted, ctx.shared.clients.output_buffer_limit())
                }
                _ => Vec::new(),
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
                end: *end,
                elements: popped,
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
