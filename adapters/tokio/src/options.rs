//! Connect options: the broker's address, the CONNECT contents and
//! reconnection (`mqtt-client`'s [`ClientOptions`], set through
//! [`OptionSetters`]), and TLS.

use std::sync::Arc;

use mqtt_client::{Address, ClientOptions, OptionSetters};
use tokio_rustls::rustls;

use crate::tls::TlsFiles;
use crate::ConnectError;

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
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// TLS given piece by piece (`ca_file`, `client_certificate`).
    pub(crate) tls_files: TlsFiles,
}

impl ConnectOptions {
    /// Options for the broker at `address` (see [`Address`]):
    /// `mqtt://`, `mqtts://`, `ws://` or `wss://`.
    pub fn new(address: &str) -> Result<ConnectOptions, ConnectError> {
        Ok(ConnectOptions {
            common: ClientOptions::new(address)?,
            tls: None,
            tls_files: TlsFiles::default(),
        })
    }

    /// The broker address.
    pub fn address(&self) -> &Address {
        self.common.address()
    }

    /// The rustls configuration for `mqtts://` and `wss://` (by default
    /// Mozilla's root certificates and no client certificate). Setting it on
    /// an `mqtt://` address switches that address to TLS. It is the whole
    /// configuration: with [`ca_file`](Self::ca_file) or
    /// [`client_certificate`](Self::client_certificate) as well, `connect`
    /// fails with [`mqtt_client::ConnectError::InvalidOption`].
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self.common.use_tls();
        self
    }
}

impl OptionSetters for ConnectOptions {
    fn client_options(&mut self) -> &mut ClientOptions {
        &mut self.common
    }
}

#[cfg(test)]
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
