//! `ferrobench --soak MINUTES`: every protocol at once against one server for a long time,
//! checking every reply, and the server's resident memory against its `-m`.
//!
//! Load: `--lanes` lanes (default 4), each with four connections, memcached text, meta and
//! binary to `--server` and RESP to `--resp-server`, and a key space of its own (`-n` keys
//! split between lanes; `index % 10` picks the type: 70 % strings, 10 % counters, 10 % hashes,
//! 10 % sorted sets). Strings get get/set/delete (a fifth of the sets with a TTL of 2-60 s),
//! counters incr/get/set/delete, over any of the four protocols (so a key set over RESP is read
//! over binary and deleted over meta); hashes get HSET/HGET/DEL and sorted sets ZADD/ZSCORE/DEL
//! over RESP. Values are 10 B-100 KB by default, log-uniform, half random bytes (any byte, CR
//! and LF included) and half compressible text, each with its version and a checksum
//! ([`model::SoakValues`]).
//!
//! Checks ([`model::Model`]): a lane is the only writer of its keys and keeps at most one
//! request per key in flight, so every reply has exactly one right answer or a miss (eviction,
//! expiry): a wrong, stale, resurrected or corrupted value, a counter that does not add up or a
//! delete that finds a deleted key is a *wrong value*; an error reply is a *server error*;
//! bytes that are not a reply are a *protocol error* and end the run. With `--server-pid`, the
//! server's VmRSS (`/proc/PID/status`) is sampled every second and must stay within
//! `-m` + `--rss-slack-mb` + `--rss-slack-pct` % of `-m` (`-m` defaults to the server's own
//! `limit_maxbytes`); the first sample above ends the run.
//!
//! Exit status: 0 pass, 1 protocol or server errors (or the run could not start), 4 wrong
//! values, 5 RSS above the bound; every reason is printed.
//!
//! This file owns the run: its config, the load threads, the once-a-second RSS sample, the
//! progress line and the exit status. The jobs live beside it: `lanes.rs` the load, `check.rs`
//! every reply against `model.rs`, `wire.rs` the requests and replies on the wire, `rss.rs` the
//! server's memory and `stats`, `report.rs` the report. It never reads a reply or formats the
//! report itself.

mod check;
mod lanes;
pub mod model;
mod report;
mod rss;
pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proto::Protocol;
use crate::rng::mix3;
use lanes::{thread_main, Outcome, KEEP_WRONG};
use model::{KeyType, SoakValues};
use report::{ProtoStats, SoakReport, SHOWN_STATS};
use rss::{mib, rss_bytes, server_stats, Rss};
use wire::Verb;

/// Protocols in lane order: each lane has one connection of each.
pub const PROTOCOLS: [Protocol; 4] = [
    Protocol::Text,
    Protocol::Meta,
    Protocol::Binary,
    Protocol::Resp,
];

/// A validated soak run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub duration: Duration,
    pub server: SocketAddr,
    pub resp_server: SocketAddr,
    pub server_pid: Option<u32>,
    /// `-m` in bytes, if given (else read from the server's `limit_maxbytes`).
    pub memory_limit: Option<u64>,
    pub rss_slack_mb: u64,
    pub rss_slack_pct: f64,
    pub lanes: usize,
    pub threads: usize,
    pub pipeline: usize,
    pub keys: u64,
    pub value_size: (usize, usize),
    pub seed: u64,
    pub json: bool,
}

/// A request in flight: what the lane sent, for the check of its reply.
struct Pending {
    index: u64,
    verb: Verb,
    /// Version written (string, field, score) or the counter value set.
    version: u32,
}

/// Per-run constants every lane reads.
struct Shared {
    cfg: SoakConfig,
    tag: String,
    values: SoakValues,
    field_values: SoakValues,
    keys_per_lane: u64,
    stop: AtomicBool,
    ops: AtomicU64,
    wrong: AtomicU64,
    errors: AtomicU64,
}

impl Shared {
    /// The value id of (lane, index, field): distinct for every key and field of the run.
    fn id(lane: u64, index: u64, field: u32) -> u64 {
        (lane << 40) ^ (index << 8) ^ u64::from(field)
    }

