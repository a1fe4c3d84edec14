//! The in-memory harness shared by the integration tests.
//!
//! - Free functions drive one side alone against hand-made packets (a "raw
//!   peer"): [`feed`] encodes packets into a connection, [`sent`] decodes what
//!   it wrote.
//! - [`Pair`] (from mqtt-sim, `mqtt_sim::pair`) wires a `Connection<Client>`
//!   and a `Connection<Server>` back to back on a virtual clock, with
//!   [`Broker`] (mqtt-sim's `ServerPolicy`) as the tiny application run on
//!   the server's events.
#![allow(dead_code, unreachable_pub)]

use core::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_session::mqtt_codec::{
    Ack, ConnAck, ConnAckProps, Connect, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS,
    QosPid, ReasonCode, Str, Subscribe, SubscriptionOptions, TopicFilter, TopicName,
    MAX_PACKET_SIZE,
};
use mqtt_session::{
    Client, ClientConfig, ClientEvent, Close, Connection, Instant, Message, Role, Server,
    ServerConfig, ServerEvent, Session,
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

// ----- the pair ----------------------------------------------------------------

/// The back-to-back pair and its server policy live in mqtt-sim (not every
/// test binary uses every one).
#[allow(unused_imports)]
pub use mqtt_sim::pair::{Encoding, Pair, ServerPolicy as Broker, Side};
