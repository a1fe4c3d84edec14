//! The broker on tokio: one task owns the sans-IO [`Broker`] core; one task
//! per connection reads its socket, one writes it. They talk over channels.
//! Every transport (TCP, TLS, WebSocket, WebSocket over TLS) is a byte
//! stream once its handshake is done, so all share the reader and writer.
//!
//! ```text
//!  socket ──read task──▶ ToCore::Read(id, bytes) ─┐
//!                                                 ▼
//!                                   core task: Broker::handle_read / handle_timeout
//!                                                 │ poll_writable + poll_transmit
//!  socket ◀─write task── ToConn::Write(bytes) ◀───┘  (one write per batch of packets)
//! ```
//!
//! The core task drains every command that is already queued before it
//! writes, so one `poll_transmit` per connection carries every packet that
//! the batch produced for it. A connection whose write channel is full is not
//! polled until its writer has caught up: its packets wait inside the core,
//! where the session's bounded queue limits them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_codec::ReasonCode;
use mqtt_router::broker::{Broker, BrokerConfig, BrokerEvent, ConnId, PeerInfo, Policy};
use mqtt_session::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tracing::{debug, info, warn};

use crate::transport::{Accepted, Transport};

/// Read buffer size per read call.
const READ_CHUNK: usize = 8 * 1024;
/// Chunks of bytes queued for one connection's writer before the core stops
/// writing for it (each chunk is one batch of packets).
const WRITE_QUEUE: usize = 32;
/// How many queued commands the core handles before it writes.
const BATCH: usize = 256;

/// What connection tasks tell the core.
enum ToCore {
    Open {
        peer: SocketAddr,
        certificate_subject: Option<String>,
        writer: mpsc::Sender<ToConn>,
        reply: oneshot::Sender<Option<ConnId>>,
    },
    Read(ConnId, BytesMut),
    Eof(ConnId),
    /// The writer emptied its queue: the core may write for it again.
    Writable(ConnId),
}

/// What the core tells a connection's writer.
enum ToConn {
    Write(Bytes),
    Close,
}

struct ConnHandle {
    writer: mpsc::Sender<ToConn>,
    rbuf: BytesMut,
    closing: bool,
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
) {
    let (to_core, from_conns) = mpsc::channel::<ToCore>(4096);
    for listener in listeners {
        tokio::spawn(accept_loop(listener, admission.clone(), to_core.clone()));
    }
    drop(to_core);
    core(config, policy, from_conns, shutdown).await;
}

async fn accept_loop(listener: BoundListener, admission: Admission, to_core: mpsc::Sender<ToCore>) {
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
async fn connection(accepted: Accepted, peer: SocketAddr, to_core: mpsc::Sender<ToCore>) {
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
async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    certificate_subject: Option<String>,
    to_core: mpsc::Sender<ToCore>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (writer_tx, mut writer_rx) = mpsc::channel::<ToConn>(WRITE_QUEUE);
    let (reply_tx, reply_rx) = oneshot::channel();
    let open = ToCore::Open {
        peer,
        certificate_subject,
        writer: writer_tx,
        reply: reply_tx,
    };
    if to_core.send(open).await.is_err() {
        return;
    }
    let Ok(Some(id)) = reply_rx.await else {
        debug!(%peer, "connection refused: limit reached");
        return;
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let core_for_writer = to_core.clone();
    // The writer ends when the core closes the connection; the reader stops then too.
    let (stopped_tx, mut stopped) = oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let _stopped = stopped_tx;
        while let Some(msg) = writer_rx.recv().await {
            match msg {
                ToConn::Write(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        break;
                    }
                    if writer_rx.is_empty() {
                        // TLS and WebSocket buffer inside; TCP has nothing to flush.
                        if wr.flush().await.is_err() {
                            break;
                        }
                        let _ = core_for_writer.send(ToCore::Writable(id)).await;
                    }
                }
                ToConn::Close => break,
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to_core.send(ToCore::Eof(id)).await;
                    break;
                }
                Ok(_) => {
                    if to_core.send(ToCore::Read(id, buf.split())).await.is_err() {
                        break;
                    }
                }
            },
            _ = &mut stopped => break,
        }
    }
    let _ = writer.await;
}

