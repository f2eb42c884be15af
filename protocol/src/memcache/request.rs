//! The requests of memcached's text and meta protocols, as borrowed views of the read buffer.
//!
//! Every key in a request has already been checked: 1..=250 bytes (`KEY_MAX_LENGTH`), no space,
//! no control character. Every value has exactly the length its header declared and the
//! trailing `\r\n` has been checked and stripped. Nothing here is allocated.

use crate::memcache::meta_flags::MetaFlags;
pub use crate::memcache::words::{Exptime, MAX_KEY_LEN};

/// Whether the client asked to suppress the reply (`noreply` in the text protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Yes,
    No,
}

impl Reply {
    pub fn wanted(self) -> bool {
        self == Reply::Yes
    }
}

/// The storage commands of the text protocol (`set`, `add`, `replace`, `append`, `prepend`,
/// `cas`); meta `ms` modes map onto the same enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// `cas`: store only if the item's cas unique still equals the given one.
    Cas,
}

/// `incr` or `decr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithDirection {
    Incr,
    Decr,
}

/// Space-separated keys of a `get`-family line, already validated; iterate with [`Keys::iter`].
/// `get`/`gets` carry at least one key; `gat`/`gats` may carry none (memcached answers `END`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys<'a> {
    raw: &'a [u8],
}

impl<'a> Keys<'a> {
    /// `raw` must hold valid keys separated by runs of spaces; the parser guarantees it.
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Keys { raw }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.raw.split(|b| *b == b' ').filter(|k| !k.is_empty())
    }
}

/// Which `stats` group was asked for (`doc/protocol.txt` §General-purpose statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup<'a> {
    General,
    Settings,
    Items,
    Slabs,
    Sizes,
    Conns,
    Reset,
    /// Any other argument: all of the arguments as sent (runs of spaces inside kept, trailing
    /// spaces dropped), e.g. `detail on`, `cachedump 1 10`, `bogus`. The server decides how to
    /// answer it (memcached: `ERROR` for an unknown group).
    Other(&'a [u8]),
}

/// One request of the text or meta protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`/`gets` (touch = None) and `gat`/`gats` (touch = Some); `cas` adds the cas unique.
    /// memcached's undocumented `bget` is parsed as `get`.
    Get {
        keys: Keys<'a>,
        cas: bool,
        touch: Option<Exptime>,
    },
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`.
    Store {
        mode: StoreMode,
        key: &'a [u8],
        flags: u32,
        exptime: Exptime,
        value: &'a [u8],
        /// The client's cas unique; `Some` exactly when `mode` is `Cas`.
        cas_unique: Option<u64>,
        reply: Reply,
    },
    Delete {
        key: &'a [u8],
        reply: Reply,
    },
    Arith {
        direction: ArithDirection,
        key: &'a [u8],
        delta: u64,
        reply: Reply,
    },
    Touch {
        key: &'a [u8],
        exptime: Exptime,
        reply: Reply,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        delay: Option<Exptime>,
        reply: Reply,
    },
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity {
        level: u32,
        reply: Reply,
    },
    Quit,
    /// `shutdown [graceful]`.
    Shutdown {
        graceful: bool,
    },
    /// `save` (on the connection's thread) or `bgsave` (in the background): write a
    /// snapshot. ferrocache's own admin commands; memcached has none.
    Save {
        background: bool,
    },
    Stats(StatsGroup<'a>),
    /// `cache_memlimit <megabytes> [noreply]`.
    CacheMemlimit {
        megabytes: u64,
        reply: Reply,
    },
    /// `mg <key> <flags>*`.
    MetaGet(MetaKeyed<'a>),
    /// `ms <key> <datalen> <flags>*` followed by the data block.
    MetaSet {
        meta: MetaKeyed<'a>,
        value: &'a [u8],
    },
    /// `md <key> <flags>*`.
    MetaDelete(MetaKeyed<'a>),
    /// `ma <key> <flags>*`.
    MetaArith(MetaKeyed<'a>),
    /// `mn`.
    MetaNoop,
    /// `me <key>`: the debug dump of one item.
    MetaDebug(MetaKeyed<'a>),
}

/// The key and flags shared by every keyed meta command.
///
/// `key` is the key as sent. When the `b` flag is present, the key on the wire is base64 and
/// `key` is that base64 text; the caller decodes it (into a stack buffer) with
/// [`MetaKeyed::decode_key`]. The decoded key has been validated by the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaKeyed<'a> {
    pub key: &'a [u8],
    pub flags: MetaFlags<'a>,
}

impl MetaKeyed<'_> {
    /// The key as the store sees it: `key` itself, or its base64 decoding when `b` was given.
    /// `scratch` must hold at least [`MAX_KEY_LEN`] bytes.
    pub fn decode_key<'s>(&'s self, scratch: &'s mut [u8; MAX_KEY_LEN]) -> &'s [u8] {
        if self.flags.base64_key {
            let n = crate::memcache::meta_flags::decode_base64_key(self.key, scratch)
                .expect("parser validated the base64 key");
            &scratch[..n]
        } else {
            self.key
        }
    }
}
