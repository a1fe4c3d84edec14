//! Running scenarios: one seed end to end under the oracle, replaying a
//! seed (`MQTT_SIM_SEED`), and shrinking a failing scenario.
//!
//! A run builds the broker the scenario describes, plays every operation
//! (operations without a wait between them happen at the same instant, in
//! an order the scheduler draws), then settles: the broker comes back if it
//! is down, hung clients wake, every client identifier reconnects to its
//! session if it has none, time passes until everything in flight is done,
//! and a probe subscribes to `#` to read the retained store. Then the
//! oracle accounts for every delivery due.

use core::time::Duration;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mqtt_router::broker::{BrokerConfig, QueueFullPolicy};
use mqtt_session::mqtt_codec::{
    ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionOptions, Will, WillProps,
};
use mqtt_session::{ClientConfig, Session};
use proptest::strategy::ValueTree;

use crate::build::{filter, s, secs, sub_id, topic};
use crate::oracle::{keyed_message, payload_of, Check, Checks, Oracle, Tally};
use crate::workload::{tree_for, ClientSetup, Op, Scenario, WillSpec};
use crate::{AdapterPath, LinkConfig, PeerId, Scheduling, Sim, Volatile};

/// Operations in the scenarios `cargo test` draws.
pub const TEST_OPS: usize = 120;

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every check made, and the violations.
    pub checks: Checks,
    /// The delivery accounting.
    pub tally: Tally,
    /// Whole packets on the wire, both directions.
    pub packets: u64,
    /// Simulator steps.
    pub steps: u64,
    /// Connections opened.
    pub connections: u64,
    /// Messages the broker reported dropped.
    pub dropped: u64,
    /// Virtual milliseconds the run covered.
    pub sim_ms: u64,
}

/// A run that failed: a violation, or a panic in the engine or the
/// simulator.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The scenario.
    pub scenario: Scenario,
    /// What went wrong.
    pub message: String,
    /// The kind of the first violation (`None`: a panic).
    pub check: Option<Check>,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The broker configuration a scenario describes.
pub fn broker_config(s: &Scenario) -> BrokerConfig {
    let b = &s.broker;
    let mut config = BrokerConfig {
        seed: s.seed,
        sys_interval: None,
        max_session_expiry: b.max_session_expiry,
        queue_full: if b.drop_new {
            QueueFullPolicy::DropNew
        } else {
            QueueFullPolicy::DropOldest
        },
        pause_publishers: b.pause_publishers,
        ..BrokerConfig::default()
    };
    // The oracle takes a client whose link stalls for a long time in the
    // middle of a packet for well-behaved; the bound on half-sent packets
    // is tested in mqtt-session and the broker.
    config.server.partial_packet_timeout = core::time::Duration::from_secs(24 * 3600);
    let l = &mut config.server.limits;
    l.max_queued = b.max_queued;
    l.max_queued_qos0 = b.max_queued;
    l.max_inflight = b.max_inflight;
    l.receive_maximum = b.receive_maximum;
    l.topic_alias_maximum = b.topic_alias_maximum;
    l.outbound_topic_alias_maximum = if b.outbound_topic_aliases { 16 } else { 0 };
    config
}

/// One client of a run: its connections over time.
struct Node {
    setup: ClientSetup,
    client_id: String,
    peer: Option<PeerId>,
    /// The last connection's configuration.
    last: Option<ClientConfig>,
    /// The client process it is now, unique in the run: clients that share
    /// a client identifier are different processes with different memories,
    /// and each crash starts a new one.
    process: u32,
    /// When it last connected (to pick who reconnects at the end).
    connected_at: u64,
}

impl Node {
    /// The configuration of its next connection.
    fn config(&self, clean_start: bool, expiry: u32, will: Option<Will>) -> ClientConfig {
        let setup = &self.setup;
        let v = if setup.v5 {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V311
        };
        let mut config = ClientConfig::new(v, s(&self.client_id));
        config.clean_start = clean_start;
        config.keep_alive = setup.keep_alive;
        config.session_expiry_interval = if setup.v5 { expiry } else { 0 };
        config.will = will;
        config.limits.receive_maximum = setup.receive_maximum;
        config.limits.max_inflight = setup.receive_maximum;
        config.limits.outbound_topic_alias_maximum = if setup.v5 && setup.topic_aliases {
            16
        } else {
            0
        };
        config
    }
}

