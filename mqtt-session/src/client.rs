//! The client side of a connection: what every client adapter runs.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use mqtt_codec::{
    AckProps, AuthProps, ConnAck, Connect, Decoder, DisconnectProps, Packet, PacketId, PacketType,
    ProtocolVersion, QoS, ReasonCode, Str, SubAck, SubAckProps, Subscribe, SubscriptionId,
    SubscriptionOptions, TopicFilter, Unsubscribe, MAX_PACKET_SIZE,
};

use crate::config::{ClientConfig, ServerCaps};
use crate::connection::{Connection, Role, State};
use crate::error::{Close, UsageError, Violation};
use crate::message::{DeliveryOptions, Message};
use crate::session::{Inflight, Session};
use crate::time::Instant;
use crate::tx::Tx;

/// The client role.
#[derive(Debug)]
pub enum Client {}

/// What the client side reports to the application.
// Not `#[non_exhaustive]`: every match on it, in this workspace and in
// applications, must handle each event, so a new one cannot be ignored
// silently; adding one is a breaking change, said in the CHANGELOG.
#[derive(Debug)]
pub enum ClientEvent {
    /// CONNACK accepted the connection.
    Connected {
        /// Whether the server resumed the session (under 3.1, which has no
        /// such flag: whether the client asked to keep it).
        session_present: bool,
        /// The limits the server announced.
        caps: ServerCaps,
        /// CONNACK's Authentication Data (5.0 enhanced authentication:
        /// the method's last word, e.g. SCRAM's server-final message).
        authentication_data: Option<Bytes>,
    },
    /// A message arrived: already acknowledged to the server, or, with
    /// `ClientConfig::manual_acks`, waiting for [`Connection::ack`] (QoS 1/2).
    Message {
        /// The message.
        msg: Message,
        /// Identifiers of the subscriptions it matched (5.0).
        subscription_identifiers: Vec<SubscriptionId>,
        /// The packet identifier it arrived with (QoS 1 and 2), for logs
        /// and tools that show it, and for [`Connection::ack`] under manual
        /// acknowledgement; otherwise the flow is already answered.
        packet_id: Option<PacketId>,
    },
    /// A QoS 1/2 publish completed: PUBACK (QoS 1) or PUBCOMP (QoS 2) arrived,
    /// or a failure PUBREC ended it.
    Published {
        /// The publish's packet identifier.
        id: PacketId,
        /// The server's reason code (always success under 3.1.1).
        reason: ReasonCode,
        /// 5.0 diagnostics of the acknowledgement: reason string and user
        /// properties (empty under 3.1.1).
        props: AckProps,
    },
    /// A queued QoS 1/2 publish expired (its Message Expiry Interval passed)
    /// before it could be sent, and was dropped [MQTT-3.3.2-5]: it never
    /// completes. Its identifier is free again.
    Expired {
        /// The identifier [`Connection::publish`] returned for it.
        id: PacketId,
    },
    /// SUBACK: one result per filter, the granted QoS or a failure.
    Subscribed {
        /// The SUBSCRIBE's packet identifier.
        id: PacketId,
        /// Results in filter order.
        results: Vec<ReasonCode>,
        /// 5.0 diagnostics: reason string and user properties.
        props: SubAckProps,
    },
    /// UNSUBACK: one result per filter under 5.0, none under 3.1.1.
    Unsubscribed {
        /// The UNSUBSCRIBE's packet identifier.
        id: PacketId,
        /// Results in filter order.
        results: Vec<ReasonCode>,
        /// 5.0 diagnostics: reason string and user properties.
        props: SubAckProps,
    },
    /// A step of enhanced authentication from the server (5.0); answer with
    /// [`Connection::auth`].
    Auth {
        /// Continue authentication, re-authenticate or success.
        reason: ReasonCode,
        /// Method, data and diagnostics.
        props: AuthProps,
    },
    /// The connection ended; always the last event.
    Closed(Close),
}

