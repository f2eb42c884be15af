//! What a connection asks for next: the op mix of a workload and the sources of ops.
//!
//! Owns [`Workload`], [`Mix`] (get:set ratio over a key distribution, mapped to the workload's
//! read and write ops) and [`Source`] (random ops under an optional count, or the sequential
//! writes of `--warm`). Invariants: a source never yields more ops than its budget; versions are
//! `thread << 24 | counter`, so two threads never write the same version of a key.

use crate::keyspace::KeyDist;
use crate::proto::{Op, OpKind};
use crate::rng::Rng;

/// The family of commands a run exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Single-key get and set (GET/SET, mg/ms).
    Kv,
    /// Multi-key reads of `--batch` keys (get k1..kn, mg quiet batch, getkq batch, MGET) and sets.
    Mget,
    /// RESP HGET and HSET on field `f`.
    Hash,
    /// RESP ZRANGE 0 9 and ZADD.
    Zset,
    /// RESP PUBLISH only.
    Publish,
}

impl Workload {
    /// The op for reads and the op for writes.
    pub fn kinds(self) -> (OpKind, OpKind) {
        match self {
            Workload::Kv => (OpKind::Get, OpKind::Set),
            Workload::Mget => (OpKind::MultiGet, OpKind::Set),
            Workload::Hash => (OpKind::HGet, OpKind::HSet),
            Workload::Zset => (OpKind::ZRange, OpKind::ZAdd),
            Workload::Publish => (OpKind::Publish, OpKind::Publish),
        }
    }
}

/// The op mix of a run.
#[derive(Debug, Clone)]
pub struct Mix {
    pub workload: Workload,
    pub gets: u32,
    pub sets: u32,
    pub batch: usize,
    pub dist: KeyDist,
}

impl Mix {
    /// Draws the next op; `version` is used if it writes.
    pub fn next(&self, rng: &mut Rng, version: u32) -> Op {
        let (read, write) = self.workload.kinds();
        let total = u64::from(self.gets + self.sets);
        let is_read = rng.below(total) < u64::from(self.gets);
        let kind = if is_read { read } else { write };
        if kind == OpKind::MultiGet {
            let batch: Vec<u64> = (0..self.batch).map(|_| self.dist.sample(rng)).collect();
            Op {
                kind,
                key: batch[0],
                batch,
                version,
            }
        } else {
            Op {
                kind,
                key: self.dist.sample(rng),
                batch: Vec::new(),
                version,
            }
        }
    }
}

/// Where one connection's ops come from.
#[derive(Debug)]
pub enum Source {
    /// Random ops from the mix; `remaining` is the request budget if the run is count-bounded.
    Random {
        mix: Mix,
        rng: Rng,
        remaining: Option<u64>,
        thread: u32,
        counter: u32,
    },
    /// `--warm`: one write of each key in `next..end`, version 0.
    Sequential { kind: OpKind, next: u64, end: u64 },
}

impl Source {
    /// Whether another op may be drawn.
    pub fn has_next(&self) -> bool {
        match self {
            Source::Random { remaining, .. } => !matches!(remaining, Some(0)),
            Source::Sequential { next, end, .. } => next < end,
        }
    }

    /// The next op; call only when [`Source::has_next`].
    pub fn next_op(&mut self) -> Op {
        match self {
            Source::Random {
                mix,
                rng,
                remaining,
                thread,
                counter,
            } => {
                if let Some(r) = remaining {
                    *r -= 1;
                }
                *counter = (*counter + 1) & 0x00ff_ffff;
                mix.next(rng, (*thread << 24) | *counter)
            }
            Source::Sequential { kind, next, .. } => {
                let op = Op {
                    kind: *kind,
                    key: *next,
                    batch: Vec::new(),
                    version: 0,
                };
                *next += 1;
                op
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(workload: Workload, gets: u32, sets: u32) -> Mix {
        Mix {
            workload,
            gets,
            sets,
            batch: 5,
            dist: KeyDist::uniform(1000),
        }
    }

    #[test]
    fn ratio_is_respected() {
        let m = mix(Workload::Kv, 9, 1);
        let mut rng = Rng::new(5);
        let sets = (0..100_000)
            .filter(|_| m.next(&mut rng, 1).kind == OpKind::Set)
            .count();
        assert!((9_000..11_000).contains(&sets), "{sets}");
        let only_sets = mix(Workload::Zset, 0, 1);
        assert!((0..100).all(|_| only_sets.next(&mut rng, 1).kind == OpKind::ZAdd));
    }

    #[test]
    fn multi_get_draws_a_batch() {
        let m = mix(Workload::Mget, 1, 0);
        let op = m.next(&mut Rng::new(1), 0);
        assert_eq!(op.kind, OpKind::MultiGet);
        assert_eq!(op.batch.len(), 5);
        assert_eq!(op.key, op.batch[0]);
        assert!(op.batch.iter().all(|&k| k < 1000));
    }

    #[test]
    fn sources_respect_their_budget() {
        let mut s = Source::Random {
            mix: mix(Workload::Kv, 1, 1),
            rng: Rng::new(1),
            remaining: Some(3),
            thread: 2,
            counter: 0,
        };
        let mut versions = Vec::new();
        while s.has_next() {
            versions.push(s.next_op().version);
        }
        assert_eq!(versions, vec![2 << 24 | 1, 2 << 24 | 2, 2 << 24 | 3]);
        let mut w = Source::Sequential {
            kind: OpKind::Set,
            next: 5,
            end: 7,
        };
        assert_eq!(w.next_op().key, 5);
        assert_eq!(w.next_op().key, 6);
        assert!(!w.has_next());
    }
}
