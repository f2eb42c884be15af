//! Reloading the config file on SIGHUP: which settings take effect live, which wait for a
//! restart, and what a reload changed.
//!
//! A reload builds the config exactly as start-up did (defaults < file < the same flags), so a
//! flag still wins over the file. It compares the result with what runs, key by key: a changed
//! key listed in [`LIVE_SETTINGS`] is applied through the same path as its runtime command
//! (`cache_memlimit`, `verbosity`, `CONFIG SET`); any other changed key is logged as
//! restart-only at every reload until the restart, never silently dropped. A file that does not
//! parse or validate changes nothing: the old config stays and the error is returned.
//!
//! TLS certificates and keys are read again at every reload, changed paths or not (a renewed
//! certificate usually keeps its file name): connections accepted afterwards get them, open
//! ones keep theirs. Files that do not make a valid TLS configuration fail the whole reload.
//!
//! The other way round, [`running_config`] reads the live settings back out of the running
//! server, and [`rewrite_config_file`] (CONFIG REWRITE) writes those that differ from the
//! config file into it, through [`crate::config_rewrite`].
//!
//! Never touches a socket or a thread: it changes settings that workers already read live
//! (atomics in the store, the pub/sub registry, [`crate::clients::Clients`], the log level).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::cli::Flags;
use crate::clients::ClientMemoryBound;
use crate::config::{ByteSize, Config, ConfigError, EvictionPolicySetting, KeyspaceEvents};
use crate::shared::{unix_millis, Shared};

/// How one live setting reaches the running server, from the newly loaded config.
type ApplySetting = fn(&Config, &Shared);

/// The settings a reload changes in place, by their `section.key` name in the config file.
/// Every other key is restart-only. `etc/ferrocache.toml` marks exactly these as "Live" (a
/// test holds the two together).
pub const LIVE_SETTINGS: &[(&str, ApplySetting)] = &[
    ("store.memory_limit", |config, shared| {
        shared
            .store
            .set_memory_limit(config.store.memory_limit.bytes() as usize, unix_millis())
    }),
    ("store.eviction_policy", |config, shared| {
        shared.store.set_eviction_policy(config.eviction_policy())
    }),
    ("resp.notify_keyspace_events", |config, shared| {
        shared.pubsub.set_notify_flags(config.notify_flags())
    }),
    ("server.idle_timeout_secs", |config, shared| {
        shared
            .clients
            .set_idle_timeout_s(config.server.idle_timeout_secs)
    }),
    ("resp.proto_max_bulk_len", |config, shared| {
        shared
            .clients
            .set_proto_max_bulk_len(config.resp.proto_max_bulk_len.bytes())
    }),
    ("resp.client_query_buffer_limit", |config, shared| {
        shared
            .clients
            .set_query_buffer_limit(config.resp.client_query_buffer_limit.bytes())
    }),
    ("resp.maxmemory_clients", |config, shared| {
        shared
            .clients
            .set_maxmemory_clients(ClientMemoryBound::Bytes(
                config.resp.maxmemory_clients.bytes(),
            ))
    }),
    ("resp.busy_reply_threshold_ms", |config, shared| {
        shared
            .scripting
            .set_busy_threshold_ms(config.resp.busy_reply_threshold_ms)
    }),
    ("server.protected_mode", |config, shared| {
        shared
            .protected_mode
            .store(config.server.protected_mode, Ordering::Relaxed)
    }),
    ("tls.cert_file", tls_installed_first),
    ("tls.key_file", tls_installed_first),
    ("tls.ca_cert_file", tls_installed_first),
    ("tls.auth_clients", tls_installed_first),
    ("tls.protocols", tls_installed_first),
    ("tls.auth_clients_user", tls_installed_first),
    ("metrics.slowlog_log_slower_than_us", |config, shared| {
        shared
            .slowlog
            .set_threshold_us(config.metrics.slowlog_log_slower_than_us)
    }),
    ("metrics.slowlog_max_len", |config, shared| {
        shared.slowlog.set_max_len(config.metrics.slowlog_max_len)
    }),
    ("replication.replica_priority", |config, shared| {
        shared
            .replication
            .identity
            .set_priority(config.replication.replica_priority)
    }),
    ("replication.replica_announce_ip", |config, shared| {
        shared
            .replication
            .identity
            .set_announce_ip(config.replication.replica_announce_ip.clone())
    }),
    ("replication.replica_announce_port", |config, shared| {
        shared
            .replication
            .identity
            .set_announce_port(config.replication.replica_announce_port)
    }),
    ("replication.replica_announced", |config, shared| {
        shared
            .replication
            .identity
            .set_announced(config.replication.replica_announced)
    }),
    ("log.verbosity", |config, shared| {
        let level = usize::from(config.log.verbosity);
        shared.verbosity.store(level, Ordering::Relaxed);
        if std::env::var_os("RUST_LOG").is_none() {
            log::set_max_level(crate::logging::level_for_verbosity(level));
        }
    }),
];

