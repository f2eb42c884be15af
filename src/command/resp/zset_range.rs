//! The sorted-set range grammar: score bounds (`1.5`, `(1.5`, `-inf`, `+inf`), lex bounds
//! (`-`, `+`, `[m`, `(m`), rank ranges and Redis's clamp of them, and the ZRANGE-family options
//! (BYSCORE, BYLEX, REV, LIMIT, WITHSCORES) with their combinations, parsed per Redis's
//! `zrangeGenericCommand` into a [`RangeQuery`] that selects members of a [`ZSet`]. Also the
//! family's refusals ([`ZError`], the `zerr` words): the grammar is where most of them arise,
//! and `zset.rs` and `zset_ops.rs` both build on this file, so they live here.
//!
//! Never reads or writes a key (`select` only walks a [`ZSet`] it is handed) and writes no
//! reply beyond a [`ZError`]'s line: parsing is pure, so arguments are refused before any key
//! is touched.

use std::ops::Range;

use ferrocache_protocol::resp::Encoder;

use super::{err, is, parse_f64, parse_i64};
use crate::store::{LexBound, LexRange, ScoreBound, ScoreRange, StoreError, ZSet};

/// Redis's words for the sorted-set family's own errors.
pub(super) mod zerr {
    pub const SCORE_RANGE: &str = "ERR min or max is not a float";
    pub const LEX_RANGE: &str = "ERR min or max not valid string range item";
    pub const NAN: &str = "ERR resulting score is not a number (NaN)";
    pub const LIMIT_NEEDS_BY: &str =
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
    pub const BYLEX_WITHSCORES: &str =
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
}

/// A command refused before or while it ran: the reply is this error line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ZError {
    #[error("{0}")]
    Reply(&'static str),
    #[error("{0}")]
    Owned(String),
    #[error("store refused the write: {0}")]
    Store(#[from] StoreError),
}

impl ZError {
    pub(super) fn answer(&self, enc: &mut Encoder<'_>) {
        match self {
            ZError::Reply(text) => enc.error(text),
            ZError::Owned(text) => enc.error(text),
            ZError::Store(error) => super::reply_store_error(enc, *error),
        }
    }
}

/// A score bound: `1.5`, `(1.5`, `-inf`, `+inf`; NaN refused.
fn parse_score_bound(arg: &[u8]) -> Option<ScoreBound> {
    match arg.strip_prefix(b"(") {
        Some(rest) => parse_f64(rest).map(|value| ScoreBound {
            value,
            exclusive: true,
        }),
        None => parse_f64(arg).map(|value| ScoreBound {
            value,
            exclusive: false,
        }),
    }
}

pub(super) fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, ZError> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some(min), Some(max)) => Ok(ScoreRange { min, max }),
        _ => Err(ZError::Reply(zerr::SCORE_RANGE)),
    }
}

/// A lex bound: `-`, `+`, `[member`, `(member`.
fn parse_lex_bound(arg: &[u8]) -> Option<LexBound> {
    match arg.split_first() {
        Some((b'-', [])) => Some(LexBound::NegInf),
        Some((b'+', [])) => Some(LexBound::PosInf),
        Some((b'[', rest)) => Some(LexBound::Inclusive(rest.to_vec())),
        Some((b'(', rest)) => Some(LexBound::Exclusive(rest.to_vec())),
        _ => None,
    }
}

pub(super) fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, ZError> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(ZError::Reply(zerr::LEX_RANGE)),
    }
}

pub(super) fn parse_int(arg: &[u8]) -> Result<i64, ZError> {
    parse_i64(arg).ok_or(ZError::Reply(err::NOT_INTEGER))
}

/// Redis's rank-range clamp (`start`/`stop` inclusive, negatives from the end) to ranks.
pub(super) fn clamp_ranks(start: i64, stop: i64, len: usize) -> Range<usize> {
    let len = len as i64;
    let start = if start < 0 { start + len } else { start }.max(0);
    let stop = if stop < 0 { stop + len } else { stop }.min(len - 1);
    if start > stop || start >= len {
        0..0
    } else {
        start as usize..stop as usize + 1
    }
}

/// How a range command selects members.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RangeBy {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// A parsed ZRANGE-family request.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RangeQuery {
    pub by: RangeBy,
    pub rev: bool,
    /// LIMIT offset count (count < 0 = all).
    pub limit: Option<(i64, i64)>,
    pub withscores: bool,
}

/// Which command's grammar a range request follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeForm {
    /// ZRANGE and ZRANGESTORE: BYSCORE, BYLEX, REV, LIMIT (WITHSCORES unless storing).
    Generic {
        store: bool,
    },
    ByRank {
        rev: bool,
    },
    ByScore {
        rev: bool,
    },
    ByLex {
        rev: bool,
    },
}

