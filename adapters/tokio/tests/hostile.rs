//! A broker that misbehaves: the client reports it and never hangs.

use std::time::Duration;

use mqtt_testkit::fake_broker;
use mqtt_tokio::{
    mqtt_client, Client, ConnectError, ConnectOptions, Event, OptionSetters, ReasonCode, Requests,
};

#[tokio::test]
async fn no_connack_is_a_timeout() {
    let (url, server) = fake_broker(b"");
    let options = ConnectOptions::new(&url)
        .unwrap()
        .connect_timeout(Duration::from_millis(300));
    let err = tokio::time::timeout(Duration::from_secs(5), Client::connect(options))
        .await
        .expect("bounded")
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Protocol(mqtt_client::ConnectError::Timeout(_))
        ),
        "{err}"
    );
    server.join().unwrap();
}

#[tokio::test]
async fn garbage_before_connack_is_refused() {
    // A PUBLISH where CONNACK must come first [MQTT-3.2.0-1].
    let (url, server) = fake_broker(&[0x30, 0x03, 0x00, 0x01, b'a']);
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        Client::connect(ConnectOptions::new(&url).unwrap()),
    )
    .await
    .expect("bounded")
    .unwrap_err();
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

#[tokio::test]
async fn malformed_packet_after_connack_ends_the_connection() {
    // CONNACK (5.0, success, no properties), then packet type 0 (reserved).
    let (url, server) = fake_broker(&[0x20, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00]);
    let (client, mut incoming) = Client::connect(ConnectOptions::new(&url).unwrap())
        .await
        .unwrap();
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match incoming.recv().await {
                Some(Event::Disconnected { close, .. }) => return close,
                Some(_) => continue,
                None => panic!("no Disconnected event"),
            }
        }
    })
    .await
    .expect("bounded");
    assert!(close.violation.is_some(), "{close:?}");
    assert!(close.reason.is_error());
    assert_eq!(
        client.disconnect().await,
        Err(mqtt_tokio::ClientError::Disconnected)
    );
    server.join().unwrap();
}
