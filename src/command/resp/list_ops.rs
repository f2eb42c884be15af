//! What the list commands and the blocking pops share: reading and writing a key's list in the
//! store, the LEFT/RIGHT and LMPOP argument grammar, popping and replying with popped
//! elements, and the two-key move of LMOVE. Below both `list.rs` and `blocking.rs` (which
//! import it and never each other's helpers); never serves blocked clients itself.

use ferrocache_protocol::resp::Encoder;

use super::{err, events, is, parse_i64, Call};
use crate::command::{Context, Flow};
use crate::store::{End, IfMissing, ListObject, StoreError};

pub(super) const NUMKEYS: &str = "ERR numkeys should be greater than 0";
pub(super) const COUNT_ZERO: &str = "ERR count should be greater than 0";

/// Runs `write` on the list at `key` (created if `create`). An emptied list is removed when
/// the edit ends. The change is named by the command's event.
pub(super) fn write_list<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    missing: IfMissing,
    write: impl FnOnce(Option<&mut ListObject>) -> R,
) -> Result<R, StoreError> {
    edit_list(call.ctx, key, missing, events::of(call.arg(0)), write)
}

/// [`write_list`] naming the change by the command's event only when `changed` says the
/// result changed something (LINSERT without its pivot, LREM of nothing: no event).
pub(super) fn write_list_if<R>(
    call: &Call<'_, '_>,
    key: &[u8],
    missing: IfMissing,
    write: impl FnOnce(Option<&mut ListObject>) -> R,
    changed: impl FnOnce(&R) -> bool,
) -> Result<R, StoreError> {
    let event = events::of(call.arg(0));
    call.ctx.shared.store.edit(key, call.ctx.now_ms, |entry| {
        let result = write(entry.list_mut(missing)?);
        events::label_if(entry, event, changed(&result));
        Ok(result)
    })
}

/// [`write_list`] naming the change `event` (`None`: unnamed), for callers without a
/// [`Call`] (serving a parked client) or whose keys take different events.
pub(super) fn edit_list<R>(
    ctx: &Context<'_>,
    key: &[u8],
    missing: IfMissing,
    event: Option<&'static str>,
    write: impl FnOnce(Option<&mut ListObject>) -> R,
) -> Result<R, StoreError> {
    ctx.shared.store.edit(key, ctx.now_ms, |entry| {
        let result = write(entry.list_mut(missing)?);
        if let Some(event) = event {
            entry.label(event);
        }
        Ok(result)
    })
}

/// The event of a pop from `end`.
pub(super) fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

/// The event of a push to `end`.
pub(super) fn push_event(end: End) -> &'static str {
    match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    }
}

/// `LEFT` / `RIGHT` as a list end.
pub(super) fn parse_end(arg: &[u8]) -> Option<End> {
    if is(arg, "LEFT") {
        Some(End::Head)
    } else if is(arg, "RIGHT") {
        Some(End::Tail)
    } else {
        None
    }
}

/// Pops up to `count` elements from `end`, stopping early once their bytes pass
/// `byte_budget` (the reply could not be sent whole: the connection closes).
pub(super) fn pop_some(
    list: &mut ListObject,
    end: End,
    count: usize,
    byte_budget: usize,
) -> Vec<Vec<u8>> {
    let mut popped = Vec::new();
    let mut bytes = 0;
    while popped.len() < count && bytes <= byte_budget {
        let Some(element) = list.pop(end) else {
            break;
        };
        bytes += element.len();
        popped.push(element);
    }
    popped
}

/// Writes popped elements as an array; `Close` when the pop stopped at the output limit.
pub(super) fn reply_popped(enc: &mut Encoder<'_>, popped: &[Vec<u8>], wanted: usize) -> Flow {
    enc.array(popped.len());
    for element in popped {
        enc.bulk(element);
    }
    if popped.len() < wanted && enc.output_full() {
        Flow::Close
    } else {
        Flow::Continue
    }
}

