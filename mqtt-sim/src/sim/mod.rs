//! The simulator: broker cores and client connections over simulated links,
//! on one virtual clock, driven by a seeded scheduler.
//!
//! [`Sim`] plays every adapter at once. For each broker it does what the
//! broker binary's connection tasks do (bytes or packets in, bytes or frames
//! out, closes acted on), for each client what a client adapter does, and
//! between them each connection's [`LinkConfig`] decides when bytes arrive.
//! Time moves only when nothing is left to do at the current instant
//! ([`Sim::run_until_idle`], [`Sim::advance`]), so hours of keep alive cost
//! microseconds; which of several things due at one instant goes first is
//! the [`Scheduling`]'s choice (in order, or drawn from the seed).

mod cluster;
mod commands;
mod drive;
mod faults;
mod store;

use std::collections::{BTreeMap, VecDeque};

use bytes::BytesMut;
use mqtt_router::broker::{AuthAnswer, AuthRequest, Broker, BrokerConfig, BrokerEvent, ConnId};
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{Decoder, Packet, ProtocolVersion, MAX_PACKET_SIZE};
use mqtt_session::{Client, ClientEvent, Close, Connection, Frame};

pub use commands::Received;
pub use faults::{Durability, Restart, Volatile};
pub use store::{wall_at, Durable, WALL0};

use crate::net::{LinkConfig, Pipe};
use crate::observe::{Observer, Quiet};
use crate::rng::Rng;

/// Index of a peer (one client connection) in [`Sim::peers`].
pub type PeerId = usize;

/// How the simulator picks among things due at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduling {
    /// Timers first, then deliveries to brokers, then to clients, each in
    /// peer order: the same run every time, whatever the seed.
    #[default]
    InOrder,
    /// Uniformly among everything due, drawn from the seed: interleavings
    /// across connections differ from seed to seed (order within one
    /// connection is always kept).
    Random,
}

/// How a broker's adapter hands bytes to it and takes them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdapterPath {
    /// `Broker::handle_read` and `Broker::poll_transmit`: the core decodes
    /// and encodes.
    #[default]
    Bytes,
    /// The adapter decodes with `Broker::decoder` into
    /// `Broker::handle_packets` and encodes the frames of
    /// `Broker::poll_frames` in small batches, as the tokio broker's
    /// connection tasks do.
    Packets,
}

/// One end-to-end connection: a client (or a raw peer whose bytes a test
/// writes) and its link to a broker.
pub struct Peer {
    /// The broker it talks to.
    pub broker: usize,
    /// The broker's id for this connection; `None` if the broker was down or
    /// refused the transport.
    pub id: Option<ConnId>,
    /// The client state machine; `None` for a raw peer driven by hand.
    pub conn: Option<Connection<Client>>,
    /// The version it speaks (for decoding what it receives).
    pub version: ProtocolVersion,
    /// The client's events not taken yet (kept when recording).
    pub events: Vec<ClientEvent>,
    /// Every packet the broker wrote to this peer, decoded (when recording).
    pub received: Vec<Packet>,
    /// Every byte the broker wrote to this peer (when recording).
    pub raw_in: Vec<u8>,
    /// Neither end has closed or lost the transport yet.
    pub open: bool,
    /// The client is hung: it reads, writes and keeps time no more.
    pub frozen: bool,
    /// When a hung client wakes up by itself.
    pub(crate) thaw_at: Option<Instant>,
    /// How the broker ended this connection, if it did.
    pub broker_close: Option<Close>,
    /// How the transport behaves.
    pub link: LinkConfig,
    pub(crate) c2s: Pipe,
    pub(crate) s2c: Pipe,
    /// The client's read buffer.
    rbuf: BytesMut,
    /// The broker adapter's read buffer for this connection.
    broker_rbuf: BytesMut,
    /// The broker adapter's decoder (packet path).
    adapter_decoder: Option<Decoder>,
    /// A second decoder of what the broker reads, for the observer (bytes path).
    shadow: Option<(Decoder, BytesMut)>,
    /// Decodes what the broker wrote, for [`Peer::received`].
    transcript: (Decoder, BytesMut),
    /// The client's side has closed its transport.
    client_done: bool,
    /// The broker's side is gone: it closed the connection, refused it or
    /// crashed.
    pub(crate) broker_gone: bool,
}

