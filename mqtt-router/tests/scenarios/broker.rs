// The broker scenarios, included by `tests/broker.rs` (the adapter hands
// bytes to the broker) and `tests/broker_packet_path.rs` (the adapter decodes
// and encodes packets itself).

use bytes::Bytes;
use common::*;
use mqtt_router::broker::{BrokerConfig, DropReason, QueueFullPolicy};
use mqtt_session::mqtt_codec::{Packet, QoS, ReasonCode, RetainHandling, SubscriptionOptions};

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

fn granted(q: QoS) -> ReasonCode {
    ReasonCode(q as u8)
}

/// Every acknowledgement of a publish the broker wrote to peer `i`, as
/// (packet kind, reason), in order.
fn acks(sim: &Sim, i: usize) -> Vec<(&'static str, ReasonCode)> {
    sim.peers[i]
        .received
        .iter()
        .filter_map(|p| match p {
            Packet::PubAck(a) => Some(("PUBACK", a.reason)),
            Packet::PubRec(a) => Some(("PUBREC", a.reason)),
            _ => None,
        })
        .collect()
}

// ----- routing ---------------------------------------------------------------------

/// v5 [MQTT-3.8.4-8], v311 [MQTT-3.8.4-6]: a message is delivered at the
/// minimum of its own QoS and the QoS granted to the subscription; every
/// QoS 1/2 flow completes on both sides.
#[test]
fn delivery_qos_is_the_minimum_of_publish_and_granted_qos() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let subs: Vec<usize> = QOS
            .iter()
            .map(|q| {
                let (i, _) = sim.connect_ok(cfg(v, &format!("sub{}", *q as u8)));
                assert_eq!(sim.subscribe(i, "a/b", *q), granted(*q));
                i
            })
            .collect();
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        for pq in QOS {
            let r = sim.publish(publisher, msg("a/b", "x", pq, false));
            assert_eq!(r, (pq != QoS::AtMostOnce).then_some(ReasonCode::SUCCESS));
            for (sq, &i) in QOS.iter().zip(&subs) {
                let got = sim.messages(i);
                assert_eq!(
                    got.len(),
                    1,
                    "{v:?}: subscriber at {sq:?}, publish at {pq:?}"
                );
                assert_eq!(got[0].qos, pq.min(*sq), "{v:?}: {sq:?} / {pq:?}");
                assert_eq!(got[0].topic, "a/b");
            }
        }
        // The subscribers acknowledged everything: nothing stays in flight.
        assert!(sim.peers.iter().all(|p| p.open));
        let stats = sim.broker().stats();
        assert_eq!(stats.messages_received, 3);
        assert_eq!(stats.messages_sent, 9);
        // By QoS: one publish at each; sent at min(publish, granted):
        // QoS 0 three times, once each under QoS 1 and 2 publishes...
        assert_eq!(stats.messages_received_by_qos, [1, 1, 1]);
        assert_eq!(stats.messages_sent_by_qos, [5, 3, 1]);
        // ... and the payload bytes ("x") with them.
        assert_eq!(stats.payload_bytes_received_by_qos, [1, 1, 1]);
        assert_eq!(stats.payload_bytes_sent_by_qos, [5, 3, 1]);
    }
}

/// v5 [MQTT-3.10.4-1], [MQTT-3.10.4-6]; v311 [MQTT-3.10.4-1]: after
/// UNSUBSCRIBE the subscription is gone and no further message is delivered.
#[test]
fn no_delivery_after_unsubscribe() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        sim.subscribe(sub, "a/+", QoS::AtLeastOnce);
        sim.publish(publisher, msg("a/b", "before", QoS::AtLeastOnce, false));
        assert_eq!(sim.payloads(sub), ["before"]);

        let results = sim.unsubscribe(sub, "a/+");
        if v.is_v5() {
            assert_eq!(results, [ReasonCode::SUCCESS]);
        }
        sim.publish(publisher, msg("a/b", "after", QoS::AtLeastOnce, false));
        assert!(
            sim.payloads(sub).is_empty(),
            "{v:?}: delivered after UNSUBSCRIBE"
        );
        if v.is_v5() {
            // v5 3.11.3: 0x11 No subscription existed.
            assert_eq!(
                sim.unsubscribe(sub, "a/+"),
                [ReasonCode::NO_SUBSCRIPTION_EXISTED]
            );
        }
    }
}

/// v5 3.4.2.1 / 3.5.2.1: PUBACK and PUBREC carry 0x10 No matching
/// subscribers when the message reached nobody, 0x00 otherwise; v311 has no
/// reason code and acknowledges plainly.
#[test]
fn v5_ack_is_no_matching_subscribers_when_nobody_matched() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        sim.publish(publisher, msg("nobody/here", "1", QoS::AtLeastOnce, false));
        sim.publish(publisher, msg("nobody/here", "2", QoS::ExactlyOnce, false));
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        sim.subscribe(sub, "nobody/#", QoS::AtMostOnce);
        sim.publish(publisher, msg("nobody/here", "3", QoS::AtLeastOnce, false));
        sim.publish(publisher, msg("nobody/here", "4", QoS::ExactlyOnce, false));
        let no_match = if v.is_v5() {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        };
        assert_eq!(
            acks(&sim, publisher),
            [
                ("PUBACK", no_match),
                ("PUBREC", no_match),
                ("PUBACK", ReasonCode::SUCCESS),
                ("PUBREC", ReasonCode::SUCCESS),
            ],
            "{v:?}"
        );
        assert_eq!(sim.payloads(sub), ["3", "4"]);
    }
}

/// Section 4.7: `+` matches one level, `#` any number including the parent
/// [MQTT-4.7.1-2]; and [MQTT-4.7.2-1]: filters starting with a wildcard do
/// not match topics starting with `$`, which only `$`-filters reach.
#[test]
fn wildcards_match_but_root_wildcards_skip_dollar_topics() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (all, _) = sim.connect_ok(cfg(v, "all"));
        let (plus, _) = sim.connect_ok(cfg(v, "plus"));
        let (sport, _) = sim.connect_ok(cfg(v, "sport"));
        let (sys, _) = sim.connect_ok(cfg(v, "sys"));
        sim.subscribe(all, "#", QoS::AtMostOnce);
        sim.subscribe(plus, "+/+/player1", QoS::AtMostOnce);
        sim.subscribe(sport, "sport/#", QoS::AtMostOnce);
        sim.subscribe(sys, "$SYS/#", QoS::AtMostOnce);
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));

        sim.publish(
            publisher,
            msg("sport/tennis/player1", "p1", QoS::AtMostOnce, false),
        );
        sim.publish(publisher, msg("sport", "parent", QoS::AtMostOnce, false));
        sim.publish(
            publisher,
            msg("sport/tennis/player2", "p2", QoS::AtMostOnce, false),
        );
        let now = sim.now;
        sim.broker_mut()
            .publish(now, msg("$SYS/broker/test", "sys", QoS::AtMostOnce, false));
        sim.run_until_idle();

        assert_eq!(sim.payloads(all), ["p1", "parent", "p2"], "{v:?}");
        assert_eq!(sim.payloads(plus), ["p1"], "{v:?}");
        assert_eq!(sim.payloads(sport), ["p1", "parent", "p2"], "{v:?}");
        assert_eq!(sim.payloads(sys), ["sys"], "{v:?}");
    }
}

/// Section 4.7.2: `$` topics belong to the server; a client's publish into
/// one is refused (v5 PUBACK 0x87; v311 acknowledged and dropped), reaches
/// no subscriber and is not retained.
#[test]
fn clients_cannot_publish_into_dollar_topics() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (sys, _) = sim.connect_ok(cfg(v, "sys"));
        sim.subscribe(sys, "$SYS/#", QoS::AtLeastOnce);
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        let r = sim.publish(
            publisher,
            msg("$SYS/broker/uptime", "forged", QoS::AtLeastOnce, true),
        );
        let expected = if v.is_v5() {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::SUCCESS
        };
        assert_eq!(r, Some(expected), "{v:?}");
        assert!(sim.payloads(sys).is_empty(), "{v:?}: forged $SYS delivered");
        let (late, _) = sim.connect_ok(cfg(v, "late"));
        sim.subscribe(late, "$SYS/#", QoS::AtLeastOnce);
        assert!(sim.payloads(late).is_empty(), "{v:?}: forged $SYS retained");
        let stats = sim.broker().stats();
        assert_eq!(stats.publishes_denied, 1);
        let not_authorized = mqtt_router::broker::PublishRefusal::NotAuthorized;
        assert_eq!(stats.publishes_refused[not_authorized.index()], 1);
    }
}

// ----- v5 subscription options -----------------------------------------------------

/// v5 [MQTT-3.3.4-3], [MQTT-3.3.4-4]: a message matching several
/// subscriptions of one client is sent once, with the Subscription
/// Identifiers of all of them; a subscription without one adds none. A
/// retained message sent on subscribe carries the new subscription's id.
#[test]
fn v5_subscription_identifiers_are_delivered() {
    let mut sim = new_sim(broker_config());
    let (sub, _) = sim.connect_ok(cfg(V5, "sub"));
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let o = |q| opts(q, false, false, RetainHandling::SendAtSubscribe);
    sim.subscribe_with(sub, &[("a/+", o(QoS::AtLeastOnce))], Some(1));
    sim.subscribe_with(sub, &[("a/b", o(QoS::AtMostOnce))], Some(2));
    sim.subscribe_with(sub, &[("x/#", o(QoS::AtMostOnce))], None);

    sim.publish(publisher, msg("a/b", "both", QoS::AtLeastOnce, false));
    sim.publish(publisher, msg("a/c", "one", QoS::AtLeastOnce, false));
    sim.publish(publisher, msg("x/y", "none", QoS::AtLeastOnce, false));
    let got = sim.messages(sub);
    assert_eq!(got.len(), 3, "one copy per message: {got:?}");
    let mut ids = got[0].sub_ids.clone();
    ids.sort();
    assert_eq!((got[0].payload.as_str(), ids), ("both", vec![1, 2]));
    // Delivered at the highest QoS granted among the matches (v5 3.3.4).
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert_eq!(
        (got[1].payload.as_str(), &got[1].sub_ids[..]),
        ("one", &[1][..])
    );
    assert_eq!(
        (got[2].payload.as_str(), &got[2].sub_ids[..]),
        ("none", &[][..])
    );

    sim.publish(publisher, msg("r/1", "kept", QoS::AtLeastOnce, true));
    sim.subscribe_with(sub, &[("r/+", o(QoS::AtLeastOnce))], Some(7));
    let got = sim.messages(sub);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].sub_ids, [7]);
    assert!(got[0].retain);
}

