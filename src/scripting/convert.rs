//! Conversions between Redis replies and Lua values, with Redis 7.0's rules
//! (`script_lua.c`: `redisProtocolToLuaType_*`, `luaReplyToRedisReply`, `luaPushErrorBuff`).
//!
//! Owns only the mapping; never runs a command or touches the store.
//!
//! Reply → Lua: integer → number; bulk → string; RESP2 null bulk / null array → `false`;
//! status → `{ok=...}`; error → `{err=...}`; array → table. RESP3 adds map → `{map={k=v}}`,
//! set → `{set={m=true}}`, null → `nil`, boolean → boolean, double → `{double=n}`, big number
//! → `{big_number=s}`, verbatim → `{verbatim_string={string=s, format=f}}`.
//!
//! Lua → reply: string → bulk; number → integer (truncated); boolean → `:1` / null (RESP2
//! script) or a boolean (RESP3 script); a table with `err`, `ok`, `double`, `big_number`,
//! `verbatim_string`, `map` or `set` → that type; any other table → an array up to its first
//! nil; anything else → null.

use ferrocache_protocol::resp::{Encoder, Reply};
use mlua::{Lua, Table, Value};

/// Nesting deeper than this is answered with Redis's "reached lua stack limit" error.
const MAX_DEPTH: usize = 200;

/// Redis's `luaPushErrorBuff`: `-CODE message` keeps its code, `-message` (one word) and
/// plain `message` get `ERR`; the message is trimmed of CR/LF at its ends.
pub fn error_text(raw: &[u8]) -> Vec<u8> {
    let (code, message): (&[u8], &[u8]) = match raw.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(space) => (&rest[..space], &rest[space + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", raw),
    };
    let start = message
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(message.len());
    let end = message
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b'\n'))
        .map_or(start, |i| i + 1);
    let mut text = code.to_vec();
    text.push(b' ');
    text.extend_from_slice(&message[start..end.max(start)]);
    text
}

/// `{err = error_text(raw)}`.
pub fn error_table(lua: &Lua, raw: &[u8]) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.raw_set("err", lua.create_string(error_text(raw))?)?;
    Ok(table)
}

fn single(lua: &Lua, key: &str, value: impl mlua::IntoLua) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    table.raw_set(key, value)?;
    Ok(Value::Table(table))
}

/// The Lua value of a command's reply.
pub fn reply_to_lua(lua: &Lua, reply: &Reply<'_>) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Integer(n) => Value::Number(*n as f64),
        Reply::Bulk(bytes) => Value::String(lua.create_string(bytes)?),
        Reply::NullBulk | Reply::NullArray => Value::Boolean(false),
        Reply::Null => Value::Nil,
        Reply::Simple(text) => single(lua, "ok", lua.create_string(text)?)?,
        Reply::Error(text) => {
            let mut raw = Vec::with_capacity(text.len() + 1);
            raw.push(b'-');
            raw.extend_from_slice(text);
            Value::Table(error_table(lua, &raw)?)
        }
        Reply::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, reply_to_lua(lua, item)?)?;
            }
            Value::Table(table)
        }
        Reply::Map(pairs) => {
            let inner = lua.create_table_with_capacity(0, pairs.len())?;
            for (key, value) in pairs {
                let key = reply_to_lua(lua, key)?;
                if !key.is_nil() {
                    inner.raw_set(key, reply_to_lua(lua, value)?)?;
                }
            }
            single(lua, "map", inner)?
        }
        Reply::Set(items) => {
            let inner = lua.create_table_with_capacity(0, items.len())?;
            for item in items {
                let key = reply_to_lua(lua, item)?;
                if !key.is_nil() {
                    inner.raw_set(key, true)?;
                }
            }
            single(lua, "set", inner)?
        }
        Reply::Boolean(b) => Value::Boolean(*b),
        Reply::Double(d) => single(lua, "double", *d)?,
        Reply::BigNumber(digits) => single(lua, "big_number", lua.create_string(digits)?)?,
        Reply::Verbatim { format, text } => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(text)?)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            single(lua, "verbatim_string", inner)?
        }
    })
}

/// Lua's `lua_isstring`: strings and numbers, as bytes.
pub fn string_like(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(n) => Some(n.to_string().into_bytes()),
        Value::Number(n) => Some(lua_number_text(*n).into_bytes()),
        _ => None,
    }
}

