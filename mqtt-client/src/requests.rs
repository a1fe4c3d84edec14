//! The request methods of a client handle, written once: an adapter's
//! `Client` provides [`Requests::submit`] and [`Requests::try_submit`]
//! (async) or [`BlockingRequests::submit`] and
//! [`BlockingRequests::try_submit`] (blocking), which hand a [`Command`]
//! with a fresh reply handle to its
//! [`ClientDriver`](crate::driver::ClientDriver) and return what the answer
//! will come through (its `Pending`), and gets `publish`,
//! `publish_message`, `queue_publish`, `try_publish`, `subscribe`,
//! `subscribe_with`, `unsubscribe`, `ack`, `disconnect` and
//! `disconnect_with`.

use alloc::vec::Vec;
use core::future::Future;

use bytes::Bytes;
use mqtt_session::mqtt_codec::{
    DisconnectProps, QoS, ReasonCode, SubscriptionId, SubscriptionOptions, TopicError, TopicFilter,
    TopicName,
};
use mqtt_session::Message;

use crate::driver::{AckToken, Command, ReplySender};
use crate::error::{ClientError, SubscribeResult};

/// The reply handle of `K` for an answer of type `T`.
pub type Reply<K, T> = <K as ReplySender>::Reply<T>;

/// The requests of an async client handle. The futures are `Send`, so they
/// can be spawned on a multi-threaded executor.
///
/// An adapter implements [`request`](Requests::request); the other methods
/// come with it. Bring the trait into scope to call them:
/// ```ignore
/// use mqtt_tokio::{Client, QoS, Requests};
/// client.publish("sensors/1/temp", "21.5", QoS::AtLeastOnce, false).await?;
/// ```
pub trait Requests: Sync {
    /// How the client's driver hands answers back.
    type ReplySender: ReplySender;

    /// A request handed to the client's driver, its answer still to come:
    /// a future of the answer ([`ClientError::Disconnected`] if the driver
    /// went away without one). Dropping it does not withdraw the request.
    type Pending<T: Send>: Future<Output = Result<T, ClientError>> + Send + Unpin;

    /// Makes the command with a fresh reply handle (`make`) and hands it to
    /// the client's driver, waiting while its request queue is full;
    /// [`ClientError::Disconnected`] if the driver is gone.
    fn submit<T: Send>(
        &self,
        make: impl FnOnce(Reply<Self::ReplySender, T>) -> Command<Self::ReplySender> + Send,
    ) -> impl Future<Output = Result<Self::Pending<T>, ClientError>> + Send;

    /// [`submit`](Requests::submit) without waiting:
    /// [`ClientError::RequestQueueFull`] if the request queue is full (the
    /// command is not made).
    fn try_submit<T: Send>(
        &self,
        make: impl FnOnce(Reply<Self::ReplySender, T>) -> Command<Self::ReplySender>,
    ) -> Result<Self::Pending<T>, ClientError>;

    /// Hands the command to the client's driver ([`submit`](Requests::submit))
    /// and waits for the answer.
    fn request<T: Send>(
        &self,
        make: impl FnOnce(Reply<Self::ReplySender, T>) -> Command<Self::ReplySender> + Send,
    ) -> impl Future<Output = Result<T, ClientError>> + Send {
        async move { self.submit(make).await?.await }
    }

    /// Publishes `payload` to `topic`. The answer comes when the message
    /// is handed to the network (QoS 0), acknowledged with PUBACK (QoS 1)
    /// or complete with PUBCOMP (QoS 2): the broker's reason code
    /// (success or 0x10 "no matching subscribers" under 5.0; always
    /// success under 3.1.1). A failure reason code is
    /// [`ClientError::Refused`].
    fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> impl Future<Output = Result<ReasonCode, ClientError>> + Send {
        let message = message(topic, payload, qos, retain);
        async move { self.publish_message(message?).await }
    }

    /// Publishes a message with 5.0 properties; see
    /// [`publish`](Requests::publish). A message expiry
    /// (`props.expires_at`) counts from the client's clock (the adapter's
    /// `Client::now`).
    fn publish_message(
        &self,
        message: Message,
    ) -> impl Future<Output = Result<ReasonCode, ClientError>> + Send {
        self.request(|reply| Command::Publish { message, reply })
    }

