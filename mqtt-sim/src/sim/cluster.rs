//! An in-memory fake of the cluster the broker binary builds on NATS
//! JetStream, so several brokers run as one in the simulator, in the
//! order the seed picks.
//!
//! It does what the NATS adapter does with the core's cluster seam
//! (`mqtt_router::broker`, "cluster"): a message that leaves one node's
//! cluster link goes to every other node whose interest matches its topic
//! (core NATS subjects), and a retained change from any node goes into one
//! ordered retained set that every node applies (a KV bucket and its
//! watchers). A node that restarts opens its link again and reads the
//! retained set, as a broker joining the cluster does.

use std::collections::{BTreeMap, BTreeSet};

use mqtt_router::broker::{BridgeId, BridgeOptions, BridgeOutcome, BridgeState, InterestChange};
use mqtt_router::topic_sets::matches;
use mqtt_session::mqtt_codec::TopicName;
use mqtt_session::{ClientConfig, Message};

use super::{PeerId, Sim};
use crate::observe::Observer;

/// Messages that may wait for one node's link at once (its queue limit).
const LINK_QUEUE: usize = 100_000;

/// The cluster's shared state.
#[derive(Debug, Default)]
pub(crate) struct FakeCluster {
    /// The members, by broker index.
    members: BTreeMap<usize, Member>,
    /// The cluster's retained set, by topic.
    retained: BTreeMap<String, Message>,
    /// Messages carried between nodes so far.
    pub(crate) carried: u64,
}

/// One broker's place in the cluster.
#[derive(Debug)]
struct Member {
    /// Its link, for the incarnation it was opened in; `None` until the
    /// broker is up again after a crash.
    link: Option<(BridgeId, u32)>,
    /// The filters its sessions subscribe to.
    interest: BTreeSet<String>,
}

impl<O: Observer> Sim<O> {
    /// Makes broker `b` a node of the simulated cluster (every node joined
    /// this way shares messages and retained messages with the others).
    pub fn join_cluster(&mut self, b: usize) {
        let cluster = self.cluster.get_or_insert_with(FakeCluster::default);
        cluster.members.insert(
            b,
            Member {
                link: None,
                interest: BTreeSet::new(),
            },
        );
        self.cluster_exchange(b);
    }

    /// Opens a transport to broker `b` for a client with `config` and
    /// settles (see [`Sim::connect`]).
    pub fn connect_to(&mut self, b: usize, config: ClientConfig) -> PeerId {
        let i = self.open_client(b, config, None);
        self.run_until_idle();
        i
    }

    /// Messages the cluster carried from one node to another so far.
    pub fn cluster_carried(&self) -> u64 {
        self.cluster.as_ref().map_or(0, |c| c.carried)
    }

    /// The filters broker `b` has told the cluster it is interested in.
    pub fn cluster_interest(&self, b: usize) -> Vec<String> {
        self.cluster
            .as_ref()
            .and_then(|c| c.members.get(&b))
            .map_or_else(Vec::new, |m| m.interest.iter().cloned().collect())
    }

    /// What broker `b` put out for the cluster since last time, carried to
    /// the other nodes; called after each of its turns.
    pub(crate) fn cluster_exchange(&mut self, b: usize) {
        let Some(link) = self.cluster_link(b) else {
            return;
        };
        let now = self.now;
        let Some(mut cluster) = self.cluster.take() else {
            return;
        };
        let core = self.brokers[b].core.as_mut().expect("the link is up");
        let member = cluster.members.get_mut(&b).expect("a member");
        while let Some(change) = core.poll_cluster_interest() {
            match change {
                InterestChange::Added(f) => member.interest.insert(f),
                InterestChange::Removed(f) => member.interest.remove(&f),
            };
        }
        let mut retained = Vec::new();
        while let Some(change) = core.poll_cluster_retained() {
            retained.push(change);
        }
        let mut outgoing = Vec::new();
        while let Some(m) = core.poll_bridge(link, now) {
            let mut msg = Message::clone(&m.message);
            msg.qos = m.qos;
            msg.retain = m.retain;
            outgoing.push(msg);
            core.bridge_settled(link, now, m.token, BridgeOutcome::Delivered);
        }
        // The cluster's order: every node applies each change, the node it
        // came from too.
        for change in retained {
            let key = String::from(change.topic.as_str());
            match &change.message {
                Some(m) => cluster.retained.insert(key, m.clone()),
                None => cluster.retained.remove(&key),
            };
            for (&k, m) in &cluster.members {
                if m.link.is_some() {
                    if let Some(core) = self.brokers[k].core.as_mut() {
                        core.cluster_retained(now, change.topic.clone(), change.message.clone());
                    }
                }
            }
        }
        let mut touched = BTreeSet::new();
        for msg in outgoing {
            for (&k, m) in &cluster.members {
                let Some((their_link, _)) = m.link else {
                    continue;
                };
                if k == b || !m.interest.iter().any(|f| matches(f, msg.topic.as_str())) {
                    continue;
                }
                if let Some(core) = self.brokers[k].core.as_mut() {
                    let _ = core.publish_from_bridge(their_link, now, msg.clone());
                    cluster.carried += 1;
                    touched.insert(k);
                }
            }
        }
        self.cluster = Some(cluster);
        for k in touched {
            self.drain_broker(k);
        }
    }

    /// Broker `b`'s cluster link, opened again if the broker restarted
    /// since (reading the cluster's retained set, as a joining node does);
    /// `None` if `b` is not a member or is down.
    fn cluster_link(&mut self, b: usize) -> Option<BridgeId> {
        let now = self.now;
        let incarnation = self.brokers[b].incarnation;
        let cluster = self.cluster.as_mut()?;
        let member = cluster.members.get_mut(&b)?;
        let core = self.brokers[b].core.as_mut()?;
        match member.link {
            Some((link, at)) if at == incarnation => return Some(link),
            _ => {}
        }
        let link = core
            .open_cluster(now, BridgeOptions::new(LINK_QUEUE))
            .expect("a new core opens its cluster link");
        core.set_bridge_state(link, BridgeState::Connected);
        member.link = Some((link, incarnation));
        member.interest.clear();
        for (topic, m) in &cluster.retained {
            if let Ok(topic) = TopicName::try_from(topic.as_str()) {
                core.cluster_retained(now, topic, Some(m.clone()));
            }
        }
        Some(link)
    }
}
