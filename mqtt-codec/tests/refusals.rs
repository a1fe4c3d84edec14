//! One test per refusal rule: bytes that break a rule of the specification are
//! refused with the specific [`DecodeError`] for that rule, which maps to the
//! reason code the rule calls for; packets that cannot be encoded are refused
//! with the specific [`EncodeError`], and nothing is written.
//!
//! Tests are named after the normative statement they check where there is
//! one. Statement numbers are MQTT 5.0's unless the name says `v311`; the
//! comment on each test gives the 3.1.1 number where it differs.

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    Ack, Auth, AuthProps, ConnAck, Connect, DecodeError, Decoder, EncodeError, Packet, PacketId,
    PacketType, ProtocolVersion, Publish, QoS, QosPid, ReasonCode, Str, StrError, SubAck,
    SubAckProps, Subscribe, SubscribeProps, SubscriptionOptions, TopicError, TopicFilter,
    TopicName, Unsubscribe, UnsubscribeProps, Will, WillProps,
};

use ProtocolVersion::{V31, V311, V5};

/// Decodes `wire` with `d` three ways (BytesMut, Bytes, slice) and asserts that
/// each refuses it with `err`, whose reason code must be `reason`.
#[track_caller]
fn refused_by(d: Decoder, wire: &[u8], err: DecodeError, reason: ReasonCode) {
    assert_eq!(err.reason_code(), reason, "reason code of {err:?}");
    let (mut owned, mut frozen, mut borrowed) = (d, d, d);
    let mut buf = BytesMut::from(wire);
    assert_eq!(owned.decode(&mut buf), Err(err), "decoding {wire:02X?}");
    let mut bytes = Bytes::copy_from_slice(wire);
    assert_eq!(frozen.decode_bytes(&mut bytes), Err(err));
    assert_eq!(borrowed.decode_slice(wire).map(|_| ()), Err(err));
}

/// `refused_by` with a decoder for a connection of version `v`.
#[track_caller]
fn refused(v: ProtocolVersion, wire: &[u8], err: DecodeError, reason: ReasonCode) {
    refused_by(Decoder::with_version(v), wire, err, reason);
}

/// `refused_by` with a server decoder that has not seen CONNECT yet.
#[track_caller]
fn connect_refused(wire: &[u8], err: DecodeError, reason: ReasonCode) {
    refused_by(Decoder::new(), wire, err, reason);
}

/// A CONNECT with the given protocol name, level, flags and body after the keep alive.
fn connect_bytes(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0x00, 0x3C]);
    body.extend_from_slice(rest);
    let mut wire = vec![0x10, body.len() as u8];
    wire.extend_from_slice(&body);
    wire
}

/// A 3.1.1 CONNECT with these flags and this payload.
fn connect_v311(flags: u8, payload: &[u8]) -> Vec<u8> {
    connect_bytes(b"MQTT", 4, flags, payload)
}

/// A 5.0 CONNECT, clean start, with this property block content and an empty client id.
fn connect_v5_props(props: &[u8]) -> Vec<u8> {
    let mut rest = vec![props.len() as u8];
    rest.extend_from_slice(props);
    rest.extend_from_slice(&[0x00, 0x00]);
    connect_bytes(b"MQTT", 5, 0x02, &rest)
}

/// A fixed header (one-byte remaining length) followed by `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut wire = vec![first, body.len() as u8];
    wire.extend_from_slice(body);
    wire
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

const MALFORMED: ReasonCode = ReasonCode::MALFORMED_PACKET;
const PROTOCOL: ReasonCode = ReasonCode::PROTOCOL_ERROR;

// ---------------------------------------------------------------------------
// Fixed header (section 2.1)
// ---------------------------------------------------------------------------

// [MQTT-2.1.3-1]: PUBREL, SUBSCRIBE and UNSUBSCRIBE carry flags 0b0010
// (3.1.1 [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]).
#[test]
fn mqtt_2_1_3_1_pubrel_subscribe_unsubscribe_flags_must_be_0010() {
    for v in [V311, V5] {
        for (t, first) in [
            (PacketType::PubRel, 0x60),
            (PacketType::PubRel, 0x63),
            (PacketType::PubRel, 0x6A),
            (PacketType::Subscribe, 0x80),
            (PacketType::Subscribe, 0x8A),
            (PacketType::Unsubscribe, 0xA0),
            (PacketType::Unsubscribe, 0xA6),
        ] {
            let wire = packet(first, &[0x00, 0x01, 0x00, 0x01, b'a', 0x00]);
            let err = DecodeError::InvalidFixedHeaderFlags {
                packet: t,
                flags: first & 0x0F,
            };
            refused(v, &wire, err, MALFORMED);
        }
    }
    // 3.1 allows DUP on their retries, but no other flag.
    refused(
        V31,
        &[0x60, 0x02, 0x00, 0x01],
        DecodeError::InvalidFixedHeaderFlags {
            packet: PacketType::PubRel,
            flags: 0,
        },
        MALFORMED,
    );
    refused(
        V31,
        &[0x8B, 0x02, 0x00, 0x01],
        DecodeError::InvalidFixedHeaderFlags {
            packet: PacketType::Subscribe,
            flags: 0x0B,
        },
        MALFORMED,
    );
}

// [MQTT-2.1.3-1]: every other packet except PUBLISH carries flags 0.
#[test]
fn mqtt_2_1_3_1_reserved_flags_of_other_packets_must_be_0() {
    let cases = [
        (PacketType::ConnAck, 0x21),
        (PacketType::PubAck, 0x42),
        (PacketType::PubRec, 0x58),
        (PacketType::PubComp, 0x71),
        (PacketType::SubAck, 0x92),
        (PacketType::UnsubAck, 0xB4),
        (PacketType::PingReq, 0xC1),
        (PacketType::PingResp, 0xD8),
        (PacketType::Disconnect, 0xE2),
    ];
    for v in [V31, V311, V5] {
        for (t, first) in cases {
            let err = DecodeError::InvalidFixedHeaderFlags {
                packet: t,
                flags: first & 0x0F,
            };
            refused(v, &[first, 0x00], err, MALFORMED);
        }
    }
    refused(
        V5,
        &[0xF1, 0x00],
        DecodeError::InvalidFixedHeaderFlags {
            packet: PacketType::Auth,
            flags: 1,
        },
        MALFORMED,
    );
    connect_refused(
        &[0x12, 0x00],
        DecodeError::InvalidFixedHeaderFlags {
            packet: PacketType::Connect,
            flags: 2,
        },
        MALFORMED,
    );
}

// Section 2.1.2 (direction of flow) and 4.13: CONNACK, SUBACK, UNSUBACK and
// PINGRESP flow from server to client only. A server's decoder refuses them
// from the first byte as a Protocol Error, whatever their flags and body (a
// 3.1.1-shaped CONNACK on a 5.0 connection included); a client's decoder
// reads them.
#[test]
fn section_2_1_2_packets_only_a_server_sends_are_a_protocol_error_from_a_client() {
    let server_only = [
        (PacketType::ConnAck, &[0x20, 0x03, 0x00, 0x00, 0x00][..]),
        (PacketType::ConnAck, &[0x20, 0x02, 0x00, 0x00][..]),
        (
            PacketType::SubAck,
            &[0x90, 0x04, 0x00, 0x01, 0x00, 0x00][..],
        ),
        (PacketType::SubAck, &[0x91, 0x03, 0x00, 0x01, 0x00][..]),
        (PacketType::UnsubAck, &[0xB0, 0x02, 0x00, 0x01][..]),
        (PacketType::PingResp, &[0xD0, 0x00][..]),
    ];
    for v in [V31, V311, V5] {
        for (t, wire) in server_only {
            let mut server = Decoder::new();
            server.set_version(v);
            refused_by(server, wire, DecodeError::ServerOnlyPacket(t), PROTOCOL);
        }
    }
    let mut client = Decoder::with_version(V5);
    let mut buf = BytesMut::from(&[0xD0, 0x00][..]);
    assert_eq!(client.decode(&mut buf), Ok(Some(Packet::PingResp)));
}

