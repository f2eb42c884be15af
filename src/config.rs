//! The server's settings: embedded defaults, overridden by a TOML file, overridden by flags.
//!
//! [`Config`] is what the rest of the server reads; it is built once by [`Config::load`] and
//! validated there, so every later reader can trust it. Unknown keys and bad values are
//! rejected with one line naming the key (`ConfigError`). Sizes are [`ByteSize`] and accept
//! human units (`64MiB`, `1m`, `4096`).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::store::EvictionPolicy;

/// A size in bytes; reads `1048576`, `"1m"`, `"1MB"`, `"1MiB"`, `"64k"` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n * 1024 * 1024)
    }

    pub const fn kib(n: u64) -> ByteSize {
        ByteSize(n * 1024)
    }

    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parses a size with an optional unit suffix (k, m, g; optionally followed by `b`, `ib`).
    pub fn parse(text: &str) -> Option<ByteSize> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().ok()?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1024,
            "m" | "mb" | "mib" => 1024 * 1024,
            "g" | "gb" | "gib" => 1024 * 1024 * 1024,
            _ => return None,
        };
        n.checked_mul(multiplier).map(ByteSize)
    }
}

impl ByteSize {
    /// Parses a memory value the way Redis's `memtoull` (util.c) does for CONFIG SET:
    /// decimal digits then an optional case-insensitive unit, where `k`, `m`, `g` are powers
    /// of 1000 and `kb`, `mb`, `gb` powers of 1024 (`b` or nothing: bytes). Like Redis, no
    /// digits reads as 0, a number past u64 saturates, and the multiplication wraps; a sign,
    /// space or any other unit is refused.
    pub fn parse_redis(text: &[u8]) -> Option<ByteSize> {
        /// memtoull copies the digits into a 128-byte buffer and refuses longer ones.
        const MAX_DIGITS: usize = 127;
        let split = text
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let multiplier: u64 = match unit.to_ascii_lowercase().as_slice() {
            b"" | b"b" => 1,
            b"k" => 1000,
            b"kb" => 1024,
            b"m" => 1000 * 1000,
            b"mb" => 1024 * 1024,
            b"g" => 1000 * 1000 * 1000,
            b"gb" => 1024 * 1024 * 1024,
            _ => return None,
        };
        if digits.len() > MAX_DIGITS {
            return None;
        }
        let value = digits.iter().fold(0u64, |value, digit| {
            value
                .saturating_mul(10)
                .saturating_add(u64::from(digit - b'0'))
        });
        Some(ByteSize(value.wrapping_mul(multiplier)))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{}", self.0 / size, unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => ByteSize::parse(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid size {text:?}"))),
        }
    }
}

/// Network listeners and connection handling. All restart-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Addresses to listen on for memcached (`-l`).
    pub listen: Vec<IpAddr>,
    /// memcached TCP port (`-p`); 0 disables TCP.
    pub port: u16,
    /// RESP port (`--resp-port`); 0 disables. The RESP listener lands with its own issue.
    pub resp_port: u16,
    /// Unix socket path (`-s`); empty = none.
    pub unix_socket: PathBuf,
    /// Permissions of the unix socket, octal (`-a`).
    pub unix_socket_mode: u32,
    /// Most simultaneous client connections (`-c`).
    pub max_connections: usize,
    /// Worker threads (`-t`); 0 = one per CPU.
    pub threads: usize,
    /// Allow the `shutdown` command (`-A`).
    pub enable_shutdown: bool,
    /// Allow `flush_all` (`-F` turns it off).
    pub enable_flush: bool,
    /// A connection whose unsent replies exceed this is closed.
    pub max_output_buffer: ByteSize,
    /// Redis's protected mode: while no password is set (RESP `requirepass`, memcached SASL),
    /// clients from beyond loopback are refused with an explanation. Live: `CONFIG SET
    /// protected-mode`.
    pub protected_mode: bool,
    /// Close a client connection idle this many seconds (memcached's `-o idle_timeout`,
    /// Redis's `timeout`); 0 = never. Blocked and subscribed RESP clients are not idle.
    /// Live: `CONFIG SET timeout`.
    pub idle_timeout_secs: u64,
    /// memcached text get, meta mg, binary get and RESP GET send values at least this long straight from segment
    /// memory (vectored writes, the segment pinned until sent) instead of copying them; "0B" =
    /// always copy.
    pub zero_copy_min: ByteSize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![IpAddr::from([127, 0, 0, 1])],
            port: 11211,
            resp_port: 6379,
            unix_socket: PathBuf::new(),
            unix_socket_mode: 0o700,
            max_connections: 1024,
            threads: 0,
            enable_shutdown: false,
            enable_flush: true,
            max_output_buffer: ByteSize::mib(64),
            protected_mode: true,
            idle_timeout_secs: 0,
            zero_copy_min: ByteSize::kib(16),
        }
    }
}

