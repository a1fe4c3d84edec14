//! The server side of a connection: what a broker runs for each client.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;
use mqtt_codec::{
    AckProps, AuthProps, ConnAck, ConnAckProps, Connect, DecodeError, Decoder, DisconnectProps,
    Packet, PacketId, PacketType, ProtocolVersion, QoS, ReasonCode, Str, StrError, SubAck,
    SubAckProps, Subscribe, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName,
    Unsubscribe, Will, MAX_PACKET_SIZE,
};

use crate::config::ServerConfig;
use crate::connection::{Connection, Role, State};
use crate::error::{Close, DeliverError, UsageError, Violation};
use crate::message::{DeliveryOptions, Message, MessageProps};
use crate::session::Session;
use crate::time::Instant;
use crate::tx::Tx;

/// The server role: the broker's end of a client connection.
#[derive(Debug)]
pub enum Server {}

/// What the server side reports to the application (the broker).
// Not `#[non_exhaustive]`: every match on it, in this workspace and in
// applications, must handle each event, so a new one cannot be ignored
// silently; adding one is a breaking change, said in the CHANGELOG.
#[derive(Debug)]
pub enum ServerEvent {
    /// A client asks to connect: answer with [`Connection::accept`] or
    /// [`Connection::reject`]. Nothing else the client sent is processed until then.
    Connect(Box<Connect>),
    /// A client published a message (topic aliases resolved, QoS 2 duplicates
    /// filtered). For QoS 1/2 answer with [`Connection::ack`].
    Publish {
        /// The message.
        msg: Message,
        /// Its packet identifier (QoS 1/2).
        id: Option<PacketId>,
    },
    /// A client subscribes: answer with [`Connection::suback`].
    Subscribe {
        /// Packet identifier to answer.
        id: PacketId,
        /// The 5.0 subscription identifier for these subscriptions.
        subscription_identifier: Option<SubscriptionId>,
        /// The filters and their options.
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
    },
    /// A client unsubscribes: answer with [`Connection::unsuback`].
    Unsubscribe {
        /// Packet identifier to answer.
        id: PacketId,
        /// The filters to remove.
        filters: Vec<TopicFilter>,
    },
    /// A step of enhanced authentication (5.0): answer with [`Connection::auth`],
    /// or accept/reject while connecting.
    Auth {
        /// Continue authentication (0x18) or re-authenticate (0x19).
        reason: ReasonCode,
        /// Method, data and diagnostics.
        props: AuthProps,
    },
    /// The connection ended; always the last event.
    Closed(Close),
}

#[doc(hidden)]
#[derive(Debug)]
pub struct ServerState {
    /// What the connection needs of its [`ServerConfig`] once it exists (the
    /// limits live in the connection; the CONNECT timeout became a deadline).
    maximum_qos: QoS,
    retain_available: bool,
    max_keep_alive: Option<u16>,
    allow_control_characters: bool,
    connect_deadline: Option<Instant>,
    /// See [`ServerConfig::partial_packet_timeout`].
    partial_packet_timeout: Duration,
    /// Bytes of a packet not yet whole that the decoder holds, and when
    /// that number last grew (see [`Connection::handle_partial`]).
    partial: Option<(usize, Instant)>,
    client_id: Str,
    clean_start: bool,
    requested_keep_alive: u16,
    session_expiry_interval: u32,
    /// Boxed: most clients have none, and a `Will` is 216 bytes.
    will: Option<Box<Will>>,
    /// Boxed: enhanced authentication (5.0) is rare.
    auth_method: Option<Box<Str>>,
    /// SUBSCRIBE (`true`) and UNSUBSCRIBE (`false`) packets handed to the
    /// application and not yet answered.
    pending: BTreeSet<(PacketId, bool)>,
}

impl ServerState {
    /// Whether a SUBSCRIBE or UNSUBSCRIBE under `id` awaits its answer.
    fn request_pending(&self, id: PacketId) -> bool {
        self.pending.contains(&(id, true)) || self.pending.contains(&(id, false))
    }
}

