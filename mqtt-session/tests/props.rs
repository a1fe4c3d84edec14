//! Property test: a client and a server back to back, driven by random
//! operation sequences — publish at each QoS, subscribe, unsubscribe, partial
//! and full transmission, time passing with the network working and with it
//! stalled past the keep alive, and the connection dropping under both sides
//! with the persistent session resuming on a new connection.
//!
//! The server runs the harness broker: every publish is routed back to the
//! same client when it matches one of its subscriptions. A model of the
//! subscriptions, kept from what the client was told, decides for each
//! publish whether it must arrive (a granted subscription at QoS ≥ 1 matched
//! and nothing about it was pending) or must not (no subscription could
//! match). After every step and at the end it checks:
//!
//! - QoS 1 is delivered at least once, QoS 2 exactly once (section 4.3);
//! - QoS 1/2 messages from the one publisher arrive in the order published,
//!   per QoS level ([MQTT-4.6.0-5], [MQTT-4.6.0-6]);
//! - nothing published after an UNSUBACK is delivered on that filter
//!   ([MQTT-3.10.4-2]);
//! - no packet identifier is used twice at once in either direction
//!   ([MQTT-2.2.1-3], [MQTT-2.2.1-4]);
//! - QoS 1/2 publishes in flight never exceed the receiver's Receive Maximum
//!   (5.0) or the sender's in-flight window (3.1/3.1.1) ([MQTT-3.3.4-7],
//!   [MQTT-3.3.4-9]);
//! - no connection between these two correct peers ends with a violation,
//!   and `Closed` is the last event of each connection;
//! - the events and the packets on the wire are identical when every byte
//!   stream is re-split into random small chunks;
//! - nothing panics, and `poll_timeout() > now` after every `handle_timeout(now)`
//!   (asserted by the harness).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use mqtt_session::mqtt_codec::{Packet, PacketId, ProtocolVersion, QoS};
use mqtt_session::{
    Client, ClientEvent, Connection, Limits, ServerConfig, ServerEvent, Session, UsageError,
};
use proptest::prelude::*;

const TOPICS: [&str; 4] = ["a", "a/b", "b/c", "a/b/c"];
const FILTERS: [&str; 5] = ["a", "a/#", "+/c", "#", "a/b"];

#[derive(Debug, Clone)]
enum Op {
    Publish {
        topic: usize,
        qos: QoS,
    },
    Subscribe {
        filter: usize,
        qos: QoS,
    },
    Unsubscribe {
        filter: usize,
    },
    /// Move bytes until nothing moves.
    Pump,
    /// A few single transmissions, alternating direction, so that the
    /// connection can drop halfway through an exchange.
    Steps(u8),
    /// Time passes with the network working (keep alive served).
    Advance(u32),
    /// Time passes in one jump, the network stalled (past 15 s the server's
    /// keep alive expires).
    Stall(u32),
    /// The transport fails under both sides; a new connection resumes both
    /// sessions. With `Some(n)`, both sessions' identifier counters are set
    /// back to `n` first, so that the allocator meets identifiers still in
    /// flight and must skip them.
    Drop(Option<u16>),
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..TOPICS.len(), qos()).prop_map(|(topic, qos)| Op::Publish { topic, qos }),
        3 => (0..FILTERS.len(), qos()).prop_map(|(filter, qos)| Op::Subscribe { filter, qos }),
        2 => (0..FILTERS.len()).prop_map(|filter| Op::Unsubscribe { filter }),
        3 => Just(Op::Pump),
        3 => (1..6u8).prop_map(Op::Steps),
        2 => (0..30_000u32).prop_map(Op::Advance),
        1 => (0..30_000u32).prop_map(Op::Stall),
        2 => prop_oneof![Just(None), (0..6u16).prop_map(Some)].prop_map(Op::Drop),
    ]
}