/// The config as the server runs now: the start-up config with every [`LIVE_SETTINGS`] key
/// read back from where it lives (a `maxmemory-clients` given as a percentage has no file
/// form and stays as started).
pub fn running_config(shared: &Shared) -> Config {
    let mut config = shared.config.clone();
    config.store.memory_limit = ByteSize(shared.store.memory_limit() as u64);
    config.store.eviction_policy = EvictionPolicySetting(shared.store.eviction_policy());
    config.resp.notify_keyspace_events = KeyspaceEvents::from_flags(shared.pubsub.notify_flags());
    config.server.idle_timeout_secs = shared.clients.idle_timeout_s();
    config.resp.proto_max_bulk_len = ByteSize(shared.clients.proto_max_bulk_len() as u64);
    config.resp.client_query_buffer_limit = ByteSize(shared.clients.query_buffer_limit() as u64);
    if let ClientMemoryBound::Bytes(bytes) = shared.clients.maxmemory_clients() {
        config.resp.maxmemory_clients = ByteSize(bytes);
    }
    config.server.protected_mode = shared.protected_mode.load(Ordering::Relaxed);
    if let Some(tls) = &shared.tls {
        config.tls = tls.settings();
    }
    config.metrics.slowlog_log_slower_than_us = shared.slowlog.threshold_us();
    config.metrics.slowlog_max_len = shared.slowlog.max_len();
    config.log.verbosity =
        u8::try_from(shared.verbosity.load(Ordering::Relaxed)).unwrap_or(u8::MAX);
    config.replication.replicaof = match shared.replication.role() {
        crate::replication::Role::Primary => String::new(),
        crate::replication::Role::Replica { host, port } => format!("{host} {port}"),
    };
    config.replication.replica_read_only = shared.replication.read_only();
    shared
        .replication
        .identity
        .store_into(&mut config.replication);
    config
}

/// Settings CONFIG REWRITE also writes though a reload does not change them: the role
/// (REPLICAOF, as Sentinel's failover needs it to survive a restart) and read-only.
const REWRITTEN_RUNTIME_SETTINGS: &[&str] =
    &["replication.replicaof", "replication.replica_read_only"];

