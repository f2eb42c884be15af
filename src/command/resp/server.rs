//! Connection and server commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, INFO,
//! CONFIG, COMMAND, TIME (the CLIENT family is in [`super::client`]).
//!
//! INFO uses Redis's section and field names; CONFIG exposes the settings that exist here and
//! refuses the rest with Redis's error, never pretending to apply them.

use crate::clients::{ClientMemoryBound, LimitBreach};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use ferrocache_protocol::resp::{Encoder, RespVersion};

use super::client::valid_client_name;
use super::{err, is, parse_i64, table, Call, RespSession};
use crate::command::compat::REDIS_VERSION;
use crate::command::Flow;
use crate::config::ByteSize;
use crate::glob;
use crate::metrics::WorkerStats;

/// PING [message]
pub fn ping(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    if call.args.len() <= 2 && call.session.subscribed() && !enc.is_resp3() {
        // In RESP2 subscribed mode PING answers as a pub/sub message would.
        enc.array(2);
        enc.bulk(b"pong");
        enc.bulk(call.args.get(1).map_or(&b""[..], |m| &m[..]));
        return Flow::Continue;
    }
    match call.args.len() {
        1 => enc.simple("PONG"),
        2 => enc.bulk(call.arg(1)),
        _ => enc.error("ERR wrong number of arguments for 'ping' command"),
    }
    Flow::Continue
}

/// ECHO message
pub fn echo(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    enc.bulk(call.arg(1));
    Flow::Continue
}

/// AUTH [username] password
pub fn auth(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    if call.args.len() > 3 {
        enc.error(err::SYNTAX);
        return Flow::Continue;
    }
    if call.ctx.shared.acl.default_opens_without_password() && call.args.len() == 2 {
        enc.error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure \
             your configuration is correct?",
        );
        return Flow::Continue;
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
    Flow::Continue
}

