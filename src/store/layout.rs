//! How one item is laid out inside a segment, byte by byte.
//!
//! An item is a variable-length record appended to a segment: a compact header, the key and
//! the value, contiguous, with no padding. Where every byte goes, for the common case (cas
//! from the store's counter, no expiry, client flags 0, key under 255 bytes, value under 128):
//!
//! | bytes | field |
//! |---:|---|
//! | 1 | `info`: value kind (2 bits), which optional fields follow (3 bits), fetched, stale and win-token bits |
//! | 6 | cas unique, low 48 bits (the shard's counter restores the top; [`WIDE_CAS`](info::WIDE_CAS) stores all 64) |
//! | 4 | last access, unix seconds (meta `la`, LFU decay) |
//! | 0 or 6 | expiry, unix milliseconds (only with [`HAS_EXPIRY`](info::HAS_EXPIRY)) |
//! | 0 or 4 | client flags (only when non-zero) |
//! | 1 (or 5) | key length (255 = a u32 follows, for long RESP keys) |
//! | 1–5 | value length, LEB128 |
//!
//! That is 13 bytes of header; the index adds its 8-byte entry (see [`super::index`]) at the
//! index's load factor, so header plus index stay under 24 bytes per item.
//!
//! Invariants: everything but the `info` byte's state bits, the cas, the last access, the
//! expiry and a large value's chunk table is immutable once written; those change in place
//! only under the lock of the item's shard. Segment walkers (eviction, compaction) read the
//! `info` byte without that lock, so it is written atomically (`ItemMut`) and walkers load it
//! atomically through the segment's mutable base pointer.

use std::sync::atomic::{AtomicU8, Ordering};

/// Bits of the first header byte.
pub(crate) mod info {
    /// The value kind: bytes inline, zstd-compressed inline, a typed object id, or a large
    /// value id (kept outside the segments).
    pub const KIND_MASK: u8 = 0b11;
    pub const KIND_INLINE: u8 = 0;
    pub const KIND_COMPRESSED: u8 = 1;
    pub const KIND_TYPED: u8 = 2;
    pub const KIND_LARGE: u8 = 3;
    pub const HAS_EXPIRY: u8 = 1 << 2;
    pub const HAS_FLAGS: u8 = 1 << 3;
    /// The cas is stored in full (8 bytes): it was chosen by a client (meta `E`).
    pub const WIDE_CAS: u8 = 1 << 4;
    /// Read at least once since it was stored (meta `h`).
    pub const FETCHED: u8 = 1 << 5;
    /// Marked stale by a meta invalidation (meta `X`).
    pub const STALE: u8 = 1 << 6;
    /// A recache/stale win token was handed out (meta `Z`).
    pub const WIN_SENT: u8 = 1 << 7;
    /// The bits that fix the layout; they never change in place.
    pub const FORMAT_MASK: u8 = KIND_MASK | HAS_EXPIRY | HAS_FLAGS | WIDE_CAS;
    /// The bits that may change in place.
    pub const STATE_MASK: u8 = FETCHED | STALE | WIN_SENT;
}

const NARROW_CAS: usize = 6;
const WIDE_CAS: usize = 8;
const ACCESS: usize = 4;
const EXPIRY: usize = 6;
const FLAGS: usize = 4;
/// The low 48 bits kept by a narrow cas.
pub(crate) const NARROW_CAS_MASK: u64 = (1 << 48) - 1;

/// An item to be written: everything but where it goes.
pub(crate) struct NewItem<'a> {
    pub key: &'a [u8],
    /// The value's bytes as stored (already compressed, or an object id), in pieces.
    pub value: &'a [&'a [u8]],
    /// `info` bits: kind and state (the layout bits are derived here).
    pub info: u8,
    pub cas: u64,
    /// The cas came from the shard's counter (so 48 bits suffice).
    pub narrow_cas: bool,
    pub access_s: u32,
    /// 0 = never.
    pub expiry_ms: u64,
    pub flags: u32,
}

