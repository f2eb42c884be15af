use super::*;

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn ids(stream: &StreamObject, start: StreamId, end: StreamId, rev: bool) -> Vec<StreamId> {
    stream.range(start, end, rev).map(|e| e.id).collect()
}

fn filled(n: u64) -> StreamObject {
    let mut s = StreamObject::new();
    for i in 1..=n {
        s.add(IdRequest::Exact(id(i, 0)), &["f", "v"], 0).unwrap();
    }
    s
}

#[test]
fn ids_grow_and_auto_ids_follow_the_clock_or_the_last_id() {
    let mut s = StreamObject::new();
    assert_eq!(
        s.add(IdRequest::Auto, &["a", "1"], 100).unwrap(),
        id(100, 0)
    );
    assert_eq!(s.add(IdRequest::Auto, &["a", "1"], 50).unwrap(), id(100, 1));
    assert_eq!(
        s.add(IdRequest::Ms(100), &["a", "1"], 0).unwrap(),
        id(100, 2)
    );
    assert_eq!(
        s.add(IdRequest::Ms(200), &["a", "1"], 0).unwrap(),
        id(200, 0)
    );
    assert_eq!(
        s.add(IdRequest::Exact(id(200, 0)), &["a", "1"], 0),
        Err(StreamError::IdTooSmall)
    );
    assert_eq!(
        s.add(IdRequest::Ms(10), &["a", "1"], 0),
        Err(StreamError::IdTooSmall)
    );
    s.add(IdRequest::Exact(StreamId::MAX), &["a", "1"], 0)
        .unwrap();
    assert_eq!(
        s.add(IdRequest::Auto, &["a", "1"], 0),
        Err(StreamError::Exhausted)
    );
    assert_eq!(s.len(), 5);
    assert_eq!(s.entries_added(), 5);
}

#[test]
fn ranges_cross_nodes_both_ways() {
    let s = filled(350);
    assert!(s.node_count() >= 4, "nodes of 100 entries");
    assert_eq!(
        ids(&s, id(99, 0), id(102, 0), false),
        [id(99, 0), id(100, 0), id(101, 0), id(102, 0)]
    );
    assert_eq!(
        ids(&s, id(99, 0), id(102, 0), true),
        [id(102, 0), id(101, 0), id(100, 0), id(99, 0)]
    );
    assert_eq!(s.range(StreamId::MIN, StreamId::MAX, false).count(), 350);
    assert_eq!(s.range(StreamId::MIN, StreamId::MAX, true).count(), 350);
    assert!(ids(&s, id(400, 0), StreamId::MAX, false).is_empty());
    assert_eq!(
        s.get(id(200, 0)).unwrap().pairs,
        vec![(&b"f"[..], &b"v"[..])]
    );
}

#[test]
fn delete_moves_first_id_and_records_the_largest_deleted() {
    let mut s = filled(5);
    assert!(s.delete(id(1, 0)));
    assert!(!s.delete(id(1, 0)));
    assert!(s.delete(id(3, 0)));
    assert_eq!(
        (s.len(), s.first_id(), s.max_deleted_id()),
        (3, id(2, 0), id(3, 0))
    );
    assert_eq!(
        ids(&s, StreamId::MIN, StreamId::MAX, false),
        [id(2, 0), id(4, 0), id(5, 0)]
    );
}

#[test]
fn exact_trim_is_exact_and_approximate_trim_removes_whole_nodes_only() {
    let mut s = filled(250);
    let exact = Trim {
        to: TrimTo::MaxLen(120),
        approx: false,
        limit: 0,
    };
    assert_eq!(s.trim(exact), 130);
    assert_eq!((s.len(), s.first_id()), (120, id(131, 0)));
    let mut s = filled(250);
    let approx = Trim {
        to: TrimTo::MaxLen(120),
        approx: true,
        limit: 10_000,
    };
    assert_eq!(s.trim(approx), 100);
    assert_eq!(s.len(), 150);
    let mut s = filled(250);
    let min = Trim {
        to: TrimTo::MinId(id(240, 0)),
        approx: false,
        limit: 0,
    };
    assert_eq!(s.trim(min), 239);
    let bytes = s.bytes();
    assert!(bytes < filled(250).bytes(), "trimming returns memory");
}

#[test]
fn a_group_delivers_each_entry_once_and_claims_move_ownership() {
    let mut s = filled(4);
    s.create_group(b"g", Some(StreamId::MIN), None).unwrap();
    assert_eq!(
        s.create_group(b"g", None, None),
        Err(StreamError::BusyGroup)
    );
    assert_eq!(
        s.read_new(b"g", b"a", 2, false, 10).unwrap(),
        [id(1, 0), id(2, 0)]
    );
    assert_eq!(
        s.read_new(b"g", b"b", 0, false, 10).unwrap(),
        [id(3, 0), id(4, 0)]
    );
    assert!(s.read_new(b"g", b"b", 0, false, 10).unwrap().is_empty());
    assert_eq!(s.lag(s.group(b"g").unwrap()), Some(0));
    assert_eq!(s.ack(b"g", &[id(3, 0), id(3, 0), id(9, 0)]), 1);
    let summary = s.group(b"g").unwrap().summary();
    assert_eq!(summary.count, 3);
    assert_eq!(
        summary.per_consumer,
        vec![(b"a".to_vec(), 2), (b"b".to_vec(), 1)]
    );
    // b's entry is idle 100 ms at time 110: a claims it; a's own too young at min idle 200.
    let claim = Claim {
        min_idle_ms: 100,
        ..Claim::default()
    };
    assert_eq!(
        s.claim(b"g", b"a", &[id(4, 0)], claim, None, 110).unwrap(),
        [id(4, 0)]
    );
    assert_eq!(s.group(b"g").unwrap().pel[&id(4, 0)].delivery_count, 2);
    assert!(s.delete(id(1, 0)));
    let (claimed, next, deleted) = s
        .auto_claim(
            b"g",
            b"c",
            AutoClaim {
                start: StreamId::MIN,
                min_idle_ms: 0,
                count: 10,
                just_id: false,
            },
            200,
        )
        .unwrap();
    assert_eq!(
        (claimed, next, deleted),
        (vec![id(2, 0), id(4, 0)], StreamId::MIN, vec![id(1, 0)])
    );
    let g = s.group(b"g").unwrap();
    assert!(g.consumers[&b"a"[..]].pel.is_empty());
    assert_eq!(g.consumers[&b"c"[..]].pel.len(), 2);
    assert_eq!(s.delete_consumer(b"g", b"c"), Ok(2));
    assert!(s.group(b"g").unwrap().pel.is_empty());
}
