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

use super::error::RespError;
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

/// Where every thread's random sequence starts.
const RNG_START: u64 = 0x2545_f491_4f6c_dd1d;

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(RNG_START) };
}

/// Restarts this thread's random sequence from where it starts: the fuzz target does before
/// each input, so an input's random picks (and the paths they take) repeat run to run.
pub fn restart_random_sequence() {
    RNG.with(|state| state.set(RNG_START));
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

/// How many reply elements one pick is: two (name and value or score) when WITHVALUES or
/// WITHSCORES flattens them in RESP2, else one (a bare name, or a RESP3 pair).
pub fn items_per_pick(enc: &Encoder<'_>, with: bool) -> usize {
    if with && !enc.is_resp3() {
        2
    } else {
        1
    }
}

/// Refuses `picks` repeated picks (a negative count) when even the smallest elements could not
/// fit them in `output_limit` bytes of reply.
fn check_repeated(picks: u64, output_limit: usize) -> Result<(), &'static str> {
    if picks.saturating_mul(MIN_PICK_BYTES) > output_limit as u64 {
        return Err(WITH_COUNT_OUT_OF_RANGE);
    }
    Ok(())
}

/// Answers a negative count: `picks` picks with repeats among `len` (> 0) elements, each
/// written by `write_pick(enc, position)` as `items_per_pick` reply elements. Refused when the
/// reply cannot fit in `output_limit` bytes; stops once this reply has passed `output_limit`
/// bytes and answers [`Flow::Close`]: the server closes a connection over its output limit,
/// and would close this one when the command returned.
pub fn reply_repeated(
    enc: &mut Encoder<'_>,
    len: usize,
    picks: u64,
    items_per_pick: usize,
    output_limit: usize,
    mut write_pick: impl FnMut(&mut Encoder<'_>, usize),
) -> Result<Flow, RespError> {
    if let Err(message) = check_repeated(picks, output_limit) {
        return Err(message.into());
    }
    // Within the limit checked above, so the count fits a usize.
    enc.array(picks as usize * items_per_pick);
    let start = enc.out.len();
    for _ in 0..picks {
        if enc.out.len() - start > output_limit {
            return Ok(Flow::Close);
        }
        write_pick(enc, random() as usize % len);
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_protocol::resp::RespVersion;

    #[test]
    fn a_restarted_sequence_repeats_its_numbers() {
        restart_random_sequence();
        let first: Vec<u64> = (0..3).map(|_| random()).collect();
        restart_random_sequence();
        assert_eq!((0..3).map(|_| random()).collect::<Vec<_>>(), first);
    }

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
        let mut enc = Encoder::new(&mut out, RespVersion::Resp2);
        let value = [b'v'; 100]; // a 108-byte bulk string
        let header = b"*150\r\n".len();
        let flow = reply_repeated(&mut enc, 3, 150, 1, 1000, |enc, _| enc.bulk(&value));
        assert_eq!(flow, Ok(Flow::Close));
        let reply = out.len() - header;
        assert!(reply > 1000 && reply <= 1000 + 108, "{reply}");

        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, RespVersion::Resp2);
        let flow = reply_repeated(&mut enc, 3, 5, 1, 1000, |enc, i| {
            assert!(i < 3);
            enc.bulk(&value)
        });
        assert_eq!((flow, out.len()), (Ok(Flow::Continue), 4 + 5 * 108));
    }
}
