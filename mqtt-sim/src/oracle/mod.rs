//! The oracle: a reference model of the broker, updated through the
//! simulator's [`Observer`] hooks in exactly the order the broker handles
//! things, and the checks of everything the broker and the clients did
//! against it. [`Check`] lists them.
//!
//! Messages are told apart by their payload (or, when empty, their 5.0
//! Correlation Data): the workload publishes a number there, unique in the
//! run. A client identifier may belong to several client processes over a
//! run (crashes, takeover races); the runner tells the oracle which
//! process each connection belongs to ([`Oracle::bind`]).

mod checks;
mod deliveries;
mod model;
mod trace;
mod waiting;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use mqtt_router::broker::{Broker, BrokerConfig, ConnId};
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{Packet, QoS, ReasonCode};
use mqtt_session::{Client, ClientEvent, Close, Connection, Initiator, Message};

pub use checks::{Check, Checks, Violation};
pub use deliveries::Tally;

use deliveries::Deliveries;
use model::{ClientIx, Key, Model, ModelConfig, MsgInfo};
use waiting::{is_input_event, Waiting};

use crate::{Durability, Observer, PeerId};

/// The limits the oracle holds the broker to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_queued: usize,
    max_inflight: u16,
    max_connections: usize,
    max_retained: usize,
}

/// Which client process a connection belongs to.
#[derive(Debug, Clone, Copy)]
struct Bound {
    client: ClientIx,
    process: u32,
}

/// The oracle of one broker. See the [module documentation](self).
#[derive(Debug)]
pub struct Oracle {
    model: Model,
    d: Deliveries,
    checks: Checks,
    limits: Limits,
    peers: HashMap<PeerId, Bound>,
    /// The reason a 5.0 PUBACK/PUBREC must carry, by connection and
    /// packet identifier.
    acks: HashMap<(PeerId, u16), ReasonCode>,
    /// The results a SUBACK (false) or 5.0 UNSUBACK (true) must carry.
    subacks: HashMap<(PeerId, u16, bool), Vec<ReasonCode>>,
    /// Drops the broker reported before its last crash, and since.
    dropped_before: u64,
    dropped: u64,
    /// Publishes the broker counted as received, as of the last look.
    received: u64,
    /// 5.0 publishes answered 0x97 Quota exceeded.
    quota_exceeded: u64,
    /// The connection that checks the retained store at the end, and the
    /// retained messages it must get.
    probe: Option<(PeerId, Option<Vec<Key>>)>,
    /// The client process that last connected to each client identifier's
    /// session.
    holders: HashMap<ClientIx, u32>,
    /// Connections that resumed a session another client process left.
    foreign: HashSet<PeerId>,
    /// The session generation each client process last heard a CONNACK on,
    /// per client identifier.
    synced: HashMap<(u32, ClientIx), u64>,
    /// The broker's identifiers of the connections.
    conn_ids: HashMap<PeerId, ConnId>,
    /// Sessions (client, generation) resumed with another session state.
    mismatched: HashSet<(ClientIx, u64)>,
    /// Keys of empty messages without Correlation Data (3.1.1 publishers).
    next_anonymous: Key,
    /// Packets the broker read and keeps waiting (flow control), modelled
    /// when it takes them up (see `waiting.rs`).
    waiting: Waiting,
    /// Print every packet the broker handles and every client event.
    trace: bool,
}

impl Oracle {
    /// An oracle for a broker configured with `config`.
    pub fn new(config: &BrokerConfig) -> Self {
        let limits = &config.server.limits;
        Oracle {
            model: Model::new(ModelConfig {
                max_session_expiry: config.max_session_expiry,
                maximum_qos: config.server.maximum_qos,
            }),
            d: Deliveries::default(),
            checks: Checks::default(),
            limits: Limits {
                max_queued: limits.max_queued,
                max_inflight: limits.max_inflight,
                max_connections: config.max_connections,
                max_retained: config.max_retained,
            },
            peers: HashMap::new(),
            acks: HashMap::new(),
            subacks: HashMap::new(),
            dropped_before: 0,
            dropped: 0,
            received: 0,
            quota_exceeded: 0,
            probe: None,
            holders: HashMap::new(),
            foreign: HashSet::new(),
            mismatched: HashSet::new(),
            conn_ids: HashMap::new(),
            synced: HashMap::new(),
            next_anonymous: u64::MAX / 2,
            waiting: Waiting::default(),
            trace: false,
        }
    }

