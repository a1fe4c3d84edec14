//! TLS without a hand-built `rustls::ClientConfig`: the trusted
//! certificate authorities from a PEM file ([`ConnectOptions::ca_file`]) and
//! a client certificate for mutual TLS
//! ([`ConnectOptions::client_certificate`],
//! [`ConnectOptions::client_certificate_files`]), made into the
//! configuration at connect.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::rustls;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ConnectOptions;

/// The pieces of a TLS configuration given one by one.
#[derive(Debug, Default)]
pub(crate) struct TlsFiles {
    /// Trusted certificate authorities instead of Mozilla's.
    roots: Option<Vec<CertificateDer<'static>>>,
    /// The client's certificate chain and private key.
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl Clone for TlsFiles {
    fn clone(&self) -> Self {
        TlsFiles {
            roots: self.roots.clone(),
            identity: self
                .identity
                .as_ref()
                .map(|(chain, key)| (chain.clone(), key.clone_key())),
        }
    }
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self.roots.is_none() && self.identity.is_none()
    }
}

/// The certificates of a PEM file (at least one).
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS #8, PKCS #1 or SEC1).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

impl ConnectOptions {
    /// Trusts the certificate authorities of the PEM file at `path` (one
    /// or more certificates) instead of Mozilla's roots, as
    /// `mosquitto_pub --cafile` does. The file is read here; an unreadable
    /// file or one without a certificate makes `connect` fail with
    /// [`mqtt_client::ConnectError::InvalidOption`]. Switches an `mqtt://`
    /// or `ws://` address to TLS.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        match read_certificates(path.as_ref()) {
            Ok(certs) => self = self.ca_certificates(certs),
            Err(why) => self.common.invalid_option("ca_file", why),
        }
        self
    }

    /// Trusts these certificate authorities (DER) instead of Mozilla's
    /// roots. Switches an `mqtt://` or `ws://` address to TLS.
    pub fn ca_certificates(mut self, certs: Vec<CertificateDer<'static>>) -> Self {
        self.tls_files.roots = Some(certs);
        self.common.use_tls();
        self
    }

    /// Presents this certificate chain (the client's certificate first)
    /// and private key to the broker: mutual TLS, for a listener that
    /// requires client certificates (Mosquitto's `require_certificate`).
    /// A key that does not suit rustls makes `connect` fail with
    /// [`mqtt_client::ConnectError::InvalidOption`]. Switches an `mqtt://`
    /// or `ws://` address to TLS.
    pub fn client_certificate(
        mut self,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.tls_files.identity = Some((cert_chain, key));
        self.common.use_tls();
        self
    }

    /// [`client_certificate`](Self::client_certificate) from PEM files, as
    /// `mosquitto_pub --cert --key` takes them. The files are read here;
    /// an unreadable one makes `connect` fail with
    /// [`mqtt_client::ConnectError::InvalidOption`].
    pub fn client_certificate_files(
        mut self,
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Self {
        let chain = read_certificates(cert_path.as_ref());
        let key = read_key(key_path.as_ref());
        match (chain, key) {
            (Ok(chain), Ok(key)) => self = self.client_certificate(chain, key),
            (Err(why), _) | (_, Err(why)) => self.common.invalid_option("client_certificate", why),
        }
        self
    }

    /// The TLS configuration to connect with: the one given whole
    /// ([`tls_config`](Self::tls_config)), or one made of the pieces given,
    /// or `None` for the default.
    pub(crate) fn take_tls(&mut self) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        let files = std::mem::take(&mut self.tls_files);
        match (self.tls.take(), files.is_empty()) {
            (config, true) => Ok(config),
            (Some(_), false) => Err(
                "tls_config is a whole configuration: ca_file and client_certificate go in it"
                    .to_owned(),
            ),
            (None, false) => build(files).map(Some),
        }
    }
}

/// A configuration from the pieces: their roots or Mozilla's, their client
/// certificate or none.
fn build(files: TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = match files.roots {
        Some(certs) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| format!("not a usable CA certificate: {e}"))?;
            }
            store
        }
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    let config = match files.identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
