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
use ferrocache::conn_info::ConnInfo;
use ferrocache::shared::Shared;

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

/// The connection target's settings, built once.
fn connection_config() -> &'static Config {
    static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| {
        let mut config = Config::default();
        config.server.threads = 1;
        // 256 KiB: four 64 KiB segments (the smallest), one of them the reclaimers' reserve,
        // so a few inputs' worth of live values, or items in a few TTL buckets (each has its
        // own open segment), fill the store and eviction, reclaim and compaction run under
        // the fuzzer. On a larger store they almost never did (fuzzing round 7, commit
        // `e8bf983a0`).
        config.store.memory_limit = ferrocache::config::ByteSize::kib(256);
        // 1 MiB of unsent replies closes the connection (64 MiB in the server's defaults), so
        // replies that reach the limit (HRANDFIELD with a large negative count) stay quick.
        config.server.max_output_buffer = ferrocache::config::ByteSize::mib(1);
        // SAVE and BGSAVE write here, never into the working directory.
        let dir = std::env::temp_dir().join(format!("ferrocache-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        config.persistence.dir = dir;
        config
    })
}

/// A new server (store, pub/sub registry, counters) for one input, so an input does the same
/// thing whatever ran before it: libFuzzer assumes a deterministic target. When inputs shared
/// one server, what an input covered depended on the inputs before it: first on the store's
/// contents (fuzzing round 9, commit `b24da36d6`), then, with the store flushed between
/// inputs, on the capacity its index and the registry's maps had grown to (round 10,
/// `65d091cbd`); every reload lost such edges and the next run "found" them again, so the
/// curve never flattened. The hash seeds are fixed in fuzzing builds (`ferrocache::hashing`)
/// and the random picks restart with each input.
fn fresh_server() -> Shared {
    ferrocache::command::resp::restart_random_sequence();
    Shared::new(
        connection_config().clone(),
        ferrocache::command::catalogue(),
    )
    .expect("the target's config is valid")
}

/// The connection target's clock: fixed, so an input's expiries do not depend on when it runs.
const FUZZ_NOW_MS: u64 = 1_700_000_000_000;

/// A whole connection, structure-aware: bytes in, replies out, against a real in-process
/// server (a new one for every input), for memcached (text, meta, binary) and RESP sessions.
/// The first byte chooses RESP (odd) or memcached (even) and where the rest is split in two,
/// to exercise incomplete requests. Invariants: no panic, `consumed` never exceeds the input,
/// and replies stay bounded.
pub fn connection(data: &[u8]) {
    connection_replies(data);
}

/// [`connection`]'s body; returns the replies.
fn connection_replies(data: &[u8]) -> Vec<u8> {
    let Some((&selector, input)) = data.split_first() else {
        return Vec::new();
    };
    let shared = fresh_server();
    let endpoint = ferrocache::conn_info::Endpoint {
        id: 1,
        peer: "fuzz".into(),
        local: String::new(),
        fd: -1,
    };
    let info = Arc::new(ConnInfo::new(endpoint, selector & 1 == 1, 0));
    let mut session = if selector & 1 == 1 {
        Session::resp(info, false)
    } else {
        Session::memcache()
    };
    let ctx = Context {
        shared: &shared,
        stats: &shared.worker_stats[0],
        worker: 0,
        now_ms: FUZZ_NOW_MS,
    };
    let split = usize::from(selector >> 1) % (input.len() + 1);
    serve(&mut session, &ctx, input, split)
}

