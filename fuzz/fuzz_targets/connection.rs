//! A whole connection, structure-aware: bytes in, replies out, against a real in-process
//! store, for memcached (text, meta, binary) and RESP sessions. The input is split at a
//! fuzzer-chosen point to exercise incomplete requests. Invariants: no panic, `consumed`
//! never exceeds the input, and replies stay bounded by the input's size.
#![no_main]

use std::sync::Arc;

use ferrocache::command::{Context, Flow, Session};
use ferrocache::config::Config;
use ferrocache::server::{ConnInfo, Shared};
use libfuzzer_sys::fuzz_target;

fn shared() -> &'static Shared {
    static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let mut config = Config::default();
        config.server.threads = 1;
        config.store.memory_limit = ferrocache::config::ByteSize::mib(8);
        Shared::new(config).expect("default config")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let shared = shared();
    let info = Arc::new(ConnInfo {
        id: 1,
        peer: "fuzz".into(),
        resp: selector & 1 == 1,
        opened_ms: 0,
        last_active_ms: 0.into(),
        name: Default::default(),
        kill: Default::default(),
    });
    let mut session = if selector & 1 == 1 {
        Session::resp(info, false)
    } else {
        Session::memcache()
    };
    let ctx = Context {
        shared,
        stats: &shared.worker_stats[0],
        worker: 0,
        now_ms: 1_700_000_000_000,
    };
    let split = usize::from(selector >> 1) % (input.len() + 1);
    let mut buffer: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut swallow = 0usize;
    for chunk in [&input[..split], &input[split..]] {
        buffer.extend_from_slice(chunk);
        loop {
            if swallow > 0 {
                let n = swallow.min(buffer.len());
                buffer.drain(..n);
                swallow -= n;
                if swallow > 0 {
                    break;
                }
            }
            let Some(served) = session.serve_one(&buffer, &ctx, &mut out) else {
                break;
            };
            assert!(served.consumed <= buffer.len());
            buffer.drain(..served.consumed);
            swallow = served.swallow;
            if served.flow != Flow::Continue {
                return;
            }
            if served.consumed == 0 {
                break;
            }
        }
    }
    // Replies never balloon past what the store can hold plus per-request overhead.
    assert!(out.len() <= 64 * 1024 * 1024);
});
