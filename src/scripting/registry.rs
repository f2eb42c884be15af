//! The records of loaded FUNCTION libraries and their functions: what the engine keeps and
//! FUNCTION LIST shows. Data only: loading and calling are `library.rs`'s, the Lua state is
//! `engine.rs`'s.

use mlua::Function;

/// One registered function.
pub(crate) struct LuaFunction {
    pub library: String,
    pub callback: Function,
    pub flags: Vec<String>,
    pub description: Option<String>,
}

pub(crate) struct Library {
    pub code: Vec<u8>,
    pub functions: Vec<String>,
}

/// What FUNCTION LIST shows of a library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryInfo {
    pub name: String,
    pub code: Vec<u8>,
    pub functions: Vec<FunctionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<String>,
    pub flags: Vec<String>,
}
