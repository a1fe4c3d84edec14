//! The client API beyond request and answer, against the reference broker
//! (and Mosquitto where installed): manual acknowledgement with
//! redelivery after a reconnection, publishes that only queue,
//! `try_publish` on a full request queue, and `Incoming` as a `Stream`.

use std::time::Duration;

use futures_util::StreamExt;
use mqtt_testkit::{brokers, unique, OurBroker, Relay};
use mqtt_tokio::{
    AckToken, Backoff, Client, ClientError, ConnectOptions, Event, Incoming, OptionSetters,
    ProtocolVersion, QoS, ReasonCode, Requests,
};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn connect(url: &str) -> (Client, Incoming) {
    let options = ConnectOptions::new(url).unwrap();
    within("connect", Client::connect(options)).await.unwrap()
}

/// The next message's payload and ack token, skipping other events.
async fn next(incoming: &mut Incoming) -> (String, Option<AckToken>) {
    within("a message", async {
        loop {
            match incoming.recv().await {
                Some(Event::Message { message, ack, .. }) => {
                    return (String::from_utf8_lossy(&message.payload).into_owned(), ack)
                }
                Some(_) => continue,
                None => panic!("the client ended"),
            }
        }
    })
    .await
}

/// Waits for the next `Connected` event.
async fn reconnected(incoming: &mut Incoming) {
    within("a reconnection", async {
        loop {
            match incoming.recv().await {
                Some(Event::Connected { .. }) => return,
                Some(_) => continue,
                None => panic!("the client ended instead of reconnecting"),
            }
        }
    })
    .await
}

/// Whether no message arrives within `wait`.
async fn quiet(incoming: &mut Incoming, wait: Duration) -> bool {
    tokio::time::timeout(wait, incoming.recv_message())
        .await
        .is_err()
}

