//! One cached item of the first store: key and value in a single allocation plus metadata.
//!
//! Invariant: `data[..key_len]` is the key and `data[key_len..]` the value; `cas` is unique
//! across the whole store and changes on every mutation of the item.

/// When an item stops being visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    /// Unix time in milliseconds; the item is gone once `now >= at`.
    AtMs(u64),
}

impl Expiry {
    pub(crate) fn as_ms(self) -> u64 {
        match self {
            Expiry::Never => 0,
            Expiry::AtMs(at) => at.max(1),
        }
    }

    pub(crate) fn from_ms(ms: u64) -> Self {
        if ms == 0 {
            Expiry::Never
        } else {
            Expiry::AtMs(ms)
        }
    }
}

/// Bookkeeping bytes charged per item against the memory limit on top of key and value:
/// the item struct, its slot and its index entry (what the allocator really spends).
pub const ITEM_OVERHEAD: usize = 96;

/// A typed value (RESP data types); strings live in the item's bytes instead.
pub enum Object {
    Hash(crate::store::hash::HashObject),
    ZSet(crate::store::zset::ZSet),
}

impl Object {
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Object::Hash(hash) => hash.bytes(),
            Object::ZSet(zset) => zset.bytes(),
        }
    }
}

pub(crate) struct Item {
    data: Box<[u8]>,
    /// Present for typed values; `None` means the item is a string (its value is in `data`).
    pub(crate) object: Option<Box<Object>>,
    /// Key length: memcached keys are at most 250 bytes, RESP keys up to the request limits.
    key_len: u32,
    pub(crate) flags: u32,
    pub(crate) cas: u64,
    /// 0 = never expires, else unix ms.
    pub(crate) expires_at_ms: u64,
    /// When the item was last written (unix ms); a delayed flush hides items written before it.
    pub(crate) stored_at_ms: u64,
    /// When the item was last read or written (unix ms).
    pub(crate) last_access_ms: u64,
    /// Read at least once since it was stored (meta `h`).
    pub(crate) fetched: bool,
    /// Marked stale by a meta invalidation (meta `X`).
    pub(crate) stale: bool,
    /// A recache/stale win token was already handed out (meta `Z`).
    pub(crate) win_token_sent: bool,
}

impl Item {
    pub(crate) fn new(
        key: &[u8],
        value_parts: &[&[u8]],
        flags: u32,
        expiry: Expiry,
        now_ms: u64,
    ) -> Item {
        let value_len: usize = value_parts.iter().map(|p| p.len()).sum();
        let mut data = Vec::with_capacity(key.len() + value_len);
        data.extend_from_slice(key);
        for part in value_parts {
            data.extend_from_slice(part);
        }
        Item {
            data: data.into_boxed_slice(),
            object: None,
            key_len: u32::try_from(key.len()).expect("keys are bounded by the request size limits"),
            flags,
            cas: 0,
            expires_at_ms: expiry.as_ms(),
            stored_at_ms: now_ms,
            last_access_ms: now_ms,
            fetched: false,
            stale: false,
            win_token_sent: false,
        }
    }

    /// The same value, flags, expiry and object under another key (RENAME).
    pub(crate) fn rekey(mut self, key: &[u8], now_ms: u64) -> Item {
        let mut moved = Item::new(key, &[self.value()], self.flags, self.expiry(), now_ms);
        moved.object = self.object.take();
        moved
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.data[..self.key_len as usize]
    }

    pub(crate) fn value(&self) -> &[u8] {
        &self.data[self.key_len as usize..]
    }

    /// Replaces the value, keeping key and metadata.
    pub(crate) fn set_value(&mut self, value_parts: &[&[u8]]) {
        let value_len: usize = value_parts.iter().map(|p| p.len()).sum();
        let mut data = Vec::with_capacity(self.key_len as usize + value_len);
        data.extend_from_slice(self.key());
        for part in value_parts {
            data.extend_from_slice(part);
        }
        self.data = data.into_boxed_slice();
    }

    /// Overwrites the value in place; `value.len()` must equal the current value's length.
    pub(crate) fn overwrite_value(&mut self, value: &[u8]) {
        let start = self.key_len as usize;
        self.data[start..].copy_from_slice(value);
    }

    /// Bytes charged against the memory limit.
    pub(crate) fn charge(&self) -> usize {
        self.data.len() + ITEM_OVERHEAD + self.object.as_ref().map_or(0, |o| o.bytes())
    }

    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms != 0 && self.expires_at_ms <= now_ms
    }

    pub(crate) fn expiry(&self) -> Expiry {
        Expiry::from_ms(self.expires_at_ms)
    }
}

/// What a reader sees of an item, only for the duration of the read closure.
pub struct ItemView<'a> {
    pub(crate) item: &'a Item,
    pub(crate) now_ms: u64,
    /// The item's `fetched` bit and last access before this read.
    pub(crate) fetched_before: bool,
    pub(crate) last_access_before_ms: u64,
    /// This read won the right to recache the item (meta `W`).
    pub(crate) won: bool,
    /// Someone else already holds the win token (meta `Z`).
    pub(crate) win_already_sent: bool,
}

impl<'a> ItemView<'a> {
    pub fn key(&self) -> &'a [u8] {
        self.item.key()
    }
    /// The string value (empty for a typed value: check [`object`](Self::object) first).
    pub fn value(&self) -> &'a [u8] {
        self.item.value()
    }
    /// The typed value, if this item is not a string.
    pub fn object(&self) -> Option<&'a Object> {
        self.item.object.as_deref()
    }
    pub fn flags(&self) -> u32 {
        self.item.flags
    }
    pub fn cas(&self) -> u64 {
        self.item.cas
    }
    /// Whole seconds until expiry (`None` = never expires), rounded as memcached does.
    pub fn ttl_secs(&self) -> Option<i64> {
        match self.item.expiry() {
            Expiry::Never => None,
            Expiry::AtMs(at) => Some((at.saturating_sub(self.now_ms) as i64 + 999) / 1000),
        }
    }
    pub fn expiry(&self) -> Expiry {
        self.item.expiry()
    }
    /// Seconds since the previous access.
    pub fn idle_secs(&self) -> u64 {
        self.now_ms.saturating_sub(self.last_access_before_ms) / 1000
    }
    pub fn fetched_before(&self) -> bool {
        self.fetched_before
    }
    pub fn is_stale(&self) -> bool {
        self.item.stale
    }
    pub fn won(&self) -> bool {
        self.won
    }
    pub fn win_already_sent(&self) -> bool {
        self.win_already_sent
    }
}
