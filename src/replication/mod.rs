//! Replication: a primary pushes every effect of its store to its replicas as it happens, in
//! Redis's replication protocol (replid, byte offsets, `PSYNC`, `+FULLRESYNC`, `+CONTINUE`),
//! for memcached and Redis clients alike.
//!
//! This module owns the replication state (role, replication ids, the backlog, the links in
//! both directions) and the threads of those links. It never parses a client's command (the
//! RESP commands in `command/resp/replication.rs` call in here) and never writes to the store
//! but through its write path (`Store::restore`, `Store::apply`).
//!
//! - [`backlog`]: the recent records at their offsets; [`frame`]: a record's two renderings;
//! - [`primary`]: one thread per attached replica (full sync, then the live stream, ACKs);
//! - [`replica`]: the thread that follows a primary (handshake, load, apply);
//! - [`identity`]: what a replica tells its primary and Sentinel about itself (priority,
//!   announced address).
//!
//! # Design decisions
//!
//! **One offset space for stock Redis and ferrocache replicas.** The backlog holds one record
//! per effect, in the rich form a ferrocache replica needs (flags, CAS, the value as stored,
//! absolute expiry: `frame.rs`), and each record knows the length of its RESP rendering
//! (`SET k v PXAT ms`, `DEL k`, `HSET`...). Offsets count those RESP bytes. A stock Redis
//! replica is sent the RESP rendering, so its own byte count agrees with our offsets; a
//! ferrocache replica says `REPLCONF capa ferrocache`, is sent the rich frames (each with its
//! RESP length in the frame header) and advances its offset by that length, so both kinds
//! stand at the same offset after the same record, and a replica promoted by `REPLICAOF NO
//! ONE` continues the same numbering (PSYNC2). Why not RESP for everyone: RESP cannot carry
//! memcached flags, CAS or a value compressed as stored; why not rich bytes as offsets: a stock
//! replica could never agree. The price: the RESP length is computed under the shard lock
//! for every write (arithmetic for strings; a walk of the object for collections, which the
//! rich encoding walks anyway), and a stock replica's records are rendered at ship time.
//!
//! **Collections.** A record describes the key's whole state after the edit (the effect does),
//! so an `HSET` of one field on a hash of n fields ships the n fields: O(n) bytes per write,
//! both as rich frame and as RESP (`DEL` + `HSET` of all fields). It is what makes every
//! record idempotent, which is what lets a full sync run with no stop: records replayed over
//! a snapshot that already holds some of them converge to the primary's state. A delta form
//! (the command's own arguments) would need the command layer to report deltas and ordering
//! between the snapshot and the stream per key; not done. Measured (`bench/replication.sh`,
//! `bench/RESULTS.md`): HSET into a 1,000-field hash costs the primary 19.3 µs of CPU per
//! write with a replica against 1.85 without (10 ×), where a string write costs +16 %.
//!
//! **Ordering without one hot lock per write.** Effects are reported under the key's shard
//! lock; the tap encodes the frame there into a per-thread buffer (no shared state), then
//! appends it to the backlog under the backlog's mutex, held for one copy of the frame and a
//! push (a few hundred nanoseconds). Because the append happens under the shard lock, each
//! key's records are in the backlog in the order its changes became visible; records of
//! different shards interleave in append order, which is a valid order. With no replica ever
//! attached the backlog is inactive and the tap returns after one atomic load (as
//! Redis creates its backlog on the first replica). A write wakes a link only when the link
//! waits, and a link that sent a small batch lets 200 µs of records gather: measured, one
//! replica costs +16 % CPU per write (1.60 → 1.85 µs/op, `bench/RESULTS.md`). The mutex is the one point every writing
//! worker passes while replicas exist; on this 2-core machine it is not contended enough to
//! matter (per-worker buffers merged by a shipper would remove it, at the price of a merge by
//! sequence number).
//!
//! **Full sync with no fork and no stop.** The link activates the backlog and notes its end
//! offset `O` first, then writes the snapshot shard by shard (`persist::write_snapshot`, each
//! shard held only while it is copied), then ships every record after `O`. An item the
//! snapshot saw after a later write is simply written again by that record (idempotence).
//!
//! **Replicas do not expire or evict keys on their own while attached**: not yet; they run
//! the same clock on absolute expiries, so a key expires on both within the clock skew, and
//! the primary's expiry still arrives as a delete.

pub mod backlog;
pub mod frame;
pub mod identity;
pub mod primary;
pub mod replica;
pub mod runner;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::clock::unix_millis;
use crate::store::{Effect, Observer};
use backlog::Backlog;