/// How Lua 5.1 prints a number (`%.14g`).
pub fn lua_number_text(n: f64) -> String {
    if n == n.trunc() && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    let text = format!("{n:.13e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |t: &str| {
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t.to_string()
        }
    };
    if !(-4..14).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exponent.unsigned_abs())
    } else {
        let decimals = (13 - exponent).max(0) as usize;
        trim(&format!("{n:.decimals$}"))
    }
}

/// Writes a script's result (or a field of it) as a reply. `resp3` is the script's own
/// protocol (`redis.setresp`), which decides how booleans go out.
pub fn lua_to_reply(value: &Value, resp3: bool, enc: &mut Encoder<'_>) {
    write(value, resp3, enc, 0);
}

fn field(table: &Table, key: &str) -> Value {
    table.raw_get(key).unwrap_or(Value::Nil)
}

fn sanitize(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
}

fn write(value: &Value, resp3: bool, enc: &mut Encoder<'_>, depth: usize) {
    if depth > MAX_DEPTH {
        enc.error("ERR reached lua stack limit");
        return;
    }
    match value {
        Value::String(s) => enc.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp3 {
                enc.boolean(*b);
            } else if *b {
                enc.integer(1);
            } else {
                enc.null();
            }
        }
        Value::Integer(n) => enc.integer(*n),
        Value::Number(n) => enc.integer(truncate(*n)),
        Value::Table(table) => write_table(table, resp3, enc, depth),
        _ => enc.null(),
    }
}

/// C's `(long long)` cast of a double, saturating where C is undefined.
fn truncate(n: f64) -> i64 {
    if n.is_nan() {
        i64::MIN
    } else {
        n as i64
    }
}

