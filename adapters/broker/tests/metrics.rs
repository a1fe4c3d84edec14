//! The metrics and health HTTP listener of the broker binary: Prometheus
//! text at /metrics with the core's counters, /healthz and /readyz.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, require, run, BrokerProcess};

/// One HTTP/1.0 request: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The value of one metric line (`name value`), if present.
fn value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_what_clients_did_and_health_says_ok() {
    if !require("mosquitto_pub") {
        return;
    }
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let broker = BrokerProcess::start_with(&format!("[http]\nbind = \"{http}\"\n"));
    assert_eq!(get(http, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(http, "/readyz"), (200, "ready\n".into()));
    assert_eq!(get(http, "/nothing").0, 404);
    for i in 0..3 {
        let out = run(
            Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &broker.port(), "-q", "1", "-r"])
                .args(["-t", &format!("m/{i}"), "-m", "x"]),
            Duration::from_secs(10),
        );
        assert!(out.status.success());
    }
    // The snapshot is refreshed once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (status, body) = get(http, "/metrics");
        assert_eq!(status, 200);
        if value(&body, "mqtt_broker_messages_received_total") == Some(3.0) {
            break body;
        }
        assert!(Instant::now() < deadline, "never counted:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(value(&metrics, "mqtt_broker_connections_total"), Some(3.0));
    assert_eq!(value(&metrics, "mqtt_broker_retained_messages"), Some(3.0));
    assert_eq!(value(&metrics, "mqtt_broker_connections_open"), Some(0.0));
    assert!(
        value(&metrics, "mqtt_broker_core_turn_seconds_count").is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE mqtt_broker_bytes_received_total counter"));
}
