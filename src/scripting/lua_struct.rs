//! `struct`, the binary packing library Redis loads into scripts (Roberto Ierusalimschy's
//! lua_struct 0.2 as Redis's `deps/lua/src/lua_struct.c` has it): `pack(fmt, ...)`,
//! `unpack(fmt, data [, pos])` and `size(fmt)`. Formats: `>` `<` endianness, `![n]`
//! alignment, `x` padding, `b B h H l L T i[n] I[n]` integers (1, 2, 8, 8, n ≤ 32 bytes; lower
//! case signed), `f d` floats, `c[n]` fixed strings (`c0`: the whole string to pack, or the
//! length unpacked just before), `s` zero-terminated strings; native order is little endian.
//!
//! Pure functions on Lua values; no I/O, no commands. Nothing is allocated beyond the strings
//! it is given and the bytes the format names (`unpack` checks each size against the data
//! first; `pack` checks each string is long enough).

use mlua::{Lua, MultiValue, Table, Value, Variadic};

/// `MAXINTSIZE`: the widest `i[n]`.
const MAX_INT_SIZE: usize = 32;
/// `MAXALIGN` on x86-64: the alignment `!` sets without a number.
const MAX_ALIGN: usize = 8;

#[derive(Clone, Copy, PartialEq)]
enum Endian {
    Big,
    Little,
}

struct Header {
    endian: Endian,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            endian: Endian::Little,
            align: 1,
        }
    }
}

fn arg_error(position: usize, name: &str, text: &str) -> mlua::Error {
    mlua::Error::runtime(format!("bad argument #{position} to '{name}' ({text})"))
}

/// The format string, read one option at a time.
struct Format<'f> {
    fmt: &'f [u8],
    pos: usize,
    name: &'static str,
}

impl Format<'_> {
    fn next_opt(&mut self) -> Option<u8> {
        let opt = *self.fmt.get(self.pos)?;
        self.pos += 1;
        Some(opt)
    }

    /// `getnum`: a decimal number following the option, or `default`.
    fn number(&mut self, default: usize) -> mlua::Result<usize> {
        if !self.fmt.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut n: i32 = 0;
        while let Some(&d) = self.fmt.get(self.pos).filter(|d| d.is_ascii_digit()) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i32::from(d - b'0')))
                .ok_or_else(|| mlua::Error::runtime("integral size overflow"))?;
            self.pos += 1;
        }
        Ok(n as usize)
    }

    /// `optsize`: the size of option `opt` (0 for the control options).
    fn size(&mut self, opt: u8) -> mlua::Result<usize> {
        Ok(match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(mlua::Error::runtime(format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                size
            }
            _ => 0,
        })
    }

    /// `controloptions`: endianness, alignment and spaces; anything else is an error.
    fn control(&mut self, opt: u8, header: &mut Header) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => header.endian = Endian::Big,
            b'<' => header.endian = Endian::Little,
            b'!' => {
                let align = self.number(MAX_ALIGN)?;
                if !align.is_power_of_two() {
                    return Err(mlua::Error::runtime(format!(
                        "alignment {align} is not a power of 2"
                    )));
                }
                header.align = align;
            }
            _ => {
                return Err(arg_error(
                    1,
                    self.name,
                    &format!("invalid format option '{}'", char::from(opt)),
                ))
            }
        }
        Ok(())
    }
}

/// `gettoalign`: padding before an item of `size` bytes at offset `len`.
fn to_align(len: usize, header: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(header.align);
    if !size.is_power_of_two() {
        return 0;
    }
    (size - (len & (size - 1))) & (size - 1)
}

fn check_number(args: &[Value], index: usize, name: &str) -> mlua::Result<f64> {
    match args.get(index) {
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| arg_error(index + 1, name, "number expected, got string")),
        other => Err(arg_error(
            index + 1,
            name,
            &format!(
                "number expected, got {}",
                other.map_or("no value", Value::type_name)
            ),
        )),
    }
}

fn check_bytes(args: &[Value], index: usize, name: &str) -> mlua::Result<Vec<u8>> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        Some(Value::Number(n)) => Ok(super::convert::lua_number_text(*n).into_bytes()),
        other => Err(arg_error(
            index + 1,
            name,
            &format!(
                "string expected, got {}",
                other.map_or("no value", Value::type_name)
            ),
        )),
    }
}

