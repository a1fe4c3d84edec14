//! The broker core's limits (DESIGN.md, "Isolation"): each refusal's reason
//! code on the wire, its counter, and the bound it keeps, through real
//! mqtt-session clients on the simulator (see `common`).

/// The adapter hands bytes to the broker (`handle_read`, `poll_transmit`).
const PACKET_PATH: bool = false;

mod common;

use common::*;
use mqtt_router::broker::BrokerConfig;
use mqtt_session::mqtt_codec::{QoS, ReasonCode, Str, SubscriptionOptions};

fn limited(f: impl FnOnce(&mut BrokerConfig)) -> BrokerConfig {
    let mut c = broker_config();
    f(&mut c);
    c
}

/// 5.0 answers a refused filter with its own code; 3.1.1 has only 0x80.
fn refusal(v: mqtt_session::mqtt_codec::ProtocolVersion, code: ReasonCode) -> ReasonCode {
    if v.is_v5() {
        code
    } else {
        ReasonCode::UNSPECIFIED_ERROR
    }
}

fn user_properties(n: usize, len: usize) -> Vec<(Str, Str)> {
    (0..n)
        .map(|i| {
            let k = Str::try_from(format!("k{i}")).unwrap();
            (k, Str::try_from("v".repeat(len)).unwrap())
        })
        .collect()
}

#[test]
fn filters_past_the_per_client_subscription_limit_are_refused_with_quota_exceeded() {
    for v in VERSIONS {
        let mut sim = new_sim(limited(|c| c.limits.max_subscriptions = 3));
        let (i, _) = sim.connect_ok(cfg(v, "many"));
        let opts = SubscriptionOptions::new(QoS::AtMostOnce);
        let filters: Vec<String> = (0..5).map(|n| format!("f/{n}")).collect();
        let list: Vec<(&str, SubscriptionOptions)> =
            filters.iter().map(|f| (f.as_str(), opts)).collect();
        let quota = refusal(v, ReasonCode::QUOTA_EXCEEDED);
        assert_eq!(
            sim.subscribe_with(i, &list, None),
            [
                ReasonCode::SUCCESS,
                ReasonCode::SUCCESS,
                ReasonCode::SUCCESS,
                quota,
                quota
            ]
        );
        // At the limit, a filter the client holds is replaced [MQTT-3.8.4-3].
        assert_eq!(sim.subscribe(i, "f/0", QoS::AtLeastOnce), ReasonCode(1));
        assert_eq!(sim.broker().sizes().subscriptions, 3);
        assert_eq!(sim.broker().stats().subscriptions_over_limit, 2);
        // Unsubscribing makes room again.
        sim.unsubscribe(i, "f/1");
        assert_eq!(
            sim.subscribe(i, "f/9", QoS::AtMostOnce),
            ReasonCode::SUCCESS
        );
    }
}

#[test]
fn shared_groups_past_the_per_client_limit_are_refused_with_quota_exceeded() {
    let mut sim = new_sim(limited(|c| c.limits.max_shared_groups = 2));
    let v = mqtt_session::mqtt_codec::ProtocolVersion::V5;
    let (i, _) = sim.connect_ok(cfg(v, "groupie"));
    for g in 0..2 {
        assert_eq!(
            sim.subscribe(i, &format!("$share/g{g}/t"), QoS::AtMostOnce),
            ReasonCode::SUCCESS
        );
    }
    assert_eq!(
        sim.subscribe(i, "$share/g2/t", QoS::AtMostOnce),
        ReasonCode::QUOTA_EXCEEDED
    );
    // Non-shared filters are not groups.
    assert_eq!(sim.subscribe(i, "t", QoS::AtMostOnce), ReasonCode::SUCCESS);
    assert_eq!(sim.broker().stats().shared_groups_over_limit, 1);
}

/// Mosquitto refuses topics of more than 200 levels; so do we by default.
/// A filter past it: SUBACK 0x8F Topic Filter invalid (3.8.4 allows it per
/// filter); a PUBLISH: PUBACK 0x90 Topic Name invalid (3.4.2.1), not
/// delivered, not retained.
#[test]
fn topics_and_filters_past_the_level_limit_are_refused() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        let deep = vec!["x"; 201].join("/");
        let ok = vec!["x"; 200].join("/");
        assert_eq!(
            sim.subscribe(sub, &deep, QoS::AtLeastOnce),
            refusal(v, ReasonCode::TOPIC_FILTER_INVALID)
        );
        assert_eq!(sim.subscribe(sub, &ok, QoS::AtLeastOnce), ReasonCode(1));
        assert_eq!(sim.subscribe(sub, "#", QoS::AtLeastOnce), ReasonCode(1));
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        let r = sim.publish(publisher, msg(&deep, "deep", QoS::AtLeastOnce, true));
        let expected = if v.is_v5() {
            ReasonCode::TOPIC_NAME_INVALID
        } else {
            ReasonCode::SUCCESS
        };
        assert_eq!(r, Some(expected));
        sim.publish(publisher, msg(&ok, "ok", QoS::AtLeastOnce, false));
        assert_eq!(sim.payloads(sub), ["ok"]);
        assert_eq!(sim.broker().sizes().retained, 0);
        assert_eq!(sim.broker().stats().topic_levels_over_limit, 2);
    }
}

