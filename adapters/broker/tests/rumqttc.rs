//! The broker driven by rumqttc (crates.io, 0.25), in-process on tokio: its
//! 3.1.1 client (`rumqttc::AsyncClient`) and its 5.0 client
//! (`rumqttc::v5::AsyncClient`).
//!
//! Each client's event loop runs in its own task and forwards the packets it
//! receives, and the error that ends it, over a channel; every wait on that
//! channel is bounded with `tokio::time::timeout`, and so is every test.

mod common;

use std::collections::VecDeque;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use common::BrokerProcess;
use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, Packet as Packet5};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

/// The longest a single wait may take.
const WAIT: Duration = Duration::from_secs(10);
/// The longest a whole test may take.
const TEST: Duration = Duration::from_secs(30);

/// What one client's event loop received: incoming packets, then the error
/// that ended it. The loop is not polled again after an error, so rumqttc
/// does not reconnect behind the test's back.
struct Events<P, E> {
    rx: mpsc::UnboundedReceiver<Result<P, E>>,
    /// Packets received while waiting for another one, in order.
    pending: VecDeque<P>,
    task: JoinHandle<()>,
}

impl<P, E> Drop for Events<P, E> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One step of a rumqttc event loop, either version: the packet received,
/// if it was an incoming one.
trait Step: Send + 'static {
    type P: Debug + Send + 'static;
    type E: Debug + Send + 'static;
    fn step(&mut self) -> impl Future<Output = Result<Option<Self::P>, Self::E>> + Send;
}

impl Step for rumqttc::EventLoop {
    type P = Packet;
    type E = rumqttc::ConnectionError;
    async fn step(&mut self) -> Result<Option<Packet>, Self::E> {
        Ok(match self.poll().await? {
            Event::Incoming(p) => Some(p),
            Event::Outgoing(_) => None,
        })
    }
}

impl Step for rumqttc::v5::EventLoop {
    type P = Packet5;
    type E = rumqttc::v5::ConnectionError;
    async fn step(&mut self) -> Result<Option<Packet5>, Self::E> {
        Ok(match self.poll().await? {
            rumqttc::v5::Event::Incoming(p) => Some(p),
            rumqttc::v5::Event::Outgoing(_) => None,
        })
    }
}

impl<P: Debug + Send + 'static, E: Debug + Send + 'static> Events<P, E> {
    /// Runs the event loop in a task until it fails.
    fn spawn<L: Step<P = P, E = E>>(mut el: L) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match el.step().await {
                    Ok(None) => {}
                    Ok(Some(p)) => {
                        if tx.send(Ok(p)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        Events {
            rx,
            pending: VecDeque::new(),
            task,
        }
    }

    /// The next packet accepted by `f`, among those set aside first; the
    /// others are set aside. Panics after [`WAIT`] or on an error.
    async fn next<T>(&mut self, what: &str, mut f: impl FnMut(&P) -> Option<T>) -> T {
        if let Some(i) = self.pending.iter().position(|p| f(p).is_some()) {
            let p = self.pending.remove(i).expect("the position just found");
            return f(&p).expect("accepted just now");
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let item = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("the event loop ended waiting for {what}"));
            match item {
                Ok(p) => match f(&p) {
                    Some(t) => return t,
                    None => self.pending.push_back(p),
                },
                Err(e) => panic!("the connection failed waiting for {what}: {e:?}"),
            }
        }
    }

    /// Waits for the error that ends the event loop; returns it with the
    /// packets received before it.
    async fn failure(&mut self, what: &str) -> (Vec<P>, E) {
        let mut before: Vec<P> = self.pending.drain(..).collect();
        let deadline = Instant::now() + WAIT;
        loop {
            let item = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("the event loop ended silently waiting for {what}"));
            match item {
                Ok(p) => before.push(p),
                Err(e) => return (before, e),
            }
        }
    }

