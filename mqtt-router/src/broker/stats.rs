//! Counters the broker keeps, published under `$SYS/broker/...`.
//!
//! Plain integers, most in small arrays indexed by QoS or by reason
//! ([`DropReason`], [`PublishRefusal`], the CONNACK reason code): counting
//! is one increment on the paths it measures, with no map and no
//! allocation (the per-method authentication failures, a list as long as
//! the configured methods, are counted off the message path).

use alloc::vec::Vec;

use alloc::string::String;

use mqtt_codec::{PacketType, QoS, ReasonCode, Str};
use mqtt_session::{DeliverError, Message};

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
    /// PUBLISH packets received (from clients and bridges), by QoS
    /// (index: the QoS number); they add up to `messages_received`.
    pub messages_received_by_qos: [u64; 3],
    /// Messages handed to subscribers, by the QoS they went out at; they
    /// add up to `messages_sent`.
    pub messages_sent_by_qos: [u64; 3],
    /// Payload bytes of the PUBLISH packets received, by QoS (Mosquitto's
    /// `$SYS/broker/publish/bytes/received` is their sum).
    pub payload_bytes_received_by_qos: [u64; 3],
    /// Payload bytes of the messages handed to subscribers, by QoS
    /// (Mosquitto's `$SYS/broker/publish/bytes/sent` is their sum).
    pub payload_bytes_sent_by_qos: [u64; 3],
    /// Messages dropped, by why (index: [`DropReason::index`]); they add up
    /// to `messages_dropped`.
    pub dropped_by_reason: [u64; DropReason::ALL.len()],
    /// Publishes refused (not routed), by why (index:
    /// [`PublishRefusal::index`]).
    pub publishes_refused: [u64; PublishRefusal::ALL.len()],
    /// CONNECTs refused, by CONNACK reason code (index: the code − 0x80,
    /// see [`Stats::refused_with`]); they add up to `connections_refused`.
    pub connections_refused_by_reason: [u64; 32],
    /// Authentication failures: the authenticator refused a CONNECT or a
    /// re-authentication.
    pub auth_failures: AuthFailures,
}

/// Why a message did not reach one subscriber (a session or a bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The subscriber's queue held as many messages as it may
    /// (`max_queued`, and `max_queued_qos0` for QoS 0; a bridge's queue
    /// limit; a subscriber whose retained messages were still being sent).
    QueueFull,
    /// The session's queue held `max_queued_bytes`.
    QueuedBytes,
    /// Absent clients' queues held `max_offline_bytes`.
    OfflineBytes,
    /// Bigger than the subscriber's Maximum Packet Size [MQTT-3.1.2-25].
    TooLarge,
    /// Its Message Expiry Interval passed before it could be sent
    /// [MQTT-3.3.2-5].
    Expired,
    /// The subscriber's connection or bridge closed before it took it.
    Closed,
    /// A bridge's driver reported it will not reach the remote broker
    /// (refused there, or not carriable).
    BridgeRefused,
}

impl DropReason {
    /// Every reason, in index order.
    pub const ALL: [DropReason; 7] = [
        DropReason::QueueFull,
        DropReason::QueuedBytes,
        DropReason::OfflineBytes,
        DropReason::TooLarge,
        DropReason::Expired,
        DropReason::Closed,
        DropReason::BridgeRefused,
    ];

    /// Its place in [`Stats::dropped_by_reason`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short name for labels and `$SYS` topics (`queue_full`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::QueuedBytes => "queued_bytes",
            DropReason::OfflineBytes => "offline_bytes",
            DropReason::TooLarge => "too_large",
            DropReason::Expired => "expired",
            DropReason::Closed => "closed",
            DropReason::BridgeRefused => "bridge_refused",
        }
    }

    /// The reason a delivery failed with `e`.
    pub const fn of(e: &DeliverError) -> DropReason {
        match e {
            DeliverError::QueueFull { .. } => DropReason::QueueFull,
            DeliverError::TooLarge { .. } => DropReason::TooLarge,
            DeliverError::Expired => DropReason::Expired,
            DeliverError::Closed => DropReason::Closed,
            // A reason the session layer adds later: the subscriber did not
            // take the message, as when it has gone.
            _ => DropReason::Closed,
        }
    }
}

