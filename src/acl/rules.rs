//! Redis's ACL rule language (`ACL SETUSER`, `user` lines of an ACL file): one rule at a
//! time applied to a [`User`], with Redis's error texts (acl.c `ACLSetUser`, checked against
//! redis-server 7.0.15).
//!
//! It never allocates beyond the rule's own length and never panics on a rule: every
//! malformed rule is a [`RuleError`]. Selectors `(...)` and subcommand rules other than the
//! catalogue's `command|subcommand` entries are refused, not ignored.

use super::{category_bit, hash_password, Catalogue, KeyPattern, User};

/// Why a rule was refused; `Display` is the reason part of Redis's
/// `ERR Error in ACL SETUSER modifier '<rule>': <reason>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Syntax error")]
    Syntax,
    #[error("Unknown command or category name in ACL")]
    UnknownCommand,
    #[error(
        "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
    )]
    BadHash,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error(
        "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
    )]
    PatternAfterAll,
    #[error(
        "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
    )]
    ChannelAfterAll,
}

fn parse_hash(hex: &str) -> Result<[u8; 32], RuleError> {
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(RuleError::BadHash);
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| RuleError::BadHash)?;
    }
    Ok(digest)
}

fn add_key_pattern(
    user: &mut User,
    pattern: &[u8],
    read: bool,
    write: bool,
) -> Result<(), RuleError> {
    if user
        .keys
        .iter()
        .any(|p| p.pattern == b"*" && p.read && p.write)
    {
        return Err(RuleError::PatternAfterAll);
    }
    if let Some(same) = user.keys.iter_mut().find(|p| p.pattern == pattern) {
        same.read |= read;
        same.write |= write;
    } else {
        user.keys.push(KeyPattern {
            pattern: pattern.to_vec(),
            read,
            write,
        });
    }
    Ok(())
}

fn add_channel(user: &mut User, pattern: &[u8]) -> Result<(), RuleError> {
    if user.channels.iter().any(|c| c.as_slice() == b"*") {
        return Err(RuleError::ChannelAfterAll);
    }
    if !user.channels.iter().any(|c| c == pattern) {
        user.channels.push(pattern.to_vec());
    }
    Ok(())
}

/// Sets every command of the catalogue allowed or not.
fn set_all(user: &mut User, allowed: bool) {
    user.allowed.iter_mut().for_each(|a| *a = allowed);
    user.all_commands = allowed;
    user.command_rules.clear();
}

/// Applies one rule to `user`.
pub fn apply(user: &mut User, rule: &str, catalogue: &Catalogue) -> Result<(), RuleError> {
    let lower = rule.to_ascii_lowercase();
    match lower.as_str() {
        "on" => user.enabled = true,
        "off" => user.enabled = false,
        "nopass" => {
            user.nopass = true;
            user.passwords.clear();
        }
        "resetpass" => {
            user.nopass = false;
            user.passwords.clear();
        }
        "allkeys" => {
            user.keys.clear();
            add_key_pattern(user, b"*", true, true)?;
        }
        "resetkeys" => user.keys.clear(),
        "allchannels" => {
            user.channels.clear();
            add_channel(user, b"*")?;
        }
        "resetchannels" => user.channels.clear(),
        "allcommands" | "+@all" => set_all(user, true),
        "nocommands" | "-@all" => set_all(user, false),
        "reset" => {
            user.nopass = false;
            user.passwords.clear();
            user.keys.clear();
            user.channels.clear();
            user.enabled = false;
            set_all(user, false);
        }
        "clearselectors" => {}
        _ => return apply_with_argument(user, rule, catalogue),
    }
    Ok(())
}

