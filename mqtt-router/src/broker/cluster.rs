//! The cluster seam: this broker as one node of several that share their
//! clients' messages and retained messages, as plain data in and out.
//!
//! The core does no networking; a driver (the broker's NATS adapter, or
//! `mqtt-sim`'s fake cluster) carries what comes out of here to the other
//! nodes and hands back what they send. Three flows:
//!
//! - **Messages.** The cluster link is a bridge ([`Broker::open_cluster`])
//!   subscribed to every topic (`#`, No Local by origin): each message a
//!   local client, bridge or will publishes is queued for it and leaves
//!   through [`Broker::poll_bridge`] like a bridge's; what other nodes send
//!   enters [`Broker::publish_from_bridge`] with the link as its origin, so
//!   it reaches the local subscribers and never goes back out. Topics that
//!   begin with `$` are not carried (`#` does not match them
//!   [MQTT-4.7.2-1]): each node's `$SYS` is its own.
//! - **Interest.** Which topic filters this node's sessions subscribe to,
//!   one entry per distinct filter however many sessions share it (a shared
//!   subscription counts as its filter), connected or not: each change
//!   comes out once from [`Broker::poll_cluster_interest`], and
//!   [`Broker::cluster_interest`] lists them all (after a reconnection).
//!   Other nodes send a message here only where this node is interested.
//! - **Retained messages.** The cluster keeps one retained set for all
//!   nodes. A retained message set or cleared here comes out of
//!   [`Broker::poll_cluster_retained`]; the driver stores it cluster-wide
//!   and hands every change, from any node and in the cluster's order,
//!   to [`Broker::cluster_retained`], which applies it here without
//!   routing it (its live copy came as a message) and without sending it
//!   back out. A message from another node does not touch the retained
//!   store itself: only the cluster's order does, so every node ends with
//!   the same retained set.
//!
//! Sessions stay where their client is connected; what a node keeps for
//! its clients (subscriptions, queues, wills) is its own.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use mqtt_codec::{QoS, SubscriptionOptions, TopicFilter, TopicName};
use mqtt_session::Message;

use super::{BridgeError, BridgeId, BridgeOptions, Broker, SessionKey};
use crate::{Instant, Subscription};

/// The name the cluster link has among the bridges (in `$SYS` and logs).
pub const CLUSTER_LINK: &str = "cluster";

/// A change of this node's interest: the first subscription to a filter
/// was made, or the last one went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterestChange {
    /// Some session here subscribes to this filter now.
    Added(String),
    /// No session here subscribes to this filter any more.
    Removed(String),
}

/// A retained message set or cleared on this node, for the cluster's
/// retained set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedChange {
    /// The topic.
    pub topic: TopicName,
    /// The message now retained on it (its expiry on this node's clock);
    /// `None`: the retained message was cleared.
    pub message: Option<Message>,
}

/// The cluster link's state in the core.
#[derive(Debug)]
pub(super) struct Cluster {
    link: BridgeId,
    /// Subscriptions per distinct filter of this node's sessions.
    interest: BTreeMap<String, u32>,
    interest_out: VecDeque<InterestChange>,
    retained_out: VecDeque<RetainedChange>,
}

impl Broker {
    /// Makes this broker a node of a cluster: opens the link to the other
    /// nodes, a bridge named [`CLUSTER_LINK`] that carries every message
    /// published here (except on `$` topics) at its QoS, and starts counting
    /// this node's interest from the subscriptions it already has (restored
    /// sessions), each of them one [`InterestChange::Added`] to drain.
    /// Retained messages are not queued for the link: they are shared
    /// through [`Broker::poll_cluster_retained`].
    ///
    /// # Errors
    /// [`BridgeError::NameTaken`] if a bridge is already named
    /// [`CLUSTER_LINK`] or the cluster is open; the others of
    /// [`Broker::open_bridge`].
    pub fn open_cluster(
        &mut self,
        now: Instant,
        options: BridgeOptions,
    ) -> Result<BridgeId, BridgeError> {
        if self.cluster.is_some() {
            return Err(BridgeError::NameTaken);
        }
        let link = self.open_bridge(now, CLUSTER_LINK, Vec::new(), options)?.id;
        let mut opts = SubscriptionOptions::new(QoS::ExactlyOnce);
        // Not back to where it came from; the retain flag as published, for
        // the other nodes' Retain As Published subscribers.
        opts.no_local = true;
        opts.retain_as_published = true;
        let all = TopicFilter::from_static("#");
        if self
            .index
            .insert(link.key(), &all, Subscription::new(opts, None))
            .is_err()
        {
            self.close_bridge(link);
            return Err(BridgeError::IndexFull);
        }
        let mut cluster = Cluster {
            link,
            interest: BTreeMap::new(),
            interest_out: VecDeque::new(),
            retained_out: VecDeque::new(),
        };
        for key in 0..self.sessions.len() {
            if self.sessions[key].is_some() {
                for filter in self.index.filters_of(key as SessionKey) {
                    cluster.add(filter);
                }
            }
        }
        self.cluster = Some(alloc::boxed::Box::new(cluster));
        Ok(link)
    }

