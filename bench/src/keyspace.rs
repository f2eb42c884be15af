//! The key space: which key index a request picks, and how an index becomes key bytes.
//!
//! Owns [`KeyDist`] (uniform, or Zipf(s) by Hörmann and Derflinger's rejection-inversion method,
//! O(1) per sample without a table, so key spaces of millions cost nothing to set up) and the key
//! format. Invariants: indexes are always in `0..n`; index 0 is the most popular under Zipf; a key
//! is a one-byte prefix then the index in decimal, zero-padded to the requested key size, so
//! [`parse_key`] inverts [`write_key`] and keys of different workloads never collide.

/// How key indexes are drawn.
#[derive(Debug, Clone)]
pub enum KeyDist {
    /// Every index in `0..n` equally likely.
    Uniform { n: u64 },
    /// Index `k-1` drawn with probability proportional to `1 / k^s`.
    Zipf(Zipf),
}

impl KeyDist {
    /// A uniform distribution over `0..n` (`n >= 1`).
    pub fn uniform(n: u64) -> Self {
        KeyDist::Uniform { n: n.max(1) }
    }

    /// Draws one key index.
    pub fn sample(&self, rng: &mut crate::rng::Rng) -> u64 {
        match self {
            KeyDist::Uniform { n } => rng.below(*n),
            KeyDist::Zipf(z) => z.sample(rng) - 1,
        }
    }
}

/// Zipf distribution over ranks `1..=n` with exponent `s > 0`, sampled by rejection-inversion
/// (W. Hörmann, G. Derflinger, "Rejection-inversion to generate variates from monotone discrete
/// distributions", 1996), as in Apache Commons RNG's `RejectionInversionZipfSampler`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// `n >= 1` elements, exponent `s > 0` (finite).
    pub fn new(n: u64, s: f64) -> Self {
        let n = n.max(1) as f64;
        let mut z = Zipf {
            n,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// Draws a rank in `1..=n`.
    pub fn sample(&self, rng: &mut crate::rng::Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.next_f64() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// `(x^(1-s) - 1) / (1 - s)`, continuous at `s = 1` (where it is `ln x`).
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1+x)/x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1)/x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

/// Number of decimal digits of `n` (at least 1).
pub fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Appends the key for `index`: `prefix`, then `index` in decimal zero-padded so the key is
/// `size` bytes (longer if the index needs more digits).
pub fn write_key(out: &mut Vec<u8>, prefix: u8, index: u64, size: usize) {
    out.push(prefix);
    let d = digits(index);
    let pad = size.saturating_sub(1 + d);
    out.resize(out.len() + pad, b'0');
    let start = out.len();
    out.resize(start + d, b'0');
    let mut v = index;
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// The index of a key written by [`write_key`] with `prefix`, or `None` if it is not one.
pub fn parse_key(key: &[u8], prefix: u8) -> Option<u64> {
    let (&first, rest) = key.split_first()?;
    if first != prefix || rest.is_empty() {
        return None;
    }
    rest.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn frequencies(n: u64, s: f64, samples: usize) -> Vec<f64> {
        let z = KeyDist::Zipf(Zipf::new(n, s));
        let mut rng = Rng::new(42);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..samples {
            let k = z.sample(&mut rng);
            assert!(k < n);
            counts[k as usize] += 1;
        }
        counts.iter().map(|&c| c as f64 / samples as f64).collect()
    }

    fn expected(n: u64, s: f64) -> Vec<f64> {
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }

    #[test]
    fn zipf_matches_the_theoretical_pmf() {
        for &s in &[0.5, 0.99, 1.0, 1.2] {
            let got = frequencies(100, s, 400_000);
            let want = expected(100, s);
            for k in 0..10 {
                let err = (got[k] - want[k]).abs();
                assert!(
                    err < 0.004,
                    "s={s} rank {k}: got {} want {}",
                    got[k],
                    want[k]
                );
            }
            // Monotone popularity over coarse buckets.
            let bucket = |r: std::ops::Range<usize>| got[r].iter().sum::<f64>();
            assert!(bucket(0..10) > bucket(10..20) && bucket(10..20) > bucket(90..100));
        }
    }

    #[test]
    fn zipf_covers_one_and_n_and_handles_tiny_spaces() {
        let got = frequencies(1, 1.0, 1000);
        assert_eq!(got, vec![1.0]);
        let got = frequencies(3, 0.01, 30_000);
        assert!(got.iter().all(|&f| f > 0.3 && f < 0.37), "{got:?}");
    }

    #[test]
    fn uniform_is_flat() {
        let d = KeyDist::uniform(4);
        let mut rng = Rng::new(1);
        let mut c = [0u32; 4];
        for _ in 0..40_000 {
            c[d.sample(&mut rng) as usize] += 1;
        }
        assert!(c.iter().all(|&x| (9_500..10_500).contains(&x)), "{c:?}");
    }

    #[test]
    fn keys_round_trip_and_pad() {
        let mut out = Vec::new();
        write_key(&mut out, b'k', 42, 8);
        assert_eq!(out, b"k0000042");
        assert_eq!(parse_key(&out, b'k'), Some(42));
        assert_eq!(parse_key(&out, b'h'), None);
        out.clear();
        write_key(&mut out, b'k', 123_456, 3);
        assert_eq!(out, b"k123456");
        out.clear();
        write_key(&mut out, b'k', 0, 32);
        assert_eq!(out.len(), 32);
        assert_eq!(parse_key(&out, b'k'), Some(0));
        assert_eq!(parse_key(b"k12x", b'k'), None);
        assert_eq!(parse_key(b"k", b'k'), None);
        assert_eq!(parse_key(b"k99999999999999999999", b'k'), None);
    }
}
