//! TTL buckets: items whose time to live is alike share segments.
//!
//! Bucket 0 holds items that never expire. The others split time-to-live on a log scale, four
//! buckets per power of two of seconds (1 s, 2 s, 3 s, 4–5 s, 6–7 s, 8–9 s, …, up to 2^32 s),
//! so the items of one segment expire within a factor of 1.25 of each other: once the latest
//! expiry of a segment has passed, the whole segment is dropped without looking at its
//! neighbours (the reclaimer still walks it once to unlink its index entries).
//!
//! Invariant: the bucket depends only on the time to live at the moment of writing.

/// Buckets: 0 for "never", then 4 per power of two of seconds.
pub(crate) const BUCKET_COUNT: usize = 1 + 4 * 33;
pub(crate) const NEVER: u32 = 0;

/// The bucket for an item expiring at `expiry_ms` (0 = never), written at `now_ms`.
pub(crate) fn bucket_of(expiry_ms: u64, now_ms: u64) -> u32 {
    if expiry_ms == 0 {
        return NEVER;
    }
    let secs = expiry_ms
        .saturating_sub(now_ms)
        .div_ceil(1000)
        .clamp(1, u32::MAX as u64);
    let power = 63 - secs.leading_zeros(); // secs >= 1
    let quarter = if power >= 2 {
        (secs >> (power - 2)) & 0b11
    } else {
        // 1, 2, 3 s: one bucket each.
        secs & 0b11
    };
    1 + 4 * power + quarter as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_by_ttl_and_in_range() {
        let now = 1_000_000;
        assert_eq!(bucket_of(0, now), NEVER);
        let mut last = 0;
        for secs in [
            1u64,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            10,
            60,
            3600,
            86_400,
            30 * 86_400,
            1 << 31,
        ] {
            let bucket = bucket_of(now + secs * 1000, now);
            assert!(bucket >= last, "{secs}");
            assert!((bucket as usize) < BUCKET_COUNT);
            last = bucket;
        }
        assert_eq!(bucket_of(now - 5, now), bucket_of(now + 1000, now));
        assert!((bucket_of(u64::MAX, 0) as usize) < BUCKET_COUNT);
    }
}
