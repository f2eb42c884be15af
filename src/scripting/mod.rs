//! Lua scripting (EVAL and friends): one Lua 5.1 state shared by every worker, its script
//! cache, the sandbox Redis 7.0 builds around scripts, the conversions between replies and Lua
//! values, and the state of the script running now (for `-BUSY` and `SCRIPT KILL`).
//!
//! It never runs a command itself and never touches the store: a script's `redis.call` goes
//! through the [`Host`] the command layer hands in, so a script's commands take the same path
//! (and write path, and effect hook) as a client's. It holds no gate: atomicity is the caller's.
//!
//! Atomicity: the command layer runs a script with every worker's gate held for writing (as
//! EXEC does), so no command on any worker observes a script half done. Declared keys are not
//! used to narrow this: a script may touch keys it did not declare (Redis allows it outside
//! cluster mode), so everything waits. Past `busy-reply-threshold` the other workers answer
//! `-BUSY` instead of waiting (see [`Scripting::busy`]); clients on the worker running the
//! script wait until it ends, since that worker's thread is the one running it.

mod call_shim;
mod convert;
mod engine;
mod library;
mod libs;
mod lua_struct;
mod msgpack;
mod registry;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

pub use convert::{error_text, lua_to_reply, reply_to_lua};
pub use engine::{Engine, EngineError, Host, Outcome, ScriptSource};
pub use library::RestorePolicy;
pub use registry::{FunctionInfo, LibraryInfo};

/// Redis's default `busy-reply-threshold` (`lua-time-limit`), in milliseconds.
pub const DEFAULT_BUSY_THRESHOLD_MS: u64 = 5000;

/// What the running script is (`SCRIPT KILL` stops an EVAL, `FUNCTION KILL` a function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Eval,
    Function,
}

/// The script running now, read by every worker without the engine's lock.
#[derive(Debug, Default)]
pub struct RunState {
    /// Unix milliseconds the running script started at; 0 when none runs.
    started_ms: AtomicU64,
    /// It runs as a function (FCALL), not EVAL.
    function: AtomicBool,
    /// It has called a write command (then it cannot be killed).
    wrote: AtomicBool,
    /// SCRIPT KILL / FUNCTION KILL asked it to stop.
    killed: AtomicBool,
    /// The running function's name and command (FUNCTION STATS).
    command: parking_lot::Mutex<(String, Vec<Vec<u8>>)>,
    /// When the FUNCTION LOAD running now must give up (unix ms); 0 when none runs.
    load_deadline_ms: AtomicU64,
}

impl RunState {
    pub fn begin(&self, kind: Kind, now_ms: u64) {
        self.function
            .store(kind == Kind::Function, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.killed.store(false, Ordering::Relaxed);
        self.started_ms.store(now_ms.max(1), Ordering::Release);
    }

    /// Names what runs, for FUNCTION STATS (call before [`begin`](Self::begin)).
    pub fn describe(&self, name: &str, command: &[&[u8]]) {
        *self.command.lock() = (
            name.to_string(),
            command.iter().map(|a| a.to_vec()).collect(),
        );
    }

    /// The running script's name, command and milliseconds so far, if one runs.
    pub fn current(&self, now_ms: u64) -> Option<(String, Vec<Vec<u8>>, u64)> {
        let (_, started) = self.running()?;
        let (name, command) = self.command.lock().clone();
        Some((name, command, now_ms.saturating_sub(started)))
    }

    pub fn end(&self) {
        self.started_ms.store(0, Ordering::Release);
    }

    pub fn mark_write(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// Bounds the library code FUNCTION LOAD runs: past `at_ms` it is stopped (0 = no load).
    pub fn set_load_deadline(&self, at_ms: u64) {
        self.load_deadline_ms.store(at_ms, Ordering::Relaxed);
    }

    /// A FUNCTION LOAD runs past its deadline.
    pub fn load_timed_out(&self, now_ms: u64) -> bool {
        let at = self.load_deadline_ms.load(Ordering::Relaxed);
        at != 0 && now_ms > at
    }

    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    fn running(&self) -> Option<(Kind, u64)> {
        match self.started_ms.load(Ordering::Acquire) {
            0 => None,
            started => {
                let kind = if self.function.load(Ordering::Relaxed) {
                    Kind::Function
                } else {
                    Kind::Eval
                };
                Some((kind, started))
            }
        }
    }
}

/// Why SCRIPT KILL / FUNCTION KILL did not stop a script (Redis's replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KillError {
    #[error("NOTBUSY No scripts in execution right now.")]
    NotBusy,
    #[error("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")]
    Wrote,
    #[error(
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    )]
    IsFunction,
    #[error(
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    )]
    IsEval,
}

/// The scripting state every thread shares.
pub struct Scripting {
    engine: parking_lot::Mutex<Engine>,
    run: Arc<RunState>,
    busy_threshold_ms: AtomicU64,
    /// The Lua state's memory and the script cache's, as of the last script's end (INFO
    /// reads them while a script may hold the engine).
    lua_bytes: AtomicUsize,
    scripts_bytes: AtomicUsize,
    scripts: AtomicUsize,
    libraries: AtomicUsize,
    functions: AtomicUsize,
}

