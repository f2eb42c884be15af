//! Fills a [`Report`] from the live server: worker counters summed, connection gauges, the
//! store's figures and pools, the latency tables merged. `/metrics`, `/v1/admin/stats` and the
//! dashboard all read this one snapshot, so they agree with each other and with `stats`.
//!
//! Never: hold a store lock across the whole build (each source is read on its own).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::metrics::latency::{bucket_bounds_ns, WorkerLatency};
use crate::metrics::report::{ratio, CommandReport, Connections, Memory, PoolReport, Report};
use crate::metrics::WorkerStats;
use crate::shared::Shared;

/// Everything, now.
pub fn build(shared: &Shared, now_ms: u64) -> Report {
    let workers = WorkerStats::sum(shared.worker_stats.iter());
    let store = shared.store.stats();
    let pool_latency = WorkerLatency::merged_pools(shared.latency.iter());
    let pools: Vec<PoolReport> = shared
        .store
        .pool_stats()
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p, pool_latency.get(i).cloned().unwrap_or_default()))
        .map(|(p, t)| PoolReport {
            calls: t.calls,
            total_us: t.total_ns as f64 / 1000.0,
            p50_us: t.quantile_us(0.5),
            p99_us: t.quantile_us(0.99),
            p999_us: t.quantile_us(0.999),
            buckets: bucket_bounds_ns()
                .map(|bound| (bound, t.count_at_most(bound)))
                .collect(),
            hit_ratio: ratio(p.hits, p.hits + p.misses),
            evictions: [
                ("lru", p.evicted_lru),
                ("lfu", p.evicted_lfu),
                ("ttl", p.evicted_ttl),
            ]
            .into_iter()
            .collect(),
            name: p.name,
            items: p.items,
            bytes: p.bytes,
            hits: p.hits,
            misses: p.misses,
            expired: p.expired,
            flushed: p.flushed,
            too_large: p.too_large,
            out_of_memory: p.out_of_memory,
        })
        .collect();
    let hits: u64 = pools.iter().map(|p| p.hits).sum();
    let expired: u64 = pools.iter().map(|p| p.expired).sum();
    let misses: u64 = pools.iter().map(|p| p.misses).sum();
    let mut evictions: BTreeMap<&'static str, u64> = BTreeMap::new();
    for pool in &pools {
        for (reason, n) in &pool.evictions {
            *evictions.entry(reason).or_default() += n;
        }
    }
    let rss = crate::sys::rss_bytes();
    let clients = shared.clients.buffer_bytes();
    let accounted = store.bytes + store.index_bytes + store.heap_bytes + clients;
    let commands = WorkerLatency::merged(shared.latency.iter())
        .into_iter()
        .map(|((proto, name), t)| CommandReport {
            proto: proto.name(),
            name,
            calls: t.calls,
            failed: t.failed,
            rejected: t.rejected,
            total_us: t.total_ns as f64 / 1000.0,
            p50_us: t.quantile_us(0.5),
            p99_us: t.quantile_us(0.99),
            p999_us: t.quantile_us(0.999),
            buckets: bucket_bounds_ns()
                .map(|bound| (bound, t.count_at_most(bound)))
                .collect(),
        })
        .collect();
    Report {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: shared.started.elapsed().as_secs(),
        time_ms: now_ms,
        connections: Connections {
            current: shared.connections.curr_connections.load(Ordering::Relaxed),
            total: shared.connections.total_connections.load(Ordering::Relaxed),
            rejected: shared
                .connections
                .rejected_connections
                .load(Ordering::Relaxed),
            max: shared.config.server.max_connections as u64,
        },
        memory: Memory {
            limit: shared.store.memory_limit() as u64,
            used: store.bytes,
            items: store.curr_items,
            index: store.index_bytes,
            heap: store.heap_bytes,
            clients,
            rss,
            fragmentation_ratio: ratio(rss, accounted),
            compressed_items: store.compressed_items,
            compressed_saved: store.compressed_saved_bytes,
        },
        hits,
        misses,
        hit_ratio: ratio(hits, hits + misses),
        expired,
        evictions,
        counters: workers.pairs().into_iter().collect(),
        pools,
        commands,
    }
}
