//! Export of a `.fcs` snapshot as a Redis RDB file (version 9), the way to move a dataset to
//! Redis: strings, hashes, sorted sets, lists and sets, with their millisecond expiries, in
//! the plain encodings every Redis from 5.0 to 7.x loads.
//!
//! What has no place in RDB is dropped: memcached flags and CAS values, and the expiries of
//! single hash fields (RDB 9 has none; the fields themselves are kept, except those already
//! expired). Items expired at export time and empty collections are skipped, as Redis would.
//!
//! ```text
//! file   = "REDIS0009" | aux* | SELECTDB 0 | RESIZEDB keys expires | entry* | EOF | crc64 (LE)
//! aux    = 0xFA string string          (redis-ver, redis-bits, ctime, used-mem)
//! entry  = [0xFC expiry_ms u64 LE] type u8 string value
//!   type 0 string: string
//!   type 1 list:   len, then len strings (head first)
//!   type 2 set:    len, then len strings
//!   type 4 hash:   len, then len pairs of strings (field, value)
//!   type 5 zset:   len, then len pairs of string and score (f64, 8 bytes LE)
//! string = len | bytes                 (never integer- or LZF-encoded)
//! len    = 00xxxxxx | 01xxxxxx xxxxxxxx (BE) | 0x80 u32 BE | 0x81 u64 BE
//! ```
//! Facts from Redis's `rdb.h` (opcodes, types, length encoding) and `rdb.c`
//! (`rdbSaveLen`, `rdbSaveMillisecondTime`, `rdbSaveBinaryDoubleValue`, `rdbSaveInfoAuxFields`,
//! and `rdbLoadObject`, which in 7.0 still loads the plain list type 1 into a quicklist); the
//! trailing checksum is Redis's CRC-64 (Jones polynomial, reflected) over every byte before
//! it, little-endian.
//!
//! This module only encodes: the caller hands it the file's bytes and a writer. It never
//! touches a store or a socket; every length it reads comes from `format.rs`, which checks
//! them against the bytes left.

use std::io::Write;

use super::format::{self, Block, FormatError, Record, RecordValue};
pub use super::rdb_encoding::{put_len, put_string};
use crate::store::{unpack_stored, Object};

/// RDB format version written.
pub const RDB_VERSION: u32 = 9;
/// `redis-ver` written: the last Redis whose own files are version 9 (6.2).
pub const REDIS_VER: &str = "6.2.0";
/// A compressed string may claim at most this (Redis's default `proto-max-bulk-len`).
pub const MAX_STRING_LEN: usize = 512 << 20;

// rdb.h
pub const OPCODE_AUX: u8 = 250;
pub const OPCODE_RESIZEDB: u8 = 251;
pub const OPCODE_EXPIRETIME_MS: u8 = 252;
pub const OPCODE_SELECTDB: u8 = 254;
pub const OPCODE_EOF: u8 = 255;
pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;

