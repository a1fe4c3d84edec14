//! Messages we receive: QoS 1/2 answered once, topic aliases resolved,
//! and the packets both roles handle alike.

use mqtt_codec::{
    Ack, AckProps, EncodeError, Packet, PacketId, PacketType, Publish, QoS, ReasonCode,
};

use crate::error::{UsageError, Violation};
use crate::journal::SessionChange;
use crate::message::Message;
use crate::session::Session;
use crate::time::Instant;

use super::{Connection, Role, State};

impl<R: Role> Connection<R> {
    /// Handles a received PUBLISH after the role's own checks.
    pub(crate) fn on_publish(&mut self, now: Instant, p: Publish) {
        let alias_max = if self.version.is_v5() {
            self.limits.topic_alias_maximum
        } else {
            0
        };
        let topic = match self
            .aliases
            .resolve(p.topic.clone(), p.props.topic_alias, alias_max)
        {
            Ok(t) => t,
            Err(v) => return self.violation(now, v),
        };
        let id = p.qos.packet_id();
        let qos = p.qos.qos();
        if let Some(id) = id {
            let session = self
                .session
                .get_or_insert_with(|| Session::new(self.limits.max_queued));
            if self.awaiting_ack.contains_key(&id) {
                // A resend of a message the application has not answered yet:
                // QoS 2 is not delivered twice [MQTT-4.3.3-10].
                if qos == QoS::ExactlyOnce {
                    return;
                }
            } else if qos == QoS::ExactlyOnce && session.inbound_qos2.contains(&id) {
                // Already received, on this connection or on an earlier one of
                // a resumed session: answer again, deliver nothing twice
                // [MQTT-4.3.3-10] (3.1.1: [MQTT-4.3.3-2]).
                self.tx.push_back(Packet::PubRec(Ack::new(id)));
                return;
            } else {
                // QoS 2 messages count until PUBREL, QoS 1 until answered
                // (QoS 2 not yet answered, under manual acknowledgement, is
                // not in `inbound_qos2` yet).
                let manual = R::manual_acks(self);
                let session = self
                    .session
                    .get_or_insert_with(|| Session::new(self.limits.max_queued));
                let unanswered = self
                    .awaiting_ack
                    .iter()
                    .filter(|(i, q)| **q == QoS::AtLeastOnce || !session.inbound_qos2.contains(i))
                    .count();
                let unacked = unanswered + session.inbound_qos2.len();
                // Under manual acknowledgement the application holds the
                // answers, so the bound applies under 3.1.1 too (where the
                // server knows no Receive Maximum): a server that sends more
                // is cut off rather than grow this side's memory.
                let bounded = self.version.is_v5() || manual;
                if bounded && unacked >= usize::from(self.limits.receive_maximum) {
                    return self.violation(now, Violation::ReceiveMaximumExceeded);
                }
                self.awaiting_ack.insert(id, qos);
                // Under manual acknowledgement the identifier joins the
                // session state with the PUBREC (`answer_publish`): until
                // then a resend after a reconnection is a new delivery,
                // since the application never took this one.
                if qos == QoS::ExactlyOnce && !manual {
                    // The identifier joins the session state the moment the
                    // message is handed on, not when the application answers:
                    // a QoS 2 message received but not completely acknowledged
                    // is session state (section 4.1), so a resend after a
                    // reconnection is recognised even if the connection broke
                    // before the application answered.
                    session.inbound_qos2.insert(id);
                    session.record(|| SessionChange::IncomingReceived { id });
                }
            }
        }
        let sub_ids = p.props.subscription_identifiers.clone();
        let msg = Message::from_publish(p, topic, now);
        R::on_message(self, msg, id, sub_ids);
    }

    /// Answers a received QoS 1/2 publish: PUBACK, or PUBREC for QoS 2.
    pub(crate) fn answer_publish(
        &mut self,
        id: PacketId,
        reason: ReasonCode,
        props: AckProps,
    ) -> Result<(), UsageError> {
        if self.is_ending() {
            return Err(UsageError::NotConnected);
        }
        let qos = self
            .awaiting_ack
            .get(&id)
            .copied()
            .ok_or(UsageError::UnknownPacketId(id))?;
        let reason = if self.version.is_v5() {
            reason
        } else {
            // 3.1.1 has no negative acknowledgement: the message is simply not
            // forwarded, and the flow completes.
            ReasonCode::SUCCESS
        };
        let kind = if qos == QoS::AtLeastOnce {
            PacketType::PubAck
        } else {
            PacketType::PubRec
        };
        if !reason.valid_for(kind) {
            return Err(UsageError::Encode(EncodeError::InvalidReasonCode {
                packet: kind,
                code: reason.0,
            }));
        }
        self.awaiting_ack.remove(&id);
        let mut ack = Ack::with_reason(id, reason);
        if self.version.is_v5() {
            ack.props = props;
        }
        if qos == QoS::AtLeastOnce {
            self.tx.push_back(Packet::PubAck(ack));
        } else {
            let session = self.session_mut();
            if reason.is_error() {
                // A failure PUBREC ends the flow: the identifier is free for a
                // new message [MQTT-4.3.3-9].
                if session.inbound_qos2.remove(&id) {
                    session.record(|| SessionChange::IncomingReleased { id });
                }
            } else if session.inbound_qos2.insert(id) {
                // Manual acknowledgement: the message is received from now
                // on (with automatic answers `on_publish` recorded it).
                session.record(|| SessionChange::IncomingReceived { id });
            }
            self.tx.push_back(Packet::PubRec(ack));
        }
        Ok(())
    }

    pub(crate) fn on_pubrel(&mut self, ack: Ack) {
        let known = self.session.as_mut().is_some_and(|s| {
            let known = s.inbound_qos2.remove(&ack.id);
            if known {
                s.record(|| SessionChange::IncomingReleased { id: ack.id });
            }
            known
        });
        let reason = if known || !self.version.is_v5() {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        self.tx
            .push_back(Packet::PubComp(Ack::with_reason(ack.id, reason)));
    }

    /// Routes the packets both roles handle alike; anything else is unexpected.
    #[inline]
    pub(crate) fn handle_common(&mut self, now: Instant, p: Packet) {
        match p {
            Packet::PubAck(a) => self.on_puback(now, a),
            Packet::PubRec(a) => self.on_pubrec(now, a),
            Packet::PubRel(a) => self.on_pubrel(a),
            Packet::PubComp(a) => self.on_pubcomp(now, a),
            other => self.violation(now, Violation::UnexpectedPacket(other.packet_type())),
        }
    }

    /// Queues an AUTH packet (5.0 only), while connected or during the
    /// role's `handshake` state.
    pub(crate) fn send_auth(
        &mut self,
        handshake: State,
        reason: ReasonCode,
        props: mqtt_codec::AuthProps,
    ) -> Result<(), UsageError> {
        if !self.version.is_v5() {
            return Err(UsageError::NotInVersion(self.version));
        }
        if self.state != State::Connected && self.state != handshake {
            return Err(UsageError::NotConnected);
        }
        let p = Packet::Auth(mqtt_codec::Auth { reason, props });
        self.check_size(&p)?;
        self.tx.push_back(p);
        Ok(())
    }
}
