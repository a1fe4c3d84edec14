//! Property tests against deliberately simple references: a linear scan over
//! every subscription with the codec's `TopicFilter::matches`, and a linear
//! scan over every retained topic.

use std::collections::{BTreeMap, BTreeSet};

use mqtt_codec::bytes::Bytes;
use mqtt_codec::{QoS, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_router::{
    Insertion, Instant, Matches, Retained, SharedStrategy, SubscribeError, Subscription,
    SubscriptionIndex,
};
use proptest::prelude::*;

/// 256 cases per property keeps the suite fast; failures are not persisted
/// into the source tree (proptest prints the minimal case instead).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn name(s: &str) -> TopicName {
    TopicName::try_from(s).unwrap()
}

fn filt(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap()
}

// ---------------------------------------------------------------------------
// Generators

/// Levels of topic names: '$' only matters in the first one, empty levels count.
fn name_level() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("a"),
        Just("b"),
        Just("c"),
        Just(""),
        Just("$SYS"),
        Just("$x")
    ]
}

fn topic_name() -> impl Strategy<Value = String> {
    prop::collection::vec(name_level(), 1..5)
        .prop_map(|l| l.join("/"))
        .prop_filter("the empty topic name is invalid", |t| !t.is_empty())
}

fn filter_level() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => name_level(), 2 => Just("+")]
}

/// Valid filters: literal and '+' levels, maybe a final '#', maybe shared.
fn topic_filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(filter_level(), 0..4),
        any::<bool>(),
        prop_oneof![3 => Just(None), 1 => Just(Some("g1")), 1 => Just(Some("g2"))],
    )
        .prop_filter_map("invalid filter", |(mut levels, multi, share)| {
            if multi || levels.is_empty() {
                levels.push("#");
            }
            let f = levels.join("/");
            let f = match share {
                Some(g) => format!("$share/{g}/{f}"),
                None => f,
            };
            TopicFilter::<Bytes>::try_from(f.as_str()).ok().map(|_| f)
        })
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn subscription() -> impl Strategy<Value = Subscription> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(1u32..5),
    )
        .prop_map(|(qos, no_local, rap, id)| {
            let mut options = SubscriptionOptions::new(qos);
            options.no_local = no_local;
            options.retain_as_published = rap;
            Subscription::new(options, id.and_then(SubscriptionId::new))
        })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, String, Subscription),
    Remove(u8, String),
    RemoveClient(u8),
    Match(String, Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0u8..5;
    prop_oneof![
        4 => (client.clone(), topic_filter(), subscription()).prop_map(|(c, f, s)| Op::Insert(c, f, s)),
        1 => (client.clone(), topic_filter()).prop_map(|(c, f)| Op::Remove(c, f)),
        1 => client.clone().prop_map(Op::RemoveClient),
        4 => (topic_name(), prop::option::of(client)).prop_map(|(t, p)| Op::Match(t, p)),
    ]
}

// ---------------------------------------------------------------------------
// The reference: every subscription in a map, matched by a linear scan.

type Model = BTreeMap<(u8, String), Subscription>;

/// Per client: highest QoS, any Retain As Published, sorted Subscription Identifiers.
type PerClient = BTreeMap<u8, (QoS, bool, Vec<u32>)>;

fn reference_subscribers(model: &Model, topic: &TopicName, publisher: Option<u8>) -> PerClient {
    let mut out = PerClient::new();
    for ((client, f), s) in model {
        let f = filt(f.as_str());
        if f.is_shared() || !f.matches(topic) || (s.options.no_local && Some(*client) == publisher)
        {
            continue;
        }
        let e = out
            .entry(*client)
            .or_insert((QoS::AtMostOnce, false, Vec::new()));
        e.0 = e.0.max(s.options.qos);
        e.1 |= s.options.retain_as_published;
        e.2.extend(s.id.map(SubscriptionId::get));
        e.2.sort_unstable();
    }
    out
}

/// The matching groups, keyed by (ShareName, filter), with their members.
fn reference_groups(
    model: &Model,
    topic: &TopicName,
) -> BTreeMap<(String, String), Vec<(u8, Subscription)>> {
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for ((client, f), s) in model {
        let tf = filt(f.as_str());
        if let Some(shared) = tf.shared() {
            if tf.matches(topic) {
                let key = (shared.share_name.to_owned(), shared.filter.to_owned());
                out.entry(key).or_default().push((*client, *s));
            }
        }
    }
    out
}

