//! Clients parked in a blocking pop (the lists' BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP and
//! the sorted sets' BZPOPMIN, BZPOPMAX, BZMPOP), a blocking stream read (XREAD, XREADGROUP
//! with BLOCK) or WAIT, across workers: who waits on which key, in which order, and the hand-over of a served reply to
//! the waiter's worker.
//!
//! A waiter is parked with a sequence number (the order it blocked in) on each of its keys.
//! A command that pushes to a key then serves that key's waiters itself, first blocked first
//! among those waiting for the key's type (a list waiter is skipped while the key is a sorted
//! set, as Redis does): it takes the waiter out of the registry ([`Registry::take_first`]), performs the waiter's
//! pop on the store, encodes the waiter's reply and hands it to the waiter's worker through
//! the [`Wake`] sink (a channel plus a `mio::Waker`, like pub/sub's delivery). Taking the
//! waiter out is the one arbiter between a push serving it, its timeout and its connection
//! closing: whoever removes it from the registry owns its outcome. A reply whose connection
//! closed before its worker saw it gives its elements back to the list (see [`GiveBack`]).
//!
//! Never holds its lock while calling the store or the sink; knows nothing of sockets.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::hashing::HashMap;
use crate::store::{End, IfMissing, Store};

/// The type of value a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    List,
    ZSet,
    Stream,
}

/// What a parked client waits to do once one of its keys holds a list or a sorted set.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// BLPOP / BRPOP (`count` = None: reply `[key, element]`) and BLMPOP (`count` = Some:
    /// reply `[key, [elements]]`).
    Pop { end: End, count: Option<usize> },
    /// BLMOVE / BRPOPLPUSH: reply the moved element.
    Move {
        destination: Vec<u8>,
        from: End,
        to: End,
    },
    /// BZPOPMIN / BZPOPMAX (`count` = None: reply `[key, member, score]`) and BZMPOP
    /// (`count` = Some: reply `[key, [[member, score], ...]]`); `max` pops the highest scores.
    ZPop { max: bool, count: Option<usize> },
    /// WAIT: parked on no key; replication answers it when enough replicas acked
    /// (`replication::runner::serve_waits`).
    Acks,
    /// XREAD / XREADGROUP BLOCK: reply `[[key, entries]]` once one of its keys has entries
    /// past the id it waits after.
    Stream(StreamWait),
}

impl WaitFor {
    /// The type the waiter's key must hold to serve it (`None`: parked on no key).
    pub fn kind(&self) -> Option<Kind> {
        match self {
            WaitFor::Pop { .. } | WaitFor::Move { .. } => Some(Kind::List),
            WaitFor::ZPop { .. } => Some(Kind::ZSet),
            WaitFor::Stream(_) => Some(Kind::Stream),
            WaitFor::Acks => None,
        }
    }
}

/// What a blocked stream read waits for.
#[derive(Debug, Clone)]
pub struct StreamWait {
    /// Per key (in the waiter's key order), the id whose successors it wants; for a group
    /// read, the group's last delivered id at serving time instead.
    pub after: Vec<crate::store::StreamId>,
    /// Entries per reply at most.
    pub count: usize,
    /// XREADGROUP's group, consumer and NOACK.
    pub group: Option<(Vec<u8>, Vec<u8>, bool)>,
    /// What a group reader answers if its stream is deleted or replaced by another type.
    pub gone_reply: Vec<u8>,
}

/// A parked client.
#[derive(Debug, Clone)]
pub struct Waiter {
    pub seq: u64,
    pub conn_id: u64,
    pub worker: usize,
    pub keys: Vec<Vec<u8>>,
    pub wait_for: WaitFor,
    /// The client speaks RESP3 (its reply is encoded by whoever serves it).
    pub resp3: bool,
}

/// What was popped for a waiter, to put back if its connection is gone by delivery.
#[derive(Debug)]
pub struct GiveBack {
    pub key: Vec<u8>,
    pub taken: Taken,
}

/// The values a served waiter took.
#[derive(Debug)]
pub enum Taken {
    /// List elements from `end`, in the order they were popped.
    List { end: End, elements: Vec<Vec<u8>> },
    /// Sorted-set members with their scores.
    ZSet { members: Vec<(Vec<u8>, f64)> },
}

