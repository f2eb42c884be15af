//! The RDB export: Redis's CRC-64 and length encodings, the exact bytes of a small file, and
//! every kind of item saved to a `.fcs`, exported, and read back by a small RDB reader that
//! exists only here.

use std::collections::BTreeMap;

use super::format::{Block, RecordValue};
use super::rdb::*;
use super::tests::{set, store, NOW};
use super::{save, Pace};
use crate::store::{Expiry, IfMissing, Store};

#[test]
fn crc64_is_redis_jones_crc() {
    // The check value of crc64.c's own test ("123456789").
    assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    assert_eq!(crc64(b""), 0);
}

#[test]
fn lengths_use_the_shortest_of_redis_four_encodings() {
    let cases: &[(u64, &[u8])] = &[
        (0, &[0x00]),
        (63, &[0x3f]),
        (64, &[0x40, 0x40]),
        (16_383, &[0x7f, 0xff]),
        (16_384, &[0x80, 0x00, 0x00, 0x40, 0x00]),
        (u64::from(u32::MAX), &[0x80, 0xff, 0xff, 0xff, 0xff]),
        (1 << 32, &[0x81, 0, 0, 0, 1, 0, 0, 0, 0]),
    ];
    for &(len, bytes) in cases {
        let mut out = Vec::new();
        put_len(&mut out, len);
        assert_eq!(out, bytes, "length {len}");
        let mut reader = Reader { bytes: &out, at: 0 };
        assert_eq!(reader.len(), Some(len));
    }
}

fn snapshot(store: &Store) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.fcs");
    save(store, &path, NOW, Pace::Full).unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn a_small_file_has_redis_exact_layout() {
    let store = store();
    set(&store, b"k", b"v", 5, 0);
    let mut out = Vec::new();
    let report = export(&snapshot(&store), NOW, &mut out).unwrap();
    assert_eq!(report.keys, 1);
    assert_eq!(report.bytes, out.len() as u64);
    assert!(out.starts_with(b"REDIS0009\xfa\x09redis-ver\x056.2.0\xfa\x0aredis-bits\x0264"));
    let body: &[u8] = &[
        0xfe, 0x00, // SELECTDB 0
        0xfb, 0x01, 0x00, // RESIZEDB: 1 key, 0 expires
        0x00, 0x01, b'k', 0x01, b'v', // a string
        0xff, // EOF
    ];
    let (data, crc) = out.split_at(out.len() - 8);
    assert!(data.ends_with(body), "{data:x?}");
    assert_eq!(crc, crc64(data).to_le_bytes());
}

#[derive(Debug, PartialEq)]
enum Value {
    String(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    ZSet(Vec<(Vec<u8>, f64)>),
}

/// A cursor over an RDB file, reading only what the export writes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn len(&mut self) -> Option<u64> {
        let first = self.u8()?;
        match first >> 6 {
            0 => Some(u64::from(first & 0x3f)),
            1 => Some(u64::from(first & 0x3f) << 8 | u64::from(self.u8()?)),
            _ if first == 0x80 => Some(u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().ok()?,
            ))),
            _ if first == 0x81 => Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            _ => None, // integer or LZF strings: never written
        }
    }
    fn string(&mut self) -> Option<Vec<u8>> {
        let len = usize::try_from(self.len()?).ok()?;
        Some(self.take(len)?.to_vec())
    }
    fn strings(&mut self) -> Option<Vec<Vec<u8>>> {
        (0..self.len()?).map(|_| self.string()).collect()
    }
}

