//! Consumer-group commands: XGROUP (CREATE SETID DESTROY CREATECONSUMER DELCONSUMER HELP),
//! XACK, XPENDING, XCLAIM and XAUTOCLAIM, over the store's stream groups.
//!
//! Replies and errors follow Redis 7.0's `t_stream.c`, including the order in which it checks
//! things (the key and group before the arguments where Redis does so). Every change goes
//! through the store's edit of the key; XGROUP DESTROY wakes the group's blocked readers
//! (they get NOGROUP).

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::stream::{
    parse_count, parse_id, parse_ids, parse_interval, reply_entry, reply_id, with_stream,
    write_stream, INVALID_ID,
};
use super::stream_common::{consumer_count, note_created_consumer};
use super::{err, is, parse_i64, reply_store_error, Call};
use crate::command::Flow;
use crate::store::stream::{AutoClaim, Claim, StreamError, StreamId, StreamObject};
use crate::store::IfMissing;

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn subcommand_error(call: &Call<'_, '_>, enc: &mut Encoder<'_>) {
    enc.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        text(call.arg(1)),
        call.name().to_uppercase()
    ));
}

/// Checks a container command's subcommand against Redis 7's table of subcommand arities
/// (the dispatcher's check there); false when it replied an error.
pub fn subcommand_ok(call: &Call<'_, '_>, enc: &mut Encoder<'_>, table: &[(&str, i32)]) -> bool {
    let name = call.name();
    let sub = String::from_utf8_lossy(call.arg(1)).to_lowercase();
    let Some(&(_, arity)) = table.iter().find(|(s, _)| *s == sub) else {
        enc.error(&format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            String::from_utf8_lossy(call.arg(1)),
            name.to_uppercase()
        ));
        return false;
    };
    let argc = call.args.len() as i32;
    if (arity >= 0 && argc != arity) || (arity < 0 && argc < -arity) {
        enc.error(&format!(
            "ERR wrong number of arguments for '{name}|{sub}' command"
        ));
        return false;
    }
    true
}

fn nogroup(key: &[u8], group: &[u8]) -> String {
    format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        text(key),
        text(group)
    )
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> String {
    format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        text(group),
        text(key)
    )
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Print this help.",
];

