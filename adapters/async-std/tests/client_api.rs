//! The client API beyond request and answer, against the reference broker,
//! on async-std and on smol: manual acknowledgement with redelivery after a
//! reconnection, publishes that only queue, `try_publish` on a full
//! request queue, and `Incoming` as a `Stream`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use async_io::Timer;
use futures_lite::StreamExt;
use mqtt_async_std::{
    AckToken, Backoff, Client, ClientError, ConnectOptions, Event, Incoming, OptionSetters, QoS,
    ReasonCode, Requests, Task,
};
use mqtt_testkit::{unique, OurBroker, Relay};

/// Bound on every wait for the network.
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
enum Runtime {
    AsyncStd,
    Smol,
}

impl Runtime {
    fn options(self, url: &str) -> ConnectOptions {
        let spawner: mqtt_async_std::Spawner = match self {
            Runtime::AsyncStd => Arc::new(|task| {
                async_std::task::spawn(task);
            }),
            Runtime::Smol => Arc::new(|task| smol::spawn(task).detach()),
        };
        ConnectOptions::new(url)
            .unwrap()
            .client_id(&unique("client"))
            .connect_timeout(WAIT)
            .spawner(spawner)
    }
}

/// Runs `body` under async-std and under smol, as two tests.
macro_rules! on_both_runtimes {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn async_std() {
                async_std::task::block_on($body(Runtime::AsyncStd));
            }

            #[test]
            fn smol() {
                smol::block_on($body(Runtime::Smol));
            }
        }
    };
}

/// `fut`, or a panic after [`WAIT`].
async fn within<T>(fut: impl Future<Output = T>) -> T {
    let fut = async { Some(fut.await) };
    let timeout = async {
        Timer::after(WAIT).await;
        None
    };
    futures_lite::future::or(fut, timeout)
        .await
        .expect("done in time")
}

/// The next message's payload and ack token, skipping other events.
async fn next(incoming: &mut Incoming) -> (String, Option<AckToken>) {
    within(async {
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

async fn reconnected(incoming: &mut Incoming) {
    within(async {
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

async fn manual_acks(rt: Runtime) {
    let broker = OurBroker::start();
    let relay = Relay::start(broker.addr());
    let topic = unique("async-std/manual");
    let options = rt
        .options(&relay.url())
        .session_expiry(60)
        .manual_acks(true)
        .reconnect(Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ));
    let (client, mut incoming) = within(Client::connect(options)).await.unwrap();
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let (publisher, _p) = within(Client::connect(rt.options(&broker.url())))
        .await
        .unwrap();
    for payload in ["one", "two"] {
        within(publisher.publish(&topic, payload, QoS::AtLeastOnce, false))
            .await
            .unwrap();
    }
    let (_, one) = next(&mut incoming).await;
    let (_, two) = next(&mut incoming).await;
    // "two" waits for "one" [MQTT-4.6.0-2]: both come again after a cut.
    client.ack(two.unwrap()).await.unwrap();
    Timer::after(Duration::from_millis(200)).await;
    assert_eq!(relay.cut(), 1);
    reconnected(&mut incoming).await;
    let (p1, again_one) = next(&mut incoming).await;
    let (p2, again_two) = next(&mut incoming).await;
    assert_eq!((p1.as_str(), p2.as_str()), ("one", "two"));
    assert_eq!(client.ack(one.unwrap()).await, Err(ClientError::StaleAck));
    client.ack(again_one.unwrap()).await.unwrap();
    client.ack(again_two.unwrap()).await.unwrap();
    assert_eq!(
        client.ack(again_two.unwrap()).await,
        Err(ClientError::NotAwaitingAck)
    );
    client.disconnect().await.unwrap();
    publisher.disconnect().await.unwrap();
}
on_both_runtimes!(
    manual_acks_hold_the_acknowledgement_in_order_and_unacked_messages_come_again,
    manual_acks
);

async fn queued(rt: Runtime) {
    let broker = OurBroker::start();
    let topic = unique("async-std/queued");
    let (watcher, mut watched) = within(Client::connect(rt.options(&broker.url())))
        .await
        .unwrap();
    watcher.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let (client, _incoming) = within(Client::connect(rt.options(&broker.url())))
        .await
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..50 {
        let handle = within(client.queue_publish(&topic, format!("m{i}"), QoS::AtLeastOnce, false))
            .await
            .unwrap();
        pending.push(handle);
    }
    for handle in pending {
        assert_eq!(within(handle).await, Ok(ReasonCode::SUCCESS));
    }
    for i in 0..50 {
        assert_eq!(next(&mut watched).await.0, format!("m{i}"));
    }
    client.disconnect().await.unwrap();
    watcher.disconnect().await.unwrap();
}
on_both_runtimes!(
    queued_publishes_are_in_flight_together_and_complete_in_order,
    queued
);

async fn stream(rt: Runtime) {
    let broker = OurBroker::start();
    let topic = unique("async-std/stream");
    let (client, incoming) = within(Client::connect(rt.options(&broker.url())))
        .await
        .unwrap();
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    for payload in ["a", "b"] {
        client
            .publish(&topic, payload, QoS::AtLeastOnce, false)
            .await
            .unwrap();
    }
    let mut messages = incoming.filter_map(|event| match event {
        Event::Message { message, .. } => Some(message.payload),
        _ => None,
    });
    assert_eq!(within(messages.next()).await.unwrap(), "a");
    assert_eq!(within(messages.next()).await.unwrap(), "b");
    client.disconnect().await.unwrap();
    assert_eq!(within(messages.next()).await, None);
}
on_both_runtimes!(incoming_is_a_stream_that_ends_with_the_client, stream);

/// The connection task on a thread of its own, polled only while `gate`
/// is free: the test holds it to keep the task from taking commands.
fn gated_spawner(gate: Arc<Mutex<()>>) -> mqtt_async_std::Spawner {
    Arc::new(move |mut task: Task| {
        let gate = gate.clone();
        std::thread::spawn(move || {
            async_io::block_on(std::future::poll_fn(move |cx| {
                let _free = gate.lock().unwrap_or_else(|e| e.into_inner());
                match task.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(()),
                    Poll::Pending => Poll::Pending,
                }
            }))
        });
    })
}

#[test]
fn try_publish_fails_fast_when_the_request_queue_is_full() {
    async_std::task::block_on(async {
        let broker = OurBroker::start();
        let gate = Arc::new(Mutex::new(()));
        let options = ConnectOptions::new(&broker.url())
            .unwrap()
            .spawner(gated_spawner(gate.clone()));
        let (client, _incoming) = within(Client::connect(options)).await.unwrap();
        let held = gate.lock().unwrap();
        let mut accepted = Vec::new();
        let mut full = 0;
        for i in 0..200 {
            match client.try_publish("full/t", format!("{i}"), QoS::AtLeastOnce, false) {
                Ok(handle) => accepted.push(handle),
                Err(ClientError::RequestQueueFull) => full += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(accepted.len(), 64, "the request queue's bound");
        assert_eq!(full, 200 - 64);
        drop(held);
        for handle in accepted {
            assert_eq!(
                within(handle).await,
                Ok(ReasonCode::NO_MATCHING_SUBSCRIBERS)
            );
        }
        client.disconnect().await.unwrap();
    });
}
