//! A bridge's queue: messages routed to it that its driver has not taken
//! yet, in routing order, with the queued QoS 0 messages findable at once
//! (the queue-full policy drops those first).

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use mqtt_codec::QoS;
use mqtt_session::Message;

/// One message for a bridge: the shared message and this delivery's QoS
/// and RETAIN flag, numbered in routing order.
#[derive(Debug, Clone)]
pub(super) struct Queued {
    /// Routing order within the bridge; also the token of the message
    /// while it is in flight.
    pub(super) seq: u64,
    pub(super) message: Arc<Message>,
    pub(super) qos: QoS,
    pub(super) retain: bool,
}

/// Two queues by QoS, merged by sequence number when taken: the oldest
/// QoS 0 message is at hand without a scan, whatever lies before it.
#[derive(Debug, Default)]
pub(super) struct Queue {
    qos0: VecDeque<Queued>,
    qos12: VecDeque<Queued>,
}

impl Queue {
    pub(super) fn len(&self) -> usize {
        self.qos0.len() + self.qos12.len()
    }

    fn side(&mut self, qos: QoS) -> &mut VecDeque<Queued> {
        match qos {
            QoS::AtMostOnce => &mut self.qos0,
            QoS::AtLeastOnce | QoS::ExactlyOnce => &mut self.qos12,
        }
    }

    /// Appends a message numbered after everything queued.
    pub(super) fn push(&mut self, q: Queued) {
        self.side(q.qos).push_back(q);
    }

    /// Takes the oldest message of either QoS.
    pub(super) fn pop_front(&mut self) -> Option<Queued> {
        let older_qos0 = match (self.qos0.front(), self.qos12.front()) {
            (Some(a), Some(b)) => a.seq < b.seq,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if older_qos0 {
            self.qos0.pop_front()
        } else {
            self.qos12.pop_front()
        }
    }

    /// Drops the oldest QoS 0 message; whether there was one.
    pub(super) fn drop_oldest_qos0(&mut self) -> bool {
        self.qos0.pop_front().is_some()
    }

    /// Puts back a message taken earlier, in its place by sequence number:
    /// a message sent again keeps its order among those still waiting.
    pub(super) fn requeue(&mut self, q: Queued) {
        let side = self.side(q.qos);
        let at = side.partition_point(|e| e.seq < q.seq);
        side.insert(at, q);
    }
}

impl super::super::config::MakeRoom for Queue {
    fn drop_oldest_qos0(&mut self) -> bool {
        Queue::drop_oldest_qos0(self)
    }

    fn drop_oldest(&mut self) -> bool {
        self.pop_front().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use mqtt_codec::TopicName;

    fn q(seq: u64, qos: QoS) -> Queued {
        let m = Message::new(TopicName::from_static("t"), "", qos, false);
        Queued {
            seq,
            message: Arc::new(m),
            qos,
            retain: false,
        }
    }

    fn drain(queue: &mut Queue) -> Vec<u64> {
        core::iter::from_fn(|| queue.pop_front().map(|q| q.seq)).collect()
    }

    #[test]
    fn messages_leave_in_routing_order_whatever_their_qos() {
        let mut queue = Queue::default();
        for (seq, qos) in [
            (1, QoS::AtMostOnce),
            (2, QoS::AtLeastOnce),
            (3, QoS::AtMostOnce),
        ] {
            queue.push(q(seq, qos));
        }
        queue.push(q(4, QoS::ExactlyOnce));
        assert_eq!(queue.len(), 4);
        assert_eq!(drain(&mut queue), [1, 2, 3, 4]);
    }

    #[test]
    fn the_oldest_qos_0_message_goes_first_when_room_is_needed() {
        let mut queue = Queue::default();
        queue.push(q(1, QoS::AtLeastOnce));
        queue.push(q(2, QoS::AtMostOnce));
        queue.push(q(3, QoS::AtMostOnce));
        assert!(queue.drop_oldest_qos0());
        assert_eq!(drain(&mut queue), [1, 3]);
        assert!(!queue.drop_oldest_qos0());
    }

    #[test]
    fn a_message_sent_again_takes_its_old_place() {
        let mut queue = Queue::default();
        queue.push(q(5, QoS::AtLeastOnce));
        queue.push(q(6, QoS::AtMostOnce));
        queue.requeue(q(3, QoS::AtLeastOnce));
        queue.requeue(q(1, QoS::AtLeastOnce));
        queue.requeue(q(2, QoS::AtMostOnce));
        assert_eq!(drain(&mut queue), [1, 2, 3, 5, 6]);
    }
}
