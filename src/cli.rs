//! Command-line flags, spelled as memcached spells them, and how they override the config.
//!
//! [`Flags`] only parses; [`Flags::into_config`] layers file and flags over the defaults. Every
//! error is one line naming the flag or key.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser};

use crate::config::{ByteSize, Config, ConfigError, EvictionPolicySetting};
use crate::store::EvictionPolicy;

/// ferrocache: a memcached- and Redis-compatible cache server.
#[derive(Debug, Clone, Parser)]
#[command(name = "ferrocache", version, about, disable_help_flag = true)]
pub struct Flags {
    /// Print this help and exit.
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// TOML config file (defaults < file < flags).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check FILE (with the other flags layered over it, as at start-up) and exit: 0 when
    /// the server would start with it, 1 with the reason when not. Binds nothing.
    #[arg(long = "check-config", value_name = "FILE", conflicts_with = "config")]
    pub check_config: Option<PathBuf>,
    /// Convert the snapshot SNAPSHOT (.fcs) into a Redis RDB file OUT and exit: 0 when
    /// written, 1 with the reason when not. Starts no server. Flags, CAS and hash field
    /// TTLs are dropped (RDB has no place for them).
    #[arg(long = "export-rdb", num_args = 2, value_names = ["SNAPSHOT", "OUT"])]
    pub export_rdb: Option<Vec<PathBuf>>,
    /// TCP port to listen on (0 = off).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Interfaces to listen on, comma separated (repeatable).
    #[arg(short = 'l', long = "listen", value_delimiter = ',')]
    pub listen: Vec<IpAddr>,
    /// UNIX socket to listen on.
    #[arg(short = 's', long = "unix-socket", value_name = "FILE")]
    pub unix_socket: Option<PathBuf>,
    /// Access mask of the UNIX socket, in octal.
    #[arg(short = 'a', long = "unix-mask", value_parser = parse_octal)]
    pub unix_mask: Option<u32>,
    /// Most simultaneous connections.
    #[arg(short = 'c', long = "conn-limit")]
    pub conn_limit: Option<usize>,
    /// Worker threads (0 = one per CPU).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Item memory in megabytes.
    #[arg(short = 'm', long = "memory-limit", value_name = "MB")]
    pub memory_limit_mb: Option<u64>,
    /// Largest item size (e.g. 1m, 512k; 1KiB..128MiB).
    #[arg(short = 'I', long = "max-item-size", value_parser = parse_size)]
    pub max_item_size: Option<ByteSize>,
    /// UDP port: only 0 (off) is supported, as memcached's default.
    #[arg(short = 'U', long = "udp-port", value_parser = parse_udp_port)]
    pub udp_port: Option<u16>,
    /// Verbose logging; -vv for more.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Enable the "shutdown" command.
    #[arg(short = 'A', long = "enable-shutdown")]
    pub enable_shutdown: bool,
    /// Return an error when memory is exhausted instead of evicting (memcached's -M).
    #[arg(short = 'M', long = "disable-evictions")]
    pub disable_evictions: bool,
    /// Disable "flush_all".
    #[arg(short = 'F', long = "disable-flush-all")]
    pub disable_flush_all: bool,
    /// RESP port (0 = off).
    #[arg(long = "resp-port")]
    pub resp_port: Option<u16>,
    /// HTTP port on 127.0.0.1 (cache API, /metrics, dashboard; 0 = off).
    #[arg(long = "http-port")]
    pub http_port: Option<u16>,
    /// Serve the HTTP port over TLS, with the --tls-cert-file/--tls-key-file certificate.
    #[arg(long = "http-tls")]
    pub http_tls: bool,
    /// Require SASL PLAIN authentication (binary protocol only, as in memcached).
    #[arg(short = 'S', long = "enable-sasl")]
    pub enable_sasl: bool,
    /// Directory of the snapshot file.
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The snapshot file's name in --dir.
    #[arg(long = "dbfilename", value_name = "NAME")]
    pub dbfilename: Option<String>,
    /// Background save rules, as Redis's "seconds changes ..." ("" = only on SAVE/BGSAVE).
    #[arg(long = "save", value_name = "RULES")]
    pub save: Option<String>,
    /// Follow this primary as a replica: `--replicaof HOST PORT` (or one "HOST PORT" word).
    #[arg(long = "replicaof", value_name = "HOST PORT", num_args = 1..=2)]
    pub replicaof: Option<Vec<String>>,
    /// SASL users, one "user:password" per line (default: $MEMCACHED_SASL_PWDB).
    #[arg(long = "sasl-pwdb", value_name = "FILE")]
    pub sasl_pwdb: Option<PathBuf>,
    /// Text-protocol authentication (memcached's -Y): users as "user:password" lines; a
    /// client logs in with a "set" whose data is "user password". Text and meta only.
    #[arg(short = 'Y', long = "auth-file", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Refuse clients from beyond loopback while no password is set (Redis's protected-mode).
    #[arg(long = "protected-mode", value_name = "yes|no", value_parser = parse_yes_no)]
    pub protected_mode: Option<bool>,
    /// memcached protocol over TLS on this port (0 = off).
    #[arg(long = "tls-port")]
    pub tls_port: Option<u16>,
    /// RESP over TLS on this port (Redis's tls-port; 0 = off).
    #[arg(long = "resp-tls-port")]
    pub resp_tls_port: Option<u16>,
    /// TLS certificate chain, PEM (memcached's ssl_chain_cert).
    #[arg(long = "tls-cert-file", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// TLS private key, PEM (memcached's ssl_key).
    #[arg(long = "tls-key-file", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// CA bundle that client certificates are checked against, PEM (memcached's ssl_ca_cert).
    #[arg(long = "tls-ca-cert-file", value_name = "FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// Client certificates: yes (required), no, or optional.
    #[arg(long = "tls-auth-clients", value_name = "yes|no|optional")]
    pub tls_auth_clients: Option<String>,
    /// memcached's -Z: the memcached port (-p) speaks TLS instead of plain text.
    #[arg(short = 'Z', long = "enable-ssl")]
    pub enable_ssl: bool,
    /// memcached's -o, for its TLS options (ssl_chain_cert=FILE, ssl_key=FILE,
    /// ssl_ca_cert=FILE, ssl_verify_mode=0-3) and idle_timeout=SECONDS (comma-separated;
    /// repeatable).
    #[arg(short = 'o', long = "extended", value_name = "KEY=VALUE,...", value_parser = parse_extended)]
    pub extended: Vec<Vec<ExtendedOption>>,
}

