//! Values larger than a segment: stored as a chain of chunk records.
//!
//! The value (compressed first, when that pays) is cut into pieces that each fill most of a
//! segment; each piece is appended as a record of its own (same key, kind `LARGE`, same TTL
//! bucket), and the key's index entry points at a head record whose value is the chunk
//! table: a form byte ([`TABLE_RAW`], [`TABLE_ZSTD`] or [`TABLE_VERBATIM`]), the stored
//! length, and the (segment, offset) of every chunk.
//! Reads assemble the chunks into the reader's buffer.
//!
//! Invariants: only the head is in the index; a chunk record is live exactly when the head of
//! its key lists its location; chunks are counted live in their segments like any record and
//! released with their head; a reclaimer that moves a chunk rewrites that table entry in
//! place, under the key's shard lock.

use super::layout::{self, info, ItemRef, NewItem};
use super::segments::NoSegment;
use super::shard::Shard;
use super::{ttl, Store, RESERVE};

/// Table bytes: form byte, stored length, chunk count, then 8 bytes per chunk.
const TABLE_HEADER: usize = 1 + 4 + 4;
/// Form byte: the chunks hold the value raw (the cold pass may pack it).
pub(crate) const TABLE_RAW: u8 = 0;
/// Form byte: the chunks hold a packed value ([`super::compress`]'s stored form).
pub(crate) const TABLE_ZSTD: u8 = 1;
/// Form byte: the chunks hold the value raw, and it was found not to compress (never retried).
pub(crate) const TABLE_VERBATIM: u8 = 2;

/// A head record's chunk table.
#[derive(Clone, Copy)]
pub(crate) struct ChunkTable<'a> {
    bytes: &'a [u8],
}