#[derive(Debug, Clone)]
struct Params {
    version: ProtocolVersion,
    /// Client: Receive Maximum announced, and its own in-flight cap.
    client_receive_maximum: u16,
    client_max_inflight: u16,
    /// Server: the same.
    server_receive_maximum: u16,
    server_max_inflight: u16,
    chunk_seed: u64,
    chunk_max: usize,
    /// Where both sessions' packet identifiers start: near 65,535 the
    /// allocation wraps around within a few operations.
    last_packet_id: u16,
    /// The subscription made (and acknowledged) before the operations run.
    initial: (usize, QoS),
}

fn params() -> impl Strategy<Value = Params> {
    let version = prop_oneof![
        Just(ProtocolVersion::V31),
        Just(ProtocolVersion::V311),
        Just(ProtocolVersion::V5)
    ];
    let windows = (1..5u16, 1..5u16, 1..5u16, 1..5u16);
    let chunks = (any::<u64>(), 1..9usize);
    let last_packet_id = prop_oneof![Just(0u16), 65_528..=u16::MAX];
    let initial = (0..FILTERS.len(), qos());
    (version, windows, chunks, last_packet_id, initial).prop_map(
        |(version, (crm, cmi, srm, smi), (chunk_seed, chunk_max), last_packet_id, initial)| {
            Params {
                version,
                client_receive_maximum: crm,
                client_max_inflight: cmi,
                server_receive_maximum: srm,
                server_max_inflight: smi,
                chunk_seed,
                chunk_max,
                last_packet_id,
                initial,
            }
        },
    )
}

impl Params {
    /// The most QoS 1/2 publishes the client may have out.
    fn up_window(&self) -> usize {
        let own = self.client_max_inflight;
        usize::from(if self.version.is_v5() {
            own.min(self.server_receive_maximum)
        } else {
            own
        })
    }

    /// The most QoS 1/2 publishes the server may have out.
    fn down_window(&self) -> usize {
        let own = self.server_max_inflight;
        usize::from(if self.version.is_v5() {
            own.min(self.client_receive_maximum)
        } else {
            own
        })
    }
}

/// What the client was last told about a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    Inactive,
    Active(QoS),
    /// A request about it is (or may still be) under way.
    Uncertain,
}

#[derive(Debug)]
struct Published {
    topic: usize,
    qos: QoS,
    /// The least QoS it must arrive with, if it must arrive: a granted
    /// subscription at QoS >= 1 matched when it was published, and nothing
    /// about it was pending.
    must: Option<QoS>,
    /// No subscription matched, none was pending, and the last UNSUBACKs
    /// had been received.
    forbidden: bool,
    /// How many SUBSCRIBE/UNSUBSCRIBE requests came before it. A request made
    /// later may overtake it (a publish waits for the in-flight window,
    /// requests do not [MQTT-3.3.4-8]), so later requests on a matching
    /// filter lift both `must` and `forbidden`.
    requests_before: usize,
}

/// Packet identifiers in flight one way, as seen on the wire.
#[derive(Debug, Default)]
struct Flight {
    publishes: BTreeSet<u16>,
    requests: BTreeSet<u16>,
    max_publishes: usize,
}

impl Flight {
    fn start(&mut self, id: PacketId, dup: bool, publish: bool, what: &str) {
        let id = id.get();
        let in_use = self.publishes.contains(&id) || self.requests.contains(&id);
        assert!(dup || !in_use, "{what}: identifier {id} used twice at once");
        if publish {
            self.publishes.insert(id);
        } else {
            self.requests.insert(id);
        }
        self.max_publishes = self.max_publishes.max(self.publishes.len());
    }

    fn end(&mut self, id: PacketId) {
        self.publishes.remove(&id.get());
        self.requests.remove(&id.get());
    }
}

struct Run {
    params: Params,
    pair: Pair,
    seq: u32,
    published: Vec<Published>,
    subs: [Sub; FILTERS.len()],
    /// Client requests under way on this connection: id -> (filter, Some(qos) subscribe / None unsubscribe).
    pending: BTreeMap<PacketId, (usize, Option<QoS>)>,
    /// Every SUBSCRIBE/UNSUBSCRIBE request made, by filter, in order.
    requests: Vec<usize>,
    /// Messages received by the client: (sequence number, QoS received).
    receipts: Vec<(u32, QoS)>,
    client_seen: usize,
    server_seen: usize,
    wire_seen: usize,
    client_closed: bool,
    server_closed: bool,
    up: Flight,
    down: Flight,
}

