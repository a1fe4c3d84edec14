//! The broker's configuration file (TOML) and its built-in defaults.
//!
//! Every field is optional; a missing one takes the default documented on it.
//! With no file at all the broker listens on 127.0.0.1:1883 only and lets
//! anonymous clients in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mqtt_codec::QoS;
use mqtt_router::broker::{BrokerConfig, ClientLimits, QueueFullPolicy};
use mqtt_session::{Limits, ServerConfig};
use serde::Deserialize;

pub use crate::bridge::{BridgeConfig, BridgeProtocol, Direction, TopicRuleConfig};
pub use crate::jwt::JwtConfig;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listeners; default: one MQTT/TCP listener on 127.0.0.1:1883.
    #[serde(rename = "listener")]
    pub listeners: Vec<Listener>,
    /// Limits; see [`LimitsConfig`].
    pub limits: LimitsConfig,
    /// `$SYS` publication.
    pub sys: SysConfig,
    /// The metrics and health HTTP listener; see [`HttpConfig`].
    pub http: HttpConfig,
    /// Logging; see [`LogConfig`].
    pub log: LogConfig,
    /// Where sessions, queued messages and retained messages survive a
    /// restart; see [`PersistenceConfig`].
    pub persistence: PersistenceConfig,
    /// Password and ACL files; see [`AuthConfig`].
    pub auth: AuthConfig,
    /// Bridges to other brokers (`[[bridge]]`; default: none); see
    /// [`BridgeConfig`].
    #[serde(rename = "bridge")]
    pub bridges: Vec<BridgeConfig>,
}

/// One listening socket.
///
/// ```toml
/// [[listener]]            # MQTT over TLS, clients must show a certificate
/// bind = "0.0.0.0:8883"
/// protocol = "mqtts"
/// certfile = "/etc/mqtt/server.crt"
/// keyfile = "/etc/mqtt/server.key"
/// cafile = "/etc/mqtt/ca.crt"
/// require_certificate = true
///
/// [[listener]]            # MQTT over WebSocket
/// bind = "0.0.0.0:8080"
/// protocol = "ws"
/// path = "/mqtt"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Address and port to bind, e.g. `"127.0.0.1:1883"` or `"[::]:1883"`.
    pub bind: SocketAddr,
    /// Transport (default `"mqtt"`); see [`Protocol`].
    #[serde(default)]
    pub protocol: Protocol,
    /// The server's certificate chain, PEM, leaf first (required for
    /// `"mqtts"` and `"wss"`; no default).
    #[serde(default)]
    pub certfile: Option<PathBuf>,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1; required for
    /// `"mqtts"` and `"wss"`; no default).
    #[serde(default)]
    pub keyfile: Option<PathBuf>,
    /// Certificate authorities, PEM, that client certificates are verified
    /// against (TLS listeners only; default: none, client certificates are
    /// not asked for). With it and `require_certificate = false`, a client
    /// may connect without a certificate, but one it shows must verify.
    #[serde(default)]
    pub cafile: Option<PathBuf>,
    /// Whether a client must show a certificate that verifies against
    /// `cafile` (default false; `true` needs `cafile`).
    #[serde(default)]
    pub require_certificate: bool,
    /// The HTTP path WebSocket clients connect to (`"ws"` and `"wss"`
    /// listeners; default `"/mqtt"`). Other paths get HTTP 404.
    #[serde(default = "default_path")]
    pub path: String,
    /// The least TLS version a client may use (TLS listeners; default
    /// `"tlsv1.2"`, which allows 1.2 and 1.3); see [`TlsVersion`].
    #[serde(default)]
    pub tls_version: TlsVersion,
    /// Certificate revocation lists, PEM, checked against the client's
    /// certificate (needs `cafile`; default: none). A client whose
    /// certificate is listed is refused during the handshake, and so is
    /// one whose issuer has no list in the file.
    #[serde(default)]
    pub crlfile: Option<PathBuf>,
    /// Whether the Common Name of the client's certificate becomes its user
    /// name (needs `require_certificate = true`; default false). It wins
    /// over `use_subject_as_username`, as in Mosquitto. A certificate
    /// without a Common Name is refused.
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// Whether the whole subject of the client's certificate, in RFC 2253
    /// form as Mosquitto writes it (`CN=alice,O=Example,C=GB`), becomes its
    /// user name (needs `require_certificate = true`; default false).
    #[serde(default)]
    pub use_subject_as_username: bool,
}

