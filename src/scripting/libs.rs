//! The libraries Redis loads into scripts beyond Lua's own, written in Rust: `bit` (LuaBitOp
//! 1.0 semantics: arguments normalised to signed 32-bit integers, results signed) and `cjson`
//! (`encode`, `decode`, `null`, with lua-cjson's array detection and errors).
//!
//! Pure functions on Lua values; no I/O, no commands. `cmsgpack` and `struct` have their own
//! modules ([`super::msgpack`], [`super::lua_struct`]); [`install`] loads all four.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use mlua::{LightUserData, Lua, Table, Value, Variadic};

use super::convert::lua_number_text;

/// lua-cjson's default `encode_max_depth` / `decode_max_depth`.
const JSON_MAX_DEPTH: usize = 1000;

/// cjson's settings (`cjson.encode_max_depth(n)` and friends), for the whole Lua state.
struct JsonSettings {
    encode_depth: AtomicUsize,
    decode_depth: AtomicUsize,
    invalid_numbers: AtomicBool,
    /// Kept only to be read back: we never reuse an encode buffer, so it changes no output.
    keep_buffer: AtomicBool,
}

/// LuaBitOp's `tobit`: round to an integer, keep the low 32 bits, as a signed number.
fn tobit(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let r = n.round_ties_even();
    (r.rem_euclid(4_294_967_296.0) as u64 as u32) as i32
}

fn number(value: &Value, position: usize) -> mlua::Result<f64> {
    match value {
        Value::Integer(n) => Ok(*n as f64),
        Value::Number(n) => Ok(*n),
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| {
                mlua::Error::runtime(format!("bad argument #{position} (number expected)"))
            }),
        _ => Err(mlua::Error::runtime(format!(
            "bad argument #{position} (number expected, got {})",
            value.type_name()
        ))),
    }
}

fn install_bit(lua: &Lua) -> mlua::Result<Table> {
    let bit = lua.create_table()?;
    bit.raw_set(
        "tobit",
        lua.create_function(|_, v: Value| Ok(tobit(number(&v, 1)?)))?,
    )?;
    bit.raw_set(
        "bnot",
        lua.create_function(|_, v: Value| Ok(!tobit(number(&v, 1)?)))?,
    )?;
    type Fold = fn(i32, i32) -> i32;
    for (name, fold) in [
        ("band", (|a, b| a & b) as Fold),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ] {
        bit.raw_set(
            name,
            lua.create_function(move |_, args: Variadic<Value>| {
                let mut acc = tobit(number(args.first().unwrap_or(&Value::Nil), 1)?);
                for (i, v) in args.iter().enumerate().skip(1) {
                    acc = fold(acc, tobit(number(v, i + 1)?));
                }
                Ok(acc)
            })?,
        )?;
    }
    type Shift = fn(i32, u32) -> i32;
    for (name, shift) in [
        (
            "lshift",
            (|a: i32, n: u32| ((a as u32) << n) as i32) as Shift,
        ),
        ("rshift", |a, n| ((a as u32) >> n) as i32),
        ("arshift", |a, n| a >> n),
        ("rol", |a, n| (a as u32).rotate_left(n) as i32),
        ("ror", |a, n| (a as u32).rotate_right(n) as i32),
    ] {
        bit.raw_set(
            name,
            lua.create_function(move |_, (x, n): (Value, Value)| {
                let n = (tobit(number(&n, 2)?) & 31) as u32;
                Ok(shift(tobit(number(&x, 1)?), n))
            })?,
        )?;
    }
    bit.raw_set(
        "bswap",
        lua.create_function(|_, v: Value| Ok(tobit(number(&v, 1)?).swap_bytes()))?,
    )?;
    bit.raw_set(
        "tohex",
        lua.create_function(|_, (x, n): (Value, Option<Value>)| {
            let x = tobit(number(&x, 1)?) as u32;
            let n = match n {
                Some(n) => tobit(number(&n, 2)?),
                None => 8,
            };
            let (upper, digits) = if n < 0 {
                (true, n.unsigned_abs())
            } else {
                (false, n as u32)
            };
            let digits = digits.min(8) as usize;
            let text = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(text[8 - digits..].to_string())
        })?,
    )?;
    Ok(bit)
}

