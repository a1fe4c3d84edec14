//! One client cannot hurt the others (DESIGN.md, "Isolation"): each attack
//! measured against the broker's defaults, replayed over a raw socket
//! against the broker binary, asserting the limit that now stops it (the
//! reason code on the wire, a bounded count or size), never a timing.

mod common;

use std::time::Duration;

use common::raw::{
    connect, connect_v311, connect_v5, packet, publish, string, subscribe_v5, vbi, Next, Raw,
    CONNACK_V311, CONNACK_V5,
};
use common::BrokerProcess;

const SILENCE: Duration = Duration::from_millis(300);

/// A 5.0 SUBSCRIBE `id` of every filter in `filters` at `options`.
fn subscribe_many(id: u16, filters: &[String], options: u8, v5: bool) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for f in filters {
        body.extend(string(f.as_bytes()));
        body.push(options);
    }
    packet(0x82, &body)
}

/// A 5.0 UNSUBSCRIBE `id` of every filter in `filters`.
fn unsubscribe_many(id: u16, filters: &[String]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.push(0);
    for f in filters {
        body.extend(string(f.as_bytes()));
    }
    packet(0xA2, &body)
}

/// A SUBACK or UNSUBACK `id` with `results` (5.0: no properties).
fn ack_of(first: u8, id: u16, results: &[u8], v5: bool) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    body.extend_from_slice(results);
    packet(first, &body)
}

/// A 5.0 PUBACK of `id` with `reason` and no properties (success in its
/// short form, section 3.4.2.1).
fn puback_v5(id: u16, reason: u8) -> Vec<u8> {
    let [hi, lo] = id.to_be_bytes();
    if reason == 0 {
        vec![0x40, 0x02, hi, lo]
    } else {
        vec![0x40, 0x03, hi, lo, reason]
    }
}

/// User Property fields (0x26) of `n` pairs whose value is `len` bytes.
fn user_properties(n: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(0x26);
        out.extend(string(format!("k{i}").as_bytes()));
        out.extend(string(&vec![b'v'; len]));
    }
    out
}

/// Every PUBLISH that arrives before the broker goes silent, at most `max`.
fn drain_publishes(c: &mut Raw, max: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < max {
        match c.next(Duration::from_secs(2)) {
            Next::Packet(p) if p[0] & 0xF0 == 0x30 => got.push(p),
            Next::Packet(p) => panic!("unexpected packet {:02x?}", &p[..p.len().min(8)]),
            Next::Closed | Next::Silent => break,
        }
    }
    got
}

/// A 5.0 CONNECT keeping its session for an hour (Session Expiry Interval
/// 3600), with `clean_start`.
fn connect_persistent(id: &str, clean_start: bool) -> Vec<u8> {
    let flags = if clean_start { 0x02 } else { 0x00 };
    connect(5, flags, 60, &[0x11, 0x00, 0x00, 0x0E, 0x10], id.as_bytes())
}

/// Measured: a 1-byte retained message carrying 878 KiB of user
/// properties was kept whole and replayed to every subscriber. Now its
/// properties pass `max_property_bytes` (64 KiB): PUBACK 0x97 Quota
/// exceeded, nothing retained; and what fits the property limit still
/// counts, properties included, against the client's retained bytes.
#[test]
fn retained_messages_cannot_smuggle_bytes_in_their_properties() {
    let broker = BrokerProcess::start_with("[limits]\nmax_retained_bytes_per_client = 100000\n");
    let mut p = Raw::connected(broker.addr, &connect_v5("heavy", &[]), &CONNACK_V5);
    let props = user_properties(878, 1021);
    p.send(&publish(0x33, b"r/0", Some(1), Some(&props), b"x"));
    p.expect(&puback_v5(1, 0x97));
    // 60 KiB of properties each: the first fits the 100,000 bytes, the
    // second would pass them.
    let props = user_properties(60, 1021);
    p.send(&publish(0x33, b"r/1", Some(2), Some(&props), b"x"));
    p.expect(&puback_v5(2, 0x10));
    p.send(&publish(0x33, b"r/2", Some(3), Some(&props), b"x"));
    p.expect(&puback_v5(3, 0x97));
    let mut s = Raw::connected(broker.addr, &connect_v5("s", &[]), &CONNACK_V5);
    s.send(&subscribe_v5(1, "r/#", 0));
    s.expect(&ack_of(0x90, 1, &[0], true));
    let got = drain_publishes(&mut s, 10);
    assert_eq!(got.len(), 1, "only r/1 is retained");
}

