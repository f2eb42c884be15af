//! memcached text commands: each request becomes store calls and memcached's exact replies.
//!
//! Meta commands are in [`super::meta`], `stats` rendering in [`super::stats`]. The store calls
//! and counters of the key-value commands live in [`super::kv`], shared with the binary
//! protocol; this module maps their outcomes to text replies, which follow `doc/protocol.txt`
//! and what memcached 1.6 answers on the wire.

use ferrocache_protocol::memcache::auth::{self, AuthRequest};
use ferrocache_protocol::memcache::{self as proto, reply, ParseError, Request, MAX_KEY_LEN};

use super::compat::MEMCACHED_VERSION;
use super::mc_acl::{self, Login};
use super::{kv, meta, stats, Context, Flow, Served};
use crate::metrics::latency::{Ending, Proto};
use crate::metrics::WorkerStats;
use crate::replication::WriteRefusal;
use crate::store::Outcome;
use crate::zerocopy;

/// The answer to a write on a read-only replica.
pub const READONLY_LINE: &[u8] = b"SERVER_ERROR You can't write against a read only replica.\r\n";

/// The answer to a write on a primary with too few good replicas.
pub const NOREPLICAS_LINE: &[u8] = b"SERVER_ERROR Not enough good replicas to write.\r\n";

/// Whether a request changes the store (refused on a read-only replica).
fn is_write(request: &Request<'_>) -> bool {
    matches!(
        request,
        Request::Get { touch: Some(_), .. }
            | Request::Store { .. }
            | Request::Delete { .. }
            | Request::Arith { .. }
            | Request::Touch { .. }
            | Request::FlushAll { .. }
            | Request::MetaSet { .. }
            | Request::MetaDelete(_)
            | Request::MetaArith(_)
    )
}

