//! The cluster seam of the broker core, without a network: three brokers
//! joined by mqtt-sim's fake cluster (what the broker's NATS adapter does:
//! messages to the nodes whose interest matches, one ordered retained set),
//! with real mqtt-session clients on the virtual clock.

/// The adapter hands bytes to the broker (`handle_read`, `poll_transmit`).
const PACKET_PATH: bool = false;

mod common;

use common::*;
use mqtt_router::broker::{BridgeOptions, BrokerConfig, InterestChange, CLUSTER_LINK};
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{QoS, ReasonCode, RetainHandling};

const Q0: QoS = QoS::AtMostOnce;
const Q1: QoS = QoS::AtLeastOnce;
const Q2: QoS = QoS::ExactlyOnce;

/// Three brokers in one cluster.
fn three_nodes() -> Sim {
    let mut sim = new_sim(broker_config());
    sim.add_broker(broker_config());
    sim.add_broker(broker_config());
    for b in 0..3 {
        sim.join_cluster(b);
    }
    sim
}

/// A message published on one node reaches the subscribers of the others,
/// at each one's QoS, once, in the order it was published.
#[test]
fn a_message_published_on_one_node_reaches_subscribers_on_the_others_once_in_order() {
    for qos in [Q0, Q1, Q2] {
        let mut sim = three_nodes();
        let s1 = sim.connect_to(1, cfg(V5, "s1"));
        let s2 = sim.connect_to(2, cfg(V5, "s2"));
        let local = sim.connect_to(0, cfg(V5, "local"));
        assert_eq!(sim.subscribe(s1, "t/#", Q2), ReasonCode(2));
        assert_eq!(sim.subscribe(s2, "t/+", Q1), ReasonCode(1));
        assert_eq!(sim.subscribe(local, "t/a", Q2), ReasonCode(2));
        let p = sim.connect_to(0, cfg(V5, "p"));
        for k in 0..5 {
            let reason = sim.publish(p, msg("t/a", &k.to_string(), qos, false));
            if qos != Q0 {
                assert_eq!(reason, Some(ReasonCode::SUCCESS));
            }
        }
        let expected = ["0", "1", "2", "3", "4"];
        for (who, want_qos) in [(s1, qos), (s2, qos.min(Q1)), (local, qos)] {
            let got = sim.messages(who);
            let payloads: Vec<&str> = got.iter().map(|m| m.payload.as_str()).collect();
            assert_eq!(payloads, expected, "{qos:?}");
            assert!(got.iter().all(|m| m.qos == want_qos && m.topic == "t/a"));
        }
        assert_eq!(
            sim.cluster_carried(),
            10,
            "one copy to each interested node"
        );
    }
}

/// A node without a matching subscription is sent nothing; the filters a
/// node announces are its sessions' distinct filters (a shared
/// subscription's after `$share/{ShareName}/`), each once, gone with the
/// last subscription to it (UNSUBSCRIBE or the session's end).
#[test]
fn a_node_is_sent_only_what_its_sessions_subscribe_to() {
    let mut sim = three_nodes();
    let a = sim.connect_to(1, cfg(V5, "a"));
    let b = sim.connect_to(1, cfg(V5, "b"));
    sim.subscribe(a, "x/#", Q1);
    sim.subscribe(b, "x/#", Q0);
    sim.subscribe(b, "$share/g/y/+", Q1);
    assert_eq!(sim.cluster_interest(1), ["x/#", "y/+"]);
    assert!(sim.cluster_interest(2).is_empty());
    let p = sim.connect_to(0, cfg(V5, "p"));
    sim.publish(p, msg("elsewhere", "0", Q1, false));
    assert_eq!(sim.cluster_carried(), 0, "no node is interested");
    sim.publish(p, msg("y/1", "1", Q1, false));
    assert_eq!(sim.payloads(b), ["1"]);
    sim.unsubscribe(a, "x/#");
    assert_eq!(sim.cluster_interest(1), ["x/#", "y/+"], "b still has x/#");
    sim.disconnect(b, ReasonCode::SUCCESS);
    assert!(sim.cluster_interest(1).is_empty(), "the session ended");
    sim.publish(p, msg("x/1", "2", Q1, false));
    assert_eq!(sim.cluster_carried(), 1);
}