/// XGROUP subcommand ...
pub fn xgroup(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let table = [
        ("create", -5),
        ("setid", -5),
        ("destroy", 4),
        ("createconsumer", 5),
        ("delconsumer", 5),
        ("help", 2),
    ];
    if !subcommand_ok(call, enc, &table) {
        return Ok(Flow::Continue);
    }
    let sub = call.arg(1).to_ascii_uppercase();
    let argc = call.args.len();
    if argc == 2 && sub == b"HELP" {
        super::reply_help(enc, XGROUP_HELP);
        return Ok(Flow::Continue);
    }
    if argc < 4 {
        subcommand_error(call, enc);
        return Ok(Flow::Continue);
    }
    let (create, setid) = (sub == b"CREATE", sub == b"SETID");
    let (mut mkstream, mut entries_read) = (false, None);
    let mut i = 5;
    while i < argc {
        if create && is(call.arg(i), "MKSTREAM") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && is(call.arg(i), "ENTRIESREAD") && i + 1 < argc {
            match parse_count(call.arg(i + 1)) {
                Ok(n) if n >= 0 => entries_read = Some(n as u64),
                Ok(-1) => entries_read = None,
                Ok(_) => {
                    return Err("ERR value for ENTRIESREAD must be positive or -1".into());
                }
                Err(message) => {
                    return Err(message.into());
                }
            }
            i += 2;
        } else {
            subcommand_error(call, enc);
            return Ok(Flow::Continue);
        }
    }
    let (key, group) = (call.arg(2), call.arg(3));
    let state = with_stream(call, key, |s| s.map(|s| s.group(group).is_some()));
    let has_group = match state {
        Err(error) => {
            reply_store_error(enc, error);
            return Ok(Flow::Continue);
        }
        Ok(None) if !mkstream => {
            return Err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.".into());
        }
        Ok(state) => state.unwrap_or(false),
    };
    if !has_group && !mkstream && (setid || sub == b"CREATECONSUMER" || sub == b"DELCONSUMER") {
        return Err(nogroup_for_key(group, key).into());
    }
    let now = call.ctx.now_ms;
    let id_arg = |call: &Call<'_, '_>, missing_seq_strict: bool| -> Result<Option<StreamId>, ()> {
        if call.arg(4) == b"$" {
            Ok(None)
        } else {
            parse_id(call.arg(4), 0, missing_seq_strict)
                .map(Some)
                .ok_or(())
        }
    };
    match sub.as_slice() {
        b"CREATE" if (5..=8).contains(&argc) => {
            let Ok(id) = id_arg(call, true) else {
                return Err(INVALID_ID.into());
            };
            let missing = if mkstream {
                IfMissing::Create
            } else {
                IfMissing::Leave
            };
            match write_stream(call, key, missing, |s, events| {
                let created = s.map(|s| s.create_group(group, id, entries_read));
                if matches!(created, Some(Ok(()))) {
                    events.push("xgroup-create");
                }
                created
            }) {
                Err(error) => reply_store_error(enc, error),
                Ok(Some(Ok(()))) => enc.ok(),
                Ok(Some(Err(_))) => enc.error("BUSYGROUP Consumer Group name already exists"),
                Ok(None) => enc.error(&nogroup_for_key(group, key)),
            }
        }
        b"SETID" if argc == 5 || argc == 7 => {
            let Ok(id) = id_arg(call, false) else {
                return Err(INVALID_ID.into());
            };
            group_edit(call, enc, |s, events| {
                s.set_group_id(group, id, entries_read)?;
                events.push("xgroup-setid");
                Ok(None)
            });
        }
        b"DESTROY" if argc == 4 => {
            match write_stream(call, key, IfMissing::Leave, |s, events| {
                let destroyed = s.is_some_and(|s| s.destroy_group(group));
                if destroyed {
                    events.push("xgroup-destroy");
                }
                destroyed
            }) {
                Err(error) => reply_store_error(enc, error),
                Ok(destroyed) => {
                    enc.integer(i64::from(destroyed));
                    if destroyed {
                        let key = key.to_vec();
                        super::stream_read::stream_ready(call, &key);
                    }
                }
            }
        }
        b"CREATECONSUMER" if argc == 5 => {
            let consumer = call.arg(4);
            group_edit(call, enc, |s, events| {
                let created = s.create_consumer(group, consumer, now)?;
                if created {
                    events.push("xgroup-createconsumer");
                }
                Ok(Some(i64::from(created)))
            });
        }
        b"DELCONSUMER" if argc == 5 => {
            let consumer = call.arg(4);
            group_edit(call, enc, |s, events| {
                let before = consumer_count(s, group);
                let pending = s.delete_consumer(group, consumer)?;
                if consumer_count(s, group) < before {
                    events.push("xgroup-delconsumer");
                }
                Ok(Some(pending as i64))
            });
        }
        _ => subcommand_error(call, enc),
    }
    Ok(Flow::Continue)
}

