//! JSON Web Tokens in the CONNECT password field (`[auth.jwt]`), against the
//! broker binary over loopback with raw 5.0 packets: an HS256 token is
//! accepted, a wrong signature, an expired token or another user name than
//! the token's is refused with CONNACK 0x86, a token listing topics
//! (`topics_claim`) may publish and subscribe only there (PUBACK and SUBACK
//! 0x87 elsewhere), and a token without the claim gets the ACL's rights of
//! its user, while an ordinary password is still checked against the
//! password file.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use common::raw::{Next, Raw};
use common::{BrokerProcess, TempDir};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use mqtt_broker::passwd::{PasswordFile, PasswordHash};
use mqtt_codec::{
    Connect, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, QosPid, ReasonCode, Str,
    Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};
use serde_json::{json, Value};

const V5: ProtocolVersion = ProtocolVersion::V5;
const WAIT: Duration = Duration::from_secs(5);
/// A PUBACK of an accepted message nobody subscribed to.
const ACCEPTED: ReasonCode = ReasonCode::NO_MATCHING_SUBSCRIBERS;
const SECRET: &str = "a shared secret of at least 32 bytes!";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

/// A broker taking HS256 tokens, with an ACL granting alice `acl/alice/#`
/// and a password file with carol ("pw"); `topics` adds
/// `topics_claim = "mqtt"`.
fn broker(dir: &TempDir, topics: bool) -> BrokerProcess {
    let acl = dir.0.join("acl");
    std::fs::write(&acl, "user alice\ntopic readwrite acl/alice/#\n").unwrap();
    let mut pw = PasswordFile::new();
    pw.set_hash("carol", PasswordHash::pbkdf2(b"pw", b"saltsaltsalt", 101))
        .unwrap();
    let passwd = dir.0.join("passwd");
    pw.save(&passwd).unwrap();
    let claim = if topics {
        "topics_claim = \"mqtt\"\n"
    } else {
        ""
    };
    BrokerProcess::start_with(&format!(
        "[auth]\nacl_file = {:?}\npassword_file = {:?}\n\n[auth.jwt]\nsecret = {SECRET:?}\n{claim}",
        acl.display().to_string(),
        passwd.display().to_string(),
    ))
}

fn encode_packet(p: Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    p.encode(V5, &mut out).unwrap();
    out.to_vec()
}

fn next(raw: &mut Raw) -> Option<Packet> {
    match raw.next(WAIT) {
        Next::Packet(bytes) => Decoder::with_version(V5)
            .decode(&mut BytesMut::from(&bytes[..]))
            .unwrap(),
        Next::Closed | Next::Silent => None,
    }
}

/// Connects with `password` (and `username`, if any): the connection and
/// the CONNACK's reason.
fn connect(broker: &BrokerProcess, username: Option<&str>, password: &str) -> (Raw, ReasonCode) {
    let mut c = Connect::new(V5, Str::from_static("jwt-test"));
    c.username = username.map(|u| Str::try_from(u).unwrap());
    c.password = Some(Bytes::copy_from_slice(password.as_bytes()));
    let mut raw = Raw::connect(broker.addr);
    raw.send(&encode_packet(Packet::Connect(Box::new(c))));
    match next(&mut raw) {
        Some(Packet::ConnAck(a)) => (raw, a.reason),
        other => panic!("no CONNACK: {other:?}"),
    }
}

fn puback(raw: &mut Raw, id: u16, topic: &str) -> ReasonCode {
    let mut p = Publish::new(
        TopicName::try_from(topic).unwrap(),
        Bytes::from_static(b"x"),
    );
    p.qos = QosPid::AtLeastOnce(PacketId::new(id).unwrap());
    raw.send(&encode_packet(Packet::Publish(p)));
    match next(raw) {
        Some(Packet::PubAck(a)) => a.reason,
        other => panic!("no PUBACK: {other:?}"),
    }
}

fn suback(raw: &mut Raw, id: u16, filter: &str) -> ReasonCode {
    let sub = Subscribe {
        id: PacketId::new(id).unwrap(),
        props: Default::default(),
        filters: vec![(
            TopicFilter::try_from(filter).unwrap(),
            SubscriptionOptions::new(QoS::AtLeastOnce),
        )],
    };
    raw.send(&encode_packet(Packet::Subscribe(sub)));
    match next(raw) {
        Some(Packet::SubAck(s)) => s.reasons[0],
        other => panic!("no SUBACK: {other:?}"),
    }
}

#[test]
fn valid_tokens_are_accepted_and_bad_ones_refused_with_0x86() {
    let dir = TempDir::new("jwt-refusals");
    let broker = broker(&dir, true);
    let alice = json!({"sub": "alice", "exp": now() + 600});
    let good = token(&alice, SECRET);
    assert_eq!(connect(&broker, None, &good).1, ReasonCode::SUCCESS);
    assert_eq!(
        connect(&broker, Some("alice"), &good).1,
        ReasonCode::SUCCESS
    );
    let bad = ReasonCode::BAD_USER_NAME_OR_PASSWORD;
    // Signed with another secret.
    let forged = token(&alice, "another secret, also 32 bytes long");
    assert_eq!(connect(&broker, None, &forged).1, bad);
    // Expired an hour ago (beyond the 30 s leeway).
    let old = token(&json!({"sub": "alice", "exp": now() - 3600}), SECRET);
    let (mut raw, reason) = connect(&broker, None, &old);
    assert_eq!(reason, bad);
    assert_eq!(raw.next(WAIT), Next::Closed);
    // The CONNECT names another user than the token.
    assert_eq!(connect(&broker, Some("bob"), &good).1, bad);
    // Ordinary passwords still go to the password file.
    assert_eq!(connect(&broker, Some("carol"), "pw").1, ReasonCode::SUCCESS);
    assert_eq!(connect(&broker, Some("carol"), "no").1, bad);
}

#[test]
fn a_token_listing_topics_may_use_only_those() {
    let dir = TempDir::new("jwt-topics");
    let broker = broker(&dir, true);
    let claims = json!({
        "sub": "alice",
        "exp": now() + 600,
        "mqtt": {"pub": ["up/alice/#"], "sub": ["down/alice/+"]}
    });
    let (mut raw, reason) = connect(&broker, None, &token(&claims, SECRET));
    assert_eq!(reason, ReasonCode::SUCCESS);
    assert_eq!(puback(&mut raw, 1, "up/alice/1"), ACCEPTED);
    assert_eq!(puback(&mut raw, 2, "up/bob/1"), ReasonCode::NOT_AUTHORIZED);
    // The ACL's rules for alice do not apply: the token's lists are all.
    assert_eq!(
        puback(&mut raw, 3, "acl/alice/1"),
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        suback(&mut raw, 4, "down/alice/x"),
        ReasonCode::GRANTED_QOS_1
    );
    assert_eq!(
        suback(&mut raw, 5, "up/alice/#"),
        ReasonCode::NOT_AUTHORIZED
    );
}

#[test]
fn without_a_topics_claim_the_token_user_gets_the_acl_rights() {
    let dir = TempDir::new("jwt-acl");
    let broker = broker(&dir, false);
    let claims = json!({"sub": "alice", "exp": now() + 600});
    let (mut raw, reason) = connect(&broker, None, &token(&claims, SECRET));
    assert_eq!(reason, ReasonCode::SUCCESS);
    assert_eq!(puback(&mut raw, 1, "acl/alice/1"), ACCEPTED);
    assert_eq!(puback(&mut raw, 2, "acl/bob/1"), ReasonCode::NOT_AUTHORIZED);
}