/// Redis's CRC-64 (`crc64.c`: Jones polynomial 0xad93d23594c935a9, reflected in and out,
/// init 0, no final xor), from the `crc` crate's catalogue.
const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// Redis's CRC-64 of `bytes`.
pub fn crc64(bytes: &[u8]) -> u64 {
    CRC64.checksum(bytes)
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Format(#[from] FormatError),
    #[error("the compressed value of key {key:?} does not decompress")]
    Corrupt { key: String },
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Keys written.
    pub keys: u64,
    /// Of them, keys with an expiry.
    pub with_expiry: u64,
    /// Records skipped: expired at `now_ms`, or empty collections.
    pub skipped: u64,
    /// Hash fields whose expiry was dropped (the field was kept).
    pub field_ttls_dropped: u64,
    /// Bytes written, checksum included.
    pub bytes: u64,
}

fn put_aux(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(OPCODE_AUX);
    put_string(out, name.as_bytes());
    put_string(out, value.as_bytes());
}

/// Writes the RDB form of the `.fcs` snapshot `fcs` to `out`, as of `now_ms` (items expired
/// by then are left out). The whole snapshot is checked (blocks, checksums, record count)
/// before a byte is written.
pub fn export(fcs: &[u8], now_ms: u64, out: &mut impl Write) -> Result<ExportReport, ExportError> {
    format::read_header(fcs)?;
    let blocks = format::blocks(fcs)?;
    // First pass: check everything and count what RESIZEDB announces.
    let (mut records, mut expected, mut keys, mut expires) = (0u64, 0u64, 0u64, 0u64);
    for &(offset, payload) in &blocks {
        match format::decode_block(offset, payload)? {
            Block::Records(found) => {
                for record in &found {
                    records += 1;
                    if kept(record, now_ms) {
                        keys += 1;
                        expires += u64::from(record.expiry_ms != 0);
                    }
                }
            }
            Block::End { records } => expected = records,
        }
    }
    if records != expected {
        return Err(FormatError::CountMismatch {
            expected,
            found: records,
        }
        .into());
    }

    let mut report = ExportReport {
        skipped: records - keys,
        ..ExportReport::default()
    };
    let mut digest = CRC64.digest();
    let mut buf = Vec::with_capacity(64 << 10);
    let mut flush = |buf: &mut Vec<u8>, report: &mut ExportReport| -> std::io::Result<()> {
        digest.update(buf);
        out.write_all(buf)?;
        report.bytes += buf.len() as u64;
        buf.clear();
        Ok(())
    };
    buf.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    put_aux(&mut buf, "redis-ver", REDIS_VER);
    put_aux(&mut buf, "redis-bits", &(usize::BITS).to_string());
    put_aux(&mut buf, "ctime", &(now_ms / 1000).to_string());
    // Redis records its used memory; ours is not Redis's, so the nearest figure is the
    // size of the data being moved.
    put_aux(&mut buf, "used-mem", &fcs.len().to_string());
    buf.push(OPCODE_SELECTDB);
    put_len(&mut buf, 0);
    buf.push(OPCODE_RESIZEDB);
    put_len(&mut buf, keys);
    put_len(&mut buf, expires);

    for &(offset, payload) in &blocks {
        let Block::Records(found) = format::decode_block(offset, payload)? else {
            continue;
        };
        for record in found.iter().filter(|r| kept(r, now_ms)) {
            put_record(record, now_ms, &mut buf, &mut report)?;
            if buf.len() >= 64 << 10 {
                flush(&mut buf, &mut report)?;
            }
        }
    }
    buf.push(OPCODE_EOF);
    flush(&mut buf, &mut report)?;
    let crc = digest.finalize();
    out.write_all(&crc.to_le_bytes())?;
    report.bytes += 8;
    Ok(report)
}

/// Whether a record becomes a key: not expired, not an empty collection.
fn kept(record: &Record<'_>, now_ms: u64) -> bool {
    if record.expiry_ms != 0 && record.expiry_ms <= now_ms {
        return false;
    }
    match &record.value {
        RecordValue::String { .. } => true,
        // A stream stays even when empty (its last id and groups are state).
        RecordValue::Object(Object::Stream(_)) => true,
        RecordValue::Object(Object::Hash(hash)) => hash
            .iter()
            .any(|f| f.expires_at_ms == 0 || f.expires_at_ms > now_ms),
        RecordValue::Object(object) => !object.is_empty(),
    }
}

fn put_record(
    record: &Record<'_>,
    now_ms: u64,
    out: &mut Vec<u8>,
    report: &mut ExportReport,
) -> Result<(), ExportError> {
    report.keys += 1;
    if record.expiry_ms != 0 {
        report.with_expiry += 1;
        out.push(OPCODE_EXPIRETIME_MS);
        out.extend_from_slice(&record.expiry_ms.to_le_bytes());
    }
    match &record.value {
        RecordValue::String { bytes, compressed } => {
            out.push(TYPE_STRING);
            put_string(out, record.key);
            if *compressed {
                let plain =
                    unpack_stored(bytes, MAX_STRING_LEN).ok_or_else(|| ExportError::Corrupt {
                        key: String::from_utf8_lossy(record.key).into_owned(),
                    })?;
                put_string(out, &plain);
            } else {
                put_string(out, bytes);
            }
        }
        RecordValue::Object(object) => {
            out.push(object_type(object));
            put_string(out, record.key);
            report.field_ttls_dropped += put_object(out, object, now_ms);
        }
    }
    Ok(())
}

/// The RDB type byte `object` is written with by [`put_object`].
pub fn object_type(object: &Object) -> u8 {
    match object {
        Object::Hash(_) => TYPE_HASH,
        Object::ZSet(_) => TYPE_ZSET_2,
        Object::List(_) => TYPE_LIST,
        Object::Set(_) => TYPE_SET,
        Object::Stream(_) => super::rdb_stream::TYPE_STREAM_LISTPACKS_2,
    }
}

/// Appends the RDB value of `object` in its plain encoding (`rdbSaveObject`), as of `now_ms`:
/// hash fields expired by then are left out and the others lose their TTL. Returns how many
/// field TTLs were dropped.
pub fn put_object(out: &mut Vec<u8>, object: &Object, now_ms: u64) -> u64 {
    let mut field_ttls_dropped = 0;
    match object {
        Object::Hash(hash) => {
            let live = |f: &&crate::store::Field| f.expires_at_ms == 0 || f.expires_at_ms > now_ms;
            put_len(out, hash.iter().filter(live).count() as u64);
            for field in hash.iter().filter(live) {
                field_ttls_dropped += u64::from(field.expires_at_ms != 0);
                put_string(out, &field.name);
                put_string(out, &field.value);
            }
        }
        Object::ZSet(zset) => {
            put_len(out, zset.len() as u64);
            for (member, score) in zset.iter() {
                put_string(out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Object::List(list) => {
            put_len(out, list.len() as u64);
            for element in list.iter() {
                put_string(out, element);
            }
        }
        Object::Stream(stream) => super::rdb_stream::put_stream(out, stream),
        Object::Set(set) => {
            put_len(out, set.len() as u64);
            for member in set.iter() {
                put_string(out, &member);
            }
        }
    }
    field_ttls_dropped
}
