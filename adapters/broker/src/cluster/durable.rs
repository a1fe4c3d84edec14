//! QoS 1 and 2 messages between nodes: one JetStream stream for the whole
//! cluster, and one durable pull consumer per node (its cursor), never one
//! per session or subscription.
//!
//! A node publishes each QoS 1/2 message to the stream and settles it in
//! the core only once JetStream has stored it (the core keeps it counted,
//! in its queue limit and flow control, until then; a failed store puts
//! it back to be sent again). Each node pulls the stream at its own pace,
//! so a node that is busy or away is not sent more than it takes, and
//! acknowledges a message once its core has taken it; a node that comes
//! back resumes at its cursor. The stream keeps messages within
//! `stream_max_bytes` and `stream_max_age` (limits retention, oldest go
//! first), whether or not every node has taken them: with interest
//! retention (a message removed once every consumer acknowledged it)
//! nats-server 2.9 lost messages that one node had not yet taken, measured
//! in `tests/cluster.rs` (one message missing at a restarted node in 1 of
//! 14 runs, and once at a live node in CI; 0 in 20 runs with limits
//! retention). Not traced inside nats-server: upstream changed how the
//! replicas of an interest stream remove acknowledged messages in 2.10 and
//! 2.11 (nats-server pull requests 5287 and 6140), a likely cause.
//!
//! On nats-server 2.9 a consumer takes one filter subject, so each node
//! reads every QoS 1/2 message of the cluster and its core routes the ones
//! its sessions subscribe to.

use std::time::Duration;

use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::consumer::{pull, AckPolicy, Consumer, DeliverPolicy};
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::Context;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{trace, warn};

use super::{envelope, ClusterConfig, FromCluster};
use crate::bridge::RateLimited as RateLimitedWarning;

/// Messages a node may have taken from the stream and not acknowledged.
const MAX_ACK_PENDING: i64 = 10_000;

/// How long JetStream waits for a node's acknowledgement before it
/// delivers the message again (the receiving node drops the copy).
const ACK_WAIT: Duration = Duration::from_secs(30);

/// The wait before the consumer is opened again after a failure.
const REOPEN: Duration = Duration::from_secs(1);

/// The stream and this node's consumer, made if they do not exist.
pub(crate) async fn open(
    js: &Context,
    config: &ClusterConfig,
) -> Result<Consumer<pull::Config>, String> {
    let stream = js
        .get_or_create_stream(stream::Config {
            name: config.message_stream(),
            description: Some("MQTT QoS 1/2 messages between the cluster's nodes".into()),
            subjects: vec![format!("{}.>", config.durable_prefix())],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            num_replicas: config.replicas,
            max_bytes: i64::try_from(config.stream_max_bytes).unwrap_or(i64::MAX),
            max_age: Duration::from_secs(config.stream_max_age),
            discard: DiscardPolicy::Old,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let name = format!("node-{}", config.node);
    stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                description: Some(format!("the cursor of node {}", config.node)),
                // A node that joins starts with what is published from now
                // on; one that comes back resumes where it stopped.
                deliver_policy: DeliverPolicy::New,
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: MAX_ACK_PENDING,
                filter_subject: format!("{}.>", config.durable_prefix()),
                num_replicas: config.replicas,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| e.to_string())
}

/// Pulls this node's messages and hands each to the core side with the
/// handle that acknowledges it, until the core side is gone.
///
/// The pull stream stays open through the errors it reports between
/// messages (a missed idle heartbeat, which it also reports after the core
/// side held it back for a while; a pull request that failed and is sent
/// again): dropping it would drop the messages already on their way to it,
/// and JetStream would deliver them again only after [`ACK_WAIT`]. The
/// consumer is opened again only when the stream ends (the consumer was
/// deleted, the connection closed for good).
pub(crate) async fn consume(
    js: Context,
    config: ClusterConfig,
    mut consumer: Consumer<pull::Config>,
    inbound: mpsc::Sender<FromCluster>,
) {
    let mut failures = RateLimitedWarning::new(Duration::from_secs(10));
    loop {
        match consume_once(&consumer, &inbound, &mut failures).await {
            Ok(()) => return,
            Err(e) => {
                warn!(error = %e, "cluster: pulling QoS 1/2 messages stopped; opening the consumer again")
            }
        }
        tokio::time::sleep(REOPEN).await;
        match open(&js, &config).await {
            Ok(c) => consumer = c,
            Err(e) => warn!(error = %e, "cluster: the consumer cannot be opened again yet"),
        }
    }
}

/// Whether the pull stream goes on after reporting this error.
fn recoverable(kind: MessagesErrorKind) -> bool {
    match kind {
        MessagesErrorKind::MissingHeartbeat
        | MessagesErrorKind::Pull
        | MessagesErrorKind::Other => true,
        MessagesErrorKind::ConsumerDeleted | MessagesErrorKind::PushBasedConsumer => false,
    }
}

async fn consume_once(
    consumer: &Consumer<pull::Config>,
    inbound: &mpsc::Sender<FromCluster>,
    failures: &mut RateLimitedWarning,
) -> Result<(), String> {
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(m) = messages.next().await {
        let m = match m {
            Ok(m) => m,
            Err(e) if recoverable(e.kind()) => {
                if let Some(n) = failures.hit() {
                    warn!(error = %e, count = n, "cluster: pulling QoS 1/2 messages reported an error; going on");
                }
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let (m, acker) = m.split();
        trace!(subject = %m.subject, bytes = m.payload.len(), "cluster: a batch from the stream");
        let Ok(envelopes) = envelope::unbatch(&m.payload) else {
            warn!("cluster: a stream message is not a batch of this version; skipped");
            let _ = acker.ack().await;
            continue;
        };
        // The acknowledgement goes with the batch's last message: the core
        // takes them in order, so it has taken them all by then.
        let mut acker = Some(acker);
        let last = envelopes.len().saturating_sub(1);
        for (i, e) in envelopes.into_iter().enumerate() {
            let ack = if i == last { acker.take() } else { None };
            if inbound.send(FromCluster::Message(e, ack)).await.is_err() {
                return Ok(());
            }
        }
        if let Some(acker) = acker {
            let _ = acker.ack().await;
        }
    }
    Err("the consumer's messages ended".into())
}

/// Acknowledges, in its own task, what the core has taken.
pub(crate) async fn acknowledge(mut acks: mpsc::UnboundedReceiver<Acker>) {
    while let Some(acker) = acks.recv().await {
        // A lost acknowledgement only means the message comes again after
        // ACK_WAIT, and the receiving node drops the copy.
        let _ = acker.ack().await;
    }
}
