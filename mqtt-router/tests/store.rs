//! The store seam of the broker core, with the core alone: records out
//! (`poll_store`), output held until they are reported stored
//! (`handle_stored`), and the state given back after a crash (`restore`),
//! through `StoreImage`, the in-memory meaning of the records.

/// The adapter hands bytes to the broker (`handle_read`, `poll_transmit`).
const PACKET_PATH: bool = false;

// On mqtt-sim's simulator with a durable store (`Sim::durable`): records
// committed within the instant, crash and restart from what was committed.
mod common;

use bytes::Bytes;
use common::*;
use mqtt_router::broker::{
    MessageId, OutgoingState, RestoreError, RestoredMessage, RestoredOutgoing, RestoredSession,
    RestoredState, StoreRecord,
};
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{Ack, Packet, PacketId, Publish, QoS, QosPid, ReasonCode};
use mqtt_session::{ClientEvent, DeliveryOptions};

fn published(sim: &mut Sim, i: usize) -> usize {
    sim.peer(i)
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Published { .. }))
        .count()
}

fn suback_count(sim: &mut Sim, i: usize) -> usize {
    sim.peer(i)
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Subscribed { .. }))
        .count()
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// A persistent subscriber `s` to `f` at `qos`, gone offline.
fn offline_subscriber(sim: &mut Sim, v: mqtt_session::mqtt_codec::ProtocolVersion, f: &str) {
    let (i, _) = sim.connect_ok(persistent(v, "sub", 3600));
    assert_eq!(sim.subscribe(i, f, QoS::ExactlyOnce), ReasonCode(2));
    sim.disconnect(i, ReasonCode::SUCCESS);
}

#[test]
fn an_ack_is_not_sent_before_its_records_are_reported_stored() {
    for v in VERSIONS {
        let mut sim = durable_sim(broker_config());
        offline_subscriber(&mut sim, v, "a/#");
        let (p, _) = sim.connect_ok(cfg(v, "pub"));
        sim.pause_store(0, true);
        let now = sim.now;
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            sim.client(p)
                .publish(now, msg("a/1", "x", qos, false))
                .unwrap();
        }
        sim.run_until_idle();
        assert_eq!(published(&mut sim, p), 0, "{v:?}: acknowledged unstored");
        assert!(sim.store_image(0).message_count() == 0);
        sim.pause_store(0, false);
        sim.run_until_idle();
        assert_eq!(published(&mut sim, p), 2, "{v:?}");
        assert_eq!(sim.store_image(0).message_count(), 2, "a body per message");
    }
}

#[test]
fn a_suback_of_a_persistent_session_waits_for_its_subscription_to_be_stored() {
    for v in VERSIONS {
        let mut sim = durable_sim(broker_config());
        let (i, _) = sim.connect_ok(persistent(v, "s", 3600));
        sim.pause_store(0, true);
        let now = sim.now;
        sim.client(i)
            .subscribe(
                now,
                vec![(
                    filter("t"),
                    mqtt_session::mqtt_codec::SubscriptionOptions::new(QoS::AtLeastOnce),
                )],
                None,
            )
            .unwrap();
        sim.run_until_idle();
        assert_eq!(suback_count(&mut sim, i), 0, "{v:?}");
        sim.pause_store(0, false);
        sim.run_until_idle();
        assert_eq!(suback_count(&mut sim, i), 1, "{v:?}");
    }
}

#[test]
fn without_persistent_subscribers_or_retain_nothing_is_written_or_held() {
    for v in VERSIONS {
        let mut sim = durable_sim(broker_config());
        let (s, _) = sim.connect_ok(cfg(v, "online"));
        sim.subscribe(s, "t", QoS::AtLeastOnce);
        let (p, _) = sim.connect_ok(cfg(v, "pub"));
        sim.pause_store(0, true);
        assert_eq!(
            sim.publish(p, msg("t", "x", QoS::AtLeastOnce, false)),
            Some(ReasonCode::SUCCESS)
        );
        let mut records = Vec::new();
        assert_eq!(
            sim.broker_mut().poll_store(&mut records),
            None,
            "{records:?}"
        );
    }
}

#[test]
fn a_broker_without_a_store_emits_no_records() {
    let mut sim = Sim::new(broker_config());
    let (i, _) = sim.connect_ok(persistent(V311, "s", 0));
    sim.subscribe(i, "t", QoS::AtLeastOnce);
    let mut records = Vec::new();
    assert!(!sim.broker_mut().is_durable());
    assert_eq!(sim.broker_mut().poll_store(&mut records), None);
}

