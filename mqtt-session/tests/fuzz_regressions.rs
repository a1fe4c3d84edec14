//! Behaviour the fuzz targets (`fuzz/`) found wrong, each pinned by the
//! smallest test that shows it; the fuzzer's input is kept in
//! `fuzz/regressions/<target>/`.

mod common;

use common::*;
use mqtt_session::mqtt_codec::{
    ConnAck, ConnAckProps, Connect, Packet, ProtocolVersion, QoS, ReasonCode, Str,
};
use mqtt_session::{
    Client, ClientConfig, ClientEvent, Connection, Instant, Server, ServerConfig, ServerEvent,
    UsageError, Violation,
};

/// `server_connection`: a CONNECT left unanswered past the connect timeout
/// is refused (CONNACK "server unavailable" queued, the connection
/// closing); the transport then ends before that CONNACK is written. The
/// connection reported closed but still handed out the CONNACK's 4 bytes
/// to a transport that no longer exists.
#[test]
fn eof_while_closing_discards_what_was_still_to_be_written() {
    let v = ProtocolVersion::V311;
    let mut server = Connection::<Server>::new(ServerConfig::default(), at(0));
    feed(
        &mut server,
        at(0),
        v,
        &[Packet::Connect(Box::new(connect_packet(v)))],
    );
    assert!(matches!(
        events(&mut server).as_slice(),
        [ServerEvent::Connect(_)]
    ));
    // The application never answers: at the deadline the client hears "busy".
    server.handle_timeout(at(10_000));
    assert!(matches!(
        events(&mut server).as_slice(),
        [ServerEvent::Closed(_)]
    ));
    server.handle_eof(at(10_001));
    assert!(server.is_closed());
    assert!(
        transmit(&mut server, at(10_001)).is_empty(),
        "bytes after the close"
    );
}

/// `broker`: a 5.0 client announced a Maximum Packet Size smaller than the
/// CONNACK the server had to send (an assigned client identifier makes it
/// long). The CONNACK was dropped as too large, and the server went on
/// sending other packets to a client still waiting for its CONNACK.
#[test]
fn a_connack_that_cannot_fit_the_clients_maximum_packet_size_ends_the_connection() {
    let v = ProtocolVersion::V5;
    let mut connect = Connect::new(v, Str::from_static(""));
    connect.props.maximum_packet_size = core::num::NonZeroU32::new(8);
    let mut server = Connection::<Server>::new(ServerConfig::default(), at(0));
    feed(&mut server, at(0), v, &[Packet::Connect(Box::new(connect))]);
    assert!(matches!(
        events(&mut server).as_slice(),
        [ServerEvent::Connect(_)]
    ));
    let mut props = ConnAckProps::default();
    props.assigned_client_identifier = Some(Str::from_static("auto-0123456789abcdef"));
    // `accept` takes the answer; the connection then ends unanswered
    // (nothing may precede CONNACK [MQTT-3.2.0-1]).
    server.accept(at(0), None, props).unwrap();
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.reason, ReasonCode::PACKET_TOO_LARGE);
    assert!(transmit(&mut server, at(0)).is_empty(), "nothing is sent");
    assert!(server.is_closed());
}

