//! The order in which the broker takes what different connections send:
//! bytes it has read first take effect first (DESIGN.md, "Order across
//! connections"), against the broker binary with its multi-threaded runtime.

mod common;

use std::time::{Duration, Instant};

use common::raw::{connect_v311, publish, subscribe_v311, Next, Raw, CONNACK_V311};
use common::BrokerProcess;

/// How many times the race is run, and how long a try waits for the message.
const TRIES: usize = 50;
const WAIT: Duration = Duration::from_millis(500);

/// B sends SUBSCRIBE and, without waiting for SUBACK, A publishes on the
/// topic: B's bytes were on the broker's socket before A's were written, so
/// B must get the message, in every try, whichever of the two reads the
/// core reaches first (late subscriber catch-up). Within one connection the
/// specification orders everything; across connections it says nothing,
/// so this is the broker's own guarantee, at its defaults.
#[test]
fn a_subscribe_read_before_a_publish_takes_effect_first_across_connections() {
    let broker = BrokerProcess::start();
    let addr: std::net::SocketAddr = std::env::var("ORDER_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(broker.addr);
    let started = Instant::now();
    let mut missed = Vec::new();
    for i in 0..TRIES {
        let mut b = Raw::connected(addr, &connect_v311(&format!("b{i}")), &CONNACK_V311);
        let mut a = Raw::connected(addr, &connect_v311(&format!("a{i}")), &CONNACK_V311);
        let topic = format!("order/{i}");
        let message = publish(0x30, topic.as_bytes(), None, None, b"m");
        b.send(&subscribe_v311(1, &topic, 0));
        a.send(&message);
        b.expect(&[0x90, 0x03, 0x00, 0x01, 0x00]);
        match b.next(WAIT) {
            Next::Packet(p) => assert_eq!(p, message, "try {i}: the message as published"),
            Next::Silent | Next::Closed => missed.push(i),
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "bounded in time"
        );
    }
    assert!(
        missed.is_empty(),
        "{} of {TRIES} tries routed the publish before the subscription: {missed:?}",
        missed.len()
    );
}
