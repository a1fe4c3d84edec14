//! A graceful stop of the broker process: on SIGTERM every connected 5.0
//! client receives DISCONNECT 0x8B (Server shutting down) before its socket
//! closes, the store is flushed and the process exits; a second signal
//! during the drain ends it at once. Every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::raw_client::{ConnectSpec, RawClient};
use common::{free_port, BrokerProcess, TempDir};
use mqtt_codec::{Packet, ProtocolVersion, QoS, ReasonCode};

const CLIENTS: usize = 200;

fn client(id: &'static str) -> ConnectSpec {
    ConnectSpec {
        version: ProtocolVersion::V5,
        client_id: id,
        clean: true,
        expiry: 0,
        will: None,
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn on_sigterm_every_client_gets_disconnect_0x8b_before_its_socket_closes() {
    let data = TempDir::new("sigterm");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut broker = BrokerProcess::start_durable(port, &data.0, "");
    let ids: Vec<&'static str> = (0..CLIENTS)
        .map(|i| &*Box::leak(format!("c{i}").into_boxed_str()))
        .collect();
    let mut clients: Vec<RawClient> = ids
        .iter()
        .map(|id| RawClient::connect(addr, &client(id)).unwrap().0)
        .collect();
    // A persistent subscriber, to find again after the restart.
    let mut s = ConnectSpec {
        clean: false,
        expiry: 3600,
        ..client("keeper")
    };
    let (mut keeper, _) = RawClient::connect(addr, &s).unwrap();
    keeper.subscribe("kept/#", QoS::AtLeastOnce).unwrap();
    signal(broker.pid(), "TERM");
    let mut told = 0;
    for c in &mut clients {
        match c.recv(Duration::from_secs(10)) {
            Ok(Packet::Disconnect(d)) if d.reason == ReasonCode::SERVER_SHUTTING_DOWN => {
                // Then the socket closes.
                assert!(c.recv(Duration::from_secs(5)).is_err());
                told += 1;
            }
            other => eprintln!("unexpected: {other:?}"),
        }
    }
    assert_eq!(told, CLIENTS, "clients told the server is shutting down");
    let status = broker.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    // The store was flushed: the session and its subscription are back.
    let _again = BrokerProcess::start_durable(port, &data.0, "");
    s.clean = false;
    let (_, present) = RawClient::connect(addr, &s).unwrap();
    assert!(present);
}

#[test]
fn a_second_signal_during_the_drain_exits_at_once() {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut broker = BrokerProcess::start_on(port, "[limits]\nmax_queued_messages = 100000\n");
    // A subscriber that reads nothing: its connection cannot take its last
    // packets, so the drain waits for it.
    let (mut stuck, _) = RawClient::connect(addr, &client("stuck")).unwrap();
    stuck.subscribe("flood", QoS::AtMostOnce).unwrap();
    let (mut p, _) = RawClient::connect(addr, &client("flooder")).unwrap();
    let payload = "x".repeat(64 * 1024);
    for _ in 0..400 {
        p.publish("flood", &payload, QoS::AtMostOnce, 0, false, false)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    signal(broker.pid(), "TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        broker.is_running(),
        "the drain should still wait for the stuck client"
    );
    let at = Instant::now();
    signal(broker.pid(), "TERM");
    let status = broker.wait_exit(Duration::from_secs(3));
    assert!(
        at.elapsed() < Duration::from_secs(2),
        "took {:?}",
        at.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    drop(stuck);
}
