//! `ferrobench --soak MINUTES`: every protocol at once against one server for a long time,
//! checking every reply, and the server's resident memory against its `-m`.
//!
//! Load: `--lanes` lanes (default 4), each with four connections, memcached text, meta and
//! binary to `--server` and RESP to `--resp-server`, and a key space of its own (`-n` keys
//! split between lanes; `index % 10` picks the type: 70 % strings, 10 % counters, 10 % hashes,
//! 10 % sorted sets). Strings get get/set/delete (a fifth of the sets with a TTL of 2-60 s),
//! counters incr/get/set/delete, over any of the four protocols (so a key set over RESP is read
//! over binary and deleted over meta); hashes get HSET/HGET/DEL and sorted sets ZADD/ZSCORE/DEL
//! over RESP. Values are 10 B-100 KB by default, log-uniform, half random bytes (any byte, CR
//! and LF included) and half compressible text, each with its version and a checksum
//! ([`model::SoakValues`]).
//!
//! Checks ([`model::Model`]): a lane is the only writer of its keys and keeps at most one
//! request per key in flight, so every reply has exactly one right answer or a miss (eviction,
//! expiry): a wrong, stale, resurrected or corrupted value, a counter that does not add up or a
//! delete that finds a deleted key is a *wrong value*; an error reply is a *server error*;
//! bytes that are not a reply are a *protocol error* and end the run. With `--server-pid`, the
//! server's VmRSS (`/proc/PID/status`) is sampled every second and must stay within
//! `-m` + `--rss-slack-mb` + `--rss-slack-pct` % of `-m` (`-m` defaults to the server's own
//! `limit_maxbytes`); the first sample above ends the run.
//!
//! Exit status: 0 pass, 1 protocol or server errors (or the run could not start), 4 wrong
//! values, 5 RSS above the bound; every reason is printed.

pub mod model;
pub mod wire;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::proto::{ParseError, Protocol};
use crate::rng::{mix3, Rng};
use model::{KeyType, Model, Read as ReadOutcome, SoakValues, State, Wrong, FIELDS};
use wire::{Answer, Verb};

/// Protocols in lane order: each lane has one connection of each.
pub const PROTOCOLS: [Protocol; 4] = [
    Protocol::Text,
    Protocol::Meta,
    Protocol::Binary,
    Protocol::Resp,
];
/// How many wrong values are described in the report.
const KEEP_WRONG: usize = 10;
/// How many earlier requests of a key a wrong value's description lists.
const HISTORY: usize = 6;

/// A validated soak run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub duration: Duration,
    pub server: SocketAddr,
    pub resp_server: SocketAddr,
    pub server_pid: Option<u32>,
    /// `-m` in bytes, if given (else read from the server's `limit_maxbytes`).
    pub memory_limit: Option<u64>,
    pub rss_slack_mb: u64,
    pub rss_slack_pct: f64,
    pub lanes: usize,
    pub threads: usize,
    pub pipeline: usize,
    pub keys: u64,
    pub value_size: (usize, usize),
    pub seed: u64,
    pub json: bool,
}

/// What one protocol's connections did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProtoStats {
    pub ops: u64,
    pub gets: u64,
    /// Read requests of any kind (gets, HGETs, ZSCOREs); `hits` counts the ones that found
    /// their value.
    pub reads: u64,
    pub hits: u64,
    pub sets: u64,
    pub deletes: u64,
    pub incrs: u64,
    /// HSET/HGET/ZADD/ZSCORE (RESP only).
    pub collection_ops: u64,
    pub value_bytes_written: u64,
    pub value_bytes_read: u64,
    pub server_errors: u64,
    pub first_server_error: Option<String>,
    pub wrong_values: u64,
}

impl ProtoStats {
    fn merge(&mut self, o: &ProtoStats) {
        self.ops += o.ops;
        self.gets += o.gets;
        self.reads += o.reads;
        self.hits += o.hits;
        self.sets += o.sets;
        self.deletes += o.deletes;
        self.incrs += o.incrs;
        self.collection_ops += o.collection_ops;
        self.value_bytes_written += o.value_bytes_written;
        self.value_bytes_read += o.value_bytes_read;
        self.server_errors += o.server_errors;
        self.wrong_values += o.wrong_values;
        if self.first_server_error.is_none() {
            self.first_server_error.clone_from(&o.first_server_error);
        }
    }
}

/// What the threads report.
#[derive(Debug, Default)]
struct Outcome {
    per_protocol: [ProtoStats; 4],
    wrong: Vec<String>,
    fatal: Vec<String>,
    unanswered: u64,
}

