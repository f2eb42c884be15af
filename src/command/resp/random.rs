//! Random picks for HRANDFIELD and ZRANDMEMBER: their shared argument parsing and sampling.
//!
//! A positive count asks for distinct elements (at most all of them), a negative one for
//! exactly |count| elements with repeats, as Redis defines both commands.

use std::cell::Cell;

use super::{err, is, parse_i64, Call};

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
        Some(arg) => Some(parse_i64(arg).ok_or(err::NOT_INTEGER)?),
    };
    let with = match call.args.get(3) {
        None => false,
        Some(arg) if is(arg, with_word) && call.args.len() == 4 => true,
        Some(_) => return Err(err::SYNTAX),
    };
    Ok((count, with))
}

/// Positions among `len` elements for `count`: distinct ones by a partial Fisher-Yates
/// shuffle when `count >= 0`, |count| independent picks otherwise (none when `len` is 0).
pub fn positions(len: usize, count: i64) -> Vec<usize> {
    if count >= 0 {
        let n = (count as usize).min(len);
        let mut pool: Vec<usize> = (0..len).collect();
        for i in 0..n {
            let j = i + random() as usize % (len - i);
            pool.swap(i, j);
        }
        pool.truncate(n);
        pool
    } else if len == 0 {
        Vec::new()
    } else {
        (0..count.unsigned_abs())
            .map(|_| random() as usize % len)
            .collect()
    }
}
