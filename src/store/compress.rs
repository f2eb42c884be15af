//! The stored form of values that turned cold: zstd frames, or values marked incompressible.
//!
//! New values are stored raw; the cold pass ([`super::cold`]) packs a value once its segment
//! has gone unread for a while. A packed value (record kind `COMPRESSED`) is one codec byte,
//! the original length (LEB128), then the payload:
//!
//! | codec | payload |
//! |---|---|
//! | [`CODEC_RAW`] | the value verbatim: it was tried and does not compress (client-compressed, random); never tried again |
//! | [`CODEC_ZSTD`] | one zstd frame of the value |
//!
//! A value is packed as zstd only when that saves at least 1/8 of its size. Values that are
//! already compressed are recognised without compressing them: by their magic bytes (gzip,
//! zlib, zstd, lz4, xz, bzip2 and common image/archive formats), by php-memcached's
//! "compressed" client flag, and, for values over [`PROBE_LEN`] twice, by compressing a prefix
//! first. zstd contexts are kept per thread (creating one per call cost a fifth of the server's
//! CPU on 8 KB reads).
//!
//! This module does no locking and no I/O, and never panics on stored bytes: a payload that
//! does not decompress to its recorded length is reported as an error to the caller.
//!
//! Invariant: a stored zstd value decompresses to exactly its recorded original length.

use std::cell::RefCell;

/// Codec byte: the value follows verbatim (it does not compress; never retried).
pub(crate) const CODEC_RAW: u8 = 0;
/// Codec byte: one zstd frame follows.
pub(crate) const CODEC_ZSTD: u8 = 1;
/// Values longer than twice this are probed by compressing their first this-many bytes.
const PROBE_LEN: usize = 8 << 10;

/// Compression settings (`[store] compression_*` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Values shorter than this are never packed; 0 turns compression off.
    pub threshold: usize,
    /// zstd level (1 = fastest).
    pub level: i32,
    /// A segment unread and unwritten for this long is cold: its values get packed.
    pub cold_after_secs: u32,
    /// At most this many segments are packed per maintenance tick (ten ticks a second).
    pub segments_per_tick: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            threshold: 4096,
            level: 1,
            cold_after_secs: 30,
            segments_per_tick: 4,
        }
    }
}

/// What packing a value came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packed {
    /// The zstd form (codec byte and length included), at least 1/8 smaller.
    Zstd(Vec<u8>),
    /// It does not compress: store it verbatim behind [`raw_header`] and never try again.
    Incompressible,
}

/// A stored packed value that does not decode (a bug or memory corruption, never input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a stored compressed value does not decode to its recorded length")]
pub(crate) struct CorruptValue;

thread_local! {
    static CCTX: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DCTX: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

impl Compression {
    /// Whether a value of this length is worth trying at all.
    pub(crate) fn is_candidate(&self, len: usize) -> bool {
        self.threshold != 0 && len >= self.threshold
    }

    /// Packs `value` (with client `flags`), or says it does not compress.
    pub(crate) fn pack(&self, value: &[u8], flags: u32) -> Packed {
        if !self.is_candidate(value.len()) || looks_compressed(value, flags) {
            return Packed::Incompressible;
        }
        if value.len() > 2 * PROBE_LEN {
            match self.zstd(&value[..PROBE_LEN]) {
                Some(frame) if frame.len() <= PROBE_LEN - PROBE_LEN / 8 => {}
                _ => return Packed::Incompressible,
            }
        }
        let Some(frame) = self.zstd(value) else {
            return Packed::Incompressible;
        };
        let mut out = Vec::with_capacity(1 + 10 + frame.len());
        out.push(CODEC_ZSTD);
        write_varint(&mut out, value.len());
        out.extend_from_slice(&frame);
        if out.len() > value.len() - value.len() / 8 {
            return Packed::Incompressible;
        }
        Packed::Zstd(out)
    }

    /// One zstd frame of `value` with the thread's context.
    fn zstd(&self, value: &[u8]) -> Option<Vec<u8>> {
        CCTX.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = zstd::bulk::Compressor::new(self.level).ok();
            }
            let cctx = cell.as_mut()?;
            cctx.set_compression_level(self.level).ok()?;
            let mut out = vec![0u8; zstd::zstd_safe::compress_bound(value.len())];
            let written = cctx.compress_to_buffer(value, &mut out[..]).ok()?;
            out.truncate(written);
            Some(out)
        })
    }
}

