//! The client handle and the task that owns the connection: the transport,
//! the timer and the channels around `mqtt-session`'s `ClientDriver`, which
//! keeps the requests' bookkeeping.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_io::Timer;
use async_net::TcpStream;
use bytes::{Buf, BytesMut};
use futures_channel::{mpsc, oneshot};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{Stream, StreamExt};
use mqtt_session::client_driver::{self, ClientDriver, End, Replies};
use mqtt_session::mqtt_codec::ReasonCode;
use mqtt_session::{Instant, Message};

use crate::options::{ConnectOptions, Task};
use crate::{Address, ClientError, ConnectError};

/// How many commands may wait for the connection task before the caller waits.
const COMMAND_QUEUE: usize = 64;

/// Bytes read from the socket at a time (the decoder grows the buffer for
/// larger packets, up to the maximum packet size).
const READ_CHUNK: usize = 8 * 1024;

/// How long a closing connection may take to flush its last bytes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the client reports besides request results, in order.
pub type Event = client_driver::Event<Arc<ConnectError>>;

/// A connected MQTT client. Cheap to clone; every clone drives the same
/// connection. When the last clone is dropped the client disconnects.
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

pub use mqtt_session::SubscribeResult;

/// Replies go back over oneshot channels.
#[derive(Debug)]
enum Oneshot {}

impl Replies for Oneshot {
    type Reply<T> = oneshot::Sender<Result<T, ClientError>>;
    type ConnectError = Arc<ConnectError>;

    fn send<T>(reply: Self::Reply<T>, result: Result<T, ClientError>) {
        let _ = reply.send(result);
    }
}

