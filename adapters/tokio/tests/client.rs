//! The tokio client against the reference broker (in-process) and a real
//! Mosquitto: QoS round trips, retained messages, wills, subscribe
//! failures, keep alive, lost connections and reconnection.

use std::time::Duration;

use mqtt_testkit::{brokers, unique, Mosquitto, OurBroker, Relay};
use mqtt_tokio::{
    Backoff, Client, ClientError, ConnectOptions, Event, Incoming, Message, OptionSetters,
    ProtocolVersion, QoS, ReasonCode, Requests, SubscriptionOptions, WillProps,
};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn connect(url: &str, version: ProtocolVersion) -> (Client, Incoming) {
    let options = ConnectOptions::new(url).unwrap().version(version);
    within("connect", Client::connect(options)).await.unwrap()
}

/// The next message, skipping other events, within the limit.
async fn next_message(incoming: &mut Incoming) -> Message {
    within("a message", incoming.recv_message())
        .await
        .expect("the client is still running")
}

/// Whether no message arrives within `wait`.
async fn quiet(incoming: &mut Incoming, wait: Duration) -> bool {
    tokio::time::timeout(wait, incoming.recv_message())
        .await
        .is_err()
}

/// The request futures are `Send`: an application spawns them on a
/// multi-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_can_be_spawned_on_a_multi_threaded_runtime() {
    let broker = OurBroker::start();
    let (client, mut incoming) = connect(&broker.url(), ProtocolVersion::V5).await;
    let topic = unique("spawned");
    let (c, t) = (client.clone(), topic.clone());
    let subscribed = tokio::spawn(async move { c.subscribe(&t, QoS::AtLeastOnce).await });
    assert_eq!(
        within("subscribe", subscribed).await.unwrap(),
        Ok(QoS::AtLeastOnce)
    );
    let (c, t) = (client.clone(), topic.clone());
    let published =
        tokio::spawn(async move { c.publish(&t, "spawned", QoS::AtLeastOnce, false).await });
    assert_eq!(
        within("publish", published).await.unwrap(),
        Ok(ReasonCode::SUCCESS)
    );
    assert_eq!(&next_message(&mut incoming).await.payload[..], b"spawned");
    let (c, t) = (client.clone(), topic.clone());
    let unsubscribed = tokio::spawn(async move { c.unsubscribe(&[&t]).await });
    assert_eq!(
        within("unsubscribe", unsubscribed).await.unwrap(),
        Ok(vec![ReasonCode::SUCCESS])
    );
    let disconnected = tokio::spawn(async move { client.disconnect().await });
    assert_eq!(within("disconnect", disconnected).await.unwrap(), Ok(()));
}

#[tokio::test]
async fn qos_round_trips_v5_and_v311() {
    for broker in brokers() {
        for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
            let name = broker.name();
            let topic = unique("rt");
            let (client, mut incoming) = connect(&broker.url(), version).await;
            let granted = client.subscribe(&topic, QoS::ExactlyOnce).await.unwrap();
            assert_eq!(granted, QoS::ExactlyOnce, "{name}");
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let payload = format!("{qos:?} via {name}");
                let reason = within(
                    "publish",
                    client.publish(&topic, payload.clone(), qos, false),
                )
                .await
                .unwrap();
                assert_eq!(reason, ReasonCode::SUCCESS, "{name} {qos:?}");
                let m = next_message(&mut incoming).await;
                assert_eq!(m.topic, topic.as_str());
                assert_eq!(&m.payload[..], payload.as_bytes());
                assert_eq!(m.qos, qos, "{name}");
                assert!(!m.retain);
            }
            assert_eq!(
                client.unsubscribe(&[&topic]).await.unwrap().len(),
                usize::from(version == ProtocolVersion::V5)
            );
            within("disconnect", client.disconnect()).await.unwrap();
            // Done: the stream ends, requests fail.
            assert!(within("the end", incoming.recv_message()).await.is_none());
            assert_eq!(
                client.publish(&topic, "late", QoS::AtMostOnce, false).await,
                Err(ClientError::Disconnected)
            );
        }
    }
}

