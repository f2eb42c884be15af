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
//! never two shards at once. Reclaiming (which takes shards one at a time) runs only with no
//! shard held, serialized by `reclaim_lock`. The memory bound is restored after each write
//! with no lock held; while holding a shard a writer may overdraw the segment budget by
//! [`OVERDRAW`] segments (the bound is "the limit plus one segment per worker").

mod chunks;
mod cold;
mod compress;
mod effect;
mod entry;
pub mod hash;
mod index;
mod item;
mod layout;
pub mod list;
mod mutation;
mod pin;
pub mod pool;
mod reclaim;
mod segments;
pub mod set;
mod shard;
mod snapshot;
mod ttl;
pub mod zset;

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use parking_lot::Mutex;

use chunks::ChunkTable;
pub use compress::Compression;
pub use effect::{Effect, Observer, PutCause, Removal, StoredForm, StoredItem};
pub use entry::{Entry, IfMissing, ItemState, Moved, WrongType};
pub use hash::{Field, HashObject};
pub use item::{Expiry, ItemView, Object, ITEM_OVERHEAD};
use layout::{info, ItemMut, ItemRef, NewItem};
pub use list::{End, ListObject};
pub use mutation::{Delete, Mutation, StaleCas, Write, WriteMode};
pub use pin::PinnedValue;
pub use pool::{PoolConfig, PoolStats};
use pool::{PoolEvent, Pools};
use segments::Segments;
pub use set::SetObject;
use shard::Shard;
pub use snapshot::{RestoreError, RestoredValue};
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

/// Why the store refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The key holds a value of another type.
    #[error("the key holds a value of another type")]
    WrongType,
    /// The value or key is larger than the store takes.
    #[error("the value is too large")]
    TooLarge,
    /// No room under the memory limit (and the policy may not evict).
    #[error("out of memory")]
    OutOfMemory,
}

impl From<WrongType> for StoreError {
    fn from(_: WrongType) -> Self {
        StoreError::WrongType
    }
}

impl From<StoreError> for Outcome {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::WrongType => Outcome::WrongType,
            StoreError::TooLarge => Outcome::TooLarge,
            StoreError::OutOfMemory => Outcome::OutOfMemory,
        }
    }
}

/// What a mutation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored {
        cas: u64,
    },
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    TooLarge,
    OutOfMemory,
    Flushed,
    /// The key holds a typed value the operation cannot work on.
    WrongType,
}

/// Whether a read counts as a use of the item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Recency {
    /// Leave the item's access time, LRU/LFU counter and fetched mark as they are (meta `u`,
    /// OBJECT, a RESP client under CLIENT NO-TOUCH).
    #[default]
    Keep,
    /// Record the access: access time, LRU/LFU counter, fetched mark.
    Bump,
}

/// Side effects of a read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Whether the read records an access of the item.
    pub recency: Recency,
    /// Also set the expiry (gat, meta `T`).
    pub touch: Option<Expiry>,
    /// On a miss, create an empty placeholder with this expiry and win its recache (meta `N`).
    pub vivify: Option<Expiry>,
    /// Win the recache when fewer than this many seconds of TTL are left (meta `R`).
    pub recache_below_secs: Option<i64>,
    /// Take part in the win-token protocol (meta `mg`): a stale or recache-due item hands
    /// this read a win (`W`) once, later reads learn it was taken (`Z`).
    pub claim_win: bool,
}

impl ReadOptions {
    pub fn plain() -> ReadOptions {
        ReadOptions {
            recency: Recency::Bump,
            ..ReadOptions::default()
        }
    }
}

/// Figures for `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub curr_items: u64,
    pub bytes: u64,
    pub total_items: u64,
    pub evictions: u64,
    pub evicted_unfetched: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub limit_maxbytes: u64,
    /// Segment size and segments in use / with memory allocated.
    pub segment_size: u64,
    pub segments_in_use: u64,
    pub segments_allocated: u64,
    /// Bytes of typed values (on the heap).
    pub heap_bytes: u64,
    /// Bytes of the hash index tables.
    pub index_bytes: u64,
    /// Items copied forward by merges and compaction instead of being dropped.
    pub moved_items: u64,
    pub compressed_items: u64,
    pub compressed_saved_bytes: u64,
    /// Values the cold pass packed with zstd, and found incompressible (kept verbatim,
    /// never tried again), since start.
    pub compress_packed: u64,
    pub compress_incompressible: u64,
    /// Time spent packing, in µs (on the maintenance thread).
    pub compress_time_us: u64,
    /// Values unpacked for a read, and the time it took in µs.
    pub decompressions: u64,
    pub decompress_time_us: u64,
    /// Packed values read and stored raw again.
    pub compress_promoted: u64,
    /// Segments the cold pass rewrote.
    pub compress_cold_segments: u64,
    /// Segments reclaimed while a reply was still being sent from them (kept until it is).
    pub segments_retired: u64,
    pub segments_retired_total: u64,
}

