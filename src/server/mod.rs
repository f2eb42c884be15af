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
mod listener;
pub mod transport;
mod worker;

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::config::{Config, LoadErrorAction};
use ferrocache_protocol::memcache::reply;

use crate::conn_info::ConnInfo;
use crate::shared::{unix_millis, Shared};
use listener::Listener;
pub use transport::{TlsStream, Transport};
use worker::{Worker, WorkerMsg, WAKER};

/// The connection table's bookkeeping, done by the threads that own connections.
impl Shared {
    pub(super) fn connection_closed(&self) {
        self.connections
            .curr_connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Registers a new connection for `stats conns`.
    pub(super) fn connection_opened(
        &self,
        transport: &Transport,
        listener: Listener,
        now_ms: u64,
    ) -> Arc<ConnInfo> {
        let id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        let endpoint = crate::conn_info::Endpoint {
            id,
            peer: transport.peer(),
            local: transport.local(),
            fd: transport.fd(),
        };
        let info = Arc::new(ConnInfo::new(endpoint, listener == Listener::Resp, now_ms));
        self.connection_table.lock().insert(id, info.clone());
        info
    }

    pub(super) fn connection_forget(&self, id: u64) {
        self.connection_table.lock().remove(&id);
    }
}

/// A running server: its threads and the addresses it actually bound.
pub struct Server {
    pub shared: Arc<Shared>,
    /// The memcached TCP addresses bound (port 0 resolved).
    pub tcp_addrs: Vec<SocketAddr>,
    /// The HTTP port's address, when it is on.
    pub http_addr: Option<SocketAddr>,
    threads: Vec<JoinHandle<()>>,
    unix_path: Option<PathBuf>,
}

const ACCEPTOR_WAKER: Token = Token(usize::MAX);

impl Server {
    /// Binds the listeners and starts every thread.
    pub fn start(config: Config) -> Result<Server, StartError> {
        raise_fd_limit(config.server.max_connections as u64 + 64);
        let mut shared = Shared::new(config, crate::command::catalogue())?;
        shared.tls =
            crate::tls::TlsState::for_ports(&shared.config.tls, shared.config.needs_tls())?;
        let shared = Arc::new(shared);
        // The snapshot loads once every thread runs, so clients meanwhile get a "loading"
        // answer instead of a refused connection (as Redis's -LOADING).
        let snapshot = shared.config.persistence.path();
        let snapshot =
            (shared.config.persistence.load_on_start && snapshot.exists()).then_some(snapshot);
        if snapshot.is_some() {
            shared.persistence.set_loading(true);
        }
        let config = &shared.config;
        let mut tcp = Vec::new();
        let mut listeners = Vec::new();
        let mut tls = Vec::new();
        for (port, kind, over_tls) in [
            (config.server.port, Listener::Memcache, false),
            (config.server.resp_port, Listener::Resp, false),
            (config.tls.port, Listener::Memcache, true),
            (config.tls.resp_port, Listener::Resp, true),
        ] {
            if port == 0 {
                continue;
            }
            for ip in &config.server.listen {
                let addr = SocketAddr::new(*ip, port);
                let listener =
                    TcpListener::bind(addr).map_err(|error| StartError::Listen { addr, error })?;
                tcp.push(listener);
                listeners.push(kind);
                tls.push(over_tls);
            }
        }
        let mut unix = None;
        let mut unix_path = None;
        if !config.server.unix_socket.as_os_str().is_empty() {
            let path = config.server.unix_socket.clone();
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).map_err(|error| StartError::UnixSocket {
                path: path.clone(),
                error,
            })?;
            std::fs::set_permissions(
                &path,
                std::fs::Permissions::from_mode(config.server.unix_socket_mode),
            )
            .map_err(|error| StartError::UnixSocketMode {
                path: path.clone(),
                error,
            })?;
            unix = Some(listener);
            unix_path = Some(path);
        }
        let http = if config.http.listen.is_empty() {
            None
        } else {
            Some(crate::http::HttpPort::bind(&config.http)?)
        };
        let http_addr = http
            .as_ref()
            .map(|port| port.local_addr())
            .transpose()
            .map_err(StartError::LocalAddr)?;
        let tcp_addrs = tcp
            .iter()
            .zip(listeners.iter().zip(&tls))
            .filter(|(_, (kind, over_tls))| **kind == Listener::Memcache && !**over_tls)
            .map(|(l, _)| l.local_addr())
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError::LocalAddr)?;

        let mut threads = Vec::new();
        let mut senders = Vec::new();
        let mut worker_wakers = Vec::new();
        for index in 0..shared.worker_count() {
            let poll = Poll::new().map_err(StartError::Poll)?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?);
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
            threads.push(
                spawn_watched(format!("worker-{index}"), &shared, move || worker.run())
                    .map_err(StartError::Thread)?,
            );
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

