//! Getting segments back: expiry, compaction and eviction, all at segment granularity.
//!
//! A reclaimer takes one segment out of its TTL bucket and walks its records in order. For
//! each record an index entry still points at (checked under that key's shard lock), it
//! either drops the record (expired, or evicted) or copies it forward to the open segment of
//! the record's TTL bucket and repoints the entry; then the segment goes back to the pool.
//!
//! Which segment, in order of preference:
//! 1. a segment whose every record has expired (the oldest of a TTL bucket, once its latest
//!    expiry passed): dropped with no choice to make;
//! 2. the emptiest segment, if at most a quarter of it is live (under `noeviction`, if at
//!    least 1/64 of it is dead): compacted, every live record copied forward;
//! 3. the policy's victim: the oldest segment (`allkeys-*`), the oldest segment with an
//!    expiry (`volatile-lru`/`volatile-lfu`), or the segment expiring first
//!    (`volatile-ttl`). A merge keeps the records that earned it (LRU: read since they were
//!    written or last kept; LFU: a frequency counter above the initial value) up to 3/4 of a
//!    segment, and drops the rest as evictions.
//!
//! Invariants: one reclaimer at a time (`reclaim_lock`); a segment taken out of its bucket
//! belongs to its taker (a reclaimer, or the cold pass of [`super::cold`]), and only its taker
//! gives it back or puts it back; a reclaimer holds no shard lock
//! while it takes a bucket lock to pick a victim; it never frees a segment that still has
//! live records (it waits for `live_items` to reach zero by unlinking or moving them all).

use std::sync::atomic::Ordering;

use super::chunks::ChunkTable;
use super::layout::{self, info};
use super::{ttl, EvictionPolicy, Found, Store, COUNTER_INIT, RESERVE};

/// Why a segment is being reclaimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Expired,
    Compact,
    Evict(EvictionPolicy),
}

impl Store {
    /// Whether writers have eaten into the reclaimers' reserve or overdrawn the budget.
    fn over_budget(&self) -> bool {
        self.segments.in_use() + RESERVE > self.segments.budget()
    }

    /// Reclaims segments until the budget holds again (writers overdraw it while holding a
    /// shard; see the module documentation of the store), or nothing more can be reclaimed.
    /// Called with no lock held.
    pub(super) fn make_room(&self, now_ms: u64) {
        // Bounded: a reclaim that only moved records (all of them live) must not spin.
        let mut rounds = self.segments.budget() * 2 + 16;
        while self.over_budget() && rounds > 0 {
            rounds -= 1;
            if !self.reclaim_one(now_ms, false) {
                break;
            }
        }
        if self.over_heap() && self.eviction_policy() != EvictionPolicy::NoEviction {
            self.evict_heap(now_ms);
        }
        self.starved.store(self.over_budget(), Ordering::Relaxed);
    }

    /// Whether heap values (typed and large) push the store past its limit even with the
    /// segments down to their floor.
    fn over_heap(&self) -> bool {
        let heap = self.heap_bytes.load(Ordering::Relaxed);
        heap > 0
            && self.segments.in_use() * self.segments.segment_size() + heap > self.memory_limit()
    }

