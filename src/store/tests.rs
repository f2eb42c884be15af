//! Store semantics without a socket: writes, reads, expiry, eviction, and a model test.

use super::*;

pub(super) const NOW: u64 = 1_700_000_000_000;

fn store(limit: usize) -> Store {
    Store::new(StoreConfig {
        memory_limit_bytes: limit,
        item_size_max: 1024 * 1024,
        eviction: EvictionPolicy::AllKeysLru,
        ..StoreConfig::default()
    })
}

pub(super) fn set(store: &Store, key: &[u8], value: &[u8], expiry: Expiry, now: u64) -> Outcome {
    store.apply(
        Mutation::Write(Write {
            key,
            value,
            flags: 0,
            expiry,
            mode: WriteMode::Set,
            compare_cas: None,
            new_cas: None,
            stale_cas: StaleCas::Refuse,
        }),
        now,
    )
}

pub(super) fn get(store: &Store, key: &[u8], now: u64) -> Option<Vec<u8>> {
    store.get(key, now, ReadOptions::plain(), |view| {
        view.map(|v| v.value().to_vec())
    })
}

#[test]
fn set_get_and_expiry() {
    let s = store(1 << 20);
    assert!(matches!(
        set(&s, b"a", b"1", Expiry::AtMs(NOW + 1000), NOW),
        Outcome::Stored { .. }
    ));
    assert_eq!(get(&s, b"a", NOW + 999).as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&s, b"a", NOW + 1000), None);
    assert_eq!(
        s.stats().curr_items,
        0,
        "expired item is reclaimed on access"
    );
}

#[test]
fn cas_changes_on_every_mutation() {
    let s = store(1 << 20);
    let Outcome::Stored { cas: first } = set(&s, b"k", b"1", Expiry::Never, NOW) else {
        panic!()
    };
    let Outcome::Stored { cas: second } = set(&s, b"k", b"2", Expiry::Never, NOW) else {
        panic!()
    };
    assert_ne!(first, second);
    let stale = Write {
        key: b"k",
        value: b"x",
        flags: 0,
        expiry: Expiry::Never,
        mode: WriteMode::Set,
        compare_cas: Some(first),
        new_cas: None,
        stale_cas: StaleCas::Refuse,
    };
    assert_eq!(s.apply(Mutation::Write(stale), NOW), Outcome::Exists);
}

#[test]
fn memory_limit_evicts_least_recently_used() {
    let value = vec![b'v'; 1000];
    let limit = 1 << 20;
    let s = store(limit);
    for i in 0..5000u32 {
        let now = NOW + u64::from(i);
        set(
            &s,
            format!("k{i:04}").as_bytes(),
            &value,
            Expiry::Never,
            now,
        );
        // Keep k0000 hot: merges must keep copying it forward.
        assert!(get(&s, b"k0000", now).is_some(), "hot key evicted at {i}");
    }
    let stats = s.stats();
    assert!(stats.bytes as usize <= limit, "{stats:?}");
    assert!(
        stats.segments_in_use as usize * s.segment_size() <= limit,
        "{stats:?}"
    );
    assert!(stats.evictions >= 4000, "{stats:?}");
    assert_eq!(stats.curr_items + stats.evictions, 5000, "{stats:?}");
    // The newest keys are there, the oldest cold ones are gone.
    assert!(get(&s, b"k4999", NOW + 5000).is_some());
    assert!(get(&s, b"k0001", NOW + 5000).is_none());
}

#[test]
fn delayed_flush_hides_older_items_once_due() {
    let s = store(1 << 20);
    set(&s, b"old", b"1", Expiry::Never, NOW);
    s.apply(
        Mutation::FlushAll {
            at_ms: Some(NOW + 2000),
        },
        NOW,
    );
    assert!(get(&s, b"old", NOW + 1999).is_some());
    assert!(get(&s, b"old", NOW + 2000).is_none());
    set(&s, b"new", b"1", Expiry::Never, NOW + 3000);
    assert!(get(&s, b"new", NOW + 3000).is_some());
}

#[test]
fn sweep_reclaims_expired_items_never_read_again() {
    let s = store(1 << 20);
    for i in 0..500u32 {
        set(
            &s,
            format!("k{i}").as_bytes(),
            b"v",
            Expiry::AtMs(NOW + 10),
            NOW,
        );
    }
    assert_eq!(s.sweep(NOW + 10, 1024), 500);
    let stats = s.stats();
    assert_eq!((stats.curr_items, stats.bytes), (0, 0));
}

