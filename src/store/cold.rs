//! Hot values raw, cold values packed: the cold pass, promotion on read, and their counters.
//!
//! Policy. Writes store values raw, so no request compresses. A value of at least
//! `compression_threshold` bytes is a *candidate*; each segment counts the candidates written
//! into it and remembers when it was last used (a read of one of its items, or a candidate
//! written). The maintenance thread calls [`Store::compress_cold`] ten times a second: it
//! takes up to `compression_segments_per_tick` segments that hold candidates and have not
//! been used for `compression_cold_secs`, coldest first, and rewrites each one forward, as
//! compaction does: every live candidate not read for `compression_cold_secs` itself is
//! packed ([`super::compress`]: zstd when that saves 1/8, else kept verbatim and marked so
//! that it is never tried again), every other live record is copied as it is, and the
//! segment goes back to the pool, its memory to the allocator beyond a few spare segments.
//! A read that counts as a use ([`super::Recency::Bump`]) of a zstd-packed value unpacks it
//! once and stores it raw again in the same step ("promotion"), so a hot value is never
//! decompressed twice; it turns cold again like any new value.
//!
//! What it must never do: compress or decompress while a request waits for it, other than the
//! one unpacking of a promotion; pack while holding a shard lock (values are packed between
//! two lookups of their entry, from the immutable bytes of a segment the pass has taken out
//! of its bucket, and only its taker gives such a segment back); free a segment with live
//! records (a record that cannot move puts the segment back in its bucket).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::chunks::{self, ChunkTable};
use super::compress::{self, Packed};
use super::layout::{self, info, NewItem};
use super::reclaim::Reason;
use super::shard::Shard;
use super::{seconds, ttl, Found, Store, StoreStats, StoredValue, OVERDRAW, RESERVE};

/// Free segments the cold pass leaves allocated for writers after it freed some.
const SPARE_SEGMENTS: usize = OVERDRAW + RESERVE;

/// Store-wide counters of packing and unpacking (atomics: they are bumped once per
/// compression or decompression, which costs microseconds, so the shared line is no cost).
#[derive(Default)]
pub(super) struct ColdStats {
    packed: AtomicU64,
    incompressible: AtomicU64,
    compress_ns: AtomicU64,
    decompressions: AtomicU64,
    decompress_ns: AtomicU64,
    promoted: AtomicU64,
    segments: AtomicU64,
}

impl ColdStats {
    pub(super) fn add_to(&self, stats: &mut StoreStats) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        stats.compress_packed = get(&self.packed);
        stats.compress_incompressible = get(&self.incompressible);
        stats.compress_time_us = get(&self.compress_ns) / 1000;
        stats.decompressions = get(&self.decompressions);
        stats.decompress_time_us = get(&self.decompress_ns) / 1000;
        stats.compress_promoted = get(&self.promoted);
        stats.compress_cold_segments = get(&self.segments);
    }
}

