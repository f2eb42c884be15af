//! The protocol state of one connection, and the single entry point the server calls.
//!
//! The server hands [`Session::serve_one`] the unparsed input and gets back how much was used
//! and what to do next; it never learns which protocol the bytes were. A memcached connection
//! picks its dialect from its first byte, as memcached's default `-B auto` does: 0x80 (the
//! binary request magic) means binary, anything else text and meta. With SASL enabled the
//! connection is binary whatever it sends, as memcached refuses the text protocol then.
//! Per-connection protocol state (the dialect, SASL authentication) lives here.

use ferrocache_protocol::binary::REQUEST_MAGIC;

use super::{binary, memcache, Context, Flow};
use crate::auth::SaslConn;

/// Which protocol a connection speaks.
// The shared prefix goes once RESP joins the enum; the names stay the ones the lead's RESP
// branch uses (`Dialect::MemcacheText`), so the merge is mechanical.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A memcached connection that has not sent its first byte yet.
    MemcacheUndecided,
    /// memcached text and meta commands.
    MemcacheText,
    /// memcached's binary protocol.
    MemcacheBinary,
}

/// One served request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Input bytes the request used (may be 0 only when `flow` closes the connection).
    pub consumed: usize,
    /// Further input bytes to discard as they arrive (the value of a refused request).
    pub swallow: usize,
    pub flow: Flow,
}

/// Per-connection protocol state.
#[derive(Debug)]
pub struct Session {
    dialect: Dialect,
    /// SASL state of a binary connection (unused unless SASL is enabled).
    sasl: SaslConn,
}

impl Session {
    /// A session on a memcached listener; the first byte decides text or binary.
    pub fn memcache() -> Session {
        Session {
            dialect: Dialect::MemcacheUndecided,
            sasl: SaslConn::default(),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Serves the request at the front of `input`, appending its reply to `out`.
    /// `None` means the request is not complete yet.
    pub fn serve_one(
        &mut self,
        input: &[u8],
        ctx: &Context<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Served> {
        if self.dialect == Dialect::MemcacheUndecided {
            let first = *input.first()?;
            self.dialect = if ctx.shared.config.sasl.enabled || first == REQUEST_MAGIC {
                Dialect::MemcacheBinary
            } else {
                Dialect::MemcacheText
            };
        }
        match self.dialect {
            Dialect::MemcacheText | Dialect::MemcacheUndecided => {
                memcache::serve_one(input, ctx, out)
            }
            Dialect::MemcacheBinary => binary::serve_one(input, ctx, &mut self.sasl, out),
        }
    }
}
