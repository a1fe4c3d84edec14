//! The cluster: several brokers as one, on NATS with JetStream.
//!
//! The core's cluster seam (`mqtt_router::broker`, "cluster") puts out
//! this node's messages for the others, its interest (the distinct filters
//! its sessions subscribe to) and its retained changes, and takes in what
//! the other nodes send. This adapter carries them over NATS:
//!
//! ```text
//!  local publish ─▶ Broker ─▶ cluster link (a bridge on '#', No Local by origin)
//!                               │ poll_bridge
//!                               ▼
//!                             NATS end ─▶ QoS 0: PUB <prefix>.msg.<escaped topic> (core NATS)
//!                                         QoS 1/2: JetStream <prefix>_messages, subject <prefix>.q.<topic>
//!  interest ─▶ SUB <prefix>.msg.<escaped filter> per distinct filter of this node
//!  retained ─▶ KV <prefix>_retained: put / delete <escaped topic>
//!                             NATS end ◀─ MSG from the subjects of this node's interest,
//!                                         and this node's consumer of <prefix>_messages
//!                               │ first copy of each (dedupe)
//!                               ▼
//!  local subscribers ◀─ Broker::publish_from_bridge (origin: the link)
//!  KV watch (every change, the node's own too, in the bucket's order)
//!                               ─▶ Broker::cluster_retained
//! ```
//!
//! The modules: `config` (`[cluster]`), `subject` (topics and filters as
//! subjects and keys), `envelope` (a message as it crosses), `dedupe`
//! (one copy per message), `link` (the driver on the core task), `nats`
//! (the NATS end's task) and `retained` (following the retained set).
//!
//! QoS 0 messages travel over core NATS (at most once); QoS 1/2 messages
//! through one JetStream stream with a durable consumer per node
//! (`durable`). What a node keeps for its clients (sessions, queues, wills)
//! stays on that node.

mod config;
mod dedupe;
mod durable;
mod envelope;
mod link;
mod nats;
mod outbound;
mod retained;
mod subject;

use async_nats::jetstream::message::Acker;
use bytes::Bytes;
use mqtt_router::broker::{BridgeOutcome, BridgeState, BridgeToken};
use mqtt_session::Message;

pub use config::ClusterConfig;
pub(crate) use envelope::Clocks;
pub(crate) use link::ClusterLink;

/// What the NATS end tells the core side.
pub(crate) enum FromCluster {
    /// A message from another node, as it crossed (see `envelope`); a QoS
    /// 1/2 one with the handle that acknowledges it to its stream once the
    /// core has taken it.
    Message(Bytes, Option<Acker>),
    /// The cluster's retained set changed at `key` (an escaped topic):
    /// set to `value` (an envelope), or cleared.
    Retained { key: String, value: Option<Bytes> },
    /// What became of a message handed to the NATS end.
    Settled(BridgeToken, BridgeOutcome),
    /// The connection to NATS changed state.
    State(BridgeState),
}

/// A message for the other nodes, numbered in this node's run.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) token: BridgeToken,
    pub(crate) msg: Message,
    pub(crate) clocks: Clocks,
    pub(crate) seq: u64,
}
