//! The meta protocol end to end; expected bytes were taken from memcached 1.6.18's answers.

mod common;

use common::TestServer;

#[test]
fn meta_get_returns_flags_in_request_order() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"set a 7 0 2\r\nhi\r\n", b"STORED\r\n");
    c.roundtrip(b"mg a s v t f\r\n", b"VA 2 s2 t-1 f7\r\nhi\r\n");
    c.roundtrip(b"mg a k O123 s\r\n", b"HD ka O123 s2\r\n");
    c.roundtrip(b"mg a h l\r\n", b"HD h1 l0\r\n");
    c.roundtrip(b"mg missing v\r\n", b"EN\r\n");
    c.roundtrip(b"mg missing v q\r\nmn\r\n", b"MN\r\n");
    c.roundtrip(b"mg a q\r\n", b"HD\r\n");
}

#[test]
fn meta_set_modes_cas_and_quiet() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"ms k 2 T60 F5\r\nhi\r\n", b"HD\r\n");
    c.roundtrip(b"mg k v f t\r\n", b"VA 2 f5 t60\r\nhi\r\n");
    c.roundtrip(b"ms k 1 ME\r\nx\r\n", b"NS\r\n");
    c.roundtrip(b"ms k 1 MA\r\n!\r\n", b"HD\r\n");
    c.roundtrip(b"ms k 1 MP\r\n<\r\n", b"HD\r\n");
    c.roundtrip(b"mg k v\r\n", b"VA 4\r\n<hi!\r\n");
    c.roundtrip(b"ms nope 1 MR\r\nx\r\n", b"NS\r\n");
    c.roundtrip(
        b"ms k 1 q\r\n1\r\nms k 1 q C1\r\n2\r\nmn\r\n",
        b"EX\r\nMN\r\n",
    );
    c.send(b"ms k 1 c\r\n3\r\n");
    let line = String::from_utf8(c.read_until(b"\r\n")).unwrap();
    let cas: u64 = line.trim().strip_prefix("HD c").unwrap().parse().unwrap();
    c.roundtrip(format!("ms k 1 C{cas}\r\n4\r\n").as_bytes(), b"HD\r\n");
    c.roundtrip(format!("ms k 1 C{cas}\r\n5\r\n").as_bytes(), b"EX\r\n");
    c.roundtrip(b"ms k 1 E999\r\n6\r\n", b"HD\r\n");
    c.roundtrip(b"mg k c v\r\n", b"VA 1 c999\r\n6\r\n");
}

#[test]
fn meta_delete_and_invalidation_hand_out_one_win() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"set x 0 0 2\r\n10\r\n", b"STORED\r\n");
    c.roundtrip(b"md x I T30\r\n", b"HD\r\n");
    c.roundtrip(b"mg x v t\r\n", b"VA 2 t30 X W\r\n10\r\n");
    c.roundtrip(b"mg x v t\r\n", b"VA 2 t30 Z X\r\n10\r\n");
    c.roundtrip(b"md x q\r\nmd x q\r\nmn\r\n", b"NF\r\nMN\r\n");
    c.roundtrip(b"md x C1\r\n", b"NF\r\n");
}

#[test]
fn meta_set_invalidate_with_stale_cas_keeps_the_ttl() {
    // memcached 1.6.18: `ms I` with a cas below the item's replaces the value, keeps the
    // old TTL, leaves the item stale, and keeps a win token already handed out.
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"ms s 2 T100\r\nv1\r\n", b"HD\r\n");
    c.roundtrip(b"ms s 2 T100\r\nv2\r\n", b"HD\r\n");
    c.roundtrip(b"ms s 2 T1000 I C1\r\nv3\r\n", b"HD\r\n");
    c.roundtrip(b"mg s t v\r\n", b"VA 2 t100 X W\r\nv3\r\n");
    c.roundtrip(b"mg s t v\r\n", b"VA 2 t100 Z X\r\nv3\r\n");
    c.roundtrip(b"ms s 2 T1000 I C1\r\nv4\r\n", b"HD\r\n");
    c.roundtrip(b"mg s t v\r\n", b"VA 2 t100 Z X\r\nv4\r\n");
}

