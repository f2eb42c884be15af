//! One shard's hash index: key → item location, 8 bytes per entry.
//!
//! An entry packs a 12-bit tag (hash bits 52..64), the 24-bit segment id, the 20-bit byte
//! offset in that segment and an 8-bit access counter (LRU second chances or the LFU
//! counter). A lookup compares tags first, so most misses never touch a segment.
//!
//! The table is bucketized linear probing: buckets of 8 entries (one 64-byte cache line); a
//! key's home bucket is `hash32 × buckets >> 32` (any bucket count, not only powers of two, so
//! the table grows by 6/5 and stays 75–90 % full: 8.9–10.7 bytes of index per item); an
//! insert takes the first free entry from the home bucket on; a lookup walks from the home
//! bucket and stops at the first bucket that has never been full (it still holds an `EMPTY`
//! entry). A removed entry becomes a `TOMBSTONE`, reused by inserts and dropped by rebuilds.
//! Growing rebuilds one shard's table (1/64 of the store) while its lock is held.
//!
//! Invariants: segment ids are ≥ 1, so a real entry is never `EMPTY` (0) or `TOMBSTONE` (1);
//! `live` counts real entries and `tombstones` tombstones; `live + tombstones ≤ 9/10 ×` capacity
//! after every insert, so probing always ends. An entry names a location, not a record: segment
//! ids are reused, and an entry stays meaningful only because every entry into a segment is
//! removed or moved before the segment's id goes back to the pool (see [`super::segments`]);
//! the tag and key compare of a lookup do not guard against a stale entry.

pub(crate) const EMPTY: u64 = 0;
pub(crate) const TOMBSTONE: u64 = 1;
const BUCKET: usize = 8;

const TAG_SHIFT: u32 = 52;
const SEGMENT_SHIFT: u32 = 28;
const OFFSET_SHIFT: u32 = 8;
/// Segment ids fit in 24 bits, offsets in 20 (segments are at most 1 MiB).
pub(crate) const MAX_SEGMENT_ID: u32 = (1 << 24) - 1;
pub(crate) const MAX_SEGMENT_SIZE: usize = 1 << 20;

/// A packed index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry(pub u64);

impl Entry {
    pub fn new(hash: u64, segment: u32, offset: u32, counter: u8) -> Entry {
        debug_assert!((1..=MAX_SEGMENT_ID).contains(&segment));
        debug_assert!((offset as usize) < MAX_SEGMENT_SIZE);
        Entry(
            (tag_of(hash) << TAG_SHIFT)
                | ((segment as u64) << SEGMENT_SHIFT)
                | ((offset as u64) << OFFSET_SHIFT)
                | counter as u64,
        )
    }
    pub fn segment(self) -> u32 {
        ((self.0 >> SEGMENT_SHIFT) & MAX_SEGMENT_ID as u64) as u32
    }
    pub fn offset(self) -> u32 {
        ((self.0 >> OFFSET_SHIFT) & (MAX_SEGMENT_SIZE as u64 - 1)) as u32
    }
    pub fn counter(self) -> u8 {
        self.0 as u8
    }
    pub fn with_counter(self, counter: u8) -> Entry {
        Entry((self.0 & !0xff) | counter as u64)
    }
    /// The same key moved to another place.
    pub fn moved(self, segment: u32, offset: u32) -> Entry {
        Entry(
            (self.0
                & !(((MAX_SEGMENT_ID as u64) << SEGMENT_SHIFT) | (0xf_ffffu64 << OFFSET_SHIFT)))
                | ((segment as u64) << SEGMENT_SHIFT)
                | ((offset as u64) << OFFSET_SHIFT),
        )
    }
    fn tag(self) -> u64 {
        self.0 >> TAG_SHIFT
    }
}

fn tag_of(hash: u64) -> u64 {
    hash >> TAG_SHIFT
}

fn home(hash: u64, buckets: usize) -> usize {
    (((hash as u32) as u64 * buckets as u64) >> 32) as usize
}

/// The first hash (low 32 bits) whose home bucket is `bucket` or later, for scan cursors.
pub(crate) fn first_hash_of_bucket(bucket: usize, buckets: usize) -> u64 {
    ((bucket as u64) << 32).div_ceil(buckets as u64)
}

pub(crate) struct Index {
    slots: Vec<u64>,
    buckets: usize,
    live: usize,
    tombstones: usize,
    /// Counts rebuilds (and clears): a walk that let go of the shard between steps knows
    /// from it whether its bucket number still means the same place.
    generation: u64,
}

impl Index {
    pub fn new() -> Index {
        Index {
            slots: vec![EMPTY; BUCKET],
            buckets: 1,
            live: 0,
            tombstones: 0,
            generation: 0,
        }
    }