/// The least TLS version of a listener, as Mosquitto's `tls_version` names
/// it. TLS 1.1 and older are not offered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TlsVersion {
    /// `"tlsv1.2"`: TLS 1.2 and 1.3 (the default).
    #[default]
    #[serde(rename = "tlsv1.2")]
    Tls12,
    /// `"tlsv1.3"`: TLS 1.3 only.
    #[serde(rename = "tlsv1.3")]
    Tls13,
}

/// The transport a [`Listener`] speaks, as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `"mqtt"`: MQTT over TCP (the default; port 1883 by convention).
    #[default]
    Mqtt,
    /// `"mqtts"`: MQTT over TLS (port 8883 by convention); needs `certfile`
    /// and `keyfile`.
    Mqtts,
    /// `"ws"`: MQTT over WebSocket, subprotocol `mqtt`, at `path`.
    Ws,
    /// `"wss"`: MQTT over WebSocket over TLS; needs `certfile` and `keyfile`.
    Wss,
}

impl Protocol {
    /// Whether the transport runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Mqtts | Protocol::Wss)
    }

    /// Whether the transport is WebSocket.
    pub fn is_websocket(self) -> bool {
        matches!(self, Protocol::Ws | Protocol::Wss)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Mqtt => "mqtt",
            Protocol::Mqtts => "mqtts",
            Protocol::Ws => "ws",
            Protocol::Wss => "wss",
        })
    }
}

impl Listener {
    /// A plain MQTT/TCP listener on `bind`.
    pub fn tcp(bind: SocketAddr) -> Listener {
        Listener {
            bind,
            protocol: Protocol::Mqtt,
            certfile: None,
            keyfile: None,
            cafile: None,
            require_certificate: false,
            path: default_path(),
            tls_version: TlsVersion::default(),
            crlfile: None,
            use_identity_as_username: false,
            use_subject_as_username: false,
        }
    }

    /// Which part of a client certificate becomes the user name.
    pub(crate) fn username_from_certificate(&self) -> crate::tls::UsernameFrom {
        use crate::tls::UsernameFrom;
        if self.use_identity_as_username {
            UsernameFrom::CommonName
        } else if self.use_subject_as_username {
            UsernameFrom::Subject
        } else {
            UsernameFrom::Nothing
        }
    }

    /// Whether the fields fit together for the protocol (files are read
    /// only when the broker starts).
    fn check(&self) -> Result<(), ConfigError> {
        let at = |what: String| ConfigError::Invalid(format!("listener {}: {what}", self.bind));
        if self.protocol.is_tls() {
            if self.certfile.is_none() || self.keyfile.is_none() {
                return Err(at(format!(
                    "protocol \"{}\" needs certfile and keyfile",
                    self.protocol
                )));
            }
            if self.require_certificate && self.cafile.is_none() {
                return Err(at("require_certificate = true needs cafile".into()));
            }
            if self.crlfile.is_some() && self.cafile.is_none() {
                return Err(at("crlfile needs cafile".into()));
            }
            if (self.use_identity_as_username || self.use_subject_as_username)
                && !self.require_certificate
            {
                return Err(at(
                    "use_identity_as_username and use_subject_as_username need require_certificate = true"
                        .into(),
                ));
            }
        } else if self.certfile.is_some()
            || self.keyfile.is_some()
            || self.cafile.is_some()
            || self.require_certificate
            || self.crlfile.is_some()
            || self.tls_version != TlsVersion::default()
            || self.use_identity_as_username
            || self.use_subject_as_username
        {
            return Err(at(format!(
                "TLS settings on a \"{}\" listener (use \"mqtts\" or \"wss\")",
                self.protocol
            )));
        }
        if !self.path.starts_with('/') {
            return Err(at(format!("path {:?} must start with '/'", self.path)));
        }
        Ok(())
    }
}

fn default_path() -> String {
    "/mqtt".to_string()
}

