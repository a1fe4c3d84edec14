//! Connect options every client adapter offers: the broker's address, what
//! CONNECT says, reconnection and the room for received messages, as one
//! builder over [`ClientConfig`]. The setters are those of [`OptionSetters`],
//! which [`ClientOptions`] implements and so does every adapter's own
//! `ConnectOptions` (which adds its transport's settings), so each offers
//! the same setters with the same documentation.

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use core::fmt::Display;
use core::time::Duration;

use bytes::Bytes;
use mqtt_session::mqtt_codec::{ProtocolVersion, QoS, Str, TopicName, Will, WillProps};
use mqtt_session::ClientConfig;

use crate::address::{Address, AddressError};
use crate::auth::{AuthMechanism, EnhancedAuth};
use crate::backoff::Backoff;
use crate::error::ConnectError;
use crate::scram::{ScramLogin, ScramMechanism};

/// The options a client adapter connects with. Built with the chained
/// setters of [`OptionSetters`]; a setter given an invalid value (a client
/// identifier with U+0000, a will topic with a wildcard) is remembered and
/// reported by [`into_parts`](ClientOptions::into_parts) as
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
    /// Enhanced authentication, and the option that asked for it.
    auth: Option<(&'static str, AuthMechanism)>,
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
    /// Enhanced authentication on every connection (SCRAM or the
    /// application's mechanism), if asked for
    /// ([`ClientDriver::with_auth`](crate::ClientDriver::with_auth)).
    pub auth: Option<AuthMechanism>,
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
            auth: None,
            invalid: None,
        })
    }

    /// Remembers the first invalid option, for [`into_parts`](Self::into_parts).
    fn invalid(&mut self, what: &str, why: impl Display) {
        if self.invalid.is_none() {
            self.invalid = Some((what.to_owned(), why.to_string()));
        }
    }

    /// Records that an adapter's own setter (a TLS file that cannot be
    /// read, say) was given an invalid value: like the setters of
    /// [`OptionSetters`], the first one makes
    /// [`into_parts`](Self::into_parts) fail with
    /// [`ConnectError::InvalidOption`].
    pub fn invalid_option(&mut self, option: &str, why: impl Display) {
        self.invalid(option, why);
    }

    /// The broker address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Switches the address to its TLS variant (`mqtt://` to `mqtts://`,
    /// `ws://` to `wss://`), as setting a TLS configuration does.
    pub fn use_tls(&mut self) {
        self.address.scheme = self.address.scheme.with_tls();
    }

    /// The options, checked: the first invalid option given is
    /// [`ConnectError::InvalidOption`].
    pub fn into_parts(self) -> Result<ClientParts, ConnectError> {
        if let Some((option, why)) = self.invalid {
            return Err(ConnectError::InvalidOption { option, why });
        }
        if let Some((option, _)) = &self.auth {
            if self.config.version != ProtocolVersion::V5 {
                return Err(ConnectError::InvalidOption {
                    option: (*option).to_owned(),
                    why: "enhanced authentication needs MQTT 5.0".to_owned(),
                });
            }
        }
        Ok(ClientParts {
            address: self.address,
            config: self.config,
            reconnect: self.reconnect,
            incoming_capacity: self.incoming_capacity,
            auth: self.auth.map(|(_, auth)| auth),
        })
    }
}

/// The connect options' setters, written once: on [`ClientOptions`] and on
/// every type that carries one (each adapter's `ConnectOptions`), which
/// provides [`client_options`](OptionSetters::client_options) and gets the
/// rest. Bring the trait into scope to chain them:
/// ```
/// use mqtt_client::{ClientOptions, OptionSetters};
///
/// let options = ClientOptions::new("mqtt://127.0.0.1:1883")?
///     .client_id("sensor-1")
///     .keep_alive(30);
/// assert_eq!(options.address().port, 1883);
/// # Ok::<(), mqtt_client::AddressError>(())
/// ```
pub trait OptionSetters: Sized {
    /// The options the setters change.
    fn client_options(&mut self) -> &mut ClientOptions;

    /// The protocol version: `ProtocolVersion::V5` (default) or
    /// `ProtocolVersion::V311` (also 3.1).
    fn version(mut self, version: ProtocolVersion) -> Self {
        self.client_options().config.version = version;
        self
    }

