//! The reference broker: what MQTT says a broker holds and does, kept as
//! plainly as possible (maps scanned linearly, the codec's reference topic
//! matcher), updated in exactly the order the real broker handles things.
//!
//! It answers "what should have happened": who a message is due to, with
//! which QoS, RETAIN flag and subscription identifiers; what CONNACK's
//! Session Present says; when a will goes out and when a session ends.

use std::collections::{BTreeMap, HashMap};

use mqtt_router::broker::ConnId;
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::{
    Connect, Publish, QoS, ReasonCode, RetainHandling, Subscribe, TopicFilter, TopicName,
    Unsubscribe,
};

use super::deliveries::{Deliveries, Expected, Member};
use crate::PeerId;

/// A client identifier, interned.
pub(crate) type ClientIx = u32;

/// A message's identity: its payload (or, when empty, its 5.0 Correlation
/// Data) is this number in decimal.
pub(crate) type Key = u64;

/// What the model needs of the broker's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelConfig {
    /// The cap on session expiry, in seconds.
    pub(crate) max_session_expiry: u32,
    /// The highest QoS granted.
    pub(crate) maximum_qos: QoS,
}

/// One message as published (or as a will).
#[derive(Debug, Clone)]
pub(crate) struct MsgInfo {
    pub(crate) topic: TopicName,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    /// Who published it (for No Local); `None` for a will.
    pub(crate) publisher: Option<ClientIx>,
    /// Its Message Expiry Interval ends then.
    pub(crate) expires_at: Option<Instant>,
    pub(crate) empty: bool,
}

#[derive(Debug, Clone)]
struct MSub {
    filter: TopicFilter,
    granted: QoS,
    no_local: bool,
    rap: bool,
    sub_id: Option<u32>,
    /// `(ShareName, filter)` of a shared subscription.
    group: Option<(String, String)>,
}

/// A will waiting in a detached session.
#[derive(Debug, Clone)]
struct PendingWill {
    key: Key,
    msg: MsgInfo,
    due: Instant,
}

#[derive(Debug)]
pub(crate) struct MSession {
    /// Bumped for each new session under this client identifier.
    pub(crate) gen: u64,
    subs: BTreeMap<String, MSub>,
    pub(crate) conn: Option<PeerId>,
    pub(crate) expires_at: Option<Instant>,
    will: Option<PendingWill>,
    /// QoS 2 packet identifiers received and not released.
    inbound_qos2: std::collections::BTreeSet<u16>,
}

impl MSession {
    /// When the session's will goes out, if one waits: when its delay has
    /// passed or the session ends, whichever comes first [MQTT-3.1.3-9].
    pub(crate) fn will_at(&self) -> Option<Instant> {
        let due = self.will.as_ref()?.due;
        Some(self.expires_at.map_or(due, |at| due.min(at)))
    }
}

/// A deadline of the broker's, in its timer heap's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Due {
    /// A connection's keep alive ran out (ordered as the broker orders its
    /// connections' timers at one instant: by its connection identifier).
    KeepAlive(Option<ConnId>, PeerId),
    /// A detached session's will delay or expiry (ordered as the broker
    /// orders its sessions' timers at one instant: by the session's place
    /// in its table, the first field; then by client).
    Session(usize, ClientIx),
}

/// A connection as the model sees it (from its CONNECT on).
#[derive(Debug)]
pub(crate) struct MConn {
    pub(crate) client: ClientIx,
    pub(crate) v5: bool,
    /// The session expiry in force when it ends.
    expiry: u32,
    will: Option<(Key, MsgInfo, u32)>,
    /// The reason of the DISCONNECT received, if one was.
    disconnect: Option<ReasonCode>,
    /// When the broker last received a packet on it.
    pub(crate) last_rx: Instant,
    pub(crate) keep_alive: u16,
    /// Session Present, as the CONNACK must say it.
    pub(crate) present: bool,
    pub(crate) ended: bool,
    /// Ended by a takeover the model predicted.
    pub(crate) taken_over: bool,
    /// Ended by a keep alive timeout the model predicted.
    pub(crate) keep_alive_ended: bool,
    /// The broker's identifier of the connection.
    pub(crate) conn_id: Option<ConnId>,
    aliases: HashMap<u16, TopicName>,
}

impl MConn {
    /// When the broker ends this connection if it hears nothing more: one
    /// and a half keep alive periods after the last packet [MQTT-3.1.2-24].
    pub(crate) fn keep_alive_due(&self) -> Option<Instant> {
        let ms = u64::from(self.keep_alive) * 1500;
        (ms > 0).then(|| Instant::from_millis(self.last_rx.as_millis() + ms))
    }
}