/// Why a publish from a client or a bridge was not routed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublishRefusal {
    /// The publisher's rights do not allow the topic, or it is a `$` topic.
    NotAuthorized,
    /// The store cannot write and the message would need it.
    StoreFailing,
    /// The topic has more than `max_topic_levels` levels.
    TopicLevels,
    /// Past `max_user_properties` or `max_property_bytes`.
    Properties,
}

impl PublishRefusal {
    /// Every reason, in index order.
    pub const ALL: [PublishRefusal; 4] = [
        PublishRefusal::NotAuthorized,
        PublishRefusal::StoreFailing,
        PublishRefusal::TopicLevels,
        PublishRefusal::Properties,
    ];

    /// Its place in [`Stats::publishes_refused`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short name for labels and `$SYS` topics.
    pub const fn name(self) -> &'static str {
        match self {
            PublishRefusal::NotAuthorized => "not_authorized",
            PublishRefusal::StoreFailing => "store_failing",
            PublishRefusal::TopicLevels => "topic_levels",
            PublishRefusal::Properties => "properties",
        }
    }
}

/// Authentication failures by method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFailures {
    /// CONNECTs without an Authentication Method: a user name and password
    /// (a JSON Web Token in the password field included), or none.
    pub password: u64,
    /// Each 5.0 enhanced authentication method (`SCRAM-SHA-256`, ...) by
    /// name, in the order of their first failure. Only methods the broker
    /// is configured with get here (others are refused with 0x8C before any
    /// authentication), so the list is as short as the configuration.
    pub methods: Vec<(Str, u64)>,
}

impl AuthFailures {
    /// Counts one failure under `method` (`None`: password).
    pub(super) fn count(&mut self, method: Option<&Str>) {
        let Some(m) = method else {
            self.password += 1;
            return;
        };
        match self.methods.iter_mut().find(|(name, _)| name == m) {
            Some((_, n)) => *n += 1,
            None => self.methods.push((m.clone(), 1)),
        }
    }

    /// Every failure, whatever the method.
    pub fn total(&self) -> u64 {
        self.password + self.methods.iter().map(|(_, n)| n).sum::<u64>()
    }
}

impl Stats {
    /// Counts `n` messages dropped for `reason`.
    #[inline]
    pub(super) fn count_dropped(&mut self, reason: DropReason, n: u64) {
        self.messages_dropped += n;
        self.dropped_by_reason[reason.index()] += n;
    }

    /// Counts a PUBLISH received (from a client or a bridge).
    #[inline]
    pub(super) fn received(&mut self, msg: &Message) {
        let q = qos_index(msg.qos);
        self.messages_received += 1;
        self.messages_received_by_qos[q] += 1;
        self.payload_bytes_received_by_qos[q] += msg.payload.len() as u64;
    }

    /// Counts a message of `payload` bytes handed to a subscriber at `qos`.
    #[inline]
    pub(super) fn sent(&mut self, qos: QoS, payload: usize) {
        let q = qos_index(qos);
        self.messages_sent += 1;
        self.messages_sent_by_qos[q] += 1;
        self.payload_bytes_sent_by_qos[q] += payload as u64;
    }

    /// Counts a publish refused for `why`.
    #[inline]
    pub(super) fn refuse_publish(&mut self, why: PublishRefusal) {
        self.publishes_refused[why.index()] += 1;
        if matches!(
            why,
            PublishRefusal::NotAuthorized | PublishRefusal::StoreFailing
        ) {
            self.publishes_denied += 1;
        }
    }

    /// Counts a CONNECT refused with CONNACK `reason`.
    pub(super) fn refuse_connect(&mut self, reason: ReasonCode) {
        self.connections_refused += 1;
        self.connections_refused_by_reason[refusal_index(reason)] += 1;
    }

