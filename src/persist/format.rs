//! The snapshot file format (`.fcs`, version 1): what a record of each kind looks like in
//! bytes, and blocks that each carry a checksum, so a truncated, corrupt or future-version
//! file is refused before anything of it is loaded.
//!
//! ```text
//! file   = magic "\x89FCS\r\n\x1a\n" (8 bytes, as PNG's) | version u32 | created_ms u64
//!          | block* | end block
//! block  = payload_len u32 | crc32(payload) u32 | payload
//! payload = record*                                  (records never span blocks)
//! record = tag u8 | key bytes | flags u32 | cas u64 | expiry_ms u64 | value
//!   tag 1 string as sent:      value = bytes
//!   tag 2 string compressed:   value = bytes (the store's compressed form)
//!   tag 3 hash:   count u32, then per field: name bytes | value bytes | expires_at_ms u64
//!   tag 4 zset:   count u32, then per member: member bytes | score f64 bits u64
//!   tag 5 list:   count u32, then per element: bytes (head first)
//!   tag 6 set:    count u32, then per member: bytes
//!   tag 7 stream: last_id | first_id | max_deleted_id | entries_added u64
//!                 | count u32, per entry: id | pairs u32 | (field bytes | value bytes)*
//!                 | groups u32, per group: name bytes | last_id | entries_read u64 (MAX =
//!                   unknown) | consumers u32, per consumer: name bytes | seen_ms u64
//!                 | pending u32, per entry: id | owner bytes | delivery_ms u64 | count u64
//!   id = ms u64 | seq u64
//! end block = a block whose payload is tag 0xFF | record count u64 (the count of every
//!   record before it), and nothing may follow it
//! bytes  = len u32 | len bytes
//! ```
//! All integers little-endian. Pure encoding and decoding: no I/O, no store; every length
//! read is checked against the bytes that remain before anything is allocated for it.

use crate::store::stream::{IdRequest, StreamId, StreamObject};
use crate::store::{End, HashObject, ListObject, Object, SetObject, StoredForm, StoredItem, ZSet};

pub const MAGIC: &[u8; 8] = b"\x89FCS\r\n\x1a\n";
pub const VERSION: u32 = 1;
/// Bytes of the file header.
pub const HEADER_LEN: usize = 8 + 4 + 8;
/// Bytes before a block's payload.
pub const BLOCK_HEADER_LEN: usize = 8;
/// A block is closed once its payload passes this (a single large record may pass it).
pub const BLOCK_TARGET: usize = 1 << 20;

const TAG_RAW: u8 = 1;
const TAG_COMPRESSED: u8 = 2;
const TAG_HASH: u8 = 3;
const TAG_ZSET: u8 = 4;
const TAG_LIST: u8 = 5;
const TAG_SET: u8 = 6;
const TAG_STREAM: u8 = 7;
const TAG_END: u8 = 0xFF;

/// Why a snapshot file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a ferrocache snapshot (bad magic)")]
    NotASnapshot,
    #[error("snapshot format version {0} is newer than this server reads ({VERSION})")]
    FutureVersion(u32),
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("block at byte {0} fails its checksum")]
    Checksum(usize),
    #[error("malformed record in the block at byte {0}")]
    Malformed(usize),
    #[error("the end block counts {expected} records but the file holds {found}")]
    CountMismatch { expected: u64, found: u64 },
    #[error("bytes follow the end block at byte {0}")]
    TrailingBytes(usize),
}

/// The file header.
pub fn header(created_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&created_ms.to_le_bytes());
    out
}

/// Reads the header: the creation time.
pub fn read_header(file: &[u8]) -> Result<u64, FormatError> {
    if file.len() < MAGIC.len() || &file[..MAGIC.len()] != MAGIC {
        return Err(FormatError::NotASnapshot);
    }
    if file.len() < HEADER_LEN {
        return Err(FormatError::Truncated(file.len()));
    }
    let version = u32::from_le_bytes(file[8..12].try_into().expect("4 bytes"));
    if version > VERSION {
        return Err(FormatError::FutureVersion(version));
    }
    Ok(u64::from_le_bytes(
        file[12..20].try_into().expect("8 bytes"),
    ))
}

/// Frames `payload` as a block.
pub fn block(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&block_header(payload));
    out.extend_from_slice(payload);
}

/// The bytes that go before `payload` to make it a block (written apart from the payload,
/// so a saver need not copy a block to frame it).
pub fn block_header(payload: &[u8]) -> [u8; BLOCK_HEADER_LEN] {
    let mut header = [0; BLOCK_HEADER_LEN];
    header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header
}