impl GiveBack {
    /// Puts the values back where they were taken from (list elements in their order, members
    /// not re-added meanwhile with their score). If the key meanwhile came to hold another
    /// type (or memory ran out) they are dropped, as a reply lost with its connection would be.
    pub fn apply(self, store: &Store, now_ms: u64) {
        store.edit(&self.key, now_ms, |entry| match self.taken {
            Taken::List { end, elements } => {
                if let Ok(Some(list)) = entry.list_mut(IfMissing::Create) {
                    for element in elements.iter().rev() {
                        list.push(end, element);
                    }
                }
            }
            Taken::ZSet { members } => {
                if let Ok(Some(zset)) = entry.zset_mut(IfMissing::Create) {
                    for (member, score) in &members {
                        if zset.score(member).is_none() {
                            zset.insert(member, *score);
                        }
                    }
                }
            }
        });
    }
}

/// A served waiter's reply on its way to the waiter's worker.
#[derive(Debug)]
pub struct Served {
    pub conn_id: u64,
    pub seq: u64,
    pub reply: Vec<u8>,
    pub give_back: Option<GiveBack>,
}

/// A connection's side of its parked command: which waiter it is, until when it waits, and
/// what it answers if that time comes first.
#[derive(Debug, Clone)]
pub struct Parked {
    pub seq: u64,
    /// The parked command's name (a wake-up with an error counts as its `failed_calls`).
    pub command: &'static str,
    /// Unix ms; `None` waits for ever (timeout 0).
    pub deadline_ms: Option<u64>,
    pub timeout_reply: Vec<u8>,
}

/// Where served replies go: each worker's inbox (set by the server at start).
pub trait Wake: Send + Sync {
    fn wake(&self, worker: usize, served: Served);
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    /// Per key, the waiters' sequence numbers in the order they blocked.
    queues: HashMap<Vec<u8>, VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
}

/// The waiters of every worker.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
    /// How many clients are parked: pushes skip the registry lock while this is 0.
    parked: AtomicUsize,
    sink: OnceLock<Box<dyn Wake>>,
}

impl Registry {
    pub fn set_sink(&self, sink: Box<dyn Wake>) {
        let _ = self.sink.set(sink);
    }

    /// Hands a served reply to its worker; with no sink (tests without workers) the
    /// elements go back.
    pub fn wake(&self, worker: usize, served: Served, store: &Store, now_ms: u64) {
        match self.sink.get() {
            Some(sink) => sink.wake(worker, served),
            None => {
                if let Some(give_back) = served.give_back {
                    give_back.apply(store, now_ms);
                }
            }
        }
    }

