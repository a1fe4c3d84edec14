//! The client handle and the task that owns the connection: the transport,
//! the timer and the channels around `mqtt-session`'s `ClientDriver`, which
//! keeps the requests' bookkeeping.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt_session::client_driver::{self, ClientDriver, End, Replies};
use mqtt_session::mqtt_codec::ReasonCode;
use mqtt_session::{Instant, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls;

use crate::options::ConnectOptions;
use crate::transport::{self, Transport};
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
    origin: tokio::time::Instant,
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
        self.events.recv().await
    }

    /// The next received message, skipping other events; `None` once the
    /// client is done.
    pub async fn recv_message(&mut self) -> Option<Message> {
        loop {
            if let Event::Message { message, .. } = self.events.recv().await? {
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
    /// runs in a background task on the current tokio runtime.
    ///
    /// A failure of this first connection is returned even when
    /// reconnection is configured (which applies to later losses).
    pub async fn connect(options: ConnectOptions) -> Result<(Client, Incoming), ConnectError> {
        let parts = options.common.into_parts()?;
        let origin = tokio::time::Instant::now();
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events) = mpsc::channel(parts.incoming_capacity);
        let (ready_tx, ready) = oneshot::channel();
        let driver = Driver {
            address: parts.address,
            tls: options.tls,
            origin,
            commands,
            commands_open: true,
            events: events_tx,
            core: ClientDriver::new(parts.config, parts.reconnect),
            ready: Some(ready_tx),
        };
        tokio::spawn(driver.run());
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
        self.commands
            .send(make(reply))
            .await
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

fn millis_since(origin: tokio::time::Instant) -> Instant {
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
    tls: Option<Arc<rustls::ClientConfig>>,
    origin: tokio::time::Instant,
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

    async fn open(&self) -> Result<Transport, ConnectError> {
        let config = self.core.config();
        let timeout = config.connect_timeout;
        let max_packet_size = config.limits.max_packet_size;
        let open = transport::open(&self.address, self.tls.as_ref(), max_packet_size);
        tokio::time::timeout(timeout, open)
            .await
            .unwrap_or(Err(ConnectError::Timeout(timeout)))
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
    }

    /// Runs one connection until it is closed.
    async fn serve(&mut self, transport: Transport) -> End {
        let (mut rd, mut wr) = tokio::io::split(transport);
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut wbuf = BytesMut::new();
        let mut eof = false;
        // A second handle, so that waiting for room does not borrow `self`.
        let events = self.events.clone();
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
            let deadline = self
                .core
                .poll_timeout()
                .map(|t| self.origin + Duration::from_millis(t.as_millis()));
            let can_read = !self.core.has_events() && !eof && !self.core.is_closed();
            if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
                rbuf.reserve(READ_CHUNK);
            }
            tokio::select! {
                written = wr.write_buf(&mut wbuf), if !wbuf.is_empty() && !eof => match written {
                    Ok(n) if n > 0 => {
                        if wbuf.is_empty() {
                            self.core.handle_written();
                        }
                    }
                    _ => {
                        eof = true;
                        wbuf.clear();
                        self.core.handle_eof(self.now());
                    }
                },
                read = rd.read_buf(&mut rbuf), if can_read => match read {
                    Ok(n) if n > 0 => self.core.handle_read(self.now(), &mut rbuf),
                    _ => {
                        eof = true;
                        wbuf.clear();
                        self.core.handle_eof(self.now());
                    }
                },
                permit = events.reserve(), if self.core.has_events() => self.hand_over(permit),
                command = self.commands.recv(), if self.commands_open && !self.core.is_disconnecting() => {
                    self.on_command(command);
                }
                () = sleep_until(deadline), if deadline.is_some() => self.core.handle_timeout(self.now()),
            }
        }
        if !eof {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, wr.shutdown()).await;
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

    /// Hands the next event to the application, now that there is room.
    fn hand_over<E>(&mut self, permit: Result<mpsc::Permit<'_, Event>, E>) {
        match permit {
            Ok(permit) => {
                if let Some(ev) = self.core.poll_event() {
                    permit.send(ev);
                }
            }
            // Nobody listens any more.
            Err(_) => while self.core.poll_event().is_some() {},
        }
    }

    /// Waits out the backoff and opens a new transport, serving commands
    /// meanwhile. `None`: the application disconnected.
    async fn reconnect(&mut self) -> Option<Transport> {
        let events = self.events.clone();
        loop {
            let wake = tokio::time::Instant::now() + self.core.next_delay(random());
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(wake) => break,
                    permit = events.reserve(), if self.core.has_events() => self.hand_over(permit),
                    command = self.commands.recv(), if self.commands_open => self.on_command(command),
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
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
