//! The broker core: a sans-IO machine owning every client connection, the
//! subscription index, the retained store, detached sessions and wills.
//!
//! An adapter accepts sockets and moves bytes; everything MQTT happens here.
//! After any call, drain it: [`Broker::poll_writable`] and
//! [`Broker::poll_transmit`] for bytes to write, [`Broker::poll_event`] for
//! connections to drop, [`Broker::poll_bridge_ready`] and
//! [`Broker::poll_bridge`] for messages to send over bridges,
//! [`Broker::poll_timeout`] for the next deadline.
//!
//! # Bridges
//!
//! A bridge to another broker is a subscriber of its own kind, not a client
//! connection: it has no client identifier, so no client can take it over.
//! Its driver (the adapter that keeps the connection to the remote broker)
//! opens it with the local filters it carries out
//! ([`Broker::open_bridge`]). What routing gives it waits in the core,
//! bounded by its queue limit (the [`QueueFullPolicy`], drops counted),
//! until the driver takes it, and stays counted until the driver reports
//! that the remote broker took it; past half the limit, local QoS 1/2
//! publishers' acknowledgements wait, as for a slow subscriber. What the
//! remote broker sends takes a client's publish path, tagged with the
//! bridge as its origin, so it never goes back out over that bridge:
//!
//! ```text
//! while let Some(id) = broker.poll_bridge_ready() {
//!     while let Some(m) = broker.poll_bridge(id, now) {
//!         // send m.message at m.qos / m.retain; once the remote broker has it:
//!         broker.bridge_settled(id, now, m.token, BridgeOutcome::Delivered);
//!     }
//! }
//! // from the remote broker (the outcome: what to answer it)
//! let outcome = broker.publish_from_bridge(id, now, msg)?;
//! // for $SYS/broker/bridges/<name>/state
//! broker.set_bridge_state(id, BridgeState::Connected);
//! ```
//!
//! Bridges are configuration, not clients: they are not authenticated;
//! their [`Rights`] come with their [`BridgeOptions`].
//!
//! # Authentication and rights
//!
//! Each CONNECT becomes an [`AuthRequest`] ([`Broker::poll_auth`]) when
//! [`AuthConfig::required`] says so or the client names an Authentication
//! Method, and waits for [`Broker::answer_auth`]; a success carries the
//! client's [`Rights`], which the core checks on publish, subscribe and
//! each delivery. A session belongs to the user that opened it: another
//! user (or an anonymous client) connecting with its client identifier
//! takes over the connection but gets a new session.

mod auth;
mod bridges;
mod catch_up;
mod cluster;
mod config;
mod connections;
mod durable;
mod flow;
mod inspect;
mod kept;
mod limits;
mod replay;
mod restore;
mod rights;
mod route;
mod sessions;
mod stats;
mod store;
mod subscriptions;
mod sys;
mod sys_load;
#[cfg(test)]
mod tests;
mod throttle;
mod timers;
mod wills;

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;

use bytes::{BufMut, BytesMut};
use hashbrown::HashMap;
use mqtt_codec::{ProtocolVersion, ReasonCode, Str};
use mqtt_session::mqtt_codec::{DecodeError, Decoder, Packet};
use mqtt_session::{Close, Connection, Frame, Message, Server};

pub use auth::{AuthAnswer, AuthAnswerError, AuthRequest, AuthStep, AuthSuccess, AuthTicket};
pub use bridges::{
    BridgeError, BridgeId, BridgeMessage, BridgeOptions, BridgeOutcome, BridgeState, BridgeStats,
    BridgeToken, OpenedBridge, PublishOutcome,
};
pub use cluster::{InterestChange, RetainedChange, CLUSTER_LINK};
pub use config::{
    AuthConfig, BrokerConfig, ClientLimits, QueueFullPolicy, DEFAULT_MAX_QUEUED_BYTES,
};
pub use inspect::SessionView;
pub use rights::{Access, Rights, Rule};
pub use stats::{reason_name, AuthFailures, DropReason, PublishRefusal, Sizes, Stats};
pub use store::{
    ConnectedWill, MessageId, OutgoingState, RestoreError, RestoredBridge, RestoredBridgeMessage,
    RestoredMessage, RestoredOutgoing, RestoredSession, RestoredState, RestoredSubscription,
    StoreImage, StoreRecord, StoredWill, WallTime,
};

use crate::retained::RetainedMessage;
use crate::seed::{KeyedState, SplitMix64};
use crate::{Instant, Matches, Retained, SubscriptionIndex};
use rights::Reader;

use bridges::Bridges;
use connections::{Conn, Conns};
use durable::Durable;
use flow::Flow;
use kept::{Kept, RetainedBytes};
use sessions::SessionEntry;
use throttle::{Throttle, Throttles};
use timers::Timer;

