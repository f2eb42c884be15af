//! The connection's read buffer: bytes received but not yet consumed by the parser.
//!
//! Invariant: `start <= end <= storage.len()`; `storage[start..end]` is unparsed input. The
//! storage is zeroed once when it grows, so reads never re-initialise memory, and it shrinks
//! back to [`ReadBuffer::INITIAL`] when the connection is idle.

pub struct ReadBuffer {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
    /// Size of a fresh buffer and of each read (memcached's `READ_BUFFER_SIZE`).
    pub const INITIAL: usize = 16 * 1024;

    pub fn new() -> ReadBuffer {
        ReadBuffer {
            storage: vec![0; Self::INITIAL],
            start: 0,
            end: 0,
        }
    }

    /// The unparsed bytes.
    pub fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops `n` parsed bytes from the front.
    pub fn consume(&mut self, n: usize) {
        assert!(
            n <= self.len(),
            "consumed {n} of {} buffered bytes",
            self.len()
        );
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space at the back, at least `min` bytes, moving data to the front or growing.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.storage.len() - self.end < min {
            if self.start > 0 {
                self.storage.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.storage.len() - self.end < min {
                let wanted = (self.end + min).next_power_of_two();
                self.storage.resize(wanted, 0);
            }
        }
        &mut self.storage[self.end..]
    }

    /// Makes room for a request known to need `total` bytes from the front of the unparsed
    /// data. Grows by doubling, never past `total`: memory follows the bytes that arrive, not
    /// what a header announces, and a large value is not copied once per read.
    pub fn make_room_for(&mut self, total: usize) {
        if self.storage.len() - self.start >= total {
            return;
        }
        if self.start > 0 {
            self.storage.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.storage.len() < total {
            let grown = (self.storage.len() * 2).max(self.end + Self::INITIAL);
            self.storage.resize(grown.min(total), 0);
        }
    }

    /// Bytes of memory the buffer holds.
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// Records that `n` bytes were written into [`spare`](Self::spare).
    pub fn filled(&mut self, n: usize) {
        assert!(self.end + n <= self.storage.len(), "filled past the buffer");
        self.end += n;
    }

    /// Gives memory back after a large request, once nothing is buffered.
    pub fn shrink_if_idle(&mut self) {
        if self.is_empty() && self.storage.len() > Self::INITIAL {
            self.storage = vec![0; Self::INITIAL];
        }
    }
}

impl Default for ReadBuffer {
    fn default() -> Self {
        ReadBuffer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_compacts_and_shrinks() {
        let mut buf = ReadBuffer::new();
        let spare = buf.spare(4);
        spare[..4].copy_from_slice(b"abcd");
        buf.filled(4);
        buf.consume(2);
        assert_eq!(buf.data(), b"cd");
        let spare = buf.spare(ReadBuffer::INITIAL * 2);
        assert!(spare.len() >= ReadBuffer::INITIAL * 2);
        assert_eq!(buf.data(), b"cd");
        buf.consume(2);
        buf.shrink_if_idle();
        assert_eq!(buf.spare(1).len(), ReadBuffer::INITIAL);
    }

    #[test]
    fn room_for_a_large_request_grows_by_doubling_up_to_exactly_its_size() {
        let mut buf = ReadBuffer::new();
        let total = 1_000_000;
        buf.make_room_for(total);
        assert_eq!(
            buf.capacity(),
            2 * ReadBuffer::INITIAL,
            "not the announced size at once"
        );
        while buf.len() < total {
            buf.make_room_for(total);
            let n = buf.spare(1).len().min(total - buf.len());
            buf.filled(n);
        }
        assert_eq!(buf.capacity(), total, "no power-of-two overshoot");
    }
}
