//! A broker that misbehaves: the client reports it and never hangs.

use std::time::Duration;

use mqtt_blocking::{
    mqtt_client, BlockingRequests, Client, ConnectError, ConnectOptions, Event, OptionSetters,
    ReasonCode,
};
use mqtt_testkit::fake_broker;

#[test]
fn no_connack_is_a_timeout() {
    let (url, server) = fake_broker(b"");
    let options = ConnectOptions::new(&url)
        .unwrap()
        .connect_timeout(Duration::from_millis(300));
    let err = Client::connect(options).unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Protocol(mqtt_client::ConnectError::Timeout(_))
        ),
        "{err}"
    );
    server.join().unwrap();
}

#[test]
fn garbage_before_connack_is_refused() {
    // A PUBLISH where CONNACK must come first [MQTT-3.2.0-1].
    let (url, server) = fake_broker(&[0x30, 0x03, 0x00, 0x01, b'a']);
    let options = ConnectOptions::new(&url)
        .unwrap()
        .connect_timeout(Duration::from_secs(5));
    let err = Client::connect(options).unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Protocol(mqtt_client::ConnectError::Closed(_))
        ),
        "{err}"
    );
    assert!(err.reason_code().is_some_and(ReasonCode::is_error), "{err}");
    server.join().unwrap();
}

#[test]
fn malformed_packet_after_connack_ends_the_connection() {
    // CONNACK (5.0, success, no properties), then packet type 0 (reserved).
    let (url, server) = fake_broker(&[0x20, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00]);
    let options = ConnectOptions::new(&url)
        .unwrap()
        .request_timeout(Duration::from_secs(5));
    let (client, incoming) = Client::connect(options).unwrap();
    let close = loop {
        match incoming.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::Disconnected { close, .. }) => break close,
            Ok(_) => continue,
            Err(e) => panic!("no Disconnected event: {e}"),
        }
    };
    assert!(close.violation.is_some(), "{close:?}");
    assert!(close.reason.is_error());
    assert_eq!(
        client.disconnect(),
        Err(mqtt_blocking::ClientError::Disconnected)
    );
    server.join().unwrap();
}