// Section 2.1.2: packet type 0 is reserved.
#[test]
fn packet_type_0_is_reserved() {
    refused(
        V311,
        &[0x00, 0x00],
        DecodeError::ReservedPacketType,
        MALFORMED,
    );
    connect_refused(&[0x00, 0x00], DecodeError::ReservedPacketType, MALFORMED);
}

// [MQTT-1.5.5-1]: a Variable Byte Integer takes at most four bytes.
#[test]
fn mqtt_1_5_5_1_remaining_length_over_four_bytes_is_malformed() {
    refused(
        V311,
        &[0xC0, 0x80, 0x80, 0x80, 0x80, 0x01],
        DecodeError::MalformedVariableByteInteger,
        MALFORMED,
    );
    // Refused as soon as the fourth byte still says "more follows".
    refused(
        V311,
        &[0x30, 0xFF, 0xFF, 0xFF, 0xFF],
        DecodeError::MalformedVariableByteInteger,
        MALFORMED,
    );
}

// [MQTT-1.5.5-1]: "The encoded value MUST use the minimum number of bytes".
#[test]
fn mqtt_1_5_5_1_non_minimal_remaining_length_is_malformed() {
    for wire in [
        &[0xC0, 0x80, 0x00][..],
        &[0xC0, 0x80, 0x80, 0x00],
        &[0x30, 0x85, 0x80, 0x00],
    ] {
        refused(
            V5,
            wire,
            DecodeError::MalformedVariableByteInteger,
            MALFORMED,
        );
    }
}

// [MQTT-1.5.5-1] also binds the Variable Byte Integers inside a packet.
#[test]
fn mqtt_1_5_5_1_non_minimal_property_length_is_malformed() {
    // PUBACK with a property length of 0 written as 0x80 0x00.
    refused(
        V5,
        &[0x40, 0x05, 0x00, 0x01, 0x00, 0x80, 0x00],
        DecodeError::MalformedVariableByteInteger,
        MALFORMED,
    );
}

// Section 3.1.2.11.4 / 3.2.2.3.6 (Maximum Packet Size): a packet over the
// receiver's limit is refused from its fixed header alone, before the body
// is buffered.
#[test]
fn packet_over_the_maximum_packet_size_is_refused_from_the_header() {
    let mut d = Decoder::with_version(V5).with_max_packet_size(1024);
    // A PUBLISH announcing 268,435,455 bytes: only its first five bytes arrive.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let err = DecodeError::PacketTooLarge {
        len: 5 + 268_435_455,
        max: 1024,
    };
    assert_eq!(d.decode(&mut buf), Err(err));
    assert_eq!(err.reason_code(), ReasonCode::PACKET_TOO_LARGE);
    assert_eq!(buf.len(), 5, "nothing consumed");
    assert!(buf.capacity() < 1024, "no room reserved for the body");

    // The limit counts the whole packet, fixed header included.
    let mut d = Decoder::with_version(V311).with_max_packet_size(2);
    assert_eq!(
        d.decode(&mut BytesMut::from(&[0xC0, 0x00][..])),
        Ok(Some(Packet::PingReq))
    );
    refused_by(
        d,
        &[0x40, 0x02],
        DecodeError::PacketTooLarge { len: 4, max: 2 },
        ReasonCode::PACKET_TOO_LARGE,
    );
}

// ---------------------------------------------------------------------------
// UTF-8 strings (section 1.5.4)
// ---------------------------------------------------------------------------

// [MQTT-1.5.4-1]: strings MUST be well-formed UTF-8.
#[test]
fn mqtt_1_5_4_1_invalid_utf8_is_malformed() {
    connect_refused(
        &connect_v311(0x02, &[0x00, 0x02, b'a', 0xFF]),
        DecodeError::InvalidString(StrError::InvalidUtf8),
        MALFORMED,
    );
    // A truncated two-byte sequence.
    connect_refused(
        &connect_v311(0x02, &[0x00, 0x01, 0xC3]),
        DecodeError::InvalidString(StrError::InvalidUtf8),
        MALFORMED,
    );
}

// [MQTT-1.5.4-1]: UTF-16 surrogates (U+D800..U+DFFF) MUST NOT be encoded.
#[test]
fn mqtt_1_5_4_1_encoded_surrogate_is_malformed() {
    // U+D800 written as ED A0 80.
    connect_refused(
        &connect_v311(0x02, &[0x00, 0x03, 0xED, 0xA0, 0x80]),
        DecodeError::InvalidString(StrError::InvalidUtf8),
        MALFORMED,
    );
    // The same in a topic name: still malformed, not "topic name invalid".
    refused(
        V311,
        &packet(0x30, &[0x00, 0x03, 0xED, 0xBF, 0xBF]),
        DecodeError::InvalidTopicName(TopicError::String(StrError::InvalidUtf8)),
        MALFORMED,
    );
}

// [MQTT-1.5.4-2]: strings MUST NOT contain U+0000.
#[test]
fn mqtt_1_5_4_2_null_character_is_malformed() {
    connect_refused(
        &connect_v311(0x02, &[0x00, 0x02, b'a', 0x00]),
        DecodeError::InvalidString(StrError::ContainsNull),
        MALFORMED,
    );
    // In a 5.0 user property value.
    refused(
        V5,
        &packet(
            0xE0,
            &[0x00, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, 0x00],
        ),
        DecodeError::InvalidString(StrError::ContainsNull),
        MALFORMED,
    );
    // In a topic filter.
    refused(
        V311,
        &packet(0x82, &[0x00, 0x01, 0x00, 0x02, b'a', 0x00, 0x00]),
        DecodeError::InvalidTopicFilter(TopicError::String(StrError::ContainsNull)),
        MALFORMED,
    );
}

// ---------------------------------------------------------------------------
// PUBLISH (section 3.3)
// ---------------------------------------------------------------------------

// [MQTT-3.3.1-4]: a PUBLISH MUST NOT have both QoS bits set.
#[test]
fn mqtt_3_3_1_4_qos_3_is_malformed() {
    for v in [V31, V311, V5] {
        refused(
            v,
            &packet(0x36, &[0x00, 0x01, b'a', 0x00, 0x01]),
            DecodeError::InvalidQoS,
            MALFORMED,
        );
    }
}

// [MQTT-3.3.1-2]: the DUP flag MUST be 0 for QoS 0.
#[test]
fn mqtt_3_3_1_2_dup_at_qos_0_is_malformed() {
    for v in [V311, V5] {
        refused(
            v,
            &packet(0x38, &[0x00, 0x01, b'a']),
            DecodeError::DupWithQoS0,
            MALFORMED,
        );
    }
}

// [MQTT-2.2.1-3] (3.1.1 [MQTT-2.3.1-1]): a PUBLISH at QoS > 0 needs a
// non-zero packet identifier.
#[test]
fn mqtt_2_2_1_3_publish_packet_id_0_is_malformed() {
    for v in [V31, V311] {
        for first in [0x32, 0x34] {
            refused(
                v,
                &packet(first, &[0x00, 0x01, b'a', 0x00, 0x00]),
                DecodeError::ZeroPacketId,
                MALFORMED,
            );
        }
    }
    refused(
        V5,
        &packet(0x32, &[0x00, 0x01, b'a', 0x00, 0x00, 0x00]),
        DecodeError::ZeroPacketId,
        MALFORMED,
    );
}

