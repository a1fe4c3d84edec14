//! The client handle, the thread that owns the connection, and the thread
//! that reads its socket.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_session::mqtt_codec::{
    DisconnectProps, PacketId, QoS, ReasonCode, SubscriptionId, SubscriptionOptions, TopicFilter,
    TopicName,
};
use mqtt_session::{
    Backoff, Client as ClientRole, ClientConfig, ClientEvent, Close, Connection, Instant, Message,
    ServerCaps, Session, UsageError,
};

use crate::options::ConnectOptions;
use crate::transport::Transport;
use crate::{Address, ClientError, ConnectError};

/// How many inputs (socket reads, commands) may wait for the connection
/// thread before their senders wait.
const INPUT_QUEUE: usize = 64;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

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

pub use mqtt_session::SubscribeResult;

type Reply<T> = Sender<Result<T, ClientError>>;

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

/// What the connection thread waits for.
enum Input {
    /// Bytes the reader thread of connection number `.0` read.
    Read(u64, Vec<u8>),
    /// That connection's socket ended.
    Eof(u64),
    Command(Command),
    /// The last [`Client`] handle was dropped.
    HandlesDropped,
}

/// Back-pressure between the events handed to the application and the
/// reader thread: it stops reading while `capacity` events wait.
#[derive(Debug)]
struct Gate {
    waiting: Mutex<usize>,
    room: Condvar,
    capacity: usize,
}

impl Gate {
    fn added(&self) {
        if let Ok(mut n) = self.waiting.lock() {
            *n += 1;
        }
    }

    fn taken(&self) {
        if let Ok(mut n) = self.waiting.lock() {
            *n = n.saturating_sub(1);
            self.room.notify_all();
        }
    }

    /// Waits until there is room or `stop` is set.
    fn wait_for_room(&self, stop: &AtomicBool) {
        let Ok(mut n) = self.waiting.lock() else {
            return;
        };
        while *n >= self.capacity && !stop.load(Ordering::SeqCst) {
            match self.room.wait_timeout(n, Duration::from_millis(100)) {
                Ok((guard, _)) => n = guard,
                Err(_) => return,
            }
        }
    }
}

/// The received messages and connection events of a [`Client`]; also an
/// iterator that blocks for the next event and ends when the client is done.
#[derive(Debug)]
pub struct Incoming {
    events: Receiver<Event>,
    gate: Arc<Gate>,
}

impl Incoming {
    /// Waits for the next event; `None` once the client is done
    /// (disconnected, or the connection lost without reconnection) and every
    /// event was taken.
    pub fn recv(&self) -> Option<Event> {
        let ev = self.events.recv().ok()?;
        self.gate.taken();
        Some(ev)
    }

    /// Waits at most `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let ev = self.events.recv_timeout(timeout)?;
        self.gate.taken();
        Ok(ev)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        let ev = self.events.try_recv().ok()?;
        self.gate.taken();
        Some(ev)
    }

    /// Waits at most `timeout` for the next received message, skipping other
    /// events; `None` on timeout or once the client is done.
    pub fn recv_message_timeout(&self, timeout: Duration) -> Option<Message> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.recv_timeout(left) {
                Ok(Event::Message { message, .. }) => return Some(message),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

impl Iterator for Incoming {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.recv()
    }
}

/// A connected MQTT client. Cheap to clone and usable from any thread;
/// every clone drives the same connection. When the last clone is dropped
/// the client disconnects.
#[derive(Debug, Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    inputs: SyncSender<Input>,
    origin: std::time::Instant,
    request_timeout: Option<Duration>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.inputs.send(Input::HandlesDropped);
    }
}

