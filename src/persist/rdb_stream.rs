//! Streams in RDB (redis-server 7.0 `rdb.c` `rdbSaveObject`/`rdbLoadObject`, `t_stream.c`):
//! read from types 15 (`RDB_TYPE_STREAM_LISTPACKS`, Redis 5 to 6.2), 19 (`_2`, Redis 7.0) and
//! 21 (`_3`, Redis 7.2: consumers also carry an active time); written as type 19, which
//! redis-server 7.x restores with every counter kept.
//!
//! ```text
//! stream   = len(nodes) (string(master id: ms u64 BE | seq u64 BE) string(listpack))*
//!            len(length) len(last.ms) len(last.seq)
//!            [19, 21: len(first.ms) len(first.seq) len(max_deleted.ms) len(max_deleted.seq)
//!                     len(entries_added)]
//!            len(groups) group*
//! group    = string(name) len(last.ms) len(last.seq) [19, 21: len(entries_read)]
//!            len(pel) (raw id (16 bytes BE) ms u64 LE len(delivery_count))*
//!            len(consumers) (string(name) ms u64 LE(seen) [21: ms u64 LE(active)]
//!                            len(pel) raw id*)*
//! node     = listpack: count deleted len(master fields) master field* 0
//!            (flags ms-diff seq-diff [len(fields) (field value)* | value*] lp-count)*
//! ```
//! An entry's flags: 1 deleted (skipped), 2 same fields as the master entry (only its values
//! follow). Ids in a node are relative to its master id. What is written uses no flags: every
//! entry carries its fields, so the master entry's fields are only a header.
//!
//! Bounded: every count is checked against the bytes left before anything is allocated for
//! it. Knows nothing of stores' locks or sockets: bytes in, a stream out, and back.

use super::rdb_encoding::{listpack, put_len, put_string, Element, ReadError, Reader};
use crate::store::stream::IdRequest;
use crate::store::{StreamId, StreamObject};

/// `RDB_TYPE_STREAM_LISTPACKS`, `_2` and `_3`.
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

/// `STREAM_ITEM_FLAG_DELETED` and `STREAM_ITEM_FLAG_SAMEFIELDS`.
const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;
/// Entries per written node (Redis's `stream-node-max-entries` default).
const NODE_ENTRIES: usize = 100;

/// A pending entry as read: id, delivery time, delivery count, owner once a consumer names it.
type Pending = (StreamId, u64, u64, Option<Vec<u8>>);

/// Reads a stream of RDB type `kind` (15, 19 or 21).
pub fn read_stream(kind: u8, r: &mut Reader<'_>) -> Result<StreamObject, ReadError> {
    let mut stream = StreamObject::new();
    let mut added = 0u64;
    for _ in 0..r.count()? {
        let master = raw_id(&r.string()?)?;
        let blob = r.string()?;
        added += read_node(master, &listpack(&blob)?, &mut stream)?;
    }
    let length = r.length()?;
    let last_id = StreamId::new(r.length()?, r.length()?);
    if length != added || stream.len() != added {
        return Err(ReadError::Invalid);
    }
    let legacy = kind == TYPE_STREAM_LISTPACKS;
    let (first_id, max_deleted, entries_added) = if legacy {
        let first = stream.edge(false).map_or(StreamId::MIN, |e| e.id);
        (first, StreamId::MIN, length)
    } else {
        let first = StreamId::new(r.length()?, r.length()?);
        let max_deleted = StreamId::new(r.length()?, r.length()?);
        (first, max_deleted, r.length()?)
    };
    if !stream.is_empty() && last_id < stream.edge(true).map_or(StreamId::MIN, |e| e.id) {
        return Err(ReadError::Invalid);
    }
    stream.restore_meta(last_id, max_deleted, entries_added, first_id);
    for _ in 0..r.count()? {
        read_group(kind, r, &mut stream)?;
    }
    Ok(stream)
}

