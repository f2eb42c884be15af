//! The protocol state of one connection, and the single entry point the server calls.
//!
//! The server hands [`Session::serve_one`] the unparsed input and gets back how much was used
//! and what to do next; it never learns which protocol the bytes were. A RESP connection is
//! RESP from the start (its listener decides). A memcached connection picks its dialect from
//! its first byte, as memcached's default `-B auto` does: 0x80 (the binary request magic)
//! means binary, anything else text and meta. With SASL enabled the connection is binary
//! whatever it sends, as memcached refuses the text protocol then; with text-protocol
//! authentication (`-Y`) it is text whatever it sends, and must log in first. Per-connection
//! protocol state (the dialect, SASL and text logins, RESP settings) lives here.

use std::sync::Arc;

use ferrocache_protocol::binary::REQUEST_MAGIC;

use super::mc_acl::Login;
use super::resp::RespSession;
use super::{binary, memcache, resp, Context, Flow};
use crate::auth::SaslConn;
use crate::conn_info::ConnInfo;

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A memcached connection that has not sent its first byte yet.
    MemcacheUndecided,
    /// memcached text and meta commands.
    MemcacheText,
    /// memcached's binary protocol.
    MemcacheBinary,
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
    /// SASL state of a binary connection (unused unless SASL is enabled).
    sasl: SaslConn,
    /// Who a text connection logged in as, with text-protocol authentication (`-Y`).
    text_login: Option<Login>,
    /// RESP state, present on RESP connections.
    resp: Option<Box<RespSession>>,
}

impl Session {
    /// A session on a memcached listener; the first byte decides text or binary.
    pub fn memcache() -> Session {
        Session {
            dialect: Dialect::MemcacheUndecided,
            sasl: SaslConn::default(),
            text_login: None,
            resp: None,
        }
    }

    /// A session on a RESP listener; authenticated from the start when no password is set.
    pub fn resp(info: Arc<ConnInfo>, password_required: bool) -> Session {
        let mut state = RespSession::new(info);
        state.authenticated = !password_required;
        Session {
            dialect: Dialect::Resp,
            sasl: SaslConn::default(),
            text_login: None,
            resp: Some(Box::new(state)),
        }
    }

    /// The client's verified TLS certificate (DER), once its handshake is done: a RESP
    /// session may be authenticated by it (`tls.auth_clients_user`).
    pub fn peer_certificate(&mut self, der: &[u8], ctx: &Context<'_>) {
        if let Some(state) = self.resp.as_deref_mut() {
            super::resp::authenticate_by_certificate(state, ctx, der);
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Removes the connection's pub/sub subscriptions (it is closing).
    pub fn forget_subscriptions(&mut self, registry: &crate::pubsub::Registry) {
        if let Some(state) = self.resp.as_deref_mut() {
            state.forget_subscriptions(registry);
        }
    }

    /// The blocking pop the connection is parked in, if any.
    pub fn parked(&self) -> Option<&crate::blocking::Parked> {
        self.resp.as_deref().and_then(|state| state.parked.as_ref())
    }

    /// Ends the parking (served, timed out or closing) and returns what it was.
    pub fn take_parked(&mut self) -> Option<crate::blocking::Parked> {
        self.resp
            .as_deref_mut()
            .and_then(|state| state.parked.take())
    }

    /// The `PSYNC` a RESP connection sent (it is becoming a replica link).
    pub fn take_psync(&mut self) -> Option<crate::replication::primary::Psync> {
        self.resp
            .as_deref_mut()
            .and_then(|state| state.psync.take())
    }

    /// The RESP state, on RESP connections.
    pub fn resp_state(&self) -> Option<&RespSession> {
        self.resp.as_deref()
    }

    /// Bytes the incomplete request at the front of the input is known to need in all, so the
    /// connection can make room for a large value as it arrives (0 when unknown).
    pub fn input_needed(&self) -> usize {
        self.resp
            .as_deref()
            .map_or(0, |state| state.parse_progress.needed())
    }

    /// Bytes the session holds beyond the connection's buffers: a transaction's queued
    /// commands (counted with the buffers against `maxmemory-clients`).
    pub fn held_bytes(&self) -> usize {
        self.resp
            .as_deref()
            .filter(|state| state.queued.is_some())
            .map_or(0, |state| state.queued_bytes)
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
            let sasl = &ctx.shared.config.sasl;
            self.dialect = if !sasl.auth_file.as_os_str().is_empty() {
                Dialect::MemcacheText
            } else if sasl.enabled || first == REQUEST_MAGIC {
                Dialect::MemcacheBinary
            } else {
                Dialect::MemcacheText
            };
        }
        match self.dialect {
            Dialect::MemcacheText | Dialect::MemcacheUndecided => {
                let _gate = ctx.shared.gates.shared(ctx.worker);
                let auth_file = &ctx.shared.config.sasl.auth_file;
                if self.text_login.is_none() && !auth_file.as_os_str().is_empty() {
                    return memcache::serve_login(input, ctx, &mut self.text_login, out);
                }
                memcache::serve_one(input, ctx, self.text_login.as_ref(), out)
            }
            Dialect::MemcacheBinary => {
                let _gate = ctx.shared.gates.shared(ctx.worker);
                binary::serve_one(input, ctx, &mut self.sasl, out)
            }
            Dialect::Resp => {
                let state = self
                    .resp
                    .as_deref_mut()
                    .expect("RESP sessions carry RESP state");
                let served = resp::serve_one(state, input, ctx, out)?;
                // What this command published for this very connection (its own keyspace
                // notifications in RESP3, a PUBLISH to a channel it subscribes to) follows
                // its reply; memcached sessions never subscribe.
                crate::pubsub::outbox::append_own_messages(state.info.id, out);
                Some(served)
            }
        }
    }
}
