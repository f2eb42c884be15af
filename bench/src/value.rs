//! Values the generator writes, and the check that a value read back is one of them.
//!
//! Owns [`Values`] and [`ValueKind`]: a value is a pure function of (seed, key index, version).
//! It carries the version as [`HEADER`] lowercase hex digits (at offset 0 for `random` values,
//! inside the object for `json` ones); its length is fixed or drawn from the range by hashing
//! (seed, key, version); the rest comes from the same hash: printable random filler (`random`,
//! incompressible), or JSON records with repeated field names and varied values (`json`, as
//! compressible as typical API payloads). So `--verify` costs one regeneration and a compare, with
//! no table of what was written, and a value of the wrong key, a truncated or corrupted value, or
//! one from a run with another seed fails.
//! Invariant: `min_size <= max_size`; verification needs `min_size >= HEADER` (`random`) or
//! `min_size >= JSON_MIN` (`json`, which the flags enforce for every json run).

use crate::decimal::push_u64;
use crate::rng::{mix3, Rng};

/// Bytes of the version header at the start of every value.
pub const HEADER: usize = 8;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Why a value read back is not one we wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Too short to carry the version header.
    #[error("value of {0} bytes is shorter than the {HEADER}-byte version header")]
    TooShort(usize),
    /// The header is not a hex version.
    #[error("value header {0:?} is not a hex version")]
    BadHeader(String),
    /// The bytes differ from what (key, version) generates.
    #[error(
        "value for key {key} version {version} differs from what was written ({len} bytes read; \
         values verify only under the --seed and --value-size that wrote them)"
    )]
    Mismatch { key: u64, version: u32, len: usize },
}

/// Smallest `json` value: the object with its version and room for a record or padding.
pub const JSON_MIN: usize = 64;

/// `{"v":"` before the version header of a `json` value.
const JSON_OPEN: &[u8] = b"{\"v\":\"";
/// After the version header, before the first record.
const JSON_RECORDS: &[u8] = b"\",\"records\":[";
/// The end of every `json` value.
const JSON_CLOSE: &[u8] = b"]}";

/// What the bytes of a value look like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// Version header, then random printable bytes (does not compress).
    #[default]
    Random,
    /// A JSON object `{"v":"<version>","records":[{...},...]}` of user-like records: the same
    /// field names in every record, values drawn from word lists and numbers, padded to the size
    /// with spaces before the closing `]}` (compresses like real JSON payloads, about 3-5x).
    Json,
}

/// The value generator and verifier of one run.
#[derive(Debug, Clone)]
pub struct Values {
    seed: u64,
    min_size: usize,
    max_size: usize,
    kind: ValueKind,
}

impl Values {
    /// Values of `min_size..=max_size` bytes under `seed`.
    pub fn new(seed: u64, min_size: usize, max_size: usize) -> Self {
        Values {
            seed,
            min_size,
            max_size: max_size.max(min_size),
            kind: ValueKind::Random,
        }
    }

    /// The same sizes and seed, with values of `kind`.
    pub fn with_kind(self, kind: ValueKind) -> Self {
        Values { kind, ..self }
    }

    /// Where the version header of a value of `len` bytes starts.
    fn header_at(&self, len: usize) -> usize {
        if self.kind == ValueKind::Json && len >= JSON_MIN {
            JSON_OPEN.len()
        } else {
            0
        }
    }

    /// The length of the value of (key, version).
    pub fn size(&self, key: u64, version: u32) -> usize {
        if self.min_size == self.max_size {
            return self.min_size;
        }
        let span = (self.max_size - self.min_size + 1) as u64;
        self.min_size + (mix3(self.seed ^ 0x5157, key, u64::from(version)) % span) as usize
    }

    /// Appends the value of (key, version) to `out`.
    pub fn write(&self, out: &mut Vec<u8>, key: u64, version: u32) {
        let size = self.size(key, version);
        if self.header_at(size) > 0 {
            self.write_json(out, size, key, version);
            return;
        }
        let start = out.len();
        let header = format_header(version);
        out.extend_from_slice(&header[..size.min(HEADER)]);
        let mut rng = Rng::new(mix3(self.seed, key, u64::from(version)));
        let mut remaining = size.saturating_sub(HEADER);
        while remaining > 0 {
            let bits = rng.next_u64();
            let take = remaining.min(8);
            for i in 0..take {
                out.push(ALPHABET[((bits >> (i * 8)) & 63) as usize]);
            }
            remaining -= take;
        }
        debug_assert_eq!(out.len() - start, size);
    }

