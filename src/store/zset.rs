//! A sorted-set value: members (bytes) ordered by score, then by member bytes, as Redis orders
//! them, with O(log n) rank, select-by-rank and score/lex range bounds.
//!
//! Two encodings, like Redis's:
//! - **compact** (`OBJECT ENCODING` "listpack"): one vector of `(member, score)` kept in order.
//!   Member lookups scan it, ranks and ranges binary-search it. Used while the set has at most
//!   [`COMPACT_MAX_ENTRIES`] members, none longer than [`COMPACT_MAX_MEMBER_LEN`] bytes (Redis's
//!   `zset-max-listpack-entries` 128 and `zset-max-listpack-value` 64 defaults).
//! - **indexed** ("skiplist"): a skip list whose links carry spans (how many level-0 steps a
//!   link jumps), so a descent sums spans into a rank: rank, select and bound searches are
//!   O(log n) expected. Nodes live in an arena (`Vec` slots addressed by `u32`, a free list
//!   recycling slots), which keeps the code free of `unsafe` and makes a node's slot stable
//!   while its member lives: ZSCAN's cursor is a slot position, so every member present for a
//!   whole scan is returned at least once. A `hashbrown::HashTable` of slot numbers, hashed by
//!   member, gives the member → score lookup without storing the member twice.
//!   The skip list itself lives in the `skiplist` submodule.
//!   A skip list was chosen over an order-statistics B-tree because its rank bookkeeping is a
//!   few lines per operation and its reverse walk (back pointers) is free.
//!
//! A set grows from compact to indexed and never shrinks back (Redis does the same); sets built
//! whole by a STORE command start in whichever encoding their size calls for.
//!
//! Invariants: no NaN score is ever stored (callers reject NaN; `-0` is stored as `0`);
//! members are unique; [`ZSet::bytes`] is what the set really holds (member bytes, links,
//! arena and index capacity) and is what the store charges against its memory limit.
//! This module knows no protocol and does no I/O.

mod skiplist;

use std::cmp::Ordering;
use std::ops::Range;

use skiplist::{SkipList, NIL};

/// Members up to which a set stays compact by default (Redis `zset-max-listpack-entries`).
pub use super::encoding::DEFAULT_ZSET_ENTRIES as COMPACT_MAX_ENTRIES;
/// Longest member a compact set holds by default (Redis `zset-max-listpack-value`).
pub use super::encoding::DEFAULT_ZSET_VALUE as COMPACT_MAX_MEMBER_LEN;

/// Redis's order: by score, then by member bytes (shorter first on a common prefix).
pub fn compare(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score
        .partial_cmp(&b_score)
        .expect("sorted-set scores are never NaN")
        .then_with(|| a_member.cmp(b_member))
}

/// One end of a score range: a value and whether it is excluded (`(1.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// `min <= score <= max`, each end possibly exclusive (ZRANGEBYSCORE, ZCOUNT, ...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: ScoreBound,
    pub max: ScoreBound,
}

impl ScoreRange {
    fn below_min(&self, score: f64) -> bool {
        if self.min.exclusive {
            score <= self.min.value
        } else {
            score < self.min.value
        }
    }

    fn within_max(&self, score: f64) -> bool {
        if self.max.exclusive {
            score < self.max.value
        } else {
            score <= self.max.value
        }
    }
}

/// One end of a lexicographic range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    NegInf,
    PosInf,
    Inclusive(Vec<u8>),
    Exclusive(Vec<u8>),
}

/// A member range by bytes (ZRANGEBYLEX, ZLEXCOUNT, ...). Meaningful when all scores are
/// equal, as Redis documents; otherwise the answer is a range of the score order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    fn below_min(&self, member: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Inclusive(m) => member < m.as_slice(),
            LexBound::Exclusive(m) => member <= m.as_slice(),
        }
    }

    fn within_max(&self, member: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Inclusive(m) => member <= m.as_slice(),
            LexBound::Exclusive(m) => member < m.as_slice(),
        }
    }
}

/// A sorted set; see the module documentation for the encodings.
pub struct ZSet {
    repr: Repr,
}

