//! Commands executed against a small in-process store, no socket: exact reply bytes per
//! command and per error, in RESP2 and RESP3.

use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::conn_info::ConnInfo;
use crate::shared::Shared;

pub(super) const NOW: u64 = 1_700_000_000_000;

pub(super) struct Harness {
    pub(super) shared: Shared,
    pub(super) session: RespSession,
    /// Where SAVE and BGSAVE write (never the working directory).
    _dir: tempfile::TempDir,
}

impl Harness {
    pub(super) fn new() -> Harness {
        let mut config = Config::default();
        config.server.threads = 1;
        let dir = tempfile::tempdir().expect("temp dir");
        config.persistence.dir = dir.path().to_owned();
        let endpoint = crate::conn_info::Endpoint {
            id: 7,
            peer: "tcp:127.0.0.1:1".into(),
            local: String::new(),
            fd: -1,
        };
        let info = Arc::new(ConnInfo::new(endpoint, true, NOW));
        let mut session = RespSession::new(info);
        session.authenticated = true;
        Harness {
            shared: Shared::new(config, crate::command::catalogue()).expect("default config"),
            session,
            _dir: dir,
        }
    }

    /// Sends inline `line`s and returns everything they answered.
    pub(super) fn run(&mut self, lines: &[&str]) -> String {
        self.run_at(lines, NOW)
    }

    pub(super) fn run_at(&mut self, lines: &[&str], now_ms: u64) -> String {
        let ctx = Context {
            shared: &self.shared,
            stats: &self.shared.worker_stats[0],
            worker: 0,
            now_ms,
        };
        let mut out = Vec::new();
        for line in lines {
            let input = format!("{line}\r\n");
            let served = serve_one(&mut self.session, input.as_bytes(), &ctx, &mut out)
                .expect("complete request");
            assert_eq!(served.consumed, input.len(), "{line}");
        }
        String::from_utf8(out).unwrap()
    }
}

/// Runs `lines` on a fresh store in RESP2 and in RESP3 (after HELLO 3).
pub(super) fn both(lines: &[&str]) -> (String, String) {
    let two = Harness::new().run(lines);
    let mut h = Harness::new();
    h.run(&["HELLO 3"]);
    let three = h.run(lines);
    (two, three)
}