/// Executes one request, appending its reply to `out`.
pub fn execute(request: Request<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) -> Flow {
    let stats = ctx.stats;
    if ctx.shared.persistence.is_loading() && !runs_while_loading(&request) {
        out.extend_from_slice(reply::LOADING);
        return Flow::Continue;
    }
    if let Some(refusal) = is_write(&request)
        .then(|| ctx.shared.write_refusal())
        .flatten()
    {
        // memcached has no word for these: a server error (sent even with noreply, as
        // memcached sends errors) with Redis's meaning.
        out.extend_from_slice(match refusal {
            WriteRefusal::ReadOnly => READONLY_LINE,
            WriteRefusal::NoReplicas => NOREPLICAS_LINE,
        });
        return Flow::Continue;
    }
    match request {
        Request::Get { keys, cas, touch } => {
            for key in keys.iter() {
                let deferred = zerocopy::deferred_len();
                if out.len() + deferred > ctx.shared.clients.output_buffer_limit() {
                    // The connection closes over its output limit; the rest is not built.
                    return Flow::Continue;
                }
                kv::get(ctx, key, touch, |view| {
                    let Some(item) = view else { return };
                    let cas = cas.then(|| item.cas());
                    let value = item.value();
                    if zerocopy::wants(value.len()) {
                        // Sent from the segment while the socket drains (crate::zerocopy).
                        proto::write_value_header(out, key, item.flags(), value.len(), cas);
                        zerocopy::defer(out, item.pin_value(), value);
                        out.extend_from_slice(b"\r\n");
                    } else {
                        proto::write_value(out, key, item.flags(), value, cas);
                    }
                });
            }
            out.extend_from_slice(reply::END);
            Flow::Continue
        }
        Request::Store {
            mode,
            key,
            flags,
            exptime,
            value,
            cas_unique,
            reply: wanted,
        } => {
            let args = kv::StoreArgs {
                mode,
                key,
                flags,
                exptime,
                value,
                cas_unique,
            };
            let line = match kv::store(ctx, args) {
                Outcome::Stored { .. } => reply::STORED,
                Outcome::Exists => reply::EXISTS,
                Outcome::NotFound => reply::NOT_FOUND,
                // memcached answers an append that would outgrow the item limit with NOT_STORED.
                Outcome::TooLarge => reply::NOT_STORED,
                Outcome::OutOfMemory => reply::OUT_OF_MEMORY,
                _ => reply::NOT_STORED,
            };
            if wanted.wanted() {
                out.extend_from_slice(line);
            }
            Flow::Continue
        }
        Request::Delete { key, reply: wanted } => {
            let line = match kv::delete(ctx, key, None) {
                Outcome::Deleted => reply::DELETED,
                _ => reply::NOT_FOUND,
            };
            if wanted.wanted() {
                out.extend_from_slice(line);
            }
            Flow::Continue
        }
        Request::Arith {
            direction,
            key,
            delta,
            reply: wanted,
        } => {
            let outcome = kv::arith(ctx, direction, key, delta, None, None);
            if wanted.wanted() {
                match outcome {
                    kv::ArithOutcome::Counter { value, .. } => proto::write_number_line(out, value),
                    kv::ArithOutcome::NotNumeric => out.extend_from_slice(reply::NON_NUMERIC),
                    _ => out.extend_from_slice(reply::NOT_FOUND),
                }
            }
            Flow::Continue
        }
        Request::Touch {
            key,
            exptime,
            reply: wanted,
        } => {
            let line = match kv::touch(ctx, key, exptime) {
                Outcome::Touched => reply::TOUCHED,
                _ => reply::NOT_FOUND,
            };
            if wanted.wanted() {
                out.extend_from_slice(line);
            }
            Flow::Continue
        }
        Request::FlushAll {
            delay,
            reply: wanted,
        } => {
            match kv::flush_all(ctx, delay) {
                Ok(()) => {
                    if wanted.wanted() {
                        out.extend_from_slice(reply::OK);
                    }
                }
                Err(kv::FlushDisabled) => out.extend_from_slice(reply::FLUSH_DISABLED),
            }
            Flow::Continue
        }
        Request::Version => {
            proto::write_version(out, MEMCACHED_VERSION);
            Flow::Continue
        }
        Request::Verbosity {
            level,
            reply: wanted,
        } => {
            let level = level as usize;
            ctx.shared
                .verbosity
                .store(level, std::sync::atomic::Ordering::Relaxed);
            log::set_max_level(crate::logging::level_for_verbosity(level));
            if wanted.wanted() {
                out.extend_from_slice(reply::OK);
            }
            Flow::Continue
        }
        Request::Quit => Flow::Close,
        Request::Shutdown { .. } => {
            if ctx.shared.config.server.enable_shutdown {
                log::warn!("shutdown requested by a client");
                Flow::Shutdown
            } else {
                out.extend_from_slice(reply::SHUTDOWN_DISABLED);
                Flow::Continue
            }
        }
        Request::Save { background } => {
            out.extend_from_slice(&save(background, ctx));
            Flow::Continue
        }
        Request::Stats(group) => {
            stats::render(group, ctx, out);
            Flow::Continue
        }
        Request::CacheMemlimit {
            megabytes,
            reply: wanted,
        } => {
            let answer: &[u8] = match memlimit_bytes(megabytes) {
                Ok(bytes) => {
                    ctx.shared.store.set_memory_limit(bytes, ctx.now_ms);
                    reply::OK
                }
                Err(refusal) => refusal.line(),
            };
            // memcached's `noreply` silences the refusals as well as the OK.
            if wanted.wanted() {
                out.extend_from_slice(answer);
            }
            Flow::Continue
        }
        Request::MetaGet(m) => meta::get(&m, ctx, out),
        Request::MetaSet { meta: m, value } => meta::set(&m, value, ctx, out),
        Request::MetaDelete(m) => meta::delete(&m, ctx, out),
        Request::MetaArith(m) => meta::arith(&m, ctx, out),
        Request::MetaDebug(m) => meta::debug(&m, ctx, out),
        Request::MetaNoop => {
            WorkerStats::incr(&stats.cmd_meta);
            out.extend_from_slice(reply::META_NOOP);
            Flow::Continue
        }
    }
}

/// What runs while the snapshot loads: the connection's own commands and `stats`; the rest
/// answer [`reply::LOADING`] (Redis's `-LOADING`, in memcached's words).
fn runs_while_loading(request: &Request<'_>) -> bool {
    matches!(
        request,
        Request::Version
            | Request::Verbosity { .. }
            | Request::Quit
            | Request::Shutdown { .. }
            | Request::Stats(_)
            | Request::MetaNoop
    )
}

