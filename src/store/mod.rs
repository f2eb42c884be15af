//! The store: every item of every protocol, bounded by the memory limit.
//!
//! Items are records appended to fixed-size segments ([`segments`], laid out as in
//! [`layout`]); a key finds its record through its shard's tagged hash index ([`index`]).
//! Segments are grouped by time to live ([`ttl`]) so that expiry drops whole segments, and
//! are reclaimed whole ([`reclaim`]): expired ones first, then mostly-dead ones (compaction),
//! then the eviction policy's victim, whose recently or frequently used items are copied
//! forward instead of dropped (merge eviction, which a single scan of cold keys cannot
//! flush the hot set through). Values larger than a segment are chains of chunk records
//! ([`chunks`]); typed values (hashes, sorted sets, lists, sets) live on the heap, named by the record, and
//! count against the same limit. Values are stored raw; those of 4 KiB and more are packed
//! with zstd once they turn cold, off the request path, and stored raw again when read
//! ([`cold`], [`compress`]); keys may belong to named pools with their own counters ([`pool`]).
//!
//! Reads go through [`Store::get`], which hands an [`ItemView`] to a closure and never lets
//! it escape ([`Store::peek`] for a look at a key's [`Entry`] that writes nothing). Every
//! write runs on a key's locked [`Entry`]: [`Store::edit`] for read-modify-write commands,
//! [`Store::apply`] for memcached's fixed [`Mutation`]s. When the entry ends it reports one
//! [`Effect`] (`effect.rs`), the one hook where notifications, replication and metrics see
//! every change; expiry and eviction report theirs from wherever they happen.
//!
//! The store knows no protocol: times are unix milliseconds passed in by the caller
//! (`now_ms`), keys and values are bytes, answers are [`Outcome`]s.
//!
//! Lock order: one shard mutex, then one TTL bucket mutex, then the segment pool mutex;
//! never two shards at once, except a flush, which takes every shard in index order (and
//! nothing that waits for a shard is held by anyone while holding one). Reclaiming (which takes shards one at a time) runs only with no
//! shard held, serialized by `reclaim_lock`. The memory bound is restored after each write
//! with no lock held; while holding a shard a writer may overdraw the segment budget by
//! [`OVERDRAW`] segments (the bound is "the limit plus one segment per worker").

mod chunks;
mod cold;
mod compress;
mod effect;
pub mod encoding;
mod entry;
pub mod hash;
mod index;
mod item;
mod layout;
pub mod list;
mod mutation;
mod operations;
mod pin;
mod policy;
pub mod pool;
mod reclaim;
mod records;
mod segments;
pub mod set;
mod shard;
mod snapshot;
pub mod stream;
mod survey;
mod ttl;
mod vocabulary;
mod writes;
pub mod zset;

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use parking_lot::Mutex;

use chunks::ChunkTable;
pub use compress::Compression;
pub use effect::{
    Effect, KeyPresence, Labels, Observer, PutCause, Removal, StoredForm, StoredItem,
};
pub use entry::{Entry, IfMissing, ItemState, Moved, WrongType};
pub use hash::{Field, HashObject};
pub use item::{Expiry, ItemView, Object, ITEM_OVERHEAD};
use layout::{info, ItemMut, ItemRef, NewItem};
pub use list::{End, ListObject};
pub use mutation::{Delete, Mutation, StaleCas, Write, WriteMode};
pub use pin::PinnedValue;
pub use policy::EvictionPolicy;
use policy::{lfu_increment, POLICIES};
pub use pool::{PoolConfig, PoolStats};
use pool::{PoolEvent, Pools};
use segments::Segments;
pub use set::SetObject;
use shard::Shard;
pub use snapshot::{
    stored_plain_len, unpack_stored, RestoreError, RestoredValue, ShardWalk, SLICE_BUCKETS,
};
pub use stream::{StreamError, StreamId, StreamObject};
pub use vocabulary::{KeyKind, Outcome, ReadOptions, Recency, StoreConfig, StoreError, StoreStats};
pub use zset::{LexBound, LexRange, ScoreBound, ScoreRange, ZSet};

