//! memcached 1.6 text and meta protocols (`doc/protocol.txt` in memcached/memcached).
//!
//! `parse` turns the front of a read buffer into one [`Request`] borrowing from that buffer
//! (framing and dispatch in `parse.rs`, text commands in `text.rs`, meta commands in
//! `meta_parse.rs`, meta flags and base64 keys in `meta.rs`, memcached's number quirks in
//! `number.rs`); `encode` writes replies in memcached's exact bytes. Neither knows about sockets or the store:
//! expiry times stay raw ([`Exptime`]) because the protocol has no clock.

mod encode;
mod error;
mod meta;
mod meta_parse;
mod number;
mod parse;
mod request;
mod text;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod tests;

pub use encode::*;
pub use error::ParseError;
pub use meta::{MetaFlag, MetaFlags, MetaMode, MAX_META_FLAGS, MAX_OPAQUE_LEN};
pub use parse::{parse, Limits};
pub use request::*;