    /// Evicts records holding heap values, oldest segment first, until the limit holds: one
    /// small record can hold megabytes, so segment-sized steps would be far too coarse. A
    /// record read since it was written (or since the last pass) gets a second chance.
    fn evict_heap(&self, now_ms: u64) {
        let _reclaiming = self.reclaim_lock.lock();
        let policy = self.eviction_policy();
        let mut segments: Vec<(u64, u32)> = Vec::new();
        for (number, bucket) in self.segments.buckets.iter().enumerate() {
            if number == ttl::NEVER as usize && policy.volatile_only() {
                continue;
            }
            let bucket = bucket.lock();
            for &id in bucket.sealed.iter().chain(bucket.open.iter()) {
                segments.push((
                    self.segments.slot(id).opened_seq.load(Ordering::Relaxed),
                    id,
                ));
            }
        }
        segments.sort_unstable();
        for _pass in 0..2 {
            for &(_, id) in &segments {
                // SAFETY (of the walk): we hold `reclaim_lock`, the only way a segment is
                // freed, and read only records below its published write offset.
                let end = self.segments.slot(id).write_offset.load(Ordering::Acquire) as usize;
                let base = self.segments.base(id);
                let mut offset = 0;
                while offset < end {
                    if !self.over_heap() {
                        return;
                    }
                    // SAFETY: see above; records below the write offset are complete and
                    // their layout bytes immutable.
                    let (layout, key) = unsafe {
                        let ptr = base.add(offset);
                        let layout = layout::read_layout(ptr);
                        let key =
                            std::slice::from_raw_parts(ptr.add(layout.key_at), layout.key_len);
                        (layout, key)
                    };
                    let total = layout.total_len();
                    if layout.format & info::KIND_MASK == info::KIND_TYPED {
                        self.evict_heap_record(id, offset, key, policy, now_ms);
                    }
                    offset += total;
                }
            }
        }
    }

    fn evict_heap_record(
        &self,
        id: u32,
        offset: usize,
        key: &[u8],
        policy: EvictionPolicy,
        now_ms: u64,
    ) {
        let hash = self.hash(key);
        let mut guard = self.shards[Self::shard_of(hash)].lock();
        let shard = &mut *guard;
        let Some(pos) = shard.index.find(hash, |entry| {
            entry.segment() == id && entry.offset() as usize == offset
        }) else {
            return;
        };
        let found = Found {
            pos,
            entry: shard.index.get(pos),
        };
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        let expired = Store::is_expired(item, now_ms);
        let counter = found.entry.counter();
        if !expired && counter > COUNTER_INIT {
            // A second chance: LRU forgets the mark, LFU decays by one.
            let counter = if policy.counts_frequency() {
                counter - 1
            } else {
                COUNTER_INIT
            };
            shard.index.set(pos, found.entry.with_counter(counter));
        } else {
            self.drop_record(shard, found, now_ms, policy);
        }
    }

    /// Reclaims one segment, if any can be; false when none can. Unless `force`, does
    /// nothing (and says true) when another reclaimer already restored the budget.
    pub(super) fn reclaim_one(&self, now_ms: u64, force: bool) -> bool {
        let _reclaiming = self.reclaim_lock.lock();
        if !force && !self.over_budget() {
            return true;
        }
        if self.free_empty_segments() > 0 {
            return true;
        }
        let victim = self
            .take_expired(now_ms)
            .map(|id| (id, Reason::Expired))
            .or_else(|| self.take_compactable().map(|id| (id, Reason::Compact)))
            .or_else(|| {
                let policy = self.eviction_policy();
                self.take_victim(policy)
                    .map(|id| (id, Reason::Evict(policy)))
            });
        match victim {
            Some((id, reason)) => {
                self.reclaim_segment(id, reason, now_ms);
                true
            }
            None => false,
        }
    }

    /// Reclaims one fully expired segment, if there is one.
    pub(super) fn reclaim_expired(&self, now_ms: u64) -> bool {
        let _reclaiming = self.reclaim_lock.lock();
        match self.take_expired(now_ms) {
            Some(id) => {
                self.reclaim_segment(id, Reason::Expired, now_ms);
                true
            }
            None => false,
        }
    }

