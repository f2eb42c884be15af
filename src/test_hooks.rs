//! Debug-build hooks that let tests make the server misbehave on purpose (`FERROCACHE-TEST-PANIC`,
//! enabled by `FERROCACHE_TEST_HOOKS`): a command asks, the worker acts after its turn. And a
//! pause before the snapshot load at start (`FERROCACHE_TEST_LOAD_DELAY_MS`).
//!
//! It sits below both the command that asks and the worker that acts, so neither imports the
//! other. Nothing here exists in release builds.

thread_local! {
    /// Panic in the worker loop, outside any connection's turn.
    static PANIC_OUTSIDE_TURN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes this thread's worker panic right after the current turn, outside the per-turn catch,
/// so tests can see a dying worker end the process.
pub fn panic_after_this_turn() {
    PANIC_OUTSIDE_TURN.with(|flag| flag.set(true));
}

/// Whether a command of this turn asked for [`panic_after_this_turn`]; clears the request.
pub fn take_panic_after_turn() -> bool {
    PANIC_OUTSIDE_TURN.with(|flag| flag.replace(false))
}

/// Debug builds: waits `FERROCACHE_TEST_LOAD_DELAY_MS` milliseconds before the snapshot load
/// at start, so tests can see what clients get while the server is loading.
pub fn delay_snapshot_load() {
    let delay = std::env::var("FERROCACHE_TEST_LOAD_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok());
    if let Some(ms) = delay {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(60_000)));
    }
}
