//! A deterministic, socket-free simulator for the broker core.
//!
//! [`Sim`] owns one [`Broker`] and any number of peers on a virtual clock.
//! A peer is either a real `mqtt_session::Connection<Client>` (the client
//! role of mqtt-session, the same machine a client adapter runs) or a *raw*
//! peer whose bytes a test writes by hand (for malformed input). Between
//! them are in-memory byte buffers:
//!
//! - [`Sim::exchange`] moves bytes both ways, drains every event and acts on
//!   closes (a connection the broker closed gets its last bytes, then end of
//!   stream; a client that closed its side makes the broker see end of
//!   stream) until nothing moves;
//! - [`Sim::advance`] moves the clock, calling `handle_timeout` on the broker
//!   and on every client at each deadline on the way, pumping in between;
//! - [`Sim::drop_transport`] breaks a peer's transport (both ends see EOF);
//!   [`Sim::freeze`] makes a client go silent with its transport still open.
//!
//! Everything the broker writes to a peer is also decoded into a transcript
//! ([`Peer::received`]) and kept as raw bytes ([`Peer::raw_in`]), so tests
//! can check the wire itself (3.1.1 return codes, DISCONNECT reasons).
#![allow(dead_code, unreachable_pub)]

use core::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_router::broker::{
    Broker, BrokerConfig, BrokerEvent, ConnId, PeerInfo, RestoredState, StoreImage, WallTime,
};
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{
    Connect, Decoder, Packet, ProtocolVersion, QoS, ReasonCode, RetainHandling, Str,
    SubscriptionId, SubscriptionOptions, TopicFilter, TopicName, Will, MAX_PACKET_SIZE,
};
use mqtt_session::{Client, ClientConfig, ClientEvent, Close, Connection, Message};

pub const V311: ProtocolVersion = ProtocolVersion::V311;
pub const V5: ProtocolVersion = ProtocolVersion::V5;
/// Both versions, for tests that hold under each.
pub const VERSIONS: [ProtocolVersion; 2] = [V311, V5];

// ----- small constructors ----------------------------------------------------

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).expect("valid topic name")
}

pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).expect("valid topic filter")
}

pub fn s(v: &str) -> Str {
    Str::try_from(v).expect("valid string")
}

pub fn sub_id(n: u32) -> SubscriptionId {
    SubscriptionId::new(n).expect("valid subscription identifier")
}

/// A message without properties.
pub fn msg(t: &str, payload: &str, qos: QoS, retain: bool) -> Message {
    Message::new(
        topic(t),
        Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
    )
}

/// Subscription options at `qos` with the given flags.
pub fn opts(qos: QoS, no_local: bool, rap: bool, rh: RetainHandling) -> SubscriptionOptions {
    let mut o = SubscriptionOptions::new(qos);
    o.no_local = no_local;
    o.retain_as_published = rap;
    o.retain_handling = rh;
    o
}

/// A client configuration: clean start, keep alive 60 s, no session expiry.
pub fn cfg(v: ProtocolVersion, id: &str) -> ClientConfig {
    ClientConfig::new(v, s(id))
}

/// A client configuration that keeps its session: Clean Start 0 and (5.0) a
/// session expiry interval of `expiry` seconds.
pub fn persistent(v: ProtocolVersion, id: &str, expiry: u32) -> ClientConfig {
    let mut c = cfg(v, id);
    c.clean_start = false;
    c.session_expiry_interval = expiry;
    c
}

/// A will on `t` with `payload`, at QoS 1, delayed by `delay` seconds (5.0).
pub fn will(t: &str, payload: &str, delay: Option<u32>) -> Will {
    let mut props = mqtt_session::mqtt_codec::WillProps::default();
    props.will_delay_interval = delay;
    Will {
        topic: topic(t),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        props,
    }
}

