//! The slow log: commands that took longer than `slowlog-log-slower-than`, newest first,
//! as Redis keeps it (`slowlog.c`).
//!
//! Only a slow command touches the log's mutex; a fast one reads one relaxed atomic (the
//! threshold). Arguments are cut as Redis cuts them: at most 32 (the last one saying how many
//! more there were), each at most 128 bytes (saying how many bytes more).
//!
//! Never: hold the mutex while encoding a reply (readers copy the entries out first).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// Redis's `SLOWLOG_ENTRY_MAX_ARGC` and `SLOWLOG_ENTRY_MAX_STRING`.
const MAX_ARGS: usize = 32;
const MAX_ARG_BYTES: usize = 128;

/// One slow command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowEntry {
    pub id: u64,
    /// When it ran, unix seconds.
    pub unix_secs: u64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    /// The client's `ip:port`.
    pub peer: String,
    /// The client's name (CLIENT SETNAME), empty if none.
    pub name: Vec<u8>,
}

/// The log and its two settings (both live through `CONFIG SET`).
pub struct SlowLog {
    entries: parking_lot::Mutex<VecDeque<SlowEntry>>,
    next_id: AtomicU64,
    /// Microseconds; negative turns the log off, 0 logs every command.
    threshold_us: AtomicI64,
    max_len: AtomicUsize,
}

impl SlowLog {
    /// Redis's defaults are 10000 µs and 128 entries.
    pub fn new(threshold_us: i64, max_len: usize) -> SlowLog {
        SlowLog {
            entries: parking_lot::Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            threshold_us: AtomicI64::new(threshold_us),
            max_len: AtomicUsize::new(max_len),
        }
    }

    pub fn threshold_us(&self) -> i64 {
        self.threshold_us.load(Ordering::Relaxed)
    }

    pub fn set_threshold_us(&self, us: i64) {
        self.threshold_us.store(us, Ordering::Relaxed);
    }

    pub fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    pub fn set_max_len(&self, len: usize) {
        self.max_len.store(len, Ordering::Relaxed);
        self.entries.lock().truncate(len);
    }

    /// Whether a command that took `duration_us` belongs in the log.
    #[inline]
    pub fn is_slow(&self, duration_us: u64) -> bool {
        let threshold = self.threshold_us();
        threshold >= 0 && duration_us >= threshold as u64
    }

    /// Adds a command (the caller checked [`SlowLog::is_slow`]).
    pub fn push(
        &self,
        args: &[impl AsRef<[u8]>],
        duration_us: u64,
        unix_secs: u64,
        peer: &str,
        name: &[u8],
    ) {
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(args.len().min(MAX_ARGS));
        for (i, arg) in args.iter().enumerate() {
            if i == MAX_ARGS - 1 && args.len() > MAX_ARGS {
                let more = args.len() - i;
                kept.push(format!("... ({more} more arguments)").into_bytes());
                break;
            }
            let arg = arg.as_ref();
            if arg.len() > MAX_ARG_BYTES {
                let mut cut = arg[..MAX_ARG_BYTES].to_vec();
                cut.extend_from_slice(
                    format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES).as_bytes(),
                );
                kept.push(cut);
            } else {
                kept.push(arg.to_vec());
            }
        }
        let entry = SlowEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unix_secs,
            duration_us,
            args: kept,
            peer: peer.to_owned(),
            name: name.to_vec(),
        };
        let max = self.max_len();
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(max);
    }

    /// The newest `count` entries (all of them for `None`).
    pub fn newest(&self, count: Option<usize>) -> Vec<SlowEntry> {
        let entries = self.entries.lock();
        let n = count.unwrap_or(entries.len()).min(entries.len());
        entries.iter().take(n).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_cuts_long_commands_as_redis_does() {
        let log = SlowLog::new(100, 2);
        assert!(!log.is_slow(99));
        assert!(log.is_slow(100));
        log.push(&[b"get".as_slice(), b"a"], 150, 1, "127.0.0.1:1", b"");
        log.push(&[b"get".as_slice(), b"b"], 150, 2, "127.0.0.1:1", b"");
        let big = vec![b'x'; 200];
        let many: Vec<&[u8]> = std::iter::once(b"mset".as_slice())
            .chain(std::iter::repeat_n(big.as_slice(), 40))
            .collect();
        log.push(&many, 900, 3, "127.0.0.1:2", b"me");
        assert_eq!(log.len(), 2);
        let newest = log.newest(Some(1));
        let entry = &newest[0];
        assert_eq!((entry.id, entry.duration_us), (2, 900));
        assert_eq!(entry.args.len(), 32);
        assert_eq!(entry.args[31], b"... (10 more arguments)");
        assert!(entry.args[1].ends_with(b"... (72 more bytes)"));
        assert_eq!(log.newest(None)[1].args[1], b"b");
        log.set_threshold_us(-1);
        assert!(!log.is_slow(u64::MAX));
        log.reset();
        assert!(log.is_empty());
    }
}