/// Measured: four retained topics of ~16,000 levels each cost +50 MiB.
/// Topic names past `max_topic_levels` (200, as Mosquitto) get PUBACK 0x90
/// Topic Name invalid; filters, SUBACK 0x8F (3.1.1: 0x80).
#[test]
fn topics_and_filters_deeper_than_200_levels_are_refused() {
    let broker = BrokerProcess::start_with("");
    let deep = vec!["a"; 16_000].join("/");
    let mut p = Raw::connected(broker.addr, &connect_v5("deep", &[]), &CONNACK_V5);
    for id in 1..=4u16 {
        p.send(&publish(0x33, deep.as_bytes(), Some(id), Some(&[]), b"x"));
        p.expect(&puback_v5(id, 0x90));
    }
    let filter = vec!["a"; 201].join("/");
    p.send(&subscribe_v5(9, &filter, 0));
    p.expect(&ack_of(0x90, 9, &[0x8F], true));
    let mut old = Raw::connected(broker.addr, &connect_v311("old"), &CONNACK_V311);
    old.send(&common::raw::subscribe_v311(9, &filter, 0));
    old.expect(&ack_of(0x90, 9, &[0x80], false));
    let mut s = Raw::connected(broker.addr, &connect_v5("s", &[]), &CONNACK_V5);
    s.send(&subscribe_v5(1, "#", 0));
    s.expect(&ack_of(0x90, 1, &[0], true));
    assert_eq!(s.next(SILENCE), Next::Silent, "nothing was retained");
}

/// Measured: one SUBSCRIBE holding 20,000 copies of a filter matching
/// 1,000 retained messages held every other client up for 2.7 s. A repeated
/// filter replaces the subscription [MQTT-3.8.4-3], so the copies are
/// handled once, as the last: every copy is answered, the retained
/// messages are sent once.
#[test]
fn a_filter_repeated_in_one_subscribe_replays_its_retained_messages_once() {
    let broker = BrokerProcess::start_with("");
    let mut p = Raw::connected(broker.addr, &connect_v5("p", &[]), &CONNACK_V5);
    for i in 0..50u16 {
        p.send(&publish(
            0x33,
            format!("m/{i}").as_bytes(),
            Some(i + 1),
            Some(&[]),
            b"x",
        ));
        p.expect(&puback_v5(i + 1, 0x10));
    }
    let mut s = Raw::connected(broker.addr, &connect_v5("s", &[]), &CONNACK_V5);
    let copies = vec!["m/#".to_string(); 20_000];
    s.send(&subscribe_many(1, &copies, 0, true));
    s.expect(&ack_of(0x90, 1, &vec![0; 20_000], true));
    assert_eq!(drain_publishes(&mut s, 1_000).len(), 50);
    // The other clients were answered meanwhile, and are now.
    p.send(&[0xC0, 0x00]);
    p.expect(&[0xD0, 0x00]);
}

/// Measured: 100,000 subscriptions of one client were all granted, and
/// unsubscribing them oldest first took 7 s. Past
/// `max_subscriptions_per_client` (10,000) each filter gets SUBACK 0x97
/// Quota exceeded (3.1.1: 0x80); unsubscribing them all, oldest first, is
/// answered filter by filter.
#[test]
fn subscriptions_past_the_per_client_limit_get_quota_exceeded() {
    let broker = BrokerProcess::start_with("");
    let filters: Vec<String> = (0..10_050).map(|i| format!("s/{i}")).collect();
    let mut c = Raw::connected(broker.addr, &connect_v5("many", &[]), &CONNACK_V5);
    c.send(&subscribe_many(1, &filters, 0, true));
    let mut results = vec![0u8; 10_000];
    results.extend([0x97; 50]);
    c.expect(&ack_of(0x90, 1, &results, true));
    c.send(&unsubscribe_many(2, &filters));
    let mut results = vec![0u8; 10_000];
    results.extend([0x11; 50]);
    c.expect(&ack_of(0xB0, 2, &results, true));
    // Room again.
    c.send(&subscribe_v5(3, "s/new", 0));
    c.expect(&ack_of(0x90, 3, &[0], true));

    let mut old = Raw::connected(broker.addr, &connect_v311("old"), &CONNACK_V311);
    old.send(&subscribe_many(1, &filters, 0, false));
    let mut results = vec![0u8; 10_000];
    results.extend([0x80; 50]);
    old.expect(&ack_of(0x90, 1, &results, false));
}