enum Repr {
    Compact(Compact),
    Indexed(SkipList),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

impl ZSet {
    pub fn new() -> ZSet {
        ZSet {
            repr: Repr::Compact(Compact::default()),
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Compact(c) => c.entries.len(),
            Repr::Indexed(s) => s.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `"listpack"` or `"skiplist"`, as OBJECT ENCODING reports it.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Compact(_) => "listpack",
            Repr::Indexed(_) => "skiplist",
        }
    }

    /// Bytes charged against the memory limit.
    pub fn bytes(&self) -> usize {
        match &self.repr {
            Repr::Compact(c) => c.bytes(),
            Repr::Indexed(s) => s.bytes(),
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Compact(c) => c.position(member).map(|i| c.entries[i].1),
            Repr::Indexed(s) => s.find(member).map(|id| s.node(id).score),
        }
    }

    /// Sets `member`'s score, adding the member if new; returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        // `+ 0.0` turns -0 into 0, so the two zeros never sit apart in the order.
        let score = score + 0.0;
        if let Repr::Compact(c) = &mut self.repr {
            if let Some(i) = c.position(member) {
                let old = c.entries[i].1;
                if old != score {
                    let entry = c.entries.remove(i);
                    c.insert_sorted(entry.0, score);
                }
                return Some(old);
            }
            let limits = &super::encoding::LIMITS;
            if c.entries.len() < limits.zset_entries() && member.len() <= limits.zset_value() {
                c.insert_sorted(member.into(), score);
                return None;
            }
            self.convert_to_indexed();
        }
        match &mut self.repr {
            Repr::Indexed(s) => s.insert(member, score),
            Repr::Compact(_) => unreachable!("converted to indexed above"),
        }
    }

    fn convert_to_indexed(&mut self) {
        if let Repr::Compact(c) = &mut self.repr {
            let entries = std::mem::take(&mut c.entries);
            let mut list = SkipList::new();
            for (member, score) in entries {
                list.push_back_or_insert(member, score);
            }
            self.repr = Repr::Indexed(list);
        }
    }

    /// Removes `member`; returns its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Compact(c) => c.position(member).map(|i| c.entries.remove(i).1),
            Repr::Indexed(s) => s.remove(member),
        }
    }

    /// The 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Compact(c) => {
                let score = c.entries[c.position(member)?].1;
                Some(
                    c.entries
                        .partition_point(|(m, s)| compare(*s, m, score, member) == Ordering::Less),
                )
            }
            Repr::Indexed(s) => s.rank(member),
        }
    }

    /// The member at 0-based ascending `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Compact(c) => c.entries.get(rank).map(|(m, s)| (&**m, *s)),
            Repr::Indexed(s) => s.select(rank).map(|id| {
                let node = s.node(id);
                (&*node.member, node.score)
            }),
        }
    }

    /// How many members, from the lowest up, satisfy `below`, which must hold for a prefix
    /// of the order and fail after it (a monotone predicate, as `slice::partition_point`).
    pub fn partition_point(&self, below: impl Fn(&[u8], f64) -> bool) -> usize {
        match &self.repr {
            Repr::Compact(c) => c.entries.partition_point(|(m, s)| below(m, *s)),
            Repr::Indexed(s) => s.partition_point(below),
        }
    }

    /// The ranks of the members inside a score range.
    pub fn score_ranks(&self, range: &ScoreRange) -> Range<usize> {
        let start = self.partition_point(|_, s| range.below_min(s));
        let end = self.partition_point(|_, s| range.within_max(s));
        start..end.max(start)
    }

    /// The ranks of the members inside a lex range.
    pub fn lex_ranks(&self, range: &LexRange) -> Range<usize> {
        let start = self.partition_point(|m, _| range.below_min(m));
        let end = self.partition_point(|m, _| range.within_max(m));
        start..end.max(start)
    }

    /// Members of ranks `ranks`, lowest first.
    pub fn range(&self, ranks: Range<usize>) -> RangeIter<'_> {
        let ranks = ranks.start..ranks.end.min(self.len());
        let remaining = ranks.len();
        let cursor = match &self.repr {
            Repr::Compact(_) => ranks.start as u32,
            Repr::Indexed(s) if remaining > 0 => s.select(ranks.start).unwrap_or(NIL),
            Repr::Indexed(_) => NIL,
        };
        RangeIter {
            set: self,
            cursor,
            remaining,
            reverse: false,
        }
    }

    /// Members of ranks `ranks`, highest first.
    pub fn range_rev(&self, ranks: Range<usize>) -> RangeIter<'_> {
        let ranks = ranks.start..ranks.end.min(self.len());
        let remaining = ranks.len();
        let cursor = match &self.repr {
            Repr::Compact(_) if remaining > 0 => (ranks.end - 1) as u32,
            Repr::Indexed(s) if remaining > 0 => s.select(ranks.end - 1).unwrap_or(NIL),
            _ => NIL,
        };
        RangeIter {
            set: self,
            cursor,
            remaining,
            reverse: true,
        }
    }

    /// Every member, lowest first.
    pub fn iter(&self) -> RangeIter<'_> {
        self.range(0..self.len())
    }

    /// Removes the members of ranks `ranks`; returns how many.
    pub fn remove_range(&mut self, ranks: Range<usize>) -> usize {
        let ranks = ranks.start..ranks.end.min(self.len());
        if ranks.is_empty() {
            return 0;
        }
        if let Repr::Compact(c) = &mut self.repr {
            c.entries.drain(ranks.clone());
            return ranks.len();
        }
        let doomed: Vec<Box<[u8]>> = self.range(ranks.clone()).map(|(m, _)| m.into()).collect();
        for member in doomed {
            self.remove(&member);
        }
        ranks.len()
    }

    /// Members from position `cursor` on, at least `count` visited; returns them and the next
    /// cursor (0 when done). A compact set comes back whole, as Redis answers for listpacks.
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<(&[u8], f64)>, u64) {
        match &self.repr {
            Repr::Compact(_) => (self.iter().collect(), 0),
            Repr::Indexed(s) => s.scan(cursor, count),
        }
    }
}

