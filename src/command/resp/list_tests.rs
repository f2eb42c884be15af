//! List commands against a small in-process store: exact reply bytes in RESP2 and RESP3.
//! Every expected reply (errors included) was first read from redis-server 7.0.15 with the
//! same commands (FLUSHALL, then the lines; HELLO 3 first for RESP3).

use super::exec_tests::{both, Harness};

/// Runs `lines` on fresh stores in both protocol versions and checks both transcripts.
fn check(lines: &[&str], resp2: &str, resp3: &str) {
    let (two, three) = both(lines);
    assert_eq!(two, resp2, "RESP2 {lines:?}");
    assert_eq!(three, resp3, "RESP3 {lines:?}");
}

#[test]
fn push_llen_lrange_type() {
    check(&["RPUSH l a b c", "LPUSH l z y", "RPUSHX l d", "LPUSHX nokey a", "RPUSHX nokey a", "LLEN l", "LLEN nokey", "LRANGE l 0 -1", "TYPE l"],
        ":3\r\n:5\r\n:6\r\n:0\r\n:0\r\n:6\r\n:0\r\n*6\r\n$1\r\ny\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n+list\r\n",
        ":3\r\n:5\r\n:6\r\n:0\r\n:0\r\n:6\r\n:0\r\n*6\r\n$1\r\ny\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n+list\r\n");
}

#[test]
fn pop_with_and_without_count() {
    check(&["RPUSH l a b c a b a", "LPOP l 0", "LPOP nokey 0", "LPOP nokey", "RPOP nokey", "LPOP l -1", "LPOP l abc", "LPOP l 2", "RPOP l 2", "RPOP l", "LPOP l 9", "EXISTS l"],
        ":6\r\n*0\r\n*-1\r\n$-1\r\n$-1\r\n-ERR value is out of range, must be positive\r\n-ERR value is out of range, must be positive\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n*1\r\n$1\r\nc\r\n:0\r\n",
        ":6\r\n*0\r\n_\r\n_\r\n_\r\n-ERR value is out of range, must be positive\r\n-ERR value is out of range, must be positive\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n*1\r\n$1\r\nc\r\n:0\r\n");
}

#[test]
fn lrange_and_lindex_indexes() {
    check(&["RPUSH l a b c d e", "LRANGE l -100 100", "LRANGE l 5 2", "LRANGE l -2 -1", "LRANGE l 1 1", "LRANGE l 3 1", "LRANGE l x 1", "LRANGE nokey 0 -1", "LINDEX l -1", "LINDEX l -5", "LINDEX l -6", "LINDEX l 5", "LINDEX l 0", "LINDEX l x", "LINDEX nokey 0"],
        ":5\r\n*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n*0\r\n*2\r\n$1\r\nd\r\n$1\r\ne\r\n*1\r\n$1\r\nb\r\n*0\r\n-ERR value is not an integer or out of range\r\n*0\r\n$1\r\ne\r\n$1\r\na\r\n$-1\r\n$-1\r\n$1\r\na\r\n-ERR value is not an integer or out of range\r\n$-1\r\n",
        ":5\r\n*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n*0\r\n*2\r\n$1\r\nd\r\n$1\r\ne\r\n*1\r\n$1\r\nb\r\n*0\r\n-ERR value is not an integer or out of range\r\n*0\r\n$1\r\ne\r\n$1\r\na\r\n_\r\n_\r\n$1\r\na\r\n-ERR value is not an integer or out of range\r\n_\r\n");
}

#[test]
fn lset_errors_and_negative_index() {
    check(&["RPUSH l a b c", "LSET nokey 0 x", "LSET nokey x x", "LSET l 99 x", "LSET l -4 x", "LSET l x x", "LSET l -1 z", "LSET l 0 y", "LRANGE l 0 -1"],
        ":3\r\n-ERR no such key\r\n-ERR no such key\r\n-ERR index out of range\r\n-ERR index out of range\r\n-ERR value is not an integer or out of range\r\n+OK\r\n+OK\r\n*3\r\n$1\r\ny\r\n$1\r\nb\r\n$1\r\nz\r\n",
        ":3\r\n-ERR no such key\r\n-ERR no such key\r\n-ERR index out of range\r\n-ERR index out of range\r\n-ERR value is not an integer or out of range\r\n+OK\r\n+OK\r\n*3\r\n$1\r\ny\r\n$1\r\nb\r\n$1\r\nz\r\n");
}