    /// Hands a publish to the client and returns once it is queued, not
    /// once the broker answered: the returned [`Pending`](Requests::Pending)
    /// resolves to what [`publish`](Requests::publish) would have returned.
    /// So one task can have many QoS 1/2 messages in flight (up to the
    /// broker's Receive Maximum; the rest wait in the session's queue, in
    /// order). Waits only while the client's request queue is full.
    fn queue_publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> impl Future<Output = Result<Self::Pending<ReasonCode>, ClientError>> + Send {
        let message = message(topic, payload, qos, retain);
        async move { self.queue_publish_message(message?).await }
    }

    /// [`queue_publish`](Requests::queue_publish) of a message with 5.0
    /// properties.
    fn queue_publish_message(
        &self,
        message: Message,
    ) -> impl Future<Output = Result<Self::Pending<ReasonCode>, ClientError>> + Send {
        self.submit(|reply| Command::Publish { message, reply })
    }

    /// [`queue_publish`](Requests::queue_publish) that never waits: a full
    /// request queue is [`ClientError::RequestQueueFull`] at once, and the
    /// message is not published.
    fn try_publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Self::Pending<ReasonCode>, ClientError> {
        self.try_publish_message(message(topic, payload, qos, retain)?)
    }

    /// [`try_publish`](Requests::try_publish) of a message with 5.0
    /// properties.
    fn try_publish_message(
        &self,
        message: Message,
    ) -> Result<Self::Pending<ReasonCode>, ClientError> {
        self.try_submit(|reply| Command::Publish { message, reply })
    }

    /// Acknowledges a received message under manual acknowledgement
    /// ([`OptionSetters::manual_acks`](crate::OptionSetters::manual_acks)),
    /// with the `ack` token of its [`Event::Message`](crate::Event::Message).
    /// The acknowledgement leaves once those of every message received
    /// before it have ([MQTT-4.6.0-2] [MQTT-4.6.0-3]). Acknowledging twice is
    /// [`ClientError::NotAwaitingAck`]; a message of an earlier connection
    /// is [`ClientError::StaleAck`] (the broker sends it again, with a new
    /// token). Neither sends anything.
    fn ack(&self, token: AckToken) -> impl Future<Output = Result<(), ClientError>> + Send {
        self.request(move |reply| Command::Ack { token, reply })
    }

    /// Subscribes to one filter; returns the QoS the broker granted, or
    /// [`ClientError::Refused`] with its failure reason code.
    fn subscribe(
        &self,
        filter: &str,
        qos: QoS,
    ) -> impl Future<Output = Result<QoS, ClientError>> + Send {
        let filters = subscription_filters(&[(filter, SubscriptionOptions::new(qos))]);
        async move {
            let filters = filters?;
            let results = self
                .request(|reply| subscribe_command(filters, None, reply))
                .await?;
            first_granted(&results).map_err(ClientError::Refused)
        }
    }

    /// Subscribes to several filters with 5.0 subscription options (No
    /// Local, Retain As Published, Retain Handling) and an optional
    /// subscription identifier; one result per filter, in order.
    fn subscribe_with(
        &self,
        filters: &[(&str, SubscriptionOptions)],
        identifier: Option<SubscriptionId>,
    ) -> impl Future<Output = Result<Vec<SubscribeResult>, ClientError>> + Send {
        let filters = subscription_filters(filters);
        async move {
            let filters = filters?;
            self.request(|reply| subscribe_command(filters, identifier, reply))
                .await
        }
    }

    /// Unsubscribes; one reason code per filter under 5.0 (success or
    /// 0x11 "no subscription existed"), none under 3.1.1.
    fn unsubscribe(
        &self,
        filters: &[&str],
    ) -> impl Future<Output = Result<Vec<ReasonCode>, ClientError>> + Send {
        let filters = topic_filters(filters);
        async move {
            let filters = filters?;
            self.request(|reply| Command::Unsubscribe { filters, reply })
                .await
        }
    }