/// `[store] eviction_policy`: the store's [`EvictionPolicy`], written by its name
/// ("allkeys-lru", any case). An unknown name is refused while the file is parsed, with a
/// message that names the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EvictionPolicySetting(pub EvictionPolicy);

impl TryFrom<String> for EvictionPolicySetting {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        EvictionPolicy::from_name(&name)
            .map(EvictionPolicySetting)
            .ok_or_else(|| {
                format!(
                    "store.eviction_policy: {name:?} is not one of allkeys-lru, allkeys-lfu, \
                     volatile-lru, volatile-lfu, volatile-ttl, noeviction"
                )
            })
    }
}

impl From<EvictionPolicySetting> for String {
    fn from(setting: EvictionPolicySetting) -> String {
        setting.0.name().to_owned()
    }
}

/// `[resp] notify_keyspace_events`: Redis's event-class letters ("" = off, "KEA" = all),
/// kept as the flags [`crate::pubsub::notify`] reads. A letter that is not a class is refused
/// while the file is parsed, with a message that names the key; written back in the
/// canonical order CONFIG GET shows ("KEA" becomes "AKE", the same classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyspaceEvents(u32);

impl KeyspaceEvents {
    /// No notifications.
    pub const NONE: KeyspaceEvents = KeyspaceEvents(0);

    /// The setting for these [`crate::pubsub::notify`] flags.
    pub fn from_flags(flags: u32) -> KeyspaceEvents {
        KeyspaceEvents(flags)
    }

    /// The [`crate::pubsub::notify`] flags.
    pub fn flags(self) -> u32 {
        self.0
    }
}

impl TryFrom<String> for KeyspaceEvents {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        crate::pubsub::notify::parse(&text)
            .map(KeyspaceEvents)
            .ok_or_else(|| {
                format!(
                    "resp.notify_keyspace_events: {text:?} has a character that is not an event \
                     class"
                )
            })
    }
}

impl From<KeyspaceEvents> for String {
    fn from(events: KeyspaceEvents) -> String {
        crate::pubsub::notify::to_string(events.0)
    }
}

/// The cache itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Memory for items (`-m`, in megabytes on the command line). Live via `cache_memlimit`.
    pub memory_limit: ByteSize,
    /// Largest value (`-I`), 1 KiB to 128 MiB. Restart-only.
    pub item_size_max: ByteSize,
    /// What a write that does not fit does: "allkeys-lru" (default), "allkeys-lfu",
    /// "volatile-lru", "volatile-lfu", "volatile-ttl", or "noeviction" (`-M`: writes that do
    /// not fit fail). Live via `CONFIG SET maxmemory-policy`.
    pub eviction_policy: EvictionPolicySetting,
    /// Size of the segments items are appended into, 64 KiB to 1 MiB (a power of two; made
    /// smaller when the memory limit is under 8 segments). Restart-only.
    pub segment_size: ByteSize,
    /// Values at least this long are packed with zstd once they turn cold, when that saves
    /// 1/8 or more ("0B" = never compress). Writes always store values raw. Restart-only.
    pub compression_threshold: ByteSize,
    /// zstd level, 1 (fastest) to 19. Restart-only.
    pub compression_level: i32,
    /// A segment neither read nor given a new compressible value for this many seconds is
    /// cold: the maintenance thread packs its values not read for as long. Restart-only.
    pub compression_cold_secs: u32,
    /// Most segments the maintenance thread packs per tick (ten ticks a second; 0 = no
    /// packing at all). Restart-only.
    pub compression_segments_per_tick: usize,
}

/// A named key prefix whose items are counted apart (`[[pool]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    pub name: String,
    pub prefix: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            memory_limit: ByteSize::mib(64),
            item_size_max: ByteSize::mib(1),
            eviction_policy: EvictionPolicySetting(EvictionPolicy::AllKeysLru),
            segment_size: ByteSize::mib(1),
            compression_threshold: ByteSize::kib(4),
            compression_level: 1,
            compression_cold_secs: 30,
            compression_segments_per_tick: 4,
        }
    }
}

