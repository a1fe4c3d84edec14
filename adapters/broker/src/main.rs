//! `mqtt-broker`: the reference MQTT broker.
//!
//! ```text
//! mqtt-broker                  # 127.0.0.1:1883, anonymous clients, built-in limits
//! mqtt-broker -c broker.toml   # listeners and limits from a file
//! mqtt-broker -c mosquitto.conf        # or from a Mosquitto configuration file
//! mqtt-broker --check -c broker.toml   # check a configuration and exit
//! mqtt-broker convert mosquitto.conf   # print a Mosquitto file as TOML
//! mqtt-broker -p 1884 -v       # another port, debug logging
//! mqtt-broker passwd -c passwd alice   # a password file, like mosquitto_passwd
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mqtt_broker::logger::LogLevel;
use mqtt_broker::mosquitto::{is_mosquitto_format, Conversion, Remark};
use mqtt_broker::passwd::PasswordFile;
use mqtt_broker::scram::{Mechanism, ScramCredentials};
use mqtt_broker::{Config, FileAuthenticator, Listener, Reloader, Server, ServerError};
use tracing::{error, info, warn};

/// The reference MQTT 3.1 / 3.1.1 / 5.0 broker.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file: TOML, or Mosquitto's format (a `.conf` file, or
    /// `key value` lines). Without one the broker listens on 127.0.0.1:1883
    /// only, lets anonymous clients in, and uses the built-in limits.
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
    /// Serve metrics (`/metrics`) and health checks (`/healthz`, `/readyz`)
    /// over HTTP on ADDR, e.g. 127.0.0.1:9090 (overrides `[http] bind`).
    #[arg(long = "http", value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Log format: `text` (default) or `json` (overrides `[log] format`).
    #[arg(long = "log-format", value_name = "FORMAT")]
    log_format: Option<mqtt_broker::config::LogFormat>,
    /// Check the configuration (and the password, ACL and TLS files it
    /// names), print what is wrong or left out, and exit: 0 when the broker
    /// would start with it.
    #[arg(long = "check")]
    check: bool,
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
  mqtt-broker passwd -D /etc/mqtt/passwd bob        delete bob
  mqtt-broker passwd --scram sha256 -c /etc/mqtt/scram alice
                                                    a SCRAM-SHA-256 credential for alice")]
    Passwd(PasswdArgs),
    /// Prints a Mosquitto configuration file as this broker's TOML, each
    /// value with the Mosquitto line it stands for; the lines left out are
    /// listed on standard error with their line numbers.
    Convert {
        /// The Mosquitto configuration file (`include_dir` lines are followed).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
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
    /// Write a SCRAM credentials file instead (lines
    /// user:SCRAM-SHA-256:iterations:salt:storedkey:serverkey) for this
    /// mechanism; with -D, delete the user's line of this mechanism.
    #[arg(long = "scram", value_name = "MECHANISM")]
    scram: Option<ScramArg>,
    /// PBKDF2 iterations of a new SCRAM credential (4096 to 600000).
    #[arg(long = "iterations", value_name = "N", requires = "scram",
          default_value_t = mqtt_broker::scram::DEFAULT_ITERATIONS)]
    iterations: u32,
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

