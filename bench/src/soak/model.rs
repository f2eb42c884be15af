//! What the soak writes and what it may read back: self-checking values and, per lane, the
//! state every key must be in.
//!
//! Owns [`SoakValues`] (value bytes as a pure function of key, field and version, with the
//! version and a checksum in the first 8 bytes) and [`Model`] (per key: what the last
//! acknowledged write left there). A lane is the only writer of its keys and keeps at most one
//! request per key in flight, so when a reply arrives every earlier request on that key has
//! been answered and the model says exactly what the server may hold:
//! - a string read returns the last value written, or a miss (evicted, expired); never an
//!   older or deleted value, never a value after a miss without a write in between;
//! - a counter's incr returns the last value plus delta, or (memcached) NOT_FOUND, or (RESP,
//!   which recreates from 0) delta;
//! - a hash field or sorted-set member reads back as last written unless the whole key went.
//!
//! A miss moves a key to `Absent` (it cannot come back without a write). A value that is not
//! the expected one is a [`Wrong`], described with what its header and checksum say.

use std::collections::HashMap;

use crate::rng::{mix, mix3, Rng};

/// Bytes of the header: version (u32 big-endian) then checksum (u32 big-endian).
pub const HEADER: usize = 8;
/// How late (after its TTL) a value may still be served: the server's clock has one-second
/// granularity for relative TTLs and replies take time to arrive.
pub const TTL_SLACK_MS: u64 = 3_000;

const WORDS: &[&[u8]] = &[
    b"lorem ",
    b"ipsum ",
    b"dolor ",
    b"sit ",
    b"amet ",
    b"consectetur ",
    b"adipiscing ",
    b"elit ",
    b"sed ",
    b"do ",
    b"eiusmod ",
    b"tempor ",
    b"incididunt ",
    b"labore ",
    b"magna ",
    b"aliqua ",
];

/// Value generator of one soak run.
#[derive(Debug, Clone)]
pub struct SoakValues {
    seed: u64,
    min: usize,
    max: usize,
}

/// Checksum of `bytes` under `id` (the key and field) and `version`: 8 bytes a step.
fn checksum(seed: u64, id: u64, version: u32, bytes: &[u8]) -> u32 {
    let mut h = mix3(
        seed ^ 0xc4ec,
        id,
        (u64::from(version) << 32) | bytes.len() as u64,
    );
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = mix(h ^ u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = mix(h ^ u64::from_le_bytes(tail));
    (h ^ (h >> 32)) as u32
}

impl SoakValues {
    /// Values of `min..=max` bytes (`min >= HEADER`), sizes log-uniform: as many of 10-100 B
    /// as of 10-100 KB for the default range.
    pub fn new(seed: u64, min: usize, max: usize) -> Self {
        let min = min.max(HEADER);
        SoakValues {
            seed,
            min,
            max: max.max(min),
        }
    }

    /// The length of the value of (`id`, `version`).
    pub fn size(&self, id: u64, version: u32) -> usize {
        if self.min == self.max {
            return self.min;
        }
        let u =
            (mix3(self.seed ^ 0x512e, id, u64::from(version)) >> 11) as f64 / (1u64 << 53) as f64;
        let (lo, hi) = ((self.min as f64).ln(), ((self.max + 1) as f64).ln());
        ((lo + u * (hi - lo)).exp() as usize).clamp(self.min, self.max)
    }

    /// Whether the value of (`id`, `version`) is text that compresses (about half are).
    pub fn compressible(&self, id: u64, version: u32) -> bool {
        mix3(self.seed ^ 0xc0de, id, u64::from(version)) & 1 == 0
    }

    /// Appends the value of (`id`, `version`) to `out`: header, then random bytes (any of the
    /// 256, CR and LF included) or repeated words.
    pub fn write(&self, out: &mut Vec<u8>, id: u64, version: u32) {
        let size = self.size(id, version);
        let start = out.len();
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        let mut rng = Rng::new(mix3(self.seed, id, u64::from(version)));
        if self.compressible(id, version) {
            while out.len() - start < size {
                let word = WORDS[rng.below(WORDS.len() as u64) as usize];
                let room = size - (out.len() - start);
                out.extend_from_slice(&word[..word.len().min(room)]);
            }
        } else {
            while out.len() - start < size {
                let bits = rng.next_u64().to_le_bytes();
                let room = size - (out.len() - start);
                out.extend_from_slice(&bits[..room.min(8)]);
            }
        }
        let sum = checksum(self.seed, id, version, &out[start + HEADER..]);
        out[start + 4..start + HEADER].copy_from_slice(&sum.to_be_bytes());
    }

    /// Checks `value` against the value of (`id`, `expected` version); `scratch` is reused.
    pub fn check(
        &self,
        id: u64,
        expected: u32,
        value: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), String> {
        scratch.clear();
        self.write(scratch, id, expected);
        if scratch.as_slice() == value {
            return Ok(());
        }
        Err(format!(
            "expected version {expected} ({} bytes), got {}",
            scratch.len(),
            self.describe(id, value)
        ))
    }

    /// What a value read back claims to be: its version, and whether its checksum holds.
    pub fn describe(&self, id: u64, value: &[u8]) -> String {
        if value.len() < HEADER {
            return format!("{} bytes, too short for the header", value.len());
        }
        let version = u32::from_be_bytes(value[..4].try_into().expect("4 bytes"));
        let sum = u32::from_be_bytes(value[4..HEADER].try_into().expect("4 bytes"));
        let intact = checksum(self.seed, id, version, &value[HEADER..]) == sum;
        format!(
            "{} bytes claiming version {version}, checksum {}",
            value.len(),
            if intact {
                "intact (a stale or resurrected value of this key)"
            } else {
                "WRONG (corrupted, truncated or another key's value)"
            }
        )
    }
}

/// What kind of data a key holds; fixed by its index (`index % 10`: 0-6 string, 7 counter,
/// 8 hash, 9 sorted set), so a key never changes type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Str,
    Counter,
    Hash,
    Zset,
}

