//! Connect options: the broker's address, the CONNECT contents and
//! reconnection (`mqtt-client`'s [`ClientOptions`], set through
//! [`OptionSetters`]), and where the connection task runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mqtt_client::{Address, ClientOptions, OptionSetters};

use crate::ConnectError;

/// A future the connection task is made of, for a [`Spawner`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Starts the connection task on an executor: `async_std::task::spawn`,
/// `smol::spawn(..).detach()`, or any other.
pub type Spawner = Arc<dyn Fn(Task) + Send + Sync>;

/// Everything [`Client::connect`](crate::Client::connect) needs: where, what
/// CONNECT says, where the connection task runs, and reconnection. Built
/// with chained setters (those of [`OptionSetters`], and
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
    pub(crate) spawner: Option<Spawner>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("common", &self.common)
            .field("spawner", &self.spawner.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl ConnectOptions {
    /// Options for the broker at `address`: `mqtt://host:port`,
    /// `tcp://host:port` or plain `host:port` (port 1883 by default). TLS
    /// and WebSocket are the tokio client's (`mqtt-tokio`).
    pub fn new(address: &str) -> Result<ConnectOptions, ConnectError> {
        let common = ClientOptions::new(address)?;
        if common.address().scheme != crate::Scheme::Tcp {
            let refused = mqtt_client::ConnectError::InvalidAddress {
                address: address.to_owned(),
                why: "this client speaks MQTT over TCP only (mqtt://, tcp://)".to_owned(),
            };
            return Err(refused.into());
        }
        Ok(ConnectOptions {
            common,
            spawner: None,
        })
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

impl OptionSetters for ConnectOptions {
    fn client_options(&mut self) -> &mut ClientOptions {
        &mut self.common
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_addresses_only() {
        let o = ConnectOptions::new("tcp://[::1]:1884/").unwrap();
        assert_eq!((o.address().host.as_str(), o.address().port), ("::1", 1884));
        assert_eq!(ConnectOptions::new("h").unwrap().address().port, 1883);
        for bad in ["mqtts://h", "ws://h", "http://h", "mqtt://h/path"] {
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
