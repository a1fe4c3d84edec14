//! The client over an in-memory pipe against a scripted server, in virtual
//! time: every flow, timer and failure the client must handle, decided
//! packet by packet.

mod common;

use std::time::Duration;

use common::{pipe, Peer, TokioClock};
use mqtt_embedded::mqtt_session::mqtt_codec::{
    Ack, ConnAck, Disconnect, Packet, Publish, QosPid, SubAck,
};
use mqtt_embedded::{
    Client, ClientConfig, Error, Initiator, Message, PacketId, ProtocolVersion, QoS, ReasonCode,
    Str, SubscriptionOptions, TopicName,
};

fn config(version: ProtocolVersion) -> ClientConfig {
    let mut c = ClientConfig::new(version, Str::from_static("pipe-client"));
    c.keep_alive = 0;
    c
}

fn msg(topic: &'static str, payload: &'static str, qos: QoS) -> Message {
    Message::new(TopicName::from_static(topic), payload, qos, false)
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// Reads CONNECT and accepts it; returns the CONNECT's Clean Start flag.
async fn accept(peer: &mut Peer, session_present: bool) -> bool {
    let Some(Packet::Connect(c)) = peer.recv().await else {
        panic!("CONNECT first")
    };
    peer.send(Packet::ConnAck(Box::new(ConnAck::new(
        session_present,
        ReasonCode::SUCCESS,
    ))))
    .await;
    c.clean_start
}

async fn publishes_complete(version: ProtocolVersion) {
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        let Some(Packet::Publish(p)) = peer.recv().await else {
            panic!()
        };
        assert_eq!((p.qos, &p.payload[..]), (QosPid::AtMostOnce, &b"zero"[..]));
        let Some(Packet::Publish(p)) = peer.recv().await else {
            panic!()
        };
        let QosPid::AtLeastOnce(id) = p.qos else {
            panic!("QoS 1")
        };
        let reason = if version.is_v5() {
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        } else {
            ReasonCode::SUCCESS
        };
        peer.send(Packet::PubAck(Ack::with_reason(id, reason)))
            .await;
        let Some(Packet::Publish(p)) = peer.recv().await else {
            panic!()
        };
        let QosPid::ExactlyOnce(id) = p.qos else {
            panic!("QoS 2")
        };
        peer.send(Packet::PubRec(Ack::new(id))).await;
        assert!(matches!(peer.recv().await, Some(Packet::PubRel(a)) if a.id == id));
        peer.send(Packet::PubComp(Ack::new(id))).await;
        if version.is_v5() {
            let Some(Packet::Publish(p)) = peer.recv().await else {
                panic!()
            };
            let id = p.qos.packet_id().unwrap();
            peer.send(Packet::PubAck(Ack::with_reason(
                id,
                ReasonCode::NOT_AUTHORIZED,
            )))
            .await;
        }
        assert!(matches!(peer.recv().await, Some(Packet::Disconnect(_))));
    });
    let mut client = Client::new(end, TokioClock::new(), config(version));
    let connected = client.connect().await.unwrap();
    assert!(!connected.session_present);
    let zero = client.publish("t/0", "zero", QoS::AtMostOnce, false).await;
    assert_eq!(zero, Ok(ReasonCode::SUCCESS));
    let one = client
        .publish_message(msg("t/1", "one", QoS::AtLeastOnce))
        .await;
    let want = if version.is_v5() {
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    } else {
        ReasonCode::SUCCESS
    };
    assert_eq!(one, Ok(want));
    let two = client.publish("t/2", "two", QoS::ExactlyOnce, false).await;
    assert_eq!(two, Ok(ReasonCode::SUCCESS));
    if version.is_v5() {
        // A failure PUBACK is an error carrying its reason code.
        let refused = client
            .publish("t/denied", "no", QoS::AtLeastOnce, false)
            .await;
        assert_eq!(refused, Err(Error::Refused(ReasonCode::NOT_AUTHORIZED)));
    }
    client.disconnect().await.unwrap();
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn publishes_complete_on_handover_puback_and_pubcomp_v5() {
    publishes_complete(ProtocolVersion::V5).await;
}

#[tokio::test(start_paused = true)]
async fn publishes_complete_on_handover_puback_and_pubcomp_v311() {
    publishes_complete(ProtocolVersion::V311).await;
}

