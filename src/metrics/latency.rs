//! Per-command calls, errors and latency histograms, per worker, merged when read.
//!
//! Each worker (and the HTTP thread) owns one [`WorkerLatency`]; it is the only writer. The
//! table sits behind a mutex that only a reader (`INFO`, `stats latency`, `/metrics`) ever
//! contends for, so the hot path takes an uncontended lock that stays in the worker's own
//! cache. A latency runs from the request parsed to its reply queued in the output buffer
//! (the caller starts a [`Timer`] after the parse and stops it after the encoder), so it does
//! not include the time a request waits in the socket or its reply waits to be flushed.
//!
//! Histograms are `hdrhistogram`'s (two significant digits: ≤ 1 % error, 1 ns to 60 s, the
//! precision Redis's own `latencystats` use). Built without the `latency` feature, [`Timer`]
//! is empty and nothing is recorded (the benchmark's "compiled out" build).
//!
//! Never: allocate per request once a command has been seen, or hold the table's lock while
//! doing anything but updating or copying it.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The protocol a command came in on (the `proto` label of `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// memcached text and meta commands.
    Memcache,
    /// memcached's binary protocol.
    Binary,
    /// RESP2/RESP3.
    Resp,
    /// The HTTP cache API.
    Http,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Memcache => "memcache",
            Proto::Binary => "binary",
            Proto::Resp => "resp",
            Proto::Http => "http",
        }
    }
}

/// How a command ended, for Redis's `failed_calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Any reply but an error.
    Answered,
    /// The command ran and answered with an error.
    Failed,
}

/// Highest latency a histogram tells apart (longer ones count as this).
const HIGHEST_NS: u64 = 60_000_000_000;
/// Two significant digits: at most 1 % relative error.
const SIGFIG: u8 = 2;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG).expect("1 ns .. 60 s at 2 digits is valid")
}

/// What one command counted (on one worker, or merged).
#[derive(Debug, Clone)]
pub struct CommandTiming {
    /// Times the command ran (Redis `calls`).
    pub calls: u64,
    /// Runs that answered with an error (Redis `failed_calls`).
    pub failed: u64,
    /// Requests refused before running: arity, authentication (Redis `rejected_calls`).
    pub rejected: u64,
    /// Sum of the latencies, nanoseconds.
    pub total_ns: u64,
    pub histogram: Histogram<u64>,
}

impl Default for CommandTiming {
    fn default() -> Self {
        CommandTiming {
            calls: 0,
            failed: 0,
            rejected: 0,
            total_ns: 0,
            histogram: new_histogram(),
        }
    }
}

impl CommandTiming {
    #[cfg(feature = "latency")]
    fn add(&mut self, ns: u64, ending: Ending) {
        self.calls += 1;
        self.total_ns = self.total_ns.saturating_add(ns);
        if ending == Ending::Failed {
            self.failed += 1;
        }
        self.histogram.saturating_record(ns.max(1));
    }

