//! Connect options every client adapter offers: the broker's address, what
//! CONNECT says, reconnection and the room for received messages, as one
//! builder over [`ClientConfig`]. Adapters wrap it in their own
//! `ConnectOptions` (adding their transport's settings) and forward its
//! setters with [`client_options_setters!`](crate::client_options_setters).

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use core::fmt::Display;
use core::time::Duration;

use bytes::Bytes;
use mqtt_codec::{ProtocolVersion, QoS, Str, TopicName, Will, WillProps};

use crate::address::{Address, AddressError};
use crate::client_error::ConnectError;
use crate::config::ClientConfig;
use crate::reconnect::Backoff;

/// The options a client adapter connects with. Built with chained setters;
/// a setter given an invalid value (a client identifier with U+0000, a will
/// topic with a wildcard) is remembered and reported by
/// [`into_parts`](ClientOptions::into_parts) as
/// [`ConnectError::InvalidOption`].
///
/// Defaults: MQTT 5.0, an empty client identifier (the server assigns one),
/// clean start, no session expiry, a 60-second keep alive, no reconnection,
/// a 30-second connect timeout, room for 1024 received messages.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    address: Address,
    config: ClientConfig,
    reconnect: Option<Backoff>,
    incoming_capacity: usize,
    /// The first invalid option given: (option, why).
    invalid: Option<(String, String)>,
}

/// What [`ClientOptions::into_parts`] hands the adapter.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientParts {
    /// Where to connect.
    pub address: Address,
    /// The connection's configuration.
    pub config: ClientConfig,
    /// How to wait between reconnection attempts; `None`: no reconnection.
    pub reconnect: Option<Backoff>,
    /// How many received messages and events may wait for the application.
    pub incoming_capacity: usize,
}

impl ClientOptions {
    /// Options for the broker at `address` (see [`Address`]).
    pub fn new(address: &str) -> Result<ClientOptions, AddressError> {
        let mut config = ClientConfig::new(ProtocolVersion::V5, Str::from_static(""));
        config.connect_timeout = Duration::from_secs(30);
        Ok(ClientOptions {
            address: Address::parse(address)?,
            config,
            reconnect: None,
            incoming_capacity: 1024,
            invalid: None,
        })
    }

    fn invalid(mut self, what: &str, why: impl Display) -> Self {
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
    /// seconds (5.0; 0, the default, ends it with the connection).
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.config.session_expiry_interval = seconds;
        self
    }

    /// Keep alive in seconds (0 turns it off).
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

    /// The Last Will and Testament.
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

    /// The 5.0 properties of the will set with [`will`](Self::will) (call
    /// that first).
    pub fn will_properties(mut self, props: WillProps) -> Self {
        match self.config.will.as_mut() {
            Some(will) => {
                will.props = props;
                self
            }
            None => self.invalid("will properties", "no will was set before them"),
        }
    }

    /// Receive Maximum (5.0), at least 1.
    pub fn receive_maximum(mut self, n: u16) -> Self {
        if n == 0 {
            return self.invalid("receive_maximum", "it must be at least 1");
        }
        self.config.limits.receive_maximum = n;
        self
    }

    /// Maximum Packet Size (5.0), at least 1.
    pub fn maximum_packet_size(mut self, bytes: u32) -> Self {
        if bytes == 0 {
            return self.invalid("maximum_packet_size", "it must be at least 1");
        }
        self.config.limits.max_packet_size = bytes;
        self
    }

    /// Topic Alias Maximum (5.0; 0 turns aliases off).
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

    /// How long connecting may take, handshakes and CONNACK together.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Reconnects after a lost connection, waiting as `backoff` says.
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = Some(backoff);
        self
    }

    /// How many received messages and events may wait for the application
    /// (at least 1).
    pub fn incoming_capacity(mut self, n: usize) -> Self {
        self.incoming_capacity = n.max(1);
        self
    }

    /// Switches the address to its TLS variant (`mqtt://` to `mqtts://`,
    /// `ws://` to `wss://`), as setting a TLS configuration does.
    pub fn use_tls(&mut self) {
        self.address.scheme = self.address.scheme.with_tls();
    }

    /// The underlying connection configuration, for what has no setter.
    pub fn session_config(&mut self) -> &mut ClientConfig {
        &mut self.config
    }

    /// The broker address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The options, checked: the first invalid option given is
    /// [`ConnectError::InvalidOption`].
    pub fn into_parts<E>(self) -> Result<ClientParts, ConnectError<E>> {
        if let Some((option, why)) = self.invalid {
            return Err(ConnectError::InvalidOption { option, why });
        }
        Ok(ClientParts {
            address: self.address,
            config: self.config,
            reconnect: self.reconnect,
            incoming_capacity: self.incoming_capacity,
        })
    }
}

