//! storebench: get and set throughput of `ferrocache::store::Store` called directly, no network.
//!
//! Preloads `--keys` keys (`--key-size` bytes, `--value-size`-byte values) into one store, then
//! for each thread count in `--threads` and each of `--rounds` rounds runs a get phase and a set
//! phase of `--duration` seconds each: every thread draws keys (uniform, or Zipf with `--zipf`)
//! from its own seeded generator and calls `Store::get` (copying nothing, reading the value's
//! length) or `Store::apply(Mutation::Write)` (overwriting with a value of the same size).
//! Reports ops/s per thread (the mean over the threads of one phase; the median over rounds) as
//! a markdown table, and ops per CPU-second of the bench threads (user + system time of each
//! thread from `/proc/thread-self/stat`, Linux): on a machine shared with other work the
//! wall-clock rate falls when a thread loses its core, the rate per CPU-second does not. The memory limit holds the whole key space unless `--memory` says otherwise,
//! so nothing is evicted by default. Every phase is bounded by `--duration`.
//!
//! The store's construction lives in [`store_config`] alone, so a store whose configuration
//! grows needs one edit here.

#[allow(dead_code)]
#[path = "../keyspace.rs"]
mod keyspace;
#[allow(dead_code)]
#[path = "../rng.rs"]
mod rng;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use ferrocache::store::{
    EvictionPolicy, Expiry, Mutation, Outcome, ReadOptions, StaleCas, Store, StoreConfig, Write,
    WriteMode,
};

use keyspace::{write_key, KeyDist, Zipf};
use rng::{mix3, Rng};