/// The same client with room for a bare CONNACK gets one without its
/// diagnostics, and the connection goes on.
#[test]
fn a_connack_too_large_only_for_its_diagnostics_goes_without_them() {
    let v = ProtocolVersion::V5;
    let mut connect = Connect::new(v, Str::from_static("c"));
    connect.props.maximum_packet_size = core::num::NonZeroU32::new(16);
    let mut server = Connection::<Server>::new(ServerConfig::default(), at(0));
    feed(&mut server, at(0), v, &[Packet::Connect(Box::new(connect))]);
    let _ = events(&mut server);
    let mut props = ConnAckProps::default();
    props.reason_string = Some(Str::from_static("a welcome far too long to fit"));
    server.accept(at(0), None, props).unwrap();
    let out = sent(&mut server, at(0), v);
    let [Packet::ConnAck(ack)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(ack.props.reason_string, None);
    assert!(server.is_connected());
}

/// `client_connection`: a client whose CONNECT cannot be encoded (found
/// with a 3.1 client identifier the codec then refused; here a 3.1.1
/// password without a user name) waited for a CONNACK to a CONNECT that
/// never went out. It ends at once now and sends nothing.
#[test]
fn a_client_whose_connect_cannot_be_encoded_closes_at_once_and_sends_nothing() {
    let mut config = ClientConfig::new(ProtocolVersion::V311, Str::from_static("c"));
    config.password = Some(bytes::Bytes::from_static(b"pw"));
    let mut client = Connection::<Client>::new(config.clone(), Instant::ZERO, None);
    let evs = events(&mut client);
    assert!(
        matches!(evs.as_slice(), [ClientEvent::Closed(_)]),
        "{evs:?}"
    );
    assert!(client.is_closed());
    assert_eq!(client.poll_timeout(), None);
    assert!(transmit(&mut client, Instant::ZERO).is_empty());
    // With a user name the same CONNECT goes out.
    config.username = Some(Str::from_static("u"));
    let mut client = Connection::<Client>::new(config, Instant::ZERO, None);
    let out = sent(&mut client, Instant::ZERO, ProtocolVersion::V311);
    assert!(matches!(out.as_slice(), [Packet::Connect(_)]), "{out:?}");
}

/// `broker`: an UNSUBSCRIBE and a malformed packet arrived in one read. The
/// malformed packet closed the connection (DISCONNECT queued), and the
/// application's answer to the UNSUBSCRIBE, given afterwards, was written
/// after the DISCONNECT. Once closed, a connection sends no more answers.
#[test]
fn answers_given_after_the_connection_closed_are_not_sent() {
    let v = ProtocolVersion::V5;
    let mut server = accepted_server(
        ServerConfig::default(),
        connect_packet(v),
        None,
        ConnAckProps::default(),
    );
    let mut wire = encode(
        v,
        &[subscribe(1, "a", mqtt_session::mqtt_codec::QoS::AtMostOnce)],
    );
    wire.extend_from_slice(&[0xFF, 0xFF]); // no packet type 15 with these flags
    server.handle_read(at(0), &mut wire);
    let evs = events(&mut server);
    assert!(
        matches!(evs.first(), Some(ServerEvent::Subscribe { .. })),
        "{evs:?}"
    );
    assert!(
        matches!(evs.last(), Some(ServerEvent::Closed(_))),
        "{evs:?}"
    );
    let r = server.suback(pid(1), &[ReasonCode::GRANTED_QOS_0]);
    assert!(matches!(r, Err(UsageError::NotConnected)), "{r:?}");
    let out = sent(&mut server, at(0), v);
    assert!(
        matches!(out.as_slice(), [Packet::Disconnect(_)]),
        "only the DISCONNECT: {out:?}"
    );
}

/// An answer that cannot be encoded leaves the request answerable.
#[test]
fn a_suback_refused_for_its_reason_codes_can_be_given_again() {
    let v = ProtocolVersion::V5;
    let mut server = accepted_server(
        ServerConfig::default(),
        connect_packet(v),
        None,
        ConnAckProps::default(),
    );
    feed(
        &mut server,
        at(0),
        v,
        &[subscribe(1, "a", mqtt_session::mqtt_codec::QoS::AtMostOnce)],
    );
    let _ = events(&mut server);
    // 0x04 is no SUBACK reason code.
    assert!(matches!(
        server.suback(pid(1), &[ReasonCode(0x04)]),
        Err(UsageError::Encode(_))
    ));
    server.suback(pid(1), &[ReasonCode::GRANTED_QOS_0]).unwrap();
    let out = sent(&mut server, at(0), v);
    assert!(matches!(out.as_slice(), [Packet::SubAck(_)]), "{out:?}");
}

/// `client_connection`: a hostile broker sent CONNACK before the client had
/// written its CONNECT, announcing a Maximum Packet Size of 4 bytes. The
/// client took it, dropped its own CONNECT as too large, and went on to
/// send AUTH as its first packet. A CONNACK before the CONNECT went out is
/// a protocol violation now.
#[test]
fn a_connack_before_the_connect_was_written_is_a_protocol_violation() {
    let v = ProtocolVersion::V5;
    let mut client = Connection::<Client>::new(client_config(v), at(0), None);
    let mut ack = connack_ok();
    ack.props.maximum_packet_size = core::num::NonZeroU32::new(4);
    feed(&mut client, at(0), v, &[Packet::ConnAck(Box::new(ack))]);
    let evs = events(&mut client);
    let [ClientEvent::Closed(close)] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert!(close.violation.is_some());
    let out = sent(&mut client, at(0), v);
    assert!(
        matches!(out.as_slice(), [Packet::Connect(_), Packet::Disconnect(_)]),
        "{out:?}"
    );
}

/// `client_connection`: publishing a message whose expiry had passed
/// already was refused as "not connected" on a connected client.
#[test]
fn publishing_an_expired_message_says_it_expired_not_that_the_client_is_offline() {
    let v = ProtocolVersion::V5;
    let mut client = connected_client(client_config(v), connack_ok());
    let mut m = msg("a", "x", mqtt_session::mqtt_codec::QoS::AtLeastOnce);
    m.props.expires_at = Some(at(0));
    assert_eq!(client.publish(at(0), m), Err(UsageError::Expired));
    assert!(client.is_connected());
    assert!(sent(&mut client, at(0), v).is_empty());
}

/// `server_connection`: a client sent a second SUBSCRIBE under the packet
/// identifier of one still unanswered. Both were handed to the
/// application, which could answer only one: the other's SUBACK was never
/// sent. A request under an identifier in use is a protocol error now
/// [MQTT-2.2.1-3], for SUBSCRIBE and UNSUBSCRIBE alike.
#[test]
fn a_request_under_the_identifier_of_an_unanswered_one_is_a_protocol_error() {
    let v = ProtocolVersion::V5;
    let unsubscribe = Packet::Unsubscribe(mqtt_session::mqtt_codec::Unsubscribe {
        id: pid(1),
        props: Default::default(),
        filters: vec![filter("b")],
    });
    for second in [subscribe(1, "b", QoS::AtMostOnce), unsubscribe] {
        let mut server = accepted_server(
            ServerConfig::default(),
            connect_packet(v),
            None,
            ConnAckProps::default(),
        );
        let _ = transmit(&mut server, at(0));
        feed(
            &mut server,
            at(0),
            v,
            &[subscribe(1, "a", QoS::AtLeastOnce), second],
        );
        let evs = events(&mut server);
        assert!(matches!(evs[0], ServerEvent::Subscribe { .. }), "{evs:?}");
        let close = server_close(&evs);
        assert_eq!(close.violation, Some(Violation::PacketIdInUse(pid(1))));
        assert_eq!(evs.len(), 2, "{evs:?}");
        let out = sent(&mut server, at(0), v);
        let [Packet::Disconnect(d)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(d.reason, ReasonCode::PROTOCOL_ERROR);
    }
    // Once answered, the identifier is free again.
    let mut server = accepted_server(
        ServerConfig::default(),
        connect_packet(v),
        None,
        ConnAckProps::default(),
    );
    feed(
        &mut server,
        at(0),
        v,
        &[subscribe(1, "a", QoS::AtLeastOnce)],
    );
    let _ = events(&mut server);
    server.suback(pid(1), &[ReasonCode::GRANTED_QOS_1]).unwrap();
    feed(
        &mut server,
        at(0),
        v,
        &[subscribe(1, "b", QoS::AtLeastOnce)],
    );
    let evs = events(&mut server);
    assert!(
        matches!(evs.as_slice(), [ServerEvent::Subscribe { .. }]),
        "{evs:?}"
    );
}

/// `client_connection`: a resumed session's in-flight message, too large
/// for the Maximum Packet Size of the new CONNACK, was still queued when
/// the application disconnected. Writing the DISCONNECT shed the message
/// and reported it `Published` with 0x95, after `Closed`. Once closed,
/// nothing is reported; the message stays in the session for the next
/// connection to resend.
#[test]
fn a_message_shed_while_closing_is_not_reported_after_closed() {
    let v = ProtocolVersion::V5;
    let mut cfg = client_config(v);
    cfg.clean_start = false;
    cfg.session_expiry_interval = 60;
    let mut first = connected_client(cfg.clone(), connack_ok());
    let id = first
        .publish(
            at(0),
            msg("a/b", "a payload longer than 16 bytes", QoS::AtLeastOnce),
        )
        .unwrap();
    assert!(id.is_some());
    let _ = transmit(&mut first, at(0));
    first.handle_eof(at(1));
    let session = first.take_session().unwrap();
    assert_eq!(session.inflight(), 1);

    let mut second = Connection::<Client>::new(cfg, at(2), Some(session));
    let out = sent(&mut second, at(2), v);
    assert!(matches!(out.as_slice(), [Packet::Connect(_)]), "{out:?}");
    let mut ack = ConnAck::new(true, ReasonCode::SUCCESS);
    ack.props.maximum_packet_size = core::num::NonZeroU32::new(16);
    feed(&mut second, at(2), v, &[Packet::ConnAck(Box::new(ack))]);
    let evs = events(&mut second);
    assert!(
        matches!(evs.as_slice(), [ClientEvent::Connected { .. }]),
        "{evs:?}"
    );
    second.disconnect(at(3), ReasonCode::NORMAL_DISCONNECTION);
    let evs = events(&mut second);
    assert!(
        matches!(evs.as_slice(), [ClientEvent::Closed(_)]),
        "{evs:?}"
    );
    let out = sent(&mut second, at(3), v);
    assert!(matches!(out.as_slice(), [Packet::Disconnect(_)]), "{out:?}");
    let evs = events(&mut second);
    assert!(evs.is_empty(), "events after Closed: {evs:?}");
    assert_eq!(second.take_session().unwrap().inflight(), 1);
}
