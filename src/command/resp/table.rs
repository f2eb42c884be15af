//! The static table of RESP commands: name, arity, flags, key positions, group, handler.
//!
//! Arity follows Redis: `n > 0` means exactly `n` arguments (name included), `n < 0` at least
//! `-n`. Flags drive the dispatcher: `EXCLUSIVE` commands run with every worker's gate held
//! (atomic across keys and clients), `NOT_QUEUED` commands run even inside MULTI, `NO_AUTH`
//! commands run before authentication. Invariant (tested): names are lower-case and unique.

use std::sync::OnceLock;

use ferrocache_protocol::resp::Encoder;

use super::spec::{CommandSpec, Flags, Registry};
use super::{
    acl, blocking, client, connection, dump, functions, hash, keys, list, observe, persist, pubsub,
    replication, scripting, server, set, settings, sort, stream, stream_group, stream_info,
    stream_read, strings, tx, zset, zset_ops,
};
use crate::command::Flow;

const W: Flags = Flags::WRITE;
const R: Flags = Flags::READONLY;
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const RF: Flags = Flags::READONLY.with(Flags::FAST);
const WX: Flags = Flags::WRITE.with(Flags::EXCLUSIVE);
const RX: Flags = Flags::READONLY.with(Flags::EXCLUSIVE);
const CONN: Flags = Flags::NO_AUTH.with(Flags::FAST);

macro_rules! commands {
    ($( $name:literal, $arity:expr, $flags:expr, ($first:expr, $last:expr, $step:expr), $group:literal, $summary:literal, $handler:path; )*) => {
        pub static COMMANDS: &[CommandSpec] = &[
            $(CommandSpec {
                name: $name,
                arity: $arity,
                flags: $flags,
                first_key: $first,
                last_key: $last,
                step: $step,
                group: $group,
                summary: $summary,
                handler: $handler,
            },)*
        ];
    };
}

