//! The driver's SCRAM exchange against a `Connection<Server>` whose
//! application computes the server side here, from RFC 5802 §3's formulas
//! (independently of `ScramClient`): CONNECT with the client-first message,
//! AUTH 0x18 both ways, CONNACK with the server-final message.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use mqtt_session::mqtt_codec::{AuthProps, ConnAckProps, ProtocolVersion, Str};
use mqtt_session::{Server, ServerConfig, ServerEvent};
use sha2::{Digest, Sha256};

use super::*;
use crate::scram::{ScramClientError, ScramMechanism, NONCE_RANDOM_LEN};

struct Slots;

impl ReplySender for Slots {
    type Reply<T> = ();
    type ConnectError = &'static str;

    fn send<T>(_: (), _: Result<T, ClientError>) {}
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// How the test server misbehaves, if it does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Its server-first nonce does not extend the client's.
    ForeignNonce,
    /// It accepts without knowing the password (a wrong ServerSignature).
    WrongSignature,
}

/// The server side of SCRAM-SHA-256 for one user's password.
struct TestScram {
    salted: Vec<u8>,
    behaviour: Behaviour,
    /// client-first-message-bare and server-first-message, for AuthMessage.
    transcript: Option<(String, String)>,
}

impl TestScram {
    fn new(password: &str, behaviour: Behaviour) -> TestScram {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), b"salt-of-test", 4096, &mut salted);
        TestScram {
            salted: salted.to_vec(),
            behaviour,
            transcript: None,
        }
    }

    fn first(&mut self, client_first: &[u8]) -> Vec<u8> {
        let bare = core::str::from_utf8(client_first)
            .unwrap()
            .strip_prefix("n,,")
            .unwrap();
        let nonce = bare.split(",r=").nth(1).unwrap();
        let nonce = match self.behaviour {
            Behaviour::ForeignNonce => "someone-else",
            Behaviour::Honest | Behaviour::WrongSignature => nonce,
        };
        let first = format!(
            "r={nonce}server-part,s={},i=4096",
            STANDARD.encode(b"salt-of-test")
        );
        self.transcript = Some((bare.into(), first.clone()));
        first.into_bytes()
    }

    /// The server-final message if the proof holds.
    fn last(&mut self, client_final: &[u8]) -> Option<Vec<u8>> {
        let (bare, first) = self.transcript.take()?;
        let text = core::str::from_utf8(client_final).ok()?;
        let (without_proof, proof) = text.rsplit_once(",p=")?;
        let auth = format!("{bare},{first},{without_proof}");
        let stored = Sha256::digest(hmac(&self.salted, b"Client Key")).to_vec();
        let signature = hmac(&stored, auth.as_bytes());
        let client_key: Vec<u8> = STANDARD
            .decode(proof)
            .ok()?
            .iter()
            .zip(&signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if Sha256::digest(&client_key).to_vec() != stored {
            return None;
        }
        let server_key = match self.behaviour {
            Behaviour::WrongSignature => hmac(b"not the password", b"Server Key"),
            Behaviour::Honest | Behaviour::ForeignNonce => hmac(&self.salted, b"Server Key"),
        };
        Some(format!("v={}", STANDARD.encode(hmac(&server_key, auth.as_bytes()))).into_bytes())
    }
}