/// Limits, each with its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most client connections at once (default 10000).
    pub max_connections: usize,
    /// Largest packet accepted, in bytes, fixed header included (default 1 MiB).
    pub max_packet_size: u32,
    /// QoS 1/2 messages in flight to one client (default 100).
    pub max_inflight: u16,
    /// QoS 1/2 messages from one client unacknowledged at once, announced as
    /// Receive Maximum (default 100).
    pub receive_maximum: u16,
    /// Messages queued per client beyond the in-flight window, online or
    /// offline (default 1000).
    pub max_queued_messages: usize,
    /// Of those, QoS 0 messages waiting for a connected client (default
    /// 1000): QoS 0 publishers cannot be slowed down by holding their
    /// acknowledgements, so this bounds what a subscriber that cannot keep up
    /// costs at QoS 0; the rest is dropped and counted, as Mosquitto does.
    pub max_queued_qos0_messages: usize,
    /// Bytes (topics, payloads, properties) the queued messages of one
    /// session may hold, beside their count; past it the `queue_full`
    /// policy applies as for the count (default 16 MiB; Mosquitto's
    /// `max_queued_bytes`, unlimited there by default).
    pub max_queued_bytes: usize,
    /// What to drop when a queue is full: `"oldest"` (default) or `"new"`.
    pub queue_full: String,
    /// Subscriptions one client may hold, shared ones included; more are
    /// refused with SUBACK 0x97 (3.1.1: 0x80). Default 10000.
    pub max_subscriptions_per_client: usize,
    /// Shared-subscription groups one client may join; more are refused
    /// with SUBACK 0x97 (3.1.1: 0x80). Default 100.
    pub max_shared_groups_per_client: usize,
    /// Levels in a topic name or filter (default 200, Mosquitto's fixed
    /// limit): filter past it, SUBACK 0x8F (3.1.1: 0x80); PUBLISH, PUBACK
    /// 0x90 (3.1.1: not forwarded); will, CONNACK 0x90 (3.1.1: closed).
    pub max_topic_levels: usize,
    /// User properties in one PUBLISH or will (default 100); past it 0x97.
    pub max_user_properties: usize,
    /// Bytes of properties (user properties, content type, response topic,
    /// correlation data) in one PUBLISH or will (default 64 KiB); past it 0x97.
    pub max_property_bytes: usize,
    /// Bytes (topic, payload, properties) of all retained messages
    /// (default 512 MiB); past it a retained publish gets 0x97 (3.1.1: not
    /// retained, counted).
    pub max_retained_bytes: usize,
    /// The same, for the retained messages one client identifier set
    /// (default 64 MiB).
    pub max_retained_bytes_per_client: usize,
    /// Bytes queued for all absent clients together (default 1 GiB); past
    /// it a message for an absent client is not queued (counted as dropped).
    pub max_offline_bytes: usize,
    /// Persistent sessions, connected or not (default 100000); a CONNECT
    /// that would create one more is refused with CONNACK 0x97 (3.1.1:
    /// 0x03 Server unavailable).
    pub max_persistent_sessions: usize,
    /// Highest topic alias a 5.0 client may use (default 16; 0: none).
    pub topic_alias_maximum: u16,
    /// Most topic aliases the broker assigns to the topics it sends a 5.0
    /// client that announces a Topic Alias Maximum (the smaller of the two
    /// applies; least recently used topics give way). Default 16; 0: none.
    pub outbound_topic_alias_maximum: u16,
    /// Highest keep alive granted, in seconds; 5.0 clients asking for more or
    /// for none get this (default 3600).
    pub max_keep_alive: u16,
    /// Seconds a client has to send CONNECT (default 10).
    pub connect_timeout: u64,
    /// Longest session expiry interval granted, in seconds (default 86400;
    /// 3.1.1 persistent sessions expire after this too).
    pub max_session_expiry: u32,
    /// Most retained messages kept (default 100000).
    pub max_retained: usize,
    /// Largest retained payload kept, in bytes (default 256 KiB).
    pub max_retained_payload: usize,
    /// Highest QoS accepted from publishers (default 2).
    pub maximum_qos: u8,
    /// Whether retained messages are accepted (default true).
    pub retain_available: bool,
    /// Whether control characters (U+0001–U+001F, U+007F–U+009F) are
    /// accepted in client identifiers, user names, will topics, topic names
    /// and topic filters (default false: refused as malformed, which section
    /// 1.5.4 allows, as Mosquitto does).
    pub allow_control_characters: bool,
    /// Whether reads are taken in the order their sockets became ready,
    /// across connections (default false: the order costs a third of
    /// fan-out throughput today; see DESIGN.md, "Order across connections").
    pub order_across_connections: bool,
    /// Seconds a packet may stay partly received without a byte of progress
    /// before a client with keep alive 0 is dropped (default 30; 5.0
    /// clients get DISCONNECT 0x8D, the will is published; with a keep
    /// alive, the keep alive bounds it).
    pub partial_packet_timeout: u64,
    /// Seconds a write to a client may make no progress (the client does
    /// not read) before the connection is dropped, as if the network failed
    /// (default 30; the will is published). A connection the broker closed
    /// is dropped after at most 5 seconds of such a write.
    pub write_timeout: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        // The core's defaults are the operator's defaults.
        let core = ClientLimits::default();
        LimitsConfig {
            max_connections: 10_000,
            max_packet_size: 1024 * 1024,
            max_inflight: 100,
            receive_maximum: 100,
            max_queued_messages: 1000,
            max_queued_qos0_messages: 1000,
            max_queued_bytes: mqtt_router::broker::DEFAULT_MAX_QUEUED_BYTES,
            queue_full: "oldest".to_string(),
            max_subscriptions_per_client: core.max_subscriptions,
            max_shared_groups_per_client: core.max_shared_groups,
            max_topic_levels: core.max_topic_levels,
            max_user_properties: core.max_user_properties,
            max_property_bytes: core.max_property_bytes,
            max_retained_bytes: core.max_retained_bytes,
            max_retained_bytes_per_client: core.max_retained_bytes_per_client,
            max_offline_bytes: core.max_offline_bytes,
            max_persistent_sessions: core.max_persistent_sessions,
            topic_alias_maximum: 16,
            outbound_topic_alias_maximum: 16,
            max_keep_alive: 3600,
            connect_timeout: 10,
            max_session_expiry: 86_400,
            max_retained: 100_000,
            max_retained_payload: 256 * 1024,
            maximum_qos: 2,
            retain_available: true,
            allow_control_characters: false,
            order_across_connections: false,
            partial_packet_timeout: 30,
            write_timeout: 30,
        }
    }
}

