//! RESP reply encoding for both protocol versions.
//!
//! [`Encoder`] borrows the connection's output buffer and knows the connection's version, so
//! command code writes one shape (`map`, `double`, `null`, ...) and gets RESP2's fallback
//! (flat arrays, bulk-string doubles, `$-1`) or RESP3's native type. Invariant: every method
//! writes exactly one complete value (aggregate headers announce the elements that follow).

/// The protocol version of a connection (`HELLO 2|3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RespVersion {
    #[default]
    Resp2,
    Resp3,
}

pub struct Encoder<'o> {
    pub out: &'o mut Vec<u8>,
    pub version: RespVersion,
    /// Past this many bytes in `out`, [`output_full`](Self::output_full) says a reply of many
    /// parts should stop growing (the connection's output limit; unbounded by default).
    pub output_limit: usize,
}

use crate::memcache::write_i64 as push_int;

/// Formats a double as Redis does for replies (`%.17g`, shortest round-trip; `inf`, `-inf`).
pub fn format_double(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if value == value.trunc() && value.abs() < 1e17 {
        return format!("{}", value as i64);
    }
    // Rust's shortest round-trip form is what Redis 7's `%.17g`-then-trim aims at.
    format!("{value}")
}

/// Formats a double as Redis 7.0 replies with one (`addReplyDouble`: C's `%.17g`): 17
/// significant digits, trailing zeros dropped, exponent form below 1e-4 and from 1e17 on
/// (`1e+17`, `1.4999999999999999e-07`), `inf` / `-inf`. Checked against redis-server 7.0;
/// Redis 7.2+ prints the shortest round-trip digits instead (`0.1` where 7.0 says
/// `0.10000000000000001`), in the same layout. Sorted-set scores use this.
pub fn format_score(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    fn trim(text: &str) -> &str {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            text
        }
    }
    // `{:.16e}` rounds to 17 significant digits exactly as %g does and gives the exponent
    // after rounding, which is what picks %g's style.
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` output has an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
    if !(-4..17).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exponent.unsigned_abs())
    } else {
        let decimals = (16 - exponent) as usize;
        trim(&format!("{value:.decimals$}")).to_string()
    }
}

impl<'o> Encoder<'o> {
    pub fn new(out: &'o mut Vec<u8>, version: RespVersion) -> Self {
        Encoder {
            out,
            version,
            output_limit: usize::MAX,
        }
    }

    /// Whether the output has passed [`output_limit`](Self::output_limit): a command writing
    /// many parts stops adding them (the caller closes the connection, so a reply cut short
    /// is never read as a whole one).
    pub fn output_full(&self) -> bool {
        self.out.len() > self.output_limit
    }

    pub fn is_resp3(&self) -> bool {
        self.version == RespVersion::Resp3
    }

    /// `+text`.
    pub fn simple(&mut self, text: &str) {
        self.out.push(b'+');
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// `-text`: `text` starts with the error code (`ERR ...`, `WRONGTYPE ...`).
    pub fn error(&mut self, text: &str) {
        self.out.push(b'-');
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// `:n`.
    pub fn integer(&mut self, n: i64) {
        self.out.push(b':');
        push_int(self.out, n);
        self.out.extend_from_slice(b"\r\n");
    }

    /// `$len\r\nbytes\r\n`.
    /// `$len\r\n`: a bulk string's header, for a caller that appends the `len` bytes and the
    /// closing `\r\n` itself.
    pub fn bulk_header(&mut self, len: usize) {
        self.out.push(b'$');
        push_int(self.out, len as i64);
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn bulk(&mut self, bytes: &[u8]) {
        self.out.reserve(bytes.len() + 16);
        self.out.push(b'$');
        push_int(self.out, bytes.len() as i64);
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(bytes);
        self.out.extend_from_slice(b"\r\n");
    }

    /// Null bulk: `$-1` (RESP2) or `_` (RESP3).
    pub fn null(&mut self) {
        if self.is_resp3() {
            self.out.extend_from_slice(b"_\r\n");
        } else {
            self.out.extend_from_slice(b"$-1\r\n");
        }
    }

    /// Null array: `*-1` (RESP2) or `_` (RESP3), e.g. an aborted EXEC.
    pub fn null_array(&mut self) {
        if self.is_resp3() {
            self.out.extend_from_slice(b"_\r\n");
        } else {
            self.out.extend_from_slice(b"*-1\r\n");
        }
    }

    /// `*n` header: `n` values follow.
    pub fn array(&mut self, n: usize) {
        self.out.push(b'*');
        push_int(self.out, n as i64);
        self.out.extend_from_slice(b"\r\n");
    }

    /// Map header of `n` pairs: `%n` (RESP3) or `*2n` (RESP2). Then key, value, key, value...
    pub fn map(&mut self, n: usize) {
        if self.is_resp3() {
            self.out.push(b'%');
            push_int(self.out, n as i64);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.array(n * 2);
        }
    }

    /// Set header: `~n` (RESP3) or `*n` (RESP2).
    pub fn set(&mut self, n: usize) {
        if self.is_resp3() {
            self.out.push(b'~');
            push_int(self.out, n as i64);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.array(n);
        }
    }

    /// Push header (RESP3 `>n`; RESP2 `*n`), for pub/sub messages.
    pub fn push(&mut self, n: usize) {
        if self.is_resp3() {
            self.out.push(b'>');
            push_int(self.out, n as i64);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.array(n);
        }
    }

    /// A double: `,text` (RESP3) or a bulk string (RESP2), formatted as Redis replies with
    /// one ([`format_score`]).
    pub fn double(&mut self, value: f64) {
        let text = format_score(value);
        if self.is_resp3() {
            self.out.push(b',');
            self.out.extend_from_slice(text.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text.as_bytes());
        }
    }

    /// A boolean: `#t`/`#f` (RESP3) or `:1`/`:0` (RESP2).
    pub fn boolean(&mut self, value: bool) {
        if self.is_resp3() {
            self.out
                .extend_from_slice(if value { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.integer(i64::from(value));
        }
    }

    /// A big number: `(digits` (RESP3) or a bulk string (RESP2).
    pub fn big_number(&mut self, digits: &[u8]) {
        if self.is_resp3() {
            self.out.push(b'(');
            self.out.extend_from_slice(digits);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(digits);
        }
    }

    /// Verbatim text with a three-byte format (`=len\r\nfmt:...`, RESP3), or a bulk string of
    /// the text (RESP2).
    pub fn verbatim_as(&mut self, format: &[u8; 3], text: &[u8]) {
        if self.is_resp3() {
            self.out.push(b'=');
            push_int(self.out, text.len() as i64 + 4);
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(format);
            self.out.push(b':');
            self.out.extend_from_slice(text);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Verbatim text (`=len\r\ntxt:...`, RESP3) or a bulk string (RESP2), used by INFO.
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.is_resp3() {
            self.out.push(b'=');
            push_int(self.out, text.len() as i64 + 4);
            self.out.extend_from_slice(b"\r\ntxt:");
            self.out.extend_from_slice(text);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(f: impl Fn(&mut Encoder<'_>)) -> (String, String) {
        let mut two = Vec::new();
        f(&mut Encoder::new(&mut two, RespVersion::Resp2));
        let mut three = Vec::new();
        f(&mut Encoder::new(&mut three, RespVersion::Resp3));
        (
            String::from_utf8(two).unwrap(),
            String::from_utf8(three).unwrap(),
        )
    }

    #[test]
    fn shapes_per_version() {
        assert_eq!(both(|e| e.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|e| e.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(
            both(|e| {
                e.map(1);
                e.bulk(b"k");
                e.integer(1);
            }),
            (
                "*2\r\n$1\r\nk\r\n:1\r\n".into(),
                "%1\r\n$1\r\nk\r\n:1\r\n".into()
            )
        );
        assert_eq!(
            both(|e| e.double(1.5)),
            ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into())
        );
        assert_eq!(
            both(|e| e.boolean(true)),
            (":1\r\n".into(), "#t\r\n".into())
        );
        assert_eq!(
            both(|e| e.error("ERR x")),
            ("-ERR x\r\n".into(), "-ERR x\r\n".into())
        );
    }

    #[test]
    fn scores_format_like_redis_7_0() {
        // Each pair was printed by redis-server 7.0.15 (ZADD then ZRANGE ... WITHSCORES).
        for (value, text) in [
            (0.0, "0"),
            (3.0, "3"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1.5e-7, "1.4999999999999999e-07"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (1e-300, "1e-300"),
            (123456.5, "123456.5"),
            (1e16, "10000000000000000"),
            (2.5e16, "25000000000000000"),
            (1e17, "1e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e20, "1e+20"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(format_score(value), text, "{value:e}");
        }
    }

    #[test]
    fn doubles_format_like_redis() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-0.5), "-0.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(10.1), "10.1");
    }
}
