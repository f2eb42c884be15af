//! Pub/sub end to end on the real binary: fan-out across both workers, ordering, patterns,
//! RESP3 push frames and the disconnection of a subscriber that does not read.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Conn, TestServer};

/// Reads RESP frames of the form `*3 message <channel> <payload>` and returns the payloads.
fn read_messages(conn: &mut Conn, count: usize, deadline: Instant) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut payloads = Vec::with_capacity(count);
    let mut pos = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    while payloads.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages arrived",
            payloads.len()
        );
        let n = conn.stream.read(&mut chunk).expect("read messages");
        assert!(
            n > 0,
            "subscriber disconnected after {} messages",
            payloads.len()
        );
        buf.extend_from_slice(&chunk[..n]);
        // Parse whole frames: *N, then N bulk strings.
        while let Some((used, parts)) = parse_array(&buf[pos..]) {
            pos += used;
            payloads.push(parts.last().cloned().unwrap());
        }
    }
    payloads
}

/// Parses one array of bulk strings; returns (bytes used, parts).
fn parse_array(buf: &[u8]) -> Option<(usize, Vec<Vec<u8>>)> {
    let line_end = |from: usize| {
        buf[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| from + p)
    };
    let end = line_end(0)?;
    let n: usize = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
    let mut pos = end + 2;
    let mut parts = Vec::new();
    for _ in 0..n {
        let end = line_end(pos)?;
        let len: usize = std::str::from_utf8(&buf[pos + 1..end]).ok()?.parse().ok()?;
        let start = end + 2;
        if buf.len() < start + len + 2 {
            return None;
        }
        parts.push(buf[start..start + len].to_vec());
        pos = start + len + 2;
    }
    Some((pos, parts))
}

#[test]
fn fifty_subscribers_on_both_workers_get_every_message_in_order() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut subscribers: Vec<Conn> = (0..50).map(|_| server.connect_resp()).collect();
    for s in &mut subscribers {
        s.roundtrip(
            b"SUBSCRIBE feed\r\n",
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\nfeed\r\n:1\r\n",
        );
    }
    let mut publisher = server.connect_resp();
    let total = 10_000;
    let mut request = Vec::new();
    for i in 0..total {
        let payload = i.to_string();
        request.extend_from_slice(
            format!(
                "*3\r\n$7\r\nPUBLISH\r\n$4\r\nfeed\r\n${}\r\n{payload}\r\n",
                payload.len()
            )
            .as_bytes(),
        );
    }
    let mut writer = publisher.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&request).unwrap();
    });
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                read_messages(&mut s, total, Instant::now() + Duration::from_secs(120))
            })
        })
        .collect();
    // Every PUBLISH reports all 50 receivers.
    let replies = publisher.read_exact(b":50\r\n".len() * total);
    assert!(replies.chunks(5).all(|r| r == b":50\r\n"));
    sender.join().unwrap();
    for reader in readers {
        let payloads = reader.join().unwrap();
        let expected: Vec<Vec<u8>> = (0..total).map(|i| i.to_string().into_bytes()).collect();
        assert!(payloads == expected, "messages lost or out of order");
    }
}

