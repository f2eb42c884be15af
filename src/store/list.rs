//! A list value: a sequence of byte strings with cheap pushes and pops at both ends.
//!
//! One structure, Redis's quicklist: a deque of packed nodes. Each node is a listpack-like
//! byte buffer (see [`Packed`]), at most [`NODE_MAX_BYTES`] long unless it holds a single
//! larger element. A list that fits in one node is what Redis 7.2 calls the `listpack`
//! encoding; once it needs a second node it is a `quicklist`, and OBJECT ENCODING says which.
//! One code path serves both because a listpack list *is* a one-node quicklist: the only cost
//! of the deque around the single node is its header, while a second, separate small
//! representation would double every index/insert/trim routine.
//!
//! Element bytes are stored once, with 2 bytes of framing each (5+5 past 254 bytes), so a
//! list costs about what Redis's listpack does per element.
//!
//! Invariants: no node is empty; `len` is the sum of the nodes' counts; [`ListObject::bytes`]
//! is what the list holds on the heap and is what the store charges against its limit.
//! This module knows no protocol and does no I/O.

use std::collections::VecDeque;

/// Bytes past which a node is split (Redis `list-max-listpack-size -2`, 8 KiB).
pub const NODE_MAX_BYTES: usize = 8192;

/// Marks a long element's 5-byte frame (a short one's single length byte is below it).
const LONG: u8 = 0xFF;

/// Elements framed one after another: `len data len`, with `len` one byte when below 255,
/// else `0xFF u32le` before the data and `u32le 0xFF` after it. The trailing copy of the
/// length lets a node be read back to front (pop from the tail without a scan).
#[derive(Default, Clone)]
pub struct Packed {
    buf: Vec<u8>,
    count: usize,
}

fn frame_len(len: usize) -> usize {
    if len < LONG as usize {
        len + 2
    } else {
        len + 10
    }
}

fn write_frame(out: &mut Vec<u8>, value: &[u8]) {
    if value.len() < LONG as usize {
        out.push(value.len() as u8);
        out.extend_from_slice(value);
        out.push(value.len() as u8);
    } else {
        let len = (value.len() as u32).to_le_bytes();
        out.push(LONG);
        out.extend_from_slice(&len);
        out.extend_from_slice(value);
        out.extend_from_slice(&len);
        out.push(LONG);
    }
}

impl Packed {
    fn from_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Packed {
        let mut node = Packed::default();
        for value in values {
            node.push_back(value);
        }
        node
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// The element whose frame starts at `at`, and where the next frame starts.
    fn read_at(&self, at: usize) -> (&[u8], usize) {
        let (data_at, len, trailer) = if self.buf[at] == LONG {
            let len = u32::from_le_bytes(self.buf[at + 1..at + 5].try_into().expect("4 bytes"));
            (at + 5, len as usize, 5)
        } else {
            (at + 1, self.buf[at] as usize, 1)
        };
        (&self.buf[data_at..data_at + len], data_at + len + trailer)
    }

    /// Where the frame ending at `end` starts.
    fn frame_start_before(&self, end: usize) -> usize {
        if self.buf[end - 1] == LONG {
            let len = u32::from_le_bytes(self.buf[end - 5..end - 1].try_into().expect("4 bytes"));
            end - frame_len(len as usize)
        } else {
            end - frame_len(self.buf[end - 1] as usize)
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        PackedIter {
            node: self,
            front: 0,
            back: self.buf.len(),
        }
    }

    fn push_back(&mut self, value: &[u8]) {
        write_frame(&mut self.buf, value);
        self.count += 1;
    }

    fn push_front(&mut self, value: &[u8]) {
        let mut frame = Vec::with_capacity(frame_len(value.len()));
        write_frame(&mut frame, value);
        self.buf.splice(0..0, frame);
        self.count += 1;
    }

    fn pop_front(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let (value, next) = self.read_at(0);
        let value = value.to_vec();
        self.buf.drain(..next);
        self.count -= 1;
        Some(value)
    }

    fn pop_back(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let start = self.frame_start_before(self.buf.len());
        let (value, _) = self.read_at(start);
        let value = value.to_vec();
        self.buf.truncate(start);
        self.count -= 1;
        Some(value)
    }

    /// Keeps the elements for which `keep(local_index, element)` holds.
    fn retain(&mut self, mut keep: impl FnMut(usize, &[u8]) -> bool) {
        let mut kept = Packed::default();
        for (i, value) in self.iter().enumerate() {
            if keep(i, value) {
                kept.push_back(value);
            }
        }
        *self = kept;
    }

    /// Rebuilds the node with `value` put at `local` (insert) or replacing it (set).
    fn rebuild_at(&mut self, local: usize, value: &[u8], replace: bool) {
        let mut out = Packed::default();
        for (i, old) in self.iter().enumerate() {
            if i == local {
                out.push_back(value);
                if replace {
                    continue;
                }
            }
            out.push_back(old);
        }
        if local == self.count && !replace {
            out.push_back(value);
        }
        *self = out;
    }
}

struct PackedIter<'a> {
    node: &'a Packed,
    front: usize,
    back: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (value, next) = self.node.read_at(self.front);
        self.front = next;
        Some(value)
    }
}