#[test]
fn restore_gives_back_sessions_subscriptions_queued_messages_and_retained() {
    for v in VERSIONS {
        let mut sim = durable_sim(broker_config());
        offline_subscriber(&mut sim, v, "a/#");
        let (p, _) = sim.connect_ok(cfg(v, "pub"));
        for (n, qos) in [
            (1, QoS::AtLeastOnce),
            (2, QoS::ExactlyOnce),
            (3, QoS::AtLeastOnce),
        ] {
            sim.publish(p, msg("a/m", &n.to_string(), qos, false));
        }
        sim.publish(p, msg("a/r", "kept", QoS::AtLeastOnce, true));
        sim.crash_and_restart(secs(1));

        let (s, present) = sim.connect_ok(persistent(v, "sub", 3600));
        assert!(present, "{v:?}: the session is back");
        assert_eq!(sim.payloads(s), ["1", "2", "3", "kept"], "{v:?}");
        // The subscription is back too: a new message reaches it.
        let (p, _) = sim.connect_ok(cfg(v, "pub2"));
        sim.publish(p, msg("a/m", "4", QoS::AtLeastOnce, false));
        assert_eq!(sim.payloads(s), ["4"], "{v:?}");
        // And the retained message, for a new subscription.
        let (n, _) = sim.connect_ok(cfg(v, "new"));
        sim.subscribe(n, "a/r", QoS::AtLeastOnce);
        assert_eq!(sim.payloads(n), ["kept"], "{v:?}");
        // Everything delivered and acknowledged: no body left.
        assert_eq!(sim.store_image(0).message_count(), 0, "{v:?}");
    }
}

#[test]
fn subscription_options_and_identifiers_survive_a_restart() {
    let mut sim = durable_sim(broker_config());
    let (i, _) = sim.connect_ok(persistent(V5, "s", 3600));
    let o = opts(
        QoS::AtLeastOnce,
        true,
        true,
        mqtt_session::mqtt_codec::RetainHandling::DoNotSend,
    );
    sim.subscribe_with(i, &[("x/+", o)], Some(42));
    sim.disconnect(i, ReasonCode::SUCCESS);
    sim.crash_and_restart(secs(1));
    let (i, present) = sim.connect_ok(persistent(V5, "s", 3600));
    assert!(present);
    // No Local: its own message does not come back; another's does, with
    // the identifier and RETAIN as published.
    sim.publish(i, msg("x/1", "own", QoS::AtLeastOnce, false));
    let (p, _) = sim.connect_ok(cfg(V5, "p"));
    sim.publish(p, msg("x/2", "other", QoS::AtLeastOnce, true));
    let got = sim.messages(i);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].payload.as_str(), got[0].retain), ("other", true));
    assert_eq!(got[0].sub_ids, [42]);
}

/// A raw 3.1.1 client that keeps its session (Clean Session 0).
fn raw_persistent(sim: &mut Sim, id: &str) -> usize {
    let r = sim.raw(V311);
    sim.send_raw(r, &encode(V311, &[connect_packet(V311, id, false)]));
    r
}

fn raw_publish(id: u16, qos: QoS, payload: &'static str, dup: bool) -> Packet {
    let mut p = Publish::new(topic("q/t"), Bytes::from_static(payload.as_bytes()));
    p.qos = QosPid::from_qos(qos, pid(id));
    p.dup = dup;
    Packet::Publish(p)
}

