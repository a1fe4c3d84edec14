//! Bridges in the broker core, without sockets: a bridge is opened with
//! `Broker::open_bridge` and driven by hand the way the broker binary's
//! driver does (`poll_bridge_ready`, `poll_bridge`, `bridge_settled`,
//! `publish_from_bridge`), beside real mqtt-session clients on the
//! simulator's virtual clock (mqtt-sim, see `common`).

/// The adapter hands bytes to the broker (`handle_read`, `poll_transmit`).
const PACKET_PATH: bool = false;

mod common;

use common::*;
use mqtt_router::broker::{
    Access, BridgeError, BridgeId, BridgeMessage, BridgeOptions, BridgeOutcome, BridgeState,
    BrokerConfig, QueueFullPolicy, Rights, Rule,
};
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{QoS, ReasonCode, TopicFilter};
use mqtt_session::{ClientEvent, Message};

const Q0: QoS = QoS::AtMostOnce;
const Q1: QoS = QoS::AtLeastOnce;
const Q2: QoS = QoS::ExactlyOnce;

/// Opens bridge `name` on `filters` with room for `limit` messages.
fn open(sim: &mut Sim, name: &str, filters: &[(&str, QoS)], limit: usize) -> BridgeId {
    let subs = filters.iter().map(|(f, q)| (filter(f), *q)).collect();
    let now = sim.now;
    let opened = sim
        .broker_mut()
        .open_bridge(now, name, subs, BridgeOptions::new(limit))
        .expect("the bridge opens");
    assert!(
        opened.results.iter().all(|r| !r.is_error()),
        "{:?}",
        opened.results
    );
    sim.broker_mut()
        .set_bridge_state(opened.id, BridgeState::Connected);
    opened.id
}

/// Every bridge `poll_bridge_ready` names now, in order.
fn ready(sim: &mut Sim) -> Vec<BridgeId> {
    std::iter::from_fn(|| sim.broker_mut().poll_bridge_ready()).collect()
}

/// Takes every message waiting for bridge `id` (they are then in flight).
fn take(sim: &mut Sim, id: BridgeId) -> Vec<BridgeMessage> {
    let now = sim.now;
    std::iter::from_fn(|| sim.broker_mut().poll_bridge(id, now)).collect()
}

fn payloads_of(msgs: &[BridgeMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.message.payload).into_owned())
        .collect()
}

/// Settles every message in `msgs` with `outcome`.
fn settle(sim: &mut Sim, id: BridgeId, msgs: &[BridgeMessage], outcome: BridgeOutcome) {
    let now = sim.now;
    for m in msgs {
        sim.broker_mut().bridge_settled(id, now, m.token, outcome);
    }
    sim.run_until_idle();
}

/// Bridge `id` brings in `m`, and the simulation settles.
fn bring_in(sim: &mut Sim, id: BridgeId, m: Message) -> ReasonCode {
    let now = sim.now;
    let outcome = sim
        .broker_mut()
        .publish_from_bridge(id, now, m)
        .expect("the bridge is open");
    sim.run_until_idle();
    outcome.reason
}

/// Publishes `n` QoS 1 messages (payloads "0".."n-1") on `t` from peer
/// `i` without waiting for acknowledgements, and pumps.
fn publish_burst(sim: &mut Sim, i: usize, t: &str, n: usize) {
    let now = sim.now;
    for k in 0..n {
        sim.client(i)
            .publish(now, msg(t, &k.to_string(), Q1, false))
            .expect("the client queues it");
    }
    sim.run_until_idle();
}

/// Publish flows peer `i` has seen complete so far.
fn completed(sim: &Sim, i: usize) -> usize {
    sim.peers[i]
        .events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Published { .. }))
        .count()
}

// ----- routing to a bridge ----------------------------------------------------------

