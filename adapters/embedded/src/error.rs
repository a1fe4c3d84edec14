//! What can go wrong for the caller of a client method.

use alloc::boxed::Box;

use embedded_io_async::ErrorKind;
use mqtt_session::mqtt_codec::{ReasonCode, TopicError};
use mqtt_session::{Close, UsageError};

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a failure reason code: a refusing CONNACK
    /// (bad credentials, client identifier not valid, ...), a failure PUBACK
    /// or PUBREC (5.0, e.g. 0x87 not authorized), or a failure SUBACK code
    /// for [`Client::subscribe`](crate::Client::subscribe).
    #[error("the server refused: {0}")]
    Refused(ReasonCode),
    /// The topic name or filter is not valid.
    #[error("invalid topic: {0}")]
    Topic(#[from] TopicError),
    /// The connection has ended: closed by this side, by the server (with
    /// its DISCONNECT reason), for a protocol violation, or because the
    /// server stopped answering (keep-alive timeout, 0x8D).
    #[error("the connection is closed (by {:?}, reason {})", .0.initiator, .0.reason)]
    Closed(Box<Close>),
    /// The transport failed or reached its end; the connection is lost.
    #[error("the connection was lost: the transport reported {0:?}")]
    Transport(ErrorKind),
    /// The call cannot be carried out in the connection's state (not
    /// connected yet, queue full, packet larger than the server accepts, a
    /// QoS or retain the server does not support, ...).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The buffer of received messages is full, so the client stopped
    /// reading: take messages ([`Client::next_message`](crate::Client::next_message),
    /// [`Client::try_next_message`](crate::Client::try_next_message)) and call again.
    #[error("the buffer of received messages is full: take messages, then call again")]
    Backlog,
    /// A queued publish reached its message expiry interval before it could
    /// be sent, and was dropped [MQTT-3.3.2-5].
    #[error("the message expired before it could be sent")]
    Expired,
    /// [`Client::ack`](crate::Client::ack) with the token of a message this
    /// client did not receive (a message of an earlier client, whose packet
    /// identifier now belongs to another message): nothing is sent.
    #[error("the token is of a message this client did not receive")]
    StaleAck,
    /// [`Client::ack`](crate::Client::ack) with the token of a message that
    /// waits for no acknowledgement on this client (acknowledged already,
    /// or received by an earlier client: the server sends it again). Nothing
    /// is sent.
    #[error("no message waits for an acknowledgement with this token")]
    NotAwaitingAck,
}
