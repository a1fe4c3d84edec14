//! Deliveries: what each client is due (from the model) against what it
//! received (from its client state machine), and the end-of-run accounting
//! of everything due and never received.

use std::collections::{BTreeMap, HashMap, HashSet};

use mqtt_session::mqtt_codec::QoS;
use mqtt_session::Message;

use super::checks::{Check, Checks};
use super::model::{ClientIx, Key, MsgInfo};

/// One delivery the model made due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    /// The session it was due to (a later session of the same client is
    /// not owed it).
    pub(crate) gen: u64,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    /// Sorted.
    pub(crate) sub_ids: Vec<u32>,
    /// QoS 1/2 and identifiable: it must arrive unless excused.
    pub(crate) obligated: bool,
    /// The routing's place in the broker's order (0: retained on subscribe).
    pub(crate) seq: u64,
    /// The shared group routing it belongs to.
    pub(crate) group: Option<usize>,
    /// A retained message sent because of a SUBSCRIBE.
    pub(crate) on_subscribe: bool,
}

#[derive(Debug, Clone)]
struct Receipt {
    qos: QoS,
    process: u32,
    /// The index of the delivery it matched.
    matched: usize,
    /// The shared group routings it could have come from (its QoS, RETAIN
    /// and identifiers fit theirs).
    groups: Vec<usize>,
}

#[derive(Debug, Default)]
struct Record {
    expected: Vec<Expected>,
    receipts: Vec<Receipt>,
}

impl Record {
    /// QoS 2 copies client process `process` got, and QoS 2 deliveries due.
    fn qos2(&self, process: u32) -> (usize, usize) {
        let got = self.receipts.iter();
        let got = got.filter(|r| r.process == process && r.qos == QoS::ExactlyOnce);
        let due = self.expected.iter().filter(|e| e.qos == QoS::ExactlyOnce);
        (got.count(), due.count())
    }
}

/// A message routed to a shared group: one member must get it.
#[derive(Debug)]
struct Group {
    key: Key,
    members: Vec<(ClientIx, u64)>,
    obligated: bool,
}

/// A member of a shared group as routing saw it: client, session, QoS,
/// identifiers, Retain As Published.
pub(crate) type Member = (ClientIx, u64, QoS, Vec<u32>, bool);

/// Counters of the accounting, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages routed (publishes and wills).
    pub routed: u64,
    /// Deliveries made due.
    pub due: u64,
    /// Messages clients received.
    pub received: u64,
    /// QoS 1/2 deliveries never received because their session ended.
    pub lost_with_session: u64,
    /// Sessions resumed by a client process with another session state
    /// (what they were owed is excused like a lost session's).
    pub mismatched: u64,
    /// QoS 1/2 deliveries never received of messages that could expire.
    pub expirable: u64,
    /// QoS 1/2 deliveries never received without an excuse but within the
    /// drops the broker reported.
    pub missing: u64,
}

/// Every delivery due and every message received in a run.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    records: HashMap<(Key, ClientIx), Record>,
    groups: Vec<Group>,
    ended: HashSet<(ClientIx, u64)>,
    routings: HashMap<Key, u32>,
    /// Empty messages due, by client and topic (a 3.1.1 receiver cannot
    /// tell them apart).
    anon: HashSet<(ClientIx, String)>,
    messages: HashMap<Key, MsgInfo>,
    /// The broker-order place of the last message received per
    /// (subscriber, its client process, publisher, topic): two processes
    /// racing for one client identifier each see their own stream.
    order: HashMap<(ClientIx, u32, ClientIx, String), u64>,
    pub(crate) tally: Tally,
}

impl Deliveries {
    /// Message `key` as first routed.
    pub(crate) fn message(&self, key: Key) -> Option<&MsgInfo> {
        self.messages.get(&key)
    }

    /// Message `key` was routed (once more).
    pub(crate) fn routed(&mut self, key: Key, msg: &MsgInfo) {
        self.messages.entry(key).or_insert_with(|| msg.clone());
        *self.routings.entry(key).or_default() += 1;
        self.tally.routed += 1;
    }

    /// Client `client`'s session `gen` was resumed by a client process with
    /// another session state (a takeover race between two processes, or a
    /// process that lost its state): its packet identifiers may collide
    /// with the broker's, and a QoS 2 delivery the client takes for one it
    /// already has is not passed on [MQTT-4.3.3-10]. What it was owed is
    /// excused.
    pub(crate) fn mismatched(&mut self, client: ClientIx, gen: u64) {
        self.ended.insert((client, gen));
        self.tally.mismatched += 1;
    }

    /// Client `client`'s session `gen` ended.
    pub(crate) fn session_ended(&mut self, client: ClientIx, gen: u64) {
        self.ended.insert((client, gen));
    }

    /// Message `key` is due to `client`.
    pub(crate) fn expect(&mut self, key: Key, client: ClientIx, msg: &MsgInfo, e: Expected) {
        self.messages.entry(key).or_insert_with(|| msg.clone());
        if msg.empty {
            self.anon.insert((client, msg.topic.as_str().to_owned()));
        }
        self.tally.due += 1;
        self.records
            .entry((key, client))
            .or_default()
            .expected
            .push(e);
    }

