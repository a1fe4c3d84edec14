//! Bridges: the broker connects to other brokers and carries the topics named
//! in each bridge's rules both ways.
//!
//! A bridge has two ends. The remote end is an MQTT client of the other
//! broker (`mqtt-tokio`, reconnecting with backoff, a persistent session so
//! QoS 1/2 in flight survive a cut) in its own task. The local end is not a
//! socket: it is an in-process client of this broker's core, a
//! `Connection<Client>` whose packets the core task hands to the broker
//! directly, so bridged messages pass the broker core like any other publish
//! (ACLs, retained messages, `$SYS` counters). The two ends exchange messages
//! over bounded channels.
//!
//! ```text
//!  local clients ─▶ Broker ─▶ local end (No Local subscriptions, "out" rules)
//!                               │ local → remote prefix, queue_limit
//!                               ▼
//!                             remote task ─▶ PUBLISH ─▶ remote broker
//!                             remote task ◀─ PUBLISH ◀─ remote broker ("in" rules,
//!                               │ remote → local prefix     No Local / try_private)
//!                               ▼
//!  local clients ◀─ Broker ◀─ local end publishes (its QoS, its retain flag)
//! ```
//!
//! The topic rules follow Mosquitto's `topic pattern direction qos
//! local-prefix remote-prefix`: the local side subscribes to
//! `local_prefix + pattern`, the remote side to `remote_prefix + pattern`, and
//! a forwarded message has the one prefix swapped for the other. Only the
//! named topics cross; there is no default rule.

mod local;
mod remote;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqtt_codec::{QoS, TopicFilter, TopicName};
use mqtt_session::{Instant, Message};
use mqtt_tokio::rustls;
use mqtt_tokio::{Address, ProtocolVersion};
use serde::Deserialize;

use crate::config::ConfigError;
use crate::tls::TlsError;

