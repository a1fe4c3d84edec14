//! The state that outlives one network connection: the MQTT "Session".

use alloc::collections::{BTreeSet, VecDeque};
use alloc::sync::Arc;

use mqtt_codec::{PacketId, QoS, ReasonCode};

use crate::error::DeliverError;
use crate::ids::IdSet;
use crate::journal::SessionChange;
use crate::message::{DeliveryOptions, Message};
use crate::time::Instant;

/// A QoS 1/2 message on its way out, with its packet identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    pub(crate) id: PacketId,
    /// Shared by every subscriber the message goes to.
    pub(crate) msg: Arc<Message>,
    pub(crate) opts: DeliveryOptions,
    /// It may have been sent before: restored from a store, which does not
    /// record whether it had gone out, so its first PUBLISH now is a
    /// possible re-delivery and carries DUP=1 [MQTT-3.3.1-1], as a resumed
    /// session's resend does.
    pub(crate) maybe_sent: bool,
}

/// One entry of the in-flight window, in the order the packets were first sent.
// Not boxed: entries live in a VecDeque whose slots are as large as the
// largest variant anyway, and boxing would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inflight {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Publish(Outgoing),
    /// PUBREL sent, waiting for PUBCOMP; the message itself is no longer
    /// needed. The PUBREC's reason (success or 0x10 No matching subscribers)
    /// is kept to report with the completion.
    PubRel(PacketId, ReasonCode),
}

impl Inflight {
    pub(crate) fn id(&self) -> PacketId {
        match self {
            Inflight::Publish(o) => o.id,
            Inflight::PubRel(id, _) => *id,
        }
    }
}

/// State that outlives a network connection (MQTT "Session", section 4.1):
/// outgoing QoS 1/2 messages in flight and queued, the identifiers of QoS 2
/// messages received but not yet released, and QoS 0 messages queued while
/// the client was away.
///
/// Take it out of a closed connection with `Connection::detach` and put it
/// into the next one; that connection resends what was in flight, with DUP
/// set and in the original order [MQTT-4.4.0-1].
#[derive(Debug, Clone)]
pub struct Session {
    next_id: u16,
    /// Packet identifiers in use on the way out: in flight, queued, and
    /// (client side) SUBSCRIBE/UNSUBSCRIBE waiting for their answer.
    pub(crate) ids: IdSet,
    pub(crate) inflight: VecDeque<Inflight>,
    pub(crate) queue: VecDeque<Outgoing>,
    pub(crate) offline_qos0: VecDeque<(Arc<Message>, DeliveryOptions)>,
    /// QoS 2 messages received and answered with PUBREC, until PUBREL.
    pub(crate) inbound_qos2: BTreeSet<PacketId>,
    max_queued: usize,
    /// [`Message::held_bytes`] of what `queue` and `offline_qos0` hold.
    queued_bytes: usize,
    /// The most bytes they may hold.
    max_queued_bytes: usize,
    /// Whether changes to the durable state are recorded (see
    /// [`SessionChange`](crate::SessionChange)), and those not yet taken.
    pub(crate) tracking: bool,
    pub(crate) changes: alloc::vec::Vec<crate::journal::SessionChange>,
}

impl Session {
    /// An empty session that queues at most `max_queued` messages.
    pub fn new(max_queued: usize) -> Self {
        Session {
            next_id: 0,
            ids: IdSet::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            offline_qos0: VecDeque::new(),
            inbound_qos2: BTreeSet::new(),
            max_queued,
            queued_bytes: 0,
            max_queued_bytes: usize::MAX,
            tracking: false,
            changes: alloc::vec::Vec::new(),
        }
    }

    /// Queues a message for a client that is not connected. QoS 1/2 messages
    /// get their packet identifier now and are sent when the client resumes.
    /// A message going to several sessions can be shared as an `Arc`.
    pub fn enqueue(
        &mut self,
        msg: impl Into<Arc<Message>>,
        opts: DeliveryOptions,
    ) -> Result<(), DeliverError> {
        let msg = msg.into();
        if self.queued() >= self.max_queued || !self.has_room_for(&msg) {
            return Err(DeliverError::QueueFull {
                limit: self.max_queued,
            });
        }
        if opts.qos == QoS::AtMostOnce {
            self.count_queued(&msg, true);
            self.offline_qos0.push_back((msg, opts));
            return Ok(());
        }
        let id = self.alloc_id().ok_or(DeliverError::QueueFull {
            limit: self.max_queued,
        })?;
        self.record(|| SessionChange::Queued {
            id,
            msg: msg.clone(),
            opts: opts.clone(),
        });
        self.count_queued(&msg, true);
        self.queue.push_back(Outgoing {
            id,
            msg,
            opts,
            maybe_sent: false,
        });
        Ok(())
    }

