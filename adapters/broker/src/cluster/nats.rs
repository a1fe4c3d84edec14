//! The NATS end of the cluster link, in its own task: one connection to the
//! NATS servers for this node; messages published on subjects, one
//! subscription per subject of this node's interest, and the retained
//! messages in a JetStream key-value bucket that every node follows
//! (`retained`).
//!
//! A topic that several of a node's subjects match (`a.>` and `a.b`)
//! reaches the node once per subject; the core side keeps the first copy
//! of each (messages carry their origin's sequence number, see `dedupe`).
//! Not queue groups: NATS would hand consecutive messages of one topic to
//! different subscriptions, whose tasks could pass them on out of order.
//! The connection is made with no echo: a node never gets its own
//! messages back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::Context;
use async_nats::{Client, ConnectOptions, Event, ServerAddr};
use bytes::Bytes;
use futures_util::StreamExt;
use mqtt_router::broker::{BridgeOutcome, BridgeState};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, info, trace, warn};

use super::durable;
use super::outbound::{Outbound, Storing, BATCH_MESSAGES};
use super::subject::{filter_subjects, topic_key};
use super::{ClusterConfig, FromCluster, Outgoing};
use crate::bridge::RateLimited as RateLimitedWarning;

/// The longest wait between two attempts to reach NATS or its bucket.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the core side leaves for the NATS task between turns: changes of
/// interest and retained messages, each kept once per filter or topic (the
/// latest), so it holds at most one entry per filter and per retained
/// topic however long NATS is away.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Filter → whether this node is interested in it now.
    pub(crate) interest: HashMap<String, bool>,
    /// Retained topic → the envelope retained there now (`None`: cleared).
    pub(crate) retained: HashMap<String, Option<Bytes>>,
}

/// [`Pending`] and the signal that it changed.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) pending: Mutex<Pending>,
    pub(crate) changed: Notify,
}

/// The NATS task's state.
pub(crate) struct NatsEnd {
    pub(crate) config: ClusterConfig,
    pub(crate) outbound: mpsc::Receiver<Outgoing>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) inbound: mpsc::Sender<FromCluster>,
    pub(crate) stop: oneshot::Receiver<()>,
    /// This run of the node (random): a restarted node numbers its
    /// messages from 0 again.
    pub(crate) incarnation: u64,
    /// QoS 1/2 messages the core has taken, to acknowledge to the stream.
    pub(crate) acks: Option<mpsc::UnboundedReceiver<Acker>>,
}

/// The subscriptions this node holds: per subject, how many filters need
/// it and the task forwarding what it receives.
#[derive(Default)]
struct Subscriptions {
    by_subject: HashMap<String, (usize, JoinHandle<()>)>,
    /// The filters this node is interested in (a filter's subjects are
    /// taken once, whatever the core says twice).
    filters: std::collections::HashSet<String>,
}

