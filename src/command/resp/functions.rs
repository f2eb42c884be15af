//! FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|KILL|HELP and FCALL / FCALL_RO.
//!
//! FCALL runs with every worker's gate held, as EVAL (see `scripting.rs`); FUNCTION takes no
//! gate (KILL and STATS must answer while a script holds them all; the others only need the
//! engine's mutex, waited for with the BUSY check).

use std::time::Duration;

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::scripting::{engine_or_busy, run_with_host, Run};
use super::{parse_i64, Call};
use crate::command::Flow;
use crate::persist::dump;
use crate::scripting::{Kind, RestorePolicy};
use crate::shared::unix_millis;

/// FCALL / FCALL_RO function numkeys [key ...] [arg ...] (dispatched with every gate held).
pub fn fcall(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let read_only = call.name().ends_with("_ro");
    let Some(numkeys) = parse_i64(call.arg(2)) else {
        return Err("ERR Bad number of keys provided".into());
    };
    if numkeys > call.args.len() as i64 - 3 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    if numkeys < 0 {
        return Err("ERR Number of keys can't be negative".into());
    }
    let name = String::from_utf8_lossy(call.arg(1)).into_owned();
    let scripting = &call.ctx.shared.scripting;
    let mut engine = scripting.engine();
    let Some(flags) = engine.function_flags(&name) else {
        return Err("ERR Function not found".into());
    };
    let no_writes = flags.iter().any(|f| f == "no-writes");
    if read_only && !no_writes {
        return Err("ERR Can not execute a script with write flag using *_ro command.".into());
    }
    let run = Run {
        kind: Kind::Function,
        name: &name,
        numkeys: numkeys as usize,
        read_only: read_only || no_writes,
    };
    run_with_host(
        call,
        enc,
        &mut engine,
        run,
        |engine, keys, argv, host, enc| engine.call_function(&name, keys, argv, host, enc),
    );
    Ok(Flow::Continue)
}

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Print this help.",
];

/// FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|KILL|HELP (dispatched without a gate).
pub fn function(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let sub = call.arg(1).to_ascii_uppercase();
    let argc = call.args.len();
    let scripting = &call.ctx.shared.scripting;
    match (sub.as_slice(), argc) {
        (b"HELP", 2) => {
            super::reply_help(enc, FUNCTION_HELP);
        }
        (b"KILL", 2) => match scripting.kill(Kind::Function) {
            Ok(()) => enc.ok(),
            Err(refusal) => enc.error(&refusal.to_string()),
        },
        (b"STATS", 2) => {
            let running = scripting.run_state().current(unix_millis());
            // While a script holds the engine, its counts are the last ones INFO saw.
            let (libraries, functions) = match scripting.try_engine_for(Duration::ZERO) {
                Some(engine) => (engine.libraries().len(), engine.function_count()),
                None => scripting.function_figures(),
            };
            enc.map(2);
            enc.bulk(b"running_script");
            match running {
                Some((name, command, ms)) => {
                    enc.map(3);
                    enc.bulk(b"name");
                    enc.bulk(name.as_bytes());
                    enc.bulk(b"command");
                    enc.array(command.len());
                    for arg in &command {
                        enc.bulk(arg);
                    }
                    enc.bulk(b"duration_ms");
                    enc.integer(ms as i64);
                }
                None => enc.null(),
            }
            enc.bulk(b"engines");
            enc.map(1);
            enc.bulk(b"LUA");
            enc.map(2);
            enc.bulk(b"libraries_count");
            enc.integer(libraries as i64);
            enc.bulk(b"functions_count");
            enc.integer(functions as i64);
        }
        (b"LOAD", 3..) => {
            let mut replace = false;
            for option in &call.args[2..argc - 1] {
                if super::is(option, "REPLACE") {
                    replace = true;
                } else {
                    return Err(format!(
                        "ERR Unknown option given: {}",
                        String::from_utf8_lossy(option)
                    )
                    .into());
                }
            }
            match engine_or_busy(call.ctx) {
                Err(busy) => enc.error(&busy),
                Ok(mut engine) => {
                    match engine.load_library(call.arg(argc - 1), replace) {
                        Ok(name) => enc.bulk(name.as_bytes()),
                        Err(refusal) => enc.error(&refusal),
                    }
                    scripting.refresh_figures(&engine);
                }
            }
        }
        (b"DELETE", 3) => match engine_or_busy(call.ctx) {
            Err(busy) => enc.error(&busy),
            Ok(mut engine) => {
                if engine.delete_library(&String::from_utf8_lossy(call.arg(2))) {
                    scripting.refresh_figures(&engine);
                    enc.ok();
                } else {
                    enc.error("ERR Library not found");
                }
            }
        },
        (b"FLUSH", 2 | 3) => {
            if argc == 3 && !super::is(call.arg(2), "ASYNC") && !super::is(call.arg(2), "SYNC") {
                return Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into());
            }
            match engine_or_busy(call.ctx) {
                Err(busy) => enc.error(&busy),
                Ok(mut engine) => {
                    engine.flush_functions();
                    scripting.refresh_figures(&engine);
                    enc.ok();
                }
            }
        }
        (b"LIST", 2..) => list(call, enc),
        (b"DUMP", 2) => match engine_or_busy(call.ctx) {
            Err(busy) => enc.error(&busy),
            Ok(engine) => {
                let libraries = engine.libraries();
                drop(engine);
                enc.bulk(&dump::dump_functions(
                    libraries.iter().map(|l| l.code.as_slice()),
                ));
            }
        },
        (b"RESTORE", 3 | 4) => restore(call, enc),
        _ => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Ok(Flow::Continue)
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
fn restore(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) {
    let policy = match call.args.get(3) {
        None => RestorePolicy::Append,
        Some(p) if super::is(p, "APPEND") => RestorePolicy::Append,
        Some(p) if super::is(p, "REPLACE") => RestorePolicy::Replace,
        Some(p) if super::is(p, "FLUSH") => RestorePolicy::Flush,
        Some(_) => {
            enc.error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            );
            return;
        }
    };
    let codes = match dump::restore_functions(call.arg(2)) {
        Ok(codes) => codes,
        Err(refusal) => {
            enc.error(&format!("ERR {refusal}"));
            return;
        }
    };
    match engine_or_busy(call.ctx) {
        Err(busy) => enc.error(&busy),
        Ok(mut engine) => {
            match engine.restore_libraries(&codes, policy) {
                Ok(()) => enc.ok(),
                Err(refusal) => enc.error(&refusal),
            }
            call.ctx.shared.scripting.refresh_figures(&engine);
        }
    }
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
fn list(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) {
    let mut with_code = false;
    let mut pattern: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < call.args.len() {
        if super::is(call.arg(i), "WITHCODE") && !with_code {
            with_code = true;
        } else if super::is(call.arg(i), "LIBRARYNAME") && pattern.is_none() {
            let Some(value) = call.args.get(i + 1) else {
                enc.error("ERR library name argument was not given");
                return;
            };
            pattern = Some(value.to_vec());
            i += 1;
        } else {
            enc.error(&format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(call.arg(i))
            ));
            return;
        }
        i += 1;
    }
    let libraries = match engine_or_busy(call.ctx) {
        Ok(engine) => engine.libraries(),
        Err(busy) => {
            enc.error(&busy);
            return;
        }
    };
    let chosen: Vec<_> = libraries
        .iter()
        .filter(|lib| {
            pattern
                .as_ref()
                .is_none_or(|p| crate::glob::matches(p, lib.name.as_bytes()))
        })
        .collect();
    enc.array(chosen.len());
    for library in chosen {
        enc.map(if with_code { 4 } else { 3 });
        enc.bulk(b"library_name");
        enc.bulk(library.name.as_bytes());
        enc.bulk(b"engine");
        enc.bulk(b"LUA");
        enc.bulk(b"functions");
        enc.array(library.functions.len());
        for function in &library.functions {
            enc.map(3);
            enc.bulk(b"name");
            enc.bulk(function.name.as_bytes());
            enc.bulk(b"description");
            match &function.description {
                Some(text) => enc.bulk(text.as_bytes()),
                None => enc.null(),
            }
            enc.bulk(b"flags");
            enc.set(function.flags.len());
            for flag in &function.flags {
                enc.bulk(flag.as_bytes());
            }
        }
        if with_code {
            enc.bulk(b"library_code");
            enc.bulk(&library.code);
        }
    }
}