/// Moves one element from `source`'s `from` end to `destination`'s `to` end: `Ok(None)` when
/// the source is absent. The caller holds every gate. Both types are checked before anything
/// moves; if the destination cannot take the element (out of memory) it goes back.
pub(super) fn move_in_store(
    ctx: &Context<'_>,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
) -> Result<Option<Vec<u8>>, StoreError> {
    if source == destination {
        // Redis names the push, then the pop, on the one key.
        let (pop, push) = (pop_event(from), push_event(to));
        return ctx.shared.store.edit(source, ctx.now_ms, |entry| {
            entry.label(push);
            entry.label(pop);
            Ok(entry.list_mut(IfMissing::Leave)?.map(|list| {
                let element = list.pop(from).expect("a stored list is never empty");
                list.push(to, &element);
                element
            }))
        });
    }
    let (store, now) = (&ctx.shared.store, ctx.now_ms);
    let exists = store
        .peek(source, now, |entry| entry.list().map(|l| l.is_some()))
        .map_err(|_| StoreError::WrongType)?;
    if !exists {
        return Ok(None);
    }
    if store.peek(destination, now, |entry| entry.list().is_err()) {
        return Err(StoreError::WrongType);
    }
    let Some(element) = edit_list(
        ctx,
        source,
        IfMissing::Leave,
        Some(pop_event(from)),
        |list| list.and_then(|l| l.pop(from)),
    )?
    else {
        return Ok(None);
    };
    let pushed = edit_list(
        ctx,
        destination,
        IfMissing::Create,
        Some(push_event(to)),
        |list| list.expect("created").push(to, &element),
    );
    if let Err(outcome) = pushed {
        let _ = edit_list(ctx, source, IfMissing::Create, None, |list| {
            list.expect("created").push(from, &element)
        });
        return Err(outcome);
    }
    Ok(Some(element))
}

/// LMPOP's parsed arguments: the keys, the end, the count.
pub(super) struct Mpop<'c> {
    pub keys: &'c [std::borrow::Cow<'c, [u8]>],
    pub end: End,
    pub count: usize,
}

/// Parses `numkeys key [key ...] LEFT|RIGHT [COUNT count]` starting at `args[at]`.
pub(super) fn parse_mpop<'c>(
    args: &'c [std::borrow::Cow<'c, [u8]>],
    at: usize,
) -> Result<Mpop<'c>, &'static str> {
    let numkeys = parse_i64(&args[at]).filter(|n| *n > 0).ok_or(NUMKEYS)? as u64;
    let rest = (args.len() - at - 1) as u64;
    if numkeys >= rest {
        return Err(err::SYNTAX);
    }
    let keys_end = at + 1 + numkeys as usize;
    let end = parse_end(&args[keys_end]).ok_or(err::SYNTAX)?;
    let count = match &args[keys_end + 1..] {
        [] => 1,
        [word, value] if is(word, "COUNT") => {
            parse_i64(value).filter(|n| *n > 0).ok_or(COUNT_ZERO)? as usize
        }
        _ => return Err(err::SYNTAX),
    };
    Ok(Mpop {
        keys: &args[at + 1..keys_end],
        end,
        count,
    })
}

/// What LMPOP took: the key it popped from and the elements.
pub(super) struct Popped {
    pub key: Vec<u8>,
    pub elements: Vec<Vec<u8>>,
}

/// Pops from the first non-empty list among `keys`, or `None` when all are empty.
pub(super) fn mpop_first(
    call: &Call<'_, '_>,
    mpop: &Mpop<'_>,
    byte_budget: usize,
) -> Result<Option<Popped>, StoreError> {
    for key in mpop.keys {
        let event = Some(pop_event(mpop.end));
        let popped = edit_list(call.ctx, key, IfMissing::Leave, event, |list| {
            list.map(|l| pop_some(l, mpop.end, mpop.count, byte_budget))
        })?;
        if let Some(elements) = popped {
            return Ok(Some(Popped {
                key: key.to_vec(),
                elements,
            }));
        }
    }
    Ok(None)
}

/// Writes LMPOP's `[key, [elements]]`.
pub(super) fn reply_mpop(
    enc: &mut Encoder<'_>,
    key: &[u8],
    popped: &[Vec<u8>],
    wanted: usize,
) -> Flow {
    enc.array(2);
    enc.bulk(key);
    reply_popped(enc, popped, wanted)
}
