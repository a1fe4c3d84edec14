//! The authentication seam of issue #18, against the broker binary over
//! loopback with raw packets (reason codes checked on the wire): a session
//! belongs to its user, read access is checked per delivery, ACL pattern
//! substitution cannot be steered by a client, an unsupported
//! authentication method is refused with 0x8C, an absurd PBKDF2 iteration
//! count stops the start, and a slow password check holds up no one else.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::raw::{Next, Raw};
use common::{run, BrokerProcess, TempDir};
use mqtt_broker::passwd::{PasswordFile, PasswordHash};
use mqtt_codec::{
    Connect, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, QosPid, ReasonCode, Str,
    Subscribe, SubscriptionOptions, TopicFilter, TopicName,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;
const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(400);

fn encode(v: ProtocolVersion, p: Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    p.encode(v, &mut out).unwrap();
    out.to_vec()
}

fn s(v: &str) -> Str {
    Str::try_from(v).unwrap()
}

/// A CONNECT with keep alive 60; `clean: false` asks for the stored session
/// (5.0: with a session expiry of an hour).
fn connect(v: ProtocolVersion, id: &str, user: Option<(&str, &str)>, clean: bool) -> Vec<u8> {
    let mut c = Connect::new(v, s(id));
    c.clean_start = clean;
    c.keep_alive = 60;
    if let Some((u, pw)) = user {
        c.username = Some(s(u));
        c.password = Some(Bytes::copy_from_slice(pw.as_bytes()));
    }
    if v.is_v5() && !clean {
        c.props.session_expiry_interval = Some(3600);
    }
    encode(v, Packet::Connect(Box::new(c)))
}

fn subscribe(v: ProtocolVersion, id: u16, filter: &str) -> Vec<u8> {
    let f = TopicFilter::try_from(filter).unwrap();
    let sub = Subscribe {
        id: PacketId::new(id).unwrap(),
        props: Default::default(),
        filters: vec![(f, SubscriptionOptions::new(QoS::AtLeastOnce))],
    };
    encode(v, Packet::Subscribe(sub))
}

fn publish(v: ProtocolVersion, topic: &str, payload: &str, id: Option<u16>) -> Vec<u8> {
    let qos = match id {
        Some(id) => QosPid::AtLeastOnce(PacketId::new(id).unwrap()),
        None => QosPid::AtMostOnce,
    };
    let mut p = Publish::new(
        TopicName::try_from(topic).unwrap(),
        Bytes::copy_from_slice(payload.as_bytes()),
    );
    p.qos = qos;
    encode(v, Packet::Publish(p))
}

/// The next packet, decoded; `None` if the broker closed or stayed silent.
fn next(raw: &mut Raw, v: ProtocolVersion, within: Duration) -> Option<Packet> {
    match raw.next(within) {
        Next::Packet(bytes) => {
            let mut buf = BytesMut::from(&bytes[..]);
            Decoder::with_version(v).decode(&mut buf).unwrap()
        }
        Next::Closed | Next::Silent => None,
    }
}

/// Connects; returns the connection, Session Present and the reason.
fn connack(
    addr: std::net::SocketAddr,
    v: ProtocolVersion,
    bytes: &[u8],
) -> (Raw, bool, ReasonCode) {
    let mut raw = Raw::connect(addr);
    raw.send(bytes);
    match next(&mut raw, v, WAIT) {
        Some(Packet::ConnAck(a)) => (raw, a.session_present, a.reason),
        other => panic!("no CONNACK: {other:?}"),
    }
}

fn suback(raw: &mut Raw, v: ProtocolVersion) -> ReasonCode {
    match next(raw, v, WAIT) {
        Some(Packet::SubAck(s)) => s.reasons[0],
        other => panic!("no SUBACK: {other:?}"),
    }
}

/// Payloads of the PUBLISHes that arrive within [`QUIET`] of each other.
fn payloads(raw: &mut Raw, v: ProtocolVersion) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(p) = next(raw, v, QUIET) {
        if let Packet::Publish(p) = p {
            out.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
    }
    out
}

fn password_file(dir: &TempDir, users: &[(&str, &str)]) -> PathBuf {
    let mut f = PasswordFile::new();
    for (u, pw) in users {
        f.set_hash(u, PasswordHash::pbkdf2(pw.as_bytes(), b"saltsaltsalt", 101))
            .unwrap();
    }
    let path = dir.0.join("passwd");
    f.save(&path).unwrap();
    path
}

fn file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.0.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn auth_config(passwd: Option<&PathBuf>, acl: Option<&PathBuf>, extra: &str) -> String {
    let mut s = String::from("[auth]\n");
    if let Some(p) = passwd {
        s += &format!("password_file = {:?}\n", p.display().to_string());
    }
    if let Some(p) = acl {
        s += &format!("acl_file = {:?}\n", p.display().to_string());
    }
    s + extra
}

/// Issue #18: mallory connects with alice's client identifier (her own
/// password, not alice's). She gets a fresh session (Session Present 0)
/// and none of the messages queued for alice; alice, connected, is taken
/// over (5.0: DISCONNECT 0x8E) and then finds her session gone too.
#[test]
fn mallory_taking_alices_client_id_gets_a_fresh_session_and_none_of_her_messages() {
    let dir = TempDir::new("takeover");
    let pw = password_file(
        &dir,
        &[("alice", "apw"), ("mallory", "mpw"), ("pub", "ppw")],
    );
    let b = BrokerProcess::start_with(&auth_config(Some(&pw), None, ""));
    for v in [V311, V5] {
        let alice = Some(("alice", "apw"));
        let (mut a, _, r) = connack(b.addr, v, &connect(v, "shared", alice, false));
        assert_eq!(r, ReasonCode::SUCCESS);
        a.send(&subscribe(v, 1, "inbox"));
        assert_eq!(suback(&mut a, v), ReasonCode(1));
        drop(a);
        std::thread::sleep(Duration::from_millis(100));
        let (mut p, _, _) = connack(b.addr, v, &connect(v, "pub", Some(("pub", "ppw")), true));
        p.send(&publish(v, "inbox", "for alice only", Some(1)));
        assert!(matches!(next(&mut p, v, WAIT), Some(Packet::PubAck(_))));

        let mallory = Some(("mallory", "mpw"));
        let (mut m, present, r) = connack(b.addr, v, &connect(v, "shared", mallory, false));
        assert_eq!((present, r), (false, ReasonCode::SUCCESS), "{v:?}");
        assert!(
            payloads(&mut m, v).is_empty(),
            "{v:?}: mallory got alice's message"
        );
        // Alice's subscription went with her session.
        p.send(&publish(v, "inbox", "after", Some(2)));
        if v.is_v5() {
            match next(&mut p, v, WAIT) {
                Some(Packet::PubAck(ack)) => {
                    assert_eq!(ack.reason, ReasonCode::NO_MATCHING_SUBSCRIBERS)
                }
                other => panic!("{other:?}"),
            }
        }
        let (_, present, _) = connack(b.addr, v, &connect(v, "shared", alice, false));
        assert!(!present, "{v:?}: alice resumes nothing of mallory's");
        if v.is_v5() {
            match next(&mut m, v, WAIT) {
                Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::SESSION_TAKEN_OVER),
                other => panic!("{other:?}"),
            }
        }
    }
}

