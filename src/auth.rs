//! Who may use the server: the user table and the SASL PLAIN exchange.
//!
//! [`Users`] is loaded once at start from a password file in the format memcached's built-in
//! SASL password database reads (`sasl_defs.c`, `MEMCACHED_SASL_PWDB`): one `user:password`
//! per line, anything after a further `:` ignored, `\r\n` or `\n` line ends. The table is meant
//! to grow: the ACL issue adds permissions to [`User`] and more sources of users, and keeps
//! this lookup. [`SaslConn`] is one connection's SASL state, driven by the binary protocol's
//! SASL commands; it follows what memcached 1.6 with Cyrus SASL answers (checked against
//! 1.6.18 with `mech_list: plain`).
//!
//! Nothing here does I/O after start or knows a wire format; passwords are compared in time
//! independent of where they first differ.

use crate::hashing::HashMap;
use std::path::{Path, PathBuf};

/// The only SASL mechanism offered (memcached with `mech_list: plain` lists exactly this).
pub const MECHANISMS: &[u8] = b"PLAIN";

/// One user. The ACL issue adds what the user may do; today a user may do everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    password: Vec<u8>,
}

/// Every known user, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    by_name: HashMap<Vec<u8>, User>,
}

/// Why the password file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read the password file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the password file {path} holds no user (expected user:password lines)")]
    Empty { path: PathBuf },
}

impl Users {
    /// Reads a memcached-format password file; a file with no user is an error, because SASL
    /// with nobody allowed in is a misconfiguration.
    pub fn from_password_file(path: &Path) -> Result<Users, UsersError> {
        let text = std::fs::read(path).map_err(|source| UsersError::Read {
            path: path.to_owned(),
            source,
        })?;
        let users = Users::parse(&text);
        if users.is_empty() {
            return Err(UsersError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(users)
    }

    /// Parses memcached's format. Lines without `:` or with an empty user are skipped; when a
    /// user appears twice the first line wins, as memcached stops at the first match.
    pub fn parse(text: &[u8]) -> Users {
        let mut by_name = HashMap::default();
        for line in text.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, rest) = (&line[..colon], &line[colon + 1..]);
            if name.is_empty() {
                continue;
            }
            let password = rest.split(|b| *b == b':').next().unwrap_or_default();
            by_name.entry(name.to_vec()).or_insert_with(|| User {
                password: password.to_vec(),
            });
        }
        Users { by_name }
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The user if `password` is theirs.
    pub fn check(&self, name: &[u8], password: &[u8]) -> Option<&User> {
        let user = self.by_name.get(name)?;
        constant_time_eq(&user.password, password).then_some(user)
    }
}

/// Compares without an early exit on the first differing byte (the length still shows).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to a SASL Auth or Step.
/// Whoever can say whether a name and password go together: the password file's
/// [`Users`], or those and the ACL users together.
pub trait Credentials {
    fn verify(&self, name: &[u8], password: &[u8]) -> bool;
}

impl Credentials for Users {
    fn verify(&self, name: &[u8], password: &[u8]) -> bool {
        self.check(name, password).is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslReply {
    /// Authenticated: the connection may run every command.
    Authenticated,
    /// Send the (empty) challenge and wait for a Step: PLAIN started without its response.
    Continue,
    /// Refused: unknown mechanism, malformed message, wrong user or password, or a Step
    /// with nothing to continue.
    Failure,
}

/// One connection's SASL state. Every SASL command first drops any earlier authentication,
/// as memcached re-initialises its SASL connection on List Mechs, Auth and Step alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslConn {
    authenticated: bool,
    /// An Auth for PLAIN came without data: the next Step carries the response.
    awaiting_response: bool,
    /// The name the connection authenticated as.
    user: Vec<u8>,
}

impl SaslConn {
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The user the connection authenticated as (empty before).
    pub fn user(&self) -> &[u8] {
        if self.authenticated {
            &self.user
        } else {
            &[]
        }
    }

    /// SASL List Mechs.
    pub fn list_mechanisms(&mut self) -> &'static [u8] {
        self.authenticated = false;
        MECHANISMS
    }