type Reply<T> = <Oneshot as Replies>::Reply<T>;
type Command = client_driver::Command<Oneshot>;

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
        let driver = Driver {
            address: parts.address,
            origin,
            commands,
            commands_open: true,
            events: events_tx,
            core: ClientDriver::new(parts.config, parts.reconnect),
            ready: Some(ready_tx),
        };
        let task: Task = Box::pin(driver.run());
        match options.spawner {
            Some(spawn) => spawn(task),
            None => {
                std::thread::Builder::new()
                    .name("mqtt-async-std".into())
                    .spawn(move || async_io::block_on(task))
                    .map_err(ConnectError::Io)?;
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
            Err(_) => Err(ConnectError::Closed(ReasonCode::UNSPECIFIED_ERROR)),
        }
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ClientError> {
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

    mqtt_session::client_request_methods!(async);

    /// The client's clock, as `mqtt-session` counts it: for message expiry
    /// deadlines (`MessageProps::expires_at`).
    pub fn now(&self) -> Instant {
        millis_since(self.origin)
    }
}

fn millis_since(origin: std::time::Instant) -> Instant {
    Instant::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// A random number for the backoff's jitter, from the standard library's
/// randomly keyed hasher.
fn random() -> u32 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::collections::hash_map::RandomState::new().hash_one(nanos) as u32
}

/// The task that owns the connection: it moves bytes, keeps the timer and
/// passes commands, replies and events between the callers and the core.
struct Driver {
    address: Address,
    origin: std::time::Instant,
    commands: mpsc::Receiver<Command>,
    /// False once every handle is dropped.
    commands_open: bool,
    events: mpsc::Sender<Event>,
    core: ClientDriver<Oneshot>,
    /// Answers `Client::connect` once the first connection succeeds or fails.
    ready: Option<oneshot::Sender<Result<(), ConnectError>>>,
}

impl Driver {
    fn now(&self) -> Instant {
        millis_since(self.origin)
    }

    async fn open(&self) -> Result<TcpStream, ConnectError> {
        let timeout = self.core.config().connect_timeout;
        let address = (self.address.host.as_str(), self.address.port);
        let connect = async { TcpStream::connect(address).await.map_err(ConnectError::Io) };
        let expire = async {
            Timer::after(timeout).await;
            Err(ConnectError::Timeout(timeout))
        };
        let stream = futures_lite::future::or(connect, expire).await?;
        // Small packets (acks, pings) go out at once.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    async fn run(mut self) {
        let mut transport = match self.open().await {
            Ok(t) => t,
            Err(e) => {
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Err(e));
                }
                return;
            }
        };
        loop {
            self.core.start(self.now());
            match self.serve(transport).await {
                End::Failed(close) => {
                    let timeout = self.core.config().connect_timeout;
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Err(connect_error(close.map(|c| *c), timeout)));
                    }
                    break;
                }
                End::Finished => break,
                End::Reconnect => match self.reconnect().await {
                    Some(t) => transport = t,
                    None => break,
                },
            }
        }
        // Events not yet taken are handed over where there is room.
        while let Some(ev) = self.core.poll_event() {
            if self.events.try_send(ev).is_err() {
                break;
            }
        }
        self.events.close_channel();
    }

    /// Runs one connection until it is closed.
    async fn serve(&mut self, mut transport: TcpStream) -> End {
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut wbuf = BytesMut::new();
        let mut eof = false;
        let mut timer: Option<(Instant, Timer)> = None;
        loop {
            let _ = self.core.poll_transmit(self.now(), &mut wbuf);
            if self.core.has_connected() {
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            if self.core.is_closed() && (wbuf.is_empty() || eof) {
                break;
            }
            match self.core.poll_timeout() {
                Some(d) if timer.as_ref().is_none_or(|(at, _)| *at != d) => {
                    let at = self.origin + Duration::from_millis(d.as_millis());
                    timer = Some((d, Timer::at(at)));
                }
                Some(_) => {}
                None => timer = None,
            }
            let can_read = !self.core.has_events() && !eof && !self.core.is_closed();
            let can_write = !wbuf.is_empty() && !eof;
            let take_commands = self.commands_open && !self.core.is_disconnecting();
            let has_events = self.core.has_events();
            // Polls every source that is armed; the first ready one wins.
            let wake = poll_fn(|cx| {
                if can_write {
                    if let Poll::Ready(r) = Pin::new(&mut transport).poll_write(cx, &wbuf) {
                        return Poll::Ready(Wake::Written(r));
                    }
                }
                if can_read {
                    if let Poll::Ready(r) = Pin::new(&mut transport).poll_read(cx, &mut chunk) {
                        return Poll::Ready(Wake::Read(r));
                    }
                }
                if has_events {
                    if let Poll::Ready(r) = self.events.poll_ready(cx) {
                        return Poll::Ready(Wake::EventRoom(r.is_ok()));
                    }
                }
                if take_commands {
                    if let Poll::Ready(c) = Pin::new(&mut self.commands).poll_next(cx) {
                        return Poll::Ready(Wake::Command(c));
                    }
                }
                if let Some((_, t)) = timer.as_mut() {
                    if Pin::new(t).poll(cx).is_ready() {
                        return Poll::Ready(Wake::Timer);
                    }
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Written(Ok(n)) if n > 0 => {
                    wbuf.advance(n);
                    if wbuf.is_empty() {
                        self.core.handle_written();
                    }
                }
                Wake::Read(Ok(n)) if n > 0 => {
                    rbuf.extend_from_slice(&chunk[..n]);
                    self.core.handle_read(self.now(), &mut rbuf);
                }
                Wake::Written(_) | Wake::Read(_) => {
                    eof = true;
                    wbuf.clear();
                    self.core.handle_eof(self.now());
                }
                Wake::EventRoom(room) => self.hand_over(room),
                Wake::Command(command) => self.on_command(command),
                Wake::Timer => {
                    timer = None;
                    self.core.handle_timeout(self.now());
                }
            }
        }
        if !eof {
            let close = async {
                let _ = futures_lite::AsyncWriteExt::close(&mut transport).await;
            };
            futures_lite::future::or(close, async {
                Timer::after(SHUTDOWN_GRACE).await;
            })
            .await;
        }
        self.core.connection_ended(self.now())
    }

    fn on_command(&mut self, command: Option<Command>) {
        match command {
            Some(command) => self.core.command(self.now(), command),
            None => {
                // Every handle is gone: disconnect normally.
                self.commands_open = false;
                self.core.handles_dropped(self.now());
            }
        }
    }

    /// Hands the next event to the application once the channel has room
    /// (`false`: nobody listens any more).
    fn hand_over(&mut self, room: bool) {
        if room {
            if let Some(ev) = self.core.poll_event() {
                let _ = self.events.start_send(ev);
            }
        } else {
            while self.core.poll_event().is_some() {}
        }
    }

    /// Waits out the backoff and opens a new transport, serving commands
    /// meanwhile. `None`: the application disconnected.
    async fn reconnect(&mut self) -> Option<TcpStream> {
        loop {
            let mut wake = Timer::after(self.core.next_delay(random()));
            loop {
                let commands_open = self.commands_open;
                let has_events = self.core.has_events();
                let woke = poll_fn(|cx| {
                    if Pin::new(&mut wake).poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                    if has_events {
                        if let Poll::Ready(r) = self.events.poll_ready(cx) {
                            return Poll::Ready(Some(Wake::EventRoom(r.is_ok())));
                        }
                    }
                    if commands_open {
                        if let Poll::Ready(c) = Pin::new(&mut self.commands).poll_next(cx) {
                            return Poll::Ready(Some(Wake::Command(c)));
                        }
                    }
                    Poll::Pending
                })
                .await;
                match woke {
                    None => break,
                    Some(Wake::EventRoom(room)) => self.hand_over(room),
                    Some(Wake::Command(command)) => self.on_command(command),
                    Some(_) => {}
                }
                if self.core.wants_to_stop() {
                    self.core.stop();
                    return None;
                }
            }
            match self.open().await {
                Ok(t) => return Some(t),
                Err(e) => self.core.reconnect_failed(Arc::new(e)),
            }
        }
    }
}

/// What woke the connection task. Short-lived, one at a time: the size of
/// a command does not matter here.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Written(std::io::Result<usize>),
    Read(std::io::Result<usize>),
    /// Room in the event channel (false: nobody listens any more).
    EventRoom(bool),
    Command(Option<Command>),
    Timer,
}

/// Why the first connection ended before CONNACK.
fn connect_error(close: Option<mqtt_session::Close>, timeout: Duration) -> ConnectError {
    ConnectError::before_connack(close, timeout, || {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the broker closed the connection before CONNACK",
        )
    })
}
