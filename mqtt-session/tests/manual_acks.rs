//! Manual acknowledgement on the client side (`ClientConfig::manual_acks`):
//! received QoS 1/2 messages wait for `Connection::ack`, answers leave in
//! arrival order [MQTT-4.6.0-2] [MQTT-4.6.0-3], what was never acknowledged
//! is delivered again after a resumption, and the unanswered messages stay
//! within the client's Receive Maximum.

mod common;

use common::*;
use mqtt_session::mqtt_codec::{ConnAck, Packet, ProtocolVersion, QosPid, ReasonCode};
use mqtt_session::{Client, ClientConfig, ClientEvent, Connection, UsageError};

use ProtocolVersion::{V311, V5};

fn manual(v: ProtocolVersion) -> ClientConfig {
    let mut cfg = client_config(v);
    cfg.manual_acks = true;
    cfg
}

fn message_ids(evs: &[ClientEvent]) -> Vec<u16> {
    evs.iter()
        .filter_map(|e| match e {
            ClientEvent::Message {
                packet_id: Some(id),
                ..
            } => Some(id.get()),
            _ => None,
        })
        .collect()
}

#[test]
fn received_messages_are_not_acknowledged_until_the_application_acks() {
    for v in [V311, V5] {
        let mut c = connected_client(manual(v), connack_ok());
        feed(
            &mut c,
            at(1),
            v,
            &[publish1("t", "a", 1), publish2("t", "b", 2)],
        );
        assert_eq!(message_ids(&events(&mut c)), [1, 2]);
        assert_eq!(sent(&mut c, at(1), v), []);
        assert_eq!(c.unacknowledged(), 2);
        c.ack(pid(1)).unwrap();
        c.ack(pid(2)).unwrap();
        assert_eq!(sent(&mut c, at(2), v), [puback(1), pubrec(2)]);
        assert_eq!(c.unacknowledged(), 0);
        // The QoS 2 flow completes by itself once PUBREC went out.
        feed(&mut c, at(3), v, &[pubrel(2)]);
        assert_eq!(sent(&mut c, at(3), v), [pubcomp(2)]);
    }
}

#[test]
fn acknowledgements_leave_in_the_order_the_messages_arrived() {
    for v in [V311, V5] {
        let mut c = connected_client(manual(v), connack_ok());
        feed(
            &mut c,
            at(1),
            v,
            &[
                publish1("t", "a", 7),
                publish2("t", "b", 3),
                publish1("t", "c", 5),
            ],
        );
        let _ = events(&mut c);
        // The last and the middle message first: nothing may leave before
        // the first one's PUBACK [MQTT-4.6.0-2].
        c.ack(pid(5)).unwrap();
        c.ack(pid(3)).unwrap();
        assert_eq!(sent(&mut c, at(2), v), []);
        c.ack(pid(7)).unwrap();
        assert_eq!(sent(&mut c, at(3), v), [puback(7), pubrec(3), puback(5)]);
    }
}

#[test]
fn acking_twice_or_an_unknown_identifier_is_an_error_and_sends_nothing() {
    let v = V5;
    let mut c = connected_client(manual(v), connack_ok());
    feed(
        &mut c,
        at(1),
        v,
        &[publish1("t", "a", 1), publish1("t", "b", 2)],
    );
    let _ = events(&mut c);
    c.ack(pid(2)).unwrap();
    // Acknowledged already, though still waiting behind message 1.
    assert_eq!(c.ack(pid(2)), Err(UsageError::UnknownPacketId(pid(2))));
    c.ack(pid(1)).unwrap();
    assert_eq!(sent(&mut c, at(2), v), [puback(1), puback(2)]);
    assert_eq!(c.ack(pid(1)), Err(UsageError::UnknownPacketId(pid(1))));
    assert_eq!(c.ack(pid(9)), Err(UsageError::UnknownPacketId(pid(9))));
    assert_eq!(sent(&mut c, at(3), v), []);
}

#[test]
fn without_manual_acks_an_ack_is_an_error_and_messages_are_answered_at_once() {
    let v = V5;
    let mut c = connected_client(client_config(v), connack_ok());
    feed(&mut c, at(1), v, &[publish1("t", "a", 1)]);
    let _ = events(&mut c);
    assert_eq!(sent(&mut c, at(1), v), [puback(1)]);
    assert_eq!(c.ack(pid(1)), Err(UsageError::UnknownPacketId(pid(1))));
}

#[test]
fn unacknowledged_messages_are_delivered_again_after_resumption() {
    for v in [V311, V5] {
        let mut cfg = manual(v);
        cfg.clean_start = false;
        cfg.session_expiry_interval = 60;
        let mut c = connected_client(cfg.clone(), connack_ok());
        feed(
            &mut c,
            at(1),
            v,
            &[publish1("t", "a", 1), publish2("t", "b", 2)],
        );
        assert_eq!(message_ids(&events(&mut c)), [1, 2]);
        // The connection breaks before the application acknowledged.
        c.handle_eof(at(2));
        let _ = events(&mut c);
        assert_eq!(c.ack(pid(1)), Err(UsageError::NotConnected));
        let session = c.take_session();
        assert!(session.is_some());

        let mut c = Connection::<Client>::new(cfg, at(3), session);
        let _ = sent(&mut c, at(3), v);
        feed(
            &mut c,
            at(3),
            v,
            &[Packet::ConnAck(Box::new(ConnAck::new(
                true,
                ReasonCode::SUCCESS,
            )))],
        );
        let _ = events(&mut c);
        // The server sends both again with DUP: both reach the application
        // again (QoS 2 too: its PUBREC never went out).
        feed(
            &mut c,
            at(4),
            v,
            &[
                publish("t", "a", QosPid::AtLeastOnce(pid(1)), true),
                publish("t", "b", QosPid::ExactlyOnce(pid(2)), true),
            ],
        );
        assert_eq!(message_ids(&events(&mut c)), [1, 2]);
        assert_eq!(sent(&mut c, at(4), v), []);
        c.ack(pid(1)).unwrap();
        c.ack(pid(2)).unwrap();
        assert_eq!(sent(&mut c, at(5), v), [puback(1), pubrec(2)]);
    }
}