#[test]
fn in_flight_messages_keep_their_packet_ids_and_pubrel_state() {
    let mut sim = durable_sim(broker_config());
    let s = raw_persistent(&mut sim, "raw");
    let sub = mqtt_session::mqtt_codec::Subscribe {
        id: pid(1),
        props: Default::default(),
        filters: vec![(
            filter("q/#"),
            mqtt_session::mqtt_codec::SubscriptionOptions::new(QoS::ExactlyOnce),
        )],
    };
    sim.send_raw(s, &encode(V311, &[Packet::Subscribe(sub)]));
    let (p, _) = sim.connect_ok(cfg(V311, "pub"));
    sim.publish(p, msg("q/t", "two", QoS::ExactlyOnce, false));
    sim.publish(p, msg("q/t", "one", QoS::AtLeastOnce, false));
    let ids: Vec<(u16, QoS)> = sim
        .peer(s)
        .received
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((p.qos.packet_id()?.get(), p.qos.qos())),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [(1, QoS::ExactlyOnce), (2, QoS::AtLeastOnce)]);
    // PUBREC for the QoS 2 one; the QoS 1 one is never acknowledged.
    sim.send_raw(s, &encode(V311, &[Packet::PubRec(Ack::new(pid(1)))]));
    assert!(matches!(sim.peer(s).received.last(), Some(Packet::PubRel(a)) if a.id == pid(1)));

    sim.crash_and_restart(secs(1));
    let s = raw_persistent(&mut sim, "raw");
    let after: Vec<String> = sim
        .peer(s)
        .received
        .iter()
        .map(|p| format!("{p:?}"))
        .collect();
    let rel = sim
        .peer(s)
        .received
        .iter()
        .position(|p| matches!(p, Packet::PubRel(a) if a.id == pid(1)));
    let publish = sim.peer(s).received.iter().position(|p| {
        matches!(p, Packet::Publish(pb) if pb.qos == QosPid::from_qos(QoS::AtLeastOnce, pid(2)) && &pb.payload[..] == b"one")
    });
    assert!(rel.is_some() && publish.is_some(), "{after:?}");
    assert!(
        rel < publish,
        "PUBREL first, then the resent PUBLISH: {after:?}"
    );
    assert_eq!(
        sim.peer(s)
            .received
            .iter()
            .filter(|p| matches!(p, Packet::Publish(_)))
            .count(),
        1
    );
}

#[test]
fn qos2_incoming_ids_survive_a_restart_so_a_resend_is_not_delivered_twice() {
    let mut sim = durable_sim(broker_config());
    offline_subscriber(&mut sim, V311, "q/#");
    let p = raw_persistent(&mut sim, "rawpub");
    sim.send_raw(
        p,
        &encode(V311, &[raw_publish(7, QoS::ExactlyOnce, "once", false)]),
    );
    assert!(matches!(sim.peer(p).received.last(), Some(Packet::PubRec(a)) if a.id == pid(7)));

    sim.crash_and_restart(secs(1));
    let p = raw_persistent(&mut sim, "rawpub");
    // The publisher never saw PUBCOMP: it resends, then releases.
    sim.send_raw(
        p,
        &encode(V311, &[raw_publish(7, QoS::ExactlyOnce, "once", true)]),
    );
    sim.send_raw(p, &encode(V311, &[Packet::PubRel(Ack::new(pid(7)))]));
    assert!(matches!(sim.peer(p).received.last(), Some(Packet::PubComp(a)) if a.id == pid(7)));
    let (s, _) = sim.connect_ok(persistent(V311, "sub", 3600));
    assert_eq!(sim.payloads(s), ["once"]);
    // Released: the identifier is free again, for a new message.
    sim.send_raw(
        p,
        &encode(V311, &[raw_publish(7, QoS::ExactlyOnce, "new", false)]),
    );
    sim.send_raw(p, &encode(V311, &[Packet::PubRel(Ack::new(pid(7)))]));
    assert_eq!(sim.payloads(s), ["new"]);
}

/// How many PUBLISH packets raw client `i` has received.
fn publishes(sim: &mut Sim, i: usize) -> usize {
    sim.peer(i)
        .received
        .iter()
        .filter(|p| matches!(p, Packet::Publish(_)))
        .count()
}

#[test]
fn a_qos2_message_to_an_online_subscriber_is_not_delivered_twice_across_a_crash() {
    let mut sim = durable_sim(broker_config());
    let raw_subscriber = |sim: &mut Sim| {
        let s = raw_persistent(sim, "rawsub");
        let sub = mqtt_session::mqtt_codec::Subscribe {
            id: pid(1),
            props: Default::default(),
            filters: vec![(
                filter("q/#"),
                mqtt_session::mqtt_codec::SubscriptionOptions::new(QoS::ExactlyOnce),
            )],
        };
        sim.send_raw(s, &encode(V311, &[Packet::Subscribe(sub)]));
        s
    };
    let s = raw_subscriber(&mut sim);
    let p = raw_persistent(&mut sim, "rawpub");
    sim.pause_store(0, true);
    sim.send_raw(
        p,
        &encode(V311, &[raw_publish(7, QoS::ExactlyOnce, "once", false)]),
    );
    assert!(
        !matches!(sim.peer(p).received.last(), Some(Packet::PubRec(_))),
        "PUBREC before the message is stored"
    );
    let before = publishes(&mut sim, s);
    assert_eq!(before, 0, "the PUBLISH went out before it was stored");

    // The crash forgets the message: the publisher never had its PUBREC.
    sim.crash_and_restart(secs(1));
    let s = raw_persistent(&mut sim, "rawsub");
    let p = raw_persistent(&mut sim, "rawpub");
    sim.send_raw(
        p,
        &encode(V311, &[raw_publish(7, QoS::ExactlyOnce, "once", true)]),
    );
    sim.send_raw(p, &encode(V311, &[Packet::PubRel(Ack::new(pid(7)))]));
    assert!(matches!(sim.peer(p).received.last(), Some(Packet::PubComp(a)) if a.id == pid(7)));
    assert_eq!(before + publishes(&mut sim, s), 1, "delivered twice");
}

