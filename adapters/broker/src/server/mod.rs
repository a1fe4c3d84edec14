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
//! Bridges ([`crate::bridge`]) are subscribers of the core, not
//! connections: after each batch the core task hands what the core queued
//! for each bridge to that bridge's remote task (where it writes to
//! sockets), and the remote tasks' messages and reports arrive on their own
//! channel, for `Broker::publish_from_bridge` and `Broker::bridge_settled`.

mod accept;
mod authn;
mod conn_log;
mod connection;
mod core_loop;
mod due;
mod order;
mod outbox;
mod persist;

use accept::accept_loop;
pub(crate) use accept::{bind, Admission, BoundListener, SharedTransport};
use order::{Stamp, Stamps};
use outbox::Outbox;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mqtt_codec::{DecodeError, Decoder, Packet};
use mqtt_router::broker::{Broker, ConnId, RestoredState};
use mqtt_session::Instant;
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::auth::Authenticator;
use crate::bridge::Prepared;
use crate::metrics::Monitor;

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
        /// What the client's TLS certificate says (subject, user name).
        certificate: crate::tls::PeerCertificate,
        writer: Arc<Outbox>,
        reply: oneshot::Sender<Option<(ConnId, Decoder)>>,
    },
    /// Packets the reader decoded, each with its size on the wire, and the
    /// decoding error that ended the stream after them, if any.
    /// The permit holds the batch's wire bytes against [`CORE_INPUT_BUDGET`]
    /// until the core has handled it; the stamp says when the read's bytes
    /// were first seen ([`order`]).
    Packets {
        id: ConnId,
        packets: Vec<(Packet, usize)>,
        error: Option<DecodeError>,
        /// Bytes of a packet not yet whole after the read, when the core
        /// must hear of them ([`Broker::handle_partial`]).
        partial: Option<usize>,
        _permit: OwnedSemaphorePermit,
        stamp: Stamp,
    },
    /// The connection's stream ended (or could not be written).
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
/// Bytes of reads holding only acknowledgements and PINGREQs that may wait
/// for the core, apart from [`CORE_INPUT_BUDGET`] (see `due`).
const CORE_ACK_BUDGET: usize = 1024 * 1024;

/// The connection tasks' way to the core: one pointer, since every idle
/// connection's future holds one (see `connection::serve`).
#[derive(Clone)]
struct ToCoreTx(Arc<ToCoreShared>);

/// What [`ToCoreTx`] points to. The channel to the core closes once every
/// `ToCoreTx` is gone.
struct ToCoreShared {
    tx: mpsc::Sender<ToCore>,
    budget: Arc<Semaphore>,
    /// The budget of reads holding only acknowledgements.
    ack_budget: Arc<Semaphore>,
    stamps: Arc<Stamps>,
    /// Longest a write may make no progress (`limits.write_timeout`).
    write_timeout: Duration,
}

impl std::ops::Deref for ToCoreTx {
    type Target = ToCoreShared;

    fn deref(&self) -> &ToCoreShared {
        &self.0
    }
}

impl ToCoreTx {
    async fn send(&self, cmd: ToCore) -> Result<(), mpsc::error::SendError<ToCore>> {
        self.tx.send(cmd).await
    }

    /// Hands a decoded batch, read at `stamp`, to the core once the budget
    /// has room for its `bytes`; `Err` when the broker is stopping. The
    /// stamp stays what it was while the batch waits for room: it says when
    /// its bytes were seen, and nothing waits for it.
    async fn send_packets(
        &self,
        id: ConnId,
        read: connection::Read,
        bytes: usize,
        stamp: Stamp,
    ) -> Result<(), ()> {
        // A batch is at most one read (64 KiB) plus one packet, so it fits.
        // Acknowledgements have their own budget: behind publishers' reads
        // waiting for room they would wait for those to be handled, and
        // their subscriber would look stalled (see `due`).
        let (budget, limit) = if read.error.is_none()
            && read.partial.is_none()
            && due::acknowledgements_only(&read.packets)
        {
            (&self.ack_budget, CORE_ACK_BUDGET)
        } else {
            (&self.budget, CORE_INPUT_BUDGET)
        };
        let n = u32::try_from(bytes.clamp(1, limit)).unwrap_or(u32::MAX);
        let permit = match budget.clone().try_acquire_many_owned(n) {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(()),
            Err(TryAcquireError::NoPermits) => {
                budget.clone().acquire_many_owned(n).await.map_err(|_| ())?
            }
        };
        let cmd = ToCore::Packets {
            id,
            packets: read.packets,
            error: read.error,
            partial: read.partial,
            _permit: permit,
            stamp,
        };
        self.tx.send(cmd).await.map_err(|_| ())
    }
}

/// The core's clock: milliseconds since the broker started.
#[derive(Clone, Copy)]
pub(crate) struct Clock(tokio::time::Instant);

impl Clock {
    /// A clock whose epoch is now.
    pub(crate) fn start() -> Clock {
        Clock(tokio::time::Instant::now())
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }

    fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        self.0 + Duration::from_millis(at.as_millis())
    }
}

