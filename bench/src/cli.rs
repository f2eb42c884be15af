//! Command-line flags and their validation into a [`RunConfig`].
//!
//! Owns [`Args`] (clap) and [`ConfigError`]. Invariants of a [`RunConfig`] that leaves here: at
//! least one connection and thread (threads never exceed connections), pipeline >= 1, the run is
//! bounded (a duration always applies, a request count may end it sooner), the workload's ops
//! exist in the protocol, and `--verify` only with values long enough to carry their version.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Parser;

use crate::keyspace::{KeyDist, Zipf};
use crate::proto::{Encoder, Protocol};
use crate::soak::SoakConfig;
use crate::value::{ValueKind, Values, HEADER, JSON_MIN};
use crate::workload::{Mix, Workload};

/// ferrobench: load generator for memcached (text, meta, binary) and RESP servers.
///
/// Every run is bounded by --duration (and --requests if given). Exit status: 0 ok, 1 run
/// failed, 2 bad flags, 3 the server does not support this protocol/workload, 4 --verify found
/// wrong values.
#[derive(Debug, Parser)]
#[command(name = "ferrobench", version)]
pub struct Args {
    /// Server address (host:port).
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    pub server: String,
    /// Wire protocol.
    #[arg(short = 'P', long, value_enum, default_value = "text")]
    pub protocol: Protocol,
    /// Command family.
    #[arg(short = 'w', long, value_enum, default_value = "kv")]
    pub workload: Workload,
    /// Connections in total, spread over the threads.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: usize,
    /// Threads, each with its own event loop.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// Requests in flight per connection (with --rate: the cap on requests in flight, since the
    /// schedule decides when each is sent; use 16 or more there so a late reply does not delay
    /// the next request). Default 1 (--soak: 4).
    #[arg(short = 'p', long)]
    pub pipeline: Option<usize>,
    /// Size of the key space. Default 100000 (--soak: 20000, split between the lanes).
    #[arg(short = 'n', long)]
    pub keys: Option<u64>,
    /// Zipf exponent for key popularity (uniform if absent).
    #[arg(long, value_name = "S")]
    pub zipf: Option<f64>,
    /// Key length in bytes (prefix + zero-padded index).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Value size in bytes, fixed (`100`) or a range (`10-1000`). Default 100 (--soak:
    /// 10-100000, log-uniform).
    #[arg(short = 'd', long)]
    pub value_size: Option<String>,
    /// What values look like: random printable bytes, or compressible JSON records.
    #[arg(long, value_enum, default_value = "random")]
    pub value_kind: ValueKind,
    /// Reads to writes, `GETS:SETS`.
    #[arg(short = 'r', long, default_value = "9:1")]
    pub ratio: String,
    /// Cache-aside: every request of the measured phase is a get (--ratio is ignored), and each
    /// miss is followed on the same connection by a set of that key, as an application filling
    /// its cache would. --requests counts the gets; the sets come on top. Workload kv only.
    #[arg(long)]
    pub cache_aside: bool,
    /// Keys per multi-get (workload mget).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Seconds to run (the bound even when --requests is given).
    #[arg(short = 'D', long, default_value_t = 5.0)]
    pub duration: f64,
    /// Stop after this many requests in total.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Open loop at this many requests per second in total; latency counts from each request's
    /// intended send time, so a stalled server cannot hide its queue (no coordinated omission).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Check every value read against what the generator writes for that key and version.
    #[arg(long)]
    pub verify: bool,
    /// Write every key of the key space once before measuring.
    #[arg(long)]
    pub warm: bool,
    /// Only write every key once (implies --warm), then report and exit.
    #[arg(long)]
    pub warm_only: bool,
    /// Bound on the warm phase, seconds.
    #[arg(long, default_value_t = 300.0)]
    pub warm_timeout: f64,
    /// Seed of key choice and values (values verify only under the seed that wrote them).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Soak mode for MINUTES: memcached text, meta and binary (--server) and RESP
    /// (--resp-server) connections at once, gets/sets/deletes/incrs and hash/sorted-set ops on
    /// random value sizes, every reply checked; with --server-pid the server's RSS must stay
    /// under -m plus the slack. Exit status: 0 pass, 1 errors, 4 wrong values, 5 RSS over the
    /// bound. Uses -s -t -p -n -d --seed --json; ignores the other load flags.
    #[arg(long, value_name = "MINUTES")]
    pub soak: Option<f64>,
    /// --soak: the server's RESP address (default: --server's host, port 6379).
    #[arg(long, value_name = "HOST:PORT")]
    pub resp_server: Option<String>,
    /// --soak: the server's process id, to sample its RSS from /proc/PID/status every second.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// --soak: the server's -m in MiB (default: its `limit_maxbytes` from `stats`).
    #[arg(short = 'm', long = "memory-limit", value_name = "MIB")]
    pub memory_limit: Option<u64>,
    /// --soak: RSS may exceed -m by this many MiB ...
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub rss_slack_mb: u64,
    /// --soak: ... plus this percentage of -m.
    #[arg(long, default_value_t = 10.0, value_name = "PERCENT")]
    pub rss_slack_pct: f64,
    /// --soak: lanes, each four connections (text, meta, binary, RESP) with keys of its own.
    #[arg(long, default_value_t = 4)]
    pub lanes: usize,
}