impl KeyType {
    pub fn of(index: u64) -> KeyType {
        match index % 10 {
            7 => KeyType::Counter,
            8 => KeyType::Hash,
            9 => KeyType::Zset,
            _ => KeyType::Str,
        }
    }

    /// The letter that starts the key's last part.
    pub fn letter(self) -> u8 {
        match self {
            KeyType::Str => b's',
            KeyType::Counter => b'n',
            KeyType::Hash => b'h',
            KeyType::Zset => b'z',
        }
    }
}

/// Fields of a hash (members of a sorted set) the soak uses.
pub const FIELDS: u32 = 8;

/// The last acknowledged state of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Never written, deleted, or seen missing since the last write.
    Absent,
    /// A string value of this version, expiring (unix ms) if it had a TTL.
    Str {
        version: u32,
        expires_ms: Option<u64>,
    },
    /// A counter holding this number.
    Counter(u64),
    /// Hash fields or sorted-set members with their versions (the value or score written).
    Fields(HashMap<u32, u32>),
    /// After an error reply: anything well-formed goes until the next acknowledged write.
    Unknown,
}

/// A lane's keys and their states.
#[derive(Debug, Default)]
pub struct Model {
    states: HashMap<u64, State>,
}

/// A reply that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrong(pub String);

/// Outcome of one string read.
pub enum Read<'a> {
    Miss,
    Value(&'a [u8]),
}

impl Model {
    pub fn state(&self, index: u64) -> &State {
        self.states.get(&index).unwrap_or(&State::Absent)
    }

    fn set(&mut self, index: u64, state: State) {
        if state == State::Absent {
            self.states.remove(&index);
        } else {
            self.states.insert(index, state);
        }
    }

    /// A string or counter write was acknowledged (`None` = it failed: state unknown).
    pub fn written(&mut self, index: u64, state: Option<State>) {
        self.set(index, state.unwrap_or(State::Unknown));
    }

    /// A delete was answered: `found` says whether the server had the key.
    pub fn deleted(&mut self, index: u64, found: bool) -> Result<(), Wrong> {
        let was = self.states.remove(&index).unwrap_or(State::Absent);
        if found && was == State::Absent {
            return Err(Wrong(
                "delete found a key that was deleted, missed or never written".into(),
            ));
        }
        Ok(())
    }

