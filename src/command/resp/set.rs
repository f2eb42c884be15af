//! Set commands (SADD ... SSCAN) over the store's [`SetObject`](crate::store::SetObject).
//!
//! Single-key commands run under the worker's gate; SMOVE and the algebra commands (SINTER,
//! SUNION, SDIFF, their STORE forms, SINTERCARD) read or write several keys and are EXCLUSIVE
//! in the command table. Replies of many parts stop once the output limit is passed (the
//! connection is then closed); SRANDMEMBER's repeated picks are bounded as HRANDFIELD's are.
//! RESP3 gets set replies (`~`) where Redis 7.0 sends them.

use std::borrow::Cow;

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::{err, events, is, parse_i64, parse_scan, reply_store_error, Call, ScanArgs};
use crate::command::Flow;
use crate::glob;
use crate::hashing::HashSet;
use crate::store::{IfMissing, Object, SetObject, StoreError};

const NUMKEYS: &str = "ERR numkeys should be greater than 0";
const TOO_MANY_KEYS: &str = "ERR Number of keys can't be greater than number of args";
const LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";

/// Runs `read` on the set at `key` (None if absent); `Err` if the key holds another type.
fn with_set<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    read: impl FnOnce(Option<&SetObject>) -> R,
) -> Result<R, StoreError> {
    super::with_object(
        call,
        key,
        |object| match object {
            Object::Set(set) => Some(set),
            _ => None,
        },
        read,
    )
}

/// Runs `write` on the set at `key` (created if `create`); an emptied set is removed. The
/// change is named by the command's event.
fn write_set<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    missing: IfMissing,
    write: impl FnOnce(Option<&mut SetObject>) -> R,
) -> Result<R, StoreError> {
    write_set_as(call, key, missing, events::of(call.arg(0)), write, |_| true)
}

/// [`write_set`] naming the change `event`, or no event when `changed` says the result
/// changed nothing.
fn write_set_as<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    missing: IfMissing,
    event: Option<&'static str>,
    write: impl FnOnce(Option<&mut SetObject>) -> R,
    changed: impl FnOnce(&R) -> bool,
) -> Result<R, StoreError> {
    call.ctx.shared.store.edit(key, call.ctx.now_ms, |entry| {
        let result = write(entry.set_mut(missing)?);
        events::label_if(entry, event, changed(&result));
        Ok(result)
    })
}

/// Writes `members` as a set reply (`~` in RESP3, an array in RESP2).
fn reply_members<'m>(enc: &mut Encoder<'_>, members: impl ExactSizeIterator<Item = Cow<'m, [u8]>>) {
    enc.set(members.len());
    for member in members {
        if enc.output_full() {
            break; // over the output limit: the connection closes
        }
        enc.bulk(&member);
    }
}

