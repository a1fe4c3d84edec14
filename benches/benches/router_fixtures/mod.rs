//! Workload shared by `router.rs` (time) and `router_memory.rs` (bytes): the
//! same subscriptions, topics and retained messages for our index and for
//! the peer matchers, all derived from fixed seeds.
//!
//! The topic tree is `site/{0..100}/device/{0..100}/sensor/{0..100}`: one
//! million topic names. Subscriptions are 70 % exact topics, 20 % with one
//! `+` (at the site, device or sensor level, evenly) and 10 % with `#`
//! (`site/{s}/device/{d}/#` nine times in ten, `site/{s}/#` otherwise).
//! Every client holds four subscriptions, so at 1 M subscriptions there are
//! 250 000 clients.

#![allow(dead_code)]

pub(crate) const SITES: u64 = 100;
pub(crate) const DEVICES: u64 = 100;
pub(crate) const SENSORS: u64 = 100;

/// Subscriptions per client.
pub(crate) const SUBS_PER_CLIENT: usize = 4;

/// The index sizes benchmarked.
pub(crate) const SIZES: [(usize, &str); 3] =
    [(10_000, "10k"), (100_000, "100k"), (1_000_000, "1m")];

/// SplitMix64: deterministic, dependency-free.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One subscription of the workload.
#[derive(Debug, Clone)]
pub(crate) struct Sub {
    pub(crate) client: u32,
    pub(crate) filter: String,
}

/// `n` subscriptions of `n / 4` clients.
pub(crate) fn subscriptions(n: usize) -> Vec<Sub> {
    let mut rng = Rng::new(0x5AB5_C41B);
    let clients = (n / SUBS_PER_CLIENT).max(1);
    (0..n)
        .map(|i| {
            let (s, d, k) = (rng.below(SITES), rng.below(DEVICES), rng.below(SENSORS));
            let kind = rng.below(100);
            let filter = match kind {
                0..70 => format!("site/{s}/device/{d}/sensor/{k}"),
                70..77 => format!("site/+/device/{d}/sensor/{k}"),
                77..84 => format!("site/{s}/device/+/sensor/{k}"),
                84..90 => format!("site/{s}/device/{d}/sensor/+"),
                90..99 => format!("site/{s}/device/{d}/#"),
                _ => format!("site/{s}/#"),
            };
            Sub {
                client: (i % clients) as u32,
                filter,
            }
        })
        .collect()
}

/// `count` published topic names, uniformly over the tree.
pub(crate) fn topics(count: usize) -> Vec<String> {
    let mut rng = Rng::new(0x7091C5);
    (0..count)
        .map(|_| {
            let (s, d, k) = (rng.below(SITES), rng.below(DEVICES), rng.below(SENSORS));
            format!("site/{s}/device/{d}/sensor/{k}")
        })
        .collect()
}

/// Every topic name of the tree: the retained store's contents.
pub(crate) fn all_topics() -> impl Iterator<Item = String> {
    (0..SITES).flat_map(|s| {
        (0..DEVICES)
            .flat_map(move |d| (0..SENSORS).map(move |k| format!("site/{s}/device/{d}/sensor/{k}")))
    })
}

/// `count` wildcard filters for retained lookups, in equal shares: every
/// sensor of a device (`+`), one sensor of every device of a site (`+`),
/// one sensor of every site (`+` at the top), and a device's subtree (`#`).
/// Each returns 100 messages out of 1 M.
pub(crate) fn retained_filters(count: usize) -> Vec<String> {
    let mut rng = Rng::new(0xF117E5);
    (0..count)
        .map(|i| {
            let (s, d, k) = (rng.below(SITES), rng.below(DEVICES), rng.below(SENSORS));
            match i % 4 {
                0 => format!("site/{s}/device/{d}/sensor/+"),
                1 => format!("site/{s}/device/+/sensor/{k}"),
                2 => format!("site/+/device/{d}/sensor/{k}"),
                _ => format!("site/{s}/device/{d}/#"),
            }
        })
        .collect()
}
