//! The Lua state: its sandbox (`sandbox.lua`), the cache of compiled scripts by SHA1, and
//! running one script with a [`Host`] that executes its `redis.call`s.
//!
//! It owns the Lua state and nothing else; it never runs a command itself (the host does)
//! and never takes a gate.

use std::cell::Cell;
use std::sync::Arc;

use ferrocache_protocol::resp::{parse_reply, Encoder, RespVersion};
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, Variadic, VmState};

use super::convert::{error_table, lua_to_reply, reply_to_lua, string_like};
use super::{sha1_hex, RunState};
use crate::hashing::HashMap;

/// How often (in Lua VM instructions) the kill flag is checked, as Redis does.
const HOOK_EVERY: u32 = 100_000;
/// A GC step every this many runs (Redis's `LUA_GC_CYCLE_PERIOD`).
const GC_PERIOD: u64 = 50;
/// What a killed script answers (before its location).
const KILLED: &str = "ERR Script killed by user with SCRIPT KILL...";
/// Redis's error for library code that runs past [`LOAD_TIMEOUT_MS`].
const LOAD_TIMEOUT: &str = "FUNCTION LOAD timeout";
/// How long FUNCTION LOAD lets a library's code run (Redis's 500 ms: it should only register
/// functions).
pub(super) const LOAD_TIMEOUT_MS: u64 = 500;

/// Executes a script's commands: the command layer's side of `redis.call`.
pub trait Host {
    /// Runs `args` (name first) as the script's command and writes its reply, in `version`,
    /// to `out`. Refusals (unknown command, wrong arity, not allowed in scripts) are error
    /// replies too.
    fn call(&mut self, args: &[Vec<u8>], version: RespVersion, out: &mut Vec<u8>);
}