/// Reads a whole exported file: its aux fields and its keys (with expiry, 0 = none).
#[allow(clippy::type_complexity)]
fn read_rdb(file: &[u8]) -> Option<(BTreeMap<String, String>, BTreeMap<Vec<u8>, (u64, Value)>)> {
    let (data, crc) = file.split_at(file.len().checked_sub(8)?);
    assert_eq!(crc, crc64(data).to_le_bytes(), "checksum");
    let mut r = Reader { bytes: data, at: 0 };
    assert_eq!(r.take(9)?, b"REDIS0009");
    let (mut aux, mut keys) = (BTreeMap::new(), BTreeMap::new());
    let mut expiry = 0;
    let mut announced = None;
    loop {
        match r.u8()? {
            OPCODE_AUX => {
                let (name, value) = (r.string()?, r.string()?);
                aux.insert(
                    String::from_utf8(name).ok()?,
                    String::from_utf8(value).ok()?,
                );
            }
            OPCODE_SELECTDB => assert_eq!(r.len()?, 0),
            OPCODE_RESIZEDB => announced = Some((r.len()?, r.len()?)),
            OPCODE_EXPIRETIME_MS => expiry = u64::from_le_bytes(r.take(8)?.try_into().ok()?),
            OPCODE_EOF => break,
            kind => {
                let key = r.string()?;
                let value = match kind {
                    TYPE_STRING => Value::String(r.string()?),
                    TYPE_LIST => Value::List(r.strings()?),
                    TYPE_SET => Value::Set(r.strings()?),
                    TYPE_HASH => Value::Hash(
                        (0..r.len()?)
                            .map(|_| Some((r.string()?, r.string()?)))
                            .collect::<Option<_>>()?,
                    ),
                    TYPE_ZSET_2 => Value::ZSet(
                        (0..r.len()?)
                            .map(|_| {
                                let member = r.string()?;
                                let score = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
                                Some((member, score))
                            })
                            .collect::<Option<_>>()?,
                    ),
                    _ => return None,
                };
                keys.insert(key, (std::mem::take(&mut expiry), value));
            }
        }
    }
    assert_eq!(r.at, data.len(), "nothing after EOF but the checksum");
    let expires = keys.values().filter(|(e, _)| *e != 0).count() as u64;
    assert_eq!(announced, Some((keys.len() as u64, expires)), "RESIZEDB");
    Some((aux, keys))
}

#[test]
fn every_kind_of_item_is_exported_and_reads_back() {
    let store = store();
    set(&store, b"plain", b"hello", 7, 0);
    set(&store, b"ttl", b"expires later", 1, NOW + 60_000);
    set(&store, b"gone", b"expired by export time", 1, NOW + 10);
    let json = br#"{"user": 12, "name": "ferrocache", "tags": ["a", "b"]} "#.repeat(200);
    set(&store, b"compressed", &json, 3, 0);
    let long: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    set(&store, b"long", &long, 0, 0);
    store.edit(b"hash", NOW, |entry| {
        let hash = entry.hash_mut(IfMissing::Create).unwrap().unwrap();
        hash.set(b"f1", b"v1", false);
        hash.set(b"f2", b"v2", false);
        hash.set_field_expiry(b"f2", NOW + 90_000);
        hash.set(b"f3", b"v3", false);
        hash.set_field_expiry(b"f3", NOW + 20);
    });
    store.edit(b"zset", NOW, |entry| {
        let zset = entry.zset_mut(IfMissing::Create).unwrap().unwrap();
        zset.insert(b"a", 1.5);
        zset.insert(b"b", -2.0);
        zset.insert(b"inf", f64::INFINITY);
    });
    store.edit(b"zset", NOW, |entry| {
        entry.set_expiry(Expiry::AtMs(NOW + 5_000))
    });
    store.edit(b"list", NOW, |entry| {
        let list = entry.list_mut(IfMissing::Create).unwrap().unwrap();
        list.push(crate::store::End::Tail, b"x");
        list.push(crate::store::End::Tail, b"y");
        list.push(crate::store::End::Head, b"w");
    });
    store.edit(b"set", NOW, |entry| {
        let set = entry.set_mut(IfMissing::Create).unwrap().unwrap();
        set.insert(b"m1");
        set.insert(b"42");
    });
    // Pack cold values, so the snapshot holds a string in the store's compressed form.
    while store.compress_cold(NOW + 86_400_000) > 0 {}
    let fcs = snapshot(&store);
    let compressed_records = super::format::blocks(&fcs)
        .unwrap()
        .iter()
        .filter_map(
            |&(at, payload)| match super::format::decode_block(at, payload) {
                Ok(Block::Records(records)) => Some(records),
                _ => None,
            },
        )
        .flatten()
        .filter(|r| {
            matches!(
                r.value,
                RecordValue::String {
                    compressed: true,
                    ..
                }
            )
        })
        .count();
    assert!(compressed_records > 0, "the test needs a compressed record");

    let export_at = NOW + 100;
    let mut out = Vec::new();
    let report = export(&fcs, export_at, &mut out).unwrap();
    assert_eq!(report.keys, 8);
    assert_eq!(report.with_expiry, 2);
    assert_eq!(report.skipped, 1);
    assert_eq!(report.field_ttls_dropped, 1);
    let (aux, mut keys) = read_rdb(&out).expect("a well-formed RDB file");
    assert_eq!(aux["redis-ver"], REDIS_VER);
    assert_eq!(aux["ctime"], (export_at / 1000).to_string());
    assert!(aux.contains_key("redis-bits") && aux.contains_key("used-mem"));

    let mut take = |key: &[u8]| {
        keys.remove(key)
            .unwrap_or_else(|| panic!("{key:?} missing"))
    };
    assert_eq!(take(b"plain"), (0, Value::String(b"hello".to_vec())));
    assert_eq!(
        take(b"ttl"),
        (NOW + 60_000, Value::String(b"expires later".to_vec()))
    );
    assert_eq!(take(b"compressed"), (0, Value::String(json)));
    assert_eq!(take(b"long"), (0, Value::String(long)));
    let (expiry, Value::Hash(mut fields)) = take(b"hash") else {
        panic!("hash")
    };
    fields.sort();
    assert_eq!(expiry, 0);
    assert_eq!(
        fields,
        [
            (b"f1".to_vec(), b"v1".to_vec()),
            (b"f2".to_vec(), b"v2".to_vec())
        ]
    );
    assert_eq!(
        take(b"zset"),
        (
            NOW + 5_000,
            Value::ZSet(vec![
                (b"b".to_vec(), -2.0),
                (b"a".to_vec(), 1.5),
                (b"inf".to_vec(), f64::INFINITY)
            ])
        )
    );
    assert_eq!(
        take(b"list"),
        (
            0,
            Value::List(vec![b"w".to_vec(), b"x".to_vec(), b"y".to_vec()])
        )
    );
    let (_, Value::Set(mut members)) = take(b"set") else {
        panic!("set")
    };
    members.sort();
    assert_eq!(members, [b"42".to_vec(), b"m1".to_vec()]);
    assert!(keys.is_empty(), "unexpected keys {:?}", keys.keys());
}

