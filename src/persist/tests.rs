//! Snapshots in process: every kind of item round-trips through a file, and every kind of
//! damaged file is refused whole.

use super::*;
use crate::store::{
    EvictionPolicy, Expiry, IfMissing, ItemView, Mutation, Outcome, StaleCas, StoreConfig, Write,
    WriteMode,
};

pub(super) const NOW: u64 = 1_700_000_000_000;

pub(super) fn store() -> Store {
    Store::new(StoreConfig {
        memory_limit_bytes: 256 << 20,
        item_size_max: 8 << 20,
        eviction: EvictionPolicy::AllKeysLru,
        ..StoreConfig::default()
    })
}

pub(super) fn set(store: &Store, key: &[u8], value: &[u8], flags: u32, expiry_ms: u64) {
    let write = Write {
        key,
        value,
        flags,
        expiry: Expiry::from_ms(expiry_ms),
        mode: WriteMode::Set,
        compare_cas: None,
        new_cas: None,
        stale_cas: StaleCas::Refuse,
    };
    assert!(matches!(
        store.apply(Mutation::Write(write), NOW),
        Outcome::Stored { .. }
    ));
}

/// A dump of everything a client could observe of a store, sorted by key.
fn dump(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = store.scan(cursor, 100, NOW, |item: &ItemView<'_>| {
            keys.push(item.key().to_vec())
        });
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    for key in keys {
        let line = store.peek(&key, NOW, |entry| {
            let view = entry.view().expect("scanned key exists");
            let typed = if let Ok(Some(hash)) = entry.hash() {
                let mut fields: Vec<String> = hash
                    .iter()
                    .map(|f| format!("{:?}={:?}@{}", f.name, f.value, f.expires_at_ms))
                    .collect();
                fields.sort();
                format!("hash{fields:?}")
            } else if let Ok(Some(zset)) = entry.zset() {
                format!("zset{:?}", zset.iter().collect::<Vec<_>>())
            } else if let Ok(Some(list)) = entry.list() {
                format!("list{:?}", list.iter().collect::<Vec<_>>())
            } else if let Ok(Some(set)) = entry.set() {
                let mut members: Vec<_> = set.iter().map(|m| m.to_vec()).collect();
                members.sort();
                format!("set{members:?}")
            } else {
                let value = view.value();
                format!(
                    "string len {} crc {:08x}",
                    value.len(),
                    crc32fast::hash(value)
                )
            };
            let strings_only = entry.string().is_ok();
            format!(
                "{:?} flags {} cas {} expiry {} {typed} {}",
                key,
                view.flags(),
                if strings_only { view.cas() } else { 0 },
                view.expiry_ms,
                strings_only
            )
        });
        out.push(line);
    }
    out
}

fn fill(store: &Store) {
    set(store, b"plain", b"hello", 7, 0);
    set(store, b"ttl", b"expires later", 1, NOW + 60_000);
    let json = br#"{"user": 12, "name": "ferrocache", "tags": ["a", "b"]} "#.repeat(200);
    set(store, b"compressed", &json, 3, 0);
    let large: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    set(store, b"large", &large, 9, NOW + 3_600_000);
    store.edit(b"hash", NOW, |entry| {
        let hash = entry.hash_mut(IfMissing::Create).unwrap().unwrap();
        hash.set(b"f1", b"v1", false);
        hash.set(b"f2", b"v2", false);
        hash.set_field_expiry(b"f2", NOW + 90_000);
    });
    store.edit(b"zset", NOW, |entry| {
        let zset = entry.zset_mut(IfMissing::Create).unwrap().unwrap();
        zset.insert(b"a", 1.5);
        zset.insert(b"b", -2.0);
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
        set.insert(b"m2");
    });
    store.edit(b"zset", NOW, |entry| {
        entry.set_expiry(Expiry::AtMs(NOW + 5_000))
    });
}

#[test]
fn every_kind_of_item_round_trips_through_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.fcs");
    let original = store();
    fill(&original);
    let report = save(&original, &path, NOW, pace::BACKGROUND).unwrap();
    assert_eq!(report.items, 8);
    let copy = store();
    let progress = LoadProgress::default();
    assert_eq!(progress.figures(NOW).percent, 0.0);
    let loaded = load(&copy, &path, NOW, 3, &progress).unwrap();
    assert_eq!((loaded.records, loaded.loaded), (8, 8));
    let figures = progress.figures(NOW);
    assert_eq!(figures.percent, 100.0);
    assert_eq!(
        figures.loaded_bytes,
        std::fs::metadata(&path).unwrap().len()
    );
    assert_eq!(figures.started_s, NOW / 1000);
    let before = dump(&original);
    assert_eq!(before.len(), 8);
    assert_eq!(dump(&copy), before);
    // The compressible value was saved in its compressed form.
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file < 3_000_000 + 20_000, "file of {file} bytes");
}

