//! One client connection: its transport, its buffers, and the read → parse → execute → write
//! cycle that a worker drives whenever the socket is ready.
//!
//! A connection never interprets a command itself: it hands each parsed request to `command/`
//! and writes what comes back. Invariants: replies leave in request order; the unsent output is
//! bounded (parsing pauses above [`OUTPUT_SOFT_CAP`], the connection closes above the
//! configured hard limit); the read buffer only grows as far as the parser's limits allow.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::clients::{Clients, LimitBreach};
use crate::command::{Context, Flow, Session};
use crate::conn_info::ConnInfo;
use crate::metrics::WorkerStats;
use crate::server::buffer::ReadBuffer;
use crate::server::transport::Transport;
use crate::zerocopy::{self, Splice};

/// Above this many unsent bytes, stop parsing until the client reads.
pub const OUTPUT_SOFT_CAP: usize = 256 * 1024;
/// Requests handled per connection per turn before others get theirs.
const REQUESTS_PER_TURN: usize = 64;
/// Most pieces handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// What the worker should do with the connection after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait for the socket (readable, or writable if `wants_write`).
    Wait,
    /// More input is already buffered or readable: give it another turn soon.
    Again,
    /// Close it.
    Close,
    /// Close it and shut the server down (`shutdown` command).
    Shutdown,
    /// Its output is flushed; hand its socket to a replication link (`PSYNC`).
    HandOff,
}

pub struct Conn {
    pub transport: Transport,
    rbuf: ReadBuffer,
    wbuf: Vec<u8>,
    /// Bytes of `wbuf` already sent.
    wpos: usize,
    /// Values sent from store memory, spliced into `wbuf` at their offsets, in order (see
    /// [`crate::zerocopy`]); each holds its segment until the socket took it. Invariant: every
    /// `at` is at least `wpos` and at most `wbuf.len()`.
    splices: VecDeque<Splice>,
    /// Unsent bytes of `splices`.
    spliced_unsent: usize,
    /// Bytes of input still to discard (the value of a rejected too-large set).
    swallow: usize,
    /// The socket may have more to read (no `WouldBlock` seen since the last readable event).
    readable: bool,
    /// Close once the output is flushed.
    closing: bool,
    /// Shut the server down once this connection closes.
    shutdown_requested: bool,
    /// Hand the socket to a replication link once the output is flushed (`PSYNC`).
    hand_off: bool,
    /// Protocol state of the connection (which protocol, its per-connection settings).
    pub session: Session,
    /// Since when (unix ms) undelivered pub/sub output has been over the soft limit.
    over_soft_limit_since: Option<u64>,
    pub info: Arc<ConnInfo>,
    /// Bytes of buffer memory last reported to the shared client total, and the total it
    /// was reported to (taken back when the connection is dropped).
    reported_buffer_bytes: usize,
    client_memory: Option<Arc<Clients>>,
    /// The pub/sub hard output limit (refreshed every turn; a subscriber has had one).
    pubsub_hard_limit: usize,
    /// A pub/sub message was not queued because it would pass `pubsub_hard_limit`.
    message_refused: bool,
}

impl Conn {
    pub fn new(transport: Transport, info: Arc<ConnInfo>, session: Session) -> Conn {
        Conn {
            transport,
            rbuf: ReadBuffer::new(),
            wbuf: Vec::new(),
            wpos: 0,
            splices: VecDeque::new(),
            spliced_unsent: 0,
            swallow: 0,
            readable: true,
            closing: false,
            shutdown_requested: false,
            hand_off: false,
            session,
            over_soft_limit_since: None,
            info,
            reported_buffer_bytes: 0,
            client_memory: None,
            pubsub_hard_limit: usize::MAX,
            message_refused: false,
        }
    }

    pub fn set_readable(&mut self) {
        self.readable = true;
    }

    /// The input not consumed yet: while a request is served it is at the front (it is
    /// consumed only once served), so after a panic this names the culprit.
    pub fn unconsumed_input(&self) -> &[u8] {
        self.rbuf.data()
    }