/// 0x97 Quota exceeded ("an implementation or administrative imposed limit
/// has been exceeded", PUBACK 3.4.2.1) for a PUBLISH whose properties pass
/// the limits, counted or not as retained.
#[test]
fn a_publish_past_the_property_limits_is_refused_with_quota_exceeded() {
    let v = mqtt_session::mqtt_codec::ProtocolVersion::V5;
    let mut sim = new_sim(limited(|c| {
        c.limits.max_user_properties = 4;
        c.limits.max_property_bytes = 1000;
    }));
    let (sub, _) = sim.connect_ok(cfg(v, "sub"));
    sim.subscribe(sub, "#", QoS::AtLeastOnce);
    let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
    for (n, len) in [(5, 1), (2, 600)] {
        let mut m = msg("t", "x", QoS::AtLeastOnce, true);
        m.props.user_properties = user_properties(n, len);
        assert_eq!(sim.publish(publisher, m), Some(ReasonCode::QUOTA_EXCEEDED));
    }
    let mut m = msg("t", "fits", QoS::AtLeastOnce, false);
    m.props.user_properties = user_properties(4, 100);
    assert_eq!(sim.publish(publisher, m), Some(ReasonCode::SUCCESS));
    assert_eq!(sim.payloads(sub), ["fits"]);
    assert_eq!(sim.broker().sizes().retained, 0);
    assert_eq!(sim.broker().stats().properties_over_limit, 2);
}

/// A retained message's bytes include its topic and properties: a 1-byte
/// payload cannot carry a large retained load. Per client and in total;
/// 5.0 hears 0x97 Quota exceeded, 3.1.1 a plain PUBACK (not retained).
#[test]
fn retained_bytes_are_bounded_per_client_and_in_total_properties_included() {
    let v = mqtt_session::mqtt_codec::ProtocolVersion::V5;
    let mut sim = new_sim(limited(|c| {
        c.limits.max_retained_bytes_per_client = 1000;
        c.limits.max_retained_bytes = 1500;
    }));
    let (a, _) = sim.connect_ok(cfg(v, "a"));
    let mut heavy = msg("r/heavy", "x", QoS::AtLeastOnce, true);
    heavy.props.user_properties = user_properties(2, 600);
    assert_eq!(sim.publish(a, heavy), Some(ReasonCode::QUOTA_EXCEEDED));
    assert_eq!(sim.broker().sizes().retained, 0);
    // 3 + 800 = 803 bytes: fits a's share; replacing it is credited.
    let body = "y".repeat(800);
    for _ in 0..3 {
        assert_eq!(
            sim.publish(a, msg("r/a", &body, QoS::AtLeastOnce, true)),
            Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
        );
    }
    assert_eq!(sim.broker().sizes().retained_bytes, 803);
    // b has its own share, but the total is 1500.
    let (b, _) = sim.connect_ok(cfg(v, "b"));
    assert_eq!(
        sim.publish(b, msg("r/b", &body, QoS::AtLeastOnce, true)),
        Some(ReasonCode::QUOTA_EXCEEDED)
    );
    // Clearing a's message frees the total for b.
    sim.publish(a, msg("r/a", "", QoS::AtLeastOnce, true));
    assert_eq!(sim.broker().sizes().retained_bytes, 0);
    assert_eq!(
        sim.publish(b, msg("r/b", &body, QoS::AtLeastOnce, true)),
        Some(ReasonCode::NO_MATCHING_SUBSCRIBERS)
    );
    assert_eq!(sim.broker().stats().retained_refused, 2);
}

