//! Application messages: what a PUBLISH carries, free of wire details.

use bytes::Bytes;
use mqtt_codec::{PayloadFormat, Publish, QoS, Str, SubscriptionId, TopicName, UserProperties};

use crate::time::Instant;

/// An application message, free of wire details (packet id, DUP, topic alias,
/// version). What a publisher sends and a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to (never an alias).
    pub topic: TopicName,
    /// The payload; shared, never copied when forwarded.
    pub payload: Bytes,
    /// The QoS it was published with.
    pub qos: QoS,
    /// The RETAIN flag.
    pub retain: bool,
    /// The 5.0 properties that travel with the message.
    pub props: MessageProps,
}

/// The 5.0 PUBLISH properties that belong to the message itself and are
/// forwarded to subscribers untouched (section 3.3.2.3), with the expiry kept
/// as an absolute deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageProps {
    /// Payload Format Indicator.
    pub payload_format_indicator: Option<PayloadFormat>,
    /// When the message expires; re-expressed as a remaining interval on each send.
    pub expires_at: Option<Instant>,
    /// Content Type.
    pub content_type: Option<Str>,
    /// Response Topic (request/response).
    pub response_topic: Option<TopicName>,
    /// Correlation Data (request/response).
    pub correlation_data: Option<Bytes>,
    /// User Properties, in order.
    pub user_properties: UserProperties,
}

impl Message {
    /// A message with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>, qos: QoS, retain: bool) -> Self {
        Message {
            topic,
            payload: payload.into(),
            qos,
            retain,
            props: MessageProps::default(),
        }
    }

    /// True once the message's expiry deadline has passed.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.props.expires_at.is_some_and(|t| now >= t)
    }

    /// The message a received PUBLISH carries, its topic already resolved.
    pub(crate) fn from_publish(p: Publish, topic: TopicName, now: Instant) -> Self {
        let pr = p.props;
        Message {
            topic,
            payload: p.payload,
            qos: p.qos.qos(),
            retain: p.retain,
            props: MessageProps {
                payload_format_indicator: pr.payload_format_indicator,
                expires_at: pr
                    .message_expiry_interval
                    .map(|s| now.plus_secs(u64::from(s))),
                content_type: pr.content_type,
                response_topic: pr.response_topic,
                correlation_data: pr.correlation_data,
                user_properties: pr.user_properties,
            },
        }
    }

    /// The Message Expiry Interval to send now: the remaining seconds,
    /// rounded up (section 3.3.2.3.3).
    pub(crate) fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.props.expires_at.map(|t| {
            let ms = t.as_millis().saturating_sub(now.as_millis());
            // An in-flight message is resent even after its expiry, since its
            // delivery had started (section 3.3.2.3.3); 0 would read as
            // "already gone", so it goes out with the smallest interval.
            u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX).max(1)
        })
    }
}

impl Message {
    /// The bytes this message holds that its sender chose: topic, payload
    /// and properties (user properties, content type, response topic,
    /// correlation data). What byte limits on queued and retained messages
    /// count, so properties cannot slip past a limit on payloads.
    pub fn held_bytes(&self) -> usize {
        let p = &self.props;
        self.topic.len()
            + self.payload.len()
            + p.content_type.as_ref().map_or(0, |s| s.len())
            + p.response_topic.as_ref().map_or(0, |t| t.len())
            + p.correlation_data.as_ref().map_or(0, |d| d.len())
            + p.user_properties
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// At least the size of any PUBLISH that carries this message (with
    /// `subscription_identifiers`, a topic alias, any packet identifier, in
    /// any version): what a cheap check against the peer's Maximum Packet
    /// Size needs before the exact encoded size is worth computing.
    pub(crate) fn publish_len_bound(&self, subscription_identifiers: &[SubscriptionId]) -> usize {
        let p = &self.props;
        let string = |n: usize| 3 + n;
        let props = 2 // Payload Format Indicator
            + 5 // Message Expiry Interval
            + 3 // Topic Alias
            + p.content_type.as_ref().map_or(0, |s| string(s.len()))
            + p.response_topic.as_ref().map_or(0, |t| string(t.len()))
            + p.correlation_data.as_ref().map_or(0, |d| string(d.len()))
            + p.user_properties
                .iter()
                .map(|(k, v)| 5 + k.len() + v.len())
                .sum::<usize>()
            + 5 * subscription_identifiers.len();
        // Fixed header, topic, packet identifier, property length, payload.
        5 + 2 + self.topic.len() + 2 + 4 + props + self.payload.len()
    }
}

/// How the server forwards one message to one subscriber (section 3.3.2):
/// the result of matching it against the subscriber's subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// The QoS to deliver with: the minimum of the message's and the granted QoS.
    pub qos: QoS,
    /// The RETAIN flag to send (Retain As Published, or a retained message sent on subscribe).
    pub retain: bool,
    /// Identifiers of the subscriptions that matched (5.0).
    pub subscription_identifiers: alloc::vec::Vec<SubscriptionId>,
}

impl DeliveryOptions {
    /// Delivery at `qos`, RETAIN clear, no subscription identifiers.
    pub fn new(qos: QoS) -> Self {
        DeliveryOptions {
            qos,
            ..Default::default()
        }
    }
}
