//! RESP parser: never panics, respects its limits, consumes what it reports.
#![no_main]

use ferrocache_protocol::resp::{parse, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bulk_len: 4096,
        max_multibulk_len: 64,
        max_inline_len: 1024,
    };
    let mut rest = data;
    for _ in 0..1000 {
        match parse(rest, &limits) {
            Ok(Some((command, consumed))) => {
                assert!(consumed > 0 && consumed <= rest.len());
                // Multibulk requests are bounded by max_multibulk_len; inline ones (as in Redis)
                // only by their line length.
                assert!(command.len() <= limits.max_multibulk_len.max(limits.max_inline_len));
                assert!(command
                    .args
                    .iter()
                    .all(|a| a.len() <= limits.max_bulk_len.max(limits.max_inline_len)));
                rest = &rest[consumed..];
            }
            Ok(None) | Err(_) => break,
        }
    }
});