/// The RESP (Redis protocol) listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RespSection {
    /// Password clients must give with AUTH or HELLO (Redis `requirepass`); "" = none.
    pub requirepass: String,
    /// A subscriber whose undelivered messages pass this is disconnected at once (Redis
    /// `client-output-buffer-limit pubsub` hard limit).
    pub pubsub_output_hard_limit: ByteSize,
    /// ... or stays above this for `pubsub_output_soft_seconds` (the soft limit).
    pub pubsub_output_soft_limit: ByteSize,
    pub pubsub_output_soft_seconds: u64,
    /// Keyspace notifications, as Redis's `notify-keyspace-events` ("" = off, "KEA" = all).
    /// Live: `CONFIG SET notify-keyspace-events`.
    pub notify_keyspace_events: KeyspaceEvents,
    /// Only keys starting with one of these prefixes raise notifications (the pools to
    /// watch; empty = every key). Restart-only.
    pub notify_key_prefixes: Vec<String>,
    /// Largest argument of a RESP request, and so the largest string value RESP can store
    /// (Redis `proto-max-bulk-len`). Live: `CONFIG SET proto-max-bulk-len`.
    pub proto_max_bulk_len: ByteSize,
    /// Largest unparsed request a RESP connection may buffer before it is closed (Redis
    /// `client-query-buffer-limit`). Live: `CONFIG SET client-query-buffer-limit`.
    pub client_query_buffer_limit: ByteSize,
    /// Bound on the buffers of every connection together; past it the biggest clients are
    /// closed (Redis `maxmemory-clients`; 0 = no bound). Live: `CONFIG SET maxmemory-clients`.
    pub maxmemory_clients: ByteSize,
    /// Bound on the memory of the Lua state scripts run in (EVAL); past it a script fails
    /// with "not enough memory". Restart-only.
    pub lua_memory_limit: ByteSize,
    /// Milliseconds a script runs before other clients get `-BUSY` and SCRIPT KILL may stop
    /// it (Redis `busy-reply-threshold`, alias `lua-time-limit`; 0 = never busy). Live:
    /// `CONFIG SET busy-reply-threshold`.
    pub busy_reply_threshold_ms: u64,
}

impl Default for RespSection {
    fn default() -> Self {
        RespSection {
            requirepass: String::new(),
            pubsub_output_hard_limit: ByteSize::mib(32),
            pubsub_output_soft_limit: ByteSize::mib(8),
            pubsub_output_soft_seconds: 60,
            notify_keyspace_events: KeyspaceEvents::NONE,
            notify_key_prefixes: Vec::new(),
            proto_max_bulk_len: ByteSize::mib(512),
            client_query_buffer_limit: ByteSize::mib(1024),
            maxmemory_clients: ByteSize(0),
            lua_memory_limit: ByteSize::mib(256),
            busy_reply_threshold_ms: crate::scripting::DEFAULT_BUSY_THRESHOLD_MS,
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// 0 = warnings, 1 = info (`-v`), 2 = debug (`-vv`), 3+ = trace. Live via `verbosity`.
    pub verbosity: u8,
}

/// Authentication on the memcached port: SASL on the binary protocol (`-S`), or memcached
/// 1.6's text-protocol tokens (`-Y`). Restart-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SaslSection {
    /// Require SASL PLAIN authentication (`-S`). As in memcached, the memcached port then
    /// speaks only the binary protocol: a text command closes the connection.
    pub enabled: bool,
    /// Users, in memcached's password-database format: `user:password` per line
    /// (`--sasl-pwdb`, or the `MEMCACHED_SASL_PWDB` environment variable as in memcached).
    pub password_file: PathBuf,
    /// memcached's `-Y` (`--auth-file`): users as `user:password` lines; the memcached port
    /// then speaks only the text and meta protocols, and a connection authenticates with a
    /// `set` whose data is `user password`. ACL users with a password may log in too, and
    /// their rules apply. Not with `enabled`.
    pub auth_file: PathBuf,
}

/// Snapshots for warm restart (Redis's names). Restart-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistenceSection {
    /// Directory of the snapshot file (`--dir`).
    pub dir: PathBuf,
    /// The snapshot file's name in `dir` (`--dbfilename`).
    pub dbfilename: String,
    /// When to save in the background, as Redis's `save`: pairs of "seconds changes" (save
    /// after that many seconds if at least that many changes); "" = only on SAVE/BGSAVE
    /// (the default: this is a cache). With rules, the server also saves when it stops.
    pub save: String,
    /// Load `dir/dbfilename` at start when it exists.
    pub load_on_start: bool,
    /// What start-up does when that file is refused (truncated, corrupt, a future
    /// version): start empty (the default), or exit non-zero so an operator looks first.
    pub on_load_error: LoadErrorAction,
}

