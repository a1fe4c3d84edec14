//! The client against the reference broker and a real Eclipse Mosquitto, on
//! both runtimes: every test body runs once under async-std and once under
//! smol, with the connection task spawned on that runtime's executor.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use mqtt_async_std::{
    mqtt_client, Backoff, Client, ClientError, ConnectError, ConnectOptions, Event, Incoming,
    Message, OptionSetters, ProtocolVersion, QoS, ReasonCode, Requests, SubscriptionOptions,
};
use mqtt_testkit::{unique, Mosquitto, OurBroker, Relay};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V5, ProtocolVersion::V311];
/// Bound on every wait for the network.
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
enum Runtime {
    AsyncStd,
    Smol,
}

impl Runtime {
    fn options(self, addr: SocketAddr, version: ProtocolVersion) -> ConnectOptions {
        let spawner: mqtt_async_std::Spawner = match self {
            Runtime::AsyncStd => Arc::new(|task| {
                async_std::task::spawn(task);
            }),
            Runtime::Smol => Arc::new(|task| smol::spawn(task).detach()),
        };
        ConnectOptions::new(&format!("mqtt://{addr}"))
            .unwrap()
            .version(version)
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

async fn connect(options: ConnectOptions) -> (Client, Incoming) {
    within(Client::connect(options)).await.expect("connected")
}

async fn next_message(incoming: &mut Incoming) -> Message {
    within(incoming.recv_message())
        .await
        .expect("the client is running")
}

async fn round_trips(rt: Runtime, addr: SocketAddr) {
    for version in VERSIONS {
        let topic = unique("async-std/rt");
        let (sub, mut incoming) = connect(rt.options(addr, version)).await;
        let granted = sub.subscribe(&format!("{topic}/#"), QoS::ExactlyOnce).await;
        assert_eq!(granted, Ok(QoS::ExactlyOnce));
        let (publisher, _) = connect(rt.options(addr, version)).await;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let t = format!("{topic}/{}", qos as u8);
            let reason = within(publisher.publish(&t, "payload", qos, false)).await;
            assert!(!reason.unwrap().is_error());
            let m = next_message(&mut incoming).await;
            assert_eq!(
                (m.topic.as_str(), &m.payload[..], m.qos),
                (t.as_str(), &b"payload"[..], qos)
            );
        }
        let results = sub.unsubscribe(&[&format!("{topic}/#")]).await.unwrap();
        assert_eq!(results.len(), usize::from(version.is_v5()));
        publisher.disconnect().await.unwrap();
        sub.disconnect().await.unwrap();
        // After disconnecting, the client is done.
        assert_eq!(
            sub.publish("t", "x", QoS::AtMostOnce, false).await,
            Err(ClientError::Disconnected)
        );
    }
}

async fn retained(rt: Runtime, addr: SocketAddr) {
    for version in VERSIONS {
        let topic = unique("async-std/retained");
        let (publisher, _) = connect(rt.options(addr, version)).await;
        within(publisher.publish(&topic, "kept", QoS::AtLeastOnce, true))
            .await
            .unwrap();
        let (sub, mut incoming) = connect(rt.options(addr, version)).await;
        sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        let m = next_message(&mut incoming).await;
        assert!(m.retain);
        assert_eq!(&m.payload[..], b"kept");
        within(publisher.publish(&topic, "", QoS::AtLeastOnce, true))
            .await
            .unwrap();
    }
}

async fn will_on_killed_connection(rt: Runtime, addr: SocketAddr) {
    for version in VERSIONS {
        let topic = unique("async-std/will");
        let (sub, mut incoming) = connect(rt.options(addr, version)).await;
        sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        // The dying client reaches the broker through a relay that is cut.
        let relay = Relay::start(addr);
        let options =
            rt.options(relay.addr(), version)
                .will(&topic, "gone", QoS::AtLeastOnce, false);
        let (_dying, mut dying_events) = connect(options).await;
        assert!(matches!(
            within(dying_events.recv()).await,
            Some(Event::Connected { .. })
        ));
        assert_eq!(relay.cut(), 1);
        let m = next_message(&mut incoming).await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            (topic.as_str(), &b"gone"[..])
        );
        // The killed client reports the loss and, without reconnection, ends.
        let lost = within(dying_events.recv()).await;
        assert!(
            matches!(
                lost,
                Some(Event::Disconnected {
                    reconnecting: false,
                    ..
                })
            ),
            "{lost:?}"
        );
        assert!(within(dying_events.recv()).await.is_none());
    }
}

async fn reconnection_resumes_inflight_publish(rt: Runtime, addr: SocketAddr) {
    for version in VERSIONS {
        let topic = unique("async-std/resume");
        let (sub, mut incoming) = connect(rt.options(addr, version)).await;
        sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();

        let relay = Relay::start(addr);
        let mut options = rt.options(relay.addr(), version).reconnect(Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(500),
        ));
        options = if version.is_v5() {
            options.session_expiry(300)
        } else {
            options.clean_start(false)
        };
        let (client, mut events) = connect(options).await;
        assert!(matches!(
            within(events.recv()).await,
            Some(Event::Connected { .. })
        ));
        // The publish leaves the client but is lost in transit; then the link
        // drops, and the client reconnects on its own and resends it.
        relay.stall(true);
        let publish = client.publish(&topic, "across the outage", QoS::AtLeastOnce, false);
        let outage = async {
            Timer::after(Duration::from_millis(200)).await;
            assert_eq!(relay.cut(), 1);
            relay.stall(false);
        };
        let (done, ()) = within(futures_lite::future::zip(publish, outage)).await;
        assert_eq!(done, Ok(ReasonCode::SUCCESS));
        let m = next_message(&mut incoming).await;
        assert_eq!(&m.payload[..], b"across the outage");
        // The application heard of the outage and of the resumed session.
        let lost = within(events.recv()).await;
        assert!(
            matches!(
                lost,
                Some(Event::Disconnected {
                    reconnecting: true,
                    ..
                })
            ),
            "{lost:?}"
        );
        let back = within(events.recv()).await;
        assert!(
            matches!(
                back,
                Some(Event::Connected {
                    session_present: true,
                    ..
                })
            ),
            "{back:?}"
        );
        assert!(relay.accepted() >= 2);
        client.disconnect().await.unwrap();
    }
}