#[test]
fn get_and_set_options() {
    let (two, three) = both(&[
        "GET k",
        "SET k v",
        "GET k",
        "SET k w NX",
        "SET k w XX GET",
        "GET k",
    ]);
    assert_eq!(
        two,
        "$-1\r\n+OK\r\n$1\r\nv\r\n$-1\r\n$1\r\nv\r\n$1\r\nw\r\n"
    );
    assert_eq!(three, "_\r\n+OK\r\n$1\r\nv\r\n_\r\n$1\r\nv\r\n$1\r\nw\r\n");
    let mut h = Harness::new();
    assert_eq!(h.run(&["SET k v PX 100", "PTTL k"]), "+OK\r\n:100\r\n");
    assert_eq!(h.run(&["SET k v2 KEEPTTL", "PTTL k"]), "+OK\r\n:100\r\n");
    assert_eq!(h.run_at(&["GET k"], NOW + 100), "$-1\r\n");
    assert_eq!(h.run(&["SET k v EX"]), "-ERR syntax error\r\n");
    assert_eq!(
        h.run(&["SET k v EX x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        h.run(&["SET k v EX -1"]),
        "-ERR invalid expire time in 'set' command\r\n"
    );
    assert_eq!(h.run(&["SET k v KEEPTTL EX 1"]), "-ERR syntax error\r\n");
}

#[test]
fn counters_and_ranges() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&["INCR c", "INCRBY c 10", "DECR c", "DECRBY c 5"]),
        ":1\r\n:11\r\n:10\r\n:5\r\n"
    );
    assert_eq!(
        h.run(&["SET s abc", "INCR s"]),
        "+OK\r\n-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        h.run(&["DECRBY c -9223372036854775808"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        h.run(&["INCRBYFLOAT fl 2.5", "INCRBYFLOAT fl 0.5"]),
        "$3\r\n2.5\r\n$1\r\n3\r\n"
    );
    assert_eq!(
        h.run(&["INCRBYFLOAT fl x"]),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(
        h.run(&["APPEND s def", "STRLEN s", "GETRANGE s 1 -2"]),
        ":6\r\n:6\r\n$4\r\nbcde\r\n"
    );
    assert_eq!(
        h.run(&["GETRANGE s 10 20", "GETRANGE nope 0 1"]),
        "$0\r\n\r\n$0\r\n\r\n"
    );
    assert_eq!(
        h.run(&["SETRANGE s 1 XY", "GET s"]),
        ":6\r\n$6\r\naXYdef\r\n"
    );
    assert_eq!(
        h.run(&["SETRANGE s -1 x"]),
        "-ERR offset is out of range\r\n"
    );
    assert_eq!(h.run(&["GETDEL s", "EXISTS s"]), "$6\r\naXYdef\r\n:0\r\n");
    assert_eq!(
        h.run(&["MSET a 1 b 2", "MGET a b z"]),
        "+OK\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"
    );
    assert_eq!(h.run(&["MSETNX a 9 q 9", "EXISTS q"]), ":0\r\n:0\r\n");
    assert_eq!(
        h.run(&["MSET a"]),
        "-ERR wrong number of arguments for 'mset' command\r\n"
    );
    assert_eq!(
        h.run(&["SETEX e 10 v", "TTL e", "SETEX e 0 v"]),
        "+OK\r\n:10\r\n-ERR invalid expire time in 'setex' command\r\n"
    );
    assert_eq!(h.run(&["GETEX e PERSIST", "TTL e"]), "$1\r\nv\r\n:-1\r\n");
}

#[test]
fn keys_and_expiry_options() {
    let mut h = Harness::new();
    h.run(&["SET a 1", "SET b 2", "HSET h f v"]);
    assert_eq!(
        h.run(&["EXISTS a a nope", "TYPE a", "TYPE h", "TYPE nope"]),
        ":2\r\n+string\r\n+hash\r\n+none\r\n"
    );
    assert_eq!(
        h.run(&[
            "EXPIRE a 10 XX",
            "EXPIRE a 10 NX",
            "EXPIRE a 5 GT",
            "EXPIRE a 5 LT",
            "TTL a"
        ]),
        ":0\r\n:1\r\n:0\r\n:1\r\n:5\r\n"
    );
    assert_eq!(
        h.run(&["EXPIRE a 1 NX XX"]),
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        h.run(&["EXPIRE a 1 foo"]),
        "-ERR Unsupported option foo\r\n"
    );
    assert_eq!(
        h.run(&["PERSIST a", "PERSIST a", "TTL a", "TTL nope"]),
        ":1\r\n:0\r\n:-1\r\n:-2\r\n"
    );
    assert_eq!(h.run(&["PEXPIREAT b 1", "EXISTS b"]), ":1\r\n:0\r\n");
    assert_eq!(
        h.run(&["RENAME a c", "GET c", "RENAME nope x", "RENAMENX c h"]),
        "+OK\r\n$1\r\n1\r\n-ERR no such key\r\n:0\r\n"
    );
    assert_eq!(h.run(&["DEL c h nope", "DBSIZE"]), ":2\r\n:0\r\n");
    assert_eq!(h.run(&["SCAN x"]), "-ERR invalid cursor\r\n");
    assert_eq!(
        h.run(&["SET k 12", "OBJECT ENCODING k", "OBJECT ENCODING nope"]),
        "+OK\r\n$3\r\nint\r\n$-1\r\n"
    );
    assert_eq!(h.run(&["RANDOMKEY"]), "$1\r\nk\r\n");
    assert_eq!(h.run(&["FLUSHALL", "RANDOMKEY"]), "+OK\r\n$-1\r\n");
}

