//! What every thread shares: [`Shared`] (the store, the settings, the counters, the registries
//! of subscribers and blocked clients, the shutdown switch) and the [`Gates`] that make
//! multi-key commands atomic.
//!
//! It sits below both the server that runs connections and the commands they execute, so
//! neither imports the other to reach it. It does no I/O and interprets no command; the
//! connection table's bookkeeping (connect, close) is the server's (`server/mod.rs`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ferrocache_protocol::memcache::Limits;
use mio::Waker;

use crate::auth::{Users, UsersError};
use crate::config::Config;
use crate::conn_info::ConnInfo;
use crate::metrics::latency::WorkerLatency;
use crate::metrics::slowlog::SlowLog;
use crate::metrics::{ConnectionStats, WorkerStats};
use crate::store::{Store, StoreConfig};

pub use crate::clock::unix_millis;

/// What every thread shares: the store, the settings, the counters, the shutdown switch.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub limits: Limits,
    /// Who may authenticate (empty unless SASL is enabled).
    pub users: Users,
    /// One per worker, indexed by worker number, then one for the HTTP thread (the last).
    pub worker_stats: Box<[WorkerStats]>,
    /// Per-command calls and latency histograms, indexed as `worker_stats`.
    pub latency: Box<[WorkerLatency]>,
    /// Error replies by code, per worker (and one for the HTTP port), as `latency`.
    pub errors: Box<[crate::metrics::errors::ErrorTally]>,
    /// Commands slower than `slowlog-log-slower-than` (SLOWLOG).
    pub slowlog: SlowLog,
    /// The pools of the store's keys (the same numbering as `Store::pool_stats`), for the
    /// per-pool latency of the commands that name a key.
    pub(crate) key_pools: crate::store::pool::Pools,
    /// Readiness for `/healthz`: false until the server serves, and again once it shuts down.
    pub serving: AtomicBool,
    pub connections: ConnectionStats,
    pub started: Instant,
    /// Current log verbosity (changed by `verbosity`).
    pub verbosity: AtomicUsize,
    /// Every open connection, for `stats conns`; touched on connect and close only.
    pub connection_table: parking_lot::Mutex<crate::hashing::HashMap<u64, Arc<ConnInfo>>>,
    pub(crate) next_conn_id: std::sync::atomic::AtomicU64,
    /// Per-worker gates for atomic multi-key commands.
    pub gates: Gates,
    /// Snapshot state (INFO persistence, LASTSAVE, the one save at a time).
    pub persistence: crate::persist::Persistence,
    /// Pub/sub subscriptions across every worker.
    pub pubsub: Arc<crate::pubsub::Registry>,
    /// Where every effect of the store goes (notifications, and the tap).
    pub effects: Arc<crate::effects::EffectHub>,
    /// Replication: role, ids, backlog, links (`replication`).
    pub replication: Arc<crate::replication::Replication>,
    /// Clients parked in blocking list pops, across every worker.
    pub blocked: Arc<crate::blocking::Registry>,
    /// Client buffer limits and the memory every connection's buffers take.
    pub clients: Arc<crate::clients::Clients>,
    /// The certificates TLS listeners hand out (none without a TLS port).
    pub tls: Option<crate::tls::TlsState>,
    /// ACL users and the denial log.
    pub acl: crate::acl::SharedAcl,
    /// Lua scripting: the engine, its script cache, the script running now.
    pub scripting: crate::scripting::Scripting,
    /// Redis's protected mode (`server.protected_mode`, `CONFIG SET protected-mode`).
    pub protected_mode: AtomicBool,
    shutting_down: AtomicBool,
    pub(crate) wakers: parking_lot::Mutex<Vec<Arc<Waker>>>,
    /// The name of the first thread that ended before shutdown, if any.
    pub(crate) dead_thread: parking_lot::Mutex<Option<String>>,
}