    /// Prints every packet the broker handles, every close and every client
    /// event on standard error, to follow a failing run.
    pub fn trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// Connection `peer` belongs to client `client_id` as run by client
    /// process `process` (a number unique in the run: a crashed client
    /// comes back as a new process, and two processes may race for one
    /// client identifier).
    pub fn bind(&mut self, peer: PeerId, client_id: &str, process: u32) {
        let client = self.model.intern(client_id);
        self.peers.insert(peer, Bound { client, process });
    }

    /// The broker knows connection `peer` as `id` (it orders connections'
    /// deadlines at one instant by it).
    pub fn conn_id(&mut self, peer: PeerId, id: ConnId) {
        self.conn_ids.insert(peer, id);
    }

    /// Connection `peer` is the probe: its first SUBSCRIBE (`#`, Retain
    /// Handling 0) must bring exactly the retained messages the model holds.
    pub fn probe(&mut self, peer: PeerId) {
        self.probe = Some((peer, None));
    }

    /// The checks so far.
    pub fn checks(&self) -> &Checks {
        &self.checks
    }

    /// The delivery accounting so far.
    pub fn tally(&self) -> Tally {
        self.d.tally
    }

    /// Drops the broker reported, across crashes.
    pub fn dropped(&self) -> u64 {
        self.dropped_before + self.dropped
    }

    /// Ends the run: what is still owed is checked against the drops the
    /// broker reported, and the probe's retained messages against the
    /// model's. Returns every check made.
    pub fn finish(&mut self) -> &Checks {
        let dropped = self.dropped();
        self.d.finish(dropped, &mut self.checks);
        if let Some((peer, Some(expected))) = self.probe.take() {
            let got = self
                .peers
                .get(&peer)
                .map(|b| self.d.retained_received(b.client))
                .unwrap_or_default();
            // Everything the probe got is current; what it did not get
            // did not fit its queue (a burst of retained messages), and the
            // broker counted the drop.
            let stale: Vec<&Key> = got.iter().filter(|k| !expected.contains(k)).collect();
            let missed = expected.iter().filter(|k| !got.contains(k)).count() as u64;
            self.checks.check(Check::Retained, stale.is_empty() && missed <= dropped, || {
                format!("the retained messages are {got:?}, the last retained publishes per topic {expected:?} ({dropped} drops reported)")
            });
        }
        self.checks.check(
            Check::AckReason,
            self.quota_exceeded == 0 || dropped > 0,
            || {
                format!(
                    "{} publishes were refused for full queues, but no drop was reported",
                    self.quota_exceeded
                )
            },
        );
        &self.checks
    }

    fn on_connect(&mut self, now: Instant, peer: PeerId, c: &mqtt_session::mqtt_codec::Connect) {
        let will_key = c.will.as_ref().and_then(|w| key_of(&w.payload, None));
        let present = self.model.connect(now, peer, c, will_key, &mut self.d);
        if let Some(conn) = self.model.conns.get_mut(&peer) {
            conn.conn_id = self.conn_ids.get(&peer).copied();
        }
        let Some(&b) = self.peers.get(&peer) else {
            return;
        };
        let last = self.holders.insert(b.client, b.process);
        let Some(gen) = self.model.sessions.get(&b.client).map(|s| s.gen) else {
            return;
        };
        // The client's state is the session's only if this process last
        // heard a CONNACK on this very session; once two session states
        // differ they stay apart, whoever resumes.
        let synced = self.synced.get(&(b.process, b.client)) == Some(&gen);
        let mismatched =
            last != Some(b.process) || !synced || self.mismatched.contains(&(b.client, gen));
        if present && mismatched {
            self.foreign.insert(peer);
            if self.mismatched.insert((b.client, gen)) {
                self.d.mismatched(b.client, gen);
            }
        }
    }

