//! The store: every item of every protocol, bounded by the memory limit.
//!
//! This first version is a fixed set of shards, each a mutex over a hash index and an LRU list
//! (see [`shard`]); the storage-engine issue replaces the internals behind the same API.
//! Reads go through [`Store::get`], which hands an [`ItemView`] to a closure and never lets it
//! escape; every write goes through [`Store::apply`] with a [`Mutation`], the one place where
//! replication, notifications and metrics hook in. Expiry and eviction remove items inside the
//! same shard lock.
//!
//! The store knows no protocol: times are unix milliseconds passed in by the caller (`now_ms`),
//! keys and values are bytes, answers are [`Outcome`]s. Lock order: one shard at a time, never
//! two; the memory counter is an atomic read outside any lock.

mod entry;
pub mod hash;
mod item;
mod shard;
pub mod zset;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hashbrown::DefaultHashBuilder;
use parking_lot::Mutex;

pub use entry::{Entry, Moved, WrongType};
pub use hash::{Field, HashObject};
use item::Item;
pub use item::{Expiry, ItemView, Object, ITEM_OVERHEAD};
use shard::{Shard, SlotId};
pub use zset::{LexBound, LexRange, ScoreBound, ScoreRange, ZSet};

/// Number of shards: a power of two, enough that two cores rarely meet on one lock.
const SHARD_COUNT: usize = 64;
const SHARD_BITS: u32 = SHARD_COUNT.trailing_zeros();
/// LRU tails compared per eviction (as Redis samples `maxmemory-samples` keys).
const EVICTION_CANDIDATES: usize = 5;

/// How a write treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Store whether or not the key exists.
    Set,
    /// Store only if the key does not exist.
    Add,
    /// Store only if the key exists.
    Replace,
    /// Add the value after the existing one, keeping its flags and expiry.
    Append,
    /// Add the value before the existing one, keeping its flags and expiry.
    Prepend,
}

/// A value write.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub expiry: Expiry,
    pub mode: WriteMode,
    /// Store only if the item exists with this cas unique.
    pub compare_cas: Option<u64>,
    /// Give the stored item this cas unique instead of a fresh one.
    pub new_cas: Option<u64>,
    /// With `compare_cas`: if the given cas is older than the item's, store anyway but mark
    /// the item stale (meta invalidation) instead of failing.
    pub invalidate: bool,
}

/// A delete, or its gentler forms.
#[derive(Debug, Clone, Copy)]
pub struct Delete<'a> {
    pub key: &'a [u8],
    pub compare_cas: Option<u64>,
    pub new_cas: Option<u64>,
    /// Keep the item but mark it stale with a new cas (meta `md I`), optionally re-timing it.
    pub invalidate: Option<Option<Expiry>>,
}

/// Increment or decrement of a decimal value.
#[derive(Debug, Clone, Copy)]
pub struct Arith<'a> {
    pub key: &'a [u8],
    pub incr: bool,
    pub delta: u64,
    pub compare_cas: Option<u64>,
    pub new_cas: Option<u64>,
    /// On a miss, create the item with this value and expiry instead of failing.
    pub vivify: Option<(u64, Expiry)>,
    /// On success, also set the expiry.
    pub expiry: Option<Expiry>,
}