impl Shared {
    /// The shared state for `config`, with its users (read from the SASL password file when
    /// SASL is enabled, or from the text-protocol auth file, `-Y`).
    ///
    /// `commands` is what the command layer says of itself (`command::catalogue()`), handed
    /// in by the caller so that this module, which the commands import, never imports them.
    pub fn new(config: Config, commands: CommandCatalogue) -> Result<Shared, SharedError> {
        let users = if !config.sasl.auth_file.as_os_str().is_empty() {
            Users::from_password_file(&config.sasl.auth_file)?
        } else if config.sasl.enabled && !config.sasl.password_file.as_os_str().is_empty() {
            Users::from_password_file(&config.sasl.password_file)?
        } else {
            Users::default()
        };
        let pool_configs: Vec<crate::store::PoolConfig> = config
            .pool
            .iter()
            .map(|pool| crate::store::PoolConfig {
                name: pool.name.clone(),
                prefix: pool.prefix.as_bytes().to_vec(),
            })
            .collect();
        let key_pools = crate::store::pool::Pools::new(&pool_configs);
        let store = Store::new(StoreConfig {
            memory_limit_bytes: config.store.memory_limit.bytes() as usize,
            item_size_max: config.store.item_size_max.bytes() as usize,
            eviction: config.eviction_policy(),
            segment_size: config.store.segment_size.bytes() as usize,
            compression: crate::store::Compression {
                threshold: config.store.compression_threshold.bytes() as usize,
                level: config.store.compression_level,
                cold_after_secs: config.store.compression_cold_secs,
                segments_per_tick: config.store.compression_segments_per_tick,
            },
            pools: pool_configs,
        });
        let pubsub = Arc::new(crate::pubsub::Registry::new());
        pubsub.set_notify_flags(config.notify_flags());
        let blocked = Arc::new(crate::blocking::Registry::default());
        let effects = crate::effects::EffectHub::new(
            crate::pubsub::KeyspaceNotifier {
                registry: pubsub.clone(),
                prefixes: config
                    .resp
                    .notify_key_prefixes
                    .iter()
                    .map(|p| p.as_bytes().to_vec())
                    .collect(),
            },
            blocked.clone(),
        );
        store.set_observer(Box::new(effects.clone()));
        let replication = crate::replication::Replication::new(
            config.replication.backlog_size.bytes() as usize,
            config.replication.backlog_ttl_secs.saturating_mul(1000),
            config.replication.replica_read_only,
            crate::replication::identity::ReplicaIdentity::new(&config.replication),
        );
        // The one tap: replication records every effect (once a replica is attached).
        let _ = effects.tap(Box::new(replication.clone()));
        let limits = Limits {
            item_size_max: config.store.item_size_max.bytes() as usize,
            ..Limits::default()
        };
        let workers = config.worker_threads();
        let acl = crate::acl::file::startup(
            commands.acl,
            &config.resp.requirepass,
            &config.acl.users,
            &config.acl.file,
        )?;
        let registry = Arc::new(crate::metrics::latency::Registry::new(commands.timed));
        let pools = config.pool.len() + 1;
        let slowlog = SlowLog::new(
            config.metrics.slowlog_log_slower_than_us,
            config.metrics.slowlog_max_len,
        );
        let scripting = crate::scripting::Scripting::new(
            config.resp.lua_memory_limit.bytes() as usize,
            commands.redis_version,
        )?;
        scripting.set_busy_threshold_ms(config.resp.busy_reply_threshold_ms);
        Ok(Shared {
            scripting,
            acl: crate::acl::SharedAcl::new(acl),
            protected_mode: AtomicBool::new(config.server.protected_mode),
            clients: Arc::new(crate::clients::Clients::new(&config)),
            persistence: crate::persist::Persistence::new(unix_millis()),
            effects,
            replication,
            verbosity: AtomicUsize::new(usize::from(config.log.verbosity)),
            config,
            store,
            limits,
            users,
            // The last slot is the HTTP thread's (see `Shared::http_slot`).
            worker_stats: (0..=workers).map(|_| WorkerStats::default()).collect(),
            latency: (0..=workers)
                .map(|_| WorkerLatency::new(registry.clone(), pools))
                .collect(),
            errors: (0..=workers).map(|_| Default::default()).collect(),
            slowlog,
            serving: AtomicBool::new(false),
            key_pools,
            connections: ConnectionStats::default(),
            started: Instant::now(),
            connection_table: parking_lot::Mutex::new(crate::hashing::HashMap::default()),
            next_conn_id: std::sync::atomic::AtomicU64::new(1),
            gates: Gates::new(workers + 1),
            pubsub,
            blocked,
            tls: None,
            shutting_down: AtomicBool::new(false),
            wakers: parking_lot::Mutex::new(Vec::new()),
            dead_thread: parking_lot::Mutex::new(None),
        })
    }

