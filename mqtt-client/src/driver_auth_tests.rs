//! The driver's enhanced authentication with an application's mechanism
//! (a toy challenge/response: the answer is the challenge reversed) against
//! a `Connection<Server>` scripted here: CONNECT with the method and first
//! data, AUTH 0x18 both ways as many rounds as the script says, CONNACK with
//! the server's last word; and what the client puts on the wire when the
//! server's data or sequence is wrong.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use mqtt_session::mqtt_codec::{AuthProps, ConnAckProps, Decoder, Packet, ProtocolVersion};
use mqtt_session::{Server, ServerConfig, ServerEvent};

use super::*;
use crate::auth::AuthMechanism;
use crate::{ClientOptions, OptionSetters};

struct Slots;

impl ReplySender for Slots {
    type Reply<T> = ();
    type ConnectError = &'static str;

    fn send<T>(_: (), _: Result<T, ClientError>) {}
}

const METHOD: &str = "TOY-REVERSE";

/// Answers each challenge with its bytes reversed; CONNECT carries
/// "hello" and the random bytes it was given; the CONNACK must say
/// "welcome".
#[derive(Clone, Default)]
struct Reverse {
    random_len: usize,
    /// The random bytes of each `start`.
    randoms: Vec<Vec<u8>>,
}

impl EnhancedAuth for Reverse {
    fn method(&self) -> &str {
        METHOD
    }

    fn random_len(&self) -> usize {
        self.random_len
    }

    fn start(&mut self, random: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
        self.randoms.push(random.to_vec());
        Ok(Some([&b"hello"[..], random].concat()))
    }

    fn step(&mut self, data: Option<&[u8]>) -> Result<Vec<u8>, AuthError> {
        match data {
            Some(challenge) if !challenge.is_empty() && challenge.len() <= 64 => {
                Ok(challenge.iter().rev().copied().collect())
            }
            _ => Err(AuthError::rejected("no usable challenge")),
        }
    }

    fn finish(&mut self, data: Option<&[u8]>) -> Result<(), AuthError> {
        match data {
            Some(b"welcome") => Ok(()),
            _ => Err(AuthError::rejected("the server did not say welcome")),
        }
    }
}

/// What the scripted server does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Two challenges, then CONNACK "welcome" if both answers are right.
    Honest,
    /// An empty challenge.
    EmptyChallenge,
    /// CONNACK with "hi" after one right answer.
    WrongWelcome,
    /// AUTH 0x00 Success instead of CONNACK.
    SuccessInAuth,
    /// An honest exchange, then AUTH 0x18 after CONNACK.
    AuthAfterConnAck,
}

const CHALLENGES: [&[u8]; 2] = [b"abc", b"12345"];

