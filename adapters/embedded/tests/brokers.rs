//! The client over real TCP (tokio streams made `embedded-io-async`
//! transports by `embedded-io-adapters`) against the reference broker and a
//! real Eclipse Mosquitto: QoS round trips, retained messages, the will of a
//! killed connection, a refused subscription, and a reconnection that
//! resumes the session with a QoS 1 publish in flight across the outage.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::TokioClock;
use embedded_io_adapters::tokio_1::FromTokio;
use mqtt_embedded::{
    Client, ClientConfig, Error, Message, ProtocolVersion, QoS, ReasonCode, Str,
    SubscriptionOptions, TopicName, Will,
};
use mqtt_testkit::{unique, Mosquitto, OurBroker, Relay};
use tokio::net::TcpStream;

type TcpClient = Client<FromTokio<TcpStream>, TokioClock>;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V5, ProtocolVersion::V311];
/// Bound on every wait for the network.
const WAIT: Duration = Duration::from_secs(10);

fn config(version: ProtocolVersion, id: &str) -> ClientConfig {
    let mut c = ClientConfig::new(version, Str::try_from(id).unwrap());
    c.keep_alive = 30;
    c.connect_timeout = WAIT;
    c
}

async fn open(addr: SocketAddr, config: ClientConfig) -> TcpClient {
    let stream = TcpStream::connect(addr).await.expect("the broker listens");
    let mut client = Client::new(FromTokio::new(stream), TokioClock::new(), config);
    tokio::time::timeout(WAIT, client.connect())
        .await
        .expect("CONNACK in time")
        .expect("accepted");
    client
}

async fn next(client: &mut TcpClient) -> Message {
    tokio::time::timeout(WAIT, client.next_message())
        .await
        .expect("a message in time")
        .expect("the connection is up")
}

async fn round_trips(addr: SocketAddr) {
    for version in VERSIONS {
        let topic = unique("embedded/rt");
        let mut sub = open(addr, config(version, &unique("sub"))).await;
        let granted = sub.subscribe(&format!("{topic}/#"), QoS::ExactlyOnce).await;
        assert_eq!(granted, Ok(QoS::ExactlyOnce));
        let mut publisher = open(addr, config(version, &unique("pub"))).await;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let t = format!("{topic}/{}", qos as u8);
            let reason = publisher.publish(&t, "payload", qos, false).await.unwrap();
            assert!(!reason.is_error());
            let m = next(&mut sub).await;
            assert_eq!(
                (m.topic.as_str(), &m.payload[..], m.qos),
                (t.as_str(), &b"payload"[..], qos)
            );
        }
        assert_eq!(
            sub.unsubscribe(&[&format!("{topic}/#")])
                .await
                .map(|r| r.len()),
            Ok(if version.is_v5() { 1 } else { 0 })
        );
        publisher.disconnect().await.unwrap();
        sub.disconnect().await.unwrap();
    }
}

async fn retained(addr: SocketAddr) {
    for version in VERSIONS {
        let topic = unique("embedded/retained");
        let mut publisher = open(addr, config(version, &unique("pub"))).await;
        publisher
            .publish(&topic, "kept", QoS::AtLeastOnce, true)
            .await
            .unwrap();
        let mut sub = open(addr, config(version, &unique("sub"))).await;
        sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        let m = next(&mut sub).await;
        assert!(m.retain);
        assert_eq!(&m.payload[..], b"kept");
        // Clear it again.
        publisher
            .publish(&topic, "", QoS::AtLeastOnce, true)
            .await
            .unwrap();
    }
}

async fn will_on_killed_connection(addr: SocketAddr) {
    for version in VERSIONS {
        let topic = unique("embedded/will");
        let mut sub = open(addr, config(version, &unique("sub"))).await;
        sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        let mut c = config(version, &unique("dying"));
        c.will = Some(Will {
            topic: TopicName::try_from(topic.as_str()).unwrap(),
            payload: "gone".into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            props: Default::default(),
        });
        let dying = open(addr, c).await;
        // The connection dies without DISCONNECT: the will is published.
        drop(dying);
        let m = next(&mut sub).await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            (topic.as_str(), &b"gone"[..])
        );
    }
}