/// Every change to the store.
#[derive(Debug, Clone, Copy)]
pub enum Mutation<'a> {
    Write(Write<'a>),
    Delete(Delete<'a>),
    Arith(Arith<'a>),
    /// Change an item's expiry.
    Touch {
        key: &'a [u8],
        expiry: Expiry,
    },
    /// Drop the key whatever it holds (e.g. after a set was rejected as too large).
    Unlink {
        key: &'a [u8],
    },
    /// Invalidate every item now (`at_ms` = None) or every item written before `at_ms`.
    FlushAll {
        at_ms: Option<u64>,
    },
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
    /// The counter after an arith: its value, cas and expiry.
    Counter {
        value: u64,
        cas: u64,
        expiry: Expiry,
    },
    NotNumeric,
    TooLarge,
    OutOfMemory,
    Flushed,
    /// The key holds a typed value the operation cannot work on.
    WrongType,
}

/// Side effects of a read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Move the item to the LRU head and mark it fetched (off for meta `u`).
    pub bump: bool,
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
            bump: true,
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
}

/// Per-shard counters, updated under the shard lock.
#[derive(Default)]
struct ShardCounters {
    total_items: u64,
    evictions: u64,
    evicted_unfetched: u64,
    reclaimed: u64,
    expired_unfetched: u64,
}

struct Locked {
    shard: Shard,
    counters: ShardCounters,
    /// The next cas sequence number of this shard.
    next_cas: u64,
}

/// The shared store; `Send + Sync`, shared by every worker through an `Arc`.
pub struct Store {
    shards: Box<[Mutex<Locked>]>,
    hasher: DefaultHashBuilder,
    used_bytes: AtomicUsize,
    limit_bytes: AtomicUsize,
    item_size_max: usize,
    /// 0 = allkeys-lru, 1 = noeviction (live: CONFIG SET maxmemory-policy).
    no_eviction: std::sync::atomic::AtomicBool,
    /// Items written before this unix ms are invisible once it has passed (0 = none pending).
    flush_before_ms: AtomicU64,
    /// Who hears about deletes, writes, expiries and evictions (keyspace notifications).
    observer: std::sync::OnceLock<Box<dyn Observer>>,
}

/// Why an item leaves the store (decides the key event, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    Deleted,
    Expired,
    Evicted,
    Flushed,
    /// Taken to live under another key (RENAME).
    Moved,
}

/// What happened to a key, for keyspace notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEvent {
    /// Removed by a client (delete, DEL, an emptied hash).
    Deleted,
    /// Created or overwritten.
    Written,
    /// Its TTL passed.
    Expired,
    /// Removed to make room under the memory limit.
    Evicted,
}

/// The type of value a key held when the event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    String,
    Hash,
    ZSet,
}

/// Receives key events from inside the store. Called with a shard lock held: it must be
/// quick and must never call back into the store.
pub trait Observer: Send + Sync {
    fn key_event(&self, event: KeyEvent, key: &[u8], kind: KeyKind);
}

/// How the store is sized.
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    pub memory_limit_bytes: usize,
    pub item_size_max: usize,
    pub eviction: EvictionPolicy,
}

/// What happens when a write would pass the memory limit (Redis's `maxmemory-policy`;
/// memcached's `-M` is `NoEviction`). The other Redis policies arrive with the storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// Evict the least recently used keys, whatever they are.
    AllKeysLru,
    /// Evict nothing: the write fails with OutOfMemory.
    NoEviction,
}

impl EvictionPolicy {
    /// The Redis name.
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::NoEviction => "noeviction",
        }
    }

    pub fn from_name(name: &str) -> Option<EvictionPolicy> {
        match name.to_ascii_lowercase().as_str() {
            "allkeys-lru" => Some(EvictionPolicy::AllKeysLru),
            "noeviction" => Some(EvictionPolicy::NoEviction),
            _ => None,
        }
    }
}

impl Store {
    pub fn new(config: StoreConfig) -> Store {
        let shards = (0..SHARD_COUNT)
            .map(|_| {
                Mutex::new(Locked {
                    shard: Shard::new(),
                    counters: ShardCounters::default(),
                    next_cas: 1,
                })
            })
            .collect();
        Store {
            shards,
            hasher: DefaultHashBuilder::default(),
            used_bytes: AtomicUsize::new(0),
            limit_bytes: AtomicUsize::new(config.memory_limit_bytes),
            item_size_max: config.item_size_max,
            no_eviction: std::sync::atomic::AtomicBool::new(
                config.eviction == EvictionPolicy::NoEviction,
            ),
            flush_before_ms: AtomicU64::new(0),
            observer: std::sync::OnceLock::new(),
        }
    }

