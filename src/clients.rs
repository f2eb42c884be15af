//! What clients may hold: the limits on one connection's query and output buffers, the memory
//! every connection's buffers take together, and the counts of connections closed for passing
//! a limit.
//!
//! The limits are Redis's, by its names: `proto-max-bulk-len` (largest RESP argument),
//! `client-query-buffer-limit` (largest unparsed request), `maxmemory-clients` (all client
//! buffers together; 0 = no bound), `timeout` (idle seconds before a close; 0 = never),
//! plus the server's output limit (`max_output_buffer`, Redis's `client-output-buffer-limit
//! normal`). They live in atomics so `CONFIG SET` can
//! change them while workers read them; the buffer total moves only when a connection's
//! buffers change size, never per request.
//!
//! Never does I/O and never decides which connection to close: it answers "over the limit?";
//! the connection closes itself and counts it here.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;

/// Shared client limits and counters.
#[derive(Debug)]
pub struct Clients {
    proto_max_bulk_len: AtomicU64,
    query_buffer_limit: AtomicU64,
    output_buffer_limit: AtomicU64,
    maxmemory_clients: AtomicU64,
    /// `maxmemory-clients` as a percentage of the store's limit (0: `maxmemory_clients` is
    /// bytes).
    maxmemory_clients_percent: AtomicU64,
    /// Bytes held by every connection's read and write buffers (capacity, not length).
    buffer_bytes: AtomicU64,
    /// Connections closed because a reply passed the output limit.
    output_limit_disconnections: AtomicU64,
    /// Connections closed because an unparsed request passed the query buffer limit.
    query_limit_disconnections: AtomicU64,
    /// Connections closed to bring the buffer total back under `maxmemory-clients`.
    evicted_clients: AtomicU64,
    /// Seconds of silence after which a connection is closed (0 = never).
    idle_timeout_s: AtomicU64,
    /// Connections closed for being idle (memcached's `idle_kicks`).
    idle_kicks: AtomicU64,
}

/// `maxmemory-clients`: bytes (0 = no bound) or a percentage of the store's limit, as
/// Redis takes `10%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMemoryBound {
    Bytes(u64),
    PercentOfMaxmemory(u64),
}

impl std::fmt::Display for ClientMemoryBound {
    /// As CONFIG GET shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientMemoryBound::Bytes(bytes) => write!(f, "{bytes}"),
            ClientMemoryBound::PercentOfMaxmemory(percent) => write!(f, "{percent}%"),
        }
    }
}

/// Why a connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitBreach {
    /// Unsent replies passed the output limit.
    Output,
    /// The unparsed request passed `client-query-buffer-limit`.
    Query,
    /// The buffers of all clients passed `maxmemory-clients`, and this one is among the big.
    ClientMemory,
}

impl Clients {
    pub fn new(config: &Config) -> Clients {
        Clients {
            proto_max_bulk_len: AtomicU64::new(config.resp.proto_max_bulk_len.bytes()),
            query_buffer_limit: AtomicU64::new(config.resp.client_query_buffer_limit.bytes()),
            output_buffer_limit: AtomicU64::new(config.server.max_output_buffer.bytes()),
            maxmemory_clients: AtomicU64::new(config.resp.maxmemory_clients.bytes()),
            maxmemory_clients_percent: AtomicU64::new(0),
            buffer_bytes: AtomicU64::new(0),
            output_limit_disconnections: AtomicU64::new(0),
            query_limit_disconnections: AtomicU64::new(0),
            evicted_clients: AtomicU64::new(0),
            idle_timeout_s: AtomicU64::new(config.server.idle_timeout_secs),
            idle_kicks: AtomicU64::new(0),
        }
    }

    /// Seconds of silence after which a connection is closed; 0 = never (`timeout`).
    pub fn idle_timeout_s(&self) -> u64 {
        self.idle_timeout_s.load(Ordering::Relaxed)
    }

    pub fn set_idle_timeout_s(&self, seconds: u64) {
        self.idle_timeout_s.store(seconds, Ordering::Relaxed);
    }

