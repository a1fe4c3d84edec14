//! The broker on tokio: one task owns the sans-IO [`Broker`] core; one task
//! per connection reads and writes its socket. Connections talk to the core
//! over a channel, the core to each connection through its [`Outbox`].
//! Every transport (TCP, TLS, WebSocket, WebSocket over TLS) is a byte
//! stream once its handshake is done, so all share the same task.
//!
//! ```text
//!  socket ──conn task: decode──▶ ToCore::Packets(id, packets) ─┐
//!                                                              ▼
//!                                 core task: Broker::handle_packets / handle_timeout
//!                                                              │ poll_writable + poll_frames
//!  socket ◀─conn task: encode── Outbox: ToConn::Frames ◀────────┘  (one write per chunk)
//! ```
//!
//! Decoding and encoding happen in each connection's own task, on every
//! core; the core task only runs the protocol and routing. What it hands
//! over are [`Frame`]s: a PUBLISH is a reference to the one shared message
//! and the few fields of this delivery, so nothing is copied per
//! subscriber until the connection's task encodes it. The core drains every
//! command that is already queued before it writes, so one chunk per
//! connection carries every packet that the batch produced for it (up to
//! [`CHUNK_BUDGET`] bytes a chunk). A connection whose outbox is full is not
//! polled until its task has caught up: its packets wait inside the core,
//! where the session's bounded queue limits them.
//!
//! Bridges ([`crate::bridge`]) have their local end here too, as in-process
//! clients of the core with no socket: where the core would write to a
//! connection that is a bridge's local end, it hands the packets to that
//! client instead ([`Bridges::write`]), and messages from the bridges'
//! remote tasks arrive on their own channel.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use mqtt_codec::{DecodeError, Decoder, Packet, ProtocolVersion, ReasonCode};
use mqtt_router::broker::{Broker, BrokerConfig, BrokerEvent, ConnId, PeerInfo, Policy};
use mqtt_session::{Frame, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::bridge::{Bridges, Prepared};
use crate::transport::{Accepted, Transport};

/// Smallest and largest room a read is given: an idle connection holds a
/// small buffer, a busy one reads in large steps.
const READ_MIN: usize = 128;
const READ_MAX: usize = 64 * 1024;
/// Chunks queued for one connection's writer before the core stops writing
/// for it.
const WRITE_QUEUE: usize = 32;
/// Encoded bytes in one chunk (a chunk holds at least one packet): with
/// [`WRITE_QUEUE`], what a slow reader can hold in its writer's queue.
pub(crate) const CHUNK_BUDGET: usize = 64 * 1024;
/// How many queued commands the core handles before it writes.
const BATCH: usize = 256;
/// How many packets the core handles before it writes: a batch of commands
/// ends at [`BATCH`] commands or this many packets, whichever comes first,
/// so one flooding publisher's reads (hundreds of packets each) cannot keep
/// the core from writing to subscribers for long.
const BATCH_PACKETS: usize = 1024;

/// What connection tasks tell the core.
enum ToCore {
    Open {
        peer: SocketAddr,
        certificate_subject: Option<String>,
        writer: Arc<Outbox>,
        reply: oneshot::Sender<Option<(ConnId, Decoder)>>,
    },
    /// Packets the reader decoded, each with its size on the wire, and the
    /// decoding error that ended the stream after them, if any.
    /// The permit holds the batch's wire bytes against [`CORE_INPUT_BUDGET`]
    /// until the core has handled it.
    Packets(
        ConnId,
        Vec<(Packet, usize)>,
        Option<DecodeError>,
        OwnedSemaphorePermit,
    ),
    Eof(ConnId),
    /// The writer emptied its queue: the core may write for it again.
    Writable(ConnId),
}

/// Wire bytes of decoded packets on their way to the core or waiting in its
/// queue, all connections together. A connection task waits for room before
/// it hands over a batch, so when the core falls behind the sockets stop
/// being read and TCP slows the publishers down: decoded packets never pile
/// up in memory, whatever the publishers' QoS.
const CORE_INPUT_BUDGET: usize = 8 * 1024 * 1024;

/// The connection tasks' way to the core.
#[derive(Clone)]
struct ToCoreTx {
    tx: mpsc::Sender<ToCore>,
    budget: Arc<Semaphore>,
}

impl ToCoreTx {
    async fn send(&self, cmd: ToCore) -> Result<(), mpsc::error::SendError<ToCore>> {
        self.tx.send(cmd).await
    }

    /// Hands a decoded batch to the core once the budget has room for its
    /// `bytes`; `Err` when the broker is stopping.
    async fn send_packets(
        &self,
        id: ConnId,
        packets: Vec<(Packet, usize)>,
        error: Option<DecodeError>,
        bytes: usize,
    ) -> Result<(), ()> {
        // A batch is at most one read (64 KiB) plus one packet, so it fits.
        let n = u32::try_from(bytes.clamp(1, CORE_INPUT_BUDGET)).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| ())?;
        self.tx
            .send(ToCore::Packets(id, packets, error, permit))
            .await
            .map_err(|_| ())
    }
}