    /// The client identifier; empty (the default) asks the server to
    /// assign one (5.0, or 3.1.1 with a clean session).
    fn client_id(mut self, id: &str) -> Self {
        let o = self.client_options();
        match Str::try_from(id) {
            Ok(s) => o.config.client_id = s,
            Err(e) => o.invalid("client_id", e),
        }
        self
    }

    /// Clean Start (5.0) / Clean Session (3.1.1); true by default.
    fn clean_start(mut self, clean: bool) -> Self {
        self.client_options().config.clean_start = clean;
        self
    }

    /// How long the server keeps the session after the connection ends,
    /// in seconds (5.0; 0, the default, ends it with the connection).
    /// With a non-zero interval, automatic reconnection resumes the
    /// session.
    fn session_expiry(mut self, seconds: u32) -> Self {
        self.client_options().config.session_expiry_interval = seconds;
        self
    }

    /// Keep alive in seconds (0 turns it off); PINGREQ is sent on its
    /// own when nothing else was sent for that long.
    fn keep_alive(mut self, seconds: u16) -> Self {
        self.client_options().config.keep_alive = seconds;
        self
    }

    /// User name and optional password.
    fn credentials(mut self, username: &str, password: Option<&[u8]>) -> Self {
        let o = self.client_options();
        match Str::try_from(username) {
            Ok(s) => {
                o.config.username = Some(s);
                o.config.password = password.map(Bytes::copy_from_slice);
            }
            Err(e) => o.invalid("username", e),
        }
        self
    }

    /// The Last Will and Testament: published by the server if the
    /// connection ends without DISCONNECT. For 5.0 will properties (will
    /// delay interval, message expiry, content type, ...) see
    /// [`will_properties`](Self::will_properties).
    fn will(mut self, topic: &str, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Self {
        let o = self.client_options();
        match TopicName::try_from(topic) {
            Ok(topic) => {
                o.config.will = Some(Will {
                    topic,
                    payload: payload.into(),
                    qos,
                    retain,
                    props: WillProps::default(),
                });
            }
            Err(e) => o.invalid("will topic", e),
        }
        self
    }

    /// The 5.0 properties of the will set with [`will`](Self::will)
    /// (call that first), such as `will_delay_interval`.
    fn will_properties(mut self, props: WillProps) -> Self {
        let o = self.client_options();
        match o.config.will.as_mut() {
            Some(will) => will.props = props,
            None => o.invalid("will properties", "no will was set before them"),
        }
        self
    }

    /// Receive Maximum (5.0): how many QoS 1/2 messages the server may
    /// have in flight to this client; at least 1.
    fn receive_maximum(mut self, n: u16) -> Self {
        let o = self.client_options();
        if n == 0 {
            o.invalid("receive_maximum", "it must be at least 1");
        } else {
            o.config.limits.receive_maximum = n;
        }
        self
    }

    /// Maximum Packet Size (5.0): the largest packet this client accepts;
    /// at least 1.
    fn maximum_packet_size(mut self, bytes: u32) -> Self {
        let o = self.client_options();
        if bytes == 0 {
            o.invalid("maximum_packet_size", "it must be at least 1");
        } else {
            o.config.limits.max_packet_size = bytes;
        }
        self
    }

    /// Topic Alias Maximum (5.0): the highest topic alias the server may
    /// use towards this client (0 turns aliases off).
    fn topic_alias_maximum(mut self, n: u16) -> Self {
        self.client_options().config.limits.topic_alias_maximum = n;
        self
    }

    /// Adds a user property to CONNECT (5.0).
    fn user_property(mut self, name: &str, value: &str) -> Self {
        let o = self.client_options();
        match (Str::try_from(name), Str::try_from(value)) {
            (Ok(n), Ok(v)) => o.config.user_properties.push((n, v)),
            (Err(e), _) | (_, Err(e)) => o.invalid("user property", e),
        }
        self
    }

    /// How long connecting may take: the transport's handshakes (TCP,
    /// and TLS or WebSocket where used) and CONNACK together (30 seconds
    /// by default).
    fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.client_options().config.connect_timeout = timeout;
        self
    }

    /// Reconnects automatically after a lost connection, waiting between
    /// attempts as `backoff` says. With a persistent session (a session
    /// expiry under 5.0, clean start off under 3.1.1) the session resumes
    /// and what was in flight is resent, so publishes made before the
    /// outage complete after it; commands given meanwhile wait for the
    /// connection.
    fn reconnect(mut self, backoff: Backoff) -> Self {
        self.client_options().reconnect = Some(backoff);
        self
    }

