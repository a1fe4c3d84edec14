//! SCRAM-SHA-256 and SCRAM-SHA-512 as the broker's built-in enhanced
//! authentication (`[auth] scram_file`), against the broker binary over
//! loopback: the tokio client's `.scram()` logs in with both mechanisms and
//! is refused 0x86 for a wrong password or an unknown user; raw packets show
//! that garbage authentication data is refused, that the SCRAM user owns
//! its rights from the ACL, and that re-authentication (AUTH 0x19) runs the
//! same exchange (the tokio client does not re-authenticate, so the raw
//! test plays the client with `mqtt_client::ScramClient`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::raw::{Next, Raw};
use common::{BrokerProcess, TempDir};
use mqtt_broker::scram::{Mechanism, ScramCredentials};
use mqtt_codec::{
    Auth, AuthProps, Connect, Decoder, Packet, PacketId, ProtocolVersion, QoS, ReasonCode, Str,
    Subscribe, SubscriptionOptions, TopicFilter,
};
use mqtt_tokio::mqtt_client::{ScramClient, ScramMechanism};
use mqtt_tokio::{Client, ConnectError, ConnectOptions, OptionSetters};

const V5: ProtocolVersion = ProtocolVersion::V5;
const WAIT: Duration = Duration::from_secs(5);

/// A broker with alice ("pencil", both mechanisms) in its SCRAM file and an
/// ACL granting her `alice/#` only.
fn broker(dir: &TempDir) -> BrokerProcess {
    let mut file = ScramCredentials::new();
    for m in [Mechanism::Sha256, Mechanism::Sha512] {
        file.set_password("alice", m, b"pencil", 4096).unwrap();
    }
    let scram: PathBuf = dir.0.join("scram");
    file.save(&scram).unwrap();
    let acl = dir.0.join("acl");
    std::fs::write(&acl, "user alice\ntopic readwrite alice/#\n").unwrap();
    BrokerProcess::start_with(&format!(
        "[auth]\nscram_file = {:?}\nacl_file = {:?}\n",
        scram.display().to_string(),
        acl.display().to_string()
    ))
}

