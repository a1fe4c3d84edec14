//! Packets built from small choices, so that a fuzzer's bytes name the same
//! few topics, client identifiers and packet identifiers again and again
//! and reach the flows between them (acknowledgements of what is in flight,
//! subscriptions that match publishes, take-overs, topic aliases), which
//! random packets almost never do. Raw bytes and arbitrary valid packets
//! (the codec's `arbitrary` feature) come alongside, for breadth.

use core::num::{NonZeroU16, NonZeroU32};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use mqtt_codec::{
    Ack, Auth, ConnAck, Connect, Disconnect, Packet, PacketId, ProtocolVersion, Publish, QoS,
    QosPid, ReasonCode, RetainHandling, Str, SubAck, Subscribe, SubscriptionId,
    SubscriptionOptions, TopicFilter, TopicName, Unsubscribe, Will,
};
use mqtt_session::{Instant, Limits};

/// Topic names the targets publish to.
pub(crate) const TOPICS: &[&str] = &["a", "a/b", "a/b/c", "b", "x/y", "$SYS/t", "/a", "a/"];
/// Topic filters the targets subscribe to; most match some of [`TOPICS`].
pub(crate) const FILTERS: &[&str] = &[
    "a",
    "a/+",
    "a/#",
    "#",
    "+/b",
    "$SYS/#",
    "$share/g/a/#",
    "b",
    "+",
    "x/#",
    "/+",
    "$share/g/#",
];
/// Client identifiers: a few, so that clients take over each other's sessions.
pub(crate) const CLIENT_IDS: &[&str] = &["c0", "c1", "c2", ""];
/// User names (the broker target's policy refuses `deny`).
pub(crate) const USERS: &[&str] = &["u0", "u1", "deny"];
/// The authentication method a CONNECT may name.
pub(crate) const AUTH_METHOD: &str = "m";
/// Reason codes, success and failure, valid for some packets and not others.
const REASONS: &[u8] = &[
    0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80, 0x83, 0x85, 0x87, 0x8B, 0x8E, 0x91, 0x92,
    0x93, 0x97, 0x9C,
];

pub(crate) fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

pub(crate) fn version(v: u8) -> ProtocolVersion {
    [
        ProtocolVersion::V311,
        ProtocolVersion::V5,
        ProtocolVersion::V31,
    ][usize::from(v % 3)]
}

pub(crate) fn qos(q: u8) -> QoS {
    [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(q % 3)]
}

pub(crate) fn reason(r: u8) -> ReasonCode {
    ReasonCode(REASONS[usize::from(r) % REASONS.len()])
}

/// Packet identifiers 1 to 8: the ones a connection hands out first.
pub(crate) fn packet_id(i: u8) -> PacketId {
    PacketId::new(u16::from(i % 8) + 1).expect("not zero")
}

pub(crate) fn topic(i: u8) -> TopicName {
    TopicName::from_static(pick(TOPICS, i))
}

pub(crate) fn filter(i: u8) -> TopicFilter {
    TopicFilter::from_static(pick(FILTERS, i))
}

fn string(s: &'static str) -> Str {
    Str::from_static(s)
}

fn payload(n: u8) -> Bytes {
    Bytes::from(vec![b'p'; usize::from(n % 64)])
}

/// Seconds for an interval: none, short, an hour, or forever.
fn interval(i: u8) -> u32 {
    [0, 1, 5, 3600, u32::MAX][usize::from(i % 5)]
}

/// A time step in milliseconds: none, milliseconds, seconds, minutes, hours.
pub(crate) fn step_millis(step: u16) -> u64 {
    let n = u64::from(step >> 3);
    match step & 7 {
        0 => 0,
        1 | 2 => n % 1000,
        3 | 4 => n % 120 * 1000,
        5 => n % 60 * 60_000,
        6 => 1_500 * (n % 200),
        _ => n * 3_600_000,
    }
}

/// Limits small enough for the fuzzer to fill.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct LimitsSpec {
    receive_maximum: u8,
    max_packet_size: u8,
    topic_alias_maximum: u8,
    max_inflight: u8,
    max_queued: u8,
    max_queued_qos0: u8,
    outbound_topic_alias_maximum: u8,
}

