//! The segment arena: fixed-size blocks of memory that items are appended into.
//!
//! Segments are numbered from 1 (index entries keep 24-bit ids; 0 is never used) and their
//! slots are looked up through a two-level table that is allocated lazily, so ids are stable
//! and reading a segment's address takes no lock. (A `slab::Slab` of slots would hand out
//! ids the same way, but finding a slot would then need the pool's lock on every read.)
//!
//! A segment's memory is allocated when its id is first taken and given back to the
//! allocator only when the pool holds more segments than the memory limit allows (after the
//! limit was lowered, the heap grew, or a flush); freed segments otherwise wait in the
//! pool's free list, so the arena's footprint is bounded by the limit.
//!
//! Ids are reused: a returned id waits in the free list (memory kept) or, once its memory
//! went back, in the bare list, and `take` hands out a free id, then a bare one, and a
//! fresh id only when neither list has one. So a fresh id is taken only when every id
//! handed out so far is in use: the highest id ever handed out is the peak number of
//! segments in use at once, which the budget bounds (the limit, plus the writers' overdraw),
//! and so is the slot table (4096 slots a chunk, allocated as ids reach it). Flushes,
//! limit changes and heap growth, however many, never exhaust the 2^24 ids.
//!
//! Each segment belongs to one TTL bucket while it is in use: the bucket's open segment
//! takes appends, its sealed segments wait, oldest first, to expire or be reclaimed
//! (see [`super::ttl`] and the store's reclaim functions).
//!
//! Invariants:
//! - bytes `0..write_offset` of an in-use segment are complete items, written while the
//!   bucket's lock was held; nothing is appended to a sealed segment;
//! - `live_items`/`live_bytes` count the items of the segment that an index entry (or a
//!   large value's chunk table) points at; they change under the lock of that item's shard;
//! - a segment is returned to the pool only by a reclaimer that took it out of its bucket and
//!   unlinked (or moved) every index entry that pointed into it, each under its shard's lock,
//!   so its `live_items` is 0; a reader that found an entry under its shard's lock therefore
//!   reads memory that stays valid;
//! - a segment pinned by a reply still being sent ([`super::pin`]) is retired by `give_back`
//!   instead of pooled, and pooled by `reap_retired` once unpinned: its memory is neither
//!   reused nor freed while a pin points into it.
//!
//! Why a reused id is safe without a generation number: an index entry (or chunk table
//! entry) names only `(segment id, offset)`, and nothing checks at read time that the
//! segment still holds the record it was written for. The tag and key compare of a lookup
//! are no defence: a stale offset into a reused segment could land mid-record, and
//! `read_layout` would then read lengths from arbitrary bytes. Reuse is sound because no
//! stale location can exist: by the last invariant, every entry into a segment is gone (under
//! its shard's lock) before the id returns to the pool, so by the time `take` hands the id out
//! again no entry names it, and every later entry naming it was written for its new contents.
//! The reclaimers' own lookups by location (`entry.segment() == id && offset == ..`) rely on
//! the same fact. Breaking that invariant would already be a use-after-free without reuse
//! (the memory of a freed segment may have been returned to the allocator); reuse adds no
//! new way to go wrong. `give_back` checks `live_items == 0` in debug builds.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::index::{MAX_SEGMENT_ID, MAX_SEGMENT_SIZE};
use super::pin::PinTable;

const CHUNK: usize = 4096;

/// What the arena knows about one segment.
#[derive(Default)]
pub(crate) struct SegmentSlot {
    data: AtomicPtr<u8>,
    /// Bytes written so far (appends happen under the bucket lock).
    pub write_offset: AtomicU32,
    pub live_bytes: AtomicU32,
    pub live_items: AtomicU32,
    /// The TTL bucket the segment belongs to while in use.
    pub bucket: AtomicU32,
    /// The latest expiry of any item appended (unix ms; 0 for the never-expiring bucket).
    pub max_expiry_ms: AtomicU64,
    /// When the segment was opened, in opening order across the store (older is smaller).
    pub opened_seq: AtomicU64,
    /// Unix seconds of the last read of one of its items, or of the last write of a value
    /// the cold pass could pack (see [`super::cold`]).
    pub last_used_s: AtomicU32,
    /// Values written here raw that the cold pass could pack (an upper bound: some may be
    /// dead or gone since). 0 = nothing for the cold pass here.
    pub raw_candidates: AtomicU32,
}

