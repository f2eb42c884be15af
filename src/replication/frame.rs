//! The replication stream's records: one per store effect, in two renderings.
//!
//! - The **rich frame**, sent between ferrocache nodes: exactly what the effect describes,
//!   with memcached flags, the primary's CAS, the absolute expiry and the value as stored
//!   (compressed if it is), so a replica reproduces the item bit for bit.
//! - The **RESP rendering**, sent to a stock Redis replica, and whose length is the record's
//!   share of the replication offset for every replica (see the module doc of
//!   [`crate::replication`]).
//!
//! ```text
//! frame  = b'P' record          a put: a `.fcs` record (persist/format.rs), tags 1..6
//!        | b'D' key             the key is gone (deleted, expired, evicted, moved away)
//!        | b'F'                 every key is gone
//!        | b'K'                 a keepalive (the primary's PING every 10 s of silence)
//!        | b'G'                 ack now, please (a client waits in WAIT)
//! wire   = frame_len u32 LE | resp_len u32 LE | frame      (ferrocache replicas only)
//!
//! RESP   put string:     SET key value [PXAT ms]
//!        put hash:       DEL key, HSET key f v ..., [PEXPIREAT key ms]
//!        put zset:       DEL key, ZADD key score member ..., [PEXPIREAT key ms]
//!        put list / set: DEL key, RPUSH / SADD key ..., [PEXPIREAT key ms]
//!        removal:        DEL key
//!        flush:          FLUSHALL
//!        keepalive:      PING
//!        ack request:    REPLCONF GETACK *
//! ```
//! A hash field's own expiry has no RESP command a Redis 7.0 replica knows, so it is left out
//! of the RESP rendering (as the RDB export leaves it out); the rich frame keeps it.
//!
//! Pure encoding and decoding: no I/O, no lock, no store call. Called under a shard lock
//! (encoding an effect), so it only copies.

use std::io::Write as _;

use crate::persist::format::{self, Block, Record, RecordValue};
use crate::store::{stored_plain_len, Effect, Object, StoredForm, StoredItem};

pub const KIND_PUT: u8 = b'P';
pub const KIND_DEL: u8 = b'D';
pub const KIND_FLUSH: u8 = b'F';
pub const KIND_PING: u8 = b'K';
/// The keepalive's frame and the length of its RESP rendering (`*1\r\n$4\r\nPING\r\n`).
pub const PING_FRAME: &[u8] = b"K";
pub const PING_RESP_LEN: u32 = 14;
pub const KIND_GETACK: u8 = b'G';
/// The ack request's frame and the length of its RESP rendering
/// (`*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n`).
pub const GETACK_FRAME: &[u8] = b"G";
pub const GETACK_RESP_LEN: u32 = 37;
/// Bytes before a frame on the wire.
pub const WIRE_HEADER_LEN: usize = 8;

/// Why a received frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("malformed replication frame")]
    Malformed,
    #[error("a value in a replication frame does not decompress")]
    Corrupt,
}

/// A decoded frame.
pub enum Decoded<'a> {
    Put(Record<'a>),
    Del(&'a [u8]),
    Flush,
    Ping,
    GetAck,
}

/// Encodes `effect` as a rich frame into `out` (cleared first); returns the length of its
/// RESP rendering. `scratch` is reused for a chunked value.
pub fn encode(effect: &Effect<'_>, out: &mut Vec<u8>, scratch: &mut Vec<u8>) -> u32 {
    out.clear();
    match effect {
        Effect::Put { item, .. } => {
            out.push(KIND_PUT);
            format::encode_item(item, out, scratch);
            put_len(item, scratch) as u32
        }
        Effect::Removed { key, .. } => {
            out.push(KIND_DEL);
            out.extend_from_slice(key);
            let mut count = Count(0);
            command(&mut count, &[b"DEL", key]);
            count.0 as u32
        }
        Effect::Flushed => {
            out.push(KIND_FLUSH);
            let mut count = Count(0);
            command(&mut count, &[b"FLUSHALL"]);
            count.0 as u32
        }
    }
}

/// Decodes one rich frame.
pub fn decode(frame: &[u8]) -> Result<Decoded<'_>, FrameError> {
    let (&kind, rest) = frame.split_first().ok_or(FrameError::Malformed)?;
    match kind {
        KIND_PUT => match format::decode_block(0, rest).map_err(|_| FrameError::Malformed)? {
            Block::Records(mut records) if records.len() == 1 => {
                Ok(Decoded::Put(records.pop().ok_or(FrameError::Malformed)?))
            }
            _ => Err(FrameError::Malformed),
        },
        KIND_DEL if !rest.is_empty() => Ok(Decoded::Del(rest)),
        KIND_FLUSH if rest.is_empty() => Ok(Decoded::Flush),
        KIND_PING if rest.is_empty() => Ok(Decoded::Ping),
        KIND_GETACK if rest.is_empty() => Ok(Decoded::GetAck),
        _ => Err(FrameError::Malformed),
    }
}

