//! RESP2/RESP3 (the Redis protocol): request parsing and reply encoding.
//!
//! [`parse`] reads one command from the front of a buffer, either a multibulk array of bulk
//! strings (what clients send) or an inline line (what telnet and redis-cli send for simple
//! lines), and returns its arguments borrowed from the buffer. [`Encoder`] writes replies in
//! RESP2 or RESP3 (`HELLO 3`). Limits are checked before anything is allocated; errors carry
//! Redis's exact text. No I/O, no store.

mod encode;
mod parse;
mod reply;

pub use encode::{format_double, format_score, Encoder, RespVersion};
pub use parse::{parse, parse_resumable, split_args, Command, Limits, Progress, ProtocolError};
pub use reply::{parse_reply, Reply, ReplyError};
