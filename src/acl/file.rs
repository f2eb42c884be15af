//! ACL users from text: `user <name> <rule> ...` lines, as in Redis's ACL file (`aclfile`)
//! and its `user` directives in the config, read and written whole.
//!
//! Loading is all or nothing: the first bad line fails the load with its place and reason,
//! and the caller keeps the users it had. Saving writes a temporary file beside the target
//! and renames it over, so a crash never leaves half a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Acl, Catalogue, RuleError};

/// Why users could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AclFileError {
    #[error("cannot read the ACL file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the ACL file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{place}: should start with user keyword")]
    NotAUser { place: String },
    #[error("{place}: Error in applying operation '{rule}': {error}. WARNING: ACL errors detected, no change to the previously active ACL rules was performed")]
    Rule {
        place: String,
        rule: String,
        error: RuleError,
    },
}

/// Applies `user ...` lines to the table (blank lines and `#` comments skipped). `origin`
/// names the source in errors (a path, or the config key).
pub fn apply_lines<'a>(
    acl: &mut Acl,
    origin: &str,
    lines: impl Iterator<Item = &'a str>,
) -> Result<(), AclFileError> {
    for (number, line) in lines.enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let place = format!("{origin}:{}", number + 1);
        let mut words = line.split_whitespace();
        if words.next() != Some("user") {
            return Err(AclFileError::NotAUser { place });
        }
        let Some(name) = words.next() else {
            return Err(AclFileError::NotAUser { place });
        };
        // Each line defines its user whole (Redis resets the default user it redefines).
        let rules: Vec<&str> = std::iter::once("reset").chain(words).collect();
        acl.set_user(name, &rules).map_err(|e| AclFileError::Rule {
            place,
            rule: e.rule,
            error: e.error,
        })?;
    }
    Ok(())
}

/// The users at start-up: the default user (from `requirepass`), then the config's `user`
/// lines, then the ACL file when one is named.
pub fn startup(
    catalogue: Arc<Catalogue>,
    requirepass: &str,
    users: &[String],
    file: &Path,
) -> Result<Acl, AclFileError> {
    let mut acl = Acl::new(catalogue.clone(), requirepass);
    apply_lines(&mut acl, "acl.users", users.iter().map(String::as_str))?;
    if !file.as_os_str().is_empty() {
        acl.replace_users(load(file, catalogue, requirepass)?);
    }
    Ok(acl)
}

/// Reads an ACL file into a fresh table (ACL LOAD).
pub fn load(
    path: &Path,
    catalogue: Arc<Catalogue>,
    requirepass: &str,
) -> Result<Acl, AclFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| AclFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut acl = Acl::new(catalogue, requirepass);
    apply_lines(&mut acl, &path.display().to_string(), text.lines())?;
    Ok(acl)
}

/// Writes the users, one `user ...` line each (ACL SAVE).
pub fn save(path: &Path, lines: &[String]) -> Result<(), AclFileError> {
    let write_error = |source| AclFileError::Write {
        path: path.to_owned(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&temporary, text).map_err(write_error)?;
    std::fs::rename(&temporary, path).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::super::tests::catalogue;
    use super::*;

    #[test]
    fn a_file_round_trips_and_a_bad_line_names_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.acl");
        std::fs::write(
            &path,
            "# users\nuser app1 on >pw ~app1:* +@read\n\nuser default on nopass ~* &* +@all\n",
        )
        .unwrap();
        let acl = load(&path, catalogue(), "").unwrap();
        assert!(acl.user("app1").unwrap().password_ok(b"pw"));
        let lines: Vec<String> = acl.users().map(|u| u.describe()).collect();
        save(&path, &lines).unwrap();
        let again = load(&path, catalogue(), "").unwrap();
        let relisted: Vec<String> = again.users().map(|u| u.describe()).collect();
        assert_eq!(lines, relisted);

        std::fs::write(&path, "user app1 on\nuser app2 bogus\n").unwrap();
        let err = load(&path, catalogue(), "").unwrap_err().to_string();
        assert!(
            err.contains("users.acl:2: Error in applying operation 'bogus': Syntax error"),
            "{err}"
        );
        std::fs::write(&path, "app1 on\n").unwrap();
        assert!(load(&path, catalogue(), "").is_err());
    }
}