fn write_table(table: &Table, resp3: bool, enc: &mut Encoder<'_>, depth: usize) {
    if let Some(err) = string_like(&field(table, "err")) {
        let text = sanitize(&err);
        enc.error(text.strip_prefix('-').unwrap_or(&text));
        return;
    }
    if let Value::String(ok) = field(table, "ok") {
        enc.simple(&sanitize(&ok.as_bytes()));
        return;
    }
    match field(table, "double") {
        Value::Number(d) => return enc.double(d),
        Value::Integer(d) => return enc.double(d as f64),
        _ => {}
    }
    if let Value::String(digits) = field(table, "big_number") {
        enc.big_number(sanitize(&digits.as_bytes()).as_bytes());
        return;
    }
    if let Value::Table(verbatim) = field(table, "verbatim_string") {
        if let (Value::String(format), Value::String(text)) =
            (field(&verbatim, "format"), field(&verbatim, "string"))
        {
            let format = format.as_bytes();
            let mut tag = *b"txt";
            for (i, b) in format.iter().take(3).enumerate() {
                tag[i] = *b;
            }
            enc.verbatim_as(&tag, &text.as_bytes());
            return;
        }
    }
    if let Value::Table(map) = field(table, "map") {
        let pairs: Vec<(Value, Value)> = map.pairs::<Value, Value>().flatten().collect();
        enc.map(pairs.len());
        for (key, value) in &pairs {
            write(key, resp3, enc, depth + 1);
            write(value, resp3, enc, depth + 1);
        }
        return;
    }
    if let Value::Table(set) = field(table, "set") {
        let members: Vec<Value> = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        enc.set(members.len());
        for member in &members {
            write(member, resp3, enc, depth + 1);
        }
        return;
    }
    let mut items = Vec::new();
    for i in 1.. {
        match table.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(item) => items.push(item),
        }
    }
    enc.array(items.len());
    for item in &items {
        write(item, resp3, enc, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_protocol::resp::RespVersion;

    #[test]
    fn error_text_follows_lua_push_error_buff() {
        assert_eq!(error_text(b"-WRONGTYPE Operation"), b"WRONGTYPE Operation");
        assert_eq!(error_text(b"-FOO"), b"ERR FOO");
        assert_eq!(error_text(b"My Error"), b"ERR My Error");
        assert_eq!(error_text(b"-My Error\r\n"), b"My Error");
    }

    #[test]
    fn lua_numbers_print_as_lua_does() {
        assert_eq!(lua_number_text(3.0), "3");
        assert_eq!(lua_number_text(3.5), "3.5");
        assert_eq!(lua_number_text(0.1), "0.1");
        assert_eq!(lua_number_text(1e20), "1e+20");
        assert_eq!(lua_number_text(1.0 / 3.0), "0.33333333333333");
    }

    fn encode(lua: &Lua, source: &str, resp3_script: bool, version: RespVersion) -> String {
        let value: Value = lua.load(source).eval().unwrap();
        let mut out = Vec::new();
        lua_to_reply(&value, resp3_script, &mut Encoder::new(&mut out, version));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lua_values_become_redis_replies() {
        let lua = Lua::new();
        let r2 = RespVersion::Resp2;
        assert_eq!(encode(&lua, "return 3.99", false, r2), ":3\r\n");
        assert_eq!(encode(&lua, "return -3.99", false, r2), ":-3\r\n");
        assert_eq!(encode(&lua, "return 'x'", false, r2), "$1\r\nx\r\n");
        assert_eq!(encode(&lua, "return true", false, r2), ":1\r\n");
        assert_eq!(encode(&lua, "return false", false, r2), "$-1\r\n");
        assert_eq!(encode(&lua, "return nil", false, r2), "$-1\r\n");
        assert_eq!(
            encode(&lua, "return false", false, RespVersion::Resp3),
            "_\r\n"
        );
        assert_eq!(
            encode(&lua, "return false", true, RespVersion::Resp3),
            "#f\r\n"
        );
        assert_eq!(
            encode(&lua, "return {1, 'a', {2}, nil, 5}", false, r2),
            "*3\r\n:1\r\n$1\r\na\r\n*1\r\n:2\r\n"
        );
        assert_eq!(
            encode(&lua, "return {ok='fine\\r\\nx'}", false, r2),
            "+fine  x\r\n"
        );
        assert_eq!(
            encode(&lua, "return {err='My Error'}", false, r2),
            "-My Error\r\n"
        );
        assert_eq!(
            encode(&lua, "return {double=3.5}", true, RespVersion::Resp3),
            ",3.5\r\n"
        );
        assert_eq!(
            encode(&lua, "return {double=3.5}", true, r2),
            "$3\r\n3.5\r\n"
        );
        assert_eq!(
            encode(&lua, "return {map={a=1}}", true, RespVersion::Resp3),
            "%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            encode(&lua, "return {set={a=true}}", true, r2),
            "*1\r\n$1\r\na\r\n"
        );
        assert!(encode(&lua, "local t = {} t[1] = t return t", false, r2)
            .ends_with("-ERR reached lua stack limit\r\n"));
    }

    #[test]
    fn replies_become_lua_values() {
        let lua = Lua::new();
        let check = |raw: &[u8], expect: &str| {
            let (reply, _) = ferrocache_protocol::resp::parse_reply(raw).unwrap();
            let value = reply_to_lua(&lua, &reply).unwrap();
            let show: mlua::Function = lua
                .load(
                    r#"local function show(v)
                        if type(v) ~= 'table' then return type(v) .. ':' .. tostring(v) end
                        local keys = {}
                        for k in pairs(v) do keys[#keys + 1] = tostring(k) end
                        table.sort(keys)
                        local parts = {}
                        for _, k in ipairs(keys) do
                            local real = v[k] if real == nil then real = v[tonumber(k)] end
                            parts[#parts + 1] = k .. '=' .. show(real)
                        end
                        return '{' .. table.concat(parts, ',') .. '}'
                    end
                    return show"#,
                )
                .eval()
                .unwrap();
            assert_eq!(show.call::<String>(value).unwrap(), expect, "{raw:?}");
        };
        check(b":5\r\n", "number:5");
        check(b"$-1\r\n", "boolean:false");
        check(b"*-1\r\n", "boolean:false");
        check(b"_\r\n", "nil:nil");
        check(b"+OK\r\n", "{ok=string:OK}");
        check(b"-WRONGTYPE bad\r\n", "{err=string:WRONGTYPE bad}");
        check(b"*2\r\n:1\r\n$1\r\nb\r\n", "{1=number:1,2=string:b}");
        check(b"%1\r\n$1\r\nk\r\n:1\r\n", "{map={k=number:1}}");
        check(b"~1\r\n$1\r\nm\r\n", "{set={m=boolean:true}}");
        check(b",1.5\r\n", "{double=number:1.5}");
        check(b"#t\r\n", "boolean:true");
        check(b"(123\r\n", "{big_number=string:123}");
    }
}
