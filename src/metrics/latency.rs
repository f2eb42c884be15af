//! Per-command and per-pool calls, errors and latency histograms, per worker, merged when
//! read.
//!
//! Each worker (and the HTTP thread) owns one [`WorkerLatency`] and is its only writer; no
//! lock is taken on the hot path. Every command the server knows has a slot, found through a
//! read-only [`Registry`] built at start; a slot is allocated on the command's first use
//! (`OnceLock`) and then only its atomics are touched: one relaxed `fetch_add` on the
//! histogram bucket, relaxed loads and stores for the sum and the error count (one writer, so
//! no update is lost; a concurrent `stats reset` may lose a few). A command missing from the
//! registry (none should be) still counts, through a mutex-held overflow table.
//!
//! A latency runs from the request parsed to its reply queued in the output buffer, so it does
//! not include the time a request waits in the socket or its reply waits to be flushed. Commands
//! served straight off a connection's input are timed on a lap clock ([`WorkerLatency::lap_start`],
//! [`WorkerLatency::lap_stop`]): one clock read per command, not two, because the reading that
//! ends one command starts the next one of the same turn (a pipelined batch). The first command
//! of a turn starts after its parse; a later one starts when the previous reply was queued, so
//! its latency also holds its own parse and the server's step to it (tens of nanoseconds, and
//! the wait for the worker's gate if a script or a `FLUSHALL` holds it, which the client waited
//! too). A request refused before it ran (a parse error, an ACL denial) is not timed, and its
//! parse counts in the next command's latency. Other paths (EXEC's queued commands, scripts'
//! calls, HTTP) start a [`Timer`] after the parse and read it after the encoder.
//!
//! Histograms are the `histogram` crate's (pelikan's) log-linear buckets, grouping power 7:
//! ≤ 0.78 % error, exact below 128 ns, up to 2^36 ns (68 s). Readers get the crate's
//! [`Histogram`] (percentiles, merging); the writer keeps the buckets itself, because the
//! crate's `AtomicHistogram` counts with a locked `fetch_add` where a table's one writer needs
//! only a load and a store, and the bucket of a latency is found once per command for both
//! its command's and its pool's table. The crate keeps its value-to-bucket function private,
//! so [`bucket_index`] restates it, and a test checks it against the crate value by value. Built without the `latency`
//! feature, [`Timer`] is empty and nothing is recorded (the benchmark's "compiled out" build).
//!
//! Never: allocate or lock on the hot path once a command has been seen.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use histogram::Histogram;

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

/// Buckets: 2^7 per power of two (≤ 0.78 % error), values up to 2^36 ns (longer ones count
/// in the last bucket).
const GROUPING_POWER: u8 = 7;
const MAX_VALUE_POWER: u8 = 36;
#[cfg(feature = "latency")]
const HIGHEST_NS: u64 = (1 << MAX_VALUE_POWER) - 1;
/// Buckets of a histogram with these parameters: 2^(p+1) exact ones below 2^(p+1), then
/// 2^p per power of two up to 2^36 (`histogram::Config::total_buckets`).
const BUCKETS: usize = (1 << (GROUPING_POWER + 1))
    + (MAX_VALUE_POWER - GROUPING_POWER - 1) as usize * (1 << GROUPING_POWER);

/// The bucket of `ns` in a `histogram` crate histogram of [`GROUPING_POWER`] and
/// [`MAX_VALUE_POWER`] (its `Config::value_to_index`, which the crate does not export);
/// values past the last bucket count in it.
#[cfg(feature = "latency")]
#[inline]
fn bucket_index(ns: u64) -> usize {
    let value = ns.min(HIGHEST_NS);
    let cutoff_power = u32::from(GROUPING_POWER) + 1;
    if value < 1 << cutoff_power {
        return value as usize;
    }
    let power = 63 - value.leading_zeros();
    let offset = (value - (1 << power)) >> (power - u32::from(GROUPING_POWER));
    (1usize << cutoff_power)
        + ((power - cutoff_power) as usize) * (1 << GROUPING_POWER)
        + offset as usize
}

fn empty_histogram() -> Histogram {
    Histogram::new(GROUPING_POWER, MAX_VALUE_POWER).expect("7 and 36 are valid parameters")
}

