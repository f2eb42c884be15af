//! memcached binary protocol: encoding GET, SET and GETKQ batches ended by NOOP, and parsing the
//! response packets.
//!
//! Invariants: every request packet has the 24-byte header (magic 0x80, big-endian lengths) and
//! every response must start with magic 0x81, otherwise the bytes are a [`ParseError`] (that is
//! how a text-only server shows it does not speak binary). A GETKQ batch answers hits only, then
//! the NOOP's response closes it. Status 0x0001 (key not found) is a miss; any other non-zero
//! status is [`Reply::Error`].

use super::{Encoder, Op, OpKind, ParseError, Parsed, Protocol, Reply, Scratch};
use crate::keyspace::write_key;

const REQUEST: u8 = 0x80;
const RESPONSE: u8 = 0x81;
const OP_GET: u8 = 0x00;
const OP_SET: u8 = 0x01;
const OP_NOOP: u8 = 0x0a;
const OP_GETKQ: u8 = 0x0d;
const HEADER: usize = 24;
const STATUS_NOT_FOUND: u16 = 0x0001;

fn header(out: &mut Vec<u8>, opcode: u8, key_len: usize, extras: usize, body: usize) {
    out.push(REQUEST);
    out.push(opcode);
    out.extend_from_slice(&(key_len as u16).to_be_bytes());
    out.push(extras as u8);
    out.push(0); // data type
    out.extend_from_slice(&0u16.to_be_bytes()); // vbucket
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // opaque
    out.extend_from_slice(&0u64.to_be_bytes()); // cas
}

/// Encodes `op` in the binary protocol.
pub fn encode(enc: &Encoder, op: &Op, out: &mut Vec<u8>, s: &mut Scratch) {
    match op.kind {
        OpKind::Get => {
            header(out, OP_GET, s.key.len(), 0, s.key.len());
            out.extend_from_slice(&s.key);
        }
        OpKind::Set => {
            header(out, OP_SET, s.key.len(), 8, 8 + s.key.len() + s.value.len());
            out.extend_from_slice(&0u32.to_be_bytes()); // flags
            out.extend_from_slice(&0u32.to_be_bytes()); // exptime
            out.extend_from_slice(&s.key);
            out.extend_from_slice(&s.value);
        }
        OpKind::MultiGet => {
            for &k in &op.batch {
                s.key.clear();
                write_key(&mut s.key, b'k', k, enc.key_size);
                header(out, OP_GETKQ, s.key.len(), 0, s.key.len());
                out.extend_from_slice(&s.key);
            }
            header(out, OP_NOOP, 0, 0, 0);
        }
        other => unreachable!("{other:?} is not a binary-protocol op (rejected at startup)"),
    }
}

/// One response packet.
pub(crate) struct Packet<'a> {
    pub opcode: u8,
    pub status: u16,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub len: usize,
}

pub(crate) fn packet(buf: &[u8]) -> Result<Option<Packet<'_>>, ParseError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != RESPONSE {
        return Err(ParseError::new(
            Protocol::Binary,
            format!("response magic 0x{:02x}, expected 0x81", buf[0]),
        ));
    }
    if buf.len() < HEADER {
        return Ok(None);
    }
    let key_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let extras = usize::from(buf[4]);
    let status = u16::from_be_bytes([buf[6], buf[7]]);
    let body = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
    if extras + key_len > body {
        return Err(ParseError::new(
            Protocol::Binary,
            "extras + key longer than body",
        ));
    }
    if buf.len() < HEADER + body {
        return Ok(None);
    }
    let body = &buf[HEADER..HEADER + body];
    Ok(Some(Packet {
        opcode: buf[1],
        status,
        key: &body[extras..extras + key_len],
        value: &body[extras + key_len..],
        len: HEADER + body.len(),
    }))
}

