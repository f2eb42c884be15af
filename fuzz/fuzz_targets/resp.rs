//! RESP parser: never panics, respects its limits, consumes what it reports.
//! The body is `ferrocache_fuzz::resp` (fuzz/src/lib.rs), which `tests/replay.rs` also runs
//! on the checked-in inputs without libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::resp(data));