/// The header of a value stored verbatim as incompressible (codec byte + length).
pub(crate) fn raw_header(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(11);
    out.push(CODEC_RAW);
    write_varint(&mut out, len);
    out
}

/// A packed value's codec, original length, and where its payload starts.
fn header(stored: &[u8]) -> Option<(u8, usize, usize)> {
    let (&codec, rest) = stored.split_first()?;
    let (len, used) = read_varint(rest)?;
    Some((codec, len, 1 + used))
}

/// The original length of a packed value (0 if the header is unreadable).
pub(crate) fn original_len(stored: &[u8]) -> usize {
    header(stored).map_or(0, |(_, len, _)| len)
}

/// The value itself if it is stored verbatim (no copy needed), else `None`.
pub(crate) fn verbatim(stored: &[u8]) -> Option<&[u8]> {
    match header(stored)? {
        (CODEC_RAW, len, at) if stored.len() - at == len => Some(&stored[at..]),
        _ => None,
    }
}

/// Bytes saved by a zstd-packed value (`None` for a verbatim one).
pub(crate) fn saving(stored: &[u8]) -> Option<usize> {
    match header(stored)? {
        (CODEC_ZSTD, len, _) => Some(len.saturating_sub(stored.len())),
        _ => None,
    }
}

/// Unpacks a stored value into `out` (cleared first); a value that does not decode is
/// logged and read as empty (it cannot happen unless memory was corrupted).
pub(crate) fn decompress(stored: &[u8], out: &mut Vec<u8>) {
    if let Err(e) = try_decompress(stored, out) {
        log::error!("{e} ({} stored bytes)", stored.len());
        out.clear();
    }
}

/// Unpacks a stored value into `out` (cleared first).
pub(crate) fn try_decompress(stored: &[u8], out: &mut Vec<u8>) -> Result<(), CorruptValue> {
    let (codec, len, at) = header(stored).ok_or(CorruptValue)?;
    out.clear();
    if codec == CODEC_RAW {
        out.extend_from_slice(&stored[at..]);
        return if out.len() == len {
            Ok(())
        } else {
            Err(CorruptValue)
        };
    }
    if codec != CODEC_ZSTD {
        return Err(CorruptValue);
    }
    out.resize(len, 0);
    let written = DCTX.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = zstd::bulk::Decompressor::new().ok();
        }
        let dctx = cell.as_mut().ok_or(CorruptValue)?;
        dctx.decompress_to_buffer(&stored[at..], &mut out[..])
            .map_err(|_| CorruptValue)
    })?;
    if written == len {
        Ok(())
    } else {
        Err(CorruptValue)
    }
}

/// Whether a value is already compressed, judged without compressing it: its magic bytes, or
/// php-memcached's client flags (bit 4, `MEMC_VAL_COMPRESSED` shifted into its internal flag
/// nibble, set with its zlib/fastlz bits 5 and 6; php-memcached `php_memcached.c`).
pub(crate) fn looks_compressed(value: &[u8], flags: u32) -> bool {
    const PHP_MEMCACHED_COMPRESSED: u32 = 1 << 4;
    const PHP_MEMCACHED_CODECS: u32 = (1 << 5) | (1 << 6);
    if flags & PHP_MEMCACHED_COMPRESSED != 0 && flags & PHP_MEMCACHED_CODECS != 0 {
        return true;
    }
    const MAGICS: [&[u8]; 12] = [
        b"\x1f\x8b",               // gzip
        b"\x28\xb5\x2f\xfd",       // zstd
        b"\x04\x22\x4d\x18",       // lz4 frame
        b"\xfd7zXZ\x00",           // xz
        b"BZh",                    // bzip2
        b"PK\x03\x04",             // zip, jar, docx
        b"\x89PNG",                // png
        b"\xff\xd8\xff",           // jpeg
        b"GIF8",                   // gif
        b"RIFF",                   // webp, wav
        b"\xff\x06\x00\x00sNaPpY", // snappy framed
        b"7z\xbc\xaf\x27\x1c",     // 7z
    ];
    if MAGICS.iter().any(|magic| value.starts_with(magic)) {
        return true;
    }
    // zlib with the 32 KiB window and one of the four standard level markers every zlib
    // writes (RFC 1950 section 2.2; the header checksum holds for each).
    matches!(value, [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..])
}

