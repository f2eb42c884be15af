//! The check of every reply: one answer against the lane's [`Model`] (and the self-checking
//! value bytes of [`SoakValues`](super::model::SoakValues)), counted into its protocol's
//! [`ProtoStats`]; a reply that does not fit is a [`Wrong`].
//!
//! Never sends or reads bytes and never keeps state of its own: what a key may hold lives in
//! the model, what the run counts in `Shared` and `ProtoStats`.

use std::sync::atomic::Ordering;

use super::model::{KeyType, Model, Read as ReadOutcome, State, Wrong};
use super::report::ProtoStats;
use super::wire::{Answer, Verb};
use super::{unix_ms, Pending, Shared};

/// An answer in a few words, values by their version (or number).
pub(super) fn short(a: &Answer<'_>) -> String {
    match a {
        Answer::Value(v) if v.len() >= 4 && v.iter().take(4).any(|b| !b.is_ascii_digit()) => {
            format!(
                "value v{}",
                u32::from_be_bytes(v[..4].try_into().expect("4 bytes"))
            )
        }
        Answer::Value(v) => format!("value {:?}", String::from_utf8_lossy(&v[..v.len().min(24)])),
        other => format!("{other:?}"),
    }
}

/// A string read's outcome, if `a` is one.
fn read_of<'a>(a: &Answer<'a>) -> Option<ReadOutcome<'a>> {
    match *a {
        Answer::Value(v) => Some(ReadOutcome::Value(v)),
        Answer::Miss => Some(ReadOutcome::Miss),
        _ => None,
    }
}

/// Checks one answer against the model; updates the protocol's figures.
#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    sh: &Shared,
    lane: u64,
    m: &mut Model,
    scratch: &mut Vec<u8>,
    p: &Pending,
    answer: Answer<'_>,
    stats: &mut ProtoStats,
    resp: bool,
) -> Result<(), Wrong> {
    stats.ops += 1;
    let now = unix_ms();
    let kind = KeyType::of(p.index);
    match p.verb {
        Verb::Get => {
            stats.gets += 1;
            stats.reads += 1;
        }
        Verb::HGet { .. } | Verb::ZScore { .. } => {
            stats.collection_ops += 1;
            stats.reads += 1;
        }
        Verb::Set { .. } => {
            stats.sets += 1;
            if kind == KeyType::Str {
                let id = Shared::id(lane, p.index, 0);
                stats.value_bytes_written += sh.values.size(id, p.version) as u64;
            }
        }
        Verb::Delete => stats.deletes += 1,
        Verb::Incr { .. } => stats.incrs += 1,
        _ => stats.collection_ops += 1,
    }
    if let Answer::Value(v) = &answer {
        stats.hits += 1;
        stats.value_bytes_read += v.len() as u64;
    }
    if let Answer::Error(e) = answer {
        stats.server_errors += 1;
        if stats.first_server_error.is_none() {
            stats.first_server_error = Some(format!("{:?}: {e}", p.verb));
        }
        sh.errors.fetch_add(1, Ordering::Relaxed);
        // Whether the request took effect is unknown now.
        m.written(p.index, None);
        return Ok(());
    }
    let i = p.index;
    let id = Shared::id(lane, i, 0);
    let unexpected = || Wrong(format!("unexpected answer {answer:?}"));
    match (kind, p.verb) {
        (KeyType::Str, Verb::Get) => {
            let r = read_of(&answer).ok_or_else(unexpected)?;
            m.read_str(i, id, r, now, &sh.values, scratch)
        }
        (KeyType::Str, Verb::Set { ttl }) => match answer {
            Answer::Stored => {
                let expires_ms = (ttl > 0).then(|| now + u64::from(ttl) * 1000);
                m.written(
                    i,
                    Some(State::Str {
                        version: p.version,
                        expires_ms,
                    }),
                );
                Ok(())
            }
            _ => Err(unexpected()),
        },
        (KeyType::Counter, Verb::Set { .. }) => match answer {
            Answer::Stored => {
                m.written(i, Some(State::Counter(u64::from(p.version))));
                Ok(())
            }
            _ => Err(unexpected()),
        },
        (KeyType::Counter, Verb::Get) => {
            let r = read_of(&answer).ok_or_else(unexpected)?;
            m.read_counter(i, r)
        }
        (KeyType::Counter, Verb::Incr { delta }) => match answer {
            Answer::Incr(result) if !resp => m.incremented(i, delta, result, false),
            Answer::Int(n) if resp && n >= 0 => m.incremented(i, delta, Some(n as u64), true),
            _ => Err(unexpected()),
        },
        (_, Verb::Delete) => match answer {
            Answer::Deleted(found) => m.deleted(i, found),
            _ => Err(unexpected()),
        },
        (KeyType::Hash, Verb::HSet { field })
        | (KeyType::Zset, Verb::ZAdd { member: field, .. }) => match answer {
            Answer::Int(n) => m.field_written(i, field, p.version, Some(n)),
            _ => Err(unexpected()),
        },
        (KeyType::Hash, Verb::HGet { field }) => match answer {
            Answer::Miss => m.field_read(i, field, None),
            Answer::Value(v) => {
                let fid = Shared::id(lane, i, field + 1);
                let version = v
                    .get(..4)
                    .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
                    .ok_or_else(|| Wrong(sh.field_values.describe(fid, v)))?;
                sh.field_values
                    .check(fid, version, v, scratch)
                    .map_err(Wrong)?;
                m.field_read(i, field, Some(version))
            }
            _ => Err(unexpected()),
        },
        (KeyType::Zset, Verb::ZScore { member }) => match answer {
            Answer::Miss => m.field_read(i, member, None),
            Answer::Value(v) => {
                let score = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|s| s.fract() == 0.0 && *s >= 0.0 && *s <= f64::from(u32::MAX))
                    .ok_or_else(|| Wrong(format!("score {:?}", String::from_utf8_lossy(v))))?;
                m.field_read(i, member, Some(score as u32))
            }
            _ => Err(unexpected()),
        },
        (kind, verb) => Err(Wrong(format!("{verb:?} sent to a {kind:?} key"))),
    }
}