    /// How many clients are parked.
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::Relaxed)
    }

    /// Parks `waiter` on its keys behind everyone already there; returns its sequence number.
    pub fn park(&self, mut waiter: Waiter) -> u64 {
        let mut inner = self.inner.lock();
        inner.next_seq += 1;
        let seq = inner.next_seq;
        waiter.seq = seq;
        for key in &waiter.keys {
            inner.queues.entry(key.clone()).or_default().push_back(seq);
        }
        inner.waiters.insert(seq, waiter);
        self.parked.fetch_add(1, Ordering::Relaxed);
        seq
    }

    fn unqueue(inner: &mut Inner, waiter: &Waiter) {
        for key in &waiter.keys {
            if let Some(queue) = inner.queues.get_mut(key) {
                queue.retain(|&s| s != waiter.seq);
                if queue.is_empty() {
                    inner.queues.remove(key);
                }
            }
        }
    }

    /// Whether waiter `seq` is still parked.
    pub fn is_parked(&self, seq: u64) -> bool {
        self.inner.lock().waiters.contains_key(&seq)
    }

    /// Removes waiter `seq` (timeout, connection closed). False when it is no longer parked:
    /// a push took it, and its reply is on the way to its worker.
    pub fn cancel(&self, seq: u64) -> bool {
        let mut inner = self.inner.lock();
        let Some(waiter) = inner.waiters.remove(&seq) else {
            return false;
        };
        Self::unqueue(&mut inner, &waiter);
        self.parked.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Takes the first waiter on `key` waiting for a `kind` value out of the registry, to be
    /// served.
    pub fn take_first(&self, key: &[u8], kind: Kind) -> Option<Waiter> {
        if self.parked() == 0 {
            return None;
        }
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let seq = *inner
            .queues
            .get(key)?
            .iter()
            .find(|seq| inner.waiters[seq].wait_for.kind() == Some(kind))?;
        let waiter = inner
            .waiters
            .remove(&seq)
            .expect("queued waiters are parked");
        Self::unqueue(inner, &waiter);
        self.parked.fetch_sub(1, Ordering::Relaxed);
        Some(waiter)
    }

    /// The waiters on `key`, first blocked first (a snapshot: each may be gone when taken).
    pub fn queued(&self, key: &[u8]) -> Vec<u64> {
        if self.parked() == 0 {
            return Vec::new();
        }
        let inner = self.inner.lock();
        inner
            .queues
            .get(key)
            .map_or_else(Vec::new, |q| q.iter().copied().collect())
    }

    /// Takes waiter `seq` out of the registry to be served, if it is still parked.
    pub fn take(&self, seq: u64) -> Option<Waiter> {
        let mut inner = self.inner.lock();
        let waiter = inner.waiters.remove(&seq)?;
        Self::unqueue(&mut inner, &waiter);
        self.parked.fetch_sub(1, Ordering::Relaxed);
        Some(waiter)
    }

    /// Unblocks the group readers waiting on `key` (its stream is gone) with their gone
    /// reply. Called from the store's effect hook: takes only the registry's lock.
    pub fn stream_gone(&self, key: &[u8]) {
        for seq in self.queued(key) {
            let group_reader = {
                let inner = self.inner.lock();
                inner.waiters.get(&seq).is_some_and(
                    |w| matches!(&w.wait_for, WaitFor::Stream(wait) if wait.group.is_some()),
                )
            };
            if !group_reader {
                continue;
            }
            let Some(waiter) = self.take(seq) else {
                continue;
            };
            let WaitFor::Stream(wait) = waiter.wait_for else {
                continue;
            };
            if let Some(sink) = self.sink.get() {
                sink.wake(
                    waiter.worker,
                    Served {
                        conn_id: waiter.conn_id,
                        seq: waiter.seq,
                        reply: wait.gone_reply,
                        give_back: None,
                    },
                );
            }
        }
    }

    /// Unblocks every group reader (all keys were flushed).
    pub fn every_stream_gone(&self) {
        let keys: Vec<Vec<u8>> = self.inner.lock().queues.keys().cloned().collect();
        for key in keys {
            self.stream_gone(&key);
        }
    }

    /// Puts back a waiter [`take_first`](Self::take_first) took but could not serve, ahead of
    /// the waiters that blocked after it.
    pub fn restore(&self, waiter: Waiter) {
        let mut inner = self.inner.lock();
        for key in &waiter.keys {
            let queue = inner.queues.entry(key.clone()).or_default();
            let at = queue.partition_point(|&s| s < waiter.seq);
            queue.insert(at, waiter.seq);
        }
        inner.waiters.insert(waiter.seq, waiter);
        self.parked.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(conn_id: u64, keys: &[&str]) -> Waiter {
        Waiter {
            seq: 0,
            conn_id,
            worker: 0,
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            wait_for: WaitFor::Pop {
                end: End::Head,
                count: None,
            },
            resp3: false,
        }
    }

    #[test]
    fn first_blocked_is_first_taken_and_restored_in_place() {
        let registry = Registry::default();
        let a = registry.park(waiter(1, &["k", "j"]));
        let b = registry.park(waiter(2, &["k"]));
        let c = registry.park(waiter(3, &["j", "k"]));
        assert_eq!(registry.parked(), 3);
        let first = registry.take_first(b"k", Kind::List).unwrap();
        assert_eq!(first.seq, a);
        // Taken from every key it waited on.
        assert_eq!(registry.take_first(b"j", Kind::List).unwrap().seq, c);
        registry.restore(first);
        assert_eq!(registry.take_first(b"k", Kind::List).unwrap().conn_id, 1);
        assert!(registry.cancel(b));
        assert!(!registry.cancel(b), "cancelled once");
        assert!(registry.take_first(b"k", Kind::List).is_none());
        assert_eq!(registry.parked(), 0);
        assert!(registry.inner.lock().queues.is_empty());
    }

    #[test]
    fn a_key_serves_the_first_waiter_of_its_type() {
        let registry = Registry::default();
        let list = registry.park(waiter(1, &["k"]));
        let mut zpop = waiter(2, &["k"]);
        zpop.wait_for = WaitFor::ZPop {
            max: false,
            count: None,
        };
        let zset = registry.park(zpop);
        assert_eq!(registry.take_first(b"k", Kind::ZSet).unwrap().seq, zset);
        assert!(registry.take_first(b"k", Kind::ZSet).is_none());
        assert_eq!(registry.take_first(b"k", Kind::List).unwrap().seq, list);
    }
}