/// HELLO [protover [AUTH username password] [SETNAME name]]
pub fn hello(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let mut version = call.session.version;
    if call.args.len() > 1 {
        match parse_i64(call.arg(1)) {
            Some(2) => version = RespVersion::Resp2,
            Some(3) => version = RespVersion::Resp3,
            Some(_) => {
                enc.error("NOPROTO unsupported protocol version");
                return Flow::Continue;
            }
            None => {
                enc.error("ERR Protocol version is not an integer or out of range");
                return Flow::Continue;
            }
        }
    }
    let mut i = 2;
    let mut name = None;
    while i < call.args.len() {
        if is(call.arg(i), "AUTH") && i + 2 < call.args.len() {
            let (user, password) = (call.arg(i + 1).to_vec(), call.arg(i + 2).to_vec());
            if !super::acl::authenticate(call, &user, &password) {
                enc.error("WRONGPASS invalid username-password pair or user is disabled.");
                return Flow::Continue;
            }
            i += 3;
        } else if is(call.arg(i), "SETNAME") && i + 1 < call.args.len() {
            name = Some(call.arg(i + 1).to_vec());
            i += 2;
        } else {
            enc.error(&format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(call.arg(i))
            ));
            return Flow::Continue;
        }
    }
    if !call.session.authenticated {
        enc.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return Flow::Continue;
    }
    if let Some(name) = name {
        if !valid_client_name(&name) {
            enc.error("ERR Client names cannot contain spaces, newlines or special characters.");
            return Flow::Continue;
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
    Flow::Continue
}

/// SELECT index: only database 0 exists.
pub fn select(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    match parse_i64(call.arg(1)) {
        Some(0) => enc.ok(),
        Some(_) => enc.error("ERR DB index is out of range"),
        None => enc.error(err::NOT_INTEGER),
    }
    Flow::Continue
}

/// QUIT
pub fn quit(_call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    enc.ok();
    Flow::Close
}

/// RESET: back to a fresh connection's state.
pub fn reset(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let info = call.session.info.clone();
    info.client.reset_flags();
    info.client.set_user("default");
    *call.session = RespSession::new(info);
    call.session.authenticated = call.ctx.shared.acl.default_opens_without_password();
    call.session.set_name(Vec::new());
    enc.version = RespVersion::Resp2;
    enc.simple("RESET");
    Flow::Continue
}

/// TIME: unix seconds and microseconds.
pub fn time(_call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    enc.array(2);
    enc.bulk(now.as_secs().to_string().as_bytes());
    enc.bulk(now.subsec_micros().to_string().as_bytes());
    Flow::Continue
}

/// INFO [section ...]
pub fn info(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let shared = call.ctx.shared;
    let wanted: Vec<String> = call.args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    // INFO, INFO default: every section but commandstats and latencystats; INFO all and
    // everything: all of them (Redis 7).
    let all = wanted.iter().any(|w| w == "all" || w == "everything");
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let show = |section: &str| {
        all || wanted.iter().any(|w| w == section)
            || (default && section != "commandstats" && section != "latencystats")
    };
    let workers = WorkerStats::sum(shared.worker_stats.iter());
    let store = shared.store.stats();
    let mut text = String::new();
    if show("server") {
        let uptime = shared.started.elapsed().as_secs();
        let _ = write!(
            text,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nferrocache_version:{}\r\nos:{} {}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            shared.config.server.resp_port,
            uptime / 86400
        );
    }
    if show("clients") {
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\r\n",
            shared.connections.curr_connections.load(Ordering::Relaxed),
            shared.config.server.max_connections,
            shared.blocked.parked()
        );
    }
    if show("memory") {
        let limit = shared.store.memory_limit();
        let _ = write!(
            text,
            "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmaxmemory:{limit}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_clients_normal:{}\r\nmaxmemory_clients:{}\r\n",
            store.bytes,
            ByteSize(store.bytes),
            crate::sys::rss_bytes(),
            crate::metrics::report::ratio(
                crate::sys::rss_bytes(),
                store.bytes + store.index_bytes + store.heap_bytes + shared.clients.buffer_bytes(),
            ),
            ByteSize(limit as u64),
            shared.store.eviction_policy().name(),
            shared.clients.buffer_bytes(),
            shared
                .clients
                .maxmemory_clients_bytes(shared.store.memory_limit() as u64),
        );
        // The cold pass's figures (store/cold.rs), ending the section.
        let _ = write!(
            text,
            "compressed_items:{}\r\ncompressed_saved_bytes:{}\r\ncompress_packed:{}\r\ncompress_incompressible:{}\r\ncompress_time_us:{}\r\ncompress_promoted:{}\r\ndecompressions:{}\r\ndecompress_time_us:{}\r\n\r\n",
            store.compressed_items,
            store.compressed_saved_bytes,
            store.compress_packed,
            store.compress_incompressible,
            store.compress_time_us,
            store.compress_promoted,
            store.decompressions,
            store.decompress_time_us,
        );
    }
    if show("persistence") {
        super::persist::info_section(shared, call.ctx.now_ms, &mut text);
    }
    if show("stats") {
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nworker_panics:{}\r\nevicted_clients:{}\r\nclient_query_buffer_limit_disconnections:{}\r\nclient_output_buffer_limit_disconnections:{}\r\n\r\n",
            shared.connections.total_connections.load(Ordering::Relaxed),
            workers.resp_commands,
            workers.bytes_read,
            workers.bytes_written,
            shared.connections.rejected_connections.load(Ordering::Relaxed),
            store.reclaimed,
            store.evictions,
            workers.keyspace_hits,
            workers.keyspace_misses,
            workers.worker_panics,
            shared.clients.disconnections(LimitBreach::ClientMemory),
            shared.clients.disconnections(LimitBreach::Query),
            shared.clients.disconnections(LimitBreach::Output),
        );
    }
    if show("replication") {
        text.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
    }
    super::observe::info_sections(call, &show, &mut text);
    if show("keyspace") {
        text.push_str("# Keyspace\r\n");
        if store.curr_items > 0 {
            let _ = write!(
                text,
                "db0:keys={},expires={},avg_ttl=0\r\n",
                store.curr_items,
                shared.store.volatile_count(call.ctx.now_ms)
            );
        }
        text.push_str("\r\n");
    }
    while text.ends_with("\r\n\r\n") {
        text.truncate(text.len() - 2);
    }
    enc.verbatim(text.as_bytes());
    Flow::Continue
}

