//! The packet path: an adapter that decodes in its own task hands packets to
//! the connection (`handle_packet`, `handle_decode_error`) and takes packets
//! out (`poll_frames`). The same rules hold as on the byte path; the
//! proptest in `props.rs` compares whole random sessions on both paths.

mod common;

use bytes::BytesMut;
use common::*;
use mqtt_session::mqtt_codec::{
    ConnAckProps, Decoder, Packet, ProtocolVersion, QoS, QosPid, ReasonCode,
};
use mqtt_session::{
    Connection, DeliveryOptions, Instant, Limits, Role, Server, ServerConfig, ServerEvent,
};

use ProtocolVersion::{V311, V5};

const T0: Instant = Instant::ZERO;

/// Decodes `bytes` the way an adapter would and hands the packets over.
fn hand_over<R: Role>(c: &mut Connection<R>, decoder: &mut Decoder, bytes: &mut BytesMut) {
    loop {
        let before = bytes.len();
        match decoder.decode(bytes) {
            Ok(Some(p)) => c.handle_packet(T0, p, before - bytes.len()),
            Ok(None) => return,
            Err(e) => {
                c.handle_decode_error(T0, e);
                bytes.clear();
                return;
            }
        }
    }
}

fn server(max_packet_size: u32) -> (Connection<Server>, Decoder) {
    let cfg = ServerConfig {
        limits: Limits {
            max_packet_size,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let s = Connection::<Server>::new(cfg, T0);
    let d = s.decoder();
    (s, d)
}

/// [MQTT-3.1.4-5]: what follows the CONNECT waits for the answer, then is
/// handled in order.
#[test]
fn packets_after_connect_wait_for_the_accept_and_keep_their_order() {
    let (mut s, mut d) = server(1024);
    let mut bytes = encode(
        V5,
        &[
            connect_with_keep_alive(V5, 60),
            subscribe(1, "a/#", QoS::AtLeastOnce),
            publish1("a/b", "x", 2),
        ],
    );
    hand_over(&mut s, &mut d, &mut bytes);
    let evs = events(&mut s);
    assert!(
        matches!(evs.as_slice(), [ServerEvent::Connect(_)]),
        "{evs:?}"
    );
    s.accept(T0, None, ConnAckProps::default()).unwrap();
    let evs = events(&mut s);
    assert!(
        matches!(
            evs.as_slice(),
            [ServerEvent::Subscribe { .. }, ServerEvent::Publish { .. }]
        ),
        "{evs:?}"
    );
}

/// A refused CONNECT: nothing held is handled.
#[test]
fn packets_after_a_refused_connect_are_never_handled() {
    let (mut s, mut d) = server(1024);
    let mut bytes = encode(
        V311,
        &[connect_with_keep_alive(V311, 60), publish1("a/b", "x", 2)],
    );
    hand_over(&mut s, &mut d, &mut bytes);
    assert_eq!(events(&mut s).len(), 1);
    s.reject(T0, ReasonCode::NOT_AUTHORIZED);
    let evs = events(&mut s);
    assert!(
        matches!(evs.as_slice(), [ServerEvent::Closed(_)]),
        "{evs:?}"
    );
}

/// Held packets are bounded by twice the maximum packet size, each counted
/// at least as a decoded packet's size (and at least 16 packets fit): a
/// client that sends more before its CONNECT is answered is dropped (0x89).
#[test]
fn packets_held_before_the_accept_are_bounded() {
    let (mut s, mut d) = server(64);
    let mut bytes = encode(V311, &[connect_with_keep_alive(V311, 60)]);
    hand_over(&mut s, &mut d, &mut bytes);
    let tail: Vec<Packet> = (0..17)
        .map(|i| publish("a/b", &format!("tail {i:02}"), QosPid::AtMostOnce, false))
        .collect();
    let mut bytes = encode(V311, &tail);
    hand_over(&mut s, &mut d, &mut bytes);
    let evs = events(&mut s);
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(server_close(&evs).reason, ReasonCode::SERVER_BUSY);
    assert!(s.is_closed());
}

/// A decoding failure after the CONNECT is reported in its place: after the
/// accept, as a DISCONNECT with the error's reason code (0x81 here).
#[test]
fn a_decode_error_after_connect_ends_the_connection_after_the_accept() {
    let (mut s, mut d) = server(1024);
    let mut bytes = encode(V5, &[connect_with_keep_alive(V5, 60)]);
    // PUBLISH QoS 3 is malformed [MQTT-3.3.1-4].
    bytes.extend_from_slice(&[0x36, 0x03, 0x00, 0x01, b'a']);
    hand_over(&mut s, &mut d, &mut bytes);
    assert_eq!(events(&mut s).len(), 1);
    s.accept(T0, None, ConnAckProps::default()).unwrap();
    let out = sent(&mut s, T0, V5);
    assert!(
        matches!(out.as_slice(), [Packet::ConnAck(_), Packet::Disconnect(x)] if x.reason == ReasonCode::MALFORMED_PACKET),
        "{out:?}"
    );
}

/// On the byte path, a broken packet while the CONNECT waits for its answer
/// ends the stream there: what follows it is not decoded or held, however
/// much arrives, and the accept is answered with the error's DISCONNECT.
#[test]
fn nothing_after_a_broken_packet_is_read_while_the_connect_waits() {
    let (mut s, _) = server(1024);
    let mut bytes = encode(V5, &[connect_with_keep_alive(V5, 60)]);
    bytes.extend_from_slice(&[0x36, 0x03, 0x00, 0x01, b'a']);
    s.handle_read(T0, &mut bytes);
    for _ in 0..1_000 {
        let mut more = encode(V5, &[Packet::PingReq]);
        s.handle_read(T0, &mut more);
        assert!(more.is_empty(), "the bytes are consumed, not kept");
    }
    assert_eq!(events(&mut s).len(), 1, "only the CONNECT");
    s.accept(T0, None, ConnAckProps::default()).unwrap();
    let out = sent(&mut s, T0, V5);
    assert!(
        matches!(out.as_slice(), [Packet::ConnAck(_), Packet::Disconnect(x)] if x.reason == ReasonCode::MALFORMED_PACKET),
        "{out:?}"
    );
}

/// `poll_frames` moves whole packets within the byte budget (at least one),
/// and what it moves encodes to exactly what `poll_transmit` writes.
#[test]
fn poll_frames_respects_the_budget_and_matches_poll_transmit() {
    let make = || {
        let mut p = Pair::connected(V5);
        for i in 0..10 {
            p.server
                .deliver(
                    p.now,
                    msg("t", &format!("message {i}"), QoS::AtLeastOnce),
                    DeliveryOptions::new(QoS::AtLeastOnce),
                )
                .unwrap();
        }
        p
    };
    let mut a = make();
    let mut wire = BytesMut::new();
    let n = a.server.poll_transmit(a.now, &mut wire);

    let mut b = make();
    let mut packets = Vec::new();
    let first = b.server.poll_frames(b.now, &mut packets, 1);
    assert_eq!(
        packets.len(),
        1,
        "at least one packet, however small the budget"
    );
    let rest = b.server.poll_frames(b.now, &mut packets, usize::MAX);
    assert_eq!(first + rest, n);
    let mut encoded = BytesMut::new();
    for p in &packets {
        p.encode(b.server.version(), &mut encoded).unwrap();
    }
    assert_eq!(encoded, wire);
    let mut none = Vec::new();
    assert_eq!(b.server.poll_frames(b.now, &mut none, usize::MAX), 0);
}
