//! Looking over the whole store: SCAN's cursor walk, a random key, the count of keys with an
//! expiry, and the figures of `stats` and INFO (store, pools, changes).
//!
//! Read-only: each takes the shards one at a time and changes nothing but the lazily
//! noticed expiries a walk skips.

use super::records::ReadState;
use super::*;

impl Store {
    /// Visits live keys from `cursor` on, at least `count` of them when there are that many
    /// left, calling `visit` with each; returns the next cursor (0 when the scan is
    /// complete). A cursor is a shard number and a 32-bit hash position: keys are visited in
    /// hash order within a shard, whatever the table's size, so every key present for the
    /// whole scan is visited at least once even if the index grows between calls.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut visit: impl FnMut(&ItemView<'_>),
    ) -> u64 {
        let mut shard_index = (cursor >> 32) as usize;
        let mut position = cursor & 0xffff_ffff;
        let mut visited = 0;
        while shard_index < SHARD_COUNT {
            let guard = self.shards[shard_index].lock();
            let shard = &*guard;
            let buckets = shard.index.bucket_count();
            let mut bucket = shard.index.home_of(position);
            while bucket < buckets {
                let (entries, next) = shard
                    .index
                    // SAFETY: `e` is an entry of the index of the shard held here (the index hands it to this closure while rehashing or scanning).
                    .scan_from(bucket, 1, |e| self.hash(unsafe { self.key_of_entry(e) }));
                for entry in entries {
                    // SAFETY: `entry` comes from the index of the shard held here.
                    let item = unsafe { self.item_at(shard, entry) };
                    if Self::is_expired(item, now_ms) {
                        continue;
                    }
                    let mut scratch = Vec::new();
                    let read = ReadState::untouched(item, entry.counter());
                    let view = self.view(shard, item, now_ms, &mut scratch, read, None);
                    visit(&view);
                    visited += 1;
                }
                bucket = next;
                if visited >= count.max(1) {
                    return if bucket < buckets {
                        ((shard_index as u64) << 32) | index::first_hash_of_bucket(bucket, buckets)
                    } else if shard_index + 1 < SHARD_COUNT {
                        (shard_index as u64 + 1) << 32
                    } else {
                        0
                    };
                }
            }
            shard_index += 1;
            position = 0;
        }
        0
    }

    /// Live keys with an expiry (INFO keyspace `expires=`); walks the whole store.
    pub fn volatile_count(&self, now_ms: u64) -> u64 {
        let mut count = 0;
        let mut cursor = 0;
        loop {
            cursor = self.scan(cursor, 4096, now_ms, |item| {
                if item.expiry() != Expiry::Never {
                    count += 1;
                }
            });
            if cursor == 0 {
                return count;
            }
        }
    }

    /// A key picked at random among the live ones (`seed` chooses where to start looking).
    pub fn random_key(&self, seed: u64, now_ms: u64) -> Option<Vec<u8>> {
        // The shard is drawn in proportion to the keys it holds (a shard after a run of
        // empty ones would otherwise be drawn far more often than its share).
        let counts: Vec<usize> = self.shards.iter().map(|s| s.lock().index.len()).collect();
        let total: usize = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let mut pick = (seed % total as u64) as usize;
        let mut first = 0;
        for (i, &count) in counts.iter().enumerate() {
            if pick < count {
                first = i;
                break;
            }
            pick -= count;
        }
        let seed = seed.rotate_left(29);
        for step in 0..SHARD_COUNT {
            let index = (first + step) % SHARD_COUNT;
            let guard = self.shards[index].lock();
            let shard = &*guard;
            if shard.index.len() == 0 {
                continue;
            }
            let start = (seed >> 8) as usize % shard.index.bucket_count();
            let (entries, _) = shard
                .index
                .scan_from(start, shard.index.bucket_count(), |e| {
                    // SAFETY: `e` is an entry of the index of the shard held here (the index hands it to this closure while rehashing or scanning).
                    self.hash(unsafe { self.key_of_entry(e) })
                });
            // Any of the bucket's entries, starting at a drawn one.
            let from = (seed >> 40) as usize % entries.len().max(1);
            for k in 0..entries.len() {
                let entry = entries[(from + k) % entries.len()];
                // SAFETY: `entry` comes from the index of the shard held here.
                let item = unsafe { self.item_at(shard, entry) };
                if !Self::is_expired(item, now_ms) {
                    return Some(item.key().to_vec());
                }
            }
        }
        None
    }

    /// Counters summed over the shards, and the engine's own figures.
    pub fn stats(&self) -> StoreStats {
        let mut stats = StoreStats {
            limit_maxbytes: self.memory_limit() as u64,
            segment_size: self.segments.segment_size() as u64,
            segments_in_use: self.segments.in_use() as u64,
            segments_allocated: self.segments.allocated() as u64,
            segments_retired: self.segments.retired() as u64,
            segments_retired_total: self.segments.retired_total(),
            heap_bytes: self.heap_bytes.load(Ordering::Relaxed) as u64,
            ..StoreStats::default()
        };
        for shard in self.shards.iter() {
            let shard = shard.lock();
            stats.curr_items += shard.index.len() as u64;
            stats.bytes += shard.pools.iter().map(|p| p.bytes).sum::<u64>();
            stats.index_bytes += shard.index.table_bytes() as u64;
            let c = &shard.counters;
            stats.total_items += c.total_items;
            stats.evictions += c.evictions;
            stats.evicted_unfetched += c.evicted_unfetched;
            stats.reclaimed += c.reclaimed;
            stats.expired_unfetched += c.expired_unfetched;
            stats.moved_items += c.moved_items;
            stats.compressed_items += c.compressed_items;
            stats.compressed_saved_bytes += c.compressed_saved_bytes;
        }
        self.cold.add_to(&mut stats);
        stats
    }

    /// Changes made to the keyspace since start (every effect reported, a flush counting one
    /// per key it removed), as Redis's `dirty` counts them.
    pub fn changes(&self) -> u64 {
        self.shards.iter().map(|s| s.lock().counters.changes).sum()
    }

    /// Counters of every pool, `default` first.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let mut pools: Vec<PoolStats> = (0..self.pools.len())
            .map(|pool| PoolStats {
                name: self.pools.name(pool).to_string(),
                ..PoolStats::default()
            })
            .collect();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for (sum, part) in pools.iter_mut().zip(shard.pools.iter()) {
                sum.add(part);
            }
        }
        pools
    }

    /// Counts a write refused as too large against the key's pool.
    pub fn count_too_large(&self, key: &[u8]) {
        let hash = self.hash(key);
        let pool = self.pools.pool_of(key);
        self.shards[Self::shard_of(hash)].lock().pools[pool].count(PoolEvent::TooLarge);
    }
}