    fn write_key(&self, out: &mut Vec<u8>, lane: u64, index: u64) {
        out.clear();
        out.extend_from_slice(self.tag.as_bytes());
        out.push(b':');
        crate::proto::push_u64(out, lane);
        out.push(b':');
        out.push(KeyType::of(index).letter());
        crate::proto::push_u64(out, index);
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs the soak; prints the report; the exit status says whether it passed.
pub fn main(cfg: SoakConfig, cpu: fn() -> Option<f64>) -> ExitCode {
    let cpu_before = cpu();
    let mut failures: Vec<(u8, String)> = Vec::new();
    let memory_limit = match cfg.memory_limit {
        Some(m) => Some(m),
        None => server_stats(cfg.server)
            .ok()
            .and_then(|s| s.get("limit_maxbytes")?.parse().ok()),
    };
    let bound = memory_limit.map(|m| {
        m + cfg.rss_slack_mb * 1024 * 1024 + (m as f64 * cfg.rss_slack_pct / 100.0) as u64
    });
    if cfg.server_pid.is_some() && bound.is_none() {
        eprintln!("ferrobench: --soak: no -m given and the server's stats have no limit_maxbytes");
        return ExitCode::from(2);
    }
    let tag = format!(
        "fs{:06x}",
        mix3(cfg.seed, unix_ms(), u64::from(std::process::id())) & 0xff_ffff
    );
    let lanes = cfg.lanes;
    let sh = Arc::new(Shared {
        values: SoakValues::new(cfg.seed, cfg.value_size.0, cfg.value_size.1),
        field_values: SoakValues::new(cfg.seed ^ 0xf1e1d, 10, 2_000),
        keys_per_lane: (cfg.keys / lanes as u64).max(10),
        tag: tag.clone(),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        cfg: cfg.clone(),
    });
    let mut rss = cfg.server_pid.map(|pid| Rss::new(pid, bound));
    if let Some(r) = &rss {
        if rss_bytes(r.pid).is_none() {
            eprintln!(
                "ferrobench: --server-pid {}: no /proc/{}/status",
                r.pid, r.pid
            );
            return ExitCode::from(2);
        }
    }
    let threads = cfg.threads.clamp(1, lanes);
    let results = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let sh = Arc::clone(&sh);
            let results = Arc::clone(&results);
            let ids: Vec<u64> = (t..lanes).step_by(threads).map(|l| l as u64).collect();
            std::thread::Builder::new()
                .name(format!("soak-{t}"))
                .spawn(move || {
                    let o = thread_main(&sh, ids);
                    results.lock().expect("no poisoning").push(o);
                })
                .expect("spawn a load thread")
        })
        .collect();
    let deadline = start + cfg.duration;
    let mut next_sample = start;
    let mut next_progress = start + Duration::from_secs(30);
    while !sh.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(r) = &mut rss {
                if let Some(failure) = r.sample(bound, start) {
                    failures.push(failure);
                    sh.stop.store(true, Ordering::Relaxed);
                }
            }
        }
        if now >= next_progress {
            next_progress += Duration::from_secs(30);
            eprintln!(
                "soak {:.0}/{:.0} s: {} ops, {} wrong values, {} server errors{}",
                start.elapsed().as_secs_f64(),
                cfg.duration.as_secs_f64(),
                sh.ops.load(Ordering::Relaxed),
                sh.wrong.load(Ordering::Relaxed),
                sh.errors.load(Ordering::Relaxed),
                rss.as_ref()
                    .map(|r| format!(", RSS max {:.1} MiB", r.max_mib))
                    .unwrap_or_default(),
            );
        }
        std::thread::sleep(
            next_sample
                .min(deadline)
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200)),
        );
    }
    sh.stop.store(true, Ordering::Relaxed);
    for h in handles {
        if h.join().is_err() {
            failures.push((1, "a load thread panicked".into()));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut outcome = Outcome::default();
    for o in results.lock().expect("no poisoning").iter() {
        for (acc, part) in outcome.per_protocol.iter_mut().zip(&o.per_protocol) {
            acc.merge(part);
        }
        outcome.wrong.extend(
            o.wrong
                .iter()
                .take(KEEP_WRONG.saturating_sub(outcome.wrong.len()))
                .cloned(),
        );
        outcome.fatal.extend(o.fatal.iter().cloned());
        outcome.unanswered += o.unanswered;
    }
    if let Some(r) = &mut rss {
        failures.extend(r.finish(bound));
    }
    let stats = server_stats(cfg.server)
        .map(|all| {
            SHOWN_STATS
                .iter()
                .filter_map(|k| Some((k.to_string(), all.get(*k)?.clone())))
                .collect()
        })
        .unwrap_or_else(|e| {
            failures.push((1, format!("server stats after the run: {e}")));
            BTreeMap::new()
        });
    let mut total = ProtoStats::default();
    for p in &outcome.per_protocol {
        total.merge(p);
    }
    for f in &outcome.fatal {
        failures.push((1, f.clone()));
    }
    if total.server_errors > 0 {
        failures.push((
            1,
            format!(
                "{} server error replies, the first: {}",
                total.server_errors,
                total.first_server_error.clone().unwrap_or_default()
            ),
        ));
    }
    if total.wrong_values > 0 {
        failures.push((4, format!("{} wrong values", total.wrong_values)));
    }
    if outcome.unanswered > 0 {
        failures.push((
            1,
            format!("{} requests unanswered after the drain", outcome.unanswered),
        ));
    }
    let report = SoakReport {
        passed: failures.is_empty(),
        failures: failures.iter().map(|(_, f)| f.clone()).collect(),
        server: cfg.server.to_string(),
        resp_server: cfg.resp_server.to_string(),
        minutes: cfg.duration.as_secs_f64() / 60.0,
        seconds,
        lanes,
        connections: lanes * PROTOCOLS.len(),
        threads,
        pipeline: cfg.pipeline,
        keys: sh.keys_per_lane * lanes as u64,
        value_size: cfg.value_size,
        seed: cfg.seed,
        key_prefix: tag,
        memory_limit_mib: memory_limit.map(mib),
        rss_slack_mb: cfg.rss_slack_mb,
        rss_slack_pct: cfg.rss_slack_pct,
        per_protocol: PROTOCOLS
            .iter()
            .zip(&outcome.per_protocol)
            .map(|(p, s)| (format!("{p:?}").to_lowercase(), s.clone()))
            .collect(),
        ops_per_sec: total.ops as f64 / seconds.max(1e-9),
        wrong_values: total.wrong_values,
        first_wrong_values: outcome.wrong.clone(),
        server_errors: total.server_errors,
        unanswered: outcome.unanswered,
        total,
        rss,
        server_stats: stats,
        client_cpu_seconds: cpu().zip(cpu_before).map(|(a, b)| a - b),
    };
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report always serializes")
        );
    } else {
        print!("{}", report.to_table());
    }
    for (_, f) in &failures {
        eprintln!("ferrobench: soak FAILED: {f}");
    }
    match failures.first() {
        None => ExitCode::SUCCESS,
        Some(_) => {
            // The most specific reason wins: run/protocol errors, then wrong values, then RSS.
            let code = failures.iter().map(|(c, _)| *c).min().unwrap_or(1);
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    //! A short soak against a real ferrocache started in this process.

    use super::*;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn a_short_soak_against_ferrocache_passes() {
        let mut config = ferrocache::config::Config::default();
        config.server.listen = vec!["127.0.0.1".parse().unwrap()];
        config.server.port = free_port();
        config.server.resp_port = free_port();
        config.server.threads = 2;
        config.store.memory_limit = ferrocache::config::ByteSize::mib(8);
        // Neither loads nor writes a snapshot in the working directory.
        config.persistence.load_on_start = false;
        config.persistence.dir = std::env::temp_dir();
        // Left running until the test process exits.
        let _server = ferrocache::server::Server::start(config.clone()).expect("server starts");
        let cfg = SoakConfig {
            duration: Duration::from_secs(60),
            server: SocketAddr::from(([127, 0, 0, 1], config.server.port)),
            resp_server: SocketAddr::from(([127, 0, 0, 1], config.server.resp_port)),
            // This process: the bound is only a smoke check here.
            server_pid: Some(std::process::id()),
            memory_limit: None,
            rss_slack_mb: 4096,
            rss_slack_pct: 10.0,
            lanes: 2,
            threads: 2,
            pipeline: 4,
            keys: 2_000,
            value_size: (10, 20_000),
            seed: 3,
            json: true,
        };
        let sh = Shared {
            values: SoakValues::new(cfg.seed, cfg.value_size.0, cfg.value_size.1),
            field_values: SoakValues::new(cfg.seed ^ 0xf1e1d, 10, 2_000),
            keys_per_lane: cfg.keys / 2,
            tag: "fstest".into(),
            stop: AtomicBool::new(false),
            ops: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            cfg: cfg.clone(),
        };
        std::thread::scope(|s| {
            let h = s.spawn(|| thread_main(&sh, vec![0, 1]));
            // Until every protocol has had a fair share of requests (or 60 s on a slow machine).
            let start = Instant::now();
            while sh.ops.load(Ordering::Relaxed) < 8_000
                && start.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            sh.stop.store(true, Ordering::Relaxed);
            let out = h.join().unwrap();
            assert!(out.fatal.is_empty(), "{:?}", out.fatal);
            assert!(out.wrong.is_empty(), "{:?}", out.wrong);
            assert_eq!(out.unanswered, 0);
            for (p, s) in PROTOCOLS.iter().zip(&out.per_protocol) {
                assert!(s.ops > 500, "{p:?}: {s:?}");
                assert!(
                    s.gets > 0 && s.sets > 0 && s.deletes > 0 && s.incrs > 0,
                    "{p:?}: {s:?}"
                );
                assert_eq!(s.server_errors, 0, "{p:?}: {s:?}");
            }
            assert!(out.per_protocol[3].collection_ops > 0);
            assert!(out.per_protocol.iter().map(|s| s.hits).sum::<u64>() > 0);
        });
        // The whole path, report included, with the bound from the server's limit_maxbytes.
        assert_eq!(
            main(
                SoakConfig {
                    duration: Duration::from_secs(1),
                    ..cfg
                },
                || None
            ),
            ExitCode::SUCCESS
        );
    }
}
