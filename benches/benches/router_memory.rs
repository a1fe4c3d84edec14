//! Bytes per subscription of mqtt-router and of the peer matchers, and bytes
//! per retained topic, measured with a counting global allocator (which is
//! why this is a binary of its own: the timings of `router.rs` run on the
//! plain system allocator).
//!
//! For each structure: heap bytes in use after building it minus before,
//! divided by the number of subscriptions. Filters are parsed before the
//! measurement starts, except where a library stores its parsed pattern
//! (mqtt-topic-engine keeps the `TopicPatternPath` it is given, so those
//! bytes are its own).
//!
//! Run with `cargo bench -p mqtt-benches --bench router_memory`.
#![allow(missing_docs)]

#[path = "router_fixtures/mod.rs"]
mod fixtures;

use std::alloc::System;
use std::collections::HashSet;
use std::str::FromStr;

use bytes::Bytes;
use mqtt_codec::{QoS, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_router::{Instant, Matches, Retained, Subscription, SubscriptionIndex};
use mqtt_topic_engine::{CacheStrategy, TopicPatternPath, TopicRouter};
use rmqtt::topic::Topic as RTopic;
use rmqtt::trie::TopicTree;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes held by what `build` returns (kept alive until measured).
fn held<T>(build: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let value = build();
    let s = region.change();
    // stats_alloc already counts a reallocation's growth (or shrink) in
    // bytes_allocated (bytes_deallocated); bytes_reallocated repeats it.
    let bytes = s.bytes_allocated as isize - s.bytes_deallocated as isize;
    (value, bytes.max(0) as usize)
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter selects nothing here.
    if std::env::args().skip(1).any(|a| !a.starts_with('-')) {
        return;
    }
    println!("| subscriptions | trie nodes (ours) | mqtt-router | rmqtt | mqtt-topic-engine |");
    println!("|---:|---:|---:|---:|---:|");
    for (n, label) in fixtures::SIZES {
        let subs = fixtures::subscriptions(n);
        let sub = Subscription::new(SubscriptionOptions::new(QoS::AtLeastOnce), None);

        let filters: Vec<TopicFilter> = subs
            .iter()
            .map(|s| TopicFilter::try_from(s.filter.as_str()).unwrap())
            .collect();
        let (index, ours) = held(|| {
            let mut index = SubscriptionIndex::<u32>::new(1);
            for (s, f) in subs.iter().zip(&filters) {
                index.insert(s.client, f, sub).unwrap();
            }
            index
        });
        assert!(index.len() > n * 99 / 100);
        drop((index, filters));

        let r_filters: Vec<RTopic> = subs
            .iter()
            .map(|s| RTopic::from_str(&s.filter).unwrap())
            .collect();
        let (tree, rmqtt) = held(|| {
            let mut tree = TopicTree::<u32>::default();
            for (s, f) in subs.iter().zip(&r_filters) {
                tree.insert(f, s.client);
            }
            tree
        });
        drop((tree, r_filters));

        let patterns: Vec<TopicPatternPath> = subs
            .iter()
            .map(|s| {
                TopicPatternPath::new_from_string(s.filter.as_str(), CacheStrategy::NoCache)
                    .unwrap()
            })
            .collect();
        let (router, mte) = held(move || {
            let mut router = TopicRouter::<u32>::new();
            for (s, p) in subs.iter().zip(patterns) {
                router.add_subscription(p, mqtt_topic_engine::QoS::AtLeastOnce, s.client);
            }
            router
        });
        drop(router);

        // Distinct filter prefixes = trie nodes (plus the root), for the breakdown.
        let nodes: HashSet<String> = fixtures::subscriptions(n)
            .iter()
            .flat_map(|s| {
                let levels: Vec<&str> = s.filter.split('/').collect();
                (1..=levels.len()).map(move |k| levels[..k].join("/"))
            })
            .collect();
        let per = |b: usize| b as f64 / n as f64;
        println!(
            "| {label} | {} | {:.0} B | {:.0} B | {:.0} B |",
            nodes.len() + 1,
            per(ours),
            per(rmqtt),
            per(mte)
        );
    }

    // Steady state: once the buffers have grown, matching and retained
    // lookups allocate nothing.
    {
        let subs = fixtures::subscriptions(100_000);
        let mut index = SubscriptionIndex::<u32>::new(1);
        let sub = Subscription::new(SubscriptionOptions::new(QoS::AtLeastOnce), None);
        for s in &subs {
            index
                .insert(
                    s.client,
                    &TopicFilter::<Bytes>::try_from(s.filter.as_str()).unwrap(),
                    sub,
                )
                .unwrap();
        }
        let topics: Vec<TopicName> = fixtures::topics(256)
            .iter()
            .map(|t| TopicName::try_from(t.as_str()).unwrap())
            .collect();
        let mut m = Matches::new();
        let mut route = |index: &mut SubscriptionIndex<u32>| {
            topics
                .iter()
                .map(|t| {
                    index.match_topic(t, None, &mut m);
                    m.len()
                })
                .sum::<usize>()
        };
        route(&mut index);
        let region = Region::new(GLOBAL);
        let delivered = route(&mut index);
        let allocations = region.change().allocations;
        println!();
        println!("steady-state allocations while matching 256 topics ({delivered} deliveries): {allocations}");
        assert_eq!(allocations, 0);
    }

    // Retained: 1 M topics with a static payload, so only the store's own
    // bytes are counted (a real payload adds its length plus `Bytes` overhead).
    let topics: Vec<TopicName> = fixtures::all_topics()
        .map(|t| TopicName::try_from(t.as_str()).unwrap())
        .collect();
    let payload = Bytes::from_static(b"21.5");
    let (store, bytes) = held(|| {
        let mut store = Retained::<Bytes>::new(1);
        for t in &topics {
            store
                .insert(Instant::ZERO, t, payload.clone(), None)
                .unwrap();
        }
        store
    });
    println!();
    println!(
        "retained: {} topics, {:.0} B per retained topic (store only, `Bytes` message of 32 B inline included)",
        store.len(),
        bytes as f64 / store.len() as f64
    );
    let mut store = store;
    let filters: Vec<TopicFilter> = fixtures::retained_filters(100)
        .iter()
        .map(|f| TopicFilter::try_from(f.as_str()).unwrap())
        .collect();
    let lookup = |store: &mut Retained<Bytes>| {
        let mut n = 0;
        for f in &filters {
            store.for_each_match(Instant::ZERO, f, |r| n += r.topic.len());
        }
        n
    };
    lookup(&mut store);
    let region = Region::new(GLOBAL);
    lookup(&mut store);
    let allocations = region.change().allocations;
    println!("steady-state allocations during 100 retained lookups: {allocations}");
    assert_eq!(allocations, 0);
}
