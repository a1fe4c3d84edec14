//! Reloading without a restart (SIGHUP in the binary): what can change
//! under connected clients, all or nothing.
//!
//! TLS certificates, keys and CA files are read again for every TLS
//! listener; connections made from then on use the new ones, connections
//! already made keep theirs. The `[auth]` files (password, ACL, SCRAM
//! credentials, JWT keys) are read again when the authenticator comes from
//! them ([`crate::auth::Authenticator::reloaded`]): new CONNECTs are checked
//! against them, and every session, connected or not, gets the rights the
//! new ACL gives its owner, taking effect from its next packet. Every file is read before anything is
//! replaced, so a reload that fails (a missing or bad file) changes
//! nothing and says which file. Listeners themselves (addresses,
//! protocols), certificate user names and limits change only at a
//! restart: a reload that asks for such a change applies the rest and
//! lists what it left.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::auth::Authenticator;
use crate::config::{Config, Listener};
use crate::server::{Control, SharedTransport};
use crate::tls::TlsError;
use crate::transport::Transport;
use crate::Server;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The `[auth]` files (password, ACL, ...) could not be used.
    #[error("authentication: {0}")]
    Auth(crate::auth::ReloadAuthError),
    /// The broker has stopped.
    #[error("the broker has stopped")]
    Stopped,
    /// A TLS listener's certificate, key or CA file could not be used.
    #[error("listener {bind}: {source}")]
    Tls {
        /// The listener.
        bind: SocketAddr,
        /// The file and what is wrong with it.
        source: Box<TlsError>,
    },
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    tls_listeners: usize,
    authentication: bool,
    left_for_restart: Vec<String>,
}

impl Reloaded {
    /// TLS listeners whose files were read again.
    pub fn tls_listeners(&self) -> usize {
        self.tls_listeners
    }

    /// Whether the authentication files were read again (every session's
    /// rights are then re-evaluated by the core task).
    pub fn authentication(&self) -> bool {
        self.authentication
    }

    /// Changes the reload did not apply: they take a restart.
    pub fn left_for_restart(&self) -> &[String] {
        &self.left_for_restart
    }
}

/// Reloads a running [`Server`]'s settings from another task (a signal
/// handler); see [`Server::reloader`].
#[derive(Clone)]
pub struct Reloader {
    listeners: Vec<(Listener, SharedTransport)>,
    max_packet_size: u32,
    /// The authenticator in use, replaced by each reload that gives one.
    authenticator: Arc<Mutex<Arc<dyn Authenticator>>>,
    /// Whether the core was told to authenticate at all (fixed at start).
    auth_required: bool,
    control: mpsc::UnboundedSender<Control>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Applies what `config` changes that can change under connected
    /// clients (see the module documentation); nothing if it fails.
    pub fn reload(&self, config: &Config) -> Result<Reloaded, ReloadError> {
        self.reloader().reload(config)
    }

    /// A handle that reloads this server's settings, for another task.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }
}

impl Reloader {
    /// The handle of a server just started.
    pub(crate) fn new(
        listeners: Vec<(Listener, SharedTransport)>,
        max_packet_size: u32,
        authenticator: Arc<dyn Authenticator>,
        control: mpsc::UnboundedSender<Control>,
    ) -> Reloader {
        Reloader {
            listeners,
            max_packet_size,
            auth_required: authenticator.required(),
            authenticator: Arc::new(Mutex::new(authenticator)),
            control,
        }
    }

    /// As [`Server::reload`].
    pub fn reload(&self, config: &Config) -> Result<Reloaded, ReloadError> {
        let mut done = Reloaded::default();
        let new = config.listeners();
        if new
            .iter()
            .map(key)
            .ne(self.listeners.iter().map(|(l, _)| key(l)))
        {
            done.left_for_restart
                .push("listeners (addresses, protocols) change at a restart".into());
        }
        // Read every file first: all or nothing.
        let mut replacements = Vec::new();
        for (old, shared) in &self.listeners {
            let Some(l) = new.iter().find(|l| key(l) == key(old)) else {
                continue;
            };
            if !l.protocol.is_tls() {
                continue;
            }
            // Whether the broker core asks about every CONNECT was decided
            // at start from these keys: they keep their old values.
            let mut l = l.clone();
            if l.username_from_certificate() != old.username_from_certificate() {
                done.left_for_restart.push(format!(
                    "listener {}: use_identity_as_username and use_subject_as_username change at a restart",
                    l.bind
                ));
                l.use_identity_as_username = old.use_identity_as_username;
                l.use_subject_as_username = old.use_subject_as_username;
            }
            let transport =
                Transport::new(&l, self.max_packet_size).map_err(|source| ReloadError::Tls {
                    bind: l.bind,
                    source: Box::new(source),
                })?;
            replacements.push((shared, transport));
        }
        if config.limits.max_packet_size != self.max_packet_size {
            done.left_for_restart
                .push("limits change at a restart".into());
        }
        let current = self
            .authenticator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let authenticator = current.reloaded(&config.auth).map_err(ReloadError::Auth)?;
        if let Some(a) = &authenticator {
            if a.required() && !self.auth_required {
                done.left_for_restart.push(
                    "turning authentication on (it was open at start) takes a restart".into(),
                );
            }
        }
        // Everything read: now applied.
        if let Some(a) = authenticator {
            self.control
                .send(Control::Authenticator(a.clone()))
                .map_err(|_| ReloadError::Stopped)?;
            *self.authenticator.lock().unwrap_or_else(|e| e.into_inner()) = a;
            done.authentication = true;
        }
        done.tls_listeners = replacements.len();
        for (shared, transport) in replacements {
            *shared.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(transport);
        }
        Ok(done)
    }
}

/// What identifies a listener across reloads.
fn key(l: &Listener) -> (SocketAddr, crate::config::Protocol, &str) {
    (l.bind, l.protocol, l.path.as_str())
}
