//! Late subscriber catch-up, driven through the broker's own inputs with
//! stamps as a parallel driver gives them: reads stamped when their socket
//! was found readable, turns stamped before they are handled.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    Connect, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, QosPid, RetainHandling, Str,
    Subscribe, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName, Unsubscribe,
};

use super::{MAX_AGE_MS, MAX_BYTES, MAX_MESSAGES};
use crate::broker::{Access, Broker, BrokerConfig, ConnId, PeerInfo, Rights, Rule};
use crate::Instant;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A broker whose limits leave room for the eviction tests.
fn broker() -> Broker {
    let mut config = BrokerConfig::default();
    config.server.limits.max_queued = 4 * MAX_MESSAGES;
    config.server.limits.max_queued_qos0 = 4 * MAX_MESSAGES;
    config.server.limits.max_queued_bytes = 4 * MAX_BYTES;
    config.server.limits.max_packet_size = 4 * 1024 * 1024;
    Broker::new(config)
}

fn wire_len(p: &Packet) -> usize {
    let mut out = BytesMut::new();
    p.encode(ProtocolVersion::V5, &mut out).unwrap()
}

/// A 5.0 client connected as `name`, its CONNACK taken.
fn connect(b: &mut Broker, name: &'static str) -> ConnId {
    let id = b.open(at(0), PeerInfo::default()).unwrap();
    let connect = Packet::Connect(Box::new(Connect::new(
        ProtocolVersion::V5,
        Str::from_static(name),
    )));
    read(b, id, at(0), vec![connect]);
    received(b, id, at(0));
    id
}

/// A read without a stamp (a publisher's, say).
fn read(b: &mut Broker, id: ConnId, now: Instant, packets: Vec<Packet>) {
    let packets: Vec<_> = packets
        .into_iter()
        .map(|p| (p.clone(), wire_len(&p)))
        .collect();
    b.handle_packets(id, now, packets, None);
}

/// A read whose socket was found readable at stamp `read_at`.
fn read_at(b: &mut Broker, id: ConnId, now: Instant, read_at: u64, packets: Vec<Packet>) {
    let packets: Vec<_> = packets
        .into_iter()
        .map(|p| (p.clone(), wire_len(&p)))
        .collect();
    b.handle_packets_read_at(id, now, packets, None, read_at);
}

/// Everything the broker sent `id` since last time.
fn received(b: &mut Broker, id: ConnId, now: Instant) -> Vec<Packet> {
    let mut wire = BytesMut::new();
    while b.poll_transmit(id, now, &mut wire) > 0 {}
    let mut decoder = Decoder::with_version(ProtocolVersion::V5);
    core::iter::from_fn(|| decoder.decode(&mut wire).unwrap()).collect()
}

/// The topics and payloads of the PUBLISHes among `packets`.
fn messages(packets: &[Packet]) -> Vec<(String, Bytes)> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((
                p.topic.as_ref().unwrap().as_str().to_string(),
                p.payload.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn publish(topic: &'static str, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish::new(
        TopicName::from_static(topic),
        Bytes::from_static(payload),
    ))
}

fn subscribe(pid: u16, filters: &[(&'static str, SubscriptionOptions)]) -> Packet {
    Packet::Subscribe(Subscribe {
        id: PacketId::new(pid).unwrap(),
        props: Default::default(),
        filters: filters
            .iter()
            .map(|(f, o)| (TopicFilter::from_static(f), *o))
            .collect(),
    })
}

fn qos0() -> SubscriptionOptions {
    SubscriptionOptions::new(QoS::AtMostOnce)
}

fn one(topic: &str, payload: &'static [u8]) -> Vec<(String, Bytes)> {
    vec![(topic.to_string(), Bytes::from_static(payload))]
}

/// B's SUBSCRIBE was read (stamp 5) before A's PUBLISH, but the core got
/// A's read first (turn 7): B gets the message, as if the subscription had
/// been in place when it was routed. A message routed before B's read
/// (turn 3) is not caught up.
#[test]
fn a_message_routed_after_the_subscribe_was_read_reaches_the_late_subscriber() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    b.set_order(3);
    read(&mut b, pubr, at(1), vec![publish("t", b"before")]);
    b.set_order(7);
    read(&mut b, pubr, at(1), vec![publish("t", b"after")]);
    read_at(&mut b, sub, at(1), 5, vec![subscribe(1, &[("t", qos0())])]);
    let got = received(&mut b, sub, at(1));
    assert!(
        matches!(got.first(), Some(Packet::SubAck(_))),
        "SUBACK first"
    );
    assert_eq!(messages(&got), one("t", b"after"));
    assert_eq!(b.caught_up(), 1);
}

/// What catch-up delivers is what routing would have: the subscription's
/// QoS (at most the message's) and its Subscription Identifier.
#[test]
fn a_caught_up_message_carries_the_subscription_qos_and_identifier() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    b.set_order(2);
    let mut p = Publish::new(TopicName::from_static("t"), Bytes::from_static(b"m"));
    p.qos = QosPid::AtLeastOnce(PacketId::new(1).unwrap());
    read(&mut b, pubr, at(1), vec![Packet::Publish(p)]);
    let mut s = Subscribe {
        id: PacketId::new(1).unwrap(),
        props: Default::default(),
        filters: vec![(
            TopicFilter::from_static("t"),
            SubscriptionOptions::new(QoS::ExactlyOnce),
        )],
    };
    s.props.subscription_identifier = SubscriptionId::new(9);
    read_at(&mut b, sub, at(1), 1, vec![Packet::Subscribe(s)]);
    let got = received(&mut b, sub, at(1));
    let Some(Packet::Publish(m)) = got.get(1) else {
        panic!("no message after the SUBACK: {got:?}");
    };
    assert!(matches!(m.qos, QosPid::AtLeastOnce(_)), "min(1, 2)");
    assert_eq!(
        m.props.subscription_identifiers,
        vec![SubscriptionId::new(9).unwrap()]
    );
}

