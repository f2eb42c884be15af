//! The load loop: connections over threads, each thread one `mio::Poll`, closed or open loop.
//!
//! Owns [`run`], the per-thread loop, the per-connection state and [`RunError`]. Invariants:
//! - Every loop is bounded: the measured phase by `duration` (plus at most [`DRAIN`] to collect
//!   replies in flight), the warm phase by `warm_timeout`.
//! - A connection has at most `pipeline` requests in flight; replies are matched to requests in
//!   order, so the latency of each is `reply time - intended send time`. Closed loop: intended =
//!   the moment it was queued. Open loop (`--rate`): intended = its slot on the connection's
//!   fixed schedule, even if the previous reply was late, so queueing delay is counted (no
//!   coordinated omission).
//! - Warm-phase replies are checked for errors but not recorded in the histogram.
//! - Cache-aside (`--cache-aside`): a get that misses queues a set of the same key (same version)
//!   on its connection, sent before the next op of the source; the source's budget counts gets.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::cli::RunConfig;
use crate::keyspace::parse_key;
use crate::proto::{parse, Op, OpKind, ParseError, Reply, Scratch};
use crate::rng::{mix, Rng};
use crate::sockbuf::DRAIN;
use crate::value::Values;
use crate::workload::Source;

/// Longest sleep between non-blocking polls while an open-loop send slot is near.
const NAP: Duration = Duration::from_micros(20);
/// Highest latency the histogram holds (ns); larger values are clamped.
const HIST_MAX_NS: u64 = 60_000_000_000;

/// A run that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    #[error("the server closed a connection with {0} requests in flight")]
    Closed(usize),
    #[error(transparent)]
    Protocol(#[from] ParseError),
    #[error("the server sent bytes with no request in flight")]
    Unsolicited,
    #[error("the server does not support this: {0}")]
    Unsupported(String),
    #[error("warm phase did not finish within {0:?}")]
    WarmTimeout(Duration),
    #[error("a load thread panicked")]
    Panicked,
}

/// What one thread (and, merged, the whole run) counted.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Replies received (one per request; a multi-get is one).
    pub ops: u64,
    /// Read requests and keys they asked for.
    pub reads: u64,
    pub read_keys: u64,
    /// Keys found.
    pub hits: u64,
    /// Write requests answered.
    pub writes: u64,
    /// Error replies from the server, and the first one's text.
    pub server_errors: u64,
    pub first_server_error: Option<String>,
    /// Values read that are not what was written, and the first one's description.
    pub verify_failures: u64,
    pub first_verify_failure: Option<String>,
    /// Requests still unanswered when the drain ended.
    pub unanswered: u64,
    /// Latency in nanoseconds.
    pub latency: Histogram<u64>,
    pub started: Option<Instant>,
    pub finished: Option<Instant>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            ops: 0,
            reads: 0,
            read_keys: 0,
            hits: 0,
            writes: 0,
            server_errors: 0,
            first_server_error: None,
            verify_failures: 0,
            first_verify_failure: None,
            unanswered: 0,
            latency: Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("valid histogram bounds"),
            started: None,
            finished: None,
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.ops += other.ops;
        self.reads += other.reads;
        self.read_keys += other.read_keys;
        self.hits += other.hits;
        self.writes += other.writes;
        self.server_errors += other.server_errors;
        self.verify_failures += other.verify_failures;
        self.unanswered += other.unanswered;
        if self.first_server_error.is_none() {
            self.first_server_error
                .clone_from(&other.first_server_error);
        }
        if self.first_verify_failure.is_none() {
            self.first_verify_failure
                .clone_from(&other.first_verify_failure);
        }
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        self.started = match (self.started, other.started) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.finished = match (self.finished, other.finished) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Seconds from the first thread's start to the last reply.
    pub fn elapsed(&self) -> Duration {
        match (self.started, self.finished) {
            (Some(s), Some(f)) => f.saturating_duration_since(s),
            _ => Duration::ZERO,
        }
    }
}

/// The outcome of a whole run.
#[derive(Debug)]
pub struct Outcome {
    pub warm: Option<Stats>,
    pub measured: Option<Stats>,
}

