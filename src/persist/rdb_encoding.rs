//! RDB's building blocks, both ways: lengths (`rdbSaveLen`/`rdbLoadLen`), strings (plain,
//! integer- or LZF-encoded), doubles, listpacks and intsets. It knows no value types (lists,
//! hashes, streams: `rdb_read.rs`, `rdb.rs` and `rdb_stream.rs` build those from these), no
//! store and no sockets.
//!
//! ```text
//! len      = 00xxxxxx | 01xxxxxx xxxxxxxx (BE) | 0x80 u32 BE | 0x81 u64 BE
//!          | 11xxxxxx: an encoded string, xxxxxx = 0 int8, 1 int16 LE, 2 int32 LE, 3 LZF
//! lzf      = 11000011 len(compressed) len(plain) bytes
//! listpack = total u32 LE | count u16 LE | entry* | 0xFF
//! entry    = encoding [data] backlen   (listpack.c: 7-bit uint, 6/12/32-bit string lengths,
//!                                        13-bit, 16, 24, 32 and 64-bit integers)
//! intset   = encoding u32 LE (2, 4, 8) | count u32 LE | count integers LE
//! ```
//!
//! Never trusts a length: each one is checked against the bytes left before anything is
//! allocated for it (an LZF string may claim at most 100 times its compressed size, more than
//! LZF can expand).

/// How far LZF can expand its input at most (a 3-byte back reference yields 264 bytes).
const LZF_MAX_RATIO: usize = 100;

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the value ends early")]
    Truncated,
    #[error("a length or encoding is invalid")]
    Invalid,
    #[error("RDB type {0} is not supported")]
    Unsupported(u8),
    #[error("an empty collection")]
    Empty,
}
/// A cursor over the bytes of one value.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// A type or opcode byte.
    pub fn opcode(&mut self) -> Result<u8, ReadError> {
        self.byte()
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if n > self.left() {
            return Err(ReadError::Truncated);
        }
        let taken = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    /// A length, or `Err(encoding)` for an encoded string's marker.
    pub(super) fn len_or_encoding(&mut self) -> Result<Result<u64, u8>, ReadError> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Ok(u64::from(first & 0x3f)),
            1 => Ok((u64::from(first & 0x3f) << 8) | u64::from(self.byte()?)),
            2 if first == 0x80 => Ok(u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            ))),
            2 if first == 0x81 => Ok(u64::from_be_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            2 => return Err(ReadError::Invalid),
            _ => Err(first & 0x3f),
        })
    }

    /// A plain length field (`rdbLoadLen`): any 64-bit number, never an encoded string.
    pub fn length(&mut self) -> Result<u64, ReadError> {
        self.len_or_encoding()?.map_err(|_| ReadError::Invalid)
    }

    /// A count of things that each take at least one byte: never more than the bytes left.
    pub(super) fn count(&mut self) -> Result<usize, ReadError> {
        match self.len_or_encoding()? {
            Ok(n) if n <= self.left() as u64 => Ok(n as usize),
            Ok(_) => Err(ReadError::Truncated),
            Err(_) => Err(ReadError::Invalid),
        }
    }

    /// A string (`rdbGenericLoadStringObject`): plain, an integer, or LZF-compressed.
    pub fn string(&mut self) -> Result<Vec<u8>, ReadError> {
        match self.len_or_encoding()? {
            Ok(len) => {
                let len = usize::try_from(len).map_err(|_| ReadError::Truncated)?;
                Ok(self.take(len)?.to_vec())
            }
            Err(0) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Err(1) => Ok(
                i16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"))
                    .to_string()
                    .into_bytes(),
            ),
            Err(2) => Ok(
                i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))
                    .to_string()
                    .into_bytes(),
            ),
            Err(3) => {
                let compressed = self.count()?;
                let plain = match self.len_or_encoding()? {
                    Ok(n) => usize::try_from(n).map_err(|_| ReadError::Invalid)?,
                    Err(_) => return Err(ReadError::Invalid),
                };
                if plain > compressed.saturating_mul(LZF_MAX_RATIO) {
                    return Err(ReadError::Invalid);
                }
                lzf_decompress(self.take(compressed)?, plain)
            }
            Err(_) => Err(ReadError::Invalid),
        }
    }

    /// A binary double (`rdbLoadBinaryDoubleValue`): 8 bytes LE.
    pub(super) fn binary_double(&mut self) -> Result<f64, ReadError> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A double as text with a one-byte length (`rdbLoadDoubleValue`; 253-255 are NaN, +inf
    /// and -inf).
    pub(super) fn text_double(&mut self) -> Result<f64, ReadError> {
        match self.byte()? {
            253 => Err(ReadError::Invalid), // a NaN score cannot be stored
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            len => parse_double(self.take(usize::from(len))?),
        }
    }
}

fn parse_double(text: &[u8]) -> Result<f64, ReadError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|v| !v.is_nan())
        .ok_or(ReadError::Invalid)
}

/// LZF decompression (`lzf_d.c`) of `input` into exactly `plain` bytes.
fn lzf_decompress(input: &[u8], plain: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::with_capacity(plain);
    let mut i = 0;
    while i < input.len() {
        let control = usize::from(input[i]);
        i += 1;
        if control < 32 {
            // A literal run of control + 1 bytes.
            let run = control + 1;
            let literal = input.get(i..i + run).ok_or(ReadError::Invalid)?;
            if out.len() + run > plain {
                return Err(ReadError::Invalid);
            }
            out.extend_from_slice(literal);
            i += run;
        } else {
            // A back reference: length (3 bits, or 7 + the next byte) + 2, offset 13 bits + 1.
            let mut len = control >> 5;
            if len == 7 {
                len += usize::from(*input.get(i).ok_or(ReadError::Invalid)?);
                i += 1;
            }
            len += 2;
            let low = usize::from(*input.get(i).ok_or(ReadError::Invalid)?);
            i += 1;
            let back = ((control & 0x1f) << 8) + low + 1;
            if back > out.len() || out.len() + len > plain {
                return Err(ReadError::Invalid);
            }
            let from = out.len() - back;
            for k in 0..len {
                out.push(out[from + k]);
            }
        }
    }
    if out.len() == plain {
        Ok(out)
    } else {
        Err(ReadError::Invalid)
    }
}