/// v5 [MQTT-3.8.3-3]: with No Local set, a client's own messages are not
/// forwarded back to it; other clients and subscriptions without the option
/// still receive them.
#[test]
fn v5_no_local_keeps_a_client_own_messages_from_it() {
    let mut sim = new_sim(broker_config());
    let (a, _) = sim.connect_ok(cfg(V5, "a"));
    let (b, _) = sim.connect_ok(cfg(V5, "b"));
    sim.subscribe_with(
        a,
        &[(
            "chat",
            opts(
                QoS::AtLeastOnce,
                true,
                false,
                RetainHandling::SendAtSubscribe,
            ),
        )],
        None,
    );
    sim.subscribe(b, "chat", QoS::AtLeastOnce);

    // A has no other subscriber than itself and B.
    assert_eq!(
        sim.publish(a, msg("chat", "from a", QoS::AtLeastOnce, false)),
        Some(ReasonCode::SUCCESS)
    );
    sim.publish(b, msg("chat", "from b", QoS::AtLeastOnce, false));
    assert_eq!(sim.payloads(a), ["from b"]);
    // B did not set No Local: it hears both, its own included.
    assert_eq!(sim.payloads(b), ["from a", "from b"]);

    // Only A itself matched, and No Local excluded it: nobody received it.
    sim.unsubscribe(b, "chat");
    assert_eq!(
        sim.publish(a, msg("chat", "alone", QoS::AtLeastOnce, false)),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    assert!(sim.payloads(a).is_empty());
}

/// Mosquitto's bridge convention: a 3.1.1 client whose CONNECT carries the
/// bridge bit (protocol level 0x84) never gets its own publications back, and
/// gets retain flags as published; a plain 3.1.1 client gets both.
#[test]
fn v311_bridge_gets_neither_its_own_messages_nor_cleared_retain_flags() {
    let mut sim = new_sim(broker_config());
    let mut bridge_cfg = cfg(V311, "bridge");
    bridge_cfg.bridge = true;
    let (bridge, _) = sim.connect_ok(bridge_cfg);
    let (plain, _) = sim.connect_ok(cfg(V311, "plain"));
    sim.subscribe(bridge, "#", QoS::AtLeastOnce);
    sim.subscribe(plain, "#", QoS::AtLeastOnce);
    sim.publish(bridge, msg("t", "from the bridge", QoS::AtLeastOnce, false));
    sim.publish(plain, msg("t", "from plain", QoS::AtLeastOnce, false));
    assert_eq!(sim.payloads(bridge), ["from plain"]);
    assert_eq!(sim.payloads(plain), ["from the bridge", "from plain"]);

    sim.publish(plain, msg("r", "kept", QoS::AtLeastOnce, true));
    let got = sim.messages(bridge);
    assert_eq!(got.len(), 1);
    assert!(got[0].retain, "a bridge gets the retain flag as published");
    let got = sim.messages(plain);
    assert!(!got[0].retain, "[MQTT-3.3.1-9]: cleared for a plain client");
}

/// v5 [MQTT-3.3.1-12], [MQTT-3.3.1-13]; v311 [MQTT-3.3.1-9]: a message
/// forwarded on an established subscription has RETAIN cleared, unless the
/// (v5) subscription asked for Retain As Published.
#[test]
fn retain_flag_is_cleared_on_forwarding_unless_retain_as_published() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (plain, _) = sim.connect_ok(cfg(v, "plain"));
        sim.subscribe(plain, "t", QoS::AtLeastOnce);
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        let rap = (v.is_v5()).then(|| {
            let (i, _) = sim.connect_ok(cfg(v, "rap"));
            sim.subscribe_with(
                i,
                &[(
                    "t",
                    opts(
                        QoS::AtLeastOnce,
                        false,
                        true,
                        RetainHandling::SendAtSubscribe,
                    ),
                )],
                None,
            );
            i
        });
        sim.publish(publisher, msg("t", "retained", QoS::AtLeastOnce, true));
        sim.publish(publisher, msg("t", "plain", QoS::AtLeastOnce, false));
        let got: Vec<bool> = sim.messages(plain).iter().map(|m| m.retain).collect();
        assert_eq!(got, [false, false], "{v:?}");
        if let Some(rap) = rap {
            let got: Vec<bool> = sim.messages(rap).iter().map(|m| m.retain).collect();
            assert_eq!(got, [true, false]);
        }
    }
}

// ----- retained messages -------------------------------------------------------------

/// v311 [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-8], [MQTT-3.3.1-10],
/// [MQTT-3.3.1-11], [MQTT-3.3.1-12]; v5 [MQTT-3.3.1-5] to [MQTT-3.3.1-9]:
/// a retained message is stored, replaced by the next one, left alone by a
/// non-retained publish, cleared by an empty payload (which is still
/// forwarded), and sent with RETAIN set to each new subscription at the
/// lower of its QoS and the granted QoS.
#[test]
fn retained_message_is_set_replaced_cleared_and_sent_on_subscribe() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        let (live, _) = sim.connect_ok(cfg(v, "live"));
        sim.subscribe(live, "r/#", QoS::AtLeastOnce);
        let fresh = |sim: &mut Sim, name: &str, q: QoS| {
            let (i, _) = sim.connect_ok(cfg(v, name));
            sim.subscribe(i, "r/#", q);
            sim.messages(i)
        };

        sim.publish(publisher, msg("r/t", "one", QoS::AtLeastOnce, true));
        let got = fresh(&mut sim, "s1", QoS::ExactlyOnce);
        assert_eq!(got.len(), 1, "{v:?}");
        assert_eq!(
            (got[0].payload.as_str(), got[0].retain, got[0].qos),
            ("one", true, QoS::AtLeastOnce)
        );
        let got = fresh(&mut sim, "s0", QoS::AtMostOnce);
        assert_eq!(
            (got[0].payload.as_str(), got[0].qos),
            ("one", QoS::AtMostOnce)
        );

        sim.publish(publisher, msg("r/t", "two", QoS::AtLeastOnce, true));
        sim.publish(
            publisher,
            msg("r/t", "not retained", QoS::AtLeastOnce, false),
        );
        let got = fresh(&mut sim, "s2", QoS::AtLeastOnce);
        assert_eq!(
            got.iter().map(|m| &m.payload[..]).collect::<Vec<_>>(),
            ["two"]
        );

        sim.publish(publisher, msg("r/t", "", QoS::AtLeastOnce, true));
        assert!(
            fresh(&mut sim, "s3", QoS::AtLeastOnce).is_empty(),
            "{v:?}: not cleared"
        );

        // The live subscriber saw each publish once, RETAIN cleared, the
        // empty one included.
        let got = sim.messages(live);
        let seen: Vec<(&str, bool)> = got.iter().map(|m| (&m.payload[..], m.retain)).collect();
        assert_eq!(
            seen,
            [
                ("one", false),
                ("two", false),
                ("not retained", false),
                ("", false)
            ]
        );
    }
}

/// v5 [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]: Retain Handling 0
/// sends retained messages on every SUBSCRIBE, 1 only when the subscription
/// is new, 2 never.
#[test]
fn v5_retain_handling_0_1_2() {
    let mut sim = new_sim(broker_config());
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.publish(publisher, msg("r/t", "kept", QoS::AtLeastOnce, true));
    for (rh, first, again) in [
        (RetainHandling::SendAtSubscribe, 1, 1),
        (RetainHandling::SendAtSubscribeIfNew, 1, 0),
        (RetainHandling::DoNotSend, 0, 0),
    ] {
        let (i, _) = sim.connect_ok(cfg(V5, &format!("rh{}", rh as u8)));
        let o = opts(QoS::AtLeastOnce, false, false, rh);
        sim.subscribe_with(i, &[("r/#", o)], None);
        assert_eq!(sim.messages(i).len(), first, "{rh:?} on a new subscription");
        sim.subscribe_with(i, &[("r/#", o)], None);
        assert_eq!(sim.messages(i).len(), again, "{rh:?} on an existing one");
    }
}

/// v5 3.3.2.3.3, [MQTT-3.3.2-5], [MQTT-3.3.2-6]: a retained message with a
/// Message Expiry Interval is sent with the time that remains, and not at
/// all once it has expired.
#[test]
fn v5_retained_message_expires() {
    let mut sim = new_sim(broker_config());
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let mut m = msg("r/t", "short-lived", QoS::AtLeastOnce, true);
    m.props.expires_at = Some(sim.now.plus_secs(10));
    sim.publish(publisher, m);

    sim.advance(secs(4));
    let (early, _) = sim.connect_ok(cfg(V5, "early"));
    sim.subscribe(early, "r/t", QoS::AtLeastOnce);
    assert_eq!(sim.payloads(early), ["short-lived"]);
    let interval = sim.peers[early].received.iter().find_map(|p| match p {
        Packet::Publish(p) => p.props.message_expiry_interval,
        _ => None,
    });
    assert_eq!(interval, Some(6), "the remaining lifetime is sent");

    sim.advance(secs(6));
    let (late, _) = sim.connect_ok(cfg(V5, "late"));
    sim.subscribe(late, "r/t", QoS::AtLeastOnce);
    assert!(
        sim.payloads(late).is_empty(),
        "an expired retained message was sent"
    );
}

