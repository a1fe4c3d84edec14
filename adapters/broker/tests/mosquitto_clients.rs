//! The broker driven by Eclipse Mosquitto's command-line clients
//! (`mosquitto_pub`, `mosquitto_sub`; Debian package mosquitto-clients), in
//! all three protocol versions. Every process is bounded in time.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{require, run, BrokerProcess, Running};

const VERSIONS: [&str; 3] = ["mqttv31", "mqttv311", "mqttv5"];

fn pub_cmd(b: &BrokerProcess, version: &str) -> Command {
    let mut c = Command::new("mosquitto_pub");
    c.args(["-h", "127.0.0.1", "-p", &b.port(), "-V", version]);
    c
}

fn sub_cmd(b: &BrokerProcess, version: &str) -> Command {
    let mut c = Command::new("mosquitto_sub");
    c.args(["-h", "127.0.0.1", "-p", &b.port(), "-V", version]);
    c
}

/// Publishes `message` every 100 ms until `sub` exits (it was started with
/// `-C n`), so the test does not depend on when the subscription took effect.
fn publish_until_received(
    b: &BrokerProcess,
    version: &str,
    topic: &str,
    qos: &str,
    message: &str,
    sub: Running,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sub = sub;
    while Instant::now() < deadline {
        let out = run(
            pub_cmd(b, version).args(["-t", topic, "-q", qos, "-m", message]),
            Duration::from_secs(5),
        );
        assert!(out.status.success(), "mosquitto_pub failed: {out:?}");
        if let Ok(Some(_)) = sub.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sub.output_within(Duration::from_secs(1))
}

#[test]
fn qos_0_1_2_round_trips_in_every_version() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let b = BrokerProcess::start();
    for v in VERSIONS {
        for qos in ["0", "1", "2"] {
            let topic = format!("it/{v}/qos{qos}");
            let sub = Running::spawn(sub_cmd(&b, v).args([
                "-t", &topic, "-q", qos, "-C", "1", "-W", "10", "-F", "%t %q %p",
            ]));
            let got = publish_until_received(&b, v, &topic, qos, "hello", sub);
            assert_eq!(got.trim(), format!("{topic} {qos} hello"), "{v} QoS {qos}");
        }
    }
}

#[test]
fn retained_messages_are_set_delivered_on_subscribe_and_cleared() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let b = BrokerProcess::start();
    for v in VERSIONS {
        let topic = format!("retained/{v}");
        let out = run(
            pub_cmd(&b, v).args(["-t", &topic, "-r", "-q", "1", "-m", "kept"]),
            Duration::from_secs(5),
        );
        assert!(out.status.success());
        // %r: the RETAIN flag as received.
        let out = run(
            sub_cmd(&b, v).args(["-t", &topic, "-C", "1", "-W", "5", "-F", "%r %p"]),
            Duration::from_secs(8),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1 kept", "{v}");
        // An empty retained message clears it.
        let out = run(
            pub_cmd(&b, v).args(["-t", &topic, "-r", "-n"]),
            Duration::from_secs(5),
        );
        assert!(out.status.success());
        let out = run(
            sub_cmd(&b, v).args(["-t", &topic, "-C", "1", "-W", "1"]),
            Duration::from_secs(5),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "{v}");
    }
}

#[test]
fn a_killed_client_s_will_is_published_and_a_clean_one_s_is_not() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let b = BrokerProcess::start();
    for v in VERSIONS {
        let will_topic = format!("will/{v}");
        let watcher = Running::spawn(sub_cmd(&b, v).args([
            "-t",
            &will_topic,
            "-C",
            "1",
            "-W",
            "10",
            "-F",
            "%t %p",
        ]));
        // A clean disconnect: its will must not be published.
        let out = run(
            pub_cmd(&b, v).args([
                "-t",
                "will/other",
                "-m",
                "x",
                "--will-topic",
                &will_topic,
                "--will-payload",
                "clean",
                "-i",
                "will-clean",
            ]),
            Duration::from_secs(5),
        );
        assert!(out.status.success());
        // A client that is killed: its will must be published.
        let mut victim = Running::spawn(sub_cmd(&b, v).args([
            "-t",
            "will/none",
            "--will-topic",
            &will_topic,
            "--will-payload",
            "gone",
            "-i",
            "will-victim",
        ]));
        std::thread::sleep(Duration::from_millis(500));
        let _ = victim.0.kill();
        let got = watcher.output_within(Duration::from_secs(10));
        assert_eq!(got.trim(), format!("{will_topic} gone"), "{v}");
    }
}

