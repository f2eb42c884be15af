//! Every write command of every protocol reports exactly one effect per key it changes at
//! the store's hook, carrying what a replica needs to reproduce the item: the value as
//! stored, flags, cas and the absolute expiry. Run in process, no socket.

use std::sync::{Arc, Mutex};

use super::{binary, memcache, resp, Context};
use crate::auth::SaslConn;
use crate::config::Config;
use crate::conn_info::ConnInfo;
use crate::shared::Shared;
use crate::store::{
    Effect, Expiry, KeyKind, Mutation, Observer, PutCause, ReadOptions, Removal, StaleCas, Store,
    StoreConfig, Write, WriteMode,
};

const NOW: u64 = 1_700_000_000_000;

/// An effect, copied out of the hook.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Put {
        key: Vec<u8>,
        cause: PutCause,
        kind: KeyKind,
        /// The string value as stored and whether it is compressed; `None` for typed values.
        stored: Option<(Vec<u8>, bool)>,
        flags: u32,
        cas: u64,
        expiry_ms: u64,
    },
    Removed {
        key: Vec<u8>,
        cause: Removal,
    },
    Flushed,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Observer for Recorder {
    fn effect(&self, effect: &Effect<'_>) {
        let seen = match effect {
            Effect::Put { item, cause, .. } => {
                let mut bytes = Vec::new();
                let stored = item.copy_stored(&mut bytes).map(|c| (bytes, c));
                Seen::Put {
                    key: item.key().to_vec(),
                    cause: *cause,
                    kind: item.kind(),
                    stored,
                    flags: item.flags(),
                    cas: item.cas(),
                    expiry_ms: item.expiry_ms(),
                }
            }
            Effect::Removed { key, cause, .. } => Seen::Removed {
                key: key.to_vec(),
                cause: *cause,
            },
            Effect::Flushed => Seen::Flushed,
        };
        self.0.lock().unwrap().push(seen);
    }
}

/// One request in one protocol.
enum Req {
    /// memcached text or meta, with its line endings.
    Text(&'static str),
    /// A binary frame: opcode, extras, key, value.
    Bin(u8, Vec<u8>, &'static str, &'static str),
    /// A RESP inline command.
    Resp(&'static str),
}

/// What one effect must say.
#[derive(Debug)]
enum Want {
    /// A string item with this value, flags and absolute expiry (0 = never).
    Str(&'static str, &'static str, u32, u64, PutCause),
    /// A typed item of this kind, no expiry.
    Typed(&'static str, KeyKind),
    Removed(&'static str, Removal),
    Flushed,
}

struct Node {
    shared: Shared,
    recorder: Recorder,
    resp: resp::RespSession,
    sasl: SaslConn,
    /// Where SAVE and BGSAVE write (never the working directory).
    _dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let mut config = Config::default();
        config.server.threads = 1;
        let dir = tempfile::tempdir().expect("temp dir");
        config.persistence.dir = dir.path().to_owned();
        let shared = Shared::new(config, crate::command::catalogue()).expect("default config");
        let recorder = Recorder::default();
        shared
            .effects
            .tap(Box::new(recorder.clone()))
            .expect("a fresh hub has a free tap slot");
        let endpoint = crate::conn_info::Endpoint {
            id: 1,
            peer: "tcp:127.0.0.1:1".into(),
            local: String::new(),
            fd: -1,
        };
        let info = Arc::new(ConnInfo::new(endpoint, true, NOW));
        let mut resp = resp::RespSession::new(info);
        resp.authenticated = true;
        Node {
            shared,
            recorder,
            resp,
            sasl: SaslConn::default(),
            _dir: dir,
        }
    }

    fn run(&mut self, request: &Req) -> Vec<u8> {
        let ctx = Context {
            shared: &self.shared,
            stats: &self.shared.worker_stats[0],
            worker: 0,
            now_ms: NOW,
        };
        let mut out = Vec::new();
        let input = match request {
            Req::Text(text) => text.as_bytes().to_vec(),
            Req::Bin(opcode, extras, key, value) => {
                binary_frame(*opcode, extras, key.as_bytes(), value.as_bytes())
            }
            Req::Resp(line) => format!("{line}\r\n").into_bytes(),
        };
        let served = match request {
            Req::Text(_) => memcache::serve_one(&input, &ctx, None, &mut out),
            Req::Bin(..) => binary::serve_one(&input, &ctx, &mut self.sasl, &mut out),
            Req::Resp(_) => resp::serve_one(&mut self.resp, &input, &ctx, &mut out),
        }
        .expect("a complete request");
        assert_eq!(served.consumed, input.len(), "one whole request");
        out
    }

    fn take_effects(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.recorder.0.lock().unwrap())
    }
}

fn binary_frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, opcode];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Extras of a binary storage command: flags, exptime.
fn store_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

/// Extras of a binary incr/decr: delta, initial, exptime (0xffffffff: no create).
fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exptime.to_be_bytes(),
    ]
    .concat()
}