/// A broker configuration with a fixed seed and no `$SYS` publication (tests
/// that want it turn it on).
pub fn broker_config() -> BrokerConfig {
    BrokerConfig {
        seed: 7,
        sys_interval: None,
        ..BrokerConfig::default()
    }
}

/// Encodes `packets` for version `v`.
pub fn encode(v: ProtocolVersion, packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for p in packets {
        p.encode(v, &mut out).expect("test packets encode");
    }
    out.to_vec()
}

/// A raw CONNECT packet.
pub fn connect_packet(v: ProtocolVersion, id: &str, clean: bool) -> Packet {
    let mut c = Connect::new(v, s(id));
    c.clean_start = clean;
    Packet::Connect(Box::new(c))
}

// ----- what a client received ----------------------------------------------------

/// One application message a client received.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: String,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    pub msg: Message,
}

// ----- the simulator -----------------------------------------------------------

/// One end of a simulated transport.
pub struct Peer {
    pub id: ConnId,
    /// The client state machine; `None` for a raw peer driven by hand.
    pub conn: Option<Connection<Client>>,
    pub version: ProtocolVersion,
    /// Bytes on their way to the broker (a partial packet may stay here).
    pub to_broker: BytesMut,
    /// Bytes on their way to the client.
    pub to_client: BytesMut,
    /// Every event the client emitted, not yet taken by the test.
    pub events: Vec<ClientEvent>,
    /// Every packet the broker wrote to this peer, decoded.
    pub received: Vec<Packet>,
    /// Every byte the broker wrote to this peer.
    pub raw_in: Vec<u8>,
    decoder: Decoder,
    pending: BytesMut,
    /// The broker-side adapter's decoder for this connection, on the packet path.
    adapter_decoder: Option<Decoder>,
    /// The transport is open.
    pub open: bool,
    /// The client went silent (no timers, no reads, no writes).
    pub frozen: bool,
    /// How the broker ended this connection, if it did.
    pub broker_close: Option<Close>,
}

impl Peer {
    /// The client state machine (panics for a raw peer).
    pub fn client(&mut self) -> &mut Connection<Client> {
        self.conn.as_mut().expect("not a raw peer")
    }

    fn record(&mut self, bytes: &[u8]) {
        self.raw_in.extend_from_slice(bytes);
        self.pending.extend_from_slice(bytes);
        while let Some(p) = self
            .decoder
            .decode(&mut self.pending)
            .expect("the broker writes valid packets")
        {
            self.received.push(p);
        }
    }
}

/// The broker, its peers and the virtual clock.
pub struct Sim {
    pub broker: Broker,
    pub peers: Vec<Peer>,
    pub now: Instant,
    /// Every `BrokerEvent::Closed`, in order.
    pub closed: Vec<(ConnId, Close)>,
    next_port: u32,
    /// The store the broker's records go to, once made durable
    /// ([`Sim::durable`]); applied and reported in every round of
    /// [`Sim::exchange`] unless `store_paused`.
    pub store: Option<StoreImage>,
    pub store_paused: bool,
    /// Wall-clock time at `now == 0`.
    pub wall0: u64,
    config: BrokerConfig,
}

/// The wall clock of a simulation at its start.
pub const WALL0: u64 = 1_700_000_000_000;

impl Sim {
    /// A broker with `config` (every client allowed everything), at time 0.
    pub fn new(config: BrokerConfig) -> Self {
        Sim {
            broker: Broker::new(config.clone()),
            peers: Vec::new(),
            now: Instant::ZERO,
            closed: Vec::new(),
            next_port: 40000,
            store: None,
            store_paused: false,
            wall0: WALL0,
            config,
        }
    }

    /// A broker with a store (an empty [`StoreImage`]), at time 0.
    pub fn durable(config: BrokerConfig) -> Self {
        let mut sim = Sim::new(config);
        sim.broker
            .restore(Instant::ZERO, sim.wall(), RestoredState::default())
            .expect("a fresh broker restores");
        sim.store = Some(StoreImage::new());
        sim
    }