impl Run {
    fn new(params: Params, chunked: bool) -> Self {
        let mut cfg = client_config(params.version);
        cfg.clean_start = false;
        cfg.keep_alive = 10;
        cfg.ping_timeout = secs(5);
        cfg.session_expiry_interval = u32::MAX;
        cfg.limits = Limits {
            receive_maximum: params.client_receive_maximum,
            max_inflight: params.client_max_inflight,
            ..Limits::default()
        };
        let server_cfg = ServerConfig {
            limits: Limits {
                receive_maximum: params.server_receive_maximum,
                max_inflight: params.server_max_inflight,
                ..Limits::default()
            },
            connect_timeout: secs(10),
            ..ServerConfig::default()
        };
        let mut pair = Pair::new(cfg.clone(), server_cfg);
        pair.broker = Broker::full();
        let mut client_session = Session::default();
        client_session.set_last_packet_id(params.last_packet_id);
        pair.client = Connection::<Client>::new(cfg, pair.now, Some(client_session));
        let mut server_session = Session::default();
        server_session.set_last_packet_id(params.last_packet_id);
        pair.broker.session = Some(server_session);
        if chunked {
            pair = pair.with_chunking(params.chunk_seed, params.chunk_max);
        }
        Run {
            params,
            pair,
            seq: 0,
            published: Vec::new(),
            subs: [Sub::Inactive; FILTERS.len()],
            pending: BTreeMap::new(),
            requests: Vec::new(),
            receipts: Vec::new(),
            client_seen: 0,
            server_seen: 0,
            wire_seen: 0,
            client_closed: false,
            server_closed: false,
            up: Flight::default(),
            down: Flight::default(),
        }
    }

    /// Reads what happened since the last call: events and packets.
    fn sync(&mut self) {
        let p = &self.pair;
        for ev in &p.client_events[self.client_seen..] {
            assert!(!self.client_closed, "client event after Closed: {ev:?}");
            match ev {
                ClientEvent::Subscribed { id, results, .. } => {
                    let (f, q) = self.pending.remove(id).expect("SUBACK for a request");
                    assert_eq!(
                        results,
                        &[mqtt_session::mqtt_codec::ReasonCode(q.unwrap() as u8)]
                    );
                    let again = self.pending.values().any(|(g, _)| *g == f);
                    self.subs[f] = if again {
                        Sub::Uncertain
                    } else {
                        Sub::Active(q.unwrap())
                    };
                }
                ClientEvent::Unsubscribed { id, .. } => {
                    let (f, q) = self.pending.remove(id).expect("UNSUBACK for a request");
                    assert!(q.is_none());
                    let again = self.pending.values().any(|(g, _)| *g == f);
                    self.subs[f] = if again { Sub::Uncertain } else { Sub::Inactive };
                }
                ClientEvent::Message { msg, .. } => {
                    let seq: u32 = std::str::from_utf8(&msg.payload).unwrap().parse().unwrap();
                    let published = &self.published[seq as usize];
                    assert_eq!(msg.topic, common::topic(TOPICS[published.topic]));
                    assert!(msg.qos <= published.qos);
                    self.receipts.push((seq, msg.qos));
                }
                ClientEvent::Closed(close) => {
                    assert_eq!(
                        close.violation, None,
                        "client closed on a violation: {close:?}"
                    );
                    self.client_closed = true;
                }
                _ => {}
            }
        }
        self.client_seen = p.client_events.len();
        for ev in &p.server_events[self.server_seen..] {
            assert!(!self.server_closed, "server event after Closed: {ev:?}");
            if let ServerEvent::Closed(close) = ev {
                assert_eq!(
                    close.violation, None,
                    "server closed on a violation: {close:?}"
                );
                self.server_closed = true;
            }
        }
        self.server_seen = p.server_events.len();
        for (side, packet) in &p.wire[self.wire_seen..] {
            let (flight, answered, what) = match side {
                Side::Client => (&mut self.up, &mut self.down, "client"),
                Side::Server => (&mut self.down, &mut self.up, "server"),
            };
            match packet {
                Packet::Publish(x) => {
                    if let Some(id) = x.qos.packet_id() {
                        flight.start(id, x.dup, true, what);
                    }
                }
                Packet::Subscribe(x) => flight.start(x.id, false, false, what),
                Packet::Unsubscribe(x) => flight.start(x.id, false, false, what),
                Packet::PubAck(a) | Packet::PubComp(a) => answered.end(a.id),
                Packet::PubRec(a) if a.reason.is_error() => answered.end(a.id),
                Packet::SubAck(a) | Packet::UnsubAck(a) => answered.end(a.id),
                _ => {}
            }
        }
        self.wire_seen = p.wire.len();
        assert!(
            self.up.max_publishes <= self.params.up_window(),
            "client had {} publishes in flight, window {}",
            self.up.max_publishes,
            self.params.up_window()
        );
        assert!(
            self.down.max_publishes <= self.params.down_window(),
            "server had {} publishes in flight, window {}",
            self.down.max_publishes,
            self.params.down_window()
        );
    }

