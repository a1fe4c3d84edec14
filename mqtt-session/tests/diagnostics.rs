//! 5.0 diagnostics both ways (reason strings and user properties on
//! acknowledgements, CONNACK and DISCONNECT, Request Problem Information), the
//! rules on DISCONNECT properties, and the end of a queued publish that
//! expires before it is sent.

mod common;

use common::*;
use mqtt_session::mqtt_codec::{
    AckProps, ConnAckProps, DisconnectProps, Packet, ProtocolVersion, QoS, ReasonCode, SubAckProps,
};
use mqtt_session::{
    ClientConfig, ClientEvent, Initiator, Limits, ServerConfig, ServerEvent, UsageError,
};

use ProtocolVersion::{V311, V5};

fn ack_props(reason: &str) -> AckProps {
    let mut p = AckProps::default();
    p.reason_string = Some(s(reason));
    p.user_properties.push((s("k"), s("v")));
    p
}

fn suback_props(reason: &str) -> SubAckProps {
    let mut p = SubAckProps::default();
    p.reason_string = Some(s(reason));
    p
}

fn disconnect_props(reason: &str) -> DisconnectProps {
    let mut p = DisconnectProps::default();
    p.reason_string = Some(s(reason));
    p
}

/// The client publishes one message on "t" at `qos`; both sides have
/// handled it (the server's acknowledgement is the test's to give).
fn publish_one(p: &mut Pair, qos: QoS) -> mqtt_session::mqtt_codec::PacketId {
    let id = p
        .client
        .publish(p.now, msg("t", "1", qos))
        .unwrap()
        .expect("QoS 1/2 has a packet identifier");
    p.exchange();
    id
}

fn quiet_client(v: ProtocolVersion) -> ClientConfig {
    ClientConfig {
        request_problem_information: false,
        ..client_config(v)
    }
}

/// Section 3.4.2.2.2: a reason string and user properties on PUBACK reach the
/// publisher with the outcome.
#[test]
fn a_reason_string_on_a_puback_reaches_the_publisher() {
    let mut p = Pair::connected(V5);
    let id = publish_one(&mut p, QoS::AtLeastOnce);
    let props = ack_props("quota of the day used up");
    p.server
        .ack_with(id, ReasonCode::QUOTA_EXCEEDED, props.clone())
        .unwrap();
    p.exchange();
    let got = p.client_events.iter().find_map(|e| match e {
        ClientEvent::Published {
            id: done,
            reason,
            props,
        } if *done == id => Some((*reason, props.clone())),
        _ => None,
    });
    assert_eq!(got, Some((ReasonCode::QUOTA_EXCEEDED, props)));
}

/// Section 3.6.2.2 / 3.7.2.2: a QoS 2 flow's PUBREC diagnostics end the flow
/// on a failure, and PUBCOMP's come with the completion.
#[test]
fn a_failure_pubrec_carries_its_reason_string_to_the_publisher() {
    let mut p = Pair::connected(V5);
    let id = publish_one(&mut p, QoS::ExactlyOnce);
    p.server
        .ack_with(id, ReasonCode::NOT_AUTHORIZED, ack_props("no writes to t"))
        .unwrap();
    p.exchange();
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::Published { id: done, reason: ReasonCode::NOT_AUTHORIZED, props }
            if *done == id && props.reason_string == Some(s("no writes to t"))
    )));
}

/// Section 3.9.2.1.2: SUBACK and UNSUBACK diagnostics reach the subscriber.
#[test]
fn suback_and_unsuback_reason_strings_reach_the_subscriber() {
    let mut p = Pair::connected(V5);
    let sid = p
        .client
        .subscribe(p.now, vec![(filter("a/#"), Default::default())], None)
        .unwrap();
    p.exchange();
    let got = p.take_server_events();
    let Some(ServerEvent::Subscribe { id, .. }) = got.first() else {
        panic!("no Subscribe event: {got:?}");
    };
    p.server
        .suback_with(*id, &[ReasonCode::NOT_AUTHORIZED], suback_props("acl"))
        .unwrap();
    p.exchange();
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::Subscribed { id, results, props }
            if *id == sid && results == &[ReasonCode::NOT_AUTHORIZED]
                && props.reason_string == Some(s("acl"))
    )));

    let uid = p.client.unsubscribe(p.now, vec![filter("a/#")]).unwrap();
    p.exchange();
    let got = p.take_server_events();
    let Some(ServerEvent::Unsubscribe { id, .. }) = got.first() else {
        panic!("no Unsubscribe event: {got:?}");
    };
    p.server
        .unsuback_with(
            *id,
            &[ReasonCode::NO_SUBSCRIPTION_EXISTED],
            suback_props("none"),
        )
        .unwrap();
    p.exchange();
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::Unsubscribed { id, props, .. }
            if *id == uid && props.reason_string == Some(s("none"))
    )));
}