#[test]
fn linsert_pivot_present_and_missing() {
    check(&["RPUSH l a b c", "LINSERT l BEFORE zz x", "LINSERT nokey BEFORE a x", "LINSERT l middle a x", "LINSERT l before a x", "LINSERT l AFTER c y", "LINSERT l after b b2", "LRANGE l 0 -1"],
        ":3\r\n:-1\r\n:0\r\n-ERR syntax error\r\n:4\r\n:5\r\n:6\r\n*6\r\n$1\r\nx\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nb2\r\n$1\r\nc\r\n$1\r\ny\r\n",
        ":3\r\n:-1\r\n:0\r\n-ERR syntax error\r\n:4\r\n:5\r\n:6\r\n*6\r\n$1\r\nx\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nb2\r\n$1\r\nc\r\n$1\r\ny\r\n");
}

#[test]
fn lrem_both_directions() {
    check(&["RPUSH l a b a c a b a", "LREM l x a", "LREM l -2 a", "LRANGE l 0 -1", "LREM l 1 a", "LRANGE l 0 -1", "LREM l 0 b", "LREM nokey 0 b", "LREM l 0 zz", "LRANGE l 0 -1", "LREM l 0 a", "LREM l 0 c", "EXISTS l"],
        ":7\r\n-ERR value is not an integer or out of range\r\n:2\r\n*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n$1\r\nb\r\n:1\r\n*4\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n$1\r\nb\r\n:2\r\n:0\r\n:0\r\n*2\r\n$1\r\na\r\n$1\r\nc\r\n:1\r\n:1\r\n:0\r\n",
        ":7\r\n-ERR value is not an integer or out of range\r\n:2\r\n*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n$1\r\nb\r\n:1\r\n*4\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nc\r\n$1\r\nb\r\n:2\r\n:0\r\n:0\r\n*2\r\n$1\r\na\r\n$1\r\nc\r\n:1\r\n:1\r\n:0\r\n");
}

#[test]
fn ltrim_clamps_and_deletes_empty() {
    check(&["RPUSH l a b c d e", "LTRIM l x 1", "LTRIM nokey 0 1", "LTRIM l 1 -2", "LRANGE l 0 -1", "LTRIM l -100 100", "LRANGE l 0 -1", "LTRIM l 5 3", "EXISTS l"],
        ":5\r\n-ERR value is not an integer or out of range\r\n+OK\r\n+OK\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n+OK\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n+OK\r\n:0\r\n",
        ":5\r\n-ERR value is not an integer or out of range\r\n+OK\r\n+OK\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n+OK\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n+OK\r\n:0\r\n");
}

#[test]
fn lpos_rank_count_maxlen() {
    check(&["RPUSH l a b c a b a", "LPOS l a", "LPOS l a RANK 0", "LPOS l a RANK -1", "LPOS l a RANK 2", "LPOS l a RANK -2 COUNT 2", "LPOS l a COUNT 0", "LPOS l a COUNT -1", "LPOS l a MAXLEN -1", "LPOS l a COUNT x", "LPOS l a RANK x", "LPOS l a RANK 2 COUNT 0 MAXLEN 3", "LPOS l a RANK -1 COUNT 0 MAXLEN 2", "LPOS l a foo", "LPOS l a RANK", "LPOS nokey a COUNT 0", "LPOS nokey a", "LPOS l zz", "LPOS l zz COUNT 0", "LPOS l a MAXLEN 0", "LPOS l a RANK 9 COUNT 0"],
        ":6\r\n:0\r\n-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n:5\r\n:3\r\n*2\r\n:3\r\n:0\r\n*3\r\n:0\r\n:3\r\n:5\r\n-ERR COUNT can't be negative\r\n-ERR MAXLEN can't be negative\r\n-ERR COUNT can't be negative\r\n-ERR value is not an integer or out of range\r\n*0\r\n*1\r\n:5\r\n-ERR syntax error\r\n-ERR syntax error\r\n*0\r\n$-1\r\n$-1\r\n*0\r\n:0\r\n*0\r\n",
        ":6\r\n:0\r\n-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n:5\r\n:3\r\n*2\r\n:3\r\n:0\r\n*3\r\n:0\r\n:3\r\n:5\r\n-ERR COUNT can't be negative\r\n-ERR MAXLEN can't be negative\r\n-ERR COUNT can't be negative\r\n-ERR value is not an integer or out of range\r\n*0\r\n*1\r\n:5\r\n-ERR syntax error\r\n-ERR syntax error\r\n*0\r\n_\r\n_\r\n*0\r\n:0\r\n*0\r\n");
}

