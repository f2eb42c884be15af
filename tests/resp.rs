//! RESP end to end on the real binary: the `redis` client crate and raw bytes. Expected error
//! texts were checked against redis-server 7.0 from Debian.

mod common;

use std::time::Duration;

use common::TestServer;
use redis::Commands;

#[test]
fn strings_work_through_the_redis_crate() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = r.set("greeting", "hello").unwrap();
    assert_eq!(r.get::<_, String>("greeting").unwrap(), "hello");
    assert_eq!(r.incr::<_, _, i64>("n", 5).unwrap(), 5);
    assert_eq!(r.decr::<_, _, i64>("n", 7).unwrap(), -2);
    assert_eq!(r.append::<_, _, i64>("greeting", " world").unwrap(), 11);
    assert_eq!(r.strlen::<_, i64>("greeting").unwrap(), 11);
    assert_eq!(r.getrange::<_, String>("greeting", 0, 4).unwrap(), "hello");
    assert_eq!(
        r.getrange::<_, String>("greeting", -5, -1).unwrap(),
        "world"
    );
    assert_eq!(r.setrange::<_, _, i64>("pad", 3, "x").unwrap(), 4);
    assert_eq!(r.get::<_, Vec<u8>>("pad").unwrap(), b"\0\0\0x");
    let _: () = r.mset(&[("a", "1"), ("b", "2")]).unwrap();
    assert_eq!(
        r.mget::<_, Vec<Option<String>>>(&["a", "b", "nope"])
            .unwrap(),
        vec![Some("1".to_string()), Some("2".to_string()), None]
    );
    assert!(!r.set_nx::<_, _, bool>("a", "x").unwrap());
    assert_eq!(
        redis::cmd("GETDEL")
            .arg("a")
            .query::<String>(&mut r)
            .unwrap(),
        "1"
    );
    assert_eq!(r.exists::<_, i64>("a").unwrap(), 0);
    let old: Option<String> = redis::cmd("SET")
        .arg("b")
        .arg("3")
        .arg("GET")
        .query(&mut r)
        .unwrap();
    assert_eq!(old.as_deref(), Some("2"));
    let f: String = redis::cmd("INCRBYFLOAT")
        .arg("f")
        .arg("10.5")
        .query(&mut r)
        .unwrap();
    assert_eq!(f, "10.5");
    let f: String = redis::cmd("INCRBYFLOAT")
        .arg("f")
        .arg("0.1")
        .query(&mut r)
        .unwrap();
    assert_eq!(f, "10.6");
}

#[test]
fn ttls_and_keys() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut r)
        .unwrap();
    let ttl: i64 = r.ttl("k").unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(r.ttl::<_, i64>("nope").unwrap(), -2);
    assert!(r.persist::<_, bool>("k").unwrap());
    assert_eq!(r.ttl::<_, i64>("k").unwrap(), -1);
    let set: i64 = redis::cmd("EXPIRE")
        .arg("k")
        .arg(50)
        .arg("XX")
        .query(&mut r)
        .unwrap();
    assert_eq!(set, 0, "XX on a key without TTL");
    let set: i64 = redis::cmd("EXPIRE")
        .arg("k")
        .arg(50)
        .arg("NX")
        .query(&mut r)
        .unwrap();
    assert_eq!(set, 1);
    let set: i64 = redis::cmd("EXPIRE")
        .arg("k")
        .arg(10)
        .arg("GT")
        .query(&mut r)
        .unwrap();
    assert_eq!(set, 0);
    let _: () = r.rename("k", "k2").unwrap();
    assert_eq!(r.exists::<_, i64>("k").unwrap(), 0);
    assert!(r.ttl::<_, i64>("k2").unwrap() > 0, "rename keeps the TTL");
    let _: () = redis::cmd("SET")
        .arg("gone")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut r)
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(r.get::<_, Option<String>>("gone").unwrap(), None);
    for i in 0..300 {
        let _: () = r.set(format!("scan:{i}"), i).unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("scan:*")
            .arg("COUNT")
            .arg(25)
            .query(&mut r)
            .unwrap();
        seen.extend(keys);
        // Writes during the scan must not hide keys present all along.
        let _: () = r.set(format!("other:{next}"), 1).unwrap();
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 300);
    let mut keys: Vec<String> = r.keys("scan:1?").unwrap();
    keys.sort();
    assert_eq!(keys.len(), 10);
    assert_eq!(
        redis::cmd("TYPE")
            .arg("k2")
            .query::<String>(&mut r)
            .unwrap(),
        "string"
    );
    assert_eq!(
        redis::cmd("TYPE")
            .arg("nope")
            .query::<String>(&mut r)
            .unwrap(),
        "none"
    );
    let _: () = redis::cmd("FLUSHALL").query(&mut r).unwrap();
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut r).unwrap(), 0);
}

