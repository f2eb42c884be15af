//! zstd compression of large values, invisible to every protocol.
//!
//! A value at or above the threshold is compressed when that saves at least 1/8 of its size;
//! the stored bytes are then the original length (LEB128) followed by one zstd frame. Reads
//! decompress into a buffer the reader owns for the duration of its closure.
//!
//! Invariant: a stored compressed value always decompresses to exactly the original length.

/// Compression settings (`[store] compression_*` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Values shorter than this are stored as they are; 0 turns compression off.
    pub threshold: usize,
    /// zstd level (1 = fastest).
    pub level: i32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            threshold: 4096,
            level: 1,
        }
    }
}

impl Compression {
    /// The stored form of `value` if compressing it pays, else `None`.
    pub(crate) fn compress(&self, value: &[u8]) -> Option<Vec<u8>> {
        if self.threshold == 0 || value.len() < self.threshold {
            return None;
        }
        let limit = value.len() - value.len() / 8;
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(value.len()) + 5);
        write_varint(&mut out, value.len());
        let header = out.len();
        out.resize(header + zstd::zstd_safe::compress_bound(value.len()), 0);
        let written = zstd::bulk::compress_to_buffer(value, &mut out[header..], self.level).ok()?;
        if header + written > limit {
            return None;
        }
        out.truncate(header + written);
        out.shrink_to_fit();
        Some(out)
    }
}

/// The original length of a stored compressed value.
pub(crate) fn original_len(stored: &[u8]) -> usize {
    read_varint(stored).0
}

/// Decompresses a stored value into `out` (cleared first).
pub(crate) fn decompress(stored: &[u8], out: &mut Vec<u8>) {
    let (len, header) = read_varint(stored);
    out.clear();
    out.resize(len, 0);
    let written = zstd::bulk::decompress_to_buffer(&stored[header..], &mut out[..])
        .expect("a value compressed by the store decompresses");
    debug_assert_eq!(written, len);
}

/// Decompresses bytes that claim to be a stored compressed value but come from outside the
/// store (a snapshot file): false, with nothing allocated beyond `max_len`, when the claimed
/// length passes `max_len` or the frame does not decompress to exactly that length.
pub(crate) fn decompress_checked(stored: &[u8], max_len: usize, out: &mut Vec<u8>) -> bool {
    let (len, header) = read_varint(stored);
    if len > max_len || header > stored.len() {
        return false;
    }
    out.clear();
    out.resize(len, 0);
    matches!(
        zstd::bulk::decompress_to_buffer(&stored[header..], &mut out[..]),
        Ok(written) if written == len
    )
}

fn write_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &[u8]) -> (usize, usize) {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    (value, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_values_shrink_and_come_back() {
        let c = Compression::default();
        let value: Vec<u8> = br#"{"id": 12, "name": "ferrocache", "tags": ["a", "b"]}"#
            .iter()
            .copied()
            .cycle()
            .take(10_000)
            .collect();
        let stored = c.compress(&value).expect("compresses");
        assert!(stored.len() < value.len() / 4);
        assert_eq!(original_len(&stored), value.len());
        let mut out = Vec::new();
        decompress(&stored, &mut out);
        assert_eq!(out, value);
    }

    #[test]
    fn small_or_random_values_stay_as_they_are() {
        let c = Compression::default();
        assert!(c.compress(&[b'a'; 4095]).is_none());
        let mut x = 0x1234_5678_u64;
        let noise: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(c.compress(&noise).is_none());
        let off = Compression {
            threshold: 0,
            level: 1,
        };
        assert!(off.compress(&[b'a'; 10_000]).is_none());
    }
}