#[tokio::test(start_paused = true)]
async fn subscribe_and_unsubscribe_return_per_filter_results() {
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        let Some(Packet::Subscribe(s)) = peer.recv().await else {
            panic!()
        };
        assert_eq!(s.filters.len(), 2);
        assert!(s.filters[1].1.no_local);
        peer.send(Packet::SubAck(SubAck {
            id: s.id,
            props: Default::default(),
            reasons: vec![ReasonCode(1), ReasonCode::NOT_AUTHORIZED],
        }))
        .await;
        let Some(Packet::Unsubscribe(u)) = peer.recv().await else {
            panic!()
        };
        peer.send(Packet::UnsubAck(SubAck {
            id: u.id,
            props: Default::default(),
            reasons: vec![ReasonCode::NO_SUBSCRIPTION_EXISTED],
        }))
        .await;
    });
    let mut client = Client::new(end, TokioClock::new(), config(ProtocolVersion::V5));
    client.connect().await.unwrap();
    let mut no_local = SubscriptionOptions::new(QoS::ExactlyOnce);
    no_local.no_local = true;
    let results = client
        .subscribe_with(
            &[
                ("a/+", SubscriptionOptions::new(QoS::AtLeastOnce)),
                ("secret/#", no_local),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        results,
        [Ok(QoS::AtLeastOnce), Err(ReasonCode::NOT_AUTHORIZED)]
    );
    let results = client.unsubscribe(&["b"]).await.unwrap();
    assert_eq!(results, [ReasonCode::NO_SUBSCRIPTION_EXISTED]);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn incoming_messages_are_acknowledged_and_survive_a_cancelled_wait() {
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let mut p = Publish::new(TopicName::from_static("in/1"), "first".into());
        p.qos = QosPid::AtLeastOnce(pid(7));
        peer.send(Packet::Publish(p)).await;
        peer.send(Packet::Publish(Publish::new(
            TopicName::from_static("in/2"),
            "second".into(),
        )))
        .await;
        assert!(matches!(peer.recv().await, Some(Packet::PubAck(a)) if a.id == pid(7)));
    });
    let mut client = Client::new(end, TokioClock::new(), config(ProtocolVersion::V311));
    client.connect().await.unwrap();
    // A wait given up before anything arrives loses nothing.
    let early = tokio::time::timeout(Duration::from_secs(1), client.next_message()).await;
    assert!(early.is_err());
    let first = client.next_message().await.unwrap();
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        ("in/1", &b"first"[..])
    );
    assert_eq!(first.qos, QoS::AtLeastOnce);
    let second = client.next_message().await.unwrap();
    assert_eq!(&second.payload[..], b"second");
    assert!(client.try_next_message().is_none());
    server.await.unwrap();
}

/// A QoS 1 publish with identifier `id`.
fn qos1(topic: &'static str, payload: &'static str, id: u16) -> Packet {
    let mut p = Publish::new(TopicName::from_static(topic), payload.into());
    p.qos = QosPid::AtLeastOnce(pid(id));
    Packet::Publish(p)
}