    /// Appends a `json` value of exactly `size >= JSON_MIN` bytes for (key, version).
    fn write_json(&self, out: &mut Vec<u8>, size: usize, key: u64, version: u32) {
        let start = out.len();
        out.extend_from_slice(JSON_OPEN);
        out.extend_from_slice(&format_header(version));
        out.extend_from_slice(JSON_RECORDS);
        let body_end = start + size - JSON_CLOSE.len();
        let mut rng = Rng::new(mix3(self.seed ^ 0x150e, key, u64::from(version)));
        let mut record = Vec::with_capacity(512);
        let mut first = true;
        loop {
            record.clear();
            if !first {
                record.push(b',');
            }
            json_record(&mut record, &mut rng);
            if out.len() + record.len() > body_end {
                break;
            }
            out.extend_from_slice(&record);
            first = false;
        }
        out.resize(body_end, b' ');
        out.extend_from_slice(JSON_CLOSE);
        debug_assert_eq!(out.len() - start, size);
    }

    /// Checks that `value` is what this run writes for `key` at the version in its header.
    /// `scratch` is reused to avoid an allocation per check.
    pub fn verify(&self, key: u64, value: &[u8], scratch: &mut Vec<u8>) -> Result<(), VerifyError> {
        let at = self.header_at(value.len());
        if value.len() < at + HEADER {
            return Err(VerifyError::TooShort(value.len()));
        }
        let header = &value[at..at + HEADER];
        let version = parse_header(header)
            .ok_or_else(|| VerifyError::BadHeader(String::from_utf8_lossy(header).into_owned()))?;
        scratch.clear();
        self.write(scratch, key, version);
        if scratch.as_slice() == value {
            Ok(())
        } else {
            Err(VerifyError::Mismatch {
                key,
                version,
                len: value.len(),
            })
        }
    }
}

const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yara",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Jones", "Garcia", "Muller", "Rossi", "Dubois", "Silva", "Novak", "Kowalski",
    "Tanaka", "Kim", "Nguyen", "Larsen", "Okafor", "Haddad", "Costa",
];
const CITIES: &[&str] = &[
    "Berlin", "Paris", "Lisbon", "Oslo", "Madrid", "Rome", "Vienna", "Prague", "Dublin", "Warsaw",
    "Austin", "Denver", "Toronto", "Osaka", "Seoul", "Lima", "Nairobi", "Sydney",
];
const STATUSES: &[&str] = &["active", "pending", "suspended", "deleted", "trial"];
const TAGS: &[&str] = &[
    "red",
    "green",
    "blue",
    "sale",
    "new",
    "vip",
    "beta",
    "eu",
    "us",
    "mobile",
    "web",
    "api",
    "newsletter",
    "returning",
];
const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
];

fn pick<'a>(rng: &mut Rng, list: &[&'a str]) -> &'a str {
    list[rng.below(list.len() as u64) as usize]
}

/// `n` zero-padded to `width` digits.
fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let pad = width.saturating_sub(crate::keyspace::digits(n));
    out.resize(out.len() + pad, b'0');
    push_u64(out, n);
}

/// Appends one user-like JSON record (about 250-450 bytes).
fn json_record(out: &mut Vec<u8>, rng: &mut Rng) {
    let first = pick(rng, FIRST_NAMES);
    let last = pick(rng, LAST_NAMES);
    out.extend_from_slice(b"{\"id\":");
    push_u64(out, 1_000_000 + rng.below(9_000_000));
    out.extend_from_slice(b",\"name\":\"");
    out.extend_from_slice(first.as_bytes());
    out.push(b' ');
    out.extend_from_slice(last.as_bytes());
    out.extend_from_slice(b"\",\"email\":\"");
    out.extend_from_slice(first.as_bytes());
    out.push(b'.');
    push_u64(out, rng.below(10_000));
    out.extend_from_slice(b"@example.com\",\"age\":");
    push_u64(out, 18 + rng.below(70));
    out.extend_from_slice(b",\"active\":");
    out.extend_from_slice(if rng.below(4) == 0 { b"false" } else { b"true" });
    out.extend_from_slice(b",\"score\":");
    push_u64(out, rng.below(100));
    out.push(b'.');
    push_padded(out, rng.below(100), 2);
    out.extend_from_slice(b",\"city\":\"");
    out.extend_from_slice(pick(rng, CITIES).as_bytes());
    out.extend_from_slice(b"\",\"status\":\"");
    out.extend_from_slice(pick(rng, STATUSES).as_bytes());
    out.extend_from_slice(b"\",\"tags\":[");
    for i in 0..1 + rng.below(4) {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(pick(rng, TAGS).as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"],\"created_at\":\"20");
    push_u64(out, 15 + rng.below(11));
    out.push(b'-');
    push_padded(out, 1 + rng.below(12), 2);
    out.push(b'-');
    push_padded(out, 1 + rng.below(28), 2);
    out.push(b'T');
    push_padded(out, rng.below(24), 2);
    out.push(b':');
    push_padded(out, rng.below(60), 2);
    out.push(b':');
    push_padded(out, rng.below(60), 2);
    out.extend_from_slice(b"Z\",\"bio\":\"");
    for i in 0..5 + rng.below(20) {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(pick(rng, WORDS).as_bytes());
    }
    out.extend_from_slice(b"\"}");
}

fn format_header(version: u32) -> [u8; HEADER] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut h = [0u8; HEADER];
    for (i, slot) in h.iter_mut().enumerate() {
        *slot = HEX[((version >> (28 - 4 * i)) & 0xf) as usize];
    }
    h
}

