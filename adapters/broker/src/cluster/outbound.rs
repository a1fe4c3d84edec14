//! This node's messages on their way to the others: QoS 0 one by one on
//! core NATS (each on its topic's subject, which the other nodes' interest
//! picks); QoS 1/2 gathered into batches, one stream message each, stored
//! by JetStream at once (one acknowledgement for the batch, as a group
//! commit), every message in it settled in the core when JetStream says
//! it stored the batch.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::Context;
use async_nats::Client;
use futures_util::stream::FuturesUnordered;
use mqtt_router::broker::{BridgeOutcome, BridgeToken};
use tokio::sync::mpsc;
use tracing::warn;

use super::envelope::{self, Origin};
use super::subject::topic_subject;
use super::{ClusterConfig, FromCluster, Outgoing};
use crate::bridge::RateLimited;

/// Most messages gathered into one batch.
pub(crate) const BATCH_MESSAGES: usize = 256;

/// Most bytes of one batch: below NATS's default maximum payload (1 MiB).
const BATCH_BYTES: usize = 512 * 1024;

/// Batches published to the stream, waiting for JetStream to say it stored
/// them: each gives its messages' tokens and whether it was stored.
pub(crate) type Storing =
    FuturesUnordered<Pin<Box<dyn Future<Output = (Vec<BridgeToken>, bool)> + Send>>>;

/// Publishes for one node.
pub(crate) struct Outbound<'a> {
    pub(crate) client: &'a Client,
    pub(crate) js: &'a Context,
    pub(crate) config: &'a ClusterConfig,
    pub(crate) incarnation: u64,
    pub(crate) inbound: &'a mpsc::Sender<FromCluster>,
}

impl Outbound<'_> {
    /// Publishes `outs` (in the order the core gave them): QoS 0 at once,
    /// QoS 1/2 in batches whose acknowledgements go to `storing`.
    pub(crate) async fn send(
        &self,
        outs: Vec<Outgoing>,
        storing: &mut Storing,
        failures: &mut RateLimited,
    ) {
        let mut batch = Batch::default();
        for out in outs {
            let origin = Origin {
                node: &self.config.node,
                incarnation: self.incarnation,
                seq: out.seq,
            };
            let bytes = envelope::encode(origin, &out.msg, out.clocks);
            if out.msg.qos == mqtt_codec::QoS::AtMostOnce {
                let subject = topic_subject(&self.config.message_prefix(), out.msg.topic.as_str());
                let outcome = match self.client.publish(subject, bytes.into()).await {
                    Ok(()) => BridgeOutcome::Delivered,
                    Err(e) => {
                        if let Some(n) = failures.hit() {
                            warn!(error = %e, count = n, "cluster: message not published to NATS (dropped)");
                        }
                        BridgeOutcome::Dropped
                    }
                };
                self.settle(vec![out.token], outcome).await;
                continue;
            }
            if batch.bytes + bytes.len() > BATCH_BYTES && !batch.tokens.is_empty() {
                self.store(std::mem::take(&mut batch), storing, failures)
                    .await;
            }
            batch.push(out.token, bytes);
        }
        if !batch.tokens.is_empty() {
            self.store(batch, storing, failures).await;
        }
    }

    /// Publishes one batch to the stream.
    async fn store(&self, batch: Batch, storing: &mut Storing, failures: &mut RateLimited) {
        let subject = format!("{}.batch", self.config.durable_prefix());
        let Batch {
            tokens, envelopes, ..
        } = batch;
        match self
            .js
            .publish(subject, envelope::batch(&envelopes).into())
            .await
        {
            Ok(ack) => storing.push(Box::pin(async move { (tokens, ack.await.is_ok()) })),
            Err(e) => {
                if let Some(n) = failures.hit() {
                    warn!(error = %e, count = n, "cluster: QoS 1/2 messages not published to the stream; they are sent again");
                }
                self.settle(tokens, BridgeOutcome::Retry).await;
            }
        }
    }

    /// Tells the core what became of these messages.
    pub(crate) async fn settle(&self, tokens: Vec<BridgeToken>, outcome: BridgeOutcome) {
        for token in tokens {
            let _ = self
                .inbound
                .send(FromCluster::Settled(token, outcome))
                .await;
        }
    }
}

/// QoS 1/2 envelopes gathered for one stream message.
#[derive(Default)]
struct Batch {
    tokens: Vec<BridgeToken>,
    envelopes: Vec<Vec<u8>>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, token: BridgeToken, envelope: Vec<u8>) {
        self.bytes += envelope.len() + 4;
        self.tokens.push(token);
        self.envelopes.push(envelope);
    }
}