/// Number of shards: a power of two, enough that two cores rarely meet on one lock.
const SHARD_COUNT: usize = 64;
const SHARD_BITS: u32 = SHARD_COUNT.trailing_zeros();
/// The default segment size.
pub const DEFAULT_SEGMENT_SIZE: usize = 1 << 20;
/// The smallest segment size.
pub const MIN_SEGMENT_SIZE: usize = 64 << 10;
/// Segments a writer holding a shard may take beyond the budget under an evicting policy.
const OVERDRAW: usize = 4;
/// Segments of the budget that only reclaimers may take (so compaction always has room).
const RESERVE: usize = 1;
/// The access counter of a new item (Redis's `LFU_INIT_VAL`).
const COUNTER_INIT: u8 = 5;

/// The shared store; `Send + Sync`, shared by every worker through an `Arc`.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: crate::hashing::IndexHasher,
    segments: Segments,
    limit_bytes: AtomicUsize,
    /// Bytes of typed values (outside the segments).
    heap_bytes: AtomicUsize,
    item_size_max: usize,
    /// An index into [`POLICIES`] (live: CONFIG SET maxmemory-policy).
    policy: AtomicU8,
    compression: Compression,
    /// Counters of the cold pass and of unpacking.
    cold: cold::ColdStats,
    pools: Pools,
    /// A delayed flush_all runs at this unix ms (0 = none pending).
    pending_flush_ms: AtomicU64,
    /// Who hears of every effect (keyspace notifications; replication and metrics later).
    observer: std::sync::OnceLock<Box<dyn Observer>>,
    /// One reclaimer at a time.
    reclaim_lock: Mutex<()>,
    /// The last reclaim could not restore the budget (nothing the policy may evict): writers
    /// may not overdraw until memory is freed.
    starved: std::sync::atomic::AtomicBool,
}

/// Where a live key's record is: its index position and entry.
#[derive(Debug, Clone, Copy)]
struct Found {
    pos: usize,
    entry: index::Entry,
}

/// The value of an item being written.
enum ValueSpec<'a> {
    /// A string value (compressed here when it pays).
    Bytes(&'a [u8]),
    /// A new typed value.
    NewObject(Object),
    /// The value as already stored by another record of the same shard (kind + bytes; for
    /// typed and large kinds, the heap slot stays with the new record).
    Stored { kind: u8, bytes: &'a [u8] },
}

/// An item being written.
struct ItemSpec<'a> {
    key: &'a [u8],
    value: ValueSpec<'a>,
    flags: u32,
    expiry_ms: u64,
    /// The cas to give it (client-chosen, stored wide); `None` = the shard's next.
    cas: Option<u64>,
    /// State bits (fetched, stale, win sent).
    state: u8,
    /// Keep this access counter (a rewrite of the same item).
    counter: Option<u8>,
    access_s: Option<u32>,
}

impl<'a> ItemSpec<'a> {
    /// A fresh item: a new cas from the shard's counter, no state bits, a new key's counter.
    fn new(key: &'a [u8], value: ValueSpec<'a>, flags: u32, expiry_ms: u64) -> Self {
        ItemSpec {
            key,
            value,
            flags,
            expiry_ms,
            cas: None,
            state: 0,
            counter: None,
            access_s: None,
        }
    }

    fn string(key: &'a [u8], value: &'a [u8], flags: u32, expiry_ms: u64) -> Self {
        Self::new(key, ValueSpec::Bytes(value), flags, expiry_ms)
    }

    /// A typed value: no flags, no expiry (Redis sets start persistent).
    fn object(key: &'a [u8], object: Object) -> Self {
        Self::new(key, ValueSpec::NewObject(object), 0, 0)
    }
}

