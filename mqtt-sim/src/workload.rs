//! The workload generator: scenarios as proptest strategies.
//!
//! A [`Scenario`] is the broker's configuration, the clients (each with its
//! version, link and limits; two clients may share a client identifier and
//! race for one session) and the operations they perform: connecting with a
//! clean or a persistent session and maybe a will, subscribing with every
//! option, unsubscribing, publishing at each QoS with retain, expiry and
//! topic aliases, disconnecting with or without the will, time passing, and
//! faults (cuts, stalls, hung and crashed clients, a crashed broker, the
//! clock jumping, connections refused).
//!
//! Every field is a plain number, flag or `&'static str`, so a scenario's
//! `Debug` output is the Rust that builds it again: a shrunk failing
//! scenario becomes a regression test by pasting (see
//! [`Scenario::to_rust`]).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Topics that publishers use: levels `a`, `b`, `c`, one to three deep.
pub const TOPICS: [&str; 12] = [
    "a", "b", "c", "a/a", "a/b", "b/a", "b/c", "c/c", "a/b/c", "a/a/a", "b/c/a", "c/b/a",
];

/// Filters that subscribers use: exact, `+`, `#`, and shared groups.
pub const FILTERS: [&str; 20] = [
    "a",
    "b",
    "a/b",
    "b/c",
    "a/a/a",
    "#",
    "a/#",
    "b/#",
    "+",
    "+/b",
    "a/+",
    "+/+",
    "+/c/+",
    "a/+/c",
    "+/+/+",
    "c/#",
    "$share/g/a/#",
    "$share/g/#",
    "$share/h/+/c/+",
    "$share/h/b/+",
];

/// How a client's connection behaves (see [`crate::LinkConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Everything at once, whole.
    Instant,
    /// A millisecond or two, small reads.
    Lan,
    /// Tens of milliseconds, jitter, reads of any size.
    Wan,
    /// Little bandwidth and a small send buffer: a slow consumer.
    Slow,
}

impl LinkKind {
    /// The link's configuration.
    pub fn config(self) -> crate::LinkConfig {
        match self {
            LinkKind::Instant => crate::LinkConfig::instant(),
            LinkKind::Lan => crate::LinkConfig::lan(),
            LinkKind::Wan => crate::LinkConfig::wan(),
            LinkKind::Slow => crate::LinkConfig::slow(),
        }
    }
}

/// The broker's configuration in a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSetup {
    /// The adapter decodes and encodes itself (`handle_packets`,
    /// `poll_frames`) instead of handing bytes over.
    pub packet_path: bool,
    /// A session's queue limit (`limits.max_queued`).
    pub max_queued: usize,
    /// The broker's own cap on deliveries in flight to a client.
    pub max_inflight: u16,
    /// The Receive Maximum the broker announces.
    pub receive_maximum: u16,
    /// The Topic Alias Maximum the broker announces (0: none).
    pub topic_alias_maximum: u16,
    /// The broker assigns topic aliases to what it sends (5.0).
    pub outbound_topic_aliases: bool,
    /// A full queue drops the new message instead of the oldest.
    pub drop_new: bool,
    /// The cap on session expiry, in seconds.
    pub max_session_expiry: u32,
    /// Flow control pauses publishers (`BrokerConfig::pause_publishers`,
    /// on in the broker binary): their input waits in the core while a
    /// subscriber they feed is past its high-water mark.
    pub pause_publishers: bool,
}

/// One client of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSetup {
    /// Speaks 5.0 (else 3.1.1).
    pub v5: bool,
    /// Its client identifier is `c{id}`: clients with one id race for one
    /// session (takeover).
    pub id: u8,
    /// Its link.
    pub link: LinkKind,
    /// The Receive Maximum it announces (5.0) and its own in-flight cap.
    pub receive_maximum: u16,
    /// It assigns topic aliases to what it publishes (5.0).
    pub topic_aliases: bool,
    /// Its keep alive, in seconds (0: off).
    pub keep_alive: u16,
    /// The Session Expiry Interval of its first connection, made before
    /// the operations start (with a clean start).
    pub expiry: u32,
}

