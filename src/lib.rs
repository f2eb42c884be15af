//! ferrocache: a cache server that speaks memcached 1.6 (text, meta and binary) on one shared
//! store.
//!
//! # Modules
//! - [`config`] and [`cli`]: settings, defaults < TOML file < flags.
//! - [`shared`]: what every thread shares (store, settings, counters, registries, gates);
//!   [`conn_info`]: what other connections may see of one. Both sit below `server` and
//!   `command`, so commands never import the server that calls them.
//! - [`server`]: I/O only (listeners, acceptor, workers, connections, shutdown).
//! - [`command`]: what each request does, between the protocol crate and the store.
//! - [`store`]: the items, their expiry and eviction; knows no protocol.
//! - [`metrics`]: per-worker counters, latency histograms, the slow log, Prometheus text.
//! - [`http`]: the HTTP port's I/O (cache API, `/metrics`, dashboard; off by default).
//! - [`persist`]: snapshots (SAVE, BGSAVE, `save` rules), their load at start, and their
//!   offline export as Redis RDB files.
//! - [`clients`]: limits on client buffers and the memory they take together.
//! - [`acl`]: ACL users (Redis rule syntax), their permissions, and the denial log.
//! - [`auth`]: the user table and SASL PLAIN (binary protocol, `-S`).
//! - [`blocking`]: clients parked in blocking list pops, and the hand-over of their replies.
//! - [`glob`]: Redis glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET).
//! - [`sys`]: the platform calls (CPU time, RSS, the open-file limit).
//! - [`hashing`]: the hash builders of every map (random seeds; fixed when fuzzing).
//! - [`logging`]: stderr logging, plain or in journald's `<N>` form.
//! - [`reload`]: SIGHUP reload: live settings applied, restart-only ones reported.
//! - [`effects`]: where the store's one effect hook leads (keyspace notifications, a tap).
//! - [`replication`]: the backlog, replica links in both directions, PSYNC (Redis's protocol).
//! - [`tls`]: certificates and keys turned into rustls configurations, swapped on reload.
//! - [`zerocopy`]: large values handed to the connection by reference (pinned segments).
//! - [`scripting`]: the Lua state EVAL runs scripts in, its sandbox and script cache.
//!
//! # Threads and what they own
//! - `acceptor`: the listening sockets; accepts until `WouldBlock` and deals connections round
//!   robin to the workers over a channel, waking them with their `mio::Waker`.
//! - `worker-N` (`-t`, default one per CPU): one `mio::Poll`, the connections it was handed
//!   (plain and TLS alike: a TLS handshake advances in the same loop as the socket becomes
//!   ready), and its own [`metrics::WorkerStats`] (it is their only writer).
//! - `http` (only with `[http] listen`): one `mio::Poll`, the HTTP listener and its
//!   connections; its counters, latency table and gate are the last slot of the workers'.
//! - `maintenance`: drops expired segments (and runs a due delayed flush) ten times a second,
//!   and packs the values of cold segments (`store/cold.rs`): the only thread that compresses.
//! - `replica-link-N` (one per attached replica) and its `replica-acks-N`: the full sync,
//!   then the stream pushed from the backlog as it grows; the acks thread reads the replica's
//!   `REPLCONF ACK`. They take the backlog mutex (a leaf, also taken by every write under its
//!   shard mutex while a replica is attached) and shard mutexes one at a time for a snapshot.
//! - `replica-of` (on a replica): follows the primary (`replication::replica`), applying its
//!   records through the store's write path.
//! - `replication-cron`: every 50 ms answers WAITs whose time is up, asks replicas to ack
//!   while clients wait, and puts a keepalive PING in a silent primary's stream.
//! - `saver`: BGSAVE's snapshots and the `save` rules (`persist`), one save at a time; with
//!   rules set, a last save at shutdown.
//! - `signals` (in `main.rs`): reloads the config on SIGHUP; on SIGINT/SIGTERM starts the
//!   graceful shutdown. The main thread waits for the server's threads to end.
//!
//! # Lock order
//! A script (EVAL) holds every worker's gate for writing, then the scripting engine's mutex,
//! for its whole run; its commands then take store locks as any command does. SCRIPT LOAD,
//! EXISTS and FLUSH take the engine's mutex with no gate held; SCRIPT KILL takes no lock.
//!
//! Store shard mutexes are taken one at a time, never two together but by a flush, which
//! holds all of them in index order so that it is one moment for every key (then a TTL bucket's,
//! then the segment pool's; see [`store`]); the connection table mutex is taken on connect,
//! close and `stats conns` only, never while holding a shard. The blocked-clients registry's
//! mutex is a leaf: never held while calling the store or sending to a worker. So are the ACL
//! table's RwLock (a lookup, a change or a log entry; a connection normally reads only the
//! table's generation counter) and the TLS configuration's RwLock (an `Arc` clone per accepted
//! connection, a swap per reload).
//!
//! Every change to the store is reported as one effect with the key's shard mutex held
//! ([`store::Observer`]); the keyspace notifier it reaches then takes, in this order and one
//! at a time, a pub/sub channel shard's read lock, the pattern list's read lock, and each
//! receiving worker's outbox queue, and wakes those workers (an `eventfd` write through
//! `mio::Waker`). So the pub/sub locks and the wake syscall come after a shard mutex, and
//! pub/sub never calls the store.
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

pub mod acl;
pub mod auth;
pub mod blocking;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod command;
pub mod config;
pub mod config_rewrite;
pub mod conn_info;
pub mod effects;
pub mod glob;
pub mod hashing;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod persist;
pub mod pubsub;
pub mod reload;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod shared;
pub mod store;
pub mod sys;
#[cfg(debug_assertions)]
pub mod test_hooks;
pub mod tls;
pub mod zerocopy;