    /// Manual acknowledgement (off by default): a received QoS 1/2 message
    /// is not acknowledged to the broker until the application hands the
    /// `ack` token of its [`Event::Message`](crate::Event::Message) to the
    /// client's `ack`, so a message whose handling never finished (the
    /// application crashed, the connection broke) is sent again by the
    /// broker on a resumed session. Acknowledgements leave in the order the
    /// messages arrived, as MQTT requires [MQTT-4.6.0-2] [MQTT-4.6.0-3]: one
    /// given early waits for those before it. At most
    /// [`receive_maximum`](Self::receive_maximum) messages (100 by default)
    /// may wait for their acknowledgement; under 3.1.1, which cannot tell
    /// the broker, a broker that sends more is disconnected.
    fn manual_acks(mut self, on: bool) -> Self {
        self.client_options().config.manual_acks = on;
        self
    }

    /// How many received messages and events may wait for the
    /// application's `Incoming` (1024 by default, at least 1). When that
    /// many wait, the client stops reading from the broker until some are
    /// taken, so a slow application costs bounded memory.
    fn incoming_capacity(mut self, n: usize) -> Self {
        self.client_options().incoming_capacity = n.max(1);
        self
    }

    /// Logs in with SCRAM-SHA-256 (RFC 7677) as `user` with `password`:
    /// MQTT 5.0 enhanced authentication, on every connection, with a fresh
    /// random nonce each time. The password never goes over the wire, and
    /// the client checks that the broker knows the credential too (a
    /// CONNACK without the right server signature ends the connection). The
    /// broker needs the user's SCRAM credential (`mqtt-broker passwd
    /// --scram sha256`).
    fn scram(self, user: &str, password: &str) -> Self {
        self.scram_with(ScramMechanism::Sha256, user, password.as_bytes())
    }

    /// [`scram`](Self::scram) with another mechanism (SCRAM-SHA-512) or a
    /// password that is not text.
    fn scram_with(mut self, mechanism: ScramMechanism, user: &str, password: &[u8]) -> Self {
        let o = self.client_options();
        match ScramLogin::new(mechanism, user, password) {
            Ok(login) => o.auth = Some(("scram", AuthMechanism::new(login))),
            Err(e) => o.invalid("scram", e),
        }
        self
    }

    /// MQTT 5.0 enhanced authentication (section 4.12) with the
    /// application's own mechanism, on every connection: its Authentication
    /// Method and first data go in CONNECT, it answers each AUTH 0x18 of
    /// the broker, and it checks the CONNACK's data (a refusal ends the
    /// connection with DISCONNECT, and `connect` fails with
    /// [`ConnectError::Authentication`]). Replaces [`scram`](Self::scram);
    /// needs MQTT 5.0. Each copy of the options gets its own copy of
    /// `auth` (hence `Clone`); a mechanism that needs a nonce says so with
    /// [`random_len`](EnhancedAuth::random_len) and gets fresh randomness
    /// from the adapter on each connection.
    fn enhanced_auth(mut self, auth: impl EnhancedAuth + Clone + 'static) -> Self {
        let o = self.client_options();
        match Str::<Bytes>::try_from(auth.method()) {
            Ok(method) if !method.is_empty() => {
                o.auth = Some(("enhanced_auth", AuthMechanism::new(auth)));
            }
            Ok(_) => o.invalid("enhanced_auth", "the Authentication Method is empty"),
            Err(e) => o.invalid("enhanced_auth", e),
        }
        self
    }

    /// The underlying `mqtt-session` configuration, for what has no
    /// setter here (limits such as the outgoing queue size, the PINGRESP
    /// timeout).
    fn session_config(&mut self) -> &mut ClientConfig {
        &mut self.client_options().config
    }
}

impl OptionSetters for ClientOptions {
    fn client_options(&mut self) -> &mut ClientOptions {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_option(o: ClientOptions) -> Option<String> {
        match o.into_parts() {
            Err(ConnectError::InvalidOption { option, .. }) => Some(option),
            Ok(_) | Err(_) => None,
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
            .into_parts()
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
        assert_eq!(o.into_parts().unwrap().config.keep_alive, 7);
        assert!(ClientOptions::new("http://h").is_err());
    }
}
