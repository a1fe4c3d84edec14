//! Mosquitto's configuration format (`mosquitto.conf`), read as it is.
//!
//! A Mosquitto file is converted to this broker's TOML ([`Conversion`]),
//! and the broker runs that TOML: what `mqtt-broker convert FILE` prints is
//! exactly what `mqtt-broker -c FILE` runs. Each key this broker cannot
//! honour is listed with its file and line ([`Remark`]); a key whose absence
//! would let in clients Mosquitto would refuse (plugins, per-listener
//! authentication, client id prefixes, PSK, mount points, a CA directory)
//! is an error instead, so a converted broker is never more open than the
//! Mosquitto it replaces.
//!
//! Mosquitto 2's defaults are kept where they differ from this broker's:
//! with any listener configured, anonymous clients are refused unless
//! `allow_anonymous true` says otherwise; persistence is off unless
//! `persistence true`.

mod bridges;
mod directives;
mod draft;
mod emit;
mod limits;
mod translate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};

/// Why a Mosquitto configuration could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum MosquittoError {
    /// A file or an `include_dir` directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A line this broker cannot take: a bad value, or a setting whose
    /// absence would let in clients Mosquitto would refuse.
    #[error("{file}:{line}: {key}: {why}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The key of that line.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// The converted configuration does not hold together (a TLS listener
    /// without a key, a bridge without topics, ...).
    #[error("{path}, converted: {source}")]
    Converted {
        /// The Mosquitto file.
        path: PathBuf,
        /// What the broker's own check says.
        source: ConfigError,
    },
}

/// A line read and left out (or honoured differently), with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remark {
    file: PathBuf,
    line: usize,
    key: String,
    why: String,
}

impl Remark {
    fn new(d: &directives::Directive, why: &str) -> Remark {
        Remark {
            file: d.file.clone(),
            line: d.line,
            key: d.key.clone(),
            why: why.to_string(),
        }
    }

    fn at(from: &draft::Source, why: &str) -> Remark {
        Remark {
            file: from.file.clone(),
            line: from.line,
            key: from
                .text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string(),
            why: why.to_string(),
        }
    }

    /// The file the line is in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The line number, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The key of the line.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What this broker does with it.
    pub fn why(&self) -> &str {
        &self.why
    }
}

impl fmt::Display for Remark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.key,
            self.why
        )
    }
}

/// A Mosquitto configuration converted to this broker's TOML.
#[derive(Debug, Clone)]
pub struct Conversion {
    path: PathBuf,
    toml: String,
    remarks: Vec<Remark>,
}

impl Conversion {
    /// Reads and converts a Mosquitto configuration file (and the files of
    /// its `include_dir` lines).
    pub fn from_file(path: &Path) -> Result<Conversion, MosquittoError> {
        let text = std::fs::read_to_string(path).map_err(|source| MosquittoError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_text(&text, path)
    }

    /// Converts Mosquitto configuration text; `path` names it in messages
    /// (`include_dir` lines are still read from the disk).
    pub fn from_text(text: &str, path: &Path) -> Result<Conversion, MosquittoError> {
        let mut remarks = Vec::new();
        let lines = directives::read(text, path)?;
        let draft = translate::translate(&lines, &mut remarks)?;
        let toml = emit::emit(&draft, &path.display().to_string(), &mut remarks)?;
        let conversion = Conversion {
            path: path.to_owned(),
            toml,
            remarks,
        };
        conversion.config()?;
        Ok(conversion)
    }

    /// The equivalent TOML configuration.
    pub fn toml(&self) -> &str {
        &self.toml
    }

    /// The lines left out or honoured differently, in file order.
    pub fn remarks(&self) -> &[Remark] {
        &self.remarks
    }

    /// The broker configuration the TOML describes.
    pub fn config(&self) -> Result<Config, MosquittoError> {
        Config::from_toml(&self.toml).map_err(|source| MosquittoError::Converted {
            path: self.path.clone(),
            source,
        })
    }
}

/// Whether a configuration file is in Mosquitto's format rather than TOML:
/// a `.conf` file is, a `.toml` file is not, and otherwise the first line
/// that is not blank or a comment tells (`key value` against `key = value`
/// or `[table]`).
pub fn is_mosquitto_format(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("conf") => return true,
        Some("toml") => return false,
        _ => {}
    }
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match first {
        None => false,
        Some(l) => !l.starts_with('[') && !l.contains('='),
    }
}