#[tokio::test(start_paused = true)]
async fn manual_acks_leave_in_arrival_order_and_refuse_stale_tokens() {
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        peer.send(qos1("in/1", "first", 7)).await;
        peer.send(qos1("in/2", "second", 8)).await;
        // Nothing until the application acknowledges; then in order.
        assert!(matches!(peer.recv().await, Some(Packet::PubAck(a)) if a.id == pid(7)));
        assert!(matches!(peer.recv().await, Some(Packet::PubAck(a)) if a.id == pid(8)));
        // Identifier 7 again, for another message.
        peer.send(qos1("in/3", "third", 7)).await;
        assert!(matches!(peer.recv().await, Some(Packet::PubAck(a)) if a.id == pid(7)));
        peer
    });
    let mut c = config(ProtocolVersion::V5);
    c.manual_acks = true;
    let mut client = Client::new(end, TokioClock::new(), c);
    client.connect().await.unwrap();
    let first = client.next_delivery().await.unwrap();
    let second = client.next_delivery().await.unwrap();
    assert_eq!(&first.message.payload[..], b"first");
    let (first, second) = (first.ack.unwrap(), second.ack.unwrap());
    assert_eq!(first.packet_id(), pid(7));
    // The second's acknowledgement waits for the first's.
    client.ack(second).await.unwrap();
    assert_eq!(client.ack(second).await, Err(Error::NotAwaitingAck));
    client.ack(first).await.unwrap();
    let third = client.next_delivery().await.unwrap();
    let third_token = third.ack.unwrap();
    assert_eq!(third_token.packet_id(), pid(7));
    // The first message's token does not acknowledge the third.
    assert_eq!(client.ack(first).await, Err(Error::StaleAck));
    client.ack(third_token).await.unwrap();
    let _peer = server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_manual_acks_deliveries_carry_no_token() {
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        peer.send(qos1("in/1", "auto", 3)).await;
        assert!(matches!(peer.recv().await, Some(Packet::PubAck(a)) if a.id == pid(3)));
        peer
    });
    let mut client = Client::new(end, TokioClock::new(), config(ProtocolVersion::V5));
    client.connect().await.unwrap();
    let delivery = client.next_delivery().await.unwrap();
    assert!(delivery.ack.is_none());
    let _peer = server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn keep_alive_pings_on_its_own_and_times_out_without_an_answer() {
    let (end, far) = pipe();
    let start = tokio::time::Instant::now();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        assert!(matches!(peer.recv().await, Some(Packet::PingReq)));
        let first = start.elapsed();
        peer.send(Packet::PingResp).await;
        assert!(matches!(peer.recv().await, Some(Packet::PingReq)));
        // No answer this time; the client gives up and stops sending.
        (first, peer)
    });
    let mut c = config(ProtocolVersion::V5);
    c.keep_alive = 10;
    c.ping_timeout = Duration::from_secs(5);
    let mut client = Client::new(end, TokioClock::new(), c);
    client.connect().await.unwrap();
    let err = client.next_message().await.unwrap_err();
    let Error::Closed(close) = err else {
        panic!("closed, not {err:?}")
    };
    assert_eq!(close.reason, ReasonCode::KEEP_ALIVE_TIMEOUT);
    assert_eq!(close.initiator, Initiator::Local);
    let (first, _peer) = server.await.unwrap();
    assert_eq!(first.as_secs(), 10);
    // Second ping at 20 s, given up 5 s later.
    assert_eq!(start.elapsed().as_secs(), 25);
    assert!(matches!(
        client.publish("t", "x", QoS::AtMostOnce, false).await,
        Err(Error::Closed(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_lost_transport_is_reported_to_every_caller() {
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        // Dropping the peer closes the pipe.
    });
    let mut client = Client::new(end, TokioClock::new(), config(ProtocolVersion::V5));
    client.connect().await.unwrap();
    server.await.unwrap();
    let err = client.next_message().await.unwrap_err();
    assert!(
        matches!(&err, Error::Closed(c) if c.initiator == Initiator::Transport),
        "{err:?}"
    );
    assert!(!client.is_connected());
    assert_eq!(
        client.close_reason().unwrap().initiator,
        Initiator::Transport
    );
    let again = client.publish("t", "x", QoS::AtLeastOnce, false).await;
    assert_eq!(again, Err(err));
}

async fn resume_completes_inflight(version: ProtocolVersion) {
    let mut c = config(version);
    if version.is_v5() {
        c.session_expiry_interval = 60;
    } else {
        c.clean_start = false;
    }
    // The first connection: the publish goes out and the link dies before PUBACK.
    let (end, far) = pipe();
    let first = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        let Some(Packet::Publish(p)) = peer.recv().await else {
            panic!()
        };
        assert!(!p.dup);
        p.qos.packet_id().unwrap()
    });
    let mut client = Client::new(end, TokioClock::new(), c);
    client.connect().await.unwrap();
    let id = client
        .start_publish(msg("t/resume", "kept", QoS::AtLeastOnce))
        .await
        .unwrap()
        .expect("QoS 1 has an identifier");
    let sent_id = first.await.unwrap();
    assert_eq!(id, sent_id);
    let lost = client.published(id).await.unwrap_err();
    assert!(matches!(lost, Error::Closed(_)), "{lost:?}");

    // The second connection resumes the session: the publish is resent with DUP.
    let parts = client.into_parts();
    assert!(!parts.config.clean_start);
    assert_eq!(parts.session.inflight(), 1);
    let (end, far) = pipe();
    let second = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        let clean = accept(&mut peer, true).await;
        assert!(!clean, "resumption asks for the session");
        let Some(Packet::Publish(p)) = peer.recv().await else {
            panic!()
        };
        assert!(p.dup);
        assert_eq!(&p.payload[..], b"kept");
        let id = p.qos.packet_id().unwrap();
        peer.send(Packet::PubAck(Ack::new(id))).await;
        id
    });
    let mut client = Client::resume(end, parts.clock, parts.config, parts.session);
    assert!(client.connect().await.unwrap().session_present);
    assert_eq!(client.published(id).await, Ok(ReasonCode::SUCCESS));
    assert_eq!(second.await.unwrap(), id);
    // Nothing else is in flight: an unknown identifier is an error, not a hang.
    assert_eq!(
        client.published(pid(999)).await,
        Err(Error::Usage(mqtt_embedded::UsageError::UnknownPacketId(
            pid(999)
        )))
    );
}

#[tokio::test(start_paused = true)]
async fn resume_with_a_new_transport_completes_an_inflight_publish_v5() {
    resume_completes_inflight(ProtocolVersion::V5).await;
}