/// Feeds `input` to `session` in two chunks split at `split`, as a connection would receive it,
/// and returns the replies.
fn serve(session: &mut Session, ctx: &Context<'_>, input: &[u8], split: usize) -> Vec<u8> {
    let mut buffer: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut swallow = 0usize;
    let output_limit = ctx.shared.clients.output_buffer_limit();
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
            // Replies are bounded while a command runs: a reply of many parts stops growing
            // once past the output limit, so one request adds at most one part beyond it, and
            // no part is larger than the store (a value SETRANGE grew to its whole memory).
            let one_part = ctx.shared.store.memory_limit().saturating_add(64 * 1024);
            assert!(
                out.len() <= output_limit.saturating_add(one_part),
                "{} bytes of replies, over the output limit {output_limit} by more than a part",
                out.len()
            );
            // The server closes a connection once its unsent replies pass the output limit.
            if served.flow != Flow::Continue || out.len() > output_limit {
                break 'chunks;
            }
            if served.consumed == 0 {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input whose replies show the store's LFU counters (bumped by a random coin), a
    /// hash and a key space large enough to be ordered by their hash seeds, and random picks.
    #[cfg(fuzzing)]
    fn chance_revealing_input() -> Vec<u8> {
        let mut input = b"\x01CONFIG SET maxmemory-policy allkeys-lfu\r\n".to_vec();
        for key in 0..10 {
            input.extend_from_slice(format!("SET k{key} v\r\n").as_bytes());
            for _ in 0..40 {
                input.extend_from_slice(format!("GET k{key}\r\n").as_bytes());
            }
            input.extend_from_slice(format!("OBJECT FREQ k{key}\r\n").as_bytes());
        }
        input.extend_from_slice(b"HSET h");
        for field in 0..200 {
            input.extend_from_slice(format!(" f{field} {field}").as_bytes());
        }
        input.extend_from_slice(b"\r\nHGETALL h\r\nHRANDFIELD h 5\r\nSCAN 0 COUNT 3\r\n");
        input
    }

    /// In a fuzzing build (`--cfg fuzzing`; `.ci/run` runs these tests so too) an input
    /// answers the same every time it runs: libFuzzer assumes it. Fails with a random hash
    /// seed, a random sequence that is not restarted, or the LFU coin that used to be one
    /// per thread, seeded from a stack address (fuzzing rounds 10 and 11, commits `65d091cbd`
    /// and `34e0e2ae5`).
    #[cfg(fuzzing)]
    #[test]
    fn an_input_answers_the_same_in_every_run() {
        let input = chance_revealing_input();
        let first = connection_replies(&input);
        // OBJECT FREQ: every key's counter rose from Redis's initial 5.
        let text = String::from_utf8_lossy(&first).into_owned();
        let freqs: Vec<u32> = text
            .lines()
            .filter_map(|line| line.strip_prefix(':')?.parse().ok())
            .take(10)
            .collect();
        assert!(
            freqs.len() == 10 && freqs.iter().all(|&f| f > 5),
            "{freqs:?}"
        );
        for _ in 0..3 {
            assert_eq!(
                String::from_utf8_lossy(&connection_replies(&input)),
                String::from_utf8_lossy(&first)
            );
        }
    }

    /// What an input sees of the server: keys, settings, pub/sub channels, random picks.
    const LOOK: &[u8] = b"\x01HSET h a 1 b 2 c 3\r\nHRANDFIELD h -8\r\nDBSIZE\r\n\
        CONFIG GET maxmemory\r\nCONFIG GET maxmemory-policy\r\n\
        CONFIG GET notify-keyspace-events\r\nPUBSUB NUMPAT\r\nPUBSUB CHANNELS\r\n";

    #[test]
    fn each_connection_input_starts_from_a_fresh_server() {
        let first = connection_replies(LOOK);
        assert!(first.starts_with(b":3\r\n*8\r\n"), "{first:?}");
        // Inputs that change everything LOOK sees, and end on a subscription or QUIT.
        connection_replies(
            b"\x01SET k v\r\nCONFIG SET maxmemory 1mb\r\nCONFIG SET maxmemory-policy noeviction\r\n\
              CONFIG SET notify-keyspace-events KEA\r\nHSET h a 1\r\nHRANDFIELD h -100\r\n\
              SUBSCRIBE fuzz-channel\r\nPSUBSCRIBE fuzz-*\r\n",
        );
        connection_replies(b"\x01SSUBSCRIBE fuzz-shard\r\nQUIT\r\nPING\r\n");
        connection_replies(b"\x00set m 0 0 1\r\nx\r\ncache_memlimit 64\r\n");
        assert_eq!(
            String::from_utf8_lossy(&connection_replies(LOOK)),
            String::from_utf8_lossy(&first)
        );
    }
}