    pub fn item_size_max(&self) -> usize {
        self.item_size_max
    }

    pub fn memory_limit(&self) -> usize {
        self.limit_bytes.load(Ordering::Relaxed)
    }

    /// Changes the memory limit at run time, evicting down to it.
    pub fn set_memory_limit(&self, bytes: usize) {
        self.limit_bytes.store(bytes, Ordering::Relaxed);
        self.evict_to_limit(0);
    }

    fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// The shard of a key hash. hashbrown takes a bucket's position from the hash's low bits
    /// and its 7-bit tag from the top bits; choosing the shard from either would leave every
    /// key of a shard with the same position bits or the same tag (measured: 37% of server
    /// CPU in `Shard::find` under multi-gets when it used the top bits). Bits 32.. are
    /// neither, for any table under 2^32 buckets.
    fn shard_of(hash: u64) -> usize {
        ((hash >> 32) as usize) & (SHARD_COUNT - 1)
    }

    /// Reads `key`, calling `read` with the item (or `None` on a miss) under the shard lock.
    /// `read` must be quick: it holds a lock. It may copy the value out or encode it.
    pub fn get<R>(
        &self,
        key: &[u8],
        now_ms: u64,
        options: ReadOptions,
        read: impl FnOnce(Option<ItemView<'_>>) -> R,
    ) -> R {
        let hash = self.hash(key);
        let index = Self::shard_of(hash);
        let mut guard = self.shards[index].lock();
        let locked = &mut *guard;
        let found = self.find_live(locked, hash, key, now_ms);
        let (id, won, win_already_sent) = match found {
            Some(id) => {
                let mut won = false;
                let mut already = false;
                let item = locked.shard.item_mut(id);
                let recache = options.recache_below_secs.is_some_and(|below| {
                    item.expires_at_ms != 0
                        && ((item.expires_at_ms.saturating_sub(now_ms) as i64 + 999) / 1000) < below
                });
                if !options.claim_win {
                    // Plain reads neither see nor take recache/stale win tokens.
                } else if item.win_token_sent {
                    already = true;
                } else if item.stale || recache {
                    item.win_token_sent = true;
                    won = true;
                }
                if let Some(expiry) = options.touch {
                    item.expires_at_ms = expiry.as_ms();
                }
                (id, won, already)
            }
            None => match options.vivify {
                Some(expiry) => {
                    let mut item = Item::new(key, &[], 0, expiry, now_ms);
                    item.win_token_sent = true;
                    match self.insert_new(locked, index, hash, item, None) {
                        Ok(id) => {
                            locked.counters.total_items += 1;
                            (id, true, false)
                        }
                        Err(_) => return read(None),
                    }
                }
                None => return read(None),
            },
        };
        let item = locked.shard.item(id);
        let fetched_before = item.fetched;
        let last_access_before_ms = item.last_access_ms;
        if options.bump {
            let item = locked.shard.item_mut(id);
            item.fetched = true;
            item.last_access_ms = now_ms;
            locked.shard.touch_lru(id);
        }
        let view = ItemView {
            item: locked.shard.item(id),
            now_ms,
            fetched_before,
            last_access_before_ms,
            won,
            win_already_sent,
        };
        let result = read(Some(view));
        drop(guard);
        if self.over_limit() {
            // A vivified placeholder may have pushed the store over its limit.
            self.evict_to_limit(index);
        }
        result
    }

    /// Applies one mutation: the single write path of the store.
    pub fn apply(&self, mutation: Mutation<'_>, now_ms: u64) -> Outcome {
        let outcome = self.apply_unbounded(mutation, now_ms);
        if self.over_limit() {
            self.evict_to_limit(now_ms as usize % SHARD_COUNT);
        }
        outcome
    }

    /// Applies a mutation without evicting; the caller restores the memory bound.
    fn apply_unbounded(&self, mutation: Mutation<'_>, now_ms: u64) -> Outcome {
        match mutation {
            Mutation::Write(write) => self.write(write, now_ms),
            Mutation::Delete(delete) => self.delete(delete, now_ms),
            Mutation::Arith(arith) => self.arith(arith, now_ms),
            Mutation::Touch { key, expiry } => self.with_live(key, now_ms, |locked, id| match id {
                Some(id) => {
                    locked.shard.item_mut(id).expires_at_ms = expiry.as_ms();
                    Outcome::Touched
                }
                None => Outcome::NotFound,
            }),
            Mutation::Unlink { key } => self.with_live(key, now_ms, |locked, id| match id {
                Some(id) => {
                    self.remove(locked, id, Removal::Deleted);
                    Outcome::Deleted
                }
                None => Outcome::NotFound,
            }),
            Mutation::FlushAll { at_ms: None } => {
                self.flush_before_ms.store(0, Ordering::Relaxed);
                for shard in self.shards.iter() {
                    let mut locked = shard.lock();
                    let freed = locked.shard.bytes;
                    locked.shard.clear();
                    self.used_bytes.fetch_sub(freed, Ordering::Relaxed);
                }
                Outcome::Flushed
            }
            Mutation::FlushAll { at_ms: Some(at) } => {
                self.flush_before_ms.store(at, Ordering::Relaxed);
                Outcome::Flushed
            }
        }
    }

    /// Removes expired and flushed items, visiting at most `budget` slots per shard.
    /// Returns how many items it reclaimed.
    pub fn sweep(&self, now_ms: u64, budget: usize) -> usize {
        let mut reclaimed = 0;
        for shard in self.shards.iter() {
            let mut guard = shard.lock();
            let locked = &mut *guard;
            let slots = locked.shard.slot_count();
            if slots == 0 {
                continue;
            }
            let mut cursor = locked.shard.sweep_cursor % slots;
            for _ in 0..budget.min(slots) {
                let dead = locked
                    .shard
                    .slot_item(cursor)
                    .is_some_and(|item| self.is_dead(item, now_ms));
                if dead {
                    let id = cursor as SlotId;
                    let item = locked.shard.item(id);
                    if !item.fetched {
                        locked.counters.expired_unfetched += 1;
                    }
                    locked.counters.reclaimed += 1;
                    let why = if item.is_expired(now_ms) {
                        Removal::Expired
                    } else {
                        Removal::Flushed
                    };
                    self.remove(locked, id, why);
                    reclaimed += 1;
                }
                cursor = (cursor + 1) % slots;
            }
            locked.shard.sweep_cursor = cursor;
        }
        reclaimed
    }

    /// Visits live keys from `cursor` on, at least `count` slots' worth, calling `visit` with
    /// each key and its view; returns the next cursor (0 when the scan is complete). A cursor
    /// is a shard number and a slot position, and a slot keeps its position while its item
    /// lives, so every key present for the whole scan is visited at least once.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut visit: impl FnMut(&ItemView<'_>),
    ) -> u64 {
        let mut shard_index = (cursor >> 32) as usize;
        let mut slot = (cursor & 0xffff_ffff) as usize;
        let mut visited = 0;
        while shard_index < SHARD_COUNT {
            let guard = self.shards[shard_index].lock();
            let slots = guard.shard.slot_count();
            while slot < slots {
                if let Some(item) = guard.shard.slot_item(slot) {
                    if !self.is_dead(item, now_ms) {
                        visit(&ItemView {
                            item,
                            now_ms,
                            fetched_before: item.fetched,
                            last_access_before_ms: item.last_access_ms,
                            won: false,
                            win_already_sent: false,
                        });
                        visited += 1;
                    }
                }
                slot += 1;
                if visited >= count.max(1) {
                    return if slot < slots {
                        ((shard_index as u64) << 32) | slot as u64
                    } else if shard_index + 1 < SHARD_COUNT {
                        (shard_index as u64 + 1) << 32
                    } else {
                        0
                    };
                }
            }
            shard_index += 1;
            slot = 0;
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
            let slots = guard.shard.slot_count();
            if slots == 0 {
                continue;
            }
            let start = (seed >> 8) as usize % slots;
            for offset in 0..slots {
                if let Some(item) = guard.shard.slot_item((start + offset) % slots) {
                    if !self.is_dead(item, now_ms) {
                        return Some(item.key().to_vec());
                    }
                }
            }
        }
        None
    }

