//! [`RespError`]: the error a RESP command answers with, as a value its handler returns.
//!
//! A handler that refuses a command returns `Err(RespError)` instead of writing the error
//! itself; [`CommandSpec::run`](super::spec::CommandSpec::run), the one place that calls
//! handlers, writes it as the command's whole reply. The words are Redis's: the [`err`]
//! constants stay the vocabulary, converted with `.into()`.
//!
//! This type only carries the error line. It never writes to a connection, never touches
//! the store and never counts anything: the dispatcher writes it, and `INFO errorstats`
//! counts it from the reply bytes like any other error reply.
//!
//! [`err`]: super::err

use std::borrow::Cow;

/// A Redis error line without its leading `-` or trailing CRLF, such as
/// `WRONGTYPE Operation against a key holding the wrong kind of value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespError(Cow<'static, str>);

impl RespError {
    /// The error line as the client reads it after the `-`: its code, a space, its text.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for RespError {
    fn from(message: &'static str) -> RespError {
        RespError(Cow::Borrowed(message))
    }
}

impl From<String> for RespError {
    fn from(message: String) -> RespError {
        RespError(Cow::Owned(message))
    }
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_line_it_was_made_from() {
        assert_eq!(
            RespError::from(super::super::err::SYNTAX).message(),
            "ERR syntax error"
        );
        assert_eq!(
            RespError::from(format!("ERR unknown subcommand '{}'", "x")).message(),
            "ERR unknown subcommand 'x'"
        );
    }
}