const IN_100S: u64 = NOW + 100_000;

fn table() -> Vec<(&'static str, Vec<Req>, Req, Vec<Want>)> {
    use KeyKind::*;
    use PutCause::*;
    use Req::*;
    let k_is_abc = || vec![Text("set k 3 0 3\r\nabc\r\n")];
    let k_is_7 = || vec![Text("set k 3 0 1\r\n7\r\n")];
    let k_typed = |cmd: &'static str| vec![Resp(cmd)];
    vec![
        // memcached text
        (
            "text set",
            vec![],
            Text("set k 5 100 3\r\nabc\r\n"),
            vec![Want::Str("k", "abc", 5, IN_100S, Written)],
        ),
        (
            "text add",
            vec![],
            Text("add k 5 0 3\r\nabc\r\n"),
            vec![Want::Str("k", "abc", 5, 0, Written)],
        ),
        (
            "text replace",
            k_is_abc(),
            Text("replace k 1 0 2\r\nxy\r\n"),
            vec![Want::Str("k", "xy", 1, 0, Written)],
        ),
        (
            "text append",
            k_is_abc(),
            Text("append k 0 0 2\r\nxy\r\n"),
            vec![Want::Str("k", "abcxy", 3, 0, Written)],
        ),
        (
            "text prepend",
            k_is_abc(),
            Text("prepend k 0 0 2\r\nxy\r\n"),
            vec![Want::Str("k", "xyabc", 3, 0, Written)],
        ),
        (
            "text incr",
            k_is_7(),
            Text("incr k 5\r\n"),
            vec![Want::Str("k", "12", 3, 0, Written)],
        ),
        (
            "text decr",
            k_is_7(),
            Text("decr k 5\r\n"),
            vec![Want::Str("k", "2", 3, 0, Written)],
        ),
        (
            "text touch",
            k_is_abc(),
            Text("touch k 100\r\n"),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "text gat",
            k_is_abc(),
            Text("gat 100 k\r\n"),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "text delete",
            k_is_abc(),
            Text("delete k\r\n"),
            vec![Want::Removed("k", Removal::Deleted)],
        ),
        (
            "text flush_all",
            k_is_abc(),
            Text("flush_all\r\n"),
            vec![Want::Flushed],
        ),
        // memcached meta
        (
            "meta ms",
            vec![],
            Text("ms k 3 T100 F9\r\nabc\r\n"),
            vec![Want::Str("k", "abc", 9, IN_100S, Written)],
        ),
        (
            "meta ms append",
            k_is_abc(),
            Text("ms k 2 MA\r\nxy\r\n"),
            vec![Want::Str("k", "abcxy", 3, 0, Written)],
        ),
        (
            "meta md",
            k_is_abc(),
            Text("md k\r\n"),
            vec![Want::Removed("k", Removal::Deleted)],
        ),
        (
            "meta md invalidate",
            k_is_abc(),
            Text("md k I T100\r\n"),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "meta ma",
            k_is_7(),
            Text("ma k D5\r\n"),
            vec![Want::Str("k", "12", 3, 0, Written)],
        ),
        (
            "meta ma vivify",
            vec![],
            Text("ma k N100 J4\r\n"),
            vec![Want::Str("k", "4", 0, IN_100S, Written)],
        ),
        (
            "meta mg touch",
            k_is_abc(),
            Text("mg k T100 v\r\n"),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "meta mg vivify",
            vec![],
            Text("mg k N100\r\n"),
            vec![Want::Str("k", "", 0, IN_100S, Written)],
        ),
        // memcached binary
        (
            "binary set",
            vec![],
            Bin(0x01, store_extras(5, 100), "k", "abc"),
            vec![Want::Str("k", "abc", 5, IN_100S, Written)],
        ),
        (
            "binary add",
            vec![],
            Bin(0x02, store_extras(5, 0), "k", "abc"),
            vec![Want::Str("k", "abc", 5, 0, Written)],
        ),
        (
            "binary replace",
            k_is_abc(),
            Bin(0x03, store_extras(1, 0), "k", "xy"),
            vec![Want::Str("k", "xy", 1, 0, Written)],
        ),
        (
            "binary append",
            k_is_abc(),
            Bin(0x0e, vec![], "k", "xy"),
            vec![Want::Str("k", "abcxy", 3, 0, Written)],
        ),
        (
            "binary prepend",
            k_is_abc(),
            Bin(0x0f, vec![], "k", "xy"),
            vec![Want::Str("k", "xyabc", 3, 0, Written)],
        ),
        (
            "binary delete",
            k_is_abc(),
            Bin(0x04, vec![], "k", ""),
            vec![Want::Removed("k", Removal::Deleted)],
        ),
        (
            "binary incr",
            k_is_7(),
            Bin(0x05, arith_extras(5, 0, 0xffff_ffff), "k", ""),
            vec![Want::Str("k", "12", 3, 0, Written)],
        ),
        (
            "binary incr create",
            vec![],
            Bin(0x05, arith_extras(5, 40, 100), "k", ""),
            vec![Want::Str("k", "40", 0, IN_100S, Written)],
        ),
        (
            "binary decr",
            k_is_7(),
            Bin(0x06, arith_extras(5, 0, 0xffff_ffff), "k", ""),
            vec![Want::Str("k", "2", 3, 0, Written)],
        ),
        (
            "binary touch",
            k_is_abc(),
            Bin(0x1c, 100u32.to_be_bytes().to_vec(), "k", ""),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "binary gat",
            k_is_abc(),
            Bin(0x1d, 100u32.to_be_bytes().to_vec(), "k", ""),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "binary flush",
            k_is_abc(),
            Bin(0x08, vec![], "", ""),
            vec![Want::Flushed],
        ),
        // RESP strings and keys
        (
            "SET",
            vec![],
            Resp("SET k abc"),
            vec![Want::Str("k", "abc", 0, 0, Written)],
        ),
        (
            "SET EX",
            vec![],
            Resp("SET k abc EX 100"),
            vec![Want::Str("k", "abc", 0, IN_100S, Written)],
        ),
        (
            "SET KEEPTTL",
            vec![Resp("SET k a EX 100")],
            Resp("SET k abc KEEPTTL"),
            vec![Want::Str("k", "abc", 0, IN_100S, Written)],
        ),
        (
            "SETEX",
            vec![],
            Resp("SETEX k 100 abc"),
            vec![Want::Str("k", "abc", 0, IN_100S, Written)],
        ),
        (
            "PSETEX",
            vec![],
            Resp("PSETEX k 100000 abc"),
            vec![Want::Str("k", "abc", 0, IN_100S, Written)],
        ),
        (
            "SETNX",
            vec![],
            Resp("SETNX k abc"),
            vec![Want::Str("k", "abc", 0, 0, Written)],
        ),
        (
            "GETSET",
            k_is_abc(),
            Resp("GETSET k xy"),
            vec![Want::Str("k", "xy", 0, 0, Written)],
        ),
        (
            "GETDEL",
            k_is_abc(),
            Resp("GETDEL k"),
            vec![Want::Removed("k", Removal::Deleted)],
        ),
        (
            "GETEX EX",
            k_is_abc(),
            Resp("GETEX k EX 100"),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "APPEND",
            k_is_abc(),
            Resp("APPEND k xy"),
            vec![Want::Str("k", "abcxy", 3, 0, Written)],
        ),
        (
            "SETRANGE",
            k_is_abc(),
            Resp("SETRANGE k 1 XY"),
            vec![Want::Str("k", "aXY", 3, 0, Written)],
        ),
        (
            "INCR",
            vec![Resp("SET k 7")],
            Resp("INCR k"),
            vec![Want::Str("k", "8", 0, 0, Written)],
        ),
        (
            "INCRBY",
            vec![Resp("SET k 7")],
            Resp("INCRBY k 5"),
            vec![Want::Str("k", "12", 0, 0, Written)],
        ),
        (
            "DECR",
            vec![Resp("SET k 7")],
            Resp("DECR k"),
            vec![Want::Str("k", "6", 0, 0, Written)],
        ),
        (
            "INCRBYFLOAT",
            vec![Resp("SET k 7")],
            Resp("INCRBYFLOAT k 0.5"),
            vec![Want::Str("k", "7.5", 0, 0, Written)],
        ),
        (
            "MSET",
            vec![],
            Resp("MSET a 1 b 2"),
            vec![
                Want::Str("a", "1", 0, 0, Written),
                Want::Str("b", "2", 0, 0, Written),
            ],
        ),
        (
            "DEL",
            k_is_abc(),
            Resp("DEL k"),
            vec![Want::Removed("k", Removal::Deleted)],
        ),
        (
            "UNLINK",
            k_is_abc(),
            Resp("UNLINK k"),
            vec![Want::Removed("k", Removal::Deleted)],
        ),
        (
            "EXPIRE",
            k_is_abc(),
            Resp("EXPIRE k 100"),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "PEXPIREAT",
            k_is_abc(),
            Resp("PEXPIREAT k 1700000100000"),
            vec![Want::Str("k", "abc", 3, IN_100S, Restamped)],
        ),
        (
            "PERSIST",
            vec![Resp("SET k abc EX 5")],
            Resp("PERSIST k"),
            vec![Want::Str("k", "abc", 0, 0, Restamped)],
        ),
        (
            "RENAME",
            k_is_abc(),
            Resp("RENAME k n"),
            vec![
                Want::Removed("k", Removal::Moved),
                Want::Str("n", "abc", 3, 0, Written),
            ],
        ),
        (
            "COPY",
            vec![Resp("SET k abc EX 100")],
            Resp("COPY k n"),
            vec![Want::Str("n", "abc", 0, IN_100S, Written)],
        ),
        (
            "COPY REPLACE",
            vec![Resp("SET k abc"), Resp("HSET n f v")],
            Resp("COPY k n REPLACE"),
            vec![Want::Str("n", "abc", 0, 0, Written)],
        ),
        (
            "COPY typed",
            k_typed("ZADD z 1 a 2 b"),
            Resp("COPY z y"),
            vec![Want::Typed("y", ZSet)],
        ),
        (
            "COPY onto an existing key",
            vec![Resp("SET k abc"), Resp("SET n x")],
            Resp("COPY k n"),
            vec![],
        ),
        (
            "FLUSHALL",
            k_is_abc(),
            Resp("FLUSHALL"),
            vec![Want::Flushed],
        ),
        // RESP collections
        (
            "HSET",
            vec![],
            Resp("HSET h f v"),
            vec![Want::Typed("h", Hash)],
        ),
        (
            "HDEL",
            k_typed("HSET h f v g w"),
            Resp("HDEL h f"),
            vec![Want::Typed("h", Hash)],
        ),
        (
            "HDEL last",
            k_typed("HSET h f v"),
            Resp("HDEL h f"),
            vec![Want::Removed("h", Removal::Deleted)],
        ),
        (
            "HINCRBY",
            k_typed("HSET h f 1"),
            Resp("HINCRBY h f 2"),
            vec![Want::Typed("h", Hash)],
        ),
        (
            "ZADD",
            vec![],
            Resp("ZADD z 1 a"),
            vec![Want::Typed("z", ZSet)],
        ),
        (
            "ZINCRBY",
            k_typed("ZADD z 1 a"),
            Resp("ZINCRBY z 2 a"),
            vec![Want::Typed("z", ZSet)],
        ),
        (
            "ZREM last",
            k_typed("ZADD z 1 a"),
            Resp("ZREM z a"),
            vec![Want::Removed("z", Removal::Deleted)],
        ),
        (
            "ZMPOP",
            k_typed("ZADD z 1 a 2 b"),
            Resp("ZMPOP 2 nokey z MAX"),
            vec![Want::Typed("z", ZSet)],
        ),
        (
            "BZPOPMIN last",
            k_typed("ZADD z 1 a"),
            Resp("BZPOPMIN z 0"),
            vec![Want::Removed("z", Removal::Deleted)],
        ),
        (
            "SORT STORE",
            k_typed("RPUSH l 2 1"),
            Resp("SORT l STORE d"),
            vec![Want::Typed("d", List)],
        ),
        (
            "LPUSH",
            vec![],
            Resp("LPUSH l a b"),
            vec![Want::Typed("l", List)],
        ),
        (
            "RPUSH",
            k_typed("RPUSH l a"),
            Resp("RPUSH l b"),
            vec![Want::Typed("l", List)],
        ),
        (
            "LPOP",
            k_typed("RPUSH l a b"),
            Resp("LPOP l"),
            vec![Want::Typed("l", List)],
        ),
        (
            "LPOP last",
            k_typed("RPUSH l a"),
            Resp("LPOP l"),
            vec![Want::Removed("l", Removal::Deleted)],
        ),
        (
            "LSET",
            k_typed("RPUSH l a"),
            Resp("LSET l 0 b"),
            vec![Want::Typed("l", List)],
        ),
        (
            "SADD",
            vec![],
            Resp("SADD s a b"),
            vec![Want::Typed("s", Set)],
        ),
        (
            "SREM",
            k_typed("SADD s a b"),
            Resp("SREM s a"),
            vec![Want::Typed("s", Set)],
        ),
        (
            "SPOP last",
            k_typed("SADD s a"),
            Resp("SPOP s"),
            vec![Want::Removed("s", Removal::Deleted)],
        ),
    ]
}

