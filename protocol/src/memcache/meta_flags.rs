//! Flags of the meta commands (`mg`, `ms`, `md`, `ma`; `doc/protocol.txt` §Meta Commands),
//! how memcached pre-parses them (`_meta_flag_preparse` in `proto_text.c`), and base64 keys.
//!
//! The parser fills [`MetaFlags`] once per request: typed fields for what the command layer
//! acts on, and the raw flag list in request order, because return flags are echoed in the
//! order the client asked for them. At most [`MAX_META_FLAGS`] flags, no allocation.
//!
//! Invariants of a [`MetaFlags`] the parser returns: no flag letter appears twice, every letter
//! is one memcached knows, every numeric token parsed, `opaque` (with its `O`) is at most
//! [`MAX_OPAQUE_LEN`] bytes, and when `base64_key` is set the key decodes to 1..=250 bytes.
//!
//! Flag set: memcached 1.6.18's, plus `E` (new cas) and `x` (md: drop the value) that
//! memcached added in 1.6.28 with the same error texts. 1.6.18 itself answers
//! `CLIENT_ERROR invalid flag` to those two.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use crate::memcache::number::{safe_strtol, safe_strtoul, safe_strtoull};
use crate::memcache::words::{Exptime, MAX_KEY_LEN};

/// Capacity of the flag list. memcached's own limit is lower: `MFLAG_MAX_OPT_LENGTH` (20)
/// bounds the *tokens* of a request line, command and key (and `ms`'s datalen) included, so
/// at most 17 flags reach `mg`/`md`/`ma` and 16 reach `ms`.
pub const MAX_META_FLAGS: usize = 20;
/// An opaque token, its `O` letter included, is at most this long
/// (`MFLAG_MAX_OPAQUE_LENGTH`): the opaque value itself is at most 31 bytes.
pub const MAX_OPAQUE_LEN: usize = 32;

/// One flag token as sent: its letter and whatever followed the letter (empty for plain flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaFlag<'a> {
    pub letter: u8,
    pub token: &'a [u8],
}

/// The `M` token: a storage mode for `ms`, an arithmetic mode for `ma`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaMode {
    /// ms `S` (the default).
    Set,
    /// ms `E`.
    Add,
    /// ms `R`.
    Replace,
    /// ms `A`.
    Append,
    /// ms `P`.
    Prepend,
    /// ma `I` or `+` (the default).
    Incr,
    /// ma `D` or `-`.
    Decr,
}

/// Every flag a meta command can carry, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetaFlags<'a> {
    /// All flag tokens in request order (first `len` entries are valid).
    pub(crate) list: [MetaFlag<'a>; MAX_META_FLAGS],
    pub(crate) len: usize,
    /// `b`: the key is base64.
    pub base64_key: bool,
    /// `c`: return the cas unique.
    pub return_cas: bool,
    /// `f`: return the client flags.
    pub return_flags: bool,
    /// `h`: return whether the item was hit before (0/1).
    pub return_hit: bool,
    /// `k`: return the key.
    pub return_key: bool,
    /// `l`: return seconds since last access.
    pub return_last_access: bool,
    /// `s`: return the value's size.
    pub return_size: bool,
    /// `t`: return the remaining TTL in seconds (-1 = never expires).
    pub return_ttl: bool,
    /// `v`: return the value.
    pub return_value: bool,
    /// `u`: do not bump the item in the LRU.
    pub no_lru_bump: bool,
    /// `q`: quiet mode, suppress the uninteresting reply.
    pub quiet: bool,
    /// `I`: invalidate (ms: store as stale if the cas is older; md: mark stale instead of delete).
    pub invalidate: bool,
    /// `x` (md): drop the value, keep the item.
    pub remove_value: bool,
    /// `O<token>`: opaque, echoed back (the token after `O`; with its `O` at most
    /// [`MAX_OPAQUE_LEN`] bytes; may be empty).
    pub opaque: Option<&'a [u8]>,
    /// `C<token>`: compare cas.
    pub compare_cas: Option<u64>,
    /// `E<token>`: use this as the new cas unique.
    pub new_cas: Option<u64>,
    /// `F<token>`: client flags (ms).
    pub client_flags: Option<u32>,
    /// `T<token>`: TTL to set (ms, ma, md with I) or touch (mg).
    pub ttl: Option<Exptime>,
    /// `N<token>`: vivify on miss with this TTL.
    pub vivify_ttl: Option<Exptime>,
    /// `R<token>`: win the recache if the remaining TTL is below this.
    pub recache_ttl: Option<i64>,
    /// `M<token>`: mode, for `ms` and `ma` only (`mg`/`md` accept any one-character `M`
    /// token and ignore it, as memcached does). `None` when not given.
    pub mode: Option<MetaMode>,
    /// `J<token>` (ma): initial value on autovivify.
    pub initial: Option<u64>,
    /// `D<token>` (ma): delta, default 1.
    pub delta: Option<u64>,
}

impl<'a> MetaFlags<'a> {
    /// The flags in the order the client sent them.
    pub fn in_order(&self) -> &[MetaFlag<'a>] {
        &self.list[..self.len]
    }
}

/// memcached's decoder requires padding to a multiple of 4 (`count % 4` in `base64.c`) and
/// ignores the unused low bits of the last character.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes a base64 key (`b` flag) into `out`; `None` when it is not valid base64, is longer
/// than a key may be on the wire, or decodes to nothing.
///
/// Deviation: memcached's decoder is lenient with malformed input (it skips bytes outside the
/// alphabet and stops after the first padded block); we answer `error decoding key` there.
pub(crate) fn decode_base64_key(b64: &[u8], out: &mut [u8; MAX_KEY_LEN]) -> Option<usize> {
    if b64.is_empty() || b64.len() > MAX_KEY_LEN {
        return None;
    }
    match KEY_ENGINE.decode_slice(b64, &mut out[..]) {
        Ok(n) if n > 0 => Some(n),
        _ => None,
    }
}

