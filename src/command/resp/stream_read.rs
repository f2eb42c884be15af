//! XREAD and XREADGROUP, their BLOCK form, and the serving of blocked stream readers after a
//! write that may feed them (XADD, XGROUP DESTROY).
//!
//! A read first tries at once. With nothing to give and BLOCK, the client parks in the
//! shared [`crate::blocking::Registry`] (as the blocking list pops do) waiting after, per key,
//! the id it asked for (`$` resolved to the stream's last id now); inside MULTI it answers
//! the timeout reply at once. [`serve_stream_waiters`] runs after each XADD on the key: every
//! waiter whose wait the key now satisfies gets its reply, first blocked first (a group read
//! delivers as its consumer, so later group waiters see only what is left).
//! Never touches a socket: replies for other clients go to their workers through the registry.

use ferrocache_protocol::resp::{Encoder, RespVersion};

use super::error::RespError;
use super::stream_common::{
    consumer_count, parse_count, parse_id, reply_entries, reply_entry, reply_id, INVALID_ID,
};
use super::{err, is, reply_store_error, Call};
use crate::blocking::{Served, StreamWait, WaitFor};
use crate::command::{Context, Flow};
use crate::store::stream::StreamId;
use crate::store::{IfMissing, Object, ReadOptions, StoreError};

/// Entries a blocked read with no COUNT gets at most (Redis `XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_DEFAULT_COUNT: usize = 1000;

/// What XREAD / XREADGROUP asked.
struct ReadArgs<'a> {
    block_ms: Option<u64>,
    count: usize,
    group: Option<(&'a [u8], &'a [u8])>,
    noack: bool,
    keys: Vec<&'a [u8]>,
    /// Per key: `$` (None for XREAD), `>` (None for XREADGROUP) or an id.
    ids: Vec<Option<StreamId>>,
}

fn nogroup(key: &[u8], group: &[u8]) -> String {
    format!(
        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    )
}

fn parse_read<'a>(
    args: &'a [std::borrow::Cow<'_, [u8]>],
    group_read: bool,
) -> Result<ReadArgs<'a>, String> {
    let mut read = ReadArgs {
        block_ms: None,
        count: 0,
        group: None,
        noack: false,
        keys: Vec::new(),
        ids: Vec::new(),
    };
    let mut streams_at = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        if is(opt, "BLOCK") && more > 0 {
            i += 1;
            match super::parse_i64(&args[i]) {
                Some(ms) if ms < 0 => return Err("ERR timeout is negative".into()),
                Some(ms) => read.block_ms = Some(ms as u64),
                None => return Err("ERR timeout is not an integer or out of range".into()),
            }
        } else if is(opt, "COUNT") && more > 0 {
            i += 1;
            read.count = parse_count(&args[i])?.max(0) as usize;
        } else if is(opt, "STREAMS") && more > 0 {
            let n = args.len() - i - 1;
            if !n.is_multiple_of(2) {
                return Err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.".into());
            }
            streams_at = Some(i + 1);
            break;
        } else if is(opt, "GROUP") && more >= 2 {
            if !group_read {
                return Err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            read.group = Some((&args[i + 1][..], &args[i + 2][..]));
            i += 2;
        } else if is(opt, "NOACK") {
            if !group_read {
                return Err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
                        .into(),
                );
            }
            read.noack = true;
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 1;
    }
    let Some(at) = streams_at else {
        return Err(err::SYNTAX.into());
    };
    if group_read && read.group.is_none() {
        return Err("ERR Missing GROUP option for XREADGROUP".into());
    }
    let n = (args.len() - at) / 2;
    read.keys = args[at..at + n].iter().map(|k| &k[..]).collect();
    for arg in &args[at + n..] {
        let arg = &arg[..];
        let id = if arg == b"$" {
            if group_read {
                return Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into());
            }
            None
        } else if arg == b">" {
            if !group_read {
                return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into());
            }
            None
        } else {
            Some(parse_id(arg, 0, true).ok_or(INVALID_ID)?)
        };
        read.ids.push(id);
    }
    Ok(read)
}

/// Writes the reply's frame for `parts` keys: an array in RESP2, a map in RESP3.
fn reply_frame(enc: &mut Encoder<'_>, parts: usize) {
    if enc.is_resp3() {
        enc.map(parts);
    } else {
        enc.array(parts);
    }
}

/// Writes one key's part (`key, entries` framed as RESP2 wants) into `out`.
fn key_part(
    version: RespVersion,
    limit: usize,
    key: &[u8],
    body: impl FnOnce(&mut Encoder<'_>),
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, version);
    enc.output_limit = limit;
    if version != RespVersion::Resp3 {
        enc.array(2);
    }
    enc.bulk(key);
    body(&mut enc);
    out
}

/// XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...
pub fn xread(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    read(call, enc, false)
}

/// XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...
pub fn xreadgroup(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    read(call, enc, true)
}

fn read(
    call: &mut Call<'_, '_>,
    enc: &mut Encoder<'_>,
    group_read: bool,
) -> Result<Flow, RespError> {
    let args = match parse_read(call.args, group_read) {
        Ok(args) => args,
        Err(message) => {
            return Err(message.into());
        }
    };
    // Resolve `$` and check every key (type, group) before serving any.
    let mut after: Vec<StreamId> = Vec::with_capacity(args.keys.len());
    for (key, id) in args.keys.iter().zip(&args.ids) {
        let looked =
            super::stream_common::with_stream(call, key, |stream| match (stream, args.group) {
                (Some(s), Some((group, _))) => s.group(group).map(|g| g.last_id),
                (Some(s), None) => Some(s.last_id()),
                (None, Some(_)) => None,
                (None, None) => Some(StreamId::MIN),
            });
        match looked {
            Err(error) => {
                reply_store_error(enc, error);
                return Ok(Flow::Continue);
            }
            Ok(None) => {
                let (group, _) = args.group.expect("only group reads miss");
                return Err(nogroup(key, group).into());
            }
            // `$` (or `>`: the group's id is read again when serving).
            Ok(Some(last)) => after.push(id.unwrap_or(last)),
        }
    }
    let (version, limit) = (enc.version, enc.output_limit);
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for (i, key) in args.keys.iter().enumerate() {
        let part = match args.group {
            None => read_plain(call.ctx, key, after[i], args.count, version, limit),
            Some((group, consumer)) => {
                let request = GroupRead {
                    group,
                    consumer,
                    noack: args.noack,
                    history: args.ids[i],
                    count: args.count,
                };
                match read_group(call.ctx, key, &request, version, limit) {
                    Ok(part) => part,
                    Err(message) => {
                        return Err(message.into());
                    }
                }
            }
        };
        parts.extend(part);
    }
    if !parts.is_empty() {
        reply_frame(enc, parts.len());
        for part in parts {
            enc.out.extend_from_slice(&part);
        }
        return Ok(Flow::Continue);
    }
    let Some(block_ms) = args.block_ms else {
        enc.null_array();
        return Ok(Flow::Continue);
    };
    let wait = StreamWait {
        after,
        count: if args.count > 0 {
            args.count
        } else {
            BLOCKED_DEFAULT_COUNT
        },
        group: args
            .group
            .map(|(g, c)| (g.to_vec(), c.to_vec(), args.noack)),
        gone_reply: {
            let mut reply = Vec::new();
            Encoder::new(&mut reply, enc.version)
                .error("UNBLOCKED the stream key no longer exists");
            reply
        },
    };
    let keys = args.keys.iter().map(|k| k.to_vec()).collect();
    super::blocking::park_or_answer_with(
        call,
        enc,
        keys,
        WaitFor::Stream(wait),
        block_ms,
        serve_stream_waiters,
    )
}

/// XREAD's part for one key: entries after `after`, if any.
fn read_plain(
    ctx: &Context<'_>,
    key: &[u8],
    after: StreamId,
    count: usize,
    version: RespVersion,
    limit: usize,
) -> Option<Vec<u8>> {
    let start = after.incr()?;
    let take = if count == 0 { usize::MAX } else { count };
    ctx.shared
        .store
        .get(key, ctx.now_ms, ReadOptions::plain(), |view| {
            let Some(Object::Stream(stream)) = view.and_then(|item| item.object()) else {
                return None;
            };
            let entries = || stream.range(start, StreamId::MAX, false).take(take);
            entries().next()?;
            Some(key_part(version, limit, key, |enc| {
                reply_entries(enc, entries)
            }))
        })
}

/// One key of a group read.
struct GroupRead<'a> {
    group: &'a [u8],
    consumer: &'a [u8],
    noack: bool,
    /// The id of a history read (None: `>`, new entries).
    history: Option<StreamId>,
    count: usize,
}

