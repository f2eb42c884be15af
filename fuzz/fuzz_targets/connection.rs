//! A whole connection (memcached or RESP) against a real in-process store.
//! The body is `ferrocache_fuzz::connection` (fuzz/src/lib.rs), which `tests/replay.rs` also runs
//! on the checked-in inputs without libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::connection(data));
