//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted numerically or
//! lexicographically (ALPHA), by themselves or by weights read from other keys (BY pattern,
//! `*` replaced by the element, `key->field` for a hash field), cut by LIMIT, answered as
//! themselves or as values looked up by GET patterns (`#` is the element), or stored as a list
//! (STORE). Semantics and errors follow redis-server 7.0's `sort.c`: a BY pattern without `*`
//! means "do not sort" (a list or sorted set keeps its order, reversed by DESC; a set stored
//! that way is sorted ALPHA so the result is reproducible), elements that tie numerically are
//! ordered by their bytes, and one weight that is not a number fails the whole command.
//!
//! Runs with every gate held (EXCLUSIVE), so the pattern lookups see one moment. Never holds
//! a shard lock while looking up another key: the elements are copied out first.

use std::cmp::Ordering;

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::{err, is, parse_i64, reply_store_error, Call};
use crate::command::Flow;
use crate::store::{End, Expiry, ListObject, Object, StoreError};

const NOT_DOUBLE: &str = "ERR One or more scores can't be converted into double";

/// SORT's parsed options.
struct Options<'c> {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<&'c [u8]>,
    by: Option<&'c [u8]>,
    /// A BY pattern without `*`: nothing to sort by.
    dontsort: bool,
    gets: Vec<&'c [u8]>,
}

