//! What the worker running on this thread is, and its local pub/sub outbox: messages published
//! on a worker for that worker's own connections wait here instead of taking a hand-off and a
//! wake-up. A RESP session takes its own messages after each reply (`command/session.rs`);
//! the worker delivers the rest after the turn. The connection loop never sees pub/sub.
//! Thread-local state only: no I/O, no locks.

use std::cell::{Cell, RefCell};

thread_local! {
    /// Pub/sub messages published on this worker for this worker's own connections.
    static LOCAL_OUTBOX: RefCell<super::Batch> = const { RefCell::new(Vec::new()) };
    static CURRENT_WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Marks this thread as worker `index` (once, when the worker starts).
pub fn set_current_worker(index: usize) {
    CURRENT_WORKER.with(|current| current.set(Some(index)));
}

/// Queues messages for this worker's own connections.
pub fn queue(batch: super::Batch) {
    LOCAL_OUTBOX.with(|outbox| outbox.borrow_mut().extend(batch));
}

/// Takes every queued message (the worker delivers them after a turn).
pub fn take_all() -> super::Batch {
    LOCAL_OUTBOX.with(|outbox| std::mem::take(&mut *outbox.borrow_mut()))
}

/// Moves the messages published for connection `conn_id` itself (a RESP3 client's keyspace
/// notifications of its own writes, a PUBLISH to a channel it subscribes to) out of the
/// outbox to the end of its output, right after the reply of the command that published
/// them, where Redis 7.2 puts them (before 7.2 they came first, and could land inside an
/// EXEC's array). Other connections' messages stay in the outbox.
pub fn append_own_messages(conn_id: u64, wbuf: &mut Vec<u8>) {
    LOCAL_OUTBOX.with(|outbox| {
        let mut outbox = outbox.borrow_mut();
        if !outbox.iter().any(|(id, _)| *id == conn_id) {
            return;
        }
        outbox.retain(|(id, frame)| {
            let mine = *id == conn_id;
            if mine {
                wbuf.extend_from_slice(frame);
            }
            !mine
        });
    });
}

/// The index of the worker running on this thread, if any.
pub fn current_worker() -> Option<usize> {
    CURRENT_WORKER.with(Cell::get)
}