/// A tiny deterministic generator, so the model test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_operations_match_a_hashmap_model() {
    use std::collections::HashMap;
    let s = store(64 << 20);
    let mut model: HashMap<Vec<u8>, (Vec<u8>, u64)> = HashMap::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut now = NOW;
    for _ in 0..20_000 {
        now += rng.below(50);
        let key = format!("key{}", rng.below(64)).into_bytes();
        let live = |m: &HashMap<Vec<u8>, (Vec<u8>, u64)>, now: u64| {
            m.get(&key)
                .filter(|(_, exp)| *exp == 0 || *exp > now)
                .map(|(v, _)| v.clone())
        };
        match rng.below(6) {
            0 | 1 => {
                let value = rng.below(1_000_000).to_string().into_bytes();
                let exp = if rng.below(3) == 0 {
                    now + rng.below(500) + 1
                } else {
                    0
                };
                let modes = [
                    WriteMode::Set,
                    WriteMode::Add,
                    WriteMode::Replace,
                    WriteMode::Append,
                ];
                let mode = modes[rng.below(4) as usize];
                let write = Write {
                    key: &key,
                    value: &value,
                    flags: 0,
                    expiry: Expiry::from_ms(exp),
                    mode,
                    compare_cas: None,
                    new_cas: None,
                    stale_cas: StaleCas::Refuse,
                };
                let outcome = s.apply(Mutation::Write(write), now);
                let current = live(&model, now);
                let expected_stored = match mode {
                    WriteMode::Set => true,
                    WriteMode::Add => current.is_none(),
                    _ => current.is_some(),
                };
                assert_eq!(
                    matches!(outcome, Outcome::Stored { .. }),
                    expected_stored,
                    "{mode:?}"
                );
                if expected_stored {
                    let entry = match (mode, current) {
                        (WriteMode::Append, Some(old)) => {
                            let exp_old = model[&key].1;
                            ([old, value].concat(), exp_old)
                        }
                        _ => (value, exp),
                    };
                    model.insert(key.clone(), entry);
                }
            }
            2 => {
                let delete = Delete {
                    key: &key,
                    compare_cas: None,
                    new_cas: None,
                    invalidate: None,
                };
                let outcome = s.apply(Mutation::Delete(delete), now);
                assert_eq!(outcome == Outcome::Deleted, live(&model, now).is_some());
                model.remove(&key);
            }
            3 => {
                let outcome = s.apply(Mutation::Unlink { key: &key }, now);
                assert_eq!(outcome == Outcome::Deleted, live(&model, now).is_some());
                model.remove(&key);
            }
            4 => {
                let exp = now + rng.below(500) + 1;
                let outcome = s.apply(
                    Mutation::Touch {
                        key: &key,
                        expiry: Expiry::AtMs(exp),
                    },
                    now,
                );
                let was_live = live(&model, now).is_some();
                assert_eq!(outcome == Outcome::Touched, was_live);
                if was_live {
                    model.get_mut(&key).expect("live entry").1 = exp;
                }
            }
            _ => {
                assert_eq!(
                    get(&s, &key, now),
                    live(&model, now),
                    "get {}",
                    String::from_utf8_lossy(&key)
                );
            }
        }
    }
    assert_eq!(s.stats().evictions, 0);
}