/// A 40-character hex id from the OS's random source (Redis's `getRandomHexChars`).
pub fn random_id() -> String {
    let mut bytes = [0u8; 20];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No random source: the time and pid still make ids that differ between runs.
        let seed = unix_millis() ^ (u64::from(std::process::id()) << 32);
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (seed.rotate_left(i as u32 * 7) >> 8) as u8 ^ i as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whom this server follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica { host: String, port: u16 },
}

/// The replication ids (PSYNC2): the current one, and the previous one with the offset up
/// to which it is valid (a promoted replica accepts its former siblings up to there).
#[derive(Debug, Clone)]
pub struct Ids {
    pub replid: String,
    pub replid2: String,
    /// Redis's `second_replid_offset`: -1 when there is no replid2.
    pub second_offset: i64,
}

/// The state of the link to our primary (when a replica).
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    pub link_up: bool,
    pub sync_in_progress: bool,
    pub last_io_ms: u64,
    /// Since when the link has been down (unix ms), 0 when up or never set.
    pub down_since_ms: u64,
}

/// One replica attached to us, as INFO shows it.
#[derive(Debug)]
pub struct Attached {
    pub id: u64,
    pub ip: String,
    pub port: AtomicU64,
    /// `wait_bgsave`, `send_bulk`, `online`.
    pub state: Mutex<&'static str>,
    pub ack_offset: AtomicU64,
    pub last_ack_ms: AtomicU64,
    pub closed: AtomicBool,
}

/// How often a silent primary puts a PING in the stream (Redis's
/// `repl-ping-replica-period`).
const KEEPALIVE_PERIOD_MS: u64 = 10_000;

/// A client parked in `WAIT numreplicas timeout`.
#[derive(Debug, Clone)]
pub struct Wait {
    /// Its waiter in the blocked-clients registry.
    pub seq: u64,
    pub conn_id: u64,
    pub worker: usize,
    /// The offset the replicas must ack.
    pub offset: u64,
    pub needed: usize,
    pub deadline_ms: Option<u64>,
}

/// Why a client write is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRefusal {
    /// A read-only replica.
    ReadOnly,
    /// Too few good replicas (`min-replicas-to-write`).
    NoReplicas,
}

/// Counters for `INFO stats`.
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub full: AtomicU64,
    pub partial_ok: AtomicU64,
    pub partial_err: AtomicU64,
}

/// The replication state every thread shares.
pub struct Replication {
    /// This process's `run_id` (40 hex, new at every start).
    pub run_id: String,
    pub backlog: Arc<Backlog>,
    ids: Mutex<Ids>,
    role: Mutex<Role>,
    /// The tap records effects: primary role and an active backlog.
    tap_on: AtomicBool,
    /// The role is `Replica` (mirrors `role` for the write path's check).
    is_replica: AtomicBool,
    /// Bumped at every role change: link threads of an older generation stop.
    generation: AtomicU64,
    attached: Mutex<Vec<Arc<Attached>>>,
    next_attached: AtomicU64,
    pub upstream: Mutex<Upstream>,
    /// A handle on the socket of the link to our primary, to shut it at once when the link
    /// is killed (the link's thread notices only at its next read timeout).
    pub(crate) upstream_socket: Mutex<Option<std::net::TcpStream>>,
    pub syncs: SyncCounters,
    /// `replica-priority`, `replica-announce-*`, `replica-announced`.
    pub identity: identity::ReplicaIdentity,
    read_only: AtomicBool,
    /// Clients parked in WAIT.
    waits: Mutex<Vec<Wait>>,
    /// Held by the one link building and sending a full sync: snapshots in memory are one
    /// at a time, however many replicas ask at once.
    pub(crate) full_sync: Mutex<()>,
    /// When the last keepalive PING went into the stream (unix ms).
    last_ping_ms: AtomicU64,
    /// Starts a link thread to a primary (`host`, `port`, generation): set by
    /// [`runner::start`], which knows the server's shared state; until then none is started.
    link_starter: OnceLock<LinkStarter>,
}

/// What starts the link thread that follows a primary.
pub type LinkStarter = Box<dyn Fn(String, u16, u64) + Send + Sync>;