#[doc(hidden)]
#[derive(Debug)]
pub struct ClientState {
    clean_start: bool,
    connack_deadline: Option<Instant>,
    ping_timeout: Duration,
    ping_sent: Option<Instant>,
    configured_keep_alive: u16,
    /// The Session Expiry Interval sent in CONNECT: in force unless CONNACK
    /// names another (section 3.2.2.3.2).
    configured_session_expiry: u32,
    /// SUBSCRIBE (false) and UNSUBSCRIBE (true) waiting for their answer.
    pending: BTreeMap<PacketId, bool>,
    caps: Option<ServerCaps>,
    /// The enhanced authentication method of the CONNECT, if any: every AUTH
    /// and the successful CONNACK must name the same one [MQTT-4.12.0-5].
    auth_method: Option<Str>,
    /// `ClientConfig::manual_acks`.
    manual_acks: bool,
    /// Manual acknowledgement: the received QoS 1/2 messages not yet
    /// answered, in the order they arrived, each marked once the
    /// application acknowledged it; answers leave from the front only, so
    /// they keep that order [MQTT-4.6.0-2] [MQTT-4.6.0-3]. Bounded by the
    /// Receive Maximum check of `on_publish`.
    unacked: VecDeque<(PacketId, bool)>,
}

impl Role for Client {
    type Event = ClientEvent;
    type State = ClientState;
    const IS_CLIENT: bool = true;

    fn on_detach(c: &mut Connection<Self>) {
        // SUBSCRIBE/UNSUBSCRIBE answers never survive the connection.
        let pending: Vec<PacketId> = c.role.pending.keys().copied().collect();
        for id in pending {
            c.release_id(id);
        }
        c.role.pending.clear();
    }

    fn handle_packet(c: &mut Connection<Self>, now: Instant, p: Packet) {
        match (c.state, p) {
            // A CONNACK to a CONNECT not written yet answers nothing
            // [MQTT-3.2.0-1]; its limits would apply to that CONNECT.
            (State::AwaitingConnAck, Packet::ConnAck(_)) if c.connect_unsent() => {
                c.violation(now, Violation::UnexpectedPacket(PacketType::ConnAck))
            }
            (State::AwaitingConnAck, Packet::ConnAck(ack)) => c.on_connack(now, *ack),
            (State::AwaitingConnAck | State::Connected, Packet::Auth(a))
                if c.role.auth_method.is_some() =>
            {
                if a.props.authentication_method != c.role.auth_method {
                    return c.violation(now, Violation::BadAuthenticationMethod);
                }
                c.events.push_back(ClientEvent::Auth {
                    reason: a.reason,
                    props: a.props,
                })
            }
            (State::Connected, Packet::Publish(p)) => c.on_publish(now, p),
            (State::Connected, Packet::SubAck(s)) => c.on_suback(now, s, false),
            (State::Connected, Packet::UnsubAck(s)) => c.on_suback(now, s, true),
            (State::Connected, Packet::PingResp) => c.role.ping_sent = None,
            (State::Connected, Packet::Disconnect(d)) if c.version.is_v5() => {
                c.finish(now, Close::by_peer(d.reason, d.props), false)
            }
            (
                State::Connected,
                p
                @ (Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_)),
            ) => c.handle_common(now, p),
            // The server's first packet is CONNACK [MQTT-3.2.0-1]; CONNECT,
            // SUBSCRIBE, UNSUBSCRIBE and PINGREQ never go to a client.
            (_, p) => c.violation(now, Violation::UnexpectedPacket(p.packet_type())),
        }
    }

    fn handle_role_timeout(c: &mut Connection<Self>, now: Instant) {
        if c.role.connack_deadline.is_some_and(|d| now >= d) {
            c.role.connack_deadline = None;
            c.tx.clear();
            return c.finish(now, Close::local(ReasonCode::UNSPECIFIED_ERROR), false);
        }
        if let Some(sent) = c.role.ping_sent {
            if now >= sent.saturating_add(c.role.ping_timeout) {
                // No PINGRESP in time: the server or the path is gone.
                c.tx.clear();
                return c.finish(now, Close::local(ReasonCode::KEEP_ALIVE_TIMEOUT), false);
            }
        }
        if ping_due(c).is_some_and(|d| now >= d) {
            c.tx.push_back(Packet::PingReq);
            c.role.ping_sent = Some(now);
        }
    }

    fn role_timeout(c: &Connection<Self>) -> Option<Instant> {
        let ping_timeout = c
            .role
            .ping_sent
            .map(|s| s.saturating_add(c.role.ping_timeout));
        [c.role.connack_deadline, ping_timeout, ping_due(c)]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_message(
        c: &mut Connection<Self>,
        msg: Message,
        id: Option<PacketId>,
        subscription_identifiers: Vec<SubscriptionId>,
    ) {
        c.events.push_back(ClientEvent::Message {
            msg,
            subscription_identifiers,
            packet_id: id,
        });
        if let Some(id) = id {
            if c.role.manual_acks {
                // A resend of a message still unanswered (3.1.1 servers may
                // resend on the same connection) keeps its one place.
                if !c.role.unacked.iter().any(|(i, _)| *i == id) {
                    c.role.unacked.push_back((id, false));
                }
            } else {
                // Invariant: `on_publish` recorded `id` as awaiting an answer.
                let _ = c.answer_publish(id, ReasonCode::SUCCESS, AckProps::default());
            }
        }
    }

    fn manual_acks(c: &Connection<Self>) -> bool {
        c.role.manual_acks
    }

    fn on_outbound_complete(
        c: &mut Connection<Self>,
        id: PacketId,
        reason: ReasonCode,
        props: AckProps,
    ) {
        c.events
            .push_back(ClientEvent::Published { id, reason, props });
    }

    // A client trusts its server's stream: its keep alive (PINGRESP
    // timeout) bounds a server that stops half way.
    fn on_partial(_: &mut Connection<Self>, _: Instant, _: usize) {}

    fn on_queued_expired(c: &mut Connection<Self>, id: PacketId) {
        c.events.push_back(ClientEvent::Expired { id });
    }

    fn session_expiry_is_zero(c: &Connection<Self>) -> bool {
        c.role.configured_session_expiry == 0
    }

    fn closed_event(c: &mut Connection<Self>, _: Instant, close: Close, _: bool) -> ClientEvent {
        c.role.connack_deadline = None;
        c.role.ping_sent = None;
        ClientEvent::Closed(close)
    }
}