/// One listpack element: bytes or an integer.
pub(super) enum Element<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl Element<'_> {
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        match self {
            Element::Bytes(bytes) => bytes.to_vec(),
            Element::Int(n) => n.to_string().into_bytes(),
        }
    }

    pub(super) fn to_score(&self) -> Result<f64, ReadError> {
        match self {
            Element::Bytes(bytes) => parse_double(bytes),
            Element::Int(n) => Ok(*n as f64),
        }
    }
}

/// Sign-extends the low `bits` bits of `value`.
fn signed(value: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((value << shift) as i64) >> shift
}

/// The elements of a listpack blob, checked against its own header and terminator.
pub(super) fn listpack(blob: &[u8]) -> Result<Vec<Element<'_>>, ReadError> {
    if blob.len() < 7 {
        return Err(ReadError::Invalid);
    }
    let total = u32::from_le_bytes(blob[0..4].try_into().expect("4 bytes")) as usize;
    if total != blob.len() || blob[total - 1] != 0xff {
        return Err(ReadError::Invalid);
    }
    let body = &blob[6..total - 1];
    let mut elements = Vec::new();
    let mut i = 0;
    let int = |bytes: Option<&[u8]>, bits: u32| -> Result<i64, ReadError> {
        let bytes = bytes.ok_or(ReadError::Invalid)?;
        let mut value = 0u64;
        for (k, &b) in bytes.iter().enumerate() {
            value |= u64::from(b) << (8 * k);
        }
        Ok(signed(value, bits))
    };
    while i < body.len() {
        let first = body[i];
        let (element, size) = if first & 0x80 == 0 {
            (Element::Int(i64::from(first & 0x7f)), 1)
        } else if first & 0xc0 == 0x80 {
            let len = usize::from(first & 0x3f);
            let bytes = body.get(i + 1..i + 1 + len).ok_or(ReadError::Invalid)?;
            (Element::Bytes(bytes), 1 + len)
        } else if first & 0xe0 == 0xc0 {
            let next = *body.get(i + 1).ok_or(ReadError::Invalid)?;
            let value = (u64::from(first & 0x1f) << 8) | u64::from(next);
            (Element::Int(signed(value, 13)), 2)
        } else if first & 0xf0 == 0xe0 {
            let next = *body.get(i + 1).ok_or(ReadError::Invalid)?;
            let len = (usize::from(first & 0x0f) << 8) | usize::from(next);
            let bytes = body.get(i + 2..i + 2 + len).ok_or(ReadError::Invalid)?;
            (Element::Bytes(bytes), 2 + len)
        } else {
            match first {
                0xf0 => {
                    let len = body.get(i + 1..i + 5).ok_or(ReadError::Invalid)?;
                    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
                    let end = (i + 5).checked_add(len).ok_or(ReadError::Invalid)?;
                    let bytes = body.get(i + 5..end).ok_or(ReadError::Invalid)?;
                    (Element::Bytes(bytes), 5 + len)
                }
                0xf1 => (Element::Int(int(body.get(i + 1..i + 3), 16)?), 3),
                0xf2 => (Element::Int(int(body.get(i + 1..i + 4), 24)?), 4),
                0xf3 => (Element::Int(int(body.get(i + 1..i + 5), 32)?), 5),
                0xf4 => (Element::Int(int(body.get(i + 1..i + 9), 64)?), 9),
                _ => return Err(ReadError::Invalid),
            }
        };
        // The back length: how many bytes `size` takes in 7-bit groups.
        let backlen = match size {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            2_097_152..=268_435_455 => 4,
            _ => 5,
        };
        i += size + backlen;
        if i > body.len() {
            return Err(ReadError::Invalid);
        }
        elements.push(element);
    }
    Ok(elements)
}

/// The members of an intset blob.
pub(super) fn intset(blob: &[u8]) -> Result<Vec<i64>, ReadError> {
    if blob.len() < 8 {
        return Err(ReadError::Invalid);
    }
    let width = u32::from_le_bytes(blob[0..4].try_into().expect("4 bytes")) as usize;
    let count = u32::from_le_bytes(blob[4..8].try_into().expect("4 bytes")) as usize;
    if !matches!(width, 2 | 4 | 8) || Some(blob.len() - 8) != count.checked_mul(width) {
        return Err(ReadError::Invalid);
    }
    Ok(blob[8..]
        .chunks(width)
        .map(|chunk| {
            let mut value = 0u64;
            for (k, &b) in chunk.iter().enumerate() {
                value |= u64::from(b) << (8 * k);
            }
            signed(value, 8 * width as u32)
        })
        .collect())
}

/// Appends Redis's length encoding of `len` (`rdbSaveLen`): 6, 14, 32 or 64 bits, big-endian.
pub fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Appends a plain, length-prefixed string.
pub fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lzf_back_references_and_literals() {
        // "abcabcabc": literal "abc" then a back reference of 6 at distance 3.
        let input = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(lzf_decompress(&input, 9).unwrap(), b"abcabcabc");
        assert_eq!(lzf_decompress(&input, 8), Err(ReadError::Invalid));
        assert_eq!(lzf_decompress(&[(1 << 5), 5], 3), Err(ReadError::Invalid));
    }
}