/// The type of value a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    String,
    Hash,
    ZSet,
    List,
    Set,
}

/// How the store is sized.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub memory_limit_bytes: usize,
    pub item_size_max: usize,
    pub eviction: EvictionPolicy,
    /// Segment size in bytes (64 KiB to 1 MiB; smaller when the limit is small).
    pub segment_size: usize,
    pub compression: Compression,
    pub pools: Vec<PoolConfig>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            memory_limit_bytes: 64 << 20,
            item_size_max: 1 << 20,
            eviction: EvictionPolicy::AllKeysLru,
            segment_size: DEFAULT_SEGMENT_SIZE,
            compression: Compression::default(),
            pools: Vec::new(),
        }
    }
}

/// What happens when a write would pass the memory limit (Redis's `maxmemory-policy`;
/// memcached's `-M` is `NoEviction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// Evict the least recently used keys, whatever they are.
    AllKeysLru,
    /// Evict the least frequently used keys, whatever they are.
    AllKeysLfu,
    /// Evict the least recently used keys among those with an expiry.
    VolatileLru,
    /// Evict the least frequently used keys among those with an expiry.
    VolatileLfu,
    /// Evict the keys closest to their expiry.
    VolatileTtl,
    /// Evict nothing: the write fails with OutOfMemory.
    NoEviction,
}

const POLICIES: [EvictionPolicy; 6] = [
    EvictionPolicy::AllKeysLru,
    EvictionPolicy::AllKeysLfu,
    EvictionPolicy::VolatileLru,
    EvictionPolicy::VolatileLfu,
    EvictionPolicy::VolatileTtl,
    EvictionPolicy::NoEviction,
];

