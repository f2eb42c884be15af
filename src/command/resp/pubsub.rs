//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.
//!
//! Subscriptions are recorded twice: in the connection's session (what this client listens
//! to, for its replies and for cleanup on close) and in the shared
//! [`Registry`](crate::pubsub::Registry) (who listens to a channel, for PUBLISH). Replies to
//! (un)subscribe are push frames in RESP3 and arrays in RESP2, with the client's running
//! subscription count, as Redis sends them.

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::Call;
use crate::command::Flow;
use crate::pubsub::{Space, Subscriber};

fn subscriber(call: &Call<'_, '_>) -> Subscriber {
    Subscriber {
        worker: call.ctx.worker,
        conn_id: call.session.info.id,
        version: call.session.version,
    }
}

/// One confirmation: `[kind, name, count]`.
fn confirm(enc: &mut Encoder<'_>, kind: &[u8], name: Option<&[u8]>, count: usize) {
    enc.push(3);
    enc.bulk(kind);
    match name {
        Some(name) => enc.bulk(name),
        None => enc.null(),
    }
    enc.integer(count as i64);
}

/// SUBSCRIBE / SSUBSCRIBE channel [channel ...]
pub fn subscribe(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let shard = call.arg(0).eq_ignore_ascii_case(b"SSUBSCRIBE");
    let (space, kind): (Space, &[u8]) = if shard {
        (Space::Shard, b"ssubscribe")
    } else {
        (Space::Global, b"subscribe")
    };
    let me = subscriber(call);
    for channel in &call.args[1..] {
        let set = if shard {
            &mut call.session.shard_channels
        } else {
            &mut call.session.channels
        };
        if set.insert(channel.to_vec()) {
            call.ctx.shared.pubsub.subscribe(space, channel, me);
        }
        let count = if shard {
            call.session.shard_channels.len()
        } else {
            call.session.subscription_count()
        };
        confirm(enc, kind, Some(channel), count);
    }
    Ok(Flow::Continue)
}

/// UNSUBSCRIBE / SUNSUBSCRIBE [channel ...] (none = all)
pub fn unsubscribe(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let shard = call.arg(0).eq_ignore_ascii_case(b"SUNSUBSCRIBE");
    let (space, kind): (Space, &[u8]) = if shard {
        (Space::Shard, b"sunsubscribe")
    } else {
        (Space::Global, b"unsubscribe")
    };
    let id = call.session.info.id;
    let names: Vec<Vec<u8>> = if call.args.len() > 1 {
        call.args[1..].iter().map(|c| c.to_vec()).collect()
    } else {
        let set = if shard {
            &call.session.shard_channels
        } else {
            &call.session.channels
        };
        let mut all: Vec<Vec<u8>> = set.iter().cloned().collect();
        all.sort();
        all
    };
    if names.is_empty() {
        let count = if shard {
            0
        } else {
            call.session.subscription_count()
        };
        confirm(enc, kind, None, count);
        return Ok(Flow::Continue);
    }
    for channel in names {
        let set = if shard {
            &mut call.session.shard_channels
        } else {
            &mut call.session.channels
        };
        if set.remove(&channel) {
            call.ctx.shared.pubsub.unsubscribe(space, &channel, id);
        }
        let count = if shard {
            call.session.shard_channels.len()
        } else {
            call.session.subscription_count()
        };
        confirm(enc, kind, Some(&channel), count);
    }
    Ok(Flow::Continue)
}

/// PSUBSCRIBE pattern [pattern ...]
pub fn psubscribe(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let me = subscriber(call);
    for pattern in &call.args[1..] {
        if call.session.patterns.insert(pattern.to_vec()) {
            call.ctx.shared.pubsub.psubscribe(pattern, me);
        }
        confirm(
            enc,
            b"psubscribe",
            Some(pattern),
            call.session.subscription_count(),
        );
    }
    Ok(Flow::Continue)
}

/// PUNSUBSCRIBE [pattern ...] (none = all)
pub fn punsubscribe(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let id = call.session.info.id;
    let names: Vec<Vec<u8>> = if call.args.len() > 1 {
        call.args[1..].iter().map(|c| c.to_vec()).collect()
    } else {
        let mut all: Vec<Vec<u8>> = call.session.patterns.iter().cloned().collect();
        all.sort();
        all
    };
    if names.is_empty() {
        confirm(
            enc,
            b"punsubscribe",
            None,
            call.session.subscription_count(),
        );
        return Ok(Flow::Continue);
    }
    for pattern in names {
        if call.session.patterns.remove(&pattern) {
            call.ctx.shared.pubsub.punsubscribe(&pattern, id);
        }
        confirm(
            enc,
            b"punsubscribe",
            Some(&pattern),
            call.session.subscription_count(),
        );
    }
    Ok(Flow::Continue)
}

/// PUBLISH / SPUBLISH channel message: the number of clients that received it.
pub fn publish(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let space = if call.arg(0).eq_ignore_ascii_case(b"SPUBLISH") {
        Space::Shard
    } else {
        Space::Global
    };
    let receivers = call
        .ctx
        .shared
        .pubsub
        .publish(space, call.arg(1), call.arg(2));
    enc.integer(receivers as i64);
    Ok(Flow::Continue)
}

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | SHARDCHANNELS [pattern] |
/// SHARDNUMSUB [channel ...]
pub fn pubsub(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let registry = &call.ctx.shared.pubsub;
    let sub = call.arg(1).to_ascii_uppercase();
    match (sub.as_slice(), call.args.len()) {
        (b"CHANNELS" | b"SHARDCHANNELS", 2 | 3) => {
            let space = if sub == b"CHANNELS" {
                Space::Global
            } else {
                Space::Shard
            };
            let names = registry.channels(space, call.args.get(2).map(|p| &p[..]));
            enc.array(names.len());
            for name in names {
                enc.bulk(&name);
            }
        }
        (b"NUMSUB" | b"SHARDNUMSUB", _) => {
            let space = if sub == b"NUMSUB" {
                Space::Global
            } else {
                Space::Shard
            };
            let channels = &call.args[2..];
            enc.map(channels.len());
            for channel in channels {
                enc.bulk(channel);
                enc.integer(registry.numsub(space, channel) as i64);
            }
        }
        (b"NUMPAT", 2) => enc.integer(registry.numpat() as i64),
        _ => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Ok(Flow::Continue)
}

/// Whether a command may run on a RESP2 connection in subscribed mode.
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "ssubscribe"
            | "psubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "punsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}
