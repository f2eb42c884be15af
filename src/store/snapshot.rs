//! The store's side of snapshots: visiting every live item of one shard in short slices
//! (the shard locked only while one slice is copied out), and putting items back when a
//! snapshot is loaded.
//!
//! A walk ([`ShardWalk`]) holds its shard for one slice of about [`SLICE_BUCKETS`] index
//! buckets (some 200 items, tens of microseconds), then lets go, so writers and readers of
//! that shard wait at most that long while a snapshot is taken. Each item is seen whole, as
//! of one moment; an item written while the walk runs is seen either before or after that
//! write, never half; an item that lives through the whole walk is seen exactly once (the
//! walk goes in hash order, so an index rebuilt between two slices neither hides an item
//! nor shows it twice). Nothing here knows a file format: `persist/` encodes what it is
//! handed.
//!
//! Must never: hold a shard across slices, or call the visitor with no shard held.

use super::item::{Expiry, Object};
use super::{compress, index, Store, StoreError, StoredItem, SHARD_COUNT};

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

/// Index buckets a slice of a walk covers at least (8 entries each, 75-90 % full): the
/// shard is held while their items are copied, tens of microseconds for small items.
pub const SLICE_BUCKETS: usize = 32;

/// How many records ahead of the one being copied a walk asks the CPU to load.
const PREFETCH_AHEAD: usize = 12;

/// Where a walk over one shard's items stands between slices: the next bucket, valid while
/// the index keeps the generation it had, and the hash position every item below which
/// was visited (where to pick up after a rebuild).
#[derive(Debug, Clone)]
pub struct ShardWalk {
    shard: usize,
    bucket: usize,
    /// The index's generation after the last slice (`None`: not started).
    generation: Option<u64>,
    position: u64,
    done: bool,
}