/// What start-up does with a snapshot it refuses (`[persistence] on_load_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadErrorAction {
    /// Log the reason in one line and serve an empty cache.
    #[default]
    StartEmpty,
    /// Log the reason and exit non-zero.
    Exit,
}

impl Default for PersistenceSection {
    fn default() -> Self {
        PersistenceSection {
            dir: PathBuf::from("."),
            dbfilename: "dump.fcs".into(),
            save: String::new(),
            load_on_start: true,
            on_load_error: LoadErrorAction::StartEmpty,
        }
    }
}

/// Replication (Redis's names): whom to follow, the backlog, the replica's behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationSection {
    /// Follow this primary at start: "host port" (`--replicaof`); "" = be a primary.
    /// Restart-only (`REPLICAOF` changes the role live).
    pub replicaof: String,
    /// A replica refuses client writes (`-READONLY`, memcached `SERVER_ERROR`).
    pub replica_read_only: bool,
    /// Most bytes of records the backlog keeps for partial resyncs (`repl-backlog-size`).
    pub backlog_size: ByteSize,
    /// Records older than this many seconds leave the backlog (`repl-backlog-ttl`; 0 = kept
    /// while they fit).
    pub backlog_ttl_secs: u64,
    /// The password a replica authenticates to its primary with ("" = none).
    pub masterauth: String,
    /// The ACL user a replica authenticates as ("" = the default user).
    pub masteruser: String,
    /// A primary refuses writes unless this many replicas are attached with a lag of at
    /// most `min_replicas_max_lag_secs` (`-NOREPLICAS`; Redis's `min-replicas-to-write`);
    /// 0 = off.
    pub min_replicas_to_write: usize,
    /// The lag (seconds since a replica's last ack) that still counts as good.
    pub min_replicas_max_lag_secs: u64,
    /// Sentinel promotes the replica with the lowest priority first; 0 = never promote this
    /// one (`replica-priority`, shown as INFO's `slave_priority`). Live.
    pub replica_priority: u32,
    /// The address a replica gives its primary to list it under (`REPLCONF ip-address`,
    /// Redis's `replica-announce-ip`); "" = the address the primary sees. Live (used at the
    /// next handshake).
    pub replica_announce_ip: String,
    /// The port a replica gives its primary (`REPLCONF listening-port`,
    /// `replica-announce-port`); 0 = its own RESP port. Live (used at the next handshake).
    pub replica_announce_port: u16,
    /// Whether Sentinel lists this replica in `SENTINEL REPLICAS` (`replica-announced`,
    /// INFO's `replica_announced`). Live.
    pub replica_announced: bool,
}

impl Default for ReplicationSection {
    fn default() -> Self {
        ReplicationSection {
            replicaof: String::new(),
            replica_read_only: true,
            backlog_size: ByteSize::mib(10),
            backlog_ttl_secs: 3600,
            masterauth: String::new(),
            masteruser: String::new(),
            min_replicas_to_write: 0,
            min_replicas_max_lag_secs: 10,
            replica_priority: 100,
            replica_announce_ip: String::new(),
            replica_announce_port: 0,
            replica_announced: true,
        }
    }
}

impl ReplicationSection {
    /// The primary of `replicaof`, if set and well formed.
    pub fn primary(&self) -> Option<(String, u16)> {
        let mut words = self.replicaof.split_whitespace();
        let host = words.next()?.to_string();
        let port = words.next()?.parse().ok()?;
        words.next().is_none().then_some((host, port))
    }
}

/// Latency tracking and the slow log (Redis's `slowlog-*` settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Commands at least this many microseconds long go in the slow log; negative turns
    /// it off, 0 logs every command. Live: `CONFIG SET slowlog-log-slower-than`.
    pub slowlog_log_slower_than_us: i64,
    /// Entries the slow log keeps. Live: `CONFIG SET slowlog-max-len`.
    pub slowlog_max_len: usize,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            slowlog_log_slower_than_us: 10_000,
            slowlog_max_len: 128,
        }
    }
}

