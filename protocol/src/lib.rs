//! Parsers and encoders for the wire protocols ferrocache speaks.
//!
//! This crate owns the bytes-to-requests and responses-to-bytes translations: memcached's
//! text and meta protocols (`memcache`), its binary protocol (`binary`) and RESP (`resp`).
//!
//! It never does I/O, never touches the store and never allocates per request where a borrow of
//! the caller's read buffer will do. Every parser is total: any input yields a request,
//! `Ok(None)` (need more bytes) or a typed error, never a panic. That makes it fuzzable alone.

pub mod binary;
pub mod memcache;
pub mod resp;
