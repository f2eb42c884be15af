//! A worker thread: one `mio::Poll` and the connections it owns.
//!
//! The acceptor hands new sockets over a channel and wakes the worker through its `Waker`.
//! Connections live in a `Slab` whose key is their mio token. Edge-triggered readiness means a
//! connection that still has input after its turn must be revisited without a new event: it
//! goes on the `again` list and the next poll does not block. Nothing here knows a protocol.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::command::{Context, Dialect, Session};
use crate::metrics::WorkerStats;
use crate::server::conn::{Conn, Next};
use crate::server::transport::Transport;
use crate::server::{unix_millis, Shared};

thread_local! {
    /// Pub/sub messages published on this worker for this worker's own connections.
    pub static LOCAL_OUTBOX: RefCell<crate::pubsub::Batch> = const { RefCell::new(Vec::new()) };
    static CURRENT_WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Moves the messages published for connection `conn_id` itself (a RESP3 client's keyspace
/// notifications of its own writes, a PUBLISH to a channel it subscribes to) out of the
/// outbox to the end of its output, right after the reply of the command that published
/// them, where Redis 7.2 puts them (before 7.2 they came first, and could land inside an
/// EXEC's array). Other connections' messages stay in the outbox.
pub fn append_own_messages(conn_id: u64, wbuf: &mut Vec<u8>) {
    LOCAL_OUTBOX.with(|outbox| {
        let mut outbox = outbox.borrow_mut();
        if !outbox.iter().any(|(id, _)| *id == conn_id) {
            return;
        }
        outbox.retain(|(id, frame)| {
            let mine = *id == conn_id;
            if mine {
                wbuf.extend_from_slice(frame);
            }
            !mine
        });
    });
}

/// The index of the worker running on this thread, if any.
pub fn current_worker() -> Option<usize> {
    CURRENT_WORKER.with(Cell::get)
}

/// The token of the worker's waker; connection tokens are slab keys, always below it.
pub const WAKER: Token = Token(usize::MAX);

/// A message from the acceptor (or the shutdown path) to a worker.
pub enum WorkerMsg {
    NewConn(Transport, Dialect),
    /// Pub/sub messages for this worker's connections: `(conn_id, frame)` pairs.
    Deliver(crate::pubsub::Batch),
}

pub struct Worker {
    pub index: usize,
    pub poll: Poll,
    pub inbox: Receiver<WorkerMsg>,
    pub shared: Arc<Shared>,
    /// Connection id -> slab key, for pub/sub deliveries addressed by id.
    pub ids: std::cell::RefCell<crate::hashing::HashMap<u64, usize>>,
    /// Connections with delivered pub/sub messages not yet flushed (slab keys).
    pub pending_flush: std::cell::RefCell<Vec<usize>>,
}

impl Worker {
    pub fn run(mut self) {
        CURRENT_WORKER.with(|current| current.set(Some(self.index)));
        let mut conns: Slab<Conn> = Slab::new();
        let mut events = Events::with_capacity(1024);
        let mut again: Vec<usize> = Vec::new();
        let mut again_next: Vec<usize> = Vec::new();
        let stats: &WorkerStats = &self.shared.worker_stats[self.index];
        loop {
            let timeout = if again.is_empty() {
                Some(Duration::from_millis(500))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("worker {}: poll failed: {e}", self.index);
                    break;
                }
            }
            let ctx = Context {
                shared: &self.shared,
                stats,
                worker: self.index,
                now_ms: unix_millis(),
            };
            if self.shared.is_shutting_down() {
                for (_, conn) in conns.iter_mut() {
                    conn.flush_now(stats);
                }
                break;
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    while let Ok(msg) = self.inbox.try_recv() {
                        match msg {
                            WorkerMsg::NewConn(transport, dialect) => {
                                let entry = conns.vacant_entry();
                                let token = Token(entry.key());
                                let resp = dialect == Dialect::Resp;
                                let info =
                                    self.shared
                                        .connection_opened(&transport, resp, unix_millis());
                                let session = match dialect {
                                    Dialect::Resp => Session::resp(
                                        info.clone(),
                                        !self.shared.config.resp.requirepass.is_empty(),
                                    ),
                                    _ => Session::memcache(),
                                };
                                let mut conn = Conn::new(transport, info, session);
                                if let Err(e) = self.poll.registry().register(
                                    &mut conn.transport,
                                    token,
                                    Interest::READABLE | Interest::WRITABLE,
                                ) {
                                    log::warn!("cannot register a new connection: {e}");
                                    self.shared.connection_forget(conn.info.id);
                                    self.shared.connection_closed();
                                    continue;
                                }
                                self.ids.borrow_mut().insert(conn.info.id, token.0);
                                entry.insert(conn);
                                again_next.push(token.0);
                            }
                            WorkerMsg::Deliver(batch) => self.deliver(&mut conns, batch),
                        }
                    }
                    // A wake-up may also mean CLIENT KILL marked some of our connections.
                    let killed: Vec<usize> = conns
                        .iter()
                        .filter(|(_, conn)| {
                            conn.info.kill.load(std::sync::atomic::Ordering::Relaxed)
                        })
                        .map(|(key, _)| key)
                        .collect();
                    for key in killed {
                        self.close(&mut conns, key);
                    }
                    continue;
                }
                let key = event.token().0;
                if let Some(conn) = conns.get_mut(key) {
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        conn.set_readable();
                    }
                    self.drive(&mut conns, key, &ctx, &mut again_next);
                }
            }
            for key in again.drain(..) {
                if conns.contains(key) {
                    self.drive(&mut conns, key, &ctx, &mut again_next);
                }
            }
            self.flush_deliveries(&mut conns, &ctx);
            again_next.sort_unstable();
            again_next.dedup();
            std::mem::swap(&mut again, &mut again_next);
        }
        for mut conn in conns.drain() {
            conn.session.forget_subscriptions(&self.shared.pubsub);
            let _ = self.poll.registry().deregister(&mut conn.transport);
            self.shared.connection_forget(conn.info.id);
            self.shared.connection_closed();
        }
    }

    fn drive(&self, conns: &mut Slab<Conn>, key: usize, ctx: &Context<'_>, again: &mut Vec<usize>) {
        let conn = &mut conns[key];
        let next = conn.turn(ctx);
        // The turn may have published to other subscribers on this very worker.
        let local = LOCAL_OUTBOX.with(|outbox| std::mem::take(&mut *outbox.borrow_mut()));
        if !local.is_empty() {
            self.deliver(conns, local);
        }
        match next {
            Next::Wait => {}
            Next::Again => again.push(key),
            Next::Close => self.close(conns, key),
            Next::Shutdown => {
                self.close(conns, key);
                self.shared.begin_shutdown();
            }
        }
    }

    /// Queues a batch of pub/sub messages, then flushes each receiving connection once.
    fn deliver(&self, conns: &mut Slab<Conn>, batch: crate::pubsub::Batch) {
        let mut touched: Vec<usize> = Vec::new();
        for (conn_id, frame) in batch {
            let Some(key) = self.ids.borrow().get(&conn_id).copied() else {
                continue;
            };
            if let Some(conn) = conns.get_mut(key).filter(|c| c.info.id == conn_id) {
                conn.queue_message(&frame);
                if !touched.contains(&key) {
                    touched.push(key);
                }
            }
        }
        // Flushed once at the end of this loop iteration, so messages from many publishes
        // leave in one write per subscriber.
        let mut pending = self.pending_flush.borrow_mut();
        for key in touched {
            if !pending.contains(&key) {
                pending.push(key);
            }
        }
    }

    /// Sends what deliveries queued since the last call.
    fn flush_deliveries(&self, conns: &mut Slab<Conn>, ctx: &Context<'_>) {
        let pending = std::mem::take(&mut *self.pending_flush.borrow_mut());
        for key in pending {
            if let Some(conn) = conns.get_mut(key) {
                if !conn.flush_messages(ctx) {
                    self.close(conns, key);
                }
            }
        }
    }

    fn close(&self, conns: &mut Slab<Conn>, key: usize) {
        let mut conn = conns.remove(key);
        self.ids.borrow_mut().remove(&conn.info.id);
        conn.session.forget_subscriptions(&self.shared.pubsub);
        let _ = self.poll.registry().deregister(&mut conn.transport);
        self.shared.connection_forget(conn.info.id);
        self.shared.connection_closed();
        log::debug!("closed {}", conn.info.peer);
    }
}
