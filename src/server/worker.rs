//! A worker thread: one `mio::Poll` and the connections it owns.
//!
//! The acceptor hands new sockets over a channel and wakes the worker through its `Waker`.
//! Connections live in a `Slab` whose key is their mio token. Edge-triggered readiness means a
//! connection that still has input after its turn must be revisited without a new event: it
//! goes on the `again` list and the next poll does not block. Nothing here knows a protocol.
//!
//! A panic during a connection's turn is contained: [`Worker::drive`] catches it, closes that
//! connection alone (with the cleanup of any close), counts it in `worker_panics` and logs
//! it with the start of the request that caused it; the worker serves on. A panic anywhere
//! else ends the thread, and the server then shuts down and exits non-zero (see
//! [`super::Server::join`]). The worker never interprets the bytes it logs.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::command::{Context, Session};
use crate::metrics::WorkerStats;
use crate::pubsub::outbox;
use crate::server::conn::{Conn, Next};
use crate::server::listener::Listener;
use crate::server::transport::Transport;
use crate::shared::{unix_millis, Shared};

/// The token of the worker's waker; connection tokens are slab keys, always below it.
pub const WAKER: Token = Token(usize::MAX);

/// A message from the acceptor (or the shutdown path) to a worker.
pub enum WorkerMsg {
    /// An accepted connection and the kind of port it came in on.
    NewConn(Transport, Listener),
    /// Pub/sub messages for this worker's connections: `(conn_id, frame)` pairs.
    Deliver(crate::pubsub::Batch),
    /// The reply of a parked connection's blocking pop, served by a push.
    Unblock(crate::blocking::Served),
}

/// A parked connection with a timeout, as the worker tracks it.
struct Deadline {
    at_ms: u64,
    key: usize,
    conn_id: u64,
    seq: u64,
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
    /// Connections whose turn this iteration left them parked (slab keys), for their timeouts.
    pub just_parked: std::cell::RefCell<Vec<usize>>,
}