    /// How many CONNECTs were refused with `reason` (a code from 0x80 to
    /// 0x9F; a code outside that range was counted as 0x80 Unspecified
    /// error).
    pub fn refused_with(&self, reason: ReasonCode) -> u64 {
        self.connections_refused_by_reason[refusal_index(reason)]
    }

    /// Each CONNACK refusal code (0x80 to 0x9F, those a CONNACK may carry)
    /// with how many CONNECTs were refused with it.
    pub fn refusals(&self) -> impl Iterator<Item = (ReasonCode, u64)> + '_ {
        (0x80..=0x9Fu8)
            .map(ReasonCode)
            .filter(|r| r.valid_for(PacketType::ConnAck))
            .map(|r| (r, self.refused_with(r)))
    }

    /// Every message dropped for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped_by_reason[reason.index()]
    }
}

/// A reason code's description as a label or topic level:
/// `bad_user_name_or_password` for 0x86.
pub fn reason_name(reason: ReasonCode) -> String {
    match reason.description() {
        Some(d) => d
            .chars()
            .map(|c| match c {
                'a'..='z' | '0'..='9' => c,
                'A'..='Z' => c.to_ascii_lowercase(),
                _ => '_',
            })
            .collect(),
        None => alloc::format!("0x{:02x}", reason.0),
    }
}

/// A QoS's place in the per-QoS arrays.
#[inline]
fn qos_index(qos: QoS) -> usize {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

/// A CONNACK refusal code's place in `connections_refused_by_reason`.
fn refusal_index(reason: ReasonCode) -> usize {
    match reason.0 {
        c @ 0x80..=0x9F => usize::from(c - 0x80),
        _ => 0,
    }
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
    /// Shared-subscription groups (`$share/<name>/<filter>`) with at least
    /// one member.
    pub shared_groups: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_are_snake_case_descriptions() {
        assert_eq!(
            reason_name(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            "bad_user_name_or_password"
        );
        assert_eq!(reason_name(ReasonCode::SERVER_BUSY), "server_busy");
        assert_eq!(reason_name(ReasonCode(0xEE)), "0xee");
    }

    #[test]
    fn refusals_are_counted_by_code_and_in_the_total() {
        let mut s = Stats::default();
        s.refuse_connect(ReasonCode::NOT_AUTHORIZED);
        s.refuse_connect(ReasonCode::NOT_AUTHORIZED);
        s.refuse_connect(ReasonCode(0x9F));
        // Not a refusal code: counted as 0x80 Unspecified error, never lost.
        s.refuse_connect(ReasonCode(0x10));
        assert_eq!(s.connections_refused, 4);
        assert_eq!(s.refused_with(ReasonCode::NOT_AUTHORIZED), 2);
        assert_eq!(s.refused_with(ReasonCode(0x9F)), 1);
        assert_eq!(s.refused_with(ReasonCode::UNSPECIFIED_ERROR), 1);
        // Only codes a CONNACK may carry are listed, and they add up.
        let listed: u64 = s.refusals().map(|(_, n)| n).sum();
        assert_eq!(listed, 4);
        assert!(s.refusals().all(|(r, _)| r.valid_for(PacketType::ConnAck)));
    }

    #[test]
    fn drops_by_reason_add_up_to_the_total() {
        let mut s = Stats::default();
        s.count_dropped(DropReason::QueueFull, 3);
        s.count_dropped(DropReason::Expired, 1);
        assert_eq!(s.messages_dropped, 4);
        assert_eq!(s.dropped_by_reason.iter().sum::<u64>(), 4);
        assert_eq!(s.dropped_for(DropReason::QueueFull), 3);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn auth_failures_are_kept_per_method() {
        let mut f = AuthFailures::default();
        let scram = Str::try_from("SCRAM-SHA-256").unwrap();
        f.count(None);
        f.count(Some(&scram));
        f.count(Some(&scram));
        assert_eq!(f.password, 1);
        assert_eq!(f.methods, [(scram, 2)]);
        assert_eq!(f.total(), 3);
    }
}
