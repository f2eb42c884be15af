//! Renders a [`Report`] in Prometheus's text exposition format (version 0.0.4), with
//! Prometheus's naming: `ferrocache_` prefix, base units (seconds, bytes), `_total` on
//! counters, histograms as `_bucket{le=}` / `_sum` / `_count`.
//!
//! Never: read live state (it renders the snapshot it is given), or emit a metric name twice
//! (each family is written once, with all its label sets).

use std::fmt::Write as _;

use super::report::Report;

/// The Content-Type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (`\`, `"` and newline, as the format requires).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Writer {
    text: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(self.text, " {}", value as i64);
        } else {
            let _ = writeln!(self.text, " {value}");
        }
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// The whole report as Prometheus text.
pub fn render(report: &Report) -> String {
    let mut w = Writer {
        text: String::with_capacity(16 * 1024),
    };
    w.single(
        "ferrocache_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        report.uptime_secs as f64,
    );
    let c = &report.connections;
    w.single(
        "ferrocache_connections",
        "gauge",
        "Client connections open now (every port).",
        c.current as f64,
    );
    w.single(
        "ferrocache_connections_max",
        "gauge",
        "Most client connections allowed (-c).",
        c.max as f64,
    );
    w.single(
        "ferrocache_connections_accepted_total",
        "counter",
        "Client connections accepted.",
        c.total as f64,
    );
    w.single(
        "ferrocache_connections_rejected_total",
        "counter",
        "Client connections refused over the connection limit.",
        c.rejected as f64,
    );
    let m = &report.memory;
    for (name, help, value) in [
        (
            "ferrocache_memory_limit_bytes",
            "Memory limit of the store (-m, maxmemory).",
            m.limit,
        ),
        (
            "ferrocache_memory_used_bytes",
            "Bytes of items in the store.",
            m.used,
        ),
        (
            "ferrocache_memory_index_bytes",
            "Bytes of the hash index tables.",
            m.index,
        ),
        (
            "ferrocache_memory_heap_bytes",
            "Bytes of typed values on the heap.",
            m.heap,
        ),
        (
            "ferrocache_memory_clients_bytes",
            "Bytes of client buffers.",
            m.clients,
        ),
        (
            "ferrocache_memory_rss_bytes",
            "Resident set size of the process.",
            m.rss,
        ),
        ("ferrocache_items", "Items in the store.", m.items),
        (
            "ferrocache_compressed_items",
            "Items stored zstd-compressed.",
            m.compressed_items,
        ),
        (
            "ferrocache_compressed_saved_bytes",
            "Bytes compression saved.",
            m.compressed_saved,
        ),
    ] {
        w.single(name, "gauge", help, value as f64);
    }
    w.single(
        "ferrocache_memory_fragmentation_ratio",
        "gauge",
        "RSS divided by the bytes the server accounts for.",
        m.fragmentation_ratio,
    );
    w.single(
        "ferrocache_hits_total",
        "counter",
        "Key lookups that found the key (every pool, every protocol).",
        report.hits as f64,
    );
    w.single(
        "ferrocache_misses_total",
        "counter",
        "Key lookups that did not find the key.",
        report.misses as f64,
    );
    w.single(
        "ferrocache_hit_ratio",
        "gauge",
        "Hits over lookups since start.",
        report.hit_ratio,
    );
    w.single(
        "ferrocache_expired_total",
        "counter",
        "Items removed because their TTL passed.",
        report.expired as f64,
    );

    for (name, value) in &report.counters {
        let metric = format!("ferrocache_{name}_total");
        w.single(
            &metric,
            "counter",
            &format!("The memcached stats counter {name}."),
            *value as f64,
        );
    }

    pools(&mut w, report);
    pool_latency(&mut w, report);
    commands(&mut w, report);
    w.text
}

fn pools(w: &mut Writer, report: &Report) {
    type Field = fn(&super::report::PoolReport) -> f64;
    let families: [(&str, &str, &str, Field); 8] = [
        (
            "ferrocache_pool_items",
            "gauge",
            "Items in the pool.",
            |p| p.items as f64,
        ),
        (
            "ferrocache_pool_bytes",
            "gauge",
            "Bytes of the pool's items.",
            |p| p.bytes as f64,
        ),
        (
            "ferrocache_pool_hits_total",
            "counter",
            "Lookups that found a key of the pool.",
            |p| p.hits as f64,
        ),
        (
            "ferrocache_pool_misses_total",
            "counter",
            "Lookups of a key of the pool that missed.",
            |p| p.misses as f64,
        ),
        (
            "ferrocache_pool_hit_ratio",
            "gauge",
            "Hits over lookups of the pool.",
            |p| p.hit_ratio,
        ),
        (
            "ferrocache_pool_expired_total",
            "counter",
            "Items of the pool removed because their TTL passed.",
            |p| p.expired as f64,
        ),
        (
            "ferrocache_pool_flushed_total",
            "counter",
            "Items of the pool removed by a flush.",
            |p| p.flushed as f64,
        ),
        (
            "ferrocache_pool_refused_too_large_total",
            "counter",
            "Writes to the pool refused for a value over the item size limit.",
            |p| p.too_large as f64,
        ),
    ];
    for (name, kind, help, field) in families {
        w.family(name, kind, help);
        for pool in &report.pools {
            w.sample(name, &[("pool", &pool.name)], field(pool));
        }
    }
    w.family(
        "ferrocache_pool_refused_out_of_memory_total",
        "counter",
        "Writes to the pool refused for lack of memory (noeviction, or nothing evictable).",
    );
    for pool in &report.pools {
        w.sample(
            "ferrocache_pool_refused_out_of_memory_total",
            &[("pool", &pool.name)],
            pool.out_of_memory as f64,
        );
    }
    w.family(
        "ferrocache_evictions_total",
        "counter",
        "Items evicted to make room, by pool and by the policy that chose them.",
    );
    for pool in &report.pools {
        for (reason, value) in &pool.evictions {
            w.sample(
                "ferrocache_evictions_total",
                &[("pool", &pool.name), ("reason", reason)],
                *value as f64,
            );
        }
    }
}