#[test]
fn hashes_with_field_ttls() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = r.hset_multiple("h", &[("a", "1"), ("b", "2")]).unwrap();
    assert_eq!(r.hget::<_, _, String>("h", "a").unwrap(), "1");
    assert_eq!(r.hlen::<_, i64>("h").unwrap(), 2);
    assert_eq!(r.hincr::<_, _, _, i64>("h", "a", 10).unwrap(), 11);
    let all: std::collections::HashMap<String, String> = r.hgetall("h").unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["a"], "11");
    assert!(r.hexists::<_, _, bool>("h", "b").unwrap());
    let codes: Vec<i64> = redis::cmd("HPEXPIRE")
        .arg("h")
        .arg(50)
        .arg("FIELDS")
        .arg(2)
        .arg("b")
        .arg("zz")
        .query(&mut r)
        .unwrap();
    assert_eq!(codes, vec![1, -2]);
    let ttls: Vec<i64> = redis::cmd("HTTL")
        .arg("h")
        .arg("FIELDS")
        .arg(2)
        .arg("a")
        .arg("b")
        .query(&mut r)
        .unwrap();
    assert_eq!(ttls[0], -1);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(r.hget::<_, _, Option<String>>("h", "b").unwrap(), None);
    assert_eq!(r.hlen::<_, i64>("h").unwrap(), 1);
    let err = r.get::<_, String>("h").unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(r.hdel::<_, _, i64>("h", "a").unwrap(), 1);
    assert_eq!(
        r.exists::<_, i64>("h").unwrap(),
        0,
        "an emptied hash is removed"
    );
    for i in 0..100 {
        let _: () = r.hset("big", format!("f{i}"), i).unwrap();
    }
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("big")
        .query(&mut r)
        .unwrap();
    assert_eq!(encoding, "hashtable");
    let mut fields = std::collections::HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("HSCAN")
            .arg("big")
            .arg(cursor)
            .query(&mut r)
            .unwrap();
        fields.extend(page.chunks(2).map(|pair| pair[0].clone()));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(fields.len(), 100);
    let picks: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("big")
        .arg(5)
        .query(&mut r)
        .unwrap();
    assert_eq!(
        picks.iter().collect::<std::collections::HashSet<_>>().len(),
        5
    );
    let repeats: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("big")
        .arg(-300)
        .query(&mut r)
        .unwrap();
    assert_eq!(repeats.len(), 300);
}

#[test]
fn transactions_are_atomic_and_watch_aborts() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let mut other = server.redis();
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("counter", 1)
        .incr("counter", 1)
        .query(&mut r)
        .unwrap();
    assert_eq!((a, b), (1, 2));
    let _: () = redis::cmd("WATCH").arg("counter").query(&mut r).unwrap();
    let _: () = other.set("counter", 100).unwrap();
    let result: Option<(i64,)> = redis::pipe()
        .atomic()
        .incr("counter", 1)
        .query(&mut r)
        .unwrap();
    assert_eq!(result, None, "EXEC after a watched key changed returns nil");
    // Many clients incrementing in MULTI/EXEC on both workers never lose an update.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut c = server.redis();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let _: (i64, i64) = redis::pipe()
                        .atomic()
                        .incr("x", 1)
                        .incr("y", 1)
                        .query(&mut c)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(r.get::<_, i64>("x").unwrap(), 800);
    assert_eq!(r.get::<_, i64>("y").unwrap(), 800);
}