#[test]
fn patterns_shard_channels_and_introspection() {
    let server = TestServer::start_with_resp(&[]);
    let mut p = server.connect_resp();
    p.roundtrip(
        b"PSUBSCRIBE user:*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$6\r\nuser:*\r\n:1\r\n",
    );
    let mut s = server.connect_resp();
    s.roundtrip(
        b"SSUBSCRIBE shard1\r\n",
        b"*3\r\n$10\r\nssubscribe\r\n$6\r\nshard1\r\n:1\r\n",
    );
    let mut c = server.connect_resp();
    c.roundtrip(b"PUBLISH user:42 hi\r\n", b":1\r\n");
    c.roundtrip(b"PUBLISH other hi\r\n", b":0\r\n");
    c.roundtrip(b"SPUBLISH shard1 x\r\n", b":1\r\n");
    c.roundtrip(b"PUBSUB NUMPAT\r\n", b":1\r\n");
    c.roundtrip(b"PUBSUB SHARDCHANNELS\r\n", b"*1\r\n$6\r\nshard1\r\n");
    c.roundtrip(
        b"PUBSUB NUMSUB user:42\r\n",
        b"*2\r\n$7\r\nuser:42\r\n:0\r\n",
    );
    assert_eq!(
        p.read_until(b"hi\r\n"),
        b"*4\r\n$8\r\npmessage\r\n$6\r\nuser:*\r\n$7\r\nuser:42\r\n$2\r\nhi\r\n"
    );
    assert_eq!(
        s.read_until(b"x\r\n"),
        b"*3\r\n$8\r\nsmessage\r\n$6\r\nshard1\r\n$1\r\nx\r\n"
    );
    // A closed subscriber is forgotten.
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        c.send(b"PUBSUB NUMPAT\r\n");
        if c.read_until(b"\r\n") == b":0\r\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pattern of a closed connection still registered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn resp3_subscribers_get_push_frames_and_keep_running_commands() {
    let server = TestServer::start_with_resp(&[]);
    let mut s = server.connect_resp();
    s.send(b"HELLO 3\r\n");
    s.read_until(b"*0\r\n");
    s.roundtrip(
        b"SUBSCRIBE ch\r\n",
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    );
    s.roundtrip(b"SET k v\r\nGET k\r\n", b"+OK\r\n$1\r\nv\r\n");
    server
        .connect_resp()
        .roundtrip(b"PUBLISH ch m\r\n", b":1\r\n");
    assert_eq!(
        s.read_until(b"m\r\n"),
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"
    );
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_while_others_keep_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pubsub.toml");
    std::fs::write(&path, "[resp]\npubsub_output_hard_limit = \"256KiB\"\n").unwrap();
    let server = TestServer::start_with_resp(&["--config", path.to_str().unwrap()]);
    let mut lazy = server.connect_resp();
    lazy.roundtrip(
        b"SUBSCRIBE big\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n",
    );
    let mut eager = server.connect_resp();
    eager.roundtrip(
        b"SUBSCRIBE big\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n",
    );
    // The publisher sends in batches and waits until the eager subscriber has read each batch,
    // so the eager one never holds more than one batch (100 KB, under the 256 KiB limit) however
    // the threads are scheduled, while the lazy one falls further behind with every batch.
    let total = 20_000;
    let batch = 100;
    let payload = "p".repeat(1000);
    let mut request = Vec::new();
    for _ in 0..batch {
        request.extend_from_slice(
            format!("*3\r\n$7\r\nPUBLISH\r\n$3\r\nbig\r\n$1000\r\n{payload}\r\n").as_bytes(),
        );
    }
    let mut publisher = server.connect_resp();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut replies = Vec::new();
    let mut eager_received = 0;
    for _ in 0..total / batch {
        use std::io::Write;
        publisher.stream.write_all(&request).unwrap();
        // Replies: first 2 receivers, then 1 once the lazy subscriber has been dropped.
        let mut batch_replies = vec![0u8; batch * 4];
        publisher.stream.read_exact(&mut batch_replies).unwrap();
        replies.extend_from_slice(&batch_replies);
        eager_received += read_messages(&mut eager, batch, deadline).len();
    }
    assert!(
        replies.ends_with(b":1\r\n"),
        "the non-reading subscriber was never disconnected"
    );
    assert_eq!(
        eager_received, total,
        "the reading subscriber missed messages"
    );
    // The lazy one finds its connection closed once it drains what the kernel held.
    lazy.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(lazy.is_closed());
}

#[test]
fn keyspace_notifications_carry_memcached_writes_to_resp_subscribers() {
    let server = TestServer::start_with_resp(&[]);
    let mut admin = server.connect_resp();
    admin.roundtrip(b"CONFIG SET notify-keyspace-events KEA\r\n", b"+OK\r\n");
    admin.roundtrip(
        b"CONFIG GET notify-keyspace-events\r\n",
        b"*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n",
    );
    let mut sub = server.connect_resp();
    sub.roundtrip(
        b"SUBSCRIBE __keyspace@0__:user:1 __keyevent@0__:expired\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$21\r\n__keyspace@0__:user:1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$22\r\n__keyevent@0__:expired\r\n:2\r\n",
    );
    let mut mc = server.connect();
    mc.roundtrip(b"set user:1 0 0 2\r\nhi\r\n", b"STORED\r\n");
    mc.roundtrip(b"delete user:1\r\n", b"DELETED\r\n");
    mc.roundtrip(b"set brief 0 1 1\r\nx\r\n", b"STORED\r\n");
    let expected = [
        b"*3\r\n$7\r\nmessage\r\n$21\r\n__keyspace@0__:user:1\r\n$3\r\nset\r\n".as_slice(),
        b"*3\r\n$7\r\nmessage\r\n$21\r\n__keyspace@0__:user:1\r\n$3\r\ndel\r\n",
        // The background sweep reclaims the expired key, though nobody reads it again.
        b"*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:expired\r\n$5\r\nbrief\r\n",
    ]
    .concat();
    sub.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sub.read_exact(expected.len())),
        String::from_utf8_lossy(&expected)
    );
    admin.roundtrip(
        b"CONFIG SET notify-keyspace-events Q\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n",
    );
}