/// [MQTT-3.1.2-29]: a client that sets Request Problem Information to 0 gets
/// no reason string or user properties on acknowledgements, but still on
/// DISCONNECT.
#[test]
fn mqtt_3_1_2_29_no_diagnostics_on_acks_when_the_client_asks_for_none() {
    let mut p = Pair::connected_with(
        quiet_client(V5),
        ServerConfig::default(),
        Default::default(),
    );
    p.broker = common::Broker::accept_only();
    let id = publish_one(&mut p, QoS::AtLeastOnce);
    p.server
        .ack_with(id, ReasonCode::QUOTA_EXCEEDED, ack_props("hidden"))
        .unwrap();
    p.exchange();
    let acks: Vec<_> = p
        .take_s2c()
        .into_iter()
        .filter_map(|x| match x {
            Packet::PubAck(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].reason, ReasonCode::QUOTA_EXCEEDED);
    assert_eq!(acks[0].props, AckProps::default(), "diagnostics stripped");

    p.server
        .close_with(
            p.now,
            ReasonCode::ADMINISTRATIVE_ACTION,
            disconnect_props("kicked"),
        )
        .unwrap();
    p.exchange();
    let close = client_close(&p.client_events);
    assert_eq!(close.initiator, Initiator::Peer);
    assert_eq!(close.props.reason_string, Some(s("kicked")));
}

/// The CONNECT says so: Request Problem Information is sent only as 0, since
/// its absence means 1 (section 3.1.2.11.7).
#[test]
fn request_problem_information_is_sent_only_when_refused() {
    for (cfg, expected) in [(client_config(V5), None), (quiet_client(V5), Some(false))] {
        let mut p = Pair::new(cfg, ServerConfig::default());
        p.broker = common::Broker::passive();
        p.exchange();
        let connect = p.c2s.iter().find_map(|x| match x {
            Packet::Connect(c) => Some(c.clone()),
            _ => None,
        });
        assert_eq!(connect.unwrap().props.request_problem_information, expected);
    }
}

/// Section 3.14.2.2: the server's DISCONNECT diagnostics and server reference
/// reach the client in its `Close`.
#[test]
fn a_server_disconnect_with_a_reason_string_and_server_reference_reaches_the_client() {
    let mut p = Pair::connected(V5);
    let mut props = disconnect_props("moving to b");
    props.server_reference = Some(s("b.example:1883"));
    p.server
        .close_with(p.now, ReasonCode::SERVER_MOVED, props.clone())
        .unwrap();
    p.exchange();
    let close = client_close(&p.client_events);
    assert_eq!(close.reason, ReasonCode::SERVER_MOVED);
    assert_eq!(close.props, props);
    let local = server_close(&p.server_events);
    assert_eq!(local.initiator, Initiator::Local);
    assert_eq!(local.props, props, "the sender's Close names what it sent");
}

/// [MQTT-3.14.2-2]: a server never sends a Session Expiry Interval on
/// DISCONNECT, and a client whose CONNECT had 0 may not raise it; both are
/// refused before anything is sent, and the connection stays up.
#[test]
fn mqtt_3_14_2_2_session_expiry_on_disconnect_is_checked_before_sending() {
    let mut p = Pair::connected(V5);
    let mut props = DisconnectProps::default();
    props.session_expiry_interval = Some(60);
    assert_eq!(
        p.server
            .close_with(p.now, ReasonCode::NORMAL_DISCONNECTION, props.clone()),
        Err(UsageError::PropertyNotAllowed)
    );
    assert_eq!(
        p.client
            .disconnect_with(p.now, ReasonCode::NORMAL_DISCONNECTION, props.clone()),
        Err(UsageError::PropertyNotAllowed)
    );
    let mut server_ref = DisconnectProps::default();
    server_ref.server_reference = Some(s("x"));
    assert_eq!(
        p.client
            .disconnect_with(p.now, ReasonCode::NORMAL_DISCONNECTION, server_ref),
        Err(UsageError::PropertyNotAllowed)
    );
    p.exchange();
    assert!(p.client.is_connected() && p.server.is_connected());
    assert!(p.take_c2s().is_empty() && p.take_s2c().is_empty());

    // A client that connected with a non-zero interval may change it.
    let cfg = ClientConfig {
        session_expiry_interval: 30,
        ..client_config(V5)
    };
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Default::default());
    p.client
        .disconnect_with(p.now, ReasonCode::NORMAL_DISCONNECTION, props)
        .unwrap();
    p.exchange();
    assert_eq!(p.server.session_expiry_interval(), 60);
    assert_eq!(
        server_close(&p.server_events).props.session_expiry_interval,
        Some(60)
    );
}

