//! The bridge API's plain data: ids, what the driver takes and reports,
//! options, outcomes, counters and errors.

use alloc::sync::Arc;
use alloc::vec::Vec;

use mqtt_codec::{QoS, ReasonCode};
use mqtt_session::Message;

use super::BRIDGE_KEY;
use crate::broker::{Rights, SessionKey};
// What the documentation links to.
#[cfg(doc)]
use crate::broker::Broker;

/// Identifies one bridge; stale once the bridge is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BridgeId {
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl BridgeId {
    /// The bridge's key in the subscription index.
    pub(in crate::broker) fn key(self) -> SessionKey {
        BRIDGE_KEY | self.index
    }
}

/// Names one message handed to a bridge's driver by
/// [`Broker::poll_bridge`], until [`Broker::bridge_settled`] says what
/// became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BridgeToken(pub(super) u64);

/// A message for the remote broker, from [`Broker::poll_bridge`].
#[derive(Debug, Clone)]
#[must_use = "the message must be sent and then settled with Broker::bridge_settled"]
pub struct BridgeMessage {
    /// The message as published here (local topic), shared with every
    /// other subscriber it reached.
    pub message: Arc<Message>,
    /// The QoS to send it with: the lower of the message's and the
    /// bridge's subscription's.
    pub qos: QoS,
    /// The RETAIN flag to send: as published (bridges subscribe with Retain
    /// As Published, as Mosquitto's bridges carry retained messages), and
    /// set for retained messages queued when the bridge opened.
    pub retain: bool,
    /// What to settle it with.
    pub token: BridgeToken,
}

/// What became of a message a bridge's driver took, for
/// [`Broker::bridge_settled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeOutcome {
    /// The remote broker took it (acknowledged it, or it was written at
    /// QoS 0): counted as sent.
    Delivered,
    /// It will not reach the remote broker (refused there, or the driver
    /// cannot carry it): counted as dropped.
    Dropped,
    /// It did not reach the remote broker and should be sent again (the
    /// connection that carried it is gone): queued again in its place.
    Retry,
}

/// The state of a bridge's connection to the remote broker, as its driver
/// reports it ([`Broker::set_bridge_state`]) and `$SYS` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BridgeState {
    /// Connecting, or waiting to reconnect (where a bridge starts).
    #[default]
    Reconnecting,
    /// Connected to the remote broker.
    Connected,
    /// The bridge has stopped (the broker is shutting down).
    Stopped,
}

impl BridgeState {
    /// The name `$SYS/broker/bridges/<name>/state` shows.
    pub const fn as_str(self) -> &'static str {
        match self {
            BridgeState::Reconnecting => "reconnecting",
            BridgeState::Connected => "connected",
            BridgeState::Stopped => "stopped",
        }
    }
}

/// How a bridge is set up besides its name and subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeOptions {
    /// What the bridge may carry, as for a client: the subscriptions it
    /// makes, what it brings in (publish), and each message routed to it
    /// (read). Every right by default (Mosquitto applies no ACL to bridges).
    pub rights: Rights,
    /// Most messages that may wait for the bridge at once: queued in the
    /// core, or taken by the driver and not yet settled. At least 1.
    pub queue_limit: usize,
    /// Most messages the driver may have taken and not yet settled (the
    /// remote end's window, like a Receive Maximum). Messages are handed
    /// out only while the bridge is connected and within this window; the
    /// rest wait in the core, where the queue-full policy applies to them.
    /// At least 1.
    pub max_in_flight: usize,
}

impl BridgeOptions {
    /// No user name, room for `queue_limit` messages, and a window of 100
    /// in flight.
    pub fn new(queue_limit: usize) -> BridgeOptions {
        BridgeOptions {
            rights: Rights::allow_all(),
            queue_limit,
            max_in_flight: 100,
        }
    }
}

impl Default for BridgeOptions {
    /// Room for 10,000 messages, as Mosquitto's default bridge queue.
    fn default() -> Self {
        BridgeOptions::new(10_000)
    }
}

/// A bridge the broker opened ([`Broker::open_bridge`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenedBridge {
    /// The bridge.
    pub id: BridgeId,
    /// One result per subscription asked for, in order, as in a SUBACK:
    /// the granted QoS (0x00-0x02), or why the filter was refused (0x87 by
    /// the bridge's rights, 0x9E for a shared subscription, 0x97 with the index
    /// full).
    pub results: Vec<ReasonCode>,
}

/// What became of a message a bridge brought in
/// ([`Broker::publish_from_bridge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOutcome {
    /// What a client publishing it would be answered (success, 0x10 no
    /// matching subscribers, 0x87 not authorized, 0x97 quota exceeded):
    /// what to answer the remote broker with.
    pub reason: ReasonCode,
    /// How many sessions and bridges took it.
    pub delivered: usize,
    /// It reached a subscriber past its high-water mark and still
    /// draining: a driver that can should bring in no more for a while
    /// (flow control, as a client publisher's acknowledgement would wait).
    pub congested: bool,
}

/// What the broker has counted for one bridge ([`Broker::bridge_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BridgeStats {
    /// The remote connection's state, as the driver last reported it.
    pub state: BridgeState,
    /// Messages the bridge brought in.
    pub messages_received: u64,
    /// Messages the remote broker took.
    pub messages_sent: u64,
    /// Messages dropped: past the queue limit, expired while waiting, not
    /// delivered, and messages brought in that were refused here.
    pub messages_dropped: u64,
    /// Messages waiting for the remote broker: queued or in flight.
    pub queued: usize,
    /// Of those, the ones the driver has taken and not yet settled.
    pub in_flight: usize,
}

/// Why a bridge call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The name is empty or has a character that cannot stand in one
    /// level of `$SYS/broker/bridges/<name>/...`.
    #[error("a bridge's name must be a non-empty topic level without '/', '+', '#' or U+0000")]
    InvalidName,
    /// Another open bridge has this name.
    #[error("another bridge has this name")]
    NameTaken,
    /// A queue limit of 0 would drop every message.
    #[error("a bridge's queue limit must be at least 1")]
    ZeroQueueLimit,
    /// Every bridge key is in use (2^31 bridges).
    #[error("the broker has no room for another bridge")]
    TooManyBridges,
    /// The bridge is closed, or was never opened.
    #[error("no such bridge")]
    UnknownBridge,
    /// The subscription index has no room for the bridge's subscription.
    #[error("the subscription index is full")]
    IndexFull,
}
