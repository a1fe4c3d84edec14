//! Broker-wide configuration.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use mqtt_session::{Limits, ServerConfig};

use super::Rights;
use crate::SharedStrategy;

/// What to do when a message arrives for a session whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueFullPolicy {
    /// Drop the oldest queued QoS 0 message, else the oldest of any QoS, to
    /// make room; the new message is kept. Every drop is counted.
    #[default]
    DropOldest,
    /// Keep what is queued and drop the new message (a 5.0 publisher whose
    /// message reached nobody else hears 0x97 Quota exceeded); only a queued
    /// QoS 0 message gives way, to a new QoS 1/2 one. Every drop is counted.
    DropNew,
}

/// A queue the queue-full policy makes room in: a detached session's, or a
/// bridge's.
pub(super) trait MakeRoom {
    /// Drops the oldest queued QoS 0 message; false if there is none.
    fn drop_oldest_qos0(&mut self) -> bool;
    /// Drops the oldest queued message of any QoS; false if there is none.
    fn drop_oldest(&mut self) -> bool;
}

impl QueueFullPolicy {
    /// At the limit, makes room for a new message of `qos` by the policy:
    /// queued QoS 0 messages give way first (to a QoS 1/2 message under
    /// `DropNew`, which otherwise keeps what is queued); `DropOldest` then
    /// drops the oldest of any QoS. Either way exactly one message is
    /// dropped: the one this removes, or the new one when it returns false.
    pub(super) fn make_room(self, qos: mqtt_codec::QoS, queue: &mut impl MakeRoom) -> bool {
        match self {
            QueueFullPolicy::DropOldest => queue.drop_oldest_qos0() || queue.drop_oldest(),
            QueueFullPolicy::DropNew => {
                qos != mqtt_codec::QoS::AtMostOnce && queue.drop_oldest_qos0()
            }
        }
    }
}

impl MakeRoom for mqtt_session::Session {
    fn drop_oldest_qos0(&mut self) -> bool {
        mqtt_session::Session::drop_oldest_qos0(self)
    }

    fn drop_oldest(&mut self) -> bool {
        mqtt_session::Session::drop_oldest(self)
    }
}

/// Configuration of a [`Broker`](super::Broker); every limit has a default.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Seeds every hash table and random choice (tests fix it; a broker
    /// binary draws it from the operating system).
    pub seed: u64,
    /// Limits and timeouts of each client connection.
    pub server: ServerConfig,
    /// Most connections open at once; more are refused at `open`.
    pub max_connections: usize,
    /// Cap on a session's expiry interval, in seconds (`u32::MAX`: no cap).
    pub max_session_expiry: u32,
    /// Most retained messages kept.
    pub max_retained: usize,
    /// Largest retained payload kept, in bytes.
    pub max_retained_payload: usize,
    /// What to do when a session's queue is full.
    pub queue_full: QueueFullPolicy,
    /// How often the `$SYS/broker/...` statistics are published; `None`: never.
    pub sys_interval: Option<Duration>,
    /// Reported as `$SYS/broker/version`.
    pub version: String,
    /// How shared subscription groups pick a member.
    pub shared_strategy: SharedStrategy,
    /// The per-client and broker-wide limits that keep one client from
    /// hurting the others.
    pub limits: ClientLimits,
    /// Whether and how clients authenticate (see [`AuthConfig`]).
    pub auth: AuthConfig,
    /// Flow control pauses publishers, not only their acknowledgements
    /// (default false): from a publisher's first acknowledgement held by a
    /// subscriber past its high-water mark, the rest of its input waits in
    /// the core, [`Broker::poll_reading`](super::Broker::poll_reading) asks
    /// the adapter to stop reading it, and any publish that would reach such
    /// a subscriber waits unrouted until it drains. Without it, publishers
    /// with more unacknowledged messages than the headroom above the
    /// high-water mark (3.1.1 publishers have no Receive Maximum) overrun a
    /// subscriber that reads as fast as it can. A waiting publish is routed
    /// when it is taken up, not when it arrived (the broker takes ownership
    /// then, [MQTT-4.5.0-1]); `mqtt-sim`'s oracle models that
    /// ([`Broker::input_waiting`](super::Broker::input_waiting)) and its
    /// random scenarios draw this setting. Off by default (the core's tests
    /// that count on routing on arrival); the `mqtt-broker` binary turns it
    /// on.
    pub pause_publishers: bool,
}