/// Section 3.2.2.3.4: a refusing CONNACK's reason string reaches the client;
/// a 3.1.1 CONNACK has no properties.
#[test]
fn a_refusing_connack_carries_its_reason_string_in_5_0_only() {
    for v in [V5, V311] {
        let mut p = Pair::new(client_config(v), ServerConfig::default());
        p.broker = common::Broker::passive();
        p.exchange();
        let mut props = ConnAckProps::default();
        props.reason_string = Some(s("unknown user"));
        p.server
            .reject_with(p.now, ReasonCode::BAD_USER_NAME_OR_PASSWORD, props);
        p.exchange();
        let close = client_close(&p.client_events);
        assert_eq!(close.reason, ReasonCode::BAD_USER_NAME_OR_PASSWORD, "{v:?}");
        let expected = (v == V5).then(|| s("unknown user"));
        assert_eq!(close.props.reason_string, expected, "{v:?}");
    }
}

/// Section 3.14 (3.1.1): a client may disconnect before CONNACK; its
/// DISCONNECT then has no reason code, whatever the application asked for.
#[test]
fn a_3_1_1_client_disconnecting_before_connack_sends_a_plain_disconnect() {
    let mut p = Pair::new(client_config(V311), ServerConfig::default());
    p.broker = common::Broker::passive();
    p.client
        .disconnect(p.now, ReasonCode::DISCONNECT_WITH_WILL_MESSAGE);
    p.exchange();
    let kinds: Vec<_> = p.c2s.iter().map(|x| x.packet_type()).collect();
    assert_eq!(kinds.len(), 2, "{:?}", p.c2s);
    assert!(matches!(p.c2s[1], Packet::Disconnect(ref d) if d.reason == ReasonCode::SUCCESS));
}

/// [MQTT-3.3.2-5]: a queued publish whose expiry passes before the window
/// opens is never sent, and the application hears that it expired.
#[test]
fn mqtt_3_3_2_5_a_queued_publish_that_expires_is_reported_and_not_sent() {
    let cfg = ClientConfig {
        limits: Limits {
            max_inflight: 1,
            ..Limits::default()
        },
        ..client_config(V5)
    };
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Default::default());
    p.broker = common::Broker::accept_only();
    let first = p
        .client
        .publish(p.now, msg("t", "first", QoS::AtLeastOnce))
        .unwrap()
        .unwrap();
    let mut second = msg("t", "second", QoS::AtLeastOnce);
    second.props.expires_at = Some(at(5_000));
    let second = p.client.publish(p.now, second).unwrap().unwrap();
    p.exchange();
    assert_eq!(p.client.session().unwrap().queued(), 1);
    p.jump(secs(6));
    p.server.ack(first, ReasonCode::SUCCESS).unwrap();
    p.clear();
    p.exchange();
    assert!(
        !p.c2s.iter().any(|x| matches!(x, Packet::Publish(_))),
        "the expired message was sent: {:?}",
        p.c2s
    );
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Expired { id } if *id == second)));
    assert_eq!(p.client.session().unwrap().queued(), 0);
}

/// Section 3.3.2.3.3: a message already in flight is resent on resumption
/// even when its expiry has passed meanwhile, with an interval of at least 1.
#[test]
fn an_expired_in_flight_message_is_resent_with_a_non_zero_interval() {
    let cfg = ClientConfig {
        clean_start: false,
        session_expiry_interval: 600,
        ..client_config(V5)
    };
    let mut p = Pair::connected_with(cfg, ServerConfig::default(), Default::default());
    p.broker = common::Broker::accept_only();
    let mut m = msg("t", "x", QoS::AtLeastOnce);
    m.props.expires_at = Some(at(2_000));
    p.client.publish(p.now, m).unwrap().unwrap();
    p.exchange();
    p.jump(secs(5));
    p.clear();
    p.reconnect();
    p.exchange();
    let resent: Vec<_> = p
        .c2s
        .iter()
        .filter_map(|x| match x {
            Packet::Publish(pb) => Some(pb.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(resent.len(), 1, "{:?}", p.c2s);
    assert!(resent[0].dup);
    assert_eq!(resent[0].props.message_expiry_interval, Some(1));
}

/// Section 3.5.2.1: 0x10 No matching subscribers travels in PUBREC; the
/// publisher hears it when the QoS 2 flow completes with PUBCOMP.
#[test]
fn a_qos_2_publish_without_subscribers_completes_with_0x10() {
    let mut p = Pair::connected(V5);
    let id = publish_one(&mut p, QoS::ExactlyOnce);
    p.server
        .ack(id, ReasonCode::NO_MATCHING_SUBSCRIBERS)
        .unwrap();
    p.exchange();
    assert!(
        p.s2c.iter().any(|x| matches!(x, Packet::PubComp(_))),
        "{:?}",
        p.s2c
    );
    let got: Vec<_> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Published {
                id: done, reason, ..
            } if *done == id => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(got, [ReasonCode::NO_MATCHING_SUBSCRIBERS]);
}