#[test]
fn errors_use_redis_words_and_keep_the_connection() {
    let server = TestServer::start_with_resp(&[]);
    let mut c = server.connect_resp();
    c.roundtrip(
        b"FOO a b\r\n",
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
    );
    c.roundtrip(
        b"GET\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    );
    c.roundtrip(b"SET k v NX XX\r\n", b"-ERR syntax error\r\n");
    c.roundtrip(
        b"SET k v EX 0\r\n",
        b"-ERR invalid expire time in 'set' command\r\n",
    );
    c.roundtrip(
        b"SET n 9223372036854775807\r\nINCR n\r\n",
        b"+OK\r\n-ERR increment or decrement would overflow\r\n",
    );
    c.roundtrip(
        b"INCRBY n x\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    );
    c.roundtrip(b"SELECT 1\r\n", b"-ERR DB index is out of range\r\n");
    c.roundtrip(b"HELLO 4\r\n", b"-NOPROTO unsupported protocol version\r\n");
    c.roundtrip(b"MULTI\r\nGET\r\nEXEC\r\n", b"+OK\r\n-ERR wrong number of arguments for 'get' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n");
    c.roundtrip(b"EXEC\r\n", b"-ERR EXEC without MULTI\r\n");
    c.roundtrip(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");
    c.roundtrip(b"*2\r\n$4\r\nECHO\r\n$3\r\nhey\r\n", b"$3\r\nhey\r\n");
    // A protocol error gets Redis's reply, then the connection closes.
    c.roundtrip(
        b"*1\r\n:1\r\n",
        b"-ERR Protocol error: expected '$', got ':'\r\n",
    );
    assert!(c.is_closed());
}

#[test]
fn resp3_replies_and_the_shared_store() {
    let server = TestServer::start_with_resp(&[]);
    let mut c = server.connect_resp();
    c.send(b"HELLO 3\r\n");
    let hello = c.read_until(b"*0\r\n");
    assert!(
        hello.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{}",
        String::from_utf8_lossy(&hello)
    );
    c.roundtrip(b"GET nope\r\n", b"_\r\n");
    c.roundtrip(
        b"HSET h f v\r\nHGETALL h\r\n",
        b":1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
    );
    c.roundtrip(b"SET shared fromresp\r\n", b"+OK\r\n");
    // A key written over RESP reads back over memcached, and the other way round.
    let mut m = server.connect();
    m.roundtrip(
        b"get shared\r\n",
        b"VALUE shared 0 8\r\nfromresp\r\nEND\r\n",
    );
    m.roundtrip(b"set frommc 0 0 2\r\nhi\r\n", b"STORED\r\n");
    c.roundtrip(b"GET frommc\r\n", b"$2\r\nhi\r\n");
    m.roundtrip(b"get h\r\n", b"END\r\n");
}

#[test]
fn requirepass_gates_commands_until_auth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.toml");
    std::fs::write(&path, "[resp]\nrequirepass = \"sekret\"\n").unwrap();
    let server = TestServer::start_with_resp(&["--config", path.to_str().unwrap()]);
    let mut c = server.connect_resp();
    c.roundtrip(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n");
    c.roundtrip(
        b"AUTH wrong\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    c.roundtrip(b"AUTH sekret\r\nGET k\r\n", b"+OK\r\n$-1\r\n");
}

#[test]
fn info_and_client_commands() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = r.set("k", 1).unwrap();
    let info: String = redis::cmd("INFO").query(&mut r).unwrap();
    assert!(info.contains("redis_version:"), "{info}");
    assert!(info.contains("db0:keys=1,expires=0"), "{info}");
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("app1")
        .query(&mut r)
        .unwrap();
    let name: String = redis::cmd("CLIENT").arg("GETNAME").query(&mut r).unwrap();
    assert_eq!(name, "app1");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut r).unwrap();
    assert!(list.contains("name=app1"), "{list}");
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut r)
        .unwrap();
    assert_eq!(
        config,
        vec!["maxmemory".to_string(), (64 * 1024 * 1024).to_string()]
    );
    // Redis's "no limit" (0) goes back to the startup limit: the store is always bounded.
    // Units as Redis's memtoull: k/m/g are powers of 1000, kb/mb/gb powers of 1024.
    for (setting, shown) in [
        ("1mb", 1024 * 1024_u64),
        ("100m", 100_000_000),
        ("3k", 3000),
        ("3KB", 3072),
        ("2g", 2_000_000_000),
        ("2GB", 2 << 30),
        ("0", 64 * 1024 * 1024),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(setting)
            .query(&mut r)
            .unwrap();
        let config: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory")
            .query(&mut r)
            .unwrap();
        assert_eq!(config, vec!["maxmemory".to_string(), shown.to_string()]);
    }
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut r).unwrap();
    assert!(count > 80);
}

