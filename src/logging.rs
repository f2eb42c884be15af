//! Where log records go and what they look like: stderr, in env_logger's form for a terminal or
//! a file, or in the form journald reads (`<N>` syslog priority prefixes, no timestamp of our
//! own: the journal stamps every line) when stderr is the stream systemd names in
//! `JOURNAL_STREAM` (sd-daemon(3), systemd.exec(5) "JOURNAL_STREAM").
//!
//! Never opens a socket to the journal and never buffers: one record is one `write` to stderr,
//! so nothing is lost when the process dies right after logging.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

/// How records are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// env_logger's default: `[timestamp LEVEL target] message`.
    Plain,
    /// `<priority>message`, one prefix per line, for journald.
    Journal,
}

impl LogFormat {
    /// `Journal` when `journal_stream` (the value of `JOURNAL_STREAM`, `device:inode`) names
    /// the file stderr is open on; systemd sets the variable for the service's own stderr, and
    /// a child whose stderr was redirected elsewhere must not use the journal form.
    pub fn for_stderr(journal_stream: Option<&str>) -> LogFormat {
        let Some((device, inode)) = journal_stream.and_then(|value| value.split_once(':')) else {
            return LogFormat::Plain;
        };
        let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else {
            return LogFormat::Plain;
        };
        let stderr = std::io::stderr();
        let Ok(owned) = stderr.as_fd().try_clone_to_owned() else {
            return LogFormat::Plain;
        };
        match std::fs::File::from(owned).metadata() {
            Ok(meta) if meta.dev() == device && meta.ino() == inode => LogFormat::Journal,
            _ => LogFormat::Plain,
        }
    }
}

/// The syslog priority journald files a record of `level` under (syslog(3): 3 err,
/// 4 warning, 6 info, 7 debug).
pub fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// `message` with `<priority>` before each of its lines, as journald parses a stream.
pub fn journal_line(priority: u8, message: &str) -> String {
    let mut line = String::with_capacity(message.len() + 4);
    for part in message.split('\n') {
        line.push_str(&format!("<{priority}>{part}\n"));
    }
    line
}

/// The log level for a memcached-style verbosity (0 warn, 1 info, 2 debug, 3+ trace).
pub fn level_for_verbosity(verbosity: usize) -> log::LevelFilter {
    match verbosity {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// Starts logging to stderr in the form `JOURNAL_STREAM` calls for; `RUST_LOG` overrides the
/// verbosity-derived level.
pub fn init(verbosity: u8) {
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let mut builder = env_logger::Builder::new();
    builder.filter_level(log::LevelFilter::Trace);
    if LogFormat::for_stderr(journal_stream.as_deref()) == LogFormat::Journal {
        builder.format(|out, record| {
            let line = journal_line(syslog_priority(record.level()), &record.args().to_string());
            out.write_all(line.as_bytes())
        });
    }
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    let _ = builder.try_init();
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(level_for_verbosity(usize::from(verbosity)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_a_record_carries_the_priority() {
        assert_eq!(journal_line(4, "one"), "<4>one\n");
        assert_eq!(journal_line(3, "one\ntwo"), "<3>one\n<3>two\n");
        assert_eq!(syslog_priority(log::Level::Warn), 4);
        assert_eq!(syslog_priority(log::Level::Trace), 7);
    }

    #[test]
    fn a_stream_that_is_not_stderr_means_plain() {
        assert_eq!(LogFormat::for_stderr(None), LogFormat::Plain);
        assert_eq!(LogFormat::for_stderr(Some("garbage")), LogFormat::Plain);
        // No file has inode 0.
        assert_eq!(LogFormat::for_stderr(Some("0:0")), LogFormat::Plain);
    }
}
