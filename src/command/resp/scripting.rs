//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD|EXISTS|FLUSH|KILL|
//! HELP, and the [`Host`] through which a script's `redis.call` runs a command.
//!
//! EVAL runs with every worker's gate held for writing (the table marks it EXCLUSIVE, as
//! EXEC), so a script is atomic across workers; its commands run through the same table and
//! handlers as a client's (`run_queued`), so every write takes the store's one write path and
//! effect hook, and a replica receives a script as its effects. SCRIPT takes no gate: KILL
//! must answer while a script holds them all, and the others only need the engine's mutex.
//! Nothing here holds the engine's mutex while waiting for a gate.

use std::borrow::Cow;
use std::time::Duration;

use ferrocache_protocol::resp::{Encoder, RespVersion};

use super::error::RespError;
use super::spec::{Flags, Registry};
use super::{err, parse_i64, run_queued, Call, RespSession};
use crate::command::{Context, Flow};
use crate::scripting::{Engine, Host, Kind, Outcome, RunState, ScriptSource};
use crate::shared::unix_millis;

/// Commands a script may not call (Redis's `noscript` flag, on the command or, for ACL,
/// CLIENT, CONFIG, LATENCY, MODULE and CLUSTER RESET, on the subcommand; HELP is allowed).
fn denied_in_scripts(name: &str, args: &[Vec<u8>]) -> bool {
    let sub = args.get(1).map(|a| a.to_ascii_lowercase());
    let sub = sub.as_deref();
    match name {
        "acl" | "client" | "config" | "latency" | "module" => return sub != Some(b"help"),
        "cluster" => return sub == Some(b"reset"),
        _ => {}
    }
    matches!(
        name,
        "debug"
            | "failover"
            | "replconf"
            | "role"
            | "wait"
            | "bgrewriteaof"
            | "multi"
            | "exec"
            | "discard"
            | "watch"
            | "unwatch"
            | "eval"
            | "evalsha"
            | "eval_ro"
            | "evalsha_ro"
            | "script"
            | "function"
            | "fcall"
            | "fcall_ro"
            | "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "auth"
            | "hello"
            | "reset"
            | "quit"
            | "monitor"
            | "save"
            | "bgsave"
            | "shutdown"
            | "sync"
            | "psync"
            | "replicaof"
            | "slaveof"
            | "blpop"
            | "brpop"
            | "brpoplpush"
            | "blmove"
            | "blmpop"
            | "bzpopmin"
            | "bzpopmax"
            | "bzmpop"
    )
}

/// XREAD or XREADGROUP with a BLOCK option (followed by its value) before STREAMS, as
/// `xreadCommand` parses its options.
fn blocks_stream_read(name: &str, args: &[Vec<u8>]) -> bool {
    if name != "xread" && name != "xreadgroup" {
        return false;
    }
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        match args[i].to_ascii_lowercase().as_slice() {
            b"block" if more > 0 => return true,
            b"count" if more > 0 => i += 2,
            b"group" if more > 1 => i += 3,
            b"streams" => return false,
            _ => i += 1,
        }
    }
    false
}

/// A script's commands, run as its client's.
pub(super) struct ScriptHost<'c, 'a> {
    pub ctx: &'c Context<'a>,
    pub commands: &'static Registry,
    pub session: &'c mut RespSession,
    /// EVAL_RO, or a script declaring `no-writes`: write commands are refused.
    pub read_only: bool,
    pub run: &'c RunState,
}

impl Host for ScriptHost<'_, '_> {
    fn call(&mut self, args: &[Vec<u8>], version: RespVersion, out: &mut Vec<u8>) {
        let mut enc = Encoder::new(out, version);
        let name = args[0].to_ascii_lowercase();
        let spec = self.commands.lookup(&name);
        let Some(spec) = spec else {
            // CLUSTER is not a command here, but Redis refuses CLUSTER RESET from scripts.
            if std::str::from_utf8(&name).is_ok_and(|n| denied_in_scripts(n, args)) {
                enc.error("ERR This Redis command is not allowed from script");
            } else {
                enc.error("ERR Unknown Redis command called from script");
            }
            return;
        };
        if !spec.arity_ok(args.len()) {
            enc.error("ERR Wrong number of args calling Redis command from script");
            return;
        }
        if denied_in_scripts(spec.name, args) {
            enc.error("ERR This Redis command is not allowed from script");
            return;
        }
        if blocks_stream_read(spec.name, args) {
            // t_stream.c: refused for scripts (MULTI just reads without blocking), naming the
            // command as the script spelled it.
            enc.error(&format!(
                "ERR {} command is not allowed with BLOCK option from scripts",
                String::from_utf8_lossy(&args[0])
            ));
            return;
        }
        let is_write = spec.flags.contains(Flags::WRITE);
        if self.read_only && is_write {
            enc.error("ERR Write commands are not allowed from read-only scripts.");
            return;
        }
        let cow: Vec<Cow<'_, [u8]>> = args.iter().map(|a| Cow::Borrowed(a.as_slice())).collect();
        if let Some(refusal) =
            super::acl::refused_at_exec(self.commands, self.session, self.ctx, &cow)
        {
            enc.error(&refusal);
            return;
        }
        if is_write {
            self.run.mark_write();
        }
        let version_before = std::mem::replace(&mut self.session.version, version);
        let in_exec_before = std::mem::replace(&mut self.session.in_exec, true);
        let mut call = Call {
            ctx: self.ctx,
            commands: self.commands,
            session: &mut *self.session,
            args: &cow,
        };
        run_queued(&mut call, &mut enc);
        self.session.version = version_before;
        self.session.in_exec = in_exec_before;
    }
}

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO script numkeys [key ...] [arg ...]
/// (dispatched with every gate held).
pub fn eval(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let name = call.name();
    let by_sha = name.starts_with("evalsha");
    let read_only = name.ends_with("_ro");
    let Some(numkeys) = parse_i64(call.arg(2)) else {
        return Err(err::NOT_INTEGER.into());
    };
    let given = call.args.len() as i64 - 3;
    if numkeys > given {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    if numkeys < 0 {
        return Err("ERR Number of keys can't be negative".into());
    }
    if by_sha && call.arg(1).len() != 40 {
        return Err("NOSCRIPT No matching script. Please use EVAL.".into());
    }
    let scripting = &call.ctx.shared.scripting;
    let mut engine = scripting.engine();
    let source = if by_sha {
        ScriptSource::Sha(call.arg(1))
    } else {
        ScriptSource::Body(call.arg(1))
    };
    let (sha, no_writes) = match engine.prepare(source) {
        Outcome::Ready { sha, no_writes } => (sha, no_writes),
        Outcome::Refused(message) => {
            scripting.refresh_figures(&engine);
            return Err(message.into());
        }
    };
    let run = Run {
        kind: Kind::Eval,
        name: &sha,
        numkeys: numkeys as usize,
        read_only: read_only || no_writes,
    };
    run_with_host(
        call,
        enc,
        &mut engine,
        run,
        |engine, keys, argv, host, enc| engine.run_eval(&sha, keys, argv, host, enc),
    );
    Ok(Flow::Continue)
}

/// What [`run_with_host`] runs: an EVAL script or a FUNCTION, its name (sha or function
/// name), how many of the arguments after it are keys, and whether writes are refused.
pub(super) struct Run<'n> {
    pub kind: Kind,
    pub name: &'n str,
    pub numkeys: usize,
    pub read_only: bool,
}