impl Client {
    /// Connects to the broker and waits for its CONNACK; the connection then
    /// runs on a thread of its own (plus one that reads the socket).
    ///
    /// A failure of this first connection is returned even when
    /// reconnection is configured (which applies to later losses).
    pub fn connect(options: ConnectOptions) -> Result<(Client, Incoming), ConnectError> {
        let parts = options.common.into_parts()?;
        let origin = std::time::Instant::now();
        let timeout = parts.config.connect_timeout;
        let transport = Transport::open(&parts.address, options.tls.as_ref(), timeout)?;
        let (inputs_tx, inputs) = mpsc::sync_channel(INPUT_QUEUE);
        let (events_tx, events) = mpsc::channel();
        let gate = Arc::new(Gate {
            waiting: Mutex::new(0),
            room: Condvar::new(),
            capacity: parts.incoming_capacity,
        });
        let (ready_tx, ready) = mpsc::channel();
        let driver = Driver {
            address: parts.address,
            tls: options.tls,
            config: parts.config,
            backoff: parts.reconnect,
            origin,
            inputs,
            inputs_tx: inputs_tx.clone(),
            handles_alive: true,
            events: events_tx,
            gate: gate.clone(),
            generation: 0,
            publishes: HashMap::new(),
            qos0: Vec::new(),
            requests: HashMap::new(),
            held: VecDeque::new(),
            caps: None,
            session: None,
            ready: Some(ready_tx),
            disconnecting: None,
            close: None,
        };
        std::thread::Builder::new()
            .name("mqtt-blocking".into())
            .spawn(move || driver.run(transport))?;
        match ready.recv() {
            Ok(Ok(())) => Ok((
                Client {
                    handle: Arc::new(Handle {
                        inputs: inputs_tx,
                        origin,
                        request_timeout: options.request_timeout,
                    }),
                },
                Incoming { events, gate },
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnectError::Closed(ReasonCode::UNSPECIFIED_ERROR)),
        }
    }

    fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ClientError> {
        let (reply, answer) = mpsc::channel();
        self.handle
            .inputs
            .send(Input::Command(make(reply)))
            .map_err(|_| ClientError::Disconnected)?;
        match self.handle.request_timeout {
            None => answer.recv().map_err(|_| ClientError::Disconnected)?,
            Some(t) => match answer.recv_timeout(t) {
                Ok(result) => result,
                Err(RecvTimeoutError::Timeout) => Err(ClientError::Timeout),
                Err(RecvTimeoutError::Disconnected) => Err(ClientError::Disconnected),
            },
        }
    }

    /// Publishes `payload` to `topic` and waits until the message is handed
    /// to the network (QoS 0), acknowledged with PUBACK (QoS 1) or complete
    /// with PUBCOMP (QoS 2). Returns the broker's reason code (success or
    /// 0x10 "no matching subscribers" under 5.0; always success under
    /// 3.1.1); a failure reason code is [`ClientError::Refused`].
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<ReasonCode, ClientError> {
        let topic = TopicName::try_from(topic)?;
        self.publish_message(Message::new(topic, payload, qos, retain))
    }

    /// Publishes a message with 5.0 properties; see [`Client::publish`].
    /// A message expiry (`props.expires_at`) counts from [`Client::now`].
    pub fn publish_message(&self, message: Message) -> Result<ReasonCode, ClientError> {
        self.request(|reply| Command::Publish { message, reply })
    }

    /// Subscribes to one filter; returns the QoS the broker granted, or
    /// [`ClientError::Refused`] with its failure reason code.
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, ClientError> {
        let results = self.subscribe_with(&[(filter, SubscriptionOptions::new(qos))], None)?;
        match results.first() {
            Some(Ok(granted)) => Ok(*granted),
            Some(Err(reason)) => Err(ClientError::Refused(*reason)),
            None => Err(ClientError::Refused(ReasonCode::PROTOCOL_ERROR)),
        }
    }

    /// Subscribes to several filters with 5.0 subscription options (No
    /// Local, Retain As Published, Retain Handling) and an optional
    /// subscription identifier; one result per filter, in order.
    pub fn subscribe_with(
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
    }

    /// Unsubscribes; one reason code per filter under 5.0 (success or
    /// 0x11 "no subscription existed"), none under 3.1.1.
    pub fn unsubscribe(&self, filters: &[&str]) -> Result<Vec<ReasonCode>, ClientError> {
        let filters = filters
            .iter()
            .map(|f| TopicFilter::try_from(*f))
            .collect::<Result<Vec<_>, _>>()?;
        self.request(|reply| Command::Unsubscribe { filters, reply })
    }

    /// Disconnects normally: DISCONNECT, no will. Returns once the
    /// connection is closed; requests still waiting fail with
    /// [`ClientError::Disconnected`].
    pub fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(ReasonCode::NORMAL_DISCONNECTION, DisconnectProps::default())
    }

