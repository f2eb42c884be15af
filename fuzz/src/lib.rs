//! The fuzz targets' bodies, as plain functions of the input bytes.
//!
//! Each `fuzz_targets/<name>.rs` is a one-line libFuzzer entry point that calls the function of
//! the same name here, so the same checks also run without libFuzzer: `tests/replay.rs` feeds
//! every checked-in input (`corpus/<name>/` and `regressions/<name>/`) to them under plain
//! `cargo test` on the stable toolchain (see README.md). A function panics exactly when the
//! fuzzer would report a crash.

use std::sync::Arc;

use ferrocache::command::{Context, Flow, Session};
use ferrocache::config::Config;
use ferrocache::server::{ConnInfo, Shared};

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by name, for the replay harness.
pub const TARGETS: &[(&str, Target)] = &[
    ("memcache_text", memcache_text),
    ("memcache_binary", memcache_binary),
    ("resp", resp),
    ("config", config),
    ("connection", connection),
];

fn valid_key(key: &[u8]) -> bool {
    use ferrocache_protocol::memcache::MAX_KEY_LEN;
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().all(|b| *b > b' ' && *b != 0x7f)
}

/// memcached text + meta parser: never panics, and what it returns is consistent.
pub fn memcache_text(data: &[u8]) {
    use ferrocache_protocol::memcache::{parse, Limits, Request};
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
}

/// memcached binary parser: never panics, never claims more bytes than it was given.
pub fn memcache_binary(data: &[u8]) {
    use ferrocache_protocol::binary::parse;
    use ferrocache_protocol::memcache::Limits;
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
}

/// RESP parser: never panics, respects its limits, consumes what it reports.
pub fn resp(data: &[u8]) {
    use ferrocache_protocol::resp::{parse, Limits};
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
}

/// Config loader: any text either parses and validates (and survives a TOML round trip) or
/// is refused with one line; it never panics.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            let _ = config.validate();
            let again = toml::to_string(&config).expect("a parsed config serializes");
            assert_eq!(Config::from_toml(&again).expect("and parses back"), config);
        }
        Err(message) => assert!(!message.contains('\n'), "multi-line error: {message}"),
    }
}

fn shared() -> &'static Shared {
    static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let mut config = Config::default();
        config.server.threads = 1;
        // 256 KiB: four 64 KiB segments (the smallest), one of them the reclaimers' reserve,
        // so a few inputs' worth of live values, or items in a few TTL buckets (each has its
        // own open segment), fill the store and eviction, reclaim and compaction run under
        // the fuzzer. On a larger store they almost never did (see fuzz/README.md, round 7).
        config.store.memory_limit = ferrocache::config::ByteSize::kib(256);
        // 1 MiB of unsent replies closes the connection (64 MiB in the server's defaults), so
        // replies that reach the limit (HRANDFIELD with a large negative count) stay quick.
        config.server.max_output_buffer = ferrocache::config::ByteSize::mib(1);
        Shared::new(config).expect("default config")
    })
}

/// The connection target's clock: fixed, so an input's expiries do not depend on when it runs.
const FUZZ_NOW_MS: u64 = 1_700_000_000_000;

/// A whole connection, structure-aware: bytes in, replies out, against a real in-process
/// store (one per process, emptied before every input), for memcached (text, meta, binary) and RESP
/// sessions. The first byte chooses RESP (odd) or memcached (even) and where the rest is split
/// in two, to exercise incomplete requests. Invariants: no panic, `consumed` never exceeds the
/// input, and replies stay bounded.
pub fn connection(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let shared = shared();
    start_from_a_fresh_server(shared);
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
        now_ms: FUZZ_NOW_MS,
    };
    let split = usize::from(selector >> 1) % (input.len() + 1);
    serve(&mut session, &ctx, input, split);
    // As the server does when a connection closes: without it, every channel and pattern an
    // input subscribed to stayed in the shared registry, each PUBLISH and keyspace notification
    // matched against all of them, and executions slowed from ~1,000/s to ~150/s within an hour.
    session.forget_subscriptions(&shared.pubsub);
}

