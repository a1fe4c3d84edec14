//! TLS under `mqtts://` and `wss://` (rustls on ring), and the trust store
//! used when the options give no rustls configuration: Mozilla's roots
//! (feature `webpki-roots`), the platform's (feature `native-roots`), or
//! both when both features are on.

use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::{Address, ConnectError};

/// The TLS handshake over `stream`, with `config` or else the default
/// configuration; the server name is the address's host.
pub(crate) async fn connect<S>(
    address: &Address,
    config: Option<&Arc<rustls::ClientConfig>>,
    stream: S,
) -> Result<tokio_rustls::client::TlsStream<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = match config {
        Some(config) => config.clone(),
        None => default_config()?,
    };
    let name = ServerName::try_from(address.host.clone())
        .map_err(|_| ConnectError::InvalidServerName(address.host.clone()))?;
    Ok(tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await?)
}

/// The default configuration: the roots the features choose, no client
/// certificate. Built once per process: the platform's store is read from
/// disk, and a reconnecting client should not read it every time.
fn default_config() -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    static DEFAULT: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    DEFAULT
        .get_or_init(build_default_config)
        .clone()
        .map_err(ConnectError::NoRootCertificates)
}

fn build_default_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = root_store()?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
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
         give the options a rustls configuration (tls_config)",
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
}
