//! The incremental parser of binary requests: one frame at the front of a buffer.
//!
//! It follows memcached's `try_read_command_binary` and `dispatch_bin_command` step by step,
//! because clients observe the order: 24 header bytes, then the magic; then the extras and key;
//! then the lengths (`key + extras > body` → Unknown command, close); then the key limit and
//! each opcode's field rules (→ Invalid arguments, close); only then the value, whose length is
//! checked against the item size limit before its bytes are awaited.
//!
//! Like memcached, commands that carry no value consume only header, extras and key: a Stat or
//! Touch whose body is longer leaves the surplus to be read as the next request, and an unknown
//! opcode discards `body length` bytes *after* its extras and key (memcached's `conn_swallow`
//! counts the whole body again; 1.6.18 does exactly this). Both are memcached's wire behaviour,
//! kept so that a client sees the same bytes from us.

use crate::binary::{Header, Opcode, ARITH_NO_CREATE, HEADER_LEN, REQUEST_MAGIC};
use crate::memcache::{ArithDirection, Exptime, Limits, Reply, StoreMode, MAX_KEY_LEN};

/// One binary request: its header (for the opaque, the opcode byte to echo and the cas) and
/// what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub header: Header,
    pub command: Command<'a>,
}

/// What a binary request asks for, in the text protocol's vocabulary where the meaning is the
/// same. `reply: Reply::No` marks a quiet opcode (GetQ, SetQ, …): memcached leaves out its
/// success reply (and the miss of a quiet get), never its errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// Get, GetK, GAT, GATK and their quiet forms. `touch` is set for the GAT family;
    /// `with_key` for the K forms, whose hits and misses carry the key.
    Get {
        key: &'a [u8],
        touch: Option<Exptime>,
        with_key: bool,
        reply: Reply,
    },
    /// Touch: a hit answers with the item's flags and cas but no value.
    Touch {
        key: &'a [u8],
        exptime: Exptime,
    },
    /// Set, Add, Replace, Append, Prepend and their quiet forms. A non-zero header cas turns
    /// Set/Add/Replace into [`StoreMode::Cas`] (memcached's `NREAD_CAS`); Append/Prepend keep
    /// their mode and compare `cas_unique` too.
    Store {
        mode: StoreMode,
        key: &'a [u8],
        flags: u32,
        exptime: Exptime,
        value: &'a [u8],
        cas_unique: Option<u64>,
        reply: Reply,
    },
    /// Delete(Q); `cas_unique` from the header (0 = any).
    Delete {
        key: &'a [u8],
        cas_unique: Option<u64>,
        reply: Reply,
    },
    /// Increment, Decrement and their quiet forms. `create` is the initial value and expiry
    /// used on a miss; `None` when the expiration was `0xffffffff` (fail with Not found).
    Arith {
        direction: ArithDirection,
        key: &'a [u8],
        delta: u64,
        create: Option<(u64, Exptime)>,
        cas_unique: Option<u64>,
        reply: Reply,
    },
    /// Quit(Q): answer (unless quiet), then close.
    Quit {
        reply: Reply,
    },
    /// Flush(Q), with the optional delay extra (0 = now).
    Flush {
        delay: Option<Exptime>,
        reply: Reply,
    },
    Noop,
    Version,
    /// Stat; `group` is the key (empty = general statistics).
    Stat {
        group: &'a [u8],
    },
    SaslListMechs,
    /// SASL Auth: `mechanism` is the key, `data` the value.
    SaslAuth {
        mechanism: &'a [u8],
        data: &'a [u8],
    },
    /// SASL Step: `mechanism` is the key, `data` the value.
    SaslStep {
        mechanism: &'a [u8],
        data: &'a [u8],
    },
}

/// A frame the parser refused, with memcached's reply and what happens to the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError<'a> {
    /// The first byte of a frame is not 0x80: memcached closes without a reply.
    #[error("bad magic byte {magic:#04x}")]
    BadMagic { magic: u8 },
    /// Key plus extras longer than the body: Unknown command, then close.
    #[error("key and extras longer than the body")]
    BadLengths { header: Header },
    /// A key over 250 bytes or fields an opcode does not allow: Invalid arguments, then close
    /// (memcached's `handle_binary_protocol_error`).
    #[error("invalid arguments for opcode {:#04x}", header.opcode)]
    Invalid { header: Header },
    /// An opcode memcached does not dispatch: Unknown command; header, extras and key are
    /// consumed and the next `body length` bytes are discarded as they arrive.
    #[error("unknown opcode {:#04x}", header.opcode)]
    UnknownCommand { header: Header },
    /// A value over the item size limit (storage opcodes: Too large; SASL: Out of memory, as
    /// memcached fails to allocate the item). Header, extras and key are consumed, the value is
    /// discarded as it arrives. For Set memcached also unlinks `key`, so no stale value
    /// survives a failed set.
    #[error("value of {} bytes over the item size limit", header.value_len())]
    TooLarge { header: Header, key: &'a [u8] },
}