/// Runs one connection of a driver logging in as alice/`password`, its
/// nonce made of `random`, against a server knowing alice/"pencil" and
/// behaving as `behaviour`; the driver afterwards.
fn connect(password: &str, behaviour: Behaviour, random: &[u8]) -> ClientDriver<Slots> {
    let now = Instant::ZERO;
    let config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("c"));
    let login = ScramLogin::new(ScramMechanism::Sha256, "alice", password.as_bytes()).unwrap();
    let mut driver = ClientDriver::<Slots>::new(config, None).with_scram(Some(login));
    assert!(driver.needs_nonce());
    driver.start_with_nonce(now, random);
    let mut server = Connection::<Server>::new(ServerConfig::default(), now);
    let mut scram = TestScram::new("pencil", behaviour);
    let method = || Some(Str::from_static("SCRAM-SHA-256"));
    for _ in 0..10 {
        let mut up = BytesMut::new();
        let _ = driver.poll_transmit(now, &mut up);
        server.handle_read(now, &mut up);
        while let Some(ev) = server.poll_event() {
            match ev {
                ServerEvent::Connect(c) => {
                    let asked = c.props.authentication_method.as_ref().map(|m| m.as_str());
                    assert_eq!(asked, Some("SCRAM-SHA-256"));
                    let data = c.props.authentication_data.unwrap();
                    let mut props = AuthProps::default();
                    props.authentication_method = method();
                    props.authentication_data = Some(Bytes::from(scram.first(&data)));
                    server
                        .auth(now, ReasonCode::CONTINUE_AUTHENTICATION, props)
                        .unwrap();
                }
                ServerEvent::Auth { reason, props } => {
                    assert_eq!(reason, ReasonCode::CONTINUE_AUTHENTICATION);
                    match scram.last(&props.authentication_data.unwrap()) {
                        Some(fin) => {
                            let mut ack = ConnAckProps::default();
                            ack.authentication_method = method();
                            ack.authentication_data = Some(Bytes::from(fin));
                            server.accept(now, None, ack).unwrap();
                        }
                        None => server.reject(now, ReasonCode::BAD_USER_NAME_OR_PASSWORD),
                    }
                }
                _ => {}
            }
        }
        let mut down = BytesMut::new();
        let _ = server.poll_transmit(now, &mut down);
        driver.handle_read(now, &mut down);
    }
    driver
}

const RANDOM: [u8; NONCE_RANDOM_LEN] = [7; NONCE_RANDOM_LEN];

#[test]
fn the_driver_answers_the_server_first_and_checks_the_server_final() {
    let mut driver = connect("pencil", Behaviour::Honest, &RANDOM);
    assert!(driver.is_connected());
    assert!(matches!(driver.poll_event(), Some(Event::Connected { .. })));
}

#[test]
fn a_wrong_password_is_refused_by_the_server() {
    let mut driver = connect("crayon", Behaviour::Honest, &RANDOM);
    assert!(!driver.is_connected() && driver.is_closed());
    let close = match driver.connection_ended(Instant::ZERO) {
        AfterConnection::Failed(close) => close.map(|c| *c),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        driver.connect_error(close),
        ConnectError::Refused {
            reason: ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            reason_string: None
        }
    );
}

/// The first connection's failure, as `connect` reports it.
fn failure(mut driver: ClientDriver<Slots>) -> ConnectError {
    assert!(!driver.is_connected());
    match driver.connection_ended(Instant::ZERO) {
        AfterConnection::Failed(close) => driver.connect_error(close.map(|c| *c)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_server_that_cannot_prove_the_credential_is_left() {
    let driver = connect("pencil", Behaviour::WrongSignature, &RANDOM);
    assert_eq!(
        failure(driver),
        ConnectError::Authentication(AuthError::Scram(ScramClientError::ServerSignature))
    );
}

#[test]
fn a_server_first_with_a_foreign_nonce_ends_the_exchange() {
    let driver = connect("pencil", Behaviour::ForeignNonce, &RANDOM);
    assert_eq!(
        failure(driver),
        ConnectError::Authentication(AuthError::Scram(ScramClientError::NonceMismatch))
    );
}

#[test]
fn without_enough_randomness_nothing_is_sent() {
    let mut driver = connect("pencil", Behaviour::Honest, &RANDOM[..4]);
    let mut wire = BytesMut::new();
    assert_eq!(driver.poll_transmit(Instant::ZERO, &mut wire), 0);
    assert_eq!(
        failure(driver),
        ConnectError::Authentication(AuthError::Scram(ScramClientError::UnusableNonce))
    );
}

#[test]
fn scram_options_need_mqtt_5() {
    use crate::{ClientOptions, OptionSetters};
    let parts = ClientOptions::new("mqtt://h")
        .unwrap()
        .scram("alice", "pencil")
        .into_parts()
        .unwrap();
    assert_eq!(parts.auth.unwrap().method(), "SCRAM-SHA-256");
    let e = ClientOptions::new("mqtt://h")
        .unwrap()
        .scram("alice", "pencil")
        .version(ProtocolVersion::V311)
        .into_parts()
        .unwrap_err();
    assert!(matches!(e, ConnectError::InvalidOption { option, .. } if option == "scram"));
    let e = ClientOptions::new("mqtt://h")
        .unwrap()
        .scram("", "pencil")
        .into_parts()
        .unwrap_err();
    assert!(matches!(e, ConnectError::InvalidOption { option, .. } if option == "scram"));
}
