//! The rustls client configuration the mqtt-engine client adapters share
//! (`mqtt-engine-tokio`, `mqtt-engine-async-std`, `mqtt-engine-blocking`):
//! everything about TLS that needs only rustls and std. The trust store used
//! when the options give no rustls configuration and no CA file (Mozilla's
//! roots with feature `webpki-roots`, the platform's with feature
//! `native-roots`, or both when both features are on); the trusted
//! certificate authorities from a PEM file and a client certificate for
//! mutual TLS, made into a [`rustls::ClientConfig`] on ring. The handshake
//! over a socket stays in each adapter (tokio-rustls, futures-rustls,
//! rustls' own connection); [`Error::into_connect_error`] makes an
//! adapter's error of a failure.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The rustls version this crate builds configurations with (the one the
/// adapters re-export).
pub use rustls;

/// A client certificate chain (the client's certificate first) and its
/// private key.
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// A client configuration as the adapters store and share it.
pub type TlsConfig = Arc<rustls::ClientConfig>;

/// Why no configuration could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A refused TLS option: an unusable CA certificate or client key, or
    /// pieces given beside a whole configuration (see
    /// [`into_connect_error`](Error::into_connect_error)).
    #[error("{0}")]
    InvalidOption(String),
    /// No root certificate to verify a broker with: neither the
    /// `webpki-roots` nor the `native-roots` feature is on, or the
    /// platform's store yielded no certificate.
    #[error("no root certificates to verify the broker with: {0}")]
    NoRootCertificates(String),
}

impl Error {
    /// This error as a client adapter's connect error: a refused option
    /// is [`mqtt_client::ConnectError::InvalidOption`] for the option
    /// `tls` (what `connect` reports), missing roots are what `no_roots`
    /// makes of the reason (the adapters' own `NoRootCertificates`).
    pub fn into_connect_error<E>(self, no_roots: impl FnOnce(String) -> E) -> E
    where
        E: From<mqtt_client::ConnectError>,
    {
        match self {
            Error::InvalidOption(why) => mqtt_client::ConnectError::InvalidOption {
                option: "tls".to_owned(),
                why,
            }
            .into(),
            Error::NoRootCertificates(why) => no_roots(why),
        }
    }
}

/// The pieces of a TLS configuration given one by one: trusted
/// certificate authorities and a client certificate. Empty, it stands for
/// the default configuration.
#[derive(Debug, Default)]
pub struct TlsFiles {
    /// Trusted certificate authorities instead of the default roots.
    roots: Option<Vec<CertificateDer<'static>>>,
    /// The client's certificate chain and private key.
    identity: Option<Identity>,
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
    /// Whether no piece was given.
    pub fn is_empty(&self) -> bool {
        self.roots.is_none() && self.identity.is_none()
    }

    /// Trusts these certificate authorities (DER) instead of the default
    /// roots.
    pub fn set_roots(&mut self, certs: Vec<CertificateDer<'static>>) {
        self.roots = Some(certs);
    }

    /// Presents this certificate chain (the client's certificate first)
    /// and private key: mutual TLS.
    pub fn set_identity(
        &mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) {
        self.identity = Some((chain, key));
    }

    /// The configuration to connect with: `whole` (a configuration given
    /// whole) when no piece was given, one made of the pieces when no
    /// whole one was, `None` for the default (see [`default_config`]). A
    /// whole configuration beside pieces is refused: the pieces belong in
    /// it.
    pub fn into_config(self, whole: Option<TlsConfig>) -> Result<Option<TlsConfig>, Error> {
        match (whole, self.is_empty()) {
            (config, true) => Ok(config),
            (Some(_), false) => Err(Error::InvalidOption(
                "tls_config is a whole configuration: ca_file and client_certificate go in it"
                    .to_owned(),
            )),
            (None, false) => build(self).map(Some),
        }
    }
}

/// The certificates of a PEM file (at least one); the error names the
/// file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS #8, PKCS #1 or SEC1); the error
/// names the file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// A certificate chain and its private key from PEM files, as
/// `mosquitto_pub --cert --key` takes them; the first error, naming its
/// file.
pub fn read_identity(cert_path: &Path, key_path: &Path) -> Result<Identity, String> {
    let chain = read_certificates(cert_path);
    let key = read_key(key_path);
    Ok((chain?, key?))
}

