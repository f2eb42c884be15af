//! Helpers shared by the memcached parser's integration tests: the default limits, and
//! parse-and-unwrap shorthands (`ok`, `err`, `client`, `keys`, `meta`) that panic with the
//! input when the parser answers otherwise.
//!
//! Only the crate's public API (`ferrocache_protocol::memcache`); never a model of a server
//! (that lives with the golden tests) and never I/O.

// Each test crate uses a subset of these.
#![allow(dead_code)]

use ferrocache_protocol::memcache::*;

pub fn lim() -> Limits {
    Limits::default()
}

pub fn p(input: &[u8]) -> Result<Option<(Request<'_>, usize)>, ParseError<'_>> {
    parse(input, &lim())
}

/// Parses a whole request that must succeed and use the whole input.
pub fn ok(input: &[u8]) -> Request<'_> {
    match p(input) {
        Ok(Some((r, n))) => {
            assert_eq!(
                n,
                input.len(),
                "consumed for {:?}",
                String::from_utf8_lossy(input)
            );
            r
        }
        other => panic!("{:?} => {other:?}", String::from_utf8_lossy(input)),
    }
}

pub fn err(input: &[u8]) -> ParseError<'_> {
    match p(input) {
        Err(e) => e,
        other => panic!("{:?} => {other:?}", String::from_utf8_lossy(input)),
    }
}

/// The CLIENT_ERROR message, consumed, swallow and reply of a client error.
pub fn client(input: &[u8]) -> (&'static str, usize, usize, Reply) {
    match err(input) {
        ParseError::Client {
            message,
            consumed,
            swallow,
            reply,
        } => (message, consumed, swallow, reply),
        other => panic!("{:?} => {other:?}", String::from_utf8_lossy(input)),
    }
}

pub fn keys<'a>(r: &Request<'a>) -> Vec<&'a [u8]> {
    match r {
        Request::Get { keys, .. } => keys.iter().collect(),
        other => panic!("not a get: {other:?}"),
    }
}

pub fn meta<'a>(r: &Request<'a>) -> MetaKeyed<'a> {
    match r {
        Request::MetaGet(m)
        | Request::MetaDelete(m)
        | Request::MetaArith(m)
        | Request::MetaDebug(m)
        | Request::MetaSet { meta: m, .. } => m.clone(),
        other => panic!("not a keyed meta command: {other:?}"),
    }
}