/// `$SYS/broker/...` statistics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SysConfig {
    /// Seconds between publications (default 10; 0 turns them off).
    pub interval: u64,
}

impl Default for SysConfig {
    fn default() -> Self {
        SysConfig { interval: 10 }
    }
}

/// What the broker logs, and how.
///
/// ```toml
/// [log]
/// level = "info"      # or "debug", or a filter such as "info,mqtt_broker=debug"
/// format = "json"     # one JSON object per line
/// ```
///
/// `-v` sets the level to `debug`; `RUST_LOG`, when set, overrides both.
/// The level is read again on SIGHUP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The level or filter directives (default `"info"`), as `RUST_LOG`
    /// takes them: `error`, `warn`, `info`, `debug`, `trace`, with
    /// per-module parts.
    pub level: String,
    /// `"text"` (the default, for people) or `"json"` (for log collectors);
    /// `--log-format` overrides it. Read at start only.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not text or json")),
        }
    }
}

/// The HTTP listener for metrics and health checks: `GET /metrics`
/// (Prometheus text format), `GET /healthz` (200 while the core task is
/// turning, 503 when it has not for 5 s), `GET /readyz` (200 once the
/// listeners are bound and the store is open, 503 while starting or
/// stopping). Off by default; it has no authentication, so bind it to an
/// address only the monitoring system reaches.
///
/// ```toml
/// [http]
/// bind = "127.0.0.1:9090"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address and port (default: none, no HTTP listener).
    pub bind: Option<SocketAddr>,
}

/// The durable store: with a `path`, persistent sessions (with their
/// subscriptions, queued and in-flight QoS 1/2 messages and incoming QoS 2
/// state), retained messages and delayed wills survive a restart and a
/// crash, and an acknowledgement is sent only once what it promises is on
/// disk. Without one the broker keeps everything in memory (and says so at
/// start).
///
/// ```toml
/// [persistence]
/// path = "/var/lib/mqtt-broker"   # a directory; the store is broker.redb in it
/// enabled = true                  # false: in memory, even with a path
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistenceConfig {
    /// The data directory (created if missing; default: none, in memory).
    pub path: Option<PathBuf>,
    /// Whether to use it (default true).
    pub enabled: bool,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        PersistenceConfig {
            path: None,
            enabled: true,
        }
    }
}