/// The rules that carry an argument after a prefix: passwords, patterns, commands.
fn apply_with_argument(
    user: &mut User,
    rule: &str,
    catalogue: &Catalogue,
) -> Result<(), RuleError> {
    let bytes = rule.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(RuleError::Syntax);
    };
    // Empty when the first character is not one byte (no prefix is): a Syntax error below.
    let rest = rule.get(1..).unwrap_or("");
    match first {
        b'>' => {
            let digest = hash_password(rest.as_bytes());
            if !user.passwords.contains(&digest) {
                user.passwords.push(digest);
            }
            user.nopass = false;
        }
        b'#' => {
            let digest = parse_hash(rest)?;
            if !user.passwords.contains(&digest) {
                user.passwords.push(digest);
            }
            user.nopass = false;
        }
        b'<' | b'!' => {
            let digest = if first == b'<' {
                hash_password(rest.as_bytes())
            } else {
                parse_hash(rest)?
            };
            let before = user.passwords.len();
            user.passwords.retain(|d| *d != digest);
            if user.passwords.len() == before {
                return Err(RuleError::NoSuchPassword);
            }
        }
        b'~' => add_key_pattern(user, rest.as_bytes(), true, true)?,
        b'%' => {
            let (selector, pattern) = rest.split_once('~').ok_or(RuleError::Syntax)?;
            let selector = selector.to_ascii_uppercase();
            let (read, write) = match selector.as_str() {
                "R" => (true, false),
                "W" => (false, true),
                "RW" | "WR" => (true, true),
                _ => return Err(RuleError::Syntax),
            };
            add_key_pattern(user, pattern.as_bytes(), read, write)?;
        }
        b'&' => add_channel(user, rest.as_bytes())?,
        b'+' | b'-' => {
            let allow = first == b'+';
            let name = rest.to_ascii_lowercase();
            let targets: Vec<usize> = if let Some(category) = name.strip_prefix('@') {
                let bit = category_bit(category).ok_or(RuleError::UnknownCommand)?;
                catalogue
                    .commands
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.categories & bit != 0)
                    .map(|(i, _)| i)
                    .collect()
            } else if name.contains('|') {
                vec![catalogue.find(&name).ok_or(RuleError::UnknownCommand)?]
            } else {
                let family = catalogue.family(&name);
                if family.is_empty() {
                    return Err(RuleError::UnknownCommand);
                }
                family
            };
            for index in targets {
                user.allowed[index] = allow;
            }
            user.command_rules.push(format!("{}{name}", first as char));
        }
        _ => return Err(RuleError::Syntax),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::catalogue;
    use super::super::{Access, Acl};
    use super::*;

    fn user(rules: &[&str]) -> Result<std::sync::Arc<User>, RuleError> {
        let mut acl = Acl::new(catalogue(), "");
        acl.set_user("app1", rules).map_err(|e| e.error)?;
        Ok(acl.user("app1").unwrap())
    }

    fn index(name: &str) -> usize {
        catalogue().find(name).unwrap()
    }

    #[test]
    fn the_issue_example_parses_and_describes_itself() {
        let app = user(&[
            "on",
            ">password",
            "~app1:*",
            "&notify:*",
            "+@read",
            "+@write",
            "-@admin",
        ])
        .unwrap();
        assert!(app.password_ok(b"password") && !app.password_ok(b"other"));
        assert!(app.may_run(index("get")) && app.may_run(index("set")));
        assert!(!app.may_run(index("config")));
        assert!(app.may_access_key(b"app1:x", Access::Write));
        assert!(!app.may_access_key(b"app2:x", Access::Read));
        assert!(app.may_access_channel(b"notify:a", false));
        assert!(!app.may_access_channel(b"other", false));
        assert_eq!(
            app.describe(),
            "user app1 on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 \
             ~app1:* resetchannels &notify:* -@all +@read +@write -@admin"
        );
    }

    #[test]
    fn read_and_write_selectors_grant_one_access_each() {
        let u = user(&["%R~r:*", "%W~w:*", "%RW~rw:*"]).unwrap();
        assert!(u.may_access_key(b"r:1", Access::Read));
        assert!(!u.may_access_key(b"r:1", Access::Write));
        assert!(u.may_access_key(b"w:1", Access::Write));
        assert!(!u.may_access_key(b"w:1", Access::Read));
        assert!(
            u.may_access_key(b"rw:1", Access::Read) && u.may_access_key(b"rw:1", Access::Write)
        );
        assert_eq!(u.key_rules(), ["%R~r:*", "%W~w:*", "~rw:*"]);
    }

    #[test]
    fn a_user_is_off_until_turned_on_and_nopass_opens_it_to_any_password() {
        let u = user(&["nopass"]).unwrap();
        assert!(!u.password_ok(b"x"));
        let u = user(&["on", "nopass"]).unwrap();
        assert!(u.password_ok(b"x"));
        let u = user(&["on", ">a", ">b", "<a"]).unwrap();
        assert!(!u.password_ok(b"a") && u.password_ok(b"b"));
    }

    #[test]
    fn rules_apply_in_order_and_subcommands_are_entries_of_their_own() {
        let u = user(&["+@all", "-set"]).unwrap();
        assert!(u.may_run(index("get")) && !u.may_run(index("set")));
        assert_eq!(u.command_description(), "+@all -set");
        let u = user(&["+acl|whoami"]).unwrap();
        assert!(u.may_run(index("acl|whoami")) && !u.may_run(index("acl|setuser")));
        let u = user(&["+acl"]).unwrap();
        assert!(u.may_run(index("acl|whoami")) && u.may_run(index("acl|setuser")));
        let u = user(&["-@all", "+@slow", "-@dangerous"]).unwrap();
        assert!(u.may_run(index("set")) && u.may_run(index("acl|whoami")));
        assert!(!u.may_run(index("config")));
    }

    #[test]
    fn bad_rules_get_redis_errors() {
        assert_eq!(user(&["bogus"]).unwrap_err(), RuleError::Syntax);
        assert_eq!(user(&["+@nosuch"]).unwrap_err(), RuleError::UnknownCommand);
        assert_eq!(user(&["+nosuch"]).unwrap_err(), RuleError::UnknownCommand);
        assert_eq!(user(&["%X~a"]).unwrap_err(), RuleError::Syntax);
        assert_eq!(user(&["#abc"]).unwrap_err(), RuleError::BadHash);
        assert_eq!(user(&["<never"]).unwrap_err(), RuleError::NoSuchPassword);
        assert_eq!(
            user(&["allkeys", "~a"]).unwrap_err(),
            RuleError::PatternAfterAll
        );
        assert_eq!(user(&["(~a +get)"]).unwrap_err(), RuleError::Syntax);
        assert_eq!(user(&[""]).unwrap_err(), RuleError::Syntax);
        assert_eq!(user(&["é~x"]).unwrap_err(), RuleError::Syntax);
        assert_eq!(user(&["%"]).unwrap_err(), RuleError::Syntax);
        assert_eq!(user(&["+"]).unwrap_err(), RuleError::UnknownCommand);
        assert_eq!(
            RuleError::BadHash.to_string(),
            "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
        );
    }

    #[test]
    fn a_failed_setuser_changes_nothing() {
        let mut acl = Acl::new(catalogue(), "");
        acl.set_user("app1", &["on", ">pw"]).unwrap();
        assert!(acl.set_user("app1", &["off", "bogus"]).is_err());
        assert!(acl.user("app1").unwrap().password_ok(b"pw"));
    }
}