// [MQTT-2.2.1-3]: acknowledgements echo a non-zero packet identifier.
#[test]
fn mqtt_2_2_1_3_puback_packet_id_0_is_malformed() {
    for v in [V31, V311, V5] {
        refused(
            v,
            &[0x40, 0x02, 0x00, 0x00],
            DecodeError::ZeroPacketId,
            MALFORMED,
        );
    }
}

// [MQTT-2.2.1-3]: SUBSCRIBE needs a non-zero packet identifier.
#[test]
fn mqtt_2_2_1_3_subscribe_packet_id_0_is_malformed() {
    refused(
        V311,
        &packet(0x82, &[0x00, 0x00, 0x00, 0x01, b'a', 0x00]),
        DecodeError::ZeroPacketId,
        MALFORMED,
    );
    refused(
        V5,
        &packet(0xA2, &[0x00, 0x00, 0x00, 0x00, 0x01, b'a']),
        DecodeError::ZeroPacketId,
        MALFORMED,
    );
}

// [MQTT-3.3.2-2]: the topic name MUST NOT contain wildcard characters.
#[test]
fn mqtt_3_3_2_2_wildcard_in_publish_topic_is_refused() {
    for topic in [&b"a/+"[..], b"#", b"a/b#"] {
        let mut body = vec![0x00, topic.len() as u8];
        body.extend_from_slice(topic);
        refused(
            V311,
            &packet(0x30, &body),
            DecodeError::InvalidTopicName(TopicError::WildcardInName),
            ReasonCode::TOPIC_NAME_INVALID,
        );
    }
}

// [MQTT-4.7.3-1]: a topic name is at least one character long; before 5.0
// there is no topic alias to stand in for it.
#[test]
fn mqtt_4_7_3_1_empty_topic_in_v3_publish_is_refused() {
    for v in [V31, V311] {
        refused(
            v,
            &[0x30, 0x02, 0x00, 0x00],
            DecodeError::InvalidTopicName(TopicError::Empty),
            ReasonCode::TOPIC_NAME_INVALID,
        );
    }
}

// Section 3.3.2.3.4: "It is a Protocol Error if the Topic Name is zero length
// and there is no Topic Alias."
#[test]
fn spec_3_3_2_3_4_empty_topic_without_alias_is_a_protocol_error() {
    refused(
        V5,
        &[0x30, 0x03, 0x00, 0x00, 0x00],
        DecodeError::MissingTopic,
        PROTOCOL,
    );
    // Other properties do not help.
    refused(
        V5,
        &packet(0x30, &[0x00, 0x00, 0x02, 0x01, 0x00]),
        DecodeError::MissingTopic,
        PROTOCOL,
    );
}

// Section 3.3.2.3.2: with Payload Format Indicator 1 a payload that is not
// UTF-8 may be refused with 0x99 Payload format invalid.
#[test]
fn spec_3_3_2_3_2_payload_format_utf8_with_invalid_payload() {
    refused(
        V5,
        &packet(0x30, &[0x00, 0x01, b'a', 0x02, 0x01, 0x01, 0xFF]),
        DecodeError::PayloadFormatInvalid,
        ReasonCode::PAYLOAD_FORMAT_INVALID,
    );
    // Indicator 0 makes no claim.
    let mut d = Decoder::with_version(V5);
    let wire = packet(0x30, &[0x00, 0x01, b'a', 0x02, 0x01, 0x00, 0xFF]);
    assert!(d.decode_slice(&wire).unwrap().is_some());
}

// Section 3.1.3.2.3: the same rule for a will message.
#[test]
fn spec_3_1_3_2_3_will_payload_format_utf8_with_invalid_payload() {
    let mut rest = vec![0x00]; // CONNECT properties
    rest.extend_from_slice(&[0x00, 0x01, b'c']); // client id
    rest.extend_from_slice(&[0x02, 0x01, 0x01]); // will properties: PFI 1
    rest.extend_from_slice(&[0x00, 0x01, b't']); // will topic
    rest.extend_from_slice(&[0x00, 0x02, 0xC3, 0x28]); // will payload, invalid UTF-8
    connect_refused(
        &connect_bytes(b"MQTT", 5, 0x06, &rest),
        DecodeError::PayloadFormatInvalid,
        ReasonCode::PAYLOAD_FORMAT_INVALID,
    );
}

// ---------------------------------------------------------------------------
// Properties (section 2.2.2)
// ---------------------------------------------------------------------------

// Section 2.2.2.2: "A Control Packet which contains an Identifier which is not
// valid for its packet type ... is a Malformed Packet."
#[test]
fn spec_2_2_2_2_property_not_allowed_in_the_packet_is_malformed() {
    // Topic Alias in CONNECT.
    connect_refused(
        &connect_v5_props(&[0x23, 0x00, 0x01]),
        DecodeError::PropertyNotAllowed {
            property: 0x23,
            packet: PacketType::Connect,
        },
        MALFORMED,
    );
    // Subscription Identifier in each acknowledgement, reported against that packet.
    for (first, t) in [
        (0x40, PacketType::PubAck),
        (0x50, PacketType::PubRec),
        (0x62, PacketType::PubRel),
        (0x70, PacketType::PubComp),
    ] {
        refused(
            V5,
            &packet(first, &[0x00, 0x01, 0x00, 0x02, 0x0B, 0x01]),
            DecodeError::PropertyNotAllowed {
                property: 0x0B,
                packet: t,
            },
            MALFORMED,
        );
    }
    // Session Expiry Interval in UNSUBACK.
    refused(
        V5,
        &packet(
            0xB0,
            &[0x00, 0x01, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01, 0x00],
        ),
        DecodeError::PropertyNotAllowed {
            property: 0x11,
            packet: PacketType::UnsubAck,
        },
        MALFORMED,
    );
    // Server Keep Alive in DISCONNECT.
    refused(
        V5,
        &packet(0xE0, &[0x00, 0x03, 0x13, 0x00, 0x01]),
        DecodeError::PropertyNotAllowed {
            property: 0x13,
            packet: PacketType::Disconnect,
        },
        MALFORMED,
    );
}

// Section 3.1.3.2: will properties are their own set (Session Expiry
// Interval belongs to CONNECT, not to the will).
#[test]
fn spec_3_1_3_2_connect_property_in_will_properties_is_malformed() {
    let mut rest = vec![0x00, 0x00, 0x00]; // no properties, empty client id
    rest.extend_from_slice(&[0x05, 0x11, 0x00, 0x00, 0x00, 0x01]);
    rest.extend_from_slice(&[0x00, 0x01, b't', 0x00, 0x00]);
    connect_refused(
        &connect_bytes(b"MQTT", 5, 0x06, &rest),
        DecodeError::PropertyNotAllowed {
            property: 0x11,
            packet: PacketType::Connect,
        },
        MALFORMED,
    );
}