/// The interest changes come out once each: Added with the first
/// subscription to a filter, Removed with the last.
#[test]
fn interest_changes_come_out_with_the_first_and_the_last_subscription() {
    let mut sim = new_sim(broker_config());
    let now = Instant::ZERO;
    sim.broker_mut()
        .open_cluster(now, BridgeOptions::new(10))
        .expect("opens");
    let a = sim.connect(cfg(V5, "a"));
    let b = sim.connect(cfg(V311, "b"));
    sim.subscribe(a, "f/+", Q1);
    sim.subscribe(b, "f/+", Q1);
    sim.subscribe(a, "f/+", Q2); // a replacement, not a new subscription
    let changes: Vec<_> = std::iter::from_fn(|| sim.broker_mut().poll_cluster_interest()).collect();
    assert_eq!(changes, [InterestChange::Added("f/+".into())]);
    sim.unsubscribe(a, "f/+");
    assert_eq!(sim.broker_mut().poll_cluster_interest(), None);
    sim.unsubscribe(b, "f/+");
    assert_eq!(
        sim.broker_mut().poll_cluster_interest(),
        Some(InterestChange::Removed("f/+".into()))
    );
    assert_eq!(sim.broker().cluster_interest().count(), 0);
    assert!(
        sim.broker_mut()
            .open_bridge(now, CLUSTER_LINK, Vec::new(), BridgeOptions::new(1))
            .is_err(),
        "the link's name is taken"
    );
}

/// A node opened after sessions were restored counts their subscriptions.
#[test]
fn a_node_counts_the_subscriptions_it_already_has_when_it_joins() {
    let mut sim = new_sim(broker_config());
    let a = sim.connect(cfg(V5, "a"));
    sim.subscribe(a, "pre/#", Q1);
    let now = sim.now;
    sim.broker_mut()
        .open_cluster(now, BridgeOptions::new(10))
        .expect("opens");
    assert_eq!(
        sim.broker_mut().poll_cluster_interest(),
        Some(InterestChange::Added("pre/#".into()))
    );
}

/// A retained message set on one node is what a subscriber on another gets
/// when it subscribes; cleared on a third, it is gone everywhere. The live
/// copy of a retained message does not set the retained store of the node
/// it reaches: only the cluster's retained set does.
#[test]
fn retained_messages_are_one_set_for_the_whole_cluster() {
    let mut sim = three_nodes();
    let p0 = sim.connect_to(0, cfg(V5, "p0"));
    sim.publish(p0, msg("r/1", "kept", Q1, true));
    for b in 0..3 {
        assert_eq!(sim.broker_at(b).sizes().retained, 1, "node {b}");
    }
    let s2 = sim.connect_to(2, cfg(V5, "s2"));
    sim.subscribe(s2, "r/#", Q1);
    let got = sim.messages(s2);
    assert_eq!(got.len(), 1);
    assert!(got[0].retain && got[0].payload == "kept");
    let p1 = sim.connect_to(1, cfg(V5, "p1"));
    sim.publish(p1, msg("r/1", "", Q1, true));
    for b in 0..3 {
        assert_eq!(sim.broker_at(b).sizes().retained, 0, "cleared on node {b}");
    }
    // The clear itself reached the live subscriber on node 2 once.
    let live = sim.messages(s2);
    assert_eq!(live.len(), 1);
    assert!(
        !live[0].retain,
        "a live message: RETAIN 0 without Retain As Published"
    );
}

/// A subscriber with Retain As Published on another node sees the RETAIN
/// flag the publisher set; `$SYS`-like `$` topics stay on their node.
#[test]
fn the_retain_flag_crosses_and_dollar_topics_stay_home() {
    let mut sim = three_nodes();
    let s = sim.connect_to(1, cfg(V5, "s"));
    sim.subscribe_with(
        s,
        &[("k", opts(Q1, false, true, RetainHandling::DoNotSend))],
        None,
    );
    let p = sim.connect_to(0, cfg(V5, "p"));
    sim.publish(p, msg("k", "v", Q1, true));
    let got = sim.messages(s);
    assert_eq!(got.len(), 1);
    assert!(got[0].retain);
    sim.subscribe(s, "$app/#", Q1);
    sim.publish(p, msg("$app/x", "home", Q1, true));
    assert!(sim.messages(s).is_empty(), "a $ topic is not carried");
    assert_eq!(
        sim.broker_at(1).sizes().retained,
        1,
        "nor its retained message"
    );
}

