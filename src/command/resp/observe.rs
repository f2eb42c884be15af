//! What Redis shows of its own behaviour: the INFO sections `cpu`, `commandstats`,
//! `errorstats` and `latencystats`, `LATENCY HISTOGRAM` (and `LATENCY LATEST`/`HELP`), `SLOWLOG`.
//!
//! Field names and formats are Redis 7's (`server.c` `genRedisInfoString`, `latency.c`,
//! `slowlog.c`), so `redis_exporter` and redis-cli read them unchanged. Figures come from the
//! per-worker latency tables merged on read ([`crate::metrics::latency`]) and the slow log.
//! Never: invent a figure we do not measure (the latency monitor, which Redis keeps off by
//! default, is off here: `LATENCY LATEST` is empty and `latency-monitor-threshold` is 0).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::metrics::errors::ErrorTally;

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::{err, is, parse_i64, Call};
use crate::command::Flow;
use crate::metrics::latency::{CommandKey, CommandTiming, Proto, WorkerLatency};

/// The percentiles `INFO latencystats` shows (Redis `latency-tracking-info-percentiles`).
pub const INFO_PERCENTILES: [f64; 3] = [50.0, 99.0, 99.9];

fn resp_commands(call: &Call<'_, '_>) -> BTreeMap<CommandKey, CommandTiming> {
    let mut all = WorkerLatency::merged(call.ctx.shared.latency.iter());
    all.retain(|(proto, _), _| *proto == Proto::Resp);
    all
}

/// CPU time of the process and of its waited-for children: (user, system, child user, child
/// system), as Redis prints them.
fn cpu_times() -> [String; 4] {
    use crate::sys::{cpu_times_of, Whose};
    let fmt = |d: std::time::Duration| format!("{}.{:06}", d.as_secs(), d.subsec_micros());
    let me = cpu_times_of(Whose::ThisProcess);
    let children = cpu_times_of(Whose::WaitedChildren);
    [
        fmt(me.user),
        fmt(me.system),
        fmt(children.user),
        fmt(children.system),
    ]
}

/// Appends the `cpu`, `commandstats`, `errorstats` and `latencystats` sections that `show`
/// asks for, in Redis 7's order.
pub fn info_sections(call: &Call<'_, '_>, show: &dyn Fn(&str) -> bool, text: &mut String) {
    if show("cpu") {
        let [user, sys, child_user, child_sys] = cpu_times();
        let _ = write!(
            text,
            "# CPU\r\nused_cpu_sys:{sys}\r\nused_cpu_user:{user}\r\nused_cpu_sys_children:{child_sys}\r\nused_cpu_user_children:{child_user}\r\n\r\n"
        );
    }
    let wants_commands = show("commandstats");
    let wants_latency = show("latencystats");
    let commands = if wants_commands || wants_latency {
        resp_commands(call)
    } else {
        Default::default()
    };
    if wants_commands {
        text.push_str("# Commandstats\r\n");
        for ((_, name), t) in &commands {
            let usec = t.total_ns / 1000;
            let per_call = if t.calls == 0 {
                0.0
            } else {
                usec as f64 / t.calls as f64
            };
            let _ = write!(
                text,
                "cmdstat_{name}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                t.calls, t.rejected, t.failed
            );
        }
        text.push_str("\r\n");
    }
    if show("errorstats") {
        text.push_str("# Errorstats\r\n");
        let errors = ErrorTally::merged(call.ctx.shared.errors.iter());
        for (code, count) in &errors.by_code {
            let _ = write!(text, "errorstat_{code}:count={count}\r\n");
        }
        text.push_str("\r\n");
    }
    if wants_latency {
        text.push_str("# Latencystats\r\n");
        for ((_, name), t) in &commands {
            if t.calls == 0 {
                continue;
            }
            let _ = write!(text, "latency_percentiles_usec_{name}:");
            for (i, p) in INFO_PERCENTILES.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(text, "{sep}p{p}={:.3}", t.quantile_us(p / 100.0));
            }
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
    }
}

