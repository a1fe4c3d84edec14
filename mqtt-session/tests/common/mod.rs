//! The in-memory harness shared by the integration tests.
//!
//! - Free functions drive one side alone against hand-made packets (a "raw
//!   peer"): [`feed`] encodes packets into a connection, [`sent`] decodes what
//!   it wrote.
//! - [`Pair`] wires a `Connection<Client>` and a `Connection<Server>` back to
//!   back on a virtual clock. [`Pair::pump`] moves bytes both ways until
//!   nothing moves, optionally re-splitting every byte stream into random small
//!   chunks; every packet that goes over the wire is kept, decoded, in a
//!   transcript per direction, and every event in a log per side.
//! - [`Broker`] is the tiny application policy the pair runs on the server's
//!   events when a test wants one: accept CONNECT, grant SUBSCRIBE, route each
//!   publish back to the same client when it matches one of its subscriptions
//!   (`TopicFilter::matches`), and acknowledge QoS 1/2 publishes.
#![allow(dead_code, unreachable_pub)]

use core::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_session::mqtt_codec::{
    Ack, ConnAck, ConnAckProps, Connect, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS,
    QosPid, ReasonCode, Str, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
    MAX_PACKET_SIZE,
};
use mqtt_session::{
    Client, ClientConfig, ClientEvent, Close, Connection, DeliverError, DeliveryOptions, Instant,
    Message, Role, Server, ServerConfig, ServerEvent, Session,
};

// ----- small constructors ----------------------------------------------------

/// `n` seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The instant `n` milliseconds after the epoch.
pub fn at(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// A topic name (panics on an invalid one: tests only use valid ones).
pub fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).expect("valid topic name")
}

/// A topic filter (panics on an invalid one).
pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).expect("valid topic filter")
}

/// A UTF-8 string.
pub fn s(v: &str) -> Str {
    Str::try_from(v).expect("valid string")
}

/// A packet identifier (panics on 0).
pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet identifier")
}

/// A message without properties, not retained.
pub fn msg(t: &str, payload: &str, qos: QoS) -> Message {
    Message::new(
        topic(t),
        Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        false,
    )
}

/// A client configuration: client id "c1", clean start, keep alive 60 s.
pub fn client_config(v: ProtocolVersion) -> ClientConfig {
    ClientConfig::new(v, s("c1"))
}

/// The CONNECT a client with `cfg` sends (as a raw peer would).
pub fn connect_packet(v: ProtocolVersion) -> Connect {
    Connect::new(v, s("c1"))
}

// ----- packets a raw peer sends ------------------------------------------------

/// A PUBLISH of `payload` to `t` with QoS and packet id `qos`.
pub fn publish(t: &str, payload: &str, qos: QosPid, dup: bool) -> Packet {
    let mut p = Publish::new(topic(t), Bytes::copy_from_slice(payload.as_bytes()));
    p.qos = qos;
    p.dup = dup;
    Packet::Publish(p)
}

/// PUBLISH at QoS 1 with packet id `id`.
pub fn publish1(t: &str, payload: &str, id: u16) -> Packet {
    publish(t, payload, QosPid::AtLeastOnce(pid(id)), false)
}

/// PUBLISH at QoS 2 with packet id `id`.
pub fn publish2(t: &str, payload: &str, id: u16) -> Packet {
    publish(t, payload, QosPid::ExactlyOnce(pid(id)), false)
}

/// PUBACK for `id`, success.
pub fn puback(id: u16) -> Packet {
    Packet::PubAck(Ack::new(pid(id)))
}

/// PUBREC for `id`, success.
pub fn pubrec(id: u16) -> Packet {
    Packet::PubRec(Ack::new(pid(id)))
}

/// PUBREL for `id`, success.
pub fn pubrel(id: u16) -> Packet {
    Packet::PubRel(Ack::new(pid(id)))
}

/// PUBCOMP for `id`, success.
pub fn pubcomp(id: u16) -> Packet {
    Packet::PubComp(Ack::new(pid(id)))
}

/// An acknowledgement packet of kind `kind` for `id` with `reason`.
pub fn ack_with(kind: fn(Ack) -> Packet, id: u16, reason: ReasonCode) -> Packet {
    kind(Ack::with_reason(pid(id), reason))
}