/// What a running server's owner asks of the core task (see
/// [`crate::Reloader`]).
pub(crate) enum Control {
    /// Authenticate with this from now on, and give every session the
    /// rights it gives.
    Authenticator(Arc<dyn Authenticator>),
}

/// The broker core with its store, restored and ready to serve.
pub(crate) struct Core {
    broker: Broker,
    clock: Clock,
    store: Option<persist::StoreLink>,
    auth: authn::AuthDriver,
    monitor: Arc<Monitor>,
    control: mpsc::UnboundedReceiver<Control>,
}

impl Core {
    /// The core, restored from `store` (read now) when there is one.
    /// Restored sessions get the rights `authenticator` gives their owners.
    pub(crate) fn new(
        mut broker: Broker,
        store: Option<Box<dyn crate::store::Store>>,
        authenticator: Arc<dyn Authenticator>,
        max_checks: usize,
        monitor: Arc<Monitor>,
        control: mpsc::UnboundedReceiver<Control>,
    ) -> std::io::Result<Core> {
        let clock = Clock::start();
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        let store = match store {
            Some(mut store) => {
                let state: RestoredState = store.load().map_err(|e| invalid(e.to_string()))?;
                compact(&mut *store, "at start");
                let (sessions, retained) = (state.sessions.len(), state.retained.len());
                let owners: Vec<_> = state
                    .sessions
                    .iter()
                    .map(|s| (s.client_id.clone(), s.username.clone()))
                    .collect();
                broker
                    .restore(clock.now(), persist::wall_now(), state)
                    .map_err(|e| invalid(format!("the store {}: {e}", store.describe())))?;
                for (client_id, username) in owners {
                    let username = username.as_ref().map(|u| u.as_str());
                    let rights = authenticator.rights(client_id.as_str(), username);
                    broker.set_session_rights(&client_id, rights);
                }
                tracing::info!(store = %store.describe(), sessions, retained, "durable: state restored");
                Some(persist::StoreLink::start(store, monitor.clone())?)
            }
            None => None,
        };
        Ok(Core {
            broker,
            clock,
            store,
            auth: authn::AuthDriver::new(authenticator, max_checks),
            monitor,
            control,
        })
    }
}

/// The core's links to other brokers: bridges, and the cluster.
pub(crate) struct Links {
    pub(crate) bridges: Vec<Prepared>,
    pub(crate) cluster: Option<crate::cluster::ClusterConfig>,
}

/// Gives a store's free space back (see `Store::compact`); a failure is
/// logged, not fatal: what is stored is unchanged.
pub(crate) fn compact(store: &mut dyn crate::store::Store, when: &str) {
    let started = std::time::Instant::now();
    match store.compact() {
        Ok(true) => {
            tracing::info!(store = %store.describe(), took_ms = started.elapsed().as_millis() as u64, "store compacted {when}")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!("store not compacted {when}: {e}"),
    }
}

/// Runs the broker until `shutdown` is notified: listeners, connection tasks
/// and the core. On shutdown 5.0 clients get DISCONNECT 0x8B. Ends early,
/// with the error, if the store dies.
pub(crate) async fn run(
    core: Core,
    listeners: Vec<BoundListener>,
    admission: Admission,
    shutdown: Arc<Notify>,
    links: Links,
) -> Result<(), crate::store::StoreDied> {
    let (tx, from_conns) = mpsc::channel::<ToCore>(4096);
    let to_core = ToCoreTx(Arc::new(ToCoreShared {
        tx,
        budget: Arc::new(Semaphore::new(CORE_INPUT_BUDGET)),
        ack_budget: Arc::new(Semaphore::new(CORE_ACK_BUDGET)),
        stamps: Arc::new(Stamps::new(admission.order_across_connections)),
        write_timeout: admission.write_timeout,
    }));
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(accept_loop(l, admission.clone(), to_core.clone())))
        .collect();
    let stamps = to_core.stamps.clone();
    drop(to_core);
    let mut from_conns = core_loop::Input {
        commands: from_conns,
        stamps,
    };
    core.monitor.set_ready(true);
    let monitor = core.monitor.clone();
    let ended = core_loop::core(core, &mut from_conns, shutdown, links).await;
    monitor.set_ready(false);
    for a in &accepting {
        a.abort();
    }
    // The store died: the connections are dropped as they are (what
    // waited for the store was never acknowledged).
    ended?;
    // Every connection was told to close: wait (bounded) until every
    // connection task has written its last packets (a 5.0 client's
    // DISCONNECT 0x8B) and closed its socket, which drops its sending end;
    // what they still hand over is dropped.
    let drained = async { while from_conns.commands.recv().await.is_some() {} };
    if tokio::time::timeout(DRAIN, drained).await.is_err() {
        tracing::warn!("some connections did not close in time");
    }
    Ok(())
}

/// The longest the broker waits at shutdown for its connections' last writes.
const DRAIN: Duration = Duration::from_secs(5);

/// A random seed for the broker core's hashers and random choices.
pub(crate) fn seed() -> u64 {
    let mut b = [0u8; 8];
    // Without an OS source a fixed seed still works; keyed hashing then only
    // loses its resistance to chosen collisions.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