impl NewItem<'_> {
    fn value_len(&self) -> usize {
        self.value.iter().map(|part| part.len()).sum()
    }

    fn full_info(&self) -> u8 {
        let mut info = self.info & !(info::HAS_EXPIRY | info::HAS_FLAGS | info::WIDE_CAS);
        if self.expiry_ms != 0 {
            info |= info::HAS_EXPIRY;
        }
        if self.flags != 0 {
            info |= info::HAS_FLAGS;
        }
        if !self.narrow_cas {
            info |= info::WIDE_CAS;
        }
        info
    }

    /// Bytes this item takes in a segment.
    pub fn encoded_len(&self) -> usize {
        let info = self.full_info();
        header_len(info, self.key.len(), self.value_len()) + self.key.len() + self.value_len()
    }

    /// Writes the item into `dst`, which is exactly [`encoded_len`](Self::encoded_len) long.
    pub fn encode(&self, dst: &mut [u8]) {
        let info = self.full_info();
        let mut at = 0;
        dst[0] = info;
        at += 1;
        if info & info::WIDE_CAS != 0 {
            dst[at..at + WIDE_CAS].copy_from_slice(&self.cas.to_le_bytes());
            at += WIDE_CAS;
        } else {
            dst[at..at + NARROW_CAS].copy_from_slice(&self.cas.to_le_bytes()[..NARROW_CAS]);
            at += NARROW_CAS;
        }
        dst[at..at + ACCESS].copy_from_slice(&self.access_s.to_le_bytes());
        at += ACCESS;
        if info & info::HAS_EXPIRY != 0 {
            dst[at..at + EXPIRY].copy_from_slice(&self.expiry_ms.to_le_bytes()[..EXPIRY]);
            at += EXPIRY;
        }
        if info & info::HAS_FLAGS != 0 {
            dst[at..at + FLAGS].copy_from_slice(&self.flags.to_le_bytes());
            at += FLAGS;
        }
        let key_len = self.key.len();
        if key_len < 255 {
            dst[at] = key_len as u8;
            at += 1;
        } else {
            dst[at] = 255;
            dst[at + 1..at + 5].copy_from_slice(&(key_len as u32).to_le_bytes());
            at += 5;
        }
        let mut value_len = self.value_len() as u32;
        loop {
            let byte = (value_len & 0x7f) as u8;
            value_len >>= 7;
            if value_len == 0 {
                dst[at] = byte;
                at += 1;
                break;
            }
            dst[at] = byte | 0x80;
            at += 1;
        }
        dst[at..at + key_len].copy_from_slice(self.key);
        at += key_len;
        for part in self.value {
            dst[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        debug_assert_eq!(at, dst.len());
    }
}

/// Header bytes for an item with these layout bits and lengths.
fn header_len(info: u8, key_len: usize, value_len: usize) -> usize {
    let mut len = 1 + ACCESS;
    len += if info & info::WIDE_CAS != 0 {
        WIDE_CAS
    } else {
        NARROW_CAS
    };
    if info & info::HAS_EXPIRY != 0 {
        len += EXPIRY;
    }
    if info & info::HAS_FLAGS != 0 {
        len += FLAGS;
    }
    len += if key_len < 255 { 1 } else { 5 };
    len + varint_len(value_len as u32)
}

fn varint_len(mut value: u32) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// The largest header any item can have (for sizing checks).
pub(crate) const MAX_HEADER: usize = 1 + WIDE_CAS + ACCESS + EXPIRY + FLAGS + 5 + 5;

/// Where the fields of one written item are, relative to its first byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub format: u8,
    pub key_at: usize,
    pub key_len: usize,
    pub value_at: usize,
    pub value_len: usize,
}

impl Layout {
    pub fn total_len(&self) -> usize {
        self.value_at + self.value_len
    }

    fn access_at(&self) -> usize {
        1 + if self.format & info::WIDE_CAS != 0 {
            WIDE_CAS
        } else {
            NARROW_CAS
        }
    }

    fn expiry_at(&self) -> Option<usize> {
        (self.format & info::HAS_EXPIRY != 0).then(|| self.access_at() + ACCESS)
    }

    fn flags_at(&self) -> Option<usize> {
        (self.format & info::HAS_FLAGS != 0).then(|| {
            self.access_at()
                + ACCESS
                + if self.format & info::HAS_EXPIRY != 0 {
                    EXPIRY
                } else {
                    0
                }
        })
    }
}

/// Reads the layout of the item starting at `ptr`.
///
/// # Safety
/// `ptr` must point at the first byte of a completely written item inside a live segment
/// allocation. Only the immutable parts are read (the `info` byte atomically).
pub(crate) unsafe fn read_layout(ptr: *const u8) -> Layout {
    // SAFETY: the caller guarantees `ptr` is a written item; AtomicU8 has u8's layout.
    let format = unsafe { (*(ptr as *const AtomicU8)).load(Ordering::Relaxed) } & info::FORMAT_MASK;
    let mut at = 1 + ACCESS;
    at += if format & info::WIDE_CAS != 0 {
        WIDE_CAS
    } else {
        NARROW_CAS
    };
    if format & info::HAS_EXPIRY != 0 {
        at += EXPIRY;
    }
    if format & info::HAS_FLAGS != 0 {
        at += FLAGS;
    }
    // SAFETY: the key length and value length bytes follow the fixed fields of a written item
    // and never change after it was written.
    let key_len = unsafe {
        let first = *ptr.add(at);
        if first < 255 {
            at += 1;
            first as usize
        } else {
            let mut bytes = [0u8; 4];
            std::ptr::copy_nonoverlapping(ptr.add(at + 1), bytes.as_mut_ptr(), 4);
            at += 5;
            u32::from_le_bytes(bytes) as usize
        }
    };
    let mut value_len: usize = 0;
    let mut shift = 0;
    loop {
        // SAFETY: as above; the varint ends within the item (its last byte has no high bit).
        let byte = unsafe { *ptr.add(at) };
        at += 1;
        value_len |= ((byte & 0x7f) as usize) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    Layout {
        format,
        key_at: at,
        key_len,
        value_at: at + key_len,
        value_len,
    }
}

/// One written item, borrowed while its shard's lock is held.
#[derive(Clone, Copy)]
pub(crate) struct ItemRef<'a> {
    pub bytes: &'a [u8],
    pub layout: Layout,
}