/// Where a script's body comes from.
#[derive(Debug, Clone, Copy)]
pub enum ScriptSource<'a> {
    Body(&'a [u8]),
    Sha(&'a [u8]),
}

/// What a lookup or compilation gave.
#[derive(Debug)]
pub enum Outcome {
    /// The script's SHA1 and whether it declared `no-writes` (shebang flags).
    Ready { sha: String, no_writes: bool },
    /// The reply that refuses it (`NOSCRIPT`, a compile error, a bad shebang), without `-`.
    Refused(String),
}

/// The Lua state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("building the Lua state: {0}")]
    Lua(#[from] mlua::Error),
}

struct Script {
    function: Function,
    no_writes: bool,
}

pub struct Engine {
    pub(super) lua: Lua,
    /// The sandbox's private table: `call`, `setresp`, `running` are set for one run.
    pub(super) rt: Table,
    /// What scripts see as their globals (a read-only proxy; KEYS and ARGV are raw-set on it).
    globals: Table,
    /// Calls a function under the error handler: `(true, result)` or `(false, err table)`.
    runner: Function,
    scripts: HashMap<String, Script>,
    scripts_bytes: usize,
    memory_limit: usize,
    pub(super) run: Arc<RunState>,
    runs: u64,
    /// FUNCTION libraries by name, and their functions by name.
    pub(super) libraries: std::collections::BTreeMap<String, super::registry::Library>,
    pub(super) functions: HashMap<String, super::registry::LuaFunction>,
}

impl Engine {
    /// A fresh Lua state with Redis's sandbox, using at most `memory_limit` bytes (0 = no
    /// limit). `version` is the Redis version scripts see (`redis.REDIS_VERSION`).
    pub fn new(
        memory_limit: usize,
        run: Arc<RunState>,
        version: &str,
    ) -> Result<Engine, EngineError> {
        let version = version.to_string();
        // SAFETY: `unsafe_new_with` is needed only to load the debug library, which the
        // sandbox keeps in a local for its error handler and removes from the globals before
        // any script can run; no C module is ever loaded.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::new(),
            )
        };
        lua.set_memory_limit(memory_limit)?;
        let rt = lua.create_table()?;
        let num = version
            .split('.')
            .map(|part| part.parse::<u64>().unwrap_or(0))
            .fold(0, |acc, part| acc * 256 + part);
        rt.raw_set("version", version.clone())?;
        rt.raw_set("version_num", num)?;
        rt.raw_set(
            "sha1hex",
            lua.create_function(|_, value: Value| {
                Ok(sha1_hex(&string_like(&value).unwrap_or_default()))
            })?,
        )?;
        rt.raw_set(
            "error_table",
            lua.create_function(|lua, text: mlua::LuaString| error_table(lua, &text.as_bytes()))?,
        )?;
        rt.raw_set(
            "log",
            lua.create_function(|_, (level, text): (u8, mlua::LuaString)| {
                let level = match level {
                    0 => log::Level::Debug,
                    1 => log::Level::Info,
                    2 => log::Level::Info,
                    _ => log::Level::Warn,
                };
                log::log!(level, "{}", text.to_string_lossy());
                Ok(())
            })?,
        )?;
        super::libs::install(&lua)?;
        rt.raw_set("running", false)?;
        rt.raw_set("registering", false)?;
        let handler = |raise: bool| {
            let rt_here = rt.clone();
            lua.create_function(move |lua, (args, count): (Table, usize)| {
                command(lua, &rt_here, raise, args, count)
            })
        };
        let (call, pcall) = super::call_shim::install(&lua, handler(true)?, handler(false)?)?;
        rt.raw_set("redis_call", call)?;
        rt.raw_set("redis_pcall", pcall)?;
        let rt_here = rt.clone();
        rt.raw_set(
            "rawset",
            lua.create_function(move |lua, (table, key, value): (Table, Value, Value)| {
                let readonly = table
                    .metatable()
                    .is_some_and(|mt| mt.raw_get::<bool>("__readonly").unwrap_or(false));
                if readonly {
                    return raise(lua, &rt_here, "Attempt to modify a readonly table");
                }
                table.raw_set(key, value)?;
                Ok(table)
            })?,
        )?;
        let (globals, runner): (Table, Function) = lua
            .load(include_str!("sandbox.lua"))
            .set_name("=sandbox")
            .call((rt.clone(), lua.globals()))?;
        lua.set_globals(globals.clone())?;
        let hook_run = run.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if hook_run.killed() {
                    Err(mlua::Error::runtime(KILLED))
                } else if hook_run.load_timed_out(crate::clock::unix_millis()) {
                    Err(mlua::Error::runtime(LOAD_TIMEOUT))
                } else {
                    Ok(VmState::Continue)
                }
            },
        )?;
        Ok(Engine {
            lua,
            rt,
            globals,
            runner,
            scripts: HashMap::default(),
            scripts_bytes: 0,
            memory_limit,
            run,
            runs: 0,
            libraries: Default::default(),
            functions: HashMap::default(),
        })
    }

    /// SCRIPT FLUSH: an empty script cache (function libraries stay), its memory collected.
    pub fn flush(&mut self) -> Result<(), EngineError> {
        self.scripts.clear();
        self.scripts_bytes = 0;
        self.lua.gc_collect()?;
        Ok(())
    }

    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    pub fn scripts_bytes(&self) -> usize {
        self.scripts_bytes
    }

    pub fn script_count(&self) -> usize {
        self.scripts.len()
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha)
            .map(|sha| self.scripts.contains_key(&sha.to_ascii_lowercase()))
            .unwrap_or(false)
    }

    /// Finds a cached script (by SHA1, any case) or compiles and caches a body.
    pub fn prepare(&mut self, source: ScriptSource<'_>) -> Outcome {
        match source {
            ScriptSource::Sha(sha) => {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                match self.scripts.get(&sha) {
                    Some(script) if sha.len() == 40 => Outcome::Ready {
                        no_writes: script.no_writes,
                        sha,
                    },
                    _ => Outcome::Refused("NOSCRIPT No matching script. Please use EVAL.".into()),
                }
            }
            ScriptSource::Body(body) => self.compile(body),
        }
    }

    fn compile(&mut self, body: &[u8]) -> Outcome {
        let sha = sha1_hex(body);
        if let Some(script) = self.scripts.get(&sha) {
            return Outcome::Ready {
                no_writes: script.no_writes,
                sha,
            };
        }
        let (skip, no_writes) = match shebang(body) {
            Ok(parsed) => parsed,
            Err(message) => return Outcome::Refused(message),
        };
        let compiled = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_environment(self.globals.clone())
            .into_function();
        let function = match compiled {
            Ok(function) => function,
            Err(error) => {
                let message = match &error {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                return Outcome::Refused(format!(
                    "ERR Error compiling script (new function): {}",
                    message.replace(['\r', '\n'], " ")
                ));
            }
        };
        let bytes = body.len() + 40;
        self.scripts_bytes += bytes;
        self.scripts.insert(
            sha.clone(),
            Script {
                function,
                no_writes,
            },
        );
        Outcome::Ready { sha, no_writes }
    }

    /// Runs the cached script `sha` with KEYS and ARGV, its commands going to `host`, and
    /// writes its reply (or its error, with Redis's "script: sha, on source:line" tail).
    pub fn run_eval(
        &mut self,
        sha: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
        host: &mut dyn Host,
        enc: &mut Encoder<'_>,
    ) {
        let Some(function) = self.scripts.get(sha).map(|s| s.function.clone()) else {
            enc.error("NOSCRIPT No matching script. Please use EVAL.");
            return;
        };
        let set_globals = || -> mlua::Result<()> {
            self.globals.raw_set(
                "KEYS",
                self.lua.create_sequence_from(
                    keys.iter()
                        .map(|k| self.lua.create_string(k))
                        .collect::<mlua::Result<Vec<_>>>()?,
                )?,
            )?;
            self.globals.raw_set(
                "ARGV",
                self.lua.create_sequence_from(
                    args.iter()
                        .map(|a| self.lua.create_string(a))
                        .collect::<mlua::Result<Vec<_>>>()?,
                )?,
            )?;
            Ok(())
        };
        if let Err(error) = set_globals() {
            enc.error(&format!("ERR Error running script {sha}, {error}"));
            return;
        }
        self.invoke(function, sha, Vec::new(), host, enc);
    }

    /// The function that calls another under the sandbox's error handler.
    pub(super) fn runner(&self) -> Function {
        self.runner.clone()
    }

    /// Calls `function` with `args` under the error handler and writes what it answers.
    pub(super) fn invoke(
        &mut self,
        function: Function,
        name: &str,
        args: Vec<Value>,
        host: &mut dyn Host,
        enc: &mut Encoder<'_>,
    ) {
        let resp3 = Cell::new(false);
        let rt = self.rt.clone();
        let runner = self.runner.clone();
        let result = self.lua.scope(|scope| {
            let call = scope.create_function_mut(|lua, (argv, count): (Table, usize)| {
                let argv = (1..=count)
                    .map(|i| argv.raw_get::<Value>(i))
                    .collect::<mlua::Result<Vec<Value>>>()?;
                script_call(lua, &argv, resp3.get(), host)
            })?;
            let setresp = scope.create_function(|_, version: u8| {
                resp3.set(version == 3);
                Ok(())
            })?;
            rt.raw_set("call", call)?;
            rt.raw_set("setresp", setresp)?;
            rt.raw_set("running", true)?;
            rt.raw_set("pending", Value::Nil)?;
            let mut call_args = vec![Value::Function(function)];
            call_args.extend(args);
            let outcome = runner.call::<Variadic<Value>>(Variadic::from_iter(call_args));
            rt.raw_set("running", false)?;
            rt.raw_set("call", Value::Nil)?;
            rt.raw_set("setresp", Value::Nil)?;
            outcome
        });
        match result {
            Ok(values) => {
                let ok = matches!(values.first(), Some(Value::Boolean(true)));
                let value = values.get(1).cloned().unwrap_or(Value::Nil);
                if ok {
                    lua_to_reply(&value, resp3.get(), enc);
                } else {
                    enc.error(&failure(&value, name, self.run.killed()));
                }
            }
            Err(error) => {
                let message = if self.run.killed() {
                    KILLED.to_string()
                } else {
                    format!("ERR Error running script {name}, {error}")
                };
                enc.error(&message.replace(['\r', '\n'], " "));
            }
        }
        // A script that ran into the memory bound left its garbage behind: collect it now, or
        // the next script (even its compilation) would fail for want of memory.
        if self.memory_limit > 0 && self.lua.used_memory() > self.memory_limit / 2 {
            let _ = self.lua.gc_collect();
        }
        self.runs += 1;
        if self.runs >= GC_PERIOD {
            self.runs = 0;
            let _ = self.lua.gc_step();
        }
    }
}

