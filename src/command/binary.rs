//! memcached's binary protocol: each request becomes the same store calls as its text twin
//! (through [`super::kv`]) and memcached 1.6's exact response frames.
//!
//! Replies follow `proto_bin.c` and were compared byte for byte with memcached 1.6.18:
//! - the response echoes the request's opcode byte and opaque; a success that changed an item
//!   carries its new cas, errors carry cas 0 and memcached's text as body;
//! - quiet opcodes leave out their success reply and a quiet get its miss, never an error
//!   (a GetQ/GetKQ hit is still sent); replies leave when the read buffer is drained, so a
//!   batch of quiet gets ends with the Noop after it;
//! - a frame the parser refuses closes the connection where memcached closes it;
//! - with SASL enabled, every command but the SASL ones and Version gets Auth failure and
//!   the connection closes, until a SASL Auth succeeds.
//! - SASL PLAIN accepts the password file's users and the ACL users that have a password; an
//!   ACL user's rules then apply (a memcached command counts as its RESP twin: get, getex,
//!   set, del, incrby, expire, flushall, info), and a refusal is Auth failure on an open
//!   connection.
//!
//! This module never parses bytes (`ferrocache_protocol::binary` did) and never touches the
//! store except through `kv`.

use ferrocache_protocol::binary::{
    self as proto, needs_auth, write_error, write_error_text, write_item, write_item_head,
    write_response, Command, Header, Opcode, ParseError, ResponseHead, Status,
};
use ferrocache_protocol::memcache::StoreMode;

use super::compat::MEMCACHED_VERSION;
use super::stats::{self, Group, StatSink};
use super::{kv, mc_acl, Context, Flow, Served};
use crate::acl::Access;
use crate::auth::{Credentials, SaslConn, SaslReply};
use crate::metrics::latency::{Ending, Proto};
use crate::metrics::WorkerStats;
use crate::replication::WriteRefusal;
use crate::store::Outcome;
use crate::zerocopy;

/// Parses and executes the frame at the front of `input`; `None` until one is complete.
pub fn serve_one(
    input: &[u8],
    ctx: &Context<'_>,
    sasl: &mut SaslConn,
    out: &mut Vec<u8>,
) -> Option<Served> {
    match proto::parse(input, &ctx.shared.limits) {
        Ok(None) => None,
        Ok(Some((request, consumed))) => {
            if let Some(refusal) = unauthenticated(&request.header, ctx, sasl, out) {
                return Some(refusal);
            }
            if ctx.shared.persistence.is_loading() && !runs_while_loading(&request.command) {
                write_error(out, &request.header, Status::TemporaryFailure);
                return Some(Served {
                    consumed,
                    swallow: 0,
                    flow: Flow::Continue,
                });
            }
            if acl_denies(&request.command, ctx, sasl) {
                write_error(out, &request.header, Status::AuthError);
                return Some(Served {
                    consumed,
                    swallow: 0,
                    flow: Flow::Continue,
                });
            }
            let table = &ctx.shared.latency[ctx.worker];
            let lap = table.lap_start();
            let start = out.len();
            let name = opcode_name(request.header.opcode);
            let pool = if cfg!(feature = "latency") {
                command_key(&request.command).map(|key| ctx.shared.pool_of(key))
            } else {
                None
            };
            let flow = execute(&request.header, request.command, ctx, sasl, out);
            // A response's status is bytes 6..8 of its header; anything but 0 (success), 1
            // (not found) and 2 (exists) is an error.
            let ending = match out.get(start + 6..start + 8) {
                Some([0, 0..=2]) | None => Ending::Answered,
                Some(_) => Ending::Failed,
            };
            table.record(Proto::Binary, name, pool, table.lap_stop(lap), ending);
            Some(Served {
                consumed,
                swallow: 0,
                flow,
            })
        }
        Err(error) => Some(rejected(&error, ctx, sasl, out)),
    }
}

/// The key a request names, for its pool's latency.
fn command_key<'a>(command: &Command<'a>) -> Option<&'a [u8]> {
    match command {
        Command::Get { key, .. }
        | Command::Touch { key, .. }
        | Command::Store { key, .. }
        | Command::Delete { key, .. }
        | Command::Arith { key, .. } => Some(key),
        _ => None,
    }
}

