//! What every command parser of the text and meta protocols works on: the parser's limits,
//! a request line split into tokens (memcached's `tokenize_command`), the data block after a
//! storage line, and the parsers' result type. Imports only the request vocabulary below it;
//! the framing and dispatch (`parse.rs`) and the command parsers (`text.rs`,
//! `meta_commands.rs`) import it, never each other's helpers.

use crate::memcache::{ParseError, Request};

/// Limits the parser enforces before anything is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest value a storage command may carry (`-I`, default 1 MiB). A value of exactly
    /// this many bytes is accepted.
    ///
    /// Deliberate deviation: memcached compares the whole item (header, key, value) with
    /// `-I`, so its real limit is a little lower and depends on the key; we count value bytes.
    pub item_size_max: usize,
    /// Longest request line (bytes before the `\n`) before the connection is closed
    /// (memcached: 2048).
    pub max_line_len: usize,
    /// Longest line for `get`/`gets` multigets, which memcached lets grow further. Only those
    /// two commands (after at most 100 leading spaces) get it, exactly as in memcached.
    pub max_multiget_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            item_size_max: 1024 * 1024,
            max_line_len: 2048,
            max_multiget_line_len: 2 * 1024 * 1024,
        }
    }
}

/// memcached's `MAX_TOKENS` (24) minus the terminal token it always appends.
const MAX_TOKENS: usize = 23;

/// A request line split on runs of spaces, as memcached's `tokenize_command` does: at most
/// [`MAX_TOKENS`] tokens are kept; anything after them is reachable only through
/// [`Tokens::raw_from`] (only the get family looks there, as in memcached). Only the space
/// separates tokens; tabs and other bytes belong to tokens.
pub(crate) struct Tokens<'a> {
    line: &'a [u8],
    spans: [(usize, usize); MAX_TOKENS],
    n: usize,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(line: &'a [u8]) -> Self {
        let mut spans = [(0, 0); MAX_TOKENS];
        let mut n = 0;
        let mut i = 0;
        while i < line.len() && n < MAX_TOKENS {
            if line[i] == b' ' {
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && line[i] != b' ' {
                i += 1;
            }
            spans[n] = (start, i);
            n += 1;
        }
        Tokens { line, spans, n }
    }

    /// The tokens kept (at most [`MAX_TOKENS`]).
    pub(crate) fn kept(&self) -> usize {
        self.n
    }

    /// memcached's `ntokens`: the tokens kept plus its terminal token. Checks on token
    /// counts are written against this so they read like `proto_text.c`.
    pub(crate) fn ntokens(&self) -> usize {
        self.n + 1
    }

    /// Token `i` (`i < self.n`).
    pub(crate) fn get(&self, i: usize) -> &'a [u8] {
        let (s, e) = self.spans[i];
        &self.line[s..e]
    }

    /// The tokens from `from` on (empty if there are fewer).
    pub(crate) fn collect_from(&self, from: usize, out: &mut [&'a [u8]; MAX_TOKENS]) -> usize {
        let mut k = 0;
        for i in from..self.n {
            out[k] = self.get(i);
            k += 1;
        }
        k
    }

    /// The raw line from the start of token `i` to its end (all of it, past the 23 kept
    /// tokens); empty if there is no token `i`.
    pub(crate) fn raw_from(&self, i: usize) -> &'a [u8] {
        if i < self.n {
            &self.line[self.spans[i].0..]
        } else {
            &[]
        }
    }

    /// memcached's `set_noreply_maybe`: the last kept token is `noreply`.
    pub(crate) fn reply(&self) -> crate::memcache::Reply {
        if self.n > 0 && self.get(self.n - 1) == b"noreply" {
            crate::memcache::Reply::No
        } else {
            crate::memcache::Reply::Yes
        }
    }
}

pub(crate) type Parsed<'a> = Result<Option<(Request<'a>, usize)>, ParseError<'a>>;

/// The data block after a storage command's line.
pub(crate) enum Data<'a> {
    /// Not all `vlen + 2` bytes are buffered yet.
    Incomplete,
    /// The `vlen + 2` bytes do not end in `\r\n`: memcached has read them and drops them with
    /// `bad data chunk`.
    Bad,
    /// The value, its `\r\n` checked.
    Value(&'a [u8]),
}

/// The data block of `vlen` bytes after a line of `line_len` bytes.
pub(crate) fn data_block(buf: &[u8], line_len: usize, vlen: usize) -> Data<'_> {
    let end = line_len + vlen + 2;
    if buf.len() < end {
        Data::Incomplete
    } else if &buf[end - 2..end] != b"\r\n" {
        Data::Bad
    } else {
        Data::Value(&buf[line_len..line_len + vlen])
    }
}