#[test]
fn hashes_and_wrongtype() {
    let (two, three) = both(&["HSET h a 1 b 2", "HGETALL h", "HMGET h a z"]);
    assert_eq!(
        two,
        ":2\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\n1\r\n$-1\r\n"
    );
    assert_eq!(
        three,
        ":2\r\n%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\n1\r\n_\r\n"
    );
    let mut h = Harness::new();
    h.run(&["HSET h a 1 s x", "SET str v"]);
    assert_eq!(
        h.run(&["HINCRBY h a 2", "HINCRBY h s 1"]),
        ":3\r\n-ERR hash value is not an integer\r\n"
    );
    assert_eq!(h.run(&["HINCRBYFLOAT h a 0.5"]), "$3\r\n3.5\r\n");
    assert_eq!(
        h.run(&["HSETNX h a 9", "HSETNX h n 9", "HLEN h", "HSTRLEN h a"]),
        ":0\r\n:1\r\n:3\r\n:3\r\n"
    );
    let wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(h.run(&["HGET str a"]), wrong);
    assert_eq!(h.run(&["GET h"]), wrong);
    assert_eq!(h.run(&["INCR h"]), wrong);
    assert_eq!(h.run(&["APPEND h x"]), wrong);
    assert_eq!(
        h.run(&["HSET h odd"]),
        "-ERR wrong number of arguments for 'hset' command\r\n"
    );
    assert_eq!(
        h.run(&[
            "HEXPIRE h 10 FIELDS 2 a zz",
            "HTTL h FIELDS 2 a n",
            "HPERSIST h FIELDS 1 a"
        ]),
        "*2\r\n:1\r\n:-2\r\n*2\r\n:10\r\n:-1\r\n*1\r\n:1\r\n"
    );
    assert_eq!(
        h.run(&["HEXPIRE h 10 FIELDS 0 a"]),
        "-ERR Parameter `numFields` should be greater than 0\r\n"
    );
    assert_eq!(
        h.run(&["HEXPIRE h 10 FIELDS 2 a"]),
        "-ERR The `numfields` parameter must match the number of arguments\r\n"
    );
    assert_eq!(
        h.run(&["HEXPIRE h 10 NOPE 1 a"]),
        "-ERR Mandatory argument FIELDS is missing or not at the right position\r\n"
    );
    assert_eq!(
        h.run(&["HPEXPIRE h 0 FIELDS 1 a", "HEXISTS h a"]),
        "*1\r\n:2\r\n:0\r\n"
    );
    assert_eq!(h.run(&["HDEL h s n", "EXISTS h"]), ":2\r\n:0\r\n");
}

#[test]
fn transactions_queue_and_abort() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&["MULTI", "SET a 1", "INCR a", "EXEC"]),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n"
    );
    assert_eq!(
        h.run(&["MULTI", "MULTI", "DISCARD"]),
        "+OK\r\n-ERR MULTI calls can not be nested\r\n+OK\r\n"
    );
    assert_eq!(
        h.run(&["DISCARD", "EXEC"]),
        "-ERR DISCARD without MULTI\r\n-ERR EXEC without MULTI\r\n"
    );
    assert_eq!(h.run(&["MULTI", "NOSUCH", "EXEC"]), "+OK\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n-EXECABORT Transaction discarded because of previous errors.\r\n");
    // A runtime error inside EXEC is just that command's reply.
    assert_eq!(h.run(&["SET s x", "MULTI", "INCR s", "GET s", "EXEC"]), "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-ERR value is not an integer or out of range\r\n$1\r\nx\r\n");
    assert_eq!(
        h.run(&["WATCH a", "SET a 5", "MULTI", "GET a", "EXEC"]),
        "+OK\r\n+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n"
    );
    assert_eq!(
        h.run(&["WATCH a", "MULTI", "GET a", "EXEC"]),
        "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n$1\r\n5\r\n"
    );
    assert_eq!(
        h.run(&["MULTI", "WATCH a", "DISCARD"]),
        "+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+OK\r\n"
    );
}

