//! memcached text + meta parser: never panics, and what it returns is consistent.
#![no_main]

use ferrocache_protocol::memcache::{parse, Limits, Request, MAX_KEY_LEN};
use libfuzzer_sys::fuzz_target;

fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().all(|b| *b > b' ' && *b != 0x7f)
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        item_size_max: 4096,
        ..Limits::default()
    };
    let mut rest = data;
    // Parse the whole stream as a pipeline, as a connection would.
    for _ in 0..1000 {
        match parse(rest, &limits) {
            Ok(Some((request, consumed))) => {
                assert!(
                    consumed > 0 && consumed <= rest.len(),
                    "consumed {consumed} of {}",
                    rest.len()
                );
                match &request {
                    Request::Get { keys, .. } => assert!(keys.iter().all(valid_key)),
                    Request::Store { key, value, .. } => {
                        assert!(valid_key(key));
                        assert!(value.len() <= limits.item_size_max);
                    }
                    Request::Delete { key, .. }
                    | Request::Arith { key, .. }
                    | Request::Touch { key, .. } => {
                        assert!(valid_key(key))
                    }
                    _ => {}
                }
                rest = &rest[consumed..];
            }
            Ok(None) => break,
            Err(error) => {
                assert!(error.consumed() <= rest.len());
                if error.closes_connection() || error.consumed() == 0 {
                    break;
                }
                rest = &rest[error.consumed()..];
            }
        }
    }
});
