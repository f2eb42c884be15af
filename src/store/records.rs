//! Reading records: the record an index entry points at, its value (decompressed or
//! assembled when it must be), its charge and kind, the view a reader gets, and the lookup of
//! a live key that removes what expired on the way.
//!
//! Every function here runs with the record's shard held (the `&Shard` / `&mut Shard` it is
//! given): it never locks, never writes a record, and never reports an effect except the
//! expiry or eviction [`Store::drop_record`] carries out.

use super::*;

/// What a read knew of its item before it touched it, and what it won, as
/// [`Store::view`] hands them on to the [`ItemView`] (meta `h`, `l`, `W`, `Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadState {
    /// The item had been fetched before this read.
    pub fetched_before: bool,
    /// When the item was last accessed before this read, in seconds.
    pub access_before_s: u32,
    /// This read won the right to recache the item (meta `W`).
    pub won: bool,
    /// Someone else already holds the win token (meta `Z`).
    pub win_already_sent: bool,
    /// The item's frequency counter.
    pub counter: u8,
}

impl ReadState {
    /// A look that neither touches the item nor takes part in a recache race (a scan).
    pub(super) fn untouched(item: ItemRef<'_>, counter: u8) -> ReadState {
        ReadState {
            fetched_before: item.info() & info::FETCHED != 0,
            access_before_s: item.access_s(),
            won: false,
            win_already_sent: false,
            counter,
        }
    }
}

impl Store {
    /// Asks the CPU to start loading the first two cache lines of the record `entry` points
    /// at, so that a walk over many records in index order (a snapshot) overlaps their cache
    /// misses instead of waiting on each in turn (measured: the first read of each record
    /// was 62 % of a SAVE's time). A hint only: it reads nothing into the program and
    /// cannot fault, so a stale entry does no harm.
    pub(super) fn prefetch_item(&self, entry: index::Entry) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let at = self
                .segments
                .base(entry.segment())
                .wrapping_add(entry.offset() as usize);
            // SAFETY: SSE is part of every x86_64 CPU (the baseline this is compiled for),
            // and a prefetch of any address, mapped or not, neither faults nor reads memory
            // into the program.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(at.cast());
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(64).cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = entry;
    }

    /// The record an index entry of `shard` points at, borrowed while the shard is.
    ///
    /// # Safety
    /// `entry` must be in the index of `shard` now (found in it, or yielded by it, and not
    /// removed or replaced since). Nothing checks it: an entry that is stale or of another
    /// shard may point into a segment that was freed or reused, and the record read there
    /// would be garbage. Segments are reused (see `segments.rs`), so this is not theoretical.
    pub(super) unsafe fn item_at<'s>(
        &'s self,
        _shard: &'s Shard,
        entry: index::Entry,
    ) -> ItemRef<'s> {
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
    pub(super) fn item_mut(&self, _shard: &mut Shard, entry: index::Entry) -> ItemMut {
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
    pub(super) unsafe fn key_of_entry(&self, entry: index::Entry) -> &[u8] {
        let base = self.segments.base(entry.segment());
        // SAFETY: the caller guarantees an entry of the index of a shard it holds, so its
        // record is live; keys never change after they are written.
        unsafe {
            let ptr = base.add(entry.offset() as usize);
            let layout = layout::read_layout(ptr);
            std::slice::from_raw_parts(ptr.add(layout.key_at), layout.key_len)
        }
    }

    pub(super) fn stored_value<'s>(shard: &'s Shard, item: ItemRef<'s>) -> StoredValue<'s> {
        match item.kind() {
            info::KIND_INLINE => StoredValue::Plain(item.raw_value()),
            info::KIND_COMPRESSED => StoredValue::Compressed(item.raw_value()),
            info::KIND_TYPED => StoredValue::Object(&shard.objects[item.object_id()]),
            _ => StoredValue::Chunked(ChunkTable::parse(item.raw_value())),
        }
    }

    /// The string value of a record (decompressed or assembled into `scratch` if needed)
    /// and its object.
    pub(super) fn value_of<'s>(
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
    pub(super) fn charge(&self, shard: &Shard, item: ItemRef<'_>) -> usize {
        item.bytes.len()
            + match Self::stored_value(shard, item) {
                StoredValue::Object(object) => object.bytes(),
                // SAFETY: `table` is the chunk table of a record just read from this shard's index, which is held.
                StoredValue::Chunked(table) => unsafe { self.chunks_len(shard, table) },
                _ => 0,
            }
    }

    pub(super) fn key_kind(shard: &Shard, item: ItemRef<'_>) -> KeyKind {
        if item.kind() == info::KIND_TYPED {
            match shard.objects[item.object_id()] {
                Object::Hash(_) => KeyKind::Hash,
                Object::ZSet(_) => KeyKind::ZSet,
                Object::List(_) => KeyKind::List,
                Object::Set(_) => KeyKind::Set,
                Object::Stream(_) => KeyKind::Stream,
            }
        } else {
            KeyKind::String
        }
    }

    pub(super) fn view<'s>(
        &'s self,
        shard: &'s Shard,
        item: ItemRef<'s>,
        now_ms: u64,
        scratch: &'s mut Vec<u8>,
        read: ReadState,
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
            fetched_before: read.fetched_before,
            last_access_before_ms: read.access_before_s as u64 * 1000,
            won: read.won,
            win_already_sent: read.win_already_sent,
            counter: read.counter,
            pin,
        }
    }

    pub(super) fn is_expired(item: ItemRef<'_>, now_ms: u64) -> bool {
        let expiry = item.expiry_ms();
        expiry != 0 && expiry <= now_ms
    }

    /// Finds a live record, lazily removing it if it expired.
    pub(super) fn find_live(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &[u8],
        now_ms: u64,
    ) -> Option<Found> {
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
    pub(super) fn drop_record(
        &self,
        shard: &mut Shard,
        found: Found,
        now_ms: u64,
        policy: EvictionPolicy,
    ) {
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
            labels: None,
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

    pub(super) fn next_cas(shard: &mut Shard, shard_index: usize) -> u64 {
        let seq = shard.next_cas;
        shard.next_cas += 1;
        let cas = (seq << SHARD_BITS) | shard_index as u64;
        shard.last_cas = cas;
        cas
    }
}