#[test]
fn command_info_answers_nil_for_unknown_names_and_config_refuses_bad_units() {
    let server = TestServer::start_with_resp(&[]);
    let mut c = server.connect_resp();
    // redis-server 7: one entry per name, `$-1` (RESP3 `_`) for an unknown one.
    c.send(b"COMMAND INFO get nosuchcmd\r\n");
    let reply = c.read_until(b"$-1\r\n");
    assert!(
        reply.starts_with(b"*2\r\n*10\r\n$3\r\nget\r\n"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    c.roundtrip(b"COMMAND INFO nosuchcmd\r\n", b"*1\r\n$-1\r\n");
    c.send(b"HELLO 3\r\n");
    c.read_until(b"modules\r\n*0\r\n");
    c.roundtrip(b"COMMAND INFO nosuch other\r\n", b"*2\r\n_\r\n_\r\n");
    for refused in ["1.5m", "1tb", "1kib", "-1", "+1m"] {
        c.roundtrip(
            format!("CONFIG SET maxmemory {refused}\r\n").as_bytes(),
            b"-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n",
        );
    }
}

#[test]
fn thousand_command_pipeline_answers_in_order() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.set(format!("p{i}"), i).ignore();
        pipe.incr(format!("p{i}"), 1);
    }
    let values: Vec<i64> = pipe.query(&mut r).unwrap();
    assert_eq!(values, (1..=1000).collect::<Vec<i64>>());
}

