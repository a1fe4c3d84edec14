//! Authentication and authorisation for the broker: the hook the server
//! drives ([`Authenticator`]), enhanced authentication methods
//! ([`EnhancedMethod`], kept in [`AuthMethods`]), and the built-in
//! implementation over Mosquitto's password and ACL files
//! ([`FileAuthenticator`], the `[auth]` section).
//!
//! The broker core never calls any of this: it emits an authentication
//! request for each CONNECT (and each step of enhanced authentication), and
//! the server's core task hands it to the [`Authenticator`], whose future
//! runs off the core task (the file check on tokio's blocking pool), at
//! most `auth.max_concurrent_checks` at once; the answer goes back to the
//! core when it is ready. A slow check delays only the client waiting for
//! it. The answer carries the client's [`Rights`] as plain data, which the
//! core checks on every publish, subscribe and delivery.
//!
//! Refusals, as the broker core sends them:
//!
//! | case | 5.0 | 3.1.1 |
//! |---|---|---|
//! | unknown user, wrong or missing password | CONNACK 0x86 Bad User Name or Password | return code 4 |
//! | no user name while anonymous clients are not allowed | CONNACK 0x87 Not Authorized | return code 5 |
//! | an Authentication Method no method implements | CONNACK 0x8C Bad authentication method | (no AUTH in 3.1.1) |
//! | a will topic the rights do not allow | CONNACK 0x87 | return code 5 |
//! | subscription the rights do not grant | SUBACK 0x87 | SUBACK 0x80 |
//! | publish the rights do not grant | PUBACK/PUBREC 0x87, message dropped | acknowledged, message dropped |
//! | a message the subscriber may not read | not delivered | not delivered |
//! | a failed re-authentication | DISCONNECT with the method's reason (0x86, not a DISCONNECT code, becomes 0x87) | (no AUTH in 3.1.1) |
//! | SCRAM: wrong password or unknown user | CONNACK 0x86 | (no AUTH in 3.1.1) |
//! | SCRAM: malformed messages, channel binding, extensions, nonce mismatch | CONNACK 0x87 | (no AUTH in 3.1.1) |
//! | JWT: bad signature, expired, not yet valid, wrong issuer/audience, other user than the CONNECT's | CONNACK 0x86 | return code 4 |
//!
//! Mosquitto 2.0 answers a wrong password with 0x87 / return code 5 as well;
//! this broker uses the code the specification names for it (section 3.2.2.2
//! of 5.0, 3.2.2.3 of 3.1.1), which clients report as "bad user name or
//! password".

mod file;
mod methods;
mod scram;
mod token;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use mqtt_router::broker::{AuthAnswer, AuthRequest, ConnId, Rights};

use crate::config::AuthConfig;

pub use file::{AuthError, FileAuthenticator};
pub use methods::{AuthMethods, EnhancedMethod, MethodExchange, MethodStep};
pub use scram::ScramMethod;

/// The answer an [`Authenticator`] gives later.
pub type AuthFuture = Pin<Box<dyn Future<Output = AuthAnswer> + Send + 'static>>;

/// Who may connect and what they may do: the asynchronous hook for users
/// kept elsewhere (a database, a directory, a token service). The server
/// calls it from its core task and runs the returned future on the runtime,
/// so an implementation must not block in the call itself: put slow work
/// in the future (`tokio::task::spawn_blocking` for CPU-bound checks).
pub trait Authenticator: Send + Sync + 'static {
    /// Answers one request: a CONNECT, the next step of an enhanced method,
    /// or a re-authentication (see [`AuthRequest::step`]). A success names
    /// the user (who owns the session) and carries the client's rights.
    fn authenticate(&self, request: AuthRequest) -> AuthFuture;

    /// Whether every CONNECT needs an answer. `false` lets a CONNECT
    /// without an Authentication Method in at once, with every right (the
    /// open broker); one naming a method is always asked about.
    fn required(&self) -> bool {
        true
    }

    /// The Authentication Methods (5.0 enhanced authentication) this
    /// authenticator implements; a CONNECT naming another is refused with
    /// CONNACK 0x8C by the core, without asking.
    fn methods(&self) -> Vec<String> {
        Vec::new()
    }

    /// The rights of a client that has not authenticated since the broker
    /// started: a session restored from the store (by its client
    /// identifier and user name), and a bridge (by its name and
    /// `local_username`).
    fn rights(&self, client_id: &str, username: Option<&str>) -> Rights {
        let _ = (client_id, username);
        Rights::allow_all()
    }

    /// Connection `conn` has closed: whatever is kept for it (the state of
    /// an enhanced method between steps) can go.
    fn forget(&self, conn: ConnId) {
        let _ = conn;
    }

    /// A reload (SIGHUP): the authenticator made from `config`'s `[auth]`
    /// section, to use from now on, or `None` if this one does not come
    /// from the configuration (the default: a custom authenticator keeps
    /// itself). An error keeps this one.
    ///
    /// # Errors
    /// Why the new settings cannot be used (a file missing or invalid).
    fn reloaded(
        &self,
        config: &AuthConfig,
    ) -> Result<Option<Arc<dyn Authenticator>>, ReloadAuthError> {
        let _ = config;
        Ok(None)
    }
}

/// Why an authenticator could not be reloaded.
pub type ReloadAuthError = Box<dyn std::error::Error + Send + Sync>;
