//! mqtt-codec against the codecs users would otherwise pick: rumqttc's
//! `mqttbytes` (3.1.1 and 5.0) and mqttrs (3.1.1), on the same wire bytes.
//!
//! Every benchmark of a group works on the same input (decoding) or the same
//! packet contents (encoding, checked to produce the same bytes before timing),
//! and processes a whole batch of packets per iteration; the group's throughput
//! is in packets. Each iteration's result (a checksum of the decoded fields, or
//! the number of bytes written) is compared with the value derived from the
//! fixtures' constants, outside the timed region, so nothing can be optimised
//! away and every codec is seen to decode the right thing.
//!
//! Timing is per iteration (`iter_custom`) so that an untimed preparation can
//! refill the read buffer of the owned decoders: the buffer is reused, as a
//! connection's read buffer is, so the refill neither allocates nor is timed.
//! All benchmarks of a group share this harness, so they carry the same timer
//! overhead (two `Instant::now` calls per batch).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, Bencher, BenchmarkGroup, Criterion, Throughput};
use mqtt_benches::{self as fx, FilterSpec, Stream};
use mqtt_codec::{Decoder, Packet, ProtocolVersion, MAX_PACKET_SIZE};
use rumqttc::mqttbytes::{v4, Protocol as V4Protocol, QoS as V4QoS};
use rumqttc::v5::mqttbytes::{v5, QoS as V5QoS};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// Size limit handed to rumqttc's 3.1.1 codec, above every fixture.
const V4_MAX: usize = MAX_PACKET_SIZE as usize;
/// Size limit handed to rumqttc's 5.0 codec, above every fixture.
const V5_MAX: Option<u32> = Some(MAX_PACKET_SIZE);
/// CONNECTs and SUBSCRIBEs processed per iteration.
const CONTROL_PACKETS: usize = 100;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// Times `run` once per iteration after an untimed `prepare`, and checks every
/// result against `expected` outside the timed region.
fn measure<T>(
    b: &mut Bencher<'_>,
    state: &mut T,
    mut prepare: impl FnMut(&mut T),
    mut run: impl FnMut(&mut T) -> usize,
    expected: usize,
) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            prepare(state);
            let start = Instant::now();
            let got = black_box(run(black_box(&mut *state)));
            total += start.elapsed();
            assert_eq!(got, expected);
        }
        total
    });
}

/// A decoder fed a `BytesMut` read buffer, refilled (untimed) with `wire` before each iteration.
fn bench_owned(
    g: &mut Group<'_>,
    id: &str,
    wire: &[u8],
    expected: usize,
    mut decode_all: impl FnMut(&mut BytesMut) -> usize,
) {
    let mut buf = BytesMut::with_capacity(wire.len());
    g.bench_function(id, |b| {
        measure(
            b,
            &mut buf,
            |buf| {
                buf.clear();
                buf.extend_from_slice(wire);
            },
            &mut decode_all,
            expected,
        )
    });
}

/// A decoder fed a frozen `Bytes` (a cheap handle clone of `wire` per iteration).
fn bench_frozen(
    g: &mut Group<'_>,
    id: &str,
    wire: &Bytes,
    expected: usize,
    mut decode_all: impl FnMut(&mut Bytes) -> usize,
) {
    let mut buf = Bytes::new();
    g.bench_function(id, |b| {
        measure(
            b,
            &mut buf,
            |buf| *buf = wire.clone(),
            &mut decode_all,
            expected,
        )
    });
}

/// A decoder borrowing from `wire`.
fn bench_borrowed(
    g: &mut Group<'_>,
    id: &str,
    wire: &[u8],
    expected: usize,
    mut decode_all: impl FnMut(&[u8]) -> usize,
) {
    g.bench_function(id, |b| {
        measure(b, &mut (), |_| {}, |_| decode_all(wire), expected)
    });
}

/// An encoder writing into reused state; `encode_all` clears it and returns the bytes written.
fn bench_encoder<T>(
    g: &mut Group<'_>,
    id: &str,
    mut state: T,
    expected: usize,
    mut encode_all: impl FnMut(&mut T) -> usize,
) {
    g.bench_function(id, |b| {
        measure(b, &mut state, |_| {}, &mut encode_all, expected)
    });
}

// ---------------------------------------------------------------------------
// What each decoder's result is checked by: a sum over the decoded fields
// ---------------------------------------------------------------------------

