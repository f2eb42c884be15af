//! The argument words and replies every stream command shares: ids and intervals, counts,
//! the entry reply, and reading or writing the stream at a key (`Err` for another type).
//! Commands live in `stream`, `stream_group`, `stream_read` and `stream_info`; this module
//! runs none of them.

use ferrocache_protocol::resp::Encoder;

use super::{err, parse_i64, reply_store_error, Call};
use crate::store::stream::{EntryRef, StreamId, StreamObject};
use crate::store::{IfMissing, Object, StoreError};

pub const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// Redis's `string2ull` for an id part: digits only, fits in u64.
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// An id as clients write it (`ms-seq`, `ms` = `ms-missing_seq`, and unless `strict` `-` and
/// `+`); `None` is [`INVALID_ID`].
pub fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Option<StreamId> {
    if arg.len() > 127 {
        return None;
    }
    match arg {
        b"-" if !strict => return Some(StreamId::MIN),
        b"+" if !strict => return Some(StreamId::MAX),
        _ => {}
    }
    match arg.iter().position(|&b| b == b'-') {
        Some(dash) => Some(StreamId::new(
            parse_u64(&arg[..dash])?,
            parse_u64(&arg[dash + 1..])?,
        )),
        None => Some(StreamId::new(parse_u64(arg)?, missing_seq)),
    }
}

/// A range bound: `(` makes it exclusive. `start` bounds step past it, end bounds before.
pub fn parse_interval(arg: &[u8], start: bool) -> Result<StreamId, &'static str> {
    let missing_seq = if start { 0 } else { u64::MAX };
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id(&arg[1..], missing_seq, true).ok_or(INVALID_ID)?;
        return if start {
            id.incr().ok_or("ERR invalid start ID for the interval")
        } else {
            id.decr().ok_or("ERR invalid end ID for the interval")
        };
    }
    parse_id(arg, missing_seq, false).ok_or(INVALID_ID)
}

/// A count argument as Redis's `getLongLongFromObjectOrReply` reads it.
pub fn parse_count(arg: &[u8]) -> Result<i64, &'static str> {
    parse_i64(arg).ok_or(err::NOT_INTEGER)
}

/// Writes an id as a bulk string.
pub fn reply_id(enc: &mut Encoder<'_>, id: StreamId) {
    enc.bulk(id.to_string().as_bytes());
}

/// Writes one entry: `[id, [field, value, ...]]`.
pub fn reply_entry(enc: &mut Encoder<'_>, entry: &EntryRef<'_>) {
    enc.array(2);
    reply_id(enc, entry.id);
    enc.array(entry.pairs.len() * 2);
    for (field, value) in &entry.pairs {
        enc.bulk(field);
        enc.bulk(value);
    }
}

/// Writes the entries `entries` yields as an array, stopping once the output limit is
/// passed. The iterator is made twice (a count, then the reply) so no copy of the range is
/// held whatever its size.
pub fn reply_entries<'e, I: Iterator<Item = EntryRef<'e>>>(
    enc: &mut Encoder<'_>,
    entries: impl Fn() -> I,
) {
    enc.array(entries().count());
    for entry in entries() {
        if enc.output_full() {
            break;
        }
        reply_entry(enc, &entry);
    }
}

/// The store error of a stream read: the key holds another type.
pub fn wrong_type(enc: &mut Encoder<'_>) {
    reply_store_error(enc, StoreError::WrongType);
}

/// Runs `read` on the stream at `key` (None if absent); `Err` if the key holds another type.
pub fn with_stream<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    read: impl FnOnce(Option<&StreamObject>) -> R,
) -> Result<R, StoreError> {
    super::with_object(
        call,
        key,
        |object| match object {
            Object::Stream(stream) => Some(&**stream),
            _ => None,
        },
        read,
    )
}

/// Runs `write` on the stream at `key` (created if `missing` says so). `write` pushes the
/// keyspace events its change is named by (redis-server 7.0's `t_stream.c`: `xadd`, `xtrim`,
/// `xdel`, `xsetid`, `xgroup-*`); a change it names none of publishes nothing.
pub fn write_stream<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    missing: IfMissing,
    write: impl FnOnce(Option<&mut StreamObject>, &mut Vec<&'static str>) -> R,
) -> Result<R, StoreError> {
    call.ctx.shared.store.edit(key, call.ctx.now_ms, |entry| {
        let mut events = Vec::new();
        let result = write(entry.stream_mut(missing)?, &mut events);
        label_stream_edit(entry, &events);
        Ok(result)
    })
}

/// Names `entry`'s change by `events`, or by none when there are none.
pub fn label_stream_edit(entry: &mut crate::store::Entry<'_>, events: &[&'static str]) {
    if events.is_empty() {
        entry.unlabelled();
    }
    for event in events {
        entry.label(event);
    }
}

/// How many consumers `group` of `stream` has (0 without the group): a read or claim that
/// made the count grow created its consumer, named `xgroup-createconsumer`.
pub fn consumer_count(stream: &StreamObject, group: &[u8]) -> usize {
    stream.group(group).map_or(0, |g| g.consumers.len())
}

/// Pushes `xgroup-createconsumer` when `group` now has more consumers than `before`.
pub fn note_created_consumer(
    stream: &StreamObject,
    group: &[u8],
    before: usize,
    events: &mut Vec<&'static str>,
) {
    if consumer_count(stream, group) > before {
        events.push("xgroup-createconsumer");
    }
}

/// Parses ids (strict: no `-`/`+`) from `args[from..]`.
pub fn parse_ids(args: &[std::borrow::Cow<'_, [u8]>], from: usize) -> Option<Vec<StreamId>> {
    args[from..].iter().map(|a| parse_id(a, 0, true)).collect()
}
