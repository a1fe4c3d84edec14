//! The client handle and the task that owns the connection.

use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_io::Timer;
use async_net::TcpStream;
use bytes::{Buf, Bytes, BytesMut};
use futures_channel::{mpsc, oneshot};
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{Stream, StreamExt};
use mqtt_session::mqtt_codec::{
    DisconnectProps, PacketId, QoS, ReasonCode, SubscriptionId, SubscriptionOptions, TopicFilter,
    TopicName,
};
use mqtt_session::{
    Backoff, Client as ClientRole, ClientConfig, ClientEvent, Close, Connection, Instant, Message,
    ServerCaps, Session,
};

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
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived on a subscription (already acknowledged to the
    /// broker).
    Message {
        /// The message.
        message: Message,
        /// The identifiers of the subscriptions it matched (5.0).
        subscription_identifiers: Vec<SubscriptionId>,
    },
    /// A connection was accepted: the first one, and each reconnection.
    Connected {
        /// Whether the broker resumed the session. After a reconnection
        /// without it, subscriptions must be made again.
        session_present: bool,
        /// What the broker announced in CONNACK.
        caps: ServerCaps,
    },
    /// The connection ended without the application asking for it: the
    /// broker disconnected, the network failed, or no PINGRESP came in time.
    Disconnected {
        /// How it ended (reason code, which side, 5.0 diagnostics).
        close: Close,
        /// Whether the client is reconnecting; if not, the client is done.
        reconnecting: bool,
    },
    /// A reconnection attempt failed; the next follows after the backoff.
    ReconnectFailed {
        /// Why.
        error: Arc<ConnectError>,
    },
}

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

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

pub use mqtt_session::SubscribeResult;

#[derive(Debug)]
enum Command {
    Publish {
        message: Message,
        reply: Reply<ReasonCode>,
    },
    Subscribe {
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        identifier: Option<SubscriptionId>,
        reply: Reply<Vec<SubscribeResult>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        reply: Reply<Vec<ReasonCode>>,
    },
    Disconnect {
        reason: ReasonCode,
        props: DisconnectProps,
        reply: Reply<()>,
    },
}