/// The reference broker.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) config: ModelConfig,
    pub(crate) sessions: BTreeMap<ClientIx, MSession>,
    pub(crate) conns: HashMap<PeerId, MConn>,
    /// Retained messages by topic: key, QoS, expiry.
    pub(crate) retained: BTreeMap<String, (Key, QoS, Option<Instant>)>,
    /// Wills published since the broker (re)started.
    pub(crate) wills_published: u64,
    /// Client identifiers, interned.
    pub(crate) client_ids: HashMap<String, ClientIx>,
    next_gen: u64,
    /// Routings so far: orders deliveries.
    seq: u64,
}

impl Model {
    pub(crate) fn new(config: ModelConfig) -> Self {
        Model {
            config,
            sessions: BTreeMap::new(),
            conns: HashMap::new(),
            retained: BTreeMap::new(),
            wills_published: 0,
            client_ids: HashMap::new(),
            next_gen: 0,
            seq: 0,
        }
    }

    pub(crate) fn intern(&mut self, client_id: &str) -> ClientIx {
        let n = self.client_ids.len() as ClientIx;
        *self.client_ids.entry(client_id.to_owned()).or_insert(n)
    }

    /// A CONNECT from `peer`: takeover, clean start or resumption; returns
    /// Session Present as the CONNACK must say it.
    pub(crate) fn connect(
        &mut self,
        now: Instant,
        peer: PeerId,
        c: &Connect,
        will_key: Option<Key>,
        d: &mut Deliveries,
    ) -> bool {
        let client = self.intern(c.client_id.as_str());
        // A session past its expiry, or a will past its delay, is gone or
        // out by now, whether or not the broker's timer has fired yet.
        self.due_for(now, client, d);
        if let Some(q) = self.sessions.get(&client).and_then(|s| s.conn) {
            if q != peer {
                // [MQTT-3.1.4-3]: the existing connection is closed (0x8E).
                self.end_conn(now, q, d);
                if let Some(qc) = self.conns.get_mut(&q) {
                    qc.taken_over = true;
                }
            }
        }
        let v5 = c.protocol.is_v5();
        let requested = if v5 {
            c.props.session_expiry_interval.unwrap_or(0)
        } else if c.clean_start {
            0
        } else {
            u32::MAX
        };
        let present = !c.clean_start && self.sessions.contains_key(&client);
        if c.clean_start {
            // [MQTT-3.1.2-4]: the old session ends (its will goes out).
            self.end_session(now, client, true, d);
        }
        if !present {
            let gen = self.next_gen;
            self.next_gen += 1;
            self.sessions.insert(
                client,
                MSession {
                    gen,
                    subs: BTreeMap::new(),
                    conn: None,
                    expires_at: None,
                    will: None,
                    inbound_qos2: Default::default(),
                },
            );
        }
        let s = self.sessions.get_mut(&client).expect("just made or kept");
        // A new connection to the session before the will delay passed:
        // no will [MQTT-3.1.3-9]; and the session no longer expires.
        s.will = None;
        s.expires_at = None;
        s.conn = Some(peer);
        let will = c.will.as_ref().zip(will_key).map(will_of);
        self.conns.insert(
            peer,
            MConn {
                client,
                v5,
                expiry: requested.min(self.config.max_session_expiry),
                will,
                disconnect: None,
                last_rx: now,
                keep_alive: c.keep_alive,
                present,
                ended: false,
                taken_over: false,
                keep_alive_ended: false,
                conn_id: None,
                aliases: HashMap::new(),
            },
        );
        present
    }

    /// What is due for `client`'s detached session by `now`: its will, and
    /// its end.
    fn due_for(&mut self, now: Instant, client: ClientIx, d: &mut Deliveries) {
        let Some(s) = self.sessions.get_mut(&client) else {
            return;
        };
        if s.conn.is_some() {
            return;
        }
        // A will due before its session ends goes out alone; one due when
        // the session ends goes out after it has ended (`end_session`), as
        // the broker does (section 3.1.3.2.2).
        let before_end = |due: Instant| s.expires_at.is_none_or(|at| due < at);
        if s.will
            .as_ref()
            .is_some_and(|w| w.due <= now && before_end(w.due))
        {
            let w = s.will.take().expect("checked");
            self.publish_will(now, w.key, &w.msg, d);
        }
        let expired = self
            .sessions
            .get(&client)
            .and_then(|s| s.expires_at)
            .is_some_and(|at| at <= now);
        if expired {
            self.end_session(now, client, true, d);
        }
    }

