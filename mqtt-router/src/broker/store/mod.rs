//! The store seam, as plain data: the records the core emits for a durable
//! store ([`StoreRecord`], from [`Broker::poll_store`](super::Broker::poll_store)),
//! and the state a driver reads back from it at start
//! ([`RestoredState`], for [`Broker::restore`](super::Broker::restore)).
//!
//! The core never calls a store: a driver commits each batch of records
//! (one transaction per turn), reports it with
//! [`Broker::handle_stored`](super::Broker::handle_stored), and only then
//! does the output that promised durability leave the core. See DESIGN.md,
//! "The durable broker".

use alloc::sync::Arc;
use alloc::vec::Vec;

use mqtt_codec::{PacketId, QoS, Str, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_session::{DeliveryOptions, Message};

mod image;

pub use image::StoreImage;

/// Wall-clock time: milliseconds since the UNIX epoch, as the driver reads
/// it. Deadlines that must keep counting while the broker is down (session
/// expiry, will delays, message expiry) are stored in it; the core itself
/// has no clock and only converts, from the one reading the driver gives
/// at [`Broker::restore`](super::Broker::restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WallTime(u64);

impl WallTime {
    /// `ms` milliseconds after 1970-01-01T00:00:00Z.
    pub const fn from_millis(ms: u64) -> Self {
        WallTime(ms)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

/// Names one stored message body, shared by every session that queues it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

/// A will waiting for its delay, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWill {
    /// The will message (its `props.expires_at` is not used: see `expires_at`).
    pub message: Message,
    /// When the will message itself expires.
    pub expires_at: Option<WallTime>,
    /// When it is due to be published.
    pub due: WallTime,
}

/// The will of a client while it is connected, as stored: if the broker
/// dies meanwhile, the connection ended without DISCONNECT, so after the
/// restart the will is due after its delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedWill {
    /// The will message (its `props.expires_at` is not used).
    pub message: Message,
    /// Its Message Expiry Interval, in seconds, counted from publication.
    pub message_expiry: Option<u32>,
    /// Its Will Delay Interval, in seconds.
    pub delay: u32,
}

/// One change to the durable state, in the order the core made them.
/// Sessions are named by client identifier; applying the records in order
/// to an empty store gives the state [`RestoredState`] reads back.
// Not `#[non_exhaustive]`: a store must handle every record, so a new one
// must break its match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRecord {
    /// A persistent session began (a new one, or a clean start that replaced
    /// the old one: whatever was stored under `client_id` is gone).
    SessionOpened {
        /// The client identifier.
        client_id: Str,
        /// The user name it was created under.
        username: Option<Str>,
        /// Its Session Expiry Interval, in seconds (`u32::MAX`: never).
        expiry: u32,
        /// The connection's will.
        will: Option<ConnectedWill>,
    },
    /// A client resumed its stored session: it is connected, so it has no
    /// expiry deadline and no pending will; `expiry` is the interval now in
    /// force.
    SessionResumed {
        /// The client identifier.
        client_id: Str,
        /// The user name of the connection that resumed it.
        username: Option<Str>,
        /// Its Session Expiry Interval, in seconds.
        expiry: u32,
        /// The connection's will.
        will: Option<ConnectedWill>,
    },
    /// The session's connection ended; the session waits for the client
    /// until `expires_at` (`None`: never), with its will if delayed.
    SessionDetached {
        /// The client identifier.
        client_id: Str,
        /// When the session ends if no client takes it.
        expires_at: Option<WallTime>,
        /// The will waiting for its delay, if any.
        will: Option<StoredWill>,
    },
    /// The session ended: it, its subscriptions, its messages and its
    /// incoming QoS 2 identifiers go.
    SessionEnded {
        /// The client identifier.
        client_id: Str,
    },
    /// A subscription was added or replaced.
    Subscribed {
        /// The client identifier.
        client_id: Str,
        /// The topic filter, as subscribed (`$share/...` included).
        filter: TopicFilter,
        /// Its options.
        options: SubscriptionOptions,
        /// Its 5.0 Subscription Identifier.
        identifier: Option<SubscriptionId>,
    },
    /// A subscription was removed.
    Unsubscribed {
        /// The client identifier.
        client_id: Str,
        /// The topic filter.
        filter: TopicFilter,
    },
    /// A message body that sessions queue; stored once, whatever the number
    /// of sessions. Always just before the first [`StoreRecord::Queued`]
    /// naming it; the store deletes it when no session holds it any more
    /// (every `Queued` naming it has been followed by `PubRelSent`,
    /// `Completed` or the end of its session).
    MessageStored {
        /// Its identifier.
        id: MessageId,
        /// The message (its `props.expires_at` is not used: see `expires_at`).
        message: Arc<Message>,
        /// When it expires.
        expires_at: Option<WallTime>,
    },
    /// A QoS 1/2 message was given a packet identifier in a session, to be
    /// sent (or sent already, as far as a restart knows).
    Queued {
        /// The client identifier.
        client_id: Str,
        /// Its packet identifier in this session.
        packet_id: PacketId,
        /// The body.
        message: MessageId,
        /// This delivery's QoS, RETAIN flag and subscription identifiers.
        options: DeliveryOptions,
        /// Orders a session's messages: increasing in the order they were
        /// queued.
        order: u64,
    },
    /// The client answered QoS 2 message `packet_id` with PUBREC; PUBREL is
    /// sent and awaits PUBCOMP.
    PubRelSent {
        /// The client identifier.
        client_id: Str,
        /// The packet identifier.
        packet_id: PacketId,
    },
    /// The outgoing exchange `packet_id` is over.
    Completed {
        /// The client identifier.
        client_id: Str,
        /// The packet identifier.
        packet_id: PacketId,
    },
    /// An incoming QoS 2 message was received and not yet released.
    IncomingReceived {
        /// The client identifier.
        client_id: Str,
        /// Its packet identifier.
        packet_id: PacketId,
    },
    /// The incoming QoS 2 exchange `packet_id` ended.
    IncomingReleased {
        /// The client identifier.
        client_id: Str,
        /// Its packet identifier.
        packet_id: PacketId,
    },
    /// A QoS 1/2 message was queued for a bridge, to be sent to its remote
    /// broker (it holds its body like a session does).
    BridgeQueued {
        /// The bridge's name.
        bridge: Str,
        /// Its place in the bridge's queue (increasing).
        seq: u64,
        /// The body.
        message: MessageId,
        /// The QoS it is forwarded with.
        qos: QoS,
        /// The RETAIN flag it is forwarded with.
        retain: bool,
    },
    /// The remote broker took (or refused) bridge message `seq`, or it was
    /// dropped: it leaves the bridge's queue.
    BridgeSettled {
        /// The bridge's name.
        bridge: Str,
        /// Its place in the bridge's queue.
        seq: u64,
    },
    /// A retained message was set (replacing any on its topic).
    RetainedSet {
        /// The message (its `props.expires_at` is not used: see `expires_at`).
        message: Message,
        /// When it expires.
        expires_at: Option<WallTime>,
    },
    /// The retained message on `topic` was cleared.
    RetainedCleared {
        /// Its topic.
        topic: TopicName,
    },
}

