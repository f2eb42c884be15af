//! `stats` and its groups, with memcached's names (`doc/protocol.txt` §Statistics).
//!
//! Figures come from the worker counters (summed), the connection gauges and the store. This
//! store has no slab classes, so `stats items` and `stats slabs` describe the whole store as
//! one class, numbered 1, with memcached's field names. `stats` adds the segment engine's own
//! figures after memcached's; `stats pools` (ferrocache's) gives the counters of each pool.

use ferrocache_protocol::memcache::{reply, write_stat, StatsGroup};

use super::compat::MEMCACHED_VERSION;
use super::Context;
use crate::metrics::WorkerStats;
use std::sync::atomic::Ordering;

/// Where statistics go: each dialect encodes a (name, value) pair its own way (text
/// `STAT name value` lines, binary Stat packets).
pub trait StatSink {
    fn stat(&mut self, name: &str, value: &[u8]);
}

/// Text lines `STAT <name> <value>\r\n` appended to the output.
struct TextLines<'o>(&'o mut Vec<u8>);

impl StatSink for TextLines<'_> {
    fn stat(&mut self, name: &str, value: &[u8]) {
        write_stat(self.0, name, value);
    }
}

/// A statistics group both dialects can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    General,
    Settings,
    Items,
    Slabs,
    Sizes,
    Conns,
    /// ferrocache's own: counters per pool (`[[pool]]`).
    Pools,
    /// ferrocache's own: calls, errors and latency percentiles per command and protocol.
    Latency,
}

/// Text `stats [group]`.
pub fn render(group: StatsGroup<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) {
    let group = match group {
        StatsGroup::General => Group::General,
        StatsGroup::Settings => Group::Settings,
        StatsGroup::Items => Group::Items,
        StatsGroup::Slabs => Group::Slabs,
        StatsGroup::Conns => Group::Conns,
        StatsGroup::Sizes => Group::Sizes,
        StatsGroup::Reset => {
            reset(ctx);
            out.extend_from_slice(reply::RESET);
            return;
        }
        StatsGroup::Other(b"pools") => Group::Pools,
        StatsGroup::Other(b"latency") => Group::Latency,
        StatsGroup::Other(_) => {
            out.extend_from_slice(reply::ERROR);
            return;
        }
    };
    emit(group, ctx, &mut TextLines(out));
    out.extend_from_slice(reply::END);
}

/// Writes every statistic of `group` into `sink`.
pub fn emit(group: Group, ctx: &Context<'_>, sink: &mut dyn StatSink) {
    match group {
        Group::General => general(ctx, sink),
        Group::Settings => settings(ctx, sink),
        Group::Items => items(ctx, sink),
        Group::Slabs => slabs(ctx, sink),
        Group::Conns => conns(ctx, sink),
        Group::Sizes => sink.stat("sizes_status", b"disabled"),
        Group::Pools => pools(ctx, sink),
        Group::Latency => latency(ctx, sink),
    }
}

/// `stats reset`: zeroes the counters memcached resets.
pub fn reset(ctx: &Context<'_>) {
    for worker in ctx.shared.worker_stats.iter() {
        worker.reset();
    }
    for table in ctx.shared.latency.iter() {
        table.reset();
    }
    ctx.shared
        .connections
        .total_connections
        .store(0, Ordering::Relaxed);
    ctx.shared
        .connections
        .rejected_connections
        .store(0, Ordering::Relaxed);
}

fn num(out: &mut dyn StatSink, name: &str, value: u64) {
    let mut digits = Vec::with_capacity(20);
    ferrocache_protocol::memcache::write_u64(&mut digits, value);
    out.stat(name, &digits);
}

fn text(out: &mut dyn StatSink, name: &str, value: &str) {
    out.stat(name, value.as_bytes());
}

/// CPU time of the process: (user, system) as `seconds.micros`, as memcached prints it.
fn rusage() -> (String, String) {
    let times = crate::sys::cpu_times();
    let fmt = |d: std::time::Duration| format!("{}.{:06}", d.as_secs(), d.subsec_micros());
    (fmt(times.user), fmt(times.system))
}