impl SegmentSlot {
    /// Records a use at `now_s` (a relaxed store, skipped when the second is the same, so
    /// that readers of one segment do not keep writing its cache line).
    pub fn touch(&self, now_s: u32) {
        if self.last_used_s.load(Ordering::Relaxed) != now_s {
            self.last_used_s.store(now_s, Ordering::Relaxed);
        }
    }
}

/// The segments of one TTL bucket.
#[derive(Default)]
pub(crate) struct Bucket {
    /// The segment that takes appends.
    pub open: Option<u32>,
    /// Full segments, oldest first.
    pub sealed: VecDeque<u32>,
}

struct Pool {
    /// Returned ids whose segment still has its memory: taken first.
    free: Vec<u32>,
    /// Returned ids whose memory went back to the allocator: taken before a fresh id.
    bare: Vec<u32>,
    /// Ids never handed out start here (every id below it is in use, free or bare).
    next_fresh: u32,
    /// Segments with memory allocated (in use or free).
    allocated: usize,
}

/// Why a segment could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSegment;

pub(crate) struct Segments {
    segment_size: usize,
    /// The highest id this arena may hand out (`MAX_SEGMENT_ID`; smaller in tests).
    last_id: u32,
    table: Box<[OnceLock<Box<[SegmentSlot]>>]>,
    pool: Mutex<Pool>,
    pub buckets: Box<[Mutex<Bucket>]>,
    /// Readers' pins on segments (zero-copy replies; see [`super::pin`]).
    pub pins: std::sync::Arc<PinTable>,
    /// Segments given back while pinned: still counted in use, pooled by `reap_retired`
    /// once unpinned. Its lock is taken before the pool's, never after.
    retired: Mutex<Vec<u32>>,
    /// Segments ever retired (given back while pinned).
    retired_total: AtomicU64,
    /// Segments taken out of the pool (open, sealed, being reclaimed, or retired).
    in_use: AtomicUsize,
    /// How many segments may be in use (the memory limit's share for segments).
    budget: AtomicUsize,
    next_seq: AtomicU64,
}

impl Segments {
    pub fn new(segment_size: usize, budget: usize, bucket_count: usize) -> Segments {
        Segments::with_id_space(segment_size, budget, bucket_count, MAX_SEGMENT_ID)
    }

