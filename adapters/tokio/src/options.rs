//! Connect options: the broker's address, the CONNECT contents and
//! reconnection (`mqtt-client`'s [`ClientOptions`], set through
//! [`OptionSetters`]), and TLS.

#[cfg(feature = "tls")]
use std::sync::Arc;

use mqtt_client::{Address, ClientOptions, OptionSetters};
#[cfg(feature = "tls")]
use mqtt_tls::TlsFiles;
#[cfg(feature = "tls")]
use tokio_rustls::rustls;

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
/// [`client_certificate_files`](ConnectOptions::client_certificate_files)); a
/// setter given an invalid value (a client identifier with U+0000, a will
/// topic with a wildcard) makes `connect` fail with
/// [`mqtt_client::ConnectError::InvalidOption`].
///
/// Defaults: MQTT 5.0, an empty client identifier (the server assigns one),
/// clean start, no session expiry, a 60-second keep alive, no reconnection,
/// a 30-second connect timeout.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub(crate) common: ClientOptions,
    pub(crate) tls: Option<TlsConfig>,
    /// TLS given piece by piece (`ca_file`, `client_certificate`).
    #[cfg(feature = "tls")]
    pub(crate) tls_files: TlsFiles,
}

impl ConnectOptions {
    /// Options for the broker at `address` (see [`Address`]):
    /// `mqtt://`, `mqtts://`, `ws://` or `wss://`.
    ///
    /// An address whose transport this build was compiled without
    /// (`mqtts://` and `wss://` need the `tls` feature, `ws://` and `wss://`
    /// the `websocket` feature) is refused with
    /// [`ConnectError::FeatureDisabled`].
    pub fn new(address: &str) -> Result<ConnectOptions, ConnectError> {
        let common = ClientOptions::new(address)?;
        crate::transport::require_features(common.address().scheme)?;
        Ok(ConnectOptions {
            common,
            tls: None,
            #[cfg(feature = "tls")]
            tls_files: TlsFiles::default(),
        })
    }

    /// The broker address.
    pub fn address(&self) -> &Address {
        self.common.address()
    }

    /// The rustls configuration for `mqtts://` and `wss://` (by default
    /// the roots the features choose: Mozilla's with `webpki-roots`, the
    /// platform's with `native-roots`; no client certificate). Setting it
    /// on an `mqtt://` address switches that address to TLS. It is the
    /// whole configuration: with [`ca_file`](Self::ca_file) or
    /// [`client_certificate`](Self::client_certificate) as well, `connect`
    /// fails with [`mqtt_client::ConnectError::InvalidOption`].
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self.common.use_tls();
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

#[cfg(all(test, feature = "tls", feature = "websocket"))]
mod tests {
    use super::*;
    use crate::{QoS, Scheme};

    #[test]
    fn every_transport_is_accepted_and_bad_options_wait_for_connect() {
        for (address, scheme) in [
            ("mqtt://h", Scheme::Tcp),
            ("mqtts://h", Scheme::Tls),
            ("ws://h", Scheme::WebSocket),
            ("wss://h", Scheme::WebSocketTls),
        ] {
            assert_eq!(
                ConnectOptions::new(address).unwrap().address().scheme,
                scheme
            );
        }
        assert!(matches!(
            ConnectOptions::new("http://h"),
            Err(ConnectError::Protocol(
                mqtt_client::ConnectError::InvalidAddress { .. }
            ))
        ));
        let o = ConnectOptions::new("mqtt://h")
            .unwrap()
            .will("a/#", "x", QoS::AtMostOnce, false);
        assert!(matches!(
            o.common.into_parts(),
            Err(mqtt_client::ConnectError::InvalidOption { .. })
        ));
    }
}