async fn core<P: Policy + Send + 'static>(
    config: BrokerConfig,
    policy: P,
    mut rx: mpsc::Receiver<ToCore>,
    shutdown: Arc<Notify>,
) {
    let clock = Clock(tokio::time::Instant::now());
    let mut broker = Broker::new(config, policy);
    let mut conns: HashMap<ConnId, ConnHandle> = HashMap::new();
    let mut blocked: Vec<ConnId> = Vec::new();
    let mut stopping = false;
    loop {
        let deadline = broker
            .poll_timeout()
            .map(|t| clock.to_tokio(t))
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                handle(&mut broker, &mut conns, &mut blocked, clock, cmd);
                // Take what is already queued before writing, so one write
                // carries all the packets this batch made for a connection.
                for _ in 0..BATCH {
                    match rx.try_recv() {
                        Ok(cmd) => handle(&mut broker, &mut conns, &mut blocked, clock, cmd),
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => broker.handle_timeout(clock.now()),
            _ = shutdown.notified(), if !stopping => {
                stopping = true;
                info!(connections = broker.connection_count(), "shutting down");
                for id in broker.connections() {
                    broker.close(id, clock.now(), ReasonCode::SERVER_SHUTTING_DOWN);
                }
            }
        }
        flush(&mut broker, &mut conns, &mut blocked, clock);
        if stopping && conns.is_empty() {
            break;
        }
    }
}

fn handle<P: Policy>(
    broker: &mut Broker<P>,
    conns: &mut HashMap<ConnId, ConnHandle>,
    blocked: &mut Vec<ConnId>,
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
                    conns.insert(
                        id,
                        ConnHandle {
                            writer,
                            rbuf: BytesMut::new(),
                            closing: false,
                        },
                    );
                    let _ = reply.send(Some(id));
                }
                Err(e) => {
                    warn!(%peer, error = %e, "connection refused");
                    let _ = reply.send(None);
                }
            }
        }
        ToCore::Read(id, data) => {
            let Some(h) = conns.get_mut(&id) else { return };
            if h.rbuf.is_empty() {
                h.rbuf = data;
            } else {
                h.rbuf.extend_from_slice(&data);
            }
            broker.handle_read(id, now, &mut h.rbuf);
        }
        ToCore::Eof(id) => broker.handle_eof(id, now),
        ToCore::Writable(id) => {
            if let Some(i) = blocked.iter().position(|b| *b == id) {
                blocked.swap_remove(i);
                write_one(broker, conns, blocked, clock, id);
            }
        }
    }
}

/// Writes every connection that has bytes, then acts on closes.
fn flush<P: Policy>(
    broker: &mut Broker<P>,
    conns: &mut HashMap<ConnId, ConnHandle>,
    blocked: &mut Vec<ConnId>,
    clock: Clock,
) {
    while let Some(id) = broker.poll_writable() {
        if !blocked.contains(&id) {
            write_one(broker, conns, blocked, clock, id);
        }
    }
    while let Some(ev) = broker.poll_event() {
        // `BrokerEvent` is non-exhaustive: other events are not acted on here.
        if let BrokerEvent::Closed { id, close } = ev {
            debug!(?id, reason = %close.reason, initiator = ?close.initiator, "connection closed");
            // The last bytes (a DISCONNECT, a refusing CONNACK) go out first.
            write_one(broker, conns, blocked, clock, id);
            if let Some(h) = conns.get_mut(&id) {
                h.closing = true;
                let _ = h.writer.try_send(ToConn::Close);
            }
            conns.remove(&id);
            blocked.retain(|b| *b != id);
        }
    }
}

fn write_one<P: Policy>(
    broker: &mut Broker<P>,
    conns: &mut HashMap<ConnId, ConnHandle>,
    blocked: &mut Vec<ConnId>,
    clock: Clock,
    id: ConnId,
) {
    let Some(h) = conns.get_mut(&id) else {
        // Gone from our side: still let the core free it.
        let mut sink = BytesMut::new();
        let _ = broker.poll_transmit(id, clock.now(), &mut sink);
        return;
    };
    if h.closing {
        return;
    }
    let permit = match h.writer.try_reserve() {
        Ok(p) => p,
        Err(_) => {
            // A slow reader: its packets wait in its session, whose bounded
            // queue sheds load, until the writer catches up.
            if !blocked.contains(&id) {
                blocked.push(id);
            }
            return;
        }
    };
    let mut out = BytesMut::new();
    let n = broker.poll_transmit(id, clock.now(), &mut out);
    if n > 0 {
        permit.send(ToConn::Write(out.freeze()));
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