impl DoubleEndedIterator for PackedIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let start = self.node.frame_start_before(self.back);
        self.back = start;
        Some(self.node.read_at(start).0)
    }
}

/// Which end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// A list; see the module documentation.
#[derive(Default)]
pub struct ListObject {
    nodes: VecDeque<Packed>,
    len: usize,
}

impl ListObject {
    pub fn new() -> ListObject {
        ListObject::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held: every node's buffer capacity plus the deque of node headers.
    pub fn bytes(&self) -> usize {
        self.nodes.iter().map(|n| n.buf.capacity()).sum::<usize>()
            + self.nodes.capacity() * std::mem::size_of::<Packed>()
    }

    /// `"listpack"` (one node) or `"quicklist"`, as OBJECT ENCODING reports it.
    pub fn encoding(&self) -> &'static str {
        if self.nodes.len() <= 1 {
            "listpack"
        } else {
            "quicklist"
        }
    }

    pub fn push(&mut self, end: End, value: &[u8]) {
        let limits = &super::encoding::LIMITS;
        let fits = |node: &Packed| {
            limits.list_node_takes(node.byte_len(), node.len(), frame_len(value.len()))
        };
        match end {
            End::Head => match self.nodes.front_mut() {
                Some(node) if fits(node) => node.push_front(value),
                _ => self.nodes.push_front(Packed::from_values([value])),
            },
            End::Tail => match self.nodes.back_mut() {
                Some(node) if fits(node) => node.push_back(value),
                _ => self.nodes.push_back(Packed::from_values([value])),
            },
        }
        self.len += 1;
    }

    pub fn pop(&mut self, end: End) -> Option<Vec<u8>> {
        let node = match end {
            End::Head => self.nodes.front_mut()?,
            End::Tail => self.nodes.back_mut()?,
        };
        let value = match end {
            End::Head => node.pop_front(),
            End::Tail => node.pop_back(),
        }
        .expect("nodes are never empty");
        if node.is_empty() {
            match end {
                End::Head => self.nodes.pop_front(),
                End::Tail => self.nodes.pop_back(),
            };
        }
        self.len -= 1;
        self.shrink_if_sparse();
        Some(value)
    }

    /// Gives back deque capacity a drained list no longer needs.
    fn shrink_if_sparse(&mut self) {
        if self.nodes.capacity() > 16 && self.nodes.len() * 4 < self.nodes.capacity() {
            self.nodes.shrink_to(self.nodes.len() * 2);
        }
    }

