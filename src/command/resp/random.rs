//! Random picks for HRANDFIELD and ZRANDMEMBER: their shared argument parsing and sampling.
//!
//! A positive count asks for distinct elements (at most all of them), a negative one for
//! exactly |count| elements with repeats, as Redis defines both commands.
//!
//! Invariant: no allocation grows with a negative count. Redis builds the whole reply of
//! `HRANDFIELD h -9223372036854775807` before sending any of it and dies of it (valkey-io/valkey
//! issue 844); here repeated picks are drawn one at a time, a count whose reply cannot fit in
//! the connection's output limit is refused before any is drawn, and a reply that passes the
//! limit anyway (large elements) is cut short and its connection closed, as the server closes
//! any connection over that limit.

use std::cell::Cell;

use ferrocache_protocol::resp::Encoder;

use super::{err, is, parse_i64, Call};
use crate::command::Flow;

/// Redis's reply to a count of `i64::MIN`, which it parses as out of its range.
const COUNT_OUT_OF_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";
/// Redis's reply to a count past ±`i64::MAX / 2` with WITHVALUES/WITHSCORES (two replies per
/// pick would overflow), and ours to a negative count whose reply exceeds the output limit.
const WITH_COUNT_OUT_OF_RANGE: &str = "ERR value is out of range";
/// The fewest bytes one pick adds to a reply: an empty bulk string, `$0\r\n\r\n`.
const MIN_PICK_BYTES: u64 = 6;

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0x2545_f491_4f6c_dd1d) };
}

/// A fast per-thread pseudo-random number (xorshift), good enough for random picks.
pub fn random() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
}

/// Parses `[count [<with_word>]]` from `args[2..]`: the count, and whether the
/// WITHVALUES/WITHSCORES word was given.
pub fn parse_args(
    call: &Call<'_, '_>,
    with_word: &str,
) -> Result<(Option<i64>, bool), &'static str> {
    let count = match call.args.get(2) {
        None => None,
        Some(arg) => match parse_i64(arg).ok_or(err::NOT_INTEGER)? {
            i64::MIN => return Err(COUNT_OUT_OF_RANGE),
            count => Some(count),
        },
    };
    let with = match call.args.get(3) {
        None => false,
        Some(arg) if is(arg, with_word) && call.args.len() == 4 => true,
        Some(_) => return Err(err::SYNTAX),
    };
    if with && count.is_some_and(|n| n.unsigned_abs() > (i64::MAX / 2) as u64) {
        return Err(WITH_COUNT_OUT_OF_RANGE);
    }
    Ok((count, with))
}

/// `n` distinct positions among `len` elements (all of them when `n >= len`), in random order,
/// by a partial Fisher-Yates shuffle: what a positive count asks for.
pub fn distinct_positions(len: usize, n: u64) -> Vec<usize> {
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(len);
    let mut pool: Vec<usize> = (0..len).collect();
    for i in 0..n {
        let j = i + random() as usize % (len - i);
        pool.swap(i, j);
    }
    pool.truncate(n);
    pool
}

/// Refuses `picks` repeated picks (a negative count) when even the smallest elements could not
/// fit them in `output_limit` bytes of reply.
pub fn check_repeated(picks: u64, output_limit: usize) -> Result<(), &'static str> {
    if picks.saturating_mul(MIN_PICK_BYTES) > output_limit as u64 {
        return Err(WITH_COUNT_OUT_OF_RANGE);
    }
    Ok(())
}

/// Writes `picks` picks with repeats among `len` (> 0) elements, each by
/// `write_pick(enc, position)`, after the array header the caller wrote. Stops once this reply
/// has passed `output_limit` bytes and answers [`Flow::Close`]: the server closes a connection
/// over its output limit, and would close this one when the command returned.
pub fn write_repeated(
    enc: &mut Encoder<'_>,
    len: usize,
    picks: u64,
    output_limit: usize,
    mut write_pick: impl FnMut(&mut Encoder<'_>, usize),
) -> Flow {
    let start = enc.out.len();
    for _ in 0..picks {
        if enc.out.len() - start > output_limit {
            return Flow::Close;
        }
        write_pick(enc, random() as usize % len);
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_protocol::resp::RespVersion;

    #[test]
    fn distinct_positions_are_distinct_and_at_most_all() {
        let mut picked = distinct_positions(5, u64::MAX);
        picked.sort_unstable();
        assert_eq!(picked, [0, 1, 2, 3, 4]);
        assert_eq!(distinct_positions(5, 3).len(), 3);
        assert!(distinct_positions(0, 3).is_empty());
    }

    #[test]
    fn repeated_picks_past_the_output_limit_are_refused_before_any_is_drawn() {
        assert_eq!(check_repeated(1000, 6000), Ok(()));
        assert_eq!(check_repeated(1001, 6000), Err(WITH_COUNT_OUT_OF_RANGE));
        // i64::MAX picks: no overflow in the size estimate.
        assert!(check_repeated(i64::MAX as u64, 64 << 20).is_err());
    }

    #[test]
    fn a_repeated_reply_is_cut_short_once_past_the_output_limit() {
        let mut out = Vec::new();
        let mut enc = Encoder {
            out: &mut out,
            version: RespVersion::Resp2,
        };
        let value = [b'v'; 100]; // a 108-byte bulk string
        let flow = write_repeated(&mut enc, 3, 1_000_000, 1000, |enc, _| enc.bulk(&value));
        assert_eq!(flow, Flow::Close);
        assert!(out.len() > 1000 && out.len() <= 1000 + 108, "{}", out.len());

        let mut out = Vec::new();
        let mut enc = Encoder {
            out: &mut out,
            version: RespVersion::Resp2,
        };
        let flow = write_repeated(&mut enc, 3, 5, 1000, |enc, i| {
            assert!(i < 3);
            enc.bulk(&value)
        });
        assert_eq!((flow, out.len()), (Flow::Continue, 5 * 108));
    }
}