fn general(ctx: &Context<'_>, out: &mut dyn StatSink) {
    let shared = ctx.shared;
    let workers = WorkerStats::sum(shared.worker_stats.iter());
    let store = shared.store.stats();
    let conns = &shared.connections;
    let (user, system) = rusage();
    num(out, "pid", u64::from(std::process::id()));
    num(out, "uptime", shared.started.elapsed().as_secs());
    num(out, "time", ctx.now_ms / 1000);
    text(out, "version", MEMCACHED_VERSION);
    text(out, "ferrocache_version", env!("CARGO_PKG_VERSION"));
    num(out, "pointer_size", usize::BITS.into());
    text(out, "rusage_user", &user);
    text(out, "rusage_system", &system);
    num(
        out,
        "max_connections",
        shared.config.server.max_connections as u64,
    );
    num(
        out,
        "curr_connections",
        conns.curr_connections.load(Ordering::Relaxed),
    );
    num(
        out,
        "total_connections",
        conns.total_connections.load(Ordering::Relaxed),
    );
    num(
        out,
        "rejected_connections",
        conns.rejected_connections.load(Ordering::Relaxed),
    );
    num(out, "idle_kicks", shared.clients.idle_kicks());
    for (name, value) in workers.pairs() {
        if name != "bytes_read" && name != "bytes_written" && name != "conn_yields" {
            num(out, name, value);
        }
    }
    num(out, "bytes_read", workers.bytes_read);
    num(out, "bytes_written", workers.bytes_written);
    num(out, "limit_maxbytes", store.limit_maxbytes);
    num(out, "accepting_conns", 1);
    num(out, "threads", shared.worker_count() as u64);
    num(out, "conn_yields", workers.conn_yields);
    num(out, "curr_items", store.curr_items);
    num(out, "total_items", store.total_items);
    num(out, "expired_unfetched", store.expired_unfetched);
    num(out, "evicted_unfetched", store.evicted_unfetched);
    num(out, "evictions", store.evictions);
    num(out, "reclaimed", store.reclaimed);
    num(out, "bytes", store.bytes);
    // The engine's own figures (not in memcached).
    num(out, "segment_size", store.segment_size);
    num(out, "segments_in_use", store.segments_in_use);
    num(out, "segments_allocated", store.segments_allocated);
    num(out, "segments_retired", store.segments_retired);
    num(out, "segments_retired_total", store.segments_retired_total);
    num(out, "heap_bytes", store.heap_bytes);
    num(out, "index_bytes", store.index_bytes);
    num(out, "moved_items", store.moved_items);
    num(out, "compressed_items", store.compressed_items);
    num(out, "compressed_saved_bytes", store.compressed_saved_bytes);
    num(out, "compress_packed", store.compress_packed);
    num(
        out,
        "compress_incompressible",
        store.compress_incompressible,
    );
    num(out, "compress_time_us", store.compress_time_us);
    num(out, "compress_promoted", store.compress_promoted);
    num(out, "compress_cold_segments", store.compress_cold_segments);
    num(out, "decompressions", store.decompressions);
    num(out, "decompress_time_us", store.decompress_time_us);
    // Snapshots (`save`/`bgsave`; Redis's INFO persistence figures).
    let snapshot = shared.persistence.figures(&shared.store, ctx.now_ms);
    num(out, "snapshot_loading", u64::from(snapshot.loading));
    num(out, "snapshot_in_progress", u64::from(snapshot.in_progress));
    num(out, "snapshot_saves", snapshot.saves);
    num(out, "snapshot_last_save_time", snapshot.last_save_s);
    let status = if snapshot.last_ok { "ok" } else { "failed" };
    text(out, "snapshot_last_status", status);
    num(
        out,
        "snapshot_changes_since_save",
        snapshot.changes_since_last_save,
    );
    num(out, "snapshot_last_load_items", snapshot.last_load_loaded);
}