/// Iterator over a rank range, in either direction.
pub struct RangeIter<'a> {
    set: &'a ZSet,
    /// Compact: an index; indexed: a node slot (NIL when done).
    cursor: u32,
    remaining: usize,
    reverse: bool,
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match &self.set.repr {
            Repr::Compact(c) => {
                let (m, s) = &c.entries[self.cursor as usize];
                if self.reverse {
                    self.cursor = self.cursor.wrapping_sub(1);
                } else {
                    self.cursor += 1;
                }
                Some((&**m, *s))
            }
            Repr::Indexed(list) => {
                let node = list.node(self.cursor);
                self.cursor = if self.reverse {
                    node.back
                } else {
                    node.links[0].next
                };
                Some((&*node.member, node.score))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for RangeIter<'_> {}

/// The compact encoding: entries in order.
#[derive(Default)]
struct Compact {
    entries: Vec<(Box<[u8]>, f64)>,
}

impl Compact {
    fn position(&self, member: &[u8]) -> Option<usize> {
        self.entries.iter().position(|(m, _)| &**m == member)
    }

    fn insert_sorted(&mut self, member: Box<[u8]>, score: f64) {
        let at = self
            .entries
            .partition_point(|(m, s)| compare(*s, m, score, &member) == Ordering::Less);
        self.entries.insert(at, (member, score));
    }

    fn bytes(&self) -> usize {
        self.entries.iter().map(|(m, _)| m.len()).sum::<usize>()
            + self.entries.capacity() * std::mem::size_of::<(Box<[u8]>, f64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator for the model test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The oracle: a `Vec` kept sorted by (score, member).
    #[derive(Default)]
    struct Model(Vec<(Vec<u8>, f64)>);
    impl Model {
        fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
            let old = self.remove(member);
            let at = self
                .0
                .partition_point(|(m, s)| compare(*s, m, score, member) == Ordering::Less);
            self.0.insert(at, (member.to_vec(), score));
            old
        }
        fn remove(&mut self, member: &[u8]) -> Option<f64> {
            let i = self.0.iter().position(|(m, _)| m == member)?;
            Some(self.0.remove(i).1)
        }
    }

    fn contents(set: &ZSet) -> Vec<(Vec<u8>, f64)> {
        set.iter().map(|(m, s)| (m.to_vec(), s)).collect()
    }

    fn check(set: &ZSet, model: &Model) {
        if let Repr::Indexed(list) = &set.repr {
            list.check();
        }
        assert_eq!(set.len(), model.0.len());
        assert_eq!(contents(set), model.0);
        let rev: Vec<(Vec<u8>, f64)> = set
            .range_rev(0..set.len())
            .map(|(m, s)| (m.to_vec(), s))
            .collect();
        let mut expected = model.0.clone();
        expected.reverse();
        assert_eq!(rev, expected);
    }

    #[test]
    fn randomized_against_a_sorted_vec() {
        for seed in 1..=6u64 {
            let mut rng = Rng(seed * 0x2545_f491_4f6c_dd1d);
            let mut set = ZSet::new();
            let mut model = Model::default();
            // Few distinct scores so members often tie on score and order by bytes.
            let universe = if seed % 2 == 0 { 60 } else { 400 };
            let mut max_len = 0;
            for step in 0..4000 {
                max_len = max_len.max(model.0.len());
                let member = format!("m{}", rng.below(universe)).into_bytes();
                let score = (rng.below(20) as f64 - 10.0) / 2.0;
                match rng.below(10) {
                    0..=5 => assert_eq!(set.insert(&member, score), model.insert(&member, score)),
                    6 => assert_eq!(set.remove(&member), model.remove(&member)),
                    7 => {
                        let n = model.0.len();
                        let a = rng.below(n as u64 + 2) as usize;
                        let b = rng.below(n as u64 + 2) as usize;
                        let lo = a.min(b);
                        let (a, b) = (lo, a.max(b).min(lo + 3));
                        let removed = set.remove_range(a..b);
                        let end = b.min(n);
                        let expect = end.saturating_sub(a);
                        if a < end {
                            model.0.drain(a..end);
                        }
                        assert_eq!(removed, expect);
                    }
                    _ => {}
                }
                assert_eq!(
                    set.score(&member),
                    model.0.iter().find(|(m, _)| *m == member).map(|e| e.1)
                );
                let expected_rank = model.0.iter().position(|(m, _)| *m == member);
                assert_eq!(set.rank(&member), expected_rank, "step {step}");
                if !model.0.is_empty() {
                    let r = rng.below(model.0.len() as u64) as usize;
                    let (m, s) = set.get(r).unwrap();
                    assert_eq!((m.to_vec(), s), model.0[r]);
                }
                // Score range with random inclusive/exclusive ends.
                let range = ScoreRange {
                    min: ScoreBound {
                        value: (rng.below(24) as f64 - 12.0) / 2.0,
                        exclusive: rng.below(2) == 0,
                    },
                    max: ScoreBound {
                        value: (rng.below(24) as f64 - 12.0) / 2.0,
                        exclusive: rng.below(2) == 0,
                    },
                };
                let got: Vec<(Vec<u8>, f64)> = set
                    .range(set.score_ranks(&range))
                    .map(|(m, s)| (m.to_vec(), s))
                    .collect();
                let want: Vec<(Vec<u8>, f64)> = model
                    .0
                    .iter()
                    .filter(|(_, s)| !range.below_min(*s) && range.within_max(*s))
                    .cloned()
                    .collect();
                assert_eq!(got, want, "score range {range:?}");
                if step % 50 == 0 {
                    check(&set, &model);
                }
            }
            check(&set, &model);
            max_len = max_len.max(model.0.len());
            assert!(
                universe < 128 || max_len > COMPACT_MAX_ENTRIES,
                "exercises the skip list"
            );
            let expected = if max_len > COMPACT_MAX_ENTRIES {
                "skiplist"
            } else {
                "listpack"
            };
            assert_eq!(set.encoding(), expected);
        }
    }

    #[test]
    fn lex_ranges_against_a_sorted_vec() {
        let mut rng = Rng(99);
        for size in [10usize, 300] {
            let mut set = ZSet::new();
            let mut model = Model::default();
            for _ in 0..size {
                let member = format!("{:x}", rng.below(4096)).into_bytes();
                set.insert(&member, 0.0);
                model.insert(&member, 0.0);
            }
            let bound = |rng: &mut Rng| match rng.below(6) {
                0 => LexBound::NegInf,
                1 => LexBound::PosInf,
                2 | 3 => LexBound::Inclusive(format!("{:x}", rng.below(4096)).into_bytes()),
                _ => LexBound::Exclusive(format!("{:x}", rng.below(4096)).into_bytes()),
            };
            for _ in 0..500 {
                let range = LexRange {
                    min: bound(&mut rng),
                    max: bound(&mut rng),
                };
                let want: Vec<Vec<u8>> = model
                    .0
                    .iter()
                    .filter(|(m, _)| !range.below_min(m) && range.within_max(m))
                    .map(|(m, _)| m.clone())
                    .collect();
                let ranks = set.lex_ranks(&range);
                assert_eq!(ranks.len(), want.len());
                let got: Vec<Vec<u8>> = set.range(ranks.clone()).map(|(m, _)| m.to_vec()).collect();
                assert_eq!(got, want, "{range:?}");
                let mut rev: Vec<Vec<u8>> = set.range_rev(ranks).map(|(m, _)| m.to_vec()).collect();
                rev.reverse();
                assert_eq!(rev, want);
                // Removing the range removes exactly those members.
                if rng.below(20) == 0 {
                    let removed = set.remove_range(set.lex_ranks(&range));
                    assert_eq!(removed, want.len());
                    model.0.retain(|(m, _)| !want.contains(m));
                    check(&set, &model);
                }
            }
        }
    }

    #[test]
    fn grows_from_listpack_to_skiplist_and_accounts_bytes() {
        let mut set = ZSet::new();
        let empty = set.bytes();
        for i in 0..COMPACT_MAX_ENTRIES {
            set.insert(format!("m{i}").as_bytes(), i as f64);
        }
        assert_eq!(set.encoding(), "listpack");
        let compact = set.bytes();
        assert!(compact > empty + COMPACT_MAX_ENTRIES * 2);
        set.insert(b"one more", 0.5);
        assert_eq!(set.encoding(), "skiplist");
        assert!(set.bytes() > compact);
        assert_eq!(set.rank(b"one more"), Some(1));
        assert_eq!(set.get(0), Some((&b"m0"[..], 0.0)));
        // A long member converts a small set at once.
        let mut long = ZSet::new();
        long.insert(&[b'x'; COMPACT_MAX_MEMBER_LEN + 1], 1.0);
        assert_eq!(long.encoding(), "skiplist");
        // Removing everything leaves no member bytes behind.
        for i in 0..COMPACT_MAX_ENTRIES {
            assert!(set.remove(format!("m{i}").as_bytes()).is_some());
        }
        set.remove(b"one more");
        assert!(set.is_empty());
        if let Repr::Indexed(list) = &set.repr {
            assert_eq!(list.heap_bytes, 0);
            list.check();
        }
    }

    #[test]
    fn order_is_score_then_bytes_and_zeros_meet() {
        let mut set = ZSet::new();
        set.insert(b"b", 1.0);
        set.insert(b"a", 1.0);
        set.insert(b"ab", 1.0);
        set.insert(b"z", -0.0);
        set.insert(b"y", 0.0);
        set.insert(b"inf", f64::INFINITY);
        set.insert(b"-inf", f64::NEG_INFINITY);
        let order: Vec<&[u8]> = set.iter().map(|(m, _)| m).collect();
        assert_eq!(order, [&b"-inf"[..], b"y", b"z", b"a", b"ab", b"b", b"inf"]);
        assert!(set.score(b"z").unwrap().is_sign_positive());
    }

    #[test]
    fn scan_returns_every_member_present_throughout() {
        let mut set = ZSet::new();
        for i in 0..500 {
            set.insert(format!("m{i}").as_bytes(), i as f64);
        }
        let mut seen = crate::hashing::HashSet::default();
        let (mut cursor, mut round) = (0, 0);
        loop {
            let (found, next) = set.scan(cursor, 17);
            seen.extend(found.iter().map(|(m, _)| m.to_vec()));
            // Churn: other members come and go, and scores of present ones change.
            set.insert(format!("tmp{round}").as_bytes(), 1.0);
            set.remove(format!("tmp{round}").as_bytes());
            set.insert(format!("m{}", round % 500).as_bytes(), -(round as f64));
            round += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..500 {
            assert!(seen.contains(format!("m{i}").as_bytes()), "m{i}");
        }
    }
}
