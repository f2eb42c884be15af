//! memcached binary parser: never panics, never claims more bytes than it was given.
//! The body is `ferrocache_fuzz::memcache_binary` (fuzz/src/lib.rs), which `tests/replay.rs` also runs
//! on the checked-in inputs without libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::memcache_binary(data));