    /// Counters summed over the shards.
    pub fn stats(&self) -> StoreStats {
        let mut stats = StoreStats {
            limit_maxbytes: self.memory_limit() as u64,
            ..StoreStats::default()
        };
        for shard in self.shards.iter() {
            let locked = shard.lock();
            stats.curr_items += locked.shard.items as u64;
            stats.bytes += locked.shard.bytes as u64;
            stats.total_items += locked.counters.total_items;
            stats.evictions += locked.counters.evictions;
            stats.evicted_unfetched += locked.counters.evicted_unfetched;
            stats.reclaimed += locked.counters.reclaimed;
            stats.expired_unfetched += locked.counters.expired_unfetched;
        }
        stats
    }

    // ---- internals ----

    fn is_dead(&self, item: &Item, now_ms: u64) -> bool {
        if item.is_expired(now_ms) {
            return true;
        }
        let flush = self.flush_before_ms.load(Ordering::Relaxed);
        flush != 0 && flush <= now_ms && item.stored_at_ms < flush
    }

    /// Finds a live item, lazily removing it if it expired or was flushed.
    fn find_live(&self, locked: &mut Locked, hash: u64, key: &[u8], now_ms: u64) -> Option<SlotId> {
        let id = locked.shard.find(hash, key)?;
        let item = locked.shard.item(id);
        if self.is_dead(item, now_ms) {
            if !item.fetched {
                locked.counters.expired_unfetched += 1;
            }
            locked.counters.reclaimed += 1;
            let why = if item.is_expired(now_ms) {
                Removal::Expired
            } else {
                Removal::Flushed
            };
            self.remove(locked, id, why);
            return None;
        }
        Some(id)
    }