#[test]
fn connection_commands() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&["PING", "PING hi", "ECHO x"]),
        "+PONG\r\n$2\r\nhi\r\n$1\r\nx\r\n"
    );
    assert_eq!(
        h.run(&["SELECT 0", "SELECT 3", "SELECT x"]),
        "+OK\r\n-ERR DB index is out of range\r\n-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        h.run(&[
            "CLIENT ID",
            "CLIENT GETNAME",
            "CLIENT SETNAME app",
            "CLIENT GETNAME"
        ]),
        ":7\r\n$-1\r\n+OK\r\n$3\r\napp\r\n"
    );
    assert_eq!(
        h.run(&["CLIENT SETNAME \"a b\""]),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(h.run(&["AUTH x"]), "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n");
    assert_eq!(
        h.run(&["HELLO 4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    let hello = h.run(&["HELLO 3"]);
    assert!(
        hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{hello}"
    );
    assert_eq!(h.run(&["GET nope"]), "_\r\n");
    assert_eq!(h.run(&["RESET", "GET nope"]), "+RESET\r\n$-1\r\n");
    assert_eq!(
        h.run(&["CONFIG GET maxmemory-policy"]),
        "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n"
    );
    assert_eq!(
        h.run(&["CONFIG SET maxmemory 32mb", "CONFIG GET maxmemory"]),
        "+OK\r\n*2\r\n$9\r\nmaxmemory\r\n$8\r\n33554432\r\n"
    );
    assert_eq!(
        h.run(&["CONFIG SET hz 5"]),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'hz'\r\n"
    );
    assert!(h.run(&["COMMAND COUNT"]).starts_with(':'));
}

#[test]
fn noeviction_answers_oom() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&[
            "CONFIG SET maxmemory-policy noeviction",
            "CONFIG SET maxmemory 1mb"
        ]),
        "+OK\r\n+OK\r\n"
    );
    assert_eq!(
        h.run(&["CONFIG GET maxmemory-policy"]),
        "*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n"
    );
    // Under the 4 KiB compression threshold, so each value takes its full size.
    let big = "x".repeat(4000);
    let mut replies = String::new();
    for i in 0..400 {
        replies.push_str(&h.run(&[&format!("SET k{i} {big}")]));
    }
    assert!(
        replies.contains("-OOM command not allowed when used memory > 'maxmemory'.\r\n"),
        "{replies}"
    );
    assert_eq!(h.run(&["EXISTS k0"]), ":1\r\n");
    assert!(h
        .run(&["CONFIG SET maxmemory-policy allkeys-random"])
        .starts_with("-ERR CONFIG SET failed"));
    assert_eq!(
        h.run(&["CONFIG SET maxmemory-policy volatile-lfu"]),
        "+OK\r\n"
    );
}

/// Found by the `connection` fuzz target: RESP keys are not bounded by memcached's 250
/// bytes, and a 300-byte key made the store panic.
#[test]
fn issue_8_long_resp_keys() {
    let mut h = Harness::new();
    let key = "k".repeat(300);
    let huge = "h".repeat(20_000);
    assert_eq!(
        h.run(&[&format!("INCR {key}"), &format!("GET {key}")]),
        ":1\r\n$1\r\n1\r\n"
    );
    assert_eq!(
        h.run(&[&format!("HSET {huge} f v"), &format!("HGET {huge} f")]),
        ":1\r\n$1\r\nv\r\n"
    );
    assert_eq!(h.run(&[&format!("RENAME {key} {huge}x")]), "+OK\r\n");
}

