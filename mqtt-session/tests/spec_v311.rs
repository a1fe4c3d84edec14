//! One test per normative statement of MQTT 3.1.1 (and the few places 3.1
//! differs) that the session implements. Test names carry the statement
//! number of the 3.1.1 specification; where the rule has no number the name
//! says what it shows and the comment gives the section.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use mqtt_session::mqtt_codec::{
    Ack, ConnAck, ConnAckProps, DecodeError, Disconnect, Packet, PacketType, ProtocolVersion, QoS,
    QosPid, ReasonCode, SubAck, SubscriptionOptions, Will, WillProps,
};
use mqtt_session::{
    Client, ClientEvent, Connection, DeliverError, DeliveryOptions, Initiator, Instant, Limits,
    Server, ServerConfig, ServerEvent, Session, UsageError, Violation,
};

use ProtocolVersion::{V31, V311};

const T0: Instant = Instant::ZERO;

/// A way for a connection to end, applied to a server.
type Ending = fn(&mut Connection<Server>);

fn will() -> Will {
    Will {
        topic: topic("clients/c1/state"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        props: WillProps::default(),
    }
}

/// A 3.1.1 server that accepted client "c1" with keep alive `keep_alive` and a will.
fn server_with_will(keep_alive: u16) -> Connection<Server> {
    let mut c = connect_packet(V311);
    c.keep_alive = keep_alive;
    c.will = Some(will());
    accepted_server(ServerConfig::default(), c, None, ConnAckProps::default())
}

fn v311_server() -> Connection<Server> {
    accepted_server(
        ServerConfig::default(),
        connect_packet(V311),
        None,
        ConnAckProps::default(),
    )
}

fn v311_client() -> Connection<Client> {
    connected_client(client_config(V311), connack_ok())
}

// ----- the handshake -------------------------------------------------------------

/// [MQTT-3.1.0-1]: the first packet from the client must be CONNECT; anything
/// else closes the connection, with no CONNACK and no DISCONNECT.
#[test]
fn mqtt_3_1_0_1_the_first_packet_from_the_client_must_be_connect() {
    for first in [
        Packet::PingReq,
        publish1("a", "x", 1),
        subscribe(1, "a", QoS::AtMostOnce),
    ] {
        let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
        feed(&mut server, T0, V311, core::slice::from_ref(&first));
        let evs = events(&mut server);
        let close = server_close(&evs);
        assert_eq!(evs.len(), 1, "{first:?} must produce no other event");
        assert_eq!(close.initiator, Initiator::Peer);
        assert!(matches!(
            close.violation,
            Some(Violation::Decode(DecodeError::ExpectedConnect(_)))
        ));
        assert_eq!(close.will, None);
        assert!(transmit(&mut server, T0).is_empty(), "nothing is sent");
        assert!(server.is_closed());
    }
}

/// [MQTT-3.1.0-2]: a second CONNECT is a protocol violation; the server
/// disconnects. 3.1.1 has no DISCONNECT from the server: the connection is
/// simply closed [MQTT-4.8.0-1].
#[test]
fn mqtt_3_1_0_2_a_second_connect_is_a_protocol_violation() {
    let mut server = v311_server();
    feed(
        &mut server,
        at(10),
        V311,
        &[connect_with_keep_alive(V311, 60)],
    );
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.initiator, Initiator::Peer);
    assert_eq!(
        close.violation,
        Some(Violation::UnexpectedPacket(PacketType::Connect))
    );
    assert_eq!(close.violation.unwrap().spec_ref(), "MQTT-3.1.0-2");
    assert_eq!(close.reason, ReasonCode::PROTOCOL_ERROR);
    assert!(transmit(&mut server, at(10)).is_empty());
    assert!(server.is_closed());
}

/// [MQTT-3.2.0-1]: the first packet from the server must be CONNACK; a
/// client that gets anything else closes, sending nothing (a 3.1.1 DISCONNECT
/// would tell the server to discard the will).
#[test]
fn mqtt_3_2_0_1_the_first_packet_from_the_server_must_be_connack() {
    for first in [
        publish("a", "x", QosPid::AtMostOnce, false),
        Packet::PingResp,
        puback(1),
    ] {
        let mut client = Connection::<Client>::new(client_config(V311), T0, None);
        let _ = transmit(&mut client, T0);
        feed(&mut client, T0, V311, core::slice::from_ref(&first));
        let evs = events(&mut client);
        let close = client_close(&evs);
        assert_eq!(evs.len(), 1, "no Connected, no Message for {first:?}");
        assert_eq!(
            close.violation,
            Some(Violation::UnexpectedPacket(first.packet_type()))
        );
        assert!(!client.is_connected());
        assert!(transmit(&mut client, T0).is_empty());
        assert!(client.is_closed());
    }
}

/// [MQTT-3.1.2-2]: an unsupported protocol level is answered with CONNACK
/// return code 1, and the connection is closed.
#[test]
fn mqtt_3_1_2_2_an_unsupported_protocol_level_gets_return_code_1() {
    let mut bytes = encode(V311, &[connect_with_keep_alive(V311, 60)]);
    // Fixed header (2 bytes), protocol name (6 bytes), then the level.
    assert_eq!(bytes[8], 4);
    bytes[8] = 6;
    let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
    server.handle_read(T0, &mut bytes);
    assert_eq!(&transmit(&mut server, T0)[..], &[0x20, 0x02, 0x00, 0x01]);
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(
        close.violation,
        Some(Violation::Decode(DecodeError::UnsupportedProtocolVersion(
            6
        )))
    );
    assert!(server.is_closed());
}

/// [MQTT-3.2.2-1]: a connection with Clean Session 1 is accepted with Session
/// Present 0, even when the application offers a stored session.
#[test]
fn mqtt_3_2_2_1_clean_session_is_accepted_with_session_present_0() {
    let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
    feed(&mut server, T0, V311, &[connect_with_keep_alive(V311, 60)]);
    let _ = events(&mut server);
    server
        .accept(T0, Some(Session::default()), ConnAckProps::default())
        .unwrap();
    assert_eq!(&transmit(&mut server, T0)[..], &[0x20, 0x02, 0x00, 0x00]);
}

/// [MQTT-3.2.2-2] / [MQTT-3.2.2-3]: with Clean Session 0, Session Present is 1
/// exactly when the server has session state for the client.
#[test]
fn mqtt_3_2_2_2_and_3_a_stored_session_sets_session_present() {
    for (stored, flag) in [(Some(Session::default()), 0x01), (None, 0x00)] {
        let mut c = connect_packet(V311);
        c.clean_start = false;
        let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
        feed(&mut server, T0, V311, &[Packet::Connect(Box::new(c))]);
        let _ = events(&mut server);
        server.accept(T0, stored, ConnAckProps::default()).unwrap();
        assert_eq!(&transmit(&mut server, T0)[..], &[0x20, 0x02, flag, 0x00]);
    }
}

/// [MQTT-3.2.2-4] / [MQTT-3.2.2-5]: a refusing CONNACK has Session Present 0
/// and the server closes the connection after it.
#[test]
fn mqtt_3_2_2_4_and_5_a_refusal_has_session_present_0_and_closes() {
    let mut c = connect_packet(V311);
    c.clean_start = false;
    let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
    feed(&mut server, T0, V311, &[Packet::Connect(Box::new(c))]);
    let _ = events(&mut server);
    server.reject(T0, ReasonCode::NOT_AUTHORIZED);
    // Return code 5: not authorized.
    assert_eq!(&transmit(&mut server, T0)[..], &[0x20, 0x02, 0x00, 0x05]);
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.initiator, Initiator::Local);
    assert_eq!(close.reason, ReasonCode::NOT_AUTHORIZED);
    assert!(server.is_closed());
}

