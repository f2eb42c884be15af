//! FUNCTION libraries (issue #26): LOAD, LIST, DELETE, FCALL, DUMP/RESTORE against a stock
//! redis-server's payloads, and the load-time sandbox, against the real binary.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{ask, request, Conn, TestServer};

#[test]
fn function_libraries_load_list_call_and_delete() {
    let server = TestServer::start_with_resp(&[]);
    let mut conn = server.connect_resp();
    let lib = "#!lua name=shop\n\
        redis.register_function('buy', function(keys, args) \
            return redis.call('DECRBY', keys[1], args[1]) end)\n\
        redis.register_function{function_name='stock', flags={'no-writes'}, \
            callback=function(keys) return redis.call('GET', keys[1]) end}";
    conn.roundtrip(&request(&["FUNCTION", "LOAD", lib]), b"$4\r\nshop\r\n");
    conn.roundtrip(
        &request(&["FUNCTION", "LOAD", lib]),
        b"-ERR Library 'shop' already exists\r\n",
    );
    conn.roundtrip(
        &request(&["FUNCTION", "LOAD", "REPLACE", lib]),
        b"$4\r\nshop\r\n",
    );
    conn.roundtrip(&request(&["SET", "apples", "10"]), b"+OK\r\n");
    conn.roundtrip(&request(&["FCALL", "BUY", "1", "apples", "3"]), b":7\r\n");
    conn.roundtrip(
        &request(&["FCALL_RO", "stock", "1", "apples"]),
        b"$1\r\n7\r\n",
    );
    conn.roundtrip(
        &request(&["FCALL_RO", "buy", "1", "apples", "1"]),
        b"-ERR Can not execute a script with write flag using *_ro command.\r\n",
    );
    conn.roundtrip(
        &request(&["FCALL", "nope", "0"]),
        b"-ERR Function not found\r\n",
    );
    conn.roundtrip(
        &request(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=other\nredis.register_function('buy', function() return 1 end)",
        ]),
        b"-ERR Function buy already exists\r\n",
    );
    conn.roundtrip(
        &request(&["FUNCTION", "LOAD", "#!lua name=bad\nredis.call('PING')"]),
        b"-ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'\r\n",
    );
    conn.roundtrip(
        &request(&["FUNCTION", "LOAD", "return 1"]),
        b"-ERR Missing library metadata\r\n",
    );
    conn.roundtrip(
        &request(&["FUNCTION", "LIST", "LIBRARYNAME", "sh*"]),
        b"*1\r\n*6\r\n$12\r\nlibrary_name\r\n$4\r\nshop\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*2\r\n\
*6\r\n$4\r\nname\r\n$3\r\nbuy\r\n$11\r\ndescription\r\n$-1\r\n$5\r\nflags\r\n*0\r\n\
*6\r\n$4\r\nname\r\n$5\r\nstock\r\n$11\r\ndescription\r\n$-1\r\n$5\r\nflags\r\n*1\r\n$9\r\nno-writes\r\n",
    );
    conn.roundtrip(
        &request(&["FUNCTION", "KILL"]),
        b"-NOTBUSY No scripts in execution right now.\r\n",
    );
    conn.roundtrip(&request(&["FUNCTION", "DELETE", "shop"]), b"+OK\r\n");
    conn.roundtrip(
        &request(&["FUNCTION", "DELETE", "shop"]),
        b"-ERR Library not found\r\n",
    );
    conn.roundtrip(
        &request(&["FCALL", "buy", "1", "apples", "1"]),
        b"-ERR Function not found\r\n",
    );
}

