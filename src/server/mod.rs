//! I/O only: listeners, the acceptor, worker threads, the maintenance thread and shutdown.
//!
//! [`Server::start`] binds every listener first (so a bad address fails before any thread
//! starts), then spawns: one acceptor thread that accepts until `WouldBlock` and hands sockets
//! round robin to the workers; N workers (see [`worker`]); one maintenance thread that sweeps
//! expired items. SIGTERM/SIGINT or an enabled `shutdown` command set the shutdown flag and
//! wake everyone; workers push out pending replies and exit. Nothing here interprets a command.
//!
//! Every thread runs under a [`ThreadWatch`]: a thread that ends before shutdown (a panic
//! outside a connection's turn, a failed poll) starts the shutdown of the others, and
//! [`Server::join`] reports it, so the process exits non-zero and its supervisor restarts
//! it, rather than going on with a worker that gets connections and never serves them.

mod buffer;
mod conn;
mod outbox;
mod transport;
mod worker;

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::auth::{Users, UsersError};
use crate::command::Dialect;
use crate::config::Config;
use crate::metrics::{ConnectionStats, WorkerStats};
use crate::store::{Store, StoreConfig};
use ferrocache_protocol::memcache::{reply, Limits};

pub use crate::logging::level_for_verbosity as log_level;
pub use transport::Transport;
#[cfg(debug_assertions)]
pub use worker::panic_after_this_turn;
use worker::{Worker, WorkerMsg, WAKER};

/// Milliseconds since the unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What every thread shares: the store, the settings, the counters, the shutdown switch.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub limits: Limits,
    /// Who may authenticate (empty unless SASL is enabled).
    pub users: Users,
    /// One per worker, indexed by worker number.
    pub worker_stats: Box<[WorkerStats]>,
    pub connections: ConnectionStats,
    pub started: Instant,
    /// Current log verbosity (changed by `verbosity`).
    pub verbosity: AtomicUsize,
    /// Every open connection, for `stats conns`; touched on connect and close only.
    pub connection_table: parking_lot::Mutex<crate::hashing::HashMap<u64, Arc<ConnInfo>>>,
    next_conn_id: std::sync::atomic::AtomicU64,
    /// Per-worker gates for atomic multi-key commands.
    pub gates: Gates,
    /// Pub/sub subscriptions across every worker.
    pub pubsub: Arc<crate::pubsub::Registry>,
    /// Clients parked in blocking list pops, across every worker.
    pub blocked: crate::blocking::Registry,
    /// Client buffer limits and the memory every connection's buffers take.
    pub clients: Arc<crate::clients::Clients>,
    shutting_down: AtomicBool,
    wakers: parking_lot::Mutex<Vec<Arc<Waker>>>,
    /// The name of the first thread that ended before shutdown, if any.
    dead_thread: parking_lot::Mutex<Option<String>>,
}

impl Shared {
    /// The shared state for `config`, with its users (read from the SASL password file when
    /// SASL is enabled).
    pub fn new(config: Config) -> Result<Shared, UsersError> {
        let users = if config.sasl.enabled {
            Users::from_password_file(&config.sasl.password_file)?
        } else {
            Users::default()
        };
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
            pools: config
                .pool
                .iter()
                .map(|pool| crate::store::PoolConfig {
                    name: pool.name.clone(),
                    prefix: pool.prefix.as_bytes().to_vec(),
                })
                .collect(),
        });
        let pubsub = Arc::new(crate::pubsub::Registry::new());
        pubsub.set_notify_flags(config.notify_flags());
        store.set_observer(Box::new(crate::pubsub::KeyspaceNotifier {
            registry: pubsub.clone(),
            prefixes: config
                .resp
                .notify_key_prefixes
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect(),
        }));
        let limits = Limits {
            item_size_max: config.store.item_size_max.bytes() as usize,
            ..Limits::default()
        };
        let workers = config.worker_threads();
        Ok(Shared {
            clients: Arc::new(crate::clients::Clients::new(&config)),
            verbosity: AtomicUsize::new(usize::from(config.log.verbosity)),
            config,
            store,
            limits,
            users,
            worker_stats: (0..workers).map(|_| WorkerStats::default()).collect(),
            connections: ConnectionStats::default(),
            started: Instant::now(),
            connection_table: parking_lot::Mutex::new(crate::hashing::HashMap::default()),
            next_conn_id: std::sync::atomic::AtomicU64::new(1),
            gates: Gates::new(workers),
            pubsub,
            blocked: crate::blocking::Registry::default(),
            shutting_down: AtomicBool::new(false),
            wakers: parking_lot::Mutex::new(Vec::new()),
            dead_thread: parking_lot::Mutex::new(None),
        })
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
        for waker in self.wakers.lock().iter() {
            let _ = waker.wake();
        }
    }

    fn connection_closed(&self) {
        self.connections
            .curr_connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Registers a new connection for `stats conns`.
    fn connection_opened(&self, transport: &Transport, resp: bool, now_ms: u64) -> Arc<ConnInfo> {
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ConnInfo {
            id,
            peer: transport.peer(),
            local: transport.local(),
            fd: transport.fd(),
            client: Default::default(),
            resp,
            opened_ms: now_ms,
            last_active_ms: std::sync::atomic::AtomicU64::new(now_ms),
            name: parking_lot::Mutex::new(Vec::new()),
            kill: AtomicBool::new(false),
        });
        self.connection_table.lock().insert(id, info.clone());
        info
    }

    fn connection_forget(&self, id: u64) {
        self.connection_table.lock().remove(&id);
    }
}

