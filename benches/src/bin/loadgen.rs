//! `loadgen`: drives an MQTT broker with one scenario and prints one
//! `key=value ...` summary line (and appends it as a JSON record with
//! `--json FILE`).
//!
//! It speaks MQTT 3.1.1 over plain TCP through `mqtt-codec` directly, one
//! tokio task per connection, so that the generator costs little next to the
//! broker. Every payload carries a stamp (publisher, sequence number, send
//! time), so each delivery is checked while it is counted: at the expected
//! QoS, in order per publisher, neither lost nor duplicated.
//!
//! ```text
//! loadgen --broker 127.0.0.1:1883 --scenario fan-in --qos 1 --duration 10
//! loadgen --scenario connections --connections 15000 --broker-pid 4242
//! ```
//!
//! Scenarios (see issue 7):
//! - `fan-in`: `--publishers` (8) publishers, each on its own topic, to one
//!   subscriber of a `+` filter;
//! - `fan-out`: one publisher to `--subscribers` (100) subscribers of its topic;
//! - `pairs`: `--pairs` (500) publisher/subscriber pairs on their own topics;
//! - `latency`: one publisher at a fixed `--rate` (1000/s) to one subscriber;
//! - `connections`: `--connections` (15,000) idle connections with keep-alive;
//! - `qos2`: fan-in at QoS 2.
//!
//! Publishers at QoS 1 and 2 keep `--window` (100) messages in flight.
//! Throughput counts distinct deliveries from the first PUBLISH to the last
//! delivery. Loops are bounded in count and time; only loopback addresses
//! are accepted.

#[path = "../loadgen/client.rs"]
mod client;
#[path = "../loadgen/stats.rs"]
mod stats;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use mqtt_codec::QoS;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};

use client::{
    hold_idle, run_publisher, run_subscriber, Conn, LoadError, PublishTemplate, PublisherPlan,
    RunState, SubscriberPlan,
};
use stats::{cpu_seconds, new_histogram, rss_kib, Counts, Percentiles, Summary};

/// Load generator for MQTT brokers (issue 7): one scenario, one summary line.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The broker, a loopback address.
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: SocketAddr,
    /// Where the subscribers connect, when not to `--broker`: another node
    /// of a cluster, so every message crosses between nodes.
    #[arg(long)]
    sub_broker: Option<SocketAddr>,
    /// Seconds to wait between the subscriptions and the first publish
    /// (a cluster spreads interest between nodes meanwhile).
    #[arg(long, default_value_t = 0.0)]
    settle: f64,
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// QoS of publications and subscriptions (default 1; `qos2` forces 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: Option<u8>,
    /// Seconds of publishing, or of holding the connections.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Payload bytes (at least 20, the stamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Publishers of `fan-in` and `qos2`.
    #[arg(long, default_value_t = 8)]
    publishers: u32,
    /// Subscribers of `fan-out`.
    #[arg(long, default_value_t = 100)]
    subscribers: u32,
    /// Publisher/subscriber pairs of `pairs`.
    #[arg(long, default_value_t = 500)]
    pairs: u32,
    /// Messages per second of `latency`.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Idle connections of `connections`.
    #[arg(long, default_value_t = 15_000)]
    connections: u32,
    /// QoS 1/2 messages each publisher keeps in flight.
    #[arg(long, default_value_t = 100)]
    window: usize,
    /// Most messages per publisher (a bound besides `--duration`).
    #[arg(long, default_value_t = 100_000_000)]
    max_messages: u64,
    /// Seconds to wait, after publishing stops, for outstanding deliveries
    /// and acknowledgements.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Seconds without a delivery, once publishing is over, after which a
    /// subscriber stops waiting for the rest (counted as lost).
    #[arg(long, default_value_t = 3.0)]
    idle: f64,
    /// Messages per second of each publisher in the throughput scenarios
    /// (default: as fast as the window and the socket allow).
    #[arg(long)]
    pub_rate: Option<f64>,
    /// Subscribers keep their sessions (Clean Session 0), so a broker with a
    /// store writes what it queues for them: fan-in into a persistent
    /// subscriber.
    #[arg(long)]
    persistent_subscribers: bool,
    /// Keep alive of every connection, seconds; idle connections ping at half of it.
    #[arg(long, default_value_t = 30)]
    keep_alive: u16,
    /// Source addresses 127.0.0.1..=127.0.0.N to spread connections over
    /// (default: enough for the ephemeral port range).
    #[arg(long)]
    sources: Option<u8>,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Process id of the broker: its CPU seconds and resident memory are
    /// read from /proc before and after.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Append the summary as one JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Extra `KEY=VALUE` pairs copied into the summary (e.g. `broker=ours`).
    #[arg(long = "tag", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// First level of every topic, so runs do not see each other's messages.
    #[arg(long, default_value = "loadgen")]
    topic_prefix: String,
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Many publishers to one wildcard subscriber.
    FanIn,
    /// One publisher to many subscribers of one topic.
    FanOut,
    /// Publisher/subscriber pairs, each on its own topic.
    Pairs,
    /// A fixed-rate stream: latency percentiles.
    Latency,
    /// Idle connections: connect rate and broker memory per connection.
    Connections,
    /// Fan-in at QoS 2.
    Qos2,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::FanIn => "fan-in",
            Scenario::FanOut => "fan-out",
            Scenario::Pairs => "pairs",
            Scenario::Latency => "latency",
            Scenario::Connections => "connections",
            Scenario::Qos2 => "qos2",
        }
    }
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Who publishes to what, and who listens.
#[derive(Debug, Clone, PartialEq)]
struct Topology {
    /// Topic of each publisher.
    publish_topics: Vec<String>,
    /// Filter of each subscriber and the publishers it hears (a range of numbers).
    subscriptions: Vec<(String, std::ops::Range<u32>)>,
    /// Fixed interval between one publisher's messages.
    period: Option<Duration>,
}