/// SADD key member [member ...]
pub fn sadd(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let members = &call.args[2..];
    let write = |set: Option<&mut SetObject>| {
        let set = set.expect("created");
        members.iter().filter(|m| set.insert(m)).count()
    };
    match write_set_as(
        call,
        call.arg(1),
        IfMissing::Create,
        Some("sadd"),
        write,
        |n| *n > 0,
    ) {
        Ok(added) => enc.integer(added as i64),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// SREM key member [member ...]
pub fn srem(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let members = &call.args[2..];
    let write = |set: Option<&mut SetObject>| {
        set.map_or(0, |s| members.iter().filter(|m| s.remove(m)).count())
    };
    match write_set_as(
        call,
        call.arg(1),
        IfMissing::Leave,
        Some("srem"),
        write,
        |n| *n > 0,
    ) {
        Ok(removed) => enc.integer(removed as i64),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// SCARD key
pub fn scard(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    match with_set(call, call.arg(1), |set| set.map_or(0, |s| s.len())) {
        Ok(n) => enc.integer(n as i64),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// SISMEMBER key member / SMISMEMBER key member [member ...]
pub fn sismember(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let many = is(call.arg(0), "SMISMEMBER");
    let members = &call.args[2..];
    let found = with_set(call, call.arg(1), |set| {
        members
            .iter()
            .map(|m| set.is_some_and(|s| s.contains(m)))
            .collect::<Vec<bool>>()
    });
    match found {
        Ok(found) if many => {
            enc.array(found.len());
            for hit in found {
                enc.integer(i64::from(hit));
            }
        }
        Ok(found) => enc.integer(i64::from(found[0])),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// SMEMBERS key
pub fn smembers(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let result = with_set(call, call.arg(1), |set| match set {
        Some(set) => {
            let members: Vec<Cow<'_, [u8]>> = set.iter().collect();
            reply_members(enc, members.into_iter());
        }
        None => enc.set(0),
    });
    if let Err(error) = result {
        reply_store_error(enc, error);
    }
    Ok(Flow::Continue)
}

/// SPOP key [count]
pub fn spop(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let count = match super::pop_count(call) {
        Ok(count) => count.map(|n| n as u64),
        Err(message) => {
            return Err(message.into());
        }
    };
    let popped = write_set(call, call.arg(1), IfMissing::Leave, |set| {
        let Some(set) = set else {
            return Vec::new();
        };
        let wanted = count.unwrap_or(1).min(set.len() as u64) as usize;
        let members: Vec<Vec<u8>> = if wanted == set.len() {
            set.iter().map(|m| m.into_owned()).collect()
        } else {
            let all: Vec<Cow<'_, [u8]>> = set.iter().collect();
            super::random::distinct_positions(all.len(), wanted as u64)
                .into_iter()
                .map(|i| all[i].to_vec())
                .collect()
        };
        for member in &members {
            set.remove(member);
        }
        members
    });
    match (popped, count) {
        (Err(error), _) => reply_store_error(enc, error),
        (Ok(popped), None) => match popped.first() {
            Some(member) => enc.bulk(member),
            None => enc.null(),
        },
        (Ok(popped), Some(_)) => reply_members(enc, popped.iter().map(|m| Cow::Borrowed(&m[..]))),
    }
    Ok(Flow::Continue)
}

/// SRANDMEMBER key [count]
pub fn srandmember(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.args.len() > 3 {
        return Err(err::SYNTAX.into());
    }
    let (count, _) = match super::random::parse_args(call, "") {
        Ok(parsed) => parsed,
        Err(message) => {
            return Err(message.into());
        }
    };
    let output_limit = enc.output_limit;
    let mut flow = Ok(Flow::Continue);
    let result = with_set(call, call.arg(1), |set| {
        let members: Vec<Cow<'_, [u8]>> = set.map(|s| s.iter().collect()).unwrap_or_default();
        let Some(count) = count else {
            if members.is_empty() {
                enc.null();
            } else {
                enc.bulk(&members[super::random::random() as usize % members.len()]);
            }
            return;
        };
        if count >= 0 && count.unsigned_abs() >= members.len() as u64 {
            // The whole set, in its own order, as Redis answers.
            enc.array(members.len());
            for member in &members {
                enc.bulk(member);
            }
            return;
        }
        if count >= 0 {
            let picks = super::random::distinct_positions(members.len(), count.unsigned_abs());
            enc.array(picks.len());
            for i in picks {
                enc.bulk(&members[i]);
            }
            return;
        }
        if members.is_empty() {
            enc.array(0);
            return;
        }
        flow = super::random::reply_repeated(
            enc,
            members.len(),
            count.unsigned_abs(),
            1,
            output_limit,
            |enc, i| enc.bulk(&members[i]),
        );
    });
    if let Err(error) = result {
        reply_store_error(enc, error);
    }
    flow
}

/// SMOVE source destination member (runs with every gate held)
pub fn smove(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let (source, destination, member) = (call.arg(1), call.arg(2), call.arg(3));
    let result = (|| -> Result<bool, StoreError> {
        let present = with_set(call, source, |set| set.map(|s| s.contains(member)))?;
        // Redis checks the destination's type once the source exists.
        let Some(present) = present else {
            return Ok(false);
        };
        // Redis checks the destination's type once the source exists, and leaves a
        // destination that already holds the member untouched (WATCH sees no change).
        let in_destination = with_set(call, destination, |set| {
            set.is_some_and(|s| s.contains(member))
        })?;
        if !present {
            return Ok(false);
        }
        if source == destination {
            return Ok(true);
        }
        let remove = |set: Option<&mut SetObject>| set.map(|s| s.remove(member));
        write_set_as(call, source, IfMissing::Leave, Some("srem"), remove, |_| {
            true
        })?;
        if !in_destination {
            let add = |set: Option<&mut SetObject>| set.expect("created").insert(member);
            write_set_as(
                call,
                destination,
                IfMissing::Create,
                Some("sadd"),
                add,
                |added| *added,
            )?;
        }
        Ok(true)
    })();
    match result {
        Ok(moved) => enc.integer(i64::from(moved)),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// Which algebra.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Algebra {
    Inter,
    Union,
    Diff,
}

impl Algebra {
    fn of(name: &[u8]) -> Algebra {
        let name = name.to_ascii_uppercase();
        if name.starts_with(b"SINTER") {
            Algebra::Inter
        } else if name.starts_with(b"SUNION") {
            Algebra::Union
        } else {
            Algebra::Diff
        }
    }
}

/// Copies the members of the set at `key` out of the store (`None` if absent).
fn load(call: &Call<'_, '_>, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
    with_set(call, key, |set| {
        set.map(|s| s.iter().map(|m| m.into_owned()).collect())
    })
}

/// The members of `algebra` over `keys`, in first-seen order. Bounded by the sources' sizes.
/// Every key's type is checked first, also when an absent key empties an intersection.
fn combine(
    call: &Call<'_, '_>,
    algebra: Algebra,
    keys: &[Cow<'_, [u8]>],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut sources = Vec::with_capacity(keys.len());
    let mut any_absent = false;
    for key in keys {
        match load(call, key)? {
            Some(members) => sources.push(members),
            None => {
                any_absent = true;
                sources.push(Vec::new());
            }
        }
    }
    if algebra == Algebra::Inter && any_absent {
        return Ok(Vec::new());
    }
    let mut sources = sources.into_iter();
    let first = sources.next().unwrap_or_default();
    let result = match algebra {
        Algebra::Union => {
            let mut seen: HashSet<Vec<u8>> = HashSet::default();
            let mut out = Vec::new();
            for member in first.into_iter().chain(sources.flatten()) {
                if seen.insert(member.clone()) {
                    out.push(member);
                }
            }
            out
        }
        Algebra::Inter => {
            let others: Vec<HashSet<Vec<u8>>> = sources.map(|s| s.into_iter().collect()).collect();
            first
                .into_iter()
                .filter(|m| others.iter().all(|o| o.contains(m)))
                .collect()
        }
        Algebra::Diff => {
            let others: HashSet<Vec<u8>> = sources.flatten().collect();
            first.into_iter().filter(|m| !others.contains(m)).collect()
        }
    };
    Ok(result)
}

/// SINTER / SUNION / SDIFF key [key ...] (runs with every gate held)
pub fn scombine(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    match combine(call, Algebra::of(call.arg(0)), &call.args[1..]) {
        Ok(members) => {
            // Answered in the order of the set they make (sorted when all integers), as Redis
            // builds the result set before replying.
            let set = collect(&members);
            let members: Vec<Cow<'_, [u8]>> = set.iter().collect();
            reply_members(enc, members.into_iter());
        }
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

fn collect(members: &[Vec<u8>]) -> SetObject {
    let mut set = SetObject::new();
    for member in members {
        set.insert(member);
    }
    set
}

/// SINTERSTORE / SUNIONSTORE / SDIFFSTORE destination key [key ...] (every gate held)
pub fn sstore(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let result = combine(call, Algebra::of(call.arg(0)), &call.args[2..]).and_then(|members| {
        let set = collect(&members);
        let len = set.len();
        call.ctx
            .shared
            .store
            .edit(call.arg(1), call.ctx.now_ms, |entry| {
                // An empty result deletes the destination: only `del` is told.
                if !set.is_empty() {
                    events::label(entry, call);
                }
                entry.put_set(set)
            })?;
        Ok(len)
    });
    match result {
        Ok(len) => enc.integer(len as i64),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit] (runs with every gate held)
pub fn sintercard(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let parsed = (|| {
        let numkeys = parse_i64(call.arg(1)).filter(|n| *n > 0).ok_or(NUMKEYS)? as u64;
        if numkeys > (call.args.len() - 2) as u64 {
            return Err(TOO_MANY_KEYS);
        }
        let keys_end = 2 + numkeys as usize;
        let limit = match &call.args[keys_end..] {
            [] => 0,
            [word, value] if is(word, "LIMIT") => {
                parse_i64(value).filter(|n| *n >= 0).ok_or(LIMIT_NEGATIVE)? as usize
            }
            _ => return Err(err::SYNTAX),
        };
        Ok((keys_end, limit))
    })();
    let (keys_end, limit) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            return Err(message.into());
        }
    };
    match combine(call, Algebra::Inter, &call.args[2..keys_end]) {
        Ok(members) => {
            let n = if limit == 0 {
                members.len()
            } else {
                members.len().min(limit)
            };
            enc.integer(n as i64);
        }
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let ScanArgs {
        cursor,
        pattern,
        count,
        ..
    } = match parse_scan(call.args, 2, false, false) {
        Ok(scan) => scan,
        Err(message) => {
            return Err(message.into());
        }
    };
    let result = with_set(call, call.arg(1), |set| {
        let (members, next) = match set {
            Some(set) => set.scan(cursor as usize, count),
            None => (Vec::new(), 0),
        };
        let chosen: Vec<Cow<'_, [u8]>> = members
            .into_iter()
            .filter(|m| pattern.as_deref().is_none_or(|p| glob::matches(p, m)))
            .collect();
        enc.array(2);
        enc.bulk(next.to_string().as_bytes());
        enc.array(chosen.len());
        for member in chosen {
            if enc.output_full() {
                break; // over the output limit: the connection closes
            }
            enc.bulk(&member);
        }
    });
    if let Err(error) = result {
        reply_store_error(enc, error);
    }
    Ok(Flow::Continue)
}