/// Mosquitto's ACL semantics: with `topic read a/#` and `topic deny
/// a/secret`, SUBSCRIBE `a/#` is granted, `a/ok` is delivered and
/// `a/secret` (published by a user who may) is not.
#[test]
fn a_granted_wildcard_subscription_never_delivers_a_denied_topic() {
    let dir = TempDir::new("acl-read");
    let acl = file(
        &dir,
        "acl",
        "topic read a/#\ntopic deny a/secret\nuser admin\ntopic write #\n",
    );
    let b = BrokerProcess::start_with(&auth_config(None, Some(&acl), ""));
    for v in [V311, V5] {
        let (mut sub, _, _) = connack(b.addr, v, &connect(v, "sub", None, true));
        sub.send(&subscribe(v, 1, "a/#"));
        assert_eq!(suback(&mut sub, v), ReasonCode(1), "{v:?}");
        let admin = Some(("admin", "any"));
        let (mut p, _, _) = connack(b.addr, v, &connect(v, "admin", admin, true));
        p.send(&publish(v, "a/secret", "hidden", None));
        p.send(&publish(v, "a/ok", "shown", None));
        assert_eq!(payloads(&mut sub, v), ["shown"], "{v:?}");
    }
}

/// Issue #18's substitution injections with `pattern readwrite
/// clients/%c/#`: a client `%u` with user name `#` does not get
/// `clients/#`, an anonymous `vic%utim` does not get `clients/victim/#`
/// (SUBACK 0x87, 3.1.1: 0x80; PUBACK 0x87), while `victim` itself does.
#[test]
fn acl_pattern_substitution_cannot_be_steered_by_the_client() {
    let dir = TempDir::new("acl-inject");
    let acl = file(&dir, "acl", "pattern readwrite clients/%c/#\n");
    let b = BrokerProcess::start_with(&auth_config(None, Some(&acl), ""));
    for v in [V311, V5] {
        let refused = if v.is_v5() {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode(0x80)
        };
        let attackers: [(&str, Option<(&str, &str)>); 3] = [
            ("%u", Some(("#", "x"))),
            ("vic%utim", None),
            ("%c", Some(("victim", "x"))),
        ];
        for (id, user) in attackers {
            let (mut a, _, r) = connack(b.addr, v, &connect(v, id, user, true));
            assert_eq!(r, ReasonCode::SUCCESS);
            a.send(&subscribe(v, 1, "clients/#"));
            assert_eq!(suback(&mut a, v), refused, "{v:?} {id}");
            a.send(&subscribe(v, 2, "clients/victim/#"));
            assert_eq!(suback(&mut a, v), refused, "{v:?} {id}");
            if v.is_v5() {
                a.send(&publish(v, "clients/victim/x", "forged", Some(3)));
                match next(&mut a, v, WAIT) {
                    Some(Packet::PubAck(ack)) => assert_eq!(ack.reason, refused),
                    other => panic!("{other:?}"),
                }
            }
        }
        let (mut victim, _, _) = connack(b.addr, v, &connect(v, "victim", None, true));
        victim.send(&subscribe(v, 1, "clients/victim/#"));
        assert_eq!(suback(&mut victim, v), ReasonCode(1));
    }
}