/// `save` / `bgsave`: the snapshot commands, Redis's SAVE and BGSAVE for memcached clients.
fn save(background: bool, ctx: &Context<'_>) -> Vec<u8> {
    let shared = ctx.shared;
    let result = if background {
        shared.persistence.request_save(false)
    } else {
        let path = shared.config.persistence.path();
        shared
            .persistence
            .save_now(&shared.store, &path, ctx.now_ms)
            .map(|_| ())
    };
    match result {
        Ok(()) => reply::OK.to_vec(),
        Err(error) => format!("SERVER_ERROR {error}\r\n").into_bytes(),
    }
}

/// Why `cache_memlimit` refused a size (memcached 1.6 `process_memlimit_command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemlimitRefusal {
    /// Under 8 MB.
    TooSmall,
    /// Over 1,000,000,000 MB: memcached assumes the client sent bytes.
    NotMegabytes,
}

impl MemlimitRefusal {
    fn line(self) -> &'static [u8] {
        match self {
            MemlimitRefusal::TooSmall => {
                b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
            }
            MemlimitRefusal::NotMegabytes => {
                b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"
            }
        }
    }
}

/// memcached's bounds on `cache_memlimit <megabytes>`: at least 8, at most 1,000,000,000.
const MEMLIMIT_MIN_MB: u64 = 8;
const MEMLIMIT_MAX_MB: u64 = 1_000_000_000;

/// The byte limit `cache_memlimit <megabytes>` asks for, or memcached's refusal.
fn memlimit_bytes(megabytes: u64) -> Result<usize, MemlimitRefusal> {
    if megabytes < MEMLIMIT_MIN_MB {
        return Err(MemlimitRefusal::TooSmall);
    }
    if megabytes > MEMLIMIT_MAX_MB {
        return Err(MemlimitRefusal::NotMegabytes);
    }
    Ok(usize::try_from(megabytes * 1024 * 1024).unwrap_or(usize::MAX))
}

/// Parses and executes the request at the front of `input`; `None` until one is complete.
/// `login` is who the connection authenticated as (with `-Y`): their ACL rules apply.
pub fn serve_one(
    input: &[u8],
    ctx: &Context<'_>,
    login: Option<&Login>,
    out: &mut Vec<u8>,
) -> Option<Served> {
    match proto::parse(input, &ctx.shared.limits) {
        Ok(Some((request, consumed))) => {
            if login.is_some_and(|login| acl_denies(&request, ctx, login)) {
                out.extend_from_slice(PERMISSION_DENIED);
                return Some(Served {
                    consumed,
                    swallow: 0,
                    flow: Flow::Continue,
                });
            }
            let table = &ctx.shared.latency[ctx.worker];
            let lap = table.lap_start();
            let start = out.len();
            let nth = command_index(&request);
            let pool = if cfg!(feature = "latency") {
                first_key(&request).map(|key| ctx.shared.pool_of(key))
            } else {
                None
            };
            let flow = execute(request, ctx, out);
            let ending = match out.get(start..) {
                Some(reply) if is_error_reply(reply) => Ending::Failed,
                _ => Ending::Answered,
            };
            table.record_nth(
                Proto::Memcache,
                nth,
                COMMAND_NAMES[nth],
                pool,
                table.lap_stop(lap),
                ending,
            );
            Some(Served {
                consumed,
                swallow: 0,
                flow,
            })
        }
        Ok(None) => None,
        Err(error) if error.closes_connection() => {
            log::debug!("closing a connection: {error}");
            Some(Served {
                consumed: 0,
                swallow: 0,
                flow: Flow::Close,
            })
        }
        Err(error) => {
            rejected(&error, ctx, out);
            Some(Served {
                consumed: error.consumed(),
                swallow: error.swallow(),
                flow: Flow::Continue,
            })
        }
    }
}

/// A command the login's ACL rules refuse (ferrocache's: memcached has no ACL).
const PERMISSION_DENIED: &[u8] = b"CLIENT_ERROR permission denied\r\n";