    /// Disconnects normally: DISCONNECT, no will. The answer comes once
    /// the connection is closed; requests still waiting fail with
    /// [`ClientError::Disconnected`].
    fn disconnect(&self) -> impl Future<Output = Result<(), ClientError>> + Send {
        self.disconnect_with(ReasonCode::NORMAL_DISCONNECTION, DisconnectProps::default())
    }

    /// Disconnects with a 5.0 reason code (0x04 asks the broker to
    /// publish the will anyway) and DISCONNECT properties (a reason
    /// string, a new session expiry interval).
    fn disconnect_with(
        &self,
        reason: ReasonCode,
        props: DisconnectProps,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        self.request(move |reply| Command::Disconnect {
            reason,
            props,
            reply,
        })
    }
}

/// A request handed to a blocking client, its answer still to come.
pub trait Wait<T> {
    /// Blocks until the answer comes (or the adapter's request timeout
    /// passes: [`ClientError::Timeout`]); [`ClientError::Disconnected`] if
    /// the client went away without one.
    fn wait(self) -> Result<T, ClientError>;
}

/// The requests of a blocking client handle: each method returns once the
/// broker has answered (or the adapter's request timeout passed), except
/// `queue_publish` and `try_publish`, which return a handle to
/// [`wait`](Wait::wait) on later.
///
/// An adapter implements [`submit`](BlockingRequests::submit) and
/// [`try_submit`](BlockingRequests::try_submit); the other methods come
/// with them. Bring the trait into scope to call them.
pub trait BlockingRequests {
    /// How the client's driver hands answers back.
    type ReplySender: ReplySender;

    /// A request handed to the client's driver, its answer still to come.
    /// Dropping it does not withdraw the request.
    type Pending<T>: Wait<T>;

    /// Makes the command with a fresh reply handle (`make`) and hands it to
    /// the client's driver, blocking while its request queue is full;
    /// [`ClientError::Disconnected`] if the driver is gone.
    fn submit<T>(
        &self,
        make: impl FnOnce(Reply<Self::ReplySender, T>) -> Command<Self::ReplySender>,
    ) -> Result<Self::Pending<T>, ClientError>;

    /// [`submit`](BlockingRequests::submit) without blocking:
    /// [`ClientError::RequestQueueFull`] if the request queue is full (the
    /// command is not made).
    fn try_submit<T>(
        &self,
        make: impl FnOnce(Reply<Self::ReplySender, T>) -> Command<Self::ReplySender>,
    ) -> Result<Self::Pending<T>, ClientError>;

    /// Hands the command to the client's driver and waits for the answer.
    fn request<T>(
        &self,
        make: impl FnOnce(Reply<Self::ReplySender, T>) -> Command<Self::ReplySender>,
    ) -> Result<T, ClientError> {
        self.submit(make)?.wait()
    }

    /// Publishes `payload` to `topic`; see [`Requests::publish`] for when
    /// the answer comes and what it is.
    fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<ReasonCode, ClientError> {
        self.publish_message(message(topic, payload, qos, retain)?)
    }

    /// Publishes a message with 5.0 properties; see
    /// [`publish`](BlockingRequests::publish). A message expiry
    /// (`props.expires_at`) counts from the client's clock (the adapter's
    /// `Client::now`).
    fn publish_message(&self, message: Message) -> Result<ReasonCode, ClientError> {
        self.request(|reply| Command::Publish { message, reply })
    }

    /// Hands a publish to the client and returns once it is queued; the
    /// handle's [`wait`](Wait::wait) gives what
    /// [`publish`](BlockingRequests::publish) would have returned. So one
    /// thread can have many QoS 1/2 messages in flight. Blocks only while
    /// the client's request queue is full.
    fn queue_publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Self::Pending<ReasonCode>, ClientError> {
        let message = message(topic, payload, qos, retain)?;
        self.submit(|reply| Command::Publish { message, reply })
    }

