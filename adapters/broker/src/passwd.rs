//! Password files in Mosquitto's format, so a Mosquitto `password_file` can be
//! used as it is.
//!
//! One user per line, `user:hash`; blank lines and lines starting with `#`
//! are kept but ignored. Two hash formats are read, both as written by
//! `mosquitto_passwd` 2.0:
//!
//! - `$7$<iterations>$<base64 salt>$<base64 hash>`: PBKDF2-HMAC-SHA512 (the
//!   default of `mosquitto_passwd` 2.0);
//! - `$6$<base64 salt>$<base64 hash>`: one SHA-512 of password and salt
//!   (Mosquitto 1.6 and `mosquitto_passwd -H sha512`). Fast to brute-force:
//!   re-set such passwords to move them to `$7$`.
//!
//! New hashes are always `$7$` with a random 12-byte salt and
//! [`PBKDF2_ITERATIONS`] iterations, the same as `mosquitto_passwd`, so the
//! files stay readable by Mosquitto too.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// PBKDF2 iterations of new `$7$` hashes: 101, as `mosquitto_passwd` 2.0
/// writes them, so the files stay the same as Mosquitto's. Files with more
/// iterations (written elsewhere, e.g. `mosquitto_passwd -I`) are read and
/// checked all the same, up to [`MAX_PBKDF2_ITERATIONS`]; the checks run
/// off the broker's core task (see [`crate::auth`]), so a slow hash delays
/// only the client that waits for it.
pub const PBKDF2_ITERATIONS: u32 = 101;

/// Most PBKDF2 iterations a `$7$` hash may ask for: 2,100,000, ten times
/// the 210,000 that current guidance (OWASP) asks of PBKDF2-HMAC-SHA512,
/// about a second of one core per check. A file asking for more is refused
/// when it is read, naming the line: every CONNECT of that user (and every
/// wrong guess) would otherwise hold a checking thread for as long as the
/// file says, so a bad file could starve authentication. (Ten times
/// Mosquitto's own default of 101 would refuse files that follow that
/// guidance.)
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_100_000;

/// Bytes of random salt in new hashes (as `mosquitto_passwd`).
pub const SALT_LEN: usize = 12;

/// Bytes of a SHA-512 output: the stored hash of both formats.
const HASH_LEN: usize = 64;

/// Longest salt accepted when reading (Mosquitto writes 12 bytes).
const MAX_SALT_LEN: usize = 1024;

/// Base64 as Mosquitto writes it (standard alphabet, padded); padding is
/// optional when reading.
const BASE64_READ: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A salted password hash, in one of Mosquitto's two formats.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$7$`: PBKDF2-HMAC-SHA512 with `iterations` rounds.
    Pbkdf2Sha512 {
        /// PBKDF2 rounds.
        iterations: u32,
        /// The salt.
        salt: Vec<u8>,
        /// The 64-byte derived key.
        hash: [u8; HASH_LEN],
    },
    /// `$6$`: SHA-512 of the password followed by the salt.
    Sha512 {
        /// The salt.
        salt: Vec<u8>,
        /// The 64-byte digest.
        hash: [u8; HASH_LEN],
    },
}

/// Why a password hash could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Neither `$7$` nor `$6$` (a plain-text password, or another tool's format).
    #[error("not a password hash this broker reads (expected Mosquitto's $7$ or $6$ format; plain-text passwords are not accepted)")]
    UnknownFormat,
    /// The `$7$` iteration count is not a whole number from 1 up.
    #[error("the iteration count is not a whole number greater than zero")]
    InvalidIterations,
    /// The `$7$` iteration count is above [`MAX_PBKDF2_ITERATIONS`].
    #[error("{0} PBKDF2 iterations are more than the {max} this broker accepts (each check would take too long)", max = MAX_PBKDF2_ITERATIONS)]
    TooManyIterations(u32),
    /// The salt is not base64, or empty, or longer than 1024 bytes.
    #[error("the salt is not base64 of 1 to 1024 bytes")]
    InvalidSalt,
    /// The hash is not base64 of 64 bytes.
    #[error("the hash is not base64 of 64 bytes")]
    InvalidHash,
}

