//! Shared subscriptions: exactly one member per message and group, fair round
//! robin, deterministic random picks, members joining and leaving.

use std::collections::BTreeMap;

use mqtt_codec::{QoS, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_router::{Matches, SharedStrategy, SubscribeError, Subscription, SubscriptionIndex};

fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap()
}

fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).unwrap()
}

fn sub(qos: QoS) -> Subscription {
    Subscription::new(SubscriptionOptions::new(qos), None)
}

/// Publishes `n` messages to `t` and returns the shared receivers of each.
fn publish(index: &mut SubscriptionIndex<u32>, t: &str, n: usize) -> Vec<Vec<u32>> {
    let t = topic(t);
    let mut m = Matches::new();
    (0..n)
        .map(|_| {
            index.match_topic(&t, None, &mut m);
            m.shared().map(|d| d.client).collect()
        })
        .collect()
}

fn counts(picks: &[Vec<u32>]) -> BTreeMap<u32, usize> {
    let mut c = BTreeMap::new();
    for p in picks.iter().flatten() {
        *c.entry(*p).or_default() += 1;
    }
    c
}

#[test]
fn each_message_reaches_exactly_one_member_and_round_robin_is_fair() {
    for members in 1..=7u32 {
        let mut index = SubscriptionIndex::new(members.into());
        for c in 0..members {
            index
                .insert(c, &filter("$share/g/site/+/temp"), sub(QoS::AtLeastOnce))
                .unwrap();
        }
        for n in [1, 2, 10, 101] {
            let picks = publish(&mut index, "site/1/temp", n);
            assert!(picks.iter().all(|p| p.len() == 1), "{picks:?}");
            let c = counts(&picks);
            let (min, max) = (c.values().min().unwrap(), c.values().max().unwrap());
            let min = if c.len() < members as usize { &0 } else { min };
            assert!(max - min <= 1, "{members} members, {n} messages: {c:?}");
        }
    }
}

#[test]
fn groups_on_one_filter_and_on_overlapping_filters_are_served_separately() {
    let mut index = SubscriptionIndex::new(9);
    index
        .insert(1, &filter("$share/a/x/+"), sub(QoS::AtMostOnce))
        .unwrap();
    index
        .insert(2, &filter("$share/a/x/+"), sub(QoS::AtMostOnce))
        .unwrap();
    index
        .insert(3, &filter("$share/b/x/+"), sub(QoS::AtMostOnce))
        .unwrap();
    // Same ShareName, different filter: another group.
    index
        .insert(1, &filter("$share/a/x/#"), sub(QoS::AtMostOnce))
        .unwrap();
    // Not matching the topic.
    index
        .insert(4, &filter("$share/a/y/+"), sub(QoS::AtMostOnce))
        .unwrap();
    for picks in publish(&mut index, "x/1", 20) {
        let mut p = picks.clone();
        p.sort_unstable();
        // group a/x/+ gives 1 or 2, group b gives 3, group a/x/# gives 1.
        assert!(p == [1, 1, 3] || p == [1, 2, 3], "{picks:?}");
    }
}

#[test]
fn members_join_and_leave_at_any_time() {
    let mut index = SubscriptionIndex::new(5);
    let f = filter("$share/g/t");
    let mut members: Vec<u32> = Vec::new();
    let mut m = Matches::new();
    for step in 0..200u32 {
        let client = step % 9;
        if members.contains(&client) {
            if step % 3 == 0 {
                assert!(index.remove(client, &f).is_some());
                members.retain(|&c| c != client);
            } else {
                // Replacing a member's options keeps one membership.
                assert!(!index
                    .insert(client, &f, sub(QoS::ExactlyOnce))
                    .unwrap()
                    .is_new());
            }
        } else {
            assert!(index
                .insert(client, &f, sub(QoS::AtLeastOnce))
                .unwrap()
                .is_new());
            members.push(client);
        }
        index.match_topic(&topic("t"), None, &mut m);
        let picked: Vec<u32> = m.shared().map(|d| d.client).collect();
        if members.is_empty() {
            assert!(picked.is_empty());
        } else {
            assert_eq!(picked.len(), 1);
            assert!(
                members.contains(&picked[0]),
                "{picked:?} not in {members:?}"
            );
        }
    }
}

