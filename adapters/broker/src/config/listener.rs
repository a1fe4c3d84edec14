//! One `[[listener]]`: the socket, its transport and TLS settings, and the
//! checks that they fit together.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

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
    pub(super) fn check(&self) -> Result<(), ConfigError> {
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