/// One of memcached's `-o` options that ferrocache knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendedOption {
    SslChainCert(PathBuf),
    SslKey(PathBuf),
    SslCaCert(PathBuf),
    /// memcached's client-certificate mode: 0 none, 1 request, 2 require, 3 once.
    SslVerifyMode(u8),
    /// Seconds after which an idle connection is closed (0 = never).
    IdleTimeout(u64),
}

/// `-o a=b,c=d`: only memcached's TLS options; any other is refused by name, as memcached
/// refuses an option it does not know ("Illegal suboption").
fn parse_extended(text: &str) -> Result<Vec<ExtendedOption>, String> {
    text.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            let path = || {
                if value.is_empty() {
                    Err(format!("-o {key} needs a file (\"{key}=FILE\")"))
                } else {
                    Ok(PathBuf::from(value))
                }
            };
            match key {
                "ssl_chain_cert" => path().map(ExtendedOption::SslChainCert),
                "ssl_key" => path().map(ExtendedOption::SslKey),
                "ssl_ca_cert" => path().map(ExtendedOption::SslCaCert),
                "idle_timeout" => value
                    .parse()
                    .map(ExtendedOption::IdleTimeout)
                    .map_err(|_| format!("-o idle_timeout={value}: not a number of seconds")),
                "ssl_verify_mode" => match value {
                    "0" | "1" | "2" | "3" => Ok(ExtendedOption::SslVerifyMode(
                        value.as_bytes()[0] - b'0',
                    )),
                    _ => Err(format!("-o ssl_verify_mode={value}: must be 0, 1, 2 or 3")),
                },
                _ => Err(format!(
                    "-o {key}: not an option ferrocache has (it knows ssl_chain_cert, ssl_key, \
                     ssl_ca_cert, ssl_verify_mode, idle_timeout; the rest of memcached's -o options tune its slab allocator, \
                     which ferrocache does not have)"
                )),
            }
        })
        .collect()
}

fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("{text:?} is not yes or no")),
    }
}

fn parse_octal(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8).map_err(|_| format!("{text:?} is not an octal mask"))
}

fn parse_size(text: &str) -> Result<ByteSize, String> {
    ByteSize::parse(text).ok_or_else(|| format!("{text:?} is not a size (try 1m or 512k)"))
}