/// Runs a group change on the stream at `call.arg(2)`: replies the integer it gives, `+OK`
/// for none, NOGROUP if the group is gone.
fn group_edit(
    call: &Call<'_, '_>,
    enc: &mut Encoder<'_>,
    change: impl FnOnce(&mut StreamObject, &mut Vec<&'static str>) -> Result<Option<i64>, StreamError>,
) {
    let (key, group) = (call.arg(2), call.arg(3));
    match write_stream(call, key, IfMissing::Leave, |s, events| {
        s.map(|s| change(s, events))
    }) {
        Err(error) => reply_store_error(enc, error),
        Ok(Some(Ok(Some(n)))) => enc.integer(n),
        Ok(Some(Ok(None))) => enc.ok(),
        Ok(_) => enc.error(&nogroup_for_key(group, key)),
    }
}

/// XACK key group id [id ...]
pub fn xack(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let group = call.arg(2);
    match with_stream(call, call.arg(1), |s| {
        s.is_some_and(|s| s.group(group).is_some())
    }) {
        Err(error) => {
            reply_store_error(enc, error);
            return Ok(Flow::Continue);
        }
        Ok(false) => {
            enc.integer(0);
            return Ok(Flow::Continue);
        }
        Ok(true) => {}
    }
    let Some(ids) = parse_ids(call.args, 3) else {
        return Err(INVALID_ID.into());
    };
    match write_stream(call, call.arg(1), IfMissing::Leave, |s, _| {
        s.map_or(0, |s| s.ack(group, &ids))
    }) {
        Ok(n) => enc.integer(n as i64),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
pub fn xpending(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let argc = call.args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(err::SYNTAX.into());
    }
    let mut extended = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0i64;
        if is(call.arg(3), "IDLE") {
            match parse_count(call.arg(4)) {
                Ok(n) => min_idle = n,
                Err(message) => {
                    return Err(message.into());
                }
            }
            if argc < 8 {
                return Err(err::SYNTAX.into());
            }
            at += 2;
        }
        let count = match parse_count(call.arg(at + 2)) {
            Ok(n) => n.max(0) as usize,
            Err(message) => {
                return Err(message.into());
            }
        };
        let bounds = parse_interval(call.arg(at), true)
            .and_then(|s| Ok((s, parse_interval(call.arg(at + 1), false)?)));
        let (start, end) = match bounds {
            Ok(b) => b,
            Err(message) => {
                return Err(message.into());
            }
        };
        let consumer = (at + 3 < argc).then(|| call.arg(at + 3));
        extended = Some((min_idle, start, end, count, consumer));
    }
    let (key, group) = (call.arg(1), call.arg(2));
    let now = call.ctx.now_ms;
    let result = with_stream(call, key, |s| {
        let Some(g) = s.and_then(|s| s.group(group)) else {
            enc.error(&nogroup(key, group));
            return;
        };
        let Some((min_idle, start, end, count, consumer)) = extended else {
            let summary = g.summary();
            enc.array(4);
            enc.integer(summary.count as i64);
            match summary.bounds {
                None => {
                    enc.null();
                    enc.null();
                    enc.null_array();
                }
                Some((first, last)) => {
                    reply_id(enc, first);
                    reply_id(enc, last);
                    enc.array(summary.per_consumer.len());
                    for (name, n) in &summary.per_consumer {
                        enc.array(2);
                        enc.bulk(name);
                        enc.bulk(n.to_string().as_bytes());
                    }
                }
            }
            return;
        };
        let ids: Vec<StreamId> = match consumer {
            Some(name) => match g.consumers.get(name) {
                Some(c) => c.pel.range(start..=end.max(start)).copied().collect(),
                None => Vec::new(),
            },
            None => g
                .pel
                .range(start..=end.max(start))
                .map(|(id, _)| *id)
                .collect(),
        };
        let rows: Vec<_> = ids
            .iter()
            .filter(|id| **id <= end)
            .filter_map(|id| g.pel.get(id).map(|n| (*id, n)))
            .filter(|(_, n)| {
                min_idle <= 0 || now.saturating_sub(n.delivery_time) as i64 >= min_idle
            })
            .take(count)
            .collect();
        enc.array(rows.len());
        for (id, nack) in rows {
            enc.array(4);
            reply_id(enc, id);
            enc.bulk(&nack.consumer);
            enc.integer(now.saturating_sub(nack.delivery_time) as i64);
            enc.integer(nack.delivery_count as i64);
        }
    });
    if let Err(error) = result {
        reply_store_error(enc, error);
    }
    Ok(Flow::Continue)
}

/// Parses a non-negative-clamped integer option of XCLAIM, with its own error words.
fn claim_number(arg: &[u8], what: &str) -> Result<i64, String> {
    parse_i64(arg).ok_or_else(|| format!("ERR Invalid {what} argument for XCLAIM"))
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (key, group, consumer) = (call.arg(1), call.arg(2), call.arg(3));
    match with_stream(call, key, |s| s.is_some_and(|s| s.group(group).is_some())) {
        Err(error) => {
            reply_store_error(enc, error);
            return Ok(Flow::Continue);
        }
        Ok(false) => {
            return Err(nogroup(key, group).into());
        }
        Ok(true) => {}
    }
    let now = call.ctx.now_ms;
    let parsed = (|| -> Result<(Claim, Vec<StreamId>, Option<StreamId>), String> {
        let min_idle = claim_number(call.arg(4), "min-idle-time")?.max(0) as u64;
        let mut claim = Claim {
            min_idle_ms: min_idle,
            ..Claim::default()
        };
        let mut ids = Vec::new();
        let mut j = 5;
        while j < call.args.len() {
            match parse_id(call.arg(j), 0, true) {
                Some(id) => ids.push(id),
                None => break,
            }
            j += 1;
        }
        let mut last_id = None;
        let mut delivery: Option<i64> = None;
        while j < call.args.len() {
            let more = call.args.len() - 1 - j;
            let opt = call.arg(j);
            if is(opt, "FORCE") {
                claim.force = true;
            } else if is(opt, "JUSTID") {
                claim.just_id = true;
            } else if is(opt, "IDLE") && more > 0 {
                j += 1;
                delivery = Some(now as i64 - claim_number(call.arg(j), "IDLE option")?);
            } else if is(opt, "TIME") && more > 0 {
                j += 1;
                delivery = Some(claim_number(call.arg(j), "TIME option")?);
            } else if is(opt, "RETRYCOUNT") && more > 0 {
                j += 1;
                claim.retry_count =
                    Some(claim_number(call.arg(j), "RETRYCOUNT option")?.max(0) as u64);
            } else if is(opt, "LASTID") && more > 0 {
                j += 1;
                last_id = Some(parse_id(call.arg(j), 0, true).ok_or(INVALID_ID)?);
            } else {
                return Err(format!("ERR Unrecognized XCLAIM option '{}'", text(opt)));
            }
            j += 1;
        }
        claim.delivery_time = delivery.map(|t| {
            if t < 0 || t > now as i64 {
                now
            } else {
                t as u64
            }
        });
        Ok((claim, ids, last_id))
    })();
    let (claim, ids, last_id) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            return Err(message.into());
        }
    };
    let result = write_stream(call, key, IfMissing::Leave, |s, events| {
        let Some(s) = s else {
            enc.error(&nogroup(key, group));
            return;
        };
        let before = consumer_count(s, group);
        match s.claim(group, consumer, &ids, claim, last_id, now) {
            Err(_) => enc.error(&nogroup(key, group)),
            Ok(claimed) => {
                note_created_consumer(s, group, before, events);
                reply_claimed(enc, s, &claimed, claim.just_id)
            }
        }
    });
    if let Err(error) = result {
        reply_store_error(enc, error);
    }
    Ok(Flow::Continue)
}