/// Writes a recorded string effect to `replica` the way a replica would: the value as stored,
/// the flags, the primary's cas and the absolute expiry.
fn replay(replica: &Store, seen: &Seen) {
    let Seen::Put {
        key,
        stored: Some((bytes, false)),
        flags,
        cas,
        expiry_ms,
        ..
    } = seen
    else {
        return;
    };
    let write = Write {
        key,
        value: bytes,
        flags: *flags,
        expiry: Expiry::from_ms(*expiry_ms),
        mode: WriteMode::Set,
        compare_cas: None,
        new_cas: Some(*cas),
        stale_cas: StaleCas::Refuse,
    };
    replica.apply(Mutation::Write(write), NOW);
}

/// value, flags, cas, expiry as a client would read them.
fn read(store: &Store, key: &[u8]) -> Option<(Vec<u8>, u32, u64, u64)> {
    store.get(key, NOW, ReadOptions::default(), |view| {
        view.map(|item| {
            (
                item.value().to_vec(),
                item.flags(),
                item.cas(),
                item.expiry_ms,
            )
        })
    })
}

#[test]
fn every_write_command_reports_one_effect_per_key_with_what_a_replica_needs() {
    for (name, setup, command, wants) in table() {
        let mut node = Node::new();
        for request in &setup {
            node.run(request);
        }
        node.take_effects();
        let reply = node.run(&command);
        let seen = node.take_effects();
        let reply = String::from_utf8_lossy(&reply);
        assert_eq!(
            seen.len(),
            wants.len(),
            "{name}: effects {seen:?} (reply {reply:?})"
        );
        let replica = Store::new(StoreConfig::default());
        for (seen, want) in seen.iter().zip(&wants) {
            match (want, seen) {
                (
                    Want::Str(key, value, flags, expiry_ms, cause),
                    Seen::Put {
                        key: k,
                        cause: c,
                        kind: KeyKind::String,
                        stored: Some((bytes, false)),
                        flags: f,
                        expiry_ms: e,
                        ..
                    },
                ) => {
                    assert_eq!(
                        (k.as_slice(), bytes.as_slice(), f, e, c),
                        (key.as_bytes(), value.as_bytes(), flags, expiry_ms, cause),
                        "{name}"
                    );
                    replay(&replica, seen);
                    assert_eq!(
                        read(&replica, k),
                        read(&node.shared.store, k),
                        "{name}: the replica reproduces the item"
                    );
                }
                (
                    Want::Typed(key, kind),
                    Seen::Put {
                        key: k,
                        kind: got,
                        stored: None,
                        expiry_ms: 0,
                        cause: PutCause::Written,
                        ..
                    },
                ) => {
                    assert_eq!((k.as_slice(), got), (key.as_bytes(), kind), "{name}");
                }
                (Want::Removed(key, cause), Seen::Removed { key: k, cause: c }) => {
                    assert_eq!((k.as_slice(), c), (key.as_bytes(), cause), "{name}");
                }
                (Want::Flushed, Seen::Flushed) => {}
                _ => panic!("{name}: wanted {want:?}, saw {seen:?} (reply {reply:?})"),
            }
        }
    }
}

#[test]
fn a_large_value_is_reported_as_stored() {
    // Values are stored raw when written (the cold pass packs them later, with no effect:
    // the item does not change), so the effect carries the bytes the client sent.
    let mut node = Node::new();
    let value = "abcdefgh".repeat(1024);
    let leaked: &'static str = Box::leak(format!("SET big {value}").into_boxed_str());
    node.run(&Req::Resp(leaked));
    let seen = node.take_effects();
    let [Seen::Put {
        stored: Some((bytes, false)),
        ..
    }] = seen.as_slice()
    else {
        panic!("one raw put, saw {seen:?}")
    };
    assert_eq!(bytes.as_slice(), value.as_bytes());
}

#[test]
fn expiry_and_eviction_are_effects_too() {
    let mut node = Node::new();
    node.run(&Req::Text("set k 0 1 3\r\nabc\r\n"));
    node.take_effects();
    let later = node
        .shared
        .store
        .get(b"k", NOW + 2_000, ReadOptions::default(), |v| v.is_some());
    assert!(!later);
    assert_eq!(
        node.take_effects(),
        vec![Seen::Removed {
            key: b"k".to_vec(),
            cause: Removal::Expired
        }]
    );
}
