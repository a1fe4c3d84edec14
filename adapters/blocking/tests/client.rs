//! The blocking client against the reference broker (in-process) and a
//! real Mosquitto: QoS round trips, retained messages, wills, subscribe
//! failures, keep alive, lost connections and reconnection.

use std::time::Duration;

use mqtt_blocking::{
    mqtt_client, Backoff, BlockingRequests, Client, ClientError, ConnectError, ConnectOptions,
    Event, Incoming, Initiator, Message, OptionSetters, ProtocolVersion, QoS, ReasonCode,
    SubscriptionOptions, WillProps,
};
use mqtt_testkit::{brokers, unique, Mosquitto, OurBroker, Relay};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

/// Options with every request bounded by the test limit.
fn options(url: &str, version: ProtocolVersion) -> ConnectOptions {
    ConnectOptions::new(url)
        .unwrap()
        .version(version)
        .connect_timeout(LIMIT)
        .request_timeout(LIMIT)
}

fn connect(url: &str, version: ProtocolVersion) -> (Client, Incoming) {
    Client::connect(options(url, version)).unwrap()
}

fn next_message(incoming: &Incoming) -> Message {
    incoming
        .recv_message_timeout(LIMIT)
        .expect("a message within the limit")
}

/// The next `Disconnected` event, within the limit.
fn next_loss(incoming: &Incoming) -> (mqtt_blocking::Close, bool) {
    loop {
        match incoming.recv_timeout(LIMIT) {
            Ok(Event::Disconnected {
                close,
                reconnecting,
            }) => return (close, reconnecting),
            Ok(_) => continue,
            Err(e) => panic!("no Disconnected event: {e}"),
        }
    }
}

/// The next `Connected` event's session_present, within the limit.
fn next_connected(incoming: &Incoming) -> bool {
    loop {
        match incoming.recv_timeout(LIMIT) {
            Ok(Event::Connected {
                session_present, ..
            }) => return session_present,
            Ok(_) => continue,
            Err(e) => panic!("no Connected event: {e}"),
        }
    }
}

#[test]
fn qos_round_trips_v5_and_v311() {
    for broker in brokers() {
        for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
            let name = broker.name();
            let topic = unique("rt");
            let (client, incoming) = connect(&broker.url(), version);
            assert_eq!(
                client.subscribe(&topic, QoS::ExactlyOnce),
                Ok(QoS::ExactlyOnce)
            );
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let payload = format!("{qos:?} via {name}");
                let reason = client.publish(&topic, payload.clone(), qos, false).unwrap();
                assert_eq!(reason, ReasonCode::SUCCESS, "{name} {qos:?}");
                let m = next_message(&incoming);
                assert_eq!(m.topic, topic.as_str());
                assert_eq!(&m.payload[..], payload.as_bytes());
                assert_eq!(m.qos, qos, "{name}");
                assert!(!m.retain);
            }
            let unsubscribed = client.unsubscribe(&[&topic]).unwrap();
            assert_eq!(
                unsubscribed.len(),
                usize::from(version == ProtocolVersion::V5)
            );
            client.disconnect().unwrap();
            // Done: the events end, requests fail.
            assert!(incoming.recv_message_timeout(LIMIT).is_none());
            assert!(incoming.recv().is_none());
            assert_eq!(
                client.publish(&topic, "late", QoS::AtMostOnce, false),
                Err(ClientError::Disconnected)
            );
        }
    }
}

#[test]
fn v5_publish_reports_no_matching_subscribers() {
    for broker in brokers() {
        let (client, _incoming) = connect(&broker.url(), ProtocolVersion::V5);
        let reason = client
            .publish(&unique("nobody"), "x", QoS::AtLeastOnce, false)
            .unwrap();
        assert_eq!(
            reason,
            ReasonCode::NO_MATCHING_SUBSCRIBERS,
            "{}",
            broker.name()
        );
        // QoS 2 completes with PUBCOMP, whose reason is success.
        let reason = client
            .publish(&unique("nobody"), "x", QoS::ExactlyOnce, false)
            .unwrap();
        assert!(!reason.is_error(), "{}", broker.name());
        client.disconnect().unwrap();
    }
}

#[test]
fn retained_message_reaches_a_later_subscriber() {
    for broker in brokers() {
        let topic = unique("retained");
        let (publisher, _) = connect(&broker.url(), ProtocolVersion::V311);
        publisher
            .publish(&topic, "kept", QoS::AtLeastOnce, true)
            .unwrap();
        let (subscriber, incoming) = connect(&broker.url(), ProtocolVersion::V5);
        subscriber.subscribe(&topic, QoS::AtLeastOnce).unwrap();
        let m = next_message(&incoming);
        assert_eq!(&m.payload[..], b"kept", "{}", broker.name());
        assert!(m.retain, "{}", broker.name());
        publisher
            .publish(&topic, "", QoS::AtLeastOnce, true)
            .unwrap();
        publisher.disconnect().unwrap();
        subscriber.disconnect().unwrap();
    }
}