/// A redis-server on a free port, or None when it is not installed.
fn start_redis_server() -> Option<TestServer> {
    let port = common::free_port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = TestServer::adopt(addr, child);
    server.resp_addr = Some(addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

fn function_dump(conn: &mut redis::Connection) -> Vec<u8> {
    redis::cmd("FUNCTION").arg("DUMP").query(conn).unwrap()
}

fn function_restore(conn: &mut redis::Connection, payload: &[u8], policy: Option<&str>) -> String {
    let mut cmd = redis::cmd("FUNCTION");
    cmd.arg("RESTORE").arg(payload);
    if let Some(policy) = policy {
        cmd.arg(policy);
    }
    match cmd.query::<String>(conn) {
        Ok(ok) => ok,
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
    }
}

fn fcall(conn: &mut redis::Connection, name: &str) -> String {
    match redis::cmd("FCALL").arg(name).arg(0).query::<String>(conn) {
        Ok(reply) => reply,
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
    }
}

#[test]
fn issue_26_function_dump_and_restore_policies() {
    let server = TestServer::start_with_resp(&[]);
    let mut conn = server.redis();
    let load = |conn: &mut redis::Connection, code: &str| {
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(code)
            .query(conn)
            .unwrap();
    };
    let flush = |conn: &mut redis::Connection| {
        let _: String = redis::cmd("FUNCTION").arg("FLUSH").query(conn).unwrap();
    };
    load(&mut conn, "#!lua name=lib1\nredis.register_function('f1', function() return 'one' end)\nredis.register_function('f3', function() return 'three' end)");
    let payload = function_dump(&mut conn);
    assert_eq!(payload[0], 245, "RDB_OPCODE_FUNCTION2");
    flush(&mut conn);
    assert_eq!(function_restore(&mut conn, &payload, None), "OK");
    assert_eq!(fcall(&mut conn, "f1"), "one");
    // APPEND (the default) refuses a library that exists; nothing changes.
    assert_eq!(
        function_restore(&mut conn, &payload, Some("append")),
        "ERR Library lib1 already exists"
    );
    // REPLACE swaps lib1, unless a function name belongs to another library.
    flush(&mut conn);
    load(
        &mut conn,
        "#!lua name=lib1\nredis.register_function('f6', function() return 'six' end)",
    );
    load(
        &mut conn,
        "#!lua name=lib2\nredis.register_function('f3', function() return 'other' end)",
    );
    assert_eq!(
        function_restore(&mut conn, &payload, Some("REPLACE")),
        "ERR Function f3 already exists"
    );
    assert_eq!(fcall(&mut conn, "f6"), "six");
    assert_eq!(fcall(&mut conn, "f3"), "other");
    // FLUSH drops everything else first.
    assert_eq!(function_restore(&mut conn, &payload, Some("FLUSH")), "OK");
    assert_eq!(fcall(&mut conn, "f3"), "three");
    assert!(fcall(&mut conn, "f6").contains("Function not found"));
    load(
        &mut conn,
        "#!lua name=lib2\nredis.register_function('f2', function() return 'two' end)",
    );
    assert_eq!(function_restore(&mut conn, &payload, Some("replace")), "OK");
    assert_eq!(fcall(&mut conn, "f2"), "two");
    assert_eq!(
        function_restore(&mut conn, &payload, Some("MERGE")),
        "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
    );
    assert_eq!(
        function_restore(&mut conn, b"bad_payload", None),
        "ERR DUMP payload version or checksum are wrong"
    );

    // Both ways with redis-server 7.0, when it is installed.
    let Some(redis_server) = start_redis_server() else {
        eprintln!("redis-server not installed: skipping the cross-server half");
        return;
    };
    let mut real = redis_server.redis();
    let ours = function_dump(&mut conn);
    assert_eq!(function_restore(&mut real, &ours, None), "OK");
    assert_eq!(fcall(&mut real, "f2"), "two");
    assert_eq!(fcall(&mut real, "f3"), "three");
    load(&mut real, "#!lua name=theirs\nredis.register_function('t1', function() return string.rep('t', 30) end)");
    let theirs = function_dump(&mut real);
    assert_eq!(function_restore(&mut conn, &theirs, Some("FLUSH")), "OK");
    assert_eq!(fcall(&mut conn, "t1"), "t".repeat(30));
    assert_eq!(fcall(&mut conn, "f1"), "one");
}

/// FUNCTION LOAD runs a library's code with Redis 7.0's library API only (`redis` with
/// register_function, log and the versions; no other global), stops it after 500 ms, and
/// answers bad registrations with Redis's words; a function at run time has no
/// register_function (the messages are redis-server 7.0.15's, from its unit/functions).
#[test]
fn issue_26_function_load_runs_only_the_library_api_and_times_out() {
    let server = TestServer::start_with_resp(&[]);
    let mut conn = server.connect_resp();
    let load = |conn: &mut Conn, body: &str| {
        ask(
            conn,
            &[
                "FUNCTION",
                "LOAD",
                "REPLACE",
                &format!("#!lua name=lib2\n{body}"),
            ],
        )
    };
    let cases = [
        ("redis.register_function('f1')", "calling redis.register_function with a single argument is only applicable to Lua table"),
        ("redis.register_function('test\\0test', function() return 1 end)", "Library names can only contain letters, numbers, or underscores(_)"),
        ("redis.register_function('', function() return 1 end)", "Library names can only contain letters, numbers, or underscores(_)"),
        ("return math.random()", "attempted to access nonexistent global variable 'math'"),
        ("return redis.setresp(3)", "attempted to access nonexistent global variable 'setresp'"),
        ("local a = 1 while 1 do a = a + 1 end", "FUNCTION LOAD timeout"),
    ];
    for (body, want) in cases {
        let started = std::time::Instant::now();
        let reply = load(&mut conn, body);
        assert!(
            reply.starts_with("-ERR") && reply.contains(want),
            "{body}: {reply}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{body}"
        );
    }
    // A function that tries to register another at run time finds no register_function.
    let body = "redis.register_function('f1', function(keys, args) \
                redis.register_function('f2', function() return 2 end) return 1 end)";
    assert_eq!(load(&mut conn, body), "$4\r\nlib2\r\n");
    let reply = ask(&mut conn, &["FCALL", "f1", "0"]);
    assert!(
        reply.contains("attempt to call field 'register_function' (a nil value)"),
        "{reply}"
    );
    // The metadata line is split as Redis splits it: a quoted name is the name.
    let quoted = "#!lua name=\"foo\"\nredis.register_function('foo', function() return 1 end)";
    assert_eq!(
        ask(&mut conn, &["FUNCTION", "LOAD", "REPLACE", quoted]),
        "$3\r\nfoo\r\n"
    );
    // The server is free again after the timed-out load.
    assert_eq!(ask(&mut conn, &["PING"]), "+PONG\r\n");
}