/// Key of a command: its protocol and its name.
pub type CommandKey = (Proto, &'static str);

/// Every command the server can time, numbered (built once at start, read-only after).
pub struct Registry {
    keys: Vec<CommandKey>,
    index: hashbrown::HashMap<CommandKey, usize, crate::hashing::IndexHasher>,
    /// Per protocol, the slot of each key in the order it was handed in (duplicates
    /// included), so a command layer that knows a command's place in its own list
    /// ([`WorkerLatency::record_nth`]) finds its slot without hashing the name.
    listed: [Vec<usize>; 4],
}

impl Registry {
    pub fn new(keys: impl IntoIterator<Item = CommandKey>) -> Registry {
        let mut registry = Registry {
            keys: Vec::new(),
            index: hashbrown::HashMap::default(),
            listed: Default::default(),
        };
        for key in keys {
            let slot = match registry.index.get(&key) {
                Some(&slot) => slot,
                None => {
                    let slot = registry.keys.len();
                    registry.index.insert(key, slot);
                    registry.keys.push(key);
                    slot
                }
            };
            registry.listed[key.0 as usize].push(slot);
        }
        registry
    }

    /// The slot of the `nth` key handed in for `proto`, when that key is `name` (the very
    /// same `&'static str`: a pointer comparison, not a string one).
    #[inline]
    pub fn nth(&self, proto: Proto, nth: usize, name: &'static str) -> Option<usize> {
        let slot = *self.listed[proto as usize].get(nth)?;
        let listed = self.keys[slot].1;
        (listed.as_ptr() == name.as_ptr() && listed.len() == name.len()).then_some(slot)
    }
}

/// One command's (or pool's) counters on one worker.
struct Slot {
    /// Counts per bucket, in the `histogram` crate's layout ([`bucket_index`]).
    buckets: Box<[AtomicU64]>,
    total_ns: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total_ns: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Only the owning worker calls this: a load and a store cannot lose its own updates.
    #[cfg(feature = "latency")]
    #[inline]
    fn add(&self, bucket: usize, ns: u64, ending: Ending) {
        if let Some(count) = self.buckets.get(bucket) {
            bump(count, 1);
        }
        bump(&self.total_ns, ns);
        if ending == Ending::Failed {
            bump(&self.failed, 1);
        }
    }

    fn timing(&self) -> CommandTiming {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .collect();
        let histogram = Histogram::from_buckets(GROUPING_POWER, MAX_VALUE_POWER, counts)
            .expect("BUCKETS is the crate's bucket count for these parameters");
        CommandTiming {
            calls: histogram.as_slice().iter().sum(),
            failed: self.failed.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            total_ns: self.total_ns.load(Ordering::Relaxed),
            histogram,
        }
    }
}

/// Adds `n` to a counter only this thread writes (no locked instruction).
#[cfg(feature = "latency")]
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
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
    pub histogram: Histogram,
}

impl Default for CommandTiming {
    fn default() -> Self {
        CommandTiming {
            calls: 0,
            failed: 0,
            rejected: 0,
            total_ns: 0,
            histogram: empty_histogram(),
        }
    }
}

impl CommandTiming {
    fn merge(&mut self, other: &CommandTiming) {
        self.calls += other.calls;
        self.failed += other.failed;
        self.rejected += other.rejected;
        self.total_ns = self.total_ns.wrapping_add(other.total_ns);
        // Same parameters on both sides, so adding cannot fail.
        if let Ok(sum) = self.histogram.wrapping_add(&other.histogram) {
            self.histogram = sum;
        }
    }

    /// The latency below which `quantile` (0..=1) of the calls fell, in microseconds (the
    /// upper bound of its bucket; 0 with no calls).
    pub fn quantile_us(&self, quantile: f64) -> f64 {
        match self
            .histogram
            .percentile((quantile * 100.0).clamp(0.0, 100.0))
        {
            Ok(Some(bucket)) => bucket.end() as f64 / 1000.0,
            _ => 0.0,
        }
    }

    /// How many calls took at most `ns` nanoseconds (whole buckets; ≤ 0.78 % off in value).
    pub fn count_at_most(&self, ns: u64) -> u64 {
        self.histogram
            .iter()
            .take_while(|bucket| bucket.end() <= ns)
            .map(|bucket| bucket.count())
            .sum()
    }
}