/// A will, as a CONNECT carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillSpec {
    /// Its topic.
    pub topic: &'static str,
    /// Its QoS (0, 1 or 2).
    pub qos: u8,
    /// Its RETAIN flag.
    pub retain: bool,
    /// Its Will Delay Interval in seconds (5.0).
    pub delay: u32,
}

/// One thing that happens in a scenario. `client` is taken modulo the
/// number of clients; an operation that does not fit the client's state
/// (publishing while disconnected) does nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Opens a connection (resuming the client's session state when
    /// `clean_start` is false).
    Connect {
        /// Who.
        client: u8,
        /// Clean Start.
        clean_start: bool,
        /// Session Expiry Interval in seconds (5.0; 3.1.1 keeps the session
        /// when `clean_start` is false).
        expiry: u32,
        /// The will.
        will: Option<WillSpec>,
    },
    /// DISCONNECT: normal (the will is discarded) or, 5.0, 0x04 (the will
    /// is published).
    Disconnect {
        /// Who.
        client: u8,
        /// Disconnect with Will Message (5.0).
        with_will: bool,
    },
    /// SUBSCRIBE to one filter.
    Subscribe {
        /// Who.
        client: u8,
        /// The filter.
        filter: &'static str,
        /// Requested QoS (0, 1 or 2).
        qos: u8,
        /// No Local (5.0; never on a shared filter).
        no_local: bool,
        /// Retain As Published (5.0).
        rap: bool,
        /// Retain Handling, 0 to 2 (5.0).
        rh: u8,
        /// A Subscription Identifier (5.0).
        sub_id: Option<u32>,
    },
    /// UNSUBSCRIBE from one filter.
    Unsubscribe {
        /// Who.
        client: u8,
        /// The filter.
        filter: &'static str,
    },
    /// PUBLISH.
    Publish {
        /// Who.
        client: u8,
        /// The topic.
        topic: &'static str,
        /// QoS (0, 1 or 2).
        qos: u8,
        /// RETAIN.
        retain: bool,
        /// A Message Expiry Interval in seconds (5.0).
        expiry: Option<u32>,
        /// An empty payload (clears a retained message).
        empty: bool,
    },
    /// Time passes.
    Wait {
        /// Milliseconds.
        ms: u64,
    },
    /// The clock jumps forward: nothing happens on the way.
    Jump {
        /// Seconds.
        secs: u64,
    },
    /// The client's connection is cut without DISCONNECT.
    Cut {
        /// Whose.
        client: u8,
    },
    /// Nothing moves on the client's connection for a while.
    Stall {
        /// Whose.
        client: u8,
        /// Milliseconds.
        ms: u64,
    },
    /// The client hangs for a while (reads, writes and timers stop).
    Freeze {
        /// Who.
        client: u8,
        /// Milliseconds.
        ms: u64,
    },
    /// The client's process dies: its state is lost, no DISCONNECT.
    CrashClient {
        /// Who.
        client: u8,
    },
    /// The broker crashes and comes back after a while, empty.
    CrashBroker {
        /// Milliseconds of downtime.
        downtime_ms: u64,
    },
    /// The broker refuses new connections for a while.
    Refuse {
        /// Milliseconds.
        ms: u64,
    },
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Seeds the network and the interleavings.
    pub seed: u64,
    /// The broker.
    pub broker: BrokerSetup,
    /// The clients.
    pub clients: Vec<ClientSetup>,
    /// A client on an instant link that subscribes to `#` at QoS 2 with a
    /// persistent session before anything happens, so that everything
    /// published is seen by someone.
    pub watcher: bool,
    /// What happens, in order.
    pub ops: Vec<Op>,
}

impl Scenario {
    /// Rust that builds this scenario again, for a regression test (with
    /// `use mqtt_sim::workload::{*, LinkKind::*, Op::*};` in scope).
    pub fn to_rust(&self) -> String {
        format!("{self:#?}")
            .replace("clients: [", "clients: vec![")
            .replace("ops: [", "ops: vec![")
    }
}

fn qos() -> impl Strategy<Value = u8> {
    prop_oneof![1 => Just(0u8), 2 => Just(1u8), 2 => Just(2u8)]
}

