//! The durable broker as a process: started on a data directory, killed
//! with SIGKILL in the middle of a stream of QoS 1 and QoS 2 messages,
//! started again, several times. Every message the publisher saw
//! acknowledged reaches the persistent subscriber, no QoS 2 message twice;
//! the session, its subscription, a retained message and a delayed will
//! survive. In 3.1.1 and 5.0, with our own raw client and with Mosquitto's
//! `mosquitto_sub -c` as the returning subscriber. Every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::raw_client::{ConnectSpec, RawClient};
use common::{free_port, require, run, BrokerProcess, TempDir};
use mqtt_codec::{Packet, ProtocolVersion, QoS};

const KILL_ROUNDS: u64 = 3;
/// Room for every message of the stream in the offline session's queue,
/// so the queue-full policy drops none.
const LIMITS: &str = "[limits]\nmax_queued_messages = 1000000\n";

/// Where a QoS 1/2 exchange of the publisher stands.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// PUBLISH sent, its PUBACK/PUBREC not seen.
    Publish,
    /// PUBREC seen (acknowledged), PUBREL sent, PUBCOMP not seen.
    Release,
}

#[derive(Default, Debug)]
struct Publisher {
    next: u32,
    /// Every message the publisher saw acknowledged, with its QoS.
    acked: Vec<(u32, QoS)>,
    inflight: Option<(u32, QoS, Stage)>,
}

fn qos_of(n: u32) -> QoS {
    if n.is_multiple_of(2) {
        QoS::ExactlyOnce
    } else {
        QoS::AtLeastOnce
    }
}

fn pid_of(n: u32) -> u16 {
    (n % 60_000) as u16 + 1
}

impl Publisher {
    /// Publishes numbered messages one at a time until `stop` or the
    /// connection breaks; first finishes what was in flight, as a client
    /// resuming its session must [MQTT-4.4.0-1].
    fn run(&mut self, addr: SocketAddr, spec: &ConnectSpec, stop: &AtomicBool) {
        let Ok((mut c, _)) = RawClient::connect(addr, spec) else {
            return;
        };
        if let Some((n, qos, stage)) = self.inflight {
            let resent = match stage {
                Stage::Publish => c.publish("k/m", &n.to_string(), qos, pid_of(n), true, false),
                Stage::Release => c.pubrel(pid_of(n)),
            };
            if resent.is_err() || self.finish(&mut c).is_err() {
                return;
            }
        }
        while !stop.load(Ordering::Relaxed) {
            self.next += 1;
            let n = self.next;
            let qos = qos_of(n);
            self.inflight = Some((n, qos, Stage::Publish));
            if c.publish("k/m", &n.to_string(), qos, pid_of(n), false, false)
                .is_err()
                || self.finish(&mut c).is_err()
            {
                return;
            }
        }
        c.disconnect();
    }