/// What other connections may see of a connection (`stats conns`, CLIENT LIST/KILL).
#[derive(Debug)]
pub struct ConnInfo {
    pub id: u64,
    pub peer: String,
    /// The local end of the socket (`tcp:ip:port`), CLIENT LIST's `laddr`.
    pub local: String,
    /// The socket's file descriptor, CLIENT LIST's `fd`.
    pub fd: i32,
    /// What CLIENT LIST shows of a RESP session's state (kept current by the session).
    pub client: crate::command::resp::ClientShown,
    /// Accepted on the RESP listener.
    pub resp: bool,
    /// When the connection was opened (unix ms).
    pub opened_ms: u64,
    /// When the connection last ran a command (unix ms).
    pub last_active_ms: std::sync::atomic::AtomicU64,
    /// CLIENT SETNAME (empty = none).
    pub name: parking_lot::Mutex<Vec<u8>>,
    /// Set by CLIENT KILL: the owning worker closes the connection at its next wake-up.
    pub kill: AtomicBool,
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
    fn new(workers: usize) -> Gates {
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
}

/// A running server: its threads and the addresses it actually bound.
pub struct Server {
    pub shared: Arc<Shared>,
    /// The memcached TCP addresses bound (port 0 resolved).
    pub tcp_addrs: Vec<SocketAddr>,
    threads: Vec<JoinHandle<()>>,
    unix_path: Option<PathBuf>,
}

const ACCEPTOR_WAKER: Token = Token(usize::MAX);

impl Server {
    /// Binds the listeners and starts every thread.
    pub fn start(config: Config) -> anyhow::Result<Server> {
        raise_fd_limit(config.server.max_connections as u64 + 64);
        let shared = Arc::new(Shared::new(config)?);
        let config = &shared.config;
        let mut tcp = Vec::new();
        let mut dialects = Vec::new();
        for (port, dialect) in [
            (config.server.port, Dialect::MemcacheText),
            (config.server.resp_port, Dialect::Resp),
        ] {
            if port == 0 {
                continue;
            }
            for ip in &config.server.listen {
                let addr = SocketAddr::new(*ip, port);
                let listener = TcpListener::bind(addr)
                    .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
                tcp.push(listener);
                dialects.push(dialect);
            }
        }
        let mut unix = None;
        let mut unix_path = None;
        if !config.server.unix_socket.as_os_str().is_empty() {
            let path = config.server.unix_socket.clone();
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).map_err(|e| {
                anyhow::anyhow!("cannot listen on unix socket {}: {e}", path.display())
            })?;
            std::fs::set_permissions(
                &path,
                std::fs::Permissions::from_mode(config.server.unix_socket_mode),
            )
            .map_err(|e| anyhow::anyhow!("cannot set permissions of {}: {e}", path.display()))?;
            unix = Some(listener);
            unix_path = Some(path);
        }
        let tcp_addrs = tcp
            .iter()
            .zip(&dialects)
            .filter(|(_, d)| **d == Dialect::MemcacheText)
            .map(|(l, _)| l.local_addr())
            .collect::<Result<Vec<_>, _>>()?;