impl<'a> ItemRef<'a> {
    pub fn info(&self) -> u8 {
        // A plain read: the info byte is written (atomically) only through an `ItemMut`,
        // which needs the shard mutably, so never while this borrow lives; walkers that read
        // it concurrently only read.
        self.bytes[0]
    }
    pub fn kind(&self) -> u8 {
        self.layout.format & info::KIND_MASK
    }
    pub fn key(&self) -> &'a [u8] {
        &self.bytes[self.layout.key_at..self.layout.value_at]
    }
    /// The value bytes as stored (compressed, or an object id, for those kinds).
    pub fn raw_value(&self) -> &'a [u8] {
        &self.bytes[self.layout.value_at..self.layout.total_len()]
    }
    /// The cas unique; `counter` is the shard's next cas, which restores a narrow cas's top bits.
    pub fn cas(&self, counter: u64) -> u64 {
        if self.layout.format & info::WIDE_CAS != 0 {
            u64::from_le_bytes(self.bytes[1..9].try_into().expect("8 bytes"))
        } else {
            let mut low = [0u8; 8];
            low[..NARROW_CAS].copy_from_slice(&self.bytes[1..1 + NARROW_CAS]);
            widen_cas(u64::from_le_bytes(low), counter)
        }
    }
    pub fn access_s(&self) -> u32 {
        let at = self.layout.access_at();
        u32::from_le_bytes(self.bytes[at..at + ACCESS].try_into().expect("4 bytes"))
    }
    /// Expiry in unix ms, 0 = never.
    pub fn expiry_ms(&self) -> u64 {
        self.layout.expiry_at().map_or(0, |at| {
            let mut bytes = [0u8; 8];
            bytes[..EXPIRY].copy_from_slice(&self.bytes[at..at + EXPIRY]);
            u64::from_le_bytes(bytes)
        })
    }
    pub fn flags(&self) -> u32 {
        self.layout.flags_at().map_or(0, |at| {
            u32::from_le_bytes(self.bytes[at..at + FLAGS].try_into().expect("4 bytes"))
        })
    }
    pub fn object_id(&self) -> usize {
        let raw = self.raw_value();
        u32::from_le_bytes(raw[..4].try_into().expect("object id")) as usize
    }
}

/// Restores a narrow cas's top 16 bits: the largest value with these low 48 bits that is not
/// above the shard's counter (a counter-assigned cas never is).
pub(crate) fn widen_cas(low: u64, counter: u64) -> u64 {
    let candidate = (counter & !NARROW_CAS_MASK) | low;
    if candidate > counter && counter > NARROW_CAS_MASK {
        candidate - (1 << 48)
    } else {
        candidate
    }
}

/// In-place changes to one item's mutable fields. Made only by [`ItemMut::new`], whose
/// contract every method relies on (the fields are private so that no safe code can point
/// one anywhere else).
pub(crate) struct ItemMut {
    ptr: *mut u8,
    layout: Layout,
}

impl ItemMut {
    /// Access to the item starting at `ptr`.
    ///
    /// # Safety
    /// `ptr` must point at the first byte of a completely written item in a live segment
    /// allocation (as for [`read_layout`]), the item must stay there while the `ItemMut`
    /// lives (the caller holds the lock of the item's shard and the item is in its index),
    /// and no other reference to the item's bytes may be alive meanwhile.
    pub unsafe fn new(ptr: *mut u8) -> ItemMut {
        ItemMut {
            ptr,
            // SAFETY: the caller's contract is `read_layout`'s.
            layout: unsafe { read_layout(ptr) },
        }
    }

