//! Counters the broker keeps, published under `$SYS/broker/...`.

/// What the broker has counted since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// PUBLISH packets received from clients.
    pub messages_received: u64,
    /// Messages handed to subscribers' connections.
    pub messages_sent: u64,
    /// Messages dropped: a full queue, too large for the subscriber, expired.
    pub messages_dropped: u64,
    /// Publishes refused by the publisher's rights or aimed at `$` topics.
    pub publishes_denied: u64,
    /// Retained messages kept out by the retained limits.
    pub retained_refused: u64,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Bytes written to clients.
    pub bytes_sent: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused (authentication, client identifier, store).
    pub connections_refused: u64,
    /// SUBSCRIBE packets handled.
    pub subscribes: u64,
    /// Wills published.
    pub wills_published: u64,
    /// Publish acknowledgements held back by flow control until a busy
    /// subscriber drained (see `Broker`'s module documentation).
    pub acks_held: u64,
    /// Filters refused because their client holds `max_subscriptions`.
    pub subscriptions_over_limit: u64,
    /// Shared subscriptions refused because their client is in
    /// `max_shared_groups` groups.
    pub shared_groups_over_limit: u64,
    /// Topic names, filters and wills refused past `max_topic_levels`.
    pub topic_levels_over_limit: u64,
    /// Publishes and wills refused past `max_user_properties` or
    /// `max_property_bytes`.
    pub properties_over_limit: u64,
    /// Messages not queued for a session past its `max_queued_bytes` (also
    /// counted in `messages_dropped`).
    pub queued_bytes_over_limit: u64,
    /// Messages not queued for an absent client because absent clients'
    /// queues hold `max_offline_bytes` (also in `messages_dropped`).
    pub offline_bytes_over_limit: u64,
    /// CONNECTs refused at `max_persistent_sessions`.
    pub persistent_sessions_refused: u64,
    /// Sessions that ended because their expiry interval passed with no
    /// client taking them (`$SYS/broker/clients/expired`).
    pub sessions_expired: u64,
    /// Subscribers that held publishers back and then made no progress for
    /// the stall time: their queue's policy applied from then on.
    pub subscribers_stalled: u64,
}

/// How much the broker holds at one moment: what its limits bound
/// (`max_connections`, `max_retained`, the session expiry), for metrics
/// and for tests that check the bounds hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sizes {
    /// Open connections.
    pub connections: usize,
    /// The most connections open at once since start
    /// (`$SYS/broker/clients/maximum`).
    pub peak_connections: usize,
    /// Sessions, attached to a connection or waiting for their client.
    pub sessions: usize,
    /// Subscriptions in the index (bridges' included).
    pub subscriptions: usize,
    /// Retained messages.
    pub retained: usize,
    /// Bytes of the retained messages (topics, payloads, properties).
    pub retained_bytes: usize,
    /// Bytes queued for sessions whose client is away.
    pub offline_bytes: usize,
    /// Persistent sessions, connected or not.
    pub persistent_sessions: usize,
    /// Entries in the timer heap, live or stale.
    pub timers: usize,
}
