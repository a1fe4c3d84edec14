//! The blocking client's API beyond request and answer: manual
//! acknowledgement with redelivery after a reconnection (reference broker
//! and Mosquitto where installed), publishes that only queue with a handle
//! to `wait` on, and `try_publish` on a full request queue.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;
use mqtt_blocking::{
    AckToken, Backoff, BlockingRequests, Client, ClientError, ConnectOptions, Event, Incoming,
    OptionSetters, ProtocolVersion, QoS, ReasonCode,
};
use mqtt_testkit::{brokers, unique, OurBroker, Relay};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

fn options(url: &str) -> ConnectOptions {
    ConnectOptions::new(url)
        .unwrap()
        .connect_timeout(LIMIT)
        .request_timeout(LIMIT)
}

/// The next message's payload and ack token, skipping other events.
fn next(incoming: &Incoming) -> (String, Option<AckToken>) {
    loop {
        match incoming.recv_timeout(LIMIT) {
            Ok(Event::Message { message, ack, .. }) => {
                return (String::from_utf8_lossy(&message.payload).into_owned(), ack)
            }
            Ok(_) => continue,
            Err(e) => panic!("no message: {e}"),
        }
    }
}

fn reconnected(incoming: &Incoming) {
    loop {
        match incoming.recv_timeout(LIMIT) {
            Ok(Event::Connected { .. }) => return,
            Ok(_) => continue,
            Err(e) => panic!("no reconnection: {e}"),
        }
    }
}

#[test]
fn manual_acks_hold_the_acknowledgement_in_order_and_unacked_messages_come_again() {
    for broker in brokers() {
        let name = broker.name();
        let relay = Relay::start(broker.addr());
        let topic = unique("blocking/manual");
        let (client, incoming) = Client::connect(
            options(&relay.url())
                .client_id(&unique("acker"))
                .session_expiry(60)
                .manual_acks(true)
                .reconnect(Backoff::new(
                    Duration::from_millis(50),
                    Duration::from_millis(200),
                )),
        )
        .unwrap();
        client.subscribe(&topic, QoS::AtLeastOnce).unwrap();
        let (publisher, _p) = Client::connect(options(&broker.url())).unwrap();
        for payload in ["one", "two"] {
            publisher
                .publish(&topic, payload, QoS::AtLeastOnce, false)
                .unwrap();
        }
        let (_, one) = next(&incoming);
        let (_, two) = next(&incoming);
        // "two" waits for "one" [MQTT-4.6.0-2]: both come again after a cut.
        client.ack(two.unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(relay.cut(), 1);
        reconnected(&incoming);
        let (p1, again_one) = next(&incoming);
        let (p2, again_two) = next(&incoming);
        assert_eq!((p1.as_str(), p2.as_str()), ("one", "two"), "{name}");
        assert_eq!(client.ack(one.unwrap()), Err(ClientError::StaleAck));
        client.ack(again_one.unwrap()).unwrap();
        client.ack(again_two.unwrap()).unwrap();
        assert_eq!(
            client.ack(again_two.unwrap()),
            Err(ClientError::NotAwaitingAck)
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(relay.cut(), 1);
        reconnected(&incoming);
        assert!(
            incoming
                .recv_message_timeout(Duration::from_millis(500))
                .is_none(),
            "{name}: acknowledged messages are not sent again"
        );
        client.disconnect().unwrap();
        publisher.disconnect().unwrap();
    }
}

#[test]
fn queued_publishes_are_in_flight_together_and_each_handle_waits_for_its_answer() {
    let broker = OurBroker::start();
    let topic = unique("blocking/queued");
    let (watcher, watched) = Client::connect(options(&broker.url())).unwrap();
    watcher.subscribe(&topic, QoS::AtLeastOnce).unwrap();
    let (client, _incoming) = Client::connect(options(&broker.url())).unwrap();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            client
                .queue_publish(&topic, format!("m{i}"), QoS::AtLeastOnce, false)
                .unwrap()
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.wait(), Ok(ReasonCode::SUCCESS));
    }
    for i in 0..50 {
        assert_eq!(next(&watched).0, format!("m{i}"));
    }
    client.disconnect().unwrap();
    watcher.disconnect().unwrap();
}

/// A server that accepts one connection, answers its CONNECT (3.1.1) and
/// then reads nothing more: the client's writes block once the socket
/// buffers are full. Returns its URL and the accepted socket (dropping it
/// frees the client).
fn server_that_stops_reading() -> (String, std::thread::JoinHandle<std::net::TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mqtt://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut connect = [0u8; 256];
        let _ = socket.read(&mut connect).unwrap();
        socket.write_all(&[0x20, 0x02, 0x00, 0x00]).unwrap();
        socket
    });
    (url, server)
}

#[test]
fn try_publish_fails_fast_when_the_request_queue_is_full() {
    let (url, server) = server_that_stops_reading();
    let (client, _incoming) =
        Client::connect(options(&url).version(ProtocolVersion::V311).keep_alive(0)).unwrap();
    let socket = server.join().unwrap();
    // Large QoS 0 messages fill the socket buffers, the connection thread
    // blocks writing, and the request queue fills behind it.
    let payload = Bytes::from(vec![b'x'; 256 * 1024]);
    let mut full = false;
    for _ in 0..2000 {
        match client.try_publish("t", payload.clone(), QoS::AtMostOnce, false) {
            Ok(_) => {}
            Err(ClientError::RequestQueueFull) => {
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full, "the request queue is bounded and try_publish says so");
    drop(socket);
}
