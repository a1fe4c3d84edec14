//! The broker as a cluster node, as processes: three `nats-server`s routed
//! together with JetStream and broker nodes started by the test, each
//! speaking to its own NATS server first. Messages cross nodes at every
//! QoS, once and in order per QoS (also to a node whose subscriptions
//! overlap); QoS 1 messages published while a node is down reach its
//! persistent session when it is back (its cursor in the stream);
//! retained messages are one set for the cluster, read by a node that
//! joins later; the cluster keeps serving when a NATS server is killed.
//!
//! A subscription made on one node reaches the other nodes' publishers
//! after NATS has spread the interest (milliseconds): each test first
//! waits, bounded, until a probe message crosses.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::nats::NatsCluster;
use common::raw_client::{ConnectSpec, RawClient};
use common::{require, BrokerProcess};
use mqtt_codec::{Ack, Packet, PacketId, ProtocolVersion, QoS};

/// The longest a test waits for the cluster to settle (JetStream's leader
/// election, interest spreading).
const SETTLE: Duration = Duration::from_secs(30);

fn node(nats: &NatsCluster, first: usize, name: &str) -> BrokerProcess {
    BrokerProcess::start_with(&format!(
        "[cluster]\nnats = {}\nnode = \"{name}\"\nreplicas = 3\n",
        nats.urls_from(first)
    ))
}

fn spec(id: &'static str) -> ConnectSpec {
    ConnectSpec {
        version: ProtocolVersion::V5,
        client_id: id,
        clean: true,
        expiry: 0,
        will: None,
    }
}

fn client(broker: &BrokerProcess, id: &'static str) -> RawClient {
    RawClient::connect(broker.addr, &spec(id))
        .expect("connects")
        .0
}

/// Publishes and completes the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP).
fn publish(c: &mut RawClient, topic: &str, payload: &str, qos: QoS, retain: bool) {
    c.publish(topic, payload, qos, 7, false, retain)
        .expect("sent");
    let id = PacketId::new(7).unwrap();
    loop {
        match (qos, c.recv(Duration::from_secs(5)).expect("answered")) {
            (QoS::AtMostOnce, _) => unreachable!("no answer to QoS 0"),
            (QoS::AtLeastOnce, Packet::PubAck(a)) => {
                assert!(!a.reason.is_error(), "{:?}", a.reason);
                return;
            }
            (QoS::ExactlyOnce, Packet::PubRec(_)) => c.send(&Packet::PubRel(Ack::new(id))).unwrap(),
            (QoS::ExactlyOnce, Packet::PubComp(_)) => return,
            _ => {}
        }
    }
}