/// Reads one consumer group into `stream`.
fn read_group(kind: u8, r: &mut Reader<'_>, stream: &mut StreamObject) -> Result<(), ReadError> {
    let name = r.string()?;
    if stream.group(&name).is_some() {
        return Err(ReadError::Invalid);
    }
    let last_id = StreamId::new(r.length()?, r.length()?);
    let entries_read = if kind == TYPE_STREAM_LISTPACKS {
        stream.read_counter_of(last_id)
    } else {
        // Redis's SCG_INVALID_ENTRIES_READ (-1) is the unknown counter.
        match r.length()? {
            u64::MAX => None,
            n => Some(n),
        }
    };
    let mut pending: Vec<Pending> = Vec::new();
    for _ in 0..r.count()? {
        let id = raw_id(r.take(16)?)?;
        let delivered = millis(r)?;
        pending.push((id, delivered, r.length()?, None));
    }
    pending.sort_by_key(|p| p.0);
    if pending.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(ReadError::Invalid);
    }
    let mut consumers = Vec::new();
    for _ in 0..r.count()? {
        let consumer = r.string()?;
        let seen = millis(r)?;
        if kind == TYPE_STREAM_LISTPACKS_3 {
            millis(r)?;
        }
        for _ in 0..r.count()? {
            let id = raw_id(r.take(16)?)?;
            let at = pending
                .binary_search_by_key(&id, |p| p.0)
                .map_err(|_| ReadError::Invalid)?;
            match &mut pending[at].3 {
                Some(_) => return Err(ReadError::Invalid),
                owner => *owner = Some(consumer.clone()),
            }
        }
        consumers.push((consumer, seen));
    }
    let mut owned = Vec::with_capacity(pending.len());
    for (id, time, count, owner) in pending {
        owned.push((id, owner.ok_or(ReadError::Invalid)?, time, count));
    }
    stream.restore_group(&name, last_id, entries_read, consumers, owned);
    Ok(())
}

/// Adds the live entries of one node (its listpack's elements) to `stream`; returns how many.
fn read_node(
    master: StreamId,
    elements: &[Element<'_>],
    stream: &mut StreamObject,
) -> Result<u64, ReadError> {
    let mut at = 0;
    let mut next = || -> Result<&Element<'_>, ReadError> {
        let element = elements.get(at).ok_or(ReadError::Invalid)?;
        at += 1;
        Ok(element)
    };
    let count = int(next()?)?;
    let deleted = int(next()?)?;
    let master_fields = count_of(int(next()?)?, elements.len())?;
    let mut fields: Vec<Vec<u8>> = Vec::with_capacity(master_fields);
    for _ in 0..master_fields {
        fields.push(next()?.to_bytes());
    }
    if int(next()?)? != 0 {
        return Err(ReadError::Invalid);
    }
    let total = count.checked_add(deleted).ok_or(ReadError::Invalid)?;
    if count < 0 || deleted < 0 || total == 0 {
        return Err(ReadError::Invalid);
    }
    let mut live = 0u64;
    for _ in 0..total {
        let flags = int(next()?)?;
        let ms = add(master.ms, int(next()?)?)?;
        let seq = add(master.seq, int(next()?)?)?;
        let own_fields;
        let (names, pairs) = if flags & FLAG_SAMEFIELDS != 0 {
            (Some(&fields), master_fields)
        } else {
            own_fields = count_of(int(next()?)?, elements.len())?;
            (None, own_fields)
        };
        let mut flat: Vec<Vec<u8>> = Vec::with_capacity(pairs * 2);
        for i in 0..pairs {
            match names {
                Some(names) => flat.push(names[i].clone()),
                None => flat.push(next()?.to_bytes()),
            }
            flat.push(next()?.to_bytes());
        }
        let lp_count = int(next()?)?;
        let expected = if names.is_some() {
            pairs as i64 + 3
        } else {
            2 * pairs as i64 + 4
        };
        if lp_count != expected {
            return Err(ReadError::Invalid);
        }
        if flags & FLAG_DELETED != 0 {
            continue;
        }
        if pairs == 0 {
            return Err(ReadError::Invalid);
        }
        let id = StreamId::new(ms, seq);
        stream
            .add(IdRequest::Exact(id), &flat, 0)
            .map_err(|_| ReadError::Invalid)?;
        live += 1;
    }
    if live != count as u64 || at != elements.len() {
        return Err(ReadError::Invalid);
    }
    Ok(live)
}

/// A listpack element that must be an integer (a stream node's numbers).
fn int(element: &Element<'_>) -> Result<i64, ReadError> {
    match element {
        Element::Int(n) => Ok(*n),
        Element::Bytes(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ReadError::Invalid),
    }
}