/// Whether the connection's ACL user may not run `command` (the password file's users may
/// run everything, as before ACLs).
fn acl_denies(command: &Command<'_>, ctx: &Context<'_>, sasl: &SaslConn) -> bool {
    let (command_name, key, access) = match command {
        Command::Get {
            key, touch: None, ..
        } => ("get", Some(*key), Access::Read),
        Command::Get { key, .. } => ("getex", Some(*key), Access::Write),
        Command::Touch { key, .. } => ("expire", Some(*key), Access::Write),
        Command::Store { key, .. } => ("set", Some(*key), Access::Write),
        Command::Delete { key, .. } => ("del", Some(*key), Access::Write),
        Command::Arith { key, .. } => ("incrby", Some(*key), Access::Write),
        Command::Flush { .. } => ("flushall", None, Access::Write),
        Command::Stat { .. } => ("info", None, Access::Read),
        _ => return false,
    };
    mc_acl::denies(
        &ctx.shared.acl,
        sasl.user(),
        false,
        command_name,
        key,
        access,
    )
}

/// Every name [`opcode_name`] gives (the latency registry's binary part).
pub(super) const OPCODE_NAMES: &[&str] = &[
    "get",
    "set",
    "add",
    "replace",
    "delete",
    "increment",
    "decrement",
    "quit",
    "flush",
    "noop",
    "version",
    "append",
    "prepend",
    "stat",
    "verbosity",
    "touch",
    "gat",
    "sasl_list_mechs",
    "sasl_auth",
    "sasl_step",
    "unknown",
];

/// The opcode's name in `protocol_binary.h`, lower-cased, quiet variants folded into their
/// loud one (the `cmd` label of `/metrics`).
fn opcode_name(opcode: u8) -> &'static str {
    use ferrocache_protocol::binary::Opcode::*;
    match ferrocache_protocol::binary::Opcode::from_byte(opcode) {
        Some(Get | GetQ | GetK | GetKQ) => "get",
        Some(Set | SetQ) => "set",
        Some(Add | AddQ) => "add",
        Some(Replace | ReplaceQ) => "replace",
        Some(Delete | DeleteQ) => "delete",
        Some(Increment | IncrementQ) => "increment",
        Some(Decrement | DecrementQ) => "decrement",
        Some(Quit | QuitQ) => "quit",
        Some(Flush | FlushQ) => "flush",
        Some(Noop) => "noop",
        Some(Version) => "version",
        Some(Append | AppendQ) => "append",
        Some(Prepend | PrependQ) => "prepend",
        Some(Stat) => "stat",
        Some(Verbosity) => "verbosity",
        Some(Touch) => "touch",
        Some(Gat | GatQ | GatK | GatKQ) => "gat",
        Some(SaslListMechs) => "sasl_list_mechs",
        Some(SaslAuth) => "sasl_auth",
        Some(SaslStep) => "sasl_step",
        None => "unknown",
    }
}

/// With SASL on and the connection not authenticated: Auth failure and close, for every
/// command memcached guards.
fn unauthenticated(
    header: &Header,
    ctx: &Context<'_>,
    sasl: &SaslConn,
    out: &mut Vec<u8>,
) -> Option<Served> {
    if !ctx.shared.config.sasl.enabled || sasl.is_authenticated() || !needs_auth(header.opcode) {
        return None;
    }
    write_error(out, header, Status::AuthError);
    Some(Served {
        consumed: 0,
        swallow: 0,
        flow: Flow::Close,
    })
}

/// Answers a frame the parser refused, in memcached's order of checks.
fn rejected(
    error: &ParseError<'_>,
    ctx: &Context<'_>,
    sasl: &SaslConn,
    out: &mut Vec<u8>,
) -> Served {
    let close = Served {
        consumed: 0,
        swallow: 0,
        flow: Flow::Close,
    };
    let (Some(header), Some(mut status)) = (error.header(), error.status()) else {
        log::debug!("closing a binary connection: {error}");
        return close;
    };
    // memcached checks the lengths before authentication, everything else after.
    if !matches!(error, ParseError::BadLengths { .. }) {
        if let Some(refusal) = unauthenticated(header, ctx, sasl, out) {
            return refusal;
        }
    }
    let is_sasl = matches!(
        Opcode::from_byte(header.opcode),
        Some(Opcode::SaslAuth | Opcode::SaslStep)
    );
    if let ParseError::TooLarge { .. } = error {
        if is_sasl {
            if !ctx.shared.config.sasl.enabled {
                status = Status::UnknownCommand;
            }
        } else {
            kv::refused_too_large(ctx, error.unlink_key());
        }
    }
    write_error(out, header, status);
    if error.closes_connection() {
        log::debug!("closing a binary connection: {error}");
        return close;
    }
    Served {
        consumed: error.consumed(),
        swallow: error.swallow(),
        flow: Flow::Continue,
    }
}