/// The end block's payload.
pub fn end_payload(records: u64) -> Vec<u8> {
    let mut out = vec![TAG_END];
    out.extend_from_slice(&records.to_le_bytes());
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends the record of one item to a block's payload; `scratch` is reused for a chunked
/// value's assembly.
pub fn encode_item(item: &StoredItem<'_>, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    let form = item.stored();
    let tag = match &form {
        StoredForm::Raw(_) => TAG_RAW,
        StoredForm::Compressed(_) => TAG_COMPRESSED,
        StoredForm::Chunked { compressed, .. } => {
            if *compressed {
                TAG_COMPRESSED
            } else {
                TAG_RAW
            }
        }
        StoredForm::Object(Object::Hash(_)) => TAG_HASH,
        StoredForm::Object(Object::ZSet(_)) => TAG_ZSET,
        StoredForm::Object(Object::List(_)) => TAG_LIST,
        StoredForm::Object(Object::Set(_)) => TAG_SET,
        StoredForm::Object(Object::Stream(_)) => TAG_STREAM,
    };
    out.push(tag);
    put_bytes(out, item.key());
    out.extend_from_slice(&item.flags().to_le_bytes());
    out.extend_from_slice(&item.cas().to_le_bytes());
    out.extend_from_slice(&item.expiry_ms().to_le_bytes());
    match form {
        StoredForm::Raw(bytes) | StoredForm::Compressed(bytes) => put_bytes(out, bytes),
        StoredForm::Chunked { .. } => {
            item.copy_stored(scratch);
            put_bytes(out, scratch);
        }
        StoredForm::Object(object) => encode_object(object, out),
    }
}

fn encode_object(object: &Object, out: &mut Vec<u8>) {
    match object {
        Object::Hash(hash) => {
            out.extend_from_slice(&(hash.len() as u32).to_le_bytes());
            for field in hash.iter() {
                put_bytes(out, &field.name);
                put_bytes(out, &field.value);
                out.extend_from_slice(&field.expires_at_ms.to_le_bytes());
            }
        }
        Object::ZSet(zset) => {
            out.extend_from_slice(&(zset.len() as u32).to_le_bytes());
            for (member, score) in zset.iter() {
                put_bytes(out, member);
                out.extend_from_slice(&score.to_bits().to_le_bytes());
            }
        }
        Object::List(list) => {
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for element in list.iter() {
                put_bytes(out, element);
            }
        }
        Object::Set(set) => {
            out.extend_from_slice(&(set.len() as u32).to_le_bytes());
            for member in set.iter() {
                put_bytes(out, &member);
            }
        }
        Object::Stream(stream) => encode_stream(stream, out),
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_u64(out, id.ms);
    put_u64(out, id.seq);
}

fn encode_stream(stream: &StreamObject, out: &mut Vec<u8>) {
    put_id(out, stream.last_id());
    put_id(out, stream.first_id());
    put_id(out, stream.max_deleted_id());
    put_u64(out, stream.entries_added());
    put_u32(out, stream.len() as usize);
    for entry in stream.entries() {
        put_id(out, entry.id);
        put_u32(out, entry.pairs.len());
        for (field, value) in &entry.pairs {
            put_bytes(out, field);
            put_bytes(out, value);
        }
    }
    put_u32(out, stream.groups().len());
    for (name, group) in stream.groups() {
        put_bytes(out, name);
        put_id(out, group.last_id);
        put_u64(out, group.entries_read.unwrap_or(u64::MAX));
        put_u32(out, group.consumers.len());
        for (consumer, state) in &group.consumers {
            put_bytes(out, consumer);
            put_u64(out, state.seen_time);
        }
        put_u32(out, group.pel.len());
        for (id, nack) in &group.pel {
            put_id(out, *id);
            put_bytes(out, &nack.consumer);
            put_u64(out, nack.delivery_time);
            put_u64(out, nack.delivery_count);
        }
    }
}

fn decode_stream(r: &mut Reader<'_>) -> Option<StreamObject> {
    let id = |r: &mut Reader<'_>| Some(StreamId::new(r.u64()?, r.u64()?));
    let (last_id, first_id, max_deleted) = (id(r)?, id(r)?, id(r)?);
    let entries_added = r.u64()?;
    let mut stream = StreamObject::new();
    for _ in 0..r.count(20)? {
        let entry_id = id(r)?;
        let pairs = r.count(8)?;
        if pairs == 0 {
            return None;
        }
        let mut flat: Vec<&[u8]> = Vec::with_capacity(pairs * 2);
        for _ in 0..pairs * 2 {
            flat.push(r.bytes()?);
        }
        stream.add(IdRequest::Exact(entry_id), &flat, 0).ok()?;
    }
    stream.restore_meta(last_id, max_deleted, entries_added, first_id);
    for _ in 0..r.count(32)? {
        let name = r.bytes()?;
        let group_last = id(r)?;
        let read = r.u64()?;
        let mut consumers = Vec::new();
        for _ in 0..r.count(12)? {
            consumers.push((r.bytes()?.to_vec(), r.u64()?));
        }
        let mut pending = Vec::new();
        for _ in 0..r.count(36)? {
            pending.push((id(r)?, r.bytes()?.to_vec(), r.u64()?, r.u64()?));
        }
        let read = (read != u64::MAX).then_some(read);
        stream.restore_group(name, group_last, read, consumers, pending);
    }
    Some(stream)
}

/// One record read back.
pub struct Record<'a> {
    pub key: &'a [u8],
    pub flags: u32,
    pub cas: u64,
    pub expiry_ms: u64,
    pub value: RecordValue<'a>,
}

pub enum RecordValue<'a> {
    String { bytes: &'a [u8], compressed: bool },
    Object(Object),
}

/// A cursor over one block's payload.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    /// A collection's element count, refused if even its smallest elements (`min_each`
    /// bytes) could not fit in what remains: nothing is reserved for a lie.
    fn count(&mut self, min_each: usize) -> Option<usize> {
        let count = self.u32()? as usize;
        (count.checked_mul(min_each)? <= self.bytes.len() - self.at).then_some(count)
    }
    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// What a block holds.
pub enum Block<'a> {
    Records(Vec<Record<'a>>),
    End { records: u64 },
}

/// Splits a file into checked blocks (after the header), in order; the last must be the
/// end block. Nothing is decoded beyond the framing and checksums.
pub fn blocks(file: &[u8]) -> Result<Vec<(usize, &[u8])>, FormatError> {
    let mut at = HEADER_LEN;
    let mut out = Vec::new();
    loop {
        if file.len() - at < BLOCK_HEADER_LEN {
            return Err(FormatError::Truncated(file.len()));
        }
        let len = u32::from_le_bytes(file[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(file[at + 4..at + 8].try_into().expect("4 bytes"));
        let start = at + BLOCK_HEADER_LEN;
        if file.len() - start < len {
            return Err(FormatError::Truncated(file.len()));
        }
        let payload = &file[start..start + len];
        if crc32fast::hash(payload) != crc {
            return Err(FormatError::Checksum(at));
        }
        out.push((at, payload));
        at = start + len;
        if payload.first() == Some(&TAG_END) {
            if at != file.len() {
                return Err(FormatError::TrailingBytes(at));
            }
            return Ok(out);
        }
    }
}

/// Decodes one checked block's payload.
pub fn decode_block(offset: usize, payload: &[u8]) -> Result<Block<'_>, FormatError> {
    let malformed = || FormatError::Malformed(offset);
    let mut reader = Reader {
        bytes: payload,
        at: 0,
    };
    if payload.first() == Some(&TAG_END) {
        reader.take(1);
        let records = reader.u64().ok_or_else(malformed)?;
        return if reader.done() {
            Ok(Block::End { records })
        } else {
            Err(malformed())
        };
    }
    let mut records = Vec::new();
    while !reader.done() {
        records.push(decode_record(&mut reader).ok_or_else(malformed)?);
    }
    Ok(Block::Records(records))
}

fn decode_record<'a>(r: &mut Reader<'a>) -> Option<Record<'a>> {
    let tag = r.u8()?;
    let key = r.bytes()?;
    let flags = r.u32()?;
    let cas = r.u64()?;
    let expiry_ms = r.u64()?;
    let value = match tag {
        TAG_RAW | TAG_COMPRESSED => RecordValue::String {
            bytes: r.bytes()?,
            compressed: tag == TAG_COMPRESSED,
        },
        TAG_HASH => {
            let mut hash = HashObject::new();
            for _ in 0..r.count(16)? {
                let (name, value, expires) = (r.bytes()?, r.bytes()?, r.u64()?);
                hash.set(name, value, false);
                if expires != 0 {
                    hash.set_field_expiry(name, expires);
                }
            }
            RecordValue::Object(Object::Hash(hash))
        }
        TAG_ZSET => {
            let mut zset = ZSet::new();
            for _ in 0..r.count(12)? {
                let (member, score) = (r.bytes()?, f64::from_bits(r.u64()?));
                if score.is_nan() {
                    return None;
                }
                zset.insert(member, score);
            }
            RecordValue::Object(Object::ZSet(zset))
        }
        TAG_LIST => {
            let mut list = ListObject::new();
            for _ in 0..r.count(4)? {
                list.push(End::Tail, r.bytes()?);
            }
            RecordValue::Object(Object::List(list))
        }
        TAG_SET => {
            let mut set = SetObject::new();
            for _ in 0..r.count(4)? {
                set.insert(r.bytes()?);
            }
            RecordValue::Object(Object::Set(set))
        }
        TAG_STREAM => RecordValue::Object(Object::Stream(Box::new(decode_stream(r)?))),
        _ => return None,
    };
    Some(Record {
        key,
        flags,
        cas,
        expiry_ms,
        value,
    })
}
