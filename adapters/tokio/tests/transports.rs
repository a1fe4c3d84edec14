//! TLS and WebSocket transports, against a real Mosquitto.
#![cfg(all(feature = "tls", feature = "websocket"))]

use std::time::Duration;

use mqtt_testkit::{unique, Mosquitto, OurBroker, TestCerts};
use mqtt_tokio::{Client, ConnectError, ConnectOptions, OptionSetters, QoS, Requests};

const LIMIT: Duration = Duration::from_secs(10);

/// Subscribes, publishes at QoS 1 and receives the message over `options`.
async fn round_trip(options: ConnectOptions) {
    let (client, mut incoming) = tokio::time::timeout(LIMIT, Client::connect(options))
        .await
        .expect("connect in time")
        .expect("connect");
    let topic = unique("transport");
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    client
        .publish(&topic, "over the wire", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let m = tokio::time::timeout(LIMIT, incoming.recv_message())
        .await
        .expect("a message in time")
        .unwrap();
    assert_eq!(&m.payload[..], b"over the wire");
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn tls_round_trip_with_a_trusted_ca_and_refusal_of_an_unknown_one() {
    let certs = TestCerts::generate();
    let Some(m) = Mosquitto::start_with_files(TestCerts::MOSQUITTO_TLS, &certs.files()) else {
        return;
    };
    let port = m.addr().port();
    // mqtts:// with the test CA trusted.
    let options = ConnectOptions::new(&format!("mqtts://localhost:{port}"))
        .unwrap()
        .tls_config(certs.client_config());
    round_trip(options).await;
    // An IP address as the server name works as well (the certificate names it).
    let options = ConnectOptions::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(certs.client_config());
    assert!(options.address().is_tls(), "tls_config switches to TLS");
    round_trip(options).await;
    // Mozilla's roots do not know the test CA.
    let options = ConnectOptions::new(&format!("mqtts://localhost:{port}")).unwrap();
    let err = Client::connect(options).await.unwrap_err();
    assert!(matches!(err, ConnectError::Io(_)), "{err}");
    // Plain MQTT to a TLS listener gets no CONNACK.
    let options = ConnectOptions::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(1));
    assert!(Client::connect(options).await.is_err());
}

// Mosquitto's WebSocket listener does not start in every environment
// (libwebsockets), so WebSocket runs against the reference broker.

#[tokio::test]
async fn websocket_round_trip() {
    let broker = OurBroker::start_with("[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"ws\"\n");
    let port = broker.addrs()[1].port();
    let options = ConnectOptions::new(&format!("ws://127.0.0.1:{port}/mqtt")).unwrap();
    round_trip(options).await;
    // A path the broker does not serve fails the upgrade.
    let options = ConnectOptions::new(&format!("ws://127.0.0.1:{port}/elsewhere")).unwrap();
    let err = Client::connect(options).await.unwrap_err();
    assert!(matches!(err, ConnectError::WebSocket(_)), "{err}");
}

#[tokio::test]
async fn websocket_over_tls_round_trip() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-tokio-wss"));
    certs.write_to(&dir).unwrap();
    let broker = OurBroker::start_with(&format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"wss\"\ncertfile = \"{}\"\nkeyfile = \"{}\"\n",
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    ));
    let port = broker.addrs()[1].port();
    let options = ConnectOptions::new(&format!("wss://localhost:{port}/mqtt"))
        .unwrap()
        .tls_config(certs.client_config());
    round_trip(options).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Our broker with an `mqtts` listener that requires a client certificate
/// the test CA signed; the certificate files are in `dir`.
fn broker_requiring_client_certificates(certs: &TestCerts, dir: &std::path::Path) -> OurBroker {
    certs.write_to(dir).unwrap();
    OurBroker::start_with(&format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"mqtts\"\ncertfile = {:?}\nkeyfile = {:?}\n\
         cafile = {:?}\nrequire_certificate = true\n",
        dir.join("server.pem").display().to_string(),
        dir.join("server.key").display().to_string(),
        dir.join("ca.pem").display().to_string(),
    ))
}

#[tokio::test]
async fn mutual_tls_from_pem_files_without_a_hand_built_rustls_config() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-tokio-mtls"));
    let broker = broker_requiring_client_certificates(&certs, &dir);
    let port = broker.addrs()[1].port();
    // ca_file and the client's certificate and key, as mosquitto_pub takes them.
    let options = ConnectOptions::new(&format!("mqtts://localhost:{port}"))
        .unwrap()
        .ca_file(dir.join("ca.pem"))
        .client_certificate_files(dir.join("client.pem"), dir.join("client.key"));
    round_trip(options).await;
    // ca_file switches mqtt:// to TLS.
    let options = ConnectOptions::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .ca_file(dir.join("ca.pem"))
        .client_certificate_files(dir.join("client.pem"), dir.join("client.key"));
    assert!(options.address().is_tls());
    round_trip(options).await;
    // Without the client certificate the broker refuses the handshake.
    let options = ConnectOptions::new(&format!("mqtts://localhost:{port}"))
        .unwrap()
        .ca_file(dir.join("ca.pem"))
        .connect_timeout(Duration::from_secs(3));
    assert!(Client::connect(options).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unreadable_or_conflicting_tls_files_are_invalid_options() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-tokio-tls-files"));
    certs.write_to(&dir).unwrap();
    let invalid = |err: ConnectError| {
        matches!(
            err,
            ConnectError::Protocol(mqtt_tokio::mqtt_client::ConnectError::InvalidOption { .. })
        )
    };
    // No such file: refused before any connection is tried.
    let options = ConnectOptions::new("mqtts://127.0.0.1:1")
        .unwrap()
        .ca_file(dir.join("missing.pem"));
    assert!(invalid(Client::connect(options).await.unwrap_err()));
    // A key file as the CA file holds no certificate.
    let options = ConnectOptions::new("mqtts://127.0.0.1:1")
        .unwrap()
        .ca_file(dir.join("client.key"));
    assert!(invalid(Client::connect(options).await.unwrap_err()));
    // A certificate as the key.
    let options = ConnectOptions::new("mqtts://127.0.0.1:1")
        .unwrap()
        .client_certificate_files(dir.join("client.pem"), dir.join("client.pem"));
    assert!(invalid(Client::connect(options).await.unwrap_err()));
    // A whole configuration and pieces of another.
    let options = ConnectOptions::new("mqtts://127.0.0.1:1")
        .unwrap()
        .tls_config(certs.client_config())
        .ca_file(dir.join("ca.pem"));
    assert!(invalid(Client::connect(options).await.unwrap_err()));
    let _ = std::fs::remove_dir_all(&dir);
}