/// A run in progress.
struct World {
    sim: Sim<Oracle>,
    nodes: Vec<Node>,
    next_key: u64,
    connects: u64,
    /// The next client process number (after a crash).
    next_process: u32,
    /// The watcher's connection.
    watcher: Option<PeerId>,
}

impl World {
    fn new(s: &Scenario) -> World {
        let config = broker_config(s);
        let mut oracle = Oracle::new(&config);
        oracle.trace(tracing());
        let mut sim = Sim::with_observer(config, oracle)
            .seed(s.seed)
            .scheduling(Scheduling::Random)
            .record(false);
        sim.set_restart(0, Box::new(Volatile));
        let path = if s.broker.packet_path {
            AdapterPath::Packets
        } else {
            AdapterPath::Bytes
        };
        sim.set_path(0, path);
        let nodes = s
            .clients
            .iter()
            .enumerate()
            .map(|(n, c)| Node {
                setup: c.clone(),
                client_id: format!("c{}", c.id),
                peer: None,
                last: None,
                process: n as u32,
                connected_at: 0,
            })
            .collect();
        World {
            sim,
            nodes,
            next_key: 1,
            connects: 0,
            next_process: s.clients.len() as u32,
            watcher: None,
        }
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// The node's connection, if it has one that has not ended.
    fn live(&self, n: usize) -> Option<PeerId> {
        let p = self.nodes[n].peer?;
        let c = self.sim.peers[p].conn.as_ref()?;
        (!c.is_closed()).then_some(p)
    }

    /// The node's connection, if it is connected (CONNACK received).
    fn connected(&self, n: usize) -> Option<PeerId> {
        let p = self.live(n)?;
        self.sim.peers[p]
            .conn
            .as_ref()
            .is_some_and(|c| c.is_connected())
            .then_some(p)
    }

    fn node(&self, client: u8) -> usize {
        usize::from(client) % self.nodes.len()
    }

    /// Opens a connection for node `n`, resuming its session state unless
    /// `clean_start`.
    fn connect(
        &mut self,
        n: usize,
        clean_start: bool,
        expiry: u32,
        will: Option<&WillSpec>,
        link: LinkConfig,
    ) {
        if self.live(n).is_some() {
            return;
        }
        let will = will.map(|w| self.will(w, self.nodes[n].setup.v5));
        let config = self.nodes[n].config(clean_start, expiry, will);
        let session: Option<Session> = match (clean_start, self.nodes[n].peer) {
            (false, Some(p)) => self.sim.peers[p]
                .conn
                .as_mut()
                .and_then(|c| c.take_session()),
            _ => None,
        };
        if session.is_none() && self.nodes[n].peer.is_some() {
            // The client starts without the session state it had (a clean
            // start, which the broker may never see if the connection
            // fails): what it received before is forgotten, as after a
            // crash, so it counts as a new process for exactly once.
            self.nodes[n].process = self.next_process;
            self.next_process += 1;
        }
        let v = config.version;
        let conn = mqtt_session::Connection::<mqtt_session::Client>::new(
            config.clone(),
            self.sim.now,
            session,
        );
        let peer = self.sim.open(0, Some(conn), v, link);
        if tracing() {
            let node = &self.nodes[n];
            eprintln!(
                "{:>9} peer {peer:>3} is {} (process {})",
                self.sim.now.as_millis(),
                node.client_id,
                node.process
            );
        }
        self.connects += 1;
        let node = &mut self.nodes[n];
        node.peer = Some(peer);
        node.last = Some(config);
        node.connected_at = self.connects;
        let (id, process) = (node.client_id.clone(), node.process);
        self.sim.observer_mut().bind(peer, &id, process);
        if let Some(conn) = self.sim.peers[peer].id {
            self.sim.observer_mut().conn_id(peer, conn);
        }
    }

    fn will(&mut self, w: &WillSpec, v5: bool) -> Will {
        let mut props = WillProps::default();
        if v5 && w.delay > 0 {
            props.will_delay_interval = Some(w.delay);
        }
        Will {
            topic: topic(w.topic),
            payload: payload_of(self.key()),
            qos: qos(w.qos),
            retain: w.retain,
            props,
        }
    }

    fn apply(&mut self, op: &Op) {
        let now = self.sim.now;
        if tracing() {
            eprintln!("{:>9} op {op:?}", now.as_millis());
        }
        match op {
            Op::Connect {
                client,
                clean_start,
                expiry,
                will,
            } => {
                let n = self.node(*client);
                let link = self.nodes[n].setup.link.config();
                self.connect(n, *clean_start, *expiry, will.as_ref(), link);
            }
            Op::Disconnect { client, with_will } => {
                let n = self.node(*client);
                let Some(p) = self.live(n) else { return };
                let reason = if *with_will && self.nodes[n].setup.v5 {
                    ReasonCode::DISCONNECT_WITH_WILL_MESSAGE
                } else {
                    ReasonCode::NORMAL_DISCONNECTION
                };
                self.sim.client(p).disconnect(now, reason);
                self.sim.flush_client(p);
            }
            Op::Subscribe { .. } | Op::Unsubscribe { .. } | Op::Publish { .. } => self.request(op),
            Op::Wait { ms } => self.sim.advance(Duration::from_millis(*ms)),
            Op::Jump { secs: n } => self.sim.jump(secs(*n)),
            Op::Cut { client } => {
                if let Some(p) = self.live(self.node(*client)) {
                    self.sim.cut(p);
                }
            }
            Op::Stall { client, ms } => {
                if let Some(p) = self.live(self.node(*client)) {
                    self.sim.stall(p, Duration::from_millis(*ms));
                }
            }
            Op::Freeze { client, ms } => {
                if let Some(p) = self.live(self.node(*client)) {
                    self.sim.freeze_for(p, Duration::from_millis(*ms));
                }
            }
            Op::CrashClient { client } => {
                let n = self.node(*client);
                if let Some(p) = self.nodes[n].peer.take() {
                    self.sim.crash_client(p);
                    self.nodes[n].process = self.next_process;
                    self.next_process += 1;
                }
            }
            Op::CrashBroker { downtime_ms } => {
                self.sim
                    .crash_broker(0, Some(Duration::from_millis(*downtime_ms)));
            }
            Op::Refuse { ms } => self.sim.refuse(0, Duration::from_millis(*ms)),
        }
    }

    /// A request on a connected client: SUBSCRIBE, UNSUBSCRIBE or PUBLISH
    /// (refused by the client's own checks, e.g. a full queue: nothing
    /// happens).
    fn request(&mut self, op: &Op) {
        let now = self.sim.now;
        let (Op::Subscribe { client, .. }
        | Op::Unsubscribe { client, .. }
        | Op::Publish { client, .. }) = op
        else {
            return;
        };
        let n = self.node(*client);
        let Some(p) = self.connected(n) else { return };
        let v5 = self.nodes[n].setup.v5;
        let key = self.key();
        let c = self.sim.client(p);
        let _ = match op {
            Op::Subscribe {
                filter: f,
                qos: q,
                no_local,
                rap,
                rh,
                sub_id: id,
                ..
            } => {
                let mut o = SubscriptionOptions::new(qos(*q));
                if v5 {
                    o.no_local = *no_local;
                    o.retain_as_published = *rap;
                    o.retain_handling = match rh {
                        0 => RetainHandling::SendAtSubscribe,
                        1 => RetainHandling::SendAtSubscribeIfNew,
                        _ => RetainHandling::DoNotSend,
                    };
                }
                let id = id.filter(|_| v5).map(sub_id);
                c.subscribe(now, vec![(filter(f), o)], id).map(|_| ())
            }
            Op::Unsubscribe { filter: f, .. } => c.unsubscribe(now, vec![filter(f)]).map(|_| ()),
            Op::Publish {
                topic: t,
                qos: q,
                retain,
                expiry,
                empty,
                ..
            } => {
                let mut m = keyed_message(t, key, qos(*q), *retain, *empty, v5);
                if let (Some(e), true) = (expiry, v5) {
                    m.props.expires_at = Some(now.plus_secs(u64::from(*e)));
                }
                c.publish(now, m).map(|_| ())
            }
            _ => Ok(()),
        };
        self.sim.flush_client(p);
    }

    /// The end of a run: faults healed, sessions resumed, everything in
    /// flight completed, the retained store read by a probe.
    fn settle(&mut self) {
        if !self.sim.broker_is_up(0) {
            self.sim.restart_broker(0);
        }
        self.sim.refuse(0, Duration::ZERO);
        for i in self.sim.active_peers() {
            self.sim.thaw(i);
        }
        self.sim.advance(secs(5));
        let watcher_down = self.watcher.is_some_and(|p| {
            self.sim.peers[p]
                .conn
                .as_ref()
                .is_none_or(|c| c.is_closed())
        });
        if watcher_down {
            self.watch(false);
        }
        // Each client identifier's latest process reconnects to its
        // session, unless one of its processes is connected.
        let mut ids: Vec<&str> = self.nodes.iter().map(|n| n.client_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
        for id in ids {
            let of_id: Vec<usize> = (0..self.nodes.len())
                .filter(|&n| self.nodes[n].client_id == id)
                .collect();
            if of_id.iter().any(|&n| self.live(n).is_some()) {
                continue;
            }
            let Some(&n) = of_id.iter().max_by_key(|&&n| self.nodes[n].connected_at) else {
                continue;
            };
            let Some(last) = &self.nodes[n].last else {
                continue;
            };
            let expiry = last.session_expiry_interval;
            self.connect(n, false, expiry, None, LinkConfig::instant());
        }
        self.sim.advance(secs(60));
        let probe = self
            .sim
            .open_client(0, crate::build::cfg(ProtocolVersion::V5, "probe"), None);
        self.sim.observer_mut().bind(probe, "probe", 0);
        if let Some(conn) = self.sim.peers[probe].id {
            self.sim.observer_mut().conn_id(probe, conn);
        }
        self.sim.observer_mut().probe(probe);
        self.sim.advance(Duration::from_millis(10));
        let o = crate::build::opts(
            QoS::ExactlyOnce,
            false,
            false,
            RetainHandling::SendAtSubscribe,
        );
        let now = self.sim.now;
        let _ = self
            .sim
            .client(probe)
            .subscribe(now, vec![(filter("#"), o)], None);
        self.sim.advance(secs(10));
    }

    /// The watcher: a persistent 5.0 client on an instant link subscribed
    /// to everything at QoS 2 (once: its session keeps the subscription).
    fn watch(&mut self, subscribe: bool) {
        let mut config = crate::build::persistent(ProtocolVersion::V5, "watcher", u32::MAX);
        config.clean_start = subscribe;
        config.limits.receive_maximum = 1000;
        let session = self
            .watcher
            .and_then(|p| self.sim.peers[p].conn.as_mut()?.take_session());
        let p = self.sim.open_client(0, config, session);
        self.watcher = Some(p);
        self.sim.observer_mut().bind(p, "watcher", 0);
        if let Some(conn) = self.sim.peers[p].id {
            self.sim.observer_mut().conn_id(p, conn);
        }
        self.sim.run_until_idle();
        if subscribe {
            let now = self.sim.now;
            let o = SubscriptionOptions::new(QoS::ExactlyOnce);
            let _ = self
                .sim
                .client(p)
                .subscribe(now, vec![(filter("#"), o)], None);
            self.sim.run_until_idle();
        }
    }
}

/// Whether `MQTT_SIM_TRACE` asks for a trace of each run.
fn tracing() -> bool {
    std::env::var_os("MQTT_SIM_TRACE").is_some()
}

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// Runs scenario `s` and checks it; panics inside are failures too.
pub fn run(s: &Scenario) -> Result<Outcome, Failure> {
    let result = catch_unwind(AssertUnwindSafe(|| execute(s)));
    let fail = |message, check| Failure {
        scenario: s.clone(),
        message,
        check,
    };
    match result {
        Ok(outcome) if outcome.checks.failed == 0 => Ok(outcome),
        Ok(outcome) => {
            let v = &outcome.checks.violations;
            let list: Vec<String> = v.iter().map(|v| v.to_string()).collect();
            let message = format!(
                "{} violations:\n  {}",
                outcome.checks.failed,
                list.join("\n  ")
            );
            Err(fail(message, v.first().map(|v| v.check)))
        }
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            Err(fail(format!("panicked: {text}"), None))
        }
    }
}

fn execute(s: &Scenario) -> Outcome {
    let mut w = World::new(s);
    if s.watcher {
        w.watch(true);
    }
    for n in 0..w.nodes.len() {
        let (expiry, link) = (w.nodes[n].setup.expiry, w.nodes[n].setup.link.config());
        w.connect(n, true, expiry, None, link);
    }
    w.sim.advance(Duration::from_millis(200));
    for op in &s.ops {
        w.apply(op);
    }
    w.settle();
    let stats = w.sim.stats();
    let packets = w.sim.packets();
    let sim_ms = w.sim.now.as_millis();
    let oracle = w.sim.observer_mut();
    oracle.finish();
    Outcome {
        checks: oracle.checks().clone(),
        tally: oracle.tally(),
        packets,
        steps: stats.steps,
        connections: stats.connections,
        dropped: oracle.dropped(),
        sim_ms,
    }
}

/// Runs the scenario of `seed` (`ops` operations at most).
pub fn run_seed(seed: u64, ops: usize) -> Result<Outcome, Failure> {
    run(&crate::workload::scenario_for(seed, ops))
}

/// The seed `MQTT_SIM_SEED` names, if it is set.
pub fn seed_from_env() -> Option<u64> {
    std::env::var("MQTT_SIM_SEED").ok()?.trim().parse().ok()
}

/// The operation count `MQTT_SIM_OPS` names, if it is set (a seed's
/// scenario depends on it: the `sim` binary's failures name theirs).
pub fn ops_from_env() -> Option<usize> {
    std::env::var("MQTT_SIM_OPS").ok()?.trim().parse().ok()
}

/// The command that replays the scenario of `seed` with `ops` operations.
pub fn replay_command(seed: u64, ops: usize) -> String {
    format!("MQTT_SIM_SEED={seed} MQTT_SIM_OPS={ops} cargo test -p mqtt-sim --test random")
}

/// Shrinks the failing scenario of `seed` for at most `budget`: proptest's
/// value tree first (fewer operations and clients, simpler values), then
/// each remaining operation dropped in turn while the run still fails.
pub fn shrink(seed: u64, ops: usize, budget: Duration) -> Scenario {
    let start = std::time::Instant::now();
    let mut tree = tree_for(seed, ops);
    let mut best = tree.current();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // The same failure, not just any: the kind of its first violation.
    let kind = run(&best).err().map(|f| f.check);
    let fails = |s: &Scenario| run(s).err().map(|f| f.check) == kind && kind.is_some();
    if tree.simplify() {
        while start.elapsed() < budget / 2 {
            let candidate = tree.current();
            let more = if fails(&candidate) {
                best = candidate;
                tree.simplify()
            } else {
                tree.complicate()
            };
            if !more {
                break;
            }
        }
    }
    let mut i = best.ops.len();
    while i > 0 && start.elapsed() < budget {
        i -= 1;
        let mut candidate = best.clone();
        candidate.ops.remove(i);
        if fails(&candidate) {
            best = candidate;
        }
    }
    std::panic::set_hook(quiet);
    best
}

/// Runs seeds `seeds`; on the first failure, shrinks it and panics with
/// the seed, the command that replays it and the shrunk scenario as Rust.
/// `MQTT_SIM_SEED` replaces the range by that one seed, `MQTT_SIM_OPS` the
/// operation count.
pub fn check_seeds(seeds: core::ops::Range<u64>, ops: usize) -> Outcome {
    let seeds = match seed_from_env() {
        Some(seed) => seed..seed + 1,
        None => seeds,
    };
    let ops = ops_from_env().unwrap_or(ops);
    let mut total = Outcome::default();
    for seed in seeds {
        match run_seed(seed, ops) {
            Ok(o) => total.add(&o),
            Err(f) => {
                let small = shrink(seed, ops, Duration::from_secs(60));
                panic!(
                    "seed {seed} failed: {f}\nreplay: {}\nshrunk scenario (keep it as a regression test with mqtt_sim::run::check):\n{}",
                    replay_command(seed, ops),
                    small.to_rust()
                );
            }
        }
    }
    total
}

/// Runs scenario `s` and panics with its violations if it fails: the body
/// of a regression test.
pub fn check(s: &Scenario) -> Outcome {
    match run(s) {
        Ok(o) => o,
        Err(f) => panic!("{f}"),
    }
}

impl Outcome {
    /// Adds another run's counts to these.
    pub fn add(&mut self, o: &Outcome) {
        self.checks.merge(&o.checks);
        let (a, b) = (&mut self.tally, &o.tally);
        a.routed += b.routed;
        a.due += b.due;
        a.received += b.received;
        a.lost_with_session += b.lost_with_session;
        a.mismatched += b.mismatched;
        a.expirable += b.expirable;
        a.missing += b.missing;
        self.packets += o.packets;
        self.steps += o.steps;
        self.connections += o.connections;
        self.dropped += o.dropped;
        self.sim_ms += o.sim_ms;
    }
}