impl Role for Server {
    type Event = ServerEvent;
    type State = ServerState;
    const IS_CLIENT: bool = false;

    fn on_detach(_: &mut Connection<Self>) {}

    fn handle_packet(c: &mut Connection<Self>, now: Instant, p: Packet) {
        if !c.role.allow_control_characters && has_control_characters(&p) {
            let e = DecodeError::InvalidString(StrError::ControlCharacter);
            return c.violation(now, Violation::Decode(e));
        }
        match (c.state, p) {
            (State::AwaitingConnect, Packet::Connect(connect)) => c.on_connect(connect),
            (_, Packet::Connect(_)) => {
                c.violation(now, Violation::UnexpectedPacket(PacketType::Connect))
            }
            (State::Connected, Packet::Publish(p)) => {
                let v5 = c.version.is_v5();
                if v5 && p.qos.qos() > c.role.maximum_qos {
                    return c.violation(now, Violation::QosNotSupported(p.qos.qos()));
                }
                if v5 && p.retain && !c.role.retain_available {
                    return c.violation(now, Violation::RetainNotSupported);
                }
                if !p.props.subscription_identifiers.is_empty() {
                    // Only a server sets them, towards its subscribers.
                    return c.violation(now, Violation::SubscriptionIdentifierFromClient);
                }
                c.on_publish(now, p);
            }
            // A request's identifier is not used again until it is
            // answered [MQTT-2.2.1-3]: a second request under it could not
            // be answered on its own (its answer would name the first).
            (
                State::Connected,
                Packet::Subscribe(Subscribe { id, .. })
                | Packet::Unsubscribe(Unsubscribe { id, .. }),
            ) if c.role.request_pending(id) => c.violation(now, Violation::PacketIdInUse(id)),
            (State::Connected, Packet::Subscribe(s)) => {
                c.role.pending.insert((s.id, true));
                c.events.push_back(ServerEvent::Subscribe {
                    id: s.id,
                    subscription_identifier: s.props.subscription_identifier,
                    filters: s.filters,
                });
            }
            (State::Connected, Packet::Unsubscribe(u)) => {
                c.role.pending.insert((u.id, false));
                c.events.push_back(ServerEvent::Unsubscribe {
                    id: u.id,
                    filters: u.filters,
                });
            }
            (State::Connected, Packet::PingReq) => c.tx.push_back(Packet::PingResp),
            (State::Connected, Packet::Disconnect(d)) => {
                let requested = d.props.session_expiry_interval;
                if let Some(interval) = requested {
                    if c.role.session_expiry_interval == 0 && interval != 0 {
                        return c.violation(now, Violation::SessionExpiryAfterZero);
                    }
                    c.role.session_expiry_interval = interval;
                }
                // The will is discarded on a normal disconnection only [MQTT-3.14.4-3].
                let will_due = d.reason != ReasonCode::NORMAL_DISCONNECTION;
                c.finish(now, Close::by_peer(d.reason, d.props), will_due);
            }
            (State::Connected | State::AwaitingAccept, Packet::Auth(a)) => {
                // Only after a CONNECT with a method, and always the same one
                // [MQTT-4.12.0-5] [MQTT-4.12.0-7].
                if c.role.auth_method.is_none()
                    || a.props.authentication_method.as_ref() != c.role.auth_method.as_deref()
                {
                    return c.violation(now, Violation::BadAuthenticationMethod);
                }
                c.events.push_back(ServerEvent::Auth {
                    reason: a.reason,
                    props: a.props,
                });
            }
            (
                State::Connected,
                p
                @ (Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_)),
            ) => c.handle_common(now, p),
            (_, p) => c.violation(now, Violation::UnexpectedPacket(p.packet_type())),
        }
    }

    fn handle_role_timeout(c: &mut Connection<Self>, now: Instant) {
        if let Some(deadline) = c.role.connect_deadline {
            if now >= deadline {
                c.role.connect_deadline = None;
                if c.state == State::AwaitingAccept {
                    // The application never answered: the client hears "busy".
                    c.reject(now, ReasonCode::SERVER_BUSY);
                } else {
                    c.finish(now, Close::local(ReasonCode::MAXIMUM_CONNECT_TIME), false);
                }
                return;
            }
        }
        let silent = |deadline: Option<Instant>| deadline.is_some_and(|d| now >= d);
        // [MQTT-3.1.2-24]: silent for one and a half keep alive periods. A
        // packet left half sent with no progress is the same silence, and
        // ends the same way even with keep alive 0 (0x8D: no whole packet
        // came within the time the server allows).
        if silent(keep_alive_deadline(c)) || silent(partial_packet_deadline(c)) {
            if c.version.is_v5() {
                c.queue_disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT, DisconnectProps::default());
            }
            c.finish(now, Close::local(ReasonCode::KEEP_ALIVE_TIMEOUT), true);
        }
    }

    fn role_timeout(c: &Connection<Self>) -> Option<Instant> {
        c.role.connect_deadline.or_else(|| {
            match (keep_alive_deadline(c), partial_packet_deadline(c)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })
    }

    fn on_message(
        c: &mut Connection<Self>,
        msg: Message,
        id: Option<PacketId>,
        _subscription_identifiers: Vec<SubscriptionId>,
    ) {
        c.events.push_back(ServerEvent::Publish { msg, id });
    }

    fn on_outbound_complete(_: &mut Connection<Self>, _: PacketId, _: ReasonCode, _: AckProps) {}

    fn on_queued_expired(_: &mut Connection<Self>, _: PacketId) {}

    fn on_partial(c: &mut Connection<Self>, now: Instant, buffered: usize) {
        c.handle_partial(now, buffered);
    }

    fn session_expiry_is_zero(c: &Connection<Self>) -> bool {
        c.role.session_expiry_interval == 0
    }

    fn closed_event(
        c: &mut Connection<Self>,
        now: Instant,
        mut close: Close,
        will_due: bool,
    ) -> ServerEvent {
        c.role.connect_deadline = None;
        if will_due {
            close.will = c.role.will.take().map(|w| will_message(*w, now));
        }
        ServerEvent::Closed(close)
    }
}