/// The publishers and subscribers of a message scenario.
fn topology(args: &Args) -> Topology {
    let mut t = shape(args);
    if let (None, Some(rate)) = (t.period, args.pub_rate) {
        t.period = Some(Duration::from_secs_f64(1.0 / rate));
    }
    t
}

fn shape(args: &Args) -> Topology {
    let p = &args.topic_prefix;
    match args.scenario {
        Scenario::FanIn | Scenario::Qos2 => Topology {
            publish_topics: (0..args.publishers)
                .map(|i| format!("{p}/fan-in/{i}"))
                .collect(),
            subscriptions: vec![(format!("{p}/fan-in/+"), 0..args.publishers)],
            period: None,
        },
        Scenario::FanOut => Topology {
            publish_topics: vec![format!("{p}/fan-out")],
            subscriptions: (0..args.subscribers)
                .map(|_| (format!("{p}/fan-out"), 0..1))
                .collect(),
            period: None,
        },
        Scenario::Pairs => Topology {
            publish_topics: (0..args.pairs).map(|i| format!("{p}/pair/{i}")).collect(),
            subscriptions: (0..args.pairs)
                .map(|i| (format!("{p}/pair/{i}"), i..i + 1))
                .collect(),
            period: None,
        },
        Scenario::Latency => Topology {
            publish_topics: vec![format!("{p}/latency")],
            subscriptions: vec![(format!("{p}/latency"), 0..1)],
            period: Some(Duration::from_secs_f64(1.0 / args.rate)),
        },
        Scenario::Connections => Topology {
            publish_topics: vec![],
            subscriptions: vec![],
            period: None,
        },
    }
}

fn qos_of(args: &Args) -> QoS {
    let n = match args.scenario {
        Scenario::Qos2 => 2,
        _ => args.qos.unwrap_or(1),
    };
    QoS::from_u8(n).unwrap_or(QoS::AtLeastOnce)
}

/// Source addresses needed so that `connections` fit in the ephemeral port
/// range of `ports` ports, keeping a fifth of it free for everything else.
fn sources_needed(connections: u32, ports: u32) -> u8 {
    let usable = (ports / 5 * 4).max(1);
    connections.div_ceil(usable).clamp(1, 250) as u8
}

/// The size of the ephemeral port range (from /proc; 28,232 is Linux's default).
fn ephemeral_ports() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u32>().ok());
            let (lo, hi) = (it.next()??, it.next()??);
            Some(hi.saturating_sub(lo) + 1)
        })
        .unwrap_or(28_232)
}

/// Raises this process's open-file soft limit to the hard limit, returning
/// the limit now in force.
fn raise_nofile_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The broker's CPU seconds and resident KiB, if a pid was given and is readable.
struct BrokerProbe(Option<String>);

