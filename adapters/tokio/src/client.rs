//! The client handle and its stream of events; the connection task is
//! `mqtt-client`'s, on the runtime of `runtime`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use mqtt_client::mqtt_session::mqtt_codec::ReasonCode;
use mqtt_client::mqtt_session::{Instant, Message};
use mqtt_client::requests::Reply;
use mqtt_client::{ClientError, Requests};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;

use crate::options::ConnectOptions;
use crate::runtime::{millis_since, Channels, Command, OneshotReplies, Tokio};
use crate::ConnectError;

/// How many commands may wait for the connection task before the caller waits.
const COMMAND_QUEUE: usize = 64;

/// What the client reports besides request results, in order.
pub type Event = mqtt_client::Event<Arc<ConnectError>>;

/// A connected MQTT client. Cheap to clone; every clone drives the same
/// connection. When the last clone is dropped the client disconnects.
///
/// Its requests (`publish`, `subscribe`, `disconnect`, ...) are those of
/// [`Requests`]; their futures are `Send`, so they can be spawned.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    origin: tokio::time::Instant,
}

/// The stream of [`Event`]s (received messages first of all) of a [`Client`].
#[derive(Debug)]
pub struct Incoming {
    events: mpsc::Receiver<Event>,
}

/// The events, as a [`futures_core::Stream`]: it ends once the client is
/// done and every event was taken (as [`Incoming::recv`] returns `None`).
impl futures_core::Stream for Incoming {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.poll_recv(cx)
    }
}

/// A request handed to the connection task, its answer still to come: a
/// future of it (the [`Requests::Pending`] of [`Client`], e.g. what
/// `queue_publish` and `try_publish` return). Dropping it does not withdraw
/// the request.
#[derive(Debug)]
#[must_use = "the answer comes through it; dropping it does not withdraw the request"]
pub struct Pending<T> {
    answer: oneshot::Receiver<Result<T, ClientError>>,
}

impl<T> Future for Pending<T> {
    type Output = Result<T, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(ClientError::Disconnected)))
    }
}

impl Incoming {
    /// The next event; `None` once the client is done (disconnected, or the
    /// connection lost without reconnection) and every event was taken.
    pub async fn recv(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The next received message, skipping other events; `None` once the
    /// client is done. Under manual acknowledgement use
    /// [`recv`](Self::recv) instead: its `Event::Message` carries the token
    /// to acknowledge the message with.
    pub async fn recv_message(&mut self) -> Option<Message> {
        loop {
            if let Event::Message { message, .. } = self.events.recv().await? {
                return Some(message);
            }
        }
    }
}

impl Client {
    /// Connects to the broker and waits for its CONNACK; the connection then
    /// runs in a background task on the current tokio runtime.
    ///
    /// A failure of this first connection is returned even when
    /// reconnection is configured (which applies to later losses).
    pub async fn connect(mut options: ConnectOptions) -> Result<(Client, Incoming), ConnectError> {
        let tls = options.take_tls()?;
        let parts = options.common.into_parts()?;
        let origin = tokio::time::Instant::now();
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events) = mpsc::channel(parts.incoming_capacity);
        let (ready_tx, ready) = oneshot::channel();
        let runtime = Tokio { origin, tls };
        let link = Channels {
            commands,
            events: PollSender::new(events_tx),
            ready: Some(ready_tx),
        };
        tokio::spawn(mqtt_client::runtime::run(runtime, link, parts));
        match ready.await {
            Ok(Ok(())) => Ok((
                Client {
                    commands: commands_tx,
                    origin,
                },
                Incoming { events },
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(mqtt_client::ConnectError::Closed(ReasonCode::UNSPECIFIED_ERROR).into()),
        }
    }

    /// The client's clock, as `mqtt-session` counts it: for message expiry
    /// deadlines (`MessageProps::expires_at`).
    pub fn now(&self) -> Instant {
        millis_since(self.origin)
    }
}

impl Requests for Client {
    type ReplySender = OneshotReplies;
    type Pending<T: Send> = Pending<T>;

    async fn submit<T: Send>(
        &self,
        make: impl FnOnce(Reply<OneshotReplies, T>) -> Command + Send,
    ) -> Result<Pending<T>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| ClientError::Disconnected)?;
        Ok(Pending { answer })
    }

    fn try_submit<T: Send>(
        &self,
        make: impl FnOnce(Reply<OneshotReplies, T>) -> Command,
    ) -> Result<Pending<T>, ClientError> {
        let (reply, answer) = oneshot::channel();
        match self.commands.try_send(make(reply)) {
            Ok(()) => Ok(Pending { answer }),
            Err(TrySendError::Full(_)) => Err(ClientError::RequestQueueFull),
            Err(TrySendError::Closed(_)) => Err(ClientError::Disconnected),
        }
    }
}