/// The will as a message to publish after its delay, with its expiry counted
/// from the moment it is published (section 3.1.3.2).
fn will_message(w: Will, now: Instant) -> (Message, Duration) {
    let delay = w.props.will_delay_interval.unwrap_or(0);
    let published_at = now.plus_secs(u64::from(delay));
    let msg = Message {
        topic: w.topic,
        payload: w.payload,
        qos: w.qos,
        retain: w.retain,
        props: MessageProps {
            payload_format_indicator: w.props.payload_format_indicator,
            expires_at: w
                .props
                .message_expiry_interval
                .map(|s| published_at.plus_secs(u64::from(s))),
            content_type: w.props.content_type,
            response_topic: w.props.response_topic,
            correlation_data: w.props.correlation_data,
            user_properties: w.props.user_properties,
        },
    };
    (msg, Duration::from_secs(u64::from(delay)))
}

/// A copy of `s` in memory of its own.
fn own_str(s: &Str) -> Str {
    Str::try_from(s.as_str()).unwrap_or_default()
}

/// A copy of `t` in memory of its own.
fn own_topic(t: &TopicName) -> TopicName {
    TopicName::try_from(t.as_str()).unwrap_or_else(|_| t.clone())
}

/// A copy of a will in memory of its own (it may wait for a long time).
fn own_will(w: &Will) -> Will {
    let mut props = w.props.clone();
    props.content_type = w.props.content_type.as_ref().map(own_str);
    props.response_topic = w.props.response_topic.as_ref().map(own_topic);
    props.correlation_data = w
        .props
        .correlation_data
        .as_ref()
        .map(|b| Bytes::copy_from_slice(b));
    props.user_properties = w
        .props
        .user_properties
        .iter()
        .map(|(k, v)| (own_str(k), own_str(v)))
        .collect();
    Will {
        topic: own_topic(&w.topic),
        payload: Bytes::copy_from_slice(&w.payload),
        qos: w.qos,
        retain: w.retain,
        props,
    }
}