/// Without stamps (a driver that handles reads in arrival order, the
/// simulator) nothing is recorded and nothing caught up.
#[test]
fn without_stamps_nothing_is_caught_up() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    read(&mut b, pubr, at(1), vec![publish("t", b"m")]);
    read_at(&mut b, sub, at(1), 0, vec![subscribe(1, &[("t", qos0())])]);
    assert!(messages(&received(&mut b, sub, at(1))).is_empty());
    assert_eq!(b.caught_up(), 0);
}

/// A session that already had a subscription matching the message got it
/// through that one: the new subscription does not bring a second copy.
/// Two new filters matching the same message bring it once.
#[test]
fn a_message_is_caught_up_at_most_once_per_session() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    b.set_order(1);
    read_at(
        &mut b,
        sub,
        at(1),
        0,
        vec![subscribe(1, &[("x/#", qos0())])],
    );
    b.set_order(3);
    read(&mut b, pubr, at(1), vec![publish("x/y", b"m1")]);
    read_at(
        &mut b,
        sub,
        at(1),
        2,
        vec![subscribe(2, &[("x/y", qos0())])],
    );
    assert_eq!(messages(&received(&mut b, sub, at(1))), one("x/y", b"m1"));

    let other = connect(&mut b, "c");
    b.set_order(5);
    read(&mut b, pubr, at(1), vec![publish("z/y", b"m2")]);
    let both = [("z/#", qos0()), ("z/+", qos0())];
    read_at(&mut b, other, at(1), 4, vec![subscribe(1, &both)]);
    assert_eq!(messages(&received(&mut b, other, at(1))), one("z/y", b"m2"));
}

/// A retained message routed after the SUBSCRIBE was read is in its
/// retained replay already: it is not caught up a second time. With
/// Retain Handling 2 (no replay) it is caught up.
#[test]
fn a_retained_message_in_the_replay_is_not_caught_up_again() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    b.set_order(2);
    let mut p = Publish::new(TopicName::from_static("r"), Bytes::from_static(b"kept"));
    p.retain = true;
    read(&mut b, pubr, at(1), vec![Packet::Publish(p)]);
    read_at(&mut b, sub, at(1), 1, vec![subscribe(1, &[("r", qos0())])]);
    assert_eq!(messages(&received(&mut b, sub, at(1))), one("r", b"kept"));

    let other = connect(&mut b, "c");
    let mut no_replay = qos0();
    no_replay.retain_handling = RetainHandling::DoNotSend;
    read_at(
        &mut b,
        other,
        at(1),
        1,
        vec![subscribe(1, &[("r", no_replay)])],
    );
    assert_eq!(messages(&received(&mut b, other, at(1))), one("r", b"kept"));
}

/// A session that removed a matching subscription after the message was
/// routed may have got it through that one: a new subscription in the
/// same window does not bring it again.
#[test]
fn a_message_routed_before_an_unsubscribe_is_not_caught_up_to_that_session() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    b.set_order(1);
    read_at(
        &mut b,
        sub,
        at(1),
        0,
        vec![subscribe(1, &[("x/#", qos0())])],
    );
    b.set_order(3);
    read(&mut b, pubr, at(1), vec![publish("x/y", b"m")]);
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        id: PacketId::new(2).unwrap(),
        props: Default::default(),
        filters: vec![TopicFilter::from_static("x/#")],
    });
    read_at(
        &mut b,
        sub,
        at(1),
        2,
        vec![unsubscribe, subscribe(3, &[("x/y", qos0())])],
    );
    assert_eq!(messages(&received(&mut b, sub, at(1))), one("x/y", b"m"));
}