/// What local clients publish on a bridge's filters waits for it, in
/// order, at the lower of the message's and the subscription's QoS, with
/// the RETAIN flag as published (bridges carry retained messages as
/// retained); the driver is told which bridge has messages, once.
#[test]
fn a_bridge_gets_what_its_filters_match_in_order_at_the_lower_qos() {
    let mut sim = new_sim(broker_config());
    let b = open(&mut sim, "b", &[("out/#", Q1)], 100);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    assert!(ready(&mut sim).is_empty(), "nothing routed yet");
    sim.publish(publisher, msg("out/a", "0", Q0, false));
    sim.publish(publisher, msg("out/b", "1", Q2, true));
    sim.publish(publisher, msg("elsewhere", "x", Q1, false));
    sim.publish(publisher, msg("out/c/d", "2", Q1, false));
    assert_eq!(ready(&mut sim), [b], "named once for all three");
    let got = take(&mut sim, b);
    assert_eq!(payloads_of(&got), ["0", "1", "2"]);
    let topics: Vec<&str> = got.iter().map(|m| m.message.topic.as_str()).collect();
    assert_eq!(topics, ["out/a", "out/b", "out/c/d"]);
    assert_eq!(got.iter().map(|m| m.qos).collect::<Vec<_>>(), [Q0, Q1, Q1]);
    assert_eq!(
        got.iter().map(|m| m.retain).collect::<Vec<_>>(),
        [false, true, false]
    );
    settle(&mut sim, b, &got, BridgeOutcome::Delivered);
    let stats = sim.broker().bridge_stats(b).unwrap();
    assert_eq!(
        (stats.messages_sent, stats.queued, stats.in_flight),
        (3, 0, 0)
    );
    // A publisher whose message reached only the bridge hears success.
    assert_eq!(
        sim.publish(publisher, msg("out/e", "3", Q1, false)),
        Some(ReasonCode::SUCCESS)
    );
}

/// No Local by origin [MQTT-3.8.3-3]: a message bridge A brings in reaches
/// local subscribers and bridge B, never bridge A; a local client's
/// message reaches both bridges.
#[test]
fn a_message_from_a_bridge_reaches_everyone_but_that_bridge() {
    let mut sim = new_sim(broker_config());
    let a = open(&mut sim, "a", &[("t/#", Q2)], 100);
    let b = open(&mut sim, "b", &[("t/#", Q2)], 100);
    let (sub, _) = sim.connect_ok(cfg(V5, "sub"));
    sim.subscribe(sub, "t/#", Q2);
    let (publisher, _) = sim.connect_ok(cfg(V311, "pub"));

    assert_eq!(
        bring_in(&mut sim, a, msg("t/1", "from a", Q1, false)),
        ReasonCode::SUCCESS
    );
    assert_eq!(sim.payloads(sub), ["from a"]);
    assert!(
        take(&mut sim, a).is_empty(),
        "not back over the bridge it came from"
    );
    assert_eq!(payloads_of(&take(&mut sim, b)), ["from a"]);

    sim.publish(publisher, msg("t/2", "local", Q1, false));
    assert_eq!(payloads_of(&take(&mut sim, a)), ["local"]);
    assert_eq!(payloads_of(&take(&mut sim, b)), ["local"]);
    assert_eq!(sim.payloads(sub), ["local"]);

    let stats = sim.broker().bridge_stats(a).unwrap();
    assert_eq!(stats.messages_received, 1);
    assert_eq!(
        sim.broker().stats().messages_received,
        2,
        "bridged messages count as received"
    );
}

