//! Authentication as requests and answers, rights checked by the core, and
//! sessions owned by their user, end to end on the simulator: the broker
//! core emits requests, the test plays the driver that answers them (at
//! once through an `Authority`, or later from `held_auth`).

/// The adapter hands bytes to the broker (`handle_read`, `poll_transmit`).
const PACKET_PATH: bool = false;

mod common;

use bytes::Bytes;
use common::*;
use mqtt_router::broker::{
    Access, AuthAnswer, AuthAnswerError, AuthConfig, AuthRequest, AuthStep, AuthSuccess,
    BrokerConfig, Rights, Rule,
};
use mqtt_session::mqtt_codec::{
    Auth, AuthProps, Connect, Packet, ProtocolVersion, QoS, ReasonCode, Str,
};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V311;
const VERSIONS: [ProtocolVersion; 2] = [V311, V5];
const Q1: QoS = QoS::AtLeastOnce;

fn required() -> BrokerConfig {
    BrokerConfig {
        auth: AuthConfig {
            required: true,
            methods: vec!["TEST".to_owned()],
        },
        ..broker_config()
    }
}

/// A sim whose driver holds every request for the test.
fn held() -> Sim {
    let mut sim = Sim::with_observer(required(), mqtt_sim::Quiet);
    sim.set_path(0, mqtt_sim::AdapterPath::Bytes);
    sim
}

fn take_held(sim: &mut Sim) -> Vec<AuthRequest> {
    sim.held_auth.drain(..).map(|(_, r)| r).collect()
}

fn answer(sim: &mut Sim, req: &AuthRequest, a: AuthAnswer) -> Result<(), AuthAnswerError> {
    let now = sim.now;
    let r = sim.broker_mut().answer_auth(req.ticket(), now, a);
    sim.run_until_idle();
    r
}

fn success(user: Option<&str>, rights: Rights) -> AuthAnswer {
    AuthAnswer::Success(AuthSuccess::new(user.map(s), rights))
}

fn rights(rules: &[(&str, Access)]) -> Rights {
    Rights::from_rules(rules.iter().map(|(f, a)| Rule::new(filter(f), *a)))
}

fn enhanced_connect(id: &str, method: &str, data: &'static [u8]) -> Vec<u8> {
    let mut c = Connect::new(V5, s(id));
    c.props.authentication_method = Some(s(method));
    c.props.authentication_data = Some(Bytes::from_static(data));
    encode(V5, &[Packet::Connect(Box::new(c))])
}

fn auth_packet(reason: ReasonCode, method: &str, data: &'static [u8]) -> Vec<u8> {
    let mut props = AuthProps::default();
    props.authentication_method = Some(s(method));
    props.authentication_data = Some(Bytes::from_static(data));
    encode(V5, &[Packet::Auth(Auth { reason, props })])
}

/// What a raw peer received, as (packet kind, reason code, auth data).
fn got(sim: &Sim, i: usize) -> Vec<(&'static str, ReasonCode, Option<Bytes>)> {
    sim.peers[i]
        .received
        .iter()
        .filter_map(|p| match p {
            Packet::ConnAck(a) => Some(("connack", a.reason, a.props.authentication_data.clone())),
            Packet::Auth(a) => Some(("auth", a.reason, a.props.authentication_data.clone())),
            Packet::Disconnect(d) => Some(("disconnect", d.reason, None)),
            _ => None,
        })
        .collect()
}

// ----- pending CONNECT ------------------------------------------------------------