commands! {
    // connection
    "ping", -1, Flags::FAST, (0, 0, 0), "connection", "Returns the server's liveliness response.", connection::ping;
    "echo", 2, Flags::FAST, (0, 0, 0), "connection", "Returns the given string.", connection::echo;
    "hello", -1, CONN, (0, 0, 0), "connection", "Handshakes with the server.", connection::hello;
    "auth", -2, CONN, (0, 0, 0), "connection", "Authenticates the connection.", connection::auth;
    "select", 2, Flags::FAST, (0, 0, 0), "connection", "Changes the selected database.", connection::select;
    "quit", -1, CONN.with(Flags::NOT_QUEUED), (0, 0, 0), "connection", "Closes the connection.", connection::quit;
    "reset", 1, CONN.with(Flags::NOT_QUEUED), (0, 0, 0), "connection", "Resets the connection.", connection::reset;
    "client", -2, Flags::NONE, (0, 0, 0), "connection", "A container for client connection commands.", client::client;
    // strings
    "get", 2, RF, (1, 1, 1), "string", "Returns the string value of a key.", strings::get;
    "set", -3, W, (1, 1, 1), "string", "Sets the string value of a key.", strings::set;
    "setnx", 3, WF, (1, 1, 1), "string", "Set the string value of a key only when the key doesn't exist.", strings::setnx;
    "setex", 4, W, (1, 1, 1), "string", "Sets the string value and expiration time of a key.", strings::setex;
    "psetex", 4, W, (1, 1, 1), "string", "Sets the string value and expiration time in milliseconds of a key.", strings::setex;
    "getset", 3, WF, (1, 1, 1), "string", "Returns the previous string value of a key after setting it to a new value.", strings::getset;
    "getdel", 2, WF, (1, 1, 1), "string", "Returns the string value of a key after deleting the key.", strings::getdel;
    "getex", -2, WF, (1, 1, 1), "string", "Returns the string value of a key after setting its expiration time.", strings::getex;
    "mget", -2, RF, (1, -1, 1), "string", "Atomically returns the string values of one or more keys.", strings::mget;
    "mset", -3, WX, (1, -1, 2), "string", "Atomically creates or modifies the string values of one or more keys.", strings::mset;
    "msetnx", -3, WX, (1, -1, 2), "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", strings::mset;
    "incr", 2, WF, (1, 1, 1), "string", "Increments the integer value of a key by one.", strings::incr;
    "decr", 2, WF, (1, 1, 1), "string", "Decrements the integer value of a key by one.", strings::incr;
    "incrby", 3, WF, (1, 1, 1), "string", "Increments the integer value of a key by a number.", strings::incr;
    "decrby", 3, WF, (1, 1, 1), "string", "Decrements a number from the integer value of a key.", strings::incr;
    "incrbyfloat", 3, WF, (1, 1, 1), "string", "Increment the floating point value of a key by a number.", strings::incrbyfloat;
    "append", 3, WF, (1, 1, 1), "string", "Appends a string to the value of a key.", strings::append;
    "strlen", 2, RF, (1, 1, 1), "string", "Returns the length of a string value.", strings::strlen;
    "getrange", 4, R, (1, 1, 1), "string", "Returns a substring of the string stored at a key.", strings::getrange;
    "substr", 4, R, (1, 1, 1), "string", "Returns a substring from a string value.", strings::getrange;
    "setrange", 4, W, (1, 1, 1), "string", "Overwrites a part of a string value with another by an offset.", strings::setrange;
    // keys
    "del", -2, W, (1, -1, 1), "generic", "Deletes one or more keys.", keys::del;
    "unlink", -2, WF, (1, -1, 1), "generic", "Asynchronously deletes one or more keys.", keys::del;
    "exists", -2, RF, (1, -1, 1), "generic", "Determines whether one or more keys exist.", keys::exists;
    "touch", -2, RF, (1, -1, 1), "generic", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", keys::touch;
    "expire", -3, WF, (1, 1, 1), "generic", "Sets the expiration time of a key in seconds.", keys::expire;
    "pexpire", -3, WF, (1, 1, 1), "generic", "Sets the expiration time of a key in milliseconds.", keys::expire;
    "expireat", -3, WF, (1, 1, 1), "generic", "Sets the expiration time of a key to a Unix timestamp.", keys::expire;
    "pexpireat", -3, WF, (1, 1, 1), "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", keys::expire;
    "ttl", 2, RF, (1, 1, 1), "generic", "Returns the expiration time in seconds of a key.", keys::ttl;
    "pttl", 2, RF, (1, 1, 1), "generic", "Returns the expiration time in milliseconds of a key.", keys::ttl;
    "expiretime", 2, RF, (1, 1, 1), "generic", "Returns the expiration time of a key as a Unix timestamp.", keys::ttl;
    "pexpiretime", 2, RF, (1, 1, 1), "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.", keys::ttl;
    "persist", 2, WF, (1, 1, 1), "generic", "Removes the expiration time of a key.", keys::persist;
    "type", 2, RF, (1, 1, 1), "generic", "Determines the type of value stored at a key.", keys::type_of;
    "sort", -2, WX, (1, 1, 1), "generic", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", sort::sort;
    "sort_ro", -2, RX, (1, 1, 1), "generic", "Returns the sorted elements of a list, a set, or a sorted set.", sort::sort;
    "dump", 2, R, (1, 1, 1), "generic", "Returns a serialized representation of the value stored at a key.", dump::dump;
    "restore", -4, W, (1, 1, 1), "generic", "Creates a key from the serialized representation of a value.", dump::restore;
    "memory", -2, R, (2, 2, 1), "server", "A container for memory diagnostics commands.", keys::memory;
    "copy", -3, WX, (1, 2, 1), "generic", "Copies the value of a key to a new key.", keys::copy;
    "rename", 3, WX, (1, 2, 1), "generic", "Renames a key and overwrites the destination.", keys::rename;
    "renamenx", 3, WX.with(Flags::FAST), (1, 2, 1), "generic", "Renames a key only when the target key name doesn't exist.", keys::rename;
    "keys", 2, R, (0, 0, 0), "generic", "Returns all key names that match a pattern.", keys::keys;
    "scan", -2, R, (0, 0, 0), "generic", "Iterates over the key names in the database.", keys::scan;
    "randomkey", 1, R, (0, 0, 0), "generic", "Returns a random key name from the database.", keys::randomkey;
    "dbsize", 1, RF, (0, 0, 0), "server", "Returns the number of keys in the database.", keys::dbsize;
    "flushdb", -1, WX, (0, 0, 0), "server", "Remove all keys from the current database.", keys::flushall;
    "flushall", -1, WX, (0, 0, 0), "server", "Removes all keys from all databases.", keys::flushall;
    "object", -2, R, (2, 2, 1), "generic", "A container for object introspection commands.", keys::object;
    // hashes
    "hset", -4, WF, (1, 1, 1), "hash", "Creates or modifies the value of a field in a hash.", hash::hset;
    "hmset", -4, WF, (1, 1, 1), "hash", "Sets the values of multiple fields.", hash::hset;
    "hsetnx", 4, WF, (1, 1, 1), "hash", "Sets the value of a field in a hash only when the field doesn't exist.", hash::hsetnx;
    "hget", 3, RF, (1, 1, 1), "hash", "Returns the value of a field in a hash.", hash::hget;
    "hmget", -3, RF, (1, 1, 1), "hash", "Returns the values of all fields in a hash.", hash::hmget;
    "hgetall", 2, R, (1, 1, 1), "hash", "Returns all fields and values in a hash.", hash::hgetall;
    "hkeys", 2, R, (1, 1, 1), "hash", "Returns all fields in a hash.", hash::hgetall;
    "hvals", 2, R, (1, 1, 1), "hash", "Returns all values in a hash.", hash::hgetall;
    "hdel", -3, WF, (1, 1, 1), "hash", "Deletes one or more fields and their values from a hash.", hash::hdel;
    "hexists", 3, RF, (1, 1, 1), "hash", "Determines whether a field exists in a hash.", hash::hexists;
    "hlen", 2, RF, (1, 1, 1), "hash", "Returns the number of fields in a hash.", hash::hlen;
    "hstrlen", 3, RF, (1, 1, 1), "hash", "Returns the length of the value of a field.", hash::hstrlen;
    "hincrby", 4, WF, (1, 1, 1), "hash", "Increments the integer value of a field in a hash by a number.", hash::hincrby;
    "hincrbyfloat", 4, WF, (1, 1, 1), "hash", "Increments the floating point value of a field by a number.", hash::hincrbyfloat;
    "hscan", -3, R, (1, 1, 1), "hash", "Iterates over fields and values of a hash.", hash::hscan;
    "hrandfield", -2, R, (1, 1, 1), "hash", "Returns one or more random fields from a hash.", hash::hrandfield;
    "hexpire", -6, WF, (1, 1, 1), "hash", "Set expiry for hash field using relative time to expire (seconds).", hash::hexpire;
    "hpexpire", -6, WF, (1, 1, 1), "hash", "Set expiry for hash field using relative time to expire (milliseconds).", hash::hexpire;
    "hexpireat", -6, WF, (1, 1, 1), "hash", "Set expiry for hash field using an absolute Unix timestamp (seconds).", hash::hexpire;
    "hpexpireat", -6, WF, (1, 1, 1), "hash", "Set expiry for hash field using an absolute Unix timestamp (milliseconds).", hash::hexpire;
    "httl", -5, RF, (1, 1, 1), "hash", "Returns the TTL in seconds of a hash field.", hash::httl;
    "hpttl", -5, RF, (1, 1, 1), "hash", "Returns the TTL in milliseconds of a hash field.", hash::httl;
    "hexpiretime", -5, RF, (1, 1, 1), "hash", "Returns the expiration time of a hash field as a Unix timestamp, in seconds.", hash::httl;
    "hpexpiretime", -5, RF, (1, 1, 1), "hash", "Returns the expiration time of a hash field as a Unix timestamp, in msec.", hash::httl;
    "hpersist", -5, WF, (1, 1, 1), "hash", "Removes the expiration time for each specified field.", hash::hpersist;
    // lists (multi-key ones are EXCLUSIVE: every worker's gate is held while they run)
    "lpush", -3, WF, (1, 1, 1), "list", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", list::push;
    "rpush", -3, WF, (1, 1, 1), "list", "Appends one or more elements to a list. Creates the key if it doesn't exist.", list::push;
    "lpushx", -3, WF, (1, 1, 1), "list", "Prepends one or more elements to a list only when the list exists.", list::push;
    "rpushx", -3, WF, (1, 1, 1), "list", "Appends an element to a list only when the list exists.", list::push;
    "lpop", -2, WF, (1, 1, 1), "list", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", list::pop;
    "rpop", -2, WF, (1, 1, 1), "list", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", list::pop;
    "llen", 2, RF, (1, 1, 1), "list", "Returns the length of a list.", list::llen;
    "lrange", 4, R, (1, 1, 1), "list", "Returns a range of elements from a list.", list::lrange;
    "lindex", 3, R, (1, 1, 1), "list", "Returns an element from a list by its index.", list::lindex;
    "lset", 4, W, (1, 1, 1), "list", "Sets the value of an element in a list by its index.", list::lset;
    "linsert", 5, W, (1, 1, 1), "list", "Inserts an element before or after another element in a list.", list::linsert;
    "lrem", 4, W, (1, 1, 1), "list", "Removes elements from a list. Deletes the list if the last element was removed.", list::lrem;
    "ltrim", 4, W, (1, 1, 1), "list", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", list::ltrim;
    "lpos", -3, R, (1, 1, 1), "list", "Returns the index of matching elements in a list.", list::lpos;
    "lmove", 5, WX, (1, 2, 1), "list", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", list::lmove;
    "rpoplpush", 3, WX, (1, 2, 1), "list", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", list::lmove;
    "lmpop", -4, WX, (0, 0, 0), "list", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", list::lmpop;
    "blpop", -3, W, (1, -2, 1), "list", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::blpop;
    "brpop", -3, W, (1, -2, 1), "list", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::blpop;
    "blmove", 6, WX, (1, 2, 1), "list", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", blocking::blmove;
    "brpoplpush", 4, WX, (1, 2, 1), "list", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", blocking::blmove;
    "blmpop", -5, WX, (0, 0, 0), "list", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::blmpop;
    // sets (multi-key ones are EXCLUSIVE)
    "sadd", -3, WF, (1, 1, 1), "set", "Adds one or more members to a set. Creates the key if it doesn't exist.", set::sadd;
    "srem", -3, WF, (1, 1, 1), "set", "Removes one or more members from a set. Deletes the set if the last member was removed.", set::srem;
    "smembers", 2, R, (1, 1, 1), "set", "Returns all members of a set.", set::smembers;
    "sismember", 3, RF, (1, 1, 1), "set", "Determines whether a member belongs to a set.", set::sismember;
    "smismember", -3, RF, (1, 1, 1), "set", "Determines whether multiple members belong to a set.", set::sismember;
    "scard", 2, RF, (1, 1, 1), "set", "Returns the number of members in a set.", set::scard;
    "spop", -2, WF, (1, 1, 1), "set", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", set::spop;
    "srandmember", -2, R, (1, 1, 1), "set", "Get one or multiple random members from a set", set::srandmember;
    "smove", 4, WX.with(Flags::FAST), (1, 2, 1), "set", "Moves a member from one set to another.", set::smove;
    "sinter", -2, RX, (1, -1, 1), "set", "Returns the intersect of multiple sets.", set::scombine;
    "sunion", -2, RX, (1, -1, 1), "set", "Returns the union of multiple sets.", set::scombine;
    "sdiff", -2, RX, (1, -1, 1), "set", "Returns the difference of multiple sets.", set::scombine;
    "sinterstore", -3, WX, (1, -1, 1), "set", "Stores the intersect of multiple sets in a key.", set::sstore;
    "sunionstore", -3, WX, (1, -1, 1), "set", "Stores the union of multiple sets in a key.", set::sstore;
    "sdiffstore", -3, WX, (1, -1, 1), "set", "Stores the difference of multiple sets in a key.", set::sstore;
    "sintercard", -3, RX, (0, 0, 0), "set", "Returns the number of members of the intersect of multiple sets.", set::sintercard;
    "sscan", -3, R, (1, 1, 1), "set", "Iterates over members of a set.", set::sscan;
    // streams
    "xadd", -5, WF, (1, 1, 1), "stream", "Appends a new message to a stream. Creates the key if it doesn't exist.", stream::xadd;
    "xrange", -4, R, (1, 1, 1), "stream", "Returns the messages from a stream within a range of IDs.", stream::xrange;
    "xrevrange", -4, R, (1, 1, 1), "stream", "Returns the messages from a stream within a range of IDs in reverse order.", stream::xrange;
    "xlen", 2, RF, (1, 1, 1), "stream", "Return the number of messages in a stream.", stream::xlen;
    "xdel", -3, WF, (1, 1, 1), "stream", "Returns the number of messages after removing them from a stream.", stream::xdel;
    "xtrim", -4, W, (1, 1, 1), "stream", "Deletes messages from the beginning of a stream.", stream::xtrim;
    "xsetid", -3, WF, (1, 1, 1), "stream", "An internal command for replicating stream values.", stream::xsetid;
    "xread", -4, R, (0, 0, 0), "stream", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", stream_read::xread;
    "xreadgroup", -7, W, (0, 0, 0), "stream", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", stream_read::xreadgroup;
    "xgroup", -2, W, (2, 2, 1), "stream", "A container for consumer groups commands.", stream_group::xgroup;
    "xack", -4, WF, (1, 1, 1), "stream", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", stream_group::xack;
    "xpending", -3, R, (1, 1, 1), "stream", "Returns the information and entries from a stream consumer group's pending entries list.", stream_group::xpending;
    "xclaim", -6, WF, (1, 1, 1), "stream", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", stream_group::xclaim;
    "xautoclaim", -6, WF, (1, 1, 1), "stream", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", stream_group::xautoclaim;
    "xinfo", -2, R, (2, 2, 1), "stream", "A container for stream introspection commands.", stream_info::xinfo;
    // pub/sub
    "subscribe", -2, Flags::NONE, (0, 0, 0), "pubsub", "Listens for messages published to channels.", pubsub::subscribe;
    "unsubscribe", -1, Flags::NONE, (0, 0, 0), "pubsub", "Stops listening to messages posted to channels.", pubsub::unsubscribe;
    "psubscribe", -2, Flags::NONE, (0, 0, 0), "pubsub", "Listens for messages published to channels that match one or more patterns.", pubsub::psubscribe;
    "punsubscribe", -1, Flags::NONE, (0, 0, 0), "pubsub", "Stops listening to messages published to channels that match one or more patterns.", pubsub::punsubscribe;
    "ssubscribe", -2, Flags::NONE, (1, -1, 1), "pubsub", "Listens for messages published to shard channels.", pubsub::subscribe;
    "sunsubscribe", -1, Flags::NONE, (1, -1, 1), "pubsub", "Stops listening to messages posted to shard channels.", pubsub::unsubscribe;
    "publish", 3, Flags::FAST, (0, 0, 0), "pubsub", "Posts a message to a channel.", pubsub::publish;
    "spublish", 3, Flags::FAST, (1, 1, 1), "pubsub", "Post a message to a shard channel", pubsub::publish;
    "pubsub", -2, Flags::NONE, (0, 0, 0), "pubsub", "A container for Pub/Sub commands.", pubsub::pubsub;
    // sorted sets (multi-key ones are EXCLUSIVE: every worker's gate is held while they run)
    "zadd", -4, WF, (1, 1, 1), "sorted_set", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", zset::zadd;
    "zincrby", 4, WF, (1, 1, 1), "sorted_set", "Increments the score of a member in a sorted set.", zset::zincrby;
    "zrem", -3, WF, (1, 1, 1), "sorted_set", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", zset::zrem;
    "zscore", 3, RF, (1, 1, 1), "sorted_set", "Returns the score of a member in a sorted set.", zset::zscore;
    "zmscore", -3, RF, (1, 1, 1), "sorted_set", "Returns the score of one or more members in a sorted set.", zset::zmscore;
    "zcard", 2, RF, (1, 1, 1), "sorted_set", "Returns the number of members in a sorted set.", zset::zcard;
    "zcount", 4, RF, (1, 1, 1), "sorted_set", "Returns the count of members in a sorted set that have scores within a range.", zset::zcount;
    "zlexcount", 4, RF, (1, 1, 1), "sorted_set", "Returns the number of members in a sorted set within a lexicographical range.", zset::zcount;
    "zrange", -4, R, (1, 1, 1), "sorted_set", "Returns members in a sorted set within a range of indexes.", zset::zrange;
    "zrangestore", -5, WX, (1, 2, 1), "sorted_set", "Stores a range of members from sorted set in a key.", zset_ops::zrangestore;
    "zrangebyscore", -4, R, (1, 1, 1), "sorted_set", "Returns members in a sorted set within a range of scores.", zset::zrange;
    "zrevrangebyscore", -4, R, (1, 1, 1), "sorted_set", "Returns members in a sorted set within a range of scores in reverse order.", zset::zrange;
    "zrangebylex", -4, R, (1, 1, 1), "sorted_set", "Returns members in a sorted set within a lexicographical range.", zset::zrange;
    "zrevrangebylex", -4, R, (1, 1, 1), "sorted_set", "Returns members in a sorted set within a lexicographical range in reverse order.", zset::zrange;
    "zrevrange", -4, R, (1, 1, 1), "sorted_set", "Returns members in a sorted set within a range of indexes in reverse order.", zset::zrange;
    "zrank", -3, RF, (1, 1, 1), "sorted_set", "Returns the index of a member in a sorted set ordered by ascending scores.", zset::zrank;
    "zrevrank", -3, RF, (1, 1, 1), "sorted_set", "Returns the index of a member in a sorted set ordered by descending scores.", zset::zrank;
    "zpopmin", -2, WF, (1, 1, 1), "sorted_set", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", zset::zpop;
    "zpopmax", -2, WF, (1, 1, 1), "sorted_set", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", zset::zpop;
    "zmpop", -4, WX, (0, 0, 0), "sorted_set", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", zset::zmpop;
    "bzpopmin", -3, W, (1, -2, 1), "sorted_set", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", blocking::bzpop;
    "bzpopmax", -3, W, (1, -2, 1), "sorted_set", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", blocking::bzpop;
    "bzmpop", -5, WX, (0, 0, 0), "sorted_set", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", blocking::bzmpop;
    "zrandmember", -2, R, (1, 1, 1), "sorted_set", "Returns one or more random members from a sorted set.", zset::zrandmember;
    "zremrangebyscore", 4, W, (1, 1, 1), "sorted_set", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", zset::zremrange;
    "zremrangebyrank", 4, W, (1, 1, 1), "sorted_set", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", zset::zremrange;
    "zremrangebylex", 4, W, (1, 1, 1), "sorted_set", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", zset::zremrange;
    "zscan", -3, R, (1, 1, 1), "sorted_set", "Iterates over members and scores of a sorted set.", zset::zscan;
    "zunionstore", -4, WX, (1, 1, 1), "sorted_set", "Stores the union of multiple sorted sets in a key.", zset_ops::zstore;
    "zinterstore", -4, WX, (1, 1, 1), "sorted_set", "Stores the intersect of multiple sorted sets in a key.", zset_ops::zstore;
    "zdiffstore", -4, WX, (1, 1, 1), "sorted_set", "Stores the difference of multiple sorted sets in a key.", zset_ops::zstore;
    "zunion", -3, RX, (0, 0, 0), "sorted_set", "Returns the union of multiple sorted sets.", zset_ops::zcombine;
    "zinter", -3, RX, (0, 0, 0), "sorted_set", "Returns the intersect of multiple sorted sets.", zset_ops::zcombine;
    "zdiff", -3, RX, (0, 0, 0), "sorted_set", "Returns the difference between multiple sorted sets.", zset_ops::zcombine;
    "zintercard", -3, RX, (0, 0, 0), "sorted_set", "Returns the number of members of the intersect of multiple sorted sets.", zset_ops::zintercard;
    // transactions
    "multi", 1, Flags::FAST.with(Flags::NOT_QUEUED), (0, 0, 0), "transactions", "Starts a transaction.", tx::multi;
    "exec", 1, Flags::EXCLUSIVE.with(Flags::NOT_QUEUED), (0, 0, 0), "transactions", "Executes all commands in a transaction.", tx::exec;
    "discard", 1, Flags::FAST.with(Flags::NOT_QUEUED), (0, 0, 0), "transactions", "Discards a transaction.", tx::discard;
    "watch", -2, Flags::FAST.with(Flags::NOT_QUEUED), (1, -1, 1), "transactions", "Monitors changes to keys to determine the execution of a transaction.", tx::watch;
    "unwatch", 1, Flags::FAST, (0, 0, 0), "transactions", "Forgets about watched keys of a transaction.", tx::unwatch;
    // server
    "info", -1, Flags::NONE, (0, 0, 0), "server", "Returns information and statistics about the server.", server::info;
    "config", -2, Flags::ADMIN, (0, 0, 0), "server", "A container for server configuration commands.", settings::config;
    "command", -1, Flags::NONE, (0, 0, 0), "server", "Returns detailed information about all commands.", server::command;
    "time", 1, Flags::FAST, (0, 0, 0), "server", "Returns the server time.", server::time;
    "replconf", -1, Flags::ADMIN.with(Flags::NO_GATE), (0, 0, 0), "server", "An internal command for configuring the replication stream.", replication::replconf;
    "psync", -3, Flags::ADMIN.with(Flags::NO_GATE), (0, 0, 0), "server", "An internal command used in replication.", replication::psync;
    "sync", 1, Flags::ADMIN.with(Flags::NO_GATE), (0, 0, 0), "server", "An internal command used in replication.", replication::psync;
    "replicaof", 3, Flags::ADMIN.with(Flags::NO_GATE), (0, 0, 0), "server", "Configures a server as replica of another, or promotes it to a master.", replication::replicaof;
    "slaveof", 3, Flags::ADMIN.with(Flags::NO_GATE), (0, 0, 0), "server", "Sets a Redis server as a replica of another, or promotes it to being a master.", replication::replicaof;
    "wait", 3, Flags::NO_GATE, (0, 0, 0), "generic", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", replication::wait;
    "role", 1, Flags::NO_GATE.with(Flags::FAST), (0, 0, 0), "server", "Returns the replication role.", replication::role;
    "save", 1, Flags::ADMIN, (0, 0, 0), "server", "Synchronously saves the database(s) to disk.", persist::save;
    "bgsave", -1, Flags::ADMIN, (0, 0, 0), "server", "Asynchronously saves the database(s) to disk.", persist::bgsave;
    "shutdown", -1, Flags::ADMIN.with(Flags::NOT_QUEUED).with(Flags::NO_GATE), (0, 0, 0), "server", "Synchronously saves the database to disk and then shuts down the server.", persist::shutdown;
    "lastsave", 1, Flags::FAST, (0, 0, 0), "server", "Returns the Unix timestamp of the last successful save to disk.", persist::lastsave;
    "acl", -2, Flags::NONE, (0, 0, 0), "server", "A container for Access List Control commands.", acl::acl;
    "latency", -2, Flags::ADMIN, (0, 0, 0), "server", "A container for latency diagnostics commands.", observe::latency;
    "slowlog", -2, Flags::ADMIN, (0, 0, 0), "server", "A container for slow log commands.", observe::slowlog;
    // scripting
    "eval", -3, Flags::EXCLUSIVE, (0, 0, 0), "scripting", "Executes a server-side Lua script.", scripting::eval;
    "evalsha", -3, Flags::EXCLUSIVE, (0, 0, 0), "scripting", "Executes a server-side Lua script by SHA1 digest.", scripting::eval;
    "eval_ro", -3, Flags::EXCLUSIVE, (0, 0, 0), "scripting", "Executes a read-only server-side Lua script.", scripting::eval;
    "evalsha_ro", -3, Flags::EXCLUSIVE, (0, 0, 0), "scripting", "Executes a read-only server-side Lua script by SHA1 digest.", scripting::eval;
    "fcall", -3, Flags::EXCLUSIVE, (0, 0, 0), "scripting", "Invokes a function.", functions::fcall;
    "fcall_ro", -3, Flags::EXCLUSIVE, (0, 0, 0), "scripting", "Invokes a read-only function.", functions::fcall;
    "function", -2, Flags::NO_GATE, (0, 0, 0), "scripting", "A container for function commands.", functions::function;
    "script", -2, Flags::NO_GATE, (0, 0, 0), "scripting", "A container for Lua scripts management commands.", scripting::script;
}