/// The upper bounds (ns) of the cumulative buckets that `LATENCY HISTOGRAM` and `/metrics`
/// show: 1024 ns doubling up to ~69 s (past the 68 s a histogram holds), the bounds Redis's
/// `LATENCY HISTOGRAM` walks (`hdr_iter_log_init(.., 1024, 2)` in `latency.c`).
pub fn bucket_bounds_ns() -> impl Iterator<Item = u64> {
    (0..=26).map(|k| 1024u64 << k)
}

/// One worker's per-command and per-pool tables. Aligned to 128 bytes as
/// [`super::WorkerStats`], so two workers' tables never share a cache line.
#[repr(align(128))]
pub struct WorkerLatency {
    registry: Arc<Registry>,
    commands: Box<[OnceLock<Box<Slot>>]>,
    pools: Box<[OnceLock<Box<Slot>>]>,
    /// Commands missing from the registry (a bug if ever used, but still counted).
    overflow: parking_lot::Mutex<hashbrown::HashMap<CommandKey, Box<Slot>>>,
    /// The clock of the lap timer (the TSC where quanta finds it invariant).
    #[cfg(feature = "latency")]
    clock: quanta::Clock,
    /// The lap clock's raw reading when the current turn's last command was queued; 0 at
    /// the start of a turn. Only the owning worker touches it.
    #[cfg(feature = "latency")]
    lap: AtomicU64,
}

impl Default for WorkerLatency {
    /// A table with no registered command and no pool (tests).
    fn default() -> Self {
        WorkerLatency::new(Arc::new(Registry::new([])), 0)
    }
}

impl WorkerLatency {
    pub fn new(registry: Arc<Registry>, pools: usize) -> WorkerLatency {
        WorkerLatency {
            commands: (0..registry.keys.len()).map(|_| OnceLock::new()).collect(),
            pools: (0..pools).map(|_| OnceLock::new()).collect(),
            registry,
            overflow: parking_lot::Mutex::new(hashbrown::HashMap::default()),
            #[cfg(feature = "latency")]
            clock: quanta::Clock::new(),
            #[cfg(feature = "latency")]
            lap: AtomicU64::new(0),
        }
    }

    /// Starts a connection's turn: its first command's lap starts afresh, not at the end of
    /// another connection's last command (the server calls this before serving a turn).
    #[inline]
    pub fn new_turn(&self) {
        #[cfg(feature = "latency")]
        self.lap.store(0, Ordering::Relaxed);
    }

    /// Starts timing a command served off a connection's input: at the end of the turn's
    /// previous command, or now for the turn's first one.
    #[inline]
    pub fn lap_start(&self) -> Lap {
        #[cfg(feature = "latency")]
        {
            let last = self.lap.load(Ordering::Relaxed);
            Lap {
                started: if last == 0 { self.clock.raw() } else { last },
            }
        }
        #[cfg(not(feature = "latency"))]
        Lap {}
    }

    /// Stops a lap: the command's latency; the reading also starts the turn's next command.
    #[inline]
    #[cfg_attr(not(feature = "latency"), allow(unused_variables))]
    pub fn lap_stop(&self, lap: Lap) -> Elapsed {
        #[cfg(feature = "latency")]
        {
            // A raw reading of 0 would read as "no lap": nudge it (one tick, once in 2^64).
            let now = self.clock.raw().max(1);
            self.lap.store(now, Ordering::Relaxed);
            Elapsed(Duration::from_nanos(
                self.clock.delta_as_nanos(lap.started, now),
            ))
        }
        #[cfg(not(feature = "latency"))]
        Elapsed(Duration::ZERO)
    }

    /// A slot for a command or pool seen for the first time. Allocating it (30 KiB of
    /// buckets) comes after the lap clock stopped for the command being recorded: the lap
    /// restarts, so the next command is not charged for it.
    #[cold]
    fn new_slot(&self) -> Box<Slot> {
        let slot = Box::new(Slot::new());
        self.new_turn();
        slot
    }

