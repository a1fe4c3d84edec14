//! The client side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC
//! 7677), for MQTT 5.0 enhanced authentication, without IO or randomness:
//! the client nonce is passed in.
//!
//! ```text
//! CONNECT  method "SCRAM-SHA-256", data = client.first()
//! AUTH     0x18 <- server-first       client.respond(data) -> client-final
//! AUTH     0x18 -> client-final
//! CONNACK  0x00 <- server-final       client.verify(data)
//! ```
//!
//! Channel binding is not used (gs2 header `n,,`). User names and passwords
//! are used as their exact UTF-8 bytes (no SASLprep), as the broker of this
//! project does.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::auth::{AuthError, EnhancedAuth};

/// Longest server message accepted, in bytes.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Most PBKDF2 iterations the client agrees to compute: a hostile server
/// could otherwise make it spend minutes (RFC 5802 §9).
pub const MAX_ITERATIONS: u32 = 600_000;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// The SASL name, used as the MQTT Authentication Method.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail.
        match self {
            ScramMechanism::Sha256 => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramMechanism::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// Why a SCRAM exchange failed on the client's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramClientError {
    /// The client nonce given is not 1 to 256 printable ASCII characters
    /// without `,` (or, to [`ScramLogin::begin`], fewer than 18 random
    /// bytes).
    #[error("the client nonce must be 1 to 256 printable ASCII characters without ',', made of at least 18 random bytes")]
    UnusableNonce,
    /// The user name is empty or longer than 256 bytes.
    #[error("the user name must be 1 to 256 bytes")]
    UnusableUser,
    /// A server message is longer than [`MAX_MESSAGE_LEN`] or not UTF-8.
    #[error("the server's SCRAM message is too long or not UTF-8 text")]
    Unreadable,
    /// A server message does not follow RFC 5802 §7's grammar.
    #[error("the server's SCRAM message is malformed: {0}")]
    Malformed(&'static str),
    /// The server's nonce does not extend the client's.
    #[error("the server's nonce does not start with the client's")]
    NonceMismatch,
    /// The iteration count is 0 or above [`MAX_ITERATIONS`].
    #[error("the server asks for {0} iterations; 1 to 600000 are accepted")]
    Iterations(u32),
    /// The server ended the exchange with an error (`e=`).
    #[error("the server refused the authentication: {0}")]
    Refused(String),
    /// The server's signature is wrong: it does not know the password.
    #[error("the server's signature is wrong: it is not the server the credential is for")]
    ServerSignature,
    /// A step out of order (respond twice, verify before respond).
    #[error("SCRAM step out of order")]
    OutOfOrder,
}

/// The SCRAM credentials a client logs in with, on every connection: see
/// [`OptionSetters::scram`](crate::OptionSetters::scram).
///
/// It is the SCRAM [`EnhancedAuth`] mechanism: each connection's
/// [`start`](EnhancedAuth::start) begins a fresh exchange.
#[derive(Clone)]
pub struct ScramLogin {
    mechanism: ScramMechanism,
    user: String,
    password: Vec<u8>,
    /// The current connection's exchange, from `start` to `finish`.
    exchange: Option<ScramClient>,
}

/// Shows the mechanism and user only.
impl core::fmt::Debug for ScramLogin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScramLogin")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Bytes of randomness a connection's client nonce is made of; see
/// [`ScramLogin::begin`].
pub const NONCE_RANDOM_LEN: usize = 18;

impl ScramLogin {
    /// Credentials for `mechanism`; the user name must be 1 to 256 bytes.
    pub fn new(
        mechanism: ScramMechanism,
        user: &str,
        password: &[u8],
    ) -> Result<ScramLogin, ScramClientError> {
        if user.is_empty() || user.len() > 256 {
            return Err(ScramClientError::UnusableUser);
        }
        Ok(ScramLogin {
            mechanism,
            user: user.to_string(),
            password: password.to_vec(),
            exchange: None,
        })
    }

    /// The mechanism.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// A fresh exchange whose client nonce is `random` (at least
    /// [`NONCE_RANDOM_LEN`] bytes from the operating system) in base64.
    pub fn begin(&self, random: &[u8]) -> Result<ScramClient, ScramClientError> {
        if random.len() < NONCE_RANDOM_LEN {
            return Err(ScramClientError::UnusableNonce);
        }
        let nonce = STANDARD.encode(random);
        ScramClient::new(self.mechanism, &self.user, &self.password, nonce.as_bytes())
    }
}

/// SCRAM as an enhanced authentication mechanism: client-first in CONNECT,
/// client-final answering server-first, server-final checked at CONNACK.
impl EnhancedAuth for ScramLogin {
    fn method(&self) -> &str {
        self.mechanism.name()
    }

    fn random_len(&self) -> usize {
        NONCE_RANDOM_LEN
    }

    fn start(&mut self, random: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        self.exchange = None;
        let exchange = self.begin(random)?;
        let first = exchange.first();
        self.exchange = Some(exchange);
        Ok(Some(first))
    }

    fn step(&mut self, data: Option<&[u8]>) -> Result<Vec<u8>, AuthError> {
        let exchange = self.exchange.as_mut().ok_or(ScramClientError::OutOfOrder)?;
        Ok(exchange.respond(data.unwrap_or_default())?)
    }

    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError> {
        let mut exchange = self.exchange.take().ok_or(ScramClientError::OutOfOrder)?;
        Ok(exchange.verify(data.unwrap_or_default())?)
    }
}

#[derive(Debug, Clone)]
enum State {
    Started,
    Responded { server_signature: Vec<u8> },
    Done,
}

/// One SCRAM exchange on the client's side.
#[derive(Clone)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    bare: String,
    nonce: String,
    password: Vec<u8>,
    state: State,
}