/// v5 [MQTT-3.3.2-5]: a message that expires while queued for an offline
/// session is not delivered; the others are, with the expiry interval
/// reduced by the time they waited [MQTT-3.3.2-6].
#[test]
fn v5_message_expiry_applies_to_queued_messages() {
    let mut sim = new_sim(broker_config());
    let (sub, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    sim.subscribe(sub, "q", QoS::AtLeastOnce);
    sim.disconnect(sub, ReasonCode::NORMAL_DISCONNECTION);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let mut short = msg("q", "short", QoS::AtLeastOnce, false);
    short.props.expires_at = Some(sim.now.plus_secs(5));
    let mut long = msg("q", "long", QoS::AtLeastOnce, false);
    long.props.expires_at = Some(sim.now.plus_secs(100));
    sim.publish(publisher, short);
    sim.publish(publisher, long);

    sim.advance(secs(10));
    let (sub, present) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert!(present);
    assert_eq!(sim.payloads(sub), ["long"]);
    // The expired one is counted as dropped, for that reason.
    assert_eq!(sim.broker().stats().dropped_for(DropReason::Expired), 1);
    assert_eq!(sim.broker().stats().messages_dropped, 1);
    let interval = sim.peers[sub].received.iter().find_map(|p| match p {
        Packet::Publish(p) => p.props.message_expiry_interval,
        _ => None,
    });
    assert_eq!(interval, Some(90));
}

// ----- wills -------------------------------------------------------------------------

/// Connects a watcher subscribed to `will/#` and a client "w" with a will
/// (delay `delay`, 5.0 session expiry `expiry`); returns (watcher, client).
fn with_will(
    sim: &mut Sim,
    v: mqtt_session::mqtt_codec::ProtocolVersion,
    delay: Option<u32>,
    expiry: u32,
) -> (usize, usize) {
    let (watcher, _) = sim.connect_ok(cfg(v, "watcher"));
    sim.subscribe(watcher, "will/#", QoS::AtLeastOnce);
    let mut c = if expiry > 0 {
        persistent(v, "w", expiry)
    } else {
        cfg(v, "w")
    };
    c.will = Some(will("will/w", "gone", delay));
    c.keep_alive = 10;
    let (client, _) = sim.connect_ok(c);
    (watcher, client)
}

/// v5 and v311 [MQTT-3.1.2-8]: the will is published when the network
/// connection closes without a DISCONNECT.
#[test]
fn will_is_published_when_the_transport_ends_without_disconnect() {
    // Whether the session ends with the connection or is kept (v311 Clean
    // Session 0, v5 Session Expiry > 0) makes no difference to the will.
    for (v, expiry) in [(V311, 0), (V311, 3600), (V5, 0), (V5, 3600)] {
        let mut sim = new_sim(broker_config());
        let (watcher, client) = with_will(&mut sim, v, None, expiry);
        assert!(sim.payloads(watcher).is_empty());
        sim.drop_transport(client);
        let got = sim.messages(watcher);
        assert_eq!(got.len(), 1, "{v:?}, session expiry {expiry}");
        assert_eq!(
            (got[0].topic.as_str(), got[0].payload.as_str()),
            ("will/w", "gone")
        );
        assert_eq!(got[0].qos, QoS::AtLeastOnce);
        assert_eq!(sim.broker().stats().wills_published, 1);
    }
}

/// v5 [MQTT-3.1.2-22], v311 [MQTT-3.1.2-24]: a client silent for one and a
/// half keep-alive periods is disconnected (v5 DISCONNECT 0x8D), and that is
/// a close without DISCONNECT from the client: the will is published.
#[test]
fn will_is_published_after_keep_alive_expiry() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (watcher, client) = with_will(&mut sim, v, None, 0);
        sim.freeze(client);
        sim.advance(secs(14));
        assert!(
            !sim.broker_closed(client),
            "{v:?}: closed before 1.5 × keep alive"
        );
        assert!(sim.payloads(watcher).is_empty());
        sim.advance(secs(1));
        assert!(
            sim.broker_closed(client),
            "{v:?}: still open after 1.5 × keep alive"
        );
        assert_eq!(sim.payloads(watcher), ["gone"], "{v:?}");
        let expected = v.is_v5().then_some(ReasonCode::KEEP_ALIVE_TIMEOUT);
        assert_eq!(sim.disconnect_reason(client), expected, "{v:?}");
    }
}

/// v5 3.14.2.1: DISCONNECT with 0x04 closes normally but asks for the will.
#[test]
fn v5_will_is_published_on_disconnect_with_will_message() {
    let mut sim = new_sim(broker_config());
    let (watcher, client) = with_will(&mut sim, V5, None, 0);
    sim.disconnect(client, ReasonCode::DISCONNECT_WITH_WILL_MESSAGE);
    assert_eq!(sim.payloads(watcher), ["gone"]);
}

/// v5 [MQTT-3.1.2-10], [MQTT-3.14.4-3]; v311 [MQTT-3.1.2-10],
/// [MQTT-3.14.4-3]: a normal DISCONNECT discards the will.
#[test]
fn will_is_not_published_on_normal_disconnect() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (watcher, client) = with_will(&mut sim, v, Some(5), 60);
        sim.disconnect(client, ReasonCode::NORMAL_DISCONNECTION);
        sim.advance(secs(3600));
        assert!(sim.payloads(watcher).is_empty(), "{v:?}");
        assert_eq!(sim.broker().stats().wills_published, 0);
    }
}

/// v5 3.1.3.2.2: the will waits for its Will Delay Interval.
#[test]
fn v5_will_is_published_after_its_delay() {
    let mut sim = new_sim(broker_config());
    let (watcher, client) = with_will(&mut sim, V5, Some(30), 300);
    sim.drop_transport(client);
    sim.advance(secs(29));
    assert!(
        sim.payloads(watcher).is_empty(),
        "published before the delay"
    );
    sim.advance(secs(1));
    assert_eq!(sim.payloads(watcher), ["gone"]);
}

/// v5 [MQTT-3.1.3-9]: a new connection to the session before the will delay
/// has passed cancels the will.
#[test]
fn v5_will_is_cancelled_by_a_reconnection_before_its_delay() {
    let mut sim = new_sim(broker_config());
    let (watcher, client) = with_will(&mut sim, V5, Some(30), 300);
    sim.drop_transport(client);
    sim.advance(secs(10));
    let (again, present) = sim.connect_ok(persistent(V5, "w", 300));
    assert!(present);
    sim.advance(secs(60));
    assert!(
        sim.payloads(watcher).is_empty(),
        "the will survived a reconnection"
    );
    assert!(!sim.broker_closed(again));
    // Nor does it come back when the resumed session later ends.
    sim.disconnect(again, ReasonCode::NORMAL_DISCONNECTION);
    sim.advance(secs(301));
    assert!(
        sim.payloads(watcher).is_empty(),
        "a cancelled will was published"
    );
}

/// Found by the `broker` fuzz target (input in `fuzz/regressions/broker/`):
/// a will delay reaching past the session's expiry left its own timer in the
/// broker's heap after the session had ended and the will had gone out with
/// it [MQTT-3.1.3-9], there for as long as the delay (up to 136 years), one
/// per such client.
#[test]
fn a_will_delay_past_the_session_expiry_leaves_no_timer_behind() {
    let mut sim = new_sim(broker_config());
    let (watcher, client) = with_will(&mut sim, V5, Some(3600), 10);
    sim.drop_transport(client);
    sim.advance(secs(10));
    assert_eq!(sim.payloads(watcher), ["gone"]);
    sim.drop_transport(watcher);
    sim.advance(secs(120));
    assert_eq!(sim.broker_mut().poll_timeout(), None, "a deadline with nothing to do");
    assert_eq!(sim.broker().sizes().timers, 0);
}

/// v5 3.1.3.2.2: the will is published when the session ends, if that comes
/// before the will delay: at session expiry, or at once with expiry 0.
#[test]
fn v5_will_is_published_at_session_end_if_that_comes_first() {
    let mut sim = new_sim(broker_config());
    let (watcher, client) = with_will(&mut sim, V5, Some(60), 10);
    sim.drop_transport(client);
    sim.advance(secs(9));
    assert!(sim.payloads(watcher).is_empty());
    sim.advance(secs(1));
    assert_eq!(
        sim.payloads(watcher),
        ["gone"],
        "not published at session end"
    );

    let mut sim = new_sim(broker_config());
    let (watcher, client) = with_will(&mut sim, V5, Some(60), 0);
    sim.drop_transport(client);
    assert_eq!(
        sim.payloads(watcher),
        ["gone"],
        "session expiry 0 ends the session now"
    );
}

/// v5 [MQTT-3.1.2-4] with 3.1.3.2.2: a reconnection with Clean Start
/// discards the old session, which ends it, so a will still waiting for its
/// delay is published then (it was not a connection *to that session*).
#[test]
fn v5_clean_start_reconnection_ends_the_session_and_publishes_a_delayed_will() {
    let mut sim = new_sim(broker_config());
    let (watcher, client) = with_will(&mut sim, V5, Some(30), 300);
    sim.drop_transport(client);
    sim.advance(secs(5));
    let (_, present) = sim.connect_ok(cfg(V5, "w"));
    assert!(!present);
    assert_eq!(sim.payloads(watcher), ["gone"]);
}

// ----- client identifiers ---------------------------------------------------------------