/// Raises `{err = "ERR " .. message}` from a Rust function: the table waits in `rt.pending`
/// for the sandbox's error handler (or its pcall), since mlua raises its own error object.
fn raise<T>(lua: &Lua, rt: &Table, message: &str) -> mlua::Result<T> {
    rt.raw_set("pending", error_table(lua, message.as_bytes())?)?;
    Err(mlua::Error::runtime(message))
}

/// `redis.call` (`raise`) and `redis.pcall`: the run's command function, or Redis's error
/// outside a run.
fn command(
    lua: &Lua,
    rt: &Table,
    raise_errors: bool,
    args: Table,
    count: usize,
) -> mlua::Result<Value> {
    let Some(inner) = rt.raw_get::<Option<Function>>("call")? else {
        return raise(
            lua,
            rt,
            "redis.call/pcall can only be called inside a script invocation",
        );
    };
    // The arguments stay one table and their count (nils kept as holes; see call_shim.rs).
    let (is_error, value): (bool, Value) = inner.call((args, count))?;
    if is_error && raise_errors {
        rt.raw_set("pending", value)?;
        return Err(mlua::Error::runtime("redis.call failed"));
    }
    Ok(value)
}

/// The run's side of `redis.call` / `redis.pcall`: `(is_error, value)`.
fn script_call(
    lua: &Lua,
    argv: &[Value],
    resp3: bool,
    host: &mut dyn Host,
) -> mlua::Result<(bool, Value)> {
    if argv.is_empty() {
        return Ok((
            true,
            Value::Table(error_table(
                lua,
                b"Please specify at least one argument for this redis lib call",
            )?),
        ));
    }
    let mut args = Vec::with_capacity(argv.len());
    for value in argv {
        let bytes = match value {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Integer(n) => n.to_string().into_bytes(),
            // Redis formats numbers with %.17g here, not as Lua prints them.
            Value::Number(n) => ferrocache_protocol::resp::format_score(*n).into_bytes(),
            _ => {
                return Ok((
                    true,
                    Value::Table(error_table(
                        lua,
                        b"Lua redis lib command arguments must be strings or integers",
                    )?),
                ))
            }
        };
        args.push(bytes);
    }
    let version = if resp3 {
        RespVersion::Resp3
    } else {
        RespVersion::Resp2
    };
    let mut out = Vec::new();
    host.call(&args, version, &mut out);
    match parse_reply(&out) {
        Ok((reply, _)) => {
            let is_error = matches!(reply, ferrocache_protocol::resp::Reply::Error(_));
            Ok((is_error, reply_to_lua(lua, &reply)?))
        }
        Err(_) => Ok((
            true,
            Value::Table(error_table(lua, b"-ERR the command gave no reply")?),
        )),
    }
}