/// The form a value is rewritten in.
enum Form<'a> {
    /// The value, raw.
    Raw(&'a [u8]),
    /// Packed: [`compress`]'s zstd form.
    Zstd(&'a [u8]),
    /// The value raw, marked as not compressing.
    Verbatim(&'a [u8]),
}

fn elapsed_ns(since: Instant) -> u64 {
    since.elapsed().as_nanos().min(u64::MAX as u128) as u64
}

impl Store {
    /// The cold pass (see the module documentation): packs the cold values of up to
    /// `compression_segments_per_tick` segments. Returns how many values it packed or marked
    /// incompressible. Called by the maintenance thread, with no lock held.
    pub fn compress_cold(&self, now_ms: u64) -> usize {
        let settings = self.compression;
        if settings.threshold == 0 {
            return 0;
        }
        let mut done = 0;
        let mut freed = false;
        for _ in 0..settings.segments_per_tick {
            let Some(id) = self.take_cold(seconds(now_ms)) else {
                break;
            };
            let (packed, emptied) = self.repack_segment(id, now_ms);
            done += packed;
            freed |= emptied;
            self.cold.segments.fetch_add(1, Ordering::Relaxed);
        }
        if freed {
            self.segments.trim_free(SPARE_SEGMENTS);
        }
        done
    }

    /// Whether a record of this kind and stored value is raw and long enough for the cold
    /// pass: an inline value, or a chunked one whose table says raw.
    pub(super) fn is_raw_candidate(&self, kind: u8, stored: &[u8]) -> bool {
        match kind {
            info::KIND_INLINE => self.compression.is_candidate(stored.len()),
            info::KIND_LARGE => {
                let table = ChunkTable::parse(stored);
                table.form() == chunks::TABLE_RAW
                    && self.compression.is_candidate(table.stored_len())
            }
            _ => false,
        }
    }

    /// Counts a raw candidate written into `segment`, last read at `used_s`.
    pub(super) fn note_raw_candidate(&self, segment: u32, used_s: u32) {
        let slot = self.segments.slot(segment);
        slot.raw_candidates.fetch_add(1, Ordering::Relaxed);
        if slot.last_used_s.load(Ordering::Relaxed) < used_s {
            slot.touch(used_s);
        }
    }

    /// Takes the coldest segment holding candidates, unused for the cold period, out of its
    /// bucket (sealed, or the open one, which writers then replace).
    fn take_cold(&self, now_s: u32) -> Option<u32> {
        let cold_after = self.compression.cold_after_secs;
        let mut coldest: Option<(u32, u32, bool)> = None; // (last used, id, open)
        for bucket in self.segments.buckets.iter() {
            let bucket = bucket.lock();
            let open = bucket.open.map(|id| (id, true));
            for (id, is_open) in bucket.sealed.iter().map(|&id| (id, false)).chain(open) {
                let slot = self.segments.slot(id);
                if slot.raw_candidates.load(Ordering::Relaxed) == 0 {
                    continue;
                }
                let used = slot.last_used_s.load(Ordering::Relaxed);
                if now_s.saturating_sub(used) < cold_after {
                    continue;
                }
                if coldest.is_none_or(|(least, _, _)| used < least) {
                    coldest = Some((used, id, is_open));
                }
            }
        }
        let (_, id, open) = coldest?;
        if !open {
            return self.take_sealed(id);
        }
        let number = self.segments.slot(id).bucket.load(Ordering::Relaxed) as usize;
        let mut bucket = self.segments.buckets[number].lock();
        (bucket.open == Some(id)).then(|| bucket.open.take())?
    }

    /// Walks a segment the cold pass took, packing its cold candidates and moving every
    /// other live record forward, then gives it back. Returns the values packed (or marked
    /// incompressible) and whether the segment was freed (false: put back, something could
    /// not move).
    fn repack_segment(&self, id: u32, now_ms: u64) -> (usize, bool) {
        let slot = self.segments.slot(id);
        let end = slot.write_offset.load(Ordering::Acquire) as usize;
        let base = self.segments.base(id);
        let cold_after = self.compression.cold_after_secs;
        let mut packed_count = 0;
        let mut offset = 0usize;
        while offset < end && slot.live_items.load(Ordering::Acquire) > 0 {
            // SAFETY: bytes 0..end of a segment taken out of its bucket are complete records
            // (written under the bucket lock, which we took after them); only their immutable
            // parts (layout and key) are read here without the shard lock.
            let (layout, key) = unsafe {
                let ptr = base.add(offset);
                let layout = layout::read_layout(ptr);
                let key = std::slice::from_raw_parts(ptr.add(layout.key_at), layout.key_len);
                (layout, key)
            };
            let total = layout.total_len();
            let kind = layout.format & info::KIND_MASK;
            let hash = self.hash(key);
            let shard_index = Self::shard_of(hash);
            let here = |shard: &Shard| {
                shard.index.find(hash, |entry| {
                    entry.segment() == id && entry.offset() as usize == offset
                })
            };
            let mut guard = self.shards[shard_index].lock();
            let mut pos = here(&guard);
            if pos.is_none()
                && kind == info::KIND_LARGE
                && !self.reclaim_chunk(
                    &mut guard,
                    hash,
                    key,
                    (id, offset as u32),
                    Reason::Compact,
                    now_ms,
                )
            {
                drop(guard);
                self.put_back(id);
                return (packed_count, false);
            }
            // A cold raw value: its bytes (borrowed from this segment, or assembled from its
            // chunks under the lock), packed after the lock is let go.
            let mut packed = None;
            if let Some(at) = pos {
                let entry = guard.index.get(at);
                // SAFETY: the entry was found in this shard's index while the shard is held.
                let item = unsafe { self.item_at(&guard, entry) };
                let cold = seconds(now_ms).saturating_sub(item.access_s()) >= cold_after;
                if cold
                    && !Self::is_expired(item, now_ms)
                    && self.is_raw_candidate(kind, item.raw_value())
                {
                    let flags = item.flags();
                    let assembled = (kind == info::KIND_LARGE).then(|| {
                        let mut out = Vec::new();
                        // SAFETY: the chunk table of a head in the index of the shard held.
                        unsafe {
                            self.assemble(&guard, ChunkTable::parse(item.raw_value()), &mut out)
                        };
                        out
                    });
                    drop(guard);
                    // SAFETY: the value bytes of a complete record (see above) never change,
                    // and the segment cannot be freed or reused while we hold it.
                    let inline = unsafe {
                        std::slice::from_raw_parts(
                            base.add(offset + layout.value_at),
                            layout.value_len,
                        )
                    };
                    let value = assembled.unwrap_or_else(|| inline.to_vec());
                    let form = self.pack(&value, flags);
                    packed = Some((value, form));
                    guard = self.shards[shard_index].lock();
                    pos = here(&guard);
                }
            }
            if let Some(pos) = pos {
                let shard = &mut *guard;
                let found = Found {
                    pos,
                    entry: shard.index.get(pos),
                };
                // SAFETY: the entry was found in this shard's index while the shard is held.
                let item = unsafe { self.item_at(shard, found.entry) };
                let moved = if Self::is_expired(item, now_ms) {
                    let policy = self.eviction_policy();
                    self.drop_record(shard, found, now_ms, policy);
                    true
                } else if let Some((value, form)) = &packed {
                    let form = match form {
                        Packed::Zstd(stored) => Form::Zstd(stored),
                        Packed::Incompressible => Form::Verbatim(value),
                    };
                    let moved = self.store_form(shard, found, form, now_ms);
                    packed_count += usize::from(moved);
                    moved
                } else {
                    self.move_forward(shard, found, Reason::Compact, now_ms)
                };
                if !moved {
                    drop(guard);
                    self.put_back(id);
                    return (packed_count, false);
                }
            }
            drop(guard);
            offset += total;
        }
        self.segments.give_back(id);
        (packed_count, true)
    }

    /// Returns a segment the cold pass could not empty to its bucket, as the oldest.
    fn put_back(&self, id: u32) {
        let bucket = self.segments.slot(id).bucket.load(Ordering::Relaxed) as usize;
        self.segments.buckets[bucket].lock().sealed.push_front(id);
    }

    /// Packs one value, counting the time it took.
    fn pack(&self, value: &[u8], flags: u32) -> Packed {
        let started = Instant::now();
        let packed = self.compression.pack(value, flags);
        self.cold
            .compress_ns
            .fetch_add(elapsed_ns(started), Ordering::Relaxed);
        match packed {
            Packed::Zstd(_) => &self.cold.packed,
            Packed::Incompressible => &self.cold.incompressible,
        }
        .fetch_add(1, Ordering::Relaxed);
        packed
    }

    /// Rewrites a key's record with its value in another form, in the open segment of its
    /// TTL bucket (chunked if it does not fit one), and repoints its entry; state bits, cas,
    /// access time, expiry, flags and access counter are kept, the old record and its chunks
    /// are released, and the pool and compression counters follow. Unlike a write, this is
    /// no change of the key: no key event, no new cas. False (nothing changed) if no segment
    /// could be had.
    fn store_form(&self, shard: &mut Shard, found: Found, form: Form<'_>, now_ms: u64) -> bool {
        // SAFETY: the entry was found in this shard's index while the shard is held.
        let item = unsafe { self.item_at(shard, found.entry) };
        let key = item.key();
        let expiry = item.expiry_ms();
        let (inline_kind, table_form, header, value) = match form {
            Form::Raw(value) => (info::KIND_INLINE, chunks::TABLE_RAW, None, value),
            Form::Zstd(stored) => (info::KIND_COMPRESSED, chunks::TABLE_ZSTD, None, stored),
            Form::Verbatim(value) => (
                info::KIND_COMPRESSED,
                chunks::TABLE_VERBATIM,
                Some(compress::raw_header(value.len())),
                value,
            ),
        };
        let header_len = header.as_ref().map_or(0, Vec::len);
        let mut new_chunks = Vec::new();
        let table;
        let (kind, parts): (u8, [&[u8]; 2]) =
            if self.needs_chunks(key.len(), header_len + value.len()) {
                // A chunked value says its form in its table: no verbatim header.
                match self.write_chunks(key, value, expiry, now_ms, 0) {
                    Ok(chunks) => new_chunks = chunks,
                    Err(_) => return false,
                }
                table = chunks::encode_table(table_form, value.len(), &new_chunks);
                (info::KIND_LARGE, [&table[..], &[]])
            } else {
                (inline_kind, [header.as_deref().unwrap_or(&[]), value])
            };
        let new = NewItem {
            key,
            value: &parts,
            info: kind | (item.info() & info::STATE_MASK),
            cas: item.cas(shard.last_cas),
            narrow_cas: item.layout.format & info::WIDE_CAS == 0,
            access_s: item.access_s(),
            expiry_ms: expiry,
            flags: item.flags(),
        };
        let appended = self.segments.append(
            ttl::bucket_of(expiry, now_ms),
            new.encoded_len(),
            RESERVE,
            0,
            expiry,
            |dst| new.encode(dst),
        );
        let Ok((segment, offset)) = appended else {
            for (segment, offset) in new_chunks {
                // SAFETY: chunks this call wrote and counted live; no head lists them.
                unsafe { self.release_record(segment, offset) };
            }
            return false;
        };
        let pool = self.pools.pool_of(key);
        let old_len = item.bytes.len();
        let old_charge = self.charge(shard, item);
        let old_saving = self.compression_saving(shard, item);
        let old_chunks: Vec<(u32, u32)> = match Self::stored_value(shard, item) {
            StoredValue::Chunked(table) => (0..table.count()).map(|i| table.chunk(i)).collect(),
            _ => Vec::new(),
        };
        let access_s = item.access_s();
        let old = self.segments.slot(found.entry.segment());
        old.live_items.fetch_sub(1, Ordering::Relaxed);
        old.live_bytes.fetch_sub(old_len as u32, Ordering::Relaxed);
        for (segment, offset) in old_chunks {
            // SAFETY: listed by the head `found`, in the index of the shard we hold, whose
            // entry is repointed just below to the new record: nothing releases them again.
            unsafe { self.release_record(segment, offset) };
        }
        let entry = found.entry.moved(segment, offset);
        shard.index.set(found.pos, entry);
        // SAFETY: `entry` was just set in this shard's index, which is held.
        let item = unsafe { self.item_at(shard, entry) };
        let new_charge = self.charge(shard, item);
        let new_saving = self.compression_saving(shard, item);
        if self.is_raw_candidate(kind, item.raw_value()) {
            self.note_raw_candidate(segment, access_s.max(seconds(now_ms)));
        }
        let stats = &mut shard.pools[pool];
        stats.bytes = stats.bytes + new_charge as u64 - old_charge as u64;
        let counters = &mut shard.counters;
        if let Some(saved) = old_saving {
            counters.compressed_items -= 1;
            counters.compressed_saved_bytes -= saved as u64;
        }
        if let Some(saved) = new_saving {
            counters.compressed_items += 1;
            counters.compressed_saved_bytes += saved as u64;
        }
        true
    }

    /// A read that counts as a use: marks the item's segment used and, if the value is
    /// zstd-packed, unpacks it and stores it raw again (promotion). Returns the entry to read
    /// from and whether a record was written (the caller then restores the memory bound).
    /// If the raw copy cannot be written (no memory), the entry stays packed and the read
    /// unpacks it as any read of a packed value does.
    pub(super) fn warm_up(&self, shard: &mut Shard, found: Found, now_ms: u64) -> (Found, bool) {
        self.segments
            .slot(found.entry.segment())
            .touch(seconds(now_ms));
        // SAFETY: the entry was found in this shard's index while the shard is held.
        let item = unsafe { self.item_at(shard, found.entry) };
        let mut value = Vec::new();
        match Self::stored_value(shard, item) {
            StoredValue::Compressed(stored) if compress::saving(stored).is_some() => {
                self.unpack(stored, &mut value);
            }
            StoredValue::Chunked(table) if table.compressed() => {
                let mut stored = Vec::new();
                // SAFETY: the chunk table of a head in the index of the shard held.
                unsafe { self.assemble(shard, table, &mut stored) };
                self.unpack(&stored, &mut value);
            }
            _ => return (found, false),
        }
        if !self.store_form(shard, found, Form::Raw(&value), now_ms) {
            return (found, false);
        }
        self.cold.promoted.fetch_add(1, Ordering::Relaxed);
        let found = Found {
            pos: found.pos,
            entry: shard.index.get(found.pos),
        };
        (found, true)
    }

    /// Unpacks a stored value into `out`, counting the time it took.
    pub(super) fn unpack(&self, stored: &[u8], out: &mut Vec<u8>) {
        let started = Instant::now();
        compress::decompress(stored, out);
        self.cold
            .decompress_ns
            .fetch_add(elapsed_ns(started), Ordering::Relaxed);
        self.cold.decompressions.fetch_add(1, Ordering::Relaxed);
    }
}