/// Runs a script or function (`body`) as EVAL and FCALL do: KEYS and ARGV split from the
/// command's arguments (after the name and numkeys), the run recorded for SCRIPT KILL,
/// FUNCTION STATS and BUSY, and the engine's memory figures refreshed after.
pub(super) fn run_with_host(
    call: &mut Call<'_, '_>,
    enc: &mut Encoder<'_>,
    engine: &mut Engine,
    run: Run<'_>,
    body: impl FnOnce(&mut Engine, &[&[u8]], &[&[u8]], &mut ScriptHost<'_, '_>, &mut Encoder<'_>),
) {
    let scripting = &call.ctx.shared.scripting;
    let split = 3 + run.numkeys;
    let keys: Vec<&[u8]> = call.args[3..split].iter().map(|k| &k[..]).collect();
    let argv: Vec<&[u8]> = call.args[split..].iter().map(|a| &a[..]).collect();
    let state = scripting.run_state();
    let command: Vec<&[u8]> = call.args.iter().map(|a| &a[..]).collect();
    state.describe(run.name, &command);
    state.begin(run.kind, unix_millis());
    let mut host = ScriptHost {
        ctx: call.ctx,
        commands: call.commands,
        session: &mut *call.session,
        read_only: run.read_only,
        run: state,
    };
    body(engine, &keys, &argv, &mut host, enc);
    state.end();
    scripting.refresh_figures(engine);
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// The engine, or the BUSY error while a script past the threshold holds it.
pub(super) fn engine_or_busy<'s>(
    ctx: &'s Context<'_>,
) -> Result<parking_lot::MutexGuard<'s, crate::scripting::Engine>, String> {
    let scripting = &ctx.shared.scripting;
    loop {
        if let Some(engine) = scripting.try_engine_for(Duration::from_millis(20)) {
            return Ok(engine);
        }
        if let Some(busy) = scripting.busy(unix_millis()) {
            return Err(busy.to_string());
        }
    }
}

/// SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP (dispatched without a gate).
pub fn script(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let sub = call.arg(1).to_ascii_uppercase();
    let argc = call.args.len();
    let scripting = &call.ctx.shared.scripting;
    match (sub.as_slice(), argc) {
        (b"HELP", 2) => {
            super::reply_help(enc, SCRIPT_HELP);
        }
        (b"KILL", 2) => match scripting.kill(Kind::Eval) {
            Ok(()) => enc.ok(),
            Err(refusal) => enc.error(&refusal.to_string()),
        },
        (b"LOAD", 3) => match engine_or_busy(call.ctx) {
            Err(busy) => enc.error(&busy),
            Ok(mut engine) => {
                match engine.prepare(ScriptSource::Body(call.arg(2))) {
                    Outcome::Ready { sha, .. } => enc.bulk(sha.as_bytes()),
                    Outcome::Refused(message) => enc.error(&message),
                }
                scripting.refresh_figures(&engine);
            }
        },
        (b"EXISTS", 3..) => match engine_or_busy(call.ctx) {
            Err(busy) => enc.error(&busy),
            Ok(engine) => {
                enc.array(argc - 2);
                for sha in &call.args[2..] {
                    enc.integer(i64::from(engine.exists(sha)));
                }
            }
        },
        (b"FLUSH", 2 | 3) => {
            if argc == 3 && !super::is(call.arg(2), "ASYNC") && !super::is(call.arg(2), "SYNC") {
                return Err("ERR SCRIPT FLUSH only support SYNC|ASYNC option".into());
            }
            match engine_or_busy(call.ctx) {
                Err(busy) => enc.error(&busy),
                Ok(mut engine) => {
                    match engine.flush() {
                        Ok(()) => enc.ok(),
                        Err(error) => enc.error(&format!("ERR {error}")),
                    }
                    scripting.refresh_figures(&engine);
                }
            }
        }
        _ => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SCRIPT HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Ok(Flow::Continue)
}
