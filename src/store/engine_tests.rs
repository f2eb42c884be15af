//! The segment engine's own promises: TTL buckets, merge eviction, LFU, the memory bound,
//! compression and pools, checked through the public API and the engine's figures.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::tests::{get, set, NOW};

/// Past the default cold period (`compression_cold_secs`).
pub(super) const COLD_MS: u64 = 31_000;
use super::*;

fn store_with(limit: usize, eviction: EvictionPolicy) -> Store {
    Store::new(StoreConfig {
        memory_limit_bytes: limit,
        eviction,
        ..StoreConfig::default()
    })
}

/// Noise zstd cannot shrink.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
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
fn expired_segments_are_dropped_without_reads() {
    let s = store_with(64 << 20, EvictionPolicy::AllKeysLru);
    let value = noise(100, 1);
    for i in 0..20_000u32 {
        set(
            &s,
            format!("t{i}").as_bytes(),
            &value,
            Expiry::AtMs(NOW + 5_000),
            NOW,
        );
    }
    for i in 0..1_000u32 {
        set(&s, format!("n{i}").as_bytes(), &value, Expiry::Never, NOW);
    }
    let before = s.stats();
    assert!(before.segments_in_use >= 3, "{before:?}");
    assert_eq!(s.sweep(NOW + 4_999, 64), 0, "nothing is due yet");
    assert_eq!(s.sweep(NOW + 5_000, 64), 20_000);
    let after = s.stats();
    assert_eq!(after.curr_items, 1_000);
    assert_eq!(
        after.segments_in_use, 1,
        "only the never-expiring segment is left"
    );
    assert!((0..1_000u32).all(|i| get(&s, format!("n{i}").as_bytes(), NOW + 5_000).is_some()));
}

#[test]
fn a_touched_item_outlives_its_segment() {
    let s = store_with(64 << 20, EvictionPolicy::AllKeysLru);
    for i in 0..5_000u32 {
        set(
            &s,
            format!("t{i}").as_bytes(),
            &noise(100, i as u64),
            Expiry::AtMs(NOW + 2_000),
            NOW,
        );
    }
    let touch = Mutation::Touch {
        key: b"t7",
        expiry: Expiry::AtMs(NOW + 60_000),
    };
    assert_eq!(s.apply(touch, NOW), Outcome::Touched);
    assert_eq!(s.sweep(NOW + 3_000, 64), 4_999);
    assert_eq!(get(&s, b"t7", NOW + 3_000), Some(noise(100, 7)));
    assert_eq!(get(&s, b"t8", NOW + 3_000), None);
}

#[test]
fn dead_bytes_are_compacted_under_a_steady_overwrite_load() {
    // 2 MiB of memory, a live set of ~0.5 MiB overwritten 40 times: without compaction the
    // dead copies would force evictions.
    let s = store_with(2 << 20, EvictionPolicy::AllKeysLru);
    for round in 0..40u64 {
        for i in 0..500u32 {
            let value = noise(1000, round * 1000 + i as u64);
            set(&s, format!("k{i}").as_bytes(), &value, Expiry::Never, NOW);
        }
    }
    let stats = s.stats();
    assert_eq!(stats.evictions, 0, "{stats:?}");
    assert_eq!(stats.curr_items, 500);
    assert!(stats.segments_in_use as usize * s.segment_size() <= 2 << 20);
    assert!((0..500u32).all(
        |i| get(&s, format!("k{i}").as_bytes(), NOW) == Some(noise(1000, 39 * 1000 + i as u64))
    ));
}

#[test]
fn lfu_keeps_frequently_read_keys_through_a_scan() {
    let s = store_with(2 << 20, EvictionPolicy::AllKeysLfu);
    let value = noise(1000, 3);
    for i in 0..100u32 {
        set(&s, format!("hot{i}").as_bytes(), &value, Expiry::Never, NOW);
    }
    for _ in 0..30 {
        for i in 0..100u32 {
            get(&s, format!("hot{i}").as_bytes(), NOW);
        }
    }
    // A scan of cold keys five times the memory, never read: the hot keys are not touched
    // during it, yet their frequency keeps them.
    for i in 0..10_000u32 {
        set(
            &s,
            format!("cold{i}").as_bytes(),
            &value,
            Expiry::Never,
            NOW,
        );
    }
    let hot = (0..100u32)
        .filter(|i| get(&s, format!("hot{i}").as_bytes(), NOW).is_some())
        .count();
    assert_eq!(hot, 100, "{hot} of 100 hot keys survived");
    assert!(s.stats().evictions >= 8_000);
}