/// v5 [MQTT-3.1.3-6], [MQTT-3.2.2-16]: an empty client identifier gets a
/// unique one, returned in CONNACK's Assigned Client Identifier, and it
/// names a session like any other.
#[test]
fn v5_empty_client_id_is_assigned_in_connack() {
    let mut sim = new_sim(broker_config());
    let assigned = |sim: &mut Sim, i: usize| {
        sim.client(i)
            .server_caps()
            .and_then(|c| c.assigned_client_identifier.clone())
            .expect("an assigned client identifier")
            .as_str()
            .to_owned()
    };
    let (a, _) = sim.connect_ok(persistent(V5, "", 100));
    let (b, _) = sim.connect_ok(cfg(V5, ""));
    let (ida, idb) = (assigned(&mut sim, a), assigned(&mut sim, b));
    assert!(!ida.is_empty() && ida != idb, "{ida} / {idb}");
    assert!(!sim.broker_closed(a) && !sim.broker_closed(b));

    sim.subscribe(a, "t", QoS::AtLeastOnce);
    sim.disconnect(a, ReasonCode::NORMAL_DISCONNECTION);
    let (_, present) = sim.connect_ok(persistent(V5, &ida, 100));
    assert!(present, "the assigned identifier names the session");
}

/// v311 [MQTT-3.1.3-6], [MQTT-3.1.3-7]: an empty client identifier with
/// Clean Session 1 is accepted (each such client gets its own session).
#[test]
fn v311_empty_client_id_with_clean_session_is_accepted() {
    let mut sim = new_sim(broker_config());
    let (a, present) = sim.connect_ok(cfg(V311, ""));
    assert!(!present);
    let (b, _) = sim.connect_ok(cfg(V311, ""));
    assert!(
        !sim.broker_closed(a),
        "two empty identifiers are not a take-over"
    );
    sim.subscribe(a, "t", QoS::AtLeastOnce);
    sim.publish(b, msg("t", "hi", QoS::AtLeastOnce, false));
    assert_eq!(sim.payloads(a), ["hi"]);
}

/// v311 [MQTT-3.1.3-8]: an empty client identifier with Clean Session 0 is
/// answered with CONNACK return code 0x02 (Identifier rejected) and the
/// connection is closed.
#[test]
fn v311_empty_client_id_without_clean_session_is_refused_with_code_2() {
    let mut sim = new_sim(broker_config());
    let i = sim.raw(V311);
    sim.send_raw(i, &encode(V311, &[connect_packet(V311, "", false)]));
    assert_eq!(sim.peers[i].raw_in, [0x20, 0x02, 0x00, 0x02]);
    assert!(sim.broker_closed(i));
    assert_eq!(sim.broker().connection_count(), 0);

    // The real client reports it as 0x85.
    let c = sim.connect(persistent(V311, "", 0));
    assert_eq!(sim.connack(c), Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID));
}

// ----- take-over ---------------------------------------------------------------------

/// v5 [MQTT-3.1.4-3], v311 [MQTT-3.1.4-2]: a second connection with the same
/// client identifier ends the first (v5 with DISCONNECT 0x8E) and, without
/// Clean Start, continues its session (Session Present, subscriptions kept).
#[test]
fn second_connection_with_same_client_id_takes_over_the_session() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (first, _) = sim.connect_ok(persistent(v, "dev", 600));
        sim.subscribe(first, "t", QoS::AtLeastOnce);
        let (second, present) = sim.connect_ok(persistent(v, "dev", 600));
        assert!(present, "{v:?}: session not resumed");
        assert!(
            sim.broker_closed(first),
            "{v:?}: first connection still open"
        );
        let expected = v.is_v5().then_some(ReasonCode::SESSION_TAKEN_OVER);
        assert_eq!(sim.disconnect_reason(first), expected, "{v:?}");
        assert_eq!(
            sim.client_closed(first).map(|c| c.reason.is_error()),
            Some(true)
        );
        assert!(!sim.broker_closed(second));

        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        sim.publish(
            publisher,
            msg("t", "to the new one", QoS::AtLeastOnce, false),
        );
        assert_eq!(sim.payloads(second), ["to the new one"], "{v:?}");
        assert!(sim.payloads(first).is_empty());

        // A take-over with Clean Start begins a fresh session.
        let (third, present) = sim.connect_ok(cfg(v, "dev"));
        assert!(!present);
        assert!(sim.broker_closed(second));
        sim.publish(publisher, msg("t", "nobody", QoS::AtLeastOnce, false));
        assert!(
            sim.payloads(third).is_empty(),
            "{v:?}: old subscription survived"
        );
        assert_eq!(sim.broker().connection_count(), 2);
    }
}

/// v5 [MQTT-3.1.4-3]: "If the existing Client has a Will Message, that Will
/// Message is published" (a take-over is a close without DISCONNECT from the
/// client; v311 likewise closes the network connection).
#[test]
fn take_over_publishes_the_old_connection_will() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (watcher, _) = with_will(&mut sim, v, None, 0);
        sim.connect_ok(cfg(v, "w"));
        assert_eq!(sim.payloads(watcher), ["gone"], "{v:?}");
    }
}

// ----- persistent sessions ------------------------------------------------------------

/// v5 [MQTT-3.2.2-3], v311 [MQTT-3.2.2-2]; section 4.1: a persistent session
/// keeps its subscriptions and the QoS 1/2 messages published while its
/// client was away; on reconnection Session Present is 1 and they arrive, in
/// order, at their QoS.
#[test]
fn persistent_session_receives_messages_queued_while_away() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (sub, _) = sim.connect_ok(persistent(v, "sub", 3600));
        sim.subscribe(sub, "q/#", QoS::ExactlyOnce);
        sim.disconnect(sub, ReasonCode::NORMAL_DISCONNECTION);

        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        for (n, q) in [
            (1, QoS::AtLeastOnce),
            (2, QoS::ExactlyOnce),
            (3, QoS::AtLeastOnce),
        ] {
            let r = sim.publish(publisher, msg("q/x", &format!("m{n}"), q, false));
            // Queued for a subscriber counts as matched.
            assert_eq!(r, Some(ReasonCode::SUCCESS), "{v:?}");
        }
        sim.advance(secs(600));

        let (sub, present) = sim.connect_ok(persistent(v, "sub", 3600));
        assert!(present, "{v:?}: session present");
        let got = sim.messages(sub);
        let seen: Vec<(&str, QoS)> = got.iter().map(|m| (&m.payload[..], m.qos)).collect();
        assert_eq!(
            seen,
            [
                ("m1", QoS::AtLeastOnce),
                ("m2", QoS::ExactlyOnce),
                ("m3", QoS::AtLeastOnce)
            ],
            "{v:?}"
        );
        // And the subscription is still there.
        sim.publish(publisher, msg("q/x", "live", QoS::AtLeastOnce, false));
        assert_eq!(sim.payloads(sub), ["live"]);
    }
}

/// v5 3.1.2.11.2, [MQTT-3.1.2-23]: a session is kept for its Session Expiry
/// Interval after the connection closes and then removed, with its
/// subscriptions and queued messages.
#[test]
fn v5_session_expiry_removes_the_session_and_its_subscriptions() {
    let mut sim = new_sim(broker_config());
    let (sub, _) = sim.connect_ok(persistent(V5, "sub", 60));
    sim.subscribe(sub, "e/t", QoS::AtLeastOnce);
    sim.drop_transport(sub);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));

    sim.advance(secs(59));
    assert_eq!(
        sim.publish(publisher, msg("e/t", "queued", QoS::AtLeastOnce, false)),
        Some(ReasonCode::SUCCESS),
        "the session still exists before its expiry"
    );
    sim.advance(secs(1));
    assert_eq!(
        sim.publish(publisher, msg("e/t", "lost", QoS::AtLeastOnce, false)),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS),
        "the subscription outlived its session"
    );
    // A new session (which may reuse the old one's slot) inherits nothing.
    let (other, _) = sim.connect_ok(persistent(V5, "other", 60));
    let (sub, present) = sim.connect_ok(persistent(V5, "sub", 60));
    assert!(!present, "the session outlived its expiry");
    sim.publish(publisher, msg("e/t", "to nobody", QoS::AtLeastOnce, false));
    assert!(sim.payloads(sub).is_empty());
    assert!(
        sim.payloads(other).is_empty(),
        "a new session inherited subscriptions"
    );
}

/// v5 [MQTT-3.1.2-4], [MQTT-3.2.2-2]; v311 [MQTT-3.1.2-6], [MQTT-3.2.2-1]:
/// Clean Start discards the existing session: Session Present 0, no queued
/// messages, no subscriptions.
#[test]
fn clean_start_discards_the_old_session() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (sub, _) = sim.connect_ok(persistent(v, "sub", 3600));
        sim.subscribe(sub, "t", QoS::AtLeastOnce);
        sim.disconnect(sub, ReasonCode::NORMAL_DISCONNECTION);
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        sim.publish(publisher, msg("t", "queued", QoS::AtLeastOnce, false));

        let (sub, present) = sim.connect_ok(cfg(v, "sub"));
        assert!(!present, "{v:?}");
        assert!(
            sim.payloads(sub).is_empty(),
            "{v:?}: queued messages survived"
        );
        sim.publish(publisher, msg("t", "after", QoS::AtLeastOnce, false));
        assert!(sim.payloads(sub).is_empty(), "{v:?}: subscription survived");
    }
}