struct Pending {
    op: Op,
    intended: Instant,
}

struct Conn {
    stream: TcpStream,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Read buffer: bytes `rstart..rend` are received and not yet parsed.
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    inflight: VecDeque<Pending>,
    source: Source,
    /// Cache-aside sets owed for gets that missed; sent before the source's next op.
    follow_ups: VecDeque<Op>,
    /// Open loop: the next send slot and the spacing of slots.
    next_due: Option<Instant>,
    interval: Duration,
}

impl Conn {
    /// Whether an op is waiting to be sent (a follow-up, or the source's next).
    fn has_work(&self) -> bool {
        !self.follow_ups.is_empty() || self.source.has_next()
    }

    /// Queues requests up to the pipeline depth (and, open loop, up to `now`'s slot).
    fn fill(
        &mut self,
        now: Instant,
        pipeline: usize,
        enc: &crate::proto::Encoder,
        scratch: &mut Scratch,
    ) {
        while self.inflight.len() < pipeline && self.has_work() {
            let intended = match self.next_due {
                Some(due) if due > now => break,
                Some(due) => {
                    self.next_due = Some(due + self.interval);
                    due
                }
                None => now,
            };
            let op = match self.follow_ups.pop_front() {
                Some(op) => op,
                None => self.source.next_op(),
            };
            enc.encode(&op, &mut self.wbuf, scratch);
            self.inflight.push_back(Pending { op, intended });
        }
    }

    /// Writes as much of the output buffer as the socket takes.
    fn flush(&mut self) -> io::Result<()> {
        crate::sockbuf::flush(&mut self.stream, &mut self.wbuf, &mut self.wpos)
    }

    /// Reads what the socket has; false if the server closed the connection.
    fn read(&mut self) -> io::Result<bool> {
        crate::sockbuf::fill(
            &mut self.stream,
            &mut self.rbuf,
            &mut self.rstart,
            &mut self.rend,
            true,
        )
    }

    /// Matches buffered replies to the requests in flight, in order.
    /// With `cache_aside`, a get that missed queues a set of its key.
    fn process(
        &mut self,
        protocol: crate::proto::Protocol,
        cache_aside: bool,
        rec: &mut Recorder<'_>,
        now: Instant,
    ) -> Result<(), RunError> {
        while let Some(p) = self.inflight.front() {
            let buf = &self.rbuf[self.rstart..self.rend];
            let Some((reply, n)) = parse(protocol, p.op.kind, p.op.batch.len(), buf)? else {
                break;
            };
            let follow_up = (cache_aside && p.op.kind == OpKind::Get && reply == Reply::Miss)
                .then(|| Op::new(OpKind::Set, &[p.op.key], p.op.version));
            rec.record(p, reply, now);
            self.rstart += n;
            self.inflight.pop_front();
            if let Some(op) = follow_up {
                self.follow_ups.push_back(op);
            }
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        } else if self.inflight.is_empty() {
            return Err(RunError::Unsolicited);
        }
        Ok(())
    }
}

/// Per-thread reply accounting.
struct Recorder<'a> {
    stats: Stats,
    values: &'a Values,
    verify: bool,
    recording: bool,
    scratch: Vec<u8>,
}