fn parse_udp_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) => Ok(0),
        Ok(_) => Err("UDP is not supported; only -U 0 is accepted".into()),
        Err(_) => Err(format!("{text:?} is not a port")),
    }
}

impl Flags {
    /// Defaults, then the config file, then these flags; validated.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let file = self.config.as_ref().or(self.check_config.as_ref());
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.source_file = self
            .config
            .as_ref()
            .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.clone()));
        let server = &mut config.server;
        if let Some(port) = self.port {
            server.port = port;
        }
        if !self.listen.is_empty() {
            server.listen = self.listen;
        }
        if let Some(path) = self.unix_socket {
            server.unix_socket = path;
        }
        if let Some(mask) = self.unix_mask {
            server.unix_socket_mode = mask;
        }
        if let Some(limit) = self.conn_limit {
            server.max_connections = limit;
        }
        if let Some(threads) = self.threads {
            server.threads = threads;
        }
        if self.enable_shutdown {
            server.enable_shutdown = true;
        }
        if self.disable_flush_all {
            server.enable_flush = false;
        }
        if let Some(port) = self.resp_port {
            server.resp_port = port;
        }
        if let Some(on) = self.protected_mode {
            server.protected_mode = on;
        }
        if let Some(dir) = self.dir {
            config.persistence.dir = dir;
        }
        if let Some(name) = self.dbfilename {
            config.persistence.dbfilename = name;
        }
        if let Some(rules) = self.save {
            config.persistence.save = rules;
        }
        if let Some(words) = self.replicaof {
            config.replication.replicaof = words.join(" ");
        }
        match self.http_port {
            Some(0) => config.http.listen = String::new(),
            Some(port) => config.http.listen = format!("127.0.0.1:{port}"),
            None => {}
        }
        if self.http_tls {
            config.http.tls = true;
        }
        if let Some(mb) = self.memory_limit_mb {
            config.store.memory_limit = ByteSize(mb.saturating_mul(1024 * 1024));
        }
        if self.disable_evictions {
            config.store.eviction_policy = EvictionPolicySetting(EvictionPolicy::NoEviction);
        }
        if let Some(size) = self.max_item_size {
            config.store.item_size_max = size;
        }
        if self.verbose > 0 {
            config.log.verbosity = self.verbose;
        }
        if self.enable_sasl {
            config.sasl.enabled = true;
        }
        if let Some(path) = self.sasl_pwdb {
            config.sasl.password_file = path;
        } else if config.sasl.password_file.as_os_str().is_empty() {
            // memcached reads its password database from this variable.
            if let Some(path) = std::env::var_os("MEMCACHED_SASL_PWDB") {
                config.sasl.password_file = PathBuf::from(path);
            }
        }
        if let Some(path) = self.auth_file {
            config.sasl.auth_file = path;
        }
        let tls = &mut config.tls;
        if let Some(port) = self.tls_port {
            tls.port = port;
        }
        if let Some(port) = self.resp_tls_port {
            tls.resp_port = port;
        }
        if let Some(path) = self.tls_cert_file {
            tls.cert_file = path;
        }
        if let Some(path) = self.tls_key_file {
            tls.key_file = path;
        }
        if let Some(path) = self.tls_ca_cert_file {
            tls.ca_cert_file = path;
        }
        // memcached -Z checks no client certificate unless -o ssl_verify_mode says so.
        let mut verify_mode = self.enable_ssl.then_some(0);
        for option in self.extended.into_iter().flatten() {
            match option {
                ExtendedOption::SslChainCert(path) => tls.cert_file = path,
                ExtendedOption::SslKey(path) => tls.key_file = path,
                ExtendedOption::SslCaCert(path) => tls.ca_cert_file = path,
                ExtendedOption::SslVerifyMode(mode) => verify_mode = Some(mode),
                ExtendedOption::IdleTimeout(seconds) => config.server.idle_timeout_secs = seconds,
            }
        }
        if let Some(mode) = verify_mode {
            tls.auth_clients = match mode {
                0 => "no",
                1 => "optional",
                _ => "yes",
            }
            .into();
        }
        if let Some(mode) = self.tls_auth_clients {
            tls.auth_clients = mode;
        }
        if self.enable_ssl && config.server.port != 0 {
            // memcached -Z: the plain memcached port becomes a TLS one.
            config.tls.port = config.server.port;
            config.server.port = 0;
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let flags =
            Flags::try_parse_from(std::iter::once("ferrocache").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        flags.into_config().map_err(|e| e.to_string())
    }

    #[test]
    fn memcached_dash_z_and_dash_o_ssl_options() {
        let config = parse(&[
            "-Z",
            "-p",
            "11311",
            "-o",
            "ssl_chain_cert=c.pem,ssl_key=k.pem",
            "-o",
            "ssl_ca_cert=ca.pem",
        ])
        .unwrap();
        assert_eq!((config.server.port, config.tls.port), (0, 11311));
        assert_eq!(config.tls.cert_file, PathBuf::from("c.pem"));
        assert_eq!(config.tls.key_file, PathBuf::from("k.pem"));
        assert_eq!(config.tls.ca_cert_file, PathBuf::from("ca.pem"));
        assert_eq!(config.tls.auth_clients, "no");
        let required = parse(&[
            "-Z",
            "-o",
            "ssl_verify_mode=2,ssl_ca_cert=a,ssl_chain_cert=c,ssl_key=k",
        ])
        .unwrap();
        assert_eq!(required.tls.auth_clients, "yes");
        assert!(parse(&["-o", "ssl_verify_mode=4"]).is_err());
        let idle = parse(&["-o", "idle_timeout=30"]).unwrap();
        assert_eq!(idle.server.idle_timeout_secs, 30);
        let refused = parse(&["-o", "slab_reassign"]).unwrap_err();
        assert!(refused.contains("slab_reassign"), "{refused}");
        assert!(parse(&["-o", "ssl_key="]).is_err());
    }

    #[test]
    fn memcached_flags_override_defaults() {
        let config = parse(&[
            "-p",
            "11311",
            "-l",
            "127.0.0.1,::1",
            "-c",
            "10",
            "-t",
            "2",
            "-m",
            "128",
            "-I",
            "2m",
            "-U",
            "0",
            "-vv",
        ])
        .unwrap();
        assert_eq!(config.server.port, 11311);
        assert_eq!(config.server.listen.len(), 2);
        assert_eq!(config.server.max_connections, 10);
        assert_eq!(config.server.threads, 2);
        assert_eq!(config.store.memory_limit, ByteSize::mib(128));
        assert_eq!(config.store.item_size_max, ByteSize::mib(2));
        assert_eq!(config.log.verbosity, 2);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.toml");
        std::fs::write(&path, "[server]\nport = 1\nthreads = 3\n").unwrap();
        let config = parse(&["--config", path.to_str().unwrap(), "-p", "2"]).unwrap();
        assert_eq!((config.server.port, config.server.threads), (2, 3));
    }

    #[test]
    fn sasl_flags_enable_it_with_a_password_file() {
        let config = parse(&["-S", "--sasl-pwdb", "/tmp/users"]).unwrap();
        assert!(config.sasl.enabled);
        assert_eq!(config.sasl.password_file, PathBuf::from("/tmp/users"));
    }

    #[test]
    fn tls_flags_set_the_tls_section() {
        let config = parse(&[
            "--tls-port",
            "11212",
            "--resp-tls-port",
            "6380",
            "--tls-cert-file",
            "c.pem",
            "--tls-key-file",
            "k.pem",
            "--tls-ca-cert-file",
            "ca.pem",
            "--tls-auth-clients",
            "optional",
        ])
        .unwrap();
        assert_eq!((config.tls.port, config.tls.resp_port), (11212, 6380));
        assert_eq!(config.tls.cert_file, PathBuf::from("c.pem"));
        assert_eq!(config.tls.key_file, PathBuf::from("k.pem"));
        assert_eq!(config.tls.ca_cert_file, PathBuf::from("ca.pem"));
        assert_eq!(config.tls.auth_clients, "optional");
        assert!(parse(&["--tls-port", "11212"]).is_err());
        assert!(
            !parse(&["--protected-mode", "no"])
                .unwrap()
                .server
                .protected_mode
        );
        assert!(parse(&["--protected-mode", "maybe"]).is_err());
    }

    #[test]
    fn export_rdb_takes_two_paths() {
        let flags =
            Flags::try_parse_from(["ferrocache", "--export-rdb", "a.fcs", "b.rdb"]).unwrap();
        assert_eq!(
            flags.export_rdb,
            Some(vec![PathBuf::from("a.fcs"), PathBuf::from("b.rdb")])
        );
        assert!(Flags::try_parse_from(["ferrocache", "--export-rdb", "a.fcs"]).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["-U", "11211"]).is_err());
        assert!(parse(&["-I", "2k"]).is_ok());
        assert!(parse(&["-I", "512"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["-a", "999"]).is_err());
    }
}