// Section 3.1.2.11.2 "It is a Protocol Error to include the Session Expiry
// Interval more than once", and likewise for every property but User Property
// (and Subscription Identifier in PUBLISH).
#[test]
fn spec_2_2_2_2_repeated_property_is_a_protocol_error() {
    connect_refused(
        &connect_v5_props(&[0x11, 0x00, 0x00, 0x00, 0x01, 0x11, 0x00, 0x00, 0x00, 0x02]),
        DecodeError::DuplicateProperty(0x11),
        PROTOCOL,
    );
    // Topic Alias twice in PUBLISH.
    refused(
        V5,
        &packet(
            0x30,
            &[0x00, 0x01, b'a', 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x01],
        ),
        DecodeError::DuplicateProperty(0x23),
        PROTOCOL,
    );
    // Section 3.8.2.1.2: SUBSCRIBE carries at most one Subscription Identifier.
    refused(
        V5,
        &packet(
            0x82,
            &[
                0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b'a', 0x00,
            ],
        ),
        DecodeError::DuplicateProperty(0x0B),
        PROTOCOL,
    );
    // Reason String twice in an acknowledgement.
    refused(
        V5,
        &packet(
            0x40,
            &[
                0x00, 0x01, 0x80, 0x08, 0x1F, 0x00, 0x01, b'a', 0x1F, 0x00, 0x01, b'b',
            ],
        ),
        DecodeError::DuplicateProperty(0x1F),
        PROTOCOL,
    );
}

// Section 2.2.2.2: identifiers the specification does not define.
#[test]
fn spec_2_2_2_2_unknown_property_is_malformed() {
    for id in [0x00, 0x04, 0x05, 0x14, 0x1B, 0x20, 0x2B, 0x7F] {
        refused(
            V5,
            &packet(0x30, &[0x00, 0x01, b'a', 0x02, id, 0x00]),
            DecodeError::UnknownProperty(id),
            MALFORMED,
        );
    }
}

// Section 3.1.2.11.3: "It is a Protocol Error to include the Receive Maximum
// value more than once or for it to have the value 0."
#[test]
fn spec_3_1_2_11_3_receive_maximum_0_is_a_protocol_error() {
    connect_refused(
        &connect_v5_props(&[0x21, 0x00, 0x00]),
        DecodeError::InvalidPropertyValue(0x21),
        PROTOCOL,
    );
    refused(
        V5,
        &packet(0x20, &[0x00, 0x00, 0x03, 0x21, 0x00, 0x00]),
        DecodeError::InvalidPropertyValue(0x21),
        PROTOCOL,
    );
}

// Section 3.1.2.11.4: "It is a Protocol Error to include the Maximum Packet
// Size more than once, or for the value to be set to zero."
#[test]
fn spec_3_1_2_11_4_maximum_packet_size_0_is_a_protocol_error() {
    connect_refused(
        &connect_v5_props(&[0x27, 0x00, 0x00, 0x00, 0x00]),
        DecodeError::InvalidPropertyValue(0x27),
        PROTOCOL,
    );
}

// [MQTT-3.3.2-8]: "A sender MUST NOT send a PUBLISH packet containing a Topic
// Alias which has the value 0."
#[test]
fn mqtt_3_3_2_8_topic_alias_0_is_a_protocol_error() {
    refused(
        V5,
        &packet(0x30, &[0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x00]),
        DecodeError::InvalidPropertyValue(0x23),
        PROTOCOL,
    );
}

// Section 3.8.2.1.2: "It is a Protocol Error if the Subscription Identifier
// has a value of 0."
#[test]
fn spec_3_8_2_1_2_subscription_identifier_0_is_a_protocol_error() {
    refused(
        V5,
        &packet(
            0x82,
            &[0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, b'a', 0x00],
        ),
        DecodeError::InvalidPropertyValue(0x0B),
        PROTOCOL,
    );
    // And in PUBLISH (section 3.3.2.3.8).
    refused(
        V5,
        &packet(0x30, &[0x00, 0x01, b'a', 0x02, 0x0B, 0x00]),
        DecodeError::InvalidPropertyValue(0x0B),
        PROTOCOL,
    );
}

// Byte properties that are 0 or 1 (sections 3.1.2.11.6, 3.1.2.11.7,
// 3.2.2.3.5, 3.2.2.3.11 to 3.2.2.3.13, 3.3.2.3.2): other values are refused.
#[test]
fn spec_3_1_2_11_7_byte_property_with_value_2_is_a_protocol_error() {
    // Request Problem Information 2.
    connect_refused(
        &connect_v5_props(&[0x17, 0x02]),
        DecodeError::InvalidPropertyValue(0x17),
        PROTOCOL,
    );
    // Request Response Information 2.
    connect_refused(
        &connect_v5_props(&[0x19, 0x02]),
        DecodeError::InvalidPropertyValue(0x19),
        PROTOCOL,
    );
    // Retain Available, Wildcard / Subscription Identifier / Shared
    // Subscription Available: 2 in CONNACK.
    for id in [0x25, 0x28, 0x29, 0x2A] {
        refused(
            V5,
            &packet(0x20, &[0x00, 0x00, 0x02, id, 0x02]),
            DecodeError::InvalidPropertyValue(id),
            PROTOCOL,
        );
    }
    // Payload Format Indicator 2 in PUBLISH.
    refused(
        V5,
        &packet(0x30, &[0x00, 0x01, b'a', 0x02, 0x01, 0x02]),
        DecodeError::InvalidPropertyValue(0x01),
        PROTOCOL,
    );
}

// Section 3.2.2.3.4: "It is a Protocol Error to include Maximum QoS more than
// once, or to have a value other than 0 or 1."
#[test]
fn spec_3_2_2_3_4_maximum_qos_2_is_a_protocol_error() {
    refused(
        V5,
        &packet(0x20, &[0x00, 0x00, 0x02, 0x24, 0x02]),
        DecodeError::InvalidPropertyValue(0x24),
        PROTOCOL,
    );
}

// Section 3.3.2.3.5: the Response Topic is a topic name, so no wildcards.
#[test]
fn mqtt_3_3_2_14_response_topic_with_wildcard_is_refused() {
    refused(
        V5,
        &packet(0x30, &[0x00, 0x01, b'a', 0x04, 0x08, 0x00, 0x01, b'#']),
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
        ReasonCode::TOPIC_NAME_INVALID,
    );
}

// ---------------------------------------------------------------------------
// Packet bodies: leftovers and truncation
// ---------------------------------------------------------------------------

// Section 3.12 / 3.13: PINGREQ and PINGRESP have no variable header or payload.
#[test]
fn pingreq_with_remaining_length_1_is_malformed() {
    for v in [V31, V311, V5] {
        refused(
            v,
            &[0xC0, 0x01, 0x00],
            DecodeError::TrailingBytes,
            MALFORMED,
        );
        refused(
            v,
            &[0xD0, 0x01, 0x00],
            DecodeError::TrailingBytes,
            MALFORMED,
        );
    }
}

// 3.1.1 section 3.4: a PUBACK is exactly the packet identifier; a third byte
// (a 5.0 reason code) is not part of a 3.1.1 PUBACK.
#[test]
fn v3_puback_with_three_bytes_is_malformed() {
    for v in [V31, V311] {
        refused(
            v,
            &[0x40, 0x03, 0x00, 0x01, 0x00],
            DecodeError::TrailingBytes,
            MALFORMED,
        );
        refused(
            v,
            &[0xB0, 0x03, 0x00, 0x01, 0x00],
            DecodeError::TrailingBytes,
            MALFORMED,
        );
    }
}

// 3.1.1 section 3.14: DISCONNECT has no variable header; 5.0 section 3.14:
// nothing may follow the property block.
#[test]
fn disconnect_with_trailing_bytes_is_malformed() {
    refused(
        V311,
        &[0xE0, 0x01, 0x00],
        DecodeError::TrailingBytes,
        MALFORMED,
    );
    refused(
        V5,
        &[0xE0, 0x03, 0x00, 0x00, 0x00],
        DecodeError::TrailingBytes,
        MALFORMED,
    );
    // CONNACK and CONNECT too.
    refused(
        V311,
        &[0x20, 0x03, 0x00, 0x00, 0x00],
        DecodeError::TrailingBytes,
        MALFORMED,
    );
    connect_refused(
        &connect_v311(0x02, &[0x00, 0x01, b'c', 0x00]),
        DecodeError::TrailingBytes,
        MALFORMED,
    );
}

