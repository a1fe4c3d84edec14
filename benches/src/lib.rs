//! Fixtures shared by the codec benchmarks in `benches/codec.rs`.
//!
//! Every packet is built here with `mqtt-codec` and encoded once; the benchmark
//! hands the *same* wire bytes to every codec it compares. The contents are
//! public constants so the peers' packets can be built with identical values,
//! and the benchmark checks before timing that each peer encodes them to the
//! same bytes.

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    Connect, Packet, PacketId, PayloadFormat, ProtocolVersion, Publish, QoS, QosPid, Str,
    Subscribe, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName, Will,
};

/// Topic of every benchmarked PUBLISH: 46 bytes, a typical sensor topic.
pub const TOPIC: &str = "sensors/building-7/floor-3/room-12/temperature";
/// Packet identifier of the QoS 1 PUBLISH and of SUBSCRIBE.
pub const PACKET_ID: u16 = 0x1234;
/// Payload sizes of the PUBLISH cases, in bytes.
pub const PAYLOAD_SIZES: [usize; 4] = [16, 256, 4 * 1024, 64 * 1024];
/// A PUBLISH stream holds at least this many bytes ...
pub const STREAM_BYTES: usize = 256 * 1024;
/// ... and at least this many packets (so 64 KiB payloads make a 4 MiB stream).
pub const MIN_PACKETS: usize = 64;

/// The client identifier of both CONNECTs.
pub const CLIENT_ID: &str = "client-0042";
/// Keep alive of both CONNECTs, in seconds.
pub const KEEP_ALIVE: u16 = 60;
/// User name of both CONNECTs.
pub const USERNAME: &str = "device-0042";
/// Password of both CONNECTs (ASCII, so rumqttc's `String` password can hold it).
pub const PASSWORD: &str = "s3cr3t-passw0rd";
/// Will topic of both CONNECTs.
pub const WILL_TOPIC: &str = "devices/client-0042/status";
/// Will payload of both CONNECTs (valid UTF-8: the 5.0 will says so).
pub const WILL_PAYLOAD: &str = r#"{"online":false}"#;
/// CONNECT properties (5.0): session expiry interval.
pub const SESSION_EXPIRY: u32 = 3600;
/// CONNECT properties (5.0): receive maximum.
pub const RECEIVE_MAXIMUM: u16 = 100;
/// CONNECT properties (5.0): maximum packet size.
pub const MAXIMUM_PACKET_SIZE: u32 = 1024 * 1024;
/// CONNECT properties (5.0): topic alias maximum.
pub const TOPIC_ALIAS_MAXIMUM: u16 = 16;
/// CONNECT properties (5.0): the two user properties.
pub const USER_PROPERTIES: [(&str, &str); 2] = [("region", "eu-west-1"), ("firmware", "2.4.1")];
/// Will properties (5.0): will delay interval.
pub const WILL_DELAY: u32 = 30;
/// Will properties (5.0): message expiry interval.
pub const WILL_EXPIRY: u32 = 86_400;
/// Will properties (5.0): content type.
pub const WILL_CONTENT_TYPE: &str = "application/json";
/// Will properties (5.0): response topic.
pub const WILL_RESPONSE_TOPIC: &str = "devices/client-0042/will-ack";
/// Will properties (5.0): correlation data.
pub const WILL_CORRELATION: &[u8] = b"corr-0042";
/// Will properties (5.0): one user property.
pub const WILL_USER_PROPERTY: (&str, &str) = ("reason", "unexpected-disconnect");

/// One entry of the benchmarked SUBSCRIBE. Under 3.1.1 only `path` and `qos` are sent.
#[derive(Debug, Clone, Copy)]
pub struct FilterSpec {
    /// The topic filter.
    pub path: &'static str,
    /// Maximum QoS, 0 to 2.
    pub qos: u8,
    /// 5.0 No Local.
    pub no_local: bool,
    /// 5.0 Retain As Published.
    pub retain_as_published: bool,
    /// 5.0 Retain Handling, 0 to 2.
    pub retain_handling: u8,
}

const fn spec(path: &'static str, qos: u8, no_local: bool, rap: bool, rh: u8) -> FilterSpec {
    FilterSpec {
        path,
        qos,
        no_local,
        retain_as_published: rap,
        retain_handling: rh,
    }
}

