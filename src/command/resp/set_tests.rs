//! Set commands against a small in-process store: exact reply bytes in RESP2 and RESP3.
//! Every expected reply (errors included) was first read from redis-server 7.0.15 with the
//! same commands (FLUSHALL, then the lines; HELLO 3 first for RESP3). Random picks are
//! checked where they cannot vary: one-member sets, or counts covering a whole intset (whose
//! order is sorted in both servers).

use super::exec_tests::{both, Harness};

fn check(lines: &[&str], resp2: &str, resp3: &str) {
    let (two, three) = both(lines);
    assert_eq!(two, resp2, "RESP2 {lines:?}");
    assert_eq!(three, resp3, "RESP3 {lines:?}");
}

#[test]
fn sadd_srem_scard_membership() {
    check(&["SADD s 3 1 2 a", "SADD s a b", "SCARD s", "SCARD nokey", "SISMEMBER s a", "SISMEMBER s zz", "SISMEMBER nokey a", "SMISMEMBER s a zz 1", "SMISMEMBER nokey a", "SREM s a zz", "SREM nokey a", "SREM s b", "TYPE s"],
        ":4\r\n:1\r\n:5\r\n:0\r\n:1\r\n:0\r\n:0\r\n*3\r\n:1\r\n:0\r\n:1\r\n*1\r\n:0\r\n:1\r\n:0\r\n:1\r\n+set\r\n",
        ":4\r\n:1\r\n:5\r\n:0\r\n:1\r\n:0\r\n:0\r\n*3\r\n:1\r\n:0\r\n:1\r\n*1\r\n:0\r\n:1\r\n:0\r\n:1\r\n+set\r\n");
}

#[test]
fn intset_members_sorted_and_encodings() {
    check(&["SADD s 5 -3 10 0", "SMEMBERS s", "SMEMBERS nokey", "OBJECT ENCODING s", "SADD s 007", "OBJECT ENCODING s", "SMEMBERS nokey", "SREM s 5 -3 10 0 007", "EXISTS s"],
        ":4\r\n*4\r\n$2\r\n-3\r\n$1\r\n0\r\n$1\r\n5\r\n$2\r\n10\r\n*0\r\n$6\r\nintset\r\n:1\r\n$9\r\nhashtable\r\n*0\r\n:5\r\n:0\r\n",
        ":4\r\n~4\r\n$2\r\n-3\r\n$1\r\n0\r\n$1\r\n5\r\n$2\r\n10\r\n~0\r\n$6\r\nintset\r\n:1\r\n$9\r\nhashtable\r\n~0\r\n:5\r\n:0\r\n");
}

#[test]
fn spop_counts() {
    check(&["SADD s 3 1 2", "SPOP nokey", "SPOP nokey 2", "SPOP s -1", "SPOP s x", "SPOP s 0", "SPOP s 1 2", "SPOP s 10", "EXISTS s", "SADD one only", "SPOP one", "SPOP one"],
        ":3\r\n$-1\r\n*0\r\n-ERR value is out of range, must be positive\r\n-ERR value is out of range, must be positive\r\n*0\r\n-ERR syntax error\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n:0\r\n:1\r\n$4\r\nonly\r\n$-1\r\n",
        ":3\r\n_\r\n~0\r\n-ERR value is out of range, must be positive\r\n-ERR value is out of range, must be positive\r\n~0\r\n-ERR syntax error\r\n~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n:0\r\n:1\r\n$4\r\nonly\r\n_\r\n");
}

#[test]
fn srandmember_counts() {
    check(&["SADD s 1 2 3", "SRANDMEMBER nokey", "SRANDMEMBER nokey 3", "SRANDMEMBER nokey -3", "SRANDMEMBER s 0", "SRANDMEMBER s x", "SRANDMEMBER s -9223372036854775808", "SRANDMEMBER s 1 2", "SRANDMEMBER s 10", "SADD one only", "SRANDMEMBER one -3", "SRANDMEMBER one"],
        ":3\r\n$-1\r\n*0\r\n*0\r\n*0\r\n-ERR value is not an integer or out of range\r\n-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n-ERR syntax error\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n:1\r\n*3\r\n$4\r\nonly\r\n$4\r\nonly\r\n$4\r\nonly\r\n$4\r\nonly\r\n",
        ":3\r\n_\r\n*0\r\n*0\r\n*0\r\n-ERR value is not an integer or out of range\r\n-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n-ERR syntax error\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n:1\r\n*3\r\n$4\r\nonly\r\n$4\r\nonly\r\n$4\r\nonly\r\n$4\r\nonly\r\n");
}

#[test]
fn smove_between_sets_and_types() {
    check(&["SADD s 1 2 3", "SMOVE s t 1", "SMOVE s t zz", "SMOVE nokey t 1", "SMOVE s s 2", "SMEMBERS t", "SMEMBERS s", "SET str v", "SADD str a", "SMOVE s str 2", "SMOVE str s 2", "SMOVE s str 99", "SMOVE nokey str 2", "SMOVE s t 2", "SMOVE s t 3", "EXISTS s"],
        ":3\r\n:1\r\n:0\r\n:0\r\n:1\r\n*1\r\n$1\r\n1\r\n*2\r\n$1\r\n2\r\n$1\r\n3\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:0\r\n:1\r\n:1\r\n:0\r\n",
        ":3\r\n:1\r\n:0\r\n:0\r\n:1\r\n~1\r\n$1\r\n1\r\n~2\r\n$1\r\n2\r\n$1\r\n3\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:0\r\n:1\r\n:1\r\n:0\r\n");
}

