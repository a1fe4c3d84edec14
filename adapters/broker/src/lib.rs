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
pub mod config;
mod logging;
pub mod passwd;
mod server;
pub mod store;
mod tls;
mod transport;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mqtt_router::broker::Policy;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::transport::Transport;

pub use crate::auth::{AuthError, FilePolicy};
pub use crate::config::{AuthConfig, Config, ConfigError, Listener, PersistenceConfig, Protocol};
pub use crate::tls::TlsError;

/// A broker running on the current tokio runtime: its listeners are bound
/// and its core task is serving.
#[derive(Debug)]
pub struct Server {
    local_addrs: Vec<SocketAddr>,
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
    /// `[auth]` section ([`FilePolicy`]); a password or ACL file that cannot
    /// be used is an error of kind `InvalidInput` wrapping an [`AuthError`].
    ///
    /// Each `[[bridge]]` starts with the server (see [`bridge`]); a bridge's
    /// TLS file that cannot be used is an error of kind `InvalidInput`
    /// wrapping a [`bridge::BridgeTlsError`]. An unreachable remote broker
    /// is not an error: the bridge keeps trying.
    pub async fn start(config: Config, seed: u64) -> std::io::Result<Server> {
        let policy = FilePolicy::load(&config.auth)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Self::start_with_policy(config, seed, policy).await
    }

    /// Like [`Server::start`], with `policy` deciding who may connect, publish
    /// and subscribe instead of the configuration's `[auth]` section: the hook
    /// for a custom broker's own authentication.
    pub async fn start_with_policy<P: Policy + Send + 'static>(
        config: Config,
        seed: u64,
        policy: P,
    ) -> std::io::Result<Server> {
        let store = store::open(&config.persistence)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Self::start_with_store(config, seed, policy, store).await
    }

    /// Like [`Server::start_with_policy`], with `store` keeping the durable
    /// state instead of the configuration's `[persistence]` section (a
    /// store of the caller's own, or none: in memory only). The store is
    /// read now; an error reading it, or an inconsistent state, is an
    /// error of kind `InvalidInput` naming it.
    pub async fn start_with_store<P: Policy + Send + 'static>(
        config: Config,
        seed: u64,
        policy: P,
        store: Option<Box<dyn store::Store>>,
    ) -> std::io::Result<Server> {
        let limits = &config.limits;
        let mut transports = Vec::new();
        for l in config.listeners() {
            let transport = Transport::new(&l, limits.max_packet_size)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            transports.push((l.bind, transport));
        }
        // Bridges' TLS files are read now, so a bad one stops the start.
        let bridges = config
            .bridges
            .iter()
            .map(bridge::Prepared::new)
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
        let broker = mqtt_router::broker::Broker::new(config.broker_config(seed), policy);
        let core = server::Core::new(broker, store)?;
        let shutdown = Arc::new(Notify::new());
        let task = tokio::spawn(server::run(
            core,
            listeners,
            admission,
            shutdown.clone(),
            bridges,
        ));
        Ok(Server {
            local_addrs,
            shutdown,
            task,
        })
    }

    /// The bound addresses, one per listener, in the configuration's order
    /// (with the real port where the configuration asked for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
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
