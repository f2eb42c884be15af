//! A hash value: fields and values with optional per-field expiry (Redis 7.4 field TTLs).
//!
//! Small hashes keep their fields in a plain vector searched linearly (the compact encoding,
//! like Redis's listpack); past [`COMPACT_MAX_FIELDS`] an index is built (the hashtable
//! encoding). Either way fields live in slots whose position is stable while the field lives,
//! so a scan cursor (a slot position) returns every field present for the whole scan.
//! Invariant: `bytes` is the sum of the charges of the live fields; `len` counts them.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Fields up to which a hash stays compact by default (Redis `hash-max-listpack-entries` is
/// 128); the threshold in force is [`super::encoding::LIMITS`].
pub use super::encoding::DEFAULT_HASH_ENTRIES as COMPACT_MAX_FIELDS;
/// Bytes charged per field on top of field and value.
const FIELD_OVERHEAD: usize = 48;

pub struct Field {
    pub name: Box<[u8]>,
    pub value: Box<[u8]>,
    /// 0 = no expiry, else unix ms.
    pub expires_at_ms: u64,
}

impl Field {
    fn charge(&self) -> usize {
        self.name.len() + self.value.len() + FIELD_OVERHEAD
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms != 0 && self.expires_at_ms <= now_ms
    }
}

#[derive(Default)]
pub struct HashObject {
    slots: Vec<Option<Field>>,
    free: Vec<usize>,
    /// Present only in the hashtable encoding.
    index: Option<HashTable<usize>>,
    len: usize,
    bytes: usize,
    /// One hasher per object, so every lookup hashes a name the same way.
    hasher: crate::hashing::IndexHasher,
}

impl HashObject {
    pub fn new() -> HashObject {
        HashObject::default()
    }

    /// Live field count (expired fields not yet reclaimed included; see [`purge_expired`]).
    ///
    /// [`purge_expired`]: HashObject::purge_expired
    pub fn len(&self) -> usize {
        self.len
    }

    /// A copy with the same fields, values and field expiries.
    pub fn duplicate(&self) -> HashObject {
        let mut copy = HashObject::new();
        for field in self.iter() {
            copy.set(&field.name, &field.value, false);
            if field.expires_at_ms != 0 {
                copy.set_field_expiry(&field.name, field.expires_at_ms);
            }
        }
        copy
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes charged against the memory limit.
    pub fn bytes(&self) -> usize {
        self.bytes + self.slots.capacity() * std::mem::size_of::<Option<Field>>()
    }

    /// `"listpack"` or `"hashtable"`, as OBJECT ENCODING reports it.
    pub fn encoding(&self) -> &'static str {
        if self.index.is_some() {
            "hashtable"
        } else {
            "listpack"
        }
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        match &self.index {
            Some(index) => index
                .find(self.hasher.hash_one(name), |&pos| {
                    self.slots[pos].as_ref().is_some_and(|f| &*f.name == name)
                })
                .copied(),
            None => self
                .slots
                .iter()
                .position(|slot| slot.as_ref().is_some_and(|f| &*f.name == name)),
        }
    }

    pub fn get(&self, name: &[u8]) -> Option<&Field> {
        self.position(name).and_then(|pos| self.slots[pos].as_ref())
    }

    /// Sets a field's value; keeps its expiry when `keep_ttl`, else clears it.
    /// Returns true if the field is new.
    pub fn set(&mut self, name: &[u8], value: &[u8], keep_ttl: bool) -> bool {
        if let Some(pos) = self.position(name) {
            let field = self.slots[pos]
                .as_mut()
                .expect("position points at a live field");
            self.bytes -= field.charge();
            field.value = value.into();
            if !keep_ttl {
                field.expires_at_ms = 0;
            }
            self.bytes += field.charge();
            if self.index.is_none() && value.len() > super::encoding::LIMITS.hash_value() {
                self.build_index();
            }
            return false;
        }
        let field = Field {
            name: name.into(),
            value: value.into(),
            expires_at_ms: 0,
        };
        self.bytes += field.charge();
        self.len += 1;
        let pos = match self.free.pop() {
            Some(pos) => {
                self.slots[pos] = Some(field);
                pos
            }
            None => {
                self.slots.push(Some(field));
                self.slots.len() - 1
            }
        };
        if let Some(index) = &mut self.index {
            let slots = &self.slots;
            let hasher = &self.hasher;
            index.insert_unique(hasher.hash_one(name), pos, |&p| {
                hasher.hash_one(&slots[p].as_ref().expect("indexed slot is live").name)
            });
        } else {
            let limits = &super::encoding::LIMITS;
            let long = |bytes: &[u8]| bytes.len() > limits.hash_value();
            if self.len > limits.hash_entries() || long(name) || long(value) {
                self.build_index();
            }
        }
        true
    }