    fn with_live<R>(
        &self,
        key: &[u8],
        now_ms: u64,
        f: impl FnOnce(&mut Locked, Option<SlotId>) -> R,
    ) -> R {
        let hash = self.hash(key);
        let mut guard = self.shards[Self::shard_of(hash)].lock();
        let id = self.find_live(&mut guard, hash, key, now_ms);
        f(&mut guard, id)
    }

    fn remove(&self, locked: &mut Locked, id: SlotId, why: Removal) -> Item {
        let item = locked.shard.remove(id);
        self.used_bytes.fetch_sub(item.charge(), Ordering::Relaxed);
        let event = match why {
            Removal::Deleted => Some(KeyEvent::Deleted),
            Removal::Expired => Some(KeyEvent::Expired),
            Removal::Evicted => Some(KeyEvent::Evicted),
            Removal::Flushed | Removal::Moved => None,
        };
        if let Some(event) = event {
            self.notify(event, &item);
        }
        item
    }

    /// Tells the observer (keyspace notifications) what happened to an item's key.
    fn notify(&self, event: KeyEvent, item: &Item) {
        if let Some(observer) = self.observer.get() {
            let kind = match item.object.as_deref() {
                None => KeyKind::String,
                Some(Object::Hash(_)) => KeyKind::Hash,
                Some(Object::ZSet(_)) => KeyKind::ZSet,
            };
            observer.key_event(event, item.key(), kind);
        }
    }

    /// Installs the observer of key events (once, at server start).
    pub fn set_observer(&self, observer: Box<dyn Observer>) {
        let _ = self.observer.set(observer);
    }