impl NatsEnd {
    /// Runs until the broker stops.
    pub(crate) async fn run(mut self) {
        let Some(client) = self.connect().await else {
            return;
        };
        let Some(store) = self.bucket(&client).await else {
            return;
        };
        let js = async_nats::jetstream::new(client.clone());
        let consumer = loop {
            match durable::open(&js, &self.config).await {
                Ok(c) => break c,
                Err(e) => {
                    warn!(error = %e, "cluster: no QoS 1/2 message stream yet; trying again");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        let follower = tokio::spawn(super::retained::follow(store.clone(), self.inbound.clone()));
        let consuming = tokio::spawn(durable::consume(
            js.clone(),
            self.config.clone(),
            consumer,
            self.inbound.clone(),
        ));
        let acking = self
            .acks
            .take()
            .map(|acks| tokio::spawn(durable::acknowledge(acks)));
        let mut storing = Storing::new();
        let _ = self
            .inbound
            .send(FromCluster::State(BridgeState::Connected))
            .await;
        info!(node = %self.config.node, "cluster: connected to NATS");
        let mut subs = Subscriptions::default();
        let mut failures = RateLimitedWarning::new(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = &mut self.stop => break,
                out = self.outbound.recv() => {
                    let Some(out) = out else {
                        debug!("cluster: the core side is gone");
                        break;
                    };
                    let mut outs = vec![out];
                    while outs.len() < BATCH_MESSAGES {
                        match self.outbound.try_recv() {
                            Ok(out) => outs.push(out),
                            Err(_) => break,
                        }
                    }
                    self.outbound_via(&client, &js).send(outs, &mut storing, &mut failures).await;
                }
                Some((tokens, stored)) = storing.next(), if !storing.is_empty() => {
                    // Not stored: the core queues them again, to be sent again.
                    let outcome = if stored { BridgeOutcome::Delivered } else { BridgeOutcome::Retry };
                    trace!(messages = tokens.len(), stored, "cluster: a batch settled");
                    if !stored {
                        if let Some(n) = failures.hit() {
                            warn!(count = n, "cluster: JetStream did not store QoS 1/2 messages; they are sent again");
                        }
                    }
                    self.outbound_via(&client, &js).settle(tokens, outcome).await;
                }
                () = self.shared.changed.notified() => {
                    self.apply_pending(&client, &store, &mut subs, &mut failures).await;
                }
            }
        }
        follower.abort();
        consuming.abort();
        if let Some(a) = acking {
            a.abort();
        }
        for (_, (_, task)) in subs.by_subject.drain() {
            task.abort();
        }
        let _ = client.flush().await;
        let _ = self
            .inbound
            .send(FromCluster::State(BridgeState::Stopped))
            .await;
    }

    /// Connects, trying again with backoff until it works or the broker stops.
    async fn connect(&mut self) -> Option<Client> {
        let addrs: Vec<ServerAddr> = self
            .config
            .nats
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        let mut backoff = Duration::from_millis(100);
        loop {
            let inbound = self.inbound.clone();
            let mut options = ConnectOptions::new()
                .name(format!("mqtt-broker {}", self.config.node))
                .no_echo()
                // The servers in the configuration's order: a node lists
                // its nearest server first.
                .retain_servers_order()
                .connection_timeout(Duration::from_secs(5))
                .event_callback(move |event| {
                    let inbound = inbound.clone();
                    async move {
                        let state = match event {
                            Event::Connected => BridgeState::Connected,
                            Event::Disconnected => BridgeState::Reconnecting,
                            _ => return,
                        };
                        let _ = inbound.send(FromCluster::State(state)).await;
                    }
                });
            if let (Some(u), Some(p)) = (&self.config.user, &self.config.password) {
                options = options.user_and_password(u.clone(), p.clone());
            }
            if let Some(t) = &self.config.token {
                options = options.token(t.clone());
            }
            match options.connect(addrs.clone()).await {
                Ok(c) => return Some(c),
                Err(e) => {
                    warn!(error = %e, servers = ?self.config.nats, "cluster: cannot reach NATS; trying again");
                }
            }
            if self.pause(backoff).await {
                return None;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The retained messages' bucket, made if no node made it yet.
    async fn bucket(&mut self, client: &Client) -> Option<kv::Store> {
        let js = async_nats::jetstream::new(client.clone());
        let name = self.config.retained_bucket();
        loop {
            let found = match js.get_key_value(name.as_str()).await {
                Ok(store) => Ok(store),
                Err(_) => {
                    js.create_key_value(kv::Config {
                        bucket: name.clone(),
                        description: "MQTT retained messages of the cluster".into(),
                        history: 1,
                        num_replicas: self.config.replicas,
                        ..Default::default()
                    })
                    .await
                }
            };
            match found {
                Ok(store) => return Some(store),
                Err(e) => {
                    warn!(bucket = %name, error = %e, "cluster: no retained messages' bucket yet (is JetStream on?); trying again");
                }
            }
            if self.pause(MAX_BACKOFF.min(Duration::from_secs(1))).await {
                return None;
            }
        }
    }

    /// Waits `d`; true if the broker stops meanwhile.
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = &mut self.stop => true,
            () = tokio::time::sleep(d) => false,
        }
    }

    /// Publishing through `client` and `js`.
    fn outbound_via<'a>(&'a self, client: &'a Client, js: &'a Context) -> Outbound<'a> {
        Outbound {
            client,
            js,
            config: &self.config,
            incarnation: self.incarnation,
            inbound: &self.inbound,
        }
    }

    /// Subscribes and unsubscribes as this node's interest changed, and
    /// writes the retained messages set or cleared here to the bucket.
    async fn apply_pending(
        &self,
        client: &Client,
        store: &kv::Store,
        subs: &mut Subscriptions,
        failures: &mut RateLimitedWarning,
    ) {
        let pending = std::mem::take(&mut *self.shared.pending.lock().expect("not poisoned"));
        let prefix = self.config.message_prefix();
        for (filter, wanted) in pending.interest {
            if wanted == subs.filters.contains(&filter) {
                continue;
            }
            for subject in filter_subjects(&prefix, &filter) {
                if wanted {
                    self.subscribe(client, subs, subject, failures).await;
                } else if let Some((count, _)) = subs.by_subject.get_mut(&subject) {
                    *count -= 1;
                    if *count == 0 {
                        if let Some((_, task)) = subs.by_subject.remove(&subject) {
                            task.abort();
                        }
                    }
                }
            }
            if wanted {
                subs.filters.insert(filter);
            } else {
                subs.filters.remove(&filter);
            }
        }
        for (key, value) in pending.retained {
            let key = topic_key(&key);
            let done = match value {
                Some(v) => store
                    .put(key.as_str(), v)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                None => store.delete(key.as_str()).await.map_err(|e| e.to_string()),
            };
            if let Err(e) = done {
                if let Some(n) = failures.hit() {
                    warn!(error = %e, key, count = n, "cluster: retained message not stored in the bucket");
                }
            }
        }
    }

    /// One more filter needs `subject`: subscribed on first need, with a
    /// task that hands what arrives to the core side.
    async fn subscribe(
        &self,
        client: &Client,
        subs: &mut Subscriptions,
        subject: String,
        failures: &mut RateLimitedWarning,
    ) {
        if let Some((count, _)) = subs.by_subject.get_mut(&subject) {
            *count += 1;
            return;
        }
        match client.subscribe(subject.clone()).await {
            Ok(mut sub) => {
                let inbound = self.inbound.clone();
                let task = tokio::spawn(async move {
                    while let Some(m) = sub.next().await {
                        if inbound
                            .send(FromCluster::Message(m.payload, None))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                });
                debug!(subject, "cluster: subscribed");
                subs.by_subject.insert(subject, (1, task));
            }
            Err(e) => {
                if let Some(n) = failures.hit() {
                    warn!(error = %e, subject, count = n, "cluster: cannot subscribe");
                }
            }
        }
    }
}