struct Pending {
    index: u64,
    verb: Verb,
    /// Version written (string, field, score) or the counter value set.
    version: u32,
}

struct Conn {
    protocol: Protocol,
    stream: TcpStream,
    wbuf: Vec<u8>,
    wpos: usize,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    inflight: VecDeque<Pending>,
}

impl Conn {
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
            false,
        )
    }
}

/// One lane: four connections, a key space, its model.
struct Lane {
    id: u64,
    conns: Vec<Conn>,
    model: Model,
    busy: HashSet<u64>,
    /// The last [`HISTORY`] requests and answers of each key, for describing a wrong value.
    history: HashMap<u64, VecDeque<String>>,
    rng: Rng,
    version: u32,
    key: Vec<u8>,
    value: Vec<u8>,
    scratch: Vec<u8>,
}

/// Per-run constants every lane reads.
struct Shared {
    cfg: SoakConfig,
    tag: String,
    values: SoakValues,
    field_values: SoakValues,
    keys_per_lane: u64,
    stop: AtomicBool,
    ops: AtomicU64,
    wrong: AtomicU64,
    errors: AtomicU64,
}

impl Shared {
    /// The value id of (lane, index, field): distinct for every key and field of the run.
    fn id(lane: u64, index: u64, field: u32) -> u64 {
        (lane << 40) ^ (index << 8) ^ u64::from(field)
    }