#[tokio::test]
async fn manual_acks_hold_the_acknowledgement_in_order_and_unacked_messages_come_again() {
    for broker in brokers() {
        for version in [ProtocolVersion::V5, ProtocolVersion::V311] {
            let name = broker.name();
            let topic = unique("manual");
            let relay = Relay::start(broker.addr());
            let options = ConnectOptions::new(&relay.url())
                .unwrap()
                .version(version)
                .client_id(&unique("acker"))
                .clean_start(version == ProtocolVersion::V5)
                .session_expiry(60)
                .manual_acks(true)
                .reconnect(Backoff::new(
                    Duration::from_millis(50),
                    Duration::from_millis(200),
                ));
            let (client, mut incoming) = within("connect", Client::connect(options)).await.unwrap();
            client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
            let (publisher, _p) = connect(&broker.url()).await;
            for payload in ["one", "two"] {
                publisher
                    .publish(&topic, payload, QoS::AtLeastOnce, false)
                    .await
                    .unwrap();
            }
            let (one, one_ack) = next(&mut incoming).await;
            let (two, two_ack) = next(&mut incoming).await;
            assert_eq!((one.as_str(), two.as_str()), ("one", "two"), "{name}");
            // "two" is acknowledged, but its PUBACK must wait for "one"'s
            // [MQTT-4.6.0-2]: after a cut, the broker sends both again.
            client.ack(two_ack.unwrap()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(relay.cut(), 1);
            reconnected(&mut incoming).await;
            let (again_one, new_one) = next(&mut incoming).await;
            let (again_two, new_two) = next(&mut incoming).await;
            assert_eq!(
                (again_one.as_str(), again_two.as_str()),
                ("one", "two"),
                "{name} {version:?}: both come again"
            );
            // The tokens of the first connection are stale.
            assert_eq!(
                client.ack(one_ack.unwrap()).await,
                Err(ClientError::StaleAck),
                "{name}"
            );
            client.ack(new_one.unwrap()).await.unwrap();
            client.ack(new_two.unwrap()).await.unwrap();
            assert_eq!(
                client.ack(new_two.unwrap()).await,
                Err(ClientError::NotAwaitingAck),
                "{name}: twice"
            );
            // Acknowledged now: after another cut nothing comes again.
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(relay.cut(), 1);
            reconnected(&mut incoming).await;
            assert!(
                quiet(&mut incoming, Duration::from_millis(500)).await,
                "{name} {version:?}: acknowledged messages are not sent again"
            );
            client.disconnect().await.unwrap();
            publisher.disconnect().await.unwrap();
        }
    }
}

#[tokio::test]
async fn without_manual_acks_messages_carry_no_ack_token() {
    let broker = OurBroker::start();
    let topic = unique("auto");
    let (client, mut incoming) = connect(&broker.url()).await;
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    client
        .publish(&topic, "x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(next(&mut incoming).await, ("x".to_owned(), None));
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn queued_publishes_are_in_flight_together_and_complete_in_order() {
    let broker = OurBroker::start();
    let topic = unique("queued");
    let (watcher, mut watched) = connect(&broker.url()).await;
    watcher.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let (client, _incoming) = connect(&broker.url()).await;
    let mut pending = Vec::new();
    for i in 0..50 {
        let handle = within(
            "queueing",
            client.queue_publish(&topic, format!("m{i}"), QoS::AtLeastOnce, false),
        )
        .await
        .unwrap();
        pending.push(handle);
    }
    for handle in pending {
        assert_eq!(within("a PUBACK", handle).await, Ok(ReasonCode::SUCCESS));
    }
    for i in 0..50 {
        assert_eq!(next(&mut watched).await.0, format!("m{i}"));
    }
    client.disconnect().await.unwrap();
    watcher.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_queued_publish_returns_before_its_acknowledgement() {
    let broker = OurBroker::start();
    let relay = Relay::start(broker.addr());
    let (client, _incoming) = connect(&relay.url()).await;
    // What the client sends is lost in transit: no PUBACK can come.
    relay.stall(true);
    let mut handle = within(
        "queueing",
        client.queue_publish("q/t", "x", QoS::AtLeastOnce, false),
    )
    .await
    .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut handle)
            .await
            .is_err(),
        "no PUBACK yet"
    );
    drop(client);
}

// A current-thread runtime: the connection task cannot run while the test
// fills the queue without awaiting.
#[tokio::test(flavor = "current_thread")]
async fn try_publish_fails_fast_when_the_request_queue_is_full() {
    let broker = OurBroker::start();
    let (client, _incoming) = connect(&broker.url()).await;
    let mut accepted = Vec::new();
    let mut full = 0;
    for i in 0..200 {
        match client.try_publish("full/t", format!("{i}"), QoS::AtLeastOnce, false) {
            Ok(handle) => accepted.push(handle),
            Err(ClientError::RequestQueueFull) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full > 0, "200 requests overflow the request queue");
    assert!(!accepted.is_empty());
    // What was accepted is published.
    for handle in accepted {
        assert_eq!(
            within("a PUBACK", handle).await,
            Ok(ReasonCode::NO_MATCHING_SUBSCRIBERS)
        );
    }
    // And the queue takes requests again.
    assert!(client
        .try_publish("full/t", "later", QoS::AtMostOnce, false)
        .is_ok());
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn incoming_is_a_stream_that_ends_with_the_client() {
    let broker = OurBroker::start();
    let topic = unique("stream");
    let (client, incoming) = connect(&broker.url()).await;
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    for payload in ["a", "b"] {
        client
            .publish(&topic, payload, QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    let messages = incoming.filter_map(|event| async move {
        match event {
            Event::Message { message, .. } => Some(message.payload),
            _ => None,
        }
    });
    let mut messages = std::pin::pin!(messages);
    assert_eq!(within("a", messages.next()).await.unwrap(), "a");
    assert_eq!(within("b", messages.next()).await.unwrap(), "b");
    client.disconnect().await.unwrap();
    assert_eq!(within("the end", messages.next()).await, None);
}