#[test]
fn lru_keeps_keys_read_since_their_last_merge() {
    let s = store_with(2 << 20, EvictionPolicy::AllKeysLru);
    let value = noise(1000, 4);
    for i in 0..100u32 {
        set(&s, format!("hot{i}").as_bytes(), &value, Expiry::Never, NOW);
    }
    for i in 0..10_000u32 {
        set(
            &s,
            format!("cold{i}").as_bytes(),
            &value,
            Expiry::Never,
            NOW,
        );
        if i % 500 == 0 {
            for h in 0..100u32 {
                get(&s, format!("hot{h}").as_bytes(), NOW);
            }
        }
    }
    let hot = (0..100u32)
        .filter(|i| get(&s, format!("hot{i}").as_bytes(), NOW).is_some())
        .count();
    assert_eq!(hot, 100);
    assert!(s.stats().moved_items > 0);
}

#[test]
fn volatile_policies_evict_only_keys_with_an_expiry() {
    for policy in [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileTtl,
    ] {
        let s = store_with(2 << 20, policy);
        let value = noise(1000, 5);
        for i in 0..500u32 {
            set(
                &s,
                format!("keep{i}").as_bytes(),
                &value,
                Expiry::Never,
                NOW,
            );
        }
        let mut stored = 0;
        for i in 0..5_000u32 {
            let expiry = Expiry::AtMs(NOW + 3_600_000 + i as u64 * 1000);
            if matches!(
                set(&s, format!("ttl{i}").as_bytes(), &value, expiry, NOW),
                Outcome::Stored { .. }
            ) {
                stored += 1;
            }
        }
        assert!(stored > 4_000, "{policy:?}: {stored}");
        assert!(s.stats().evictions > 0, "{policy:?}");
        assert!(
            (0..500u32).all(|i| get(&s, format!("keep{i}").as_bytes(), NOW).is_some()),
            "{policy:?} evicted a key without expiry"
        );
        // With only keys without expiry left to take, writes fail instead.
        let mut refused = false;
        for i in 0..5_000u32 {
            if set(
                &s,
                format!("more{i}").as_bytes(),
                &value,
                Expiry::Never,
                NOW,
            ) == Outcome::OutOfMemory
            {
                refused = true;
                break;
            }
        }
        assert!(refused, "{policy:?}");
        assert!((0..500u32).all(|i| get(&s, format!("keep{i}").as_bytes(), NOW).is_some()));
    }
}

#[test]
fn volatile_ttl_evicts_the_soonest_expiring_first() {
    let s = store_with(2 << 20, EvictionPolicy::VolatileTtl);
    let value = noise(1000, 6);
    for i in 0..300u32 {
        set(
            &s,
            format!("late{i}").as_bytes(),
            &value,
            Expiry::AtMs(NOW + 86_400_000),
            NOW,
        );
    }
    for i in 0..5_000u32 {
        set(
            &s,
            format!("soon{i}").as_bytes(),
            &value,
            Expiry::AtMs(NOW + 60_000),
            NOW,
        );
    }
    let late = (0..300u32)
        .filter(|i| get(&s, format!("late{i}").as_bytes(), NOW).is_some())
        .count();
    assert_eq!(late, 300);
}

