//! The brokers the testkit starts answer a real MQTT CONNECT.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mqtt_testkit::{Mosquitto, OurBroker, Relay};

/// CONNECT, MQTT 3.1.1, clean session, keep alive 10 s, client id "tk".
const CONNECT: &[u8] = &[
    0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 2, b't', b'k',
];

fn connack(addr: SocketAddr) -> [u8; 4] {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(CONNECT).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    ack
}

#[test]
fn our_broker_accepts_a_connect() {
    let broker = OurBroker::start();
    assert_eq!(connack(broker.addr()), [0x20, 2, 0, 0]);
    assert!(broker.url().starts_with("mqtt://127.0.0.1:"));
}

#[test]
fn mosquitto_accepts_a_connect() {
    let Some(mosquitto) = Mosquitto::start() else {
        return;
    };
    assert_eq!(connack(mosquitto.addr()), [0x20, 2, 0, 0]);
}

#[test]
fn mosquitto_takes_extra_configuration() {
    // Anonymous access off: CONNACK 0x05 (not authorized) for 3.1.1.
    let Some(mosquitto) = Mosquitto::start_with("allow_anonymous false") else {
        return;
    };
    assert_eq!(connack(mosquitto.addr()), [0x20, 2, 0, 5]);
}

#[test]
fn relay_reaches_the_broker_and_cuts() {
    let broker = OurBroker::start();
    let relay = Relay::start(broker.addr());
    let mut s = TcpStream::connect(relay.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(CONNECT).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0x20, 2, 0, 0]);
    assert_eq!(relay.cut(), 1);
    let mut buf = [0u8; 4];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn our_broker_reports_every_listener() {
    let broker = OurBroker::start_with("[[listener]]\nbind = \"127.0.0.1:0\"\n");
    assert_eq!(broker.addrs().len(), 2);
    assert_ne!(broker.addrs()[0], broker.addrs()[1]);
    assert_eq!(connack(broker.addrs()[1]), [0x20, 2, 0, 0]);
}

#[test]
fn test_certificates_make_a_tls_listener() {
    let certs = mqtt_testkit::TestCerts::generate();
    let Some(m) =
        Mosquitto::start_with_files(mqtt_testkit::TestCerts::MOSQUITTO_TLS, &certs.files())
    else {
        return;
    };
    // A plain CONNECT gets no CONNACK from a TLS listener.
    let mut s = TcpStream::connect(m.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(CONNECT).unwrap();
    let mut buf = [0u8; 4];
    assert!(!matches!(s.read(&mut buf), Ok(4) if buf == [0x20, 2, 0, 0]));
}

/// SUBSCRIBE (3.1.1) to `open/x` and `closed/x` at QoS 0, packet id 1:
/// the SUBACK's two codes.
fn suback_codes(addr: SocketAddr) -> [u8; 2] {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(CONNECT).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0x20, 2, 0, 0]);
    let mut subscribe = vec![0x82, 22, 0, 1, 0, 6];
    subscribe.extend_from_slice(b"open/x\0\0\x08closed/x\0");
    s.write_all(&subscribe).unwrap();
    let mut suback = [0u8; 6];
    s.read_exact(&mut suback).unwrap();
    assert_eq!(suback[..4], [0x90, 4, 0, 1]);
    [suback[4], suback[5]]
}

#[test]
fn our_broker_with_an_acl_refuses_other_subscriptions() {
    let broker = OurBroker::start_with_acl("topic read open/#\n");
    assert_eq!(suback_codes(broker.addr()), [0x00, 0x80]);
}

#[test]
fn mosquitto_allowing_some_subscriptions_refuses_the_others() {
    let Some(mosquitto) = Mosquitto::start_allowing_subscriptions("open/#") else {
        return;
    };
    assert_eq!(suback_codes(mosquitto.addr()), [0x00, 0x80]);
}

#[test]
fn brokers_are_ours_then_mosquitto() {
    let all = mqtt_testkit::brokers();
    assert_eq!(all[0].name(), "mqtt-broker");
    assert!(all.iter().skip(1).all(|b| b.name() == "mosquitto"));
    for b in &all {
        assert_eq!(b.url(), format!("mqtt://{}", b.addr()));
        assert_eq!(connack(b.addr()), [0x20, 2, 0, 0]);
    }
}

#[test]
fn fake_broker_answers_connect_with_its_reply() {
    let (url, server) = mqtt_testkit::fake_broker(&[0x20, 2, 0, 5]);
    let addr: SocketAddr = url.strip_prefix("mqtt://").unwrap().parse().unwrap();
    assert_eq!(connack(addr), [0x20, 2, 0, 5]);
    server.join().unwrap();
}

#[test]
fn test_certificates_give_a_client_configuration_trusting_the_broker() {
    let certs = mqtt_testkit::TestCerts::generate();
    let Some(m) =
        Mosquitto::start_with_files(mqtt_testkit::TestCerts::MOSQUITTO_TLS, &certs.files())
    else {
        return;
    };
    let handshake = |config| -> std::io::Result<()> {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(config, name).unwrap();
        let mut tcp = TcpStream::connect(m.addr())?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        Ok(())
    };
    handshake(certs.client_config()).expect("the test CA is trusted");
    let stranger = mqtt_testkit::TestCerts::generate().client_config();
    assert!(handshake(stranger).is_err(), "another CA is not");
}
