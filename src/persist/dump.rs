//! The DUMP / RESTORE payload (redis-server 7.0 `cluster.c` `createDumpPayload` and
//! `verifyDumpPayload`): one RDB value, then the RDB version it was written with (2 bytes LE)
//! and Redis's CRC-64 of everything before the checksum (8 bytes LE).
//!
//! ```text
//! payload = type u8 | value (RDB encoding) | rdb_version u16 LE | crc64 u64 LE
//! ```
//! Values are written in the plain encodings of RDB 9 (`rdb.rs`), which Redis 6.2 and 7.x
//! restore; payloads up to RDB 10 (Redis 7.0's listpacks) are read (`rdb_read.rs`). Knows no
//! store and no protocol: bytes in, a value or an error out.

use super::rdb::{self, RDB_VERSION};
use super::rdb_read::{self, ReadError, Reader, Value};
use crate::store::Object;

/// The newest RDB version a payload may carry (Redis 7.0 writes 10).
pub const MAX_READ_VERSION: u16 = 10;

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    /// Too short, from a newer RDB version, or the checksum does not match.
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    /// The value inside does not decode.
    #[error("Bad data format")]
    BadData(#[from] ReadError),
}

/// Appends the version and checksum to a type byte and value.
fn seal(mut payload: Vec<u8>) -> Vec<u8> {
    payload.extend_from_slice(&(RDB_VERSION as u16).to_le_bytes());
    let crc = rdb::crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// The payload of a string value.
pub fn dump_string(bytes: &[u8]) -> Vec<u8> {
    let mut payload = vec![rdb::TYPE_STRING];
    rdb::put_string(&mut payload, bytes);
    seal(payload)
}

/// The payload of a typed value, as of `now_ms` (hash fields expired by then are left out;
/// the others lose their TTL, which RDB cannot carry).
pub fn dump_object(object: &Object, now_ms: u64) -> Vec<u8> {
    let mut payload = vec![rdb::object_type(object)];
    rdb::put_object(&mut payload, object, now_ms);
    seal(payload)
}

/// Checks a payload's version and checksum, then reads its value.
pub fn restore(payload: &[u8]) -> Result<Value, DumpError> {
    if payload.len() < 10 {
        return Err(DumpError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    if version > MAX_READ_VERSION || rdb::crc64(&payload[..payload.len() - 8]) != crc {
        return Err(DumpError::VersionOrChecksum);
    }
    let (&kind, value) = body.split_first().ok_or(ReadError::Truncated)?;
    Ok(rdb_read::read_value(kind, &mut Reader::new(value))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A value as text: sets and hashes sorted, so the table can be written down.
    fn describe(value: &Value) -> String {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match value {
            Value::String(bytes) => text(bytes),
            Value::Object(Object::List(list)) => {
                list.iter().map(text).collect::<Vec<_>>().join(",")
            }
            Value::Object(Object::Set(set)) => {
                let mut members: Vec<String> = set.iter().map(|m| text(&m)).collect();
                members.sort();
                members.join(",")
            }
            Value::Object(Object::Hash(hash)) => {
                let mut fields: Vec<String> = hash
                    .iter()
                    .map(|f| format!("{}={}", text(&f.name), text(&f.value)))
                    .collect();
                fields.sort();
                fields.join(",")
            }
            Value::Object(Object::ZSet(zset)) => zset
                .iter()
                .map(|(m, s)| format!("{}:{s}", text(m)))
                .collect::<Vec<_>>()
                .join(","),
            Value::Object(Object::Stream(stream)) => format!("stream of {}", stream.len()),
        }
    }

    /// `DUMP` replies of redis-server 7.0.15 (RDB 10): plain and integer strings, an LZF
    /// string, a quicklist (its listpack LZF-compressed), an intset (LZF-compressed), a
    /// hashtable set, listpack and hashtable hashes, listpack and skiplist sorted sets.
    #[test]
    fn restores_what_redis_7_dumps() {
        let long = "bb".repeat(40);
        let cases: &[(&str, &str)] = &[
            ("000568656c6c6f0a006372df766534200a", "hello"),
            ("00c1c7cf0a0067eda236b4db26d0", "-12345"),
            ("00c31240640a6162636465666768696a61e04e0901696a0a00d485292a1f2eff66", &"abcdefghij".repeat(10)),
            ("120102c319406311630000000400816102c3e802dff902e05062e046000152ff0a007bc7a342543b1569", &format!("a,1000,-7,{long}")),
            ("0bc32028040800000004200301fbff80000001200b4000017011a00902f2052a200900000a0092628c140d00ba67", "-5,1,5000000000,70000"),
            ("0202017901780a000cdf6b3db330bcf0", "x,y"),
            ("1012120000000400816602817602816e020c01ff0a0001369481d35b8974", "f=v,n=12"),
            ("111a1a0000000600816202dffe0281610283312e35048163020301ff0a00e5c16814373f6b4e", "b:-2,a:1.5,c:3"),
            ("0401016601760a00adf24356b1860efc", "f=v"),
            ("0502016200000000000000400161000000000000f03f0a007b299e12ce9408d4", "a:1,b:2"),
        ];
        for (payload, expected) in cases {
            let value = restore(&hex(payload)).unwrap_or_else(|e| panic!("{payload}: {e}"));
            assert_eq!(describe(&value), *expected, "{payload}");
        }
    }

    #[test]
    fn what_is_dumped_restores_to_the_same_value() {
        let mut zset = crate::store::ZSet::new();
        zset.insert(b"m", 2.5);
        zset.insert(b"n", -1.0);
        let payload = dump_object(&Object::ZSet(zset), 0);
        assert_eq!(describe(&restore(&payload).unwrap()), "n:-1,m:2.5");
    }

    #[test]
    fn a_changed_byte_or_a_newer_version_is_refused() {
        let mut payload = dump_string(b"hello");
        assert!(matches!(restore(&payload), Ok(Value::String(s)) if s == b"hello"));
        payload[2] ^= 1;
        assert_eq!(restore(&payload).err(), Some(DumpError::VersionOrChecksum));
        let mut newer = vec![rdb::TYPE_STRING, 1, b'x', 11, 0];
        let crc = rdb::crc64(&newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&newer).err(), Some(DumpError::VersionOrChecksum));
        assert_eq!(restore(b"short").err(), Some(DumpError::VersionOrChecksum));
        // Sealed correctly, but a list claiming 5 elements holds none.
        let bad = seal(vec![rdb::TYPE_LIST, 5]);
        assert_eq!(
            restore(&bad).err(),
            Some(DumpError::BadData(ReadError::Truncated))
        );
    }
}
