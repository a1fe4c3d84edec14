//! Shared groups under churn, against a simple model: many groups on one
//! filter (found by name, not by a walk), members joining and leaving, and
//! round robin serving each member once per round whatever leaves.

use std::collections::{BTreeMap, BTreeSet};

use mqtt_codec::{QoS, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_router::{Matches, Subscription, SubscriptionIndex};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Join(u8, u8),
    Leave(u8, u8),
    Publish,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6, 0u8..12).prop_map(|(g, c)| Op::Join(g, member(g, c))),
        2 => (0u8..6, 0u8..12).prop_map(|(g, c)| Op::Leave(g, member(g, c))),
        4 => Just(Op::Publish),
    ]
}

/// Each group has its own clients, so a pick says which group it came from;
/// the index's per-client counts still see each client's groups.
fn member(g: u8, c: u8) -> u8 {
    g * 16 + c
}

fn filter(g: u8) -> TopicFilter {
    TopicFilter::try_from(format!("$share/g{g}/t").as_str()).unwrap()
}

/// One group of the model: its members and who was served this round.
#[derive(Default)]
struct Round {
    members: BTreeSet<u8>,
    served: BTreeSet<u8>,
}

impl Round {
    /// A round ends once every member has been served.
    fn settle(&mut self) {
        if self.served.is_superset(&self.members) {
            self.served.clear();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn round_robin_serves_each_member_once_per_round(ops in prop::collection::vec(op(), 1..150), seed in any::<u64>()) {
        let mut index = SubscriptionIndex::<u8>::new(seed);
        let mut model: BTreeMap<u8, Round> = BTreeMap::new();
        let sub = Subscription::new(SubscriptionOptions::new(QoS::AtMostOnce), None);
        let topic = TopicName::from_static("t");
        let mut m = Matches::new();
        for op in ops {
            match op {
                Op::Join(g, c) => {
                    let new = index.insert(c, &filter(g), sub).unwrap().is_new();
                    prop_assert_eq!(new, model.entry(g).or_default().members.insert(c));
                }
                Op::Leave(g, c) => {
                    let round = model.entry(g).or_default();
                    prop_assert_eq!(index.remove(c, &filter(g)).is_some(), round.members.remove(&c));
                    round.served.remove(&c);
                    round.settle();
                }
                Op::Publish => {
                    index.match_topic(&topic, None, &mut m);
                    let picks: Vec<_> = m.shared().map(|d| d.client).collect();
                    prop_assert_eq!(picks.len(), model.values().filter(|r| !r.members.is_empty()).count());
                    for c in picks {
                        let round = model.get_mut(&(c / 16)).unwrap();
                        prop_assert!(round.members.contains(&c));
                        prop_assert!(round.served.insert(c), "{} served twice in a round", c);
                        round.settle();
                    }
                }
            }
            for c in 0..96u8 {
                let groups = model.values().filter(|r| r.members.contains(&c)).count();
                prop_assert_eq!(index.shared_groups_of(c), groups);
                prop_assert_eq!(index.subscriptions_of(c), groups);
            }
        }
        for c in 0..96u8 {
            index.remove_client(c);
        }
        prop_assert!(index.is_empty());
    }
}