/// SUBSCRIBE `id` to `f` at `qos`.
pub fn subscribe(id: u16, f: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        id: pid(id),
        props: Default::default(),
        filters: vec![(filter(f), SubscriptionOptions::new(qos))],
    })
}

/// A CONNECT packet from client "c1" with keep alive `keep_alive`.
pub fn connect_with_keep_alive(v: ProtocolVersion, keep_alive: u16) -> Packet {
    let mut c = connect_packet(v);
    c.keep_alive = keep_alive;
    Packet::Connect(Box::new(c))
}

// ----- a raw peer: encoding into, decoding out of one connection -------------

/// Encodes `packets` for version `v`.
pub fn encode(v: ProtocolVersion, packets: &[Packet]) -> BytesMut {
    let mut out = BytesMut::new();
    for p in packets {
        p.encode(v, &mut out).expect("test packets encode");
    }
    out
}

/// Decodes every whole packet in `bytes` as version `v` (CONNECT is decoded
/// whatever the version). Panics on anything undecodable.
pub fn decode_all(v: ProtocolVersion, bytes: &[u8]) -> Vec<Packet> {
    let mut d = Decoder::with_version(v).with_max_packet_size(MAX_PACKET_SIZE);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(p) = d
        .decode(&mut buf)
        .expect("the connection writes valid packets")
    {
        out.push(p);
    }
    assert!(buf.is_empty(), "the connection wrote a partial packet");
    out
}

/// Everything `c` has to write now, as bytes.
pub fn transmit<R: Role>(c: &mut Connection<R>, now: Instant) -> BytesMut {
    let mut out = BytesMut::new();
    let _ = c.poll_transmit(now, &mut out);
    out
}

/// Everything `c` has to write now, decoded as version `v`.
pub fn sent<R: Role>(c: &mut Connection<R>, now: Instant, v: ProtocolVersion) -> Vec<Packet> {
    let bytes = transmit(c, now);
    decode_all(v, &bytes)
}

/// Every pending event of `c`.
pub fn events<R: Role>(c: &mut Connection<R>) -> Vec<R::Event> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

/// Encodes `packets` and hands them to `c` in one read.
pub fn feed<R: Role>(c: &mut Connection<R>, now: Instant, v: ProtocolVersion, packets: &[Packet]) {
    let mut buf = encode(v, packets);
    c.handle_read(now, &mut buf);
}

/// A server with `cfg` that received `connect` at time 0 and was accepted
/// with `session` and `props`; the CONNACK and the Connect event are drained.
pub fn accepted_server(
    cfg: ServerConfig,
    connect: Connect,
    session: Option<Session>,
    props: ConnAckProps,
) -> Connection<Server> {
    let v = connect.protocol;
    let mut server = Connection::<Server>::new(cfg, Instant::ZERO);
    feed(
        &mut server,
        Instant::ZERO,
        v,
        &[Packet::Connect(Box::new(connect))],
    );
    let evs = events(&mut server);
    assert!(
        matches!(evs.as_slice(), [ServerEvent::Connect(_)]),
        "expected the Connect event, got {evs:?}"
    );
    server
        .accept(Instant::ZERO, session, props)
        .expect("accepting a fresh CONNECT");
    let out = sent(&mut server, Instant::ZERO, v);
    assert!(matches!(out.as_slice(), [Packet::ConnAck(_)]), "{out:?}");
    server
}

/// A client with `cfg` that sent CONNECT at time 0 and received `connack`;
/// the CONNECT and the Connected event are drained.
pub fn connected_client(cfg: ClientConfig, connack: ConnAck) -> Connection<Client> {
    let v = cfg.version;
    let mut client = Connection::<Client>::new(cfg, Instant::ZERO, None);
    let out = sent(&mut client, Instant::ZERO, v);
    assert!(matches!(out.as_slice(), [Packet::Connect(_)]), "{out:?}");
    feed(
        &mut client,
        Instant::ZERO,
        v,
        &[Packet::ConnAck(Box::new(connack))],
    );
    let evs = events(&mut client);
    assert!(
        matches!(evs.as_slice(), [ClientEvent::Connected { .. }]),
        "expected Connected, got {evs:?}"
    );
    client
}

