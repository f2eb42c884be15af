//! memcached's binary protocol (`doc/protocol-binary.xml`, `protocol_binary.h` and the
//! dispatcher `proto_bin.c` in memcached/memcached; deprecated upstream since 1.6.0 but still
//! spoken by libmemcached and spymemcached fleets).
//!
//! This module owns the 24-byte header, the opcode and status tables, the incremental parser
//! (`parse.rs`: one frame at the front of a buffer becomes one [`Request`] borrowing from it)
//! and the response encoder (`encode.rs`). Requests decode to the same vocabulary as the text
//! protocol where the meaning is the same ([`StoreMode`](crate::memcache::StoreMode),
//! [`Exptime`](crate::memcache::Exptime), [`Reply`](crate::memcache::Reply) for quiet
//! opcodes), so `command/` runs one implementation of each command for both.
//!
//! Invariants: the parser never panics, never allocates, never reads past the frame its header
//! declares, and checks the value length against the item size limit before asking for the
//! value's bytes (so a hostile `body length` never makes the connection buffer 4 GiB). It has
//! no I/O, no store and no notion of authentication: SASL state lives in the server's session.
//!
//! ```text
//! Request and response header (all integers big-endian):
//!  0        1        2        3
//! +--------+--------+--------+--------+
//! | magic  | opcode |   key length    |   magic 0x80 request, 0x81 response
//! +--------+--------+--------+--------+
//! | extlen | dtype  | vbucket/status  |   data type is always 0x00 (raw bytes)
//! +--------+--------+--------+--------+
//! |        total body length          |   = extras + key + value
//! +--------+--------+--------+--------+
//! |              opaque               |   echoed verbatim in the response
//! +--------+--------+--------+--------+
//! |                cas                |
//! |                                   |
//! +--------+--------+--------+--------+
//! then: extras (extlen bytes), key (key length bytes), value (the rest of the body)
//! ```

mod encode;
mod parse;

#[cfg(test)]
mod tests;

pub use encode::*;
pub use parse::{parse, Command, ParseError, Request};

/// Size of every request and response header.
pub const HEADER_LEN: usize = 24;
/// First byte of every request (`PROTOCOL_BINARY_REQ`); memcached's `-B auto` picks the binary
/// protocol for a connection whose first byte is this.
pub const REQUEST_MAGIC: u8 = 0x80;
/// First byte of every response (`PROTOCOL_BINARY_RES`).
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Longest SASL mechanism name memcached accepts (`MAX_SASL_MECH_LEN`).
pub const MAX_SASL_MECH_LEN: usize = 32;
/// The incr/decr expiration that means "fail on a miss instead of creating the counter".
pub const ARITH_NO_CREATE: u32 = 0xffff_ffff;

/// The opcodes memcached 1.6 knows (`protocol_binary.h`). Range operations (0x30..=0x3c) and
/// the vbucket/TAP opcodes are defined upstream but never dispatched; they are unknown here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Get = 0x00,
    Set = 0x01,
    Add = 0x02,
    Replace = 0x03,
    Delete = 0x04,
    Increment = 0x05,
    Decrement = 0x06,
    Quit = 0x07,
    Flush = 0x08,
    GetQ = 0x09,
    Noop = 0x0a,
    Version = 0x0b,
    GetK = 0x0c,
    GetKQ = 0x0d,
    Append = 0x0e,
    Prepend = 0x0f,
    Stat = 0x10,
    SetQ = 0x11,
    AddQ = 0x12,
    ReplaceQ = 0x13,
    DeleteQ = 0x14,
    IncrementQ = 0x15,
    DecrementQ = 0x16,
    QuitQ = 0x17,
    FlushQ = 0x18,
    AppendQ = 0x19,
    PrependQ = 0x1a,
    /// Defined in `protocol_binary.h` but not dispatched by memcached 1.6 (`proto_bin.c`
    /// answers it "Unknown command", checked against 1.6.18); we answer the same.
    Verbosity = 0x1b,
    Touch = 0x1c,
    Gat = 0x1d,
    GatQ = 0x1e,
    SaslListMechs = 0x20,
    SaslAuth = 0x21,
    SaslStep = 0x22,
    GatK = 0x23,
    GatKQ = 0x24,
}

