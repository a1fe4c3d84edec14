//! JSON Web Tokens in the CONNECT password field: a verifier that takes the
//! token's bytes and the current time (Unix seconds, passed in) and gives
//! the identity the token vouches for.
//!
//! Configured by `[auth.jwt]` ([`JwtConfig`]). A token is accepted when:
//!
//! - its signature verifies with the configured key, under an algorithm of
//!   that key's family only: HS256/384/512 for `secret`, RS256/384/512 for
//!   an RSA `public_key_file`, ES256/384 for an EC one. A token whose header
//!   names another algorithm is refused, so an HS256 token "signed" with a
//!   public key as its secret never passes (algorithm confusion);
//! - `exp` (required unless `require_exp = false`) is not past and `nbf`
//!   not ahead, each with `leeway_secs`;
//! - `iss` and `aud` are the configured ones, where configured;
//! - the `username_claim` (default `sub`) is a non-empty string.
//!
//! With `topics_claim = "mqtt"` the token also says what its holder may do:
//!
//! ```json
//! { "sub": "alice", "exp": 1767225600,
//!   "mqtt": { "pub": ["sensors/alice/#"], "sub": ["commands/alice/+"] } }
//! ```
//!
//! `pub` lists the topic filters the client may publish to, `sub` the
//! filters it may subscribe within; a missing list grants nothing.

use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mqtt_codec::{ReasonCode, TopicFilter};
use serde::Deserialize;
use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Most topic filters in one of the token's `pub` and `sub` lists.
pub const MAX_TOPICS: usize = 256;

/// Largest `leeway_secs` accepted.
pub const MAX_LEEWAY_SECS: u64 = 300;

/// Fewest bytes of an HS256 `secret`: RFC 7518 §3.2 requires a key at least
/// as long as the hash output (256 bits for HS256).
pub const MIN_SECRET_LEN: usize = 32;

/// The `[auth.jwt]` section.
///
/// ```toml
/// [auth.jwt]
/// public_key_file = "/etc/mqtt/jwt.pem"   # or: secret = "at least 32 bytes ..."
/// username_claim = "sub"
/// topics_claim = "mqtt"
/// audience = "mqtt-broker"
/// issuer = "https://auth.example.com"
/// leeway_secs = 30
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The shared secret of HS256/HS384/HS512 tokens (at least 32 bytes).
    /// Exactly one of `secret` and `public_key_file` is required.
    #[serde(default)]
    pub secret: Option<String>,
    /// A PEM public key (RSA: RS256/384/512; EC P-256/P-384: ES256/384).
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// The claim holding the user name (default `"sub"`).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim holding `{"pub": [...], "sub": [...]}` topic filters
    /// (default: none, the token grants no topics of its own).
    #[serde(default)]
    pub topics_claim: Option<String>,
    /// The `aud` a token must name (default: not checked).
    #[serde(default)]
    pub audience: Option<String>,
    /// The `iss` a token must have (default: not checked).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Seconds of clock difference allowed for `exp` and `nbf` (default 30,
    /// at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Whether a token without `exp` is refused (default true).
    #[serde(default = "default_require_exp")]
    pub require_exp: bool,
}

fn default_username_claim() -> String {
    "sub".into()
}

fn default_leeway() -> u64 {
    30
}

fn default_require_exp() -> bool {
    true
}

/// The secret is not shown.
impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .field("public_key_file", &self.public_key_file)
            .field("username_claim", &self.username_claim)
            .field("topics_claim", &self.topics_claim)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("leeway_secs", &self.leeway_secs)
            .field("require_exp", &self.require_exp)
            .finish()
    }
}

/// Why `[auth.jwt]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    /// Neither `secret` nor `public_key_file`, or both.
    #[error("exactly one of secret and public_key_file is needed")]
    KeyChoice,
    /// The secret is too short to be an HS256 key.
    #[error("the secret has {0} bytes; HS256 needs at least {MIN_SECRET_LEN} (RFC 7518 §3.2)")]
    ShortSecret(usize),
    /// The public key file cannot be read.
    #[error("cannot read public_key_file {path}: {source}")]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The public key file holds no RSA or EC public key in PEM form.
    #[error("public_key_file {0} holds no RSA or EC (P-256, P-384) public key in PEM form")]
    BadKey(PathBuf),
    /// A claim name is empty.
    #[error("username_claim and topics_claim must not be empty")]
    EmptyClaim,
    /// `leeway_secs` is too large.
    #[error("leeway_secs is {0}; at most {MAX_LEEWAY_SECS} is accepted")]
    Leeway(u64),
}

