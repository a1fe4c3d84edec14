//! The simulated durable store: a broker made durable keeps, across a
//! crash, exactly what its store reported stored before it, and its commit
//! latency holds back what waits for the store (acknowledgements).

use mqtt_session::mqtt_codec::{QoS, ReasonCode};
use mqtt_session::ClientEvent;
use mqtt_sim::build::*;
use mqtt_sim::{Quiet, Sim};

/// Whether client `i` has had its publish acknowledged.
fn acknowledged(sim: &mut Sim, i: usize) -> bool {
    sim.peer(i)
        .events
        .iter()
        .any(|e| matches!(e, ClientEvent::Published { .. }))
}

/// A broker whose store commits 100 ms after the core hands records over,
/// with a persistent subscriber to `t` that has gone away.
fn durable_with_offline_subscriber() -> Sim {
    let mut sim = Sim::with_observer(broker_config(), Quiet);
    sim.make_durable(0, (100, 100));
    let (sub, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    sim.subscribe(sub, "t", QoS::AtLeastOnce);
    sim.disconnect(sub, ReasonCode::SUCCESS);
    sim.advance(millis(100));
    sim
}

#[test]
fn a_crash_before_the_commit_loses_the_message_its_publisher_never_had_acknowledged() {
    let mut sim = durable_with_offline_subscriber();
    let (p, _) = sim.connect_ok(cfg(V5, "pub"));
    let now = sim.now;
    sim.client(p)
        .publish(now, msg("t", "lost", QoS::AtLeastOnce, false))
        .unwrap();
    sim.advance(millis(50));
    assert!(!acknowledged(&mut sim, p), "PUBACK before the commit");
    assert_eq!(sim.store_image(0).message_count(), 0);
    sim.crash_and_restart(secs(1));
    assert_eq!(sim.incarnation(0), 1);
    // The session and its subscription were committed: they are back.
    let (sub, present) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert!(present, "the committed session survived");
    assert!(
        sim.payloads(sub).is_empty(),
        "an uncommitted message came back"
    );
    let (p, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.publish(p, msg("t", "after", QoS::AtLeastOnce, false));
    assert_eq!(sim.payloads(sub), ["after"], "the subscription survived");
}

#[test]
fn what_was_acknowledged_after_the_commit_survives_the_crash() {
    let mut sim = durable_with_offline_subscriber();
    let (p, _) = sim.connect_ok(cfg(V5, "pub"));
    let now = sim.now;
    sim.client(p)
        .publish(now, msg("t", "kept", QoS::AtLeastOnce, false))
        .unwrap();
    sim.client(p)
        .publish(now, msg("r", "retained", QoS::AtLeastOnce, true))
        .unwrap();
    sim.advance(millis(100));
    assert!(acknowledged(&mut sim, p), "PUBACK once committed");
    assert_eq!(sim.store_image(0).message_count(), 1);
    assert_eq!(sim.store_image(0).retained_count(), 1);
    sim.crash_and_restart(secs(1));
    let (sub, present) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert!(present);
    assert_eq!(sim.payloads(sub), ["kept"]);
    let (late, _) = sim.connect_ok(cfg(V5, "late"));
    sim.subscribe(late, "r", QoS::AtLeastOnce);
    assert_eq!(sim.payloads(late), ["retained"]);
}

#[test]
fn a_paused_store_holds_acknowledgements_until_it_runs_again() {
    let mut sim = durable_with_offline_subscriber();
    sim.pause_store(0, true);
    let (p, _) = sim.connect_ok(cfg(V5, "pub"));
    let now = sim.now;
    sim.client(p)
        .publish(now, msg("t", "waits", QoS::AtLeastOnce, false))
        .unwrap();
    sim.advance(secs(10));
    assert!(!acknowledged(&mut sim, p));
    sim.pause_store(0, false);
    sim.advance(millis(100));
    assert!(acknowledged(&mut sim, p));
}