fn parse_header(h: &[u8]) -> Option<u32> {
    h.iter().try_fold(0u32, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u32::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_deterministic_and_verify() {
        let v = Values::new(9, 100, 100);
        let mut a = Vec::new();
        let mut b = Vec::new();
        v.write(&mut a, 17, 3);
        v.write(&mut b, 17, 3);
        assert_eq!(a, b);
        assert_eq!(a.len(), 100);
        assert_eq!(&a[..HEADER], b"00000003");
        assert!(a.iter().all(|c| c.is_ascii_graphic()));
        let mut scratch = Vec::new();
        assert_eq!(v.verify(17, &a, &mut scratch), Ok(()));
    }

    #[test]
    fn verify_rejects_wrong_key_corruption_truncation_and_other_seed() {
        let v = Values::new(9, 100, 100);
        let mut a = Vec::new();
        v.write(&mut a, 17, 3);
        let mut s = Vec::new();
        assert!(matches!(
            v.verify(18, &a, &mut s),
            Err(VerifyError::Mismatch { .. })
        ));
        let mut bad = a.clone();
        bad[50] ^= 1;
        assert!(v.verify(17, &bad, &mut s).is_err());
        assert!(v.verify(17, &a[..99], &mut s).is_err());
        assert_eq!(v.verify(17, b"0000", &mut s), Err(VerifyError::TooShort(4)));
        assert!(matches!(
            v.verify(17, b"zzzzzzzzzz", &mut s),
            Err(VerifyError::BadHeader(_))
        ));
        assert!(Values::new(10, 100, 100).verify(17, &a, &mut s).is_err());
    }

    #[test]
    fn ranged_sizes_stay_in_range_and_verify() {
        let v = Values::new(1, 10, 1000);
        let mut s = Vec::new();
        let mut sizes = std::collections::HashSet::new();
        for key in 0..200 {
            let mut out = Vec::new();
            v.write(&mut out, key, 7);
            assert!((10..=1000).contains(&out.len()));
            sizes.insert(out.len());
            v.verify(key, &out, &mut s).unwrap();
        }
        assert!(sizes.len() > 100);
    }

    #[test]
    fn json_values_are_exact_sized_json_and_verify() {
        let v = Values::new(3, JSON_MIN, 20_000).with_kind(ValueKind::Json);
        let mut s = Vec::new();
        for key in 0..50 {
            let mut out = Vec::new();
            v.write(&mut out, key, 5);
            assert_eq!(out.len(), v.size(key, 5));
            assert!(out.starts_with(b"{\"v\":\"00000005\",\"records\":["));
            assert!(out.ends_with(b"]}"));
            assert!(out.iter().all(|c| c.is_ascii_graphic() || *c == b' '));
            let parsed: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(parsed["v"], "00000005");
            v.verify(key, &out, &mut s).unwrap();
            if out.len() > 1000 {
                assert!(parsed["records"].as_array().unwrap().len() > 1);
                assert!(v.verify(key + 1, &out, &mut s).is_err());
            }
        }
        let mut big = Vec::new();
        Values::new(1, 100_000, 100_000)
            .with_kind(ValueKind::Json)
            .write(&mut big, 7, 0);
        assert_eq!(big.len(), 100_000);
        let records = serde_json::from_slice::<serde_json::Value>(&big).unwrap()["records"]
            .as_array()
            .unwrap()
            .len();
        assert!((200..500).contains(&records), "{records} records");
        // The same field names repeat; the values vary.
        let text = String::from_utf8(big).unwrap();
        assert_eq!(text.matches("\"email\":").count(), records);
        let ids: std::collections::HashSet<&str> = text.split("\"id\":").skip(1).collect();
        assert!(ids.len() > records * 9 / 10);
    }

    #[test]
    fn header_round_trips() {
        for ver in [0, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(parse_header(&format_header(ver)), Some(ver));
        }
    }
}
