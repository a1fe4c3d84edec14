//! Errors: local misuse ([`UsageError`], [`DeliverError`]) and the peer's
//! protocol violations ([`Violation`], reported inside [`Close`]).

use core::time::Duration;

use mqtt_codec::{
    DecodeError, DisconnectProps, PacketId, PacketType, ProtocolVersion, QoS, ReasonCode,
};

use crate::message::Message;

/// A command the application gave that the connection cannot carry out now.
/// Nothing changes when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The connection is not (yet, or any more) connected.
    #[error("the connection is not connected")]
    NotConnected,
    /// The command does not fit the connection's state (such as accepting twice).
    #[error("the command does not fit the connection's current state")]
    WrongState,
    /// A property that this side may not send in this packet (a session
    /// expiry interval in a server's DISCONNECT, a non-zero one after a zero
    /// one, a server reference from a client) [MQTT-3.14.2-2].
    #[error("this property may not be sent here")]
    PropertyNotAllowed,
    /// The bounded outgoing queue is full.
    #[error("the outgoing queue is full ({limit} messages)")]
    QueueFull {
        /// The configured limit.
        limit: usize,
    },
    /// The packet would exceed the peer's Maximum Packet Size.
    #[error("the packet is {len} bytes, over the peer's maximum packet size of {max}")]
    PacketTooLarge {
        /// Encoded size.
        len: usize,
        /// The peer's limit.
        max: u32,
    },
    /// The server does not accept this QoS (its Maximum QoS).
    #[error("the server accepts at most {max:?}")]
    QosNotSupported {
        /// The server's Maximum QoS.
        max: QoS,
    },
    /// The server does not accept retained messages.
    #[error("the server does not support retained messages")]
    RetainNotSupported,
    /// No operation with this packet identifier is waiting for this answer.
    #[error("no operation is waiting with packet identifier {0}")]
    UnknownPacketId(PacketId),
    /// The packet or value does not exist in this protocol version.
    #[error("not available in {0}")]
    NotInVersion(ProtocolVersion),
    /// A packet could not be encoded (a field over its size limit).
    #[error("the packet cannot be encoded: {0}")]
    Encode(mqtt_codec::EncodeError),
    /// No topic filters were given to SUBSCRIBE or UNSUBSCRIBE.
    #[error("SUBSCRIBE and UNSUBSCRIBE need at least one topic filter")]
    NoTopicFilters,
    /// The message's expiry had passed already: it is not sent [MQTT-3.3.2-5].
    #[error("the message expired before it was published")]
    Expired,
}

/// Why a message could not be delivered to a subscriber's connection or session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliverError {
    /// The message is bigger than the subscriber's Maximum Packet Size; the
    /// server discards it as if delivered [MQTT-3.1.2-25].
    #[error("the message ({len} bytes) exceeds the subscriber's maximum packet size of {max}")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// The subscriber's limit.
        max: u32,
    },
    /// The session's queue of messages waiting for the in-flight window is full.
    #[error("the session's message queue is full ({limit} messages)")]
    QueueFull {
        /// The configured limit.
        limit: usize,
    },
    /// The message expired before it could be sent.
    #[error("the message has expired")]
    Expired,
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
}

impl DeliverError {
    /// The reason code a 5.0 publisher is told, where one applies.
    pub const fn reason_code(self) -> ReasonCode {
        match self {
            DeliverError::QueueFull { .. } => ReasonCode::QUOTA_EXCEEDED,
            // 0x95 Packet too large is not a PUBACK/PUBREC reason code.
            DeliverError::TooLarge { .. } | DeliverError::Expired | DeliverError::Closed => {
                ReasonCode::UNSPECIFIED_ERROR
            }
        }
    }
}