/// A message a bridge brings in that nobody subscribed to is answered
/// 0x10, as a client's would be; it is not dropped.
#[test]
fn a_bridged_message_nobody_wants_is_answered_no_matching_subscribers() {
    let mut sim = new_sim(broker_config());
    let a = open(&mut sim, "a", &[("t/#", Q1)], 10);
    let reason = bring_in(&mut sim, a, msg("t/1", "x", Q1, false));
    assert_eq!(reason, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    assert_eq!(sim.broker().bridge_stats(a).unwrap().messages_dropped, 0);
}

// ----- the queue limit ------------------------------------------------------------------

/// At its queue limit a bridge drops one message per new one (the oldest
/// queued under `DropOldest`), never one in flight; every drop is counted
/// for the bridge and the broker.
#[test]
fn a_full_bridge_drops_the_oldest_queued_message_never_one_in_flight() {
    let mut sim = new_sim(broker_config());
    let b = open(&mut sim, "b", &[("t", Q1)], 3);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.publish(publisher, msg("t", "0", Q0, false));
    let in_flight = take(&mut sim, b);
    assert_eq!(payloads_of(&in_flight), ["0"]);
    for p in ["1", "2", "3", "4"] {
        sim.publish(publisher, msg("t", p, Q0, false));
    }
    // 0 in flight; 1 and 2 queued, then 3 and 4 each dropped the oldest.
    assert_eq!(payloads_of(&take(&mut sim, b)), ["3", "4"]);
    let stats = sim.broker().bridge_stats(b).unwrap();
    assert_eq!(stats.messages_dropped, 2);
    assert_eq!((stats.queued, stats.in_flight), (3, 3));
    assert_eq!(sim.broker().stats().messages_dropped, 2);
    // Everything is in flight now: a new message is the one dropped.
    sim.publish(publisher, msg("t", "5", Q0, false));
    assert!(take(&mut sim, b).is_empty());
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 3);
    // As the remote broker takes them, room comes back.
    settle(&mut sim, b, &in_flight, BridgeOutcome::Delivered);
    sim.publish(publisher, msg("t", "6", Q0, false));
    assert_eq!(payloads_of(&take(&mut sim, b)), ["6"]);
}

/// While the remote broker is away nothing is handed out: messages wait in
/// the core, where the queue-full policy keeps the newest (`DropOldest`),
/// and go, oldest first, once the bridge is connected again.
#[test]
fn a_disconnected_bridge_keeps_the_newest_messages_within_its_limit() {
    let mut sim = new_sim(broker_config());
    let b = open(&mut sim, "b", &[("t", Q1)], 3);
    sim.broker_mut()
        .set_bridge_state(b, BridgeState::Reconnecting);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    for p in ["0", "1", "2", "3", "4"] {
        sim.publish(publisher, msg("t", p, Q0, false));
    }
    assert!(take(&mut sim, b).is_empty(), "nothing leaves while away");
    let stats = sim.broker().bridge_stats(b).unwrap();
    assert_eq!(
        (stats.queued, stats.in_flight, stats.messages_dropped),
        (3, 0, 2)
    );
    let _ = ready(&mut sim);
    sim.broker_mut().set_bridge_state(b, BridgeState::Connected);
    assert_eq!(ready(&mut sim), [b], "named again once connected");
    assert_eq!(payloads_of(&take(&mut sim, b)), ["2", "3", "4"]);
}

/// The driver never has more than the bridge's window in flight; each
/// settled message makes room for the next, and the bridge is named ready
/// again for it.
#[test]
fn a_bridge_hands_out_no_more_than_its_window() {
    let mut sim = new_sim(broker_config());
    let subs = vec![(filter("t"), Q1)];
    let mut options = BridgeOptions::new(100);
    options.max_in_flight = 2;
    let now = sim.now;
    let b = sim
        .broker_mut()
        .open_bridge(now, "b", subs, options)
        .unwrap()
        .id;
    sim.broker_mut().set_bridge_state(b, BridgeState::Connected);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    for p in ["0", "1", "2", "3"] {
        sim.publish(publisher, msg("t", p, Q0, false));
    }
    let first = take(&mut sim, b);
    assert_eq!(payloads_of(&first), ["0", "1"]);
    let _ = ready(&mut sim);
    settle(&mut sim, b, &first[..1], BridgeOutcome::Delivered);
    assert_eq!(ready(&mut sim), [b]);
    assert_eq!(payloads_of(&take(&mut sim, b)), ["2"]);
}

