//! One node of a stream: up to a few dozen entries packed in one byte vector, as a Redis
//! listpack holds them under one radix-tree key.
//!
//! ```text
//! node   = master field names (the first entry's, kept once) | data
//! data   = entry*
//! entry  = varint(ms - base_ms) | varint(seq) | flags u8
//!          | [varint(nfields) | (varint len | name)*]     only without SAME_FIELDS
//!          | (varint len | value)*
//! ```
//! An entry whose field names equal the master's (the common case of a queue of uniform
//! messages) stores only its values. Deleting rewrites the node without the entry.
//! Knows nothing of groups or protocols; never allocates beyond what an entry brings.

use super::StreamId;

const SAME_FIELDS: u8 = 1;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(data: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = data[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn get_slice<'a>(data: &'a [u8], at: &mut usize) -> &'a [u8] {
    let len = get_varint(data, at) as usize;
    let slice = &data[*at..*at + len];
    *at += len;
    slice
}

/// An entry read out of a node: its id and its field-value pairs, borrowed from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub id: StreamId,
    pub pairs: Vec<(&'a [u8], &'a [u8])>,
}

/// A node; see the module documentation.
#[derive(Clone)]
pub(super) struct Node {
    base_ms: u64,
    master: Vec<Box<[u8]>>,
    data: Vec<u8>,
    /// Entries held.
    pub(super) count: usize,
    /// The id of the last entry held (meaningless while empty).
    pub(super) last: StreamId,
}

impl Node {
    pub(super) fn new<F: AsRef<[u8]>>(id: StreamId, flat: &[F]) -> Node {
        let mut node = Node {
            base_ms: id.ms,
            master: flat.iter().step_by(2).map(|f| f.as_ref().into()).collect(),
            data: Vec::new(),
            count: 0,
            last: id,
        };
        node.push(id, flat);
        node
    }

    /// Heap bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.data.capacity()
            + self
                .master
                .iter()
                .map(|m| m.len() + std::mem::size_of::<Box<[u8]>>())
                .sum::<usize>()
            + std::mem::size_of::<Node>()
    }

    pub(super) fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Appends an entry; `id` is above every id held and `flat` is `field value ...`.
    pub(super) fn push<F: AsRef<[u8]>>(&mut self, id: StreamId, flat: &[F]) {
        let same = flat.len() / 2 == self.master.len()
            && flat
                .iter()
                .step_by(2)
                .zip(&self.master)
                .all(|(f, m)| f.as_ref() == &m[..]);
        let data = &mut self.data;
        put_varint(data, id.ms - self.base_ms);
        put_varint(data, id.seq);
        if same {
            data.push(SAME_FIELDS);
        } else {
            data.push(0);
            put_varint(data, (flat.len() / 2) as u64);
            for field in flat.iter().step_by(2) {
                put_varint(data, field.as_ref().len() as u64);
                data.extend_from_slice(field.as_ref());
            }
        }
        for value in flat.iter().skip(1).step_by(2) {
            put_varint(data, value.as_ref().len() as u64);
            data.extend_from_slice(value.as_ref());
        }
        self.count += 1;
        self.last = id;
    }

    /// The entries, first to last.
    pub(super) fn iter(&self) -> NodeIter<'_> {
        NodeIter { node: self, at: 0 }
    }

    /// Keeps the entries `keep` accepts, visiting them first to last until it answers `None`
    /// (stop: keep the rest). Returns how many were removed.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(StreamId) -> Option<bool>) -> usize {
        let mut kept: Vec<(StreamId, Vec<Vec<u8>>)> = Vec::new();
        let mut removed = 0;
        let mut stopped = false;
        for entry in self.iter() {
            let keep_it = if stopped {
                true
            } else {
                match keep(entry.id) {
                    Some(k) => k,
                    None => {
                        stopped = true;
                        true
                    }
                }
            };
            if keep_it {
                let flat = entry
                    .pairs
                    .iter()
                    .flat_map(|(f, v)| [f.to_vec(), v.to_vec()])
                    .collect();
                kept.push((entry.id, flat));
            } else {
                removed += 1;
            }
        }
        if removed == 0 {
            return 0;
        }
        self.data = Vec::new();
        self.count = 0;
        for (id, flat) in &kept {
            self.push(*id, flat);
        }
        self.data.shrink_to_fit();
        removed
    }
}

/// Walks a node's entries in order.
pub(super) struct NodeIter<'a> {
    node: &'a Node,
    at: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        let node = self.node;
        let data = &node.data[..];
        if self.at >= data.len() {
            return None;
        }
        let at = &mut self.at;
        let ms = node.base_ms + get_varint(data, at);
        let seq = get_varint(data, at);
        let flags = data[*at];
        *at += 1;
        let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
        if flags & SAME_FIELDS != 0 {
            for name in &node.master {
                pairs.push((&name[..], &[]));
            }
        } else {
            let n = get_varint(data, at) as usize;
            for _ in 0..n {
                pairs.push((get_slice(data, at), &[]));
            }
        }
        for pair in pairs.iter_mut() {
            pair.1 = get_slice(data, at);
        }
        Some(EntryRef {
            id: StreamId { ms, seq },
            pairs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    #[test]
    fn entries_round_trip_with_and_without_the_master_fields() {
        let mut node = Node::new(id(5, 0), &["a", "1", "b", "2"]);
        node.push(id(5, 1), &["a", "3", "b", "4"]);
        node.push(id(9, 7), &["c", "5"]);
        let all: Vec<_> = node.iter().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].id, id(5, 1));
        assert_eq!(all[1].pairs, vec![(&b"a"[..], &b"3"[..]), (b"b", b"4")]);
        assert_eq!(all[2].pairs, vec![(&b"c"[..], &b"5"[..])]);
        assert_eq!(node.retain(|i| Some(i != id(5, 1))), 1);
        let ids: Vec<_> = node.iter().map(|e| e.id).collect();
        assert_eq!(ids, [id(5, 0), id(9, 7)]);
        assert_eq!(node.count, 2);
    }
}