/// Why CONFIG REWRITE did not rewrite.
#[derive(Debug, thiserror::Error)]
pub enum RewriteFailure {
    /// Started without `--config`: there is no file to rewrite.
    #[error("The server is running without a config file")]
    NoConfigFile,
    #[error(transparent)]
    File(#[from] crate::config_rewrite::RewriteError),
}

/// CONFIG REWRITE: writes into the config file the server started with every live setting
/// whose running value differs from what the file says; every other line stays. Returns the
/// keys written.
pub fn rewrite_config_file(shared: &Shared) -> Result<Vec<String>, RewriteFailure> {
    let path = shared
        .config
        .source_file
        .clone()
        .ok_or(RewriteFailure::NoConfigFile)?;
    let text = std::fs::read_to_string(&path).map_err(|source| {
        crate::config_rewrite::RewriteError::Read {
            path: path.clone(),
            source,
        }
    })?;
    let in_file =
        Config::from_toml(&text).map_err(|message| crate::config_rewrite::RewriteError::Parse {
            path: path.clone(),
            message,
        })?;
    let running =
        toml::Value::try_from(running_config(shared)).unwrap_or(toml::Value::Boolean(false));
    let in_file = toml::Value::try_from(in_file).unwrap_or(toml::Value::Boolean(false));
    let at = |value: &toml::Value, key: &str| -> Option<toml::Value> {
        let (section, name) = key.split_once('.')?;
        value.get(section)?.get(name).cloned()
    };
    let keys = LIVE_SETTINGS
        .iter()
        .map(|(key, _)| *key)
        .chain(REWRITTEN_RUNTIME_SETTINGS.iter().copied());
    let changes: Vec<(String, toml::Value)> = keys
        .filter_map(|key| {
            let now = at(&running, key)?;
            (at(&in_file, key).as_ref() != Some(&now)).then(|| (key.to_string(), now))
        })
        .collect();
    crate::config_rewrite::rewrite(&path, &changes)?;
    Ok(changes.into_iter().map(|(key, _)| key).collect())
}

/// The TLS settings reach the server as a whole, before any other setting, so that a bad
/// certificate fails the reload while nothing has changed yet (see [`Reloader::reload`]).
fn tls_installed_first(_: &Config, _: &Shared) {}

/// One key whose value differs between the running config and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `section.key`, as in the config file.
    pub key: String,
    pub old: String,
    pub new: String,
}

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Live settings now in effect.
    pub applied: Vec<Change>,
    /// Settings that differ but take effect only after a restart.
    pub restart_only: Vec<Change>,
    /// The TLS certificate, key and CA bundle were read again.
    pub tls_reloaded: bool,
}

impl ReloadReport {
    /// Logs each change: applied ones at info, restart-only ones as warnings.
    pub fn log(&self) {
        for change in &self.applied {
            log::info!(
                "reload: {} changed from {} to {}",
                change.key,
                change.old,
                change.new
            );
        }
        for change in &self.restart_only {
            log::warn!(
                "reload: {} changed from {} to {} but is restart-only: it takes effect at the \
                 next restart",
                change.key,
                change.old,
                change.new
            );
        }
        if self.tls_reloaded {
            log::info!(
                "reload: TLS certificate, key and CA bundle read again (for new connections)"
            );
        }
        if self.applied.is_empty() && self.restart_only.is_empty() {
            log::info!("reload: no setting changed");
        }
    }
}

/// Rebuilds the config from the start-up flags and applies what may change live.
pub struct Reloader {
    flags: Flags,
    /// What runs: the start-up config with every live change applied since.
    running: BTreeMap<String, toml::Value>,
}

impl Reloader {
    /// `flags` are those the server started with; `running` the config they produced.
    pub fn new(flags: Flags, running: &Config) -> Reloader {
        Reloader {
            flags,
            running: flatten(running),
        }
    }

    /// Reads the file again and applies it to `shared`. On an error nothing has changed.
    pub fn reload(&mut self, shared: &Shared) -> Result<ReloadReport, ConfigError> {
        let loaded = self.flags.clone().into_config()?;
        let mut report = ReloadReport::default();
        if let Some(tls) = &shared.tls {
            tls.reload(&loaded.tls).map_err(|e| ConfigError::Invalid {
                setting: "tls",
                message: e.to_string(),
            })?;
            report.tls_reloaded = true;
        }
        for (key, new) in flatten(&loaded) {
            let old = self.running.get(&key).cloned();
            if old.as_ref() == Some(&new) {
                continue;
            }
            let change = Change {
                key: key.clone(),
                old: old.map_or_else(|| "(unset)".into(), |value| value.to_string()),
                new: new.to_string(),
            };
            match LIVE_SETTINGS.iter().find(|(name, _)| *name == key) {
                Some((_, apply)) => {
                    apply(&loaded, shared);
                    self.running.insert(key, new);
                    report.applied.push(change);
                }
                None => report.restart_only.push(change),
            }
        }
        Ok(report)
    }
}

