//! ferrobench: the load generator of ferrocache's benchmark suite.
//!
//! Owns the process: flags in, one bounded run, a report out, and the exit status (0 ok, 1 run
//! failed, 2 bad flags, 3 the server does not support the protocol or workload, 4 `--verify`
//! found wrong values; `--soak` also 5, RSS above its bound). Modules: `cli` flags, `rng` and
//! `keyspace` key choice, `value` values and verification, `proto` wire formats, `workload` op
//! mixes, `runner` the event loops, `report` the output, `soak` the mixed-protocol soak.

mod cli;
mod decimal;
mod keyspace;
mod proto;
mod report;
mod rng;
mod runner;
mod soak;
mod sockbuf;
mod value;
mod workload;

use std::process::ExitCode;

use clap::Parser;

/// User + system CPU seconds of this process (Linux `/proc/self/stat` fields 14 and 15, in
/// USER_HZ = 100 ticks per second, fixed by the kernel ABI); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after its closing ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is rest[0]; utime is field 14
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if let Some(soak) = args.soak_config() {
        return match soak {
            Ok(cfg) => soak::main(cfg, process_cpu_seconds),
            Err(e) => {
                eprintln!("ferrobench: {e}");
                ExitCode::from(2)
            }
        };
    }
    let cfg = match args.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferrobench: {e}");
            return ExitCode::from(2);
        }
    };
    let cpu_before = process_cpu_seconds();
    let outcome = match runner::run(&cfg) {
        Ok(o) => o,
        Err(runner::RunError::Unsupported(what)) => {
            eprintln!("ferrobench: not supported by {}: {what}", cfg.addr);
            return ExitCode::from(3);
        }
        Err(e) => {
            eprintln!("ferrobench: {e}");
            return ExitCode::from(1);
        }
    };
    let cpu = process_cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let report = report::Report::new(&cfg, outcome.warm.as_ref(), outcome.measured.as_ref(), cpu);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    let failures = outcome.measured.as_ref().map_or(0, |s| s.verify_failures);
    if failures > 0 {
        eprintln!("ferrobench: --verify found {failures} wrong values");
        return ExitCode::from(4);
    }
    ExitCode::SUCCESS
}