#[test]
fn garbage_then_a_fresh_connection_still_reads_the_data() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = r.set("keep", "safe").unwrap();
    let mut c = server.connect_resp();
    c.send(b"*2\r\n$3\r\nGET\r\n$-7\r\n");
    assert_eq!(
        c.read_until(b"\r\n"),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(c.is_closed());
    let mut junk = server.connect_resp();
    let noise: Vec<u8> = (0..70_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    junk.send(&noise);
    assert_eq!(
        junk.read_until(b"\r\n"),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    let mut fresh = server.redis();
    assert_eq!(fresh.get::<_, String>("keep").unwrap(), "safe");
}

/// Found by the connection fuzz target: a negative count asks for |count| picks with repeats,
/// and `HRANDFIELD h -3222222222` made the worker allocate them all at once and panic (capacity
/// overflow), killing the worker. Redis 7.0 runs out of memory on such counts; here a count
/// whose reply cannot fit in the 64 MiB output limit is refused, and a reply of large elements
/// that passes the limit anyway is cut short and its connection closed, the server unharmed.
#[test]
fn issue_8_huge_negative_random_counts_leave_the_server_standing() {
    let server = TestServer::start_with_resp(&[]);
    let mut c = server.connect_resp();
    c.roundtrip(b"HSET h f v\r\nZADD z 1 m\r\n", b":1\r\n:1\r\n");
    for request in [
        &b"HRANDFIELD h -3222222222\r\n"[..],
        b"ZRANDMEMBER z -3222222222 WITHSCORES\r\n",
        b"HRANDFIELD h -4611686018427387904 WITHVALUES\r\n",
    ] {
        c.roundtrip(request, b"-ERR value is out of range\r\n");
    }
    c.roundtrip(
        b"ZRANDMEMBER z -9223372036854775808\r\n",
        b"-ERR value is out of range, value must between -9223372036854775807 and \
          9223372036854775807\r\n",
    );
    c.roundtrip(
        b"HRANDFIELD nokey -3222222222\r\nPING\r\n",
        b"*0\r\n+PONG\r\n",
    );

    // 300 picks of a 500 KB value: 150 MB of reply, over the output limit: the connection is
    // closed (the server drops what it had not sent, as for any connection over the limit).
    let value = "x".repeat(500_000);
    c.send(
        format!("*4\r\n$4\r\nHSET\r\n$3\r\nbig\r\n$1\r\nf\r\n$500000\r\n{value}\r\n").as_bytes(),
    );
    c.roundtrip(b"", b":1\r\n");
    c.send(b"HRANDFIELD big -300 WITHVALUES\r\n");
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match std::io::Read::read(&mut c.stream, &mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close after {received} bytes: {e}"),
        }
    }
    assert!(received <= (64 << 20) + 600_000, "{received} bytes");

    let mut c = server.connect_resp();
    c.roundtrip(
        b"HLEN big\r\nHRANDFIELD h -2\r\n",
        b":1\r\n*2\r\n$1\r\nf\r\n$1\r\nf\r\n",
    );
}

/// The CLIENT LIST line of the client named `name`.
fn client_line(observer: &mut common::Conn, name: &str) -> String {
    observer.send(b"CLIENT LIST\r\n");
    // A bulk string whose lines end in "\n"; the reply ends with "\n\r\n".
    let body = String::from_utf8(observer.read_until(b"\n\r\n")).unwrap();
    body.lines()
        .find(|line| line.contains(&format!(" name={name} ")))
        .unwrap_or_else(|| panic!("no client {name} in {body}"))
        .to_string()
}

#[test]
fn client_list_shows_each_clients_protocol_transaction_and_subscriptions() {
    let server = TestServer::start_with_resp(&[]);
    let mut observer = server.connect_resp();
    let mut tx = server.connect_resp();
    tx.send(b"HELLO 3 SETNAME tx\r\n");
    tx.read_until(b"modules\r\n*0\r\n");
    tx.roundtrip(
        b"MULTI\r\nSET a 1\r\nGET a\r\n",
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n",
    );
    let line = client_line(&mut observer, "tx");
    assert!(
        line.contains(" flags=x db=0 sub=0 psub=0 ssub=0 multi=2 "),
        "{line}"
    );
    assert!(line.contains(" cmd=get "), "{line}");
    assert!(line.contains(" resp=3 "), "{line}");
    let mut sub = server.connect_resp();
    sub.roundtrip(b"CLIENT SETNAME sub\r\n", b"+OK\r\n");
    sub.send(b"SUBSCRIBE c1 c2\r\nPSUBSCRIBE p*\r\n");
    sub.read_until(b"$2\r\np*\r\n:3\r\n");
    let line = client_line(&mut observer, "sub");
    assert!(
        line.contains(" flags=P db=0 sub=2 psub=1 ssub=0 multi=-1 "),
        "{line}"
    );
    assert!(line.contains(" resp=2 "), "{line}");
    let resp_addr = server.resp_addr.unwrap().to_string();
    assert!(line.contains(&format!(" laddr={resp_addr} ")), "{line}");
    // TYPE and ID filters of CLIENT LIST.
    observer.send(b"CLIENT LIST TYPE pubsub\r\n");
    let only = String::from_utf8(observer.read_until(b"\n\r\n")).unwrap();
    assert_eq!(
        only.lines().filter(|l| l.starts_with("id=")).count(),
        1,
        "{only}"
    );
    assert!(only.contains(" name=sub "), "{only}");
}

#[test]
fn client_kill_filters_by_type_user_laddr_and_skips_the_caller() {
    let server = TestServer::start_with_resp(&[]);
    let mut killer = server.connect_resp();
    let mut normal = [server.connect_resp(), server.connect_resp()];
    for conn in &mut normal {
        conn.roundtrip(b"PING\r\n", b"+PONG\r\n");
    }
    let mut subscriber = server.connect_resp();
    subscriber.roundtrip(
        b"SUBSCRIBE news\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    // redis-server 7's errors.
    for (request, reply) in [
        ("CLIENT KILL USER nosuch", "-ERR No such user 'nosuch'"),
        ("CLIENT KILL TYPE bogus", "-ERR Unknown client type 'bogus'"),
        (
            "CLIENT KILL ID abc",
            "-ERR client-id should be greater than 0",
        ),
        (
            "CLIENT KILL ID 0",
            "-ERR client-id should be greater than 0",
        ),
        ("CLIENT KILL ADDR x SKIPME maybe", "-ERR syntax error"),
        ("CLIENT KILL ID 1 TYPE", "-ERR syntax error"),
        ("CLIENT KILL nosuch:1", "-ERR No such client"),
        ("CLIENT KILL TYPE master", ":0"),
        ("CLIENT KILL TYPE replica USER default", ":0"),
    ] {
        killer.roundtrip(
            format!("{request}\r\n").as_bytes(),
            format!("{reply}\r\n").as_bytes(),
        );
    }
    killer.roundtrip(b"CLIENT KILL TYPE pubsub\r\n", b":1\r\n");
    assert!(subscriber.is_closed(), "the pubsub client is closed");
    killer.roundtrip(b"CLIENT KILL TYPE normal USER default\r\n", b":2\r\n");
    for conn in &mut normal {
        assert!(conn.is_closed(), "normal clients are closed");
    }
    // SKIPME yes is the default: the caller survives.
    killer.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let mut other = server.connect_resp();
    other.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let laddr = server.resp_addr.unwrap().to_string();
    killer.roundtrip(b"CLIENT KILL LADDR 127.0.0.1:1 SKIPME no\r\n", b":0\r\n");
    killer.roundtrip(
        format!("CLIENT KILL LADDR {laddr} SKIPME no\r\n").as_bytes(),
        b":2\r\n",
    );
    assert!(other.is_closed(), "the other client is closed");
    assert!(
        killer.is_closed(),
        "SKIPME no: the caller is closed after its reply"
    );
}

/// DUMP and RESTORE through the `redis` crate: every type round-trips with its TTL, a payload
/// redis-server 7.0.15 made (a listpack hash, RDB 10) restores, and the errors are Redis's.
#[test]
fn dump_and_restore_every_type() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let _: () = r.set_ex("s", "hello", 100).unwrap();
    let _: i64 = r.rpush("l", &["a", "b", "c"]).unwrap();
    let _: i64 = r.sadd("set", &["1", "x"]).unwrap();
    let _: i64 = r
        .hset_multiple("h", &[("f", "v"), ("g", "w")])
        .map(|()| 2)
        .unwrap();
    let _: i64 = r.zadd_multiple("z", &[(1.5, "a"), (-2.0, "b")]).unwrap();
    for key in ["s", "l", "set", "h", "z"] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut r).unwrap();
        let copy = format!("{key}:copy");
        let ok: String = redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(&payload)
            .query(&mut r)
            .unwrap();
        assert_eq!(ok, "OK");
        let again: Vec<u8> = redis::cmd("DUMP").arg(&copy).query(&mut r).unwrap();
        let kind: String = redis::cmd("TYPE").arg(&copy).query(&mut r).unwrap();
        // Sets and hashes may list their members in another order: compare contents.
        match kind.as_str() {
            "set" => {
                let (mut a, mut b): (Vec<String>, Vec<String>) =
                    (r.smembers(key).unwrap(), r.smembers(&copy).unwrap());
                a.sort();
                b.sort();
                assert_eq!(a, b);
            }
            "hash" => {
                let a: std::collections::HashMap<String, String> = r.hgetall(key).unwrap();
                let b: std::collections::HashMap<String, String> = r.hgetall(&copy).unwrap();
                assert_eq!(a, b);
            }
            _ => assert_eq!(again, payload, "{key}"),
        }
    }
    // RESTORE with a TTL, and BUSYKEY without REPLACE.
    let payload: Vec<u8> = redis::cmd("DUMP").arg("s").query(&mut r).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("t")
        .arg(5000)
        .arg(&payload)
        .query(&mut r)
        .unwrap();
    let pttl: i64 = r.pttl("t").unwrap();
    assert!(pttl > 4000 && pttl <= 5000, "{pttl}");
    let busy = redis::cmd("RESTORE")
        .arg("t")
        .arg(0)
        .arg(&payload)
        .query::<()>(&mut r)
        .unwrap_err();
    assert_eq!(busy.code(), Some("BUSYKEY"));
    let mut bad = payload.clone();
    bad[1] ^= 1;
    let wrong = redis::cmd("RESTORE")
        .arg("u")
        .arg(0)
        .arg(&bad)
        .query::<()>(&mut r)
        .unwrap_err();
    assert!(
        wrong
            .to_string()
            .contains("DUMP payload version or checksum are wrong"),
        "{wrong}"
    );
    // `DUMP hlp` from redis-server 7.0.15 after `HSET hlp f v n 12`.
    const HLP: &str = "1012120000000400816602817602816e020c01ff0a0001369481d35b8974";
    let redis7: Vec<u8> = (0..HLP.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&HLP[i..i + 2], 16).unwrap())
        .collect();
    let _: () = redis::cmd("RESTORE")
        .arg("from7")
        .arg(0)
        .arg(&redis7)
        .query(&mut r)
        .unwrap();
    let fields: std::collections::HashMap<String, String> = r.hgetall("from7").unwrap();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields["n"], "12");
}

