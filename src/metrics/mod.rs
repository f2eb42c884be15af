//! Counters of the server: per worker, so no cache line bounces between cores on the hot path.
//!
//! Each worker owns one [`WorkerStats`] and is its only writer (relaxed atomics, so a reader on
//! another thread may see a slightly old figure but never a torn one). Readers sum all workers
//! with [`WorkerStats::sum`]. Connection-level gauges that the acceptor also touches live in
//! [`ConnectionStats`]. Names follow memcached's `stats` names.
//!
//! Per-command latency histograms are in [`latency`], error replies by code in [`errors`],
//! the slow log in [`slowlog`]; a whole
//! snapshot ([`report::Report`]) renders as Prometheus text in [`prometheus`].
//! Never: take a lock shared between workers on the hot path, or know a socket.

pub mod errors;
pub mod latency;
pub mod prometheus;
pub mod report;
pub mod slowlog;

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($(#[$meta:meta])* $name:ident, $snapshot:ident { $($(#[$fmeta:meta])* $field:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Default)]
        #[repr(align(128))]
        pub struct $name {
            $($(#[$fmeta])* pub $field: AtomicU64,)*
        }

        /// A plain copy of the counters, for rendering.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct $snapshot {
            $(pub $field: u64,)*
        }

        impl $name {
            pub fn snapshot(&self) -> $snapshot {
                $snapshot { $($field: self.$field.load(Ordering::Relaxed),)* }
            }

            /// Sums the counters of every worker.
            pub fn sum<'a>(all: impl IntoIterator<Item = &'a $name>) -> $snapshot {
                let mut total = $snapshot::default();
                for one in all {
                    $(total.$field += one.$field.load(Ordering::Relaxed);)*
                }
                total
            }

            /// Zeroes every counter (`stats reset`).
            pub fn reset(&self) {
                $(self.$field.store(0, Ordering::Relaxed);)*
            }

            /// The counter names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl $snapshot {
            /// (name, value) pairs in declaration order.
            pub fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field),)*]
            }
        }
    };
}

counters!(
    /// What one worker counted since start (or the last `stats reset`).
    WorkerStats, WorkerSnapshot {
        /// Retrieval keys asked for (get, gets, gat, gats, mg).
        cmd_get,
        /// Storage commands (set, add, replace, append, prepend, cas, ms).
        cmd_set,
        /// flush_all commands.
        cmd_flush,
        /// touch, gat and gats keys.
        cmd_touch,
        /// Meta commands of any kind.
        cmd_meta,
        get_hits,
        get_misses,
        delete_misses,
        delete_hits,
        incr_misses,
        incr_hits,
        decr_misses,
        decr_hits,
        cas_misses,
        cas_hits,
        /// cas with a stale unique.
        cas_badval,
        touch_hits,
        touch_misses,
        /// Storage commands refused because the value was over the item size limit.
        store_too_large,
        /// Storage commands refused for lack of memory.
        store_no_memory,
        /// SASL authentication attempts that finished (success or failure).
        auth_cmds,
        /// SASL authentication attempts that failed.
        auth_errors,
        /// Bytes read from clients.
        bytes_read,
        /// Bytes written to clients.
        bytes_written,
        /// Times a connection gave up its turn after its per-tick request budget.
        conn_yields,
        /// RESP commands executed.
        resp_commands,
        /// RESP key lookups that found the key.
        keyspace_hits,
        /// RESP key lookups that did not.
        keyspace_misses,
        /// Connection turns that panicked: the worker closed that connection and went on
        /// (each one is a bug; the log names the request).
        worker_panics,
    }
);

impl WorkerStats {
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Connection gauges and totals shared by the acceptor and the workers (touched per
/// connection, not per request).
#[derive(Default)]
pub struct ConnectionStats {
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_are_unique() {
        let mut names = WorkerStats::NAMES.to_vec();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn sum_adds_every_worker() {
        let a = WorkerStats::default();
        let b = WorkerStats::default();
        WorkerStats::incr(&a.cmd_get);
        b.add(&b.cmd_get, 2);
        assert_eq!(WorkerStats::sum([&a, &b]).cmd_get, 3);
        a.reset();
        assert_eq!(WorkerStats::sum([&a, &b]).cmd_get, 2);
    }
}