    /// Disconnects with a 5.0 reason code (0x04 asks the broker to publish
    /// the will anyway) and DISCONNECT properties (a reason string, a new
    /// session expiry interval).
    pub fn disconnect_with(
        &self,
        reason: ReasonCode,
        props: DisconnectProps,
    ) -> Result<(), ClientError> {
        self.request(|reply| Command::Disconnect {
            reason,
            props,
            reply,
        })
    }

    /// The client's clock, as `mqtt-session` counts it: for message expiry
    /// deadlines (`MessageProps::expires_at`).
    pub fn now(&self) -> Instant {
        millis_since(self.handle.origin)
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

/// Reads the socket of connection `generation` until it ends, pausing while
/// the application has `capacity` events waiting.
fn read_loop(
    mut socket: TcpStream,
    generation: u64,
    inputs: SyncSender<Input>,
    gate: Arc<Gate>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        gate.wait_for_room(&stop);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match socket.read(&mut buf) {
            Ok(n) if n > 0 => {
                if inputs
                    .send(Input::Read(generation, buf[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
            _ => {
                let _ = inputs.send(Input::Eof(generation));
                return;
            }
        }
    }
}

enum Request {
    Subscribe(Reply<Vec<SubscribeResult>>),
    Unsubscribe(Reply<Vec<ReasonCode>>),
}

/// How one connection ended.
enum End {
    /// The application is done, or the first connection failed.
    Finished,
    /// The connection was lost; reconnect if configured.
    Lost,
}

/// The thread that owns the connection: it moves bytes, keeps the timer and
/// matches completions to the callers waiting for them.
struct Driver {
    address: Address,
    tls: Option<Arc<rustls::ClientConfig>>,
    config: ClientConfig,
    backoff: Option<Backoff>,
    origin: std::time::Instant,
    inputs: Receiver<Input>,
    /// For the reader threads.
    inputs_tx: SyncSender<Input>,
    handles_alive: bool,
    events: Sender<Event>,
    gate: Arc<Gate>,
    /// Number of the current connection; reads of earlier ones are stale.
    generation: u64,
    publishes: HashMap<PacketId, Reply<ReasonCode>>,
    /// QoS 0 publishes handed to the connection, done once written.
    qos0: Vec<Reply<ReasonCode>>,
    requests: HashMap<PacketId, Request>,
    /// Commands given while not connected, for the next connection.
    held: VecDeque<Command>,
    caps: Option<ServerCaps>,
    session: Option<Session>,
    ready: Option<Sender<Result<(), ConnectError>>>,
    disconnecting: Option<Reply<()>>,
    close: Option<Close>,
}

impl Driver {
    fn now(&self) -> Instant {
        millis_since(self.origin)
    }

    fn emit(&self, ev: Event) {
        if self.events.send(ev).is_ok() {
            self.gate.added();
        }
    }

    fn run(mut self, first: Transport) {
        let mut transport = first;
        loop {
            let config = if self.caps.is_some() {
                self.config.for_resumption(self.caps.as_ref())
            } else {
                self.config.clone()
            };
            let conn = Connection::<ClientRole>::new(config, self.now(), self.session.take());
            match self.serve(conn, transport) {
                End::Finished => break,
                End::Lost => {}
            }
            let reconnecting = self.backoff.is_some();
            if let Some(close) = self.close.take() {
                self.emit(Event::Disconnected {
                    close,
                    reconnecting,
                });
            }
            if !reconnecting {
                self.finish(ClientError::ConnectionLost);
                return;
            }
            // SUBSCRIBE and UNSUBSCRIBE answers do not survive the connection.
            self.fail_connection_bound(ClientError::ConnectionLost);
            match self.reconnect() {
                Some(t) => transport = t,
                None => break,
            }
        }
        self.finish(ClientError::Disconnected);
    }

    /// Runs one connection until it is closed.
    fn serve(&mut self, mut conn: Connection<ClientRole>, mut transport: Transport) -> End {
        self.generation += 1;
        let generation = self.generation;
        let stop = Arc::new(AtomicBool::new(false));
        let reader = transport.reader().and_then(|socket| {
            let (inputs, gate, stop) = (self.inputs_tx.clone(), self.gate.clone(), stop.clone());
            std::thread::Builder::new()
                .name("mqtt-blocking-reader".into())
                .spawn(move || read_loop(socket, generation, inputs, gate, stop))
        });
        if reader.is_err() {
            conn.handle_eof(self.now());
        }
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut wbuf = BytesMut::new();
        let mut plain = Vec::new();
        loop {
            let now = self.now();
            // Bytes out, then events; an event may issue commands (the ones
            // held for the connection), so drain until both are quiet.
            loop {
                let _ = conn.poll_transmit(now, &mut wbuf);
                if !wbuf.is_empty() {
                    let written = transport.write_all(&wbuf);
                    wbuf.clear();
                    match written {
                        Ok(()) => {
                            for reply in self.qos0.drain(..) {
                                let _ = reply.send(Ok(ReasonCode::SUCCESS));
                            }
                        }
                        Err(_) => conn.handle_eof(self.now()),
                    }
                }
                let mut any = false;
                while let Some(ev) = conn.poll_event() {
                    any = true;
                    self.on_event(&mut conn, now, ev);
                }
                if !any {
                    break;
                }
            }
            if conn.is_closed() {
                break;
            }
            let input = match conn.poll_timeout() {
                Some(t) => self.inputs.recv_timeout(t.saturating_duration_since(now)),
                None => self
                    .inputs
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            let now = self.now();
            match input {
                Ok(Input::Read(g, raw)) if g == generation => {
                    plain.clear();
                    match transport.receive(&raw, &mut plain) {
                        Ok(true) => {
                            rbuf.extend_from_slice(&plain);
                            conn.handle_read(now, &mut rbuf);
                        }
                        _ => conn.handle_eof(now),
                    }
                }
                Ok(Input::Eof(g)) if g == generation => conn.handle_eof(now),
                // From an earlier connection.
                Ok(Input::Read(..) | Input::Eof(_)) => {}
                Ok(Input::Command(command)) => {
                    if self.disconnecting.is_some() {
                        command.fail(ClientError::Disconnected);
                    } else {
                        self.on_command(&mut conn, now, command);
                    }
                }
                Ok(Input::HandlesDropped) | Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone: disconnect normally.
                    self.handles_alive = false;
                    conn.disconnect(now, ReasonCode::NORMAL_DISCONNECTION);
                }
                Err(RecvTimeoutError::Timeout) => conn.handle_timeout(now),
            }
        }
        stop.store(true, Ordering::SeqCst);
        transport.shutdown();
        self.session = conn.take_session();
        if self.ready.is_some() {
            // The first connection ended before CONNACK.
            let error = connect_error(self.close.take(), self.config.connect_timeout);
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(Err(error));
            }
            return End::Finished;
        }
        if self.disconnecting.is_some() || !self.handles_alive {
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
                self.emit(Event::Connected {
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
            } => self.emit(Event::Message {
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
                Ok(None) => self.qos0.push(reply),
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
            command.fail(ClientError::Usage(UsageError::QueueFull { limit }));
        } else {
            self.held.push_back(command);
        }
    }

    /// Waits out the backoff and opens a new transport, taking commands
    /// meanwhile. `None`: the application disconnected.
    fn reconnect(&mut self) -> Option<Transport> {
        loop {
            let delay = self
                .backoff
                .as_mut()
                .map_or(Duration::ZERO, |b| b.next_delay(random()));
            let wake = std::time::Instant::now() + delay;
            loop {
                let left = wake.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.inputs.recv_timeout(left) {
                    Ok(Input::Command(Command::Disconnect { reply, .. })) => {
                        self.disconnecting = Some(reply);
                        return None;
                    }
                    Ok(Input::Command(command)) => self.hold(command),
                    Ok(Input::HandlesDropped) | Err(RecvTimeoutError::Disconnected) => {
                        self.handles_alive = false;
                        return None;
                    }
                    Ok(Input::Read(..) | Input::Eof(_)) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            let timeout = self.config.connect_timeout;
            match Transport::open(&self.address, self.tls.as_ref(), timeout) {
                Ok(t) => return Some(t),
                Err(e) => self.emit(Event::ReconnectFailed { error: Arc::new(e) }),
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
        for reply in self.qos0.drain(..) {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// The client is done: everything still waiting fails with `error` and
    /// the disconnect completes.
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
        // Commands that arrived after the end.
        while let Ok(input) = self.inputs.try_recv() {
            if let Input::Command(command) = input {
                command.fail(ClientError::Disconnected);
            }
        }
    }
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