    /// Counts a connection closed for being idle.
    pub fn idle_kicked(&self) {
        self.idle_kicks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn idle_kicks(&self) -> u64 {
        self.idle_kicks.load(Ordering::Relaxed)
    }

    pub fn proto_max_bulk_len(&self) -> usize {
        self.proto_max_bulk_len.load(Ordering::Relaxed) as usize
    }

    pub fn set_proto_max_bulk_len(&self, bytes: u64) {
        self.proto_max_bulk_len.store(bytes, Ordering::Relaxed);
    }

    pub fn query_buffer_limit(&self) -> usize {
        self.query_buffer_limit.load(Ordering::Relaxed) as usize
    }

    pub fn set_query_buffer_limit(&self, bytes: u64) {
        self.query_buffer_limit.store(bytes, Ordering::Relaxed);
    }

    /// Most unsent reply bytes a connection may hold. A reply of many parts (a multi-get, an
    /// EXEC, a range) stops growing once past it and the connection is closed; one value
    /// larger than the limit still goes out whole.
    pub fn output_buffer_limit(&self) -> usize {
        self.output_buffer_limit.load(Ordering::Relaxed) as usize
    }

    /// `maxmemory-clients` as set: bytes, or a percentage of the store's limit.
    pub fn maxmemory_clients(&self) -> ClientMemoryBound {
        match self.maxmemory_clients_percent.load(Ordering::Relaxed) {
            0 => ClientMemoryBound::Bytes(self.maxmemory_clients.load(Ordering::Relaxed)),
            percent => ClientMemoryBound::PercentOfMaxmemory(percent),
        }
    }

    pub fn set_maxmemory_clients(&self, bound: ClientMemoryBound) {
        let (bytes, percent) = match bound {
            ClientMemoryBound::Bytes(bytes) => (bytes, 0),
            ClientMemoryBound::PercentOfMaxmemory(percent) => (0, percent),
        };
        self.maxmemory_clients.store(bytes, Ordering::Relaxed);
        self.maxmemory_clients_percent
            .store(percent, Ordering::Relaxed);
    }

    /// The bound in bytes, given the store's limit (0 = none).
    pub fn maxmemory_clients_bytes(&self, store_limit: u64) -> u64 {
        match self.maxmemory_clients() {
            ClientMemoryBound::Bytes(bytes) => bytes,
            ClientMemoryBound::PercentOfMaxmemory(percent) => store_limit / 100 * percent,
        }
    }

    /// Whether a reply being written into `out` (the connection's unsent output) has passed
    /// the output limit: the command should stop adding parts.
    pub fn output_full(&self, out: &[u8]) -> bool {
        out.len() > self.output_buffer_limit()
    }

    /// Bytes held by every client's buffers (`mem_clients_normal`).
    pub fn buffer_bytes(&self) -> u64 {
        self.buffer_bytes.load(Ordering::Relaxed)
    }

    /// A connection's buffers changed from `before` to `after` bytes. Returns whether the
    /// total is now over `maxmemory-clients` with this connection holding at least
    /// `1/connections` of it (so the big clients go first, as Redis evicts the largest).
    pub fn buffers_resized(
        &self,
        before: usize,
        after: usize,
        connections: u64,
        store_limit: u64,
    ) -> bool {
        let total = if after >= before {
            self.buffer_bytes
                .fetch_add((after - before) as u64, Ordering::Relaxed)
                + (after - before) as u64
        } else {
            self.buffer_bytes
                .fetch_sub((before - after) as u64, Ordering::Relaxed)
                - (before - after) as u64
        };
        let limit = self.maxmemory_clients_bytes(store_limit);
        limit != 0 && total > limit && after as u64 >= total / connections.max(1)
    }

    /// Counts a connection closed for `breach`.
    pub fn count(&self, breach: LimitBreach) {
        let counter = match breach {
            LimitBreach::Output => &self.output_limit_disconnections,
            LimitBreach::Query => &self.query_limit_disconnections,
            LimitBreach::ClientMemory => &self.evicted_clients,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections closed for `breach` since start.
    pub fn disconnections(&self, breach: LimitBreach) -> u64 {
        match breach {
            LimitBreach::Output => &self.output_limit_disconnections,
            LimitBreach::Query => &self.query_limit_disconnections,
            LimitBreach::ClientMemory => &self.evicted_clients,
        }
        .load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_biggest_client_over_the_total_is_the_one_to_close() {
        let mut config = Config::default();
        config.resp.maxmemory_clients = crate::config::ByteSize::kib(100);
        let clients = Clients::new(&config);
        let store = 1 << 30;
        assert!(!clients.buffers_resized(0, 40 * 1024, 3, store));
        assert!(!clients.buffers_resized(0, 40 * 1024, 3, store));
        // 110 KiB in all: over; a 30 KiB client is under the 36 KiB average, a 40 KiB one not.
        assert!(!clients.buffers_resized(0, 30 * 1024, 3, store));
        assert!(clients.buffers_resized(40 * 1024, 40 * 1024, 3, store));
        assert_eq!(clients.buffer_bytes(), 110 * 1024);
        assert!(!clients.buffers_resized(40 * 1024, 0, 3, store));
        assert_eq!(clients.buffer_bytes(), 70 * 1024);
    }

    #[test]
    fn no_bound_when_maxmemory_clients_is_zero() {
        let clients = Clients::new(&Config::default());
        assert!(!clients.buffers_resized(0, 1 << 40, 1, 1 << 30));
    }

    #[test]
    fn a_percentage_bound_follows_the_store_limit() {
        let clients = Clients::new(&Config::default());
        clients.set_maxmemory_clients(ClientMemoryBound::PercentOfMaxmemory(10));
        assert_eq!(clients.maxmemory_clients().to_string(), "10%");
        assert!(!clients.buffers_resized(0, 90, 1, 1000));
        assert!(clients.buffers_resized(90, 110, 1, 1000));
        assert!(!clients.buffers_resized(110, 110, 1, 2000));
    }
}