/// Puts back what an earlier input may have changed, so an input does the same thing whatever
/// ran before it: libFuzzer assumes a deterministic target. When inputs shared the store's
/// contents, the coverage of a run depended on the order of its inputs: the corpus a run left
/// reached ~250 edges fewer when loaded again than the run had seen, and the run never
/// flattened (fuzz/README.md, round 9). The hash seeds are fixed in fuzzing builds
/// (`ferrocache::hashing`). Eviction and reclaim stay reachable within one input
/// (`CONFIG SET maxmemory`, SETRANGE to a large offset, the `heap_evict` seed).
fn start_from_a_fresh_server(shared: &Shared) {
    use ferrocache::store::Mutation;
    let config = &shared.config;
    ferrocache::command::resp::restart_random_sequence();
    shared.pubsub.set_notify_flags(config.notify_flags());
    shared.store.set_eviction_policy(config.eviction_policy());
    // `cache_memlimit` and CONFIG SET maxmemory change the limit; flushing also drops a
    // delayed flush_all still pending.
    let store_bytes = config.store.memory_limit.bytes() as usize;
    if shared.store.memory_limit() != store_bytes {
        shared.store.set_memory_limit(store_bytes, FUZZ_NOW_MS);
    }
    shared
        .store
        .apply(Mutation::FlushAll { at_ms: None }, FUZZ_NOW_MS);
    for stats in shared.worker_stats.iter() {
        stats.reset();
    }
}

/// Feeds `input` to `session` in two chunks split at `split`, as a connection would receive it.
fn serve(session: &mut Session, ctx: &Context<'_>, input: &[u8], split: usize) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut swallow = 0usize;
    let output_limit = ctx.shared.config.server.max_output_buffer.bytes() as usize;
    'chunks: for chunk in [&input[..split], &input[split..]] {
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
            let Some(served) = session.serve_one(&buffer, ctx, &mut out) else {
                break;
            };
            assert!(served.consumed <= buffer.len());
            buffer.drain(..served.consumed);
            swallow = served.swallow;
            // The server closes a connection once its unsent replies pass the output limit.
            if served.flow != Flow::Continue || out.len() > output_limit {
                break 'chunks;
            }
            if served.consumed == 0 {
                break;
            }
        }
    }
    // Replies never balloon past what the store can hold plus per-request overhead.
    assert!(out.len() <= 64 * 1024 * 1024);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache::pubsub::Space;
    use ferrocache::store::EvictionPolicy;

    /// One test, not several: all inspect the one store and registry every input shares.
    #[test]
    fn each_connection_input_starts_from_a_fresh_server() {
        let registry = &shared().pubsub;
        connection(b"\x01SUBSCRIBE fuzz-channel\r\nPSUBSCRIBE fuzz-*\r\nSSUBSCRIBE fuzz-shard\r\n");
        assert!(registry.channels(Space::Global, None).is_empty());
        assert!(registry.channels(Space::Shard, None).is_empty());
        assert_eq!(registry.numpat(), 0);
        // Also when the session ends on QUIT, before the end of its input.
        connection(b"\x01SUBSCRIBE fuzz-channel\r\nQUIT\r\nPING\r\n");
        assert!(registry.channels(Space::Global, None).is_empty());

        connection(b"\x00cache_memlimit 64\r\n");
        assert_eq!(shared().store.memory_limit(), 64 << 20);
        connection(b"\x00version\r\n");
        assert_eq!(
            shared().store.memory_limit(),
            shared().config.store.memory_limit.bytes() as usize
        );

        let store = &shared().store;
        connection(
            b"\x01SET fuzz-key v\r\nCONFIG SET maxmemory-policy noeviction\r\n\
              CONFIG SET notify-keyspace-events KEA\r\n",
        );
        assert_eq!(store.stats().curr_items, 1);
        assert_eq!(store.eviction_policy(), EvictionPolicy::NoEviction);
        assert_ne!(registry.notify_flags(), 0);
        connection(b"\x00version\r\n");
        assert_eq!(store.stats().curr_items, 0);
        assert_eq!(store.eviction_policy(), EvictionPolicy::AllKeysLru);
        assert_eq!(registry.notify_flags(), 0);
    }
}