pub(crate) use local::Bridges;

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
    /// `"<hostname>.<name>"`, as in Mosquitto). The local end connects to
    /// this broker as `"local.<client_id>"`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name at the remote broker (default: none).
    #[serde(default)]
    pub username: Option<String>,
    /// Password at the remote broker (default: none; needs `username`).
    #[serde(default)]
    pub password: Option<String>,
    /// User name the local end gives this broker, for its `[auth]` password
    /// file and ACL (default: none, an anonymous client).
    #[serde(default)]
    pub local_username: Option<String>,
    /// Password the local end gives this broker (default: none; needs
    /// `local_username`).
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
    /// Messages for the remote broker that may wait at once, in the bridge
    /// and unacknowledged by the remote broker (default 10000): while the
    /// remote broker is unreachable, messages published locally are queued
    /// up to this limit, and those past it are dropped, counted in
    /// `$SYS/broker/bridges/<name>/dropped` and logged. At most 10000000.
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
    fn is_out(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    fn is_in(self) -> bool {
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
    fn version(self) -> ProtocolVersion {
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
    fn client_id(&self) -> String {
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

/// One topic rule, checked: the filter on each side and the prefixes to swap.
#[derive(Debug, Clone)]
pub(crate) struct TopicRule {
    direction: Direction,
    qos: QoS,
    local_prefix: String,
    remote_prefix: String,
    /// `local_prefix + topic`: what the local end subscribes to.
    local_filter: TopicFilter,
    /// `remote_prefix + topic`: what the remote end subscribes to.
    remote_filter: TopicFilter,
}

impl TopicRule {
    fn parse(c: &TopicRuleConfig) -> Result<TopicRule, String> {
        let qos = QoS::from_u8(c.qos).ok_or_else(|| format!("qos {} is not 0, 1 or 2", c.qos))?;
        for (what, prefix) in [
            ("local_prefix", &c.local_prefix),
            ("remote_prefix", &c.remote_prefix),
        ] {
            if prefix.contains(['+', '#', '\0']) {
                return Err(format!("{what} {prefix:?} may not contain wildcards"));
            }
        }
        let filter = |prefix: &str| -> Result<TopicFilter, String> {
            let text = format!("{prefix}{}", c.topic);
            let f = TopicFilter::try_from(text.as_str())
                .map_err(|e| format!("{text:?} is not a valid topic filter: {e}"))?;
            if f.is_shared() {
                return Err(format!("{text:?} is a shared subscription"));
            }
            Ok(f)
        };
        Ok(TopicRule {
            direction: c.direction,
            qos,
            local_prefix: c.local_prefix.clone(),
            remote_prefix: c.remote_prefix.clone(),
            local_filter: filter(&c.local_prefix)?,
            remote_filter: filter(&c.remote_prefix)?,
        })
    }

    /// The remote topic of a local one, if this rule carries it out.
    fn to_remote(&self, local: &TopicName) -> Option<TopicName> {
        if !self.direction.is_out() || !self.local_filter.matches(local) {
            return None;
        }
        swap(local.as_str(), &self.local_prefix, &self.remote_prefix)
    }

    /// The local topic of a remote one, if this rule carries it in.
    fn to_local(&self, remote: &TopicName) -> Option<TopicName> {
        if !self.direction.is_in() || !self.remote_filter.matches(remote) {
            return None;
        }
        swap(remote.as_str(), &self.remote_prefix, &self.local_prefix)
    }
}

/// `topic` with its prefix `from` replaced by `to`.
fn swap(topic: &str, from: &str, to: &str) -> Option<TopicName> {
    let rest = topic.strip_prefix(from)?;
    if from.is_empty() && to.is_empty() {
        // Nothing to swap: the topic itself, sharing its storage.
        return TopicName::try_from(topic).ok();
    }
    TopicName::try_from(format!("{to}{rest}").as_str()).ok()
}

/// A bridge's topic rules, in configuration order: the first rule that
/// carries a topic decides its mapping (as in Mosquitto).
#[derive(Debug, Clone)]
pub(crate) struct Rules(Vec<TopicRule>);

impl Rules {
    /// Checks and parses rules; the error says which rule and why.
    pub(crate) fn parse(rules: &[TopicRuleConfig]) -> Result<Rules, String> {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| TopicRule::parse(r).map_err(|e| format!("topic rule {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()
            .map(Rules)
    }

    /// The remote topic a local message goes to, if any rule carries it out.
    pub(crate) fn outgoing(&self, local: &TopicName) -> Option<TopicName> {
        self.0.iter().find_map(|r| r.to_remote(local))
    }

    /// The local topic a remote message goes to, if any rule carries it in.
    pub(crate) fn incoming(&self, remote: &TopicName) -> Option<TopicName> {
        self.0.iter().find_map(|r| r.to_local(remote))
    }

    /// What the local end subscribes to: the local filters of the `out` and
    /// `both` rules, each once, with its highest QoS.
    pub(crate) fn local_subscriptions(&self) -> Vec<(TopicFilter, QoS)> {
        dedup(
            self.0
                .iter()
                .filter(|r| r.direction.is_out())
                .map(|r| (r.local_filter.clone(), r.qos)),
        )
    }

    /// What the remote end subscribes to: the remote filters of the `in`
    /// and `both` rules, each once, with its highest QoS.
    pub(crate) fn remote_subscriptions(&self) -> Vec<(TopicFilter, QoS)> {
        dedup(
            self.0
                .iter()
                .filter(|r| r.direction.is_in())
                .map(|r| (r.remote_filter.clone(), r.qos)),
        )
    }
}

/// One entry per filter (a SUBSCRIBE may not name a filter twice usefully),
/// with the highest QoS asked for it.
fn dedup(items: impl Iterator<Item = (TopicFilter, QoS)>) -> Vec<(TopicFilter, QoS)> {
    let mut out: Vec<(TopicFilter, QoS)> = Vec::new();
    for (f, q) in items {
        match out.iter_mut().find(|(g, _)| g.as_str() == f.as_str()) {
            Some((_, have)) => *have = (*have).max(q),
            None => out.push((f, q)),
        }
    }
    out
}

/// A message crossing between the two ends, its expiry as a remaining time
/// (each end has its own clock).
#[derive(Debug)]
pub(crate) struct Crossing {
    pub(crate) msg: Message,
    pub(crate) ttl: Option<Duration>,
}

impl Crossing {
    /// `msg`, whose expiry is on the clock reading `now`.
    pub(crate) fn new(mut msg: Message, now: Instant) -> Crossing {
        let ttl = msg
            .props
            .expires_at
            .take()
            .map(|at| at.saturating_duration_since(now));
        Crossing { msg, ttl }
    }

    /// The message, its expiry put on the clock reading `now`.
    pub(crate) fn into_message(self, now: Instant) -> Message {
        let mut msg = self.msg;
        msg.props.expires_at = self.ttl.map(|ttl| now.saturating_add(ttl));
        msg
    }
}

/// The state of a bridge's remote connection, as `$SYS` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Connecting, or waiting to reconnect.
    Reconnecting = 0,
    /// Connected to the remote broker.
    Connected = 1,
    /// The bridge has stopped (the broker is shutting down).
    Stopped = 2,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Reconnecting => "reconnecting",
            State::Connected => "connected",
            State::Stopped => "stopped",
        }
    }
}

/// What both ends of a bridge count, for `$SYS`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    state: AtomicU8,
    /// Messages the remote broker took (acknowledged, or written at QoS 0).
    sent: AtomicU64,
    /// Messages from the remote broker published here.
    received: AtomicU64,
    /// Messages dropped: past the queue limit, or refused on either side.
    dropped: AtomicU64,
    /// Messages for the remote broker waiting in the bridge or in flight.
    queued: AtomicUsize,
}

impl Counters {
    pub(crate) fn state(&self) -> State {
        match self.state.load(Ordering::Relaxed) {
            1 => State::Connected,
            2 => State::Stopped,
            _ => State::Reconnecting,
        }
    }

    pub(crate) fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Relaxed);
    }
}

