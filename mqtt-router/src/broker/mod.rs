//! The broker core: a sans-IO machine owning every client connection, the
//! subscription index, the retained store, detached sessions and wills.
//!
//! An adapter accepts sockets and moves bytes; everything MQTT happens here.
//! After any call, drain it: [`Broker::poll_writable`] and
//! [`Broker::poll_transmit`] for bytes to write, [`Broker::poll_event`] for
//! connections to drop, [`Broker::poll_timeout`] for the next deadline.

mod config;
mod policy;
mod stats;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt::Write as _;
use core::time::Duration;

use bytes::{BufMut, BytesMut};
use hashbrown::HashMap;
use mqtt_codec::{
    ConnAckProps, PacketId, ProtocolVersion, QoS, ReasonCode, RetainHandling, Str, SubscriptionId,
    SubscriptionOptions, TopicFilter,
};
use mqtt_session::mqtt_codec::{Connect, DecodeError, Decoder, Packet};
use mqtt_session::{
    Close, Connection, DeliverError, Forward, Frame, Message, Server, ServerEvent, Session,
};

pub use config::{BrokerConfig, QueueFullPolicy};
pub use policy::{AllowAll, ClientInfo, Policy};
pub use stats::Stats;

use crate::retained::RetainedMessage;
use crate::seed::{KeyedState, SplitMix64};
use crate::{Instant, Matches, Retained, Subscription, SubscriptionIndex};

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
}

/// Something the adapter must act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrokerEvent {
    /// A connection ended: write what [`Broker::poll_transmit`] still gives
    /// for it, then close the socket. The id is stale afterwards.
    Closed {
        /// The connection.
        id: ConnId,
        /// How it ended.
        close: Close,
    },
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

/// The connection slab: slots reused under a new generation, so a stale
/// [`ConnId`] never reaches a newer connection.
#[derive(Default)]
struct Conns {
    /// Boxed: a `Conn` is about a kilobyte, and a growing vector of them
    /// would keep up to as much again unused; a box costs 8 bytes a slot.
    slots: Vec<Option<Box<Conn>>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    open: usize,
}

impl Conns {
    fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slots
            .get(id.index as usize)?
            .as_deref()
            .filter(|c| c.generation == id.generation)
    }

    fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots
            .get_mut(id.index as usize)?
            .as_deref_mut()
            .filter(|c| c.generation == id.generation)
    }

    fn insert(&mut self, make: impl FnOnce(u32) -> Conn) -> ConnId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let generation = self.generations[index as usize].wrapping_add(1);
        self.generations[index as usize] = generation;
        self.slots[index as usize] = Some(Box::new(make(generation)));
        self.open += 1;
        ConnId { index, generation }
    }

    fn remove(&mut self, id: ConnId) {
        if self.get_mut(id).is_some() {
            self.slots[id.index as usize] = None;
            self.free.push(id.index);
            self.open -= 1;
        }
    }

    fn ids(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref().map(|c| ConnId {
                    index: i as u32,
                    generation: c.generation,
                })
            })
            .collect()
    }
}

/// What came of routing one message.
#[derive(Debug, Default, Clone, Copy)]
struct Routed {
    /// Sessions that took it (sent, or queued for later).
    delivered: usize,
    /// Sessions that missed it because their queue was full.
    queue_full: usize,
    /// A connected subscriber it reached that is past its high-water mark
    /// and still draining: the publisher's acknowledgement waits for it.
    congested: Option<ConnId>,
}

/// How long a subscriber past its high-water mark may go without taking any
/// message before it counts as stalled and stops holding publishers back.
const STALL: Duration = Duration::from_secs(1);

/// The queue that flow control keeps a subscriber within: the configured
/// limit, but never more than half the packet identifiers, since every QoS
/// 1/2 message queued for a session holds one (65,535 at most), so the
/// publishers' unacknowledged windows still fit after the high-water mark.
fn flow_capacity(max_queued: usize) -> usize {
    max_queued.min(32_768)
}

/// Index of a client's session: the key of its subscriptions in the index.
type SessionKey = u32;

