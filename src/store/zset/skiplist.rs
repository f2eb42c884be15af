//! The indexed encoding of a sorted set: a skip list whose links carry spans, over an arena.
//!
//! Owns the node arena (slot 0 is the head, free slots are recycled), the member → slot index
//! and the byte count of what the nodes hold. Invariants, checked by `check` in tests: level 0
//! links every member in (score, member) order with correct back pointers; on every level a
//! link's span is the rank difference between its ends; the index maps exactly the live
//! members. A node keeps its slot for as long as its member lives, score changes included
//! (they unlink and relink the same node), which is what makes ZSCAN cursors stable.
//! No `unsafe`: links are `u32` slot numbers, not pointers.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::compare;

pub(super) const NIL: u32 = u32::MAX;
/// Slot 0 of the arena is the head node, which has every level and no member.
const HEAD: u32 = 0;
const MAX_LEVEL: usize = 32;
/// Allocator bookkeeping charged per node (its member and its link array are two blocks).
const NODE_ALLOC_OVERHEAD: usize = 32;

#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    /// The next node on this level, or NIL.
    pub(super) next: u32,
    /// Level-0 steps this link jumps (the rank difference to `next`).
    pub(super) span: u32,
}

pub(super) struct Node {
    pub(super) member: Box<[u8]>,
    pub(super) score: f64,
    /// The previous node on level 0 (NIL for the first).
    pub(super) back: u32,
    pub(super) links: Box<[Link]>,
}

pub(super) struct SkipList {
    /// Arena of nodes; `None` slots are on `free`. Slot 0 is the head.
    nodes: Vec<Option<Node>>,
    free: Vec<u32>,
    /// Levels in use (at least 1).
    level: usize,
    pub(super) len: usize,
    /// Member → slot.
    index: HashTable<u32>,
    hasher: crate::hashing::IndexHasher,
    /// Member bytes plus link arrays of the live nodes.
    pub(super) heap_bytes: usize,
    /// xorshift state for node levels.
    rng: u64,
}