fn broker_setup() -> impl Strategy<Value = BrokerSetup> {
    (
        any::<bool>(),
        prop_oneof![Just(4usize), Just(16), Just(1000)],
        prop_oneof![Just(2u16), Just(8), Just(100)],
        prop_oneof![Just(4u16), Just(100)],
        prop_oneof![Just(0u16), Just(4)],
        any::<bool>(),
        any::<bool>(),
        prop_oneof![3 => Just(u32::MAX), 1 => Just(20u32)],
    )
        .prop_map(
            |(packet_path, max_queued, max_inflight, receive_maximum, tam, oa, drop_new, mse)| {
                BrokerSetup {
                    packet_path,
                    max_queued,
                    max_inflight,
                    receive_maximum,
                    topic_alias_maximum: tam,
                    outbound_topic_aliases: oa,
                    drop_new,
                    max_session_expiry: mse,
                    // Drawn last (see `scenario`).
                    pause_publishers: false,
                }
            },
        )
}

fn link() -> impl Strategy<Value = LinkKind> {
    prop_oneof![
        3 => Just(LinkKind::Instant),
        3 => Just(LinkKind::Lan),
        2 => Just(LinkKind::Wan),
        1 => Just(LinkKind::Slow),
    ]
}

fn client_setup() -> impl Strategy<Value = ClientSetup> {
    (
        any::<bool>(),
        0u8..6,
        link(),
        prop_oneof![Just(2u16), Just(10), Just(100)],
        any::<bool>(),
        prop_oneof![Just(0u16), Just(5), Just(60)],
        expiry(),
    )
        .prop_map(
            |(v5, id, link, receive_maximum, topic_aliases, keep_alive, expiry)| ClientSetup {
                v5,
                id,
                link,
                receive_maximum,
                topic_aliases,
                keep_alive,
                expiry,
            },
        )
}

fn will() -> impl Strategy<Value = Option<WillSpec>> {
    let spec = (
        prop::sample::select(&TOPICS[..]),
        qos(),
        any::<bool>(),
        prop_oneof![2 => Just(0u32), 1 => Just(1), 1 => Just(5), 1 => Just(30)],
    )
        .prop_map(|(topic, qos, retain, delay)| WillSpec {
            topic,
            qos,
            retain,
            delay,
        });
    prop::option::weighted(0.4, spec)
}

fn expiry() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(2), Just(10), Just(300), Just(u32::MAX)]
}

fn connect(c: u8) -> impl Strategy<Value = Op> {
    (any::<bool>(), expiry(), will()).prop_map(move |(clean_start, expiry, will)| Op::Connect {
        client: c,
        clean_start,
        expiry,
        will,
    })
}

fn subscribe(c: u8) -> impl Strategy<Value = Op> {
    (
        prop::sample::select(&FILTERS[..]),
        qos(),
        any::<bool>(),
        any::<bool>(),
        0u8..3,
        prop::option::of(1u32..4),
    )
        .prop_map(
            move |(filter, qos, no_local, rap, rh, sub_id)| Op::Subscribe {
                client: c,
                filter,
                qos,
                // [MQTT-3.8.3-4]: No Local on a shared subscription is a
                // protocol error; a correct client never sends it.
                no_local: no_local && !filter.starts_with("$share/"),
                rap,
                rh,
                sub_id,
            },
        )
}

fn publish(c: u8) -> impl Strategy<Value = Op> {
    (
        prop::sample::select(&TOPICS[..]),
        qos(),
        prop::bool::weighted(0.3),
        prop::option::weighted(0.15, 1u32..6),
        prop::bool::weighted(0.05),
    )
        .prop_map(move |(topic, qos, retain, expiry, empty)| Op::Publish {
            client: c,
            topic,
            qos,
            retain,
            expiry,
            empty,
        })
}

