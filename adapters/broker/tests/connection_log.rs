//! The broker's log at its default level: each client's connect and
//! disconnect with its client identifier, address, protocol version and
//! reason, in text and in JSON.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{broker_command, free_port, require, run, Running, TempDir};

/// The broker, killed when dropped (passing or not).
fn start(port: u16, log: &std::path::Path, args: &[&str]) -> Running {
    let child = broker_command()
        .args(["-p", &port.to_string()])
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let broker = Running(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the broker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker
}

fn wait_for(log: &std::path::Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = std::fs::read_to_string(log).unwrap_or_default();
        if got.contains(text) {
            return got;
        }
        assert!(Instant::now() < deadline, "no {text:?} in:\n{got}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// mosquitto_pub as `client_id` (none: it sends an empty one).
fn publish(port: u16, client_id: &str, version: &str) {
    let mut c = Command::new("mosquitto_pub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .args(["-t", "t", "-m", "x"]);
    if !client_id.is_empty() {
        c.args(["-i", client_id]);
    }
    let out = run(&mut c, Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn connects_and_disconnects_are_logged_with_client_id_address_version_and_reason() {
    if !require("mosquitto_pub") {
        return;
    }
    let dir = TempDir::new("connlog");
    let log = dir.0.join("log");
    let port = free_port();
    let _broker = start(port, &log, &[]);
    publish(port, "sensor-7", "mqttv311");
    let text = wait_for(&log, "client disconnected");
    let connected = text
        .lines()
        .find(|l| l.contains("client connected"))
        .expect("a connect line");
    for part in ["client_id=sensor-7", "peer=127.0.0.1:", "version=3.1.1"] {
        assert!(connected.contains(part), "{part} in {connected}");
    }
    let closed = text
        .lines()
        .find(|l| l.contains("client disconnected"))
        .unwrap();
    // A client that sends no identifier is logged under the one assigned.
    publish(port, "", "mqttv311");
    let text = wait_for(&log, "client_id=auto-");
    assert!(
        text.lines()
            .any(|l| l.contains("client connected") && l.contains("client_id=auto-")),
        "{text}"
    );
    assert!(
        closed.contains("client_id=sensor-7") && closed.contains("reason="),
        "{closed}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    if !require("mosquitto_pub") {
        return;
    }
    let dir = TempDir::new("jsonlog");
    let log = dir.0.join("log");
    let port = free_port();
    let _broker = start(port, &log, &["--log-format", "json"]);
    publish(port, "json-client", "mqttv5");
    let text = wait_for(&log, "client disconnected");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not a JSON object: {line}"
        );
    }
    let connected = text
        .lines()
        .find(|l| l.contains("client connected"))
        .unwrap();
    assert!(
        connected.contains(r#""client_id":"json-client""#),
        "{connected}"
    );
    assert!(connected.contains(r#""version":"5.0""#), "{connected}");
}
