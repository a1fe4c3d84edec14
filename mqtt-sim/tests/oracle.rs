//! The oracle's checks can fail: each test feeds the oracle a trace of what
//! a broker handled and what its clients received, fabricated to break one
//! guarantee, and expects exactly that check to report a violation (and a
//! faithful trace to report none).

use mqtt_router::broker::Broker;
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{
    Packet, PacketId, Publish, QoS, QosPid, Subscribe, SubscribeProps, SubscriptionOptions,
    Unsubscribe, UnsubscribeProps,
};
use mqtt_session::{ClientEvent, Message};
use mqtt_sim::build::{broker_config, connect_packet, filter, opts, topic, V5};
use mqtt_sim::oracle::{payload_of, Check, Oracle};
use mqtt_sim::{Observer, PeerId};

const T0: Instant = Instant::ZERO;

/// An oracle with peers 0..n bound to clients `c0`.. (one process each),
/// each connected with a clean start.
fn oracle(n: usize) -> Oracle {
    let mut o = Oracle::new(&broker_config());
    for p in 0..n {
        let id = format!("c{p}");
        o.bind(p, &id, p as u32);
        handled(&mut o, p, connect_packet(V5, &id, true));
    }
    o
}

fn handled(o: &mut Oracle, peer: PeerId, packet: Packet) {
    let core = Broker::new(broker_config());
    o.to_broker(T0, 0, peer, &packet, &core);
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn subscribe_with(o: &mut Oracle, peer: PeerId, f: &str, options: SubscriptionOptions) {
    let s = Subscribe {
        id: pid(1),
        props: SubscribeProps::default(),
        filters: vec![(filter(f), options)],
    };
    handled(o, peer, Packet::Subscribe(s));
}

fn subscribe(o: &mut Oracle, peer: PeerId, f: &str) {
    subscribe_with(o, peer, f, SubscriptionOptions::new(QoS::ExactlyOnce));
}

fn unsubscribe(o: &mut Oracle, peer: PeerId, f: &str) {
    let u = Unsubscribe {
        id: pid(2),
        props: UnsubscribeProps::default(),
        filters: vec![filter(f)],
    };
    handled(o, peer, Packet::Unsubscribe(u));
}

/// Peer `peer` publishes message `key` on `t` at `qos`.
fn publish(o: &mut Oracle, peer: PeerId, t: &str, key: u64, qos: QoS) {
    let mut p = Publish::new(topic(t), payload_of(key));
    p.qos = match qos {
        QoS::AtMostOnce => QosPid::AtMostOnce,
        QoS::AtLeastOnce => QosPid::AtLeastOnce(pid(key as u16)),
        QoS::ExactlyOnce => QosPid::ExactlyOnce(pid(key as u16)),
    };
    handled(o, peer, Packet::Publish(p));
}

/// Peer `peer`'s client received message `key` on `t`.
fn received(o: &mut Oracle, peer: PeerId, t: &str, key: u64, qos: QoS, retain: bool) {
    let msg = Message::new(topic(t), payload_of(key), qos, retain);
    let ev = ClientEvent::Message {
        msg,
        subscription_identifiers: Vec::new(),
        packet_id: None,
    };
    Observer::client_event(o, T0, peer, &ev);
}

/// The checks that failed at the end of the run.
fn failed(mut o: Oracle) -> Vec<Check> {
    let checks = o.finish();
    let mut kinds: Vec<Check> = checks.violations.iter().map(|v| v.check).collect();
    kinds.dedup();
    kinds
}

#[test]
fn a_faithful_trace_passes_every_check() {
    let mut o = oracle(2);
    subscribe(&mut o, 1, "a/#");
    publish(&mut o, 0, "a/b", 10, QoS::AtLeastOnce);
    publish(&mut o, 0, "a/b", 11, QoS::ExactlyOnce);
    received(&mut o, 1, "a/b", 10, QoS::AtLeastOnce, false);
    received(&mut o, 1, "a/b", 11, QoS::ExactlyOnce, false);
    assert_eq!(failed(o), []);
}

#[test]
fn a_qos1_message_never_delivered_fails_at_least_once() {
    let mut o = oracle(2);
    subscribe(&mut o, 1, "a");
    publish(&mut o, 0, "a", 10, QoS::AtLeastOnce);
    assert_eq!(failed(o), [Check::AtLeastOnce]);
}

#[test]
fn a_qos2_message_delivered_twice_fails_exactly_once() {
    let mut o = oracle(2);
    subscribe(&mut o, 1, "a");
    publish(&mut o, 0, "a", 10, QoS::ExactlyOnce);
    received(&mut o, 1, "a", 10, QoS::ExactlyOnce, false);
    received(&mut o, 1, "a", 10, QoS::ExactlyOnce, false);
    assert_eq!(failed(o), [Check::ExactlyOnce]);
}

#[test]
fn a_delivery_after_unsuback_fails_delivery_due() {
    let mut o = oracle(2);
    subscribe(&mut o, 1, "a");
    unsubscribe(&mut o, 1, "a");
    publish(&mut o, 0, "a", 10, QoS::AtLeastOnce);
    received(&mut o, 1, "a", 10, QoS::AtLeastOnce, false);
    assert_eq!(failed(o), [Check::DeliveryDue]);
}

#[test]
fn a_delivery_to_the_publisher_under_no_local_fails_delivery_due() {
    let mut o = oracle(1);
    let no_local = opts(QoS::AtLeastOnce, true, false, Default::default());
    subscribe_with(&mut o, 0, "a", no_local);
    publish(&mut o, 0, "a", 10, QoS::AtLeastOnce);
    received(&mut o, 0, "a", 10, QoS::AtLeastOnce, false);
    assert_eq!(failed(o), [Check::DeliveryDue]);
}

#[test]
fn messages_from_one_publisher_out_of_order_fail_order() {
    let mut o = oracle(2);
    subscribe(&mut o, 1, "a");
    publish(&mut o, 0, "a", 10, QoS::AtLeastOnce);
    publish(&mut o, 0, "a", 11, QoS::AtLeastOnce);
    received(&mut o, 1, "a", 11, QoS::AtLeastOnce, false);
    received(&mut o, 1, "a", 10, QoS::AtLeastOnce, false);
    assert_eq!(failed(o), [Check::Order]);
}

#[test]
fn a_qos_above_the_subscription_or_a_stray_retain_flag_fails_delivery_options() {
    let mut o = oracle(2);
    subscribe_with(&mut o, 1, "a", SubscriptionOptions::new(QoS::AtLeastOnce));
    publish(&mut o, 0, "a", 10, QoS::ExactlyOnce);
    received(&mut o, 1, "a", 10, QoS::ExactlyOnce, false);
    assert_eq!(failed(o), [Check::DeliveryOptions, Check::AtLeastOnce]);
    let mut o = oracle(2);
    subscribe(&mut o, 1, "a");
    publish(&mut o, 0, "a", 10, QoS::AtMostOnce);
    received(&mut o, 1, "a", 10, QoS::AtMostOnce, true);
    assert_eq!(failed(o), [Check::DeliveryOptions]);
}

#[test]
fn a_shared_message_to_two_members_of_one_group_fails_shared_once() {
    let mut o = oracle(3);
    subscribe(&mut o, 1, "$share/g/a");
    subscribe(&mut o, 2, "$share/g/a");
    publish(&mut o, 0, "a", 10, QoS::AtLeastOnce);
    received(&mut o, 1, "a", 10, QoS::AtLeastOnce, false);
    received(&mut o, 2, "a", 10, QoS::AtLeastOnce, false);
    assert_eq!(failed(o), [Check::SharedOnce]);
}

#[test]
fn a_message_on_another_topic_fails_topic() {
    let mut o = oracle(2);
    subscribe(&mut o, 1, "#");
    publish(&mut o, 0, "a", 10, QoS::AtMostOnce);
    received(&mut o, 1, "b", 10, QoS::AtMostOnce, false);
    assert_eq!(failed(o), [Check::Topic]);
}

#[test]
fn a_broker_without_the_sessions_the_model_holds_fails_sessions() {
    let mut o = oracle(1);
    let empty = Broker::new(broker_config());
    o.at_rest(T0, 0, &empty);
    assert_eq!(failed(o), [Check::Sessions]);
}

#[test]
fn a_will_the_broker_did_not_publish_fails_wills() {
    let mut o = oracle(0);
    o.bind(0, "w", 0);
    let mut c = connect_packet(V5, "w", true);
    if let Packet::Connect(c) = &mut c {
        c.will = Some(mqtt_sim::build::will("a", "1", None));
    }
    handled(&mut o, 0, c);
    let close = mqtt_session::Close {
        initiator: mqtt_session::Initiator::Transport,
        reason: mqtt_session::mqtt_codec::ReasonCode::UNSPECIFIED_ERROR,
        violation: None,
        will: None,
        props: Default::default(),
    };
    Observer::broker_closed(&mut o, T0, 0, 0, &close);
    let empty = Broker::new(broker_config());
    o.at_rest(T0, 0, &empty);
    let kinds = failed(o);
    assert!(kinds.contains(&Check::Wills), "{kinds:?}");
}