    /// The deadlines the broker acts on at `now`, in its order: keep
    /// alives run out, wills past their delay, sessions past their expiry
    /// (each acted on with [`Model::act`]). `place` is the broker's place
    /// of a client's session in its table (`Broker::sessions` order).
    pub(crate) fn due(&self, now: Instant, place: impl Fn(ClientIx) -> usize) -> Vec<Due> {
        // The broker acts on its deadlines in their order, connections'
        // before sessions' at one instant (its timer heap): a keep alive that
        // ran out ends its connection (and may publish a will) before a
        // later session deadline, however late `now` is (a clock jump).
        let sessions = self.sessions.iter().filter(|(_, s)| s.conn.is_none());
        let sessions = sessions.filter_map(|(c, s)| {
            let at = [s.will_at(), s.expires_at].into_iter().flatten().min()?;
            (at <= now).then_some((at, Due::Session(place(*c), *c)))
        });
        let conns = self.conns.iter().filter_map(|(&peer, c)| {
            let at = c.keep_alive_due().filter(|at| *at <= now && !c.ended)?;
            Some((at, Due::KeepAlive(c.conn_id, peer)))
        });
        let mut due: Vec<(Instant, Due)> = conns.chain(sessions).collect();
        due.sort_unstable();
        due.into_iter().map(|(_, what)| what).collect()
    }

    /// Acts on one deadline of [`Model::due`].
    pub(crate) fn act(&mut self, now: Instant, what: Due, d: &mut Deliveries) {
        match what {
            Due::KeepAlive(_, peer) => {
                if let Some(c) = self.conns.get_mut(&peer) {
                    c.keep_alive_ended = true;
                }
                self.end_conn(now, peer, d);
            }
            Due::Session(_, client) => self.due_for(now, client, d),
        }
    }

    /// Ends `client`'s session: subscriptions and queue go, then a waiting
    /// will is published if `publish_will`.
    fn end_session(
        &mut self,
        now: Instant,
        client: ClientIx,
        publish_will: bool,
        d: &mut Deliveries,
    ) {
        let Some(s) = self.sessions.remove(&client) else {
            return;
        };
        d.session_ended(client, s.gen);
        if let (true, Some(w)) = (publish_will, s.will) {
            self.publish_will(now, w.key, &w.msg, d);
        }
    }

    fn publish_will(&mut self, now: Instant, key: Key, msg: &MsgInfo, d: &mut Deliveries) {
        self.wills_published += 1;
        self.route(now, key, msg, d);
    }

