//! What the Debian package ships, checked against its sources: the man pages under
//! `packaging/man/` are generated, ferrocache(1) from the same clap definition as `--help`
//! (clap_mangen) and ferrocache.toml(5) from `etc/ferrocache.toml` (the one table of keys,
//! defaults and docs), so neither can drift; every key of [`Config`] is documented there and
//! marked Live exactly when a reload applies it; the systemd unit passes `systemd-analyze
//! verify` and scores at most 1.0 on `systemd-analyze security --offline=true`.
//!
//! After changing a flag or `etc/ferrocache.toml`, regenerate the pages with
//! `FERROCACHE_BLESS=1 cargo test --test packaging` and commit them.
//!
//! The systemd checks need `systemd-analyze`: without it they print SKIPPED and pass, and
//! `.ci/run` installs it and runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use ferrocache::cli::Flags;
use ferrocache::reload::{setting_names, LIVE_SETTINGS};
use roff::{bold, italic, roman, Roff};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One key of `etc/ferrocache.toml`: where it is, its default, and the comment above it.
#[derive(Debug)]
struct DocumentedKey {
    section: String,
    key: String,
    default: String,
    doc: String,
}

/// `etc/ferrocache.toml` read as the table of keys: the opening comment, every key with the
/// comment block above it (a block shared by consecutive keys documents each), and the
/// closing comment (the commented-out `[[pool]]` example).
struct ConfigDoc {
    preamble: Vec<String>,
    keys: Vec<DocumentedKey>,
    closing: Vec<String>,
}

fn parse_config_doc(text: &str) -> ConfigDoc {
    let mut preamble = Vec::new();
    let mut keys = Vec::new();
    let mut section = None::<String>;
    let mut comment: Vec<String> = Vec::new();
    let mut comment_is_fresh = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(text) = line.strip_prefix('#') {
            if !comment_is_fresh {
                comment.clear();
                comment_is_fresh = true;
            }
            comment.push(text.trim().to_owned());
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if section.is_none() {
                preamble = std::mem::take(&mut comment);
            }
            section = Some(name.to_owned());
            comment.clear();
            comment_is_fresh = false;
        } else if let Some((key, default)) = line.split_once(" = ") {
            keys.push(DocumentedKey {
                section: section.clone().expect("a key before any [section]"),
                key: key.trim().to_owned(),
                default: default.trim().to_owned(),
                doc: comment.join(" "),
            });
            comment_is_fresh = false;
        } else {
            assert!(
                line.is_empty(),
                "unexpected line in etc/ferrocache.toml: {line:?}"
            );
        }
    }
    let closing = if comment_is_fresh {
        comment
    } else {
        Vec::new()
    };
    ConfigDoc {
        preamble,
        keys,
        closing,
    }
}

fn shipped_config_doc() -> ConfigDoc {
    parse_config_doc(&std::fs::read_to_string(repo("etc/ferrocache.toml")).unwrap())
}

