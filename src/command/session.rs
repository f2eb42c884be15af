//! The protocol state of one connection, and the single entry point the server calls.
//!
//! The server hands [`Session::serve_one`] the unparsed input and gets back how much was used
//! and what to do next; it never learns which protocol the bytes were. A session starts in
//! the dialect of the listener that accepted it. Per-connection protocol settings live here.

use std::sync::Arc;

use super::resp::RespSession;
use super::{memcache, resp, Context, Flow};
use crate::server::ConnInfo;

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// memcached text and meta commands.
    MemcacheText,
    /// RESP2/RESP3 (Redis).
    Resp,
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
    /// RESP state, present on RESP connections.
    resp: Option<Box<RespSession>>,
}

impl Session {
    /// A session on a memcached listener.
    pub fn memcache() -> Session {
        Session {
            dialect: Dialect::MemcacheText,
            resp: None,
        }
    }

    /// A session on a RESP listener; authenticated from the start when no password is set.
    pub fn resp(info: Arc<ConnInfo>, password_required: bool) -> Session {
        let mut state = RespSession::new(info);
        state.authenticated = !password_required;
        Session {
            dialect: Dialect::Resp,
            resp: Some(Box::new(state)),
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
        match self.dialect {
            Dialect::MemcacheText => {
                let _gate = ctx.shared.gates.shared(ctx.worker);
                memcache::serve_one(input, ctx, out)
            }
            Dialect::Resp => {
                let state = self
                    .resp
                    .as_deref_mut()
                    .expect("RESP sessions carry RESP state");
                resp::serve_one(state, input, ctx, out)
            }
        }
    }
}