    /// Gives back every sealed segment with no live record (after deletes or a flush), and
    /// empties open ones. Returns how many. Called with `reclaim_lock` held.
    pub(super) fn free_empty_segments(&self) -> usize {
        let mut freed = 0;
        for bucket in self.segments.buckets.iter() {
            let mut bucket = bucket.lock();
            let mut kept = std::collections::VecDeque::with_capacity(bucket.sealed.len());
            while let Some(id) = bucket.sealed.pop_front() {
                if self.segments.slot(id).live_items.load(Ordering::Acquire) == 0 {
                    self.segments.give_back(id);
                    freed += 1;
                } else {
                    kept.push_back(id);
                }
            }
            bucket.sealed = kept;
            if let Some(id) = bucket.open {
                // Appends happen under this bucket lock, and count the record live at once,
                // so an open segment with no live record has no writer mid-way either.
                let slot = self.segments.slot(id);
                if slot.live_items.load(Ordering::Acquire) == 0
                    && slot.write_offset.load(Ordering::Relaxed) > 0
                {
                    bucket.open = None;
                    self.segments.give_back(id);
                    freed += 1;
                }
            }
        }
        freed
    }

    /// Takes the oldest segment of a TTL bucket whose records have all expired.
    fn take_expired(&self, now_ms: u64) -> Option<u32> {
        for bucket in self.segments.buckets.iter().skip(1) {
            let mut bucket = bucket.lock();
            if let Some(&id) = bucket.sealed.front() {
                let expiry = self.segments.slot(id).max_expiry_ms.load(Ordering::Relaxed);
                if expiry != 0 && expiry <= now_ms {
                    bucket.sealed.pop_front();
                    return Some(id);
                }
            }
            if let Some(id) = bucket.open {
                let expiry = self.segments.slot(id).max_expiry_ms.load(Ordering::Relaxed);
                if expiry != 0 && expiry <= now_ms {
                    bucket.open = None;
                    return Some(id);
                }
            }
        }
        None
    }

    /// Takes the emptiest sealed segment if compacting it frees enough.
    fn take_compactable(&self) -> Option<u32> {
        let size = self.segments.segment_size();
        let worth = if self.eviction_policy() == EvictionPolicy::NoEviction
            || self.starved.load(Ordering::Relaxed)
        {
            // Nothing else frees memory (the policy, or nothing left it may evict): any
            // segment with a useful amount of dead bytes.
            size - size / 64
        } else {
            size / 4
        };
        let mut best: Option<(u32, u32)> = None; // (live bytes, id)
        for bucket in self.segments.buckets.iter() {
            let bucket = bucket.lock();
            for &id in bucket.sealed.iter() {
                let live = self.segments.slot(id).live_bytes.load(Ordering::Relaxed);
                if best.is_none_or(|(fewest, _)| live < fewest) {
                    best = Some((live, id));
                }
            }
        }
        let (live, id) = best?;
        if live as usize > worth {
            return None;
        }
        self.take_sealed(id)
    }

    /// Takes a sealed segment out of its bucket (None if it moved on meanwhile).
    pub(super) fn take_sealed(&self, id: u32) -> Option<u32> {
        let bucket = self.segments.slot(id).bucket.load(Ordering::Relaxed) as usize;
        let mut bucket = self.segments.buckets[bucket].lock();
        let at = bucket.sealed.iter().position(|&s| s == id)?;
        bucket.sealed.remove(at)
    }

    /// Takes the eviction policy's victim: a sealed segment if there is one, else the
    /// fullest open segment of an eligible bucket.
    fn take_victim(&self, policy: EvictionPolicy) -> Option<u32> {
        if policy == EvictionPolicy::NoEviction {
            return None;
        }
        let skip = usize::from(policy.volatile_only());
        let mut best: Option<(u64, u32)> = None; // (rank, id), smallest rank wins
        for bucket in self.segments.buckets.iter().skip(skip) {
            let bucket = bucket.lock();
            if let Some(&id) = bucket.sealed.front() {
                let slot = self.segments.slot(id);
                let rank = if policy == EvictionPolicy::VolatileTtl {
                    slot.max_expiry_ms.load(Ordering::Relaxed)
                } else {
                    slot.opened_seq.load(Ordering::Relaxed)
                };
                if best.is_none_or(|(least, _)| rank < least) {
                    best = Some((rank, id));
                }
            }
        }
        if let Some((_, id)) = best {
            return self.take_sealed(id);
        }
        let mut fullest: Option<(u32, usize)> = None; // (write offset, bucket)
        for (number, bucket) in self.segments.buckets.iter().enumerate().skip(skip) {
            let bucket = bucket.lock();
            if let Some(id) = bucket.open {
                let written = self.segments.slot(id).write_offset.load(Ordering::Relaxed);
                if written > 0 && fullest.is_none_or(|(most, _)| written > most) {
                    fullest = Some((written, number));
                }
            }
        }
        let (_, number) = fullest?;
        self.segments.buckets[number].lock().open.take()
    }