/// The client sends PINGREQ when it has sent nothing for a keep alive period
/// [MQTT-3.1.2-23].
fn ping_due(c: &Connection<Client>) -> Option<Instant> {
    if c.state != State::Connected || c.keep_alive == 0 || c.role.ping_sent.is_some() {
        return None;
    }
    Some(c.last_tx.plus_secs(u64::from(c.keep_alive)))
}

impl Connection<Client> {
    /// A client connection: CONNECT is queued at once. `resume` is the session
    /// of an earlier connection, whose in-flight messages are resent once the
    /// server confirms it still has the session.
    ///
    /// A configuration whose CONNECT cannot be encoded (see
    /// [`mqtt_codec::EncodeError`]) gives a connection that is already
    /// closed: its only event is `Closed` with 0x80, and it sends nothing;
    /// `take_session` gives `resume` back.
    pub fn new(config: ClientConfig, now: Instant, resume: Option<Session>) -> Self {
        let mut connect = Connect::new(config.version, config.client_id.clone());
        connect.clean_start = config.clean_start;
        connect.keep_alive = config.keep_alive;
        connect.will = config.will.clone();
        connect.username = config.username.clone();
        connect.password = config.password.clone();
        connect.bridge = config.bridge && !config.version.is_v5();
        if config.version.is_v5() {
            let p = &mut connect.props;
            let l = &config.limits;
            if config.session_expiry_interval > 0 {
                p.session_expiry_interval = Some(config.session_expiry_interval);
            }
            if l.receive_maximum < u16::MAX {
                p.receive_maximum = core::num::NonZeroU16::new(l.receive_maximum);
            }
            if l.max_packet_size < MAX_PACKET_SIZE {
                p.maximum_packet_size = core::num::NonZeroU32::new(l.max_packet_size);
            }
            if l.topic_alias_maximum > 0 {
                p.topic_alias_maximum = Some(l.topic_alias_maximum);
            }
            p.user_properties = config.user_properties.clone();
            // Absent means 1, so only the refusal is sent.
            if !config.request_problem_information {
                p.request_problem_information = Some(false);
            }
            if let Some((method, data)) = &config.authentication {
                p.authentication_method = Some(method.clone());
                p.authentication_data = data.clone();
            }
        }
        let mut c = Connection::with_state(
            config.version,
            Decoder::with_version(config.version),
            State::AwaitingConnAck,
            config.limits.clone(),
            now,
            ClientState {
                clean_start: config.clean_start,
                connack_deadline: Some(now.saturating_add(config.connect_timeout)),
                ping_timeout: config.ping_timeout,
                ping_sent: None,
                configured_keep_alive: config.keep_alive,
                configured_session_expiry: config.session_expiry_interval,
                pending: BTreeMap::new(),
                caps: None,
                auth_method: config.authentication.as_ref().map(|(m, _)| m.clone()),
                manual_acks: config.manual_acks,
                unacked: VecDeque::new(),
            },
        );
        let max_queued = config.limits.max_queued;
        c.session = Some(resume.unwrap_or_else(|| Session::new(max_queued)));
        let connect = Packet::Connect(Box::new(connect));
        if connect.encoded_len(config.version).is_err() {
            // A configuration whose CONNECT cannot be encoded (a 3.1 client
            // identifier that is empty or over 23 bytes, a password without
            // a user name before 5.0, a field over its length limit) sends
            // nothing: the connection ends at once, rather than wait for a
            // CONNACK to a CONNECT that never went out.
            c.finish(now, Close::local(ReasonCode::UNSPECIFIED_ERROR), false);
            return c;
        }
        c.tx.push_back(connect);
        c
    }

