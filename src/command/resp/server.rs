//! The server commands: INFO (Redis's section and field names), COMMAND and TIME; CONFIG is
//! in [`super::settings`], the connection commands in [`super::connection`].

use super::error::RespError;
use super::spec::{command_keys, CommandSpec};
use super::Call;
use crate::clients::LimitBreach;
use crate::command::compat::REDIS_VERSION;
use crate::command::Flow;
use crate::config::ByteSize;
use crate::metrics::WorkerStats;
use ferrocache_protocol::resp::Encoder;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// TIME: unix seconds and microseconds.
pub fn time(_call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    enc.array(2);
    enc.bulk(now.as_secs().to_string().as_bytes());
    enc.bulk(now.subsec_micros().to_string().as_bytes());
    Ok(Flow::Continue)
}

/// INFO [section ...]
pub fn info(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
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
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nferrocache_version:{}\r\nos:{} {}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            shared.replication.run_id,
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
        // The Lua state's memory and the script cache's (scripting/).
        let (lua_bytes, scripts_bytes, scripts) = shared.scripting.figures();
        let _ = write!(
            text,
            "used_memory_lua:{lua_bytes}\r\nused_memory_vm_eval:{lua_bytes}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{scripts_bytes}\r\nnumber_of_cached_scripts:{scripts}\r\n",
            ByteSize(lua_bytes as u64),
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
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nworker_panics:{}\r\nevicted_clients:{}\r\nclient_query_buffer_limit_disconnections:{}\r\nclient_output_buffer_limit_disconnections:{}\r\ntotal_error_replies:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\n\r\n",
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
            crate::metrics::errors::ErrorTally::merged(shared.errors.iter()).total,
            shared.replication.syncs.full.load(Ordering::Relaxed),
            shared.replication.syncs.partial_ok.load(Ordering::Relaxed),
            shared.replication.syncs.partial_err.load(Ordering::Relaxed),
        );
    }
    if show("replication") {
        shared.replication.info_section(call.ctx.now_ms, &mut text);
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
    Ok(Flow::Continue)
}

fn command_info(enc: &mut Encoder<'_>, spec: &CommandSpec) {
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
pub fn command(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let sub = call.args.get(1).map(|s| s.to_ascii_uppercase());
    let named = |call: &Call<'_, '_>| -> Vec<&'static CommandSpec> {
        if call.args.len() <= 2 {
            call.commands.listed().iter().collect()
        } else {
            call.args[2..]
                .iter()
                .filter_map(|name| call.commands.lookup(&name.to_ascii_lowercase()))
                .collect()
        }
    };
    match sub.as_deref() {
        None => {
            enc.array(call.commands.listed().len());
            for spec in call.commands.listed() {
                command_info(enc, spec);
            }
        }
        Some(b"COUNT") => enc.integer(call.commands.listed().len() as i64),
        Some(b"LIST") => {
            enc.array(call.commands.listed().len());
            for spec in call.commands.listed() {
                enc.bulk(spec.name.as_bytes());
            }
        }
        Some(b"INFO") if call.args.len() > 2 => {
            // One entry per name asked for, a nil for a name that is no command (Redis
            // `commandInfoCommand`).
            enc.array(call.args.len() - 2);
            for name in &call.args[2..] {
                match call.commands.lookup(&name.to_ascii_lowercase()) {
                    Some(spec) => command_info(enc, spec),
                    None => enc.null(),
                }
            }
        }
        Some(b"INFO") => {
            enc.array(call.commands.listed().len());
            for spec in call.commands.listed() {
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
        // Redis 7.0's subcommand arity is -4: a command and at least one argument.
        Some(b"GETKEYS") if call.args.len() < 4 => {
            enc.error("ERR wrong number of arguments for 'command|getkeys' command")
        }
        Some(b"GETKEYS") => {
            let args = &call.args[2..];
            match call.commands.lookup(&args[0].to_ascii_lowercase()) {
                None => enc.error("ERR Invalid command specified"),
                Some(spec) if !spec.arity_ok(args.len()) => {
                    enc.error("ERR Invalid number of arguments specified for command")
                }
                Some(spec) => {
                    let keys = command_keys(spec, args);
                    if keys.is_empty() && !super::spec::keys_optional(spec) {
                        enc.error("ERR The command has no key arguments");
                    } else {
                        enc.array(keys.len());
                        for key in keys {
                            enc.bulk(key);
                        }
                    }
                }
            }
        }
        Some(_) => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Ok(Flow::Continue)
}