/// The ten filters of the benchmarked SUBSCRIBE.
pub const FILTERS: [FilterSpec; 10] = [
    spec("sensors/+/temperature", 0, false, false, 0),
    spec("sensors/+/humidity", 1, false, true, 0),
    spec("devices/client-0042/#", 1, true, false, 1),
    spec("alerts/#", 2, false, false, 2),
    spec("factory/line-1/+/status", 0, false, true, 1),
    spec("factory/line-2/+/status", 1, true, true, 0),
    spec("fleet/vehicles/+/position", 0, false, false, 2),
    spec("home/livingroom/lights", 1, false, false, 0),
    spec("weather/eu/+/forecast", 2, true, false, 1),
    spec("$SYS/broker/load/#", 0, false, false, 0),
];
/// SUBSCRIBE property (5.0): the subscription identifier.
pub const SUBSCRIPTION_IDENTIFIER: u32 = 42;

/// A payload of `len` bytes with a repeating pattern.
pub fn payload(len: usize) -> Bytes {
    (0..len)
        .map(|i| b'a' + (i % 26) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// `QoS` from its number.
///
/// # Panics
/// If `qos` is over 2.
pub fn qos(qos: u8) -> QoS {
    QoS::from_u8(qos).expect("QoS 0 to 2")
}

/// The packet identifier [`PACKET_ID`].
pub fn packet_id() -> PacketId {
    PacketId::new(PACKET_ID).expect("non-zero")
}

/// A PUBLISH to [`TOPIC`] of `payload_len` bytes, QoS 0 or 1 (with [`PACKET_ID`]), no properties.
pub fn publish(qos_level: u8, payload_len: usize) -> Publish {
    let mut p = Publish::new(TopicName::from_static(TOPIC), payload(payload_len));
    if qos_level > 0 {
        p.qos = QosPid::from_qos(qos(qos_level), packet_id());
    }
    p
}

/// Encodes one packet.
///
/// # Panics
/// If the fixture cannot be encoded under `v`.
pub fn encode(p: &Packet, v: ProtocolVersion) -> Bytes {
    let mut out = BytesMut::new();
    p.encode(v, &mut out).expect("fixtures encode");
    out.freeze()
}

/// Many copies of one packet back to back, as one socket read would deliver them.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The contiguous wire bytes.
    pub wire: Bytes,
    /// Packets in `wire`.
    pub packets: usize,
    /// Bytes of one packet.
    pub packet_len: usize,
}

/// How many copies of a `packet_len`-byte PUBLISH make a stream: at least
/// [`MIN_PACKETS`] and at least [`STREAM_BYTES`] bytes.
pub fn publish_packets(packet_len: usize) -> usize {
    STREAM_BYTES.div_ceil(packet_len).max(MIN_PACKETS)
}

/// `packets` copies of `p` encoded under `v`, back to back.
pub fn stream(p: &Packet, v: ProtocolVersion, packets: usize) -> Stream {
    let one = encode(p, v);
    let mut wire = BytesMut::with_capacity(one.len() * packets);
    for _ in 0..packets {
        wire.extend_from_slice(&one);
    }
    Stream {
        wire: wire.freeze(),
        packets,
        packet_len: one.len(),
    }
}

/// The length of the whole packet at the front of `buf` (fixed header
/// included), read from its remaining length; `None` if the header is
/// incomplete or malformed. mqttrs's `decode_slice` does not report how many
/// bytes it used, so its caller frames the stream with this.
#[inline]
pub fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for (i, &b) in buf.iter().skip(1).take(4).enumerate() {
        len |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some(1 + (i + 1) + len);
        }
    }
    None
}