fn reply_claimed(enc: &mut Encoder<'_>, stream: &StreamObject, ids: &[StreamId], just_id: bool) {
    enc.array(ids.len());
    for &id in ids {
        if enc.output_full() {
            break;
        }
        match stream.get(id).filter(|_| !just_id) {
            Some(entry) => reply_entry(enc, &entry),
            None => reply_id(enc, id),
        }
    }
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(min_idle) = parse_i64(call.arg(4)) else {
        return Err("ERR Invalid min-idle-time argument for XAUTOCLAIM".into());
    };
    let start = match parse_interval(call.arg(5), true) {
        Ok(start) => start,
        Err(message) => {
            return Err(message.into());
        }
    };
    let (mut count, mut just_id) = (100usize, false);
    let mut j = 6;
    while j < call.args.len() {
        let more = call.args.len() - 1 - j;
        if is(call.arg(j), "COUNT") && more > 0 {
            match parse_i64(call.arg(j + 1)) {
                Some(n) if (1..=i64::MAX / 10).contains(&n) => count = n as usize,
                _ => {
                    return Err("ERR COUNT must be > 0".into());
                }
            }
            j += 1;
        } else if is(call.arg(j), "JUSTID") {
            just_id = true;
        } else {
            return Err(err::SYNTAX.into());
        }
        j += 1;
    }
    let (key, group, consumer) = (call.arg(1), call.arg(2), call.arg(3));
    let now = call.ctx.now_ms;
    let scan = AutoClaim {
        start,
        min_idle_ms: min_idle.max(0) as u64,
        count,
        just_id,
    };
    let result = write_stream(call, key, IfMissing::Leave, |s, events| {
        let Some(s) = s else {
            enc.error(&nogroup(key, group));
            return;
        };
        let before = consumer_count(s, group);
        match s.auto_claim(group, consumer, scan, now) {
            Err(_) => enc.error(&nogroup(key, group)),
            Ok((claimed, next, deleted)) => {
                note_created_consumer(s, group, before, events);
                enc.array(3);
                reply_id(enc, next);
                reply_claimed(enc, s, &claimed, just_id);
                enc.array(deleted.len());
                for id in deleted {
                    reply_id(enc, id);
                }
            }
        }
    });
    if let Err(error) = result {
        reply_store_error(enc, error);
    }
    Ok(Flow::Continue)
}