/// TLS listeners (memcached and RESP) and their certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// memcached protocol over TLS (`--tls-port`); 0 = off. Restart-only.
    pub port: u16,
    /// RESP over TLS (`--resp-tls-port`, Redis `tls-port`); 0 = off. Restart-only.
    pub resp_port: u16,
    /// Certificate chain, PEM (Redis `tls-cert-file`, memcached `ssl_chain_cert`). Live.
    #[serde(alias = "ssl_chain_cert")]
    pub cert_file: PathBuf,
    /// Private key, PEM (Redis `tls-key-file`, memcached `ssl_key`). Live.
    #[serde(alias = "ssl_key")]
    pub key_file: PathBuf,
    /// CA bundle client certificates are checked against, PEM (Redis `tls-ca-cert-file`,
    /// memcached `ssl_ca_cert`). Live.
    #[serde(alias = "ssl_ca_cert")]
    pub ca_cert_file: PathBuf,
    /// "yes" (a valid client certificate is required), "no", or "optional" (Redis
    /// `tls-auth-clients`). Live.
    pub auth_clients: String,
    /// Versions offered, "TLSv1.2 TLSv1.3" (Redis `tls-protocols`). Live.
    pub protocols: String,
    /// "CN": a RESP client whose verified certificate's common name is an ACL user that is
    /// on is authenticated as that user; "off" (valkey 8.1 `tls-auth-clients-user`). Live.
    pub auth_clients_user: String,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            port: 0,
            resp_port: 0,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            ca_cert_file: PathBuf::new(),
            auth_clients: "yes".into(),
            protocols: "TLSv1.2 TLSv1.3".into(),
            auth_clients_user: "off".into(),
        }
    }
}

/// The HTTP port: cache API, `/metrics`, `/healthz`, admin stats and the dashboard.
/// Restart-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// `ip:port` to listen on (`--http-port` sets the port on 127.0.0.1); "" = off.
    pub listen: String,
    /// Serve HTTPS instead: TLS with the `[tls]` certificate, key, CA bundle, client
    /// authentication and protocol settings (reloaded with them).
    pub tls: bool,
    /// Bearer token the admin routes (`/metrics`, `/v1/admin/*`) require; "" = none.
    pub admin_token: String,
    /// A file holding the token (first line), read at start; used when `admin_token` is "".
    pub admin_token_file: PathBuf,
    /// The ACL user a request with the admin token runs as (its rules apply to the cache API
    /// and it must be allowed `info` for the admin routes).
    pub admin_token_user: String,
    /// Largest request head (request line and headers) read; larger gets 431.
    pub max_header_bytes: ByteSize,
    /// Largest request body; larger gets 413. Values are also bound by `item_size_max`.
    pub max_body_bytes: ByteSize,
    /// A keep-alive connection that sends nothing for this many seconds is closed (a
    /// half-sent request too); 0 = never.
    pub idle_timeout_secs: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: String::new(),
            tls: false,
            admin_token: String::new(),
            admin_token_file: PathBuf::new(),
            admin_token_user: "default".into(),
            max_header_bytes: ByteSize::kib(8),
            max_body_bytes: ByteSize::mib(2),
            idle_timeout_secs: 60,
        }
    }
}

impl PersistenceSection {
    /// The snapshot file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.dbfilename)
    }

    /// The `save` rules (validated at load).
    pub fn save_rules(&self) -> Vec<(u64, u64)> {
        crate::persist::parse_save_rules(&self.save).unwrap_or_default()
    }
}

impl TlsSection {
    /// Whether a memcached or RESP TLS listener is configured (see [`Config::needs_tls`] for
    /// the HTTP port too).
    pub fn enabled(&self) -> bool {
        self.port != 0 || self.resp_port != 0
    }
}

/// ACL users (Redis's `user` directives and `aclfile`). Restart-only; changed at run time
/// with ACL SETUSER/DELUSER/LOAD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AclSection {
    /// Users in Redis's syntax: `"user app1 on >password ~app1:* +@read"`.
    pub users: Vec<String>,
    /// An ACL file of `user ...` lines (Redis `aclfile`), read at start and by ACL LOAD,
    /// written by ACL SAVE; "" = none.
    pub file: PathBuf,
}