    /// Message `key` is due to one of `members`, a shared group.
    pub(crate) fn shared(&mut self, key: Key, msg: &MsgInfo, seq: u64, members: Vec<Member>) {
        let group = self.groups.len();
        let obligated = !msg.empty && members.iter().all(|m| m.2 != QoS::AtMostOnce);
        self.groups.push(Group {
            key,
            members: members.iter().map(|m| (m.0, m.1)).collect(),
            obligated,
        });
        for (client, gen, qos, mut ids, rap) in members {
            ids.sort_unstable();
            let e = Expected {
                gen,
                qos,
                retain: msg.retain && rap,
                sub_ids: ids,
                obligated: false,
                seq,
                group: Some(group),
                on_subscribe: false,
            };
            self.expect(key, client, msg, e);
        }
    }

    /// Client `client` (in its client process `process`) received `m` with
    /// `ids` on a 5.0 connection (`v5`) or not, carrying message `key`
    /// (`None`: an empty message without Correlation Data).
    pub(crate) fn receive(
        &mut self,
        (client, process): (ClientIx, u32),
        key: Option<Key>,
        m: &Message,
        mut ids: Vec<u32>,
        v5: bool,
        checks: &mut Checks,
    ) {
        self.tally.received += 1;
        let topic = m.topic.as_str();
        let Some(key) = key else {
            let due = self.anon.contains(&(client, topic.to_owned()));
            return checks.check(Check::DeliveryDue, due, || {
                format!("client #{client} got an empty message on {topic} that was due to none of its subscriptions")
            });
        };
        let Some(info) = self.messages.get(&key) else {
            return checks.fail(
                Check::DeliveryDue,
                format!(
                    "client #{client} got message {key} on {topic}, which was never due to anyone"
                ),
            );
        };
        let publisher = info.publisher;
        checks.check(Check::Topic, info.topic == m.topic, || {
            format!(
                "message {key} was published to {} and delivered on {topic}",
                info.topic.as_str()
            )
        });
        let Some(rec) = self.records.get_mut(&(key, client)) else {
            return checks.fail(
                Check::DeliveryDue,
                format!("client #{client} got message {key} on {topic}, due to none of its subscriptions"),
            );
        };
        checks.check(Check::DeliveryDue, true, String::new);
        ids.sort_unstable();
        let fits = |e: &Expected| {
            e.qos == m.qos && e.retain == m.retain && (e.sub_ids == ids || !v5 && ids.is_empty())
        };
        let matched = (rec
            .expected
            .iter()
            .position(|e| fits(e) && e.group.is_none()))
        .or_else(|| rec.expected.iter().position(fits));
        checks.check(Check::DeliveryOptions, matched.is_some(), || {
            format!(
                "client #{client} got message {key} on {topic} at {:?}, RETAIN {}, identifiers {ids:?}; due: {:?}",
                m.qos, m.retain, rec.expected
            )
        });
        let Some(matched) = matched else {
            return;
        };
        let first = rec.receipts.is_empty();
        let groups = rec.expected.iter().filter(|e| fits(e));
        let groups = groups.filter_map(|e| e.group).collect();
        rec.receipts.push(Receipt {
            qos: m.qos,
            process,
            matched,
            groups,
        });
        if m.qos == QoS::ExactlyOnce {
            let (got, due) = rec.qos2(process);
            checks.check(Check::ExactlyOnce, got <= due, || {
                format!(
                    "client #{client} got QoS 2 message {key} on {topic} {got} times, due {due}"
                )
            });
        }
        let e = &rec.expected[matched];
        let (seq, plain) = (e.seq, e.group.is_none() && !e.on_subscribe);
        let once = self.routings.get(&key) == Some(&1);
        let ordered = first && once && plain && m.qos != QoS::AtMostOnce && !m.retain;
        if let (true, Some(publisher)) = (ordered, publisher) {
            let stream = (client, process, publisher, topic.to_owned());
            self.check_order(stream, key, seq, checks);
        }
    }

    /// Message `key`, at place `seq` in the broker's order, arrived on
    /// `stream` (subscriber, its process, publisher, topic) after every
    /// message before it there.
    fn check_order(
        &mut self,
        stream: (ClientIx, u32, ClientIx, String),
        key: Key,
        seq: u64,
        checks: &mut Checks,
    ) {
        let (client, _, publisher, topic) = stream.clone();
        let last = self.order.entry(stream).or_default();
        let before = *last;
        checks.check(Check::Order, seq > before, || {
            format!("client #{client} got message {key} on {topic} from client #{publisher} after a later one (broker order {seq} after {before})")
        });
        *last = before.max(seq);
    }

