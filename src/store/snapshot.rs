//! The store's side of snapshots: visiting every live item of one shard at a consistent point
//! (the shard locked while it is read), and putting items back when a snapshot is loaded.
//!
//! A visit holds one shard for as long as its items take to copy out (1/64 of the data),
//! so writers to other shards never wait and writers to this one wait only that long. Each
//! item is seen whole, as of one moment; items of different shards are each as of their own
//! shard's moment. Nothing here knows a file format: `persist/` encodes what it is handed.

use super::item::{Expiry, Object};
use super::{compress, Store, StoreError, StoredItem, SHARD_COUNT};

/// The value of an item being restored.
pub enum RestoredValue<'a> {
    /// A string value, in the store's stored form (`compressed`: as `compress.rs` writes it).
    String { bytes: &'a [u8], compressed: bool },
    /// A typed value, rebuilt.
    Object(Object),
}

/// Why an item could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("the store refused the item: {0}")]
    Store(#[from] StoreError),
    #[error("a compressed value does not decompress")]
    Corrupt,
}

/// The plain bytes of a string value in the store's packed form (a `.fcs` record of a
/// compressed string), for readers outside the store such as the RDB export: `None`, with
/// nothing allocated beyond `max_len`, when the claimed length passes `max_len` or the bytes
/// do not unpack to exactly that length.
pub fn unpack_stored(bytes: &[u8], max_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    compress::decompress_checked(bytes, max_len, &mut out).then_some(out)
}

/// The length of a string value in the store's packed form once unpacked (what a reader
/// that sends the plain bytes will send), read from its header without unpacking it.
pub fn stored_plain_len(bytes: &[u8]) -> usize {
    compress::original_len(bytes)
}

impl Store {
    /// How many shards [`visit_shard`](Self::visit_shard) walks.
    pub const SHARDS: usize = SHARD_COUNT;

    /// Calls `visit` with every live item of shard `index` (0..[`Store::SHARDS`]), in no
    /// particular order, with that shard locked: `visit` must only copy the item out.
    pub fn visit_shard(&self, index: usize, now_ms: u64, mut visit: impl FnMut(&StoredItem<'_>)) {
        self.run_due_flush(now_ms);
        let guard = self.shards[index].lock();
        let shard = &*guard;
        for (_, entry) in shard.index.entries() {
            // SAFETY: `entry` comes from the index of the shard held here.
            let item = unsafe { self.item_at(shard, entry) };
            if Self::is_expired(item, now_ms) {
                continue;
            }
            visit(&StoredItem::new(self, shard, item));
        }
    }

    /// Puts one item back as a snapshot recorded it: value, flags, cas and absolute expiry
    /// (an item already expired at `now_ms` is skipped). Replaces whatever the key holds.
    /// A loader restores many items in a row: it calls [`Store::restore_memory_bound`]
    /// after each batch instead of the store doing so after every item.
    pub fn restore(
        &self,
        key: &[u8],
        value: RestoredValue<'_>,
        flags: u32,
        cas: u64,
        expiry_ms: u64,
        now_ms: u64,
    ) -> Result<(), RestoreError> {
        if expiry_ms != 0 && expiry_ms <= now_ms {
            return Ok(());
        }
        let expiry = Expiry::from_ms(expiry_ms);
        self.locked(key, now_ms, |entry| match value {
            RestoredValue::String { bytes, compressed } => {
                let plain;
                let value = if compressed {
                    let mut out = Vec::new();
                    let bound = self.memory_limit();
                    if !compress::decompress_checked(bytes, bound, &mut out) {
                        return Err(RestoreError::Corrupt);
                    }
                    plain = out;
                    &plain[..]
                } else {
                    bytes
                };
                entry.put_string_with_cas(value, flags, expiry, Some(cas))?;
                Ok(())
            }
            RestoredValue::Object(object) => {
                if object.is_empty() {
                    return Ok(()); // Redis never keeps an empty collection
                }
                entry.remove();
                entry.put_object(object, expiry)?;
                Ok(())
            }
        })
    }

    /// Brings the store back under its memory limit after a batch of [`restore`]s (the
    /// policy evicts the excess, counted as evictions).
    ///
    /// [`restore`]: Store::restore
    pub fn restore_memory_bound(&self, now_ms: u64) {
        self.make_room(now_ms);
    }
}