/// Whether a client's packet carries a control character in a client
/// identifier, user name, will topic, topic name or topic filter: the
/// strings section 1.5.4 lets a receiver treat as malformed when they do.
fn has_control_characters(p: &Packet) -> bool {
    let has = |b: &[u8]| mqtt_codec::has_control_characters(b);
    match p {
        Packet::Publish(p) => p.topic.as_ref().is_some_and(|t| has(t.as_bytes())),
        Packet::Subscribe(s) => s.filters.iter().any(|(f, _)| has(f.as_bytes())),
        Packet::Unsubscribe(u) => u.filters.iter().any(|f| has(f.as_bytes())),
        Packet::Connect(c) => {
            has(c.client_id.as_bytes())
                || c.username.as_ref().is_some_and(|u| has(u.as_bytes()))
                || c.will.as_ref().is_some_and(|w| has(w.topic.as_bytes()))
        }
        _ => false,
    }
}

/// 1.5 times the keep alive after the last packet received [MQTT-3.1.2-24].
fn keep_alive_deadline(c: &Connection<Server>) -> Option<Instant> {
    if c.state != State::Connected || c.keep_alive == 0 {
        return None;
    }
    Some(Instant::from_millis(
        c.last_rx.as_millis() + u64::from(c.keep_alive) * 1500,
    ))
}

/// When a packet left partly received, without progress, ends a connected
/// client's connection with keep alive 0. Before CONNECT is accepted the
/// CONNECT deadline bounds it already, and with a keep alive the keep alive
/// does (bytes of a packet that never completes do not restart it): a
/// client within one and a half keep alive periods [MQTT-3.1.2-24] is not
/// dropped for a slow link.
fn partial_packet_deadline(c: &Connection<Server>) -> Option<Instant> {
    if c.state != State::Connected || c.keep_alive != 0 {
        return None;
    }
    let (_, since) = c.role.partial?;
    Some(since.saturating_add(c.role.partial_packet_timeout))
}

impl Connection<Server> {
    /// The adapter's decoder holds `buffered` bytes of a packet that is not
    /// whole yet (0: none), after a read: a packet that makes no progress
    /// for [`ServerConfig::partial_packet_timeout`] ends the connection.
    /// [`Connection::handle_read`] reports this itself; an adapter that
    /// decodes on its own calls it after each read.
    pub fn handle_partial(&mut self, now: Instant, buffered: usize) {
        self.role.partial = match self.role.partial {
            _ if buffered == 0 => None,
            // The same bytes as before: no progress, the deadline stands.
            Some((before, since)) if before == buffered => Some((before, since)),
            _ => Some((buffered, now)),
        };
    }

    /// A connection for a transport the adapter just accepted; the CONNECT
    /// deadline starts now.
    pub fn new(config: ServerConfig, now: Instant) -> Self {
        let limits = config.limits;
        let deadline = now.saturating_add(config.connect_timeout);
        Connection::with_state(
            ProtocolVersion::V311,
            Decoder::new(),
            State::AwaitingConnect,
            limits,
            now,
            ServerState {
                maximum_qos: config.maximum_qos,
                retain_available: config.retain_available,
                max_keep_alive: config.max_keep_alive,
                allow_control_characters: config.allow_control_characters,
                connect_deadline: Some(deadline),
                partial_packet_timeout: config.partial_packet_timeout,
                partial: None,
                client_id: Str::default(),
                clean_start: true,
                requested_keep_alive: 0,
                session_expiry_interval: 0,
                will: None,
                auth_method: None,
                pending: BTreeSet::new(),
            },
        )
    }