#[test]
fn items_expired_by_load_time_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.fcs");
    let original = store();
    set(&original, b"soon", b"v", 0, NOW + 1_000);
    set(&original, b"later", b"v", 0, NOW + 100_000);
    save(&original, &path, NOW, Pace::Full).unwrap();
    let copy = store();
    let report = load(&copy, &path, NOW + 2_000, 1, &LoadProgress::default()).unwrap();
    assert_eq!((report.loaded, report.expired), (1, 1));
}

fn refused(bytes: &[u8]) -> LoadError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.fcs");
    std::fs::write(&path, bytes).unwrap();
    let copy = store();
    let error = load(&copy, &path, NOW, 2, &LoadProgress::default())
        .expect_err("a damaged file is refused");
    assert_eq!(
        copy.stats().curr_items,
        0,
        "nothing of a refused file is loaded"
    );
    error
}

fn good_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.fcs");
    let original = store();
    fill(&original);
    save(&original, &path, NOW, Pace::Full).unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn damaged_files_are_refused_whole() {
    let good = good_file();
    let message = |e: LoadError| e.to_string();
    assert!(message(refused(b"")).contains("not a ferrocache snapshot"));
    assert!(message(refused(b"GARBAGE-GARBAGE-GARBAGE")).contains("bad magic"));
    for cut in [
        format::HEADER_LEN - 1,
        format::HEADER_LEN + 3,
        good.len() / 2,
        good.len() - 1,
    ] {
        assert!(
            message(refused(&good[..cut])).contains("truncated"),
            "cut at {cut}"
        );
    }
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    assert!(message(refused(&flipped)).contains("checksum"));
    let mut future = good.clone();
    future[8..12].copy_from_slice(&(format::VERSION + 1).to_le_bytes());
    assert!(message(refused(&future)).contains("newer"));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"x");
    assert!(message(refused(&trailing)).contains("follow the end block"));
}

#[test]
fn a_count_that_disagrees_with_the_records_is_refused() {
    let mut file = format::header(NOW);
    let mut payload = Vec::new();
    let source = store();
    set(&source, b"k", b"v", 0, 0);
    for shard in 0..Store::SHARDS {
        source.visit_shard(shard, NOW, |item| {
            format::encode_item(item, &mut payload, &mut Vec::new())
        });
    }
    format::block(&payload, &mut file);
    format::block(&format::end_payload(2), &mut file);
    assert!(refused(&file).to_string().contains("counts 2 records"));
}

#[test]
fn a_record_that_lies_about_its_length_is_refused_without_allocating_it() {
    // A hash record claiming 4 billion fields, in a block with a valid checksum.
    let mut payload = vec![3u8];
    payload.extend_from_slice(&1u32.to_le_bytes());
    payload.push(b'k');
    payload.extend_from_slice(&[0; 4 + 8 + 8]);
    payload.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut file = format::header(NOW);
    format::block(&payload, &mut file);
    format::block(&format::end_payload(1), &mut file);
    assert!(refused(&file).to_string().contains("malformed"));
}

#[test]
fn save_rules_parse_as_redis_writes_them() {
    assert_eq!(parse_save_rules(""), Some(vec![]));
    assert_eq!(
        parse_save_rules("3600 1 300 100 60 10000"),
        Some(vec![(3600, 1), (300, 100), (60, 10000)])
    );
    assert_eq!(parse_save_rules("3600"), None);
    assert_eq!(parse_save_rules("0 1"), None);
    assert_eq!(parse_save_rules("60 x"), None);
}

#[test]
fn rules_fall_due_on_time_and_changes() {
    let store = store();
    let state = Persistence::new(NOW);
    let rules = [(60, 2)];
    set(&store, b"a", b"1", 0, 0);
    assert!(
        !state.rule_due(&rules, &store, NOW + 61_000),
        "one change of two"
    );
    set(&store, b"b", b"1", 0, 0);
    assert!(!state.rule_due(&rules, &store, NOW + 59_000), "too soon");
    assert!(state.rule_due(&rules, &store, NOW + 61_000));
    let guard = state.begin(&store, NOW + 61_000).unwrap();
    assert!(matches!(
        state.begin(&store, NOW),
        Err(SaveError::InProgress)
    ));
    let report = SaveReport {
        items: 2,
        bytes: 0,
        elapsed: Duration::ZERO,
    };
    guard.finish(&Ok(report), NOW + 61_000);
    assert!(
        !state.rule_due(&rules, &store, NOW + 200_000),
        "saved since"
    );
    assert_eq!(state.figures(&store, NOW).saves, 1);
}