impl core::fmt::Debug for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Peer")
            .field("broker", &self.broker)
            .field("id", &self.id)
            .field("version", &self.version)
            .field("open", &self.open)
            .field("frozen", &self.frozen)
            .field("broker_close", &self.broker_close)
            .finish_non_exhaustive()
    }
}

impl Peer {
    fn new(
        broker: usize,
        conn: Option<Connection<Client>>,
        v: ProtocolVersion,
        link: LinkConfig,
    ) -> Self {
        Peer {
            broker,
            id: None,
            conn,
            version: v,
            events: Vec::new(),
            received: Vec::new(),
            raw_in: Vec::new(),
            open: true,
            frozen: false,
            thaw_at: None,
            broker_close: None,
            link,
            c2s: Pipe::default(),
            s2c: Pipe::default(),
            rbuf: BytesMut::new(),
            broker_rbuf: BytesMut::new(),
            adapter_decoder: None,
            shadow: None,
            transcript: (
                Decoder::with_version(v).with_max_packet_size(MAX_PACKET_SIZE),
                BytesMut::new(),
            ),
            client_done: false,
            broker_gone: false,
        }
    }

    /// The client state machine (panics for a raw peer).
    pub fn client(&mut self) -> &mut Connection<Client> {
        self.conn.as_mut().expect("not a raw peer")
    }

    /// Nothing is left to do for this peer: both sides are done and nothing
    /// is in flight.
    fn finished(&self) -> bool {
        let client_done = self.conn.as_ref().is_none_or(Connection::is_closed);
        client_done
            && self.broker_gone
            && self.c2s.in_flight == 0
            && (self.s2c.is_done() || self.s2c.in_flight == 0 && self.s2c.broken)
    }

    /// Keeps what the broker wrote, decoded, for the test to look at.
    fn record(&mut self, bytes: &[u8]) {
        self.raw_in.extend_from_slice(bytes);
        let (decoder, pending) = &mut self.transcript;
        pending.extend_from_slice(bytes);
        while let Some(p) = decoder
            .decode(pending)
            .expect("the broker writes valid packets")
        {
            self.received.push(p);
        }
    }
}

/// One broker and what its adapter keeps for it.
pub(crate) struct BrokerNode {
    /// The core; `None` while crashed.
    pub(crate) core: Option<Broker>,
    pub(crate) config: BrokerConfig,
    pub(crate) path: AdapterPath,
    /// Which peer each connection belongs to.
    pub(crate) peers: BTreeMap<ConnId, PeerId>,
    /// Connections with output that wait for room in their link.
    pub(crate) blocked: Vec<ConnId>,
    pub(crate) restart: Option<Box<dyn Restart>>,
    /// When a crashed broker comes back.
    pub(crate) restart_at: Option<Instant>,
    /// New connections are refused before this instant.
    pub(crate) refuse_until: Instant,
    /// Restarts so far.
    pub(crate) incarnation: u32,
    /// Scratch space for the packet path's frames.
    frames: Vec<Frame>,
    /// Events taken from the core and not acted on yet.
    pub(crate) events: VecDeque<BrokerEvent>,
    /// Its durable store, if it has one ([`Sim::make_durable`]).
    pub(crate) store: Option<store::SimStore>,
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Steps taken (one delivery, end of stream or timer each).
    pub steps: u64,
    /// Connections opened.
    pub connections: u64,
    /// Broker crashes.
    pub broker_crashes: u64,
}

/// Brokers, clients and the network between them on a virtual clock. See
/// the [crate documentation](crate).
pub struct Sim<O: Observer = Quiet> {
    /// The virtual clock.
    pub now: Instant,
    /// Every connection ever opened, by [`PeerId`].
    pub peers: Vec<Peer>,
    /// Every connection a broker ended, in order (when recording).
    pub closed: Vec<(ConnId, Close)>,
    pub(crate) brokers: Vec<BrokerNode>,
    pub(crate) observer: O,
    pub(crate) rng: Rng,
    pub(crate) scheduling: Scheduling,
    /// Keep events, transcripts and closes for the test to look at.
    pub(crate) record: bool,
    /// The link new connections get.
    pub(crate) default_link: LinkConfig,
    /// Peers with something left to do.
    pub(crate) active: Vec<PeerId>,
    pub(crate) stats: SimStats,
    /// What is due now, reused from step to step.
    pub(crate) ready_buf: Vec<drive::Action>,
    next_port: u32,
    /// Answers authentication requests; none: every request is held.
    pub(crate) authority: Option<Authority>,
    /// Authentication requests held for the test, by broker, in order.
    pub held_auth: Vec<(usize, AuthRequest)>,
    /// The brokers joined in a cluster ([`Sim::join_cluster`]), if any.
    pub(crate) cluster: Option<cluster::FakeCluster>,
}