    fn on_connect(&mut self, connect: Box<Connect>) {
        self.version = connect.protocol;
        self.decoder.set_version(connect.protocol);
        self.state = State::AwaitingAccept;
        let r = &mut self.role;
        // What the connection keeps is copied out of the read buffer, so a
        // long-lived connection does not pin the buffer its CONNECT came in.
        r.client_id = own_str(&connect.client_id);
        r.clean_start = connect.clean_start;
        r.requested_keep_alive = connect.keep_alive;
        r.will = connect.will.as_ref().map(|w| Box::new(own_will(w)));
        r.auth_method = connect
            .props
            .authentication_method
            .as_ref()
            .map(|m| Box::new(own_str(m)));
        // 3.1.1 has no session expiry: a session lasts until a clean start.
        r.session_expiry_interval = if connect.protocol.is_v5() {
            connect.props.session_expiry_interval.unwrap_or(0)
        } else if connect.clean_start {
            0
        } else {
            u32::MAX
        };
        self.peer.receive_maximum = connect.props.receive_maximum.map_or(u16::MAX, |n| n.get());
        self.peer.max_packet_size = connect
            .props
            .maximum_packet_size
            .map_or(MAX_PACKET_SIZE, |n| n.get());
        self.peer.topic_alias_maximum = connect.props.topic_alias_maximum.unwrap_or(0);
        self.peer.problem_information = connect.props.request_problem_information.unwrap_or(true);
        self.events.push_back(ServerEvent::Connect(connect));
    }

    /// The client identifier from CONNECT (empty until it arrives, or if the
    /// client sent an empty one and none was assigned).
    pub fn client_id(&self) -> &Str {
        &self.role.client_id
    }

    /// Whether the client asked for a clean start.
    pub fn clean_start(&self) -> bool {
        self.role.clean_start
    }

    /// The will of the connection, if it has one, as it would be published
    /// if the connection ended now: the message (its expiry counted from
    /// the end of the delay) and the Will Delay Interval.
    pub fn will_message(&self, now: Instant) -> Option<(Message, Duration)> {
        self.role
            .will
            .as_ref()
            .map(|w| will_message((**w).clone(), now))
    }

    /// The session expiry interval in force, in seconds (`u32::MAX`: never;
    /// 3.1.1 sessions without clean session never expire on their own).
    pub fn session_expiry_interval(&self) -> u32 {
        self.role.session_expiry_interval
    }

    /// Accepts the CONNECT: sends CONNACK, resumes `session` if the client did
    /// not ask for a clean start (Session Present is set then), resends what it
    /// had in flight, and processes what the client sent meanwhile.
    ///
    /// The session's limits are announced through `ack` (5.0) unless the
    /// application set them there itself.
    pub fn accept(
        &mut self,
        now: Instant,
        session: Option<Session>,
        mut ack: ConnAckProps,
    ) -> Result<(), UsageError> {
        if self.state != State::AwaitingAccept {
            return Err(UsageError::WrongState);
        }
        let resumed = if self.role.clean_start { None } else { session };
        let session_present = resumed.is_some();
        let v5 = self.version.is_v5();
        let cfg = &self.role;
        let mut keep_alive = self.role.requested_keep_alive;
        if v5 {
            let l = &self.limits;
            if ack.receive_maximum.is_none() && l.receive_maximum < u16::MAX {
                ack.receive_maximum = core::num::NonZeroU16::new(l.receive_maximum);
            }
            if ack.maximum_packet_size.is_none() && l.max_packet_size < MAX_PACKET_SIZE {
                ack.maximum_packet_size = core::num::NonZeroU32::new(l.max_packet_size);
            }
            if ack.topic_alias_maximum.is_none() && l.topic_alias_maximum > 0 {
                ack.topic_alias_maximum = Some(l.topic_alias_maximum);
            }
            if ack.maximum_qos.is_none() && cfg.maximum_qos < QoS::ExactlyOnce {
                ack.maximum_qos = Some(cfg.maximum_qos);
            }
            if ack.retain_available.is_none() && !cfg.retain_available {
                ack.retain_available = Some(false);
            }
            if let Some(max) = cfg.max_keep_alive {
                if ack.server_keep_alive.is_none() && (keep_alive == 0 || keep_alive > max) {
                    ack.server_keep_alive = Some(max);
                }
            }
            if let Some(ska) = ack.server_keep_alive {
                keep_alive = ska;
            }
            if let Some(id) = &ack.assigned_client_identifier {
                self.role.client_id = id.clone();
            }
            if let Some(interval) = ack.session_expiry_interval {
                self.role.session_expiry_interval = interval;
            }
        } else {
            ack = ConnAckProps::default();
        }
        let mut connack = ConnAck::new(session_present, ReasonCode::SUCCESS);
        connack.props = ack;
        self.tx.push_back(Packet::ConnAck(Box::new(connack)));
        self.state = State::Connected;
        self.role.connect_deadline = None;
        self.keep_alive = keep_alive;
        self.last_rx = now;
        let max_queued = self.limits.max_queued;
        let mut session = resumed.unwrap_or_else(|| Session::new(max_queued));
        session.set_max_queued(max_queued);
        session.set_max_queued_bytes(self.limits.max_queued_bytes);
        self.session = Some(session);
        if !self.connack_fits() {
            // Nothing of the session is sent or taken in: it stays as a
            // close leaves it.
            self.cannot_accept(now);
            return Ok(());
        }
        self.resume(now);
        self.release_before_connack(now);
        Ok(())
    }