/// What a driver read from its store at start, for
/// [`Broker::restore`](super::Broker::restore).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// Every stored message body some session queues.
    pub messages: Vec<RestoredMessage>,
    /// Every stored session.
    pub sessions: Vec<RestoredSession>,
    /// Every stored retained message.
    pub retained: Vec<RestoredMessage>,
    /// Every bridge's stored queue.
    pub bridges: Vec<RestoredBridge>,
}

/// A bridge's stored queue, given back when a bridge of that name opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredBridge {
    /// The bridge's name.
    pub name: Str,
    /// Its queued QoS 1/2 messages, in any order (`seq` sorts them).
    pub queue: Vec<RestoredBridgeMessage>,
}

/// One stored message of a bridge's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredBridgeMessage {
    /// Its place in the queue.
    pub seq: u64,
    /// The body.
    pub message: MessageId,
    /// The QoS it is forwarded with.
    pub qos: QoS,
    /// The RETAIN flag it is forwarded with.
    pub retain: bool,
}

/// A stored message: a body (with its identifier) or a retained message
/// (whose identifier is not used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredMessage {
    /// Its identifier ([`MessageId`] of [`StoreRecord::MessageStored`]).
    pub id: MessageId,
    /// The message.
    pub message: Message,
    /// When it expires.
    pub expires_at: Option<WallTime>,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredSession {
    /// The client identifier.
    pub client_id: Str,
    /// The user name it belongs to.
    pub username: Option<Str>,
    /// Its Session Expiry Interval, in seconds.
    pub expiry: u32,
    /// `Some`: detached, ending then (`None` inside: never). `None`: it was
    /// connected when the broker stopped, so its expiry counts from the
    /// restart.
    pub detached: Option<Option<WallTime>>,
    /// A will waiting for its delay.
    pub will: Option<StoredWill>,
    /// The will of the connection it had when the broker stopped (`detached`
    /// is `None`): due after its delay from the restart.
    pub connected_will: Option<ConnectedWill>,
    /// Its subscriptions.
    pub subscriptions: Vec<RestoredSubscription>,
    /// Its outgoing QoS 1/2 messages, in any order (`order` sorts them).
    pub outgoing: Vec<RestoredOutgoing>,
    /// Identifiers of incoming QoS 2 messages received and not released.
    pub incoming: Vec<PacketId>,
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredSubscription {
    /// The topic filter.
    pub filter: TopicFilter,
    /// Its options.
    pub options: SubscriptionOptions,
    /// Its 5.0 Subscription Identifier.
    pub identifier: Option<SubscriptionId>,
}

/// A stored outgoing QoS 1/2 exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredOutgoing {
    /// Its packet identifier.
    pub packet_id: PacketId,
    /// The `order` of its [`StoreRecord::Queued`].
    pub order: u64,
    /// Where the exchange stands.
    pub state: OutgoingState,
}

/// Where a stored outgoing exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingState {
    /// PUBLISH to send (again): the body and this delivery's options.
    Publish {
        /// The body.
        message: MessageId,
        /// QoS, RETAIN flag, subscription identifiers.
        options: DeliveryOptions,
    },
    /// PUBREL to send again.
    PubRel,
}

/// Why [`Broker::restore`](super::Broker::restore) refused a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The broker already has connections or state: restore comes first.
    #[error("the broker must be restored before it takes connections")]
    NotFresh,
    /// A bridge queues a message body the state does not hold.
    #[error("bridge {bridge:?} queues message {message:?}, which is not stored")]
    MissingBridgeMessage {
        /// The bridge.
        bridge: Str,
        /// The missing body.
        message: MessageId,
    },
    /// A session queues a message body the state does not hold.
    #[error("session {client_id:?} queues message {message:?}, which is not stored")]
    MissingMessage {
        /// The session.
        client_id: Str,
        /// The missing body.
        message: MessageId,
    },
    /// Two stored sessions have the same client identifier.
    #[error("two stored sessions are named {0:?}")]
    DuplicateSession(Str),
    /// A stored sequence number is too large to count on from (the store
    /// is damaged: no broker lives long enough to reach it).
    #[error("the stored {what} {value} is too large to count on from")]
    NumberTooLarge {
        /// Which number: "message id" or "record order".
        what: &'static str,
        /// The number found.
        value: u64,
    },
}
