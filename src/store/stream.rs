//! A stream value: entries keyed by `(ms, seq)` ids, appended in id order, with consumer
//! groups (see the `group` submodule), as Redis 7.0's streams (`t_stream.c`) behave.
//!
//! Layout, "radix tree of listpacks" style: a `BTreeMap` from each node's first id to a
//! node packing up to [`node_max_entries`] entries (or [`node_max_bytes`] bytes) in one byte
//! vector, the first entry's field names stored once per node (see the `node` submodule).
//! Appends go to the last node; ranges seek the node holding their start.
//! Trimming removes whole nodes first, as Redis does, so `~` trimming keeps whole nodes.
//!
//! Invariants: ids only grow (`last_id` is never below an entry's id); `length` counts the
//! entries held; [`StreamObject::bytes`] is what the stream holds on the heap, entries and
//! groups, and is what the store charges against its limit. An emptied stream stays a key,
//! as in Redis. Knows no protocol and does no I/O.

mod group;
mod node;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use group::{AutoClaim, Claim, Consumer, Group, Nack, PendingSummary};
pub use node::EntryRef;
use node::Node;

static NODE_MAX_ENTRIES: AtomicUsize = AtomicUsize::new(100);
static NODE_MAX_BYTES: AtomicUsize = AtomicUsize::new(4096);

/// Entries per node before a new node starts (Redis `stream-node-max-entries`, 0 = no
/// limit); process-wide, as Redis's setting is.
pub fn node_max_entries() -> usize {
    NODE_MAX_ENTRIES.load(Ordering::Relaxed)
}
pub fn set_node_max_entries(entries: usize) {
    NODE_MAX_ENTRIES.store(entries, Ordering::Relaxed);
}
/// Bytes per node before a new node starts (Redis `stream-node-max-bytes`, 0 = no limit).
pub fn node_max_bytes() -> usize {
    NODE_MAX_BYTES.load(Ordering::Relaxed)
}
pub fn set_node_max_bytes(bytes: usize) {
    NODE_MAX_BYTES.store(bytes, Ordering::Relaxed);
}

/// An entry id; ordered by milliseconds, then sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next id, `None` past the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous id, `None` before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Which id an added entry gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRequest {
    /// `*`: the clock, or the next id after the last.
    Auto,
    /// `ms-*`: this millisecond, the next free sequence in it.
    Ms(u64),
    /// `ms-seq`.
    Exact(StreamId),
}

/// How to trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimTo {
    MaxLen(u64),
    MinId(StreamId),
}

/// A trim request: the strategy, whether whole nodes only (`~`), and at most how many
/// entries to remove (0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    pub to: TrimTo,
    pub approx: bool,
    pub limit: u64,
}

/// Why a stream operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("the id is equal or smaller than the stream's top item")]
    IdTooSmall,
    #[error("the stream has exhausted the last possible id")]
    Exhausted,
    #[error("no such consumer group")]
    NoGroup,
    #[error("the consumer group already exists")]
    BusyGroup,
    #[error("the entries_added is smaller than the stream length")]
    EntriesAddedTooSmall,
}

/// A stream; see the module documentation.
#[derive(Default, Clone)]
pub struct StreamObject {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    groups: BTreeMap<Box<[u8]>, Group>,
    /// Heap bytes of the nodes.
    node_bytes: usize,
}