impl BrokerProbe {
    fn cpu(&self) -> Option<f64> {
        self.0.as_deref().and_then(cpu_seconds)
    }
    fn rss(&self) -> Option<u64> {
        self.0.as_deref().and_then(rss_kib)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.broker.ip().is_loopback() {
        eprintln!(
            "loadgen: {} is not a loopback address; refusing to load another machine",
            args.broker
        );
        return ExitCode::FAILURE;
    }
    let in_range = (0.0..=3600.0).contains(&args.duration)
        && args.duration > 0.0
        && (0.0..=600.0).contains(&args.drain)
        && (0.0..=600.0).contains(&args.idle)
        && args.pub_rate.is_none_or(|r| r > 0.0 && r <= 10_000_000.0)
        && (0.0..=10_000_000.0).contains(&args.rate)
        && args.rate > 0.0;
    if !in_range {
        eprintln!(
            "loadgen: --duration must be in (0, 3600], --drain in [0, 600], --rate in (0, 1e7]"
        );
        return ExitCode::FAILURE;
    }
    let nofile = match raise_nofile_limit() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("loadgen: cannot raise the open-file limit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let probe = BrokerProbe(args.broker_pid.map(|p| p.to_string()));
    let gen_cpu_before = cpu_seconds("self");
    let broker_cpu_before = probe.cpu();
    let broker_rss_before = probe.rss();
    let began = std::time::Instant::now();

    let mut summary = Summary::default();
    summary.text("scenario", args.scenario.name());
    for (k, v) in &args.tags {
        summary.text(k, v);
    }
    let result = runtime.block_on(async {
        match args.scenario {
            Scenario::Connections => {
                connections(&args, &probe, broker_rss_before, &mut summary).await
            }
            _ => messages(&args, &mut summary).await,
        }
    });
    let elapsed = began.elapsed().as_secs_f64();
    let gen_cpu = cpu_seconds("self").zip(gen_cpu_before).map(|(a, b)| a - b);
    let broker_cpu = probe.cpu().zip(broker_cpu_before).map(|(a, b)| a - b);
    let deliveries = result.as_ref().map_or(0, |d| *d);
    if let Some(c) = broker_cpu {
        summary.float("broker_cpu_s", c);
        if deliveries > 0 && args.scenario != Scenario::Connections {
            summary.float("broker_cpu_s_per_M", c / (deliveries as f64 / 1e6));
        }
    }
    if let Some(r) = probe.rss() {
        summary.int("broker_rss_kib", r);
    }
    if let Some(c) = gen_cpu {
        summary.float("gen_cpu_s", c);
        summary.float("gen_cpu_per_wall", c / elapsed);
    }
    summary.float("wall_s", elapsed).int("nofile", nofile);
    if let Err(e) = &result {
        summary.text("error", &e.to_string());
    }
    println!("{}", summary.line());
    if let Some(path) = &args.json {
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{}", summary.json()));
        if let Err(e) = written {
            eprintln!("loadgen: cannot append to {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A failure that ends a scenario before it measured anything.
#[derive(Debug, thiserror::Error)]
enum ScenarioError {
    /// A connection could not be set up.
    #[error("setting up {what} {index}: {source}")]
    Setup {
        /// "publisher" or "subscriber".
        what: &'static str,
        /// Its number.
        index: u32,
        /// Why.
        source: LoadError,
    },
    /// Fewer connections came up than asked for.
    #[error("only {connected} of {wanted} connections came up (first failure: {first})")]
    Connections {
        /// Connected.
        connected: u64,
        /// Asked for.
        wanted: u32,
        /// The first failure.
        first: String,
    },
    /// A spawned task panicked.
    #[error("a connection task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Connects `n` clients named `{role}-{i}`, a few at a time, in order.
async fn connect_all(
    args: &Args,
    role: &'static str,
    n: usize,
    deadline: Instant,
) -> Result<Vec<Conn>, ScenarioError> {
    let pid = std::process::id();
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let limit = limit.clone();
        let id = format!("lg{pid}-{role}-{i}");
        let broker = match (role, args.sub_broker) {
            ("sub", Some(b)) => b,
            _ => args.broker,
        };
        let keep_alive = args.keep_alive;
        let clean = !(args.persistent_subscribers && role == "sub");
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (
                i,
                Conn::connect(broker, None, &id, keep_alive, clean, deadline).await,
            )
        });
    }
    let mut conns: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, c) = r?;
        let c = c.map_err(|source| ScenarioError::Setup {
            what: role,
            index: i as u32,
            source,
        })?;
        conns[i] = Some(c);
    }
    Ok(conns.into_iter().flatten().collect())
}

/// fan-in, fan-out, pairs, latency, qos2. Returns the deliveries counted.
async fn messages(args: &Args, summary: &mut Summary) -> Result<u64, ScenarioError> {
    let topo = topology(args);
    let qos = qos_of(args);
    let publishers = topo.publish_topics.len() as u32;
    let setup_deadline = Instant::now() + Duration::from_secs(60);

    let mut subs = connect_all(args, "sub", topo.subscriptions.len(), setup_deadline).await?;
    for (i, (conn, (filter, _))) in subs.iter_mut().zip(&topo.subscriptions).enumerate() {
        conn.subscribe(filter, qos, setup_deadline)
            .await
            .map_err(|source| ScenarioError::Setup {
                what: "subscriber",
                index: i as u32,
                source,
            })?;
    }
    if args.settle > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    }
    let pubs = connect_all(args, "pub", topo.publish_topics.len(), setup_deadline).await?;
    let templates = topo
        .publish_topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            PublishTemplate::new(t, qos, args.payload)
                .map(Arc::new)
                .map_err(|source| ScenarioError::Setup {
                    what: "publisher",
                    index: i as u32,
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let state = Arc::new(RunState::new(publishers));
    let base = Instant::now();
    let start = base + Duration::from_millis(50);
    let stop = start + Duration::from_secs_f64(args.duration);
    let drain = Duration::from_secs_f64(args.drain);
    let deadline = stop + drain;

    let mut sub_tasks = JoinSet::new();
    for (conn, (_, sources)) in subs.into_iter().zip(&topo.subscriptions) {
        let plan = SubscriberPlan {
            qos,
            sources: sources.clone(),
            publishers,
            base,
            state: state.clone(),
            idle: Duration::from_secs_f64(args.idle).min(drain.max(Duration::from_millis(100))),
            // After the publishers' own deadline and their DISCONNECT.
            deadline: deadline + Duration::from_secs(3),
        };
        sub_tasks.spawn(run_subscriber(conn, plan));
    }
    let mut pub_tasks = JoinSet::new();
    for (i, (conn, template)) in pubs.into_iter().zip(templates).enumerate() {
        let plan = PublisherPlan {
            id: i as u32,
            template,
            window: args.window,
            period: topo.period,
            base,
            start,
            stop,
            deadline,
            max_messages: args.max_messages,
        };
        pub_tasks.spawn(async move { (i, run_publisher(conn, plan).await) });
    }

    let mut published = 0u64;
    let mut completed = 0u64;
    let mut last_sent = start;
    let mut errors = Vec::new();
    while let Some(r) = pub_tasks.join_next().await {
        let (i, rep) = r?;
        state.published[i].store(rep.published, Ordering::Release);
        published += rep.published;
        completed += rep.completed;
        last_sent = last_sent.max(rep.last_sent.unwrap_or(start));
        errors.extend(rep.error.map(|e| format!("publisher {i}: {e}")));
    }
    state.done.store(true, Ordering::Release);

    let mut counts = Counts::default();
    let mut latency = new_histogram();
    let mut expected = 0u64;
    let mut last_delivery = start;
    while let Some(r) = sub_tasks.join_next().await {
        let rep = r?;
        counts.add(&rep.tracker.counts());
        let _ = latency.add(&rep.latency);
        expected += rep.expected;
        last_delivery = last_delivery.max(rep.last_delivery.unwrap_or(start));
        errors.extend(rep.error.map(|e| format!("subscriber: {e}")));
    }

    let span = last_delivery.saturating_duration_since(start).as_secs_f64();
    let pub_span = last_sent.saturating_duration_since(start).as_secs_f64();
    let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    summary
        .int("qos", qos as u64)
        .int("payload", args.payload as u64)
        .int("publishers", publishers as u64)
        .int("subscribers", topo.subscriptions.len() as u64)
        .float("duration_s", args.duration)
        .int("published", published)
        .int("acked", completed)
        .int("expected", expected)
        .int("delivered", counts.distinct)
        .int("lost", expected.saturating_sub(counts.distinct))
        .int("duplicates", counts.duplicates)
        .int("out_of_order", counts.out_of_order)
        .int("lost_in_gaps", counts.in_gaps)
        .int("wrong_qos", counts.wrong_qos)
        .int("foreign", counts.foreign)
        .float("pub_per_s", rate(published, pub_span))
        .float("msg_per_s", rate(counts.distinct, span));
    if let Some(p) = Percentiles::of(&latency) {
        summary
            .float("p50_us", p.p50_us)
            .float("p99_us", p.p99_us)
            .float("p999_us", p.p999_us)
            .float("max_us", p.max_us);
    }
    summary.int("errors", errors.len() as u64);
    if let Some(e) = errors.first() {
        summary.text("first_error", e);
    }
    Ok(counts.distinct)
}

/// `connections`: opens `--connections` idle connections, measures the
/// connect rate and the broker's resident memory per connection, holds them
/// for `--duration` with keep-alive pings, and closes them.
async fn connections(
    args: &Args,
    probe: &BrokerProbe,
    rss_before: Option<u64>,
    summary: &mut Summary,
) -> Result<u64, ScenarioError> {
    let n = args.connections;
    let sources = args
        .sources
        .unwrap_or_else(|| sources_needed(n, ephemeral_ports()))
        .max(1);
    let pid = std::process::id();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (up_tx, mut up_rx) = mpsc::channel::<Result<(), String>>(1024);
    let limit = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let connect_deadline = Instant::now() + Duration::from_secs(180);
    let hold = Duration::from_secs_f64(args.duration);
    let end_deadline = connect_deadline + hold + Duration::from_secs(30);
    let ping_every = Duration::from_secs(u64::from(args.keep_alive.max(2)) / 2);
    let began = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..n {
        let limit = limit.clone();
        let up = up_tx.clone();
        let stop = stop_rx.clone();
        let broker = args.broker;
        let keep_alive = args.keep_alive;
        let source = (sources > 1)
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % u32::from(sources)) as u8)));
        set.spawn(async move {
            let permit = limit.acquire_owned().await;
            let id = format!("lg{pid}-idle-{i}");
            let conn = Conn::connect(broker, source, &id, keep_alive, true, connect_deadline).await;
            drop(permit);
            match conn {
                Ok(c) => {
                    let _ = up.send(Ok(())).await;
                    Some(hold_idle(c, ping_every, stop, end_deadline).await)
                }
                Err(e) => {
                    let _ = up.send(Err(e.to_string())).await;
                    None
                }
            }
        });
    }
    drop(up_tx);
    let mut connected = 0u64;
    let mut failed = 0u64;
    let mut first_failure = None;
    let mut last_up = began;
    // Bounded: one message per task, each task bounded by connect_deadline.
    while let Ok(Some(r)) =
        timeout_at(connect_deadline + Duration::from_secs(1), up_rx.recv()).await
    {
        match r {
            Ok(()) => {
                connected += 1;
                last_up = Instant::now();
            }
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert(e);
            }
        }
        if connected + failed == u64::from(n) {
            break;
        }
    }
    let connect_s = last_up.saturating_duration_since(began).as_secs_f64();
    // Let the broker finish its per-connection setup before measuring memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_up = probe.rss();
    tokio::time::sleep(hold).await;
    let rss_held = probe.rss();
    let _ = stop_tx.send(true);
    let mut pings = 0u64;
    let mut pongs = 0u64;
    let mut dropped = 0u64;
    let mut first_drop = None;
    while let Ok(Some(r)) = timeout_at(end_deadline + Duration::from_secs(5), set.join_next()).await
    {
        if let Some(rep) = r? {
            pings += rep.pings;
            pongs += rep.pongs;
            if let Some(e) = rep.error {
                dropped += 1;
                first_drop.get_or_insert(e);
            }
        }
    }
    set.abort_all();

    summary
        .int("connections", u64::from(n))
        .int("sources", u64::from(sources))
        .int("connected", connected)
        .int("failed", failed)
        .float("connect_s", connect_s)
        .float(
            "connect_per_s",
            if connect_s > 0.0 {
                connected as f64 / connect_s
            } else {
                0.0
            },
        )
        .float("hold_s", args.duration)
        .int("pings", pings)
        .int("pongs", pongs)
        .int("dropped", dropped);
    if let (Some(before), Some(up)) = (rss_before, rss_up) {
        summary
            .int("broker_rss_kib_before", before)
            .int("broker_rss_kib_up", up);
        if connected > 0 {
            let per = (up.saturating_sub(before) * 1024) as f64 / connected as f64;
            summary.float("rss_per_conn_bytes", per);
        }
    }
    if let Some(h) = rss_held {
        summary.int("broker_rss_kib_held", h);
    }
    if let Some(e) = &first_drop {
        summary.text("first_drop", e);
    }
    if connected < u64::from(n) {
        return Err(ScenarioError::Connections {
            connected,
            wanted: n,
            first: first_failure.unwrap_or_else(|| "timed out".to_string()),
        });
    }
    Ok(0)
}

#[cfg(test)]
#[path = "../loadgen/tests.rs"]
mod tests;