/// Whether `login`'s ACL rules refuse `request` (see [`mc_acl`] for the RESP twins).
fn acl_denies(request: &Request<'_>, ctx: &Context<'_>, login: &Login) -> bool {
    use crate::acl::Access::{Read, Write};
    let mut scratch = [0u8; MAX_KEY_LEN];
    let mut meta_key = |meta: &proto::MetaKeyed<'_>| meta.decode_key(&mut scratch).to_vec();
    let (command, keys, access): (&str, Vec<Vec<u8>>, _) = match request {
        Request::Get { keys, touch, .. } => {
            let keys = keys.iter().map(<[u8]>::to_vec).collect();
            match touch {
                None => ("get", keys, Read),
                Some(_) => ("getex", keys, Write),
            }
        }
        Request::Store { key, .. } => ("set", vec![key.to_vec()], Write),
        Request::Delete { key, .. } => ("del", vec![key.to_vec()], Write),
        Request::Arith { key, .. } => ("incrby", vec![key.to_vec()], Write),
        Request::Touch { key, .. } => ("expire", vec![key.to_vec()], Write),
        Request::FlushAll { .. } => ("flushall", Vec::new(), Write),
        Request::Stats(_) => ("info", Vec::new(), Read),
        Request::Verbosity { .. } | Request::CacheMemlimit { .. } => ("config", Vec::new(), Write),
        Request::Shutdown { .. } => ("shutdown", Vec::new(), Write),
        Request::Save { background: false } => ("save", Vec::new(), Write),
        Request::Save { background: true } => ("bgsave", Vec::new(), Write),
        Request::MetaGet(m) => ("get", vec![meta_key(m)], Read),
        Request::MetaSet { meta, .. } => ("set", vec![meta_key(meta)], Write),
        Request::MetaDelete(m) => ("del", vec![meta_key(m)], Write),
        Request::MetaArith(m) => ("incrby", vec![meta_key(m)], Write),
        Request::MetaDebug(m) => ("object", vec![meta_key(m)], Read),
        Request::Version | Request::Quit | Request::MetaNoop => return false,
    };
    mc_acl::denies(
        &ctx.shared.acl,
        &login.name,
        login.acl_user,
        command,
        keys.iter().map(Vec::as_slice),
        access,
    )
}

/// Serves an unauthenticated text connection (`-Y`): only the authenticating `set` of
/// `user password` is answered (`STORED`, the connection is then `login`'s), everything else
/// gets memcached's refusals.
pub fn serve_login(
    input: &[u8],
    ctx: &Context<'_>,
    login: &mut Option<Login>,
    out: &mut Vec<u8>,
) -> Option<Served> {
    let (request, consumed) = auth::parse_auth(input)?;
    let flow = match request {
        AuthRequest::Credentials { user, password } => {
            WorkerStats::incr(&ctx.stats.auth_cmds);
            let users = mc_acl::AnyUser {
                file: &ctx.shared.users,
                acl: &ctx.shared.acl,
            };
            *login = users.login(user, password);
            if login.is_some() {
                out.extend_from_slice(reply::STORED);
            } else {
                WorkerStats::incr(&ctx.stats.auth_errors);
                out.extend_from_slice(auth::AUTH_FAILURE);
            }
            Flow::Continue
        }
        AuthRequest::Refused(refusal) => {
            out.extend_from_slice(refusal);
            Flow::Continue
        }
        AuthRequest::Close => Flow::Close,
    };
    Some(Served {
        consumed,
        swallow: 0,
        flow,
    })
}

/// Every name [`command_index`] points at (the latency registry's memcached part). A static,
/// not a const: one address for each name, which the registry compares to find a slot
/// ([`crate::metrics::latency::WorkerLatency::record_nth`]).
pub(super) static COMMAND_NAMES: &[&str] = &[
    "get",
    "gets",
    "gat",
    "gats",
    "set",
    "add",
    "replace",
    "append",
    "prepend",
    "cas",
    "delete",
    "incr",
    "decr",
    "touch",
    "flush_all",
    "version",
    "verbosity",
    "quit",
    "shutdown",
    "save",
    "bgsave",
    "stats",
    "cache_memlimit",
    "mg",
    "ms",
    "md",
    "ma",
    "mn",
    "me",
];

