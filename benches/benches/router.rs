//! mqtt-router against the topic matchers users would otherwise pick:
//! rmqtt's `TopicTree` (the trie of the rmqtt broker) and
//! `mqtt-topic-engine`'s `TopicRouter`, on the same subscriptions and topics,
//! plus a linear scan with `TopicFilter::matches` as the floor.
//!
//! Workload (see `router_fixtures`): a tree `site/{100}/device/{100}/sensor/{100}`,
//! 10 k / 100 k / 1 M subscriptions of 4 per client, 70 % exact, 20 % `+`,
//! 10 % `#`. A match iteration routes a batch of 256 published topics;
//! throughput is in topics. Before timing, each matcher's result for every
//! topic of the batch is checked to name the same set of clients as ours (and
//! as the linear scan at 10 k), so all do the same job.
//!
//! What each side does per topic: ours produces the delivery list a broker
//! needs (each client once, highest QoS, subscription identifiers, no-local);
//! the peers produce their raw lists of matching entries, without merging a
//! client's overlapping subscriptions. Topics and filters are parsed into
//! each library's own type before timing, so parsing is not measured for
//! anyone.
//!
//! Bytes per subscription are measured by `router_memory.rs`, a separate
//! binary with a counting allocator, so that the timings here run on the
//! plain system allocator.
#![allow(missing_docs)]

#[path = "router_fixtures/mod.rs"]
mod fixtures;

use std::collections::BTreeSet;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use fixtures::Sub;
use mqtt_codec::{QoS, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_router::{Instant, Matches, Retained, Subscription, SubscriptionIndex};
use mqtt_topic_engine::{CacheStrategy, TopicPath, TopicPatternPath, TopicRouter};
use rmqtt::topic::Topic as RTopic;
use rmqtt::trie::TopicTree;

/// Topics routed per match iteration.
const BATCH: usize = 256;
/// Retained lookups per iteration.
const LOOKUPS: usize = 100;
/// Lookups per iteration of the linear retained scan (each visits 1 M topics).
const LINEAR_LOOKUPS: usize = 4;

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn configure(g: &mut Group<'_>, heavy: bool) {
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    if heavy {
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(4));
    } else {
        g.sample_size(20);
        g.measurement_time(Duration::from_secs(3));
    }
}

fn subscription() -> Subscription {
    Subscription::new(SubscriptionOptions::new(QoS::AtLeastOnce), None)
}

