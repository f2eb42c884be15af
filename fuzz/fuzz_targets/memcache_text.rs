//! memcached text + meta parser: never panics, and what it returns is consistent.
//! The body is `ferrocache_fuzz::memcache_text` (fuzz/src/lib.rs), which `tests/replay.rs` also runs
//! on the checked-in inputs without libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::memcache_text(data));