impl Recorder<'_> {
    fn verify_one(&mut self, key: Option<u64>, value: &[u8]) {
        if !self.verify {
            return;
        }
        let result = match key {
            Some(k) => self
                .values
                .verify(k, value, &mut self.scratch)
                .map_err(|e| e.to_string()),
            None => Err("a batch reply names a key that was not asked for".to_string()),
        };
        if let Err(e) = result {
            self.stats.verify_failures += 1;
            self.stats.first_verify_failure.get_or_insert(e);
        }
    }

    fn record(&mut self, p: &Pending, reply: Reply<'_>, now: Instant) {
        self.stats.ops += 1;
        if self.recording {
            let ns = now.saturating_duration_since(p.intended).as_nanos() as u64;
            self.stats
                .latency
                .saturating_record(ns.clamp(1, HIST_MAX_NS));
        }
        if p.op.kind.is_read() {
            self.stats.reads += 1;
            self.stats.read_keys += p.op.key_count() as u64;
        } else {
            self.stats.writes += 1;
        }
        match reply {
            Reply::Error(e) => {
                self.stats.server_errors += 1;
                self.stats.first_server_error.get_or_insert(e);
            }
            Reply::Stored | Reply::Integer(_) | Reply::Miss => {}
            Reply::Value(v) => {
                self.stats.hits += 1;
                self.verify_one(Some(p.op.key), v);
            }
            Reply::Keyed(hits) => {
                self.stats.hits += hits.len() as u64;
                for (k, v) in hits {
                    let key = parse_key(k, b'k').filter(|i| p.op.batch.contains(i));
                    self.verify_one(key, v);
                }
            }
            Reply::Array(items) if p.op.kind == OpKind::ZRange => {
                self.stats.hits += u64::from(!items.is_empty());
            }
            Reply::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(v) = item {
                        self.stats.hits += 1;
                        self.verify_one(p.op.batch.get(i).copied(), v);
                    }
                }
            }
        }
    }
}

/// One thread's share of the run.
struct Plan {
    thread: usize,
    /// Global indexes of this thread's connections.
    conns: Vec<usize>,
}

fn connect(addr: SocketAddr) -> Result<TcpStream, RunError> {
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|source| RunError::Connect { addr, source })?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(TcpStream::from_std(s))
}

/// Drives `conns` until their sources run dry or `deadline`, then drains for at most [`DRAIN`].
fn drive(
    poll: &mut Poll,
    conns: &mut [Conn],
    cfg: &RunConfig,
    pipeline: usize,
    rec: &mut Recorder<'_>,
    deadline: Instant,
) -> Result<(), RunError> {
    let mut events = Events::with_capacity(1024);
    let mut scratch = Scratch::default();
    let mut stopping_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if stopping_at.is_none() && now >= deadline {
            stopping_at = Some(now + DRAIN);
        }
        let mut next_wake = deadline;
        let mut busy = false;
        for c in conns.iter_mut() {
            if stopping_at.is_none() {
                c.fill(now, pipeline, &cfg.encoder, &mut scratch);
                if let Some(due) = c.next_due {
                    if c.has_work() && c.inflight.len() < pipeline {
                        next_wake = next_wake.min(due);
                    }
                }
            }
            c.flush()?;
            busy |= !c.inflight.is_empty() || (stopping_at.is_none() && c.has_work());
        }
        if !busy {
            break;
        }
        if let Some(stop) = stopping_at {
            if now >= stop {
                rec.stats.unanswered += conns.iter().map(|c| c.inflight.len() as u64).sum::<u64>();
                break;
            }
            next_wake = stop;
        }
        // epoll rounds timeouts up to whole milliseconds, so a send slot less than 2 ms away is
        // awaited by non-blocking polls with naps of at most NAP between them: the generator
        // must not add its own lateness to the latency it charges the server, and must not spin
        // a core that an unpinned server needs. Replies are then timed to within NAP.
        let mut timeout = next_wake.saturating_duration_since(now);
        let fine = next_wake < deadline && stopping_at.is_none();
        if fine {
            timeout = timeout.saturating_sub(Duration::from_millis(2));
        }
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        if fine && timeout.is_zero() && events.is_empty() {
            std::thread::sleep(next_wake.saturating_duration_since(Instant::now()).min(NAP));
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if ev.is_writable() {
                c.flush()?;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                let open = c.read()?;
                let now = Instant::now();
                c.process(cfg.protocol, cfg.cache_aside, rec, now)?;
                if !open {
                    return Err(RunError::Closed(c.inflight.len()));
                }
                if stopping_at.is_none() {
                    c.fill(now, pipeline, &cfg.encoder, &mut scratch);
                    c.flush()?;
                }
            }
        }
    }
    rec.stats.finished = Some(Instant::now());
    Ok(())
}

