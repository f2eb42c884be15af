//! Wire formats the generator speaks: request encoding and reply parsing, no I/O.
//!
//! Owns [`Protocol`], [`OpKind`], [`Op`], [`Reply`] and [`ParseError`], and dispatches to one
//! submodule per protocol: `text` (memcached text and meta), `binary` (memcached binary) and
//! `resp` (RESP2). These are written from the protocol documents, independently of the server's
//! own `ferrocache-protocol` crate, so a bug shared by parser and server cannot hide itself.
//! Invariants: the encoder appends exactly one logical request (a multi-get batch included) per
//! [`Op`], and the parser consumes exactly its one reply: `Ok(None)` means "need more bytes" and
//! consumes nothing, so replies map to requests in order on a pipelined connection.

pub mod binary;
pub mod resp;
pub mod text;

use crate::keyspace::write_key;
use crate::value::Values;

pub use crate::decimal::push_u64;

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// memcached text: get, set, multi-key get.
    Text,
    /// memcached meta: mg, ms, quiet mg batches ended by mn.
    Meta,
    /// memcached binary: get, set, getkq batches ended by noop.
    Binary,
    /// Redis RESP2: GET, SET, MGET, HSET, HGET, ZADD, ZRANGE, PUBLISH.
    Resp,
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Read one key.
    Get,
    /// Write one key.
    Set,
    /// Read a batch of keys in one request (or one quiet batch).
    MultiGet,
    /// RESP: write field `f` of a hash.
    HSet,
    /// RESP: read field `f` of a hash.
    HGet,
    /// RESP: add one member to a sorted set.
    ZAdd,
    /// RESP: read the first 10 members of a sorted set.
    ZRange,
    /// RESP: publish a message on a channel.
    Publish,
}

impl OpKind {
    /// The first byte of keys this op touches, so workloads never collide on one key's type.
    pub fn key_prefix(self) -> u8 {
        match self {
            OpKind::Get | OpKind::Set | OpKind::MultiGet => b'k',
            OpKind::HSet | OpKind::HGet => b'h',
            OpKind::ZAdd | OpKind::ZRange => b'z',
            OpKind::Publish => b'c',
        }
    }

    /// Whether the op reads (counts towards the hit ratio).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            OpKind::Get | OpKind::MultiGet | OpKind::HGet | OpKind::ZRange
        )
    }

    /// Whether `protocol` can express this op.
    pub fn supported_by(self, protocol: Protocol) -> bool {
        match self {
            OpKind::Get | OpKind::Set | OpKind::MultiGet => true,
            _ => protocol == Protocol::Resp,
        }
    }
}

/// One request to encode. `key` is the key index (the first of the batch for
/// [`OpKind::MultiGet`], whose keys are all in `batch`; `batch` is empty otherwise, so single-key
/// ops allocate nothing). `version` selects the value written (and the score/member for `ZAdd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub key: u64,
    pub batch: Vec<u64>,
    pub version: u32,
}

impl Op {
    /// An op on `keys` (several only for a multi-get; `keys` must not be empty).
    pub fn new(kind: OpKind, keys: &[u64], version: u32) -> Self {
        Op {
            kind,
            key: keys[0],
            batch: if kind == OpKind::MultiGet {
                keys.to_vec()
            } else {
                Vec::new()
            },
            version,
        }
    }

    /// How many keys the op reads or writes.
    pub fn key_count(&self) -> usize {
        if self.kind == OpKind::MultiGet {
            self.batch.len()
        } else {
            1
        }
    }
}

/// A reply, borrowing from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The write succeeded (`STORED`, `HD`, `+OK`, binary status 0).
    Stored,
    /// A RESP integer reply.
    Integer(i64),
    /// A single-key read missed.
    Miss,
    /// A single-key read hit with this value.
    Value(&'a [u8]),
    /// A batch read's hits, each with its key (text, meta, binary).
    Keyed(Vec<(&'a [u8], &'a [u8])>),
    /// A RESP array of bulk strings or nulls (MGET in request order, ZRANGE members).
    Array(Vec<Option<&'a [u8]>>),
    /// The server answered with an error (its words, lossily decoded).
    Error(String),
}

/// Bytes that are not a valid reply to the request in flight.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {protocol:?} reply: {detail}")]
pub struct ParseError {
    pub protocol: Protocol,
    pub detail: String,
}

impl ParseError {
    pub(crate) fn new(protocol: Protocol, detail: impl Into<String>) -> Self {
        ParseError {
            protocol,
            detail: detail.into(),
        }
    }
}

/// Result of parsing: a reply and how many bytes it used, or `None` for "need more bytes".
pub type Parsed<'a> = Result<Option<(Reply<'a>, usize)>, ParseError>;

/// Encodes requests of one protocol with one key size and value generator.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub protocol: Protocol,
    pub key_size: usize,
    pub values: Values,
}

impl Encoder {
    /// Appends `op` to `out`. `scratch` is reused for keys and values.
    pub fn encode(&self, op: &Op, out: &mut Vec<u8>, scratch: &mut Scratch) {
        scratch.key.clear();
        if op.kind != OpKind::MultiGet {
            write_key(
                &mut scratch.key,
                op.kind.key_prefix(),
                op.key,
                self.key_size,
            );
        }
        scratch.value.clear();
        if matches!(op.kind, OpKind::Set | OpKind::HSet | OpKind::Publish) {
            self.values.write(&mut scratch.value, op.key, op.version);
        }
        match self.protocol {
            Protocol::Text => text::encode_text(self, op, out, scratch),
            Protocol::Meta => text::encode_meta(self, op, out, scratch),
            Protocol::Binary => binary::encode(self, op, out, scratch),
            Protocol::Resp => resp::encode(self, op, out, scratch),
        }
    }
}

/// Reusable buffers for encoding.
#[derive(Debug, Default)]
pub struct Scratch {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Parses the reply to a request of `kind` (a batch of `batch` keys for multi-gets).
pub fn parse(protocol: Protocol, kind: OpKind, batch: usize, buf: &[u8]) -> Parsed<'_> {
    match protocol {
        Protocol::Text => text::parse_text(kind, buf),
        Protocol::Meta => text::parse_meta(kind, buf),
        Protocol::Binary => binary::parse(kind, buf),
        Protocol::Resp => resp::parse(kind, batch, buf),
    }
}

/// Position of the first `\r\n` in `buf`.
pub(crate) fn find_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = buf[from..].iter().position(|&b| b == b'\n') {
        let at = from + p;
        if at > 0 && buf[at - 1] == b'\r' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

/// Parses an unsigned decimal (no sign, at most 19 digits).
pub(crate) fn parse_usize(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0usize, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + usize::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_number_helpers() {
        assert_eq!(find_crlf(b"ab\ncd\r\n"), Some(5));
        assert_eq!(find_crlf(b"abc\r"), None);
        assert_eq!(parse_usize(b"123"), Some(123));
        assert_eq!(parse_usize(b"-1"), None);
        assert_eq!(parse_usize(b""), None);
    }
}
