//! TLS (futures-rustls), mutual TLS from PEM files, WebSocket and WebSocket
//! over TLS (async-tungstenite), against the reference broker and, for TLS,
//! a real Mosquitto where installed; under async-std and smol.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use async_io::Timer;
use mqtt_async_std::{Client, ConnectError, ConnectOptions, OptionSetters, QoS, Requests};
use mqtt_testkit::{unique, Mosquitto, OurBroker, TestCerts};

const WAIT: Duration = Duration::from_secs(10);

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

/// Subscribes, publishes at QoS 1 and receives the message over `options`.
async fn round_trip(options: ConnectOptions) {
    let (client, mut incoming) = within(Client::connect(options.connect_timeout(WAIT)))
        .await
        .expect("connect");
    let topic = unique("async-std/transport");
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    within(client.publish(&topic, "over the wire", QoS::AtLeastOnce, false))
        .await
        .unwrap();
    let m = within(incoming.recv_message()).await.unwrap();
    assert_eq!(&m.payload[..], b"over the wire");
    client.disconnect().await.unwrap();
}

/// Our broker with one extra listener of `protocol` on the test
/// certificates in `dir` (`extra`: more listener lines).
fn broker_with(protocol: &str, dir: &Path, extra: &str) -> OurBroker {
    OurBroker::start_with(&format!(
        "[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"{protocol}\"\ncertfile = {:?}\nkeyfile = {:?}\n{extra}",
        dir.join("server.pem").display().to_string(),
        dir.join("server.key").display().to_string(),
    ))
}

fn both(body: impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()>>>) {
    async_std::task::block_on(body());
    smol::block_on(body());
}

#[test]
fn tls_round_trip_with_a_trusted_ca_and_refusal_of_an_unknown_one() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-async-std-tls"));
    certs.write_to(&dir).unwrap();
    let broker = broker_with("mqtts", &dir, "");
    let mut ports = vec![broker.addrs()[1].port()];
    let mosquitto = Mosquitto::start_with_files(TestCerts::MOSQUITTO_TLS, &certs.files());
    if let Some(m) = &mosquitto {
        ports.push(m.addr().port());
    }
    for port in ports {
        let certs = certs.clone();
        both(move || {
            let certs = certs.clone();
            Box::pin(async move {
                round_trip(
                    ConnectOptions::new(&format!("mqtts://localhost:{port}"))
                        .unwrap()
                        .tls_config(certs.client_config()),
                )
                .await;
                // tls_config switches mqtt:// to TLS; an IP address works as a name.
                let options = ConnectOptions::new(&format!("mqtt://127.0.0.1:{port}"))
                    .unwrap()
                    .tls_config(certs.client_config());
                assert!(options.address().is_tls());
                round_trip(options).await;
                // Mozilla's roots do not know the test CA.
                let err = within(Client::connect(
                    ConnectOptions::new(&format!("mqtts://localhost:{port}")).unwrap(),
                ))
                .await
                .unwrap_err();
                assert!(matches!(err, ConnectError::Io(_)), "{err}");
            })
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mutual_tls_from_pem_files() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-async-std-mtls"));
    certs.write_to(&dir).unwrap();
    let broker = broker_with(
        "mqtts",
        &dir,
        &format!(
            "cafile = {:?}\nrequire_certificate = true\n",
            dir.join("ca.pem").display().to_string()
        ),
    );
    let port = broker.addrs()[1].port();
    let d = dir.clone();
    both(move || {
        let dir = d.clone();
        Box::pin(async move {
            round_trip(
                ConnectOptions::new(&format!("mqtts://localhost:{port}"))
                    .unwrap()
                    .ca_file(dir.join("ca.pem"))
                    .client_certificate_files(dir.join("client.pem"), dir.join("client.key")),
            )
            .await;
            // Without the client certificate the broker refuses.
            let refused = within(Client::connect(
                ConnectOptions::new(&format!("mqtts://localhost:{port}"))
                    .unwrap()
                    .ca_file(dir.join("ca.pem"))
                    .connect_timeout(Duration::from_secs(3)),
            ))
            .await;
            assert!(refused.is_err());
            // An unreadable file is an invalid option.
            let err = within(Client::connect(
                ConnectOptions::new("mqtts://127.0.0.1:1")
                    .unwrap()
                    .ca_file(dir.join("missing.pem")),
            ))
            .await
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    ConnectError::Protocol(
                        mqtt_async_std::mqtt_client::ConnectError::InvalidOption { .. }
                    )
                ),
                "{err}"
            );
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn websocket_round_trip_and_refusal_of_an_unknown_path() {
    let broker = OurBroker::start_with("[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"ws\"\n");
    let port = broker.addrs()[1].port();
    both(move || {
        Box::pin(async move {
            round_trip(ConnectOptions::new(&format!("ws://127.0.0.1:{port}/mqtt")).unwrap()).await;
            let err = within(Client::connect(
                ConnectOptions::new(&format!("ws://127.0.0.1:{port}/elsewhere")).unwrap(),
            ))
            .await
            .unwrap_err();
            assert!(matches!(err, ConnectError::WebSocket(_)), "{err}");
        })
    });
}

#[test]
fn websocket_over_tls_round_trip() {
    let certs = TestCerts::generate();
    let dir = std::env::temp_dir().join(unique("mqtt-async-std-wss"));
    certs.write_to(&dir).unwrap();
    let broker = broker_with("wss", &dir, "");
    let port = broker.addrs()[1].port();
    both(move || {
        let dir = dir.clone();
        Box::pin(async move {
            round_trip(
                ConnectOptions::new(&format!("wss://localhost:{port}/mqtt"))
                    .unwrap()
                    .ca_file(dir.join("ca.pem")),
            )
            .await;
        })
    });
}

#[test]
fn large_messages_cross_a_websocket_in_pieces() {
    let broker = OurBroker::start_with("[[listener]]\nbind = \"127.0.0.1:0\"\nprotocol = \"ws\"\n");
    let port = broker.addrs()[1].port();
    async_std::task::block_on(async move {
        let (client, mut incoming) = within(Client::connect(
            ConnectOptions::new(&format!("ws://127.0.0.1:{port}/mqtt")).unwrap(),
        ))
        .await
        .unwrap();
        let topic = unique("async-std/ws-large");
        client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        // Larger than the read chunk: it arrives over several reads.
        let payload = vec![7u8; 100 * 1024];
        within(client.publish(&topic, payload.clone(), QoS::AtLeastOnce, false))
            .await
            .unwrap();
        let m = within(incoming.recv_message()).await.unwrap();
        assert_eq!(&m.payload[..], &payload[..]);
        client.disconnect().await.unwrap();
    });
}