async fn ours<F: Future<Output = ()>>(rt: Runtime, f: impl FnOnce(Runtime, SocketAddr) -> F) {
    let broker = OurBroker::start();
    f(rt, broker.addr()).await;
}

async fn mosquitto<F: Future<Output = ()>>(rt: Runtime, f: impl FnOnce(Runtime, SocketAddr) -> F) {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    f(rt, broker.addr()).await;
}

on_both_runtimes!(qos_round_trips_ours, |rt| ours(rt, round_trips));
on_both_runtimes!(qos_round_trips_mosquitto, |rt| mosquitto(rt, round_trips));
on_both_runtimes!(retained_ours, |rt| ours(rt, retained));
on_both_runtimes!(retained_mosquitto, |rt| mosquitto(rt, retained));
on_both_runtimes!(will_on_killed_connection_ours, |rt| ours(
    rt,
    will_on_killed_connection
));
on_both_runtimes!(will_on_killed_connection_mosquitto, |rt| mosquitto(
    rt,
    will_on_killed_connection
));
on_both_runtimes!(reconnection_resumes_inflight_publish_ours, |rt| ours(
    rt,
    reconnection_resumes_inflight_publish
));
on_both_runtimes!(reconnection_resumes_inflight_publish_mosquitto, |rt| {
    mosquitto(rt, reconnection_resumes_inflight_publish)
});

/// An ACL (Mosquitto's format) that lets anonymous clients use `allowed/#`
/// only.
const ACL: &str = "topic readwrite allowed/#\n";

/// Subscribing to a filter the broker refuses: one result per filter, and
/// the single-filter call turns the failure into an error.
async fn refused_subscriptions(rt: Runtime, addr: SocketAddr) {
    for version in VERSIONS {
        let (client, _) = connect(rt.options(addr, version)).await;
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
        assert_eq!(denied, Err(ClientError::Refused(refusal)));
        client.disconnect().await.unwrap();
    }
}

async fn subscribe_failure_ours(rt: Runtime) {
    let broker = OurBroker::start_with_acl(ACL);
    refused_subscriptions(rt, broker.addr()).await;

    // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]:
    // the broker disconnects (0x82), the SUBSCRIBE fails, the loss is reported.
    let broker = OurBroker::start();
    let (client, mut events) = connect(rt.options(broker.addr(), ProtocolVersion::V5)).await;
    let mut no_local = SubscriptionOptions::new(QoS::AtLeastOnce);
    no_local.no_local = true;
    let result = within(client.subscribe_with(&[("$share/group/x", no_local)], None)).await;
    assert_eq!(result, Err(ClientError::ConnectionLost));
    loop {
        match within(events.recv()).await {
            Some(Event::Disconnected { close, .. }) => {
                assert_eq!(close.reason, ReasonCode::PROTOCOL_ERROR);
                break;
            }
            Some(_) => continue,
            None => panic!("no Disconnected event"),
        }
    }
}
on_both_runtimes!(subscribe_failure_on_ours, subscribe_failure_ours);

async fn subscribe_failure_mosquitto(rt: Runtime) {
    let broker = Mosquitto::start_allowing_subscriptions("allowed/#");
    let Some(broker) = broker else { return };
    refused_subscriptions(rt, broker.addr()).await;
}
on_both_runtimes!(subscribe_failure_on_mosquitto, subscribe_failure_mosquitto);

async fn connect_failures(rt: Runtime) {
    // Nobody listens.
    let addr = SocketAddr::from(([127, 0, 0, 1], mqtt_testkit::free_port()));
    let err = Client::connect(rt.options(addr, ProtocolVersion::V5))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Io(_)), "{err:?}");
    // An invalid option is reported by connect.
    let broker = OurBroker::start();
    let options =
        rt.options(broker.addr(), ProtocolVersion::V5)
            .will("a/#", "x", QoS::AtMostOnce, false);
    let err = Client::connect(options).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Protocol(mqtt_client::ConnectError::InvalidOption { .. })
        ),
        "{err:?}"
    );
}
on_both_runtimes!(connect_failures_are_reported, connect_failures);

#[test]
fn the_default_task_thread_needs_no_runtime() {
    // No spawner: the connection task runs on a thread of its own, and the
    // application's futures may be polled by any executor at all.
    let broker = OurBroker::start();
    futures_lite::future::block_on(async {
        let options = ConnectOptions::new(&format!("mqtt://{}", broker.addr()))
            .unwrap()
            .client_id(&unique("thread"))
            .keep_alive(1);
        let (client, mut incoming) = connect(options).await;
        let topic = unique("async-std/thread");
        client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        // Keep-alive runs on its own across an idle stretch of two periods.
        Timer::after(Duration::from_millis(2500)).await;
        within(client.publish(&topic, "hi", QoS::AtLeastOnce, false))
            .await
            .unwrap();
        let m = next_message(&mut incoming).await;
        assert_eq!(&m.payload[..], b"hi");
        client.disconnect().await.unwrap();
    });
}