    /// The broker ended connection `peer` (any way): the session is kept
    /// until its expiry or ends now, and the will is due unless the client
    /// disconnected normally (section 3.1.2.5).
    pub(crate) fn end_conn(&mut self, now: Instant, peer: PeerId, d: &mut Deliveries) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        if c.ended {
            return;
        }
        c.ended = true;
        let (client, expiry) = (c.client, c.expiry);
        // Only a normal DISCONNECT discards the will [MQTT-3.1.2-10]; 3.1.1
        // has no other kind.
        let will = match c.disconnect {
            Some(r) if r == ReasonCode::NORMAL_DISCONNECTION || !c.v5 => None,
            _ => c.will.take(),
        };
        let Some(s) = self.sessions.get_mut(&client) else {
            return;
        };
        if s.conn != Some(peer) {
            return;
        }
        s.conn = None;
        if expiry == 0 {
            let gen = s.gen;
            self.sessions.remove(&client);
            d.session_ended(client, gen);
            if let Some((key, msg, _)) = will {
                self.publish_will(now, key, &msg, d);
            }
            return;
        }
        s.expires_at = (expiry != u32::MAX).then(|| now.plus_secs(u64::from(expiry)));
        match will {
            Some((key, msg, 0)) => self.publish_will(now, key, &msg, d),
            Some((key, msg, delay)) => {
                s.will = Some(PendingWill {
                    key,
                    msg,
                    due: now.plus_secs(u64::from(delay)),
                });
            }
            None => {}
        }
    }

    /// A DISCONNECT from `peer`.
    pub(crate) fn disconnect(&mut self, peer: PeerId, reason: ReasonCode) {
        if let Some(c) = self.conns.get_mut(&peer) {
            c.disconnect.get_or_insert(reason);
        }
    }

    /// A packet arrived on `peer`: keep alive is reset.
    pub(crate) fn heard(&mut self, now: Instant, peer: PeerId) {
        if let Some(c) = self.conns.get_mut(&peer) {
            c.last_rx = now;
        }
    }

    /// The topic of a PUBLISH on `peer`, its alias resolved (5.0).
    pub(crate) fn topic_of(&mut self, peer: PeerId, p: &Publish) -> Option<TopicName> {
        let c = self.conns.get_mut(&peer)?;
        match (p.props.topic_alias.map(|a| a.get()), &p.topic) {
            (Some(a), None) => c.aliases.get(&a).cloned(),
            (Some(a), Some(t)) => {
                c.aliases.insert(a, t.clone());
                Some(t.clone())
            }
            (None, t) => t.clone(),
        }
    }

    /// A PUBLISH from `peer` of message `key`: routed, unless it is a QoS 2
    /// message the session already has [MQTT-4.3.3-10]. Returns how many
    /// subscriptions it reached, `None` if it was not routed.
    pub(crate) fn publish(
        &mut self,
        now: Instant,
        peer: PeerId,
        p: &Publish,
        key: Key,
        msg: &MsgInfo,
        d: &mut Deliveries,
    ) -> Option<usize> {
        let c = self.conns.get(&peer).filter(|c| !c.ended)?;
        let s = self.sessions.get_mut(&c.client)?;
        if let mqtt_session::mqtt_codec::QosPid::ExactlyOnce(id) = p.qos {
            if !s.inbound_qos2.insert(id.get()) {
                return None;
            }
        }
        Some(self.route(now, key, msg, d))
    }

    /// A PUBREL from `peer`: the QoS 2 identifier is free again.
    pub(crate) fn pubrel(&mut self, peer: PeerId, id: u16) {
        let Some(c) = self.conns.get(&peer) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(&c.client) {
            s.inbound_qos2.remove(&id);
        }
    }

    /// Routes one message: retained if flagged, due to every session with a
    /// matching subscription (one delivery per session for its ordinary
    /// subscriptions, one per shared group). Returns the deliveries.
    fn route(&mut self, now: Instant, key: Key, msg: &MsgInfo, d: &mut Deliveries) -> usize {
        self.seq += 1;
        let seq = self.seq;
        d.routed(key, msg);
        if msg.retain {
            if msg.empty {
                self.retained.remove(msg.topic.as_str());
            } else {
                self.retained.insert(
                    msg.topic.as_str().to_owned(),
                    (key, msg.qos, msg.expires_at),
                );
            }
        }
        let mut reached = 0;
        let mut groups: BTreeMap<(String, String), Vec<Member>> = BTreeMap::new();
        for (&client, s) in &self.sessions {
            let mut own: Option<(QoS, bool, Vec<u32>)> = None;
            for sub in s.subs.values() {
                if !sub.filter.matches(&msg.topic) {
                    continue;
                }
                if let Some(g) = &sub.group {
                    let ids = sub.sub_id.into_iter().collect();
                    let qos = msg.qos.min(sub.granted);
                    let member = (client, s.gen, qos, ids, sub.rap);
                    groups.entry(g.clone()).or_default().push(member);
                    continue;
                }
                // [MQTT-3.8.3-3]: not to the publisher's own connection.
                if sub.no_local && msg.publisher == Some(client) {
                    continue;
                }
                let e = own.get_or_insert((QoS::AtMostOnce, false, Vec::new()));
                e.0 = e.0.max(sub.granted);
                e.1 |= sub.rap;
                e.2.extend(sub.sub_id);
            }
            if let Some((granted, rap, mut ids)) = own {
                ids.sort_unstable();
                let qos = msg.qos.min(granted);
                reached += 1;
                d.expect(
                    key,
                    client,
                    msg,
                    Expected {
                        gen: s.gen,
                        qos,
                        // [MQTT-3.3.1-12], [MQTT-3.3.1-13].
                        retain: msg.retain && rap,
                        sub_ids: ids,
                        obligated: qos != QoS::AtMostOnce && !msg.empty,
                        seq,
                        group: None,
                        on_subscribe: false,
                    },
                );
            }
        }
        for (_, members) in groups {
            reached += 1;
            d.shared(key, msg, seq, members);
        }
        let _ = now;
        reached
    }

    /// A SUBSCRIBE from `peer`: each filter granted (the broker's maximum
    /// QoS at most) and its retained messages due as Retain Handling says
    /// [MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]; none for a shared
    /// subscription. Returns the SUBACK's expected results.
    pub(crate) fn subscribe(
        &mut self,
        now: Instant,
        peer: PeerId,
        sub: &Subscribe,
        d: &mut Deliveries,
    ) -> Vec<ReasonCode> {
        let Some(c) = self.conns.get(&peer).filter(|c| !c.ended) else {
            return Vec::new();
        };
        let (client, v5) = (c.client, c.v5);
        let Some(s) = self.sessions.get_mut(&client) else {
            return Vec::new();
        };
        let sub_id = sub
            .props
            .subscription_identifier
            .filter(|_| v5)
            .map(|i| i.get());
        let mut results = Vec::new();
        for (f, o) in &sub.filters {
            let granted = o.qos.min(self.config.maximum_qos);
            results.push(ReasonCode(granted as u8));
            let group = f
                .shared()
                .map(|g| (g.share_name.to_owned(), g.filter.to_owned()));
            let shared = group.is_some();
            let new = s
                .subs
                .insert(
                    f.as_str().to_owned(),
                    MSub {
                        filter: f.clone(),
                        granted,
                        no_local: o.no_local,
                        rap: o.retain_as_published,
                        sub_id,
                        group,
                    },
                )
                .is_none();
            let send = !shared
                && match o.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendAtSubscribeIfNew => new,
                    RetainHandling::DoNotSend => false,
                };
            if !send {
                continue;
            }
            retained_due(&self.retained, now, f, (client, s.gen), granted, sub_id, d);
        }
        results
    }

    /// An UNSUBSCRIBE from `peer`; returns the UNSUBACK's expected results
    /// (5.0: 0x11 for a filter that had no subscription).
    pub(crate) fn unsubscribe(&mut self, peer: PeerId, u: &Unsubscribe) -> Vec<ReasonCode> {
        let Some(c) = self.conns.get(&peer).filter(|c| !c.ended) else {
            return Vec::new();
        };
        let Some(s) = self.sessions.get_mut(&c.client) else {
            return Vec::new();
        };
        u.filters
            .iter()
            .map(|f| match s.subs.remove(f.as_str()) {
                Some(_) => ReasonCode::SUCCESS,
                None => ReasonCode::NO_SUBSCRIPTION_EXISTED,
            })
            .collect()
    }

    /// The broker crashed: every session, retained message and waiting will
    /// is gone.
    pub(crate) fn crash(&mut self, d: &mut Deliveries) {
        for (client, s) in core::mem::take(&mut self.sessions) {
            d.session_ended(client, s.gen);
        }
        for c in self.conns.values_mut() {
            c.ended = true;
        }
        self.retained.clear();
        self.wills_published = 0;
    }
}