fn status_error(p: &Packet<'_>) -> Reply<'static> {
    Reply::Error(format!(
        "binary status 0x{:04x}: {}",
        p.status,
        String::from_utf8_lossy(p.value)
    ))
}

/// Parses the reply to a binary-protocol request of `kind`.
pub fn parse(kind: OpKind, buf: &[u8]) -> Parsed<'_> {
    match kind {
        OpKind::Get | OpKind::Set => {
            let Some(p) = packet(buf)? else {
                return Ok(None);
            };
            let reply = match (kind, p.status) {
                (OpKind::Set, 0) => Reply::Stored,
                (OpKind::Get, 0) => Reply::Value(p.value),
                (OpKind::Get, STATUS_NOT_FOUND) => Reply::Miss,
                _ => status_error(&p),
            };
            Ok(Some((reply, p.len)))
        }
        OpKind::MultiGet => {
            let mut pos = 0;
            let mut hits = Vec::new();
            loop {
                let Some(p) = packet(&buf[pos..])? else {
                    return Ok(None);
                };
                pos += p.len;
                match (p.opcode, p.status) {
                    (OP_NOOP, 0) => return Ok(Some((Reply::Keyed(hits), pos))),
                    (OP_GETKQ, 0) => hits.push((p.key, p.value)),
                    (OP_GETKQ, STATUS_NOT_FOUND) => {}
                    _ => {
                        // Unknown command etc.: the rest of the batch answers alike; report the
                        // first, the caller treats the connection as broken.
                        return Ok(Some((status_error(&p), pos)));
                    }
                }
            }
        }
        other => unreachable!("{other:?} is not a binary-protocol op"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Values;

    fn response(opcode: u8, status: u16, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut out = vec![RESPONSE, opcode];
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.push(extras.len() as u8);
        out.push(0);
        out.extend_from_slice(&status.to_be_bytes());
        out.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(extras);
        out.extend_from_slice(key);
        out.extend_from_slice(value);
        out
    }

    fn encode_op(kind: OpKind, keys: &[u64]) -> Vec<u8> {
        let enc = Encoder {
            protocol: Protocol::Binary,
            key_size: 3,
            values: Values::new(1, 9, 9),
        };
        let mut out = Vec::new();
        enc.encode(&Op::new(kind, keys, 1), &mut out, &mut Scratch::default());
        out
    }

    #[test]
    fn get_and_set_requests() {
        let get = encode_op(OpKind::Get, &[5]);
        assert_eq!(
            get,
            [
                &[0x80, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3][..],
                &[0; 12],
                b"k05"
            ]
            .concat()
        );
        let set = encode_op(OpKind::Set, &[5]);
        assert_eq!(&set[..12], &[0x80, 1, 0, 3, 8, 0, 0, 0, 0, 0, 0, 8 + 3 + 9]);
        assert_eq!(&set[24..32], &[0; 8]);
        assert_eq!(&set[32..35], b"k05");
        assert_eq!(&set[35..43], b"00000001");
        assert_eq!(set.len(), 24 + 8 + 3 + 9);
    }

    #[test]
    fn getkq_batch_request() {
        let b = encode_op(OpKind::MultiGet, &[1, 2]);
        assert_eq!(b.len(), 27 * 2 + 24);
        assert_eq!((b[1], b[28], b[55]), (OP_GETKQ, OP_GETKQ, OP_NOOP));
        assert_eq!(&b[24..27], b"k01");
        assert_eq!(&b[51..54], b"k02");
    }

    #[test]
    fn single_replies() {
        let hit = response(OP_GET, 0, &[0, 0, 0, 0], b"", b"hello");
        assert_eq!(
            parse(OpKind::Get, &hit),
            Ok(Some((Reply::Value(b"hello"), hit.len())))
        );
        assert_eq!(parse(OpKind::Get, &hit[..hit.len() - 1]), Ok(None));
        assert_eq!(parse(OpKind::Get, &hit[..10]), Ok(None));
        let miss = response(OP_GET, 1, &[], b"", b"Not found");
        assert_eq!(
            parse(OpKind::Get, &miss),
            Ok(Some((Reply::Miss, miss.len())))
        );
        let stored = response(OP_SET, 0, &[], b"", b"");
        assert_eq!(parse(OpKind::Set, &stored), Ok(Some((Reply::Stored, 24))));
        let unknown = response(OP_SET, 0x81, &[], b"", b"Unknown command");
        assert!(matches!(
            parse(OpKind::Set, &unknown),
            Ok(Some((Reply::Error(_), _)))
        ));
        assert!(parse(OpKind::Get, b"ERROR\r\n").is_err());
    }

    #[test]
    fn batch_replies() {
        let mut buf = response(OP_GETKQ, 0, &[0; 4], b"k01", b"aa");
        buf.extend(response(OP_GETKQ, 0, &[0; 4], b"k07", b"b"));
        buf.extend(response(OP_NOOP, 0, &[], b"", b""));
        let want = Reply::Keyed(vec![(&b"k01"[..], &b"aa"[..]), (b"k07", b"b")]);
        assert_eq!(parse(OpKind::MultiGet, &buf), Ok(Some((want, buf.len()))));
        assert_eq!(parse(OpKind::MultiGet, &buf[..buf.len() - 24]), Ok(None));
    }
}
