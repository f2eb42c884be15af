//! The store's locked operations as callers see them: a read ([`Store::get`]), memcached's
//! fixed mutations ([`Store::apply`], run on an [`Entry`] like every other write), flushes
//! (now or delayed) and the background sweep.
//!
//! Each takes one shard at a time and restores the memory bound with no shard held.

use super::records::ReadState;
use super::*;

impl Store {
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
                        self.report_put(
                            shard,
                            found,
                            (PutCause::Restamped, KeyPresence::Existing),
                            None,
                        );
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
                        self.report_put(
                            shard,
                            found,
                            (PutCause::Written, KeyPresence::Added),
                            None,
                        );
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
            ReadState {
                fetched_before,
                access_before_s: access_before,
                won,
                win_already_sent: already,
                counter,
            },
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
        self.apply_labelled(mutation, now_ms, None)
    }

    /// [`apply`](Self::apply), naming the change for its effect (see [`Entry::label`]).
    pub fn apply_labelled(
        &self,
        mutation: Mutation<'_>,
        now_ms: u64,
        labels: Labels<'_>,
    ) -> Outcome {
        self.run_due_flush(now_ms);
        let mut outcome = self.apply_once(mutation, now_ms, labels);
        let mut tries = 4;
        while outcome == Outcome::OutOfMemory && tries > 0 && self.reclaim_one(now_ms, true) {
            // Compaction or expiry made room in an open segment: try again.
            tries -= 1;
            outcome = self.apply_once(mutation, now_ms, labels);
        }
        self.make_room(now_ms);
        outcome
    }

    pub(super) fn apply_once(
        &self,
        mutation: Mutation<'_>,
        now_ms: u64,
        labels: Labels<'_>,
    ) -> Outcome {
        let labelled = |entry: &mut Entry<'_>| {
            if let Some(names) = labels {
                entry.set_labels(names);
            }
        };
        match mutation {
            Mutation::Write(write) => self.locked(write.key, now_ms, |entry| {
                labelled(entry);
                entry.write(write)
            }),
            Mutation::Delete(delete) => self.locked(delete.key, now_ms, |entry| {
                labelled(entry);
                entry.delete(delete)
            }),
            Mutation::Touch { key, expiry } => self.locked(key, now_ms, |entry| {
                labelled(entry);
                entry.touch(expiry)
            }),
            Mutation::Unlink { key } => self.locked(key, now_ms, |entry| {
                labelled(entry);
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
    pub(super) fn run_due_flush(&self, now_ms: u64) {
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
    ///
    /// The one place that holds every shard at once (taken in index order; every other
    /// holder takes one shard and waits for no other, so this cannot deadlock): the flush is
    /// one moment for every key, and its effect is reported inside that moment, so a write
    /// racing the flush is reported either before it (and flushed) or after it (and kept),
    /// never on the wrong side, which a replica replaying the effects relies on.
    pub(super) fn flush_now(&self) {
        let mut guards: Vec<_> = self.shards.iter().map(|shard| shard.lock()).collect();
        for guard in guards.iter_mut() {
            let shard = &mut **guard;
            let entries: Vec<(usize, index::Entry)> = shard.index.entries().collect();
            shard.counters.changes += entries.len() as u64;
            for (pos, entry) in entries {
                self.unlink(shard, Found { pos, entry }, Removal::Flushed);
            }
            shard.index.clear();
        }
        self.report(&Effect::Flushed);
        drop(guards);
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
}
