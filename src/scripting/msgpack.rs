//! `cmsgpack`, the MessagePack library Redis loads into scripts: `pack(...)`, `unpack(s)`,
//! `unpack_one(s [, offset])` and `unpack_limit(s, limit [, offset])`, with the choices of
//! Redis's `deps/lua/src/lua_cmsgpack.c` (0.4.0): integral numbers as the smallest int form,
//! other numbers as float32 when that is exact else float64, strings as fixstr/str8/16/32,
//! tables as arrays when their keys are exactly 1..n (else maps, in `next` order), tables
//! nested 16 deep and functions/userdata as nil; unpacking reads those forms (no bin or ext:
//! "Bad data format in input.") and gives every number as a Lua number.
//!
//! Pure functions on Lua values; no I/O, no commands. Unpacking never reserves more than the
//! input can hold (a header's count is capped by the bytes left) and recurses at most
//! [`MAX_DECODE_DEPTH`] deep (an error past it, never a stack overflow).

use mlua::{Lua, MultiValue, Table, Value, Variadic};

/// Tables nested this deep are packed as nil (`LUACMSGPACK_MAX_NESTING`), which is how
/// circular references end.
const MAX_NESTING: usize = 16;
/// Deepest nesting `unpack` follows (Redis's Lua fails some thousands deep, on its stack
/// limit); this one recurses on the worker's thread, whose 2 MiB stack bounds it lower.
const MAX_DECODE_DEPTH: usize = 128;
/// Most values one call returns: Lua 5.1's `LUAI_MAXCSTACK`, where `luaL_checkstack` fails.
const MAX_RESULTS: usize = 7990;
const TOO_MANY: &str =
    "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    // IS_INT64_EQUIVALENT: finite and equal to its conversion to a 64-bit integer.
    const I64_RANGE: std::ops::Range<f64> = -9.223_372_036_854_776e18..9.223_372_036_854_776e18;
    if n.fract() == 0.0 && I64_RANGE.contains(&n) {
        encode_int(n as i64, out);
    } else if f64::from(n as f32) == n {
        // Exact as a float (infinities too; never NaN).
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A fixed-size header: `fix` with the count in its low bits when it fits `fix_max`, else the
/// 16- or 32-bit form.
fn encode_len(len: usize, fix: u8, fix_max: usize, op16: u8, op32: u8, out: &mut Vec<u8>) {
    if len <= fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(op16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(op32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else {
        encode_len(len, 0, 0, 0xda, 0xdb, out);
    }
    out.extend_from_slice(bytes);
}

/// Keys exactly 1..n, with no hole (an empty table is an array too).
fn is_array(table: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0u64, 0u64);
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair?;
        match as_number(&key) {
            Some(n) if n > 0.0 && n.fract() == 0.0 && n <= f64::from(i32::MAX) => {
                max = max.max(n as u64);
                count += 1;
            }
            _ => return Ok(false),
        }
    }
    Ok(max == count)
}

fn encode(value: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match value {
        Value::String(s) => encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => encode_number(*n as f64, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(table) if level < MAX_NESTING => {
            if is_array(table)? {
                let len = table.raw_len();
                encode_len(len, 0x90, 15, 0xdc, 0xdd, out);
                for i in 1..=len {
                    encode(&table.get::<Value>(i)?, level + 1, out)?;
                }
            } else {
                let len = table.pairs::<Value, Value>().count();
                encode_len(len, 0x80, 15, 0xde, 0xdf, out);
                for pair in table.pairs::<Value, Value>() {
                    let (key, value) = pair?;
                    encode(&key, level + 1, out)?;
                    encode(&value, level + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

/// Why decoding stopped (`mp_cur`'s error codes).
enum DecodeError {
    Eof,
    BadFormat,
    Lua(mlua::Error),
}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Lua(e)
    }
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.input.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.left() < n {
            return Err(DecodeError::Eof);
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DECODE_DEPTH {
            return Err(DecodeError::Lua(mlua::Error::runtime(TOO_MANY)));
        }
        let tag = self.take(1)?[0];
        let number = |n: f64| Ok(Value::Number(n));
        match tag {
            0x00..=0x7f => number(f64::from(tag)),
            0xe0..=0xff => number(f64::from(tag as i8)),
            0xa0..=0xbf => self.string(lua, usize::from(tag & 0x1f)),
            0x90..=0x9f => self.array(lua, usize::from(tag & 0x0f), depth),
            0x80..=0x8f => self.map(lua, usize::from(tag & 0x0f), depth),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xcc => number(self.be(1)? as f64),
            0xcd => number(self.be(2)? as f64),
            0xce => number(self.be(4)? as f64),
            0xcf => number(self.be(8)? as f64),
            0xd0 => number(f64::from(self.be(1)? as u8 as i8)),
            0xd1 => number(f64::from(self.be(2)? as u16 as i16)),
            0xd2 => number(f64::from(self.be(4)? as u32 as i32)),
            0xd3 => number(self.be(8)? as i64 as f64),
            0xca => number(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => number(f64::from_bits(self.be(8)?)),
            0xd9 => {
                let len = self.be(1)? as usize;
                self.string(lua, len)
            }
            0xda => {
                let len = self.be(2)? as usize;
                self.string(lua, len)
            }
            0xdb => {
                let len = self.be(4)? as usize;
                self.string(lua, len)
            }
            0xdc => {
                let len = self.be(2)? as usize;
                self.array(lua, len, depth)
            }
            0xdd => {
                let len = self.be(4)? as usize;
                self.array(lua, len, depth)
            }
            0xde => {
                let len = self.be(2)? as usize;
                self.map(lua, len, depth)
            }
            0xdf => {
                let len = self.be(4)? as usize;
                self.map(lua, len, depth)
            }
            _ => Err(DecodeError::BadFormat),
        }
    }

    fn string(&mut self, lua: &Lua, len: usize) -> Result<Value, DecodeError> {
        let bytes = self.take(len)?;
        Ok(Value::String(lua.create_string(bytes)?))
    }

    fn array(&mut self, lua: &Lua, len: usize, depth: usize) -> Result<Value, DecodeError> {
        // Every element takes at least one byte.
        let table = lua.create_table_with_capacity(len.min(self.left()), 0)?;
        for i in 1..=len {
            let value = self.value(lua, depth + 1)?;
            table.raw_set(i, value)?;
        }
        Ok(Value::Table(table))
    }

    fn map(&mut self, lua: &Lua, len: usize, depth: usize) -> Result<Value, DecodeError> {
        // Every pair takes at least two bytes.
        let table = lua.create_table_with_capacity(0, len.min(self.left() / 2))?;
        for _ in 0..len {
            let key = self.value(lua, depth + 1)?;
            let value = self.value(lua, depth + 1)?;
            if key.is_nil() {
                return Err(DecodeError::Lua(mlua::Error::runtime("table index is nil")));
            }
            if as_number(&key).is_some_and(f64::is_nan) {
                return Err(DecodeError::Lua(mlua::Error::runtime("table index is NaN")));
            }
            table.raw_set(key, value)?;
        }
        Ok(Value::Table(table))
    }
}

/// `mp_unpack_full`: `limit` 0 with `offset` 0 decodes everything and returns only the
/// values; otherwise at most `limit` values from `offset`, preceded by the next offset (-1 at
/// the end of the input).
fn unpack(lua: &Lua, input: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(mlua::Error::runtime(format!(
            "Invalid request to unpack with offset of {offset} and limit of {}.",
            input.len()
        )));
    }
    if offset as u64 > input.len() as u64 {
        return Err(mlua::Error::runtime(format!(
            "Start offset {offset} greater than input length {}.",
            input.len()
        )));
    }
    let limit = if decode_all { i64::MAX } else { limit };
    let mut cursor = Cursor {
        input,
        pos: offset as usize,
    };
    let mut values = Vec::new();
    while cursor.left() > 0 && (values.len() as i64) < limit {
        if values.len() >= MAX_RESULTS {
            return Err(mlua::Error::runtime(TOO_MANY));
        }
        match cursor.value(lua, 0) {
            Ok(value) => values.push(value),
            Err(DecodeError::Eof) => return Err(mlua::Error::runtime("Missing bytes in input.")),
            Err(DecodeError::BadFormat) => {
                return Err(mlua::Error::runtime("Bad data format in input."))
            }
            Err(DecodeError::Lua(e)) => return Err(e),
        }
    }
    if !decode_all {
        let next = if cursor.left() == 0 {
            -1
        } else {
            cursor.pos as i64
        };
        values.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_iter(values))
}

fn integer_arg(value: Option<&Value>, position: usize, name: &str) -> mlua::Result<Option<i64>> {
    match value {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => match as_number(v) {
            Some(n) => Ok(Some(n as i64)),
            None => Err(mlua::Error::runtime(format!(
                "bad argument #{position} to '{name}' (number expected, got {})",
                v.type_name()
            ))),
        },
    }
}

fn input_arg<'v>(args: &'v [Value], name: &str) -> mlua::Result<&'v mlua::LuaString> {
    match args.first() {
        Some(Value::String(s)) => Ok(s),
        other => Err(mlua::Error::runtime(format!(
            "bad argument #1 to '{name}' (string expected, got {})",
            other.map_or("no value", Value::type_name)
        ))),
    }
}

/// Builds the `cmsgpack` table.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let cmsgpack = lua.create_table()?;
    cmsgpack.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return Err(mlua::Error::runtime(
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for value in args.iter() {
                encode(value, 0, &mut out)?;
            }
            lua.create_string(out)
        })?,
    )?;
    cmsgpack.raw_set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| {
            let input = input_arg(&args, "unpack")?;
            unpack(lua, &input.as_bytes(), 0, 0)
        })?,
    )?;
    cmsgpack.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: Variadic<Value>| {
            let offset = integer_arg(args.get(1), 2, "unpack_one")?.unwrap_or(0);
            let input = input_arg(&args, "unpack_one")?;
            unpack(lua, &input.as_bytes(), 1, offset)
        })?,
    )?;
    cmsgpack.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: Variadic<Value>| {
            let limit = integer_arg(args.get(1), 2, "unpack_limit")?.ok_or_else(|| {
                mlua::Error::runtime(
                    "bad argument #2 to 'unpack_limit' (number expected, got no value)",
                )
            })?;
            let offset = integer_arg(args.get(2), 3, "unpack_limit")?.unwrap_or(0);
            let input = input_arg(&args, "unpack_limit")?;
            unpack(lua, &input.as_bytes(), limit, offset)
        })?,
    )?;
    for (key, text) in [
        ("_NAME", "cmsgpack"),
        ("_VERSION", "lua-cmsgpack 0.4.0"),
        ("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo"),
        ("_DESCRIPTION", "MessagePack C implementation for Lua"),
    ] {
        cmsgpack.raw_set(key, text)?;
    }
    Ok(cmsgpack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripting::test_support::hex;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals()
            .set("cmsgpack", install(&lua).unwrap())
            .unwrap();
        lua
    }

    #[test]
    fn packs_as_lua_cmsgpack() {
        let lua = lua();
        assert_eq!(hex(&lua, "return cmsgpack.pack(0.1)"), "cb3fb999999999999a");
        assert_eq!(hex(&lua, "return cmsgpack.pack(0.5)"), "ca3f000000");
        assert_eq!(
            hex(&lua, "return cmsgpack.pack(-1099511627776)"),
            "d3ffffff0000000000"
        );
        assert_eq!(
            hex(&lua, "return cmsgpack.pack(-1, -33, 200, 70000)"),
            "ffd0dfccc8ce00011170"
        );
        assert_eq!(hex(&lua, "return cmsgpack.pack({1, 2}, {})"), "92010290");
        assert_eq!(hex(&lua, "return cmsgpack.pack({a = true})"), "81a161c3");
        assert_eq!(
            hex(&lua, "return cmsgpack.pack(string.rep('x', 32))")[..4],
            *"d920"
        );
        assert_eq!(hex(&lua, "return cmsgpack.pack(print)"), "c0");
        // Circular: cut at 16 levels with nil.
        let deep = hex(&lua, "local a = {} a[1] = a return cmsgpack.pack(a)");
        assert_eq!(deep, format!("{}c0", "91".repeat(16)));
    }

    #[test]
    fn unpacks_with_offsets_and_errors() {
        let lua = lua();
        let ok: bool = lua
            .load(
                "local s = cmsgpack.pack('a', {1, {x = 2}}, 3)
                 local a, t, n = cmsgpack.unpack(s)
                 local off, one = cmsgpack.unpack_one(s)
                 local off2, two, three = cmsgpack.unpack_limit(s, 2, off)
                 return a == 'a' and t[2].x == 2 and n == 3 and off == 2 and one == 'a'
                    and off2 == -1 and two[1] == 1 and three == 3",
            )
            .eval()
            .unwrap();
        assert!(ok);
        let err = |code: &str| lua.load(code).exec().unwrap_err().to_string();
        assert!(err("cmsgpack.unpack('\\146\\1')").contains("Missing bytes in input."));
        assert!(err("cmsgpack.unpack('\\196')").contains("Bad data format in input."));
        assert!(err("cmsgpack.unpack_one('\\1', 5)").contains("Start offset 5 greater"));
        assert!(err("cmsgpack.pack()").contains("MessagePack pack needs input."));
        // A header claiming 2^32-1 elements with no bytes behind it allocates nothing big.
        assert!(err("cmsgpack.unpack('\\221\\255\\255\\255\\255')").contains("Missing bytes"));
        // Nesting past the bound is an error, not a stack overflow; up to it, it unpacks.
        let deep = format!(
            "return cmsgpack.unpack(string.rep('\\145', {MAX_DECODE_DEPTH}) .. '\\1')[1] ~= nil"
        );
        assert!(lua.load(&deep).eval::<bool>().unwrap());
        assert!(err("cmsgpack.unpack(string.rep('\\145', 100000) .. '\\1')")
            .contains("too many return values"));
    }
}