/// Parses `min max [options]` (`args[0]`, `args[1]` are the bounds) per Redis's
/// `zrangeGenericCommand`: options first, then their combinations, then the bounds.
pub(super) fn parse_range(args: &[&[u8]], form: RangeForm) -> Result<RangeQuery, ZError> {
    #[derive(PartialEq)]
    enum Kind {
        Rank,
        Score,
        Lex,
    }
    let (mut kind, mut rev) = match form {
        RangeForm::Generic { .. } => (Kind::Rank, false),
        RangeForm::ByRank { rev } => (Kind::Rank, rev),
        RangeForm::ByScore { rev } => (Kind::Score, rev),
        RangeForm::ByLex { rev } => (Kind::Lex, rev),
    };
    let generic = matches!(form, RangeForm::Generic { .. });
    let storing = form == RangeForm::Generic { store: true };
    let (mut withscores, mut limit) = (false, None);
    let mut i = 2;
    while i < args.len() {
        let arg = args[i];
        if !storing && is(arg, "WITHSCORES") {
            withscores = true;
        } else if is(arg, "LIMIT") && i + 2 < args.len() {
            limit = Some((parse_int(args[i + 1])?, parse_int(args[i + 2])?));
            i += 2;
        } else if generic && is(arg, "BYSCORE") {
            kind = Kind::Score;
        } else if generic && is(arg, "BYLEX") {
            kind = Kind::Lex;
        } else if generic && is(arg, "REV") {
            rev = true;
        } else {
            return Err(ZError::Reply(err::SYNTAX));
        }
        i += 1;
    }
    if withscores && kind == Kind::Lex {
        return Err(ZError::Reply(zerr::BYLEX_WITHSCORES));
    }
    if limit.is_some() && kind == Kind::Rank {
        return Err(ZError::Reply(zerr::LIMIT_NEEDS_BY));
    }
    // Reverse score and lex ranges name the high end first.
    let (low, high) = if rev && kind != Kind::Rank {
        (args[1], args[0])
    } else {
        (args[0], args[1])
    };
    let by = match kind {
        Kind::Rank => RangeBy::Rank(parse_int(args[0])?, parse_int(args[1])?),
        Kind::Score => RangeBy::Score(parse_score_range(low, high)?),
        Kind::Lex => RangeBy::Lex(parse_lex_range(low, high)?),
    };
    Ok(RangeQuery {
        by,
        rev,
        limit,
        withscores,
    })
}

impl RangeQuery {
    /// The selected members in reply order.
    pub(super) fn select<'z>(
        &self,
        zset: &'z ZSet,
    ) -> std::iter::Take<std::iter::Skip<crate::store::zset::RangeIter<'z>>> {
        let ranks = match &self.by {
            RangeBy::Rank(start, stop) if self.rev => {
                let asc = clamp_ranks(*start, *stop, zset.len());
                let len = zset.len();
                if asc.is_empty() {
                    0..0
                } else {
                    len - asc.end..len - asc.start
                }
            }
            RangeBy::Rank(start, stop) => clamp_ranks(*start, *stop, zset.len()),
            RangeBy::Score(range) => zset.score_ranks(range),
            RangeBy::Lex(range) => zset.lex_ranks(range),
        };
        let (offset, count) = match self.limit {
            None => (0, usize::MAX),
            Some((offset, _)) if offset < 0 => (0, 0),
            Some((offset, count)) => (
                usize::try_from(offset).unwrap_or(usize::MAX),
                usize::try_from(count).unwrap_or(usize::MAX),
            ),
        };
        let iter = if self.rev {
            zset.range_rev(ranks)
        } else {
            zset.range(ranks)
        };
        iter.skip(offset).take(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_ranges_clamp_like_redis() {
        assert_eq!(clamp_ranks(0, -1, 5), 0..5);
        assert_eq!(clamp_ranks(-2, -1, 5), 3..5);
        assert_eq!(clamp_ranks(-100, 1, 5), 0..2);
        assert_eq!(clamp_ranks(3, 100, 5), 3..5);
        assert_eq!(clamp_ranks(4, 2, 5), 0..0);
        assert_eq!(clamp_ranks(5, 10, 5), 0..0);
        assert_eq!(clamp_ranks(0, -1, 0), 0..0);
    }

    #[test]
    fn bounds_parse_and_refuse_nan() {
        assert_eq!(
            parse_score_bound(b"(1.5"),
            Some(ScoreBound {
                value: 1.5,
                exclusive: true
            })
        );
        assert_eq!(parse_score_bound(b"-inf").unwrap().value, f64::NEG_INFINITY);
        assert_eq!(parse_score_bound(b"+inf").unwrap().value, f64::INFINITY);
        assert_eq!(parse_score_bound(b"nan"), None);
        assert_eq!(parse_score_bound(b"(nan"), None);
        assert_eq!(parse_score_bound(b"("), None);
        assert_eq!(parse_lex_bound(b"-"), Some(LexBound::NegInf));
        assert_eq!(parse_lex_bound(b"+"), Some(LexBound::PosInf));
        assert_eq!(
            parse_lex_bound(b"[a"),
            Some(LexBound::Inclusive(b"a".to_vec()))
        );
        assert_eq!(parse_lex_bound(b"("), Some(LexBound::Exclusive(Vec::new())));
        assert_eq!(parse_lex_bound(b"a"), None);
        assert_eq!(parse_lex_bound(b"-a"), None);
        assert_eq!(parse_lex_bound(b""), None);
    }
}