/// Under `DropNew` a full bridge keeps what it has; a QoS 1 message that
/// reached nobody else is refused with 0x97 Quota exceeded.
#[test]
fn under_drop_new_a_full_bridge_refuses_the_new_message_with_quota_exceeded() {
    let mut config = broker_config();
    config.queue_full = QueueFullPolicy::DropNew;
    let mut sim = new_sim(config);
    let b = open(&mut sim, "b", &[("t", Q1)], 2);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    // Flow control would hold the acknowledgements of a congested bridge;
    // a stalled one holds none.
    sim.advance(secs(6));
    sim.publish(publisher, msg("t", "0", Q1, false));
    sim.publish(publisher, msg("t", "1", Q1, false));
    let reason = sim.publish(publisher, msg("t", "2", Q1, false));
    assert_eq!(reason, Some(ReasonCode::QUOTA_EXCEEDED));
    assert_eq!(payloads_of(&take(&mut sim, b)), ["0", "1"]);
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 1);
}

/// A message that expired while it waited for the bridge is dropped when
/// the driver would take it [MQTT-3.3.2-5].
#[test]
fn a_message_that_expired_waiting_for_a_bridge_is_dropped() {
    let mut sim = new_sim(broker_config());
    let a = open(&mut sim, "a", &[("in", Q1)], 10);
    let b = open(&mut sim, "b", &[("t", Q1)], 10);
    let mut m = msg("t", "short-lived", Q1, false);
    m.props.expires_at = Some(Instant::from_millis(5_000));
    bring_in(&mut sim, a, m);
    bring_in(&mut sim, a, msg("t", "lasting", Q1, false));
    let later = Instant::from_millis(6_000);
    let got: Vec<_> = std::iter::from_fn(|| sim.broker_mut().poll_bridge(b, later)).collect();
    assert_eq!(payloads_of(&got), ["lasting"]);
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 1);
}

/// A message whose connection to the remote broker was lost goes back in
/// the queue in its old place and is handed out again; one the remote
/// broker refused is dropped and counted.
#[test]
fn a_message_settled_for_retry_is_sent_again_in_its_place() {
    let mut sim = new_sim(broker_config());
    let b = open(&mut sim, "b", &[("t", Q1)], 10);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    for p in ["0", "1", "2"] {
        sim.publish(publisher, msg("t", p, Q1, false));
    }
    let first = take(&mut sim, b);
    sim.publish(publisher, msg("t", "3", Q1, false));
    assert_eq!(ready(&mut sim), [b]);
    settle(&mut sim, b, &first[1..], BridgeOutcome::Retry);
    settle(&mut sim, b, &first[..1], BridgeOutcome::Dropped);
    assert_eq!(ready(&mut sim), [b]);
    assert_eq!(payloads_of(&take(&mut sim, b)), ["1", "2", "3"]);
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 1);
    // A token settled twice counts once.
    settle(&mut sim, b, &first[..1], BridgeOutcome::Dropped);
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 1);
}

// ----- flow control ---------------------------------------------------------------------

/// Flow control toward a bridge as toward a slow subscriber: once more than
/// half its queue limit waits (queued or in flight), local publishers'
/// acknowledgements are held until the remote broker has taken enough
/// that a quarter or less waits; nothing is dropped.
#[test]
fn a_congested_bridge_holds_local_publishers_acks_until_it_drains() {
    let mut sim = new_sim(broker_config());
    let b = open(&mut sim, "b", &[("t", Q1)], 8);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    publish_burst(&mut sim, publisher, "t", 8);
    assert!(completed(&sim, publisher) < 8, "acknowledgements are held");
    assert!(sim.broker().stats().acks_held > 0);
    let sent = take(&mut sim, b);
    assert_eq!(sent.len(), 8);
    // Taken by the driver is not delivered: still held.
    sim.run_until_idle();
    assert!(completed(&sim, publisher) < 8);
    settle(&mut sim, b, &sent[..5], BridgeOutcome::Delivered);
    assert!(
        completed(&sim, publisher) < 8,
        "3 of 8 still wait: above a quarter"
    );
    settle(&mut sim, b, &sent[5..6], BridgeOutcome::Delivered);
    assert_eq!(completed(&sim, publisher), 8, "released at a quarter");
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 0);
}

