//! FUNCTION libraries (Redis 7.0's `functions.c` and `function_lua.c`): loading a library's
//! code so it registers its functions, the registry of libraries and functions, and calling
//! one (FCALL).
//!
//! Owns the libraries only; like the rest of the engine it runs no command itself and takes no
//! gate. Libraries live in the same Lua state as EVAL scripts (SCRIPT FLUSH keeps them) but
//! their code sees `redis` as the load-time API while it loads.

use std::cell::RefCell;

use ferrocache_protocol::resp::Encoder;
use mlua::{Function, Table, Value};

use super::engine::{Engine, Host};
use super::registry::{FunctionInfo, Library, LibraryInfo, LuaFunction};

/// Flags a function may declare (`register_function{flags = {...}}`).
const KNOWN_FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Letters, digits and `_`, at least one (`functionsVerifyName`).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The library's name from its `#!lua name=<name>` line, and where its code starts.
fn metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    // Split as Redis splits the line (`sdssplitargs`: quotes, escapes), so `name="foo"` is foo.
    let parts = ferrocache_protocol::resp::split_args(&code[..end])
        .filter(|parts| !parts.is_empty())
        .ok_or_else(|| "ERR Invalid library metadata".to_string())?;
    let mut parts = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let engine = parts
        .next()
        .unwrap_or_default()
        .trim_start_matches("#!")
        .to_string();
    let mut name = None;
    for part in parts {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            // `split_args` takes quotes at a token's start only; Redis's `sdssplitargs` also
            // inside one, so `name="foo"` names foo there: strip a quoted value's quotes.
            let value = &part[5..];
            let quoted = value.len() >= 2
                && (value.starts_with('"') && value.ends_with('"')
                    || value.starts_with('\'') && value.ends_with('\''));
            let value = if quoted {
                &value[1..value.len() - 1]
            } else {
                value
            };
            name = Some(value.to_string());
            continue;
        }
        return Err(format!("ERR Invalid metadata value given: {part}"));
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if !valid_name(&name) {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    Ok((name, end))
}

/// What FUNCTION RESTORE does with the libraries already loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

