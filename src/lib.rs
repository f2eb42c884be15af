//! ferrocache: a cache server that speaks memcached 1.6 (text, meta and binary) on one shared
//! store.
//!
//! # Modules
//! - [`config`] and [`cli`]: settings, defaults < TOML file < flags.
//! - [`server`]: I/O only (listeners, acceptor, workers, connections, shutdown).
//! - [`command`]: what each request does, between the protocol crate and the store.
//! - [`store`]: the items, their expiry and eviction; knows no protocol.
//! - [`metrics`]: per-worker counters.
//! - [`clients`]: limits on client buffers and the memory they take together.
//! - [`auth`]: the user table and SASL PLAIN (binary protocol, `-S`).
//! - [`blocking`]: clients parked in blocking list pops, and the hand-over of their replies.
//! - [`hashing`]: the hash builders of every map (random seeds; fixed when fuzzing).
//! - [`logging`]: stderr logging, plain or in journald's `<N>` form.
//! - [`reload`]: SIGHUP reload: live settings applied, restart-only ones reported.
//! - [`zerocopy`]: large values handed to the connection by reference (pinned segments).
//!
//! # Threads and what they own
//! - `acceptor`: the listening sockets; accepts until `WouldBlock` and deals connections round
//!   robin to the workers over a channel, waking them with their `mio::Waker`.
//! - `worker-N` (`-t`, default one per CPU): one `mio::Poll`, the connections it was handed,
//!   and its own [`metrics::WorkerStats`] (it is their only writer).
//! - `maintenance`: drops expired segments (and runs a due delayed flush) ten times a second,
//!   and packs the values of cold segments (`store/cold.rs`): the only thread that compresses.
//! - `signals` (in `main.rs`): reloads the config on SIGHUP; on SIGINT/SIGTERM starts the
//!   graceful shutdown. The main thread waits for the server's threads to end.
//!
//! # Lock order
//! Store shard mutexes are taken one at a time, never two together (then a TTL bucket's,
//! then the segment pool's; see [`store`]); the connection table mutex is taken on connect,
//! close and `stats conns` only, never while holding a shard. The blocked-clients registry's
//! mutex is a leaf: never held while calling the store or sending to a worker.
//!
//! # Segment pins (zero-copy replies)
//! A reply sent from store memory ([`zerocopy`]) holds a pin on the value's segment until the
//! socket took the last byte. Invariant: a pinned segment is never pooled, reused or freed:
//! reclaim, eviction, compaction, the cold pass and flush all end in `give_back`, which
//! retires a pinned segment (still counted in use) instead; the maintenance thread's sweep and
//! every segment taken pool retired segments whose pins are gone. A pin is taken only under
//! the key's shard mutex, through an index entry (so none can appear on a segment being given
//! back, whose entries are all gone), and dropped with no lock held. The retired list's mutex
//! is taken before the segment pool's, never after. Memory held this way is bounded by the
//! slow clients' unsent output (`max_output_buffer` each), rounded up to whole segments.

pub mod auth;
pub mod blocking;
pub mod cli;
pub mod clients;
pub mod command;
pub mod config;
pub mod hashing;
pub mod logging;
pub mod metrics;
pub mod pubsub;
pub mod reload;
pub mod server;
pub mod store;
pub mod zerocopy;