impl ParseError<'_> {
    /// The header of the refused frame (`None` for a bad magic: nothing is trusted then).
    pub fn header(&self) -> Option<&Header> {
        match self {
            ParseError::BadMagic { .. } => None,
            ParseError::BadLengths { header }
            | ParseError::Invalid { header }
            | ParseError::UnknownCommand { header }
            | ParseError::TooLarge { header, .. } => Some(header),
        }
    }

    /// Whether memcached closes the connection (after sending the reply, if any).
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ParseError::BadMagic { .. }
                | ParseError::BadLengths { .. }
                | ParseError::Invalid { .. }
        )
    }

    /// Bytes of the buffer used up (the extras and key are always in the buffer by then).
    pub fn consumed(&self) -> usize {
        match self {
            ParseError::UnknownCommand { header } | ParseError::TooLarge { header, .. } => {
                header.prefix_len()
            }
            _ => 0,
        }
    }

    /// Bytes to discard after `consumed`, as they arrive.
    pub fn swallow(&self) -> usize {
        match self {
            ParseError::UnknownCommand { header } => header.body_len as usize,
            ParseError::TooLarge { header, .. } => header.value_len(),
            _ => 0,
        }
    }

    /// The status memcached answers with (`None`: it closes silently).
    pub fn status(&self) -> Option<crate::binary::Status> {
        use crate::binary::Status;
        match self {
            ParseError::BadMagic { .. } => None,
            ParseError::BadLengths { .. } | ParseError::UnknownCommand { .. } => {
                Some(Status::UnknownCommand)
            }
            ParseError::Invalid { .. } => Some(Status::InvalidArguments),
            ParseError::TooLarge { header, .. } => Some(
                if matches!(
                    Opcode::from_byte(header.opcode),
                    Some(Opcode::SaslAuth | Opcode::SaslStep)
                ) {
                    Status::OutOfMemory
                } else {
                    Status::TooLarge
                },
            ),
        }
    }

    /// For a too-large Set (or SetQ): the key memcached unlinks.
    pub fn unlink_key(&self) -> Option<&[u8]> {
        match self {
            ParseError::TooLarge { header, key }
                if matches!(
                    Opcode::from_byte(header.opcode),
                    Some(Opcode::Set | Opcode::SetQ)
                ) =>
            {
                Some(key)
            }
            _ => None,
        }
    }
}

type Parsed<'a> = Result<Option<(Request<'a>, usize)>, ParseError<'a>>;