/// Publishes probes on `topic` from `publisher` until every subscriber got
/// one (interest has spread); their probes are drained.
fn wait_until_carried(publisher: &mut RawClient, topic: &str, subs: &mut [&mut RawClient]) {
    let deadline = Instant::now() + SETTLE;
    let mut reached = vec![false; subs.len()];
    while reached.contains(&false) {
        assert!(
            Instant::now() < deadline,
            "messages never crossed: {reached:?}"
        );
        publisher
            .publish(topic, "probe", QoS::AtMostOnce, 0, false, false)
            .unwrap();
        for (k, s) in subs.iter_mut().enumerate() {
            let got = s.drain(Duration::from_millis(100), Duration::from_millis(300));
            reached[k] |= got.iter().any(|p| p == "probe");
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    for s in subs.iter_mut() {
        s.drain(Duration::from_millis(100), Duration::from_secs(2));
    }
}

/// What a subscriber to `filter` on `broker` gets at once (retained
/// messages), asked again until `wanted` says yes, bounded.
fn retained_on(
    broker: SocketAddr,
    filter: &str,
    wanted: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut c = RawClient::connect(broker, &spec("peek"))
            .expect("connects")
            .0;
        c.subscribe(filter, QoS::AtLeastOnce).unwrap();
        let got = c.drain(Duration::from_millis(200), Duration::from_secs(2));
        c.disconnect();
        if wanted(&got) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn messages_cross_nodes_at_every_qos_once_and_in_order() {
    if !require("nats-server") {
        return;
    }
    let nats = NatsCluster::start(3);
    let n1 = node(&nats, 0, "n1");
    let n2 = node(&nats, 1, "n2");
    let n3 = node(&nats, 2, "n3");
    let mut local = client(&n1, "local");
    local.subscribe("t/#", QoS::ExactlyOnce).unwrap();
    let mut s2 = client(&n2, "s2");
    s2.subscribe("t/#", QoS::ExactlyOnce).unwrap();
    // Node 3's subjects overlap (t.>, t, t.x): NATS brings it each message
    // twice, it keeps one.
    let mut s3a = client(&n3, "s3a");
    s3a.subscribe("t/#", QoS::AtLeastOnce).unwrap();
    let mut s3b = client(&n3, "s3b");
    s3b.subscribe("t/x", QoS::ExactlyOnce).unwrap();
    let mut p = client(&n1, "p");
    wait_until_carried(
        &mut p,
        "t/x",
        &mut [&mut local, &mut s2, &mut s3a, &mut s3b],
    );
    let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    let sent: Vec<String> = (0..30).map(|k| format!("m{k}")).collect();
    for (k, payload) in sent.iter().enumerate() {
        let q = qos[k % 3];
        if q == QoS::AtMostOnce {
            p.publish("t/x", payload, q, 0, false, false).unwrap();
        } else {
            publish(&mut p, "t/x", payload, q, false);
        }
    }
    let mut failures = Vec::new();
    for (name, s) in [
        ("local", &mut local),
        ("n2", &mut s2),
        ("n3 t/#", &mut s3a),
        ("n3 t/x", &mut s3b),
    ] {
        let got = s.drain_count(sent.len(), Duration::from_millis(500), SETTLE);
        let mut once = got.clone();
        once.sort();
        let mut expected = sent.clone();
        expected.sort();
        if once != expected {
            failures.push(format!("{name}: not every message once: {got:?}"));
        }
        // QoS 0 crosses over core NATS, QoS 1/2 through the stream: the
        // order holds per QoS [MQTT-4.6.0-6].
        for qos0 in [true, false] {
            if every_third(&got, qos0) != every_third(&sent, qos0) {
                failures.push(format!("{name}: out of order (QoS 0: {qos0}): {got:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{failures:#?}\nnode logs:\nn1: {}\nn2: {}\nn3: {}",
        n1.log(),
        n2.log(),
        n3.log()
    );
}

/// The payloads `m<k>` with `k % 3 == 0` (QoS 0), or the others.
fn every_third(v: &[String], qos0: bool) -> Vec<String> {
    v.iter()
        .filter(|p| (p[1..].parse::<usize>().unwrap() % 3 == 0) == qos0)
        .cloned()
        .collect()
}

#[test]
fn qos1_messages_wait_in_the_stream_for_a_node_that_was_killed() {
    if !require("nats-server") {
        return;
    }
    let nats = NatsCluster::start(3);
    let n1 = node(&nats, 0, "n1");
    let data = common::TempDir::new("cluster-n2");
    let port = common::free_port();
    let config = format!(
        "[cluster]\nnats = {}\nnode = \"n2\"\nreplicas = 3\n",
        nats.urls_from(1)
    );
    let n2 = BrokerProcess::start_durable(port, &data.0, &config);
    let persistent = ConnectSpec {
        clean: false,
        expiry: 3600,
        ..spec("keeper")
    };
    let (mut s, _) = RawClient::connect(n2.addr, &persistent).expect("connects");
    s.subscribe("q/#", QoS::AtLeastOnce).unwrap();
    let mut p = client(&n1, "p");
    wait_until_carried(&mut p, "q/1", &mut [&mut s]);
    s.disconnect();
    n2.kill9();
    let sent: Vec<String> = (0..20).map(|k| format!("while-down-{k}")).collect();
    for m in &sent {
        publish(&mut p, "q/1", m, QoS::AtLeastOnce, false);
    }
    let n2 = BrokerProcess::start_durable(port, &data.0, &config);
    let (mut s, present) = RawClient::connect(n2.addr, &persistent).expect("connects again");
    assert!(present, "the session survived on n2's store");
    let got = s.drain_count(sent.len(), Duration::from_millis(1000), SETTLE);
    assert_eq!(
        got,
        sent,
        "n2's cursor in the stream brought them, once, in order\nn1: {}\nn2: {}",
        n1.log(),
        n2.log()
    );
}

#[test]
fn retained_messages_are_one_set_and_a_node_that_joins_later_reads_it() {
    if !require("nats-server") {
        return;
    }
    let nats = NatsCluster::start(3);
    let n1 = node(&nats, 0, "n1");
    let n2 = node(&nats, 1, "n2");
    let mut p1 = client(&n1, "p1");
    publish(&mut p1, "r/a", "one", QoS::AtLeastOnce, true);
    let got = retained_on(n2.addr, "r/#", |g| g == ["one"]);
    assert_eq!(got, ["one"], "set on n1, retained on n2");
    let mut p2 = client(&n2, "p2");
    publish(&mut p2, "r/a", "", QoS::AtLeastOnce, true);
    let got = retained_on(n1.addr, "r/#", <[String]>::is_empty);
    assert!(got.is_empty(), "cleared on n2, gone on n1: {got:?}");
    publish(&mut p1, "r/b", "two", QoS::AtLeastOnce, true);
    let n3 = node(&nats, 2, "n3");
    let got = retained_on(n3.addr, "r/#", |g| g == ["two"]);
    assert_eq!(got, ["two"], "a node started later reads the cluster's set");
}

#[test]
fn the_cluster_keeps_serving_when_a_nats_server_is_killed() {
    if !require("nats-server") {
        return;
    }
    let mut nats = NatsCluster::start(3);
    let n1 = node(&nats, 0, "n1");
    let n2 = node(&nats, 1, "n2");
    let mut s = client(&n2, "s");
    s.subscribe("k/#", QoS::AtLeastOnce).unwrap();
    let mut p = client(&n1, "p");
    wait_until_carried(&mut p, "k/1", &mut [&mut s]);
    // n1's own NATS server goes: n1 reconnects to another.
    nats.servers[0].kill();
    wait_until_carried(&mut p, "k/1", &mut [&mut s]);
    // QoS 1 goes through the stream, whose replicas elect a new leader
    // when theirs was on the killed server: it arrives within the bound.
    publish(&mut p, "k/1", "after", QoS::AtLeastOnce, false);
    let deadline = Instant::now() + SETTLE;
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        got = s.drain(Duration::from_millis(500), Duration::from_secs(1));
        got.retain(|m| m != "probe");
    }
    assert_eq!(got, ["after"]);
}
