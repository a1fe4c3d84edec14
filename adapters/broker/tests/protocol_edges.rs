//! The broker binary's answers at the edges of the protocol, sent as raw
//! bytes and checked byte for byte: errors answered as the specification
//! says, and Mosquitto's choices where it leaves room (DESIGN.md, "Reason
//! codes on protocol errors"). Each test is named after the statement it
//! checks.

mod common;

use std::time::Duration;

use common::raw::{
    connect, connect_v311, connect_v5, packet, publish, string, subscribe_v5, Next, Raw,
    CONNACK_V311, CONNACK_V5,
};
use common::BrokerProcess;

/// A 5.0 DISCONNECT with `reason` and nothing else.
fn disconnect(reason: u8) -> [u8; 3] {
    [0xE0, 0x01, reason]
}

/// Section 2.1.2 and 4.13: CONNACK, SUBACK, UNSUBACK and PINGRESP flow from
/// server to client only. From a client they are a Protocol Error whatever
/// their body (0x82, as Mosquitto answers), not a Malformed Packet; under
/// 3.1.1 the connection is closed.
#[test]
fn section_2_1_2_a_packet_only_a_server_sends_is_a_protocol_error() {
    let broker = BrokerProcess::start_with("");
    let server_only: [&[u8]; 7] = [
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        // A 3.1.1-shaped CONNACK on a 5.0 connection: still 0x82.
        &[0x20, 0x02, 0x00, 0x00],
        &[0x90, 0x04, 0x00, 0x01, 0x00, 0x00],
        &[0x90, 0x03, 0x00, 0x01, 0x00],
        &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x00],
        &[0xB0, 0x02, 0x00, 0x01],
        &[0xD0, 0x00],
    ];
    for (i, p) in server_only.iter().enumerate() {
        let mut c = Raw::connected(broker.addr, &connect_v5(&format!("s{i}"), &[]), &CONNACK_V5);
        c.send(p);
        c.expect_last(&disconnect(0x82));
        let mut c = Raw::connected(broker.addr, &connect_v311(&format!("t{i}")), &CONNACK_V311);
        c.send(p);
        c.expect_closed();
    }
}

/// Section 2.2.2.2: a property its packet may not carry (here a Session
/// Expiry Interval in a PUBLISH) stays a Malformed Packet, 0x81.
#[test]
fn section_2_2_2_2_a_property_not_valid_for_its_packet_is_malformed() {
    let broker = BrokerProcess::start_with("");
    let mut c = Raw::connected(broker.addr, &connect_v5("p", &[]), &CONNACK_V5);
    c.send(&publish(0x30, b"t", None, Some(&[0x11, 0, 0, 0, 1]), b"x"));
    c.expect_last(&disconnect(0x81));
}

/// [MQTT-3.3.4-6]: a PUBLISH from a client must not carry a Subscription
/// Identifier; it is a Protocol Error, not acknowledged.
#[test]
fn mqtt_3_3_4_6_a_publish_from_a_client_with_a_subscription_identifier_is_a_protocol_error() {
    let broker = BrokerProcess::start_with("");
    for (first, id) in [(0x30u8, None), (0x32, Some(1u16))] {
        let mut c = Raw::connected(broker.addr, &connect_v5("p", &[]), &CONNACK_V5);
        c.send(&publish(first, b"t", id, Some(&[0x0B, 0x01]), b"x"));
        c.expect_last(&disconnect(0x82));
    }
}

/// [MQTT-3.3.2-9], section 3.3.2.3.4: a Topic Alias above the Topic Alias
/// Maximum the broker announced (16) gets DISCONNECT 0x94 at once, with or
/// without a topic, at every QoS.
#[test]
fn mqtt_3_3_2_9_a_topic_alias_above_the_announced_maximum_gets_0x94() {
    let broker = BrokerProcess::start_with("");
    let cases: [(u8, &[u8], Option<u16>, u16); 4] = [
        (0x30, b"t", None, 17),
        (0x30, b"", None, 17),
        (0x32, b"t", Some(1), 17),
        (0x30, b"t", None, u16::MAX),
    ];
    for (first, topic, id, alias) in cases {
        let mut c = Raw::connected(broker.addr, &connect_v5("p", &[]), &CONNACK_V5);
        let [hi, lo] = alias.to_be_bytes();
        c.send(&publish(first, topic, id, Some(&[0x23, hi, lo]), b"x"));
        assert_eq!(
            c.next(Duration::from_secs(2)),
            Next::Packet(disconnect(0x94).to_vec()),
            "alias {alias}"
        );
        c.expect_closed();
    }
}