    /// Whether the CONNECT is still queued: it goes first, so it is at
    /// the front until written.
    fn connect_unsent(&self) -> bool {
        matches!(self.tx.front(), Some(Tx::Packet(p)) if matches!(**p, Packet::Connect(_)))
    }

    fn on_connack(&mut self, now: Instant, ack: ConnAck) {
        if ack.reason.is_error() {
            return self.finish(
                now,
                Close::by_peer(ack.reason, refusal_diagnostics(ack)),
                false,
            );
        }
        if ack.session_present && self.role.clean_start {
            return self.violation(now, Violation::UnexpectedSessionPresent);
        }
        if self.role.auth_method.is_some()
            && ack.props.authentication_method != self.role.auth_method
        {
            return self.violation(now, Violation::BadAuthenticationMethod);
        }
        // MQTT 3.1 has no Session Present flag: a server that accepts a clean
        // session 0 keeps the session, and both sides redeliver what was in
        // flight (3.1 section 4.2), so the session counts as present.
        let session_present =
            ack.session_present || (self.version == ProtocolVersion::V31 && !self.role.clean_start);
        let mut p = ack.props;
        let authentication_data = p.authentication_data.take();
        let caps = ServerCaps {
            receive_maximum: p.receive_maximum.map_or(u16::MAX, |n| n.get()),
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available.unwrap_or(true),
            maximum_packet_size: p.maximum_packet_size.map_or(MAX_PACKET_SIZE, |n| n.get()),
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            wildcard_subscription_available: p.wildcard_subscription_available.unwrap_or(true),
            subscription_identifiers_available: p
                .subscription_identifiers_available
                .unwrap_or(true),
            shared_subscription_available: p.shared_subscription_available.unwrap_or(true),
            keep_alive: p
                .server_keep_alive
                .unwrap_or(self.role.configured_keep_alive),
            assigned_client_identifier: p.assigned_client_identifier,
            session_expiry_interval: p
                .session_expiry_interval
                .unwrap_or(self.role.configured_session_expiry),
        };
        self.peer.receive_maximum = caps.receive_maximum;
        self.peer.max_packet_size = caps.maximum_packet_size;
        self.peer.topic_alias_maximum = caps.topic_alias_maximum;
        self.keep_alive = caps.keep_alive;
        self.state = State::Connected;
        self.role.connack_deadline = None;
        if !session_present {
            self.restart_session();
        }
        self.events.push_back(ClientEvent::Connected {
            session_present,
            caps: caps.clone(),
            authentication_data,
        });
        self.role.caps = Some(caps);
        self.resume(now);
    }