/// Appends the RESP rendering of a rich frame to `out`.
pub fn render_resp(frame: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    match decode(frame)? {
        Decoded::Put(record) => {
            let plain;
            let value = match &record.value {
                RecordValue::String { bytes, compressed } => {
                    if *compressed {
                        plain =
                            crate::store::unpack_stored(bytes, crate::persist::rdb::MAX_STRING_LEN)
                                .ok_or(FrameError::Corrupt)?;
                        Value::String(&plain)
                    } else {
                        Value::String(bytes)
                    }
                }
                RecordValue::Object(object) => Value::Object(object),
            };
            render_put(&mut Bytes(out), record.key, value, record.expiry_ms);
        }
        Decoded::Del(key) => command(&mut Bytes(out), &[b"DEL", key]),
        Decoded::Flush => command(&mut Bytes(out), &[b"FLUSHALL"]),
        Decoded::Ping => command(&mut Bytes(out), &[b"PING"]),
        Decoded::GetAck => command(&mut Bytes(out), &[b"REPLCONF", b"GETACK", b"*"]),
    }
    Ok(())
}

/// The RESP length of an item's put, counted without rendering it.
fn put_len(item: &StoredItem<'_>, scratch: &[u8]) -> usize {
    let mut count = Count(0);
    let key = item.key();
    let expiry = item.expiry_ms();
    match item.stored() {
        StoredForm::Raw(bytes) => string_len(&mut count, key, bytes.len(), expiry),
        StoredForm::Compressed(bytes) => {
            string_len(&mut count, key, stored_plain_len(bytes), expiry)
        }
        StoredForm::Chunked { compressed, .. } => {
            // `encode_item` just assembled the value into `scratch`.
            let len = if compressed {
                stored_plain_len(scratch)
            } else {
                scratch.len()
            };
            string_len(&mut count, key, len, expiry)
        }
        StoredForm::Object(object) => render_put(&mut count, key, Value::Object(object), expiry),
    }
    count.0
}

fn string_len(count: &mut Count, key: &[u8], value_len: usize, expiry_ms: u64) {
    let args = if expiry_ms != 0 { 5 } else { 3 };
    count.0 += header_len(b'*', args) + bulk_len(3) + bulk_len(key.len()) + bulk_len(value_len);
    if expiry_ms != 0 {
        count.0 += bulk_len(4) + bulk_len(digits(expiry_ms));
    }
}

enum Value<'a> {
    String(&'a [u8]),
    Object(&'a Object),
}

/// Where RESP goes: bytes, or only their count.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
    fn header(&mut self, kind: u8, n: usize);
    fn bulk(&mut self, bytes: &[u8]) {
        self.header(b'$', bytes.len());
        self.put(bytes);
        self.put(b"\r\n");
    }
}

struct Bytes<'a>(&'a mut Vec<u8>);
struct Count(usize);

impl Sink for Bytes<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn header(&mut self, kind: u8, n: usize) {
        self.0.push(kind);
        let _ = write!(self.0, "{n}");
        self.0.extend_from_slice(b"\r\n");
    }
}

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
    fn header(&mut self, _kind: u8, n: usize) {
        self.0 += header_len(b'*', n);
    }
}

/// Decimal digits of `n`.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

fn header_len(_kind: u8, n: usize) -> usize {
    1 + digits(n as u64) + 2
}

fn bulk_len(len: usize) -> usize {
    header_len(b'$', len) + len + 2
}

fn command(sink: &mut impl Sink, args: &[&[u8]]) {
    sink.header(b'*', args.len());
    for arg in args {
        sink.bulk(arg);
    }
}

/// A score as Redis reads it back exactly (shortest round-trip form; `inf`, `-inf`).
fn score_text(score: f64) -> String {
    if score.is_infinite() {
        if score > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{score}")
    }
}

