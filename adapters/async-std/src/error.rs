//! Why connecting failed: the socket's errors here, the protocol's from
//! `mqtt-client`.

use mqtt_client::mqtt_session::mqtt_codec::ReasonCode;

/// Why connecting to the broker failed: the network, TLS or WebSocket
/// (this crate's transports), or MQTT itself ([`ConnectError::Protocol`]:
/// an invalid option, a refusing CONNACK, the connect timeout, ...).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The broker could not be reached, or the network failed while
    /// connecting (including TLS failures, such as an untrusted
    /// certificate), or the connection task's thread could not start.
    #[error("cannot reach the broker: {0}")]
    Io(#[from] std::io::Error),
    /// The host name is not valid as a TLS server name.
    #[error("{0:?} is not a valid TLS server name")]
    InvalidServerName(String),
    /// The WebSocket upgrade failed.
    #[error("the WebSocket handshake failed: {0}")]
    WebSocket(String),
    /// The address needs a transport this build was compiled without: the
    /// crate was built with `default-features = false` and without the
    /// Cargo feature named here.
    #[error(
        "{scheme} addresses need the `{feature}` feature of {krate}, \
         which this build was compiled without",
        krate = env!("CARGO_PKG_NAME")
    )]
    FeatureDisabled {
        /// How the refused address begins: `mqtts://`, `ws://` or `wss://`.
        scheme: &'static str,
        /// The Cargo feature that would bring its transport: `tls` or
        /// `websocket`.
        feature: &'static str,
    },
    /// TLS without a rustls configuration or a `ca_file` in the options,
    /// and no root certificate to verify the broker with: neither the
    /// `webpki-roots` nor the `native-roots` feature is on, or the
    /// platform's store yielded no certificate.
    #[error("no root certificates to verify the broker with: {0}")]
    NoRootCertificates(String),
    /// What MQTT says: an invalid address or option, a refusing CONNACK,
    /// no CONNACK within the connect timeout, a connection that ended
    /// before CONNACK.
    #[error(transparent)]
    Protocol(#[from] mqtt_client::ConnectError),
}

impl ConnectError {
    /// The MQTT reason code that describes the failure, where there is one.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            ConnectError::Protocol(e) => e.reason_code(),
            ConnectError::Io(_)
            | ConnectError::InvalidServerName(_)
            | ConnectError::WebSocket(_)
            | ConnectError::FeatureDisabled { .. }
            | ConnectError::NoRootCertificates(_) => None,
        }
    }
}

impl From<mqtt_client::AddressError> for ConnectError {
    fn from(e: mqtt_client::AddressError) -> Self {
        ConnectError::Protocol(e.into())
    }
}
