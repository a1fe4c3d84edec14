//! The client handle, the thread that owns the connection, and the thread
//! that reads its socket: the transport, the timer and the channels around
//! `mqtt-client`'s `ClientDriver`, which keeps the requests' bookkeeping.

use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt_client::driver::{self, AfterConnection, ClientDriver, ReplySender};
use mqtt_client::mqtt_session::mqtt_codec::ReasonCode;
use mqtt_client::mqtt_session::Instant;
use mqtt_client::requests::Reply;
use mqtt_client::{Address, BlockingRequests, ClientError, Wait};

use crate::incoming::{Gate, Incoming};
use crate::options::{ConnectOptions, TlsConfig};
use crate::transport::Transport;
use crate::ConnectError;

/// How many inputs (socket reads, commands) may wait for the connection
/// thread before their senders wait.
const INPUT_QUEUE: usize = 64;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// What the client reports besides request results, in order.
pub type Event = mqtt_client::Event<Arc<ConnectError>>;

/// How the connection thread answers a [`Client`]'s requests: over channels
/// of their own (the [`BlockingRequests::ReplySender`] of the client).
#[derive(Debug)]
pub enum ChannelReplies {}

impl ReplySender for ChannelReplies {
    type Reply<T> = Sender<Result<T, ClientError>>;
    type ConnectError = Arc<ConnectError>;

    fn send<T>(reply: Self::Reply<T>, result: Result<T, ClientError>) {
        let _ = reply.send(result);
    }
}

type Command = driver::Command<ChannelReplies>;

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

/// A connected MQTT client. Cheap to clone and usable from any thread;
/// every clone drives the same connection. When the last clone is dropped
/// the client disconnects.
///
/// Its requests (`publish`, `subscribe`, `disconnect`, ...) are those of
/// [`BlockingRequests`].
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
    pub fn connect(mut options: ConnectOptions) -> Result<(Client, Incoming), ConnectError> {
        let tls = options.take_tls()?;
        let parts = options.common.into_parts()?;
        let origin = std::time::Instant::now();
        let timeout = parts.config.connect_timeout;
        let transport = Transport::open(&parts.address, tls.as_ref(), timeout)?;
        let (inputs_tx, inputs) = mpsc::sync_channel(INPUT_QUEUE);
        let (events_tx, events) = mpsc::channel();
        let gate = Arc::new(Gate::new(parts.incoming_capacity));
        let (ready_tx, ready) = mpsc::channel();
        let driver = Driver {
            address: parts.address,
            tls,
            origin,
            inputs,
            inputs_tx: inputs_tx.clone(),
            events: events_tx,
            gate: gate.clone(),
            generation: 0,
            core: ClientDriver::new(parts.config, parts.reconnect).with_auth(parts.auth),
            ready: Some(ready_tx),
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
                Incoming::new(events, gate),
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(mqtt_client::ConnectError::Closed(ReasonCode::UNSPECIFIED_ERROR).into()),
        }
    }

    /// The client's clock, as `mqtt-session` counts it: for message expiry
    /// deadlines (`MessageProps::expires_at`).
    pub fn now(&self) -> Instant {
        millis_since(self.handle.origin)
    }
}

/// A request handed to the connection thread, its answer still to come
/// (the [`BlockingRequests::Pending`] of [`Client`], e.g. what
/// `queue_publish` and `try_publish` return). Dropping it does not withdraw
/// the request.
#[derive(Debug)]
#[must_use = "the answer comes through it; dropping it does not withdraw the request"]
pub struct Pending<T> {
    answer: Receiver<Result<T, ClientError>>,
    /// The client's request timeout, for [`wait`](Pending::wait).
    timeout: Option<Duration>,
}

impl<T> Pending<T> {
    /// Blocks until the answer comes, or the client's request timeout
    /// ([`ConnectOptions::request_timeout`](crate::ConnectOptions::request_timeout))
    /// passes: [`ClientError::Timeout`] (the request itself goes on).
    pub fn wait(self) -> Result<T, ClientError> {
        match self.timeout {
            None => self.answer.recv().map_err(|_| ClientError::Disconnected)?,
            Some(t) => self.wait_timeout(t),
        }
    }

    /// Blocks at most `timeout` for the answer: [`ClientError::Timeout`]
    /// if it has not come by then (the request itself goes on).
    pub fn wait_timeout(self, timeout: Duration) -> Result<T, ClientError> {
        match self.answer.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(ClientError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(ClientError::Disconnected),
        }
    }

    /// The answer if it has come: `None` while the broker has not answered.
    pub fn try_wait(&self) -> Option<Result<T, ClientError>> {
        match self.answer.try_recv() {
            Ok(result) => Some(result),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(ClientError::Disconnected)),
        }
    }
}

impl<T> Wait<T> for Pending<T> {
    fn wait(self) -> Result<T, ClientError> {
        Pending::wait(self)
    }
}

impl BlockingRequests for Client {
    type ReplySender = ChannelReplies;
    type Pending<T> = Pending<T>;

    fn submit<T>(
        &self,
        make: impl FnOnce(Reply<ChannelReplies, T>) -> Command,
    ) -> Result<Pending<T>, ClientError> {
        let (reply, answer) = mpsc::channel();
        self.handle
            .inputs
            .send(Input::Command(make(reply)))
            .map_err(|_| ClientError::Disconnected)?;
        Ok(self.pending(answer))
    }

