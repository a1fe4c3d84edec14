//! Reloading without a restart (SIGHUP in the binary): what can change
//! under connected clients, all or nothing.
//!
//! TLS certificates, keys and CA files are read again for every TLS
//! listener; connections made from then on use the new ones, connections
//! already made keep theirs. Every file is read before anything is
//! replaced, so a reload that fails (a missing or bad file) changes
//! nothing and says which file. Listeners themselves (addresses,
//! protocols), certificate user names and limits change only at a
//! restart: a reload that asks for such a change applies the rest and
//! lists what it left.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, Listener};
use crate::server::SharedTransport;
use crate::tls::TlsError;
use crate::transport::Transport;
use crate::Server;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
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
    left_for_restart: Vec<String>,
}

impl Reloaded {
    /// TLS listeners whose files were read again.
    pub fn tls_listeners(&self) -> usize {
        self.tls_listeners
    }

    /// Changes the reload did not apply: they take a restart.
    pub fn left_for_restart(&self) -> &[String] {
        &self.left_for_restart
    }
}

/// Reloads a running [`Server`]'s settings from another task (a signal
/// handler); see [`Server::reloader`].
#[derive(Debug, Clone)]
pub struct Reloader {
    listeners: Vec<(Listener, SharedTransport)>,
    max_packet_size: u32,
}

impl Server {
    /// Applies what `config` changes that can change under connected
    /// clients (see the module documentation); nothing if it fails.
    pub fn reload(&self, config: &Config) -> Result<Reloaded, ReloadError> {
        self.reloader().reload(config)
    }

    /// A handle that reloads this server's settings, for another task.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            listeners: self.listeners.clone(),
            max_packet_size: self.max_packet_size,
        }
    }
}

impl Reloader {
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