/// Fills the queue (limit 3) of an offline session subscribed to `q` at
/// QoS 1 with `payloads` (QoS 0 for names starting with "z", else QoS 1),
/// reconnects it and returns what it received, with the publish acks.
fn overflow(policy: QueueFullPolicy, payloads: &[&str]) -> (Vec<String>, Vec<ReasonCode>, u64) {
    let mut config = BrokerConfig {
        queue_full: policy,
        ..broker_config()
    };
    config.server.limits.max_queued = 3;
    let mut sim = new_sim(config);
    let (sub, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    sim.subscribe(sub, "q", QoS::AtLeastOnce);
    sim.disconnect(sub, ReasonCode::NORMAL_DISCONNECTION);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let mut acks = Vec::new();
    for p in payloads {
        let q = if p.starts_with('z') {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        acks.extend(sim.publish(publisher, msg("q", p, q, false)));
    }
    let dropped = sim.broker().stats().messages_dropped;
    let (sub, present) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert!(present);
    (sim.payloads(sub), acks, dropped)
}

/// Issue 5: at the queue limit of an offline session, queued QoS 0 messages
/// go first; then `DropOldest` makes room by dropping the oldest message,
/// and every drop is counted.
#[test]
fn queue_limit_drop_oldest_keeps_the_newest_messages() {
    let (got, acks, dropped) =
        overflow(QueueFullPolicy::DropOldest, &["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(got, ["m3", "m4", "m5"]);
    assert_eq!(dropped, 2);
    assert!(acks.iter().all(|r| *r == ReasonCode::SUCCESS));

    let (got, _, dropped) = overflow(QueueFullPolicy::DropOldest, &["m1", "z0", "m2", "m3"]);
    assert_eq!(got, ["m1", "m2", "m3"], "the QoS 0 message goes first");
    assert_eq!(dropped, 1);
}

/// Issue 5: with `DropNew`, a full queue keeps what it has: queued QoS 0
/// messages still make room first, then new messages are dropped (counted),
/// and a v5 publisher whose message reached nobody hears 0x97 Quota exceeded.
#[test]
fn queue_limit_drop_new_keeps_the_oldest_messages_and_reports_quota_exceeded() {
    let (got, acks, dropped) = overflow(QueueFullPolicy::DropNew, &["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(got, ["m1", "m2", "m3"]);
    assert_eq!(dropped, 2);
    assert_eq!(
        acks,
        [
            ReasonCode::SUCCESS,
            ReasonCode::SUCCESS,
            ReasonCode::SUCCESS,
            ReasonCode::QUOTA_EXCEEDED,
            ReasonCode::QUOTA_EXCEEDED
        ]
    );

    let (got, _, dropped) = overflow(QueueFullPolicy::DropNew, &["m1", "z0", "m2", "m3", "m4"]);
    assert_eq!(got, ["m1", "m2", "m3"], "the QoS 0 message goes first");
    assert_eq!(dropped, 2);
}

// ----- shared subscriptions -------------------------------------------------------------

/// v5 section 4.8.2: each message matching a shared subscription goes to
/// exactly one member of the group, picked round robin here; other groups
/// and ordinary subscriptions get their own copy.
#[test]
fn shared_subscription_delivers_each_message_to_exactly_one_member_round_robin() {
    let mut sim = new_sim(broker_config());
    let members: Vec<usize> = (0..3)
        .map(|n| {
            // A 3.1.1 client may join a group too (as with Mosquitto).
            let v = if n == 2 { V311 } else { V5 };
            let (i, _) = sim.connect_ok(cfg(v, &format!("g{n}")));
            assert_eq!(
                sim.subscribe(i, "$share/g/s/#", QoS::AtLeastOnce),
                granted(QoS::AtLeastOnce)
            );
            i
        })
        .collect();
    let (other_group, _) = sim.connect_ok(cfg(V5, "h"));
    sim.subscribe(other_group, "$share/h/s/+", QoS::AtLeastOnce);
    let (plain, _) = sim.connect_ok(cfg(V5, "plain"));
    sim.subscribe(plain, "s/#", QoS::AtLeastOnce);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));

    let mut order = Vec::new();
    for n in 0..9 {
        sim.publish(
            publisher,
            msg("s/x", &n.to_string(), QoS::AtLeastOnce, false),
        );
        let got: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&m| !sim.payloads(m).is_empty())
            .collect();
        assert_eq!(got.len(), 1, "message {n} reached members {got:?}");
        order.push(got[0]);
    }
    assert_eq!(sim.payloads(other_group).len(), 9);
    assert_eq!(sim.payloads(plain).len(), 9);
    // Round robin: every window of three consecutive messages covers all three.
    for w in order.windows(3) {
        let mut w = w.to_vec();
        w.sort();
        assert_eq!(w, members, "order {order:?}");
    }
}

/// A member that leaves its group no longer gets messages; the others share them.
#[test]
fn shared_subscription_member_that_unsubscribes_is_skipped() {
    let mut sim = new_sim(broker_config());
    let (a, _) = sim.connect_ok(cfg(V5, "a"));
    let (b, _) = sim.connect_ok(cfg(V5, "b"));
    sim.subscribe(a, "$share/g/t", QoS::AtLeastOnce);
    sim.subscribe(b, "$share/g/t", QoS::AtLeastOnce);
    sim.unsubscribe(a, "$share/g/t");
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    for n in 0..4 {
        sim.publish(publisher, msg("t", &n.to_string(), QoS::AtLeastOnce, false));
    }
    assert!(sim.payloads(a).is_empty());
    assert_eq!(sim.payloads(b), ["0", "1", "2", "3"]);
}

// ----- policy ------------------------------------------------------------------------

/// Issue 5 / v5 3.2.2.2 / v311 3.2.2.3: a policy refusing CONNECT for bad
/// credentials sends CONNACK 0x86 (v5) or return code 4 (v311) and closes.
#[test]
fn policy_refuses_connect_with_bad_user_name_or_password() {
    for v in VERSIONS {
        let mut sim = new_sim_with(broker_config(), test_authority());
        let mut c = cfg(v, "m");
        c.username = Some(s("mallory"));
        c.password = Some(Bytes::from_static(b"guess"));
        let i = sim.connect(c);
        assert_eq!(sim.connack(i), Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD));
        let connack = &sim.peers[i].raw_in[..];
        if v.is_v5() {
            assert_eq!(&connack[..4], [0x20, 0x03, 0x00, 0x86]);
        } else {
            assert_eq!(connack, [0x20, 0x02, 0x00, 0x04]);
        }
        assert!(sim.broker_closed(i));
        assert_eq!(sim.broker().connection_count(), 0);
        assert_eq!(sim.broker().stats().connections_refused, 1);

        let mut c = cfg(v, "alice");
        c.username = Some(s("alice"));
        sim.connect_ok(c);
    }
}

/// v5 [MQTT-3.9.3-1] with 3.9.3 (0x87 Not authorized); v311 3.9.3 (0x80
/// Failure): a subscription the policy refuses fails in SUBACK, the others
/// of the same SUBSCRIBE are granted, and the refused one receives nothing.
#[test]
fn policy_refuses_a_subscription() {
    for v in VERSIONS {
        let mut sim = new_sim_with(broker_config(), test_authority());
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        let q1 = SubscriptionOptions::new(QoS::AtLeastOnce);
        let results = sim.subscribe_with(sub, &[("secret/#", q1), ("open/#", q1)], None);
        let refused = if v.is_v5() {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::UNSPECIFIED_ERROR
        };
        assert_eq!(results, [refused, granted(QoS::AtLeastOnce)], "{v:?}");
        // On the wire: SUBACK payload bytes.
        let raw = &sim.peers[sub].raw_in;
        let tail = if v.is_v5() {
            [0x87, 0x01]
        } else {
            [0x80, 0x01]
        };
        assert!(raw.windows(2).any(|w| w == tail), "{v:?}: {raw:x?}");
        let now = sim.now;
        sim.broker_mut()
            .publish(now, msg("secret/plans", "x", QoS::AtLeastOnce, false));
        sim.broker_mut()
            .publish(now, msg("open/news", "y", QoS::AtLeastOnce, false));
        sim.run_until_idle();
        assert_eq!(sim.payloads(sub), ["y"], "{v:?}");
    }
}

/// Issue 5, v5 3.4.2.1: a publish the policy refuses is answered with 0x87
/// (v5) or acknowledged and dropped (v311, which has no negative ack), and
/// reaches nobody.
#[test]
fn policy_refuses_a_publish() {
    for v in VERSIONS {
        let mut sim = new_sim_with(broker_config(), test_authority());
        let (all, _) = sim.connect_ok(cfg(v, "all"));
        sim.subscribe(all, "#", QoS::AtLeastOnce);
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        let r = sim.publish(publisher, msg("secret/x", "leak", QoS::AtLeastOnce, false));
        let expected = if v.is_v5() {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::SUCCESS
        };
        assert_eq!(r, Some(expected), "{v:?}");
        sim.publish(publisher, msg("secret/x", "leak0", QoS::AtMostOnce, false));
        assert_eq!(
            sim.publish(publisher, msg("secret/y", "leak2", QoS::ExactlyOnce, false)),
            Some(if v.is_v5() {
                ReasonCode::NOT_AUTHORIZED
            } else {
                ReasonCode::SUCCESS
            })
        );
        sim.publish(publisher, msg("open/x", "fine", QoS::AtLeastOnce, false));
        assert_eq!(sim.payloads(all), ["fine"], "{v:?}");
        assert_eq!(sim.broker().stats().publishes_denied, 3);
        assert!(!sim.broker_closed(publisher));
    }
}

// ----- $SYS --------------------------------------------------------------------------

/// Issue 5: every `sys_interval` the broker publishes its `$SYS/broker/...`
/// tree; a `$SYS/#` subscriber receives it, a `#` subscriber does not
/// [MQTT-4.7.2-1].
#[test]
fn sys_topics_are_published_every_sys_interval() {
    let config = BrokerConfig {
        sys_interval: Some(secs(10)),
        version: "test-broker 1.0".into(),
        ..broker_config()
    };
    let mut sim = new_sim(config);
    let (sys, _) = sim.connect_ok(cfg(V5, "sys"));
    sim.subscribe(sys, "$SYS/#", QoS::AtMostOnce);
    let (all, _) = sim.connect_ok(cfg(V311, "all"));
    sim.subscribe(all, "#", QoS::AtMostOnce);
    sim.publish(all, msg("x", "1", QoS::AtLeastOnce, false));
    sim.payloads(all);

    sim.advance(secs(9));
    assert!(
        sim.payloads(sys).is_empty(),
        "published before the interval"
    );
    sim.advance(secs(1));
    let got: std::collections::BTreeMap<String, String> = sim
        .messages(sys)
        .into_iter()
        .map(|m| (m.topic, m.payload))
        .collect();
    for (topic, value) in [
        ("$SYS/broker/uptime", "10 seconds"),
        ("$SYS/broker/version", "test-broker 1.0"),
        ("$SYS/broker/clients/connected", "2"),
        ("$SYS/broker/clients/total", "2"),
        ("$SYS/broker/messages/received", "1"),
        ("$SYS/broker/subscriptions/count", "2"),
        ("$SYS/broker/clients/maximum", "2"),
        ("$SYS/broker/publish/messages/received", "1"),
        // One PUBLISH in 10 s: 6 a minute, of which the 1-minute average
        // holds 1 - e^(-1/6) at the first fold.
        ("$SYS/broker/load/messages/received/1min", "0.92"),
    ] {
        assert_eq!(
            got.get(topic).map(String::as_str),
            Some(value),
            "{topic} in {got:?}"
        );
    }
    for topic in [
        "$SYS/broker/messages/sent",
        "$SYS/broker/bytes/received",
        "$SYS/broker/bytes/sent",
        "$SYS/broker/retained messages/count",
        // Mosquitto's names, so its dashboards keep working.
        "$SYS/broker/clients/expired",
        "$SYS/broker/publish/messages/sent",
        "$SYS/broker/publish/messages/dropped",
        "$SYS/broker/messages/stored",
        "$SYS/broker/store/messages/bytes",
        "$SYS/broker/load/messages/sent/1min",
        "$SYS/broker/load/bytes/received/5min",
        "$SYS/broker/load/connections/15min",
    ] {
        assert!(got.contains_key(topic), "{topic} missing from {got:?}");
    }
    assert!(sim.payloads(all).is_empty(), "a # subscriber saw $SYS");

    sim.advance(secs(10));
    let uptime: Vec<String> = sim
        .messages(sys)
        .into_iter()
        .filter(|m| m.topic == "$SYS/broker/uptime")
        .map(|m| m.payload)
        .collect();
    assert_eq!(uptime, ["20 seconds"]);
}

// ----- bad input ----------------------------------------------------------------------

/// Section 4.13, [MQTT-4.13.1-1]: a malformed packet ends that connection
/// (v5 with DISCONNECT 0x81 Malformed Packet; v311 by closing) and no other.
#[test]
fn malformed_packet_closes_only_that_connection() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        sim.subscribe(sub, "t", QoS::AtLeastOnce);
        let bad = sim.raw(v);
        sim.send_raw(bad, &encode(v, &[connect_packet(v, "bad", true)]));
        assert!(matches!(sim.peers[bad].received[..], [Packet::ConnAck(_)]));
        // PUBLISH with both QoS bits set: malformed [MQTT-3.3.1-4].
        sim.send_raw(bad, &[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01]);
        assert!(sim.broker_closed(bad), "{v:?}");
        let expected = v.is_v5().then_some(ReasonCode::MALFORMED_PACKET);
        assert_eq!(sim.disconnect_reason(bad), expected, "{v:?}");

        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        sim.publish(publisher, msg("t", "still here", QoS::AtLeastOnce, false));
        assert_eq!(sim.payloads(sub), ["still here"], "{v:?}");
        assert!(!sim.broker_closed(sub));
        assert_eq!(sim.broker().connection_count(), 2);
    }
}