    /// An arena that hands out ids `1..=last_id` only (tests use a small id space to show
    /// that ids are reused instead of running out).
    pub fn with_id_space(
        segment_size: usize,
        budget: usize,
        bucket_count: usize,
        last_id: u32,
    ) -> Segments {
        assert!((1..=MAX_SEGMENT_ID).contains(&last_id));
        // `take` relies on this: `alloc_zeroed` must not be asked for zero bytes, and offsets
        // must fit an index entry.
        assert!((1..=MAX_SEGMENT_SIZE).contains(&segment_size));
        Segments {
            segment_size,
            last_id,
            table: (0..(last_id as usize + 1).div_ceil(CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
            pool: Mutex::new(Pool {
                free: Vec::new(),
                bare: Vec::new(),
                next_fresh: 1,
                allocated: 0,
            }),
            buckets: (0..bucket_count).map(|_| Mutex::default()).collect(),
            pins: std::sync::Arc::new(PinTable::new(last_id)),
            retired: Mutex::new(Vec::new()),
            retired_total: AtomicU64::new(0),
            in_use: AtomicUsize::new(0),
            budget: AtomicUsize::new(budget),
            next_seq: AtomicU64::new(1),
        }
    }

    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    pub fn slot(&self, id: u32) -> &SegmentSlot {
        let chunk = self.table[id as usize / CHUNK]
            .get_or_init(|| (0..CHUNK).map(|_| SegmentSlot::default()).collect());
        &chunk[id as usize % CHUNK]
    }

    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    pub fn budget(&self) -> usize {
        self.budget.load(Ordering::Relaxed)
    }

    pub fn set_budget(&self, segments: usize) {
        self.budget.store(segments, Ordering::Relaxed);
        self.trim_pool();
    }

    /// The highest id handed out so far: the peak number of segments in use at once.
    #[cfg(test)]
    pub fn highest_id(&self) -> u32 {
        self.pool.lock().next_fresh - 1
    }

    /// Segments with memory allocated, in use or waiting in the free list.
    pub fn allocated(&self) -> usize {
        self.pool.lock().allocated
    }

    /// Takes a segment for `bucket`. Ordinary writers leave `reserve` segments of the budget
    /// for reclaimers (which pass 0), so compaction can always move live items somewhere; a
    /// writer that cannot wait for a reclaim may go `overdraw` segments beyond the budget.
    pub fn take(&self, bucket: u32, reserve: usize, overdraw: usize) -> Result<u32, NoSegment> {
        self.reap_retired();
        let mut pool = self.pool.lock();
        let in_use = self.in_use.load(Ordering::Relaxed);
        let budget = self.budget();
        let within = in_use + reserve < budget;
        let overdrawn = overdraw > 0 && in_use < budget + overdraw;
        if !within && !overdrawn {
            return Err(NoSegment);
        }
        let id = match pool.free.pop().or_else(|| pool.bare.pop()) {
            Some(id) => id,
            None => {
                // Every id handed out so far is in use (see the module documentation).
                debug_assert_eq!(pool.next_fresh as usize, in_use + 1);
                if pool.next_fresh > self.last_id {
                    return Err(NoSegment);
                }
                let id = pool.next_fresh;
                pool.next_fresh += 1;
                id
            }
        };
        let slot = self.slot(id);
        if slot.data.load(Ordering::Relaxed).is_null() {
            // SAFETY: the layout has a non-zero size (`with_id_space` checked it).
            let data = unsafe { alloc_zeroed(self.layout()) };
            if data.is_null() {
                std::alloc::handle_alloc_error(self.layout());
            }
            slot.data.store(data, Ordering::Release);
            pool.allocated += 1;
        }
        slot.write_offset.store(0, Ordering::Relaxed);
        slot.live_bytes.store(0, Ordering::Relaxed);
        slot.live_items.store(0, Ordering::Relaxed);
        slot.bucket.store(bucket, Ordering::Relaxed);
        slot.max_expiry_ms.store(0, Ordering::Relaxed);
        slot.last_used_s.store(0, Ordering::Relaxed);
        slot.raw_candidates.store(0, Ordering::Relaxed);
        slot.opened_seq.store(
            self.next_seq.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.in_use.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// Gives a reclaimed segment back (no index entry points into it any more). A segment a
    /// reader still pins is retired instead: pooled by [`reap_retired`](Self::reap_retired)
    /// once the pins are gone. No new pin can appear meanwhile: pins are taken through index
    /// entries, under their shard's lock, and none points into the segment any more.
    pub fn give_back(&self, id: u32) {
        debug_assert_eq!(
            self.slot(id).live_items.load(Ordering::Acquire),
            0,
            "segment {id} given back with live records"
        );
        if self.pins.is_pinned(id) {
            self.retired.lock().push(id);
            self.retired_total.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.pool_unpinned(id);
    }

    /// Pools the retired segments no reader pins any more.
    pub fn reap_retired(&self) {
        let mut retired = self.retired.lock();
        if retired.is_empty() {
            return;
        }
        let mut i = 0;
        while i < retired.len() {
            if self.pins.is_pinned(retired[i]) {
                i += 1;
            } else {
                let id = retired.swap_remove(i);
                self.pool_unpinned(id);
            }
        }
    }

    /// Segments retired while pinned, waiting for their readers.
    pub fn retired(&self) -> usize {
        self.retired.lock().len()
    }

    /// Segments ever retired.
    pub fn retired_total(&self) -> u64 {
        self.retired_total.load(Ordering::Relaxed)
    }

    fn pool_unpinned(&self, id: u32) {
        let mut pool = self.pool.lock();
        pool.free.push(id);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        drop(pool);
        self.trim_pool();
    }

    /// Frees the memory of pooled segments beyond the budget.
    fn trim_pool(&self) {
        self.free_pooled(self.budget());
    }

    /// Gives the memory of every segment waiting in the free list back to the allocator
    /// (after a flush: RSS returns to the live data's size).
    pub fn release_free(&self) {
        self.free_pooled(0);
    }

    /// Gives the memory of pooled segments back to the allocator until at most `keep` wait
    /// in the free list (after the cold pass shrank the data: RSS follows it down).
    pub fn trim_free(&self, keep: usize) {
        let allocated = self.pool.lock().allocated;
        self.free_pooled(self.in_use().min(allocated) + keep);
    }

    /// Frees pooled segments while more than `keep` segments have memory.
    fn free_pooled(&self, keep: usize) {
        let mut pool = self.pool.lock();
        while pool.allocated > keep {
            let Some(id) = pool.free.pop() else { break };
            let slot = self.slot(id);
            let data = slot.data.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !data.is_null() {
                // SAFETY: `data` came from `alloc_zeroed` with this layout, and a free
                // segment has no index entries and no pins (`give_back` retires a pinned
                // one instead of pooling it), so nothing reads it any more.
                unsafe { dealloc(data, self.layout()) };
                pool.allocated -= 1;
            }
            // The id is reused (its memory allocated again) once no free id is left.
            pool.bare.push(id);
        }
    }

    fn layout(&self) -> Layout {
        Layout::from_size_align(self.segment_size, 4096).expect("segment size is valid")
    }

    /// The address of a segment's first byte.
    pub fn base(&self, id: u32) -> *mut u8 {
        self.slot(id).data.load(Ordering::Acquire)
    }

    /// Appends `len` bytes to `bucket`'s open segment, sealing it and opening another when it
    /// is full, and calls `write` on the reserved bytes with the bucket's lock held. Returns
    /// where the bytes went.
    ///
    /// # Panics
    /// If `len` is more than a segment: callers cut such values into chunks first
    /// ([`super::chunks`]), so this is a bug, and writing on would pass the allocation's end.
    pub fn append(
        &self,
        bucket: u32,
        len: usize,
        reserve: usize,
        overdraw: usize,
        expiry_ms: u64,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<(u32, u32), NoSegment> {
        // A real check, not a debug one: the write below is in bounds only because of it.
        assert!(
            len <= self.segment_size,
            "a {len}-byte record does not fit a {}-byte segment",
            self.segment_size
        );
        let mut guard = self.buckets[bucket as usize].lock();
        let id = match guard.open {
            Some(id)
                if self.slot(id).write_offset.load(Ordering::Relaxed) as usize + len
                    <= self.segment_size =>
            {
                id
            }
            open => {
                let id = self.take(bucket, reserve, overdraw)?;
                if let Some(full) = open {
                    guard.sealed.push_back(full);
                }
                guard.open = Some(id);
                id
            }
        };
        let slot = self.slot(id);
        let offset = slot.write_offset.load(Ordering::Relaxed);
        // SAFETY: bytes `offset..offset + len` of segment `id` lie within its allocation of
        // `segment_size` bytes: either the open segment had room (`offset + len <=
        // segment_size`, the match guard above) or the segment is fresh (`offset == 0`, and
        // `len <= segment_size` by the assert at the top). They lie at or past its write
        // offset, so no item and no reader refers to them; the bucket lock we hold makes us
        // their only writer. `take` allocated the memory, so `base(id)` is not null.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(self.base(id).add(offset as usize), len) };
        write(dst);
        slot.write_offset
            .store(offset + len as u32, Ordering::Release);
        // Counted live from the moment it is written, so a reclaimer never frees a segment
        // whose writer has not yet published its index entry.
        slot.live_items.fetch_add(1, Ordering::Relaxed);
        slot.live_bytes.fetch_add(len as u32, Ordering::Relaxed);
        if expiry_ms > slot.max_expiry_ms.load(Ordering::Relaxed) {
            slot.max_expiry_ms.store(expiry_ms, Ordering::Relaxed);
        }
        Ok((id, offset))
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        let layout = self.layout();
        for (number, chunk) in self.table.iter().enumerate() {
            let Some(chunk) = chunk.get() else { continue };
            for (i, slot) in chunk.iter().enumerate() {
                let id = (number * CHUNK + i) as u32;
                let data = slot.data.load(Ordering::Acquire);
                if !data.is_null() && !self.pins.is_pinned(id) {
                    // SAFETY: allocated by `take` with this layout; the store is being
                    // dropped and no pin holds it, so no reader is left. (A pinned segment is
                    // leaked instead: its pin may outlive the store.)
                    unsafe { dealloc(data, layout) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taking a whole budget and giving it back, with the memory freed each time (as a
    /// flush does), reuses the same ids forever.
    #[test]
    fn freed_ids_are_taken_again_before_fresh_ones() {
        let segments = Segments::with_id_space(64 << 10, 8, 2, 10);
        for round in 0..10_000 {
            let taken: Vec<u32> = (0..8)
                .map(|_| segments.take(1, 0, 0).expect("an id"))
                .collect();
            assert!(
                taken.iter().all(|&id| (1..=8).contains(&id)),
                "{round}: {taken:?}"
            );
            for id in taken {
                segments.give_back(id);
            }
            match round % 3 {
                0 => segments.release_free(),
                1 => {
                    segments.set_budget(2);
                    segments.set_budget(8);
                }
                _ => {}
            }
        }
        assert_eq!(segments.highest_id(), 8);
        assert_eq!(segments.take(1, 0, 0).map(|_| ()), Ok(()));
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn a_record_longer_than_a_segment_is_refused_before_it_is_written() {
        let segments = Segments::with_id_space(64 << 10, 8, 1, 10);
        let _ = segments.append(0, (64 << 10) + 1, 0, 0, 0, |_| unreachable!());
    }
}
