//! The errors of a client: connecting ([`ConnectError`], the protocol's
//! part: each adapter wraps it with its transport's errors) and requests on
//! a connected client ([`ClientError`]), the same on every runtime.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use core::time::Duration;

use mqtt_session::mqtt_codec::{QoS, ReasonCode, TopicError};
use mqtt_session::{Close, Initiator, UsageError};

use crate::address::AddressError;
use crate::auth::AuthError;

/// Why connecting to the broker failed, as far as MQTT is concerned: the
/// options, the broker's answer, the connect timeout. Transport failures
/// (sockets, TLS, WebSocket) are not here: each adapter's own connect error
/// carries them beside this one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// No CONNACK (or no network answer) within the connect timeout.
    #[error("the broker did not answer within {0:?}")]
    Timeout(Duration),
    /// The broker answered CONNACK with a failure reason code.
    #[error("the broker refused the connection: {reason}{}", in_parentheses(.reason_string))]
    Refused {
        /// The CONNACK reason code (3.1.1 return codes are mapped to 5.0 ones).
        reason: ReasonCode,
        /// The broker's diagnostic text (5.0), if it sent one.
        reason_string: Option<String>,
    },
    /// The connection ended before the broker accepted it: the broker broke
    /// the protocol (the reason code says how) or sent DISCONNECT.
    #[error("the connection ended before CONNACK: {0}")]
    Closed(ReasonCode),
    /// The broker closed the connection before CONNACK without a word (the
    /// transport reached its end).
    #[error("the broker closed the connection before CONNACK")]
    ClosedByBroker,
    /// Enhanced authentication (SCRAM, or the application's
    /// [`EnhancedAuth`](crate::auth::EnhancedAuth) mechanism) failed on the
    /// client's side: the broker's data was not acceptable, it could not
    /// prove what the mechanism asks of it (SCRAM: that it knows the
    /// credential), or it sent AUTH out of sequence. The client ended the
    /// connection with DISCONNECT ([`AuthError::disconnect_reason`]).
    #[error("enhanced authentication failed: {0}")]
    Authentication(AuthError),
}

fn in_parentheses(text: &Option<String>) -> String {
    text.as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default()
}

impl ConnectError {
    /// The MQTT reason code that describes the failure, where there is one.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            ConnectError::Refused { reason, .. } | ConnectError::Closed(reason) => Some(*reason),
            ConnectError::InvalidAddress { .. }
            | ConnectError::InvalidOption { .. }
            | ConnectError::Timeout(_)
            | ConnectError::ClosedByBroker
            | ConnectError::Authentication(_) => None,
        }
    }

    /// Why a connection ended before its CONNACK: `close` is what the
    /// connection reported (`None`: it reported nothing), `timeout` the
    /// connect timeout.
    pub fn before_connack(close: Option<Close>, timeout: Duration) -> Self {
        let Some(close) = close else {
            return ConnectError::Closed(ReasonCode::UNSPECIFIED_ERROR);
        };
        if let Some(violation) = close.violation {
            return ConnectError::Closed(violation.reason());
        }
        match close.initiator {
            Initiator::Peer => ConnectError::Refused {
                reason: close.reason,
                reason_string: close.props.reason_string.map(|s| s.as_str().to_owned()),
            },
            // The only local reason to give up before CONNACK is its deadline.
            Initiator::Local => ConnectError::Timeout(timeout),
            Initiator::Transport => ConnectError::ClosedByBroker,
        }
    }
}

impl From<AddressError> for ConnectError {
    /// [`ConnectError::InvalidAddress`] for an address that did not parse.
    fn from(e: AddressError) -> Self {
        ConnectError::InvalidAddress {
            address: e.address,
            why: e.why.to_owned(),
        }
    }
}

/// Why a publish, subscribe, unsubscribe, acknowledgement or disconnect did
/// not succeed.
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
    /// No answer within the time the caller allowed (`mqtt-blocking`'s
    /// request timeout); the request itself goes on.
    #[error("no answer within the time given")]
    Timeout,
    /// An acknowledgement for a message received on an earlier connection:
    /// nothing is sent (the broker sends that message again on a resumed
    /// session, with a token of its own).
    #[error("the message came on an earlier connection; the broker sends it again")]
    StaleAck,
    /// An acknowledgement for a message that waits for none: acknowledged
    /// already. Nothing is sent.
    #[error("the message is already acknowledged")]
    NotAwaitingAck,
    /// The client's request queue is full (`try_publish`): the request was
    /// not made.
    #[error("the client's request queue is full")]
    RequestQueueFull,
}