#[test]
fn will_is_published_when_the_connection_is_cut() {
    for broker in brokers() {
        for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
            let will_topic = unique("will");
            let (watcher, watched) = connect(&broker.url(), ProtocolVersion::V5);
            watcher.subscribe(&will_topic, QoS::AtLeastOnce).unwrap();

            let relay = Relay::start(broker.addr());
            let mut opts =
                options(&relay.url(), version).will(&will_topic, "gone", QoS::AtLeastOnce, false);
            if version == ProtocolVersion::V5 {
                let mut props = WillProps::default();
                props.will_delay_interval = Some(0);
                opts = opts.will_properties(props);
            }
            let (client, events) = Client::connect(opts).unwrap();
            assert!(watched
                .recv_message_timeout(Duration::from_millis(200))
                .is_none());
            assert_eq!(relay.cut(), 1);
            let m = next_message(&watched);
            assert_eq!(&m.payload[..], b"gone", "{} {version:?}", broker.name());
            let (close, reconnecting) = next_loss(&events);
            assert!(!reconnecting);
            assert_eq!(close.initiator, Initiator::Transport);
            assert!(events.recv().is_none());
            assert_eq!(
                client.publish(&will_topic, "x", QoS::AtMostOnce, false),
                Err(ClientError::Disconnected)
            );
            watcher.disconnect().unwrap();
        }
    }
}

#[test]
fn normal_disconnect_does_not_publish_the_will() {
    for broker in brokers() {
        let will_topic = unique("no-will");
        let (watcher, watched) = connect(&broker.url(), ProtocolVersion::V5);
        watcher.subscribe(&will_topic, QoS::AtLeastOnce).unwrap();
        let opts = options(&broker.url(), ProtocolVersion::V5).will(
            &will_topic,
            "gone",
            QoS::AtLeastOnce,
            false,
        );
        let (client, _) = Client::connect(opts).unwrap();
        client.disconnect().unwrap();
        assert!(
            watched
                .recv_message_timeout(Duration::from_millis(500))
                .is_none(),
            "{}",
            broker.name()
        );
        // Dropping every handle disconnects normally too.
        let opts = options(&broker.url(), ProtocolVersion::V5).will(
            &will_topic,
            "dropped",
            QoS::AtLeastOnce,
            false,
        );
        let (client, events) = Client::connect(opts).unwrap();
        drop(client);
        assert!(events.recv_message_timeout(LIMIT).is_none());
        assert!(watched
            .recv_message_timeout(Duration::from_millis(500))
            .is_none());
        watcher.disconnect().unwrap();
    }
}