    /// Front to back.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.nodes.iter().flat_map(|node| node.iter())
    }

    /// The node holding element `index` and the element's place in it.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index >= self.len / 2 {
            // Walk from the tail: as close as from the head, and common for queues.
            let mut after = self.len;
            for (n, node) in self.nodes.iter().enumerate().rev() {
                after -= node.len();
                if index >= after {
                    return Some((n, index - after));
                }
            }
        } else {
            let mut before = 0;
            for (n, node) in self.nodes.iter().enumerate() {
                if index < before + node.len() {
                    return Some((n, index - before));
                }
                before += node.len();
            }
        }
        unreachable!("index < len is inside some node")
    }

    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let (n, local) = self.locate(index)?;
        self.nodes[n].iter().nth(local)
    }

    /// Replaces element `index`; false if out of range.
    pub fn set(&mut self, index: usize, value: &[u8]) -> bool {
        let Some((n, local)) = self.locate(index) else {
            return false;
        };
        self.nodes[n].rebuild_at(local, value, true);
        self.split_if_big(n);
        true
    }

    /// Inserts `value` so that it becomes element `index` (`index == len` appends).
    pub fn insert(&mut self, index: usize, value: &[u8]) {
        if index == self.len {
            return self.push(End::Tail, value);
        }
        let (n, local) = self.locate(index).expect("index <= len");
        self.nodes[n].rebuild_at(local, value, false);
        self.len += 1;
        self.split_if_big(n);
    }

    /// Splits node `n` in two while it is over the node size and holds more than one element.
    fn split_if_big(&mut self, n: usize) {
        let node = &self.nodes[n];
        if !super::encoding::LIMITS.list_node_over(node.byte_len(), node.len()) || node.len() < 2 {
            return;
        }
        let half = node.len() / 2;
        let front = Packed::from_values(node.iter().take(half));
        let back = Packed::from_values(node.iter().skip(half));
        self.nodes[n] = front;
        self.nodes.insert(n + 1, back);
        self.split_if_big(n + 1);
        self.split_if_big(n);
    }

    /// Index of the first element equal to `value`, searching from the head.
    pub fn position(&self, value: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == value)
    }

    /// Removes up to `limit` elements equal to `value` (all when `None`), starting from `from`.
    /// Returns how many were removed.
    pub fn remove_matching(&mut self, value: &[u8], from: End, limit: Option<usize>) -> usize {
        let mut left = limit.unwrap_or(usize::MAX);
        let mut removed = 0;
        let order: Vec<usize> = match from {
            End::Head => (0..self.nodes.len()).collect(),
            End::Tail => (0..self.nodes.len()).rev().collect(),
        };
        for n in order {
            if left == 0 {
                break;
            }
            let node = &mut self.nodes[n];
            // Which local indexes go: the first (or last) `left` matches in this node.
            let matches: Vec<usize> = node
                .iter()
                .enumerate()
                .filter(|(_, e)| *e == value)
                .map(|(i, _)| i)
                .collect();
            if matches.is_empty() {
                continue;
            }
            let take = matches.len().min(left);
            let doomed: &[usize] = match from {
                End::Head => &matches[..take],
                End::Tail => &matches[matches.len() - take..],
            };
            node.retain(|i, _| doomed.binary_search(&i).is_err());
            left -= take;
            removed += take;
        }
        self.len -= removed;
        self.nodes.retain(|node| !node.is_empty());
        removed
    }

    /// Keeps only elements `start..=stop` (already clamped into range by the caller), or
    /// empties the list when `keep` is `None`.
    pub fn retain_range(&mut self, keep: Option<(usize, usize)>) {
        let Some((start, stop)) = keep else {
            self.nodes.clear();
            self.len = 0;
            return;
        };
        let mut before = 0;
        for node in self.nodes.iter_mut() {
            let count = node.len();
            let (first, last) = (before, before + count - 1);
            if last < start || first > stop {
                *node = Packed::default();
            } else if first < start || last > stop {
                node.retain(|i, _| (start..=stop).contains(&(before + i)));
            }
            before += count;
        }
        self.nodes.retain(|node| !node.is_empty());
        self.len = stop - start + 1;
        self.shrink_if_sparse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(list: &ListObject) -> Vec<Vec<u8>> {
        list.iter().map(|e| e.to_vec()).collect()
    }

    #[test]
    fn packed_frames_read_both_ways() {
        let long = vec![b'x'; 300];
        let node = Packed::from_values([&b"a"[..], &long, b"", b"bc"]);
        let forward: Vec<&[u8]> = node.iter().collect();
        assert_eq!(forward, vec![&b"a"[..], &long, b"", b"bc"]);
        let backward: Vec<&[u8]> = node.iter().rev().collect();
        assert_eq!(backward, vec![&b"bc"[..], b"", &long, b"a"]);
        assert_eq!(node.byte_len(), 3 + 310 + 2 + 4);
    }

    #[test]
    fn pushes_and_pops_at_both_ends_across_nodes() {
        let mut list = ListObject::new();
        let mut model = VecDeque::new();
        for i in 0..5000u32 {
            let value = i.to_string().into_bytes();
            if i % 3 == 0 {
                list.push(End::Head, &value);
                model.push_front(value);
            } else {
                list.push(End::Tail, &value);
                model.push_back(value);
            }
        }
        assert_eq!(list.encoding(), "quicklist");
        assert_eq!(items(&list), model.iter().cloned().collect::<Vec<_>>());
        assert_eq!(list.get(1234), Some(&model[1234][..]));
        assert_eq!(list.get(4999), Some(&model[4999][..]));
        assert_eq!(list.get(5000), None);
        for i in 0..4990 {
            let (got, want) = if i % 2 == 0 {
                (list.pop(End::Head), model.pop_front())
            } else {
                (list.pop(End::Tail), model.pop_back())
            };
            assert_eq!(got, want);
        }
        assert_eq!(list.len(), 10);
        assert_eq!(list.encoding(), "listpack");
        assert_eq!(items(&list), model.iter().cloned().collect::<Vec<_>>());
    }

    #[test]
    fn insert_set_split_and_trim_keep_order() {
        let mut list = ListObject::new();
        let mut model: Vec<Vec<u8>> = Vec::new();
        for i in 0..400u32 {
            let value = format!("value-{i:04}-{}", "p".repeat(20)).into_bytes();
            let at = (i as usize * 7) % (model.len() + 1);
            list.insert(at, &value);
            model.insert(at, value);
        }
        assert!(list.nodes.len() > 1);
        assert!(list.nodes.iter().all(|n| n.byte_len() <= NODE_MAX_BYTES));
        assert_eq!(items(&list), model);
        list.set(17, b"seventeen");
        model[17] = b"seventeen".to_vec();
        assert_eq!(items(&list), model);
        list.retain_range(Some((10, 300)));
        model = model[10..=300].to_vec();
        assert_eq!(items(&list), model);
        assert_eq!(list.len(), model.len());
    }

    #[test]
    fn remove_matching_from_either_end() {
        let mut list = ListObject::new();
        for value in ["a", "b", "a", "c", "a", "b", "a"] {
            list.push(End::Tail, value.as_bytes());
        }
        assert_eq!(list.remove_matching(b"a", End::Tail, Some(2)), 2);
        assert_eq!(
            items(&list),
            vec![
                b"a".to_vec(),
                b"b".to_vec(),
                b"a".to_vec(),
                b"c".to_vec(),
                b"b".to_vec()
            ]
        );
        assert_eq!(list.remove_matching(b"a", End::Head, Some(1)), 1);
        assert_eq!(list.remove_matching(b"b", End::Head, None), 2);
        assert_eq!(items(&list), vec![b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn memory_is_counted_and_given_back() {
        let mut list = ListObject::new();
        for _ in 0..10_000 {
            list.push(End::Tail, &[b'v'; 16]);
        }
        let full = list.bytes();
        assert!(full >= 10_000 * 18, "{full}");
        assert!(full <= 10_000 * 18 * 2, "{full}");
        while list.pop(End::Head).is_some() {}
        assert!(list.bytes() < 1024, "{}", list.bytes());
    }
}
