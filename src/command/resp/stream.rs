//! Stream commands on entries (XADD XRANGE XREVRANGE XLEN XDEL XTRIM XSETID) over the store's
//! [`StreamObject`], and the argument words every stream command shares: ids, intervals,
//! trimming options, the entry reply. Groups live in `stream_group`, reads in `stream_read`,
//! XINFO in `stream_info`.
//!
//! Replies and errors follow Redis 7.0's `t_stream.c`. Single-key commands run under the
//! worker's gate; every write goes through the store's edit of the key. Replies of many
//! entries stop once the output limit is passed (the connection is then closed).

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
pub use super::stream_common::*;
use super::{err, is, reply_store_error, Call};
use crate::command::Flow;
use crate::store::stream::{node_max_entries, IdRequest, StreamError, StreamId, Trim, TrimTo};
use crate::store::IfMissing;

const ADD_TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
const ADD_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";
const EXHAUSTED: &str =
    "ERR The stream has exhausted the last possible ID, unable to add more items";
const MAXLEN_AND_MINID: &str =
    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";

/// XADD's and XTRIM's options.
struct AddArgs {
    trim: Option<Trim>,
    nomkstream: bool,
    /// XADD's id and where it stands (the fields follow it).
    id: Option<(IdRequest, usize)>,
}

/// Parses `[NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT n]] id` (XADD) or the trimming
/// options alone (XTRIM) from argument 2 on, as `streamParseAddOrTrimArgsOrReply` does.
fn parse_add_or_trim(args: &[std::borrow::Cow<'_, [u8]>], xadd: bool) -> Result<AddArgs, String> {
    let mut parsed = AddArgs {
        trim: None,
        nomkstream: false,
        id: None,
    };
    let (mut approx, mut limit, mut limit_given) = (false, 0i64, false);
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        if xadd && opt == b"*" {
            parsed.id = Some((IdRequest::Auto, i));
            break;
        } else if (is(opt, "MAXLEN") || is(opt, "MINID")) && more > 0 {
            if parsed.trim.is_some() {
                return Err(MAXLEN_AND_MINID.into());
            }
            approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && (next == b"~" || next == b"=") {
                approx = next == b"~";
                i += 1;
            }
            let threshold = &args[i + 1][..];
            let to = if is(opt, "MAXLEN") {
                let max = parse_count(threshold)?;
                if max < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.".into());
                }
                TrimTo::MaxLen(max as u64)
            } else {
                TrimTo::MinId(parse_id(threshold, 0, true).ok_or(INVALID_ID)?)
            };
            parsed.trim = Some(Trim {
                to,
                approx,
                limit: 0,
            });
            i += 2;
            continue;
        } else if is(opt, "LIMIT") && more > 0 {
            limit = parse_count(&args[i + 1])?;
            if limit < 0 {
                return Err("ERR The LIMIT argument must be >= 0.".into());
            }
            limit_given = true;
            i += 2;
            continue;
        } else if xadd && is(opt, "NOMKSTREAM") {
            parsed.nomkstream = true;
        } else if xadd {
            let id = if let Some(ms) = opt.strip_suffix(b"-*") {
                IdRequest::Ms(parse_u64(ms).ok_or(INVALID_ID)?)
            } else {
                IdRequest::Exact(parse_id(opt, 0, true).ok_or(INVALID_ID)?)
            };
            parsed.id = Some((id, i));
            break;
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 1;
    }
    if limit > 0 && parsed.trim.is_none() {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy".into(),
        );
    }
    if !xadd && parsed.trim.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy".into());
    }
    if let Some(trim) = parsed.trim.as_mut() {
        if limit_given {
            if !approx {
                return Err(
                    "ERR syntax error, LIMIT cannot be used without the special ~ option".into(),
                );
            }
            trim.limit = limit as u64;
        } else if approx {
            trim.limit = (100 * node_max_entries() as u64).clamp(1, 1_000_000);
            if node_max_entries() == 0 {
                trim.limit = 10_000;
            }
        }
    }
    Ok(parsed)
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
pub fn xadd(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let parsed = match parse_add_or_trim(call.args, true) {
        Ok(parsed) => parsed,
        Err(message) => {
            return Err(message.into());
        }
    };
    let field_pos = parsed.id.map_or(call.args.len() + 1, |(_, at)| at + 1);
    let fields = call.args.len() as i64 - field_pos as i64;
    let Some((request, _)) = parsed.id.filter(|_| fields >= 2 && fields % 2 == 0) else {
        return Err("ERR wrong number of arguments for 'xadd' command".into());
    };
    if request == IdRequest::Exact(StreamId::MIN) {
        return Err(ADD_ZERO.into());
    }
    let missing = if parsed.nomkstream {
        IfMissing::Leave
    } else {
        IfMissing::Create
    };
    let flat = &call.args[field_pos..];
    let now = call.ctx.now_ms;
    let added = write_stream(call, call.arg(1), missing, |stream, events| {
        let stream = stream?;
        let id = stream.add(request, flat, now);
        if id.is_ok() {
            events.push("xadd");
            if let Some(trim) = parsed.trim {
                if stream.trim(trim) > 0 {
                    events.push("xtrim");
                }
            }
        }
        Some(id)
    });
    match added {
        Err(error) => reply_store_error(enc, error),
        Ok(None) => enc.null(),
        Ok(Some(Err(StreamError::Exhausted))) => enc.error(EXHAUSTED),
        Ok(Some(Err(_))) => enc.error(ADD_TOO_SMALL),
        Ok(Some(Ok(id))) => {
            reply_id(enc, id);
            let key = call.arg(1).to_vec();
            super::stream_read::stream_ready(call, &key);
        }
    }
    Ok(Flow::Continue)
}

/// XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n]
pub fn xrange(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let rev = is(call.arg(0), "XREVRANGE");
    let (start_arg, end_arg) = if rev { (3, 2) } else { (2, 3) };
    let bounds = parse_interval(call.arg(start_arg), true)
        .and_then(|start| Ok((start, parse_interval(call.arg(end_arg), false)?)));
    let (start, end) = match bounds {
        Ok(bounds) => bounds,
        Err(message) => {
            return Err(message.into());
        }
    };
    let mut count: Option<usize> = None;
    let mut i = 4;
    while i < call.args.len() {
        if is(call.arg(i), "COUNT") && i + 1 < call.args.len() {
            match parse_count(call.arg(i + 1)) {
                Ok(n) => count = Some(n.max(0) as usize),
                Err(message) => {
                    return Err(message.into());
                }
            }
            i += 2;
        } else {
            return Err(err::SYNTAX.into());
        }
    }
    let result = with_stream(call, call.arg(1), |stream| match stream {
        None => enc.array(0),
        Some(_) if count == Some(0) => enc.null_array(),
        Some(stream) => {
            let take = count.unwrap_or(usize::MAX);
            reply_entries(enc, || stream.range(start, end, rev).take(take));
        }
    });
    if result.is_err() {
        wrong_type(enc);
    }
    Ok(Flow::Continue)
}

/// XLEN key
pub fn xlen(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    match with_stream(call, call.arg(1), |s| s.map_or(0, |s| s.len())) {
        Ok(n) => enc.integer(n as i64),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// XDEL key id [id ...]
pub fn xdel(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(ids) = parse_ids(call.args, 2) else {
        return Err(INVALID_ID.into());
    };
    let deleted = write_stream(call, call.arg(1), IfMissing::Leave, |stream, events| {
        let deleted = stream.map_or(0, |s| ids.iter().filter(|&&id| s.delete(id)).count());
        if deleted > 0 {
            events.push("xdel");
        }
        deleted
    });
    match deleted {
        Ok(n) => enc.integer(n as i64),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let trim = match parse_add_or_trim(call.args, false) {
        Ok(AddArgs {
            trim: Some(trim), ..
        }) => trim,
        Ok(_) => {
            return Err(err::SYNTAX.into());
        }
        Err(message) => {
            return Err(message.into());
        }
    };
    match write_stream(call, call.arg(1), IfMissing::Leave, |stream, events| {
        let trimmed = stream.map_or(0, |s| s.trim(trim));
        if trimmed > 0 {
            events.push("xtrim");
        }
        trimmed
    }) {
        Ok(n) => enc.integer(n as i64),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]
pub fn xsetid(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let Some(id) = parse_id(call.arg(2), 0, true) else {
        return Err(INVALID_ID.into());
    };
    let (mut added, mut max_deleted) = (None, None);
    let mut i = 3;
    while i < call.args.len() {
        let more = call.args.len() - 1 - i;
        if is(call.arg(i), "ENTRIESADDED") && more > 0 {
            match parse_count(call.arg(i + 1)) {
                Ok(n) if n >= 0 => added = Some(n as u64),
                Ok(_) => {
                    return Err("ERR entries_added must be positive".into());
                }
                Err(message) => {
                    return Err(message.into());
                }
            }
        } else if is(call.arg(i), "MAXDELETEDID") && more > 0 {
            let Some(max) = parse_id(call.arg(i + 1), 0, true) else {
                return Err(INVALID_ID.into());
            };
            if id < max {
                return Err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id".into());
            }
            max_deleted = Some(max);
        } else {
            return Err(err::SYNTAX.into());
        }
        i += 2;
    }
    let result = write_stream(call, call.arg(1), IfMissing::Leave, |stream, events| {
        let set = stream.map(|s| s.set_id(id, added, max_deleted));
        if matches!(set, Some(Ok(()))) {
            events.push("xsetid");
        }
        set
    });
    match result {
        Err(error) => reply_store_error(enc, error),
        Ok(None) => enc.error("ERR no such key"),
        Ok(Some(Ok(()))) => enc.ok(),
        Ok(Some(Err(StreamError::EntriesAddedTooSmall))) => enc.error(
            "ERR The entries_added specified in XSETID is smaller than the target stream length",
        ),
        Ok(Some(Err(_))) => {
            enc.error("ERR The ID specified in XSETID is smaller than the target stream top item")
        }
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_reads_them() {
        assert_eq!(parse_id(b"5", 7, true), Some(StreamId::new(5, 7)));
        assert_eq!(parse_id(b"5-3", 7, true), Some(StreamId::new(5, 3)));
        assert_eq!(parse_id(b"-", 0, false), Some(StreamId::MIN));
        assert_eq!(parse_id(b"+", 0, true), None);
        assert_eq!(parse_id(b"5-x", 0, true), None);
        assert_eq!(parse_id(b"-5", 0, false), None);
        assert_eq!(parse_interval(b"(5-3", true), Ok(StreamId::new(5, 4)));
        assert_eq!(
            parse_interval(b"(5-0", false),
            Ok(StreamId::new(4, u64::MAX))
        );
        assert!(parse_interval(b"(0-0", false).is_err());
    }
}
