//! Configuration of a connection, for each role.

use core::time::Duration;

use bytes::Bytes;
use mqtt_codec::{ProtocolVersion, QoS, Str, UserProperties, Will, MAX_PACKET_SIZE};

/// Limits this side imposes on itself and on its peer; the same for both roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How many QoS 1/2 publishes from the peer may be unacknowledged at once
    /// (announced as Receive Maximum under 5.0; a peer that exceeds it is
    /// disconnected with 0x93).
    pub receive_maximum: u16,
    /// The largest packet accepted from the peer (announced under 5.0); larger
    /// ones are refused from their fixed header alone.
    pub max_packet_size: u32,
    /// The highest topic alias the peer may use (5.0; 0 turns aliases off).
    pub topic_alias_maximum: u16,
    /// This side's own cap on QoS 1/2 publishes in flight to the peer. Under
    /// 5.0 the window is the smaller of this and the peer's Receive Maximum;
    /// under 3.1/3.1.1, which have no Receive Maximum, it is this value.
    pub max_inflight: u16,
    /// The bounded outgoing queue: messages waiting for the in-flight window
    /// plus QoS 0 publishes not yet written. When it is full, publishing or
    /// delivering fails with `QueueFull` instead of growing memory.
    pub max_queued: usize,
    /// Of those, how many QoS 0 publishes may wait (never more than
    /// `max_queued`): QoS 0 has no acknowledgement to slow its publisher
    /// down, so this is what bounds the memory a subscriber that cannot keep
    /// up costs at QoS 0; what does not fit is dropped (`QueueFull`), as
    /// MQTT allows for QoS 0 (default 1000).
    pub max_queued_qos0: usize,
    /// The most bytes the queued messages of one session may hold (topics,
    /// payloads and properties: `Message::held_bytes`), beside their count:
    /// a message that would pass it is refused like one past `max_queued`
    /// (`QueueFull`). Default: no limit.
    pub max_queued_bytes: usize,
    /// Most topic aliases this side assigns to outgoing publishes (5.0),
    /// least recently used topics giving way, within the peer's Topic Alias
    /// Maximum; 0 (the default) assigns none. Each alias holds a copy of its
    /// topic, so this bounds the memory a peer announcing a large maximum
    /// can make a connection hold.
    pub outbound_topic_alias_maximum: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            receive_maximum: 100,
            max_packet_size: 1024 * 1024,
            topic_alias_maximum: 16,
            max_inflight: 100,
            max_queued: 1000,
            max_queued_qos0: 1000,
            max_queued_bytes: usize::MAX,
            outbound_topic_alias_maximum: 0,
        }
    }
}

impl Limits {
    /// Limits that never refuse anything the protocol allows.
    pub fn unlimited() -> Self {
        Limits {
            receive_maximum: u16::MAX,
            max_packet_size: MAX_PACKET_SIZE,
            topic_alias_maximum: u16::MAX,
            max_inflight: u16::MAX,
            max_queued: usize::MAX,
            max_queued_qos0: usize::MAX,
            max_queued_bytes: usize::MAX,
            outbound_topic_alias_maximum: 0,
        }
    }
}

/// Configuration of the client side of a connection.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The protocol version to speak.
    pub version: ProtocolVersion,
    /// The client identifier; empty asks the server to assign one (5.0, or
    /// 3.1.1 with a clean session).
    pub client_id: Str,
    /// Clean Start (5.0) / Clean Session (3.1.1).
    pub clean_start: bool,
    /// Keep alive in seconds (0: off).
    pub keep_alive: u16,
    /// How long the session outlives the connection, in seconds (5.0).
    pub session_expiry_interval: u32,
    /// The Last Will and Testament.
    pub will: Option<Will>,
    /// User name.
    pub username: Option<Str>,
    /// Password.
    pub password: Option<Bytes>,
    /// User properties of the CONNECT (5.0).
    pub user_properties: UserProperties,
    /// Mark the CONNECT as a 3.1/3.1.1 bridge's (Mosquitto's `try_private`:
    /// the protocol level's top bit), so that the server does not send the
    /// bridge its own publications back. Ignored under 5.0, where a bridge
    /// subscribes with No Local (default false).
    pub bridge: bool,
    /// Whether the server may send reason strings and user properties on
    /// acknowledgements (5.0 Request Problem Information; default true). When
    /// false they only come on PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29].
    pub request_problem_information: bool,
    /// Enhanced authentication method and initial data (5.0).
    pub authentication: Option<(Str, Option<Bytes>)>,
    /// Local limits.
    pub limits: Limits,
    /// How long to wait for CONNACK.
    pub connect_timeout: Duration,
    /// How long to wait for PINGRESP after a PINGREQ before giving up.
    pub ping_timeout: Duration,
    /// Manual acknowledgement (default false): a received QoS 1/2 message
    /// is not answered until the application calls
    /// [`Connection::ack`](crate::Connection::ack) with its packet
    /// identifier. Answers still go out in the order the messages arrived
    /// [MQTT-4.6.0-2] [MQTT-4.6.0-3]: an early acknowledgement waits for
    /// those of the messages before it. What is not acknowledged when the
    /// connection ends is not acknowledged at all, so a server that keeps
    /// the session sends it again. The unanswered messages are bounded by
    /// `limits.receive_maximum` under every version (under 3.1.1, which has
    /// no Receive Maximum, a server that sends more is disconnected).
    pub manual_acks: bool,
}

impl ClientConfig {
    /// A configuration with the given version and client identifier, clean
    /// start, a 60-second keep alive and default limits.
    pub fn new(version: ProtocolVersion, client_id: Str) -> Self {
        ClientConfig {
            version,
            client_id,
            clean_start: true,
            keep_alive: 60,
            session_expiry_interval: 0,
            will: None,
            username: None,
            password: None,
            user_properties: UserProperties::new(),
            request_problem_information: true,
            bridge: false,
            authentication: None,
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(30),
            manual_acks: false,
        }
    }
}

