//! Mosquitto's keys, one by one, into the tables of a [`Draft`].
//!
//! A key is listener-scoped (it applies to the latest `listener`, or to the
//! default listener of `port` before any), bridge-scoped (the latest
//! `connection`), or global, as in Mosquitto. A key this broker cannot honour
//! is a [`Remark`] when leaving it out only loses a convenience, and an
//! error when leaving it out would let in clients Mosquitto would refuse
//! (plugins, per-listener authentication, client id prefixes, PSK, mount
//! points).

use super::directives::Directive;
use super::draft::{toml_string, Draft, DraftBridge, DraftListener, Source, Table};
use super::{bridges, MosquittoError, Remark};

/// Keys that set something about the latest listener.
const LISTENER_KEYS: &[&str] = &[
    "protocol",
    "cafile",
    "capath",
    "certfile",
    "keyfile",
    "require_certificate",
    "use_identity_as_username",
    "use_subject_as_username",
    "tls_version",
    "crlfile",
    "ciphers",
    "ciphers_tls1.3",
    "max_connections",
    "mount_point",
    "http_dir",
    "socket_domain",
    "bind_interface",
    "psk_hint",
    "max_topic_alias",
    "bind_address",
];

/// Keys about logging, which `-v` and `RUST_LOG` set here.
const LOG_KEYS: &[&str] = &[
    "log_dest",
    "log_type",
    "log_timestamp",
    "log_timestamp_format",
    "log_facility",
    "connection_messages",
    "websockets_log_level",
];

/// Keys whose absence would let in clients Mosquitto would refuse.
const REFUSED_KEYS: &[(&str, &str)] = &[
    (
        "plugin",
        "plugins are not supported; use [auth] files or the library's auth hook",
    ),
    (
        "auth_plugin",
        "plugins are not supported; use [auth] files or the library's auth hook",
    ),
    ("clientid_prefixes", "client id prefixes are not supported"),
    ("psk_file", "TLS pre-shared keys are not supported"),
    ("psk_hint", "TLS pre-shared keys are not supported"),
    ("mount_point", "mount points are not supported"),
    (
        "capath",
        "a CA directory is not supported; name the CA certificates in one cafile",
    ),
];

/// Reads the directives into a draft, noting what is left out.
pub(super) fn translate(
    directives: &[Directive],
    remarks: &mut Vec<Remark>,
) -> Result<Draft, MosquittoError> {
    let mut t = Translation {
        draft: Draft::default(),
        default_listener: None,
        in_listener: false,
        remarks,
    };
    for d in directives {
        t.apply(d)?;
    }
    t.finish()
}

struct Translation<'a> {
    draft: Draft,
    /// The listener of `port`, and the listener keys given before any
    /// `listener` line.
    default_listener: Option<DraftListener>,
    /// Whether a `listener` line has been seen (listener keys go to it).
    in_listener: bool,
    remarks: &'a mut Vec<Remark>,
}

