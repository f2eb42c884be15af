//! The kind of port a connection arrived on, as the acceptor hands it to a worker.

/// The kind of port a connection came in on. It says which session the worker opens; a
/// memcached session then decides between text and binary from the first byte (the
/// [`crate::command::Dialect`] is what the session speaks, this is only where it arrived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// A memcached port (TCP, TLS or the unix socket).
    Memcache,
    /// A RESP (Redis protocol) port.
    Resp,
}

impl Listener {
    /// The protocol's name in the start-up log.
    pub(super) fn name(self) -> &'static str {
        match self {
            Listener::Memcache => "memcached protocol",
            Listener::Resp => "RESP",
        }
    }
}
