//! The broker's TLS, WebSocket and WebSocket-over-TLS listeners, driven by
//! Mosquitto's command-line clients (over TLS, with and without a client
//! certificate) and Python paho-mqtt (over WebSocket, plain and TLS), plus
//! raw sockets for what no well-behaved client does: a wrong WebSocket path,
//! plain MQTT bytes on a TLS port, a socket that says nothing.
//!
//! The certificates (a CA, a server certificate for 127.0.0.1, client
//! certificates) are made at test time with rcgen.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::{free_port, paho_python, require, run, BrokerProcess, Running};

/// A broker with its plain listener (from [`BrokerProcess`]) and one
/// listener of every other kind, each on its own free port.
struct Setup {
    broker: BrokerProcess,
    /// MQTT over TLS, no client certificates asked for.
    mqtts: u16,
    /// MQTT over TLS, a client certificate signed by the CA required.
    mqtts_verified: u16,
    /// MQTT over WebSocket at /mqtt.
    ws: u16,
    /// MQTT over WebSocket over TLS at /mqtt.
    wss: u16,
    pki: Pki,
}

impl Setup {
    /// Starts the broker; `limits` is extra TOML for its `[limits]` section.
    fn start(name: &str, limits: &str) -> Setup {
        let pki = Pki::new(name);
        let (mqtts, mqtts_verified, ws, wss) = (free_port(), free_port(), free_port(), free_port());
        let tls = format!(
            "certfile = \"{}\"\nkeyfile = \"{}\"\n",
            pki.file("server.pem"),
            pki.file("server.key")
        );
        let config = format!(
            "[[listener]]\nbind = \"127.0.0.1:{mqtts}\"\nprotocol = \"mqtts\"\n{tls}\n\
             [[listener]]\nbind = \"127.0.0.1:{mqtts_verified}\"\nprotocol = \"mqtts\"\n{tls}\
             cafile = \"{}\"\nrequire_certificate = true\n\n\
             [[listener]]\nbind = \"127.0.0.1:{ws}\"\nprotocol = \"ws\"\n\n\
             [[listener]]\nbind = \"127.0.0.1:{wss}\"\nprotocol = \"wss\"\npath = \"/mqtt\"\n{tls}\n\
             [limits]\n{limits}\n",
            pki.file("ca.pem"),
        );
        let broker = BrokerProcess::start_with(&config);
        Setup {
            broker,
            mqtts,
            mqtts_verified,
            ws,
            wss,
            pki,
        }
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `program` (mosquitto_pub or mosquitto_sub) over TLS to `port`, trusting
/// the test CA, with the client certificate `cert` (`client` or `rogue`).
fn mosquitto(program: &str, s: &Setup, port: u16, cert: Option<&str>) -> Command {
    let mut c = Command::new(program);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["--cafile", &s.pki.file("ca.pem")]);
    if let Some(cert) = cert {
        c.args(["--cert", &s.pki.file(&format!("{cert}.pem"))])
            .args(["--key", &s.pki.file(&format!("{cert}.key"))]);
    }
    c
}

/// Subscribes at QoS 1 over TLS, then publishes at QoS 1 every 100 ms until
/// the subscriber has its message: what the subscriber printed (`%t %q %p`).
fn tls_round_trip(s: &Setup, port: u16, cert: Option<&str>, topic: &str) -> String {
    let mut sub = Running::spawn(mosquitto("mosquitto_sub", s, port, cert).args([
        "-t", topic, "-q", "1", "-C", "1", "-W", "10", "-F", "%t %q %p",
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let out = run(
            mosquitto("mosquitto_pub", s, port, cert)
                .args(["-t", topic, "-q", "1", "-m", "over tls"]),
            Duration::from_secs(5),
        );
        assert!(
            out.status.success(),
            "mosquitto_pub over TLS failed: {out:?}"
        );
        if let Ok(Some(_)) = sub.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sub.output_within(Duration::from_secs(1)).trim().to_string()
}

/// Whether the broker closes `stream` within `within` (EOF or reset),
/// reading and dropping whatever it sends first.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
    false
}

/// A 3.1.1 CONNECT (client "raw", keep alive 60), as raw bytes.
const CONNECT: [u8; 14] = [
    0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
];

#[test]
fn mosquitto_clients_round_trip_qos_1_over_tls() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let s = Setup::start("tls", "");
    let got = tls_round_trip(&s, s.mqtts, None, "tls/qos1");
    assert_eq!(got, "tls/qos1 1 over tls");
    // A client certificate is not asked for, and one shown does no harm.
    let got = tls_round_trip(&s, s.mqtts, Some("client"), "tls/qos1/cert");
    assert_eq!(got, "tls/qos1/cert 1 over tls");
}

#[test]
fn a_listener_requiring_certificates_admits_only_verified_clients() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let s = Setup::start("verified", "");
    let got = tls_round_trip(&s, s.mqtts_verified, Some("client"), "verified/qos1");
    assert_eq!(got, "verified/qos1 1 over tls");

    // Without a certificate, or with one the CA did not sign: refused, and
    // nothing the refused client published arrives.
    let sub = Running::spawn(
        mosquitto("mosquitto_sub", &s, s.mqtts_verified, Some("client")).args([
            "-t",
            "verified/refused",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "4",
            "-F",
            "%p",
        ]),
    );
    std::thread::sleep(Duration::from_millis(500));
    for cert in [None, Some("rogue")] {
        let out = run(
            mosquitto("mosquitto_pub", &s, s.mqtts_verified, cert).args([
                "-t",
                "verified/refused",
                "-q",
                "1",
                "-m",
                "sneaked in",
            ]),
            Duration::from_secs(10),
        );
        assert!(
            !out.status.success(),
            "a client with {cert:?} was admitted: {out:?}"
        );
    }
    assert_eq!(sub.output_within(Duration::from_secs(6)), "");
}

/// A paho client over WebSocket (`ws` or `wss`) subscribing and publishing
/// at QoS 1 through the broker: argv is port, version (31/311/5), CA file
/// (empty for plain WebSocket), path.
const PAHO_WS: &str = r##"
import os, sys, threading, queue
import paho.mqtt.client as mqtt

PORT, VERSION, CA, PATH = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
PROTO = {"31": mqtt.MQTTv31, "311": mqtt.MQTTv311, "5": mqtt.MQTTv5}[VERSION]

def fail(what):
    print("FAILED: " + what, file=sys.stderr, flush=True)
    os._exit(1)

watchdog = threading.Timer(20.0, fail, args=("the script's watchdog",))
watchdog.daemon = True
watchdog.start()

def get(q, what):
    try:
        return q.get(timeout=10)
    except queue.Empty:
        fail("timed out waiting for " + what)

def peer(cid):
    c = mqtt.Client(client_id=cid, protocol=PROTO, transport="websockets")
    c.ws_set_options(path=PATH)
    if CA:
        c.tls_set(ca_certs=CA)
    q = {"connack": queue.Queue(), "suback": queue.Queue(), "msg": queue.Queue()}
    c.on_connect = lambda c, u, f, rc, p=None: q["connack"].put(getattr(rc, "value", rc))
    c.on_subscribe = lambda c, u, mid, codes, p=None: q["suback"].put(codes)
    c.on_message = lambda c, u, m: q["msg"].put(m)
    try:
        c.connect("127.0.0.1", PORT, keepalive=30)
    except Exception as e:
        print("refused", type(e).__name__, flush=True)
        os._exit(0)
    c.loop_start()
    rc = get(q["connack"], "CONNACK")
    if rc != 0:
        fail("CONNACK %s" % rc)
    return c, q

topic = "ws/%s/%s" % ("tls" if CA else "plain", VERSION)
sub, sq = peer("ws-sub-" + VERSION)
sub.subscribe(topic, 1)
get(sq["suback"], "SUBACK")
pub, _ = peer("ws-pub-" + VERSION)
info = pub.publish(topic, b"x" * 3000 + b" over websocket", 1)
info.wait_for_publish(10)
print("acked", info.is_published(), flush=True)
m = get(sq["msg"], "the message")
print("got", m.topic, m.qos, len(m.payload), m.payload[-14:].decode(), flush=True)
pub.disconnect(); sub.disconnect()
os._exit(0)
"##;

fn paho_ws(python: &Path, port: u16, version: &str, ca: &str, path: &str) -> Vec<String> {
    let out = run(
        Command::new(python)
            .arg("-c")
            .arg(PAHO_WS)
            .args([&port.to_string(), version, ca, path]),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the paho script failed ({version}, ca {ca:?}): {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

#[test]
fn paho_round_trips_qos_1_over_websocket_in_every_version() {
    let Some(py) = paho_python() else { return };
    let s = Setup::start("ws", "");
    // 3.1 clients offer the subprotocol "mqttv3.1", the others "mqtt".
    for v in ["31", "311", "5"] {
        let lines = paho_ws(&py, s.ws, v, "", "/mqtt");
        assert_eq!(
            lines,
            [
                "acked True".to_string(),
                format!("got ws/plain/{v} 1 3015 over websocket")
            ],
            "{v}"
        );
    }
}

#[test]
fn paho_round_trips_qos_1_over_websocket_over_tls() {
    let Some(py) = paho_python() else { return };
    let s = Setup::start("wss", "");
    for v in ["311", "5"] {
        let lines = paho_ws(&py, s.wss, v, &s.pki.file("ca.pem"), "/mqtt");
        assert_eq!(
            lines,
            [
                "acked True".to_string(),
                format!("got ws/tls/{v} 1 3015 over websocket")
            ],
            "{v}"
        );
    }
    // paho on a wrong path is refused (the upgrade gets 404).
    let lines = paho_ws(&py, s.wss, "311", &s.pki.file("ca.pem"), "/elsewhere");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("refused"), "{lines:?}");
}

/// Sends a WebSocket upgrade request for `path` offering `protocol`, and
/// returns the response head.
fn upgrade(port: u16, path: &str, protocol: &str) -> String {
    let mut s = TcpStream::connect(addr(port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[test]
fn a_websocket_upgrade_is_checked_for_path_and_subprotocol() {
    let s = Setup::start("upgrade", "");
    let ok = upgrade(s.ws, "/mqtt", "mqtt");
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
    assert!(
        ok.to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqtt\r\n"),
        "{ok}"
    );
    let ok = upgrade(s.ws, "/mqtt", "mqttv3.1");
    assert!(
        ok.to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqttv3.1\r\n"),
        "{ok}"
    );

    let wrong = upgrade(s.ws, "/", "mqtt");
    assert!(wrong.starts_with("HTTP/1.1 404"), "{wrong}");
    let wrong = upgrade(s.ws, "/mqtt/other", "mqtt");
    assert!(wrong.starts_with("HTTP/1.1 404"), "{wrong}");
    let wrong = upgrade(s.ws, "/mqtt", "chat");
    assert!(wrong.starts_with("HTTP/1.1 400"), "{wrong}");
}

#[test]
fn plain_mqtt_bytes_on_a_tls_listener_close_only_that_connection() {
    if !require("mosquitto_pub") || !require("mosquitto_sub") {
        return;
    }
    let s = Setup::start("garbage", "");
    // A TLS subscriber is connected while the bad peers come and go.
    let mut sub = Running::spawn(mosquitto("mosquitto_sub", &s, s.mqtts, None).args([
        "-t",
        "garbage/after",
        "-q",
        "1",
        "-C",
        "1",
        "-W",
        "15",
        "-F",
        "%p",
    ]));
    std::thread::sleep(Duration::from_millis(300));
    for port in [s.mqtts, s.mqtts_verified, s.wss] {
        let mut raw = TcpStream::connect(addr(port)).unwrap();
        raw.write_all(&CONNECT).unwrap();
        assert!(
            closed_within(&mut raw, Duration::from_secs(5)),
            "port {port} kept the connection"
        );
    }
    // MQTT bytes where a WebSocket upgrade is due: not HTTP, closed.
    let mut raw = TcpStream::connect(addr(s.ws)).unwrap();
    raw.write_all(&CONNECT).unwrap();
    raw.write_all(b"\r\n\r\n").unwrap();
    assert!(
        closed_within(&mut raw, Duration::from_secs(5)),
        "the ws port kept the connection"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let out = run(
            mosquitto("mosquitto_pub", &s, s.mqtts, None).args([
                "-t",
                "garbage/after",
                "-q",
                "1",
                "-m",
                "still here",
            ]),
            Duration::from_secs(5),
        );
        assert!(out.status.success(), "{out:?}");
        if let Ok(Some(_)) = sub.0.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        sub.output_within(Duration::from_secs(1)).trim(),
        "still here"
    );
}

#[test]
fn a_silent_socket_is_closed_after_the_connect_timeout_on_every_listener_kind() {
    let s = Setup::start("silent", "connect_timeout = 1");
    let ports = [s.broker.addr.port(), s.mqtts, s.mqtts_verified, s.ws, s.wss];
    let started = Instant::now();
    let mut silent: Vec<TcpStream> = ports
        .iter()
        .map(|p| TcpStream::connect(addr(*p)).unwrap())
        .collect();
    for (port, stream) in ports.iter().zip(&mut silent) {
        assert!(
            closed_within(stream, Duration::from_secs(5)),
            "port {port} kept a silent socket"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the timeout"
    );
    // The same listeners still serve a client that completes its handshake.
    let ok = upgrade(s.ws, "/mqtt", "mqtt");
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
}

#[test]
fn a_tls_listener_with_a_missing_or_bad_file_stops_the_broker_at_start() {
    let pki = Pki::new("badfiles");
    let port = free_port();
    let dir = pki.dir.clone();
    for (certfile, keyfile, named) in [
        ("server.pem", "missing.key", "missing.key"),
        ("nothing.pem", "server.key", "nothing.pem"),
        ("server.pem", "client.key", "client.key"),
    ] {
        let config = dir.join("broker.toml");
        std::fs::write(
            &config,
            format!(
                "[[listener]]\nbind = \"127.0.0.1:{port}\"\nprotocol = \"mqtts\"\n\
                 certfile = \"{}\"\nkeyfile = \"{}\"\n",
                pki.file(certfile),
                pki.file(keyfile)
            ),
        )
        .unwrap();
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_mqtt-broker"))
                .arg("-c")
                .arg(&config)
                .env("RUST_LOG", "error")
                .env("NO_COLOR", "1"),
            Duration::from_secs(10),
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "the broker started with {certfile}/{keyfile}: {text}"
        );
        assert!(
            out.status.code().is_some(),
            "the broker was killed, not stopped: {text}"
        );
        assert!(
            text.contains(named),
            "the error does not name {named}: {text}"
        );
    }
}

#[test]
fn handshakes_beyond_the_connection_limit_are_closed_at_once() {
    let s = Setup::start("limit", "connect_timeout = 5\nmax_connections = 2");
    // Two silent sockets hold the two handshake slots (shared by all listeners)...
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(addr(s.mqtts)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // ...so a third, on another listener, is closed without waiting for it.
    let started = Instant::now();
    let mut third = TcpStream::connect(addr(s.wss)).unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(3)),
        "the third socket was kept"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the third socket waited for the timeout"
    );
    for h in &mut held {
        assert!(
            !closed_within(h, Duration::from_millis(300)),
            "a socket within the limit was closed"
        );
    }
    // Once they are gone, handshakes are admitted again.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let ok = upgrade(s.ws, "/mqtt", "mqtt");
    assert!(ok.starts_with("HTTP/1.1 101"), "{ok}");
}
