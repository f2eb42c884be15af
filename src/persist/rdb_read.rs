//! Reading one Redis RDB value (`rdbLoadObject`): what RESTORE takes from a DUMP payload, and
//! what an RDB import will read per key. Covers the types redis-server up to 7.0 writes for
//! strings, lists, sets, hashes and sorted sets: the plain encodings (string 0, list 1, set 2,
//! zset 3 and 5, hash 4), the intset (11), the listpack hash and zset (16, 17) and the
//! quicklist of listpacks (18); strings may be integer- or LZF-encoded. The ziplist and zipmap
//! types of Redis before 7.0 are refused as [`ReadError::Unsupported`].
//!
//! The building blocks (lengths, strings, listpacks, intsets; their grammar) are in
//! `rdb_encoding.rs`.
//!
//! Knows nothing of stores or sockets: it returns a value to put.

use super::rdb_encoding::{intset, listpack};
pub use super::rdb_encoding::{ReadError, Reader};
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

/// A value read from RDB.
pub enum Value {
    String(Vec<u8>),
    Object(Object),
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
