//! CONFIG REWRITE's file work: puts new values for some `section.key` settings into the text
//! of a TOML config file, keeping every comment, blank line and other key where it was (as
//! Redis's `rewriteConfig` keeps a redis.conf), and writes the file back atomically.
//!
//! Knows TOML, not the server: the caller says which keys take which values (`reload.rs`
//! compares the running settings with the file's). Never writes a key it was not given, and
//! never leaves a half-written file (a temporary file beside it, fsynced, then renamed).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why the file was not rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Sets each `section.key` of `changes` to its value (a TOML value, already serialized), in
/// place when the key is in the file, else at the end of its section (created at the end of
/// the file if missing).
pub fn apply(text: &str, changes: &[(String, toml::Value)]) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.message().trim().replace('\n', " "))?;
    for (name, value) in changes {
        let (section, key) = name.split_once('.').unwrap_or(("", name.as_str()));
        let value = to_edit_value(value)?;
        let table = if section.is_empty() {
            doc.as_table_mut()
        } else {
            if doc.get(section).is_none() {
                let mut added = toml_edit::Table::new();
                // Comments after the last table (all of a file of comments only) are the
                // document's trailing text, which would end up after the new table: they
                // go before it instead, where they stood.
                let trailing = doc.trailing().as_str().unwrap_or_default().to_owned();
                if !trailing.trim().is_empty() {
                    added.decor_mut().set_prefix(trailing);
                    doc.set_trailing("");
                }
                doc.insert(section, toml_edit::Item::Table(added));
            }
            let entry = doc
                .entry(section)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
            entry
                .as_table_mut()
                .ok_or_else(|| format!("{section} is not a table"))?
        };
        match table.get_mut(key).and_then(toml_edit::Item::as_value_mut) {
            // Keep the comment and spacing around the old value.
            Some(old) => {
                let decor = old.decor().clone();
                *old = value;
                *old.decor_mut() = decor;
            }
            None => {
                table.insert(key, toml_edit::Item::Value(value));
            }
        }
    }
    Ok(doc.to_string())
}

/// A `toml` value as a `toml_edit` one (through its TOML text, which both crates agree on).
fn to_edit_value(value: &toml::Value) -> Result<toml_edit::Value, String> {
    let mut table = toml::Table::new();
    table.insert("v".to_owned(), value.clone());
    let text = toml::to_string(&table).map_err(|e| e.to_string())?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.to_string())?;
    doc.get("v")
        .and_then(toml_edit::Item::as_value)
        .cloned()
        .ok_or_else(|| "a value that does not serialize alone".to_owned())
}

/// Rewrites the file at `path` with `changes` ([`apply`]): through a temporary file in the
/// same directory, fsynced, then renamed over it, keeping the file's permissions.
pub fn rewrite(path: &Path, changes: &[(String, toml::Value)]) -> Result<(), RewriteError> {
    let text = std::fs::read_to_string(path).map_err(|source| RewriteError::Read {
        path: path.to_owned(),
        source,
    })?;
    let new = apply(&text, changes).map_err(|message| RewriteError::Parse {
        path: path.to_owned(),
        message,
    })?;
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(format!(".rewrite-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let write_err = |source| RewriteError::Write {
        path: path.to_owned(),
        source,
    };
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(new.as_bytes())?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# The server.\n[server]\n# Idle seconds.\nidle_timeout_secs = 0 # never\nport = 11211\n\n[store]\n# Memory.\nmemory_limit = \"64MiB\"\n";

    #[test]
    fn values_change_in_place_and_comments_and_order_stay() {
        let changes = vec![
            (
                "server.idle_timeout_secs".to_owned(),
                toml::Value::Integer(30),
            ),
            (
                "store.memory_limit".to_owned(),
                toml::Value::String("1GiB".into()),
            ),
        ];
        let new = apply(FILE, &changes).unwrap();
        assert_eq!(
            new,
            "# The server.\n[server]\n# Idle seconds.\nidle_timeout_secs = 30 # never\nport = 11211\n\n[store]\n# Memory.\nmemory_limit = \"1GiB\"\n"
        );
    }

    #[test]
    fn missing_keys_and_sections_are_added() {
        let changes = vec![
            (
                "store.eviction_policy".to_owned(),
                toml::Value::String("noeviction".into()),
            ),
            (
                "replication.replicaof".to_owned(),
                toml::Value::String("10.0.0.1 6379".into()),
            ),
        ];
        let new = apply(FILE, &changes).unwrap();
        assert!(new.starts_with(FILE.trim_end()), "{new}");
        let config: toml::Table = new.parse().unwrap();
        assert_eq!(
            config["store"]["eviction_policy"].as_str(),
            Some("noeviction")
        );
        assert_eq!(
            config["replication"]["replicaof"].as_str(),
            Some("10.0.0.1 6379")
        );
    }

    #[test]
    fn a_file_of_comments_keeps_them_first() {
        let changes = vec![(
            "replication.replicaof".to_owned(),
            toml::Value::String("10.0.0.1 6379".into()),
        )];
        let new = apply("# Managed by Sentinel.\n", &changes).unwrap();
        assert_eq!(
            new,
            "# Managed by Sentinel.\n[replication]\nreplicaof = \"10.0.0.1 6379\"\n"
        );
        let new = apply(&format!("{FILE}# The end.\n"), &changes).unwrap();
        assert!(
            new.ends_with("# The end.\n[replication]\nreplicaof = \"10.0.0.1 6379\"\n"),
            "{new}"
        );
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferrocache.toml");
        std::fs::write(&path, FILE).unwrap();
        let changes = vec![("server.port".to_owned(), toml::Value::Integer(11311))];
        rewrite(&path, &changes).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("port = 11311\n") && text.contains("# Idle seconds."));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&path, "not [ toml").unwrap();
        assert!(matches!(
            rewrite(&path, &changes),
            Err(RewriteError::Parse { .. })
        ));
    }
}