/// One connection of a driver with `auth` against the scripted server:
/// the driver, and the reason code of the DISCONNECT it sent, if any (read
/// off the wire: the server connection counts a DISCONNECT before CONNACK
/// as a protocol violation and reports no reason for it).
fn run(auth: Reverse, script: Script, random: &[u8]) -> (ClientDriver<Slots>, Option<ReasonCode>) {
    let now = Instant::ZERO;
    let config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("c"));
    let mut driver =
        ClientDriver::<Slots>::new(config, None).with_auth(Some(AuthMechanism::new(auth)));
    driver.start_with_nonce(now, random);
    let mut server = Connection::<Server>::new(ServerConfig::default(), now);
    let props = |data: &[u8]| {
        let mut p = AuthProps::default();
        p.authentication_method = Some(Str::from_static(METHOD));
        p.authentication_data = Some(Bytes::copy_from_slice(data));
        p
    };
    let welcome = |server: &mut Connection<Server>, data: &'static [u8]| {
        let mut ack = ConnAckProps::default();
        ack.authentication_method = Some(Str::from_static(METHOD));
        ack.authentication_data = Some(Bytes::from_static(data));
        server.accept(now, None, ack).unwrap();
    };
    let mut round = 0;
    let mut disconnect = None;
    let mut decoder = Decoder::with_version(ProtocolVersion::V5);
    for _ in 0..12 {
        let mut up = BytesMut::new();
        let _ = driver.poll_transmit(now, &mut up);
        let mut wire = up.clone();
        while let Ok(Some(packet)) = decoder.decode(&mut wire) {
            if let Packet::Disconnect(d) = packet {
                disconnect = Some(d.reason);
            }
        }
        server.handle_read(now, &mut up);
        while let Some(ev) = server.poll_event() {
            match ev {
                ServerEvent::Connect(c) => {
                    let method = c.props.authentication_method.as_ref().map(|m| m.as_str());
                    assert_eq!(method, Some(METHOD));
                    let data = c.props.authentication_data.unwrap();
                    assert_eq!(&data[..5], b"hello");
                    let challenge: &[u8] = match script {
                        Script::EmptyChallenge => b"",
                        _ => CHALLENGES[0],
                    };
                    if script == Script::SuccessInAuth {
                        server.auth(now, ReasonCode::SUCCESS, props(b"")).unwrap();
                    } else {
                        server
                            .auth(now, ReasonCode::CONTINUE_AUTHENTICATION, props(challenge))
                            .unwrap();
                    }
                }
                ServerEvent::Auth { reason, props: p } => {
                    assert_eq!(reason, ReasonCode::CONTINUE_AUTHENTICATION);
                    let answer = p.authentication_data.unwrap();
                    let expected: Vec<u8> = CHALLENGES[round].iter().rev().copied().collect();
                    if answer[..] != expected[..] {
                        server.reject(now, ReasonCode::NOT_AUTHORIZED);
                        continue;
                    }
                    round += 1;
                    match script {
                        Script::WrongWelcome => welcome(&mut server, b"hi"),
                        _ if round < CHALLENGES.len() => server
                            .auth(
                                now,
                                ReasonCode::CONTINUE_AUTHENTICATION,
                                props(CHALLENGES[round]),
                            )
                            .unwrap(),
                        _ => {
                            welcome(&mut server, b"welcome");
                            if script == Script::AuthAfterConnAck {
                                server
                                    .auth(now, ReasonCode::CONTINUE_AUTHENTICATION, props(b"x"))
                                    .unwrap();
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let mut down = BytesMut::new();
        let _ = server.poll_transmit(now, &mut down);
        driver.handle_read(now, &mut down);
    }
    (driver, disconnect)
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
fn a_custom_mechanism_answers_every_challenge_and_checks_the_connack() {
    let (mut driver, disconnect) = run(Reverse::default(), Script::Honest, &[]);
    assert!(driver.is_connected());
    assert!(!driver.needs_nonce());
    assert!(matches!(driver.poll_event(), Some(Event::Connected { .. })));
    assert!(disconnect.is_none());
}

#[test]
fn a_mechanism_asking_for_randomness_gets_its_bytes_capped() {
    let auth = Reverse {
        random_len: 1000,
        ..Reverse::default()
    };
    let config = ClientConfig::new(ProtocolVersion::V5, Str::from_static("c"));
    let driver = ClientDriver::<Slots>::new(config, None).with_auth(Some(AuthMechanism::new(auth)));
    assert!(driver.needs_nonce());
    assert_eq!(driver.nonce_len(), crate::auth::MAX_RANDOM_LEN);
    let auth = Reverse {
        random_len: 4,
        ..Reverse::default()
    };
    // Extra bytes are cut to what the mechanism asked for.
    let (driver, _) = run(auth, Script::Honest, &[1, 2, 3, 4, 5, 6]);
    assert!(driver.is_connected());
    assert_eq!(driver.nonce_len(), 4);
}

#[test]
fn a_challenge_the_mechanism_refuses_ends_the_connection_with_0x80() {
    let (driver, disconnect) = run(Reverse::default(), Script::EmptyChallenge, &[]);
    assert_eq!(disconnect, Some(ReasonCode::UNSPECIFIED_ERROR));
    assert_eq!(
        failure(driver),
        ConnectError::Authentication(AuthError::Rejected("no usable challenge".to_string()))
    );
}

#[test]
fn a_connack_the_mechanism_does_not_accept_is_not_a_connection() {
    let (mut driver, disconnect) = run(Reverse::default(), Script::WrongWelcome, &[]);
    assert!(!driver.has_connected());
    assert!(driver.poll_event().is_none(), "no Connected event");
    assert_eq!(disconnect, Some(ReasonCode::UNSPECIFIED_ERROR));
    assert!(matches!(
        failure(driver),
        ConnectError::Authentication(AuthError::Rejected(_))
    ));
}

#[test]
fn auth_success_before_connack_is_a_protocol_error() {
    let (driver, disconnect) = run(Reverse::default(), Script::SuccessInAuth, &[]);
    assert_eq!(disconnect, Some(ReasonCode::PROTOCOL_ERROR));
    assert_eq!(
        failure(driver),
        ConnectError::Authentication(AuthError::UnexpectedAuth(ReasonCode::SUCCESS))
    );
}

#[test]
fn auth_from_the_server_after_connack_is_a_protocol_error() {
    let (mut driver, disconnect) = run(Reverse::default(), Script::AuthAfterConnAck, &[]);
    assert!(driver.has_connected() && driver.is_closed());
    assert_eq!(disconnect, Some(ReasonCode::PROTOCOL_ERROR));
    assert!(matches!(driver.poll_event(), Some(Event::Connected { .. })));
    assert!(matches!(
        driver.connection_ended(Instant::ZERO),
        AfterConnection::Finished
    ));
    match driver.poll_event() {
        Some(Event::Disconnected { close, .. }) => {
            assert_eq!(close.reason, ReasonCode::PROTOCOL_ERROR)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn enhanced_auth_options_need_mqtt_5_and_a_method() {
    let parts = ClientOptions::new("mqtt://h")
        .unwrap()
        .enhanced_auth(Reverse::default())
        .into_parts()
        .unwrap();
    assert_eq!(parts.auth.as_ref().map(|a| a.method()), Some(METHOD));
    // Copies of the options hold copies of the mechanism.
    let mut copy = parts.auth.clone().unwrap();
    assert_eq!(copy.start(&[9]).unwrap(), Some(b"hello\x09".to_vec()));
    let e = ClientOptions::new("mqtt://h")
        .unwrap()
        .enhanced_auth(Reverse::default())
        .version(ProtocolVersion::V311)
        .into_parts()
        .unwrap_err();
    assert!(matches!(e, ConnectError::InvalidOption { option, .. } if option == "enhanced_auth"));

    #[derive(Clone)]
    struct Nameless;
    impl EnhancedAuth for Nameless {
        fn method(&self) -> &str {
            ""
        }
        fn start(&mut self, _: &[u8]) -> Result<Option<Vec<u8>>, AuthError> {
            Ok(None)
        }
        fn step(&mut self, _: Option<&[u8]>) -> Result<Vec<u8>, AuthError> {
            Ok(vec![])
        }
        fn finish(&mut self, _: Option<&[u8]>) -> Result<(), AuthError> {
            Ok(())
        }
    }
    let e = ClientOptions::new("mqtt://h")
        .unwrap()
        .enhanced_auth(Nameless)
        .into_parts()
        .unwrap_err();
    assert!(matches!(e, ConnectError::InvalidOption { option, .. } if option == "enhanced_auth"));
}

#[test]
fn auth_errors_map_to_client_reason_codes() {
    // 0x87 is a server's code in DISCONNECT; the client uses 0x80.
    assert_eq!(
        AuthError::rejected("x").disconnect_reason(),
        ReasonCode::UNSPECIFIED_ERROR
    );
    assert_eq!(
        AuthError::Scram(crate::ScramClientError::ServerSignature).disconnect_reason(),
        ReasonCode::UNSPECIFIED_ERROR
    );
    assert_eq!(
        AuthError::UnexpectedAuth(ReasonCode::RE_AUTHENTICATE).disconnect_reason(),
        ReasonCode::PROTOCOL_ERROR
    );
}