    /// Waits for the acknowledgements of the exchange in flight.
    fn finish(&mut self, c: &mut RawClient) -> Result<(), ()> {
        while let Some((n, qos, stage)) = self.inflight {
            match (c.recv(Duration::from_secs(5))?, stage) {
                (Packet::PubAck(a), Stage::Publish) if a.id.get() == pid_of(n) => {
                    self.acked.push((n, qos));
                    self.inflight = None;
                }
                (Packet::PubRec(a), Stage::Publish) if a.id.get() == pid_of(n) => {
                    self.acked.push((n, qos));
                    self.inflight = Some((n, qos, Stage::Release));
                    c.pubrel(pid_of(n))?;
                }
                (Packet::PubComp(a), Stage::Release) if a.id.get() == pid_of(n) => {
                    self.inflight = None;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The subscriber that goes offline and comes back after the crashes.
enum Returning {
    Raw(ConnectSpec),
    /// `mosquitto_sub -c` speaking this version (`mqttv311`, `mqttv5`).
    Mosquitto(&'static str),
}

impl Returning {
    fn mosquitto_sub(version: &str, port: u16, wait: &str) -> Command {
        let mut c = Command::new("mosquitto_sub");
        c.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version]);
        c.args([
            "-c", "-i", "msub", "-q", "1", "-t", "k/#", "-W", wait, "-F", "%p",
        ]);
        if version == "mqttv5" {
            c.args(["-x", "3600"]);
        }
        c
    }

    /// Creates the persistent session and its subscription, then goes away.
    fn subscribe(&self, addr: SocketAddr) {
        match self {
            Returning::Raw(spec) => {
                let (mut s, _) = RawClient::connect(addr, spec).expect("subscriber connects");
                s.subscribe("k/#", QoS::AtLeastOnce).expect("SUBACK");
                s.disconnect();
            }
            Returning::Mosquitto(v) => {
                // It times out after a second, its subscription made.
                run(
                    &mut Self::mosquitto_sub(v, addr.port(), "1"),
                    Duration::from_secs(10),
                );
            }
        }
    }

    /// Comes back: whether the session was there (unknown for mosquitto_sub)
    /// and every payload received.
    fn collect(&self, addr: SocketAddr) -> (Option<bool>, Vec<String>) {
        match self {
            Returning::Raw(spec) => {
                let (mut s, present) =
                    RawClient::connect(addr, spec).expect("subscriber reconnects");
                let got = s.drain(Duration::from_secs(2), Duration::from_secs(30));
                s.disconnect();
                (Some(present), got)
            }
            Returning::Mosquitto(v) => {
                let out = run(
                    &mut Self::mosquitto_sub(v, addr.port(), "4"),
                    Duration::from_secs(20),
                );
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                (None, text.lines().map(str::to_owned).collect())
            }
        }
    }
}

fn spec(version: ProtocolVersion, client_id: &'static str) -> ConnectSpec {
    ConnectSpec {
        version,
        client_id,
        clean: false,
        expiry: 3600,
        will: None,
    }
}

/// The whole scenario; see the module documentation.
fn survives_kill_9(version: ProtocolVersion, returning: Returning, name: &str) {
    let data = TempDir::new(name);
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut broker = BrokerProcess::start_durable(port, &data.0, LIMITS);
    returning.subscribe(addr);
    let (mut p, _) = RawClient::connect(addr, &spec(version, "retainer")).unwrap();
    p.publish("k/retained", "kept", QoS::AtLeastOnce, 1, false, true)
        .unwrap();
    assert!(matches!(
        p.recv(Duration::from_secs(5)),
        Ok(Packet::PubAck(_))
    ));
    p.disconnect();

    let publisher_spec = spec(version, "publisher");
    let mut publisher = Publisher::default();
    for round in 0..KILL_ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let killer = {
            let pid = broker.pid();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300 + 90 * round));
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            })
        };
        if version == ProtocolVersion::V5 && round == KILL_ROUNDS - 1 {
            // A will with a delay, pending when the broker dies.
            let mut w = spec(version, "dying");
            w.will = Some(("k/will", "will", 3));
            let (c, _) = RawClient::connect(addr, &w).unwrap();
            c.abort();
        }
        publisher.run(addr, &publisher_spec, &stop);
        killer.join().unwrap();
        broker.kill9();
        broker = BrokerProcess::start_durable(port, &data.0, LIMITS);
    }
    // A last stretch, stopped by the publisher itself.
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            stop.store(true, Ordering::Relaxed);
        })
    };
    publisher.run(addr, &publisher_spec, &stop);
    stopper.join().unwrap();
    if version == ProtocolVersion::V5 {
        // The will is due 3 s after the restart.
        std::thread::sleep(Duration::from_millis(3500));
    }

    let (present, got) = returning.collect(addr);
    let log = broker.log();
    assert_ne!(
        present,
        Some(false),
        "{name}: the session is gone; log:\n{log}"
    );
    assert!(
        publisher.acked.len() > 10,
        "{name}: only {:?} acknowledged",
        publisher.acked.len()
    );
    for (n, qos) in &publisher.acked {
        let count = got.iter().filter(|p| **p == n.to_string()).count();
        assert!(
            count >= 1,
            "{name}: acknowledged message {n} ({qos:?}) lost; got {got:?}"
        );
        if *qos == QoS::ExactlyOnce {
            assert_eq!(
                count, 1,
                "{name}: QoS 2 message {n} delivered {count} times"
            );
        }
    }
    assert!(
        got.iter().any(|p| p == "kept"),
        "{name}: the retained message did not reach the session"
    );
    if version == ProtocolVersion::V5 {
        assert!(
            got.iter().any(|p| p == "will"),
            "{name}: the delayed will was not published: {got:?}"
        );
    }
    // The retained message survived for new subscribers too.
    let (mut n, _) = RawClient::connect(
        addr,
        &ConnectSpec {
            clean: true,
            expiry: 0,
            ..spec(version, "late")
        },
    )
    .unwrap();
    n.subscribe("k/retained", QoS::AtLeastOnce).unwrap();
    assert_eq!(
        n.drain(Duration::from_millis(500), Duration::from_secs(5)),
        ["kept"]
    );
    drop(broker);
}

#[test]
fn acknowledged_messages_survive_kill_9_in_3_1_1() {
    survives_kill_9(
        ProtocolVersion::V311,
        Returning::Raw(spec(ProtocolVersion::V311, "sub")),
        "kill-v311",
    );
}

#[test]
fn acknowledged_messages_survive_kill_9_in_5_0() {
    survives_kill_9(
        ProtocolVersion::V5,
        Returning::Raw(spec(ProtocolVersion::V5, "sub")),
        "kill-v5",
    );
}

#[test]
fn mosquitto_sub_c_gets_every_acknowledged_message_after_kill_9() {
    if !require("mosquitto_sub") {
        return;
    }
    survives_kill_9(
        ProtocolVersion::V311,
        Returning::Mosquitto("mqttv311"),
        "kill-mosq-v311",
    );
    survives_kill_9(
        ProtocolVersion::V5,
        Returning::Mosquitto("mqttv5"),
        "kill-mosq-v5",
    );
}