/// The outcome of [`preparse`]: memcached's `_meta_flag_preparse`.
pub(crate) struct Preparsed<'a> {
    pub flags: MetaFlags<'a>,
    /// The byte after `M`, if an `M` token was given (validated per command).
    pub mode_char: Option<u8>,
}

/// Parses meta flag tokens exactly as memcached's `_meta_flag_preparse` does.
///
/// `Err` carries memcached's message (without `CLIENT_ERROR `). Like memcached: a repeated
/// letter or a byte >= 127 stops at once with `duplicate flag`, an unknown letter stops at once
/// with `invalid flag`; a bad value records its message and goes on (a later bad value
/// overwrites it; a bad `F` leaves the message as it was, `bad command line format` by
/// default). `mg`/`ms` report the message, `md`/`ma` replace it with
/// `invalid or duplicate flag`.
pub(crate) fn preparse<'a>(
    key: &'a [u8],
    tokens: &[&'a [u8]],
) -> Result<Preparsed<'a>, &'static str> {
    const DEFAULT: &str = "bad command line format";
    const BAD_TOKEN: &str = "bad token in command line format";
    let mut flags = MetaFlags::default();
    let mut mode_char = None;
    let mut seen = [false; 127];
    let mut error: Option<&'static str> = None;
    let mut has_error = false;
    let mut fail = |msg: Option<&'static str>| {
        has_error = true;
        if let Some(m) = msg {
            error = Some(m);
        }
    };
    for tok in tokens {
        let Some((&letter, value)) = tok.split_first() else {
            continue; // tokens are never empty; nothing to do if one were
        };
        if letter >= 127 || seen[usize::from(letter)] {
            return Err("duplicate flag");
        }
        seen[usize::from(letter)] = true;
        match letter {
            b'b' => {
                let mut scratch = [0u8; MAX_KEY_LEN];
                if decode_base64_key(key, &mut scratch).is_none() {
                    fail(Some("error decoding key"));
                }
                flags.base64_key = true;
            }
            b'N' | b'T' | b'R' => match safe_strtol(value) {
                None => fail(Some(BAD_TOKEN)),
                Some(v) => {
                    let v = i64::from(v);
                    match letter {
                        b'N' => flags.vivify_ttl = Some(Exptime(v)),
                        b'T' => flags.ttl = Some(Exptime(v)),
                        _ => flags.recache_ttl = Some(v),
                    }
                }
            },
            b'l' => flags.return_last_access = true,
            b'h' => flags.return_hit = true,
            b'k' => flags.return_key = true,
            b's' => flags.return_size = true,
            b't' => flags.return_ttl = true,
            b'c' => flags.return_cas = true,
            b'f' => flags.return_flags = true,
            b'v' => flags.return_value = true,
            b'u' => flags.no_lru_bump = true,
            b'q' => flags.quiet = true,
            b'I' => flags.invalidate = true,
            b'x' => flags.remove_value = true,
            b'O' => flags.opaque = Some(value),
            b'P' | b'L' => {} // proxy hints, ignored by every command
            b'F' => match safe_strtoul(value) {
                None => fail(None),
                Some(v) => flags.client_flags = Some(v),
            },
            b'C' | b'E' => match safe_strtoull(value) {
                None => fail(Some(BAD_TOKEN)),
                Some(v) if letter == b'C' => flags.compare_cas = Some(v),
                Some(v) => flags.new_cas = Some(v),
            },
            b'M' => {
                if value.len() != 1 {
                    fail(Some("incorrect length for M token"));
                } else {
                    mode_char = Some(value[0]);
                }
            }
            b'J' => match safe_strtoull(value) {
                None => fail(Some("invalid numeric initial value")),
                Some(v) => flags.initial = Some(v),
            },
            b'D' => match safe_strtoull(value) {
                None => fail(Some("invalid numeric delta value")),
                Some(v) => flags.delta = Some(v),
            },
            _ => return Err("invalid flag"),
        }
        if flags.len < MAX_META_FLAGS {
            flags.list[flags.len] = MetaFlag {
                letter,
                token: value,
            };
            flags.len += 1;
        }
    }
    if has_error {
        return Err(error.unwrap_or(DEFAULT));
    }
    Ok(Preparsed { flags, mode_char })
}

/// The `O` token that is too long, if any (memcached: `opaque token too long`).
pub(crate) fn opaque_too_long(flags: &MetaFlags<'_>) -> bool {
    flags.opaque.is_some_and(|o| o.len() + 1 > MAX_OPAQUE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_keys() {
        let mut out = [0u8; MAX_KEY_LEN];
        assert_eq!(decode_base64_key(b"Zm9v", &mut out), Some(3));
        assert_eq!(&out[..3], b"foo");
        assert_eq!(decode_base64_key(b"bWs=", &mut out), Some(2));
        assert_eq!(&out[..2], b"mk");
        // Unused trailing bits are ignored, as memcached does.
        assert_eq!(decode_base64_key(b"Zh==", &mut out), Some(1));
        assert_eq!(&out[..1], b"f");
        assert_eq!(decode_base64_key(b"bWs", &mut out), None);
        assert_eq!(decode_base64_key(b"!!!!", &mut out), None);
        assert_eq!(decode_base64_key(b"====", &mut out), None);
        assert_eq!(decode_base64_key(b"", &mut out), None);
        let long = [b'A'; 252];
        assert_eq!(decode_base64_key(&long, &mut out), None);
        let max = [b'A'; 248];
        assert_eq!(decode_base64_key(&max, &mut out), Some(186));
    }
}
