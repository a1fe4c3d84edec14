//! Messages we send: the in-flight window, resending on resume, packet
//! identifiers, and the acknowledgements that complete each flow.

use alloc::sync::Arc;

use mqtt_codec::{Ack, AckProps, Packet, PacketId, PacketType, QoS, QosPid, ReasonCode};

use crate::error::{DeliverError, UsageError, Violation};
use crate::journal::SessionChange;
use crate::message::{DeliveryOptions, Message};
use crate::session::{Inflight, Outgoing, Session};
use crate::time::Instant;
use crate::tx::{OutPublish, Tx};

use super::{Connection, Role};

impl<R: Role> Connection<R> {
    /// The in-flight window: the peer's Receive Maximum (5.0) and our own cap.
    pub(super) fn window(&self) -> usize {
        usize::from(self.peer.receive_maximum.min(self.limits.max_inflight)).max(1)
    }

    /// Sends or queues a message; returns its packet identifier for QoS 1/2.
    pub(crate) fn submit(
        &mut self,
        now: Instant,
        msg: Arc<Message>,
        opts: DeliveryOptions,
    ) -> Result<Option<PacketId>, DeliverError> {
        if msg.is_expired(now) {
            return Err(DeliverError::Expired);
        }
        // Measured exactly only when a cheap bound does not settle it: a
        // message that waits in the queue is turned into a PUBLISH once,
        // when it goes out, not twice.
        let max = self.peer.max_packet_size;
        if msg.publish_len_bound(&opts.subscription_identifiers) > max as usize {
            let qos = QosPid::from_qos(opts.qos, PLACEHOLDER_ID);
            let p = OutPublish::new(&msg, qos, &opts, false, now, self.version.is_v5());
            let len = Tx::Publish(p)
                .encoded_len(self.version)
                .unwrap_or(usize::MAX);
            if len > max as usize {
                return Err(DeliverError::TooLarge { len, max });
            }
        }
        let max_queued = self.limits.max_queued;
        let queued = self.tx_qos0 + self.session.as_ref().map_or(0, Session::queued);
        if opts.qos == QoS::AtMostOnce {
            let limit = max_queued.min(self.limits.max_queued_qos0);
            if queued >= max_queued || self.tx_qos0 >= limit {
                return Err(DeliverError::QueueFull { limit });
            }
            self.push_publish(now, &msg, QosPid::AtMostOnce, &opts, false);
            self.tx_qos0 += 1;
            return Ok(None);
        }
        let window = self.window();
        let session = self.session_mut();
        let room = session.inflight.len() < window && session.queue.is_empty();
        if !room && (queued >= max_queued || !session.has_room_for(&msg)) {
            return Err(DeliverError::QueueFull { limit: max_queued });
        }
        let id = session
            .alloc_id()
            .ok_or(DeliverError::QueueFull { limit: max_queued })?;
        session.record(|| SessionChange::Queued {
            id,
            msg: msg.clone(),
            opts: opts.clone(),
        });
        let out = Outgoing {
            id,
            msg,
            opts,
            maybe_sent: false,
        };
        if room {
            self.send_outgoing(now, out, false);
        } else {
            let session = self.session_mut();
            session.count_queued(&out.msg, true);
            session.queue.push_back(out);
        }
        Ok(Some(id))
    }

    /// Puts one QoS 1/2 message in flight.
    pub(super) fn send_outgoing(&mut self, now: Instant, out: Outgoing, dup: bool) {
        let qos = QosPid::from_qos(out.opts.qos, out.id);
        self.push_publish(now, &out.msg, qos, &out.opts, dup);
        self.session_mut()
            .inflight
            .push_back(Inflight::Publish(out));
    }