/// One operation: its kind and values drawn for client 0, then its client.
/// (Not `prop_flat_map` on the client: that builds the whole union again
/// for every operation, which cost half of a run's time.)
fn op() -> impl Strategy<Value = Op> {
    let c = 0;
    let kind = prop_oneof![
        12 => connect(c),
        4 => any::<bool>().prop_map(move |w| Op::Disconnect { client: c, with_will: w }),
        12 => subscribe(c),
        3 => prop::sample::select(&FILTERS[..]).prop_map(move |f| Op::Unsubscribe { client: c, filter: f }),
        40 => publish(c),
        16 => prop_oneof![Just(1u64), Just(10), Just(100), Just(1_000), Just(6_000)].prop_map(|ms| Op::Wait { ms }),
        1 => prop_oneof![Just(3u64), Just(40), Just(400)].prop_map(|secs| Op::Jump { secs }),
        3 => Just(Op::Cut { client: c }),
        2 => prop_oneof![Just(50u64), Just(3_000)].prop_map(move |ms| Op::Stall { client: c, ms }),
        2 => prop_oneof![Just(50u64), Just(3_000), Just(20_000)].prop_map(move |ms| Op::Freeze { client: c, ms }),
        1 => Just(Op::CrashClient { client: c }),
        1 => prop_oneof![Just(0u64), Just(2_000)].prop_map(|downtime_ms| Op::CrashBroker { downtime_ms }),
        1 => prop_oneof![Just(100u64), Just(3_000)].prop_map(|ms| Op::Refuse { ms }),
    ];
    (0u8..8, kind).prop_map(|(c, op)| op.for_client(c))
}

impl Op {
    /// The same operation by client `c` (operations of no client unchanged).
    fn for_client(mut self, c: u8) -> Op {
        match &mut self {
            Op::Connect { client, .. }
            | Op::Disconnect { client, .. }
            | Op::Subscribe { client, .. }
            | Op::Unsubscribe { client, .. }
            | Op::Publish { client, .. }
            | Op::Cut { client }
            | Op::Stall { client, .. }
            | Op::Freeze { client, .. }
            | Op::CrashClient { client } => *client = c,
            Op::Wait { .. } | Op::Jump { .. } | Op::CrashBroker { .. } | Op::Refuse { .. } => {}
        }
        self
    }
}

/// Scenarios of `ops` operations among two to six clients (the lower bound
/// of the range is also where shrinking stops removing operations).
pub fn scenario(ops: core::ops::Range<usize>) -> impl Strategy<Value = Scenario> {
    (
        any::<u64>(),
        broker_setup(),
        prop::collection::vec(client_setup(), 2..7),
        prop::bool::weighted(0.6),
        prop::collection::vec(op(), ops),
        // Drawn after everything else, so that a seed draws the same
        // scenario as before pausing was drawn, paused or not.
        any::<bool>(),
    )
        .prop_map(|(seed, mut broker, clients, watcher, ops, pause)| {
            broker.pause_publishers = pause_override().unwrap_or(pause);
            Scenario {
                seed,
                broker,
                clients,
                watcher,
                ops,
            }
        })
}

/// `MQTT_SIM_PAUSE=on` or `off`: every drawn scenario pauses publishers, or
/// none does (to replay a seed found with one setting under the other).
/// Unset or anything else: each scenario draws it.
pub fn pause_override() -> Option<bool> {
    match std::env::var("MQTT_SIM_PAUSE").ok()?.trim() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// The proptest runner that draws the scenario of `seed`: the same seed
/// always gives the same scenario (ChaCha seeded from it).
pub fn runner_for(seed: u64) -> TestRunner {
    let mut rng = crate::Rng::new(seed);
    let bytes: Vec<u8> = (0..4).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// The scenario of `seed`, with `ops` operations at most, and the value
/// tree that shrinks it.
pub fn tree_for(
    seed: u64,
    ops: usize,
) -> <proptest::strategy::BoxedStrategy<Scenario> as Strategy>::Tree {
    let strategy = scenario(1..ops.max(2)).boxed();
    let mut runner = runner_for(seed);
    strategy
        .new_tree(&mut runner)
        .expect("the scenario strategy never rejects")
}

/// The scenario of `seed`, with `ops` operations at most.
pub fn scenario_for(seed: u64, ops: usize) -> Scenario {
    tree_for(seed, ops).current()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_draws_the_same_scenario() {
        assert_eq!(scenario_for(42, 50), scenario_for(42, 50));
        assert_ne!(scenario_for(42, 50), scenario_for(43, 50));
    }

    #[test]
    fn every_filter_and_topic_is_valid() {
        for f in FILTERS {
            crate::build::filter(f);
        }
        for t in TOPICS {
            crate::build::topic(t);
        }
    }
}
