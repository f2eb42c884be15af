//! The run's report: one serializable [`Report`], rendered as a table or as JSON.
//!
//! Owns the figures a run publishes and how they are derived from merged [`Stats`]: ops/s over the
//! time from start to last reply, the hit ratio over keys read, latency percentiles from the HDR
//! histogram in microseconds. Invariant: the JSON field names are the interface of
//! `compare.sh` and `memory.sh`; change them together.

use serde::Serialize;

use crate::cli::RunConfig;
use crate::runner::Stats;

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

/// Figures of one phase.
#[derive(Debug, Serialize)]
pub struct Phase {
    pub seconds: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub reads: u64,
    pub writes: u64,
    pub read_keys: u64,
    pub hits: u64,
    /// Hits over keys read; `null` when nothing was read.
    pub hit_ratio: Option<f64>,
    pub server_errors: u64,
    pub first_server_error: Option<String>,
    pub verify_failures: u64,
    pub first_verify_failure: Option<String>,
    pub unanswered: u64,
    /// `null` for the warm phase (not recorded).
    pub latency_us: Option<Latency>,
}

impl Phase {
    fn from_stats(s: &Stats, with_latency: bool) -> Self {
        let seconds = s.elapsed().as_secs_f64();
        let us = |ns: u64| ns as f64 / 1000.0;
        let h = &s.latency;
        Phase {
            seconds,
            ops: s.ops,
            ops_per_sec: if seconds > 0.0 {
                s.ops as f64 / seconds
            } else {
                0.0
            },
            reads: s.reads,
            writes: s.writes,
            read_keys: s.read_keys,
            hits: s.hits,
            hit_ratio: (s.read_keys > 0).then(|| s.hits as f64 / s.read_keys as f64),
            server_errors: s.server_errors,
            first_server_error: s.first_server_error.clone(),
            verify_failures: s.verify_failures,
            first_verify_failure: s.first_verify_failure.clone(),
            unanswered: s.unanswered,
            latency_us: (with_latency && !h.is_empty()).then(|| Latency {
                p50: us(h.value_at_quantile(0.5)),
                p90: us(h.value_at_quantile(0.9)),
                p99: us(h.value_at_quantile(0.99)),
                p99_9: us(h.value_at_quantile(0.999)),
                max: us(h.max()),
                mean: h.mean() / 1000.0,
            }),
        }
    }
}

/// Everything a run reports.
#[derive(Debug, Serialize)]
pub struct Report {
    pub server: String,
    pub protocol: crate::proto::Protocol,
    pub workload: crate::workload::Workload,
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    pub keys: u64,
    pub key_dist: String,
    pub key_size: usize,
    pub value_size: (usize, usize),
    pub value_kind: crate::value::ValueKind,
    pub ratio: String,
    /// Gets, each miss followed by a set of its key (`--cache-aside`).
    pub cache_aside: bool,
    pub batch: Option<usize>,
    /// `closed` or `open` (with `rate`).
    pub mode: &'static str,
    pub rate: Option<f64>,
    pub verify: bool,
    pub warm: Option<Phase>,
    pub measured: Option<Phase>,
    /// CPU seconds (user + system) this process used for the whole run, from `/proc/self/stat`;
    /// `null` where that is unreadable. Near `seconds * threads` means the generator saturated.
    pub client_cpu_seconds: Option<f64>,
}

impl Report {
    /// Builds the report of a run.
    pub fn new(
        cfg: &RunConfig,
        warm: Option<&Stats>,
        measured: Option<&Stats>,
        client_cpu_seconds: Option<f64>,
    ) -> Self {
        Report {
            server: cfg.addr.to_string(),
            protocol: cfg.protocol,
            workload: cfg.mix.workload,
            connections: cfg.connections,
            threads: cfg.threads,
            pipeline: cfg.pipeline,
            keys: cfg.keys,
            key_dist: match cfg.zipf {
                Some(s) => format!("zipf:{s}"),
                None => "uniform".into(),
            },
            key_size: cfg.encoder.key_size,
            value_size: cfg.value_size,
            value_kind: cfg.value_kind,
            ratio: format!("{}:{}", cfg.mix.gets, cfg.mix.sets),
            cache_aside: cfg.cache_aside,
            batch: (cfg.mix.workload == crate::workload::Workload::Mget).then_some(cfg.mix.batch),
            mode: if cfg.rate.is_some() { "open" } else { "closed" },
            rate: cfg.rate,
            verify: cfg.verify,
            warm: warm.map(|s| Phase::from_stats(s, false)),
            measured: measured.map(|s| Phase::from_stats(s, true)),
            client_cpu_seconds,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The report as a human-readable table.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let sizes = if self.value_size.0 == self.value_size.1 {
            format!("{} B", self.value_size.0)
        } else {
            format!("{}-{} B", self.value_size.0, self.value_size.1)
        };
        let _ = writeln!(
            o,
            "ferrobench {} {:?}/{:?} {}{}: {} conns on {} threads, pipeline {}, {} keys {}, values {}{}, {} loop{}",
            self.server,
            self.protocol,
            self.workload,
            if self.cache_aside {
                "cache-aside (get, set on miss)".to_string()
            } else {
                format!("ratio {}", self.ratio)
            },
            self.batch.map(|b| format!(" batch {b}")).unwrap_or_default(),
            self.connections,
            self.threads,
            self.pipeline,
            self.keys,
            self.key_dist,
            sizes,
            if self.value_kind == crate::value::ValueKind::Json {
                " json"
            } else {
                ""
            },
            self.mode,
            self.rate.map(|r| format!(" at {r} req/s")).unwrap_or_default(),
        );
        let _ = writeln!(
            o,
            "{:<8} {:>8} {:>10} {:>12} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
            "phase",
            "seconds",
            "ops",
            "ops/s",
            "hit%",
            "p50 us",
            "p90 us",
            "p99 us",
            "p99.9 us",
            "max us",
            "errors",
            "verify"
        );
        for (name, phase) in [("warm", &self.warm), ("measured", &self.measured)] {
            let Some(p) = phase else { continue };
            let hit = p
                .hit_ratio
                .map(|h| format!("{:.1}", h * 100.0))
                .unwrap_or_else(|| "-".into());
            let lat = |f: fn(&Latency) -> f64| {
                p.latency_us
                    .as_ref()
                    .map(|l| format!("{:.1}", f(l)))
                    .unwrap_or_else(|| "-".into())
            };
            let verify = if self.verify && name == "measured" {
                p.verify_failures.to_string()
            } else {
                "-".into()
            };
            let _ = writeln!(
                o,
                "{:<8} {:>8.2} {:>10} {:>12.0} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
                name,
                p.seconds,
                p.ops,
                p.ops_per_sec,
                hit,
                lat(|l| l.p50),
                lat(|l| l.p90),
                lat(|l| l.p99),
                lat(|l| l.p99_9),
                lat(|l| l.max),
                p.server_errors,
                verify,
            );
            if let Some(e) = &p.first_server_error {
                let _ = writeln!(o, "  first server error: {e}");
            }
            if let Some(e) = &p.first_verify_failure {
                let _ = writeln!(o, "  first verify failure: {e}");
            }
            if p.unanswered > 0 {
                let _ = writeln!(o, "  {} requests unanswered after the drain", p.unanswered);
            }
        }
        if let Some(cpu) = self.client_cpu_seconds {
            let _ = writeln!(o, "load generator CPU: {cpu:.2} s");
        }
        o
    }
}
