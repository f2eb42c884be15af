//! What each command does: protocol requests in, store calls, replies out.
//!
//! `command/` is the only place where protocol meaning meets the store. It never does I/O (the
//! reply goes into the connection's output buffer) and never parses bytes (the `protocol`
//! crate did). Each protocol has its own module; all of them write through `Store::apply`.

mod binary;
mod catalogue;
pub mod compat;
#[cfg(test)]
mod effect_tests;
pub mod http;
pub mod kv;
pub use catalogue::{catalogue, timed_commands};
mod mc_acl;
pub mod memcache;
mod meta;
pub mod report;
pub mod resp;
mod session;
mod stats;

pub use session::{Dialect, Served, Session};

use crate::metrics::WorkerStats;
use crate::shared::Shared;
use crate::store::Expiry;

/// What a command needs besides its request: the shared state, the worker's counters, the time.
pub struct Context<'a> {
    pub shared: &'a Shared,
    pub stats: &'a WorkerStats,
    /// The worker running the command (its index in `shared.worker_stats` and the gates).
    pub worker: usize,
    /// Unix milliseconds, read once per worker wake-up.
    pub now_ms: u64,
}

impl Context<'_> {
    /// Whether the connection's unsent output `out` has passed its output limit: a command
    /// writing a reply of many parts stops adding them (the connection is then closed,
    /// logged and counted, as Redis's `client-output-buffer-limit` does).
    pub fn output_full(&self, out: &[u8]) -> bool {
        self.shared.clients.output_full(out)
    }
}

/// What the connection should do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Close after the pending replies are sent (`quit`).
    Close,
    /// Close, then shut the whole server down (`shutdown`, when enabled).
    Shutdown,
    /// The command parked the connection (a blocking pop): serve none of its input until
    /// its worker resumes it.
    Block,
    /// The connection sent `PSYNC`: once its replies are out, the server hands its socket to
    /// a replication link (`replication::primary`) and forgets it.
    Replica,
}

/// Every (protocol, command) the server times: the latency registry's slots.
/// Longest relative expiry; larger values are absolute unix times (`doc/protocol.txt`
/// §Expiration times, `REALTIME_MAXDELTA`).
const REALTIME_MAXDELTA_SECS: i64 = 60 * 60 * 24 * 30;

/// Turns a memcached exptime into an [`Expiry`]: 0 never, negative already expired, up to 30
/// days relative, beyond that absolute unix seconds.
pub fn memcached_expiry(exptime: i64, now_ms: u64) -> Expiry {
    match exptime {
        0 => Expiry::Never,
        e if e < 0 => Expiry::AtMs(1),
        e if e > REALTIME_MAXDELTA_SECS => Expiry::AtMs((e as u64).saturating_mul(1000)),
        e => Expiry::AtMs(now_ms + e as u64 * 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_rules_follow_memcached() {
        let now = 1_700_000_000_000;
        assert_eq!(memcached_expiry(0, now), Expiry::Never);
        assert_eq!(memcached_expiry(-1, now), Expiry::AtMs(1));
        assert_eq!(memcached_expiry(10, now), Expiry::AtMs(now + 10_000));
        assert_eq!(
            memcached_expiry(REALTIME_MAXDELTA_SECS, now),
            Expiry::AtMs(now + 2_592_000_000)
        );
        assert_eq!(
            memcached_expiry(1_800_000_000, now),
            Expiry::AtMs(1_800_000_000_000)
        );
    }
}