/// "Live" or "Restart-only", from the words of a key's comment; None when it says neither
/// or both.
fn marked_live(doc: &str) -> Option<bool> {
    let words: Vec<&str> = doc
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .collect();
    match (words.contains(&"Live"), words.contains(&"Restart-only")) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// ferrocache(1): clap's rendering of the flags, plus what `--help` has no room for.
fn render_ferrocache_1() -> String {
    let mut page = Vec::new();
    clap_mangen::Man::new(Flags::command())
        .render(&mut page)
        .expect("render ferrocache(1)");
    let mut extra = Roff::new();
    extra
        .control("SH", ["SIGNALS"])
        .control("TP", [])
        .text([bold("SIGHUP")])
        .text([roman(
            "Reload the configuration file: settings marked Live in ferrocache.toml(5) take \
             effect at once; a changed Restart-only setting is logged and waits for a restart; \
             a file that does not parse or validate is logged and the running configuration \
             stays.",
        )])
        .control("TP", [])
        .text([bold("SIGTERM"), roman(", "), bold("SIGINT")])
        .text([roman(
            "Stop accepting connections, send the replies already computed, and exit 0.",
        )])
        .control("SH", ["ENVIRONMENT"])
        .control("TP", [])
        .text([bold("NOTIFY_SOCKET")])
        .text([roman(
            "Set by systemd for Type=notify services: READY=1 is sent once every listener \
             is bound, RELOADING=1 and READY=1 around a reload, STOPPING=1 at shutdown.",
        )])
        .control("TP", [])
        .text([bold("JOURNAL_STREAM")])
        .text([roman(
            "When it names the file standard error is open on, log lines carry syslog \
             priority prefixes (<3> to <7>) and no timestamp, as journald reads them.",
        )])
        .control("TP", [])
        .text([bold("RUST_LOG")])
        .text([roman(
            "Overrides the log level that -v and log.verbosity give.",
        )])
        .control("TP", [])
        .text([bold("MEMCACHED_SASL_PWDB")])
        .text([roman(
            "The SASL password file when --sasl-pwdb and the config name none.",
        )])
        .control("SH", ["EXIT STATUS"])
        .text([roman(
            "0 after a clean shutdown, a successful --check-config or a written \
             --export-rdb; 1 when the server cannot start, a server thread died, \
             --check-config finds the file invalid or --export-rdb cannot convert the \
             snapshot; 64 for bad flags or an invalid configuration at start-up.",
        )])
        .control("SH", ["FILES"])
        .control("TP", [])
        .text([italic("/etc/ferrocache/ferrocache.toml")])
        .text([roman("The configuration file of the packaged service.")])
        .control("SH", ["SEE ALSO"])
        .text([roman(
            "ferrocache.toml(5), memcached(1), redis-server(1), systemd.exec(5)",
        )]);
    let mut text = String::from_utf8(page).expect("utf-8");
    // The extra sections without the apostrophe preamble that the clap page already has.
    text.push_str(&extra.to_roff());
    text
}

/// ferrocache.toml(5), generated from `etc/ferrocache.toml`.
fn render_ferrocache_toml_5(doc: &ConfigDoc) -> String {
    let mut page = Roff::new();
    page.control(
        "TH",
        [
            "FERROCACHE.TOML",
            "5",
            "",
            &format!("ferrocache {}", env!("CARGO_PKG_VERSION")),
            "File Formats",
        ],
    )
    .control("SH", ["NAME"])
    .text([roman(
        "ferrocache.toml - configuration file of ferrocache(1)",
    )])
    .control("SH", ["SYNOPSIS"])
    .text([italic("/etc/ferrocache/ferrocache.toml")])
    .control("SH", ["DESCRIPTION"])
    .text([roman(doc.preamble.join(" "))])
    .control("PP", [])
    .text([roman(
        "The file is TOML, one table per part of the server. Unknown keys and invalid \
         values are refused with one line naming the key. Each key below is shown with \
         its default.",
    )]);
    let mut section = "";
    for key in &doc.keys {
        if key.section != section {
            section = &key.section;
            page.control("SS", [format!("[{section}]").as_str()]);
        }
        page.control("TP", [])
            .text([bold(key.key.as_str()), roman(format!(" = {}", key.default))])
            .text([roman(key.doc.as_str())]);
    }
    if !doc.closing.is_empty() {
        page.control("SS", ["[[pool]]"]);
        let (example, prose): (Vec<&String>, Vec<&String>) = doc
            .closing
            .iter()
            .partition(|line| line.starts_with("[[") || line.contains(" = "));
        page.text([roman(
            prose
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        )]);
        page.control("PP", []).control("nf", []);
        for line in example {
            page.text([roman(line.as_str())]);
        }
        page.control("fi", []);
    }
    page.control("SH", ["SEE ALSO"])
        .text([roman("ferrocache(1)")]);
    page.render()
}

/// Compares a generated page with its checked-in copy, or writes it under FERROCACHE_BLESS.
fn check_generated(path: &str, generated: &str) {
    let path = repo(path);
    if std::env::var_os("FERROCACHE_BLESS").is_some() {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "{} is stale: regenerate it with FERROCACHE_BLESS=1 cargo test --test packaging",
        path.display()
    );
}

#[test]
fn man_pages_are_generated_from_the_flags_and_the_default_config() {
    check_generated("packaging/man/ferrocache.1", &render_ferrocache_1());
    check_generated(
        "packaging/man/ferrocache.toml.5",
        &render_ferrocache_toml_5(&shipped_config_doc()),
    );
}

#[test]
fn every_setting_is_documented_and_marked_live_exactly_when_reload_applies_it() {
    let doc = shipped_config_doc();
    let mut documented: Vec<String> = doc
        .keys
        .iter()
        .map(|k| format!("{}.{}", k.section, k.key))
        .collect();
    documented.sort();
    // [[pool]] has no default entry: the closing comment documents it.
    assert!(doc.closing.iter().any(|l| l == "[[pool]]"));
    let mut settings = setting_names();
    settings.retain(|name| name != "pool");
    assert_eq!(documented, settings, "etc/ferrocache.toml against Config");
    for key in &doc.keys {
        let name = format!("{}.{}", key.section, key.key);
        let live = marked_live(&key.doc)
            .unwrap_or_else(|| panic!("{name}: say exactly one of Live or Restart-only"));
        let reloadable = LIVE_SETTINGS.iter().any(|(setting, _)| *setting == name);
        assert_eq!(live, reloadable, "{name}: marked Live = {live}");
    }
}

/// The unit with ExecStart and friends pointing at the binary under test, in a fresh
/// directory (systemd-analyze checks that the executables exist).
fn unit_for_analysis() -> (tempfile::TempDir, PathBuf) {
    let unit = std::fs::read_to_string(repo("packaging/systemd/ferrocache.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/ferrocache", env!("CARGO_BIN_EXE_ferrocache")),
    )
    .unwrap();
    (dir, path)
}

fn systemd_analyze() -> Option<Command> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!(
            "SKIPPED: systemd-analyze is not installed (apt-get install systemd); \
             .ci/run installs it and runs this check"
        );
        return None;
    }
    Some(Command::new("systemd-analyze"))
}

