//! Why a request could not be parsed, and what memcached does about it.
//!
//! Each variant knows the exact line memcached answers with, how many bytes of the buffer the
//! bad request used up, how many more bytes must be thrown away as they arrive, and whether
//! the connection survives. Texts come from memcached 1.6's `proto_text.c` and were checked
//! against the real server (1.6.18). Invariant: `consumed()` never exceeds the buffer that was
//! parsed; `swallow()` bytes come *after* those.

use crate::memcache::meta_flags::decode_base64_key;
use crate::memcache::words::MAX_KEY_LEN;
use crate::memcache::Reply;

/// A request the parser rejected. `'a` borrows the read buffer (for the key a too-large
/// `set` names: memcached unlinks that key, so a stale value never survives a failed set).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError<'a> {
    /// Unknown command, empty line or a known command with the wrong number of tokens:
    /// `ERROR`, never suppressed. The line is consumed.
    #[error("unknown command")]
    UnknownCommand { consumed: usize },
    /// A known command whose argument memcached rejects with a bare `ERROR` (today only
    /// `cache_memlimit <garbage>`). Unlike [`ParseError::UnknownCommand`] this one honours
    /// `noreply`: `reply` is `No` when memcached stays silent.
    #[error("bad argument")]
    BareError { consumed: usize, reply: Reply },
    /// A malformed request answered with `CLIENT_ERROR <message>`; `consumed` bytes are dropped
    /// now and the next `swallow` bytes (an `ms` data block memcached skips) are discarded as
    /// they arrive; the connection stays open. `reply` is `No` when the request said `noreply`
    /// and memcached stays silent too.
    #[error("CLIENT_ERROR {message}")]
    Client {
        message: &'static str,
        consumed: usize,
        swallow: usize,
        reply: Reply,
    },
    /// A storage command whose value exceeds the item size limit:
    /// `SERVER_ERROR object too large for cache`. The header line (`consumed` bytes) is dropped
    /// now and the next `swallow` bytes (the value and its `\r\n`) are discarded as they
    /// arrive. When `unlink` is set (text `set`, every `ms`) memcached also unlinks the key, so
    /// a stale value never survives a failed set; use [`ParseError::unlink_key`] to get it
    /// (`key` is the key as sent, base64 text when `base64_key`).
    #[error("object too large for cache")]
    TooLarge {
        key: &'a [u8],
        base64_key: bool,
        unlink: bool,
        consumed: usize,
        swallow: usize,
        reply: Reply,
    },
    /// No `\n` within the line limit (2048 bytes, except for a `get`/`gets` multiget):
    /// memcached closes the connection without a reply.
    #[error("request line too long")]
    LineTooLong,
    /// An unknown command whose last token starts with `HTTP/` (someone speaks HTTP to us):
    /// memcached closes the connection without a reply.
    #[error("HTTP request on the memcached port")]
    HttpRequest,
}

impl ParseError<'_> {
    /// Bytes of the read buffer this error used up (0 when the connection closes).
    pub fn consumed(&self) -> usize {
        match self {
            ParseError::UnknownCommand { consumed }
            | ParseError::BareError { consumed, .. }
            | ParseError::Client { consumed, .. }
            | ParseError::TooLarge { consumed, .. } => *consumed,
            ParseError::LineTooLong | ParseError::HttpRequest => 0,
        }
    }

    /// Bytes still to discard after `consumed`, as they arrive.
    pub fn swallow(&self) -> usize {
        match self {
            ParseError::TooLarge { swallow, .. } | ParseError::Client { swallow, .. } => *swallow,
            _ => 0,
        }
    }

    /// Whether memcached closes the connection after this error.
    pub fn closes_connection(&self) -> bool {
        matches!(self, ParseError::LineTooLong | ParseError::HttpRequest)
    }

    /// For [`ParseError::TooLarge`] with `unlink`: the key (decoded when it was sent in
    /// base64) that memcached unlinks. `None` for every other error.
    pub fn unlink_key<'s>(&'s self, scratch: &'s mut [u8; MAX_KEY_LEN]) -> Option<&'s [u8]> {
        match self {
            ParseError::TooLarge {
                key,
                base64_key,
                unlink: true,
                ..
            } => {
                if *base64_key {
                    let n = decode_base64_key(key, scratch)?;
                    Some(&scratch[..n])
                } else {
                    Some(key)
                }
            }
            _ => None,
        }
    }

    /// Appends the exact reply bytes (nothing when suppressed by `noreply` or when the
    /// connection closes).
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        match self {
            ParseError::UnknownCommand { .. } => out.extend_from_slice(b"ERROR\r\n"),
            ParseError::BareError { reply, .. } => {
                if reply.wanted() {
                    out.extend_from_slice(b"ERROR\r\n");
                }
            }
            ParseError::Client { message, reply, .. } => {
                if reply.wanted() {
                    crate::memcache::write_client_error(out, message);
                }
            }
            ParseError::TooLarge { reply, .. } => {
                if reply.wanted() {
                    out.extend_from_slice(crate::memcache::reply::TOO_LARGE);
                }
            }
            ParseError::LineTooLong | ParseError::HttpRequest => {}
        }
    }
}