impl PersistenceConfig {
    /// The data directory in force: `path` unless turned off.
    pub fn data_dir(&self) -> Option<&Path> {
        self.path.as_deref().filter(|_| self.enabled)
    }
}

/// Who may connect, publish and subscribe: Mosquitto's `allow_anonymous`,
/// `password_file` and `acl_file`, whose files are read as they are (see
/// [`crate::passwd`] and [`crate::acl`]). Relative paths are taken from the
/// broker's working directory. A missing or invalid file stops the broker at
/// start, naming the file and line.
///
/// ```toml
/// [auth]
/// password_file = "/etc/mqtt/passwd"   # made with `mqtt-broker passwd` or mosquitto_passwd
/// acl_file = "/etc/mqtt/acl"
/// allow_anonymous = false              # the default once password_file is set
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Whether clients that give no user name may connect. Default: true
    /// without a `password_file` (the built-in open setup), false with one
    /// (the broker says which at start-up). Refused clients get CONNACK 0x87
    /// Not Authorized (3.1.1: return code 5).
    pub allow_anonymous: Option<bool>,
    /// Password file, `user:hash` lines in Mosquitto's `$7$` (PBKDF2-SHA512)
    /// or `$6$` (SHA-512) format. Default: none, and user names are then not
    /// checked. With one, a client giving a user name must give that user's
    /// password, or gets CONNACK 0x86 Bad User Name or Password (3.1.1:
    /// return code 4).
    pub password_file: Option<PathBuf>,
    /// ACL file in Mosquitto's format (`user`, `topic`, `pattern` lines).
    /// Default: none, everyone may publish and subscribe to every topic. With
    /// one, only what it grants is allowed.
    pub acl_file: Option<PathBuf>,
    /// Most password checks (and enhanced authentication steps) running at
    /// once, off the core task. Default: 8. More CONNECTs wait their turn
    /// (bounded by the connection limit, and each by `connect_timeout`).
    pub max_concurrent_checks: Option<usize>,
    /// JSON Web Tokens in the password field (`[auth.jwt]`; default: none);
    /// see [`JwtConfig`] for its keys and the claims it reads. Checked at
    /// start; the verifier is [`crate::jwt::JwtVerifier`].
    pub jwt: Option<JwtConfig>,
}

impl AuthConfig {
    /// The number of checks that may run at once: the setting or 8, at least 1.
    pub fn max_concurrent_checks(&self) -> usize {
        self.max_concurrent_checks.unwrap_or(8).max(1)
    }