#[test]
fn an_in_flight_publish_restored_from_the_store_is_resent_with_dup() {
    let mut sim = durable_sim(broker_config());
    let s = raw_persistent(&mut sim, "raw");
    let sub = mqtt_session::mqtt_codec::Subscribe {
        id: pid(1),
        props: Default::default(),
        filters: vec![(
            filter("q/#"),
            mqtt_session::mqtt_codec::SubscriptionOptions::new(QoS::AtLeastOnce),
        )],
    };
    sim.send_raw(s, &encode(V311, &[Packet::Subscribe(sub)]));
    let (p, _) = sim.connect_ok(cfg(V311, "pub"));
    sim.publish(p, msg("q/t", "one", QoS::AtLeastOnce, false));
    // Sent, never acknowledged: the subscriber may have it.
    assert_eq!(publishes(&mut sim, s), 1);

    sim.crash_and_restart(secs(1));
    let s = raw_persistent(&mut sim, "raw");
    let dups: Vec<bool> = sim
        .peer(s)
        .received
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p.dup),
            _ => None,
        })
        .collect();
    // A re-delivery carries DUP=1 [MQTT-3.3.1-1].
    assert_eq!(dups, [true]);
}

#[test]
fn a_qos1_message_to_an_online_subscriber_is_not_held_for_the_store() {
    let mut sim = durable_sim(broker_config());
    let (s, _) = sim.connect_ok(persistent(V311, "sub", 3600));
    assert_eq!(sim.subscribe(s, "q/#", QoS::AtLeastOnce), ReasonCode(1));
    let (p, _) = sim.connect_ok(cfg(V311, "pub"));
    sim.pause_store(0, true);
    let now = sim.now;
    sim.client(p)
        .publish(now, msg("q/t", "fast", QoS::AtLeastOnce, false))
        .unwrap();
    sim.run_until_idle();
    assert_eq!(published(&mut sim, p), 0, "acknowledged unstored");
    // At least once: a second copy after a crash is allowed, so the
    // subscriber need not wait for the disk.
    assert_eq!(sim.payloads(s), ["fast"]);
}

#[test]
fn a_pubcomp_waits_for_the_release_to_be_stored() {
    let mut sim = durable_sim(broker_config());
    let p = raw_persistent(&mut sim, "rawpub");
    sim.send_raw(
        p,
        &encode(V311, &[raw_publish(3, QoS::ExactlyOnce, "x", false)]),
    );
    sim.pause_store(0, true);
    sim.send_raw(p, &encode(V311, &[Packet::PubRel(Ack::new(pid(3)))]));
    assert!(!sim
        .peer(p)
        .received
        .iter()
        .any(|p| matches!(p, Packet::PubComp(_))));
    sim.pause_store(0, false);
    sim.run_until_idle();
    assert!(matches!(sim.peer(p).received.last(), Some(Packet::PubComp(a)) if a.id == pid(3)));
}

