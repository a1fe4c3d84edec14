//! A bridge's configuration: the `[[bridge]]` and `[[bridge.topic]]`
//! tables, their defaults, and the checks that they fit together.

use std::collections::HashSet;
use std::path::PathBuf;

use mqtt_tokio::{Address, ProtocolVersion};
use serde::Deserialize;

use super::Rules;
use crate::config::ConfigError;

/// One `[[bridge]]` of the configuration: a connection to another broker
/// and the topics it carries.
///
/// ```toml
/// [[bridge]]
/// name = "site1"
/// address = "mqtts://central.example.com:8883"
/// protocol = "5.0"
/// cafile = "/etc/mqtt/ca.crt"
/// username = "site1"
/// password = "s3cret"
///
/// [[bridge.topic]]            # local sensors/# → remote site1/sensors/#
/// topic = "sensors/#"
/// direction = "out"
/// qos = 1
/// remote_prefix = "site1/"
///
/// [[bridge.topic]]            # remote commands/site1/# → local commands/#
/// topic = "#"
/// direction = "in"
/// qos = 2
/// local_prefix = "commands/"
/// remote_prefix = "commands/site1/"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// The bridge's name (required): in the logs, in `$SYS/broker/bridges/<name>/...`
    /// and in the default client identifier. It may not contain `/`, `+` or `#`,
    /// and each bridge needs its own.
    pub name: String,
    /// The remote broker (required): `mqtt://host:port` (TCP, port 1883 by
    /// default) or `mqtts://host:port` (TLS, 8883); `ws://` and `wss://`
    /// addresses work too.
    pub address: String,
    /// The protocol spoken to the remote broker: `"3.1.1"` (the default, as
    /// in Mosquitto) or `"5.0"`.
    #[serde(default)]
    pub protocol: BridgeProtocol,
    /// The client identifier at the remote broker (default
    /// `"<hostname>.<name>"`, as in Mosquitto). On this broker a bridge has
    /// no client identifier: it is not a client here, so no client can take
    /// it over.
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name at the remote broker (default: none).
    #[serde(default)]
    pub username: Option<String>,
    /// Password at the remote broker (default: none; needs `username`).
    #[serde(default)]
    pub password: Option<String>,
    /// The user name this broker's ACL (`[auth]`) judges the bridge by
    /// (default: none, as an anonymous client): what it subscribes to here
    /// for its `out` rules, and what it brings in. Its client identifier
    /// there is the bridge's `name`. The bridge is not a client of this
    /// broker, so no password is checked (see `local_password`).
    #[serde(default)]
    pub local_username: Option<String>,
    /// No longer used, accepted so that older configurations still load
    /// (and logged at start): bridges used to reach this broker's core as
    /// an in-process client that logged in; they are part of the core now,
    /// and the configuration that names `local_username` is trusted. Needs
    /// `local_username`.
    #[serde(default)]
    pub local_password: Option<String>,
    /// Keep alive towards the remote broker, in seconds (default 60; 0: off).
    #[serde(default = "default_keep_alive")]
    pub keep_alive: u16,
    /// Clean Start (5.0) / Clean Session (3.1.1) on the first connection
    /// (default false: the remote broker keeps the bridge's session, so QoS
    /// 1/2 messages in flight are resent after a cut). Reconnections always
    /// resume the session when the remote broker keeps one.
    #[serde(default)]
    pub clean_start: bool,
    /// How long the remote broker keeps the bridge's session after a cut, in
    /// seconds (5.0 only; default 3600). 3.1.1 sessions last as long as the
    /// remote broker keeps them.
    #[serde(default = "default_session_expiry")]
    pub session_expiry: u32,
    /// Certificate authorities, PEM, the remote broker's certificate is
    /// verified against (TLS addresses; default: Mozilla's root
    /// certificates).
    #[serde(default)]
    pub cafile: Option<PathBuf>,
    /// The bridge's own certificate chain, PEM, for brokers that ask for
    /// client certificates (TLS addresses; default: none; needs `keyfile`).
    #[serde(default)]
    pub certfile: Option<PathBuf>,
    /// The private key of `certfile`, PEM (default: none; needs `certfile`).
    #[serde(default)]
    pub keyfile: Option<PathBuf>,
    /// Messages for the remote broker that may wait at once, queued in the
    /// broker core or unacknowledged by the remote broker (default 10000):
    /// while the remote broker is unreachable, messages published locally
    /// wait up to this limit, and past it messages are dropped by the
    /// broker's queue-full policy (never one already handed to the remote
    /// end), counted in `$SYS/broker/bridges/<name>/dropped` and logged.
    /// Past half of it, local QoS 1/2 publishers' acknowledgements wait
    /// for the remote broker to catch up (flow control, as for a slow
    /// subscriber). At most 10000000.
    #[serde(default = "default_queue_limit")]
    pub queue_limit: usize,
    /// Seconds before the first reconnection attempt (default 1; fractions
    /// allowed, at least 0.01); the delay doubles with each failed attempt,
    /// less a random part of up to half, so that many bridges do not come
    /// back at once.
    #[serde(default = "default_reconnect_delay")]
    pub reconnect_delay: f64,
    /// Longest delay between reconnection attempts, in seconds (default 30).
    /// A first connection that fails is retried the same way.
    #[serde(default = "default_reconnect_delay_max")]
    pub reconnect_delay_max: f64,
    /// The topic rules (at least one): only these topics cross the bridge.
    #[serde(rename = "topic", default)]
    pub topics: Vec<TopicRuleConfig>,
}