#[test]
fn subscribe_failure_is_reported_per_filter() {
    let Some(m) = Mosquitto::start_allowing_subscriptions("open/#") else {
        return;
    };
    let (client, _) = connect(&m.url(), ProtocolVersion::V5);
    let results = client
        .subscribe_with(
            &[
                ("open/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
                ("closed/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
            ],
            None,
        )
        .unwrap();
    assert_eq!(
        results,
        vec![Ok(QoS::AtLeastOnce), Err(ReasonCode::NOT_AUTHORIZED)]
    );
    client.disconnect().unwrap();
    let (client, _) = connect(&m.url(), ProtocolVersion::V311);
    assert_eq!(
        client.subscribe("closed/z", QoS::AtMostOnce),
        Err(ClientError::Refused(ReasonCode::UNSPECIFIED_ERROR))
    );
    client.disconnect().unwrap();
}

#[test]
fn subscribe_failure_is_reported_per_filter_by_our_broker() {
    let broker = OurBroker::start_with_acl("topic read open/#\n");
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let (client, _) = connect(&broker.url(), version);
        let results = client
            .subscribe_with(
                &[
                    ("open/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
                    ("closed/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
                ],
                None,
            )
            .unwrap();
        let refused = if version == ProtocolVersion::V5 {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::UNSPECIFIED_ERROR
        };
        assert_eq!(
            results,
            vec![Ok(QoS::AtLeastOnce), Err(refused)],
            "{version:?}"
        );
        client.disconnect().unwrap();
    }
}

#[test]
fn a_subscription_the_broker_calls_a_protocol_error_ends_the_connection() {
    // A shared subscription with No Local is a protocol error [MQTT-3.8.3-4].
    let broker = OurBroker::start();
    let (client, events) = connect(&broker.url(), ProtocolVersion::V5);
    let mut no_local = SubscriptionOptions::new(QoS::AtLeastOnce);
    no_local.no_local = true;
    assert_eq!(
        client.subscribe_with(&[("$share/g/x", no_local)], None),
        Err(ClientError::ConnectionLost)
    );
    let (close, reconnecting) = next_loss(&events);
    assert!(!reconnecting);
    assert_eq!(close.reason, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(close.initiator, Initiator::Peer);
}

#[test]
fn invalid_topics_are_refused_before_sending() {
    let broker = OurBroker::start();
    let (client, _) = connect(&broker.url(), ProtocolVersion::V5);
    assert!(matches!(
        client.publish("a/+", "x", QoS::AtMostOnce, false),
        Err(ClientError::Topic(_))
    ));
    assert!(matches!(
        client.unsubscribe(&["a/#/b"]),
        Err(ClientError::Topic(_))
    ));
    client.publish("a/b", "x", QoS::AtLeastOnce, false).unwrap();
    client.disconnect().unwrap();
}

#[test]
fn keep_alive_keeps_an_idle_connection_open() {
    for broker in brokers() {
        let opts = options(&broker.url(), ProtocolVersion::V5).keep_alive(1);
        let (client, events) = Client::connect(opts).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_millis(3500);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match events.recv_timeout(left) {
                Ok(Event::Disconnected { close, .. }) => {
                    panic!("{}: disconnected: {close:?}", broker.name())
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        client
            .publish(&unique("alive"), "x", QoS::AtLeastOnce, false)
            .unwrap();
        client.disconnect().unwrap();
    }
}

#[test]
fn refused_connection_is_an_error() {
    let conf = "allow_anonymous false\npassword_file {dir}/passwd";
    let Some(m) = Mosquitto::start_with_files(conf, &[("passwd", b"")]) else {
        return;
    };
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let err = Client::connect(options(&m.url(), version)).unwrap_err();
        let reason = err.reason_code().unwrap_or_else(|| panic!("{err}"));
        assert!(
            reason == ReasonCode::NOT_AUTHORIZED || reason == ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            "{version:?}: {err}"
        );
    }
    let port = mqtt_testkit::free_port();
    let err = Client::connect(options(
        &format!("mqtt://127.0.0.1:{port}"),
        ProtocolVersion::V5,
    ))
    .unwrap_err();
    assert!(matches!(err, ConnectError::Io(_)), "{err}");
    let err = Client::connect(options("mqtt://127.0.0.1:1", ProtocolVersion::V5).client_id("a\0"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Protocol(mqtt_client::ConnectError::InvalidOption { .. })
        ),
        "{err}"
    );
}

#[test]
fn reconnection_resumes_the_session_and_completes_a_publish_in_flight() {
    for broker in brokers() {
        for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
            let name = broker.name();
            let topic = unique("resume");
            let (watcher, watched) = connect(&broker.url(), ProtocolVersion::V5);
            watcher.subscribe(&topic, QoS::AtLeastOnce).unwrap();

            let relay = Relay::start(broker.addr());
            let opts = options(&relay.url(), version)
                .client_id(&unique("resumer"))
                .clean_start(version == ProtocolVersion::V5)
                .session_expiry(60)
                .reconnect(Backoff::new(
                    Duration::from_millis(50),
                    Duration::from_millis(400),
                ));
            let (client, events) = Client::connect(opts).unwrap();
            assert!(!next_connected(&events), "the first connection is clean");

            // The PUBLISH vanishes in transit, then the connection breaks.
            relay.stall(true);
            let publisher = client.clone();
            let t = topic.clone();
            let in_flight = std::thread::spawn(move || {
                publisher.publish(&t, "across the outage", QoS::AtLeastOnce, false)
            });
            std::thread::sleep(Duration::from_millis(300));
            assert!(!in_flight.is_finished(), "{name}: no PUBACK can have come");
            relay.refuse(true);
            relay.stall(false);
            assert_eq!(relay.cut(), 1);
            let during = client.clone();
            let t = topic.clone();
            let made_during = std::thread::spawn(move || {
                during.publish(&t, "during the outage", QoS::ExactlyOnce, false)
            });
            std::thread::sleep(Duration::from_millis(300));
            relay.refuse(false);

            let (_, reconnecting) = next_loss(&events);
            assert!(reconnecting);
            assert!(
                next_connected(&events),
                "{name} {version:?}: session resumed"
            );
            let reason = in_flight.join().unwrap();
            assert_eq!(
                reason.map(|r| r.is_error()),
                Ok(false),
                "{name} {version:?}"
            );
            let reason = made_during.join().unwrap();
            assert_eq!(
                reason.map(|r| r.is_error()),
                Ok(false),
                "{name} {version:?}"
            );
            let mut got = vec![
                next_message(&watched).payload,
                next_message(&watched).payload,
            ];
            got.sort();
            assert_eq!(
                got,
                vec!["across the outage", "during the outage"],
                "{name} {version:?}"
            );
            assert!(relay.accepted() >= 2);

            client.disconnect().unwrap();
            watcher.disconnect().unwrap();
        }
    }
}

#[test]
fn slow_application_gets_every_message_with_bounded_buffering() {
    // With room for 4 waiting events the client stops reading while the
    // application sleeps; nothing is lost, the broker holds the rest.
    let broker = OurBroker::start();
    let topic = unique("slow");
    let opts = options(&broker.url(), ProtocolVersion::V5).incoming_capacity(4);
    let (client, incoming) = Client::connect(opts).unwrap();
    client.subscribe(&topic, QoS::AtLeastOnce).unwrap();
    let (publisher, _) = connect(&broker.url(), ProtocolVersion::V5);
    for i in 0..200u32 {
        publisher
            .publish(&topic, i.to_string(), QoS::AtLeastOnce, false)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..200u32 {
        let m = next_message(&incoming);
        assert_eq!(m.payload, i.to_string());
    }
    client.disconnect().unwrap();
    publisher.disconnect().unwrap();
}