/// `stats pools`: per pool, `pool:<name>:<counter>`, the hit ratio, and the calls and
/// latency percentiles of the commands that named a key of the pool.
fn pools(ctx: &Context<'_>, out: &mut dyn StatSink) {
    let latency = crate::metrics::latency::WorkerLatency::merged_pools(ctx.shared.latency.iter());
    for (i, pool) in ctx.shared.store.pool_stats().into_iter().enumerate() {
        let name = &pool.name;
        for (counter, value) in [
            ("items", pool.items),
            ("bytes", pool.bytes),
            ("hits", pool.hits),
            ("misses", pool.misses),
            ("evicted_lru", pool.evicted_lru),
            ("evicted_lfu", pool.evicted_lfu),
            ("evicted_ttl", pool.evicted_ttl),
            ("expired", pool.expired),
            ("flushed", pool.flushed),
            ("too_large", pool.too_large),
            ("out_of_memory", pool.out_of_memory),
        ] {
            num(out, &format!("pool:{name}:{counter}"), value);
        }
        let ratio = crate::metrics::report::ratio(pool.hits, pool.hits + pool.misses);
        text(
            out,
            &format!("pool:{name}:hit_ratio"),
            &format!("{ratio:.4}"),
        );
        // Latency of the commands that named a key of the pool (as `stats latency`).
        let timing = latency.get(i).cloned().unwrap_or_default();
        num(out, &format!("pool:{name}:calls"), timing.calls);
        for (field, quantile) in [("p50_us", 0.5), ("p99_us", 0.99), ("p999_us", 0.999)] {
            let value = format!("{:.3}", timing.quantile_us(quantile));
            text(out, &format!("pool:{name}:{field}"), &value);
        }
    }
}

/// `stats latency`: per protocol and command, `<proto>:<cmd>:<field>` with the calls, the
/// failed ones, the total time in microseconds and the 50th, 99th and 99.9th percentile
/// latencies in microseconds (from the request parsed to the reply queued).
fn latency(ctx: &Context<'_>, out: &mut dyn StatSink) {
    let all = crate::metrics::latency::WorkerLatency::merged(ctx.shared.latency.iter());
    for ((proto, name), timing) in &all {
        let prefix = format!("{}:{name}", proto.name());
        num(out, &format!("{prefix}:calls"), timing.calls);
        num(out, &format!("{prefix}:failed"), timing.failed);
        num(out, &format!("{prefix}:rejected"), timing.rejected);
        num(out, &format!("{prefix}:usec"), timing.total_ns / 1000);
        for (field, quantile) in [("p50_us", 0.5), ("p99_us", 0.99), ("p999_us", 0.999)] {
            let value = format!("{:.3}", timing.quantile_us(quantile));
            text(out, &format!("{prefix}:{field}"), &value);
        }
    }
}