/// What runs while the snapshot loads: the connection's own commands, `stat` and SASL; the
/// rest get [`Status::TemporaryFailure`].
fn runs_while_loading(command: &Command<'_>) -> bool {
    matches!(
        command,
        Command::Quit { .. }
            | Command::Noop
            | Command::Version
            | Command::Stat { .. }
            | Command::SaslListMechs
            | Command::SaslAuth { .. }
            | Command::SaslStep { .. }
    )
}

/// Executes one parsed request, appending its response (if any) to `out`.
fn execute(
    header: &Header,
    command: Command<'_>,
    ctx: &Context<'_>,
    sasl: &mut SaslConn,
    out: &mut Vec<u8>,
) -> Flow {
    let ok = ResponseHead::to(header, Status::Success);
    let writes = matches!(
        command,
        Command::Get { touch: Some(_), .. }
            | Command::Touch { .. }
            | Command::Store { .. }
            | Command::Delete { .. }
            | Command::Arith { .. }
            | Command::Flush { .. }
    );
    if let Some(refusal) = writes.then(|| ctx.shared.write_refusal()).flatten() {
        let text: &[u8] = match refusal {
            WriteRefusal::ReadOnly => b"You can't write against a read only replica.",
            WriteRefusal::NoReplicas => b"Not enough good replicas to write.",
        };
        write_error_text(out, header, Status::NotStored, text);
        return Flow::Continue;
    }
    match command {
        Command::Get {
            key,
            touch,
            with_key,
            reply,
        } => {
            kv::get(ctx, key, touch, |view| match view {
                Some(item) if zerocopy::wants(item.value().len()) => {
                    // Sent from the segment while the socket drains (crate::zerocopy).
                    let value = item.value();
                    let head = ok.with_cas(item.cas());
                    let key = with_key.then_some(key);
                    write_item_head(out, head, item.flags(), key, value.len());
                    zerocopy::defer(out, item.pin_value(), value);
                }
                Some(item) => write_item(
                    out,
                    ok.with_cas(item.cas()),
                    item.flags(),
                    with_key.then_some(key),
                    item.value(),
                ),
                None if !reply.wanted() => {}
                // GetK/GATK misses carry the key and no text.
                None if with_key => write_response(
                    out,
                    ResponseHead::to(header, Status::KeyNotFound),
                    &[],
                    key,
                    &[],
                ),
                None => write_error(out, header, Status::KeyNotFound),
            });
        }
        Command::Touch { key, exptime } => {
            kv::touch_item(ctx, key, exptime, |view| match view {
                Some(item) => write_item(out, ok.with_cas(item.cas()), item.flags(), None, &[]),
                None => write_error(out, header, Status::KeyNotFound),
            });
        }
        Command::Store {
            mode,
            key,
            flags,
            exptime,
            value,
            cas_unique,
            reply,
        } => {
            let args = kv::StoreArgs {
                mode,
                key,
                flags,
                exptime,
                value,
                cas_unique,
            };
            match kv::store(ctx, args) {
                Outcome::Stored { cas } => {
                    if reply.wanted() {
                        write_response(out, ok.with_cas(cas), &[], &[], &[]);
                    }
                }
                Outcome::Exists => write_error(out, header, Status::KeyExists),
                Outcome::NotFound => write_error(out, header, Status::KeyNotFound),
                Outcome::OutOfMemory => write_error_text(
                    out,
                    header,
                    Status::OutOfMemory,
                    b"Out of memory allocating item",
                ),
                // memcached words a refused add as "exists" and a refused replace as "not
                // found" (`complete_update_bin`); an append that would outgrow the item
                // limit is "not stored".
                _ => {
                    let status = match mode {
                        StoreMode::Add => Status::KeyExists,
                        StoreMode::Replace => Status::KeyNotFound,
                        _ => Status::NotStored,
                    };
                    write_error(out, header, status);
                }
            }
        }
        Command::Delete {
            key,
            cas_unique,
            reply,
        } => match kv::delete(ctx, key, cas_unique) {
            Outcome::Deleted => {
                if reply.wanted() {
                    write_response(out, ok, &[], &[], &[]);
                }
            }
            Outcome::Exists => write_error(out, header, Status::KeyExists),
            _ => write_error(out, header, Status::KeyNotFound),
        },
        Command::Arith {
            direction,
            key,
            delta,
            create,
            cas_unique,
            reply,
        } => match kv::arith(ctx, direction, key, delta, cas_unique, create) {
            kv::ArithOutcome::Counter { value, cas, .. } => {
                if reply.wanted() {
                    write_response(out, ok.with_cas(cas), &[], &[], &value.to_be_bytes());
                }
            }
            kv::ArithOutcome::NotNumeric => write_error(out, header, Status::NonNumeric),
            kv::ArithOutcome::Failed(Outcome::Exists) => {
                write_error(out, header, Status::KeyExists)
            }
            kv::ArithOutcome::Failed(Outcome::NotFound) => {
                write_error(out, header, Status::KeyNotFound)
            }
            kv::ArithOutcome::Failed(Outcome::OutOfMemory) => write_error_text(
                out,
                header,
                Status::OutOfMemory,
                b"Out of memory incrementing value",
            ),
            _ => write_error(out, header, Status::NotStored),
        },
        Command::Quit { reply } => {
            if reply.wanted() {
                write_response(out, ok, &[], &[], &[]);
            }
            return Flow::Close;
        }
        Command::Flush { delay, reply } => match kv::flush_all(ctx, delay) {
            Ok(()) => {
                if reply.wanted() {
                    write_response(out, ok, &[], &[], &[]);
                }
            }
            // memcached answers a refused flush (-F) with Auth failure.
            Err(kv::FlushDisabled) => write_error(out, header, Status::AuthError),
        },
        Command::Noop => write_response(out, ok, &[], &[], &[]),
        Command::Version => write_response(out, ok, &[], &[], MEMCACHED_VERSION.as_bytes()),
        Command::Stat { group } => stat(header, group, ctx, out),
        Command::SaslListMechs => {
            if !ctx.shared.config.sasl.enabled {
                write_error(out, header, Status::UnknownCommand);
            } else {
                let mechanisms = sasl.list_mechanisms();
                write_response(out, ok, &[], &[], mechanisms);
            }
        }
        Command::SaslAuth { mechanism, data } | Command::SaslStep { mechanism, data } => {
            sasl_exchange(header, mechanism, data, ctx, sasl, out);
        }
    }
    Flow::Continue
}

