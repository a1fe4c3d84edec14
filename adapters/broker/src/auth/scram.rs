//! SCRAM-SHA-256 and SCRAM-SHA-512 as built-in [`EnhancedMethod`]s: the
//! pure exchange of [`crate::scram`] over the `[auth] scram_file`
//! credentials, with the randomness it takes as arguments (a per-broker
//! secret for unknown users' decoy credentials, a fresh server nonce per
//! exchange) drawn here from the operating system.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mqtt_codec::ReasonCode;

use super::methods::{EnhancedMethod, MethodExchange, MethodStep};
use crate::scram::{Mechanism, Pending, ScramCredentials, ScramServer};

/// Random bytes in each exchange's server nonce part (24 characters of
/// base64, within the 8 to 128 the exchange accepts).
const NONCE_BYTES: usize = 18;

/// One SCRAM mechanism over shared credentials.
pub struct ScramMethod {
    server: Arc<ScramServer<Arc<ScramCredentials>>>,
}

impl ScramMethod {
    /// The method for `mechanism` over `credentials`. `secret` is chosen at
    /// random once per broker: unknown users' made-up credentials derive
    /// from it, so they look the same on every attempt.
    pub fn new(
        mechanism: Mechanism,
        credentials: Arc<ScramCredentials>,
        secret: [u8; 32],
    ) -> ScramMethod {
        ScramMethod {
            server: Arc::new(ScramServer::new(mechanism, credentials, secret)),
        }
    }
}

impl EnhancedMethod for ScramMethod {
    fn name(&self) -> &str {
        self.server.mechanism().name()
    }

    fn begin(&self, _client_id: &str) -> Box<dyn MethodExchange> {
        Box::new(ScramExchange::Start(self.server.clone()))
    }
}

/// Where one client's exchange is.
enum ScramExchange {
    /// Waiting for the client-first message (the CONNECT's or
    /// re-authentication's Authentication Data).
    Start(Arc<ScramServer<Arc<ScramCredentials>>>),
    /// The server-first message went out; waiting for the client-final.
    Sent(Pending),
    /// Finished or failed: any further step is refused.
    Over,
}

impl MethodExchange for ScramExchange {
    fn step(&mut self, data: Option<&[u8]>) -> MethodStep {
        match std::mem::replace(self, ScramExchange::Over) {
            ScramExchange::Start(server) => {
                // RFC 5802 §5: the client speaks first; no data, no exchange.
                let Some(first) = data else {
                    return MethodStep::Failed(ReasonCode::NOT_AUTHORIZED);
                };
                let Some(suffix) = nonce_suffix() else {
                    return MethodStep::Failed(ReasonCode::UNSPECIFIED_ERROR);
                };
                match server.start(first, suffix.as_bytes()) {
                    Ok((server_first, pending)) => {
                        *self = ScramExchange::Sent(pending);
                        MethodStep::Continue(server_first)
                    }
                    Err(e) => MethodStep::Failed(e.reason_code()),
                }
            }
            ScramExchange::Sent(pending) => {
                let Some(last) = data else {
                    return MethodStep::Failed(ReasonCode::NOT_AUTHORIZED);
                };
                match pending.finish(last) {
                    Ok((server_final, user)) => MethodStep::Done {
                        username: Some(user),
                        data: Some(server_final),
                    },
                    Err(e) => MethodStep::Failed(e.reason_code()),
                }
            }
            ScramExchange::Over => MethodStep::Failed(ReasonCode::NOT_AUTHORIZED),
        }
    }
}

/// A fresh server nonce part, base64 of random bytes; `None` when the
/// operating system gives no randomness.
fn nonce_suffix() -> Option<String> {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).ok()?;
    Some(STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(mechanism: Mechanism) -> ScramMethod {
        let mut c = ScramCredentials::new();
        c.set_password("alice", mechanism, b"secret", 4096).unwrap();
        ScramMethod::new(mechanism, Arc::new(c), [7; 32])
    }

    #[test]
    fn each_exchange_gets_its_own_nonce_and_garbage_is_refused() {
        let m = method(Mechanism::Sha256);
        assert_eq!(m.name(), "SCRAM-SHA-256");
        let first = b"n,,n=alice,r=abcdefgh";
        let nonce = |step: MethodStep| match step {
            MethodStep::Continue(s) => String::from_utf8(s).unwrap(),
            other => panic!("{other:?}"),
        };
        let a = nonce(m.begin("c").step(Some(first)));
        let b = nonce(m.begin("c").step(Some(first)));
        assert_ne!(a, b, "a fresh server nonce per exchange");
        assert!(a.starts_with("r=abcdefgh"));
        let refused = m.begin("c").step(Some(b"not scram"));
        assert_eq!(refused, MethodStep::Failed(ReasonCode::NOT_AUTHORIZED));
        assert_eq!(
            m.begin("c").step(None),
            MethodStep::Failed(ReasonCode::NOT_AUTHORIZED)
        );
    }
}