impl<O: Observer> core::fmt::Debug for Sim<O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("peers", &self.peers.len())
            .field("brokers", &self.brokers.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// One broker with `config`, at time 0, on instant links, everything
    /// recorded, in order: the unit test's simulator. It restarts after a
    /// crash with nothing kept ([`Volatile`]).
    pub fn new(config: BrokerConfig) -> Self {
        let mut sim = Sim::with_observer(config, Quiet);
        sim.brokers[0].restart = Some(Box::new(Volatile));
        sim
    }

    /// [`Sim::new`] with a durable store that commits at once (within the
    /// instant), and a [`Durable`] restart hook: after a crash the broker
    /// comes back with what was committed.
    pub fn durable(config: BrokerConfig) -> Self {
        let mut sim = Sim::with_observer(config, Quiet);
        sim.make_durable(0, (0, 0));
        sim
    }

    /// [`Sim::new`] whose broker `config` asks for authentication, answered
    /// by `authority` (no restart hook: see [`Sim::set_restart`]).
    pub fn with_authority(config: BrokerConfig, authority: Authority) -> Self {
        let mut sim = Sim::with_observer(config, Quiet);
        sim.authority = Some(authority);
        sim
    }
}

/// The simulated driver's answers to authentication requests: `None` holds
/// a request (in [`Sim::held_auth`]) for the test to answer later with
/// [`Broker::answer_auth`], as a slow driver would.
pub type Authority = Box<dyn FnMut(&AuthRequest) -> Option<AuthAnswer>>;

impl<O: Observer> Sim<O> {
    /// One broker with `config`, watched by `observer`.
    pub fn with_observer(config: BrokerConfig, observer: O) -> Self {
        let mut sim = Sim {
            now: Instant::ZERO,
            peers: Vec::new(),
            closed: Vec::new(),
            brokers: Vec::new(),
            observer,
            rng: Rng::new(config.seed),
            scheduling: Scheduling::InOrder,
            record: true,
            default_link: LinkConfig::instant(),
            active: Vec::new(),
            stats: SimStats::default(),
            ready_buf: Vec::new(),
            next_port: 40000,
            authority: None,
            held_auth: Vec::new(),
            cluster: None,
        };
        sim.add_broker(config);
        sim
    }

    /// Adds a broker; returns its index (the first one is 0).
    pub fn add_broker(&mut self, config: BrokerConfig) -> usize {
        let core = Broker::new(config.clone());
        self.brokers.push(BrokerNode {
            core: Some(core),
            config,
            path: AdapterPath::Bytes,
            peers: BTreeMap::new(),
            blocked: Vec::new(),
            restart: None,
            restart_at: None,
            refuse_until: Instant::ZERO,
            incarnation: 0,
            frames: Vec::new(),
            events: VecDeque::new(),
            store: None,
        });
        self.brokers.len() - 1
    }