/// `config` when given, else the default configuration.
pub fn config_or_default(config: Option<&TlsConfig>) -> Result<TlsConfig, Error> {
    match config {
        Some(config) => Ok(config.clone()),
        None => default_config(),
    }
}

/// A configuration from the pieces: their roots or the default ones,
/// their client certificate or none.
fn build(files: TlsFiles) -> Result<TlsConfig, Error> {
    let roots = match files.roots {
        Some(certs) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in certs {
                store.add(cert).map_err(|e| {
                    Error::InvalidOption(format!("not a usable CA certificate: {e}"))
                })?;
            }
            Arc::new(store)
        }
        None => default_roots()?,
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::InvalidOption(e.to_string()))?
    .with_root_certificates(roots);
    let config = match files.identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::InvalidOption(format!("client certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The default configuration: the roots the features choose, no client
/// certificate. Built once per process: the platform's store is read from
/// disk, and a reconnecting client should not read it every time.
pub fn default_config() -> Result<TlsConfig, Error> {
    static DEFAULT: OnceLock<TlsConfig> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(config.clone());
    }
    let config = build(TlsFiles::default())?;
    Ok(DEFAULT.get_or_init(|| config).clone())
}

/// The default roots (see [`root_store`]), read once per process and
/// shared by the default configuration and those made of pieces without
/// CA certificates.
fn default_roots() -> Result<Arc<rustls::RootCertStore>, Error> {
    static ROOTS: OnceLock<Result<Arc<rustls::RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| root_store().map(Arc::new))
        .clone()
        .map_err(Error::NoRootCertificates)
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

/// The README's example, compiled as a doctest, so that what crates.io
/// shows stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctest;

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
        assert!(matches!(err, Error::NoRootCertificates(_)), "{err}");
        assert!(err.to_string().contains("webpki-roots"), "{err}");
    }

    #[test]
    fn a_client_certificate_alone_takes_the_default_roots_and_refuses_a_bad_key() {
        let mut files = TlsFiles::default();
        files.set_identity(
            vec![CertificateDer::from(vec![0x30, 0x00])],
            PrivateKeyDer::Pkcs8(vec![0x30, 0x00].into()),
        );
        let err = files.into_config(None).unwrap_err();
        // A key rustls cannot use is an invalid option; without a roots
        // feature the missing roots are reported first, typed.
        #[cfg(any(feature = "webpki-roots", feature = "native-roots"))]
        assert!(matches!(err, Error::InvalidOption(_)), "{err}");
        #[cfg(not(any(feature = "webpki-roots", feature = "native-roots")))]
        assert!(matches!(err, Error::NoRootCertificates(_)), "{err}");
    }

    #[test]
    fn pieces_beside_a_whole_configuration_are_refused() {
        let mut files = TlsFiles::default();
        files.set_roots(Vec::new());
        let whole = Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        );
        let err = files.into_config(Some(whole)).unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err}");
    }

    #[test]
    fn a_refused_option_is_reported_as_the_invalid_option_tls() {
        let err: mqtt_client::ConnectError = Error::InvalidOption("bad key".to_owned())
            .into_connect_error(|_| unreachable!("not missing roots"));
        assert!(
            matches!(&err, mqtt_client::ConnectError::InvalidOption { option, why }
                if option == "tls" && why == "bad key"),
            "{err}"
        );
        let missing = Error::NoRootCertificates("none".to_owned()).into_connect_error(|why| {
            mqtt_client::ConnectError::InvalidOption {
                option: "roots".to_owned(),
                why,
            }
        });
        assert!(
            matches!(missing, mqtt_client::ConnectError::InvalidOption { option, .. } if option == "roots")
        );
    }

    #[test]
    fn an_unreadable_ca_file_is_an_error_naming_it() {
        let err = read_certificates(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn no_pieces_and_no_whole_configuration_mean_the_default() {
        assert!(TlsFiles::default().into_config(None).unwrap().is_none());
    }
}