    /// The deliveries due and never received, each excused or not; checks
    /// that shared groups got each message once and that the unexcused
    /// losses are within the `dropped` messages the broker reported.
    pub(crate) fn finish(&mut self, dropped: u64, checks: &mut Checks) {
        let mut missing = Vec::new();
        let mut keys: Vec<&(Key, ClientIx)> = self.records.keys().collect();
        keys.sort_unstable();
        for k in keys {
            let rec = &self.records[k];
            if !rec.receipts.is_empty() {
                continue;
            }
            let (key, client) = *k;
            let mut owed = rec
                .expected
                .iter()
                .filter(|e| e.obligated && e.group.is_none());
            let Some(first) = owed.next() else {
                continue;
            };
            let alive = |e: &Expected| !self.ended.contains(&(client, e.gen));
            let unexcused = alive(first) || owed.any(alive);
            if !unexcused {
                self.tally.lost_with_session += 1;
            } else if self.messages[&key].expires_at.is_some() {
                self.tally.expirable += 1;
            } else {
                missing.push(format!("message {key} to client #{client}"));
            }
        }
        self.check_shared_once(checks);
        for group in &self.groups {
            if !group.obligated {
                continue;
            }
            let any = group.members.iter().any(|&(client, _)| {
                self.records
                    .get(&(group.key, client))
                    .is_some_and(|rec| !rec.receipts.is_empty())
            });
            if any {
                continue;
            }
            let lost = group.members.iter().any(|m| self.ended.contains(m));
            if lost {
                self.tally.lost_with_session += 1;
            } else if self.messages[&group.key].expires_at.is_some() {
                self.tally.expirable += 1;
            } else {
                missing.push(format!("shared message {} to its group", group.key));
            }
        }
        self.tally.missing = missing.len() as u64;
        checks.passed(Check::AtLeastOnce, self.tally.due.saturating_sub(1));
        checks.check(Check::AtLeastOnce, missing.len() as u64 <= dropped, || {
            format!(
                "{} QoS 1/2 deliveries never arrived, but the broker reported {dropped} drops: {}",
                missing.len(),
                missing
                    .iter()
                    .take(8)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }

    /// Each message routed to shared groups reached each group at most
    /// once (section 4.8.2). A client may belong to several groups that one
    /// message matched (`$share/g/#` and `$share/g/a/#` are two
    /// subscriptions), and its receipts do not say for which group they
    /// came: the check is that the receipts owed to groups can be assigned
    /// to distinct groups each listing the receiver as a member (a bipartite
    /// matching, found by augmenting paths).
    fn check_shared_once(&self, checks: &mut Checks) {
        let mut by_key: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
        for (g, group) in self.groups.iter().enumerate() {
            by_key.entry(group.key).or_default().push(g);
        }
        for (key, groups) in by_key {
            let mut clients: Vec<ClientIx> = groups
                .iter()
                .flat_map(|&g| self.groups[g].members.iter().map(|m| m.0))
                .collect();
            clients.sort_unstable();
            clients.dedup();
            // One unit per receipt that no ordinary subscription explains,
            // each with the groups it could have come from. A member may get
            // its copy more than once (QoS 1 resent after a reconnection):
            // only more copies than the groups they fit can show a group
            // that got the message twice.
            let mut units: Vec<Vec<usize>> = Vec::new();
            for c in clients {
                let Some(rec) = self.records.get(&(key, c)) else {
                    continue;
                };
                let grouped = rec.receipts.iter();
                let grouped: Vec<&Receipt> = grouped
                    .filter(|r| rec.expected[r.matched].group.is_some())
                    .collect();
                let mut fit: Vec<usize> = grouped.iter().flat_map(|r| r.groups.clone()).collect();
                fit.sort_unstable();
                fit.dedup();
                let fit: Vec<usize> = (0..groups.len())
                    .filter(|&g| fit.contains(&groups[g]))
                    .collect();
                let n = grouped.len().min(fit.len());
                units.extend(core::iter::repeat_n(fit, n));
            }
            let member = |u: usize, g: usize| units[u].contains(&g);
            let mut holder: Vec<Option<usize>> = vec![None; groups.len()];
            let assigned = (0..units.len())
                .filter(|&u| {
                    let mut seen = vec![false; groups.len()];
                    augment(u, &member, &mut holder, &mut seen)
                })
                .count();
            checks.check(Check::SharedOnce, assigned == units.len(), || {
                format!(
                    "shared message {key} reached {} members of its {} groups: some group got it twice",
                    units.len(),
                    groups.len()
                )
            });
        }
    }

    /// The keys of the retained messages client `client` received because
    /// of a SUBSCRIBE.
    pub(crate) fn retained_received(&self, client: ClientIx) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .records
            .iter()
            .filter(|((_, c), rec)| {
                *c == client
                    && rec
                        .receipts
                        .iter()
                        .any(|r| rec.expected[r.matched].on_subscribe)
            })
            .map(|((k, _), _)| *k)
            .collect();
        keys.sort_unstable();
        keys
    }
}

/// Finds a group for unit `u` in the matching `holder` (group to unit),
/// moving other units to other groups if need be (Kuhn's augmenting path).
fn augment(
    u: usize,
    member: &impl Fn(usize, usize) -> bool,
    holder: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for g in 0..holder.len() {
        if seen[g] || !member(u, g) {
            continue;
        }
        seen[g] = true;
        let free = match holder[g] {
            None => true,
            Some(v) => augment(v, member, holder, seen),
        };
        if free {
            holder[g] = Some(u);
            return true;
        }
    }
    false
}
