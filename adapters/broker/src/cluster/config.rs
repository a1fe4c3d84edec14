//! The `[cluster]` table: which NATS servers this node talks to, its name,
//! and the names it uses there.

use serde::Deserialize;

use crate::config::ConfigError;

/// `[cluster]`: this broker as one node of a cluster on NATS JetStream.
/// Without it the broker is a single node.
///
/// ```toml
/// [cluster]
/// nats = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
/// node = "broker-1"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS servers (required, at least one): `nats://host:port`; the
    /// client fails over between them and reconnects for ever.
    pub nats: Vec<String>,
    /// This node's name (required): unique in the cluster (two nodes with
    /// one name would share one node's messages), a NATS-safe token of
    /// `A-Z a-z 0-9 - _`.
    pub node: String,
    /// The first token of every subject and the prefix of the key-value
    /// bucket's name (default `"mqtt"`): clusters that share NATS servers
    /// need different prefixes.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// NATS user name and password (default: none).
    #[serde(default)]
    pub user: Option<String>,
    /// See `user`.
    #[serde(default)]
    pub password: Option<String>,
    /// NATS authentication token (default: none).
    #[serde(default)]
    pub token: Option<String>,
    /// Replicas of the retained messages' key-value bucket when this node
    /// creates it (default 1; 3 for a JetStream cluster of three servers,
    /// so the loss of one server keeps them).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Messages that may wait in this node for the other nodes (default
    /// 100,000): past it the queue-full policy drops, as for a session.
    #[serde(default = "default_queue_limit")]
    pub queue_limit: usize,
    /// Most bytes the QoS 1/2 message stream keeps (default 1 GiB): past
    /// it the oldest go, acknowledged by every node or not.
    #[serde(default = "default_stream_max_bytes")]
    pub stream_max_bytes: u64,
    /// Most seconds the QoS 1/2 message stream keeps a message a node has
    /// not acknowledged (default 86,400: a node away longer misses them).
    #[serde(default = "default_stream_max_age")]
    pub stream_max_age: u64,
}

fn default_stream_max_bytes() -> u64 {
    1 << 30
}

fn default_stream_max_age() -> u64 {
    86_400
}

fn default_prefix() -> String {
    "mqtt".into()
}

fn default_replicas() -> usize {
    1
}

fn default_queue_limit() -> usize {
    100_000
}

/// A name NATS takes as one subject token and in a bucket's name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ClusterConfig {
    /// The checks that keep a bad `[cluster]` from starting.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let bad = |what: &str| Err(ConfigError::Invalid(format!("cluster.{what}")));
        if self.nats.is_empty() {
            return bad("nats must name at least one NATS server");
        }
        if !is_token(&self.node) {
            return bad("node must be 1 to 64 characters of A-Z a-z 0-9 - _");
        }
        if !is_token(&self.prefix) {
            return bad("prefix must be 1 to 64 characters of A-Z a-z 0-9 - _");
        }
        if !(1..=5).contains(&self.replicas) {
            return bad("replicas must be between 1 and 5");
        }
        if self.queue_limit == 0 {
            return bad("queue_limit must be at least 1");
        }
        if self.stream_max_bytes < 1 << 20 || self.stream_max_age == 0 {
            return bad("stream_max_bytes must be at least 1 MiB and stream_max_age at least 1 s");
        }
        if self.user.is_some() != self.password.is_some() {
            return bad("user and password go together");
        }
        Ok(())
    }

    /// The subjects' first token for messages.
    pub(crate) fn message_prefix(&self) -> String {
        format!("{}.msg", self.prefix)
    }

    /// The first tokens of the QoS 1/2 messages' subjects.
    pub(crate) fn durable_prefix(&self) -> String {
        format!("{}.q", self.prefix)
    }

    /// The JetStream stream of QoS 1/2 messages.
    pub(crate) fn message_stream(&self) -> String {
        format!("{}_messages", self.prefix)
    }

    /// The key-value bucket holding the cluster's retained messages.
    pub(crate) fn retained_bucket(&self) -> String {
        format!("{}_retained", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(extra: &str) -> Result<crate::Config, ConfigError> {
        crate::Config::from_toml(&format!(
            "[cluster]\nnats = [\"nats://127.0.0.1:4222\"]\nnode = \"n1\"\n{extra}"
        ))
    }

    #[test]
    fn a_cluster_is_read_with_its_defaults() {
        let c = read("").unwrap().cluster.unwrap();
        assert_eq!(c.prefix, "mqtt");
        assert_eq!(c.replicas, 1);
        assert_eq!(c.queue_limit, 100_000);
        assert_eq!(c.message_prefix(), "mqtt.msg");
        assert_eq!(c.retained_bucket(), "mqtt_retained");
        assert_eq!(
            (c.durable_prefix(), c.message_stream()),
            ("mqtt.q".into(), "mqtt_messages".into())
        );
        assert_eq!((c.stream_max_bytes, c.stream_max_age), (1 << 30, 86_400));
        assert!(crate::Config::from_toml("").unwrap().cluster.is_none());
    }

    #[test]
    fn bad_cluster_settings_are_refused_by_name() {
        for extra in [
            "prefix = \"a.b\"",
            "replicas = 0",
            "queue_limit = 0",
            "stream_max_age = 0",
            "stream_max_bytes = 1000",
            "user = \"u\"",
            "colour = 1",
        ] {
            assert!(read(extra).is_err(), "{extra}");
        }
        let no_node =
            crate::Config::from_toml("[cluster]\nnats = [\"nats://h:1\"]\nnode = \"a b\"");
        assert!(no_node.is_err());
        let no_servers = crate::Config::from_toml("[cluster]\nnats = []\nnode = \"n\"");
        assert!(no_servers.is_err());
    }
}