#[test]
fn keyspace_notifications_can_be_limited_to_key_pools() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.toml");
    std::fs::write(
        &path,
        "[resp]\nnotify_keyspace_events = \"E$\"\nnotify_key_prefixes = [\"sess:\"]\n",
    )
    .unwrap();
    let server = TestServer::start_with_resp(&["--config", path.to_str().unwrap()]);
    let mut sub = server.connect_resp();
    sub.roundtrip(
        b"SUBSCRIBE __keyevent@0__:set\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$18\r\n__keyevent@0__:set\r\n:1\r\n",
    );
    let mut mc = server.connect();
    mc.roundtrip(b"set other 0 0 1\r\nx\r\n", b"STORED\r\n");
    mc.roundtrip(b"set sess:1 0 0 1\r\nx\r\n", b"STORED\r\n");
    // Only the pool's key arrives: had `other` notified, it would come first.
    assert_eq!(
        sub.read_until(b"sess:1\r\n"),
        b"*3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$6\r\nsess:1\r\n"
    );
}

#[test]
fn a_connections_own_messages_follow_the_reply_of_the_command_that_published_them() {
    let server = TestServer::start_with_resp(&[]);
    let mut s = server.connect_resp();
    s.send(b"HELLO 3\r\n");
    s.read_until(b"*0\r\n");
    s.roundtrip(b"CONFIG SET notify-keyspace-events E$\r\n", b"+OK\r\n");
    s.roundtrip(
        b"SUBSCRIBE ch\r\n",
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    );
    s.roundtrip(
        b"PSUBSCRIBE __keyevent@0__:*\r\n",
        b">3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n:2\r\n",
    );
    // Pipelined, then the client half-closes: nothing published to itself may be lost, and
    // each push follows the reply of its command, as in Redis 7.2 (an EXEC's after its array).
    s.send(b"SET k v\r\nPUBLISH ch hi\r\nMULTI\r\nPUBLISH ch tx\r\nEXEC\r\nPING\r\n");
    s.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.stream.read_to_end(&mut rest).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "+OK\r\n>4\r\n$8\r\npmessage\r\n$16\r\n__keyevent@0__:*\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n\
         :1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n\
         +OK\r\n+QUEUED\r\n*1\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\ntx\r\n\
         +PONG\r\n"
    );
}

/// Reads `count` `pmessage` frames and returns them as `event:key` (the event from a
/// `__keyevent@0__:<event>` channel, the key from the payload).
fn read_key_events(conn: &mut Conn, count: usize, deadline: Instant) -> Vec<String> {
    let (mut buf, mut pos, mut events) = (Vec::new(), 0, Vec::new());
    let mut chunk = vec![0u8; 64 * 1024];
    while events.len() < count {
        assert!(Instant::now() < deadline, "only {events:?} arrived");
        let n = conn.stream.read(&mut chunk).expect("read events");
        assert!(n > 0, "subscriber disconnected after {events:?}");
        buf.extend_from_slice(&chunk[..n]);
        while let Some((used, parts)) = parse_array(&buf[pos..]) {
            pos += used;
            let channel = String::from_utf8_lossy(&parts[2]).into_owned();
            let event = channel.trim_start_matches("__keyevent@0__:");
            events.push(format!("{event}:{}", String::from_utf8_lossy(&parts[3])));
        }
    }
    events
}