    /// Every packet accepted by `f` within `d` (for checking that nothing
    /// more arrives).
    async fn within(&mut self, d: Duration, mut f: impl FnMut(&P) -> bool) -> Vec<P> {
        let mut got: Vec<P> = Vec::new();
        let mut kept = VecDeque::new();
        for p in self.pending.drain(..) {
            if f(&p) {
                got.push(p);
            } else {
                kept.push_back(p);
            }
        }
        self.pending = kept;
        let deadline = Instant::now() + d;
        while let Ok(Some(item)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            match item {
                Ok(p) if f(&p) => got.push(p),
                Ok(p) => self.pending.push_back(p),
                Err(e) => panic!("the connection failed: {e:?}"),
            }
        }
        got
    }
}

// ----- one client of either version ---------------------------------------------------

type Events4 = Events<Packet, rumqttc::ConnectionError>;
type Events5 = Events<Packet5, rumqttc::v5::ConnectionError>;

/// A received PUBLISH, whichever the version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    topic: String,
    qos: u8,
    retain: bool,
    payload: String,
}

/// A connected rumqttc client: 3.1.1 or 5.0.
enum Peer {
    V4(AsyncClient, Events4),
    V5(rumqttc::v5::AsyncClient, Events5),
}

fn qos4(q: u8) -> QoS {
    rumqttc::qos(q).expect("0, 1 or 2")
}

fn qos5(q: u8) -> QoS5 {
    rumqttc::v5::mqttbytes::qos(q).expect("0, 1 or 2")
}

impl Peer {
    /// Connects (3.1.1 or 5.0) and returns the CONNACK's session present.
    async fn connect(b: &BrokerProcess, v5: bool, id: &str, clean: bool) -> (Peer, bool) {
        if v5 {
            let mut opts = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", b.addr.port());
            opts.set_keep_alive(Duration::from_secs(30))
                .set_clean_start(clean);
            let (client, el) = rumqttc::v5::AsyncClient::new(opts, 64);
            let mut ev = Events::spawn(el);
            let present = ev
                .next("CONNACK", |p| match p {
                    Packet5::ConnAck(a) => Some((a.code, a.session_present)),
                    _ => None,
                })
                .await;
            assert_eq!(
                present.0,
                rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success
            );
            (Peer::V5(client, ev), present.1)
        } else {
            let mut opts = MqttOptions::new(id, "127.0.0.1", b.addr.port());
            opts.set_keep_alive(Duration::from_secs(30))
                .set_clean_session(clean);
            let (client, el) = AsyncClient::new(opts, 64);
            let mut ev = Events::spawn(el);
            let present = ev
                .next("CONNACK", |p| match p {
                    Packet::ConnAck(a) => Some((a.code, a.session_present)),
                    _ => None,
                })
                .await;
            assert_eq!(present.0, rumqttc::ConnectReturnCode::Success);
            (Peer::V4(client, ev), present.1)
        }
    }

    /// Subscribes and returns the SUBACK: the granted QoS, or the failure.
    async fn subscribe(&mut self, filter: &str, qos: u8) -> Result<u8, String> {
        match self {
            Peer::V4(c, ev) => {
                c.subscribe(filter, qos4(qos)).await.unwrap();
                let codes = ev
                    .next("SUBACK", |p| match p {
                        Packet::SubAck(s) => Some(s.return_codes.clone()),
                        _ => None,
                    })
                    .await;
                match codes[..] {
                    [rumqttc::SubscribeReasonCode::Success(q)] => Ok(q as u8),
                    _ => Err(format!("{codes:?}")),
                }
            }
            Peer::V5(c, ev) => {
                c.subscribe(filter, qos5(qos)).await.unwrap();
                let codes = ev
                    .next("SUBACK", |p| match p {
                        Packet5::SubAck(s) => Some(s.return_codes.clone()),
                        _ => None,
                    })
                    .await;
                match codes[..] {
                    [rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(q)] => Ok(q as u8),
                    _ => Err(format!("{codes:?}")),
                }
            }
        }
    }