/// Every command of the table (and, in debug builds started with `FERROCACHE_TEST_HOOKS`, the
/// test hooks), for the dispatcher and for every [`Call`].
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        #[cfg(debug_assertions)]
        let hidden = test_hooks::hidden();
        #[cfg(not(debug_assertions))]
        let hidden = Vec::new();
        Registry::new(COMMANDS, &hidden)
    })
}

/// Finds a command by its lower-case name.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    registry().lookup(name)
}

/// Every command and ACL subcommand with its categories, for ACL rules.
pub fn acl_catalogue() -> std::sync::Arc<crate::acl::Catalogue> {
    registry().acl_catalogue()
}

/// Commands that exist for the integration tests only: compiled into debug builds alone
/// (`cargo test` builds the server binary with debug assertions; a release build has none of
/// this code), and even there found only when the server was started with
/// `FERROCACHE_TEST_HOOKS=1` in its environment. Not listed by COMMAND.
#[cfg(debug_assertions)]
mod test_hooks {
    use super::*;
    use crate::command::resp::error::RespError;
    use crate::command::resp::Call;

    /// `FERROCACHE-TEST-PANIC TURN | STORE key | THREAD`: panics inside the command (with
    /// the worker's gate held), inside a store edit (with a shard locked, after growing the
    /// hash at `key` in place), or makes the worker panic after this turn, outside any
    /// connection's turn.
    static PANIC: CommandSpec = CommandSpec {
        name: "ferrocache-test-panic",
        arity: -2,
        flags: Flags::NONE,
        first_key: 0,
        last_key: 0,
        step: 0,
        group: "server",
        summary: "Test hook: panics in a command, a store edit or a worker.",
        handler: panic_on_request,
    };