impl StreamObject {
    pub fn new() -> StreamObject {
        StreamObject::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    /// A stream is never "empty" for the store: Redis keeps a stream with no entries.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn last_id(&self) -> StreamId {
        self.last_id
    }
    pub fn first_id(&self) -> StreamId {
        self.first_id
    }
    pub fn max_deleted_id(&self) -> StreamId {
        self.max_deleted
    }
    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }
    /// Nodes (Redis's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Heap bytes held: nodes and groups.
    pub fn bytes(&self) -> usize {
        self.node_bytes
            + self.nodes.len() * 32
            + self
                .groups
                .iter()
                .map(|(name, group)| name.len() + group.bytes())
                .sum::<usize>()
    }

    /// Appends an entry of `flat` (`field value ...`, an even number, at least two).
    pub fn add<F: AsRef<[u8]>>(
        &mut self,
        request: IdRequest,
        flat: &[F],
        now_ms: u64,
    ) -> Result<StreamId, StreamError> {
        let last = self.last_id;
        if last == StreamId::MAX {
            return Err(StreamError::Exhausted);
        }
        let id = match request {
            IdRequest::Exact(id) => id,
            IdRequest::Ms(ms) if ms == last.ms => {
                if last.seq == u64::MAX {
                    return Err(StreamError::IdTooSmall);
                }
                StreamId::new(ms, last.seq + 1)
            }
            IdRequest::Ms(ms) => StreamId::new(ms, 0),
            IdRequest::Auto if now_ms > last.ms => StreamId::new(now_ms, 0),
            IdRequest::Auto => last.incr().ok_or(StreamError::Exhausted)?,
        };
        if id <= last {
            return Err(StreamError::IdTooSmall);
        }
        let (max_entries, max_bytes) = (node_max_entries(), node_max_bytes());
        match self.nodes.last_entry() {
            Some(mut node)
                if (max_entries == 0 || node.get().count < max_entries)
                    && (max_bytes == 0 || node.get().data_len() < max_bytes) =>
            {
                let before = node.get().bytes();
                node.get_mut().push(id, flat);
                self.node_bytes = self.node_bytes + node.get().bytes() - before;
            }
            _ => {
                let node = Node::new(id, flat);
                self.node_bytes += node.bytes();
                self.nodes.insert(id, node);
            }
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// The entries from `start` to `end` (both inclusive), last first if `rev`.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = EntryRef<'_>> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        if rev {
            let nodes = self.nodes.range(..=end).rev();
            Box::new(
                nodes
                    .take_while(move |(_, node)| node.last >= start || node.count == 0)
                    .flat_map(|(_, node)| node.iter().collect::<Vec<_>>().into_iter().rev())
                    .skip_while(move |e| e.id > end)
                    .take_while(move |e| e.id >= start),
            )
        } else {
            let from = self
                .nodes
                .range(..=start)
                .next_back()
                .map_or(StreamId::MIN, |(k, _)| *k);
            Box::new(
                self.nodes
                    .range(from..)
                    .flat_map(|(_, node)| node.iter())
                    .skip_while(move |e| e.id < start)
                    .take_while(move |e| e.id <= end),
            )
        }
    }

    /// The entry with this id.
    pub fn get(&self, id: StreamId) -> Option<EntryRef<'_>> {
        self.range(id, id, false).next()
    }

    /// The first (or, `last`, the last) entry.
    pub fn edge(&self, last: bool) -> Option<EntryRef<'_>> {
        self.range(StreamId::MIN, StreamId::MAX, last).next()
    }

    /// Removes the entry `id` (XDEL); false if absent.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        if node.last < id {
            return false;
        }
        let before = node.bytes();
        let removed = node.retain(|e| Some(e != id));
        if removed == 0 {
            return false;
        }
        self.node_bytes = self.node_bytes + node.bytes() - before;
        if node.count == 0 {
            self.node_bytes -= node.bytes();
            self.nodes.remove(&key);
        }
        self.length -= 1;
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.edge(false).map_or(StreamId::MIN, |e| e.id);
        }
        true
    }

    /// Trims as XTRIM / XADD's trimming do; returns how many entries went.
    pub fn trim(&mut self, trim: Trim) -> u64 {
        let mut deleted = 0u64;
        while let Some(mut node) = self.nodes.first_entry() {
            if let TrimTo::MaxLen(max) = trim.to {
                if self.length <= max {
                    break;
                }
            }
            let entries = node.get().count as u64;
            if trim.limit > 0 && deleted + entries > trim.limit {
                break;
            }
            let whole = match trim.to {
                TrimTo::MaxLen(max) => self.length - entries >= max,
                TrimTo::MinId(min) => node.get().last < min,
            };
            if whole {
                self.node_bytes -= node.get().bytes();
                node.remove();
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if trim.approx {
                break;
            }
            let before = node.get().bytes();
            let mut length = self.length;
            let removed = node.get_mut().retain(|id| {
                let stop = match trim.to {
                    TrimTo::MaxLen(max) => length <= max,
                    TrimTo::MinId(min) => id >= min,
                };
                if stop {
                    None
                } else {
                    length -= 1;
                    Some(false)
                }
            }) as u64;
            self.node_bytes = self.node_bytes + node.get().bytes() - before;
            self.length -= removed;
            deleted += removed;
            break;
        }
        if deleted > 0 {
            self.first_id = self.edge(false).map_or(StreamId::MIN, |e| e.id);
        }
        deleted
    }

    /// XSETID: sets the last id (not below the top entry), and optionally the added-entries
    /// counter and the largest deleted id.
    pub fn set_id(
        &mut self,
        id: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
    ) -> Result<(), StreamError> {
        if self.length > 0 {
            let top = self.edge(true).map_or(StreamId::MIN, |e| e.id);
            if id < top {
                return Err(StreamError::IdTooSmall);
            }
            if entries_added.is_some_and(|added| added < self.length) {
                return Err(StreamError::EntriesAddedTooSmall);
            }
        }
        self.last_id = id;
        if let Some(added) = entries_added {
            self.entries_added = added;
        }
        if let Some(max) = max_deleted.filter(|m| !m.is_zero()) {
            self.max_deleted = max;
        }
        Ok(())
    }

    /// Whether a deleted entry lies between `start` and `end` (Redis
    /// `streamRangeHasTombstones`).
    fn has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted.is_zero() || self.first_id > self.max_deleted {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// The read counter a group whose last delivered id is `id` has, when it can be known
    /// (a group read from an RDB file of Redis 6.2 or older, which kept no counter).
    pub fn read_counter_of(&self, id: StreamId) -> Option<u64> {
        self.estimate_read_counter(id)
    }

    /// The logical read counter of `id`: how many entries were ever added up to it, when
    /// it can be known (Redis `streamEstimateDistanceFromFirstEverEntry`).
    fn estimate_read_counter(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added - self.length);
            } else if id == self.first_id {
                return Some(self.entries_added - self.length + 1);
            }
        }
        None
    }

    /// A group's lag: entries not yet delivered to it, when it can be known.
    pub fn lag(&self, group: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = group.entries_read {
            if !self.has_tombstones(group.last_id, StreamId::MAX) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.estimate_read_counter(group.last_id)
            .map(|read| self.entries_added.saturating_sub(read))
    }

    /// Every entry, for a snapshot: `(id, field value ...)`.
    pub fn entries(&self) -> impl Iterator<Item = EntryRef<'_>> {
        self.range(StreamId::MIN, StreamId::MAX, false)
    }

    /// Restores the counters a snapshot saved (entries are re-added first, which sets them
    /// to what the added entries imply).
    pub fn restore_meta(
        &mut self,
        last_id: StreamId,
        max_deleted: StreamId,
        entries_added: u64,
        first_id: StreamId,
    ) {
        self.last_id = self.last_id.max(last_id);
        self.max_deleted = max_deleted;
        self.entries_added = entries_added.max(self.length);
        if self.length > 0 {
            self.first_id = first_id.max(self.first_id);
        }
    }
}

#[cfg(test)]
mod tests;