// A field that runs past the remaining length is malformed.
#[test]
fn truncated_fields_are_malformed() {
    // Client identifier says 5 bytes; the packet ends first.
    connect_refused(
        &connect_v311(0x02, &[0x00, 0x05, b'a']),
        DecodeError::Truncated,
        MALFORMED,
    );
    // CONNECT without its keep alive.
    connect_refused(
        &[0x10, 0x08, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02],
        DecodeError::Truncated,
        MALFORMED,
    );
    // A PUBACK of one byte.
    refused(V311, &[0x40, 0x01, 0x00], DecodeError::Truncated, MALFORMED);
    // A QoS 1 PUBLISH without its packet identifier.
    refused(
        V311,
        &[0x32, 0x03, 0x00, 0x01, b'a'],
        DecodeError::Truncated,
        MALFORMED,
    );
    // A property block longer than the packet.
    refused(
        V5,
        &[0x40, 0x04, 0x00, 0x01, 0x80, 0x05],
        DecodeError::Truncated,
        MALFORMED,
    );
    // A property value cut off inside the block.
    refused(
        V5,
        &[0x40, 0x06, 0x00, 0x01, 0x80, 0x02, 0x1F, 0x00],
        DecodeError::Truncated,
        MALFORMED,
    );
    // A SUBSCRIBE filter without its options byte.
    refused(
        V311,
        &packet(0x82, &[0x00, 0x01, 0x00, 0x01, b'a']),
        DecodeError::Truncated,
        MALFORMED,
    );
    // A CONNACK of one byte.
    refused(V311, &[0x20, 0x01, 0x00], DecodeError::Truncated, MALFORMED);
}

// An incomplete packet is not an error: the decoder waits and consumes nothing.
#[test]
fn an_incomplete_packet_is_not_refused() {
    let wire = [0x32, 0x05, 0x00, 0x01, b'a', 0x00, 0x07];
    for cut in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..cut]);
        assert_eq!(Decoder::with_version(V311).decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), cut);
        assert_eq!(
            Decoder::with_version(V311).decode_slice(&wire[..cut]),
            Ok(None)
        );
    }
}

// ---------------------------------------------------------------------------
// Packet types and the connection's first packet
// ---------------------------------------------------------------------------

// AUTH (type 15) exists only in 5.0; in 3.1.1 type 15 is reserved.
#[test]
fn auth_in_v311_is_refused() {
    for v in [V31, V311] {
        refused(
            v,
            &[0xF0, 0x00],
            DecodeError::PacketNotInVersion {
                packet: PacketType::Auth,
                version: v,
            },
            PROTOCOL,
        );
    }
}

// [MQTT-3.1.0-1]: the first packet from the client MUST be CONNECT.
#[test]
fn mqtt_3_1_0_1_first_packet_must_be_connect() {
    for (wire, t) in [
        (&[0xC0, 0x00][..], PacketType::PingReq),
        (&[0x30, 0x03, 0x00, 0x01, b'a'], PacketType::Publish),
        (&[0xE0, 0x00], PacketType::Disconnect),
        (&[0xF0, 0x00], PacketType::Auth),
    ] {
        connect_refused(wire, DecodeError::ExpectedConnect(t), PROTOCOL);
    }
    // Judged from the first byte alone.
    assert_eq!(
        Decoder::new().decode(&mut BytesMut::from(&[0x82][..])),
        Err(DecodeError::ExpectedConnect(PacketType::Subscribe))
    );
}

// ---------------------------------------------------------------------------
// CONNECT (section 3.1)
// ---------------------------------------------------------------------------

// [MQTT-3.1.2-3]: the reserved connect flag (bit 0) MUST be 0.
#[test]
fn mqtt_3_1_2_3_reserved_connect_flag_is_malformed() {
    connect_refused(
        &connect_v311(0x03, &[0x00, 0x01, b'c']),
        DecodeError::ReservedConnectFlag,
        MALFORMED,
    );
    connect_refused(
        &connect_bytes(b"MQTT", 5, 0x03, &[0x00, 0x00, 0x01, b'c']),
        DecodeError::ReservedConnectFlag,
        MALFORMED,
    );
}

// [MQTT-3.1.2-11] (3.1.1 [MQTT-3.1.2-13]): without the will flag, will QoS MUST be 0.
#[test]
fn mqtt_3_1_2_11_will_qos_without_will_flag_is_malformed() {
    for flags in [0x0A, 0x12] {
        connect_refused(
            &connect_v311(flags, &[0x00, 0x01, b'c']),
            DecodeError::InvalidWillFlags,
            MALFORMED,
        );
    }
}

// [MQTT-3.1.2-12] (3.1.1 [MQTT-3.1.2-14]): will QoS MUST NOT be 3.
#[test]
fn mqtt_3_1_2_12_will_qos_3_is_malformed() {
    connect_refused(
        &connect_v311(0x1E, &[0x00, 0x01, b'c', 0x00, 0x01, b't', 0x00, 0x00]),
        DecodeError::InvalidWillFlags,
        MALFORMED,
    );
}

// [MQTT-3.1.2-13] (3.1.1 [MQTT-3.1.2-15]): without the will flag, will retain MUST be 0.
#[test]
fn mqtt_3_1_2_13_will_retain_without_will_flag_is_malformed() {
    connect_refused(
        &connect_v311(0x22, &[0x00, 0x01, b'c']),
        DecodeError::InvalidWillFlags,
        MALFORMED,
    );
}

// 3.1.1 [MQTT-3.1.2-22]: "If the User Name Flag is set to 0, the Password
// Flag MUST be set to 0." 5.0 drops this rule (section 3.1.2.9).
#[test]
fn mqtt_3_1_2_22_v311_password_without_user_name_is_malformed() {
    let payload = [0x00, 0x01, b'c', 0x00, 0x02, b'p', b'w'];
    connect_refused(
        &connect_v311(0x42, &payload),
        DecodeError::PasswordWithoutUserName,
        MALFORMED,
    );
    connect_refused(
        &connect_bytes(b"MQIsdp", 3, 0x42, &payload),
        DecodeError::PasswordWithoutUserName,
        MALFORMED,
    );
    // Accepted in 5.0.
    let mut v5 = vec![0x00];
    v5.extend_from_slice(&payload);
    let wire = connect_bytes(b"MQTT", 5, 0x42, &v5);
    let Ok(Some((Packet::Connect(c), _))) = Decoder::new().decode_slice(&wire) else {
        panic!("5.0 allows a password without a user name");
    };
    assert_eq!(c.username, None);
    assert_eq!(c.password, Some(&b"pw"[..]));
}

// [MQTT-3.1.2-2]: an unsupported protocol level is answered with 0x84
// (3.1.1: return code 0x01).
#[test]
fn mqtt_3_1_2_2_unsupported_protocol_level() {
    // The bridge bit is only for 3.1 and 3.1.1 (0x83, 0x84): 0x85 is refused.
    for level in [0, 1, 2, 6, 0x85, 0x86, 0xFF] {
        connect_refused(
            &connect_bytes(b"MQTT", level, 0x02, &[0x00, 0x01, b'c']),
            DecodeError::UnsupportedProtocolVersion(level),
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        );
    }
}