    /// The process dies (what the store has not committed is lost, every
    /// transport ends), stays down for `down`, and starts again from the
    /// store, with a clock that starts at 0.
    pub fn crash_and_restart(&mut self, down: Duration) {
        let image = self.store.clone().expect("a durable simulation");
        let wall0 = self.wall().as_millis() + down.as_millis() as u64;
        let mut next = Sim::new(self.config.clone());
        next.wall0 = wall0;
        next.next_port = self.next_port;
        next.broker
            .restore(Instant::ZERO, next.wall(), image.restored())
            .expect("the store restores");
        next.store = Some(image);
        *self = next;
        self.exchange();
    }
}

impl Sim {
    /// The wall-clock time now.
    pub fn wall(&self) -> WallTime {
        WallTime::from_millis(self.wall0 + self.now.as_millis())
    }

    /// Commits what the broker emitted to the store and reports it; false
    /// when there was nothing (or the store is paused).
    pub fn commit(&mut self) -> bool {
        let Some(image) = self.store.as_mut().filter(|_| !self.store_paused) else {
            return false;
        };
        let mut records = Vec::new();
        let Some(up_to) = self.broker.poll_store(&mut records) else {
            return false;
        };
        for r in records {
            image.apply(r);
        }
        self.broker.handle_stored(up_to);
        true
    }

    fn open(&mut self, conn: Option<Connection<Client>>, version: ProtocolVersion) -> usize {
        self.next_port += 1;
        let peer = PeerInfo {
            remote: format!("127.0.0.1:{}", self.next_port),
            certificate_subject: None,
            certificate_username: None,
        };
        let id = self
            .broker
            .open(self.now, peer)
            .expect("under the connection limit");
        self.peers.push(Peer {
            id,
            conn,
            version,
            to_broker: BytesMut::new(),
            to_client: BytesMut::new(),
            events: Vec::new(),
            received: Vec::new(),
            raw_in: Vec::new(),
            decoder: Decoder::with_version(version).with_max_packet_size(MAX_PACKET_SIZE),
            pending: BytesMut::new(),
            adapter_decoder: None,
            open: true,
            frozen: false,
            broker_close: None,
        });
        self.peers.len() - 1
    }

    /// Opens a transport for a client with `config` and pumps; the CONNECT
    /// exchange happens (check the outcome with [`Sim::connack`]).
    pub fn connect(&mut self, config: ClientConfig) -> usize {
        let v = config.version;
        let conn = Connection::<Client>::new(config, self.now, None);
        let i = self.open(Some(conn), v);
        self.exchange();
        i
    }

    /// Connects and asserts CONNACK accepted; returns the peer and Session Present.
    pub fn connect_ok(&mut self, config: ClientConfig) -> (usize, bool) {
        let i = self.connect(config);
        match self.connack(i) {
            Ok(present) => (i, present),
            Err(r) => panic!("CONNECT refused with {r:?}"),
        }
    }

    /// Opens a transport for a raw peer that will speak `v`.
    pub fn raw(&mut self, v: ProtocolVersion) -> usize {
        self.open(None, v)
    }

    /// Hands `bytes` to the broker from peer `i` and pumps.
    pub fn send_raw(&mut self, i: usize, bytes: &[u8]) {
        self.peers[i].to_broker.extend_from_slice(bytes);
        self.exchange();
    }

    /// Session Present of the client's CONNACK, or the refusal reason.
    pub fn connack(&mut self, i: usize) -> Result<bool, ReasonCode> {
        for ev in &self.peers[i].events {
            match ev {
                ClientEvent::Connected {
                    session_present, ..
                } => return Ok(*session_present),
                ClientEvent::Closed(c) => return Err(c.reason),
                _ => {}
            }
        }
        panic!("no CONNACK yet for peer {i}")
    }

    pub fn peer(&mut self, i: usize) -> &mut Peer {
        &mut self.peers[i]
    }