/// A string value read out of a record: borrowed, or to be decompressed.
enum StoredValue<'a> {
    Plain(&'a [u8]),
    Compressed(&'a [u8]),
    Object(&'a Object),
    /// A value larger than a segment, in chunk records.
    Chunked(ChunkTable<'a>),
}

fn seconds(now_ms: u64) -> u32 {
    (now_ms / 1000).min(u32::MAX as u64) as u32
}

impl Store {
    pub fn new(config: StoreConfig) -> Store {
        let segment_size = Self::segment_size_for(&config);
        let pools = Pools::new(&config.pools);
        let shards = (0..SHARD_COUNT)
            .map(|number| Mutex::new(Shard::new(pools.len(), number)))
            .collect();
        let policy = POLICIES
            .iter()
            .position(|&p| p == config.eviction)
            .unwrap_or(0) as u8;
        let store = Store {
            shards,
            hasher: crate::hashing::IndexHasher::default(),
            segments: Segments::new(segment_size, 0, ttl::BUCKET_COUNT),
            limit_bytes: AtomicUsize::new(config.memory_limit_bytes),
            heap_bytes: AtomicUsize::new(0),
            item_size_max: config.item_size_max,
            policy: AtomicU8::new(policy),
            compression: config.compression,
            cold: cold::ColdStats::default(),
            pools,
            pending_flush_ms: AtomicU64::new(0),
            observer: std::sync::OnceLock::new(),
            reclaim_lock: Mutex::new(()),
            starved: std::sync::atomic::AtomicBool::new(false),
        };
        store.refresh_budget();
        store
    }

    /// The configured segment size, made a power of two between 64 KiB and 1 MiB and no more
    /// than an eighth of the limit (so small limits still have several segments).
    fn segment_size_for(config: &StoreConfig) -> usize {
        let wanted = config
            .segment_size
            .clamp(MIN_SEGMENT_SIZE, index::MAX_SEGMENT_SIZE)
            .min((config.memory_limit_bytes / 8).max(MIN_SEGMENT_SIZE));
        let mut size = MIN_SEGMENT_SIZE;
        while size * 2 <= wanted {
            size *= 2;
        }
        size
    }

    pub fn item_size_max(&self) -> usize {
        self.item_size_max
    }

    pub fn memory_limit(&self) -> usize {
        self.limit_bytes.load(Ordering::Relaxed)
    }

    pub fn segment_size(&self) -> usize {
        self.segments.segment_size()
    }

    /// The longest key the store takes: a quarter of a segment (256 KiB with 1 MiB
    /// segments), so a record's key and header always leave room for a chunk of its value.
    /// memcached keys are at most 250 bytes; only RESP clients can come near it.
    pub fn max_key_len(&self) -> usize {
        self.segments.segment_size() / 4
    }

    /// Changes the memory limit at run time, evicting down to it.
    pub fn set_memory_limit(&self, bytes: usize, now_ms: u64) {
        self.limit_bytes.store(bytes, Ordering::Relaxed);
        self.refresh_budget();
        self.make_room(now_ms);
    }

    pub fn eviction_policy(&self) -> EvictionPolicy {
        POLICIES[self.policy.load(Ordering::Relaxed) as usize]
    }

    /// Changes the eviction policy at run time.
    pub fn set_eviction_policy(&self, policy: EvictionPolicy) {
        let index = POLICIES.iter().position(|&p| p == policy).unwrap_or(0);
        self.policy.store(index as u8, Ordering::Relaxed);
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Installs the observer of every [`Effect`] (once, at server start).
    pub fn set_observer(&self, observer: Box<dyn Observer>) {
        let _ = self.observer.set(observer);
    }

    fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// The shard of a key hash: bits 32..38, independent of the index's home bucket (low 32
    /// bits) and tag (top 12 bits).
    fn shard_of(hash: u64) -> usize {
        ((hash >> 32) as usize) & (SHARD_COUNT - 1)
    }

    /// The segment budget: what the limit leaves after the heap values, in segments, never
    /// below two (one for writers, one for reclaimers).
    fn refresh_budget(&self) {
        let segment = self.segments.segment_size();
        let room = self
            .memory_limit()
            .saturating_sub(self.heap_bytes.load(Ordering::Relaxed));
        self.segments.set_budget((room / segment).max(RESERVE + 1));
    }

    fn add_heap(&self, bytes: usize) {
        self.heap_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.refresh_budget();
    }

    fn sub_heap(&self, bytes: usize) {
        self.heap_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.refresh_budget();
    }
}

#[cfg(test)]
mod cold_tests;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod tests;