impl Command {
    fn fail(self, error: ClientError) {
        match self {
            Command::Publish { reply, .. } => drop(reply.send(Err(error))),
            Command::Subscribe { reply, .. } => drop(reply.send(Err(error))),
            Command::Unsubscribe { reply, .. } => drop(reply.send(Err(error))),
            Command::Disconnect { reply, .. } => drop(reply.send(Ok(()))),
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
        let driver = Driver {
            address: parts.address,
            config: parts.config,
            backoff: parts.reconnect,
            origin,
            commands,
            commands_open: true,
            events: events_tx,
            pending_events: VecDeque::new(),
            publishes: HashMap::new(),
            qos0_waiting: Vec::new(),
            qos0_written: Vec::new(),
            requests: HashMap::new(),
            held: VecDeque::new(),
            caps: None,
            session: None,
            ready: Some(ready_tx),
            disconnecting: None,
            close: None,
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

    /// Publishes `payload` to `topic`. Completes when the message is handed
    /// to the network (QoS 0), acknowledged with PUBACK (QoS 1) or complete
    /// with PUBCOMP (QoS 2), with the broker's reason code (success or
    /// 0x10 "no matching subscribers" under 5.0; always success under
    /// 3.1.1). A failure reason code is [`ClientError::Refused`].
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<ReasonCode, ClientError> {
        let topic = TopicName::try_from(topic)?;
        self.publish_message(Message::new(topic, payload, qos, retain))
            .await
    }

    /// Publishes a message with 5.0 properties; see [`Client::publish`].
    /// A message expiry (`props.expires_at`) counts from [`Client::now`].
    pub async fn publish_message(&self, message: Message) -> Result<ReasonCode, ClientError> {
        self.request(|reply| Command::Publish { message, reply })
            .await
    }

    /// Subscribes to one filter; returns the QoS the broker granted, or
    /// [`ClientError::Refused`] with its failure reason code.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, ClientError> {
        let results = self
            .subscribe_with(&[(filter, SubscriptionOptions::new(qos))], None)
            .await?;
        match results.first() {
            Some(Ok(granted)) => Ok(*granted),
            Some(Err(reason)) => Err(ClientError::Refused(*reason)),
            None => Err(ClientError::Refused(ReasonCode::PROTOCOL_ERROR)),
        }
    }

    /// Subscribes to several filters with 5.0 subscription options (No
    /// Local, Retain As Published, Retain Handling) and an optional
    /// subscription identifier; one result per filter, in order.
    pub async fn subscribe_with(
        &self,
        filters: &[(&str, SubscriptionOptions)],
        identifier: Option<SubscriptionId>,
    ) -> Result<Vec<SubscribeResult>, ClientError> {
        let filters = filters
            .iter()
            .map(|(f, o)| Ok((TopicFilter::try_from(*f)?, *o)))
            .collect::<Result<Vec<_>, ClientError>>()?;
        self.request(|reply| Command::Subscribe {
            filters,
            identifier,
            reply,
        })
        .await
    }

    /// Unsubscribes; one reason code per filter under 5.0 (success or
    /// 0x11 "no subscription existed"), none under 3.1.1.
    pub async fn unsubscribe(&self, filters: &[&str]) -> Result<Vec<ReasonCode>, ClientError> {
        let filters = filters
            .iter()
            .map(|f| TopicFilter::try_from(*f))
            .collect::<Result<Vec<_>, _>>()?;
        self.request(|reply| Command::Unsubscribe { filters, reply })
            .await
    }

    /// Disconnects normally: DISCONNECT, no will. Completes once the
    /// connection is closed; requests still waiting fail with
    /// [`ClientError::Disconnected`].
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(ReasonCode::NORMAL_DISCONNECTION, DisconnectProps::default())
            .await
    }

    /// Disconnects with a 5.0 reason code (0x04 asks the broker to publish
    /// the will anyway) and DISCONNECT properties (a reason string, a new
    /// session expiry interval).
    pub async fn disconnect_with(
        &self,
        reason: ReasonCode,
        props: DisconnectProps,
    ) -> Result<(), ClientError> {
        self.request(|reply| Command::Disconnect {
            reason,
            props,
            reply,
        })
        .await
    }

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

enum Request {
    Subscribe(Reply<Vec<SubscribeResult>>),
    Unsubscribe(Reply<Vec<ReasonCode>>),
}

/// How one connection ended.
enum End {
    /// The application is done (it disconnected or dropped every handle), or
    /// the first connection failed: the task ends.
    Finished,
    /// The connection was lost; reconnect if configured.
    Lost,
}

/// The task that owns the connection: it moves bytes, keeps the timer and
/// matches completions to the callers waiting for them.
struct Driver {
    address: Address,
    config: ClientConfig,
    backoff: Option<Backoff>,
    origin: std::time::Instant,
    commands: mpsc::Receiver<Command>,
    /// False once every handle is dropped.
    commands_open: bool,
    events: mpsc::Sender<Event>,
    /// Events the application has not taken yet; while any wait, the socket
    /// is not read.
    pending_events: VecDeque<Event>,
    publishes: HashMap<PacketId, Reply<ReasonCode>>,
    /// QoS 0 publishes handed to the connection, not yet in the write buffer.
    qos0_waiting: Vec<Reply<ReasonCode>>,
    /// QoS 0 publishes in the write buffer: done once it is written.
    qos0_written: Vec<Reply<ReasonCode>>,
    requests: HashMap<PacketId, Request>,
    /// Commands given while not connected, for the next connection.
    held: VecDeque<Command>,
    caps: Option<ServerCaps>,
    session: Option<Session>,
    /// Answers `Client::connect` once the first connection succeeds or fails.
    ready: Option<oneshot::Sender<Result<(), ConnectError>>>,
    disconnecting: Option<Reply<()>>,
    close: Option<Close>,
}

impl Driver {
    fn now(&self) -> Instant {
        millis_since(self.origin)
    }

    async fn open(&self) -> Result<TcpStream, ConnectError> {
        let timeout = self.config.connect_timeout;
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
            let config = if self.caps.is_some() {
                self.config.for_resumption(self.caps.as_ref())
            } else {
                self.config.clone()
            };
            let conn = Connection::<ClientRole>::new(config, self.now(), self.session.take());
            match self.serve(conn, transport).await {
                End::Finished => break,
                End::Lost => {}
            }
            let reconnecting = self.backoff.is_some();
            if let Some(close) = self.close.take() {
                self.pending_events.push_back(Event::Disconnected {
                    close,
                    reconnecting,
                });
            }
            if !reconnecting {
                self.finish(ClientError::ConnectionLost);
                return;
            }
            // SUBSCRIBE and UNSUBSCRIBE answers do not survive the connection;
            // neither does a QoS 0 publish not yet written.
            self.fail_connection_bound(ClientError::ConnectionLost);
            match self.reconnect().await {
                Some(t) => transport = t,
                None => break,
            }
        }
        self.finish(ClientError::Disconnected);
    }

    /// Runs one connection until it is closed.
    async fn serve(&mut self, mut conn: Connection<ClientRole>, mut transport: TcpStream) -> End {
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut wbuf = BytesMut::new();
        let mut eof = false;
        let mut timer: Option<(Instant, Timer)> = None;
        loop {
            let now = self.now();
            // Bytes out, then events; an event may issue commands (the ones
            // held for the connection), so drain until both are quiet.
            loop {
                let _ = conn.poll_transmit(now, &mut wbuf);
                self.qos0_written.append(&mut self.qos0_waiting);
                let mut any = false;
                while let Some(ev) = conn.poll_event() {
                    any = true;
                    self.on_event(&mut conn, now, ev);
                }
                if !any {
                    break;
                }
            }
            if conn.is_closed() && (wbuf.is_empty() || eof) {
                break;
            }
            match conn.poll_timeout() {
                Some(d) if timer.as_ref().is_none_or(|(at, _)| *at != d) => {
                    let at = self.origin + Duration::from_millis(d.as_millis());
                    timer = Some((d, Timer::at(at)));
                }
                Some(_) => {}
                None => timer = None,
            }
            let can_read = self.pending_events.is_empty() && !eof && !conn.is_closed();
            let can_write = !wbuf.is_empty() && !eof;
            let take_commands = self.commands_open && self.disconnecting.is_none();
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
                if !self.pending_events.is_empty() {
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
                        for reply in self.qos0_written.drain(..) {
                            let _ = reply.send(Ok(ReasonCode::SUCCESS));
                        }
                    }
                }
                Wake::Read(Ok(n)) if n > 0 => {
                    rbuf.extend_from_slice(&chunk[..n]);
                    conn.handle_read(self.now(), &mut rbuf);
                }
                Wake::Written(_) | Wake::Read(_) => {
                    eof = true;
                    wbuf.clear();
                    conn.handle_eof(self.now());
                }
                Wake::EventRoom(true) => {
                    if let Some(ev) = self.pending_events.pop_front() {
                        let _ = self.events.start_send(ev);
                    }
                }
                // Nobody listens any more.
                Wake::EventRoom(false) => self.pending_events.clear(),
                Wake::Command(Some(command)) => self.on_command(&mut conn, self.now(), command),
                Wake::Command(None) => {
                    // Every handle is gone: disconnect normally.
                    self.commands_open = false;
                    conn.disconnect(self.now(), ReasonCode::NORMAL_DISCONNECTION);
                }
                Wake::Timer => {
                    timer = None;
                    conn.handle_timeout(self.now());
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
        self.session = conn.take_session();
        if self.ready.is_some() {
            // The first connection ended before CONNACK.
            let error = connect_error(self.close.take(), self.config.connect_timeout);
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(Err(error));
            }
            return End::Finished;
        }
        if self.disconnecting.is_some() || !self.commands_open {
            return End::Finished;
        }
        End::Lost
    }

    fn on_event(&mut self, conn: &mut Connection<ClientRole>, now: Instant, ev: ClientEvent) {
        match ev {
            ClientEvent::Connected {
                session_present,
                caps,
                ..
            } => {
                self.caps = Some(caps.clone());
                if let Some(backoff) = self.backoff.as_mut() {
                    backoff.reset();
                }
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
                self.pending_events.push_back(Event::Connected {
                    session_present,
                    caps,
                });
                for command in std::mem::take(&mut self.held) {
                    self.on_command(conn, now, command);
                }
            }
            ClientEvent::Message {
                msg,
                subscription_identifiers,
                ..
            } => self.pending_events.push_back(Event::Message {
                message: msg,
                subscription_identifiers,
            }),
            ClientEvent::Published { id, reason, .. } => {
                if let Some(reply) = self.publishes.remove(&id) {
                    let _ = reply.send(mqtt_session::publish_outcome(reason));
                }
            }
            ClientEvent::Expired { id, .. } => {
                if let Some(reply) = self.publishes.remove(&id) {
                    let _ = reply.send(Err(ClientError::Expired));
                }
            }
            ClientEvent::Subscribed { id, results, .. } => {
                if let Some(Request::Subscribe(reply)) = self.requests.remove(&id) {
                    let _ =
                        reply.send(Ok(results.into_iter().map(mqtt_session::granted).collect()));
                }
            }
            ClientEvent::Unsubscribed { id, results, .. } => {
                if let Some(Request::Unsubscribe(reply)) = self.requests.remove(&id) {
                    let _ = reply.send(Ok(results));
                }
            }
            ClientEvent::Closed(close) => self.close = Some(close),
            _ => {}
        }
    }

    fn on_command(&mut self, conn: &mut Connection<ClientRole>, now: Instant, command: Command) {
        if let Command::Disconnect {
            reason,
            props,
            reply,
        } = command
        {
            if props.is_empty() {
                conn.disconnect(now, reason);
            } else if let Err(e) = conn.close_with(now, reason, props) {
                let _ = reply.send(Err(e.into()));
                return;
            }
            self.disconnecting = Some(reply);
            return;
        }
        if !conn.is_connected() {
            return self.hold(command);
        }
        match command {
            Command::Publish { message, reply } => match conn.publish(now, message) {
                Ok(Some(id)) => {
                    self.publishes.insert(id, reply);
                }
                Ok(None) => self.qos0_waiting.push(reply),
                Err(e) => drop(reply.send(Err(e.into()))),
            },
            Command::Subscribe {
                filters,
                identifier,
                reply,
            } => match conn.subscribe(now, filters, identifier) {
                Ok(id) => {
                    self.requests.insert(id, Request::Subscribe(reply));
                }
                Err(e) => drop(reply.send(Err(e.into()))),
            },
            Command::Unsubscribe { filters, reply } => match conn.unsubscribe(now, filters) {
                Ok(id) => {
                    self.requests.insert(id, Request::Unsubscribe(reply));
                }
                Err(e) => drop(reply.send(Err(e.into()))),
            },
            Command::Disconnect { .. } => {}
        }
    }

    /// Keeps a command for the next connection, within the outgoing queue's
    /// bound.
    fn hold(&mut self, command: Command) {
        let limit = self.config.limits.max_queued;
        if self.held.len() >= limit {
            command.fail(ClientError::Usage(mqtt_session::UsageError::QueueFull {
                limit,
            }));
        } else {
            self.held.push_back(command);
        }
    }

    /// Waits out the backoff and opens a new transport, serving commands
    /// meanwhile. `None`: the application disconnected.
    async fn reconnect(&mut self) -> Option<TcpStream> {
        loop {
            let delay = self
                .backoff
                .as_mut()
                .map_or(Duration::ZERO, |b| b.next_delay(random()));
            let mut wake = Timer::after(delay);
            loop {
                let commands_open = self.commands_open;
                let woke = poll_fn(|cx| {
                    if Pin::new(&mut wake).poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                    if !self.pending_events.is_empty() {
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
                    Some(Wake::EventRoom(true)) => {
                        if let Some(ev) = self.pending_events.pop_front() {
                            let _ = self.events.start_send(ev);
                        }
                    }
                    Some(Wake::EventRoom(false)) => self.pending_events.clear(),
                    Some(Wake::Command(None)) => {
                        self.commands_open = false;
                        return None;
                    }
                    Some(Wake::Command(Some(Command::Disconnect { reply, .. }))) => {
                        self.disconnecting = Some(reply);
                        return None;
                    }
                    Some(Wake::Command(Some(command))) => self.hold(command),
                    Some(_) => {}
                }
            }
            match self.open().await {
                Ok(t) => return Some(t),
                Err(e) => self
                    .pending_events
                    .push_back(Event::ReconnectFailed { error: Arc::new(e) }),
            }
        }
    }

    /// Fails what cannot outlive the connection.
    fn fail_connection_bound(&mut self, error: ClientError) {
        for (_, request) in self.requests.drain() {
            match request {
                Request::Subscribe(reply) => drop(reply.send(Err(error.clone()))),
                Request::Unsubscribe(reply) => drop(reply.send(Err(error.clone()))),
            }
        }
        for reply in self
            .qos0_waiting
            .drain(..)
            .chain(self.qos0_written.drain(..))
        {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// The client is done: everything still waiting fails with `error`, the
    /// disconnect completes, and events not yet taken are handed over where
    /// there is room.
    fn finish(&mut self, error: ClientError) {
        self.fail_connection_bound(error.clone());
        for (_, reply) in self.publishes.drain() {
            let _ = reply.send(Err(error.clone()));
        }
        for command in self.held.drain(..) {
            command.fail(error.clone());
        }
        if let Some(reply) = self.disconnecting.take() {
            let _ = reply.send(Ok(()));
        }
        for ev in self.pending_events.drain(..) {
            if self.events.try_send(ev).is_err() {
                break;
            }
        }
        self.events.close_channel();
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
fn connect_error(close: Option<Close>, timeout: Duration) -> ConnectError {
    ConnectError::before_connack(close, timeout, || {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the broker closed the connection before CONNACK",
        )
    })
}