/// A rule of the protocol the peer broke; the connection closes with its reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The bytes are not a valid packet.
    #[error("{0}")]
    Decode(DecodeError),
    /// A packet that may not arrive now or in this direction, such as a second
    /// CONNECT [MQTT-3.1.0-2] or a SUBSCRIBE sent to a client.
    #[error("unexpected {0} packet")]
    UnexpectedPacket(PacketType),
    /// A PUBLISH from a client carrying a Subscription Identifier [MQTT-3.3.4-6].
    #[error("a PUBLISH from a client must not carry a subscription identifier")]
    SubscriptionIdentifierFromClient,
    /// An acknowledgement that does not belong to the flow of its packet
    /// identifier: PUBREC or PUBCOMP for a QoS 1 PUBLISH, PUBACK for a QoS 2
    /// one, PUBCOMP before PUBREC (sections 4.3.2, 4.3.3).
    #[error("{0} does not answer the QoS of the PUBLISH it names")]
    WrongAcknowledgement(PacketType),
    /// More unacknowledged QoS 1/2 publishes than our Receive Maximum [MQTT-3.3.4-9].
    #[error("more QoS 1 and 2 publishes in flight than the receive maximum allows")]
    ReceiveMaximumExceeded,
    /// A topic alias of 0 or above the maximum we announced [MQTT-3.3.2-9].
    #[error("topic alias {0} is out of range")]
    TopicAliasInvalid(u16),
    /// A topic alias with an empty topic that was never set on this connection.
    #[error("topic alias {0} was never assigned a topic")]
    TopicAliasUnknown(u16),
    /// A publish above the QoS the server announced [MQTT-3.2.2-11].
    #[error("QoS {0:?} is above the server's maximum QoS")]
    QosNotSupported(QoS),
    /// A retained publish although the server said retain is not available [MQTT-3.2.2-14].
    #[error("retained publish while retain is not available")]
    RetainNotSupported,
    /// CONNACK with Session Present although the client asked for a clean start [MQTT-3.2.2-4].
    #[error("session present in CONNACK although the client asked for a clean start")]
    UnexpectedSessionPresent,
    /// A DISCONNECT that sets a session expiry when CONNECT set none [MQTT-3.14.2-2].
    #[error("DISCONNECT set a session expiry interval after CONNECT had none")]
    SessionExpiryAfterZero,
    /// An AUTH packet without an authentication method, or one that differs from CONNECT's.
    #[error("bad authentication method")]
    BadAuthenticationMethod,
    /// A SUBSCRIBE or UNSUBSCRIBE with the packet identifier of one still
    /// unanswered [MQTT-2.2.1-3].
    #[error("packet identifier {0:?} is in use by an unanswered request")]
    PacketIdInUse(PacketId),
}

impl Violation {
    /// The reason code that reports this violation (in DISCONNECT or CONNACK).
    pub const fn reason(&self) -> ReasonCode {
        match self {
            Violation::Decode(e) => e.reason_code(),
            Violation::UnexpectedPacket(_)
            | Violation::SubscriptionIdentifierFromClient
            | Violation::WrongAcknowledgement(_)
            | Violation::SessionExpiryAfterZero
            | Violation::UnexpectedSessionPresent
            | Violation::PacketIdInUse(_) => ReasonCode::PROTOCOL_ERROR,
            Violation::ReceiveMaximumExceeded => ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
            Violation::TopicAliasInvalid(_) => ReasonCode::TOPIC_ALIAS_INVALID,
            Violation::TopicAliasUnknown(_) => ReasonCode::PROTOCOL_ERROR,
            Violation::QosNotSupported(_) => ReasonCode::QOS_NOT_SUPPORTED,
            Violation::RetainNotSupported => ReasonCode::RETAIN_NOT_SUPPORTED,
            Violation::BadAuthenticationMethod => ReasonCode::BAD_AUTHENTICATION_METHOD,
        }
    }