    /// Whether the CONNACK just queued fits the client's Maximum Packet Size,
    /// once without its diagnostics if need be (they go first, see
    /// `shed_front`).
    fn connack_fits(&self) -> bool {
        let max = self.peer.max_packet_size as usize;
        let Some(Tx::Packet(p)) = self.tx.back() else {
            return true;
        };
        let Packet::ConnAck(ack) = &**p else {
            return true;
        };
        if p.encoded_len(self.version).is_ok_and(|n| n <= max) {
            return true;
        }
        let mut bare = ack.clone();
        bare.props.reason_string = None;
        bare.props.user_properties.clear();
        Packet::ConnAck(bare)
            .encoded_len(self.version)
            .is_ok_and(|n| n <= max)
    }

    /// Refuses the CONNECT with `reason` and closes: a 5.0 client gets CONNACK
    /// with the reason; a 3.1/3.1.1 client gets the return code that says the
    /// same, or no CONNACK where there is none [MQTT-3.2.2-6].
    pub fn reject(&mut self, now: Instant, reason: ReasonCode) {
        self.reject_with(now, reason, ConnAckProps::default());
    }

    /// Like [`Connection::reject`], with 5.0 CONNACK properties (a reason
    /// string, user properties, a server reference for 0x9C/0x9D); not sent
    /// under 3.1.1.
    pub fn reject_with(&mut self, now: Instant, reason: ReasonCode, props: ConnAckProps) {
        if self.state != State::AwaitingAccept {
            return;
        }
        let reason = if !reason.is_error() {
            ReasonCode::UNSPECIFIED_ERROR
        } else {
            reason
        };
        let send = if self.version.is_v5() {
            Some(if reason.valid_for(PacketType::ConnAck) {
                reason
            } else {
                ReasonCode::UNSPECIFIED_ERROR
            })
        } else {
            reason.to_v311_connack().map(|_| reason)
        };
        if let Some(r) = send {
            let mut ack = ConnAck::new(false, r);
            if self.version.is_v5() {
                ack.props = props;
            }
            self.tx.push_back(Packet::ConnAck(Box::new(ack)));
        }
        self.before_connack = None;
        self.finish(now, Close::local(reason), false);
    }

    /// Answers a QoS 1 publish with PUBACK, or a QoS 2 publish with PUBREC,
    /// carrying `reason` under 5.0 (0x10 No matching subscribers, 0x87 Not
    /// authorized, …). Under 3.1.1 there is no negative acknowledgement: the
    /// acknowledgement is sent as success and the message simply not forwarded.
    pub fn ack(&mut self, id: PacketId, reason: ReasonCode) -> Result<(), UsageError> {
        self.answer_publish(id, reason, AckProps::default())
    }

