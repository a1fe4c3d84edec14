//! MQTT 5.0 enhanced authentication (section 4.12) on the client's side,
//! for any mechanism: the [`EnhancedAuth`] trait, which SCRAM
//! ([`ScramLogin`](crate::ScramLogin)) implements and so can an
//! application's own mechanism, and the errors of an exchange
//! ([`AuthError`]). The driver runs one exchange on every connection:
//!
//! ```text
//! CONNECT  method = auth.method(), data = auth.start(random)
//! AUTH     0x18 <- server data          auth.step(data) -> answer
//! AUTH     0x18 -> answer               (as many rounds as the mechanism needs)
//! CONNACK  0x00 <- server data          auth.finish(data)
//! ```
//!
//! A step or final check that fails ends the connection with DISCONNECT:
//! 0x80 Unspecified error when the mechanism refused the server's data (the
//! Reason Codes naming authentication failures, such as 0x87, are the
//! server's alone in DISCONNECT, MQTT 5.0 section 3.14.2.1), 0x82 Protocol
//! Error for an AUTH the exchange does not allow.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use mqtt_session::mqtt_codec::ReasonCode;
use mqtt_session::UsageError;

use crate::scram::ScramClientError;

/// The most random bytes a mechanism may ask for per exchange
/// ([`EnhancedAuth::random_len`]); a larger request is cut to this.
pub const MAX_RANDOM_LEN: usize = 64;

/// One MQTT 5.0 enhanced authentication mechanism on the client's side
/// (section 4.12): its Authentication Method, the Authentication Data of
/// CONNECT, an answer to each AUTH 0x18 (Continue authentication) of the
/// server, and the check of the CONNACK's data. The same value serves every
/// connection of a client: [`start`](Self::start) begins a fresh exchange
/// each time.
///
/// Use one with
/// [`OptionSetters::enhanced_auth`](crate::OptionSetters::enhanced_auth).
/// Methods are called from the client's connection task, so they must not
/// block for long, and the mechanism must be `Send + Sync` (that task may
/// move between threads); a mechanism must bound what it accepts from the
/// server (the server may be hostile).
///
/// ```
/// use mqtt_client::auth::{AuthError, EnhancedAuth};
///
/// /// Answers the server's challenge with a shared secret appended.
/// #[derive(Clone)]
/// struct Secret(Vec<u8>);
///
/// impl EnhancedAuth for Secret {
///     fn method(&self) -> &str {
///         "EXAMPLE-SECRET"
///     }
///     fn start(&mut self, _random: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
///         Ok(None)
///     }
///     fn step(&mut self, challenge: Option<&[u8]>) -> Result<Vec<u8>, AuthError> {
///         let challenge = challenge.ok_or_else(|| AuthError::rejected("no challenge"))?;
///         Ok([challenge, &self.0[..]].concat())
///     }
///     fn finish(&mut self, _data: Option<&[u8]>) -> Result<(), AuthError> {
///         Ok(())
///     }
/// }
/// ```
pub trait EnhancedAuth: Send + Sync {
    /// The Authentication Method: sent in CONNECT, and the one every AUTH
    /// and the CONNACK of the exchange must carry [MQTT-4.12.0-5].
    fn method(&self) -> &str;

    /// How many fresh random bytes [`start`](Self::start) needs (a nonce),
    /// at most [`MAX_RANDOM_LEN`]; 0 (the default) for none.
    fn random_len(&self) -> usize {
        0
    }

    /// Begins a new exchange (each connection), forgetting any earlier one:
    /// returns CONNECT's Authentication Data, if any. `random` holds
    /// [`random_len`](Self::random_len) bytes from the operating system, or
    /// is empty if it gave none (a mechanism needing them then fails rather
    /// than use guessable ones).
    fn start(&mut self, random: &[u8]) -> Result<Option<Vec<u8>>, AuthError>;

    /// The server asked to continue (AUTH 0x18) with `data`: the
    /// Authentication Data of the client's answer (AUTH 0x18), or why the
    /// exchange cannot go on.
    fn step(&mut self, data: Option<&[u8]>) -> Result<Vec<u8>, AuthError>;