/// The SCRAM mechanism of `passwd --scram`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ScramArg {
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl From<ScramArg> for Mechanism {
    fn from(a: ScramArg) -> Mechanism {
        match a {
            ScramArg::Sha256 => Mechanism::Sha256,
            ScramArg::Sha512 => Mechanism::Sha512,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Some(Command::Passwd(p)) => {
            return match passwd(p) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("Error: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Convert { file }) => return convert(&file),
        None => {}
    }
    if args.check {
        return check(args.config.as_deref());
    }
    let (mut config, remarks) = match &args.config {
        Some(path) => match load_config(path) {
            Ok(loaded) => loaded,
            Err(e) => {
                eprintln!("Error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => (Config::default(), Vec::new()),
    };
    apply_args(&mut config, &args);
    let format = args.log_format.unwrap_or(config.log.format);
    let log_level = match LogLevel::init(format, args.verbose, &config.log.level) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for r in remarks {
        warn!("{r}");
    }
    if args.config.is_none() {
        warn!("no configuration file: listening on 127.0.0.1 only, anonymous clients allowed, built-in limits");
    }
    raise_open_files_limit();
    match config.persistence.data_dir() {
        Some(dir) => {
            info!(data_dir = %dir.display(), "durable: sessions, queued and retained messages survive a restart")
        }
        None => warn!(
            "no data directory: running in memory, nothing survives a restart (use --data-dir DIR)"
        ),
    }
    let seed = args.seed.unwrap_or_else(mqtt_broker::random_seed);
    let authenticator = match FileAuthenticator::load(&config.auth) {
        Ok(a) => std::sync::Arc::new(a),
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
        let hangups = Hangups::listen();
        let addrs: Vec<SocketAddr> = config.listeners().iter().map(|l| l.bind).collect();
        let server = match Server::start_with_authenticator(config, seed, authenticator).await {
            Ok(s) => s,
            Err(e) => {
                match e.kind() {
                    std::io::ErrorKind::InvalidInput => error!("cannot start: {e}"),
                    _ => error!("cannot listen on {addrs:?}: {e}"),
                }
                return ExitCode::FAILURE;
            }
        };
        if let Some(addr) = server.http_addr() {
            info!(%addr, "metrics at http://{addr}/metrics, health at /healthz and /readyz");
        }
        tokio::spawn(reload_on_hangup(
            hangups,
            server.reloader(),
            args,
            log_level,
        ));
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

/// The command line's settings over the configuration's.
fn apply_args(config: &mut Config, args: &Args) {
    if let Some(port) = args.port {
        config.listeners = vec![Listener::tcp(SocketAddr::from(([127, 0, 0, 1], port)))];
    }
    if let Some(addr) = args.http {
        config.http.bind = Some(addr);
    }
    if let Some(dir) = &args.data_dir {
        config.persistence.path = Some(dir.clone());
        config.persistence.enabled = true;
    }
    if args.no_persistence {
        config.persistence.enabled = false;
    }
}

/// SIGHUP: the configuration file is read again and what can change under
/// connected clients is applied (TLS files, log level); a file that cannot
/// be used changes nothing, and the log says why.
async fn reload_on_hangup(mut hangups: Hangups, server: Reloader, args: Args, log_level: LogLevel) {
    while hangups.next().await {
        reload(&server, &args, &log_level);
    }
}

/// SIGHUP, listened for from before the listeners are bound (its default
/// action would end the process).
struct Hangups(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangups {
    fn listen() -> Hangups {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let s = signal(SignalKind::hangup())
                .inspect_err(|e| warn!(error = %e, "cannot listen for SIGHUP: no reload"));
            Hangups(s.ok())
        }
        #[cfg(not(unix))]
        Hangups()
    }

    /// The next SIGHUP; `false` when none can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(s) = &mut self.0 {
            return s.recv().await.is_some();
        }
        false
    }
}

fn reload(server: &Reloader, args: &Args, log_level: &LogLevel) {
    let Some(path) = &args.config else {
        info!("SIGHUP: no configuration file to read again");
        return;
    };
    let mut config = match load_config(path) {
        Ok((c, _)) => c,
        Err(e) => {
            error!("SIGHUP: reload failed, the old settings stay: {e}");
            return;
        }
    };
    apply_args(&mut config, args);
    if let Err(e) = mqtt_broker::logger::check_level(&config.log.level) {
        error!("SIGHUP: reload failed, the old settings stay: {e}");
        return;
    }
    match server.reload(&config) {
        Ok(done) => {
            for what in done.left_for_restart() {
                warn!("SIGHUP: not applied: {what}");
            }
            let level = log_level.reload(&config.log.level).unwrap_or(false);
            info!(
                tls_listeners = done.tls_listeners(),
                authentication = done.authentication(),
                log_level = if level {
                    config.log.level.as_str()
                } else {
                    "(RUST_LOG or -v)"
                },
                "SIGHUP: configuration reloaded"
            );
        }
        Err(e) => error!("SIGHUP: reload failed, the old settings stay: {e}"),
    }
}

/// Reads a configuration file, TOML or Mosquitto's format; with the
/// Mosquitto lines left out, to be shown.
fn load_config(path: &Path) -> Result<(Config, Vec<Remark>), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if is_mosquitto_format(path, &text) {
        let conversion = Conversion::from_text(&text, path)?;
        Ok((conversion.config()?, conversion.remarks().to_vec()))
    } else {
        Ok((Config::load(path)?, Vec::new()))
    }
}

/// `--check`: the configuration and the files it names, without starting.
fn check(path: Option<&Path>) -> ExitCode {
    let config = match path {
        Some(path) => match load_config(path) {
            Ok((c, remarks)) => {
                for r in remarks {
                    println!("left out: {r}");
                }
                c
            }
            Err(e) => {
                println!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    if let Err(e) = mqtt_broker::check_files(&config) {
        println!("error: {e}");
        return ExitCode::FAILURE;
    }
    println!("configuration ok");
    ExitCode::SUCCESS
}

/// The `convert` subcommand.
fn convert(path: &Path) -> ExitCode {
    match Conversion::from_file(path) {
        Ok(c) => {
            for r in c.remarks() {
                eprintln!("left out: {r}");
            }
            print!("{}", c.toml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
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
    if let Some(mechanism) = args.scram {
        return passwd_scram(args, mechanism.into());
    }
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

/// `passwd --scram`: the same operations on a SCRAM credentials file.
fn passwd_scram(args: PasswdArgs, mechanism: Mechanism) -> Result<(), Box<dyn std::error::Error>> {
    let mut file = if args.create {
        ScramCredentials::new()
    } else {
        ScramCredentials::load(&args.file)?
    };
    if args.delete {
        if !file.remove(&args.user, mechanism) {
            return Err(format!(
                "user {} has no {} line in {}",
                args.user,
                mechanism.name(),
                args.file.display()
            )
            .into());
        }
    } else {
        let password = match args.password {
            Some(p) => p,
            None => ask_password()?,
        };
        file.set_password(&args.user, mechanism, password.as_bytes(), args.iterations)?;
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