#[test]
fn a_persistent_session_receives_what_was_queued_while_away() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let b = BrokerProcess::start();
    for v in VERSIONS {
        let topic = format!("persist/{v}");
        let id = format!("persist-{v}");
        let mut session = vec!["-c", "-i", id.as_str(), "-q", "1", "-t", topic.as_str()];
        if v == "mqttv5" {
            session.extend(["-x", "60"]);
        }
        // Subscribe, then leave (normal disconnect after one second).
        let out = run(
            sub_cmd(&b, v).args(&session).args(["-W", "1"]),
            Duration::from_secs(5),
        );
        assert!(out.stdout.is_empty());
        let out = run(
            pub_cmd(&b, v).args(["-t", &topic, "-q", "1", "-m", "while-away"]),
            Duration::from_secs(5),
        );
        assert!(out.status.success());
        let out = run(
            sub_cmd(&b, v).args(&session).args(["-C", "1", "-W", "5"]),
            Duration::from_secs(8),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "while-away",
            "{v}"
        );
    }
}

#[test]
fn a_second_connection_with_the_same_client_id_takes_over() {
    if !require("mosquitto_sub") {
        return;
    }
    let b = BrokerProcess::start();
    // The first connection: a raw 5.0 CONNECT for client id "twin".
    let mut first = TcpStream::connect(b.addr).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    first
        .write_all(&[
            0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 4, b't', b'w', b'i', b'n',
        ])
        .unwrap();
    let mut head = [0u8; 2];
    first.read_exact(&mut head).unwrap();
    let mut body = vec![0u8; usize::from(head[1])];
    first.read_exact(&mut body).unwrap();
    assert_eq!(head[0], 0x20, "CONNACK");
    assert_eq!(&body[..2], [0, 0], "accepted, no session present");
    // The second, from mosquitto_sub with the same identifier.
    let _second = Running::spawn(sub_cmd(&b, "mqttv5").args(["-t", "x", "-i", "twin"]));
    // The first gets DISCONNECT 0x8E (session taken over), then the end of the stream.
    let mut rest = Vec::new();
    let _ = first.read_to_end(&mut rest);
    assert_eq!(
        rest,
        [0xE0, 1, 0x8E],
        "DISCONNECT with reason 0x8E [MQTT-3.1.4-3]"
    );
}

#[test]
fn shared_subscriptions_split_the_messages() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let b = BrokerProcess::start();
    let a =
        Running::spawn(sub_cmd(&b, "mqttv5").args(["-t", "$share/g/jobs", "-q", "1", "-W", "4"]));
    let c =
        Running::spawn(sub_cmd(&b, "mqttv5").args(["-t", "$share/g/jobs", "-q", "1", "-W", "4"]));
    std::thread::sleep(Duration::from_millis(700));
    for i in 0..10 {
        let out = run(
            pub_cmd(&b, "mqttv5").args(["-t", "jobs", "-q", "1", "-m", &format!("job{i}")]),
            Duration::from_secs(5),
        );
        assert!(out.status.success());
    }
    let got_a = a.output_within(Duration::from_secs(6));
    let got_c = c.output_within(Duration::from_secs(6));
    let (na, nc) = (got_a.lines().count(), got_c.lines().count());
    assert_eq!(na + nc, 10, "each job exactly once: {got_a:?} {got_c:?}");
    assert!(
        na >= 4 && nc >= 4,
        "round robin shares the jobs: {na} and {nc}"
    );
}

#[test]
fn sys_topics_report_the_broker() {
    if !require("mosquitto_sub") {
        return;
    }
    let b = BrokerProcess::start();
    let out = run(
        sub_cmd(&b, "mqttv311").args(["-t", "$SYS/broker/uptime", "-C", "1", "-W", "5"]),
        Duration::from_secs(8),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim().ends_with("seconds"), "{text:?}");
}

#[test]
fn a_malformed_packet_closes_only_its_own_connection() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let b = BrokerProcess::start();
    let sub = Running::spawn(sub_cmd(&b, "mqttv311").args(["-t", "ok", "-C", "1", "-W", "10"]));
    std::thread::sleep(Duration::from_millis(300));
    // A CONNECT with the reserved flag set [MQTT-3.1.2-3], then garbage.
    let mut raw = TcpStream::connect(b.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(&[
        0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 60, 0, 1, b'x',
    ])
    .unwrap();
    let mut buf = [0u8; 16];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert_eq!(
        n, 0,
        "the broker closes the malformed connection without answering"
    );
    let got = publish_until_received(&b, "mqttv311", "ok", "0", "still-alive", sub);
    assert_eq!(got.trim(), "still-alive");
}

#[test]
fn sigterm_stops_the_broker_cleanly() {
    let b = BrokerProcess::start();
    let status = b.terminate();
    assert!(status.success(), "{status:?}");
}