#[test]
fn memory_stays_within_the_limit_plus_one_segment_per_writer() {
    const WRITERS: usize = 4;
    let limit = 8 << 20;
    let s = Arc::new(store_with(limit, EvictionPolicy::AllKeysLru));
    let segment = s.segment_size();
    let item_max = s.item_size_max();
    let done = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let (s, done, worst) = (s.clone(), done.clone(), worst.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let stats = s.stats();
                let used = stats.segments_in_use as usize * segment + stats.heap_bytes as usize;
                worst.fetch_max(used, Ordering::Relaxed);
                std::thread::yield_now();
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut x = (w as u64 + 1) * 0x9e37_79b9;
                let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
                let mut n = 0u64;
                while std::time::Instant::now() < deadline && n < 200_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly small, sometimes up to the item limit (beyond a segment).
                    let len = if x.is_multiple_of(50) {
                        (x >> 8) as usize % item_max
                    } else {
                        (x >> 8) as usize % 5_000
                    };
                    let key = format!("w{w}-{}", x % 20_000);
                    set(&s, key.as_bytes(), &noise(len, x), Expiry::Never, NOW);
                    n += 1;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    // One segment per writer (OVERDRAW covers four), plus the chunks of one value of up to
    // `-I` being written (two segments at most here).
    let bound = limit + (WRITERS + item_max.div_ceil(segment) + 1) * segment;
    let worst = worst.load(Ordering::Relaxed);
    assert!(worst <= bound, "{worst} > {bound}");
    let stats = s.stats();
    assert!(
        stats.segments_in_use as usize * segment + stats.heap_bytes as usize <= limit + segment,
        "at rest: {stats:?}"
    );
    assert!(stats.evictions > 0);
}

#[test]
fn large_values_are_compressed_transparently() {
    let s = store_with(64 << 20, EvictionPolicy::AllKeysLru);
    let json: Vec<u8> = (0..2_000)
        .flat_map(|i| format!(r#"{{"id":{i},"name":"user{i}","active":true}},"#).into_bytes())
        .collect();
    let Outcome::Stored { cas } = set(&s, b"doc", &json, Expiry::Never, NOW) else {
        panic!()
    };
    assert_eq!(s.stats().compressed_items, 0, "written raw");
    // Packed once cold (by the maintenance thread's pass in the server).
    let now = NOW + COLD_MS;
    assert_eq!(s.compress_cold(now), 1);
    let stats = s.stats();
    assert_eq!(stats.compressed_items, 1);
    assert!(
        stats.compressed_saved_bytes as usize > json.len() / 2,
        "{stats:?}"
    );
    assert!((stats.bytes as usize) < json.len() / 2, "{stats:?}");
    // cas and append see the original bytes.
    let append = Write {
        key: b"doc",
        value: b"]",
        flags: 0,
        expiry: Expiry::Never,
        mode: WriteMode::Append,
        compare_cas: Some(cas),
        new_cas: None,
        stale_cas: StaleCas::Refuse,
    };
    assert!(matches!(
        s.apply(Mutation::Write(append), now),
        Outcome::Stored { .. }
    ));
    let mut expected = json.clone();
    expected.push(b']');
    assert_eq!(get(&s, b"doc", now), Some(expected));
    assert_eq!(s.stats().compressed_items, 0, "the appended value is raw");
    // Random bytes are kept as they are, and so is their record once found incompressible.
    set(&s, b"noise", &noise(10_000, 8), Expiry::Never, now);
    assert_eq!(s.compress_cold(now + COLD_MS), 2);
    let stats = s.stats();
    assert_eq!(stats.compressed_items, 1, "{stats:?}");
    assert_eq!(stats.compress_incompressible, 1, "{stats:?}");
    assert_eq!(get(&s, b"noise", now), Some(noise(10_000, 8)));
}

#[test]
fn values_larger_than_a_segment_round_trip_and_count() {
    let s = Store::new(StoreConfig {
        memory_limit_bytes: 64 << 20,
        item_size_max: 8 << 20,
        ..StoreConfig::default()
    });
    let big = noise(3 << 20, 9);
    let Outcome::Stored { cas } = set(&s, b"big", &big, Expiry::Never, NOW) else {
        panic!()
    };
    assert_eq!(get(&s, b"big", NOW), Some(big.clone()));
    let stats = s.stats();
    assert!(stats.bytes as usize >= big.len(), "{stats:?}");
    assert_eq!(stats.heap_bytes, 0, "chunks live in segments");
    assert!(stats.segments_in_use >= 4, "{stats:?}");
    // Append, cas, and a compressible large value.
    let append = Write {
        key: b"big",
        value: b"tail",
        flags: 0,
        expiry: Expiry::Never,
        mode: WriteMode::Append,
        compare_cas: Some(cas),
        new_cas: None,
        stale_cas: StaleCas::Refuse,
    };
    assert!(matches!(
        s.apply(Mutation::Write(append), NOW),
        Outcome::Stored { .. }
    ));
    let mut expected = big.clone();
    expected.extend_from_slice(b"tail");
    assert_eq!(get(&s, b"big", NOW), Some(expected));
    let text: Vec<u8> = b"lorem ipsum dolor sit amet "
        .iter()
        .copied()
        .cycle()
        .take(5 << 20)
        .collect();
    set(&s, b"text", &text, Expiry::Never, NOW);
    assert_eq!(s.stats().compressed_items, 0, "written raw");
    // The text packs; the noise is found incompressible (at its first bytes).
    assert_eq!(s.compress_cold(NOW + COLD_MS), 2, "{:?}", s.stats());
    let stats = s.stats();
    assert_eq!(stats.compressed_items, 1, "{stats:?}");
    assert!(stats.bytes < big.len() as u64 + (1 << 20), "{stats:?}");
    let mut expected = big.clone();
    expected.extend_from_slice(b"tail");
    assert_eq!(get(&s, b"big", NOW + COLD_MS), Some(expected));
    let read = |key: &[u8]| {
        s.get(key, NOW + COLD_MS, ReadOptions::default(), |view| {
            view.map(|v| v.value().to_vec())
        })
    };
    assert_eq!(
        read(b"text"),
        Some(text.clone()),
        "read packed, not promoted"
    );
    assert_eq!(s.stats().compressed_items, 1);
    assert_eq!(get(&s, b"text", NOW + COLD_MS), Some(text));
    assert_eq!(
        s.stats().compressed_items,
        0,
        "promoted by a read that counts"
    );
    for key in [&b"big"[..], b"text"] {
        let delete = Delete {
            key,
            compare_cas: None,
            new_cas: None,
            invalidate: None,
        };
        assert_eq!(s.apply(Mutation::Delete(delete), NOW), Outcome::Deleted);
    }
    assert_eq!(s.stats().bytes, 0);
    s.sweep(NOW, 16);
    assert!(s.stats().segments_in_use <= 1, "{:?}", s.stats());
}

#[test]
fn large_values_survive_compaction_and_expiry_of_their_segments() {
    // Large values among small overwritten ones: compaction moves their chunks.
    let s = Store::new(StoreConfig {
        memory_limit_bytes: 16 << 20,
        item_size_max: 4 << 20,
        ..StoreConfig::default()
    });
    let big = noise(2_500_000, 12);
    set(&s, b"big", &big, Expiry::AtMs(NOW + 3_600_000), NOW);
    for round in 0..30u64 {
        for i in 0..300u32 {
            set(
                &s,
                format!("k{i}").as_bytes(),
                &noise(2000, round),
                Expiry::AtMs(NOW + 3_600_000),
                NOW,
            );
        }
    }
    assert_eq!(get(&s, b"big", NOW), Some(big.clone()));
    // Touch it far into the future: when its segments expire, its records are moved.
    let touch = Mutation::Touch {
        key: b"big",
        expiry: Expiry::AtMs(NOW + 86_400_000),
    };
    assert_eq!(s.apply(touch, NOW), Outcome::Touched);
    s.sweep(NOW + 7_200_000, 64);
    assert_eq!(get(&s, b"big", NOW + 7_200_000), Some(big));
    assert_eq!(s.stats().curr_items, 1);
}

#[test]
fn pools_count_their_own_items_hits_misses_and_evictions() {
    let s = Store::new(StoreConfig {
        memory_limit_bytes: 2 << 20,
        pools: vec![PoolConfig {
            name: "sessions".into(),
            prefix: b"sess:".to_vec(),
        }],
        ..StoreConfig::default()
    });
    set(&s, b"sess:1", b"a", Expiry::Never, NOW);
    set(&s, b"sess:2", b"b", Expiry::AtMs(NOW + 10), NOW);
    set(&s, b"other", b"c", Expiry::Never, NOW);
    get(&s, b"sess:1", NOW);
    get(&s, b"sess:9", NOW);
    get(&s, b"sess:2", NOW + 10);
    let pools = s.pool_stats();
    let sessions = pools.iter().find(|p| p.name == "sessions").unwrap();
    assert_eq!(
        (
            sessions.items,
            sessions.hits,
            sessions.misses,
            sessions.expired
        ),
        (1, 1, 2, 1)
    );
    let default = pools.iter().find(|p| p.name == "default").unwrap();
    assert_eq!(default.items, 1);
    let value = noise(1000, 10);
    for i in 0..10_000u32 {
        set(&s, format!("x{i}").as_bytes(), &value, Expiry::Never, NOW);
    }
    let pools = s.pool_stats();
    let default = pools.iter().find(|p| p.name == "default").unwrap();
    assert!(default.evicted_lru > 0);
    assert_eq!(
        pools.iter().map(|p| p.items).sum::<u64>(),
        s.stats().curr_items
    );
}

#[test]
fn flush_all_gives_the_memory_back() {
    let s = store_with(64 << 20, EvictionPolicy::AllKeysLru);
    for i in 0..20_000u32 {
        set(
            &s,
            format!("k{i}").as_bytes(),
            &noise(500, i as u64),
            Expiry::Never,
            NOW,
        );
    }
    assert!(s.stats().segments_allocated >= 9);
    assert_eq!(
        s.apply(Mutation::FlushAll { at_ms: None }, NOW),
        Outcome::Flushed
    );
    let stats = s.stats();
    assert_eq!((stats.curr_items, stats.bytes), (0, 0));
    assert!(stats.segments_allocated <= 1, "{stats:?}");
    set(&s, b"after", b"v", Expiry::Never, NOW);
    assert_eq!(get(&s, b"after", NOW), Some(b"v".to_vec()));
}

#[test]
fn keys_longer_than_a_quarter_segment_are_refused_not_a_panic() {
    let s = Store::new(StoreConfig {
        memory_limit_bytes: 64 << 20,
        item_size_max: 4 << 20,
        ..StoreConfig::default()
    });
    let longest = vec![b'k'; s.max_key_len()];
    assert!(matches!(
        set(&s, &longest, &noise(3 << 20, 1), Expiry::Never, NOW),
        Outcome::Stored { .. }
    ));
    assert_eq!(get(&s, &longest, NOW), Some(noise(3 << 20, 1)));
    for len in [
        s.max_key_len() + 1,
        s.segment_size() - 10,
        s.segment_size() + 10,
        3 << 20,
    ] {
        let key = vec![b'k'; len];
        assert_eq!(
            set(&s, &key, b"v", Expiry::Never, NOW),
            Outcome::TooLarge,
            "{len}"
        );
        assert_eq!(get(&s, &key, NOW), None);
        let refused = s.edit(&key, NOW, |entry| {
            entry.hash_mut(IfMissing::Create).map(|_| ())
        });
        assert_eq!(refused, Err(StoreError::TooLarge));
    }
    assert_eq!(s.pool_stats()[0].too_large, 8);
}

#[test]
fn lowering_the_limit_evicts_and_frees_segments() {
    let s = store_with(32 << 20, EvictionPolicy::AllKeysLru);
    for i in 0..40_000u32 {
        set(
            &s,
            format!("k{i}").as_bytes(),
            &noise(500, i as u64),
            Expiry::Never,
            NOW,
        );
    }
    assert!(s.stats().segments_allocated >= 18);
    s.set_memory_limit(8 << 20, NOW);
    let stats = s.stats();
    assert!(stats.segments_allocated <= 8, "{stats:?}");
    assert!(stats.bytes <= 8 << 20, "{stats:?}");
    assert!(stats.evictions > 0);
    assert_eq!(get(&s, b"k39999", NOW), Some(noise(500, 39_999)));
}

/// A store whose arena may hand out segment ids `1..=last_id` only (instead of 2^24 - 1).
fn store_with_id_space(limit: usize, last_id: u32) -> Store {
    let mut s = store_with(limit, EvictionPolicy::AllKeysLru);
    s.segments = Segments::with_id_space(s.segment_size(), 0, ttl::BUCKET_COUNT, last_id);
    s.refresh_budget();
    s
}

/// Segment ids are reused: every flush of a full cache, every lowering of the limit and
/// every growth of the heap gives segments (and, beyond the budget, their memory) back, and
/// none of it may use ids up. With 48 ids and about 8 segments in use, ids handed out once
/// would run out within six cycles; this runs 200, and reads back what each cycle wrote.
#[test]
fn segment_ids_are_reused_through_many_flushes_limit_changes_and_heap_growth() {
    const LAST_ID: u32 = 48;
    let limit = 512 << 10;
    let s = store_with_id_space(limit, LAST_ID);
    let segment = s.segment_size();
    let budget = s.segments.budget();
    assert!(budget >= 6, "budget {budget} of {segment}-byte segments");
    let value = |cycle: u32, i: u32| noise(1000, ((cycle as u64) << 32) | i as u64);
    // More than the limit each cycle, so every segment of the budget is used and evicted.
    let per_cycle = (limit * 3 / 2 / 1000) as u32;
    for cycle in 0..200u32 {
        for i in 0..per_cycle {
            let key = format!("c{cycle}-{i}");
            let stored = set(&s, key.as_bytes(), &value(cycle, i), Expiry::Never, NOW);
            assert!(
                matches!(stored, Outcome::Stored { .. }),
                "cycle {cycle} key {i}: {stored:?}"
            );
        }
        // A value larger than a segment: its chunk table names several (reused) ids.
        let large = noise(segment * 2, cycle as u64);
        let stored = set(&s, b"large", &large, Expiry::Never, NOW);
        assert!(
            matches!(stored, Outcome::Stored { .. }),
            "cycle {cycle}: {stored:?}"
        );
        assert_eq!(get(&s, b"large", NOW), Some(large), "cycle {cycle}");
        let last = per_cycle - 1;
        let key = format!("c{cycle}-{last}");
        assert_eq!(
            get(&s, key.as_bytes(), NOW),
            Some(value(cycle, last)),
            "cycle {cycle}"
        );
        match cycle % 3 {
            // Lowering the limit frees the memory of segments beyond the new budget.
            1 => {
                s.set_memory_limit(limit / 4, NOW);
                s.set_memory_limit(limit, NOW);
            }
            // Heap growth shrinks the segment budget, and so the pool.
            2 => {
                let grown = s.edit(b"hash", NOW, |entry| {
                    let hash = entry.hash_mut(IfMissing::Create)?.expect("created");
                    for f in 0..(limit / 2 / 1000) as u32 {
                        hash.set(format!("f{f}").as_bytes(), &value(cycle, f), false);
                    }
                    Ok::<(), Outcome>(())
                });
                assert_eq!(grown, Ok(()), "cycle {cycle}");
            }
            _ => {}
        }
        assert_eq!(
            s.apply(Mutation::FlushAll { at_ms: None }, NOW),
            Outcome::Flushed
        );
        // Nothing of this cycle is readable after the flush, in reused segments or not.
        assert_eq!(get(&s, key.as_bytes(), NOW), None, "cycle {cycle}");
        assert_eq!(get(&s, b"large", NOW), None, "cycle {cycle}");
    }
    // The highest id handed out is the peak of segments in use at once: the budget, the
    // writers' overdraw and one large value's chunks, never more.
    let highest = s.segments.highest_id() as usize;
    let bound = budget + OVERDRAW + 3;
    assert!(highest <= bound, "highest id {highest} > {bound}");
    set(&s, b"after", b"v", Expiry::Never, NOW);
    assert_eq!(get(&s, b"after", NOW), Some(b"v".to_vec()));
}

/// RANDOMKEY draws each key about as often as any other: the shard is drawn by its share of
/// the keys, not by the run of empty shards before it (which made some keys rare and others
/// several times as likely as their share).
#[test]
fn random_keys_are_drawn_in_proportion_from_every_shard() {
    let store = store_with(64 << 20, EvictionPolicy::AllKeysLru);
    const KEYS: usize = 16;
    const DRAWS: usize = 4000;
    for k in 0..KEYS {
        set(&store, format!("k{k}").as_bytes(), b"v", Expiry::Never, NOW);
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut drawn = std::collections::HashMap::<Vec<u8>, usize>::new();
    for _ in 0..DRAWS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *drawn
            .entry(store.random_key(seed, NOW).unwrap())
            .or_default() += 1;
    }
    // Each key's fair share is 250 draws; allow half to double that.
    let fair = DRAWS / KEYS;
    assert_eq!(drawn.len(), KEYS, "{drawn:?}");
    assert!(
        drawn.values().all(|&n| n >= fair / 2 && n <= fair * 2),
        "{drawn:?}"
    );
}