impl ClientError {
    /// The MQTT reason code that describes the failure, where there is one.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        match self {
            ClientError::Refused(reason) => Some(*reason),
            ClientError::Topic(e) => Some(e.name_reason()),
            ClientError::Usage(_)
            | ClientError::Expired
            | ClientError::ConnectionLost
            | ClientError::Disconnected
            | ClientError::Timeout
            | ClientError::StaleAck
            | ClientError::NotAwaitingAck
            | ClientError::RequestQueueFull => None,
        }
    }
}

/// Per-filter result of a SUBSCRIBE: the granted QoS or the failure code.
pub type SubscribeResult = Result<QoS, ReasonCode>;

/// A SUBACK reason code as the granted QoS or the failure.
pub fn granted(reason: ReasonCode) -> SubscribeResult {
    match QoS::from_u8(reason.0) {
        Some(qos) if !reason.is_error() => Ok(qos),
        Some(_) | None => Err(reason),
    }
}

/// The outcome of a QoS 1/2 publish from its final acknowledgement: the
/// reason code, or [`ClientError::Refused`] for a failure code.
pub fn publish_outcome(reason: ReasonCode) -> Result<ReasonCode, ClientError> {
    if reason.is_error() {
        Err(ClientError::Refused(reason))
    } else {
        Ok(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use mqtt_session::mqtt_codec::{DecodeError, DisconnectProps, Str};
    use mqtt_session::Violation;

    type E = ConnectError;

    fn close(initiator: Initiator, reason: ReasonCode, violation: Option<Violation>) -> Close {
        let mut props = DisconnectProps::default();
        props.reason_string = Some(Str::from_static("go away"));
        Close {
            initiator,
            reason,
            violation,
            will: None,
            props,
        }
    }

    #[test]
    fn before_connack_names_the_cause() {
        let t = Duration::from_secs(3);
        let refused = E::before_connack(
            Some(close(Initiator::Peer, ReasonCode::NOT_AUTHORIZED, None)),
            t,
        );
        assert!(matches!(
            &refused,
            ConnectError::Refused { reason, reason_string: Some(s) }
                if *reason == ReasonCode::NOT_AUTHORIZED && s == "go away"
        ));
        assert_eq!(refused.reason_code(), Some(ReasonCode::NOT_AUTHORIZED));
        assert!(refused.to_string().ends_with("(go away)"), "{refused}");
        let malformed = Violation::Decode(DecodeError::Truncated);
        let reason = malformed.reason();
        assert!(matches!(
            E::before_connack(Some(close(Initiator::Peer, reason, Some(malformed))), t),
            ConnectError::Closed(r) if r == reason
        ));
        assert!(matches!(
            E::before_connack(Some(close(Initiator::Local, ReasonCode::UNSPECIFIED_ERROR, None)), t),
            ConnectError::Timeout(d) if d == t
        ));
        assert!(matches!(
            E::before_connack(
                Some(close(
                    Initiator::Transport,
                    ReasonCode::UNSPECIFIED_ERROR,
                    None
                )),
                t
            ),
            ConnectError::ClosedByBroker
        ));
        assert!(matches!(
            E::before_connack(None, t),
            ConnectError::Closed(ReasonCode::UNSPECIFIED_ERROR)
        ));
    }

    #[test]
    fn errors_carry_reason_codes() {
        let e = E::from(crate::Address::parse("http://h").unwrap_err());
        assert!(
            matches!(&e, ConnectError::InvalidAddress { address, .. } if address == "http://h")
        );
        assert_eq!(e.reason_code(), None);
        assert_eq!(
            ClientError::Refused(ReasonCode::QUOTA_EXCEEDED).reason_code(),
            Some(ReasonCode::QUOTA_EXCEEDED)
        );
        assert_eq!(ClientError::Expired.reason_code(), None);
        assert_eq!(
            ClientError::from(TopicError::WildcardInName).reason_code(),
            Some(TopicError::WildcardInName.name_reason())
        );
    }

    #[test]
    fn suback_and_puback_codes_map_to_results() {
        assert_eq!(granted(ReasonCode(1)), Ok(QoS::AtLeastOnce));
        assert_eq!(
            granted(ReasonCode::NOT_AUTHORIZED),
            Err(ReasonCode::NOT_AUTHORIZED)
        );
        assert_eq!(
            publish_outcome(ReasonCode::NO_MATCHING_SUBSCRIBERS),
            Ok(ReasonCode::NO_MATCHING_SUBSCRIBERS)
        );
        assert_eq!(
            publish_outcome(ReasonCode::NOT_AUTHORIZED),
            Err(ClientError::Refused(ReasonCode::NOT_AUTHORIZED))
        );
    }
}