fn put_integer(n: f64, endian: Endian, size: usize, out: &mut Vec<u8>) {
    let mut value = if n < 0.0 { n as i64 as u64 } else { n as u64 };
    let mut bytes = [0u8; MAX_INT_SIZE];
    for b in bytes.iter_mut().take(size) {
        *b = (value & 0xff) as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
    let bytes = &mut bytes[..size];
    if endian == Endian::Big {
        bytes.reverse();
    }
    out.extend_from_slice(bytes);
}

fn get_integer(bytes: &[u8], endian: Endian, signed: bool) -> f64 {
    let fold = |acc: u64, &b: &u8| (acc << 8) | u64::from(b);
    let value = match endian {
        Endian::Big => bytes.iter().fold(0, fold),
        Endian::Little => bytes.iter().rev().fold(0, fold),
    };
    let size = bytes.len();
    if !signed {
        return value as f64;
    }
    if size == 0 || size >= 8 {
        return value as i64 as f64;
    }
    let mask = u64::MAX << (size * 8 - 1);
    let value = if value & mask != 0 {
        value | mask
    } else {
        value
    };
    value as i64 as f64
}

fn pack(lua: &Lua, args: Variadic<Value>) -> mlua::Result<mlua::LuaString> {
    let fmt = check_bytes(&args, 0, "pack")?;
    let mut format = Format {
        fmt: &fmt,
        pos: 0,
        name: "pack",
    };
    let mut header = Header::default();
    let mut arg = 1;
    let mut out = Vec::new();
    while let Some(opt) = format.next_opt() {
        let size = format.size(opt)?;
        let pad = to_align(out.len(), &header, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                put_integer(
                    check_number(&args, arg, "pack")?,
                    header.endian,
                    size,
                    &mut out,
                );
                arg += 1;
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(&args, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&match header.endian {
                    Endian::Big => f.to_be_bytes(),
                    Endian::Little => f.to_le_bytes(),
                });
            }
            b'd' => {
                let d = check_number(&args, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&match header.endian {
                    Endian::Big => d.to_be_bytes(),
                    Endian::Little => d.to_le_bytes(),
                });
            }
            b'c' | b's' => {
                let s = check_bytes(&args, arg, "pack")?;
                arg += 1;
                let size = if size == 0 { s.len() } else { size };
                if s.len() < size {
                    return Err(arg_error(arg, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => format.control(opt, &mut header)?,
        }
    }
    lua.create_string(out)
}

fn unpack(lua: &Lua, args: Variadic<Value>) -> mlua::Result<MultiValue> {
    let fmt = check_bytes(&args, 0, "unpack")?;
    let data = check_bytes(&args, 1, "unpack")?;
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1.0,
        Some(_) => check_number(&args, 2, "unpack")?,
    };
    if start < 1.0 {
        return Err(arg_error(3, "unpack", "offset must be 1 or greater"));
    }
    let mut pos = (start as u64 - 1) as usize;
    let mut format = Format {
        fmt: &fmt,
        pos: 0,
        name: "unpack",
    };
    let mut header = Header::default();
    let mut results: Vec<Value> = Vec::new();
    let too_short = || arg_error(2, "unpack", "data string too short");
    while let Some(opt) = format.next_opt() {
        let mut size = format.size(opt)?;
        pos = pos.saturating_add(to_align(pos, &header, opt, size));
        if size > data.len() || pos > data.len() - size {
            return Err(too_short());
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                let n = get_integer(&data[pos..pos + size], header.endian, signed);
                results.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let bytes: [u8; 4] = data[pos..pos + 4].try_into().expect("size is 4");
                let f = match header.endian {
                    Endian::Big => f32::from_be_bytes(bytes),
                    Endian::Little => f32::from_le_bytes(bytes),
                };
                results.push(Value::Number(f64::from(f)));
            }
            b'd' => {
                let bytes: [u8; 8] = data[pos..pos + 8].try_into().expect("size is 8");
                let d = match header.endian {
                    Endian::Big => f64::from_be_bytes(bytes),
                    Endian::Little => f64::from_le_bytes(bytes),
                };
                results.push(Value::Number(d));
            }
            b'c' => {
                if size == 0 {
                    let previous = match results.pop() {
                        Some(Value::Number(n)) => n,
                        Some(Value::Integer(n)) => n as f64,
                        _ => return Err(mlua::Error::runtime("format 'c0' needs a previous size")),
                    };
                    size = if previous > 0.0 { previous as usize } else { 0 };
                    if size > data.len() || pos > data.len() - size {
                        return Err(too_short());
                    }
                }
                results.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(mlua::Error::runtime("unfinished string in data"));
                };
                results.push(Value::String(lua.create_string(&data[pos..pos + end])?));
                size = end + 1;
            }
            _ => format.control(opt, &mut header)?,
        }
        pos += size;
    }
    results.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_iter(results))
}

