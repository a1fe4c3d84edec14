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

/// `mosquitto_pub` or `mosquitto_sub` as alice (or with `password`),
/// with these arguments; its output.
fn mosquitto(program: &str, port: &str, password: &str, args: &[&str]) -> std::process::Output {
    run(
        Command::new(program)
            .args(["-h", "127.0.0.1", "-p", port, "-u", "alice", "-P", password])
            .args(args),
        Duration::from_secs(10),
    )
}

/// Scrapes `/metrics` until every `(series, value)` holds (the snapshot is
/// refreshed once a second), within 10 s; the last body.
fn scrape_until(http: SocketAddr, want: &[(&str, f64)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(http, "/metrics");
        assert_eq!(status, 200);
        let missing: Vec<_> = want
            .iter()
            .filter(|(name, v)| value(&body, name) != Some(*v))
            .collect();
        if missing.is_empty() {
            return body;
        }
        assert!(Instant::now() < deadline, "not {missing:?} in:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The labelled series move when their event happens: a QoS 2 publish
/// moves `qos="2"`, messages past a persistent session's
/// `max_queued_messages` move `reason="queue_full"` (and `$SYS` with them),
/// a wrong password moves the refusal's CONNACK reason and the password
/// authentication failures, a shared subscription the group gauge.
#[test]
fn labelled_series_move_with_qos_drops_refusals_and_auth_failures() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") || !require("mosquitto_passwd") {
        return;
    }
    let dir = common::TempDir::new("metrics-labelled");
    let passwords = dir.0.join("passwd");
    let out = run(
        Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(&passwords)
            .args(["alice", "secret"]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{out:?}");
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let broker = BrokerProcess::start_with(&format!(
        "[http]\nbind = \"{http}\"\n[sys]\ninterval = 1\n[limits]\nmax_queued_messages = 2\n\
         [auth]\npassword_file = {:?}\n",
        passwords.display().to_string()
    ));
    let port = broker.port();
    // Two persistent 5.0 sessions, gone after their SUBACK (-E): one on
    // `q`, one in the shared group `g`.
    for (id, filter) in [("offline", "q"), ("member", "$share/g/s")] {
        let args = ["-V", "mqttv5", "-c", "-x", "3600", "-i", id, "-q", "1"];
        let out = mosquitto(
            "mosquitto_sub",
            &port,
            "secret",
            &[&args[..], &["-t", filter, "-E"]].concat(),
        );
        assert!(out.status.success(), "{out:?}");
    }
    // Five QoS 1 messages for the absent session: two fit its queue.
    for n in 0..5 {
        let body = format!("m{n}");
        let out = mosquitto(
            "mosquitto_pub",
            &port,
            "secret",
            &["-q", "1", "-t", "q", "-m", &body],
        );
        assert!(out.status.success(), "{out:?}");
    }
    let out = mosquitto(
        "mosquitto_pub",
        &port,
        "secret",
        &["-q", "2", "-t", "x", "-m", "hello"],
    );
    assert!(out.status.success(), "{out:?}");
    // 3.1.1 return code 4: bad user name or password.
    let out = mosquitto("mosquitto_pub", &port, "wrong", &["-t", "x", "-m", "no"]);
    assert!(!out.status.success(), "{out:?}");

    let p = "mqtt_broker_";
    let metrics = scrape_until(
        http,
        &[
            (&format!("{p}publish_messages_received_total{{qos=\"2\"}}"), 1.0),
            (&format!("{p}publish_bytes_received_total{{qos=\"2\"}}"), 5.0),
            (&format!("{p}publish_messages_received_total{{qos=\"1\"}}"), 5.0),
            (&format!("{p}messages_dropped_total{{reason=\"queue_full\"}}"), 3.0),
            (
                &format!(
                    "{p}connections_refused_total{{reason=\"bad_user_name_or_password\",code=\"0x86\"}}"
                ),
                1.0,
            ),
            (&format!("{p}auth_failures_total{{method=\"password\"}}"), 1.0),
            (&format!("{p}shared_groups"), 1.0),
        ],
    );
    // The other reasons are there, at zero.
    assert_eq!(
        value(
            &metrics,
            &format!("{p}messages_dropped_total{{reason=\"expired\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &metrics,
            &format!("{p}publishes_refused_total{{reason=\"not_authorized\"}}")
        ),
        Some(0.0)
    );
    assert!(
        metrics.contains(&format!("# TYPE {p}messages_dropped_total counter")),
        "{metrics}"
    );

    // `$SYS` in step (published each second, retained).
    let deadline = Instant::now() + Duration::from_secs(10);
    for (topic, want) in [
        ("$SYS/broker/messages/dropped/queue_full", "3"),
        ("$SYS/broker/publish/bytes/received", "15"),
        ("$SYS/broker/clients/refused/bad_user_name_or_password", "1"),
    ] {
        loop {
            let out = mosquitto(
                "mosquitto_sub",
                &port,
                "secret",
                &["-t", topic, "-C", "1", "-W", "5"],
            );
            let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if got == want {
                break;
            }
            assert!(Instant::now() < deadline, "{topic}: {got:?}, not {want}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}