        let poll = Poll::new().map_err(StartError::Poll)?;
        let waker =
            Arc::new(Waker::new(poll.registry(), ACCEPTOR_WAKER).map_err(StartError::Poll)?);
        shared.wakers.lock().push(waker);
        for (i, listener) in tcp.iter_mut().enumerate() {
            poll.registry()
                .register(listener, Token(i), Interest::READABLE)
                .map_err(StartError::Poll)?;
        }
        let unix_token = Token(tcp.len());
        if let Some(listener) = unix.as_mut() {
            poll.registry()
                .register(listener, unix_token, Interest::READABLE)
                .map_err(StartError::Poll)?;
        }
        for ((listener, kind), over_tls) in tcp.iter().zip(&listeners).zip(&tls) {
            let name = kind.name();
            let over = if *over_tls { " over TLS" } else { "" };
            let addr = listener.local_addr().map_err(StartError::LocalAddr)?;
            log::info!("{name}{over} on tcp {addr}");
        }
        let acceptor = Acceptor {
            poll,
            tcp,
            listeners,
            tls,
            unix,
            unix_token,
            senders,
            wakers: worker_wakers,
            next: 0,
            shared: shared.clone(),
        };
        threads.push(
            spawn_watched("acceptor".into(), &shared, move || acceptor.run())
                .map_err(StartError::Thread)?,
        );

