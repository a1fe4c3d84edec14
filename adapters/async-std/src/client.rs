//! The client handle and its stream of events; the connection task is
//! `mqtt-client`'s, on the runtime of `runtime`.

use std::future::poll_fn;
use std::sync::Arc;

use futures_channel::{mpsc, oneshot};
use futures_lite::StreamExt;
use mqtt_client::mqtt_session::mqtt_codec::ReasonCode;
use mqtt_client::mqtt_session::{Instant, Message};
use mqtt_client::requests::Reply;
use mqtt_client::{ClientError, Requests};

use crate::options::{ConnectOptions, Task};
use crate::runtime::{millis_since, AsyncIo, Channels, Command, OneshotReplies};
use crate::ConnectError;

/// How many commands may wait for the connection task before the caller waits.
const COMMAND_QUEUE: usize = 64;

/// What the client reports besides request results, in order.
pub type Event = mqtt_client::Event<Arc<ConnectError>>;

/// A connected MQTT client. Cheap to clone; every clone drives the same
/// connection. When the last clone is dropped the client disconnects.
///
/// Its requests (`publish`, `subscribe`, `disconnect`, ...) are those of
/// [`Requests`]; their futures are `Send`.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    origin: std::time::Instant,
}

/// The stream of [`Event`]s (received messages first of all) of a [`Client`].
#[derive(Debug)]
pub struct Incoming {
    events: mpsc::Receiver<Event>,
}

impl Incoming {
    /// The next event; `None` once the client is done (disconnected, or the
    /// connection lost without reconnection) and every event was taken.
    pub async fn recv(&mut self) -> Option<Event> {
        self.events.next().await
    }

    /// The next received message, skipping other events; `None` once the
    /// client is done.
    pub async fn recv_message(&mut self) -> Option<Message> {
        loop {
            if let Event::Message { message, .. } = self.events.next().await? {
                return Some(message);
            }
        }
    }
}

impl Client {
    /// Connects to the broker and waits for its CONNACK; the connection then
    /// runs in a background task: on its own thread, or on the executor of
    /// [`ConnectOptions::spawner`].
    ///
    /// A failure of this first connection is returned even when
    /// reconnection is configured (which applies to later losses).
    pub async fn connect(options: ConnectOptions) -> Result<(Client, Incoming), ConnectError> {
        let parts = options.common.into_parts()?;
        let origin = std::time::Instant::now();
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events) = mpsc::channel(parts.incoming_capacity);
        let (ready_tx, ready) = oneshot::channel();
        let link = Channels {
            commands,
            events: events_tx,
            ready: Some(ready_tx),
        };
        let task: Task = Box::pin(mqtt_client::runtime::run(AsyncIo { origin }, link, parts));
        match options.spawner {
            Some(spawn) => spawn(task),
            None => {
                std::thread::Builder::new()
                    .name("mqtt-async-std".into())
                    .spawn(move || async_io::block_on(task))?;
            }
        }
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

    async fn request<T: Send>(
        &self,
        make: impl FnOnce(Reply<OneshotReplies, T>) -> Command + Send,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        // A sender of its own: sending needs `&mut`, handles are shared.
        let mut commands = self.commands.clone();
        poll_fn(|cx| commands.poll_ready(cx))
            .await
            .map_err(|_| ClientError::Disconnected)?;
        commands
            .start_send(make(reply))
            .map_err(|_| ClientError::Disconnected)?;
        answer.await.map_err(|_| ClientError::Disconnected)?
    }
}
