//! The store's words: what a write answers ([`Outcome`]) or why it is refused
//! ([`StoreError`]), how a read treats the item ([`ReadOptions`], [`Recency`]), what a key
//! holds ([`KeyKind`]), how the store is sized ([`StoreConfig`]) and what it reports
//! ([`StoreStats`]).
//!
//! Plain data: no locks, no records, no protocol words.

use super::*;

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
    Stream,
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
