//! The replication backlog: the recent records of the stream, each at its byte offset, for
//! the links that ship them and for a replica that comes back asking to continue.
//!
//! Offsets count the bytes of the records' RESP rendering (see [`crate::replication`]):
//! a record starting at offset `s` with RESP length `n` covers the bytes `s+1 ..= s+n`,
//! as Redis numbers them (`master_repl_offset` is the count of bytes so far, and a replica
//! asks `PSYNC <replid> <its offset + 1>`). Bounded by bytes (`repl-backlog-size`, the rich
//! frames held) and by age (`repl-backlog-ttl`): the oldest records go first, never the last.
//!
//! One short mutex append per record (the frame was encoded before, outside the lock); the
//! condition variable wakes the links waiting for more. Never does I/O and never calls the
//! store.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// One record of the stream.
pub struct Record {
    /// The offset before its first byte.
    pub start: u64,
    pub resp_len: u32,
    pub at_ms: u64,
    pub frame: Box<[u8]>,
}

/// What the backlog holds, behind its mutex.
pub struct Inner {
    records: VecDeque<Record>,
    /// Offset after the last record (Redis's `master_repl_offset`).
    end: u64,
    /// Frame bytes held.
    bytes: usize,
    /// Whether it exists yet (Redis creates it when the first replica connects); records
    /// are kept only while it does.
    pub active: bool,
    pub limit_bytes: usize,
    pub ttl_ms: u64,
    /// Ever-growing count of records appended, so a waiting link can tell it has news.
    appended: u64,
    /// Readers waiting on the condition variable: a write wakes them only when there are
    /// some (no futex call per write while every link is busy sending).
    waiting: usize,
}

/// The backlog and the wake-up of its readers.
pub struct Backlog {
    inner: Mutex<Inner>,
    grew: Condvar,
}

/// Where a reader stands relative to what the backlog holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The backlog has every record after this offset.
    Held,
    /// Records after this offset are gone (or it is beyond the end).
    Lost,
}

impl Backlog {
    pub fn new(limit_bytes: usize, ttl_ms: u64) -> Arc<Backlog> {
        Arc::new(Backlog {
            inner: Mutex::new(Inner {
                records: VecDeque::new(),
                end: 0,
                bytes: 0,
                active: false,
                limit_bytes,
                ttl_ms,
                appended: 0,
                waiting: 0,
            }),
            grew: Condvar::new(),
        })
    }

    /// Whether records are being kept.
    pub fn is_active(&self) -> bool {
        self.inner.lock().active
    }

    /// Starts keeping records (a replica is attaching); returns the current end offset.
    pub fn activate(&self) -> u64 {
        let mut inner = self.inner.lock();
        inner.active = true;
        inner.end
    }

    /// Drops every record and restarts the offsets at `end` (a replica that just loaded a
    /// full sync from a primary at that offset).
    pub fn reset(&self, end: u64) {
        let mut inner = self.inner.lock();
        inner.records.clear();
        inner.bytes = 0;
        inner.end = end;
        inner.active = true;
        self.grew.notify_all();
    }

    /// When the last record was appended (unix ms; 0 = never).
    pub fn last_append_ms(&self) -> u64 {
        self.inner.lock().records.back().map_or(0, |r| r.at_ms)
    }

    /// Offset after the last record.
    pub fn end(&self) -> u64 {
        self.inner.lock().end
    }

    /// (first byte held, bytes of offsets held, frame bytes held), for INFO.
    pub fn figures(&self) -> (u64, u64, usize, bool, usize) {
        let inner = self.inner.lock();
        let first = inner.records.front().map_or(inner.end, |r| r.start);
        (
            first + 1,
            inner.end - first,
            inner.bytes,
            inner.active,
            inner.limit_bytes,
        )
    }

    pub fn set_limits(&self, limit_bytes: usize, ttl_ms: u64) {
        let mut inner = self.inner.lock();
        inner.limit_bytes = limit_bytes;
        inner.ttl_ms = ttl_ms;
    }