    /// Messages waiting to be sent: queued behind the in-flight window, or
    /// queued while the client was away.
    pub fn queued(&self) -> usize {
        self.queue.len() + self.offline_qos0.len()
    }

    /// QoS 1/2 exchanges started and not yet complete.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// QoS 2 messages received and not yet released by PUBREL.
    pub fn incomplete_inbound(&self) -> usize {
        self.inbound_qos2.len()
    }

    /// The queue limit.
    pub fn max_queued(&self) -> usize {
        self.max_queued
    }

    /// The bytes the queued messages hold ([`Message::held_bytes`]):
    /// topics, payloads and properties.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The limit on [`Session::queued_bytes`] (`usize::MAX` unless set).
    pub fn max_queued_bytes(&self) -> usize {
        self.max_queued_bytes
    }

    /// Changes the limit on queued bytes (messages already queued stay);
    /// a message that would pass it is refused like one past the count
    /// limit, with `QueueFull`.
    pub fn set_max_queued_bytes(&mut self, max_queued_bytes: usize) {
        self.max_queued_bytes = max_queued_bytes;
    }

    /// Whether `msg` fits within the limit on queued bytes.
    pub(crate) fn has_room_for(&self, msg: &Message) -> bool {
        self.queued_bytes.saturating_add(msg.held_bytes()) <= self.max_queued_bytes
    }

    /// Counts a message that joins or leaves the queue.
    pub(crate) fn count_queued(&mut self, msg: &Message, joins: bool) {
        if joins {
            self.queued_bytes += msg.held_bytes();
        } else {
            self.queued_bytes = self.queued_bytes.saturating_sub(msg.held_bytes());
        }
    }

    /// Recounts the queued bytes after messages left in bulk.
    pub(crate) fn recount_queued(&mut self) {
        self.queued_bytes = self
            .queue
            .iter()
            .map(|o| o.msg.held_bytes())
            .chain(self.offline_qos0.iter().map(|(m, _)| m.held_bytes()))
            .sum();
    }

    /// Changes the queue limit (messages already queued stay).
    pub fn set_max_queued(&mut self, max_queued: usize) {
        self.max_queued = max_queued;
    }

    /// Makes the next packet identifier allocated the one after `last`
    /// (after 65,535 comes 1); identifiers still in use are skipped as
    /// always. An adapter may start from a random point; tests use it to
    /// reach the wrap-around quickly.
    pub fn set_last_packet_id(&mut self, last: u16) {
        self.next_id = last;
    }

    /// Removes queued messages that expired, returning how many.
    pub fn drop_expired(&mut self, now: Instant) -> usize {
        let before = self.queued();
        let mut freed = alloc::vec::Vec::new();
        self.queue.retain(|o| {
            let keep = !o.msg.is_expired(now);
            if !keep {
                freed.push((o.id, o.msg.clone()));
            }
            keep
        });
        for (id, msg) in freed {
            self.release_id(id);
            self.record(|| SessionChange::Completed { id, msg: Some(msg) });
        }
        self.offline_qos0.retain(|(m, _)| !m.is_expired(now));
        self.recount_queued();
        before - self.queued()
    }

    /// Removes the oldest queued QoS 0 message, if any (a queue-full policy's
    /// first choice). Returns whether one was removed.
    pub fn drop_oldest_qos0(&mut self) -> bool {
        match self.offline_qos0.pop_front() {
            Some((m, _)) => {
                self.count_queued(&m, false);
                true
            }
            None => false,
        }
    }

    /// Removes the oldest queued message of any QoS. Returns whether one was removed.
    pub fn drop_oldest(&mut self) -> bool {
        if self.drop_oldest_qos0() {
            return true;
        }
        match self.queue.pop_front() {
            Some(o) => {
                self.count_queued(&o.msg, false);
                self.release_id(o.id);
                self.record(|| SessionChange::Completed {
                    id: o.id,
                    msg: Some(o.msg),
                });
                true
            }
            None => false,
        }
    }

