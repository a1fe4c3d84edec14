//! Packets captured from real clients nobody here wrote (Mosquitto's
//! `mosquitto_pub`/`mosquitto_sub` 2.0 and Python paho-mqtt 1.6, all three
//! protocol versions), by `tests/fixtures/capture.py`. Each must decode as a
//! server decodes it and re-encode to the very same packet: to the very same
//! bytes, except that 5.0 properties other than user properties may come out
//! in another order (the specification fixes no order for them).

use std::path::Path;

use bytes::BytesMut;
use mqtt_codec::{Decoder, Packet, PayloadFormat, ProtocolVersion, QoS, ReasonCode};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("fixture is hex"))
        .collect()
}

/// Decodes a fixture: one packet per line, as a server receives them.
fn decode_fixture(name: &str) -> Vec<(Vec<u8>, Packet)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let wire = hex(line);
        let mut buf = BytesMut::from(&wire[..]);
        let packet = decoder
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: {line}: {e}"))
            .unwrap_or_else(|| panic!("{name}: {line}: incomplete"));
        assert!(buf.is_empty(), "{name}: one packet per line");
        out.push((wire, packet));
    }
    out
}

#[test]
fn every_captured_packet_decodes_and_reencodes_byte_for_byte() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("hex") {
            continue;
        }
        files += 1;
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let packets = decode_fixture(&name);
        let Packet::Connect(connect) = &packets[0].1 else {
            panic!("{name}: first packet is not CONNECT");
        };
        let version = connect.protocol;
        for (wire, packet) in &packets {
            let mut again = BytesMut::new();
            packet.encode(version, &mut again).unwrap();
            assert_eq!(again.len(), wire.len(), "{name}: {packet:?}");
            if version != ProtocolVersion::V5 {
                assert_eq!(&again[..], &wire[..], "{name}: {packet:?}");
            }
            let mut d = Decoder::with_version(version);
            assert_eq!(
                d.decode(&mut again).unwrap().as_ref(),
                Some(packet),
                "{name}"
            );
        }
    }
    assert_eq!(files, 12, "all captures are present");
}

#[test]
fn mosquitto_v31_connect_with_will_and_credentials() {
    let packets = decode_fixture("mosquitto_pub-mqttv31-qos1-retain-will");
    let Packet::Connect(c) = &packets[0].1 else {
        panic!()
    };
    assert_eq!(c.protocol, ProtocolVersion::V31);
    assert_eq!(c.client_id, "capture-mqttv31");
    let will = c.will.as_ref().unwrap();
    assert_eq!(will.topic, "fixture/will");
    assert_eq!(&will.payload[..], b"bye");
    assert_eq!(will.qos, QoS::AtLeastOnce);
    assert_eq!(c.username.as_ref().unwrap(), "alice");
    assert_eq!(&c.password.as_ref().unwrap()[..], b"pw");
    let Packet::Publish(p) = &packets[1].1 else {
        panic!()
    };
    assert!(p.retain);
    assert_eq!(p.qos.qos(), QoS::AtLeastOnce);
}

#[test]
fn mosquitto_v5_publish_properties_arrive_typed_and_in_order() {
    let packets = decode_fixture("mosquitto_pub-mqttv5-properties");
    let Packet::Connect(c) = &packets[0].1 else {
        panic!()
    };
    assert_eq!(c.props.session_expiry_interval, Some(60));
    assert_eq!(c.props.receive_maximum.map(|r| r.get()), Some(10));
    assert_eq!(c.props.user_properties.len(), 1);
    let Packet::Publish(p) = &packets[1].1 else {
        panic!()
    };
    let props = &p.props;
    assert_eq!(props.content_type.as_ref().unwrap(), "application/json");
    assert_eq!(props.payload_format_indicator, Some(PayloadFormat::Utf8));
    assert_eq!(props.message_expiry_interval, Some(30));
    assert_eq!(props.response_topic.as_ref().unwrap(), "fixture/reply");
    assert_eq!(&props.correlation_data.as_ref().unwrap()[..], b"c0ffee");
    let pairs: Vec<(&str, &str)> = props
        .user_properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(pairs, [("a", "1"), ("b", "2")]);
    assert_eq!(&p.payload[..], br#"{"a":1}"#);
}

#[test]
fn mosquitto_sub_v5_disconnects_with_will() {
    let packets = decode_fixture("mosquitto_sub-mqttv5-two-filters");
    let Packet::Subscribe(s) = &packets[1].1 else {
        panic!()
    };
    assert_eq!(s.filters.len(), 2);
    assert_eq!(s.filters[0].0, "fixture/+/x");
    assert_eq!(s.filters[1].1.qos, QoS::ExactlyOnce);
    let Packet::Disconnect(d) = &packets[2].1 else {
        panic!()
    };
    assert_eq!(d.reason, ReasonCode::DISCONNECT_WITH_WILL_MESSAGE);
}

#[test]
fn paho_v5_session_runs_the_qos2_flow() {
    let kinds: Vec<_> = decode_fixture("paho-mqttv5-session")
        .iter()
        .map(|(_, p)| p.packet_type().name())
        .collect();
    assert!(kinds.starts_with(&["CONNECT", "SUBSCRIBE"]), "{kinds:?}");
    assert!(kinds.contains(&"PUBREL"), "{kinds:?}");
    assert!(kinds.contains(&"UNSUBSCRIBE"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"DISCONNECT"));
}