    fn try_submit<T>(
        &self,
        make: impl FnOnce(Reply<ChannelReplies, T>) -> Command,
    ) -> Result<Pending<T>, ClientError> {
        let (reply, answer) = mpsc::channel();
        match self.handle.inputs.try_send(Input::Command(make(reply))) {
            Ok(()) => Ok(self.pending(answer)),
            Err(TrySendError::Full(_)) => Err(ClientError::RequestQueueFull),
            Err(TrySendError::Disconnected(_)) => Err(ClientError::Disconnected),
        }
    }
}

impl Client {
    fn pending<T>(&self, answer: Receiver<Result<T, ClientError>>) -> Pending<T> {
        Pending {
            answer,
            timeout: self.handle.request_timeout,
        }
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

/// The thread that owns the connection: it moves bytes, keeps the timer
/// and passes commands, replies and events between the callers and the core.
struct Driver {
    address: Address,
    tls: Option<TlsConfig>,
    origin: std::time::Instant,
    inputs: Receiver<Input>,
    /// For the reader threads.
    inputs_tx: SyncSender<Input>,
    events: Sender<Event>,
    gate: Arc<Gate>,
    /// Number of the current connection; reads of earlier ones are stale.
    generation: u64,
    core: ClientDriver<ChannelReplies>,
    /// Answers `Client::connect` once the first connection succeeds or fails.
    ready: Option<Sender<Result<(), ConnectError>>>,
}

impl Driver {
    fn now(&self) -> Instant {
        millis_since(self.origin)
    }

    /// Hands the core's events to the application.
    fn emit_events(&mut self) {
        while let Some(ev) = self.core.poll_event() {
            if self.events.send(ev).is_ok() {
                self.gate.added();
            }
        }
    }

    /// Starts a connection; with enhanced authentication that asks for
    /// randomness (SCRAM), with a fresh nonce from the
    /// operating system (none if it gave none: the connection then fails
    /// rather than use a guessable one).
    fn start(&mut self) {
        let now = self.now();
        if self.core.needs_nonce() {
            let mut random = [0u8; mqtt_client::auth::MAX_RANDOM_LEN];
            let random = &mut random[..self.core.nonce_len()];
            let random = match getrandom::fill(random) {
                Ok(()) => &random[..],
                Err(_) => &[],
            };
            self.core.start_with_nonce(now, random);
        } else {
            self.core.start(now);
        }
    }

    fn run(mut self, first: Transport) {
        let mut transport = first;
        loop {
            self.start();
            match self.serve(transport) {
                AfterConnection::Failed(close) => {
                    let error: ConnectError = self.core.connect_error(close.map(|c| *c)).into();
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Err(error));
                    }
                    break;
                }
                AfterConnection::Finished => break,
                AfterConnection::Reconnect => match self.reconnect() {
                    Some(t) => transport = t,
                    None => break,
                },
            }
        }
        self.emit_events();
        // Commands that arrived after the end: the core refuses them.
        while let Ok(input) = self.inputs.try_recv() {
            if let Input::Command(command) = input {
                self.core.command(self.now(), command);
            }
        }
    }

    /// Runs one connection until it is closed.
    fn serve(&mut self, mut transport: Transport) -> AfterConnection {
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
            self.core.handle_eof(self.now());
        }
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut wbuf = BytesMut::new();
        let mut plain = Vec::new();
        loop {
            let now = self.now();
            let _ = self.core.poll_transmit(now, &mut wbuf);
            if !wbuf.is_empty() {
                let written = transport.write_all(&wbuf);
                wbuf.clear();
                match written {
                    Ok(()) => self.core.handle_written(),
                    Err(_) => self.core.handle_eof(self.now()),
                }
            }
            self.emit_events();
            if self.core.has_connected() {
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            if self.core.is_closed() {
                break;
            }
            let input = match self.core.poll_timeout() {
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
                            self.core.handle_read(now, &mut rbuf);
                        }
                        _ => self.core.handle_eof(now),
                    }
                }
                Ok(Input::Eof(g)) if g == generation => self.core.handle_eof(now),
                // From an earlier connection.
                Ok(Input::Read(..) | Input::Eof(_)) => {}
                Ok(Input::Command(command)) => self.core.command(now, command),
                // Every handle is gone: disconnect normally.
                Ok(Input::HandlesDropped) | Err(RecvTimeoutError::Disconnected) => {
                    self.core.handles_dropped(now)
                }
                Err(RecvTimeoutError::Timeout) => self.core.handle_timeout(now),
            }
        }
        stop.store(true, Ordering::SeqCst);
        transport.shutdown();
        let end = self.core.connection_ended(self.now());
        self.emit_events();
        end
    }

    /// Waits out the backoff and opens a new transport, taking commands
    /// meanwhile. `None`: the application disconnected.
    fn reconnect(&mut self) -> Option<Transport> {
        loop {
            let wake = std::time::Instant::now() + self.core.next_delay(random());
            loop {
                let left = wake.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.inputs.recv_timeout(left) {
                    Ok(Input::Command(command)) => self.core.command(self.now(), command),
                    Ok(Input::HandlesDropped) | Err(RecvTimeoutError::Disconnected) => {
                        self.core.handles_dropped(self.now())
                    }
                    Ok(Input::Read(..) | Input::Eof(_)) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                }
                if self.core.wants_to_stop() {
                    self.core.stop();
                    return None;
                }
            }
            let timeout = self.core.config().connect_timeout;
            match Transport::open(&self.address, self.tls.as_ref(), timeout) {
                Ok(t) => return Some(t),
                Err(e) => {
                    self.core.reconnect_failed(Arc::new(e));
                    self.emit_events();
                }
            }
        }
    }
}
