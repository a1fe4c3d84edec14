//! The SCRAM credentials file: one line per user and mechanism,
//!
//! ```text
//! user:SCRAM-SHA-256:iterations:salt_b64:storedkey_b64:serverkey_b64
//! ```
//!
//! written by `mqtt-broker passwd --scram sha256|sha512`. It holds no
//! password and nothing a password can be read back from (StoredKey and
//! ServerKey are one-way). Blank lines and lines starting with `#` are kept
//! and ignored.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{
    CredentialLookup, Mechanism, ScramCredential, DEFAULT_ITERATIONS, MAX_ITERATIONS, SALT_LEN,
};

/// Longest salt accepted when reading, in bytes.
const MAX_SALT_LEN: usize = 256;

/// Why a SCRAM credentials file could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
pub enum ScramFileError {
    /// The file could not be read.
    #[error("cannot read SCRAM credentials file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write SCRAM credentials file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A line cannot be used.
    #[error("SCRAM credentials file {path}, line {line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: ScramLineError,
    },
    /// A user name that cannot be stored in the file.
    #[error("invalid user name {0:?}: it must be 1 to 256 bytes, without ':' or line breaks")]
    InvalidUser(String),
    /// An iteration count outside what the file accepts.
    #[error("{0} iterations: SCRAM needs {DEFAULT_ITERATIONS} to {MAX_ITERATIONS}")]
    InvalidIterations(u32),
    /// The operating system gave no randomness for a salt.
    #[error("cannot make a random salt: {0}")]
    Random(getrandom::Error),
}

/// What is wrong with one line of a SCRAM credentials file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramLineError {
    /// Not six `:`-separated fields.
    #[error("expected user:mechanism:iterations:salt:storedkey:serverkey")]
    Fields,
    /// The user name is empty.
    #[error("the user name is empty")]
    EmptyUser,
    /// Neither `SCRAM-SHA-256` nor `SCRAM-SHA-512`.
    #[error("unknown mechanism {0:?} (expected SCRAM-SHA-256 or SCRAM-SHA-512)")]
    Mechanism(String),
    /// The iteration count is not a number in range.
    #[error(
        "the iteration count {0:?} is not a number from {DEFAULT_ITERATIONS} to {MAX_ITERATIONS}"
    )]
    Iterations(String),
    /// The salt is not base64 of 2 to 256 bytes.
    #[error("the salt is not base64 of 2 to 256 bytes")]
    Salt,
    /// A key is not base64 of the mechanism's output length.
    #[error("the stored or server key is not base64 of {0} bytes")]
    Key(usize),
    /// The user has a line of this mechanism above.
    #[error("user {0:?} has a second {1} line")]
    Duplicate(String, &'static str),
}

#[derive(Debug, Clone)]
enum Line {
    Other(String),
    User(String, ScramCredential),
}

/// A SCRAM credentials file: users' credentials, with the file's comments.
#[derive(Debug, Clone, Default)]
pub struct ScramCredentials {
    lines: Vec<Line>,
}

impl ScramCredentials {
    /// An empty file.
    pub fn new() -> ScramCredentials {
        ScramCredentials::default()
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<ScramCredentials, ScramFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScramFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        ScramCredentials::parse(&text, path)
    }

    /// Reads a file's text; errors name `path` and the line.
    pub fn parse(text: &str, path: &Path) -> Result<ScramCredentials, ScramFileError> {
        let mut file = ScramCredentials::new();
        let mut seen = HashSet::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            if line.trim_start().is_empty() || line.starts_with('#') {
                file.lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let err = |reason| ScramFileError::Line {
                path: path.to_owned(),
                line: n + 1,
                reason,
            };
            let (user, credential) = parse_line(line).map_err(err)?;
            if !seen.insert((user.clone(), credential.mechanism())) {
                let name = credential.mechanism().name();
                return Err(err(ScramLineError::Duplicate(user, name)));
            }
            file.lines.push(Line::User(user, credential));
        }
        Ok(file)
    }

    /// The credential of `user` for `mechanism`.
    pub fn get(&self, mechanism: Mechanism, user: &str) -> Option<&ScramCredential> {
        self.lines.iter().find_map(|l| match l {
            Line::User(u, c) if u == user && c.mechanism() == mechanism => Some(c),
            _ => None,
        })
    }