/// Where [`COMMAND_NAMES`] lists `name` (evaluated at compile time: a name missing from the
/// list fails the build).
const fn at(name: &str) -> usize {
    let mut i = 0;
    while i < COMMAND_NAMES.len() {
        let listed = COMMAND_NAMES[i].as_bytes();
        let wanted = name.as_bytes();
        if listed.len() == wanted.len() {
            let mut j = 0;
            while j < listed.len() && listed[j] == wanted[j] {
                j += 1;
            }
            if j == listed.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("a memcached command name missing from COMMAND_NAMES");
}

/// The command's place in [`COMMAND_NAMES`], whose entry is its name as memcached spells it
/// (the `cmd` label of `/metrics`).
fn command_index(request: &Request<'_>) -> usize {
    use proto::{ArithDirection, StoreMode};
    match request {
        Request::Get { cas, touch, .. } => match (cas, touch.is_some()) {
            (false, false) => const { at("get") },
            (true, false) => const { at("gets") },
            (false, true) => const { at("gat") },
            (true, true) => const { at("gats") },
        },
        Request::Store { mode, .. } => match mode {
            StoreMode::Set => const { at("set") },
            StoreMode::Add => const { at("add") },
            StoreMode::Replace => const { at("replace") },
            StoreMode::Append => const { at("append") },
            StoreMode::Prepend => const { at("prepend") },
            StoreMode::Cas => const { at("cas") },
        },
        Request::Delete { .. } => const { at("delete") },
        Request::Arith { direction, .. } => match direction {
            ArithDirection::Incr => const { at("incr") },
            ArithDirection::Decr => const { at("decr") },
        },
        Request::Touch { .. } => const { at("touch") },
        Request::FlushAll { .. } => const { at("flush_all") },
        Request::Version => const { at("version") },
        Request::Verbosity { .. } => const { at("verbosity") },
        Request::Quit => const { at("quit") },
        Request::Shutdown { .. } => const { at("shutdown") },
        Request::Save { background } => {
            if *background {
                const { at("bgsave") }
            } else {
                const { at("save") }
            }
        }
        Request::Stats(_) => const { at("stats") },
        Request::CacheMemlimit { .. } => const { at("cache_memlimit") },
        Request::MetaGet(_) => const { at("mg") },
        Request::MetaSet { .. } => const { at("ms") },
        Request::MetaDelete(_) => const { at("md") },
        Request::MetaArith(_) => const { at("ma") },
        Request::MetaNoop => const { at("mn") },
        Request::MetaDebug(_) => const { at("me") },
    }
}

/// The first key a request names (a base64 meta key as sent: its pool is not looked up).
fn first_key<'r>(request: &Request<'r>) -> Option<&'r [u8]> {
    match request {
        Request::Get { keys, .. } => keys.iter().next(),
        Request::Store { key, .. }
        | Request::Delete { key, .. }
        | Request::Arith { key, .. }
        | Request::Touch { key, .. } => Some(key),
        Request::MetaGet(meta)
        | Request::MetaSet { meta, .. }
        | Request::MetaDelete(meta)
        | Request::MetaArith(meta)
        | Request::MetaDebug(meta) => (!meta.flags.base64_key).then_some(meta.key),
        _ => None,
    }
}

/// Whether a reply is one of memcached's error lines.
fn is_error_reply(reply: &[u8]) -> bool {
    reply.starts_with(b"ERROR")
        || reply.starts_with(b"CLIENT_ERROR")
        || reply.starts_with(b"SERVER_ERROR")
}

/// Answers a request the parser refused, with memcached's side effects.
fn rejected(error: &ParseError<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) {
    let mut scratch = [0u8; proto::MAX_KEY_LEN];
    let unlink = error.unlink_key(&mut scratch);
    if matches!(error, ParseError::TooLarge { .. }) {
        kv::refused_too_large(ctx, unlink);
    }
    error.write_reply(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlimit_bounds_follow_memcached() {
        assert_eq!(memlimit_bytes(7), Err(MemlimitRefusal::TooSmall));
        assert_eq!(memlimit_bytes(0), Err(MemlimitRefusal::TooSmall));
        assert_eq!(memlimit_bytes(8), Ok(8 << 20));
        assert_eq!(memlimit_bytes(1_000_000_000), Ok(1_000_000_000 << 20));
        assert_eq!(
            memlimit_bytes(1_000_000_001),
            Err(MemlimitRefusal::NotMegabytes)
        );
        assert_eq!(
            memlimit_bytes(u64::from(u32::MAX)),
            Err(MemlimitRefusal::NotMegabytes)
        );
    }
}