/// Writes the setters of [`ClientOptions`] into an adapter's own
/// `ConnectOptions`, forwarding to its `ClientOptions` field `$field`, so
/// every adapter offers the same options with the same documentation.
#[macro_export]
macro_rules! client_options_setters {
    ($field:ident) => {
        /// The protocol version: `ProtocolVersion::V5` (default) or
        /// `ProtocolVersion::V311` (also 3.1).
        pub fn version(mut self, version: $crate::mqtt_codec::ProtocolVersion) -> Self {
            self.$field = self.$field.version(version);
            self
        }

        /// The client identifier; empty (the default) asks the server to
        /// assign one (5.0, or 3.1.1 with a clean session).
        pub fn client_id(mut self, id: &str) -> Self {
            self.$field = self.$field.client_id(id);
            self
        }

        /// Clean Start (5.0) / Clean Session (3.1.1); true by default.
        pub fn clean_start(mut self, clean: bool) -> Self {
            self.$field = self.$field.clean_start(clean);
            self
        }

        /// How long the server keeps the session after the connection ends,
        /// in seconds (5.0; 0, the default, ends it with the connection).
        /// With a non-zero interval, automatic reconnection resumes the
        /// session.
        pub fn session_expiry(mut self, seconds: u32) -> Self {
            self.$field = self.$field.session_expiry(seconds);
            self
        }

        /// Keep alive in seconds (0 turns it off); PINGREQ is sent on its
        /// own when nothing else was sent for that long.
        pub fn keep_alive(mut self, seconds: u16) -> Self {
            self.$field = self.$field.keep_alive(seconds);
            self
        }

        /// User name and optional password.
        pub fn credentials(mut self, username: &str, password: Option<&[u8]>) -> Self {
            self.$field = self.$field.credentials(username, password);
            self
        }

        /// The Last Will and Testament: published by the server if the
        /// connection ends without DISCONNECT. For 5.0 will properties (will
        /// delay interval, message expiry, content type, ...) see
        /// [`will_properties`](Self::will_properties).
        pub fn will(
            mut self,
            topic: &str,
            payload: impl Into<$crate::mqtt_codec::bytes::Bytes>,
            qos: $crate::mqtt_codec::QoS,
            retain: bool,
        ) -> Self {
            self.$field = self.$field.will(topic, payload, qos, retain);
            self
        }

        /// The 5.0 properties of the will set with [`will`](Self::will)
        /// (call that first), such as `will_delay_interval`.
        pub fn will_properties(mut self, props: $crate::mqtt_codec::WillProps) -> Self {
            self.$field = self.$field.will_properties(props);
            self
        }

        /// Receive Maximum (5.0): how many QoS 1/2 messages the server may
        /// have in flight to this client.
        pub fn receive_maximum(mut self, n: u16) -> Self {
            self.$field = self.$field.receive_maximum(n);
            self
        }

        /// Maximum Packet Size (5.0): the largest packet this client accepts.
        pub fn maximum_packet_size(mut self, bytes: u32) -> Self {
            self.$field = self.$field.maximum_packet_size(bytes);
            self
        }

        /// Topic Alias Maximum (5.0): the highest topic alias the server may
        /// use towards this client (0 turns aliases off).
        pub fn topic_alias_maximum(mut self, n: u16) -> Self {
            self.$field = self.$field.topic_alias_maximum(n);
            self
        }

        /// Adds a user property to CONNECT (5.0).
        pub fn user_property(mut self, name: &str, value: &str) -> Self {
            self.$field = self.$field.user_property(name, value);
            self
        }

        /// How long connecting may take: the transport's handshakes (TCP,
        /// and TLS or WebSocket where used) and CONNACK together (30 seconds
        /// by default).
        pub fn connect_timeout(mut self, timeout: ::core::time::Duration) -> Self {
            self.$field = self.$field.connect_timeout(timeout);
            self
        }

        /// Reconnects automatically after a lost connection, waiting between
        /// attempts as `backoff` says. With a persistent session (a session
        /// expiry under 5.0, clean start off under 3.1.1) the session resumes
        /// and what was in flight is resent, so publishes made before the
        /// outage complete after it; commands given meanwhile wait for the
        /// connection.
        pub fn reconnect(mut self, backoff: $crate::Backoff) -> Self {
            self.$field = self.$field.reconnect(backoff);
            self
        }

        /// How many received messages and events may wait for the
        /// application's `Incoming` (1024 by default). When that many wait,
        /// the client stops reading from the broker until some are taken, so
        /// a slow application costs bounded memory.
        pub fn incoming_capacity(mut self, n: usize) -> Self {
            self.$field = self.$field.incoming_capacity(n);
            self
        }

        /// The underlying `mqtt-session` configuration, for what has no
        /// setter here (limits such as the outgoing queue size, enhanced
        /// authentication, the PINGRESP timeout).
        pub fn session_config(&mut self) -> &mut $crate::ClientConfig {
            self.$field.session_config()
        }

        /// The broker address.
        pub fn address(&self) -> &$crate::Address {
            self.$field.address()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_option(o: ClientOptions) -> Option<String> {
        match o.into_parts::<()>() {
            Err(ConnectError::InvalidOption { option, .. }) => Some(option),
            _ => None,
        }
    }

    #[test]
    fn invalid_options_are_kept_for_connect() {
        let new = || ClientOptions::new("mqtt://h").unwrap();
        assert_eq!(
            invalid_option(new().client_id("a\0b")).as_deref(),
            Some("client_id")
        );
        assert_eq!(
            invalid_option(new().will("a/#", "x", QoS::AtMostOnce, false)).as_deref(),
            Some("will topic")
        );
        assert_eq!(
            invalid_option(new().will_properties(WillProps::default())).as_deref(),
            Some("will properties")
        );
        assert_eq!(
            invalid_option(new().receive_maximum(5).receive_maximum(0)).as_deref(),
            Some("receive_maximum")
        );
        assert_eq!(
            invalid_option(new().maximum_packet_size(0)).as_deref(),
            Some("maximum_packet_size")
        );
        assert_eq!(
            invalid_option(new().credentials("u\0", None)).as_deref(),
            Some("username")
        );
        assert_eq!(
            invalid_option(new().user_property("a", "b\0")).as_deref(),
            Some("user property")
        );
        // The first invalid option is the one reported.
        assert_eq!(
            invalid_option(new().client_id("\0").receive_maximum(0)).as_deref(),
            Some("client_id")
        );
    }

    #[test]
    fn valid_options_fill_the_configuration() {
        let parts = ClientOptions::new("mqtt://h")
            .unwrap()
            .client_id("ok")
            .version(ProtocolVersion::V311)
            .clean_start(false)
            .session_expiry(60)
            .keep_alive(5)
            .credentials("u", Some(b"p"))
            .will("a/b", "x", QoS::AtLeastOnce, true)
            .will_properties(WillProps::default())
            .receive_maximum(5)
            .maximum_packet_size(1000)
            .topic_alias_maximum(3)
            .user_property("k", "v")
            .connect_timeout(Duration::from_secs(2))
            .reconnect(Backoff::default())
            .incoming_capacity(0)
            .into_parts::<()>()
            .unwrap();
        let c = &parts.config;
        assert_eq!(c.client_id, "ok");
        assert_eq!(c.version, ProtocolVersion::V311);
        assert!(!c.clean_start);
        assert_eq!((c.session_expiry_interval, c.keep_alive), (60, 5));
        assert_eq!(c.username.as_ref().map(|u| u.as_str()), Some("u"));
        assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
        assert!(c
            .will
            .as_ref()
            .is_some_and(|w| w.retain && w.topic == "a/b"));
        assert_eq!(c.limits.receive_maximum, 5);
        assert_eq!(c.limits.max_packet_size, 1000);
        assert_eq!(c.limits.topic_alias_maximum, 3);
        assert_eq!(c.user_properties.len(), 1);
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert!(parts.reconnect.is_some());
        assert_eq!(parts.incoming_capacity, 1);
    }

    #[test]
    fn tls_switches_the_scheme_and_bad_addresses_fail() {
        let mut o = ClientOptions::new("ws://h").unwrap();
        o.use_tls();
        assert_eq!(o.address().scheme, crate::Scheme::WebSocketTls);
        o.session_config().keep_alive = 7;
        assert_eq!(o.into_parts::<()>().unwrap().config.keep_alive, 7);
        assert!(ClientOptions::new("http://h").is_err());
    }
}
