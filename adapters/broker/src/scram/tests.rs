//! Whole exchanges: the RFC 7677 example, mqtt-client's `ScramClient`
//! against the server, refusals and hostile input.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mqtt_client::{ScramClient, ScramMechanism};
use mqtt_codec::ReasonCode;
use proptest::prelude::*;

use super::*;

const DECOY_KEY: [u8; 32] = [42; 32];

/// The credential of RFC 7677 §3's example: "user"/"pencil", its salt,
/// 4096 iterations.
fn rfc_server() -> ScramServer<ScramCredentials> {
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let c = ScramCredential::derive(Mechanism::Sha256, b"pencil", &salt, 4096);
    let text = format!("user:{}\n", c.to_line());
    let file = ScramCredentials::parse(&text, Path::new("rfc")).unwrap();
    ScramServer::new(Mechanism::Sha256, file, DECOY_KEY)
}

const RFC_CLIENT_FIRST: &[u8] = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SUFFIX: &[u8] = b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_CLIENT_FINAL: &[u8] =
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

#[test]
fn rfc_7677_example_is_answered_with_its_server_messages() {
    let server = rfc_server();
    let (first, pending) = server.start(RFC_CLIENT_FIRST, RFC_SUFFIX).unwrap();
    assert_eq!(
        first,
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let (fin, user) = pending.finish(RFC_CLIENT_FINAL).unwrap();
    assert_eq!(fin, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    assert_eq!(user, "user");
}

/// One exchange between mqtt-client's client and the server.
fn exchange(
    server: &ScramServer<ScramCredentials>,
    mechanism: ScramMechanism,
    user: &str,
    password: &[u8],
) -> Result<String, ScramError> {
    let mut client = ScramClient::new(mechanism, user, password, b"clientnonce123").unwrap();
    let (first, pending) = server.start(&client.first(), b"servernonce456")?;
    let fin = client.respond(&first).unwrap();
    let (server_final, user) = pending.finish(&fin)?;
    client.verify(&server_final).unwrap();
    Ok(user)
}

fn server_with(mechanism: Mechanism, users: &[(&str, &str)]) -> ScramServer<ScramCredentials> {
    let mut file = ScramCredentials::new();
    for (u, p) in users {
        file.set_password(u, mechanism, p.as_bytes(), DEFAULT_ITERATIONS)
            .unwrap();
    }
    ScramServer::new(mechanism, file, DECOY_KEY)
}

#[test]
fn sha512_client_and_server_agree() {
    let server = server_with(Mechanism::Sha512, &[("alice", "wonderland")]);
    assert_eq!(
        exchange(&server, ScramMechanism::Sha512, "alice", b"wonderland").as_deref(),
        Ok("alice")
    );
}

#[test]
fn wrong_password_and_unknown_user_are_both_bad_user_name_or_password() {
    let server = server_with(Mechanism::Sha256, &[("alice", "wonderland")]);
    let wrong = exchange(&server, ScramMechanism::Sha256, "alice", b"nope").unwrap_err();
    let unknown = exchange(&server, ScramMechanism::Sha256, "mallory", b"nope").unwrap_err();
    assert_eq!(wrong, ScramError::BadCredentials);
    assert_eq!(unknown, ScramError::BadCredentials);
    assert_eq!(wrong.reason_code(), ReasonCode::BAD_USER_NAME_OR_PASSWORD);
}

#[test]
fn an_unknown_user_gets_the_same_looking_salt_every_time() {
    let server = server_with(Mechanism::Sha256, &[("alice", "wonderland")]);
    let salt_of = |user: &str| {
        let first = format!("n,,n={user},r=abc");
        let (msg, _) = server.start(first.as_bytes(), b"suffix-123").unwrap();
        let msg = String::from_utf8(msg).unwrap();
        let s = msg.split(',').nth(1).unwrap().to_string();
        let i = msg.split(',').nth(2).unwrap().to_string();
        (s, i)
    };
    let (known_salt, known_i) = salt_of("alice");
    let (a, ai) = salt_of("mallory");
    let (b, _) = salt_of("mallory");
    assert_eq!(a, b, "a random salt per try would reveal an unknown user");
    assert_eq!(a.len(), known_salt.len());
    assert_eq!(ai, known_i);
    assert_ne!(salt_of("trudy").0, a);
}

#[test]
fn an_unknown_user_gets_the_iteration_count_most_users_have() {
    let mut file = ScramCredentials::new();
    for user in ["a", "b"] {
        file.set_password(user, Mechanism::Sha256, b"p", 5000)
            .unwrap();
    }
    file.set_password("c", Mechanism::Sha256, b"p", 4096)
        .unwrap();
    file.set_password("d", Mechanism::Sha512, b"p", 4096)
        .unwrap();
    let server = ScramServer::new(Mechanism::Sha256, file, DECOY_KEY);
    let (first, _) = server.start(b"n,,n=nobody,r=abc", b"suffix-123").unwrap();
    assert!(first.ends_with(b",i=5000"), "{first:?}");
}

#[test]
fn a_tampered_nonce_is_refused() {
    let server = rfc_server();
    let (_, pending) = server.start(RFC_CLIENT_FIRST, RFC_SUFFIX).unwrap();
    let tampered = String::from_utf8(RFC_CLIENT_FINAL.to_vec())
        .unwrap()
        .replace("k0,p=", "k1,p=");
    let e = pending.finish(tampered.as_bytes()).unwrap_err();
    assert_eq!(e, ScramError::NonceMismatch);
    assert_eq!(e.reason_code(), ReasonCode::NOT_AUTHORIZED);
}

#[test]
fn a_replayed_client_final_fails_against_a_new_exchange() {
    let server = rfc_server();
    // The recorded exchange succeeded once...
    let (_, pending) = server.start(RFC_CLIENT_FIRST, RFC_SUFFIX).unwrap();
    assert!(pending.finish(RFC_CLIENT_FINAL).is_ok());
    // ...but a new exchange has a fresh server nonce, so the recorded
    // client-final (and its proof) no longer fits.
    let (_, pending) = server
        .start(RFC_CLIENT_FIRST, b"fresh-server-nonce")
        .unwrap();
    assert_eq!(
        pending.finish(RFC_CLIENT_FINAL).unwrap_err(),
        ScramError::NonceMismatch
    );
}

#[test]
fn a_forged_proof_with_the_right_nonce_is_refused() {
    let server = rfc_server();
    let (_, pending) = server.start(RFC_CLIENT_FIRST, RFC_SUFFIX).unwrap();
    let forged = format!(
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p={}",
        STANDARD.encode([0u8; 32])
    );
    assert_eq!(
        pending.finish(forged.as_bytes()).unwrap_err(),
        ScramError::BadCredentials
    );
}

#[test]
fn channel_binding_is_refused_and_must_match() {
    let server = rfc_server();
    let e = server
        .start(b"p=tls-unique,,n=user,r=abc", RFC_SUFFIX)
        .unwrap_err();
    assert_eq!(e, ScramError::ChannelBindingNotSupported);
    let (_, pending) = server.start(RFC_CLIENT_FIRST, RFC_SUFFIX).unwrap();
    // "eSws" is base64 of "y,,": not the gs2 header of the first message.
    let wrong = String::from_utf8(RFC_CLIENT_FINAL.to_vec())
        .unwrap()
        .replace("c=biws", "c=eSws");
    assert_eq!(
        pending.finish(wrong.as_bytes()).unwrap_err(),
        ScramError::ChannelBindingMismatch
    );
}

#[test]
fn an_unusable_server_nonce_part_is_a_local_error() {
    let server = rfc_server();
    for bad in [
        &b"short"[..],
        b"has,comma-in-it",
        b"\x00\x01\x02\x03\x04\x05\x06\x07",
    ] {
        let e = server.start(RFC_CLIENT_FIRST, bad).unwrap_err();
        assert_eq!(e, ScramError::UnusableNonceSuffix);
        assert_eq!(e.reason_code(), ReasonCode::IMPLEMENTATION_SPECIFIC_ERROR);
    }
}

#[test]
fn credentials_file_round_trip_runs_an_exchange() {
    let dir = std::env::temp_dir().join(format!("mqtt-broker-scram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scram");
    let mut file = ScramCredentials::new();
    file.set_password("a=b,c", Mechanism::Sha256, b"pw1", 4096)
        .unwrap();
    file.set_password("bob", Mechanism::Sha512, b"pw2", 5000)
        .unwrap();
    file.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("a=b,c:SCRAM-SHA-256:4096:"), "{text}");
    assert!(!text.contains("pw1") && !text.contains("pw2"));

    let loaded = ScramCredentials::load(&path).unwrap();
    let s256 = ScramServer::new(Mechanism::Sha256, loaded.clone(), DECOY_KEY);
    let s512 = ScramServer::new(Mechanism::Sha512, loaded, DECOY_KEY);
    assert_eq!(
        exchange(&s256, ScramMechanism::Sha256, "a=b,c", b"pw1").as_deref(),
        Ok("a=b,c")
    );
    assert_eq!(
        exchange(&s512, ScramMechanism::Sha512, "bob", b"pw2").as_deref(),
        Ok("bob")
    );
    // bob has no SHA-256 credential: refused like a wrong password.
    assert_eq!(
        exchange(&s256, ScramMechanism::Sha256, "bob", b"pw2"),
        Err(ScramError::BadCredentials)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn credentials_file_errors_name_the_line() {
    let good = ScramCredential::derive(Mechanism::Sha256, b"p", b"saltsalt", 4096).to_line();
    let parse = |t: &str| ScramCredentials::parse(t, Path::new("scramfile")).unwrap_err();
    let line_of = |e: ScramFileError| match e {
        ScramFileError::Line { line, reason, .. } => (line, reason),
        other => panic!("{other}"),
    };
    let e = parse(&format!("# c\nu:{good}\nu:{good}\n"));
    assert!(e.to_string().contains("scramfile, line 3"), "{e}");
    assert!(matches!(line_of(e), (3, ScramLineError::Duplicate(..))));
    let e = parse(&format!("u:{}\n", good.replace(":4096:", ":10000000:")));
    assert_eq!(
        line_of(e),
        (1, ScramLineError::Iterations("10000000".into()))
    );
    let e = parse("u:SCRAM-SHA-1:4096:c2FsdA==:AA==:AA==\n");
    assert!(matches!(line_of(e), (1, ScramLineError::Mechanism(_))));
    let e = parse("u:SCRAM-SHA-256:4096:c2FsdA==:AA==:AA==\n");
    assert_eq!(line_of(e), (1, ScramLineError::Key(32)));
    let e = parse("\n\nu:plain\n");
    assert_eq!(line_of(e), (3, ScramLineError::Fields));
    // Fewer iterations than RFC 7677's minimum are refused when written too.
    let mut f = ScramCredentials::new();
    assert!(matches!(
        f.set_password("u", Mechanism::Sha256, b"p", 100),
        Err(ScramFileError::InvalidIterations(100))
    ));
    assert!(matches!(
        f.set_password("u:x", Mechanism::Sha256, b"p", 4096),
        Err(ScramFileError::InvalidUser(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Client and server agree for any user name (with `=` and `,`) and
    /// password, and a different password is refused.
    #[test]
    fn client_and_server_agree_on_any_user_and_password(
        user in "[a-z=,]{1,5}[ -~]{0,20}",
        password in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        // The file format cannot hold ':' in a user name.
        prop_assume!(!user.contains(':'));
        let server = {
            let mut file = ScramCredentials::new();
            file.set_password(&user, Mechanism::Sha256, &password, 4096).unwrap();
            ScramServer::new(Mechanism::Sha256, file, DECOY_KEY)
        };
        prop_assert_eq!(exchange(&server, ScramMechanism::Sha256, &user, &password), Ok(user.clone()));
        let mut other = password.clone();
        other.push(b'x');
        prop_assert_eq!(exchange(&server, ScramMechanism::Sha256, &user, &other), Err(ScramError::BadCredentials));
    }

    /// Arbitrary bytes as either client message never panic.
    #[test]
    fn arbitrary_client_messages_never_panic(
        first in proptest::collection::vec(any::<u8>(), 0..1200),
        fin in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        let server = rfc_server();
        let _ = server.start(&first, RFC_SUFFIX);
        if let Ok((_, pending)) = server.start(RFC_CLIENT_FIRST, RFC_SUFFIX) {
            let _ = pending.finish(&fin);
        }
    }

    /// Near-valid client-final messages (the real one with one byte
    /// changed) are refused, never accepted and never a panic.
    #[test]
    fn a_client_final_with_any_byte_changed_is_refused(at in 0..RFC_CLIENT_FINAL.len(), byte in any::<u8>()) {
        prop_assume!(RFC_CLIENT_FINAL[at] != byte);
        let mut fin = RFC_CLIENT_FINAL.to_vec();
        fin[at] = byte;
        let (_, pending) = rfc_server().start(RFC_CLIENT_FIRST, RFC_SUFFIX).unwrap();
        prop_assert!(pending.finish(&fin).is_err());
    }
}