#[test]
fn object_freq_and_idletime_follow_the_policy() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["SET k v", "OBJECT IDLETIME k"]), "+OK\r\n:0\r\n");
    assert!(h
        .run(&["OBJECT FREQ k"])
        .starts_with("-ERR An LFU maxmemory policy is not selected"));
    assert_eq!(
        h.run(&[
            "CONFIG SET maxmemory-policy allkeys-lfu",
            "SET f v",
            "OBJECT FREQ f"
        ]),
        "+OK\r\n+OK\r\n:5\r\n"
    );
    // The first read of a new key always raises its counter (Redis's LFU_INIT_VAL is 5).
    assert_eq!(h.run(&["GET f", "OBJECT FREQ f"]), "$1\r\nv\r\n:6\r\n");
    assert!(h
        .run(&["OBJECT IDLETIME f"])
        .starts_with("-ERR An LRU maxmemory policy is not selected"));
}

/// Checked against redis-server 7.0.15 started with `--databases 1` (ferrocache has only
/// database 0, so another DB index is out of range as there).
#[test]
fn copy_every_type_with_options_and_errors() {
    let (two, three) = both(&[
        "SET s hello",
        "COPY s s2",
        "GET s2",
        "COPY s s2",
        "SET s world PX 100000",
        "COPY s s2 REPLACE",
        "GET s2",
        "PTTL s2",
        "COPY s s",
        "COPY s s DB 1",
        "COPY s x DB 1",
        "COPY s x DB 0",
        "COPY s y DB x",
        "COPY s y DB -1",
        "COPY s y DB 99999999999",
        "COPY s y DB",
        "COPY s y FOO",
        "COPY nokey y",
        "COPY s y REPLACE REPLACE",
        "RPUSH l a b c",
        "COPY l l2",
        "LRANGE l2 0 -1",
        "HSET h f v g w",
        "COPY h h2",
        "HGETALL h2",
        "SADD st 1 2 3",
        "COPY st st2",
        "SMEMBERS st2",
        "OBJECT ENCODING st2",
        "SADD st3 a b",
        "COPY st3 st4",
        "SCARD st4",
        "ZADD z 1 a 2 b",
        "COPY z z2",
        "ZRANGE z2 0 -1 WITHSCORES",
        "COPY z l REPLACE",
        "TYPE l",
        "LPUSH l2 new",
        "LLEN l2",
        "SET n 12",
        "COPY n n2",
        "INCR n2",
        "GET n",
    ]);
    assert_eq!(two, "+OK\r\n:1\r\n$5\r\nhello\r\n:0\r\n+OK\r\n:1\r\n$5\r\nworld\r\n:100000\r\n-ERR source and destination objects are the same\r\n-ERR DB index is out of range\r\n-ERR DB index is out of range\r\n:1\r\n-ERR value is not an integer or out of range\r\n-ERR DB index is out of range\r\n-ERR value is out of range, value must between -2147483648 and 2147483647\r\n-ERR syntax error\r\n-ERR syntax error\r\n:0\r\n:1\r\n:3\r\n:1\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n:2\r\n:1\r\n*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n:3\r\n:1\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$6\r\nintset\r\n:2\r\n:1\r\n:2\r\n:2\r\n:1\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n:1\r\n+zset\r\n:4\r\n:4\r\n+OK\r\n:1\r\n:13\r\n$2\r\n12\r\n");
    assert_eq!(three, "+OK\r\n:1\r\n$5\r\nhello\r\n:0\r\n+OK\r\n:1\r\n$5\r\nworld\r\n:100000\r\n-ERR source and destination objects are the same\r\n-ERR DB index is out of range\r\n-ERR DB index is out of range\r\n:1\r\n-ERR value is not an integer or out of range\r\n-ERR DB index is out of range\r\n-ERR value is out of range, value must between -2147483648 and 2147483647\r\n-ERR syntax error\r\n-ERR syntax error\r\n:0\r\n:1\r\n:3\r\n:1\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n:2\r\n:1\r\n%2\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n:3\r\n:1\r\n~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$6\r\nintset\r\n:2\r\n:1\r\n:2\r\n:2\r\n:1\r\n*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n:1\r\n+zset\r\n:4\r\n:4\r\n+OK\r\n:1\r\n:13\r\n$2\r\n12\r\n");
}