    fn write_key(&self, out: &mut Vec<u8>, lane: u64, index: u64) {
        out.clear();
        out.extend_from_slice(self.tag.as_bytes());
        out.push(b':');
        crate::proto::push_u64(out, lane);
        out.push(b':');
        out.push(KeyType::of(index).letter());
        crate::proto::push_u64(out, index);
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Lane {
    /// Draws the next request for a connection of `protocol`, if a free key turns up.
    fn draw(&mut self, sh: &Shared, protocol: Protocol) -> Option<Pending> {
        let resp = protocol == Protocol::Resp;
        let index = (0..8).find_map(|_| {
            let i = self.rng.below(sh.keys_per_lane);
            let t = KeyType::of(i);
            let allowed = resp || matches!(t, KeyType::Str | KeyType::Counter);
            (allowed && !self.busy.contains(&i)).then_some(i)
        })?;
        let r = self.rng.below(100);
        self.version = self.version.wrapping_add(1);
        let version = self.version;
        let field = self.rng.below(u64::from(FIELDS)) as u32;
        let (verb, version) = match KeyType::of(index) {
            KeyType::Str => match r {
                0..=49 => (Verb::Get, 0),
                50..=87 => {
                    let ttl = if self.rng.below(5) == 0 {
                        2 + self.rng.below(59) as u32
                    } else {
                        0
                    };
                    (Verb::Set { ttl }, version)
                }
                _ => (Verb::Delete, 0),
            },
            KeyType::Counter => match r {
                0..=49 => (
                    Verb::Incr {
                        delta: 1 + self.rng.below(1000),
                    },
                    0,
                ),
                50..=69 => (Verb::Get, 0),
                70..=89 => (Verb::Set { ttl: 0 }, self.rng.below(1_000_000) as u32),
                _ => (Verb::Delete, 0),
            },
            KeyType::Hash => match r {
                0..=44 => (Verb::HGet { field }, 0),
                45..=89 => (Verb::HSet { field }, version),
                _ => (Verb::Delete, 0),
            },
            KeyType::Zset => match r {
                0..=44 => (Verb::ZScore { member: field }, 0),
                45..=89 => (
                    Verb::ZAdd {
                        member: field,
                        score: version,
                    },
                    version,
                ),
                _ => (Verb::Delete, 0),
            },
        };
        Some(Pending {
            index,
            verb,
            version,
        })
    }

    /// Queues requests on connection `c` up to the pipeline depth.
    fn fill(&mut self, sh: &Shared, c: usize) {
        let protocol = self.conns[c].protocol;
        while self.conns[c].inflight.len() < sh.cfg.pipeline {
            let Some(p) = self.draw(sh, protocol) else {
                break;
            };
            sh.write_key(&mut self.key, self.id, p.index);
            self.value.clear();
            match (KeyType::of(p.index), p.verb) {
                (KeyType::Str, Verb::Set { .. }) => {
                    sh.values
                        .write(&mut self.value, Shared::id(self.id, p.index, 0), p.version)
                }
                (KeyType::Counter, Verb::Set { .. }) => {
                    crate::proto::push_u64(&mut self.value, u64::from(p.version))
                }
                (_, Verb::HSet { field }) => sh.field_values.write(
                    &mut self.value,
                    Shared::id(self.id, p.index, field + 1),
                    p.version,
                ),
                _ => {}
            }
            let conn = &mut self.conns[c];
            wire::encode(protocol, p.verb, &self.key, &self.value, &mut conn.wbuf);
            self.busy.insert(p.index);
            conn.inflight.push_back(p);
        }
    }

    /// Matches buffered replies of connection `c` to its requests.
    fn process(&mut self, sh: &Shared, c: usize, out: &mut Outcome) -> Result<(), String> {
        let protocol = self.conns[c].protocol;
        let lane = self.id;
        let resp = protocol == Protocol::Resp;
        loop {
            let conn = &mut self.conns[c];
            let Some(verb) = conn.inflight.front().map(|p| p.verb) else {
                break;
            };
            let buf = &conn.rbuf[conn.rstart..conn.rend];
            let parsed = wire::parse(protocol, verb, buf).map_err(|e: ParseError| {
                format!("protocol error on the {protocol:?} connection of lane {lane}: {e}")
            })?;
            let Some((answer, used)) = parsed else {
                break;
            };
            let p = conn.inflight.pop_front().expect("front exists");
            let event = format!(
                "{} {:?} v{} -> {}",
                &format!("{protocol:?}")[..1],
                p.verb,
                p.version,
                short(&answer)
            );
            let stats = &mut out.per_protocol[c];
            let verdict = check(
                sh,
                lane,
                &mut self.model,
                &mut self.scratch,
                &p,
                answer,
                stats,
                resp,
            );
            conn.rstart += used;
            self.busy.remove(&p.index);
            sh.ops.fetch_add(1, Ordering::Relaxed);
            let history = self.history.entry(p.index).or_default();
            if let Err(Wrong(why)) = verdict {
                stats.wrong_values += 1;
                sh.wrong.fetch_add(1, Ordering::Relaxed);
                if out.wrong.len() < KEEP_WRONG {
                    let mut key = Vec::new();
                    sh.write_key(&mut key, lane, p.index);
                    let before: Vec<&str> = history.iter().map(String::as_str).collect();
                    out.wrong.push(format!(
                        "{}: {event}: {why} (before: {})",
                        String::from_utf8_lossy(&key),
                        before.join("; ")
                    ));
                }
            }
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(event);
        }
        let conn = &mut self.conns[c];
        if conn.rstart == conn.rend {
            conn.rstart = 0;
            conn.rend = 0;
        } else if conn.inflight.is_empty() {
            return Err(format!(
                "the server sent bytes with no request in flight on the {protocol:?} connection of lane {}",
                self.id
            ));
        }
        Ok(())
    }
}

/// Checks one answer against the model; updates the protocol's figures.
/// An answer in a few words, values by their version (or number).
fn short(a: &Answer<'_>) -> String {
    match a {
        Answer::Value(v) if v.len() >= 4 && v.iter().take(4).any(|b| !b.is_ascii_digit()) => {
            format!(
                "value v{}",
                u32::from_be_bytes(v[..4].try_into().expect("4 bytes"))
            )
        }
        Answer::Value(v) => format!("value {:?}", String::from_utf8_lossy(&v[..v.len().min(24)])),
        other => format!("{other:?}"),
    }
}

/// A string read's outcome, if `a` is one.
fn read_of<'a>(a: &Answer<'a>) -> Option<ReadOutcome<'a>> {
    match *a {
        Answer::Value(v) => Some(ReadOutcome::Value(v)),
        Answer::Miss => Some(ReadOutcome::Miss),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn check(
    sh: &Shared,
    lane: u64,
    m: &mut Model,
    scratch: &mut Vec<u8>,
    p: &Pending,
    answer: Answer<'_>,
    stats: &mut ProtoStats,
    resp: bool,
) -> Result<(), Wrong> {
    stats.ops += 1;
    let now = unix_ms();
    let kind = KeyType::of(p.index);
    match p.verb {
        Verb::Get => {
            stats.gets += 1;
            stats.reads += 1;
        }
        Verb::HGet { .. } | Verb::ZScore { .. } => {
            stats.collection_ops += 1;
            stats.reads += 1;
        }
        Verb::Set { .. } => {
            stats.sets += 1;
            if kind == KeyType::Str {
                let id = Shared::id(lane, p.index, 0);
                stats.value_bytes_written += sh.values.size(id, p.version) as u64;
            }
        }
        Verb::Delete => stats.deletes += 1,
        Verb::Incr { .. } => stats.incrs += 1,
        _ => stats.collection_ops += 1,
    }
    if let Answer::Value(v) = &answer {
        stats.hits += 1;
        stats.value_bytes_read += v.len() as u64;
    }
    if let Answer::Error(e) = answer {
        stats.server_errors += 1;
        if stats.first_server_error.is_none() {
            stats.first_server_error = Some(format!("{:?}: {e}", p.verb));
        }
        sh.errors.fetch_add(1, Ordering::Relaxed);
        // Whether the request took effect is unknown now.
        m.written(p.index, None);
        return Ok(());
    }
    let i = p.index;
    let id = Shared::id(lane, i, 0);
    let unexpected = || Wrong(format!("unexpected answer {answer:?}"));
    match (kind, p.verb) {
        (KeyType::Str, Verb::Get) => {
            let r = read_of(&answer).ok_or_else(unexpected)?;
            m.read_str(i, id, r, now, &sh.values, scratch)
        }
        (KeyType::Str, Verb::Set { ttl }) => match answer {
            Answer::Stored => {
                let expires_ms = (ttl > 0).then(|| now + u64::from(ttl) * 1000);
                m.written(
                    i,
                    Some(State::Str {
                        version: p.version,
                        expires_ms,
                    }),
                );
                Ok(())
            }
            _ => Err(unexpected()),
        },
        (KeyType::Counter, Verb::Set { .. }) => match answer {
            Answer::Stored => {
                m.written(i, Some(State::Counter(u64::from(p.version))));
                Ok(())
            }
            _ => Err(unexpected()),
        },
        (KeyType::Counter, Verb::Get) => {
            let r = read_of(&answer).ok_or_else(unexpected)?;
            m.read_counter(i, r)
        }
        (KeyType::Counter, Verb::Incr { delta }) => match answer {
            Answer::Incr(result) if !resp => m.incremented(i, delta, result, false),
            Answer::Int(n) if resp && n >= 0 => m.incremented(i, delta, Some(n as u64), true),
            _ => Err(unexpected()),
        },
        (_, Verb::Delete) => match answer {
            Answer::Deleted(found) => m.deleted(i, found),
            _ => Err(unexpected()),
        },
        (KeyType::Hash, Verb::HSet { field })
        | (KeyType::Zset, Verb::ZAdd { member: field, .. }) => match answer {
            Answer::Int(n) => m.field_written(i, field, p.version, Some(n)),
            _ => Err(unexpected()),
        },
        (KeyType::Hash, Verb::HGet { field }) => match answer {
            Answer::Miss => m.field_read(i, field, None),
            Answer::Value(v) => {
                let fid = Shared::id(lane, i, field + 1);
                let version = v
                    .get(..4)
                    .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
                    .ok_or_else(|| Wrong(sh.field_values.describe(fid, v)))?;
                sh.field_values
                    .check(fid, version, v, scratch)
                    .map_err(Wrong)?;
                m.field_read(i, field, Some(version))
            }
            _ => Err(unexpected()),
        },
        (KeyType::Zset, Verb::ZScore { member }) => match answer {
            Answer::Miss => m.field_read(i, member, None),
            Answer::Value(v) => {
                let score = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|s| s.fract() == 0.0 && *s >= 0.0 && *s <= f64::from(u32::MAX))
                    .ok_or_else(|| Wrong(format!("score {:?}", String::from_utf8_lossy(v))))?;
                m.field_read(i, member, Some(score as u32))
            }
            _ => Err(unexpected()),
        },
        (kind, verb) => Err(Wrong(format!("{verb:?} sent to a {kind:?} key"))),
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(TcpStream::from_std(s))
}

/// One thread: its lanes until `stop`, then a drain of what is in flight.
fn thread_main(sh: &Shared, lane_ids: Vec<u64>) -> Outcome {
    let mut out = Outcome::default();
    if let Err(e) = drive(sh, lane_ids, &mut out) {
        out.fatal.push(e);
        sh.stop.store(true, Ordering::Relaxed);
    }
    out
}

fn drive(sh: &Shared, lane_ids: Vec<u64>, out: &mut Outcome) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut lanes = Vec::new();
    for (slot, &id) in lane_ids.iter().enumerate() {
        let mut conns = Vec::new();
        for (c, &protocol) in PROTOCOLS.iter().enumerate() {
            let addr = if protocol == Protocol::Resp {
                sh.cfg.resp_server
            } else {
                sh.cfg.server
            };
            let mut stream = connect(addr)?;
            poll.registry()
                .register(
                    &mut stream,
                    Token(slot * PROTOCOLS.len() + c),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| e.to_string())?;
            conns.push(Conn {
                protocol,
                stream,
                wbuf: Vec::with_capacity(256 * 1024),
                wpos: 0,
                rbuf: vec![0; 256 * 1024],
                rstart: 0,
                rend: 0,
                inflight: VecDeque::new(),
            });
        }
        lanes.push(Lane {
            id,
            conns,
            model: Model::default(),
            busy: HashSet::new(),
            history: HashMap::new(),
            rng: Rng::new(mix3(sh.cfg.seed, id, 0x50a4)),
            version: 0,
            key: Vec::new(),
            value: Vec::new(),
            scratch: Vec::new(),
        });
    }
    let mut events = Events::with_capacity(256);
    let mut drain_until: Option<Instant> = None;
    loop {
        let stopping = sh.stop.load(Ordering::Relaxed);
        if stopping && drain_until.is_none() {
            drain_until = Some(Instant::now() + crate::sockbuf::DRAIN);
        }
        let mut busy = false;
        for lane in &mut lanes {
            for c in 0..lane.conns.len() {
                if !stopping {
                    lane.fill(sh, c);
                }
                let conn = &mut lane.conns[c];
                conn.flush()
                    .map_err(|e| format!("write to {:?}: {e}", conn.protocol))?;
                busy |= !conn.inflight.is_empty();
            }
        }
        if stopping && !busy {
            break;
        }
        if let Some(until) = drain_until {
            if Instant::now() >= until {
                out.unanswered += lanes
                    .iter()
                    .flat_map(|l| &l.conns)
                    .map(|c| c.inflight.len() as u64)
                    .sum::<u64>();
                break;
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        for ev in events.iter() {
            let (slot, c) = (
                ev.token().0 / PROTOCOLS.len(),
                ev.token().0 % PROTOCOLS.len(),
            );
            let lane = &mut lanes[slot];
            if ev.is_readable() || ev.is_read_closed() {
                let conn = &mut lane.conns[c];
                let open = conn
                    .read()
                    .map_err(|e| format!("read from {:?}: {e}", conn.protocol))?;
                lane.process(sh, c, out)?;
                if !open {
                    return Err(format!(
                        "the server closed the {:?} connection of lane {} with {} requests in flight",
                        lane.conns[c].protocol,
                        lane.id,
                        lane.conns[c].inflight.len()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Resident set size of `pid` in bytes, from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `stats` over the memcached text protocol: name → value.
pub fn server_stats(addr: SocketAddr) -> Result<BTreeMap<String, String>, String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"stats\r\n").map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !buf.ends_with(b"END\r\n") {
        let n = s.read(&mut chunk).map_err(|e| format!("stats: {e}"))?;
        if n == 0 {
            return Err("stats: connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("STAT")).then_some(())?;
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect())
}

/// The server figures the report shows.
const SHOWN_STATS: &[&str] = &[
    "limit_maxbytes",
    "bytes",
    "curr_items",
    "total_items",
    "evictions",
    "reclaimed",
    "expired_unfetched",
    "evicted_unfetched",
    "segments_in_use",
    "segments_allocated",
    "heap_bytes",
    "index_bytes",
    "moved_items",
    "compressed_items",
    "compressed_saved_bytes",
    "curr_connections",
];

/// Resident memory figures, MiB.
#[derive(Debug, Default, Serialize)]
pub struct Rss {
    pub pid: u32,
    pub start_mib: f64,
    pub max_mib: f64,
    pub max_at_seconds: f64,
    pub final_mib: f64,
    pub samples: usize,
    pub bound_mib: f64,
}

/// Everything a soak reports.
#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub passed: bool,
    pub failures: Vec<String>,
    pub server: String,
    pub resp_server: String,
    pub minutes: f64,
    pub seconds: f64,
    pub lanes: usize,
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    pub keys: u64,
    pub value_size: (usize, usize),
    pub seed: u64,
    pub key_prefix: String,
    pub memory_limit_mib: Option<f64>,
    pub rss_slack_mb: u64,
    pub rss_slack_pct: f64,
    pub per_protocol: BTreeMap<String, ProtoStats>,
    pub total: ProtoStats,
    pub ops_per_sec: f64,
    pub wrong_values: u64,
    pub first_wrong_values: Vec<String>,
    pub server_errors: u64,
    pub unanswered: u64,
    pub rss: Option<Rss>,
    pub server_stats: BTreeMap<String, String>,
    pub client_cpu_seconds: Option<f64>,
}

const MIB: f64 = 1024.0 * 1024.0;

fn mib(b: u64) -> f64 {
    b as f64 / MIB
}

/// Runs the soak; prints the report; the exit status says whether it passed.
pub fn main(cfg: SoakConfig, cpu: fn() -> Option<f64>) -> ExitCode {
    let cpu_before = cpu();
    let mut failures: Vec<(u8, String)> = Vec::new();
    let memory_limit = match cfg.memory_limit {
        Some(m) => Some(m),
        None => server_stats(cfg.server)
            .ok()
            .and_then(|s| s.get("limit_maxbytes")?.parse().ok()),
    };
    let bound = memory_limit.map(|m| {
        m + cfg.rss_slack_mb * 1024 * 1024 + (m as f64 * cfg.rss_slack_pct / 100.0) as u64
    });
    if cfg.server_pid.is_some() && bound.is_none() {
        eprintln!("ferrobench: --soak: no -m given and the server's stats have no limit_maxbytes");
        return ExitCode::from(2);
    }
    let tag = format!(
        "fs{:06x}",
        mix3(cfg.seed, unix_ms(), u64::from(std::process::id())) & 0xff_ffff
    );
    let lanes = cfg.lanes;
    let sh = Arc::new(Shared {
        values: SoakValues::new(cfg.seed, cfg.value_size.0, cfg.value_size.1),
        field_values: SoakValues::new(cfg.seed ^ 0xf1e1d, 10, 2_000),
        keys_per_lane: (cfg.keys / lanes as u64).max(10),
        tag: tag.clone(),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
        wrong: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        cfg: cfg.clone(),
    });
    let mut rss = cfg.server_pid.map(|pid| Rss {
        pid,
        start_mib: rss_bytes(pid).map_or(0.0, mib),
        bound_mib: bound.map_or(0.0, mib),
        ..Rss::default()
    });
    if let Some(r) = &rss {
        if rss_bytes(r.pid).is_none() {
            eprintln!(
                "ferrobench: --server-pid {}: no /proc/{}/status",
                r.pid, r.pid
            );
            return ExitCode::from(2);
        }
    }
    let threads = cfg.threads.clamp(1, lanes);
    let results = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let sh = Arc::clone(&sh);
            let results = Arc::clone(&results);
            let ids: Vec<u64> = (t..lanes).step_by(threads).map(|l| l as u64).collect();
            std::thread::Builder::new()
                .name(format!("soak-{t}"))
                .spawn(move || {
                    let o = thread_main(&sh, ids);
                    results.lock().expect("no poisoning").push(o);
                })
                .expect("spawn a load thread")
        })
        .collect();
    let deadline = start + cfg.duration;
    let mut next_sample = start;
    let mut next_progress = start + Duration::from_secs(30);
    while !sh.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(1);
            if let Some(r) = &mut rss {
                match rss_bytes(r.pid) {
                    Some(b) => {
                        r.samples += 1;
                        if mib(b) > r.max_mib {
                            r.max_mib = mib(b);
                            r.max_at_seconds = start.elapsed().as_secs_f64();
                        }
                        if let Some(bound) = bound.filter(|&x| b > x) {
                            failures.push((
                                5,
                                format!(
                                    "server RSS {:.1} MiB above the bound {:.1} MiB after {:.0} s",
                                    mib(b),
                                    mib(bound),
                                    start.elapsed().as_secs_f64()
                                ),
                            ));
                            sh.stop.store(true, Ordering::Relaxed);
                        }
                    }
                    None => {
                        failures.push((1, format!("server process {} is gone", r.pid)));
                        sh.stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        if now >= next_progress {
            next_progress += Duration::from_secs(30);
            eprintln!(
                "soak {:.0}/{:.0} s: {} ops, {} wrong values, {} server errors{}",
                start.elapsed().as_secs_f64(),
                cfg.duration.as_secs_f64(),
                sh.ops.load(Ordering::Relaxed),
                sh.wrong.load(Ordering::Relaxed),
                sh.errors.load(Ordering::Relaxed),
                rss.as_ref()
                    .map(|r| format!(", RSS max {:.1} MiB", r.max_mib))
                    .unwrap_or_default(),
            );
        }
        std::thread::sleep(
            next_sample
                .min(deadline)
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200)),
        );
    }
    sh.stop.store(true, Ordering::Relaxed);
    for h in handles {
        if h.join().is_err() {
            failures.push((1, "a load thread panicked".into()));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut outcome = Outcome::default();
    for o in results.lock().expect("no poisoning").iter() {
        for (acc, part) in outcome.per_protocol.iter_mut().zip(&o.per_protocol) {
            acc.merge(part);
        }
        outcome.wrong.extend(
            o.wrong
                .iter()
                .take(KEEP_WRONG.saturating_sub(outcome.wrong.len()))
                .cloned(),
        );
        outcome.fatal.extend(o.fatal.iter().cloned());
        outcome.unanswered += o.unanswered;
    }
    if let Some(r) = &mut rss {
        if let Some(b) = rss_bytes(r.pid) {
            r.final_mib = mib(b);
            r.max_mib = r.max_mib.max(r.final_mib);
            if let Some(bound) = bound.filter(|&x| b > x) {
                failures.push((
                    5,
                    format!(
                        "final server RSS {:.1} MiB above the bound {:.1} MiB",
                        mib(b),
                        mib(bound)
                    ),
                ));
            }
        }
    }
    let stats = server_stats(cfg.server)
        .map(|all| {
            SHOWN_STATS
                .iter()
                .filter_map(|k| Some((k.to_string(), all.get(*k)?.clone())))
                .collect()
        })
        .unwrap_or_else(|e| {
            failures.push((1, format!("server stats after the run: {e}")));
            BTreeMap::new()
        });
    let mut total = ProtoStats::default();
    for p in &outcome.per_protocol {
        total.merge(p);
    }
    for f in &outcome.fatal {
        failures.push((1, f.clone()));
    }
    if total.server_errors > 0 {
        failures.push((
            1,
            format!(
                "{} server error replies, the first: {}",
                total.server_errors,
                total.first_server_error.clone().unwrap_or_default()
            ),
        ));
    }
    if total.wrong_values > 0 {
        failures.push((4, format!("{} wrong values", total.wrong_values)));
    }
    if outcome.unanswered > 0 {
        failures.push((
            1,
            format!("{} requests unanswered after the drain", outcome.unanswered),
        ));
    }
    let report = SoakReport {
        passed: failures.is_empty(),
        failures: failures.iter().map(|(_, f)| f.clone()).collect(),
        server: cfg.server.to_string(),
        resp_server: cfg.resp_server.to_string(),
        minutes: cfg.duration.as_secs_f64() / 60.0,
        seconds,
        lanes,
        connections: lanes * PROTOCOLS.len(),
        threads,
        pipeline: cfg.pipeline,
        keys: sh.keys_per_lane * lanes as u64,
        value_size: cfg.value_size,
        seed: cfg.seed,
        key_prefix: tag,
        memory_limit_mib: memory_limit.map(mib),
        rss_slack_mb: cfg.rss_slack_mb,
        rss_slack_pct: cfg.rss_slack_pct,
        per_protocol: PROTOCOLS
            .iter()
            .zip(&outcome.per_protocol)
            .map(|(p, s)| (format!("{p:?}").to_lowercase(), s.clone()))
            .collect(),
        ops_per_sec: total.ops as f64 / seconds.max(1e-9),
        wrong_values: total.wrong_values,
        first_wrong_values: outcome.wrong.clone(),
        server_errors: total.server_errors,
        unanswered: outcome.unanswered,
        total,
        rss,
        server_stats: stats,
        client_cpu_seconds: cpu().zip(cpu_before).map(|(a, b)| a - b),
    };
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report always serializes")
        );
    } else {
        print!("{}", report.to_table());
    }
    for (_, f) in &failures {
        eprintln!("ferrobench: soak FAILED: {f}");
    }
    match failures.first() {
        None => ExitCode::SUCCESS,
        Some(_) => {
            // The most specific reason wins: run/protocol errors, then wrong values, then RSS.
            let code = failures.iter().map(|(c, _)| *c).min().unwrap_or(1);
            ExitCode::from(code)
        }
    }
}

impl SoakReport {
    /// The report as a table.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "ferrobench soak: {:.1} min ({:.0} s) against {} (memcached text, meta, binary) and {} (RESP); \
             {} lanes x 4 connections on {} threads, pipeline {}, {} keys (prefix {}), values {}-{} B",
            self.minutes,
            self.seconds,
            self.server,
            self.resp_server,
            self.lanes,
            self.threads,
            self.pipeline,
            self.keys,
            self.key_prefix,
            self.value_size.0,
            self.value_size.1
        );
        let _ = writeln!(
            o,
            "{:<8} {:>11} {:>9} {:>10} {:>6} {:>10} {:>9} {:>9} {:>9} {:>10} {:>7} {:>6}",
            "protocol",
            "ops",
            "ops/s",
            "gets",
            "hit%",
            "sets",
            "deletes",
            "incrs",
            "hash/zset",
            "MB written",
            "errors",
            "wrong"
        );
        let rows = self
            .per_protocol
            .iter()
            .map(|(n, s)| (n.as_str(), s))
            .chain(std::iter::once(("total", &self.total)));
        for (name, s) in rows {
            let reads = s.reads;
            let _ = writeln!(
                o,
                "{:<8} {:>11} {:>9.0} {:>10} {:>6} {:>10} {:>9} {:>9} {:>9} {:>10.0} {:>7} {:>6}",
                name,
                s.ops,
                s.ops as f64 / self.seconds.max(1e-9),
                s.gets,
                if reads > 0 {
                    format!("{:.1}", 100.0 * s.hits as f64 / reads as f64)
                } else {
                    "-".into()
                },
                s.sets,
                s.deletes,
                s.incrs,
                s.collection_ops,
                s.value_bytes_written as f64 / 1e6,
                s.server_errors,
                s.wrong_values
            );
        }
        for w in &self.first_wrong_values {
            let _ = writeln!(o, "  wrong value: {w}");
        }
        if let Some(r) = &self.rss {
            let _ = writeln!(
                o,
                "server RSS (pid {}, {} samples): start {:.1} MiB, max {:.1} MiB at {:.0} s, final {:.1} MiB; \
                 bound -m {:.1} MiB + {} MiB + {}% = {:.1} MiB",
                r.pid,
                r.samples,
                r.start_mib,
                r.max_mib,
                r.max_at_seconds,
                r.final_mib,
                self.memory_limit_mib.unwrap_or(0.0),
                self.rss_slack_mb,
                self.rss_slack_pct,
                r.bound_mib
            );
        } else {
            let _ = writeln!(o, "server RSS not checked (no --server-pid)");
        }
        if !self.server_stats.is_empty() {
            let line: Vec<String> = self
                .server_stats
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(o, "server stats: {}", line.join(", "));
        }
        if let Some(cpu) = self.client_cpu_seconds {
            let _ = writeln!(o, "load generator CPU: {cpu:.1} s");
        }
        if self.passed {
            let _ = writeln!(o, "soak PASSED");
        } else {
            for f in &self.failures {
                let _ = writeln!(o, "soak FAILED: {f}");
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    //! A short soak against a real ferrocache started in this process.

    use super::*;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn a_short_soak_against_ferrocache_passes() {
        let mut config = ferrocache::config::Config::default();
        config.server.listen = vec!["127.0.0.1".parse().unwrap()];
        config.server.port = free_port();
        config.server.resp_port = free_port();
        config.server.threads = 2;
        config.store.memory_limit = ferrocache::config::ByteSize::mib(8);
        // Left running until the test process exits.
        let _server = ferrocache::server::Server::start(config.clone()).expect("server starts");
        let cfg = SoakConfig {
            duration: Duration::from_secs(60),
            server: SocketAddr::from(([127, 0, 0, 1], config.server.port)),
            resp_server: SocketAddr::from(([127, 0, 0, 1], config.server.resp_port)),
            // This process: the bound is only a smoke check here.
            server_pid: Some(std::process::id()),
            memory_limit: None,
            rss_slack_mb: 4096,
            rss_slack_pct: 10.0,
            lanes: 2,
            threads: 2,
            pipeline: 4,
            keys: 2_000,
            value_size: (10, 20_000),
            seed: 3,
            json: true,
        };
        let sh = Shared {
            values: SoakValues::new(cfg.seed, cfg.value_size.0, cfg.value_size.1),
            field_values: SoakValues::new(cfg.seed ^ 0xf1e1d, 10, 2_000),
            keys_per_lane: cfg.keys / 2,
            tag: "fstest".into(),
            stop: AtomicBool::new(false),
            ops: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            cfg: cfg.clone(),
        };
        std::thread::scope(|s| {
            let h = s.spawn(|| thread_main(&sh, vec![0, 1]));
            // Until every protocol has had a fair share of requests (or 60 s on a slow machine).
            let start = Instant::now();
            while sh.ops.load(Ordering::Relaxed) < 8_000
                && start.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            sh.stop.store(true, Ordering::Relaxed);
            let out = h.join().unwrap();
            assert!(out.fatal.is_empty(), "{:?}", out.fatal);
            assert!(out.wrong.is_empty(), "{:?}", out.wrong);
            assert_eq!(out.unanswered, 0);
            for (p, s) in PROTOCOLS.iter().zip(&out.per_protocol) {
                assert!(s.ops > 500, "{p:?}: {s:?}");
                assert!(
                    s.gets > 0 && s.sets > 0 && s.deletes > 0 && s.incrs > 0,
                    "{p:?}: {s:?}"
                );
                assert_eq!(s.server_errors, 0, "{p:?}: {s:?}");
            }
            assert!(out.per_protocol[3].collection_ops > 0);
            assert!(out.per_protocol.iter().map(|s| s.hits).sum::<u64>() > 0);
        });
        // The whole path, report included, with the bound from the server's limit_maxbytes.
        assert_eq!(
            main(
                SoakConfig {
                    duration: Duration::from_secs(1),
                    ..cfg
                },
                || None
            ),
            ExitCode::SUCCESS
        );
    }
}