impl PasswordHash {
    /// Hashes `password` in the `$7$` format with a fresh random salt from the
    /// operating system and [`PBKDF2_ITERATIONS`] iterations.
    pub fn new(password: &[u8]) -> Result<PasswordHash, getrandom::Error> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt)?;
        Ok(PasswordHash::pbkdf2(password, &salt, PBKDF2_ITERATIONS))
    }

    /// Hashes `password` in the `$7$` format with the given salt and iterations.
    pub fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> PasswordHash {
        let mut hash = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut hash);
        PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt: salt.to_vec(),
            hash,
        }
    }

    /// Whether `password` is the one this hash was made from. The hashes are
    /// compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        let (computed, stored) = match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = [0u8; HASH_LEN];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                (out, hash)
            }
            PasswordHash::Sha512 { salt, hash } => {
                let mut d = Sha512::new();
                d.update(password);
                d.update(salt);
                let mut out = [0u8; HASH_LEN];
                out.copy_from_slice(&d.finalize());
                (out, hash)
            }
        };
        computed.ct_eq(stored).into()
    }

    /// Reads a hash in Mosquitto's text form (`$7$…` or `$6$…`).
    pub fn parse(text: &str) -> Result<PasswordHash, HashError> {
        if let Some(rest) = text.strip_prefix("$7$") {
            let mut parts = rest.split('$');
            let (Some(iterations), Some(salt), Some(hash), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(HashError::UnknownFormat);
            };
            let iterations: u32 = iterations
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(HashError::InvalidIterations)?;
            if iterations > MAX_PBKDF2_ITERATIONS {
                return Err(HashError::TooManyIterations(iterations));
            }
            Ok(PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt: decode_salt(salt)?,
                hash: decode_hash(hash)?,
            })
        } else if let Some(rest) = text.strip_prefix("$6$") {
            let mut parts = rest.split('$');
            let (Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(HashError::UnknownFormat);
            };
            Ok(PasswordHash::Sha512 {
                salt: decode_salt(salt)?,
                hash: decode_hash(hash)?,
            })
        } else {
            Err(HashError::UnknownFormat)
        }
    }
}

fn decode_salt(text: &str) -> Result<Vec<u8>, HashError> {
    // Four base64 characters per three bytes: bound the input before decoding.
    if text.len() > MAX_SALT_LEN / 3 * 4 + 4 {
        return Err(HashError::InvalidSalt);
    }
    let salt = BASE64_READ
        .decode(text)
        .map_err(|_| HashError::InvalidSalt)?;
    if salt.is_empty() || salt.len() > MAX_SALT_LEN {
        return Err(HashError::InvalidSalt);
    }
    Ok(salt)
}

fn decode_hash(text: &str) -> Result<[u8; HASH_LEN], HashError> {
    let mut hash = [0u8; HASH_LEN];
    match BASE64_READ.decode_slice(text, &mut hash) {
        Ok(HASH_LEN) => Ok(hash),
        _ => Err(HashError::InvalidHash),
    }
}

/// Mosquitto's text form, e.g. `$7$101$<salt>$<hash>`.
impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                STANDARD.encode(salt),
                STANDARD.encode(hash)
            ),
            PasswordHash::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
            }
        }
    }
}

/// Shows the format only: hashes do not belong in logs.
impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "PasswordHash($7$, {iterations} iterations)")
            }
            PasswordHash::Sha512 { .. } => f.write_str("PasswordHash($6$)"),
        }
    }
}

/// Why a password file could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// The file could not be read.
    #[error("cannot read password file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write password file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A line of the file is not `user:hash`.
    #[error("password file {path}, line {line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: LineError,
    },
    /// A user name that cannot be stored in the file.
    #[error("invalid user name {0:?}: it must be 1 to 65535 bytes, without ':' or line breaks")]
    InvalidUser(String),
    /// The operating system gave no randomness for a salt.
    #[error("cannot make a random salt: {0}")]
    Random(getrandom::Error),
}

/// What is wrong with one line of a password file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// No `:` separates the user name from the hash.
    #[error("expected user:hash, found no ':'")]
    NoSeparator,
    /// The user name before the `:` is empty.
    #[error("the user name is empty")]
    EmptyUser,
    /// The user already has a line above.
    #[error("user {0:?} appears a second time")]
    DuplicateUser(String),
    /// The hash cannot be read.
    #[error("user {user:?}: {error}")]
    Hash {
        /// The user of the line.
        user: String,
        /// What is wrong with the hash.
        error: HashError,
    },
}