/// SASL Auth and Step (`process_bin_complete_sasl_auth`).
fn sasl_exchange(
    header: &Header,
    mechanism: &[u8],
    data: &[u8],
    ctx: &Context<'_>,
    sasl: &mut SaslConn,
    out: &mut Vec<u8>,
) {
    if !ctx.shared.config.sasl.enabled {
        write_error(out, header, Status::UnknownCommand);
        return;
    }
    if mechanism.len() > proto::MAX_SASL_MECH_LEN {
        write_error(out, header, Status::InvalidArguments);
        return;
    }
    let users = mc_acl::AnyUser {
        file: &ctx.shared.users,
        acl: &ctx.shared.acl,
    };
    let users: &dyn Credentials = &users;
    let result = if header.opcode == Opcode::SaslAuth as u8 {
        sasl.start(users, mechanism, data)
    } else {
        sasl.step(users, data)
    };
    match result {
        SaslReply::Authenticated => {
            WorkerStats::incr(&ctx.stats.auth_cmds);
            write_response(
                out,
                ResponseHead::to(header, Status::Success),
                &[],
                &[],
                b"Authenticated",
            );
        }
        SaslReply::Continue => write_response(
            out,
            ResponseHead::to(header, Status::AuthContinue),
            &[],
            &[],
            &[],
        ),
        SaslReply::Failure => {
            WorkerStats::incr(&ctx.stats.auth_cmds);
            WorkerStats::incr(&ctx.stats.auth_errors);
            write_error(out, header, Status::AuthError);
        }
    }
}

/// Stat packets for one request: name as key, value as value.
struct StatPackets<'o, 'h> {
    out: &'o mut Vec<u8>,
    header: &'h Header,
}

impl StatSink for StatPackets<'_, '_> {
    fn stat(&mut self, name: &str, value: &[u8]) {
        proto::write_stat(self.out, self.header, name.as_bytes(), value);
    }
}

/// Stat with an optional group key (`process_bin_stat`): memcached matches `reset`,
/// `settings` and `detail` as prefixes and the other groups exactly; an unknown group (and
/// `detail`, which ferrocache does not keep) is Not found.
fn stat(header: &Header, group: &[u8], ctx: &Context<'_>, out: &mut Vec<u8>) {
    let group = if group.is_empty() {
        Group::General
    } else if group.starts_with(b"reset") {
        stats::reset(ctx);
        proto::write_stat(out, header, &[], &[]);
        return;
    } else if group.starts_with(b"settings") {
        Group::Settings
    } else {
        match group {
            b"items" => Group::Items,
            b"slabs" => Group::Slabs,
            b"sizes" => Group::Sizes,
            b"pools" => Group::Pools,
            b"latency" => Group::Latency,
            _ => {
                write_error(out, header, Status::KeyNotFound);
                return;
            }
        }
    };
    stats::emit(group, ctx, &mut StatPackets { out, header });
    proto::write_stat(out, header, &[], &[]);
}