struct Conn {
    generation: u32,
    conn: Connection<Server>,
    session: Option<SessionKey>,
    /// Shared with the session entry.
    peer: Arc<PeerInfo>,
    username: Option<Str>,
    /// A 3.1/3.1.1 bridge (Mosquitto's `try_private` marker in its CONNECT):
    /// it never gets its own publications back, and gets retain flags as
    /// published, as Mosquitto treats bridges.
    bridge: bool,
    /// Flow control: acknowledgements of publishes that reached this
    /// (subscriber) connection while its queue was past the high-water mark,
    /// held until it drains or stalls. See [`Broker::flow_control`].
    held_acks: Vec<(ConnId, PacketId)>,
    /// Messages queued for this connection when last looked at, and when
    /// that number last went down: a subscriber that drains is slow, one
    /// that does not is stalled and does not hold publishers back.
    backlog: usize,
    progress_at: Instant,
    /// The one live entry of this connection on the timer heap: never later
    /// than the connection's deadline (see [`Broker::rearm`]).
    timer_at: Option<Instant>,
    ready: bool,
    closed: bool,
}

struct SessionEntry {
    client_id: Str,
    username: Option<Str>,
    peer: Arc<PeerInfo>,
    conn: Option<ConnId>,
    /// The session while no connection holds it. Boxed: the entries of
    /// connected clients, most of them, then hold 8 bytes instead of 168.
    stored: Option<Box<Session>>,
    /// When a detached session ends (`None` while connected, or never).
    expires_at: Option<Instant>,
    /// A will waiting for its delay, and when it is due.
    /// Boxed: most sessions have none, and a `Message` is 216 bytes.
    will: Option<Box<(Message, Instant)>>,
    /// Bumped whenever the session is reused, so stale timers are ignored.
    generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Conn(ConnId),
    /// Held acknowledgements of a subscriber that made no progress since.
    Stalled(ConnId),
    Session(SessionKey, u32),
    Sys,
}

/// The broker core. See the [module documentation](self).
pub struct Broker<P: Policy = AllowAll> {
    config: BrokerConfig,
    policy: P,
    conns: Conns,
    sessions: Vec<Option<SessionEntry>>,
    free_sessions: Vec<SessionKey>,
    client_ids: HashMap<Str, SessionKey, KeyedState>,
    index: SubscriptionIndex<SessionKey>,
    retained: Retained<Message>,
    matches: Matches<SessionKey>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    ready: VecDeque<ConnId>,
    events: VecDeque<BrokerEvent>,
    rng: SplitMix64,
    stats: Stats,
    started: Option<Instant>,
    sys_at: Option<Instant>,
}

impl<P: Policy> core::fmt::Debug for Broker<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Broker")
            .field("connections", &self.conns.open)
            .field("sessions", &self.client_ids.len())
            .field("subscriptions", &self.index.len())
            .field("retained", &self.retained.len())
            .finish_non_exhaustive()
    }
}