    /// The cluster link, when this broker is a node of a cluster.
    pub fn cluster_link(&self) -> Option<BridgeId> {
        self.cluster.as_ref().map(|c| c.link)
    }

    /// The next change of this node's interest, in the order they happened.
    #[must_use]
    pub fn poll_cluster_interest(&mut self) -> Option<InterestChange> {
        self.cluster.as_mut()?.interest_out.pop_front()
    }

    /// Every filter this node is interested in now.
    pub fn cluster_interest(&self) -> impl Iterator<Item = &str> {
        self.cluster
            .iter()
            .flat_map(|c| c.interest.keys().map(String::as_str))
    }

    /// The next retained message set or cleared here, for the cluster.
    #[must_use]
    pub fn poll_cluster_retained(&mut self) -> Option<RetainedChange> {
        self.cluster.as_mut()?.retained_out.pop_front()
    }

    /// A retained message set (`Some`) or cleared (`None`) on `topic` in the
    /// cluster's retained set, by any node (this one's own changes come back
    /// too, in the cluster's order): applied to the retained store here, as
    /// the broker's own (no client is charged for it), subject to this
    /// node's retained limits. Not routed, not sent back out. False if a
    /// limit kept it out (counted in `retained_refused`) or this broker is
    /// not a node.
    pub fn cluster_retained(
        &mut self,
        now: Instant,
        topic: TopicName,
        message: Option<Message>,
    ) -> bool {
        self.start(now);
        if self.cluster.is_none() || topic.is_dollar() {
            return false;
        }
        let mut msg =
            message.unwrap_or_else(|| Message::new(topic.clone(), "", QoS::AtMostOnce, true));
        msg.topic = topic;
        msg.retain = true;
        if msg.is_expired(now) {
            msg.payload = bytes::Bytes::new();
        }
        self.retain_from(now, &msg, None, true)
    }

    /// Whether a message from `origin` came from the other nodes.
    pub(super) fn came_from_cluster(&self, origin: Option<SessionKey>) -> bool {
        matches!((&self.cluster, origin), (Some(c), Some(o)) if c.link.key() == o)
    }

    /// A retained message was set or cleared here by a client, a will or a
    /// bridge: the cluster's retained set takes it.
    pub(super) fn share_retained(&mut self, msg: &Message) {
        if msg.topic.is_dollar() {
            return;
        }
        if let Some(c) = self.cluster.as_mut() {
            let mut message = None;
            if !msg.payload.is_empty() {
                message = Some(msg.clone());
            }
            c.retained_out.push_back(RetainedChange {
                topic: msg.topic.clone(),
                message,
            });
        }
    }

    /// A session subscribed to `filter` (a new subscription, not a
    /// replacement).
    pub(super) fn interest_added(&mut self, filter: &TopicFilter) {
        if let Some(c) = self.cluster.as_mut() {
            c.add(String::from(inner_filter(filter)));
        }
    }

    /// A session unsubscribed from `filter`.
    pub(super) fn interest_removed(&mut self, filter: &TopicFilter) {
        if let Some(c) = self.cluster.as_mut() {
            c.remove(inner_filter(filter));
        }
    }

    /// Session `key` is ending: every one of its subscriptions goes.
    pub(super) fn interest_session_ended(&mut self, key: SessionKey) {
        if self.cluster.is_none() {
            return;
        }
        let filters = self.index.filters_of(key);
        if let Some(c) = self.cluster.as_mut() {
            for f in filters {
                c.remove(&f);
            }
        }
    }
}

impl Cluster {
    fn add(&mut self, filter: String) {
        match self.interest.get_mut(filter.as_str()) {
            Some(count) => *count += 1,
            None => {
                self.interest_out
                    .push_back(InterestChange::Added(filter.clone()));
                self.interest.insert(filter, 1);
            }
        }
    }

    fn remove(&mut self, filter: &str) {
        let Some(count) = self.interest.get_mut(filter) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.interest.remove(filter);
            self.interest_out
                .push_back(InterestChange::Removed(String::from(filter)));
        }
    }
}

/// The filter a subscription matches topics with: a shared subscription's
/// after `$share/{ShareName}/`.
fn inner_filter(filter: &TopicFilter) -> &str {
    filter.shared().map_or(filter.as_str(), |s| s.filter)
}
