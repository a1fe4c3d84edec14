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

mod limits;
mod listener;

pub use crate::bridge::{BridgeConfig, BridgeProtocol, Direction, TopicRuleConfig};
pub use crate::cluster::ClusterConfig;
pub use crate::jwt::JwtConfig;
pub use limits::LimitsConfig;
pub use listener::{Listener, Protocol, TlsVersion};

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
    /// This broker as a node of a cluster on NATS JetStream (default: none,
    /// a single node); see [`ClusterConfig`].
    pub cluster: Option<ClusterConfig>,
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
    /// SCRAM credentials file (`user:SCRAM-SHA-256:…` lines, made with
    /// `mqtt-broker passwd --scram sha256|sha512 FILE USER`). Default: none.
    /// With one, 5.0 clients may authenticate with the Authentication Method
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512` (and re-authenticate with it); the
    /// user of the exchange owns the session and gets the ACL's rights.
    pub scram_file: Option<PathBuf>,
    /// JSON Web Tokens in the password field (`[auth.jwt]`; default: none);
    /// see [`JwtConfig`] for its keys and the claims it reads. With it, a
    /// password of the form of a JWT is verified as one: the token's user
    /// (who must be the CONNECT's user name, if one is given) owns the
    /// session, with the token's topics as its rights under a
    /// `topics_claim`, else the ACL's. Other passwords are checked as
    /// without it.
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
        if let Some(c) = &self.cluster {
            c.check()?;
        }
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
            // Flow control that holds for a subscriber that keeps reading,
            // however many publishers feed it (issue 17).
            pause_publishers: true,
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