impl<'a> ChunkTable<'a> {
    pub fn parse(bytes: &'a [u8]) -> ChunkTable<'a> {
        ChunkTable { bytes }
    }
    pub fn compressed(&self) -> bool {
        self.form() == TABLE_ZSTD
    }
    pub fn form(&self) -> u8 {
        self.bytes[0]
    }
    pub fn stored_len(&self) -> usize {
        u32::from_le_bytes(self.bytes[1..5].try_into().expect("4 bytes")) as usize
    }
    pub fn count(&self) -> usize {
        u32::from_le_bytes(self.bytes[5..9].try_into().expect("4 bytes")) as usize
    }
    pub fn chunk(&self, i: usize) -> (u32, u32) {
        let at = TABLE_HEADER + i * 8;
        let segment = u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4 bytes"));
        let offset = u32::from_le_bytes(self.bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        (segment, offset)
    }
    pub fn position_of(&self, segment: u32, offset: u32) -> Option<usize> {
        (0..self.count()).find(|&i| self.chunk(i) == (segment, offset))
    }
    /// Where chunk `i`'s location starts within the table.
    pub fn entry_at(i: usize) -> usize {
        TABLE_HEADER + i * 8
    }
}

pub(crate) fn encode_table(form: u8, stored_len: usize, chunks: &[(u32, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TABLE_HEADER + chunks.len() * 8);
    out.push(form);
    out.extend_from_slice(&(stored_len as u32).to_le_bytes());
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for &(segment, offset) in chunks {
        out.extend_from_slice(&segment.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
    }
    out
}

impl Store {
    /// Bytes of value one chunk record of this key carries.
    pub(super) fn chunk_payload(&self, key_len: usize) -> usize {
        self.segments.segment_size() - layout::MAX_HEADER - key_len
    }

    /// Whether a value of `stored_len` bytes must be chunked.
    pub(super) fn needs_chunks(&self, key_len: usize, stored_len: usize) -> bool {
        stored_len + layout::MAX_HEADER + key_len > self.segments.segment_size()
    }

    /// Appends the chunk records of `stored`; on failure, the ones written are released.
    pub(super) fn write_chunks(
        &self,
        key: &[u8],
        stored: &[u8],
        expiry_ms: u64,
        now_ms: u64,
        overdraw: usize,
    ) -> Result<Vec<(u32, u32)>, NoSegment> {
        let payload = self.chunk_payload(key.len());
        let bucket = ttl::bucket_of(expiry_ms, now_ms);
        let mut chunks = Vec::with_capacity(stored.len().div_ceil(payload));
        for piece in stored.chunks(payload) {
            let parts = [piece];
            let record = NewItem {
                key,
                value: &parts,
                info: info::KIND_LARGE,
                cas: 0,
                narrow_cas: true,
                access_s: 0,
                expiry_ms,
                flags: 0,
            };
            let appended = self.segments.append(
                bucket,
                record.encoded_len(),
                RESERVE,
                overdraw,
                expiry_ms,
                |dst| record.encode(dst),
            );
            match appended {
                Ok(place) => chunks.push(place),
                Err(none) => {
                    for &(segment, offset) in &chunks {
                        // SAFETY: each is a record this call just appended and counted live;
                        // no head lists it, so nothing else releases it.
                        unsafe { self.release_record(segment, offset) };
                    }
                    return Err(none);
                }
            }
        }
        Ok(chunks)
    }

    /// Marks one record dead in its segment.
    ///
    /// # Safety
    /// `(segment, offset)` must be a record that is counted live and that nothing else
    /// releases: one the caller appended and has not published, or a chunk listed by a head
    /// in the index of a shard the caller holds, whose listing the caller then drops or
    /// rewrites. (A wrong location reads a layout from arbitrary bytes; releasing twice lets
    /// the segment be freed, and its id reused, under a live record.)
    pub(super) unsafe fn release_record(&self, segment: u32, offset: u32) {
        // SAFETY: by the contract, the record is live, so its segment is in use and holds a
        // complete record at `offset`.
        let len = unsafe {
            layout::read_layout(self.segments.base(segment).add(offset as usize)).total_len()
        };
        let slot = self.segments.slot(segment);
        slot.live_items
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        slot.live_bytes
            .fetch_sub(len as u32, std::sync::atomic::Ordering::Relaxed);
    }

    /// A chunk record, borrowed while the shard of its key is.
    ///
    /// # Safety
    /// `(segment, offset)` must be listed by the chunk table of a head record in the index of
    /// `shard`: the chunk is then counted live, and its segment stays in use (its id not
    /// reused) while the shard is borrowed.
    pub(super) unsafe fn chunk_at<'s>(
        &'s self,
        _shard: &'s Shard,
        (segment, offset): (u32, u32),
    ) -> ItemRef<'s> {
        // SAFETY: by the contract, a live chunk: a complete record at `offset` of an in-use
        // segment, valid while the shard is borrowed.
        unsafe {
            let ptr = self.segments.base(segment).add(offset as usize);
            let layout = layout::read_layout(ptr);
            ItemRef {
                bytes: std::slice::from_raw_parts(ptr, layout.total_len()),
                layout,
            }
        }
    }

    /// The stored bytes of a chunked value, in order.
    ///
    /// # Safety
    /// As for `Store::item_at`: `table` is the chunk table of a head in `shard`'s index now.
    pub(super) unsafe fn assemble(&self, shard: &Shard, table: ChunkTable<'_>, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(table.stored_len());
        for i in 0..table.count() {
            // SAFETY: `table` is the chunk table of a head in `shard`'s index (this
            // function's safety contract, shared with `Store::item_at`).
            out.extend_from_slice(unsafe { self.chunk_at(shard, table.chunk(i)) }.raw_value());
        }
    }

    /// Bytes the chunk records of a table take in their segments.
    ///
    /// # Safety
    /// As for `Store::item_at`: `table` is the chunk table of a head in `shard`'s index now.
    pub(super) unsafe fn chunks_len(&self, shard: &Shard, table: ChunkTable<'_>) -> usize {
        (0..table.count())
            // SAFETY: as in `assemble`.
            .map(|i| unsafe { self.chunk_at(shard, table.chunk(i)) }.bytes.len())
            .sum()
    }

    /// The first bytes of a chunked value's stored form (for the compressed length prefix).
    ///
    /// # Safety
    /// As for `Store::item_at`: `table` is the chunk table of a head in `shard`'s index now.
    pub(super) unsafe fn first_chunk<'s>(
        &'s self,
        shard: &'s Shard,
        table: ChunkTable<'_>,
    ) -> &'s [u8] {
        if table.count() == 0 {
            return &[];
        }
        // SAFETY: as in `assemble`.
        unsafe { self.chunk_at(shard, table.chunk(0)) }.raw_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_roundtrip() {
        let bytes = encode_table(TABLE_ZSTD, 3_000_000, &[(1, 0), (7, 4096), (9, 12)]);
        let table = ChunkTable::parse(&bytes);
        assert!(table.compressed());
        assert_eq!((table.stored_len(), table.count()), (3_000_000, 3));
        assert_eq!(table.chunk(1), (7, 4096));
        assert_eq!(table.position_of(9, 12), Some(2));
        assert_eq!(table.position_of(9, 13), None);
        assert_eq!(ChunkTable::entry_at(2), TABLE_HEADER + 16);
    }
}