/// Unpacks bytes that claim to be a packed value but come from outside the store (a snapshot
/// file): false, with nothing allocated beyond `max_len`, when the claimed length passes
/// `max_len` or the payload does not decode to exactly that length.
pub(crate) fn decompress_checked(stored: &[u8], max_len: usize, out: &mut Vec<u8>) -> bool {
    match header(stored) {
        Some((_, len, _)) if len <= max_len => try_decompress(stored, out).is_ok(),
        _ => false,
    }
}

fn write_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A LEB128 number and the bytes it took (`None` if it is cut short or too long).
fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(len: usize) -> Vec<u8> {
        br#"{"id": 12, "name": "ferrocache", "tags": ["a", "b"]}"#
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x1234_5678_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn compressible_values_shrink_and_come_back() {
        let c = Compression::default();
        let value = json(10_000);
        let Packed::Zstd(stored) = c.pack(&value, 0) else {
            panic!("json compresses");
        };
        assert!(stored.len() < value.len() / 4);
        assert_eq!(original_len(&stored), value.len());
        assert_eq!(saving(&stored), Some(value.len() - stored.len()));
        assert_eq!(verbatim(&stored), None);
        let mut out = Vec::new();
        try_decompress(&stored, &mut out).expect("decodes");
        assert_eq!(out, value);
        // The thread's context is reused: a second value decodes as well.
        let other = json(70_000);
        let Packed::Zstd(stored) = c.pack(&other, 0) else {
            panic!("json compresses");
        };
        try_decompress(&stored, &mut out).expect("decodes");
        assert_eq!(out, other);
    }

    #[test]
    fn small_random_or_client_compressed_values_are_incompressible() {
        let c = Compression::default();
        assert_eq!(c.pack(&[b'a'; 4095], 0), Packed::Incompressible);
        assert_eq!(c.pack(&noise(8192), 0), Packed::Incompressible);
        let off = Compression {
            threshold: 0,
            ..Compression::default()
        };
        assert_eq!(off.pack(&json(10_000), 0), Packed::Incompressible);
        // Compressible bytes behind a gzip magic, or flagged compressed by php-memcached,
        // are not tried.
        let mut gz = b"\x1f\x8b".to_vec();
        gz.extend(json(10_000));
        assert_eq!(c.pack(&gz, 0), Packed::Incompressible);
        assert_eq!(c.pack(&json(10_000), 0x30), Packed::Incompressible);
        let mut zlib = vec![0x78, 0x9c];
        zlib.extend(json(10_000));
        assert_eq!(c.pack(&zlib, 0), Packed::Incompressible);
        // A large value whose prefix is noise is given up on after the prefix.
        let mut mixed = noise(PROBE_LEN);
        mixed.extend(json(100_000));
        assert_eq!(c.pack(&mixed, 0), Packed::Incompressible);
    }

    #[test]
    fn verbatim_values_are_borrowed_and_corrupt_ones_are_errors() {
        let value = noise(5000);
        let mut stored = raw_header(value.len());
        stored.extend_from_slice(&value);
        assert_eq!(verbatim(&stored), Some(&value[..]));
        assert_eq!(saving(&stored), None);
        let mut out = Vec::new();
        try_decompress(&stored, &mut out).expect("decodes");
        assert_eq!(out, value);
        let Packed::Zstd(mut packed) = Compression::default().pack(&json(9000), 0) else {
            panic!("json compresses");
        };
        packed.truncate(packed.len() - 3);
        assert_eq!(try_decompress(&packed, &mut out), Err(CorruptValue));
        assert_eq!(try_decompress(&[CODEC_ZSTD], &mut out), Err(CorruptValue));
        assert_eq!(try_decompress(&[7, 1, 0], &mut out), Err(CorruptValue));
    }
}
