//! parsebench: the RESP parser on one request of many arguments arriving a read at a time.
//!
//! Builds one multibulk request of `--args` one-byte arguments (`*N\r\n$4\r\nMSET\r\n$1\r\nk\r\n...`)
//! and feeds it to the parser as a connection receives it: `--read` bytes more per call, each
//! call seeing everything buffered so far. Two modes, `--rounds` times each (median reported):
//! `resume` keeps the parser's progress between calls (what the server does), `restart` starts
//! from byte 0 on every call (what it did before: quadratic in the request's size). Reports the
//! time to the complete command and the calls made. Measures the parser alone: no socket, no
//! store, no reply.

use std::time::{Duration, Instant};

use clap::Parser;
use ferrocache_protocol::resp::{parse_resumable, Limits, Progress};

/// parsebench: time to parse one many-argument RESP request fed a read at a time.
#[derive(Debug, Parser)]
#[command(name = "parsebench")]
struct Args {
    /// Arguments after the command name.
    #[arg(long, default_value_t = 1_000_000)]
    args: usize,
    /// Bytes that arrive per read (the server reads 16 KiB at a time).
    #[arg(long, default_value_t = 16 * 1024)]
    read: usize,
    /// Runs per mode; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Modes to run, comma-separated: resume, restart.
    #[arg(long, value_delimiter = ',', default_value = "resume,restart")]
    modes: Vec<String>,
}

/// Feeds `request` `read` bytes at a time; returns the time to the complete command and the
/// number of parser calls.
fn run(request: &[u8], read: usize, keep_progress: bool) -> (Duration, usize) {
    let limits = Limits::default();
    let mut progress = Progress::default();
    let start = Instant::now();
    let mut calls = 0;
    let mut have = 0;
    loop {
        have = (have + read).min(request.len());
        calls += 1;
        if !keep_progress {
            progress = Progress::default();
        }
        match parse_resumable(&request[..have], &limits, &mut progress) {
            Ok(Some((command, used))) => {
                assert_eq!(used, request.len());
                std::hint::black_box(command.len());
                return (start.elapsed(), calls);
            }
            Ok(None) => assert!(have < request.len(), "complete request not parsed"),
            Err(e) => panic!("parse error: {e}"),
        }
    }
}

fn main() {
    let args = Args::parse();
    let mut request = format!("*{}\r\n$4\r\nMSET\r\n", args.args + 1).into_bytes();
    for _ in 0..args.args {
        request.extend_from_slice(b"$1\r\nk\r\n");
    }
    println!(
        "| mode | arguments | request bytes | read size | parser calls | time (median of {}) |",
        args.rounds
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for mode in &args.modes {
        let keep = match mode.as_str() {
            "resume" => true,
            "restart" => false,
            other => {
                eprintln!("parsebench: unknown mode {other} (resume, restart)");
                std::process::exit(64);
            }
        };
        let mut times = Vec::new();
        let mut calls = 0;
        for _ in 0..args.rounds.max(1) {
            let (time, n) = run(&request, args.read, keep);
            times.push(time);
            calls = n;
        }
        times.sort();
        println!(
            "| {mode} | {} | {} | {} | {calls} | {:.3} s |",
            args.args + 1,
            request.len(),
            args.read,
            times[times.len() / 2].as_secs_f64()
        );
    }
}