fn json_escape(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

fn json_number(n: f64, settings: &JsonSettings, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !n.is_finite() && settings.invalid_numbers.load(Ordering::Relaxed) {
        out.extend_from_slice(lua_number_text(n).as_bytes());
        return Ok(());
    }
    if !n.is_finite() {
        return Err(mlua::Error::runtime(
            "Cannot serialise number: must not be NaN or Inf",
        ));
    }
    out.extend_from_slice(lua_number_text(n).as_bytes());
    Ok(())
}

fn encode(
    value: &Value,
    depth: usize,
    settings: &JsonSettings,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => json_number(*n, settings, out)?,
        Value::String(s) => json_escape(&s.as_bytes(), out),
        Value::Table(table) => {
            if depth >= settings.encode_depth.load(Ordering::Relaxed) {
                return Err(mlua::Error::runtime(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                )));
            }
            let pairs: Vec<(Value, Value)> = table.pairs::<Value, Value>().flatten().collect();
            // lua-cjson: an array when every key is a positive integer, unless excessively
            // sparse (max > 10 and more than twice the count).
            let mut max = 0usize;
            let mut array = !pairs.is_empty();
            for (key, _) in &pairs {
                let index = match key {
                    Value::Integer(n) if *n >= 1 => Some(*n as usize),
                    Value::Number(n) if *n >= 1.0 && n.fract() == 0.0 => Some(*n as usize),
                    _ => None,
                };
                match index {
                    Some(i) => max = max.max(i),
                    None => array = false,
                }
            }
            if array && max > 10 && max > pairs.len() * 2 {
                return Err(mlua::Error::runtime(
                    "Cannot serialise table: excessively sparse array",
                ));
            }
            if array {
                out.push(b'[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(b',');
                    }
                    encode(&table.raw_get::<Value>(i)?, depth + 1, settings, out)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    match key {
                        Value::String(s) => json_escape(&s.as_bytes(), out),
                        Value::Integer(n) => json_escape(n.to_string().as_bytes(), out),
                        Value::Number(n) => json_escape(lua_number_text(*n).as_bytes(), out),
                        _ => {
                            return Err(mlua::Error::runtime(
                                "Cannot serialise table: table key must be a number or string",
                            ))
                        }
                    }
                    out.push(b':');
                    encode(value, depth + 1, settings, out)?;
                }
                out.push(b'}');
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    }
    Ok(())
}

fn decode(lua: &Lua, json: &serde_json::Value, depth: usize, max: usize) -> mlua::Result<Value> {
    let nested = matches!(
        json,
        serde_json::Value::Array(_) | serde_json::Value::Object(_)
    );
    if nested && depth >= max {
        return Err(mlua::Error::runtime(
            "Found too many nested data structures",
        ));
    }
    Ok(match json {
        serde_json::Value::Null => Value::LightUserData(LightUserData(std::ptr::null_mut())),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, decode(lua, item, depth + 1, max)?)?;
            }
            Value::Table(table)
        }
        serde_json::Value::Object(map) => {
            let table = lua.create_table_with_capacity(0, map.len())?;
            for (key, value) in map {
                table.raw_set(key.as_str(), decode(lua, value, depth + 1, max)?)?;
            }
            Value::Table(table)
        }
    })
}