/// [MQTT-4.12.0-1]: a CONNECT naming an Authentication Method the broker
/// does not support is refused with CONNACK 0x8C, and the connection closed.
#[test]
fn an_unsupported_authentication_method_gets_connack_0x8c() {
    let b = BrokerProcess::start_with("");
    let mut c = Connect::new(V5, s("c"));
    c.props.authentication_method = Some(s("SCRAM-SHA-1"));
    c.props.authentication_data = Some(Bytes::from_static(b"n,,n=user,r=nonce"));
    let mut raw = Raw::connect(b.addr);
    raw.send(&encode(V5, Packet::Connect(Box::new(c))));
    raw.expect(&[0x20, 0x03, 0x00, 0x8C, 0x00]);
    raw.expect_closed();
}

/// A password file asking for more PBKDF2 iterations than the cap stops
/// the start, naming the file and the line.
#[test]
fn a_password_file_above_the_iteration_cap_is_refused_naming_the_line() {
    let dir = TempDir::new("iterations");
    let ok = PasswordHash::pbkdf2(b"pw", b"saltsaltsalt", 101).to_string();
    let huge = ok.replacen("$7$101$", "$7$4000000000$", 1);
    let pw = file(&dir, "passwd", &format!("alice:{ok}\n# next\nbob:{huge}\n"));
    let config = file(
        &dir,
        "broker.toml",
        &format!(
            "[[listener]]\nbind = \"127.0.0.1:0\"\n{}",
            auth_config(Some(&pw), None, "")
        ),
    );
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_mqtt-broker"))
            .arg("-c")
            .arg(&config),
        WAIT * 2,
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("passwd, line 3"), "{text}");
    assert!(text.contains("4000000000 PBKDF2 iterations"), "{text}");
}

