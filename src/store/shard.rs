//! One lock's worth of the store: a slice of the key space's index, the typed values of
//! those keys, the shard's cas counter and its counters.
//!
//! Invariants (all under the shard's mutex): every index entry points at a written item in
//! an in-use segment whose key hashes to this shard; an item of kind typed names an occupied
//! slot of `objects`, and no two items name the same slot.

use slab::Slab;

use super::index::Index;
use super::item::Object;
use super::pool::PoolStats;

/// Counters of one shard, updated under its lock.
#[derive(Default)]
pub(crate) struct ShardCounters {
    pub total_items: u64,
    pub evictions: u64,
    pub evicted_unfetched: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    /// Items kept by a merge (copied forward instead of evicted) and by compaction.
    pub moved_items: u64,
    pub compressed_items: u64,
    /// Original minus stored bytes of the compressed items present.
    pub compressed_saved_bytes: u64,
    /// Effects reported for this shard's keys (Redis's `dirty`: what a snapshot is behind by).
    pub changes: u64,
}

pub(crate) struct Shard {
    pub index: Index,
    pub objects: Slab<Object>,
    /// The next cas sequence number of this shard.
    pub next_cas: u64,
    /// The last cas handed out (restores the top bits of narrow cas fields).
    pub last_cas: u64,
    pub counters: ShardCounters,
    pub pools: Vec<PoolStats>,
    /// State of the coin the LFU counter tosses (xorshift64*, never zero).
    coin: u64,
}

impl Shard {
    /// Shard number `number` of a store whose item pools number `pools`.
    pub fn new(pools: usize, number: usize) -> Shard {
        Shard {
            index: Index::new(),
            objects: Slab::new(),
            next_cas: 1,
            last_cas: 0,
            counters: ShardCounters::default(),
            pools: vec![PoolStats::default(); pools],
            coin: coin_seed(number) | 1,
        }
    }

    /// A uniform pseudo-random number for the LFU counter's coin.
    pub fn toss_coin(&mut self) -> u64 {
        let mut x = self.coin;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.coin = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Where shard `number`'s coin starts: from the project's map hasher, so at random in the
/// server and fixed in fuzzing builds (`crate::hashing`), where a fuzz input must count
/// accesses, and evict, the same way in every run (fuzzing round 11, commit `34e0e2ae5`); the
/// coin used to be one per thread, seeded from a stack address.
fn coin_seed(number: usize) -> u64 {
    use std::hash::BuildHasher;
    crate::hashing::MapHasher::default().hash_one(number)
}