fn render_put(sink: &mut impl Sink, key: &[u8], value: Value<'_>, expiry_ms: u64) {
    let expiry = expiry_ms.to_string();
    match value {
        Value::String(bytes) => {
            if expiry_ms != 0 {
                command(sink, &[b"SET", key, bytes, b"PXAT", expiry.as_bytes()]);
            } else {
                command(sink, &[b"SET", key, bytes]);
            }
            return;
        }
        Value::Object(object) => {
            command(sink, &[b"DEL", key]);
            match object {
                Object::Hash(hash) => {
                    sink.header(b'*', 2 + 2 * hash.len());
                    sink.bulk(b"HSET");
                    sink.bulk(key);
                    for field in hash.iter() {
                        sink.bulk(&field.name);
                        sink.bulk(&field.value);
                    }
                }
                Object::ZSet(zset) => {
                    sink.header(b'*', 2 + 2 * zset.len());
                    sink.bulk(b"ZADD");
                    sink.bulk(key);
                    for (member, score) in zset.iter() {
                        sink.bulk(score_text(score).as_bytes());
                        sink.bulk(member);
                    }
                }
                Object::List(list) => {
                    sink.header(b'*', 2 + list.len());
                    sink.bulk(b"RPUSH");
                    sink.bulk(key);
                    for element in list.iter() {
                        sink.bulk(element);
                    }
                }
                Object::Set(set) => {
                    sink.header(b'*', 2 + set.len());
                    sink.bulk(b"SADD");
                    sink.bulk(key);
                    for member in set.iter() {
                        sink.bulk(&member);
                    }
                }
                // A stream as its entries with their ids, then its last id; consumer groups
                // are not carried to a stock Redis replica (ferrocache replicas get them).
                Object::Stream(stream) => {
                    for entry in stream.entries() {
                        let id = entry.id.to_string();
                        sink.header(b'*', 3 + 2 * entry.pairs.len());
                        sink.bulk(b"XADD");
                        sink.bulk(key);
                        sink.bulk(id.as_bytes());
                        for (field, value) in &entry.pairs {
                            sink.bulk(field);
                            sink.bulk(value);
                        }
                    }
                    let last = stream.last_id().to_string();
                    command(sink, &[b"XSETID", key, last.as_bytes()]);
                }
            }
        }
    }
    if expiry_ms != 0 {
        command(sink, &[b"PEXPIREAT", key, expiry.as_bytes()]);
    }
}

/// Appends a frame's wire form (header, then the frame) to `out`.
pub fn put_wire(frame: &[u8], resp_len: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&resp_len.to_le_bytes());
    out.extend_from_slice(frame);
}

/// A whole wire frame: the frame, its RESP length, the bytes it took.
pub type Wire<'a> = (&'a [u8], u32, usize);

/// The first whole wire frame at the front of `input`. `None` until it is all there; a
/// frame longer than `max_len` is refused before it is buffered.
pub fn take_wire(input: &[u8], max_len: usize) -> Result<Option<Wire<'_>>, FrameError> {
    let Some(header) = input.get(..WIRE_HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let resp_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > max_len || len == 0 {
        return Err(FrameError::Malformed);
    }
    Ok(input
        .get(WIRE_HEADER_LEN..WIRE_HEADER_LEN + len)
        .map(|frame| (frame, resp_len, WIRE_HEADER_LEN + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_lengths_match_rendered_ones() {
        for (key, value, expiry) in [
            (&b"k"[..], &b"v"[..], 0u64),
            (b"key", &[7u8; 300][..], 1_800_000_000_123),
            (b"", b"", 5),
        ] {
            let mut count = Count(0);
            string_len(&mut count, key, value.len(), expiry);
            let mut out = Vec::new();
            render_put(&mut Bytes(&mut out), key, Value::String(value), expiry);
            assert_eq!(count.0, out.len());
        }
        let mut zset = crate::store::ZSet::new();
        zset.insert(b"a", 1.5);
        zset.insert(b"b", f64::INFINITY);
        let object = Object::ZSet(zset);
        let mut count = Count(0);
        render_put(&mut count, b"z", Value::Object(&object), 99);
        let mut out = Vec::new();
        render_put(&mut Bytes(&mut out), b"z", Value::Object(&object), 99);
        assert_eq!(count.0, out.len());
        assert_eq!(
            out,
            b"*2\r\n$3\r\nDEL\r\n$1\r\nz\r\n*6\r\n$4\r\nZADD\r\n$1\r\nz\r\n$3\r\n1.5\r\n$1\r\na\r\n$3\r\ninf\r\n$1\r\nb\r\n*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nz\r\n$2\r\n99\r\n"
        );
    }

    #[test]
    fn wire_frames_need_all_their_bytes_and_a_sane_length() {
        let mut out = Vec::new();
        put_wire(b"F", 14, &mut out);
        assert_eq!(take_wire(&out[..5], 100), Ok(None));
        assert_eq!(take_wire(&out, 100), Ok(Some((&b"F"[..], 14, 9))));
        assert_eq!(take_wire(&out, 0), Err(FrameError::Malformed));
        assert!(matches!(decode(b"F"), Ok(Decoded::Flush)));
        let mut ping = Vec::new();
        render_resp(PING_FRAME, &mut ping).unwrap();
        assert_eq!(ping.len(), PING_RESP_LEN as usize);
        let mut getack = Vec::new();
        render_resp(GETACK_FRAME, &mut getack).unwrap();
        assert_eq!(getack.len(), GETACK_RESP_LEN as usize);
        assert!(decode(b"X").is_err() && decode(b"D").is_err() && decode(b"").is_err());
    }
}
