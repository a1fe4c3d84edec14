//! TLS (rustls) against a real Mosquitto and the reference broker.
#![cfg(feature = "tls")]

use std::time::Duration;

use mqtt_blocking::{BlockingRequests, Client, ConnectError, ConnectOptions, OptionSetters, QoS};
use mqtt_testkit::{unique, Mosquitto, OurBroker, TestCerts};

const LIMIT: Duration = Duration::from_secs(10);

/// Subscribes, publishes at QoS 0, 1 and 2 and receives each message.
fn round_trip(options: ConnectOptions) {
    let (client, incoming) = Client::connect(options.request_timeout(LIMIT)).expect("connect");
    let topic = unique("tls");
    client.subscribe(&topic, QoS::ExactlyOnce).unwrap();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        client.publish(&topic, "secret", qos, false).unwrap();
        let m = incoming.recv_message_timeout(LIMIT).expect("a message");
        assert_eq!((&m.payload[..], m.qos), (&b"secret"[..], qos));
    }
    client.disconnect().unwrap();
    assert!(incoming.recv_message_timeout(LIMIT).is_none());
}

#[test]
fn tls_round_trip_with_mosquitto_and_refusal_of_an_unknown_ca() {
    let certs = TestCerts::generate();
    let Some(m) = Mosquitto::start_with_files(TestCerts::MOSQUITTO_TLS, &certs.files()) else {
        return;
    };
    let port = m.addr().port();
    round_trip(
        ConnectOptions::new(&format!("mqtts://localhost:{port}"))
            .unwrap()
            .tls_config(certs.client_config()),
    );
    round_trip(
        ConnectOptions::new(&format!("mqtt://127.0.0.1:{port}"))
            .unwrap()
            .tls_config(certs.client_config()),
    );
    // Mozilla's roots do not know the test CA.
    let err = Client::connect(ConnectOptions::new(&format!("mqtts://127.0.0.1:{port}")).unwrap())
        .unwrap_err();
    assert!(matches!(err, ConnectError::Io(_)), "{err}");
}

#[test]
fn tls_round_trip_with_our_broker() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-blocking-tls"));
    certs.write_to(&dir).unwrap();
    let broker = OurBroker::start_with(&format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"mqtts\"\ncertfile = \"{}\"\nkeyfile = \"{}\"\n",
        dir.join("server.pem").display(),
        dir.join("server.key").display()
    ));
    let port = broker.addrs()[1].port();
    round_trip(
        ConnectOptions::new(&format!("mqtts://127.0.0.1:{port}"))
            .unwrap()
            .tls_config(certs.client_config()),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mutual_tls_from_pem_files_with_our_broker_and_mosquitto() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-blocking-mtls"));
    certs.write_to(&dir).unwrap();
    let broker = OurBroker::start_with(&format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"mqtts\"\ncertfile = {:?}\nkeyfile = {:?}\n\
         cafile = {:?}\nrequire_certificate = true\n",
        dir.join("server.pem").display().to_string(),
        dir.join("server.key").display().to_string(),
        dir.join("ca.pem").display().to_string(),
    ));
    let mut ports = vec![broker.addrs()[1].port()];
    let mosquitto = Mosquitto::start_with_files(
        &format!("{}\nrequire_certificate true", TestCerts::MOSQUITTO_TLS),
        &certs.files(),
    );
    if let Some(m) = &mosquitto {
        ports.push(m.addr().port());
    }
    for port in ports {
        round_trip(
            ConnectOptions::new(&format!("mqtts://localhost:{port}"))
                .unwrap()
                .ca_file(dir.join("ca.pem"))
                .client_certificate_files(dir.join("client.pem"), dir.join("client.key")),
        );
        // Without the client certificate the handshake is refused.
        let refused = Client::connect(
            ConnectOptions::new(&format!("mqtts://localhost:{port}"))
                .unwrap()
                .ca_file(dir.join("ca.pem"))
                .connect_timeout(Duration::from_secs(3)),
        );
        assert!(refused.is_err(), "port {port}");
    }
    // An unreadable CA file is an invalid option.
    let err = Client::connect(
        ConnectOptions::new("mqtts://127.0.0.1:1")
            .unwrap()
            .ca_file(dir.join("missing.pem")),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Protocol(mqtt_blocking::mqtt_client::ConnectError::InvalidOption { .. })
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