async fn reconnection_resumes_inflight_publish(addr: SocketAddr) {
    for version in VERSIONS {
        let topic = unique("embedded/resume");
        let mut sub = open(addr, config(version, &unique("sub"))).await;
        sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();

        let relay = Relay::start(addr);
        let mut c = config(version, &unique("resumer"));
        if version.is_v5() {
            c.session_expiry_interval = 300;
        } else {
            c.clean_start = false;
        }
        let mut client = open(relay.addr(), c).await;
        // The publish leaves the client but is lost in transit, then the link drops.
        relay.stall(true);
        let msg = Message::new(
            TopicName::try_from(topic.as_str()).unwrap(),
            "across the outage",
            QoS::AtLeastOnce,
            false,
        );
        let id = client.start_publish(msg).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(relay.cut(), 1);
        relay.stall(false);
        let lost = tokio::time::timeout(WAIT, client.published(id))
            .await
            .unwrap();
        assert!(
            matches!(lost, Err(Error::Closed(_) | Error::Transport(_))),
            "{lost:?}"
        );

        // The caller reconnects with a new transport and the old session.
        let parts = client.into_parts();
        assert_eq!(parts.session.inflight(), 1);
        let stream = TcpStream::connect(relay.addr()).await.unwrap();
        let mut client = Client::resume(
            FromTokio::new(stream),
            parts.clock,
            parts.config,
            parts.session,
        );
        let connected = tokio::time::timeout(WAIT, client.connect())
            .await
            .unwrap()
            .unwrap();
        assert!(connected.session_present);
        let done = tokio::time::timeout(WAIT, client.published(id))
            .await
            .unwrap();
        assert_eq!(done, Ok(ReasonCode::SUCCESS));
        let m = next(&mut sub).await;
        assert_eq!(&m.payload[..], b"across the outage");
        client.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn qos_round_trips_ours() {
    round_trips(OurBroker::start().addr()).await;
}

#[tokio::test]
async fn qos_round_trips_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    round_trips(m.addr()).await;
}

#[tokio::test]
async fn retained_ours() {
    retained(OurBroker::start().addr()).await;
}

#[tokio::test]
async fn retained_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    retained(m.addr()).await;
}

#[tokio::test]
async fn will_on_killed_connection_ours() {
    will_on_killed_connection(OurBroker::start().addr()).await;
}

#[tokio::test]
async fn will_on_killed_connection_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    will_on_killed_connection(m.addr()).await;
}

#[tokio::test]
async fn reconnection_resumes_inflight_publish_ours() {
    let broker = OurBroker::start();
    reconnection_resumes_inflight_publish(broker.addr()).await;
}

#[tokio::test]
async fn reconnection_resumes_inflight_publish_mosquitto() {
    let Some(m) = Mosquitto::start() else { return };
    reconnection_resumes_inflight_publish(m.addr()).await;
}

/// An ACL (Mosquitto's format) that lets anonymous clients use `allowed/#`
/// only.
const ACL: &str = "topic readwrite allowed/#\n";

/// Subscribing to a filter the broker refuses: one result per filter, and
/// the single-filter call turns the failure into an error.
async fn refused_subscriptions(addr: SocketAddr) {
    for version in VERSIONS {
        let mut client = open(addr, config(version, &unique("c"))).await;
        let results = client
            .subscribe_with(
                &[
                    ("allowed/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
                    ("denied/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
                ],
                None,
            )
            .await
            .unwrap();
        let refusal = if version.is_v5() {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::UNSPECIFIED_ERROR
        };
        assert_eq!(results, [Ok(QoS::AtLeastOnce), Err(refusal)]);
        let denied = client.subscribe("denied/y", QoS::AtMostOnce).await;
        assert_eq!(denied, Err(Error::Refused(refusal)));
        client.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn subscribe_failure_ours() {
    let broker = OurBroker::start_with_acl(ACL);
    refused_subscriptions(broker.addr()).await;

    // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]:
    // the broker disconnects (0x82) and the SUBSCRIBE fails with it.
    let broker = OurBroker::start();
    let mut client = open(broker.addr(), config(ProtocolVersion::V5, &unique("c"))).await;
    let mut no_local = SubscriptionOptions::new(QoS::AtLeastOnce);
    no_local.no_local = true;
    let err = client
        .subscribe_with(&[("$share/group/x", no_local)], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Closed(c) if c.reason == ReasonCode::PROTOCOL_ERROR),
        "{err:?}"
    );
}

#[tokio::test]
async fn subscribe_failure_mosquitto() {
    let m = Mosquitto::start_allowing_subscriptions("allowed/#");
    let Some(m) = m else { return };
    refused_subscriptions(m.addr()).await;
}