thread_local! {
    /// The tap's encoding buffers (frame, chunk scratch): one pair per writing thread.
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

impl Replication {
    pub fn new(
        backlog_bytes: usize,
        backlog_ttl_ms: u64,
        read_only: bool,
        identity: identity::ReplicaIdentity,
    ) -> Arc<Replication> {
        Arc::new(Replication {
            identity,
            run_id: random_id(),
            backlog: Backlog::new(backlog_bytes, backlog_ttl_ms),
            ids: Mutex::new(Ids {
                replid: random_id(),
                replid2: "0".repeat(40),
                second_offset: -1,
            }),
            role: Mutex::new(Role::Primary),
            tap_on: AtomicBool::new(false),
            is_replica: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            attached: Mutex::new(Vec::new()),
            next_attached: AtomicU64::new(1),
            upstream: Mutex::new(Upstream::default()),
            upstream_socket: Mutex::new(None),
            syncs: SyncCounters::default(),
            read_only: AtomicBool::new(read_only),
            last_ping_ms: AtomicU64::new(0),
            waits: Mutex::new(Vec::new()),
            full_sync: Mutex::new(()),
            link_starter: OnceLock::new(),
        })
    }

    /// Sets what starts link threads (once; [`runner::start`] does at startup).
    pub fn set_link_starter(&self, starter: LinkStarter) {
        let _ = self.link_starter.set(starter);
    }

    fn start_link(&self, host: String, port: u16, generation: u64) {
        if let Some(start) = self.link_starter.get() {
            start(host, port, generation);
        }
    }

    /// The keepalive PING (when due) and, while a WAIT is parked, a request for acks: the
    /// cron's work besides answering WAITs.
    pub fn tick(&self, now_ms: u64) {
        self.keepalive(now_ms, KEEPALIVE_PERIOD_MS);
        if !self.waits.lock().is_empty() {
            // Stock replicas ack once a second unless asked (Redis's GETACK).
            self.request_acks();
        }
    }

    /// How many online replicas acked at least `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.attached
            .lock()
            .iter()
            .filter(|a| {
                *a.state.lock() == "online" && a.ack_offset.load(Ordering::Relaxed) >= offset
            })
            .count()
    }

    /// Parks a WAIT until [`runner::serve_waits`] answers it, and asks the
    /// replicas to ack now.
    pub fn add_wait(&self, wait: Wait) {
        self.waits.lock().push(wait);
        self.request_acks();
    }

    /// Puts `REPLCONF GETACK *` in the stream (a primary with a backlog only), so that
    /// replicas ack at once instead of at their next second.
    pub fn request_acks(&self) {
        if self.tap_on.load(Ordering::Acquire) {
            self.backlog
                .append(frame::GETACK_FRAME, frame::GETACK_RESP_LEN, unix_millis());
        }
    }

    /// Takes out every WAIT whose replicas acked its offset or whose time is up, with the
    /// count of replicas that acked (Redis's reply either way), for [`runner::serve_waits`]
    /// to answer. A WAIT whose connection went away (`is_parked` says no: its worker
    /// cancelled it) is dropped.
    pub fn take_due_waits(
        &self,
        now_ms: u64,
        is_parked: impl Fn(u64) -> bool,
    ) -> Vec<(Wait, usize)> {
        let mut waits = self.waits.lock();
        let mut answered = Vec::new();
        waits.retain(|wait| {
            let count = self.acked(wait.offset);
            let due = count >= wait.needed || wait.deadline_ms.is_some_and(|at| at <= now_ms);
            if !due && is_parked(wait.seq) {
                return true;
            }
            if due {
                answered.push((wait.clone(), count));
            }
            false
        });
        answered
    }

    pub fn role(&self) -> Role {
        self.role.lock().clone()
    }

    pub fn ids(&self) -> Ids {
        self.ids.lock().clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether client writes are refused, and why: a read-only replica, or a primary
    /// with fewer than `min_good` replicas acked within `max_lag_ms`.
    pub fn write_refusal(&self, min_good: usize, max_lag_ms: u64) -> Option<WriteRefusal> {
        // Atomics only on the way of every write: the role's mutex is not taken here.
        if self.is_replica.load(Ordering::Acquire) {
            return self
                .read_only
                .load(Ordering::Relaxed)
                .then_some(WriteRefusal::ReadOnly);
        }
        if min_good == 0 {
            return None;
        }
        let now = unix_millis();
        let good = self
            .attached
            .lock()
            .iter()
            .filter(|a| {
                *a.state.lock() == "online"
                    && now.saturating_sub(a.last_ack_ms.load(Ordering::Relaxed)) <= max_lag_ms
            })
            .count();
        (good < min_good).then_some(WriteRefusal::NoReplicas)
    }

    /// Whether this is a replica that refuses client writes.
    pub fn refuses_writes(&self) -> bool {
        self.write_refusal(0, 0).is_some()
    }

    /// `replica-read-only`.
    pub fn read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::Relaxed);
    }

    /// Activates the backlog for a replica attaching to us; returns the end offset.
    pub fn activate(&self) -> u64 {
        let end = self.backlog.activate();
        if matches!(*self.role.lock(), Role::Primary) {
            self.tap_on.store(true, Ordering::Release);
        }
        end
    }

    /// `REPLICAOF host port`: follow that primary (a new link thread; the old one stops).
    pub fn follow(&self, host: String, port: u16) -> bool {
        {
            let mut role = self.role.lock();
            let wanted = Role::Replica {
                host: host.clone(),
                port,
            };
            if *role == wanted {
                return false; // already following it: Redis answers OK and does nothing
            }
            *role = wanted;
            self.is_replica.store(true, Ordering::Release);
            // From now on the stream comes from the primary, not from our own effects.
            self.tap_on.store(false, Ordering::Release);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.close_upstream_socket();
        self.backlog.wake_all();
        *self.upstream.lock() = Upstream {
            down_since_ms: unix_millis(),
            ..Upstream::default()
        };
        self.start_link(host, port, self.generation());
        true
    }

    /// `CLIENT KILL TYPE master`: drops the link to our primary, as Redis frees its master
    /// client; a new link connects at once and asks to continue where this one stopped
    /// (`PSYNC replid offset`). Returns how many links were dropped (0 or 1: none is up while
    /// connecting or syncing, as Redis has no master client then).
    pub fn kill_upstream(&self) -> usize {
        // The role lock is held throughout, so a REPLICAOF racing this cannot be undone by
        // a link started here for the primary it just left.
        let role = self.role.lock();
        let Role::Replica { host, port } = &*role else {
            return 0;
        };
        if !self.upstream.lock().link_up {
            return 0;
        }
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.close_upstream_socket();
        *self.upstream.lock() = Upstream {
            down_since_ms: unix_millis(),
            ..Upstream::default()
        };
        self.start_link(host.clone(), *port, generation);
        1
    }

    /// Shuts the socket of the link to our primary, so the primary sees the link go at once
    /// (Redis frees its master client); the link's thread then ends on its own.
    fn close_upstream_socket(&self) {
        if let Some(socket) = self.upstream_socket.lock().take() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    /// `CLIENT KILL TYPE replica`: closes the link of every attached replica (each comes
    /// back on its own and continues from the backlog). Returns how many were closed.
    pub fn kill_replica_links(&self) -> usize {
        let killed = self
            .attached
            .lock()
            .iter()
            .filter(|a| !a.closed.swap(true, Ordering::AcqRel))
            .count();
        self.backlog.wake_all();
        killed
    }

    /// `REPLICAOF NO ONE`: become a primary, keeping the data and the offset; the old
    /// replication id becomes replid2, valid up to the current offset (PSYNC2).
    pub fn promote(&self) {
        {
            let mut role = self.role.lock();
            if *role == Role::Primary {
                return;
            }
            *role = Role::Primary;
            self.is_replica.store(false, Ordering::Release);
            let end = self.backlog.end();
            let mut ids = self.ids.lock();
            ids.replid2 = std::mem::replace(&mut ids.replid, random_id());
            ids.second_offset = end as i64 + 1;
            if self.backlog.is_active() {
                self.tap_on.store(true, Ordering::Release);
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.close_upstream_socket();
        *self.upstream.lock() = Upstream::default();
    }

    /// A replica link loaded a full sync from a primary with `replid` at `offset`.
    pub(crate) fn synced(&self, replid: &str, offset: u64) {
        let mut ids = self.ids.lock();
        ids.replid = replid.to_owned();
        ids.replid2 = "0".repeat(40);
        ids.second_offset = -1;
        self.backlog.reset(offset);
    }

    /// A replica link continued with a primary that now says `replid`: when it differs (the
    /// primary was promoted), ours becomes replid2, valid up to here.
    pub(crate) fn continued(&self, replid: &str) {
        let mut ids = self.ids.lock();
        if ids.replid != replid {
            ids.replid2 = std::mem::replace(&mut ids.replid, replid.to_owned());
            ids.second_offset = self.backlog.end() as i64 + 1;
        }
    }

    /// Whether a replica asking `PSYNC replid offset` can continue from our backlog.
    pub fn can_continue(&self, replid: &str, offset: i64) -> bool {
        if offset < 1 {
            return false;
        }
        let ids = self.ids.lock();
        let known = replid == ids.replid
            || (replid == ids.replid2 && ids.second_offset >= 0 && offset <= ids.second_offset);
        known
            && self.backlog.is_active()
            && self.backlog.position(offset as u64 - 1) == backlog::Position::Held
    }

    pub(crate) fn attach_info(&self, ip: String, port: u16) -> Arc<Attached> {
        let attached = Arc::new(Attached {
            id: self.next_attached.fetch_add(1, Ordering::Relaxed),
            ip,
            port: AtomicU64::new(u64::from(port)),
            state: Mutex::new("wait_bgsave"),
            ack_offset: AtomicU64::new(0),
            last_ack_ms: AtomicU64::new(unix_millis()),
            closed: AtomicBool::new(false),
        });
        self.attached.lock().push(attached.clone());
        attached
    }

    pub(crate) fn detach(&self, id: u64) {
        self.attached.lock().retain(|a| a.id != id);
    }

    /// The replicas attached now.
    pub fn attached(&self) -> Vec<Arc<Attached>> {
        self.attached.lock().clone()
    }

    /// Puts a PING in the stream when a primary has been silent for `period_ms` (Redis's
    /// `repl-ping-replica-period`, 10 s), so replicas (a stock Redis one times out after
    /// 60 s) know the link is alive. Called by every link; one of them wins each period.
    pub(crate) fn keepalive(&self, now_ms: u64, period_ms: u64) {
        if !self.tap_on.load(Ordering::Acquire) {
            return; // only a primary pings; a replica forwards its primary's
        }
        let last = self.last_ping_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < period_ms
            || self
                .last_ping_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if now_ms.saturating_sub(self.backlog.last_append_ms()) >= period_ms {
            self.backlog
                .append(frame::PING_FRAME, frame::PING_RESP_LEN, now_ms);
        }
    }

    /// The offset this server stands at (Redis's `master_repl_offset`).
    pub fn offset(&self) -> u64 {
        self.backlog.end()
    }

    /// Lines of `INFO replication`, with Redis's field names.
    pub fn info_section(&self, now_ms: u64, out: &mut String) {
        let role = self.role();
        let ids = self.ids();
        let offset = self.offset();
        out.push_str("# Replication\r\n");
        match &role {
            Role::Primary => out.push_str("role:master\r\n"),
            Role::Replica { host, port } => {
                let up = self.upstream.lock().clone();
                let last_io = if up.link_up {
                    now_ms.saturating_sub(up.last_io_ms) / 1000
                } else {
                    u64::MAX
                };
                let _ = write!(
                    out,
                    "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{offset}\r\nslave_repl_offset:{offset}\r\n",
                    if up.link_up { "up" } else { "down" },
                    if up.link_up { last_io as i64 } else { -1 },
                    u8::from(up.sync_in_progress),
                );
                if !up.link_up && up.down_since_ms != 0 {
                    let _ = write!(
                        out,
                        "master_link_down_since_seconds:{}\r\n",
                        now_ms.saturating_sub(up.down_since_ms) / 1000
                    );
                }
                let _ = write!(
                    out,
                    "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
                    self.identity.priority(),
                    u8::from(self.read_only.load(Ordering::Relaxed)),
                    u8::from(self.identity.announced()),
                );
            }
        }
        let attached = self.attached();
        let _ = write!(out, "connected_slaves:{}\r\n", attached.len());
        for (n, replica) in attached.iter().enumerate() {
            let _ = write!(
                out,
                "slave{n}:ip={},port={},state={},offset={},lag={}\r\n",
                replica.ip,
                replica.port.load(Ordering::Relaxed),
                *replica.state.lock(),
                replica.ack_offset.load(Ordering::Relaxed),
                now_ms.saturating_sub(replica.last_ack_ms.load(Ordering::Relaxed)) / 1000,
            );
        }
        let (first, histlen, _bytes, active, limit) = self.backlog.figures();
        let _ = write!(
            out,
            "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{limit}\r\nrepl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{histlen}\r\n\r\n",
            ids.replid,
            ids.replid2,
            ids.second_offset,
            u8::from(active),
            if active { first } else { 0 },
        );
    }
}

impl Observer for Replication {
    fn effect(&self, effect: &Effect<'_>) {
        if !self.tap_on.load(Ordering::Acquire) {
            return;
        }
        SCRATCH.with(|scratch| {
            let (frame, chunk) = &mut *scratch.borrow_mut();
            let resp_len = frame::encode(effect, frame, chunk);
            self.backlog.append(frame, resp_len, unix_millis());
        });
    }
}