#[test]
fn a_delayed_will_survives_a_restart_and_is_published_when_due() {
    let mut sim = durable_sim(broker_config());
    offline_subscriber(&mut sim, V5, "will/#");
    let mut c = persistent(V5, "dying", 3600);
    c.will = Some(will("will/dying", "gone", Some(10)));
    let (w, _) = sim.connect_ok(c);
    sim.drop_transport(w);
    sim.advance(secs(2));
    sim.crash_and_restart(secs(3));
    sim.advance(secs(4));
    let (s, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert!(sim.payloads(s).is_empty(), "not due yet");
    sim.advance(secs(2));
    assert_eq!(sim.payloads(s), ["gone"]);
}

#[test]
fn a_will_that_came_due_while_the_broker_was_down_is_published_at_restart() {
    let mut sim = durable_sim(broker_config());
    offline_subscriber(&mut sim, V5, "will/#");
    let mut c = persistent(V5, "dying", 3600);
    c.will = Some(will("will/dying", "gone", Some(10)));
    let (w, _) = sim.connect_ok(c);
    sim.drop_transport(w);
    sim.crash_and_restart(secs(60));
    let (s, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert_eq!(sim.payloads(s), ["gone"]);
}

#[test]
fn session_expiry_keeps_counting_while_the_broker_is_down() {
    let mut sim = durable_sim(broker_config());
    let (i, _) = sim.connect_ok(persistent(V5, "short", 5));
    sim.subscribe(i, "t", QoS::AtLeastOnce);
    sim.disconnect(i, ReasonCode::SUCCESS);
    let (i, _) = sim.connect_ok(persistent(V5, "long", 3600));
    sim.disconnect(i, ReasonCode::SUCCESS);
    sim.crash_and_restart(secs(10));
    sim.run_until_idle();
    assert_eq!(sim.store_image(0).session_count(), 1);
    let (_, present) = sim.connect_ok(persistent(V5, "short", 5));
    assert!(!present, "expired while the broker was down");
    let (_, present) = sim.connect_ok(persistent(V5, "long", 3600));
    assert!(present);
}

#[test]
fn a_retained_message_expires_while_the_broker_is_down() {
    let mut sim = durable_sim(broker_config());
    let (p, _) = sim.connect_ok(cfg(V5, "p"));
    let mut m = msg("r/short", "x", QoS::AtLeastOnce, true);
    m.props.expires_at = Some(sim.now.plus_secs(5));
    sim.publish(p, m);
    sim.publish(p, msg("r/long", "y", QoS::AtLeastOnce, true));
    sim.crash_and_restart(secs(10));
    let (n, _) = sim.connect_ok(cfg(V5, "n"));
    sim.subscribe(n, "r/#", QoS::AtLeastOnce);
    assert_eq!(sim.payloads(n), ["y"]);
    assert_eq!(sim.store_image(0).retained_count(), 1);
}

#[test]
fn a_session_connected_at_the_crash_is_back_and_counts_its_expiry_from_the_restart() {
    let mut sim = durable_sim(broker_config());
    let (i, _) = sim.connect_ok(persistent(V5, "c", 30));
    sim.subscribe(i, "t", QoS::AtLeastOnce);
    sim.crash_and_restart(secs(100));
    let (p, _) = sim.connect_ok(cfg(V5, "p"));
    sim.publish(p, msg("t", "while away", QoS::AtLeastOnce, false));
    sim.advance(secs(20));
    let (i, present) = sim.connect_ok(persistent(V5, "c", 30));
    assert!(present);
    assert_eq!(sim.payloads(i), ["while away"]);
}

#[test]
fn bodies_are_stored_once_and_deleted_with_their_last_holder() {
    let mut sim = durable_sim(broker_config());
    for id in ["a", "b"] {
        let (i, _) = sim.connect_ok(persistent(V311, id, 0));
        sim.subscribe(i, "t", QoS::AtLeastOnce);
        sim.disconnect(i, ReasonCode::SUCCESS);
    }
    let (p, _) = sim.connect_ok(cfg(V311, "p"));
    sim.publish(p, msg("t", "x", QoS::AtLeastOnce, false));
    assert_eq!(sim.store_image(0).message_count(), 1);
    let (a, _) = sim.connect_ok(persistent(V311, "a", 0));
    assert_eq!(sim.payloads(a), ["x"]);
    assert_eq!(sim.store_image(0).message_count(), 1, "b still holds it");
    let (b, _) = sim.connect_ok(persistent(V311, "b", 0));
    assert_eq!(sim.payloads(b), ["x"]);
    assert_eq!(sim.store_image(0).message_count(), 0);
}

#[test]
fn sessions_that_end_at_disconnect_and_qos0_messages_are_not_written() {
    let mut sim = durable_sim(broker_config());
    let (i, _) = sim.connect_ok(cfg(V5, "clean"));
    sim.subscribe(i, "t", QoS::AtLeastOnce);
    offline_subscriber(&mut sim, V5, "t");
    let (p, _) = sim.connect_ok(cfg(V5, "p"));
    sim.publish(p, msg("t", "x", QoS::AtMostOnce, false));
    let image = sim.store_image(0);
    assert_eq!((image.session_count(), image.message_count()), (1, 0));
}

#[test]
fn a_clean_start_ends_the_stored_session() {
    let mut sim = durable_sim(broker_config());
    offline_subscriber(&mut sim, V5, "t");
    let (p, _) = sim.connect_ok(cfg(V5, "p"));
    sim.publish(p, msg("t", "x", QoS::AtLeastOnce, false));
    let (_, present) = sim.connect_ok(cfg(V5, "sub"));
    assert!(!present);
    let image = sim.store_image(0);
    assert_eq!((image.session_count(), image.message_count()), (0, 0));
}

#[test]
fn restore_refuses_a_used_broker_and_a_missing_body() {
    let mut sim = durable_sim(broker_config());
    let wall = sim.wall();
    assert_eq!(
        sim.broker_mut()
            .restore(Instant::ZERO, wall, RestoredState::default()),
        Err(RestoreError::NotFresh)
    );
    let mut fresh = Sim::new(broker_config());
    let state = RestoredState {
        sessions: vec![RestoredSession {
            client_id: s("x"),
            username: None,
            expiry: 60,
            detached: Some(None),
            will: None,
            connected_will: None,
            subscriptions: Vec::new(),
            outgoing: vec![RestoredOutgoing {
                packet_id: pid(1),
                order: 1,
                state: OutgoingState::Publish {
                    message: MessageId(9),
                    options: DeliveryOptions::new(QoS::AtLeastOnce),
                },
            }],
            incoming: Vec::new(),
        }],
        ..RestoredState::default()
    };
    assert!(matches!(
        fresh
            .broker_mut()
            .restore(Instant::ZERO, mqtt_sim::wall_at(Instant::ZERO), state),
        Err(RestoreError::MissingMessage {
            message: MessageId(9),
            ..
        })
    ));
}

#[test]
fn restore_refuses_sequence_numbers_that_would_overflow() {
    let mut fresh = Sim::new(broker_config());
    let state = RestoredState {
        messages: vec![RestoredMessage {
            id: MessageId(u64::MAX),
            message: msg("t", "x", QoS::AtLeastOnce, false),
            expires_at: None,
        }],
        ..RestoredState::default()
    };
    assert!(matches!(
        fresh
            .broker_mut()
            .restore(Instant::ZERO, mqtt_sim::wall_at(Instant::ZERO), state),
        Err(RestoreError::NumberTooLarge {
            value: u64::MAX,
            ..
        })
    ));
    let mut fresh = Sim::new(broker_config());
    let state = RestoredState {
        messages: vec![RestoredMessage {
            id: MessageId(9),
            message: msg("t", "x", QoS::AtLeastOnce, false),
            expires_at: None,
        }],
        sessions: vec![RestoredSession {
            client_id: s("x"),
            username: None,
            expiry: 60,
            detached: Some(None),
            will: None,
            connected_will: None,
            subscriptions: Vec::new(),
            outgoing: vec![RestoredOutgoing {
                packet_id: pid(1),
                order: u64::MAX,
                state: OutgoingState::Publish {
                    message: MessageId(9),
                    options: DeliveryOptions::new(QoS::AtLeastOnce),
                },
            }],
            incoming: Vec::new(),
        }],
        ..RestoredState::default()
    };
    assert!(matches!(
        fresh
            .broker_mut()
            .restore(Instant::ZERO, mqtt_sim::wall_at(Instant::ZERO), state),
        Err(RestoreError::NumberTooLarge {
            what: "record order",
            ..
        })
    ));
}

#[test]
fn records_come_out_in_order_and_name_one_body_per_message() {
    let mut sim = durable_sim(broker_config());
    for id in ["a", "b"] {
        let (i, _) = sim.connect_ok(persistent(V311, id, 0));
        sim.subscribe(i, "t", QoS::AtLeastOnce);
        sim.disconnect(i, ReasonCode::SUCCESS);
    }
    sim.pause_store(0, true);
    let (p, _) = sim.connect_ok(cfg(V311, "p"));
    let now = sim.now;
    sim.client(p)
        .publish(now, msg("t", "x", QoS::AtLeastOnce, false))
        .unwrap();
    sim.run_until_idle();
    let mut records = Vec::new();
    let up_to = sim.broker_mut().poll_store(&mut records).unwrap();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| match r {
            StoreRecord::MessageStored { .. } => "body",
            StoreRecord::Queued { .. } => "queued",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["body", "queued", "queued"]);
    assert!(up_to >= 3);
    assert_eq!(sim.broker_mut().poll_store(&mut records), None);
}

#[test]
fn while_the_store_fails_new_persistent_work_is_refused_with_0x97() {
    let mut sim = durable_sim(broker_config());
    offline_subscriber(&mut sim, V5, "d/#");
    let (p, _) = sim.connect_ok(cfg(V5, "pub"));
    let (o, _) = sim.connect_ok(cfg(V5, "online"));
    sim.subscribe(o, "m/#", QoS::AtLeastOnce);
    sim.broker_mut().set_store_failing(true);
    assert!(sim.broker_mut().store_failing());
    // A message for a persistent session, a retained one: refused.
    assert_eq!(
        sim.publish(p, msg("d/1", "x", QoS::AtLeastOnce, false)),
        Some(ReasonCode::QUOTA_EXCEEDED)
    );
    assert_eq!(
        sim.publish(p, msg("m/r", "x", QoS::AtLeastOnce, true)),
        Some(ReasonCode::QUOTA_EXCEEDED)
    );
    // One for connected clean sessions only: delivered as ever.
    assert_eq!(
        sim.publish(p, msg("m/1", "y", QoS::AtLeastOnce, false)),
        Some(ReasonCode::SUCCESS)
    );
    assert_eq!(sim.payloads(o), ["y"]);
    // A new persistent session, a persistent session's subscription: refused.
    let i = sim.connect(persistent(V5, "new", 60));
    assert_eq!(sim.connack(i), Err(ReasonCode::QUOTA_EXCEEDED));
    sim.broker_mut().set_store_failing(false);
    let (i, _) = sim.connect_ok(persistent(V5, "new", 60));
    sim.broker_mut().set_store_failing(true);
    assert_eq!(
        sim.subscribe(i, "z", QoS::AtLeastOnce),
        ReasonCode::QUOTA_EXCEEDED
    );
    sim.broker_mut().set_store_failing(false);
    assert_eq!(sim.subscribe(i, "z", QoS::AtLeastOnce), ReasonCode(1));
}

#[test]
fn a_subscribers_acknowledgements_do_not_hold_its_next_messages() {
    for v in VERSIONS {
        let mut sim = durable_sim(broker_config());
        let (s, _) = sim.connect_ok(persistent(v, "sub", 3600));
        sim.subscribe(s, "t", QoS::ExactlyOnce);
        let (p, _) = sim.connect_ok(cfg(v, "pub"));
        sim.pause_store(0, true);
        for (n, qos) in [
            ("1", QoS::AtLeastOnce),
            ("2", QoS::AtLeastOnce),
            ("3", QoS::AtLeastOnce),
        ] {
            let now = sim.now;
            sim.client(p).publish(now, msg("t", n, qos, false)).unwrap();
            sim.run_until_idle();
        }
        // Nothing stored, yet every message reached the connected
        // subscriber, whose own PUBACKs promise it nothing.
        assert_eq!(sim.payloads(s), ["1", "2", "3"], "{v:?}");
        assert_eq!(
            published(&mut sim, p),
            0,
            "{v:?}: the publisher waits for the store"
        );
        sim.pause_store(0, false);
        sim.run_until_idle();
        assert_eq!(published(&mut sim, p), 3, "{v:?}");
    }
}

#[test]
fn a_pubrel_to_a_subscriber_waits_for_its_state_to_be_stored() {
    let mut sim = durable_sim(broker_config());
    let s = raw_persistent(&mut sim, "raw");
    let sub = mqtt_session::mqtt_codec::Subscribe {
        id: pid(1),
        props: Default::default(),
        filters: vec![(
            filter("q/#"),
            mqtt_session::mqtt_codec::SubscriptionOptions::new(QoS::ExactlyOnce),
        )],
    };
    sim.send_raw(s, &encode(V311, &[Packet::Subscribe(sub)]));
    let (p, _) = sim.connect_ok(cfg(V311, "pub"));
    sim.publish(p, msg("q/t", "two", QoS::ExactlyOnce, false));
    sim.pause_store(0, true);
    sim.send_raw(s, &encode(V311, &[Packet::PubRec(Ack::new(pid(1)))]));
    let pubrel = |sim: &mut Sim| {
        sim.peer(s)
            .received
            .iter()
            .any(|p| matches!(p, Packet::PubRel(_)))
    };
    assert!(!pubrel(&mut sim), "PUBREL before its state was stored");
    sim.pause_store(0, false);
    sim.run_until_idle();
    assert!(pubrel(&mut sim));
}

#[test]
fn a_bridge_queue_survives_a_restart_and_goes_out_when_the_bridge_opens() {
    use mqtt_router::broker::{BridgeOptions, BridgeOutcome, BridgeState};
    let open = |sim: &mut Sim| {
        let now = sim.now;
        let opened = sim
            .broker_mut()
            .open_bridge(
                now,
                "br",
                vec![(filter("b/#"), QoS::AtLeastOnce)],
                BridgeOptions::new(100),
            )
            .unwrap();
        opened.id
    };
    let mut sim = durable_sim(broker_config());
    open(&mut sim);
    let (p, _) = sim.connect_ok(cfg(V5, "p"));
    for n in ["1", "2"] {
        assert_eq!(
            sim.publish(p, msg("b/x", n, QoS::AtLeastOnce, false)),
            Some(ReasonCode::SUCCESS)
        );
    }
    sim.crash_and_restart(secs(1));
    let id = open(&mut sim);
    sim.broker_mut()
        .set_bridge_state(id, BridgeState::Connected);
    let now = sim.now;
    let first = sim
        .broker_mut()
        .poll_bridge(id, now)
        .expect("the stored queue is back");
    assert_eq!(&first.message.payload[..], b"1");
    sim.broker_mut()
        .bridge_settled(id, now, first.token, BridgeOutcome::Delivered);
    sim.run_until_idle();
    // The first one was settled before this crash: only the second is back.
    sim.crash_and_restart(secs(1));
    let id = open(&mut sim);
    sim.broker_mut()
        .set_bridge_state(id, BridgeState::Connected);
    let now = sim.now;
    let again = sim
        .broker_mut()
        .poll_bridge(id, now)
        .expect("the second is still there");
    assert_eq!(&again.message.payload[..], b"2");
    assert!(sim.broker_mut().poll_bridge(id, now).is_none());
}

#[test]
fn the_will_of_a_client_connected_at_the_crash_is_published_after_its_delay() {
    let mut sim = durable_sim(broker_config());
    offline_subscriber(&mut sim, V5, "will/#");
    let mut c = persistent(V5, "dying", 3600);
    c.will = Some(will("will/dying", "gone", Some(10)));
    sim.connect_ok(c);
    // The broker dies while the client is connected: that connection ended
    // without DISCONNECT.
    sim.crash_and_restart(secs(1));
    sim.advance(secs(9));
    let (s, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert!(sim.payloads(s).is_empty(), "published before its delay");
    sim.advance(secs(2));
    assert_eq!(sim.payloads(s), ["gone"]);
}

#[test]
fn a_client_that_returns_in_time_after_a_crash_cancels_its_will() {
    let mut sim = durable_sim(broker_config());
    offline_subscriber(&mut sim, V5, "will/#");
    let mut c = persistent(V5, "back", 3600);
    c.will = Some(will("will/back", "gone", Some(10)));
    sim.connect_ok(c.clone());
    sim.crash_and_restart(secs(1));
    sim.advance(secs(3));
    let (_, present) = sim.connect_ok(c);
    assert!(present);
    sim.advance(secs(20));
    let (s, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert!(sim.payloads(s).is_empty(), "a cancelled will was published");
}

/// Issue #18: a session belongs to its user. Another user connecting with
/// the client identifier of a persistent session gets a fresh one, and the
/// store says so: the old session ended (its subscriptions and queue gone),
/// the new one opened under the new user, and a restart brings back only it.
#[test]
fn another_users_takeover_ends_the_stored_session_and_a_restart_keeps_only_the_new_one() {
    let mut sim = durable_sim(broker_config());
    let mut alice = persistent(V5, "c", 3600);
    alice.username = Some(s("alice"));
    let (a, _) = sim.connect_ok(alice);
    sim.subscribe(a, "t", QoS::AtLeastOnce);
    sim.disconnect(a, ReasonCode::SUCCESS);
    let now = sim.now;
    sim.broker_mut()
        .publish(now, msg("t", "for alice", QoS::AtLeastOnce, false));
    sim.run_until_idle();
    let mut mallory = persistent(V5, "c", 3600);
    mallory.username = Some(s("mallory"));
    let (_, present) = sim.connect_ok(mallory.clone());
    assert!(!present);
    sim.run_until_idle();
    let state = sim.store_image(0).restored();
    let stored: Vec<_> = state
        .sessions
        .iter()
        .filter(|s| s.client_id.as_str() == "c")
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].username.as_ref().map(|u| u.as_str()),
        Some("mallory")
    );
    assert!(stored[0].subscriptions.is_empty() && stored[0].outgoing.is_empty());

    sim.crash_and_restart(secs(1));
    let (m, present) = sim.connect_ok(mallory);
    assert!(present, "mallory's own session is resumed");
    sim.run_until_idle();
    assert!(sim.payloads(m).is_empty(), "none of alice's messages");
}