/// SORT and SORT_RO over lists, sets and sorted sets: BY (weights, hash fields, a constant
/// pattern), GET (`#`, strings, hash fields), LIMIT, DESC, ALPHA, STORE and the errors, as
/// redis-server 7.0.15 answered the same lines.
#[test]
fn sort_by_get_limit_alpha_store() {
    let (two, three) = both(&[
        "RPUSH l 3 1 2 10 2.5",
        "SORT l",
        "SORT l DESC",
        "SORT l ALPHA",
        "SORT l LIMIT 1 2",
        "SORT l LIMIT -5 2",
        "SORT l LIMIT 10 2",
        "SORT l LIMIT 0 -1",
        "SORT l LIMIT x 1",
        "SORT l LIMIT 1",
        "SORT l FOO",
        "MSET w_3 30 w_1 10 w_2 -5 w_10 x o_3 three o_1 one",
        "SORT l BY w_*",
        "SORT l BY nosort",
        "SORT l BY nosort DESC",
        "SORT l BY nosort LIMIT 1 2 DESC",
        "SORT l BY w_* ALPHA",
        "SORT l GET o_* GET #",
        "HSET h_1 f a",
        "HSET h_2 f b",
        "SORT l GET h_*->f GET # GET h_*->",
        "SORT l BY h_*->f ALPHA DESC GET h_*->f",
        "SORT l STORE dst",
        "LRANGE dst 0 -1",
        "SORT l GET o_* STORE dst",
        "LRANGE dst 0 -1",
        "SORT nokey STORE dst",
        "EXISTS dst",
        "SORT_RO l STORE dst",
        "SORT_RO l DESC",
        "SADD s b a c",
        "SORT s ALPHA",
        "SORT s BY nosort STORE d2",
        "LRANGE d2 0 -1",
        "ZADD z 3 a 1 b 2 c",
        "SORT z ALPHA",
        "SORT z BY nosort",
        "SORT z BY nosort DESC LIMIT 0 2",
        "SET str x",
        "SORT str",
        "RPUSH bad 1 x",
        "SORT bad",
        "SORT bad ALPHA",
        "SORT bad STORE z2",
        "EXISTS z2",
        "RPUSH eq 1 01 1.0",
        "SORT eq",
        "SORT nokey",
    ]);
    assert_eq!(two, ":5\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$3\r\n2.5\r\n$1\r\n3\r\n$2\r\n10\r\n*5\r\n$2\r\n10\r\n$1\r\n3\r\n$3\r\n2.5\r\n$1\r\n2\r\n$1\r\n1\r\n*5\r\n$1\r\n1\r\n$2\r\n10\r\n$1\r\n2\r\n$3\r\n2.5\r\n$1\r\n3\r\n*2\r\n$1\r\n2\r\n$3\r\n2.5\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n*0\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$3\r\n2.5\r\n$1\r\n3\r\n$2\r\n10\r\n-ERR value is not an integer or out of range\r\n-ERR syntax error\r\n-ERR syntax error\r\n+OK\r\n-ERR One or more scores can't be converted into double\r\n*5\r\n$1\r\n3\r\n$1\r\n1\r\n$1\r\n2\r\n$2\r\n10\r\n$3\r\n2.5\r\n*5\r\n$3\r\n2.5\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\n1\r\n$1\r\n3\r\n*2\r\n$2\r\n10\r\n$1\r\n2\r\n*5\r\n$3\r\n2.5\r\n$1\r\n2\r\n$1\r\n1\r\n$1\r\n3\r\n$2\r\n10\r\n*10\r\n$3\r\none\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n$-1\r\n$3\r\n2.5\r\n$5\r\nthree\r\n$1\r\n3\r\n$-1\r\n$2\r\n10\r\n:1\r\n:1\r\n*15\r\n$1\r\na\r\n$1\r\n1\r\n$-1\r\n$1\r\nb\r\n$1\r\n2\r\n$-1\r\n$-1\r\n$3\r\n2.5\r\n$-1\r\n$-1\r\n$1\r\n3\r\n$-1\r\n$-1\r\n$2\r\n10\r\n$-1\r\n*5\r\n$1\r\nb\r\n$1\r\na\r\n$-1\r\n$-1\r\n$-1\r\n:5\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$3\r\n2.5\r\n$1\r\n3\r\n$2\r\n10\r\n:5\r\n*5\r\n$3\r\none\r\n$0\r\n\r\n$0\r\n\r\n$5\r\nthree\r\n$0\r\n\r\n:0\r\n:0\r\n-ERR syntax error\r\n*5\r\n$2\r\n10\r\n$1\r\n3\r\n$3\r\n2.5\r\n$1\r\n2\r\n$1\r\n1\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n*2\r\n$1\r\na\r\n$1\r\nc\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:2\r\n-ERR One or more scores can't be converted into double\r\n*2\r\n$1\r\n1\r\n$1\r\nx\r\n-ERR One or more scores can't be converted into double\r\n:0\r\n:3\r\n*3\r\n$2\r\n01\r\n$1\r\n1\r\n$3\r\n1.0\r\n*0\r\n");
    assert_eq!(three, ":5\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$3\r\n2.5\r\n$1\r\n3\r\n$2\r\n10\r\n*5\r\n$2\r\n10\r\n$1\r\n3\r\n$3\r\n2.5\r\n$1\r\n2\r\n$1\r\n1\r\n*5\r\n$1\r\n1\r\n$2\r\n10\r\n$1\r\n2\r\n$3\r\n2.5\r\n$1\r\n3\r\n*2\r\n$1\r\n2\r\n$3\r\n2.5\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n*0\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$3\r\n2.5\r\n$1\r\n3\r\n$2\r\n10\r\n-ERR value is not an integer or out of range\r\n-ERR syntax error\r\n-ERR syntax error\r\n+OK\r\n-ERR One or more scores can't be converted into double\r\n*5\r\n$1\r\n3\r\n$1\r\n1\r\n$1\r\n2\r\n$2\r\n10\r\n$3\r\n2.5\r\n*5\r\n$3\r\n2.5\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\n1\r\n$1\r\n3\r\n*2\r\n$2\r\n10\r\n$1\r\n2\r\n*5\r\n$3\r\n2.5\r\n$1\r\n2\r\n$1\r\n1\r\n$1\r\n3\r\n$2\r\n10\r\n*10\r\n$3\r\none\r\n$1\r\n1\r\n_\r\n$1\r\n2\r\n_\r\n$3\r\n2.5\r\n$5\r\nthree\r\n$1\r\n3\r\n_\r\n$2\r\n10\r\n:1\r\n:1\r\n*15\r\n$1\r\na\r\n$1\r\n1\r\n_\r\n$1\r\nb\r\n$1\r\n2\r\n_\r\n_\r\n$3\r\n2.5\r\n_\r\n_\r\n$1\r\n3\r\n_\r\n_\r\n$2\r\n10\r\n_\r\n*5\r\n$1\r\nb\r\n$1\r\na\r\n_\r\n_\r\n_\r\n:5\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$3\r\n2.5\r\n$1\r\n3\r\n$2\r\n10\r\n:5\r\n*5\r\n$3\r\none\r\n$0\r\n\r\n$0\r\n\r\n$5\r\nthree\r\n$0\r\n\r\n:0\r\n:0\r\n-ERR syntax error\r\n*5\r\n$2\r\n10\r\n$1\r\n3\r\n$3\r\n2.5\r\n$1\r\n2\r\n$1\r\n1\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n:3\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n*2\r\n$1\r\na\r\n$1\r\nc\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:2\r\n-ERR One or more scores can't be converted into double\r\n*2\r\n$1\r\n1\r\n$1\r\nx\r\n-ERR One or more scores can't be converted into double\r\n:0\r\n:3\r\n*3\r\n$2\r\n01\r\n$1\r\n1\r\n$3\r\n1.0\r\n*0\r\n");
}

