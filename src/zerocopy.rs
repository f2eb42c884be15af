//! Zero-copy replies: large values handed from the command layer to the connection by
//! reference, and sent from segment memory with vectored writes.
//!
//! While a connection serves requests ([`serving`]), a command encoding a value of at least
//! `server.zero_copy_min` bytes (memcached text get/gets/gat, meta mg, binary get/getk/gat,
//! RESP GET) may [`defer`] it: it writes the reply's header into the
//! output buffer, defers the value (pinned in its segment, see `store::PinnedValue`) at the
//! buffer's current length, and writes the rest of the reply after it. The connection then
//! sends the buffer with each deferred value spliced in at its offset, and drops each pin once
//! the socket took the whole value. Outside [`serving`] (tests calling `execute` directly, other
//! callers) [`defer`] declines and the command copies as before.
//!
//! The hand-over is a per-thread list because a connection is served on one worker thread
//! from start to end of a request; it keeps the encoders' `&mut Vec<u8>` signatures as they
//! are. This module never reads a socket and never touches the store beyond dropping pins.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use crate::store::PinnedValue;

/// A value spliced into a connection's output at byte offset `at` of its buffer.
#[derive(Debug)]
pub struct Splice {
    pub at: usize,
    pub value: PinnedValue,
    /// Bytes of `value` already sent.
    pub sent: usize,
}

impl Splice {
    pub fn unsent(&self) -> &[u8] {
        &self.value.bytes()[self.sent..]
    }
}

thread_local! {
    /// The smallest value to defer while a connection is being served; 0 = not serving.
    static MIN_LEN: Cell<usize> = const { Cell::new(0) };
    /// The address of the connection's output buffer this turn: a value is deferred only
    /// into that buffer (a command encoding into a scratch buffer, as a script capturing a
    /// reply does, gets a copy).
    static TARGET: Cell<usize> = const { Cell::new(0) };
    static PENDING: RefCell<Vec<Splice>> = const { RefCell::new(Vec::new()) };
}

/// Ends a serving turn, also when the command panicked: the flag is cleared and any value
/// deferred but not collected is unpinned.
struct Turn;

impl Drop for Turn {
    fn drop(&mut self) {
        MIN_LEN.with(|min| min.set(0));
        TARGET.with(|target| target.set(0));
        PENDING.with(|pending| pending.borrow_mut().clear());
    }
}

/// Runs `serve` (which encodes into the connection's output buffer `out`) letting commands
/// defer values of `min_len` bytes or more (0 = never) into `out`, and appends what they
/// deferred to `splices`.
pub fn serving<R>(
    min_len: usize,
    splices: &mut VecDeque<Splice>,
    out: &mut Vec<u8>,
    serve: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    let turn = Turn;
    MIN_LEN.with(|min| min.set(min_len));
    TARGET.with(|target| target.set(out as *const Vec<u8> as usize));
    let result = serve(out);
    PENDING.with(|pending| splices.extend(pending.borrow_mut().drain(..)));
    drop(turn);
    result
}

/// Bytes of the values deferred so far in this serving turn (a command checking its output
/// limit counts them with its buffer).
pub fn deferred_len() -> usize {
    PENDING.with(|pending| pending.borrow().iter().map(|s| s.value.len()).sum())
}

/// Whether a value of `len` bytes would be deferred now.
pub fn wants(len: usize) -> bool {
    MIN_LEN.with(|min| {
        let min = min.get();
        min != 0 && len >= min
    })
}

/// Defers `value` at the end of `out` (see the module documentation). The caller has checked
/// [`wants`]; if the value cannot be pinned, or `out` is not the connection's output buffer,
/// it is copied into `out` instead.
pub fn defer(out: &mut Vec<u8>, value: Option<PinnedValue>, bytes: &[u8]) {
    let into_connection = TARGET.with(|target| target.get() == out as *const Vec<u8> as usize);
    match value {
        Some(value) if into_connection && wants(value.len()) => PENDING.with(|pending| {
            pending.borrow_mut().push(Splice {
                at: out.len(),
                value,
                sent: 0,
            })
        }),
        _ => out.extend_from_slice(bytes),
    }
}

/// Drops the values deferred at or after byte `offset` of the output buffer this turn: the
/// buffer is cut back to `offset` (a reply CLIENT REPLY silences), so they must not be sent.
pub fn discard_from(offset: usize) {
    PENDING.with(|pending| pending.borrow_mut().retain(|splice| splice.at < offset));
}
