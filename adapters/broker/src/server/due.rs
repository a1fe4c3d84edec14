//! The commands the core task has received and not handled yet, in two
//! lanes: acknowledgements first, then everything else.
//!
//! A subscriber's acknowledgements (PUBACK, PUBREC, PUBCOMP) and PINGREQs
//! are what lets it make progress; behind a flood of publishers' reads
//! (each up to 64 KiB of PUBLISHes, up to the core's input budget) they
//! waited for every read before them, and flow control took a subscriber
//! that read as fast as it could for stalled (measured on a debug build
//! under load: its 100 PUBACKs waited 5.3 s behind 55 publishers' reads).
//! Taking them first changes nothing a client can tell apart: they answer
//! the broker's own flows, which no other packet of the connection
//! depends on, and they take effect on no other connection's messages.
//! PUBREL stays in order with the PUBLISH it releases [MQTT-4.3.3], so a
//! read holding anything else keeps its place. With both lanes waiting
//! they alternate, so the lane cannot be used to hold others back.

use std::collections::VecDeque;

use mqtt_codec::Packet;

use super::ToCore;

/// Commands waiting for the core, acknowledgements first.
#[derive(Default)]
pub(super) struct Due {
    acks: VecDeque<ToCore>,
    rest: VecDeque<ToCore>,
    /// The last command taken was an acknowledgement: with both lanes
    /// waiting, they alternate, so clients flooding PINGREQs cannot keep
    /// the others' reads waiting.
    took_ack: bool,
}

impl Due {
    /// Queues `cmd` in its lane, after the commands of that lane.
    pub(super) fn push(&mut self, cmd: ToCore) {
        if only_acknowledgements(&cmd) {
            self.acks.push_back(cmd);
        } else {
            self.rest.push_back(cmd);
        }
    }

    /// The next command: the oldest acknowledgement, else the oldest other;
    /// with both waiting, every other command is an acknowledgement.
    pub(super) fn pop(&mut self) -> Option<ToCore> {
        let ack_turn = !self.took_ack || self.rest.is_empty();
        let cmd = if ack_turn {
            self.acks.pop_front()
        } else {
            None
        };
        self.took_ack = cmd.is_some();
        cmd.or_else(|| self.rest.pop_front())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.acks.is_empty() && self.rest.is_empty()
    }
}

/// A read that holds only acknowledgements of the broker's flows and
/// PINGREQs (and nothing broken or partial).
fn only_acknowledgements(cmd: &ToCore) -> bool {
    match cmd {
        ToCore::Packets {
            packets,
            error: None,
            partial: None,
            ..
        } => acknowledgements_only(packets),
        ToCore::Packets { .. } | ToCore::Open { .. } | ToCore::Eof(_) | ToCore::Writable(_) => {
            false
        }
    }
}

/// Whether `packets` are all acknowledgements of the broker's flows or
/// PINGREQs (and there is at least one).
pub(super) fn acknowledgements_only(packets: &[(Packet, usize)]) -> bool {
    !packets.is_empty()
        && packets.iter().all(|(p, _)| {
            matches!(
                p,
                Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) | Packet::PingReq
            )
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mqtt_codec::{Ack, PacketId, Publish};
    use mqtt_router::broker::{Broker, BrokerConfig, ConnId, PeerInfo};
    use tokio::sync::Semaphore;

    use super::*;
    use crate::server::order::Stamp;

    fn ack(id: u16) -> Packet {
        Packet::PubAck(Ack::new(PacketId::new(id).unwrap()))
    }

    fn publish() -> Packet {
        let topic = mqtt_codec::TopicName::try_from("t").unwrap();
        Packet::Publish(Publish::new(topic, bytes::Bytes::from_static(b"m")))
    }

    fn read(id: ConnId, packets: Vec<Packet>) -> ToCore {
        ToCore::Packets {
            id,
            packets: packets.into_iter().map(|p| (p, 4)).collect(),
            error: None,
            partial: None,
            _permit: Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap(),
            stamp: Stamp(0),
        }
    }

    fn count(cmd: &ToCore) -> usize {
        match cmd {
            ToCore::Packets { packets, .. } => packets.len(),
            ToCore::Open { .. } | ToCore::Eof(_) | ToCore::Writable(_) => 0,
        }
    }

    /// A subscriber's PUBACKs read after a publisher's PUBLISHes are
    /// handled first; each lane keeps its order.
    #[test]
    fn acknowledgements_go_before_the_reads_that_were_waiting() {
        let mut broker = Broker::new(BrokerConfig::default());
        let id = broker
            .open(mqtt_session::Instant::from_millis(0), PeerInfo::default())
            .unwrap();
        let mut due = Due::default();
        due.push(read(id, vec![publish(), publish(), publish()]));
        due.push(read(id, vec![publish()]));
        due.push(read(id, vec![ack(1), Packet::PingReq]));
        due.push(read(id, vec![ack(2)]));
        let order: Vec<usize> = std::iter::from_fn(|| due.pop())
            .map(|c| count(&c))
            .collect();
        assert_eq!(
            order,
            [2, 3, 1, 1],
            "an ack first, then the lanes alternate"
        );
        assert!(due.is_empty());
    }

    /// However many acknowledgements wait, the other reads are taken every
    /// other command.
    #[test]
    fn a_flood_of_pingreqs_does_not_keep_other_reads_waiting() {
        let mut broker = Broker::new(BrokerConfig::default());
        let id = broker
            .open(mqtt_session::Instant::from_millis(0), PeerInfo::default())
            .unwrap();
        let mut due = Due::default();
        for _ in 0..100 {
            due.push(read(id, vec![Packet::PingReq]));
        }
        due.push(read(id, vec![publish(), publish()]));
        due.push(read(id, vec![publish(), publish()]));
        let first: Vec<usize> = (0..4)
            .filter_map(|_| due.pop())
            .map(|c| count(&c))
            .collect();
        assert_eq!(first, [1, 2, 1, 2]);
        let rest = std::iter::from_fn(|| due.pop()).count();
        assert_eq!(rest, 98, "the acknowledgements left, then nothing");
    }

    /// A PUBREL releases a PUBLISH of the same client, and anything mixed
    /// with other packets keeps its place.
    #[test]
    fn a_pubrel_or_a_mixed_read_keeps_its_place() {
        let rel = Packet::PubRel(Ack::new(PacketId::new(1).unwrap()));
        assert!(!acknowledgements_only(&[(rel, 4)]));
        assert!(!acknowledgements_only(&[(ack(1), 4), (publish(), 9)]));
        assert!(!acknowledgements_only(&[]));
        assert!(acknowledgements_only(&[(ack(1), 4), (Packet::PingReq, 2)]));
    }
}
