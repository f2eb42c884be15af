//! Access control lists: the users, their passwords (SHA-256 as Redis stores them), and what
//! each may run and touch (commands by name and category, key patterns with read/write
//! selectors, channel patterns), plus the log of denials. One model for every protocol: a
//! protocol maps its requests onto command names and keys and asks [`User`].
//!
//! It never does I/O and never writes a reply: callers turn a [`Denial`] into their
//! protocol's error. Users are immutable once built (`Arc<User>`); a change replaces the user
//! and bumps [`Acl::generation`], so a connection revalidates with one atomic load per command
//! instead of a lock.

pub mod file;
pub mod rules;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use rules::RuleError;

/// Redis's command categories (`ACL CAT`), each a bit of [`CommandInfo::categories`].
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of category `name` (lower case), if it is one.
pub fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| *c == name)
        .map(|i| 1u32 << i)
}

/// One command (or `command|subcommand`) the server knows, with its category bits.
#[derive(Debug, Clone)]
pub struct CommandInfo {
    pub name: String,
    pub categories: u32,
}

/// Every command rules can name; index positions are stable for the life of the process.
#[derive(Debug)]
pub struct Catalogue {
    pub commands: Vec<CommandInfo>,
    index: crate::hashing::HashMap<String, usize>,
}

impl Catalogue {
    pub fn new(commands: Vec<CommandInfo>) -> Catalogue {
        let index = commands
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Catalogue { commands, index }
    }

    /// The index of `name` (lower case; `command|subcommand` for a subcommand entry).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The entries of command `name` itself and of its subcommands.
    fn family(&self, name: &str) -> Vec<usize> {
        let prefix = format!("{name}|");
        self.commands
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == name || c.name.starts_with(&prefix))
            .map(|(i, _)| i)
            .collect()
    }
}

/// What a command does to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A key pattern and the accesses it grants (`~p` both, `%R~p` read, `%W~p` write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    pub read: bool,
    pub write: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    Command(String),
    Key(Vec<u8>),
    Channel(Vec<u8>),
}

/// One user: immutable; [`rules::apply`] builds a changed copy.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 digests of the passwords.
    pub passwords: Vec<[u8; 32]>,
    /// Indexed like the catalogue.
    allowed: Vec<bool>,
    /// The command rules as given since the last `+@all`/`-@all` (for ACL LIST).
    command_rules: Vec<String>,
    /// Whether `command_rules` start from `+@all` (else from `-@all`).
    all_commands: bool,
    /// Every command, key and channel allowed (checked with one branch per command).
    unrestricted: bool,
    pub keys: Vec<KeyPattern>,
    pub channels: Vec<Vec<u8>>,
}