/// Catch-up checks the subscriber's read rights per message, as routing
/// does, and never gives a session its own message (its PUBLISH came
/// before its SUBSCRIBE on its own connection).
#[test]
fn catch_up_respects_read_rights_and_never_returns_a_session_its_own_message() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    let rights = Rights::from_rules([
        Rule::new(TopicFilter::from_static("#"), Access::ReadWrite),
        Rule::new(TopicFilter::from_static("secret/#"), Access::Deny),
    ]);
    assert!(b.set_session_rights(&Str::from_static("b"), rights));
    b.set_order(2);
    read(
        &mut b,
        pubr,
        at(1),
        vec![publish("secret/x", b"no"), publish("open/x", b"yes")],
    );
    read(&mut b, sub, at(1), vec![publish("own/x", b"mine")]);
    read_at(&mut b, sub, at(1), 1, vec![subscribe(1, &[("#", qos0())])]);
    assert_eq!(
        messages(&received(&mut b, sub, at(1))),
        one("open/x", b"yes")
    );
}

/// A shared subscription takes no part: the group's message went to one
/// member, perhaps before this one joined.
#[test]
fn a_shared_subscription_is_not_caught_up() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    b.set_order(2);
    read(&mut b, pubr, at(1), vec![publish("t", b"m")]);
    read_at(
        &mut b,
        sub,
        at(1),
        1,
        vec![subscribe(1, &[("$share/g/t", qos0())])],
    );
    assert!(messages(&received(&mut b, sub, at(1))).is_empty());
}

/// The ring keeps at most `MAX_MESSAGES` messages: the oldest go first.
#[test]
fn the_ring_forgets_the_oldest_message_past_its_count() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    b.set_order(2);
    read(&mut b, pubr, at(1), vec![publish("t", b"first")]);
    let rest = (0..MAX_MESSAGES).map(|_| publish("t", b"later")).collect();
    read(&mut b, pubr, at(1), rest);
    read_at(&mut b, sub, at(1), 1, vec![subscribe(1, &[("t", qos0())])]);
    let got = messages(&received(&mut b, sub, at(1)));
    assert_eq!(got.len(), MAX_MESSAGES);
    assert!(got.iter().all(|(_, p)| p.as_ref() == b"later"));
}

/// The ring holds at most `MAX_BYTES` of messages: the oldest go first.
#[test]
fn the_ring_forgets_the_oldest_message_past_its_bytes() {
    let mut b = broker();
    let (pubr, sub) = (connect(&mut b, "a"), connect(&mut b, "b"));
    b.set_order(2);
    let big = Bytes::from(vec![7u8; MAX_BYTES / 4]);
    let topics = ["t/0", "t/1", "t/2", "t/3", "t/4"];
    let published = topics
        .iter()
        .map(|t| Packet::Publish(Publish::new(TopicName::from_static(t), big.clone())))
        .collect();
    read(&mut b, pubr, at(1), published);
    read_at(
        &mut b,
        sub,
        at(1),
        1,
        vec![subscribe(1, &[("t/#", qos0())])],
    );
    let got: Vec<String> = messages(&received(&mut b, sub, at(1)))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    // Five quarters do not fit (topics count too): the first two went.
    assert_eq!(got, ["t/2", "t/3", "t/4"]);
}

/// The ring keeps messages `MAX_AGE_MS` of driver time: older ones are not
/// caught up.
#[test]
fn the_ring_forgets_messages_past_their_age() {
    let mut b = broker();
    let (pubr, sub, late) = (
        connect(&mut b, "a"),
        connect(&mut b, "b"),
        connect(&mut b, "c"),
    );
    b.set_order(2);
    read(&mut b, pubr, at(10), vec![publish("t", b"m")]);
    read_at(
        &mut b,
        sub,
        at(10 + MAX_AGE_MS),
        1,
        vec![subscribe(1, &[("t", qos0())])],
    );
    assert_eq!(messages(&received(&mut b, sub, at(60))), one("t", b"m"));
    read_at(
        &mut b,
        late,
        at(11 + MAX_AGE_MS),
        1,
        vec![subscribe(1, &[("t", qos0())])],
    );
    assert!(messages(&received(&mut b, late, at(61))).is_empty());
}
