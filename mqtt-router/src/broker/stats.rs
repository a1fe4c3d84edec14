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
    /// Publishes refused by the policy or aimed at `$` topics.
    pub publishes_denied: u64,
    /// Retained messages kept out by the retained limits.
    pub retained_refused: u64,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Bytes written to clients.
    pub bytes_sent: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused by the policy.
    pub connections_refused: u64,
    /// SUBSCRIBE packets handled.
    pub subscribes: u64,
    /// Wills published.
    pub wills_published: u64,
    /// Publish acknowledgements held back by flow control until a busy
    /// subscriber drained (see `Broker`'s module documentation).
    pub acks_held: u64,
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
    /// Sessions, attached to a connection or waiting for their client.
    pub sessions: usize,
    /// Subscriptions in the index (bridges' included).
    pub subscriptions: usize,
    /// Retained messages.
    pub retained: usize,
    /// Entries in the timer heap, live or stale.
    pub timers: usize,
}
