//! Values the generator writes, and the check that a value read back is one of them.
//!
//! Owns [`Values`]: a value is a pure function of (seed, key index, version). Its first
//! [`HEADER`] bytes are the version in lowercase hex; its length is fixed or drawn from the range
//! by hashing (seed, key, version); the rest is printable filler from the same hash. So
//! `--verify` costs one regeneration and a compare, with no table of what was written, and a value
//! of the wrong key, a truncated or corrupted value, or one from a run with another seed fails.
//! Invariant: `min_size <= max_size`; verification needs `min_size >= HEADER`.

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

/// The value generator and verifier of one run.
#[derive(Debug, Clone)]
pub struct Values {
    seed: u64,
    min_size: usize,
    max_size: usize,
}

impl Values {
    /// Values of `min_size..=max_size` bytes under `seed`.
    pub fn new(seed: u64, min_size: usize, max_size: usize) -> Self {
        Values {
            seed,
            min_size,
            max_size: max_size.max(min_size),
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

    /// Checks that `value` is what this run writes for `key` at the version in its header.
    /// `scratch` is reused to avoid an allocation per check.
    pub fn verify(&self, key: u64, value: &[u8], scratch: &mut Vec<u8>) -> Result<(), VerifyError> {
        if value.len() < HEADER {
            return Err(VerifyError::TooShort(value.len()));
        }
        let version = parse_header(&value[..HEADER]).ok_or_else(|| {
            VerifyError::BadHeader(String::from_utf8_lossy(&value[..HEADER]).into_owned())
        })?;
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
    fn header_round_trips() {
        for ver in [0, 1, 0xdead_beef, u32::MAX] {
            assert_eq!(parse_header(&format_header(ver)), Some(ver));
        }
    }
}