/// Topic and payload lengths plus the packet identifier.
fn publish_check(publish_qos: u8, payload_len: usize) -> usize {
    fx::TOPIC.len()
        + payload_len
        + if publish_qos > 0 {
            fx::PACKET_ID.into()
        } else {
            0
        }
}

/// Lengths of the strings and binaries, plus the number of user properties.
fn connect_check(v: ProtocolVersion) -> usize {
    let strings = fx::CLIENT_ID.len()
        + fx::USERNAME.len()
        + fx::PASSWORD.len()
        + fx::WILL_TOPIC.len()
        + fx::WILL_PAYLOAD.len();
    strings
        + if v.is_v5() {
            fx::USER_PROPERTIES.len() + 1
        } else {
            0
        }
}

/// Filter lengths plus QoS levels plus the packet identifier.
fn subscribe_check() -> usize {
    usize::from(fx::PACKET_ID)
        + fx::FILTERS
            .iter()
            .map(|f| f.path.len() + usize::from(f.qos))
            .sum::<usize>()
}

fn ours_check<B: AsRef<[u8]>>(p: &Packet<B>) -> usize {
    match p {
        Packet::Publish(p) => {
            p.topic.as_ref().map_or(0, |t| t.len())
                + p.payload.as_ref().len()
                + p.packet_id().map_or(0, |id| id.get().into())
        }
        Packet::Connect(c) => {
            let will = c.will.as_ref().expect("will");
            c.client_id.len()
                + c.username.as_ref().map_or(0, |u| u.len())
                + c.password.as_ref().map_or(0, |p| p.as_ref().len())
                + will.topic.len()
                + will.payload.as_ref().len()
                + c.props.user_properties.len()
                + will.props.user_properties.len()
        }
        Packet::Subscribe(s) => {
            usize::from(s.id.get())
                + s.filters
                    .iter()
                    .map(|(f, o)| f.len() + o.qos as usize)
                    .sum::<usize>()
        }
        other => panic!("unexpected {:?}", other.packet_type()),
    }
}

