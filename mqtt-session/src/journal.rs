//! The changes to a session's durable state, recorded as plain data while
//! tracking is on, and a session rebuilt from that state.
//!
//! A broker with a store turns these into store records; one without never
//! turns tracking on, and then recording costs one branch per change.

use alloc::sync::Arc;
use alloc::vec::Vec;

use mqtt_codec::{PacketId, QoS};

use crate::message::{DeliveryOptions, Message};
use crate::session::{Inflight, Outgoing, Session};

/// One change to the durable part of a [`Session`]: its outgoing QoS 1/2
/// messages with their packet identifiers and state, and the identifiers of
/// incoming QoS 2 messages not yet released (section 4.1). QoS 0 messages
/// are not durable and never appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionChange {
    /// A QoS 1/2 message was given packet identifier `id`, to be sent (or
    /// already sent) to the client.
    Queued {
        /// Its packet identifier.
        id: PacketId,
        /// The message, shared with every other session it went to.
        msg: Arc<Message>,
        /// How it is delivered to this client.
        opts: DeliveryOptions,
    },
    /// The client answered the QoS 2 PUBLISH `id` with PUBREC: PUBREL is
    /// sent, and the message itself is no longer needed.
    PubRelSent {
        /// Its packet identifier.
        id: PacketId,
        /// The message the session no longer holds.
        msg: Arc<Message>,
    },
    /// The outgoing exchange `id` is over (acknowledged, dropped, expired);
    /// the identifier is free.
    Completed {
        /// Its packet identifier.
        id: PacketId,
        /// The message the session held until now; `None` when the exchange
        /// was past PUBREC and held none.
        msg: Option<Arc<Message>>,
    },
    /// An incoming QoS 2 PUBLISH `id` was received: a resend of it must not
    /// be delivered twice [MQTT-4.3.3-10].
    IncomingReceived {
        /// Its packet identifier.
        id: PacketId,
    },
    /// PUBREL (or a failure PUBREC) ended the incoming QoS 2 exchange `id`.
    IncomingReleased {
        /// Its packet identifier.
        id: PacketId,
    },
}

impl Session {
    /// Starts (or stops) recording [`SessionChange`]s, for a server whose
    /// sessions outlive its process. Changes recorded so far stay until
    /// taken.
    pub fn track_changes(&mut self, on: bool) {
        self.tracking = on;
    }

    /// Whether changes are recorded.
    pub fn is_tracking_changes(&self) -> bool {
        self.tracking
    }

    /// Moves the changes recorded since the last call to `out`, in order.
    pub fn take_changes(&mut self, out: &mut Vec<SessionChange>) {
        out.append(&mut self.changes);
    }

    pub(crate) fn record(&mut self, change: impl FnOnce() -> SessionChange) {
        if self.tracking {
            self.changes.push(change());
        }
    }

    /// Restores an outgoing QoS 1/2 message whose PUBLISH may have been sent
    /// before: it is queued with its packet identifier and goes out (again)
    /// when a client takes the session. Call in the order the messages were
    /// queued. False, with nothing changed, if `id` is already in use or the
    /// delivery is at QoS 0.
    pub fn restore_outgoing(
        &mut self,
        id: PacketId,
        msg: Arc<Message>,
        opts: DeliveryOptions,
    ) -> bool {
        if opts.qos == QoS::AtMostOnce || !self.ids.insert(id) {
            return false;
        }
        self.count_queued(&msg, true);
        self.queue.push_back(Outgoing {
            id,
            msg,
            opts,
            maybe_sent: true,
        });
        true
    }

    /// Restores an outgoing QoS 2 exchange past PUBREC: PUBREL is sent
    /// again when a client takes the session. False if `id` is in use.
    pub fn restore_pubrel(&mut self, id: PacketId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.inflight
            .push_back(Inflight::PubRel(id, mqtt_codec::ReasonCode::SUCCESS));
        true
    }

    /// Restores the identifier of an incoming QoS 2 message received and not
    /// yet released: a resend of it is answered, not delivered again.
    pub fn restore_incoming(&mut self, id: PacketId) {
        self.inbound_qos2.insert(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::TopicName;

    fn msg() -> Arc<Message> {
        Arc::new(Message::new(
            TopicName::from_static("t"),
            "x",
            QoS::AtLeastOnce,
            false,
        ))
    }

    #[test]
    fn nothing_is_recorded_until_tracking_is_on() {
        let mut s = Session::new(10);
        s.enqueue(msg(), DeliveryOptions::new(QoS::AtLeastOnce))
            .unwrap();
        let mut out = Vec::new();
        s.take_changes(&mut out);
        assert!(out.is_empty());
        s.track_changes(true);
        s.enqueue(msg(), DeliveryOptions::new(QoS::AtLeastOnce))
            .unwrap();
        s.enqueue(msg(), DeliveryOptions::new(QoS::AtMostOnce))
            .unwrap();
        assert!(s.drop_oldest());
        s.take_changes(&mut out);
        assert!(matches!(&out[..], [SessionChange::Queued { id, .. }] if id.get() == 2));
    }

    #[test]
    fn dropping_a_queued_message_records_its_completion() {
        let mut s = Session::new(10);
        s.track_changes(true);
        let m = msg();
        s.enqueue(m.clone(), DeliveryOptions::new(QoS::AtLeastOnce))
            .unwrap();
        assert!(s.drop_oldest());
        let mut out = Vec::new();
        s.take_changes(&mut out);
        assert_eq!(out.len(), 2);
        assert!(
            matches!(&out[1], SessionChange::Completed { id, msg: Some(x) } if id.get() == 1 && Arc::ptr_eq(x, &m))
        );
    }

    #[test]
    fn a_restored_session_keeps_identifiers_and_refuses_duplicates() {
        let mut s = Session::new(10);
        let id = PacketId::new(7).unwrap();
        assert!(s.restore_outgoing(id, msg(), DeliveryOptions::new(QoS::AtLeastOnce)));
        assert!(!s.restore_pubrel(id));
        assert!(!s.restore_outgoing(
            PacketId::new(8).unwrap(),
            msg(),
            DeliveryOptions::new(QoS::AtMostOnce)
        ));
        assert!(s.restore_pubrel(PacketId::new(9).unwrap()));
        s.restore_incoming(PacketId::new(3).unwrap());
        assert_eq!(
            (s.queued(), s.inflight(), s.incomplete_inbound()),
            (1, 1, 1)
        );
        // New identifiers skip those restored.
        s.set_last_packet_id(6);
        assert_eq!(s.alloc_id().unwrap().get(), 8);
    }
}