/// One line of the file, kept so that rewriting it keeps comments in place.
#[derive(Debug, Clone)]
enum Line {
    /// A comment or blank line, kept verbatim.
    Other(String),
    /// A user and their hash.
    User(String, PasswordHash),
}

/// A password file: users and their hashes, with the file's comments.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    lines: Vec<Line>,
}

/// A fixed `$7$` hash checked for unknown users, so that a wrong user name
/// takes as long to refuse as a wrong password and user names cannot be
/// probed by timing.
fn decoy() -> &'static PasswordHash {
    static DECOY: std::sync::OnceLock<PasswordHash> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| PasswordHash::pbkdf2(b"decoy", b"mqtt-broker!", PBKDF2_ITERATIONS))
}

impl PasswordFile {
    /// An empty file.
    pub fn new() -> PasswordFile {
        PasswordFile::default()
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<PasswordFile, PasswordFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswordFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        PasswordFile::parse(&text, path)
    }

    /// Reads a password file's text; errors name `path` and the line.
    pub fn parse(text: &str, path: &Path) -> Result<PasswordFile, PasswordFileError> {
        let mut file = PasswordFile::new();
        let mut seen = std::collections::HashSet::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            if line.trim_start().is_empty() || line.starts_with('#') {
                file.lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let err = |reason| PasswordFileError::Line {
                path: path.to_owned(),
                line: n + 1,
                reason,
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| err(LineError::NoSeparator))?;
            if user.is_empty() {
                return Err(err(LineError::EmptyUser));
            }
            let hash = PasswordHash::parse(hash).map_err(|error| {
                err(LineError::Hash {
                    user: user.to_string(),
                    error,
                })
            })?;
            if !seen.insert(user) {
                return Err(err(LineError::DuplicateUser(user.to_string())));
            }
            file.lines.push(Line::User(user.to_string(), hash));
        }
        Ok(file)
    }

    /// The hash stored for `user`.
    pub fn get(&self, user: &str) -> Option<&PasswordHash> {
        self.lines.iter().find_map(|l| match l {
            Line::User(u, h) if u == user => Some(h),
            _ => None,
        })
    }

    /// The users, in file order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            Line::User(u, _) => Some(u.as_str()),
            Line::Other(_) => None,
        })
    }

    /// Whether `user` exists and `password` is theirs. An unknown user costs
    /// the same hashing work as a known one.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                let _ = decoy().verify(password);
                false
            }
        }
    }

    /// Sets `user`'s password: a new `$7$` hash with a random salt, replacing
    /// the user's line where it is, or appended as a new line.
    pub fn set_password(&mut self, user: &str, password: &[u8]) -> Result<(), PasswordFileError> {
        check_user(user)?;
        let hash = PasswordHash::new(password).map_err(PasswordFileError::Random)?;
        self.set_hash(user, hash)
    }

    /// Sets `user`'s hash, replacing the user's line where it is, or appended.
    pub fn set_hash(&mut self, user: &str, hash: PasswordHash) -> Result<(), PasswordFileError> {
        check_user(user)?;
        for l in &mut self.lines {
            if let Line::User(u, h) = l {
                if u == user {
                    *h = hash;
                    return Ok(());
                }
            }
        }
        self.lines.push(Line::User(user.to_string(), hash));
        Ok(())
    }

    /// Removes `user`; false if there was no such user.
    pub fn remove(&mut self, user: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::User(u, _) if u == user));
        self.lines.len() != before
    }

    /// Writes the file to `path`. A new file is created readable by its owner
    /// only (mode 0600 on Unix); an existing one keeps its permissions.
    pub fn save(&self, path: &Path) -> Result<(), PasswordFileError> {
        write_private(path, self.to_string().as_bytes()).map_err(|source| {
            PasswordFileError::Write {
                path: path.to_owned(),
                source,
            }
        })
    }
}

/// Writes `bytes` to `path`: a new file is created readable by its owner
/// only (mode 0600 on Unix); an existing one keeps its permissions. Also
/// used for SCRAM credential files.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The file's text, one line per user or comment.
impl fmt::Display for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            match l {
                Line::Other(text) => writeln!(f, "{text}")?,
                Line::User(u, h) => writeln!(f, "{u}:{h}")?,
            }
        }
        Ok(())
    }
}