/// Each command's keyspace events, with the names and in the order redis-server 7.0.15
/// published them for the same commands (`notify-keyspace-events KEA`, `PSUBSCRIBE
/// __keyevent@0__:*`): command-specific names, none for a write that changed nothing, and
/// `del` after the event that emptied a collection.
#[test]
fn keyspace_events_are_named_by_the_command_as_redis_names_them() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut admin = server.connect_resp();
    admin.roundtrip(b"CONFIG SET notify-keyspace-events KEA\r\n", b"+OK\r\n");
    let mut sub = server.connect_resp();
    sub.roundtrip(
        b"PSUBSCRIBE __keyevent@0__:*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n:1\r\n",
    );
    let mut r = server.redis();
    let cases: &[(&[&str], &str)] = &[
        (&["SET s v", "SET s2 v EX 100", "SETEX s3 100 v", "SET s4 v KEEPTTL", "APPEND s x", "SETRANGE s 1 y", "INCR n", "INCRBY n 3", "DECR n", "DECRBY n 2", "INCRBYFLOAT f 1.5", "EXPIRE s 100", "PERSIST s", "PERSIST s", "EXPIRE s -1", "GETSET s2 w", "GETDEL s2", "GETEX s3 PERSIST", "GETEX s3 EX 100", "MSET a 1 b 2", "SETNX a 1", "SETNX c 1", "DEL a b c", "RENAME s3 s5", "COPY s5 s6", "COPY s5 s6 REPLACE"],
         "set:s set:s2 expire:s2 set:s3 expire:s3 set:s4 append:s setrange:s incrby:n incrby:n incrby:n incrby:n incrbyfloat:f expire:s persist:s del:s set:s2 del:s2 persist:s3 expire:s3 set:a set:b set:c del:a del:b del:c rename_from:s3 rename_to:s5 copy_to:s6 copy_to:s6"),
        (&["RPUSH l a b c d", "LPUSH l z", "LPUSHX l y", "RPUSHX nol y", "LPOP l", "RPOP l 2", "LSET l 0 q", "LINSERT l BEFORE q w", "LINSERT l BEFORE nothere w", "LREM l 0 w", "LREM l 0 nothere", "LTRIM l 0 0", "RPUSH l3 a b", "LMOVE l3 l3 LEFT RIGHT", "LMPOP 1 l3 RIGHT COUNT 5", "RPUSH l4 a", "BLPOP l4 0"],
         "rpush:l lpush:l lpush:l lpop:l rpop:l lset:l linsert:l lrem:l ltrim:l rpush:l3 rpush:l3 lpop:l3 rpop:l3 del:l3 rpush:l4 lpop:l4 del:l4"),
        (&["SADD s a b", "SADD s a", "SREM s x", "SREM s a", "SPOP s", "SADD s1 a b c", "SADD s2 b c d", "SINTERSTORE d s1 s2", "SUNIONSTORE d s1 s2", "SDIFFSTORE d s1 s1", "SMOVE s1 s2 a", "SMOVE s1 s2 zz", "SPOP s2 10", "HSET h f v", "HSET h f v", "HMSET h g w", "HSETNX h f x", "HSETNX h n x", "HDEL h zz", "HDEL h f g n", "HINCRBY h2 f 1", "HINCRBYFLOAT h2 f 1.5"],
         "sadd:s srem:s spop:s del:s sadd:s1 sadd:s2 sinterstore:d sunionstore:d del:d srem:s1 sadd:s2 spop:s2 del:s2 hset:h hset:h hset:h hset:h hdel:h del:h hincrby:h2 hincrbyfloat:h2"),
        (&["ZADD z 1 a 2 b", "ZADD z 1 a", "ZADD z CH 1 a", "ZADD z INCR 1 a", "ZINCRBY z 1 b", "ZREM z x", "ZREM z a", "ZADD z 1 a 3 c 4 d 5 e", "ZREMRANGEBYSCORE z 100 200", "ZREMRANGEBYSCORE z 1 1", "ZREMRANGEBYRANK z 0 0", "ZREMRANGEBYLEX z - +", "ZADD z 1 a 2 b 3 c", "ZPOPMIN z", "ZPOPMAX z 5", "ZADD z1 1 a", "ZADD z2 1 b", "ZUNIONSTORE d 2 z1 z2", "ZINTERSTORE d 2 z1 z2", "ZDIFFSTORE d 1 z1", "ZRANGESTORE d2 z1 0 -1", "ZMPOP 1 z1 MIN", "BZPOPMAX z2 0"],
         "zadd:z zincr:z zincr:z zrem:z zadd:z zremrangebyscore:z zremrangebyrank:z zremrangebylex:z del:z zadd:z zpopmin:z zpopmax:z del:z zadd:z1 zadd:z2 zunionstore:d del:d zdiffstore:d zrangestore:d2 zpopmin:z1 del:z1 zpopmax:z2 del:z2"),
        (&["XADD x 1-1 f v", "XADD x MAXLEN 1 2-1 f v", "XADD x 3-1 f v", "XADD nox NOMKSTREAM * f v", "XDEL x 99-1", "XDEL x 3-1", "XTRIM x MAXLEN 5", "XTRIM x MAXLEN 0", "XSETID x 5-0", "XGROUP CREATE x g $", "XGROUP CREATE y g $ MKSTREAM", "XGROUP SETID x g 0", "XGROUP CREATECONSUMER x g c1", "XGROUP CREATECONSUMER x g c1", "XADD x 6-1 f v", "XREADGROUP GROUP g c2 COUNT 1 STREAMS x >", "XREADGROUP GROUP g c2 STREAMS x >", "XCLAIM x g c3 0 6-1", "XACK x g 6-1", "XAUTOCLAIM x g c4 0 0", "XGROUP DELCONSUMER x g c1", "XGROUP DELCONSUMER x g nosuch", "XGROUP DESTROY x g", "DEL x y"],
         "xadd:x xadd:x xtrim:x xadd:x xdel:x xtrim:x xsetid:x xgroup-create:x xgroup-create:y xgroup-setid:x xgroup-createconsumer:x xadd:x xgroup-createconsumer:x xgroup-createconsumer:x xgroup-delconsumer:x xgroup-destroy:x del:x del:y"),
    ];
    for (commands, expected) in cases {
        let _: () = redis::cmd("FLUSHALL").query(&mut r).unwrap();
        for line in commands.iter() {
            let mut cmd = redis::Cmd::new();
            for word in line.split(' ') {
                cmd.arg(word);
            }
            let _: redis::Value = cmd.query(&mut r).unwrap_or(redis::Value::Nil);
        }
        let expected: Vec<&str> = expected.split(' ').collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(
            read_key_events(&mut sub, expected.len(), deadline),
            expected
        );
    }
}