/// XREADGROUP's part for one key: new entries delivered to the consumer (None if there are
/// none), or its pending history from an id (always a part). `Err` is the error reply.
fn read_group(
    ctx: &Context<'_>,
    key: &[u8],
    request: &GroupRead<'_>,
    version: RespVersion,
    limit: usize,
) -> Result<Option<Vec<u8>>, String> {
    let now = ctx.now_ms;
    let result = ctx.shared.store.edit(key, now, |entry| {
        // Delivering entries names no event; creating the consumer does.
        entry.unlabelled();
        let Some(stream) = entry.stream_mut(IfMissing::Leave)? else {
            return Ok(Err(nogroup(key, request.group)));
        };
        let consumers_before = consumer_count(stream, request.group);
        let part = match request.history {
            Some(after) => {
                // The consumer's pending entries after the id (past the last: none).
                let start = after.incr().unwrap_or(StreamId::MAX);
                let count = if after == StreamId::MAX {
                    1
                } else {
                    request.count
                };
                let Ok(mut history) =
                    stream.read_history(request.group, request.consumer, start, count, now)
                else {
                    return Ok(Err(nogroup(key, request.group)));
                };
                history.retain(|(id, _)| *id > after);
                Some(key_part(version, limit, key, |enc| {
                    enc.array(history.len());
                    for (id, present) in history {
                        match stream.get(id).filter(|_| present) {
                            Some(found) => reply_entry(enc, &found),
                            None => {
                                enc.array(2);
                                reply_id(enc, id);
                                enc.null_array();
                            }
                        }
                    }
                }))
            }
            None => {
                let Ok(ids) = stream.read_new(
                    request.group,
                    request.consumer,
                    request.count,
                    request.noack,
                    now,
                ) else {
                    return Ok(Err(nogroup(key, request.group)));
                };
                match (ids.first(), ids.last()) {
                    (Some(&first), Some(&last)) => Some(key_part(version, limit, key, |enc| {
                        reply_entries(enc, || stream.range(first, last, false))
                    })),
                    _ => None,
                }
            }
        };
        if consumer_count(stream, request.group) > consumers_before {
            entry.label("xgroup-createconsumer");
        }
        Ok::<_, StoreError>(Ok(part))
    });
    match result {
        Ok(part) => part,
        Err(StoreError::WrongType) => Err(err::WRONGTYPE.into()),
        Err(StoreError::OutOfMemory) => Err(err::OOM.into()),
        Err(StoreError::TooLarge) => Err(err::TOO_LARGE.into()),
    }
}

/// Notes that `key` may feed blocked readers: served now, or once the running EXEC ends.
pub fn stream_ready(call: &mut Call<'_, '_>, key: &[u8]) {
    if call.session.in_exec {
        if !call.session.ready_streams.iter().any(|k| k == key) {
            call.session.ready_streams.push(key.to_vec());
        }
    } else {
        serve_stream_waiters(call.ctx, key);
    }
}

/// Serves the clients blocked reading `key`, first blocked first: each whose wait the key
/// now satisfies gets its reply through its worker; the others stay parked.
pub fn serve_stream_waiters(ctx: &Context<'_>, key: &[u8]) {
    let registry = &ctx.shared.blocked;
    for seq in registry.queued(key) {
        let Some(waiter) = registry.take(seq) else {
            continue;
        };
        let WaitFor::Stream(wait) = &waiter.wait_for else {
            registry.restore(waiter);
            continue;
        };
        let version = if waiter.resp3 {
            RespVersion::Resp3
        } else {
            RespVersion::Resp2
        };
        let limit = ctx.shared.clients.output_buffer_limit();
        let Some(at) = waiter.keys.iter().position(|k| k == key) else {
            registry.restore(waiter);
            continue;
        };
        let part = match &wait.group {
            None => Ok(read_plain(
                ctx,
                key,
                wait.after[at],
                wait.count,
                version,
                limit,
            )),
            Some((group, consumer, noack)) => {
                let request = GroupRead {
                    group,
                    consumer,
                    noack: *noack,
                    history: None,
                    count: wait.count,
                };
                read_group(ctx, key, &request, version, limit).map_err(|_| {
                    "NOGROUP the consumer group this client was blocked on no longer exists"
                        .to_string()
                })
            }
        };
        let mut reply = Vec::new();
        let mut enc = Encoder::new(&mut reply, version);
        match part {
            Ok(None) => {
                registry.restore(waiter);
                continue;
            }
            Ok(Some(part)) => {
                reply_frame(&mut enc, 1);
                enc.out.extend_from_slice(&part);
            }
            Err(message) => enc.error(&message),
        }
        let served = Served {
            conn_id: waiter.conn_id,
            seq: waiter.seq,
            reply,
            give_back: None,
        };
        registry.wake(waiter.worker, served, &ctx.shared.store, ctx.now_ms);
    }
}