/// The retained messages a new subscription to `f` gets (granted `granted`,
/// with identifier `sub_id`), made due to `to` (client, session): live
/// ones on matching topics, with RETAIN set [MQTT-3.3.1-8].
fn retained_due(
    retained: &BTreeMap<String, (Key, QoS, Option<Instant>)>,
    now: Instant,
    f: &TopicFilter,
    (client, gen): (ClientIx, u64),
    granted: QoS,
    sub_id: Option<u32>,
    d: &mut Deliveries,
) {
    for (t, &(key, qos, expires_at)) in retained {
        if expires_at.is_some_and(|at| now >= at) {
            continue;
        }
        let Ok(topic) = TopicName::<&[u8]>::try_from(t.as_str()) else {
            continue;
        };
        if !f.matches(&topic) {
            continue;
        }
        let Some(msg) = d.message(key).cloned() else {
            continue;
        };
        let qos = qos.min(granted);
        let e = Expected {
            gen,
            qos,
            retain: true,
            sub_ids: sub_id.into_iter().collect(),
            obligated: qos != QoS::AtMostOnce,
            seq: 0,
            group: None,
            on_subscribe: true,
        };
        d.expect(key, client, &msg, e);
    }
}

/// A CONNECT's will as the model keeps it: its key, the message and its
/// Will Delay Interval in seconds.
fn will_of((w, key): (&mqtt_session::mqtt_codec::Will, Key)) -> (Key, MsgInfo, u32) {
    let msg = MsgInfo {
        topic: w.topic.clone(),
        qos: w.qos,
        retain: w.retain,
        publisher: None,
        expires_at: None,
        empty: w.payload.is_empty(),
    };
    (key, msg, w.props.will_delay_interval.unwrap_or(0))
}