    /// Walks a segment taken out of its bucket, dropping or moving each live record, and
    /// gives it back to the pool.
    fn reclaim_segment(&self, id: u32, reason: Reason, now_ms: u64) {
        let slot = self.segments.slot(id);
        let end = slot.write_offset.load(Ordering::Acquire) as usize;
        let base = self.segments.base(id);
        let keep_at_most = self.segments.segment_size() / 4 * 3;
        let mut kept = 0usize;
        let mut offset = 0usize;
        while offset < end && slot.live_items.load(Ordering::Acquire) > 0 {
            // SAFETY: bytes 0..end of a segment taken out of its bucket are complete records
            // (written under the bucket lock, which we took after them), and only their
            // immutable parts are read here without the shard lock.
            let (layout, key) = unsafe {
                let ptr = base.add(offset);
                let layout = layout::read_layout(ptr);
                let key = std::slice::from_raw_parts(ptr.add(layout.key_at), layout.key_len);
                (layout, key)
            };
            let total = layout.total_len();
            let hash = self.hash(key);
            let shard_index = Self::shard_of(hash);
            let mut guard = self.shards[shard_index].lock();
            let shard = &mut *guard;
            let here = shard.index.find(hash, |entry| {
                entry.segment() == id && entry.offset() as usize == offset
            });
            if here.is_none()
                && layout.format & info::KIND_MASK == info::KIND_LARGE
                && !self.reclaim_chunk(shard, hash, key, (id, offset as u32), reason, now_ms)
            {
                // A live chunk that could not move and may not be evicted: put the segment
                // back, as for a record below.
                drop(guard);
                let bucket = slot.bucket.load(Ordering::Relaxed) as usize;
                self.segments.buckets[bucket].lock().sealed.push_front(id);
                return;
            }
            if let Some(pos) = here {
                let found = Found {
                    pos,
                    entry: shard.index.get(pos),
                };
                // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
                let item = unsafe { self.item_at(shard, found.entry) };
                let expiry = item.expiry_ms();
                let keep = match reason {
                    _ if expiry != 0 && expiry <= now_ms => false,
                    Reason::Expired | Reason::Compact => true,
                    // LRU: read since written or last kept; LFU: a (decaying) frequency
                    // above a new key's. Either way the counter is above its initial value.
                    Reason::Evict(_) => {
                        found.entry.counter() > COUNTER_INIT && kept + total <= keep_at_most
                    }
                };
                let moved = keep && self.move_forward(shard, found, reason, now_ms);
                if keep && !moved && self.eviction_policy() == EvictionPolicy::NoEviction {
                    // Nowhere to move it and nothing may be evicted: put the segment back,
                    // its remaining records untouched (those moved so far are dead here).
                    drop(guard);
                    let bucket = slot.bucket.load(Ordering::Relaxed) as usize;
                    self.segments.buckets[bucket].lock().sealed.push_front(id);
                    return;
                }
                if moved {
                    kept += total;
                    shard.counters.moved_items += 1;
                } else {
                    let policy = match reason {
                        Reason::Evict(policy) => policy,
                        _ => self.eviction_policy(),
                    };
                    self.drop_record(shard, found, now_ms, policy);
                }
            }
            drop(guard);
            offset += total;
        }
        self.segments.give_back(id);
    }

