//! Byte-exact vectors for every packet type in every protocol version that has it.
//!
//! Each vector was worked out by hand from the specifications (MQTT 3.1 for
//! level 3 / "MQIsdp", OASIS MQTT 3.1.1 for level 4, OASIS MQTT 5.0 for
//! level 5) and is checked both ways: the bytes decode to the expected
//! [`Packet`], and that packet encodes to exactly the bytes.

use core::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    Ack, AckProps, Auth, AuthProps, ConnAck, ConnAckProps, Connect, ConnectProps, Decoder,
    Disconnect, DisconnectProps, Packet, PacketId, PayloadFormat, ProtocolVersion, Publish,
    PublishProps, QoS, QosPid, ReasonCode, RetainHandling, Str, SubAck, SubAckProps, Subscribe,
    SubscribeProps, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName, Unsubscribe,
    UnsubscribeProps, Will, WillProps,
};

use ProtocolVersion::{V31, V311, V5};

const ALL: [ProtocolVersion; 3] = [V31, V311, V5];
const V3: [ProtocolVersion; 2] = [V31, V311];

/// The decoder the receiver of `p` has: a server that has not seen CONNECT yet
/// for CONNECT, otherwise a connection of version `v`.
fn decoder_for(p: &Packet, v: ProtocolVersion) -> Decoder {
    match p {
        Packet::Connect(_) => Decoder::new(),
        _ => Decoder::with_version(v),
    }
}

/// Asserts that `wire` decodes to `expected` under `v` (owned, frozen and
/// borrowed), and that `expected` encodes to exactly `wire`.
#[track_caller]
fn vector(v: ProtocolVersion, wire: &[u8], expected: Packet) {
    // Decode from a BytesMut: the whole packet, nothing left over.
    let mut d = decoder_for(&expected, v);
    let mut buf = BytesMut::from(wire);
    let got = d.decode(&mut buf).expect("vector decodes");
    assert_eq!(got.as_ref(), Some(&expected), "decoding {wire:02X?}");
    assert!(buf.is_empty(), "the whole vector is one packet");
    assert_eq!(d.version(), Some(v), "the decoder knows the version");

    // Decode from frozen Bytes.
    let mut frozen = Bytes::copy_from_slice(wire);
    let got = decoder_for(&expected, v).decode_bytes(&mut frozen).unwrap();
    assert_eq!(got.as_ref(), Some(&expected));
    assert!(frozen.is_empty());

    // Decode borrowed; it must take every byte and encode back to the same bytes.
    let (borrowed, used) = decoder_for(&expected, v)
        .decode_slice(wire)
        .unwrap()
        .expect("a whole packet");
    assert_eq!(used, wire.len());
    let mut again = Vec::new();
    borrowed.encode(v, &mut again).unwrap();
    assert_eq!(again, wire, "borrowed packet re-encodes");

    // Encode.
    let mut out = BytesMut::new();
    let n = expected.encode(v, &mut out).expect("vector encodes");
    assert_eq!(
        &out[..],
        wire,
        "encoding {expected:?}\n got  {:02X?}\n want {wire:02X?}",
        &out[..]
    );
    assert_eq!(n, wire.len());
    assert_eq!(expected.encoded_len(v), Ok(wire.len()));
}