        let mut threads = Vec::new();
        let mut senders = Vec::new();
        let mut worker_wakers = Vec::new();
        for index in 0..shared.worker_stats.len() {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = crossbeam_channel::unbounded();
            shared.wakers.lock().push(waker.clone());
            let worker = Worker {
                index,
                poll,
                inbox: rx,
                shared: shared.clone(),
                ids: Default::default(),
                pending_flush: Default::default(),
                just_parked: Default::default(),
            };
            threads.push(spawn_watched(
                format!("worker-{index}"),
                &shared,
                move || worker.run(),
            )?);
            senders.push(tx);
            worker_wakers.push(waker);
        }
        shared.pubsub.set_sink(Box::new(WorkerSink {
            senders: senders.clone(),
            wakers: worker_wakers.clone(),
        }));
        shared.blocked.set_sink(Box::new(WorkerSink {
            senders: senders.clone(),
            wakers: worker_wakers.clone(),
        }));

        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), ACCEPTOR_WAKER)?);
        shared.wakers.lock().push(waker);
        for (i, listener) in tcp.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(i), Interest::READABLE)?;
        }
        let unix_token = Token(tcp.len());
        if let Some(listener) = unix.as_mut() {
            poll.registry()
                .register(listener, unix_token, Interest::READABLE)?;
        }
        for (listener, dialect) in tcp.iter().zip(&dialects) {
            let name = if *dialect == Dialect::Resp {
                "RESP"
            } else {
                "memcached protocol"
            };
            log::info!("{name} on tcp {}", listener.local_addr()?);
        }
        let acceptor = Acceptor {
            poll,
            tcp,
            dialects,
            unix,
            unix_token,
            senders,
            wakers: worker_wakers,
            next: 0,
            shared: shared.clone(),
        };
        threads.push(spawn_watched("acceptor".into(), &shared, move || {
            acceptor.run()
        })?);

        let maintenance_shared = shared.clone();
        threads.push(spawn_watched("maintenance".into(), &shared, move || {
            maintenance(&maintenance_shared)
        })?);
        if let Some(path) = &unix_path {
            log::info!("memcached protocol on unix socket {}", path.display());
        }
        Ok(Server {
            shared,
            tcp_addrs,
            threads,
            unix_path,
        })
    }

    /// Waits until every thread has stopped (after a shutdown). An error when a thread
    /// ended before the shutdown began (and so caused it): the process must exit non-zero.
    pub fn join(self) -> Result<(), ThreadDied> {
        let mut panicked = None;
        for thread in self.threads {
            let name = thread.thread().name().unwrap_or("unnamed").to_owned();
            if thread.join().is_err() && panicked.is_none() {
                panicked = Some(name);
            }
        }
        if let Some(path) = self.unix_path {
            let _ = std::fs::remove_file(path);
        }
        match self.shared.dead_thread.lock().take().or(panicked) {
            Some(thread) => Err(ThreadDied { thread }),
            None => Ok(()),
        }
    }
}

/// A server thread ended before shutdown (a panic outside a connection's turn, or a failed
/// poll), so the server stopped.
#[derive(Debug, thiserror::Error)]
#[error("thread {thread} died; the server shut down")]
pub struct ThreadDied {
    pub thread: String,
}

/// Starts a named thread running `body` under a [`ThreadWatch`].
fn spawn_watched(
    name: String,
    shared: &Arc<Shared>,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let watch = ThreadWatch {
        shared: shared.clone(),
    };
    std::thread::Builder::new().name(name).spawn(move || {
        let _watch = watch;
        body();
    })
}

/// Dropped when its thread ends, normally or by a panic. Before shutdown, that thread died:
/// record it and shut the others down, so the process exits non-zero instead of running on
/// without it (a dead worker still gets its share of new connections from the acceptor).
struct ThreadWatch {
    shared: Arc<Shared>,
}

impl Drop for ThreadWatch {
    fn drop(&mut self) {
        if self.shared.is_shutting_down() {
            return;
        }
        let current = std::thread::current();
        let name = current.name().unwrap_or("unnamed");
        log::error!("thread {name} died; shutting the server down");
        self.shared
            .dead_thread
            .lock()
            .get_or_insert_with(|| name.to_owned());
        self.shared.begin_shutdown();
    }
}

/// Delivers pub/sub messages to the workers that own the subscribers.
struct WorkerSink {
    senders: Vec<Sender<WorkerMsg>>,
    wakers: Vec<Arc<Waker>>,
}