    /// Whether a close that names a rule broken by `peer` is excused: its
    /// client process resumed a session another process left, so the two
    /// ends' session states differ (packets in flight that one side knows
    /// and the other does not) and the client may well exceed the broker's
    /// Receive Maximum [MQTT-3.3.4-7] without knowing it.
    fn excused(&self, peer: PeerId, close: &Close) -> bool {
        self.foreign.contains(&peer) && close.reason == ReasonCode::RECEIVE_MAXIMUM_EXCEEDED
    }

    /// A PUBLISH read at `read_at` and handled at `now`.
    fn on_publish(
        &mut self,
        (now, read_at): (Instant, Instant),
        peer: PeerId,
        p: &mqtt_session::mqtt_codec::Publish,
        fresh: bool,
    ) {
        let Some(topic) = self.model.topic_of(peer, p) else {
            return;
        };
        let Some(conn) = self.model.conns.get(&peer) else {
            return;
        };
        let v5 = conn.v5;
        let msg = MsgInfo {
            topic,
            qos: p.qos.qos(),
            retain: p.retain,
            publisher: Some(conn.client),
            // The broker starts the clock when it reads the message: a wait
            // in its input counts as time in the server [MQTT-3.3.2-6].
            expires_at: p
                .props
                .message_expiry_interval
                .map(|s| read_at.plus_secs(u64::from(s))),
            empty: p.payload.is_empty(),
        };
        let key = key_of(&p.payload, p.props.correlation_data.as_ref()).unwrap_or_else(|| {
            self.next_anonymous += 1;
            self.next_anonymous
        });
        if let (true, mqtt_session::mqtt_codec::QosPid::ExactlyOnce(id)) = (fresh, p.qos) {
            self.model.pubrel(peer, id.get());
        }
        let reached = self.model.publish(now, peer, p, key, &msg, &mut self.d);
        if let (Some(reached), Some(id), true) = (reached, p.qos.packet_id(), v5) {
            let reason = if reached > 0 {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_MATCHING_SUBSCRIBERS
            };
            self.acks.insert((peer, id.get()), reason);
        }
    }

    fn on_subscribe(
        &mut self,
        now: Instant,
        peer: PeerId,
        s: &mqtt_session::mqtt_codec::Subscribe,
    ) {
        if let Some((probe, expected @ None)) = &mut self.probe {
            if *probe == peer {
                let retained = self.model.retained.values();
                let live = retained.filter(|r| r.2.is_none_or(|at| now < at));
                let mut keys: Vec<Key> = live.map(|r| r.0).collect();
                keys.sort_unstable();
                *expected = Some(keys);
            }
        }
        let results = self.model.subscribe(now, peer, s, &mut self.d);
        self.subacks.insert((peer, s.id.get(), false), results);
    }

    fn on_unsubscribe(&mut self, peer: PeerId, u: &mqtt_session::mqtt_codec::Unsubscribe) {
        let results = self.model.unsubscribe(peer, u);
        let v5 = self.model.conns.get(&peer).is_some_and(|c| c.v5);
        let results = if v5 { results } else { Vec::new() };
        self.subacks.insert((peer, u.id.get(), true), results);
    }

