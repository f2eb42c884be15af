//! Pools: named key prefixes whose items are counted apart (`[[pool]]` in the config).
//!
//! A key belongs to the pool with the longest matching prefix, or to `default` (pool 0).
//! Counters live in each shard (updated under its lock) and are summed for stats.
//!
//! Invariant: pool 0 is always `default`; pool numbers never change while the store lives.

/// One configured pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub name: String,
    pub prefix: Vec<u8>,
}

/// The pools of a store, longest prefix first.
pub(crate) struct Pools {
    names: Vec<String>,
    /// (prefix, pool number), longest prefix first.
    prefixes: Vec<(Vec<u8>, usize)>,
}

impl Pools {
    pub fn new(configs: &[PoolConfig]) -> Pools {
        let mut names = vec!["default".to_string()];
        let mut prefixes = Vec::new();
        for config in configs {
            names.push(config.name.clone());
            prefixes.push((config.prefix.clone(), names.len() - 1));
        }
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Pools { names, prefixes }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn name(&self, pool: usize) -> &str {
        &self.names[pool]
    }

    pub fn pool_of(&self, key: &[u8]) -> usize {
        self.prefixes
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix))
            .map_or(0, |&(_, pool)| pool)
    }
}

/// Why items left a pool, or why a write to it was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolEvent {
    EvictedLru,
    EvictedLfu,
    EvictedTtl,
    Expired,
    Flushed,
    TooLarge,
    OutOfMemory,
}

/// Counters of one pool (in one shard, or summed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub name: String,
    pub items: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub evicted_lru: u64,
    pub evicted_lfu: u64,
    pub evicted_ttl: u64,
    pub expired: u64,
    pub flushed: u64,
    pub too_large: u64,
    pub out_of_memory: u64,
}

impl PoolStats {
    pub(crate) fn count(&mut self, event: PoolEvent) {
        match event {
            PoolEvent::EvictedLru => self.evicted_lru += 1,
            PoolEvent::EvictedLfu => self.evicted_lfu += 1,
            PoolEvent::EvictedTtl => self.evicted_ttl += 1,
            PoolEvent::Expired => self.expired += 1,
            PoolEvent::Flushed => self.flushed += 1,
            PoolEvent::TooLarge => self.too_large += 1,
            PoolEvent::OutOfMemory => self.out_of_memory += 1,
        }
    }

    pub(crate) fn add(&mut self, other: &PoolStats) {
        self.items += other.items;
        self.bytes += other.bytes;
        self.hits += other.hits;
        self.misses += other.misses;
        self.evicted_lru += other.evicted_lru;
        self.evicted_lfu += other.evicted_lfu;
        self.evicted_ttl += other.evicted_ttl;
        self.expired += other.expired;
        self.flushed += other.flushed;
        self.too_large += other.too_large;
        self.out_of_memory += other.out_of_memory;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_the_rest_is_default() {
        let pools = Pools::new(&[
            PoolConfig {
                name: "sessions".into(),
                prefix: b"sess:".to_vec(),
            },
            PoolConfig {
                name: "admin-sessions".into(),
                prefix: b"sess:admin:".to_vec(),
            },
        ]);
        assert_eq!(pools.name(pools.pool_of(b"sess:42")), "sessions");
        assert_eq!(pools.name(pools.pool_of(b"sess:admin:1")), "admin-sessions");
        assert_eq!(pools.name(pools.pool_of(b"user:1")), "default");
        assert_eq!(pools.len(), 3);
    }
}
