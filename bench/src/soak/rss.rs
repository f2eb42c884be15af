//! The server watched from outside the load: its resident set (VmRSS of `/proc/PID/status`),
//! sampled against the bound `-m` + `--rss-slack-mb` + `--rss-slack-pct` % of `-m`, and its
//! own figures from `stats` over the memcached text protocol (`limit_maxbytes`, the default
//! `-m`, and the figures the report shows).
//!
//! Never sends load and never stops the run itself: a sample above the bound is returned as a
//! failure, and `main` decides.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Resident set size of `pid` in bytes, from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `stats` over the memcached text protocol: name → value.
pub fn server_stats(addr: SocketAddr) -> Result<BTreeMap<String, String>, String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"stats\r\n").map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !buf.ends_with(b"END\r\n") {
        let n = s.read(&mut chunk).map_err(|e| format!("stats: {e}"))?;
        if n == 0 {
            return Err("stats: connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("STAT")).then_some(())?;
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect())
}

const MIB: f64 = 1024.0 * 1024.0;

pub(super) fn mib(b: u64) -> f64 {
    b as f64 / MIB
}

/// Resident memory figures, MiB.
#[derive(Debug, Default, Serialize)]
pub struct Rss {
    pub pid: u32,
    pub start_mib: f64,
    pub max_mib: f64,
    pub max_at_seconds: f64,
    pub final_mib: f64,
    pub samples: usize,
    pub bound_mib: f64,
}

impl Rss {
    /// Watching `pid`, whose RSS must stay within `bound` bytes (none: `-m` unknown).
    pub(super) fn new(pid: u32, bound: Option<u64>) -> Rss {
        Rss {
            pid,
            start_mib: rss_bytes(pid).map_or(0.0, mib),
            bound_mib: bound.map_or(0.0, mib),
            ..Rss::default()
        }
    }

    /// One sample during the run started at `start`: the failure (exit status, reason) when
    /// the RSS is above `bound` or the process is gone.
    pub(super) fn sample(&mut self, bound: Option<u64>, start: Instant) -> Option<(u8, String)> {
        match rss_bytes(self.pid) {
            Some(b) => {
                self.samples += 1;
                if mib(b) > self.max_mib {
                    self.max_mib = mib(b);
                    self.max_at_seconds = start.elapsed().as_secs_f64();
                }
                let bound = bound.filter(|&x| b > x)?;
                Some((
                    5,
                    format!(
                        "server RSS {:.1} MiB above the bound {:.1} MiB after {:.0} s",
                        mib(b),
                        mib(bound),
                        start.elapsed().as_secs_f64()
                    ),
                ))
            }
            None => Some((1, format!("server process {} is gone", self.pid))),
        }
    }

    /// The last sample, after the load stopped: the failure when it is above `bound`.
    pub(super) fn finish(&mut self, bound: Option<u64>) -> Option<(u8, String)> {
        let b = rss_bytes(self.pid)?;
        self.final_mib = mib(b);
        self.max_mib = self.max_mib.max(self.final_mib);
        let bound = bound.filter(|&x| b > x)?;
        Some((
            5,
            format!(
                "final server RSS {:.1} MiB above the bound {:.1} MiB",
                mib(b),
                mib(bound)
            ),
        ))
    }
}
