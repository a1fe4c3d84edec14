//! `mqtt`: `mqtt pub`, `mqtt sub` and `mqtt rr`, MQTT 3.1.1 / 5.0
//! command-line clients on `mqtt-tokio` with the flags, output and exit
//! statuses of Mosquitto's `mosquitto_pub`, `mosquitto_sub` and
//! `mosquitto_rr`, so a script written for those runs with `mqtt pub` and
//! `mqtt sub` in their place. Over TCP, TLS, WebSocket and WebSocket over
//! TLS (`-L mqtt:// mqtts:// ws:// wss://`).

mod args;
mod connect;
mod failure;
mod format;
mod props;
mod publish;
mod rr;
mod subscribe;
mod tls;

use std::process::ExitCode;

use clap::error::ErrorKind;

use crate::args::{Cli, Command};
use crate::failure::Failure;

fn main() -> ExitCode {
    let cli = match Cli::from_command_line(command_line()) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                // Mosquitto's tools exit with 1 on a bad command line.
                _ => ExitCode::FAILURE,
            };
        }
    };
    let (tool, quiet) = match &cli.command {
        Command::Pub(a) => ("pub", a.conn.quiet),
        Command::Sub(a) => ("sub", a.conn.quiet),
        Command::Rr(a) => ("rr", a.conn.quiet),
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("Error: cannot start the runtime: {e}")))
        .and_then(|runtime| {
            runtime.block_on(async move {
                match cli.command {
                    Command::Pub(args) => publish::run(args).await,
                    Command::Sub(args) => subscribe::run(args).await,
                    Command::Rr(args) => rr::run(args).await,
                }
            })
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            report(&failure, tool, quiet);
            ExitCode::from(failure.status)
        }
    }
}

/// The command line, with the tool named when the binary is called by a
/// Mosquitto tool's name (a link `mosquitto_sub` → `mqtt` runs `mqtt sub`).
fn command_line() -> Vec<std::ffi::OsString> {
    let mut line: Vec<_> = std::env::args_os().collect();
    let called = line
        .first()
        .and_then(|p| std::path::Path::new(p).file_name())
        .and_then(|name| name.to_str());
    let tool = match called {
        Some("mosquitto_pub") => "pub",
        Some("mosquitto_sub") => "sub",
        Some("mosquitto_rr") => "rr",
        _ => return line,
    };
    line.insert(1, tool.into());
    line
}

/// Prints a failure as Mosquitto's tools do; `--quiet` silences all but
/// command-line mistakes.
fn report(failure: &Failure, tool: &str, quiet: bool) {
    if failure.message.is_empty() || (quiet && !failure.usage) {
        return;
    }
    if failure.usage {
        eprintln!("{failure}\n\nUse 'mqtt {tool} --help' to see usage.");
    } else {
        eprintln!("{failure}");
    }
}
