//! The cluster link's driver on the core task: it opens the link in the
//! core, spawns the NATS end, and moves what the core's cluster seam puts
//! out to it (messages, interest, retained changes) and what it brings back
//! into the core. Nothing MQTT is decided here: queues, limits, routing and
//! the retained store are the core's.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::TopicName;
use mqtt_router::broker::{BridgeId, BridgeOptions, BridgeOutcome, Broker, InterestChange};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{error, trace, warn};

use super::dedupe::Seen;
use super::envelope::{self, Clocks, Origin};
use super::nats::{NatsEnd, Shared};
use super::subject::key_topic;
use super::{ClusterConfig, FromCluster, Outgoing};
use crate::bridge::RateLimited;

/// Messages the NATS end may hold for publishing at once (the core's
/// window for the link); the rest wait in the core under its queue limit.
const WINDOW: usize = 1024;

/// Reports from the NATS end waiting for the core.
const INBOUND_QUEUE: usize = 4096;

/// How long the core takes nothing from the other nodes after a message
/// reached a congested subscriber.
const HOLD: Duration = Duration::from_millis(5);

/// Longest wait for the NATS end to finish when the broker stops.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The link, as the core task drives it.
pub(crate) struct ClusterLink {
    id: BridgeId,
    node: String,
    incarnation: u64,
    /// The number of the next message this node publishes.
    seq: u64,
    to_nats: Option<mpsc::Sender<Outgoing>>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    seen: Seen,
    refusals: RateLimited,
    /// When the core may take messages from the other nodes again, after
    /// one reached a congested subscriber.
    held_until: Option<std::time::Instant>,
    /// QoS 1/2 messages the core has taken, for the stream.
    acks: mpsc::UnboundedSender<async_nats::jetstream::message::Acker>,
}

impl ClusterLink {
    /// Opens the link in the core and starts its NATS end; `None` without
    /// a `[cluster]` (the receiver is then closed: the core task does not
    /// poll it without a link).
    pub(crate) fn start(
        config: Option<ClusterConfig>,
        broker: &mut Broker,
        now: mqtt_session::Instant,
    ) -> (Option<ClusterLink>, mpsc::Receiver<FromCluster>) {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let Some(config) = config else {
            return (None, inbound_rx);
        };
        let mut options = BridgeOptions::new(config.queue_limit);
        options.max_in_flight = WINDOW;
        let id = match broker.open_cluster(now, options) {
            Ok(id) => id,
            Err(e) => {
                error!(error = %e, "the cluster link cannot be opened; this node runs alone");
                return (None, inbound_rx);
            }
        };
        let (to_nats, outbound) = mpsc::channel(WINDOW);
        let (stop, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared::default());
        let incarnation = crate::server::seed();
        let (acks, acks_rx) = mpsc::unbounded_channel();
        let end = NatsEnd {
            acks: Some(acks_rx),
            config: config.clone(),
            outbound,
            shared: shared.clone(),
            inbound: inbound_tx,
            stop: stop_rx,
            incarnation,
        };
        let link = ClusterLink {
            id,
            node: config.node.clone(),
            incarnation,
            seq: 0,
            to_nats: Some(to_nats),
            shared,
            stop: Some(stop),
            task: Some(tokio::spawn(end.run())),
            seen: Seen::default(),
            refusals: RateLimited::new(Duration::from_secs(10)),
            held_until: None,
            acks,
        };
        (Some(link), inbound_rx)
    }

    /// A report of the NATS end: a message from another node, a retained
    /// change in the cluster, a message settled, or the connection's state.
    pub(crate) fn handle(&mut self, broker: &mut Broker, report: FromCluster, clocks: Clocks) {
        match report {
            FromCluster::Message(bytes, acker) => {
                self.publish_here(broker, &bytes, clocks);
                if let Some(acker) = acker {
                    let _ = self.acks.send(acker);
                }
            }
            FromCluster::Retained { key, value } => retained_here(broker, &key, value, clocks),
            FromCluster::Settled(token, outcome) => {
                broker.bridge_settled(self.id, clocks.now, token, outcome)
            }
            FromCluster::State(state) => broker.set_bridge_state(self.id, state),
        }
    }