    /// Appends one record (when active); returns the offset after it.
    pub fn append(&self, frame: &[u8], resp_len: u32, now_ms: u64) -> u64 {
        let mut inner = self.inner.lock();
        if !inner.active {
            return inner.end;
        }
        let start = inner.end;
        inner.end += u64::from(resp_len);
        inner.bytes += frame.len();
        inner.appended += 1;
        inner.records.push_back(Record {
            start,
            resp_len,
            at_ms: now_ms,
            frame: frame.into(),
        });
        // Trim by size, then by age; the newest record always stays.
        while inner.records.len() > 1 {
            let front = &inner.records[0];
            let too_big = inner.bytes > inner.limit_bytes;
            let too_old = inner.ttl_ms > 0 && now_ms.saturating_sub(front.at_ms) > inner.ttl_ms;
            if !(too_big || too_old) {
                break;
            }
            let len = front.frame.len();
            inner.records.pop_front();
            inner.bytes -= len;
        }
        let end = inner.end;
        let wake = inner.waiting > 0;
        drop(inner);
        if wake {
            self.grew.notify_all();
        }
        end
    }

    /// Whether a reader at `offset` can continue from here.
    pub fn position(&self, offset: u64) -> Position {
        let inner = self.inner.lock();
        position(&inner, offset)
    }

    /// Copies the records after `offset` (at most `max_bytes` of frames, at least one)
    /// into `out` through `each`, waiting up to `wait` for one when there is none. Returns
    /// the offset after the last one copied, or `Lost` when the records after `offset` are
    /// gone.
    pub fn read_after(
        &self,
        offset: u64,
        wait: Duration,
        max_bytes: usize,
        mut each: impl FnMut(&Record),
    ) -> Result<u64, Position> {
        let mut inner = self.inner.lock();
        if inner.end == offset {
            inner.waiting += 1;
            self.grew.wait_for(&mut inner, wait);
            inner.waiting -= 1;
        }
        if position(&inner, offset) == Position::Lost {
            return Err(Position::Lost);
        }
        let first = inner.records.partition_point(|r| r.start < offset);
        let mut at = offset;
        let mut copied = 0;
        for record in inner.records.iter().skip(first) {
            if copied > 0 && copied + record.frame.len() > max_bytes {
                break;
            }
            each(record);
            copied += record.frame.len();
            at = record.start + u64::from(record.resp_len);
        }
        Ok(at)
    }

    /// Wakes every waiting reader (a link is being stopped).
    pub fn wake_all(&self) {
        self.grew.notify_all();
    }
}

fn position(inner: &Inner, offset: u64) -> Position {
    if offset == inner.end {
        return Position::Held;
    }
    if offset > inner.end {
        return Position::Lost;
    }
    let first = inner.records.partition_point(|r| r.start < offset);
    match inner.records.get(first) {
        Some(record) if record.start == offset => Position::Held,
        _ => Position::Lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_resp_bytes_and_old_records_go_past_the_limit() {
        let backlog = Backlog::new(10, 0);
        assert_eq!(backlog.append(b"abc", 30, 1), 0, "inactive: nothing kept");
        assert_eq!(backlog.activate(), 0);
        assert_eq!(backlog.append(b"abcd", 30, 1), 30);
        assert_eq!(backlog.append(b"abcd", 20, 1), 50);
        assert_eq!(backlog.position(0), Position::Held);
        assert_eq!(backlog.position(30), Position::Held);
        assert_eq!(backlog.position(31), Position::Lost, "mid-record");
        assert_eq!(backlog.position(51), Position::Lost, "beyond the end");
        // 12 bytes > 10: the first record goes.
        assert_eq!(backlog.append(b"abcd", 5, 1), 55);
        assert_eq!(backlog.position(0), Position::Lost);
        let mut seen = Vec::new();
        let end = backlog.read_after(30, Duration::ZERO, 1 << 20, |r| seen.push(r.start));
        assert_eq!((end, seen), (Ok(55), vec![30, 50]));
        assert_eq!(backlog.figures().0, 31);
    }

    #[test]
    fn old_records_go_past_the_ttl() {
        let backlog = Backlog::new(1 << 20, 1000);
        backlog.activate();
        backlog.append(b"a", 10, 1_000);
        backlog.append(b"b", 10, 1_500);
        backlog.append(b"c", 10, 2_600);
        assert_eq!(backlog.position(0), Position::Lost);
        assert_eq!(backlog.position(10), Position::Lost);
        assert_eq!(backlog.position(20), Position::Held);
    }
}