/// Flags that do not make a run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--server {0:?} does not resolve to an address")]
    Address(String),
    #[error("--value-size {0:?}: expected N or MIN-MAX with 1 <= MIN <= MAX")]
    ValueSize(String),
    #[error("--ratio {0:?}: expected GETS:SETS, not both 0")]
    Ratio(String),
    #[error("--{0} must be at least 1")]
    Zero(&'static str),
    #[error("--zipf must be a positive finite number")]
    Zipf,
    #[error("--duration, --warm-timeout and --rate must be positive finite numbers")]
    Time,
    #[error("workload {0:?} needs --protocol resp")]
    Unsupported(Workload),
    #[error("--verify needs values of at least {HEADER} bytes")]
    VerifyTooSmall,
    #[error("--value-kind json needs values of at least {JSON_MIN} bytes")]
    JsonTooSmall,
    #[error("--cache-aside needs workload kv")]
    CacheAside,
    #[error("--key-size {size} cannot hold {keys} keys (needs {need})")]
    KeySize { size: usize, keys: u64, need: usize },
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    pub keys: u64,
    pub duration: Duration,
    pub requests: Option<u64>,
    pub rate: Option<f64>,
    pub verify: bool,
    pub warm: bool,
    pub warm_only: bool,
    pub warm_timeout: Duration,
    pub seed: u64,
    pub mix: Mix,
    pub cache_aside: bool,
    pub encoder: Encoder,
    pub zipf: Option<f64>,
    pub value_size: (usize, usize),
    pub value_kind: ValueKind,
}

fn parse_value_size(s: &str) -> Option<(usize, usize)> {
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let v = s.trim().parse().ok()?;
            (v, v)
        }
    };
    (lo >= 1 && lo <= hi).then_some((lo, hi))
}

fn parse_ratio(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a.checked_add(b)? > 0).then_some((a, b))
}

fn seconds(s: f64) -> Result<Duration, ConfigError> {
    if s.is_finite() && s > 0.0 {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(ConfigError::Time)
    }
}

fn resolve(s: &str) -> Result<SocketAddr, ConfigError> {
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ConfigError::Address(s.to_string()))
}