/// Sections 4.3.2 and 4.3.3: a QoS 1 PUBLISH is answered by PUBACK, a QoS 2
/// one by PUBREC then PUBCOMP. The wrong acknowledgement for the flow of its
/// packet identifier is a Protocol Error (5.0: DISCONNECT 0x82; 3.1.1: the
/// connection is closed), as Mosquitto treats it.
#[test]
fn sections_4_3_2_and_4_3_3_the_wrong_acknowledgement_for_a_flow_is_a_protocol_error() {
    let broker = BrokerProcess::start_with("");
    // (QoS, answer, whether PUBREC comes first)
    let cases = [
        (1u8, 0x50u8, false),
        (1, 0x70, false),
        (2, 0x40, false),
        (2, 0x70, false),
        (2, 0x40, true),
    ];
    for (i, (qos, answer, after_pubrec)) in cases.into_iter().enumerate() {
        for v5 in [true, false] {
            let topic = format!("ack/{i}/{v5}");
            let (mut sub, mut publisher) = if v5 {
                let mut s =
                    Raw::connected(broker.addr, &connect_v5(&format!("s{i}"), &[]), &CONNACK_V5);
                s.send(&subscribe_v5(1, &topic, qos));
                s.expect(&[0x90, 0x04, 0x00, 0x01, 0x00, qos]);
                let p =
                    Raw::connected(broker.addr, &connect_v5(&format!("p{i}"), &[]), &CONNACK_V5);
                (s, p)
            } else {
                let mut s =
                    Raw::connected(broker.addr, &connect_v311(&format!("s{i}")), &CONNACK_V311);
                s.send(&common::raw::subscribe_v311(1, &topic, qos));
                s.expect(&[0x90, 0x03, 0x00, 0x01, qos]);
                let p = Raw::connected(broker.addr, &connect_v311(&format!("p{i}")), &CONNACK_V311);
                (s, p)
            };
            let props: Option<&[u8]> = v5.then_some(&[]);
            publisher.send(&publish(
                0x30 | qos << 1,
                topic.as_bytes(),
                Some(1),
                props,
                b"m",
            ));
            let delivered = publish(0x30 | qos << 1, topic.as_bytes(), Some(1), props, b"m");
            sub.expect(&delivered);
            if after_pubrec {
                sub.send(&[0x50, 0x02, 0x00, 0x01]);
                sub.expect(&[0x62, 0x02, 0x00, 0x01]);
            }
            sub.send(&[answer, 0x02, 0x00, 0x01]);
            if v5 {
                sub.expect_last(&disconnect(0x82));
            } else {
                sub.expect_closed();
            }
        }
    }
}

/// [MQTT-3.1.2-24], [MQTT-3.1.2-25]: the broker may not send a packet over
/// the client's Maximum Packet Size. A CONNACK that does not fit even
/// without diagnostics cannot be sent, and no DISCONNECT may come before it
/// [MQTT-3.14.0-1]: the connection is closed with nothing sent. One that
/// fits exactly is sent.
#[test]
fn mqtt_3_1_2_24_a_connack_over_the_clients_maximum_packet_size_closes_the_connection() {
    let broker = BrokerProcess::start_with("");
    for max in [1u32, 10, 15] {
        let mut props = vec![0x27];
        props.extend_from_slice(&max.to_be_bytes());
        let mut c = Raw::connect(broker.addr);
        c.send(&connect_v5("m", &props));
        c.expect_closed();
    }
    let len = CONNACK_V5.len() as u32;
    let mut props = vec![0x27];
    props.extend_from_slice(&len.to_be_bytes());
    Raw::connected(broker.addr, &connect_v5("m", &props), &CONNACK_V5);
}

/// A 5.0 CONNECT with clean start, keep alive 60, and the given flags
/// (0x80 user name, 0x04 will) and payload after the client identifier.
fn connect_v5_with(id: &[u8], flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut c = connect(5, 0x02 | flags, 60, &[], id);
    c.extend_from_slice(rest);
    c[1] += rest.len() as u8;
    c
}

