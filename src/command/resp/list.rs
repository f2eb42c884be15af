//! List commands (LPUSH ... LMPOP): Redis's list family over the store's
//! [`ListObject`](crate::store::ListObject).
//!
//! Single-key commands run under the worker's gate like any other; LMOVE, RPOPLPUSH and LMPOP
//! touch several keys and are EXCLUSIVE in the command table, so no client anywhere runs
//! between their pop and their push. Replies of many parts stop once the connection's output
//! limit is passed (the connection is then closed), and nothing is allocated in proportion to
//! a count a client sends, only to what the list holds.
//! This module never blocks: the blocking forms live in `blocking`; every push here serves
//! the clients blocked on the key (`blocking::serve_waiters`).

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::list_ops::{
    move_in_store, mpop_first, parse_end, parse_mpop, pop_some, reply_mpop, reply_popped,
    write_list, write_list_if,
};
use super::{err, is, parse_i64, reply_store_error, Call};
use crate::command::Flow;
use crate::store::{End, IfMissing, ListObject, Object};

/// Redis's words for a bad pop count (LPOP/RPOP).
const NO_SUCH_KEY: &str = "ERR no such key";
const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
const RANK_ZERO: &str = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
const COUNT_NEGATIVE: &str = "ERR COUNT can't be negative";
const MAXLEN_NEGATIVE: &str = "ERR MAXLEN can't be negative";
/// The fewest bytes one integer adds to a reply (`:0\r\n`).
const MIN_INTEGER_BYTES: usize = 4;