/// A user name must survive the round trip through a `user:hash` line, and
/// fit an MQTT string.
fn check_user(user: &str) -> Result<(), PasswordFileError> {
    let ok = !user.is_empty()
        && user.len() <= usize::from(u16::MAX)
        && !user.starts_with('#')
        && !user.contains([':', '\n', '\r', '\0'])
        && user.trim_end() == user;
    if ok {
        Ok(())
    } else {
        Err(PasswordFileError::InvalidUser(user.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made once with `mosquitto_passwd -c -b FILE alice secret123` and
    /// `mosquitto_passwd -b FILE bob 'pässwörd'` (Mosquitto 2.0.11).
    const MOSQUITTO_7: &str = "\
alice:$7$101$3ztr8pif4HKpPnco$xhSOgpYcuwhcwQBFe4sq8fCCLkRrmX4UzWFDyJxpZqhpH4kZKu+72IgrkDWhI/2XIZapoZxdl0My0OFzmuYFig==
bob:$7$101$7U/Kl4zx5cL1Tt+d$M9F5o4rayHL6uBOtEwk90/OStjIR9GkGGNXEzhMH34T+AsdC40pUluJypLvRsBVVnO4k5zi+rod7vNQ3VUcXDQ==
";

    /// Made once with `mosquitto_passwd -H sha512 -c -b FILE carol hunter2` (2.0.11).
    const MOSQUITTO_6: &str = "carol:$6$7LI0wKEPxrprccZ9$sqSDE2I/yY4mQflKAClVp24IP6ozH8D3elQT09TK4qqKIPwfE4XJT8HnVnER274yDQD1Preav4Oxc7E4grYoWQ==\n";

    fn parse(text: &str) -> Result<PasswordFile, PasswordFileError> {
        PasswordFile::parse(text, Path::new("pw"))
    }

    #[test]
    fn mosquitto_pbkdf2_hashes_verify() {
        let f = parse(MOSQUITTO_7).unwrap();
        assert!(f.verify("alice", b"secret123"));
        assert!(!f.verify("alice", b"secret124"));
        assert!(!f.verify("alice", b""));
        assert!(f.verify("bob", "pässwörd".as_bytes()));
        assert!(!f.verify("bob", b"secret123"));
        assert!(!f.verify("carol", b"secret123"));
        assert_eq!(f.users().collect::<Vec<_>>(), ["alice", "bob"]);
        match f.get("alice").unwrap() {
            PasswordHash::Pbkdf2Sha512 {
                iterations, salt, ..
            } => {
                assert_eq!(*iterations, 101);
                assert_eq!(salt.len(), SALT_LEN);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mosquitto_sha512_hashes_verify() {
        let f = parse(MOSQUITTO_6).unwrap();
        assert!(f.verify("carol", b"hunter2"));
        assert!(!f.verify("carol", b"hunter3"));
        assert!(matches!(f.get("carol"), Some(PasswordHash::Sha512 { .. })));
    }

    #[test]
    fn hashes_print_as_they_were_read() {
        for text in [MOSQUITTO_7, MOSQUITTO_6] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn new_hashes_are_pbkdf2_with_a_random_salt_and_verify() {
        let a = PasswordHash::new(b"pw").unwrap();
        let b = PasswordHash::new(b"pw").unwrap();
        assert_ne!(a, b, "two salts are the same");
        assert!(a.verify(b"pw") && b.verify(b"pw"));
        assert!(!a.verify(b"pw2"));
        let text = a.to_string();
        assert!(text.starts_with("$7$101$"), "{text}");
        // 12 bytes of salt are 16 base64 characters; 64 bytes of hash, 88.
        let parts: Vec<&str> = text.split('$').collect();
        assert_eq!(parts[3].len(), 16);
        assert_eq!(parts[4].len(), 88);
        assert_eq!(PasswordHash::parse(&text).unwrap(), a);
    }

    #[test]
    fn a_known_pbkdf2_vector() {
        // RFC 6070-style check of PBKDF2-HMAC-SHA512 ("password", "salt", 1
        // iteration), from the published test vectors for SHA-512.
        let h = PasswordHash::pbkdf2(b"password", b"salt", 1);
        let PasswordHash::Pbkdf2Sha512 { hash, .. } = h else {
            unreachable!()
        };
        assert_eq!(
            &hash[..8],
            &[0x86, 0x7f, 0x70, 0xcf, 0x1a, 0xde, 0x02, 0xcf]
        );
    }

    #[test]
    fn comments_and_blank_lines_are_kept_when_rewritten() {
        let text = format!("# users\n\n{MOSQUITTO_7}# end\n");
        let mut f = parse(&text).unwrap();
        assert_eq!(f.to_string(), text);
        f.set_password("alice", b"new").unwrap();
        f.set_password("dave", b"d").unwrap();
        assert!(f.remove("bob"));
        assert!(!f.remove("bob"));
        let out = f.to_string();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "# users");
        assert_eq!(lines[1], "");
        assert!(lines[2].starts_with("alice:$7$"));
        assert_eq!(lines[3], "# end");
        assert!(lines[4].starts_with("dave:$7$"));
        let again = parse(&out).unwrap();
        assert!(again.verify("alice", b"new"));
        assert!(!again.verify("alice", b"secret123"));
        assert!(again.verify("dave", b"d"));
        assert!(again.get("bob").is_none());
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        let cases: [(&str, usize, LineError); 7] = [
            ("alice\n", 1, LineError::NoSeparator),
            ("# c\n:$6$AAAA$AAAA\n", 2, LineError::EmptyUser),
            (
                "alice:plaintext\n",
                1,
                LineError::Hash {
                    user: "alice".into(),
                    error: HashError::UnknownFormat,
                },
            ),
            (
                "a:$7$0$3ztr8pif4HKpPnco$xhSO\n",
                1,
                LineError::Hash {
                    user: "a".into(),
                    error: HashError::InvalidIterations,
                },
            ),
            (
                "# users\na:$7$2100001$3ztr8pif4HKpPnco$xhSO\n",
                2,
                LineError::Hash {
                    user: "a".into(),
                    error: HashError::TooManyIterations(2_100_001),
                },
            ),
            (
                "a:$7$101$!!!$xhSO\n",
                1,
                LineError::Hash {
                    user: "a".into(),
                    error: HashError::InvalidSalt,
                },
            ),
            (
                "a:$6$3ztr8pif4HKpPnco$xhSO\n",
                1,
                LineError::Hash {
                    user: "a".into(),
                    error: HashError::InvalidHash,
                },
            ),
        ];
        for (text, line, reason) in cases {
            match parse(text) {
                Err(PasswordFileError::Line {
                    line: l, reason: r, ..
                }) => {
                    assert_eq!((l, &r), (line, &reason), "{text}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let dup = format!("{MOSQUITTO_7}{MOSQUITTO_7}");
        match parse(&dup) {
            Err(e @ PasswordFileError::Line { line: 3, .. }) => {
                assert_eq!(
                    e.to_string(),
                    "password file pw, line 3: user \"alice\" appears a second time"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hash_parts_are_checked() {
        for bad in [
            "$7$101$c2FsdA==",
            "$7$101$c2FsdA==$x$y",
            "$7$-1$c2FsdA==$AAAA",
            "$7$x$c2FsdA==$AAAA",
            "$6$c2FsdA==",
            "$6$$AAAA",
            "$5$c2FsdA==$AAAA",
            "",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
        let long_salt = "A".repeat(2000);
        assert_eq!(
            PasswordHash::parse(&format!("$6${long_salt}$AAAA")),
            Err(HashError::InvalidSalt)
        );
    }

    #[test]
    fn user_names_that_would_break_the_file_are_refused() {
        let mut f = PasswordFile::new();
        for bad in ["", "a:b", "a\nb", "#a", "a ", "a\0"] {
            assert!(
                matches!(
                    f.set_password(bad, b"x"),
                    Err(PasswordFileError::InvalidUser(_))
                ),
                "{bad:?}"
            );
        }
        f.set_password("ünïcode user", b"x").unwrap();
        assert!(parse(&f.to_string()).unwrap().verify("ünïcode user", b"x"));
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = std::env::temp_dir().join(format!("mqtt-broker-passwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        let mut f = PasswordFile::new();
        f.set_password("u", b"p").unwrap();
        f.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(PasswordFile::load(&path).unwrap().verify("u", b"p"));
        let missing = dir.join("nope");
        let e = PasswordFile::load(&missing).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