/// Section 1.5.4: control characters (U+0001–U+001F, U+007F–U+009F)
/// SHOULD NOT be sent and a receiver MAY treat them as a Malformed Packet.
/// By default the broker does, as Mosquitto does: in a topic name or filter
/// the connection ends with DISCONNECT 0x81, in a CONNECT's client
/// identifier, user name or will topic with no CONNACK; U+00A0 is no control
/// character.
#[test]
fn section_1_5_4_control_characters_are_refused_as_malformed_by_default() {
    let broker = BrokerProcess::start_with("");
    let connected = |id: &str| Raw::connected(broker.addr, &connect_v5(id, &[]), &CONNACK_V5);
    for topic in ["a\u{1}b", "a\u{1f}", "\u{7f}", "a/\u{85}", "\u{9f}"] {
        let mut c = connected("c");
        c.send(&publish(0x30, topic.as_bytes(), None, Some(&[]), b"x"));
        c.expect_last(&disconnect(0x81));
        let mut c = connected("c");
        c.send(&subscribe_v5(1, topic, 0));
        c.expect_last(&disconnect(0x81));
        let mut c = connected("c");
        let mut body = vec![0x00, 0x01, 0x00];
        body.extend(string(topic.as_bytes()));
        c.send(&packet(0xA2, &body));
        c.expect_last(&disconnect(0x81));
        let mut c = Raw::connected(broker.addr, &connect_v311("c"), &CONNACK_V311);
        c.send(&publish(0x30, topic.as_bytes(), None, None, b"x"));
        c.expect_closed();
    }
    let will = [&[0x00][..], &string(b"w\t"), &string(b"x")].concat();
    let refused_connects = [
        connect_v5("c\u{2}", &[]),
        connect(4, 0x02, 60, &[], "c\n".as_bytes()),
        connect_v5_with(b"c", 0x80, &string(b"u\x7f")),
        connect_v5_with(b"c", 0x04, &will),
    ];
    for connect in refused_connects {
        let mut c = Raw::connect(broker.addr);
        c.send(&connect);
        c.expect_closed();
    }
    let mut c = connected("c");
    c.send(&subscribe_v5(1, "a/\u{a0}", 0));
    c.expect(&[0x90, 0x04, 0x00, 0x01, 0x00, 0x00]);
}

/// The switch for deployments that need control characters:
/// `allow_control_characters = true` accepts them everywhere.
#[test]
fn section_1_5_4_control_characters_are_accepted_with_the_switch_on() {
    let broker = BrokerProcess::start_with("[limits]\nallow_control_characters = true\n");
    let mut c = Raw::connected(broker.addr, &connect_v5("c\u{2}", &[]), &CONNACK_V5);
    c.send(&subscribe_v5(1, "a\u{1}b", 0));
    c.expect(&[0x90, 0x04, 0x00, 0x01, 0x00, 0x00]);
    let message = publish(0x30, "a\u{1}b".as_bytes(), None, Some(&[]), b"x");
    c.send(&message);
    c.expect(&message);
}

/// MQTT 3.1 section 3.1 says 1 to 23 characters. A longer client identifier
/// is accepted as given, as Mosquitto accepts it; an empty one is treated as
/// in 3.1.1: with a clean session the broker assigns one [MQTT-3.1.3-6],
/// without it the answer is return code 2 [MQTT-3.1.3-8]. (Mosquitto 2.0
/// refuses every empty 3.1 identifier; real 3.1 clients send one.)
#[test]
fn mqtt31_a_long_client_identifier_is_accepted_and_an_empty_one_assigned_with_a_clean_session() {
    let broker = BrokerProcess::start_with("");
    let long = "a-3.1-client-identifier-of-40-characters";
    let mut c = Raw::connected(
        broker.addr,
        &connect(3, 0x02, 60, &[], long.as_bytes()),
        &CONNACK_V311,
    );
    c.send(&common::raw::subscribe_v311(1, "t31", 1));
    c.expect(&[0x90, 0x03, 0x00, 0x01, 0x01]);
    let mut c = Raw::connected(broker.addr, &connect(3, 0x02, 60, &[], b""), &CONNACK_V311);
    c.send(&common::raw::subscribe_v311(2, "t31", 1));
    c.expect(&[0x90, 0x03, 0x00, 0x02, 0x01]);
    let mut c = Raw::connect(broker.addr);
    c.send(&connect(3, 0x00, 60, &[], b""));
    c.expect_last(&[0x20, 0x02, 0x00, 0x02]);
}

/// [MQTT-3.2.2-21]: with `max_keep_alive = 30`, a 5.0 client asking for
/// more, or for none (0), gets Server Keep Alive 30 in CONNACK; one asking
/// for 30 or less keeps its own and CONNACK carries none.
#[test]
fn mqtt_3_2_2_21_server_keep_alive_is_announced_when_the_client_asks_more() {
    let broker = BrokerProcess::start_with("[limits]\nmax_keep_alive = 30\n");
    let with_server_keep_alive = [
        &CONNACK_V5[..2],
        &[0x00, 0x00, 0x0E],
        &CONNACK_V5[5..],
        &[0x13, 0x00, 0x1E],
    ]
    .concat();
    let mut with_server_keep_alive = with_server_keep_alive;
    with_server_keep_alive[1] = 0x11;
    for asked in [0u16, 31, 3600, u16::MAX] {
        Raw::connected(
            broker.addr,
            &connect(5, 0x02, asked, &[], b"k"),
            &with_server_keep_alive,
        );
    }
    for asked in [1u16, 29, 30] {
        Raw::connected(
            broker.addr,
            &connect(5, 0x02, asked, &[], b"k"),
            &CONNACK_V5,
        );
    }
}