    /// A record of kind large that no entry points at may be a chunk of a live value: if its
    /// key's head lists it, move it (compaction, expiry of a touched value) or drop the whole
    /// value. False only when a live chunk had to stay (no room, and nothing may be evicted).
    pub(super) fn reclaim_chunk(
        &self,
        shard: &mut super::Shard,
        hash: u64,
        key: &[u8],
        place: (u32, u32),
        reason: Reason,
        now_ms: u64,
    ) -> bool {
        let Some(pos) = shard.index.find(hash, |entry| {
            // SAFETY: `entry` comes from the index of the shard held here.
            unsafe { self.item_at(shard, entry) }.key() == key
        }) else {
            return true;
        };
        let found = Found {
            pos,
            entry: shard.index.get(pos),
        };
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let head = unsafe { self.item_at(shard, found.entry) };
        if head.kind() != info::KIND_LARGE {
            return true;
        }
        let Some(i) = ChunkTable::parse(head.raw_value()).position_of(place.0, place.1) else {
            return true;
        };
        let expiry = head.expiry_ms();
        let expired = expiry != 0 && expiry <= now_ms;
        let keep = !expired
            && match reason {
                Reason::Expired | Reason::Compact => true,
                Reason::Evict(_) => false,
            };
        if keep {
            // SAFETY: `place` is listed (at `i`) by the table of the head `found`, which is
            // in the index of the shard we hold.
            let chunk = unsafe { self.chunk_at(shard, place) };
            let bytes = chunk.bytes.to_vec();
            let appended = self.segments.append(
                ttl::bucket_of(expiry, now_ms),
                bytes.len(),
                0,
                0,
                expiry,
                |dst| dst.copy_from_slice(&bytes),
            );
            if let Ok((segment, offset)) = appended {
                // SAFETY: the live chunk listed at `i`, whose listing is rewritten just below
                // (under the same shard lock) to name its copy.
                unsafe { self.release_record(place.0, place.1) };
                let mut location = [0u8; 8];
                location[..4].copy_from_slice(&segment.to_le_bytes());
                location[4..].copy_from_slice(&offset.to_le_bytes());
                self.item_mut(shard, found.entry)
                    .write_value(ChunkTable::entry_at(i), &location);
                shard.counters.moved_items += 1;
                return true;
            }
            if self.eviction_policy() == EvictionPolicy::NoEviction {
                return false;
            }
        }
        let policy = match reason {
            Reason::Evict(policy) => policy,
            _ => self.eviction_policy(),
        };
        self.drop_record(shard, found, now_ms, policy);
        true
    }

    /// Copies a record to the open segment of its TTL bucket and repoints its entry. A kept
    /// LRU record loses its mark (it must be read again to survive the next merge). False if
    /// no segment could be had.
    pub(super) fn move_forward(
        &self,
        shard: &mut super::Shard,
        found: Found,
        reason: Reason,
        now_ms: u64,
    ) -> bool {
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        let expiry = item.expiry_ms();
        let len = item.bytes.len();
        let bytes = item.bytes.to_vec();
        let appended =
            self.segments
                .append(ttl::bucket_of(expiry, now_ms), len, 0, 0, expiry, |dst| {
                    dst.copy_from_slice(&bytes)
                });
        let Ok((segment, offset)) = appended else {
            return false;
        };
        if self.is_raw_candidate(item.kind(), item.raw_value()) {
            // Still raw: the cold pass may pack it once it has not been read for a while.
            self.note_raw_candidate(segment, item.access_s());
        }
        let old = self.segments.slot(found.entry.segment());
        old.live_items.fetch_sub(1, Ordering::Relaxed);
        old.live_bytes.fetch_sub(len as u32, Ordering::Relaxed);
        let mut entry = found.entry.moved(segment, offset);
        if let Reason::Evict(policy) = reason {
            if !policy.counts_frequency() {
                entry = entry.with_counter(COUNTER_INIT);
            }
        }
        shard.index.set(found.pos, entry);
        true
    }
}