/// Measured: 40,000 shared groups joined by one client stopped the broker
/// (joining was linear in the groups). Past
/// `max_shared_groups_per_client` (100): SUBACK 0x97.
#[test]
fn shared_groups_past_the_per_client_limit_get_quota_exceeded() {
    let broker = BrokerProcess::start_with("");
    let groups: Vec<String> = (0..150).map(|i| format!("$share/g{i}/t")).collect();
    let mut c = Raw::connected(broker.addr, &connect_v5("groupie", &[]), &CONNACK_V5);
    c.send(&subscribe_many(1, &groups, 0, true));
    let mut results = vec![0u8; 100];
    results.extend([0x97; 50]);
    c.expect(&ack_of(0x90, 1, &results, true));
}

/// Measured: an offline persistent session kept 150 x 1 MB messages (143
/// MiB): the queue limit counted messages only. `max_queued_bytes` bounds
/// the bytes too (oldest dropped first, as for the count).
#[test]
fn an_offline_session_keeps_at_most_max_queued_bytes() {
    let broker = BrokerProcess::start_with("[limits]\nmax_queued_bytes = 2000000\n");
    let mut s = Raw::connect(broker.addr);
    s.send(&connect_persistent("away", true));
    assert!(matches!(s.next(Duration::from_secs(5)), Next::Packet(p) if p[0] == 0x20 && p[3] == 0));
    s.send(&subscribe_v5(1, "big", 1));
    s.expect(&ack_of(0x90, 1, &[1], true));
    s.send(&[0xE0, 0x00]);
    s.expect_closed();

    let mut p = Raw::connected(broker.addr, &connect_v5("p", &[]), &CONNACK_V5);
    let body = vec![b'z'; 100_000];
    for id in 1..=50u16 {
        p.send(&publish(0x32, b"big", Some(id), Some(&[]), &body));
        p.expect(&puback_v5(id, 0));
    }
    let mut s = Raw::connect(broker.addr);
    s.send(&connect_persistent("away", false));
    assert!(matches!(s.next(Duration::from_secs(5)), Next::Packet(p) if p[0] == 0x20 && p[2] == 1));
    // 100,003 bytes each (topic and payload): 19 fit in 2,000,000.
    assert_eq!(drain_publishes(&mut s, 100).len(), 19);
}

/// Persistent sessions past `max_persistent_sessions` are refused at
/// CONNECT: 5.0 CONNACK 0x97 Quota exceeded, 3.1.1 0x03 Server unavailable.
#[test]
fn persistent_sessions_past_the_limit_are_refused_at_connect() {
    let broker = BrokerProcess::start_with("[limits]\nmax_persistent_sessions = 2\n");
    for id in ["p0", "p1"] {
        let mut c = Raw::connect(broker.addr);
        c.send(&connect_persistent(id, true));
        assert!(matches!(c.next(Duration::from_secs(5)), Next::Packet(p) if p[3] == 0));
        c.send(&[0xE0, 0x00]);
        c.expect_closed();
    }
    let mut c = Raw::connect(broker.addr);
    c.send(&connect_persistent("p2", true));
    c.expect_last(&[0x20, 0x03, 0x00, 0x97, 0x00]);
    let mut c = Raw::connect(broker.addr);
    c.send(&connect(4, 0x00, 60, &[], b"p3"));
    c.expect_last(&[0x20, 0x02, 0x00, 0x03]);
    // Clean sessions still connect.
    Raw::connected(broker.addr, &connect_v5("clean", &[]), &CONNACK_V5);
}

/// Every refusal is counted under `$SYS/broker/limits/`.
#[test]
fn refusals_are_counted_in_sys() {
    let broker = BrokerProcess::start_with("[sys]\ninterval = 1\n");
    let mut c = Raw::connected(broker.addr, &connect_v5("groupie", &[]), &CONNACK_V5);
    let groups: Vec<String> = (0..103).map(|i| format!("$share/g{i}/t")).collect();
    c.send(&subscribe_many(1, &groups, 0, true));
    let mut results = vec![0u8; 100];
    results.extend([0x97; 3]);
    c.expect(&ack_of(0x90, 1, &results, true));
    let topic = "$SYS/broker/limits/shared groups";
    let mut value = Vec::new();
    for attempt in 0..10u16 {
        let mut s = Raw::connected(broker.addr, &connect_v5("sys", &[]), &CONNACK_V5);
        s.send(&subscribe_v5(attempt + 1, topic, 0));
        s.expect(&ack_of(0x90, attempt + 1, &[0], true));
        if let Next::Packet(p) = s.next(Duration::from_millis(1500)) {
            // QoS 0 PUBLISH: fixed header, topic, property length 0, payload.
            let header = 1 + vbi(p.len() - 2).len();
            let start = header + 2 + topic.len() + 1;
            value = p[start..].to_vec();
            if value == b"3" {
                break;
            }
        }
    }
    assert_eq!(String::from_utf8_lossy(&value), "3");
}