    /// SASL Auth with `mechanism` and the client's initial response `data`.
    pub fn start(&mut self, users: &dyn Credentials, mechanism: &[u8], data: &[u8]) -> SaslReply {
        self.authenticated = false;
        self.awaiting_response = false;
        if mechanism != MECHANISMS {
            return SaslReply::Failure;
        }
        if data.is_empty() {
            self.awaiting_response = true;
            return SaslReply::Continue;
        }
        self.finish(users, data)
    }

    /// SASL Step with the client's `data` (the mechanism name is not looked at, as in Cyrus).
    pub fn step(&mut self, users: &dyn Credentials, data: &[u8]) -> SaslReply {
        self.authenticated = false;
        if !std::mem::take(&mut self.awaiting_response) {
            return SaslReply::Failure;
        }
        self.finish(users, data)
    }

    fn finish(&mut self, users: &dyn Credentials, data: &[u8]) -> SaslReply {
        match plain_credentials(data) {
            Some((name, password)) if users.verify(name, password) => {
                self.authenticated = true;
                self.user = name.to_vec();
                SaslReply::Authenticated
            }
            _ => SaslReply::Failure,
        }
    }
}

/// Splits a PLAIN message (RFC 4616: `authzid NUL authcid NUL passwd`) into user and
/// password. The authorization identity must be empty or the user itself (nobody may act
/// as someone else); the user must not be empty.
fn plain_credentials(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = data.splitn(3, |b| *b == 0);
    let authzid = parts.next()?;
    let authcid = parts.next()?;
    let password = parts.next()?;
    if authcid.is_empty() || (!authzid.is_empty() && authzid != authcid) {
        return None;
    }
    Some((authcid, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Users {
        Users::parse(b"alice:secret\r\nbob:pw:extra tokens\nnocolon\n:nouser\nalice:second\n")
    }

    #[test]
    fn password_file_follows_memcached_s_format() {
        let users = users();
        assert_eq!(users.len(), 2);
        assert!(users.check(b"alice", b"secret").is_some());
        assert!(
            users.check(b"alice", b"second").is_none(),
            "first line wins"
        );
        assert!(
            users.check(b"bob", b"pw").is_some(),
            "text after a second ':' ignored"
        );
        assert!(users.check(b"bob", b"pw:extra tokens").is_none());
        assert!(users.check(b"alice", b"secre").is_none(), "no prefix match");
        assert!(users.check(b"carol", b"").is_none());
    }

    #[test]
    fn plain_succeeds_with_the_right_password_only() {
        let users = users();
        let mut conn = SaslConn::default();
        assert_eq!(
            conn.start(&users, b"PLAIN", b"\0alice\0wrong"),
            SaslReply::Failure
        );
        assert!(!conn.is_authenticated());
        assert_eq!(
            conn.start(&users, b"PLAIN", b"\0alice\0secret"),
            SaslReply::Authenticated
        );
        assert!(conn.is_authenticated());
        assert_eq!(
            conn.start(&users, b"PLAIN", b"alice\0alice\0secret"),
            SaslReply::Authenticated
        );
        for bad in [
            &b"bob\0alice\0secret"[..],
            b"\0alice",
            b"\0\0",
            b"alice\0secret",
        ] {
            assert_eq!(conn.start(&users, b"PLAIN", bad), SaslReply::Failure);
            assert!(
                !conn.is_authenticated(),
                "a failed auth drops the earlier one"
            );
        }
        assert_eq!(
            conn.start(&users, b"CRAM-MD5", b"\0alice\0secret"),
            SaslReply::Failure
        );
    }

    #[test]
    fn an_empty_auth_continues_with_one_step() {
        let users = users();
        let mut conn = SaslConn::default();
        assert_eq!(conn.step(&users, b"\0alice\0secret"), SaslReply::Failure);
        assert_eq!(conn.start(&users, b"PLAIN", b""), SaslReply::Continue);
        assert_eq!(
            conn.step(&users, b"\0alice\0secret"),
            SaslReply::Authenticated
        );
        assert_eq!(conn.step(&users, b"\0alice\0secret"), SaslReply::Failure);
        assert!(!conn.is_authenticated());
    }

    #[test]
    fn listing_mechanisms_drops_authentication() {
        let users = users();
        let mut conn = SaslConn::default();
        conn.start(&users, b"PLAIN", b"\0alice\0secret");
        assert_eq!(conn.list_mechanisms(), b"PLAIN");
        assert!(!conn.is_authenticated());
    }
}