/// One `[[bridge.topic]]` rule: Mosquitto's `topic pattern direction qos
/// local-prefix remote-prefix`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRuleConfig {
    /// The topic filter (required), wildcards allowed, e.g. `"sensors/#"`.
    /// It may be `""` when a prefix is given: the prefix is then the whole
    /// topic.
    pub topic: String,
    /// Which way messages cross: `"out"` (local → remote, the default, as
    /// in Mosquitto), `"in"` (remote → local) or `"both"`.
    #[serde(default)]
    pub direction: Direction,
    /// The QoS of the bridge's subscriptions on each side (default 0): a
    /// message crosses with the lower of its own QoS and this.
    #[serde(default)]
    pub qos: u8,
    /// Prefix of the local topics (default `""`): the local side
    /// subscribes to `local_prefix + topic`. No wildcards.
    #[serde(default)]
    pub local_prefix: String,
    /// Prefix of the remote topics (default `""`): the remote side
    /// subscribes to `remote_prefix + topic`. No wildcards.
    #[serde(default)]
    pub remote_prefix: String,
}

/// Which way a [`TopicRuleConfig`] carries messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// `"out"`: from this broker to the remote one (the default).
    #[default]
    Out,
    /// `"in"`: from the remote broker to this one.
    In,
    /// `"both"`: each way.
    Both,
}

impl Direction {
    pub(super) fn is_out(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    pub(super) fn is_in(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// The MQTT version a bridge speaks to the remote broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum BridgeProtocol {
    /// `"3.1.1"` (the default): the CONNECT carries Mosquitto's bridge
    /// marker (`try_private`), so the remote broker does not send the
    /// bridge its own messages back.
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    /// `"5.0"`: the remote subscriptions use No Local and Retain As
    /// Published.
    #[serde(rename = "5.0")]
    V5,
}

impl BridgeProtocol {
    pub(super) fn version(self) -> ProtocolVersion {
        match self {
            BridgeProtocol::V311 => ProtocolVersion::V311,
            BridgeProtocol::V5 => ProtocolVersion::V5,
        }
    }
}

fn default_keep_alive() -> u16 {
    60
}

fn default_session_expiry() -> u32 {
    3600
}

/// The largest `queue_limit` accepted: far above any sensible setting, far
/// below what the channel behind it can count.
const MAX_QUEUE_LIMIT: usize = 10_000_000;

fn default_queue_limit() -> usize {
    10_000
}

fn default_reconnect_delay() -> f64 {
    1.0
}

fn default_reconnect_delay_max() -> f64 {
    30.0
}

impl BridgeConfig {
    /// Whether the bridge's settings fit together and its rules are valid
    /// (files are read only when the broker starts).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let at = |what: String| ConfigError::Invalid(format!("bridge {:?}: {what}", self.name));
        if self.name.is_empty() || self.name.contains(['/', '+', '#', '\0']) {
            return Err(at(
                "the name must be non-empty and free of '/', '+' and '#'".into(),
            ));
        }
        let address = Address::parse(&self.address).map_err(|e| at(e.to_string()))?;
        let tls_files = self.cafile.is_some() || self.certfile.is_some() || self.keyfile.is_some();
        if tls_files && !address.is_tls() {
            return Err(at(format!(
                "cafile, certfile and keyfile need a TLS address (mqtts:// or wss://), not {:?}",
                self.address
            )));
        }
        if self.certfile.is_some() != self.keyfile.is_some() {
            return Err(at("certfile and keyfile go together".into()));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(at("a password needs a username".into()));
        }
        if self.local_password.is_some() && self.local_username.is_none() {
            return Err(at("local_password needs local_username".into()));
        }
        if !(1..=MAX_QUEUE_LIMIT).contains(&self.queue_limit) {
            return Err(at(format!(
                "queue_limit must be between 1 and {MAX_QUEUE_LIMIT}"
            )));
        }
        // A zero delay would retry a refusing broker in a tight loop.
        let delays_ok = |d: f64| d.is_finite() && (0.01..=86_400.0).contains(&d);
        if !delays_ok(self.reconnect_delay) || !delays_ok(self.reconnect_delay_max) {
            return Err(at(
                "reconnect_delay and reconnect_delay_max must be between 0.01 and 86400 seconds"
                    .into(),
            ));
        }
        for (what, s) in [
            ("client_id", &self.client_id),
            ("username", &self.username),
            ("local_username", &self.local_username),
        ] {
            if s.as_deref().is_some_and(|s| s.contains('\0')) {
                return Err(at(format!("{what} may not contain U+0000")));
            }
        }
        if self.topics.is_empty() {
            return Err(at(
                "no [[bridge.topic]] rule: a bridge carries only the topics it names".into(),
            ));
        }
        Rules::parse(&self.topics).map_err(at)?;
        Ok(())
    }

    /// The client identifier at the remote broker.
    pub(super) fn client_id(&self) -> String {
        match &self.client_id {
            Some(id) => id.clone(),
            None => format!("{}.{}", hostname(), self.name),
        }
    }
}

/// The machine's host name, for default client identifiers.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && !s.contains(['/', '+', '#', '\0']))
        .unwrap_or_else(|| "mqtt-broker".to_string())
}