    /// Runs `update` on the slot of `key`, creating it on first use.
    #[cfg_attr(not(feature = "latency"), allow(dead_code))]
    fn with_slot(&self, key: CommandKey, update: impl FnOnce(&Slot)) {
        match self.registry.index.get(&key) {
            Some(&i) => update(self.commands[i].get_or_init(|| self.new_slot())),
            None => update(
                self.overflow
                    .lock()
                    .entry(key)
                    .or_insert_with(|| self.new_slot()),
            ),
        }
    }

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
            let bucket = bucket_index(ns);
            self.with_slot((proto, name), |slot| slot.add(bucket, ns, ending));
            self.add_to_pool(pool, bucket, ns, ending);
        }
    }

    /// As [`Self::record`], for the command `name` that was the `nth` key of `proto` handed
    /// to the [`Registry`]: no hashing of the name on the hot path.
    #[cfg_attr(not(feature = "latency"), allow(unused_variables))]
    #[inline]
    pub fn record_nth(
        &self,
        proto: Proto,
        nth: usize,
        name: &'static str,
        pool: Option<usize>,
        elapsed: Elapsed,
        ending: Ending,
    ) {
        #[cfg(feature = "latency")]
        {
            let ns = u64::try_from(elapsed.0.as_nanos()).unwrap_or(u64::MAX);
            let bucket = bucket_index(ns);
            match self.registry.nth(proto, nth, name) {
                Some(i) => self.commands[i]
                    .get_or_init(|| self.new_slot())
                    .add(bucket, ns, ending),
                None => self.with_slot((proto, name), |slot| slot.add(bucket, ns, ending)),
            }
            self.add_to_pool(pool, bucket, ns, ending);
        }
    }

    /// Counts a run in the slot of `pool` (the command's first key's pool), if it named one.
    #[cfg(feature = "latency")]
    #[inline]
    fn add_to_pool(&self, pool: Option<usize>, bucket: usize, ns: u64, ending: Ending) {
        if let Some(slot) = pool.and_then(|pool| self.pools.get(pool)) {
            slot.get_or_init(|| self.new_slot()).add(bucket, ns, ending);
        }
    }

    /// Counts a run of `name` that was answered (and counted) when it blocked, and later
    /// failed: a blocked client woken with an error (Redis's `updateStatsOnUnblock`).
    #[cfg_attr(not(feature = "latency"), allow(unused_variables))]
    pub fn fail_after_block(&self, proto: Proto, name: &'static str) {
        #[cfg(feature = "latency")]
        self.with_slot((proto, name), |slot| bump(&slot.failed, 1));
    }

    /// Counts a request for `name` refused before it ran.
    #[cfg_attr(not(feature = "latency"), allow(unused_variables))]
    pub fn reject(&self, proto: Proto, name: &'static str) {
        #[cfg(feature = "latency")]
        self.with_slot((proto, name), |slot| bump(&slot.rejected, 1));
    }

    /// Zeroes everything (`CONFIG RESETSTAT`, `stats reset`); updates racing with it from
    /// the owning worker may survive.
    pub fn reset(&self) {
        let slots = self.commands.iter().chain(self.pools.iter());
        for slot in slots.filter_map(OnceLock::get) {
            let counters = [&slot.total_ns, &slot.failed, &slot.rejected];
            for counter in slot.buckets.iter().chain(counters) {
                counter.store(0, Ordering::Relaxed);
            }
        }
        self.overflow.lock().clear();
    }

    /// Sums the tables of every worker, sorted by protocol then name; commands never run are
    /// left out.
    pub fn merged<'a>(
        workers: impl IntoIterator<Item = &'a WorkerLatency>,
    ) -> BTreeMap<CommandKey, CommandTiming> {
        let mut all: BTreeMap<CommandKey, CommandTiming> = BTreeMap::new();
        for worker in workers {
            for (i, slot) in worker.commands.iter().enumerate() {
                if let Some(slot) = slot.get() {
                    let timing = slot.timing();
                    if timing.calls + timing.rejected > 0 {
                        all.entry(worker.registry.keys[i])
                            .or_default()
                            .merge(&timing);
                    }
                }
            }
            for (key, slot) in worker.overflow.lock().iter() {
                all.entry(*key).or_default().merge(&slot.timing());
            }
        }
        all
    }

    /// Sums the per-pool tables of every worker: index = pool number.
    pub fn merged_pools<'a>(
        workers: impl IntoIterator<Item = &'a WorkerLatency>,
    ) -> Vec<CommandTiming> {
        let mut all: Vec<CommandTiming> = Vec::new();
        for worker in workers {
            if all.len() < worker.pools.len() {
                all.resize_with(worker.pools.len(), CommandTiming::default);
            }
            for (sum, slot) in all.iter_mut().zip(worker.pools.iter()) {
                if let Some(slot) = slot.get() {
                    sum.merge(&slot.timing());
                }
            }
        }
        all
    }
}