fn filters(subs: &[Sub]) -> Vec<TopicFilter> {
    subs.iter()
        .map(|s| TopicFilter::try_from(s.filter.as_str()).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// Building each matcher

fn build_ours(subs: &[Sub], filters: &[TopicFilter]) -> SubscriptionIndex<u32> {
    let mut index = SubscriptionIndex::new(0x5eed);
    for (s, f) in subs.iter().zip(filters) {
        index.insert(s.client, f, subscription()).unwrap();
    }
    index
}

fn rmqtt_filters(subs: &[Sub]) -> Vec<RTopic> {
    subs.iter()
        .map(|s| RTopic::from_str(&s.filter).unwrap())
        .collect()
}

fn build_rmqtt(subs: &[Sub], filters: &[RTopic]) -> TopicTree<u32> {
    let mut tree = TopicTree::default();
    for (s, f) in subs.iter().zip(filters) {
        tree.insert(f, s.client);
    }
    tree
}

fn mte_patterns(subs: &[Sub]) -> Vec<TopicPatternPath> {
    subs.iter()
        .map(|s| {
            TopicPatternPath::new_from_string(s.filter.as_str(), CacheStrategy::NoCache).unwrap()
        })
        .collect()
}

fn build_mte(
    subs: &[Sub],
    patterns: Vec<TopicPatternPath>,
) -> (TopicRouter<u32>, Vec<mqtt_topic_engine::SubscriptionId>) {
    let mut router = TopicRouter::new();
    let ids = subs
        .iter()
        .zip(patterns)
        .map(|(s, p)| {
            router
                .add_subscription(p, mqtt_topic_engine::QoS::AtLeastOnce, s.client)
                .1
        })
        .collect();
    (router, ids)
}

// ---------------------------------------------------------------------------
// Matching a batch: each returns the number of entries produced.

fn match_ours(
    index: &mut SubscriptionIndex<u32>,
    m: &mut Matches<u32>,
    topics: &[TopicName],
) -> usize {
    let mut n = 0;
    for t in topics {
        index.match_topic(t, None, m);
        n += m.subscribers().map(|d| d.client as usize).sum::<usize>() + m.len();
    }
    n
}

fn match_rmqtt(tree: &TopicTree<u32>, topics: &[RTopic]) -> usize {
    let mut n = 0;
    for t in topics {
        for (_, values) in tree.matches(t).iter() {
            n += values.iter().map(|&&c| c as usize).sum::<usize>() + values.len();
        }
    }
    n
}

fn match_mte(router: &TopicRouter<u32>, topics: &[TopicPath]) -> usize {
    let mut n = 0;
    for t in topics {
        let subscribers = router.get_subscribers(t);
        n += subscribers
            .iter()
            .map(|&(_, _, &c)| c as usize)
            .sum::<usize>()
            + subscribers.len();
    }
    n
}

fn match_linear(filters: &[(u32, TopicFilter)], topics: &[TopicName]) -> usize {
    let mut n = 0;
    for t in topics {
        for (c, f) in filters {
            if f.matches(t) {
                n += *c as usize + 1;
            }
        }
    }
    n
}

/// Checks that every matcher names the same clients for every topic, and
/// returns the average number of receiving clients per topic.
#[allow(clippy::too_many_arguments)]
fn verify(
    index: &mut SubscriptionIndex<u32>,
    tree: &TopicTree<u32>,
    router: &TopicRouter<u32>,
    linear: Option<&[(u32, TopicFilter)]>,
    topics: &[TopicName],
    r_topics: &[RTopic],
    m_topics: &[TopicPath],
) -> f64 {
    let mut m = Matches::new();
    let mut total = 0;
    for i in 0..topics.len() {
        index.match_topic(&topics[i], None, &mut m);
        let ours: BTreeSet<u32> = m.subscribers().map(|d| d.client).collect();
        assert_eq!(ours.len(), m.len(), "each client once");
        let theirs: BTreeSet<u32> = tree
            .matches(&r_topics[i])
            .iter()
            .flat_map(|(_, v)| v)
            .copied()
            .collect();
        assert_eq!(ours, theirs, "rmqtt differs on {}", topics[i]);
        let theirs: BTreeSet<u32> = router
            .get_subscribers(&m_topics[i])
            .iter()
            .map(|&(_, _, &c)| c)
            .collect();
        assert_eq!(ours, theirs, "mqtt-topic-engine differs on {}", topics[i]);
        if let Some(linear) = linear {
            let reference: BTreeSet<u32> = linear
                .iter()
                .filter(|(_, f)| f.matches(&topics[i]))
                .map(|(c, _)| *c)
                .collect();
            assert_eq!(ours, reference, "linear scan differs on {}", topics[i]);
        }
        total += ours.len();
    }
    total as f64 / topics.len() as f64
}

fn bench_match(c: &mut Criterion) {
    let names = fixtures::topics(BATCH);
    let topics: Vec<TopicName> = names
        .iter()
        .map(|t| TopicName::try_from(t.as_str()).unwrap())
        .collect();
    let r_topics: Vec<RTopic> = names.iter().map(|t| RTopic::from_str(t).unwrap()).collect();
    let m_topics: Vec<TopicPath> = names
        .iter()
        .map(|t| TopicPath::new(t.as_str()).unwrap())
        .collect();

    for (n, label) in fixtures::SIZES {
        let subs = fixtures::subscriptions(n);
        let ours_filters = filters(&subs);
        let mut index = build_ours(&subs, &ours_filters);
        let tree = build_rmqtt(&subs, &rmqtt_filters(&subs));
        let (router, _) = build_mte(&subs, mte_patterns(&subs));
        let linear: Option<Vec<(u32, TopicFilter)>> = (n == 10_000).then(|| {
            subs.iter()
                .map(|s| s.client)
                .zip(ours_filters.iter().cloned())
                .collect()
        });
        let fan_out = verify(
            &mut index,
            &tree,
            &router,
            linear.as_deref(),
            &topics,
            &r_topics,
            &m_topics,
        );
        println!("router_match_{label}: {n} subscriptions, {fan_out:.1} receiving clients per topic on average");

        let mut g = c.benchmark_group(format!("router_match_{label}"));
        configure(&mut g, n >= 1_000_000);
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut m = Matches::new();
        g.bench_function("mqtt-router", |b| {
            b.iter(|| match_ours(&mut index, &mut m, black_box(&topics)))
        });
        g.bench_function("rmqtt", |b| {
            b.iter(|| match_rmqtt(&tree, black_box(&r_topics)))
        });
        g.bench_function("mqtt-topic-engine", |b| {
            b.iter(|| match_mte(&router, black_box(&m_topics)))
        });
        if let Some(linear) = &linear {
            g.bench_function("linear-scan", |b| {
                b.iter(|| match_linear(linear, black_box(&topics)))
            });
        }
        g.finish();
    }
}

// ---------------------------------------------------------------------------
// Insert and remove rates

fn bench_insert_remove(c: &mut Criterion) {
    const N: usize = 100_000;
    let subs = fixtures::subscriptions(N);
    let ours_filters = filters(&subs);
    let r_filters = rmqtt_filters(&subs);
    let patterns = mte_patterns(&subs);

    let mut g = c.benchmark_group("router_insert_100k");
    configure(&mut g, true);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("mqtt-router", |b| {
        b.iter_batched(
            || SubscriptionIndex::<u32>::new(0x5eed),
            |mut index| {
                for (s, f) in subs.iter().zip(&ours_filters) {
                    index.insert(s.client, f, subscription()).unwrap();
                }
                index
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("rmqtt", |b| {
        b.iter_batched(
            TopicTree::<u32>::default,
            |mut tree| {
                for (s, f) in subs.iter().zip(&r_filters) {
                    tree.insert(f, s.client);
                }
                tree
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mqtt-topic-engine", |b| {
        // The router takes its pattern by value: the copies are made untimed.
        b.iter_batched(
            || (TopicRouter::<u32>::new(), patterns.clone()),
            |(mut router, patterns)| {
                for (s, p) in subs.iter().zip(patterns) {
                    router.add_subscription(p, mqtt_topic_engine::QoS::AtLeastOnce, s.client);
                }
                router
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("router_remove_100k");
    configure(&mut g, true);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("mqtt-router", |b| {
        b.iter_batched(
            || build_ours(&subs, &ours_filters),
            |mut index| {
                for (s, f) in subs.iter().zip(&ours_filters) {
                    index.remove(s.client, f);
                }
                assert!(index.is_empty());
                index
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mqtt-router-remove-client", |b| {
        b.iter_batched(
            || build_ours(&subs, &ours_filters),
            |mut index| {
                for client in 0..(N / fixtures::SUBS_PER_CLIENT) as u32 {
                    index.remove_client(client);
                }
                assert!(index.is_empty());
                index
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("rmqtt", |b| {
        b.iter_batched(
            || build_rmqtt(&subs, &r_filters),
            |mut tree| {
                for (s, f) in subs.iter().zip(&r_filters) {
                    tree.remove(f, &s.client);
                }
                tree
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("mqtt-topic-engine", |b| {
        b.iter_batched(
            || build_mte(&subs, patterns.clone()),
            |(mut router, ids)| {
                for id in &ids {
                    router.unsubscribe(id).unwrap();
                }
                router
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

// ---------------------------------------------------------------------------
// Retained lookups over 1 M topics

fn bench_retained(c: &mut Criterion) {
    let now = Instant::ZERO;
    let payload = Bytes::from_static(b"21.5");
    let mut store = Retained::<Bytes>::new(0x5eed);
    let mut linear: Vec<(TopicName, Bytes)> = Vec::with_capacity(1_000_000);
    for t in fixtures::all_topics() {
        let t = TopicName::try_from(t.as_str()).unwrap();
        store.insert(now, &t, payload.clone(), None).unwrap();
        linear.push((t, payload.clone()));
    }
    let filters: Vec<TopicFilter> = fixtures::retained_filters(LOOKUPS)
        .iter()
        .map(|f| TopicFilter::try_from(f.as_str()).unwrap())
        .collect();
    // Every lookup finds the same topics as a linear scan: 100 of them.
    for f in &filters[..8] {
        let mut ours = BTreeSet::new();
        store.for_each_match(now, f, |r| {
            ours.insert(r.topic.to_owned());
        });
        let reference: BTreeSet<String> = linear
            .iter()
            .filter(|(t, _)| f.matches(t))
            .map(|(t, _)| t.as_str().to_owned())
            .collect();
        assert_eq!(ours, reference, "{f}");
        assert_eq!(ours.len(), 100, "{f}");
    }

    let mut g = c.benchmark_group("router_retained_1m");
    configure(&mut g, true);
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    g.bench_function("mqtt-router", |b| {
        b.iter(|| {
            let mut n = 0;
            for f in black_box(&filters) {
                store.for_each_match(now, f, |r| n += r.message.len() + r.topic.len());
            }
            n
        })
    });
    g.throughput(Throughput::Elements(LINEAR_LOOKUPS as u64));
    g.bench_function("linear-scan", |b| {
        b.iter(|| {
            let mut n = 0;
            for f in black_box(&filters[..LINEAR_LOOKUPS]) {
                for (t, m) in &linear {
                    if f.matches(t) {
                        n += m.len() + t.len();
                    }
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench_match, bench_insert_remove, bench_retained);
criterion_main!(benches);