    fn on_broker_closed(&mut self, now: Instant, peer: PeerId, close: &Close) {
        let Some(c) = self.model.conns.get(&peer) else {
            return;
        };
        if c.taken_over {
            let ok = close.reason == ReasonCode::SESSION_TAKEN_OVER;
            return self.checks.check(Check::BrokerClose, ok, || {
                format!("a connection taken over was closed with {close:?}")
            });
        }
        if c.keep_alive_ended {
            let ok = close.reason == ReasonCode::KEEP_ALIVE_TIMEOUT;
            return self.checks.check(Check::BrokerClose, ok, || {
                format!("a keep alive ran out, but the broker closed the connection with {close:?}")
            });
        }
        if c.ended {
            return;
        }
        let (last_rx, keep_alive) = (c.last_rx, c.keep_alive);
        match close.initiator {
            Initiator::Local if close.reason == ReasonCode::KEEP_ALIVE_TIMEOUT => {
                // [MQTT-3.1.2-24]: one and a half keep alive periods of silence.
                let due = Instant::from_millis(last_rx.as_millis() + u64::from(keep_alive) * 1500);
                self.checks.check(Check::BrokerClose, keep_alive > 0 && now >= due, || {
                    format!("keep alive timeout at {} ms, but the client was last heard at {} ms with keep alive {keep_alive} s", now.as_millis(), last_rx.as_millis())
                });
            }
            Initiator::Local => self.checks.fail(
                Check::BrokerClose,
                format!("the broker closed a well-behaved client: {close:?}"),
            ),
            Initiator::Peer | Initiator::Transport => {
                let ok = close.violation.is_none() || self.excused(peer, close);
                self.checks.check(Check::BrokerClose, ok, || {
                    format!("the broker says a well-behaved client broke a rule: {close:?}")
                });
            }
        }
        self.model.end_conn(now, peer, &mut self.d);
    }

    fn on_client_event(&mut self, peer: PeerId, b: Bound, ev: &ClientEvent) {
        match ev {
            ClientEvent::Connected {
                session_present, ..
            } => {
                let Some(c) = self.model.conns.get(&peer) else {
                    return;
                };
                let (got, due) = (*session_present, c.present);
                if let Some(s) = self.model.sessions.get(&c.client) {
                    self.synced.insert((b.process, c.client), s.gen);
                }
                self.checks.check(Check::SessionPresent, got == due, || {
                    format!(
                        "client #{} connected with Session Present {got}, the model says {due}",
                        b.client
                    )
                });
            }
            ClientEvent::Message {
                msg,
                subscription_identifiers,
                ..
            } => {
                let ids = subscription_identifiers.iter().map(|i| i.get()).collect();
                let key = key_of(&msg.payload, msg.props.correlation_data.as_ref());
                // A 3.1.1 connection carries no identifiers (nor properties),
                // whatever the session's subscriptions say.
                let v5 = self.model.conns.get(&peer).is_none_or(|c| c.v5);
                self.d
                    .receive((b.client, b.process), key, msg, ids, v5, &mut self.checks);
            }
            ClientEvent::Published { id, reason, .. } => {
                let Some(due) = self.acks.remove(&(peer, id.get())) else {
                    return;
                };
                if *reason == ReasonCode::QUOTA_EXCEEDED {
                    self.quota_exceeded += 1;
                    return;
                }
                self.checks.check(Check::AckReason, *reason == due, || {
                    format!(
                        "client #{} publish {} answered {reason:?}, due {due:?}",
                        b.client,
                        id.get()
                    )
                });
            }
            ClientEvent::Subscribed { id, results, .. } => {
                self.check_results(peer, id.get(), false, results);
            }
            ClientEvent::Unsubscribed { id, results, .. } => {
                self.check_results(peer, id.get(), true, results);
            }
            ClientEvent::Closed(close) => {
                let excused = self.excused(peer, close);
                self.on_client_closed(b, close, excused);
            }
            ClientEvent::Expired { .. } | ClientEvent::Auth { .. } => {}
        }
    }

    fn check_results(&mut self, peer: PeerId, id: u16, unsubscribe: bool, got: &[ReasonCode]) {
        let Some(due) = self.subacks.remove(&(peer, id, unsubscribe)) else {
            return;
        };
        self.checks.check(Check::SubscribeResults, got == due, || {
            format!("results {got:?}, due {due:?}")
        });
    }

    fn on_client_closed(&mut self, b: Bound, close: &Close, excused: bool) {
        let allowed = excused
            || match close.initiator {
                Initiator::Peer => {
                    close.violation.is_none()
                        && [
                            ReasonCode::SESSION_TAKEN_OVER,
                            ReasonCode::KEEP_ALIVE_TIMEOUT,
                        ]
                        .contains(&close.reason)
                }
                Initiator::Local | Initiator::Transport => close.violation.is_none(),
            };
        self.checks.check(Check::ClientView, allowed, || {
            format!(
                "client #{} saw the broker end its connection: {close:?}",
                b.client
            )
        });
    }

