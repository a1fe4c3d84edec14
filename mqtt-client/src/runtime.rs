//! One connection task for every async runtime: [`run`] drives a
//! [`ClientDriver`](crate::driver::ClientDriver) over the connections of one
//! client, written once over a few small traits, the way quinn's `runtime`
//! module abstracts over tokio and async-std. An adapter provides:
//!
//! - a [`Runtime`]: its clock and [`Timer`]s, opening a [`Transport`] to the
//!   broker (TCP, TLS, WebSocket: whatever it speaks), and random numbers
//!   for the reconnection backoff's jitter;
//! - a [`Link`]: its channels to the application's handles (commands in,
//!   events out, the first connection's outcome).
//!
//! Everything is poll-based (`core::task` only), so this crate needs no
//! runtime, no `std` and no executor of its own; the task is a plain future
//! the adapter spawns. Its futures are `Send` when the adapter's types are.
//!
//! ```text
//! let parts = options.into_parts()?;
//! spawn(mqtt_client::runtime::run(MyRuntime { .. }, MyLink { commands, events, ready }, parts));
//! ready.await  // Ok at the first CONNACK, or why the first connection failed
//! ```
//!
//! What the task does: it opens the transport (bounded by the connect
//! timeout) and serves the connection, selecting fairly over writing,
//! reading (paused while events wait for room, so memory stays bounded),
//! handing events over, taking commands and the session's timer. When a
//! connection is lost and reconnection is on, it waits out the backoff,
//! still taking commands (held for the next connection) and handing events
//! over, and opens a new transport; failed attempts become
//! [`Event::ReconnectFailed`]. It
//! ends once the client is done: disconnected, every handle dropped, or the
//! connection lost for good.

use core::future::Future;
use core::task::{Context, Poll};

use mqtt_session::{ClientConfig, Instant};

use crate::address::Address;
use crate::driver::{Command, Event, ReplySender};
use crate::error::ConnectError;
use crate::options::ClientParts;

/// A byte stream to the broker, as an adapter opened it. Poll-based, like
/// `futures-io`'s `AsyncRead`/`AsyncWrite`: the task keeps a read and a
/// write pending at once on the same stream.
pub trait Transport {
    /// What a failed read, write or close reports (`std::io::Error` for the
    /// socket adapters).
    type Error;

    /// Reads into `buf`: `Ready(Ok(0))` is the end of the stream.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, Self::Error>>;

    /// Writes from `buf`, returning how many bytes were taken (`Ok(0)`: the
    /// stream can take no more).
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, Self::Error>>;

    /// Sends what the stream buffered (a TLS layer keeps records it could
    /// not write yet).
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;

    /// Flushes and closes the stream (TLS `close_notify`, TCP FIN,
    /// WebSocket Close).
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;
}

/// A timer the task re-arms as the session's deadlines move.
pub trait Timer {
    /// Fires at `deadline` instead (on the [`Runtime::now`] clock).
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline has passed (and again on every poll until
    /// it is reset).
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// What the task needs of the platform: a clock and timers, a way to
/// reach the broker, and randomness. Nothing here is MQTT.
pub trait Runtime {
    /// The byte stream [`open`](Runtime::open) yields.
    type Transport: Transport;
    /// The timer [`timer`](Runtime::timer) makes.
    type Timer: Timer;
    /// Why connecting failed: the adapter's connect error, which carries the
    /// protocol's [`ConnectError`] and the transport's errors.
    type Error: From<ConnectError> + From<<Self::Transport as Transport>::Error>;

    /// The current time: monotonic milliseconds since an epoch the runtime
    /// chooses (the `Client::now` of the adapter's handles).
    fn now(&self) -> Instant;

    /// A timer that fires at `deadline`.
    fn timer(&self, deadline: Instant) -> Self::Timer;

    /// Opens a transport to `address` (TCP, and TLS or WebSocket as the
    /// address says). The task bounds it with `config.connect_timeout`;
    /// `config.limits.max_packet_size` bounds what a message-based
    /// transport (WebSocket) needs to buffer.
    fn open(
        &self,
        address: &Address,
        config: &ClientConfig,
    ) -> impl Future<Output = Result<Self::Transport, Self::Error>>;

    /// Any random number (for the reconnection backoff's jitter).
    fn random(&self) -> u32;

    /// Fills `buf` with unpredictable bytes from the operating system
    /// (a connection's nonce for enhanced authentication, such as SCRAM's;
    /// called only when the mechanism asks for randomness);
    /// false if the operating system gave none (the connection then fails
    /// with [`ConnectError::Authentication`] rather than use a guessable
    /// nonce).
    fn nonce(&self, buf: &mut [u8]) -> bool;
}

/// The task's side of the channels to the application: commands from the
/// client handles, events to its `Incoming`, and the outcome of the first
/// connection for `Client::connect`.
pub trait Link {
    /// How the adapter hands answers back to the callers waiting for them.
    type ReplySender: ReplySender;
    /// The error the first connection's failure is reported with (the
    /// runtime's [`Runtime::Error`]).
    type Error;

    /// The next command; `Ready(None)` once every handle is gone (the client
    /// then disconnects normally).
    fn poll_command(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command<Self::ReplySender>>>;

    /// Room for one event: `Ready(true)` reserves it for the
    /// [`send_event`](Link::send_event) that follows; `Ready(false)` says
    /// nobody listens any more (the events are dropped).
    fn poll_event_room(&mut self, cx: &mut Context<'_>) -> Poll<bool>;

    /// Hands an event over, into the room just reserved.
    fn send_event(&mut self, event: Event<<Self::ReplySender as ReplySender>::ConnectError>);

    /// The outcome of the first connection, once known (called once): `Ok`
    /// at its CONNACK, or why it failed. Later connections report through
    /// events.
    fn connected(&mut self, outcome: Result<(), Self::Error>);
}

/// Runs a client until it is done: the connection task of every async
/// adapter. `parts` are the checked options
/// ([`ClientOptions::into_parts`](crate::ClientOptions::into_parts)); see
/// the [module documentation](self) for what the task does.
pub async fn run<R, L>(runtime: R, link: L, parts: ClientParts)
where
    R: Runtime,
    L: Link<Error = R::Error>,
    <L::ReplySender as ReplySender>::ConnectError: From<R::Error>,
{
    crate::task::Task::new(runtime, link, parts).run().await;
}