    /// Changes whenever entries move to other positions (a rebuild or a clear).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Bytes the table itself takes.
    pub fn table_bytes(&self) -> usize {
        self.slots.len() * 8
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The entry whose tag matches and for which `is_key` says yes; returns its position.
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(Entry) -> bool) -> Option<usize> {
        let tag = tag_of(hash);
        let mut bucket = home(hash, self.buckets);
        for _ in 0..self.buckets {
            let start = bucket * BUCKET;
            let mut saw_empty = false;
            for pos in start..start + BUCKET {
                let raw = self.slots[pos];
                if raw == EMPTY {
                    saw_empty = true;
                } else if raw != TOMBSTONE && Entry(raw).tag() == tag && is_key(Entry(raw)) {
                    return Some(pos);
                }
            }
            if saw_empty {
                return None;
            }
            bucket = (bucket + 1) % self.buckets;
        }
        None
    }

    pub fn get(&self, pos: usize) -> Entry {
        Entry(self.slots[pos])
    }

    pub fn set(&mut self, pos: usize, entry: Entry) {
        debug_assert!(self.slots[pos] > TOMBSTONE);
        self.slots[pos] = entry.0;
    }

    /// Inserts an entry for a key that is not present. `hash_of` gives the full hash of any
    /// entry already in the table (the table may be rebuilt first).
    pub fn insert(&mut self, hash: u64, entry: Entry, hash_of: impl Fn(Entry) -> u64) -> usize {
        if (self.live + self.tombstones + 1) * 10 > self.slots.len() * 9 {
            let buckets = if self.tombstones > self.live / 4 {
                self.buckets
            } else {
                (self.buckets * 6).div_ceil(5).max(self.buckets + 1)
            };
            self.rebuild(buckets, &hash_of);
        }
        let pos = self.place(hash, entry);
        self.live += 1;
        pos
    }

    fn place(&mut self, hash: u64, entry: Entry) -> usize {
        let mut bucket = home(hash, self.buckets);
        loop {
            let start = bucket * BUCKET;
            for pos in start..start + BUCKET {
                let raw = self.slots[pos];
                if raw == EMPTY || raw == TOMBSTONE {
                    if raw == TOMBSTONE {
                        self.tombstones -= 1;
                    }
                    self.slots[pos] = entry.0;
                    return pos;
                }
            }
            bucket = (bucket + 1) % self.buckets;
        }
    }

    pub fn remove(&mut self, pos: usize) {
        debug_assert!(self.slots[pos] > TOMBSTONE);
        self.slots[pos] = TOMBSTONE;
        self.live -= 1;
        self.tombstones += 1;
    }

