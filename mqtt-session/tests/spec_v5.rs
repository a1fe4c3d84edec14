//! One test per normative statement of MQTT 5.0 that the session implements.
//! Test names carry the statement number of the 5.0 specification; where a
//! rule has no number the name says what it shows and the comment gives the
//! section.

mod common;

use core::num::NonZeroU16;

use bytes::{Bytes, BytesMut};
use common::*;
use mqtt_session::mqtt_codec::{
    Auth, AuthProps, ConnAck, ConnAckProps, Connect, DecodeError, Disconnect, Packet, PacketType,
    PayloadFormat, ProtocolVersion, QoS, QosPid, ReasonCode, SubAck, SubscriptionId,
    SubscriptionOptions, Will, WillProps,
};
use mqtt_session::{
    Client, ClientConfig, ClientEvent, Close, Connection, DeliverError, DeliveryOptions, Initiator,
    Instant, Limits, Message, Server, ServerConfig, ServerEvent, Session, UsageError, Violation,
};

use ProtocolVersion::V5;

const T0: Instant = Instant::ZERO;

/// A way for a connection to end, applied to a server.
type Ending = fn(&mut Connection<Server>);

fn v5_server() -> Connection<Server> {
    accepted_server(
        ServerConfig::default(),
        connect_packet(V5),
        None,
        ConnAckProps::default(),
    )
}

/// A 5.0 server with `cfg` that accepted a CONNECT shaped by `shape`.
fn server_with(cfg: ServerConfig, shape: impl FnOnce(&mut Connect)) -> Connection<Server> {
    let mut c = connect_packet(V5);
    shape(&mut c);
    accepted_server(cfg, c, None, ConnAckProps::default())
}

fn v5_client() -> Connection<Client> {
    connected_client(client_config(V5), connack_ok())
}

