//! Connect options: the broker's address, the CONNECT contents, where the
//! connection task runs, and reconnection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqtt_session::mqtt_codec::{ProtocolVersion, QoS, Str, TopicName, Will, WillProps};
use mqtt_session::{Backoff, ClientConfig};

use crate::error::ConnectError;

/// A broker address: `mqtt://host:port`, `tcp://host:port` or plain
/// `host:port` (port 1883 by default). TLS and WebSocket are the tokio
/// client's (`mqtt-tokio`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Host name or IP address (without the brackets of an IPv6 literal).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Address {
    /// Parses an address; see [`Address`] for the forms accepted.
    pub fn parse(text: &str) -> Result<Address, ConnectError> {
        let bad = |why: &str| ConnectError::InvalidAddress {
            address: text.to_owned(),
            why: why.to_owned(),
        };
        let rest = match text.split_once("://") {
            None => text,
            Some(("mqtt" | "tcp", rest)) => rest,
            Some(_) => return Err(bad("the scheme is not mqtt or tcp")),
        };
        let authority = match rest.split_once('/') {
            Some((a, "")) => a,
            Some(_) => return Err(bad("an MQTT address has no path")),
            None => rest,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address lacks its closing ']'"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        let port = match port {
            None => 1883,
            Some(p) => p
                .parse()
                .map_err(|_| bad("the port is not a number from 0 to 65535"))?,
        };
        Ok(Address {
            host: host.to_owned(),
            port,
        })
    }
}

/// A future the connection task is made of, for a [`Spawner`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Starts the connection task on an executor: `async_std::task::spawn`,
/// `smol::spawn(..).detach()`, or any other.
pub type Spawner = Arc<dyn Fn(Task) + Send + Sync>;

/// Everything [`Client::connect`](crate::Client::connect) needs: where, what
/// CONNECT says, where the connection task runs, and reconnection. Built
/// with chained setters; a setter given an invalid value (a client
/// identifier with U+0000, a will topic with a wildcard) makes `connect` fail
/// with [`ConnectError::InvalidOption`].
///
/// Defaults: MQTT 5.0, an empty client identifier (the server assigns one),
/// clean start, no session expiry, a 60-second keep alive, no reconnection,
/// a 30-second connect timeout, the connection task on a thread of its own.
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) address: Address,
    pub(crate) config: ClientConfig,
    pub(crate) reconnect: Option<Backoff>,
    pub(crate) spawner: Option<Spawner>,
    pub(crate) incoming_capacity: usize,
    /// The first invalid option given: (option, why).
    pub(crate) invalid: Option<(String, String)>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("address", &self.address)
            .field("config", &self.config)
            .field("reconnect", &self.reconnect)
            .field("spawner", &self.spawner.as_ref().map(|_| "custom"))
            .field("incoming_capacity", &self.incoming_capacity)
            .finish()
    }
}

impl ConnectOptions {
    /// Options for the broker at `address` (see [`Address`]).
    pub fn new(address: &str) -> Result<ConnectOptions, ConnectError> {
        let mut config = ClientConfig::new(ProtocolVersion::V5, Str::from_static(""));
        config.connect_timeout = Duration::from_secs(30);
        Ok(ConnectOptions {
            address: Address::parse(address)?,
            config,
            reconnect: None,
            spawner: None,
            incoming_capacity: 1024,
            invalid: None,
        })
    }

    fn invalid(mut self, what: &str, why: impl std::fmt::Display) -> Self {
        if self.invalid.is_none() {
            self.invalid = Some((what.to_owned(), why.to_string()));
        }
        self
    }