/// PBKDF2 iterations that take about `target` in this build (the broker
/// binary is built with the same profile as this test).
fn iterations_taking(target: Duration) -> u32 {
    let probe = 2_000u32;
    let t = Instant::now();
    let _ = PasswordHash::pbkdf2(b"probe", b"saltsaltsalt", probe);
    let per = t.elapsed().as_secs_f64() / f64::from(probe);
    let n = (target.as_secs_f64() / per.max(1e-9)) as u64;
    n.clamp(1_000, u64::from(mqtt_broker::passwd::MAX_PBKDF2_ITERATIONS)) as u32
}

/// The password check runs off the core task: while a CONNECT whose
/// (allowed, high) iteration count takes a second or so is checked, another
/// client's PINGREQ round trips stay under 200 ms.
#[test]
fn a_slow_password_check_does_not_delay_another_clients_ping() {
    let dir = TempDir::new("slow-check");
    let slow = iterations_taking(Duration::from_millis(1500));
    let mut f = PasswordFile::new();
    f.set_hash("slow", PasswordHash::pbkdf2(b"pw", b"saltsaltsalt", slow))
        .unwrap();
    f.set_hash("fast", PasswordHash::pbkdf2(b"pw", b"saltsaltsalt", 101))
        .unwrap();
    let pw = dir.0.join("passwd");
    f.save(&pw).unwrap();
    let b = BrokerProcess::start_with(&auth_config(Some(&pw), None, ""));
    let (mut other, _, r) = connack(
        b.addr,
        V311,
        &connect(V311, "other", Some(("fast", "pw")), true),
    );
    assert_eq!(r, ReasonCode::SUCCESS);

    let started = Instant::now();
    let mut slow_client = Raw::connect(b.addr);
    slow_client.send(&connect(V311, "slow", Some(("slow", "wrong")), true));
    let mut pings = 0;
    let mut worst = Duration::ZERO;
    let answered = loop {
        let t = Instant::now();
        other.send(&[0xC0, 0x00]);
        assert_eq!(other.next(WAIT), Next::Packet(vec![0xD0, 0x00]));
        worst = worst.max(t.elapsed());
        pings += 1;
        match slow_client.next(Duration::from_millis(20)) {
            Next::Packet(p) => break p,
            Next::Closed => panic!("closed without CONNACK"),
            Next::Silent => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no CONNACK for the slow check"
        );
    };
    // 3.1.1 return code 4: bad user name or password.
    assert_eq!(answered, [0x20, 0x02, 0x00, 0x04]);
    assert!(
        pings >= 5,
        "the check was too quick to show anything ({pings} pings, {slow} iterations)"
    );
    assert!(
        worst < Duration::from_millis(200),
        "a PINGREQ took {worst:?} during the check"
    );
}

/// A toy enhanced method for the in-process server: the broker challenges
/// with `nonce`, the client answers `nonce:<user>`.
struct Toy;

struct ToyExchange {
    challenged: bool,
}

impl mqtt_broker::auth::EnhancedMethod for Toy {
    fn name(&self) -> &str {
        "TOY"
    }

