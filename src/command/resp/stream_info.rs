//! XINFO STREAM [FULL [COUNT n]] | GROUPS | CONSUMERS | HELP: what a stream and its groups
//! hold, with Redis 7.0's field names and order (`xinfoCommand`). Read-only.
//!
//! `radix-tree-keys` and `radix-tree-nodes` both report the stream's node count: the nodes
//! sit in a B-tree here, not a radix tree, so there is no separate inner-node figure.

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::reply_help;
use super::stream::{parse_count, reply_entries, reply_entry, reply_id, with_stream};
use super::{is, reply_store_error, Call};
use crate::command::Flow;
use crate::store::stream::{Group, StreamId, StreamObject};

const HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Print this help.",
];

fn subcommand_error(call: &Call<'_, '_>, enc: &mut Encoder<'_>) {
    enc.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
        String::from_utf8_lossy(call.arg(1))
    ));
}

fn reply_optional(enc: &mut Encoder<'_>, value: Option<u64>) {
    match value {
        Some(n) => enc.integer(n as i64),
        None => enc.null(),
    }
}

/// XINFO subcommand ...
pub fn xinfo(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let table = [("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)];
    if !super::stream_group::subcommand_ok(call, enc, &table) {
        return Ok(Flow::Continue);
    }
    if is(call.arg(1), "HELP") {
        if call.args.len() == 2 {
            reply_help(enc, HELP);
        } else {
            subcommand_error(call, enc);
        }
        return Ok(Flow::Continue);
    }
    if call.args.len() < 3 {
        subcommand_error(call, enc);
        return Ok(Flow::Continue);
    }
    let now = call.ctx.now_ms;
    let sub = call.arg(1).to_ascii_uppercase();
    let argc = call.args.len();
    let (key, name) = (call.arg(2), call.arg(3.min(argc - 1)));
    let full = match stream_options(call) {
        Ok(full) => full,
        Err(None) => {
            subcommand_error(call, enc);
            return Ok(Flow::Continue);
        }
        Err(Some(message)) => {
            return Err(message.into());
        }
    };
    let result = with_stream(call, key, |stream| {
        let Some(s) = stream else {
            enc.error("ERR no such key");
            return;
        };
        match sub.as_slice() {
            b"CONSUMERS" if argc == 4 => {
                let Some(group) = s.group(name) else {
                    enc.error(&format!(
                        "NOGROUP No such consumer group '{}' for key name '{}'",
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(key)
                    ));
                    return;
                };
                enc.array(group.consumers.len());
                for (consumer, state) in &group.consumers {
                    enc.map(3);
                    enc.bulk(b"name");
                    enc.bulk(consumer);
                    enc.bulk(b"pending");
                    enc.integer(state.pel.len() as i64);
                    enc.bulk(b"idle");
                    enc.integer(now.saturating_sub(state.seen_time) as i64);
                }
            }
            b"GROUPS" if argc == 3 => {
                enc.array(s.groups().len());
                for (group_name, group) in s.groups() {
                    enc.map(6);
                    enc.bulk(b"name");
                    enc.bulk(group_name);
                    enc.bulk(b"consumers");
                    enc.integer(group.consumers.len() as i64);
                    enc.bulk(b"pending");
                    enc.integer(group.pel.len() as i64);
                    enc.bulk(b"last-delivered-id");
                    reply_id(enc, group.last_id);
                    enc.bulk(b"entries-read");
                    reply_optional(enc, group.entries_read);
                    enc.bulk(b"lag");
                    reply_optional(enc, s.lag(group));
                }
            }
            b"STREAM" => stream_info(enc, s, full),
            _ => subcommand_error(call, enc),
        }
    });
    if let Err(error) = result {
        reply_store_error(enc, error);
    }
    Ok(Flow::Continue)
}

/// XINFO STREAM's options: `None` plain, `Some(count)` FULL (0 = everything). `Err(None)`
/// is the subcommand syntax error.
fn stream_options(call: &Call<'_, '_>) -> Result<Option<usize>, Option<&'static str>> {
    if !is(call.arg(1), "STREAM") || call.args.len() == 3 {
        return Ok(None);
    }
    let options = &call.args[3..];
    if (options.len() != 1 && options.len() != 3) || !is(&options[0], "FULL") {
        return Err(None);
    }
    if options.len() == 1 {
        return Ok(Some(10));
    }
    if !is(&options[1], "COUNT") {
        return Err(None);
    }
    let count = parse_count(&options[2]).map_err(Some)?;
    Ok(Some(if count < 0 { 10 } else { count as usize }))
}

fn stream_info(enc: &mut Encoder<'_>, s: &StreamObject, full: Option<usize>) {
    enc.map(if full.is_some() { 9 } else { 10 });
    enc.bulk(b"length");
    enc.integer(s.len() as i64);
    enc.bulk(b"radix-tree-keys");
    enc.integer(s.node_count() as i64);
    enc.bulk(b"radix-tree-nodes");
    enc.integer(s.node_count() as i64);
    enc.bulk(b"last-generated-id");
    reply_id(enc, s.last_id());
    enc.bulk(b"max-deleted-entry-id");
    reply_id(enc, s.max_deleted_id());
    enc.bulk(b"entries-added");
    enc.integer(s.entries_added() as i64);
    enc.bulk(b"recorded-first-entry-id");
    reply_id(enc, s.first_id());
    let Some(count) = full else {
        enc.bulk(b"groups");
        enc.integer(s.groups().len() as i64);
        for (field, last) in [(&b"first-entry"[..], false), (b"last-entry", true)] {
            enc.bulk(field);
            match s.edge(last) {
                Some(entry) => reply_entry(enc, &entry),
                None => enc.null(),
            }
        }
        return;
    };
    let limit = if count == 0 { usize::MAX } else { count };
    enc.bulk(b"entries");
    reply_entries(enc, || {
        s.range(StreamId::MIN, StreamId::MAX, false).take(limit)
    });
    enc.bulk(b"groups");
    enc.array(s.groups().len());
    for (name, group) in s.groups() {
        full_group(enc, s, name, group, limit);
    }
}

fn full_group(enc: &mut Encoder<'_>, s: &StreamObject, name: &[u8], group: &Group, limit: usize) {
    enc.map(7);
    enc.bulk(b"name");
    enc.bulk(name);
    enc.bulk(b"last-delivered-id");
    reply_id(enc, group.last_id);
    enc.bulk(b"entries-read");
    reply_optional(enc, group.entries_read);
    enc.bulk(b"lag");
    reply_optional(enc, s.lag(group));
    enc.bulk(b"pel-count");
    enc.integer(group.pel.len() as i64);
    enc.bulk(b"pending");
    let pending: Vec<_> = group.pel.iter().take(limit).collect();
    enc.array(pending.len());
    for (id, nack) in pending {
        enc.array(4);
        reply_id(enc, *id);
        enc.bulk(&nack.consumer);
        enc.integer(nack.delivery_time as i64);
        enc.integer(nack.delivery_count as i64);
    }
    enc.bulk(b"consumers");
    enc.array(group.consumers.len());
    for (consumer, state) in &group.consumers {
        enc.map(4);
        enc.bulk(b"name");
        enc.bulk(consumer);
        enc.bulk(b"seen-time");
        enc.integer(state.seen_time as i64);
        enc.bulk(b"pel-count");
        enc.integer(state.pel.len() as i64);
        enc.bulk(b"pending");
        let own: Vec<_> = state
            .pel
            .iter()
            .filter_map(|id| group.pel.get(id).map(|nack| (id, nack)))
            .take(limit)
            .collect();
        enc.array(own.len());
        for (id, nack) in own {
            enc.array(3);
            reply_id(enc, *id);
            enc.integer(nack.delivery_time as i64);
            enc.integer(nack.delivery_count as i64);
        }
    }
}
