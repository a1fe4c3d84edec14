//! `mqtt-broker`: the reference MQTT broker.
//!
//! ```text
//! mqtt-broker                  # 127.0.0.1:1883, anonymous clients, built-in limits
//! mqtt-broker -c broker.toml   # listeners and limits from a file
//! mqtt-broker -p 1884 -v       # another port, debug logging
//! mqtt-broker passwd -c passwd alice   # a password file, like mosquitto_passwd
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mqtt_broker::passwd::PasswordFile;
use mqtt_broker::{Config, FilePolicy, Listener, Server, ServerError};
use tracing::{error, info, warn};

/// The reference MQTT 3.1 / 3.1.1 / 5.0 broker.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (TOML). Without one the broker listens on
    /// 127.0.0.1:1883 only, lets anonymous clients in, and uses the built-in limits.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on this port (on 127.0.0.1), instead of the listeners of the configuration.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: Option<u16>,
    /// Log every connection and packet-level decision (debug level); `RUST_LOG` overrides.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Keep sessions, queued messages and retained messages in DIR, so they
    /// survive a restart and a crash (overrides `[persistence] path`).
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory, even if the configuration names a data directory.
    #[arg(long = "no-persistence", conflicts_with = "data_dir")]
    no_persistence: bool,
    /// Seed for the core's hash keys and random choices, to replay a run (default: random).
    #[arg(long = "seed", value_name = "N")]
    seed: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Adds, changes or deletes a user of a password file, like mosquitto_passwd
    /// (the file is in Mosquitto's format; see `[auth] password_file`).
    #[command(after_help = "\
Without -b the password is asked for twice, on the terminal without echo, or
read as two lines from standard input. New hashes are Mosquitto's $7$ format
(PBKDF2-HMAC-SHA512, 101 iterations, 12-byte random salt), so Mosquitto reads
the file too; a new file is readable by its owner only.

Examples:
  mqtt-broker passwd -c /etc/mqtt/passwd alice      create the file, ask for alice's password
  mqtt-broker passwd -b /etc/mqtt/passwd bob s3cret add bob or change his password
  mqtt-broker passwd -D /etc/mqtt/passwd bob        delete bob")]
    Passwd(PasswdArgs),
}

#[derive(Debug, clap::Args)]
struct PasswdArgs {
    /// Create a new password file, overwriting one that exists.
    #[arg(short = 'c', conflicts_with = "delete")]
    create: bool,
    /// Batch mode: the password is the last argument instead of being asked for.
    #[arg(short = 'b', requires = "password", conflicts_with = "delete")]
    batch: bool,
    /// Delete USER instead of setting a password.
    #[arg(short = 'D')]
    delete: bool,
    /// The password file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The user name.
    #[arg(value_name = "USER")]
    user: String,
    /// The password (with -b only).
    #[arg(value_name = "PASSWORD", requires = "batch")]
    password: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Passwd(p)) = args.command {
        return match passwd(p) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let level = if args.verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    raise_open_files_limit();

    let mut config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                error!("{e}");
                return ExitCode::FAILURE;
            }
        },
        None => {
            warn!("no configuration file: listening on 127.0.0.1 only, anonymous clients allowed, built-in limits");
            Config::default()
        }
    };
    if let Some(port) = args.port {
        config.listeners = vec![Listener::tcp(SocketAddr::from(([127, 0, 0, 1], port)))];
    }
    if let Some(dir) = args.data_dir {
        config.persistence.path = Some(dir);
        config.persistence.enabled = true;
    }
    if args.no_persistence {
        config.persistence.enabled = false;
    }
    match config.persistence.data_dir() {
        Some(dir) => {
            info!(data_dir = %dir.display(), "durable: sessions, queued and retained messages survive a restart")
        }
        None => warn!(
            "no data directory: running in memory, nothing survives a restart (use --data-dir DIR)"
        ),
    }
    let seed = args.seed.unwrap_or_else(mqtt_broker::random_seed);
    let policy = match FilePolicy::load(&config.auth) {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addrs: Vec<SocketAddr> = config.listeners().iter().map(|l| l.bind).collect();
        let server = match Server::start_with_policy(config, seed, policy).await {
            Ok(s) => s,
            Err(e) => {
                match e.kind() {
                    std::io::ErrorKind::InvalidInput => error!("cannot start: {e}"),
                    _ => error!("cannot listen on {addrs:?}: {e}"),
                }
                return ExitCode::FAILURE;
            }
        };
        let signal = server.shutdown_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("signal received: closing every connection, flushing the store");
            signal.notify_one();
            // A second signal during the drain: out at once. What the store
            // committed is safe; nothing uncommitted was acknowledged.
            wait_for_signal().await;
            warn!("second signal: exiting at once");
            std::process::exit(130);
        });
        let ended = server.wait().await;
        ExitCode::from(exit_status(&ended))
    })
}

/// The process's exit status for how the broker stopped: 0 for a clean
/// stop only, so a supervisor set to restart on failure restarts a broker
/// whose store died or whose core panicked.
fn exit_status(ended: &Result<(), ServerError>) -> u8 {
    match ended {
        Ok(()) => {
            info!("stopped");
            0
        }
        Err(e) => {
            error!("stopped: {e}");
            match e {
                ServerError::StoreDied(_) => 1,
                ServerError::CorePanicked(_) | ServerError::CoreCancelled => 70,
            }
        }
    }
}

/// Every connection is a file descriptor: the soft limit (often 1024) is
/// raised to the hard one, so the connection limit, not the process limit,
/// decides how many clients the broker holds.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => info!(open_files = n, "open file limit"),
        Err(e) => warn!(error = %e, "cannot raise the open file limit"),
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The `passwd` subcommand.
fn passwd(args: PasswdArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut file = if args.create {
        PasswordFile::new()
    } else {
        PasswordFile::load(&args.file)?
    };
    if args.delete {
        if !file.remove(&args.user) {
            return Err(format!("user {} is not in {}", args.user, args.file.display()).into());
        }
    } else {
        let password = match args.password {
            Some(p) => p,
            None => ask_password()?,
        };
        file.set_password(&args.user, password.as_bytes())?;
    }
    file.save(&args.file)?;
    Ok(())
}

/// Asks for a password twice: on the terminal without echo, or as two lines
/// of standard input when it is not a terminal (as mosquitto_passwd does).
fn ask_password() -> Result<String, Box<dyn std::error::Error>> {
    use std::io::{BufRead, IsTerminal};
    let (first, second) = if std::io::stdin().is_terminal() {
        (
            rpassword::prompt_password("Password: ")?,
            rpassword::prompt_password("Reenter password: ")?,
        )
    } else {
        let mut lines = std::io::stdin().lock().lines();
        let mut next = || -> std::io::Result<String> {
            let line = lines.next().transpose()?.unwrap_or_default();
            Ok(line.strip_suffix('\r').unwrap_or(&line).to_string())
        };
        (next()?, next()?)
    };
    if first.is_empty() {
        return Err("empty password (use -b to set an empty one)".into());
    }
    if first != second {
        return Err("the passwords do not match".into());
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clean_stop_exits_with_status_zero() {
        assert_eq!(exit_status(&Ok(())), 0);
        let panicked = Err(ServerError::CorePanicked("boom".into()));
        assert_ne!(exit_status(&panicked), 0);
        assert_ne!(exit_status(&Err(ServerError::CoreCancelled)), 0);
        let died = Err(ServerError::StoreDied(mqtt_broker::store::StoreDied {
            store: "test".into(),
            reason: "gone".into(),
        }));
        assert_ne!(exit_status(&died), 0);
    }
}
