//! What a RESP command is (name, arity, flags, key positions, group, handler) and the
//! [`Registry`] that finds commands by name, lists them and knows their ACL categories.
//!
//! The handlers that need other commands (ACL checks, COMMAND, a script's `redis.call`, EXEC)
//! reach them through the registry their [`Call`] carries, never through the static table in
//! [`super::table`]: the table names every handler, so a handler naming the table would close a
//! circle. This module names no handler.

use std::sync::{Arc, OnceLock};

use crate::hashing::HashMap;
use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::Call;
use crate::command::Flow;

/// Command flags, a small bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u16);

impl Flags {
    pub const NONE: Flags = Flags(0);
    pub const WRITE: Flags = Flags(1);
    pub const READONLY: Flags = Flags(1 << 1);
    pub const ADMIN: Flags = Flags(1 << 2);
    pub const EXCLUSIVE: Flags = Flags(1 << 3);
    pub const NOT_QUEUED: Flags = Flags(1 << 4);
    pub const NO_AUTH: Flags = Flags(1 << 5);
    pub const NO_GATE: Flags = Flags(1 << 6);
    pub const FAST: Flags = Flags(1 << 7);

    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A command's code: it writes its reply to the encoder, or returns the error that is its
/// whole reply (written by [`CommandSpec::run`]).
pub type Handler = fn(&mut Call<'_, '_>, &mut Encoder<'_>) -> Result<Flow, RespError>;

pub struct CommandSpec {
    pub name: &'static str,
    pub arity: i32,
    pub flags: Flags,
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    pub group: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
}

impl CommandSpec {
    /// Runs the handler; an `Err` is written as the reply and the connection goes on. Every
    /// caller of a handler (the dispatcher, EXEC, a script's `redis.call`) comes through here,
    /// so an error reaches the client, and `INFO errorstats`, the same way from each.
    pub fn run(&self, call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
        match (self.handler)(call, enc) {
            Ok(flow) => flow,
            Err(error) => {
                enc.error(error.message());
                Flow::Continue
            }
        }
    }

    pub fn arity_ok(&self, args: usize) -> bool {
        let args = args as i32;
        if self.arity >= 0 {
            args == self.arity
        } else {
            args >= -self.arity
        }
    }

    /// Redis's flag words for COMMAND INFO.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for (flag, name) in [
            (Flags::WRITE, "write"),
            (Flags::READONLY, "readonly"),
            (Flags::ADMIN, "admin"),
            (Flags::FAST, "fast"),
            (Flags::NO_AUTH, "no_auth"),
        ] {
            if self.flags.contains(flag) {
                names.push(name);
            }
        }
        names
    }
}

/// Every command the server knows, found by lower-case name.
pub struct Registry {
    /// What COMMAND lists, in table order.
    listed: &'static [CommandSpec],
    /// Listed commands and hidden ones (debug builds' test hooks), by name.
    index: HashMap<&'static [u8], &'static CommandSpec>,
    catalogue: OnceLock<Arc<crate::acl::Catalogue>>,
}

impl Registry {
    /// A registry of `listed` commands, plus `hidden` ones found by name but never listed.
    pub fn new(listed: &'static [CommandSpec], hidden: &[&'static CommandSpec]) -> Registry {
        let index = listed
            .iter()
            .chain(hidden.iter().copied())
            .map(|spec| (spec.name.as_bytes(), spec))
            .collect();
        Registry {
            listed,
            index,
            catalogue: OnceLock::new(),
        }
    }

    /// Finds a command by its lower-case name.
    pub fn lookup(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.index.get(name).copied()
    }

    /// The commands COMMAND lists.
    pub fn listed(&self) -> &'static [CommandSpec] {
        self.listed
    }

    /// Every listed command and ACL subcommand with its categories, for ACL rules.
    pub fn acl_catalogue(&self) -> Arc<crate::acl::Catalogue> {
        self.catalogue
            .get_or_init(|| {
                let bit = |name: &str| crate::acl::category_bit(name).unwrap_or(0);
                let mut commands: Vec<crate::acl::CommandInfo> = self
                    .listed
                    .iter()
                    .filter(|spec| spec.name != "acl")
                    .map(|spec| crate::acl::CommandInfo {
                        name: spec.name.to_string(),
                        categories: categories(spec),
                    })
                    .collect();
                commands.extend(ACL_SUBCOMMANDS.iter().map(|(sub, admin)| {
                    let mut categories = bit("slow");
                    if *admin {
                        categories |= bit("admin") | bit("dangerous");
                    }
                    crate::acl::CommandInfo {
                        name: format!("acl|{sub}"),
                        categories,
                    }
                }));
                Arc::new(crate::acl::Catalogue::new(commands))
            })
            .clone()
    }
}