impl Args {
    /// Validates the flags of a `--soak` run (`None` if this is not one).
    pub fn soak_config(&self) -> Option<Result<SoakConfig, ConfigError>> {
        let minutes = self.soak?;
        Some((|| {
            let duration = seconds(minutes * 60.0)?;
            let server = resolve(&self.server)?;
            let resp_server = match &self.resp_server {
                Some(r) => resolve(r)?,
                None => SocketAddr::new(server.ip(), 6379),
            };
            let size = self.value_size.as_deref().unwrap_or("10-100000");
            let value_size = parse_value_size(size)
                .filter(|&(lo, _)| lo >= crate::soak::model::HEADER)
                .ok_or_else(|| ConfigError::ValueSize(size.to_string()))?;
            for (name, v) in [
                ("lanes", self.lanes),
                ("threads", self.threads),
                ("pipeline", self.pipeline.unwrap_or(4)),
            ] {
                if v == 0 {
                    return Err(ConfigError::Zero(name));
                }
            }
            let keys = self.keys.unwrap_or(20_000);
            if keys < 10 * self.lanes as u64 {
                return Err(ConfigError::Zero("keys (10 per lane)"));
            }
            if !(self.rss_slack_pct.is_finite() && self.rss_slack_pct >= 0.0) {
                return Err(ConfigError::Time);
            }
            Ok(SoakConfig {
                duration,
                server,
                resp_server,
                server_pid: self.server_pid,
                memory_limit: self.memory_limit.map(|m| m * 1024 * 1024),
                rss_slack_mb: self.rss_slack_mb,
                rss_slack_pct: self.rss_slack_pct,
                lanes: self.lanes,
                threads: self.threads,
                pipeline: self.pipeline.unwrap_or(4),
                keys,
                value_size,
                seed: self.seed,
                json: self.json,
            })
        })())
    }