/// Asserts that `wire` decodes to `expected` under `v`; for non-canonical
/// forms that the encoder writes shorter.
#[track_caller]
fn decodes_to(v: ProtocolVersion, wire: &[u8], expected: &Packet) {
    let mut buf = BytesMut::from(wire);
    let got = decoder_for(expected, v).decode(&mut buf).unwrap();
    assert_eq!(got.as_ref(), Some(expected), "decoding {wire:02X?}");
    assert!(buf.is_empty());
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

fn s(x: &'static str) -> Str {
    Str::from_static(x)
}

fn topic(x: &'static str) -> TopicName {
    TopicName::from_static(x)
}

fn filter(x: &'static str) -> TopicFilter {
    TopicFilter::from_static(x)
}

fn b(x: &'static [u8]) -> Bytes {
    Bytes::from_static(x)
}

fn nz16(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

fn connect(c: Connect) -> Packet {
    Packet::Connect(Box::new(c))
}

fn connack(c: ConnAck) -> Packet {
    Packet::ConnAck(Box::new(c))
}

// ---------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------

// MQTT 3.1 section 3.1: protocol name "MQIsdp", version 3, clean session,
// keep alive 60, client identifier "a".
#[test]
fn connect_v31_minimal() {
    let mut c = Connect::new(V31, s("a"));
    c.keep_alive = 60;
    #[rustfmt::skip]
    let wire = [
        0x10, 0x0F,
        0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', // protocol name
        0x03,       // protocol version
        0x02,       // clean session
        0x00, 0x3C, // keep alive 60
        0x00, 0x01, b'a',
    ];
    vector(V31, &wire, connect(c));
}

// Mosquitto's bridge convention (`try_private`): a 3.1.1 bridge sets the top
// bit of the protocol level, 0x84.
#[test]
fn connect_v311_bridge_marks_the_protocol_level() {
    let mut c = Connect::new(V311, s("b"));
    c.bridge = true;
    #[rustfmt::skip]
    let wire = [
        0x10, 0x0D,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x84,       // protocol level 4 with the bridge bit
        0x02,       // clean session
        0x00, 0x3C, // keep alive 60
        0x00, 0x01, b'b',
    ];
    vector(V311, &wire, connect(c));
}

// MQTT 3.1 section 3.1: will flag, will QoS 2, will retain, user name, no
// clean session; an empty will message.
#[test]
fn connect_v31_will_retain_qos2_and_user_name() {
    let mut c = Connect::new(V31, s("client-31"));
    c.clean_start = false;
    c.keep_alive = 30;
    c.will = Some(Will {
        topic: topic("a"),
        payload: Bytes::new(),
        qos: QoS::ExactlyOnce,
        retain: true,
        props: WillProps::default(),
    });
    c.username = Some(s("user"));
    #[rustfmt::skip]
    let wire = [
        0x10, 0x22,
        0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p',
        0x03,
        0xB4,       // user name, will retain, will QoS 2, will flag
        0x00, 0x1E, // keep alive 30
        0x00, 0x09, b'c', b'l', b'i', b'e', b'n', b't', b'-', b'3', b'1',
        0x00, 0x01, b'a', // will topic
        0x00, 0x00,       // will message, empty
        0x00, 0x04, b'u', b's', b'e', b'r',
    ];
    vector(V31, &wire, connect(c));
}

// MQTT 3.1.1 section 3.1.2 (variable header) and 3.1.3 (payload): the
// smallest CONNECT, clean session and keep alive 60.
#[test]
fn connect_v311_minimal() {
    let c = Connect::new(V311, s("c1"));
    #[rustfmt::skip]
    let wire = [
        0x10, 0x0E,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x04,
        0x02,
        0x00, 0x3C,
        0x00, 0x02, b'c', b'1',
    ];
    vector(V311, &wire, connect(c));
}

// MQTT 3.1.1 section 3.1.2.10 (Figure 3.6, variable header example): connect
// flags 0xCE = user name, password, will QoS 1, will flag, clean session;
// keep alive 10. Payload in the order of section 3.1.3.
#[test]
fn connect_v311_will_user_name_and_password() {
    let mut c = Connect::new(V311, s("c1"));
    c.keep_alive = 10;
    c.will = Some(Will {
        topic: topic("w/t"),
        payload: b(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: false,
        props: WillProps::default(),
    });
    c.username = Some(s("u"));
    c.password = Some(b(&[0x01, 0x02]));
    #[rustfmt::skip]
    let wire = [
        0x10, 0x1F,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x04,
        0xCE,
        0x00, 0x0A,
        0x00, 0x02, b'c', b'1',             // client identifier
        0x00, 0x03, b'w', b'/', b't',       // will topic
        0x00, 0x03, b'b', b'y', b'e',       // will message
        0x00, 0x01, b'u',                   // user name
        0x00, 0x02, 0x01, 0x02,             // password
    ];
    vector(V311, &wire, connect(c));
}

// MQTT 5.0 section 3.1.2: empty client identifier, empty property block.
#[test]
fn connect_v5_minimal_with_empty_client_id() {
    let c = Connect::new(V5, s(""));
    #[rustfmt::skip]
    let wire = [
        0x10, 0x0D,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x05,
        0x02,
        0x00, 0x3C,
        0x00,       // property length
        0x00, 0x00, // client identifier ""
    ];
    vector(V5, &wire, connect(c));
}

// MQTT 5.0 section 3.1.2.12 (the variable header example: flags 0xCE,
// keep alive 10, Session Expiry Interval 10), extended with every CONNECT
// property of section 3.1.2.11, two user properties in order, and every will
// property of section 3.1.3.2.
#[test]
fn connect_v5_every_property_will_properties_user_name_and_password() {
    let mut props = ConnectProps::default();
    props.session_expiry_interval = Some(10);
    props.receive_maximum = Some(nz16(20));
    props.maximum_packet_size = NonZeroU32::new(1024);
    props.topic_alias_maximum = Some(5);
    props.request_response_information = Some(true);
    props.request_problem_information = Some(false);
    props.authentication_method = Some(s("SCRAM"));
    props.authentication_data = Some(b(&[0xAA]));
    props.user_properties = vec![(s("k"), s("v1")), (s("k"), s("v2"))];

    let mut will_props = WillProps::default();
    will_props.will_delay_interval = Some(5);
    will_props.payload_format_indicator = Some(PayloadFormat::Utf8);
    will_props.message_expiry_interval = Some(60);
    will_props.content_type = Some(s("text/plain"));
    will_props.response_topic = Some(topic("r/1"));
    will_props.correlation_data = Some(b(&[0x01, 0x02]));
    will_props.user_properties = vec![(s("a"), s("b"))];

    let mut c = Connect::new(V5, s("c1"));
    c.keep_alive = 10;
    c.props = props;
    c.will = Some(Will {
        topic: topic("w/t"),
        payload: b(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: false,
        props: will_props,
    });
    c.username = Some(s("u"));
    c.password = Some(b(&[0x01, 0x02]));
    #[rustfmt::skip]
    let wire = [
        0x10, 0x7C,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x05,
        0xCE,
        0x00, 0x0A,
        0x30, // property length 48
        0x11, 0x00, 0x00, 0x00, 0x0A,                       // Session Expiry Interval 10
        0x21, 0x00, 0x14,                                   // Receive Maximum 20
        0x27, 0x00, 0x00, 0x04, 0x00,                       // Maximum Packet Size 1024
        0x22, 0x00, 0x05,                                   // Topic Alias Maximum 5
        0x19, 0x01,                                         // Request Response Information
        0x17, 0x00,                                         // Request Problem Information
        0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M',     // Authentication Method
        0x16, 0x00, 0x01, 0xAA,                             // Authentication Data
        0x26, 0x00, 0x01, b'k', 0x00, 0x02, b'v', b'1',     // User Property k=v1
        0x26, 0x00, 0x01, b'k', 0x00, 0x02, b'v', b'2',     // User Property k=v2
        0x00, 0x02, b'c', b'1',                             // client identifier
        0x2B, // will property length 43
        0x18, 0x00, 0x00, 0x00, 0x05,                       // Will Delay Interval 5
        0x01, 0x01,                                         // Payload Format Indicator UTF-8
        0x02, 0x00, 0x00, 0x00, 0x3C,                       // Message Expiry Interval 60
        0x03, 0x00, 0x0A, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i', b'n',
        0x08, 0x00, 0x03, b'r', b'/', b'1',                 // Response Topic
        0x09, 0x00, 0x02, 0x01, 0x02,                       // Correlation Data
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',           // User Property a=b
        0x00, 0x03, b'w', b'/', b't',                       // will topic
        0x00, 0x03, b'b', b'y', b'e',                       // will payload
        0x00, 0x01, b'u',                                   // user name
        0x00, 0x02, 0x01, 0x02,                             // password
    ];
    vector(V5, &wire, connect(c));
}

// MQTT 5.0 section 3.1.2.9: unlike 3.1.1 [MQTT-3.1.2-22], 5.0 allows a
// password without a user name.
#[test]
fn connect_v5_password_without_user_name() {
    let mut c = Connect::new(V5, s("c"));
    c.password = Some(b(b"pw"));
    #[rustfmt::skip]
    let wire = [
        0x10, 0x12,
        0x00, 0x04, b'M', b'Q', b'T', b'T',
        0x05,
        0x42, // password, clean start
        0x00, 0x3C,
        0x00,
        0x00, 0x01, b'c',
        0x00, 0x02, b'p', b'w',
    ];
    vector(V5, &wire, connect(c));
}

// ---------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------

// MQTT 3.1 section 3.2 and MQTT 3.1.1 section 3.2.2.3 (Table 3.1): return
// codes 0 to 5 map onto the 5.0 reason codes of the same meaning.
#[test]
fn connack_v3_return_codes_map_to_reason_codes() {
    let table = [
        (0x00, ReasonCode::SUCCESS),
        (0x01, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        (0x02, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
        (0x03, ReasonCode::SERVER_UNAVAILABLE),
        (0x04, ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        (0x05, ReasonCode::NOT_AUTHORIZED),
    ];
    for v in V3 {
        for (code, reason) in table {
            vector(
                v,
                &[0x20, 0x02, 0x00, code],
                connack(ConnAck::new(false, reason)),
            );
        }
    }
}

// MQTT 3.1.1 section 3.2.2.2: Session Present is bit 0 of the acknowledge flags.
#[test]
fn connack_v311_session_present() {
    vector(
        V311,
        &[0x20, 0x02, 0x01, 0x00],
        connack(ConnAck::new(true, ReasonCode::SUCCESS)),
    );
}

// MQTT 3.1.1 section 3.2.2.3: 5.0 "Server busy" has no code of its own in
// 3.1.1 and is sent as 3, "Server unavailable".
#[test]
fn connack_v311_server_busy_is_sent_as_server_unavailable() {
    let mut out = Vec::new();
    connack(ConnAck::new(false, ReasonCode::SERVER_BUSY))
        .encode(V311, &mut out)
        .unwrap();
    assert_eq!(out, [0x20, 0x02, 0x00, 0x03]);
}

// MQTT 5.0 section 3.2.2: success and a refusal, both with an empty property block.
#[test]
fn connack_v5_without_properties() {
    vector(
        V5,
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        connack(ConnAck::new(false, ReasonCode::SUCCESS)),
    );
    vector(
        V5,
        &[0x20, 0x03, 0x00, 0x87, 0x00],
        connack(ConnAck::new(false, ReasonCode::NOT_AUTHORIZED)),
    );
    vector(
        V5,
        &[0x20, 0x03, 0x00, 0x8A, 0x00],
        connack(ConnAck::new(false, ReasonCode::BANNED)),
    );
}

// MQTT 5.0 section 3.2.2.3: every CONNACK property, session present.
#[test]
fn connack_v5_every_property() {
    let mut props = ConnAckProps::default();
    props.session_expiry_interval = Some(120);
    props.receive_maximum = Some(nz16(10));
    props.maximum_qos = Some(QoS::AtLeastOnce);
    props.retain_available = Some(false);
    props.maximum_packet_size = NonZeroU32::new(65_536);
    props.assigned_client_identifier = Some(s("abc"));
    props.topic_alias_maximum = Some(8);
    props.reason_string = Some(s("ok"));
    props.wildcard_subscription_available = Some(true);
    props.subscription_identifiers_available = Some(false);
    props.shared_subscription_available = Some(true);
    props.server_keep_alive = Some(30);
    props.response_information = Some(s("ri"));
    props.server_reference = Some(s("sr"));
    props.authentication_method = Some(s("m"));
    props.authentication_data = Some(b(&[0xFF]));
    props.user_properties = vec![(s("x"), s("y"))];
    let mut c = ConnAck::new(true, ReasonCode::SUCCESS);
    c.props = props;
    #[rustfmt::skip]
    let wire = [
        0x20, 0x44,
        0x01, // session present
        0x00, // success
        0x41, // property length 65
        0x11, 0x00, 0x00, 0x00, 0x78,           // Session Expiry Interval 120
        0x21, 0x00, 0x0A,                       // Receive Maximum 10
        0x24, 0x01,                             // Maximum QoS 1
        0x25, 0x00,                             // Retain Available 0
        0x27, 0x00, 0x01, 0x00, 0x00,           // Maximum Packet Size 65536
        0x12, 0x00, 0x03, b'a', b'b', b'c',     // Assigned Client Identifier
        0x22, 0x00, 0x08,                       // Topic Alias Maximum 8
        0x1F, 0x00, 0x02, b'o', b'k',           // Reason String
        0x28, 0x01,                             // Wildcard Subscription Available
        0x29, 0x00,                             // Subscription Identifiers Available
        0x2A, 0x01,                             // Shared Subscription Available
        0x13, 0x00, 0x1E,                       // Server Keep Alive 30
        0x1A, 0x00, 0x02, b'r', b'i',           // Response Information
        0x1C, 0x00, 0x02, b's', b'r',           // Server Reference
        0x15, 0x00, 0x01, b'm',                 // Authentication Method
        0x16, 0x00, 0x01, 0xFF,                 // Authentication Data
        0x26, 0x00, 0x01, b'x', 0x00, 0x01, b'y', // User Property
    ];
    vector(V5, &wire, connack(c));
}

// ---------------------------------------------------------------------------
// PUBLISH
// ---------------------------------------------------------------------------

// MQTT 3.1 section 3.3 / 3.1.1 section 3.3: QoS 0 has no packet identifier.
#[test]
fn publish_v3_qos0() {
    let p = Publish::new(topic("a/b"), b(b"hi"));
    for v in V3 {
        vector(
            v,
            &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'],
            Packet::Publish(p.clone()),
        );
    }
}

// MQTT 3.1.1 section 3.3.2.3 (Figure 3.11 example: topic "a/b", packet
// identifier 10) with DUP, QoS 1 and RETAIN in the fixed header (3.3.1).
#[test]
fn publish_v3_qos1_dup_retain() {
    let mut p = Publish::new(topic("a/b"), b(b"hi"));
    p.dup = true;
    p.qos = QosPid::AtLeastOnce(pid(10));
    p.retain = true;
    #[rustfmt::skip]
    let wire = [
        0x3B, 0x09, // PUBLISH, DUP, QoS 1, RETAIN
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x0A,
        b'h', b'i',
    ];
    for v in V3 {
        vector(v, &wire, Packet::Publish(p.clone()));
    }
}

// MQTT 3.1.1 section 3.3.1.2: QoS 2, packet identifier 65535, empty payload
// (section 3.3.3 allows a zero-length payload).
#[test]
fn publish_v3_qos2_empty_payload() {
    let mut p = Publish::new(topic("a/b"), Bytes::new());
    p.qos = QosPid::ExactlyOnce(pid(0xFFFF));
    for v in V3 {
        vector(
            v,
            &[0x34, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0xFF, 0xFF],
            Packet::Publish(p.clone()),
        );
    }
}

// MQTT 5.0 section 3.3.2: QoS 0 with an empty property block.
#[test]
fn publish_v5_qos0_without_properties() {
    let p = Publish::new(topic("a/b"), b(b"hi"));
    vector(
        V5,
        &[0x30, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, b'h', b'i'],
        Packet::Publish(p),
    );
}

// MQTT 5.0 section 3.3.2.3: QoS 1, RETAIN, every PUBLISH property except the
// subscription identifier.
#[test]
fn publish_v5_qos1_retain_with_properties() {
    let mut props = PublishProps::default();
    props.payload_format_indicator = Some(PayloadFormat::Utf8);
    props.message_expiry_interval = Some(30);
    props.topic_alias = Some(nz16(3));
    props.response_topic = Some(topic("resp"));
    props.correlation_data = Some(b(b"id"));
    props.content_type = Some(s("json"));
    props.user_properties = vec![(s("k"), s("v"))];
    let mut p = Publish::new(topic("a/b"), b(b"{}"));
    p.qos = QosPid::AtLeastOnce(pid(1));
    p.retain = true;
    p.props = props;
    #[rustfmt::skip]
    let wire = [
        0x33, 0x2E,
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x01,
        0x24, // property length 36
        0x01, 0x01,                                 // Payload Format Indicator
        0x02, 0x00, 0x00, 0x00, 0x1E,               // Message Expiry Interval 30
        0x23, 0x00, 0x03,                           // Topic Alias 3
        0x08, 0x00, 0x04, b'r', b'e', b's', b'p',   // Response Topic
        0x09, 0x00, 0x02, b'i', b'd',               // Correlation Data
        0x03, 0x00, 0x04, b'j', b's', b'o', b'n',   // Content Type
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',   // User Property
        b'{', b'}',
    ];
    vector(V5, &wire, Packet::Publish(p));
}

// MQTT 5.0 section 3.3.2.3.4 (a zero-length topic name with a Topic Alias)
// and 3.3.2.3.8 (several Subscription Identifiers, including the largest,
// 268,435,455, as a four-byte Variable Byte Integer); QoS 2 with DUP.
#[test]
fn publish_v5_topic_alias_with_empty_topic_and_subscription_identifiers() {
    let mut props = PublishProps::default();
    props.topic_alias = Some(nz16(7));
    props.subscription_identifiers = vec![
        SubscriptionId::new(1).unwrap(),
        SubscriptionId::new(200).unwrap(),
        SubscriptionId::new(268_435_455).unwrap(),
    ];
    let p = Publish {
        dup: true,
        qos: QosPid::ExactlyOnce(pid(0x1234)),
        retain: false,
        topic: None,
        props,
        payload: b(b"x"),
    };
    #[rustfmt::skip]
    let wire = [
        0x3C, 0x13, // PUBLISH, DUP, QoS 2
        0x00, 0x00, // zero-length topic name
        0x12, 0x34,
        0x0D,
        0x23, 0x00, 0x07,               // Topic Alias 7
        0x0B, 0x01,                     // Subscription Identifier 1
        0x0B, 0xC8, 0x01,               // Subscription Identifier 200
        0x0B, 0xFF, 0xFF, 0xFF, 0x7F,   // Subscription Identifier 268435455
        b'x',
    ];
    vector(V5, &wire, Packet::Publish(p));
}

// Publish::encode_head writes everything but the payload (for a vectored write).
#[test]
fn publish_encode_head_is_the_vector_without_its_payload() {
    let mut p = Publish::new(topic("a/b"), b(b"hi"));
    p.qos = QosPid::AtLeastOnce(pid(10));
    let mut head = Vec::new();
    let n = p.encode_head(V311, u32::MAX, &mut head).unwrap();
    assert_eq!(head, [0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A]);
    assert_eq!(n, head.len());
    assert_eq!(p.encoded_len(V311), Ok(head.len() + 2));
}

// ---------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP
// ---------------------------------------------------------------------------

// MQTT 3.1 sections 3.4 to 3.7 / 3.1.1 sections 3.4 to 3.7: the packet
// identifier alone; PUBREL carries flags 0b0010 (3.1.1 section 3.6.1).
#[test]
fn acks_v3() {
    for v in V3 {
        let a = Ack::new(pid(10));
        vector(v, &[0x40, 0x02, 0x00, 0x0A], Packet::PubAck(a.clone()));
        vector(v, &[0x50, 0x02, 0x00, 0x0A], Packet::PubRec(a.clone()));
        vector(v, &[0x62, 0x02, 0x00, 0x0A], Packet::PubRel(a.clone()));
        vector(v, &[0x70, 0x02, 0x00, 0x0A], Packet::PubComp(a));
    }
}

// MQTT 5.0 section 3.4.2.1: reason code and property length are omitted for
// success without properties, so the remaining length is 2.
#[test]
fn acks_v5_short_form() {
    let a = Ack::new(pid(10));
    vector(V5, &[0x40, 0x02, 0x00, 0x0A], Packet::PubAck(a.clone()));
    vector(V5, &[0x50, 0x02, 0x00, 0x0A], Packet::PubRec(a.clone()));
    vector(V5, &[0x62, 0x02, 0x00, 0x0A], Packet::PubRel(a.clone()));
    vector(V5, &[0x70, 0x02, 0x00, 0x0A], Packet::PubComp(a));
}

// MQTT 5.0 sections 3.4.2.2.1, 3.5.2.2.1, 3.6.2.2.1, 3.7.2.2.1: with a
// remaining length under 4 there is no property length; a reason code alone
// takes 3 bytes.
#[test]
fn acks_v5_reason_code_only() {
    vector(
        V5,
        &[0x40, 0x03, 0x00, 0x0A, 0x10],
        Packet::PubAck(Ack::with_reason(
            pid(10),
            ReasonCode::NO_MATCHING_SUBSCRIBERS,
        )),
    );
    vector(
        V5,
        &[0x50, 0x03, 0x00, 0x0A, 0x80],
        Packet::PubRec(Ack::with_reason(pid(10), ReasonCode::UNSPECIFIED_ERROR)),
    );
    vector(
        V5,
        &[0x62, 0x03, 0x00, 0x0A, 0x92],
        Packet::PubRel(Ack::with_reason(
            pid(10),
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        )),
    );
    vector(
        V5,
        &[0x70, 0x03, 0x00, 0x0A, 0x92],
        Packet::PubComp(Ack::with_reason(
            pid(10),
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        )),
    );
}

// MQTT 5.0 sections 3.4.2.2 and 3.7.2.2: reason code, Reason String and a
// User Property.
#[test]
fn acks_v5_full_form() {
    let mut props = AckProps::default();
    props.reason_string = Some(s("no"));
    props.user_properties = vec![(s("a"), s("b"))];
    let mut a = Ack::with_reason(pid(10), ReasonCode::NOT_AUTHORIZED);
    a.props = props;
    #[rustfmt::skip]
    let wire = [
        0x40, 0x10,
        0x00, 0x0A,
        0x87,
        0x0C,
        0x1F, 0x00, 0x02, b'n', b'o',
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',
    ];
    vector(V5, &wire, Packet::PubAck(a.clone()));
    let mut rec = wire;
    rec[0] = 0x50;
    vector(V5, &rec, Packet::PubRec(a));

    let mut props = AckProps::default();
    props.reason_string = Some(s("no"));
    let mut a = Ack::with_reason(pid(10), ReasonCode::PACKET_IDENTIFIER_NOT_FOUND);
    a.props = props;
    let wire = [
        0x70, 0x09, 0x00, 0x0A, 0x92, 0x05, 0x1F, 0x00, 0x02, b'n', b'o',
    ];
    vector(V5, &wire, Packet::PubComp(a.clone()));
    let mut rel = wire;
    rel[0] = 0x62;
    vector(V5, &rel, Packet::PubRel(a));
}

// MQTT 5.0 section 3.4.2.1: the longer encodings of a plain success are
// accepted and mean the same; the encoder writes the 2-byte form.
#[test]
fn acks_v5_longer_encodings_of_success() {
    let a = Packet::PubAck(Ack::new(pid(10)));
    decodes_to(V5, &[0x40, 0x03, 0x00, 0x0A, 0x00], &a);
    decodes_to(V5, &[0x40, 0x04, 0x00, 0x0A, 0x00, 0x00], &a);
}

// ---------------------------------------------------------------------------
// SUBSCRIBE
// ---------------------------------------------------------------------------

// MQTT 3.1.1 section 3.8.3 (Figure 3.22 payload example: "a/b" QoS 1, "c/d"
// QoS 2), packet identifier 10 (Figure 3.21). Identical in 3.1.
#[test]
fn subscribe_v3() {
    let sub = Subscribe {
        id: pid(10),
        props: SubscribeProps::default(),
        filters: vec![
            (filter("a/b"), SubscriptionOptions::new(QoS::AtLeastOnce)),
            (filter("c/d"), SubscriptionOptions::new(QoS::ExactlyOnce)),
        ],
    };
    #[rustfmt::skip]
    let wire = [
        0x82, 0x0E,
        0x00, 0x0A,
        0x00, 0x03, b'a', b'/', b'b', 0x01,
        0x00, 0x03, b'c', b'/', b'd', 0x02,
    ];
    for v in V3 {
        vector(v, &wire, Packet::Subscribe(sub.clone()));
    }
}

// MQTT 5.0 section 3.8.3.1 (the subscription options byte): No Local is
// bit 2, Retain As Published bit 3, Retain Handling bits 4-5; section 3.8.2.1
// properties (Subscription Identifier, User Property).
#[test]
fn subscribe_v5_options_and_properties() {
    let mut props = SubscribeProps::default();
    props.subscription_identifier = SubscriptionId::new(5);
    props.user_properties = vec![(s("k"), s("v"))];
    let sub = Subscribe {
        id: pid(10),
        props,
        filters: vec![
            (
                filter("a/+"),
                SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            ),
            (
                filter("$share/g/b/#"),
                SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribeIfNew,
                },
            ),
            (filter("c"), SubscriptionOptions::new(QoS::AtMostOnce)),
        ],
    };
    #[rustfmt::skip]
    let wire = [
        0x82, 0x25,
        0x00, 0x0A,
        0x09,
        0x0B, 0x05,                                 // Subscription Identifier 5
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',   // User Property
        0x00, 0x03, b'a', b'/', b'+',
        0x2D, // retain handling 2, retain as published, no local, QoS 1
        0x00, 0x0C, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'b', b'/', b'#',
        0x12, // retain handling 1, QoS 2
        0x00, 0x01, b'c',
        0x00,
    ];
    vector(V5, &wire, Packet::Subscribe(sub));
}

// MQTT 3.1.1 section 3.8.3.1: only the QoS is on the wire before 5.0, so the
// 5.0 options are dropped when encoding for 3.1.1.
#[test]
fn subscribe_v311_encodes_only_the_qos_of_the_options() {
    let sub = Subscribe {
        id: pid(1),
        props: SubscribeProps::default(),
        filters: vec![(
            filter("a"),
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        )],
    };
    let mut out = Vec::new();
    Packet::Subscribe(sub).encode(V311, &mut out).unwrap();
    assert_eq!(out, [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01]);
}

// MQTT 3.1 section 2.1 (DUP): "set when the client or server attempts to
// re-deliver a PUBLISH, PUBREL, SUBSCRIBE or UNSUBSCRIBE message", so a 3.1
// peer may send these with DUP set. The encoder always writes DUP clear.
#[test]
fn v31_retries_of_subscribe_unsubscribe_and_pubrel_carry_dup() {
    let sub = Packet::Subscribe(Subscribe {
        id: pid(1),
        props: SubscribeProps::default(),
        filters: vec![(filter("a"), SubscriptionOptions::new(QoS::AtLeastOnce))],
    });
    decodes_to(V31, &[0x8A, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x01], &sub);
    let unsub = Packet::Unsubscribe(Unsubscribe {
        id: pid(1),
        props: UnsubscribeProps::default(),
        filters: vec![filter("a")],
    });
    decodes_to(V31, &[0xAA, 0x05, 0x00, 0x01, 0x00, 0x01, b'a'], &unsub);
    let rel = Packet::PubRel(Ack::new(pid(1)));
    decodes_to(V31, &[0x6A, 0x02, 0x00, 0x01], &rel);
    let mut out = Vec::new();
    rel.encode(V31, &mut out).unwrap();
    assert_eq!(out, [0x62, 0x02, 0x00, 0x01]);
}

// ---------------------------------------------------------------------------
// SUBACK
// ---------------------------------------------------------------------------

// MQTT 3.1 section 3.9: granted QoS values only.
#[test]
fn suback_v31() {
    let ack = SubAck {
        id: pid(10),
        props: SubAckProps::default(),
        reasons: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::GRANTED_QOS_2],
    };
    vector(
        V31,
        &[0x90, 0x04, 0x00, 0x0A, 0x01, 0x02],
        Packet::SubAck(ack),
    );
}

// MQTT 3.1.1 section 3.9.3 (Figure 3.26): return codes 0x00, 0x02 and the
// failure code 0x80.
#[test]
fn suback_v311_with_failure() {
    let ack = SubAck {
        id: pid(10),
        props: SubAckProps::default(),
        reasons: vec![
            ReasonCode::GRANTED_QOS_0,
            ReasonCode::GRANTED_QOS_2,
            ReasonCode::UNSPECIFIED_ERROR,
        ],
    };
    vector(
        V311,
        &[0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80],
        Packet::SubAck(ack),
    );
}

// MQTT 3.1.1 section 3.9.3: every 5.0 failure reason is sent as 0x80.
#[test]
fn suback_v311_collapses_failures_to_0x80() {
    let ack: SubAck = SubAck {
        id: pid(10),
        props: SubAckProps::default(),
        reasons: vec![ReasonCode::NOT_AUTHORIZED],
    };
    let mut out = Vec::new();
    Packet::SubAck(ack).encode(V311, &mut out).unwrap();
    assert_eq!(out, [0x90, 0x03, 0x00, 0x0A, 0x80]);
}

// MQTT 5.0 section 3.9.2.1 (Reason String) and 3.9.3 (reason codes).
#[test]
fn suback_v5_with_properties() {
    let mut props = SubAckProps::default();
    props.reason_string = Some(s("r"));
    let ack = SubAck {
        id: pid(10),
        props,
        reasons: vec![
            ReasonCode::GRANTED_QOS_1,
            ReasonCode::TOPIC_FILTER_INVALID,
            ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
        ],
    };
    #[rustfmt::skip]
    let wire = [
        0x90, 0x0A,
        0x00, 0x0A,
        0x04, 0x1F, 0x00, 0x01, b'r',
        0x01, 0x8F, 0xA2,
    ];
    vector(V5, &wire, Packet::SubAck(ack));
}

// ---------------------------------------------------------------------------
// UNSUBSCRIBE
// ---------------------------------------------------------------------------

// MQTT 3.1 section 3.10 / 3.1.1 section 3.10 (flags 0b0010, section 3.10.1).
#[test]
fn unsubscribe_v3() {
    let u = Unsubscribe {
        id: pid(11),
        props: UnsubscribeProps::default(),
        filters: vec![filter("a/b"), filter("c")],
    };
    #[rustfmt::skip]
    let wire = [
        0xA2, 0x0A,
        0x00, 0x0B,
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x01, b'c',
    ];
    for v in V3 {
        vector(v, &wire, Packet::Unsubscribe(u.clone()));
    }
}

// MQTT 5.0 section 3.10.2.1: user properties only; a shared filter.
#[test]
fn unsubscribe_v5_with_user_property() {
    let mut props = UnsubscribeProps::default();
    props.user_properties = vec![(s("k"), s("v"))];
    let u = Unsubscribe {
        id: pid(11),
        props,
        filters: vec![filter("$share/g/x")],
    };
    #[rustfmt::skip]
    let wire = [
        0xA2, 0x16,
        0x00, 0x0B,
        0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
        0x00, 0x0A, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'x',
    ];
    vector(V5, &wire, Packet::Unsubscribe(u));
}

// ---------------------------------------------------------------------------
// UNSUBACK
// ---------------------------------------------------------------------------

// MQTT 3.1 section 3.11 / 3.1.1 section 3.11.2: the packet identifier only.
#[test]
fn unsuback_v3_is_the_packet_id_only() {
    let ack = SubAck {
        id: pid(11),
        props: SubAckProps::default(),
        reasons: vec![],
    };
    for v in V3 {
        vector(v, &[0xB0, 0x02, 0x00, 0x0B], Packet::UnsubAck(ack.clone()));
    }
}

// MQTT 5.0 section 3.11.3: one reason code per filter, after the properties.
#[test]
fn unsuback_v5_with_reason_codes() {
    let ack = SubAck {
        id: pid(11),
        props: SubAckProps::default(),
        reasons: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
    };
    vector(
        V5,
        &[0xB0, 0x05, 0x00, 0x0B, 0x00, 0x00, 0x11],
        Packet::UnsubAck(ack),
    );

    let mut props = SubAckProps::default();
    props.reason_string = Some(s("x"));
    let ack = SubAck {
        id: pid(11),
        props,
        reasons: vec![ReasonCode::NOT_AUTHORIZED],
    };
    vector(
        V5,
        &[0xB0, 0x08, 0x00, 0x0B, 0x04, 0x1F, 0x00, 0x01, b'x', 0x87],
        Packet::UnsubAck(ack),
    );
}

// ---------------------------------------------------------------------------
// PINGREQ, PINGRESP
// ---------------------------------------------------------------------------

// Sections 3.12 and 3.13 of every version: a fixed header alone.
#[test]
fn pingreq_and_pingresp() {
    for v in ALL {
        vector(v, &[0xC0, 0x00], Packet::PingReq);
        vector(v, &[0xD0, 0x00], Packet::PingResp);
    }
}

// ---------------------------------------------------------------------------
// DISCONNECT
// ---------------------------------------------------------------------------

// MQTT 3.1 section 3.14 / 3.1.1 section 3.14: a fixed header alone.
#[test]
fn disconnect_v3() {
    for v in V3 {
        vector(v, &[0xE0, 0x00], Packet::Disconnect(Disconnect::default()));
    }
}

// MQTT 5.0 section 3.14.2.1: "Normal disconnection" with no properties is sent
// with a remaining length of 0.
#[test]
fn disconnect_v5_zero_length() {
    vector(
        V5,
        &[0xE0, 0x00],
        Packet::Disconnect(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)),
    );
}

// MQTT 5.0 section 3.14.2.2.1: with a remaining length under 2 there is no
// property length; a reason code alone takes 1 byte.
#[test]
fn disconnect_v5_reason_code_only() {
    vector(
        V5,
        &[0xE0, 0x01, 0x04],
        Packet::Disconnect(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE)),
    );
    vector(
        V5,
        &[0xE0, 0x01, 0x8E],
        Packet::Disconnect(Disconnect::new(ReasonCode::SESSION_TAKEN_OVER)),
    );
}

// MQTT 5.0 section 3.14.2.2: Reason String and Server Reference with "Use
// another server"; a client's Session Expiry Interval with a normal disconnection.
#[test]
fn disconnect_v5_with_properties() {
    let mut props = DisconnectProps::default();
    props.reason_string = Some(s("bye"));
    props.server_reference = Some(s("s2"));
    let mut d = Disconnect::new(ReasonCode::USE_ANOTHER_SERVER);
    d.props = props;
    #[rustfmt::skip]
    let wire = [
        0xE0, 0x0D,
        0x9C,
        0x0B,
        0x1F, 0x00, 0x03, b'b', b'y', b'e',
        0x1C, 0x00, 0x02, b's', b'2',
    ];
    vector(V5, &wire, Packet::Disconnect(d));

    let mut props = DisconnectProps::default();
    props.session_expiry_interval = Some(60);
    let d = Disconnect {
        reason: ReasonCode::NORMAL_DISCONNECTION,
        props,
    };
    vector(
        V5,
        &[0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x3C],
        Packet::Disconnect(d),
    );
}

// MQTT 5.0 section 3.14.2.2.1: an explicit empty property block decodes to
// the same packet as the 0-length form.
#[test]
fn disconnect_v5_longer_encoding_of_normal_disconnection() {
    decodes_to(
        V5,
        &[0xE0, 0x02, 0x00, 0x00],
        &Packet::Disconnect(Disconnect::default()),
    );
}

// ---------------------------------------------------------------------------
// AUTH
// ---------------------------------------------------------------------------

// MQTT 5.0 section 3.15.2.1: success with no properties has a remaining length of 0.
#[test]
fn auth_v5_zero_length() {
    vector(
        V5,
        &[0xF0, 0x00],
        Packet::Auth(Auth {
            reason: ReasonCode::SUCCESS,
            props: AuthProps::default(),
        }),
    );
}

// MQTT 5.0 section 3.15.2.2: Continue authentication with every AUTH
// property, and Re-authenticate with only the method.
#[test]
fn auth_v5_with_properties() {
    let mut props = AuthProps::default();
    props.authentication_method = Some(s("SCRAM-SHA-1"));
    props.authentication_data = Some(b(&[1, 2, 3]));
    props.reason_string = Some(s("c"));
    props.user_properties = vec![(s("a"), s("b"))];
    let a = Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        props,
    };
    #[rustfmt::skip]
    let wire = [
        0xF0, 0x21,
        0x18,
        0x1F,
        0x15, 0x00, 0x0B, b'S', b'C', b'R', b'A', b'M', b'-', b'S', b'H', b'A', b'-', b'1',
        0x16, 0x00, 0x03, 0x01, 0x02, 0x03,
        0x1F, 0x00, 0x01, b'c',
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b',
    ];
    vector(V5, &wire, Packet::Auth(a));

    let mut props = AuthProps::default();
    props.authentication_method = Some(s("m"));
    let a = Auth {
        reason: ReasonCode::RE_AUTHENTICATE,
        props,
    };
    vector(
        V5,
        &[0xF0, 0x06, 0x19, 0x04, 0x15, 0x00, 0x01, b'm'],
        Packet::Auth(a),
    );
}

// ---------------------------------------------------------------------------
// Zero-copy
// ---------------------------------------------------------------------------

fn within(inner: &[u8], outer: core::ops::Range<*const u8>) -> bool {
    let r = inner.as_ptr_range();
    outer.start <= r.start && r.end <= outer.end
}

// Decoder::decode splits the packet off the read buffer: topic, strings and
// payload are views of that same allocation, not copies.
#[test]
fn decode_returns_slices_of_the_read_buffer() {
    let mut props = PublishProps::default();
    props.content_type = Some(s("text"));
    props.correlation_data = Some(b(b"corr"));
    let mut p = Publish::new(topic("zero/copy"), Bytes::from(vec![0x5A; 4096]));
    p.qos = QosPid::AtLeastOnce(pid(3));
    p.props = props;

    let mut buf = BytesMut::with_capacity(8192);
    Packet::Publish(p.clone()).encode(V5, &mut buf).unwrap();
    // A second packet behind it, so the decoder really splits the buffer.
    Packet::<Bytes>::PingReq.encode(V5, &mut buf).unwrap();
    let region = buf.as_ptr_range();

    let mut d = Decoder::with_version(V5);
    let Some(Packet::Publish(got)) = d.decode(&mut buf).unwrap() else {
        panic!("expected PUBLISH");
    };
    assert_eq!(got, p);
    assert!(
        within(&got.payload, region.clone()),
        "payload is not copied"
    );
    assert!(within(
        got.topic.as_ref().unwrap().as_bytes(),
        region.clone()
    ));
    assert!(within(
        got.props.content_type.as_ref().unwrap().as_bytes(),
        region.clone()
    ));
    assert!(within(
        got.props.correlation_data.as_ref().unwrap(),
        region.clone()
    ));
    assert_eq!(d.decode(&mut buf).unwrap(), Some(Packet::PingReq));
    assert!(buf.is_empty());
}

// Decoder::decode_slice borrows from the caller's slice.
#[test]
fn decode_slice_borrows_from_the_input() {
    let wire = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    let (p, n) = Decoder::with_version(V311)
        .decode_slice(&wire)
        .unwrap()
        .unwrap();
    assert_eq!(n, wire.len());
    let Packet::Publish(p) = p else {
        panic!("expected PUBLISH")
    };
    assert!(core::ptr::eq(p.payload.as_ptr(), wire[7..].as_ptr()));
    assert!(core::ptr::eq(
        p.topic.unwrap().as_bytes().as_ptr(),
        wire[4..].as_ptr()
    ));
}