#[tokio::test]
async fn v5_publish_reports_no_matching_subscribers() {
    for broker in brokers() {
        let (client, _incoming) = connect(&broker.url(), ProtocolVersion::V5).await;
        let reason = client
            .publish(&unique("nobody"), "x", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        assert_eq!(
            reason,
            ReasonCode::NO_MATCHING_SUBSCRIBERS,
            "{}",
            broker.name()
        );
        client.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    for broker in brokers() {
        let topic = unique("retained");
        let (publisher, _) = connect(&broker.url(), ProtocolVersion::V5).await;
        publisher
            .publish(&topic, "kept", QoS::AtLeastOnce, true)
            .await
            .unwrap();
        let (subscriber, mut incoming) = connect(&broker.url(), ProtocolVersion::V311).await;
        subscriber
            .subscribe(&topic, QoS::AtLeastOnce)
            .await
            .unwrap();
        let m = next_message(&mut incoming).await;
        assert_eq!(&m.payload[..], b"kept", "{}", broker.name());
        assert!(m.retain, "{}", broker.name());
        // An empty retained publish clears it.
        publisher
            .publish(&topic, "", QoS::AtLeastOnce, true)
            .await
            .unwrap();
        publisher.disconnect().await.unwrap();
        subscriber.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn will_is_published_when_the_connection_is_cut() {
    for broker in brokers() {
        for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
            let will_topic = unique("will");
            let (watcher, mut incoming) = connect(&broker.url(), ProtocolVersion::V5).await;
            watcher
                .subscribe(&will_topic, QoS::AtLeastOnce)
                .await
                .unwrap();

            let relay = Relay::start(broker.addr());
            let mut options = ConnectOptions::new(&relay.url())
                .unwrap()
                .version(version)
                .will(&will_topic, "gone", QoS::AtLeastOnce, false);
            if version == ProtocolVersion::V5 {
                let mut props = WillProps::default();
                props.will_delay_interval = Some(0);
                options = options.will_properties(props);
            }
            let (client, mut client_events) =
                within("connect", Client::connect(options)).await.unwrap();
            assert!(quiet(&mut incoming, Duration::from_millis(200)).await);
            assert_eq!(relay.cut(), 1);
            let m = next_message(&mut incoming).await;
            assert_eq!(&m.payload[..], b"gone", "{} {version:?}", broker.name());
            // The client saw the loss; it does not reconnect, so it is done.
            let lost = within("the loss", async {
                loop {
                    match client_events.recv().await {
                        Some(Event::Disconnected { reconnecting, .. }) => return reconnecting,
                        Some(_) => continue,
                        None => panic!("no Disconnected event"),
                    }
                }
            })
            .await;
            assert!(!lost);
            assert!(within("the end", client_events.recv()).await.is_none());
            assert_eq!(
                client
                    .publish(&will_topic, "x", QoS::AtMostOnce, false)
                    .await,
                Err(ClientError::Disconnected)
            );
            watcher.disconnect().await.unwrap();
        }
    }
}

#[tokio::test]
async fn normal_disconnect_does_not_publish_the_will() {
    for broker in brokers() {
        let will_topic = unique("no-will");
        let (watcher, mut incoming) = connect(&broker.url(), ProtocolVersion::V5).await;
        watcher
            .subscribe(&will_topic, QoS::AtLeastOnce)
            .await
            .unwrap();
        let options = ConnectOptions::new(&broker.url()).unwrap().will(
            &will_topic,
            "gone",
            QoS::AtLeastOnce,
            false,
        );
        let (client, _) = Client::connect(options).await.unwrap();
        client.disconnect().await.unwrap();
        assert!(
            quiet(&mut incoming, Duration::from_millis(500)).await,
            "{}",
            broker.name()
        );
        // 0x04 asks for the will even so.
        let options = ConnectOptions::new(&broker.url()).unwrap().will(
            &will_topic,
            "asked",
            QoS::AtLeastOnce,
            false,
        );
        let (client, _) = Client::connect(options).await.unwrap();
        client
            .disconnect_with(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE, Default::default())
            .await
            .unwrap();
        assert_eq!(&next_message(&mut incoming).await.payload[..], b"asked");
        watcher.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn a_subscription_the_broker_calls_a_protocol_error_ends_the_connection() {
    // A shared subscription with No Local is a protocol error
    // [MQTT-3.8.3-4]: the broker disconnects (0x82); the SUBSCRIBE fails and
    // the loss is reported.
    let broker = OurBroker::start();
    let (client, mut events) = connect(&broker.url(), ProtocolVersion::V5).await;
    let mut no_local = SubscriptionOptions::new(QoS::AtLeastOnce);
    no_local.no_local = true;
    let result = within(
        "the SUBSCRIBE",
        client.subscribe_with(&[("$share/g/x", no_local)], None),
    )
    .await;
    assert_eq!(result, Err(ClientError::ConnectionLost));
    let close = within("the loss", async {
        loop {
            match events.recv().await {
                Some(Event::Disconnected {
                    close,
                    reconnecting,
                }) => {
                    assert!(!reconnecting);
                    return close;
                }
                Some(_) => continue,
                None => panic!("no Disconnected event"),
            }
        }
    })
    .await;
    assert_eq!(close.reason, ReasonCode::PROTOCOL_ERROR);
    assert_eq!(close.initiator, mqtt_tokio::Initiator::Peer);
}

#[tokio::test]
async fn subscribe_failure_is_reported_per_filter_by_our_broker() {
    let broker = OurBroker::start_with_acl("topic read open/#\n");
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let (client, _) = connect(&broker.url(), version).await;
        let results = client
            .subscribe_with(
                &[
                    ("open/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
                    ("closed/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
                ],
                None,
            )
            .await
            .unwrap();
        // 3.1.1 has one failure code, 0x80.
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
        client.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn subscribe_failure_is_reported_per_filter() {
    let Some(m) = Mosquitto::start_allowing_subscriptions("open/#") else {
        return;
    };
    let (client, _) = connect(&m.url(), ProtocolVersion::V5).await;
    let results = client
        .subscribe_with(
            &[
                ("open/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
                ("closed/x", SubscriptionOptions::new(QoS::AtLeastOnce)),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![Ok(QoS::AtLeastOnce), Err(ReasonCode::NOT_AUTHORIZED)]
    );
    assert_eq!(
        client.subscribe("closed/y", QoS::AtMostOnce).await,
        Err(ClientError::Refused(ReasonCode::NOT_AUTHORIZED))
    );
    client.disconnect().await.unwrap();
    // 3.1.1 has one failure code, 0x80.
    let (client, _) = connect(&m.url(), ProtocolVersion::V311).await;
    assert_eq!(
        client.subscribe("closed/z", QoS::AtMostOnce).await,
        Err(ClientError::Refused(ReasonCode::UNSPECIFIED_ERROR))
    );
    assert_eq!(
        client.subscribe("open/z", QoS::AtMostOnce).await,
        Ok(QoS::AtMostOnce)
    );
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn invalid_topics_are_refused_before_sending() {
    let broker = OurBroker::start();
    let (client, _) = connect(&broker.url(), ProtocolVersion::V5).await;
    assert!(matches!(
        client.publish("a/+", "x", QoS::AtMostOnce, false).await,
        Err(ClientError::Topic(_))
    ));
    assert!(matches!(
        client.subscribe("a/#/b", QoS::AtMostOnce).await,
        Err(ClientError::Topic(_))
    ));
    // The connection is unharmed.
    client
        .publish("a/b", "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn keep_alive_keeps_an_idle_connection_open() {
    // The broker drops a client silent for 1.5 keep alive periods; the
    // client's own PINGREQs must prevent that.
    for broker in brokers() {
        let options = ConnectOptions::new(&broker.url()).unwrap().keep_alive(1);
        let (client, mut incoming) = Client::connect(options).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(3500), async {
            loop {
                match incoming.recv().await {
                    Some(Event::Disconnected { close, .. }) => return close,
                    Some(_) => continue,
                    None => panic!("the client ended"),
                }
            }
        })
        .await;
        assert!(
            waited.is_err(),
            "{}: disconnected: {waited:?}",
            broker.name()
        );
        client
            .publish(&unique("alive"), "x", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        client.disconnect().await.unwrap();
    }
}

#[tokio::test]
async fn refused_connection_is_an_error() {
    let acl = "allow_anonymous false\npassword_file {dir}/passwd";
    let Some(m) = Mosquitto::start_with_files(acl, &[("passwd", b"")]) else {
        return;
    };
    for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
        let options = ConnectOptions::new(&m.url()).unwrap().version(version);
        let err = Client::connect(options).await.unwrap_err();
        let reason = err.reason_code().unwrap_or_else(|| panic!("{err}"));
        assert!(
            reason == ReasonCode::NOT_AUTHORIZED || reason == ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            "{version:?}: {err}"
        );
    }
    // Nobody listening: an IO error.
    let port = mqtt_testkit::free_port();
    let err = Client::connect(ConnectOptions::new(&format!("mqtt://127.0.0.1:{port}")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, mqtt_tokio::ConnectError::Io(_)), "{err}");
}

/// Waits for the next `Connected` event and returns its session_present.
async fn reconnected(events: &mut Incoming) -> bool {
    within("a reconnection", async {
        loop {
            match events.recv().await {
                Some(Event::Connected {
                    session_present, ..
                }) => return session_present,
                Some(_) => continue,
                None => panic!("the client ended instead of reconnecting"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn reconnection_resumes_the_session_and_completes_a_publish_in_flight() {
    for broker in brokers() {
        for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
            let name = broker.name();
            let topic = unique("resume");
            let (watcher, mut watched) = connect(&broker.url(), ProtocolVersion::V5).await;
            watcher.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();

            let relay = Relay::start(broker.addr());
            let options = ConnectOptions::new(&relay.url())
                .unwrap()
                .version(version)
                .client_id(&unique("resumer"))
                .clean_start(version == ProtocolVersion::V5)
                .session_expiry(60)
                .reconnect(Backoff::new(
                    Duration::from_millis(50),
                    Duration::from_millis(400),
                ));
            let (client, mut events) = within("connect", Client::connect(options)).await.unwrap();
            assert!(
                !reconnected(&mut events).await,
                "the first connection is clean"
            );

            // The PUBLISH vanishes in transit, then the connection breaks.
            relay.stall(true);
            let publisher = client.clone();
            let t = topic.clone();
            let in_flight = tokio::spawn(async move {
                publisher
                    .publish(&t, "across the outage", QoS::AtLeastOnce, false)
                    .await
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(!in_flight.is_finished(), "{name}: no PUBACK can have come");
            // While the broker cannot be reached, reconnection attempts fail.
            relay.refuse(true);
            relay.stall(false);
            assert_eq!(relay.cut(), 1);
            let during = client.clone();
            let t = topic.clone();
            let made_during = tokio::spawn(async move {
                during
                    .publish(&t, "during the outage", QoS::AtLeastOnce, false)
                    .await
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            relay.refuse(false);

            assert!(
                reconnected(&mut events).await,
                "{name} {version:?}: session resumed"
            );
            let reason = within("the publish in flight", in_flight).await.unwrap();
            assert_eq!(
                reason.map(|r| r.is_error()),
                Ok(false),
                "{name} {version:?}"
            );
            let reason = within("the publish made during the outage", made_during)
                .await
                .unwrap();
            assert_eq!(
                reason.map(|r| r.is_error()),
                Ok(false),
                "{name} {version:?}"
            );
            let mut got = vec![
                next_message(&mut watched).await.payload,
                next_message(&mut watched).await.payload,
            ];
            got.sort();
            assert_eq!(
                got,
                vec!["across the outage", "during the outage"],
                "{name} {version:?}"
            );
            assert!(relay.accepted() >= 2);

            client.disconnect().await.unwrap();
            watcher.disconnect().await.unwrap();
        }
    }
}

#[tokio::test]
async fn messages_queued_for_an_offline_persistent_session_arrive_after_reconnection() {
    for broker in brokers() {
        let topic = unique("offline");
        let relay = Relay::start(broker.addr());
        let options = ConnectOptions::new(&relay.url())
            .unwrap()
            .client_id(&unique("offline-sub"))
            .session_expiry(60)
            .reconnect(Backoff::new(
                Duration::from_millis(300),
                Duration::from_secs(1),
            ));
        let (client, mut events) = Client::connect(options).await.unwrap();
        client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        relay.refuse(true);
        relay.cut();
        let (publisher, _) = connect(&broker.url(), ProtocolVersion::V5).await;
        // Wait until the broker has noticed the subscriber is gone.
        tokio::time::sleep(Duration::from_millis(200)).await;
        publisher
            .publish(&topic, "while away", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        relay.refuse(false);
        let m = next_message(&mut events).await;
        assert_eq!(&m.payload[..], b"while away", "{}", broker.name());
        client.disconnect().await.unwrap();
        publisher.disconnect().await.unwrap();
    }
}
