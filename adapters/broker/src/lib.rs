//! The reference MQTT 3.1 / 3.1.1 / 5.0 broker, as a library: the sans-IO
//! broker core of `mqtt-router` run on tokio.
//!
//! The `mqtt-broker` binary is a thin `main` around [`Server`]; tests, the
//! client adapters' test suites and custom deployments start the same server
//! in their own process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mqtt_broker::{Config, Server};
//!
//! let config = Config::from_toml("[[listener]]\nbind = \"127.0.0.1:0\"\n")?;
//! let server = Server::start(config, mqtt_broker::random_seed()).await?;
//! println!("listening on {:?}", server.local_addrs());
//! server.stop().await;
//! # Ok(())
//! # }
//! ```

pub mod acl;
pub mod auth;
pub mod bridge;
pub mod cluster;
pub mod config;
pub mod jwt;
pub mod logger;
mod logging;
mod metrics;
pub mod mosquitto;
pub mod passwd;
mod reload;
pub mod scram;
mod server;
pub mod store;
mod tls;
mod transport;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::transport::Transport;

pub use crate::auth::{AuthError, Authenticator, FileAuthenticator};
pub use crate::config::{
    AuthConfig, Config, ConfigError, HttpConfig, Listener, PersistenceConfig, Protocol,
};
pub use crate::metrics::HttpError;
pub use crate::reload::{ReloadError, Reloaded, Reloader};
pub use crate::tls::TlsError;

/// A broker running on the current tokio runtime: its listeners are bound
/// and its core task is serving.
#[derive(Debug)]
pub struct Server {
    local_addrs: Vec<SocketAddr>,
    /// What [`Server::reload`] changes: each listener's transport, the
    /// authenticator.
    reloader: Reloader,
    http: Option<metrics::HttpServer>,
    shutdown: Arc<Notify>,
    task: JoinHandle<Result<(), store::StoreDied>>,
}

impl Server {
    /// Binds every listener of `config` and starts serving. `seed` keys the
    /// core's hashers and random choices (see [`random_seed`]).
    ///
    /// Fails when a listener cannot be bound or a TLS listener's files
    /// cannot be used (the error, of kind `InvalidInput`, wraps a
    /// [`TlsError`] naming the file); nothing is left running then.
    ///
    /// Who may connect, publish and subscribe comes from the configuration's
    /// `[auth]` section ([`FileAuthenticator`]); a password or ACL file that
    /// cannot be used is an error of kind `InvalidInput` wrapping an
    /// [`AuthError`].
    ///
    /// Each `[[bridge]]` starts with the server (see [`bridge`]); a bridge's
    /// TLS file that cannot be used is an error of kind `InvalidInput`
    /// wrapping a [`bridge::BridgeTlsError`]. An unreachable remote broker
    /// is not an error: the bridge keeps trying.
    pub async fn start(config: Config, seed: u64) -> std::io::Result<Server> {
        let authenticator = FileAuthenticator::load(&config.auth)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Self::start_with_authenticator(config, seed, Arc::new(authenticator)).await
    }

    /// Like [`Server::start`], with `authenticator` deciding who may connect
    /// and what each client may do instead of the configuration's `[auth]`
    /// section (only its `max_concurrent_checks` applies): the hook for a
    /// custom broker's own authentication, asked off the core task.
    pub async fn start_with_authenticator(
        config: Config,
        seed: u64,
        authenticator: Arc<dyn Authenticator>,
    ) -> std::io::Result<Server> {
        let store = store::open(&config.persistence)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Self::start_with_store(config, seed, authenticator, store).await
    }

    /// Like [`Server::start_with_authenticator`], with `store` keeping the durable
    /// state instead of the configuration's `[persistence]` section (a
    /// store of the caller's own, or none: in memory only). The store is
    /// read now; an error reading it, or an inconsistent state, is an
    /// error of kind `InvalidInput` naming it.
    pub async fn start_with_store(
        config: Config,
        seed: u64,
        authenticator: Arc<dyn Authenticator>,
        store: Option<Box<dyn store::Store>>,
    ) -> std::io::Result<Server> {
        let limits = &config.limits;
        let mut transports = Vec::new();
        let mut listeners_kept = Vec::new();
        for l in config.listeners() {
            let transport = Transport::new(&l, limits.max_packet_size)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let shared = Arc::new(std::sync::RwLock::new(Arc::new(transport)));
            transports.push((l.bind, shared.clone()));
            listeners_kept.push((l, shared));
        }
        // Bridges' TLS files are read now, so a bad one stops the start.
        let bridges = config
            .bridges
            .iter()
            .map(|b| {
                let p = bridge::Prepared::new(b)?;
                let (name, user) = p.identity();
                let rights = authenticator.rights(name, user);
                Ok(p.with_rights(rights))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let listeners = server::bind(transports).await?;
        let local_addrs = listeners
            .iter()
            .map(|l| l.socket.local_addr())
            .collect::<std::io::Result<Vec<_>>>()?;
        let admission = server::Admission {
            handshake_timeout: Duration::from_secs(limits.connect_timeout.max(1)),
            handshakes: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            order_across_connections: limits.order_across_connections,
            write_timeout: Duration::from_secs(limits.write_timeout.max(1)),
        };
        let monitor = Arc::new(metrics::Monitor::new(config.http.bind.is_some()));
        let http = match config.http.bind {
            Some(addr) => Some(
                metrics::HttpServer::start(addr, monitor.clone())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::AddrInUse, e))?,
            ),
            None => None,
        };
        let mut broker_config = config.broker_config(seed);
        // A listener taking user names from certificates needs every
        // CONNECT asked about: the authenticator names the certificate's
        // user as the session's owner.
        let certificate_users = config
            .listeners()
            .iter()
            .any(|l| l.username_from_certificate() != crate::tls::UsernameFrom::Nothing);
        broker_config.auth = mqtt_router::broker::AuthConfig {
            required: authenticator.required() || certificate_users,
            methods: authenticator.methods(),
        };
        let broker = mqtt_router::broker::Broker::new(broker_config);
        let max_checks = config.auth.max_concurrent_checks();
        let (control, control_rx) = tokio::sync::mpsc::unbounded_channel();
        let reloader = Reloader::new(
            listeners_kept,
            config.limits.max_packet_size,
            authenticator.clone(),
            control,
        );
        let core = server::Core::new(
            broker,
            store,
            authenticator,
            max_checks,
            monitor,
            control_rx,
        )?;
        let shutdown = Arc::new(Notify::new());
        let task = tokio::spawn(server::run(
            core,
            listeners,
            admission,
            shutdown.clone(),
            server::Links {
                bridges,
                cluster: config.cluster.clone(),
            },
        ));
        Ok(Server {
            local_addrs,
            reloader,
            http,
            shutdown,
            task,
        })
    }