/// A warning that is logged at most once per interval, with the number of
/// occurrences since the last one.
#[derive(Debug)]
pub(crate) struct RateLimited {
    every: Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl RateLimited {
    pub(crate) fn new(every: Duration) -> RateLimited {
        RateLimited {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Counts one occurrence; `Some(n)` when it should be logged now, `n`
    /// being the occurrences this log line covers.
    pub(crate) fn hit(&mut self) -> Option<u64> {
        self.suppressed += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// A bridge ready to run: its configuration checked and its TLS files read.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    config: BridgeConfig,
    rules: Arc<Rules>,
    /// The remote end's client options, TLS included.
    options: mqtt_tokio::ConnectOptions,
}

impl Prepared {
    /// Reads the bridge's TLS files; a file that cannot be used is an error
    /// naming it.
    pub(crate) fn new(config: &BridgeConfig) -> Result<Prepared, std::io::Error> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        config.check().map_err(|e| invalid(e.to_string()))?;
        let rules = Rules::parse(&config.topics).map_err(invalid)?;
        let tls = if config.cafile.is_some() || config.certfile.is_some() {
            let tls = client_tls(config).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    BridgeTlsError {
                        bridge: config.name.clone(),
                        source: e,
                    },
                )
            })?;
            Some(Arc::new(tls))
        } else {
            None
        };
        let mut options = remote::options(config)
            .map_err(|e| invalid(format!("bridge {:?}: {e}", config.name)))?;
        if let Some(tls) = tls {
            options = options.tls_config(tls);
        }
        Ok(Prepared {
            config: config.clone(),
            rules: Arc::new(rules),
            options,
        })
    }
}

