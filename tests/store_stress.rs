//! Multi-threaded stress of the store's public API, independent of the engine behind it.
//!
//! Four writers, each owning its own range of keys, write values that carry their key, a
//! version (one counter per key, only ever growing) and a checksum, at random lengths; now and
//! then they delete a key or rewrite it with a cas compare. Four readers read random keys at
//! the same time and check that every value they see is whole (checksum), belongs to the key
//! they asked for, is never older than a write already acknowledged before the read started,
//! and never goes back to an older version than that reader saw before. At the end every
//! writer's last acknowledged write of each key must be what the store holds, unless the
//! store counted evictions (then the item may be missing, but never wrong).
//!
//! Each test runs for about two seconds (a deadline checked by every loop, and an operation
//! cap per thread as a second bound).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrocache::store::{
    Delete, EvictionPolicy, Expiry, Mutation, Outcome, ReadOptions, StaleCas, Store, StoreConfig,
    Write, WriteMode,
};

const WRITERS: usize = 4;
const READERS: usize = 4;
const KEYS_PER_WRITER: usize = 512;
const RUN_FOR: Duration = Duration::from_secs(2);
/// A second bound on every thread's loop, whatever the clock does.
const MAX_OPS_PER_THREAD: u64 = 5_000_000;
/// Random payload length range (the value adds a header and a checksum).
const MAX_PAYLOAD: usize = 5_000;
const ITEM_SIZE_MAX: usize = 1024 * 1024;
/// Far more than every key at its largest value (2,048 keys of ~5 KB).
const NO_EVICTION_LIMIT: usize = 256 * 1024 * 1024;
/// About a fifth of what the keys take at their average size: eviction all the time.
const EVICTION_LIMIT: usize = 2 * 1024 * 1024;
/// How many failures a thread reports before it stops looking.
const MAX_REPORTED: usize = 10;