    /// The server has no session for us: what was in flight starts over as new
    /// publishes (nothing the application handed over is dropped), a release
    /// already under way completes, and received QoS 2 state is forgotten.
    fn restart_session(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session.inbound_qos2.clear();
        let mut completed = Vec::new();
        let mut restart = Vec::new();
        for e in session.inflight.drain(..) {
            match e {
                Inflight::Publish(o) => restart.push(o),
                Inflight::PubRel(id, _) => completed.push(id),
            }
        }
        for o in restart.into_iter().rev() {
            session.count_queued(&o.msg, true);
            session.queue.push_front(o);
        }
        for id in completed {
            session.release_id(id);
            self.events.push_back(ClientEvent::Published {
                id,
                reason: ReasonCode::SUCCESS,
                props: AckProps::default(),
            });
        }
    }

    fn on_suback(&mut self, now: Instant, s: SubAck, unsubscribe: bool) {
        match self.role.pending.get(&s.id) {
            Some(&u) if u == unsubscribe => {}
            _ => {
                let t = if unsubscribe {
                    PacketType::UnsubAck
                } else {
                    PacketType::SubAck
                };
                return self.violation(now, Violation::UnexpectedPacket(t));
            }
        }
        self.role.pending.remove(&s.id);
        self.release_id(s.id);
        self.events.push_back(if unsubscribe {
            ClientEvent::Unsubscribed {
                id: s.id,
                results: s.reasons,
                props: s.props,
            }
        } else {
            ClientEvent::Subscribed {
                id: s.id,
                results: s.reasons,
                props: s.props,
            }
        });
    }

    /// What the server announced in CONNACK, once connected.
    pub fn server_caps(&self) -> Option<&ServerCaps> {
        self.role.caps.as_ref()
    }

    /// Acknowledges the received QoS 1/2 message with packet identifier `id`
    /// (`ClientConfig::manual_acks`): PUBACK, or PUBREC for QoS 2 (the
    /// PUBREL that follows is answered by itself). Answers leave in the
    /// order the messages arrived [MQTT-4.6.0-2] [MQTT-4.6.0-3]: the
    /// acknowledgement of a message waits until every message received
    /// before it is acknowledged.
    ///
    /// [`UsageError::UnknownPacketId`] if no message with `id` waits for an
    /// acknowledgement (acknowledged already, never received, or received
    /// automatically acknowledged); [`UsageError::NotConnected`] once the
    /// connection has closed (the server sends the message again on a
    /// resumed session).
    pub fn ack(&mut self, id: PacketId) -> Result<(), UsageError> {
        if self.is_ending() {
            return Err(UsageError::NotConnected);
        }
        let entry = self
            .role
            .unacked
            .iter_mut()
            .find(|(i, acked)| *i == id && !*acked)
            .ok_or(UsageError::UnknownPacketId(id))?;
        entry.1 = true;
        while let Some(&(front, true)) = self.role.unacked.front() {
            self.role.unacked.pop_front();
            // Invariant: every queued identifier awaits its answer.
            let _ = self.answer_publish(front, ReasonCode::SUCCESS, AckProps::default());
        }
        Ok(())
    }

    /// How many received QoS 1/2 messages wait for the application's
    /// acknowledgement (manual acknowledgement; always 0 otherwise).
    pub fn unacknowledged(&self) -> usize {
        self.role.unacked.len()
    }

    /// Publishes a message. QoS 0 is handed over at once; QoS 1/2 returns the
    /// packet identifier that [`ClientEvent::Published`] will name, and waits
    /// in the session queue if the in-flight window is full. A message whose
    /// expiry has passed already is refused with [`UsageError::Expired`].
    pub fn publish(&mut self, now: Instant, msg: Message) -> Result<Option<PacketId>, UsageError> {
        if self.state != State::Connected {
            return Err(UsageError::NotConnected);
        }
        if let Some(caps) = &self.role.caps {
            if msg.qos > caps.maximum_qos {
                return Err(UsageError::QosNotSupported {
                    max: caps.maximum_qos,
                });
            }
            if msg.retain && !caps.retain_available {
                return Err(UsageError::RetainNotSupported);
            }
        }
        let opts = DeliveryOptions {
            qos: msg.qos,
            retain: msg.retain,
            subscription_identifiers: Vec::new(),
        };
        self.submit(now, msg.into(), opts).map_err(|e| match e {
            crate::error::DeliverError::TooLarge { len, max } => {
                UsageError::PacketTooLarge { len, max }
            }
            crate::error::DeliverError::QueueFull { limit } => UsageError::QueueFull { limit },
            crate::error::DeliverError::Expired => UsageError::Expired,
            crate::error::DeliverError::Closed => UsageError::NotConnected,
        })
    }