/// Reference §9: a CONNECT becomes a request carrying what the driver
/// needs, and the client hears nothing (no CONNACK) until the answer;
/// then CONNACK 0x00 and what it sent meanwhile is handled.
#[test]
fn a_connect_waits_for_the_drivers_answer_then_succeeds() {
    for v in VERSIONS {
        let mut sim = held();
        let mut c = cfg(v, "alice");
        c.username = Some(s("alice"));
        c.password = Some(Bytes::from_static(b"pw"));
        let i = sim.connect(c);
        assert!(
            sim.peers[i].raw_in.is_empty(),
            "{v:?}: nothing before the answer"
        );
        let reqs = take_held(&mut sim);
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!(r.step(), AuthStep::Connect);
        assert_eq!(r.client_id().as_str(), "alice");
        assert_eq!(r.username().map(Str::as_str), Some("alice"));
        assert_eq!(r.password().map(|p| &p[..]), Some(&b"pw"[..]));
        assert_eq!(r.version(), v);
        answer(&mut sim, r, success(Some("alice"), Rights::allow_all())).unwrap();
        assert_eq!(sim.connack(i), Ok(false), "{v:?}");
        sim.subscribe(i, "t", Q1);
    }
}

/// v5 3.2.2.2 / v311 3.2.2.3: a refusal is CONNACK with the driver's
/// reason (0x86; 3.1.1 return code 4) and the connection closes.
#[test]
fn a_refused_connect_hears_the_reason_and_is_closed() {
    for v in VERSIONS {
        let mut sim = held();
        let i = sim.connect(cfg(v, "m"));
        let r = take_held(&mut sim).remove(0);
        let refuse = AuthAnswer::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD);
        answer(&mut sim, &r, refuse).unwrap();
        assert_eq!(sim.connack(i), Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD));
        let wire = &sim.peers[i].raw_in[..];
        if v.is_v5() {
            assert_eq!(&wire[..4], [0x20, 0x03, 0x00, 0x86]);
        } else {
            assert_eq!(wire, [0x20, 0x02, 0x00, 0x04]);
        }
        assert!(sim.broker_closed(i));
        assert_eq!(sim.broker().connection_count(), 0);
        let stats = sim.broker().stats();
        assert_eq!(stats.connections_refused, 1);
        // Counted by reason (metrics' `reason` label) and as an
        // authentication failure without a method (a password).
        assert_eq!(stats.refused_with(ReasonCode::BAD_USER_NAME_OR_PASSWORD), 1);
        assert_eq!(stats.refused_with(ReasonCode::NOT_AUTHORIZED), 0);
        assert_eq!(stats.auth_failures.password, 1);
        assert!(stats.auth_failures.methods.is_empty());
    }
}

/// An answer for a connection that has gone changes nothing and says so;
/// a connection whose answer never comes is refused at the CONNECT
/// deadline (0x89 Server busy) and cleaned up.
#[test]
fn answers_for_gone_connections_are_stale_and_a_silent_driver_times_out() {
    let mut sim = held();
    let i = sim.connect(cfg(V5, "slow"));
    let r = take_held(&mut sim).remove(0);
    sim.advance(secs(31));
    assert_eq!(sim.connack(i), Err(ReasonCode::SERVER_BUSY));
    assert_eq!(sim.broker().connection_count(), 0);
    let late = answer(&mut sim, &r, success(None, Rights::allow_all()));
    assert_eq!(late, Err(AuthAnswerError::Stale));

    // The slot is reused by a new connection: the old ticket stays stale.
    let j = sim.connect(cfg(V5, "next"));
    let r2 = take_held(&mut sim).remove(0);
    let late = answer(&mut sim, &r, success(None, Rights::allow_all()));
    assert_eq!(late, Err(AuthAnswerError::Stale));
    answer(&mut sim, &r2, success(None, Rights::allow_all())).unwrap();
    assert_eq!(sim.connack(j), Ok(false));
    // Answering twice: the second is stale.
    let again = answer(&mut sim, &r2, success(None, Rights::allow_all()));
    assert_eq!(again, Err(AuthAnswerError::Stale));
}

