//! A broker that misbehaves: the client reports it and never hangs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use mqtt_blocking::{Client, ConnectError, ConnectOptions, Event, ReasonCode};

/// A fake broker that answers the first connection's CONNECT with `reply`
/// and then keeps the socket open for a while.
fn fake_broker(reply: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mqtt://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        let _ = s.write_all(reply);
        let _ = s.read(&mut buf);
    });
    (url, handle)
}

#[test]
fn no_connack_is_a_timeout() {
    let (url, server) = fake_broker(b"");
    let options = ConnectOptions::new(&url)
        .unwrap()
        .connect_timeout(Duration::from_millis(300));
    let err = Client::connect(options).unwrap_err();
    assert!(matches!(err, ConnectError::Timeout(_)), "{err}");
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
    assert!(matches!(err, ConnectError::Closed(_)), "{err}");
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