impl Worker {
    pub fn run(mut self) {
        outbox::set_current_worker(self.index);
        let mut conns: Slab<Conn> = Slab::new();
        let mut events = Events::with_capacity(1024);
        let mut again: Vec<usize> = Vec::new();
        let mut again_next: Vec<usize> = Vec::new();
        let mut deadlines: Vec<Deadline> = Vec::new();
        let mut next_idle_check_ms = 0;
        let stats: &WorkerStats = &self.shared.worker_stats[self.index];
        loop {
            let mut timeout = if again.is_empty() {
                Duration::from_millis(500)
            } else {
                Duration::ZERO
            };
            if let Some(first) = deadlines.iter().map(|d| d.at_ms).min() {
                let wait = first.saturating_sub(unix_millis());
                timeout = timeout.min(Duration::from_millis(wait));
            }
            let timeout = Some(timeout);
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
                            WorkerMsg::NewConn(transport, listener) => {
                                let entry = conns.vacant_entry();
                                let token = Token(entry.key());
                                let info = self.shared.connection_opened(
                                    &transport,
                                    listener,
                                    unix_millis(),
                                );
                                let session = match listener {
                                    Listener::Resp => Session::resp(
                                        info.clone(),
                                        !self.shared.acl.default_opens_without_password(),
                                    ),
                                    Listener::Memcache => Session::memcache(),
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
                            WorkerMsg::Unblock(served) => {
                                deadlines.retain(|d| d.seq != served.seq);
                                self.unblock(&mut conns, served, &ctx, &mut again_next);
                            }
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
            self.track_parked(&conns, &mut deadlines);
            self.expire_parked(&mut conns, &mut deadlines, &mut again_next);
            if ctx.now_ms >= next_idle_check_ms {
                next_idle_check_ms = ctx.now_ms + 1000;
                self.close_idle(&mut conns, ctx.now_ms);
            }
            self.flush_deliveries(&mut conns, &ctx);
            #[cfg(debug_assertions)]
            if crate::test_hooks::take_panic_after_turn() {
                panic!("test hook: worker {} panics outside a turn", self.index);
            }
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

    /// Gives connection `key` a turn, and acts on what it asks for next.
    ///
    /// A panic during the turn closes this connection only. Catching it is sound because
    /// nothing the turn touched is used in a half-updated state afterwards:
    /// - the connection itself (buffers, protocol session) is discarded; [`Worker::close`]
    ///   needs only its id, transport and pub/sub lists, and a session records a
    ///   subscription before registering it, so the lists cover every registration;
    /// - every lock is parking_lot (store shards, TTL buckets, segment pool, worker gates,
    ///   pub/sub registry, connection table): guards are released while unwinding and
    ///   nothing is poisoned, so no other connection blocks or fails on them;
    /// - the store changes only through its own operations, each complete before command
    ///   code regains control. A panic in command code inside `Store::edit` still settles
    ///   the entry while unwinding (its `Drop`), so heap and pool byte counts stay true. What
    ///   a panicking command loses is its own effect: the writes it made before panicking
    ///   stay, the rest never happens, and its reply is not sent;
    /// - this thread's outbox of pub/sub messages is delivered as after any turn.
    ///
    /// `AssertUnwindSafe` is needed because the turn borrows the connection and the context
    /// mutably or through cells; the list above is why observing them after a panic is fine.
    fn drive(&self, conns: &mut Slab<Conn>, key: usize, ctx: &Context<'_>, again: &mut Vec<usize>) {
        let conn = &mut conns[key];
        let next = match std::panic::catch_unwind(AssertUnwindSafe(|| conn.turn(ctx))) {
            Ok(next) => next,
            Err(payload) => {
                WorkerStats::incr(&ctx.stats.worker_panics);
                log::error!(
                    "worker {}: a request of connection {} ({}) panicked: {}; closing that \
                     connection. The request began: {}",
                    self.index,
                    conn.info.id,
                    conn.info.peer,
                    panic_message(payload.as_ref()),
                    request_head(conn.unconsumed_input()),
                );
                Next::Close
            }
        };
        // The turn may have published to other subscribers on this very worker.
        let local = outbox::take_all();
        if !local.is_empty() {
            self.deliver(conns, local);
        }
        match next {
            Next::Wait => {
                if conns[key].session.parked().is_some() {
                    self.just_parked.borrow_mut().push(key);
                }
            }
            Next::Again => again.push(key),
            Next::Close => self.close(conns, key),
            Next::HandOff => {
                let stream = conns[key].transport.dup_tcp();
                let psync = conns[key].session.take_psync();
                self.close(conns, key);
                match (stream, psync) {
                    (Some(stream), Some(psync)) => {
                        crate::replication::primary::attach(self.shared.clone(), stream, psync)
                    }
                    _ => log::warn!("a PSYNC over a unix socket or TLS is not served"),
                }
            }
            Next::Shutdown => {
                self.close(conns, key);
                self.shared.begin_shutdown();
            }
        }
    }

    /// Hands a served blocking pop to its parked connection; gives the elements back to the
    /// list when the connection is gone (closed after it was served).
    fn unblock(
        &self,
        conns: &mut Slab<Conn>,
        served: crate::blocking::Served,
        ctx: &Context<'_>,
        again: &mut Vec<usize>,
    ) {
        let key = self.ids.borrow().get(&served.conn_id).copied();
        let conn = key.and_then(|key| conns.get_mut(key).map(|conn| (key, conn)));
        match conn {
            Some((key, conn))
                if conn.info.id == served.conn_id
                    && conn.session.parked().is_some_and(|p| p.seq == served.seq) =>
            {
                // An error a woken client gets (NOGROUP, UNBLOCKED) counts as Redis's
                // updateStatsOnUnblock counts it.
                if crate::command::resp::count_error(ctx, &served.reply) {
                    if let Some(parked) = conn.session.parked() {
                        let latency = &self.shared.latency[ctx.worker];
                        latency
                            .fail_after_block(crate::metrics::latency::Proto::Resp, parked.command);
                    }
                }
                conn.resume(&served.reply);
                again.push(key);
            }
            _ => {
                if let Some(give_back) = served.give_back {
                    give_back.apply(&self.shared.store, ctx.now_ms);
                }
            }
        }
    }

    /// Notes the timeouts of connections that parked during this iteration.
    fn track_parked(&self, conns: &Slab<Conn>, deadlines: &mut Vec<Deadline>) {
        for key in self.just_parked.borrow_mut().drain(..) {
            let Some(conn) = conns.get(key) else {
                continue;
            };
            let Some(parked) = conn.session.parked() else {
                continue;
            };
            let Some(at_ms) = parked.deadline_ms else {
                continue;
            };
            if !deadlines.iter().any(|d| d.seq == parked.seq) {
                deadlines.push(Deadline {
                    at_ms,
                    key,
                    conn_id: conn.info.id,
                    seq: parked.seq,
                });
            }
        }
    }

    /// Answers the parked connections whose timeout passed. One a push took out of the
    /// registry meanwhile is left to its `Unblock` (retried a moment later if the push found
    /// nothing and put it back).
    fn expire_parked(
        &self,
        conns: &mut Slab<Conn>,
        deadlines: &mut Vec<Deadline>,
        again: &mut Vec<usize>,
    ) {
        let now = unix_millis();
        deadlines.retain_mut(|deadline| {
            if deadline.at_ms > now {
                return true;
            }
            let Some(conn) = conns
                .get_mut(deadline.key)
                .filter(|c| c.info.id == deadline.conn_id)
                .filter(|c| c.session.parked().is_some_and(|p| p.seq == deadline.seq))
            else {
                return false; // closed or already resumed
            };
            if !self.shared.blocked.cancel(deadline.seq) {
                deadline.at_ms = now + 1;
                return true;
            }
            let reply = conn
                .session
                .parked()
                .map(|p| p.timeout_reply.clone())
                .unwrap_or_default();
            conn.resume(&reply);
            again.push(deadline.key);
            false
        });
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

    /// Closes the connections silent for longer than `timeout` (Redis's rule: a blocked or
    /// subscribed client is waiting, not idle).
    fn close_idle(&self, conns: &mut Slab<Conn>, now_ms: u64) {
        let timeout_s = self.shared.clients.idle_timeout_s();
        if timeout_s == 0 {
            return;
        }
        let limit_ms = timeout_s.saturating_mul(1000);
        let idle: Vec<usize> = conns
            .iter()
            .filter(|(_, conn)| {
                let last = conn
                    .info
                    .last_active_ms
                    .load(std::sync::atomic::Ordering::Relaxed);
                now_ms.saturating_sub(last) > limit_ms
                    && conn.session.parked().is_none()
                    && !conn
                        .session
                        .resp_state()
                        .is_some_and(|state| state.subscribed())
            })
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            self.shared.clients.idle_kicked();
            log::debug!("closing {}: idle over {timeout_s} s", conns[key].info.peer);
            self.close(conns, key);
        }
    }

    fn close(&self, conns: &mut Slab<Conn>, key: usize) {
        let mut conn = conns.remove(key);
        if let Some(parked) = conn.session.take_parked() {
            // False when a push already served it: its `Unblock` gives the elements back.
            self.shared.blocked.cancel(parked.seq);
        }
        self.ids.borrow_mut().remove(&conn.info.id);
        conn.session.forget_subscriptions(&self.shared.pubsub);
        let _ = self.poll.registry().deregister(&mut conn.transport);
        self.shared.connection_forget(conn.info.id);
        self.shared.connection_closed();
        log::debug!("closed {}", conn.info.peer);
    }
}

/// The message a panic was raised with (`panic!` payloads are `&str` or `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(no message)"
    }
}

/// At most this many bytes of a request go into a log line.
const LOGGED_REQUEST_BYTES: usize = 64;

/// The first bytes of a request, escaped for a log line (its command name is among them in
/// every protocol: the first word of a text line, the first bulk string of a RESP array, the
/// opcode byte of a binary header), with `...` when cut short.
fn request_head(input: &[u8]) -> String {
    let shown = &input[..input.len().min(LOGGED_REQUEST_BYTES)];
    let ellipsis = if shown.len() < input.len() { "..." } else { "" };
    format!("\"{}\"{ellipsis}", shown.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_request_is_escaped_and_bounded() {
        assert_eq!(
            request_head(b"*1\r\n$4\r\nPING\r\n"),
            r#""*1\r\n$4\r\nPING\r\n""#
        );
        let long = [b'x'; 200];
        let head = request_head(&long);
        assert!(head.ends_with("\"..."), "{head}");
        assert_eq!(head.len(), LOGGED_REQUEST_BYTES + 5);
        assert_eq!(request_head(&[0x80, 0x00]), r#""\x80\x00""#);
    }

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let text = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(text.as_ref()), "static");
        let formatted = std::panic::catch_unwind(|| panic!("{}", 42)).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), "42");
    }
}