impl Translation<'_> {
    fn apply(&mut self, d: &Directive) -> Result<(), MosquittoError> {
        let key = d.key.as_str();
        if let Some((_, why)) = REFUSED_KEYS.iter().find(|(k, _)| *k == key) {
            return Err(d.invalid(*why));
        }
        if key.starts_with("auth_opt_") || key.starts_with("plugin_opt_") {
            return Err(d.invalid("plugins are not supported"));
        }
        match key {
            "listener" => self.listener(d),
            "port" => self.port(d),
            "connection" => {
                let name = d.value()?.to_string();
                self.draft
                    .bridges
                    .push(DraftBridge::new(Source::of(d), name));
                Ok(())
            }
            _ if bridges::is_bridge_key(key) => match self.draft.bridges.last_mut() {
                Some(b) => bridges::apply(b, d, self.remarks),
                None => Err(d.invalid("a bridge setting before any `connection` line")),
            },
            _ if LISTENER_KEYS.contains(&key) => self.listener_key(d),
            _ if LOG_KEYS.contains(&key) => {
                self.remark(d, "ignored: logging is set with -v and RUST_LOG");
                Ok(())
            }
            _ => self.global(d),
        }
    }

    fn remark(&mut self, d: &Directive, why: &str) {
        self.remarks.push(Remark::new(d, why));
    }

    /// `listener port [address]`.
    fn listener(&mut self, d: &Directive) -> Result<(), MosquittoError> {
        let (port, address) = match d.args.as_slice() {
            [p] => (p, None),
            [p, a] => (p, Some(a.clone())),
            _ => return Err(d.invalid("expected `listener port [address]`")),
        };
        let port: u16 = port
            .parse()
            .map_err(|_| d.invalid(format!("{port:?} is not a port number")))?;
        if port == 0 {
            return Err(d.invalid("unix sockets (port 0) are not supported"));
        }
        self.draft
            .listeners
            .push(DraftListener::new(Source::of(d), port, address));
        self.in_listener = true;
        Ok(())
    }

    /// `port N`: the default listener (deprecated in Mosquitto 2, still read).
    fn port(&mut self, d: &Directive) -> Result<(), MosquittoError> {
        let port = d.number_in(1, 65535)? as u16;
        let l = self
            .default_listener
            .get_or_insert_with(|| DraftListener::new(Source::of(d), port, None));
        l.port = port;
        l.from = Source::of(d);
        Ok(())
    }

    fn listener_key(&mut self, d: &Directive) -> Result<(), MosquittoError> {
        if d.key == "max_topic_alias" {
            // Mosquitto's per-listener cap on the aliases a client may use;
            // here one limit for every listener (the last one read wins).
            let n = d.number_in(0, 65535)?;
            self.draft
                .limits
                .set("topic_alias_maximum", n.to_string(), d);
            self.remark(d, "applies to every listener here");
            return Ok(());
        }
        let l = if self.in_listener {
            self.draft
                .listeners
                .last_mut()
                .expect("a listener was seen")
        } else {
            self.default_listener
                .get_or_insert_with(|| DraftListener::new(Source::of(d), 0, None))
        };
        listener_setting(l, d, self.remarks)
    }

    fn finish(mut self) -> Result<Draft, MosquittoError> {
        if let Some(l) = self.default_listener.take() {
            if l.port == 0 {
                self.remarks.push(Remark::at(
                    &l.from,
                    "ignored: listener settings without a `port` or `listener` line",
                ));
            } else {
                self.draft.listeners.insert(0, l);
            }
        }
        let limits: Option<i64> = self
            .draft
            .listeners
            .iter()
            .map(|l| l.max_connections.filter(|&n| n >= 0))
            .sum();
        if let Some(n) = limits.filter(|_| !self.draft.listeners.is_empty()) {
            let from = self.draft.listeners[0].from.clone();
            self.draft
                .limits
                .set_from("max_connections", n.to_string(), from);
        }
        self.finish_persistence();
        Ok(self.draft)
    }

    /// Mosquitto persists only with `persistence true` (default false), in
    /// `persistence_location` or else the working directory.
    fn finish_persistence(&mut self) {
        let p = &mut self.draft.persistence;
        match p.get("enabled") {
            Some("true") => {
                if p.get("path").is_none() {
                    let from = p.settings()[0].from.clone();
                    p.set_from("path", toml_string("."), from);
                }
            }
            Some(_) => {}
            None => *p = Table::default(),
        }
    }
}

