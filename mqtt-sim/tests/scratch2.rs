#![allow(missing_docs)]
use mqtt_session::mqtt_codec::{QoS, ReasonCode};
use mqtt_sim::build::*;
use mqtt_sim::Sim;
#[test]
fn scratch2() {
    let mut sim = Sim::new(broker_config());
    let (w, _) = sim.connect_ok(persistent(V5, "w", 3600));
    sim.subscribe(w, "a", QoS::ExactlyOnce);
    let (p, _) = sim.connect_ok(persistent(V5, "p", 300));
    let now = sim.now;
    sim.client(p)
        .publish(now, msg("a", "one", QoS::AtLeastOnce, false))
        .unwrap();
    sim.client(p)
        .publish(now, msg("a", "five", QoS::ExactlyOnce, false))
        .unwrap();
    sim.client(p)
        .disconnect(now, ReasonCode::NORMAL_DISCONNECTION);
    sim.run_until_idle();
    println!("w got {:?}", sim.payloads(w));
    let (late, _) = sim.connect_ok(cfg(V5, "late"));
    sim.subscribe(late, "#", QoS::AtMostOnce);
    let session = sim.client(p).take_session();
    println!(
        "client session {:?}",
        session.as_ref().map(|s| (s.inflight(), s.queued()))
    );
    let p2 = sim.open_client(0, persistent(V5, "p", 300), session);
    sim.run_until_idle();
    println!("connack {:?}", sim.connack(p2));
    println!("w got {:?}", sim.payloads(w));
    println!("late got {:?}", sim.payloads(late));
    for pk in &sim.peers[p].received {
        println!("p <- {pk:?}");
    }
}