fn settings(ctx: &Context<'_>, out: &mut dyn StatSink) {
    let config = &ctx.shared.config;
    num(out, "maxbytes", ctx.shared.store.memory_limit() as u64);
    num(out, "maxconns", config.server.max_connections as u64);
    num(out, "tcpport", u64::from(config.server.port));
    num(out, "udpport", 0);
    let listen: Vec<String> = config
        .server
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    text(out, "inter", &listen.join(","));
    num(
        out,
        "verbosity",
        ctx.shared.verbosity.load(Ordering::Relaxed) as u64,
    );
    let evictions = ctx.shared.store.eviction_policy() != crate::store::EvictionPolicy::NoEviction;
    text(out, "evictions", if evictions { "on" } else { "off" });
    let socket = config.server.unix_socket.display().to_string();
    text(
        out,
        "domain_socket",
        if socket.is_empty() { "NULL" } else { &socket },
    );
    text(
        out,
        "umask",
        &format!("{:o}", config.server.unix_socket_mode),
    );
    text(
        out,
        "shutdown_command",
        if config.server.enable_shutdown {
            "yes"
        } else {
            "no"
        },
    );
    num(out, "num_threads", ctx.shared.worker_count() as u64);
    num(out, "idle_timeout", ctx.shared.clients.idle_timeout_s());
    text(out, "cas_enabled", "yes");
    // memcached: auto-negotiate by default; binary only once SASL is on; ascii only with
    // text-protocol authentication.
    let sasl = config.sasl.enabled;
    let auth_file = &config.sasl.auth_file;
    let ascii_auth = !auth_file.as_os_str().is_empty();
    let protocol = match (sasl, ascii_auth) {
        (true, _) => "binary",
        (false, true) => "ascii",
        (false, false) => "auto-negotiate",
    };
    text(out, "binding_protocol", protocol);
    text(out, "auth_enabled_sasl", if sasl { "yes" } else { "no" });
    let ascii_file = auth_file.display().to_string();
    text(
        out,
        "auth_enabled_ascii",
        if ascii_auth { &ascii_file } else { "no" },
    );
    num(
        out,
        "item_size_max",
        ctx.shared.store.item_size_max() as u64,
    );
    text(
        out,
        "flush_enabled",
        if config.server.enable_flush {
            "yes"
        } else {
            "no"
        },
    );
    num(out, "resp_port", u64::from(config.server.resp_port));
    text(
        out,
        "eviction_policy",
        ctx.shared.store.eviction_policy().name(),
    );
    num(out, "segment_size", ctx.shared.store.segment_size() as u64);
    let compression = ctx.shared.store.compression();
    num(out, "compression_threshold", compression.threshold as u64);
    text(out, "compression_level", &compression.level.to_string());
    num(
        out,
        "compression_cold_secs",
        compression.cold_after_secs as u64,
    );
    num(
        out,
        "compression_segments_per_tick",
        compression.segments_per_tick as u64,
    );
}

fn items(ctx: &Context<'_>, out: &mut dyn StatSink) {
    let store = ctx.shared.store.stats();
    if store.curr_items == 0 && store.evictions == 0 {
        return;
    }
    num(out, "items:1:number", store.curr_items);
    num(out, "items:1:mem_requested", store.bytes);
    num(out, "items:1:evicted", store.evictions);
    num(out, "items:1:evicted_unfetched", store.evicted_unfetched);
    num(out, "items:1:expired_unfetched", store.expired_unfetched);
    num(out, "items:1:reclaimed", store.reclaimed);
}

fn slabs(ctx: &Context<'_>, out: &mut dyn StatSink) {
    let store = ctx.shared.store.stats();
    if store.curr_items > 0 {
        num(out, "1:used_chunks", store.curr_items);
        num(out, "1:mem_requested", store.bytes);
        // Every item is in class 1, so its command counters are the server's (memcached
        // counts these per class; memcached_exporter reads them).
        let workers = WorkerStats::sum(ctx.shared.worker_stats.iter());
        for (name, value) in [
            ("get_hits", workers.get_hits),
            ("cmd_set", workers.cmd_set),
            ("delete_hits", workers.delete_hits),
            ("incr_hits", workers.incr_hits),
            ("decr_hits", workers.decr_hits),
            ("cas_hits", workers.cas_hits),
            ("cas_badval", workers.cas_badval),
            ("touch_hits", workers.touch_hits),
        ] {
            num(out, &format!("1:{name}"), value);
        }
    }
    num(out, "active_slabs", u64::from(store.curr_items > 0));
    num(out, "total_malloced", store.bytes);
}

fn conns(ctx: &Context<'_>, out: &mut dyn StatSink) {
    for conn in ctx.shared.connection_table.lock().values() {
        let prefix = conn.id;
        text(out, &format!("{prefix}:addr"), &conn.peer);
        text(out, &format!("{prefix}:state"), "conn_parse_cmd");
        let idle = ctx
            .now_ms
            .saturating_sub(conn.last_active_ms.load(Ordering::Relaxed))
            / 1000;
        num(out, &format!("{prefix}:secs_since_last_cmd"), idle);
    }
}