/// CONFIG SET of the encoding thresholds, under both spellings, changes the encoding a value
/// takes (replies as redis-server 7.0.15 gave them; lists answer `listpack` while one node
/// holds them, as Redis 7.2 does).
#[test]
fn encoding_thresholds_change_the_encoding() {
    let server = TestServer::start_with_resp(&[]);
    let mut r = server.redis();
    let mut config_set = |name: &str, value: &str| {
        let ok: String = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query(&mut r)
            .unwrap();
        assert_eq!(ok, "OK", "{name}");
    };
    config_set("set-max-intset-entries", "2");
    config_set("zset-max-ziplist-entries", "2");
    config_set("zset-max-listpack-value", "3");
    config_set("hash-max-ziplist-entries", "1");
    config_set("hash-max-listpack-value", "3");
    config_set("list-max-ziplist-size", "2");
    let mut r = server.redis();
    let encoding = |r: &mut redis::Connection, key: &str| -> String {
        redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(r)
            .unwrap()
    };
    let _: i64 = r.sadd("s", &[1, 2]).unwrap();
    assert_eq!(encoding(&mut r, "s"), "intset");
    let _: i64 = r.sadd("s", 3).unwrap();
    assert_eq!(encoding(&mut r, "s"), "hashtable");
    let _: i64 = r.zadd_multiple("z", &[(1, "a"), (2, "b")]).unwrap();
    assert_eq!(encoding(&mut r, "z"), "listpack");
    let _: i64 = r.zadd("z", "c", 3).unwrap();
    assert_eq!(encoding(&mut r, "z"), "skiplist");
    let _: i64 = r.zadd("z2", "abcd", 1).unwrap();
    assert_eq!(encoding(&mut r, "z2"), "skiplist");
    let _: i64 = r.hset("h", "a", "1").unwrap();
    assert_eq!(encoding(&mut r, "h"), "listpack");
    let _: i64 = r.hset("h", "b", "2").unwrap();
    assert_eq!(encoding(&mut r, "h"), "hashtable");
    let _: i64 = r.hset("h2", "a", "1234").unwrap();
    assert_eq!(encoding(&mut r, "h2"), "hashtable");
    let _: i64 = r.rpush("l", &["a", "b"]).unwrap();
    assert_eq!(encoding(&mut r, "l"), "listpack");
    let _: i64 = r.rpush("l", "c").unwrap();
    assert_eq!(encoding(&mut r, "l"), "quicklist");
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("zset-max-ziplist-value")
        .query(&mut r)
        .unwrap();
    assert_eq!(got, ["zset-max-ziplist-value", "3"]);
    let refused = redis::cmd("CONFIG")
        .arg("SET")
        .arg("list-max-ziplist-size")
        .arg("99999999999")
        .query::<()>(&mut r)
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("argument must be between -2147483648 and 2147483647 inclusive"),
        "{refused}"
    );
}

/// 100 RANDOMKEY in one pipeline (one millisecond) over two keys draw both, as Redis's
/// unit/keyspace asks.
#[test]
fn randomkey_draws_every_key_within_one_pipeline() {
    let server = TestServer::start_with_resp(&[]);
    let mut con = server.redis();
    let _: () = redis::cmd("MSET")
        .arg(&["foo", "x", "bar", "y"])
        .query(&mut con)
        .unwrap();
    let mut pipe = redis::pipe();
    for _ in 0..100 {
        pipe.cmd("RANDOMKEY");
    }
    let keys: Vec<String> = pipe.query(&mut con).unwrap();
    let foo = keys.iter().filter(|k| *k == "foo").count();
    assert!(
        foo > 0 && foo < 100,
        "foo drawn {foo} times of 100: {keys:?}"
    );
}
