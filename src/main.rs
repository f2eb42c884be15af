//! The `ferrocache` binary: flags and config in, a running server out, exit 0 on SIGTERM/SIGINT.
//!
//! It tells systemd (when `NOTIFY_SOCKET` is set, via `sd-notify`) `READY=1` only once
//! [`Server::start`] has returned, that is once every listener is bound and the snapshot, if
//! any, is loaded (clients meanwhile are told the server is loading); `RELOADING=1` and
//! `READY=1` around a SIGHUP reload ([`ferrocache::reload`]) and `STOPPING=1` on SIGTERM/SIGINT.
//! `--check-config FILE` validates and exits without binding anything; `--export-rdb SNAPSHOT
//! OUT` converts a snapshot into a Redis RDB file and exits.
//!
//! It exits 1 when the server cannot start, and also when a server thread died (the server
//! then shuts itself down), so that a supervisor such as systemd restarts it.

use clap::Parser;
use ferrocache::cli::Flags;
use ferrocache::config::Config;
use ferrocache::reload::Reloader;
use ferrocache::server::Server;
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

fn main() -> std::process::ExitCode {
    let flags = match Flags::try_parse() {
        Ok(flags) => flags,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            eprintln!(
                "{}",
                rendered.lines().next().unwrap_or("error: bad arguments")
            );
            return std::process::ExitCode::from(64);
        }
    };
    if let Some(paths) = flags.export_rdb.as_deref() {
        return export_rdb(&paths[0], &paths[1]);
    }
    if let Some(file) = flags.check_config.clone() {
        return match check_config(flags) {
            Ok(()) => {
                println!("{}: ok", file.display());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", file.display());
                std::process::ExitCode::FAILURE
            }
        };
    }
    let config = match flags.clone().into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(64);
        }
    };
    ferrocache::logging::init(config.log.verbosity);
    match run(flags, config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--export-rdb SNAPSHOT OUT`: one line on stdout when written, one on stderr when not.
fn export_rdb(input: &std::path::Path, output: &std::path::Path) -> std::process::ExitCode {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    match ferrocache::persist::export_rdb(input, output, now_ms) {
        Ok(report) => {
            println!(
                "{}: {} keys ({} with an expiry, {} expired or empty skipped, {} hash field TTLs dropped), {} bytes",
                output.display(),
                report.keys,
                report.with_expiry,
                report.skipped,
                report.field_ttls_dropped,
                report.bytes
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Everything start-up checks before binding: the config, the SASL users, the TLS
/// certificates and the ACL users it names.
fn check_config(flags: Flags) -> anyhow::Result<()> {
    let config = flags.into_config()?;
    if config.sasl.enabled && !config.sasl.password_file.as_os_str().is_empty() {
        ferrocache::auth::Users::from_password_file(&config.sasl.password_file)?;
    }
    ferrocache::tls::TlsState::for_ports(&config.tls, config.needs_tls())?;
    ferrocache::acl::file::startup(
        ferrocache::command::resp::table::acl_catalogue(),
        &config.resp.requirepass,
        &config.acl.users,
        &config.acl.file,
    )?;
    Ok(())
}

fn run(flags: Flags, config: Config) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let mut reloader = Reloader::new(flags.clone(), &config);
    let config_file = flags.config.clone();
    let server = Server::start(config)?;
    // Every listener is bound and the snapshot loaded: Server::start does both before it
    // returns.
    notify(&[
        NotifyState::Ready,
        NotifyState::Status("accepting connections"),
    ]);
    let shared = server.shared.clone();
    let signal_handle = signals.handle();
    let watcher = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    notify(&[NotifyState::Reloading]);
                    match reloader.reload(&shared) {
                        Ok(report) => report.log(),
                        Err(e) => log::error!(
                            "reload of {} failed, keeping the running config: {e}",
                            config_file
                                .as_deref()
                                .map_or("(no --config file)".into(), |p| p.display().to_string())
                        ),
                    }
                    notify(&[NotifyState::Ready]);
                    continue;
                }
                log::info!("signal {signal}: shutting down");
                notify(&[NotifyState::Stopping]);
                shared.begin_shutdown();
                break;
            }
        })?;
    let joined = server.join();
    signal_handle.close();
    let _ = watcher.join();
    joined?;
    Ok(())
}

/// Tells systemd `states` when it supervises us (`NOTIFY_SOCKET`); a failure is only logged,
/// since the server works the same without it.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("cannot notify systemd: {e}");
    }
}
