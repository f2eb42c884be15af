//! Numbers read the way memcached reads them: `safe_strtoull`, `safe_strtoul` and `safe_strtol`
//! from memcached's `util.c`, as built on 64-bit Linux (where `long` is 64 bits).
//!
//! Invariants and quirks kept on purpose, because clients see them (all checked against
//! memcached 1.6.18):
//! - leading C whitespace (`\t \n \v \f \r` and space) and one `+` or `-` sign are accepted;
//! - after the digits the token must end or continue with C whitespace, and whatever follows
//!   that whitespace is ignored (`"5\tjunk"` reads as 5);
//! - a value that does not fit 64 bits is rejected (`ERANGE`);
//! - a negative number is rejected only when its 64-bit wrap is "negative" as a signed number
//!   and the token contains a `-` (so `-1` is rejected but `-0` is 0);
//! - `safe_strtoul` and `safe_strtol` store into 32-bit variables, so memcached silently
//!   truncates modulo 2^32: flags `4294967297` become 1, exptime `4294967306` becomes 10,
//!   a data length of `4294967299` becomes 3. We return the same truncated values.
//!
//! Nothing here allocates or panics.

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What `strtoull`/`strtoll` saw: the sign, the magnitude (None on overflow past u64) and
/// whether the number was properly terminated. `None` when there were no digits at all.
struct Scan {
    negative: bool,
    magnitude: Option<u64>,
    terminated: bool,
}

fn scan(tok: &[u8]) -> Option<Scan> {
    let mut i = 0;
    while i < tok.len() && is_c_space(tok[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < tok.len() && (tok[i] == b'+' || tok[i] == b'-') {
        negative = tok[i] == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut magnitude = Some(0u64);
    while i < tok.len() && tok[i].is_ascii_digit() {
        let d = u64::from(tok[i] - b'0');
        magnitude = magnitude
            .and_then(|m| m.checked_mul(10))
            .and_then(|m| m.checked_add(d));
        i += 1;
    }
    if i == digits_start {
        // strto* sets endptr = str: "no conversion".
        return None;
    }
    let terminated = i == tok.len() || is_c_space(tok[i]);
    Some(Scan {
        negative,
        magnitude,
        terminated,
    })
}

/// `safe_strtoull`: an unsigned 64-bit number.
pub(crate) fn safe_strtoull(tok: &[u8]) -> Option<u64> {
    let s = scan(tok)?;
    let magnitude = s.magnitude?; // ERANGE
    if !s.terminated {
        return None;
    }
    let value = if s.negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    if (value as i64) < 0 && tok.contains(&b'-') {
        return None;
    }
    Some(value)
}

/// `safe_strtoul` into a `uint32_t`: parsed as 64 bits, then truncated.
pub(crate) fn safe_strtoul(tok: &[u8]) -> Option<u32> {
    safe_strtoull(tok).map(|v| v as u32)
}

/// `safe_strtol` into an `int32_t`: parsed as a signed 64-bit number, then truncated.
pub(crate) fn safe_strtol(tok: &[u8]) -> Option<i32> {
    let s = scan(tok)?;
    let magnitude = s.magnitude?;
    let value: i64 = if s.negative {
        if magnitude > 1u64 << 63 {
            return None; // ERANGE
        }
        (magnitude as i64).wrapping_neg()
    } else {
        i64::try_from(magnitude).ok()? // ERANGE
    };
    if !s.terminated {
        return None;
    }
    Some(value as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_like_memcached() {
        assert_eq!(safe_strtoull(b"0"), Some(0));
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"-1"), None);
        assert_eq!(safe_strtoull(b"-0"), Some(0));
        assert_eq!(safe_strtoull(b"+5"), Some(5));
        assert_eq!(safe_strtoull(b"\t5"), Some(5));
        assert_eq!(safe_strtoull(b"5\t"), Some(5));
        assert_eq!(safe_strtoull(b"5\tjunk"), Some(5));
        assert_eq!(safe_strtoull(b"5x"), None);
        assert_eq!(safe_strtoull(b""), None);
        assert_eq!(safe_strtoull(b"-"), None);
        assert_eq!(safe_strtoull(b"abc"), None);
        // Verified on memcached 1.6.18: `incr n -9223372036854775809` adds 2^63 - 1.
        assert_eq!(
            safe_strtoull(b"-9223372036854775809"),
            Some(9_223_372_036_854_775_807)
        );
    }

    #[test]
    fn truncating_32_bit_variants() {
        assert_eq!(safe_strtoul(b"4294967295"), Some(u32::MAX));
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"4294967297"), Some(1));
        assert_eq!(safe_strtoul(b"-1"), None);
        assert_eq!(safe_strtol(b"-1"), Some(-1));
        assert_eq!(safe_strtol(b"4294967306"), Some(10));
        assert_eq!(safe_strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(safe_strtol(b"9223372036854775807"), Some(-1));
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"-9223372036854775809"), None);
        assert_eq!(safe_strtol(b"1\r"), Some(1));
        assert_eq!(safe_strtol(b"x1"), None);
    }
}
