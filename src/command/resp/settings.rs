//! CONFIG GET, SET, REWRITE, RESETSTAT and HELP: the settings that exist here, under Redis's
//! names.
//! A setting that does not exist here is refused with Redis's error, never pretended to apply.
//!
//! Changes go to the live structure each setting lives in (the store, the client limits, the
//! TLS state, the slow log); CONFIG REWRITE hands the config file to `reload`.

use super::error::RespError;
use super::{parse_i64, Call};
use crate::clients::ClientMemoryBound;
use crate::command::Flow;
use crate::config::ByteSize;
use crate::glob;
use crate::store::encoding::{Limit, LIMITS};
use ferrocache_protocol::resp::Encoder;
use std::sync::atomic::Ordering;

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
        (
            "save",
            call.ctx
                .shared
                .persistence
                .rules(&config.persistence.save_rules())
                .iter()
                .map(|(seconds, changes)| format!("{seconds} {changes}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "dir",
            std::path::absolute(&config.persistence.dir)
                .map_or_else(|_| path(&config.persistence.dir), |dir| path(&dir)),
        ),
        ("dbfilename", config.persistence.dbfilename.clone()),
        ("appendonly", "no".into()),
        (
            "timeout",
            call.ctx.shared.clients.idle_timeout_s().to_string(),
        ),
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
            "stream-node-max-entries",
            crate::store::stream::node_max_entries().to_string(),
        ),
        (
            "stream-node-max-bytes",
            crate::store::stream::node_max_bytes().to_string(),
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
        (
            "busy-reply-threshold",
            call.ctx.shared.scripting.busy_threshold_ms().to_string(),
        ),
        (
            "lua-time-limit",
            call.ctx.shared.scripting.busy_threshold_ms().to_string(),
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
        (
            "replicaof",
            match call.ctx.shared.replication.role() {
                crate::replication::Role::Primary => String::new(),
                crate::replication::Role::Replica { host, port } => format!("{host} {port}"),
            },
        ),
        (
            "replica-read-only",
            if call.ctx.shared.replication.read_only() {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
        (
            "repl-backlog-size",
            config.replication.backlog_size.bytes().to_string(),
        ),
        (
            "repl-backlog-ttl",
            config.replication.backlog_ttl_secs.to_string(),
        ),
        ("masterauth", config.replication.masterauth.clone()),
        ("masteruser", config.replication.masteruser.clone()),
        (
            "min-replicas-to-write",
            config.replication.min_replicas_to_write.to_string(),
        ),
        (
            "min-replicas-max-lag",
            config.replication.min_replicas_max_lag_secs.to_string(),
        ),
    ]
    .into_iter()
    .chain(replica_identity_values(
        &call.ctx.shared.replication.identity,
    ))
    .chain(encoding_values())
    .collect()
}

/// `replica-priority`, `replica-announce-ip`/`-port` and `replica-announced`, the first
/// three also under their `slave-` aliases (Redis answers CONFIG GET for either).
fn replica_identity_values(
    identity: &crate::replication::identity::ReplicaIdentity,
) -> Vec<(&'static str, String)> {
    let priority = identity.priority().to_string();
    let ip = identity.announce_ip();
    let port = identity.announce_port().to_string();
    vec![
        ("slave-priority", priority.clone()),
        ("replica-priority", priority),
        ("slave-announce-ip", ip.clone()),
        ("replica-announce-ip", ip),
        ("slave-announce-port", port.clone()),
        ("replica-announce-port", port),
        (
            "replica-announced",
            if identity.announced() { "yes" } else { "no" }.into(),
        ),
    ]
}

/// CONFIG SET of a replica identity setting (`name` lower-cased, either name); `None` when
/// `name` is not one of them.
fn set_replica_identity(
    identity: &crate::replication::identity::ReplicaIdentity,
    name: &[u8],
    value: &[u8],
) -> Option<Result<(), String>> {
    fn failed<T>(setting: &str, reason: &str) -> Result<T, String> {
        Err(format!(
            "ERR CONFIG SET failed (possibly related to argument '{setting}') - {reason}"
        ))
    }
    let integer = |setting: &str, high: i64| match parse_i64(value) {
        Some(n) if (0..=high).contains(&n) => Ok(n),
        Some(_) => failed(
            setting,
            &format!("argument must be between 0 and {high} inclusive"),
        ),
        None => failed(setting, "argument couldn't be parsed into an integer"),
    };
    Some(match name {
        b"replica-priority" | b"slave-priority" => integer("replica-priority", i64::from(i32::MAX))
            .map(|n| identity.set_priority(n as u32)),
        b"replica-announce-port" | b"slave-announce-port" => {
            integer("replica-announce-port", i64::from(u16::MAX))
                .map(|n| identity.set_announce_port(n as u16))
        }
        b"replica-announce-ip" | b"slave-announce-ip" => {
            if value.len() > crate::replication::identity::MAX_ANNOUNCE_IP_LEN
                || value.iter().any(u8::is_ascii_whitespace)
            {
                failed("replica-announce-ip", "not a host name or address")
            } else {
                identity.set_announce_ip(String::from_utf8_lossy(value).into_owned());
                Ok(())
            }
        }
        b"replica-announced" => match value.to_ascii_lowercase().as_slice() {
            b"yes" | b"no" => {
                identity.set_announced(value.eq_ignore_ascii_case(b"yes"));
                Ok(())
            }
            _ => failed("replica-announced", "argument must be 'yes' or 'no'"),
        },
        _ => return None,
    })
}

/// The encoding thresholds under both their names (Redis answers CONFIG GET for either).
fn encoding_values() -> Vec<(&'static str, String)> {
    let mut values = Vec::new();
    for (limit, name, alias) in Limit::ALL {
        let value = LIMITS.get(limit).to_string();
        if alias != name {
            values.push((alias, value.clone()));
        }
        values.push((name, value));
    }
    values
}

/// CONFIG SET of an encoding threshold: an integer in the threshold's range.
fn set_encoding_limit(limit: Limit, name: &str, value: &[u8], enc: &mut Encoder<'_>) {
    let (low, high) = limit.range();
    match parse_i64(value) {
        Some(n) if (low..=high).contains(&n) => {
            LIMITS.set(limit, n);
            enc.ok();
        }
        Some(_) => enc.error(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - argument must be between {low} and {high} inclusive"
        )),
        None => enc.error(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - argument couldn't be parsed into an integer"
        )),
    }
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
pub fn config(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
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
            if let Some(result) =
                set_replica_identity(&call.ctx.shared.replication.identity, &name, value)
            {
                match result {
                    Ok(()) => enc.ok(),
                    Err(message) => enc.error(&message),
                }
                return Ok(Flow::Continue);
            }
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
                b"replica-read-only" | b"slave-read-only" => {
                    match value.to_ascii_lowercase().as_slice() {
                        b"yes" | b"no" => {
                            let on = value.eq_ignore_ascii_case(b"yes");
                            call.ctx.shared.replication.set_read_only(on);
                            enc.ok();
                        }
                        _ => enc.error(
                            "ERR CONFIG SET failed (possibly related to argument 'replica-read-only') - argument must be 'yes' or 'no'",
                        ),
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
                b"busy-reply-threshold" | b"lua-time-limit" => match parse_i64(value) {
                    Some(ms) if ms >= 0 => {
                        call.ctx.shared.scripting.set_busy_threshold_ms(ms as u64);
                        enc.ok();
                    }
                    _ => enc.error(&format!(
                        "ERR CONFIG SET failed (possibly related to argument '{}') - argument must be between 0 and 9223372036854775807 inclusive",
                        String::from_utf8_lossy(&name)
                    )),
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
                b"timeout" => match parse_i64(value) {
                    Some(seconds) if (0..=i64::from(i32::MAX)).contains(&seconds) => {
                        call.ctx.shared.clients.set_idle_timeout_s(seconds as u64);
                        enc.ok();
                    }
                    Some(_) => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive",
                    ),
                    None => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer",
                    ),
                },
                b"stream-node-max-entries" | b"stream-node-max-bytes" => {
                    let entries = name.as_slice() == b"stream-node-max-entries";
                    match parse_i64(value) {
                        Some(n) if n >= 0 => {
                            if entries {
                                crate::store::stream::set_node_max_entries(n as usize);
                            } else {
                                crate::store::stream::set_node_max_bytes(n as usize);
                            }
                            enc.ok();
                        }
                        _ => enc.error(&format!(
                            "ERR CONFIG SET failed (possibly related to argument '{}') - argument must be between 0 and 9223372036854775807 inclusive",
                            String::from_utf8_lossy(&name)
                        )),
                    }
                }
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
                b"save" => match crate::persist::parse_save_rules(&text) {
                    Some(rules) => {
                        call.ctx.shared.persistence.set_rules(rules);
                        enc.ok();
                    }
                    None => enc.error(
                        "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters",
                    ),
                },
                other if Limit::named(other).is_some() => {
                    let (limit, _) = Limit::named(other).expect("checked");
                    // Errors name the setting as the client spelled it, as Redis's do.
                    let asked = String::from_utf8_lossy(other);
                    set_encoding_limit(limit, &asked, value, enc);
                }
                _ => enc.error(&format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                    String::from_utf8_lossy(&name)
                )),
            }
        }
        b"REWRITE" if call.args.len() == 2 => {
            match crate::reload::rewrite_config_file(call.ctx.shared) {
                Ok(keys) => {
                    log::info!("CONFIG REWRITE wrote {} setting(s): {keys:?}", keys.len());
                    enc.ok();
                }
                Err(crate::reload::RewriteFailure::NoConfigFile) => {
                    enc.error("ERR The server is running without a config file");
                }
                Err(error) => {
                    log::warn!("CONFIG REWRITE failed: {error}");
                    enc.error(&format!("ERR Rewriting config file: {error}"));
                }
            }
        }
        b"RESETSTAT" if call.args.len() == 2 => {
            for worker in call.ctx.shared.worker_stats.iter() {
                worker.reset();
            }
            for table in call.ctx.shared.latency.iter() {
                table.reset();
            }
            for tally in call.ctx.shared.errors.iter() {
                tally.reset();
            }
            enc.ok();
        }
        _ => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Ok(Flow::Continue)
}
