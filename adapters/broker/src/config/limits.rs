//! `[limits]`: every limit of the broker, each with its default.

use mqtt_router::broker::ClientLimits;
use serde::Deserialize;

/// Limits, each with its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most client connections at once (default 10000).
    pub max_connections: usize,
    /// Largest packet accepted, in bytes, fixed header included (default 1 MiB).
    pub max_packet_size: u32,
    /// QoS 1/2 messages in flight to one client (default 100).
    pub max_inflight: u16,
    /// QoS 1/2 messages from one client unacknowledged at once, announced as
    /// Receive Maximum (default 100).
    pub receive_maximum: u16,
    /// Messages queued per client beyond the in-flight window, online or
    /// offline (default 1000).
    pub max_queued_messages: usize,
    /// Of those, QoS 0 messages waiting for a connected client (default
    /// 1000): QoS 0 publishers cannot be slowed down by holding their
    /// acknowledgements, so this bounds what a subscriber that cannot keep up
    /// costs at QoS 0; the rest is dropped and counted, as Mosquitto does.
    pub max_queued_qos0_messages: usize,
    /// Bytes (topics, payloads, properties) the queued messages of one
    /// session may hold, beside their count; past it the `queue_full`
    /// policy applies as for the count (default 16 MiB; Mosquitto's
    /// `max_queued_bytes`, unlimited there by default).
    pub max_queued_bytes: usize,
    /// What to drop when a queue is full: `"oldest"` (default) or `"new"`.
    pub queue_full: String,
    /// Subscriptions one client may hold, shared ones included; more are
    /// refused with SUBACK 0x97 (3.1.1: 0x80). Default 10000.
    pub max_subscriptions_per_client: usize,
    /// Shared-subscription groups one client may join; more are refused
    /// with SUBACK 0x97 (3.1.1: 0x80). Default 100.
    pub max_shared_groups_per_client: usize,
    /// Levels in a topic name or filter (default 200, Mosquitto's fixed
    /// limit): filter past it, SUBACK 0x8F (3.1.1: 0x80); PUBLISH, PUBACK
    /// 0x90 (3.1.1: not forwarded); will, CONNACK 0x90 (3.1.1: closed).
    pub max_topic_levels: usize,
    /// User properties in one PUBLISH or will (default 100); past it 0x97.
    pub max_user_properties: usize,
    /// Bytes of properties (user properties, content type, response topic,
    /// correlation data) in one PUBLISH or will (default 64 KiB); past it 0x97.
    pub max_property_bytes: usize,
    /// Bytes (topic, payload, properties) of all retained messages
    /// (default 512 MiB); past it a retained publish gets 0x97 (3.1.1: not
    /// retained, counted).
    pub max_retained_bytes: usize,
    /// The same, for the retained messages one client identifier set
    /// (default 64 MiB).
    pub max_retained_bytes_per_client: usize,
    /// Bytes queued for all absent clients together (default 1 GiB); past
    /// it a message for an absent client is not queued (counted as dropped).
    pub max_offline_bytes: usize,
    /// Persistent sessions, connected or not (default 100000); a CONNECT
    /// that would create one more is refused with CONNACK 0x97 (3.1.1:
    /// 0x03 Server unavailable).
    pub max_persistent_sessions: usize,
    /// Highest topic alias a 5.0 client may use (default 16; 0: none).
    pub topic_alias_maximum: u16,
    /// Most topic aliases the broker assigns to the topics it sends a 5.0
    /// client that announces a Topic Alias Maximum (the smaller of the two
    /// applies; least recently used topics give way). Default 16; 0: none.
    pub outbound_topic_alias_maximum: u16,
    /// Highest keep alive granted, in seconds; 5.0 clients asking for more or
    /// for none get this (default 3600).
    pub max_keep_alive: u16,
    /// Seconds a client has to send CONNECT (default 10).
    pub connect_timeout: u64,
    /// Longest session expiry interval granted, in seconds (default 86400;
    /// 3.1.1 persistent sessions expire after this too).
    pub max_session_expiry: u32,
    /// Most retained messages kept (default 100000).
    pub max_retained: usize,
    /// Largest retained payload kept, in bytes (default 256 KiB).
    pub max_retained_payload: usize,
    /// Highest QoS accepted from publishers (default 2).
    pub maximum_qos: u8,
    /// Whether retained messages are accepted (default true).
    pub retain_available: bool,
    /// Whether control characters (U+0001–U+001F, U+007F–U+009F) are
    /// accepted in client identifiers, user names, will topics, topic names
    /// and topic filters (default false: refused as malformed, which section
    /// 1.5.4 allows, as Mosquitto does).
    pub allow_control_characters: bool,
    /// Whether the order across connections is kept (default true): a
    /// SUBSCRIBE whose bytes were seen before a message was routed gets
    /// that message, even when the core reaches it later (DESIGN.md,
    /// "Order across connections"). `false` turns the stamps and the late
    /// subscriber catch-up off.
    pub order_across_connections: bool,
    /// Seconds a packet may stay partly received without a byte of progress
    /// before a client with keep alive 0 is dropped (default 30; 5.0
    /// clients get DISCONNECT 0x8D, the will is published; with a keep
    /// alive, the keep alive bounds it).
    pub partial_packet_timeout: u64,
    /// Seconds a write to a client may make no progress (the client does
    /// not read) before the connection is dropped, as if the network failed
    /// (default 30; the will is published). A connection the broker closed
    /// is dropped after at most 5 seconds of such a write.
    pub write_timeout: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        // The core's defaults are the operator's defaults.
        let core = ClientLimits::default();
        LimitsConfig {
            max_connections: 10_000,
            max_packet_size: 1024 * 1024,
            max_inflight: 100,
            receive_maximum: 100,
            max_queued_messages: 1000,
            max_queued_qos0_messages: 1000,
            max_queued_bytes: mqtt_router::broker::DEFAULT_MAX_QUEUED_BYTES,
            queue_full: "oldest".to_string(),
            max_subscriptions_per_client: core.max_subscriptions,
            max_shared_groups_per_client: core.max_shared_groups,
            max_topic_levels: core.max_topic_levels,
            max_user_properties: core.max_user_properties,
            max_property_bytes: core.max_property_bytes,
            max_retained_bytes: core.max_retained_bytes,
            max_retained_bytes_per_client: core.max_retained_bytes_per_client,
            max_offline_bytes: core.max_offline_bytes,
            max_persistent_sessions: core.max_persistent_sessions,
            topic_alias_maximum: 16,
            outbound_topic_alias_maximum: 16,
            max_keep_alive: 3600,
            connect_timeout: 10,
            max_session_expiry: 86_400,
            max_retained: 100_000,
            max_retained_payload: 256 * 1024,
            maximum_qos: 2,
            retain_available: true,
            allow_control_characters: false,
            order_across_connections: true,
            partial_packet_timeout: 30,
            write_timeout: 30,
        }
    }
}