impl JwtConfig {
    /// Checks the values that need no file.
    pub fn check(&self) -> Result<(), JwtConfigError> {
        match (&self.secret, &self.public_key_file) {
            (Some(s), None) if s.len() < MIN_SECRET_LEN => {
                return Err(JwtConfigError::ShortSecret(s.len()))
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err(JwtConfigError::KeyChoice),
        }
        if self.username_claim.is_empty() || self.topics_claim.as_deref() == Some("") {
            return Err(JwtConfigError::EmptyClaim);
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return Err(JwtConfigError::Leeway(self.leeway_secs));
        }
        Ok(())
    }
}

/// What a verified token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The user name (the `username_claim`).
    pub username: String,
    /// Topic filters the client may publish to (empty without a
    /// `topics_claim`, or when the token lists none).
    pub publish: Vec<String>,
    /// Topic filters the client may subscribe within.
    pub subscribe: Vec<String>,
    /// The token's `exp`, Unix seconds: the broker may end the session then.
    pub expires_at: Option<u64>,
}

/// Why a token was refused. Every variant is answered with CONNACK 0x86
/// Bad User Name or Password: the token is the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Not a JWT: not three base64url parts of JSON.
    #[error("the password is not a well-formed JWT")]
    Malformed,
    /// The header names an algorithm the configured key is not for.
    #[error("the token's algorithm is not one the configured key is for")]
    AlgorithmNotAllowed,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` is past (with the leeway).
    #[error("the token expired at {0}")]
    Expired(u64),
    /// `nbf` is ahead (with the leeway).
    #[error("the token is not valid before {0}")]
    NotYetValid(u64),
    /// No `exp`, and one is required.
    #[error("the token has no expiry (exp)")]
    MissingExpiry,
    /// `exp` or `nbf` is not a number of seconds.
    #[error("the token's {0} is not a number of seconds")]
    BadTime(&'static str),
    /// `aud` does not name the configured audience.
    #[error("the token is not for this audience")]
    WrongAudience,
    /// `iss` is not the configured issuer.
    #[error("the token is not from the configured issuer")]
    WrongIssuer,
    /// The user name claim is missing, empty, too long or not a string.
    #[error("the token has no usable {0:?} claim for the user name")]
    MissingUsername(String),
    /// The topics claim is not `{"pub": [filters], "sub": [filters]}`.
    #[error("the token's topics claim is invalid: {0}")]
    InvalidTopics(String),
}

impl JwtError {
    /// The MQTT 5.0 reason code of the refusal.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            JwtError::TooLong
            | JwtError::Malformed
            | JwtError::AlgorithmNotAllowed
            | JwtError::BadSignature
            | JwtError::Expired(_)
            | JwtError::NotYetValid(_)
            | JwtError::MissingExpiry
            | JwtError::BadTime(_)
            | JwtError::WrongAudience
            | JwtError::WrongIssuer
            | JwtError::MissingUsername(_)
            | JwtError::InvalidTopics(_) => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
        }
    }
}

/// Verifies tokens against one `[auth.jwt]` configuration.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    config: JwtConfig,
}

/// The key is not shown.
impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier for `config`, reading its public key file now.
    pub fn new(config: &JwtConfig) -> Result<JwtVerifier, JwtConfigError> {
        config.check()?;
        let (key, algorithms) = match (&config.secret, &config.public_key_file) {
            (Some(secret), _) => (
                DecodingKey::from_secret(secret.as_bytes()),
                vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            ),
            (None, Some(path)) => public_key(path)?,
            (None, None) => return Err(JwtConfigError::KeyChoice),
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        // Time, audience and issuer are checked here against the time the
        // caller passes in, not by the library against the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(JwtVerifier {
            key,
            validation,
            config: config.clone(),
        })
    }

    /// Verifies `token` at `now_unix` (seconds since 1970).
    pub fn verify(&self, token: &[u8], now_unix: u64) -> Result<JwtIdentity, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::TooLong);
        }
        let token = std::str::from_utf8(token).map_err(|_| JwtError::Malformed)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => JwtError::BadSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::InvalidKeyFormat => JwtError::AlgorithmNotAllowed,
            _ => JwtError::Malformed,
        })?;
        let claims = data.claims;
        let leeway = self.config.leeway_secs;
        let expires_at = time_claim(&claims, "exp")?;
        match expires_at {
            Some(exp) if now_unix > exp.saturating_add(leeway) => {
                return Err(JwtError::Expired(exp))
            }
            None if self.config.require_exp => return Err(JwtError::MissingExpiry),
            _ => {}
        }
        if let Some(nbf) = time_claim(&claims, "nbf")? {
            if now_unix.saturating_add(leeway) < nbf {
                return Err(JwtError::NotYetValid(nbf));
            }
        }
        self.check_issuer_and_audience(&claims)?;
        let claim = &self.config.username_claim;
        let username = match claims.get(claim) {
            Some(Value::String(u)) if !u.is_empty() && u.len() <= 65_535 && !u.contains('\0') => {
                u.clone()
            }
            _ => return Err(JwtError::MissingUsername(claim.clone())),
        };
        let (publish, subscribe) = match &self.config.topics_claim {
            None => (Vec::new(), Vec::new()),
            Some(name) => topics(claims.get(name))?,
        };
        Ok(JwtIdentity {
            username,
            publish,
            subscribe,
            expires_at,
        })
    }

    /// Whether the configuration has a `topics_claim`: then the identity's
    /// lists are all the token grants.
    pub fn restricts_topics(&self) -> bool {
        self.config.topics_claim.is_some()
    }

    fn check_issuer_and_audience(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        if let Some(issuer) = &self.config.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(JwtError::WrongIssuer);
            }
        }
        if let Some(audience) = &self.config.audience {
            // RFC 7519 §4.1.3: one string, or an array of strings.
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => a == audience,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
                _ => false,
            };
            if !ok {
                return Err(JwtError::WrongAudience);
            }
        }
        Ok(())
    }
}

/// The RSA or EC public key of a PEM file, with the algorithms of its
/// family.
fn public_key(path: &PathBuf) -> Result<(DecodingKey, Vec<Algorithm>), JwtConfigError> {
    let pem = std::fs::read(path).map_err(|source| JwtConfigError::ReadKey {
        path: path.clone(),
        source,
    })?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((
            key,
            vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
        ));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok((key, vec![Algorithm::ES256, Algorithm::ES384]));
    }
    Err(JwtConfigError::BadKey(path.clone()))
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional).
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match (v.as_u64(), v.as_f64()) {
            (Some(n), _) => Ok(Some(n)),
            (None, Some(f)) if (0.0..1e19).contains(&f) => {
                // Whole seconds; the fraction cannot matter with a leeway.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(f as u64))
            }
            _ => Err(JwtError::BadTime(name)),
        },
    }
}

/// The `pub` and `sub` filter lists of the topics claim.
fn topics(claim: Option<&Value>) -> Result<(Vec<String>, Vec<String>), JwtError> {
    let Some(claim) = claim else {
        return Ok((Vec::new(), Vec::new()));
    };
    let Value::Object(map) = claim else {
        return Err(JwtError::InvalidTopics(
            "expected an object with \"pub\" and \"sub\" lists".into(),
        ));
    };
    Ok((filters(map, "pub")?, filters(map, "sub")?))
}

fn filters(map: &Map<String, Value>, key: &str) -> Result<Vec<String>, JwtError> {
    let Some(v) = map.get(key) else {
        return Ok(Vec::new());
    };
    let Value::Array(list) = v else {
        return Err(JwtError::InvalidTopics(format!("{key:?} is not a list")));
    };
    if list.len() > MAX_TOPICS {
        return Err(JwtError::InvalidTopics(format!(
            "{key:?} has more than {MAX_TOPICS} filters"
        )));
    }
    list.iter()
        .map(|f| match f.as_str() {
            Some(s) if TopicFilter::<&[u8]>::try_from(s).is_ok() => Ok(s.to_string()),
            _ => Err(JwtError::InvalidTopics(format!(
                "{key:?} holds {f} which is not a topic filter"
            ))),
        })
        .collect()
}