/// v5 3.1.4 / v311 3.1.4 ("a reasonable amount of time"): a transport that
/// sends no CONNECT, or only part of one, is closed at the connect timeout.
#[test]
fn silent_connection_is_closed_at_the_connect_timeout() {
    let mut config = broker_config();
    config.server.connect_timeout = secs(5);
    let mut sim = new_sim(config);
    let silent = sim.raw(V5);
    let partial = sim.raw(V5);
    let connect = encode(V5, &[connect_packet(V5, "p", true)]);
    sim.send_raw(partial, &connect[..connect.len() - 2]);
    sim.advance(std::time::Duration::from_millis(4999));
    assert!(!sim.broker_closed(silent) && !sim.broker_closed(partial));
    sim.advance(std::time::Duration::from_millis(1));
    assert!(sim.broker_closed(silent) && sim.broker_closed(partial));
    assert!(
        sim.peers[silent].raw_in.is_empty(),
        "nothing is owed before CONNECT"
    );
    assert_eq!(sim.broker().connection_count(), 0);
}

/// v5 [MQTT-3.1.2-24] (the server's Maximum Packet Size), issue 5: a packet
/// announced over the limit is refused from its fixed header alone (v5
/// DISCONNECT 0x95) without the broker waiting for, or buffering, its body.
#[test]
fn packet_announced_over_the_maximum_size_is_refused_from_its_header() {
    for v in VERSIONS {
        let mut config = broker_config();
        config.server.limits.max_packet_size = 1024;
        let mut sim = new_sim(config);
        let i = sim.raw(v);
        sim.send_raw(i, &encode(v, &[connect_packet(v, "big", true)]));
        if v.is_v5() {
            let Packet::ConnAck(ack) = &sim.peers[i].received[0] else {
                panic!("no CONNACK");
            };
            assert_eq!(ack.props.maximum_packet_size.map(|n| n.get()), Some(1024));
        }
        // A PUBLISH announcing 1,000,000 bytes: fixed header only.
        sim.send_raw(i, &[0x30, 0xC0, 0x84, 0x3D]);
        assert!(sim.broker_closed(i), "{v:?}: waited for the body");
        let expected = v.is_v5().then_some(ReasonCode::PACKET_TOO_LARGE);
        assert_eq!(sim.disconnect_reason(i), expected, "{v:?}");
        assert_eq!(sim.broker().connection_count(), 0);

        // The same for a CONNECT announced over the limit: refused before
        // any CONNECT was accepted.
        let j = sim.raw(v);
        sim.send_raw(j, &[0x10, 0xC0, 0x84, 0x3D]);
        assert!(sim.broker_closed(j), "{v:?}: waited for the CONNECT body");
        assert_eq!(sim.broker().connection_count(), 0);
    }
}

// ----- stale identifiers -------------------------------------------------------------------

/// A `ConnId` of a freed connection reaches nothing, even once its slot
/// serves a new connection.
#[test]
fn calls_with_a_stale_conn_id_do_nothing() {
    let mut sim = new_sim(broker_config());
    let (old, _) = sim.connect_ok(cfg(V5, "old"));
    let stale = sim.peers[old].id.expect("opened");
    sim.drop_transport(old);
    assert_eq!(sim.broker().connection_count(), 0);
    let (new, _) = sim.connect_ok(cfg(V5, "new"));
    sim.subscribe(new, "t", QoS::AtLeastOnce);
    assert_ne!(sim.peers[new].id.expect("opened"), stale);

    let now = sim.now;
    let mut bytes = bytes::BytesMut::from(
        &encode(
            V5,
            &[Packet::Disconnect(
                mqtt_session::mqtt_codec::Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE),
            )],
        )[..],
    );
    sim.broker_mut().handle_read(stale, now, &mut bytes);
    sim.broker_mut().handle_eof(stale, now);
    sim.broker_mut()
        .close(stale, now, ReasonCode::ADMINISTRATIVE_ACTION);
    let mut out = bytes::BytesMut::new();
    assert_eq!(sim.broker_mut().poll_transmit(stale, now, &mut out), 0);
    assert!(out.is_empty());
    assert!(sim.broker_mut().poll_event().is_none());
    sim.run_until_idle();

    assert!(!sim.broker_closed(new));
    assert_eq!(sim.broker().connection_count(), 1);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.publish(publisher, msg("t", "alive", QoS::AtLeastOnce, false));
    assert_eq!(sim.payloads(new), ["alive"]);
}

// ----- more on sessions, flow control and limits ------------------------------------------

/// v5 and v311 [MQTT-4.4.0-1], [MQTT-3.3.1-1]: a QoS 1 message the client had
/// not acknowledged when its connection broke is sent again when the session
/// resumes, with its original packet identifier and DUP set.
#[test]
fn unacknowledged_messages_are_resent_with_dup_on_resumption() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (sub, _) = sim.connect_ok(persistent(v, "sub", 3600));
        sim.subscribe(sub, "t", QoS::AtLeastOnce);
        sim.freeze(sub);
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        sim.publish(publisher, msg("t", "unacked", QoS::AtLeastOnce, false));
        let first = sim.peers[sub].received.iter().find_map(|p| match p {
            Packet::Publish(p) => Some((p.qos, p.dup)),
            _ => None,
        });
        let (qos, dup) = first.expect("the broker sent the message");
        assert!(!dup);
        sim.drop_transport(sub);

        let (sub, present) = sim.connect_ok(persistent(v, "sub", 3600));
        assert!(present);
        let again = sim.peers[sub].received.iter().find_map(|p| match p {
            Packet::Publish(p) => Some((p.qos, p.dup)),
            _ => None,
        });
        assert_eq!(again, Some((qos, true)), "{v:?}");
        assert_eq!(sim.payloads(sub), ["unacked"]);
    }
}