impl ClientConfig {
    /// Whether the server keeps this client's session after the connection
    /// ends, so that a new connection can resume it: under 5.0 a non-zero
    /// Session Expiry Interval (the one CONNACK set, when `caps` is given),
    /// under 3.1/3.1.1 Clean Session 0.
    pub fn keeps_session(&self, caps: Option<&ServerCaps>) -> bool {
        if self.version.is_v5() {
            caps.map_or(self.session_expiry_interval, |c| c.session_expiry_interval) > 0
        } else {
            !self.clean_start
        }
    }

    /// The configuration of the next connection after this one was lost:
    /// Clean Start 0 when the server keeps the session, so it resumes
    /// [MQTT-3.1.2-5]; and the client identifier the server assigned (in
    /// `caps`, from the last CONNACK), since the session belongs to it.
    /// With that connection, pass the session taken from the old one:
    /// ```text
    /// let session = conn.take_session();                 // in flight + queued
    /// let next = config.for_resumption(caps.as_ref());   // caps from the last Connected
    /// conn = Connection::<Client>::new(next, now, session);
    /// ```
    pub fn for_resumption(&self, caps: Option<&ServerCaps>) -> ClientConfig {
        let mut next = self.clone();
        if self.keeps_session(caps) {
            next.clean_start = false;
        }
        if let Some(id) = caps.and_then(|c| c.assigned_client_identifier.as_ref()) {
            next.client_id = id.clone();
        }
        next
    }
}

/// Configuration of the server side of a connection.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Local limits (announced in CONNACK under 5.0).
    pub limits: Limits,
    /// Time from the transport's opening to CONNACK: a client that sends no
    /// CONNECT, or a CONNECT the application leaves unanswered, is dropped then.
    pub connect_timeout: Duration,
    /// The highest QoS accepted from clients (announced as Maximum QoS).
    pub maximum_qos: QoS,
    /// Whether retained messages are accepted (announced as Retain Available).
    pub retain_available: bool,
    /// The largest keep alive a client may ask for; a larger or zero one is
    /// replaced by this through Server Keep Alive (5.0). `None`: any.
    pub max_keep_alive: Option<u16>,
    /// Whether control characters (U+0001–U+001F, U+007F–U+009F) are
    /// accepted in client identifiers, user names, will topics, topic names
    /// and topic filters. Section 1.5.4 says they SHOULD NOT be sent and a
    /// receiver MAY treat them as malformed; by default (`false`) they are,
    /// as Mosquitto does: the connection closes (5.0: DISCONNECT 0x81; a
    /// CONNECT gets no CONNACK).
    pub allow_control_characters: bool,
    /// How long a packet may stay partly received without a byte of
    /// progress before a client with keep alive 0 is dropped (5.0:
    /// DISCONNECT 0x8D, as for a keep alive that expired; the will is
    /// published). Without it such a client that sends half a packet would
    /// hold its connection, and what it sent, for ever; with a keep alive,
    /// the keep alive bounds it.
    pub partial_packet_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(10),
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            max_keep_alive: None,
            allow_control_characters: false,
            partial_packet_timeout: Duration::from_secs(30),
        }
    }
}

/// What the server announced in CONNACK: the limits a client must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCaps {
    /// How many QoS 1/2 publishes the server accepts in flight.
    pub receive_maximum: u16,
    /// The highest QoS the server accepts.
    pub maximum_qos: QoS,
    /// Whether the server accepts retained messages.
    pub retain_available: bool,
    /// The largest packet the server accepts.
    pub maximum_packet_size: u32,
    /// The highest topic alias the server accepts.
    pub topic_alias_maximum: u16,
    /// Whether wildcard subscriptions are supported.
    pub wildcard_subscription_available: bool,
    /// Whether subscription identifiers are supported.
    pub subscription_identifiers_available: bool,
    /// Whether shared subscriptions are supported.
    pub shared_subscription_available: bool,
    /// The keep alive in force (the server's, if it set one).
    pub keep_alive: u16,
    /// The client identifier the server assigned, if the client sent an empty one.
    pub assigned_client_identifier: Option<Str>,
    /// The session expiry interval in force.
    pub session_expiry_interval: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{ProtocolVersion, QoS, Str};

    fn caps(session_expiry_interval: u32, assigned: Option<&'static str>) -> ServerCaps {
        ServerCaps {
            receive_maximum: 10,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            maximum_packet_size: 1000,
            topic_alias_maximum: 0,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            keep_alive: 60,
            assigned_client_identifier: assigned.map(Str::from_static),
            session_expiry_interval,
        }
    }

    #[test]
    fn resumption_asks_for_the_session_only_when_the_server_keeps_it() {
        let mut v5 = ClientConfig::new(ProtocolVersion::V5, Str::from_static(""));
        v5.session_expiry_interval = 60;
        let next = v5.for_resumption(Some(&caps(60, Some("auto-1"))));
        assert!(!next.clean_start);
        assert_eq!(next.client_id, "auto-1");
        // CONNACK cut the expiry to 0: nothing to resume.
        assert!(v5.for_resumption(Some(&caps(0, None))).clean_start);
        // Before any CONNACK, the configured interval counts.
        assert!(!v5.for_resumption(None).clean_start);

        let mut v311 = ClientConfig::new(ProtocolVersion::V311, Str::from_static("c"));
        assert!(v311.for_resumption(None).clean_start);
        v311.clean_start = false;
        let next = v311.for_resumption(Some(&caps(0, None)));
        assert!(!next.clean_start);
        assert_eq!(next.client_id, "c");
    }
}