/// Everything the server reads at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreSection,
    pub resp: RespSection,
    pub log: LogSection,
    pub sasl: SaslSection,
    pub persistence: PersistenceSection,
    pub replication: ReplicationSection,
    pub tls: TlsSection,
    pub acl: AclSection,
    pub metrics: MetricsSection,
    pub http: HttpSection,
    /// Pools: `[[pool]] name = "sessions" prefix = "sess:"`.
    pub pool: Vec<PoolSection>,
    /// The file this config was read from (`--config`), for CONFIG REWRITE; not a setting.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

/// Longest `replica-announce-ip`/`REPLCONF ip-address` Redis takes (`NET_HOST_STR_LEN` - 1).
pub const MAX_ANNOUNCE_IP_LEN: usize = 255;

/// Smallest and largest `item_size_max` (memcached: 1 KiB .. 1 GiB; we stop at 128 MiB).
pub const ITEM_SIZE_MAX_RANGE: (u64, u64) = (1024, 128 * 1024 * 1024);

impl Config {
    /// Whether any listener speaks TLS: a memcached or RESP TLS port, or the HTTP port with
    /// `[http] tls`.
    pub fn needs_tls(&self) -> bool {
        self.tls.enabled() || (self.http.tls && !self.http.listen.is_empty())
    }

    /// The eviction policy the store starts with.
    pub fn eviction_policy(&self) -> EvictionPolicy {
        self.store.eviction_policy.0
    }

    /// The keyspace-notification flags the server starts with.
    pub fn notify_flags(&self) -> u32 {
        self.resp.notify_keyspace_events.flags()
    }

