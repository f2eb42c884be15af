//! The load: lanes of four connections each (memcached text, meta, binary, RESP), driven by
//! one mio event loop per thread. A lane draws requests over its own key space, keeps at most
//! one request per key in flight and the pipeline full, and hands every reply to the check.
//!
//! Never judges a reply itself (that is `check.rs`) and never looks at the server's memory
//! (`rss.rs`): it reports what it saw in an [`Outcome`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::check::{check, short};
use super::model::{KeyType, Model, Wrong, FIELDS};
use super::report::ProtoStats;
use super::wire::{self, Verb};
use super::{Pending, Shared, PROTOCOLS};
use crate::proto::{ParseError, Protocol};
use crate::rng::{mix3, Rng};

/// How many wrong values are described in the report.
pub(super) const KEEP_WRONG: usize = 10;
/// How many earlier requests of a key a wrong value's description lists.
const HISTORY: usize = 6;

/// What the threads report.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub(super) per_protocol: [ProtoStats; 4],
    pub(super) wrong: Vec<String>,
    pub(super) fatal: Vec<String>,
    pub(super) unanswered: u64,
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

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(TcpStream::from_std(s))
}

/// One thread: its lanes until `stop`, then a drain of what is in flight.
pub(super) fn thread_main(sh: &Shared, lane_ids: Vec<u64>) -> Outcome {
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