/// A successful CONNACK without properties.
pub fn connack_ok() -> ConnAck {
    ConnAck::new(false, ReasonCode::SUCCESS)
}

/// The `Close` of the last event, asserting that it is `Closed` and that no
/// other event in `evs` is.
#[track_caller]
pub fn server_close(evs: &[ServerEvent]) -> &Close {
    let closes = evs
        .iter()
        .filter(|e| matches!(e, ServerEvent::Closed(_)))
        .count();
    assert_eq!(closes, 1, "exactly one Closed event in {evs:?}");
    match evs.last() {
        Some(ServerEvent::Closed(c)) => c,
        other => panic!("Closed must be the last event, got {other:?} in {evs:?}"),
    }
}

/// Client-side counterpart of [`server_close`].
#[track_caller]
pub fn client_close(evs: &[ClientEvent]) -> &Close {
    let closes = evs
        .iter()
        .filter(|e| matches!(e, ClientEvent::Closed(_)))
        .count();
    assert_eq!(closes, 1, "exactly one Closed event in {evs:?}");
    match evs.last() {
        Some(ClientEvent::Closed(c)) => c,
        other => panic!("Closed must be the last event, got {other:?} in {evs:?}"),
    }
}

/// Asserts the deadline contract: after `handle_timeout(now)` the next
/// deadline, if any, lies strictly after `now`.
#[track_caller]
pub fn assert_deadline_after<R: Role>(c: &Connection<R>, now: Instant) {
    if let Some(t) = c.poll_timeout() {
        assert!(t > now, "poll_timeout {t:?} is not after now {now:?}");
    }
}

/// How many QoS 1/2 PUBLISHes in the transcript `sent` the answers in the
/// transcript `answers` have not completed yet (PUBACK, PUBCOMP, or a failure
/// PUBREC completes one). Counts first sends only: for flows without resends.
pub fn outstanding(sent: &[Packet], answers: &[Packet]) -> usize {
    let out = sent
        .iter()
        .filter(|p| matches!(p, Packet::Publish(x) if x.qos != QosPid::AtMostOnce && !x.dup))
        .count();
    let done = answers
        .iter()
        .filter(|p| match p {
            Packet::PubAck(_) | Packet::PubComp(_) => true,
            Packet::PubRec(a) => a.reason.is_error(),
            _ => false,
        })
        .count();
    out.saturating_sub(done)
}

// ----- randomness for chunking -----------------------------------------------

/// SplitMix64: a tiny deterministic generator for re-splitting byte streams.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `1..=max`.
    pub fn chunk(&mut self, max: usize) -> usize {
        1 + (self.next_u64() % max as u64) as usize
    }
}

// ----- the broker policy -------------------------------------------------------

/// What the pair does with the server's events, when anything.
#[derive(Debug)]
pub struct Broker {
    /// Accept every CONNECT (with `session` and `connack`).
    pub accept: bool,
    /// Grant every SUBSCRIBE at the requested QoS, remove on UNSUBSCRIBE.
    pub subscribe: bool,
    /// Deliver each publish back to the client when it matches a subscription.
    pub route: bool,
    /// Acknowledge QoS 1/2 publishes (PUBACK / PUBREC).
    pub ack: bool,
    /// CONNACK properties used on accept.
    pub connack: ConnAckProps,
    /// The session kept for the client between connections.
    pub session: Option<Session>,
    /// The client's subscriptions: filter and granted QoS.
    pub subs: Vec<(TopicFilter, QoS)>,
    /// Deliveries the server refused.
    pub refused: Vec<DeliverError>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker {
            accept: true,
            subscribe: false,
            route: false,
            ack: false,
            connack: ConnAckProps::default(),
            session: None,
            subs: Vec::new(),
            refused: Vec::new(),
        }
    }
}

impl Broker {
    /// The full policy: accept, grant, route and acknowledge.
    pub fn full() -> Self {
        Broker {
            subscribe: true,
            route: true,
            ack: true,
            ..Broker::default()
        }
    }