    /// At a rest point: the broker's sessions, wills and bounds against the
    /// model's.
    fn at_rest_checks(&mut self, core: &Broker) {
        let wills = core.stats().wills_published;
        let due = self.model.wills_published;
        self.checks.check(Check::Wills, wills == due, || {
            format!("the broker published {wills} wills, the model {due}")
        });
        let mut seen = 0;
        for s in core.sessions() {
            seen += 1;
            let client = self.model.client_ids.get(s.client_id).copied();
            let m = client.and_then(|c| self.model.sessions.get(&c));
            let ok = m.is_some_and(|m| {
                m.conn.is_some() == s.connected
                    && m.expires_at == s.expires_at
                    && m.will_at() == s.will_at
            });
            self.checks.check(Check::Sessions, ok, || {
                let m = m.map(|m| (m.conn.is_some(), m.expires_at, m.will_at()));
                format!("the broker holds {s:?}, the model (connected, expires, will) {m:?}")
            });
            self.checks.check(
                Check::Bounds,
                s.queued <= self.limits.max_queued
                    && s.inflight <= usize::from(self.limits.max_inflight),
                || {
                    format!(
                        "session {s:?} is over max_queued {} or max_inflight {}",
                        self.limits.max_queued, self.limits.max_inflight
                    )
                },
            );
        }
        let due = self.model.sessions.len();
        self.checks.check(Check::Sessions, seen == due, || {
            let ours: Vec<_> = self.model.sessions.keys().collect();
            format!("the broker holds {seen} sessions, the model {due} ({ours:?})")
        });
        let (conns, retained) = (core.connection_count(), core.retained_count());
        self.checks.check(
            Check::Bounds,
            conns <= self.limits.max_connections && retained <= self.limits.max_retained,
            || format!("{conns} connections, {retained} retained messages: over the limits"),
        );
    }
}

