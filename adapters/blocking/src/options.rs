//! Connect options: the broker's address, the CONNECT contents and
//! reconnection (`mqtt-client`'s [`ClientOptions`], set through
//! [`OptionSetters`]), TLS and how long requests wait.

#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

use mqtt_client::{Address, ClientOptions, OptionSetters};
#[cfg(feature = "tls")]
use mqtt_tls::TlsFiles;

use crate::ConnectError;

/// The rustls configuration [`ConnectOptions::tls_config`] stores.
#[cfg(feature = "tls")]
pub(crate) type TlsConfig = Arc<rustls::ClientConfig>;
/// Without the `tls` feature there is no configuration to store: a type
/// with no values, so the options' `Option<TlsConfig>` is always `None`.
#[cfg(not(feature = "tls"))]
pub(crate) type TlsConfig = std::convert::Infallible;

/// Everything [`Client::connect`](crate::Client::connect) needs: where, what
/// CONNECT says, TLS and reconnection. Built with chained setters (those of
/// [`OptionSetters`], and [`tls_config`](ConnectOptions::tls_config) or
/// [`ca_file`](ConnectOptions::ca_file) and
/// [`client_certificate_files`](ConnectOptions::client_certificate_files),
/// [`request_timeout`](ConnectOptions::request_timeout)); a setter given an
/// invalid value (a client identifier with U+0000, a will topic with a
/// wildcard) makes `connect` fail with
/// [`mqtt_client::ConnectError::InvalidOption`].
///
/// Defaults: MQTT 5.0, an empty client identifier (the server assigns one),
/// clean start, no session expiry, a 60-second keep alive, no reconnection,
/// a 30-second connect timeout (also the bound on a socket write).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub(crate) common: ClientOptions,
    pub(crate) tls: Option<TlsConfig>,
    /// TLS given piece by piece (`ca_file`, `client_certificate`).
    #[cfg(feature = "tls")]
    pub(crate) tls_files: TlsFiles,
    pub(crate) request_timeout: Option<Duration>,
}

impl ConnectOptions {
    /// Options for the broker at `address` (see [`Address`](crate::Address)):
    /// `mqtt://` or `mqtts://` (WebSocket is `mqtt-tokio`'s).
    ///
    /// An `mqtts://` address on a build without the `tls` feature is
    /// refused with [`ConnectError::FeatureDisabled`].
    pub fn new(address: &str) -> Result<ConnectOptions, ConnectError> {
        let common = ClientOptions::new(address)?;
        crate::transport::require_features(common.address().scheme)?;
        if common.address().is_websocket() {
            let refused = mqtt_client::ConnectError::InvalidAddress {
                address: address.to_owned(),
                why: "this client speaks MQTT over TCP and TLS, not WebSocket".to_owned(),
            };
            return Err(refused.into());
        }
        Ok(ConnectOptions {
            common,
            tls: None,
            #[cfg(feature = "tls")]
            tls_files: TlsFiles::default(),
            request_timeout: None,
        })
    }

    /// The broker address.
    pub fn address(&self) -> &Address {
        self.common.address()
    }

    /// The rustls configuration for `mqtts://` (by default the roots the
    /// features choose: Mozilla's with `webpki-roots`, the platform's with
    /// `native-roots`; no client certificate). Setting it on an `mqtt://`
    /// address switches that address to TLS. It is the whole configuration:
    /// with [`ca_file`](Self::ca_file) or
    /// [`client_certificate`](Self::client_certificate) as well, `connect`
    /// fails with [`mqtt_client::ConnectError::InvalidOption`].
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self.common.use_tls();
        self
    }

    /// How long a publish, subscribe, unsubscribe or disconnect waits for
    /// its answer before returning [`ClientError::Timeout`](crate::ClientError::Timeout)
    /// (the request itself goes on). By default they wait as long as it
    /// takes, across reconnections.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }
}

#[cfg(not(feature = "tls"))]
impl ConnectOptions {
    /// The TLS configuration to connect with: none in a build without
    /// `tls` (`tls.rs` has the one that builds it from `ca_file` and
    /// `client_certificate`).
    pub(crate) fn take_tls(&mut self) -> Result<Option<TlsConfig>, ConnectError> {
        Ok(self.tls.take())
    }
}

impl OptionSetters for ConnectOptions {
    fn client_options(&mut self) -> &mut ClientOptions {
        &mut self.common
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;
    use crate::Scheme;

    #[test]
    fn tcp_and_tls_addresses_only() {
        assert_eq!(ConnectOptions::new("h:1999").unwrap().address().port, 1999);
        let o = ConnectOptions::new("mqtt://h").unwrap();
        assert_eq!(o.address().scheme, Scheme::Tcp);
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let o = o.tls_config(Arc::new(config));
        assert_eq!(o.address().scheme, Scheme::Tls);
        for bad in ["ws://h:9001", "wss://h", "http://h", "mqtt://h/path"] {
            assert!(
                matches!(
                    ConnectOptions::new(bad),
                    Err(ConnectError::Protocol(
                        mqtt_client::ConnectError::InvalidAddress { .. }
                    ))
                ),
                "{bad}"
            );
        }
    }
}
