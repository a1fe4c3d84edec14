//! Connect options: the broker's address, the CONNECT contents (shared with
//! every client adapter, from `mqtt-session`), TLS and reconnection.

use std::sync::Arc;

use mqtt_session::ClientOptions;
use tokio_rustls::rustls;

use crate::ConnectError;

/// Everything [`Client::connect`](crate::Client::connect) needs: where, what
/// CONNECT says, TLS and reconnection. Built with chained setters; a setter
/// given an invalid value (a client identifier with U+0000, a will topic
/// with a wildcard) makes `connect` fail with [`ConnectError::InvalidOption`].
///
/// Defaults: MQTT 5.0, an empty client identifier (the server assigns one),
/// clean start, no session expiry, a 60-second keep alive, no reconnection,
/// a 30-second connect timeout.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub(crate) common: ClientOptions,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl ConnectOptions {
    /// Options for the broker at `address` (see [`Address`](crate::Address)):
    /// `mqtt://`, `mqtts://`, `ws://` or `wss://`.
    pub fn new(address: &str) -> Result<ConnectOptions, ConnectError> {
        Ok(ConnectOptions {
            common: ClientOptions::new(address).map_err(ConnectError::invalid_address)?,
            tls: None,
        })
    }

    mqtt_session::client_options_setters!(common);

    /// The rustls configuration for `mqtts://` and `wss://` (by default
    /// Mozilla's root certificates and no client certificate). Setting it on
    /// an `mqtt://` address switches that address to TLS.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self.common.use_tls();
        self
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
            Err(ConnectError::InvalidAddress { .. })
        ));
        let o = ConnectOptions::new("mqtt://h")
            .unwrap()
            .will("a/#", "x", QoS::AtMostOnce, false);
        assert!(matches!(
            o.common.into_parts::<std::io::Error>(),
            Err(ConnectError::InvalidOption { .. })
        ));
    }
}