fn size(_: &Lua, args: Variadic<Value>) -> mlua::Result<f64> {
    let fmt = check_bytes(&args, 0, "size")?;
    let mut format = Format {
        fmt: &fmt,
        pos: 0,
        name: "size",
    };
    let mut header = Header::default();
    let mut pos: usize = 0;
    while let Some(opt) = format.next_opt() {
        let size = format.size(opt)?;
        pos = pos.saturating_add(to_align(pos, &header, opt, size));
        if opt == b's' {
            return Err(arg_error(1, "size", "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_error(1, "size", "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            format.control(opt, &mut header)?;
        }
        pos = pos.saturating_add(size);
    }
    Ok(pos as f64)
}

/// Builds the `struct` table.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.raw_set("pack", lua.create_function(pack)?)?;
    table.raw_set("unpack", lua.create_function(unpack)?)?;
    table.raw_set("size", lua.create_function(size)?)?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripting::test_support::hex;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("struct", install(&lua).unwrap()).unwrap();
        lua
    }

    #[test]
    fn packs_as_lua_struct() {
        let lua = lua();
        assert_eq!(hex(&lua, "return struct.pack('>I2', 258)"), "0102");
        assert_eq!(hex(&lua, "return struct.pack('<i', -2)"), "feffffff");
        assert_eq!(hex(&lua, "return struct.pack('>bh', 1, 2)"), "010002");
        assert_eq!(hex(&lua, "return struct.pack('!>bh', 1, 2)"), "01000002");
        assert_eq!(
            hex(&lua, "return struct.pack('>d', 1.5)"),
            "3ff8000000000000"
        );
        assert_eq!(
            hex(&lua, "return struct.pack('c0s', 'ab', 'c')"),
            "61626300"
        );
        assert_eq!(hex(&lua, "return struct.pack('c3', 'abcdef')"), "616263");
        let err = |code: &str| lua.load(code).exec().unwrap_err().to_string();
        assert!(
            err("struct.pack('c5', 'ab')").contains("bad argument #2 to 'pack' (string too short)")
        );
        assert!(err("struct.pack('z')").contains("invalid format option 'z'"));
        assert!(
            err("struct.pack('i33', 1)").contains("integral size 33 is larger than limit of 32")
        );
        assert!(err("struct.pack('!3')").contains("alignment 3 is not a power of 2"));
    }

    #[test]
    fn unpacks_and_sizes_as_lua_struct() {
        let lua = lua();
        let ok: bool = lua
            .load(
                "local a, b, s, nxt = struct.unpack('>hBs', struct.pack('>hBs', -3, 200, 'hi'))
                 local str, nxt2 = struct.unpack('Bc0', '\\3abcz')
                 return a == -3 and b == 200 and s == 'hi' and nxt == 7
                    and str == 'abc' and nxt2 == 5
                    and struct.size('>iid') == 16 and struct.size('!bd') == 16",
            )
            .eval()
            .unwrap();
        assert!(ok);
        let err = |code: &str| lua.load(code).exec().unwrap_err().to_string();
        assert!(err("struct.unpack('i', 'ab')").contains("data string too short"));
        assert!(err("struct.unpack('c2000000000', 'ab')").contains("data string too short"));
        assert!(err("struct.unpack('s', 'ab')").contains("unfinished string in data"));
        assert!(err("struct.unpack('b', 'a', 0)").contains("offset must be 1 or greater"));
        assert!(err("struct.size('s')").contains("option 's' has no fixed size"));
    }
}
