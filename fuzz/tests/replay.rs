//! Replays every fuzz input through its target's function, without libFuzzer: the named seeds
//! in `seeds/<target>/`, the crash reproducers in `regressions/<target>/`, and the minimized
//! corpus in `corpus/<target>/` when it has been unpacked (`fuzz/expand-corpus.sh`, which CI
//! runs first; the corpus is kept as one archive per target, not as tracked files). Run by CI
//! on the stable toolchain: `cargo test --manifest-path fuzz/Cargo.toml --no-default-features`.
//!
//! Each input must return without panicking (a crash), within [`SLOW`] (a hang: libFuzzer's
//! own `-timeout` is 1200 s, but a replay in a debug build that takes seconds is already a
//! regression worth seeing), and without any single allocation above [`MAX_ALLOCATION`] (an
//! over-allocation: a length field trusted before the bytes arrived). A failure names the file.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An input slower than this (debug build, one thread) fails the replay.
const SLOW: Duration = Duration::from_secs(10);
/// No input may make one allocation larger than this (libFuzzer's `-malloc_limit_mb` defaults to
/// its 2 GiB RSS limit; the targets' limits are small, so 256 MiB is already absurd).
const MAX_ALLOCATION: usize = 256 << 20;

/// The system allocator, recording the largest single request it has served.
struct Watching;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as above; `ptr` and `layout` come from this allocator, which is System's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["seeds", "corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        files.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file()),
        );
    }
    files.sort();
    files
}

/// Runs every input of `target`; returns how many ran. Panics listing every failing file.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs for {target}");
    let mut failures = Vec::new();
    for file in &files {
        let data = match std::fs::read(file) {
            Ok(data) => data,
            // A fuzzer running on this corpus right now replaced it with a smaller input.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", file.display()),
        };
        LARGEST.store(0, Ordering::Relaxed);
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(|| run(&data));
        let took = start.elapsed();
        let largest = LARGEST.load(Ordering::Relaxed);
        let name = file.display();
        if outcome.is_err() {
            failures.push(format!("{name}: panicked (see the message above)"));
        } else if took > SLOW {
            failures.push(format!("{name}: took {took:?}"));
        } else if largest > MAX_ALLOCATION {
            failures.push(format!("{name}: allocated {largest} bytes at once"));
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    files.len()
}

#[test]
fn memcache_text() {
    replay("memcache_text", ferrocache_fuzz::memcache_text);
}

#[test]
fn memcache_binary() {
    replay("memcache_binary", ferrocache_fuzz::memcache_binary);
}

#[test]
fn resp() {
    replay("resp", ferrocache_fuzz::resp);
}

#[test]
fn config() {
    replay("config", ferrocache_fuzz::config);
}

#[test]
fn connection() {
    replay("connection", ferrocache_fuzz::connection);
}

#[test]
fn every_target_has_a_replay() {
    let names: Vec<&str> = ferrocache_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "memcache_text",
            "memcache_binary",
            "resp",
            "config",
            "connection"
        ]
    );
    for (name, _) in ferrocache_fuzz::TARGETS {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz_targets")
            .join(format!("{name}.rs"));
        assert!(
            bin.exists(),
            "{} has no libFuzzer entry point",
            bin.display()
        );
    }
}