    fn merge(&mut self, other: &CommandTiming) {
        self.calls += other.calls;
        self.failed += other.failed;
        self.rejected += other.rejected;
        self.total_ns += other.total_ns;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    /// The latency below which `quantile` (0..=1) of the calls fell, in microseconds.
    pub fn quantile_us(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// How many calls took at most `ns` nanoseconds (within the histogram's 1 %).
    pub fn count_at_most(&self, ns: u64) -> u64 {
        if self.histogram.is_empty() {
            return 0;
        }
        self.histogram.count_between(0, ns.min(HIGHEST_NS))
    }
}

/// The upper bounds (ns) of the cumulative buckets that `LATENCY HISTOGRAM` and `/metrics`
/// show: 1024 ns doubling up to ~69 s (past the 60 s a histogram holds), the bounds Redis's
/// `LATENCY HISTOGRAM` walks (`hdr_iter_log_init(.., 1024, 2)` in `latency.c`).
pub fn bucket_bounds_ns() -> impl Iterator<Item = u64> {
    (0..=26).map(|k| 1024u64 << k)
}

/// Key of a command in the table.
pub type CommandKey = (Proto, &'static str);

/// What one worker recorded: per command, and per pool (by pool number, for the commands
/// that name a key).
#[derive(Default)]
struct Tables {
    /// foldhash (the index's hasher), not SipHash: the keys are our own static names, no
    /// client chooses them, and this lookup runs once per command.
    commands: hashbrown::HashMap<CommandKey, CommandTiming, crate::hashing::IndexHasher>,
    pools: Vec<CommandTiming>,
}

/// One worker's per-command and per-pool tables. Aligned to 128 bytes as
/// [`super::WorkerStats`]: the workers' tables sit side by side in one slice, and a lock word
/// sharing a cache line with another worker's would bounce between their cores.
#[derive(Default)]
#[repr(align(128))]
pub struct WorkerLatency {
    table: parking_lot::Mutex<Tables>,
}

impl WorkerLatency {
    /// Records one run of `name` that took `elapsed`, and under `pool` too when the command
    /// named a key (its first key's pool number).
    #[cfg_attr(not(feature = "latency"), allow(unused_variables))]
    pub fn record(
        &self,
        proto: Proto,
        name: &'static str,
        pool: Option<usize>,
        elapsed: Elapsed,
        ending: Ending,
    ) {
        #[cfg(feature = "latency")]
        {
            let ns = u64::try_from(elapsed.0.as_nanos()).unwrap_or(u64::MAX);
            let mut table = self.table.lock();
            table
                .commands
                .entry((proto, name))
                .or_default()
                .add(ns, ending);
            if let Some(pool) = pool {
                if table.pools.len() <= pool {
                    table.pools.resize_with(pool + 1, CommandTiming::default);
                }
                table.pools[pool].add(ns, ending);
            }
        }
    }

    /// Counts a request for `name` refused before it ran.
    #[cfg_attr(not(feature = "latency"), allow(unused_variables))]
    pub fn reject(&self, proto: Proto, name: &'static str) {
        #[cfg(feature = "latency")]
        {
            self.table
                .lock()
                .commands
                .entry((proto, name))
                .or_default()
                .rejected += 1;
        }
    }

    /// Forgets everything (`CONFIG RESETSTAT`, `stats reset`).
    pub fn reset(&self) {
        let mut table = self.table.lock();
        table.commands.clear();
        table.pools.clear();
    }

    /// Sums the per-pool tables of every worker: index = pool number (pools that saw no
    /// keyed command yet may be missing at the end).
    pub fn merged_pools<'a>(
        workers: impl IntoIterator<Item = &'a WorkerLatency>,
    ) -> Vec<CommandTiming> {
        let mut all: Vec<CommandTiming> = Vec::new();
        for worker in workers {
            let copy: Vec<CommandTiming> = worker.table.lock().pools.clone();
            if all.len() < copy.len() {
                all.resize_with(copy.len(), CommandTiming::default);
            }
            for (sum, part) in all.iter_mut().zip(&copy) {
                sum.merge(part);
            }
        }
        all
    }

    /// Sums the tables of every worker, sorted by protocol then name.
    pub fn merged<'a>(
        workers: impl IntoIterator<Item = &'a WorkerLatency>,
    ) -> BTreeMap<CommandKey, CommandTiming> {
        let mut all: BTreeMap<CommandKey, CommandTiming> = BTreeMap::new();
        for worker in workers {
            // Copy out under the lock, merge outside it: the worker waits only for the copy.
            let copy: Vec<(CommandKey, CommandTiming)> = worker
                .table
                .lock()
                .commands
                .iter()
                .map(|(key, timing)| (*key, timing.clone()))
                .collect();
            for (key, timing) in copy {
                all.entry(key).or_default().merge(&timing);
            }
        }
        all
    }
}

/// A measured duration (a newtype so a build without the `latency` feature can make it
/// empty).
#[derive(Debug, Clone, Copy)]
pub struct Elapsed(pub Duration);

/// Started after a request is parsed, read after its reply is queued.
///
/// `quanta` reads the CPU's time-stamp counter where it is invariant (falling back to the
/// monotonic clock elsewhere): a few nanoseconds a read where `clock_gettime` took ~25 ns on
/// our VM, and two reads per command are most of what timing costs (`record_cost` below).
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    #[cfg(feature = "latency")]
    started: quanta::Instant,
}

impl Timer {
    #[inline]
    pub fn start() -> Timer {
        Timer {
            #[cfg(feature = "latency")]
            started: quanta::Instant::now(),
        }
    }