/// Shows the mechanism only: the password does not belong in logs.
impl core::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

/// Escapes `=` as `=3D` and `,` as `=2C` (RFC 5802 §5.1 `saslname`).
fn escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn is_nonce(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

impl ScramClient {
    /// A client for `user` and `password` with this connection's fresh
    /// `client_nonce` (printable ASCII without `,`, e.g. base64 of 18
    /// random bytes).
    pub fn new(
        mechanism: ScramMechanism,
        user: &str,
        password: &[u8],
        client_nonce: &[u8],
    ) -> Result<ScramClient, ScramClientError> {
        let nonce = core::str::from_utf8(client_nonce)
            .ok()
            .filter(|n| is_nonce(n))
            .ok_or(ScramClientError::UnusableNonce)?;
        if user.is_empty() || user.len() > 256 {
            return Err(ScramClientError::UnusableUser);
        }
        Ok(ScramClient {
            mechanism,
            bare: format!("n={},r={nonce}", escape(user)),
            nonce: nonce.to_string(),
            password: password.to_vec(),
            state: State::Started,
        })
    }

    /// The mechanism, whose name is the CONNECT's Authentication Method.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The client-first message: the CONNECT's Authentication Data.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.bare).into_bytes()
    }

    /// Reads the server-first message and returns the client-final one.
    pub fn respond(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramClientError> {
        if !matches!(self.state, State::Started) {
            return Err(ScramClientError::OutOfOrder);
        }
        let s = text(server_first)?;
        let mut attrs = s.split(',');
        let (Some(r), Some(salt), Some(i)) = (attrs.next(), attrs.next(), attrs.next()) else {
            return Err(ScramClientError::Malformed("expected r=,s=,i="));
        };
        if r.starts_with("m=") {
            return Err(ScramClientError::Malformed(
                "the server asks for an unsupported mandatory extension",
            ));
        }
        let nonce = r
            .strip_prefix("r=")
            .ok_or(ScramClientError::Malformed("the nonce (r=) is missing"))?;
        if !is_nonce(nonce) || !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramClientError::NonceMismatch);
        }
        let salt = salt
            .strip_prefix("s=")
            .and_then(|s| STANDARD.decode(s).ok())
            .filter(|s| !s.is_empty())
            .ok_or(ScramClientError::Malformed("the salt (s=) is not base64"))?;
        let i = i
            .strip_prefix("i=")
            .and_then(|i| i.parse::<u32>().ok())
            .ok_or(ScramClientError::Malformed(
                "the iteration count (i=) is missing",
            ))?;
        if i == 0 || i > MAX_ITERATIONS {
            return Err(ScramClientError::Iterations(i));
        }
        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, i);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        // c=biws is base64 of the gs2 header "n,,".
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{s},{without_proof}", self.bare);
        let signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.state = State::Responded {
            server_signature: m.hmac(&server_key, auth_message.as_bytes()),
        };
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it knows the
    /// credential. A connection whose CONNACK fails this check must not be
    /// trusted.
    pub fn verify(&mut self, server_final: &[u8]) -> Result<(), ScramClientError> {
        let State::Responded { server_signature } = &self.state else {
            return Err(ScramClientError::OutOfOrder);
        };
        let s = text(server_final)?;
        let first = s.split(',').next().unwrap_or_default();
        if let Some(e) = first.strip_prefix("e=") {
            return Err(ScramClientError::Refused(e.to_string()));
        }
        let v = first
            .strip_prefix("v=")
            .and_then(|v| STANDARD.decode(v).ok())
            .ok_or(ScramClientError::Malformed("the signature (v=) is missing"))?;
        if !bool::from(v.ct_eq(server_signature)) {
            return Err(ScramClientError::ServerSignature);
        }
        self.state = State::Done;
        Ok(())
    }
}