    fn begin(&self, _: &str) -> Box<dyn mqtt_broker::auth::MethodExchange> {
        Box::new(ToyExchange { challenged: false })
    }
}

impl mqtt_broker::auth::MethodExchange for ToyExchange {
    fn step(&mut self, data: Option<&[u8]>) -> mqtt_broker::auth::MethodStep {
        use mqtt_broker::auth::MethodStep;
        if !std::mem::replace(&mut self.challenged, true) {
            return MethodStep::Continue(b"nonce".to_vec());
        }
        match data.and_then(|d| d.strip_prefix(b"nonce:")) {
            Some(user) => MethodStep::Done {
                username: Some(String::from_utf8_lossy(user).into_owned()),
                data: Some(b"welcome".to_vec()),
            },
            None => MethodStep::Failed(ReasonCode::NOT_AUTHORIZED),
        }
    }
}

fn auth_packet(reason: ReasonCode, data: &'static [u8]) -> Vec<u8> {
    let mut props = mqtt_codec::AuthProps::default();
    props.authentication_method = Some(s("TOY"));
    props.authentication_data = Some(Bytes::from_static(data));
    encode(V5, Packet::Auth(mqtt_codec::Auth { reason, props }))
}

/// Section 4.12 through the tokio server and a registered method: CONNECT
/// with the method, AUTH 0x18 challenge, the client's AUTH 0x18 answer,
/// CONNACK 0x00 with the method and final data; then a re-authentication
/// (AUTH 0x19) that fails ends with DISCONNECT 0x87.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_authentication_runs_through_a_registered_method() {
    let config = mqtt_broker::Config::from_toml("[[listener]]\nbind = \"127.0.0.1:0\"\n").unwrap();
    let auth =
        mqtt_broker::FileAuthenticator::new(true, None, None).with_method(std::sync::Arc::new(Toy));
    let server =
        mqtt_broker::Server::start_with_authenticator(config, 7, std::sync::Arc::new(auth))
            .await
            .unwrap();
    let addr = server.local_addrs()[0];
    let seen = tokio::task::spawn_blocking(move || {
        let mut c = Connect::new(V5, s("toy"));
        c.props.authentication_method = Some(s("TOY"));
        let mut raw = Raw::connect(addr);
        raw.send(&encode(V5, Packet::Connect(Box::new(c))));
        let mut seen = Vec::new();
        let mut record = |p: Option<Packet>| match p {
            Some(Packet::Auth(a)) => seen.push(("auth", a.reason, a.props.authentication_data)),
            Some(Packet::ConnAck(a)) => {
                seen.push(("connack", a.reason, a.props.authentication_data))
            }
            Some(Packet::Disconnect(d)) => seen.push(("disconnect", d.reason, None)),
            other => panic!("{other:?}"),
        };
        record(next(&mut raw, V5, WAIT));
        raw.send(&auth_packet(
            ReasonCode::CONTINUE_AUTHENTICATION,
            b"nonce:bob",
        ));
        record(next(&mut raw, V5, WAIT));
        raw.send(&auth_packet(ReasonCode::RE_AUTHENTICATE, b"first"));
        record(next(&mut raw, V5, WAIT));
        raw.send(&auth_packet(ReasonCode::CONTINUE_AUTHENTICATION, b"wrong"));
        record(next(&mut raw, V5, WAIT));
        raw.expect_closed();
        seen
    })
    .await
    .unwrap();
    let b = |d: &'static [u8]| Some(Bytes::from_static(d));
    assert_eq!(
        seen,
        [
            ("auth", ReasonCode::CONTINUE_AUTHENTICATION, b(b"nonce")),
            ("connack", ReasonCode::SUCCESS, b(b"welcome")),
            ("auth", ReasonCode::CONTINUE_AUTHENTICATION, b(b"nonce")),
            ("disconnect", ReasonCode::NOT_AUTHORIZED, None),
        ]
    );
    server.stop().await;
}
