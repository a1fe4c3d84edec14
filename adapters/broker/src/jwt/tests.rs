//! Tokens signed here with HS256, RS256 (a fixed test key) and ES256 (a key
//! made by rcgen), checked by the verifier.

use std::path::PathBuf;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
const NOW: u64 = 1_800_000_000;
const RSA_PRIVATE: &str = include_str!("test_rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("test_rsa_public.pem");

fn config() -> JwtConfig {
    toml::from_str(&format!("secret = {SECRET:?}")).unwrap()
}

fn hs256(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn verify(config: &JwtConfig, token: &str) -> Result<JwtIdentity, JwtError> {
    JwtVerifier::new(config)
        .unwrap()
        .verify(token.as_bytes(), NOW)
}

/// A key file in a fresh folder, removed on drop.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(name: &str, pem: &str) -> KeyFile {
        let dir = std::env::temp_dir().join(format!("mqtt-jwt-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        std::fs::write(&path, pem).unwrap();
        KeyFile(path)
    }

    fn config(&self) -> JwtConfig {
        toml::from_str(&format!("public_key_file = {:?}", self.0)).unwrap()
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

#[test]
fn a_valid_hs256_token_gives_its_user_and_expiry() {
    let token = hs256(&json!({"sub": "alice", "exp": NOW + 60}));
    let id = verify(&config(), &token).unwrap();
    assert_eq!(id.username, "alice");
    assert_eq!(id.expires_at, Some(NOW + 60));
    assert!(id.publish.is_empty() && id.subscribe.is_empty());
}

#[test]
fn expiry_and_not_before_are_honoured_with_the_leeway() {
    let c = config();
    let token = hs256(&json!({"sub": "a", "exp": NOW - 31}));
    assert_eq!(verify(&c, &token), Err(JwtError::Expired(NOW - 31)));
    // Within the default 30 s leeway.
    let token = hs256(&json!({"sub": "a", "exp": NOW - 29}));
    assert!(verify(&c, &token).is_ok());
    let token = hs256(&json!({"sub": "a", "exp": NOW + 600, "nbf": NOW + 31}));
    assert_eq!(verify(&c, &token), Err(JwtError::NotYetValid(NOW + 31)));
    let token = hs256(&json!({"sub": "a", "exp": NOW + 600, "nbf": NOW + 29}));
    assert!(verify(&c, &token).is_ok());
    let token = hs256(&json!({"sub": "a"}));
    assert_eq!(verify(&c, &token), Err(JwtError::MissingExpiry));
    let token = hs256(&json!({"sub": "a", "exp": "tomorrow"}));
    assert_eq!(verify(&c, &token), Err(JwtError::BadTime("exp")));
    let mut lenient = config();
    lenient.require_exp = false;
    assert!(verify(&lenient, &hs256(&json!({"sub": "a"}))).is_ok());
}

#[test]
fn a_wrong_signature_is_refused() {
    let claims = json!({"sub": "alice", "exp": NOW + 60});
    let other = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"another secret of thirty-two bytes!!"),
    )
    .unwrap();
    assert_eq!(verify(&config(), &other), Err(JwtError::BadSignature));
    // Claims changed after signing.
    let token = hs256(&claims);
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"sub":"root","exp":1900000000}"#,
    );
    parts[1] = &forged;
    assert_eq!(
        verify(&config(), &parts.join(".")),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
    let key = KeyFile::new("confusion", RSA_PUBLIC);
    let c = key.config();
    // A real RS256 token passes...
    let good = encode(
        &Header::new(Algorithm::RS256),
        &json!({"sub": "alice", "exp": NOW + 60}),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(verify(&c, &good).unwrap().username, "alice");
    // ...an HS256 one keyed with the public key's PEM text does not.
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "root", "exp": NOW + 60}),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .unwrap();
    assert_eq!(verify(&c, &forged), Err(JwtError::AlgorithmNotAllowed));
    // And an RS256 token is not taken by an HS256 configuration.
    assert_eq!(verify(&config(), &good), Err(JwtError::AlgorithmNotAllowed));
}