    fn next_cas(locked: &mut Locked, shard_index: usize) -> u64 {
        let seq = locked.next_cas;
        locked.next_cas += 1;
        (seq << SHARD_BITS) | shard_index as u64
    }

    /// Inserts a new item (key absent), assigning its cas, then evicts down to the limit.
    fn insert_new(
        &self,
        locked: &mut Locked,
        shard_index: usize,
        hash: u64,
        mut item: Item,
        new_cas: Option<u64>,
    ) -> Result<SlotId, Outcome> {
        let charge = item.charge();
        if charge > self.memory_limit() || !self.fits(charge, 0) {
            return Err(Outcome::OutOfMemory);
        }
        item.cas = new_cas.unwrap_or_else(|| Self::next_cas(locked, shard_index));
        let id = locked.shard.insert(hash, item);
        self.used_bytes.fetch_add(charge, Ordering::Relaxed);
        self.notify(KeyEvent::Written, locked.shard.item(id));
        Ok(id)
    }

    /// Replaces the item in `id`, assigning its cas, then evicts down to the limit.
    fn replace_existing(
        &self,
        locked: &mut Locked,
        shard_index: usize,
        id: SlotId,
        mut item: Item,
        new_cas: Option<u64>,
    ) -> Result<u64, Outcome> {
        let charge = item.charge();
        if charge > self.memory_limit() || !self.fits(charge, locked.shard.item(id).charge()) {
            return Err(Outcome::OutOfMemory);
        }
        let cas = new_cas.unwrap_or_else(|| Self::next_cas(locked, shard_index));
        item.cas = cas;
        let old = locked.shard.item(id).charge();
        locked.shard.replace(id, item);
        self.used_bytes.fetch_add(charge, Ordering::Relaxed);
        self.used_bytes.fetch_sub(old, Ordering::Relaxed);
        self.notify(KeyEvent::Written, locked.shard.item(id));
        Ok(cas)
    }

    fn evict(&self, locked: &mut Locked, id: SlotId) {
        let item = self.remove(locked, id, Removal::Evicted);
        locked.counters.evictions += 1;
        if !item.fetched {
            locked.counters.evicted_unfetched += 1;
        }
    }

    fn over_limit(&self) -> bool {
        self.used_bytes.load(Ordering::Relaxed) > self.memory_limit()
    }

    /// Evicts until the store is within its limit: an approximate global LRU. Each round
    /// looks at the LRU tails of shards from a rotating start until it has seen
    /// [`EVICTION_CANDIDATES`] of them, then evicts the one accessed longest ago. Takes one
    /// shard lock at a time; called with no lock held.
    /// Under `noeviction`, whether replacing `freed` bytes by `charge` stays within the limit
    /// (always true when eviction makes room instead).
    fn fits(&self, charge: usize, freed: usize) -> bool {
        !self.no_eviction.load(Ordering::Relaxed)
            || self
                .used_bytes
                .load(Ordering::Relaxed)
                .saturating_sub(freed)
                + charge
                <= self.memory_limit()
    }

    pub fn eviction_policy(&self) -> EvictionPolicy {
        if self.no_eviction.load(Ordering::Relaxed) {
            EvictionPolicy::NoEviction
        } else {
            EvictionPolicy::AllKeysLru
        }
    }

    /// Changes the eviction policy at run time.
    pub fn set_eviction_policy(&self, policy: EvictionPolicy) {
        self.no_eviction
            .store(policy == EvictionPolicy::NoEviction, Ordering::Relaxed);
    }