/// Every setting of `config` by its `section.key` name (top-level arrays such as `pool` as
/// one setting), so any key added to [`Config`] takes part in a reload without a line here.
fn flatten(config: &Config) -> BTreeMap<String, toml::Value> {
    let mut settings = BTreeMap::new();
    let table = match toml::Value::try_from(config) {
        Ok(toml::Value::Table(table)) => table,
        other => panic!("Config serializes to a TOML table, got {other:?}"),
    };
    for (section, value) in table {
        match value {
            toml::Value::Table(keys) => {
                for (key, value) in keys {
                    settings.insert(format!("{section}.{key}"), value);
                }
            }
            whole => {
                settings.insert(section, whole);
            }
        }
    }
    settings
}

/// The `section.key` names of every setting (for the documentation checks).
pub fn setting_names() -> Vec<String> {
    flatten(&Config::default()).into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn reloader_for(path: &std::path::Path) -> (Reloader, Shared) {
        let flags = Flags::try_parse_from(["ferrocache", "--config", path.to_str().unwrap()])
            .expect("flags");
        let config = flags.clone().into_config().expect("config");
        let shared = Shared::new(config.clone(), crate::command::catalogue()).expect("shared");
        (Reloader::new(flags, &config), shared)
    }

    #[test]
    fn live_settings_are_applied_and_others_reported_as_restart_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferrocache.toml");
        std::fs::write(&path, "[store]\nmemory_limit = \"64MiB\"\n").unwrap();
        let (mut reloader, shared) = reloader_for(&path);
        std::fs::write(
            &path,
            "[store]\nmemory_limit = \"32MiB\"\nitem_size_max = \"2MiB\"\n\
             [resp]\nmaxmemory_clients = \"1MiB\"\n",
        )
        .unwrap();
        let report = reloader.reload(&shared).expect("reload");
        let keys = |changes: &[Change]| changes.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&report.applied),
            ["resp.maxmemory_clients", "store.memory_limit"]
        );
        assert_eq!(keys(&report.restart_only), ["store.item_size_max"]);
        assert_eq!(shared.store.memory_limit(), 32 << 20);
        assert_eq!(
            shared.clients.maxmemory_clients(),
            ClientMemoryBound::Bytes(1 << 20)
        );
        // Still pending after a second reload: reported again, not forgotten.
        let again = reloader.reload(&shared).expect("reload");
        assert!(again.applied.is_empty());
        assert_eq!(keys(&again.restart_only), ["store.item_size_max"]);
    }

    #[test]
    fn a_bad_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferrocache.toml");
        std::fs::write(&path, "[store]\nmemory_limit = \"64MiB\"\n").unwrap();
        let (mut reloader, shared) = reloader_for(&path);
        std::fs::write(
            &path,
            "[store]\nmemory_limit = \"32MiB\"\neviction_policy = \"nope\"\n",
        )
        .unwrap();
        let err = reloader.reload(&shared).unwrap_err();
        assert!(err.to_string().contains("eviction_policy"), "{err}");
        assert_eq!(shared.store.memory_limit(), 64 << 20);
    }

    #[test]
    fn every_live_setting_names_a_real_key() {
        let names = setting_names();
        for (key, _) in LIVE_SETTINGS {
            assert!(
                names.iter().any(|name| name == key),
                "{key} is not a setting"
            );
        }
    }
}