    /// Whether there is output the socket has not taken yet.
    pub fn wants_write(&self) -> bool {
        self.wpos < self.wbuf.len() || !self.splices.is_empty() || self.transport.has_pending()
    }

    /// One turn: flush, read what is there, execute complete requests, flush again.
    pub fn turn(&mut self, ctx: &Context<'_>) -> Next {
        self.pubsub_hard_limit = ctx.shared.config.resp.pubsub_output_hard_limit.bytes() as usize;
        if self.info.kill.load(Ordering::Relaxed) || self.flush(ctx.stats).is_err() {
            return Next::Close;
        }
        if self.session.parked().is_some() {
            return self.turn_while_parked(ctx);
        }
        let mut handled = 0;
        let mut parked_now = false;
        loop {
            // Whether the parser is waiting for bytes (as opposed to pausing for output room).
            let mut needs_input = true;
            if !self.closing {
                match self.process(ctx, &mut handled, &mut needs_input) {
                    Flow::Continue => {}
                    Flow::Close => self.closing = true,
                    Flow::Shutdown => {
                        self.closing = true;
                        self.shutdown_requested = true;
                    }
                    Flow::Block => parked_now = true,
                    Flow::Replica => {
                        self.closing = true;
                        self.hand_off = true;
                    }
                }
            }
            if self.unsent() > ctx.shared.clients.output_buffer_limit() {
                log::warn!(
                    "closing {}: {} bytes of replies unsent, over the output limit",
                    self.info.peer,
                    self.unsent()
                );
                ctx.shared.clients.count(LimitBreach::Output);
                return Next::Close;
            }
            if self.rbuf.len() > ctx.shared.clients.query_buffer_limit() {
                log::warn!(
                    "closing {}: an unparsed request of {} bytes, over client-query-buffer-limit",
                    self.info.peer,
                    self.rbuf.len()
                );
                ctx.shared.clients.count(LimitBreach::Query);
                return Next::Close;
            }
            if self.flush(ctx.stats).is_err() {
                return Next::Close;
            }
            if parked_now {
                return Next::Wait; // the worker resumes it when served or timed out
            }
            if self.closing {
                break;
            }
            if handled >= REQUESTS_PER_TURN {
                WorkerStats::incr(&ctx.stats.conn_yields);
                return Next::Again;
            }
            if self.unsent() > OUTPUT_SOFT_CAP {
                break; // wait until the client reads (a writable event)
            }
            if !needs_input {
                continue; // output drained: serve what is already buffered first
            }
            if !self.readable {
                break;
            }
            match self.fill(ctx.stats) {
                Ok(0) => {
                    // End of stream: answer what was complete, then close.
                    self.closing = true;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        if self.closing && !self.wants_write() {
            return if self.hand_off {
                Next::HandOff
            } else if self.shutdown_requested {
                Next::Shutdown
            } else {
                Next::Close
            };
        }
        if self.closing && self.shutdown_requested {
            return Next::Shutdown;
        }
        if self.rbuf.is_empty() {
            self.rbuf.shrink_if_idle();
            if self.wbuf.capacity() > OUTPUT_SOFT_CAP && !self.wants_write() {
                self.wbuf = Vec::new();
            }
        }
        if self.account_buffers(ctx) {
            log::warn!(
                "closing {}: client buffers over maxmemory-clients, this one among the largest",
                self.info.peer
            );
            ctx.shared.clients.count(LimitBreach::ClientMemory);
            return Next::Close;
        }
        Next::Wait
    }

    /// A parked connection's turn: send what is pending and watch for the client going away
    /// (reading what it sends meanwhile, up to the query buffer limit), serve nothing.
    fn turn_while_parked(&mut self, ctx: &Context<'_>) -> Next {
        while self.readable {
            match self.fill(ctx.stats) {
                Ok(0) => return Next::Close,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
            if self.rbuf.len() > ctx.shared.clients.query_buffer_limit() {
                ctx.shared.clients.count(LimitBreach::Query);
                return Next::Close;
            }
        }
        Next::Wait
    }

    /// Ends the connection's parking with `reply` (its blocking pop was served or timed
    /// out); the worker then gives it a turn to serve what it sent meanwhile.
    pub fn resume(&mut self, reply: &[u8]) {
        self.session.take_parked();
        self.wbuf.extend_from_slice(reply);
    }

    /// Reports a change in the memory this connection's buffers hold to the shared total.
    /// True when the total is over `maxmemory-clients` and this connection should go.
    fn account_buffers(&mut self, ctx: &Context<'_>) -> bool {
        let held = self.session.held_bytes();
        self.info.client.set_buffers(
            self.rbuf.len(),
            self.rbuf.capacity(),
            self.wbuf.capacity(),
            held,
        );
        let now = self.rbuf.capacity() + self.wbuf.capacity() + held;
        if now == self.reported_buffer_bytes {
            return false;
        }
        let clients = self
            .client_memory
            .get_or_insert_with(|| ctx.shared.clients.clone());
        let connections = ctx
            .shared
            .connections
            .curr_connections
            .load(Ordering::Relaxed);
        let store_limit = ctx.shared.store.memory_limit() as u64;
        let over =
            clients.buffers_resized(self.reported_buffer_bytes, now, connections, store_limit);
        self.reported_buffer_bytes = now;
        over
    }

    fn unsent(&self) -> usize {
        self.wbuf.len() - self.wpos + self.spliced_unsent
    }

    /// Reads once into the buffer, making room for the whole pending request when the
    /// parser knows its size.
    fn fill(&mut self, stats: &WorkerStats) -> io::Result<usize> {
        let needed = self.session.input_needed();
        let spare = if needed > self.rbuf.len() {
            self.rbuf.make_room_for(needed);
            self.rbuf.spare(1)
        } else {
            self.rbuf.spare(ReadBuffer::INITIAL)
        };
        let n = self.transport.read(spare)?;
        self.rbuf.filled(n);
        stats.add(&stats.bytes_read, n as u64);
        Ok(n)
    }

    /// Executes the complete requests in the read buffer, through the session's protocol.
    /// Sets `needs_input` to false when it stopped with input left to serve (request budget
    /// or output room), true when the buffered input is used up or incomplete.
    fn process(&mut self, ctx: &Context<'_>, handled: &mut usize, needs_input: &mut bool) -> Flow {
        // Drop what was already sent, so that while commands run the output buffer holds only
        // unsent bytes: a command checks the output limit against its length.
        if self.wpos > 0 {
            self.wbuf.drain(..self.wpos);
            for splice in self.splices.iter_mut() {
                splice.at -= self.wpos;
            }
            self.wpos = 0;
        }
        if let Some(certificate) = self.transport.take_peer_certificate() {
            self.session.peer_certificate(&certificate, ctx);
        }
        let zero_copy_min = ctx.shared.config.server.zero_copy_min.bytes() as usize;
        // This turn's first command is timed from its own parse, not from another
        // connection's last reply (the lap clock, `metrics::latency`).
        ctx.shared.latency[ctx.worker].new_turn();
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(self.rbuf.len());
                self.rbuf.consume(n);
                self.swallow -= n;
                if self.swallow > 0 {
                    *needs_input = true;
                    return Flow::Continue;
                }
            }
            if *handled >= REQUESTS_PER_TURN || self.unsent() > OUTPUT_SOFT_CAP {
                *needs_input = self.rbuf.is_empty();
                return Flow::Continue;
            }
            let deferred = self.splices.len();
            let served =
                zerocopy::serving(zero_copy_min, &mut self.splices, &mut self.wbuf, |out| {
                    self.session.serve_one(self.rbuf.data(), ctx, out)
                });
            self.spliced_unsent += self
                .splices
                .iter()
                .skip(deferred)
                .map(|s| s.value.len())
                .sum::<usize>();
            let Some(served) = served else {
                *needs_input = true;
                return Flow::Continue;
            };
            self.rbuf.consume(served.consumed);
            self.swallow = served.swallow;
            *handled += 1;
            self.info
                .last_active_ms
                .store(ctx.now_ms, Ordering::Relaxed);
            if served.flow != Flow::Continue {
                return served.flow;
            }
        }
    }

    /// Writes buffered output until done or the socket is full: the buffer with the spliced
    /// values in their places, in vectored writes when there are splices.
    fn flush(&mut self, stats: &WorkerStats) -> io::Result<()> {
        // Buffered bytes and spliced values first; the transport's own pending records (TLS)
        // after, below.
        while self.wpos < self.wbuf.len() || !self.splices.is_empty() {
            let written = if self.splices.is_empty() {
                self.transport.write(&self.wbuf[self.wpos..])
            } else {
                let mut pieces: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOVECS);
                let mut from = self.wpos;
                for splice in self.splices.iter() {
                    if pieces.len() + 2 > MAX_IOVECS {
                        break;
                    }
                    if splice.at > from {
                        pieces.push(IoSlice::new(&self.wbuf[from..splice.at]));
                    }
                    pieces.push(IoSlice::new(splice.unsent()));
                    from = splice.at;
                }
                if pieces.len() < MAX_IOVECS && from < self.wbuf.len() {
                    pieces.push(IoSlice::new(&self.wbuf[from..]));
                }
                self.transport.write_vectored(&pieces)
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.advance(n);
                    stats.add(&stats.bytes_written, n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        // What the transport took but the socket did not yet (TLS records).
        self.transport.push_pending()
    }

    /// Marks `n` more bytes of the output sent, in stream order (buffer bytes up to the next
    /// splice, then that splice's value), unpinning each value the socket took whole.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let next_at = self.splices.front().map_or(self.wbuf.len(), |s| s.at);
            if self.wpos < next_at {
                let step = n.min(next_at - self.wpos);
                self.wpos += step;
                n -= step;
                continue;
            }
            let Some(splice) = self.splices.front_mut() else {
                break; // more reported written than offered: cannot happen
            };
            let step = n.min(splice.value.len() - splice.sent);
            splice.sent += step;
            self.spliced_unsent -= step;
            n -= step;
            if splice.sent == splice.value.len() {
                self.splices.pop_front();
            }
        }
    }

    /// Queues a pub/sub message; [`flush_messages`](Self::flush_messages) sends the batch.
    /// A message that would take the unsent output past the hard limit is not copied (one
    /// large PUBLISH must not cost a copy per stalled subscriber): the subscriber is cut off.
    pub fn queue_message(&mut self, frame: &[u8]) {
        if self.message_refused || self.unsent() + frame.len() > self.pubsub_hard_limit {
            self.message_refused = true;
            return;
        }
        self.wbuf.extend_from_slice(frame);
    }

    /// Pushes out queued pub/sub messages. False when the subscriber is over its output
    /// limits (Redis's `client-output-buffer-limit pubsub`) and must be disconnected.
    pub fn flush_messages(&mut self, ctx: &Context<'_>) -> bool {
        if self.flush(ctx.stats).is_err() {
            return false;
        }
        let limits = &ctx.shared.config.resp;
        let unsent = self.unsent() as u64;
        if self.message_refused || unsent > limits.pubsub_output_hard_limit.bytes() {
            log::warn!(
                "closing subscriber {}: {unsent} bytes undelivered, over the hard limit",
                self.info.peer
            );
            return false;
        }
        if unsent > limits.pubsub_output_soft_limit.bytes() {
            let since = *self.over_soft_limit_since.get_or_insert(ctx.now_ms);
            if ctx.now_ms.saturating_sub(since) >= limits.pubsub_output_soft_seconds * 1000 {
                log::warn!(
                    "closing subscriber {}: over the soft output limit too long",
                    self.info.peer
                );
                return false;
            }
        } else {
            self.over_soft_limit_since = None;
        }
        if self.account_buffers(ctx) {
            log::warn!(
                "closing subscriber {}: client buffers over maxmemory-clients, this one among the largest",
                self.info.peer
            );
            ctx.shared.clients.count(LimitBreach::ClientMemory);
            return false;
        }
        true
    }

    /// Best effort at shutdown: push out what is left without waiting.
    pub fn flush_now(&mut self, stats: &WorkerStats) -> bool {
        self.flush(stats).is_ok() && !self.wants_write()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(clients) = &self.client_memory {
            clients.buffers_resized(self.reported_buffer_bytes, 0, 1, 0);
        }
    }
}