/// Can each delivery be assigned to a distinct matching group it is a member
/// of (with that member's options and identifier), covering every group?
fn perfect_assignment(
    deliveries: &[(u8, QoS, bool, Vec<u32>)],
    groups: &[Vec<(u8, Subscription)>],
) -> bool {
    fn fits(d: &(u8, QoS, bool, Vec<u32>), group: &[(u8, Subscription)]) -> bool {
        group.iter().any(|(c, s)| {
            *c == d.0
                && s.options.qos == d.1
                && s.options.retain_as_published == d.2
                && s.id
                    .map(SubscriptionId::get)
                    .into_iter()
                    .collect::<Vec<_>>()
                    == d.3
        })
    }
    // Kuhn's augmenting paths: tiny sizes here.
    fn augment(
        d: usize,
        deliveries: &[(u8, QoS, bool, Vec<u32>)],
        groups: &[Vec<(u8, Subscription)>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for g in 0..groups.len() {
            if !seen[g] && fits(&deliveries[d], &groups[g]) {
                seen[g] = true;
                if owner[g].is_none_or(|o| augment(o, deliveries, groups, owner, seen)) {
                    owner[g] = Some(d);
                    return true;
                }
            }
        }
        false
    }
    if deliveries.len() != groups.len() {
        return false;
    }
    let mut owner = vec![None; groups.len()];
    (0..deliveries.len()).all(|d| {
        augment(
            d,
            deliveries,
            groups,
            &mut owner,
            &mut vec![false; groups.len()],
        )
    })
}

fn check_index(ops: Vec<Op>, seed: u64, random: bool) -> Result<(), TestCaseError> {
    let strategy = if random {
        SharedStrategy::Random
    } else {
        SharedStrategy::RoundRobin
    };
    let mut index = SubscriptionIndex::<u8>::with_strategy(seed, strategy);
    let mut model = Model::new();
    let mut m = Matches::new();
    for op in ops {
        match op {
            Op::Insert(client, f, s) => {
                let tf = filt(f.as_str());
                let got = index.insert(client, &tf, s);
                if tf.is_shared() && s.options.no_local {
                    prop_assert_eq!(got, Err(SubscribeError::NoLocalOnSharedSubscription));
                } else {
                    let expected = match model.insert((client, f), s) {
                        None => Insertion::New,
                        Some(previous) => Insertion::Replaced(previous),
                    };
                    prop_assert_eq!(got, Ok(expected));
                    prop_assert_eq!(index.get(client, &tf), Some(s));
                }
            }
            Op::Remove(client, f) => {
                let tf = filt(f.as_str());
                prop_assert_eq!(index.remove(client, &tf), model.remove(&(client, f)));
                prop_assert_eq!(index.get(client, &tf), None);
            }
            Op::RemoveClient(client) => {
                let before = model.len();
                model.retain(|(c, _), _| *c != client);
                prop_assert_eq!(index.remove_client(client), before - model.len());
            }
            Op::Match(t, publisher) => {
                let topic = name(t.as_str());
                index.match_topic(&topic, publisher, &mut m);

                let mut got = PerClient::new();
                for d in m.subscribers() {
                    let mut ids: Vec<u32> = d.subscription_ids.iter().map(|i| i.get()).collect();
                    ids.sort_unstable();
                    prop_assert!(
                        got.insert(d.client, (d.qos, d.retain_as_published, ids))
                            .is_none(),
                        "client twice"
                    );
                }
                prop_assert_eq!(
                    got,
                    reference_subscribers(&model, &topic, publisher),
                    "topic {}",
                    t
                );

                let shared: Vec<_> = m
                    .shared()
                    .map(|d| {
                        (
                            d.client,
                            d.qos,
                            d.retain_as_published,
                            d.subscription_ids.iter().map(|i| i.get()).collect(),
                        )
                    })
                    .collect();
                let groups: Vec<_> = reference_groups(&model, &topic).into_values().collect();
                prop_assert!(
                    perfect_assignment(&shared, &groups),
                    "topic {}: {:?} vs {:?}",
                    t,
                    shared,
                    groups
                );
            }
        }
        prop_assert_eq!(index.len(), model.len());
        prop_assert_eq!(
            index.client_count(),
            model.keys().map(|k| k.0).collect::<BTreeSet<_>>().len()
        );
        // The per-client counts the broker's limits read.
        for client in 0..5u8 {
            let mine = || model.keys().filter(move |k| k.0 == client);
            prop_assert_eq!(index.subscriptions_of(client), mine().count());
            prop_assert_eq!(
                index.shared_groups_of(client),
                mine().filter(|k| k.1.starts_with("$share/")).count()
            );
        }
    }
    // Removing everything leaves nothing behind that could still match.
    for client in 0..=u8::MAX {
        index.remove_client(client);
    }
    prop_assert!(index.is_empty());
    index.match_topic(&TopicName::from_static("a"), None, &mut m);
    prop_assert!(m.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn index_equals_linear_scan(ops in prop::collection::vec(op(), 1..80), seed in any::<u64>(), random in any::<bool>()) {
        check_index(ops, seed, random)?;
    }

    /// Many subscribers on one filter cross the size where a node indexes its
    /// subscribers by client; interleaved removals must keep that index right.
    #[test]
    fn crowded_filters_equal_linear_scan(
        ops in prop::collection::vec(
            prop_oneof![
                4 => (0u8..60, prop_oneof![Just("a/b"), Just("a/+"), Just("#")], subscription())
                    .prop_map(|(c, f, s)| Op::Insert(c, f.to_owned(), s)),
                2 => (0u8..60, prop_oneof![Just("a/b"), Just("a/+"), Just("#")])
                    .prop_map(|(c, f)| Op::Remove(c, f.to_owned())),
                1 => (0u8..60).prop_map(Op::RemoveClient),
                1 => (prop_oneof![Just("a/b"), Just("a/c")], prop::option::of(0u8..60))
                    .prop_map(|(t, p)| Op::Match(t.to_owned(), p)),
            ],
            1..300,
        ),
    ) {
        check_index(ops, 0, false)?;
    }
}

// ---------------------------------------------------------------------------
// Retained messages against a map scanned linearly.

#[derive(Debug, Clone)]
enum ROp {
    /// Payload byte 0 means an empty payload, which clears.
    Store(String, u8, Option<u64>),
    Remove(String),
    Get(String),
    Lookup(String),
    Advance(u64),
    Purge,
}

fn rop() -> impl Strategy<Value = ROp> {
    prop_oneof![
        4 => (topic_name(), 0u8..4, prop::option::of(0u64..6)).prop_map(|(t, p, e)| ROp::Store(t, p, e)),
        1 => topic_name().prop_map(ROp::Remove),
        1 => topic_name().prop_map(ROp::Get),
        4 => topic_filter().prop_map(ROp::Lookup),
        2 => (0u64..4).prop_map(ROp::Advance),
        1 => Just(ROp::Purge),
    ]
}

/// topic -> (payload, deadline)
type RModel = BTreeMap<String, (u8, Option<u64>)>;

fn live(deadline: Option<u64>, now: u64) -> bool {
    deadline.is_none_or(|d| now < d)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn retained_equals_linear_scan(ops in prop::collection::vec(rop(), 1..80), seed in any::<u64>()) {
        let mut store = Retained::<Bytes>::new(seed);
        let mut model = RModel::new();
        let mut now = 0u64;
        for op in ops {
            let at = Instant::from_millis(now);
            match op {
                ROp::Store(t, p, expiry) => {
                    let topic = name(t.as_str());
                    let payload = if p == 0 { Bytes::new() } else { Bytes::from(vec![p]) };
                    let deadline = expiry.map(|e| now + e);
                    let got = store.store(at, &topic, payload, deadline.map(Instant::from_millis)).unwrap();
                    let previous = if p == 0 { model.remove(&t) } else { model.insert(t, (p, deadline)) };
                    let expected = previous.filter(|&(_, d)| live(d, now)).map(|(p, _)| Bytes::from(vec![p]));
                    prop_assert_eq!(got, expected);
                }
                ROp::Remove(t) => {
                    let topic = name(t.as_str());
                    let expected = model.remove(&t).filter(|&(_, d)| live(d, now)).map(|(p, _)| Bytes::from(vec![p]));
                    prop_assert_eq!(store.remove(at, &topic), expected);
                }
                ROp::Get(t) => {
                    let topic = name(t.as_str());
                    let got = store.get(at, &topic).map(|r| (r.topic.to_owned(), r.message[0], r.expires_at.map(Instant::as_millis)));
                    let expected = match model.get(&t) {
                        Some(&(p, d)) if live(d, now) => Some((t.clone(), p, d)),
                        Some(_) => {
                            model.remove(&t);
                            None
                        }
                        None => None,
                    };
                    prop_assert_eq!(got, expected);
                }
                ROp::Lookup(f) => {
                    let filter = filt(f.as_str());
                    let mut got = Vec::new();
                    store.for_each_match(at, &filter, |r| {
                        got.push((r.topic.to_owned(), r.message[0], r.expires_at.map(Instant::as_millis)));
                    });
                    got.sort();
                    let mut expected = Vec::new();
                    model.retain(|t, &mut (p, d)| {
                        if !filter.matches(&name(t.as_str())) {
                            return true;
                        }
                        if live(d, now) {
                            expected.push((t.clone(), p, d));
                            true
                        } else {
                            false // seen expired: removed
                        }
                    });
                    prop_assert_eq!(got, expected, "filter {}", f);
                }
                ROp::Advance(ms) => now += ms,
                ROp::Purge => {
                    let before = model.len();
                    model.retain(|_, &mut (_, d)| live(d, now));
                    prop_assert_eq!(store.purge_expired(at), before - model.len());
                }
            }
            prop_assert_eq!(store.len(), model.len());
        }
        // Clearing every topic empties the store completely.
        let topics: Vec<String> = model.keys().cloned().collect();
        for t in topics {
            store.remove(Instant::ZERO, &name(t.as_str()));
        }
        prop_assert!(store.is_empty());
        let mut any = false;
        store.for_each_match(Instant::ZERO, &TopicFilter::from_static("#"), |_| any = true);
        prop_assert!(!any);
    }
}

/// The merge reports the largest matching filter's subscribers without
/// hashing them and finds their other matches through that node; an entry it
/// skipped (the publisher's No Local subscription) shifts the positions after
/// it. Both paths are exercised here with known answers.
#[test]
fn overlapping_matches_merge_across_the_largest_filter_and_a_skipped_entry() {
    let sub = |qos, no_local, id| {
        let mut options = SubscriptionOptions::new(qos);
        options.no_local = no_local;
        Subscription::new(options, SubscriptionId::new(id))
    };
    let mut index = SubscriptionIndex::<u8>::new(1);
    let ab = filt("a/b");
    index.insert(1, &ab, sub(QoS::AtMostOnce, true, 1)).unwrap();
    for c in 2..=6 {
        index
            .insert(c, &ab, sub(QoS::AtMostOnce, false, 10 + u32::from(c)))
            .unwrap();
    }
    index
        .insert(4, &filt("a/+"), sub(QoS::ExactlyOnce, false, 40))
        .unwrap();
    index
        .insert(6, &filt("#"), sub(QoS::AtLeastOnce, false, 60))
        .unwrap();
    index
        .insert(1, &filt("#"), sub(QoS::AtLeastOnce, false, 99))
        .unwrap();
    index
        .insert(7, &filt("#"), sub(QoS::AtMostOnce, false, 70))
        .unwrap();

    let mut m = Matches::new();
    for publisher in [Some(1), None, Some(4)] {
        index.match_topic(&name("a/b"), publisher, &mut m);
        let mut got: Vec<(u8, QoS, Vec<u32>)> = m
            .subscribers()
            .map(|d| {
                let mut ids: Vec<u32> = d.subscription_ids.iter().map(|i| i.get()).collect();
                ids.sort_unstable();
                (d.client, d.qos, ids)
            })
            .collect();
        got.sort();
        let one = if publisher == Some(1) {
            (1, QoS::AtLeastOnce, vec![99])
        } else {
            (1, QoS::AtLeastOnce, vec![1, 99])
        };
        assert_eq!(
            got,
            [
                one,
                (2, QoS::AtMostOnce, vec![12]),
                (3, QoS::AtMostOnce, vec![13]),
                (4, QoS::ExactlyOnce, vec![14, 40]),
                (5, QoS::AtMostOnce, vec![15]),
                (6, QoS::AtLeastOnce, vec![16, 60]),
                (7, QoS::AtMostOnce, vec![70]),
            ],
            "publisher {publisher:?}"
        );
    }
}