#[test]
fn es256_tokens_verify_with_an_ec_public_key() {
    let pair = rcgen::KeyPair::generate().unwrap();
    let key = KeyFile::new("ec", &pair.public_key_pem());
    let token = encode(
        &Header::new(Algorithm::ES256),
        &json!({"sub": "sensor-1", "exp": NOW + 60}),
        &EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(verify(&key.config(), &token).unwrap().username, "sensor-1");
}

#[test]
fn a_missing_username_claim_is_refused() {
    let token = hs256(&json!({"exp": NOW + 60, "name": "alice"}));
    assert_eq!(
        verify(&config(), &token),
        Err(JwtError::MissingUsername("sub".into()))
    );
    let mut c = config();
    c.username_claim = "name".into();
    assert_eq!(verify(&c, &token).unwrap().username, "alice");
    let token = hs256(&json!({"exp": NOW + 60, "sub": 42}));
    assert!(matches!(
        verify(&config(), &token),
        Err(JwtError::MissingUsername(_))
    ));
}

#[test]
fn the_topics_claim_gives_publish_and_subscribe_filters() {
    let mut c = config();
    c.topics_claim = Some("mqtt".into());
    let token = hs256(&json!({"sub": "alice", "exp": NOW + 60,
        "mqtt": {"pub": ["sensors/alice/#"], "sub": ["commands/alice/+", "broadcast"]}}));
    let id = verify(&c, &token).unwrap();
    assert_eq!(id.publish, ["sensors/alice/#"]);
    assert_eq!(id.subscribe, ["commands/alice/+", "broadcast"]);
    assert!(JwtVerifier::new(&c).unwrap().restricts_topics());
    // No claim: nothing granted.
    let id = verify(&c, &hs256(&json!({"sub": "a", "exp": NOW + 60}))).unwrap();
    assert!(id.publish.is_empty() && id.subscribe.is_empty());
    for bad in [
        json!({"pub": "a/b"}),
        json!({"pub": ["a/#/b"]}),
        json!({"sub": [1]}),
        json!(["a"]),
    ] {
        let token = hs256(&json!({"sub": "a", "exp": NOW + 60, "mqtt": bad}));
        assert!(
            matches!(verify(&c, &token), Err(JwtError::InvalidTopics(_))),
            "{bad}"
        );
    }
}

#[test]
fn audience_and_issuer_are_checked_when_configured() {
    let mut c = config();
    c.audience = Some("mqtt".into());
    c.issuer = Some("https://auth.example".into());
    let ok =
        json!({"sub": "a", "exp": NOW + 60, "aud": ["web", "mqtt"], "iss": "https://auth.example"});
    assert!(verify(&c, &hs256(&ok)).is_ok());
    let token =
        hs256(&json!({"sub": "a", "exp": NOW + 60, "aud": "web", "iss": "https://auth.example"}));
    assert_eq!(verify(&c, &token), Err(JwtError::WrongAudience));
    let token = hs256(&json!({"sub": "a", "exp": NOW + 60, "aud": "mqtt", "iss": "https://evil"}));
    assert_eq!(verify(&c, &token), Err(JwtError::WrongIssuer));
}

#[test]
fn garbage_and_oversized_tokens_are_refused_without_panicking() {
    let c = config();
    let v = JwtVerifier::new(&c).unwrap();
    for junk in [
        &b""[..],
        b"abc",
        b"a.b.c",
        b"\xff\xfe",
        b"e30.e30.",
        b".....",
    ] {
        assert!(v.verify(junk, NOW).is_err());
    }
    assert_eq!(
        v.verify(&vec![b'a'; MAX_TOKEN_LEN + 1], NOW),
        Err(JwtError::TooLong)
    );
    assert_eq!(
        JwtError::BadSignature.reason_code(),
        ReasonCode::BAD_USER_NAME_OR_PASSWORD
    );
}

#[test]
fn configuration_errors_say_what_is_wrong() {
    let e = |t: &str| toml::from_str::<JwtConfig>(t).unwrap().check().unwrap_err();
    assert!(matches!(
        e("secret = \"short\""),
        JwtConfigError::ShortSecret(5)
    ));
    assert!(matches!(e(""), JwtConfigError::KeyChoice));
    assert!(matches!(
        e(&format!("secret = {SECRET:?}\npublic_key_file = \"k\"")),
        JwtConfigError::KeyChoice
    ));
    assert!(matches!(
        e(&format!("secret = {SECRET:?}\nleeway_secs = 3600")),
        JwtConfigError::Leeway(3600)
    ));
    let key = KeyFile::new("bad", "not a key");
    assert!(matches!(
        JwtVerifier::new(&key.config()),
        Err(JwtConfigError::BadKey(_))
    ));
    // The secret never shows in Debug output.
    assert!(!format!("{:?}", config()).contains(SECRET));
}

proptest::proptest! {
    /// Arbitrary bytes as a token never panic.
    #[test]
    fn arbitrary_tokens_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let v = JwtVerifier::new(&config()).unwrap();
        proptest::prop_assert!(v.verify(&bytes, NOW).is_err());
    }
}
