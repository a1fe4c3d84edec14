//! `mqtt-client`'s connection task on tokio: the clock and timers, opening
//! the transport, randomness, and the channels to the client handles.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mqtt_client::driver::{self, ReplySender};
use mqtt_client::mqtt_session::{ClientConfig, Instant};
use mqtt_client::runtime::{Link, Runtime, Timer};
use mqtt_client::{Address, ClientError};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;

use crate::options::TlsConfig;
use crate::transport::{self, Transport};
use crate::{ConnectError, Event};

/// How the connection task answers a [`Client`](crate::Client)'s requests:
/// over tokio oneshot channels (the [`Requests::ReplySender`](crate::Requests::ReplySender)
/// of the client).
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

/// tokio's clock (milliseconds since `origin`) and timers, and the
/// transports of `transport`.
pub(crate) struct Tokio {
    pub(crate) origin: tokio::time::Instant,
    pub(crate) tls: Option<TlsConfig>,
}

/// The instant `origin` + `t`.
fn at(origin: tokio::time::Instant, t: Instant) -> tokio::time::Instant {
    origin + Duration::from_millis(t.as_millis())
}

/// Milliseconds since `origin`, as `mqtt-session` counts time.
pub(crate) fn millis_since(origin: tokio::time::Instant) -> Instant {
    Instant::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX))
}

impl Runtime for Tokio {
    type Transport = Transport;
    type Timer = Sleep;
    type Error = ConnectError;

    fn now(&self) -> Instant {
        millis_since(self.origin)
    }

    fn timer(&self, deadline: Instant) -> Sleep {
        Sleep {
            origin: self.origin,
            sleep: Box::pin(tokio::time::sleep_until(at(self.origin, deadline))),
        }
    }

    fn open(
        &self,
        address: &Address,
        config: &ClientConfig,
    ) -> impl Future<Output = Result<Transport, ConnectError>> {
        transport::open(address, self.tls.as_ref(), config.limits.max_packet_size)
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

/// A tokio timer, re-armed in place.
pub(crate) struct Sleep {
    origin: tokio::time::Instant,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Timer for Sleep {
    fn reset(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(at(self.origin, deadline));
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
    }
}

/// The connection task's ends of the channels.
pub(crate) struct Channels {
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: PollSender<Event>,
    /// Answers `Client::connect` once the first connection succeeds or fails.
    pub(crate) ready: Option<oneshot::Sender<Result<(), ConnectError>>>,
}

impl Link for Channels {
    type ReplySender = OneshotReplies;
    type Error = ConnectError;

    fn poll_command(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        self.commands.poll_recv(cx)
    }

    fn poll_event_room(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        self.events.poll_reserve(cx).map(|room| room.is_ok())
    }

    fn send_event(&mut self, event: Event) {
        let _ = self.events.send_item(event);
    }

    fn connected(&mut self, outcome: Result<(), ConnectError>) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(outcome);
        }
    }
}