/// Checks that every bridge has a name of its own.
pub(crate) fn check_all(bridges: &[BridgeConfig]) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for b in bridges {
        b.check()?;
        if !names.insert(b.name.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "two bridges are named {:?}",
                b.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_is_read_with_its_defaults() {
        let c = crate::Config::from_toml(
            "[[bridge]]\nname = \"b\"\naddress = \"mqtt://h:1884\"\n\
             [[bridge.topic]]\ntopic = \"a/#\"\n",
        )
        .unwrap();
        let b = &c.bridges[0];
        assert_eq!(b.protocol, BridgeProtocol::V311);
        assert_eq!(b.keep_alive, 60);
        assert!(!b.clean_start);
        assert_eq!(b.session_expiry, 3600);
        assert_eq!(b.queue_limit, 10_000);
        assert_eq!(b.reconnect_delay, 1.0);
        assert_eq!(b.reconnect_delay_max, 30.0);
        assert!(b.client_id().ends_with(".b"), "{}", b.client_id());
        let t = &b.topics[0];
        assert_eq!(t.direction, Direction::Out);
        assert_eq!(
            (t.qos, t.local_prefix.as_str(), t.remote_prefix.as_str()),
            (0, "", "")
        );
        let o = crate::bridge::remote::options(b).unwrap();
        assert_eq!(o.address().port, 1884);

        let c = crate::Config::from_toml(
            "[[bridge]]\nname = \"b\"\naddress = \"mqtts://h\"\nprotocol = \"5.0\"\n\
             client_id = \"me\"\ncafile = \"ca.pem\"\nusername = \"u\"\npassword = \"p\"\n\
             [[bridge.topic]]\ntopic = \"x\"\ndirection = \"both\"\nqos = 2\n",
        )
        .unwrap();
        let b = &c.bridges[0];
        assert_eq!(b.protocol, BridgeProtocol::V5);
        assert_eq!(b.client_id(), "me");
        assert_eq!(b.topics[0].direction, Direction::Both);
    }

    #[test]
    fn bridge_settings_that_do_not_fit_are_refused() {
        let refused = |text: &str| {
            crate::Config::from_toml(text)
                .err()
                .unwrap_or_else(|| panic!("accepted: {text}"))
                .to_string()
        };
        let rule = "[[bridge.topic]]\ntopic = \"a\"\n";
        let bridge = |extra: &str| {
            format!("[[bridge]]\nname = \"b\"\naddress = \"mqtt://h\"\n{extra}\n{rule}")
        };
        assert!(refused(&bridge("certfile = \"c\"")).contains("TLS address"));
        assert!(refused(&bridge("local_password = \"p\"")).contains("local_username"));
        assert!(refused(&bridge("queue_limit = 0")).contains("queue_limit"));
        assert!(refused(&bridge("reconnect_delay = -1")).contains("reconnect_delay"));
        assert!(refused(&bridge("reconnect_delay = 0")).contains("reconnect_delay"));
        assert!(refused(&bridge("queue_limit = 100000000000")).contains("queue_limit"));
        assert!(refused(&bridge("unknown = 1")).contains("unknown"));
        assert!(refused(
            "[[bridge]]\nname = \"a/b\"\naddress = \"mqtt://h\"\n[[bridge.topic]]\ntopic = \"a\"\n"
        )
        .contains("name"));
        assert!(refused(
            "[[bridge]]\nname = \"b\"\naddress = \"http://h\"\n[[bridge.topic]]\ntopic = \"a\"\n"
        )
        .contains("address"));
        let twice = format!("{}\n{}", bridge(""), bridge(""));
        assert!(refused(&twice).contains("two bridges"));
        assert!(refused(
            "[[bridge]]\nname = \"b\"\naddress = \"mqtts://h\"\ncertfile = \"c\"\n[[bridge.topic]]\ntopic = \"a\"\n"
        )
        .contains("keyfile"));
    }
}