fn text(message: &[u8]) -> Result<&str, ScramClientError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(ScramClientError::Unreadable);
    }
    core::str::from_utf8(message).map_err(|_| ScramClientError::Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: user "user", password "pencil".
    #[test]
    fn rfc_7677_example_gives_its_client_final_and_checks_its_signature() {
        let mut c = ScramClient::new(
            ScramMechanism::Sha256,
            "user",
            b"pencil",
            b"rOprNGfwEbeRWgbNEkqO",
        )
        .unwrap();
        assert_eq!(c.first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .respond(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            fin,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let mut wrong = c.clone();
        assert_eq!(
            wrong.verify(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramClientError::ServerSignature)
        );
        c.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn a_server_nonce_not_extending_the_client_s_is_refused() {
        let mut c = ScramClient::new(ScramMechanism::Sha256, "u", b"p", b"abc").unwrap();
        assert_eq!(
            c.respond(b"r=xyzdef,s=QUJD,i=4096"),
            Err(ScramClientError::NonceMismatch)
        );
        assert_eq!(
            c.respond(b"r=abc,s=QUJD,i=4096"),
            Err(ScramClientError::NonceMismatch)
        );
    }

    #[test]
    fn hostile_iteration_counts_and_order_are_refused() {
        let mut c = ScramClient::new(ScramMechanism::Sha512, "u", b"p", b"abc").unwrap();
        assert_eq!(
            c.respond(b"r=abcdef,s=QUJD,i=4000000000"),
            Err(ScramClientError::Iterations(4_000_000_000))
        );
        assert_eq!(c.verify(b"v=QUJD"), Err(ScramClientError::OutOfOrder));
        assert_eq!(
            c.respond(b"e=other-error"),
            Err(ScramClientError::Malformed("expected r=,s=,i="))
        );
        c.respond(b"r=abcdef,s=QUJD,i=4096").unwrap();
        assert_eq!(
            c.respond(b"r=abcdef,s=QUJD,i=4096"),
            Err(ScramClientError::OutOfOrder)
        );
        assert_eq!(
            c.verify(b"e=invalid-proof"),
            Err(ScramClientError::Refused("invalid-proof".into()))
        );
    }

    #[test]
    fn user_names_are_escaped_and_nonces_checked() {
        let c = ScramClient::new(ScramMechanism::Sha256, "a=b,c", b"p", b"n").unwrap();
        assert_eq!(c.first(), b"n,,n=a=3Db=2Cc,r=n");
        assert_eq!(
            ScramClient::new(ScramMechanism::Sha256, "u", b"p", b"a,b").unwrap_err(),
            ScramClientError::UnusableNonce
        );
        assert_eq!(
            ScramClient::new(ScramMechanism::Sha256, "", b"p", b"n").unwrap_err(),
            ScramClientError::UnusableUser
        );
    }

    proptest::proptest! {
        /// Whatever a server sends, the client does not panic.
        #[test]
        fn arbitrary_server_messages_never_panic(a in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
                                                 b in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut c = ScramClient::new(ScramMechanism::Sha256, "u", b"p", b"abc").unwrap();
            let _ = c.respond(&a);
            let _ = c.verify(&b);
        }
    }
}
