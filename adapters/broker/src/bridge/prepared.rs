//! A bridge ready to run: its configuration checked, its rules parsed and
//! its TLS files read, before the broker starts.

use std::sync::Arc;

use mqtt_router::broker::Rights;
use mqtt_tokio::rustls;

use super::{remote, BridgeConfig, Rules};
use crate::tls::TlsError;

/// A bridge ready to run: its configuration checked and its TLS files read.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(super) config: BridgeConfig,
    pub(super) rules: Arc<Rules>,
    /// The remote end's client options, TLS included.
    pub(super) options: mqtt_tokio::ConnectOptions,
    /// What the bridge may carry here (every right until
    /// [`Prepared::with_rights`]).
    pub(super) rights: Rights,
}

impl Prepared {
    /// Reads the bridge's TLS files; a file that cannot be used is an error
    /// naming it.
    pub(crate) fn new(config: &BridgeConfig) -> Result<Prepared, std::io::Error> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        config.check().map_err(|e| invalid(e.to_string()))?;
        let rules = Rules::parse(&config.topics).map_err(invalid)?;
        let tls = if config.cafile.is_some() || config.certfile.is_some() {
            let tls = client_tls(config).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    BridgeTlsError {
                        bridge: config.name.clone(),
                        source: e,
                    },
                )
            })?;
            Some(Arc::new(tls))
        } else {
            None
        };
        let mut options = remote::options(config)
            .map_err(|e| invalid(format!("bridge {:?}: {e}", config.name)))?;
        if let Some(tls) = tls {
            options = options.tls_config(tls);
        }
        Ok(Prepared {
            config: config.clone(),
            rules: Arc::new(rules),
            options,
            rights: Rights::allow_all(),
        })
    }

    /// The bridge's name and `local_username`, which its rights are given by.
    pub(crate) fn identity(&self) -> (&str, Option<&str>) {
        (&self.config.name, self.config.local_username.as_deref())
    }

    /// The bridge carries what `rights` allow.
    pub(crate) fn with_rights(mut self, rights: Rights) -> Prepared {
        self.rights = rights;
        self
    }
}

/// A bridge's TLS files could not be used.
#[derive(Debug, thiserror::Error)]
#[error("bridge {bridge:?}: {source}")]
pub struct BridgeTlsError {
    /// The bridge.
    pub bridge: String,
    /// What is wrong, naming the file.
    pub source: TlsError,
}

/// The rustls client configuration of a bridge with `cafile` and/or a
/// client certificate.
fn client_tls(config: &BridgeConfig) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &config.cafile {
        Some(path) => {
            for cert in crate::tls::certificates(path, "CA file")? {
                roots.add(cert).map_err(|source| TlsError::Authority {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Authority {
            path: config.cafile.clone().unwrap_or_default(),
            source,
        })?
        .with_root_certificates(roots);
    match (&config.certfile, &config.keyfile) {
        (Some(certfile), Some(keyfile)) => {
            let chain = crate::tls::certificates(certfile, "certificate file")?;
            let key = crate::tls::private_key(keyfile)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| TlsError::CertifiedKey {
                    certfile: certfile.clone(),
                    keyfile: keyfile.clone(),
                    source,
                })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