/// [MQTT-3.2.2-6]: when no 3.1.1 return code fits the refusal, the server
/// closes without sending CONNACK.
#[test]
fn mqtt_3_2_2_6_a_refusal_without_a_return_code_closes_without_connack() {
    let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
    feed(&mut server, T0, V311, &[connect_with_keep_alive(V311, 60)]);
    let _ = events(&mut server);
    server.reject(T0, ReasonCode::QUOTA_EXCEEDED);
    assert!(transmit(&mut server, T0).is_empty());
    let evs = events(&mut server);
    assert_eq!(server_close(&evs).reason, ReasonCode::QUOTA_EXCEEDED);
    assert!(server.is_closed());
}

/// A client reads the refusal: CONNACK return code 4 ends the connection
/// with the matching reason code (section 3.2.2.3).
#[test]
fn a_refusing_connack_closes_the_client_with_its_reason() {
    let mut client = Connection::<Client>::new(client_config(V311), T0, None);
    let _ = transmit(&mut client, T0);
    let mut bytes = BytesMut::from(&[0x20, 0x02, 0x00, 0x04][..]);
    client.handle_read(T0, &mut bytes);
    let evs = events(&mut client);
    let close = client_close(&evs);
    assert_eq!(evs.len(), 1);
    assert_eq!(close.initiator, Initiator::Peer);
    assert_eq!(close.reason, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    assert!(client.is_closed());
}

/// [MQTT-3.1.4-5]: after refusing a CONNECT the server processes nothing the
/// client sent after it.
#[test]
fn mqtt_3_1_4_5_nothing_after_a_refused_connect_is_processed() {
    let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
    feed(
        &mut server,
        T0,
        V311,
        &[
            connect_with_keep_alive(V311, 60),
            subscribe(1, "a/#", QoS::AtLeastOnce),
            publish1("a/b", "x", 2),
        ],
    );
    let evs = events(&mut server);
    assert!(
        matches!(evs.as_slice(), [ServerEvent::Connect(_)]),
        "{evs:?}"
    );
    server.reject(T0, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    assert_eq!(&transmit(&mut server, T0)[..], &[0x20, 0x02, 0x00, 0x04]);
    let evs = events(&mut server);
    assert!(
        matches!(evs.as_slice(), [ServerEvent::Closed(_)]),
        "{evs:?}"
    );
}

/// Section 3.1.4: a client may send packets right after CONNECT, without
/// waiting for CONNACK. The server holds them until the application accepts
/// the connection, then processes them in order, however the bytes were
/// split into reads, and a large read after the acceptance is no different
/// from any other.
#[test]
fn packets_sent_right_after_connect_are_processed_once_it_is_accepted_whatever_the_split() {
    let cfg = ServerConfig {
        limits: Limits {
            max_packet_size: 64,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let head = encode(
        V311,
        &[
            connect_with_keep_alive(V311, 60),
            publish1("a/b", "first", 1),
            subscribe(2, "a/#", QoS::AtLeastOnce),
        ],
    );
    // More than twice the maximum packet size, in one read after the accept.
    let tail: Vec<Packet> = (0..12)
        .map(|i| publish("a/b", &format!("tail {i:02}"), QosPid::AtMostOnce, false))
        .collect();
    let tail = encode(V311, &tail);
    assert!(tail.len() > 2 * 64);
    let mut reference: Option<String> = None;
    for split in 0..=head.len() {
        let mut server = Connection::<Server>::new(cfg.clone(), T0);
        let mut rbuf = BytesMut::new();
        let mut log = Vec::new();
        // The second read ends inside a packet, so a partial one is held
        // when the third, large read comes.
        let mut second = head[split..].to_vec();
        second.extend_from_slice(&tail[..5]);
        for chunk in [&head[..split], &second[..], &tail[5..]] {
            rbuf.extend_from_slice(chunk);
            server.handle_read(T0, &mut rbuf);
            for ev in events(&mut server) {
                if matches!(ev, ServerEvent::Connect(_)) {
                    server.accept(T0, None, ConnAckProps::default()).unwrap();
                }
                log.push(ev);
            }
        }
        for ev in events(&mut server) {
            log.push(ev);
        }
        assert!(
            !log.iter().any(|e| matches!(e, ServerEvent::Closed(_))),
            "split at {split}: {log:?}"
        );
        assert_eq!(log.len(), 1 + 1 + 1 + 12, "split at {split}: {log:?}");
        assert!(matches!(log[1], ServerEvent::Publish { id: Some(_), .. }));
        assert!(matches!(log[2], ServerEvent::Subscribe { .. }));
        let text = format!("{log:?}");
        match &reference {
            None => reference = Some(text),
            Some(r) => assert_eq!(r, &text, "split at {split}"),
        }
    }
}

/// What a client sends before its CONNECT is answered is held, but bounded
/// (twice the maximum packet size, each packet counted at least as a
/// decoded packet's size, at least 16 packets): beyond that the server
/// drops the client (server busy) instead of growing its memory.
#[test]
fn packets_held_before_the_connect_is_answered_are_bounded() {
    let cfg = ServerConfig {
        limits: Limits {
            max_packet_size: 64,
            ..Limits::default()
        },
        ..ServerConfig::default()
    };
    let mut server = Connection::<Server>::new(cfg, T0);
    feed(&mut server, T0, V311, &[connect_with_keep_alive(V311, 60)]);
    let tail: Vec<Packet> = (0..17)
        .map(|i| publish("a/b", &format!("tail {i:02}"), QosPid::AtMostOnce, false))
        .collect();
    feed(&mut server, T0, V311, &tail);
    let evs = events(&mut server);
    assert!(matches!(evs[0], ServerEvent::Connect(_)));
    let close = server_close(&evs);
    assert_eq!(evs.len(), 2, "nothing after CONNECT was processed");
    assert_eq!(close.reason, ReasonCode::SERVER_BUSY);
    assert!(server.is_closed());
}

// ----- the CONNECT deadline ------------------------------------------------------

/// A transport that sends no CONNECT within the configured time is closed,
/// with nothing sent.
#[test]
fn the_connect_deadline_closes_a_connection_that_sends_no_connect() {
    let cfg = ServerConfig {
        connect_timeout: secs(5),
        ..ServerConfig::default()
    };
    let mut server = Connection::<Server>::new(cfg, T0);
    assert_eq!(server.poll_timeout(), Some(at(5_000)));
    server.handle_timeout(at(4_999));
    assert!(events(&mut server).is_empty());
    server.handle_timeout(at(5_000));
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.initiator, Initiator::Local);
    assert_eq!(close.reason, ReasonCode::MAXIMUM_CONNECT_TIME);
    assert!(transmit(&mut server, at(5_000)).is_empty());
    assert!(server.is_closed());
    assert_eq!(server.poll_timeout(), None);
}

/// A CONNECT the application leaves unanswered until the deadline is refused
/// with return code 3 (server unavailable).
#[test]
fn the_connect_deadline_answers_an_unanswered_connect_with_return_code_3() {
    let cfg = ServerConfig {
        connect_timeout: secs(5),
        ..ServerConfig::default()
    };
    let mut server = Connection::<Server>::new(cfg, T0);
    feed(
        &mut server,
        at(1_000),
        V311,
        &[connect_with_keep_alive(V311, 60)],
    );
    assert!(matches!(
        events(&mut server).as_slice(),
        [ServerEvent::Connect(_)]
    ));
    assert_eq!(server.poll_timeout(), Some(at(5_000)));
    server.handle_timeout(at(5_000));
    assert_eq!(
        &transmit(&mut server, at(5_000))[..],
        &[0x20, 0x02, 0x00, 0x03]
    );
    let evs = events(&mut server);
    assert_eq!(server_close(&evs).reason, ReasonCode::SERVER_BUSY);
    assert!(server.is_closed());
    assert_eq!(
        server.accept(at(5_001), None, ConnAckProps::default()),
        Err(UsageError::WrongState)
    );
}

// ----- keep alive ----------------------------------------------------------------

/// [MQTT-3.1.2-24]: a server that receives nothing for one and a half times
/// the keep alive disconnects the client as if the network had failed: no
/// packet (3.1.1 has no server DISCONNECT), and the will is due.
#[test]
fn mqtt_3_1_2_24_server_closes_after_one_and_a_half_keep_alive() {
    let mut server = server_with_will(10);
    assert_eq!(server.poll_timeout(), Some(at(15_000)));
    server.handle_timeout(at(14_999));
    assert!(server.is_connected());
    // Any packet from the client restarts the period.
    feed(&mut server, at(10_000), V311, &[Packet::PingReq]);
    assert_eq!(sent(&mut server, at(10_000), V311), vec![Packet::PingResp]);
    assert_eq!(server.poll_timeout(), Some(at(25_000)));
    server.handle_timeout(at(24_999));
    assert!(server.is_connected());
    server.handle_timeout(at(25_000));
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.initiator, Initiator::Local);
    assert_eq!(close.reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert!(close.will.is_some());
    assert!(transmit(&mut server, at(25_000)).is_empty());
    assert!(server.is_closed());
}

/// [MQTT-3.1.2-24] counts Control Packets: bytes of a packet that never
/// completes do not keep the connection alive, on the byte path as on the
/// packet path.
#[test]
fn mqtt_3_1_2_24_part_of_a_packet_does_not_restart_the_keep_alive() {
    let mut server = server_with_will(10);
    // A PUBLISH announcing 100 bytes, trickled in well within each period.
    let mut partial = bytes::BytesMut::from(&[0x30u8, 100, 0, 1, b't'][..]);
    for t in [5_000, 10_000, 14_000] {
        server.handle_read(at(t), &mut partial);
        partial.extend_from_slice(b"xx");
    }
    assert_eq!(server.poll_timeout(), Some(at(15_000)));
    server.handle_timeout(at(15_000));
    let evs = events(&mut server);
    assert_eq!(server_close(&evs).reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
}

/// A keep alive of 0 turns the mechanism off (section 3.1.2.10).
#[test]
fn a_keep_alive_of_zero_arms_no_timer() {
    let mut server = server_with_will(0);
    assert_eq!(server.poll_timeout(), None);
    server.handle_timeout(at(100_000_000));
    assert!(server.is_connected());
    let mut cfg = client_config(V311);
    cfg.keep_alive = 0;
    let client = connected_client(cfg, connack_ok());
    assert_eq!(client.poll_timeout(), None);
}

/// A packet left half sent ends the connection after the partial packet
/// timeout even with keep alive 0, as a keep alive expiry would (no packet
/// under 3.1.1, the will due); every byte of progress restarts the bound.
#[test]
fn a_partial_packet_without_progress_is_dropped_even_with_keep_alive_zero() {
    let mut server = server_with_will(0);
    let bound = ServerConfig::default().partial_packet_timeout.as_millis() as u64;
    // A PUBLISH announcing 100 bytes, of which a few come.
    let mut partial = BytesMut::from(&[0x30u8, 100, 0, 1, b't'][..]);
    server.handle_read(at(1_000), &mut partial);
    assert_eq!(server.poll_timeout(), Some(at(1_000 + bound)));
    // Progress moves the deadline; the same bytes again do not.
    partial.extend_from_slice(b"xx");
    server.handle_read(at(2_000), &mut partial);
    server.handle_read(at(3_000), &mut partial);
    assert_eq!(server.poll_timeout(), Some(at(2_000 + bound)));
    server.handle_timeout(at(2_000 + bound - 1));
    assert!(server.is_connected());
    server.handle_timeout(at(2_000 + bound));
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert!(close.will.is_some(), "the will is due, as for any drop");
    assert!(transmit(&mut server, at(2_000 + bound)).is_empty());
}

/// With a keep alive, a half-sent packet is bounded by the keep alive, not
/// by the partial packet timeout: a slow link that stalls mid-packet within
/// one and a half keep alive periods [MQTT-3.1.2-24] does not drop its client.
#[test]
fn a_partial_packet_from_a_client_with_a_keep_alive_is_bounded_by_the_keep_alive() {
    let mut server = server_with_will(60);
    let bound = ServerConfig::default().partial_packet_timeout.as_millis() as u64;
    assert!(
        bound < 90_000,
        "the test needs the bound below 1.5 keep alive"
    );
    let mut partial = BytesMut::from(&[0x30u8, 100, 0, 1, b't'][..]);
    server.handle_read(at(1_000), &mut partial);
    let deadline = server.poll_timeout().expect("the keep alive");
    assert!(deadline >= at(90_000), "{deadline:?}");
    server.handle_timeout(at(1_000 + bound));
    assert!(server.is_connected(), "within its keep alive");
    server.handle_timeout(deadline);
    let evs = events(&mut server);
    assert_eq!(server_close(&evs).reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
}

/// A packet that completes disarms the partial packet bound; the adapter's
/// own decoder reports through `handle_partial` the same way.
#[test]
fn a_completed_packet_disarms_the_partial_packet_timeout() {
    let mut server = server_with_will(0);
    let mut bytes = encode(V311, &[Packet::PingReq]);
    let mut first = bytes.split_to(1);
    server.handle_read(at(1_000), &mut first);
    assert!(server.poll_timeout().is_some());
    first.unsplit(bytes);
    server.handle_read(at(2_000), &mut first);
    assert_eq!(server.poll_timeout(), None);
    server.handle_partial(at(3_000), 7);
    assert!(server.poll_timeout().is_some());
    server.handle_partial(at(4_000), 0);
    assert_eq!(server.poll_timeout(), None);
}

/// [MQTT-3.1.2-23]: a client that has sent nothing for a keep alive period
/// sends PINGREQ; any packet it sends restarts the period.
#[test]
fn mqtt_3_1_2_23_the_client_sends_pingreq_when_idle_for_the_keep_alive() {
    let mut cfg = client_config(V311);
    cfg.keep_alive = 10;
    let mut client = connected_client(cfg, connack_ok());
    assert_eq!(client.poll_timeout(), Some(at(10_000)));
    client.handle_timeout(at(9_999));
    assert!(transmit(&mut client, at(9_999)).is_empty());
    client.handle_timeout(at(10_000));
    assert_deadline_after(&client, at(10_000));
    assert_eq!(sent(&mut client, at(10_000), V311), vec![Packet::PingReq]);
    feed(&mut client, at(10_050), V311, &[Packet::PingResp]);
    assert_eq!(client.poll_timeout(), Some(at(20_000)));
    // Traffic at 15 s pushes the next PINGREQ to 25 s.
    client
        .publish(at(15_000), msg("a", "x", QoS::AtMostOnce))
        .unwrap();
    let _ = transmit(&mut client, at(15_000));
    assert_eq!(client.poll_timeout(), Some(at(25_000)));
    client.handle_timeout(at(20_000));
    assert!(transmit(&mut client, at(20_000)).is_empty());
    client.handle_timeout(at(25_000));
    assert_eq!(sent(&mut client, at(25_000), V311), vec![Packet::PingReq]);
    assert!(client.is_connected());
}

/// Section 3.1.2.10: a client that gets no PINGRESP in a reasonable time
/// closes the connection (the reason says keep alive timeout).
#[test]
fn the_client_closes_when_pingresp_does_not_come_in_time() {
    let mut cfg = client_config(V311);
    cfg.keep_alive = 10;
    cfg.ping_timeout = secs(5);
    let mut client = connected_client(cfg, connack_ok());
    client.handle_timeout(at(10_000));
    assert_eq!(sent(&mut client, at(10_000), V311), vec![Packet::PingReq]);
    assert_eq!(client.poll_timeout(), Some(at(15_000)));
    client.handle_timeout(at(14_999));
    assert!(client.is_connected());
    client.handle_timeout(at(15_000));
    let evs = events(&mut client);
    let close = client_close(&evs);
    assert_eq!(close.initiator, Initiator::Local);
    assert_eq!(close.reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert!(transmit(&mut client, at(15_000)).is_empty());
    assert!(client.is_closed());
}

/// [MQTT-3.12.4-1]: the server answers PINGREQ with PINGRESP.
#[test]
fn mqtt_3_12_4_1_the_server_answers_pingreq_with_pingresp() {
    let mut server = v311_server();
    feed(
        &mut server,
        at(1),
        V311,
        &[Packet::PingReq, Packet::PingReq],
    );
    assert_eq!(
        sent(&mut server, at(1), V311),
        vec![Packet::PingResp, Packet::PingResp]
    );
    assert!(events(&mut server).is_empty());
}

/// With the network working, pings keep an idle connection open for ever;
/// when the network stalls past one and a half keep alives, it ends. Every
/// deadline handled lies before the next one reported.
#[test]
fn keep_alive_with_traffic_never_expires_and_without_traffic_does() {
    let mut cfg = client_config(V311);
    cfg.keep_alive = 5;
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    p.advance(secs(3_600));
    assert!(p.client.is_connected() && p.server.is_connected());
    let pings = p.c2s.iter().filter(|x| **x == Packet::PingReq).count();
    assert_eq!(pings, 720, "one PINGREQ per idle keep alive period");
    assert_eq!(
        p.s2c.iter().filter(|x| **x == Packet::PingResp).count(),
        720
    );
    p.jump(secs(8));
    let close = server_close(&p.server_events);
    assert_eq!(close.reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
    // The client sees the transport close.
    let close = client_close(&p.client_events);
    assert_eq!(close.initiator, Initiator::Transport);
}

// ----- packet identifiers --------------------------------------------------------

/// [MQTT-2.3.1-2]: each new SUBSCRIBE, UNSUBSCRIBE or QoS > 0 PUBLISH from the
/// client gets an identifier that is not in use; over a whole cycle of the
/// identifier space the ones still in flight are skipped.
#[test]
fn mqtt_2_3_1_2_a_client_never_reuses_a_packet_identifier_in_flight() {
    let mut client = v311_client();
    let kept = client
        .publish(T0, msg("a", "kept", QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    let sub = client
        .subscribe(T0, vec![(filter("a"), Default::default())], None)
        .unwrap();
    assert_ne!(kept, sub);
    let mut wbuf = BytesMut::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..66_000 {
        let id = client
            .publish(T0, msg("a", "x", QoS::AtLeastOnce))
            .unwrap()
            .unwrap();
        assert!(id != kept && id != sub, "reused {id:?} while in flight");
        seen.insert(id);
        wbuf.clear();
        let _ = client.poll_transmit(T0, &mut wbuf);
        let mut ack = BytesMut::from(&[0x40, 0x02][..]);
        ack.extend_from_slice(&id.get().to_be_bytes());
        client.handle_read(T0, &mut ack);
        assert!(matches!(
            client.poll_event(),
            Some(ClientEvent::Published { id: done, .. }) if done == id
        ));
    }
    // Every free identifier was used on the way round.
    assert_eq!(seen.len(), 65_533);
    assert!(client.is_connected());
}

/// [MQTT-2.3.1-4]: the same holds for the server's QoS > 0 PUBLISHes.
#[test]
fn mqtt_2_3_1_4_a_server_never_reuses_a_packet_identifier_in_flight() {
    let mut server = v311_server();
    let kept = server
        .deliver(
            T0,
            msg("a", "kept", QoS::AtLeastOnce),
            DeliveryOptions::new(QoS::AtLeastOnce),
        )
        .unwrap()
        .unwrap();
    let mut wbuf = BytesMut::new();
    for _ in 0..66_000 {
        let id = server
            .deliver(
                T0,
                msg("a", "x", QoS::AtLeastOnce),
                DeliveryOptions::new(QoS::AtLeastOnce),
            )
            .unwrap()
            .unwrap();
        assert_ne!(id, kept, "reused an identifier in flight");
        wbuf.clear();
        let _ = server.poll_transmit(T0, &mut wbuf);
        let mut ack = BytesMut::from(&[0x40, 0x02][..]);
        ack.extend_from_slice(&id.get().to_be_bytes());
        server.handle_read(T0, &mut ack);
    }
    assert!(server.is_connected());
    assert_eq!(server.session().unwrap().inflight(), 1);
}

// ----- QoS 1 and 2 ---------------------------------------------------------------

/// [MQTT-4.3.2-1]: the QoS 1 sender sends PUBLISH with QoS 1, DUP 0 and a free
/// identifier, and treats it as unacknowledged until PUBACK; [MQTT-2.3.1-6]
/// the PUBACK carries the same identifier.
#[test]
fn mqtt_4_3_2_1_the_qos1_sender_sends_dup_0_and_waits_for_puback() {
    let mut p = Pair::connected(V311);
    let id = p
        .client
        .publish(p.now, msg("a/b", "hello", QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    p.exchange();
    assert_eq!(
        p.take_c2s(),
        vec![publish("a/b", "hello", QosPid::AtLeastOnce(id), false)]
    );
    assert!(p.client_events.is_empty(), "not complete before PUBACK");
    assert_eq!(p.client.session().unwrap().inflight(), 1);
    let evs = p.take_server_events();
    let [ServerEvent::Publish { msg, id: Some(got) }] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert_eq!(*got, id);
    assert_eq!(msg.qos, QoS::AtLeastOnce);
    p.server.ack(id, ReasonCode::SUCCESS).unwrap();
    p.exchange();
    assert_eq!(p.take_s2c(), vec![Packet::PubAck(Ack::new(id))]);
    assert!(matches!(
        p.take_client_events().as_slice(),
        [ClientEvent::Published { id: done, reason: ReasonCode::SUCCESS, .. }] if *done == id
    ));
    assert_eq!(p.client.session().unwrap().inflight(), 0);
}

/// [MQTT-4.3.2-2]: the QoS 1 receiver answers with PUBACK carrying the
/// PUBLISH's identifier, and after that treats a PUBLISH with the same
/// identifier as a new publication, whatever its DUP flag.
#[test]
fn mqtt_4_3_2_2_the_qos1_receiver_acks_and_then_treats_the_id_as_new() {
    let mut server = v311_server();
    feed(&mut server, T0, V311, &[publish1("a", "one", 7)]);
    let evs = events(&mut server);
    assert!(matches!(evs.as_slice(), [ServerEvent::Publish { id: Some(i), .. }] if *i == pid(7)));
    server.ack(pid(7), ReasonCode::SUCCESS).unwrap();
    assert_eq!(sent(&mut server, T0, V311), vec![puback(7)]);
    feed(
        &mut server,
        T0,
        V311,
        &[publish("a", "two", QosPid::AtLeastOnce(pid(7)), true)],
    );
    let evs = events(&mut server);
    let [ServerEvent::Publish { msg, id: Some(_) }] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    assert_eq!(&msg.payload[..], b"two");
    // Answering twice is a local mistake, not a second PUBACK.
    server.ack(pid(7), ReasonCode::SUCCESS).unwrap();
    assert_eq!(
        server.ack(pid(7), ReasonCode::SUCCESS),
        Err(UsageError::UnknownPacketId(pid(7)))
    );
    assert_eq!(sent(&mut server, T0, V311), vec![puback(7)]);
}

/// [MQTT-4.3.3-1]: the QoS 2 sender: PUBLISH (QoS 2, DUP 0), PUBREL on PUBREC,
/// complete on PUBCOMP; the packets on the wire, exactly.
#[test]
fn mqtt_4_3_3_1_the_qos2_sender_flow_on_the_wire() {
    let mut p = Pair::connected(V311);
    let id = p
        .client
        .publish(p.now, msg("a/b", "once", QoS::ExactlyOnce))
        .unwrap()
        .unwrap();
    p.exchange();
    assert_eq!(
        p.take_c2s(),
        vec![publish("a/b", "once", QosPid::ExactlyOnce(id), false)]
    );
    p.server.ack(id, ReasonCode::SUCCESS).unwrap();
    p.exchange();
    assert_eq!(p.take_s2c(), vec![pubrec(id.get()), pubcomp(id.get())]);
    assert_eq!(p.take_c2s(), vec![pubrel(id.get())]);
    let evs = p.take_client_events();
    assert!(
        matches!(evs.as_slice(), [ClientEvent::Published { id: done, reason: ReasonCode::SUCCESS, .. }] if *done == id),
        "{evs:?}"
    );
    assert_eq!(p.server_messages().len(), 1);
    assert_eq!(p.client.session().unwrap().inflight(), 0);
    assert_eq!(p.server.session().unwrap().incomplete_inbound(), 0);
}

/// [MQTT-4.3.3-2]: the QoS 2 receiver answers PUBREC and keeps the identifier
/// until PUBREL: a PUBLISH with that identifier meanwhile is answered with
/// PUBREC again and not delivered twice; PUBREL is answered with PUBCOMP;
/// after that the identifier is new again. Server side.
#[test]
fn mqtt_4_3_3_2_the_qos2_receiver_keeps_the_id_until_pubrel_server_side() {
    let mut server = v311_server();
    feed(&mut server, T0, V311, &[publish2("a", "one", 3)]);
    assert_eq!(events(&mut server).len(), 1);
    // A resend before the application answered is not delivered again either.
    feed(
        &mut server,
        T0,
        V311,
        &[publish("a", "one", QosPid::ExactlyOnce(pid(3)), true)],
    );
    assert!(events(&mut server).is_empty());
    assert!(transmit(&mut server, T0).is_empty());
    server.ack(pid(3), ReasonCode::SUCCESS).unwrap();
    assert_eq!(sent(&mut server, T0, V311), vec![pubrec(3)]);
    feed(
        &mut server,
        T0,
        V311,
        &[publish("a", "one", QosPid::ExactlyOnce(pid(3)), true)],
    );
    assert!(events(&mut server).is_empty(), "delivered twice");
    assert_eq!(sent(&mut server, T0, V311), vec![pubrec(3)]);
    feed(&mut server, T0, V311, &[pubrel(3)]);
    assert_eq!(sent(&mut server, T0, V311), vec![pubcomp(3)]);
    feed(&mut server, T0, V311, &[publish2("a", "two", 3)]);
    let evs = events(&mut server);
    assert!(
        matches!(evs.as_slice(), [ServerEvent::Publish { msg, .. }] if &msg.payload[..] == b"two"),
        "{evs:?}"
    );
}

/// [MQTT-4.3.3-2], client side: the client delivers a QoS 2 message once
/// however often the server resends it before PUBREL.
#[test]
fn mqtt_4_3_3_2_the_qos2_receiver_keeps_the_id_until_pubrel_client_side() {
    let mut client = v311_client();
    feed(&mut client, T0, V311, &[publish2("a", "one", 9)]);
    assert_eq!(events(&mut client).len(), 1);
    assert_eq!(sent(&mut client, T0, V311), vec![pubrec(9)]);
    for _ in 0..3 {
        feed(
            &mut client,
            T0,
            V311,
            &[publish("a", "one", QosPid::ExactlyOnce(pid(9)), true)],
        );
        assert!(events(&mut client).is_empty(), "delivered twice");
        assert_eq!(sent(&mut client, T0, V311), vec![pubrec(9)]);
    }
    feed(&mut client, T0, V311, &[pubrel(9)]);
    assert_eq!(sent(&mut client, T0, V311), vec![pubcomp(9)]);
    feed(&mut client, T0, V311, &[publish2("a", "two", 9)]);
    assert_eq!(events(&mut client).len(), 1);
}

/// [MQTT-4.6.0-2] / [MQTT-4.6.0-3]: PUBACKs and PUBRECs go out in the order the
/// PUBLISHes came in; [MQTT-4.6.0-4]: PUBRELs in the order the PUBRECs came in.
#[test]
fn mqtt_4_6_0_2_to_4_acknowledgements_keep_the_order_of_what_they_answer() {
    let mut client = v311_client();
    feed(
        &mut client,
        T0,
        V311,
        &[
            publish1("a", "1", 5),
            publish2("a", "2", 6),
            publish1("a", "3", 7),
            publish2("a", "4", 8),
        ],
    );
    assert_eq!(
        sent(&mut client, T0, V311),
        vec![puback(5), pubrec(6), puback(7), pubrec(8)]
    );
    let a = client
        .publish(T0, msg("a", "x", QoS::ExactlyOnce))
        .unwrap()
        .unwrap();
    let b = client
        .publish(T0, msg("a", "y", QoS::ExactlyOnce))
        .unwrap()
        .unwrap();
    let _ = transmit(&mut client, T0);
    feed(&mut client, T0, V311, &[pubrec(b.get()), pubrec(a.get())]);
    assert_eq!(
        sent(&mut client, T0, V311),
        vec![pubrel(b.get()), pubrel(a.get())]
    );
}

/// [MQTT-3.3.1-3]: the DUP flag of a forwarded PUBLISH is set independently
/// of the incoming one: a message received with DUP 1 goes out with DUP 0.
#[test]
fn mqtt_3_3_1_3_dup_is_not_propagated_to_subscribers() {
    let mut server = v311_server();
    feed(
        &mut server,
        T0,
        V311,
        &[publish("a", "x", QosPid::AtLeastOnce(pid(4)), true)],
    );
    let evs = events(&mut server);
    let [ServerEvent::Publish { msg, .. }] = evs.as_slice() else {
        panic!("{evs:?}")
    };
    let id = server
        .deliver(T0, msg.clone(), DeliveryOptions::new(QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    assert_eq!(
        sent(&mut server, T0, V311),
        vec![publish("a", "x", QosPid::AtLeastOnce(id), false)]
    );
}

// ----- session resumption --------------------------------------------------------

/// [MQTT-4.4.0-1] / [MQTT-4.6.0-1] / [MQTT-3.3.1-1]: a client reconnecting with
/// Clean Session 0 to a server that kept the session resends its unacknowledged
/// PUBLISHes (DUP 1) and PUBRELs with their original identifiers, in the
/// original order; [MQTT-4.3.3-1] a QoS 2 message already released is never
/// sent as PUBLISH again.
#[test]
fn mqtt_4_4_0_1_the_client_resends_unacked_publishes_and_pubrels_in_order() {
    let mut cfg = client_config(V311);
    cfg.clean_start = false;
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    let ids: Vec<_> = [
        ("A", QoS::AtLeastOnce),
        ("B", QoS::ExactlyOnce),
        ("C", QoS::ExactlyOnce),
        ("D", QoS::AtLeastOnce),
    ]
    .into_iter()
    .map(|(m, q)| p.client.publish(p.now, msg("t", m, q)).unwrap().unwrap())
    .collect();
    p.exchange();
    assert_eq!(p.server_messages().len(), 4);
    // The server answers B; the client's PUBREL never leaves.
    p.server.ack(ids[1], ReasonCode::SUCCESS).unwrap();
    assert!(p.step_s2c());
    p.reconnect();
    p.clear();
    p.exchange();
    let c2s = p.take_c2s();
    assert!(matches!(&c2s[0], Packet::Connect(c) if !c.clean_start));
    assert_eq!(
        c2s[1..5],
        [
            publish("t", "A", QosPid::AtLeastOnce(ids[0]), true),
            pubrel(ids[1].get()),
            publish("t", "C", QosPid::ExactlyOnce(ids[2]), true),
            publish("t", "D", QosPid::AtLeastOnce(ids[3]), true),
        ]
    );
    // [MQTT-3.2.2-2]: the server had the session.
    assert!(matches!(&p.s2c[0], Packet::ConnAck(c) if c.session_present));
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::Connected {
            session_present: true,
            ..
        }
    )));
}

/// [MQTT-4.4.0-1], server side: the server resends the PUBLISHes the client did
/// not acknowledge (DUP 1) and the PUBRELs it did not complete, in order.
#[test]
fn mqtt_4_4_0_1_the_server_resends_unacked_publishes_and_pubrels_in_order() {
    let mut c = connect_packet(V311);
    c.clean_start = false;
    let mut server = accepted_server(
        ServerConfig::default(),
        c.clone(),
        None,
        ConnAckProps::default(),
    );
    let deliver = |server: &mut Connection<Server>, m: &str, q: QoS| {
        server
            .deliver(T0, msg("t", m, q), DeliveryOptions::new(q))
            .unwrap()
            .unwrap()
    };
    let x = deliver(&mut server, "X", QoS::AtLeastOnce);
    let y = deliver(&mut server, "Y", QoS::ExactlyOnce);
    let z = deliver(&mut server, "Z", QoS::ExactlyOnce);
    assert_eq!(sent(&mut server, T0, V311).len(), 3);
    feed(&mut server, T0, V311, &[pubrec(y.get())]);
    assert_eq!(sent(&mut server, T0, V311), vec![pubrel(y.get())]);
    server.handle_eof(at(5));
    let session = server.detach().expect("the server kept a session");
    assert_eq!(session.inflight(), 3);

    let mut server = Connection::<Server>::new(ServerConfig::default(), at(10));
    feed(&mut server, at(10), V311, &[Packet::Connect(Box::new(c))]);
    let _ = events(&mut server);
    server
        .accept(at(10), Some(session), ConnAckProps::default())
        .unwrap();
    assert_eq!(
        sent(&mut server, at(10), V311),
        vec![
            Packet::ConnAck(Box::new(ConnAck::new(true, ReasonCode::SUCCESS))),
            publish("t", "X", QosPid::AtLeastOnce(x), true),
            pubrel(y.get()),
            publish("t", "Z", QosPid::ExactlyOnce(z), true),
        ]
    );
}

/// [MQTT-4.3.3-2] across connections: a QoS 2 message the server delivered to
/// the application before the connection broke, and whose PUBREC never went
/// out, is resent by the client with DUP; the resumed session knows the
/// identifier, answers PUBREC, and does not deliver it again.
#[test]
fn mqtt_4_3_3_2_a_qos2_message_is_not_delivered_again_after_resumption() {
    let mut cfg = client_config(V311);
    cfg.clean_start = false;
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Broker::accept_only());
    let id = p
        .client
        .publish(p.now, msg("t", "once", QoS::ExactlyOnce))
        .unwrap()
        .unwrap();
    p.exchange();
    assert_eq!(p.server_messages().len(), 1);
    // The connection breaks before the application answers.
    p.reconnect();
    p.clear();
    p.exchange();
    assert_eq!(
        p.c2s[1],
        publish("t", "once", QosPid::ExactlyOnce(id), true)
    );
    assert_eq!(p.server_messages().len(), 0, "delivered twice");
    // The resumed session answers for it, and the flow completes.
    assert_eq!(p.s2c[1], pubrec(id.get()));
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Published { id: done, .. } if *done == id)));
    assert_eq!(p.server.session().unwrap().incomplete_inbound(), 0);
}

// ----- the will ----------------------------------------------------------------------

/// [MQTT-3.1.2-8]: the will is published when the connection closes for any
/// reason but DISCONNECT: keep-alive expiry, a protocol violation, or the
/// network failing.
#[test]
fn mqtt_3_1_2_8_the_will_is_due_when_the_connection_ends_without_disconnect() {
    let endings: [(&str, Ending); 3] = [
        ("keep alive", |s| s.handle_timeout(at(15_000))),
        ("protocol violation", |s| {
            feed(s, at(1), V311, &[puback(1)]);
            feed(
                s,
                at(1),
                V311,
                &[Packet::SubAck(SubAck {
                    id: pid(1),
                    props: Default::default(),
                    reasons: vec![ReasonCode::SUCCESS],
                })],
            );
        }),
        ("transport", |s| s.handle_eof(at(1))),
    ];
    for (what, end) in endings {
        let mut server = server_with_will(10);
        end(&mut server);
        let evs = events(&mut server);
        let close = server_close(&evs);
        let Some((will_msg, delay)) = &close.will else {
            panic!("{what}: the will must be due: {close:?}")
        };
        assert_eq!(will_msg.topic, topic("clients/c1/state"), "{what}");
        assert_eq!(&will_msg.payload[..], b"gone");
        assert_eq!(will_msg.qos, QoS::AtLeastOnce);
        assert_eq!(*delay, secs(0));
    }
}

/// [MQTT-3.14.4-3] / [MQTT-3.1.2-10]: on DISCONNECT the server discards the will.
#[test]
fn mqtt_3_14_4_3_disconnect_discards_the_will() {
    let mut server = server_with_will(10);
    feed(
        &mut server,
        at(1),
        V311,
        &[Packet::Disconnect(Disconnect::default())],
    );
    let evs = events(&mut server);
    let close = server_close(&evs);
    assert_eq!(close.initiator, Initiator::Peer);
    assert_eq!(close.reason, ReasonCode::NORMAL_DISCONNECTION);
    assert_eq!(close.will, None);
    assert!(server.is_closed());
    // A client's own disconnect sends DISCONNECT and closes.
    let mut p = Pair::connected(V311);
    p.client.disconnect(p.now, ReasonCode::NORMAL_DISCONNECTION);
    p.exchange();
    assert_eq!(p.c2s, vec![Packet::Disconnect(Disconnect::default())]);
    assert_eq!(server_close(&p.server_events).will, None);
    assert!(p.client.is_closed() && p.server.is_closed());
}

// ----- protocol violations -----------------------------------------------------

/// [MQTT-4.8.0-1]: a protocol violation closes the connection; a 3.1.1 server
/// has no DISCONNECT to send, so nothing is sent, and `Closed` is the last
/// event, with the violation.
#[test]
fn mqtt_4_8_0_1_a_protocol_violation_closes_without_a_server_disconnect() {
    let cases: Vec<(&str, BytesMut)> = vec![
        (
            "SUBACK to a server",
            encode(
                V311,
                &[Packet::SubAck(SubAck {
                    id: pid(1),
                    props: Default::default(),
                    reasons: vec![ReasonCode::SUCCESS],
                })],
            ),
        ),
        (
            "PUBLISH with QoS 3",
            BytesMut::from(&[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01][..]),
        ),
        ("reserved packet type 0", BytesMut::from(&[0x00, 0x00][..])),
        (
            "PUBREL with wrong flags",
            BytesMut::from(&[0x60, 0x02, 0x00, 0x01][..]),
        ),
        (
            "PUBLISH to a wildcard",
            BytesMut::from(&[0x30, 0x03, 0x00, 0x01, b'#'][..]),
        ),
        (
            "CONNACK to a server",
            BytesMut::from(&[0x20, 0x02, 0x00, 0x00][..]),
        ),
    ];
    for (what, mut bytes) in cases {
        let mut server = server_with_will(60);
        // A good packet in the same read is still processed first.
        let mut buf = encode(V311, &[Packet::PingReq]);
        buf.extend_from_slice(&bytes);
        bytes = buf;
        server.handle_read(at(1), &mut bytes);
        assert_eq!(
            sent(&mut server, at(1), V311),
            vec![Packet::PingResp],
            "{what}: only the PINGRESP"
        );
        let evs = events(&mut server);
        let close = server_close(&evs);
        assert_eq!(close.initiator, Initiator::Peer, "{what}");
        let v = close
            .violation
            .unwrap_or_else(|| panic!("{what}: no violation"));
        assert_eq!(close.reason, v.reason(), "{what}");
        assert!(
            close.will.is_some(),
            "{what}: a protocol violation leaves the will due"
        );
        assert!(server.is_closed(), "{what}");
        // Nothing more is read once closed.
        feed(&mut server, at(2), V311, &[Packet::PingReq]);
        assert!(transmit(&mut server, at(2)).is_empty());
        assert!(events(&mut server).is_empty());
    }
}

/// [MQTT-4.8.0-1], client side: a packet a server never sends closes the
/// client; a 3.1.1 client sends nothing then.
#[test]
fn mqtt_4_8_0_1_a_client_closes_on_a_packet_a_server_never_sends() {
    for bad in [
        subscribe(1, "a", QoS::AtMostOnce),
        Packet::PingReq,
        connect_with_keep_alive(V311, 60),
        Packet::ConnAck(Box::new(connack_ok())),
    ] {
        let mut client = v311_client();
        feed(&mut client, at(1), V311, core::slice::from_ref(&bad));
        let evs = events(&mut client);
        let close = client_close(&evs);
        assert_eq!(
            close.violation,
            Some(Violation::UnexpectedPacket(bad.packet_type()))
        );
        assert!(transmit(&mut client, at(1)).is_empty());
        assert!(client.is_closed());
    }
}

// ----- flow control ------------------------------------------------------------

/// 3.1.1 has no Receive Maximum: `Limits::max_inflight` bounds the QoS 1/2
/// publishes in flight, in both directions; the rest wait their turn in order.
#[test]
fn max_inflight_bounds_the_publishes_in_flight_without_receive_maximum() {
    let limits = Limits {
        max_inflight: 2,
        ..Limits::default()
    };
    let mut cfg = client_config(V311);
    cfg.limits = limits.clone();
    let server_cfg = ServerConfig {
        limits,
        ..ServerConfig::default()
    };
    let mut p = Pair::connected_with(cfg, server_cfg, Broker::accept_only());
    for i in 0..5 {
        p.client
            .publish(p.now, msg("up", &i.to_string(), QoS::AtLeastOnce))
            .unwrap();
        p.server
            .deliver(
                p.now,
                msg("down", &i.to_string(), QoS::ExactlyOnce),
                DeliveryOptions::new(QoS::ExactlyOnce),
            )
            .unwrap();
    }
    // Step by step, the application acknowledging each publish as it comes.
    let mut answered = 0;
    let (mut max_up, mut max_down) = (0, 0);
    loop {
        let moved = p.step_c2s() | p.step_s2c();
        let up = outstanding(&p.c2s, &p.s2c);
        let down = outstanding(&p.s2c, &p.c2s);
        assert!(up <= 2 && down <= 2, "{up} up, {down} down in flight");
        max_up = max_up.max(up);
        max_down = max_down.max(down);
        let ids: Vec<_> = p
            .server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Publish { id, .. } => *id,
                _ => None,
            })
            .collect();
        for id in &ids[answered..] {
            p.server.ack(*id, ReasonCode::SUCCESS).unwrap();
        }
        let progressed = ids.len() > answered;
        answered = ids.len();
        if !moved && !progressed {
            break;
        }
    }
    assert_eq!((max_up, max_down), (2, 2), "the window was used");
    let up: Vec<_> = p
        .server_messages()
        .iter()
        .map(|m| m.payload.clone())
        .collect();
    assert_eq!(up, ["0", "1", "2", "3", "4"].map(Bytes::from));
    let down: Vec<_> = p
        .client_messages()
        .iter()
        .map(|m| m.payload.clone())
        .collect();
    assert_eq!(down, ["0", "1", "2", "3", "4"].map(Bytes::from));
}

/// The outgoing queue is bounded by `Limits::max_queued`; beyond it publishing
/// fails with `QueueFull` and nothing changes.
#[test]
fn a_full_queue_refuses_with_queue_full() {
    let limits = Limits {
        max_inflight: 1,
        max_queued: 2,
        ..Limits::default()
    };
    let mut cfg = client_config(V311);
    cfg.limits = limits.clone();
    let mut client = connected_client(cfg, connack_ok());
    for i in 0..3 {
        client
            .publish(T0, msg("a", &i.to_string(), QoS::AtLeastOnce))
            .unwrap();
    }
    assert_eq!(
        client.publish(T0, msg("a", "3", QoS::AtLeastOnce)),
        Err(UsageError::QueueFull { limit: 2 })
    );
    assert_eq!(
        client.publish(T0, msg("a", "3", QoS::AtMostOnce)),
        Err(UsageError::QueueFull { limit: 2 })
    );
    assert_eq!(client.session().unwrap().queued(), 2);
    assert_eq!(sent(&mut client, T0, V311).len(), 1);

    let server_cfg = ServerConfig {
        limits,
        ..ServerConfig::default()
    };
    let mut server = accepted_server(
        server_cfg,
        connect_packet(V311),
        None,
        ConnAckProps::default(),
    );
    for _ in 0..3 {
        server
            .deliver(
                T0,
                msg("a", "x", QoS::AtLeastOnce),
                DeliveryOptions::new(QoS::AtLeastOnce),
            )
            .unwrap();
    }
    assert_eq!(
        server.deliver(
            T0,
            msg("a", "x", QoS::AtLeastOnce),
            DeliveryOptions::new(QoS::AtLeastOnce)
        ),
        Err(DeliverError::QueueFull { limit: 2 })
    );
    let mut session = Session::new(1);
    session
        .enqueue(
            msg("a", "x", QoS::AtLeastOnce),
            DeliveryOptions::new(QoS::AtLeastOnce),
        )
        .unwrap();
    assert_eq!(
        session.enqueue(
            msg("a", "x", QoS::AtMostOnce),
            DeliveryOptions::new(QoS::AtMostOnce)
        ),
        Err(DeliverError::QueueFull { limit: 1 })
    );
}

// ----- 3.1.1 specifics -----------------------------------------------------------

/// Section 3.9.3: a refused subscription is reported as 0x80 under 3.1.1.
#[test]
fn a_refused_subscription_is_0x80_under_3_1_1() {
    let mut server = v311_server();
    feed(
        &mut server,
        T0,
        V311,
        &[subscribe(3, "a", QoS::AtLeastOnce)],
    );
    let _ = events(&mut server);
    server
        .suback(pid(3), &[ReasonCode::NOT_AUTHORIZED])
        .unwrap();
    assert_eq!(
        &transmit(&mut server, T0)[..],
        &[0x90, 0x03, 0x00, 0x03, 0x80]
    );
}

/// 3.1.1 has no negative PUBACK: an acknowledgement with a failure reason
/// goes out as a plain PUBACK (section 3.4).
#[test]
fn a_negative_acknowledgement_is_a_plain_puback_under_3_1_1() {
    let mut server = v311_server();
    feed(
        &mut server,
        T0,
        V311,
        &[publish1("a", "x", 2), publish2("a", "y", 3)],
    );
    let _ = events(&mut server);
    server.ack(pid(2), ReasonCode::NOT_AUTHORIZED).unwrap();
    server.ack(pid(3), ReasonCode::NOT_AUTHORIZED).unwrap();
    assert_eq!(sent(&mut server, T0, V311), vec![puback(2), pubrec(3)]);
}

/// 3.1.1 has no session expiry: a Clean Session 0 session lasts until a clean
/// start, a Clean Session 1 session ends with the connection.
#[test]
fn a_3_1_1_session_expiry_follows_clean_session() {
    let server = v311_server();
    assert_eq!(server.session_expiry_interval(), 0);
    let mut c = connect_packet(V311);
    c.clean_start = false;
    let server = accepted_server(ServerConfig::default(), c, None, ConnAckProps::default());
    assert_eq!(server.session_expiry_interval(), u32::MAX);
}

// ----- MQTT 3.1 ----------------------------------------------------------------

/// MQTT 3.1 section 3.1 says 1 to 23 characters: a longer client identifier
/// is accepted as given (Mosquitto accepts it; 3.1 clients send them), and
/// an empty one is handed to the broker like a 3.1.1 one, which assigns an
/// identifier with a clean session [MQTT-3.1.3-6] (Mosquitto refuses it;
/// real 3.1 clients send it).
#[test]
fn mqtt31_a_client_identifier_over_23_characters_is_accepted_an_empty_one_goes_to_the_broker() {
    let mut c = connect_packet(V31);
    c.client_id = s("abcdefghijklmnopqrstuvwxyz0123456789");
    let server = accepted_server(ServerConfig::default(), c, None, ConnAckProps::default());
    assert_eq!(
        server.client_id().as_str(),
        "abcdefghijklmnopqrstuvwxyz0123456789"
    );

    let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
    // CONNECT "MQIsdp" 3, clean session, keep alive 60, client identifier "".
    let mut wire = bytes::BytesMut::from(
        &[
            0x10, 0x0E, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C,
            0x00, 0x00,
        ][..],
    );
    server.handle_read(T0, &mut wire);
    assert!(transmit(&mut server, T0).is_empty());
    assert!(!server.is_closed());
    let evs = events(&mut server);
    assert!(matches!(evs.as_slice(), [ServerEvent::Connect(c)] if c.client_id.is_empty()));
}

/// MQTT 3.1 has no SUBACK failure code: a refused subscription is reported as
/// granted QoS 0 (and the broker simply delivers nothing on it).
#[test]
fn mqtt31_a_refused_subscription_is_reported_as_qos_0() {
    let mut server = accepted_server(
        ServerConfig::default(),
        connect_packet(V31),
        None,
        ConnAckProps::default(),
    );
    assert_eq!(server.version(), V31);
    feed(&mut server, T0, V31, &[subscribe(3, "a", QoS::AtLeastOnce)]);
    let _ = events(&mut server);
    server
        .suback(pid(3), &[ReasonCode::NOT_AUTHORIZED])
        .unwrap();
    assert_eq!(
        &transmit(&mut server, T0)[..],
        &[0x90, 0x03, 0x00, 0x03, 0x00]
    );
}

/// MQTT 3.1 speaks the protocol name `MQIsdp`; the QoS 2 exchange is the same.
#[test]
fn mqtt31_connects_and_completes_a_qos2_exchange() {
    let mut p = Pair::connected_with(client_config(V31), ServerConfig::default(), Broker::full());
    assert_eq!(p.server.version(), V31);
    p.client
        .subscribe(
            p.now,
            vec![(filter("a/+"), SubscriptionOptions::new(QoS::ExactlyOnce))],
            None,
        )
        .unwrap();
    p.exchange();
    p.client
        .publish(p.now, msg("a/b", "x", QoS::ExactlyOnce))
        .unwrap();
    p.exchange();
    assert_eq!(p.client_messages().len(), 1);
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Published { .. })));
}

// ----- deadlines -----------------------------------------------------------------

/// After `handle_timeout(now)` the next deadline is always after `now`, in
/// every state: awaiting CONNECT, awaiting the answer to it, connected, after
/// a PINGREQ, and closed.
#[test]
fn poll_timeout_lies_after_now_after_handle_timeout() {
    let mut server = Connection::<Server>::new(ServerConfig::default(), T0);
    for t in [0, 1, 9_999] {
        server.handle_timeout(at(t));
        assert_deadline_after(&server, at(t));
    }
    feed(
        &mut server,
        at(2),
        V311,
        &[connect_with_keep_alive(V311, 1)],
    );
    server.handle_timeout(at(2));
    assert_deadline_after(&server, at(2));
    let _ = events(&mut server);
    server.accept(at(3), None, ConnAckProps::default()).unwrap();
    for t in [3, 4, 1_000, 1_502] {
        server.handle_timeout(at(t));
        assert_deadline_after(&server, at(t));
    }
    server.handle_timeout(at(1_503));
    assert_eq!(server.poll_timeout(), None);

    let mut cfg = client_config(V311);
    cfg.keep_alive = 1;
    cfg.ping_timeout = ms(300);
    let mut client = Connection::<Client>::new(cfg, T0, None);
    client.handle_timeout(T0);
    assert_deadline_after(&client, T0);
    let _ = transmit(&mut client, T0);
    feed(
        &mut client,
        at(5),
        V311,
        &[Packet::ConnAck(Box::new(connack_ok()))],
    );
    for t in [5, 999, 1_000, 1_001, 1_299] {
        client.handle_timeout(at(t));
        assert_deadline_after(&client, at(t));
        let _ = transmit(&mut client, at(t));
    }
    client.handle_timeout(at(1_300));
    assert_eq!(client.poll_timeout(), None);
    assert!(client.is_closed());
}