#[tokio::test(start_paused = true)]
async fn resume_with_a_new_transport_completes_an_inflight_publish_v311() {
    resume_completes_inflight(ProtocolVersion::V311).await;
}

#[tokio::test(start_paused = true)]
async fn a_full_message_buffer_stops_reading_until_messages_are_taken() {
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        for i in 0..3 {
            let topic = TopicName::try_from(format!("in/{i}").as_str()).unwrap();
            peer.send(Packet::Publish(Publish::new(topic, "x".into())))
                .await;
        }
        let Some(Packet::Publish(p)) = peer.recv().await else {
            panic!()
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        peer.send(Packet::PubAck(Ack::new(p.qos.packet_id().unwrap())))
            .await;
        peer
    });
    let mut client = Client::new(end, TokioClock::new(), config(ProtocolVersion::V311));
    client.set_max_buffered_messages(2);
    client.connect().await.unwrap();
    let id = client
        .start_publish(msg("out", "y", QoS::AtLeastOnce))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.published(id).await, Err(Error::Backlog));
    let mut topics = Vec::new();
    while let Some(m) = client.try_next_message() {
        topics.push(m.topic.as_str().to_owned());
    }
    assert_eq!(topics, ["in/0", "in/1", "in/2"]);
    assert_eq!(client.published(id).await, Ok(ReasonCode::SUCCESS));
    let _peer = server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refusing_connack_is_reported_with_its_reason() {
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let (end, far) = pipe();
        let server = tokio::spawn(async move {
            let mut peer = Peer::new(far);
            assert!(matches!(peer.recv().await, Some(Packet::Connect(_))));
            peer.send(Packet::ConnAck(Box::new(ConnAck::new(
                false,
                ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            ))))
            .await;
            peer
        });
        let mut client = Client::new(end, TokioClock::new(), config(version));
        assert_eq!(
            client.connect().await,
            Err(Error::Refused(ReasonCode::BAD_USER_NAME_OR_PASSWORD))
        );
        let _peer = server.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_runs_into_the_connect_timeout() {
    let (end, far) = pipe();
    let start = tokio::time::Instant::now();
    let mut c = config(ProtocolVersion::V5);
    c.connect_timeout = Duration::from_secs(7);
    let mut client = Client::new(end, TokioClock::new(), c);
    let err = client.connect().await.unwrap_err();
    assert!(
        matches!(&err, Error::Closed(c) if c.initiator == Initiator::Local),
        "{err:?}"
    );
    assert_eq!(start.elapsed().as_secs(), 7);
    drop(far);
}

#[tokio::test(start_paused = true)]
async fn disconnect_sends_the_reason_and_ends_the_client() {
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        let Some(Packet::Disconnect(d)) = peer.recv().await else {
            panic!()
        };
        d.reason
    });
    let mut client = Client::new(end, TokioClock::new(), config(ProtocolVersion::V5));
    client.connect().await.unwrap();
    client
        .disconnect_with(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE)
        .await
        .unwrap();
    assert_eq!(
        server.await.unwrap(),
        ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
    );
    let err = client
        .publish("t", "x", QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Closed(c) if c.initiator == Initiator::Local),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn hostile_bytes_and_a_server_disconnect_close_without_panicking() {
    // Garbage after CONNACK: a packet of reserved type 0.
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        peer.send_raw(&[0x00, 0x00, 0xff, 0xff]).await;
        // Under 5.0 the client says why it leaves.
        let Some(Packet::Disconnect(d)) = peer.recv().await else {
            panic!()
        };
        d.reason
    });
    let mut client = Client::new(end, TokioClock::new(), config(ProtocolVersion::V5));
    client.connect().await.unwrap();
    let err = client.next_message().await.unwrap_err();
    assert!(
        matches!(&err, Error::Closed(c) if c.violation.is_some()),
        "{err:?}"
    );
    assert!(server.await.unwrap().is_error());

    // The server's own DISCONNECT ends the connection with its reason.
    let (end, far) = pipe();
    let server = tokio::spawn(async move {
        let mut peer = Peer::new(far);
        accept(&mut peer, false).await;
        peer.send(Packet::Disconnect(Disconnect::new(
            ReasonCode::SERVER_SHUTTING_DOWN,
        )))
        .await;
        peer
    });
    let mut client = Client::new(end, TokioClock::new(), config(ProtocolVersion::V5));
    client.connect().await.unwrap();
    let err = client.next_message().await.unwrap_err();
    assert!(
        matches!(&err, Error::Closed(c) if c.initiator == Initiator::Peer && c.reason == ReasonCode::SERVER_SHUTTING_DOWN),
        "{err:?}"
    );
    let _peer = server.await.unwrap();
}
