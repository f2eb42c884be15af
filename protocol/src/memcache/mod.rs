//! memcached 1.6 text and meta protocols (`doc/protocol.txt` in memcached/memcached).
//!
//! `auth` reads the text protocol's authenticating `set` (memcached's `-Y`). `parse` turns the front of a read buffer into one [`Request`] borrowing from that buffer
//! (framing and dispatch in `parse.rs`, text commands in `text.rs`, meta commands in
//! `meta_commands.rs`, meta flags and base64 keys in `meta_flags.rs`, memcached's number quirks
//! in `number.rs`; what they share, the tokenizer and limits in `lines.rs` and the key rules in
//! `words.rs`, imports none of them); `encode` writes replies in memcached's exact bytes. Neither knows about sockets or the store:
//! expiry times stay raw ([`Exptime`]) because the protocol has no clock.

pub mod auth;
mod encode;
mod error;
mod lines;
mod meta_commands;
mod meta_flags;
mod number;
mod parse;
mod request;
mod text;
mod words;

pub use encode::*;
pub use error::ParseError;
pub use lines::Limits;
pub use meta_flags::{MetaFlag, MetaFlags, MetaMode, MAX_META_FLAGS, MAX_OPAQUE_LEN};
pub use parse::parse;
pub use request::*;
