//! What other connections may see of a connection: [`ConnInfo`] (`stats conns`, CLIENT
//! LIST/KILL) and, for a RESP session, its [`ClientShown`] state.
//!
//! Written by the connection's own worker (and its session), read by anyone; plain atomics
//! and small mutexes, never held while calling anything else. No I/O, no protocol parsing.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};

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
    pub client: ClientShown,
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

/// Where a connection comes from: its id, both ends of the socket and its descriptor.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: u64,
    pub peer: String,
    pub local: String,
    pub fd: i32,
}

impl ConnInfo {
    /// A connection opened at `now_ms` (on the RESP listener when `resp`), nothing shown yet.
    pub fn new(endpoint: Endpoint, resp: bool, now_ms: u64) -> ConnInfo {
        ConnInfo {
            id: endpoint.id,
            peer: endpoint.peer,
            local: endpoint.local,
            fd: endpoint.fd,
            client: Default::default(),
            resp,
            opened_ms: now_ms,
            last_active_ms: std::sync::atomic::AtomicU64::new(now_ms),
            name: parking_lot::Mutex::new(Vec::new()),
            kill: AtomicBool::new(false),
        }
    }
}

/// Whether a client's reads count as uses of the keys they read (CLIENT NO-TOUCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadsTouch {
    /// Reads update the key's LRU/LFU data (the default).
    Yes,
    /// CLIENT NO-TOUCH ON: reads leave it; only TOUCH still touches.
    No,
}

/// A RESP session's state as CLIENT LIST shows it, written by the session, read by anyone.
#[derive(Debug)]
pub struct ClientShown {
    /// 2 or 3.
    pub(crate) resp: AtomicU8,
    /// Commands queued since MULTI, -1 outside MULTI.
    pub(crate) multi: AtomicI64,
    pub(crate) channels: AtomicUsize,
    pub(crate) patterns: AtomicUsize,
    pub(crate) shard_channels: AtomicUsize,
    /// CLIENT NO-EVICT ON (flag `e`; ferrocache never evicts clients anyway).
    pub(crate) no_evict: AtomicBool,
    /// CLIENT NO-TOUCH ON (flag `T`): the session's own reads consult this.
    pub(crate) no_touch: AtomicBool,
    /// The last command, as Redis names it (`client|list`); empty before the first.
    pub(crate) last_command: parking_lot::Mutex<String>,
    pub(crate) lib_name: parking_lot::Mutex<String>,
    pub(crate) lib_version: parking_lot::Mutex<String>,
    /// The ACL user the connection is authenticated as (empty = `default`).
    pub(crate) user: parking_lot::Mutex<String>,
    /// The connection's buffers at the end of its last turn (written by the connection).
    pub(crate) query_len: AtomicUsize,
    pub(crate) query_capacity: AtomicUsize,
    pub(crate) output_capacity: AtomicUsize,
    pub(crate) multi_mem: AtomicUsize,
}

impl ClientShown {
    /// Records the ACL user (CLIENT LIST `user`).
    pub fn set_user(&self, name: &str) {
        let mut user = self.user.lock();
        user.clear();
        user.push_str(name);
    }

    /// Records the connection's buffers: unparsed input and the read buffer's size, and the
    /// output buffer's size, and what a transaction's queue holds (CLIENT LIST `qbuf`,
    /// `qbuf-free`, `rbs`, `omem`, `multi-mem`, `tot-mem`).
    pub fn set_buffers(
        &self,
        query_len: usize,
        query_capacity: usize,
        output_capacity: usize,
        multi_mem: usize,
    ) {
        self.multi_mem.store(multi_mem, Ordering::Relaxed);
        self.query_len.store(query_len, Ordering::Relaxed);
        self.query_capacity.store(query_capacity, Ordering::Relaxed);
        self.output_capacity
            .store(output_capacity, Ordering::Relaxed);
    }
}

impl Default for ClientShown {
    fn default() -> ClientShown {
        ClientShown {
            resp: AtomicU8::new(2),
            multi: AtomicI64::new(-1),
            channels: AtomicUsize::new(0),
            patterns: AtomicUsize::new(0),
            shard_channels: AtomicUsize::new(0),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            last_command: parking_lot::Mutex::new(String::new()),
            lib_name: parking_lot::Mutex::new(String::new()),
            lib_version: parking_lot::Mutex::new(String::new()),
            user: parking_lot::Mutex::new(String::new()),
            query_len: AtomicUsize::new(0),
            query_capacity: AtomicUsize::new(0),
            output_capacity: AtomicUsize::new(0),
            multi_mem: AtomicUsize::new(0),
        }
    }
}

impl ClientShown {
    /// Whether the client is subscribed to anything (flag `P`, KILL TYPE pubsub).
    pub(crate) fn subscribed(&self) -> bool {
        self.channels.load(Ordering::Relaxed)
            + self.patterns.load(Ordering::Relaxed)
            + self.shard_channels.load(Ordering::Relaxed)
            > 0
    }

    /// RESET turns NO-EVICT and NO-TOUCH off (Redis `clearClientConnectionState`).
    pub fn reset_flags(&self) {
        self.no_evict.store(false, Ordering::Relaxed);
        self.no_touch.store(false, Ordering::Relaxed);
    }

    pub(crate) fn reads_touch(&self) -> ReadsTouch {
        if self.no_touch.load(Ordering::Relaxed) {
            ReadsTouch::No
        } else {
            ReadsTouch::Yes
        }
    }
}