#[test]
fn zset_edits_are_charged_versioned_and_removed_when_empty() {
    let s = store(64 * 1024 * 1024);
    let cas_of = |s: &Store| s.edit(b"z", NOW, |e| e.view().map(|v| v.cas()));
    s.edit(b"z", NOW, |e| {
        let z = e.zset_mut(IfMissing::Create).unwrap().unwrap();
        z.insert(b"a", 1.0);
    });
    let small = s.stats().bytes;
    let first_cas = cas_of(&s);
    s.edit(b"z", NOW, |e| {
        let z = e.zset_mut(IfMissing::Leave).unwrap().unwrap();
        for i in 0..1000 {
            z.insert(format!("member-{i}").as_bytes(), f64::from(i));
        }
    });
    let big = s.stats().bytes;
    assert!(big > small + 1000 * 8, "{small} -> {big}");
    assert_ne!(
        cas_of(&s),
        first_cas,
        "a zset change bumps the cas (WATCH sees it)"
    );
    // Wrong types both ways.
    set(&s, b"str", b"v", Expiry::Never, NOW);
    assert!(matches!(
        s.edit(b"str", NOW, |e| e.zset_mut(IfMissing::Create).map(|_| ())),
        Err(StoreError::WrongType)
    ));
    assert!(s.edit(b"z", NOW, |e| e.hash().is_err()));
    // Emptying the set removes the key and gives every byte back.
    let before_str = s.stats().bytes;
    s.edit(b"z", NOW, |e| {
        let z = e.zset_mut(IfMissing::Leave).unwrap().unwrap();
        let n = z.len();
        z.remove_range(0..n);
    });
    assert!(!s.edit(b"z", NOW, |e| e.exists()));
    assert!(s.stats().bytes < before_str - big / 2);
    // put_zset replaces any type and deletes on empty.
    let mut built = ZSet::new();
    built.insert(b"x", 2.0);
    s.edit(b"str", NOW, |e| e.put_zset(built)).unwrap();
    assert!(s.edit(b"str", NOW, |e| e.zset().unwrap().is_some()));
    s.edit(b"str", NOW, |e| e.put_zset(ZSet::new())).unwrap();
    assert!(!s.edit(b"str", NOW, |e| e.exists()));
}

#[test]
fn noeviction_refuses_writes_that_do_not_fit_and_keeps_every_item() {
    let value = vec![b'v'; 1000];
    let limit = 1 << 20;
    let s = Store::new(StoreConfig {
        memory_limit_bytes: limit,
        item_size_max: 1024 * 1024,
        eviction: EvictionPolicy::NoEviction,
        ..StoreConfig::default()
    });
    let mut stored = 0;
    for i in 0..2000u32 {
        match set(
            &s,
            format!("k{i:04}").as_bytes(),
            &value,
            Expiry::Never,
            NOW,
        ) {
            Outcome::Stored { .. } => stored += 1,
            outcome => assert_eq!(outcome, Outcome::OutOfMemory),
        }
    }
    // All but the reclaimers' reserve segment is usable.
    let per_segment = s.segment_size() / (1000 + 6 + ITEM_OVERHEAD);
    assert!(stored >= per_segment * 6, "{stored}");
    assert!(stored < 2000);
    assert_eq!(s.stats().evictions, 0);
    assert!((0..stored).all(|i| get(&s, format!("k{i:04}").as_bytes(), NOW).is_some()));
    // Deleting makes room again: compaction reclaims the dead bytes.
    for i in (0..stored).step_by(2) {
        let key = format!("k{i:04}");
        let delete = Delete {
            key: key.as_bytes(),
            compare_cas: None,
            new_cas: None,
            invalidate: None,
        };
        assert_eq!(s.apply(Mutation::Delete(delete), NOW), Outcome::Deleted);
    }
    let removed = stored.div_ceil(2);
    for i in 0..removed {
        let key = format!("n{i:04}");
        let outcome = set(&s, key.as_bytes(), &value, Expiry::Never, NOW);
        assert!(
            matches!(outcome, Outcome::Stored { .. }),
            "{key}: {outcome:?}"
        );
    }
    assert!((1..stored)
        .step_by(2)
        .all(|i| get(&s, format!("k{i:04}").as_bytes(), NOW).is_some()));
    assert_eq!(s.stats().evictions, 0);
    assert_eq!(s.stats().curr_items, stored as u64);
    s.set_eviction_policy(EvictionPolicy::AllKeysLru);
    assert!(matches!(
        set(&s, b"k9999", &value, Expiry::Never, NOW),
        Outcome::Stored { .. }
    ));
}

#[test]
fn a_full_scan_visits_every_key_exactly_once() {
    // Many table sizes, so that some shards' probe chains wrap past the end of their table.
    let s = store(64 << 20);
    let mut present = 0;
    for round in 0..40 {
        for n in 0..(round * 37) {
            let key = format!("key:{round}:{n}");
            set(&s, key.as_bytes(), b"v", Expiry::Never, NOW);
            present += 1;
        }
        for count in [1, 25, 4096] {
            let mut seen = Vec::new();
            let mut cursor = 0;
            loop {
                cursor = s.scan(cursor, count, NOW, |item| seen.push(item.key().to_vec()));
                if cursor == 0 {
                    break;
                }
            }
            assert_eq!(seen.len(), present, "round {round}, count {count}");
            seen.sort();
            seen.dedup();
            assert_eq!(
                seen.len(),
                present,
                "round {round}, count {count}: duplicates"
            );
        }
    }
}