/// Opens this thread's poll and connections; their sources start as the warm split
/// (connection `g` of `C` writes keys `N*g/C .. N*(g+1)/C`).
fn setup(cfg: &RunConfig, plan: &Plan) -> Result<(Poll, Vec<Conn>), RunError> {
    let poll = Poll::new()?;
    let total = cfg.connections as u64;
    let (_, write_kind) = cfg.mix.workload.kinds();
    let mut conns = Vec::with_capacity(plan.conns.len());
    for (slot, &global) in plan.conns.iter().enumerate() {
        let mut stream = connect(cfg.addr)?;
        poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let lo = cfg.keys * global as u64 / total;
        let hi = cfg.keys * (global as u64 + 1) / total;
        conns.push(Conn {
            stream,
            wbuf: Vec::with_capacity(64 * 1024),
            wpos: 0,
            rbuf: vec![0; 64 * 1024],
            rstart: 0,
            rend: 0,
            inflight: VecDeque::with_capacity(cfg.pipeline),
            source: Source::Sequential {
                kind: write_kind,
                next: lo,
                // Nothing to warm for PUBLISH.
                end: if write_kind == OpKind::Publish {
                    lo
                } else {
                    hi
                },
            },
            follow_ups: VecDeque::new(),
            next_due: None,
            interval: Duration::ZERO,
        });
    }
    Ok((poll, conns))
}

fn new_recorder(cfg: &RunConfig, measured: bool) -> Recorder<'_> {
    Recorder {
        stats: Stats::new(),
        values: &cfg.encoder.values,
        verify: measured && cfg.verify,
        recording: measured,
        scratch: Vec::new(),
    }
}

fn warm(poll: &mut Poll, conns: &mut [Conn], cfg: &RunConfig) -> Result<Stats, RunError> {
    let mut rec = new_recorder(cfg, false);
    let start = Instant::now();
    rec.stats.started = Some(start);
    drive(
        poll,
        conns,
        cfg,
        cfg.pipeline.max(32),
        &mut rec,
        start + cfg.warm_timeout,
    )?;
    if conns.iter().any(|c| c.source.has_next()) || rec.stats.unanswered > 0 {
        return Err(RunError::WarmTimeout(cfg.warm_timeout));
    }
    Ok(rec.stats)
}

/// One thread: set up, warm, measure. Every thread passes each barrier whatever happens to it,
/// so an error in one thread never leaves the others waiting.
fn thread_main(cfg: &RunConfig, plan: Plan, barrier: &Barrier) -> Result<Outcome, RunError> {
    let ready = setup(cfg, &plan);
    barrier.wait();
    let mut warmed = None;
    let mut ready = match ready {
        Ok(r) => Some(r),
        Err(e) => {
            if cfg.warm {
                barrier.wait();
            }
            return Err(e);
        }
    };
    if cfg.warm {
        let (poll, conns) = ready.as_mut().expect("set up above");
        let result = warm(poll, conns, cfg);
        barrier.wait();
        warmed = Some(result?);
    }
    let mut out = Outcome {
        warm: warmed,
        measured: None,
    };
    if cfg.warm_only {
        return Ok(out);
    }
    let (mut poll, mut conns) = ready.take().expect("set up above");
    let total = cfg.connections as u64;
    let start = Instant::now();
    for (c, &global) in conns.iter_mut().zip(&plan.conns) {
        let g = global as u64;
        c.source = Source::Random {
            mix: cfg.mix.clone(),
            rng: Rng::new(mix(cfg.seed ^ (g + 1).wrapping_mul(0x9e37_79b9))),
            remaining: cfg.requests.map(|r| r / total + u64::from(g < r % total)),
            thread: plan.thread as u32 + 1,
            counter: 0,
        };
        if let Some(rate) = cfg.rate {
            // Each connection carries rate / connections, its slots staggered over one interval.
            let interval = Duration::from_secs_f64(total as f64 / rate);
            c.interval = interval;
            c.next_due = Some(start + interval.mul_f64(g as f64 / total as f64));
        }
    }
    let mut rec = new_recorder(cfg, true);
    rec.stats.started = Some(start);
    drive(
        &mut poll,
        &mut conns,
        cfg,
        cfg.pipeline,
        &mut rec,
        start + cfg.duration,
    )?;
    out.measured = Some(rec.stats);
    Ok(out)
}