/// With publishers paused (`pause_publishers`), past a bridge's
/// high-water mark the publisher's later messages wait with it, unrouted,
/// until the bridge drains to a quarter; nothing is dropped.
#[test]
fn a_congested_bridge_pauses_local_publishers_until_it_drains() {
    let mut config = broker_config();
    config.pause_publishers = true;
    let mut sim = new_sim(config);
    let b = open(&mut sim, "b", &[("t", Q1)], 8);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    publish_burst(&mut sim, publisher, "t", 8);
    assert!(completed(&sim, publisher) < 8, "acknowledgements are held");
    let sent = take(&mut sim, b);
    assert_eq!(payloads_of(&sent), ["0", "1", "2", "3", "4"]);
    settle(&mut sim, b, &sent[..2], BridgeOutcome::Delivered);
    assert!(completed(&sim, publisher) < 8, "3 of 8 still wait");
    settle(&mut sim, b, &sent[2..4], BridgeOutcome::Delivered);
    sim.run_until_idle();
    // Released at a quarter (two waiting): the waiting messages then reach
    // the bridge, and the last one, past half again, is held.
    assert_eq!(completed(&sim, publisher), 7);
    let rest = take(&mut sim, b);
    assert_eq!(payloads_of(&rest), ["5", "6", "7"]);
    settle(&mut sim, b, &sent[4..], BridgeOutcome::Delivered);
    settle(&mut sim, b, &rest, BridgeOutcome::Delivered);
    sim.run_until_idle();
    assert_eq!(completed(&sim, publisher), 8);
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 0);
}

/// A bridge that takes nothing for five seconds (its remote broker away)
/// counts as stalled: what it held is acknowledged, and it holds no one
/// back any more; its queue sheds load, counted.
#[test]
fn a_stalled_bridge_does_not_hold_publishers_back() {
    let mut sim = new_sim(broker_config());
    let b = open(&mut sim, "b", &[("t", Q1)], 4);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    publish_burst(&mut sim, publisher, "t", 4);
    assert!(completed(&sim, publisher) < 4);
    sim.advance(secs(4));
    assert!(completed(&sim, publisher) < 4, "slow is not yet stalled");
    sim.advance(secs(2));
    assert_eq!(completed(&sim, publisher), 4);
    publish_burst(&mut sim, publisher, "t", 4);
    assert_eq!(
        completed(&sim, publisher),
        8,
        "a stalled bridge holds nothing"
    );
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 4);
}

/// Closing a bridge removes its subscriptions, drops what waited for it
/// and sends the acknowledgements it held.
#[test]
fn closing_a_bridge_releases_what_it_held_and_ends_its_subscriptions() {
    let mut sim = new_sim(broker_config());
    let b = open(&mut sim, "b", &[("t", Q1)], 4);
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    publish_burst(&mut sim, publisher, "t", 4);
    assert!(completed(&sim, publisher) < 4);
    sim.broker_mut().close_bridge(b);
    sim.run_until_idle();
    assert_eq!(completed(&sim, publisher), 4);
    assert!(sim.broker().bridge_stats(b).is_none(), "the id is stale");
    let reason = sim.publish(publisher, msg("t", "x", Q1, false));
    assert_eq!(reason, Some(ReasonCode::NO_MATCHING_SUBSCRIBERS));
    // The name is free again; the new bridge is a different one.
    let again = open(&mut sim, "b", &[("t", Q1)], 4);
    assert_ne!(again, b);
}

// ----- retained messages -------------------------------------------------------------------

