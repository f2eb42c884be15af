//! One snapshot of every figure the server shows, as plain data: what `/v1/admin/stats`
//! serializes to JSON, what `/metrics` renders as Prometheus text, what the dashboard draws.
//!
//! `command::report` fills it from the counters, the store and the latency tables; this
//! module only holds and renders it. Never: read a counter or take a lock here.

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything, at one instant.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub version: &'static str,
    pub uptime_secs: u64,
    /// Unix milliseconds when the snapshot was taken.
    pub time_ms: u64,
    pub connections: Connections,
    pub memory: Memory,
    /// Hits and misses of every pool together.
    pub hits: u64,
    pub misses: u64,
    /// hits / (hits + misses); 0 before the first lookup.
    pub hit_ratio: f64,
    /// Items that left on their TTL.
    pub expired: u64,
    /// Items evicted, by reason (summed over pools).
    pub evictions: BTreeMap<&'static str, u64>,
    /// Worker counters by their memcached-style names (`cmd_get`, `bytes_read`, ...).
    pub counters: BTreeMap<&'static str, u64>,
    pub pools: Vec<PoolReport>,
    pub commands: Vec<CommandReport>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Connections {
    pub current: u64,
    pub total: u64,
    pub rejected: u64,
    pub max: u64,
}

/// Bytes, unless the name says otherwise.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Memory {
    pub limit: u64,
    /// Bytes of items (keys, values and headers) in the store.
    pub used: u64,
    pub items: u64,
    /// The hash index tables.
    pub index: u64,
    /// Typed values kept on the heap (hashes, lists, sets, sorted sets).
    pub heap: u64,
    /// Client buffers, all connections together.
    pub clients: u64,
    /// Resident set size of the process.
    pub rss: u64,
    /// rss / (used + index + heap + clients); 0 when nothing is used yet.
    pub fragmentation_ratio: f64,
    pub compressed_items: u64,
    pub compressed_saved: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PoolReport {
    pub name: String,
    pub items: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub hit_ratio: f64,
    /// Evictions by reason: `lru`, `lfu`, `ttl`.
    pub evictions: BTreeMap<&'static str, u64>,
    pub expired: u64,
    pub flushed: u64,
    /// Writes refused: value over the item size limit, or no memory.
    pub too_large: u64,
    pub out_of_memory: u64,
    /// Commands that named a key of the pool (the first key, for multi-key commands; not the
    /// binary protocol's), and their latency.
    pub calls: u64,
    pub total_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub buckets: Vec<(u64, u64)>,
}

/// One command on one protocol, all workers together.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CommandReport {
    pub proto: &'static str,
    pub name: &'static str,
    pub calls: u64,
    pub failed: u64,
    pub rejected: u64,
    pub total_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// (upper bound in ns, calls at most that long), ascending; see
    /// [`super::latency::bucket_bounds_ns`].
    pub buckets: Vec<(u64, u64)>,
}

/// `part / whole`, 0 for an empty whole.
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