#[test]
fn a_damaged_snapshot_is_refused_before_anything_is_written() {
    let store = store();
    set(&store, b"k", b"v", 0, 0);
    let fcs = snapshot(&store);
    let mut out = Vec::new();
    assert!(matches!(
        export(&fcs[..fcs.len() - 3], NOW, &mut out),
        Err(ExportError::Format(_))
    ));
    let mut flipped = fcs.clone();
    let last = flipped.len() - 12;
    flipped[last] ^= 0x40;
    assert!(export(&flipped, NOW, &mut out).is_err());
    assert!(export(b"REDIS0009", NOW, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn export_file_replaces_the_output_only_when_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = store();
    set(&store, b"k", b"v", 0, 0);
    let input = dir.path().join("dump.fcs");
    save(&store, &input, NOW, Pace::Full).unwrap();
    let output = dir.path().join("out.rdb");
    let report = super::export_rdb(&input, &output, NOW).unwrap();
    assert_eq!(std::fs::metadata(&output).unwrap().len(), report.bytes);
    std::fs::write(&input, b"not a snapshot").unwrap();
    assert!(matches!(
        super::export_rdb(&input, &output, NOW),
        Err(super::ExportFileError::Export { .. })
    ));
    assert_eq!(std::fs::metadata(&output).unwrap().len(), report.bytes);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 2, "no temporary file left behind");
}

#[test]
fn stream_keys_are_written_as_redis_7_streams() {
    let store = store();
    set(&store, b"k", b"v", 0, 0);
    store.edit(b"s", NOW, |entry| {
        let stream = entry.stream_mut(IfMissing::Create).unwrap().unwrap();
        stream
            .add(crate::store::stream::IdRequest::Auto, &["f", "v"], NOW)
            .unwrap();
    });
    let fcs = snapshot(&store);
    let mut out = Vec::new();
    let report = export(&fcs, NOW, &mut out).unwrap();
    assert_eq!((report.keys, report.skipped), (2, 0));
    assert_eq!(report.bytes, out.len() as u64);
    // The stream's value, right after its type byte and key, reads back.
    let at = out
        .windows(3)
        .position(|w| w == [crate::persist::rdb_stream::TYPE_STREAM_LISTPACKS_2, 1, b's'])
        .expect("the stream key is written");
    let mut r = crate::persist::rdb_read::Reader::new(&out[at + 3..]);
    let back = crate::persist::rdb_stream::read_stream(
        crate::persist::rdb_stream::TYPE_STREAM_LISTPACKS_2,
        &mut r,
    )
    .unwrap();
    assert_eq!(back.len(), 1);
}