/// A count of elements that cannot exceed the node's elements.
fn count_of(n: i64, elements: usize) -> Result<usize, ReadError> {
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= elements)
        .ok_or(ReadError::Invalid)
}

/// `base + diff` for an id part relative to the node's master id (wrapping, as Redis's
/// unsigned arithmetic on the stored difference).
fn add(base: u64, diff: i64) -> Result<u64, ReadError> {
    Ok(base.wrapping_add(diff as u64))
}

/// A 16-byte id (`streamDecodeID`: ms and seq big-endian).
fn raw_id(bytes: &[u8]) -> Result<StreamId, ReadError> {
    if bytes.len() != 16 {
        return Err(ReadError::Invalid);
    }
    let ms = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let seq = u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes"));
    Ok(StreamId::new(ms, seq))
}

/// A millisecond time (`rdbLoadMillisecondTime`, RDB 9 and later: u64 little-endian).
fn millis(r: &mut Reader<'_>) -> Result<u64, ReadError> {
    Ok(u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes")))
}

/// Appends `stream` as an RDB value of type 19 (the type byte is the caller's).
pub fn put_stream(out: &mut Vec<u8>, stream: &StreamObject) {
    let entries: Vec<_> = stream.entries().collect();
    let nodes = entries.chunks(NODE_ENTRIES);
    put_len(out, nodes.len() as u64);
    for node in nodes {
        let master = node[0].id;
        let mut key = Vec::with_capacity(16);
        key.extend_from_slice(&master.ms.to_be_bytes());
        key.extend_from_slice(&master.seq.to_be_bytes());
        put_string(out, &key);
        let mut lp = ListpackWriter::new();
        lp.int(node.len() as i64);
        lp.int(0);
        lp.int(node[0].pairs.len() as i64);
        for (field, _) in &node[0].pairs {
            lp.bytes(field);
        }
        lp.int(0);
        for entry in node {
            lp.int(0);
            lp.int((entry.id.ms - master.ms) as i64);
            lp.int(entry.id.seq.wrapping_sub(master.seq) as i64);
            lp.int(entry.pairs.len() as i64);
            for (field, value) in &entry.pairs {
                lp.bytes(field);
                lp.bytes(value);
            }
            lp.int(2 * entry.pairs.len() as i64 + 4);
        }
        put_string(out, &lp.finish());
    }
    put_len(out, stream.len());
    let last = stream.last_id();
    put_len(out, last.ms);
    put_len(out, last.seq);
    let first = stream.first_id();
    put_len(out, first.ms);
    put_len(out, first.seq);
    let max_deleted = stream.max_deleted_id();
    put_len(out, max_deleted.ms);
    put_len(out, max_deleted.seq);
    put_len(out, stream.entries_added());
    put_len(out, stream.groups().len() as u64);
    for (name, group) in stream.groups() {
        put_string(out, name);
        put_len(out, group.last_id.ms);
        put_len(out, group.last_id.seq);
        put_len(out, group.entries_read.unwrap_or(u64::MAX));
        put_len(out, group.pel.len() as u64);
        for (id, nack) in &group.pel {
            put_raw_id(out, *id);
            out.extend_from_slice(&nack.delivery_time.to_le_bytes());
            put_len(out, nack.delivery_count);
        }
        put_len(out, group.consumers.len() as u64);
        for (consumer, state) in &group.consumers {
            put_string(out, consumer);
            out.extend_from_slice(&state.seen_time.to_le_bytes());
            put_len(out, state.pel.len() as u64);
            for id in &state.pel {
                put_raw_id(out, *id);
            }
        }
    }
}

fn put_raw_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

/// Builds a listpack (`listpack.c`): a 6-byte header (total bytes u32 LE, element count u16
/// LE), elements each followed by its back length, and 0xFF.
struct ListpackWriter {
    bytes: Vec<u8>,
    count: usize,
}

impl ListpackWriter {
    fn new() -> ListpackWriter {
        ListpackWriter {
            bytes: vec![0; 6],
            count: 0,
        }
    }

    /// An integer in the smallest encoding that holds it.
    fn int(&mut self, n: i64) {
        let start = self.bytes.len();
        match n {
            0..=127 => self.bytes.push(n as u8),
            -4096..=4095 => {
                let v = (n as u16) & 0x1fff;
                self.bytes.push(0xc0 | (v >> 8) as u8);
                self.bytes.push(v as u8);
            }
            -32_768..=32_767 => {
                self.bytes.push(0xf1);
                self.bytes.extend_from_slice(&(n as i16).to_le_bytes());
            }
            -8_388_608..=8_388_607 => {
                self.bytes.push(0xf2);
                self.bytes.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
            }
            -2_147_483_648..=2_147_483_647 => {
                self.bytes.push(0xf3);
                self.bytes.extend_from_slice(&(n as i32).to_le_bytes());
            }
            _ => {
                self.bytes.push(0xf4);
                self.bytes.extend_from_slice(&n.to_le_bytes());
            }
        }
        self.end_element(start);
    }

    /// A string, always as bytes (Redis would store a number-looking string as an integer;
    /// either reads back the same).
    fn bytes(&mut self, s: &[u8]) {
        let start = self.bytes.len();
        match s.len() {
            len @ 0..=63 => self.bytes.push(0x80 | len as u8),
            len @ 64..=4095 => {
                self.bytes.push(0xe0 | (len >> 8) as u8);
                self.bytes.push(len as u8);
            }
            len => {
                self.bytes.push(0xf0);
                self.bytes.extend_from_slice(&(len as u32).to_le_bytes());
            }
        }
        self.bytes.extend_from_slice(s);
        self.end_element(start);
    }

    /// Appends the back length of the element that began at `start` (`lpEncodeBacklen`).
    fn end_element(&mut self, start: usize) {
        let l = (self.bytes.len() - start) as u64;
        let groups: &[u32] = match l {
            0..=127 => &[0],
            128..=16_382 => &[7, 0],
            16_383..=2_097_150 => &[14, 7, 0],
            2_097_151..=268_435_454 => &[21, 14, 7, 0],
            _ => &[28, 21, 14, 7, 0],
        };
        for (i, shift) in groups.iter().enumerate() {
            let part = ((l >> shift) & 127) as u8;
            self.bytes.push(if i == 0 { part } else { part | 128 });
        }
        self.count += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        self.bytes.push(0xff);
        let total = self.bytes.len() as u32;
        self.bytes[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count).unwrap_or(u16::MAX);
        self.bytes[4..6].copy_from_slice(&count.to_le_bytes());
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_stream_reads_back_with_groups_and_counters() {
        let mut stream = StreamObject::new();
        for i in 1..=250u64 {
            let value = format!("v{i}");
            let fields: Vec<&[u8]> = if i % 3 == 0 {
                vec![b"a", value.as_bytes(), b"b", b"x"]
            } else {
                vec![b"a", value.as_bytes()]
            };
            stream
                .add(IdRequest::Exact(StreamId::new(1000 + i, i)), &fields, 0)
                .unwrap();
        }
        assert!(stream.delete(StreamId::new(1010, 10)));
        stream
            .create_group(b"g", Some(StreamId::MIN), None)
            .unwrap();
        stream.read_new(b"g", b"alice", 5, false, 77).unwrap();
        let mut out = Vec::new();
        put_stream(&mut out, &stream);
        let back = read_stream(TYPE_STREAM_LISTPACKS_2, &mut Reader::new(&out)).unwrap();
        let ids = |s: &StreamObject| s.entries().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(&back), ids(&stream));
        assert_eq!(back.len(), 249);
        assert_eq!(back.max_deleted_id(), StreamId::new(1010, 10));
        assert_eq!(back.entries_added(), 250);
        let group = back.group(b"g").unwrap();
        assert_eq!(group.pel.len(), 5);
        assert_eq!(group.consumers[&b"alice"[..]].pel.len(), 5);
        assert_eq!(
            back.entries().nth(2).unwrap().pairs,
            vec![(&b"a"[..], &b"v3"[..]), (&b"b"[..], &b"x"[..])]
        );
    }

    fn restored(hex: &str) -> StreamObject {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        match crate::persist::dump::restore(&bytes).unwrap() {
            super::super::rdb_read::Value::Object(crate::store::Object::Stream(s)) => *s,
            _ => panic!("not a stream"),
        }
    }

    /// redis-server 7.0.15's DUMP (type 19, its listpack LZF-compressed) after `XADD x 1-1 a 1
    /// b 2`, `XADD x 2-0 a 3`, `XADD x 5-5 a 4 b 5`, `XADD x 5-6 a 6 b 7`, `XDEL x 2-0`,
    /// `XGROUP CREATE x g 0`, `XREADGROUP GROUP g alice COUNT 2 STREAMS x >`,
    /// `XGROUP CREATECONSUMER x g bob`.
    #[test]
    fn restores_a_stream_redis_7_dumped() {
        let s = restored("13011000000000000000010000000000000001c34043404912490000001f0003010101020181610281620200200900002001401100052005050101dfff0201401c02030106201b0004600100052001400b000520130007200500ff0305060101020004010167050581ffffffffffffffff02000000000000000100000000000000011f0f2653a201000001000000000000000500000000000000051f0f2653a2010000010205616c6963651f0f2653a201000002000000000000000100000000000000010000000000000005000000000000000503626f622e0f2653a2010000000a009d951e33fefc07d0");
        let ids: Vec<StreamId> = s.entries().map(|e| e.id).collect();
        assert_eq!(
            ids,
            [
                StreamId::new(1, 1),
                StreamId::new(5, 5),
                StreamId::new(5, 6)
            ]
        );
        assert_eq!(
            s.entries().nth(1).unwrap().pairs,
            vec![(&b"a"[..], &b"4"[..]), (&b"b"[..], &b"5"[..])]
        );
        assert_eq!(
            (
                s.last_id(),
                s.max_deleted_id(),
                s.entries_added(),
                s.first_id()
            ),
            (
                StreamId::new(5, 6),
                StreamId::new(2, 0),
                4,
                StreamId::new(1, 1)
            )
        );
        let g = s.group(b"g").unwrap();
        assert_eq!((g.last_id, g.entries_read), (StreamId::new(5, 5), None));
        assert_eq!(g.pel.len(), 2);
        assert_eq!(g.consumers[&b"alice"[..]].pel.len(), 2);
        assert_eq!(g.consumers[&b"bob"[..]].pel.len(), 0);
        assert_eq!(g.pel[&StreamId::new(5, 5)].delivery_count, 1);
    }

    /// The payload Redis's `unit/type/stream-cgroups` restores: DUMPed by Redis 5 (type 15,
    /// no counters), after 6 XADDs, an XDEL, two groups, an XREADGROUP of 4 and XTRIM MAXLEN 2.
    #[test]
    fn restores_a_legacy_stream_with_estimated_counters() {
        let s = restored("0f011000000000000000010000000000000000c3404a405716570000002300020104010101846461746105000103010020010381610204200a0001400a0062600a0002400a0063600a4022018164200a4039200a0065600a0005400a0066200a00ff02060002026731050004000000000000000100000000000000003ef783437a01000001000000000000000200000000000000003ef783437a01000001000000000000000400000000000000003ef783437a01000001000000000000000500000000000000003ef783437a0100000101036331313ef783437a01000004000000000000000100000000000000000000000000000002000000000000000000000000000000040000000000000000000000000000000500000000000000000267320000000009003d52ef6867521dfa");
        assert_eq!(s.len(), 2);
        assert_eq!((s.max_deleted_id(), s.entries_added()), (StreamId::MIN, 2));
        let g1 = s.group(b"g1").unwrap();
        assert_eq!((g1.entries_read, s.lag(g1)), (Some(1), Some(1)));
        let g2 = s.group(b"g2").unwrap();
        assert_eq!((g2.entries_read, s.lag(g2)), (Some(0), Some(2)));
        assert_eq!(g1.consumers[&b"c11"[..]].pel.len(), 4);
    }

    #[test]
    fn counts_larger_than_the_input_and_bad_nodes_are_refused() {
        // One node claimed, then nothing.
        assert!(read_stream(19, &mut Reader::new(&[1])).is_err());
        // A listpack count of entries that is not there.
        let mut lp = ListpackWriter::new();
        for n in [5, 0, 1] {
            lp.int(n);
        }
        lp.bytes(b"f");
        lp.int(0);
        let mut out = Vec::new();
        put_len(&mut out, 1);
        super::put_string(&mut out, &[0; 16]);
        super::put_string(&mut out, &lp.finish());
        out.extend_from_slice(&[5, 0, 0, 0]);
        assert_eq!(
            read_stream(TYPE_STREAM_LISTPACKS, &mut Reader::new(&out)).err(),
            Some(ReadError::Invalid)
        );
    }
}