fn disconnect(reason: ReasonCode) -> Packet {
    Packet::Disconnect(Disconnect::new(reason))
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

/// A will on "clients/c1/state" with the given delay and message expiry.
fn will(delay: u32) -> Will {
    let mut props = WillProps::default();
    props.will_delay_interval = Some(delay);
    props.message_expiry_interval = Some(60);
    Will {
        topic: topic("clients/c1/state"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: true,
        props,
    }
}

/// Asserts that `c` closed because the peer broke a rule reported with
/// `reason`: exactly one DISCONNECT with that reason was sent, `Closed` is the
/// last event and carries the same reason and a violation.
#[track_caller]
fn assert_server_violation(
    server: &mut Connection<Server>,
    now: Instant,
    reason: ReasonCode,
) -> Close {
    let out = sent(server, now, V5);
    assert_eq!(out, vec![disconnect(reason)], "the DISCONNECT sent");
    let evs = events(server);
    let close = server_close(&evs).clone();
    assert_eq!(close.initiator, Initiator::Peer);
    assert_eq!(close.reason, reason);
    let v = close.violation.expect("a violation");
    assert_eq!(v.reason(), reason);
    assert!(server.is_closed());
    close
}

/// Client-side counterpart of [`assert_server_violation`].
#[track_caller]
fn assert_client_violation(
    client: &mut Connection<Client>,
    now: Instant,
    reason: ReasonCode,
) -> Close {
    let out = sent(client, now, V5);
    assert_eq!(out, vec![disconnect(reason)], "the DISCONNECT sent");
    let evs = events(client);
    let close = client_close(&evs).clone();
    assert_eq!(close.initiator, Initiator::Peer);
    assert_eq!(close.reason, reason);
    assert_eq!(close.violation.expect("a violation").reason(), reason);
    assert!(client.is_closed());
    close
}

// ----- the handshake -------------------------------------------------------------

/// [MQTT-3.1.0-1]: the first packet must be CONNECT; [MQTT-3.14.0-1]: the
/// server sends no DISCONNECT before a successful CONNACK, so nothing is sent.
#[test]
fn mqtt_3_1_0_1_the_first_packet_must_be_connect_and_no_disconnect_precedes_connack() {
    let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
    feed(&mut server, T0, V5, &[publish1("a", "x", 1)]);
    assert!(transmit(&mut server, T0).is_empty());
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.reason, ReasonCode::PROTOCOL_ERROR);
    assert!(matches!(
        close.violation,
        Some(Violation::Decode(DecodeError::ExpectedConnect(
            PacketType::Publish
        )))
    ));
}

/// [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error: DISCONNECT 0x82.
#[test]
fn mqtt_3_1_0_2_a_second_connect_is_a_protocol_error() {
    let mut server = v5_server();
    feed(&mut server, at(1), V5, &[connect_with_keep_alive(V5, 60)]);
    let close = assert_server_violation(&mut server, at(1), ReasonCode::PROTOCOL_ERROR);
    assert_eq!(
        close.violation,
        Some(Violation::UnexpectedPacket(PacketType::Connect))
    );
}

/// [MQTT-3.2.0-1]: the server's first packet is CONNACK (or AUTH); a client
/// that gets anything else closes with DISCONNECT 0x82 (section 4.13.1: a
/// client SHOULD send DISCONNECT with the reason before closing).
#[test]
fn mqtt_3_2_0_1_a_client_closes_with_0x82_when_the_first_packet_is_not_connack() {
    let mut client = Connection::<Client>::new(client_config(V5), T0, None);
    let _ = transmit(&mut client, T0);
    feed(&mut client, T0, V5, &[publish1("a", "x", 1)]);
    let close = assert_client_violation(&mut client, T0, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(
        close.violation,
        Some(Violation::UnexpectedPacket(PacketType::Publish))
    );
}

/// [MQTT-3.2.0-2]: there is one CONNACK per connection; a second one is a
/// protocol error for the client.
#[test]
fn mqtt_3_2_0_2_a_second_connack_is_a_protocol_error() {
    let mut client = v5_client();
    feed(
        &mut client,
        T0,
        V5,
        &[Packet::ConnAck(Box::new(connack_ok()))],
    );
    assert_client_violation(&mut client, T0, ReasonCode::PROTOCOL_ERROR);
}

/// [MQTT-3.2.2-2]: Clean Start 1 is answered with Session Present 0, even if
/// the application offers a session; [MQTT-3.2.2-3]: with Clean Start 0,
/// Session Present says whether the server had one.
#[test]
fn mqtt_3_2_2_2_and_3_session_present_follows_clean_start_and_the_stored_session() {
    for (clean, stored, present) in [
        (true, true, false),
        (false, true, true),
        (false, false, false),
    ] {
        let mut c = connect_packet(V5);
        c.clean_start = clean;
        let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
        feed(&mut server, T0, V5, &[Packet::Connect(Box::new(c))]);
        let _ = events(&mut server);
        server
            .accept(T0, stored.then(Session::default), ConnAckProps::default())
            .unwrap();
        let out = sent(&mut server, T0, V5);
        let [Packet::ConnAck(ack)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            ack.session_present, present,
            "clean {clean}, stored {stored}"
        );
        assert_eq!(ack.reason, ReasonCode::SUCCESS);
    }
}

/// [MQTT-3.2.2-4]: a client without session state that receives Session
/// Present 1 closes the connection (DISCONNECT 0x82).
#[test]
fn mqtt_3_2_2_4_a_client_without_session_closes_on_session_present() {
    let mut client = Connection::<Client>::new(client_config(V5), T0, None);
    let _ = transmit(&mut client, T0);
    feed(
        &mut client,
        T0,
        V5,
        &[Packet::ConnAck(Box::new(ConnAck::new(
            true,
            ReasonCode::SUCCESS,
        )))],
    );
    let close = assert_client_violation(&mut client, T0, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(close.violation, Some(Violation::UnexpectedSessionPresent));
}

/// [MQTT-3.2.2-6] / [MQTT-3.2.2-7]: a refusing CONNACK has Session Present 0
/// and the server closes after it; [MQTT-3.2.2-8]: it carries a CONNACK
/// reason code (one that CONNACK cannot carry becomes 0x80).
#[test]
fn mqtt_3_2_2_6_to_8_a_refusal_has_session_present_0_a_connack_code_and_closes() {
    for (given, on_wire) in [
        (ReasonCode::NOT_AUTHORIZED, ReasonCode::NOT_AUTHORIZED),
        (ReasonCode::BANNED, ReasonCode::BANNED),
        (
            ReasonCode::KEEP_ALIVE_TIMEOUT,
            ReasonCode::UNSPECIFIED_ERROR,
        ),
    ] {
        let mut c = connect_packet(V5);
        c.clean_start = false;
        let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
        feed(&mut server, T0, V5, &[Packet::Connect(Box::new(c))]);
        let _ = events(&mut server);
        server.reject(T0, given);
        assert_eq!(
            sent(&mut server, T0, V5),
            vec![Packet::ConnAck(Box::new(ConnAck::new(false, on_wire)))]
        );
        let evs = events(&mut server);
        assert_eq!(server_close(&evs).initiator, Initiator::Local);
        assert!(server.is_closed());
    }
    // The client reads the refusal as the end of the connection.
    let mut client = Connection::<Client>::new(client_config(V5), T0, None);
    let _ = transmit(&mut client, T0);
    feed(
        &mut client,
        T0,
        V5,
        &[Packet::ConnAck(Box::new(ConnAck::new(
            false,
            ReasonCode::BANNED,
        )))],
    );
    let evs = events(&mut client);
    let close = client_close(&evs);
    assert_eq!(
        (close.initiator, close.reason),
        (Initiator::Peer, ReasonCode::BANNED)
    );
    assert!(transmit(&mut client, T0).is_empty());
}

/// Section 3.2.2.3: CONNACK carries the server's limits, and the client keeps
/// to them: [MQTT-3.2.2-11] no QoS above Maximum QoS, [MQTT-3.2.2-14] no
/// retained message when Retain Available is 0, [MQTT-3.2.2-21] the Server
/// Keep Alive replaces the client's.
#[test]
fn connack_carries_the_server_limits_and_the_client_keeps_to_them() {
    let server_cfg = ServerConfig {
        limits: limits(|l| {
            l.receive_maximum = 5;
            l.max_packet_size = 2_000;
            l.topic_alias_maximum = 3;
        }),
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        max_keep_alive: Some(30),
        ..ServerConfig::default()
    };
    let mut broker = Broker::accept_only();
    broker.connack.wildcard_subscription_available = Some(false);
    broker.connack.shared_subscription_available = Some(false);
    broker.connack.subscription_identifiers_available = Some(false);
    let mut p = Pair::connected_with(client_config(V5), server_cfg, broker);
    let caps = p.client.server_caps().unwrap().clone();
    assert_eq!(caps.receive_maximum, 5);
    assert_eq!(caps.maximum_packet_size, 2_000);
    assert_eq!(caps.topic_alias_maximum, 3);
    assert_eq!(caps.maximum_qos, QoS::AtLeastOnce);
    assert!(!caps.retain_available);
    assert!(!caps.wildcard_subscription_available);
    assert!(!caps.shared_subscription_available);
    assert!(!caps.subscription_identifiers_available);
    assert_eq!(caps.keep_alive, 30);
    assert_eq!(p.client.keep_alive(), 30);
    assert_eq!(p.server.keep_alive(), 30);
    assert_eq!(
        p.client.publish(p.now, msg("a", "x", QoS::ExactlyOnce)),
        Err(UsageError::QosNotSupported {
            max: QoS::AtLeastOnce
        })
    );
    let mut retained = msg("a", "x", QoS::AtMostOnce);
    retained.retain = true;
    assert_eq!(
        p.client.publish(p.now, retained),
        Err(UsageError::RetainNotSupported)
    );
    p.exchange();
    assert!(
        p.c2s.is_empty(),
        "nothing was sent for the refused publishes"
    );
    // The client pings every 30 s, not every 60 s.
    assert_eq!(p.client.poll_timeout(), Some(at(30_000)));
    assert_eq!(p.server.poll_timeout(), Some(at(45_000)));
}

/// Section 3.2.2.3.2: a CONNACK without Session Expiry Interval leaves the
/// client's own value in force; with one, the server's value is in force.
#[test]
fn the_session_expiry_in_force_is_the_clients_unless_connack_says_otherwise() {
    let mut cfg = client_config(V5);
    cfg.session_expiry_interval = 120;
    let client = connected_client(cfg.clone(), connack_ok());
    assert_eq!(client.server_caps().unwrap().session_expiry_interval, 120);
    let mut ack = connack_ok();
    ack.props.session_expiry_interval = Some(30);
    let client = connected_client(cfg, ack);
    assert_eq!(client.server_caps().unwrap().session_expiry_interval, 30);
}

/// [MQTT-3.2.2-16]: an empty client identifier is answered with an Assigned
/// Client Identifier, which the client learns and the server uses.
#[test]
fn mqtt_3_2_2_16_an_empty_client_id_gets_an_assigned_one() {
    let mut broker = Broker::accept_only();
    broker.connack.assigned_client_identifier = Some(s("auto-7f3a"));
    let cfg = ClientConfig::new(V5, s(""));
    let p = Pair::connected_with(cfg, ServerConfig::default(), broker);
    assert_eq!(
        p.client
            .server_caps()
            .unwrap()
            .assigned_client_identifier
            .as_ref()
            .unwrap(),
        "auto-7f3a"
    );
    assert_eq!(p.server.client_id(), "auto-7f3a");
}

/// [MQTT-3.2.2-11] / [MQTT-3.2.2-14], server side: a client that publishes
/// above the announced Maximum QoS, or a retained message when retain is not
/// available, is disconnected with 0x9B / 0x9A.
#[test]
fn mqtt_3_2_2_11_and_14_publishes_beyond_the_announced_capabilities_are_refused() {
    let cfg = ServerConfig {
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        ..ServerConfig::default()
    };
    let mut server = server_with(cfg.clone(), |_| {});
    feed(&mut server, T0, V5, &[publish2("a", "x", 1)]);
    let close = assert_server_violation(&mut server, T0, ReasonCode::QOS_NOT_SUPPORTED);
    assert_eq!(
        close.violation,
        Some(Violation::QosNotSupported(QoS::ExactlyOnce))
    );
    let mut server = server_with(cfg, |_| {});
    let mut p = publish("a", "x", QosPid::AtMostOnce, false);
    if let Packet::Publish(x) = &mut p {
        x.retain = true;
    }
    feed(&mut server, T0, V5, &[p]);
    let close = assert_server_violation(&mut server, T0, ReasonCode::RETAIN_NOT_SUPPORTED);
    assert_eq!(close.violation, Some(Violation::RetainNotSupported));
}

/// A CONNECT the application leaves unanswered until the deadline is refused
/// with CONNACK 0x89 (server busy).
#[test]
fn the_connect_deadline_refuses_an_unanswered_connect_with_0x89() {
    let cfg = ServerConfig {
        connect_timeout: secs(3),
        ..ServerConfig::default()
    };
    let mut server = Connection::<Server>::new(cfg, T0);
    feed(&mut server, T0, V5, &[connect_with_keep_alive(V5, 60)]);
    let _ = events(&mut server);
    server.handle_timeout(at(3_000));
    assert_eq!(
        sent(&mut server, at(3_000), V5),
        vec![Packet::ConnAck(Box::new(ConnAck::new(
            false,
            ReasonCode::SERVER_BUSY
        )))]
    );
    let evs = events(&mut server);
    assert_eq!(server_close(&evs).reason, ReasonCode::SERVER_BUSY);
    assert!(server.is_closed());
}

// ----- keep alive ----------------------------------------------------------------

/// [MQTT-3.1.2-22]: the server closes a connection silent for one and a half
/// keep alives, telling the client with DISCONNECT 0x8D; the will is due.
#[test]
fn mqtt_3_1_2_22_the_server_closes_after_one_and_a_half_keep_alive_with_0x8d() {
    let mut server = server_with(ServerConfig::default(), |c| {
        c.keep_alive = 4;
        c.will = Some(will(0));
    });
    assert_eq!(server.poll_timeout(), Some(at(6_000)));
    server.handle_timeout(at(5_999));
    assert!(server.is_connected());
    server.handle_timeout(at(6_000));
    assert_eq!(
        sent(&mut server, at(6_000), V5),
        vec![disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT)]
    );
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.initiator, Initiator::Local);
    assert_eq!(close.reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert!(close.will.is_some());
    assert!(server.is_closed());
}

/// [MQTT-3.1.2-20]: an idle client sends PINGREQ after one keep alive; the
/// server answers [MQTT-3.12.4-1]; a client that hears nothing back closes.
#[test]
fn mqtt_3_1_2_20_the_client_pings_when_idle_and_gives_up_without_pingresp() {
    let mut cfg = client_config(V5);
    cfg.keep_alive = 20;
    cfg.ping_timeout = secs(10);
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    p.advance(secs(20));
    assert_eq!(p.take_c2s(), vec![Packet::PingReq]);
    assert_eq!(p.take_s2c(), vec![Packet::PingResp]);
    // The server stops answering: the transport still works, but nothing
    // comes back.
    p.advance(secs(19));
    let mut client = core::mem::replace(
        &mut p.client,
        Connection::<Client>::new(client_config(V5), T0, None),
    );
    client.handle_timeout(at(40_000));
    assert_eq!(sent(&mut client, at(40_000), V5), vec![Packet::PingReq]);
    assert_eq!(client.poll_timeout(), Some(at(50_000)));
    client.handle_timeout(at(50_000));
    let evs = events(&mut client);
    let close = client_close(&evs);
    assert_eq!(
        (close.initiator, close.reason),
        (Initiator::Local, ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    assert!(client.is_closed());
}

/// A DISCONNECT from the server ends the client with the server's reason.
#[test]
fn a_server_disconnect_ends_the_client_with_its_reason() {
    let mut p = Pair::connected(V5);
    p.server.close(p.now, ReasonCode::SESSION_TAKEN_OVER);
    p.exchange();
    assert_eq!(p.s2c, vec![disconnect(ReasonCode::SESSION_TAKEN_OVER)]);
    let close = client_close(&p.client_events);
    assert_eq!(close.initiator, Initiator::Peer);
    assert_eq!(close.reason, ReasonCode::SESSION_TAKEN_OVER);
    assert!(p.client.is_closed() && p.server.is_closed());
}

// ----- QoS flows and reason codes --------------------------------------------------

/// [MQTT-4.3.2-2] / [MQTT-4.3.3-2] to [MQTT-4.3.3-5] under 5.0: the exact
/// packets of a QoS 1 and a QoS 2 exchange, success codes left out as 5.0
/// allows (section 3.4.2.1).
#[test]
fn qos1_and_qos2_exchanges_on_the_wire() {
    let mut p = Pair::connected(V5);
    let a = p
        .client
        .publish(p.now, msg("t", "1", QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    let b = p
        .client
        .publish(p.now, msg("t", "2", QoS::ExactlyOnce))
        .unwrap()
        .unwrap();
    p.exchange();
    p.server.ack(a, ReasonCode::SUCCESS).unwrap();
    p.server.ack(b, ReasonCode::SUCCESS).unwrap();
    p.exchange();
    assert_eq!(
        p.c2s,
        vec![
            publish("t", "1", QosPid::AtLeastOnce(a), false),
            publish("t", "2", QosPid::ExactlyOnce(b), false),
            pubrel(b.get()),
        ]
    );
    assert_eq!(
        p.s2c,
        vec![puback(a.get()), pubrec(b.get()), pubcomp(b.get())]
    );
    assert_eq!(
        &encode(V5, &[puback(a.get())])[..],
        &[0x40, 0x02, 0x00, a.get() as u8],
        "a successful PUBACK has no reason code byte"
    );
}

/// [MQTT-3.4.2-1]: a failure reason code in PUBACK reaches the publisher;
/// [MQTT-4.4.0-2]: the message counts as acknowledged and is not resent.
#[test]
fn mqtt_3_4_2_1_and_4_4_0_2_a_failure_puback_reaches_the_publisher_and_ends_the_flow() {
    let mut cfg = client_config(V5);
    cfg.clean_start = false;
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    let id = p
        .client
        .publish(p.now, msg("t", "1", QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    p.exchange();
    p.server.ack(id, ReasonCode::NOT_AUTHORIZED).unwrap();
    p.exchange();
    assert_eq!(
        p.take_s2c(),
        vec![ack_with(
            Packet::PubAck,
            id.get(),
            ReasonCode::NOT_AUTHORIZED
        )]
    );
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::Published { id: done, reason: ReasonCode::NOT_AUTHORIZED, .. } if *done == id
    )));
    assert_eq!(p.client.session().unwrap().inflight(), 0);
    p.reconnect();
    p.clear();
    p.exchange();
    assert!(
        !p.c2s.iter().any(|x| matches!(x, Packet::Publish(_))),
        "not resent: {:?}",
        p.c2s
    );
}

/// [MQTT-4.3.3-4] / [MQTT-4.4.0-2]: a PUBREC with a failure code ends the QoS 2
/// flow: no PUBREL, the publisher hears the reason, the window slot is free.
#[test]
fn mqtt_4_4_0_2_a_failure_pubrec_ends_the_qos2_flow() {
    let mut cfg = client_config(V5);
    cfg.limits.max_inflight = 1;
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    let a = p
        .client
        .publish(p.now, msg("t", "a", QoS::ExactlyOnce))
        .unwrap()
        .unwrap();
    let b = p
        .client
        .publish(p.now, msg("t", "b", QoS::ExactlyOnce))
        .unwrap()
        .unwrap();
    p.exchange();
    assert_eq!(p.take_c2s().len(), 1, "window of one");
    p.server.ack(a, ReasonCode::QUOTA_EXCEEDED).unwrap();
    p.exchange();
    assert_eq!(
        p.take_s2c(),
        vec![ack_with(
            Packet::PubRec,
            a.get(),
            ReasonCode::QUOTA_EXCEEDED
        )]
    );
    // No PUBREL for a; b takes the free slot.
    assert_eq!(
        p.take_c2s(),
        vec![publish("t", "b", QosPid::ExactlyOnce(b), false)]
    );
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::Published { id, reason: ReasonCode::QUOTA_EXCEEDED, .. } if *id == a
    )));
    // Only b is left: received, not yet released.
    assert_eq!(p.server.session().unwrap().incomplete_inbound(), 1);
}

/// [MQTT-4.3.3-9]: after sending a failure PUBREC the receiver treats a PUBLISH
/// with that identifier as a new message.
#[test]
fn mqtt_4_3_3_9_after_a_failure_pubrec_the_identifier_is_new() {
    let mut server = v5_server();
    feed(&mut server, T0, V5, &[publish2("t", "x", 5)]);
    assert_eq!(events(&mut server).len(), 1);
    server.ack(pid(5), ReasonCode::NOT_AUTHORIZED).unwrap();
    assert_eq!(
        sent(&mut server, T0, V5),
        vec![ack_with(Packet::PubRec, 5, ReasonCode::NOT_AUTHORIZED)]
    );
    feed(&mut server, T0, V5, &[publish2("t", "y", 5)]);
    let evs = events(&mut server);
    assert!(
        matches!(evs.as_slice(), [ServerEvent::Publish { msg, .. }] if &msg.payload[..] == b"y"),
        "{evs:?}"
    );
}

/// [MQTT-2.2.1-5] / section 3.6.2.1: a PUBREL or PUBREC for an identifier
/// not in use is answered with reason 0x92 (Packet Identifier not found).
#[test]
fn unknown_identifiers_in_pubrel_and_pubrec_are_answered_with_0x92() {
    let mut server = v5_server();
    feed(&mut server, T0, V5, &[pubrel(44), pubrec(45)]);
    assert_eq!(
        sent(&mut server, T0, V5),
        vec![
            ack_with(Packet::PubComp, 44, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND),
            ack_with(Packet::PubRel, 45, ReasonCode::PACKET_IDENTIFIER_NOT_FOUND),
        ]
    );
    assert!(server.is_connected());
    assert!(events(&mut server).is_empty());
}

// ----- receive maximum -----------------------------------------------------------

/// [MQTT-3.3.4-7] / [MQTT-4.9.0-2]: the client never has more unacknowledged
/// QoS 1/2 publishes out than the server's Receive Maximum;
/// [MQTT-3.3.4-8]: other packets are not held back meanwhile.
#[test]
fn mqtt_3_3_4_7_the_client_never_exceeds_the_server_receive_maximum() {
    let cfg = ServerConfig {
        limits: limits(|l| l.receive_maximum = 3),
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(client_config(V5), cfg, Broker::accept_only());
    for i in 0..6 {
        let q = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        p.client
            .publish(p.now, msg("t", &i.to_string(), q))
            .unwrap();
    }
    p.client
        .subscribe(
            p.now,
            vec![(filter("x"), SubscriptionOptions::default())],
            None,
        )
        .unwrap();
    p.exchange();
    assert_eq!(outstanding(&p.c2s, &p.s2c), 3);
    assert!(
        matches!(p.c2s.last(), Some(Packet::Subscribe(_))),
        "not held back"
    );
    // Answer one at a time: each answer lets exactly one more out.
    for round in 0..6 {
        let id = p
            .server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Publish { id, .. } => *id,
                _ => None,
            })
            .nth(round)
            .expect("the next publish arrived");
        p.server.ack(id, ReasonCode::SUCCESS).unwrap();
        p.exchange();
        assert!(outstanding(&p.c2s, &p.s2c) <= 3);
    }
    assert_eq!(p.server_messages().len(), 6);
    assert_eq!(outstanding(&p.c2s, &p.s2c), 0);
}

/// [MQTT-3.3.4-9]: the server never has more unacknowledged QoS 1/2 publishes
/// out than the client's Receive Maximum.
#[test]
fn mqtt_3_3_4_9_the_server_never_exceeds_the_client_receive_maximum() {
    let mut cfg = client_config(V5);
    cfg.limits.receive_maximum = 2;
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    for i in 0..5 {
        p.server
            .deliver(
                p.now,
                msg("t", &i.to_string(), QoS::ExactlyOnce),
                DeliveryOptions::new(QoS::ExactlyOnce),
            )
            .unwrap();
    }
    let mut max = 0;
    while p.step_s2c() | p.step_c2s() {
        let n = outstanding(&p.s2c, &p.c2s);
        assert!(n <= 2, "{n} in flight");
        max = max.max(n);
    }
    assert_eq!(max, 2);
    assert_eq!(p.client_messages().len(), 5);
}

/// Section 3.3.4: a peer that has more unacknowledged QoS 1/2 publishes out
/// than our Receive Maximum is disconnected with 0x93, on either side.
#[test]
fn exceeding_our_receive_maximum_is_disconnected_with_0x93() {
    let cfg = ServerConfig {
        limits: limits(|l| l.receive_maximum = 2),
        ..ServerConfig::default()
    };
    let mut server = server_with(cfg, |_| {});
    feed(
        &mut server,
        T0,
        V5,
        &[publish1("t", "1", 1), publish2("t", "2", 2)],
    );
    assert_eq!(events(&mut server).len(), 2);
    // One answered frees one slot; the QoS 2 one counts until PUBREL.
    server.ack(pid(1), ReasonCode::SUCCESS).unwrap();
    server.ack(pid(2), ReasonCode::SUCCESS).unwrap();
    let _ = transmit(&mut server, T0);
    feed(&mut server, T0, V5, &[publish1("t", "3", 3)]);
    assert_eq!(events(&mut server).len(), 1);
    feed(&mut server, T0, V5, &[publish1("t", "4", 4)]);
    let close = assert_server_violation(&mut server, T0, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
    assert_eq!(close.violation, Some(Violation::ReceiveMaximumExceeded));

    let mut cfg = client_config(V5);
    cfg.limits.receive_maximum = 2;
    let mut client = connected_client(cfg, connack_ok());
    feed(
        &mut client,
        T0,
        V5,
        &[publish2("t", "1", 1), publish2("t", "2", 2)],
    );
    assert_eq!(sent(&mut client, T0, V5), vec![pubrec(1), pubrec(2)]);
    feed(&mut client, T0, V5, &[publish2("t", "3", 3)]);
    assert_client_violation(&mut client, T0, ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
}

// ----- topic aliases -------------------------------------------------------------

fn with_alias(t: Option<&str>, alias: u16, payload: &str) -> Packet {
    let mut p = publish(t.unwrap_or("unused"), payload, QosPid::AtMostOnce, false);
    if let Packet::Publish(x) = &mut p {
        if t.is_none() {
            x.topic = None;
        }
        x.props.topic_alias = NonZeroU16::new(alias);
    }
    p
}

/// [MQTT-3.3.2-12]: the server accepts every alias from 1 to the Topic Alias
/// Maximum it announced, set with a topic and then used alone; the events
/// carry the topic, never the alias.
#[test]
fn mqtt_3_3_2_12_the_server_resolves_aliases_up_to_its_maximum() {
    let mut server = v5_server(); // announces 16
    feed(
        &mut server,
        T0,
        V5,
        &[
            with_alias(Some("a/b"), 16, "1"),
            with_alias(None, 16, "2"),
            with_alias(Some("c"), 1, "3"),
            with_alias(None, 1, "4"),
            with_alias(Some("d"), 16, "5"),
            with_alias(None, 16, "6"),
        ],
    );
    let topics: Vec<String> = events(&mut server)
        .iter()
        .map(|e| match e {
            ServerEvent::Publish { msg, .. } => msg.topic.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(topics, ["a/b", "a/b", "c", "c", "d", "d"]);
}

/// [MQTT-3.3.2-10]: the client accepts every alias up to its own maximum.
#[test]
fn mqtt_3_3_2_10_the_client_resolves_aliases_up_to_its_maximum() {
    let mut cfg = client_config(V5);
    cfg.limits.topic_alias_maximum = 2;
    let mut client = connected_client(cfg, connack_ok());
    feed(
        &mut client,
        T0,
        V5,
        &[with_alias(Some("x/y"), 2, "1"), with_alias(None, 2, "2")],
    );
    let topics: Vec<String> = events(&mut client)
        .iter()
        .map(|e| match e {
            ClientEvent::Message { msg, .. } => msg.topic.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(topics, ["x/y", "x/y"]);
}

/// Section 3.3.2.3.4: an alias above the maximum we announced is disconnected
/// with 0x94 (Topic Alias invalid), on either side; an alias that was never
/// set is a Protocol Error (0x82).
#[test]
fn bad_aliases_are_0x94_above_the_maximum_and_0x82_when_never_set() {
    let mut server = v5_server();
    feed(&mut server, T0, V5, &[with_alias(Some("a"), 17, "x")]);
    let close = assert_server_violation(&mut server, T0, ReasonCode::TOPIC_ALIAS_INVALID);
    assert_eq!(close.violation, Some(Violation::TopicAliasInvalid(17)));

    let cfg = ServerConfig {
        limits: limits(|l| l.topic_alias_maximum = 0),
        ..ServerConfig::default()
    };
    let mut server = server_with(cfg, |_| {});
    feed(&mut server, T0, V5, &[with_alias(Some("a"), 1, "x")]);
    assert_server_violation(&mut server, T0, ReasonCode::TOPIC_ALIAS_INVALID);

    let mut server = v5_server();
    feed(&mut server, T0, V5, &[with_alias(None, 3, "x")]);
    let close = assert_server_violation(&mut server, T0, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(close.violation, Some(Violation::TopicAliasUnknown(3)));

    let mut cfg = client_config(V5);
    cfg.limits.topic_alias_maximum = 2;
    let mut client = connected_client(cfg, connack_ok());
    feed(&mut client, T0, V5, &[with_alias(Some("a"), 3, "x")]);
    assert_client_violation(&mut client, T0, ReasonCode::TOPIC_ALIAS_INVALID);
    let mut client = v5_client();
    feed(&mut client, T0, V5, &[with_alias(None, 1, "x")]);
    assert_client_violation(&mut client, T0, ReasonCode::PROTOCOL_ERROR);
}

/// [MQTT-3.3.2-11] / [MQTT-3.1.2-26]: the server's aliases stay within the
/// client's Topic Alias Maximum (least recently used topics giving way), and
/// the client resolves them all; [MQTT-3.1.2-27]: none when it announced 0.
#[test]
fn mqtt_3_3_2_11_the_server_sends_aliases_within_the_client_maximum() {
    let mut cfg = client_config(V5);
    cfg.limits.topic_alias_maximum = 2;
    let server_cfg = ServerConfig {
        limits: limits(|l| l.outbound_topic_alias_maximum = 16),
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg.clone(), Broker::accept_only());
    for t in ["a", "a", "b", "c", "a", "c"] {
        p.server
            .deliver(
                p.now,
                msg(t, t, QoS::AtMostOnce),
                DeliveryOptions::new(QoS::AtMostOnce),
            )
            .unwrap();
    }
    p.exchange();
    let wire: Vec<(Option<String>, Option<u16>)> = p
        .s2c
        .iter()
        .map(|x| match x {
            Packet::Publish(x) => (
                x.topic.as_ref().map(|t| t.to_string()),
                x.props.topic_alias.map(NonZeroU16::get),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    let some = |t: &str| Some(t.to_string());
    assert_eq!(
        wire,
        [
            (some("a"), Some(1)),
            (None, Some(1)),
            (some("b"), Some(2)),
            (some("c"), Some(1)), // "a" was least recently used
            (some("a"), Some(2)),
            (None, Some(1)),
        ]
    );
    let got: Vec<String> = p
        .client_messages()
        .iter()
        .map(|m| m.topic.to_string())
        .collect();
    assert_eq!(got, ["a", "a", "b", "c", "a", "c"]);

    // A client that announces no maximum gets no aliases.
    let mut p = Pair::connected_with(
        ClientConfig {
            limits: limits(|l| l.topic_alias_maximum = 0),
            ..client_config(V5)
        },
        server_cfg,
        Broker::accept_only(),
    );
    for t in ["a", "a"] {
        p.server
            .deliver(
                p.now,
                msg(t, t, QoS::AtMostOnce),
                DeliveryOptions::new(QoS::AtMostOnce),
            )
            .unwrap();
    }
    p.exchange();
    assert!(p.s2c.iter().all(
        |x| matches!(x, Packet::Publish(x) if x.props.topic_alias.is_none() && x.topic.is_some())
    ));
}

/// [MQTT-3.2.2-17] / [MQTT-3.3.2-9]: the client's aliases stay within the
/// server's Topic Alias Maximum; [MQTT-3.3.2-7]: no alias mapping is carried
/// to the next connection, so the topic is sent again.
#[test]
fn mqtt_3_2_2_17_the_client_sends_aliases_within_the_server_maximum_and_per_connection() {
    let mut cfg = client_config(V5);
    cfg.limits.outbound_topic_alias_maximum = 16;
    cfg.clean_start = false;
    let server_cfg = ServerConfig {
        limits: limits(|l| l.topic_alias_maximum = 1),
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg, Broker::accept_only());
    for t in ["a/b", "a/b", "c", "c"] {
        p.client
            .publish(p.now, msg(t, "x", QoS::AtMostOnce))
            .unwrap();
    }
    p.exchange();
    let aliases: Vec<_> = p
        .c2s
        .iter()
        .map(|x| match x {
            Packet::Publish(x) => (x.topic.is_some(), x.props.topic_alias.map(NonZeroU16::get)),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        aliases,
        [
            (true, Some(1)),
            (false, Some(1)),
            (true, Some(1)),
            (false, Some(1))
        ]
    );
    let got: Vec<String> = p
        .server_messages()
        .iter()
        .map(|m| m.topic.to_string())
        .collect();
    assert_eq!(got, ["a/b", "a/b", "c", "c"]);
    p.reconnect();
    p.exchange();
    p.clear();
    p.client
        .publish(p.now, msg("c", "x", QoS::AtMostOnce))
        .unwrap();
    p.exchange();
    assert!(
        matches!(&p.c2s[..], [Packet::Publish(x)] if x.topic.is_some()),
        "the new connection sets the alias again: {:?}",
        p.c2s
    );
    assert_eq!(p.server_messages()[0].topic, topic("c"));
}

// ----- maximum packet size -------------------------------------------------------

/// [MQTT-3.1.2-24] / [MQTT-3.1.2-25]: a message larger than the client's
/// Maximum Packet Size is not sent: `deliver` reports it as too large, and
/// nothing is queued, sent, or given an identifier.
#[test]
fn mqtt_3_1_2_24_and_25_a_delivery_over_the_client_maximum_is_not_sent() {
    let mut cfg = client_config(V5);
    cfg.limits.max_packet_size = 100;
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    let big = "x".repeat(100);
    let r = p.server.deliver(
        p.now,
        msg("t", &big, QoS::AtLeastOnce),
        DeliveryOptions::new(QoS::AtLeastOnce),
    );
    assert!(
        matches!(r, Err(DeliverError::TooLarge { max: 100, len }) if len > 100),
        "{r:?}"
    );
    let small = p
        .server
        .deliver(
            p.now,
            msg("t", "ok", QoS::AtLeastOnce),
            DeliveryOptions::new(QoS::AtLeastOnce),
        )
        .unwrap()
        .unwrap();
    assert_eq!(small.get(), 1, "the refused message took no identifier");
    p.exchange();
    assert_eq!(
        p.s2c,
        vec![publish("t", "ok", QosPid::AtLeastOnce(small), false)]
    );
    assert_eq!(p.client_messages().len(), 1);
}

/// [MQTT-3.2.2-15]: the client sends nothing larger than the server's Maximum
/// Packet Size: such a publish or subscribe is refused locally.
#[test]
fn mqtt_3_2_2_15_the_client_refuses_packets_over_the_server_maximum() {
    let cfg = ServerConfig {
        limits: limits(|l| l.max_packet_size = 64),
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(client_config(V5), cfg, Broker::accept_only());
    let r = p
        .client
        .publish(p.now, msg("t", &"y".repeat(64), QoS::AtMostOnce));
    assert!(
        matches!(r, Err(UsageError::PacketTooLarge { max: 64, .. })),
        "{r:?}"
    );
    let long = "f/".repeat(40);
    let r = p.client.subscribe(
        p.now,
        vec![(filter(&format!("{long}x")), SubscriptionOptions::default())],
        None,
    );
    assert!(
        matches!(r, Err(UsageError::PacketTooLarge { max: 64, .. })),
        "{r:?}"
    );
    p.exchange();
    assert!(p.c2s.is_empty());
    assert!(p.server.is_connected());
}

/// Section 3.1.2.11.4 / 3.2.2.3.6: a packet over our Maximum Packet Size is
/// refused from its fixed header alone, before its body is buffered, with
/// DISCONNECT 0x95, on either side.
#[test]
fn a_packet_over_our_maximum_is_refused_from_its_header_with_0x95() {
    let cfg = ServerConfig {
        limits: limits(|l| l.max_packet_size = 100),
        ..ServerConfig::default()
    };
    let mut server = server_with(cfg, |_| {});
    let whole = encode(
        V5,
        &[publish("t", &"z".repeat(200), QosPid::AtMostOnce, false)],
    );
    // The fixed header alone: type byte and a two-byte remaining length.
    let mut head = BytesMut::from(&whole[..3]);
    server.handle_read(T0, &mut head);
    let close = assert_server_violation(&mut server, T0, ReasonCode::PACKET_TOO_LARGE);
    assert!(matches!(
        close.violation,
        Some(Violation::Decode(DecodeError::PacketTooLarge {
            max: 100,
            ..
        }))
    ));

    let mut cfg = client_config(V5);
    cfg.limits.max_packet_size = 100;
    let mut client = connected_client(cfg, connack_ok());
    let mut head = BytesMut::from(&whole[..3]);
    client.handle_read(T0, &mut head);
    assert_client_violation(&mut client, T0, ReasonCode::PACKET_TOO_LARGE);
}

/// [MQTT-3.2.2-19] / [MQTT-3.2.2-20]: the server leaves out the Reason String
/// and User Properties of CONNACK when they would take it over the client's
/// Maximum Packet Size; the CONNACK itself still goes out.
#[test]
fn mqtt_3_2_2_19_and_20_connack_diagnostics_are_dropped_over_the_client_maximum() {
    let mut cfg = client_config(V5);
    cfg.limits.max_packet_size = 64;
    let mut broker = Broker::accept_only();
    broker.connack.reason_string = Some(s(&"r".repeat(80)));
    broker.connack.user_properties = vec![(s("k"), s(&"v".repeat(80)))];
    let mut p = Pair::new(cfg, ServerConfig::default());
    p.broker = broker;
    p.exchange();
    let [Packet::ConnAck(ack)] = p.s2c.as_slice() else {
        panic!("{:?}", p.s2c)
    };
    assert_eq!(ack.props.reason_string, None);
    assert!(ack.props.user_properties.is_empty());
    assert_eq!(ack.reason, ReasonCode::SUCCESS);
    assert!(p.client.is_connected());
}

// ----- message expiry ------------------------------------------------------------

/// [MQTT-3.3.2-6]: a forwarded message carries its remaining expiry interval:
/// the received value minus the time it waited in the server.
#[test]
fn mqtt_3_3_2_6_the_remaining_expiry_interval_is_sent() {
    let mut cfg = client_config(V5);
    cfg.keep_alive = 0;
    let server_cfg = ServerConfig {
        limits: limits(|l| l.max_inflight = 1),
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg, Broker::accept_only());
    p.server
        .deliver(
            p.now,
            msg("t", "first", QoS::AtLeastOnce),
            DeliveryOptions::new(QoS::AtLeastOnce),
        )
        .unwrap();
    let mut m = msg("t", "second", QoS::AtLeastOnce);
    m.props.expires_at = Some(at(10_000));
    p.server
        .deliver(p.now, m, DeliveryOptions::new(QoS::AtLeastOnce))
        .unwrap();
    p.now = at(3_000);
    p.exchange();
    let expiry: Vec<Option<u32>> = p
        .s2c
        .iter()
        .filter_map(|x| match x {
            Packet::Publish(x) => Some(x.props.message_expiry_interval),
            _ => None,
        })
        .collect();
    assert_eq!(expiry, [None, Some(7)]);
    assert_eq!(p.client_messages()[1].props.expires_at, Some(at(10_000)));
    // A received interval becomes an absolute deadline.
    let mut server = v5_server();
    let mut x = publish("t", "x", QosPid::AtMostOnce, false);
    if let Packet::Publish(x) = &mut x {
        x.props.message_expiry_interval = Some(5);
    }
    feed(&mut server, at(2_000), V5, &[x]);
    let evs = events(&mut server);
    assert!(
        matches!(&evs[..], [ServerEvent::Publish { msg, .. }] if msg.props.expires_at == Some(at(7_000)))
    );
}

/// [MQTT-3.3.2-5]: a message whose expiry passes before it could be sent is
/// dropped: from the queue behind the window, from the offline queue of a
/// session, and at once when already expired.
#[test]
fn mqtt_3_3_2_5_an_expired_queued_message_is_dropped() {
    let mut cfg = client_config(V5);
    cfg.keep_alive = 0;
    cfg.clean_start = false;
    let server_cfg = ServerConfig {
        limits: limits(|l| l.max_inflight = 1),
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg, Broker::accept_only());
    p.server
        .deliver(
            p.now,
            msg("t", "first", QoS::AtLeastOnce),
            DeliveryOptions::new(QoS::AtLeastOnce),
        )
        .unwrap();
    let mut m = msg("t", "stale", QoS::AtLeastOnce);
    m.props.expires_at = Some(at(10_000));
    p.server
        .deliver(p.now, m.clone(), DeliveryOptions::new(QoS::AtLeastOnce))
        .unwrap();
    p.now = at(10_000);
    assert_eq!(
        p.server
            .deliver(p.now, m.clone(), DeliveryOptions::new(QoS::AtLeastOnce)),
        Err(DeliverError::Expired)
    );
    p.exchange();
    let payloads: Vec<_> = p
        .client_messages()
        .iter()
        .map(|m| m.payload.clone())
        .collect();
    assert_eq!(payloads, [Bytes::from("first")]);
    assert_eq!(p.server.session().unwrap().queued(), 0);
    assert_eq!(p.server.session().unwrap().inflight(), 0);

    // Queued while the client was away, expired by the time it returns.
    p.reconnect();
    let session = p.broker.session.as_mut().unwrap();
    m.props.expires_at = Some(at(15_000));
    session
        .enqueue(m.clone(), DeliveryOptions::new(QoS::AtLeastOnce))
        .unwrap();
    m.qos = QoS::AtMostOnce;
    session
        .enqueue(m, DeliveryOptions::new(QoS::AtMostOnce))
        .unwrap();
    session
        .enqueue(
            msg("t", "fresh", QoS::AtLeastOnce),
            DeliveryOptions::new(QoS::AtLeastOnce),
        )
        .unwrap();
    p.now = at(20_000);
    p.clear();
    p.exchange();
    let payloads: Vec<_> = p
        .client_messages()
        .iter()
        .map(|m| m.payload.clone())
        .collect();
    assert_eq!(payloads, [Bytes::from("fresh")]);
}

// ----- session expiry ------------------------------------------------------------

/// Section 3.14.2.2.2: a DISCONNECT may not set a session expiry when CONNECT
/// had none (0): that is a Protocol Error (0x82); otherwise the new value is
/// in force.
#[test]
fn a_disconnect_cannot_set_a_session_expiry_after_zero() {
    let mut d = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    d.props.session_expiry_interval = Some(30);
    let mut server = server_with(ServerConfig::default(), |c| c.will = Some(will(0)));
    feed(&mut server, T0, V5, &[Packet::Disconnect(d.clone())]);
    let close = assert_server_violation(&mut server, T0, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(close.violation, Some(Violation::SessionExpiryAfterZero));
    assert!(close.will.is_some(), "a protocol error leaves the will due");

    let mut server = server_with(ServerConfig::default(), |c| {
        c.props.session_expiry_interval = Some(10)
    });
    assert_eq!(server.session_expiry_interval(), 10);
    feed(&mut server, T0, V5, &[Packet::Disconnect(d)]);
    assert!(transmit(&mut server, T0).is_empty());
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!((close.initiator, close.violation), (Initiator::Peer, None));
    assert_eq!(server.session_expiry_interval(), 30);
}

/// Section 3.2.2.3.2: the server may impose its own session expiry in CONNACK.
#[test]
fn the_server_may_impose_a_session_expiry_in_connack() {
    let mut c = connect_packet(V5);
    c.props.session_expiry_interval = Some(3_600);
    let mut ack = ConnAckProps::default();
    ack.session_expiry_interval = Some(60);
    let server = accepted_server(ServerConfig::default(), c, None, ack);
    assert_eq!(server.session_expiry_interval(), 60);
}

// ----- properties that travel with the message ---------------------------------------

fn rich_message() -> Message {
    let mut m = msg("req/1", "{\"q\":1}", QoS::AtLeastOnce);
    m.props.payload_format_indicator = Some(PayloadFormat::Utf8);
    m.props.content_type = Some(s("application/json"));
    m.props.response_topic = Some(topic("resp/c1"));
    m.props.correlation_data = Some(Bytes::from_static(&[0, 1, 2, 0xFF]));
    m.props.user_properties = vec![(s("b"), s("2")), (s("a"), s("1")), (s("b"), s("0"))];
    m
}

/// [MQTT-3.3.2-4] / [MQTT-3.3.2-15] / [MQTT-3.3.2-16] / [MQTT-3.3.2-17] /
/// [MQTT-3.3.2-18] / [MQTT-3.3.2-20]: payload format, response topic,
/// correlation data, user properties (in order) and content type travel from
/// publisher to server to subscriber unaltered.
#[test]
fn mqtt_3_3_2_4_to_20_message_properties_are_forwarded_unaltered() {
    let mut p = Pair::connected_with(client_config(V5), ServerConfig::default(), Broker::full());
    p.client
        .subscribe(
            p.now,
            vec![(filter("req/+"), SubscriptionOptions::new(QoS::AtLeastOnce))],
            None,
        )
        .unwrap();
    p.exchange();
    let sent_msg = rich_message();
    p.client.publish(p.now, sent_msg.clone()).unwrap();
    p.exchange();
    assert_eq!(p.server_messages(), vec![&sent_msg]);
    assert_eq!(p.client_messages(), vec![&sent_msg]);
    // The same message at 3.1.1 loses the 5.0 properties, and nothing else.
    let mut p = Pair::connected_with(
        client_config(ProtocolVersion::V311),
        ServerConfig::default(),
        Broker::accept_only(),
    );
    p.client.publish(p.now, rich_message()).unwrap();
    p.exchange();
    let got = p.server_messages()[0];
    assert_eq!(got.props, Default::default());
    assert_eq!(
        (&got.topic, &got.payload),
        (&sent_msg.topic, &sent_msg.payload)
    );
}

/// [MQTT-3.3.4-3]: the subscription identifiers the server names reach the
/// subscriber with the message.
#[test]
fn mqtt_3_3_4_3_subscription_identifiers_reach_the_subscriber() {
    let mut p = Pair::connected(V5);
    let sid = SubscriptionId::new(7).unwrap();
    p.client
        .subscribe(
            p.now,
            vec![(filter("a"), SubscriptionOptions::default())],
            Some(sid),
        )
        .unwrap();
    p.exchange();
    assert!(p.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::Subscribe { subscription_identifier: Some(x), .. } if *x == sid
    )));
    let opts = DeliveryOptions {
        qos: QoS::AtMostOnce,
        retain: false,
        subscription_identifiers: vec![sid, SubscriptionId::new(9).unwrap()],
    };
    p.server
        .deliver(p.now, msg("a", "x", QoS::AtMostOnce), opts)
        .unwrap();
    p.exchange();
    let ids: Vec<u32> = p
        .client_events
        .iter()
        .find_map(|e| match e {
            ClientEvent::Message {
                subscription_identifiers,
                ..
            } => Some(subscription_identifiers.iter().map(|i| i.get()).collect()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ids, [7, 9]);
}

// ----- enhanced authentication ---------------------------------------------------

fn auth_props(data: &str) -> AuthProps {
    let mut props = AuthProps::default();
    props.authentication_method = Some(s("SCRAM-SHA-1"));
    props.authentication_data = Some(Bytes::copy_from_slice(data.as_bytes()));
    props
}

/// [MQTT-4.12.0-2] / [MQTT-4.12.0-3] / [MQTT-4.12.0-5]: enhanced
/// authentication runs as events on both sides: the server's AUTH 0x18 reaches
/// the client, the client's answering AUTH 0x18 reaches the server before it
/// accepts, and CONNACK closes the exchange. Reason strings travel with the
/// AUTH packets.
#[test]
fn mqtt_4_12_0_2_and_3_enhanced_authentication_runs_as_events() {
    let mut cfg = client_config(V5);
    cfg.authentication = Some((s("SCRAM-SHA-1"), Some(Bytes::from_static(b"client-first"))));
    let mut p = Pair::new(cfg, ServerConfig::default());
    p.broker = Broker::passive();
    p.exchange();
    let evs = p.take_server_events();
    let [ServerEvent::Connect(c)] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert_eq!(
        c.props.authentication_method.as_ref().unwrap(),
        "SCRAM-SHA-1"
    );
    assert_eq!(
        c.props.authentication_data.as_deref(),
        Some(&b"client-first"[..])
    );

    let mut challenge = auth_props("server-first");
    challenge.reason_string = Some(s("more, please"));
    p.server
        .auth(
            p.now,
            ReasonCode::CONTINUE_AUTHENTICATION,
            challenge.clone(),
        )
        .unwrap();
    p.exchange();
    let evs = p.take_client_events();
    let [ClientEvent::Auth { reason, props }] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert_eq!(*reason, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(props, &challenge);

    p.client
        .auth(
            p.now,
            ReasonCode::CONTINUE_AUTHENTICATION,
            auth_props("client-final"),
        )
        .unwrap();
    p.exchange();
    let evs = p.take_server_events();
    let [ServerEvent::Auth { reason, props }] = evs.as_slice() else {
        panic!("the client's AUTH must reach the application before CONNACK: {evs:?}")
    };
    assert_eq!(*reason, ReasonCode::CONTINUE_AUTHENTICATION);
    assert_eq!(props, &auth_props("client-final"));

    let mut ack = ConnAckProps::default();
    ack.authentication_method = Some(s("SCRAM-SHA-1"));
    ack.authentication_data = Some(Bytes::from_static(b"server-final"));
    p.server.accept(p.now, None, ack).unwrap();
    p.exchange();
    assert!(p.client.is_connected());
    assert!(matches!(
        p.s2c.as_slice(),
        [Packet::Auth(_), Packet::ConnAck(c)] if c.reason == ReasonCode::SUCCESS
    ));
    assert!(matches!(
        p.c2s.as_slice(),
        [Packet::Connect(_), Packet::Auth(_)]
    ));
}

/// [MQTT-4.12.0-6] / [MQTT-4.12.0-7]: AUTH is only for a connection whose
/// CONNECT named an authentication method; otherwise it ends the connection
/// (server: 0x8C Bad authentication method; client: 0x82 Protocol Error).
#[test]
fn mqtt_4_12_0_7_auth_without_an_authentication_method_ends_the_connection() {
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        props: auth_props("x"),
    });
    let mut server = v5_server();
    feed(&mut server, T0, V5, core::slice::from_ref(&auth));
    let close = assert_server_violation(&mut server, T0, ReasonCode::BAD_AUTHENTICATION_METHOD);
    assert_eq!(close.violation, Some(Violation::BadAuthenticationMethod));

    let mut client = v5_client();
    feed(&mut client, T0, V5, &[auth]);
    assert_client_violation(&mut client, T0, ReasonCode::PROTOCOL_ERROR);
    // AUTH does not exist before 5.0.
    let mut p = Pair::connected(ProtocolVersion::V311);
    assert_eq!(
        p.client
            .auth(p.now, ReasonCode::CONTINUE_AUTHENTICATION, auth_props("x")),
        Err(UsageError::NotInVersion(ProtocolVersion::V311))
    );
}

/// [MQTT-4.12.0-5]: every AUTH, and the successful CONNACK, name the method
/// of the CONNECT; another one ends the connection with 0x8C on either side.
#[test]
fn mqtt_4_12_0_5_auth_with_another_method_ends_the_connection() {
    let mut other = auth_props("x");
    other.authentication_method = Some(s("PLAIN"));
    let start = |p: &mut Pair| {
        p.broker = Broker::passive();
        p.exchange();
        p.clear();
    };
    let mut cfg = client_config(V5);
    cfg.authentication = Some((s("SCRAM-SHA-1"), None));

    // Server side: the client's AUTH names PLAIN.
    let mut p = Pair::new(cfg.clone(), ServerConfig::default());
    start(&mut p);
    feed(
        &mut p.server,
        T0,
        V5,
        &[Packet::Auth(Auth {
            reason: ReasonCode::CONTINUE_AUTHENTICATION,
            props: other.clone(),
        })],
    );
    let evs = events(&mut p.server);
    assert_eq!(
        server_close(&evs).violation,
        Some(Violation::BadAuthenticationMethod)
    );

    // Client side: the server's AUTH names PLAIN.
    let mut p = Pair::new(cfg.clone(), ServerConfig::default());
    start(&mut p);
    p.server
        .auth(p.now, ReasonCode::CONTINUE_AUTHENTICATION, other)
        .unwrap();
    p.exchange();
    let close = client_close(&p.client_events);
    assert_eq!(close.violation, Some(Violation::BadAuthenticationMethod));
    assert_eq!(close.reason, ReasonCode::BAD_AUTHENTICATION_METHOD);

    // Client side: a successful CONNACK without the method.
    let mut p = Pair::new(cfg, ServerConfig::default());
    start(&mut p);
    p.server
        .accept(p.now, None, ConnAckProps::default())
        .unwrap();
    p.exchange();
    assert!(!p.client.is_connected());
    assert_eq!(
        client_close(&p.client_events).violation,
        Some(Violation::BadAuthenticationMethod)
    );
}

// ----- the will ------------------------------------------------------------------

/// [MQTT-3.1.2-8]: the will, with its Will Delay Interval, is due when the
/// connection ends through keep-alive expiry, a protocol error, the network
/// failing, or DISCONNECT with 0x04 (Disconnect with Will Message). Its
/// message expiry counts from the moment it is published (section 3.1.3.2).
#[test]
fn mqtt_3_1_2_8_the_will_and_its_delay_are_due_unless_the_client_disconnects_normally() {
    let endings: [(&str, Ending); 4] = [
        ("keep alive", |s| s.handle_timeout(at(15_000))),
        ("protocol error", |s| {
            feed(
                s,
                at(15_000),
                V5,
                &[Packet::SubAck(SubAck {
                    id: pid(1),
                    props: Default::default(),
                    reasons: vec![ReasonCode::SUCCESS],
                })],
            )
        }),
        ("network", |s| s.handle_eof(at(15_000))),
        ("DISCONNECT 0x04", |s| {
            feed(
                s,
                at(15_000),
                V5,
                &[disconnect(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE)],
            )
        }),
    ];
    for (what, end) in endings {
        let mut server = server_with(ServerConfig::default(), |c| {
            c.keep_alive = 10;
            c.will = Some(will(30));
        });
        end(&mut server);
        let evs = events(&mut server);
        let close = server_close(&evs);
        let Some((m, delay)) = &close.will else {
            panic!("{what}: the will must be due: {close:?}")
        };
        assert_eq!(*delay, secs(30), "{what}");
        assert_eq!(m.topic, topic("clients/c1/state"));
        assert!(m.retain);
        assert_eq!(m.qos, QoS::AtLeastOnce);
        // Published at 15 s + 30 s, expiring 60 s after that.
        assert_eq!(m.props.expires_at, Some(at(105_000)), "{what}");
    }
}

/// [MQTT-3.14.4-3] / [MQTT-3.1.2-10]: DISCONNECT with 0x00 discards the will.
#[test]
fn mqtt_3_14_4_3_a_normal_disconnect_discards_the_will() {
    let mut cfg = client_config(V5);
    cfg.will = Some(will(5));
    let mut p = Pair::connected_with(cfg.clone(), ServerConfig::default(), Broker::accept_only());
    p.client.disconnect(p.now, ReasonCode::NORMAL_DISCONNECTION);
    p.exchange();
    assert_eq!(p.c2s, vec![disconnect(ReasonCode::NORMAL_DISCONNECTION)]);
    let close = server_close(&p.server_events);
    assert_eq!((close.initiator, &close.will), (Initiator::Peer, &None));
    // The client asks for its will with 0x04.
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    p.client
        .disconnect(p.now, ReasonCode::DISCONNECT_WITH_WILL_MESSAGE);
    p.exchange();
    assert!(server_close(&p.server_events).will.is_some());
}

// ----- every violation, its reason code, and Closed last ------------------------------

/// Section 4.13: every protocol violation of the client ends the connection
/// with a DISCONNECT carrying the violation's reason code, `Closed` as the
/// last event with the same reason, and the will due.
#[test]
fn every_client_violation_ends_with_a_disconnect_carrying_its_reason_code() {
    let publish_with = |f: fn(&mut mqtt_session::mqtt_codec::Publish)| {
        let mut p = publish("t", "x", QosPid::AtMostOnce, false);
        if let Packet::Publish(x) = &mut p {
            f(x);
        }
        encode(V5, &[p])
    };
    let mut expiry_after_zero = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    expiry_after_zero.props.session_expiry_interval = Some(1);
    let cases: Vec<(&str, ServerConfig, BytesMut, ReasonCode)> = vec![
        (
            "second CONNECT",
            ServerConfig::default(),
            encode(V5, &[connect_with_keep_alive(V5, 60)]),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "SUBACK from a client",
            ServerConfig::default(),
            encode(
                V5,
                &[Packet::SubAck(SubAck {
                    id: pid(1),
                    props: Default::default(),
                    reasons: vec![ReasonCode::SUCCESS],
                })],
            ),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "PUBREL with reserved flags",
            ServerConfig::default(),
            BytesMut::from(&[0x60, 0x02, 0x00, 0x01][..]),
            ReasonCode::MALFORMED_PACKET,
        ),
        (
            "QoS 3",
            ServerConfig::default(),
            BytesMut::from(&[0x36, 0x06, 0x00, 0x01, b'a', 0x00, 0x01, 0x00][..]),
            ReasonCode::MALFORMED_PACKET,
        ),
        (
            "wildcard in a topic name",
            ServerConfig::default(),
            BytesMut::from(&[0x30, 0x04, 0x00, 0x01, b'#', 0x00][..]),
            ReasonCode::TOPIC_NAME_INVALID,
        ),
        (
            "payload not UTF-8 as announced",
            ServerConfig::default(),
            publish_with(|x| {
                x.props.payload_format_indicator = Some(PayloadFormat::Utf8);
                x.payload = Bytes::from_static(&[0xFF, 0xFE]);
            }),
            ReasonCode::PAYLOAD_FORMAT_INVALID,
        ),
        (
            "topic alias above the maximum",
            ServerConfig::default(),
            publish_with(|x| x.props.topic_alias = NonZeroU16::new(200)),
            ReasonCode::TOPIC_ALIAS_INVALID,
        ),
        (
            "topic alias never set",
            ServerConfig::default(),
            publish_with(|x| {
                x.topic = None;
                x.props.topic_alias = NonZeroU16::new(2);
            }),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "packet too large",
            ServerConfig {
                limits: limits(|l| l.max_packet_size = 80),
                ..ServerConfig::default()
            },
            publish_with(|x| x.payload = Bytes::from(vec![b'p'; 80])),
            ReasonCode::PACKET_TOO_LARGE,
        ),
        (
            "QoS above the maximum",
            ServerConfig {
                maximum_qos: QoS::AtMostOnce,
                ..ServerConfig::default()
            },
            encode(V5, &[publish1("t", "x", 1)]),
            ReasonCode::QOS_NOT_SUPPORTED,
        ),
        (
            "retain not available",
            ServerConfig {
                retain_available: false,
                ..ServerConfig::default()
            },
            publish_with(|x| x.retain = true),
            ReasonCode::RETAIN_NOT_SUPPORTED,
        ),
        (
            "receive maximum exceeded",
            ServerConfig {
                limits: limits(|l| l.receive_maximum = 1),
                ..ServerConfig::default()
            },
            encode(V5, &[publish1("t", "x", 1), publish1("t", "y", 2)]),
            ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
        ),
        (
            "session expiry set after zero",
            ServerConfig::default(),
            encode(V5, &[Packet::Disconnect(expiry_after_zero)]),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "AUTH without a method",
            ServerConfig::default(),
            encode(
                V5,
                &[Packet::Auth(Auth {
                    reason: ReasonCode::CONTINUE_AUTHENTICATION,
                    props: AuthProps::default(),
                })],
            ),
            ReasonCode::BAD_AUTHENTICATION_METHOD,
        ),
    ];
    for (what, cfg, mut bytes, reason) in cases {
        let mut server = server_with(cfg, |c| c.will = Some(will(0)));
        server.handle_read(at(1), &mut bytes);
        // The first packet of "receive maximum exceeded" is a legitimate one.
        let evs: Vec<ServerEvent> = events(&mut server);
        let out = sent(&mut server, at(1), V5);
        assert_eq!(out, vec![disconnect(reason)], "{what}");
        let close = server_close(&evs);
        assert_eq!(close.reason, reason, "{what}");
        assert_eq!(close.initiator, Initiator::Peer, "{what}");
        assert_eq!(close.violation.map(|v| v.reason()), Some(reason), "{what}");
        assert!(close.will.is_some(), "{what}: the will is due");
        assert!(server.is_closed(), "{what}");
        assert_eq!(server.poll_timeout(), None, "{what}");
    }
}

/// Section 4.13, client side: every protocol violation of the server ends the
/// client with a DISCONNECT carrying its reason code and `Closed` last.
#[test]
fn every_server_violation_ends_with_a_disconnect_carrying_its_reason_code() {
    let cases: Vec<(&str, BytesMut, ReasonCode)> = vec![
        (
            "SUBSCRIBE to a client",
            encode(V5, &[subscribe(1, "a", QoS::AtMostOnce)]),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "PINGREQ to a client",
            encode(V5, &[Packet::PingReq]),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "CONNECT to a client",
            encode(V5, &[connect_with_keep_alive(V5, 1)]),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "second CONNACK",
            encode(V5, &[Packet::ConnAck(Box::new(connack_ok()))]),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "SUBACK for nothing asked",
            encode(
                V5,
                &[Packet::SubAck(SubAck {
                    id: pid(9),
                    props: Default::default(),
                    reasons: vec![ReasonCode::SUCCESS],
                })],
            ),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "AUTH without a method",
            encode(
                V5,
                &[Packet::Auth(Auth {
                    reason: ReasonCode::CONTINUE_AUTHENTICATION,
                    props: AuthProps::default(),
                })],
            ),
            ReasonCode::PROTOCOL_ERROR,
        ),
        (
            "reserved flags",
            BytesMut::from(&[0x62 ^ 0x02, 0x02, 0x00, 0x01][..]),
            ReasonCode::MALFORMED_PACKET,
        ),
        (
            "truncated PUBACK",
            BytesMut::from(&[0x40, 0x01, 0x00][..]),
            ReasonCode::MALFORMED_PACKET,
        ),
        (
            "receive maximum exceeded",
            {
                let many: Vec<Packet> = (1..=101).map(|i| publish2("t", "x", i)).collect();
                encode(V5, &many)
            },
            ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
        ),
        (
            "alias above the maximum",
            encode(V5, &[with_alias(Some("t"), 17, "x")]),
            ReasonCode::TOPIC_ALIAS_INVALID,
        ),
        (
            "alias never set",
            encode(V5, &[with_alias(None, 1, "x")]),
            ReasonCode::PROTOCOL_ERROR,
        ),
    ];
    for (what, mut bytes, reason) in cases {
        let mut client = v5_client();
        client.handle_read(at(1), &mut bytes);
        let out = sent(&mut client, at(1), V5);
        assert_eq!(out.last(), Some(&disconnect(reason)), "{what}");
        assert_eq!(
            out.iter()
                .filter(|x| matches!(x, Packet::Disconnect(_)))
                .count(),
            1,
            "{what}"
        );
        let evs = events(&mut client);
        let close = client_close(&evs);
        assert_eq!(close.reason, reason, "{what}");
        assert_eq!(close.violation.map(|v| v.reason()), Some(reason), "{what}");
        assert!(client.is_closed(), "{what}");
        assert_eq!(client.poll_timeout(), None, "{what}");
    }
}

// ----- deadlines -----------------------------------------------------------------

/// After `handle_timeout(now)` every deadline lies after `now`, through a
/// whole 5.0 life: connect, server keep alive, pings, and the end.
#[test]
fn poll_timeout_lies_after_now_after_handle_timeout() {
    let mut cfg = client_config(V5);
    cfg.keep_alive = 3;
    cfg.ping_timeout = ms(700);
    let server_cfg = ServerConfig {
        max_keep_alive: Some(2),
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg, Broker::accept_only());
    // `advance` and `jump` assert the contract at every deadline they fire.
    p.advance(secs(30));
    assert!(p.client.is_connected());
    assert_eq!(p.c2s.iter().filter(|x| **x == Packet::PingReq).count(), 15);
    for step in [1, 999, 1] {
        p.jump(ms(step));
        assert!(p.client.is_connected());
    }
    // The network stalls past one and a half (server) keep alives.
    p.jump(secs(4));
    assert!(p.server.is_closed() && p.client.is_closed());
    assert_eq!(p.server.poll_timeout(), None);
    assert_eq!(p.client.poll_timeout(), None);
}

// [MQTT-3.1.2-25]: a PUBLISH that no longer fits the peer's Maximum Packet
// Size (smaller after a resumption) is treated as completed, not left in flight.
#[test]
fn mqtt_3_1_2_25_an_unsendable_resend_completes_and_frees_its_slot() {
    let mut cfg = client_config(V5);
    cfg.clean_start = false;
    cfg.session_expiry_interval = 60;
    let mut client = connected_client(cfg.clone(), connack_ok());
    let big = "x".repeat(500);
    let id = client
        .publish(T0, msg("t", &big, QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    assert!(matches!(
        sent(&mut client, T0, V5).as_slice(),
        [Packet::Publish(_)]
    ));
    client.handle_eof(T0);
    let session = client.detach();

    // The server that resumes the session now accepts at most 100 bytes.
    let mut client = Connection::<Client>::new(cfg, T0, session);
    let _ = sent(&mut client, T0, V5);
    let mut connack = ConnAck::new(true, ReasonCode::SUCCESS);
    connack.props.maximum_packet_size = core::num::NonZeroU32::new(100);
    feed(&mut client, T0, V5, &[Packet::ConnAck(Box::new(connack))]);
    let _ = events(&mut client);
    assert!(
        sent(&mut client, T0, V5).is_empty(),
        "nothing over 100 bytes goes out"
    );
    let evs = events(&mut client);
    assert!(
        matches!(evs.as_slice(), [ClientEvent::Published { id: done, reason, .. }] if *done == id && *reason == ReasonCode::PACKET_TOO_LARGE),
        "{evs:?}"
    );
    assert_eq!(client.session().unwrap().inflight(), 0);
}

/// [MQTT-3.2.2-21]: a server whose limit is below the keep alive a client
/// asks for (0, no limit, included) announces its own as Server Keep Alive,
/// and the client's stands otherwise; checked for every keep alive a client
/// can ask for, against limits at both ends of the range.
#[test]
fn mqtt_3_2_2_21_server_keep_alive_is_announced_for_every_keep_alive_above_the_limit() {
    for max in [1u16, 30, 3600, u16::MAX] {
        let cfg = ServerConfig {
            max_keep_alive: Some(max),
            ..ServerConfig::default()
        };
        for asked in 0..=u16::MAX {
            let mut server = Connection::<Server>::new(cfg.clone(), T0);
            let mut connect = connect_packet(V5);
            connect.keep_alive = asked;
            feed(&mut server, T0, V5, &[Packet::Connect(Box::new(connect))]);
            events(&mut server);
            server.accept(T0, None, ConnAckProps::default()).unwrap();
            let [Packet::ConnAck(ack)] = &sent(&mut server, T0, V5)[..] else {
                panic!("one CONNACK");
            };
            let expected = (asked == 0 || asked > max).then_some(max);
            assert_eq!(
                ack.props.server_keep_alive, expected,
                "max {max}, asked {asked}"
            );
            assert_eq!(server.keep_alive(), expected.unwrap_or(asked));
        }
    }
}

/// [MQTT-3.1.2-25] with outgoing topic aliases: a PUBLISH too large for the
/// peer (here a resend after a resumption whose server accepts less) is
/// discarded, and the alias it was to set is forgotten with it, so the next
/// message on that topic sets the alias again instead of using one the peer
/// never learnt (section 3.3.2.3.4).
#[test]
fn mqtt_3_1_2_25_a_discarded_publish_does_not_leave_its_alias_behind() {
    let mut cfg = client_config(V5);
    cfg.clean_start = false;
    cfg.session_expiry_interval = 60;
    cfg.limits.outbound_topic_alias_maximum = 16;
    let mut client = connected_client(cfg.clone(), connack_ok());
    let topic = "sensors/line-1/temp";
    client
        .publish(T0, msg(topic, &"x".repeat(500), QoS::AtLeastOnce))
        .unwrap();
    let _ = sent(&mut client, T0, V5);
    client.handle_eof(T0);
    let session = client.detach();

    // The server that resumes the session accepts at most 100 bytes and 4 aliases.
    let mut client = Connection::<Client>::new(cfg, T0, session);
    let _ = sent(&mut client, T0, V5);
    let mut connack = ConnAck::new(true, ReasonCode::SUCCESS);
    connack.props.maximum_packet_size = core::num::NonZeroU32::new(100);
    connack.props.topic_alias_maximum = Some(4);
    feed(&mut client, T0, V5, &[Packet::ConnAck(Box::new(connack))]);
    let _ = events(&mut client);
    for payload in ["small", "again"] {
        client
            .publish(T0, msg(topic, payload, QoS::AtMostOnce))
            .unwrap();
    }
    let wire: Vec<(Option<String>, Option<u16>)> = sent(&mut client, T0, V5)
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (
                p.topic.as_ref().map(|t| t.to_string()),
                p.props.topic_alias.map(NonZeroU16::get),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(wire, [(Some(topic.to_string()), Some(1)), (None, Some(1))]);
}
