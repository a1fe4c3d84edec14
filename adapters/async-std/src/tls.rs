//! TLS under `mqtts://` and `wss://` (rustls on ring, through
//! futures-rustls), all of it behind the `tls` feature: the handshake; the
//! trust store used when the options give no rustls configuration and no
//! `ca_file` (Mozilla's roots with feature `webpki-roots`, the platform's
//! with feature `native-roots`, or both when both features are on); and
//! TLS without a hand-built `rustls::ClientConfig`: the trusted
//! certificate authorities from a PEM file ([`ConnectOptions::ca_file`])
//! and a client certificate for mutual TLS
//! ([`ConnectOptions::client_certificate`],
//! [`ConnectOptions::client_certificate_files`]), made into the
//! configuration at connect.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_net::TcpStream;
use futures_rustls::rustls;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use mqtt_client::Address;

use crate::options::TlsConfig;
use crate::{ConnectError, ConnectOptions};

/// The TLS handshake over `tcp`, with `config` or else the default
/// configuration; the server name is the address's host.
pub(crate) async fn connect(
    address: &Address,
    config: Option<&TlsConfig>,
    tcp: TcpStream,
) -> Result<futures_rustls::client::TlsStream<TcpStream>, ConnectError> {
    let config = match config {
        Some(config) => config.clone(),
        None => default_config()?,
    };
    let name = ServerName::try_from(address.host.clone())
        .map_err(|_| ConnectError::InvalidServerName(address.host.clone()))?;
    Ok(futures_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?)
}

/// The pieces of a TLS configuration given one by one.
#[derive(Debug, Default)]
pub(crate) struct TlsFiles {
    /// Trusted certificate authorities instead of the default roots.
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
    /// or more certificates) instead of the default roots (those the
    /// `webpki-roots` and `native-roots` features choose), as
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

    /// Trusts these certificate authorities (DER) instead of the default
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
    /// or `None` for the default (built when a TLS connection opens).
    pub(crate) fn take_tls(&mut self) -> Result<Option<TlsConfig>, ConnectError> {
        let files = std::mem::take(&mut self.tls_files);
        match (self.tls.take(), files.is_empty()) {
            (config, true) => Ok(config),
            (Some(_), false) => Err(invalid_tls(
                "tls_config is a whole configuration: ca_file and client_certificate go in it"
                    .to_owned(),
            )),
            (None, false) => build(files).map(Some),
        }
    }
}

/// A refused TLS option, as `connect` reports it.
fn invalid_tls(why: String) -> ConnectError {
    mqtt_client::ConnectError::InvalidOption {
        option: "tls".to_owned(),
        why,
    }
    .into()
}

/// A configuration from the pieces: their roots or the default ones,
/// their client certificate or none.
fn build(files: TlsFiles) -> Result<TlsConfig, ConnectError> {
    let roots = match files.roots {
        Some(certs) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| invalid_tls(format!("not a usable CA certificate: {e}")))?;
            }
            Arc::new(store)
        }
        None => default_roots()?,
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid_tls(e.to_string()))?
    .with_root_certificates(roots);
    let config = match files.identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| invalid_tls(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The default configuration: the roots the features choose, no client
/// certificate. Built once per process: the platform's store is read from
/// disk, and a reconnecting client should not read it every time.
fn default_config() -> Result<TlsConfig, ConnectError> {
    static DEFAULT: OnceLock<TlsConfig> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(config.clone());
    }
    let config = build(TlsFiles::default())?;
    Ok(DEFAULT.get_or_init(|| config).clone())
}

/// The default roots (see [`root_store`]), read once per process and
/// shared by the default configuration and those made of pieces without a
/// `ca_file`.
fn default_roots() -> Result<Arc<rustls::RootCertStore>, ConnectError> {
    static ROOTS: OnceLock<Result<Arc<rustls::RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| root_store().map(Arc::new))
        .clone()
        .map_err(ConnectError::NoRootCertificates)
}

/// The union of the root stores the features turn on (as reqwest does
/// with its two root features); an error when it is empty, rather than a
/// configuration that would refuse every broker with a less clear error.
fn root_store() -> Result<rustls::RootCertStore, String> {
    #[allow(unused_mut)]
    let mut roots = rustls::RootCertStore::empty();
    #[cfg(feature = "webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    #[cfg(feature = "native-roots")]
    let native_errors = {
        let native = rustls_native_certs::load_native_certs();
        let (_added, _unparsable) = roots.add_parsable_certificates(native.certs);
        native.errors
    };
    if !roots.is_empty() {
        return Ok(roots);
    }
    #[cfg(feature = "native-roots")]
    return Err(format!(
        "none could be loaded from the platform's store ({} errors{})",
        native_errors.len(),
        native_errors
            .first()
            .map(|e| format!(", the first: {e}"))
            .unwrap_or_default()
    ));
    #[cfg(not(feature = "native-roots"))]
    Err(String::from(
        "this build has neither the `webpki-roots` nor the `native-roots` feature; \
         give the options a ca_file or a rustls configuration (tls_config)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "webpki-roots", feature = "native-roots"))]
    #[test]
    fn the_default_configuration_trusts_some_roots() {
        assert!(!root_store().unwrap().is_empty());
        assert!(default_config().is_ok());
    }

    #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
    #[test]
    fn without_a_roots_feature_the_default_configuration_is_a_typed_error() {
        let err = default_config().unwrap_err();
        assert!(matches!(err, ConnectError::NoRootCertificates(_)), "{err}");
        assert!(err.to_string().contains("webpki-roots"), "{err}");
    }

    #[test]
    fn a_client_certificate_alone_takes_the_default_roots_and_refuses_a_bad_key() {
        let chain = vec![CertificateDer::from(vec![0x30, 0x00])];
        let key = PrivateKeyDer::Pkcs8(vec![0x30, 0x00].into());
        let mut options = ConnectOptions::new("mqtt://h")
            .unwrap()
            .client_certificate(chain, key);
        let err = options.take_tls().unwrap_err();
        // A key rustls cannot use is an invalid option; without a roots
        // feature the missing roots are reported first, typed.
        #[cfg(any(feature = "webpki-roots", feature = "native-roots"))]
        assert!(
            matches!(
                err,
                ConnectError::Protocol(mqtt_client::ConnectError::InvalidOption { .. })
            ),
            "{err}"
        );
        #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
        assert!(matches!(err, ConnectError::NoRootCertificates(_)), "{err}");
    }
}