#[test]
fn lmove_and_rpoplpush() {
    check(&["RPUSH l a b c", "LMOVE l l LEFT RIGHT", "LRANGE l 0 -1", "LMOVE l l foo RIGHT", "LMOVE l m RIGHT LEFT", "LMOVE l m left right", "LRANGE m 0 -1", "RPOPLPUSH l m", "RPOPLPUSH l m", "LRANGE m 0 -1", "EXISTS l", "SET s v", "RPOPLPUSH m s", "LMOVE s m LEFT LEFT", "LMOVE nokey s LEFT LEFT", "LLEN m"],
        ":3\r\n$1\r\na\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n-ERR syntax error\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$-1\r\n*3\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nb\r\n:0\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$-1\r\n:3\r\n",
        ":3\r\n$1\r\na\r\n*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n-ERR syntax error\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n_\r\n*3\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nb\r\n:0\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n_\r\n:3\r\n");
}

#[test]
fn lmpop_arguments_and_keys() {
    check(&["RPUSH l a b c d", "RPUSH m x", "LMPOP 0 l LEFT", "LMPOP -1 l LEFT", "LMPOP x l LEFT", "LMPOP 1 l middle", "LMPOP 2 l LEFT", "LMPOP 1 l LEFT COUNT 0", "LMPOP 1 l LEFT COUNT x", "LMPOP 1 l LEFT COUNT 2 COUNT 3", "LMPOP 1 l LEFT COUNT", "LMPOP 1 l LEFT foo", "LMPOP 1 nokey LEFT", "LMPOP 2 nokey l LEFT COUNT 2", "LMPOP 2 l m RIGHT COUNT 10", "LMPOP 2 l m RIGHT COUNT 10", "LMPOP 2 l m RIGHT COUNT 10"],
        ":4\r\n:1\r\n-ERR numkeys should be greater than 0\r\n-ERR numkeys should be greater than 0\r\n-ERR numkeys should be greater than 0\r\n-ERR syntax error\r\n-ERR syntax error\r\n-ERR count should be greater than 0\r\n-ERR count should be greater than 0\r\n-ERR syntax error\r\n-ERR syntax error\r\n-ERR syntax error\r\n*-1\r\n*2\r\n$1\r\nl\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\nl\r\n*2\r\n$1\r\nd\r\n$1\r\nc\r\n*2\r\n$1\r\nm\r\n*1\r\n$1\r\nx\r\n*-1\r\n",
        ":4\r\n:1\r\n-ERR numkeys should be greater than 0\r\n-ERR numkeys should be greater than 0\r\n-ERR numkeys should be greater than 0\r\n-ERR syntax error\r\n-ERR syntax error\r\n-ERR count should be greater than 0\r\n-ERR count should be greater than 0\r\n-ERR syntax error\r\n-ERR syntax error\r\n-ERR syntax error\r\n_\r\n*2\r\n$1\r\nl\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*2\r\n$1\r\nl\r\n*2\r\n$1\r\nd\r\n$1\r\nc\r\n*2\r\n$1\r\nm\r\n*1\r\n$1\r\nx\r\n_\r\n");
}

