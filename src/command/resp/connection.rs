//! The connection commands: PING, ECHO, AUTH, HELLO, SELECT, QUIT, RESET (the CLIENT family is
//! in [`super::client`]).
//!
//! They change only the session they run on (its protocol version, its user, its name) and
//! never the store.

use super::client::valid_client_name;
use super::error::RespError;
use super::{err, is, parse_i64, Call, RespSession};
use crate::command::compat::REDIS_VERSION;
use crate::command::Flow;
use ferrocache_protocol::resp::{Encoder, RespVersion};

/// PING [message]
pub fn ping(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.args.len() <= 2 && call.session.subscribed() && !enc.is_resp3() {
        // In RESP2 subscribed mode PING answers as a pub/sub message would.
        enc.array(2);
        enc.bulk(b"pong");
        enc.bulk(call.args.get(1).map_or(&b""[..], |m| &m[..]));
        return Ok(Flow::Continue);
    }
    match call.args.len() {
        1 => enc.simple("PONG"),
        2 => enc.bulk(call.arg(1)),
        _ => enc.error("ERR wrong number of arguments for 'ping' command"),
    }
    Ok(Flow::Continue)
}

/// ECHO message
pub fn echo(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    enc.bulk(call.arg(1));
    Ok(Flow::Continue)
}

/// AUTH [username] password
pub fn auth(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.args.len() > 3 {
        return Err(err::SYNTAX.into());
    }
    if call.ctx.shared.acl.default_opens_without_password() && call.args.len() == 2 {
        return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure \
             your configuration is correct?".into());
    }
    let (user, password) = if call.args.len() == 3 {
        (call.arg(1).to_vec(), call.arg(2).to_vec())
    } else {
        (b"default".to_vec(), call.arg(1).to_vec())
    };
    if super::acl::authenticate(call, &user, &password) {
        enc.ok();
    } else {
        enc.error("WRONGPASS invalid username-password pair or user is disabled.");
    }
    Ok(Flow::Continue)
}

/// HELLO [protover [AUTH username password] [SETNAME name]]
pub fn hello(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let mut version = call.session.version;
    if call.args.len() > 1 {
        match parse_i64(call.arg(1)) {
            Some(2) => version = RespVersion::Resp2,
            Some(3) => version = RespVersion::Resp3,
            Some(_) => {
                return Err("NOPROTO unsupported protocol version".into());
            }
            None => {
                return Err("ERR Protocol version is not an integer or out of range".into());
            }
        }
    }
    let mut i = 2;
    let mut name = None;
    while i < call.args.len() {
        if is(call.arg(i), "AUTH") && i + 2 < call.args.len() {
            let (user, password) = (call.arg(i + 1).to_vec(), call.arg(i + 2).to_vec());
            if !super::acl::authenticate(call, &user, &password) {
                return Err("WRONGPASS invalid username-password pair or user is disabled.".into());
            }
            i += 3;
        } else if is(call.arg(i), "SETNAME") && i + 1 < call.args.len() {
            name = Some(call.arg(i + 1).to_vec());
            i += 2;
        } else {
            return Err(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(call.arg(i))
            )
            .into());
        }
    }
    if !call.session.authenticated {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(name) = name {
        if !valid_client_name(&name) {
            return Err(
                "ERR Client names cannot contain spaces, newlines or special characters.".into(),
            );
        }
        call.session.set_name(name);
    }
    call.session.version = version;
    enc.version = version;
    enc.map(7);
    enc.bulk(b"server");
    enc.bulk(b"redis");
    enc.bulk(b"version");
    enc.bulk(REDIS_VERSION.as_bytes());
    enc.bulk(b"proto");
    enc.integer(if version == RespVersion::Resp3 { 3 } else { 2 });
    enc.bulk(b"id");
    enc.integer(call.session.info.id as i64);
    enc.bulk(b"mode");
    enc.bulk(b"standalone");
    enc.bulk(b"role");
    enc.bulk(b"master");
    enc.bulk(b"modules");
    enc.array(0);
    Ok(Flow::Continue)
}

/// SELECT index: only database 0 exists.
pub fn select(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    match parse_i64(call.arg(1)) {
        Some(0) => enc.ok(),
        Some(_) => enc.error("ERR DB index is out of range"),
        None => enc.error(err::NOT_INTEGER),
    }
    Ok(Flow::Continue)
}

/// QUIT
pub fn quit(_call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    enc.ok();
    Ok(Flow::Close)
}

/// RESET: back to a fresh connection's state.
pub fn reset(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let info = call.session.info.clone();
    info.client.reset_flags();
    info.client.set_user("default");
    *call.session = RespSession::new(info);
    call.session.authenticated = call.ctx.shared.acl.default_opens_without_password();
    call.session.set_name(Vec::new());
    enc.version = RespVersion::Resp2;
    enc.simple("RESET");
    Ok(Flow::Continue)
}
