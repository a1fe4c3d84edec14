//! Errors: connecting ([`ConnectError`]) and requests on a connected client
//! ([`ClientError`]).

use std::time::Duration;

use mqtt_session::mqtt_codec::{ReasonCode, TopicError};
use mqtt_session::UsageError;

/// Why connecting to the broker failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The address is not one the client understands.
    #[error("invalid broker address {address:?}: {why}")]
    InvalidAddress {
        /// The address given.
        address: String,
        /// What is wrong with it.
        why: String,
    },
    /// A connect option has a value MQTT does not allow.
    #[error("invalid {option}: {why}")]
    InvalidOption {
        /// The option.
        option: String,
        /// What is wrong with it.
        why: String,
    },
    /// The broker could not be reached, or the network failed while
    /// connecting.
    #[error("cannot reach the broker: {0}")]
    Io(#[from] std::io::Error),
    /// No CONNACK (or no network answer) within the connect timeout.
    #[error("the broker did not answer within {0:?}")]
    Timeout(Duration),
    /// The broker answered CONNACK with a failure reason code.
    #[error("the broker refused the connection: {reason}{}", .reason_string.as_deref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Refused {
        /// The CONNACK reason code (3.1.1 return codes are mapped to 5.0 ones).
        reason: ReasonCode,
        /// The broker's diagnostic text (5.0), if it sent one.
        reason_string: Option<String>,
    },
    /// The connection ended before the broker accepted it (the broker broke
    /// the protocol, or closed the connection).
    #[error("the connection ended before CONNACK: {0}")]
    Closed(ReasonCode),
}

impl ConnectError {
    /// The MQTT reason code that describes the failure, where there is one.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            ConnectError::Refused { reason, .. } | ConnectError::Closed(reason) => Some(*reason),
            _ => None,
        }
    }
}

/// Why a publish, subscribe, unsubscribe or disconnect did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request cannot be made now: too large for the broker, a QoS or
    /// retain the broker does not support, a full outgoing queue.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The topic name or filter is not valid.
    #[error("invalid topic: {0}")]
    Topic(#[from] TopicError),
    /// The broker answered with a failure reason code (PUBACK or PUBREC, 5.0).
    #[error("the broker refused: {0}")]
    Refused(ReasonCode),
    /// The message's expiry interval passed before it could be sent.
    #[error("the message expired before it could be sent")]
    Expired,
    /// The connection was lost before the broker answered, and the client
    /// does not reconnect (or the answer cannot survive a reconnection, as
    /// with SUBSCRIBE).
    #[error("the connection to the broker was lost before it answered")]
    ConnectionLost,
    /// The client has disconnected (or its connection ended for good).
    #[error("the client is disconnected")]
    Disconnected,
}

impl ClientError {
    /// The MQTT reason code that describes the failure, where there is one.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            ClientError::Refused(reason) => Some(*reason),
            ClientError::Topic(e) => Some(e.name_reason()),
            _ => None,
        }
    }
}