    fn evict_to_limit(&self, start: usize) {
        if self.no_eviction.load(Ordering::Relaxed) {
            return;
        }
        let mut cursor = start;
        while self.over_limit() {
            let mut oldest: Option<(u64, usize)> = None;
            let mut seen = 0;
            for step in 0..SHARD_COUNT {
                let index = (cursor + step) % SHARD_COUNT;
                let locked = self.shards[index].lock();
                if let Some(tail) = locked.shard.lru_tail() {
                    let last_access = locked.shard.recency(tail);
                    if oldest.is_none_or(|(best, _)| last_access < best) {
                        oldest = Some((last_access, index));
                    }
                    seen += 1;
                    if seen == EVICTION_CANDIDATES {
                        break;
                    }
                }
            }
            cursor = cursor.wrapping_add(1);
            let Some((_, index)) = oldest else { return };
            let mut guard = self.shards[index].lock();
            if let Some(tail) = guard.shard.lru_tail() {
                self.evict(&mut guard, tail);
            }
        }
    }

    fn write(&self, write: Write<'_>, now_ms: u64) -> Outcome {
        let hash = self.hash(write.key);
        let index = Self::shard_of(hash);
        let outcome = {
            let mut guard = self.shards[index].lock();
            let locked = &mut *guard;
            let existing = self.find_live(locked, hash, write.key, now_ms);
            self.write_locked(locked, index, hash, existing, write, now_ms)
        };
        outcome
    }

    fn write_locked(
        &self,
        locked: &mut Locked,
        index: usize,
        hash: u64,
        existing: Option<SlotId>,
        write: Write<'_>,
        now_ms: u64,
    ) -> Outcome {
        let mut stale = false;
        match (write.mode, existing) {
            (WriteMode::Add, Some(id)) => {
                locked.shard.touch_lru(id);
                return Outcome::NotStored;
            }
            (WriteMode::Replace | WriteMode::Append | WriteMode::Prepend, None) => {
                return Outcome::NotStored;
            }
            _ => {}
        }
        if let Some(expected) = write.compare_cas {
            let Some(id) = existing else {
                return Outcome::NotFound;
            };
            let current = locked.shard.item(id).cas;
            if expected != current {
                if write.invalidate && expected < current {
                    stale = true;
                } else {
                    return Outcome::Exists;
                }
            }
        }
        let mut item = match (write.mode, existing) {
            (WriteMode::Append | WriteMode::Prepend, Some(id)) => {
                let old = locked.shard.item(id);
                if old.object.is_some() {
                    return Outcome::WrongType;
                }
                if old.value().len() + write.value.len() > self.item_size_max {
                    return Outcome::TooLarge;
                }
                let parts: [&[u8]; 2] = if write.mode == WriteMode::Append {
                    [old.value(), write.value]
                } else {
                    [write.value, old.value()]
                };
                let mut item = Item::new(write.key, &parts, old.flags, old.expiry(), now_ms);
                item.fetched = old.fetched;
                item
            }
            _ => Item::new(write.key, &[write.value], write.flags, write.expiry, now_ms),
        };
        if stale {
            item.stale = true;
            item.win_token_sent = true;
        }
        let result = match existing {
            Some(id) => self.replace_existing(locked, index, id, item, write.new_cas),
            None => self
                .insert_new(locked, index, hash, item, write.new_cas)
                .map(|id| locked.shard.item(id).cas),
        };
        match result {
            Ok(cas) => {
                locked.counters.total_items += 1;
                Outcome::Stored { cas }
            }
            Err(outcome) => outcome,
        }
    }

    fn delete(&self, delete: Delete<'_>, now_ms: u64) -> Outcome {
        let hash = self.hash(delete.key);
        let index = Self::shard_of(hash);
        let mut guard = self.shards[index].lock();
        let locked = &mut *guard;
        let Some(id) = self.find_live(locked, hash, delete.key, now_ms) else {
            return Outcome::NotFound;
        };
        if let Some(expected) = delete.compare_cas {
            if locked.shard.item(id).cas != expected {
                return Outcome::Exists;
            }
        }
        match delete.invalidate {
            Some(expiry) => {
                let cas = delete
                    .new_cas
                    .unwrap_or_else(|| Self::next_cas(locked, index));
                let item = locked.shard.item_mut(id);
                item.stale = true;
                item.win_token_sent = false;
                item.cas = cas;
                if let Some(expiry) = expiry {
                    item.expires_at_ms = expiry.as_ms();
                }
            }
            None => {
                self.remove(locked, id, Removal::Deleted);
            }
        }
        Outcome::Deleted
    }