    #[inline]
    pub fn elapsed(&self) -> Elapsed {
        #[cfg(feature = "latency")]
        {
            Elapsed(quanta::Instant::now().saturating_duration_since(self.started))
        }
        #[cfg(not(feature = "latency"))]
        {
            Elapsed(Duration::ZERO)
        }
    }
}

#[cfg(all(test, feature = "latency"))]
mod tests {
    use super::*;

    fn us(n: u64) -> Elapsed {
        Elapsed(Duration::from_micros(n))
    }

    #[test]
    fn workers_merge_and_quantiles_stay_within_one_percent() {
        let a = WorkerLatency::default();
        let b = WorkerLatency::default();
        for _ in 0..99 {
            a.record(Proto::Resp, "get", Some(1), us(100), Ending::Answered);
        }
        b.record(Proto::Resp, "get", Some(0), us(10_000), Ending::Failed);
        b.reject(Proto::Resp, "get");
        b.record(Proto::Memcache, "get", None, us(5), Ending::Answered);
        let all = WorkerLatency::merged([&a, &b]);
        let get = &all[&(Proto::Resp, "get")];
        assert_eq!((get.calls, get.failed, get.rejected), (100, 1, 1));
        assert_eq!(get.total_ns, 99 * 100_000 + 10_000_000);
        let p50 = get.quantile_us(0.5);
        assert!((99.0..=101.0).contains(&p50), "{p50}");
        let max = get.quantile_us(1.0);
        assert!((9_900.0..=10_100.0).contains(&max), "{max}");
        assert_eq!(all[&(Proto::Memcache, "get")].calls, 1);
        assert_eq!(get.count_at_most(200_000), 99);
        let pools = WorkerLatency::merged_pools([&a, &b]);
        assert_eq!((pools[0].calls, pools[1].calls), (1, 99));
        assert!((99.0..=101.0).contains(&pools[1].quantile_us(0.99)));
        a.reset();
        assert_eq!(
            WorkerLatency::merged([&a, &b])[&(Proto::Resp, "get")].calls,
            1
        );
    }

    #[test]
    fn ten_seconds_and_one_microsecond_are_both_told_apart() {
        let w = WorkerLatency::default();
        w.record(Proto::Http, "get", None, us(1), Ending::Answered);
        w.record(
            Proto::Http,
            "get",
            None,
            Elapsed(Duration::from_secs(10)),
            Ending::Answered,
        );
        let all = WorkerLatency::merged([&w]);
        let t = &all[&(Proto::Http, "get")];
        assert!((0.99..=1.01).contains(&t.quantile_us(0.0)));
        let top = t.quantile_us(1.0);
        assert!((9_900_000.0..=10_100_000.0).contains(&top), "{top}");
    }
}

/// What timing one command costs on the hot path (two clock reads, the table's lock, the
/// lookup and the histogram): `cargo test --release --lib -- --ignored --nocapture
/// record_cost`. Prints nanoseconds per command; asserts nothing about speed (the machine
/// decides that), only that every call was counted.
#[cfg(all(test, feature = "latency"))]
mod cost {
    use super::*;

    #[test]
    #[ignore = "a measurement, run by hand"]
    fn record_cost() {
        let table = WorkerLatency::default();
        const N: u64 = 5_000_000;
        let names = ["get", "set", "mg", "ms"];
        let started = std::time::Instant::now();
        for i in 0..N {
            let timer = Timer::start();
            let name = names[(i % 4) as usize];
            table.record(
                Proto::Memcache,
                name,
                Some(0),
                timer.elapsed(),
                Ending::Answered,
            );
        }
        let per_call = started.elapsed().as_nanos() as f64 / N as f64;
        let clock_started = std::time::Instant::now();
        for _ in 0..N {
            std::hint::black_box(Timer::start().elapsed());
        }
        let clock = clock_started.elapsed().as_nanos() as f64 / N as f64;
        println!(
            "record_cost: {per_call:.1} ns per command, of which {clock:.1} ns two clock reads"
        );
        let all = WorkerLatency::merged([&table]);
        assert_eq!(all.values().map(|t| t.calls).sum::<u64>(), N);
    }
}
