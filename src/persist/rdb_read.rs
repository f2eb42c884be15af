//! Reading one Redis RDB value (`rdbLoadObject`): what RESTORE takes from a DUMP payload, and
//! what an RDB import will read per key. Covers the types redis-server up to 7.0 writes for
//! strings, lists, sets, hashes and sorted sets: the plain encodings (string 0, list 1, set 2,
//! zset 3 and 5, hash 4), the intset (11), the listpack hash and zset (16, 17) and the
//! quicklist of listpacks (18); strings may be integer- or LZF-encoded. The ziplist and zipmap
//! types of Redis before 7.0 are refused as [`ReadError::Unsupported`].
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
//! LZF can expand). Knows nothing of stores or sockets: it returns a value to put.

use crate::store::{End, HashObject, ListObject, Object, SetObject, ZSet};

// rdb.h
const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// quicklist.h: a node holding one plain element, or a listpack of elements.
const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;
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

/// A value read from RDB.
pub enum Value {
    String(Vec<u8>),
    Object(Object),
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
    fn len_or_encoding(&mut self) -> Result<Result<u64, u8>, ReadError> {
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
    fn binary_double(&mut self) -> Result<f64, ReadError> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A double as text with a one-byte length (`rdbLoadDoubleValue`; 253-255 are NaN, +inf
    /// and -inf).
    fn text_double(&mut self) -> Result<f64, ReadError> {
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

    fn to_score(&self) -> Result<f64, ReadError> {
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
fn intset(blob: &[u8]) -> Result<Vec<i64>, ReadError> {
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

/// Reads one value of RDB type `kind` (`rdbLoadObject`). Empty collections are refused, as
/// Redis refuses them.
pub fn read_value(kind: u8, r: &mut Reader<'_>) -> Result<Value, ReadError> {
    let object = match kind {
        TYPE_STRING => return Ok(Value::String(r.string()?)),
        TYPE_LIST => {
            let mut list = ListObject::new();
            for _ in 0..r.count()? {
                list.push(End::Tail, &r.string()?);
            }
            Object::List(list)
        }
        TYPE_SET => {
            let mut set = SetObject::new();
            for _ in 0..r.count()? {
                set.insert(&r.string()?);
            }
            Object::Set(set)
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let mut zset = ZSet::new();
            for _ in 0..r.count()? {
                let member = r.string()?;
                let score = if kind == TYPE_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                if score.is_nan() {
                    return Err(ReadError::Invalid);
                }
                zset.insert(&member, score);
            }
            Object::ZSet(zset)
        }
        TYPE_HASH => {
            let mut hash = HashObject::new();
            for _ in 0..r.count()? {
                let field = r.string()?;
                hash.set(&field, &r.string()?, false);
            }
            Object::Hash(hash)
        }
        TYPE_SET_INTSET => {
            let mut set = SetObject::new();
            for member in intset(&r.string()?)? {
                set.insert(member.to_string().as_bytes());
            }
            Object::Set(set)
        }
        TYPE_HASH_LISTPACK => {
            let blob = r.string()?;
            let elements = listpack(&blob)?;
            if elements.len() % 2 != 0 {
                return Err(ReadError::Invalid);
            }
            let mut hash = HashObject::new();
            for pair in elements.chunks(2) {
                hash.set(&pair[0].to_bytes(), &pair[1].to_bytes(), false);
            }
            Object::Hash(hash)
        }
        TYPE_ZSET_LISTPACK => {
            let blob = r.string()?;
            let elements = listpack(&blob)?;
            if elements.len() % 2 != 0 {
                return Err(ReadError::Invalid);
            }
            let mut zset = ZSet::new();
            for pair in elements.chunks(2) {
                zset.insert(&pair[0].to_bytes(), pair[1].to_score()?);
            }
            Object::ZSet(zset)
        }
        TYPE_LIST_QUICKLIST_2 => {
            let mut list = ListObject::new();
            for _ in 0..r.count()? {
                let container = match r.len_or_encoding()? {
                    Ok(container) => container,
                    Err(_) => return Err(ReadError::Invalid),
                };
                let blob = r.string()?;
                match container {
                    QUICKLIST_NODE_PLAIN => list.push(End::Tail, &blob),
                    QUICKLIST_NODE_PACKED => {
                        for element in listpack(&blob)? {
                            list.push(End::Tail, &element.to_bytes());
                        }
                    }
                    _ => return Err(ReadError::Invalid),
                }
            }
            Object::List(list)
        }
        // An empty stream is a stream (it keeps its last id and groups).
        super::rdb_stream::TYPE_STREAM_LISTPACKS
        | super::rdb_stream::TYPE_STREAM_LISTPACKS_2
        | super::rdb_stream::TYPE_STREAM_LISTPACKS_3 => {
            let stream = super::rdb_stream::read_stream(kind, r)?;
            return Ok(Value::Object(Object::Stream(Box::new(stream))));
        }
        other => return Err(ReadError::Unsupported(other)),
    };
    if object.is_empty() {
        return Err(ReadError::Empty);
    }
    Ok(Value::Object(object))
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

    #[test]
    fn a_length_past_the_end_is_refused_before_allocating() {
        // A list claiming 2^32 elements in a 6-byte value.
        let bytes = [0x80, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            read_value(TYPE_LIST, &mut Reader::new(&bytes)),
            Err(ReadError::Truncated)
        ));
        // A string claiming 2^64 - 1 bytes.
        let bytes = [0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(Reader::new(&bytes).string().is_err());
    }
}
