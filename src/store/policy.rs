//! The eviction policy ([`EvictionPolicy`], Redis's `maxmemory-policy`) and the access
//! counter it reads: a recency mark under the LRU policies, Redis's logarithmic frequency
//! counter under the LFU ones.
//!
//! Decides nothing about segments: the reclaimer (`reclaim.rs`) asks the policy which items
//! may go and which stay.

use super::*;

/// What happens when a write would pass the memory limit (Redis's `maxmemory-policy`;
/// memcached's `-M` is `NoEviction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    /// Evict the least recently used keys, whatever they are.
    AllKeysLru,
    /// Evict the least frequently used keys, whatever they are.
    AllKeysLfu,
    /// Evict the least recently used keys among those with an expiry.
    VolatileLru,
    /// Evict the least frequently used keys among those with an expiry.
    VolatileLfu,
    /// Evict the keys closest to their expiry.
    VolatileTtl,
    /// Evict nothing: the write fails with OutOfMemory.
    NoEviction,
}

pub(super) const POLICIES: [EvictionPolicy; 6] = [
    EvictionPolicy::AllKeysLru,
    EvictionPolicy::AllKeysLfu,
    EvictionPolicy::VolatileLru,
    EvictionPolicy::VolatileLfu,
    EvictionPolicy::VolatileTtl,
    EvictionPolicy::NoEviction,
];

impl EvictionPolicy {
    /// The Redis name.
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::AllKeysLfu => "allkeys-lfu",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
            EvictionPolicy::NoEviction => "noeviction",
        }
    }

    pub fn from_name(name: &str) -> Option<EvictionPolicy> {
        let name = name.to_ascii_lowercase();
        POLICIES.into_iter().find(|policy| policy.name() == name)
    }

    /// Only keys with an expiry may be evicted.
    pub(super) fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru | EvictionPolicy::VolatileLfu | EvictionPolicy::VolatileTtl
        )
    }

    /// Whether accesses feed the LFU counter (else the counter is a recency mark).
    pub(super) fn counts_frequency(self) -> bool {
        matches!(
            self,
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu
        )
    }
}

/// Redis's logarithmic counter increment: the higher the counter, the less likely a hit
/// raises it (`lfu-log-factor` 10). `noise` is a uniform random number.
pub(super) fn lfu_increment(counter: u8, noise: u64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = counter.saturating_sub(COUNTER_INIT) as u64;
    let r = (noise >> 11) as f64 / (1u64 << 53) as f64;
    if r < 1.0 / (base as f64 * 10.0 + 1.0) {
        counter + 1
    } else {
        counter
    }
}