#[test]
fn wrongtype_across_types() {
    check(&["SET s v", "LPUSH s a", "RPUSH s a", "LPUSHX s a", "LPOP s", "LLEN s", "LRANGE s 0 1", "LINDEX s 0", "LSET s 0 a", "LINSERT s BEFORE a b", "LREM s 0 a", "LTRIM s 0 1", "LPOS s a", "LMPOP 2 nokey s LEFT", "HSET h f v", "LPUSH h a", "RPUSH l a", "HGET l f", "GET l"],
        "+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        "+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

/// Redis 7.0 answers `quicklist` for every list; like Redis 7.2 a list in one packed node is
/// a `listpack` and a longer one a `quicklist`.
#[test]
fn object_encoding_follows_the_representation() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&["RPUSH l a b", "OBJECT ENCODING l"]),
        ":2\r\n$8\r\nlistpack\r\n"
    );
    let big = "x".repeat(5000);
    assert_eq!(
        h.run(&[&format!("RPUSH l {big} {big}"), "OBJECT ENCODING l"]),
        ":4\r\n$9\r\nquicklist\r\n"
    );
}

#[test]
fn multi_exec_runs_list_commands_atomically() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(&[
            "MULTI",
            "RPUSH q a b",
            "LMOVE q q LEFT RIGHT",
            "LRANGE q 0 -1",
            "EXEC"
        ]),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n\
         *3\r\n:2\r\n$1\r\na\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n"
    );
}

#[test]
fn blocking_pops_take_at_once_and_check_arguments() {
    check(&["RPUSH a 1 2", "RPUSH b x", "BLPOP nokey a b 0", "BRPOP b a 0", "BLPOP a x", "BLPOP a -1", "BLPOP a inf", "BLPOP a 1e400", "BLMOVE a b LEFT foo 0", "BLMOVE a b LEFT LEFT x", "BLMOVE a b RIGHT LEFT 0", "BRPOPLPUSH b a 0", "LRANGE a 0 -1", "BLMPOP x 1 a LEFT", "BLMPOP 0 0 a LEFT", "BLMPOP 0 1 a LEFT COUNT 0", "BLMPOP 0 2 nokey a RIGHT COUNT 5", "SET s v", "BLPOP s 0", "BLMOVE s a LEFT LEFT 0", "BLMPOP 0 1 s LEFT"],
        ":2\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\nx\r\n-ERR timeout is not a float or out of range\r\n-ERR timeout is negative\r\n-ERR timeout is negative\r\n-ERR timeout is negative\r\n-ERR syntax error\r\n-ERR timeout is not a float or out of range\r\n$1\r\n2\r\n$1\r\n2\r\n*1\r\n$1\r\n2\r\n-ERR timeout is not a float or out of range\r\n-ERR numkeys should be greater than 0\r\n-ERR count should be greater than 0\r\n*2\r\n$1\r\na\r\n*1\r\n$1\r\n2\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ":2\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\nx\r\n-ERR timeout is not a float or out of range\r\n-ERR timeout is negative\r\n-ERR timeout is negative\r\n-ERR timeout is negative\r\n-ERR syntax error\r\n-ERR timeout is not a float or out of range\r\n$1\r\n2\r\n$1\r\n2\r\n*1\r\n$1\r\n2\r\n-ERR timeout is not a float or out of range\r\n-ERR numkeys should be greater than 0\r\n-ERR count should be greater than 0\r\n*2\r\n$1\r\na\r\n*1\r\n$1\r\n2\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

#[test]
fn blocking_pops_inside_multi_answer_at_once() {
    check(&["MULTI", "BLPOP nothing 0", "BRPOP nothing 1", "BLMOVE a b LEFT LEFT 0", "BRPOPLPUSH a b 0", "BLMPOP 0 1 a LEFT", "RPUSH a z", "BLPOP a 0", "EXEC"],
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*7\r\n*-1\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\nz\r\n",
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*7\r\n_\r\n_\r\n_\r\n_\r\n_\r\n:1\r\n*2\r\n$1\r\na\r\n$1\r\nz\r\n");
}

#[test]
fn a_blocking_pop_with_nothing_to_take_parks_the_client() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["BLPOP q 0"]), "");
    assert!(h.session.parked.is_some());
    assert_eq!(h.shared.blocked.parked(), 1);
}
