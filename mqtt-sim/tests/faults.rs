//! The simulator's faults do what they say: a crashed broker loses what it
//! held and refuses connections until it restarts, a cut is noticed only
//! after the link's delay, chunked and delayed links keep each stream's
//! order, a slow consumer's queue stays within its bound, and a clock jump
//! makes everything due on the way happen late, at once.

use mqtt_session::mqtt_codec::{QoS, ReasonCode};
use mqtt_session::{Client, Connection};
use mqtt_sim::build::*;
use mqtt_sim::{LinkConfig, Sim};

#[test]
fn a_crashed_broker_loses_its_sessions_and_refuses_connections_until_it_restarts() {
    let mut sim = Sim::new(broker_config());
    let (sub, _) = sim.connect_ok(persistent(V5, "sub", 3600));
    sim.subscribe(sub, "t", QoS::AtLeastOnce);
    sim.crash_broker(0, Some(secs(2)));
    sim.run_until_idle();
    assert!(!sim.broker_is_up(0));
    assert!(
        sim.client_closed(sub).is_some(),
        "the client saw its transport end"
    );
    let refused = sim.connect(persistent(V5, "sub", 3600));
    assert!(sim.client_closed(refused).is_some(), "refused while down");
    sim.advance(secs(2));
    assert!(sim.broker_is_up(0));
    assert_eq!(sim.incarnation(0), 1);
    let (again, present) = sim.connect_ok(persistent(V5, "sub", 3600));
    assert!(!present, "nothing survived the crash (Volatile)");
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.publish(publisher, msg("t", "lost", QoS::AtLeastOnce, false));
    assert!(
        sim.payloads(again).is_empty(),
        "the subscription died with the broker"
    );
}

#[test]
fn a_cut_is_noticed_after_the_links_delay_and_the_will_goes_out_then() {
    let mut sim = Sim::new(broker_config()).default_link(LinkConfig {
        eof_delay_ms: 500,
        ..LinkConfig::instant()
    });
    let (watcher, _) = sim.connect_ok(cfg(V5, "watcher"));
    sim.subscribe(watcher, "will", QoS::AtLeastOnce);
    let mut config = cfg(V5, "dies");
    config.will = Some(will("will", "gone", None));
    let (dies, _) = sim.connect_ok(config);
    sim.cut(dies);
    sim.run_until_idle();
    assert_eq!(sim.broker().stats().wills_published, 0, "half-open for now");
    sim.advance(millis(500));
    assert_eq!(sim.broker().stats().wills_published, 1);
    assert_eq!(sim.payloads(watcher), ["gone"]);
}

#[test]
fn chunked_delayed_links_keep_each_streams_order() {
    for seed in 0..20 {
        let mut sim = Sim::new(broker_config())
            .seed(seed)
            .default_link(LinkConfig::wan());
        let s = sim.open_client(0, cfg(V5, "sub"), None);
        let p = sim.open_client(0, cfg(V311, "pub"), None);
        sim.advance(secs(1));
        sim.subscribe(s, "t", QoS::ExactlyOnce);
        sim.advance(secs(1));
        let now = sim.now;
        for n in 0..30 {
            let m = msg("t", &n.to_string(), QoS::AtLeastOnce, false);
            sim.client(p).publish(now, m).expect("room in flight");
        }
        sim.advance(secs(5));
        let got = sim.payloads(s);
        let want: Vec<String> = (0..30).map(|n| n.to_string()).collect();
        assert_eq!(got, want, "seed {seed}");
        assert!(sim.packets() > 60);
    }
}

#[test]
fn a_slow_consumers_queue_stays_within_its_bound_and_the_broker_counts_drops() {
    let mut config = broker_config();
    config.server.limits.max_queued = 8;
    config.server.limits.max_queued_qos0 = 8;
    let mut sim = Sim::new(config);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    let conn = Connection::<Client>::new(cfg(V5, "slow"), sim.now, None);
    let slow = sim.open(0, Some(conn), V5, LinkConfig::slow());
    sim.advance(secs(1));
    sim.subscribe(slow, "t", QoS::AtLeastOnce);
    let now = sim.now;
    for n in 0..200 {
        let m = msg("t", &format!("{n:0>64}"), QoS::AtMostOnce, false);
        sim.client(publisher)
            .publish(now, m)
            .expect("QoS 0 always fits");
    }
    sim.run_until_idle();
    let queued = sim.broker().session("slow").expect("held").queued;
    assert!(queued <= 8, "{queued} queued");
    assert!(sim.broker().stats().messages_dropped > 0);
    sim.advance(secs(60));
    assert!(
        !sim.payloads(slow).is_empty(),
        "the slow consumer gets some"
    );
}

#[test]
fn a_clock_jump_acts_late_on_everything_due_on_the_way() {
    let mut sim = Sim::new(broker_config());
    let (c, _) = sim.connect_ok(persistent(V5, "c", 10));
    sim.disconnect(c, ReasonCode::NORMAL_DISCONNECTION);
    assert!(sim.broker().session("c").is_some());
    sim.jump(secs(60));
    assert!(sim.broker().session("c").is_none(), "expired at the jump");
    assert_eq!(sim.now.as_millis(), 60_000);
}