/// Parses the options from `args[2..]`, with Redis's errors (SORT_RO knows no STORE).
fn parse<'c>(
    args: &'c [std::borrow::Cow<'c, [u8]>],
    readonly: bool,
) -> Result<Options<'c>, &'static str> {
    let mut options = Options {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let arg = &args[j][..];
        if is(arg, "ASC") {
            options.desc = false;
        } else if is(arg, "DESC") {
            options.desc = true;
        } else if is(arg, "ALPHA") {
            options.alpha = true;
        } else if is(arg, "LIMIT") && left >= 2 {
            options.limit_start = parse_i64(&args[j + 1]).ok_or(err::NOT_INTEGER)?;
            options.limit_count = parse_i64(&args[j + 2]).ok_or(err::NOT_INTEGER)?;
            j += 2;
        } else if !readonly && is(arg, "STORE") && left >= 1 {
            options.store = Some(&args[j + 1]);
            j += 1;
        } else if is(arg, "BY") && left >= 1 {
            let pattern = &args[j + 1][..];
            options.by = Some(pattern);
            if !pattern.contains(&b'*') {
                options.dontsort = true;
            }
            j += 1;
        } else if is(arg, "GET") && left >= 1 {
            options.gets.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(options)
}

/// Which collection the key held.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// The elements of the collection at `key` in its own order (a missing key is an empty
/// list), or WRONGTYPE.
fn load(call: &Call<'_, '_>, key: &[u8]) -> Result<(Kind, Vec<Vec<u8>>), StoreError> {
    let ctx = call.ctx;
    ctx.shared.store.peek(key, ctx.now_ms, |entry| {
        let Some(view) = entry.view() else {
            return Ok((Kind::List, Vec::new()));
        };
        match view.object() {
            Some(Object::List(list)) => Ok((Kind::List, list.iter().map(<[u8]>::to_vec).collect())),
            Some(Object::Set(set)) => Ok((Kind::Set, set.iter().map(|m| m.into_owned()).collect())),
            Some(Object::ZSet(zset)) => {
                Ok((Kind::ZSet, zset.iter().map(|(m, _)| m.to_vec()).collect()))
            }
            _ => Err(StoreError::WrongType),
        }
    })
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is
/// replaced by the element and the key read as a string, or, with `->field` after the `*`,
/// as that field of a hash. `None` when there is no `*`, no such key or field, or another
/// type.
fn lookup(call: &Call<'_, '_>, pattern: &[u8], element: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(element.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&at| at + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(at) => (&after[..at], Some(&after[at + 2..])),
        None => (after, None),
    };
    let key = [&pattern[..star], element, postfix].concat();
    let now = call.ctx.now_ms;
    call.ctx.shared.store.peek(&key, now, |entry| match field {
        Some(field) => entry
            .hash()
            .ok()
            .flatten()?
            .get(field)
            .filter(|f| !f.is_expired(now))
            .map(|f| f.value.to_vec()),
        None => entry.string().ok().flatten().map(<[u8]>::to_vec),
    })
}

/// One element to sort, with what it sorts by.
struct Item {
    element: Vec<u8>,
    score: f64,
    /// ALPHA with BY: the looked-up value (`None` sorts first).
    by_value: Option<Vec<u8>>,
}

/// A weight as Redis's `strtod` takes it: the whole text a finite number.
fn parse_weight(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let value: f64 = text.trim_start().parse().ok()?;
    (!value.is_nan() && (value.is_finite() || text.to_ascii_lowercase().contains("inf")))
        .then_some(value)
}

/// SORT / SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]
pub fn sort(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let readonly = is(call.arg(0), "SORT_RO");
    let mut options = match parse(call.args, readonly) {
        Ok(options) => options,
        Err(message) => {
            return Err(message.into());
        }
    };
    let (kind, mut elements) = match load(call, call.arg(1)) {
        Ok(loaded) => loaded,
        Err(error) => {
            reply_store_error(enc, error);
            return Ok(Flow::Continue);
        }
    };
    // A set's order is its table's: stored unsorted it would not be reproducible.
    if options.dontsort && kind == Kind::Set && options.store.is_some() {
        options.dontsort = false;
        options.alpha = true;
        options.by = None;
    }
    let n = elements.len() as i64;
    let mut start = options.limit_start.clamp(0, n);
    let count = options.limit_count.clamp(-1, n);
    let mut end = if count < 0 { n - 1 } else { start + count - 1 };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    end = end.min(n - 1);
    if options.dontsort {
        // A list or sorted set keeps its order, DESC reading it from the other end.
        if options.desc && kind != Kind::Set {
            elements.reverse();
        }
    } else {
        let mut items = Vec::with_capacity(elements.len());
        let mut not_double = false;
        for element in elements {
            let by_value = match options.by {
                Some(pattern) => lookup(call, pattern, &element),
                None => None,
            };
            let mut score = 0.0;
            if !options.alpha {
                let weight = match options.by {
                    Some(_) => by_value.as_deref(),
                    None => Some(&element[..]),
                };
                if let Some(weight) = weight {
                    match parse_weight(weight) {
                        Some(value) => score = value,
                        None => not_double = true,
                    }
                }
            }
            items.push(Item {
                element,
                score,
                by_value: if options.alpha { by_value } else { None },
            });
        }
        if not_double {
            return Err(NOT_DOUBLE.into());
        }
        let (alpha, by) = (options.alpha, options.by.is_some());
        items.sort_by(|a, b| {
            let order = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.element.cmp(&b.element))
            } else if by {
                a.by_value.cmp(&b.by_value)
            } else {
                a.element.cmp(&b.element)
            };
            if options.desc {
                order.reverse()
            } else {
                order
            }
        });
        elements = items.into_iter().map(|item| item.element).collect();
    }
    let chosen: &[Vec<u8>] = if end >= start {
        &elements[start as usize..=end as usize]
    } else {
        &[]
    };
    match options.store {
        None => reply(call, enc, chosen, &options.gets),
        Some(destination) => store(call, enc, destination, chosen, &options.gets),
    }
    Ok(Flow::Continue)
}

/// Answers the chosen elements, or for each the values of the GET patterns.
fn reply(call: &Call<'_, '_>, enc: &mut Encoder<'_>, chosen: &[Vec<u8>], gets: &[&[u8]]) {
    let per_element = gets.len().max(1);
    enc.array(chosen.len() * per_element);
    for element in chosen {
        if enc.output_full() {
            break; // over the output limit: the connection closes
        }
        if gets.is_empty() {
            enc.bulk(element);
        }
        for pattern in gets {
            match lookup(call, pattern, element) {
                Some(value) => enc.bulk(&value),
                None => enc.null(),
            }
        }
    }
}

/// Stores what [`reply`] would answer as a list at `destination` (missing values as empty
/// strings; nothing deletes it) and answers its length.
fn store(
    call: &Call<'_, '_>,
    enc: &mut Encoder<'_>,
    destination: &[u8],
    chosen: &[Vec<u8>],
    gets: &[&[u8]],
) {
    let mut list = ListObject::new();
    for element in chosen {
        if gets.is_empty() {
            list.push(End::Tail, element);
        }
        for pattern in gets {
            list.push(
                End::Tail,
                &lookup(call, pattern, element).unwrap_or_default(),
            );
        }
    }
    let len = list.len();
    let ctx = call.ctx;
    let written = ctx.shared.store.edit(destination, ctx.now_ms, |entry| {
        if len == 0 {
            entry.remove();
            return Ok(());
        }
        entry.label("sortstore");
        entry.put_object(Object::List(list), Expiry::Never)
    });
    match written {
        Ok(()) => {
            enc.integer(len as i64);
            super::blocking::signal_ready(call, destination);
        }
        Err(error) => reply_store_error(enc, error),
    }
}