    /// Like [`Connection::ack`], with 5.0 properties (a reason string, user
    /// properties). They are left out under 3.1.1, when the client asked for
    /// no problem information [MQTT-3.1.2-29], and when they would make the
    /// packet exceed the client's maximum packet size [MQTT-3.4.2-2].
    pub fn ack_with(
        &mut self,
        id: PacketId,
        reason: ReasonCode,
        props: AckProps,
    ) -> Result<(), UsageError> {
        self.answer_publish(id, reason, props)
    }

    /// Answers a SUBSCRIBE: one result per filter, the granted QoS or a
    /// failure. Under 3.1.1 any failure is sent as 0x80.
    pub fn suback(&mut self, id: PacketId, results: &[ReasonCode]) -> Result<(), UsageError> {
        self.suback_with(id, results, SubAckProps::default())
    }

    /// Like [`Connection::suback`], with 5.0 properties (reason string, user
    /// properties), left out where [`Connection::ack_with`] leaves them out.
    pub fn suback_with(
        &mut self,
        id: PacketId,
        results: &[ReasonCode],
        props: SubAckProps,
    ) -> Result<(), UsageError> {
        self.push_suback(
            (id, true),
            Packet::SubAck(SubAck {
                id,
                props,
                reasons: results.to_vec(),
            }),
        )
    }

    /// Answers an UNSUBSCRIBE: one result per filter under 5.0 (ignored under 3.1.1).
    pub fn unsuback(&mut self, id: PacketId, results: &[ReasonCode]) -> Result<(), UsageError> {
        self.unsuback_with(id, results, SubAckProps::default())
    }

    /// Like [`Connection::unsuback`], with 5.0 properties (reason string,
    /// user properties), left out where [`Connection::ack_with`] leaves them out.
    pub fn unsuback_with(
        &mut self,
        id: PacketId,
        results: &[ReasonCode],
        props: SubAckProps,
    ) -> Result<(), UsageError> {
        self.push_suback(
            (id, false),
            Packet::UnsubAck(SubAck {
                id,
                props,
                reasons: results.to_vec(),
            }),
        )
    }

    /// Sends the answer to the request `pending`. Nothing goes out once
    /// the connection has closed (a DISCONNECT may already be queued); a
    /// request whose answer cannot be encoded stays unanswered, so it can
    /// be answered again.
    fn push_suback(&mut self, pending: (PacketId, bool), p: Packet) -> Result<(), UsageError> {
        if !self.role.pending.contains(&pending) {
            return Err(UsageError::UnknownPacketId(pending.0));
        }
        if self.is_ending() {
            return Err(UsageError::NotConnected);
        }
        let mut p = p;
        if self.version == ProtocolVersion::V31 {
            // 3.1 has no SUBACK failure code; a refused subscription is
            // reported as granted QoS 0 and simply receives nothing.
            if let Packet::SubAck(s) = &mut p {
                for r in &mut s.reasons {
                    if r.is_error() {
                        *r = ReasonCode::GRANTED_QOS_0;
                    }
                }
            }
        }
        p.encoded_len(self.version).map_err(UsageError::Encode)?;
        self.role.pending.remove(&pending);
        self.tx.push_back(p);
        Ok(())
    }

    /// Sends a message to this client: at once when the in-flight window has
    /// room, otherwise queued in the session (bounded). Returns the packet
    /// identifier for QoS 1/2. A message going to several subscribers can be
    /// shared as an `Arc`: each delivery then holds a reference, not a copy.
    pub fn deliver(
        &mut self,
        now: Instant,
        msg: impl Into<alloc::sync::Arc<Message>>,
        opts: DeliveryOptions,
    ) -> Result<Option<PacketId>, DeliverError> {
        if self.state != State::Connected {
            return Err(DeliverError::Closed);
        }
        self.submit(now, msg.into(), opts)
    }

    /// Sends an AUTH step of enhanced authentication (5.0).
    pub fn auth(
        &mut self,
        now: Instant,
        reason: ReasonCode,
        props: AuthProps,
    ) -> Result<(), UsageError> {
        let _ = now;
        self.send_auth(State::AwaitingAccept, reason, props)
    }
}