impl<P: Policy> Broker<P> {
    /// A broker with no connections; `config.seed` drives all its randomness.
    pub fn new(config: BrokerConfig, policy: P) -> Self {
        let mut rng = SplitMix64::new(config.seed);
        let index = SubscriptionIndex::with_strategy(rng.next_u64(), config.shared_strategy);
        let retained = Retained::new(rng.next_u64());
        let client_ids = HashMap::with_hasher(rng.keyed_state());
        Broker {
            config,
            policy,
            conns: Conns::default(),
            sessions: Vec::new(),
            free_sessions: Vec::new(),
            client_ids,
            index,
            retained,
            matches: Matches::new(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            rng,
            stats: Stats::default(),
            started: None,
            sys_at: None,
        }
    }

    /// The broker's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The policy, for reloading its data.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
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
            bridge: false,
            held_acks: Vec::new(),
            backlog: 0,
            progress_at: now,
            timer_at: None,
            ready: false,
            closed: false,
        });
        self.after(id);
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

    /// Acts on every deadline that has passed: connection timers, wills,
    /// session expiry and `$SYS` publication.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, timer))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(id) => {
                    let Some(c) = self.conns.get_mut(id) else {
                        continue;
                    };
                    if c.timer_at != Some(at) {
                        continue;
                    }
                    c.timer_at = None;
                    if c.conn.poll_timeout().is_some_and(|due| due <= now) {
                        c.conn.handle_timeout(now);
                        self.drain(id, now);
                    } else {
                        // The deadline moved later since this entry was
                        // queued (keep alive after each read): queue it now.
                        self.rearm(id);
                    }
                }
                Timer::Session(key, generation) => self.session_timer(key, generation, now),
                Timer::Stalled(sub) => {
                    let stalled = self
                        .conns
                        .get_mut(sub)
                        .is_some_and(|c| now >= c.progress_at.saturating_add(STALL));
                    if stalled {
                        self.release_acks(sub);
                    } else if self
                        .conns
                        .get_mut(sub)
                        .is_some_and(|c| !c.held_acks.is_empty())
                    {
                        let at = self.conns.get_mut(sub).map_or(now, |c| c.progress_at);
                        self.timers
                            .push(Reverse((at.saturating_add(STALL), Timer::Stalled(sub))));
                    }
                }
                Timer::Sys => {
                    if self.sys_at == Some(at) {
                        self.publish_sys(now);
                        if let Some(every) = self.config.sys_interval {
                            let next = now.saturating_add(every);
                            self.sys_at = Some(next);
                            self.timers.push(Reverse((next, Timer::Sys)));
                        }
                    }
                }
            }
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// A connection with bytes to write, each at most once per change.
    #[must_use]
    pub fn poll_writable(&mut self) -> Option<ConnId> {
        while let Some(id) = self.ready.pop_front() {
            if let Some(c) = self.conns.get_mut(id) {
                c.ready = false;
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

    /// Moves what connection `id` has to send to `out` as packets, whole
    /// ones within `budget` encoded bytes (at least one when any is ready),
    /// for an adapter that encodes in the connection's own task with
    /// [`Packet::encode`] and [`Broker::version`]. Returns the bytes they
    /// take on the wire. A closed connection whose last packets are out is
    /// freed.
    pub fn poll_packets(
        &mut self,
        id: ConnId,
        now: Instant,
        out: &mut Vec<Packet>,
        budget: usize,
    ) -> usize {
        self.take_output(id, |c| c.poll_packets(now, out, budget))
    }

    /// Like [`Broker::poll_packets`], with the packets as [`Frame`]s: a
    /// PUBLISH stays a reference to its message (shared by every
    /// subscriber) until the adapter encodes it with [`Frame::encode`].
    pub fn poll_frames(
        &mut self,
        id: ConnId,
        now: Instant,
        out: &mut Vec<Frame>,
        budget: usize,
    ) -> usize {
        self.take_output(id, |c| c.poll_frames(now, out, budget))
    }

    /// Takes connection `id`'s output with `take`, counts the bytes, and
    /// frees a closed connection whose last bytes are out.
    fn take_output(
        &mut self,
        id: ConnId,
        take: impl FnOnce(&mut Connection<Server>) -> usize,
    ) -> usize {
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
    /// says otherwise), to encode what [`Broker::poll_packets`] hands out.
    pub fn version(&self, id: ConnId) -> Option<ProtocolVersion> {
        self.conns.get(id).map(|c| c.conn.version())
    }

    /// The next event for the adapter.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.events.pop_front()
    }

    /// Publishes a message from the broker itself (`$SYS`, bridges): it is
    /// retained if flagged and routed like any client's message.
    pub fn publish(&mut self, now: Instant, msg: Message) -> usize {
        self.start(now);
        if msg.retain {
            self.retain(now, &msg);
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

    /// After an input or command: re-arms the connection's timer and marks it
    /// writable (it may have produced packets).
    fn after(&mut self, id: ConnId) {
        self.rearm(id);
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if !c.ready {
            c.ready = true;
            self.ready.push_back(id);
        }
    }

    /// Makes sure the timer heap wakes the connection by its next deadline.
    ///
    /// Only a deadline *earlier* than the entry already queued is pushed: the
    /// keep-alive deadline moves later with every packet read, and pushing
    /// each move would grow the heap by one entry per read until those
    /// entries came due (1.5 × keep alive later). A later deadline is queued
    /// when the earlier entry fires (see `handle_timeout`), so each
    /// connection has one live entry and few stale ones.
    fn rearm(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(at) = c.conn.poll_timeout() else {
            return;
        };
        if c.timer_at.is_none_or(|queued| at < queued) {
            c.timer_at = Some(at);
            self.timers.push(Reverse((at, Timer::Conn(id))));
        }
    }

    fn free_conn(&mut self, id: ConnId) {
        self.release_acks(id);
        self.conns.remove(id);
    }

    /// Handles everything the connection reported.
    fn drain(&mut self, id: ConnId, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(id) else {
                return;
            };
            let Some(ev) = c.conn.poll_event() else {
                break;
            };
            match ev {
                ServerEvent::Connect(connect) => self.on_connect(id, now, connect),
                ServerEvent::Publish { msg, id: pid } => self.on_publish(id, now, msg, pid),
                ServerEvent::Subscribe {
                    id: pid,
                    subscription_identifier,
                    filters,
                } => self.on_subscribe(id, now, pid, subscription_identifier, filters),
                ServerEvent::Unsubscribe { id: pid, filters } => {
                    self.on_unsubscribe(id, pid, filters)
                }
                ServerEvent::Auth { .. } => {
                    // No enhanced authentication method is supported.
                    if let Some(c) = self.conns.get_mut(id) {
                        c.conn.close(now, ReasonCode::BAD_AUTHENTICATION_METHOD);
                    }
                }
                ServerEvent::Closed(close) => self.on_closed(id, now, close),
                _ => {}
            }
        }
        self.flow_control(id, now);
        self.after(id);
    }

    /// Flow control: a publish that reaches a subscriber whose queue is past
    /// half its limit (`limits.max_queued`) is acknowledged only once that
    /// subscriber has drained below a quarter, so publishers slow down to
    /// the pace of the subscribers they feed instead of overflowing their
    /// queues (nothing accepted at QoS 1/2 is dropped for a subscriber that
    /// keeps up eventually). A subscriber that takes nothing for [`STALL`]
    /// counts as stalled: its held acknowledgements go out, it holds no one
    /// back any more, and its queue sheds load by the queue-full policy, so a
    /// subscriber that reads nothing never stalls the others. Each publisher
    /// has at most its Receive Maximum (or in-flight window) of publishes
    /// unacknowledged, so what is held is bounded.
    fn flow_control(&mut self, id: ConnId, now: Instant) {
        let low = self.flow_capacity() / 4;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let backlog = c.conn.session().map_or(0, Session::queued);
        // Progress: draining, or not behind at all.
        if backlog < c.backlog || backlog <= low {
            c.progress_at = now;
        }
        c.backlog = backlog;
        if !c.held_acks.is_empty() && (backlog <= low || c.closed) {
            self.release_acks(id);
        }
    }

    fn flow_capacity(&self) -> usize {
        flow_capacity(self.config.server.limits.max_queued)
    }

    fn hold_ack(&mut self, sub: ConnId, publisher: ConnId, pid: PacketId, now: Instant) {
        let Some(c) = self.conns.get_mut(sub) else {
            return;
        };
        if c.held_acks.is_empty() {
            let at = c.progress_at.max(now).saturating_add(STALL);
            self.timers.push(Reverse((at, Timer::Stalled(sub))));
        }
        if let Some(c) = self.conns.get_mut(sub) {
            c.held_acks.push((publisher, pid));
        }
        self.stats.acks_held += 1;
    }

    fn release_acks(&mut self, sub: ConnId) {
        let Some(c) = self.conns.get_mut(sub) else {
            return;
        };
        for (publisher, pid) in core::mem::take(&mut c.held_acks) {
            if let Some(p) = self.conns.get_mut(publisher) {
                let _ = p.conn.ack(pid, ReasonCode::SUCCESS);
                self.after(publisher);
            }
        }
    }

    // ----- CONNECT ----------------------------------------------------------------

    fn on_connect(&mut self, id: ConnId, now: Instant, connect: Box<Connect>) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let mut ack = ConnAckProps::default();
        // Copied out of the CONNECT: sharing it would keep the connection's
        // whole first read buffer alive for as long as the session lives.
        let mut client_id = Str::copy_from(&connect.client_id.borrowed());
        if client_id.is_empty() {
            // 5.0 always, 3.1.1 only with a clean session [MQTT-3.1.3-7], [MQTT-3.1.3-8].
            if connect.protocol == ProtocolVersion::V5 || connect.clean_start {
                let mut s = String::from("auto-");
                let _ = write!(s, "{:016x}", self.rng.next_u64());
                client_id = Str::try_from(s).unwrap_or_default();
                if connect.protocol.is_v5() {
                    ack.assigned_client_identifier = Some(client_id.clone());
                }
            } else {
                c.conn.reject(now, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
                return;
            }
        }
        let verdict = self
            .policy
            .authenticate(&connect, client_id.as_str(), &c.peer);
        if verdict != ReasonCode::SUCCESS {
            c.conn.reject(now, verdict);
            self.stats.connections_refused += 1;
            return;
        }
        c.username = connect
            .username
            .as_ref()
            .map(|u| Str::copy_from(&u.borrowed()));
        c.bridge = connect.bridge;
        let username = c.username.clone();
        let peer = c.peer.clone();
        let requested = c.conn.session_expiry_interval();
        if requested > self.config.max_session_expiry {
            ack.session_expiry_interval = Some(self.config.max_session_expiry);
        }

        // Take over: the client's previous connection ends with 0x8E, and its
        // will is handled as for any other close [MQTT-3.1.4-3].
        let existing = self.client_ids.get(&client_id).copied();
        if let Some(key) = existing {
            if let Some(old) = self.sessions[key as usize].as_ref().and_then(|s| s.conn) {
                if old != id {
                    if let Some(oc) = self.conns.get_mut(old) {
                        oc.conn.close(now, ReasonCode::SESSION_TAKEN_OVER);
                    }
                    self.drain(old, now);
                }
            }
        }
        let existing = self.client_ids.get(&client_id).copied();
        let (key, stored) = match existing {
            Some(key) if !connect.clean_start => {
                let entry = self.sessions[key as usize]
                    .as_mut()
                    .expect("client_ids only names live sessions");
                (key, entry.stored.take().map(|s| *s))
            }
            Some(key) => {
                // Clean start: the old session and its subscriptions go
                // [MQTT-3.1.2-4]. That ends the session, so a will still
                // waiting for its delay is published now (section 3.1.3.2.2:
                // "until the Will Delay Interval has passed or the Session
                // ends, whichever happens first"); this is not a connection
                // *to that session*, which would cancel it [MQTT-3.1.3-9].
                self.end_session(key, now, true);
                (self.new_session(client_id.clone()), None)
            }
            None => (self.new_session(client_id.clone()), None),
        };
        if let Some(entry) = self.sessions[key as usize].as_mut() {
            // A reconnection before the will delay cancels the will
            // (section 3.1.3.2.2).
            entry.will = None;
            entry.expires_at = None;
            entry.generation = entry.generation.wrapping_add(1);
            entry.conn = Some(id);
            entry.username = username;
            entry.peer = peer;
        }
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.session = Some(key);
        // Invariant: the connection is awaiting acceptance, having just sent CONNECT.
        let _ = c.conn.accept(now, stored, ack);
        self.stats.connections_total += 1;
    }

    fn new_session(&mut self, client_id: Str) -> SessionKey {
        let entry = SessionEntry {
            client_id: client_id.clone(),
            username: None,
            peer: Arc::default(),
            conn: None,
            stored: None,
            expires_at: None,
            will: None,
            generation: 0,
        };
        let key = match self.free_sessions.pop() {
            Some(k) => {
                self.sessions[k as usize] = Some(entry);
                k
            }
            None => {
                self.sessions.push(Some(entry));
                (self.sessions.len() - 1) as SessionKey
            }
        };
        self.client_ids.insert(client_id, key);
        key
    }

    /// Ends a session: its subscriptions and queued messages go; a pending
    /// will is published now if `publish_will` (the session ending before the
    /// will delay, section 3.1.2.5).
    fn end_session(&mut self, key: SessionKey, now: Instant, publish_will: bool) {
        let Some(entry) = self.sessions[key as usize].take() else {
            return;
        };
        self.index.remove_client(key);
        if self.client_ids.get(&entry.client_id) == Some(&key) {
            self.client_ids.remove(&entry.client_id);
        }
        self.free_sessions.push(key);
        if publish_will {
            if let Some((will, _)) = entry.will.map(|b| *b) {
                self.publish_will(
                    now,
                    will,
                    &entry.client_id,
                    entry.username.as_ref(),
                    &entry.peer,
                );
            }
        }
    }

    // ----- close, wills, session expiry ----------------------------------------

    fn on_closed(&mut self, id: ConnId, now: Instant, close: Close) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.closed = true;
        let session = c.conn.take_session();
        let expiry = c.conn.session_expiry_interval();
        let key = c.session.take();
        let drained = c.conn.is_closed();
        self.events.push_back(BrokerEvent::Closed {
            id,
            close: close.clone(),
        });
        if drained {
            self.free_conn(id);
        }
        let Some(key) = key else {
            return;
        };
        let Some(entry) = self.sessions[key as usize].as_mut() else {
            return;
        };
        if entry.conn != Some(id) {
            return;
        }
        entry.conn = None;
        let expiry = expiry.min(self.config.max_session_expiry);
        let will = close.will;
        if expiry == 0 {
            // The session ends with the connection: a will is published now.
            if let Some((msg, _)) = will {
                entry.will = Some(Box::new((msg, now)));
            }
            self.end_session(key, now, true);
            return;
        }
        entry.stored = session.map(Box::new);
        entry.generation = entry.generation.wrapping_add(1);
        let generation = entry.generation;
        entry.expires_at = (expiry != u32::MAX)
            .then(|| now.saturating_add(Duration::from_secs(u64::from(expiry))));
        if let Some(at) = entry.expires_at {
            self.timers
                .push(Reverse((at, Timer::Session(key, generation))));
        }
        if let Some((msg, delay)) = will {
            if delay.is_zero() {
                let (client_id, username, peer) = (
                    entry.client_id.clone(),
                    entry.username.clone(),
                    entry.peer.clone(),
                );
                self.publish_will(now, msg, &client_id, username.as_ref(), &peer);
            } else {
                let due = now.saturating_add(delay);
                entry.will = Some(Box::new((msg, due)));
                self.timers
                    .push(Reverse((due, Timer::Session(key, generation))));
            }
        }
    }

    fn session_timer(&mut self, key: SessionKey, generation: u32, now: Instant) {
        let Some(entry) = self.sessions.get_mut(key as usize).and_then(Option::as_mut) else {
            return;
        };
        if entry.generation != generation || entry.conn.is_some() {
            return;
        }
        if entry.will.as_ref().is_some_and(|w| w.1 <= now) {
            if let Some((msg, _)) = entry.will.take().map(|b| *b) {
                let (client_id, username, peer) = (
                    entry.client_id.clone(),
                    entry.username.clone(),
                    entry.peer.clone(),
                );
                self.publish_will(now, msg, &client_id, username.as_ref(), &peer);
            }
        }
        let expired = self.sessions[key as usize]
            .as_ref()
            .and_then(|e| e.expires_at)
            .is_some_and(|at| at <= now);
        if expired {
            self.end_session(key, now, true);
        }
    }

    fn publish_will(
        &mut self,
        now: Instant,
        msg: Message,
        client_id: &Str,
        username: Option<&Str>,
        peer: &PeerInfo,
    ) {
        let info = ClientInfo {
            client_id: client_id.as_str(),
            username: username.map(Str::as_str),
            peer,
        };
        if msg.topic.is_dollar() || !self.policy.may_publish(&info, &msg.topic) {
            return;
        }
        self.stats.wills_published += 1;
        if msg.retain {
            self.retain(now, &msg);
        }
        self.route(now, msg, None);
    }

    // ----- PUBLISH ----------------------------------------------------------------

    fn on_publish(&mut self, id: ConnId, now: Instant, msg: Message, pid: Option<PacketId>) {
        self.stats.messages_received += 1;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let key = c.session;
        let info = ClientInfo {
            client_id: c.conn.client_id().as_str(),
            username: c.username.as_ref().map(Str::as_str),
            peer: &c.peer,
        };
        // Clients do not publish into `$` topics, which belong to the server
        // (section 4.7.2); and the policy may refuse the topic.
        let allowed = !msg.topic.is_dollar() && self.policy.may_publish(&info, &msg.topic);
        if !allowed {
            self.stats.publishes_denied += 1;
            if let Some(pid) = pid {
                let _ = c.conn.ack(pid, ReasonCode::NOT_AUTHORIZED);
            }
            return;
        }
        let mut quota = false;
        if msg.retain {
            quota = !self.retain(now, &msg);
        }
        let routed = self.route(now, msg, key);
        if let (Some(pid), Some(c)) = (pid, self.conns.get_mut(id)) {
            // A message that reached nobody because queues were full is
            // refused with 0x97 Quota exceeded (issue 5, `DropNew`).
            let reason = if quota || (routed.delivered == 0 && routed.queue_full > 0) {
                ReasonCode::QUOTA_EXCEEDED
            } else if routed.delivered == 0 {
                ReasonCode::NO_MATCHING_SUBSCRIBERS
            } else {
                ReasonCode::SUCCESS
            };
            match routed.congested {
                Some(sub) if reason == ReasonCode::SUCCESS => self.hold_ack(sub, id, pid, now),
                _ => {
                    let _ = c.conn.ack(pid, reason);
                }
            }
        }
    }

    /// Applies a retained message; false if a limit kept it out.
    fn retain(&mut self, now: Instant, msg: &Message) -> bool {
        if !msg.payload.is_empty()
            && (msg.payload.len() > self.config.max_retained_payload
                || (self.retained.len() >= self.config.max_retained
                    && self.retained.get(now, &msg.topic).is_none()))
        {
            self.stats.retained_refused += 1;
            return false;
        }
        let mut stored = msg.clone();
        // The copy in the store keeps its own memory, not the read buffer.
        stored.payload = bytes::Bytes::copy_from_slice(&msg.payload);
        self.retained
            .store(now, &msg.topic, stored, msg.props.expires_at)
            .is_ok()
    }

    /// Delivers `msg` to every matching subscriber: how many it reached, and
    /// how many it missed because a queue was full.
    fn route(&mut self, now: Instant, msg: Message, publisher: Option<SessionKey>) -> Routed {
        let mut matches = core::mem::take(&mut self.matches);
        self.index.match_topic(&msg.topic, publisher, &mut matches);
        let mut routed = Routed::default();
        // One message for all the subscribers: each session holds a reference.
        let msg = Arc::new(msg);
        for d in matches.subscribers().chain(matches.shared()) {
            let fwd = Forward {
                qos: msg.qos.min(d.qos),
                // Cleared unless Retain As Published [MQTT-3.3.1-12].
                retain: msg.retain && d.retain_as_published,
                subscription_identifiers: d.subscription_ids.to_vec(),
            };
            match self.deliver_to(d.client, now, msg.clone(), fwd) {
                Ok(congested) => {
                    routed.delivered += 1;
                    routed.congested = routed.congested.or(congested);
                }
                Err(DeliverError::QueueFull { .. }) => routed.queue_full += 1,
                Err(_) => {}
            }
        }
        self.matches = matches;
        routed
    }

    /// Hands one message to one session, connected or not; every message
    /// not taken is counted as dropped.
    /// Delivers to one session; for a connected one past its high-water
    /// mark and still draining, returns its connection (flow control).
    fn deliver_to(
        &mut self,
        key: SessionKey,
        now: Instant,
        msg: Arc<Message>,
        fwd: Forward,
    ) -> Result<Option<ConnId>, DeliverError> {
        let Some(entry) = self.sessions.get_mut(key as usize).and_then(Option::as_mut) else {
            return Err(DeliverError::Closed);
        };
        if let Some(cid) = entry.conn {
            let Some(c) = self.conns.get_mut(cid) else {
                return Err(DeliverError::Closed);
            };
            let r = c.conn.deliver(now, msg, fwd);
            let backlog = c.conn.session().map_or(0, Session::queued);
            let capacity = flow_capacity(self.config.server.limits.max_queued);
            if backlog < c.backlog || backlog <= capacity / 4 {
                c.progress_at = now;
            }
            c.backlog = backlog;
            let high = capacity / 2;
            let congested =
                (backlog > high && now < c.progress_at.saturating_add(STALL)).then_some(cid);
            self.after(cid);
            return match r {
                Ok(_) => {
                    self.stats.messages_sent += 1;
                    Ok(congested)
                }
                Err(e) => {
                    self.stats.messages_dropped += 1;
                    Err(e)
                }
            };
        }
        let Some(session) = entry.stored.as_mut() else {
            return Err(DeliverError::Closed);
        };
        match session.enqueue(msg.clone(), fwd.clone()) {
            Ok(()) => Ok(None),
            Err(e @ DeliverError::QueueFull { .. }) => {
                // At the limit, queued QoS 0 messages give way first (to a
                // QoS 1/2 message under `DropNew`, which otherwise keeps
                // what is queued); `DropOldest` then drops the oldest of
                // any QoS. Either way exactly one message is dropped.
                let made_room = match self.config.queue_full {
                    QueueFullPolicy::DropOldest => {
                        session.drop_oldest_qos0() || session.drop_oldest()
                    }
                    QueueFullPolicy::DropNew => {
                        fwd.qos != QoS::AtMostOnce && session.drop_oldest_qos0()
                    }
                };
                self.stats.messages_dropped += 1;
                if made_room && session.enqueue(msg, fwd).is_ok() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            Err(e) => {
                self.stats.messages_dropped += 1;
                Err(e)
            }
        }
    }

    // ----- SUBSCRIBE / UNSUBSCRIBE ------------------------------------------------

    fn on_subscribe(
        &mut self,
        id: ConnId,
        now: Instant,
        pid: PacketId,
        subscription_identifier: Option<SubscriptionId>,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
    ) {
        let max_qos = self.config.server.maximum_qos;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(key) = c.session else {
            return;
        };
        let v5 = c.conn.version().is_v5();
        let mut results = Vec::with_capacity(filters.len());
        let mut retained_for = Vec::new();
        for (filter, mut opts) in filters {
            let info = ClientInfo {
                client_id: c.conn.client_id().as_str(),
                username: c.username.as_ref().map(Str::as_str),
                peer: &c.peer,
            };
            if !self.policy.may_subscribe(&info, &filter) {
                results.push(ReasonCode::NOT_AUTHORIZED);
                continue;
            }
            opts.qos = opts.qos.min(max_qos);
            if c.bridge {
                // What No Local and Retain As Published do for a 5.0 bridge.
                opts.no_local = true;
                opts.retain_as_published = true;
            }
            let sub = Subscription::new(opts, subscription_identifier.filter(|_| v5));
            match self.index.insert(key, &filter, sub) {
                Ok(ins) => {
                    results.push(ReasonCode(opts.qos as u8));
                    // Retained messages are not sent for shared subscriptions
                    // (section 4.8.2); otherwise per Retain Handling (3.8.3.1).
                    let send = !filter.is_shared()
                        && match opts.retain_handling {
                            RetainHandling::SendAtSubscribe => true,
                            RetainHandling::SendAtSubscribeIfNew => ins.is_new(),
                            RetainHandling::DoNotSend => false,
                        };
                    if send {
                        retained_for.push((filter, opts.qos));
                    }
                }
                Err(e) => results.push(e.reason_code()),
            }
        }
        self.stats.subscribes += 1;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let _ = c.conn.suback(pid, &results);
        let ids: Vec<SubscriptionId> = subscription_identifier.filter(|_| v5).into_iter().collect();
        for (filter, qos) in retained_for {
            let mut found = Vec::new();
            self.retained
                .for_each_match(now, &filter, |r| found.push(r.message.clone()));
            for msg in found {
                let fwd = Forward {
                    qos: msg.qos.min(qos),
                    // Retained messages sent on subscribe keep RETAIN set [MQTT-3.3.1-8].
                    retain: true,
                    subscription_identifiers: ids.clone(),
                };
                let _ = self.deliver_to(key, now, Arc::new(msg), fwd);
            }
        }
    }

    fn on_unsubscribe(&mut self, id: ConnId, pid: PacketId, filters: Vec<TopicFilter>) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let Some(key) = c.session else {
            return;
        };
        let results: Vec<ReasonCode> = filters
            .iter()
            .map(|f| match self.index.remove(key, f) {
                Some(_) => ReasonCode::SUCCESS,
                None => ReasonCode::NO_SUBSCRIPTION_EXISTED,
            })
            .collect();
        if let Some(c) = self.conns.get_mut(id) {
            let _ = c.conn.unsuback(pid, &results);
        }
    }

    // ----- $SYS ----------------------------------------------------------------------

    fn publish_sys(&mut self, now: Instant) {
        let uptime = self
            .started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
            .as_secs();
        let connected = self
            .sessions
            .iter()
            .flatten()
            .filter(|s| s.conn.is_some())
            .count();
        let total = self.client_ids.len();
        let values: [(&str, String); 12] = [
            ("uptime", alloc::format!("{uptime} seconds")),
            ("version", self.config.version.clone()),
            ("clients/connected", alloc::format!("{connected}")),
            (
                "clients/disconnected",
                alloc::format!("{}", total - connected),
            ),
            ("clients/total", alloc::format!("{total}")),
            (
                "messages/received",
                alloc::format!("{}", self.stats.messages_received),
            ),
            (
                "messages/sent",
                alloc::format!("{}", self.stats.messages_sent),
            ),
            (
                "messages/dropped",
                alloc::format!("{}", self.stats.messages_dropped),
            ),
            (
                "bytes/received",
                alloc::format!("{}", self.stats.bytes_received),
            ),
            ("bytes/sent", alloc::format!("{}", self.stats.bytes_sent)),
            (
                "subscriptions/count",
                alloc::format!("{}", self.index.len()),
            ),
            (
                "retained messages/count",
                alloc::format!("{}", self.retained.len()),
            ),
        ];
        for (name, value) in values {
            let topic = alloc::format!("$SYS/broker/{name}");
            let Ok(topic) = mqtt_codec::TopicName::try_from(topic.as_str()) else {
                continue;
            };
            let msg = Message::new(
                topic,
                bytes::Bytes::from(value.into_bytes()),
                QoS::AtMostOnce,
                true,
            );
            self.retain(now, &msg);
            self.route(now, msg, None);
        }
    }
}