impl crate::pubsub::Deliver for WorkerSink {
    fn deliver(&self, worker: usize, batch: crate::pubsub::Batch) {
        // Published from the subscribers' own worker: no hand-off, no wake-up. The publishing
        // connection's own messages follow its command's reply (`outbox::append_own_messages`);
        // the others' go out right after the publisher's turn.
        if outbox::current_worker() == Some(worker) {
            outbox::queue(batch);
            return;
        }
        if let Some(sender) = self.senders.get(worker) {
            if sender.send(WorkerMsg::Deliver(batch)).is_ok() {
                let _ = self.wakers[worker].wake();
            }
        }
    }
}

impl crate::blocking::Wake for WorkerSink {
    fn wake(&self, worker: usize, served: crate::blocking::Served) {
        // Always through the inbox, also to this very worker: the parked connection is not
        // the one whose turn is running.
        if let Some(sender) = self.senders.get(worker) {
            if sender.send(WorkerMsg::Unblock(served)).is_ok() {
                let _ = self.wakers[worker].wake();
            }
        }
    }
}

/// Accepts connections and deals them to workers.
struct Acceptor {
    poll: Poll,
    tcp: Vec<TcpListener>,
    /// The protocol of each listener in `tcp`.
    dialects: Vec<Dialect>,
    unix: Option<UnixListener>,
    unix_token: Token,
    senders: Vec<Sender<WorkerMsg>>,
    wakers: Vec<Arc<Waker>>,
    next: usize,
    shared: Arc<Shared>,
}

impl Acceptor {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        loop {
            if let Err(e) = self.poll.poll(&mut events, None) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("acceptor: poll failed: {e}");
                    return;
                }
            }
            if self.shared.is_shutting_down() {
                return;
            }
            for event in events.iter() {
                let token = event.token();
                if token == ACCEPTOR_WAKER {
                    continue;
                }
                self.accept_all(token);
            }
        }
    }

    fn accept_all(&mut self, token: Token) {
        loop {
            let dialect = self
                .dialects
                .get(token.0)
                .copied()
                .unwrap_or(Dialect::MemcacheText);
            let accepted = if token == self.unix_token {
                match self.unix.as_ref().map(|l| l.accept()) {
                    Some(Ok((stream, _))) => Transport::Unix(stream),
                    Some(Err(e)) => {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            log::warn!("accept on unix socket failed: {e}");
                        }
                        return;
                    }
                    None => return,
                }
            } else {
                match self.tcp[token.0].accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        Transport::Tcp(stream)
                    }
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            log::warn!("accept failed: {e}");
                            // Out of descriptors and the like: back off instead of spinning.
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        return;
                    }
                }
            };
            self.hand_over(accepted, dialect);
        }
    }

    fn hand_over(&mut self, mut transport: Transport, dialect: Dialect) {
        let connections = &self.shared.connections;
        let current = connections.curr_connections.load(Ordering::Relaxed);
        if current >= self.shared.config.server.max_connections as u64 {
            connections
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            let refusal: &[u8] = match dialect {
                Dialect::Resp => b"-ERR max number of clients reached\r\n",
                _ => reply::TOO_MANY_CONNECTIONS,
            };
            let _ = transport.write(refusal);
            log::info!("rejected {}: too many open connections", transport.peer());
            return;
        }
        connections.curr_connections.fetch_add(1, Ordering::Relaxed);
        connections
            .total_connections
            .fetch_add(1, Ordering::Relaxed);
        let worker = self.next % self.senders.len();
        self.next = self.next.wrapping_add(1);
        if self.senders[worker]
            .send(WorkerMsg::NewConn(transport, dialect))
            .is_ok()
        {
            let _ = self.wakers[worker].wake();
        } else {
            self.shared.connection_closed();
        }
    }
}

/// Raises the soft limit on open files so `-c` connections fit (as memcached does at start),
/// never above the hard limit; logs when even that is too low.
fn raise_fd_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= wanted
    {
        return;
    }
    let target = wanted.min(limit.rlim_max);
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 || target < wanted {
        log::warn!(
            "open file limit is {target}; fewer than the {wanted} needed for -c connections"
        );
    }
}

/// Reclaims expired segments and packs cold values in the background, ten times a second,
/// until shutdown.
fn maintenance(shared: &Shared) {
    /// At most this many segments are walked per tick (bounding the time a tick takes).
    const SEGMENTS_PER_TICK: usize = 16;
    while !shared.is_shutting_down() {
        std::thread::sleep(Duration::from_millis(100));
        shared.store.sweep(unix_millis(), SEGMENTS_PER_TICK);
        shared.store.compress_cold(unix_millis());
    }
}
