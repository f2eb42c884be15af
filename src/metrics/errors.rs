//! Error replies by error code, as Redis's `INFO errorstats` (`errorstat_ERR:count=3`) and
//! `total_error_replies` count them.
//!
//! The code is the error's first word (up to a space, at most 32 bytes): `ERR`, `WRONGTYPE`,
//! `NOPERM`... One tally per worker, written only by its worker (the lock is never contended on
//! the hot path, and only taken when a command answered with an error); readers merge them.
//! Like Redis (`ERROR_STATS_NUMBER`), at most 128 distinct codes are tracked: later new codes
//! still count in the total. Never knows a socket or a protocol's framing: the caller hands
//! it the error's text.

use std::collections::BTreeMap;

/// Distinct error codes tracked (Redis's `ERROR_STATS_NUMBER`).
pub const MAX_CODES: usize = 128;
/// The longest code kept.
const MAX_CODE_LEN: usize = 32;

/// One worker's error counts.
#[derive(Debug, Default)]
pub struct ErrorTally {
    inner: parking_lot::Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    by_code: hashbrown::HashMap<Box<[u8]>, u64>,
    total: u64,
}

/// Every worker's counts together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorFigures {
    /// Count per error code, in code order.
    pub by_code: BTreeMap<String, u64>,
    /// Every error reply (`total_error_replies`), tracked code or not.
    pub total: u64,
}

/// The code of an error reply's text (without the leading `-`).
pub fn error_code(text: &[u8]) -> &[u8] {
    let head = &text[..text.len().min(MAX_CODE_LEN)];
    let end = head
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    &head[..end]
}

impl ErrorTally {
    /// Counts one error reply whose text (after `-`) starts with `text`.
    pub fn count(&self, text: &[u8]) {
        let code = error_code(text);
        let mut counts = self.inner.lock();
        counts.total += 1;
        if let Some(count) = counts.by_code.get_mut(code) {
            *count += 1;
        } else if counts.by_code.len() < MAX_CODES && !code.is_empty() {
            counts.by_code.insert(code.into(), 1);
        }
    }

    /// Zeroes the counts (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        *self.inner.lock() = Counts::default();
    }

    /// Merges every worker's counts.
    pub fn merged<'a>(tallies: impl IntoIterator<Item = &'a ErrorTally>) -> ErrorFigures {
        let mut figures = ErrorFigures::default();
        for tally in tallies {
            let counts = tally.inner.lock();
            figures.total += counts.total;
            for (code, count) in &counts.by_code {
                if figures.by_code.len() >= MAX_CODES
                    && !figures
                        .by_code
                        .contains_key(String::from_utf8_lossy(code).as_ref())
                {
                    continue;
                }
                *figures
                    .by_code
                    .entry(String::from_utf8_lossy(code).into_owned())
                    .or_default() += count;
            }
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_first_words_counted_per_code_and_in_total() {
        assert_eq!(error_code(b"ERR syntax error"), b"ERR");
        assert_eq!(error_code(b"WRONGTYPE Operation"), b"WRONGTYPE");
        assert_eq!(error_code(b"NOAUTH"), b"NOAUTH");
        let (a, b) = (ErrorTally::default(), ErrorTally::default());
        a.count(b"ERR one");
        a.count(b"ERR two");
        b.count(b"WRONGTYPE x");
        let merged = ErrorTally::merged([&a, &b]);
        assert_eq!(merged.total, 3);
        assert_eq!(merged.by_code["ERR"], 2);
        assert_eq!(merged.by_code["WRONGTYPE"], 1);
        a.reset();
        assert_eq!(ErrorTally::merged([&a, &b]).total, 1);
    }

    #[test]
    fn at_most_128_codes_are_tracked_but_every_error_is_totalled() {
        let tally = ErrorTally::default();
        for i in 0..200 {
            tally.count(format!("CODE{i} text").as_bytes());
        }
        tally.count(b"CODE0 again");
        let merged = ErrorTally::merged([&tally]);
        assert_eq!(merged.by_code.len(), MAX_CODES);
        assert_eq!(merged.total, 201);
        assert_eq!(merged.by_code["CODE0"], 2);
        assert!(!merged.by_code.contains_key("CODE150"));
    }
}