/// A client that goes away while its authentication is pending is cleaned
/// up, and a pending CONNECT never takes over the connected session of its
/// client identifier (only an authenticated one does).
#[test]
fn a_pending_connect_that_closes_is_cleaned_up_and_never_took_over() {
    let mut config = required();
    config.auth.required = false;
    let mut sim = Sim::with_observer(config, mqtt_sim::Quiet);
    let (owner, _) = sim.connect_ok(cfg(V5, "c"));
    let raw = sim.raw(V5);
    sim.send_raw(raw, &enhanced_connect("c", "TEST", b"x"));
    let r = take_held(&mut sim).remove(0);
    assert!(!sim.broker_closed(owner), "not taken over while pending");
    sim.send_raw(raw, &encode(V5, &[Packet::PingReq]));
    sim.drop_transport(raw);
    assert_eq!(sim.broker().connection_count(), 1);
    let late = answer(&mut sim, &r, success(None, Rights::allow_all()));
    assert_eq!(late, Err(AuthAnswerError::Stale));
    assert!(!sim.broker_closed(owner));
}

// ----- enhanced authentication (section 4.12) ----------------------------------------

/// [MQTT-4.12.0-1]: a method no driver supports is refused with CONNACK
/// 0x8C, with or without required authentication, and no request is made.
#[test]
fn an_unsupported_authentication_method_is_refused_with_0x8c() {
    for config in [required(), broker_config()] {
        let mut sim = Sim::with_observer(config, mqtt_sim::Quiet);
        let i = sim.raw(V5);
        sim.send_raw(i, &enhanced_connect("c", "NOPE", b""));
        assert_eq!(
            got(&sim, i),
            [("connack", ReasonCode::BAD_AUTHENTICATION_METHOD, None)]
        );
        assert!(sim.held_auth.is_empty());
        assert!(sim.broker_closed(i));
        // A refusal by the core, not by an authenticator: no auth failure.
        let stats = sim.broker().stats();
        assert_eq!(stats.refused_with(ReasonCode::BAD_AUTHENTICATION_METHOD), 1);
        assert_eq!(stats.auth_failures.total(), 0);
    }
}

/// Section 4.12: several round trips before CONNACK; each AUTH 0x18 the
/// driver asks for carries its data and method, the client's answer
/// becomes a `Continue` request, and the CONNACK carries the method and the
/// driver's final data.
#[test]
fn enhanced_authentication_takes_several_round_trips() {
    let mut sim = held();
    let i = sim.raw(V5);
    sim.send_raw(i, &enhanced_connect("c", "TEST", b"first"));
    let r = take_held(&mut sim).remove(0);
    assert_eq!(r.method().map(Str::as_str), Some("TEST"));
    assert_eq!(r.data().map(|d| &d[..]), Some(&b"first"[..]));
    answer(
        &mut sim,
        &r,
        AuthAnswer::Continue(Bytes::from_static(b"c1")),
    )
    .unwrap();
    sim.send_raw(
        i,
        &auth_packet(ReasonCode::CONTINUE_AUTHENTICATION, "TEST", b"r1"),
    );
    let r = take_held(&mut sim).remove(0);
    assert_eq!(r.step(), AuthStep::Continue);
    assert_eq!(r.data().map(|d| &d[..]), Some(&b"r1"[..]));
    answer(
        &mut sim,
        &r,
        AuthAnswer::Continue(Bytes::from_static(b"c2")),
    )
    .unwrap();
    sim.send_raw(
        i,
        &auth_packet(ReasonCode::CONTINUE_AUTHENTICATION, "TEST", b"r2"),
    );
    let r = take_held(&mut sim).remove(0);
    let ok =
        AuthSuccess::new(Some(s("u")), Rights::allow_all()).with_data(Bytes::from_static(b"ok"));
    answer(&mut sim, &r, AuthAnswer::Success(ok)).unwrap();
    let c = |d: &'static [u8]| Some(Bytes::from_static(d));
    assert_eq!(
        got(&sim, i),
        [
            ("auth", ReasonCode::CONTINUE_AUTHENTICATION, c(b"c1")),
            ("auth", ReasonCode::CONTINUE_AUTHENTICATION, c(b"c2")),
            ("connack", ReasonCode::SUCCESS, c(b"ok")),
        ]
    );
    let Some(Packet::ConnAck(ack)) = sim.peers[i].received.last() else {
        panic!("no CONNACK");
    };
    assert_eq!(
        ack.props.authentication_method.as_ref().map(Str::as_str),
        Some("TEST")
    );
}