/// SHA-256 of a password, as Redis stores it.
pub fn hash_password(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl User {
    /// A new user as Redis makes one: off, no password, no commands, keys or channels.
    pub fn new(name: &str, catalogue: &Catalogue) -> User {
        User {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            allowed: vec![false; catalogue.commands.len()],
            command_rules: Vec::new(),
            all_commands: false,
            unrestricted: false,
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Whether every command, key and channel is allowed.
    pub fn unrestricted(&self) -> bool {
        self.unrestricted
    }

    fn settle(&mut self) {
        self.unrestricted = self.allowed.iter().all(|a| *a)
            && self
                .keys
                .iter()
                .any(|p| p.pattern == b"*" && p.read && p.write)
            && self.channels.iter().any(|c| c.as_slice() == b"*");
    }

    /// Whether `password` opens this user (it must be on).
    pub fn password_ok(&self, password: &[u8]) -> bool {
        self.enabled && (self.nopass || self.passwords.contains(&hash_password(password)))
    }

    /// Whether the catalogue entry `index` may run.
    pub fn may_run(&self, index: usize) -> bool {
        self.allowed.get(index).copied().unwrap_or(false)
    }

    /// Whether `key` may be read or written.
    pub fn may_access_key(&self, key: &[u8], access: Access) -> bool {
        self.keys.iter().any(|p| {
            let grants = match access {
                Access::Read => p.read,
                Access::Write => p.write,
            };
            grants && crate::glob::matches(&p.pattern, key)
        })
    }

    /// Whether `channel` may be published or subscribed to. A pattern subscription is
    /// allowed only through an identical channel pattern (Redis's rule for PSUBSCRIBE).
    pub fn may_access_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.channels.iter().any(|p| {
            p.as_slice() == b"*"
                || if is_pattern {
                    p == channel
                } else {
                    crate::glob::matches(p, channel)
                }
        })
    }

    /// The user as one `ACL LIST` line.
    pub fn describe(&self) -> String {
        let mut words = vec![
            "user".to_string(),
            self.name.clone(),
            if self.enabled { "on" } else { "off" }.to_string(),
        ];
        if self.nopass {
            words.push("nopass".into());
        }
        words.extend(self.passwords.iter().map(|d| format!("#{}", hex(d))));
        words.extend(self.key_rules());
        words.extend(self.channel_rules());
        words.push(self.command_description());
        words.join(" ")
    }

    /// The key patterns in rule form (`~p`, `%R~p`, `%W~p`).
    pub fn key_rules(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|p| {
                let selector = match (p.read, p.write) {
                    (true, true) => "~",
                    (true, false) => "%R~",
                    _ => "%W~",
                };
                format!("{selector}{}", String::from_utf8_lossy(&p.pattern))
            })
            .collect()
    }

    /// The channel patterns in rule form (`&*`, or `resetchannels &p ...`).
    pub fn channel_rules(&self) -> Vec<String> {
        if self.channels.iter().any(|c| c.as_slice() == b"*") {
            return vec!["&*".into()];
        }
        let mut rules = vec!["resetchannels".to_string()];
        rules.extend(
            self.channels
                .iter()
                .map(|c| format!("&{}", String::from_utf8_lossy(c))),
        );
        rules
    }

    /// The command rules (`+@all`, or `-@all` then the rules given since).
    pub fn command_description(&self) -> String {
        let base = if self.all_commands { "+@all" } else { "-@all" };
        std::iter::once(base.to_string())
            .chain(self.command_rules.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A rule of ACL SETUSER that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetUserError {
    pub rule: String,
    pub error: RuleError,
}

/// One `ACL LOG` entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub client_info: String,
}

/// Redis's `acllog-max-len` default.
pub const LOG_MAX_LEN: usize = 128;
/// Equal denials within this many ms are counted in one entry (Redis's ACL_LOG_GROUPING_MAX_TIME_DELTA).
const LOG_GROUPING_MS: u64 = 60_000;

/// The user table and the denial log.
#[derive(Debug)]
pub struct Acl {
    pub catalogue: Arc<Catalogue>,
    users: BTreeMap<String, Arc<User>>,
    log: VecDeque<LogEntry>,
}

impl Acl {
    /// A table with the `default` user: `on nopass ~* &* +@all`, or with `requirepass` as
    /// its password when one is set (Redis's behaviour).
    pub fn new(catalogue: Arc<Catalogue>, requirepass: &str) -> Acl {
        let mut acl = Acl {
            catalogue,
            users: BTreeMap::new(),
            log: VecDeque::new(),
        };
        let password = format!(">{requirepass}");
        let rules: Vec<&str> = if requirepass.is_empty() {
            vec!["on", "nopass", "~*", "&*", "+@all"]
        } else {
            vec!["on", password.as_str(), "~*", "&*", "+@all"]
        };
        acl.set_user("default", &rules)
            .expect("the default user's rules are valid");
        acl
    }

    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.get(name).cloned()
    }

    pub fn users(&self) -> impl Iterator<Item = &Arc<User>> {
        self.users.values()
    }

    /// ACL SETUSER: applies `rules` to the user (created off and empty when new), all or
    /// nothing.
    pub fn set_user(&mut self, name: &str, rules: &[&str]) -> Result<(), SetUserError> {
        let mut user = match self.users.get(name) {
            Some(user) => (**user).clone(),
            None => User::new(name, &self.catalogue),
        };
        for rule in rules {
            rules::apply(&mut user, rule, &self.catalogue).map_err(|error| SetUserError {
                rule: (*rule).to_owned(),
                error,
            })?;
        }
        user.settle();
        self.users.insert(name.to_owned(), Arc::new(user));
        Ok(())
    }

    /// ACL LOAD: the users of `other` replace these (the log stays).
    pub fn replace_users(&mut self, other: Acl) {
        self.users = other.users;
    }

    /// ACL DELUSER of one user; false when there is none by that name.
    pub fn delete_user(&mut self, name: &str) -> bool {
        self.users.remove(name).is_some()
    }

    /// Records a denial, folding it into an equal recent entry (Redis's grouping).
    pub fn log_denial(&mut self, mut entry: LogEntry) {
        if let Some(same) = self.log.iter_mut().find(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.object == entry.object
                && e.username == entry.username
                && entry.created_ms.saturating_sub(e.updated_ms) < LOG_GROUPING_MS
        }) {
            same.count += 1;
            same.updated_ms = entry.created_ms;
            same.client_info = std::mem::take(&mut entry.client_info);
            return;
        }
        self.log.push_front(entry);
        self.log.truncate(LOG_MAX_LEN);
    }

    /// The log, newest first.
    pub fn log(&self) -> impl Iterator<Item = &LogEntry> {
        self.log.iter()
    }

    pub fn reset_log(&mut self) {
        self.log.clear();
    }
}

/// The user table as the server shares it: a lock for changes, a generation for checks.
#[derive(Debug)]
pub struct SharedAcl {
    table: parking_lot::RwLock<Acl>,
    generation: AtomicU64,
}

impl SharedAcl {
    pub fn new(acl: Acl) -> SharedAcl {
        SharedAcl {
            table: parking_lot::RwLock::new(acl),
            generation: AtomicU64::new(1),
        }
    }

    /// Bumped by every change to a user: a connection holding an older generation looks
    /// its user up again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, Acl> {
        self.table.read()
    }

    /// Changes the table under the write lock; the generation moves on afterwards.
    pub fn change<T>(&self, edit: impl FnOnce(&mut Acl) -> T) -> T {
        let out = edit(&mut self.table.write());
        self.generation.fetch_add(1, Ordering::AcqRel);
        out
    }

    /// Appends to the denial log (no generation change: users are untouched).
    pub fn log_denial(&self, entry: LogEntry) {
        self.table.write().log_denial(entry);
    }

    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.table.read().user(name)
    }

    /// Whether a new connection is authenticated from the start: the `default` user is on
    /// and has `nopass` (Redis's rule; with `requirepass` it has a password).
    pub fn default_opens_without_password(&self) -> bool {
        self.user("default")
            .is_some_and(|user| user.enabled && user.nopass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn catalogue() -> Arc<Catalogue> {
        let bit = |names: &[&str]| names.iter().map(|n| category_bit(n).unwrap()).sum();
        Arc::new(Catalogue::new(vec![
            CommandInfo {
                name: "get".into(),
                categories: bit(&["read", "string", "fast"]),
            },
            CommandInfo {
                name: "set".into(),
                categories: bit(&["write", "string", "slow"]),
            },
            CommandInfo {
                name: "config".into(),
                categories: bit(&["admin", "slow", "dangerous"]),
            },
            CommandInfo {
                name: "acl|whoami".into(),
                categories: bit(&["slow"]),
            },
            CommandInfo {
                name: "acl|setuser".into(),
                categories: bit(&["admin", "slow", "dangerous"]),
            },
        ]))
    }

    #[test]
    fn the_default_user_follows_requirepass() {
        let acl = Acl::new(catalogue(), "");
        let default = acl.user("default").unwrap();
        assert_eq!(default.describe(), "user default on nopass ~* &* +@all");
        assert!(default.password_ok(b"anything"));
        let acl = Acl::new(catalogue(), "secret");
        let default = acl.user("default").unwrap();
        assert!(default.password_ok(b"secret") && !default.password_ok(b"other"));
        assert_eq!(
            default.describe(),
            "user default on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~* &* +@all"
        );
    }

    #[test]
    fn log_entries_are_grouped_and_bounded() {
        let mut acl = Acl::new(catalogue(), "");
        let entry = |object: &str, at: u64| LogEntry {
            count: 1,
            reason: "key",
            context: "toplevel",
            object: object.into(),
            username: "app".into(),
            created_ms: at,
            updated_ms: at,
            client_info: String::new(),
        };
        acl.log_denial(entry("k", 0));
        acl.log_denial(entry("k", 1000));
        acl.log_denial(entry("j", 1000));
        acl.log_denial(entry("k", 1000 + LOG_GROUPING_MS + 1));
        let counts: Vec<(String, u64)> = acl.log().map(|e| (e.object.clone(), e.count)).collect();
        assert_eq!(counts, [("k".into(), 1), ("j".into(), 1), ("k".into(), 2)]);
        for i in 0..(LOG_MAX_LEN + 10) {
            acl.log_denial(entry(&i.to_string(), 5000));
        }
        assert_eq!(acl.log().count(), LOG_MAX_LEN);
    }
}
