//! The words every memcached parser module shares and that need nothing else: the key rules
//! and the raw expiry. The bottom of the module's imports: it imports nothing of `memcache`.

/// Longest key memcached accepts (`KEY_MAX_LENGTH` in `memcached.h`).
pub const MAX_KEY_LEN: usize = 250;

/// An expiry time exactly as the client sent it (`doc/protocol.txt` §Expiration times):
/// 0 = never, 1..=2_592_000 = seconds from now, larger = absolute unix time, negative =
/// already expired. Turning it into an instant needs a clock, which the caller has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exptime(pub i64);

/// A key memcached's text protocol would take and that we accept: 1..=250 bytes, none of them
/// a space or a control character.
///
/// Deviation: memcached itself only splits on spaces, so it stores keys holding tabs, `\r`
/// or other control bytes; we answer `CLIENT_ERROR bad command line format` to those.
pub(crate) fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.iter().all(|&b| b > b' ' && b != 0x7f)
}
