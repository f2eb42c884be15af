//! Redis's keyspace event names: which event a RESP command's change is named by (the
//! `notifyKeyspaceEvent` calls of redis-server 7.0's `t_*.c`, `db.c` and `expire.c`). The
//! command layer labels its store edits with them ([`Entry::label`]), the store carries them
//! into the effect, and `pubsub::KeyspaceNotifier` publishes them.
//!
//! Never publishes and never reads the store: it only names. A command whose keys take
//! different events (LMOVE's `lpop` and `rpush`, SMOVE's `srem` and `sadd`, RENAME) names each
//! edit itself with [`Entry::label`].

use super::Call;
use crate::store::Entry;

/// The event a command's change to its key is named by; `None` when the command names its
/// edits itself (or changes nothing an event names).
pub(super) fn of(command: &[u8]) -> Option<&'static str> {
    let name = command.to_ascii_lowercase();
    Some(match name.as_slice() {
        b"lpush" | b"lpushx" => "lpush",
        b"rpush" | b"rpushx" => "rpush",
        b"lpop" | b"blpop" => "lpop",
        b"rpop" | b"brpop" => "rpop",
        b"lset" => "lset",
        b"linsert" => "linsert",
        b"lrem" => "lrem",
        b"ltrim" => "ltrim",
        b"sadd" => "sadd",
        b"srem" => "srem",
        b"spop" => "spop",
        b"sinterstore" => "sinterstore",
        b"sunionstore" => "sunionstore",
        b"sdiffstore" => "sdiffstore",
        b"hset" | b"hmset" | b"hsetnx" => "hset",
        b"hdel" => "hdel",
        b"hincrby" => "hincrby",
        b"hincrbyfloat" => "hincrbyfloat",
        // Redis 7.4's names for its field TTLs.
        b"hexpire" | b"hpexpire" | b"hexpireat" | b"hpexpireat" => "hexpire",
        b"hpersist" => "hpersist",
        b"zadd" => "zadd",
        b"zincrby" => "zincr",
        b"zrem" => "zrem",
        b"zremrangebyscore" => "zremrangebyscore",
        b"zremrangebyrank" => "zremrangebyrank",
        b"zremrangebylex" => "zremrangebylex",
        b"zpopmin" | b"bzpopmin" => "zpopmin",
        b"zpopmax" | b"bzpopmax" => "zpopmax",
        b"zunionstore" => "zunionstore",
        b"zinterstore" => "zinterstore",
        b"zdiffstore" => "zdiffstore",
        b"zrangestore" => "zrangestore",
        b"set" | b"setnx" | b"setex" | b"psetex" | b"getset" | b"mset" | b"msetnx" => "set",
        b"append" => "append",
        b"setrange" => "setrange",
        // DECR and DECRBY too: redis-server 7.0's incrDecrCommand names both `incrby`.
        b"incr" | b"incrby" | b"decr" | b"decrby" => "incrby",
        b"incrbyfloat" => "incrbyfloat",
        b"expire" | b"pexpire" | b"expireat" | b"pexpireat" => "expire",
        b"persist" => "persist",
        b"getdel" => "del",
        _ => return None,
    })
}

/// Labels `entry`'s change with the event `call`'s command is named by, if it has one.
pub(super) fn label(entry: &mut Entry<'_>, call: &Call<'_, '_>) {
    if let Some(event) = of(call.arg(0)) {
        entry.label(event);
    }
}

/// Labels `entry`'s change with `event` when `changed`, else says it names no event (Redis
/// notifies SADD, SREM, ZADD, ZREM, HDEL... only when they changed something). With no
/// `event` the change stays unnamed.
pub(super) fn label_if(entry: &mut Entry<'_>, event: Option<&'static str>, changed: bool) {
    match event {
        Some(event) if changed => entry.label(event),
        Some(_) => entry.unlabelled(),
        None => {}
    }
}
