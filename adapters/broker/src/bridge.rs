//! Bridges: the broker connects to other brokers and carries the topics named
//! in each bridge's rules both ways.
//!
//! A bridge is a subscriber of the broker core, not a client of it: the
//! core opens it (`Broker::open_bridge`) with the local filters of its
//! `out` rules, queues what routing gives it (bounded by `queue_limit`,
//! drops and flow control as for a session), and takes in what it brings
//! (`Broker::publish_from_bridge`) through the same publish path as a
//! client's message (ACL, retained messages, `$SYS` counters), tagged with
//! the bridge as its origin so it never goes back out over that bridge.
//! The bridge has no client identifier here, so no client can take it
//! over. The adapter keeps only what talks to the network: the remote end,
//! an MQTT client of the other broker (`mqtt-tokio`, reconnecting with
//! backoff, a persistent session so QoS 1/2 in flight survive a cut) in
//! its own task, and the driver on the core task (`runtime`) that moves
//! messages between the core and the remote end over bounded channels.
//!
//! ```text
//!  local clients ─▶ Broker ─▶ bridge queue (No Local by origin, "out" rules' local filters)
//!                               │ poll_bridge: local → remote prefix
//!                               ▼
//!                             remote task ─▶ PUBLISH ─▶ remote broker
//!                               │ settled: delivered / dropped / retry ─▶ Broker::bridge_settled
//!                             remote task ◀─ PUBLISH ◀─ remote broker ("in" rules,
//!                               │ remote → local prefix     No Local / try_private)
//!                               ▼
//!  local clients ◀─ Broker::publish_from_bridge (its QoS, its retain flag)
//! ```
//!
//! A message for the remote broker stays counted in the core (in the queue
//! limit and in flow control) until the remote broker has acknowledged it;
//! one whose connection was lost before that goes back in the core's queue
//! and is sent again by the next connection.
//!
//! The topic rules follow Mosquitto's `topic pattern direction qos
//! local-prefix remote-prefix`: the local side subscribes to
//! `local_prefix + pattern`, the remote side to `remote_prefix + pattern`, and
//! a forwarded message has the one prefix swapped for the other. Only the
//! named topics cross; there is no default rule. The renaming stays here
//! (`rules`): the core sees local filters and topics only.
//!
//! The modules: `config` (the `[[bridge]]` tables and their checks),
//! `rules` (topic rules and prefix mapping), `prepared` (TLS files read
//! before start), `runtime` (the driver on the core task) and `remote`
//! (the remote end's task).

mod config;
mod prepared;
mod remote;
mod rules;
mod runtime;

pub use config::{BridgeConfig, BridgeProtocol, Direction, TopicRuleConfig};
pub use prepared::BridgeTlsError;

pub(crate) use config::check_all;
pub(crate) use prepared::Prepared;
pub(crate) use runtime::Bridges;

use rules::Rules;
pub(crate) use runtime::FromRemote;
pub(crate) use runtime::RateLimited;
use runtime::{Crossing, Outgoing};