fn pool_latency(w: &mut Writer, report: &Report) {
    let name = "ferrocache_pool_command_duration_seconds";
    w.family(
        name,
        "histogram",
        "Time from a request parsed to its reply queued, for commands naming a key of the pool.",
    );
    let bucket = format!("{name}_bucket");
    for pool in &report.pools {
        for (bound_ns, count) in &pool.buckets {
            let le = format!("{}", *bound_ns as f64 / 1e9);
            w.sample(&bucket, &[("pool", &pool.name), ("le", &le)], *count as f64);
        }
        w.sample(
            &bucket,
            &[("pool", &pool.name), ("le", "+Inf")],
            pool.calls as f64,
        );
        w.sample(
            &format!("{name}_sum"),
            &[("pool", &pool.name)],
            pool.total_us / 1e6,
        );
        w.sample(
            &format!("{name}_count"),
            &[("pool", &pool.name)],
            pool.calls as f64,
        );
    }
}

fn commands(w: &mut Writer, report: &Report) {
    w.family(
        "ferrocache_commands_total",
        "counter",
        "Commands run, by name and protocol.",
    );
    for c in &report.commands {
        w.sample(
            "ferrocache_commands_total",
            &[("cmd", c.name), ("proto", c.proto)],
            c.calls as f64,
        );
    }
    w.family(
        "ferrocache_commands_failed_total",
        "counter",
        "Commands that answered with an error.",
    );
    for c in &report.commands {
        w.sample(
            "ferrocache_commands_failed_total",
            &[("cmd", c.name), ("proto", c.proto)],
            c.failed as f64,
        );
    }
    w.family(
        "ferrocache_commands_rejected_total",
        "counter",
        "Commands refused before running (arity, authentication).",
    );
    for c in &report.commands {
        w.sample(
            "ferrocache_commands_rejected_total",
            &[("cmd", c.name), ("proto", c.proto)],
            c.rejected as f64,
        );
    }
    let name = "ferrocache_command_duration_seconds";
    w.family(
        name,
        "histogram",
        "Time from a request parsed to its reply queued, by command and protocol.",
    );
    let bucket = format!("{name}_bucket");
    for c in &report.commands {
        for (bound_ns, count) in &c.buckets {
            let le = format!("{}", *bound_ns as f64 / 1e9);
            w.sample(
                &bucket,
                &[("cmd", c.name), ("proto", c.proto), ("le", &le)],
                *count as f64,
            );
        }
        w.sample(
            &bucket,
            &[("cmd", c.name), ("proto", c.proto), ("le", "+Inf")],
            c.calls as f64,
        );
        w.sample(
            &format!("{name}_sum"),
            &[("cmd", c.name), ("proto", c.proto)],
            c.total_us / 1e6,
        );
        w.sample(
            &format!("{name}_count"),
            &[("cmd", c.name), ("proto", c.proto)],
            c.calls as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::{CommandReport, PoolReport, Report};
    use super::*;

    #[test]
    fn families_are_unique_and_labels_escaped() {
        let mut report = Report::default();
        report.counters.insert("cmd_get", 3);
        report.pools.push(PoolReport {
            name: "we\"ird\\".into(),
            evictions: [("lru", 2)].into_iter().collect(),
            ..PoolReport::default()
        });
        report.commands.push(CommandReport {
            proto: "resp",
            name: "get",
            calls: 2,
            buckets: vec![(1024, 1), (2048, 2)],
            total_us: 3.0,
            ..CommandReport::default()
        });
        let text = render(&report);
        let mut types: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
            .map(|l| l.split(' ').nth(2).unwrap())
            .collect();
        let n = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), n, "a family is declared twice");
        assert!(
            text.contains("ferrocache_evictions_total{pool=\"we\\\"ird\\\\\",reason=\"lru\"} 2")
        );
        assert!(text.contains(
            "ferrocache_command_duration_seconds_bucket{cmd=\"get\",proto=\"resp\",le=\"0.000001024\"} 1"
        ));
        assert!(text.contains(
            "ferrocache_command_duration_seconds_bucket{cmd=\"get\",proto=\"resp\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("ferrocache_cmd_get_total 3"));
    }
}
