//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, as
//! plain functions over bytes: no IO, no clock, no randomness of its own.
//!
//! In MQTT 5.0 enhanced authentication the exchange runs over CONNECT and
//! AUTH packets with the Authentication Method `"SCRAM-SHA-256"` or
//! `"SCRAM-SHA-512"`:
//!
//! 1. CONNECT carries the client-first message as Authentication Data; the
//!    broker calls [`ScramServer::start`] and answers AUTH (0x18, continue
//!    authentication) with the server-first message.
//! 2. The client's AUTH (0x18) carries the client-final message; the broker
//!    calls [`Pending::finish`] and answers CONNACK (0x00) with the
//!    server-final message as Authentication Data, or refuses with
//!    [`ScramError::reason_code`].
//!
//! Channel binding (`-PLUS`) is not supported: a client that asks for it
//! (gs2 flag `p`) is refused. User names and passwords are compared as
//! their exact UTF-8 bytes (no SASLprep normalisation; both ends of this
//! project do the same).

mod file;
pub mod messages;
mod server;

#[cfg(test)]
mod tests;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use mqtt_codec::ReasonCode;
use sha2::{Digest, Sha256, Sha512};

pub use file::{ScramCredentials, ScramFileError, ScramLineError};
pub use server::{CredentialLookup, Pending, ScramServer};

/// Iterations of new credentials: 4096, the least RFC 7677 §4 allows a
/// server to announce for SCRAM-SHA-256.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Most iterations a credential may have. The server never iterates (it
/// stores StoredKey and ServerKey); the client does, and a larger count
/// would let a credential file make every client spend seconds per login.
pub const MAX_ITERATIONS: u32 = 600_000;

/// Bytes of random salt in new credentials.
pub const SALT_LEN: usize = 16;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512 (the same construction over SHA-512).
    Sha512,
}

impl Mechanism {
    /// The SASL mechanism name, as the MQTT Authentication Method and in
    /// credential files: `"SCRAM-SHA-256"` or `"SCRAM-SHA-512"`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name` (exact, upper case, as registered).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name {
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            "SCRAM-SHA-512" => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    /// Bytes of the hash output: the length of keys, proofs and signatures.
    pub fn output_len(self) -> usize {
        match self {
            Mechanism::Sha256 => 32,
            Mechanism::Sha512 => 64,
        }
    }

    /// HMAC(key, data).
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length (longer ones are hashed), so
        // `new_from_slice` cannot fail here.
        match self {
            Mechanism::Sha256 => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Mechanism::Sha512 => {
                let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// H(data).
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// SaltedPassword = Hi(password, salt, i), which is PBKDF2 with HMAC
    /// as its pseudo-random function (RFC 5802 §2.2).
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        match self {
            Mechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
            }
            Mechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out)
            }
        }
        out
    }
}

/// What a server keeps of one user's password for one mechanism: salt,
/// iterations, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
/// ServerKey = HMAC(SaltedPassword, "Server Key") (RFC 5802 §3). The
/// password cannot be recovered from it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    mechanism: Mechanism,
    iterations: u32,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl ScramCredential {
    /// Derives the credential of `password` (costs `iterations` HMACs).
    pub fn derive(
        mechanism: Mechanism,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password, salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        ScramCredential {
            mechanism,
            iterations,
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(&salted, b"Server Key"),
        }
    }

    /// A credential from its stored parts; `None` when a key is not of the
    /// mechanism's output length.
    pub fn from_parts(
        mechanism: Mechanism,
        iterations: u32,
        salt: Vec<u8>,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    ) -> Option<ScramCredential> {
        let n = mechanism.output_len();
        (stored_key.len() == n && server_key.len() == n).then_some(ScramCredential {
            mechanism,
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// StoredKey.
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }

    /// ServerKey.
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }

    /// The text form of a credentials file line after the user name:
    /// `SCRAM-SHA-256:iterations:salt:storedkey:serverkey`, base64.
    pub(crate) fn to_line(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.mechanism.name(),
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }
}

/// Shows the mechanism and iterations only: keys do not belong in logs.
impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ScramCredential({}, {} iterations)",
            self.mechanism.name(),
            self.iterations
        )
    }
}

/// Why a SCRAM exchange was refused. Each variant maps to the reason code
/// the broker answers with ([`ScramError::reason_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message is longer than the bound of this module.
    #[error("the SCRAM message is longer than {max} bytes")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// A message is not UTF-8 (RFC 5802 §7: the messages are UTF-8 text).
    #[error("the SCRAM message is not UTF-8 text")]
    NotUtf8,
    /// A message does not follow RFC 5802 §7's grammar.
    #[error("the SCRAM message is malformed: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding (gs2 flag `p`), which this
    /// server does not offer.
    #[error("the client asked for channel binding, which this server does not support")]
    ChannelBindingNotSupported,
    /// The client-final message's channel binding (`c=`) is not the gs2
    /// header of the client-first message.
    #[error("the channel binding of the final message does not match the first message")]
    ChannelBindingMismatch,
    /// The client-first message asks for a mandatory extension (`m=`),
    /// which RFC 5802 §5.1 says the server must refuse when unknown.
    #[error("the client asked for a mandatory SCRAM extension, and none is supported")]
    ExtensionNotSupported,
    /// The client asked to act as another user (authzid), which is not
    /// supported.
    #[error("acting as another user (an authorization identity) is not supported")]
    AuthorizationIdentity,
    /// The client-final message's nonce is not this exchange's (a replayed
    /// or tampered message).
    #[error("the nonce of the final message is not the one of this exchange")]
    NonceMismatch,
    /// Unknown user or wrong password; which one is deliberately not said.
    #[error("bad user name or password")]
    BadCredentials,
    /// The caller's server nonce part is not 8 to 128 printable ASCII
    /// characters without ','. A local mistake, not the client's.
    #[error("the server nonce part must be 8 to 128 printable ASCII characters without ','")]
    UnusableNonceSuffix,
}

impl ScramError {
    /// The MQTT 5.0 reason code the broker answers the client with.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            // An unknown user and a wrong password look the same (RFC 5802
            // §7 lets a server hide the real reason for that purpose).
            ScramError::BadCredentials => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            // The packets were well formed; their authentication data was
            // not acceptable: the client is not authorized.
            ScramError::TooLong { .. }
            | ScramError::NotUtf8
            | ScramError::Malformed(_)
            | ScramError::ChannelBindingNotSupported
            | ScramError::ChannelBindingMismatch
            | ScramError::ExtensionNotSupported
            | ScramError::AuthorizationIdentity
            | ScramError::NonceMismatch => ReasonCode::NOT_AUTHORIZED,
            ScramError::UnusableNonceSuffix => ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
        }
    }
}
