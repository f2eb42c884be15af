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
    /// the next request).
    #[arg(short = 'p', long, default_value_t = 1)]
    pub pipeline: usize,
    /// Size of the key space.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub keys: u64,
    /// Zipf exponent for key popularity (uniform if absent).
    #[arg(long, value_name = "S")]
    pub zipf: Option<f64>,
    /// Key length in bytes (prefix + zero-padded index).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Value size in bytes, fixed (`100`) or a range (`10-1000`).
    #[arg(short = 'd', long, default_value = "100")]
    pub value_size: String,
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

impl Args {
    /// Validates the flags.
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let addr = self
            .server
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ConfigError::Address(self.server.clone()))?;
        for (name, v) in [
            ("connections", self.connections),
            ("threads", self.threads),
            ("pipeline", self.pipeline),
            ("batch", self.batch),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.keys == 0 {
            return Err(ConfigError::Zero("keys"));
        }
        let value_size = parse_value_size(&self.value_size)
            .ok_or_else(|| ConfigError::ValueSize(self.value_size.clone()))?;
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
            None => KeyDist::uniform(self.keys),
            Some(s) if s.is_finite() && s > 0.0 => KeyDist::Zipf(Zipf::new(self.keys, s)),
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
        let need = 1 + crate::keyspace::digits(self.keys - 1);
        if self.key_size < need || self.key_size > 250 {
            return Err(ConfigError::KeySize {
                size: self.key_size,
                keys: self.keys,
                need,
            });
        }
        Ok(RunConfig {
            addr,
            protocol: self.protocol,
            connections: self.connections,
            threads: self.threads.min(self.connections),
            pipeline: self.pipeline,
            keys: self.keys,
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
