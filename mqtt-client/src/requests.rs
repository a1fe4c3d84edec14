//! The request methods of a client handle, written once: an adapter's
//! `Client` provides [`Requests::request`] (async) or
//! [`BlockingRequests::request`] (blocking), which hands a
//! [`Command`] with a fresh reply handle to its
//! [`ClientDriver`](crate::driver::ClientDriver) and waits for the answer,
//! and gets `publish`, `publish_message`, `subscribe`, `subscribe_with`,
//! `unsubscribe`, `disconnect` and `disconnect_with`.

use alloc::vec::Vec;
use core::future::Future;

use bytes::Bytes;
use mqtt_session::mqtt_codec::{
    DisconnectProps, QoS, ReasonCode, SubscriptionId, SubscriptionOptions, TopicError, TopicFilter,
    TopicName,
};
use mqtt_session::Message;

use crate::driver::{Command, ReplySender};
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

    /// Makes the command with a fresh reply handle (`make`), hands it to the
    /// client's driver and waits for the answer; [`ClientError::Disconnected`]
    /// if the driver is gone.
    fn request<T: Send>(
        &self,
        make: impl FnOnce(Reply<Self::ReplySender, T>) -> Command<Self::ReplySender> + Send,
    ) -> impl Future<Output = Result<T, ClientError>> + Send;

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

/// The requests of a blocking client handle: each method returns once the
/// broker has answered (or the adapter's request timeout passed).
///
/// An adapter implements [`request`](BlockingRequests::request); the other
/// methods come with it. Bring the trait into scope to call them.
pub trait BlockingRequests {
    /// How the client's driver hands answers back.
    type ReplySender: ReplySender;

    /// Makes the command with a fresh reply handle (`make`), hands it to the
    /// client's driver and waits for the answer; [`ClientError::Disconnected`]
    /// if the driver is gone.
    fn request<T>(
        &self,
        make: impl FnOnce(Reply<Self::ReplySender, T>) -> Command<Self::ReplySender>,
    ) -> Result<T, ClientError>;

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