    /// Seeds the network's and the scheduler's randomness.
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = Rng::new(seed);
        self
    }

    /// How things due at the same instant are ordered.
    pub fn scheduling(mut self, scheduling: Scheduling) -> Self {
        self.scheduling = scheduling;
        self
    }

    /// Whether events, transcripts and closes are kept for the test (on by
    /// default; a long random run turns it off and lets its observer look).
    pub fn record(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// The link every new connection gets (instant by default).
    pub fn default_link(mut self, link: LinkConfig) -> Self {
        self.default_link = link;
        self
    }

    /// How broker `b`'s adapter moves bytes in and out.
    pub fn set_path(&mut self, b: usize, path: AdapterPath) {
        self.brokers[b].path = path;
    }

    /// What brings broker `b` back after a crash.
    pub fn set_restart(&mut self, b: usize, restart: Box<dyn Restart>) {
        self.brokers[b].restart = Some(restart);
    }

    /// The first broker (panics while it is crashed).
    pub fn broker(&self) -> &Broker {
        self.broker_at(0)
    }

    /// The first broker, to call it directly (run the simulator afterwards).
    pub fn broker_mut(&mut self) -> &mut Broker {
        self.broker_at_mut(0)
    }

    /// Broker `b` (panics while it is crashed).
    pub fn broker_at(&self, b: usize) -> &Broker {
        self.brokers[b].core.as_ref().expect("the broker is up")
    }

    /// Broker `b`, to call it directly.
    pub fn broker_at_mut(&mut self, b: usize) -> &mut Broker {
        self.brokers[b].core.as_mut().expect("the broker is up")
    }

    /// Whether broker `b` is running (not crashed).
    pub fn broker_is_up(&self, b: usize) -> bool {
        self.brokers[b].core.is_some()
    }

    /// Broker `b`'s configuration.
    pub fn broker_config(&self, b: usize) -> &BrokerConfig {
        &self.brokers[b].config
    }

    /// How many times broker `b` restarted after a crash.
    pub fn incarnation(&self, b: usize) -> u32 {
        self.brokers[b].incarnation
    }

    /// The observer.
    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// The observer, to change it.
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    /// Takes the observer out, ending the simulation.
    pub fn into_observer(self) -> O {
        self.observer
    }

    /// The run's counters.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// Whole MQTT packets written onto every link so far, both directions.
    pub fn packets(&self) -> u64 {
        self.peers
            .iter()
            .map(|p| p.c2s.packets + p.s2c.packets)
            .sum()
    }

    /// The peers that still have something to do (or might).
    pub fn active_peers(&self) -> Vec<PeerId> {
        self.active.clone()
    }

    /// The client of peer `i` (panics for a raw peer).
    pub fn client(&mut self, i: PeerId) -> &mut Connection<Client> {
        self.peers[i].client()
    }

    /// Peer `i`.
    pub fn peer(&mut self, i: PeerId) -> &mut Peer {
        &mut self.peers[i]
    }

    /// Opens a transport from a client with `conn` (or a raw peer) to
    /// broker `b` on `link`; nothing moves yet. A broker that is down or
    /// full refuses it: the client sees its transport end at once.
    pub fn open(
        &mut self,
        b: usize,
        conn: Option<Connection<Client>>,
        version: ProtocolVersion,
        link: LinkConfig,
    ) -> PeerId {
        let now = self.now;
        self.next_port += 1;
        let mut peer = Peer::new(b, conn, version, link);
        let remote = format!("127.0.0.1:{}", self.next_port);
        let node = &mut self.brokers[b];
        let refusing = now < node.refuse_until;
        let opened = node.core.as_mut().filter(|_| !refusing).map(|core| {
            let info = mqtt_router::broker::PeerInfo {
                remote,
                certificate_subject: None,
                certificate_username: None,
            };
            core.open(now, info)
        });
        let i = self.peers.len();
        match opened {
            Some(Ok(id)) => {
                peer.id = Some(id);
                node.peers.insert(id, i);
                self.stats.connections += 1;
            }
            Some(Err(_)) | None => {
                // Connection refused: the client's transport ends at once.
                peer.broker_gone = true;
                peer.c2s.cut(now);
                peer.s2c.cut(now);
                peer.c2s.take_eof();
            }
        }
        self.peers.push(peer);
        self.active.push(i);
        self.flush_client(i);
        if opened.is_some() {
            self.drain_broker(b);
        }
        i
    }

    /// Opens a connection for a client with `config` to broker `b` on the
    /// default link, resuming `session` (what an earlier connection's
    /// `take_session` gave); nothing moves yet.
    pub fn open_client(
        &mut self,
        b: usize,
        config: mqtt_session::ClientConfig,
        session: Option<mqtt_session::Session>,
    ) -> PeerId {
        let v = config.version;
        let conn = Connection::<Client>::new(config, self.now, session);
        let link = self.default_link.clone();
        self.open(b, Some(conn), v, link)
    }
}