fn install_cjson(lua: &Lua) -> mlua::Result<Table> {
    let settings = Arc::new(JsonSettings {
        encode_depth: AtomicUsize::new(JSON_MAX_DEPTH),
        decode_depth: AtomicUsize::new(JSON_MAX_DEPTH),
        invalid_numbers: AtomicBool::new(false),
        keep_buffer: AtomicBool::new(true),
    });
    let cjson = lua.create_table()?;
    let s = settings.clone();
    cjson.raw_set(
        "encode",
        lua.create_function(move |lua, value: Value| {
            let mut out = Vec::new();
            encode(&value, 0, &s, &mut out)?;
            lua.create_string(out)
        })?,
    )?;
    let s = settings.clone();
    cjson.raw_set(
        "decode",
        lua.create_function(move |lua, text: mlua::LuaString| {
            let json: serde_json::Value =
                serde_json::from_slice(&text.as_bytes()).map_err(|e| {
                    mlua::Error::runtime(format!("Expected value but found invalid token: {e}"))
                })?;
            decode(lua, &json, 0, s.decode_depth.load(Ordering::Relaxed))
        })?,
    )?;
    for (name, pick) in [
        (
            "encode_max_depth",
            (|s: &JsonSettings| &s.encode_depth) as fn(&JsonSettings) -> &AtomicUsize,
        ),
        ("decode_max_depth", |s| &s.decode_depth),
    ] {
        let s = settings.clone();
        cjson.raw_set(
            name,
            lua.create_function(move |_, depth: Option<f64>| {
                if let Some(depth) = depth {
                    if !(1.0..=2_147_483_647.0).contains(&depth) {
                        return Err(mlua::Error::runtime(format!(
                            "bad argument #1 to '{name}' (expected integer between 1 and 2147483647)"
                        )));
                    }
                    pick(&s).store(depth as usize, Ordering::Relaxed);
                }
                Ok(pick(&s).load(Ordering::Relaxed))
            })?,
        )?;
    }
    for (name, pick) in [
        (
            "encode_invalid_numbers",
            (|s: &JsonSettings| &s.invalid_numbers) as fn(&JsonSettings) -> &AtomicBool,
        ),
        ("encode_keep_buffer", |s| &s.keep_buffer),
    ] {
        let s = settings.clone();
        cjson.raw_set(
            name,
            lua.create_function(move |_, on: Option<Value>| {
                match on {
                    Some(Value::Boolean(b)) => pick(&s).store(b, Ordering::Relaxed),
                    Some(Value::String(text)) => {
                        pick(&s).store(&*text.as_bytes() == b"on", Ordering::Relaxed)
                    }
                    _ => {}
                }
                Ok(pick(&s).load(Ordering::Relaxed))
            })?,
        )?;
    }
    cjson.raw_set(
        "null",
        Value::LightUserData(LightUserData(std::ptr::null_mut())),
    )?;
    Ok(cjson)
}

/// Puts `bit`, `cjson`, `cmsgpack` and `struct` in the globals (before the sandbox freezes
/// them).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.raw_set("bit", install_bit(lua)?)?;
    globals.raw_set("cjson", install_cjson(lua)?)?;
    globals.raw_set("cmsgpack", super::msgpack::install(lua)?)?;
    globals.raw_set("struct", super::lua_struct::install(lua)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, code: &str) -> String {
        lua.load(code)
            .eval::<mlua::LuaString>()
            .unwrap()
            .to_string_lossy()
    }

    #[test]
    fn bit_follows_luabitop() {
        let lua = Lua::new();
        install(&lua).unwrap();
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(
            eval(&lua, "return tostring(bit.bor(1,2,4,8,16,32,64,128))"),
            "255"
        );
        assert_eq!(
            eval(&lua, "return tostring(bit.lshift(1, 31))"),
            "-2147483648"
        );
        assert_eq!(eval(&lua, "return tostring(bit.rshift(-1, 28))"), "15");
        assert_eq!(eval(&lua, "return tostring(bit.arshift(-256, 4))"), "-16");
        assert_eq!(eval(&lua, "return bit.tohex(255, 4)"), "00ff");
        assert_eq!(eval(&lua, "return bit.tohex(-1)"), "ffffffff");
        assert_eq!(
            eval(&lua, "return tostring(bit.bswap(0x12345678))"),
            "2018915346"
        );
    }

    #[test]
    fn cjson_round_trips_as_lua_cjson() {
        let lua = Lua::new();
        install(&lua).unwrap();
        assert_eq!(
            eval(&lua, "return cjson.encode({1, 2, 'a/b'})"),
            "[1,2,\"a\\/b\"]"
        );
        assert_eq!(eval(&lua, "return cjson.encode({a = 1.5})"), "{\"a\":1.5}");
        assert_eq!(eval(&lua, "return cjson.encode({})"), "{}");
        assert_eq!(
            eval(&lua, "return cjson.encode({[1] = 1, [3] = 3})"),
            "[1,null,3]"
        );
        assert_eq!(
            eval(&lua, "local t = cjson.decode('{\"k\":[1,null,true]}') return tostring(t.k[1]) .. tostring(t.k[2] == cjson.null) .. tostring(t.k[3])"),
            "1truetrue"
        );
        assert!(lua
            .load("return cjson.encode({[1] = 1, [100] = 2})")
            .exec()
            .is_err());
        assert!(lua.load("return cjson.encode({n = 0/0})").exec().is_err());
        assert!(lua
            .load("cjson.encode_max_depth(1) return cjson.encode({{}})")
            .exec()
            .is_err());
        assert!(lua
            .load("cjson.decode_max_depth(1) return cjson.decode('{\"a\":{}}')")
            .exec()
            .is_err());
    }
}