    fn arith(&self, arith: Arith<'_>, now_ms: u64) -> Outcome {
        let hash = self.hash(arith.key);
        let index = Self::shard_of(hash);
        let mut guard = self.shards[index].lock();
        let locked = &mut *guard;
        let Some(id) = self.find_live(locked, hash, arith.key, now_ms) else {
            return match arith.vivify {
                Some((initial, expiry)) => {
                    let mut digits = Vec::with_capacity(20);
                    ferrocache_protocol::memcache::write_u64(&mut digits, initial);
                    let item = Item::new(arith.key, &[&digits], 0, expiry, now_ms);
                    match self.insert_new(locked, index, hash, item, arith.new_cas) {
                        Ok(id) => {
                            locked.counters.total_items += 1;
                            let cas = locked.shard.item(id).cas;
                            Outcome::Counter {
                                value: initial,
                                cas,
                                expiry,
                            }
                        }
                        Err(outcome) => outcome,
                    }
                }
                None => Outcome::NotFound,
            };
        };
        if let Some(expected) = arith.compare_cas {
            if locked.shard.item(id).cas != expected {
                return Outcome::Exists;
            }
        }
        if locked.shard.item(id).object.is_some() {
            return Outcome::WrongType;
        }
        let Some(current) = parse_counter(locked.shard.item(id).value()) else {
            return Outcome::NotNumeric;
        };
        let value = if arith.incr {
            current.wrapping_add(arith.delta)
        } else {
            current.saturating_sub(arith.delta)
        };
        let mut digits = Vec::with_capacity(20);
        ferrocache_protocol::memcache::write_u64(&mut digits, value);
        let cas = arith
            .new_cas
            .unwrap_or_else(|| Self::next_cas(locked, index));
        let old_charge = locked.shard.item(id).charge();
        let item = locked.shard.item_mut(id);
        let old_len = item.value().len();
        if digits.len() <= old_len {
            // memcached rewrites the number in place and pads with spaces (`do_add_delta`).
            digits.resize(old_len, b' ');
            item.overwrite_value(&digits);
        } else {
            // A longer number needs a new item in memcached: it starts fresh, neither
            // fetched nor stale, with no win token out.
            item.set_value(&[&digits]);
            item.fetched = false;
            item.stale = false;
            item.win_token_sent = false;
        }
        item.cas = cas;
        item.stored_at_ms = now_ms;
        if let Some(expiry) = arith.expiry {
            item.expires_at_ms = expiry.as_ms();
        }
        let expiry = item.expiry();
        let new_charge = item.charge();
        locked.shard.recharge(id, old_charge);
        locked.shard.touch_lru(id);
        self.used_bytes.fetch_add(new_charge, Ordering::Relaxed);
        self.used_bytes.fetch_sub(old_charge, Ordering::Relaxed);
        self.notify(KeyEvent::Written, locked.shard.item(id));
        Outcome::Counter { value, cas, expiry }
    }
}

/// Reads a decimal counter as memcached's `safe_strtoull` does: optional leading whitespace
/// and `+`, at least one digit, then the end or a whitespace character (whatever follows that
/// is ignored, so "8  007" reads as 8), no `-`, no overflow.
fn parse_counter(value: &[u8]) -> Option<u64> {
    let start = value.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &value[start..];
    let rest = rest.strip_prefix(b"+").unwrap_or(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    if let Some(next) = rest.get(digits) {
        if !next.is_ascii_whitespace() {
            return None;
        }
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
