//! ACL on RESP: the permission check every command passes before it runs (NOPERM errors and
//! ACL LOG entries), and the ACL command (WHOAMI, USERS, LIST, GETUSER, SETUSER, DELUSER,
//! CAT, LOG, GENPASS, DRYRUN, SAVE, LOAD) with redis-server 7.0.15's replies and errors.
//!
//! The user model and rule language live in [`crate::acl`]; this module only maps RESP
//! requests onto command names, keys and channels, and never changes a user's rules itself.

use std::sync::Arc;

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::spec::{command_keys, CommandSpec, Flags, Registry};
use super::{Call, RespSession};
use crate::acl::{Access, Acl, Denial, LogEntry, User};
use crate::command::{Context, Flow};

/// What the check decided about one command.
pub enum Verdict {
    Allowed,
    /// Refused: the error line to send.
    Denied(String),
    /// The connection's user was deleted: close it (Redis frees such clients).
    UserGone,
}

/// The catalogue name of a command for the permission check (`acl|whoami` for ACL's
/// subcommands).
fn entry_name(spec: &CommandSpec, args: &[std::borrow::Cow<'_, [u8]>]) -> String {
    if spec.name == "acl" && args.len() > 1 {
        format!(
            "acl|{}",
            String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
        )
    } else {
        spec.name.to_string()
    }
}

/// Whether `user` may run `args` (a command `spec` names): the first reason it may not.
pub fn denial(
    user: &User,
    acl: &Acl,
    spec: &CommandSpec,
    args: &[std::borrow::Cow<'_, [u8]>],
) -> Option<Denial> {
    if user.unrestricted() {
        return None;
    }
    let name = entry_name(spec, args);
    match acl.catalogue.find(&name) {
        Some(index) if user.may_run(index) => {}
        // An unknown ACL subcommand: the handler answers with its error.
        None if spec.name == "acl" => {}
        _ => return Some(Denial::Command(name)),
    }
    let keys = command_keys(spec, args);
    let stores = spec.flags.contains(Flags::WRITE) && spec.name.ends_with("store");
    for (i, key) in keys.iter().enumerate() {
        let access = if spec.flags.contains(Flags::WRITE) && !(stores && i > 0) {
            Access::Write
        } else {
            Access::Read
        };
        if !user.may_access_key(key, access) {
            return Some(Denial::Key(key.to_vec()));
        }
    }
    let (channels, is_pattern): (&[std::borrow::Cow<'_, [u8]>], bool) = match spec.name {
        "publish" | "spublish" => (&args[1..2], false),
        "subscribe" | "ssubscribe" => (&args[1..], false),
        "psubscribe" => (&args[1..], true),
        _ => (&[], false),
    };
    channels
        .iter()
        .find(|c| !user.may_access_channel(c, is_pattern))
        .map(|c| Denial::Channel(c.to_vec()))
}

/// The connection's user, looked up again when the ACL changed since the last command.
pub fn current_user(session: &mut RespSession, ctx: &Context<'_>) -> Option<Arc<User>> {
    let generation = ctx.shared.acl.generation();
    if session.acl_generation != generation || session.user.is_none() {
        session.user = ctx.shared.acl.user(&session.user_name);
        session.acl_generation = generation;
    }
    session.user.clone()
}

/// The check run before every command that needs authentication.
pub fn check(
    session: &mut RespSession,
    ctx: &Context<'_>,
    spec: &CommandSpec,
    args: &[std::borrow::Cow<'_, [u8]>],
) -> Verdict {
    let Some(user) = current_user(session, ctx) else {
        return Verdict::UserGone;
    };
    if user.unrestricted() {
        return Verdict::Allowed;
    }
    let found = denial(&user, &ctx.shared.acl.read(), spec, args);
    let Some(found) = found else {
        return Verdict::Allowed;
    };
    let (reason, object, message) = match &found {
        Denial::Command(name) => (
            "command",
            name.clone(),
            format!("NOPERM this user has no permissions to run the '{name}' command"),
        ),
        Denial::Key(key) => (
            "key",
            String::from_utf8_lossy(key).into_owned(),
            "NOPERM this user has no permissions to access one of the keys used as arguments"
                .to_string(),
        ),
        Denial::Channel(channel) => (
            "channel",
            String::from_utf8_lossy(channel).into_owned(),
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .to_string(),
        ),
    };
    // The log's client-info names the refused command, as Redis's does.
    session.publish_client_state(args);
    log(session, ctx, reason, object, &user.name);
    Verdict::Denied(message)
}

/// EXEC checks each queued command again (the rules may have changed since it was queued):
/// the refusal Redis 7.0 answers in place of that command's reply, logged with context
/// `multi`. None when the command may run.
pub fn refused_at_exec(
    commands: &Registry,
    session: &mut RespSession,
    ctx: &Context<'_>,
    args: &[std::borrow::Cow<'_, [u8]>],
) -> Option<String> {
    let user = current_user(session, ctx)?;
    if user.unrestricted() {
        return None;
    }
    let spec = commands.lookup(&args.first()?.to_ascii_lowercase())?;
    let found = denial(&user, &ctx.shared.acl.read(), spec, args)?;
    let (reason, object, why) = match found {
        Denial::Command(name) => (
            "command",
            name,
            "no permission to execute the command or subcommand",
        ),
        Denial::Key(key) => (
            "key",
            String::from_utf8_lossy(&key).into_owned(),
            "no permission to touch the specified keys",
        ),
        Denial::Channel(channel) => (
            "channel",
            String::from_utf8_lossy(&channel).into_owned(),
            "no permission to access one of the channels used as arguments",
        ),
    };
    ctx.shared.acl.log_denial(LogEntry {
        count: 1,
        reason,
        context: "multi",
        object,
        username: user.name.clone(),
        created_ms: ctx.now_ms,
        updated_ms: ctx.now_ms,
        client_info: super::client::client_line(ctx.now_ms, &session.info),
    });
    Some(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {why}"
    ))
}

/// Adds an ACL LOG entry for this connection.
pub fn log(
    session: &RespSession,
    ctx: &Context<'_>,
    reason: &'static str,
    object: String,
    user: &str,
) {
    ctx.shared.acl.log_denial(LogEntry {
        count: 1,
        reason,
        context: if session.queued.is_some() {
            "multi"
        } else {
            "toplevel"
        },
        object,
        username: user.to_owned(),
        created_ms: ctx.now_ms,
        updated_ms: ctx.now_ms,
        client_info: super::client::client_line(ctx.now_ms, &session.info),
    });
}

/// Authenticates the connection as `user` with `password` (AUTH, HELLO AUTH); on failure the
/// attempt is logged (reason `auth`) and false returned.
pub fn authenticate(call: &mut Call<'_, '_>, user: &[u8], password: &[u8]) -> bool {
    let name = String::from_utf8_lossy(user).into_owned();
    match call.ctx.shared.acl.user(&name) {
        Some(found) if found.password_ok(password) => {
            call.session.info.client.set_user(&name);
            call.session.user_name = name;
            call.session.user = Some(found);
            call.session.acl_generation = call.ctx.shared.acl.generation();
            call.session.authenticated = true;
            true
        }
        _ => {
            call.session.publish_client_state(call.args);
            log(call.session, call.ctx, "auth", "AUTH".into(), &name);
            false
        }
    }
}

/// With `tls.auth_clients_user = "CN"`: a client whose verified certificate's common name is
/// an ACL user that is on runs as that user, without AUTH (valkey 8.1). Other clients stay
/// as they were (the default user, or unauthenticated).
pub fn authenticate_by_certificate(session: &mut RespSession, ctx: &Context<'_>, der: &[u8]) {
    let Some(tls) = &ctx.shared.tls else {
        return;
    };
    if tls.certificate_user() != crate::tls::CertificateUser::CommonName {
        return;
    }
    let Some(name) = crate::tls::common_name(der) else {
        return;
    };
    match ctx.shared.acl.user(&name) {
        Some(user) if user.enabled => {
            session.info.client.set_user(&name);
            session.user_name = name;
            session.user = Some(user);
            session.acl_generation = ctx.shared.acl.generation();
            session.authenticated = true;
        }
        _ => log::info!(
            "{}: certificate for {name:?}, which is no ACL user that is on",
            session.info.peer
        ),
    }
}

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// Largest ACL GENPASS size in bits (Redis's GENPASS_MAX_BITS).
const GENPASS_MAX_BITS: i64 = 4096;

/// ACL <subcommand> ...
pub fn acl(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let sub = call.arg(1).to_ascii_lowercase();
    let argc = call.args.len();
    let shared = call.ctx.shared;
    match (sub.as_slice(), argc) {
        (b"whoami", 2) => enc.bulk(call.session.user_name.as_bytes()),
        (b"users", 2) => {
            let acl = shared.acl.read();
            let names: Vec<String> = acl.users().map(|u| u.name.clone()).collect();
            enc.array(names.len());
            for name in names {
                enc.bulk(name.as_bytes());
            }
        }
        (b"list", 2) => {
            let acl = shared.acl.read();
            let lines: Vec<String> = acl.users().map(|u| u.describe()).collect();
            enc.array(lines.len());
            for line in lines {
                enc.bulk(line.as_bytes());
            }
        }
        (b"getuser", 3) => match shared.acl.user(&String::from_utf8_lossy(call.arg(2))) {
            None => enc.null(),
            Some(user) => getuser(&user, enc),
        },
        (b"setuser", n) if n >= 3 => {
            let name = String::from_utf8_lossy(call.arg(2)).into_owned();
            let rules: Vec<String> = call.args[3..]
                .iter()
                .map(|r| String::from_utf8_lossy(r).into_owned())
                .collect();
            let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
            match shared.acl.change(|acl| acl.set_user(&name, &rules)) {
                Ok(()) => enc.ok(),
                Err(e) => enc.error(&format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    e.rule, e.error
                )),
            }
        }
        (b"deluser", n) if n >= 3 => {
            let names: Vec<String> = call.args[2..]
                .iter()
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            if names.iter().any(|n| n == "default") {
                enc.error("ERR The 'default' user cannot be removed");
            } else {
                let deleted = shared
                    .acl
                    .change(|acl| names.iter().filter(|n| acl.delete_user(n)).count());
                enc.integer(deleted as i64);
            }
        }
        (b"cat", 2) => {
            enc.array(crate::acl::CATEGORIES.len());
            for category in crate::acl::CATEGORIES {
                enc.bulk(category.as_bytes());
            }
        }
        (b"cat", 3) => {
            let name = String::from_utf8_lossy(call.arg(2)).to_ascii_lowercase();
            match crate::acl::category_bit(&name) {
                None => enc.error(&format!("ERR Unknown category '{name}'")),
                Some(bit) => {
                    let acl = shared.acl.read();
                    let names: Vec<&str> = acl
                        .catalogue
                        .commands
                        .iter()
                        .filter(|c| c.categories & bit != 0)
                        .map(|c| c.name.as_str())
                        .collect();
                    enc.array(names.len());
                    for name in names {
                        enc.bulk(name.as_bytes());
                    }
                }
            }
        }
        (b"log", 2 | 3) => acl_log(call, enc),
        (b"genpass", 2 | 3) => {
            let bits = if argc == 3 {
                super::parse_i64(call.arg(2)).filter(|b| (1..=GENPASS_MAX_BITS).contains(b))
            } else {
                Some(256)
            };
            match bits {
                None => enc.error(&format!(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {GENPASS_MAX_BITS}"
                )),
                Some(bits) => {
                    let chars = (bits as usize).div_ceil(4);
                    let mut random = vec![0u8; chars.div_ceil(2)];
                    if getrandom::getrandom(&mut random).is_err() {
                        enc.error("ERR cannot read random bytes");
                    } else {
                        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
                        enc.bulk(&hex.as_bytes()[..chars]);
                    }
                }
            }
        }
        (b"dryrun", n) if n >= 4 => dryrun(call, enc),
        (b"save" | b"load", 2) if shared.config.acl.file.as_os_str().is_empty() => {
            enc.error(NO_ACL_FILE)
        }
        (b"save", 2) => {
            let lines: Vec<String> = shared.acl.read().users().map(|u| u.describe()).collect();
            let path = &shared.config.acl.file;
            match crate::acl::file::save(path, &lines) {
                Ok(()) => enc.ok(),
                Err(e) => {
                    log::warn!("ACL SAVE: {e}");
                    enc.error("ERR There was an error trying to save the ACLs. Please check the server logs for more information");
                }
            }
        }
        (b"load", 2) => {
            let loaded = crate::acl::file::load(
                &shared.config.acl.file,
                call.commands.acl_catalogue(),
                &shared.config.resp.requirepass,
            );
            match loaded {
                Ok(acl) => {
                    shared.acl.change(|current| current.replace_users(acl));
                    enc.ok();
                }
                Err(e) => enc.error(&format!("ERR {e}")),
            }
        }
        _ => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Ok(Flow::Continue)
}

/// ACL GETUSER's map, as Redis 7.0 shapes it.
fn getuser(user: &User, enc: &mut Encoder<'_>) {
    enc.map(6);
    enc.bulk(b"flags");
    let mut flags = vec![if user.enabled { "on" } else { "off" }];
    if user.nopass {
        flags.push("nopass");
    }
    enc.array(flags.len());
    for flag in flags {
        enc.bulk(flag.as_bytes());
    }
    enc.bulk(b"passwords");
    enc.array(user.passwords.len());
    for digest in &user.passwords {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        enc.bulk(hex.as_bytes());
    }
    enc.bulk(b"commands");
    enc.bulk(user.command_description().as_bytes());
    enc.bulk(b"keys");
    enc.bulk(user.key_rules().join(" ").as_bytes());
    enc.bulk(b"channels");
    let channels = user.channel_rules();
    let shown: Vec<&String> = channels.iter().filter(|c| *c != "resetchannels").collect();
    let shown: Vec<&str> = shown.iter().map(|c| c.as_str()).collect();
    enc.bulk(shown.join(" ").as_bytes());
    enc.bulk(b"selectors");
    enc.array(0);
}

/// ACL LOG [count | RESET]
fn acl_log(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) {
    let shared = call.ctx.shared;
    let count = if call.args.len() == 3 {
        if call.arg(2).eq_ignore_ascii_case(b"reset") {
            shared.acl.change(Acl::reset_log);
            enc.ok();
            return;
        }
        match super::parse_i64(call.arg(2)) {
            Some(n) if n >= 0 => n as usize,
            _ => {
                enc.error("ERR value is out of range, must be positive");
                return;
            }
        }
    } else {
        10
    };
    let acl = shared.acl.read();
    let entries: Vec<&LogEntry> = acl.log().take(count).collect();
    enc.array(entries.len());
    for entry in entries {
        enc.map(7);
        enc.bulk(b"count");
        enc.integer(entry.count as i64);
        enc.bulk(b"reason");
        enc.bulk(entry.reason.as_bytes());
        enc.bulk(b"context");
        enc.bulk(entry.context.as_bytes());
        enc.bulk(b"object");
        enc.bulk(entry.object.as_bytes());
        enc.bulk(b"username");
        enc.bulk(entry.username.as_bytes());
        enc.bulk(b"age-seconds");
        enc.double(call.ctx.now_ms.saturating_sub(entry.created_ms) as f64 / 1000.0);
        enc.bulk(b"client-info");
        enc.bulk(entry.client_info.as_bytes());
    }
}

/// ACL DRYRUN user command [arg ...]
fn dryrun(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) {
    let name = String::from_utf8_lossy(call.arg(2)).into_owned();
    let Some(user) = call.ctx.shared.acl.user(&name) else {
        enc.error(&format!("ERR User '{name}' not found"));
        return;
    };
    let args = &call.args[3..];
    let command = args[0].to_ascii_lowercase();
    let Some(spec) = call.commands.lookup(&command) else {
        enc.error(&format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(&args[0])
        ));
        return;
    };
    if !spec.arity_ok(args.len()) {
        enc.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        ));
        return;
    }
    let found = denial(&user, &call.ctx.shared.acl.read(), spec, args);
    match found {
        None => enc.ok(),
        Some(Denial::Command(name)) => {
            enc.bulk(format!("This user has no permissions to run the '{name}' command").as_bytes())
        }
        Some(Denial::Key(key)) => enc.bulk(
            format!(
                "This user has no permissions to access the '{}' key",
                String::from_utf8_lossy(&key)
            )
            .as_bytes(),
        ),
        Some(Denial::Channel(channel)) => enc.bulk(
            format!(
                "This user has no permissions to access the '{}' channel",
                String::from_utf8_lossy(&channel)
            )
            .as_bytes(),
        ),
    }
}