#[test]
fn algebra_and_store_forms() {
    check(&["SADD a 1 2 3 4", "SADD b 3 4 5", "SADD c 4 6", "SINTER a b", "SINTER a b c", "SINTER a nokey", "SUNION a b c", "SUNION nokey", "SDIFF a b", "SDIFF a nokey", "SDIFF nokey a", "SINTERSTORE d a b", "SMEMBERS d", "SUNIONSTORE d a c", "SMEMBERS d", "SDIFFSTORE d a a", "EXISTS d", "SET str v", "SINTER a str", "SINTER nokey str", "SUNION a str", "SDIFF a str", "SUNIONSTORE str a", "TYPE str", "SINTERCARD 2 a b", "SINTERCARD 3 a b c LIMIT 0", "SINTERCARD 2 a b LIMIT 1", "SINTERCARD 0 a", "SINTERCARD 1 a LIMIT -1", "SINTERCARD 2 a", "SINTERCARD 1 a LIMIT x", "SINTERCARD 1 a foo 1", "SINTERCARD x a", "SINTERCARD 2 a str"],
        ":4\r\n:3\r\n:2\r\n*2\r\n$1\r\n3\r\n$1\r\n4\r\n*1\r\n$1\r\n4\r\n*0\r\n*6\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n*0\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n*0\r\n:2\r\n*2\r\n$1\r\n3\r\n$1\r\n4\r\n:5\r\n*5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n6\r\n:0\r\n:0\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:4\r\n+set\r\n:2\r\n:1\r\n:1\r\n-ERR numkeys should be greater than 0\r\n-ERR LIMIT can't be negative\r\n-ERR Number of keys can't be greater than number of args\r\n-ERR LIMIT can't be negative\r\n-ERR syntax error\r\n-ERR numkeys should be greater than 0\r\n:4\r\n",
        ":4\r\n:3\r\n:2\r\n~2\r\n$1\r\n3\r\n$1\r\n4\r\n~1\r\n$1\r\n4\r\n~0\r\n~6\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n~0\r\n~2\r\n$1\r\n1\r\n$1\r\n2\r\n~4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n~0\r\n:2\r\n~2\r\n$1\r\n3\r\n$1\r\n4\r\n:5\r\n~5\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n6\r\n:0\r\n:0\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:4\r\n+set\r\n:2\r\n:1\r\n:1\r\n-ERR numkeys should be greater than 0\r\n-ERR LIMIT can't be negative\r\n-ERR Number of keys can't be greater than number of args\r\n-ERR LIMIT can't be negative\r\n-ERR syntax error\r\n-ERR numkeys should be greater than 0\r\n:4\r\n");
}

#[test]
fn sscan_arguments() {
    check(&["SADD s 1 2 3", "SSCAN s 0", "SSCAN s 0 MATCH 2", "SSCAN s x", "SSCAN nokey 0", "SSCAN s 0 COUNT 0", "SET str v", "SSCAN str 0"],
        ":3\r\n*2\r\n$1\r\n0\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n*2\r\n$1\r\n0\r\n*1\r\n$1\r\n2\r\n-ERR invalid cursor\r\n*2\r\n$1\r\n0\r\n*0\r\n-ERR syntax error\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ":3\r\n*2\r\n$1\r\n0\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n*2\r\n$1\r\n0\r\n*1\r\n$1\r\n2\r\n-ERR invalid cursor\r\n*2\r\n$1\r\n0\r\n*0\r\n-ERR syntax error\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

/// A negative SRANDMEMBER count whose reply cannot fit the output limit is refused before any
/// pick is drawn (Redis would build it whole), as HRANDFIELD's is.
#[test]
fn srandmember_repeats_are_bounded_by_the_output_limit() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&["SADD s a", "SRANDMEMBER s -9223372036854775807"]),
        ":1\r\n-ERR value is out of range\r\n"
    );
    let reply = h.run(&["SRANDMEMBER s -3"]);
    assert_eq!(reply, "*3\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n");
}

#[test]
fn spop_with_a_count_takes_distinct_members_and_removes_them() {
    let mut h = Harness::new();
    h.run(&["SADD s a b c d e f"]);
    let reply = h.run(&["SPOP s 4"]);
    let members: Vec<&str> = reply
        .split("\r\n")
        .skip(2)
        .step_by(2)
        .filter(|m| !m.is_empty())
        .collect();
    assert!(reply.starts_with("*4\r\n"), "{reply}");
    let mut distinct = members.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{reply}");
    assert_eq!(h.run(&["SCARD s"]), ":2\r\n");
    for member in members {
        assert_eq!(h.run(&[&format!("SISMEMBER s {member}")]), ":0\r\n");
    }
}

/// SMOVE of a member the destination already holds leaves the destination untouched: a
/// WATCH on it does not abort (Redis's "SMOVE only notify dstset when the addition is
/// successful").
#[test]
fn smove_onto_a_member_already_there_does_not_touch_the_destination() {
    let mut h = Harness::new();
    h.run(&[
        "SADD src a b",
        "SADD dst a",
        "WATCH dst",
        "MULTI",
        "SADD dst c",
    ]);
    // Another client (a fresh session on the same store) moves `a`.
    let watcher = std::mem::replace(&mut h.session, Harness::new().session);
    assert_eq!(h.run(&["SMOVE src dst a"]), ":1\r\n");
    h.session = watcher;
    assert_eq!(h.run(&["EXEC", "SCARD dst"]), "*1\r\n:1\r\n:2\r\n");
}