    /// The normative statement broken, as the specification numbers it (or
    /// the section, where the rule has no number).
    pub const fn spec_ref(&self) -> &'static str {
        match self {
            Violation::Decode(_) => "MQTT-4.13.1-1",
            Violation::UnexpectedPacket(PacketType::Connect) => "MQTT-3.1.0-2",
            Violation::UnexpectedPacket(_) => "MQTT-4.13.1-1",
            Violation::SubscriptionIdentifierFromClient => "MQTT-3.3.4-6",
            // No numbered statement: the QoS 1 and QoS 2 flows of sections
            // 4.3.2 and 4.3.3, which Mosquitto enforces the same way.
            Violation::WrongAcknowledgement(_) => "4.3.2, 4.3.3",
            // Client to server, server to client.
            Violation::ReceiveMaximumExceeded => "MQTT-3.3.4-7, MQTT-3.3.4-9",
            Violation::TopicAliasInvalid(_) => "MQTT-3.3.2-9, MQTT-3.3.2-11",
            // No numbered statement: section 3.3.2.3.4.
            Violation::TopicAliasUnknown(_) => "3.3.2.3.4",
            Violation::QosNotSupported(_) => "MQTT-3.2.2-11",
            Violation::RetainNotSupported => "MQTT-3.2.2-14",
            // No numbered statement: section 3.14.2.2.2.
            Violation::SessionExpiryAfterZero => "3.14.2.2.2",
            Violation::UnexpectedSessionPresent => "MQTT-3.2.2-4",
            Violation::BadAuthenticationMethod => "MQTT-4.12.0-7",
            Violation::PacketIdInUse(_) => "MQTT-2.2.1-3",
        }
    }
}

/// Which side ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This side: the application closed it, or a timer expired.
    Local,
    /// The peer: it sent DISCONNECT or broke the protocol.
    Peer,
    /// The transport: the adapter reported end of stream or an IO error.
    Transport,
}

/// How a connection ended: always the last event a connection emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// Which side ended it.
    pub initiator: Initiator,
    /// The reason code of the DISCONNECT sent or received (normal disconnection
    /// when none was exchanged and nothing went wrong).
    pub reason: ReasonCode,
    /// The protocol rule the peer broke, if that is why.
    pub violation: Option<Violation>,
    /// Server side: the Will Message to publish and the delay before publishing
    /// it, if the will is due (it is unless the client disconnected normally).
    pub will: Option<(Message, Duration)>,
    /// 5.0 diagnostics of the end: the properties of the DISCONNECT received
    /// (initiator [`Initiator::Peer`]) or sent (initiator [`Initiator::Local`]),
    /// or the reason string of a refusing CONNACK; empty otherwise.
    pub props: DisconnectProps,
}

impl Close {
    /// This side ended the connection with `reason`.
    pub fn local(reason: ReasonCode) -> Close {
        Close::local_with(reason, DisconnectProps::default())
    }

    /// This side ended the connection with `reason` and these 5.0
    /// diagnostics.
    pub fn local_with(reason: ReasonCode, props: DisconnectProps) -> Close {
        Close {
            initiator: Initiator::Local,
            reason,
            violation: None,
            will: None,
            props,
        }
    }

    /// The peer ended the connection (a DISCONNECT, or a refusing CONNACK)
    /// with `reason` and these 5.0 diagnostics.
    pub fn by_peer(reason: ReasonCode, props: DisconnectProps) -> Close {
        Close {
            initiator: Initiator::Peer,
            reason,
            violation: None,
            will: None,
            props,
        }
    }

    /// The peer broke the protocol rule `violation`; `reason` is what this
    /// side answered (or would have, where the version has no DISCONNECT).
    pub fn broken_rule(reason: ReasonCode, violation: Violation) -> Close {
        Close {
            initiator: Initiator::Peer,
            reason,
            violation: Some(violation),
            will: None,
            props: DisconnectProps::default(),
        }
    }

    /// The transport ended (end of stream or an IO error) without either
    /// side closing the connection first.
    pub fn transport_ended() -> Close {
        Close {
            initiator: Initiator::Transport,
            reason: ReasonCode::UNSPECIFIED_ERROR,
            violation: None,
            will: None,
            props: DisconnectProps::default(),
        }
    }
}