    /// Drops the connection (if still up) and opens the next one, resuming
    /// both sessions.
    fn reconnect(&mut self, rewind: Option<u16>) {
        self.sync();
        self.pair.reconnect_with(|client, server| {
            if let Some(n) = rewind {
                for s in [client, server].into_iter().flatten() {
                    s.set_last_packet_id(n);
                }
            }
        });
        self.sync();
        // SUBSCRIBE/UNSUBSCRIBE do not outlive the connection: their
        // identifiers are free again, and what they asked stays uncertain.
        self.pending.clear();
        self.up.requests.clear();
        self.client_closed = false;
        self.server_closed = false;
    }

    fn apply(&mut self, op: &Op) {
        if self.pair.client.is_closed() || self.pair.server.is_closed() {
            self.reconnect(None);
        }
        let now = self.pair.now;
        match *op {
            Op::Publish { topic, qos } => {
                let payload = self.seq.to_string();
                let r = self
                    .pair
                    .client
                    .publish(now, msg(TOPICS[topic], &payload, qos));
                match r {
                    Ok(_) => {
                        let t = common::topic(TOPICS[topic]);
                        let matching: Vec<Sub> = (0..FILTERS.len())
                            .filter(|f| filter(FILTERS[*f]).matches(&t))
                            .map(|f| self.subs[f])
                            .collect();
                        let certain = matching
                            .iter()
                            .filter_map(|s| match s {
                                Sub::Active(q) => Some(*q),
                                _ => None,
                            })
                            .max();
                        let must = certain.map(|q| q.min(qos)).filter(|q| *q > QoS::AtMostOnce);
                        let forbidden = matching.iter().all(|s| *s == Sub::Inactive);
                        self.published.push(Published {
                            topic,
                            qos,
                            must,
                            forbidden,
                            requests_before: self.requests.len(),
                        });
                        self.seq += 1;
                    }
                    Err(UsageError::NotConnected) => assert!(!self.pair.client.is_connected()),
                    Err(e) => panic!("publish refused: {e:?}"),
                }
            }
            Op::Subscribe { filter: f, qos } => {
                let opts = mqtt_session::mqtt_codec::SubscriptionOptions::new(qos);
                match self
                    .pair
                    .client
                    .subscribe(now, vec![(filter(FILTERS[f]), opts)], None)
                {
                    Ok(id) => {
                        self.pending.insert(id, (f, Some(qos)));
                        self.requests.push(f);
                        self.subs[f] = Sub::Uncertain;
                    }
                    Err(UsageError::NotConnected) => assert!(!self.pair.client.is_connected()),
                    Err(e) => panic!("subscribe refused: {e:?}"),
                }
            }
            Op::Unsubscribe { filter: f } => {
                match self.pair.client.unsubscribe(now, vec![filter(FILTERS[f])]) {
                    Ok(id) => {
                        self.pending.insert(id, (f, None));
                        self.requests.push(f);
                        self.subs[f] = Sub::Uncertain;
                    }
                    Err(UsageError::NotConnected) => assert!(!self.pair.client.is_connected()),
                    Err(e) => panic!("unsubscribe refused: {e:?}"),
                }
            }
            Op::Pump => self.pair.exchange(),
            Op::Steps(n) => {
                for i in 0..n {
                    if i % 2 == 0 {
                        self.pair.step_c2s();
                    } else {
                        self.pair.step_s2c();
                    }
                }
            }
            Op::Advance(ms) => {
                let was_up = self.pair.client.is_connected() && self.pair.server.is_connected();
                self.pair.advance(common::ms(u64::from(ms)));
                if was_up {
                    // With the network working, keep alive never ends a connection.
                    assert!(self.pair.client.is_connected() && self.pair.server.is_connected());
                }
            }
            Op::Stall(ms) => self.pair.jump(common::ms(u64::from(ms))),
            Op::Drop(rewind) => self.reconnect(rewind),
        }
        self.sync();
    }