impl Engine {
    /// FUNCTION LOAD [REPLACE]: runs the library's code, which registers its functions; the
    /// library's name, or the refusal (without `-`).
    pub fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, skip) = metadata(code)?;
        if !replace && self.libraries.contains_key(&name) {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let env: Table = self
            .rt
            .raw_get("library_globals")
            .map_err(|e| format!("ERR {e}"))?;
        let chunk = self
            .lua
            .load(&code[skip..])
            .set_name("@user_function")
            .set_environment(env)
            .into_function();
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(mlua::Error::SyntaxError { message, .. }) => {
                return Err(format!("ERR Error compiling function: {message}"))
            }
            Err(other) => return Err(format!("ERR Error compiling function: {other}")),
        };
        let registered: RefCell<Vec<(String, LuaFunction)>> = RefCell::new(Vec::new());
        let runner: Function = self.runner();
        let rt = self.rt.clone();
        let outcome = self.lua.scope(|scope| {
            let register = scope.create_function(
                |_, (fname, callback, flags, description): (String, Function, Vec<String>, Option<String>)| {
                    if !valid_name(&fname) {
                        // Redis 7.0 names libraries in this message (7.2 says "Function").
                        return Ok(Some("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".to_string()));
                    }
                    if flags.iter().any(|f| !KNOWN_FLAGS.contains(&f.as_str())) {
                        return Ok(Some("unknown flag given".into()));
                    }
                    let mut list = registered.borrow_mut();
                    if list.iter().any(|(n, _)| *n == fname) {
                        return Ok(Some("Function already exists in the library".into()));
                    }
                    list.push((
                        fname,
                        LuaFunction {
                            library: String::new(),
                            callback,
                            flags,
                            description,
                        },
                    ));
                    Ok(None)
                },
            )?;
            rt.raw_set("register", register)?;
            rt.raw_set("registering", true)?;
            let deadline = crate::clock::unix_millis() + super::engine::LOAD_TIMEOUT_MS;
            self.run.set_load_deadline(deadline);
            let result = runner.call::<mlua::MultiValue>(chunk);
            self.run.set_load_deadline(0);
            rt.raw_set("registering", false)?;
            rt.raw_set("register", Value::Nil)?;
            result
        });
        let values = outcome.map_err(|e| format!("ERR Error registering functions: {e}"))?;
        let mut values = values.into_iter();
        if !matches!(values.next(), Some(Value::Boolean(true))) {
            let err = values.next().unwrap_or(Value::Nil);
            let message = match &err {
                Value::Table(t) => t
                    .raw_get::<Option<String>>("err")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "ERR unknown error".into()),
                other => format!("ERR {other:?}"),
            };
            return Err(format!("ERR Error registering functions: {message}"));
        }
        let registered = registered.into_inner();
        if registered.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for (fname, _) in &registered {
            if let Some(existing) = self.functions.get(&fname.to_ascii_lowercase()) {
                if existing.library != name {
                    return Err(format!("ERR Function {fname} already exists"));
                }
            }
        }
        self.delete_library(&name);
        let mut names = Vec::with_capacity(registered.len());
        for (fname, mut function) in registered {
            function.library = name.clone();
            names.push(fname.clone());
            // Function names are case-insensitive, as Redis's functions dictionary.
            self.functions.insert(fname.to_ascii_lowercase(), function);
        }
        self.libraries.insert(
            name.clone(),
            Library {
                code: code.to_vec(),
                functions: names,
            },
        );
        Ok(name)
    }

    /// FUNCTION RESTORE: loads the libraries of `codes` as one set (each must load on its
    /// own, none twice), then FLUSH swaps them for the loaded ones, APPEND adds them (a
    /// library of the same name is an error) and REPLACE adds them in place of libraries of
    /// the same names; a function name already taken by another library is an error. On any
    /// error nothing changes (`functionRestoreCommand`, `libraryJoin`).
    pub fn restore_libraries(
        &mut self,
        codes: &[Vec<u8>],
        policy: RestorePolicy,
    ) -> Result<(), String> {
        let kept_libraries = std::mem::take(&mut self.libraries);
        let kept_functions = std::mem::take(&mut self.functions);
        let loaded = codes
            .iter()
            .try_for_each(|code| self.load_library(code, false).map(drop));
        let new_libraries = std::mem::replace(&mut self.libraries, kept_libraries);
        let new_functions = std::mem::replace(&mut self.functions, kept_functions);
        loaded?;
        if policy == RestorePolicy::Flush {
            self.libraries = new_libraries;
            self.functions = new_functions;
            let _ = self.lua.gc_collect();
            return Ok(());
        }
        let replace = policy == RestorePolicy::Replace;
        if let Some(name) = new_libraries
            .keys()
            .find(|name| !replace && self.libraries.contains_key(*name))
        {
            return Err(format!("ERR Library {name} already exists"));
        }
        for library in new_libraries.values() {
            for name in &library.functions {
                let taken = self
                    .functions
                    .get(&name.to_ascii_lowercase())
                    .is_some_and(|old| !(replace && new_libraries.contains_key(&old.library)));
                if taken {
                    return Err(format!("ERR Function {name} already exists"));
                }
            }
        }
        for name in new_libraries.keys() {
            self.delete_library(name);
        }
        self.libraries.extend(new_libraries);
        self.functions.extend(new_functions);
        Ok(())
    }

    /// FUNCTION DELETE: whether the library existed.
    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(library) = self.libraries.remove(name) else {
            return false;
        };
        for function in &library.functions {
            self.functions.remove(&function.to_ascii_lowercase());
        }
        true
    }

    /// FUNCTION FLUSH.
    pub fn flush_functions(&mut self) {
        self.libraries.clear();
        self.functions.clear();
        let _ = self.lua.gc_collect();
    }

    /// FUNCTION LIST (and STATS' counts).
    pub fn libraries(&self) -> Vec<LibraryInfo> {
        self.libraries
            .iter()
            .map(|(name, library)| LibraryInfo {
                name: name.clone(),
                code: library.code.clone(),
                functions: library
                    .functions
                    .iter()
                    .filter_map(|f| {
                        self.functions
                            .get(&f.to_ascii_lowercase())
                            .map(|def| (f, def))
                    })
                    .map(|(f, def)| FunctionInfo {
                        name: f.clone(),
                        description: def.description.clone(),
                        flags: def.flags.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// The flags of function `name`, if it exists.
    pub fn function_flags(&self, name: &str) -> Option<&[String]> {
        self.functions
            .get(&name.to_ascii_lowercase())
            .map(|f| f.flags.as_slice())
    }

    /// FCALL: calls function `name` with its keys and arguments as two tables, its commands
    /// going to `host`.
    pub fn call_function(
        &mut self,
        name: &str,
        keys: &[&[u8]],
        args: &[&[u8]],
        host: &mut dyn Host,
        enc: &mut Encoder<'_>,
    ) {
        let found = self.functions.get(&name.to_ascii_lowercase());
        let Some(callback) = found.map(|f| f.callback.clone()) else {
            enc.error("ERR Function not found");
            return;
        };
        let tables = (|| -> mlua::Result<Vec<Value>> {
            let keys = self.lua.create_sequence_from(
                keys.iter()
                    .map(|k| self.lua.create_string(k))
                    .collect::<mlua::Result<Vec<_>>>()?,
            )?;
            let args = self.lua.create_sequence_from(
                args.iter()
                    .map(|a| self.lua.create_string(a))
                    .collect::<mlua::Result<Vec<_>>>()?,
            )?;
            Ok(vec![Value::Table(keys), Value::Table(args)])
        })();
        match tables {
            Ok(tables) => self.invoke(callback, name, tables, host, enc),
            Err(error) => enc.error(&format!("ERR Error running script {name}, {error}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_follows_redis() {
        assert_eq!(metadata(b"#!lua name=lib\nx").unwrap(), ("lib".into(), 14));
        assert_eq!(
            metadata(b"return 1").unwrap_err(),
            "ERR Missing library metadata"
        );
        assert_eq!(
            metadata(b"#!lua name=x").unwrap_err(),
            "ERR Invalid library metadata"
        );
        assert_eq!(
            metadata(b"#!lua\n").unwrap_err(),
            "ERR Library name was not given"
        );
        assert_eq!(
            metadata(b"#!lua foo=bar\n").unwrap_err(),
            "ERR Invalid metadata value given: foo=bar"
        );
        assert_eq!(
            metadata(b"#!js name=x\n").unwrap_err(),
            "ERR Engine 'js' not found"
        );
        assert!(metadata(b"#!lua name=a-b\n").is_err());
    }
}