    /// Queues the PUBLISH of a message (its topic alias, if any, is chosen
    /// when it is sent: `alias_front`); properties go out under 5.0 only. It is encoded from the
    /// message itself when sent (see [`crate::tx`]).
    pub(super) fn push_publish(
        &mut self,
        now: Instant,
        msg: &Arc<Message>,
        qos: QosPid,
        opts: &DeliveryOptions,
        dup: bool,
    ) {
        let p = OutPublish::new(msg, qos, opts, dup, now, self.version.is_v5());
        self.tx.push_back(Tx::Publish(p));
    }

    /// Moves queued messages into the window as it opens; expired ones are dropped.
    pub(crate) fn fill_window(&mut self, now: Instant) {
        let window = self.window();
        loop {
            let Some(session) = self.session.as_mut() else {
                return;
            };
            if session.inflight.len() >= window {
                return;
            }
            let Some(out) = session.queue.pop_front() else {
                return;
            };
            session.count_queued(&out.msg, false);
            if out.msg.is_expired(now) {
                // Never started onward: dropped [MQTT-3.3.2-5].
                session.release_id(out.id);
                session.record(|| SessionChange::Completed {
                    id: out.id,
                    msg: Some(out.msg),
                });
                self.expired = self.expired.saturating_add(1);
                R::on_queued_expired(self, out.id);
                continue;
            }
            let dup = out.maybe_sent;
            self.send_outgoing(now, out, dup);
        }
    }