    /// The bound addresses, one per listener, in the configuration's order
    /// (with the real port where the configuration asked for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Where the metrics and health HTTP listener listens, if `[http] bind`
    /// set one (with the real port where it asked for port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(metrics::HttpServer::local_addr)
    }

    /// Asks the broker to stop: 5.0 clients get DISCONNECT 0x8B (server
    /// shutting down), every connection is closed. Returns at once; see
    /// [`Server::wait`].
    pub fn shutdown(&self) {
        self.shutdown.notify_one();
    }

    /// A handle that asks the broker to stop when notified (for a signal
    /// handler running in another task).
    pub fn shutdown_handle(&self) -> Arc<Notify> {
        self.shutdown.clone()
    }

    /// Waits until the broker has stopped.
    ///
    /// # Errors
    /// [`ServerError::StoreDied`] if it stopped by itself because its store
    /// died (the acknowledgements waiting for the store were never sent);
    /// [`ServerError::CorePanicked`] if the core task panicked (logged here,
    /// so that a supervisor sees a failure, never a clean stop).
    pub async fn wait(self) -> Result<(), ServerError> {
        joined(self.task.await)
    }

    /// Asks the broker to stop and waits until it has (see
    /// [`Server::wait`] for how it ended; this ignores it).
    pub async fn stop(self) {
        self.shutdown();
        let _ = self.wait().await;
    }
}

/// Reads every file `config` names, as [`Server::start`] would, without
/// binding or opening anything: the password and ACL files, each TLS
/// listener's certificate, key and CA files, and each bridge's TLS files.
/// The store is not opened (a running broker holds its lock). The first
/// file that cannot be used is the error, naming it.
pub fn check_files(config: &Config) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    logger::check_level(&config.log.level).map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    FileAuthenticator::load(&config.auth).map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    for l in config.listeners() {
        Transport::new(&l, config.limits.max_packet_size)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    }
    for b in &config.bridges {
        bridge::Prepared::new(b)?;
    }
    Ok(())
}

/// How the broker stopped when it did not stop cleanly ([`Server::wait`]).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store failed and the broker could not go on without it.
    #[error(transparent)]
    StoreDied(#[from] store::StoreDied),
    /// The core task panicked: every connection is gone with it.
    #[error("the broker core panicked: {0}")]
    CorePanicked(String),
    /// The core task was cancelled before it ended (the runtime shut down
    /// under it).
    #[error("the broker core was cancelled")]
    CoreCancelled,
}

/// What the core task's end means: a panic or a cancellation is an error
/// (and logged), never a clean stop.
fn joined(
    ended: Result<Result<(), store::StoreDied>, tokio::task::JoinError>,
) -> Result<(), ServerError> {
    let e = match ended {
        Ok(r) => return r.map_err(ServerError::from),
        Err(e) => e,
    };
    let error = match e.try_into_panic() {
        Ok(panic) => ServerError::CorePanicked(panic_message(panic.as_ref())),
        Err(_) => ServerError::CoreCancelled,
    };
    tracing::error!("{error}");
    Err(error)
}

/// The text a panic carried, if it was a string.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

/// A random seed from the operating system for [`Server::start`].
pub fn random_seed() -> u64 {
    server::seed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The core calls no code of the user's (authentication runs off its
    /// task), so a panic there is a bug of ours: it must end the server as
    /// an error the binary turns into a non-zero exit status, never as a
    /// clean stop.
    #[tokio::test]
    async fn a_core_task_that_panicked_is_an_error_naming_the_panic() {
        let core = tokio::spawn(async { panic!("a bug in the core") });
        match joined(core.await) {
            Err(ServerError::CorePanicked(m)) => assert!(m.contains("a bug"), "{m}"),
            other => panic!("a core panic must be an error, got {other:?}"),
        }
        let cancelled = tokio::spawn(std::future::pending::<Result<(), store::StoreDied>>());
        cancelled.abort();
        assert!(matches!(
            joined(cancelled.await),
            Err(ServerError::CoreCancelled)
        ));
        let clean = tokio::spawn(async { Ok(()) });
        assert!(joined(clean.await).is_ok());
    }
}