impl LimitsSpec {
    pub(crate) fn build(&self) -> Limits {
        Limits {
            receive_maximum: u16::from(self.receive_maximum % 6),
            max_packet_size: 64 + u32::from(self.max_packet_size) * 16,
            topic_alias_maximum: u16::from(self.topic_alias_maximum % 4),
            max_inflight: u16::from(self.max_inflight % 6),
            max_queued: usize::from(self.max_queued % 8),
            max_queued_qos0: usize::from(self.max_queued_qos0 % 8),
            max_queued_bytes: usize::MAX,
            outbound_topic_alias_maximum: u16::from(self.outbound_topic_alias_maximum % 4),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct WillSpec {
    topic: u8,
    qos: u8,
    retain: bool,
    delay: Option<u8>,
    expiry: Option<u8>,
    payload: u8,
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct ConnectSpec {
    version: u8,
    client_id: u8,
    clean_start: bool,
    keep_alive: u8,
    session_expiry: Option<u8>,
    will: Option<WillSpec>,
    username: Option<u8>,
    password: bool,
    receive_maximum: Option<u8>,
    maximum_packet_size: Option<u8>,
    topic_alias_maximum: Option<u8>,
    request_problem_information: Option<bool>,
    auth_method: bool,
    bridge: bool,
}

impl ConnectSpec {
    pub(crate) fn build(&self) -> Connect {
        let v = version(self.version);
        let mut c = Connect::new(v, string(pick(CLIENT_IDS, self.client_id)));
        c.clean_start = self.clean_start;
        c.keep_alive = u16::from(self.keep_alive % 128);
        c.username = self.username.map(|u| string(pick(USERS, u)));
        c.password = (self.password && (c.username.is_some() || v.is_v5()))
            .then(|| Bytes::from_static(b"pw"));
        c.bridge = self.bridge && !v.is_v5();
        c.will = self.will.as_ref().map(|w| {
            let mut will = Will {
                topic: topic(w.topic),
                payload: payload(w.payload),
                qos: qos(w.qos),
                retain: w.retain,
                props: Default::default(),
            };
            if v.is_v5() {
                will.props.will_delay_interval = w.delay.map(interval);
                will.props.message_expiry_interval = w.expiry.map(interval);
            }
            will
        });
        if v.is_v5() {
            let p = &mut c.props;
            p.session_expiry_interval = self.session_expiry.map(interval);
            p.receive_maximum = self
                .receive_maximum
                .and_then(|n| NonZeroU16::new(u16::from(n % 4)));
            p.maximum_packet_size = self
                .maximum_packet_size
                .and_then(|n| NonZeroU32::new(u32::from(n) * 4));
            p.topic_alias_maximum = self.topic_alias_maximum.map(|n| u16::from(n % 4));
            p.request_problem_information = self.request_problem_information;
            if self.auth_method {
                p.authentication_method = Some(string(AUTH_METHOD));
            }
        }
        c
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct PublishSpec {
    topic: u8,
    alias: Option<u8>,
    alias_only: bool,
    qos: u8,
    id: u8,
    dup: bool,
    retain: bool,
    payload: u8,
    expiry: Option<u8>,
    subscription_id: Option<u8>,
}

impl PublishSpec {
    pub(crate) fn build(&self, v: ProtocolVersion) -> Publish {
        let q = qos(self.qos);
        let mut p = Publish::new(topic(self.topic), payload(self.payload));
        p.qos = match q {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            q => QosPid::from_qos(q, packet_id(self.id)),
        };
        p.dup = self.dup && q != QoS::AtMostOnce;
        p.retain = self.retain;
        if v.is_v5() {
            p.props.message_expiry_interval = self.expiry.map(interval);
            if let Some(a) = self.alias {
                p.props.topic_alias = NonZeroU16::new(u16::from(a % 5));
                if self.alias_only && p.props.topic_alias.is_some() {
                    p.topic = None;
                }
            }
            p.props.subscription_identifiers = self
                .subscription_id
                .and_then(|i| SubscriptionId::new(u32::from(i % 4) + 1))
                .into_iter()
                .collect();
        }
        p
    }
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP of a small identifier.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct AckSpec {
    kind: u8,
    id: u8,
    reason: u8,
}

impl AckSpec {
    fn build(&self, v: ProtocolVersion) -> Packet {
        let r = if v.is_v5() {
            reason(self.reason)
        } else {
            ReasonCode::SUCCESS
        };
        let a = Ack::with_reason(packet_id(self.id), r);
        match self.kind % 4 {
            0 => Packet::PubAck(a),
            1 => Packet::PubRec(a),
            2 => Packet::PubRel(a),
            _ => Packet::PubComp(a),
        }
    }
}

/// What a client sends a server.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum ToServer {
    Connect(ConnectSpec),
    Publish(PublishSpec),
    Ack(AckSpec),
    Subscribe {
        id: u8,
        filters: Vec<(u8, u8)>,
        subscription_id: Option<u8>,
    },
    Unsubscribe {
        id: u8,
        filters: Vec<u8>,
    },
    PingReq,
    Disconnect {
        reason: u8,
        expiry: Option<u8>,
    },
    Auth {
        reason: u8,
        method: bool,
    },
    /// A valid packet of any kind, drawn from these bytes.
    Any(Vec<u8>),
    /// Bytes as they are.
    Raw(Vec<u8>),
}

impl ToServer {
    /// The bytes on the wire, in `v` (a CONNECT in its own version); empty
    /// when the choices make no packet that encodes.
    pub(crate) fn bytes(&self, v: ProtocolVersion) -> Vec<u8> {
        let p = match self {
            ToServer::Connect(c) => Packet::Connect(Box::new(c.build())),
            ToServer::Publish(p) => Packet::Publish(p.build(v)),
            ToServer::Ack(a) => a.build(v),
            ToServer::Subscribe {
                id,
                filters,
                subscription_id,
            } => {
                let mut s = Subscribe {
                    id: packet_id(*id),
                    props: Default::default(),
                    filters: filters
                        .iter()
                        .take(4)
                        .map(|&(f, o)| (filter(f), options(o, v)))
                        .collect(),
                };
                if v.is_v5() {
                    s.props.subscription_identifier =
                        subscription_id.and_then(|i| SubscriptionId::new(u32::from(i % 4) + 1));
                }
                Packet::Subscribe(s)
            }
            ToServer::Unsubscribe { id, filters } => Packet::Unsubscribe(Unsubscribe {
                id: packet_id(*id),
                props: Default::default(),
                filters: filters.iter().take(4).map(|&f| filter(f)).collect(),
            }),
            ToServer::PingReq => Packet::PingReq,
            ToServer::Disconnect { reason: r, expiry } => {
                let mut d = Disconnect::new(if v.is_v5() {
                    reason(*r)
                } else {
                    ReasonCode::SUCCESS
                });
                if v.is_v5() {
                    d.props.session_expiry_interval = expiry.map(interval);
                }
                Packet::Disconnect(d)
            }
            ToServer::Auth { reason: r, method } => auth(*r, *method),
            ToServer::Any(seed) => return any(seed, v),
            ToServer::Raw(bytes) => return bytes.clone(),
        };
        encode(&p, v)
    }
}

/// What a server (a hostile broker) sends a client.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum ToClient {
    ConnAck(ConnAckSpec),
    Publish(PublishSpec),
    Ack(AckSpec),
    SubAck {
        id: u8,
        reasons: Vec<u8>,
        unsubscribe: bool,
    },
    PingResp,
    Disconnect {
        reason: u8,
    },
    Auth {
        reason: u8,
        method: bool,
    },
    Any(Vec<u8>),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct ConnAckSpec {
    session_present: bool,
    reason: u8,
    success: bool,
    receive_maximum: Option<u8>,
    maximum_qos: Option<u8>,
    retain_available: Option<bool>,
    maximum_packet_size: Option<u8>,
    assigned: bool,
    topic_alias_maximum: Option<u8>,
    keep_alive: Option<u8>,
    session_expiry: Option<u8>,
    auth_method: bool,
}

impl ToClient {
    pub(crate) fn bytes(&self, v: ProtocolVersion) -> Vec<u8> {
        let p = match self {
            ToClient::ConnAck(c) => {
                let r = if c.success {
                    ReasonCode::SUCCESS
                } else {
                    reason(c.reason)
                };
                let mut ack = ConnAck::new(c.session_present, r);
                if v.is_v5() {
                    let p = &mut ack.props;
                    p.receive_maximum = c
                        .receive_maximum
                        .and_then(|n| NonZeroU16::new(u16::from(n % 4)));
                    p.maximum_qos = c.maximum_qos.map(|q| qos(q % 2));
                    p.retain_available = c.retain_available;
                    p.maximum_packet_size = c
                        .maximum_packet_size
                        .and_then(|n| NonZeroU32::new(u32::from(n) * 4));
                    p.assigned_client_identifier = c.assigned.then(|| string("assigned"));
                    p.topic_alias_maximum = c.topic_alias_maximum.map(|n| u16::from(n % 4));
                    p.server_keep_alive = c.keep_alive.map(|k| u16::from(k % 8));
                    p.session_expiry_interval = c.session_expiry.map(interval);
                    if c.auth_method {
                        p.authentication_method = Some(string(AUTH_METHOD));
                    }
                }
                Packet::ConnAck(Box::new(ack))
            }
            ToClient::Publish(p) => Packet::Publish(p.build(v)),
            ToClient::Ack(a) => a.build(v),
            ToClient::SubAck {
                id,
                reasons,
                unsubscribe,
            } => {
                let s = SubAck {
                    id: packet_id(*id),
                    props: Default::default(),
                    reasons: reasons.iter().take(4).map(|&r| reason(r)).collect(),
                };
                if *unsubscribe {
                    Packet::UnsubAck(s)
                } else {
                    Packet::SubAck(s)
                }
            }
            ToClient::PingResp => Packet::PingResp,
            ToClient::Disconnect { reason: r } => Packet::Disconnect(Disconnect::new(reason(*r))),
            ToClient::Auth { reason: r, method } => auth(*r, *method),
            ToClient::Any(seed) => return any(seed, v),
            ToClient::Raw(bytes) => return bytes.clone(),
        };
        encode(&p, v)
    }
}

fn options(o: u8, v: ProtocolVersion) -> SubscriptionOptions {
    let mut opts = SubscriptionOptions::new(qos(o));
    if v.is_v5() {
        opts.no_local = o & 4 != 0;
        opts.retain_as_published = o & 8 != 0;
        opts.retain_handling = match (o >> 4) % 3 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            _ => RetainHandling::DoNotSend,
        };
    }
    opts
}

fn auth(r: u8, method: bool) -> Packet {
    let mut a = Auth {
        reason: reason(r),
        props: Default::default(),
    };
    if method {
        a.props.authentication_method = Some(string(AUTH_METHOD));
    }
    Packet::Auth(a)
}

/// A valid packet of any kind for `v`, drawn from `seed`.
fn any(seed: &[u8], v: ProtocolVersion) -> Vec<u8> {
    let mut u = Unstructured::new(seed);
    match mqtt_codec::arbitrary::packet(&mut u, v) {
        Ok(p) => encode(&p, v),
        Err(_) => Vec::new(),
    }
}

/// `p` on the wire in `v` (a CONNECT in its own), or nothing when the
/// choices make a packet that does not encode (a failure reason under 3.1.1).
pub(crate) fn encode(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let v = match p {
        Packet::Connect(c) => c.protocol,
        _ => v,
    };
    let mut out = Vec::new();
    match p.encode(v, &mut out) {
        Ok(_) => out,
        Err(_) => Vec::new(),
    }
}

/// `now` moved on by a fuzzer-chosen step.
pub(crate) fn advance(now: Instant, step: u16) -> Instant {
    Instant::from_millis(now.as_millis().saturating_add(step_millis(step)))
}
