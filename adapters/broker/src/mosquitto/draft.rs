//! What a Mosquitto configuration says, gathered per TOML table before it
//! is written out: settings as TOML values with the line they came from.

use std::path::PathBuf;

use super::directives::Directive;
use super::MosquittoError;

/// Where a setting came from: the file, the line and the line's text, so
/// the TOML written out says which Mosquitto line each value stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Source {
    pub(super) file: PathBuf,
    pub(super) line: usize,
    pub(super) text: String,
}

impl Source {
    /// An error about this source's line.
    pub(super) fn invalid(&self, key: &str, why: impl Into<String>) -> MosquittoError {
        MosquittoError::Invalid {
            file: self.file.clone(),
            line: self.line,
            key: key.to_string(),
            why: why.into(),
        }
    }

    pub(super) fn of(d: &Directive) -> Source {
        Source {
            file: d.file.clone(),
            line: d.line,
            text: format!("{} {}", d.key, d.rest).trim().to_string(),
        }
    }
}

/// One `key = value` of the TOML, the value already a TOML literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    pub(super) key: &'static str,
    pub(super) value: String,
    pub(super) from: Source,
}

/// The settings of one TOML table, in the order they were first given; a
/// key given again replaces its value (Mosquitto: the last line wins), so
/// the TOML never holds a key twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Table {
    settings: Vec<Setting>,
}

impl Table {
    /// Sets `key` to the TOML literal `value`.
    pub(super) fn set(&mut self, key: &'static str, value: String, d: &Directive) {
        self.set_from(key, value, Source::of(d));
    }

    /// Sets `key` to the TOML literal `value`, from a source other than one line.
    pub(super) fn set_from(&mut self, key: &'static str, value: String, from: Source) {
        let setting = Setting { key, value, from };
        match self.settings.iter_mut().find(|s| s.key == key) {
            Some(s) => *s = setting,
            None => self.settings.push(setting),
        }
    }

    /// Sets `key` to the string `value`, quoted for TOML.
    pub(super) fn set_str(&mut self, key: &'static str, value: &str, d: &Directive) {
        self.set(key, toml_string(value), d);
    }

    /// The TOML literal of `key`, if set.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }

    /// Every setting, in order.
    pub(super) fn settings(&self) -> &[Setting] {
        &self.settings
    }

    pub(super) fn is_empty(&self) -> bool {
        self.settings.is_empty()
    }
}

/// A string as a TOML basic string, escaped.
pub(super) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One `listener port [address]` (or the default listener of `port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DraftListener {
    pub(super) from: Source,
    pub(super) port: u16,
    /// The address to bind; `None`: every interface.
    pub(super) address: Option<String>,
    pub(super) websockets: bool,
    pub(super) ipv6: bool,
    /// `max_connections` of this listener (`-1`: no limit).
    pub(super) max_connections: Option<i64>,
    pub(super) table: Table,
}

impl DraftListener {
    pub(super) fn new(from: Source, port: u16, address: Option<String>) -> DraftListener {
        DraftListener {
            from,
            port,
            address,
            websockets: false,
            ipv6: false,
            max_connections: None,
            table: Table::default(),
        }
    }
}

/// One `connection name` bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DraftBridge {
    pub(super) from: Source,
    pub(super) name: String,
    /// `host[:port]` of the first `address`, and its line.
    pub(super) address: Option<(String, Source)>,
    /// Whether a `bridge_cafile` (or certificate) asks for TLS.
    pub(super) tls: bool,
    pub(super) table: Table,
    pub(super) topics: Vec<Table>,
}

impl DraftBridge {
    pub(super) fn new(from: Source, name: String) -> DraftBridge {
        DraftBridge {
            from,
            name,
            address: None,
            tls: false,
            table: Table::default(),
            topics: Vec::new(),
        }
    }
}

/// The whole configuration, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Draft {
    pub(super) listeners: Vec<DraftListener>,
    pub(super) limits: Table,
    pub(super) auth: Table,
    pub(super) persistence: Table,
    pub(super) sys: Table,
    pub(super) bridges: Vec<DraftBridge>,
}