    fn build_index(&mut self) {
        let mut index = HashTable::with_capacity(self.len);
        let slots = &self.slots;
        let hasher = &self.hasher;
        for (pos, slot) in slots.iter().enumerate() {
            if let Some(field) = slot {
                index.insert_unique(hasher.hash_one(&field.name), pos, |&p| {
                    hasher.hash_one(&slots[p].as_ref().expect("indexed slot is live").name)
                });
            }
        }
        self.index = Some(index);
    }

    /// Removes a field; true if it existed.
    pub fn remove(&mut self, name: &[u8]) -> bool {
        let Some(pos) = self.position(name) else {
            return false;
        };
        self.remove_at(pos);
        true
    }

    fn remove_at(&mut self, pos: usize) {
        let field = self.slots[pos].take().expect("remove_at a live field");
        if let Some(index) = &mut self.index {
            if let Ok(entry) = index.find_entry(self.hasher.hash_one(&field.name), |&p| p == pos) {
                entry.remove();
            }
        }
        self.bytes -= field.charge();
        self.len -= 1;
        self.free.push(pos);
    }

    /// Sets or clears (0) a field's expiry; false if the field does not exist.
    pub fn set_field_expiry(&mut self, name: &[u8], expires_at_ms: u64) -> bool {
        match self.position(name) {
            Some(pos) => {
                self.slots[pos].as_mut().expect("live").expires_at_ms = expires_at_ms;
                true
            }
            None => false,
        }
    }

    /// Drops fields whose expiry has passed; returns how many.
    pub fn purge_expired(&mut self, now_ms: u64) -> usize {
        let dead: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.as_ref().is_some_and(|f| f.is_expired(now_ms)))
            .map(|(pos, _)| pos)
            .collect();
        for &pos in &dead {
            self.remove_at(pos);
        }
        dead.len()
    }

    /// Live fields in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Field> {
        self.slots.iter().flatten()
    }

    /// Fields from slot `cursor` on, at most `count` of them (at least one slot visited);
    /// returns them and the next cursor (0 when done).
    pub fn scan(&self, cursor: usize, count: usize) -> (Vec<&Field>, usize) {
        let mut found = Vec::new();
        let mut pos = cursor;
        while pos < self.slots.len() && found.len() < count.max(1) {
            if let Some(field) = &self.slots[pos] {
                found.push(field);
            }
            pos += 1;
        }
        let next = if pos >= self.slots.len() { 0 } else { pos };
        (found, next)
    }

    /// The field in the `n`th live position (for random picks), `n < len`.
    pub fn nth(&self, n: usize) -> Option<&Field> {
        self.iter().nth(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_compact_to_indexed_and_keeps_fields() {
        let mut hash = HashObject::new();
        for i in 0..100 {
            assert!(hash.set(format!("f{i}").as_bytes(), b"v", false));
        }
        assert_eq!(hash.encoding(), "hashtable");
        assert!(!hash.set(b"f7", b"new", false));
        assert_eq!(&*hash.get(b"f7").unwrap().value, b"new");
        assert!(hash.remove(b"f7"));
        assert!(hash.get(b"f7").is_none());
        assert_eq!(hash.len(), 99);
        for i in 0..100 {
            hash.remove(format!("f{i}").as_bytes());
        }
        assert!(hash.is_empty());
        assert_eq!(hash.bytes, 0);
    }

    #[test]
    fn scan_returns_every_field_present_throughout() {
        let mut hash = HashObject::new();
        for i in 0..50 {
            hash.set(format!("f{i}").as_bytes(), b"v", false);
        }
        let mut seen = crate::hashing::HashSet::default();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let (fields, next) = hash.scan(cursor, 7);
            seen.extend(fields.iter().map(|f| f.name.to_vec()));
            // Churn other fields during the scan.
            hash.set(format!("new{round}").as_bytes(), b"x", false);
            hash.remove(format!("new{round}").as_bytes());
            round += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..50 {
            assert!(seen.contains(format!("f{i}").as_bytes()));
        }
    }

    #[test]
    fn field_expiry_is_purged() {
        let mut hash = HashObject::new();
        hash.set(b"a", b"1", false);
        hash.set(b"b", b"2", false);
        assert!(hash.set_field_expiry(b"a", 100));
        assert!(!hash.set_field_expiry(b"zz", 100));
        assert_eq!(hash.purge_expired(99), 0);
        assert_eq!(hash.purge_expired(100), 1);
        assert_eq!(hash.len(), 1);
    }
}