        if let Some(port) = http {
            let http_shared = shared.clone();
            threads.push(
                spawn_watched("http".into(), &shared, move || port.run(http_shared))
                    .map_err(StartError::Thread)?,
            );
            if let Some(addr) = http_addr {
                log::info!("HTTP on tcp {addr}");
            }
        }
        let maintenance_shared = shared.clone();
        threads.push(
            spawn_watched("maintenance".into(), &shared, move || {
                maintenance(&maintenance_shared)
            })
            .map_err(StartError::Thread)?,
        );
        let saver_shared = shared.clone();
        threads.push(
            spawn_watched("saver".into(), &shared, move || saver(&saver_shared))
                .map_err(StartError::Thread)?,
        );
        if let Some(path) = &unix_path {
            log::info!("memcached protocol on unix socket {}", path.display());
        }
        let server = Server {
            shared,
            tcp_addrs,
            http_addr,
            threads,
            unix_path,
        };
        if let Some(path) = snapshot {
            let loaded = load_snapshot(&server.shared, &path);
            if let Err(error) = loaded {
                if server.shared.config.persistence.on_load_error == LoadErrorAction::Exit {
                    server.shared.begin_shutdown();
                    let _ = server.join();
                    return Err(StartError::Snapshot(error));
                }
                log::error!("snapshot not loaded, starting empty: {error}");
            }
        }
        let shared = &server.shared;
        crate::replication::runner::start(shared);
        if let Some((host, port)) = shared.config.replication.primary() {
            log::info!("replica of {host}:{port}");
            shared.replication.follow(host, port);
        }
        server.shared.serving.store(true, Ordering::Release);
        Ok(server)
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

/// Why [`Server::start`] failed. The messages are the ones start-up has always logged.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The shared state (users, ACL file) could not be built from the config.
    #[error(transparent)]
    Shared(#[from] crate::shared::SharedError),
    /// The TLS certificates or settings were refused.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A TCP listener (memcached, RESP, or their TLS ports) could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    /// The unix socket could not be bound.
    #[error("cannot listen on unix socket {}: {error}", path.display())]
    UnixSocket {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The unix socket's permissions (`unix_socket_mode`) could not be set.
    #[error("cannot set permissions of {}: {error}", path.display())]
    UnixSocketMode {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The HTTP port could not start.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// A bound listener could not tell its address.
    #[error(transparent)]
    LocalAddr(std::io::Error),
    /// A poll, its waker or a registration with it failed.
    #[error(transparent)]
    Poll(std::io::Error),
    /// A thread could not be started.
    #[error(transparent)]
    Thread(std::io::Error),
    /// The snapshot was refused and `on_load_error` is `exit`.
    #[error("snapshot not loaded: {0}")]
    Snapshot(crate::persist::LoadError),
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
        if crate::pubsub::outbox::current_worker() == Some(worker) {
            crate::pubsub::outbox::queue(batch);
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
    /// The kind of each listener in `tcp`.
    listeners: Vec<Listener>,
    /// Whether each listener in `tcp` speaks TLS.
    tls: Vec<bool>,
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
            let listener = self
                .listeners
                .get(token.0)
                .copied()
                .unwrap_or(Listener::Memcache);
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
                    Ok((mut stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        if self.refused_by_protected_mode(&mut stream, peer, listener) {
                            continue;
                        }
                        match (self.tls.get(token.0), &self.shared.tls) {
                            (Some(true), Some(tls)) => {
                                match TlsStream::new(stream, tls.server_config()) {
                                    Ok(stream) => Transport::Tls(Box::new(stream)),
                                    Err(e) => {
                                        log::warn!("cannot start a TLS session: {e}");
                                        continue;
                                    }
                                }
                            }
                            _ => Transport::Tcp(stream),
                        }
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
            self.hand_over(accepted, listener);
        }
    }

    /// Redis's protected mode: while it is on and the listener's protocol has no password
    /// (RESP: the `default` user is `nopass`, as Redis checks; memcached: no SASL), a client from beyond loopback gets the
    /// protocol's explanation and is closed (counted as rejected, as Redis does). Unix
    /// sockets are always local. A TLS client is closed without the text: the handshake has
    /// not run yet, so nothing could carry it.
    fn refused_by_protected_mode(
        &self,
        stream: &mut mio::net::TcpStream,
        peer: SocketAddr,
        listener: Listener,
    ) -> bool {
        let shared = &self.shared;
        if !shared.protected_mode.load(Ordering::Relaxed) || is_loopback(peer.ip()) {
            return false;
        }
        let (password_set, refusal): (bool, &[u8]) = match listener {
            Listener::Resp => (
                !shared.acl.default_opens_without_password(),
                crate::command::resp::PROTECTED_MODE_DENIED,
            ),
            Listener::Memcache => (shared.config.sasl.enabled, reply::PROTECTED_MODE_DENIED),
        };
        if password_set {
            return false;
        }
        shared
            .connections
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        log::warn!("protected mode: refused {peer} (no password is set; see protected_mode)");
        // A fresh socket's send buffer takes the one line; a short write only shortens it.
        let _ = stream.write(refusal);
        true
    }

    fn hand_over(&mut self, mut transport: Transport, listener: Listener) {
        let connections = &self.shared.connections;
        let current = connections.curr_connections.load(Ordering::Relaxed);
        if current >= self.shared.config.server.max_connections as u64 {
            connections
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            let refusal: &[u8] = match listener {
                Listener::Resp => b"-ERR max number of clients reached\r\n",
                Listener::Memcache => reply::TOO_MANY_CONNECTIONS,
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
            .send(WorkerMsg::NewConn(transport, listener))
            .is_ok()
        {
            let _ = self.wakers[worker].wake();
        } else {
            self.shared.connection_closed();
        }
    }
}

/// Loopback, also as an IPv4-mapped IPv6 address (a dual-stack listener's view of 127.0.0.1).
fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Raises the soft limit on open files so `-c` connections fit (as memcached does at start),
/// never above the hard limit; logs when even that is too low.
fn raise_fd_limit(wanted: u64) {
    if let Err(too_low) = crate::sys::raise_fd_limit(wanted) {
        log::warn!("{too_low} for -c connections");
    }
}

/// Loads the snapshot file at start (the caller set the loading flag); clears the loading
/// flag whatever the outcome.
fn load_snapshot(shared: &Shared, path: &std::path::Path) -> Result<(), crate::persist::LoadError> {
    #[cfg(debug_assertions)]
    crate::test_hooks::delay_snapshot_load();
    let threads = shared.worker_stats.len().max(1);
    let progress = &shared.persistence.progress;
    let result = crate::persist::load(&shared.store, path, unix_millis(), threads, progress);
    if let Ok(report) = &result {
        shared.persistence.loaded(report);
        log::info!(
            "snapshot {} loaded: {} items ({} expired, {} refused) in {:?}",
            path.display(),
            report.loaded,
            report.expired,
            report.refused,
            report.elapsed
        );
    }
    shared.persistence.set_loading(false);
    result.map(|_| ())
}

/// Runs BGSAVE's saves and the `save` rules until shutdown; with rules set it saves once
/// more then, as Redis does when save points are configured.
fn saver(shared: &Shared) {
    let configured = shared.config.persistence.save_rules();
    // Saves asked for while serving take a share of a core (`persist::pace`); the last one,
    // at shutdown, has the machine to itself.
    let save = |why: &str, pace: crate::persist::Pace| {
        if shared.persistence.is_loading() {
            // Saving a half-loaded store would replace the full snapshot on disk.
            log::warn!("not saving ({why}): the snapshot is still loading");
            return;
        }
        let Ok(guard) = shared.persistence.begin(&shared.store, unix_millis()) else {
            return; // a SAVE runs on a worker right now
        };
        log::info!("background saving started ({why})");
        let path = shared.config.persistence.path();
        let result = crate::persist::save(&shared.store, &path, unix_millis(), pace);
        match &result {
            Ok(report) => log::info!(
                "background saving done: {} items, {} bytes in {:?}",
                report.items,
                report.bytes,
                report.elapsed
            ),
            Err(error) => log::error!("background saving failed: {error}"),
        }
        guard.finish(&result, unix_millis());
    };
    loop {
        let asked = shared.persistence.wait_for_request(Duration::from_secs(1));
        if shared.is_shutting_down() {
            break;
        }
        if asked {
            save("BGSAVE", crate::persist::pace::BACKGROUND);
        } else if shared.persistence.rule_due(
            &shared.persistence.rules(&configured),
            &shared.store,
            unix_millis(),
        ) {
            save("save rule", crate::persist::pace::BACKGROUND);
        }
    }
    // The rules in force now (CONFIG SET save may have changed them).
    if !shared.persistence.rules(&configured).is_empty()
        && !shared.persistence.shutdown_save_is_settled()
    {
        save("shutdown", crate::persist::Pace::Full);
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