/// Runs `read` on the list at `key` (None if absent); WRONGTYPE is answered here.
fn read_list(
    call: &Call<'_, '_>,
    key: &[u8],
    enc: &mut Encoder<'_>,
    read: impl FnOnce(Option<&ListObject>, &mut Encoder<'_>) -> Result<Flow, RespError>,
) -> Result<Flow, RespError> {
    let ctx = call.ctx;
    let (hit, flow) =
        ctx.shared
            .store
            .get(key, ctx.now_ms, call.read_options(), |view| match view {
                None => (false, read(None, enc)),
                Some(item) => match item.object() {
                    Some(Object::List(list)) => (true, read(Some(list), enc)),
                    _ => {
                        enc.error(err::WRONGTYPE);
                        (true, Ok(Flow::Continue))
                    }
                },
            });
    super::strings::count_lookup(ctx, hit);
    flow
}

/// Redis's index arithmetic: a negative index counts from the tail.
fn resolve(index: i64, len: usize) -> Option<usize> {
    let index = if index < 0 {
        index.checked_add(len as i64)?
    } else {
        index
    };
    (0..len as i64).contains(&index).then_some(index as usize)
}

/// LRANGE/LTRIM's clamping of `start..=stop` into the list; `None` when it is empty.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop + len
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

/// LPUSH / RPUSH / LPUSHX / RPUSHX key element [element ...]
pub fn push(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let name = call.arg(0).to_ascii_uppercase();
    let end = if name[0] == b'L' {
        End::Head
    } else {
        End::Tail
    };
    let only_existing = name.ends_with(b"X");
    let elements = &call.args[2..];
    match write_list(
        call,
        call.arg(1),
        if only_existing {
            IfMissing::Leave
        } else {
            IfMissing::Create
        },
        |list| match list {
            None => 0,
            Some(list) => {
                for element in elements {
                    list.push(end, element);
                }
                list.len()
            }
        },
    ) {
        Ok(len) => {
            enc.integer(len as i64);
            if len > 0 {
                super::blocking::signal_ready(call, call.arg(1));
            }
        }
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// LPOP / RPOP key [count]
pub fn pop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let end = if is(call.arg(0), "LPOP") {
        End::Head
    } else {
        End::Tail
    };
    let count = match super::pop_count(call) {
        Ok(count) => count,
        Err(message) => {
            return Err(message.into());
        }
    };
    let budget = enc.output_limit;
    let popped = write_list(call, call.arg(1), IfMissing::Leave, |list| {
        list.map(|list| pop_some(list, end, count.unwrap_or(1), budget))
    });
    match (popped, count) {
        (Err(outcome), _) => reply_store_error(enc, outcome),
        (Ok(None), None) => enc.null(),
        (Ok(None), Some(_)) => enc.null_array(),
        (Ok(Some(popped)), None) => enc.bulk(&popped[0]),
        (Ok(Some(popped)), Some(count)) => return Ok(reply_popped(enc, &popped, count)),
    }
    Ok(Flow::Continue)
}

/// LLEN key
pub fn llen(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    read_list(call, call.arg(1), enc, |list, enc| {
        enc.integer(list.map_or(0, |l| l.len()) as i64);
        Ok(Flow::Continue)
    })
}

/// LRANGE key start stop
pub fn lrange(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (Some(start), Some(stop)) = (parse_i64(call.arg(2)), parse_i64(call.arg(3))) else {
        return Err(err::NOT_INTEGER.into());
    };
    read_list(call, call.arg(1), enc, |list, enc| {
        let range = list.and_then(|l| clamp_range(start, stop, l.len()).map(|r| (l, r)));
        let Some((list, (start, stop))) = range else {
            enc.array(0);
            return Ok(Flow::Continue);
        };
        enc.array(stop - start + 1);
        for element in list.iter().skip(start).take(stop - start + 1) {
            if enc.output_full() {
                return Ok(Flow::Close); // over the output limit: the connection closes
            }
            enc.bulk(element);
        }
        Ok(Flow::Continue)
    })
}

/// LINDEX key index
pub fn lindex(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(index) = parse_i64(call.arg(2)) else {
        return Err(err::NOT_INTEGER.into());
    };
    read_list(call, call.arg(1), enc, |list, enc| {
        match list.and_then(|l| resolve(index, l.len()).and_then(|i| l.get(i))) {
            Some(element) => enc.bulk(element),
            None => enc.null(),
        }
        Ok(Flow::Continue)
    })
}

/// LSET key index element
pub fn lset(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let index = parse_i64(call.arg(2));
    let element = call.arg(3);
    let result = write_list(call, call.arg(1), IfMissing::Leave, |list| {
        let list = list.ok_or(NO_SUCH_KEY)?;
        let index = index.ok_or(err::NOT_INTEGER)?;
        let at = resolve(index, list.len()).ok_or(INDEX_OUT_OF_RANGE)?;
        list.set(at, element);
        Ok(())
    });
    match result {
        Err(outcome) => reply_store_error(enc, outcome),
        Ok(Err(message)) => enc.error(message),
        Ok(Ok(())) => enc.ok(),
    }
    Ok(Flow::Continue)
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let after = if is(call.arg(2), "AFTER") {
        true
    } else if is(call.arg(2), "BEFORE") {
        false
    } else {
        return Err(err::SYNTAX.into());
    };
    let (pivot, element) = (call.arg(3), call.arg(4));
    let write = |list: Option<&mut ListObject>| {
        let Some(list) = list else {
            return 0;
        };
        match list.position(pivot) {
            Some(at) => {
                list.insert(at + usize::from(after), element);
                list.len() as i64
            }
            None => -1,
        }
    };
    match write_list_if(call, call.arg(1), IfMissing::Leave, write, |len| *len > 0) {
        Ok(reply) => enc.integer(reply),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// LREM key count element
pub fn lrem(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(count) = parse_i64(call.arg(2)) else {
        return Err(err::NOT_INTEGER.into());
    };
    let element = call.arg(3);
    let (from, limit) = match count {
        0 => (End::Head, None),
        n if n > 0 => (End::Head, Some(n as usize)),
        n => (End::Tail, Some(n.unsigned_abs() as usize)),
    };
    let write =
        |list: Option<&mut ListObject>| list.map_or(0, |l| l.remove_matching(element, from, limit));
    match write_list_if(call, call.arg(1), IfMissing::Leave, write, |n| *n > 0) {
        Ok(removed) => enc.integer(removed as i64),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// LTRIM key start stop
pub fn ltrim(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (Some(start), Some(stop)) = (parse_i64(call.arg(2)), parse_i64(call.arg(3))) else {
        return Err(err::NOT_INTEGER.into());
    };
    match write_list(call, call.arg(1), IfMissing::Leave, |list| {
        if let Some(list) = list {
            let keep = clamp_range(start, stop, list.len());
            list.retain_range(keep);
        }
    }) {
        Ok(()) => enc.ok(),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// LPOS's options.
struct LposArgs {
    rank: i64,
    /// `None` = no COUNT: one integer (or null) in reply; `Some(0)` = all matches.
    count: Option<usize>,
    /// 0 = compare every element.
    maxlen: usize,
}

fn parse_lpos(call: &Call<'_, '_>) -> Result<LposArgs, &'static str> {
    let mut parsed = LposArgs {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let mut i = 3;
    while i < call.args.len() {
        let value = call.args.get(i + 1).ok_or(err::SYNTAX)?;
        // Redis 7.0 reads COUNT and MAXLEN as ranges 0..LONG_MAX, so a value that is no
        // integer at all gets the "can't be negative" words too.
        let non_negative = |message| {
            parse_i64(value)
                .filter(|n| *n >= 0)
                .map(|n| n as usize)
                .ok_or(message)
        };
        if is(&call.args[i], "RANK") {
            parsed.rank = parse_i64(value).ok_or(err::NOT_INTEGER)?;
            if parsed.rank == 0 {
                return Err(RANK_ZERO);
            }
        } else if is(&call.args[i], "COUNT") {
            parsed.count = Some(non_negative(COUNT_NEGATIVE)?);
        } else if is(&call.args[i], "MAXLEN") {
            parsed.maxlen = non_negative(MAXLEN_NEGATIVE)?;
        } else {
            return Err(err::SYNTAX);
        }
        i += 2;
    }
    Ok(parsed)
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let args = match parse_lpos(call) {
        Ok(args) => args,
        Err(message) => {
            return Err(message.into());
        }
    };
    let element = call.arg(2).to_vec();
    let most_matches = enc.output_limit / MIN_INTEGER_BYTES + 1;
    read_list(call, call.arg(1), enc, |list, enc| {
        let wanted = match args.count {
            None => 1,
            Some(0) => usize::MAX,
            Some(n) => n,
        };
        let mut matches = Vec::new();
        if let Some(list) = list {
            let len = list.len();
            let compared = if args.maxlen == 0 { len } else { args.maxlen };
            // Skip |rank| - 1 matches, then collect; from the tail for a negative rank.
            let mut skip = args.rank.unsigned_abs() - 1;
            let mut collect = |i: usize, e: &[u8]| {
                if e != element.as_slice() {
                    return true;
                }
                if skip > 0 {
                    skip -= 1;
                    return true;
                }
                matches.push(i);
                matches.len() < wanted.min(most_matches)
            };
            if args.rank > 0 {
                for (i, e) in list.iter().enumerate().take(compared) {
                    if !collect(i, e) {
                        break;
                    }
                }
            } else {
                for (i, e) in list.iter().rev().enumerate().take(compared) {
                    if !collect(len - 1 - i, e) {
                        break;
                    }
                }
            }
        }
        match args.count {
            None => match matches.first() {
                Some(&i) => enc.integer(i as i64),
                None => enc.null(),
            },
            Some(_) => {
                enc.array(matches.len());
                for &i in &matches {
                    enc.integer(i as i64);
                }
                if matches.len() == most_matches {
                    return Ok(Flow::Close); // could not fit the output limit
                }
            }
        }
        Ok(Flow::Continue)
    })
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT / RPOPLPUSH source destination
pub fn lmove(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ends = if call.args.len() == 3 {
        Some((End::Tail, End::Head))
    } else {
        parse_end(call.arg(3)).zip(parse_end(call.arg(4)))
    };
    let Some((from, to)) = ends else {
        return Err(err::SYNTAX.into());
    };
    match move_in_store(call.ctx, call.arg(1), call.arg(2), from, to) {
        Ok(Some(element)) => {
            enc.bulk(&element);
            super::blocking::signal_ready(call, call.arg(2));
        }
        Ok(None) => enc.null(),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let mpop = match parse_mpop(call.args, 1) {
        Ok(mpop) => mpop,
        Err(message) => {
            return Err(message.into());
        }
    };
    match mpop_first(call, &mpop, enc.output_limit) {
        Ok(Some(popped)) => return Ok(reply_mpop(enc, &popped.key, &popped.elements, mpop.count)),
        Ok(None) => enc.null_array(),
        Err(outcome) => reply_store_error(enc, outcome),
    }
    Ok(Flow::Continue)
}
