//! memcached 1.6's text-protocol authentication (`-Y authfile`, `doc/protocol.txt`
//! §Authentication): until it authenticates, a text connection may send only a `set` whose
//! data is `user password`; the key, flags and expiry are ignored.
//!
//! [`parse_auth`] reads that request from the front of a buffer the way `proto_text.c`
//! (`try_read_command_asciiauth`) does, with its limits and its replies; it never does I/O and
//! never checks the password (the caller owns the users).

/// The longest `user password` data memcached accepts (`MAX_AUTH_REQ_LEN`).
pub const MAX_AUTH_DATA: u32 = 16_384;
/// A command line shorter than this closes the connection (`MIN_AUTH_REQ_LEN`).
const MIN_AUTH_LINE: usize = 6;
/// Bytes without a newline after which the connection closes.
const MAX_AUTH_LINE: usize = 2048;

/// What the front of an unauthenticated connection's input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    /// A well-formed `set` carrying `user password`.
    Credentials { user: &'a [u8], password: &'a [u8] },
    /// Refused with this reply line; the connection stays open and unauthenticated.
    Refused(&'static [u8]),
    /// Junk that memcached answers by closing the connection.
    Close,
}

/// Parses the request at the front of `input`: `None` until it is complete, else the request
/// and how many bytes it used (all of them for [`AuthRequest::Close`]).
pub fn parse_auth(input: &[u8]) -> Option<(AuthRequest<'_>, usize)> {
    let Some(newline) = input.iter().position(|&b| b == b'\n') else {
        return (input.len() > MAX_AUTH_LINE).then_some((AuthRequest::Close, input.len()));
    };
    if newline < MIN_AUTH_LINE {
        return Some((AuthRequest::Close, input.len()));
    }
    let line_len = newline + 1;
    let line = &input[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let tokens: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .take(6)
        .collect();
    let size = tokens.get(4).and_then(|t| parse_u32(t));
    let size = match (tokens.first(), size) {
        (Some(&b"set"), Some(size)) if tokens.len() >= 5 => size,
        _ => return Some((AuthRequest::Refused(UNAUTHENTICATED), line_len)),
    };
    if size > MAX_AUTH_DATA {
        return Some((AuthRequest::Refused(TOO_LONG), line_len));
    }
    let data_len = size as usize + 2;
    let data = input.get(line_len..line_len + data_len)?;
    let used = line_len + data_len;
    let Some(data) = data.strip_suffix(b"\r\n") else {
        return Some((AuthRequest::Refused(BAD_TERMINATION), used));
    };
    let Some(space) = data.iter().position(|&b| b == b' ') else {
        return Some((AuthRequest::Refused(BAD_FORMAT), used));
    };
    Some((
        AuthRequest::Credentials {
            user: &data[..space],
            password: &data[space + 1..],
        },
        used,
    ))
}

/// A decimal u32, as `mcmc_token_get_u32` reads one (digits only).
fn parse_u32(token: &[u8]) -> Option<u32> {
    if token.is_empty() || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(token).ok()?.parse().ok()
}

/// Any command but the authenticating `set`.
pub const UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
/// The `set` announced more than [`MAX_AUTH_DATA`] bytes.
pub const TOO_LONG: &[u8] = b"CLIENT_ERROR auth token too long\r\n";
/// The data did not end with `\r\n`.
pub const BAD_TERMINATION: &[u8] = b"CLIENT_ERROR bad command line termination\r\n";
/// The data has no space between user and password.
pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad authentication token format\r\n";
/// Wrong user or password.
pub const AUTH_FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_with_user_and_password_is_credentials() {
        let input = b"set anything 0 0 10\r\nuser pa ss\r\nget k\r\n";
        let (request, used) = parse_auth(input).unwrap();
        assert_eq!(
            request,
            AuthRequest::Credentials {
                user: b"user",
                password: b"pa ss"
            }
        );
        assert_eq!(&input[used..], b"get k\r\n");
    }

    #[test]
    fn incomplete_input_waits() {
        assert_eq!(parse_auth(b"set k 0 0 9\r\nuser pa"), None);
        assert_eq!(parse_auth(b"set k 0"), None);
    }

    #[test]
    fn other_commands_are_refused_and_consumed() {
        let (request, used) = parse_auth(b"get some key\r\nrest").unwrap();
        assert_eq!(request, AuthRequest::Refused(UNAUTHENTICATED));
        assert_eq!(used, 14);
        let (request, _) = parse_auth(b"set k 0 0\r\n").unwrap();
        assert_eq!(request, AuthRequest::Refused(UNAUTHENTICATED));
        let (request, _) = parse_auth(b"set k 0 0 x1\r\n").unwrap();
        assert_eq!(request, AuthRequest::Refused(UNAUTHENTICATED));
    }

    #[test]
    fn memcached_limits_and_formats() {
        let (request, used) = parse_auth(b"set k 0 0 16385\r\n").unwrap();
        assert_eq!((request, used), (AuthRequest::Refused(TOO_LONG), 17));
        let (request, _) = parse_auth(b"set k 0 0 4\r\nuserXY").unwrap();
        assert_eq!(request, AuthRequest::Refused(BAD_TERMINATION));
        let (request, _) = parse_auth(b"set k 0 0 4\r\nuser\r\n").unwrap();
        assert_eq!(request, AuthRequest::Refused(BAD_FORMAT));
        assert_eq!(parse_auth(b"get\r\n"), Some((AuthRequest::Close, 5)));
        let junk = vec![b'x'; MAX_AUTH_LINE + 1];
        assert_eq!(parse_auth(&junk), Some((AuthRequest::Close, junk.len())));
        assert_eq!(parse_auth(&junk[..MAX_AUTH_LINE]), None);
    }
}
