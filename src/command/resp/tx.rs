//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queued commands are copied out of the read buffer at MULTI time and run by EXEC with every
//! worker's gate held, so no client on any worker runs in between. WATCH remembers each key's
//! cas unique (or its absence); every write, expiry, eviction and typed-value change gives a
//! key a new cas unique, so EXEC aborts (null reply) if any watched key changed.

use std::borrow::Cow;

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::{run_queued, Call};
use crate::command::Flow;

fn current_cas(call: &Call<'_, '_>, key: &[u8]) -> Option<u64> {
    call.ctx
        .shared
        .store
        .peek(key, call.ctx.now_ms, |entry| entry.cas())
}

/// MULTI
pub fn multi(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.session.queued.is_some() {
        return Err("ERR MULTI calls can not be nested".into());
    }
    call.session.queued = Some(Vec::new());
    call.session.queued_bytes = 0;
    call.session.queue_failed = false;
    enc.ok();
    Ok(Flow::Continue)
}

/// EXEC (dispatched with every gate held)
pub fn exec(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(queued) = call.session.queued.take() else {
        return Err("ERR EXEC without MULTI".into());
    };
    let watched = std::mem::take(&mut call.session.watched);
    if std::mem::take(&mut call.session.queue_failed) {
        return Err("EXECABORT Transaction discarded because of previous errors.".into());
    }
    if watched
        .iter()
        .any(|(key, cas)| current_cas(call, key) != *cas)
    {
        enc.null_array();
        return Ok(Flow::Continue);
    }
    enc.array(queued.len());
    let mut flow = Flow::Continue;
    call.session.in_exec = true;
    let mut discarded = Vec::new();
    for command in &queued {
        let args: Vec<Cow<'_, [u8]>> = command
            .iter()
            .map(|a| Cow::Borrowed(a.as_slice()))
            .collect();
        if let Some(refusal) =
            super::acl::refused_at_exec(call.commands, call.session, call.ctx, &args)
        {
            enc.error(&refusal);
            continue;
        }
        let mut inner = Call {
            ctx: call.ctx,
            commands: call.commands,
            session: &mut *call.session,
            args: &args,
        };
        let ran = if enc.output_full() {
            // Past the output limit the connection closes, but every queued command still
            // runs (a transaction is all or nothing); what they answer is dropped, one reply
            // at a time, as Redis drops output for a client it will close.
            discarded.clear();
            let mut sink = Encoder::new(&mut discarded, enc.version);
            sink.output_limit = 0;
            run_queued(&mut inner, &mut sink)
        } else {
            run_queued(&mut inner, enc)
        };
        if ran != Flow::Continue {
            flow = Flow::Close;
        }
    }
    call.session.in_exec = false;
    // Blocked clients are served once the whole transaction has run.
    let ready = std::mem::take(&mut *call.session.ready_keys.borrow_mut());
    for key in ready {
        super::blocking::serve_waiters(call.ctx, &key);
    }
    for key in std::mem::take(&mut call.session.ready_streams) {
        super::stream_read::serve_stream_waiters(call.ctx, &key);
    }
    Ok(flow)
}

/// DISCARD
pub fn discard(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.session.queued.take().is_none() {
        return Err("ERR DISCARD without MULTI".into());
    }
    call.session.queue_failed = false;
    call.session.watched.clear();
    enc.ok();
    Ok(Flow::Continue)
}

/// WATCH key [key ...]
pub fn watch(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.session.queued.is_some() {
        return Err("ERR WATCH inside MULTI is not allowed".into());
    }
    for key in &call.args[1..] {
        let cas = current_cas(call, key);
        call.session.watched.push((key.to_vec(), cas));
    }
    enc.ok();
    Ok(Flow::Continue)
}

/// UNWATCH
pub fn unwatch(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    call.session.watched.clear();
    enc.ok();
    Ok(Flow::Continue)
}