/// Section 4.12: an AUTH the server did not ask for while connecting is a
/// protocol error (CONNACK 0x82).
#[test]
fn an_unrequested_auth_while_connecting_is_a_protocol_error() {
    let mut sim = held();
    let i = sim.raw(V5);
    sim.send_raw(i, &enhanced_connect("c", "TEST", b""));
    sim.send_raw(
        i,
        &auth_packet(ReasonCode::CONTINUE_AUTHENTICATION, "TEST", b"early"),
    );
    assert_eq!(
        got(&sim, i),
        [("connack", ReasonCode::PROTOCOL_ERROR, None)]
    );
    assert!(sim.broker_closed(i));
}

/// Connected by an enhanced method and answered at once.
fn enhanced_client(sim: &mut Sim) -> usize {
    let i = sim.raw(V5);
    sim.send_raw(i, &enhanced_connect("c", "TEST", b""));
    let r = take_held(sim).remove(0);
    answer(sim, &r, success(Some("u"), Rights::allow_all())).unwrap();
    i
}

/// Section 4.12.1: re-authentication (AUTH 0x19) under the same method is
/// a request; success is AUTH 0x00, and the connection carries on.
#[test]
fn re_authentication_succeeds_with_auth_0x00() {
    let mut sim = held();
    let i = enhanced_client(&mut sim);
    sim.send_raw(
        i,
        &auth_packet(ReasonCode::RE_AUTHENTICATE, "TEST", b"again"),
    );
    let r = take_held(&mut sim).remove(0);
    assert_eq!(r.step(), AuthStep::Reauthenticate);
    assert_eq!(r.username().map(Str::as_str), Some("u"));
    answer(&mut sim, &r, success(Some("u"), Rights::allow_all())).unwrap();
    assert_eq!(got(&sim, i)[1], ("auth", ReasonCode::SUCCESS, None));
    assert!(!sim.broker_closed(i));
}

