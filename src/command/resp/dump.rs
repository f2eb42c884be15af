//! DUMP and RESTORE: a key's value as Redis's serialized payload (`persist::dump`), and a key
//! made from one, with redis-server 7.0's options and errors (`cluster.c` `dumpCommand`,
//! `restoreCommand`): REPLACE, ABSTTL, IDLETIME, FREQ, `-BUSYKEY`, "Invalid TTL value",
//! "DUMP payload version or checksum are wrong" and "Bad data format".
//!
//! Never decodes a payload with a shard lock held: the value is read first, then put in one
//! edit of the key (one effect, named `restore`).

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::{err, is, parse_i64, reply_store_error, Call};
use crate::command::Flow;
use crate::persist::dump::{self, DumpError};
use crate::persist::rdb_read::Value;
use crate::store::{Expiry, StoreError};

const BUSYKEY: &str = "BUSYKEY Target key name already exists.";

/// DUMP key
pub fn dump(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let now = call.ctx.now_ms;
    let payload = call.ctx.shared.store.peek(call.arg(1), now, |entry| {
        let view = entry.view()?;
        Some(match view.object() {
            Some(object) => dump::dump_object(object, now),
            None => dump::dump_string(view.value()),
        })
    });
    match payload {
        Some(payload) => enc.bulk(&payload),
        None => enc.null(),
    }
    Ok(Flow::Continue)
}

/// RESTORE's options.
#[derive(Default)]
struct Options {
    replace: bool,
    absttl: bool,
    idle_secs: Option<u64>,
    /// Checked as Redis checks it; the store keeps its own access counter (see the README).
    freq: Option<u8>,
}

fn parse_options(call: &Call<'_, '_>) -> Result<Options, &'static str> {
    let mut options = Options::default();
    let mut j = 4;
    while j < call.args.len() {
        let more = j + 1 < call.args.len();
        let arg = call.arg(j);
        if is(arg, "REPLACE") {
            options.replace = true;
        } else if is(arg, "ABSTTL") {
            options.absttl = true;
        } else if is(arg, "IDLETIME") && more && options.freq.is_none() {
            let idle = parse_i64(call.arg(j + 1)).ok_or(err::NOT_INTEGER)?;
            if idle < 0 {
                return Err("ERR Invalid IDLETIME value, must be >= 0");
            }
            options.idle_secs = Some(idle as u64);
            j += 1;
        } else if is(arg, "FREQ") && more && options.idle_secs.is_none() {
            let freq = parse_i64(call.arg(j + 1)).ok_or(err::NOT_INTEGER)?;
            options.freq = Some(
                u8::try_from(freq)
                    .map_err(|_| "ERR Invalid FREQ value, must be >= 0 and <= 255")?,
            );
            j += 1;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(options)
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
pub fn restore(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let options = match parse_options(call) {
        Ok(options) => options,
        Err(message) => {
            return Err(message.into());
        }
    };
    let (store, now) = (&call.ctx.shared.store, call.ctx.now_ms);
    let key = call.arg(1);
    // Redis's order: the key, the TTL, then the payload.
    if !options.replace && store.peek(key, now, |entry| entry.exists()) {
        return Err(BUSYKEY.into());
    }
    let ttl = match parse_i64(call.arg(2)) {
        Some(ttl) if ttl >= 0 => ttl as u64,
        Some(_) => {
            return Err("ERR Invalid TTL value, must be >= 0".into());
        }
        None => {
            return Err(err::NOT_INTEGER.into());
        }
    };
    let value = match dump::restore(call.arg(3)) {
        Ok(value) => value,
        Err(error @ (DumpError::VersionOrChecksum | DumpError::BadData(_))) => {
            return Err(format!("ERR {error}").into());
        }
    };
    let at_ms = match ttl {
        0 => None,
        ttl if options.absttl => Some(ttl),
        ttl => Some(ttl.saturating_add(now)),
    };
    let written = store.edit(key, now, |entry| -> Result<bool, StoreError> {
        if !options.replace && entry.exists() {
            return Ok(false);
        }
        // Already expired: the key is only deleted (if REPLACE found one), as Redis does.
        if at_ms.is_some_and(|at| at <= now) {
            entry.remove();
            return Ok(true);
        }
        let expiry = at_ms.map_or(Expiry::Never, Expiry::AtMs);
        entry.label("restore");
        match value {
            Value::String(bytes) => {
                entry.put_string(&bytes, 0, expiry)?;
            }
            Value::Object(object) => entry.put_object(object, expiry)?,
        }
        if let Some(idle) = options.idle_secs {
            entry.set_idle(idle);
        }
        Ok(true)
    });
    match written {
        Ok(true) => {
            enc.ok();
            super::blocking::signal_ready(call, key);
        }
        Ok(false) => enc.error(BUSYKEY),
        Err(error) => reply_store_error(enc, error),
    }
    Ok(Flow::Continue)
}