/// The settings CONFIG GET shows: (name, value).
fn config_values(call: &Call<'_, '_>) -> Vec<(&'static str, String)> {
    let config = &call.ctx.shared.config;
    let listen: Vec<String> = config
        .server
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    let tls = call
        .ctx
        .shared
        .tls
        .as_ref()
        .map_or_else(|| config.tls.clone(), crate::tls::TlsState::settings);
    let path = |path: &std::path::Path| path.display().to_string();
    vec![
        (
            "protected-mode",
            if call.ctx.shared.protected_mode.load(Ordering::Relaxed) {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
        ("tls-port", config.tls.resp_port.to_string()),
        ("tls-cert-file", path(&tls.cert_file)),
        ("tls-key-file", path(&tls.key_file)),
        ("tls-ca-cert-file", path(&tls.ca_cert_file)),
        ("tls-auth-clients", tls.auth_clients.to_ascii_lowercase()),
        ("tls-protocols", tls.protocols.clone()),
        ("tls-auth-clients-user", tls.auth_clients_user.clone()),
        (
            "maxmemory",
            call.ctx.shared.store.memory_limit().to_string(),
        ),
        (
            "maxmemory-policy",
            call.ctx.shared.store.eviction_policy().name().into(),
        ),
        ("maxclients", config.server.max_connections.to_string()),
        ("port", config.server.resp_port.to_string()),
        ("bind", listen.join(" ")),
        ("databases", "1".into()),
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("timeout", "0".into()),
        (
            "proto-max-bulk-len",
            call.ctx.shared.clients.proto_max_bulk_len().to_string(),
        ),
        (
            "client-query-buffer-limit",
            call.ctx.shared.clients.query_buffer_limit().to_string(),
        ),
        (
            "maxmemory-clients",
            call.ctx.shared.clients.maxmemory_clients().to_string(),
        ),
        (
            "hash-max-listpack-entries",
            crate::store::hash::COMPACT_MAX_FIELDS.to_string(),
        ),
        (
            "zset-max-listpack-entries",
            crate::store::zset::COMPACT_MAX_ENTRIES.to_string(),
        ),
        (
            "zset-max-listpack-value",
            crate::store::zset::COMPACT_MAX_MEMBER_LEN.to_string(),
        ),
        ("requirepass", config.resp.requirepass.clone()),
        (
            "slowlog-log-slower-than",
            call.ctx.shared.slowlog.threshold_us().to_string(),
        ),
        (
            "slowlog-max-len",
            call.ctx.shared.slowlog.max_len().to_string(),
        ),
        ("latency-tracking", "yes".into()),
        (
            "latency-tracking-info-percentiles",
            super::observe::INFO_PERCENTILES
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        ("latency-monitor-threshold", "0".into()),
        (
            "notify-keyspace-events",
            crate::pubsub::notify::to_string(call.ctx.shared.pubsub.notify_flags()),
        ),
    ]
}

/// The smallest `proto-max-bulk-len` and `client-query-buffer-limit` Redis accepts (1 MiB).
const MIN_BUFFER_LIMIT: u64 = 1024 * 1024;

/// `maxmemory-clients`: a memory value, or `N%` of maxmemory (N up to 100), as Redis takes it.
fn parse_client_memory_bound(value: &[u8]) -> Result<ClientMemoryBound, &'static str> {
    if let Some(percent) = value.strip_suffix(b"%") {
        let percent: u64 = std::str::from_utf8(percent)
            .ok()
            .and_then(|p| p.parse().ok())
            .ok_or("argument must be a memory or percent value")?;
        if percent > 100 {
            return Err("percentage argument must be less or equal to 100");
        }
        return Ok(ClientMemoryBound::PercentOfMaxmemory(percent));
    }
    ByteSize::parse_redis(value)
        .map(|size| ClientMemoryBound::Bytes(size.bytes()))
        .ok_or("argument must be a memory or percent value")
}

/// The TLS settings CONFIG SET changes (Redis's names), as a whole: rustls is handed the
/// edited settings only when they make a valid configuration together.
const TLS_SETTINGS: &[&str] = &[
    "tls-auth-clients-user",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-protocols",
];

/// CONFIG SET of TLS settings, one pair or several (Redis applies several together, so a
/// certificate and its key can be swapped in one command). Connections accepted afterwards
/// get the new certificate; open ones keep theirs.
fn config_set_tls(call: &Call<'_, '_>, enc: &mut Encoder<'_>) {
    let pairs: Vec<(String, String)> = call.args[2..]
        .chunks(2)
        .map(|pair| {
            (
                String::from_utf8_lossy(&pair[0]).to_ascii_lowercase(),
                String::from_utf8_lossy(&pair[1]).into_owned(),
            )
        })
        .collect();
    if let Some((name, _)) = pairs
        .iter()
        .find(|(name, _)| !TLS_SETTINGS.contains(&name.as_str()))
    {
        enc.error(&format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
        ));
        return;
    }
    if let Some((name, value)) = pairs.iter().find(|(name, value)| {
        (name == "tls-auth-clients" && crate::tls::ClientAuth::parse(value).is_none())
            || (name == "tls-auth-clients-user"
                && crate::tls::CertificateUser::parse(value).is_none())
            || (name == "tls-protocols" && crate::tls::protocol_versions(value).is_err())
    }) {
        let reason = if name == "tls-auth-clients" {
            "argument(s) must be one of the following: no, yes, optional".to_string()
        } else if name == "tls-auth-clients-user" {
            "argument(s) must be one of the following: off, CN".to_string()
        } else {
            format!("Invalid tls-protocols value {value:?}")
        };
        enc.error(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
        ));
        return;
    }
    let applied = match &call.ctx.shared.tls {
        Some(tls) => tls.update(|section| {
            for (name, value) in &pairs {
                match name.as_str() {
                    "tls-cert-file" => section.cert_file = value.into(),
                    "tls-key-file" => section.key_file = value.into(),
                    "tls-ca-cert-file" => section.ca_cert_file = value.into(),
                    "tls-auth-clients" => section.auth_clients = value.clone(),
                    "tls-auth-clients-user" => section.auth_clients_user = value.clone(),
                    _ => section.protocols = value.clone(),
                }
            }
        }),
        None => Err(crate::tls::TlsError::Setting {
            setting: "tls",
            message: "no TLS port is configured (restart-only: tls.port, tls.resp_port)".into(),
        }),
    };
    match applied {
        Ok(()) => enc.ok(),
        Err(e) => {
            log::warn!("CONFIG SET {}: {e}", pairs[0].0);
            enc.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - Unable to update TLS configuration. Check server logs.",
                pairs[0].0
            ));
        }
    }
}