    /// The hooks, when the server was started with `FERROCACHE_TEST_HOOKS` set.
    pub fn hidden() -> Vec<&'static CommandSpec> {
        if std::env::var_os("FERROCACHE_TEST_HOOKS").is_some() {
            vec![&PANIC]
        } else {
            Vec::new()
        }
    }

    fn panic_on_request(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
        let ctx = call.ctx;
        match call.arg(1).to_ascii_uppercase().as_slice() {
            b"TURN" => panic!("test hook: a command panics"),
            b"STORE" if call.args.len() == 3 => {
                ctx.shared.store.edit(call.arg(2), ctx.now_ms, |entry| {
                    if let Ok(Some(hash)) = entry.hash_mut(crate::store::IfMissing::Create) {
                        hash.set(b"grown-before-the-panic", &[b'x'; 4096], false);
                    }
                    panic!("test hook: a command panics inside a store edit")
                })
            }
            b"THREAD" => {
                crate::test_hooks::panic_after_this_turn();
                enc.ok();
            }
            _ => enc.error("ERR syntax error"),
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::resp::spec::command_keys;

    #[test]
    fn names_are_lowercase_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for spec in COMMANDS {
            assert_eq!(spec.name, spec.name.to_lowercase());
            assert!(seen.insert(spec.name), "duplicate {}", spec.name);
        }
        assert!(lookup(b"get").is_some());
        assert!(lookup(b"GET").is_none());
    }

    /// Every command, with arguments drawn from numbers at their limits, option words and
    /// keys of each type, answers without panicking (an audit of indexing and unwraps on
    /// client input; the server would contain such a panic, but it is still a bug).
    #[test]
    fn no_command_panics_on_odd_arguments() {
        #[rustfmt::skip]
        const WORDS: &[&str] = &[
            "s", "h", "z", "missing", "f", "a", "0", "1", "-1", "2", "3", "-2",
            "9223372036854775807", "-9223372036854775808", "18446744073709551616", "1.5",
            "inf", "-inf", "+inf", "nan", "(1", "(a", "[a", "+", "-", "*", "?", "[", "\"\"",
            "WITHSCORES", "WITHVALUES", "LIMIT", "COUNT", "MATCH", "TYPE", "NX", "XX", "GT",
            "LT", "CH", "INCR", "BYSCORE", "BYLEX", "REV", "GET", "EX", "PX", "EXAT", "PXAT",
            "KEEPTTL", "PERSIST", "FIELDS", "WEIGHTS", "AGGREGATE", "SUM", "MIN", "MAX",
            "STORE", "ENCODING", "FREQ", "IDLETIME", "LIST", "KILL", "ID", "SETNAME",
            "GETNAME", "INFO", "SET", "RESETSTAT", "maxmemory", "NOVALUES", "ASYNC", "HELP",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        let setup = ["SET s 1", "HSET h f v a 1", "ZADD z 1 a 2 b 3 c"];
        let mut panics = Vec::new();
        for spec in COMMANDS {
            let mut harness = crate::command::resp::exec_tests::Harness::new();
            for _ in 0..150 {
                let words = spec.arity.unsigned_abs() as usize + next(4);
                let mut line = spec.name.to_string();
                for _ in 1..words {
                    line.push(' ');
                    line.push_str(WORDS[next(WORDS.len())]);
                }
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    harness.run(&setup);
                    harness.run(&[line.as_str()]);
                }));
                if run.is_err() {
                    panics.push(line);
                    harness = crate::command::resp::exec_tests::Harness::new();
                }
            }
        }
        assert!(panics.is_empty(), "these panicked: {panics:#?}");
    }

    #[test]
    fn the_test_panic_hook_needs_its_environment_variable() {
        if std::env::var_os("FERROCACHE_TEST_HOOKS").is_none() {
            assert!(lookup(b"ferrocache-test-panic").is_none());
        }
        assert!(COMMANDS.iter().all(|c| c.name != "ferrocache-test-panic"));
    }

    #[test]
    fn keys_come_from_positions_and_numkeys() {
        let args = |words: &[&str]| -> Vec<std::borrow::Cow<'static, [u8]>> {
            words
                .iter()
                .map(|w| std::borrow::Cow::Owned(w.as_bytes().to_vec()))
                .collect()
        };
        let keys = |words: &[&str]| -> Vec<String> {
            let a = args(words);
            let spec = lookup(words[0].as_bytes()).unwrap();
            command_keys(spec, &a)
                .iter()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect()
        };
        assert_eq!(keys(&["get", "a"]), ["a"]);
        assert_eq!(keys(&["mset", "a", "1", "b", "2"]), ["a", "b"]);
        assert_eq!(keys(&["blpop", "a", "b", "0"]), ["a", "b"]);
        assert_eq!(keys(&["zunion", "2", "a", "b", "WITHSCORES"]), ["a", "b"]);
        assert_eq!(keys(&["zunionstore", "d", "2", "a", "b"]), ["d", "a", "b"]);
        assert_eq!(keys(&["lmpop", "9", "a"]), ["a"]);
        assert!(keys(&["ping"]).is_empty());
    }

    #[test]
    fn categories_follow_redis_for_a_sample() {
        let cat = acl_catalogue();
        let has = |name: &str, category: &str| {
            let bit = crate::acl::category_bit(category).unwrap();
            cat.commands[cat.find(name).unwrap()].categories & bit != 0
        };
        assert!(has("get", "read") && has("get", "string") && has("get", "fast"));
        assert!(has("set", "write") && has("set", "slow"));
        assert!(has("config", "admin") && has("config", "dangerous"));
        assert!(has("keys", "dangerous") && has("keys", "keyspace"));
        assert!(has("blpop", "blocking") && has("hset", "hash") && has("zadd", "sortedset"));
        assert!(has("acl|whoami", "slow") && !has("acl|whoami", "admin"));
        assert!(has("acl|setuser", "admin"));
    }

    #[test]
    fn arity_follows_redis_rules() {
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(3) && !get.arity_ok(1));
        let del = lookup(b"del").unwrap();
        assert!(del.arity_ok(2) && del.arity_ok(5) && !del.arity_ok(1));
    }
}