/// ACL's subcommands, and whether each is `@admin @dangerous` (the others are `@slow` only:
/// any user with `@slow` may ask who it is), as Redis 7.0's `commands/acl-*.json`.
pub const ACL_SUBCOMMANDS: &[(&str, bool)] = &[
    ("cat", false),
    ("deluser", true),
    ("dryrun", true),
    ("genpass", false),
    ("getuser", true),
    ("list", true),
    ("load", true),
    ("log", true),
    ("save", true),
    ("setuser", true),
    ("users", true),
    ("whoami", false),
];

/// The ACL categories of a command, from its flags, group and name (Redis's
/// `commands/*.json` `acl_categories` for the commands here).
fn categories(spec: &CommandSpec) -> u32 {
    let bit = |name: &str| crate::acl::category_bit(name).unwrap_or(0);
    let mut bits = 0;
    if spec.flags.contains(Flags::READONLY) {
        bits |= bit("read");
    }
    if spec.flags.contains(Flags::WRITE) {
        bits |= bit("write");
    }
    if spec.flags.contains(Flags::ADMIN) {
        bits |= bit("admin") | bit("dangerous");
    }
    bits |= if spec.flags.contains(Flags::FAST) {
        bit("fast")
    } else {
        bit("slow")
    };
    bits |= match spec.group {
        "string" => bit("string"),
        "generic" => bit("keyspace"),
        "hash" => bit("hash"),
        "list" => bit("list"),
        "set" => bit("set"),
        "stream" => bit("stream"),
        "sorted_set" => bit("sortedset"),
        "pubsub" => bit("pubsub"),
        "connection" => bit("connection"),
        "transactions" => bit("transaction"),
        "scripting" => bit("scripting"),
        _ => 0,
    };
    if matches!(spec.name, "dbsize" | "flushdb" | "flushall") {
        bits |= bit("keyspace");
    }
    if matches!(spec.name, "keys" | "flushdb" | "flushall" | "info") {
        bits |= bit("dangerous");
    }
    if (spec.name.starts_with('b') && spec.group == "list")
        || matches!(spec.name, "xread" | "xreadgroup")
    {
        bits |= bit("blocking");
    }
    bits
}

/// The keys a command names, for ACL checks: the spec's key positions, plus the `numkeys`
/// forms (ZUNION, LMPOP, SINTERCARD, EVAL, FCALL, ... and the sources of ZUNIONSTORE and
/// friends).
pub fn command_keys<'a>(
    spec: &CommandSpec,
    args: &'a [std::borrow::Cow<'_, [u8]>],
) -> Vec<&'a [u8]> {
    let mut keys: Vec<&[u8]> = Vec::new();
    if spec.first_key > 0 {
        let len = args.len() as i64;
        let last = if spec.last_key < 0 {
            len + spec.last_key
        } else {
            spec.last_key.min(len - 1)
        };
        let mut i = spec.first_key;
        while i <= last && i < len {
            keys.push(&args[i as usize]);
            i += spec.step.max(1);
        }
    }
    let numkeys_at = match spec.name {
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => Some(1),
        "zunionstore" | "zinterstore" | "zdiffstore" | "blmpop" | "bzmpop" => Some(2),
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => Some(2),
        _ => None,
    };
    if spec.name == "sort" {
        // SORT's destination: the last STORE's argument, skipping the options' own
        // arguments as Redis's sortGetKeys does.
        let mut store = None;
        let mut i = 2;
        while i < args.len() {
            let skip = match args[i].to_ascii_lowercase().as_slice() {
                b"limit" => 2,
                b"get" | b"by" => 1,
                b"store" => {
                    store = args.get(i + 1).map(|a| &a[..]);
                    1
                }
                _ => 0,
            };
            i += skip + 1;
        }
        keys.extend(store);
    }
    if matches!(spec.name, "xread" | "xreadgroup") {
        // The keys are the first half of what follows STREAMS.
        if let Some(at) = args.iter().position(|a| a.eq_ignore_ascii_case(b"STREAMS")) {
            let rest = &args[at + 1..];
            keys.extend(rest.iter().take(rest.len() / 2).map(|a| &a[..]));
        }
    }
    if let Some(at) = numkeys_at {
        let count = args
            .get(at)
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        keys.extend(args.iter().skip(at + 1).take(count).map(|a| &a[..]));
    }
    keys
}

/// Commands that may name no key (Redis's `NO_MANDATORY_KEYS`): COMMAND GETKEYS answers them
/// with an empty array, not an error.
pub fn keys_optional(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}