    /// Only accept connections; the test answers everything else itself.
    pub fn accept_only() -> Self {
        Broker::default()
    }

    /// Does nothing at all.
    pub fn passive() -> Self {
        Broker {
            accept: false,
            ..Broker::default()
        }
    }

    fn on_event(&mut self, server: &mut Connection<Server>, now: Instant, ev: &ServerEvent) {
        let v5 = server.version().is_v5();
        match ev {
            ServerEvent::Connect(c) if self.accept => {
                if c.clean_start {
                    self.subs.clear();
                    self.session = None;
                }
                server
                    .accept(now, self.session.take(), self.connack.clone())
                    .expect("accepting CONNECT");
            }
            ServerEvent::Subscribe { id, filters, .. } if self.subscribe => {
                let mut results = Vec::new();
                for (f, opts) in filters {
                    self.subs.retain(|(g, _)| g != f);
                    self.subs.push((f.clone(), opts.qos));
                    results.push(ReasonCode(opts.qos as u8));
                }
                server.suback(*id, &results).expect("answering SUBSCRIBE");
            }
            ServerEvent::Unsubscribe { id, filters } if self.subscribe => {
                let mut results = Vec::new();
                for f in filters {
                    let before = self.subs.len();
                    self.subs.retain(|(g, _)| g != f);
                    results.push(if before == self.subs.len() {
                        ReasonCode::NO_SUBSCRIPTION_EXISTED
                    } else {
                        ReasonCode::SUCCESS
                    });
                }
                server
                    .unsuback(*id, &results)
                    .expect("answering UNSUBSCRIBE");
            }
            ServerEvent::Publish { msg, id } => {
                let granted = self
                    .subs
                    .iter()
                    .filter(|(f, _)| f.matches(&msg.topic))
                    .map(|(_, q)| *q)
                    .max();
                if self.route {
                    if let Some(q) = granted {
                        let opts = DeliveryOptions::new(msg.qos.min(q));
                        if let Err(e) = server.deliver(now, msg.clone(), opts) {
                            self.refused.push(e);
                        }
                    }
                }
                if let (true, Some(id)) = (self.ack, id) {
                    let reason = if granted.is_none() && v5 && self.route {
                        ReasonCode::NO_MATCHING_SUBSCRIBERS
                    } else {
                        ReasonCode::SUCCESS
                    };
                    server.ack(*id, reason).expect("acknowledging a publish");
                }
            }
            _ => {}
        }
    }
}

// ----- the pair ----------------------------------------------------------------

/// Which side wrote a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Client,
    /// The server.
    Server,
}

/// A client and a server connection back to back in memory, on a virtual clock.
#[derive(Debug)]
pub struct Pair {
    /// The virtual clock.
    pub now: Instant,
    /// The client side.
    pub client: Connection<Client>,
    /// The server side.
    pub server: Connection<Server>,
    /// The client's configuration, used again on reconnect.
    pub client_config: ClientConfig,
    /// The server's configuration, used again on reconnect.
    pub server_config: ServerConfig,
    /// The application policy run on the server's events.
    pub broker: Broker,
    /// Every client event, in order, across connections.
    pub client_events: Vec<ClientEvent>,
    /// Every server event, in order, across connections.
    pub server_events: Vec<ServerEvent>,
    /// Every packet the client wrote, decoded.
    pub c2s: Vec<Packet>,
    /// Every packet the server wrote, decoded.
    pub s2c: Vec<Packet>,
    /// Every packet either side wrote, in the order written, with its writer.
    pub wire: Vec<(Side, Packet)>,
    /// When set, each byte stream is re-split into chunks of 1..=max bytes.
    pub chunking: Option<(Rng, usize)>,
    /// How many connections were opened (1 for the first).
    pub connections: usize,
    c2s_decoder: Decoder,
    s2c_decoder: Decoder,
    client_rbuf: BytesMut,
    server_rbuf: BytesMut,
    /// When set, bytes are decoded outside the connections (as an adapter
    /// that decodes in its own task does) and handed over as packets.
    pub decode_in_adapter: bool,
    /// How bytes are taken out of each connection.
    pub encoding: Encoding,
    client_adapter_decoder: Option<Decoder>,
    server_adapter_decoder: Option<Decoder>,
    client_saw_eof: bool,
    server_saw_eof: bool,
}