/// Like Mosquitto's `max_queued_bytes`: an absent client's queue holds at
/// most this many bytes, whatever the message count; the queue-full policy
/// (here: drop oldest) makes room, every drop counted.
#[test]
fn an_offline_session_queues_at_most_max_queued_bytes() {
    for v in VERSIONS {
        let mut sim = new_sim(limited(|c| c.server.limits.max_queued_bytes = 4096));
        let (sub, _) = sim.connect_ok(persistent(v, "away", 3600));
        sim.subscribe(sub, "big", QoS::AtLeastOnce);
        sim.disconnect(sub, ReasonCode::SUCCESS);
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        let body = "z".repeat(1000);
        for _ in 0..20 {
            sim.publish(publisher, msg("big", &body, QoS::AtLeastOnce, false));
        }
        let sizes = sim.broker().sizes();
        assert!(
            sizes.offline_bytes <= 4096,
            "{v:?}: {}",
            sizes.offline_bytes
        );
        assert_eq!(sizes.offline_bytes, 4 * 1003);
        let view = sim.broker().session("away").unwrap();
        assert_eq!(view.queued, 4);
        assert_eq!(sim.broker().stats().queued_bytes_over_limit, 16);
        // A message that could never fit leaves the queue alone.
        sim.publish(
            publisher,
            msg("big", &"w".repeat(5000), QoS::AtLeastOnce, false),
        );
        assert_eq!(sim.broker().session("away").unwrap().queued, 4);
    }
}

#[test]
fn absent_clients_queue_at_most_max_offline_bytes_together() {
    let v = mqtt_session::mqtt_codec::ProtocolVersion::V5;
    let mut sim = new_sim(limited(|c| c.limits.max_offline_bytes = 5000));
    for n in 0..3 {
        let (i, _) = sim.connect_ok(persistent(v, &format!("away{n}"), 3600));
        sim.subscribe(i, "big", QoS::AtLeastOnce);
        sim.disconnect(i, ReasonCode::SUCCESS);
    }
    let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
    let body = "z".repeat(1000);
    for _ in 0..3 {
        sim.publish(publisher, msg("big", &body, QoS::AtLeastOnce, false));
    }
    // 9 deliveries of 1003 bytes (topic and payload): 4 fit in 5000.
    assert_eq!(sim.broker().sizes().offline_bytes, 4 * 1003);
    assert_eq!(sim.broker().stats().offline_bytes_over_limit, 5);
    // A client that comes back takes its queue out of the total.
    let (back, present) = sim.connect_ok(persistent(v, "away0", 3600));
    assert!(present);
    // The first message reached all three, the second only away0.
    assert_eq!(sim.payloads(back).len(), 2);
    assert_eq!(sim.broker().sizes().offline_bytes, 2 * 1003);
}

#[test]
fn a_persistent_session_past_the_limit_is_refused_at_connect() {
    for v in VERSIONS {
        let mut sim = new_sim(limited(|c| c.limits.max_persistent_sessions = 2));
        for n in 0..2 {
            let (i, _) = sim.connect_ok(persistent(v, &format!("p{n}"), 3600));
            sim.disconnect(i, ReasonCode::SUCCESS);
        }
        let refused = sim.connect(persistent(v, "p2", 3600));
        let expected = if v.is_v5() {
            ReasonCode::QUOTA_EXCEEDED
        } else {
            ReasonCode::SERVER_UNAVAILABLE
        };
        assert_eq!(sim.connack(refused), Err(expected));
        // Clean sessions, and the clients that have a session, still connect.
        sim.connect_ok(cfg(v, "clean"));
        let (p0, present) = sim.connect_ok(persistent(v, "p0", 3600));
        assert!(present);
        assert_eq!(sim.broker().sizes().persistent_sessions, 2);
        assert_eq!(sim.broker().stats().persistent_sessions_refused, 1);
        sim.disconnect(p0, ReasonCode::SUCCESS);
    }
}

/// [MQTT-3.8.4-3]: a repeated filter replaces the subscription, so within
/// one SUBSCRIBE its last copy is the one that counts; it is handled once
/// (one retained replay, not one per copy) and every copy is answered.
#[test]
fn a_filter_repeated_in_one_subscribe_is_handled_once_as_its_last_copy() {
    for v in VERSIONS {
        let mut sim = new_sim(broker_config());
        let (publisher, _) = sim.connect_ok(cfg(v, "pub"));
        sim.publish(publisher, msg("a/b", "kept", QoS::AtLeastOnce, true));
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        let q0 = SubscriptionOptions::new(QoS::AtMostOnce);
        let q1 = SubscriptionOptions::new(QoS::AtLeastOnce);
        let list: Vec<(&str, SubscriptionOptions)> =
            [("a/#", q0), ("a/#", q0), ("x", q0), ("a/#", q1)].to_vec();
        let results = sim.subscribe_with(sub, &list, None);
        assert_eq!(
            results,
            [ReasonCode(1), ReasonCode(1), ReasonCode(0), ReasonCode(1)]
        );
        let got = sim.messages(sub);
        assert_eq!(got.len(), 1, "{v:?}: one retained replay");
        assert_eq!(got[0].qos, QoS::AtLeastOnce);
        assert_eq!(sim.broker().sizes().subscriptions, 2);
    }
}