/// The CONNECT of the CONNECT cases: [`CLIENT_ID`], a QoS 1 will, user name
/// and password; under 5.0 also the CONNECT and will properties above.
pub fn connect(v: ProtocolVersion) -> Connect {
    let mut c = Connect::new(v, Str::from_static(CLIENT_ID));
    c.keep_alive = KEEP_ALIVE;
    c.username = Some(Str::from_static(USERNAME));
    c.password = Some(Bytes::from_static(PASSWORD.as_bytes()));
    let mut will = Will {
        topic: TopicName::from_static(WILL_TOPIC),
        payload: Bytes::from_static(WILL_PAYLOAD.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        props: Default::default(),
    };
    if v.is_v5() {
        let p = &mut c.props;
        p.session_expiry_interval = Some(SESSION_EXPIRY);
        p.receive_maximum = RECEIVE_MAXIMUM.try_into().ok();
        p.maximum_packet_size = MAXIMUM_PACKET_SIZE.try_into().ok();
        p.topic_alias_maximum = Some(TOPIC_ALIAS_MAXIMUM);
        p.user_properties = USER_PROPERTIES
            .iter()
            .map(|&(k, v)| (Str::from_static(k), Str::from_static(v)))
            .collect();
        let w = &mut will.props;
        w.will_delay_interval = Some(WILL_DELAY);
        w.payload_format_indicator = Some(PayloadFormat::Utf8);
        w.message_expiry_interval = Some(WILL_EXPIRY);
        w.content_type = Some(Str::from_static(WILL_CONTENT_TYPE));
        w.response_topic = Some(TopicName::from_static(WILL_RESPONSE_TOPIC));
        w.correlation_data = Some(Bytes::from_static(WILL_CORRELATION));
        let (k, val) = WILL_USER_PROPERTY;
        w.user_properties = vec![(Str::from_static(k), Str::from_static(val))];
    }
    c.will = Some(will);
    c
}

/// The SUBSCRIBE of the SUBSCRIBE cases: [`FILTERS`] with [`PACKET_ID`];
/// under 5.0 also the subscription identifier [`SUBSCRIPTION_IDENTIFIER`].
pub fn subscribe(v: ProtocolVersion) -> Subscribe {
    let filters = FILTERS
        .iter()
        .map(|f| {
            let mut o = SubscriptionOptions::new(qos(f.qos));
            if v.is_v5() {
                o.no_local = f.no_local;
                o.retain_as_published = f.retain_as_published;
                o.retain_handling = match f.retain_handling {
                    0 => mqtt_codec::RetainHandling::SendAtSubscribe,
                    1 => mqtt_codec::RetainHandling::SendAtSubscribeIfNew,
                    _ => mqtt_codec::RetainHandling::DoNotSend,
                };
            }
            (TopicFilter::from_static(f.path), o)
        })
        .collect();
    let mut s = Subscribe {
        id: packet_id(),
        props: Default::default(),
        filters,
    };
    if v.is_v5() {
        s.props.subscription_identifier = SubscriptionId::new(SUBSCRIPTION_IDENTIFIER);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::Decoder;

    #[test]
    fn frame_len_reads_the_remaining_length() {
        assert_eq!(frame_len(&[0x30, 0x00]), Some(2));
        assert_eq!(frame_len(&[0x30, 0x80, 0x01]), Some(3 + 128));
        assert_eq!(frame_len(&[0x30, 0x80]), None);
        assert_eq!(frame_len(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]), None);
    }

    #[test]
    fn fixtures_round_trip() {
        for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
            let packets: [Packet; 4] = [
                publish(0, 16).into(),
                publish(1, 64 * 1024).into(),
                connect(v).into(),
                subscribe(v).into(),
            ];
            for p in packets {
                let mut wire = BytesMut::from(&encode(&p, v)[..]);
                assert_eq!(frame_len(&wire), Some(wire.len()));
                let mut d = match p {
                    Packet::Connect(_) => Decoder::new(),
                    _ => Decoder::with_version(v),
                };
                assert_eq!(d.decode(&mut wire).unwrap(), Some(p));
                assert!(wire.is_empty());
            }
        }
    }

    #[test]
    fn streams_hold_enough_packets() {
        for size in PAYLOAD_SIZES {
            let p: Packet = publish(1, size).into();
            let n = publish_packets(encode(&p, ProtocolVersion::V5).len());
            let s = stream(&p, ProtocolVersion::V5, n);
            assert!(s.packets >= MIN_PACKETS);
            assert!(s.wire.len() >= STREAM_BYTES);
            assert_eq!(s.wire.len(), s.packets * s.packet_len);
        }
    }
}