/// Parses one request from the front of `buf`.
///
/// - `Ok(Some((request, consumed)))`: a whole request; drop `consumed` bytes once `request`
///   is no longer used.
/// - `Ok(None)`: incomplete; read more and call again with the grown buffer. The buffer never
///   needs more than header + extras + key (at most 65,814 bytes) before a decision, plus the
///   value only once it is known to fit `limits.item_size_max`.
/// - `Err(e)`: see [`ParseError`] for the reply and what to drop.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let Some(header) = Header::read(buf) else {
        return Ok(None);
    };
    if header.magic != REQUEST_MAGIC {
        return Err(ParseError::BadMagic {
            magic: header.magic,
        });
    }
    let prefix = header.prefix_len();
    if buf.len() < prefix {
        return Ok(None);
    }
    let ext_len = usize::from(header.extras_len);
    let key_len = usize::from(header.key_len);
    let body_len = header.body_len as usize;
    if key_len > body_len || key_len + ext_len > body_len {
        return Err(ParseError::BadLengths { header });
    }
    if key_len > MAX_KEY_LEN {
        return Err(ParseError::Invalid { header });
    }
    let extras = &buf[HEADER_LEN..HEADER_LEN + ext_len];
    let key = &buf[HEADER_LEN + ext_len..prefix];
    let Some(opcode) = Opcode::from_byte(header.opcode) else {
        return Err(ParseError::UnknownCommand { header });
    };
    let invalid = Err(ParseError::Invalid { header });
    let quiet = |q: bool| if q { Reply::No } else { Reply::Yes };
    let cas_unique = (header.cas != 0).then_some(header.cas);
    // Frames with no value: everything the command reads is in `prefix`.
    let simple = |command: Command<'a>| Ok(Some((Request { header, command }, prefix)));
    let empty = ext_len == 0 && key_len == 0 && body_len == 0;
    use Opcode::*;
    match opcode {
        Version | Noop | Quit | QuitQ | SaslListMechs => {
            if !empty {
                return invalid;
            }
            simple(match opcode {
                Version => Command::Version,
                Noop => Command::Noop,
                SaslListMechs => Command::SaslListMechs,
                _ => Command::Quit {
                    reply: quiet(opcode == QuitQ),
                },
            })
        }
        Flush | FlushQ => {
            if key_len != 0 || body_len != ext_len || !(ext_len == 0 || ext_len == 4) {
                return invalid;
            }
            simple(Command::Flush {
                delay: (ext_len == 4).then(|| Exptime(i64::from(be_u32(extras)))),
                reply: quiet(opcode == FlushQ),
            })
        }
        Get | GetQ | GetK | GetKQ => {
            if ext_len != 0 || body_len != key_len || key_len == 0 {
                return invalid;
            }
            simple(Command::Get {
                key,
                touch: None,
                with_key: matches!(opcode, GetK | GetKQ),
                reply: quiet(matches!(opcode, GetQ | GetKQ)),
            })
        }
        Touch | Gat | GatQ | GatK | GatKQ => {
            if ext_len != 4 || key_len == 0 {
                return invalid;
            }
            let exptime = Exptime(i64::from(be_u32(extras)));
            simple(if opcode == Touch {
                Command::Touch { key, exptime }
            } else {
                Command::Get {
                    key,
                    touch: Some(exptime),
                    with_key: matches!(opcode, GatK | GatKQ),
                    reply: quiet(matches!(opcode, GatQ | GatKQ)),
                }
            })
        }
        Delete | DeleteQ => {
            if key_len == 0 || ext_len != 0 || body_len != key_len {
                return invalid;
            }
            simple(Command::Delete {
                key,
                cas_unique,
                reply: quiet(opcode == DeleteQ),
            })
        }
        Increment | IncrementQ | Decrement | DecrementQ => {
            if key_len == 0 || ext_len != 20 || body_len != key_len + ext_len {
                return invalid;
            }
            let delta = be_u64(&extras[0..8]);
            let initial = be_u64(&extras[8..16]);
            let expiration = be_u32(&extras[16..20]);
            simple(Command::Arith {
                direction: if matches!(opcode, Increment | IncrementQ) {
                    ArithDirection::Incr
                } else {
                    ArithDirection::Decr
                },
                key,
                delta,
                create: (expiration != ARITH_NO_CREATE)
                    .then_some((initial, Exptime(i64::from(expiration)))),
                cas_unique,
                reply: quiet(matches!(opcode, IncrementQ | DecrementQ)),
            })
        }
        Stat => {
            if ext_len != 0 {
                return invalid;
            }
            simple(Command::Stat { group: key })
        }
        Verbosity => Err(ParseError::UnknownCommand { header }),
        Set | SetQ | Add | AddQ | Replace | ReplaceQ => {
            if ext_len != 8 || key_len == 0 || body_len < key_len + 8 {
                return invalid;
            }
            let base = match opcode {
                Set | SetQ => StoreMode::Set,
                Add | AddQ => StoreMode::Add,
                _ => StoreMode::Replace,
            };
            let mode = if cas_unique.is_some() {
                StoreMode::Cas
            } else {
                base
            };
            let flags = be_u32(&extras[0..4]);
            let exptime = Exptime(i64::from(be_u32(&extras[4..8])));
            let reply = quiet(matches!(opcode, SetQ | AddQ | ReplaceQ));
            with_value(buf, header, key, limits, |value| Command::Store {
                mode,
                key,
                flags,
                exptime,
                value,
                cas_unique,
                reply,
            })
        }
        Append | AppendQ | Prepend | PrependQ => {
            if key_len == 0 || ext_len != 0 {
                return invalid;
            }
            let mode = if matches!(opcode, Append | AppendQ) {
                StoreMode::Append
            } else {
                StoreMode::Prepend
            };
            let reply = quiet(matches!(opcode, AppendQ | PrependQ));
            with_value(buf, header, key, limits, |value| Command::Store {
                mode,
                key,
                flags: 0,
                exptime: Exptime(0),
                value,
                cas_unique,
                reply,
            })
        }
        SaslAuth | SaslStep => {
            if ext_len != 0 || key_len == 0 {
                return invalid;
            }
            with_value(buf, header, key, limits, |data| {
                if opcode == SaslAuth {
                    Command::SaslAuth {
                        mechanism: key,
                        data,
                    }
                } else {
                    Command::SaslStep {
                        mechanism: key,
                        data,
                    }
                }
            })
        }
    }
}

/// Finishes a frame that carries a value: refuses it as too large before waiting for its
/// bytes, waits for them otherwise.
fn with_value<'a>(
    buf: &'a [u8],
    header: Header,
    key: &'a [u8],
    limits: &Limits,
    command: impl FnOnce(&'a [u8]) -> Command<'a>,
) -> Parsed<'a> {
    let value_len = header.value_len();
    if value_len > limits.item_size_max {
        return Err(ParseError::TooLarge { header, key });
    }
    let prefix = header.prefix_len();
    let end = prefix + value_len;
    if buf.len() < end {
        return Ok(None);
    }
    let command = command(&buf[prefix..end]);
    Ok(Some((Request { header, command }, end)))
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}
