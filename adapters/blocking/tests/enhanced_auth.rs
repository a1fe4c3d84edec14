//! The blocking client's `.enhanced_auth(...)` with an application's own
//! mechanism (one that asks for a nonce, so the client's randomness is
//! exercised too) against the testkit's scripted server of a toy method:
//! each challenge answered reversed, `welcome` in CONNACK.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_blocking::{
    AuthError, BlockingRequests, Client, ConnectOptions, EnhancedAuth, OptionSetters, ReasonCode,
};
use mqtt_testkit::{toy_auth_broker, TOY_METHOD};

/// Every wait in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(10);

/// The client side of the toy method; keeps the random bytes it was given.
#[derive(Clone, Default)]
struct Reverse {
    randoms: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl EnhancedAuth for Reverse {
    fn method(&self) -> &str {
        TOY_METHOD
    }

    fn random_len(&self) -> usize {
        16
    }

    fn start(&mut self, random: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        self.randoms.lock().unwrap().push(random.to_vec());
        Ok(Some(b"hello".to_vec()))
    }

    fn step(&mut self, data: Option<&[u8]>) -> Result<Vec<u8>, AuthError> {
        let challenge = data.ok_or_else(|| AuthError::rejected("no challenge"))?;
        Ok(challenge.iter().rev().copied().collect())
    }

    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError> {
        match data {
            Some(b"welcome") => Ok(()),
            _ => Err(AuthError::rejected("the server did not say welcome")),
        }
    }
}

#[test]
fn the_blocking_client_runs_an_application_mechanism_with_fresh_randomness() {
    let (url, server) = toy_auth_broker(false);
    let auth = Reverse::default();
    let options = ConnectOptions::new(&url)
        .unwrap()
        .connect_timeout(LIMIT)
        .request_timeout(LIMIT)
        .enhanced_auth(auth.clone());
    let (client, _incoming) = Client::connect(options).unwrap();
    client.disconnect().unwrap();
    let outcome = server.join().unwrap();
    assert!(outcome.accepted);
    assert_eq!(
        outcome.client_disconnect,
        Some(ReasonCode::NORMAL_DISCONNECTION)
    );
    let randoms = auth.randoms.lock().unwrap();
    assert_eq!(randoms.len(), 1);
    assert_eq!(randoms[0].len(), 16);
    assert!(randoms[0].iter().any(|&b| b != 0), "random, not zeros");
}
