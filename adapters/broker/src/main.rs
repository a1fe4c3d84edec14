//! `mqtt-broker`: the reference MQTT broker.
//!
//! ```text
//! mqtt-broker                  # 127.0.0.1:1883, anonymous clients, built-in limits
//! mqtt-broker -c broker.toml   # listeners and limits from a file
//! mqtt-broker -p 1884 -v       # another port, debug logging
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mqtt_broker::{Config, Listener, Server};
use tracing::{error, info, warn};

/// The reference MQTT 3.1 / 3.1.1 / 5.0 broker.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
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
    /// Seed for the core's hash keys and random choices, to replay a run (default: random).
    #[arg(long = "seed", value_name = "N")]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = if args.verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).init();

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
    let seed = args.seed.unwrap_or_else(mqtt_broker::random_seed);

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
        let server = match Server::start(config, seed).await {
            Ok(s) => s,
            Err(e) => {
                error!("cannot listen on {addrs:?}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let signal = server.shutdown_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("signal received");
            signal.notify_one();
        });
        server.wait().await;
        info!("stopped");
        ExitCode::SUCCESS
    })
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
