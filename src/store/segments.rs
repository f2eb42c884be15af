//! The segment arena: fixed-size blocks of memory that items are appended into.
//!
//! Segments are numbered from 1 (index entries keep 24-bit ids; 0 is never used) and their
//! slots are looked up through a two-level table that is allocated lazily, so ids are stable
//! and reading a segment's address takes no lock. (A `slab::Slab` of slots would hand out
//! ids the same way, but finding a slot would then need the pool's lock on every read.) Free
//! ids wait in the pool's free list and are reused first. A segment's memory is allocated when it is
//! first opened and given back to the allocator only when the pool holds more segments than
//! the memory limit allows (after the limit was lowered); freed segments otherwise wait in
//! the pool's free list, so the arena's footprint is bounded by the limit.
//!
//! Each segment belongs to one TTL bucket while it is in use: the bucket's open segment
//! takes appends, its sealed segments wait, oldest first, to expire or be reclaimed
//! (see [`super::ttl`] and the store's reclaim functions).
//!
//! Invariants:
//! - bytes `0..write_offset` of an in-use segment are complete items, written while the
//!   bucket's lock was held; nothing is appended to a sealed segment;
//! - `live_items`/`live_bytes` count the items of the segment that an index entry points
//!   at; they change under the lock of that item's shard;
//! - a segment is returned to the pool only by a reclaimer that took it out of its bucket and
//!   unlinked (or moved) every index entry that pointed into it, each under its shard's lock;
//!   so a reader that found an entry under its shard's lock reads memory that stays valid.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

use super::index::MAX_SEGMENT_ID;

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
    free: Vec<u32>,
    /// Ids never handed out start here.
    next_fresh: u32,
    /// Segments with memory allocated (in use or free).
    allocated: usize,
}

/// Why a segment could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSegment;

pub(crate) struct Segments {
    segment_size: usize,
    table: Box<[OnceLock<Box<[SegmentSlot]>>]>,
    pool: Mutex<Pool>,
    pub buckets: Box<[Mutex<Bucket>]>,
    /// Segments taken out of the pool (open, sealed, or being reclaimed).
    in_use: AtomicUsize,
    /// How many segments may be in use (the memory limit's share for segments).
    budget: AtomicUsize,
    next_seq: AtomicU64,
}

impl Segments {
    pub fn new(segment_size: usize, budget: usize, bucket_count: usize) -> Segments {
        Segments {
            segment_size,
            table: (0..(MAX_SEGMENT_ID as usize + 1).div_ceil(CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
            pool: Mutex::new(Pool {
                free: Vec::new(),
                next_fresh: 1,
                allocated: 0,
            }),
            buckets: (0..bucket_count).map(|_| Mutex::default()).collect(),
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

    /// Segments with memory allocated, in use or waiting in the free list.
    pub fn allocated(&self) -> usize {
        self.pool.lock().allocated
    }

    /// Takes a segment for `bucket`. Ordinary writers leave `reserve` segments of the budget
    /// for reclaimers (which pass 0), so compaction can always move live items somewhere; a
    /// writer that cannot wait for a reclaim may go `overdraw` segments beyond the budget.
    pub fn take(&self, bucket: u32, reserve: usize, overdraw: usize) -> Result<u32, NoSegment> {
        let mut pool = self.pool.lock();
        let in_use = self.in_use.load(Ordering::Relaxed);
        let budget = self.budget();
        let within = in_use + reserve < budget;
        let overdrawn = overdraw > 0 && in_use < budget + overdraw;
        if !within && !overdrawn {
            return Err(NoSegment);
        }
        let id = match pool.free.pop() {
            Some(id) => id,
            None => {
                if pool.next_fresh > MAX_SEGMENT_ID {
                    return Err(NoSegment);
                }
                let id = pool.next_fresh;
                pool.next_fresh += 1;
                id
            }
        };
        let slot = self.slot(id);
        if slot.data.load(Ordering::Relaxed).is_null() {
            // SAFETY: the layout has a non-zero size (segments are at least 64 KiB).
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
        slot.opened_seq.store(
            self.next_seq.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.in_use.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// Gives a reclaimed segment back (no index entry points into it any more).
    pub fn give_back(&self, id: u32) {
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

    /// Frees pooled segments while more than `keep` segments have memory.
    fn free_pooled(&self, keep: usize) {
        let mut pool = self.pool.lock();
        while pool.allocated > keep {
            let Some(id) = pool.free.pop() else { break };
            let slot = self.slot(id);
            let data = slot.data.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !data.is_null() {
                // SAFETY: `data` came from `alloc_zeroed` with this layout, and a free
                // segment has no index entries, so nothing reads it any more.
                unsafe { dealloc(data, self.layout()) };
                pool.allocated -= 1;
            }
            // The id stays in no list: ids are plentiful (2^24) and never reused after this.
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
    pub fn append(
        &self,
        bucket: u32,
        len: usize,
        reserve: usize,
        overdraw: usize,
        expiry_ms: u64,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<(u32, u32), NoSegment> {
        debug_assert!(len <= self.segment_size);
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
        // SAFETY: bytes `offset..offset + len` of segment `id` lie within its allocation
        // (checked above) and past its write offset, so no item and no reader refers to
        // them; the bucket lock we hold makes us their only writer.
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
        for chunk in self.table.iter().filter_map(|c| c.get()) {
            for slot in chunk.iter() {
                let data = slot.data.load(Ordering::Acquire);
                if !data.is_null() {
                    // SAFETY: allocated by `take` with this layout; the store is being
                    // dropped, so no reader is left.
                    unsafe { dealloc(data, layout) };
                }
            }
        }
    }
}