/// One listener-scoped key.
fn listener_setting(
    l: &mut DraftListener,
    d: &Directive,
    remarks: &mut Vec<Remark>,
) -> Result<(), MosquittoError> {
    match d.key.as_str() {
        "protocol" => match d.value()? {
            "mqtt" => l.websockets = false,
            "websockets" => l.websockets = true,
            v => return Err(d.invalid(format!("protocol {v:?} is not mqtt or websockets"))),
        },
        "bind_address" => l.address = Some(d.value()?.to_string()),
        "socket_domain" => match d.value()? {
            "ipv4" => l.ipv6 = false,
            "ipv6" => l.ipv6 = true,
            v => return Err(d.invalid(format!("socket_domain {v:?} is not ipv4 or ipv6"))),
        },
        "cafile" | "certfile" | "keyfile" => {
            let key = match d.key.as_str() {
                "cafile" => "cafile",
                "certfile" => "certfile",
                _ => "keyfile",
            };
            l.table.set_str(key, d.text()?, d);
        }
        "require_certificate" => l
            .table
            .set("require_certificate", d.boolean()?.to_string(), d),
        "max_connections" => l.max_connections = Some(d.number_in(-1, i64::from(u32::MAX))?),
        "use_identity_as_username" => {
            l.table
                .set("use_identity_as_username", d.boolean()?.to_string(), d)
        }
        "use_subject_as_username" => {
            l.table
                .set("use_subject_as_username", d.boolean()?.to_string(), d)
        }
        "crlfile" => l.table.set_str("crlfile", d.text()?, d),
        "tls_version" => match d.value()? {
            v @ ("tlsv1.2" | "tlsv1.3") => l.table.set_str("tls_version", v, d),
            // Older versions are never offered: 1.2 is the least.
            "tlsv1.1" | "tlsv1" => remarks.push(Remark::new(
                d,
                "TLS older than 1.2 is never offered: tlsv1.2 is used",
            )),
            v => return Err(d.invalid(format!("tls_version {v:?} is not tlsv1.2 or tlsv1.3"))),
        },
        "ciphers" | "ciphers_tls1.3" => remarks.push(Remark::new(
            d,
            "ignored: the TLS library's safe cipher suites are always used",
        )),
        "http_dir" => remarks.push(Remark::new(d, "ignored: no HTTP file serving")),
        "bind_interface" => remarks.push(Remark::new(
            d,
            "ignored: bind to the interface's address with `listener port address`",
        )),
        other => return Err(d.invalid(format!("{other} is not a listener setting"))),
    }
    Ok(())
}

impl Translation<'_> {
    /// A global key.
    fn global(&mut self, d: &Directive) -> Result<(), MosquittoError> {
        let draft = &mut self.draft;
        match d.key.as_str() {
            "allow_anonymous" => draft
                .auth
                .set("allow_anonymous", d.boolean()?.to_string(), d),
            "password_file" => draft.auth.set_str("password_file", d.text()?, d),
            "acl_file" => draft.auth.set_str("acl_file", d.text()?, d),
            "per_listener_settings" => {
                if d.boolean()? {
                    return Err(d.invalid(
                        "per-listener authentication is not supported: one [auth] applies to every listener",
                    ));
                }
            }
            "persistence" => draft
                .persistence
                .set("enabled", d.boolean()?.to_string(), d),
            "persistence_location" => draft.persistence.set_str("path", d.text()?, d),
            "sys_interval" => draft
                .sys
                .set("interval", d.number_in(0, 1 << 31)?.to_string(), d),
            "persistent_client_expiration" => {
                let secs = expiration_seconds(d)?;
                draft.limits.set("max_session_expiry", secs.to_string(), d);
            }
            _ => return super::limits::apply(&mut draft.limits, d, self.remarks),
        }
        Ok(())
    }
}

/// `persistent_client_expiration`: a number and a unit (h, d, w, m, y).
fn expiration_seconds(d: &Directive) -> Result<u32, MosquittoError> {
    let v = d.value()?;
    let (n, unit) = v.split_at(v.len().saturating_sub(1));
    let n: u64 = n
        .parse()
        .map_err(|_| d.invalid(format!("{v:?} is not a number and a unit (h, d, w, m, y)")))?;
    let unit_secs: u64 = match unit {
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "m" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(d.invalid(format!("{v:?}: the unit is one of h, d, w, m, y"))),
    };
    Ok(n.saturating_mul(unit_secs).min(u64::from(u32::MAX)) as u32)
}