/// Identifies one client connection; stale once its connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

/// What the adapter knows about the peer of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// The remote address, as text (for logs and policies).
    pub remote: String,
    /// The subject of a verified TLS client certificate, if any.
    pub certificate_subject: Option<String>,
    /// The user name the listener takes from the verified client
    /// certificate (its Common Name with `use_identity_as_username`, its
    /// RFC 2253 subject with `use_subject_as_username`), if the listener
    /// does. Where set, the authentication step should use it in place of
    /// the CONNECT's user name and not ask for a password, as Mosquitto does.
    pub certificate_username: Option<String>,
}

/// Something the adapter must act on.
// Not `#[non_exhaustive]`: every match on it, in this workspace and in
// applications, must handle each event, so a new one cannot be ignored
// silently; adding one is a breaking change, said in the CHANGELOG.
#[derive(Debug)]
// Two events per connection's life, taken at once by the driver: their
// size does not matter, an allocation per close would.
#[allow(clippy::large_enum_variant)]
pub enum BrokerEvent {
    /// A client's CONNECT was accepted (CONNACK 0x00 is on its way): for
    /// the driver's log.
    Connected {
        /// The connection.
        id: ConnId,
        /// Its client identifier (assigned, for an empty one).
        client_id: Str,
        /// The user it authenticated as, if any.
        username: Option<Str>,
        /// Its protocol version.
        version: ProtocolVersion,
        /// Whether it resumed a session.
        session_present: bool,
    },
    /// A connection ended: write what [`Broker::poll_transmit`] still gives
    /// for it, then close the socket. The id is stale afterwards.
    Closed {
        /// The connection.
        id: ConnId,
        /// How it ended.
        close: Close,
    },
}

/// What [`Broker::poll_frames`] handed out for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBatch {
    /// The protocol version the frames are encoded in.
    pub version: ProtocolVersion,
    /// The bytes they take on the wire (0: nothing was ready).
    pub wire_len: usize,
}

/// Why [`Broker::open`] refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configured connection limit is reached.
    #[error("the broker already has its maximum of {0} connections")]
    TooManyConnections(usize),
}

impl RetainedMessage for Message {
    fn is_empty_payload(&self) -> bool {
        self.payload.is_empty()
    }
}

/// Index of a client's session: the key of its subscriptions in the index.
/// A bridge's key has the top bit set (`bridges::BRIDGE_KEY`), which no
/// session index reaches.
type SessionKey = u32;

/// The broker core. See the [module documentation](self).
pub struct Broker {
    config: BrokerConfig,
    /// Authentication requests the driver has not taken yet.
    auth_requests: auth::Requests,
    /// The last authentication ticket's number.
    auth_seq: u32,
    /// Keys the read caches of sessions with rights (see `rights.rs`).
    read_hasher: KeyedState,
    conns: Conns,
    sessions: Vec<Option<SessionEntry>>,
    free_sessions: Vec<SessionKey>,
    client_ids: HashMap<Str, SessionKey, KeyedState>,
    /// Bridges: subscribers outside the session table and `client_ids`.
    bridges: Bridges,
    index: SubscriptionIndex<SessionKey>,
    retained: Retained<Kept>,
    /// The bytes retained messages hold, in all and per client identifier.
    retained_bytes: RetainedBytes,
    /// The bytes queued for sessions whose client is away.
    offline_bytes: usize,
    /// Sessions with a session expiry above zero, connected or not.
    persistent_sessions: usize,
    /// Sessions whose retained replay goes on in later turns, in turn order.
    replaying: VecDeque<SessionKey>,
    /// When the next turn of pending replays is due.
    slice_at: Option<Instant>,
    matches: Matches<SessionKey>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    ready: VecDeque<ConnId>,
    events: VecDeque<BrokerEvent>,
    rng: SplitMix64,
    stats: Stats,
    started: Option<Instant>,
    sys_at: Option<Instant>,
    /// `$SYS/broker/load/...` averages, and when they were last fed.
    load: sys_load::Load,
    load_at: Option<Instant>,
    /// The store seam, once restored; `None`: in memory only, no records.
    store: Option<Box<Durable>>,
    /// Publishers paused by flow control ([`Broker::poll_reading`]).
    throttles: Throttles,
    /// The link to the other nodes, when this broker is one of a cluster.
    cluster: Option<Box<cluster::Cluster>>,
    /// Messages routed recently, for SUBSCRIBEs read before them
    /// (`catch_up.rs`).
    catch_up: catch_up::CatchUp,
}