    /// Whether a client write is refused now (a read-only replica, or too few good replicas
    /// for `min_replicas_to_write`).
    pub fn write_refusal(&self) -> Option<crate::replication::WriteRefusal> {
        let settings = &self.config.replication;
        self.replication.write_refusal(
            settings.min_replicas_to_write,
            settings.min_replicas_max_lag_secs.saturating_mul(1000),
        )
    }

    /// The pool number of `key` (0 = default), as the store counts it.
    pub fn pool_of(&self, key: &[u8]) -> usize {
        self.key_pools.pool_of(key)
    }

    /// Worker threads (`-t`), not counting the HTTP thread.
    pub fn worker_count(&self) -> usize {
        self.worker_stats.len() - 1
    }

    /// The index of the HTTP thread's counters, latency table and gate.
    pub fn http_slot(&self) -> usize {
        self.worker_stats.len() - 1
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Wakes every worker (e.g. so they notice a CLIENT KILL).
    pub fn wake_workers(&self) {
        for waker in self.wakers.lock().iter() {
            let _ = waker.wake();
        }
    }

    /// Starts a graceful shutdown: every thread notices at its next wake-up.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.serving.store(false, Ordering::Release);
        self.persistence.wake();
        for waker in self.wakers.lock().iter() {
            let _ = waker.wake();
        }
    }
}

/// What the command layer says of itself, for the shared state: the commands and categories
/// ACL rules may name, and the commands that have latency tables.
pub struct CommandCatalogue {
    pub acl: Arc<crate::acl::Catalogue>,
    pub timed: Vec<crate::metrics::latency::CommandKey>,
    /// The Redis version the server reports (scripts see it as `redis.REDIS_VERSION`).
    pub redis_version: &'static str,
}

/// Why the shared state could not be built from the config.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Acl(#[from] crate::acl::file::AclFileError),
    #[error(transparent)]
    Scripting(#[from] crate::scripting::EngineError),
}

/// Per-worker read/write locks that make multi-key commands atomic.
///
/// Every command runs holding its own worker's gate for reading (uncontended: only that
/// worker reads it). A command that must not interleave with any other (MSET, RENAME, EXEC)
/// takes every gate for writing, in index order, so it waits for the commands in flight on
/// other workers and no new one starts until it is done. A worker never holds its own read
/// gate while asking for the write gates, so this cannot deadlock.
pub struct Gates {
    gates: Box<[parking_lot::RwLock<()>]>,
}

impl Gates {
    pub(crate) fn new(workers: usize) -> Gates {
        Gates {
            gates: (0..workers.max(1))
                .map(|_| parking_lot::RwLock::new(()))
                .collect(),
        }
    }

    /// The gate of worker `worker`, held for reading.
    pub fn shared(&self, worker: usize) -> parking_lot::RwLockReadGuard<'_, ()> {
        self.gates[worker % self.gates.len()].read()
    }

    /// Every gate, held for writing.
    pub fn exclusive(&self) -> Vec<parking_lot::RwLockWriteGuard<'_, ()>> {
        self.gates.iter().map(|gate| gate.write()).collect()
    }

    /// The gate of worker `worker` for reading, if it comes free within `wait`.
    pub fn try_shared_for(
        &self,
        worker: usize,
        wait: std::time::Duration,
    ) -> Option<parking_lot::RwLockReadGuard<'_, ()>> {
        self.gates[worker % self.gates.len()].try_read_for(wait)
    }

    /// Every gate for writing, in index order, each within `wait`; none if one did not come
    /// free (those already taken are released, so a waiter never sits on part of them).
    pub fn try_exclusive_for(
        &self,
        wait: std::time::Duration,
    ) -> Option<Vec<parking_lot::RwLockWriteGuard<'_, ()>>> {
        self.gates
            .iter()
            .map(|gate| gate.try_write_for(wait))
            .collect()
    }
}
