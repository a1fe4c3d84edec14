//! Whole flows through a client and a server back to back, at MQTT 3.1,
//! 3.1.1 and 5.0: QoS 0/1/2 in both directions with the exact packets on the
//! wire, subscribe and unsubscribe, resumption with DUP, in-flight windows,
//! topic aliases, and a take-over that moves the session to a new connection.
//!
//! Each flow is a function of the protocol version; `at_each_version!` makes
//! one test per version of it (`<flow>::v3_1`, `<flow>::v3_1_1`, `<flow>::v5`).

mod common;

use bytes::Bytes;
use common::*;
use mqtt_session::mqtt_codec::{
    Packet, ProtocolVersion, QoS, QosPid, ReasonCode, SubAck, SubscriptionOptions,
};
use mqtt_session::{
    ClientConfig, ClientEvent, DeliveryOptions, Initiator, Limits, ServerConfig, ServerEvent,
};

use ProtocolVersion::{V31, V311, V5};
use Side::{Client as C, Server as S};

macro_rules! at_each_version {
    ($($flow:ident),* $(,)?) => {$(
        mod $flow {
            use super::*;
            #[test]
            fn v3_1() {
                super::$flow(V31)
            }
            #[test]
            fn v3_1_1() {
                super::$flow(V311)
            }
            #[test]
            fn v5() {
                super::$flow(V5)
            }
        }
    )*};
}

at_each_version!(
    qos0_both_directions,
    qos1_both_directions,
    qos2_both_directions,
    unsubscribe_stops_delivery,
    resume_resends_with_dup_and_delivers_qos2_once,
    in_flight_window_is_never_exceeded,
    take_over_moves_the_session_to_the_new_connection,
    a_session_the_server_lost_starts_over,
);

fn suback(id: u16, granted: QoS) -> Packet {
    Packet::SubAck(SubAck {
        id: pid(id),
        props: Default::default(),
        reasons: vec![ReasonCode(granted as u8)],
    })
}

/// A pair running the full broker policy, subscribed to `f` at `qos`;
/// transcripts and logs cleared.
fn subscribed(cfg: ClientConfig, f: &str, qos: QoS) -> Pair {
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::full());
    p.client
        .subscribe(
            p.now,
            vec![(filter(f), SubscriptionOptions::new(qos))],
            None,
        )
        .unwrap();
    p.exchange();
    assert_eq!(
        p.take_wire(),
        [(C, subscribe(1, f, qos)), (S, suback(1, qos)),]
    );
    assert!(matches!(
        p.take_client_events().as_slice(),
        [ClientEvent::Subscribed { results, .. }] if results == &[ReasonCode(qos as u8)]
    ));
    p.clear();
    p
}

fn payloads(p: &Pair) -> Vec<Bytes> {
    p.client_messages()
        .iter()
        .map(|m| m.payload.clone())
        .collect()
}

/// QoS 0: one PUBLISH each way, no answer, no identifier.
fn qos0_both_directions(v: ProtocolVersion) {
    let mut p = subscribed(client_config(v), "t/+", QoS::AtMostOnce);
    assert_eq!(
        p.client.publish(p.now, msg("t/a", "zero", QoS::AtMostOnce)),
        Ok(None)
    );
    p.exchange();
    let zero = publish("t/a", "zero", QosPid::AtMostOnce, false);
    assert_eq!(p.take_wire(), [(C, zero.clone()), (S, zero)]);
    assert_eq!(payloads(&p), [Bytes::from("zero")]);
}