/// How an adapter takes what a connection sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `poll_transmit`: the connection encodes.
    Transmit,
    /// `poll_frames`, encoded by the adapter, in small batches.
    Frames,
}

/// Everything `conn` has to send, taken the way `how` says.
fn take_bytes<R: mqtt_session::Role>(
    conn: &mut Connection<R>,
    now: Instant,
    how: Encoding,
) -> BytesMut {
    let mut out = BytesMut::new();
    let v = conn.version();
    loop {
        let before = out.len();
        let n = match how {
            Encoding::Transmit => conn.poll_transmit(now, &mut out),
            Encoding::Frames => {
                let mut frames = Vec::new();
                let n = conn.poll_frames(now, &mut frames, 200);
                for f in &frames {
                    f.encode(v, &mut out).expect("frames handed out encode");
                }
                n
            }
        };
        assert_eq!(
            n,
            out.len() - before,
            "the size reported is the size written"
        );
        if n == 0 {
            return out;
        }
    }
}

impl Pair {
    /// A client and a server, CONNECT queued, nothing moved yet; the broker
    /// only accepts connections.
    pub fn new(client_config: ClientConfig, server_config: ServerConfig) -> Self {
        let now = Instant::ZERO;
        let v = client_config.version;
        Pair {
            now,
            client: Connection::<Client>::new(client_config.clone(), now, None),
            server: Connection::<Server>::new(server_config.clone(), now),
            client_config,
            server_config,
            broker: Broker::accept_only(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            c2s: Vec::new(),
            s2c: Vec::new(),
            wire: Vec::new(),
            chunking: None,
            connections: 1,
            c2s_decoder: Decoder::new().with_max_packet_size(MAX_PACKET_SIZE),
            s2c_decoder: Decoder::with_version(v).with_max_packet_size(MAX_PACKET_SIZE),
            client_rbuf: BytesMut::new(),
            server_rbuf: BytesMut::new(),
            decode_in_adapter: false,
            encoding: Encoding::Transmit,
            client_adapter_decoder: None,
            server_adapter_decoder: None,
            client_saw_eof: false,
            server_saw_eof: false,
        }
    }

    /// A pair with default server configuration, connected; transcripts and
    /// event logs are cleared.
    pub fn connected(v: ProtocolVersion) -> Self {
        Pair::connected_with(
            client_config(v),
            ServerConfig::default(),
            Broker::accept_only(),
        )
    }

    /// A connected pair with the given configurations and policy; transcripts
    /// and event logs are cleared.
    pub fn connected_with(
        client_config: ClientConfig,
        server_config: ServerConfig,
        broker: Broker,
    ) -> Self {
        let mut p = Pair::new(client_config, server_config);
        p.broker = broker;
        p.exchange();
        assert!(p.client.is_connected(), "client not connected: {p:?}");
        assert!(p.server.is_connected(), "server not connected");
        p.clear();
        p
    }

    /// The protocol version in use.
    pub fn version(&self) -> ProtocolVersion {
        self.client_config.version
    }

    /// Re-split every byte stream into random chunks of 1..=max bytes.
    pub fn with_chunking(mut self, seed: u64, max: usize) -> Self {
        self.chunking = Some((Rng::new(seed), max));
        self
    }

    /// Forgets the transcripts and event logs.
    pub fn clear(&mut self) {
        self.c2s.clear();
        self.s2c.clear();
        self.wire.clear();
        self.client_events.clear();
        self.server_events.clear();
    }

    /// Takes the client-to-server transcript.
    pub fn take_c2s(&mut self) -> Vec<Packet> {
        core::mem::take(&mut self.c2s)
    }

    /// Takes the server-to-client transcript.
    pub fn take_s2c(&mut self) -> Vec<Packet> {
        core::mem::take(&mut self.s2c)
    }

    /// Takes the interleaved transcript of both directions.
    pub fn take_wire(&mut self) -> Vec<(Side, Packet)> {
        core::mem::take(&mut self.wire)
    }

    /// Takes the client's event log.
    pub fn take_client_events(&mut self) -> Vec<ClientEvent> {
        core::mem::take(&mut self.client_events)
    }

    /// Takes the server's event log.
    pub fn take_server_events(&mut self) -> Vec<ServerEvent> {
        core::mem::take(&mut self.server_events)
    }

    /// Moves bytes both ways, running the broker policy, until nothing moves.
    /// A side that has closed and written its last bytes closes the
    /// transport: the other side then sees end of stream.
    pub fn exchange(&mut self) {
        for _ in 0..100_000 {
            let a = self.step_c2s();
            let b = self.step_s2c();
            if !a && !b {
                return;
            }
        }
        panic!("the pair never went idle");
    }

    /// One transmission from the client to the server. Returns whether
    /// anything happened.
    pub fn step_c2s(&mut self) -> bool {
        let now = self.now;
        let out = take_bytes(&mut self.client, now, self.encoding);
        let n = out.len();
        let mut moved = n > 0;
        if n > 0 {
            let before = self.c2s.len();
            record(&mut self.c2s_decoder, &out, &mut self.c2s);
            for p in &self.c2s[before..] {
                self.wire.push((Side::Client, p.clone()));
            }
            let adapter = self
                .decode_in_adapter
                .then_some(&mut self.server_adapter_decoder);
            deliver_bytes(
                &mut self.server,
                now,
                &mut self.server_rbuf,
                &out,
                &mut self.chunking,
                adapter,
            );
        }
        if self.client.is_closed() && !self.server_saw_eof {
            self.server_saw_eof = true;
            self.server.handle_eof(now);
            moved = true;
        }
        moved | self.drain_server()
    }

    /// One transmission from the server to the client. Returns whether
    /// anything happened.
    pub fn step_s2c(&mut self) -> bool {
        let now = self.now;
        let out = take_bytes(&mut self.server, now, self.encoding);
        let n = out.len();
        let mut moved = n > 0;
        if n > 0 {
            let before = self.s2c.len();
            record(&mut self.s2c_decoder, &out, &mut self.s2c);
            for p in &self.s2c[before..] {
                self.wire.push((Side::Server, p.clone()));
            }
            let adapter = self
                .decode_in_adapter
                .then_some(&mut self.client_adapter_decoder);
            deliver_bytes(
                &mut self.client,
                now,
                &mut self.client_rbuf,
                &out,
                &mut self.chunking,
                adapter,
            );
        }
        if self.server.is_closed() && !self.client_saw_eof {
            self.client_saw_eof = true;
            self.client.handle_eof(now);
            moved = true;
        }
        moved | self.drain_client()
    }

    fn drain_server(&mut self) -> bool {
        let mut any = false;
        while let Some(ev) = self.server.poll_event() {
            any = true;
            self.broker.on_event(&mut self.server, self.now, &ev);
            self.server_events.push(ev);
        }
        any
    }

    fn drain_client(&mut self) -> bool {
        let mut any = false;
        while let Some(ev) = self.client.poll_event() {
            any = true;
            self.client_events.push(ev);
        }
        any
    }

    /// Both sides' timers fire at `now`; then the pair is pumped. Asserts
    /// that every deadline left lies after `now`.
    pub fn fire(&mut self) {
        let now = self.now;
        self.client.handle_timeout(now);
        assert_deadline_after(&self.client, now);
        self.server.handle_timeout(now);
        assert_deadline_after(&self.server, now);
        self.drain_client();
        self.drain_server();
        self.exchange();
    }

    /// Lets `d` pass with the network working: every deadline on the way is
    /// acted on at its time, and the bytes it produces are delivered at once.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now.saturating_add(d);
        loop {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.fire();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    /// Lets `d` pass in one jump, as if the network had stalled: timers fire
    /// only at the end.
    pub fn jump(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
        self.fire();
    }

    /// The transport fails under both sides at once; bytes not yet written
    /// are lost.
    pub fn drop_connection(&mut self) {
        let now = self.now;
        if !self.server_saw_eof {
            self.server_saw_eof = true;
            self.server.handle_eof(now);
        }
        if !self.client_saw_eof {
            self.client_saw_eof = true;
            self.client.handle_eof(now);
        }
        self.drain_client();
        self.drain_server();
    }

    /// Opens a new connection after the old one ended (dropping it first if
    /// it has not): both sessions are detached and handed to the new
    /// connections (the server's through the broker, which passes it to
    /// `accept`). Nothing is moved yet.
    pub fn reconnect(&mut self) {
        self.reconnect_with(|_, _| {});
    }

    /// [`Pair::reconnect`], letting `f` look at or change the client's and
    /// the server's detached sessions before they are resumed.
    pub fn reconnect_with(&mut self, f: impl FnOnce(&mut Option<Session>, &mut Option<Session>)) {
        self.drop_connection();
        let now = self.now;
        let fresh_client = Connection::<Client>::new(self.client_config.clone(), now, None);
        let fresh_server = Connection::<Server>::new(self.server_config.clone(), now);
        let mut client_session = core::mem::replace(&mut self.client, fresh_client).detach();
        if let Some(s) = core::mem::replace(&mut self.server, fresh_server).detach() {
            self.broker.session = Some(s);
        }
        f(&mut client_session, &mut self.broker.session);
        self.client = Connection::<Client>::new(self.client_config.clone(), now, client_session);
        self.connections += 1;
        self.c2s_decoder = Decoder::new().with_max_packet_size(MAX_PACKET_SIZE);
        self.s2c_decoder =
            Decoder::with_version(self.version()).with_max_packet_size(MAX_PACKET_SIZE);
        self.client_rbuf.clear();
        self.server_rbuf.clear();
        self.client_adapter_decoder = None;
        self.server_adapter_decoder = None;
        self.client_saw_eof = false;
        self.server_saw_eof = false;
    }

    /// Messages the client received, in order.
    pub fn client_messages(&self) -> Vec<&Message> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Message { msg, .. } => Some(msg),
                _ => None,
            })
            .collect()
    }

    /// Messages the server received, in order.
    pub fn server_messages(&self) -> Vec<&Message> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Publish { msg, .. } => Some(msg),
                _ => None,
            })
            .collect()
    }
}

