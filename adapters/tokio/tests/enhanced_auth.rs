//! The tokio client's `.enhanced_auth(...)` with an application's own
//! mechanism over a real loopback socket, against the testkit's scripted
//! server of a toy method (each challenge answered reversed, `welcome` in
//! CONNACK): the whole exchange on the wire, and what the client sends and
//! reports when the server's last word is not acceptable.

use std::time::Duration;

use mqtt_testkit::{toy_auth_broker, TOY_METHOD};
use mqtt_tokio::mqtt_client::auth::{AuthError, EnhancedAuth};
use mqtt_tokio::{
    mqtt_client, Client, ConnectError, ConnectOptions, OptionSetters, ReasonCode, Requests,
};

/// The client side of the toy method.
#[derive(Clone)]
struct Reverse;

impl EnhancedAuth for Reverse {
    fn method(&self) -> &str {
        TOY_METHOD
    }

    fn start(&mut self, _random: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        Ok(None)
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

fn options(url: &str) -> ConnectOptions {
    ConnectOptions::new(url)
        .unwrap()
        .client_id("toy-auth")
        .connect_timeout(Duration::from_secs(10))
        .enhanced_auth(Reverse)
}

#[tokio::test]
async fn the_tokio_client_runs_an_application_mechanism() {
    let (url, server) = toy_auth_broker(false);
    let (client, _incoming) =
        tokio::time::timeout(Duration::from_secs(20), Client::connect(options(&url)))
            .await
            .expect("bounded")
            .unwrap();
    client.disconnect().await.unwrap();
    let outcome = server.join().unwrap();
    assert!(outcome.accepted);
    assert_eq!(
        outcome.client_disconnect,
        Some(ReasonCode::NORMAL_DISCONNECTION)
    );
}

#[tokio::test]
async fn a_connack_the_mechanism_refuses_ends_the_connection_with_0x80() {
    let (url, server) = toy_auth_broker(true);
    let e = tokio::time::timeout(Duration::from_secs(20), Client::connect(options(&url)))
        .await
        .expect("bounded")
        .unwrap_err();
    assert!(
        matches!(
            &e,
            ConnectError::Protocol(mqtt_client::ConnectError::Authentication(
                AuthError::Rejected(why)
            )) if why.contains("welcome")
        ),
        "{e}"
    );
    let outcome = server.join().unwrap();
    assert_eq!(
        outcome.client_disconnect,
        Some(ReasonCode::UNSPECIFIED_ERROR)
    );
}
