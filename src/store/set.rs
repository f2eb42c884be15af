//! A set value: distinct byte strings, with two encodings as Redis 7.0 has them.
//!
//! - **intset** (`OBJECT ENCODING` "intset"): while every member is an integer in canonical
//!   form (what Redis's `string2ll` accepts and prints back the same) and there are at most
//!   [`INTSET_MAX_ENTRIES`] of them, the set is a sorted `Vec<i64>`: 8 bytes a member, binary
//!   search for membership.
//! - **hashtable**: members in slots (`Vec<Option<Box<[u8]>>>`, a free list reusing holes)
//!   with a `hashbrown::HashTable` of slot numbers hashed by member. A member's slot is stable
//!   while it lives, so an SSCAN cursor (a slot position) returns every member present for the
//!   whole scan.
//!
//! A set converts from intset to hashtable once and never back, as Redis does.
//! Invariants: members are unique; [`SetObject::bytes`] is what the set holds on the heap and
//! is what the store charges against its limit. Knows no protocol, does no I/O.

use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Members up to which an all-integer set stays an intset by default (Redis
/// `set-max-intset-entries`).
pub use super::encoding::DEFAULT_SET_INTSET_ENTRIES as INTSET_MAX_ENTRIES;

/// The integer a member is, if it is one in canonical form (`"12"`, `"-3"`, not `"012"`,
/// `"+1"` or `" 1"`), as Redis's intset accepts members.
fn as_integer(member: &[u8]) -> Option<i64> {
    if member.is_empty() || member.len() > 20 {
        return None;
    }
    let value: i64 = std::str::from_utf8(member).ok()?.parse().ok()?;
    (value.to_string().as_bytes() == member).then_some(value)
}

#[derive(Default)]
struct Table {
    slots: Vec<Option<Box<[u8]>>>,
    free: Vec<usize>,
    index: HashTable<usize>,
    len: usize,
    member_bytes: usize,
    hasher: crate::hashing::IndexHasher,
}

impl Table {
    fn position(&self, member: &[u8]) -> Option<usize> {
        self.index
            .find(self.hasher.hash_one(member), |&pos| {
                self.slots[pos].as_deref() == Some(member)
            })
            .copied()
    }

    fn insert(&mut self, member: &[u8]) -> bool {
        if self.position(member).is_some() {
            return false;
        }
        let pos = match self.free.pop() {
            Some(pos) => {
                self.slots[pos] = Some(member.into());
                pos
            }
            None => {
                self.slots.push(Some(member.into()));
                self.slots.len() - 1
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hasher.hash_one(member), pos, |&p| {
                hasher.hash_one(slots[p].as_deref().expect("indexed slot is live"))
            });
        self.len += 1;
        self.member_bytes += member.len();
        true
    }

    fn remove(&mut self, member: &[u8]) -> bool {
        let hash = self.hasher.hash_one(member);
        let slots = &self.slots;
        let Ok(entry) = self
            .index
            .find_entry(hash, |&pos| slots[pos].as_deref() == Some(member))
        else {
            return false;
        };
        let (pos, _) = entry.remove();
        self.slots[pos] = None;
        self.free.push(pos);
        self.len -= 1;
        self.member_bytes -= member.len();
        if self.len == 0 {
            self.slots = Vec::new();
            self.free = Vec::new();
            self.index = HashTable::new();
        }
        true
    }
}

enum Repr {
    Ints(Vec<i64>),
    Table(Table),
}

/// A set; see the module documentation.
pub struct SetObject {
    repr: Repr,
}

impl Default for SetObject {
    fn default() -> Self {
        SetObject::new()
    }
}

impl SetObject {
    pub fn new() -> SetObject {
        SetObject {
            repr: Repr::Ints(Vec::new()),
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(ints) => ints.len(),
            Repr::Table(table) => table.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held: the integers, or the slots, member bytes, index and free list.
    pub fn bytes(&self) -> usize {
        match &self.repr {
            Repr::Ints(ints) => ints.capacity() * 8,
            Repr::Table(table) => {
                table.slots.capacity() * std::mem::size_of::<Option<Box<[u8]>>>()
                    + table.member_bytes
                    + table.index.capacity() * (std::mem::size_of::<usize>() + 1)
                    + table.free.capacity() * std::mem::size_of::<usize>()
            }
        }
    }

    /// `"intset"` or `"hashtable"`, as OBJECT ENCODING reports it.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(ints) => as_integer(member).is_some_and(|n| ints.binary_search(&n).is_ok()),
            Repr::Table(table) => table.position(member).is_some(),
        }
    }

    fn convert_to_table(&mut self) {
        if let Repr::Ints(ints) = &self.repr {
            let mut table = Table::default();
            for n in ints {
                table.insert(n.to_string().as_bytes());
            }
            self.repr = Repr::Table(table);
        }
    }

    /// Adds `member`; true if it is new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if let Repr::Ints(ints) = &mut self.repr {
            if let Some(n) = as_integer(member) {
                match ints.binary_search(&n) {
                    Ok(_) => return false,
                    Err(at) if ints.len() < super::encoding::LIMITS.set_intset_entries() => {
                        ints.insert(at, n);
                        return true;
                    }
                    Err(_) => {}
                }
            }
            self.convert_to_table();
        }
        match &mut self.repr {
            Repr::Table(table) => table.insert(member),
            Repr::Ints(_) => unreachable!("converted above"),
        }
    }

    /// Removes `member`; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(ints) => match as_integer(member).map(|n| ints.binary_search(&n)) {
                Some(Ok(at)) => {
                    ints.remove(at);
                    true
                }
                _ => false,
            },
            Repr::Table(table) => table.remove(member),
        }
    }

    /// Every member (integers printed as Redis prints them).
    pub fn iter(&self) -> Box<dyn Iterator<Item = Cow<'_, [u8]>> + '_> {
        match &self.repr {
            Repr::Ints(ints) => {
                Box::new(ints.iter().map(|n| Cow::Owned(n.to_string().into_bytes())))
            }
            Repr::Table(table) => {
                Box::new(table.slots.iter().flatten().map(|m| Cow::Borrowed(&m[..])))
            }
        }
    }

    /// A member picked by `random` (uniform for an intset; for a hashtable, a random slot,
    /// falling back to a walk when the slots are sparse). `None` if empty.
    pub fn random_member(&self, mut random: impl FnMut() -> u64) -> Option<Cow<'_, [u8]>> {
        if self.is_empty() {
            return None;
        }
        match &self.repr {
            Repr::Ints(ints) => {
                let n = ints[random() as usize % ints.len()];
                Some(Cow::Owned(n.to_string().into_bytes()))
            }
            Repr::Table(table) => {
                for _ in 0..32 {
                    if let Some(member) = &table.slots[random() as usize % table.slots.len()] {
                        return Some(Cow::Borrowed(&member[..]));
                    }
                }
                self.iter().nth(random() as usize % table.len)
            }
        }
    }

    /// Members from slot `cursor` on, at least `count` slots visited (an intset comes back
    /// whole, as Redis answers SSCAN on its compact encodings); the next cursor is 0 when done.
    pub fn scan(&self, cursor: usize, count: usize) -> (Vec<Cow<'_, [u8]>>, usize) {
        match &self.repr {
            Repr::Ints(_) => (self.iter().collect(), 0),
            Repr::Table(table) => {
                let mut found = Vec::new();
                let mut pos = cursor;
                while pos < table.slots.len() && found.len() < count.max(1) {
                    if let Some(member) = &table.slots[pos] {
                        found.push(Cow::Borrowed(&member[..]));
                    }
                    pos += 1;
                }
                let next = if pos >= table.slots.len() { 0 } else { pos };
                (found, next)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_stay_an_intset_until_a_string_or_too_many() {
        let mut set = SetObject::new();
        assert!(set.insert(b"3"));
        assert!(set.insert(b"-7"));
        assert!(!set.insert(b"3"));
        assert_eq!(set.encoding(), "intset");
        assert!(set.contains(b"-7"));
        assert!(!set.contains(b"07"));
        assert_eq!(set.bytes(), set.len().next_power_of_two().max(4) * 8);
        assert!(set.insert(b"07"), "not canonical: a string member");
        assert_eq!(set.encoding(), "hashtable");
        assert!(set.contains(b"3") && set.contains(b"07") && set.contains(b"-7"));
        assert_eq!(set.len(), 3);

        let mut many = SetObject::new();
        for n in 0..=INTSET_MAX_ENTRIES {
            many.insert(n.to_string().as_bytes());
        }
        assert_eq!(many.encoding(), "hashtable");
        assert_eq!(many.len(), INTSET_MAX_ENTRIES + 1);
    }

    #[test]
    fn removal_scan_and_bytes_in_the_hashtable() {
        let mut set = SetObject::new();
        for n in 0..1000 {
            set.insert(format!("member-{n}").as_bytes());
        }
        let full = set.bytes();
        assert!(full >= 1000 * 10, "{full}");
        for n in (0..1000).step_by(2) {
            assert!(set.remove(format!("member-{n}").as_bytes()));
        }
        assert!(!set.remove(b"member-0"));
        assert_eq!(set.len(), 500);
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let (found, next) = set.scan(cursor, 10);
            seen.extend(found.into_iter().map(|m| m.into_owned()));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        seen.sort();
        let mut expected: Vec<Vec<u8>> = (1..1000)
            .step_by(2)
            .map(|n| format!("member-{n}").into_bytes())
            .collect();
        expected.sort();
        assert_eq!(seen, expected);
        for n in (1..1000).step_by(2) {
            set.remove(format!("member-{n}").as_bytes());
        }
        assert!(set.is_empty());
        assert_eq!(set.bytes(), 0);
    }
}