    /// Validates the flags.
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let (pipeline, keys) = (self.pipeline.unwrap_or(1), self.keys.unwrap_or(100_000));
        let value_size_flag = self.value_size.as_deref().unwrap_or("100");
        let addr = resolve(&self.server)?;
        for (name, v) in [
            ("connections", self.connections),
            ("threads", self.threads),
            ("pipeline", pipeline),
            ("batch", self.batch),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if keys == 0 {
            return Err(ConfigError::Zero("keys"));
        }
        let value_size = parse_value_size(value_size_flag)
            .ok_or_else(|| ConfigError::ValueSize(value_size_flag.to_string()))?;
        if self.value_kind == ValueKind::Json && value_size.0 < JSON_MIN {
            return Err(ConfigError::JsonTooSmall);
        }
        let (mut gets, mut sets) =
            parse_ratio(&self.ratio).ok_or_else(|| ConfigError::Ratio(self.ratio.clone()))?;
        if self.cache_aside {
            if self.workload != Workload::Kv {
                return Err(ConfigError::CacheAside);
            }
            (gets, sets) = (1, 0);
        }
        let dist = match self.zipf {
            None => KeyDist::uniform(keys),
            Some(s) if s.is_finite() && s > 0.0 => KeyDist::Zipf(Zipf::new(keys, s)),
            Some(_) => return Err(ConfigError::Zipf),
        };
        let duration = seconds(self.duration)?;
        let warm_timeout = seconds(self.warm_timeout)?;
        if let Some(r) = self.rate {
            seconds(r)?;
        }
        let (read, write) = self.workload.kinds();
        if !read.supported_by(self.protocol) || !write.supported_by(self.protocol) {
            return Err(ConfigError::Unsupported(self.workload));
        }
        if self.verify && value_size.0 < HEADER {
            return Err(ConfigError::VerifyTooSmall);
        }
        let need = 1 + crate::keyspace::digits(keys - 1);
        if self.key_size < need || self.key_size > 250 {
            return Err(ConfigError::KeySize {
                size: self.key_size,
                keys,
                need,
            });
        }
        Ok(RunConfig {
            addr,
            protocol: self.protocol,
            connections: self.connections,
            threads: self.threads.min(self.connections),
            pipeline,
            keys,
            duration,
            requests: self.requests,
            rate: self.rate,
            verify: self.verify,
            warm: self.warm || self.warm_only,
            warm_only: self.warm_only,
            warm_timeout,
            seed: self.seed,
            mix: Mix {
                workload: self.workload,
                gets,
                sets,
                batch: self.batch,
                dist,
            },
            cache_aside: self.cache_aside,
            encoder: Encoder {
                protocol: self.protocol,
                key_size: self.key_size,
                values: Values::new(self.seed, value_size.0, value_size.1)
                    .with_kind(self.value_kind),
            },
            zipf: self.zipf,
            value_size,
            value_kind: self.value_kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<RunConfig, ConfigError> {
        let mut v = vec!["ferrobench"];
        v.extend_from_slice(extra);
        Args::try_parse_from(v).expect("clap").validate()
    }

    #[test]
    fn defaults_validate() {
        let c = args(&[]).unwrap();
        assert_eq!((c.connections, c.threads, c.pipeline), (50, 1, 1));
        assert_eq!((c.mix.gets, c.mix.sets), (9, 1));
        assert_eq!(c.value_size, (100, 100));
        assert_eq!(c.duration, Duration::from_secs(5));
    }

    #[test]
    fn soak_flags() {
        let soak = |extra: &[&str]| {
            let mut v = vec!["ferrobench", "--soak", "0.5"];
            v.extend_from_slice(extra);
            Args::try_parse_from(v)
                .expect("clap")
                .soak_config()
                .expect("a soak")
        };
        let c = soak(&["-s", "127.0.0.1:1234", "--server-pid", "7", "-m", "64"]).unwrap();
        assert_eq!(c.duration, Duration::from_secs(30));
        assert_eq!(c.resp_server, "127.0.0.1:6379".parse().unwrap());
        assert_eq!((c.server_pid, c.memory_limit), (Some(7), Some(64 << 20)));
        assert_eq!(
            (c.value_size, c.keys, c.pipeline, c.lanes),
            ((10, 100_000), 20_000, 4, 4)
        );
        assert_eq!((c.rss_slack_mb, c.rss_slack_pct), (64, 10.0));
        assert!(matches!(
            soak(&["-d", "5-10"]),
            Err(ConfigError::ValueSize(_))
        ));
        assert!(matches!(soak(&["--lanes", "0"]), Err(ConfigError::Zero(_))));
        assert!(matches!(
            Args::try_parse_from(["ferrobench", "--soak", "0"])
                .unwrap()
                .soak_config(),
            Some(Err(ConfigError::Time))
        ));
        assert!(
            args(&[]).is_ok()
                && Args::try_parse_from(["ferrobench"])
                    .unwrap()
                    .soak_config()
                    .is_none()
        );
    }

    #[test]
    fn bad_flags_are_typed_errors() {
        assert!(matches!(args(&["-d", "0"]), Err(ConfigError::ValueSize(_))));
        assert!(matches!(
            args(&["-d", "10-5"]),
            Err(ConfigError::ValueSize(_))
        ));
        assert_eq!(args(&["-d", "10-50"]).unwrap().value_size, (10, 50));
        assert!(matches!(args(&["-r", "0:0"]), Err(ConfigError::Ratio(_))));
        assert!(matches!(
            args(&["-p", "0"]),
            Err(ConfigError::Zero("pipeline"))
        ));
        assert!(matches!(
            args(&["-w", "hash"]),
            Err(ConfigError::Unsupported(_))
        ));
        assert!(args(&["-w", "hash", "-P", "resp"]).is_ok());
        assert!(matches!(
            args(&["--verify", "-d", "4"]),
            Err(ConfigError::VerifyTooSmall)
        ));
        assert!(matches!(args(&["--zipf=-1"]), Err(ConfigError::Zipf)));
        assert!(matches!(args(&["-D", "0"]), Err(ConfigError::Time)));
        assert!(matches!(
            args(&["-n", "1000000", "--key-size", "5"]),
            Err(ConfigError::KeySize { .. })
        ));
        assert_eq!(args(&["-c", "2", "-t", "8"]).unwrap().threads, 2);
        assert!(matches!(
            args(&["--value-kind", "json", "-d", "63"]),
            Err(ConfigError::JsonTooSmall)
        ));
        assert!(args(&["--value-kind", "json", "-d", "100000"]).is_ok());
        assert!(matches!(
            args(&["--cache-aside", "-w", "mget"]),
            Err(ConfigError::CacheAside)
        ));
        let c = args(&["--cache-aside", "-r", "1:1"]).unwrap();
        assert!(c.cache_aside);
        assert_eq!((c.mix.gets, c.mix.sets), (1, 0));
    }
}
