//! Broker-wide configuration.

use alloc::string::String;
use core::time::Duration;

use mqtt_session::ServerConfig;

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
    /// Flow control pauses publishers, not only their acknowledgements
    /// (default false): from a publisher's first acknowledgement held by a
    /// subscriber past its high-water mark, the rest of its input waits in
    /// the core, [`Broker::poll_reading`](super::Broker::poll_reading) asks
    /// the adapter to stop reading it, and any publish that would reach such
    /// a subscriber waits unrouted until it drains. Without it, publishers
    /// with more unacknowledged messages than the headroom above the
    /// high-water mark (3.1.1 publishers have no Receive Maximum) overrun a
    /// subscriber that reads as fast as it can. Off by default because a
    /// waiting publish is routed when it is released, not when it arrived:
    /// `mqtt-sim`'s oracle models routing on arrival and does not model this
    /// yet. The `mqtt-broker` binary turns it on.
    pub pause_publishers: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            seed: 0,
            server: ServerConfig::default(),
            max_connections: 100_000,
            max_session_expiry: u32::MAX,
            max_retained: 1_000_000,
            max_retained_payload: 256 * 1024,
            queue_full: QueueFullPolicy::default(),
            sys_interval: Some(Duration::from_secs(10)),
            version: String::from(concat!("mqtt-router ", env!("CARGO_PKG_VERSION"))),
            shared_strategy: SharedStrategy::default(),
            pause_publishers: false,
        }
    }
}