    fn publish_here(&mut self, broker: &mut Broker, bytes: &[u8], clocks: Clocks) {
        let d = match envelope::decode(bytes, clocks) {
            Ok(d) => d,
            Err(e) => {
                if let Some(n) = self.refusals.hit() {
                    warn!(error = %e, count = n, "cluster: a message from another node cannot be read");
                }
                return;
            }
        };
        if d.node == self.node && d.incarnation == self.incarnation {
            return;
        }
        if !self.seen.first(&d.node, d.incarnation, d.seq) {
            trace!(node = %d.node, seq = d.seq, "cluster: a copy dropped");
            return;
        }
        let published = broker.publish_from_bridge(self.id, clocks.now, d.message);
        trace!(node = %d.node, seq = d.seq, outcome = ?published, "cluster: a message from another node");
        if let Ok(outcome) = published {
            if outcome.congested {
                // Flow control: the rest waits in NATS (QoS 1/2 in the
                // stream, this node's consumer pulling no further) while
                // the subscribers drain.
                self.held_until = Some(std::time::Instant::now() + HOLD);
            }
            if outcome.reason.is_error() && outcome.reason.0 != 0x10 {
                if let Some(n) = self.refusals.hit() {
                    warn!(reason = %outcome.reason, count = n, "cluster: a message from another node was not published here");
                }
            }
        }
    }

    /// Whether the core takes messages from the other nodes now; when it
    /// does not, the instant it will again.
    pub(crate) fn held(&mut self) -> Option<tokio::time::Instant> {
        let until = self.held_until?;
        if std::time::Instant::now() >= until {
            self.held_until = None;
            return None;
        }
        Some(until.into())
    }

    /// Hands the NATS end what the core put out for the cluster since the
    /// last turn; the core task calls it after each batch.
    pub(crate) fn flush(&mut self, broker: &mut Broker, clocks: Clocks) {
        let mut changed = false;
        {
            let mut pending = self.shared.pending.lock().expect("not poisoned");
            while let Some(change) = broker.poll_cluster_interest() {
                changed = true;
                match change {
                    InterestChange::Added(f) => pending.interest.insert(f, true),
                    InterestChange::Removed(f) => pending.interest.insert(f, false),
                };
            }
            while let Some(change) = broker.poll_cluster_retained() {
                changed = true;
                let origin = Origin {
                    node: &self.node,
                    incarnation: self.incarnation,
                    seq: 0,
                };
                let value = change
                    .message
                    .map(|m| Bytes::from(envelope::encode(origin, &m, clocks)));
                pending
                    .retained
                    .insert(change.topic.as_str().to_owned(), value);
            }
        }
        if changed {
            self.shared.changed.notify_one();
        }
        while let Some(m) = broker.poll_bridge(self.id, clocks.now) {
            let mut msg = mqtt_session::Message::clone(&m.message);
            msg.qos = m.qos;
            msg.retain = m.retain;
            trace!(seq = self.seq, qos = ?msg.qos, "cluster: a message for the other nodes");
            let out = Outgoing {
                token: m.token,
                msg,
                clocks,
                seq: self.seq,
            };
            self.seq += 1;
            let sent = self
                .to_nats
                .as_ref()
                .is_some_and(|tx| tx.try_send(out).is_ok());
            if !sent {
                // Only while stopping: the channel has room for the whole
                // window the core lets be in flight.
                broker.bridge_settled(self.id, clocks.now, m.token, BridgeOutcome::Dropped);
            }
        }
    }

    /// The broker is stopping: the NATS end flushes and disconnects.
    pub(crate) async fn join(mut self) {
        self.to_nats = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(STOP_GRACE, task).await;
        }
    }
}

/// A change of the cluster's retained set, applied here.
fn retained_here(broker: &mut Broker, key: &str, value: Option<Bytes>, clocks: Clocks) {
    let Some(topic) = key_topic(key).and_then(|t| TopicName::try_from(t.as_str()).ok()) else {
        warn!(
            key,
            "cluster: a retained message's key names no topic; ignored"
        );
        return;
    };
    let message = match value.map(|v| envelope::decode(&v, clocks)) {
        None => None,
        Some(Ok(d)) => Some(d.message),
        Some(Err(e)) => {
            warn!(key, error = %e, "cluster: a retained message cannot be read; ignored");
            return;
        }
    };
    broker.cluster_retained(clocks.now, topic, message);
}