/// A retained message a bridge brings in is stored like a client's:
/// later subscribers get it, RETAIN set [MQTT-3.3.1-8].
#[test]
fn a_retained_message_from_a_bridge_is_kept_for_later_subscribers() {
    let mut sim = new_sim(broker_config());
    let a = open(&mut sim, "a", &[("none", Q0)], 10);
    bring_in(&mut sim, a, msg("status/site1", "up", Q1, true));
    let (sub, _) = sim.connect_ok(cfg(V5, "sub"));
    sim.subscribe(sub, "status/#", Q1);
    let got = sim.messages(sub);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].topic.as_str(), got[0].payload.as_str()),
        ("status/site1", "up")
    );
    assert!(got[0].retain);
}

/// A bridge opening gets the retained messages its filters match, RETAIN
/// set, as a client subscribing does.
#[test]
fn a_bridge_gets_the_retained_messages_its_filters_match_when_it_opens() {
    let mut sim = new_sim(broker_config());
    let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
    sim.publish(publisher, msg("out/1", "kept", Q1, true));
    sim.publish(publisher, msg("other", "no", Q1, true));
    let b = open(&mut sim, "b", &[("out/#", Q1)], 10);
    assert_eq!(ready(&mut sim), [b]);
    let got = take(&mut sim, b);
    assert_eq!(payloads_of(&got), ["kept"]);
    assert!(got[0].retain);
}

// ----- no client can touch a bridge ----------------------------------------------------------

/// Bridges are not in the client-identifier table: a client connecting
/// with the identifier the old in-process local end used (`local.<name>`),
/// or with the bridge's name, finds no session to take over [MQTT-3.1.4-3]
/// or resume, and ending that client's session leaves the bridge's
/// subscriptions in place.
#[test]
fn a_client_with_the_bridges_old_local_client_id_cannot_affect_the_bridge() {
    for id in ["local.b", "local.host.b", "b", "bridge:b"] {
        let mut sim = new_sim(broker_config());
        let b = open(&mut sim, "b", &[("t/#", Q1)], 10);
        let (publisher, _) = sim.connect_ok(cfg(V5, "pub"));
        let (intruder, present) = sim.connect_ok(persistent(V5, id, 0));
        assert!(!present, "{id}: no session to resume");
        sim.subscribe(intruder, "t/#", Q1);
        sim.publish(publisher, msg("t/1", "one", Q1, false));
        sim.disconnect(intruder, ReasonCode::SUCCESS);
        // The same identifier again, clean start: the session it ends is
        // the client's own.
        let (again, _) = sim.connect_ok(cfg(V311, id));
        sim.disconnect(again, ReasonCode::SUCCESS);
        sim.publish(publisher, msg("t/2", "two", Q1, false));
        assert_eq!(payloads_of(&take(&mut sim, b)), ["one", "two"], "{id}");
        let stats = sim.broker().bridge_stats(b).unwrap();
        assert_eq!(
            (stats.messages_dropped, stats.state),
            (0, BridgeState::Connected)
        );
    }
}

/// A bridge's name is a `$SYS` topic level, and its own.
#[test]
fn a_bridge_needs_a_name_of_its_own_and_room_for_one_message() {
    let mut sim = new_sim(broker_config());
    let now = sim.now;
    let mut try_open = |name: &str, limit: usize| {
        sim.broker_mut()
            .open_bridge(
                now,
                name,
                vec![(filter("t"), Q1)],
                BridgeOptions::new(limit),
            )
            .map(|o| o.id)
    };
    for bad in ["", "a/b", "a+", "#", "a\0"] {
        assert_eq!(try_open(bad, 1), Err(BridgeError::InvalidName), "{bad:?}");
    }
    assert_eq!(try_open("z", 0), Err(BridgeError::ZeroQueueLimit));
    assert!(try_open("ok", 1).is_ok());
    assert_eq!(try_open("ok", 1), Err(BridgeError::NameTaken));
}

/// A bridge is one subscriber, so a shared subscription (which cannot be
/// No Local [MQTT-3.8.3-4]) is refused with 0x9E; the others are granted.
#[test]
fn a_bridge_cannot_join_a_shared_subscription() {
    let mut sim = new_sim(broker_config());
    let subs = vec![(filter("$share/g/t"), Q1), (filter("t"), Q2)];
    let now = sim.now;
    let opened = sim
        .broker_mut()
        .open_bridge(now, "b", subs, BridgeOptions::default())
        .unwrap();
    assert_eq!(
        opened.results,
        [
            ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ReasonCode(2)
        ]
    );
}