#[test]
fn systemd_unit_verifies() {
    let Some(mut analyze) = systemd_analyze() else {
        return;
    };
    let (dir, path) = unit_for_analysis();
    // The man pages are not installed yet here; .ci/run verifies them after dpkg -i.
    let out = analyze
        .args(["verify", "--man=no"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_unit_exposure_is_at_most_one() {
    let Some(mut analyze) = systemd_analyze() else {
        return;
    };
    let (dir, path) = unit_for_analysis();
    let out = analyze
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|line| line.split("ferrocache.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(score <= 1.0, "exposure {score} > 1.0:\n{text}");
}

#[test]
fn the_config_doc_parser_reads_shared_comments_and_the_closing_example() {
    let doc = parse_config_doc(
        "# top\n[a]\n# shared. Live\nx = 1\ny = 2\n# own. Restart-only\nz = 3\n\n# tail\n# [[pool]]\n",
    );
    assert_eq!(doc.preamble, ["top"]);
    let docs: Vec<(&str, &str)> = doc
        .keys
        .iter()
        .map(|k| (k.key.as_str(), k.doc.as_str()))
        .collect();
    assert_eq!(
        docs,
        [
            ("x", "shared. Live"),
            ("y", "shared. Live"),
            ("z", "own. Restart-only")
        ]
    );
    assert_eq!(doc.closing, ["tail", "[[pool]]"]);
    assert_eq!(marked_live("Live: CONFIG SET."), Some(true));
    assert_eq!(marked_live("Delivered. Restart-only."), Some(false));
    assert_eq!(marked_live("neither"), None);
}