    /// Brings the pair to rest on a working connection, then checks the
    /// delivery guarantees.
    fn finish(&mut self) {
        for _ in 0..3 {
            if self.pair.client.is_closed() || self.pair.server.is_closed() {
                self.reconnect(None);
            }
            self.pair.exchange();
            self.sync();
            if self.pair.client.is_connected() && self.pair.server.is_connected() {
                break;
            }
        }
        let p = &self.pair;
        assert!(p.client.is_connected() && p.server.is_connected());
        let (c, s) = (p.client.session().unwrap(), p.server.session().unwrap());
        assert_eq!((c.inflight(), c.queued()), (0, 0), "client session at rest");
        assert_eq!((s.inflight(), s.queued()), (0, 0), "server session at rest");
        assert!(p.broker.refused.is_empty(), "{:?}", p.broker.refused);
        assert!(self.pending.is_empty(), "every request answered");

        // A message whose topic a later SUBSCRIBE/UNSUBSCRIBE touched may have
        // been overtaken by it; for the others the subscriptions in force at
        // the server when it arrived are the ones the model saw.
        let stable: Vec<bool> = self
            .published
            .iter()
            .map(|p| {
                let t = common::topic(TOPICS[p.topic]);
                !self.requests[p.requests_before..]
                    .iter()
                    .any(|f| filter(FILTERS[*f]).matches(&t))
            })
            .collect();
        let mut count = vec![0u32; self.published.len()];
        let mut count_qos2 = vec![0u32; self.published.len()];
        let mut last_first: BTreeMap<(QoS, QoS), u32> = BTreeMap::new();
        for &(seq, got) in &self.receipts {
            let i = seq as usize;
            let first = count[i] == 0;
            count[i] += 1;
            if got == QoS::ExactlyOnce {
                count_qos2[i] += 1;
            }
            // Order: first arrivals of messages that had to arrive, per QoS
            // published and QoS received.
            let pubd = &self.published[i];
            if first && stable[i] && pubd.must.is_some() {
                let key = (pubd.qos, got);
                if let Some(prev) = last_first.insert(key, seq) {
                    assert!(prev < seq, "{seq} arrived after {prev} ({key:?})");
                }
            }
        }
        for (seq, pubd) in self.published.iter().enumerate() {
            let n = count[seq];
            if pubd.qos == QoS::AtMostOnce {
                assert!(n <= 1, "QoS 0 message {seq} arrived {n} times");
            }
            assert!(count_qos2[seq] <= 1, "message {seq} arrived twice at QoS 2");
            if !stable[seq] {
                continue;
            }
            match pubd.must {
                Some(QoS::ExactlyOnce) => assert_eq!(n, 1, "QoS 2 message {seq}: exactly once"),
                Some(_) => assert!(n >= 1, "QoS 1 message {seq}: at least once"),
                None => {}
            }
            if pubd.forbidden {
                assert_eq!(n, 0, "message {seq} must not arrive");
            }
        }
    }