/// What the core tells a connection's writer.
enum ToConn {
    /// Packets to encode in this version and write (their size on the wire).
    Frames(ProtocolVersion, Vec<Frame>, usize),
    Close,
}

struct ConnHandle {
    writer: Arc<Outbox>,
    closing: bool,
}

/// A connection's outgoing chunks: the core pushes, the connection's task
/// pops. Lighter than a channel (nothing is allocated while it is empty,
/// which is most of an idle connection's life, and the waiting task leaves
/// only its waker here); bounded by [`WRITE_QUEUE`] because the core checks
/// [`Outbox::has_room`] before each push.
struct Outbox {
    inner: std::sync::Mutex<OutboxInner>,
}

struct OutboxInner {
    queue: VecDeque<ToConn>,
    /// The connection task, when it waits for chunks.
    waker: Option<Waker>,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            inner: std::sync::Mutex::new(OutboxInner {
                queue: VecDeque::new(),
                waker: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxInner> {
        // A panic while holding the lock leaves a queue that is still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_room(&self) -> bool {
        self.lock().queue.len() < WRITE_QUEUE
    }

    fn push(&self, msg: ToConn) {
        let waker = {
            let mut inner = self.lock();
            inner.queue.push_back(msg);
            inner.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn has_chunks(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    fn pop(&self) -> Option<ToConn> {
        let mut inner = self.lock();
        let msg = inner.queue.pop_front();
        if inner.queue.is_empty() && inner.queue.capacity() > 0 {
            inner.queue = VecDeque::new();
        }
        msg
    }

    /// Ready when a chunk is queued; otherwise the task is woken by the
    /// next push.
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if !inner.queue.is_empty() {
            return Poll::Ready(());
        }
        match &mut inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Waits for the next chunk.
    async fn ready(&self) {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await
    }
}

/// The core's clock: milliseconds since the broker started.
#[derive(Clone, Copy)]
struct Clock(tokio::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }

    fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        self.0 + Duration::from_millis(at.as_millis())
    }
}

/// A bound listening socket and the transport it speaks.
pub(crate) struct BoundListener {
    pub(crate) socket: TcpListener,
    pub(crate) transport: Transport,
}

/// How accepted sockets are admitted before the core sees them.
#[derive(Clone)]
pub(crate) struct Admission {
    /// Longest a TLS or WebSocket handshake may take (the CONNECT timeout):
    /// a peer that connects and stays silent holds nothing past it.
    pub(crate) handshake_timeout: Duration,
    /// Handshakes under way at once, over all listeners (the connection
    /// limit): sockets beyond it are closed at once.
    pub(crate) handshakes: Arc<Semaphore>,
}

/// Runs the broker until `shutdown` is notified: listeners, connection tasks
/// and the core. On shutdown 5.0 clients get DISCONNECT 0x8B.
pub(crate) async fn run<P: Policy + Send + 'static>(
    config: BrokerConfig,
    policy: P,
    listeners: Vec<BoundListener>,
    admission: Admission,
    shutdown: Arc<Notify>,
    bridges: Vec<Prepared>,
) {
    let (tx, from_conns) = mpsc::channel::<ToCore>(4096);
    let to_core = ToCoreTx {
        tx,
        budget: Arc::new(Semaphore::new(CORE_INPUT_BUDGET)),
    };
    for listener in listeners {
        tokio::spawn(accept_loop(listener, admission.clone(), to_core.clone()));
    }
    drop(to_core);
    core(config, policy, from_conns, shutdown, bridges).await;
}

async fn accept_loop(listener: BoundListener, admission: Admission, to_core: ToCoreTx) {
    let transport = Arc::new(listener.transport);
    loop {
        match listener.socket.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                if !transport.has_handshake() {
                    tokio::spawn(serve(stream, peer, None, to_core.clone()));
                    continue;
                }
                let Ok(permit) = admission.handshakes.clone().try_acquire_owned() else {
                    debug!(%peer, "connection refused: too many handshakes under way");
                    continue;
                };
                let (transport, to_core) = (transport.clone(), to_core.clone());
                let timeout = admission.handshake_timeout;
                // The handshake runs in the connection's own task, never here.
                tokio::spawn(async move {
                    let accepted = handshake(&transport, stream, peer, timeout).await;
                    drop(permit);
                    if let Some(accepted) = accepted {
                        connection(accepted, peer, to_core).await;
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The transport's handshake, bounded by `timeout`.
async fn handshake(
    transport: &Transport,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<Accepted> {
    match tokio::time::timeout(timeout, transport.accept(stream)).await {
        Ok(Ok(accepted)) => Some(accepted),
        Ok(Err(e)) => {
            debug!(%peer, transport = transport.name(), error = %e, "handshake failed");
            None
        }
        Err(_) => {
            debug!(%peer, transport = transport.name(), "handshake timed out");
            None
        }
    }
}

/// One client connection after its handshake.
async fn connection(accepted: Accepted, peer: SocketAddr, to_core: ToCoreTx) {
    match accepted {
        Accepted::Tcp(s) => serve(s, peer, None, to_core).await,
        Accepted::Tls(s, subject) => {
            debug!(%peer, certificate = ?subject, "TLS session established");
            serve(s, peer, subject, to_core).await
        }
        Accepted::Ws(s) => serve(s, peer, None, to_core).await,
        Accepted::Wss(s, subject) => {
            debug!(%peer, certificate = ?subject, "TLS session established");
            serve(s, peer, subject, to_core).await
        }
    }
}

/// Serves one connection's byte stream: registers with the core, then
/// reads and writes.
///
/// An idle connection spends its life in this future, so its size is what a
/// task costs per idle connection (`size_of_val`, checked by a test below:
/// 912 bytes with the rare steps inline, 472 before this layout, 192 now).
/// Hence a plain function returning an `async move` block (an `async fn`
/// keeps a second copy of each argument), the connection's address boxed
/// (only registering needs it), and every step but the wait itself in a
/// boxed future that exists only while it runs.
fn serve<S>(
    mut stream: S,
    peer: SocketAddr,
    certificate_subject: Option<String>,
    to_core: ToCoreTx,
) -> impl Future<Output = ()> + Send
where
    S: Stream,
{
    let opening = Box::new((peer, certificate_subject));
    async move {
        let outbox = Arc::new(Outbox::new());
        let (peer, certificate_subject) = *opening;
        let registered = Box::pin(register(&to_core, peer, certificate_subject, &outbox)).await;
        let Some((id, mut decoder)) = registered else {
            return;
        };
        // One task per connection reads, decodes, encodes and writes: an
        // idle connection costs one small future, not two tasks and a
        // channel. Once a read has needed more than the minimum room, the
        // read buffer stays between reads: `BytesMut` remembers the size it
        // was first given and refills at least that much, so a busy
        // connection keeps reading in large steps (giving it back after each
        // quiet read cut unpinned pairs QoS 1 from about 740 k to 490 k
        // msg/s with more, smaller reads). Until then, an emptied buffer is
        // given back: an idle plain-TCP connection holds none (TLS and
        // WebSocket reserve it before a read that waits inside them).
        let mut buf = BytesMut::new();
        let mut room = READ_MIN;
        let mut grown = false;
        loop {
            // What the core queued goes out first.
            if outbox.has_chunks() {
                match Box::pin(write_out(&mut stream, &outbox)).await {
                    Ok(true) => {
                        // Never waits: behind a full command queue the core
                        // is busy and retries blocked connections on every
                        // turn anyway.
                        let _ = to_core.tx.try_send(ToCore::Writable(id));
                    }
                    Ok(false) => return,
                    Err(()) => {
                        let _ = Box::pin(to_core.send(ToCore::Eof(id))).await;
                        return;
                    }
                }
            }
            // One small wait for both directions: chunks from the core
            // first, then the socket. The read races the outbox as a whole,
            // so a read that waits (TLS or WebSocket, or a readiness that
            // was stale) never holds writes back. `None`: the outbox has
            // chunks; `Some(None)`: the read side ended.
            let read = std::future::poll_fn(|cx| {
                if outbox.poll_ready(cx).is_ready() {
                    return Poll::Ready(None);
                }
                if stream.poll_readable(cx).is_pending() {
                    return Poll::Pending;
                }
                if buf.capacity() - buf.len() < room / 2 {
                    buf.reserve(room);
                    grown |= room > READ_MIN;
                }
                let free = buf.capacity() - buf.len();
                std::pin::pin!(stream.read_buf(&mut buf))
                    .poll(cx)
                    .map(|r| Some(r.ok().filter(|n| *n > 0).map(|n| (n, free))))
            })
            .await;
            let Some(read) = read else {
                continue;
            };
            let ended = match read {
                Some((n, free)) => {
                    // A read that fills its room asks for more next time;
                    // one that leaves most of it goes back to the minimum.
                    room = if n == free {
                        (room * 2).min(READ_MAX)
                    } else {
                        READ_MIN
                    };
                    let (packets, error) = decode_all(&mut decoder, &mut buf);
                    if buf.is_empty() && !grown {
                        buf = BytesMut::new();
                    }
                    if packets.is_empty() && error.is_none() {
                        continue;
                    }
                    Box::pin(hand_over(&to_core, id, packets, error)).await
                }
                None => {
                    // The core answers with Close; the DISCONNECT or other
                    // last packets it sends first are written before it.
                    let _ = Box::pin(to_core.send(ToCore::Eof(id))).await;
                    Ended::Reading
                }
            };
            match ended {
                Ended::No => {}
                Ended::Reading => {
                    Box::pin(continue_until_closed(&mut stream, &outbox)).await;
                    return;
                }
                Ended::Stopping => return,
            }
        }
    }
}

/// Whether a connection's reading ended.
enum Ended {
    No,
    /// The stream ended or could not be decoded: what the core still sends
    /// is written until it closes the connection.
    Reading,
    /// The broker is stopping.
    Stopping,
}

/// Hands a read's packets to the core.
async fn hand_over(
    to_core: &ToCoreTx,
    id: ConnId,
    packets: Vec<(Packet, usize)>,
    error: Option<DecodeError>,
) -> Ended {
    let failed = error.is_some();
    let bytes = packets.iter().map(|(_, n)| n).sum();
    if to_core
        .send_packets(id, packets, error, bytes)
        .await
        .is_err()
    {
        return Ended::Stopping;
    }
    // After a decoding error nothing more is read: the core closes the
    // connection, after its last packets.
    if failed {
        Ended::Reading
    } else {
        Ended::No
    }
}

/// Writes the chunks the core queued for a connection, one socket write per
/// chunk, then flushes: `Ok(true)` when done, `Ok(false)` when the core closed
/// the connection (shut down here), `Err` when the socket failed.
async fn write_out<S: Stream>(stream: &mut S, outbox: &Outbox) -> Result<bool, ()> {
    while let Some(msg) = outbox.pop() {
        match msg {
            ToConn::Frames(version, frames, len) => {
                let bytes = encode(version, frames, len);
                stream.write_all(&bytes).await.map_err(|_| ())?;
            }
            ToConn::Close => {
                let _ = stream.shutdown().await;
                return Ok(false);
            }
        }
    }
    // TLS and WebSocket buffer inside; TCP has nothing to flush.
    stream.flush().await.map_err(|_| ())?;
    Ok(true)
}

/// A connection's byte stream once its handshake is done.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Ready when a read would make progress, so that the read buffer is
    /// only reserved (or grown) once bytes are there. Plain TCP can tell;
    /// TLS and WebSocket may hold data inside, so they are always ready and
    /// wait in the read itself.
    fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let _ = cx;
        std::task::Poll::Ready(())
    }
}

impl Stream for TcpStream {
    fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        // An error shows up again in the read that follows.
        self.poll_read_ready(cx).map(|_| ())
    }
}

impl Stream for Box<tokio_rustls::server::TlsStream<TcpStream>> {}
impl Stream for Box<crate::ws::WsIo<TcpStream>> {}
impl Stream for Box<crate::ws::WsIo<tokio_rustls::server::TlsStream<TcpStream>>> {}

/// Registers a connection with the core: its identifier and decoder, or
/// `None` when refused or stopping.
async fn register(
    to_core: &ToCoreTx,
    peer: SocketAddr,
    certificate_subject: Option<String>,
    outbox: &Arc<Outbox>,
) -> Option<(ConnId, Decoder)> {
    let (reply_tx, reply_rx) = oneshot::channel();
    let open = ToCore::Open {
        peer,
        certificate_subject,
        writer: outbox.clone(),
        reply: reply_tx,
    };
    to_core.send(open).await.ok()?;
    let registered = reply_rx.await.ok().flatten();
    if registered.is_none() {
        debug!(%peer, "connection refused: limit reached");
    }
    registered
}

/// After the read side ended: writes what the core still sends (a
/// DISCONNECT with a reason code, a refusing CONNACK) until it closes the
/// connection, bounded in time.
async fn continue_until_closed<S>(stream: &mut S, outbox: &Outbox)
where
    S: AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            while let Some(msg) = outbox.pop() {
                match msg {
                    ToConn::Frames(version, frames, len) => {
                        if stream
                            .write_all(&encode(version, frames, len))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    ToConn::Close => {
                        let _ = stream.flush().await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                }
            }
            outbox.ready().await;
        }
    })
    .await;
}

/// Encodes a chunk of packets for one write, in a buffer of its exact size
/// (allocated here, in the connection's task, and freed after the write).
fn encode(version: ProtocolVersion, frames: Vec<Frame>, len: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(len);
    for f in &frames {
        // The core measured each packet against the peer's limits;
        // encoding cannot fail here.
        if f.encode(version, &mut out).is_err() {
            debug!("a packet could not be encoded");
        }
    }
    out
}

/// Every whole packet in `buf`, with its size on the wire, and the decoding
/// error that stops the stream, if any.
fn decode_all(
    decoder: &mut Decoder,
    buf: &mut BytesMut,
) -> (Vec<(Packet, usize)>, Option<DecodeError>) {
    let mut packets = Vec::new();
    loop {
        let before = buf.len();
        match decoder.decode(buf) {
            Ok(Some(p)) => packets.push((p, before - buf.len())),
            Ok(None) => return (packets, None),
            Err(e) => {
                buf.clear();
                return (packets, Some(e));
            }
        }
    }
}

async fn core<P: Policy + Send + 'static>(
    config: BrokerConfig,
    policy: P,
    mut rx: mpsc::Receiver<ToCore>,
    shutdown: Arc<Notify>,
    bridges: Vec<Prepared>,
) {
    let clock = Clock(tokio::time::Instant::now());
    let sys_every = config.sys_interval;
    let mut broker = Broker::new(config, policy);
    let (mut bridges, mut from_bridges) =
        Bridges::start(bridges, sys_every, &mut broker, clock.now());
    let mut w = Writers::new();
    let mut stopping = false;
    loop {
        let deadline = [broker.poll_timeout(), bridges.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .map(|t| clock.to_tokio(t))
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let mut packets = weight(&cmd);
                handle(&mut broker, &mut w, &mut bridges, clock, cmd);
                // Take what is already queued before writing, so one write
                // carries all the packets this batch made for a connection.
                for _ in 0..BATCH {
                    if packets >= BATCH_PACKETS {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(cmd) => {
                            packets += weight(&cmd);
                            handle(&mut broker, &mut w, &mut bridges, clock, cmd);
                        }
                        Err(_) => break,
                    }
                }
            }
            Some(msg) = from_bridges.recv() => {
                bridges.handle_inbound(&mut broker, msg, clock.now());
                for _ in 0..BATCH {
                    match from_bridges.try_recv() {
                        Ok(msg) => bridges.handle_inbound(&mut broker, msg, clock.now()),
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                broker.handle_timeout(clock.now());
                bridges.handle_timeout(&mut broker, clock.now());
            }
            _ = shutdown.notified(), if !stopping => {
                stopping = true;
                bridges.stop();
                info!(connections = broker.connection_count(), "shutting down");
                for id in broker.connections() {
                    broker.close(id, clock.now(), ReasonCode::SERVER_SHUTTING_DOWN);
                }
            }
        }
        flush(&mut broker, &mut w, &mut bridges, clock);
        if stopping && w.conns.is_empty() {
            break;
        }
    }
    bridges.join().await;
}

/// The core's side of the connections' writers.
struct Writers {
    conns: HashMap<ConnId, ConnHandle>,
    /// Connections whose outbox was full when the core last wrote for them.
    blocked: Vec<ConnId>,
}

impl Writers {
    fn new() -> Writers {
        Writers {
            conns: HashMap::new(),
            blocked: Vec::new(),
        }
    }
}

/// How many packets a command brings to the core.
fn weight(cmd: &ToCore) -> usize {
    match cmd {
        ToCore::Packets(_, packets, _, _) => packets.len().max(1),
        _ => 1,
    }
}

fn handle<P: Policy>(
    broker: &mut Broker<P>,
    w: &mut Writers,
    bridges: &mut Bridges,
    clock: Clock,
    cmd: ToCore,
) {
    let now = clock.now();
    match cmd {
        ToCore::Open {
            peer,
            certificate_subject,
            writer,
            reply,
        } => {
            let info = PeerInfo {
                remote: peer.to_string(),
                certificate_subject,
            };
            match broker.open(now, info) {
                Ok(id) => {
                    debug!(%peer, ?id, "connection opened");
                    w.conns.insert(
                        id,
                        ConnHandle {
                            writer,
                            closing: false,
                        },
                    );
                    let _ = reply.send(Some((id, broker.decoder())));
                }
                Err(e) => {
                    warn!(%peer, error = %e, "connection refused");
                    let _ = reply.send(None);
                }
            }
        }
        ToCore::Packets(id, packets, error, _permit) => {
            broker.handle_packets(id, now, packets, error)
        }
        ToCore::Eof(id) => broker.handle_eof(id, now),
        ToCore::Writable(id) => {
            if let Some(i) = w.blocked.iter().position(|b| *b == id) {
                w.blocked.swap_remove(i);
                write_one(broker, w, bridges, clock, id);
            }
        }
    }
}

/// Writes every connection that has bytes, then acts on closes.
fn flush<P: Policy>(broker: &mut Broker<P>, w: &mut Writers, bridges: &mut Bridges, clock: Clock) {
    // Connections whose outbox was full: those that have caught up since
    // get their waiting packets now (their own Writable may still be queued
    // behind other commands, or was not sent because the queue was full).
    if !w.blocked.is_empty() {
        let waiting = std::mem::take(&mut w.blocked);
        for id in waiting {
            match w.conns.get(&id) {
                Some(h) if h.writer.has_room() => write_one(broker, w, bridges, clock, id),
                Some(_) => w.blocked.push(id),
                None => {}
            }
        }
    }
    while let Some(id) = broker.poll_writable() {
        if !w.blocked.contains(&id) {
            write_one(broker, w, bridges, clock, id);
        }
    }
    while let Some(ev) = broker.poll_event() {
        // `BrokerEvent` is non-exhaustive: other events are not acted on here.
        if let BrokerEvent::Closed { id, close } = ev {
            if bridges.owns(id) {
                bridges.closed(broker, id, close.reason, clock.now());
                continue;
            }
            debug!(?id, reason = %close.reason, initiator = ?close.initiator, "connection closed");
            // The last bytes (a DISCONNECT, a refusing CONNACK) go out first.
            write_one(broker, w, bridges, clock, id);
            if let Some(h) = w.conns.get_mut(&id) {
                h.closing = true;
                h.writer.push(ToConn::Close);
            }
            w.conns.remove(&id);
            w.blocked.retain(|b| *b != id);
        }
    }
}

fn write_one<P: Policy>(
    broker: &mut Broker<P>,
    w: &mut Writers,
    bridges: &mut Bridges,
    clock: Clock,
    id: ConnId,
) {
    let now = clock.now();
    if bridges.owns(id) {
        // A bridge's local end: its packets go to its in-process client.
        bridges.write(broker, id, now);
        return;
    }
    let Some(h) = w.conns.get_mut(&id) else {
        // Gone from our side: still let the core free it.
        let mut sink = Vec::new();
        while broker.poll_frames(id, now, &mut sink, usize::MAX) > 0 {
            sink.clear();
        }
        return;
    };
    if h.closing {
        return;
    }
    loop {
        if !h.writer.has_room() {
            // A slow reader: its packets wait in its session, whose bounded
            // queue sheds load, until the writer catches up.
            if !w.blocked.contains(&id) {
                w.blocked.push(id);
            }
            return;
        }
        // The version is read first: taking the last packets frees a closed one.
        let Some(version) = broker.version(id) else {
            return;
        };
        let mut frames = Vec::new();
        let len = broker.poll_frames(id, now, &mut frames, CHUNK_BUDGET);
        if frames.is_empty() {
            return;
        }
        h.writer.push(ToConn::Frames(version, frames, len));
    }
}

/// Binds every listener, failing early if one cannot be bound.
pub(crate) async fn bind(
    listeners: Vec<(SocketAddr, Transport)>,
) -> std::io::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for (address, transport) in listeners {
        let socket = TcpListener::bind(address).await?;
        info!(address = %socket.local_addr()?, "listening for {}", transport.name());
        out.push(BoundListener { socket, transport });
    }
    Ok(out)
}

/// A random seed for the broker core's hashers and random choices.
pub(crate) fn seed() -> u64 {
    let mut b = [0u8; 8];
    // Without an OS source a fixed seed still works; keyed hashing then only
    // loses its resistance to chosen collisions.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle connection's task holds is the connection future: keep
    /// it small (192 bytes when this test was written; see [`serve`]).
    #[tokio::test]
    async fn the_connection_future_is_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let to_core = ToCoreTx {
            tx,
            budget: Arc::new(Semaphore::new(1)),
        };
        let serving = serve(client, addr, None, to_core);
        let size = std::mem::size_of_val(&serving);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 256, "the connection future grew to {size} bytes");
    }
}