impl SkipList {
    pub(super) fn new() -> SkipList {
        let head = Node {
            member: Box::default(),
            score: f64::NEG_INFINITY,
            back: NIL,
            links: vec![Link { next: NIL, span: 0 }; MAX_LEVEL].into_boxed_slice(),
        };
        SkipList {
            nodes: vec![Some(head)],
            free: Vec::new(),
            level: 1,
            len: 0,
            index: HashTable::new(),
            hasher: crate::hashing::IndexHasher::default(),
            heap_bytes: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    pub(super) fn node(&self, id: u32) -> &Node {
        self.nodes[id as usize]
            .as_ref()
            .expect("skip-list links point at live nodes")
    }

    fn node_mut(&mut self, id: u32) -> &mut Node {
        self.nodes[id as usize]
            .as_mut()
            .expect("skip-list links point at live nodes")
    }

    pub(super) fn bytes(&self) -> usize {
        self.heap_bytes
            + self.len * NODE_ALLOC_OVERHEAD
            + self.nodes.capacity() * std::mem::size_of::<Option<Node>>()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    pub(super) fn find(&self, member: &[u8]) -> Option<u32> {
        self.index
            .find(self.hasher.hash_one(member), |&id| {
                &*self.node(id).member == member
            })
            .copied()
    }

    /// A level with probability 1/4 of each step up, as Redis's `ZSKIPLIST_P`.
    fn random_level(&mut self) -> usize {
        let mut level = 1;
        while level < MAX_LEVEL {
            let mut x = self.rng;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.rng = x;
            if x & 3 != 0 {
                break;
            }
            level += 1;
        }
        level
    }

    /// For each level, the last node ordered before (score, member) and its rank. The walk
    /// stops before `stop` (the node being unlinked, whose member is briefly moved out).
    fn predecessors(
        &self,
        score: f64,
        member: &[u8],
        stop: u32,
    ) -> ([u32; MAX_LEVEL], [u32; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let link = self.node(x).links[i];
                if link.next == NIL || link.next == stop {
                    break;
                }
                let next = self.node(link.next);
                if compare(next.score, &next.member, score, member) != Ordering::Less {
                    break;
                }
                rank[i] += link.span;
                x = link.next;
            }
            update[i] = x;
        }
        (update, rank)
    }

    /// Threads node `id` (member, score and link count already set) into the levels.
    fn link(&mut self, id: u32) {
        let (score, levels) = {
            let node = self.node(id);
            (node.score, node.links.len())
        };
        let member = std::mem::take(&mut self.node_mut(id).member);
        let (mut update, mut rank) = self.predecessors(score, &member, NIL);
        self.node_mut(id).member = member;
        if levels > self.level {
            for i in self.level..levels {
                rank[i] = 0;
                update[i] = HEAD;
                self.node_mut(HEAD).links[i] = Link {
                    next: NIL,
                    span: self.len as u32,
                };
            }
            self.level = levels;
        }
        for i in 0..levels {
            let before = self.node(update[i]).links[i];
            let gap = rank[0] - rank[i];
            self.node_mut(id).links[i] = Link {
                next: before.next,
                span: before.span - gap,
            };
            self.node_mut(update[i]).links[i] = Link {
                next: id,
                span: gap + 1,
            };
        }
        for (i, &before) in update.iter().enumerate().take(self.level).skip(levels) {
            self.node_mut(before).links[i].span += 1;
        }
        let back = if update[0] == HEAD { NIL } else { update[0] };
        self.node_mut(id).back = back;
        let next = self.node(id).links[0].next;
        if next != NIL {
            self.node_mut(next).back = id;
        }
        self.len += 1;
    }

    /// Takes node `id` out of the levels (its slot stays allocated).
    fn unlink(&mut self, id: u32) {
        let (score, back, next0) = {
            let node = self.node(id);
            (node.score, node.back, node.links[0].next)
        };
        let member = std::mem::take(&mut self.node_mut(id).member);
        let (update, _) = self.predecessors(score, &member, id);
        self.node_mut(id).member = member;
        for (i, &before) in update.iter().enumerate().take(self.level) {
            let link = self.node(before).links[i];
            if link.next == id {
                let skipped = self.node(id).links[i];
                self.node_mut(before).links[i] = Link {
                    next: skipped.next,
                    span: link.span + skipped.span - 1,
                };
            } else {
                self.node_mut(before).links[i].span -= 1;
            }
        }
        if next0 != NIL {
            self.node_mut(next0).back = back;
        }
        while self.level > 1 && self.node(HEAD).links[self.level - 1].next == NIL {
            self.level -= 1;
            let top = self.level;
            self.node_mut(HEAD).links[top] = Link { next: NIL, span: 0 };
        }
        self.len -= 1;
    }

    fn alloc(&mut self, member: Box<[u8]>, score: f64) -> u32 {
        let levels = self.random_level();
        self.heap_bytes += member.len() + levels * std::mem::size_of::<Link>();
        let node = Node {
            member,
            score,
            back: NIL,
            links: vec![Link { next: NIL, span: 0 }; levels].into_boxed_slice(),
        };
        match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Some(node);
                id
            }
            None => {
                self.nodes.push(Some(node));
                u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 members")
            }
        }
    }

    fn index_insert(&mut self, id: u32) {
        let nodes = &self.nodes;
        let hasher = &self.hasher;
        let member = &nodes[id as usize].as_ref().expect("live").member;
        self.index
            .insert_unique(hasher.hash_one(member), id, |&other| {
                hasher.hash_one(&nodes[other as usize].as_ref().expect("live").member)
            });
    }

    /// Used when converting from compact: entries arrive in order, so each goes last.
    pub(super) fn push_back_or_insert(&mut self, member: Box<[u8]>, score: f64) {
        let id = self.alloc(member, score);
        self.link(id);
        self.index_insert(id);
    }