/// The error reply of a script that failed with `err` (the handler's table).
fn failure(err: &Value, name: &str, killed: bool) -> String {
    let Value::Table(table) = err else {
        let text = string_like(err).unwrap_or_else(|| b"execution failure".to_vec());
        let text = String::from_utf8_lossy(&text);
        return format!(
            "ERR Error running script {name}, {}",
            text.chars().take(100).collect::<String>()
        );
    };
    let message = if killed {
        KILLED.to_string()
    } else {
        table
            .raw_get::<Value>("err")
            .ok()
            .and_then(|v| string_like(&v))
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .unwrap_or_else(|| "ERR unknown error".into())
    };
    let source = table
        .raw_get::<Value>("source")
        .ok()
        .and_then(|v| string_like(&v));
    let line = table
        .raw_get::<Value>("line")
        .ok()
        .and_then(|v| string_like(&v));
    let mut text = message;
    if let (Some(source), Some(line)) = (source, line) {
        text.push_str(&format!(
            " script: {name}, on {}:{}.",
            String::from_utf8_lossy(&source),
            String::from_utf8_lossy(&line)
        ));
    }
    let text = text.replace(['\r', '\n'], " ");
    match text.strip_prefix('-') {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// Redis 7's `#!lua [flags=a,b]` first line: how many bytes to skip (the line, not its
/// newline, so line numbers stay) and whether the script declared `no-writes`.
fn shebang(body: &[u8]) -> Result<(usize, bool), String> {
    if !body.starts_with(b"#!") {
        return Ok((0, false));
    }
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[2..end]);
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut no_writes = false;
    for part in parts {
        let Some(flags) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        for flag in flags.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(format!("ERR Unexpected flag in script shebang: {other}")),
            }
        }
    }
    Ok((end, no_writes))
}
