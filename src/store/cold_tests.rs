//! Hot raw, cold packed: the cold pass, promotion on read, and that every size of value comes
//! back whole in every form, also while the pass runs beside readers and writers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::engine_tests::COLD_MS;
use super::tests::{get, set, NOW};
use super::*;

fn store(limit: usize, segment_size: usize, item_size_max: usize) -> Store {
    Store::new(StoreConfig {
        memory_limit_bytes: limit,
        item_size_max,
        segment_size,
        ..StoreConfig::default()
    })
}

/// JSON-like records, different for every seed, compressible about 4x.
fn json(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = seed;
    while out.len() < len {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(
            format!(
                r#"{{"id":{},"name":"user{}","active":{},"score":{}}},"#,
                i >> 40,
                (i >> 20) & 0xffff,
                i & 1 == 0,
                (i >> 8) & 0xfff
            )
            .as_bytes(),
        );
    }
    out.truncate(len);
    out
}

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

/// A read that does not count as a use (so it never promotes).
fn peek(store: &Store, key: &[u8], now: u64) -> Option<Vec<u8>> {
    store.get(key, now, ReadOptions::default(), |view| {
        view.map(|v| v.value().to_vec())
    })
}

/// Runs the cold pass until it has nothing left to do.
fn pack_all(store: &Store, now: u64) -> usize {
    let mut total = 0;
    loop {
        let segments = store.stats().compress_cold_segments;
        total += store.compress_cold(now);
        if store.stats().compress_cold_segments == segments {
            return total;
        }
    }
}

#[test]
fn a_bulk_loaded_cold_dataset_ends_up_compressed_and_gives_its_memory_back() {
    let s = store(256 << 20, 256 << 10, 1 << 20);
    let n = 600u64;
    for i in 0..n {
        let key = format!("doc:{i}");
        set(&s, key.as_bytes(), &json(20_000, i), Expiry::Never, NOW);
    }
    let raw = s.stats();
    assert_eq!(raw.compressed_items, 0, "written raw: {raw:?}");
    assert_eq!(pack_all(&s, NOW + 1000), 0, "nothing is cold yet");
    assert_eq!(pack_all(&s, NOW + COLD_MS), n as usize);
    let packed = s.stats();
    assert_eq!(packed.compressed_items, n, "{packed:?}");
    assert!(packed.bytes * 3 < raw.bytes, "{raw:?}\n{packed:?}");
    assert!(
        packed.segments_allocated * 3 < raw.segments_allocated,
        "memory given back: {raw:?}\n{packed:?}"
    );
    for i in 0..n {
        let key = format!("doc:{i}");
        assert_eq!(
            peek(&s, key.as_bytes(), NOW + COLD_MS),
            Some(json(20_000, i))
        );
    }
    assert_eq!(s.stats().compressed_items, n, "peeks do not promote");
    assert!(s.stats().compress_time_us > 0);
}

#[test]
fn a_hot_value_is_decompressed_once_and_stored_raw_again() {
    let s = store(64 << 20, 1 << 20, 1 << 20);
    let value = json(50_000, 7);
    set(&s, b"hot", &value, Expiry::AtMs(NOW + 3_600_000), NOW);
    assert_eq!(s.compress_cold(NOW + COLD_MS), 1);
    assert_eq!(s.stats().compressed_items, 1);
    let now = NOW + COLD_MS;
    for _ in 0..5 {
        assert_eq!(get(&s, b"hot", now), Some(value.clone()));
    }
    let stats = s.stats();
    assert_eq!(stats.decompressions, 1, "{stats:?}");
    assert_eq!(stats.compress_promoted, 1, "{stats:?}");
    assert_eq!(stats.compressed_items, 0, "{stats:?}");
    // Its expiry, cas and flags survived both rewrites.
    s.get(b"hot", now, ReadOptions::default(), |view| {
        let view = view.expect("present");
        assert_eq!(view.expiry(), Expiry::AtMs(NOW + 3_600_000));
    });
    // Read while its segment is in use it stays raw; unread, it turns cold again.
    assert_eq!(s.compress_cold(now + 1000), 0);
    assert_eq!(s.compress_cold(now + COLD_MS), 1);
    assert_eq!(s.stats().compressed_items, 1);
}