    /// Publishes, and for QoS 1 and 2 waits for the PUBACK or PUBCOMP.
    async fn publish(&mut self, topic: &str, qos: u8, retain: bool, payload: &str) {
        let payload = payload.as_bytes().to_vec();
        match self {
            Peer::V4(c, ev) => {
                c.publish(topic, qos4(qos), retain, payload).await.unwrap();
                match qos {
                    1 => {
                        ev.next("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(()))
                            .await
                    }
                    2 => {
                        ev.next("PUBCOMP", |p| matches!(p, Packet::PubComp(_)).then_some(()))
                            .await
                    }
                    _ => {}
                }
            }
            Peer::V5(c, ev) => {
                c.publish(topic, qos5(qos), retain, payload).await.unwrap();
                match qos {
                    1 => {
                        ev.next("PUBACK", |p| matches!(p, Packet5::PubAck(_)).then_some(()))
                            .await
                    }
                    2 => {
                        ev.next("PUBCOMP", |p| {
                            matches!(p, Packet5::PubComp(_)).then_some(())
                        })
                        .await
                    }
                    _ => {}
                }
            }
        }
    }

    /// Publishes `n` QoS 1 messages "0", "1", ... from a task of its own,
    /// without waiting for their acknowledgements.
    fn publish_many(&self, topic: &str, n: usize) -> JoinHandle<()> {
        let topic = topic.to_string();
        match self {
            Peer::V4(c, _) => {
                let c = c.clone();
                tokio::spawn(async move {
                    for i in 0..n {
                        c.publish(&topic, QoS::AtLeastOnce, false, i.to_string())
                            .await
                            .unwrap();
                    }
                })
            }
            Peer::V5(c, _) => {
                let c = c.clone();
                tokio::spawn(async move {
                    for i in 0..n {
                        c.publish(&topic, QoS5::AtLeastOnce, false, i.to_string())
                            .await
                            .unwrap();
                    }
                })
            }
        }
    }

    fn msg4(p: &Packet) -> Option<Msg> {
        match p {
            Packet::Publish(m) => Some(Msg {
                topic: m.topic.clone(),
                qos: m.qos as u8,
                retain: m.retain,
                payload: String::from_utf8_lossy(&m.payload).into_owned(),
            }),
            _ => None,
        }
    }

    fn msg5(p: &Packet5) -> Option<Msg> {
        match p {
            Packet5::Publish(m) => Some(Msg {
                topic: String::from_utf8_lossy(&m.topic).into_owned(),
                qos: m.qos as u8,
                retain: m.retain,
                payload: String::from_utf8_lossy(&m.payload).into_owned(),
            }),
            _ => None,
        }
    }

    /// The next message received.
    async fn recv(&mut self) -> Msg {
        match self {
            Peer::V4(_, ev) => ev.next("a PUBLISH", Self::msg4).await,
            Peer::V5(_, ev) => ev.next("a PUBLISH", Self::msg5).await,
        }
    }

    /// The messages received within `d`.
    async fn recv_within(&mut self, d: Duration) -> Vec<Msg> {
        match self {
            Peer::V4(_, ev) => ev
                .within(d, |p| matches!(p, Packet::Publish(_)))
                .await
                .iter()
                .filter_map(Self::msg4)
                .collect(),
            Peer::V5(_, ev) => ev
                .within(d, |p| matches!(p, Packet5::Publish(_)))
                .await
                .iter()
                .filter_map(Self::msg5)
                .collect(),
        }
    }
}

fn tag(v5: bool) -> &'static str {
    if v5 {
        "v5"
    } else {
        "v311"
    }
}

/// Runs a test body within [`TEST`].
async fn bounded(body: impl Future<Output = ()>) {
    timeout(TEST, body).await.expect("the test took too long");
}