impl core::fmt::Debug for Broker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Broker")
            .field("connections", &self.conns.open)
            .field("sessions", &self.client_ids.len())
            .field("bridges", &self.bridges.len())
            .field("subscriptions", &self.index.len())
            .field("retained", &self.retained.len())
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker with no connections; `config.seed` drives all its randomness.
    pub fn new(config: BrokerConfig) -> Self {
        let mut rng = SplitMix64::new(config.seed);
        let index = SubscriptionIndex::with_strategy(rng.next_u64(), config.shared_strategy);
        let retained = Retained::new(rng.next_u64());
        let client_ids: HashMap<Str, SessionKey, KeyedState> =
            HashMap::with_hasher(rng.keyed_state());
        // Not drawn from `rng`: that would move every later draw (assigned
        // client identifiers) for brokers that never check rights.
        let read_hasher = KeyedState::with_seed(crate::seed::finalize(config.seed ^ 0x5EED));
        // Keyed like the client identifiers it also holds: no draw from
        // `rng`, so the identifiers it assigns stay what they were.
        let retained_bytes = RetainedBytes::new(client_ids.hasher().clone());
        Broker {
            config,
            auth_requests: auth::Requests::new(),
            auth_seq: 0,
            read_hasher,
            conns: Conns::default(),
            sessions: Vec::new(),
            free_sessions: Vec::new(),
            client_ids,
            bridges: Bridges::default(),
            index,
            retained,
            retained_bytes,
            offline_bytes: 0,
            persistent_sessions: 0,
            replaying: VecDeque::new(),
            slice_at: None,
            matches: Matches::new(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            rng,
            stats: Stats::default(),
            started: None,
            sys_at: None,
            load: sys_load::Load::default(),
            load_at: None,
            store: None,
            throttles: Throttles::default(),
            cluster: None,
            catch_up: catch_up::CatchUp::default(),
        }
    }

    /// The broker's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How much the broker holds now.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            connections: self.conns.open,
            peak_connections: self.conns.peak,
            sessions: self.client_ids.len(),
            subscriptions: self.index.len(),
            retained: self.retained.len(),
            timers: self.timers.len(),
            retained_bytes: self.retained_bytes.total(),
            offline_bytes: self.offline_bytes,
            persistent_sessions: self.persistent_sessions,
            shared_groups: self.index.shared_group_count(),
        }
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.open
    }

    fn start(&mut self, now: Instant) {
        if self.started.is_none() {
            self.started = Some(now);
            if let Some(every) = self.config.sys_interval {
                let at = now.saturating_add(every);
                self.sys_at = Some(at);
                self.timers.push(Reverse((at, Timer::Sys)));
            }
        }
    }

    // ----- adapter inputs ----------------------------------------------------

    /// A transport was accepted; its CONNECT deadline starts now.
    pub fn open(&mut self, now: Instant, peer: PeerInfo) -> Result<ConnId, OpenError> {
        self.start(now);
        if self.conns.open >= self.config.max_connections {
            return Err(OpenError::TooManyConnections(self.config.max_connections));
        }
        let conn = Connection::<Server>::new(self.config.server.clone(), now);
        let id = self.conns.insert(|generation| Conn {
            generation,
            conn,
            session: None,
            peer: Arc::new(peer),
            username: None,
            rights: Rights::allow_all(),
            auth: None,
            try_private: false,
            flow: Flow::new(now),
            throttle: Throttle::default(),
            timer_at: None,
            ready: false,
            closed: false,
            gate: 0,
            held: false,
        });
        self.note_change(id);
        Ok(id)
    }

    /// Bytes arrived on a connection: every whole packet in `rbuf` is handled.
    pub fn handle_read(&mut self, id: ConnId, now: Instant, rbuf: &mut BytesMut) {
        let n = rbuf.len();
        let Some(c) = self.conns.get_mut(id) else {
            rbuf.clear();
            return;
        };
        c.conn.handle_read(now, rbuf);
        self.stats.bytes_received += n as u64;
        self.drain(id, now);
    }

    /// Packets decoded by the adapter arrived on a connection, each with its
    /// size on the wire, in order; `error` is the decoding failure that ended
    /// the stream after them, if any. The alternative to
    /// [`Broker::handle_read`] for adapters that decode in each connection's
    /// own task, in parallel: decode with [`Broker::decoder`] and do not mix
    /// the two paths on one connection.
    pub fn handle_packets(
        &mut self,
        id: ConnId,
        now: Instant,
        packets: impl IntoIterator<Item = (Packet, usize)>,
        error: Option<DecodeError>,
    ) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let mut n = 0;
        for (p, len) in packets {
            n += len;
            c.conn.handle_packet(now, p, len);
        }
        if let Some(e) = error {
            c.conn.handle_decode_error(now, e);
        }
        self.stats.bytes_received += n as u64;
        self.drain(id, now);
    }

    /// The adapter's decoder holds `buffered` bytes of a packet that is not
    /// whole yet on a connection (0: none), after a read: a packet left
    /// without progress for the partial packet timeout ends the connection
    /// ([`mqtt_session::Connection::handle_partial`]). For adapters that use
    /// [`Broker::handle_packets`]; [`Broker::handle_read`] does it itself.
    pub fn handle_partial(&mut self, id: ConnId, now: Instant, buffered: usize) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.conn.handle_partial(now, buffered);
        self.rearm(id);
    }

    /// A decoder configured the way the broker's connections decode (version
    /// adopted from the CONNECT, the configured maximum packet size), for
    /// [`Broker::handle_packets`].
    pub fn decoder(&self) -> Decoder {
        Decoder::new().with_max_packet_size(self.config.server.limits.max_packet_size)
    }

    /// The transport ended (end of stream or error).
    pub fn handle_eof(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.conn.handle_eof(now);
        self.drain(id, now);
    }

    /// A connection with bytes to write, each at most once per change.
    #[must_use]
    pub fn poll_writable(&mut self) -> Option<ConnId> {
        while let Some(id) = self.ready.pop_front() {
            if let Some(c) = self.conns.get_mut(id) {
                c.ready = false;
                if self.hold_output(id) {
                    continue;
                }
                return Some(id);
            }
        }
        None
    }

    /// Writes what connection `id` has to send into `wbuf`, returning the
    /// bytes written. A closed connection whose last bytes are out is freed.
    #[must_use = "the written bytes must be sent"]
    pub fn poll_transmit(&mut self, id: ConnId, now: Instant, wbuf: &mut impl BufMut) -> usize {
        self.take_output(id, |c| c.poll_transmit(now, wbuf))
    }

    /// Moves what connection `id` has to send to `out` as [`Frame`]s, whole
    /// packets within `budget` encoded bytes (at least one when any is
    /// ready), for an adapter that encodes in the connection's own task with
    /// [`Frame::encode`]: a PUBLISH stays a reference to its message (shared
    /// by every subscriber) until then. Returns the version to encode them
    /// in and the bytes they take on the wire; `None` for a connection that
    /// is gone. A closed connection whose last packets are out is freed, so
    /// everything needed to encode them comes back here.
    pub fn poll_frames(
        &mut self,
        id: ConnId,
        now: Instant,
        out: &mut Vec<Frame>,
        budget: usize,
    ) -> Option<FrameBatch> {
        let version = self.conns.get(id)?.conn.version();
        let wire_len = self.take_output(id, |c| c.poll_frames(now, out, budget));
        Some(FrameBatch { version, wire_len })
    }

    /// Takes connection `id`'s output with `take`, counts the bytes, and
    /// frees a closed connection whose last bytes are out.
    fn take_output(
        &mut self,
        id: ConnId,
        take: impl FnOnce(&mut Connection<Server>) -> usize,
    ) -> usize {
        if self.hold_output(id) {
            return 0;
        }
        let Some(c) = self.conns.get_mut(id) else {
            return 0;
        };
        let n = take(&mut c.conn);
        let done = c.closed && c.conn.is_closed();
        self.stats.bytes_sent += n as u64;
        if done {
            self.free_conn(id);
        } else {
            // Writing moves the connection's own timers (keep alive), never
            // makes it writable again: that would loop the adapter.
            self.rearm(id);
        }
        n
    }

    /// The protocol version connection `id` speaks (3.1.1 until its CONNECT
    /// says otherwise).
    pub fn version(&self, id: ConnId) -> Option<ProtocolVersion> {
        self.conns.get(id).map(|c| c.conn.version())
    }

    /// The next event for the adapter.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.events.pop_front()
    }

    /// Publishes a message from the broker itself (`$SYS`, an adapter's own
    /// announcements): it is retained if flagged and routed like any
    /// client's message, to every matching session and bridge. Messages a
    /// bridge brings in take [`Broker::publish_from_bridge`] instead.
    pub fn publish(&mut self, now: Instant, msg: Message) -> usize {
        self.start(now);
        if msg.retain {
            self.retain(now, &msg, None);
        }
        self.route(now, msg, None).delivered
    }

    /// Closes a connection from the broker side (administrative action,
    /// shutdown): `reason` goes out in a 5.0 DISCONNECT.
    pub fn close(&mut self, id: ConnId, now: Instant, reason: ReasonCode) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.conn.close(now, reason);
        self.drain(id, now);
    }

    /// Every open connection, e.g. to close them all at shutdown.
    pub fn connections(&self) -> Vec<ConnId> {
        self.conns.ids()
    }

    // ----- bookkeeping after each change ---------------------------------------
}