/// Decodes the bytes a side wrote into its transcript.
fn record(decoder: &mut Decoder, bytes: &[u8], into: &mut Vec<Packet>) {
    let mut buf = BytesMut::from(bytes);
    while let Some(p) = decoder
        .decode(&mut buf)
        .expect("a connection writes valid packets")
    {
        into.push(p);
    }
    assert!(buf.is_empty(), "poll_transmit wrote a partial packet");
}

/// Hands `bytes` to `c`, in one read or in random chunks; `rbuf` keeps the
/// partial tail between reads, as an adapter's read buffer does.
fn deliver_bytes<R: Role>(
    c: &mut Connection<R>,
    now: Instant,
    rbuf: &mut BytesMut,
    bytes: &[u8],
    chunking: &mut Option<(Rng, usize)>,
    mut adapter: Option<&mut Option<Decoder>>,
) {
    match chunking {
        None => {
            rbuf.extend_from_slice(bytes);
            hand_over(c, now, rbuf, adapter);
        }
        Some((rng, max)) => {
            let mut rest = bytes;
            while !rest.is_empty() {
                let n = rng.chunk(*max).min(rest.len());
                rbuf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                hand_over(c, now, rbuf, adapter.as_deref_mut());
            }
        }
    }
}

/// Hands bytes to `c`: as bytes, or, with an adapter decoder slot, as the
/// packets that decoder makes of them.
fn hand_over<R: Role>(
    c: &mut Connection<R>,
    now: Instant,
    rbuf: &mut BytesMut,
    adapter: Option<&mut Option<Decoder>>,
) {
    let Some(slot) = adapter else {
        return c.handle_read(now, rbuf);
    };
    let decoder = slot.get_or_insert_with(|| c.decoder());
    for _ in 0..100_000 {
        let before = rbuf.len();
        match decoder.decode(rbuf) {
            Ok(Some(p)) => c.handle_packet(now, p, before - rbuf.len()),
            Ok(None) => return,
            Err(e) => {
                c.handle_decode_error(now, e);
                rbuf.clear();
                return;
            }
        }
    }
    panic!("more than 100000 packets in one read");
}