    pub(super) fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        if let Some(id) = self.find(member) {
            let old = self.node(id).score;
            if old != score {
                self.unlink(id);
                self.node_mut(id).score = score;
                self.link(id);
            }
            return Some(old);
        }
        let id = self.alloc(member.into(), score);
        self.link(id);
        self.index_insert(id);
        None
    }

    pub(super) fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let id = self.find(member)?;
        self.unlink(id);
        if let Ok(entry) = self
            .index
            .find_entry(self.hasher.hash_one(member), |&other| other == id)
        {
            entry.remove();
        }
        let node = self.nodes[id as usize].take().expect("found node is live");
        self.heap_bytes -= node.member.len() + node.links.len() * std::mem::size_of::<Link>();
        self.free.push(id);
        Some(node.score)
    }

    pub(super) fn rank(&self, member: &[u8]) -> Option<usize> {
        let id = self.find(member)?;
        let node = self.node(id);
        // The number of members ordered strictly before this one.
        Some(self.partition_point(|m, s| compare(s, m, node.score, &node.member) == Ordering::Less))
    }

    /// The node at 0-based `rank`.
    pub(super) fn select(&self, rank: usize) -> Option<u32> {
        if rank >= self.len {
            return None;
        }
        let target = rank as u64 + 1;
        let mut traversed = 0u64;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let link = self.node(x).links[i];
                if link.next == NIL || traversed + u64::from(link.span) > target {
                    break;
                }
                traversed += u64::from(link.span);
                x = link.next;
            }
            if traversed == target {
                return Some(x);
            }
        }
        unreachable!("rank {rank} < len {} has a node", self.len)
    }

    pub(super) fn partition_point(&self, below: impl Fn(&[u8], f64) -> bool) -> usize {
        let mut count = 0usize;
        let mut x = HEAD;
        for i in (0..self.level).rev() {
            loop {
                let link = self.node(x).links[i];
                if link.next == NIL {
                    break;
                }
                let next = self.node(link.next);
                if !below(&next.member, next.score) {
                    break;
                }
                count += link.span as usize;
                x = link.next;
            }
        }
        count
    }

    pub(super) fn scan(&self, cursor: u64, count: usize) -> (Vec<(&[u8], f64)>, u64) {
        let mut found = Vec::new();
        let mut pos = (cursor as usize).max(1);
        while pos < self.nodes.len() && found.len() < count.max(1) {
            if let Some(node) = &self.nodes[pos] {
                found.push((&*node.member, node.score));
            }
            pos += 1;
        }
        let next = if pos >= self.nodes.len() {
            0
        } else {
            pos as u64
        };
        (found, next)
    }

    /// Checks every invariant the operations rely on (tests only).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut order = Vec::new();
        let mut x = self.node(HEAD).links[0].next;
        let mut back = NIL;
        while x != NIL {
            let node = self.node(x);
            assert_eq!(node.back, back, "back pointer of {x}");
            order.push(x);
            back = x;
            x = node.links[0].next;
        }
        assert_eq!(order.len(), self.len);
        assert_eq!(self.index.len(), self.len);
        let rank_of: crate::hashing::HashMap<u32, usize> = order
            .iter()
            .enumerate()
            .map(|(r, &id)| (id, r + 1))
            .collect();
        for w in order.windows(2) {
            let (a, b) = (self.node(w[0]), self.node(w[1]));
            assert_eq!(
                compare(a.score, &a.member, b.score, &b.member),
                Ordering::Less
            );
        }
        for i in 0..self.level {
            let mut x = HEAD;
            let mut rank = 0;
            loop {
                let link = self.node(x).links[i];
                if link.next == NIL {
                    break;
                }
                let next_rank = rank_of[&link.next];
                assert_eq!(link.span as usize, next_rank - rank, "span at level {i}");
                rank = next_rank;
                x = link.next;
            }
        }
    }
}