/// Issue 5 (bounded per-connection queues) with v5 3.3.4 flow control: a
/// connected subscriber that stops reading has at most its Receive Maximum
/// in flight and `max_queued` waiting; further messages are dropped for it
/// and counted, other subscribers keep receiving, and once it resumes it
/// gets what was kept, in order.
#[test]
fn slow_subscriber_queue_is_bounded_and_does_not_hold_up_others() {
    let mut config = broker_config();
    config.server.limits.max_queued = 3;
    let mut sim = new_sim(config);
    let mut slow = cfg(V5, "slow");
    slow.limits.receive_maximum = 2;
    let (slow, _) = sim.connect_ok(slow);
    let (fast, _) = sim.connect_ok(cfg(V5, "fast"));
    sim.subscribe(slow, "t", QoS::AtLeastOnce);
    sim.subscribe(fast, "t", QoS::AtLeastOnce);
    sim.freeze(slow);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let now = sim.now;
    for n in 0..10 {
        sim.client(publisher)
            .publish(now, msg("t", &format!("m{n}"), QoS::AtLeastOnce, false))
            .unwrap();
    }
    sim.run_until_idle();
    // Flow control holds the acknowledgements (and the publisher's later
    // messages) until the slow subscriber counts as stalled (five seconds
    // without progress); then they all succeed.
    sim.advance(secs(6));
    let reasons: Vec<ReasonCode> = sim.peers[publisher]
        .events
        .iter()
        .filter_map(|e| match e {
            mqtt_session::ClientEvent::Published { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [ReasonCode::SUCCESS; 10]);
    assert_eq!(sim.payloads(fast).len(), 10);
    assert_eq!(sim.broker().stats().messages_dropped, 5);
    assert_eq!(sim.broker().stats().dropped_for(DropReason::QueueFull), 5);
    sim.thaw(slow);
    assert_eq!(sim.payloads(slow), ["m0", "m1", "m2", "m3", "m4"]);
}

/// v5 [MQTT-3.1.2-25]: the server never sends a packet over the client's
/// Maximum Packet Size; such a message is dropped for that subscriber only
/// (and counted), which stays connected.
#[test]
fn v5_message_over_a_subscriber_maximum_packet_size_is_dropped_for_it() {
    let mut sim = new_sim(broker_config());
    let mut small = cfg(V5, "small");
    small.limits.max_packet_size = 64;
    let (small, _) = sim.connect_ok(small);
    let (big, _) = sim.connect_ok(cfg(V5, "big"));
    sim.subscribe(small, "t", QoS::AtLeastOnce);
    sim.subscribe(big, "t", QoS::AtLeastOnce);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let large = "x".repeat(100);
    sim.publish(publisher, msg("t", &large, QoS::AtLeastOnce, false));
    sim.publish(publisher, msg("t", "short", QoS::AtLeastOnce, false));
    assert_eq!(sim.payloads(big), [large.as_str(), "short"]);
    assert_eq!(sim.payloads(small), ["short"]);
    assert!(!sim.broker_closed(small));
    assert_eq!(sim.broker().stats().messages_dropped, 1);
    assert_eq!(sim.broker().stats().dropped_for(DropReason::TooLarge), 1);
}

/// v5 3.1.2.11.2: the Session Expiry Interval counts from the latest
/// disconnection; the timer of an earlier one does not remove a session that
/// was resumed and left again.
#[test]
fn v5_session_expiry_counts_from_the_latest_disconnection() {
    let mut sim = new_sim(broker_config());
    let (sub, _) = sim.connect_ok(persistent(V5, "sub", 60));
    sim.subscribe(sub, "t", QoS::AtLeastOnce);
    sim.drop_transport(sub);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.advance(secs(30));
    let (sub, present) = sim.connect_ok(persistent(V5, "sub", 60));
    assert!(present);
    sim.advance(secs(10));
    sim.drop_transport(sub);
    sim.advance(secs(25)); // 65 s after the first disconnection
    assert_eq!(
        sim.publish(publisher, msg("t", "kept", QoS::AtLeastOnce, false)),
        Some(ReasonCode::SUCCESS),
        "an earlier expiry timer removed the session"
    );
    sim.advance(secs(35)); // 60 s after the second
    assert_eq!(
        sim.publish(publisher, msg("t", "gone", QoS::AtLeastOnce, false)),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
}

/// v5 3.14.2.2.2: a DISCONNECT may change the Session Expiry Interval; set
/// to 0 there, the session ends with the connection. (Setting a non-zero one
/// after CONNECT set 0 is a Protocol Error [MQTT-3.14.2-2].)
#[test]
fn v5_disconnect_can_end_the_session_with_the_connection() {
    use mqtt_session::mqtt_codec::{Disconnect, PacketId, Subscribe};
    let mut sim = new_sim(broker_config());
    let raw = sim.raw(V5);
    let mut connect = connect_packet(V5, "raw", false);
    if let Packet::Connect(c) = &mut connect {
        c.props.session_expiry_interval = Some(3600);
    }
    let subscribe = Packet::Subscribe(Subscribe {
        id: PacketId::new(1).unwrap(),
        props: Default::default(),
        filters: vec![(filter("t"), SubscriptionOptions::new(QoS::AtLeastOnce))],
    });
    sim.send_raw(raw, &encode(V5, &[connect, subscribe]));
    assert!(matches!(
        sim.peers[raw].received[..],
        [Packet::ConnAck(_), Packet::SubAck(_)]
    ));
    let mut disconnect = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    disconnect.props.session_expiry_interval = Some(0);
    sim.send_raw(raw, &encode(V5, &[Packet::Disconnect(disconnect)]));
    assert!(sim.broker_closed(raw));

    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    assert_eq!(
        sim.publish(publisher, msg("t", "x", QoS::AtLeastOnce, false)),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS),
        "the session outlived a DISCONNECT with expiry 0"
    );
    let (_, present) = sim.connect_ok(persistent(V5, "raw", 3600));
    assert!(!present);
}

/// v5 3.2.2.3.2: a broker that caps the Session Expiry Interval says so in
/// CONNACK, and the session ends at the capped interval. The cap applies to
/// v311 persistent sessions too (which otherwise never expire), like
/// Mosquitto's `persistent_client_expiration`.
#[test]
fn session_expiry_is_capped_by_the_broker() {
    let config = BrokerConfig {
        max_session_expiry: 30,
        ..broker_config()
    };
    let mut sim = new_sim(config);
    let (sub, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    let caps = sim.client(sub).server_caps().cloned().expect("connected");
    assert_eq!(caps.session_expiry_interval, 30);
    sim.subscribe(sub, "t", QoS::AtLeastOnce);
    sim.drop_transport(sub);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.advance(secs(30));
    assert_eq!(
        sim.publish(publisher, msg("t", "late", QoS::AtLeastOnce, false)),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );

    let (old, _) = sim.connect_ok(persistent(V311, "old", 0));
    sim.subscribe(old, "t", QoS::AtLeastOnce);
    sim.drop_transport(old);
    sim.advance(secs(29));
    let (old, present) = sim.connect_ok(persistent(V311, "old", 0));
    assert!(present, "v311 session removed before the cap");
    sim.drop_transport(old);
    sim.advance(secs(30));
    let (_, present) = sim.connect_ok(persistent(V311, "old", 0));
    assert!(!present, "v311 session outlived the cap");
}

/// v5 [MQTT-3.1.2-15], v311 [MQTT-3.1.2-17]: a will with Will Retain set is
/// published as a retained message.
#[test]
fn will_with_retain_is_published_retained() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let mut c = cfg(v, "w");
        let mut w = will("status/w", "offline", None);
        w.retain = true;
        c.will = Some(w);
        let (client, _) = sim.connect_ok(c);
        sim.drop_transport(client);
        let (late, _) = sim.connect_ok(cfg(v, "late"));
        sim.subscribe(late, "status/+", QoS::AtLeastOnce);
        let got = sim.messages(late);
        assert_eq!(got.len(), 1, "{v:?}");
        assert_eq!((got[0].payload.as_str(), got[0].retain), ("offline", true));
    }
}

/// Issue 5 (retained count and size limits): a retained message over a limit
/// is not stored (a v5 publisher hears 0x97 Quota exceeded) but is still
/// routed; replacing one at the count limit is allowed.
#[test]
fn retained_limits_keep_messages_out_of_the_store() {
    let config = BrokerConfig {
        max_retained: 1,
        max_retained_payload: 8,
        ..broker_config()
    };
    let mut sim = new_sim(config);
    let (live, _) = sim.connect_ok(cfg(V5, "live"));
    sim.subscribe(live, "#", QoS::AtLeastOnce);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let publish =
        |sim: &mut Sim, t: &str, p: &str| sim.publish(publisher, msg(t, p, QoS::AtLeastOnce, true));
    assert_eq!(publish(&mut sim, "a", "first"), Some(ReasonCode::SUCCESS));
    assert_eq!(
        publish(&mut sim, "b", "x"),
        Some(ReasonCode::QUOTA_EXCEEDED)
    );
    assert_eq!(
        publish(&mut sim, "a", "replaced"),
        Some(ReasonCode::SUCCESS)
    );
    assert_eq!(
        publish(&mut sim, "a", "too large"),
        Some(ReasonCode::QUOTA_EXCEEDED)
    );
    assert_eq!(sim.payloads(live), ["first", "x", "replaced", "too large"]);
    assert_eq!(sim.broker().stats().retained_refused, 2);

    let (late, _) = sim.connect_ok(cfg(V5, "late"));
    sim.subscribe(late, "#", QoS::AtLeastOnce);
    assert_eq!(sim.payloads(late), ["replaced"]);
}

// ----- more bad input and connection handling -----------------------------------------------

/// v5 and v311 [MQTT-3.1.0-2]: a second CONNECT is a protocol violation;
/// the connection is closed (v5 with DISCONNECT 0x82 Protocol Error).
#[test]
fn second_connect_closes_with_protocol_error() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let i = sim.raw(v);
        let connect = encode(v, &[connect_packet(v, "twice", true)]);
        sim.send_raw(i, &connect);
        assert!(!sim.broker_closed(i));
        sim.send_raw(i, &connect);
        assert!(sim.broker_closed(i), "{v:?}");
        let expected = v.is_v5().then_some(ReasonCode::PROTOCOL_ERROR);
        assert_eq!(sim.disconnect_reason(i), expected, "{v:?}");
        assert_eq!(sim.broker().connection_count(), 0);
    }
}