/// storebench: ops/s per thread of ferrocache's store for get and set, in process.
#[derive(Debug, Parser)]
#[command(name = "storebench")]
struct Args {
    /// Thread counts to measure, comma-separated.
    #[arg(short = 't', long, default_value = "1,2", value_delimiter = ',')]
    threads: Vec<usize>,
    /// Keys preloaded and then read or overwritten.
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    keys: u64,
    /// Key length in bytes.
    #[arg(long, default_value_t = 32)]
    key_size: usize,
    /// Value length in bytes.
    #[arg(short = 'd', long, default_value_t = 100)]
    value_size: usize,
    /// Seconds per phase (one phase = one op kind at one thread count in one round).
    #[arg(short = 'D', long, default_value_t = 2.0)]
    duration: f64,
    /// Rounds; the table shows the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Memory limit in MiB (default: room for every key with 256 B of slack each, plus 64 MiB).
    #[arg(short = 'm', long)]
    memory: Option<usize>,
    /// Zipf exponent of key popularity (uniform if absent).
    #[arg(long)]
    zipf: Option<f64>,
    /// Seed of key choice and value bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The one place a [`StoreConfig`] is built.
fn store_config(memory_limit_bytes: usize, item_size_max: usize) -> StoreConfig {
    StoreConfig {
        memory_limit_bytes,
        item_size_max,
        eviction: EvictionPolicy::AllKeysLru,
        ..StoreConfig::default()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn set(store: &Store, key: &[u8], value: &[u8], now: u64) -> Outcome {
    store.apply(
        Mutation::Write(Write {
            key,
            value,
            flags: 0,
            expiry: Expiry::Never,
            mode: WriteMode::Set,
            compare_cas: None,
            new_cas: None,
            stale_cas: StaleCas::Refuse,
        }),
        now,
    )
}

/// Keys `0..n` of `size` bytes each, back to back.
struct Keys {
    bytes: Vec<u8>,
    size: usize,
}

impl Keys {
    fn new(n: u64, size: usize) -> Keys {
        let mut bytes = Vec::with_capacity(n as usize * size);
        for i in 0..n {
            write_key(&mut bytes, b'k', i, size);
        }
        Keys { bytes, size }
    }

    fn get(&self, i: u64) -> &[u8] {
        let at = i as usize * self.size;
        &self.bytes[at..at + self.size]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Set,
}

/// User + system CPU seconds of the calling thread (`/proc/thread-self/stat` fields 14 and 15,
/// in USER_HZ = 100 ticks per second); `None` where unreadable.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// What one thread did in one phase.
struct ThreadResult {
    ops: u64,
    seconds: f64,
    /// CPU seconds the thread used, if known.
    cpu_seconds: Option<f64>,
    /// Gets that found nothing, or sets that were not stored.
    misses: u64,
}

/// Ops between clock checks.
const BATCH: u64 = 1024;

#[allow(clippy::too_many_arguments)]
fn phase_thread(
    store: &Store,
    keys: &Keys,
    dist: &KeyDist,
    value: &[u8],
    op: Op,
    seed: u64,
    duration: Duration,
    barrier: &Barrier,
) -> ThreadResult {
    let mut rng = Rng::new(seed);
    let mut ops = 0u64;
    let mut misses = 0u64;
    barrier.wait();
    let cpu_start = thread_cpu_seconds();
    let start = Instant::now();
    loop {
        let now = now_ms();
        for _ in 0..BATCH {
            let key = keys.get(dist.sample(&mut rng));
            match op {
                Op::Get => {
                    let len = store.get(key, now, ReadOptions::plain(), |view| {
                        view.map(|v| v.value().len())
                    });
                    misses += u64::from(black_box(len).is_none());
                }
                Op::Set => {
                    let outcome = set(store, key, value, now);
                    misses += u64::from(!matches!(black_box(outcome), Outcome::Stored { .. }));
                }
            }
        }
        ops += BATCH;
        if start.elapsed() >= duration {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_seconds()
        .zip(cpu_start)
        .map(|(end, start)| end - start);
    ThreadResult {
        ops,
        seconds,
        cpu_seconds,
        misses,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args = Args::parse();
    if args.keys == 0
        || args.rounds == 0
        || args.threads.contains(&0)
        || !(args.duration.is_finite() && args.duration > 0.0)
        || args.key_size < 1 + keyspace::digits(args.keys - 1)
        || args.zipf.is_some_and(|s| !(s.is_finite() && s > 0.0))
    {
        eprintln!(
            "storebench: need --keys, --rounds, --threads >= 1, --duration > 0, --zipf > 0 and a \
             key size that holds the key count"
        );
        std::process::exit(2);
    }
    let memory = args.memory.map_or_else(
        || args.keys as usize * (args.key_size + args.value_size + 256) + (64 << 20),
        |mb| mb << 20,
    );
    let item_size_max = (args.key_size + args.value_size + 1024).max(1 << 20);
    let store = Arc::new(Store::new(store_config(memory, item_size_max)));
    let keys = Arc::new(Keys::new(args.keys, args.key_size));
    let mut value_rng = Rng::new(mix3(args.seed, 0x5e7, 0));
    let value: Arc<Vec<u8>> = Arc::new(
        (0..args.value_size)
            .map(|_| b'a' + value_rng.below(26) as u8)
            .collect(),
    );
    let dist = Arc::new(match args.zipf {
        Some(s) => KeyDist::Zipf(Zipf::new(args.keys, s)),
        None => KeyDist::uniform(args.keys),
    });

    let load_start = Instant::now();
    let now = now_ms();
    let mut not_stored = 0u64;
    for i in 0..args.keys {
        not_stored += u64::from(!matches!(
            set(&store, keys.get(i), &value, now),
            Outcome::Stored { .. }
        ));
    }
    eprintln!(
        "storebench: preloaded {} keys of {} B with {} B values in {:.1} s ({} not stored); \
         memory limit {} MiB",
        args.keys,
        args.key_size,
        args.value_size,
        load_start.elapsed().as_secs_f64(),
        not_stored,
        memory >> 20
    );

    // One cell per (thread count, op): per-round ops/s per thread and in total, and misses.
    // Rounds are the outer loop, so drift over the run (other load, heat) spreads over all cells.
    struct Cell {
        threads: usize,
        op: Op,
        per_thread: Vec<f64>,
        total: Vec<f64>,
        per_cpu_second: Vec<f64>,
        misses: u64,
    }
    let mut cells: Vec<Cell> = args
        .threads
        .iter()
        .flat_map(|&threads| {
            [Op::Get, Op::Set].map(|op| Cell {
                threads,
                op,
                per_thread: Vec::new(),
                total: Vec::new(),
                per_cpu_second: Vec::new(),
                misses: 0,
            })
        })
        .collect();
    let duration = Duration::from_secs_f64(args.duration);
    for round in 0..args.rounds {
        for cell in cells.iter_mut() {
            let threads = cell.threads;
            let barrier = Arc::new(Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (store, keys, dist, value, barrier) = (
                        Arc::clone(&store),
                        Arc::clone(&keys),
                        Arc::clone(&dist),
                        Arc::clone(&value),
                        Arc::clone(&barrier),
                    );
                    let op = cell.op;
                    let seed = mix3(args.seed, (threads * 1000 + t) as u64, round as u64);
                    std::thread::spawn(move || {
                        phase_thread(&store, &keys, &dist, &value, op, seed, duration, &barrier)
                    })
                })
                .collect();
            let results: Vec<ThreadResult> = handles
                .into_iter()
                .map(|h| h.join().expect("a bench thread panicked"))
                .collect();
            let total: f64 = results.iter().map(|r| r.ops as f64 / r.seconds).sum();
            cell.per_thread.push(total / threads as f64);
            cell.total.push(total);
            let cpu: Option<f64> = results.iter().map(|r| r.cpu_seconds).sum();
            if let Some(cpu) = cpu.filter(|&c| c > 0.0) {
                let ops: u64 = results.iter().map(|r| r.ops).sum();
                cell.per_cpu_second.push(ops as f64 / cpu);
            }
            cell.misses += results.iter().map(|r| r.misses).sum::<u64>();
        }
    }

    println!(
        "storebench: {} keys of {} B, values of {} B, {}, {} s per phase, median of {} rounds",
        args.keys,
        args.key_size,
        args.value_size,
        args.zipf
            .map_or("uniform keys".to_string(), |s| format!("Zipf({s}) keys")),
        args.duration,
        args.rounds
    );
    println!();
    println!(
        "| threads | op | ops/s per thread | ops/s total | per-thread runs (M ops/s) \
         | ops per CPU-second per thread | misses |"
    );
    println!("|---:|---|---:|---:|---|---:|---:|");
    for mut cell in cells {
        let runs = cell
            .per_thread
            .iter()
            .map(|r| format!("{:.2}", r / 1e6))
            .collect::<Vec<_>>()
            .join(" / ");
        let per_cpu = if cell.per_cpu_second.is_empty() {
            "-".to_string()
        } else {
            format!("{:.0}", median(&mut cell.per_cpu_second))
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {runs} | {per_cpu} | {} |",
            cell.threads,
            if cell.op == Op::Get { "get" } else { "set" },
            median(&mut cell.per_thread),
            median(&mut cell.total),
            cell.misses,
        );
    }
}