/// Writes one command's `LATENCY HISTOGRAM` entry: calls, then the cumulative count at each
/// power-of-two bound that added calls (Redis `fillCommandCDF`).
fn histogram_entry(enc: &mut Encoder<'_>, timing: &CommandTiming) {
    let mut points = Vec::new();
    let mut previous = 0;
    for bound in crate::metrics::latency::bucket_bounds_ns() {
        let count = timing.count_at_most(bound);
        if count > previous {
            points.push((bound / 1000, count));
        }
        previous = count;
        if count >= timing.calls {
            break;
        }
    }
    enc.map(2);
    enc.bulk(b"calls");
    enc.integer(timing.calls as i64);
    enc.bulk(b"histogram_usec");
    enc.map(points.len());
    for (micros, count) in points {
        enc.integer(micros as i64);
        enc.integer(count as i64);
    }
}

/// LATENCY HISTOGRAM [command ...] | LATENCY LATEST | LATENCY RESET | LATENCY HELP
pub fn latency(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let sub = call.arg(1).to_ascii_uppercase();
    match sub.as_slice() {
        b"HISTOGRAM" => {
            let commands = resp_commands(call);
            let wanted: Vec<String> = call.args[2..]
                .iter()
                .map(|a| String::from_utf8_lossy(a).to_lowercase())
                .collect();
            let chosen: Vec<(&str, &CommandTiming)> = commands
                .iter()
                .filter(|((_, name), t)| {
                    t.calls > 0 && (wanted.is_empty() || wanted.iter().any(|w| w == name))
                })
                .map(|((_, name), t)| (*name, t))
                .collect();
            enc.map(chosen.len());
            for (name, timing) in chosen {
                enc.bulk(name.as_bytes());
                histogram_entry(enc, timing);
            }
        }
        // The latency monitor is off (latency-monitor-threshold 0): no events, as in Redis.
        b"LATEST" if call.args.len() == 2 => enc.array(0),
        b"RESET" => enc.integer(0),
        b"HELP" if call.args.len() == 2 => {
            let lines = [
                "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "HISTOGRAM [COMMAND ...]",
                "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
                "    If no commands are specified then all histograms are replied.",
                "LATEST",
                "    Return the latest latency samples for all events (the latency monitor is off here).",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "HELP",
                "    Print this help.",
            ];
            super::reply_help(enc, &lines);
        }
        _ => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try LATENCY HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Ok(Flow::Continue)
}

/// SLOWLOG GET [count] | LEN | RESET | HELP
pub fn slowlog(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let log = &call.ctx.shared.slowlog;
    let sub = call.arg(1);
    if is(sub, "GET") && call.args.len() <= 3 {
        let count = match call.args.get(2) {
            None => Some(10),
            Some(n) => match parse_i64(n) {
                Some(-1) => None,
                Some(n) if n >= 0 => Some(n as usize),
                Some(_) => {
                    return Err("ERR count should be greater than or equal to -1".into());
                }
                None => {
                    return Err(err::NOT_INTEGER.into());
                }
            },
        };
        let entries = log.newest(count);
        enc.array(entries.len());
        for entry in entries {
            enc.array(6);
            enc.integer(entry.id as i64);
            enc.integer(entry.unix_secs as i64);
            enc.integer(entry.duration_us as i64);
            enc.array(entry.args.len());
            for arg in &entry.args {
                enc.bulk(arg);
            }
            enc.bulk(entry.peer.as_bytes());
            enc.bulk(&entry.name);
        }
    } else if is(sub, "LEN") && call.args.len() == 2 {
        enc.integer(log.len() as i64);
    } else if is(sub, "RESET") && call.args.len() == 2 {
        log.reset();
        enc.ok();
    } else if is(sub, "HELP") && call.args.len() == 2 {
        let lines = [
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Print this help.",
        ];
        super::reply_help(enc, &lines);
    } else {
        enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
    Ok(Flow::Continue)
}