/// A lap of [`WorkerLatency`]'s clock: one command's start (empty without the `latency`
/// feature).
#[derive(Debug, Clone, Copy)]
pub struct Lap {
    #[cfg(feature = "latency")]
    started: u64,
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

    fn table() -> WorkerLatency {
        let registry = Registry::new([(Proto::Resp, "get"), (Proto::Http, "get")]);
        WorkerLatency::new(Arc::new(registry), 2)
    }

    #[test]
    fn workers_merge_and_quantiles_stay_within_one_percent() {
        let a = table();
        let b = table();
        for _ in 0..99 {
            a.record(Proto::Resp, "get", Some(1), us(100), Ending::Answered);
        }
        b.record(Proto::Resp, "get", Some(0), us(10_000), Ending::Failed);
        b.reject(Proto::Resp, "get");
        // Not registered: counted through the overflow table.
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
        assert_eq!(get.count_at_most(20_000_000), 100);
        let pools = WorkerLatency::merged_pools([&a, &b]);
        assert_eq!((pools[0].calls, pools[1].calls), (1, 99));
        assert!((99.0..=101.0).contains(&pools[1].quantile_us(0.99)));
        assert!(
            !all.contains_key(&(Proto::Http, "get")),
            "never run: left out"
        );
        a.reset();
        b.reset();
        assert!(WorkerLatency::merged([&a, &b]).is_empty());
    }

    #[test]
    fn a_lap_starts_where_the_turns_previous_command_stopped() {
        let w = table();
        w.new_turn();
        let first = w.lap_start();
        std::thread::sleep(Duration::from_millis(2));
        let took = w.lap_stop(first);
        assert!(took.0 >= Duration::from_millis(2), "{took:?}");
        let second = w.lap_start();
        assert_eq!(second.started, w.lap.load(Ordering::Relaxed));
        assert!(second.started >= first.started);
        // A new turn (another connection) starts from its own first reading.
        w.new_turn();
        std::thread::sleep(Duration::from_millis(2));
        let third = w.lap_start();
        let quick = w.lap_stop(third);
        assert!(quick.0 < Duration::from_millis(2), "{quick:?}");
        // Recording a command seen for the first time allocates its tables after the clock
        // stopped: the lap restarts, so the next command is not charged for it.
        w.record(Proto::Resp, "get", Some(0), quick, Ending::Answered);
        assert_eq!(w.lap.load(Ordering::Relaxed), 0);
        let fourth = w.lap_start();
        w.record(
            Proto::Resp,
            "get",
            Some(0),
            w.lap_stop(fourth),
            Ending::Answered,
        );
        assert_ne!(w.lap.load(Ordering::Relaxed), 0, "seen before: no restart");
    }

    #[test]
    fn record_nth_finds_the_slot_by_place_and_falls_back_by_name() {
        static NAMES: [&str; 2] = ["get", "set"];
        let registry = Registry::new(NAMES.iter().map(|name| (Proto::Memcache, *name)));
        assert_eq!(registry.nth(Proto::Memcache, 1, NAMES[1]), Some(1));
        assert_eq!(registry.nth(Proto::Memcache, 0, NAMES[1]), None);
        assert_eq!(registry.nth(Proto::Resp, 0, NAMES[0]), None);
        let w = WorkerLatency::new(Arc::new(registry), 1);
        w.record_nth(
            Proto::Memcache,
            1,
            NAMES[1],
            Some(0),
            us(3),
            Ending::Answered,
        );
        // A wrong place still counts under the right name, through the name's hash.
        w.record_nth(Proto::Memcache, 0, NAMES[1], None, us(3), Ending::Failed);
        let all = WorkerLatency::merged([&w]);
        let set = &all[&(Proto::Memcache, "set")];
        assert_eq!((set.calls, set.failed), (2, 1));
        assert!(!all.contains_key(&(Proto::Memcache, "get")));
        assert_eq!(WorkerLatency::merged_pools([&w])[0].calls, 1);
    }