/// `n` events (notify-keyspace-events `En`): one `new` per key a command adds, none for a key
/// it changes, as redis-server 7.0.15 published them for the same commands (RENAME's and
/// COPY's destinations are new keys, MSET names only the keys that were absent); a memcached
/// `set` of an absent key is new too.
#[test]
fn new_key_events_name_each_key_a_command_adds() {
    let server = TestServer::start_with_resp(&["-t", "2"]);
    let mut admin = server.connect_resp();
    admin.roundtrip(b"CONFIG SET notify-keyspace-events En\r\n", b"+OK\r\n");
    let mut sub = server.connect_resp();
    sub.roundtrip(
        b"PSUBSCRIBE __keyevent@0__:*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n:1\r\n",
    );
    let mut r = server.redis();
    for line in [
        "SET foo bar",
        "SET foo baz",
        "SET bar bar",
        "HSET h f v",
        "HSET h g v",
        "RPUSH l a",
        "INCR n",
        "INCR n",
        "MSET a 1 foo 2",
        "RENAME a a2",
        "COPY a2 a3",
        "SADD s x",
        "ZADD z 1 m",
        "XADD x 1-1 f v",
        "SETNX foo 1",
        "APPEND ap x",
        "DEL foo",
        "SET foo again",
        "LPUSH l b",
        "EXPIRE bar 100",
    ] {
        let mut cmd = redis::Cmd::new();
        for word in line.split(' ') {
            cmd.arg(word);
        }
        let _: redis::Value = cmd.query(&mut r).unwrap();
    }
    let mut mc = server.connect();
    mc.roundtrip(b"set mc 0 0 1\r\nv\r\n", b"STORED\r\n");
    mc.roundtrip(b"set mc 0 0 1\r\nw\r\n", b"STORED\r\n");
    let expected = "new:foo new:bar new:h new:l new:n new:a new:a2 new:a3 new:s new:z new:x \
                    new:ap new:foo new:mc";
    let expected: Vec<&str> = expected.split_whitespace().collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    assert_eq!(
        read_key_events(&mut sub, expected.len(), deadline),
        expected
    );
    // Nothing after: the second `set mc` changed a key that was there.
    let _: () = redis::cmd("SET")
        .arg("last")
        .arg("1")
        .query(&mut r)
        .unwrap();
    assert_eq!(
        read_key_events(&mut sub, 1, Instant::now() + Duration::from_secs(10)),
        ["new:last"]
    );
}