impl Scripting {
    /// A fresh engine whose Lua state may use at most `memory_limit` bytes.
    pub fn new(memory_limit: usize, redis_version: &str) -> Result<Scripting, EngineError> {
        let run = Arc::new(RunState::default());
        let engine = Engine::new(memory_limit, run.clone(), redis_version)?;
        let scripting = Scripting {
            lua_bytes: AtomicUsize::new(0),
            scripts_bytes: AtomicUsize::new(0),
            scripts: AtomicUsize::new(0),
            libraries: AtomicUsize::new(0),
            functions: AtomicUsize::new(0),
            engine: parking_lot::Mutex::new(engine),
            run,
            busy_threshold_ms: AtomicU64::new(DEFAULT_BUSY_THRESHOLD_MS),
        };
        scripting.refresh_figures(&scripting.engine.lock());
        Ok(scripting)
    }

    /// The engine, locked (one script or SCRIPT command at a time).
    pub fn engine(&self) -> parking_lot::MutexGuard<'_, Engine> {
        self.engine.lock()
    }

    /// The engine, if it comes free within `timeout` (SCRIPT commands while a script runs).
    pub fn try_engine_for(
        &self,
        timeout: std::time::Duration,
    ) -> Option<parking_lot::MutexGuard<'_, Engine>> {
        self.engine.try_lock_for(timeout)
    }

    pub fn run_state(&self) -> &RunState {
        &self.run
    }

    /// Updates the figures INFO shows from `engine` (call with the engine locked).
    pub fn refresh_figures(&self, engine: &Engine) {
        self.lua_bytes
            .store(engine.used_memory(), Ordering::Relaxed);
        self.scripts_bytes
            .store(engine.scripts_bytes(), Ordering::Relaxed);
        self.scripts.store(engine.script_count(), Ordering::Relaxed);
        self.libraries
            .store(engine.libraries().len(), Ordering::Relaxed);
        self.functions
            .store(engine.function_count(), Ordering::Relaxed);
    }

    /// Libraries and functions, as of the last refresh.
    pub fn function_figures(&self) -> (usize, usize) {
        (
            self.libraries.load(Ordering::Relaxed),
            self.functions.load(Ordering::Relaxed),
        )
    }

    /// `used_memory_lua` (the Lua state), `used_memory_scripts_eval` (cached bodies), and the
    /// number of cached scripts.
    pub fn figures(&self) -> (usize, usize, usize) {
        (
            self.lua_bytes.load(Ordering::Relaxed),
            self.scripts_bytes.load(Ordering::Relaxed),
            self.scripts.load(Ordering::Relaxed),
        )
    }

    pub fn busy_threshold_ms(&self) -> u64 {
        self.busy_threshold_ms.load(Ordering::Relaxed)
    }

    pub fn set_busy_threshold_ms(&self, ms: u64) {
        self.busy_threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// The busy error other clients get, when a script has run past the threshold at
    /// `now_ms` (a threshold of 0 means never).
    pub fn busy(&self, now_ms: u64) -> Option<KillError> {
        let (kind, started) = self.run.running()?;
        let threshold = self.busy_threshold_ms();
        if threshold == 0 || now_ms.saturating_sub(started) < threshold {
            return None;
        }
        Some(match kind {
            Kind::Eval => KillError::IsEval,
            Kind::Function => KillError::IsFunction,
        })
    }

    /// Whether a script runs now.
    pub fn is_running(&self) -> bool {
        self.run.running().is_some()
    }

    /// SHUTDOWN NOSAVE: stops the running script even if it wrote (nothing is saved after
    /// it, so no half-done script reaches a snapshot).
    pub fn abort_for_shutdown(&self) {
        if self.run.running().is_some() {
            self.run.killed.store(true, Ordering::Relaxed);
        }
    }

    /// SCRIPT KILL (`kind` Eval) or FUNCTION KILL (`kind` Function).
    pub fn kill(&self, kind: Kind) -> Result<(), KillError> {
        let Some((running, _)) = self.run.running() else {
            return Err(KillError::NotBusy);
        };
        if self.run.wrote.load(Ordering::Relaxed) {
            return Err(KillError::Wrote);
        }
        match (kind, running) {
            (Kind::Eval, Kind::Function) => return Err(KillError::IsFunction),
            (Kind::Function, Kind::Eval) => return Err(KillError::IsEval),
            _ => {}
        }
        self.run.killed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// SHA1 of `bytes` as 40 lower-case hex digits (script ids, `redis.sha1hex`).
pub fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

/// Helpers of the Lua library tests (cmsgpack, struct).
#[cfg(test)]
mod test_support {
    use mlua::Lua;

    /// The string `code` returns, in hex.
    pub fn hex(lua: &Lua, code: &str) -> String {
        let packed: mlua::LuaString = lua.load(code).eval().unwrap();
        packed
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
