//! memcached binary parser: never panics, never claims more bytes than it was given.
#![no_main]

use ferrocache_protocol::binary::parse;
use ferrocache_protocol::memcache::{Limits, MAX_KEY_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        item_size_max: 4096,
        ..Limits::default()
    };
    let mut rest = data;
    for _ in 0..1000 {
        match parse(rest, &limits) {
            Ok(Some((request, consumed))) => {
                assert!(consumed >= 24 && consumed <= rest.len());
                let _ = request.header;
                rest = &rest[consumed..];
            }
            Ok(None) => break,
            Err(error) => {
                let _ = error.closes_connection();
                break;
            }
        }
    }
    let _ = MAX_KEY_LEN;
});