    /// Sets `user`'s credential for `mechanism` from `password`, with a
    /// fresh random salt and `iterations`, replacing the user's line of that
    /// mechanism or appending one.
    pub fn set_password(
        &mut self,
        user: &str,
        mechanism: Mechanism,
        password: &[u8],
        iterations: u32,
    ) -> Result<(), ScramFileError> {
        check_user(user)?;
        if !(DEFAULT_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramFileError::InvalidIterations(iterations));
        }
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(ScramFileError::Random)?;
        let credential = ScramCredential::derive(mechanism, password, &salt, iterations);
        for l in &mut self.lines {
            if let Line::User(u, c) = l {
                if u == user && c.mechanism() == mechanism {
                    *c = credential;
                    return Ok(());
                }
            }
        }
        self.lines.push(Line::User(user.to_string(), credential));
        Ok(())
    }

    /// Removes `user`'s line of `mechanism`; false if there was none.
    pub fn remove(&mut self, user: &str, mechanism: Mechanism) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::User(u, c) if u == user && c.mechanism() == mechanism));
        self.lines.len() != before
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            match l {
                Line::Other(s) => out.push_str(s),
                Line::User(u, c) => {
                    out.push_str(u);
                    out.push(':');
                    out.push_str(&c.to_line());
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes the file to `path`, readable by its owner only when new
    /// (as the password file).
    pub fn save(&self, path: &Path) -> Result<(), ScramFileError> {
        crate::passwd::write_private(path, self.to_text().as_bytes()).map_err(|source| {
            ScramFileError::Write {
                path: path.to_owned(),
                source,
            }
        })
    }
}

impl CredentialLookup for ScramCredentials {
    fn credential(&self, mechanism: Mechanism, user: &str) -> Option<ScramCredential> {
        self.get(mechanism, user).cloned()
    }

    /// The most common iteration count of the file's lines of `mechanism`
    /// (the smaller on a tie; the default for none).
    fn typical_iterations(&self, mechanism: Mechanism) -> u32 {
        let mut counts = std::collections::BTreeMap::<u32, usize>::new();
        for l in &self.lines {
            if let Line::User(_, c) = l {
                if c.mechanism() == mechanism {
                    *counts.entry(c.iterations()).or_default() += 1;
                }
            }
        }
        let mut best = (DEFAULT_ITERATIONS, 0);
        for (iterations, n) in counts {
            if n > best.1 {
                best = (iterations, n);
            }
        }
        best.0
    }
}

impl<T: CredentialLookup + ?Sized> CredentialLookup for Arc<T> {
    fn credential(&self, mechanism: Mechanism, user: &str) -> Option<ScramCredential> {
        (**self).credential(mechanism, user)
    }

    fn typical_iterations(&self, mechanism: Mechanism) -> u32 {
        (**self).typical_iterations(mechanism)
    }
}

fn check_user(user: &str) -> Result<(), ScramFileError> {
    if user.is_empty() || user.len() > 256 || user.contains([':', '\n', '\r']) {
        return Err(ScramFileError::InvalidUser(user.to_string()));
    }
    Ok(())
}

fn parse_line(line: &str) -> Result<(String, ScramCredential), ScramLineError> {
    let fields: Vec<&str> = line.splitn(7, ':').collect();
    let [user, mechanism, iterations, salt, stored, server] = fields[..] else {
        return Err(ScramLineError::Fields);
    };
    if user.is_empty() {
        return Err(ScramLineError::EmptyUser);
    }
    let mechanism = Mechanism::from_name(mechanism)
        .ok_or_else(|| ScramLineError::Mechanism(mechanism.to_string()))?;
    let iterations = iterations
        .parse::<u32>()
        .ok()
        .filter(|i| (DEFAULT_ITERATIONS..=MAX_ITERATIONS).contains(i))
        .ok_or_else(|| ScramLineError::Iterations(iterations.to_string()))?;
    let salt = (salt.len() <= MAX_SALT_LEN / 3 * 4 + 4)
        .then(|| STANDARD.decode(salt).ok())
        .flatten()
        .filter(|s| (2..=MAX_SALT_LEN).contains(&s.len()))
        .ok_or(ScramLineError::Salt)?;
    let n = mechanism.output_len();
    let key = |text: &str| {
        let mut buf = [0u8; 64];
        match STANDARD.decode_slice(text, &mut buf) {
            Ok(len) if len == n => Ok(buf[..n].to_vec()),
            _ => Err(ScramLineError::Key(n)),
        }
    };
    let credential =
        ScramCredential::from_parts(mechanism, iterations, salt, key(stored)?, key(server)?)
            .ok_or(ScramLineError::Key(n))?;
    Ok((user.to_string(), credential))
}