    /// [`queue_publish`](BlockingRequests::queue_publish) that never
    /// blocks: a full request queue is [`ClientError::RequestQueueFull`] at
    /// once, and the message is not published.
    fn try_publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<Self::Pending<ReasonCode>, ClientError> {
        self.try_publish_message(message(topic, payload, qos, retain)?)
    }

    /// [`try_publish`](BlockingRequests::try_publish) of a message with
    /// 5.0 properties.
    fn try_publish_message(
        &self,
        message: Message,
    ) -> Result<Self::Pending<ReasonCode>, ClientError> {
        self.try_submit(|reply| Command::Publish { message, reply })
    }

    /// Acknowledges a received message under manual acknowledgement; see
    /// [`Requests::ack`].
    fn ack(&self, token: AckToken) -> Result<(), ClientError> {
        self.request(move |reply| Command::Ack { token, reply })
    }

    /// Subscribes to one filter; returns the QoS the broker granted, or
    /// [`ClientError::Refused`] with its failure reason code.
    fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, ClientError> {
        let results = self.subscribe_with(&[(filter, SubscriptionOptions::new(qos))], None)?;
        first_granted(&results).map_err(ClientError::Refused)
    }

    /// Subscribes to several filters with 5.0 subscription options and an
    /// optional subscription identifier; see [`Requests::subscribe_with`].
    fn subscribe_with(
        &self,
        filters: &[(&str, SubscriptionOptions)],
        identifier: Option<SubscriptionId>,
    ) -> Result<Vec<SubscribeResult>, ClientError> {
        let filters = subscription_filters(filters)?;
        self.request(|reply| subscribe_command(filters, identifier, reply))
    }

    /// Unsubscribes; see [`Requests::unsubscribe`].
    fn unsubscribe(&self, filters: &[&str]) -> Result<Vec<ReasonCode>, ClientError> {
        let filters = topic_filters(filters)?;
        self.request(|reply| Command::Unsubscribe { filters, reply })
    }

    /// Disconnects normally; see [`Requests::disconnect`].
    fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(ReasonCode::NORMAL_DISCONNECTION, DisconnectProps::default())
    }

    /// Disconnects with a 5.0 reason code and DISCONNECT properties; see
    /// [`Requests::disconnect_with`].
    fn disconnect_with(
        &self,
        reason: ReasonCode,
        props: DisconnectProps,
    ) -> Result<(), ClientError> {
        self.request(move |reply| Command::Disconnect {
            reason,
            props,
            reply,
        })
    }
}

/// The message of a `publish`, its topic checked.
fn message(
    topic: &str,
    payload: impl Into<Bytes>,
    qos: QoS,
    retain: bool,
) -> Result<Message, TopicError> {
    let topic = TopicName::try_from(topic)?;
    Ok(Message::new(topic, payload, qos, retain))
}

fn subscribe_command<K: ReplySender>(
    filters: Vec<(TopicFilter, SubscriptionOptions)>,
    identifier: Option<SubscriptionId>,
    reply: K::Reply<Vec<SubscribeResult>>,
) -> Command<K> {
    Command::Subscribe {
        filters,
        identifier,
        reply,
    }
}

/// The filters of a SUBSCRIBE as the application wrote them, checked.
pub fn subscription_filters(
    filters: &[(&str, SubscriptionOptions)],
) -> Result<Vec<(TopicFilter, SubscriptionOptions)>, TopicError> {
    filters
        .iter()
        .map(|(f, o)| Ok((TopicFilter::try_from(*f)?, *o)))
        .collect()
}

/// The filters of an UNSUBSCRIBE as the application wrote them, checked.
pub fn topic_filters(filters: &[&str]) -> Result<Vec<TopicFilter>, TopicError> {
    filters.iter().map(|f| TopicFilter::try_from(*f)).collect()
}

/// The outcome of a one-filter SUBSCRIBE: the granted QoS, or the failure
/// reason code (a SUBACK without results is a protocol error).
pub fn first_granted(results: &[SubscribeResult]) -> Result<QoS, ReasonCode> {
    match results.first() {
        Some(result) => *result,
        None => Err(ReasonCode::PROTOCOL_ERROR),
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