#[test]
fn incompressible_values_are_marked_and_never_tried_again() {
    let s = store(64 << 20, 1 << 20, 4 << 20);
    let mut gzip = b"\x1f\x8b\x08\x00".to_vec();
    gzip.extend(json(30_000, 3));
    set(&s, b"gz", &gzip, Expiry::Never, NOW);
    set(&s, b"noise", &noise(30_000, 5), Expiry::Never, NOW);
    set(&s, b"big-noise", &noise(2 << 20, 6), Expiry::Never, NOW);
    assert_eq!(pack_all(&s, NOW + COLD_MS), 3);
    let stats = s.stats();
    assert_eq!(stats.compress_incompressible, 3, "{stats:?}");
    assert_eq!(stats.compressed_items, 0, "{stats:?}");
    let segments = stats.compress_cold_segments;
    assert_eq!(pack_all(&s, NOW + 10 * COLD_MS), 0);
    let stats = s.stats();
    assert_eq!(stats.compress_incompressible, 3, "not retried: {stats:?}");
    assert_eq!(stats.compress_cold_segments, segments, "not even visited");
    assert_eq!(get(&s, b"gz", NOW + 10 * COLD_MS), Some(gzip));
    assert_eq!(
        get(&s, b"noise", NOW + 10 * COLD_MS),
        Some(noise(30_000, 5))
    );
    assert_eq!(
        get(&s, b"big-noise", NOW + 10 * COLD_MS),
        Some(noise(2 << 20, 6))
    );
    assert_eq!(s.stats().decompressions, 0, "verbatim values are borrowed");
}

#[test]
fn every_size_comes_back_raw_packed_verbatim_and_promoted() {
    let s = store(256 << 20, 1 << 20, 4 << 20);
    let sizes = [0, 1, 100, 4095, 4096, 10_000, 100_000, 1_000_000, 3_000_000];
    let mut values = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        values.push((format!("json:{len}"), json(len, i as u64)));
        values.push((format!("noise:{len}"), noise(len, i as u64 + 1)));
    }
    for (key, value) in &values {
        set(&s, key.as_bytes(), value, Expiry::Never, NOW);
        assert_eq!(
            peek(&s, key.as_bytes(), NOW).as_ref(),
            Some(value),
            "{key} raw"
        );
    }
    let now = NOW + COLD_MS;
    assert_eq!(pack_all(&s, now), 10, "{:?}", s.stats());
    assert_eq!(s.stats().compressed_items, 5);
    for (key, value) in &values {
        assert_eq!(
            peek(&s, key.as_bytes(), now).as_ref(),
            Some(value),
            "{key} packed"
        );
        assert_eq!(
            get(&s, key.as_bytes(), now).as_ref(),
            Some(value),
            "{key} promoted"
        );
        assert_eq!(
            get(&s, key.as_bytes(), now).as_ref(),
            Some(value),
            "{key} raw again"
        );
    }
    let stats = s.stats();
    assert_eq!(stats.compressed_items, 0, "{stats:?}");
    assert_eq!(stats.compress_promoted, 5, "{stats:?}");
    // Deleting everything leaves nothing counted.
    for (key, _) in &values {
        s.apply(
            Mutation::Unlink {
                key: key.as_bytes(),
            },
            now,
        );
    }
    let stats = s.stats();
    assert_eq!(
        (stats.bytes, stats.compressed_saved_bytes),
        (0, 0),
        "{stats:?}"
    );
}

/// The cold pass moves values while readers and writers work on the same keys under a small
/// limit (eviction and compaction running too): every read sees a whole value.
#[test]
fn values_stay_whole_while_the_cold_pass_runs_beside_readers_and_writers() {
    let s = Arc::new(store(8 << 20, 64 << 10, 1 << 20));
    let stop = Arc::new(AtomicBool::new(false));
    let keys = 64u64;
    let value_of = |key: u64, version: u64| {
        let len = [5_000usize, 20_000, 40_000, 200_000][(key % 4) as usize];
        let mut v = json(len, key * 1000 + version);
        v[..16].copy_from_slice(format!("{key:08}{version:08}").as_bytes());
        v
    };
    let packer = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut now = NOW;
            while !stop.load(Ordering::Relaxed) {
                now += COLD_MS;
                s.compress_cold(now);
            }
        })
    };
    let workers: Vec<_> = (0..3u64)
        .map(|worker| {
            let s = s.clone();
            std::thread::spawn(move || {
                for round in 0..400u64 {
                    let key = (round * 7 + worker * 13) % keys;
                    let name = format!("k{key}");
                    if worker == 0 {
                        set(
                            &s,
                            name.as_bytes(),
                            &value_of(key, round),
                            Expiry::Never,
                            NOW,
                        );
                    } else if let Some(v) = get(&s, name.as_bytes(), NOW + round) {
                        let version: u64 = std::str::from_utf8(&v[8..16])
                            .expect("digits")
                            .parse()
                            .expect("a version");
                        assert_eq!(v, value_of(key, version), "k{key} v{version}");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("no reader saw a torn value");
    }
    stop.store(true, Ordering::Relaxed);
    packer.join().expect("the cold pass did not panic");
    assert!(s.stats().compress_cold_segments > 0, "{:?}", s.stats());
}