    fn rebuild(&mut self, buckets: usize, hash_of: &impl Fn(Entry) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; buckets * BUCKET]);
        self.buckets = buckets;
        self.tombstones = 0;
        self.generation += 1;
        for raw in old {
            if raw > TOMBSTONE {
                self.place(hash_of(Entry(raw)), Entry(raw));
            }
        }
    }

    /// Drops every entry and shrinks back to one bucket.
    pub fn clear(&mut self) {
        let generation = self.generation + 1;
        *self = Index::new();
        self.generation = generation;
    }

    /// Every entry with its position (for walks that do not care about order).
    pub fn entries(&self) -> impl Iterator<Item = (usize, Entry)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, &raw)| raw > TOMBSTONE)
            .map(|(pos, &raw)| (pos, Entry(raw)))
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets
    }

    /// Entries of buckets `from..` in hash order, stopping after the first bucket at or beyond
    /// `from + min_buckets` that holds an `EMPTY` entry (no probe chain crosses it), or at the
    /// end of the table. Returns the entries and the bucket after the last one visited.
    ///
    /// Probe chains that run off the end of the table wrap to its first buckets; those
    /// entries belong to the end of the hash order, so the walk skips them where they sit and
    /// visits them once, when it reaches the end. Telling them apart takes their full hash
    /// (`hash_of`), asked only for entries in the first run of buckets that hold no `EMPTY`.
    /// Every entry is thus returned once by a walk over the whole table in any number of steps.
    pub fn scan_from(
        &self,
        from: usize,
        min_buckets: usize,
        hash_of: impl Fn(Entry) -> u64,
    ) -> (Vec<Entry>, usize) {
        // Wrapped entries can only sit in buckets 0..=wrap_end.
        let wrap_end = (0..self.buckets)
            .find(|&b| self.bucket_has_empty(b))
            .unwrap_or(self.buckets - 1);
        let mut out = Vec::new();
        let mut bucket = from;
        while bucket < self.buckets {
            let saw_empty = self.bucket_has_empty(bucket);
            for entry in self.bucket_entries(bucket) {
                let wrapped = bucket <= wrap_end && home(hash_of(entry), self.buckets) > bucket;
                if !wrapped {
                    out.push(entry);
                }
            }
            bucket += 1;
            if saw_empty && bucket >= from + min_buckets {
                return (out, bucket);
            }
        }
        for b in 0..=wrap_end {
            for entry in self.bucket_entries(b) {
                if home(hash_of(entry), self.buckets) > b {
                    out.push(entry);
                }
            }
        }
        (out, self.buckets)
    }

    fn bucket_entries(&self, bucket: usize) -> impl Iterator<Item = Entry> + '_ {
        let start = bucket * BUCKET;
        self.slots[start..start + BUCKET]
            .iter()
            .filter(|&&raw| raw > TOMBSTONE)
            .map(|&raw| Entry(raw))
    }

    fn bucket_has_empty(&self, bucket: usize) -> bool {
        let start = bucket * BUCKET;
        self.slots[start..start + BUCKET].contains(&EMPTY)
    }

    /// The home bucket of a hash in the current table.
    pub fn home_of(&self, hash: u64) -> usize {
        home(hash, self.buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed mixing function (splitmix64), so entries can be rehashed from their number.
    fn hash(n: u64) -> u64 {
        let mut x = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    #[test]
    fn inserts_finds_and_removes_through_growth() {
        let mut index = Index::new();
        // Entry offset = key number, segment 1; the hash is recomputed from the offset.
        let hash_of = |e: Entry| hash(e.offset() as u64);
        for n in 0..5000u64 {
            index.insert(hash(n), Entry::new(hash(n), 1, n as u32, 0), hash_of);
        }
        assert_eq!(index.len(), 5000);
        let fill = index.len() as f64 / index.capacity() as f64;
        assert!((0.7..=0.9).contains(&fill), "fill {fill}");
        for n in 0..5000u64 {
            let pos = index
                .find(hash(n), |e| e.offset() as u64 == n)
                .expect("present");
            if n % 2 == 0 {
                index.remove(pos);
            }
        }
        for n in 0..5000u64 {
            let found = index.find(hash(n), |e| e.offset() as u64 == n).is_some();
            assert_eq!(found, n % 2 == 1, "key {n}");
        }
        for n in 5000..9000u64 {
            index.insert(hash(n), Entry::new(hash(n), 2, n as u32, 0), hash_of);
        }
        assert_eq!(index.len(), 2500 + 4000);
        assert_eq!(index.entries().count(), 6500);
    }

    #[test]
    fn entry_fields_roundtrip() {
        let e = Entry::new(u64::MAX, MAX_SEGMENT_ID, (1 << 20) - 1, 200);
        assert_eq!(e.segment(), MAX_SEGMENT_ID);
        assert_eq!(e.offset(), (1 << 20) - 1);
        assert_eq!(e.counter(), 200);
        let m = e.moved(3, 17).with_counter(4);
        assert_eq!((m.segment(), m.offset(), m.counter()), (3, 17, 4));
        assert_eq!(m.tag(), e.tag());
    }

    /// Walks the whole table in steps of `step` buckets; the offsets of what it returned.
    fn walk(index: &Index, step: usize, hash_of: impl Fn(Entry) -> u64) -> Vec<u32> {
        let mut seen = Vec::new();
        let mut from = 0;
        while from < index.bucket_count() {
            let (entries, next) = index.scan_from(from, step, &hash_of);
            seen.extend(entries.iter().map(|e| e.offset()));
            from = next;
        }
        seen.sort_unstable();
        seen
    }

    #[test]
    fn a_scan_in_steps_sees_every_entry_once() {
        let mut index = Index::new();
        let hash_of = |e: Entry| hash(e.offset() as u64);
        for n in 0..3000u64 {
            index.insert(hash(n), Entry::new(hash(n), 1, n as u32, 0), hash_of);
        }
        let all: Vec<u32> = (0..3000).collect();
        for step in [1, 4, 1000] {
            assert_eq!(walk(&index, step, hash_of), all, "step {step}");
        }
    }

    #[test]
    fn entries_wrapped_past_the_end_are_scanned_once_at_the_end() {
        let mut index = Index::new();
        // Every key homes in the last bucket, so the chain wraps into the first buckets.
        let hash_of = |e: Entry| 0xffff_ffff_0000_0000 | (0xffff_ff00 + e.offset() as u64);
        for n in 0..20u32 {
            let entry = Entry::new(0, 1, n, 0);
            index.insert(hash_of(entry), entry, hash_of);
        }
        assert!(index.bucket_count() >= 3);
        let all: Vec<u32> = (0..20).collect();
        for step in [1, 2, 100] {
            assert_eq!(walk(&index, step, hash_of), all, "step {step}");
        }
        // A walk that starts past the first bucket still finds the wrapped entries at the end.
        let (entries, next) = index.scan_from(1, 100, hash_of);
        assert_eq!(next, index.bucket_count());
        assert_eq!(entries.len(), 20);
    }
}
