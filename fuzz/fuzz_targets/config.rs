//! Config loader: any text parses and round-trips, or is refused with one line.
//! The body is `ferrocache_fuzz::config` (fuzz/src/lib.rs), which `tests/replay.rs` also runs
//! on the checked-in inputs without libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::config(data));