// [MQTT-3.1.2-1]: the protocol name is "MQTT" (and "MQIsdp" for 3.1);
// the server MUST NOT go on as if it were this protocol.
#[test]
fn mqtt_3_1_2_1_wrong_protocol_name_is_refused() {
    for (name, level) in [
        (&b"MQTX"[..], 4),
        (b"mqtt", 4),
        (b"MQTT", 3),
        (b"MQIsdp", 4),
        (b"MQIsdp", 5),
        (b"", 4),
    ] {
        connect_refused(
            &connect_bytes(name, level, 0x02, &[0x00, 0x01, b'c']),
            DecodeError::InvalidProtocolName,
            PROTOCOL,
        );
    }
}

// MQTT 3.1 section 3.1 (Client Identifier): "between 1 and 23 characters
// long". The codec lets an empty one and a longer one through: the server
// treats an empty 3.1 identifier as 3.1.1 does [MQTT-3.1.3-6], and 3.1
// clients send longer ones.
#[test]
fn v31_client_ids_of_any_length_decode_for_the_server_to_judge() {
    for len in [0u8, 1, 23, 24, 100] {
        let mut payload = vec![0x00, len];
        payload.extend(std::iter::repeat_n(b'x', usize::from(len)));
        let wire = connect_bytes(b"MQIsdp", 3, 0x02, &payload);
        let Some((Packet::Connect(c), _)) = Decoder::new().decode_slice(&wire).unwrap() else {
            panic!("a CONNECT");
        };
        assert_eq!(c.client_id.len(), usize::from(len));
    }
}

// Section 3.1.3.3: the will topic is a topic name.
#[test]
fn will_topic_with_wildcard_is_refused() {
    connect_refused(
        &connect_v311(
            0x06,
            &[0x00, 0x01, b'c', 0x00, 0x02, b'a', b'+', 0x00, 0x00],
        ),
        DecodeError::InvalidTopicName(TopicError::WildcardInName),
        ReasonCode::TOPIC_NAME_INVALID,
    );
}

// ---------------------------------------------------------------------------
// CONNACK (section 3.2)
// ---------------------------------------------------------------------------

// [MQTT-3.2.2-1]: bits 7-1 of the acknowledge flags are reserved and 0.
#[test]
fn mqtt_3_2_2_1_connack_reserved_flags_are_malformed() {
    refused(
        V311,
        &[0x20, 0x02, 0x02, 0x00],
        DecodeError::InvalidConnAckFlags,
        MALFORMED,
    );
    refused(
        V5,
        &[0x20, 0x03, 0x80, 0x00, 0x00],
        DecodeError::InvalidConnAckFlags,
        MALFORMED,
    );
}

// [MQTT-3.2.2-6] (3.1.1 [MQTT-3.2.2-4]): a refusing CONNACK has Session Present 0.
#[test]
fn mqtt_3_2_2_6_session_present_with_a_refusal_is_a_protocol_error() {
    refused(
        V311,
        &[0x20, 0x02, 0x01, 0x05],
        DecodeError::SessionPresentOnRefusal,
        PROTOCOL,
    );
    refused(
        V5,
        &[0x20, 0x03, 0x01, 0x87, 0x00],
        DecodeError::SessionPresentOnRefusal,
        PROTOCOL,
    );
}

// 3.1.1 section 3.2.2.3: return codes 6-255 are reserved.
#[test]
fn v311_connack_reserved_return_code_is_refused() {
    for code in [0x06, 0x80, 0xFF] {
        refused(
            V311,
            &[0x20, 0x02, 0x00, code],
            DecodeError::InvalidReasonCode {
                packet: PacketType::ConnAck,
                code,
            },
            MALFORMED,
        );
    }
}

// ---------------------------------------------------------------------------
// Reason codes (section 2.4)
// ---------------------------------------------------------------------------

// [MQTT-3.6.2-1]: PUBREL uses one of the PUBREL reason codes (0x00, 0x92).
#[test]
fn mqtt_3_6_2_1_invalid_pubrel_reason_code_is_malformed() {
    refused(
        V5,
        &[0x62, 0x03, 0x00, 0x01, 0x10],
        DecodeError::InvalidReasonCode {
            packet: PacketType::PubRel,
            code: 0x10,
        },
        MALFORMED,
    );
}

// [MQTT-3.4.2-1], [MQTT-3.2.2-8], [MQTT-3.9.3-2], [MQTT-3.11.3-2],
// [MQTT-3.14.2-1], [MQTT-3.15.2-1]: every reason code belongs to its packets.
#[test]
fn reason_code_not_defined_for_the_packet_is_malformed() {
    let cases: [(&[u8], PacketType, u8); 7] = [
        (&[0x40, 0x03, 0x00, 0x01, 0x92], PacketType::PubAck, 0x92),
        (&[0x70, 0x03, 0x00, 0x01, 0x80], PacketType::PubComp, 0x80),
        (&[0x20, 0x03, 0x00, 0x8E, 0x00], PacketType::ConnAck, 0x8E),
        (
            &[0x90, 0x04, 0x00, 0x01, 0x00, 0x03],
            PacketType::SubAck,
            0x03,
        ),
        (
            &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x01],
            PacketType::UnsubAck,
            0x01,
        ),
        (&[0xE0, 0x01, 0x84], PacketType::Disconnect, 0x84),
        (&[0xF0, 0x01, 0x80], PacketType::Auth, 0x80),
    ];
    for (wire, t, code) in cases {
        refused(
            V5,
            wire,
            DecodeError::InvalidReasonCode { packet: t, code },
            MALFORMED,
        );
    }
}

// 3.1.1 section 3.9.3: SUBACK return codes are 0x00-0x02 and 0x80; 3.1 has
// no failure code.
#[test]
fn v3_suback_invalid_return_code_is_refused() {
    refused(
        V311,
        &[0x90, 0x03, 0x00, 0x01, 0x03],
        DecodeError::InvalidReasonCode {
            packet: PacketType::SubAck,
            code: 0x03,
        },
        MALFORMED,
    );
    refused(
        V311,
        &[0x90, 0x03, 0x00, 0x01, 0x87],
        DecodeError::InvalidReasonCode {
            packet: PacketType::SubAck,
            code: 0x87,
        },
        MALFORMED,
    );
    refused(
        V31,
        &[0x90, 0x03, 0x00, 0x01, 0x80],
        DecodeError::InvalidReasonCode {
            packet: PacketType::SubAck,
            code: 0x80,
        },
        MALFORMED,
    );
}

// ---------------------------------------------------------------------------
// SUBSCRIBE and UNSUBSCRIBE (sections 3.8, 3.10)
// ---------------------------------------------------------------------------

// [MQTT-3.8.3-2] (3.1.1 [MQTT-3.8.3-3]): at least one topic filter.
#[test]
fn mqtt_3_8_3_2_subscribe_without_filters_is_a_protocol_error() {
    refused(
        V311,
        &[0x82, 0x02, 0x00, 0x01],
        DecodeError::NoTopicFilters(PacketType::Subscribe),
        PROTOCOL,
    );
    refused(
        V5,
        &[0x82, 0x03, 0x00, 0x01, 0x00],
        DecodeError::NoTopicFilters(PacketType::Subscribe),
        PROTOCOL,
    );
}

// [MQTT-3.10.3-2]: at least one topic filter.
#[test]
fn mqtt_3_10_3_2_unsubscribe_without_filters_is_a_protocol_error() {
    refused(
        V311,
        &[0xA2, 0x02, 0x00, 0x01],
        DecodeError::NoTopicFilters(PacketType::Unsubscribe),
        PROTOCOL,
    );
    refused(
        V5,
        &[0xA2, 0x03, 0x00, 0x01, 0x00],
        DecodeError::NoTopicFilters(PacketType::Unsubscribe),
        PROTOCOL,
    );
}

