//! Binary responses, written straight into the connection's output buffer.
//!
//! Every response is a 24-byte header (magic 0x81, the request's opcode byte, status, the
//! request's opaque, a cas) followed by extras, key and value. Values are copied once, from the
//! store's item view into the output buffer; nothing else is allocated. What to answer is
//! decided in `command/`; this module only knows the layout.

use crate::binary::{Header, Status, RESPONSE_MAGIC};

/// The parts of one response besides its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// The request's opcode byte, echoed (quiet opcodes keep their own byte).
    pub opcode: u8,
    pub status: Status,
    pub opaque: u32,
    pub cas: u64,
}

impl ResponseHead {
    /// A response to `request` with `status` and cas 0.
    pub fn to(request: &Header, status: Status) -> ResponseHead {
        ResponseHead {
            opcode: request.opcode,
            status,
            opaque: request.opaque,
            cas: 0,
        }
    }

    pub fn with_cas(self, cas: u64) -> ResponseHead {
        ResponseHead { cas, ..self }
    }
}

/// Appends the 24-byte header of a response whose body is `extras_len + key_len + value_len`.
///
/// Panics if the lengths exceed the header's fields (extras > 255, key > 65535, body > 4 GiB):
/// callers only pass extras of 0..=8 bytes, keys of at most 250 and values within the item
/// size limit (at most 128 MiB), so that would be a bug.
pub fn write_header(
    out: &mut Vec<u8>,
    head: ResponseHead,
    extras_len: usize,
    key_len: usize,
    value_len: usize,
) {
    let extras_len = u8::try_from(extras_len).expect("binary extras fit in a byte");
    let key_len = u16::try_from(key_len).expect("binary key length fits 16 bits");
    let body_len = u32::try_from(usize::from(extras_len) + usize::from(key_len) + value_len)
        .expect("binary body fits 32 bits");
    out.push(RESPONSE_MAGIC);
    out.push(head.opcode);
    out.extend_from_slice(&key_len.to_be_bytes());
    out.push(extras_len);
    out.push(0); // data type: raw bytes
    out.extend_from_slice(&(head.status as u16).to_be_bytes());
    out.extend_from_slice(&body_len.to_be_bytes());
    out.extend_from_slice(&head.opaque.to_be_bytes());
    out.extend_from_slice(&head.cas.to_be_bytes());
}

/// Appends a whole response.
pub fn write_response(
    out: &mut Vec<u8>,
    head: ResponseHead,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    write_header(out, head, extras.len(), key.len(), value.len());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Appends an error response for `request`: `status` with memcached's text for it as the body
/// and cas 0.
pub fn write_error(out: &mut Vec<u8>, request: &Header, status: Status) {
    write_error_text(out, request, status, status.message());
}

/// Appends an error response with a specific text (memcached's `out_of_memory` texts).
pub fn write_error_text(out: &mut Vec<u8>, request: &Header, status: Status, text: &[u8]) {
    write_response(out, ResponseHead::to(request, status), &[], &[], text);
}

/// Appends a retrieval hit: 4 bytes of flags as extras, the key when `key` is given, then the
/// value (none for Touch).
pub fn write_item(
    out: &mut Vec<u8>,
    head: ResponseHead,
    flags: u32,
    key: Option<&[u8]>,
    value: &[u8],
) {
    write_item_head(out, head, flags, key, value.len());
    out.extend_from_slice(value);
}

/// A retrieval hit without its value: header, flags and key, for a caller that sends the
/// `value_len` bytes of value right after them another way.
pub fn write_item_head(
    out: &mut Vec<u8>,
    head: ResponseHead,
    flags: u32,
    key: Option<&[u8]>,
    value_len: usize,
) {
    let key = key.unwrap_or(&[]);
    write_header(out, head, 4, key.len(), value_len);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(key);
}

/// Appends one `Stat` packet: the statistic's name as key, its value as value. The empty
/// packet (`name` and `value` empty) ends a Stat reply.
pub fn write_stat(out: &mut Vec<u8>, request: &Header, name: &[u8], value: &[u8]) {
    write_response(
        out,
        ResponseHead::to(request, Status::Success),
        &[],
        name,
        value,
    );
}
