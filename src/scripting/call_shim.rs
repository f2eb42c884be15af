//! The C side of `redis.call` and `redis.pcall`: a C function (so `return redis.call(...)` is
//! no Lua tail call and an error keeps the caller's line) that moves all its arguments into one
//! table and calls the Rust handler kept in the registry with that table and the count.
//!
//! Why C: Redis passes a script as many arguments as Lua can (its tests pass 8001, past Lua
//! 5.1's `LUAI_MAXCSTACK` for the C API), and an mlua callback with that many arguments on its
//! stack fails mlua's own stack checks before it runs. This module must never do more than
//! that move and call: the handler does the work, in safe Rust.

use std::ffi::{c_int, CStr};

use mlua::{ffi, Function, Lua};

/// Registry keys of the handlers: each takes `(args: table, count)`.
pub const CALL_HANDLER: &CStr = c"ferrocache.redis_call";
pub const PCALL_HANDLER: &CStr = c"ferrocache.redis_pcall";

/// Moves the arguments into a table at index 1 and calls the handler named `key` with it and
/// their count, returning its one result.
///
/// # Safety
/// `state` is a Lua state calling a C function (so at least `LUA_MINSTACK` slots are free
/// above its arguments) and `key` names a function in its registry.
unsafe fn forward(state: *mut ffi::lua_State, key: &CStr) -> c_int {
    // SAFETY: the caller's contract; each call below pushes at most one value while at most
    // two are on the stack beyond the table, within the LUA_MINSTACK slots a C function gets.
    // Errors (memory, or the handler's) unwind by longjmp through this frame, which owns
    // nothing with a destructor.
    unsafe {
        let count = ffi::lua_gettop(state);
        ffi::lua_createtable(state, count, 0);
        ffi::lua_insert(state, 1);
        for i in (1..=count).rev() {
            ffi::lua_rawseti_(state, 1, i); // pops the top value into args[i]
        }
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, key.as_ptr());
        ffi::lua_insert(state, 1);
        ffi::lua_pushinteger(state, ffi::lua_Integer::from(count));
        ffi::lua_call(state, 2, 1);
    }
    1
}

unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this as a C function; `install` put the handler in the registry.
    unsafe { forward(state, CALL_HANDLER) }
}

unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `redis_call`.
    unsafe { forward(state, PCALL_HANDLER) }
}

/// Stores the two handlers and returns the C functions `redis.call` and `redis.pcall`.
pub fn install(lua: &Lua, call: Function, pcall: Function) -> mlua::Result<(Function, Function)> {
    for (key, handler) in [(CALL_HANDLER, call), (PCALL_HANDLER, pcall)] {
        let key = key.to_str().expect("the keys are ASCII");
        lua.set_named_registry_value(key, handler)?;
    }
    // SAFETY: both are C functions that follow Lua's calling convention (see `forward`).
    unsafe {
        Ok((
            lua.create_c_function(redis_call)?,
            lua.create_c_function(redis_pcall)?,
        ))
    }
}