    /// A string read was answered at `now_ms` (unix ms).
    pub fn read_str(
        &mut self,
        index: u64,
        id: u64,
        read: Read<'_>,
        now_ms: u64,
        values: &SoakValues,
        scratch: &mut Vec<u8>,
    ) -> Result<(), Wrong> {
        let state = self.state(index).clone();
        let Read::Value(v) = read else {
            // A miss is always allowed (eviction, expiry); the key cannot come back unwritten.
            if state != State::Unknown {
                self.set(index, State::Absent);
            }
            return Ok(());
        };
        match state {
            State::Absent => Err(Wrong(format!(
                "read a value of a key that was deleted or missed: {}",
                values.describe(id, v)
            ))),
            State::Str {
                version,
                expires_ms,
            } => {
                values.check(id, version, v, scratch).map_err(Wrong)?;
                match expires_ms {
                    Some(at) if now_ms > at + TTL_SLACK_MS => Err(Wrong(format!(
                        "value served {} ms after its TTL",
                        now_ms - at
                    ))),
                    _ => Ok(()),
                }
            }
            State::Unknown => Ok(()),
            other => Err(Wrong(format!("model holds {other:?} for a string key"))),
        }
    }

    /// A counter read (GET) was answered.
    pub fn read_counter(&mut self, index: u64, read: Read<'_>) -> Result<(), Wrong> {
        let state = self.state(index).clone();
        let Read::Value(v) = read else {
            if state != State::Unknown {
                self.set(index, State::Absent);
            }
            return Ok(());
        };
        let got = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        match (state, got) {
            (_, None) => Err(Wrong(format!(
                "counter read back as {:?}",
                String::from_utf8_lossy(&v[..v.len().min(40)])
            ))),
            (State::Counter(want), Some(n)) if n == want => Ok(()),
            (State::Unknown, Some(n)) => {
                self.set(index, State::Counter(n));
                Ok(())
            }
            (State::Absent, Some(n)) => Err(Wrong(format!(
                "counter deleted or missed reads back as {n}"
            ))),
            (state, Some(n)) => Err(Wrong(format!("counter reads {n}, expected {state:?}"))),
        }
    }

    /// An increment by `delta` was answered: `Some(n)` the new value, `None` not found.
    /// `creates` says whether the protocol creates a missing counter from 0 (RESP INCRBY).
    pub fn incremented(
        &mut self,
        index: u64,
        delta: u64,
        result: Option<u64>,
        creates: bool,
    ) -> Result<(), Wrong> {
        let state = self.state(index).clone();
        let Some(n) = result else {
            if creates {
                return Err(Wrong("INCRBY answered as if the key were missing".into()));
            }
            // NOT_FOUND: evicted (or absent, as expected).
            if state != State::Unknown {
                self.set(index, State::Absent);
            }
            return Ok(());
        };
        let ok = match &state {
            State::Counter(v) => n == v.wrapping_add(delta) || (creates && n == delta),
            State::Absent => creates && n == delta,
            State::Unknown => true,
            _ => false,
        };
        self.set(index, State::Counter(n));
        if ok {
            Ok(())
        } else {
            Err(Wrong(format!(
                "incr by {delta} returned {n}, the model had {state:?}"
            )))
        }
    }

    /// A field write (HSET, ZADD) was answered: `added` is the server's count of new fields
    /// (`None`: an error reply).
    pub fn field_written(
        &mut self,
        index: u64,
        field: u32,
        version: u32,
        added: Option<i64>,
    ) -> Result<(), Wrong> {
        let Some(added) = added else {
            self.set(index, State::Unknown);
            return Ok(());
        };
        let state = self.state(index).clone();
        let mut fields = match &state {
            State::Fields(f) => f.clone(),
            _ => HashMap::new(),
        };
        let verdict = match (&state, added, fields.get(&field).copied()) {
            (State::Unknown, _, _) => Ok(()),
            (_, 1, Some(before)) => {
                // New to the server: the key was evicted after `before` was written.
                evicted_after(&mut fields, before);
                Ok(())
            }
            (_, 1, None) | (_, 0, Some(_)) => Ok(()),
            (_, 0, None) => Err(Wrong(format!(
                "field {field} already existed, the model had {state:?}"
            ))),
            (_, n, _) => Err(Wrong(format!("one field written, server counted {n}"))),
        };
        if state == State::Unknown {
            fields.clear();
        }
        fields.insert(field, version);
        self.set(index, State::Fields(fields));
        verdict
    }