/// CONFIG GET pattern ... | SET name value | RESETSTAT
pub fn config(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let sub = call.arg(1).to_ascii_uppercase();
    match sub.as_slice() {
        b"SET"
            if call.args.len() >= 4
                && call.args.len().is_multiple_of(2)
                && call.arg(2).to_ascii_lowercase().starts_with(b"tls-") =>
        {
            config_set_tls(call, enc);
        }
        b"GET" if call.args.len() >= 3 => {
            let values = config_values(call);
            let chosen: Vec<&(&str, String)> = values
                .iter()
                .filter(|(name, _)| {
                    call.args[2..]
                        .iter()
                        .any(|p| glob::matches(&p.to_ascii_lowercase(), name.as_bytes()))
                })
                .collect();
            enc.map(chosen.len());
            for (name, value) in chosen {
                enc.bulk(name.as_bytes());
                enc.bulk(value.as_bytes());
            }
        }
        b"SET" if call.args.len() == 4 => {
            let (name, value) = (call.arg(2).to_ascii_lowercase(), call.arg(3));
            let text = String::from_utf8_lossy(value).into_owned();
            match name.as_slice() {
                b"maxmemory" => match ByteSize::parse_redis(value) {
                    Some(size) => {
                        // Redis reads 0 as "no limit"; the store is always bounded, so 0
                        // goes back to the limit the server started with (`-m`).
                        let limit = match size.bytes() {
                            0 => call.ctx.shared.config.store.memory_limit.bytes(),
                            bytes => bytes,
                        };
                        call.ctx.shared.store.set_memory_limit(limit as usize, call.ctx.now_ms);
                        enc.ok();
                    }
                    None => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value",
                    ),
                },
                b"proto-max-bulk-len" | b"client-query-buffer-limit" => {
                    let name = if name.as_slice() == b"proto-max-bulk-len" {
                        "proto-max-bulk-len"
                    } else {
                        "client-query-buffer-limit"
                    };
                    match ByteSize::parse_redis(value).map(ByteSize::bytes) {
                        Some(bytes) if bytes >= MIN_BUFFER_LIMIT && bytes <= i64::MAX as u64 => {
                            let clients = &call.ctx.shared.clients;
                            if name == "proto-max-bulk-len" {
                                clients.set_proto_max_bulk_len(bytes);
                            } else {
                                clients.set_query_buffer_limit(bytes);
                            }
                            enc.ok();
                        }
                        Some(_) => enc.error(&format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - argument must be between {MIN_BUFFER_LIMIT} and 9223372036854775807 inclusive"
                        )),
                        None => enc.error(&format!(
                            "ERR CONFIG SET failed (possibly related to argument '{name}') - argument must be a memory value"
                        )),
                    }
                }
                b"protected-mode" => match value.to_ascii_lowercase().as_slice() {
                    b"yes" | b"no" => {
                        let on = value.eq_ignore_ascii_case(b"yes");
                        call.ctx.shared.protected_mode.store(on, Ordering::Relaxed);
                        enc.ok();
                    }
                    _ => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'",
                    ),
                },
                b"slowlog-log-slower-than" => match parse_i64(value) {
                    Some(us) => {
                        call.ctx.shared.slowlog.set_threshold_us(us);
                        enc.ok();
                    }
                    None => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than') - argument couldn't be parsed into an integer",
                    ),
                },
                b"slowlog-max-len" => match parse_i64(value) {
                    Some(len) if len >= 0 => {
                        call.ctx.shared.slowlog.set_max_len(len as usize);
                        enc.ok();
                    }
                    _ => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - argument must be between 0 and 9223372036854775807 inclusive",
                    ),
                },
                b"maxmemory-clients" => match parse_client_memory_bound(value) {
                    Ok(bound) => {
                        call.ctx.shared.clients.set_maxmemory_clients(bound);
                        enc.ok();
                    }
                    Err(reason) => enc.error(&format!(
                        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - {reason}"
                    )),
                },
                b"maxmemory-policy" => match crate::store::EvictionPolicy::from_name(&text) {
                    Some(policy) => {
                        call.ctx.shared.store.set_eviction_policy(policy);
                        enc.ok();
                    }
                    None => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: allkeys-lru, allkeys-lfu, volatile-lru, volatile-lfu, volatile-ttl, noeviction",
                    ),
                },
                b"notify-keyspace-events" => match crate::pubsub::notify::parse(&text) {
                    Some(flags) => {
                        call.ctx.shared.pubsub.set_notify_flags(flags);
                        enc.ok();
                    }
                    None => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
                    ),
                },
                _ => enc.error(&format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                    String::from_utf8_lossy(&name)
                )),
            }
        }
        b"RESETSTAT" if call.args.len() == 2 => {
            for worker in call.ctx.shared.worker_stats.iter() {
                worker.reset();
            }
            for table in call.ctx.shared.latency.iter() {
                table.reset();
            }
            enc.ok();
        }
        _ => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Flow::Continue
}