    /// The server accepted the connection (CONNACK 0x00) with `data`: an
    /// error if the server has not proven what the mechanism needs it to
    /// prove (the connection is then ended and not reported as connected).
    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError>;
}

/// Why enhanced authentication failed on the client's side; the client
/// ended the connection with DISCONNECT
/// ([`disconnect_reason`](AuthError::disconnect_reason)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// SCRAM refused the server's messages (or had no randomness).
    #[error(transparent)]
    Scram(#[from] ScramClientError),
    /// An application's mechanism refused the server's data, or could not
    /// start: its own words.
    #[error("the authentication mechanism refused: {0}")]
    Rejected(String),
    /// The server sent AUTH with a Reason Code the exchange does not allow
    /// at that point (0x00 before CONNACK, 0x19, or any AUTH once the
    /// exchange is over).
    #[error("the server sent AUTH {0} where the exchange allows none")]
    UnexpectedAuth(ReasonCode),
    /// The mechanism's answer cannot be sent (larger than the server's
    /// maximum packet size, say).
    #[error("the authentication answer cannot be sent: {0}")]
    Unsendable(UsageError),
}

impl AuthError {
    /// [`AuthError::Rejected`] with `why`.
    pub fn rejected(why: impl Into<String>) -> AuthError {
        AuthError::Rejected(why.into())
    }

    /// The Reason Code of the DISCONNECT the client sends for this error:
    /// 0x82 Protocol Error for an AUTH out of sequence, 0x83 Implementation
    /// specific error for an answer that cannot be sent, and 0x80
    /// Unspecified error when the mechanism refused (0x87 Not authorized
    /// is for servers only in DISCONNECT, MQTT 5.0 section 3.14.2.1).
    pub fn disconnect_reason(&self) -> ReasonCode {
        match self {
            AuthError::UnexpectedAuth(_) => ReasonCode::PROTOCOL_ERROR,
            AuthError::Unsendable(_) => ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR,
            AuthError::Scram(_) | AuthError::Rejected(_) => ReasonCode::UNSPECIFIED_ERROR,
        }
    }
}

/// What the options keep a mechanism as: a mechanism that can be copied, so
/// that the options (and each client made from them) can be too.
trait CloneAuth: EnhancedAuth {
    fn clone_box(&self) -> Box<dyn CloneAuth>;
}

impl<A: EnhancedAuth + Clone + 'static> CloneAuth for A {
    fn clone_box(&self) -> Box<dyn CloneAuth> {
        Box::new(self.clone())
    }
}

/// An [`EnhancedAuth`] mechanism as the options and the driver hold it
/// ([`OptionSetters::enhanced_auth`](crate::OptionSetters::enhanced_auth),
/// [`ClientDriver::with_auth`](crate::ClientDriver::with_auth)).
pub struct AuthMechanism(Box<dyn CloneAuth>);

impl AuthMechanism {
    /// Wraps `auth`; each copy of the options gets its own copy of it.
    pub fn new(auth: impl EnhancedAuth + Clone + 'static) -> AuthMechanism {
        AuthMechanism(Box::new(auth))
    }
}

/// Forwards to the mechanism wrapped.
impl EnhancedAuth for AuthMechanism {
    fn method(&self) -> &str {
        self.0.method()
    }

    fn random_len(&self) -> usize {
        self.0.random_len()
    }

    fn start(&mut self, random: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        self.0.start(random)
    }

    fn step(&mut self, data: Option<&[u8]>) -> Result<Vec<u8>, AuthError> {
        self.0.step(data)
    }

    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError> {
        self.0.finish(data)
    }
}

impl Clone for AuthMechanism {
    fn clone(&self) -> Self {
        AuthMechanism(self.0.clone_box())
    }
}

/// Shows the method only: a mechanism holds secrets.
impl fmt::Debug for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthMechanism")
            .field("method", &self.method())
            .finish_non_exhaustive()
    }
}