    fn info_atomic(&self) -> &AtomicU8 {
        // SAFETY: `ptr` is the item's first byte (`new`'s contract); AtomicU8 has
        // u8's size and alignment.
        unsafe { &*(self.ptr as *const AtomicU8) }
    }
    pub fn set_state(&self, bits: u8, on: bool) {
        if on {
            self.info_atomic().fetch_or(bits, Ordering::Relaxed);
        } else {
            self.info_atomic().fetch_and(!bits, Ordering::Relaxed);
        }
    }
    pub fn set_access_s(&self, secs: u32) {
        let at = self.layout.access_at();
        // SAFETY: within the item's header; exclusive by `new`'s contract.
        unsafe { std::ptr::copy_nonoverlapping(secs.to_le_bytes().as_ptr(), self.ptr.add(at), 4) }
    }
    /// Sets the expiry in place; false if the item has no expiry field (then it must be
    /// rewritten) or `ms` is 0.
    pub fn set_expiry_ms(&self, ms: u64) -> bool {
        let Some(at) = self.layout.expiry_at() else {
            return false;
        };
        if ms == 0 {
            return false;
        }
        // SAFETY: within the item's header; exclusive by `new`'s contract.
        unsafe {
            std::ptr::copy_nonoverlapping(ms.to_le_bytes().as_ptr(), self.ptr.add(at), EXPIRY)
        }
        true
    }
    /// Overwrites value bytes at `at` in place (a chunk table entry of a large value's head).
    pub fn write_value(&self, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= self.layout.value_len);
        // SAFETY: within the item's value (checked above); exclusive by `new`'s contract.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.add(self.layout.value_at + at),
                bytes.len(),
            )
        }
    }

    /// Sets the cas in place; false if it needs more room than the item has (a client cas
    /// into a narrow field).
    pub fn set_cas(&self, cas: u64, narrow: bool) -> bool {
        if self.layout.format & info::WIDE_CAS != 0 {
            // SAFETY: the wide cas field is bytes 1..9; exclusive by `new`'s contract.
            unsafe { std::ptr::copy_nonoverlapping(cas.to_le_bytes().as_ptr(), self.ptr.add(1), 8) }
            true
        } else if narrow {
            // SAFETY: the narrow cas field is bytes 1..7; exclusive by `new`'s contract.
            unsafe { std::ptr::copy_nonoverlapping(cas.to_le_bytes().as_ptr(), self.ptr.add(1), 6) }
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(key: &[u8], value: &[u8], expiry_ms: u64, flags: u32, cas: u64, narrow: bool) {
        let parts = [value];
        let item = NewItem {
            key,
            value: &parts,
            info: info::KIND_INLINE | info::FETCHED,
            cas,
            narrow_cas: narrow,
            access_s: 1234,
            expiry_ms,
            flags,
        };
        let mut buf = vec![0u8; item.encoded_len()];
        item.encode(&mut buf);
        // SAFETY: `buf` holds exactly one written item (a mutable pointer, as segment bases
        // are: the info byte is read atomically).
        let layout = unsafe { read_layout(buf.as_mut_ptr()) };
        assert_eq!(layout.total_len(), buf.len());
        let view = ItemRef {
            bytes: &buf,
            layout,
        };
        assert_eq!(view.key(), key);
        assert_eq!(view.raw_value(), value);
        assert_eq!(view.expiry_ms(), expiry_ms);
        assert_eq!(view.flags(), flags);
        assert_eq!(view.access_s(), 1234);
        assert_eq!(view.cas(cas.saturating_add(5)), cas);
        assert_ne!(view.info() & info::FETCHED, 0);
    }

    #[test]
    fn items_roundtrip_in_every_layout() {
        roundtrip(b"k", b"v", 0, 0, 7, true);
        roundtrip(&[b'x'; 32], &[1; 100], 0, 0, 1 << 50, true);
        roundtrip(
            &[b'x'; 300],
            &[2; 20_000],
            1_700_000_000_123,
            0xdead_beef,
            u64::MAX - 3,
            false,
        );
        roundtrip(b"", b"", 5, 1, 0, true);
    }

    #[test]
    fn the_common_item_has_a_13_byte_header() {
        let parts: [&[u8]; 1] = [&[0; 100]];
        let item = NewItem {
            key: &[0; 32],
            value: &parts,
            info: 0,
            cas: 1,
            narrow_cas: true,
            access_s: 0,
            expiry_ms: 0,
            flags: 0,
        };
        assert_eq!(item.encoded_len(), 13 + 32 + 100);
    }

    #[test]
    fn narrow_cas_widens_below_the_counter() {
        assert_eq!(widen_cas(5, 10), 5);
        let counter = (3 << 48) | 100;
        assert_eq!(widen_cas(50, counter), (3 << 48) | 50);
        assert_eq!(widen_cas(200, counter), (2 << 48) | 200);
    }
}