    pub fn client(&mut self, i: usize) -> &mut Connection<Client> {
        self.peers[i].client()
    }

    /// Moves bytes both ways and drains every event until nothing moves.
    pub fn exchange(&mut self) {
        let now = self.now;
        for round in 0.. {
            assert!(round < 10_000, "the simulation does not settle");
            let mut moved = false;
            // Clients write; the broker reads.
            for p in &mut self.peers {
                if !p.open {
                    continue;
                }
                if let (Some(c), false) = (p.conn.as_mut(), p.frozen) {
                    moved |= c.poll_transmit(now, &mut p.to_broker) > 0;
                    while let Some(ev) = c.poll_event() {
                        p.events.push(ev);
                        moved = true;
                    }
                }
                if !p.to_broker.is_empty() {
                    let before = p.to_broker.len();
                    if crate::PACKET_PATH {
                        // The adapter decodes; the broker gets packets.
                        let decoder = p
                            .adapter_decoder
                            .get_or_insert_with(|| self.broker.decoder());
                        let mut packets = Vec::new();
                        let mut error = None;
                        loop {
                            let len = p.to_broker.len();
                            match decoder.decode(&mut p.to_broker) {
                                Ok(Some(packet)) => packets.push((packet, len - p.to_broker.len())),
                                Ok(None) => break,
                                Err(e) => {
                                    error = Some(e);
                                    p.to_broker.clear();
                                    break;
                                }
                            }
                        }
                        if !packets.is_empty() || error.is_some() {
                            self.broker.handle_packets(p.id, now, packets, error);
                        }
                    } else {
                        self.broker.handle_read(p.id, now, &mut p.to_broker);
                    }
                    moved |= p.to_broker.len() != before;
                }
                // A client that closed and flushed its side: the adapter
                // closes the socket, which the broker sees as end of stream.
                if p.conn.as_ref().is_some_and(|c| c.is_closed()) && p.to_broker.is_empty() {
                    p.open = false;
                    self.broker.handle_eof(p.id, now);
                    moved = true;
                }
            }
            // The store commits what the broker emitted.
            moved |= self.commit();
            // The broker writes.
            while let Some(id) = self.broker.poll_writable() {
                moved |= self.flush(id);
            }
            // The broker's events: a closed connection gets its last bytes,
            // then its transport ends.
            while let Some(ev) = self.broker.poll_event() {
                moved = true;
                match ev {
                    BrokerEvent::Closed { id, close } => {
                        self.flush(id);
                        self.closed.push((id, close.clone()));
                        if let Some(p) = self.peers.iter_mut().find(|p| p.id == id) {
                            p.broker_close = Some(close);
                        }
                    }
                    // Accepted CONNECTs show in the peers' own events.
                    BrokerEvent::Connected { .. } => {}
                }
            }
            // Clients read; a transport the broker closed ends after its bytes.
            for p in &mut self.peers {
                if p.frozen {
                    continue;
                }
                if let Some(c) = p.conn.as_mut() {
                    if !p.to_client.is_empty() {
                        c.handle_read(now, &mut p.to_client);
                        moved = true;
                    }
                    if p.open && p.broker_close.is_some() {
                        p.open = false;
                        c.handle_eof(now);
                        moved = true;
                    }
                    while let Some(ev) = c.poll_event() {
                        p.events.push(ev);
                        moved = true;
                    }
                } else if p.open && p.broker_close.is_some() {
                    p.open = false;
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Writes what the broker has for connection `id` into its peer's pipe.
    fn flush(&mut self, id: ConnId) -> bool {
        let mut buf = BytesMut::new();
        let n = if crate::PACKET_PATH {
            // The adapter takes frames in small batches and encodes them.
            let mut total = 0;
            loop {
                let before = buf.len();
                let mut frames = Vec::new();
                let n = match self.broker.poll_frames(id, self.now, &mut frames, 300) {
                    Some(batch) => {
                        for frame in &frames {
                            frame
                                .encode(batch.version, &mut buf)
                                .expect("the broker hands out encodable frames");
                        }
                        batch.wire_len
                    }
                    None => 0,
                };
                if n == 0 {
                    break;
                }
                assert_eq!(
                    n,
                    buf.len() - before,
                    "the size reported is the size encoded"
                );
                total += n;
            }
            total
        } else {
            self.broker.poll_transmit(id, self.now, &mut buf)
        };
        if n == 0 {
            return false;
        }
        assert_eq!(n, buf.len(), "poll_transmit reports what it wrote");
        if let Some(p) = self.peers.iter_mut().find(|p| p.id == id && p.open) {
            p.record(&buf);
            p.to_client.extend_from_slice(&buf);
        }
        true
    }

    /// The earliest deadline of the broker and of every live client.
    fn next_deadline(&self) -> Option<Instant> {
        let clients = self
            .peers
            .iter()
            .filter(|p| p.open && !p.frozen)
            .filter_map(|p| p.conn.as_ref()?.poll_timeout());
        clients.chain(self.broker.poll_timeout()).min()
    }

    /// Moves the clock forward by `d`, firing every deadline on the way (in
    /// order, pumping after each), and pumps at the end.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now.saturating_add(d);
        self.exchange();
        for step in 0.. {
            assert!(step < 100_000, "deadlines do not advance");
            let Some(at) = self.next_deadline().filter(|at| *at <= target) else {
                break;
            };
            self.now = self.now.max(at);
            self.fire();
        }
        self.now = target;
        self.fire();
    }

    /// Calls `handle_timeout` at `now` on the broker and on every client due.
    fn fire(&mut self) {
        let now = self.now;
        self.broker.handle_timeout(now);
        // A spurious or repeated call is harmless, and afterwards the next
        // deadline lies in the future (DESIGN.md section 7 invariant).
        assert!(
            self.broker.poll_timeout().is_none_or(|t| t > now),
            "broker deadline {:?} not after now {now:?} after handle_timeout",
            self.broker.poll_timeout()
        );
        for p in &mut self.peers {
            if !p.open || p.frozen {
                continue;
            }
            if let Some(c) = p.conn.as_mut() {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
        }
        self.exchange();
    }

    /// Breaks peer `i`'s transport without any DISCONNECT: both ends see EOF.
    pub fn drop_transport(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.peers[i];
        p.open = false;
        p.to_broker.clear();
        p.to_client.clear();
        if let Some(c) = p.conn.as_mut() {
            c.handle_eof(now);
            while let Some(ev) = c.poll_event() {
                p.events.push(ev);
            }
        }
        self.broker.handle_eof(p.id, now);
        self.exchange();
    }

    /// Client `i` goes silent: it stops reading, writing and keeping time,
    /// with its transport still open (a hung process, a dead path).
    pub fn freeze(&mut self, i: usize) {
        self.peers[i].frozen = true;
    }

    /// Client `i` wakes up and handles what piled up meanwhile.
    pub fn thaw(&mut self, i: usize) {
        self.peers[i].frozen = false;
        self.exchange();
    }

    /// The client of peer `i` disconnects with `reason` (DISCONNECT, then the
    /// transport closes).
    pub fn disconnect(&mut self, i: usize, reason: ReasonCode) {
        let now = self.now;
        self.client(i).disconnect(now, reason);
        self.exchange();
    }

    // ----- commands and what came of them ---------------------------------------

    /// Subscribes client `i` to `filters` and returns the SUBACK results.
    pub fn subscribe_with(
        &mut self,
        i: usize,
        filters: &[(&str, SubscriptionOptions)],
        id: Option<u32>,
    ) -> Vec<ReasonCode> {
        let now = self.now;
        let list = filters.iter().map(|(f, o)| (filter(f), *o)).collect();
        let pid = self
            .client(i)
            .subscribe(now, list, id.map(sub_id))
            .expect("client may subscribe");
        self.exchange();
        let evs = &mut self.peers[i].events;
        let at = evs
            .iter()
            .position(|e| matches!(e, ClientEvent::Subscribed { id, .. } if *id == pid))
            .expect("SUBACK arrived");
        match evs.remove(at) {
            ClientEvent::Subscribed { results, .. } => results,
            _ => unreachable!(),
        }
    }

    /// Subscribes client `i` to one filter at `qos`; returns the SUBACK result.
    pub fn subscribe(&mut self, i: usize, f: &str, qos: QoS) -> ReasonCode {
        self.subscribe_with(i, &[(f, SubscriptionOptions::new(qos))], None)[0]
    }

    /// Unsubscribes client `i` from `f`; returns the UNSUBACK results.
    pub fn unsubscribe(&mut self, i: usize, f: &str) -> Vec<ReasonCode> {
        let now = self.now;
        let pid = self
            .client(i)
            .unsubscribe(now, vec![filter(f)])
            .expect("client may unsubscribe");
        self.exchange();
        let evs = &mut self.peers[i].events;
        let at = evs
            .iter()
            .position(|e| matches!(e, ClientEvent::Unsubscribed { id, .. } if *id == pid))
            .expect("UNSUBACK arrived");
        match evs.remove(at) {
            ClientEvent::Unsubscribed { results, .. } => results,
            _ => unreachable!(),
        }
    }

    /// Client `i` publishes `m` and the simulation settles. For QoS 1/2,
    /// returns the reason of the PUBACK / PUBREC that completed the flow.
    pub fn publish(&mut self, i: usize, m: Message) -> Option<ReasonCode> {
        let now = self.now;
        let pid = self.client(i).publish(now, m).expect("client may publish");
        self.exchange();
        let pid = pid?;
        let evs = &mut self.peers[i].events;
        let at = evs
            .iter()
            .position(|e| matches!(e, ClientEvent::Published { id, .. } if *id == pid))
            .expect("the publish flow completed");
        match evs.remove(at) {
            ClientEvent::Published { reason, .. } => Some(reason),
            _ => unreachable!(),
        }
    }

    /// Takes the application messages client `i` received so far.
    pub fn messages(&mut self, i: usize) -> Vec<Received> {
        let evs = core::mem::take(&mut self.peers[i].events);
        let mut out = Vec::new();
        for ev in evs {
            match ev {
                ClientEvent::Message {
                    msg,
                    subscription_identifiers,
                    ..
                } => out.push(Received {
                    topic: msg.topic.as_str().to_owned(),
                    payload: String::from_utf8_lossy(&msg.payload).into_owned(),
                    qos: msg.qos,
                    retain: msg.retain,
                    sub_ids: subscription_identifiers.iter().map(|i| i.get()).collect(),
                    msg,
                }),
                other => self.peers[i].events.push(other),
            }
        }
        out
    }

    /// The payloads client `i` received so far (taking them).
    pub fn payloads(&mut self, i: usize) -> Vec<String> {
        self.messages(i).into_iter().map(|m| m.payload).collect()
    }

    /// How client `i`'s connection ended, if it did.
    pub fn client_closed(&self, i: usize) -> Option<&Close> {
        self.peers[i].events.iter().find_map(|e| match e {
            ClientEvent::Closed(c) => Some(c),
            _ => None,
        })
    }

    /// The reason of the DISCONNECT the broker sent to peer `i`, if any.
    pub fn disconnect_reason(&self, i: usize) -> Option<ReasonCode> {
        self.peers[i].received.iter().find_map(|p| match p {
            Packet::Disconnect(d) => Some(d.reason),
            _ => None,
        })
    }

    /// Whether the broker ended peer `i`'s connection.
    pub fn broker_closed(&self, i: usize) -> bool {
        self.peers[i].broker_close.is_some()
    }
}