// [MQTT-3.8.3-5]: bits 6 and 7 of the subscription options are reserved.
#[test]
fn mqtt_3_8_3_5_reserved_subscription_option_bits_are_malformed() {
    for opts in [0x40, 0x80, 0xC1] {
        refused(
            V5,
            &packet(0x82, &[0x00, 0x01, 0x00, 0x00, 0x01, b'a', opts]),
            DecodeError::InvalidSubscriptionOptions(opts),
            MALFORMED,
        );
    }
}

// 3.1.1 [MQTT-3-8.3-4]: bits 2-7 of the requested QoS byte are reserved.
#[test]
fn mqtt_3_8_3_4_v311_reserved_requested_qos_bits_are_malformed() {
    for opts in [0x04, 0x08, 0x10, 0x80] {
        refused(
            V311,
            &packet(0x82, &[0x00, 0x01, 0x00, 0x01, b'a', opts]),
            DecodeError::InvalidSubscriptionOptions(opts),
            MALFORMED,
        );
    }
    // And QoS 3.
    refused(
        V311,
        &packet(0x82, &[0x00, 0x01, 0x00, 0x01, b'a', 0x03]),
        DecodeError::InvalidSubscriptionQoS(V311),
        MALFORMED,
    );
}

// Section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
#[test]
fn spec_3_8_3_1_v5_subscription_qos_3_is_a_protocol_error() {
    refused(
        V5,
        &packet(0x82, &[0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x03]),
        DecodeError::InvalidSubscriptionQoS(V5),
        PROTOCOL,
    );
}

// Section 3.15.2.1: a reason code in AUTH is always followed by a property block.
#[test]
fn spec_3_15_2_1_auth_has_no_reason_only_form() {
    refused(
        V5,
        &packet(0xF0, &[0x18]),
        DecodeError::Truncated,
        MALFORMED,
    );
}

// Section 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
#[test]
fn spec_3_8_3_1_retain_handling_3_is_a_protocol_error() {
    refused(
        V5,
        &packet(0x82, &[0x00, 0x01, 0x00, 0x00, 0x01, b'a', 0x30]),
        DecodeError::InvalidRetainHandling,
        PROTOCOL,
    );
}

// [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error.
#[test]
fn mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error() {
    let mut body = vec![0x00, 0x01, 0x00, 0x00, 0x0A];
    body.extend_from_slice(b"$share/g/a");
    body.push(0x04);
    refused(
        V5,
        &packet(0x82, &body),
        DecodeError::NoLocalOnSharedSubscription,
        PROTOCOL,
    );
}

fn subscribe_to(v: ProtocolVersion, f: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    if v.is_v5() {
        body.push(0x00);
    }
    body.extend_from_slice(&[0x00, f.len() as u8]);
    body.extend_from_slice(f);
    body.push(0x00);
    packet(0x82, &body)
}

fn unsubscribe_from(f: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, 0x00, f.len() as u8];
    body.extend_from_slice(f);
    packet(0xA2, &body)
}

// [MQTT-4.7.1-1]: '#' stands alone as the last level.
#[test]
fn mqtt_4_7_1_1_misplaced_multi_level_wildcard_is_refused() {
    for f in [&b"a/#/b"[..], b"a#", b"#/"] {
        let err = DecodeError::InvalidTopicFilter(TopicError::MisplacedMultiLevelWildcard);
        refused(
            V311,
            &subscribe_to(V311, f),
            err,
            ReasonCode::TOPIC_FILTER_INVALID,
        );
        refused(
            V5,
            &subscribe_to(V5, f),
            err,
            ReasonCode::TOPIC_FILTER_INVALID,
        );
        refused(
            V311,
            &unsubscribe_from(f),
            err,
            ReasonCode::TOPIC_FILTER_INVALID,
        );
    }
}

// [MQTT-4.7.1-2]: '+' fills a whole level.
#[test]
fn mqtt_4_7_1_2_misplaced_single_level_wildcard_is_refused() {
    for f in [&b"a+"[..], b"+a/b", b"a/b+/c"] {
        let err = DecodeError::InvalidTopicFilter(TopicError::MisplacedSingleLevelWildcard);
        refused(
            V311,
            &subscribe_to(V311, f),
            err,
            ReasonCode::TOPIC_FILTER_INVALID,
        );
        refused(
            V5,
            &subscribe_to(V5, f),
            err,
            ReasonCode::TOPIC_FILTER_INVALID,
        );
        refused(
            V311,
            &unsubscribe_from(f),
            err,
            ReasonCode::TOPIC_FILTER_INVALID,
        );
    }
}

// [MQTT-4.7.3-1]: a topic filter is at least one character long.
#[test]
fn mqtt_4_7_3_1_empty_topic_filter_is_refused() {
    refused(
        V311,
        &subscribe_to(V311, b""),
        DecodeError::InvalidTopicFilter(TopicError::Empty),
        ReasonCode::TOPIC_FILTER_INVALID,
    );
}

// [MQTT-4.8.2-1]: a ShareName is at least one character, without '/', '+', '#'.
#[test]
fn mqtt_4_8_2_1_invalid_share_name_is_refused() {
    for f in [&b"$share//x"[..], b"$share/a+/x", b"$share/#/x"] {
        refused(
            V5,
            &subscribe_to(V5, f),
            DecodeError::InvalidTopicFilter(TopicError::InvalidShareName),
            ReasonCode::TOPIC_FILTER_INVALID,
        );
    }
}

// [MQTT-4.8.2-2]: the ShareName is followed by '/' and a topic filter.
#[test]
fn mqtt_4_8_2_2_shared_subscription_without_a_filter_is_refused() {
    for f in [&b"$share/g"[..], b"$share/g/"] {
        refused(
            V5,
            &subscribe_to(V5, f),
            DecodeError::InvalidTopicFilter(TopicError::MissingSharedFilter),
            ReasonCode::TOPIC_FILTER_INVALID,
        );
    }
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

// Section 1.5.6: binary data has a two-byte length, so 65,535 bytes at most.
#[test]
fn binary_over_65535_bytes_is_not_encoded() {
    let mut c = Connect::new(V311, Str::from_static("c"));
    c.username = Some(Str::from_static("u"));
    c.password = Some(Bytes::from(vec![0u8; 65_536]));
    let p = Packet::Connect(Box::new(c));
    let mut out = Vec::new();
    assert_eq!(
        p.encode(V311, &mut out),
        Err(EncodeError::BinaryTooLong { len: 65_536 })
    );
    assert!(out.is_empty(), "nothing written");

    // The will payload too; 65,535 bytes is fine.
    let mut c = Connect::new(V5, Str::from_static("c"));
    c.will = Some(Will {
        topic: TopicName::from_static("t"),
        payload: Bytes::from(vec![0u8; 65_535]),
        qos: QoS::AtMostOnce,
        retain: false,
        props: WillProps::default(),
    });
    assert!(Packet::Connect(Box::new(c.clone()))
        .encode(V5, &mut out)
        .is_ok());
    out.clear();
    c.will.as_mut().unwrap().payload = Bytes::from(vec![0u8; 65_536]);
    assert_eq!(
        Packet::Connect(Box::new(c)).encode(V5, &mut out),
        Err(EncodeError::BinaryTooLong { len: 65_536 })
    );
    assert!(out.is_empty());

    // AUTH data.
    let mut props = AuthProps::default();
    props.authentication_method = Some(Str::from_static("m"));
    props.authentication_data = Some(Bytes::from(vec![0u8; 70_000]));
    let a = Packet::Auth(Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        props,
    });
    assert_eq!(
        a.encode(V5, &mut out),
        Err(EncodeError::BinaryTooLong { len: 70_000 })
    );
    assert!(out.is_empty());
}