async fn login(
    broker: &BrokerProcess,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> Result<(Client, mqtt_tokio::Incoming), ConnectError> {
    let options = ConnectOptions::new(&format!("mqtt://{}", broker.addr))
        .unwrap()
        .client_id("scram-auth")
        .connect_timeout(Duration::from_secs(10))
        .scram_with(mechanism, user, password.as_bytes());
    Client::connect(options).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tokio_client_logs_in_with_both_mechanisms_and_bad_credentials_get_0x86() {
    let dir = TempDir::new("scram-client");
    let broker = broker(&dir);
    for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        let client = login(&broker, m, "alice", "pencil").await;
        let client = client.unwrap_or_else(|e| panic!("{m:?}: {e}"));
        drop(client);
        let bad = Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        let wrong = login(&broker, m, "alice", "crayon").await.err();
        assert_eq!(
            wrong.and_then(|e| e.reason_code()),
            bad,
            "{m:?} wrong password"
        );
        let unknown = login(&broker, m, "mallory", "pencil").await.err();
        assert_eq!(
            unknown.and_then(|e| e.reason_code()),
            bad,
            "{m:?} unknown user"
        );
    }
}

fn encode(p: Packet) -> Vec<u8> {
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

fn scram_connect(data: &[u8]) -> Vec<u8> {
    let mut c = Connect::new(V5, Str::from_static("scram-raw"));
    c.props.authentication_method = Some(Str::from_static("SCRAM-SHA-256"));
    c.props.authentication_data = Some(Bytes::copy_from_slice(data));
    encode(Packet::Connect(Box::new(c)))
}

fn auth(reason: ReasonCode, data: &[u8]) -> Vec<u8> {
    let mut props = AuthProps::default();
    props.authentication_method = Some(Str::from_static("SCRAM-SHA-256"));
    props.authentication_data = Some(Bytes::copy_from_slice(data));
    encode(Packet::Auth(Auth { reason, props }))
}

/// The server's Authentication Data of an AUTH 0x18.
fn challenge(raw: &mut Raw) -> Vec<u8> {
    match next(raw) {
        Some(Packet::Auth(a)) if a.reason == ReasonCode::CONTINUE_AUTHENTICATION => {
            a.props.authentication_data.unwrap().to_vec()
        }
        other => panic!("no AUTH 0x18: {other:?}"),
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
    raw.send(&encode(Packet::Subscribe(sub)));
    match next(raw) {
        Some(Packet::SubAck(s)) => s.reasons[0],
        other => panic!("no SUBACK: {other:?}"),
    }
}

fn client(password: &str) -> ScramClient {
    ScramClient::new(
        ScramMechanism::Sha256,
        "alice",
        password.as_bytes(),
        b"raw-client-nonce-0123456789",
    )
    .unwrap()
}

#[test]
fn garbage_scram_data_is_refused_and_the_connection_closed() {
    let dir = TempDir::new("scram-garbage");
    let broker = broker(&dir);
    let mut raw = Raw::connect(broker.addr);
    raw.send(&scram_connect(b"\xff\x00 not a client-first message"));
    match next(&mut raw) {
        Some(Packet::ConnAck(a)) => assert_eq!(a.reason, ReasonCode::NOT_AUTHORIZED),
        other => panic!("no refusal: {other:?}"),
    }
    assert_eq!(raw.next(WAIT), Next::Closed);
}

#[test]
fn a_scram_user_gets_its_acl_rights_and_re_authenticates() {
    let dir = TempDir::new("scram-reauth");
    let broker = broker(&dir);
    let mut raw = Raw::connect(broker.addr);
    let mut c = client("pencil");
    raw.send(&scram_connect(&c.first()));
    let last = c.respond(&challenge(&mut raw)).unwrap();
    raw.send(&auth(ReasonCode::CONTINUE_AUTHENTICATION, &last));
    match next(&mut raw) {
        Some(Packet::ConnAck(a)) => {
            assert_eq!(a.reason, ReasonCode::SUCCESS);
            c.verify(&a.props.authentication_data.unwrap()).unwrap();
        }
        other => panic!("no CONNACK: {other:?}"),
    }
    // The ACL's rules for alice, the user the exchange named.
    assert_eq!(suback(&mut raw, 1, "alice/x"), ReasonCode::GRANTED_QOS_1);
    assert_eq!(suback(&mut raw, 2, "bob/x"), ReasonCode::NOT_AUTHORIZED);

    // Re-authentication: the same exchange over AUTH 0x19 / 0x18 / 0x00.
    let mut again = client("pencil");
    raw.send(&auth(ReasonCode::RE_AUTHENTICATE, &again.first()));
    let last = again.respond(&challenge(&mut raw)).unwrap();
    raw.send(&auth(ReasonCode::CONTINUE_AUTHENTICATION, &last));
    match next(&mut raw) {
        Some(Packet::Auth(a)) if a.reason == ReasonCode::SUCCESS => {
            again.verify(&a.props.authentication_data.unwrap()).unwrap();
        }
        other => panic!("no AUTH 0x00: {other:?}"),
    }
    assert_eq!(suback(&mut raw, 3, "alice/y"), ReasonCode::GRANTED_QOS_1);

    // A re-authentication with the wrong password ends the connection with
    // 0x87 (0x86 is not a DISCONNECT reason code).
    let mut wrong = client("crayon");
    raw.send(&auth(ReasonCode::RE_AUTHENTICATE, &wrong.first()));
    let last = wrong.respond(&challenge(&mut raw)).unwrap();
    raw.send(&auth(ReasonCode::CONTINUE_AUTHENTICATION, &last));
    match next(&mut raw) {
        Some(Packet::Disconnect(d)) => {
            assert_eq!(d.reason, ReasonCode::NOT_AUTHORIZED)
        }
        other => panic!("no DISCONNECT: {other:?}"),
    }
    assert_eq!(raw.next(WAIT), Next::Closed);
}