    /// `bucket_index` puts every value where the crate's own histogram puts it: each value
    /// below 2^20 ns, then the edges and a spread of each power of two up to past 2^36.
    #[test]
    fn bucket_index_agrees_with_the_histogram_crate() {
        let mut crate_histogram = empty_histogram();
        assert_eq!(crate_histogram.as_slice().len(), BUCKETS);
        // The crate counts the value; ours must name the bucket it counted in (which then
        // goes back to 0, so the histogram stays empty between values).
        let check = |histogram: &mut Histogram, value: u64| {
            histogram
                .increment(value.min(HIGHEST_NS))
                .expect("in range");
            let bucket = &mut histogram.as_mut_slice()[bucket_index(value)];
            assert_eq!(*bucket, 1, "value {value}");
            *bucket = 0;
        };
        for value in 0..1 << 20 {
            check(&mut crate_histogram, value);
        }
        for power in 20..=40u32 {
            let base = 1u64 << power;
            for step in 0..=1000u64 {
                let value = base + step * (base / 1000);
                check(&mut crate_histogram, value - 1);
                check(&mut crate_histogram, value);
            }
        }
        check(&mut crate_histogram, u64::MAX);
        assert!(crate_histogram.as_slice().iter().all(|&n| n == 0));
    }

    #[test]
    fn ten_seconds_and_one_microsecond_are_both_told_apart() {
        let w = table();
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
        let low = t.quantile_us(0.0);
        assert!((0.99..=1.01).contains(&low), "{low}");
        let top = t.quantile_us(1.0);
        assert!((9_900_000.0..=10_100_000.0).contains(&top), "{top}");
    }
}

/// What timing one command costs on the hot path (two clock reads, the registry lookup, the
/// histogram bucket and the sum): `cargo test --release --lib -- --ignored --nocapture
/// record_cost`. Prints nanoseconds per command; asserts nothing about speed (the machine
/// decides that), only that every call was counted.
#[cfg(all(test, feature = "latency"))]
mod cost {
    use super::*;

    #[test]
    #[ignore = "a measurement, run by hand"]
    fn record_cost() {
        static NAMES: [&str; 4] = ["get", "set", "mg", "ms"];
        let registry = Registry::new(NAMES.iter().map(|name| (Proto::Memcache, *name)));
        let table = WorkerLatency::new(Arc::new(registry), 1);
        const N: u64 = 5_000_000;
        // Other paths (EXEC's queued commands, scripts, HTTP): two clock reads, by name.
        let started = std::time::Instant::now();
        for i in 0..N {
            let timer = Timer::start();
            let name = NAMES[(i % 4) as usize];
            table.record(
                Proto::Memcache,
                name,
                Some(0),
                timer.elapsed(),
                Ending::Answered,
            );
        }
        let by_name = started.elapsed().as_nanos() as f64 / N as f64;
        // A connection's turn: the lap clock, one read per command, the slot by place.
        let started = std::time::Instant::now();
        table.new_turn();
        for i in 0..N {
            let lap = table.lap_start();
            let nth = (i % 4) as usize;
            let elapsed = table.lap_stop(lap);
            table.record_nth(
                Proto::Memcache,
                nth,
                NAMES[nth],
                Some(0),
                elapsed,
                Ending::Answered,
            );
        }
        let lapped = started.elapsed().as_nanos() as f64 / N as f64;
        let clock_started = std::time::Instant::now();
        for _ in 0..N {
            std::hint::black_box(Timer::start().elapsed());
        }
        let clock = clock_started.elapsed().as_nanos() as f64 / N as f64;
        println!(
            "record_cost: {lapped:.1} ns per command on the lap clock; {by_name:.1} ns with a \
             timer and the name (of which {clock:.1} ns two clock reads)"
        );
        let all = WorkerLatency::merged([&table]);
        assert_eq!(all.values().map(|t| t.calls).sum::<u64>(), 2 * N);
    }
}
