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
//!
//! FUNCTION DUMP's payload (`functionDumpCommand`, `rdbSaveFunctions`) has the same footer
//! around one `RDB_OPCODE_FUNCTION2` and the library's code per library:
//! ```text
//! payload = (245 u8 | code (RDB string))* | rdb_version u16 LE | crc64 u64 LE
//! ```
//! and FUNCTION RESTORE also reads 7.0 rc1/rc2's opcode 246 (name, engine, optional
//! description, body), as `rdbFunctionLoad` does.

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

/// `RDB_OPCODE_FUNCTION2`: a library as its code.
const OPCODE_FUNCTION2: u8 = 245;
/// `RDB_OPCODE_FUNCTION`: a library as name, engine, description and body (7.0 rc1/rc2).
const OPCODE_FUNCTION_PRE_GA: u8 = 246;

/// Why a FUNCTION RESTORE payload was refused (Redis's words, after `ERR `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionPayloadError {
    #[error("DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    #[error("given type is not a function")]
    NotAFunction,
    #[error("Failed loading library payload")]
    BadLibrary,
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

/// FUNCTION DUMP's payload of libraries given by their code.
pub fn dump_functions<'c>(codes: impl IntoIterator<Item = &'c [u8]>) -> Vec<u8> {
    let mut payload = Vec::new();
    for code in codes {
        payload.push(OPCODE_FUNCTION2);
        rdb::put_string(&mut payload, code);
    }
    seal(payload)
}

/// The libraries' code in a FUNCTION RESTORE payload, in order.
pub fn restore_functions(payload: &[u8]) -> Result<Vec<Vec<u8>>, FunctionPayloadError> {
    let body = verify(payload).ok_or(FunctionPayloadError::VersionOrChecksum)?;
    let mut reader = Reader::new(body);
    let mut codes = Vec::new();
    while !reader.is_empty() {
        let opcode = reader
            .opcode()
            .map_err(|_| FunctionPayloadError::NotAFunction)?;
        let code = match opcode {
            OPCODE_FUNCTION2 => reader.string(),
            OPCODE_FUNCTION_PRE_GA => pre_ga_library(&mut reader),
            _ => return Err(FunctionPayloadError::NotAFunction),
        };
        codes.push(code.map_err(|_| FunctionPayloadError::BadLibrary)?);
    }
    Ok(codes)
}

/// A 7.0 rc library turned into the code of the final format, `#!<engine> name=<name>\n` and
/// its body (the description is dropped, as `rdbFunctionLoad` drops it).
fn pre_ga_library(reader: &mut Reader<'_>) -> Result<Vec<u8>, ReadError> {
    let name = reader.string()?;
    let engine = reader.string()?;
    if reader.length()? != 0 {
        reader.string()?;
    }
    let body = reader.string()?;
    let mut code = b"#!".to_vec();
    code.extend_from_slice(&engine);
    code.extend_from_slice(b" name=");
    code.extend_from_slice(&name);
    code.push(b'\n');
    code.extend_from_slice(&body);
    Ok(code)
}

/// The bytes before the footer, if the version is one we read and the checksum matches
/// (`verifyDumpPayload`).
fn verify(payload: &[u8]) -> Option<&[u8]> {
    if payload.len() < 10 {
        return None;
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    if version > MAX_READ_VERSION || rdb::crc64(&payload[..payload.len() - 8]) != crc {
        return None;
    }
    Some(body)
}

/// Checks a payload's version and checksum, then reads its value.
pub fn restore(payload: &[u8]) -> Result<Value, DumpError> {
    let body = verify(payload).ok_or(DumpError::VersionOrChecksum)?;
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

    #[test]
    fn function_payloads_round_trip_and_refuse_what_redis_refuses() {
        let codes: Vec<&[u8]> = vec![b"#!lua name=a\nx", b"#!lua name=b\ny"];
        let payload = dump_functions(codes.iter().copied());
        assert_eq!(payload[0], OPCODE_FUNCTION2);
        assert_eq!(restore_functions(&payload).unwrap(), codes);
        assert_eq!(
            restore_functions(&dump_functions([])).unwrap(),
            Vec::<Vec<u8>>::new()
        );
        // 7.0 rc1/rc2: name, engine, a description, then the body.
        let mut pre_ga = vec![OPCODE_FUNCTION_PRE_GA];
        for part in [&b"lib"[..], b"LUA"] {
            rdb::put_string(&mut pre_ga, part);
        }
        pre_ga.push(1);
        rdb::put_string(&mut pre_ga, b"about");
        rdb::put_string(&mut pre_ga, b"body");
        assert_eq!(
            restore_functions(&seal(pre_ga)).unwrap(),
            vec![b"#!LUA name=lib\nbody".to_vec()]
        );
        assert_eq!(
            restore_functions(&dump_string(b"x")),
            Err(FunctionPayloadError::NotAFunction)
        );
        assert_eq!(
            restore_functions(&seal(vec![OPCODE_FUNCTION2, 9, b'x'])),
            Err(FunctionPayloadError::BadLibrary)
        );
        let mut changed = payload.clone();
        changed[3] ^= 1;
        assert_eq!(
            restore_functions(&changed),
            Err(FunctionPayloadError::VersionOrChecksum)
        );
        assert_eq!(
            restore_functions(b"bad_payload"),
            Err(FunctionPayloadError::VersionOrChecksum)
        );
    }
}