#[test]
fn meta_get_vivifies_and_recaches() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"mg nokey s v N30 t\r\n", b"VA 0 s0 t30 W\r\n\r\n");
    c.roundtrip(b"mg nokey s v N30 t\r\n", b"VA 0 s0 t30 Z\r\n\r\n");
    c.roundtrip(b"ms r 1 T10\r\nv\r\n", b"HD\r\n");
    c.roundtrip(b"mg r v R30\r\n", b"VA 1 W\r\nv\r\n");
    c.roundtrip(b"mg r v R30\r\n", b"VA 1 Z\r\nv\r\n");
    c.roundtrip(b"ms forever 1\r\nv\r\n", b"HD\r\n");
    c.roundtrip(b"mg forever v R30\r\n", b"VA 1\r\nv\r\n");
}

#[test]
fn meta_arithmetic() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"ma cnt\r\n", b"NF\r\n");
    c.roundtrip(b"ma cnt N0 J5 v\r\n", b"VA 1\r\n5\r\n");
    c.roundtrip(b"ma cnt v t\r\n", b"VA 1 t-1\r\n6\r\n");
    c.roundtrip(b"ma cnt MD D100 v\r\n", b"VA 1\r\n0\r\n");
    c.roundtrip(b"ma cnt q\r\nma cnt q v\r\nmn\r\n", b"MN\r\n");
    c.roundtrip(b"mg cnt v\r\n", b"VA 1\r\n2\r\n");
    c.roundtrip(b"set s 0 0 1\r\nz\r\n", b"STORED\r\n");
    c.roundtrip(
        b"ma s\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
}

#[test]
fn meta_base64_keys_and_debug() {
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"ms cQ== 1 b\r\nz\r\n", b"HD\r\n");
    c.roundtrip(b"mg q v\r\n", b"VA 1\r\nz\r\n");
    c.roundtrip(b"mg cQ== b k v\r\n", b"VA 1 kcQ== b\r\nz\r\n");
    c.roundtrip(b"mg bm9wZQ== b k\r\n", b"EN kbm9wZQ== b\r\n");
    c.send(b"me q\r\n");
    let line = String::from_utf8(c.read_until(b"\r\n")).unwrap();
    assert!(line.starts_with("ME q exp=-1 la=0 cas="), "{line}");
    assert!(line.contains(" fetch=yes cls=1 size="), "{line}");
    c.roundtrip(b"me nope\r\n", b"EN\r\n");
}

#[test]
fn meta_writes_count_cas_and_delete_stats_as_memcached_does() {
    // memcached 1.6.18 after this exact sequence: cmd_set 4, cas_hits 2, cas_badval 1,
    // cas_misses 0, delete_misses 2 (an `md` refused for its cas counts as a miss).
    let server = TestServer::start(&[]);
    let mut c = server.connect();
    c.roundtrip(b"set k 0 0 1\r\na\r\n", b"STORED\r\n");
    c.roundtrip(b"ms k 1 C999\r\nb\r\n", b"EX\r\n");
    c.send(b"mg k c\r\n");
    let line = String::from_utf8(c.read_until(b"\r\n")).unwrap();
    let cas: u64 = line.trim().strip_prefix("HD c").unwrap().parse().unwrap();
    c.roundtrip(format!("ms k 1 C{cas}\r\nb\r\n").as_bytes(), b"HD\r\n");
    c.roundtrip(format!("ms k 1 C{cas} I\r\nc\r\n").as_bytes(), b"HD\r\n");
    c.roundtrip(b"md k C5\r\n", b"EX\r\n");
    c.roundtrip(b"md nokey\r\n", b"NF\r\n");
    assert_eq!(c.stat("cmd_set"), 4);
    assert_eq!(c.stat("cas_hits"), 2);
    assert_eq!(c.stat("cas_badval"), 1);
    assert_eq!(c.stat("cas_misses"), 0);
    assert_eq!(c.stat("delete_misses"), 2);
    assert_eq!(c.stat("delete_hits"), 0);
}