fn command_info(enc: &mut Encoder<'_>, spec: &table::CommandSpec) {
    enc.array(10);
    enc.bulk(spec.name.as_bytes());
    enc.integer(i64::from(spec.arity));
    let flags = spec.flag_names();
    enc.set(flags.len());
    for flag in flags {
        enc.simple(flag);
    }
    enc.integer(spec.first_key);
    enc.integer(spec.last_key);
    enc.integer(spec.step);
    enc.set(1);
    enc.simple(&format!("@{}", spec.group));
    enc.set(0);
    enc.array(0);
    enc.array(0);
}

/// COMMAND [COUNT|LIST|INFO name...|DOCS name...]
pub fn command(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let sub = call.args.get(1).map(|s| s.to_ascii_uppercase());
    let named = |call: &Call<'_, '_>| -> Vec<&'static table::CommandSpec> {
        if call.args.len() <= 2 {
            table::COMMANDS.iter().collect()
        } else {
            call.args[2..]
                .iter()
                .filter_map(|name| table::lookup(&name.to_ascii_lowercase()))
                .collect()
        }
    };
    match sub.as_deref() {
        None => {
            enc.array(table::COMMANDS.len());
            for spec in table::COMMANDS {
                command_info(enc, spec);
            }
        }
        Some(b"COUNT") => enc.integer(table::COMMANDS.len() as i64),
        Some(b"LIST") => {
            enc.array(table::COMMANDS.len());
            for spec in table::COMMANDS {
                enc.bulk(spec.name.as_bytes());
            }
        }
        Some(b"INFO") if call.args.len() > 2 => {
            // One entry per name asked for, a nil for a name that is no command (Redis
            // `commandInfoCommand`).
            enc.array(call.args.len() - 2);
            for name in &call.args[2..] {
                match table::lookup(&name.to_ascii_lowercase()) {
                    Some(spec) => command_info(enc, spec),
                    None => enc.null(),
                }
            }
        }
        Some(b"INFO") => {
            enc.array(table::COMMANDS.len());
            for spec in table::COMMANDS {
                command_info(enc, spec);
            }
        }
        Some(b"DOCS") => {
            let specs = named(call);
            enc.map(specs.len());
            for spec in specs {
                enc.bulk(spec.name.as_bytes());
                enc.map(3);
                enc.bulk(b"summary");
                enc.bulk(spec.summary.as_bytes());
                enc.bulk(b"since");
                enc.bulk(b"1.0.0");
                enc.bulk(b"group");
                enc.bulk(spec.group.as_bytes());
            }
        }
        Some(_) => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Flow::Continue
}