    /// A field read (HGET, ZSCORE) was answered: `got` is the version the reply holds
    /// (already checked against its bytes by the caller), `None` for a miss.
    pub fn field_read(&mut self, index: u64, field: u32, got: Option<u32>) -> Result<(), Wrong> {
        let state = self.state(index).clone();
        let mut fields = match state {
            State::Fields(f) => f,
            State::Unknown => return Ok(()),
            _ => HashMap::new(),
        };
        match (fields.get(&field).copied(), got) {
            (Some(want), Some(v)) if v == want => Ok(()),
            (None, None) => Ok(()),
            (Some(before), None) => {
                // Fields do not vanish one by one here: the key was evicted after `before`.
                evicted_after(&mut fields, before);
                self.set(
                    index,
                    if fields.is_empty() {
                        State::Absent
                    } else {
                        State::Fields(fields)
                    },
                );
                Ok(())
            }
            (want, Some(v)) => Err(Wrong(format!(
                "field {field} reads version {v}, expected {want:?}"
            ))),
        }
    }
}

/// The whole key was evicted (or expired) at some moment after the write of version `before`:
/// every field written up to then went with it. Fields written later may or may not exist (the
/// eviction may have come before or after them), so they stay: a read of one must give its
/// last version or a miss.
fn evicted_after(fields: &mut HashMap<u32, u32>, before: u32) {
    fields.retain(|_, v| *v > before);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_exact_sized_self_checking_and_mixed() {
        let v = SoakValues::new(7, 10, 100_000);
        let mut s = Vec::new();
        let (mut small, mut large, mut comp) = (0, 0, 0);
        for id in 0..2000u64 {
            let mut out = Vec::new();
            v.write(&mut out, id, 3);
            assert_eq!(out.len(), v.size(id, 3));
            assert!((10..=100_000).contains(&out.len()));
            assert_eq!(&out[..4], &3u32.to_be_bytes());
            v.check(id, 3, &out, &mut s).unwrap();
            small += usize::from(out.len() < 100);
            large += usize::from(out.len() >= 10_000);
            comp += usize::from(v.compressible(id, 3));
        }
        // Log-uniform over four decades: about a quarter in each.
        assert!((300..700).contains(&small), "{small}");
        assert!((300..700).contains(&large), "{large}");
        assert!((800..1200).contains(&comp), "{comp}");
    }

    #[test]
    fn check_describes_what_went_wrong() {
        let v = SoakValues::new(1, 100, 100);
        let mut s = Vec::new();
        let mut old = Vec::new();
        v.write(&mut old, 5, 1);
        let e = v.check(5, 2, &old, &mut s).unwrap_err();
        assert!(
            e.contains("claiming version 1") && e.contains("intact"),
            "{e}"
        );
        let mut bad = old.clone();
        bad[60] ^= 1;
        assert!(v.check(5, 1, &bad, &mut s).unwrap_err().contains("WRONG"));
        assert!(v.check(6, 1, &old, &mut s).unwrap_err().contains("WRONG"));
        assert!(v
            .check(5, 1, &old[..99], &mut s)
            .unwrap_err()
            .contains("WRONG"));
        assert!(v
            .check(5, 1, b"abc", &mut s)
            .unwrap_err()
            .contains("too short"));
    }

    #[test]
    fn string_reads_follow_writes_deletes_and_misses() {
        let v = SoakValues::new(1, 20, 20);
        let mut m = Model::default();
        let mut s = Vec::new();
        let val = |ver| {
            let mut out = Vec::new();
            v.write(&mut out, 9, ver);
            out
        };
        let (v1, v2) = (val(1), val(2));
        // Nothing written yet: a value is wrong, a miss is fine.
        assert!(m.read_str(0, 9, Read::Value(&v1), 0, &v, &mut s).is_err());
        m.read_str(0, 9, Read::Miss, 0, &v, &mut s).unwrap();
        m.written(
            0,
            Some(State::Str {
                version: 2,
                expires_ms: None,
            }),
        );
        assert!(
            m.read_str(0, 9, Read::Value(&v1), 0, &v, &mut s).is_err(),
            "stale"
        );
        m.read_str(0, 9, Read::Value(&v2), 0, &v, &mut s).unwrap();
        // Evicted: a miss, after which the value must not come back.
        m.read_str(0, 9, Read::Miss, 0, &v, &mut s).unwrap();
        assert!(
            m.read_str(0, 9, Read::Value(&v2), 0, &v, &mut s).is_err(),
            "resurrected"
        );
        assert!(m.deleted(0, true).is_err());
        m.written(
            0,
            Some(State::Str {
                version: 2,
                expires_ms: Some(1_000),
            }),
        );
        m.read_str(0, 9, Read::Value(&v2), 1_000 + TTL_SLACK_MS, &v, &mut s)
            .unwrap();
        assert!(m
            .read_str(0, 9, Read::Value(&v2), 2_000 + TTL_SLACK_MS, &v, &mut s)
            .is_err());
        m.deleted(0, true).unwrap();
        m.deleted(0, false).unwrap();
        // After a failed write anything goes until the next one.
        m.written(0, None);
        m.read_str(0, 9, Read::Value(&v1), 0, &v, &mut s).unwrap();
    }

    #[test]
    fn counters_add_up_or_vanish() {
        let mut m = Model::default();
        m.incremented(7, 5, None, false).unwrap();
        assert!(
            m.incremented(7, 5, Some(5), false).is_err(),
            "memcached incr of absent"
        );
        m.deleted(7, true).unwrap();
        m.incremented(7, 5, Some(5), true).unwrap();
        m.incremented(7, 3, Some(8), true).unwrap();
        assert!(m.incremented(7, 3, Some(12), false).is_err());
        m.written(7, Some(State::Counter(100)));
        m.incremented(7, 1, Some(101), false).unwrap();
        m.incremented(7, 4, Some(4), true).unwrap(); // evicted, recreated from 0
        m.read_counter(7, Read::Value(b"4")).unwrap();
        assert!(m.read_counter(7, Read::Value(b"5")).is_err());
        m.read_counter(7, Read::Miss).unwrap();
        assert!(m.read_counter(7, Read::Value(b"4")).is_err());
        m.incremented(7, 1, None, false).unwrap();
        assert!(m.incremented(7, 1, None, true).is_err());
    }

    #[test]
    fn fields_follow_their_key() {
        let mut m = Model::default();
        m.field_read(8, 1, None).unwrap();
        assert!(m.field_read(8, 1, Some(3)).is_err());
        m.field_written(8, 1, 3, Some(1)).unwrap();
        m.field_written(8, 2, 4, Some(1)).unwrap();
        m.field_read(8, 1, Some(3)).unwrap();
        m.field_written(8, 1, 5, Some(0)).unwrap();
        assert!(m.field_read(8, 1, Some(3)).is_err(), "stale field");
        assert!(
            m.field_written(8, 3, 6, Some(0)).is_err(),
            "field that never was"
        );
        // Field 1 new again: the key went after version 5, and field 2 (version 4) with it;
        // field 3 (version 6) may have been written before or after the eviction.
        m.field_written(8, 1, 7, Some(1)).unwrap();
        m.field_read(8, 2, None).unwrap();
        assert!(m.field_read(8, 2, Some(4)).is_err());
        m.field_read(8, 3, Some(6)).unwrap();
        // A miss of field 3 (version 6) says nothing of field 1 (version 7).
        m.field_read(8, 3, None).unwrap();
        m.field_read(8, 1, Some(7)).unwrap();
        assert!(m.field_read(8, 3, Some(6)).is_err(), "resurrected field");
        m.field_read(8, 1, None).unwrap();
        assert_eq!(m.state(8), &State::Absent);
        assert!(m.deleted(8, true).is_err());
        m.field_written(8, 4, 9, Some(1)).unwrap();
        m.deleted(8, false).unwrap(); // evicted
        m.deleted(8, false).unwrap();
    }
}
