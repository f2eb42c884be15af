//! Lua scripting end to end on the real binary: the inventory pattern under load across
//! workers (atomic, never oversold, never seen half done), a runaway script answered with
//! -BUSY and stopped by SCRIPT KILL, reply conversions both ways in RESP2 and RESP3 (bytes as
//! redis-server 7.0 sends them), the sandbox's errors, and EVALSHA / SCRIPT's cache.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{ask, request, TestServer};

/// Decrement-if-positive: the seed's inventory pattern. Also counts the sale, so a reader
/// can check that stock + sold never changes (it would, seen between the two writes).
const BUY: &str = "local n = tonumber(redis.call('GET', KEYS[1]) or '0') \
    if n > 0 then redis.call('DECR', KEYS[1]) redis.call('INCR', KEYS[2]) return 1 end return 0";

#[test]
fn inventory_is_never_oversold_nor_seen_half_done() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut r = server.redis();
    let _: () = redis::cmd("SET")
        .arg("stock")
        .arg(2000)
        .query(&mut r)
        .unwrap();
    let _: () = redis::cmd("SET").arg("sold").arg(0).query(&mut r).unwrap();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(BUY)
        .query(&mut r)
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // Readers on both workers: stock + sold is 100 in every snapshot.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut conn = server.redis();
            let done = done.clone();
            thread::spawn(move || {
                let mut seen = 0;
                while !done.load(Ordering::Relaxed) {
                    let (stock, sold): (i64, i64) = redis::cmd("MGET")
                        .arg("stock")
                        .arg("sold")
                        .query(&mut conn)
                        .unwrap();
                    assert_eq!(
                        stock + sold,
                        2000,
                        "a script seen half done: {stock} + {sold}"
                    );
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    let buyers: Vec<_> = (0..50)
        .map(|_| {
            let mut conn = server.redis();
            let sha = sha.clone();
            thread::spawn(move || {
                let mut bought = 0;
                for _ in 0..50 {
                    let got: i64 = redis::cmd("EVALSHA")
                        .arg(&sha)
                        .arg(2)
                        .arg("stock")
                        .arg("sold")
                        .query(&mut conn)
                        .unwrap();
                    bought += got;
                }
                bought
            })
        })
        .collect();
    let bought: i64 = buyers.into_iter().map(|b| b.join().unwrap()).sum();
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    assert_eq!(
        bought, 2000,
        "2500 attempts on 2000 items sell exactly 2000"
    );
    let (stock, sold): (i64, i64) = redis::cmd("MGET")
        .arg("stock")
        .arg("sold")
        .query(&mut r)
        .unwrap();
    assert_eq!((stock, sold), (0, 2000));
}

#[test]
fn a_runaway_script_gets_busy_for_others_and_dies_by_script_kill() {
    let mut server = TestServer::start_with_resp(&["-t", "2"]);
    // Connections are dealt round robin: `looper` and `other` land on different workers
    // (clients on the looping script's own worker wait for it instead).
    let mut looper = server.connect_resp();
    let mut other = server.connect_resp();
    assert_eq!(
        ask(
            &mut other,
            &["CONFIG", "SET", "busy-reply-threshold", "100"]
        ),
        "+OK\r\n"
    );
    assert_eq!(
        ask(&mut other, &["CONFIG", "GET", "lua-time-limit"]),
        "*2\r\n$14\r\nlua-time-limit\r\n$3\r\n100\r\n"
    );
    assert_eq!(
        ask(&mut other, &["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    looper.send(&request(&["EVAL", "while true do end", "0"]));
    let started = Instant::now();
    let busy = loop {
        let reply = ask(&mut other, &["GET", "x"]);
        if reply.starts_with("-BUSY") {
            break reply;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never BUSY");
    };
    assert_eq!(
        busy,
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(ask(&mut other, &["SCRIPT", "KILL"]), "+OK\r\n");
    let killed = String::from_utf8_lossy(&looper.read_until(b"\r\n")).into_owned();
    assert!(
        killed.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{killed}"
    );
    assert_eq!(ask(&mut other, &["PING"]), "+PONG\r\n");
    assert_eq!(ask(&mut looper, &["PING"]), "+PONG\r\n");

    // A script that wrote cannot be killed.
    let writer = request(&["EVAL", "redis.call('SET', 'w', '1') while true do end", "0"]);
    looper.send(&writer);
    let started = Instant::now();
    loop {
        let reply = ask(&mut other, &["SCRIPT", "KILL"]);
        if reply.starts_with("-UNKILLABLE") {
            assert!(reply.starts_with(
                "-UNKILLABLE Sorry the script already executed write commands against the dataset."
            ));
            break;
        }
        if reply == "+OK\r\n" {
            // The kill came after the script began but before its SET: it was still
            // killable and is gone. Start it again.
            let killed = String::from_utf8_lossy(&looper.read_until(b"\r\n")).into_owned();
            assert!(killed.starts_with("-ERR Script killed by user"), "{killed}");
            looper.send(&writer);
        } else {
            assert_eq!(reply, "-NOTBUSY No scripts in execution right now.\r\n");
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{reply}");
    }
    // Only SHUTDOWN NOSAVE gets past it: a save would catch the script half done.
    assert_eq!(
        ask(&mut other, &["SHUTDOWN"]),
        "-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    other.send(&request(&["SHUTDOWN", "NOSAVE"]));
    let child = server.child.as_mut().unwrap();
    let status = common::wait_exit(child, Duration::from_secs(20));
    assert!(
        status.success(),
        "SHUTDOWN NOSAVE did not stop the server: {status:?}"
    );
}

/// (script, RESP2 reply, RESP3 reply): bytes as redis-server 7.0.15 answers.
const CONVERSIONS: &[(&str, &str, &str)] = &[
    ("return 3.99", ":3\r\n", ":3\r\n"),
    ("return -2.5", ":-2\r\n", ":-2\r\n"),
    ("return 'hi'", "$2\r\nhi\r\n", "$2\r\nhi\r\n"),
    ("return true", ":1\r\n", ":1\r\n"),
    ("return false", "$-1\r\n", "_\r\n"),
    ("return nil", "$-1\r\n", "_\r\n"),
    (
        "return {1, 'a', {2}, nil, 5}",
        "*3\r\n:1\r\n$1\r\na\r\n*1\r\n:2\r\n",
        "*3\r\n:1\r\n$1\r\na\r\n*1\r\n:2\r\n",
    ),
    ("return {ok='FINE'}", "+FINE\r\n", "+FINE\r\n"),
    ("return redis.status_reply('OK2')", "+OK2\r\n", "+OK2\r\n"),
    ("return {err='My Error'}", "-My Error\r\n", "-My Error\r\n"),
    (
        "return redis.error_reply('Oops')",
        "-ERR Oops\r\n",
        "-ERR Oops\r\n",
    ),
    ("redis.setresp(3) return true", ":1\r\n", "#t\r\n"),
    ("redis.setresp(3) return false", ":0\r\n", "#f\r\n"),
    ("return {double=3.5}", "$3\r\n3.5\r\n", ",3.5\r\n"),
    (
        "return {map={a=1}}",
        "*2\r\n$1\r\na\r\n:1\r\n",
        "%1\r\n$1\r\na\r\n:1\r\n",
    ),
    // Replies of redis.call become Lua values, and back.
    (
        "redis.call('SET', 'k', 7) return redis.call('GET', 'k')",
        "$1\r\n7\r\n",
        "$1\r\n7\r\n",
    ),
    (
        "return redis.call('GET', 'missing') == false",
        ":1\r\n",
        ":1\r\n",
    ),
    ("return redis.call('SET', 'k', 'v')", "+OK\r\n", "+OK\r\n"),
    (
        "return type(redis.call('INCR', 'n'))",
        "$6\r\nnumber\r\n",
        "$6\r\nnumber\r\n",
    ),
    (
        "redis.setresp(3) redis.call('HSET', 'h', 'f', 'v') return redis.call('HGETALL', 'h')",
        "*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
        "%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
    ),
    (
        "redis.setresp(3) return redis.call('GET', 'missing') == nil",
        ":1\r\n",
        "#t\r\n",
    ),
    (
        "redis.call('HSET', 'h', 'f', 'v') return redis.pcall('INCR', 'h')",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    ),
    (
        "return redis.call('SET', 'f', 3.5) and redis.call('GET', 'f')",
        "$3\r\n3.5\r\n",
        "$3\r\n3.5\r\n",
    ),
    (
        "return redis.sha1hex('')",
        "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n",
        "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n",
    ),
    (
        "return {pcall(redis.call, 'nosuch')}",
        "*2\r\n$-1\r\n$44\r\nERR Unknown Redis command called from script\r\n",
        "*2\r\n_\r\n$44\r\nERR Unknown Redis command called from script\r\n",
    ),
];

#[test]
fn replies_convert_as_redis_converts_them() {
    let server = TestServer::start_with_resp(&[]);
    let mut two = server.connect_resp();
    let mut three = server.connect_resp();
    three.send(&request(&["HELLO", "3"]));
    three.read_until(b"modules\r\n*0\r\n");
    for (script, resp2, resp3) in CONVERSIONS {
        two.roundtrip(&request(&["DEL", "h"]), b":");
        two.read_until(b"\r\n");
        two.roundtrip(&request(&["EVAL", script, "0"]), resp2.as_bytes());
        three.roundtrip(&request(&["DEL", "h"]), b":");
        three.read_until(b"\r\n");
        three.roundtrip(&request(&["EVAL", script, "0"]), resp3.as_bytes());
    }
}

#[test]
fn keys_and_argv_reach_the_script() {
    let server = TestServer::start_with_resp(&[]);
    let mut conn = server.connect_resp();
    conn.roundtrip(
        &request(&[
            "EVAL",
            "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}",
            "2",
            "k1",
            "k2",
            "a1",
            "a2",
        ]),
        b"*4\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\na1\r\n:2\r\n",
    );
    conn.roundtrip(
        &request(&["EVAL", "return 1", "2", "k1"]),
        b"-ERR Number of keys can't be greater than number of args\r\n",
    );
    conn.roundtrip(
        &request(&["EVAL", "return 1", "-1"]),
        b"-ERR Number of keys can't be negative\r\n",
    );
    conn.roundtrip(
        &request(&["EVAL", "return 1", "x"]),
        b"-ERR value is not an integer or out of range\r\n",
    );
}

/// (script, reply without the " script: <sha>, on @user_script:1." tail), as redis-server
/// 7.0.15 answers.
const SANDBOX: &[(&str, &str)] = &[
    (
        "a = 1",
        "-ERR user_script:1: Attempt to modify a readonly table",
    ),
    (
        "return a",
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'a'",
    ),
    (
        "string.x = 1",
        "-ERR user_script:1: Attempt to modify a readonly table",
    ),
    (
        "redis.call = nil",
        "-ERR user_script:1: Attempt to modify a readonly table",
    ),
    (
        "return rawset(_G, 'x', 1)",
        "-ERR Attempt to modify a readonly table",
    ),
    (
        "return os.time()",
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'os'",
    ),
    (
        "return io",
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'io'",
    ),
    (
        "return loadfile('/etc/passwd')",
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'loadfile'",
    ),
    (
        "dofile('/etc/passwd')",
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'dofile'",
    ),
    (
        "return debug",
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'debug'",
    ),
    ("error('boom')", "-ERR user_script:1: boom"),
    (
        "return redis.call('nosuch')",
        "-ERR Unknown Redis command called from script",
    ),
    (
        "return redis.call('GET')",
        "-ERR Wrong number of args calling Redis command from script",
    ),
    (
        "return redis.call('MULTI')",
        "-ERR This Redis command is not allowed from script",
    ),
    (
        "return redis.call('GET', {})",
        "-ERR Lua redis lib command arguments must be strings or integers",
    ),
    (
        "return redis.call()",
        "-ERR Please specify at least one argument for this redis lib call",
    ),
    (
        "redis.call('SET', 's', 'x') return redis.call('INCR', 's')",
        "-ERR value is not an integer or out of range",
    ),
];

#[test]
fn the_sandbox_refuses_as_redis_does() {
    let server = TestServer::start_with_resp(&[]);
    let mut conn = server.connect_resp();
    for (script, expected) in SANDBOX {
        let reply = ask(&mut conn, &["EVAL", script, "0"]);
        let sha = sha1_smol::Sha1::from(script.as_bytes())
            .digest()
            .to_string();
        assert_eq!(
            reply,
            format!("{expected} script: {sha}, on @user_script:1.\r\n"),
            "{script}"
        );
    }
    assert_eq!(
        ask(&mut conn, &["EVAL", "return 'x", "0"]),
        "-ERR Error compiling script (new function): user_script:1: unfinished string near '<eof>'\r\n"
    );
    // KEYS is set for every script although the globals are read-only to scripts.
    assert_eq!(
        ask(&mut conn, &["EVAL", "return type(KEYS)", "0"]),
        "$5\r\ntable\r\n"
    );
}

#[test]
fn evalsha_script_cache_and_read_only_scripts() {
    let server = TestServer::start_with_resp(&[]);
    let mut conn = server.connect_resp();
    let body = "return redis.call('INCR', KEYS[1])";
    let sha = sha1_smol::Sha1::from(body.as_bytes()).digest().to_string();
    conn.roundtrip(
        &request(&["EVALSHA", &sha, "1", "n"]),
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
    );
    conn.roundtrip(
        &request(&["EVALSHA", "abc", "0"]),
        b"-NOSCRIPT No matching script. Please use EVAL.\r\n",
    );
    conn.roundtrip(
        &request(&["SCRIPT", "LOAD", body]),
        format!("$40\r\n{sha}\r\n").as_bytes(),
    );
    conn.roundtrip(
        &request(&[
            "SCRIPT",
            "EXISTS",
            &sha,
            "ffffffffffffffffffffffffffffffffffffffff",
        ]),
        b"*2\r\n:1\r\n:0\r\n",
    );
    conn.roundtrip(
        &request(&["EVALSHA", &sha.to_uppercase(), "1", "n"]),
        b":1\r\n",
    );
    conn.roundtrip(
        &request(&["EVALSHA_RO", &sha, "1", "n"]),
        format!(
            "-ERR Write commands are not allowed from read-only scripts. script: {sha}, on @user_script:1.\r\n"
        )
        .as_bytes(),
    );
    conn.roundtrip(
        &request(&["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "n"]),
        b"$1\r\n1\r\n",
    );
    conn.roundtrip(&request(&["SCRIPT", "FLUSH"]), b"+OK\r\n");
    conn.roundtrip(&request(&["SCRIPT", "EXISTS", &sha]), b"*1\r\n:0\r\n");
    conn.roundtrip(
        &request(&["SCRIPT", "FLUSH", "LATER"]),
        b"-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n",
    );
    // EVAL caches too; INFO counts the cache and the Lua state.
    conn.roundtrip(&request(&["EVAL", body, "1", "n"]), b":2\r\n");
    conn.roundtrip(&request(&["EVALSHA", &sha, "1", "n"]), b":3\r\n");
    conn.send(&request(&["INFO", "memory"]));
    let info = String::from_utf8_lossy(&conn.read_until(b"\r\n\r\n")).into_owned();
    assert!(info.contains("number_of_cached_scripts:1\r\n"), "{info}");
    let lua: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_lua:"))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(lua > 10_000, "{info}");
    // A script inside MULTI runs at EXEC.
    conn.roundtrip(&request(&["MULTI"]), b"+OK\r\n");
    conn.roundtrip(&request(&["EVALSHA", &sha, "1", "n"]), b"+QUEUED\r\n");
    conn.roundtrip(&request(&["EXEC"]), b"*1\r\n:4\r\n");
}

#[test]
fn script_memory_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferrocache.toml");
    std::fs::write(&config, "[resp]\nlua_memory_limit = \"8MiB\"\n").unwrap();
    let server = TestServer::start_with_resp(&["--config", config.to_str().unwrap()]);
    let mut conn = server.connect_resp();
    // A script that grows a table without end fails at the bound instead; the next one runs.
    let reply = ask(
        &mut conn,
        &[
            "EVAL",
            "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1024) .. i end",
            "0",
        ],
    );
    assert!(
        reply.starts_with("-ERR") && reply.contains("memory"),
        "{reply}"
    );
    assert_eq!(ask(&mut conn, &["EVAL", "return 1", "0"]), ":1\r\n");
}

#[test]
fn issue_26_cmsgpack_struct_and_no_blocking_stream_reads() {
    let server = TestServer::start_with_resp(&[]);
    let mut conn = server.connect_resp();
    assert_eq!(
        ask(
            &mut conn,
            &[
                "EVAL",
                "return cmsgpack.unpack(cmsgpack.pack({1, 2, 'x'}))[3]",
                "0"
            ]
        ),
        "$1\r\nx\r\n"
    );
    assert_eq!(
        ask(
            &mut conn,
            &[
                "EVAL",
                "return struct.unpack('>I2', struct.pack('>I2', 258))",
                "0"
            ]
        ),
        ":258\r\n"
    );
    // Both are read-only to scripts, as the other libraries.
    assert!(ask(&mut conn, &["EVAL", "cmsgpack.pack = nil", "0"])
        .starts_with("-ERR user_script:1: Attempt to modify a readonly table"));
    // t_stream.c refuses BLOCK for scripts, naming the command as the script spelled it.
    for (script, name) in [
        ("return redis.pcall('xread','BLOCK',0,'STREAMS','s','$')", "xread"),
        ("return redis.pcall('XREADGROUP','GROUP','g','c','COUNT',1,'block',0,'STREAMS','s','>')", "XREADGROUP"),
    ] {
        assert_eq!(
            ask(&mut conn, &["EVAL", script, "1", "s"]),
            format!("-ERR {name} command is not allowed with BLOCK option from scripts\r\n")
        );
    }
    // Without BLOCK the read runs (its null reply is false in Lua, a null bulk back).
    assert_eq!(
        ask(
            &mut conn,
            &[
                "EVAL",
                "return redis.pcall('xread','STREAMS','s','0')",
                "1",
                "s"
            ]
        ),
        "$-1\r\n"
    );
}

#[test]
fn issue_26_scripts_call_with_many_args_and_keys_show_in_getkeys() {
    let server = TestServer::start_with_resp(&[]);
    let mut conn = server.connect_resp();
    // Close to Lua 5.1's C stack limit (LUAI_MAXCSTACK, 8000), as Redis's test passes.
    let many = "local a = {} for i = 1, 7999 do a[i] = 1 end \
        return redis.call('lpush', 'l', unpack(a))";
    assert_eq!(ask(&mut conn, &["EVAL", many, "0"]), ":7999\r\n");
    // An error still names the caller's line after `return redis.call(...)`, and redis.call
    // works again after one raised.
    let body = "local ok = pcall(redis.call, 'nosuch')\nreturn redis.call('nosuch')";
    let sha = sha1_smol::Sha1::from(body.as_bytes()).digest().to_string();
    assert_eq!(
        ask(&mut conn, &["EVAL", body, "0"]),
        format!(
            "-ERR Unknown Redis command called from script script: {sha}, on @user_script:2.\r\n"
        )
    );
    assert_eq!(
        ask(
            &mut conn,
            &[
                "EVAL",
                "pcall(redis.call, 'nosuch') return redis.call('ping')",
                "0"
            ]
        ),
        "+PONG\r\n"
    );
    // noscript subcommands (CLUSTER is not a command here, but RESET is still refused).
    for script in [
        "return redis.call('cluster', 'reset', 'hard')",
        "return redis.call('config', 'get', 'maxmemory')",
        "return redis.call('client', 'list')",
    ] {
        assert!(ask(&mut conn, &["EVAL", script, "0"])
            .starts_with("-ERR This Redis command is not allowed from script"));
    }
    // COMMAND GETKEYS knows EVAL's and FCALL's keys (none is not an error for them).
    conn.send(&request(&[
        "COMMAND", "GETKEYS", "fcall", "f", "1", "x", "foo",
    ]));
    assert_eq!(conn.read_until(b"x\r\n"), b"*1\r\n$1\r\nx\r\n");
    assert_eq!(
        ask(&mut conn, &["COMMAND", "GETKEYS", "eval", "return 1", "0"]),
        "*0\r\n"
    );
}
