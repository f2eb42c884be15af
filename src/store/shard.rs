//! One lock's worth of the first store: a hash index over slots that sit in an LRU list.
//!
//! Invariants: every occupied slot is in `index` exactly once and in the LRU list exactly once;
//! the list runs from `head` (most recently used) to `tail` (least); `bytes` is the sum of the
//! charges of the items held. The caller holds the shard's mutex for every method here.

use hashbrown::HashTable;

use crate::store::item::Item;

const NIL: u32 = u32::MAX;

/// Nanoseconds since the first call: a clock fine enough that the item written last is
/// always the most recent, whichever thread wrote it (milliseconds tie within a turn).
pub(crate) fn recency_now() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

struct Slot {
    hash: u64,
    /// When the slot last moved to the LRU head ([`recency_now`] units), so eviction can
    /// compare the tails of different shards.
    recency: u64,
    item: Option<Item>,
    prev: u32,
    next: u32,
}

/// A slot id; stable while the item stays in the shard.
pub(crate) type SlotId = u32;

pub(crate) struct Shard {
    index: HashTable<SlotId>,
    slots: Vec<Slot>,
    free: Vec<SlotId>,
    head: u32,
    tail: u32,
    pub(crate) items: usize,
    pub(crate) bytes: usize,
    /// Where the background sweep resumes (a slot id).
    pub(crate) sweep_cursor: usize,
}

impl Shard {
    pub(crate) fn new() -> Shard {
        Shard {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            items: 0,
            bytes: 0,
            sweep_cursor: 0,
        }
    }

    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<SlotId> {
        let slots = &self.slots;
        self.index
            .find(hash, |&id| {
                let slot = &slots[id as usize];
                slot.hash == hash && slot.item.as_ref().is_some_and(|it| it.key() == key)
            })
            .copied()
    }

    pub(crate) fn item(&self, id: SlotId) -> &Item {
        self.slots[id as usize]
            .item
            .as_ref()
            .expect("slot id refers to an occupied slot")
    }

    pub(crate) fn item_mut(&mut self, id: SlotId) -> &mut Item {
        self.slots[id as usize]
            .item
            .as_mut()
            .expect("slot id refers to an occupied slot")
    }

    /// Inserts an item whose key is not present; returns its slot, at the LRU head.
    pub(crate) fn insert(&mut self, hash: u64, item: Item) -> SlotId {
        self.items += 1;
        self.bytes += item.charge();
        let id = match self.free.pop() {
            Some(id) => {
                let slot = &mut self.slots[id as usize];
                slot.hash = hash;
                slot.item = Some(item);
                id
            }
            None => {
                let id = u32::try_from(self.slots.len()).expect("fewer than 2^32 items per shard");
                self.slots.push(Slot {
                    hash,
                    recency: 0,
                    item: Some(item),
                    prev: NIL,
                    next: NIL,
                });
                id
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, id, |&other| slots[other as usize].hash);
        self.link_front(id);
        id
    }

    /// Replaces the item in `id` (same key), keeping its place in the index.
    pub(crate) fn replace(&mut self, id: SlotId, item: Item) {
        let slot = &mut self.slots[id as usize];
        let old = slot
            .item
            .replace(item)
            .expect("replace on an occupied slot");
        self.bytes = self.bytes - old.charge() + slot.item.as_ref().map_or(0, Item::charge);
        self.touch_lru(id);
    }

    /// Re-counts the charge of an item mutated in place (`old_charge` before the change).
    pub(crate) fn recharge(&mut self, id: SlotId, old_charge: usize) {
        let new_charge = self.item(id).charge();
        self.bytes = self.bytes - old_charge + new_charge;
    }

    /// Removes the item in `id`, returning it.
    pub(crate) fn remove(&mut self, id: SlotId) -> Item {
        let hash = self.slots[id as usize].hash;
        match self.index.find_entry(hash, |&other| other == id) {
            Ok(entry) => {
                entry.remove();
            }
            Err(_) => unreachable!("occupied slot {id} missing from the index"),
        }
        self.unlink(id);
        let item = self.slots[id as usize]
            .item
            .take()
            .expect("remove on an occupied slot");
        self.free.push(id);
        self.items -= 1;
        self.bytes -= item.charge();
        item
    }

    /// Moves `id` to the most-recently-used end.
    pub(crate) fn touch_lru(&mut self, id: SlotId) {
        if self.head == id {
            self.slots[id as usize].recency = recency_now();
        } else {
            self.unlink(id);
            self.link_front(id);
        }
    }

    /// The least recently used slot, if any.
    pub(crate) fn lru_tail(&self) -> Option<SlotId> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Number of slots (occupied or free), for the sweep cursor.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The item in slot `id` if occupied.
    pub(crate) fn slot_item(&self, id: usize) -> Option<&Item> {
        self.slots.get(id).and_then(|s| s.item.as_ref())
    }

    /// Drops every item.
    pub(crate) fn clear(&mut self) {
        *self = Shard::new();
    }

    /// When the item in `id` was last used, comparable across shards and threads.
    pub(crate) fn recency(&self, id: SlotId) -> u64 {
        self.slots[id as usize].recency
    }

    fn link_front(&mut self, id: SlotId) {
        let old_head = self.head;
        {
            let slot = &mut self.slots[id as usize];
            slot.recency = recency_now();
            slot.prev = NIL;
            slot.next = old_head;
        }
        if old_head != NIL {
            self.slots[old_head as usize].prev = id;
        } else {
            self.tail = id;
        }
        self.head = id;
    }

    fn unlink(&mut self, id: SlotId) {
        let (prev, next) = {
            let slot = &self.slots[id as usize];
            (slot.prev, slot.next)
        };
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.tail = prev;
        }
        let slot = &mut self.slots[id as usize];
        slot.prev = NIL;
        slot.next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::item::Expiry;

    fn item(key: &str) -> Item {
        Item::new(key.as_bytes(), &[b"v"], 0, Expiry::Never, 0)
    }

    #[test]
    fn lru_order_follows_touches_and_removals() {
        let mut shard = Shard::new();
        let a = shard.insert(1, item("a"));
        let b = shard.insert(2, item("b"));
        let c = shard.insert(3, item("c"));
        assert_eq!(shard.lru_tail(), Some(a));
        shard.touch_lru(a);
        assert_eq!(shard.lru_tail(), Some(b));
        shard.remove(b);
        assert_eq!(shard.lru_tail(), Some(c));
        assert_eq!(shard.find(1, b"a"), Some(a));
        assert_eq!(shard.find(2, b"b"), None);
        let d = shard.insert(4, item("d"));
        assert_eq!(d, b, "freed slot is reused");
        shard.remove(c);
        shard.remove(a);
        shard.remove(d);
        assert_eq!(shard.lru_tail(), None);
        assert_eq!((shard.items, shard.bytes), (0, 0));
    }
}