    /// The next free packet identifier: a cyclic counter that skips identifiers
    /// still in use [MQTT-2.2.1-3]. `None` when all 65,535 are in use.
    pub(crate) fn alloc_id(&mut self) -> Option<PacketId> {
        if self.ids.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            let id = PacketId::new(self.next_id)?;
            if self.ids.insert(id) {
                return Some(id);
            }
        }
    }

    pub(crate) fn release_id(&mut self, id: PacketId) {
        self.ids.remove(id);
    }

    #[cfg(test)]
    pub(crate) fn id_in_use(&self, id: PacketId) -> bool {
        self.ids.contains(id)
    }

    /// Position of the in-flight entry with this identifier; acks usually
    /// arrive in order, so the search starts at the front.
    pub(crate) fn find_inflight(&self, id: PacketId) -> Option<usize> {
        self.inflight.iter().position(|e| e.id() == id)
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::TopicName;

    fn msg() -> Message {
        Message::new(TopicName::from_static("t"), "x", QoS::AtLeastOnce, false)
    }

    #[test]
    fn packet_ids_skip_those_in_use_and_wrap() {
        let mut s = Session::new(10);
        let a = s.alloc_id().unwrap();
        assert_eq!(a.get(), 1);
        s.next_id = u16::MAX - 1;
        assert_eq!(s.alloc_id().unwrap().get(), u16::MAX);
        // Wraps past 0 and skips 1, which is still in use.
        assert_eq!(s.alloc_id().unwrap().get(), 2);
        s.release_id(a);
        assert!(!s.id_in_use(a));
    }

    #[test]
    fn all_ids_in_use_is_reported_not_looped_on() {
        let mut s = Session::new(usize::MAX);
        for _ in 0..u16::MAX {
            assert!(s.alloc_id().is_some());
        }
        assert_eq!(s.alloc_id(), None);
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut s = Session::new(2);
        s.enqueue(msg(), DeliveryOptions::new(QoS::AtLeastOnce))
            .unwrap();
        s.enqueue(msg(), DeliveryOptions::new(QoS::AtMostOnce))
            .unwrap();
        assert_eq!(
            s.enqueue(msg(), DeliveryOptions::new(QoS::AtLeastOnce)),
            Err(DeliverError::QueueFull { limit: 2 })
        );
        assert_eq!(s.queued(), 2);
        assert!(s.drop_oldest_qos0());
        assert_eq!(s.queued(), 1);
    }

    #[test]
    fn expired_queued_messages_are_dropped_and_their_ids_freed() {
        let mut s = Session::new(10);
        let mut m = msg();
        m.props.expires_at = Some(Instant::from_millis(1000));
        s.enqueue(m, DeliveryOptions::new(QoS::AtLeastOnce))
            .unwrap();
        s.enqueue(msg(), DeliveryOptions::new(QoS::AtLeastOnce))
            .unwrap();
        assert_eq!(s.drop_expired(Instant::from_millis(999)), 0);
        assert_eq!(s.drop_expired(Instant::from_millis(1000)), 1);
        assert!(!s.id_in_use(PacketId::new(1).unwrap()));
        assert!(s.id_in_use(PacketId::new(2).unwrap()));
    }

    #[test]
    fn the_queued_bytes_limit_refuses_what_would_pass_it_and_frees_what_leaves() {
        let big = |n: usize| {
            Message::new(
                TopicName::from_static("t"),
                alloc::vec![0u8; n],
                QoS::AtLeastOnce,
                false,
            )
        };
        let mut s = Session::new(100);
        s.set_max_queued_bytes(250);
        // 1 topic byte + 100 payload bytes each.
        s.enqueue(big(100), DeliveryOptions::new(QoS::AtLeastOnce))
            .unwrap();
        s.enqueue(big(100), DeliveryOptions::new(QoS::AtMostOnce))
            .unwrap();
        assert_eq!(s.queued_bytes(), 202);
        assert!(matches!(
            s.enqueue(big(100), DeliveryOptions::new(QoS::AtLeastOnce)),
            Err(DeliverError::QueueFull { .. })
        ));
        assert_eq!((s.queued(), s.queued_bytes()), (2, 202));
        assert!(s.drop_oldest());
        assert_eq!(s.queued_bytes(), 101);
        s.enqueue(big(100), DeliveryOptions::new(QoS::AtLeastOnce))
            .unwrap();
        assert!(s.drop_oldest() && s.drop_oldest() && !s.drop_oldest());
        assert_eq!(s.queued_bytes(), 0);
    }
}