/// [MQTT-4.12.1-2]: a failed re-authentication ends the connection with a
/// DISCONNECT carrying the reason; a different user is refused too (0x87),
/// and so is a wrong password (0x86 is not a DISCONNECT reason code).
#[test]
fn a_failed_re_authentication_disconnects_with_its_reason() {
    let cases = [
        (
            AuthAnswer::Refuse(ReasonCode::NOT_AUTHORIZED),
            ReasonCode::NOT_AUTHORIZED,
        ),
        (
            AuthAnswer::Refuse(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            ReasonCode::NOT_AUTHORIZED,
        ),
        (
            success(Some("other"), Rights::allow_all()),
            ReasonCode::NOT_AUTHORIZED,
        ),
        (
            AuthAnswer::Refuse(ReasonCode::BAD_AUTHENTICATION_METHOD),
            ReasonCode::BAD_AUTHENTICATION_METHOD,
        ),
    ];
    for (a, reason) in cases {
        let mut sim = held();
        let i = enhanced_client(&mut sim);
        sim.send_raw(i, &auth_packet(ReasonCode::RE_AUTHENTICATE, "TEST", b""));
        let r = take_held(&mut sim).remove(0);
        let refused = matches!(a, AuthAnswer::Refuse(_));
        answer(&mut sim, &r, a).unwrap();
        assert_eq!(got(&sim, i)[1], ("disconnect", reason, None));
        assert!(sim.broker_closed(i));
        // A refused re-authentication is an authentication failure of its
        // method; the connection had been accepted, so no CONNECT refused.
        let stats = sim.broker().stats();
        let expected: Vec<(Str, u64)> = if refused {
            vec![(Str::try_from("TEST").unwrap(), 1)]
        } else {
            vec![]
        };
        assert_eq!(stats.auth_failures.methods, expected);
        assert_eq!(stats.connections_refused, 0);
    }
}

/// [MQTT-4.12.0-7] with 4.12.1: re-authentication under another method, or
/// by a client that connected without one, is DISCONNECT 0x8C; a second
/// 0x19 while one is pending is a protocol error (0x82).
#[test]
fn re_authentication_under_another_method_or_twice_is_refused() {
    let mut sim = held();
    let i = enhanced_client(&mut sim);
    sim.send_raw(i, &auth_packet(ReasonCode::RE_AUTHENTICATE, "OTHER", b""));
    assert_eq!(
        got(&sim, i)[1],
        ("disconnect", ReasonCode::BAD_AUTHENTICATION_METHOD, None)
    );

    let mut sim = Sim::new(broker_config());
    let i = sim.raw(V5);
    sim.send_raw(i, &encode(V5, &[connect_packet(V5, "plain", true)]));
    sim.send_raw(i, &auth_packet(ReasonCode::RE_AUTHENTICATE, "TEST", b""));
    assert_eq!(
        got(&sim, i)[1],
        ("disconnect", ReasonCode::BAD_AUTHENTICATION_METHOD, None)
    );

    let mut sim = held();
    let i = enhanced_client(&mut sim);
    sim.send_raw(i, &auth_packet(ReasonCode::RE_AUTHENTICATE, "TEST", b""));
    sim.send_raw(i, &auth_packet(ReasonCode::RE_AUTHENTICATE, "TEST", b""));
    assert_eq!(
        got(&sim, i)[1],
        ("disconnect", ReasonCode::PROTOCOL_ERROR, None)
    );
}

// ----- rights ---------------------------------------------------------------------

fn with_rights(rights: Rights) -> Sim {
    let r = rights.clone();
    let authority: mqtt_sim::Authority = Box::new(move |req: &AuthRequest| {
        Some(AuthAnswer::Success(AuthSuccess::new(
            req.username().cloned(),
            r.clone(),
        )))
    });
    new_sim_with(broker_config(), authority)
}

/// Mosquitto's semantics: `read a/#` beside `deny a/secret` grants the
/// subscription `a/#`, and read access is checked per delivery: `a/ok`
/// arrives, `a/secret` (published live or retained) never does.
#[test]
fn a_granted_wildcard_never_delivers_a_denied_topic() {
    for v in VERSIONS {
        let mut sim = with_rights(rights(&[("a/#", Access::Read), ("a/secret", Access::Deny)]));
        let now = sim.now;
        sim.broker_mut()
            .publish(now, msg("a/secret", "old", Q1, true));
        let (sub, _) = sim.connect_ok(cfg(v, "sub"));
        assert_eq!(sim.subscribe(sub, "a/#", Q1), ReasonCode(1), "{v:?}");
        assert!(sim.subscribe(sub, "a/secret", Q1).is_error(), "{v:?}");
        let now = sim.now;
        sim.broker_mut()
            .publish(now, msg("a/secret", "no", Q1, false));
        sim.broker_mut().publish(now, msg("a/ok", "yes", Q1, false));
        sim.run_until_idle();
        assert_eq!(sim.payloads(sub), ["yes"], "{v:?}");
    }
}

/// Rights replaced while connected (a reload) apply to the next delivery
/// and publish.
#[test]
fn replaced_rights_apply_to_the_next_delivery() {
    let mut sim = with_rights(Rights::allow_all());
    let (sub, _) = sim.connect_ok(cfg(V5, "sub"));
    sim.subscribe(sub, "#", Q1);
    let id = *sim.broker().connections().first().unwrap();
    assert!(sim
        .broker_mut()
        .set_rights(id, rights(&[("open/#", Access::ReadWrite)])));
    let now = sim.now;
    sim.broker_mut()
        .publish(now, msg("closed/x", "no", Q1, false));
    sim.broker_mut()
        .publish(now, msg("open/x", "yes", Q1, false));
    sim.run_until_idle();
    assert_eq!(sim.payloads(sub), ["yes"]);
    assert_eq!(
        sim.publish(sub, msg("closed/y", "n", Q1, false)),
        Some(ReasonCode::NOT_AUTHORIZED)
    );
}

/// A will is the client's publish: a CONNECT whose will topic its rights
/// do not allow is refused with 0x87 (3.1.1: return code 5), as Mosquitto.
#[test]
fn a_will_the_rights_forbid_refuses_the_connect() {
    for v in VERSIONS {
        let mut sim = with_rights(rights(&[("ok/#", Access::Write)]));
        let mut c = cfg(v, "w");
        c.will = Some(will("forbidden", "bye", None));
        let i = sim.connect(c);
        assert_eq!(sim.connack(i), Err(ReasonCode::NOT_AUTHORIZED), "{v:?}");
    }
}

// ----- a session belongs to its user ---------------------------------------------------

fn user(v: ProtocolVersion, id: &str, name: Option<&str>) -> mqtt_session::ClientConfig {
    let mut c = persistent(v, id, 3600);
    c.username = name.map(s);
    c
}

/// The same user resumes its session (Session Present, queued messages).
#[test]
fn the_same_user_resumes_its_session() {
    for v in VERSIONS {
        let mut sim = Sim::new(broker_config());
        let (a, _) = sim.connect_ok(user(v, "c", Some("alice")));
        sim.subscribe(a, "t", Q1);
        sim.disconnect(a, ReasonCode::SUCCESS);
        let now = sim.now;
        sim.broker_mut().publish(now, msg("t", "kept", Q1, false));
        let (a2, present) = sim.connect_ok(user(v, "c", Some("alice")));
        assert!(present, "{v:?}");
        sim.run_until_idle();
        assert_eq!(sim.payloads(a2), ["kept"], "{v:?}");
    }
}

/// Issue #18: another user (or an anonymous client) connecting with the
/// client identifier of a session takes over the connection (0x8E) but
/// gets a fresh session (Session Present 0) without the other's queue or
/// subscriptions, which are gone for good.
#[test]
fn another_user_gets_a_fresh_session_and_the_old_one_is_discarded() {
    let pairs = [
        (Some("alice"), Some("mallory")),
        (None, Some("mallory")),
        (Some("alice"), None),
    ];
    for v in VERSIONS {
        for (owner, newcomer) in pairs {
            let mut sim = Sim::new(broker_config());
            let (a, _) = sim.connect_ok(user(v, "c", owner));
            sim.subscribe(a, "t", Q1);
            sim.disconnect(a, ReasonCode::SUCCESS);
            let now = sim.now;
            sim.broker_mut()
                .publish(now, msg("t", "for the owner", Q1, false));
            let (m, present) = sim.connect_ok(user(v, "c", newcomer));
            assert!(!present, "{v:?} {owner:?} -> {newcomer:?}");
            sim.run_until_idle();
            assert!(sim.payloads(m).is_empty());
            // The old subscription went with the old session.
            let now = sim.now;
            assert_eq!(sim.broker_mut().publish(now, msg("t", "x", Q1, false)), 0);
            // Connected take-over by another user: 0x8E for the old
            // connection, a fresh session for the new one.
            let (a2, present) = sim.connect_ok(user(v, "c", owner));
            assert!(!present);
            assert!(sim.broker_closed(m));
            if v.is_v5() {
                assert_eq!(
                    sim.disconnect_reason(m),
                    Some(ReasonCode::SESSION_TAKEN_OVER)
                );
            }
            assert!(!sim.broker_closed(a2));
        }
    }
}