/// A node that crashes and comes back (with nothing kept) opens its link
/// again, reads the cluster's retained set and takes part as before.
#[test]
fn a_restarted_node_rejoins_with_the_clusters_retained_set() {
    let mut sim = three_nodes();
    let p = sim.connect_to(0, cfg(V5, "p"));
    sim.publish(p, msg("r", "before", Q1, true));
    sim.set_restart(1, Box::new(mqtt_sim::Volatile));
    sim.crash_broker(1, None);
    sim.publish(p, msg("r2", "while down", Q1, true));
    sim.restart_broker(1);
    sim.run_until_idle();
    let s = sim.connect_to(1, cfg(V5, "s"));
    sim.subscribe(s, "#", Q1);
    let mut got = sim.payloads(s);
    got.sort();
    assert_eq!(got, ["before", "while down"]);
    sim.publish(p, msg("live", "after", Q1, false));
    assert_eq!(sim.payloads(s), ["after"]);
}

/// Without a cluster nothing comes out of the seam and nothing changes.
#[test]
fn a_broker_outside_a_cluster_has_no_cluster_output() {
    let mut sim = new_sim(BrokerConfig::default());
    let a = sim.connect(cfg(V5, "a"));
    sim.subscribe(a, "t", Q1);
    sim.publish(a, msg("t", "x", Q1, true));
    assert_eq!(sim.broker_mut().poll_cluster_interest(), None);
    assert_eq!(sim.broker_mut().poll_cluster_retained(), None);
    assert!(sim.broker().cluster_link().is_none());
    assert!(!sim
        .broker_mut()
        .cluster_retained(Instant::ZERO, topic("t"), None));
    assert_eq!(sim.broker().sizes().retained, 1);
}

// ----- random workloads over three nodes ------------------------------------------

mod random {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const FILTERS: [&str; 5] = ["a/#", "a/b", "+/b", "#", "c"];
    const TOPICS: [&str; 4] = ["a/b", "a/c", "c", "x/b"];
    /// Six clients, two per node (client `i` on node `i % 3`).
    const CLIENTS: usize = 6;

    #[derive(Debug, Clone)]
    enum Op {
        Subscribe(usize, usize),
        Unsubscribe(usize, usize),
        Publish(usize, usize, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..CLIENTS, 0..FILTERS.len()).prop_map(|(c, f)| Op::Subscribe(c, f)),
            (0..CLIENTS, 0..FILTERS.len()).prop_map(|(c, f)| Op::Unsubscribe(c, f)),
            (0..CLIENTS, 0..TOPICS.len(), 0u8..3).prop_map(|(c, t, q)| Op::Publish(c, t, q)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever clients on whichever nodes subscribe, unsubscribe and
        /// publish, each client gets exactly the messages one broker would
        /// give it: one copy of each message published after its matching
        /// subscription and before its removal, in publication order.
        #[test]
        fn three_nodes_deliver_what_one_broker_would(ops in proptest::collection::vec(op(), 1..40)) {
            let mut sim = three_nodes();
            let ids: Vec<String> = (0..CLIENTS).map(|i| format!("c{i}")).collect();
            let peers: Vec<_> = (0..CLIENTS).map(|i| sim.connect_to(i % 3, cfg(V5, &ids[i]))).collect();
            let mut subscribed = vec![BTreeSet::new(); CLIENTS];
            let mut expected = vec![Vec::new(); CLIENTS];
            for (n, op) in ops.iter().enumerate() {
                match *op {
                    Op::Subscribe(c, f) => {
                        sim.subscribe(peers[c], FILTERS[f], Q2);
                        subscribed[c].insert(f);
                    }
                    Op::Unsubscribe(c, f) => {
                        sim.unsubscribe(peers[c], FILTERS[f]);
                        subscribed[c].remove(&f);
                    }
                    Op::Publish(c, t, q) => {
                        let qos = [Q0, Q1, Q2][q as usize];
                        let payload = format!("{n}");
                        sim.publish(peers[c], msg(TOPICS[t], &payload, qos, false));
                        for (k, subs) in subscribed.iter().enumerate() {
                            if subs.iter().any(|&f| mqtt_router::topic_sets::matches(FILTERS[f], TOPICS[t])) {
                                expected[k].push(payload.clone());
                            }
                        }
                    }
                }
            }
            for c in 0..CLIENTS {
                prop_assert_eq!(sim.payloads(peers[c]), expected[c].clone(), "client {}", c);
            }
        }
    }
}
