//! Effects: the one report of every change the store makes to its keyspace.
//!
//! Whatever asked for a change (a memcached `set`, a RESP `HSET`, a `gat`, the reclaimer
//! evicting or expiring), the store describes what it did to the key as one [`Effect`] and
//! hands it to the [`Observer`] installed at start: keyspace notifications today, metrics and
//! the replication log as they land (valkey's `alsoPropagate`). An effect carries what a
//! replica would need to reproduce the item without running the command: the key, the value
//! as stored (compressed if it is), memcached flags and CAS, and the absolute expiry.
//!
//! The caller of an edit may name its change with labels ([`Entry::label`]): short words the
//! store carries, in order, into the effect and never reads. The command layer uses Redis's
//! event names (`lpush`, `incrby`, `rename_from`...), which keyspace notifications publish;
//! an edit nobody labelled carries `None` and the observer names it from the effect alone.
//!
//! One locked edit of a key reports at most one effect for it, describing the key's state when
//! the edit ends; an item expired lazily on the way in, or an eviction made to find room, is a
//! separate effect. Effects are reported with the key's shard lock held: an observer must be
//! quick and must never call back into the store. This module never decides anything: it only
//! describes.

use super::item::Object;
use super::layout::ItemRef;
use super::shard::Shard;
use super::{KeyKind, Store, StoredValue};

/// Why a key left the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Removed by a client (delete, DEL, an emptied collection).
    Deleted,
    /// Its TTL passed.
    Expired,
    /// Removed to make room under the memory limit.
    Evicted,
    /// Dropped by a flush of everything (reported once, as [`Effect::Flushed`]).
    Flushed,
    /// Taken to live under another key (RENAME, the source of a move).
    Moved,
}

/// Why a key holds a new version of its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCause {
    /// Created, overwritten, or its value changed.
    Written,
    /// Its value is unchanged; its expiry, CAS or stale mark changed (touch, EXPIRE,
    /// PERSIST, meta invalidation).
    Restamped,
}

/// Whether a put added its key or changed one that was already there (Redis's `new`
/// keyspace event fires for the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPresence {
    /// The key did not exist (or had expired) before this change.
    Added,
    /// The key existed before this change.
    Existing,
}

/// Names the caller gave an edit's change, in the order given (see the module documentation):
/// `None` when it gave none, `Some(&[])` when it said the change names no event.
pub type Labels<'a> = Option<&'a [&'static str]>;

/// One change to the keyspace.
pub enum Effect<'a> {
    /// The key now holds this item.
    Put {
        item: StoredItem<'a>,
        cause: PutCause,
        presence: KeyPresence,
        labels: Labels<'a>,
    },
    /// The key no longer exists.
    Removed {
        key: &'a [u8],
        /// What it held when it went.
        kind: KeyKind,
        cause: Removal,
        labels: Labels<'a>,
    },
    /// Every key is gone.
    Flushed,
}

/// Receives every [`Effect`] from inside the store. Called with a shard lock held: it must be
/// quick and must never call back into the store.
pub trait Observer: Send + Sync {
    fn effect(&self, effect: &Effect<'_>);
}

impl<T: Observer + ?Sized> Observer for std::sync::Arc<T> {
    fn effect(&self, effect: &Effect<'_>) {
        (**self).effect(effect);
    }
}

/// An item as stored, borrowed while its shard lock is held (the item of an effect, or one
/// visited for a snapshot).
pub struct StoredItem<'a> {
    store: &'a Store,
    shard: &'a Shard,
    item: ItemRef<'a>,
}

/// The value of an item as stored.
pub enum StoredForm<'a> {
    /// Bytes as the client sent them.
    Raw(&'a [u8]),
    /// The store's compressed form (`compress.rs`: original length, then one zstd frame).
    Compressed(&'a [u8]),
    /// A value larger than a segment: its chunks, in order, copied by [`StoredItem::copy_stored`].
    Chunked { compressed: bool, stored_len: usize },
    /// A typed value (hash, sorted set, list, set).
    Object(&'a Object),
}

impl<'a> StoredItem<'a> {
    pub(super) fn new(store: &'a Store, shard: &'a Shard, item: ItemRef<'a>) -> Self {
        StoredItem { store, shard, item }
    }

    pub fn key(&self) -> &'a [u8] {
        self.item.key()
    }

    pub fn kind(&self) -> KeyKind {
        Store::key_kind(self.shard, self.item)
    }

    /// memcached's client flags (0 for RESP values).
    pub fn flags(&self) -> u32 {
        self.item.flags()
    }

    pub fn cas(&self) -> u64 {
        self.item.cas(self.shard.last_cas)
    }

    /// Absolute expiry in unix milliseconds; 0 = never.
    pub fn expiry_ms(&self) -> u64 {
        self.item.expiry_ms()
    }

    /// The value in the form it is stored.
    pub fn stored(&self) -> StoredForm<'a> {
        match Store::stored_value(self.shard, self.item) {
            StoredValue::Plain(bytes) => StoredForm::Raw(bytes),
            StoredValue::Compressed(bytes) => StoredForm::Compressed(bytes),
            StoredValue::Object(object) => StoredForm::Object(object),
            StoredValue::Chunked(table) => StoredForm::Chunked {
                compressed: table.compressed(),
                stored_len: table.stored_len(),
            },
        }
    }

    /// Puts the string value exactly as stored (chunks assembled, compressed bytes left
    /// compressed) in `out`, replacing what it held; returns whether those bytes are compressed, or `None` for a typed
    /// value.
    pub fn copy_stored(&self, out: &mut Vec<u8>) -> Option<bool> {
        out.clear();
        match Store::stored_value(self.shard, self.item) {
            StoredValue::Plain(bytes) => {
                out.extend_from_slice(bytes);
                Some(false)
            }
            StoredValue::Compressed(bytes) => {
                out.extend_from_slice(bytes);
                Some(true)
            }
            StoredValue::Object(_) => None,
            StoredValue::Chunked(table) => {
                // SAFETY: `item` is the record of a live index entry of `shard`, whose lock
                // the caller holds for 'a (an effect is reported under it), so `table` lists
                // live chunk records.
                unsafe { self.store.assemble(self.shard, table, out) };
                Some(table.compressed())
            }
        }
    }
}