    /// Everything observable, for comparing runs.
    fn trace(&self) -> String {
        format!(
            "{:?}\n{:?}\n{:?}",
            self.pair.client_events, self.pair.server_events, self.pair.wire
        )
    }
}

/// Runs `ops`, checks every property, and returns the trace.
fn run(params: &Params, ops: &[Op], chunked: bool) -> String {
    run_with(params, ops, chunked, false)
}

/// `run`, optionally with both sides' bytes decoded by the adapter and
/// handed over as packets.
fn run_with(params: &Params, ops: &[Op], chunked: bool, decode_in_adapter: bool) -> String {
    run_encoding(params, ops, chunked, decode_in_adapter, Encoding::Transmit)
}

fn run_encoding(
    params: &Params,
    ops: &[Op],
    chunked: bool,
    decode_in_adapter: bool,
    encoding: Encoding,
) -> String {
    let mut r = Run::new(params.clone(), chunked);
    r.pair.decode_in_adapter = decode_in_adapter;
    r.pair.encoding = encoding;
    let (filter, qos) = params.initial;
    for op in [Op::Pump, Op::Subscribe { filter, qos }, Op::Pump] {
        r.apply(&op);
    }
    for op in ops {
        r.apply(op);
    }
    r.finish();
    r.trace()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_keep_the_delivery_guarantees(
        params in params(),
        ops in prop::collection::vec(op(), 1..48),
    ) {
        let plain = run(&params, &ops, false);
        let chunked = run(&params, &ops, true);
        prop_assert_eq!(&plain, &chunked, "events differ under chunking");
        let packets = run_with(&params, &ops, false, true);
        prop_assert_eq!(&plain, &packets, "events differ when the adapter decodes");
        let chunked_packets = run_with(&params, &ops, true, true);
        prop_assert_eq!(&plain, &chunked_packets, "events differ when the adapter decodes chunks");
        let frames = run_encoding(&params, &ops, false, true, Encoding::Frames);
        prop_assert_eq!(&plain, &frames, "events differ when the adapter encodes frames");
        let chunked_frames = run_encoding(&params, &ops, true, true, Encoding::Frames);
        prop_assert_eq!(&plain, &chunked_frames, "events differ when the adapter decodes chunks and encodes frames");
    }
}

/// A fixed sequence through every kind of operation, at each version, so the
/// checks run on a known-interesting path whatever the random cases draw.
#[test]
fn a_fixed_sequence_through_every_operation() {
    use Op::*;
    let ops = [
        Pump,
        Subscribe {
            filter: 1,
            qos: QoS::ExactlyOnce,
        },
        Subscribe {
            filter: 2,
            qos: QoS::AtLeastOnce,
        },
        Pump,
        Publish {
            topic: 0,
            qos: QoS::AtLeastOnce,
        },
        Publish {
            topic: 1,
            qos: QoS::ExactlyOnce,
        },
        Publish {
            topic: 2,
            qos: QoS::ExactlyOnce,
        },
        Publish {
            topic: 3,
            qos: QoS::AtMostOnce,
        },
        Steps(3),
        Drop(Some(0)),
        Publish {
            topic: 1,
            qos: QoS::ExactlyOnce,
        },
        Pump,
        Unsubscribe { filter: 1 },
        Pump,
        Publish {
            topic: 1,
            qos: QoS::ExactlyOnce,
        },
        Advance(25_000),
        Publish {
            topic: 2,
            qos: QoS::AtLeastOnce,
        },
        Stall(20_000),
        Publish {
            topic: 2,
            qos: QoS::AtLeastOnce,
        },
        Pump,
    ];
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        let params = Params {
            version,
            client_receive_maximum: 1,
            client_max_inflight: 2,
            server_receive_maximum: 2,
            server_max_inflight: 1,
            chunk_seed: 7,
            chunk_max: 3,
            last_packet_id: 65_533,
            initial: (3, QoS::ExactlyOnce),
        };
        let plain = run(&params, &ops, false);
        assert_eq!(plain, run(&params, &ops, true), "{version:?}");
        // Sanity: the path did deliver, drop and resume.
        assert!(plain.contains("Closed"), "{version:?}");
    }
}
