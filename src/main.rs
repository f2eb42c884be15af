//! The `ferrocache` binary: flags and config in, a running server out, exit 0 on SIGTERM/SIGINT.
//!
//! It exits 1 when the server cannot start, and also when a server thread died (the server
//! then shuts itself down), so that a supervisor such as systemd restarts it.

use clap::Parser;
use ferrocache::cli::Flags;
use ferrocache::server::Server;

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
    let config = match flags.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(64);
        }
    };
    ferrocache::server::init_logging(config.log.verbosity);
    match run(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(config: ferrocache::config::Config) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let server = Server::start(config)?;
    let shared = server.shared.clone();
    let signal_handle = signals.handle();
    let watcher = std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            log::info!("signal {signal}: shutting down");
            shared.begin_shutdown();
        }
    });
    let joined = server.join();
    signal_handle.close();
    let _ = watcher.join();
    joined?;
    Ok(())
}
