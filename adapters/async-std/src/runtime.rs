//! `mqtt-client`'s connection task on `async-io` (the reactor async-std and
//! smol share) and `futures-channel`/`async-channel`: the clock and timers,
//! the transports of `transport`, randomness, and the channels to the
//! client handles.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_lite::Stream;
use mqtt_client::driver::{self, ReplySender};
use mqtt_client::mqtt_session::{ClientConfig, Instant};
use mqtt_client::runtime::{Link, Runtime, Timer};
use mqtt_client::{Address, ClientError};

use crate::options::TlsConfig;
use crate::transport::{self, Transport};
use crate::{ConnectError, Event};

/// How the connection task answers a [`Client`](crate::Client)'s requests:
/// over `futures-channel` oneshot channels (the
/// [`Requests::ReplySender`](crate::Requests::ReplySender) of the client).
#[derive(Debug)]
pub enum OneshotReplies {}

impl ReplySender for OneshotReplies {
    type Reply<T> = oneshot::Sender<Result<T, ClientError>>;
    type ConnectError = Arc<ConnectError>;

    fn send<T>(reply: Self::Reply<T>, result: Result<T, ClientError>) {
        let _ = reply.send(result);
    }
}

pub(crate) type Command = driver::Command<OneshotReplies>;

/// The standard library's clock (milliseconds since `origin`), `async-io`'s
/// timers and the transports of `transport`.
pub(crate) struct AsyncIo {
    pub(crate) origin: std::time::Instant,
    pub(crate) tls: Option<TlsConfig>,
}

/// The instant `origin` + `t`.
fn at(origin: std::time::Instant, t: Instant) -> std::time::Instant {
    origin + Duration::from_millis(t.as_millis())
}

/// Milliseconds since `origin`, as `mqtt-session` counts time.
pub(crate) fn millis_since(origin: std::time::Instant) -> Instant {
    Instant::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX))
}

impl Runtime for AsyncIo {
    type Transport = Transport;
    type Timer = Alarm;
    type Error = ConnectError;

    fn now(&self) -> Instant {
        millis_since(self.origin)
    }

    fn timer(&self, deadline: Instant) -> Alarm {
        let at = at(self.origin, deadline);
        Alarm {
            origin: self.origin,
            at,
            timer: async_io::Timer::at(at),
        }
    }

    async fn open(
        &self,
        address: &Address,
        config: &ClientConfig,
    ) -> Result<Transport, ConnectError> {
        transport::open(address, self.tls.as_ref(), config.limits.max_packet_size).await
    }

    /// From the standard library's randomly keyed hasher.
    fn random(&self) -> u32 {
        use std::hash::BuildHasher;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        std::collections::hash_map::RandomState::new().hash_one(nanos) as u32
    }

    /// From the operating system (`getrandom`).
    fn nonce(&self, buf: &mut [u8]) -> bool {
        getrandom::fill(buf).is_ok()
    }
}

/// An `async-io` timer, re-armed in place.
pub(crate) struct Alarm {
    origin: std::time::Instant,
    at: std::time::Instant,
    timer: async_io::Timer,
}

impl Timer for Alarm {
    fn reset(&mut self, deadline: Instant) {
        self.at = at(self.origin, deadline);
        self.timer.set_at(self.at);
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // An `async-io` timer fires once; the deadline stays passed.
        if std::time::Instant::now() >= self.at {
            return Poll::Ready(());
        }
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}

/// The connection task's ends of the channels.
pub(crate) struct Channels {
    /// Pinned: the receiver is `!Unpin`.
    pub(crate) commands: Pin<Box<async_channel::Receiver<Command>>>,
    pub(crate) events: mpsc::Sender<Event>,
    /// Answers `Client::connect` once the first connection succeeds or fails.
    pub(crate) ready: Option<oneshot::Sender<Result<(), ConnectError>>>,
}

/// The task is done: the requests still queued are answered (with
/// [`ClientError::Disconnected`](mqtt_client::ClientError::Disconnected)),
/// since an async-channel keeps its messages while a sender lives, and
/// their callers would wait forever; later ones fail to send.
impl Drop for Channels {
    fn drop(&mut self) {
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            command.fail(mqtt_client::ClientError::Disconnected);
        }
    }
}

impl Link for Channels {
    type ReplySender = OneshotReplies;
    type Error = ConnectError;

    fn poll_command(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        self.commands.as_mut().poll_next(cx)
    }

    fn poll_event_room(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        self.events.poll_ready(cx).map(|room| room.is_ok())
    }

    fn send_event(&mut self, event: Event) {
        let _ = self.events.start_send(event);
    }

    fn connected(&mut self, outcome: Result<(), ConnectError>) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(outcome);
        }
    }
}