impl ShardWalk {
    /// A walk over shard `shard` (0..[`Store::SHARDS`]) from its start.
    pub fn new(shard: usize) -> ShardWalk {
        ShardWalk {
            shard,
            bucket: 0,
            generation: None,
            position: 0,
            done: false,
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl Store {
    /// How many shards [`visit_shard`](Self::visit_shard) walks.
    pub const SHARDS: usize = SHARD_COUNT;

    /// Calls `visit` with every live item of shard `index` (0..[`Store::SHARDS`]), in no
    /// particular order, slice by slice ([`visit_slice`](Self::visit_slice)).
    pub fn visit_shard(&self, index: usize, now_ms: u64, mut visit: impl FnMut(&StoredItem<'_>)) {
        let mut walk = ShardWalk::new(index);
        while !walk.is_done() {
            self.visit_slice(&mut walk, now_ms, &mut visit);
        }
    }

    /// Calls `visit` with the live items of the walk's next slice, with that shard locked
    /// (`visit` must only copy the item out), and moves the walk on; returns how many items
    /// it visited. The shard is let go before this returns.
    pub fn visit_slice(
        &self,
        walk: &mut ShardWalk,
        now_ms: u64,
        mut visit: impl FnMut(&StoredItem<'_>),
    ) -> usize {
        if walk.done {
            return 0;
        }
        if walk.generation.is_none() {
            self.run_due_flush(now_ms);
        }
        let guard = self.shards[walk.shard].lock();
        let shard = &*guard;
        let table = &shard.index;
        let buckets = table.bucket_count();
        let hash_of = |e| {
            // SAFETY: `e` is an entry of the index of the shard held here (the index hands
            // its own entries to this closure, and the loop below its scan's).
            self.hash(unsafe { self.key_of_entry(e) })
        };
        // An index rebuilt since the last slice has moved its entries: find the place again
        // from the hash position, and skip what sits there but was visited already.
        let rebuilt = walk
            .generation
            .is_some_and(|generation| generation != table.generation());
        let from = if rebuilt {
            table.home_of(walk.position)
        } else {
            walk.bucket
        };
        let mut visited = 0;
        if from < buckets {
            let (entries, next) = table.scan_from(from, SLICE_BUCKETS, hash_of);
            for &entry in entries.iter().take(PREFETCH_AHEAD) {
                self.prefetch_item(entry);
            }
            for (at, &entry) in entries.iter().enumerate() {
                if let Some(&ahead) = entries.get(at + PREFETCH_AHEAD) {
                    self.prefetch_item(ahead);
                }
                if rebuilt && hash_of(entry) & 0xffff_ffff < walk.position {
                    continue;
                }
                // SAFETY: `entry` comes from the index of the shard held here.
                let item = unsafe { self.item_at(shard, entry) };
                if Self::is_expired(item, now_ms) {
                    continue;
                }
                visit(&StoredItem::new(self, shard, item));
                visited += 1;
            }
            walk.bucket = next;
        } else {
            walk.bucket = buckets;
        }
        walk.generation = Some(table.generation());
        walk.done = walk.bucket >= buckets;
        walk.position = if walk.done {
            1 << 32
        } else {
            index::first_hash_of_bucket(walk.bucket, buckets)
        };
        visited
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::tests::{set, NOW};
    use super::super::{Delete, EvictionPolicy, Expiry, Mutation, StoreConfig, StoredForm};
    use super::*;

    fn keys_of_shard(store: &Store, shard: usize, prefix: &str, count: usize) -> Vec<Vec<u8>> {
        (0..)
            .map(|n| format!("{prefix}-{n}").into_bytes())
            .filter(|key| Store::shard_of(store.hash(key)) == shard)
            .take(count)
            .collect()
    }

    #[test]
    fn a_walk_sees_each_lasting_item_once_while_its_shard_grows_and_changes() {
        let store = Store::new(StoreConfig {
            memory_limit_bytes: 256 << 20,
            eviction: EvictionPolicy::AllKeysLru,
            ..StoreConfig::default()
        });
        let shard = 5;
        let lasting = keys_of_shard(&store, shard, "old", 3000);
        let added = keys_of_shard(&store, shard, "new", 8000);
        for key in &lasting {
            set(&store, key, b"before", Expiry::Never, NOW);
        }
        let generation = || store.shards[shard].lock().index.generation();
        let first_generation = generation();
        let mut seen: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
        let mut walk = ShardWalk::new(shard);
        let (mut slices, mut next_added) = (0, 0);
        while !walk.is_done() {
            store.visit_slice(&mut walk, NOW, |item| {
                let StoredForm::Raw(value) = item.stored() else {
                    panic!("small strings are stored raw")
                };
                seen.entry(item.key().to_vec())
                    .or_default()
                    .push(value.to_vec());
            });
            slices += 1;
            // Between slices: the shard grows (its index rebuilt bigger), some of what was
            // added goes again (tombstones, rebuilt at the same size), lasting items change.
            for key in added.iter().skip(next_added).take(400) {
                set(&store, key, b"added", Expiry::Never, NOW);
            }
            for key in added.iter().skip(next_added).take(150) {
                let delete = Delete {
                    key,
                    compare_cas: None,
                    new_cas: None,
                    invalidate: None,
                };
                store.apply(Mutation::Delete(delete), NOW);
            }
            next_added += 400;
            for key in lasting.iter().skip(slices * 37).take(37) {
                set(&store, key, b"after!", Expiry::Never, NOW);
            }
        }
        assert!(slices > 8, "the walk took {slices} slices");
        assert!(
            generation() >= first_generation + 3,
            "the index was rebuilt during the walk"
        );
        for key in &lasting {
            let values = seen.get(key).map(Vec::as_slice).unwrap_or_default();
            assert_eq!(values.len(), 1, "{:?} seen {values:?}", key);
            assert!(values[0] == b"before" || values[0] == b"after!");
        }
        for key in &added {
            assert!(seen.get(key).is_none_or(|values| values.len() == 1));
        }
    }
}
