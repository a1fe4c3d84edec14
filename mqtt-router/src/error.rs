//! Errors: local misuse or exhausted capacity. A refused call changes nothing.

use mqtt_codec::ReasonCode;

/// Why [`SubscriptionIndex::insert`](crate::SubscriptionIndex::insert) refused a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// No Local is set on a shared subscription, which is a Protocol Error
    /// [MQTT-3.8.3-4]. The codec already refuses such a SUBSCRIBE on the wire.
    #[error("No Local must not be set on a shared subscription [MQTT-3.8.3-4]")]
    NoLocalOnSharedSubscription,
    /// The index has no room left for more trie nodes or shared groups
    /// (2^31 of each).
    #[error("the subscription index is full")]
    CapacityExceeded,
}

impl SubscribeError {
    /// The reason code to answer with: a DISCONNECT reason for the protocol
    /// error, a SUBACK reason for the full index.
    pub const fn reason_code(self) -> ReasonCode {
        match self {
            SubscribeError::NoLocalOnSharedSubscription => ReasonCode::PROTOCOL_ERROR,
            SubscribeError::CapacityExceeded => ReasonCode::QUOTA_EXCEEDED,
        }
    }
}

/// Why [`Retained::insert`](crate::Retained::insert) refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetainError {
    /// The store has no room left for more trie nodes (2^32 - 2).
    #[error("the retained message store is full")]
    CapacityExceeded,
}

impl RetainError {
    /// The reason code for the PUBLISH whose message could not be retained.
    pub const fn reason_code(self) -> ReasonCode {
        match self {
            RetainError::CapacityExceeded => ReasonCode::QUOTA_EXCEEDED,
        }
    }
}
