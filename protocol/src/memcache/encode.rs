//! Replies of the text and meta protocols, written straight into the connection's output buffer.
//!
//! Fixed replies are byte constants; variable ones are small functions. Numbers are formatted
//! without allocating. Nothing here decides *which* reply a request gets: that is `command/`.

/// Fixed replies of the text protocol, with their `\r\n`.
pub mod reply {
    pub const STORED: &[u8] = b"STORED\r\n";
    pub const NOT_STORED: &[u8] = b"NOT_STORED\r\n";
    pub const EXISTS: &[u8] = b"EXISTS\r\n";
    pub const NOT_FOUND: &[u8] = b"NOT_FOUND\r\n";
    pub const DELETED: &[u8] = b"DELETED\r\n";
    pub const TOUCHED: &[u8] = b"TOUCHED\r\n";
    pub const OK: &[u8] = b"OK\r\n";
    pub const END: &[u8] = b"END\r\n";
    pub const RESET: &[u8] = b"RESET\r\n";
    pub const ERROR: &[u8] = b"ERROR\r\n";
    pub const NON_NUMERIC: &[u8] =
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
    pub const OUT_OF_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
    pub const TOO_MANY_CONNECTIONS: &[u8] = b"SERVER_ERROR Too many open connections\r\n";
    pub const FLUSH_DISABLED: &[u8] = b"CLIENT_ERROR flush_all not allowed\r\n";
    pub const SHUTDOWN_DISABLED: &[u8] = b"ERROR: shutdown not enabled\r\n";
    /// A request while the snapshot loads (ferrocache; Redis says `-LOADING`).
    pub const LOADING: &[u8] = b"SERVER_ERROR loading\r\n";
    pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
    /// ferrocache's protected mode (memcached has none; this follows Redis's DENIED in the
    /// form of memcached's other refusals at accept time, such as TOO_MANY_CONNECTIONS).
    pub const PROTECTED_MODE_DENIED: &[u8] = b"SERVER_ERROR protected mode: no SASL password \
        is set, so only loopback clients are accepted; enable SASL (-S), or start with \
        --protected-mode no (protected_mode = false) if this port is not reachable from \
        untrusted networks\r\n";

    /// Meta replies (`doc/protocol.txt` §Meta Commands): two-letter codes.
    pub const META_NOOP: &[u8] = b"MN\r\n";
    pub const META_MISS: &[u8] = b"EN\r\n";
}

/// The two-letter status of a meta reply that carries no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStatus {
    /// `HD`: success, no value.
    Done,
    /// `NS`: not stored.
    NotStored,
    /// `EX`: cas mismatch.
    Exists,
    /// `NF`: not found.
    NotFound,
    /// `EN`: miss (mg).
    Miss,
}

impl MetaStatus {
    pub fn code(self) -> &'static [u8] {
        match self {
            MetaStatus::Done => b"HD",
            MetaStatus::NotStored => b"NS",
            MetaStatus::Exists => b"EX",
            MetaStatus::NotFound => b"NF",
            MetaStatus::Miss => b"EN",
        }
    }
}

/// Appends the decimal form of `n`.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends the decimal form of a signed `n`.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n` (one hit of get/gets/gat/gats).
pub fn write_value(out: &mut Vec<u8>, key: &[u8], flags: u32, value: &[u8], cas: Option<u64>) {
    out.reserve(key.len() + value.len() + 48);
    write_value_header(out, key, flags, value.len(), cas);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `VALUE <key> <flags> <bytes> [<cas>]\r\n` line alone, for a caller that sends the
/// value's bytes (and the `\r\n` after them) another way.
pub fn write_value_header(
    out: &mut Vec<u8>,
    key: &[u8],
    flags: u32,
    value_len: usize,
    cas: Option<u64>,
) {
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    write_u64(out, u64::from(flags));
    out.push(b' ');
    write_u64(out, value_len as u64);
    if let Some(cas) = cas {
        out.push(b' ');
        write_u64(out, cas);
    }
    out.extend_from_slice(b"\r\n");
}

/// `<number>\r\n`, the reply of incr/decr.
pub fn write_number_line(out: &mut Vec<u8>, n: u64) {
    write_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `VERSION <version>\r\n`.
pub fn write_version(out: &mut Vec<u8>, version: &str) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `STAT <name> <value>\r\n`; `value` is already formatted.
pub fn write_stat(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// `CLIENT_ERROR <message>\r\n`.
pub fn write_client_error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"CLIENT_ERROR ");
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Builder of one meta reply line: a status (or `VA <len>`), then return flags in the order the
/// client asked for them, then `\r\n`. The caller appends the value block after [`finish`].
///
/// [`finish`]: MetaLine::finish
pub struct MetaLine<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> MetaLine<'o> {
    /// Starts `HD`, `NS`, `EX`, `NF` or `EN`.
    pub fn status(out: &'o mut Vec<u8>, status: MetaStatus) -> Self {
        out.extend_from_slice(status.code());
        MetaLine { out }
    }

    /// Starts `VA <len>`: a value of `len` bytes follows the line.
    pub fn value(out: &'o mut Vec<u8>, len: usize) -> Self {
        out.extend_from_slice(b"VA ");
        write_u64(out, len as u64);
        MetaLine { out }
    }

    /// ` <letter>` with no token (e.g. `W`, `X`, `Z`, `b`).
    pub fn flag(&mut self, letter: u8) -> &mut Self {
        self.out.push(b' ');
        self.out.push(letter);
        self
    }

    /// ` <letter><bytes>` (e.g. `k<key>`, `O<opaque>`).
    pub fn flag_bytes(&mut self, letter: u8, bytes: &[u8]) -> &mut Self {
        self.flag(letter);
        self.out.extend_from_slice(bytes);
        self
    }

    /// ` <letter><unsigned number>` (e.g. `c<cas>`, `s<size>`).
    pub fn flag_u64(&mut self, letter: u8, n: u64) -> &mut Self {
        self.flag(letter);
        write_u64(self.out, n);
        self
    }

    /// ` <letter><signed number>` (e.g. `t-1`).
    pub fn flag_i64(&mut self, letter: u8, n: i64) -> &mut Self {
        self.flag(letter);
        write_i64(self.out, n);
        self
    }

    /// Ends the line with `\r\n`.
    pub fn finish(self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

/// Appends a value block: the bytes and `\r\n`.
pub fn write_data_block(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_like_printf() {
        let mut out = Vec::new();
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        out.push(b' ');
        write_i64(&mut out, -1);
        out.push(b' ');
        write_i64(&mut out, i64::MIN);
        assert_eq!(out, b"0 18446744073709551615 -1 -9223372036854775808");
    }

    #[test]
    fn value_line_matches_memcached() {
        let mut out = Vec::new();
        write_value(&mut out, b"foo", 5, b"bar", None);
        write_value(&mut out, b"k", 0, b"", Some(42));
        assert_eq!(out, b"VALUE foo 5 3\r\nbar\r\nVALUE k 0 0 42\r\n\r\n");
    }

    #[test]
    fn meta_line_keeps_flag_order() {
        let mut out = Vec::new();
        let mut line = MetaLine::value(&mut out, 3);
        line.flag_i64(b't', -1)
            .flag_u64(b's', 3)
            .flag_bytes(b'O', b"123");
        line.finish();
        assert_eq!(out, b"VA 3 t-1 s3 O123\r\n");
    }
}