impl EvictionPolicy {
    /// The Redis name.
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::AllKeysLfu => "allkeys-lfu",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
            EvictionPolicy::NoEviction => "noeviction",
        }
    }

    pub fn from_name(name: &str) -> Option<EvictionPolicy> {
        let name = name.to_ascii_lowercase();
        POLICIES.into_iter().find(|policy| policy.name() == name)
    }

    /// Only keys with an expiry may be evicted.
    fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru | EvictionPolicy::VolatileLfu | EvictionPolicy::VolatileTtl
        )
    }

    /// Whether accesses feed the LFU counter (else the counter is a recency mark).
    fn counts_frequency(self) -> bool {
        matches!(
            self,
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu
        )
    }
}

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

    // ---- reading records ----

    /// The record an index entry of `shard` points at, borrowed while the shard is.
    ///
    /// # Safety
    /// `entry` must be in the index of `shard` now (found in it, or yielded by it, and not
    /// removed or replaced since). Nothing checks it: an entry that is stale or of another
    /// shard may point into a segment that was freed or reused, and the record read there
    /// would be garbage. Segments are reused (see `segments.rs`), so this is not theoretical.
    unsafe fn item_at<'s>(&'s self, _shard: &'s Shard, entry: index::Entry) -> ItemRef<'s> {
        let base = self.segments.base(entry.segment());
        // SAFETY: the caller guarantees the entry is in the index of the shard we hold
        // (borrowed for 's), so its segment is in use and holds a complete record at this
        // offset, which stays valid until the entry is removed, which needs the shard mutably.
        unsafe {
            let ptr = base.add(entry.offset() as usize);
            let layout = layout::read_layout(ptr);
            ItemRef {
                bytes: std::slice::from_raw_parts(ptr, layout.total_len()),
                layout,
            }
        }
    }

    /// In-place access to the mutable fields of the record `entry` points at.
    fn item_mut(&self, _shard: &mut Shard, entry: index::Entry) -> ItemMut {
        let base = self.segments.base(entry.segment());
        // SAFETY: as in `item_at`; the shard is borrowed mutably, so no `ItemRef` of it is
        // alive, and the record stays valid while the entry does.
        unsafe { ItemMut::new(base.add(entry.offset() as usize)) }
    }

    /// The key of the record an entry points at, for rehashing while the index grows.
    ///
    /// # Safety
    /// `entry` must be in the index of a shard the caller holds (as `Index::insert` and
    /// `Index::scan_from` hand their own entries to the closure that calls this); see
    /// [`item_at`](Self::item_at).
    unsafe fn key_of_entry(&self, entry: index::Entry) -> &[u8] {
        let base = self.segments.base(entry.segment());
        // SAFETY: the caller guarantees an entry of the index of a shard it holds, so its
        // record is live; keys never change after they are written.
        unsafe {
            let ptr = base.add(entry.offset() as usize);
            let layout = layout::read_layout(ptr);
            std::slice::from_raw_parts(ptr.add(layout.key_at), layout.key_len)
        }
    }

    fn stored_value<'s>(shard: &'s Shard, item: ItemRef<'s>) -> StoredValue<'s> {
        match item.kind() {
            info::KIND_INLINE => StoredValue::Plain(item.raw_value()),
            info::KIND_COMPRESSED => StoredValue::Compressed(item.raw_value()),
            info::KIND_TYPED => StoredValue::Object(&shard.objects[item.object_id()]),
            _ => StoredValue::Chunked(ChunkTable::parse(item.raw_value())),
        }
    }

    /// The string value of a record (decompressed or assembled into `scratch` if needed)
    /// and its object.
    fn value_of<'s>(
        &self,
        shard: &'s Shard,
        item: ItemRef<'s>,
        scratch: &'s mut Vec<u8>,
    ) -> (&'s [u8], Option<&'s Object>) {
        match Self::stored_value(shard, item) {
            StoredValue::Plain(bytes) => (bytes, None),
            StoredValue::Compressed(stored) => match compress::verbatim(stored) {
                Some(value) => (value, None),
                None => {
                    self.unpack(stored, scratch);
                    (&scratch[..], None)
                }
            },
            StoredValue::Object(object) => (&[], Some(object)),
            StoredValue::Chunked(table) => {
                if table.compressed() {
                    let mut stored = Vec::new();
                    // SAFETY: `table` is the chunk table of a record just read from this shard's index, which is held.
                    unsafe { self.assemble(shard, table, &mut stored) };
                    self.unpack(&stored, scratch);
                } else {
                    // SAFETY: `table` is the chunk table of a record just read from this shard's index, which is held.
                    unsafe { self.assemble(shard, table, scratch) };
                }
                (&scratch[..], None)
            }
        }
    }

    /// Bytes charged to a record: the record plus its chunks or its heap value.
    fn charge(&self, shard: &Shard, item: ItemRef<'_>) -> usize {
        item.bytes.len()
            + match Self::stored_value(shard, item) {
                StoredValue::Object(object) => object.bytes(),
                // SAFETY: `table` is the chunk table of a record just read from this shard's index, which is held.
                StoredValue::Chunked(table) => unsafe { self.chunks_len(shard, table) },
                _ => 0,
            }
    }

    fn key_kind(shard: &Shard, item: ItemRef<'_>) -> KeyKind {
        if item.kind() == info::KIND_TYPED {
            match shard.objects[item.object_id()] {
                Object::Hash(_) => KeyKind::Hash,
                Object::ZSet(_) => KeyKind::ZSet,
                Object::List(_) => KeyKind::List,
                Object::Set(_) => KeyKind::Set,
            }
        } else {
            KeyKind::String
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn view<'s>(
        &'s self,
        shard: &'s Shard,
        item: ItemRef<'s>,
        now_ms: u64,
        scratch: &'s mut Vec<u8>,
        fetched_before: bool,
        access_before_s: u32,
        won: bool,
        win_already_sent: bool,
        counter: u8,
        segment: Option<u32>,
    ) -> ItemView<'s> {
        let info_bits = item.info();
        let cas = item.cas(shard.last_cas);
        let (value, object) = self.value_of(shard, item, scratch);
        // A value inside the record (raw or verbatim, not unpacked into `scratch`) can be
        // pinned and sent from the segment.
        let in_record = item.bytes.as_ptr_range().contains(&value.as_ptr());
        let pin = segment.filter(|_| in_record).map(|segment| pin::ValuePin {
            table: &self.segments.pins,
            segment,
        });
        ItemView {
            key: item.key(),
            value,
            object,
            flags: item.flags(),
            cas,
            expiry_ms: item.expiry_ms(),
            stale: info_bits & info::STALE != 0,
            now_ms,
            fetched_before,
            last_access_before_ms: access_before_s as u64 * 1000,
            won,
            win_already_sent,
            counter,
            pin,
        }
    }

    fn is_expired(item: ItemRef<'_>, now_ms: u64) -> bool {
        let expiry = item.expiry_ms();
        expiry != 0 && expiry <= now_ms
    }

    /// Finds a live record, lazily removing it if it expired.
    fn find_live(&self, shard: &mut Shard, hash: u64, key: &[u8], now_ms: u64) -> Option<Found> {
        let pos = {
            let shard_ref = &*shard;
            shard_ref.index.find(hash, |entry| {
                // SAFETY: `entry` comes from the index of the shard held here.
                unsafe { self.item_at(shard_ref, entry) }.key() == key
            })?
        };
        let found = Found {
            pos,
            entry: shard.index.get(pos),
        };
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        if Self::is_expired(unsafe { self.item_at(shard, found.entry) }, now_ms) {
            self.drop_record(shard, found, now_ms, self.eviction_policy());
            return None;
        }
        Some(found)
    }

    /// Removes a record that expired (counted as reclaimed) or, if it has not, evicts it
    /// under `policy` (counted as an eviction, with the policy's reason in its pool).
    fn drop_record(&self, shard: &mut Shard, found: Found, now_ms: u64, policy: EvictionPolicy) {
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        let unfetched = item.info() & info::FETCHED == 0;
        let pool = self.pools.pool_of(item.key());
        let expired = Self::is_expired(item, now_ms);
        self.report(&Effect::Removed {
            key: item.key(),
            kind: Self::key_kind(shard, item),
            cause: if expired {
                Removal::Expired
            } else {
                Removal::Evicted
            },
        });
        shard.counters.changes += 1;
        if expired {
            shard.counters.reclaimed += 1;
            if unfetched {
                shard.counters.expired_unfetched += 1;
            }
            self.unlink(shard, found, Removal::Expired);
        } else {
            shard.counters.evictions += 1;
            if unfetched {
                shard.counters.evicted_unfetched += 1;
            }
            shard.pools[pool].count(if policy.counts_frequency() {
                PoolEvent::EvictedLfu
            } else if policy == EvictionPolicy::VolatileTtl {
                PoolEvent::EvictedTtl
            } else {
                PoolEvent::EvictedLru
            });
            self.unlink(shard, found, Removal::Evicted);
        }
    }

    fn next_cas(shard: &mut Shard, shard_index: usize) -> u64 {
        let seq = shard.next_cas;
        shard.next_cas += 1;
        let cas = (seq << SHARD_BITS) | shard_index as u64;
        shard.last_cas = cas;
        cas
    }

    // ---- writing records ----

    /// Whether writers may overdraw the budget (evicting policies restore it afterwards).
    fn overdraw(&self) -> usize {
        if self.eviction_policy() == EvictionPolicy::NoEviction
            || self.starved.load(Ordering::Relaxed)
        {
            0
        } else {
            OVERDRAW
        }
    }

    /// Writes a record for `spec`, replacing `existing` (whose heap value is freed unless the
    /// new record keeps it). Returns where it went and its cas.
    fn put_item(
        &self,
        shard: &mut Shard,
        shard_index: usize,
        hash: u64,
        existing: Option<Found>,
        spec: ItemSpec<'_>,
        now_ms: u64,
    ) -> Result<(Found, u64), StoreError> {
        let ItemSpec {
            key,
            value,
            flags,
            expiry_ms,
            cas,
            state,
            counter,
            access_s,
        } = spec;
        let pool = self.pools.pool_of(key);
        if key.len() > self.max_key_len() {
            shard.pools[pool].count(PoolEvent::TooLarge);
            return Err(StoreError::TooLarge);
        }
        let keep_heap = matches!(value, ValueSpec::Stored { .. });
        let no_eviction = self.eviction_policy() == EvictionPolicy::NoEviction;
        // The stored form of the value and its kind; a new typed object goes in first. Values
        // are stored raw: the cold pass packs them later, off the request path (`cold`).
        let object_id: [u8; 4];
        let mut new_object: Option<(usize, usize)> = None; // (object slot, bytes)
        let (kind, stored): (u8, &[u8]) = match value {
            ValueSpec::Bytes(bytes) => (info::KIND_INLINE, bytes),
            ValueSpec::NewObject(object) => {
                let bytes = object.bytes();
                if no_eviction && !self.fits(bytes) {
                    shard.pools[pool].count(PoolEvent::OutOfMemory);
                    return Err(StoreError::OutOfMemory);
                }
                let id = shard.objects.insert(object);
                new_object = Some((id, bytes));
                object_id = (id as u32).to_le_bytes();
                (info::KIND_TYPED, &object_id[..])
            }
            ValueSpec::Stored { kind, bytes } => (kind, bytes),
        };
        let table: Vec<u8>;
        let (kind, stored) =
            if kind <= info::KIND_COMPRESSED && self.needs_chunks(key.len(), stored.len()) {
                if stored.len() > self.memory_limit() {
                    shard.pools[pool].count(PoolEvent::OutOfMemory);
                    return Err(StoreError::OutOfMemory);
                }
                // The chunks may take several segments at once: a writer holding a shard may
                // overdraw by that much (the store is brought back under its limit afterwards).
                let chunks_needed = stored.len().div_ceil(self.chunk_payload(key.len()));
                let overdraw = match self.overdraw() {
                    0 => 0,
                    some => some + chunks_needed,
                };
                match self.write_chunks(key, stored, expiry_ms, now_ms, overdraw) {
                    Ok(chunks) => {
                        let form = if kind == info::KIND_COMPRESSED {
                            chunks::TABLE_ZSTD
                        } else {
                            chunks::TABLE_RAW
                        };
                        table = chunks::encode_table(form, stored.len(), &chunks);
                        (info::KIND_LARGE, &table[..])
                    }
                    Err(segments::NoSegment) => {
                        shard.pools[pool].count(PoolEvent::OutOfMemory);
                        return Err(StoreError::OutOfMemory);
                    }
                }
            } else {
                (kind, stored)
            };
        let (cas, narrow) = match cas {
            Some(cas) => (cas, false),
            None => (Self::next_cas(shard, shard_index), true),
        };
        let new = NewItem {
            key,
            value: &[stored],
            info: kind | (state & info::STATE_MASK),
            cas,
            narrow_cas: narrow,
            access_s: access_s.unwrap_or(seconds(now_ms)),
            expiry_ms,
            flags,
        };
        let appended = self.segments.append(
            ttl::bucket_of(expiry_ms, now_ms),
            new.encoded_len(),
            RESERVE,
            self.overdraw(),
            expiry_ms,
            |dst| new.encode(dst),
        );
        let (segment, offset) = match appended {
            Ok(place) => place,
            Err(segments::NoSegment) => {
                if let Some((id, _)) = new_object {
                    drop(shard.objects.remove(id));
                }
                if kind == info::KIND_LARGE && !keep_heap {
                    let table = ChunkTable::parse(stored);
                    for i in 0..table.count() {
                        let (segment, offset) = table.chunk(i);
                        // SAFETY: chunks this call wrote and counted live; the head that
                        // would list them was never written.
                        unsafe { self.release_record(segment, offset) };
                    }
                }
                shard.pools[pool].count(PoolEvent::OutOfMemory);
                return Err(StoreError::OutOfMemory);
            }
        };
        if let Some((_, bytes)) = new_object {
            self.add_heap(bytes);
        }
        if self.is_raw_candidate(kind, stored) {
            self.note_raw_candidate(segment, seconds(now_ms));
        }
        let entry = index::Entry::new(hash, segment, offset, counter.unwrap_or(COUNTER_INIT));
        let pos = match existing {
            Some(old) => {
                self.release(shard, old, keep_heap);
                shard.index.set(old.pos, entry);
                old.pos
            }
            None => shard
                .index
                // SAFETY: `e` is an entry of the index of the shard held here (the index hands it to this closure while rehashing or scanning).
                .insert(hash, entry, |e| self.hash(unsafe { self.key_of_entry(e) })),
        };
        // SAFETY: `entry` comes from the index of the shard held here.
        let item = unsafe { self.item_at(shard, entry) };
        let charge = self.charge(shard, item);
        let saved = self.compression_saving(shard, item);
        if let Some(saved) = saved {
            shard.counters.compressed_items += 1;
            shard.counters.compressed_saved_bytes += saved as u64;
        }
        shard.pools[pool].items += 1;
        shard.pools[pool].bytes += charge as u64;
        Ok((Found { pos, entry }, cas))
    }

    /// Bytes saved by compressing this record's value, if it is compressed.
    fn compression_saving(&self, shard: &Shard, item: ItemRef<'_>) -> Option<usize> {
        match Self::stored_value(shard, item) {
            StoredValue::Compressed(stored) => compress::saving(stored),
            StoredValue::Chunked(table) if table.compressed() => {
                // SAFETY: `table` is the chunk table of a record just read from this shard's index, which is held.
                let original = compress::original_len(unsafe { self.first_chunk(shard, table) });
                Some(original.saturating_sub(table.stored_len()))
            }
            _ => None,
        }
    }

    /// Under `noeviction`, whether `bytes` more fit within the limit.
    fn fits(&self, bytes: usize) -> bool {
        self.segments.in_use() * self.segments.segment_size()
            + self.heap_bytes.load(Ordering::Relaxed)
            + bytes
            <= self.memory_limit()
    }

    /// Forgets the record `old` points at (its key is being rewritten or removed): its bytes
    /// turn dead in their segment, its pool counters drop, its heap value is freed unless
    /// `keep_heap`. The index entry is left for the caller to replace or remove.
    fn release(&self, shard: &mut Shard, old: Found, keep_heap: bool) {
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, old.entry) };
        let len = item.bytes.len();
        let charge = self.charge(shard, item);
        let pool = self.pools.pool_of(item.key());
        let kind = item.kind();
        let saved = self.compression_saving(shard, item);
        let chunks: Vec<(u32, u32)> = match Self::stored_value(shard, item) {
            StoredValue::Chunked(table) if !keep_heap => {
                (0..table.count()).map(|i| table.chunk(i)).collect()
            }
            _ => Vec::new(),
        };
        let object_slot = (kind == info::KIND_TYPED).then(|| item.object_id());
        if let Some(saved) = saved {
            shard.counters.compressed_items -= 1;
            shard.counters.compressed_saved_bytes -= saved as u64;
        }
        let slot = self.segments.slot(old.entry.segment());
        slot.live_items.fetch_sub(1, Ordering::Relaxed);
        slot.live_bytes.fetch_sub(len as u32, Ordering::Relaxed);
        for (segment, offset) in chunks {
            // SAFETY: listed by the head `old`, in the index of the shard we hold; the
            // caller replaces or removes that entry, so nothing releases them again.
            unsafe { self.release_record(segment, offset) };
        }
        shard.pools[pool].items -= 1;
        shard.pools[pool].bytes -= charge as u64;
        if let (Some(id), false) = (object_slot, keep_heap) {
            let object = shard.objects.remove(id);
            self.sub_heap(object.bytes());
        }
    }

    /// Removes a key's record for good. Reports no effect: the caller does (an [`Entry`] when
    /// its edit ends, the reclaimer for what it expires or evicts, a flush once).
    fn unlink(&self, shard: &mut Shard, found: Found, why: Removal) {
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        // A typed value taken by RENAME stays in its heap slot for the taker; chunks of a
        // large value are always released (the taker copied the value out).
        let keep_object = why == Removal::Moved && item.kind() == info::KIND_TYPED;
        let pool = self.pools.pool_of(item.key());
        match why {
            Removal::Expired => shard.pools[pool].count(PoolEvent::Expired),
            Removal::Flushed => shard.pools[pool].count(PoolEvent::Flushed),
            _ => {}
        }
        self.release(shard, found, keep_object);
        shard.index.remove(found.pos);
    }

    /// Hands one effect to the observer (the hook every change passes through).
    fn report(&self, effect: &Effect<'_>) {
        if let Some(observer) = self.observer.get() {
            observer.effect(effect);
        }
    }

    /// Reports that the key of `found` now holds its record.
    fn report_put(&self, shard: &Shard, found: Found, cause: PutCause) {
        if self.observer.get().is_none() {
            return;
        }
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        self.report(&Effect::Put {
            item: StoredItem::new(self, shard, item),
            cause,
        });
    }

    /// Rewrites a key's record with changes that do not fit in place (an expiry where there
    /// was none, a client cas in a narrow field). Keeps value, state and access counter.
    fn rewrite(
        &self,
        shard: &mut Shard,
        shard_index: usize,
        hash: u64,
        found: Found,
        (expiry_ms, cas): (Option<u64>, Option<u64>),
        now_ms: u64,
    ) -> Result<Found, StoreError> {
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        let key = item.key().to_vec();
        let bytes = item.raw_value().to_vec();
        let kind = item.kind();
        let spec = ItemSpec {
            key: &key,
            value: ValueSpec::Stored {
                kind,
                bytes: &bytes,
            },
            flags: item.flags(),
            expiry_ms: expiry_ms.unwrap_or(item.expiry_ms()),
            cas: Some(cas.unwrap_or(item.cas(shard.last_cas))),
            state: item.info() & info::STATE_MASK,
            counter: Some(found.entry.counter()),
            access_s: Some(item.access_s()),
        };
        self.put_item(shard, shard_index, hash, Some(found), spec, now_ms)
            .map(|(found, _)| found)
    }

    /// Sets a record's expiry, in place when it has an expiry field.
    fn set_expiry(
        &self,
        shard: &mut Shard,
        shard_index: usize,
        hash: u64,
        found: Found,
        expiry_ms: u64,
        now_ms: u64,
    ) -> Result<Found, StoreError> {
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let current = unsafe { self.item_at(shard, found.entry) }.expiry_ms();
        if current == expiry_ms {
            return Ok(found);
        }
        // In place when the record has an expiry field. The segment keeps its expiry: when it
        // is dropped, a record whose own expiry is later is copied forward, not lost.
        if self.item_mut(shard, found.entry).set_expiry_ms(expiry_ms) {
            return Ok(found);
        }
        self.rewrite(
            shard,
            shard_index,
            hash,
            found,
            (Some(expiry_ms), None),
            now_ms,
        )
    }

    /// Sets a record's cas (a counter cas fits any field; a client cas may need a rewrite).
    fn set_cas(
        &self,
        shard: &mut Shard,
        shard_index: usize,
        hash: u64,
        found: Found,
        client_cas: Option<u64>,
        now_ms: u64,
    ) -> Result<(Found, u64), StoreError> {
        let (cas, narrow) = match client_cas {
            Some(cas) => (cas, false),
            None => (Self::next_cas(shard, shard_index), true),
        };
        if self.item_mut(shard, found.entry).set_cas(cas, narrow) {
            return Ok((found, cas));
        }
        let found = self.rewrite(shard, shard_index, hash, found, (None, Some(cas)), now_ms)?;
        Ok((found, cas))
    }

    /// Records an access in the index entry's counter: a recency mark (LRU policies: the
    /// record survives the next merge) or Redis's logarithmic frequency counter with a decay
    /// of one per idle minute (LFU policies).
    fn count_access(&self, shard: &mut Shard, found: Found, access_before_s: u32, now_ms: u64) {
        let counter = found.entry.counter();
        let counter = if self.eviction_policy().counts_frequency() {
            let idle_minutes = seconds(now_ms).saturating_sub(access_before_s) / 60;
            let decayed = (counter as u32).saturating_sub(idle_minutes) as u8;
            lfu_increment(decayed, shard.toss_coin())
        } else {
            counter
                .max(COUNTER_INIT + 1)
                .saturating_add(1)
                .min(COUNTER_INIT + 3)
        };
        shard
            .index
            .set(found.pos, found.entry.with_counter(counter));
    }

    // ---- the public operations ----

    /// Reads `key`, calling `read` with the item (or `None` on a miss) under the shard lock.
    /// `read` must be quick: it holds a lock. It may copy the value out or encode it.
    pub fn get<R>(
        &self,
        key: &[u8],
        now_ms: u64,
        options: ReadOptions,
        read: impl FnOnce(Option<ItemView<'_>>) -> R,
    ) -> R {
        self.run_due_flush(now_ms);
        let writes = options.vivify.is_some() || options.touch.is_some();
        if writes {
            self.make_room(now_ms);
        }
        let hash = self.hash(key);
        let shard_index = Self::shard_of(hash);
        let pool = self.pools.pool_of(key);
        let mut scratch = Vec::new();
        let mut guard = self.shards[shard_index].lock();
        let shard = &mut *guard;
        let mut won = false;
        let mut already = false;
        let found = match self.find_live(shard, hash, key, now_ms) {
            Some(found) => {
                shard.pools[pool].hits += 1;
                // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
                let item = unsafe { self.item_at(shard, found.entry) };
                let info_bits = item.info();
                let expiry = item.expiry_ms();
                let recache = options.recache_below_secs.is_some_and(|below| {
                    expiry != 0 && ((expiry.saturating_sub(now_ms) as i64 + 999) / 1000) < below
                });
                if !options.claim_win {
                    // Plain reads neither see nor take recache/stale win tokens.
                } else if info_bits & info::WIN_SENT != 0 {
                    already = true;
                } else if info_bits & info::STALE != 0 || recache {
                    self.item_mut(shard, found.entry)
                        .set_state(info::WIN_SENT, true);
                    won = true;
                }
                match options.touch {
                    Some(expiry) => {
                        let found = self
                            .set_expiry(shard, shard_index, hash, found, expiry.as_ms(), now_ms)
                            .unwrap_or(found);
                        self.report_put(shard, found, PutCause::Restamped);
                        shard.counters.changes += 1;
                        found
                    }
                    None => found,
                }
            }
            None => {
                shard.pools[pool].misses += 1;
                let Some(expiry) = options.vivify else {
                    drop(guard);
                    return read(None);
                };
                let mut spec = ItemSpec::string(key, b"", 0, expiry.as_ms());
                spec.state = info::WIN_SENT;
                match self.put_item(shard, shard_index, hash, None, spec, now_ms) {
                    Ok((found, _)) => {
                        shard.counters.total_items += 1;
                        won = true;
                        self.report_put(shard, found, PutCause::Written);
                        shard.counters.changes += 1;
                        found
                    }
                    Err(_) => {
                        drop(guard);
                        return read(None);
                    }
                }
            }
        };
        let (found, promoted) = match options.recency {
            Recency::Bump => self.warm_up(shard, found, now_ms),
            Recency::Keep => (found, false),
        };
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        let fetched_before = item.info() & info::FETCHED != 0;
        let access_before = item.access_s();
        if options.recency == Recency::Bump {
            let record = self.item_mut(shard, found.entry);
            record.set_state(info::FETCHED, true);
            record.set_access_s(seconds(now_ms));
            self.count_access(shard, found, access_before, now_ms);
        }
        let shard = &*shard;
        let counter = shard.index.get(found.pos).counter();
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        let view = self.view(
            shard,
            item,
            now_ms,
            &mut scratch,
            fetched_before,
            access_before,
            won,
            already,
            counter,
            Some(found.entry.segment()),
        );
        let result = read(Some(view));
        drop(guard);
        if writes || promoted {
            self.make_room(now_ms);
        }
        result
    }

    /// Applies one mutation through the same locked path as [`edit`](Self::edit): the
    /// change is made on the key's [`Entry`], which reports its one effect when it ends.
    pub fn apply(&self, mutation: Mutation<'_>, now_ms: u64) -> Outcome {
        self.run_due_flush(now_ms);
        let mut outcome = self.apply_once(mutation, now_ms);
        let mut tries = 4;
        while outcome == Outcome::OutOfMemory && tries > 0 && self.reclaim_one(now_ms, true) {
            // Compaction or expiry made room in an open segment: try again.
            tries -= 1;
            outcome = self.apply_once(mutation, now_ms);
        }
        self.make_room(now_ms);
        outcome
    }

    fn apply_once(&self, mutation: Mutation<'_>, now_ms: u64) -> Outcome {
        match mutation {
            Mutation::Write(write) => self.locked(write.key, now_ms, |entry| entry.write(write)),
            Mutation::Delete(delete) => {
                self.locked(delete.key, now_ms, |entry| entry.delete(delete))
            }
            Mutation::Touch { key, expiry } => {
                self.locked(key, now_ms, |entry| entry.touch(expiry))
            }
            Mutation::Unlink { key } => self.locked(key, now_ms, |entry| {
                if entry.remove() {
                    Outcome::Deleted
                } else {
                    Outcome::NotFound
                }
            }),
            Mutation::FlushAll { at_ms: None } => {
                self.pending_flush_ms.store(0, Ordering::Relaxed);
                self.flush_now();
                Outcome::Flushed
            }
            Mutation::FlushAll { at_ms: Some(at) } => {
                self.pending_flush_ms.store(at.max(1), Ordering::Relaxed);
                self.run_due_flush(now_ms);
                Outcome::Flushed
            }
        }
    }

    /// Runs a delayed flush_all whose time has come.
    fn run_due_flush(&self, now_ms: u64) {
        let at = self.pending_flush_ms.load(Ordering::Relaxed);
        if at != 0
            && at <= now_ms
            && self
                .pending_flush_ms
                .compare_exchange(at, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.flush_now();
        }
    }

    /// Drops every item, then gives back every segment left without live items.
    fn flush_now(&self) {
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            let shard = &mut *guard;
            let entries: Vec<(usize, index::Entry)> = shard.index.entries().collect();
            shard.counters.changes += entries.len() as u64;
            for (pos, entry) in entries {
                self.unlink(shard, Found { pos, entry }, Removal::Flushed);
            }
            shard.index.clear();
        }
        self.report(&Effect::Flushed);
        let _reclaiming = self.reclaim_lock.lock();
        self.free_empty_segments();
        self.segments.release_free();
    }

    /// Background upkeep: runs a due delayed flush and reclaims expired and empty segments,
    /// at most `budget` segments per call. Returns how many items it reclaimed.
    pub fn sweep(&self, now_ms: u64, budget: usize) -> usize {
        self.run_due_flush(now_ms);
        let before = self.stats().reclaimed;
        for _ in 0..budget.max(1) {
            if !self.reclaim_expired(now_ms) {
                break;
            }
        }
        {
            let _reclaiming = self.reclaim_lock.lock();
            self.free_empty_segments();
        }
        self.segments.reap_retired();
        self.make_room(now_ms);
        (self.stats().reclaimed - before) as usize
    }

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
                    let fetched = item.info() & info::FETCHED != 0;
                    let view = self.view(
                        shard,
                        item,
                        now_ms,
                        &mut scratch,
                        fetched,
                        item.access_s(),
                        false,
                        false,
                        entry.counter(),
                        None,
                    );
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
        for step in 0..SHARD_COUNT {
            let index = (seed as usize + step) % SHARD_COUNT;
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
            for entry in entries {
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

/// Redis's logarithmic counter increment: the higher the counter, the less likely a hit
/// raises it (`lfu-log-factor` 10). `noise` is a uniform random number.
fn lfu_increment(counter: u8, noise: u64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = counter.saturating_sub(COUNTER_INIT) as u64;
    let r = (noise >> 11) as f64 / (1u64 << 53) as f64;
    if r < 1.0 / (base as f64 * 10.0 + 1.0) {
        counter + 1
    } else {
        counter
    }
}

#[cfg(test)]
mod cold_tests;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod tests;