    /// Reads a TOML file on top of the defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text on top of the defaults; the error is one line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e: toml::de::Error| e.message().trim().replace('\n', " "))
    }

    /// Checks cross-field rules once, so the rest of the server can trust the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if crate::persist::parse_save_rules(&self.persistence.save).is_none() {
            return Err(ConfigError::Invalid {
                setting: "persistence.save",
                message: format!(
                    "{:?} is not pairs of \"seconds changes\" with seconds above 0",
                    self.persistence.save
                ),
            });
        }
        if !self.replication.replicaof.trim().is_empty() && self.replication.primary().is_none() {
            return Err(ConfigError::Invalid {
                setting: "replication.replicaof",
                message: format!("{:?} is not \"host port\"", self.replication.replicaof),
            });
        }
        if self.replication.replica_priority > i32::MAX as u32 {
            return Err(ConfigError::Invalid {
                setting: "replication.replica_priority",
                message: format!(
                    "{} is above {}",
                    self.replication.replica_priority,
                    i32::MAX
                ),
            });
        }
        let announce_ip = &self.replication.replica_announce_ip;
        if announce_ip.len() > MAX_ANNOUNCE_IP_LEN || announce_ip.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                setting: "replication.replica_announce_ip",
                message: format!("{announce_ip:?} is not a host name or address"),
            });
        }
        let name = &self.persistence.dbfilename;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(ConfigError::Invalid {
                setting: "persistence.dbfilename",
                message: format!("{name:?} is not a plain file name"),
            });
        }
        let item = self.store.item_size_max.bytes();
        let (low, high) = ITEM_SIZE_MAX_RANGE;
        if item < low {
            return Err(ConfigError::Invalid {
                setting: "store.item_size_max (-I)",
                message: format!("{item} bytes is below the minimum of 1KiB"),
            });
        }
        if item > high {
            return Err(ConfigError::Invalid {
                setting: "store.item_size_max (-I)",
                message: format!(
                    "{} is above the maximum of 128MiB",
                    self.store.item_size_max
                ),
            });
        }
        if self.store.memory_limit.bytes() == 0 {
            return Err(ConfigError::Invalid {
                setting: "store.memory_limit (-m)",
                message: "must be above zero".into(),
            });
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError::Invalid {
                setting: "server.max_connections (-c)",
                message: "must be above zero".into(),
            });
        }
        if self.server.unix_socket_mode > 0o777 {
            return Err(ConfigError::Invalid {
                setting: "server.unix_socket_mode (-a)",
                message: format!(
                    "{:o} is not a permission mask",
                    self.server.unix_socket_mode
                ),
            });
        }
        if self.sasl.enabled
            && self.sasl.password_file.as_os_str().is_empty()
            && self.acl.users.is_empty()
            && self.acl.file.as_os_str().is_empty()
        {
            return Err(ConfigError::Invalid {
                setting: "sasl.password_file (--sasl-pwdb)",
                message: "SASL is enabled but no password file is given (or MEMCACHED_SASL_PWDB), \
                          and no ACL users"
                    .into(),
            });
        }
        if self.sasl.enabled && !self.sasl.auth_file.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                setting: "sasl.auth_file (-Y)",
                message: "text-protocol authentication cannot be used with SASL (-S), which \
                          makes the port binary only"
                    .into(),
            });
        }
        let segment = self.store.segment_size.bytes();
        if !(64 * 1024..=1024 * 1024).contains(&segment) || !segment.is_power_of_two() {
            return Err(ConfigError::Invalid {
                setting: "store.segment_size",
                message: format!("{segment} bytes is not a power of two from 64KiB to 1MiB"),
            });
        }
        if !(1..=19).contains(&self.store.compression_level) {
            return Err(ConfigError::Invalid {
                setting: "store.compression_level",
                message: format!("{} is not from 1 to 19", self.store.compression_level),
            });
        }
        if self.store.compression_segments_per_tick > 1024 {
            return Err(ConfigError::Invalid {
                setting: "store.compression_segments_per_tick",
                message: format!(
                    "{} is more than 1024",
                    self.store.compression_segments_per_tick
                ),
            });
        }
        let mut names = crate::hashing::HashSet::default();
        for pool in &self.pool {
            if pool.name == "default" || pool.name.is_empty() || !names.insert(&pool.name) {
                return Err(ConfigError::Invalid {
                    setting: "pool.name",
                    message: format!("{:?} is empty, \"default\", or used twice", pool.name),
                });
            }
            if pool.prefix.is_empty() {
                return Err(ConfigError::Invalid {
                    setting: "pool.prefix",
                    message: format!("pool {:?} has an empty prefix", pool.name),
                });
            }
        }
        if !self.acl.users.is_empty() && !self.acl.file.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                setting: "acl.users",
                message: "users in the config and an ACL file (acl.file) cannot be used together, as in Redis".into(),
            });
        }
        if crate::tls::settings::ClientAuth::parse(&self.tls.auth_clients).is_none() {
            return Err(ConfigError::Invalid {
                setting: "tls.auth_clients",
                message: format!(
                    "{:?} is not one of yes, no, optional",
                    self.tls.auth_clients
                ),
            });
        }
        if crate::tls::settings::CertificateUser::parse(&self.tls.auth_clients_user).is_none() {
            return Err(ConfigError::Invalid {
                setting: "tls.auth_clients_user",
                message: format!("{:?} is not one of off, CN", self.tls.auth_clients_user),
            });
        }
        if let Err(e) = crate::tls::settings::protocol_versions(&self.tls.protocols) {
            return Err(ConfigError::Invalid {
                setting: "tls.protocols",
                message: e.to_string(),
            });
        }
        if self.needs_tls() {
            for (setting, path) in [
                ("tls.cert_file (--tls-cert-file)", &self.tls.cert_file),
                ("tls.key_file (--tls-key-file)", &self.tls.key_file),
            ] {
                if path.as_os_str().is_empty() {
                    return Err(ConfigError::Invalid {
                        setting,
                        message: "required when a TLS port or http.tls is set".into(),
                    });
                }
            }
        }
        if !self.http.listen.is_empty() && self.http.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::Invalid {
                setting: "http.listen (--http-port)",
                message: format!("{:?} is not an ip:port address", self.http.listen),
            });
        }
        if self.http.max_header_bytes.bytes() < 512 {
            return Err(ConfigError::Invalid {
                setting: "http.max_header_bytes",
                message: "must be at least 512 bytes".into(),
            });
        }
        if self.server.port == 0
            && self.tls.port == 0
            && self.server.unix_socket.as_os_str().is_empty()
        {
            return Err(ConfigError::Invalid {
                setting: "server.port (-p)",
                message: "no TCP port, no TLS port and no unix socket: nothing to listen on".into(),
            });
        }
        Ok(())
    }

    /// Worker threads after resolving 0 to the number of CPUs.
    pub fn worker_threads(&self) -> usize {
        if self.server.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.server.threads
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_memory_values_follow_memtoull() {
        let parse = |text: &str| ByteSize::parse_redis(text.as_bytes()).map(ByteSize::bytes);
        // Each expectation is what redis-server 7 answered to CONFIG SET maxmemory.
        assert_eq!(parse("100m"), Some(100_000_000));
        assert_eq!(parse("100mb"), Some(100 * 1024 * 1024));
        assert_eq!(parse("100MB"), Some(100 * 1024 * 1024));
        assert_eq!(parse("1k"), Some(1000));
        assert_eq!(parse("1Kb"), Some(1024));
        assert_eq!(parse("1g"), Some(1_000_000_000));
        assert_eq!(parse("1gb"), Some(1 << 30));
        assert_eq!(parse("1B"), Some(1));
        assert_eq!(parse("01m"), Some(1_000_000));
        assert_eq!(parse("100"), Some(100));
        assert_eq!(parse(""), Some(0));
        assert_eq!(parse("kb"), Some(0));
        assert_eq!(parse("18446744073709551616"), Some(u64::MAX));
        assert_eq!(
            parse("18446744073709551615k"),
            Some(18_446_744_073_709_550_616)
        );
        assert_eq!(
            parse("99999999999999999999999m"),
            Some(18_446_744_073_708_551_616)
        );
        for refused in [
            "1.5m", "-1", "+1m", "abc", "1tb", "1 m", " 1m", "1m ", "0x10", "1kib",
        ] {
            assert_eq!(parse(refused), None, "{refused}");
        }
        assert_eq!(parse(&"1".repeat(128)), None);
        assert_eq!(parse(&"1".repeat(127)), Some(u64::MAX));
    }

    #[test]
    fn sizes_accept_human_units() {
        assert_eq!(ByteSize::parse("1048576"), Some(ByteSize(1 << 20)));
        assert_eq!(ByteSize::parse("1m"), Some(ByteSize(1 << 20)));
        assert_eq!(ByteSize::parse("64MiB"), Some(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("2k"), Some(ByteSize(2048)));
        assert_eq!(ByteSize::parse("1 GB"), Some(ByteSize(1 << 30)));
        assert_eq!(ByteSize::parse("12q"), None);
        assert_eq!(ByteSize::parse(""), None);
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn shipped_config_file_equals_the_defaults() {
        let text = include_str!("../etc/ferrocache.toml");
        let parsed = Config::from_toml(text).expect("etc/ferrocache.toml parses");
        assert_eq!(parsed, Config::default());
        parsed.validate().expect("defaults are valid");
    }

    #[test]
    fn defaults_survive_a_toml_round_trip() {
        let text = toml::to_string(&Config::default()).expect("serialize");
        assert_eq!(Config::from_toml(&text).expect("parse"), Config::default());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Config::from_toml("[server]\nprot = 1\n").unwrap_err();
        assert!(err.contains("prot"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn sasl_needs_a_password_file() {
        let mut config = Config::default();
        config.sasl.enabled = true;
        assert!(config.validate().is_err());
        config.sasl.password_file = PathBuf::from("/etc/ferrocache/users");
        assert!(config.validate().is_ok());
        // memcached refuses the binary protocol with text-protocol authentication.
        config.sasl.auth_file = PathBuf::from("/etc/ferrocache/auth");
        assert!(config.validate().is_err());
        config.sasl.enabled = false;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn memcached_tls_spellings_are_accepted() {
        let config = Config::from_toml(
            "[tls]\nport = 11212\nssl_chain_cert = \"c.pem\"\nssl_key = \"k.pem\"\n\
             ssl_ca_cert = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(config.tls.cert_file, PathBuf::from("c.pem"));
        assert_eq!(config.tls.key_file, PathBuf::from("k.pem"));
        assert_eq!(config.tls.ca_cert_file, PathBuf::from("ca.pem"));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_tls_port_needs_a_certificate_and_a_known_auth_mode() {
        let mut config = Config::default();
        config.tls.resp_port = 6380;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("tls.cert_file"), "{err}");
        config.tls.cert_file = PathBuf::from("c.pem");
        config.tls.key_file = PathBuf::from("k.pem");
        assert!(config.validate().is_ok());
        config.tls.auth_clients = "sometimes".into();
        assert!(config.validate().is_err());
    }

    #[test]
    fn item_size_bounds_are_checked() {
        let mut config = Config::default();
        config.store.item_size_max = ByteSize(512);
        assert!(config.validate().is_err());
        config.store.item_size_max = ByteSize::mib(129);
        assert!(config.validate().is_err());
        config.store.item_size_max = ByteSize::mib(128);
        assert!(config.validate().is_ok());
    }
}