/// QoS 1 both ways: the client publishes, the server acknowledges and
/// delivers the message back at QoS 1, the client acknowledges.
fn qos1_both_directions(v: ProtocolVersion) {
    let mut p = subscribed(client_config(v), "t/#", QoS::AtLeastOnce);
    for i in 0..3 {
        let id = p
            .client
            .publish(p.now, msg("t/a", &format!("m{i}"), QoS::AtLeastOnce))
            .unwrap();
        assert_eq!(
            id,
            Some(pid(2 + i)),
            "identifiers continue after SUBSCRIBE's"
        );
    }
    p.exchange();
    let up = |id: u16, m: &str| publish1("t/a", m, id);
    assert_eq!(
        p.take_wire(),
        [
            (C, up(2, "m0")),
            (C, up(3, "m1")),
            (C, up(4, "m2")),
            (S, up(1, "m0")),
            (S, puback(2)),
            (S, up(2, "m1")),
            (S, puback(3)),
            (S, up(3, "m2")),
            (S, puback(4)),
            (C, puback(1)),
            (C, puback(2)),
            (C, puback(3)),
        ]
    );
    let evs: Vec<String> = p
        .client_events
        .iter()
        .map(|e| match e {
            ClientEvent::Message { msg, .. } => format!("message {:?}", msg.payload),
            ClientEvent::Published { id, reason, .. } => {
                format!("published {} {:?}", id.get(), reason)
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        evs,
        [
            "message b\"m0\"",
            "published 2 ReasonCode(0x00 success)",
            "message b\"m1\"",
            "published 3 ReasonCode(0x00 success)",
            "message b\"m2\"",
            "published 4 ReasonCode(0x00 success)",
        ]
    );
    assert_eq!(p.client.session().unwrap().inflight(), 0);
    assert_eq!(p.server.session().unwrap().inflight(), 0);
}

/// QoS 2 both ways, the eight packets in the order they cross.
fn qos2_both_directions(v: ProtocolVersion) {
    let mut p = subscribed(client_config(v), "t", QoS::ExactlyOnce);
    let id = p
        .client
        .publish(p.now, msg("t", "once", QoS::ExactlyOnce))
        .unwrap();
    assert_eq!(id, Some(pid(2)));
    p.exchange();
    assert_eq!(
        p.take_wire(),
        [
            (C, publish2("t", "once", 2)),
            (S, publish2("t", "once", 1)),
            (S, pubrec(2)),
            (C, pubrec(1)),
            (C, pubrel(2)),
            (S, pubrel(1)),
            (S, pubcomp(2)),
            (C, pubcomp(1)),
        ]
    );
    assert_eq!(payloads(&p), [Bytes::from("once")]);
    assert!(matches!(
        p.client_events.last(),
        Some(ClientEvent::Published { id, reason: ReasonCode::SUCCESS, .. }) if *id == pid(2)
    ));
    assert_eq!(p.client.session().unwrap().incomplete_inbound(), 0);
    assert_eq!(p.server.session().unwrap().incomplete_inbound(), 0);
}

/// SUBSCRIBE / UNSUBSCRIBE and their answers: after UNSUBACK nothing matching
/// the removed filter is delivered (section 3.10.4). UNSUBACK carries one
/// result per filter under 5.0 and none before.
fn unsubscribe_stops_delivery(v: ProtocolVersion) {
    let mut p = subscribed(client_config(v), "t/#", QoS::AtLeastOnce);
    p.client
        .publish(p.now, msg("t/x", "before", QoS::AtLeastOnce))
        .unwrap();
    p.exchange();
    let id = p.client.unsubscribe(p.now, vec![filter("t/#")]).unwrap();
    p.exchange();
    let results = p
        .client_events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Unsubscribed {
                id: done, results, ..
            } if *done == id => Some(results.clone()),
            _ => None,
        })
        .expect("UNSUBACK");
    let expected: &[ReasonCode] = if v == V5 { &[ReasonCode::SUCCESS] } else { &[] };
    assert_eq!(results, expected);
    p.client
        .publish(p.now, msg("t/x", "after", QoS::AtLeastOnce))
        .unwrap();
    p.exchange();
    assert_eq!(payloads(&p), [Bytes::from("before")]);
    // The publish itself still completes (5.0: "no matching subscribers").
    let reasons: Vec<ReasonCode> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Published { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    let none = if v == V5 {
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    } else {
        ReasonCode::SUCCESS
    };
    assert_eq!(reasons, [ReasonCode::SUCCESS, none]);
}

/// [MQTT-4.4.0-1]: the connection breaks after the server took both messages
/// and before any answer left it. On resumption both sides resend with DUP;
/// the QoS 1 message may arrive twice, the QoS 2 message arrives once.
fn resume_resends_with_dup_and_delivers_qos2_once(v: ProtocolVersion) {
    let mut cfg = client_config(v);
    cfg.clean_start = false;
    let mut p = subscribed(cfg, "t", QoS::ExactlyOnce);
    let a = p
        .client
        .publish(p.now, msg("t", "A", QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    let b = p
        .client
        .publish(p.now, msg("t", "B", QoS::ExactlyOnce))
        .unwrap()
        .unwrap();
    // The server reads both, routes and answers them; nothing gets back.
    assert!(p.step_c2s());
    assert_eq!(p.server_messages().len(), 2);
    p.reconnect();
    p.exchange();
    let resent: Vec<(Side, Packet)> = p
        .wire
        .iter()
        .filter(|(_, x)| matches!(x, Packet::Publish(x) if x.dup))
        .cloned()
        .collect();
    assert_eq!(
        resent,
        [
            (S, publish("t", "A", QosPid::AtLeastOnce(pid(1)), true)),
            (S, publish("t", "B", QosPid::ExactlyOnce(pid(2)), true)),
            (C, publish("t", "A", QosPid::AtLeastOnce(a), true)),
            (C, publish("t", "B", QosPid::ExactlyOnce(b), true)),
        ]
    );
    // A is a new publication for the server after its PUBACK was lost
    // [MQTT-4.3.2-2], so it goes round again; B is not [MQTT-4.3.3-2].
    assert_eq!(p.server_messages().len(), 3);
    let got = payloads(&p);
    assert_eq!(
        got.iter().filter(|m| m[..] == b"B"[..]).count(),
        1,
        "{got:?}"
    );
    assert!(got.iter().filter(|m| m[..] == b"A"[..]).count() >= 1);
    assert_eq!(p.client.session().unwrap().inflight(), 0);
    assert_eq!(p.server.session().unwrap().inflight(), 0);
    assert_eq!(p.server.session().unwrap().incomplete_inbound(), 0);
    assert_eq!(p.client.session().unwrap().incomplete_inbound(), 0);
}

/// The sender never has more QoS 1/2 publishes out than the window allows:
/// `Limits::max_inflight` before 5.0, the peer's Receive Maximum under 5.0;
/// every message still arrives, in order.
fn in_flight_window_is_never_exceeded(v: ProtocolVersion) {
    let mut cfg = client_config(v);
    let server_limits = Limits {
        receive_maximum: 2,
        max_inflight: 3,
        ..Limits::default()
    };
    cfg.limits.receive_maximum = 3;
    cfg.limits.max_inflight = 2;
    let server_cfg = ServerConfig {
        limits: server_limits,
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg, Broker::full());
    p.client
        .subscribe(
            p.now,
            vec![(filter("t"), SubscriptionOptions::new(QoS::ExactlyOnce))],
            None,
        )
        .unwrap();
    p.exchange();
    p.clear();
    for i in 0..12 {
        let q = [QoS::AtLeastOnce, QoS::ExactlyOnce][i % 2];
        p.client
            .publish(p.now, msg("t", &i.to_string(), q))
            .unwrap();
    }
    // Client to server: 2 (its own cap, and the server's receive maximum).
    // Server to client: 3 (the client's receive maximum and the server's
    // cap under 5.0; the server's cap of 3 before).
    let (mut max_up, mut max_down) = (0, 0);
    loop {
        let a = p.step_c2s();
        max_up = max_up.max(outstanding(&p.c2s, &p.s2c));
        max_down = max_down.max(outstanding(&p.s2c, &p.c2s));
        let b = p.step_s2c();
        max_up = max_up.max(outstanding(&p.c2s, &p.s2c));
        max_down = max_down.max(outstanding(&p.s2c, &p.c2s));
        if !a && !b {
            break;
        }
    }
    assert_eq!(max_up, 2);
    assert!(max_down <= 3);
    let expected: Vec<Bytes> = (0..12).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(payloads(&p), expected);
    // The server's own deliveries, all at once.
    p.clear();
    for i in 0..12 {
        p.server
            .deliver(
                p.now,
                msg("t", &i.to_string(), QoS::AtLeastOnce),
                mqtt_session::DeliveryOptions::new(QoS::AtLeastOnce),
            )
            .unwrap();
    }
    let mut max_down = 0;
    loop {
        let a = p.step_s2c();
        max_down = max_down.max(outstanding(&p.s2c, &p.c2s));
        let b = p.step_c2s();
        max_down = max_down.max(outstanding(&p.s2c, &p.c2s));
        if !a && !b {
            break;
        }
    }
    assert_eq!(max_down, 3);
    assert_eq!(payloads(&p), expected);
}

/// A second connection for the same client takes the session over: the
/// server closes the old connection (5.0: DISCONNECT 0x8E), the session moves
/// to the new one, which resumes what was in flight with DUP. The old
/// connection's will is due.
fn take_over_moves_the_session_to_the_new_connection(v: ProtocolVersion) {
    let mut cfg = client_config(v);
    cfg.clean_start = false;
    cfg.will = Some(mqtt_session::mqtt_codec::Will {
        topic: topic("gone"),
        payload: Bytes::from_static(b"c1"),
        qos: QoS::AtMostOnce,
        retain: false,
        props: Default::default(),
    });
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    for (m, q) in [("x", QoS::AtLeastOnce), ("y", QoS::ExactlyOnce)] {
        p.server
            .deliver(p.now, msg("t", m, q), mqtt_session::DeliveryOptions::new(q))
            .unwrap();
    }
    // The client reads both; its answers never reach the server.
    assert!(p.step_s2c());
    assert_eq!(p.client_messages().len(), 2);
    p.server.close(p.now, ReasonCode::SESSION_TAKEN_OVER);
    p.exchange();
    let old_server = server_close(&p.server_events).clone();
    assert_eq!(old_server.reason, ReasonCode::SESSION_TAKEN_OVER);
    assert_eq!(old_server.initiator, Initiator::Local);
    assert!(
        old_server.will.is_some(),
        "the old connection's will is due"
    );
    let old_client = client_close(&p.client_events).clone();
    if v == V5 {
        assert_eq!(
            (old_client.initiator, old_client.reason),
            (Initiator::Peer, ReasonCode::SESSION_TAKEN_OVER)
        );
    } else {
        assert_eq!(old_client.initiator, Initiator::Transport);
    }
    p.reconnect();
    p.clear();
    p.exchange();
    // (3.1 has no Session Present flag; its client assumes the session kept.)
    assert!(matches!(&p.s2c[0], Packet::ConnAck(c) if c.session_present || v == V31));
    assert!(matches!(
        &p.client_events[0],
        ClientEvent::Connected {
            session_present: true,
            ..
        }
    ));
    assert_eq!(
        p.s2c[1..3],
        [
            publish("t", "x", QosPid::AtLeastOnce(pid(1)), true),
            publish("t", "y", QosPid::ExactlyOnce(pid(2)), true),
        ]
    );
    // QoS 1 comes again; QoS 2 does not: the client's session remembers it.
    assert_eq!(payloads(&p), [Bytes::from("x")]);
    assert_eq!(p.server.session().unwrap().inflight(), 0);
    assert!(p
        .server_events
        .iter()
        .all(|e| !matches!(e, ServerEvent::Closed(_))));
}

/// A client that resumes its session with a server that lost it (Session
/// Present 0) discards the protocol state of it ([MQTT-3.2.2-5] of 5.0): what
/// was in flight is sent again as new publishes (DUP 0), nothing the
/// application handed over is lost.
fn a_session_the_server_lost_starts_over(v: ProtocolVersion) {
    let mut cfg = client_config(v);
    cfg.clean_start = false;
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    let a = p
        .client
        .publish(p.now, msg("t", "a", QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    p.reconnect();
    p.broker.session = None;
    p.clear();
    p.exchange();
    assert!(matches!(&p.s2c[0], Packet::ConnAck(c) if !c.session_present));
    // A 3.1 client cannot tell (no Session Present flag) and resends with DUP;
    // the server takes it as a new message all the same.
    assert_eq!(
        p.c2s[1],
        publish("t", "a", QosPid::AtLeastOnce(a), v == V31)
    );
    assert_eq!(p.server_messages().len(), 1);
}

// ----- 5.0 only ------------------------------------------------------------------

/// Topic aliases in both directions at once, each side within the other's
/// maximum; the mapping starts afresh on the next connection [MQTT-3.3.2-7].
#[test]
fn topic_aliases_both_ways_and_per_connection() {
    let mut cfg = client_config(V5);
    cfg.clean_start = false;
    cfg.limits.outbound_topic_alias_maximum = 16;
    cfg.limits.topic_alias_maximum = 1;
    let server_cfg = ServerConfig {
        limits: Limits {
            outbound_topic_alias_maximum: 16,
            topic_alias_maximum: 2,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg, Broker::full());
    p.client
        .subscribe(
            p.now,
            vec![(filter("#"), SubscriptionOptions::new(QoS::AtLeastOnce))],
            None,
        )
        .unwrap();
    p.exchange();
    p.clear();
    let topics = ["a/1", "b/2", "a/1", "a/1", "b/2", "c/3"];
    for t in topics {
        p.client
            .publish(p.now, msg(t, t, QoS::AtLeastOnce))
            .unwrap();
    }
    p.exchange();
    let aliases = |packets: &[Packet]| -> Vec<(bool, Option<u16>)> {
        packets
            .iter()
            .filter_map(|x| match x {
                Packet::Publish(x) => {
                    Some((x.topic.is_some(), x.props.topic_alias.map(|a| a.get())))
                }
                _ => None,
            })
            .collect()
    };
    // Client to server: maximum 2.
    assert_eq!(
        aliases(&p.c2s),
        [
            (true, Some(1)),
            (true, Some(2)),
            (false, Some(1)),
            (false, Some(1)),
            (false, Some(2)),
            (true, Some(1))
        ]
    );
    // Server to client: maximum 1.
    assert_eq!(
        aliases(&p.s2c),
        [
            (true, Some(1)),
            (true, Some(1)),
            (true, Some(1)),
            (false, Some(1)),
            (true, Some(1)),
            (true, Some(1))
        ]
    );
    let got: Vec<String> = p
        .client_messages()
        .iter()
        .map(|m| m.topic.to_string())
        .collect();
    assert_eq!(got, topics);
    let got: Vec<String> = p
        .server_messages()
        .iter()
        .map(|m| m.topic.to_string())
        .collect();
    assert_eq!(got, topics);

    p.reconnect();
    p.exchange();
    p.clear();
    p.client
        .publish(p.now, msg("a/1", "again", QoS::AtLeastOnce))
        .unwrap();
    p.exchange();
    assert_eq!(aliases(&p.c2s), [(true, Some(1))]);
    assert_eq!(aliases(&p.s2c), [(true, Some(1))]);
    assert_eq!(p.client_messages()[0].topic, topic("a/1"));
}

/// Under 5.0 the window is the smaller of the peer's Receive Maximum and the
/// local cap; with a Receive Maximum of 1 the exchange is strictly one at a
/// time and stays in order across a resumption.
#[test]
fn receive_maximum_of_one_keeps_order_across_a_resumption() {
    let mut cfg = client_config(V5);
    cfg.clean_start = false;
    cfg.limits.receive_maximum = 1;
    let server_cfg = ServerConfig {
        limits: Limits {
            receive_maximum: 1,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg, Broker::full());
    p.client
        .subscribe(
            p.now,
            vec![(filter("t"), SubscriptionOptions::new(QoS::ExactlyOnce))],
            None,
        )
        .unwrap();
    p.exchange();
    p.clear();
    for i in 0..6 {
        p.client
            .publish(p.now, msg("t", &i.to_string(), QoS::ExactlyOnce))
            .unwrap();
    }
    // Part of the way, then the connection breaks.
    for _ in 0..5 {
        p.step_c2s();
        p.step_s2c();
        assert!(outstanding(&p.c2s, &p.s2c) <= 1);
        assert!(outstanding(&p.s2c, &p.c2s) <= 1);
    }
    p.reconnect();
    p.exchange();
    let expected: Vec<Bytes> = (0..6).map(|i| Bytes::from(i.to_string())).collect();
    assert_eq!(payloads(&p), expected, "each exactly once, in order");
}

/// QoS 0 publishes waiting for a peer are bounded by `max_queued_qos0`
/// (dropped with `QueueFull` beyond it), while QoS 1 messages still queue
/// up to `max_queued`.
#[test]
fn qos_0_has_its_own_smaller_queue_bound() {
    let server_cfg = ServerConfig {
        limits: Limits {
            max_queued: 10,
            max_queued_qos0: 3,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(
        client_config(ProtocolVersion::V5),
        server_cfg,
        Broker::accept_only(),
    );
    let now = p.now;
    let mut refused = 0;
    for i in 0..5 {
        let r = p.server.deliver(
            now,
            msg("t", &i.to_string(), QoS::AtMostOnce),
            DeliveryOptions::new(QoS::AtMostOnce),
        );
        if matches!(r, Err(mqtt_session::DeliverError::QueueFull { limit: 3 })) {
            refused += 1;
        }
    }
    assert_eq!(refused, 2);
    for i in 0..5 {
        p.server
            .deliver(
                now,
                msg("t", &i.to_string(), QoS::AtLeastOnce),
                DeliveryOptions::new(QoS::AtLeastOnce),
            )
            .expect("QoS 1 still fits within max_queued");
    }
    p.exchange();
    assert_eq!(p.client_messages().len(), 8);
}