#[test]
fn a_group_without_members_delivers_nowhere() {
    let mut index = SubscriptionIndex::new(1);
    index
        .insert(1, &filter("$share/g/t"), sub(QoS::AtMostOnce))
        .unwrap();
    index
        .insert(2, &filter("$share/g/t"), sub(QoS::AtMostOnce))
        .unwrap();
    assert_eq!(index.remove_client(1), 1);
    assert_eq!(publish(&mut index, "t", 3), [[2], [2], [2]]);
    assert_eq!(index.remove_client(2), 1);
    assert!(publish(&mut index, "t", 3).iter().all(Vec::is_empty));
    assert!(index.is_empty());
    assert_eq!(index.client_count(), 0);
}

#[test]
fn round_robin_keeps_the_turns_of_the_round_when_a_served_member_leaves() {
    let mut index = SubscriptionIndex::new(2);
    for c in 1..=4 {
        index
            .insert(c, &filter("$share/g/t"), sub(QoS::AtMostOnce))
            .unwrap();
    }
    assert_eq!(publish(&mut index, "t", 2), [[1], [2]]);
    index.remove_client(1);
    // 3 and 4 still get this round's turns, before 2 is served again;
    // then each of the three once per round.
    let mut rest: Vec<u32> = publish(&mut index, "t", 2).concat();
    rest.sort_unstable();
    assert_eq!(rest, [3, 4]);
    let mut round: Vec<u32> = publish(&mut index, "t", 3).concat();
    round.sort_unstable();
    assert_eq!(round, [2, 3, 4]);
}

#[test]
fn random_picks_are_deterministic_per_seed_and_spread_over_members() {
    let run = |seed| {
        let mut index = SubscriptionIndex::with_strategy(seed, SharedStrategy::Random);
        for c in 0..3 {
            index
                .insert(c, &filter("$share/g/#"), sub(QoS::AtMostOnce))
                .unwrap();
        }
        publish(&mut index, "a/b", 3000)
    };
    let a = run(11);
    assert_eq!(a, run(11));
    assert_ne!(a, run(12));
    assert!(a.iter().all(|p| p.len() == 1));
    for (client, n) in counts(&a) {
        assert!((800..=1200).contains(&n), "client {client}: {n}");
    }
}

#[test]
fn shared_deliveries_carry_the_members_options_and_identifier() {
    let mut index = SubscriptionIndex::new(3);
    let mut options = SubscriptionOptions::new(QoS::ExactlyOnce);
    options.retain_as_published = true;
    let id = SubscriptionId::new(42);
    index
        .insert(7, &filter("$share/g/t"), Subscription::new(options, id))
        .unwrap();
    // The same client also has an ordinary subscription to the same filter.
    index.insert(7, &filter("t"), sub(QoS::AtMostOnce)).unwrap();
    let mut m = Matches::new();
    index.match_topic(&topic("t"), Some(7), &mut m);
    let shared: Vec<_> = m.shared().collect();
    assert_eq!(shared.len(), 1);
    assert_eq!(
        (
            shared[0].client,
            shared[0].qos,
            shared[0].retain_as_published
        ),
        (7, QoS::ExactlyOnce, true)
    );
    assert_eq!(shared[0].subscription_ids, [id.unwrap()]);
    let plain: Vec<_> = m.subscribers().collect();
    assert_eq!(
        (plain[0].client, plain[0].qos, plain[0].subscription_ids),
        (7, QoS::AtMostOnce, &[][..])
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_refused_and_changes_nothing() {
    let mut index = SubscriptionIndex::<u32>::new(3);
    let mut options = SubscriptionOptions::new(QoS::AtMostOnce);
    options.no_local = true;
    let err = index
        .insert(1, &filter("$share/g/t"), Subscription::new(options, None))
        .unwrap_err();
    assert_eq!(err, SubscribeError::NoLocalOnSharedSubscription);
    assert_eq!(err.reason_code(), mqtt_codec::ReasonCode::PROTOCOL_ERROR);
    assert!(index.is_empty());
    assert!(publish(&mut index, "t", 1)[0].is_empty());
}