/// A bridge's TLS files could not be used.
#[derive(Debug, thiserror::Error)]
#[error("bridge {bridge:?}: {source}")]
pub struct BridgeTlsError {
    /// The bridge.
    pub bridge: String,
    /// What is wrong, naming the file.
    pub source: TlsError,
}

/// The rustls client configuration of a bridge with `cafile` and/or a
/// client certificate.
fn client_tls(config: &BridgeConfig) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &config.cafile {
        Some(path) => {
            for cert in crate::tls::certificates(path, "CA file")? {
                roots.add(cert).map_err(|source| TlsError::Authority {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Authority {
            path: config.cafile.clone().unwrap_or_default(),
            source,
        })?
        .with_root_certificates(roots);
    match (&config.certfile, &config.keyfile) {
        (Some(certfile), Some(keyfile)) => {
            let chain = crate::tls::certificates(certfile, "certificate file")?;
            let key = crate::tls::private_key(keyfile)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| TlsError::CertifiedKey {
                    certfile: certfile.clone(),
                    keyfile: keyfile.clone(),
                    source,
                })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(topic: &str, direction: Direction, local: &str, remote: &str) -> TopicRuleConfig {
        TopicRuleConfig {
            topic: topic.into(),
            direction,
            qos: 1,
            local_prefix: local.into(),
            remote_prefix: remote.into(),
        }
    }

    fn t(s: &str) -> TopicName {
        TopicName::try_from(s).unwrap()
    }

    fn mapped(t: Option<TopicName>) -> Option<String> {
        t.map(|t| t.as_str().to_owned())
    }

    #[test]
    fn prefixes_are_swapped_each_way() {
        let rules = Rules::parse(&[rule("sensors/#", Direction::Both, "", "site1/")]).unwrap();
        assert_eq!(
            mapped(rules.outgoing(&t("sensors/1/temp"))).as_deref(),
            Some("site1/sensors/1/temp")
        );
        assert_eq!(
            mapped(rules.incoming(&t("site1/sensors/2"))).as_deref(),
            Some("sensors/2")
        );
        // Outside the filters: nothing crosses.
        assert_eq!(rules.outgoing(&t("other/1")), None);
        assert_eq!(rules.incoming(&t("sensors/1")), None);
        assert_eq!(rules.incoming(&t("site2/sensors/1")), None);

        let rules = Rules::parse(&[rule("#", Direction::In, "cmd/", "cmd/site1/")]).unwrap();
        assert_eq!(
            mapped(rules.incoming(&t("cmd/site1/reboot"))).as_deref(),
            Some("cmd/reboot")
        );
        // An "in" rule carries nothing out.
        assert_eq!(rules.outgoing(&t("cmd/reboot")), None);
    }

    #[test]
    fn directions_decide_what_crosses() {
        let rules = Rules::parse(&[
            rule("a/#", Direction::Out, "", ""),
            rule("b/#", Direction::In, "", ""),
        ])
        .unwrap();
        assert!(rules.outgoing(&t("a/1")).is_some());
        assert!(rules.incoming(&t("a/1")).is_none());
        assert!(rules.incoming(&t("b/1")).is_some());
        assert!(rules.outgoing(&t("b/1")).is_none());
        let subs = |v: Vec<(TopicFilter, QoS)>| {
            v.into_iter()
                .map(|(f, q)| (f.as_str().to_owned(), q))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            subs(rules.local_subscriptions()),
            vec![("a/#".to_owned(), QoS::AtLeastOnce)]
        );
        assert_eq!(
            subs(rules.remote_subscriptions()),
            vec![("b/#".to_owned(), QoS::AtLeastOnce)]
        );
    }

    #[test]
    fn the_first_rule_that_carries_a_topic_decides() {
        let rules = Rules::parse(&[
            rule("x/#", Direction::Out, "", "first/"),
            rule("#", Direction::Out, "", "second/"),
        ])
        .unwrap();
        assert_eq!(
            mapped(rules.outgoing(&t("x/1"))).as_deref(),
            Some("first/x/1")
        );
        assert_eq!(
            mapped(rules.outgoing(&t("y/1"))).as_deref(),
            Some("second/y/1")
        );
        // The same filter twice is subscribed once, at the higher QoS.
        let mut a = rule("s/#", Direction::Out, "", "");
        a.qos = 0;
        let mut b = rule("s/#", Direction::Both, "", "r/");
        b.qos = 2;
        let rules = Rules::parse(&[a, b]).unwrap();
        let local = rules.local_subscriptions();
        assert_eq!(local.len(), 1);
        assert_eq!(local[0].1, QoS::ExactlyOnce);
    }

    #[test]
    fn an_empty_pattern_makes_the_prefix_the_topic() {
        let rules =
            Rules::parse(&[rule("", Direction::Both, "here/status", "there/status")]).unwrap();
        assert_eq!(
            mapped(rules.outgoing(&t("here/status"))).as_deref(),
            Some("there/status")
        );
        assert_eq!(
            mapped(rules.incoming(&t("there/status"))).as_deref(),
            Some("here/status")
        );
        assert_eq!(rules.outgoing(&t("here/status/x")), None);
    }

    #[test]
    fn a_filter_matching_above_its_prefix_does_not_cross() {
        // "a/#" also matches "a", which does not start with "a/".
        let rules = Rules::parse(&[rule("#", Direction::Out, "a/", "b/")]).unwrap();
        assert_eq!(rules.outgoing(&t("a")), None);
        assert_eq!(mapped(rules.outgoing(&t("a/x"))).as_deref(), Some("b/x"));
    }

    #[test]
    fn invalid_rules_are_refused_with_the_reason() {
        let refused = |r: TopicRuleConfig| Rules::parse(&[r]).unwrap_err();
        assert!(refused(rule("a/#/b", Direction::Out, "", "")).contains("not a valid topic filter"));
        assert!(refused(rule("a", Direction::Out, "x/+/", "")).contains("wildcards"));
        assert!(refused(rule("a", Direction::Out, "", "#")).contains("remote_prefix"));
        assert!(refused(rule("", Direction::Out, "", "")).contains("not a valid topic filter"));
        assert!(refused(rule("$share/g/a", Direction::Out, "", "")).contains("shared"));
        let mut q = rule("a", Direction::Out, "", "");
        q.qos = 3;
        assert!(refused(q).contains("qos 3"));
        let e = Rules::parse(&[
            rule("a", Direction::In, "", ""),
            rule("b/#x", Direction::In, "", ""),
        ])
        .unwrap_err();
        assert!(e.starts_with("topic rule 2:"), "{e}");
    }

    #[test]
    fn expiry_crosses_as_remaining_time() {
        let mut msg = Message::new(t("a"), "x", QoS::AtMostOnce, false);
        msg.props.expires_at = Some(Instant::from_millis(15_000));
        let c = Crossing::new(msg, Instant::from_millis(5_000));
        assert_eq!(c.ttl, Some(Duration::from_secs(10)));
        let msg = c.into_message(Instant::from_millis(100));
        assert_eq!(msg.props.expires_at, Some(Instant::from_millis(10_100)));
        let c = Crossing::new(
            Message::new(t("a"), "x", QoS::AtMostOnce, false),
            Instant::ZERO,
        );
        assert_eq!(
            c.into_message(Instant::from_millis(7)).props.expires_at,
            None
        );
    }

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
        let o = remote::options(b).unwrap();
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

    #[test]
    fn warnings_are_rate_limited_and_counted() {
        let mut r = RateLimited::new(Duration::from_secs(3600));
        assert_eq!(r.hit(), Some(1));
        assert_eq!(r.hit(), None);
        assert_eq!(r.hit(), None);
        let mut r2 = RateLimited::new(Duration::ZERO);
        assert_eq!(r2.hit(), Some(1));
        assert_eq!(r2.hit(), Some(1));
    }
}