fn many_retained(sim: &mut Sim, n: usize) {
    let v = mqtt_session::mqtt_codec::ProtocolVersion::V5;
    let (publisher, _) = sim.connect_ok(cfg(v, "retainer"));
    for i in 0..n {
        sim.publish(
            publisher,
            msg(&format!("m/{i}"), "r", QoS::AtMostOnce, true),
        );
    }
}

fn roomy() -> BrokerConfig {
    limited(|c| {
        c.server.limits.max_queued = 10_000;
        c.server.limits.max_queued_qos0 = 10_000;
    })
}

/// DESIGN.md, "Isolation": a SUBSCRIBE matching many retained messages is
/// served in slices over core turns (here: one virtual millisecond each),
/// and a message routed to that subscriber meanwhile waits behind the
/// replay [MQTT-4.6.0-6]: it arrives after every retained message.
#[test]
fn a_large_retained_replay_goes_out_in_slices_before_what_follows_it() {
    let v = mqtt_session::mqtt_codec::ProtocolVersion::V5;
    let mut sim = new_sim(roomy());
    many_retained(&mut sim, 600);
    let (sub, _) = sim.connect_ok(cfg(v, "sub"));
    assert_eq!(
        sim.subscribe(sub, "m/#", QoS::AtMostOnce),
        ReasonCode::SUCCESS
    );
    let first = sim.payloads(sub).len();
    assert!(first > 0 && first < 600, "a first slice, not all: {first}");
    let (other, _) = sim.connect_ok(cfg(v, "other"));
    sim.subscribe(other, "m/0", QoS::AtMostOnce);
    sim.publish(other, msg("m/0", "live", QoS::AtMostOnce, false));
    // The other subscriber (one retained message) is served at once; ours
    // waits behind its replay.
    assert_eq!(sim.payloads(other), ["r", "live"]);
    assert!(!sim.payloads(sub).contains(&"live".to_string()));
    sim.advance(millis(20));
    let rest = sim.payloads(sub);
    assert_eq!(first + rest.len(), 601);
    assert_eq!(rest.last().map(String::as_str), Some("live"));
}

/// [MQTT-3.10.4-6]: after UNSUBACK nothing of the filter is sent, not even
/// what its pending replay still had.
#[test]
fn unsubscribing_ends_the_pending_replay_of_the_filter() {
    let v = mqtt_session::mqtt_codec::ProtocolVersion::V5;
    let mut sim = new_sim(roomy());
    many_retained(&mut sim, 600);
    let (sub, _) = sim.connect_ok(cfg(v, "sub"));
    sim.subscribe(sub, "m/#", QoS::AtMostOnce);
    assert_eq!(sim.unsubscribe(sub, "m/#"), [ReasonCode::SUCCESS]);
    let before = sim.payloads(sub).len();
    assert!(before < 600);
    sim.advance(millis(20));
    assert!(sim.payloads(sub).is_empty());
}

/// A will is a message like any other: past the topic depth it is refused
/// at CONNECT with 0x90 Topic Name invalid, past the property limits with
/// 0x97 Quota exceeded (CONNACK allows both, 3.2.2.2).
#[test]
fn a_will_past_the_limits_is_refused_at_connect() {
    let v = mqtt_session::mqtt_codec::ProtocolVersion::V5;
    let mut sim = new_sim(limited(|c| c.limits.max_user_properties = 1));
    let mut deep = cfg(v, "deep");
    deep.will = Some(will(&vec!["w"; 201].join("/"), "bye", None));
    let i = sim.connect(deep);
    assert_eq!(sim.connack(i), Err(ReasonCode::TOPIC_NAME_INVALID));
    let mut heavy = cfg(v, "heavy");
    let mut w = will("w", "bye", None);
    w.props.user_properties = user_properties(2, 1);
    heavy.will = Some(w);
    let i = sim.connect(heavy);
    assert_eq!(sim.connack(i), Err(ReasonCode::QUOTA_EXCEEDED));
    let stats = sim.broker().stats();
    assert_eq!(
        (stats.topic_levels_over_limit, stats.properties_over_limit),
        (1, 1)
    );
    assert_eq!(stats.connections_refused, 2);
    assert_eq!(stats.refused_with(ReasonCode::TOPIC_NAME_INVALID), 1);
    assert_eq!(stats.refused_with(ReasonCode::QUOTA_EXCEEDED), 1);
}