    /// Resends what a resumed session had in flight, with DUP, in the original
    /// order [MQTT-4.4.0-1], then sends what was queued meanwhile.
    pub(crate) fn resume(&mut self, now: Instant) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let inflight: alloc::vec::Vec<Inflight> = session.inflight.iter().cloned().collect();
        let offline: alloc::vec::Vec<(Arc<Message>, DeliveryOptions)> =
            session.offline_qos0.drain(..).collect();
        session.recount_queued();
        for e in inflight {
            match e {
                Inflight::Publish(o) => {
                    let qos = QosPid::from_qos(o.opts.qos, o.id);
                    self.push_publish(now, &o.msg, qos, &o.opts, true);
                }
                Inflight::PubRel(id, _) => self.tx.push_back(Packet::PubRel(Ack::new(id))),
            }
        }
        for (msg, opts) in offline {
            if msg.is_expired(now) {
                self.expired = self.expired.saturating_add(1);
            } else {
                self.push_publish(now, &msg, QosPid::AtMostOnce, &opts, false);
                self.tx_qos0 += 1;
            }
        }
        self.fill_window(now);
    }

    /// Forgets an in-flight PUBLISH that can no longer be sent, reporting it
    /// as completed with 0x95 (unless the connection is closing: then it
    /// stays in the session).
    pub(super) fn drop_unsendable(&mut self, now: Instant, qos: QosPid) {
        if qos == QosPid::AtMostOnce {
            self.tx_qos0 = self.tx_qos0.saturating_sub(1);
            return;
        }
        let Some(id) = qos.packet_id() else {
            return;
        };
        if self.is_ending() {
            // `Closed` has been reported: nothing is reported after it.
            // The message stays in flight in the session, for the next
            // connection to resend [MQTT-4.4.0-1] within its own limits.
            return;
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if let Some(i) = session.find_inflight(id) {
            let entry = session.inflight.remove(i);
            session.release_id(id);
            session.record(|| completed(id, entry));
            R::on_outbound_complete(self, id, ReasonCode::PACKET_TOO_LARGE, AckProps::default());
            self.fill_window(now);
        }
    }

    pub(crate) fn on_puback(&mut self, now: Instant, ack: Ack) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(i) = session.find_inflight(ack.id) else {
            return;
        };
        if !matches!(&session.inflight[i], Inflight::Publish(o) if o.opts.qos == QoS::AtLeastOnce) {
            // PUBACK for a QoS 2 flow.
            return self.violation(now, Violation::WrongAcknowledgement(PacketType::PubAck));
        }
        let entry = session.inflight.remove(i);
        session.release_id(ack.id);
        session.record(|| completed(ack.id, entry));
        R::on_outbound_complete(self, ack.id, ack.reason, ack.props);
        self.fill_window(now);
    }

    pub(crate) fn on_pubrec(&mut self, now: Instant, ack: Ack) {
        let v5 = self.version.is_v5();
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.find_inflight(ack.id) {
            Some(i) => match &session.inflight[i] {
                Inflight::Publish(o) if o.opts.qos == QoS::ExactlyOnce => {
                    if ack.reason.is_error() {
                        // A failure PUBREC ends the QoS 2 flow (section 4.3.3).
                        let entry = session.inflight.remove(i);
                        session.release_id(ack.id);
                        session.record(|| completed(ack.id, entry));
                        R::on_outbound_complete(self, ack.id, ack.reason, ack.props);
                        self.fill_window(now);
                    } else {
                        let old = core::mem::replace(
                            &mut session.inflight[i],
                            Inflight::PubRel(ack.id, ack.reason),
                        );
                        if let Inflight::Publish(o) = old {
                            session.record(|| SessionChange::PubRelSent {
                                id: ack.id,
                                msg: o.msg,
                            });
                        }
                        self.tx.push_back(Packet::PubRel(Ack::new(ack.id)));
                    }
                }
                // A repeated PUBREC: answer it again.
                Inflight::PubRel(..) => self.tx.push_back(Packet::PubRel(Ack::new(ack.id))),
                // PUBREC for a QoS 1 flow.
                Inflight::Publish(_) => {
                    self.violation(now, Violation::WrongAcknowledgement(PacketType::PubRec))
                }
            },
            None if v5 => self.tx.push_back(Packet::PubRel(Ack::with_reason(
                ack.id,
                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            ))),
            None => self.tx.push_back(Packet::PubRel(Ack::new(ack.id))),
        }
    }

    pub(crate) fn on_pubcomp(&mut self, now: Instant, ack: Ack) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(i) = session.find_inflight(ack.id) else {
            return;
        };
        let Inflight::PubRel(_, received) = session.inflight[i] else {
            // PUBCOMP for a QoS 1 flow, or before the PUBREC of a QoS 2 one.
            return self.violation(now, Violation::WrongAcknowledgement(PacketType::PubComp));
        };
        session.inflight.remove(i);
        session.release_id(ack.id);
        session.record(|| SessionChange::Completed {
            id: ack.id,
            msg: None,
        });
        // PUBCOMP's own reason wins when it reports a failure; otherwise the
        // PUBREC's (0x10 No matching subscribers travels in PUBREC only).
        let reason = if ack.reason.is_error() {
            ack.reason
        } else {
            received
        };
        R::on_outbound_complete(self, ack.id, reason, ack.props);
        self.fill_window(now);
    }

    /// Whether `id` may be used for a new outgoing packet.
    pub(crate) fn alloc_id(&mut self) -> Option<PacketId> {
        self.session_mut().alloc_id()
    }

    pub(crate) fn release_id(&mut self, id: PacketId) {
        if let Some(s) = self.session.as_mut() {
            s.release_id(id);
        }
    }

    /// Bytes of payload a packet may not exceed for the peer, for callers
    /// that check before building.
    pub(crate) fn check_size(&self, p: &Packet) -> Result<(), UsageError> {
        let len = p.encoded_len(self.version).map_err(UsageError::Encode)?;
        if len > self.peer.max_packet_size as usize {
            return Err(UsageError::PacketTooLarge {
                len,
                max: self.peer.max_packet_size,
            });
        }
        Ok(())
    }
}

/// The change that records the end of the in-flight exchange `entry`.
fn completed(id: PacketId, entry: Option<Inflight>) -> SessionChange {
    let msg = match entry {
        Some(Inflight::Publish(o)) => Some(o.msg),
        Some(Inflight::PubRel(..)) | None => None,
    };
    SessionChange::Completed { id, msg }
}

/// Stands in for the real identifier while a PUBLISH is only being measured.
const PLACEHOLDER_ID: PacketId = match PacketId::new(1) {
    Some(id) => id,
    None => panic!("1 is a valid packet identifier"),
};