fn v4_check(p: &v4::Packet) -> usize {
    match p {
        v4::Packet::Publish(p) => p.topic.len() + p.payload.len() + usize::from(p.pkid),
        v4::Packet::Connect(c) => {
            let will = c.last_will.as_ref().expect("will");
            let login = c.login.as_ref().expect("login");
            c.client_id.len()
                + login.username.len()
                + login.password.len()
                + will.topic.len()
                + will.message.len()
        }
        v4::Packet::Subscribe(s) => {
            usize::from(s.pkid)
                + s.filters
                    .iter()
                    .map(|f| f.path.len() + f.qos as usize)
                    .sum::<usize>()
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn v5_check(p: &v5::Packet) -> usize {
    match p {
        v5::Packet::Publish(p) => p.topic.len() + p.payload.len() + usize::from(p.pkid),
        v5::Packet::Connect(c, will, login) => {
            let will = will.as_ref().expect("will");
            let login = login.as_ref().expect("login");
            c.client_id.len()
                + login.username.len()
                + login.password.len()
                + will.topic.len()
                + will.message.len()
                + c.properties.as_ref().map_or(0, |p| p.user_properties.len())
                + will
                    .properties
                    .as_ref()
                    .map_or(0, |p| p.user_properties.len())
        }
        v5::Packet::Subscribe(s) => {
            usize::from(s.pkid)
                + s.filters
                    .iter()
                    .map(|f| f.path.len() + f.qos as usize)
                    .sum::<usize>()
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn mqttrs_qos_number(q: mqttrs::QoS) -> usize {
    match q {
        mqttrs::QoS::AtMostOnce => 0,
        mqttrs::QoS::AtLeastOnce => 1,
        mqttrs::QoS::ExactlyOnce => 2,
    }
}

fn mqttrs_check(p: &mqttrs::Packet<'_>) -> usize {
    match p {
        mqttrs::Packet::Publish(p) => {
            p.topic_name.len()
                + p.payload.len()
                + p.qospid.pid().map_or(0, |id| usize::from(id.get()))
        }
        mqttrs::Packet::Connect(c) => {
            let will = c.last_will.as_ref().expect("will");
            c.client_id.len()
                + c.username.map_or(0, str::len)
                + c.password.map_or(0, <[u8]>::len)
                + will.topic.len()
                + will.message.len()
        }
        mqttrs::Packet::Subscribe(s) => {
            usize::from(s.pid.get())
                + s.topics
                    .iter()
                    .map(|t| t.topic_path.len() + mqttrs_qos_number(t.qos))
                    .sum::<usize>()
        }
        other => panic!("unexpected {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Decode loops: every packet of the buffer, summing `*_check`
// ---------------------------------------------------------------------------

fn ours_owned(v: ProtocolVersion) -> impl FnMut(&mut BytesMut) -> usize {
    move |buf| {
        let mut d = Decoder::with_version(v);
        let mut sum = 0;
        while let Some(p) = d.decode(buf).expect("valid stream") {
            sum += ours_check(&p);
        }
        sum
    }
}

fn ours_frozen(v: ProtocolVersion) -> impl FnMut(&mut Bytes) -> usize {
    move |buf| {
        let mut d = Decoder::with_version(v);
        let mut sum = 0;
        while let Some(p) = d.decode_bytes(buf).expect("valid stream") {
            sum += ours_check(&p);
        }
        sum
    }
}

fn ours_borrowed(v: ProtocolVersion) -> impl FnMut(&[u8]) -> usize {
    move |mut buf| {
        let mut d = Decoder::with_version(v);
        let mut sum = 0;
        while let Some((p, n)) = d.decode_slice(buf).expect("valid stream") {
            sum += ours_check(&p);
            buf = &buf[n..];
        }
        sum
    }
}

fn rumqttc_v4(buf: &mut BytesMut) -> usize {
    let mut sum = 0;
    while !buf.is_empty() {
        sum += v4_check(&v4::Packet::read(buf, V4_MAX).expect("valid stream"));
    }
    sum
}

fn rumqttc_v5(buf: &mut BytesMut) -> usize {
    let mut sum = 0;
    while !buf.is_empty() {
        sum += v5_check(&v5::Packet::read(buf, V5_MAX).expect("valid stream"));
    }
    sum
}

/// mqttrs's `decode_slice` does not say how much it consumed; the caller frames
/// the stream from the fixed header, as an mqttrs user has to.
fn mqttrs_borrowed(mut buf: &[u8]) -> usize {
    let mut sum = 0;
    while !buf.is_empty() {
        let p = mqttrs::decode_slice(buf)
            .expect("valid stream")
            .expect("whole packet");
        sum += mqttrs_check(&p);
        buf = &buf[fx::frame_len(buf).expect("fixed header")..];
    }
    sum
}

// ---------------------------------------------------------------------------
// The same packets for the peers
// ---------------------------------------------------------------------------

fn v4_qos(q: u8) -> V4QoS {
    match q {
        0 => V4QoS::AtMostOnce,
        1 => V4QoS::AtLeastOnce,
        _ => V4QoS::ExactlyOnce,
    }
}

fn v5_qos(q: u8) -> V5QoS {
    match q {
        0 => V5QoS::AtMostOnce,
        1 => V5QoS::AtLeastOnce,
        _ => V5QoS::ExactlyOnce,
    }
}

fn mqttrs_qos(q: u8) -> mqttrs::QoS {
    match q {
        0 => mqttrs::QoS::AtMostOnce,
        1 => mqttrs::QoS::AtLeastOnce,
        _ => mqttrs::QoS::ExactlyOnce,
    }
}

fn mqttrs_pid() -> mqttrs::Pid {
    mqttrs::Pid::try_from(fx::PACKET_ID).expect("non-zero")
}

fn v4_publish(q: u8, payload: Bytes) -> v4::Packet {
    let mut p = v4::Publish::from_bytes(fx::TOPIC, v4_qos(q), payload);
    if q > 0 {
        p.pkid = fx::PACKET_ID;
    }
    v4::Packet::Publish(p)
}

fn v5_publish(q: u8, payload: Bytes) -> v5::Packet {
    let mut p = v5::Publish::new(fx::TOPIC, v5_qos(q), payload, None);
    if q > 0 {
        p.pkid = fx::PACKET_ID;
    }
    v5::Packet::Publish(p)
}

fn mqttrs_publish(q: u8, payload: &[u8]) -> mqttrs::Packet<'_> {
    mqttrs::Packet::Publish(mqttrs::Publish {
        dup: false,
        qospid: match q {
            0 => mqttrs::QosPid::AtMostOnce,
            _ => mqttrs::QosPid::AtLeastOnce(mqttrs_pid()),
        },
        retain: false,
        topic_name: fx::TOPIC,
        payload,
    })
}

fn v4_connect() -> v4::Packet {
    v4::Packet::Connect(v4::Connect {
        protocol: V4Protocol::V4,
        keep_alive: fx::KEEP_ALIVE,
        client_id: fx::CLIENT_ID.into(),
        clean_session: true,
        last_will: Some(v4::LastWill::new(
            fx::WILL_TOPIC,
            fx::WILL_PAYLOAD,
            V4QoS::AtLeastOnce,
            false,
        )),
        login: Some(v4::Login::new(fx::USERNAME, fx::PASSWORD)),
    })
}

fn owned_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn v5_connect() -> v5::Packet {
    let mut props = v5::ConnectProperties::new();
    props.session_expiry_interval = Some(fx::SESSION_EXPIRY);
    props.receive_maximum = Some(fx::RECEIVE_MAXIMUM);
    props.max_packet_size = Some(fx::MAXIMUM_PACKET_SIZE);
    props.topic_alias_max = Some(fx::TOPIC_ALIAS_MAXIMUM);
    props.user_properties = owned_pairs(&fx::USER_PROPERTIES);
    let will_props = v5::LastWillProperties {
        delay_interval: Some(fx::WILL_DELAY),
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(fx::WILL_EXPIRY),
        content_type: Some(fx::WILL_CONTENT_TYPE.into()),
        response_topic: Some(fx::WILL_RESPONSE_TOPIC.into()),
        correlation_data: Some(Bytes::from_static(fx::WILL_CORRELATION)),
        user_properties: owned_pairs(&[fx::WILL_USER_PROPERTY]),
    };
    v5::Packet::Connect(
        v5::Connect {
            keep_alive: fx::KEEP_ALIVE,
            client_id: fx::CLIENT_ID.into(),
            clean_start: true,
            properties: Some(props),
        },
        Some(v5::LastWill::new(
            fx::WILL_TOPIC,
            fx::WILL_PAYLOAD,
            V5QoS::AtLeastOnce,
            false,
            Some(will_props),
        )),
        Some(v5::Login::new(fx::USERNAME, fx::PASSWORD)),
    )
}

fn mqttrs_connect() -> mqttrs::Packet<'static> {
    mqttrs::Packet::Connect(mqttrs::Connect {
        protocol: mqttrs::Protocol::MQTT311,
        keep_alive: fx::KEEP_ALIVE,
        client_id: fx::CLIENT_ID,
        clean_session: true,
        last_will: Some(mqttrs::LastWill {
            topic: fx::WILL_TOPIC,
            message: fx::WILL_PAYLOAD.as_bytes(),
            qos: mqttrs::QoS::AtLeastOnce,
            retain: false,
        }),
        username: Some(fx::USERNAME),
        password: Some(fx::PASSWORD.as_bytes()),
    })
}

fn v4_subscribe() -> v4::Packet {
    v4::Packet::Subscribe(v4::Subscribe {
        pkid: fx::PACKET_ID,
        filters: fx::FILTERS
            .iter()
            .map(|f| v4::SubscribeFilter::new(f.path.into(), v4_qos(f.qos)))
            .collect(),
    })
}

fn v5_filter(f: &FilterSpec) -> v5::Filter {
    v5::Filter {
        path: f.path.into(),
        qos: v5_qos(f.qos),
        nolocal: f.no_local,
        preserve_retain: f.retain_as_published,
        retain_forward_rule: match f.retain_handling {
            0 => v5::RetainForwardRule::OnEverySubscribe,
            1 => v5::RetainForwardRule::OnNewSubscribe,
            _ => v5::RetainForwardRule::Never,
        },
    }
}

fn v5_subscribe() -> v5::Packet {
    v5::Packet::Subscribe(v5::Subscribe {
        pkid: fx::PACKET_ID,
        filters: fx::FILTERS.iter().map(v5_filter).collect(),
        properties: Some(v5::SubscribeProperties {
            id: Some(fx::SUBSCRIPTION_IDENTIFIER as usize),
            user_properties: Vec::new(),
        }),
    })
}

fn mqttrs_subscribe() -> mqttrs::Packet<'static> {
    mqttrs::Packet::Subscribe(mqttrs::Subscribe::new(
        mqttrs_pid(),
        fx::FILTERS
            .iter()
            .map(|f| mqttrs::SubscribeTopic {
                topic_path: f.path.into(),
                qos: mqttrs_qos(f.qos),
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------------------
// Encoders: `packets` copies into a reused buffer, cleared each iteration
// ---------------------------------------------------------------------------

fn encode_ours(p: &Packet, v: ProtocolVersion, packets: usize, buf: &mut BytesMut) -> usize {
    buf.clear();
    for _ in 0..packets {
        p.encode(v, buf).expect("encodable");
    }
    buf.len()
}

fn encode_v4(p: &v4::Packet, packets: usize, buf: &mut BytesMut) -> usize {
    buf.clear();
    for _ in 0..packets {
        p.write(buf, V4_MAX).expect("encodable");
    }
    buf.len()
}

fn encode_v5(p: &v5::Packet, packets: usize, buf: &mut BytesMut) -> usize {
    buf.clear();
    for _ in 0..packets {
        p.write(buf, V5_MAX).expect("encodable");
    }
    buf.len()
}

/// mqttrs encodes into a `&mut [u8]`; the caller advances through a buffer big enough for all.
fn encode_mqttrs(p: &mqttrs::Packet<'_>, packets: usize, out: &mut [u8]) -> usize {
    let mut at = 0;
    for _ in 0..packets {
        at += mqttrs::encode_slice(p, &mut out[at..]).expect("encodable");
    }
    at
}

/// Asserts, before timing, that a peer writes exactly the fixture's bytes for
/// one packet (into an empty buffer: rumqttc patches a CONNECT's flags at an
/// offset counted from the start of the buffer, so a CONNECT written after
/// other bytes comes out wrong; the cost is the same) and the same number of
/// bytes for the whole batch.
fn assert_same_bytes(peer: &str, case: &str, one: &[u8], batch_len: usize, s: &Stream) {
    let ours = &s.wire[..s.packet_len];
    assert!(
        one == ours,
        "{peer} encodes {case} differently:\n ours {ours:02x?}\npeer {one:02x?}"
    );
    assert_eq!(batch_len, s.wire.len(), "{peer} batch length in {case}");
}

/// The 3.1.1 peers: rumqttc's `mqttbytes::v4` and mqttrs; 5.0: rumqttc's `mqttbytes::v5`.
struct Peers<'a> {
    v4: Option<v4::Packet>,
    v5: Option<v5::Packet>,
    mqttrs: Option<mqttrs::Packet<'a>>,
}

fn peers_for<'a>(
    v: ProtocolVersion,
    v4: v4::Packet,
    v5: v5::Packet,
    m: mqttrs::Packet<'a>,
) -> Peers<'a> {
    if v.is_v5() {
        Peers {
            v4: None,
            v5: Some(v5),
            mqttrs: None,
        }
    } else {
        Peers {
            v4: Some(v4),
            v5: None,
            mqttrs: Some(m),
        }
    }
}

fn version_label(v: ProtocolVersion) -> &'static str {
    if v.is_v5() {
        "v5"
    } else {
        "v311"
    }
}

/// Decoding benchmarks of one case: our three modes (the `Bytes` one only for
/// PUBLISH, `with_frozen`), then the peers of `v`.
fn decode_group(
    c: &mut Criterion,
    name: &str,
    v: ProtocolVersion,
    s: &Stream,
    expected: usize,
    with_frozen: bool,
) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(s.packets as u64));
    bench_owned(&mut g, "ours_owned", &s.wire, expected, ours_owned(v));
    if with_frozen {
        bench_frozen(&mut g, "ours_bytes", &s.wire, expected, ours_frozen(v));
    }
    bench_borrowed(&mut g, "ours_slice", &s.wire, expected, ours_borrowed(v));
    if v.is_v5() {
        bench_owned(&mut g, "rumqttc_v5", &s.wire, expected, rumqttc_v5);
    } else {
        bench_owned(&mut g, "rumqttc_v4", &s.wire, expected, rumqttc_v4);
        bench_borrowed(&mut g, "mqttrs", &s.wire, expected, mqttrs_borrowed);
    }
    g.finish();
}

/// Encoding benchmarks of one case: ours (and `encode_head` for PUBLISH), then the peers.
fn encode_group(
    c: &mut Criterion,
    name: &str,
    v: ProtocolVersion,
    ours: &Packet,
    s: &Stream,
    peers: &Peers<'_>,
) {
    let n = s.packets;
    let total = s.wire.len();
    let fresh = || BytesMut::with_capacity(total);

    // Same bytes as the fixture, checked once before timing.
    let mut one = BytesMut::new();
    let mut out = fresh();
    encode_ours(ours, v, 1, &mut one);
    let len = encode_ours(ours, v, n, &mut out);
    assert_same_bytes("mqtt-codec", name, &one, len, s);
    assert_eq!(out, s.wire);
    if let Some(p) = &peers.v4 {
        encode_v4(p, 1, &mut one);
        let len = encode_v4(p, n, &mut out);
        assert_same_bytes("rumqttc v4", name, &one, len, s);
    }
    if let Some(p) = &peers.v5 {
        encode_v5(p, 1, &mut one);
        let len = encode_v5(p, n, &mut out);
        assert_same_bytes("rumqttc v5", name, &one, len, s);
    }
    let mut slice = vec![0u8; total];
    if let Some(p) = &peers.mqttrs {
        let len = encode_mqttrs(p, 1, &mut slice);
        one.clear();
        one.extend_from_slice(&slice[..len]);
        let len = encode_mqttrs(p, n, &mut slice);
        assert_same_bytes("mqttrs", name, &one, len, s);
    }

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n as u64));
    bench_encoder(&mut g, "ours_encode", fresh(), total, |buf| {
        encode_ours(ours, v, n, buf)
    });
    if let Packet::Publish(p) = ours {
        // Vectored: the header into a buffer, the payload handed over as a `Bytes` handle.
        let state = (fresh(), Vec::<Bytes>::with_capacity(n));
        bench_encoder(
            &mut g,
            "ours_encode_head",
            state,
            total,
            |(heads, payloads)| {
                heads.clear();
                payloads.clear();
                let mut written = 0;
                for _ in 0..n {
                    written += p.encode_head(v, MAX_PACKET_SIZE, heads).expect("encodable");
                    written += p.payload.len();
                    payloads.push(p.payload.clone());
                }
                written
            },
        );
    }
    if let Some(p) = &peers.v4 {
        bench_encoder(&mut g, "rumqttc_v4", fresh(), total, |buf| {
            encode_v4(p, n, buf)
        });
    }
    if let Some(p) = &peers.v5 {
        bench_encoder(&mut g, "rumqttc_v5", fresh(), total, |buf| {
            encode_v5(p, n, buf)
        });
    }
    if let Some(p) = &peers.mqttrs {
        bench_encoder(&mut g, "mqttrs", slice, total, |out| {
            encode_mqttrs(p, n, out)
        });
    }
    g.finish();
}

fn size_label(len: usize) -> String {
    if len >= 1024 {
        format!("{}KiB", len / 1024)
    } else {
        format!("{len}B")
    }
}

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

fn publish_cases(c: &mut Criterion) {
    for v in [V311, V5] {
        for q in [0u8, 1] {
            for size in fx::PAYLOAD_SIZES {
                let ours: Packet = fx::publish(q, size).into();
                let packets = fx::publish_packets(fx::encode(&ours, v).len());
                let s = fx::stream(&ours, v, packets);
                let expected = publish_check(q, size) * packets;
                let label = format!("{}_qos{q}_{}", version_label(v), size_label(size));

                decode_group(c, &format!("publish_decode_{label}"), v, &s, expected, true);

                let payload = match &ours {
                    Packet::Publish(p) => p.payload.clone(),
                    _ => unreachable!(),
                };
                let peers = peers_for(
                    v,
                    v4_publish(q, payload.clone()),
                    v5_publish(q, payload.clone()),
                    mqttrs_publish(q, &payload),
                );
                encode_group(c, &format!("publish_encode_{label}"), v, &ours, &s, &peers);
            }
        }
    }
}

fn connect_cases(c: &mut Criterion) {
    for v in [V311, V5] {
        let ours: Packet = fx::connect(v).into();
        let s = fx::stream(&ours, v, CONTROL_PACKETS);
        let expected = connect_check(v) * CONTROL_PACKETS;
        let label = version_label(v);
        decode_group(
            c,
            &format!("connect_decode_{label}"),
            v,
            &s,
            expected,
            false,
        );
        let peers = peers_for(v, v4_connect(), v5_connect(), mqttrs_connect());
        encode_group(c, &format!("connect_encode_{label}"), v, &ours, &s, &peers);
    }
}

fn subscribe_cases(c: &mut Criterion) {
    for v in [V311, V5] {
        let ours: Packet = fx::subscribe(v).into();
        let s = fx::stream(&ours, v, CONTROL_PACKETS);
        let expected = subscribe_check() * CONTROL_PACKETS;
        let label = version_label(v);
        decode_group(
            c,
            &format!("subscribe_decode_{label}"),
            v,
            &s,
            expected,
            false,
        );
        let peers = peers_for(v, v4_subscribe(), v5_subscribe(), mqttrs_subscribe());
        encode_group(
            c,
            &format!("subscribe_encode_{label}"),
            v,
            &ours,
            &s,
            &peers,
        );
    }
}

criterion_group!(benches, publish_cases, connect_cases, subscribe_cases);
criterion_main!(benches);
