use super::*;
use mqtt_codec::QoS;

const FILTERS: [&str; 9] = [
    "a/b/c",
    "a/+/c",
    "a/#",
    "#",
    "+",
    "a//",
    "$SYS/#",
    "$share/g/a/b/c",
    "$share/h/a/+/c",
];

fn live_nodes<C>(index: &SubscriptionIndex<C>) -> usize {
    index.nodes.live()
}

#[test]
fn a_node_is_48_bytes_for_u32_client_keys() {
    assert_eq!(core::mem::size_of::<Node<u32>>(), 48);
    assert_eq!(core::mem::size_of::<Links>(), 16);
}

#[test]
fn unsubscribing_everything_frees_every_node_edge_and_group() {
    let mut index = SubscriptionIndex::<u32>::new(1);
    let sub = Subscription::new(SubscriptionOptions::new(QoS::AtLeastOnce), None);
    for round in 0..3 {
        for client in 0..4 {
            for f in FILTERS {
                assert!(index
                    .insert(client, &TopicFilter::from_static(f), sub)
                    .unwrap()
                    .is_new());
            }
        }
        let slots = index.nodes.iter().count();
        assert!(live_nodes(&index) > 1);
        // Half by UNSUBSCRIBE, half by session end.
        for f in FILTERS {
            assert!(index.remove(0, &TopicFilter::from_static(f)).is_some());
            assert!(index.remove(1, &TopicFilter::from_static(f)).is_some());
        }
        assert_eq!(index.remove_client(2), FILTERS.len());
        assert_eq!(index.remove_client(3), FILTERS.len());
        assert_eq!(live_nodes(&index), 1, "round {round}");
        assert_eq!(index.edges.len(), 0);
        assert_eq!(index.groups.live(), 0);
        assert_eq!(index.links.live(), 0);
        assert_eq!(index.refs.live(), 0);
        assert!(index.clients.is_empty() && index.is_empty());
        let root = index.nodes.get(ROOT);
        assert!(root.links == NIL && root.subscribers.is_empty());
        // Freed slots are reused rather than the slab growing.
        assert!(round == 0 || index.nodes.iter().count() == slots);
    }
}

#[test]
fn a_refused_subscription_changes_nothing() {
    let mut index = SubscriptionIndex::<u32>::new(1);
    let mut options = SubscriptionOptions::new(QoS::AtMostOnce);
    options.no_local = true;
    let f = TopicFilter::from_static("$share/g/x/y/z");
    assert_eq!(
        index.insert(1, &f, Subscription::new(options, None)),
        Err(SubscribeError::NoLocalOnSharedSubscription)
    );
    assert_eq!(live_nodes(&index), 1);
    assert!(index.groups.live() == 0 && index.clients.is_empty());
}
