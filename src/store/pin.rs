//! Pins: a reader's hold on a segment, so a value can be sent from segment memory after the
//! read closure (and its shard lock) has ended.
//!
//! A [`PinnedValue`] is taken while the key's shard is held (through [`ItemView::pin_value`]
//! (super::ItemView::pin_value)), for a value stored raw in a segment; it counts one pin on that
//! segment until it is dropped. The arena never reuses or frees a pinned segment: `give_back`
//! parks a pinned segment as *retired* (still counted in use) instead of pooling it, and
//! `reap_retired` pools it once its pins are gone; the arena's own drop leaks pinned segments
//! rather than free memory a pin points at. Bytes of a record's value never change while the
//! record exists, and nothing is written into an in-use segment below its write offset, so a
//! pinned value reads the same bytes for as long as it is held, whatever happens to its key
//! meanwhile (overwritten, deleted, moved by compaction or the cold pass, evicted).
//!
//! This module never takes a lock; a pin costs one atomic add and one atomic subtract.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

const CHUNK: usize = 4096;

/// Pin counts of every segment id, allocated lazily in chunks as ids are handed out (as the
/// arena's slot table is); shared with the pins themselves, so a count outlives the store.
pub(crate) struct PinTable {
    chunks: Box<[OnceLock<Box<[AtomicU32]>>]>,
}

impl PinTable {
    pub fn new(last_id: u32) -> PinTable {
        PinTable {
            chunks: (0..(last_id as usize + 1).div_ceil(CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    fn count(&self, id: u32) -> &AtomicU32 {
        let chunk = self.chunks[id as usize / CHUNK]
            .get_or_init(|| (0..CHUNK).map(|_| AtomicU32::new(0)).collect());
        &chunk[id as usize % CHUNK]
    }

    /// Whether any reader holds segment `id`. Acquire: pairs with the release of an unpin,
    /// so once this is false the last holder's reads of the segment are done.
    pub fn is_pinned(&self, id: u32) -> bool {
        self.count(id).load(Ordering::Acquire) != 0
    }
}

/// Where a view's value lives, if it can be pinned (a raw value in a segment).
#[derive(Clone, Copy)]
pub(crate) struct ValuePin<'a> {
    pub table: &'a Arc<PinTable>,
    pub segment: u32,
}

impl ValuePin<'_> {
    /// Pins the segment and hands out `value`, which must lie in it.
    pub fn pin(&self, value: &[u8]) -> PinnedValue {
        self.table
            .count(self.segment)
            .fetch_add(1, Ordering::AcqRel);
        PinnedValue {
            table: self.table.clone(),
            segment: self.segment,
            ptr: value.as_ptr(),
            len: value.len(),
        }
    }
}

/// A value's bytes in segment memory, held (pinned) until dropped.
pub struct PinnedValue {
    table: Arc<PinTable>,
    segment: u32,
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `PinnedValue` is a shared, read-only view of bytes that no thread writes while the
// pin lasts (see the module documentation), plus an `Arc` and an id: sending it to or sharing
// it with another thread cannot race.
unsafe impl Send for PinnedValue {}
// SAFETY: as above: only reads of immutable bytes and atomic counts.
unsafe impl Sync for PinnedValue {}

impl PinnedValue {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is the value of a record in segment `segment`, taken from a
        // live view while its shard was held; the pin this value counts keeps the segment
        // from being pooled, reused or freed (module documentation), and value bytes never
        // change, so the slice stays valid and unchanged for `self`'s lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for PinnedValue {
    fn drop(&mut self) {
        // Release: the holder's reads of the bytes happen before a reaper sees the count drop.
        self.table
            .count(self.segment)
            .fetch_sub(1, Ordering::Release);
    }
}

impl std::fmt::Debug for PinnedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedValue")
            .field("segment", &self.segment)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::{set, NOW};
    use crate::store::{Expiry, Mutation, ReadOptions, Store, StoreConfig};

    #[test]
    fn a_pinned_segment_outlives_its_records_and_is_pooled_once_unpinned() {
        let s = Store::new(StoreConfig {
            memory_limit_bytes: 16 << 20,
            ..StoreConfig::default()
        });
        let value: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        set(&s, b"big", &value, Expiry::Never, NOW);
        let pinned = s
            .get(b"big", NOW, ReadOptions::plain(), |view| {
                view.expect("present").pin_value()
            })
            .expect("a raw value in a segment can be pinned");
        // The key goes, its segment is reclaimed (flush frees every segment), and another
        // value is written where it was: the pinned bytes stay as they were.
        s.apply(Mutation::FlushAll { at_ms: None }, NOW);
        assert_eq!(s.stats().segments_retired, 1);
        let other = vec![0xeeu8; 300_000];
        for i in 0..40 {
            set(&s, format!("k{i}").as_bytes(), &other, Expiry::Never, NOW);
        }
        assert!(pinned.bytes() == &value[..]);
        drop(pinned);
        s.sweep(NOW, 16);
        let stats = s.stats();
        assert_eq!(
            (stats.segments_retired, stats.segments_retired_total),
            (0, 1)
        );
        // A value unpacked for the read (packed by the cold pass, read without promotion)
        // has nothing to pin.
        let later = NOW + crate::store::engine_tests::COLD_MS;
        assert!(s.compress_cold(later) > 0);
        let pinnable = s.get(b"k1", later, ReadOptions::default(), |view| {
            view.map(|v| (v.value() == &other[..], v.pin_value().is_some()))
        });
        assert_eq!(pinnable, Some((true, false)));
    }
}