/// COMMAND GETKEYS, SORT's STORE destination included, as redis-server 7.0.15 answered.
#[test]
fn command_getkeys() {
    let (two, three) = both(&[
        "COMMAND GETKEYS sort abc store def",
        "COMMAND GETKEYS sort_ro abc",
        "COMMAND GETKEYS sort abc store invalid store stillbad store def",
        "COMMAND GETKEYS sort abc LIMIT 0 1 GET store BY store",
        "COMMAND GETKEYS get",
        "COMMAND GETKEYS nosuch a",
        "COMMAND GETKEYS ping",
        "COMMAND GETKEYS ping x",
        "COMMAND GETKEYS get a b",
        "COMMAND GETKEYS mset a 1 b 2",
        "COMMAND GETKEYS zunionstore d 2 a b",
        "COMMAND GETKEYS lmove a b LEFT RIGHT",
    ]);
    assert_eq!(two, "*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n*1\r\n$3\r\nabc\r\n*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n*1\r\n$3\r\nabc\r\n-ERR wrong number of arguments for 'command|getkeys' command\r\n-ERR Invalid command specified\r\n-ERR wrong number of arguments for 'command|getkeys' command\r\n-ERR The command has no key arguments\r\n-ERR Invalid number of arguments specified for command\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*3\r\n$1\r\nd\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(three, "*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n*1\r\n$3\r\nabc\r\n*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n*1\r\n$3\r\nabc\r\n-ERR wrong number of arguments for 'command|getkeys' command\r\n-ERR Invalid command specified\r\n-ERR wrong number of arguments for 'command|getkeys' command\r\n-ERR The command has no key arguments\r\n-ERR Invalid number of arguments specified for command\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*3\r\n$1\r\nd\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
}

/// MEMORY USAGE: the bytes a key is charged; errors as redis-server 7.0.15's.
#[test]
fn memory_usage() {
    let (two, three) = both(&[
        "MEMORY USAGE nokey",
        "MEMORY FOO",
        "MEMORY USAGE",
        "SET k v",
        "MEMORY USAGE k SAMPLES x",
        "MEMORY USAGE k SAMPLES",
        "MEMORY USAGE k FOO 1",
    ]);
    assert_eq!(two, "$-1\r\n-ERR unknown subcommand 'FOO'. Try MEMORY HELP.\r\n-ERR wrong number of arguments for 'memory|usage' command\r\n+OK\r\n-ERR value is not an integer or out of range\r\n-ERR syntax error\r\n-ERR syntax error\r\n");
    assert_eq!(three, "_\r\n-ERR unknown subcommand 'FOO'. Try MEMORY HELP.\r\n-ERR wrong number of arguments for 'memory|usage' command\r\n+OK\r\n-ERR value is not an integer or out of range\r\n-ERR syntax error\r\n-ERR syntax error\r\n");
    let mut h = Harness::new();
    // Item header (13) + key (1) + value (1).
    assert_eq!(h.run(&["SET k v", "MEMORY USAGE k"]), "+OK\r\n:15\r\n");
    let listed = h.run(&["RPUSH l a b c", "MEMORY USAGE l"]);
    let bytes: i64 = listed.rsplit(':').next().unwrap().trim().parse().unwrap();
    assert!(bytes > 13 + 1 + 3, "{listed}");
}

/// An infinite HINCRBYFLOAT increment is refused before the key is touched, in redis-server
/// 7.0.15's words (INCRBYFLOAT reports the result instead).
#[test]
fn hincrbyfloat_refuses_an_infinite_increment() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&["HINCRBYFLOAT h f +inf", "EXISTS h", "SET s 1", "INCRBYFLOAT s +inf"]),
        "-ERR value is NaN or Infinity\r\n:0\r\n+OK\r\n-ERR increment would produce NaN or Infinity\r\n"
    );
}