/// The one place a test store is configured.
fn new_store(limit: usize) -> Store {
    Store::new(StoreConfig {
        memory_limit_bytes: limit,
        item_size_max: ITEM_SIZE_MAX,
        eviction: EvictionPolicy::AllKeysLru,
        ..StoreConfig::default()
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn key_of(writer: usize, index: usize) -> Vec<u8> {
    format!("stress:w{writer}:k{index}").into_bytes()
}

/// xorshift64*: a small deterministic generator per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for &byte in bytes {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// `version (8 LE) | key length (2 LE) | key | payload | fnv1a of all before (8 LE)`.
fn encode(key: &[u8], version: u64, payload_len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut value = Vec::with_capacity(18 + key.len() + payload_len + 8);
    value.extend_from_slice(&version.to_le_bytes());
    value.extend_from_slice(&(key.len() as u16).to_le_bytes());
    value.extend_from_slice(key);
    while value.len() < 10 + key.len() + payload_len {
        value.extend_from_slice(&rng.next().to_le_bytes());
    }
    value.truncate(10 + key.len() + payload_len);
    let sum = fnv1a(&value);
    value.extend_from_slice(&sum.to_le_bytes());
    value
}

/// The version in `value`, if it is whole and was written for `key`.
fn decode(key: &[u8], value: &[u8]) -> Result<u64, String> {
    if value.len() < 18 {
        return Err(format!("value of {} bytes is too short", value.len()));
    }
    let (body, sum) = value.split_at(value.len() - 8);
    if fnv1a(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
        return Err(format!(
            "checksum mismatch in a value of {} bytes",
            value.len()
        ));
    }
    let version = u64::from_le_bytes(body[..8].try_into().unwrap());
    let key_len = u16::from_le_bytes(body[8..10].try_into().unwrap()) as usize;
    let stored_key = body
        .get(10..10 + key_len)
        .ok_or("key length past the end")?;
    if stored_key != key {
        return Err(format!(
            "value belongs to key {:?}",
            String::from_utf8_lossy(stored_key)
        ));
    }
    Ok(version)
}

/// A key's state as the writer publishes it: `version << 1 | deleted`, 0 = never written.
fn state(version: u64, deleted: bool) -> u64 {
    (version << 1) | deleted as u64
}

struct Shared {
    store: Store,
    /// Per key: the state of the write the writer has started (stored before `apply`).
    issued: Vec<AtomicU64>,
    /// Per key: the state of the last write `apply` acknowledged (stored after it returned).
    acked: Vec<AtomicU64>,
}

impl Shared {
    fn slot(writer: usize, index: usize) -> usize {
        writer * KEYS_PER_WRITER + index
    }
    fn evictions(&self) -> u64 {
        self.store.stats().evictions
    }
}

#[derive(Default)]
struct Report {
    ops: u64,
    failures: Vec<String>,
}

impl Report {
    fn fail(&mut self, message: String) {
        if self.failures.len() < MAX_REPORTED {
            self.failures.push(message);
        }
    }
}

fn writer(shared: &Shared, me: usize, deadline: Instant) -> Report {
    let mut rng = Rng::new(1000 + me as u64);
    let mut report = Report::default();
    // The last version this writer gave each of its keys.
    let mut versions = vec![0u64; KEYS_PER_WRITER];
    while Instant::now() < deadline && report.ops < MAX_OPS_PER_THREAD {
        report.ops += 1;
        let index = rng.below(KEYS_PER_WRITER);
        let slot = Shared::slot(me, index);
        let key = key_of(me, index);
        let previous = shared.acked[slot].load(Ordering::SeqCst);
        let version = versions[index] + 1;
        versions[index] = version;
        let roll = rng.below(100);
        let now = now_ms();
        if roll < 5 {
            // Delete.
            shared.issued[slot].store(state(version, true), Ordering::SeqCst);
            let outcome = shared.store.apply(
                Mutation::Delete(Delete {
                    key: &key,
                    compare_cas: None,
                    new_cas: None,
                    invalidate: None,
                }),
                now,
            );
            let was_present = previous != 0 && previous & 1 == 0;
            match outcome {
                Outcome::Deleted => {}
                Outcome::NotFound if !was_present || shared.evictions() > 0 => {}
                other => report.fail(format!(
                    "writer {me}: delete of {:?} (last state {previous:#x}) answered {other:?}",
                    String::from_utf8_lossy(&key)
                )),
            }
            shared.acked[slot].store(state(version, true), Ordering::SeqCst);
            continue;
        }
        // Set, or with 10% chance a cas rewrite of the current value.
        let compare_cas = if roll < 15 {
            shared.store.get(&key, now, ReadOptions::plain(), |view| {
                view.map(|v| v.cas())
            })
        } else {
            None
        };
        let value = encode(&key, version, 1 + rng.below(MAX_PAYLOAD), &mut rng);
        shared.issued[slot].store(state(version, false), Ordering::SeqCst);
        let outcome = shared.store.apply(
            Mutation::Write(Write {
                key: &key,
                value: &value,
                flags: me as u32,
                expiry: Expiry::Never,
                mode: WriteMode::Set,
                compare_cas,
                new_cas: None,
                stale_cas: StaleCas::Refuse,
            }),
            now,
        );
        match outcome {
            Outcome::Stored { .. } => {
                shared.acked[slot].store(state(version, false), Ordering::SeqCst);
            }
            // Only this writer writes the key: a cas it just read can only have gone with
            // the item, by eviction.
            Outcome::NotFound if compare_cas.is_some() && shared.evictions() > 0 => {
                shared.acked[slot].store(state(version, true), Ordering::SeqCst);
            }
            other => {
                report.fail(format!(
                    "writer {me}: set of {:?} version {version} (cas {compare_cas:?}) \
                     answered {other:?}",
                    String::from_utf8_lossy(&key)
                ));
                // Keep the published state truthful: the write may or may not have happened.
                shared.acked[slot].store(state(version, true), Ordering::SeqCst);
            }
        }
    }
    report
}

fn reader(shared: &Shared, me: usize, deadline: Instant) -> Report {
    let mut rng = Rng::new(2000 + me as u64);
    let mut report = Report::default();
    // The highest version this reader saw of each key.
    let mut seen = vec![0u64; WRITERS * KEYS_PER_WRITER];
    while Instant::now() < deadline && report.ops < MAX_OPS_PER_THREAD {
        report.ops += 1;
        let (owner, index) = (rng.below(WRITERS), rng.below(KEYS_PER_WRITER));
        let slot = Shared::slot(owner, index);
        let key = key_of(owner, index);
        let acked_before = shared.acked[slot].load(Ordering::SeqCst);
        let read = shared
            .store
            .get(&key, now_ms(), ReadOptions::plain(), |view| {
                view.map(|view| (view.value().to_vec(), view.flags()))
            });
        let issued_after = shared.issued[slot].load(Ordering::SeqCst);
        let name = String::from_utf8_lossy(&key);
        let Some((value, flags)) = read else {
            // Missing: fine if deleted, never written, evicted, or a delete was under way.
            let acked_present = acked_before != 0 && acked_before & 1 == 0;
            if acked_present && issued_after == acked_before && shared.evictions() == 0 {
                report.fail(format!(
                    "reader {me}: {name} is missing, but version {} was acknowledged before \
                     the read, nothing newer was started and nothing was evicted",
                    acked_before >> 1
                ));
            }
            continue;
        };
        let version = match decode(&key, &value) {
            Ok(version) => version,
            Err(why) => {
                report.fail(format!("reader {me}: {name}: torn or foreign value: {why}"));
                continue;
            }
        };
        if flags != owner as u32 {
            report.fail(format!(
                "reader {me}: {name} version {version} has flags {flags}, written with {owner}"
            ));
        }
        // Not older than what was acknowledged before the read began (a deletion of version
        // v means only versions above v may show).
        let floor = (acked_before >> 1) + (acked_before & 1);
        if version < floor {
            report.fail(format!(
                "reader {me}: {name} reads version {version}, but state {acked_before:#x} \
                 (version {}, deleted {}) was acknowledged before the read",
                acked_before >> 1,
                acked_before & 1
            ));
        }
        if version > issued_after >> 1 {
            report.fail(format!(
                "reader {me}: {name} reads version {version}, which was never written"
            ));
        }
        if version < seen[slot] {
            report.fail(format!(
                "reader {me}: {name} went back from version {} to {version}",
                seen[slot]
            ));
        }
        seen[slot] = seen[slot].max(version);
    }
    report
}

/// Runs the writers and readers against a store of `limit` bytes, then checks the final
/// state; panics with the failures, else returns the evictions counted and the bytes held.
fn stress(limit: usize) -> (u64, u64) {
    let shared = Arc::new(Shared {
        store: new_store(limit),
        issued: (0..WRITERS * KEYS_PER_WRITER)
            .map(|_| AtomicU64::new(0))
            .collect(),
        acked: (0..WRITERS * KEYS_PER_WRITER)
            .map(|_| AtomicU64::new(0))
            .collect(),
    });
    let deadline = Instant::now() + RUN_FOR;
    let writers: Vec<_> = (0..WRITERS)
        .map(|me| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || writer(&shared, me, deadline))
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|me| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || reader(&shared, me, deadline))
        })
        .collect();
    let mut failures = Vec::new();
    let (mut writes, mut reads) = (0, 0);
    for handle in writers {
        let report = handle.join().expect("writer panicked");
        writes += report.ops;
        failures.extend(report.failures);
    }
    for handle in readers {
        let report = handle.join().expect("reader panicked");
        reads += report.ops;
        failures.extend(report.failures);
    }

    // Every key now holds the last acknowledged write, unless evictions were counted.
    let stats = shared.store.stats();
    let now = now_ms();
    let mut missing = 0;
    for owner in 0..WRITERS {
        for index in 0..KEYS_PER_WRITER {
            let slot = Shared::slot(owner, index);
            let key = key_of(owner, index);
            let last = shared.acked[slot].load(Ordering::SeqCst);
            let read = shared.store.get(&key, now, ReadOptions::plain(), |view| {
                view.map(|view| view.value().to_vec())
            });
            let name = String::from_utf8_lossy(&key);
            match (last, read) {
                (_, None) if last == 0 || last & 1 == 1 => {}
                (_, None) => {
                    missing += 1;
                    if stats.evictions == 0 {
                        failures.push(format!(
                            "end: {name} is missing, last acknowledged version {}, no evictions",
                            last >> 1
                        ));
                    }
                }
                (_, Some(value)) => match decode(&key, &value) {
                    Ok(version) if last != 0 && last & 1 == 0 && version == last >> 1 => {}
                    Ok(version) => failures.push(format!(
                        "end: {name} holds version {version}, the last acknowledged state is \
                         {last:#x} (version {}, deleted {})",
                        last >> 1,
                        last & 1
                    )),
                    Err(why) => failures.push(format!("end: {name}: torn or foreign value: {why}")),
                },
            }
        }
    }
    eprintln!(
        "limit {limit}: {writes} writes, {reads} reads, {} evictions, {missing} keys missing \
         at the end, {} items of {} bytes",
        stats.evictions, stats.curr_items, stats.bytes
    );
    if failures.len() > MAX_REPORTED {
        failures.truncate(MAX_REPORTED);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (stats.evictions, stats.bytes)
}

#[test]
fn concurrent_writers_and_readers_without_eviction() {
    let (evictions, _) = stress(NO_EVICTION_LIMIT);
    assert_eq!(evictions, 0, "evictions under a limit nothing reaches");
}

#[test]
fn concurrent_writers_and_readers_under_eviction() {
    let (evictions, bytes) = stress(EVICTION_LIMIT);
    assert!(
        evictions > 0,
        "the small limit was never reached: no eviction tested"
    );
    assert!(
        bytes <= EVICTION_LIMIT as u64,
        "the store holds {bytes} bytes at rest, over its limit of {EVICTION_LIMIT}"
    );
}
