//! What a soak reports: the per-protocol figures the checks count ([`ProtoStats`]), the whole
//! run's [`SoakReport`] (JSON via serde, or [`SoakReport::to_table`]) and which of the server's
//! `stats` it shows.
//!
//! Never does I/O and never decides whether the run passed: it holds and formats what `main`
//! gathered.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rss::Rss;

/// What one protocol's connections did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProtoStats {
    pub ops: u64,
    pub gets: u64,
    /// Read requests of any kind (gets, HGETs, ZSCOREs); `hits` counts the ones that found
    /// their value.
    pub reads: u64,
    pub hits: u64,
    pub sets: u64,
    pub deletes: u64,
    pub incrs: u64,
    /// HSET/HGET/ZADD/ZSCORE (RESP only).
    pub collection_ops: u64,
    pub value_bytes_written: u64,
    pub value_bytes_read: u64,
    pub server_errors: u64,
    pub first_server_error: Option<String>,
    pub wrong_values: u64,
}

impl ProtoStats {
    pub(super) fn merge(&mut self, o: &ProtoStats) {
        self.ops += o.ops;
        self.gets += o.gets;
        self.reads += o.reads;
        self.hits += o.hits;
        self.sets += o.sets;
        self.deletes += o.deletes;
        self.incrs += o.incrs;
        self.collection_ops += o.collection_ops;
        self.value_bytes_written += o.value_bytes_written;
        self.value_bytes_read += o.value_bytes_read;
        self.server_errors += o.server_errors;
        self.wrong_values += o.wrong_values;
        if self.first_server_error.is_none() {
            self.first_server_error.clone_from(&o.first_server_error);
        }
    }
}

/// The server figures the report shows.
pub(super) const SHOWN_STATS: &[&str] = &[
    "limit_maxbytes",
    "bytes",
    "curr_items",
    "total_items",
    "evictions",
    "reclaimed",
    "expired_unfetched",
    "evicted_unfetched",
    "segments_in_use",
    "segments_allocated",
    "heap_bytes",
    "index_bytes",
    "moved_items",
    "compressed_items",
    "compressed_saved_bytes",
    "curr_connections",
];

/// Everything a soak reports.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub passed: bool,
    pub failures: Vec<String>,
    pub server: String,
    pub resp_server: String,
    pub minutes: f64,
    pub seconds: f64,
    pub lanes: usize,
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    pub keys: u64,
    pub value_size: (usize, usize),
    pub seed: u64,
    pub key_prefix: String,
    pub memory_limit_mib: Option<f64>,
    pub rss_slack_mb: u64,
    pub rss_slack_pct: f64,
    pub per_protocol: BTreeMap<String, ProtoStats>,
    pub total: ProtoStats,
    pub ops_per_sec: f64,
    pub wrong_values: u64,
    pub first_wrong_values: Vec<String>,
    pub server_errors: u64,
    pub unanswered: u64,
    pub rss: Option<Rss>,
    pub server_stats: BTreeMap<String, String>,
    pub client_cpu_seconds: Option<f64>,
}

impl SoakReport {
    /// The report as a table.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "ferrobench soak: {:.1} min ({:.0} s) against {} (memcached text, meta, binary) and {} (RESP); \
             {} lanes x 4 connections on {} threads, pipeline {}, {} keys (prefix {}), values {}-{} B",
            self.minutes,
            self.seconds,
            self.server,
            self.resp_server,
            self.lanes,
            self.threads,
            self.pipeline,
            self.keys,
            self.key_prefix,
            self.value_size.0,
            self.value_size.1
        );
        let _ = writeln!(
            o,
            "{:<8} {:>11} {:>9} {:>10} {:>6} {:>10} {:>9} {:>9} {:>9} {:>10} {:>7} {:>6}",
            "protocol",
            "ops",
            "ops/s",
            "gets",
            "hit%",
            "sets",
            "deletes",
            "incrs",
            "hash/zset",
            "MB written",
            "errors",
            "wrong"
        );
        let rows = self
            .per_protocol
            .iter()
            .map(|(n, s)| (n.as_str(), s))
            .chain(std::iter::once(("total", &self.total)));
        for (name, s) in rows {
            let reads = s.reads;
            let _ = writeln!(
                o,
                "{:<8} {:>11} {:>9.0} {:>10} {:>6} {:>10} {:>9} {:>9} {:>9} {:>10.0} {:>7} {:>6}",
                name,
                s.ops,
                s.ops as f64 / self.seconds.max(1e-9),
                s.gets,
                if reads > 0 {
                    format!("{:.1}", 100.0 * s.hits as f64 / reads as f64)
                } else {
                    "-".into()
                },
                s.sets,
                s.deletes,
                s.incrs,
                s.collection_ops,
                s.value_bytes_written as f64 / 1e6,
                s.server_errors,
                s.wrong_values
            );
        }
        for w in &self.first_wrong_values {
            let _ = writeln!(o, "  wrong value: {w}");
        }
        if let Some(r) = &self.rss {
            let _ = writeln!(
                o,
                "server RSS (pid {}, {} samples): start {:.1} MiB, max {:.1} MiB at {:.0} s, final {:.1} MiB; \
                 bound -m {:.1} MiB + {} MiB + {}% = {:.1} MiB",
                r.pid,
                r.samples,
                r.start_mib,
                r.max_mib,
                r.max_at_seconds,
                r.final_mib,
                self.memory_limit_mib.unwrap_or(0.0),
                self.rss_slack_mb,
                self.rss_slack_pct,
                r.bound_mib
            );
        } else {
            let _ = writeln!(o, "server RSS not checked (no --server-pid)");
        }
        if !self.server_stats.is_empty() {
            let line: Vec<String> = self
                .server_stats
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(o, "server stats: {}", line.join(", "));
        }
        if let Some(cpu) = self.client_cpu_seconds {
            let _ = writeln!(o, "load generator CPU: {cpu:.1} s");
        }
        if self.passed {
            let _ = writeln!(o, "soak PASSED");
        } else {
            for f in &self.failures {
                let _ = writeln!(o, "soak FAILED: {f}");
            }
        }
        o
    }
}