/// The key a message carries: its payload, or its Correlation Data when
/// the payload is empty, as a decimal number.
fn key_of(payload: &Bytes, correlation: Option<&Bytes>) -> Option<Key> {
    let text = if payload.is_empty() {
        correlation?
    } else {
        payload
    };
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The payload that carries `key`.
pub fn payload_of(key: u64) -> Bytes {
    Bytes::from(key.to_string())
}

impl Observer for Oracle {
    fn wants_packets(&self) -> bool {
        true
    }

    fn to_broker(&mut self, now: Instant, _: usize, peer: PeerId, packet: &Packet, core: &Broker) {
        self.checks.now = now;
        if self.trace {
            eprintln!(
                "{:>9} peer {peer:>3} -> broker {}",
                now.as_millis(),
                trace::packet(packet)
            );
        }
        self.model.heard(now, peer);
        if !is_input_event(packet) {
            if let Packet::PubRel(a) = packet {
                self.model.pubrel(peer, a.id.get());
            }
            return self.catch_up(now, core);
        }
        // Its event may wait in the broker, behind others of the connection.
        let left = self.input_waiting(peer, core);
        if left > self.waiting.len(peer) {
            self.waiting.push(peer, now, packet.clone());
            self.note_wait(peer, core);
        } else {
            self.take_up(now, peer, left);
            // Did the broker take it as a new message? A QoS 2 resend
            // is new to it when it refused the first send (0x97, the
            // identifier freed [MQTT-4.3.3-9]) before the publisher
            // heard the refusal.
            let fresh = core.stats().messages_received > self.received;
            self.handle(now, now, peer, packet, fresh);
        }
        self.catch_up(now, core);
    }

    fn broker_timeout(&mut self, now: Instant, _: usize, core: Option<&Broker>) {
        self.checks.now = now;
        if self.trace {
            eprintln!("{:>9} broker timeout", now.as_millis());
        }
        let mut due = self.model.due(now, |_| 0);
        let sessions = due.iter().filter(|d| matches!(d, model::Due::Session(..)));
        if let (Some(core), true) = (core, sessions.count() > 1) {
            // Sessions' deadlines at one instant (two wills due together)
            // have no order in the specification, but the broker's is
            // fixed: its timer heap takes them by the session's place in
            // its table. The model takes them the same way, so that the last
            // of two retained wills on one topic is the same in both.
            let places: HashMap<ClientIx, usize> = core
                .sessions()
                .enumerate()
                .filter_map(|(i, s)| Some((*self.model.client_ids.get(s.client_id)?, i)))
                .collect();
            due = self
                .model
                .due(now, |c| places.get(&c).copied().unwrap_or(usize::MAX));
        }
        for what in due {
            if let model::Due::KeepAlive(_, peer) = what {
                // The keep alive ends the connection: what waited in its
                // input goes through first, in order, as for any end.
                self.flush(now, peer);
            }
            self.model.act(now, what, &mut self.d);
        }
    }

    fn broker_closed(&mut self, now: Instant, _: usize, peer: PeerId, close: &Close) {
        self.checks.now = now;
        if self.trace {
            eprintln!(
                "{:>9} peer {peer:>3} closed by the broker: {:?} {:?} {:?}",
                now.as_millis(),
                close.initiator,
                close.reason,
                close.violation
            );
        }
        self.flush(now, peer);
        self.on_broker_closed(now, peer, close);
    }

    fn after_broker(&mut self, now: Instant, _: usize, core: &Broker) {
        self.catch_up(now, core);
        self.dropped = core.stats().messages_dropped;
        self.received = core.stats().messages_received;
    }

    fn at_rest(&mut self, now: Instant, _: usize, core: &Broker) {
        self.checks.now = now;
        self.catch_up(now, core);
        if self.trace {
            let s = core.stats();
            eprintln!(
                "{:>9} rest: wills {} (model {}), retained {} (model {})",
                now.as_millis(),
                s.wills_published,
                self.model.wills_published,
                core.retained_count(),
                self.model.retained.len()
            );
        }
        self.at_rest_checks(core);
    }

    fn broker_crashed(&mut self, now: Instant, _: usize) {
        self.checks.now = now;
        if self.trace {
            eprintln!("{:>9} BROKER CRASH", now.as_millis());
        }
        self.dropped_before += self.dropped;
        self.dropped = 0;
        self.received = 0;
        self.model.crash(&mut self.d);
        self.forget_waiting();
        self.acks.clear();
        self.subacks.clear();
    }

    fn broker_restarted(&mut self, _: Instant, _: usize, durability: Durability) {
        assert_eq!(
            durability,
            Durability::NOTHING,
            "the oracle does not model a durable store yet"
        );
    }

    fn client_event(&mut self, now: Instant, peer: PeerId, event: &ClientEvent) {
        self.checks.now = now;
        if self.trace {
            eprintln!(
                "{:>9} peer {peer:>3} <- {}",
                now.as_millis(),
                trace::event(event)
            );
        }
        if let Some(&b) = self.peers.get(&peer) {
            self.on_client_event(peer, b, event);
        }
    }

    fn after_client(&mut self, _: Instant, peer: PeerId, client: &Connection<Client>) {
        let (Some(caps), Some(s)) = (client.server_caps(), client.session()) else {
            return;
        };
        if !client.is_connected() {
            return;
        }
        let (inflight, max) = (s.inflight(), usize::from(caps.receive_maximum));
        self.checks.check(Check::ClientView, inflight <= max, || {
            format!("peer {peer} has {inflight} publishes in flight, the broker's Receive Maximum is {max}")
        });
    }
}

/// A message for the workload: `key` as payload (and, when `empty`, as
/// 5.0 Correlation Data of an empty payload).
pub fn keyed_message(
    topic: &str,
    key: u64,
    qos: QoS,
    retain: bool,
    empty: bool,
    v5: bool,
) -> Message {
    let payload = if empty { Bytes::new() } else { payload_of(key) };
    let mut m = Message::new(crate::build::topic(topic), payload, qos, retain);
    if empty && v5 {
        m.props.correlation_data = Some(payload_of(key));
    }
    m
}