// Section 1.5.4: a string over 65,535 bytes cannot even be built.
#[test]
fn string_over_65535_bytes_cannot_be_built() {
    let long = vec![b'a'; 65_536];
    assert_eq!(
        Str::new(Bytes::from(long.clone())),
        Err(StrError::TooLong { len: 65_536 })
    );
    assert_eq!(
        TopicName::new(Bytes::from(long)),
        Err(TopicError::String(StrError::TooLong { len: 65_536 }))
    );
    assert!(Str::new(Bytes::from(vec![b'a'; 65_535])).is_ok());
}

// Section 3.1.2.11.4: a sender MUST NOT send a packet over the receiver's
// Maximum Packet Size [MQTT-3.1.2-24], [MQTT-3.2.2-15].
#[test]
fn packet_over_the_peer_maximum_is_not_encoded() {
    let p = Packet::Publish(Publish::new(
        TopicName::from_static("t"),
        Bytes::from(vec![0u8; 100]),
    ));
    // 1 + 1 + (2 + 1) + 1 + 100 = 106 bytes under 5.0.
    let mut out = Vec::new();
    assert_eq!(
        p.encode_limited(V5, 105, &mut out),
        Err(EncodeError::PacketTooLarge { len: 106, max: 105 })
    );
    assert!(out.is_empty(), "nothing written");
    assert_eq!(p.encode_limited(V5, 106, &mut out), Ok(106));

    // encode_head checks the whole packet, payload included.
    let Packet::Publish(publish) = &p else {
        unreachable!()
    };
    let mut head = Vec::new();
    assert_eq!(
        publish.encode_head(V5, 105, &mut head),
        Err(EncodeError::PacketTooLarge { len: 106, max: 105 })
    );
    assert!(head.is_empty());
}

// 3.1.1 section 3.4: PUBACK has no reason code, so a failure cannot be said.
#[test]
fn failure_reason_in_v311_puback_is_not_in_version() {
    let a: Packet = Packet::PubAck(Ack::with_reason(pid(1), ReasonCode::NOT_AUTHORIZED));
    for v in [V31, V311] {
        let mut out = Vec::new();
        assert!(matches!(
            a.encode(v, &mut out),
            Err(EncodeError::NotInVersion { version, .. }) if version == v
        ));
        assert!(out.is_empty(), "nothing written");
    }
    // A non-success code that is not a failure cannot be said either.
    let a: Packet = Packet::PubRec(Ack::with_reason(
        pid(1),
        ReasonCode::NO_MATCHING_SUBSCRIBERS,
    ));
    let mut out = Vec::new();
    assert!(matches!(
        a.encode(V311, &mut out),
        Err(EncodeError::NotInVersion { version: V311, .. })
    ));
    assert!(out.is_empty());
}

// Section 3.15: AUTH is a 5.0 packet.
#[test]
fn auth_under_v311_is_not_in_version() {
    let a: Packet = Packet::Auth(Auth {
        reason: ReasonCode::SUCCESS,
        props: AuthProps::default(),
    });
    for v in [V31, V311] {
        let mut out = Vec::new();
        assert_eq!(
            a.encode(v, &mut out),
            Err(EncodeError::NotInVersion {
                what: "AUTH",
                version: v
            })
        );
        assert!(out.is_empty(), "nothing written");
        assert!(a.encoded_len(v).is_err());
    }
}

// 3.1.1 section 3.2.2.3 has no return code for most 5.0 CONNACK reasons, and
// 3.1.1 DISCONNECT carries no reason code at all.
#[test]
fn v5_only_connack_and_disconnect_reasons_are_not_in_version() {
    let c: Packet = Packet::ConnAck(Box::new(ConnAck::new(false, ReasonCode::BANNED)));
    let mut out = Vec::new();
    assert!(matches!(
        c.encode(V311, &mut out),
        Err(EncodeError::NotInVersion { version: V311, .. })
    ));
    let d: Packet = Packet::Disconnect(mqtt_codec::Disconnect::new(ReasonCode::SESSION_TAKEN_OVER));
    assert!(matches!(
        d.encode(V311, &mut out),
        Err(EncodeError::NotInVersion { version: V311, .. })
    ));
    assert!(out.is_empty());
}

// Section 2.4: a reason code the packet type does not define is not encoded.
#[test]
fn reason_code_invalid_for_the_packet_is_not_encoded() {
    let a: Packet = Packet::PubRel(Ack::with_reason(
        pid(1),
        ReasonCode::NO_MATCHING_SUBSCRIBERS,
    ));
    let mut out = Vec::new();
    assert_eq!(
        a.encode(V5, &mut out),
        Err(EncodeError::InvalidReasonCode {
            packet: PacketType::PubRel,
            code: 0x10
        })
    );
    let s: Packet = Packet::SubAck(SubAck {
        id: pid(1),
        props: SubAckProps::default(),
        reasons: vec![ReasonCode::NO_SUBSCRIPTION_EXISTED],
    });
    assert_eq!(
        s.encode(V5, &mut out),
        Err(EncodeError::InvalidReasonCode {
            packet: PacketType::SubAck,
            code: 0x11
        })
    );
    // 3.1 SUBACK has no failure code.
    let s: Packet = Packet::SubAck(SubAck {
        id: pid(1),
        props: SubAckProps::default(),
        reasons: vec![ReasonCode::UNSPECIFIED_ERROR],
    });
    assert!(matches!(
        s.encode(V31, &mut out),
        Err(EncodeError::NotInVersion { version: V31, .. })
    ));
    assert!(out.is_empty());
}

// Sections 3.3.2.1 and 3.3.2.3.4: a PUBLISH needs a topic, or under 5.0 a
// topic alias; sections 3.8.3 and 3.10.3: at least one filter.
#[test]
fn missing_topic_and_missing_filters_are_not_encoded() {
    let p: Packet = Packet::Publish(Publish {
        dup: false,
        qos: QosPid::AtLeastOnce(pid(1)),
        retain: false,
        topic: None,
        props: Default::default(),
        payload: Bytes::new(),
    });
    let mut out = Vec::new();
    for v in [V31, V311, V5] {
        assert_eq!(p.encode(v, &mut out), Err(EncodeError::MissingTopic));
    }
    let s: Packet = Packet::Subscribe(Subscribe {
        id: pid(1),
        props: SubscribeProps::default(),
        filters: vec![],
    });
    assert_eq!(
        s.encode(V5, &mut out),
        Err(EncodeError::NoTopicFilters(PacketType::Subscribe))
    );
    let u: Packet = Packet::Unsubscribe(Unsubscribe {
        id: pid(1),
        props: UnsubscribeProps::default(),
        filters: Vec::<TopicFilter>::new(),
    });
    assert_eq!(
        u.encode(V311, &mut out),
        Err(EncodeError::NoTopicFilters(PacketType::Unsubscribe))
    );
    assert!(out.is_empty());
}

// A full fixed-size buffer gets nothing, not a partial packet.
#[test]
fn a_buffer_too_small_gets_nothing() {
    let p: Packet = Packet::Subscribe(Subscribe {
        id: pid(1),
        props: SubscribeProps::default(),
        filters: vec![(
            TopicFilter::from_static("a/b"),
            SubscriptionOptions::new(QoS::AtLeastOnce),
        )],
    });
    let mut storage = [0xEEu8; 8];
    let mut out = &mut storage[..];
    assert_eq!(
        p.encode(V311, &mut out),
        Err(EncodeError::BufferTooSmall {
            needed: 10,
            available: 8
        })
    );
    assert_eq!(storage, [0xEE; 8]);
}