    /// The protocol version: [`ProtocolVersion::V5`] (default) or
    /// [`ProtocolVersion::V311`] (also 3.1).
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.config.version = version;
        self
    }

    /// The client identifier; empty (the default) asks the server to assign
    /// one (5.0, or 3.1.1 with a clean session).
    pub fn client_id(mut self, id: &str) -> Self {
        match Str::try_from(id) {
            Ok(s) => {
                self.config.client_id = s;
                self
            }
            Err(e) => self.invalid("client_id", e),
        }
    }

    /// Clean Start (5.0) / Clean Session (3.1.1); true by default.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.config.clean_start = clean;
        self
    }

    /// How long the server keeps the session after the connection ends, in
    /// seconds (5.0; 0, the default, ends it with the connection). With a
    /// non-zero interval, automatic reconnection resumes the session.
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.config.session_expiry_interval = seconds;
        self
    }

    /// Keep alive in seconds (0 turns it off); PINGREQ is sent on its own
    /// when nothing else was sent for that long.
    pub fn keep_alive(mut self, seconds: u16) -> Self {
        self.config.keep_alive = seconds;
        self
    }

    /// User name and optional password.
    pub fn credentials(mut self, username: &str, password: Option<&[u8]>) -> Self {
        match Str::try_from(username) {
            Ok(s) => {
                self.config.username = Some(s);
                self.config.password = password.map(Bytes::copy_from_slice);
                self
            }
            Err(e) => self.invalid("username", e),
        }
    }

    /// The Last Will and Testament: published by the server if the connection
    /// ends without DISCONNECT. For 5.0 will properties (will delay interval,
    /// message expiry, content type, ...) see [`ConnectOptions::will_properties`].
    pub fn will(mut self, topic: &str, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Self {
        match TopicName::try_from(topic) {
            Ok(topic) => {
                self.config.will = Some(Will {
                    topic,
                    payload: payload.into(),
                    qos,
                    retain,
                    props: WillProps::default(),
                });
                self
            }
            Err(e) => self.invalid("will topic", e),
        }
    }

    /// The 5.0 properties of the will set with [`ConnectOptions::will`]
    /// (call that first), such as `will_delay_interval`.
    pub fn will_properties(mut self, props: WillProps) -> Self {
        match self.config.will.as_mut() {
            Some(will) => {
                will.props = props;
                self
            }
            None => self.invalid("will properties", "no will was set before them"),
        }
    }

    /// Receive Maximum (5.0): how many QoS 1/2 messages the server may have
    /// in flight to this client.
    pub fn receive_maximum(mut self, n: u16) -> Self {
        if n == 0 {
            return self.invalid("receive_maximum", "it must be at least 1");
        }
        self.config.limits.receive_maximum = n;
        self
    }

    /// Maximum Packet Size (5.0): the largest packet this client accepts.
    pub fn maximum_packet_size(mut self, bytes: u32) -> Self {
        if bytes == 0 {
            return self.invalid("maximum_packet_size", "it must be at least 1");
        }
        self.config.limits.max_packet_size = bytes;
        self
    }

    /// Topic Alias Maximum (5.0): the highest topic alias the server may use
    /// towards this client (0 turns aliases off).
    pub fn topic_alias_maximum(mut self, n: u16) -> Self {
        self.config.limits.topic_alias_maximum = n;
        self
    }

    /// Adds a user property to CONNECT (5.0).
    pub fn user_property(mut self, name: &str, value: &str) -> Self {
        match (Str::try_from(name), Str::try_from(value)) {
            (Ok(n), Ok(v)) => {
                self.config.user_properties.push((n, v));
                self
            }
            (Err(e), _) | (_, Err(e)) => self.invalid("user property", e),
        }
    }

    /// How long connecting may take: the TCP connection and CONNACK
    /// together (30 seconds by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Reconnects automatically after a lost connection, waiting between
    /// attempts as `backoff` says. With a persistent session (a session
    /// expiry under 5.0, clean start off under 3.1.1) the session resumes and
    /// what was in flight is resent, so publishes made before the outage
    /// complete after it; commands given meanwhile wait for the connection.
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = Some(backoff);
        self
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

    /// How many received messages and events may wait for
    /// [`Incoming::recv`](crate::Incoming::recv) (1024 by default). When that
    /// many wait, the client stops reading from the broker until some are
    /// taken, so a slow application costs bounded memory.
    pub fn incoming_capacity(mut self, n: usize) -> Self {
        self.incoming_capacity = n.max(1);
        self
    }

    /// The underlying `mqtt-session` configuration, for what has no setter
    /// here (limits such as the outgoing queue size, enhanced authentication,
    /// the PINGRESP timeout).
    pub fn session_config(&mut self) -> &mut ClientConfig {
        &mut self.config
    }

    /// The broker address.
    pub fn address(&self) -> &Address {
        &self.address
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_defaults() {
        let a = Address::parse("mqtt://example.com").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("example.com", 1883));
        let a = Address::parse("127.0.0.1:1999").unwrap();
        assert_eq!(a.port, 1999);
        let a = Address::parse("tcp://[::1]:1884/").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 1884));
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "mqtts://h",
            "ws://h",
            "mqtt://",
            "mqtt://h:port",
            "mqtt://h:70000",
            "mqtt://[::1",
            "mqtt://[::1]x",
            "mqtt://h/path",
        ] {
            assert!(
                matches!(
                    Address::parse(bad),
                    Err(ConnectError::InvalidAddress { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_options_are_kept_for_connect() {
        let o = ConnectOptions::new("mqtt://h").unwrap().client_id("a\0b");
        assert!(o.invalid.is_some());
        let o = ConnectOptions::new("mqtt://h")
            .unwrap()
            .will("a/#", "x", QoS::AtMostOnce, false);
        assert!(o.invalid.is_some());
        let o = ConnectOptions::new("mqtt://h")
            .unwrap()
            .will_properties(WillProps::default());
        assert!(o.invalid.is_some());
        let o = ConnectOptions::new("mqtt://h")
            .unwrap()
            .client_id("ok")
            .will("a/b", "x", QoS::AtLeastOnce, true)
            .receive_maximum(5)
            .receive_maximum(0);
        assert!(o.invalid.is_some());
        let o = ConnectOptions::new("mqtt://h")
            .unwrap()
            .client_id("ok")
            .receive_maximum(5);
        assert!(o.invalid.is_none());
        assert_eq!(o.config.client_id, "ok");
        assert_eq!(o.config.limits.receive_maximum, 5);
    }
}
