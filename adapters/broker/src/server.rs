//! The broker on tokio: one task owns the sans-IO [`Broker`] core; one task
//! per connection reads its socket, one writes it. They talk over channels.
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{debug, info, warn};

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

/// Runs the broker until `shutdown` is notified: listeners, connection tasks
/// and the core. On shutdown 5.0 clients get DISCONNECT 0x8B.
pub(crate) async fn run<P: Policy + Send + 'static>(
    config: BrokerConfig,
    policy: P,
    listeners: Vec<TcpListener>,
    shutdown: Arc<Notify>,
) {
    let (to_core, from_conns) = mpsc::channel::<ToCore>(4096);
    for listener in listeners {
        tokio::spawn(accept_loop(listener, to_core.clone()));
    }
    drop(to_core);
    core(config, policy, from_conns, shutdown).await;
}

async fn accept_loop(listener: TcpListener, to_core: mpsc::Sender<ToCore>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, peer, to_core.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One client connection: registers with the core, then reads and writes.
async fn connection(stream: TcpStream, peer: SocketAddr, to_core: mpsc::Sender<ToCore>) {
    let (writer_tx, mut writer_rx) = mpsc::channel::<ToConn>(WRITE_QUEUE);
    let (reply_tx, reply_rx) = oneshot::channel();
    let open = ToCore::Open {
        peer,
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
    let (mut rd, mut wr) = stream.into_split();
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
            writer,
            reply,
        } => {
            let info = PeerInfo {
                remote: peer.to_string(),
                certificate_subject: None,
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

/// Binds every configured listener, failing early if one cannot be bound.
pub(crate) async fn bind(addrs: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for a in addrs {
        let l = TcpListener::bind(a).await?;
        info!(address = %l.local_addr()?, "listening for MQTT over TCP");
        out.push(l);
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