    /// Subscribes to `filters`; [`ClientEvent::Subscribed`] reports the result.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        subscription_identifier: Option<SubscriptionId>,
    ) -> Result<PacketId, UsageError> {
        let _ = now;
        if filters.is_empty() {
            return Err(UsageError::NoTopicFilters);
        }
        self.request(false, |id| {
            let mut s = Subscribe {
                id,
                props: Default::default(),
                filters,
            };
            s.props.subscription_identifier = subscription_identifier;
            Packet::Subscribe(s)
        })
    }

    /// Unsubscribes from `filters`; [`ClientEvent::Unsubscribed`] reports the result.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<TopicFilter>,
    ) -> Result<PacketId, UsageError> {
        let _ = now;
        if filters.is_empty() {
            return Err(UsageError::NoTopicFilters);
        }
        self.request(true, |id| {
            Packet::Unsubscribe(Unsubscribe {
                id,
                props: Default::default(),
                filters,
            })
        })
    }

    fn request(
        &mut self,
        unsubscribe: bool,
        build: impl FnOnce(PacketId) -> Packet,
    ) -> Result<PacketId, UsageError> {
        if self.state != State::Connected {
            return Err(UsageError::NotConnected);
        }
        let id = self
            .alloc_id()
            .ok_or(UsageError::QueueFull { limit: 65535 })?;
        let p = build(id);
        if let Err(e) = self.check_size(&p) {
            self.release_id(id);
            return Err(e);
        }
        self.role.pending.insert(id, unsubscribe);
        self.tx.push_back(p);
        Ok(id)
    }

    /// Disconnects cleanly: DISCONNECT with `reason` (5.0; 0x04 asks the
    /// server to publish the will), then `Closed`.
    pub fn disconnect(&mut self, now: Instant, reason: ReasonCode) {
        // Default properties are always allowed.
        let _ = self.disconnect_with(now, reason, DisconnectProps::default());
    }

    /// Like [`Connection::disconnect`], with 5.0 DISCONNECT properties: a
    /// reason string, user properties, or a new session expiry interval
    /// (refused with [`UsageError::PropertyNotAllowed`] when the CONNECT's was
    /// zero, or for a server reference [MQTT-3.14.2-2]).
    pub fn disconnect_with(
        &mut self,
        now: Instant,
        reason: ReasonCode,
        props: DisconnectProps,
    ) -> Result<(), UsageError> {
        if self.state == State::AwaitingConnAck {
            // CONNECT is out and the client may send DISCONNECT before the
            // CONNACK arrives; `close` only sends one when connected.
            if props.server_reference.is_some()
                || props.session_expiry_interval.is_some_and(|i| i != 0)
                    && self.role.configured_session_expiry == 0
            {
                return Err(UsageError::PropertyNotAllowed);
            }
            self.queue_disconnect(reason, props.clone());
        }
        self.close_with(now, reason, props)
    }

    /// Sends an AUTH step of enhanced authentication (5.0).
    pub fn auth(
        &mut self,
        now: Instant,
        reason: ReasonCode,
        props: AuthProps,
    ) -> Result<(), UsageError> {
        let _ = now;
        self.send_auth(State::AwaitingConnAck, reason, props)
    }
}

/// The diagnostics of a refusing CONNACK, kept in the [`Close`] it causes.
fn refusal_diagnostics(ack: ConnAck) -> DisconnectProps {
    let mut props = DisconnectProps::default();
    props.reason_string = ack.props.reason_string;
    props.user_properties = ack.props.user_properties;
    props
}
