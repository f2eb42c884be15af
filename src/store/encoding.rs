//! The encoding thresholds the typed values consult as they grow: Redis's
//! `hash-max-listpack-entries|value`, `zset-max-listpack-entries|value`,
//! `set-max-intset-entries` and `list-max-listpack-size` (each also under its older
//! `*-ziplist-*` name), changed live by CONFIG SET. A value converts to its large encoding when
//! an insert passes them, and never back, as in Redis.
//!
//! Process-wide, like Redis's `server.*` fields: a process holds one store, and the values
//! read them on every insert without a store at hand. Holds numbers only: it never converts
//! anything itself.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// The thresholds; see the module documentation.
pub struct EncodingLimits {
    hash_entries: AtomicUsize,
    hash_value: AtomicUsize,
    zset_entries: AtomicUsize,
    zset_value: AtomicUsize,
    set_intset_entries: AtomicUsize,
    /// Redis's list-max-listpack-size: elements per node when positive, else -1..-5 for
    /// 4, 8, 16, 32 or 64 KiB nodes.
    list_size: AtomicI64,
}

/// Default `hash-max-listpack-entries` (Redis's is 128).
pub const DEFAULT_HASH_ENTRIES: usize = 32;
/// Default `zset-max-listpack-entries`, as Redis's.
pub const DEFAULT_ZSET_ENTRIES: usize = 128;
/// Default `zset-max-listpack-value`, as Redis's.
pub const DEFAULT_ZSET_VALUE: usize = 64;
/// Default `set-max-intset-entries`, as Redis's.
pub const DEFAULT_SET_INTSET_ENTRIES: usize = 512;

/// The thresholds in force.
pub static LIMITS: EncodingLimits = EncodingLimits {
    hash_entries: AtomicUsize::new(DEFAULT_HASH_ENTRIES),
    hash_value: AtomicUsize::new(64),
    zset_entries: AtomicUsize::new(DEFAULT_ZSET_ENTRIES),
    zset_value: AtomicUsize::new(DEFAULT_ZSET_VALUE),
    set_intset_entries: AtomicUsize::new(DEFAULT_SET_INTSET_ENTRIES),
    list_size: AtomicI64::new(-2),
};

/// One threshold, by its Redis name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    HashEntries,
    HashValue,
    ZSetEntries,
    ZSetValue,
    SetIntsetEntries,
    ListSize,
}

impl Limit {
    /// Every threshold with its name and its older alias.
    pub const ALL: [(Limit, &'static str, &'static str); 6] = [
        (
            Limit::HashEntries,
            "hash-max-listpack-entries",
            "hash-max-ziplist-entries",
        ),
        (
            Limit::HashValue,
            "hash-max-listpack-value",
            "hash-max-ziplist-value",
        ),
        (
            Limit::ZSetEntries,
            "zset-max-listpack-entries",
            "zset-max-ziplist-entries",
        ),
        (
            Limit::ZSetValue,
            "zset-max-listpack-value",
            "zset-max-ziplist-value",
        ),
        (
            Limit::SetIntsetEntries,
            "set-max-intset-entries",
            "set-max-intset-entries",
        ),
        (
            Limit::ListSize,
            "list-max-listpack-size",
            "list-max-ziplist-size",
        ),
    ];

    /// The threshold a name or alias stands for.
    pub fn named(name: &[u8]) -> Option<(Limit, &'static str)> {
        Limit::ALL.iter().find_map(|(limit, canonical, alias)| {
            (name.eq_ignore_ascii_case(canonical.as_bytes())
                || name.eq_ignore_ascii_case(alias.as_bytes()))
            .then_some((*limit, *canonical))
        })
    }

    /// The range CONFIG SET accepts (Redis 7.0's `config.c`).
    pub fn range(self) -> (i64, i64) {
        match self {
            Limit::ListSize => (i64::from(i32::MIN), i64::from(i32::MAX)),
            _ => (0, i64::MAX),
        }
    }
}

impl EncodingLimits {
    fn slot(&self, limit: Limit) -> Option<&AtomicUsize> {
        match limit {
            Limit::HashEntries => Some(&self.hash_entries),
            Limit::HashValue => Some(&self.hash_value),
            Limit::ZSetEntries => Some(&self.zset_entries),
            Limit::ZSetValue => Some(&self.zset_value),
            Limit::SetIntsetEntries => Some(&self.set_intset_entries),
            Limit::ListSize => None,
        }
    }

    pub fn get(&self, limit: Limit) -> i64 {
        match self.slot(limit) {
            Some(slot) => slot.load(Ordering::Relaxed).min(i64::MAX as usize) as i64,
            None => self.list_size.load(Ordering::Relaxed),
        }
    }

    /// Sets a threshold (the caller checked [`Limit::range`]).
    pub fn set(&self, limit: Limit, value: i64) {
        match self.slot(limit) {
            Some(slot) => slot.store(value.max(0) as usize, Ordering::Relaxed),
            None => self.list_size.store(value, Ordering::Relaxed),
        }
    }

    pub fn hash_entries(&self) -> usize {
        self.hash_entries.load(Ordering::Relaxed)
    }

    pub fn hash_value(&self) -> usize {
        self.hash_value.load(Ordering::Relaxed)
    }

    pub fn zset_entries(&self) -> usize {
        self.zset_entries.load(Ordering::Relaxed)
    }

    pub fn zset_value(&self) -> usize {
        self.zset_value.load(Ordering::Relaxed)
    }

    pub fn set_intset_entries(&self) -> usize {
        self.set_intset_entries.load(Ordering::Relaxed)
    }

    /// Whether a list node of `bytes` bytes holding `count` elements may take one more
    /// element of `more` bytes (Redis's `quicklistNodeAllowInsert`: a size class in bytes, or
    /// an element count).
    pub fn list_node_takes(&self, bytes: usize, count: usize, more: usize) -> bool {
        match self.list_size.load(Ordering::Relaxed) {
            n if n > 0 => count < n as usize,
            n => bytes + more <= list_node_bytes(n),
        }
    }

    /// Whether a list node of `bytes` bytes holding `count` elements is over the limit.
    pub fn list_node_over(&self, bytes: usize, count: usize) -> bool {
        match self.list_size.load(Ordering::Relaxed) {
            n if n > 0 => count > n as usize,
            n => bytes > list_node_bytes(n),
        }
    }
}

/// The node size a negative list-max-listpack-size names (-1 = 4 KiB ... -5 = 64 KiB; past
/// -5 Redis uses 64 KiB too).
fn list_node_bytes(size: i64) -> usize {
    match size {
        -1 => 4096,
        -2 => 8192,
        -3 => 16384,
        -4 => 32768,
        _ => 65536,
    }
}