/// Section 3.3.2.3.4, [MQTT-3.3.2-11]: towards a 5.0 client that announces
/// a Topic Alias Maximum the broker sends a topic once with an alias and
/// then the alias alone, within that maximum; with
/// `outbound_topic_alias_maximum = 0` it sends the topic every time. For a
/// 40-byte topic and a 10-byte QoS 0 payload a message takes 55 bytes on the
/// wire without aliases, 58 for the first with one and 18 for each after.
#[test]
fn mqtt_3_3_2_11_the_broker_sends_topic_aliases_within_the_clients_maximum() {
    let topic = "factory/line-7/station-12/sensor/temp-c1";
    assert_eq!(topic.len(), 40);
    let payload = b"21.5 deg C";
    let sizes = |config: &str| -> Vec<Vec<u8>> {
        let broker = BrokerProcess::start_with(config);
        // Topic Alias Maximum 10.
        let mut sub = Raw::connected(
            broker.addr,
            &connect_v5("sub", &[0x22, 0x00, 0x0A]),
            &CONNACK_V5,
        );
        sub.send(&subscribe_v5(1, topic, 0));
        sub.expect(&[0x90, 0x04, 0x00, 0x01, 0x00, 0x00]);
        let mut publisher = Raw::connected(broker.addr, &connect_v5("pub", &[]), &CONNACK_V5);
        (0..3)
            .map(|_| {
                publisher.send(&publish(0x30, topic.as_bytes(), None, Some(&[]), payload));
                match sub.next(Duration::from_secs(5)) {
                    Next::Packet(p) => p,
                    other => panic!("expected the message, got {other:?}"),
                }
            })
            .collect()
    };
    let plain = publish(0x30, topic.as_bytes(), None, Some(&[]), payload);
    let before = sizes("[limits]\noutbound_topic_alias_maximum = 0\n");
    assert_eq!(before, [plain.clone(), plain.clone(), plain.clone()]);
    let after = sizes("");
    let set = publish(
        0x30,
        topic.as_bytes(),
        None,
        Some(&[0x23, 0x00, 0x01]),
        payload,
    );
    let reuse = publish(0x30, b"", None, Some(&[0x23, 0x00, 0x01]), payload);
    assert_eq!(after, [set.clone(), reuse.clone(), reuse.clone()]);
    assert_eq!((plain.len(), set.len(), reuse.len()), (55, 58, 18));
}

/// [MQTT-3.3.2-12] end to end: our own 5.0 client announces a Topic Alias
/// Maximum (16) by default, so the broker sends it aliases, and every
/// message arrives on its topic, aliased or not, in order.
#[tokio::test]
async fn mqtt_3_3_2_12_a_real_client_resolves_the_aliases_the_broker_sends() {
    use mqtt_tokio::{Client, ConnectOptions, OptionSetters, QoS, Requests};
    let broker = BrokerProcess::start_with("");
    let url = format!("mqtt://{}", broker.addr);
    let connect = |id: &'static str| {
        let options = ConnectOptions::new(&url).unwrap().client_id(id);
        Client::connect(options)
    };
    let (sub, mut incoming) = connect("alias-sub").await.expect("connects");
    sub.subscribe("factory/#", QoS::AtMostOnce).await.unwrap();
    let (publisher, _) = connect("alias-pub").await.expect("connects");
    let long = "factory/line-7/station-12/sensor/temp-c1";
    let topics = [long, "factory/b", long, long, "factory/b", long];
    for (i, topic) in topics.iter().enumerate() {
        publisher
            .publish(topic, i.to_string(), QoS::AtMostOnce, false)
            .await
            .unwrap();
    }
    for (i, topic) in topics.iter().enumerate() {
        let m = tokio::time::timeout(Duration::from_secs(5), incoming.recv_message())
            .await
            .expect("the message arrives")
            .expect("the client is up");
        assert_eq!(
            (m.topic.as_str(), m.payload.as_ref()),
            (*topic, i.to_string().as_bytes())
        );
    }
}