impl Opcode {
    /// The opcode for a header byte, `None` for bytes memcached does not know.
    pub fn from_byte(byte: u8) -> Option<Opcode> {
        use Opcode::*;
        Some(match byte {
            0x00 => Get,
            0x01 => Set,
            0x02 => Add,
            0x03 => Replace,
            0x04 => Delete,
            0x05 => Increment,
            0x06 => Decrement,
            0x07 => Quit,
            0x08 => Flush,
            0x09 => GetQ,
            0x0a => Noop,
            0x0b => Version,
            0x0c => GetK,
            0x0d => GetKQ,
            0x0e => Append,
            0x0f => Prepend,
            0x10 => Stat,
            0x11 => SetQ,
            0x12 => AddQ,
            0x13 => ReplaceQ,
            0x14 => DeleteQ,
            0x15 => IncrementQ,
            0x16 => DecrementQ,
            0x17 => QuitQ,
            0x18 => FlushQ,
            0x19 => AppendQ,
            0x1a => PrependQ,
            0x1b => Verbosity,
            0x1c => Touch,
            0x1d => Gat,
            0x1e => GatQ,
            0x20 => SaslListMechs,
            0x21 => SaslAuth,
            0x22 => SaslStep,
            0x23 => GatK,
            0x24 => GatKQ,
            _ => return None,
        })
    }
}

/// Whether a command with this opcode byte needs an authenticated connection when SASL is on.
/// memcached lets only the SASL commands and Version through (`authenticated()` in
/// `proto_bin.c`).
pub fn needs_auth(opcode: u8) -> bool {
    !matches!(
        Opcode::from_byte(opcode),
        Some(Opcode::SaslListMechs | Opcode::SaslAuth | Opcode::SaslStep | Opcode::Version)
    )
}

/// Response status codes (`protocol_binary_response_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    Success = 0x0000,
    KeyNotFound = 0x0001,
    KeyExists = 0x0002,
    TooLarge = 0x0003,
    InvalidArguments = 0x0004,
    NotStored = 0x0005,
    NonNumeric = 0x0006,
    AuthError = 0x0020,
    AuthContinue = 0x0021,
    UnknownCommand = 0x0081,
    OutOfMemory = 0x0082,
    /// `PROTOCOL_BINARY_RESPONSE_ETMPFAIL`: try again later (ferrocache: while the snapshot
    /// loads).
    TemporaryFailure = 0x0086,
}

impl Status {
    /// The body memcached sends with this status when it has no more specific text
    /// (`write_bin_error` in `proto_bin.c`, checked against 1.6.18).
    pub fn message(self) -> &'static [u8] {
        match self {
            Status::Success | Status::AuthContinue => b"",
            Status::KeyNotFound => b"Not found",
            Status::KeyExists => b"Data exists for key.",
            Status::TooLarge => b"Too large.",
            Status::InvalidArguments => b"Invalid arguments",
            Status::NotStored => b"Not stored.",
            Status::NonNumeric => b"Non-numeric server-side value for incr or decr",
            Status::AuthError => b"Auth failure.",
            Status::UnknownCommand => b"Unknown command",
            Status::OutOfMemory => b"Out of memory",
            Status::TemporaryFailure => b"Temporary failure",
        }
    }
}

/// A request header, integers already in host order. `opcode` stays the raw byte: responses
/// echo it, including for opcodes memcached does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub magic: u8,
    pub opcode: u8,
    pub key_len: u16,
    pub extras_len: u8,
    pub data_type: u8,
    pub vbucket: u16,
    pub body_len: u32,
    /// Echoed verbatim: read and written big-endian, so the bytes round-trip.
    pub opaque: u32,
    pub cas: u64,
}

impl Header {
    /// Reads the first [`HEADER_LEN`] bytes of `bytes`; `None` if there are fewer.
    pub fn read(bytes: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            magic: h[0],
            opcode: h[1],
            key_len: u16::from_be_bytes([h[2], h[3]]),
            extras_len: h[4],
            data_type: h[5],
            vbucket: u16::from_be_bytes([h[6], h[7]]),
            body_len: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            opaque: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
            cas: u64::from_be_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]),
        })
    }

    /// Header, extras and key: the bytes memcached reads before it dispatches a command.
    pub fn prefix_len(&self) -> usize {
        HEADER_LEN + usize::from(self.extras_len) + usize::from(self.key_len)
    }

    /// Body bytes after the extras and key (0 when the lengths are inconsistent).
    pub fn value_len(&self) -> usize {
        (self.body_len as usize)
            .saturating_sub(usize::from(self.extras_len) + usize::from(self.key_len))
    }
}