// ----- rights ---------------------------------------------------------------------------

/// A bridge's rights (plain data in its options) decide its subscriptions,
/// what it brings in, and what is routed to it: refused subscriptions and
/// publishes are answered 0x87 and counted as dropped, and a message its
/// rights may not read is not handed to it. `$` topics belong to the
/// server [MQTT-4.7.2-1]: a bridge cannot publish into them either.
#[test]
fn a_bridges_rights_judge_its_subscriptions_publishes_and_deliveries() {
    let mut sim = new_sim(broker_config());
    let mut options = BridgeOptions::new(10);
    options.rights = Rights::from_rules([
        Rule::new(TopicFilter::from_static("#"), Access::ReadWrite),
        Rule::new(TopicFilter::from_static("secret/#"), Access::Deny),
    ]);
    let subs = vec![(filter("secret/#"), Q1), (filter("#"), Q1)];
    let now = sim.now;
    let opened = sim
        .broker_mut()
        .open_bridge(now, "b", subs, options)
        .unwrap();
    assert_eq!(opened.results, [ReasonCode::NOT_AUTHORIZED, ReasonCode(1)]);
    let b = opened.id;
    assert_eq!(
        bring_in(&mut sim, b, msg("secret/x", "no", Q1, false)),
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        bring_in(&mut sim, b, msg("$SYS/x", "no", Q1, false)),
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(sim.broker().bridge_stats(b).unwrap().messages_dropped, 2);
    assert_eq!(sim.broker().stats().publishes_denied, 2);
    sim.broker_mut().set_bridge_state(b, BridgeState::Connected);
    let (p, _) = sim.connect_ok(cfg(V5, "p"));
    sim.publish(p, msg("secret/y", "hidden", Q1, false));
    sim.publish(p, msg("open/y", "shown", Q1, false));
    assert_eq!(payloads_of(&take(&mut sim, b)), ["shown"]);
}

// ----- $SYS ---------------------------------------------------------------------------------

/// Each bridge's figures are published under `$SYS/broker/bridges/<name>/`
/// on the `$SYS` interval, its state as the driver reported it.
#[test]
fn bridge_figures_and_state_appear_in_sys() {
    let config = BrokerConfig {
        sys_interval: Some(secs(1)),
        ..broker_config()
    };
    let mut sim = new_sim(config);
    let b = open(&mut sim, "site1", &[("t", Q1)], 10);
    let a = open(&mut sim, "a", &[("none", Q1)], 10);
    let (reader, _) = sim.connect_ok(cfg(V5, "reader"));
    sim.subscribe(reader, "$SYS/broker/bridges/site1/#", Q0);
    sim.broker_mut().set_bridge_state(b, BridgeState::Connected);
    bring_in(&mut sim, a, msg("t", "x", Q1, false));
    let got = take(&mut sim, b);
    settle(&mut sim, b, &got, BridgeOutcome::Delivered);
    bring_in(&mut sim, b, msg("in", "y", Q1, false));
    sim.advance(secs(1));
    let values: std::collections::HashMap<String, String> = sim
        .messages(reader)
        .into_iter()
        .map(|m| (m.topic, m.payload))
        .collect();
    let value = |k: &str| {
        values
            .get(&format!("$SYS/broker/bridges/site1/{k}"))
            .cloned()
    };
    assert_eq!(value("state").as_deref(), Some("connected"), "{values:?}");
    assert_eq!(value("messages/sent").as_deref(), Some("1"));
    assert_eq!(value("messages/received").as_deref(), Some("1"));
    assert_eq!(value("queue").as_deref(), Some("0"));
    assert_eq!(value("dropped").as_deref(), Some("0"));
}