#[test]
fn an_acknowledged_qos2_message_is_not_delivered_twice_after_resumption() {
    let v = V5;
    let mut cfg = manual(v);
    cfg.clean_start = false;
    cfg.session_expiry_interval = 60;
    let mut c = connected_client(cfg.clone(), connack_ok());
    feed(&mut c, at(1), v, &[publish2("t", "b", 2)]);
    let _ = events(&mut c);
    c.ack(pid(2)).unwrap();
    assert_eq!(sent(&mut c, at(1), v), [pubrec(2)]);
    c.handle_eof(at(2));
    let session = c.take_session();
    let mut c = Connection::<Client>::new(cfg, at(3), session);
    let _ = sent(&mut c, at(3), v);
    feed(
        &mut c,
        at(3),
        v,
        &[Packet::ConnAck(Box::new(ConnAck::new(
            true,
            ReasonCode::SUCCESS,
        )))],
    );
    let _ = events(&mut c);
    // The PUBREC was lost: the server resends, the client answers again
    // and delivers nothing [MQTT-4.3.3-10].
    feed(
        &mut c,
        at(4),
        v,
        &[publish("t", "b", QosPid::ExactlyOnce(pid(2)), true)],
    );
    assert_eq!(message_ids(&events(&mut c)), Vec::<u16>::new());
    assert_eq!(sent(&mut c, at(4), v), [pubrec(2)]);
}

#[test]
fn unacknowledged_messages_are_bounded_by_the_receive_maximum() {
    for v in [V311, V5] {
        let mut cfg = manual(v);
        cfg.limits.receive_maximum = 2;
        let mut c = connected_client(cfg, connack_ok());
        feed(
            &mut c,
            at(1),
            v,
            &[publish1("t", "a", 1), publish2("t", "b", 2)],
        );
        assert_eq!(message_ids(&events(&mut c)), [1, 2]);
        assert!(c.is_connected());
        // A third unanswered message is one too many, under 3.1.1 as well.
        feed(&mut c, at(2), v, &[publish1("t", "c", 3)]);
        let evs = events(&mut c);
        assert_eq!(message_ids(&evs), Vec::<u16>::new());
        assert_eq!(
            client_close(&evs).reason,
            ReasonCode::RECEIVE_MAXIMUM_EXCEEDED,
            "{v:?}"
        );
    }
}

#[test]
fn acknowledging_frees_room_under_the_receive_maximum() {
    let v = V5;
    let mut cfg = manual(v);
    cfg.limits.receive_maximum = 1;
    let mut c = connected_client(cfg, connack_ok());
    for id in 1..=3 {
        feed(&mut c, at(1), v, &[publish1("t", "a", id)]);
        assert_eq!(message_ids(&events(&mut c)), [id]);
        c.ack(pid(id)).unwrap();
        assert_eq!(sent(&mut c, at(1), v), [puback(id)]);
    }
    assert!(c.is_connected());
}

#[test]
fn a_resent_unanswered_message_is_delivered_again_but_answered_once() {
    // 3.1.1 servers may resend on the same connection.
    let v = V311;
    let mut c = connected_client(manual(v), connack_ok());
    feed(&mut c, at(1), v, &[publish1("t", "a", 1)]);
    feed(
        &mut c,
        at(1),
        v,
        &[publish("t", "a", QosPid::AtLeastOnce(pid(1)), true)],
    );
    assert_eq!(message_ids(&events(&mut c)), [1, 1]);
    assert_eq!(c.unacknowledged(), 1);
    c.ack(pid(1)).unwrap();
    assert_eq!(c.ack(pid(1)), Err(UsageError::UnknownPacketId(pid(1))));
    assert_eq!(sent(&mut c, at(2), v), [puback(1)]);
}

#[test]
fn a_pubrel_before_the_application_acknowledged_changes_nothing_it_holds() {
    let v = V5;
    let mut c = connected_client(manual(v), connack_ok());
    feed(&mut c, at(1), v, &[publish2("t", "b", 4)]);
    let _ = events(&mut c);
    // No PUBREC went out: the server's PUBREL names nothing received.
    feed(&mut c, at(1), v, &[pubrel(4)]);
    assert_eq!(
        sent(&mut c, at(1), v),
        [ack_with(
            Packet::PubComp,
            4,
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        )]
    );
    assert!(c.is_connected());
    // The application's acknowledgement still goes out.
    c.ack(pid(4)).unwrap();
    assert_eq!(sent(&mut c, at(2), v), [pubrec(4)]);
}