// ----- tests ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_0_1_2_round_trips_in_both_versions() {
    let b = BrokerProcess::start();
    bounded(async {
        for v5 in [false, true] {
            let t = tag(v5);
            let (mut sub, _) = Peer::connect(&b, v5, &format!("qos-sub-{t}"), true).await;
            let (mut publ, _) = Peer::connect(&b, v5, &format!("qos-pub-{t}"), true).await;
            for sq in 0..3u8 {
                let topic = format!("rq/{t}/qos/sub{sq}");
                assert_eq!(sub.subscribe(&topic, sq).await, Ok(sq), "{t}");
                for pq in 0..3u8 {
                    let payload = format!("p{pq}-s{sq}");
                    publ.publish(&topic, pq, false, &payload).await;
                    // Delivered at the lower of the two QoS [MQTT-3.8.4-8].
                    let expected = Msg {
                        topic: topic.clone(),
                        qos: pq.min(sq),
                        retain: false,
                        payload,
                    };
                    assert_eq!(sub.recv().await, expected, "{t}");
                }
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_are_delivered_on_subscribe() {
    let b = BrokerProcess::start();
    bounded(async {
        for v5 in [false, true] {
            let t = tag(v5);
            let topic = format!("rq/{t}/retained");
            let (mut publ, _) = Peer::connect(&b, v5, &format!("ret-pub-{t}"), true).await;
            publ.publish(&topic, 1, true, "kept").await;
            // A new subscriber gets it with RETAIN set [MQTT-3.3.1-6], [MQTT-3.3.1-8].
            let (mut sub, _) = Peer::connect(&b, v5, &format!("ret-sub-{t}"), true).await;
            assert_eq!(sub.subscribe(&topic, 1).await, Ok(1));
            let expected = Msg {
                topic: topic.clone(),
                qos: 1,
                retain: true,
                payload: "kept".into(),
            };
            assert_eq!(sub.recv().await, expected, "{t}");
            // Cleared by an empty retained message [MQTT-3.3.1-10]; the
            // subscriber, already there, gets that one with RETAIN clear
            // [MQTT-3.3.1-9] (and empty).
            publ.publish(&topic, 1, true, "").await;
            let got = sub.recv().await;
            assert_eq!((got.retain, got.payload.as_str()), (false, ""), "{t}");
            let (mut late, _) = Peer::connect(&b, v5, &format!("ret-late-{t}"), true).await;
            assert_eq!(late.subscribe(&topic, 1).await, Ok(1));
            assert_eq!(
                late.recv_within(Duration::from_millis(300)).await,
                [],
                "{t}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_broker_uptime_can_be_subscribed_to() {
    let b = BrokerProcess::start();
    bounded(async {
        for v5 in [false, true] {
            let t = tag(v5);
            let (mut sub, _) = Peer::connect(&b, v5, &format!("sys-{t}"), true).await;
            assert_eq!(sub.subscribe("$SYS/broker/uptime", 0).await, Ok(0), "{t}");
            // Retained, or published every second ([sys] interval = 1).
            let m = sub.recv().await;
            assert_eq!(m.topic, "$SYS/broker/uptime", "{t}");
            let secs = m.payload.strip_suffix(" seconds").expect("N seconds");
            assert!(secs.parse::<u64>().is_ok(), "{t}: {m:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_subscription_gives_each_message_to_exactly_one_member() {
    let b = BrokerProcess::start();
    bounded(async {
        // A 5.0 and a 3.1.1 member in one group (section 4.8.2); round robin,
        // the default, splits 20 messages 10 and 10.
        let (mut m5, _) = Peer::connect(&b, true, "share-a", true).await;
        let (mut m4, _) = Peer::connect(&b, false, "share-b", true).await;
        assert_eq!(m5.subscribe("$share/g/rq/jobs", 1).await, Ok(1));
        assert_eq!(m4.subscribe("$share/g/rq/jobs", 1).await, Ok(1));
        let (mut publ, _) = Peer::connect(&b, true, "share-pub", true).await;
        for i in 0..20 {
            publ.publish("rq/jobs", 1, false, &format!("job{i}")).await;
        }
        // Every message was routed before its PUBACK; a short wait collects them.
        let mut got5 = Vec::new();
        let mut got4 = Vec::new();
        for _ in 0..20 {
            got5.extend(m5.recv_within(Duration::from_millis(100)).await);
            got4.extend(m4.recv_within(Duration::from_millis(100)).await);
            if got5.len() + got4.len() >= 20 {
                break;
            }
        }
        got5.extend(m5.recv_within(Duration::from_millis(300)).await);
        got4.extend(m4.recv_within(Duration::from_millis(300)).await);
        let mut all: Vec<String> = got5
            .iter()
            .chain(&got4)
            .map(|m| m.payload.clone())
            .collect();
        all.sort();
        let mut expected: Vec<String> = (0..20).map(|i| format!("job{i}")).collect();
        expected.sort();
        assert_eq!(all, expected, "each message exactly once");
        assert_eq!((got5.len(), got4.len()), (10, 10), "round robin");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_with_the_same_id_takes_over() {
    let b = BrokerProcess::start();
    bounded(async {
        for v5 in [false, true] {
            let t = tag(v5);
            let id = format!("twin-{t}");
            let (first, _) = Peer::connect(&b, v5, &id, true).await;
            let (mut second, _) = Peer::connect(&b, v5, &id, true).await;
            // The broker closes the first connection [MQTT-3.1.4-3]: 3.1.1
            // just closes it; 5.0 sends DISCONNECT 0x8E first (checked byte
            // for byte in mosquitto_clients.rs). The event loop of the first
            // client ends with an error, and its client does not reconnect.
            match first {
                Peer::V4(_, mut ev) => {
                    let (before, e) = ev.failure("the end of the first connection").await;
                    assert!(before.is_empty(), "{before:?}");
                    assert!(
                        matches!(
                            e,
                            rumqttc::ConnectionError::Io(_)
                                | rumqttc::ConnectionError::MqttState(
                                    rumqttc::StateError::Io(_)
                                        | rumqttc::StateError::ConnectionAborted
                                )
                        ),
                        "{e:?}"
                    );
                }
                Peer::V5(_, mut ev) => {
                    let (before, e) = ev.failure("the end of the first connection").await;
                    assert!(before.is_empty(), "{before:?}");
                    // rumqttc 0.25 reports the DISCONNECT as `ServerDisconnect`
                    // only when it carries a Property Length. The broker sends
                    // the shortest form, `E0 01 8E` (as Mosquitto does), which
                    // section 3.14.2.2.1 allows ("If the Remaining Length is
                    // less than 2, a value of 0 is used"); rumqttc's decoder
                    // then drops the packet (its `DisconnectProperties::extract`
                    // wants a length byte) and sees only the end of the stream.
                    assert!(
                        matches!(
                            e,
                            rumqttc::v5::ConnectionError::MqttState(
                                rumqttc::v5::StateError::ServerDisconnect {
                                    reason_code: DisconnectReasonCode::SessionTakenOver,
                                    ..
                                } | rumqttc::v5::StateError::ConnectionAborted
                            )
                        ),
                        "{e:?}"
                    );
                }
            }
            // The second one is connected and working.
            let topic = format!("rq/{t}/twin");
            assert_eq!(second.subscribe(&topic, 1).await, Ok(1));
            second.publish(&topic, 1, false, "still here").await;
            assert_eq!(second.recv().await.payload, "still here", "{t}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_qos_1_messages_arrive_in_order() {
    let b = BrokerProcess::start();
    bounded(async {
        // Ordered topics [MQTT-4.6.0-6]: one publisher, one subscriber,
        // QoS 1 both ways, none lost.
        const N: usize = 500;
        for v5 in [false, true] {
            let t = tag(v5);
            let topic = format!("rq/{t}/order");
            let (mut sub, _) = Peer::connect(&b, v5, &format!("order-sub-{t}"), true).await;
            assert_eq!(sub.subscribe(&topic, 1).await, Ok(1));
            let (publ, _) = Peer::connect(&b, v5, &format!("order-pub-{t}"), true).await;
            let sending = publ.publish_many(&topic, N);
            let mut got = Vec::with_capacity(N);
            for _ in 0..N {
                let m = sub.recv().await;
                assert_eq!((m.topic.as_str(), m.qos), (topic.as_str(), 1), "{t}");
                got.push(m.payload);
            }
            let expected: Vec<String> = (0..N).map(|i| i.to_string()).collect();
            assert_eq!(got, expected, "{t}");
            timeout(WAIT, sending)
                .await
                .expect("publishing ended")
                .unwrap();
            assert_eq!(sub.recv_within(Duration::from_millis(200)).await, [], "{t}");
        }
    })
    .await;
}