    /// Whether anonymous clients are let in: the setting, or its default.
    pub fn allow_anonymous(&self) -> bool {
        self.allow_anonymous.unwrap_or(self.password_file.is_none())
    }
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Reads a configuration from TOML text (errors name `<string>` as the file).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Self::parse(text, Path::new("<string>"))
    }

    fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        for l in &self.listeners {
            l.check()?;
        }
        let l = &self.limits;
        if l.maximum_qos > 2 {
            return Err(ConfigError::Invalid(
                "limits.maximum_qos must be 0, 1 or 2".into(),
            ));
        }
        if l.max_inflight == 0 || l.receive_maximum == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_inflight and limits.receive_maximum must be at least 1".into(),
            ));
        }
        if l.max_packet_size < 64 {
            return Err(ConfigError::Invalid(
                "limits.max_packet_size must be at least 64".into(),
            ));
        }
        if l.max_topic_levels == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_topic_levels must be at least 1".into(),
            ));
        }
        if l.partial_packet_timeout == 0 || l.write_timeout == 0 {
            return Err(ConfigError::Invalid(
                "limits.partial_packet_timeout and limits.write_timeout must be at least 1 second"
                    .into(),
            ));
        }
        if !matches!(l.queue_full.as_str(), "oldest" | "new") {
            return Err(ConfigError::Invalid(
                "limits.queue_full must be \"oldest\" or \"new\"".into(),
            ));
        }
        if let Some(jwt) = &self.auth.jwt {
            jwt.check()
                .map_err(|e| ConfigError::Invalid(format!("auth.jwt: {e}")))?;
        }
        crate::bridge::check_all(&self.bridges)?;
        Ok(())
    }

    /// The listeners, or the built-in default one.
    pub fn listeners(&self) -> Vec<Listener> {
        if self.listeners.is_empty() {
            vec![Listener::tcp(SocketAddr::from(([127, 0, 0, 1], 1883)))]
        } else {
            self.listeners.clone()
        }
    }

    /// The broker core's configuration.
    pub fn broker_config(&self, seed: u64) -> BrokerConfig {
        let l = &self.limits;
        let limits = Limits {
            receive_maximum: l.receive_maximum,
            max_packet_size: l.max_packet_size,
            topic_alias_maximum: l.topic_alias_maximum,
            max_inflight: l.max_inflight,
            max_queued: l.max_queued_messages,
            max_queued_qos0: l.max_queued_qos0_messages,
            max_queued_bytes: l.max_queued_bytes,
            outbound_topic_alias_maximum: l.outbound_topic_alias_maximum,
        };
        let server = ServerConfig {
            limits,
            connect_timeout: Duration::from_secs(l.connect_timeout),
            maximum_qos: QoS::from_u8(l.maximum_qos).unwrap_or(QoS::ExactlyOnce),
            retain_available: l.retain_available,
            max_keep_alive: Some(l.max_keep_alive).filter(|&k| k > 0),
            allow_control_characters: l.allow_control_characters,
            partial_packet_timeout: Duration::from_secs(l.partial_packet_timeout),
        };
        BrokerConfig {
            seed,
            server,
            max_connections: l.max_connections,
            max_session_expiry: l.max_session_expiry,
            max_retained: l.max_retained,
            max_retained_payload: l.max_retained_payload,
            queue_full: if l.queue_full == "new" {
                QueueFullPolicy::DropNew
            } else {
                QueueFullPolicy::DropOldest
            },
            sys_interval: (self.sys.interval > 0).then(|| Duration::from_secs(self.sys.interval)),
            version: format!("mqtt-broker {}", env!("CARGO_PKG_VERSION")),
            limits: ClientLimits {
                max_subscriptions: l.max_subscriptions_per_client,
                max_shared_groups: l.max_shared_groups_per_client,
                max_topic_levels: l.max_topic_levels,
                max_user_properties: l.max_user_properties,
                max_property_bytes: l.max_property_bytes,
                max_retained_bytes: l.max_retained_bytes,
                max_retained_bytes_per_client: l.max_retained_bytes_per_client,
                max_offline_bytes: l.max_offline_bytes,
                max_persistent_sessions: l.max_persistent_sessions,
            },
            ..BrokerConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_the_safe_defaults() {
        let c: Config = toml::from_str("").unwrap();
        let l = c.listeners();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].bind, SocketAddr::from(([127, 0, 0, 1], 1883)));
        assert_eq!(
            c.broker_config(1).server.limits.max_packet_size,
            1024 * 1024
        );
    }

    #[test]
    fn the_isolation_limits_reach_the_core() {
        let c: Config = toml::from_str(
            "[limits]\nmax_subscriptions_per_client = 7\nmax_topic_levels = 9\n\
             max_queued_bytes = 4096\nmax_persistent_sessions = 3",
        )
        .unwrap();
        let b = c.broker_config(1);
        assert_eq!(b.limits.max_subscriptions, 7);
        assert_eq!(b.limits.max_topic_levels, 9);
        assert_eq!(b.limits.max_persistent_sessions, 3);
        assert_eq!(b.server.limits.max_queued_bytes, 4096);
        // What is not set keeps the core's default.
        assert_eq!(
            b.limits.max_shared_groups,
            ClientLimits::default().max_shared_groups
        );
        let c: Config = toml::from_str("[limits]\nmax_topic_levels = 0").unwrap();
        assert!(c.check().is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("[limits]\nmax_packets = 1").is_err());
        let c: Config = toml::from_str("[limits]\nmaximum_qos = 3").unwrap();
        assert!(c.check().is_err());
        assert!(toml::from_str::<Config>(
            "[[listener]]\nbind = \"127.0.0.1:9\"\nprotocol = \"quic\""
        )
        .is_err());
    }

    fn listener(extra: &str) -> Result<Config, ConfigError> {
        Config::from_toml(&format!("[[listener]]\nbind = \"127.0.0.1:9\"\n{extra}"))
    }

    #[test]
    fn every_listener_kind_is_read_with_its_defaults() {
        let c = listener("").unwrap();
        assert_eq!(c.listeners()[0].protocol, Protocol::Mqtt);
        let c = listener("protocol = \"ws\"").unwrap();
        assert_eq!(c.listeners()[0].protocol, Protocol::Ws);
        assert_eq!(c.listeners()[0].path, "/mqtt");
        let c = listener("protocol = \"ws\"\npath = \"/\"").unwrap();
        assert_eq!(c.listeners()[0].path, "/");
        for p in ["mqtts", "wss"] {
            let c = listener(&format!(
                "protocol = \"{p}\"\ncertfile = \"s.crt\"\nkeyfile = \"s.key\"\n\
                 cafile = \"ca.crt\"\nrequire_certificate = true"
            ))
            .unwrap();
            let l = &c.listeners()[0];
            assert!(l.protocol.is_tls());
            assert_eq!(l.protocol.to_string(), p);
            assert_eq!(l.certfile.as_deref(), Some(Path::new("s.crt")));
            assert!(l.require_certificate);
        }
    }

    #[test]
    fn listener_fields_that_do_not_fit_are_refused() {
        let refused = |extra: &str| {
            let e = listener(extra).unwrap_err().to_string();
            assert!(e.contains("listener 127.0.0.1:9"), "{e}");
            e
        };
        assert!(refused("protocol = \"mqtts\"\ncertfile = \"s.crt\"").contains("keyfile"));
        assert!(refused("protocol = \"wss\"\nkeyfile = \"s.key\"").contains("certfile"));
        assert!(refused(
            "protocol = \"mqtts\"\ncertfile = \"s\"\nkeyfile = \"k\"\nrequire_certificate = true"
        )
        .contains("cafile"));
        assert!(refused("certfile = \"s.crt\"").contains("mqtts"));
        assert!(refused("protocol = \"ws\"\ncafile = \"ca.crt\"").contains("TLS"));
        assert!(refused("protocol = \"ws\"\npath = \"mqtt\"").contains("path"));
    }

    #[test]
    fn certificate_identity_keys_are_read_and_must_fit() {
        let tls = "protocol = \"mqtts\"\ncertfile = \"s\"\nkeyfile = \"k\"\ncafile = \"ca\"\n";
        let c = listener(&format!(
            "{tls}require_certificate = true\nuse_identity_as_username = true\n\
             tls_version = \"tlsv1.3\"\ncrlfile = \"crl.pem\""
        ))
        .unwrap();
        let l = &c.listeners()[0];
        assert_eq!(l.tls_version, TlsVersion::Tls13);
        assert_eq!(l.crlfile.as_deref(), Some(Path::new("crl.pem")));
        assert_eq!(
            l.username_from_certificate(),
            crate::tls::UsernameFrom::CommonName
        );
        let e = listener(&format!("{tls}use_subject_as_username = true"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("require_certificate"), "{e}");
        let e =
            listener("protocol = \"mqtts\"\ncertfile = \"s\"\nkeyfile = \"k\"\ncrlfile = \"c\"")
                .unwrap_err()
                .to_string();
        assert!(e.contains("crlfile needs cafile"), "{e}");
        assert!(listener("tls_version = \"tlsv1.3\"")
            .unwrap_err()
            .to_string()
            .contains("TLS settings"));
        // TLS 1.1 is not offered.
        assert!(listener(&format!("{tls}tls_version = \"tlsv1.1\"")).is_err());
    }

    #[test]
    fn the_jwt_section_is_read_and_checked() {
        let c = Config::from_toml(
            "[auth.jwt]\nsecret = \"0123456789abcdef0123456789abcdef\"\n\
             topics_claim = \"mqtt\"\naudience = \"broker\"",
        )
        .unwrap();
        let jwt = c.auth.jwt.unwrap();
        assert_eq!(jwt.username_claim, "sub");
        assert_eq!(jwt.leeway_secs, 30);
        assert!(jwt.require_exp);
        assert_eq!(jwt.topics_claim.as_deref(), Some("mqtt"));
        let e = Config::from_toml("[auth.jwt]\nsecret = \"short\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.jwt") && e.contains("32"), "{e}");
        assert!(Config::from_toml("[auth.jwt]\nsecrets = \"x\"").is_err());
        let e = Config::from_toml("[auth.jwt]\nusername_claim = \"u\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one"), "{e}");
    }
}