/// Authentication: whether each CONNECT waits for the driver's answer, and
/// which enhanced authentication methods (5.0) the driver implements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Every CONNECT becomes an [`AuthRequest`](super::AuthRequest) the
    /// driver answers; off, a CONNECT without an Authentication Method is
    /// accepted at once with every right (the user name it names is taken
    /// as it is).
    pub required: bool,
    /// The Authentication Methods the driver implements (5.0 enhanced
    /// authentication, section 4.12). A CONNECT naming any other is refused
    /// with CONNACK 0x8C Bad authentication method [MQTT-4.12.0-1]; one
    /// naming one of these always becomes a request.
    pub methods: Vec<String>,
}

impl AuthConfig {
    /// The rights of a session whose owner has not authenticated since the
    /// broker started (one restored from a store): every right without
    /// authentication, none with it until the driver says otherwise
    /// ([`Broker::set_session_rights`](super::Broker::set_session_rights))
    /// or the owner connects again.
    pub fn unknown_rights(&self) -> Rights {
        if self.required {
            Rights::deny_all()
        } else {
            Rights::allow_all()
        }
    }
}

/// Limits on what one client may make the broker hold or do, and on what
/// all of them together may hold; each is counted in [`Stats`](super::Stats)
/// when hit. The per-session queue's byte limit is
/// [`Limits::max_queued_bytes`] in [`BrokerConfig::server`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLimits {
    /// Most subscriptions one client holds (shared ones included); a
    /// SUBSCRIBE's filters past it are refused with 0x97 Quota exceeded.
    pub max_subscriptions: usize,
    /// Most shared-subscription groups one client is a member of; past it,
    /// 0x97 Quota exceeded.
    pub max_shared_groups: usize,
    /// Most levels in a topic name or filter (Mosquitto's fixed limit is
    /// 200). A filter past it gets 0x8F Topic Filter invalid; a PUBLISH,
    /// 0x90 Topic Name invalid; a will, CONNACK 0x97 Quota exceeded.
    pub max_topic_levels: usize,
    /// Most user properties one PUBLISH or will carries; past it the
    /// message is refused with 0x97 Quota exceeded.
    pub max_user_properties: usize,
    /// Most bytes of properties one PUBLISH or will carries (user
    /// properties, content type, response topic, correlation data); past it
    /// the message is refused with 0x97 Quota exceeded.
    pub max_property_bytes: usize,
    /// Most bytes (topic, payload and properties) of the retained messages
    /// one client identifier set; past it the retained message is refused.
    pub max_retained_bytes_per_client: usize,
    /// Most bytes of all retained messages together.
    pub max_retained_bytes: usize,
    /// Most bytes the queues of all sessions whose client is away hold
    /// together; a message past it is not queued (counted as dropped).
    pub max_offline_bytes: usize,
    /// Most persistent sessions (a session expiry above zero, connected or
    /// not): a CONNECT that would create one more is refused with 0x97
    /// Quota exceeded (3.1.1: 0x03 Server unavailable).
    pub max_persistent_sessions: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_subscriptions: 10_000,
            max_shared_groups: 100,
            max_topic_levels: 200,
            max_user_properties: 100,
            max_property_bytes: 64 * 1024,
            max_retained_bytes_per_client: 64 * 1024 * 1024,
            max_retained_bytes: 512 * 1024 * 1024,
            max_offline_bytes: 1024 * 1024 * 1024,
            max_persistent_sessions: 100_000,
        }
    }
}

/// The queue byte limit a broker's sessions get unless configured: 16 MiB
/// (with the default 1,000 messages of up to 1 MiB, a queue could
/// otherwise hold 1 GiB).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            seed: 0,
            server: ServerConfig {
                limits: Limits {
                    max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
                    ..Limits::default()
                },
                ..ServerConfig::default()
            },
            max_connections: 100_000,
            max_session_expiry: u32::MAX,
            max_retained: 1_000_000,
            max_retained_payload: 256 * 1024,
            queue_full: QueueFullPolicy::default(),
            sys_interval: Some(Duration::from_secs(10)),
            version: String::from(concat!("mqtt-router ", env!("CARGO_PKG_VERSION"))),
            shared_strategy: SharedStrategy::default(),
            auth: AuthConfig::default(),
            limits: ClientLimits::default(),
            pause_publishers: false,
        }
    }
}