/// Checks with one blocking request of each op the workload uses that the server speaks it.
/// Anything but a well-formed, non-error reply within 2 s is [`RunError::Unsupported`].
pub fn probe(cfg: &RunConfig) -> Result<(), RunError> {
    let mut s = std::net::TcpStream::connect_timeout(&cfg.addr, Duration::from_secs(3)).map_err(
        |source| RunError::Connect {
            addr: cfg.addr,
            source,
        },
    )?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_nodelay(true)?;
    let (read, write) = cfg.mix.workload.kinds();
    let mut scratch = Scratch::default();
    for kind in [write, read] {
        let keys: Vec<u64> = (0..cfg.mix.batch.min(3) as u64).collect();
        let op = Op::new(
            kind,
            if kind == OpKind::MultiGet {
                &keys
            } else {
                &keys[..1]
            },
            0,
        );
        let mut req = Vec::new();
        cfg.encoder.encode(&op, &mut req, &mut scratch);
        s.write_all(&req)?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match parse(cfg.protocol, kind, op.batch.len(), &buf) {
                Ok(Some((Reply::Error(e), _))) => {
                    return Err(RunError::Unsupported(format!("{kind:?}: {e}")))
                }
                Ok(Some(_)) => break,
                Ok(None) => {}
                Err(e) => return Err(RunError::Unsupported(format!("{kind:?}: {e}"))),
            }
            match s.read(&mut chunk) {
                Ok(0) => {
                    return Err(RunError::Unsupported(format!(
                        "{kind:?}: connection closed"
                    )))
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(RunError::Unsupported(format!(
                        "{kind:?}: no reply within 2 s"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Runs the whole configuration: probe, connect, warm (if asked), measure; merges the threads.
pub fn run(cfg: &RunConfig) -> Result<Outcome, RunError> {
    probe(cfg)?;
    let cfg = Arc::new(cfg.clone());
    let barrier = Arc::new(Barrier::new(cfg.threads));
    let handles: Vec<_> = (0..cfg.threads)
        .map(|t| {
            let cfg = Arc::clone(&cfg);
            let barrier = Arc::clone(&barrier);
            let plan = Plan {
                thread: t,
                conns: (t..cfg.connections).step_by(cfg.threads).collect(),
            };
            std::thread::Builder::new()
                .name(format!("ferrobench-{t}"))
                .spawn(move || thread_main(&cfg, plan, &barrier))
        })
        .collect::<Result<_, _>>()?;
    let mut total = Outcome {
        warm: None,
        measured: None,
    };
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(o)) => {
                for (acc, part) in [(&mut total.warm, o.warm), (&mut total.measured, o.measured)] {
                    if let Some(p) = part {
                        match acc {
                            Some(a) => a.merge(&p),
                            None => *acc = Some(p),
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert(RunError::Panicked);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

#[cfg(test)]
mod tests {
    //! The loop end to end against a tiny in-process memcached-text server on 127.0.0.1 (a
    //! functional check bounded by a request count, not a timed benchmark).

    use super::*;
    use clap::Parser;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::sync::Mutex;

    /// Serves `get k..`/`set k f e n` from a shared map; `corrupt` flips a byte of every value.
    fn fake_memcached(corrupt: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let store: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>> = Arc::default();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    let mut line = String::new();
                    while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                        let words: Vec<&str> = line.split_whitespace().collect();
                        let mut out = Vec::new();
                        match words.first().copied() {
                            Some("get") => {
                                let map = store.lock().unwrap();
                                for k in &words[1..] {
                                    if let Some(v) = map.get(k.as_bytes()) {
                                        out.extend(format!("VALUE {k} 0 {}\r\n", v.len()).bytes());
                                        out.extend_from_slice(v);
                                        if corrupt {
                                            let at = out.len() - 1;
                                            out[at] ^= 1;
                                        }
                                        out.extend_from_slice(b"\r\n");
                                    }
                                }
                                out.extend_from_slice(b"END\r\n");
                            }
                            Some("set") => {
                                let n: usize = words[4].parse().unwrap();
                                let mut v = vec![0; n + 2];
                                r.read_exact(&mut v).unwrap();
                                v.truncate(n);
                                store
                                    .lock()
                                    .unwrap()
                                    .insert(words[1].as_bytes().to_vec(), v);
                                out.extend_from_slice(b"STORED\r\n");
                            }
                            _ => out.extend_from_slice(b"ERROR\r\n"),
                        }
                        if w.write_all(&out).is_err() {
                            return;
                        }
                        line.clear();
                    }
                });
            }
        });
        addr
    }

    fn config(addr: SocketAddr, extra: &[&str]) -> RunConfig {
        let addr = addr.to_string();
        let mut v = vec![
            "ferrobench",
            "-s",
            &addr,
            "-n",
            "50",
            "-c",
            "3",
            "-t",
            "2",
            "-D",
            "20",
        ];
        v.extend_from_slice(extra);
        crate::cli::Args::try_parse_from(v)
            .unwrap()
            .validate()
            .unwrap()
    }

    #[test]
    fn counted_run_with_warm_and_verify() {
        let addr = fake_memcached(false);
        let cfg = config(
            addr,
            &["--requests", "300", "-p", "4", "--warm", "--verify"],
        );
        let out = run(&cfg).unwrap();
        assert_eq!(out.warm.as_ref().unwrap().ops, 50);
        let m = out.measured.unwrap();
        assert_eq!(m.ops, 300);
        assert_eq!(m.reads + m.writes, 300);
        assert_eq!(m.hits, m.reads, "every key was warmed");
        assert_eq!(
            (m.verify_failures, m.server_errors, m.unanswered),
            (0, 0, 0)
        );
        assert_eq!(m.latency.len(), 300);
    }

    #[test]
    fn multi_get_and_open_loop() {
        let addr = fake_memcached(false);
        let cfg = config(
            addr,
            &[
                "--requests",
                "40",
                "-w",
                "mget",
                "--batch",
                "5",
                "--rate",
                "2000",
                "-p",
                "8",
                "--warm",
                "--verify",
            ],
        );
        let m = run(&cfg).unwrap().measured.unwrap();
        assert_eq!(m.ops, 40);
        assert_eq!(m.read_keys, m.reads * 5);
        assert_eq!(m.hits, m.read_keys);
        assert_eq!(m.verify_failures, 0);
    }

    #[test]
    fn verify_catches_a_corrupting_server() {
        let addr = fake_memcached(true);
        let cfg = config(addr, &["--requests", "100", "--warm", "--verify"]);
        let m = run(&cfg).unwrap().measured.unwrap();
        assert!(m.hits > 0);
        assert_eq!(m.verify_failures, m.hits);
        assert!(m.first_verify_failure.unwrap().contains("differs"));
    }

    #[test]
    fn cache_aside_sets_each_miss_and_then_hits() {
        let addr = fake_memcached(false);
        // 50 keys, no warm: every key misses once, is set, and hits from then on.
        let cfg = config(
            addr,
            &["--requests", "400", "--cache-aside", "-p", "1", "--verify"],
        );
        let m = run(&cfg).unwrap().measured.unwrap();
        assert_eq!(m.reads, 400);
        assert_eq!(m.writes, m.reads - m.hits, "one set per miss");
        assert!(m.reads - m.hits <= 50 + 20, "misses {}", m.reads - m.hits);
        assert_eq!((m.verify_failures, m.server_errors), (0, 0));
        // The same keys again: all hits now.
        let m = run(&cfg).unwrap().measured.unwrap();
        assert_eq!((m.hits, m.writes), (400, 0));
    }

    #[test]
    fn a_server_without_the_protocol_is_unsupported() {
        let addr = fake_memcached(false);
        let cfg = config(addr, &["-P", "meta", "--requests", "1"]);
        assert!(matches!(run(&cfg), Err(RunError::Unsupported(_))));
    }
}
