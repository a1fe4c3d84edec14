//! The server's side of one SCRAM exchange: [`ScramServer::start`] reads the
//! client-first message and writes the server-first; the [`Pending`] it
//! returns reads the client-final message and writes the server-final.

use subtle::ConstantTimeEq;

use super::messages::{self, ClientFirst};
use super::{Mechanism, ScramCredential, ScramError, DEFAULT_ITERATIONS, SALT_LEN};

/// Where the server finds a user's credential.
pub trait CredentialLookup {
    /// The credential of `user` for `mechanism`, if there is one.
    fn credential(&self, mechanism: Mechanism, user: &str) -> Option<ScramCredential>;

    /// The iteration count unknown users are answered with: the one most
    /// real users of `mechanism` have, so that it does not tell them apart.
    fn typical_iterations(&self, mechanism: Mechanism) -> u32 {
        let _ = mechanism;
        DEFAULT_ITERATIONS
    }
}

/// The server side of SCRAM for one mechanism, over a credential lookup.
#[derive(Debug, Clone)]
pub struct ScramServer<L> {
    mechanism: Mechanism,
    lookup: L,
    decoy_key: [u8; 32],
}

/// An exchange after the server-first message, waiting for the
/// client-final message. It is consumed by [`Pending::finish`], so a
/// client-final message is checked at most once per server nonce.
pub struct Pending {
    mechanism: Mechanism,
    user: String,
    gs2_header: String,
    nonce: String,
    client_first_bare: String,
    server_first: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    known: bool,
}

/// Shows the user only: keys do not belong in logs.
impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl<L: CredentialLookup> ScramServer<L> {
    /// A server for `mechanism` finding credentials in `lookup`.
    ///
    /// `decoy_key` is a secret (random, chosen once by the caller, e.g. at
    /// start) from which made-up credentials of unknown users are derived:
    /// the same user name always gets the same salt, so asking twice does
    /// not reveal that the user does not exist.
    pub fn new(mechanism: Mechanism, lookup: L, decoy_key: [u8; 32]) -> ScramServer<L> {
        ScramServer {
            mechanism,
            lookup,
            decoy_key,
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Reads the client-first message and answers with the server-first
    /// message. `server_nonce_suffix` is this exchange's fresh server part
    /// of the nonce, chosen by the caller (e.g. base64 of 18 random bytes):
    /// 8 to 128 printable ASCII characters without `,`.
    ///
    /// An unknown user is not refused here: the exchange goes on with a
    /// made-up credential and fails at [`Pending::finish`] exactly like a
    /// wrong password (see [`ScramServer::new`]; RFC 5802 §7 lets a server
    /// hide the real reason of a failure to avoid disclosing information).
    pub fn start(
        &self,
        client_first: &[u8],
        server_nonce_suffix: &[u8],
    ) -> Result<(Vec<u8>, Pending), ScramError> {
        let suffix = std::str::from_utf8(server_nonce_suffix)
            .ok()
            .filter(|s| (8..=128).contains(&s.len()) && messages::is_nonce(s))
            .ok_or(ScramError::UnusableNonceSuffix)?;
        let first: ClientFirst = messages::parse_client_first(client_first)?;
        // The decoy is computed for every user so that known and unknown
        // users cost the same work.
        let decoy = self.decoy(first.user());
        let found = self
            .lookup
            .credential(self.mechanism, first.user())
            .filter(|c| c.mechanism() == self.mechanism);
        let known = found.is_some();
        let credential = found.unwrap_or(decoy);
        let nonce = format!("{}{suffix}", first.nonce());
        let server_first =
            messages::server_first(&nonce, credential.salt(), credential.iterations());
        let pending = Pending {
            mechanism: self.mechanism,
            user: first.user().to_string(),
            gs2_header: first.gs2_header().to_string(),
            nonce,
            client_first_bare: first.bare().to_string(),
            server_first: server_first.clone(),
            stored_key: credential.stored_key().to_vec(),
            server_key: credential.server_key().to_vec(),
            known,
        };
        Ok((server_first.into_bytes(), pending))
    }

    /// A credential for `user` that no password matches in practice, with
    /// a salt (as long as real ones) and keys derived from the decoy key and
    /// the user name, and the iteration count most real users have.
    fn decoy(&self, user: &str) -> ScramCredential {
        let m = self.mechanism;
        let part = |label: &[u8]| {
            let mut data = label.to_vec();
            data.extend_from_slice(user.as_bytes());
            m.hmac(&self.decoy_key, &data)
        };
        let mut salt = part(b"salt:");
        salt.truncate(SALT_LEN);
        ScramCredential::from_parts(
            m,
            self.lookup.typical_iterations(m),
            salt,
            part(b"stored:"),
            part(b"server:"),
        )
        .expect("HMAC outputs have the mechanism's length")
    }
}

impl Pending {
    /// The user name of the client-first message (not yet authenticated).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Reads the client-final message. On success: the server-final
    /// message (for CONNACK's Authentication Data) and the authenticated
    /// user name.
    pub fn finish(self, client_final: &[u8]) -> Result<(Vec<u8>, String), ScramError> {
        let m = self.mechanism;
        let fin = messages::parse_client_final(client_final, m.output_len())?;
        // Without channel binding, c= is the gs2 header itself (RFC 5802 §7,
        // cbind-input).
        if fin.channel_binding() != self.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if fin.nonce() != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare,
            self.server_first,
            fin.without_proof()
        );
        // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the
        // proof holds when H(ClientKey) = StoredKey (RFC 5802 §3).
        let signature = m.hmac(&self.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = fin
            .proof()
            .iter()
            .zip(&signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let proof_ok = m.hash(&client_key).ct_eq(&self.stored_key);
        if !bool::from(proof_ok & subtle::Choice::from(u8::from(self.known))) {
            return Err(ScramError::BadCredentials);
        }
        let server_signature = m.hmac(&self.server_key, auth_message.as_bytes());
        Ok((
            messages::server_final(&server_signature).into_bytes(),
            self.user,
        ))
    }
}
