//! Connect options: the broker's address, the CONNECT contents and
//! reconnection (`mqtt-client`'s [`ClientOptions`], set through
//! [`OptionSetters`]), and where the connection task runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

#[cfg(feature = "tls")]
use futures_rustls::rustls;
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

/// A future the connection task is made of, for a [`Spawner`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Starts the connection task on an executor: `async_std::task::spawn`,
/// `smol::spawn(..).detach()`, or any other.
pub type Spawner = Arc<dyn Fn(Task) + Send + Sync>;

/// Everything [`Client::connect`](crate::Client::connect) needs: where, what
/// CONNECT says, TLS, where the connection task runs, and reconnection.
/// Built with chained setters (those of [`OptionSetters`], and
/// [`tls_config`](ConnectOptions::tls_config) or
/// [`ca_file`](ConnectOptions::ca_file) and
/// [`client_certificate_files`](ConnectOptions::client_certificate_files),
/// [`spawner`](ConnectOptions::spawner)); a setter given an invalid value (a
/// client identifier with U+0000, a will topic with a wildcard) makes
/// `connect` fail with [`mqtt_client::ConnectError::InvalidOption`].
///
/// Defaults: MQTT 5.0, an empty client identifier (the server assigns one),
/// clean start, no session expiry, a 60-second keep alive, no reconnection,
/// a 30-second connect timeout, the connection task on a thread of its own.
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) common: ClientOptions,
    pub(crate) tls: Option<TlsConfig>,
    /// TLS given piece by piece (`ca_file`, `client_certificate`).
    #[cfg(feature = "tls")]
    pub(crate) tls_files: TlsFiles,
    pub(crate) spawner: Option<Spawner>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("common", &self.common)
            .field("tls", &self.tls)
            .field("spawner", &self.spawner.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl ConnectOptions {
    /// Options for the broker at `address` (see [`Address`]):
    /// `mqtt://host:port` (also `tcp://host:port` or plain `host:port`, port
    /// 1883 by default), `mqtts://` (TLS), `ws://host:port/mqtt` or `wss://`
    /// (WebSocket with subprotocol `mqtt`).
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
            spawner: None,
        })
    }

    /// The rustls configuration for `mqtts://` and `wss://` (by default
    /// the roots the features choose: Mozilla's with `webpki-roots`, the
    /// platform's with `native-roots`; no client certificate). Setting it
    /// on an `mqtt://` or `ws://` address switches that address to TLS. It
    /// is the whole configuration: with [`ca_file`](Self::ca_file) or
    /// [`client_certificate`](Self::client_certificate) as well, `connect`
    /// fails with [`mqtt_client::ConnectError::InvalidOption`].
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self.common.use_tls();
        self
    }

    /// The broker address.
    pub fn address(&self) -> &Address {
        self.common.address()
    }

    /// Where the connection task runs. By default it gets a thread of its
    /// own that polls it (`async_io::block_on`; IO and timers come from the
    /// reactor async-std and smol share), which works under any runtime;
    /// with a spawner it runs on the application's executor instead:
    /// `Arc::new(|task| { async_std::task::spawn(task); })` or
    /// `Arc::new(|task| smol::spawn(task).detach())`.
    pub fn spawner(mut self, spawner: Spawner) -> Self {
        self.spawner = Some(spawner);
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

    #[test]
    fn every_transport_is_accepted_and_bad_addresses_are_refused() {
        let o = ConnectOptions::new("tcp://[::1]:1884/").unwrap();
        assert_eq!((o.address().host.as_str(), o.address().port), ("::1", 1884));
        assert_eq!(ConnectOptions::new("h").unwrap().address().port, 1883);
        for (address, scheme) in [
            ("mqtts://h", crate::Scheme::Tls),
            ("ws://h", crate::Scheme::WebSocket),
            ("wss://h", crate::Scheme::WebSocketTls),
        ] {
            assert_eq!(
                ConnectOptions::new(address).unwrap().address().scheme,
                scheme
            );
        }
        for bad in ["http://h", "mqtt://h/path"] {
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
        let o = ConnectOptions::new("h").unwrap().spawner(Arc::new(|_| {}));
        assert!(format!("{o:?}").contains("custom"));
    }
}