/// v5 [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol
/// Error: the connection ends with DISCONNECT 0x82 (there is no SUBACK code
/// for it), and nothing is subscribed.
#[test]
fn v5_no_local_on_a_shared_subscription_is_a_protocol_error() {
    let mut sim = new_sim(broker_config());
    let raw = sim.raw(V5);
    sim.send_raw(raw, &encode(V5, &[connect_packet(V5, "nl", true)]));
    // SUBSCRIBE id 1, no properties, "$share/g/t" with QoS 1 + No Local.
    let mut subscribe = vec![0x82, 16, 0, 1, 0, 0, 10];
    subscribe.extend_from_slice(b"$share/g/t");
    subscribe.push(0x05);
    sim.send_raw(raw, &subscribe);
    assert!(sim.broker_closed(raw));
    assert_eq!(sim.disconnect_reason(raw), Some(ReasonCode::PROTOCOL_ERROR));
    assert!(!sim.peers[raw]
        .received
        .iter()
        .any(|p| matches!(p, Packet::SubAck(_))));
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    assert_eq!(
        sim.publish(publisher, msg("t", "x", QoS::AtLeastOnce, false)),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
}

/// Issue 5 (connection count limit): `open` refuses transports over
/// `max_connections`, and accepts again once one has gone.
#[test]
fn open_refuses_connections_over_the_limit() {
    let config = BrokerConfig {
        max_connections: 2,
        ..broker_config()
    };
    let mut sim = new_sim(config);
    let (a, _) = sim.connect_ok(cfg(V5, "a"));
    sim.raw(V5);
    let now = sim.now;
    assert_eq!(
        sim.broker_mut().open(now, Default::default()),
        Err(mqtt_router::broker::OpenError::TooManyConnections(2))
    );
    sim.drop_transport(a);
    sim.connect_ok(cfg(V5, "b"));
}

/// Issue 5 (shutdown: v5 clients get DISCONNECT 0x8B): `Broker::close`
/// sends its reason in a v5 DISCONNECT (a v311 connection just ends), and
/// the connection is freed once that is written.
#[test]
fn broker_close_tells_v5_clients_the_reason() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (c, _) = sim.connect_ok(cfg(v, "c"));
        let now = sim.now;
        let id = sim.peers[c].id.expect("opened");
        assert_eq!(sim.broker().connections(), [id]);
        sim.broker_mut().close(id, now, ReasonCode::SERVER_SHUTTING_DOWN);
        sim.run_until_idle();
        assert!(sim.broker_closed(c));
        let expected = v.is_v5().then_some(ReasonCode::SERVER_SHUTTING_DOWN);
        assert_eq!(sim.disconnect_reason(c), expected, "{v:?}");
        assert!(sim.client_closed(c).is_some());
        assert_eq!(sim.broker().connection_count(), 0);
    }
}

/// A broker whose subscribers hold 20 queued messages, half of which is the
/// high-water mark, and whose publishers may have 8 unacknowledged.
fn flow_config() -> BrokerConfig {
    let mut config = broker_config();
    config.pause_publishers = true;
    config.server.limits.max_queued = 20;
    config.server.limits.max_inflight = 5;
    config.server.limits.receive_maximum = 8;
    config
}

/// Publishes `n` QoS 1 messages from peer `i` without waiting, and pumps.
fn publish_burst(sim: &mut Sim, i: usize, n: usize) {
    let now = sim.now;
    for k in 0..n {
        sim.client(i)
            .publish(now, msg("t", &k.to_string(), QoS::AtLeastOnce, false))
            .expect("the client queues it");
    }
    sim.run_until_idle();
}

fn completed(sim: &Sim, i: usize) -> usize {
    sim.peers[i]
        .events
        .iter()
        .filter(|e| matches!(e, mqtt_session::ClientEvent::Published { .. }))
        .count()
}

/// Flow control: publishes that reach a subscriber past its high-water mark
/// are acknowledged only once it drains, so the publisher slows to its pace
/// and nothing is dropped; every message arrives, in order.
#[test]
fn a_busy_subscriber_slows_its_publishers_instead_of_losing_messages() {
    for v in VERSIONS {
        let mut sim = new_sim(flow_config());
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        sim.subscribe(sub, "t", QoS::AtLeastOnce);
        // A 3.1.1 publisher has no Receive Maximum from the server: its own
        // window bounds what it has unacknowledged.
        let mut publisher_cfg = cfg(v, "pub");
        publisher_cfg.limits.max_inflight = 8;
        let (publisher, _) = sim.connect_ok(publisher_cfg);
        sim.freeze(sub);
        publish_burst(&mut sim, publisher, 60);
        assert!(completed(&sim, publisher) < 60, "{v:?}: acknowledgements are held");
        assert!(sim.broker().stats().acks_held > 0);
        for _ in 0..10 {
            sim.thaw(sub);
        }
        assert_eq!(completed(&sim, publisher), 60, "{v:?}");
        let expected: Vec<String> = (0..60).map(|k| k.to_string()).collect();
        assert_eq!(sim.payloads(sub), expected, "{v:?}");
        assert_eq!(sim.broker().stats().messages_dropped, 0, "{v:?}");
    }
}

/// A publish waiting in a paused publisher's input has had no effect yet
/// (`Broker::input_waiting` counts it): it is routed when the subscriber
/// drains, to the subscriptions there are then, one made meanwhile
/// included, as if the network had delivered it then [MQTT-4.5.0-1].
#[test]
fn a_waiting_publish_reaches_a_subscription_made_before_it_is_taken_up() {
    let mut sim = new_sim(flow_config());
    let (sub, _) = sim.connect_ok(cfg(V5, "sub"));
    sim.subscribe(sub, "t", QoS::AtLeastOnce);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let id = sim.peers[publisher].id.expect("connected");
    sim.freeze(sub);
    publish_burst(&mut sim, publisher, 30);
    assert!(sim.broker().input_waiting(id) > 0, "the paused input waits");
    let (late, _) = sim.connect_ok(cfg(V5, "late"));
    sim.subscribe(late, "t", QoS::AtLeastOnce);
    assert!(sim.payloads(late).is_empty(), "nothing of it routed yet");
    for _ in 0..10 {
        sim.thaw(sub);
    }
    assert_eq!(sim.broker().input_waiting(id), 0, "all taken up");
    assert_eq!(completed(&sim, publisher), 30);
    let got = sim.payloads(late);
    assert!(!got.contains(&"0".to_owned()), "routed before it subscribed");
    assert!(got.contains(&"29".to_owned()), "routed after: {got:?}");
}

/// A subscriber that takes nothing for five seconds counts as stalled: the
/// acknowledgements it held go out, it holds no one back any more, and its
/// own queue sheds load (counted), while the other subscribers get every
/// message.
#[test]
fn a_stalled_subscriber_does_not_hold_the_others_back() {
    let mut sim = new_sim(flow_config());
    let (stalled, _) = sim.connect_ok(cfg(V5, "stalled"));
    sim.subscribe(stalled, "t", QoS::AtLeastOnce);
    let (healthy, _) = sim.connect_ok(cfg(V5, "healthy"));
    sim.subscribe(healthy, "t", QoS::AtLeastOnce);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.freeze(stalled);
    publish_burst(&mut sim, publisher, 60);
    assert!(completed(&sim, publisher) < 60);
    sim.advance(secs(4));
    assert!(completed(&sim, publisher) < 60, "not stalled yet");
    sim.advance(secs(2));
    assert_eq!(completed(&sim, publisher), 60);
    let expected: Vec<String> = (0..60).map(|k| k.to_string()).collect();
    assert_eq!(sim.payloads(healthy), expected);
    assert!(sim.broker().stats().messages_dropped > 0, "the stalled queue shed load");
}

/// More publishers than the headroom above a subscriber's high-water mark
/// (12 windows of 8 against 10): each publisher is paused at its first held
/// acknowledgement (its later messages wait in the core, and the adapter is
/// told to stop reading it), so a subscriber that keeps reading loses
/// nothing that was acknowledged, at either version.
#[test]
fn many_publishers_are_paused_so_a_reading_subscriber_loses_nothing() {
    for v in VERSIONS {
        let mut sim = new_sim(flow_config());
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        sim.subscribe(sub, "t", QoS::AtLeastOnce);
        let publishers: Vec<_> = (0..12)
            .map(|k| {
                let mut c = cfg(v, &format!("pub{k}"));
                c.limits.max_inflight = 8;
                sim.connect_ok(c).0
            })
            .collect();
        sim.freeze(sub);
        for &p in &publishers {
            let now = sim.now;
            for k in 0..30 {
                sim.client(p)
                    .publish(now, msg("t", &format!("{p}:{k}"), QoS::AtLeastOnce, false))
                    .expect("the client queues it");
            }
        }
        sim.run_until_idle();
        let paused: Vec<_> = std::iter::from_fn(|| sim.broker_mut().poll_reading()).collect();
        assert!(
            paused.iter().any(|(_, reading)| !reading),
            "{v:?}: some publisher is no longer read"
        );
        for _ in 0..200 {
            sim.thaw(sub);
        }
        for &p in &publishers {
            assert_eq!(completed(&sim, p), 30, "{v:?}: publisher {p}");
        }
        let got = sim.payloads(sub);
        let distinct: std::collections::HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), 12 * 30, "{v:?}: every acknowledged message arrives");
        assert_eq!(sim.broker().stats().messages_dropped, 0, "{v:?}");
        let resumed: Vec<_> = std::iter::from_fn(|| sim.broker_mut().poll_reading()).collect();
        assert!(resumed.iter().all(|(_, reading)| *reading), "{v:?}: all read again");
    }
}

/// A client that feeds its own subscription is held back but never paused:
/// unread, it could not acknowledge what it receives and would never drain.
/// Everything arrives without waiting for the stall time.
#[test]
fn a_client_feeding_its_own_subscription_is_not_paused() {
    for v in VERSIONS {
        let mut sim = new_sim(flow_config());
        let mut c = cfg(v, "echo");
        c.limits.max_inflight = 50;
        let (echo, _) = sim.connect_ok(c);
        sim.subscribe(echo, "t", QoS::AtLeastOnce);
        publish_burst(&mut sim, echo, 60);
        assert_eq!(completed(&sim, echo), 60, "{v:?}");
        let expected: Vec<String> = (0..60).map(|k| k.to_string()).collect();
        assert_eq!(sim.payloads(echo), expected, "{v:?}");
        assert_eq!(sim.broker().stats().messages_dropped, 0, "{v:?}");
        assert_eq!(sim.broker().stats().subscribers_stalled, 0, "{v:?}");
    }
}
