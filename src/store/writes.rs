//! Writing records: putting an item (its value packed into chunks when larger than a
//! segment), releasing and unlinking one, changing an expiry or a cas in place or by a
//! rewrite, counting an access, and the hook every effect goes through ([`Store::report`]).
//!
//! The shard is held by the caller (an [`Entry`], the read path, the reclaimer); these
//! functions never lock a shard and never decide what a command means.

use super::*;

impl Store {
    /// Whether writers may overdraw the budget (evicting policies restore it afterwards).
    pub(super) fn overdraw(&self) -> usize {
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
    pub(super) fn put_item(
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
    pub(super) fn compression_saving(&self, shard: &Shard, item: ItemRef<'_>) -> Option<usize> {
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
    pub(super) fn fits(&self, bytes: usize) -> bool {
        self.segments.in_use() * self.segments.segment_size()
            + self.heap_bytes.load(Ordering::Relaxed)
            + bytes
            <= self.memory_limit()
    }

    /// Forgets the record `old` points at (its key is being rewritten or removed): its bytes
    /// turn dead in their segment, its pool counters drop, its heap value is freed unless
    /// `keep_heap`. The index entry is left for the caller to replace or remove.
    pub(super) fn release(&self, shard: &mut Shard, old: Found, keep_heap: bool) {
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
    pub(super) fn unlink(&self, shard: &mut Shard, found: Found, why: Removal) {
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
    pub(super) fn report(&self, effect: &Effect<'_>) {
        if let Some(observer) = self.observer.get() {
            observer.effect(effect);
        }
    }

    /// Reports that the key of `found` now holds its record.
    pub(super) fn report_put(
        &self,
        shard: &Shard,
        found: Found,
        (cause, presence): (PutCause, KeyPresence),
        labels: Labels<'_>,
    ) {
        if self.observer.get().is_none() {
            return;
        }
        // SAFETY: the entry was found in this shard's index while the shard is held, and has not been removed or replaced since.
        let item = unsafe { self.item_at(shard, found.entry) };
        self.report(&Effect::Put {
            item: StoredItem::new(self, shard, item),
            cause,
            presence,
            labels,
        });
    }

    /// Rewrites a key's record with changes that do not fit in place (an expiry where there
    /// was none, a client cas in a narrow field). Keeps value, state and access counter.
    pub(super) fn rewrite(
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
    pub(super) fn set_expiry(
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
    pub(super) fn set_cas(
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
    pub(super) fn count_access(
        &self,
        shard: &mut Shard,
        found: Found,
        access_before_s: u32,
        now_ms: u64,
    ) {
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
}
