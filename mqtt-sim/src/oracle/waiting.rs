//! Input the broker has read but not handled yet.
//!
//! Flow control pauses a publisher whose publish reaches a subscriber past
//! its high-water mark: the rest of its input waits in the core, in order,
//! and a publish that would reach such a subscriber waits unrouted, until
//! the subscriber drains or stalls (`mqtt-router`'s `throttle.rs`). A packet
//! that waits there has had no effect yet: it is not routed, retained or
//! acknowledged, and nothing after it in its connection's input is handled
//! before it. The broker handles it as if the network had delivered it at
//! that later moment, and MQTT lets it: a message is added to the sessions
//! with matching subscriptions when the server takes ownership of it
//! [MQTT-4.5.0-1], which for QoS 1/2 is when it answers with PUBACK/PUBREC
//! (sections 4.3.2, 4.3.3), and the broker answers only then. (What it did
//! on reading is the connection's own work, which depends on no waiting
//! packet: keep alive, topic aliases, packet identifiers, the expiry clock
//! of a message, which counts its wait in the server [MQTT-3.3.2-6], and
//! the answers to acknowledgements and PINGREQ.) So the model takes such a
//! packet when the broker takes it up ([`Broker::input_waiting`] going
//! down), not when it was read, and a subscription made in between is
//! rightly one the message is due to (seed 142).
//!
//! When one broker turn takes up the waiting input of several connections
//! (a subscriber drains and releases several publishers), the broker
//! handles the input that has waited longest first
//! ([`Broker::input_waiting_since`]), and so does the model: one
//! connection's packets can bear on another's (a SUBSCRIBE and a PUBLISH it
//! matches; seed 12143, when the broker resumed the last publisher held
//! first and the model went in connection order). Known limit: a publisher
//! resumed while others are being handled (one of them closes and so lets
//! go of what it held) is handled after them in the broker, and in the
//! order of its wait in the model.
//!
//! [`Broker::input_waiting`]: mqtt_router::broker::Broker::input_waiting
//! [`Broker::input_waiting_since`]: mqtt_router::broker::Broker::input_waiting_since

use std::collections::{BTreeMap, VecDeque};

use mqtt_router::broker::Broker;
use mqtt_router::Instant;
use mqtt_session::mqtt_codec::Packet;

use super::{trace, Oracle};
use crate::PeerId;

/// A packet read by the broker at an instant and not handled yet.
pub(crate) type Read = (Instant, Packet);

/// Per connection, the packets the broker read and keeps waiting, oldest
/// first (the broker's queue of waiting events, one per packet).
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    queues: BTreeMap<PeerId, VecDeque<Read>>,
    /// Per connection with packets waiting, when its wait began in the
    /// broker's count ([`Broker::input_waiting_since`]).
    since: BTreeMap<PeerId, u64>,
}

impl Waiting {
    /// How many packets of `peer` wait.
    pub(crate) fn len(&self, peer: PeerId) -> usize {
        self.queues.get(&peer).map_or(0, VecDeque::len)
    }

    /// `packet`, read at `at`, waits behind the others of `peer`.
    pub(crate) fn push(&mut self, peer: PeerId, at: Instant, packet: Packet) {
        self.queues.entry(peer).or_default().push_back((at, packet));
    }

    /// The packets of `peer` the broker has taken up now that `left` of
    /// them wait: the oldest, in order.
    pub(crate) fn taken(&mut self, peer: PeerId, left: usize) -> Vec<Read> {
        let Some(q) = self.queues.get_mut(&peer) else {
            return Vec::new();
        };
        let n = q.len().saturating_sub(left);
        let taken = q.drain(..n).collect();
        if q.is_empty() {
            self.queues.remove(&peer);
            self.since.remove(&peer);
        }
        taken
    }

    /// Notes when the wait of `peer`'s packets began (`None`: the broker
    /// has nothing of it waiting).
    pub(crate) fn began(&mut self, peer: PeerId, since: Option<u64>) {
        match since {
            Some(at) if self.queues.contains_key(&peer) => {
                self.since.insert(peer, at);
            }
            _ => {
                self.since.remove(&peer);
            }
        }
    }

    /// The connections with packets waiting, the one waiting longest first
    /// (as the broker resumes them), then in connection order.
    pub(crate) fn peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self.queues.keys().copied().collect();
        peers.sort_by_key(|p| (self.since.get(p).copied().unwrap_or(u64::MAX), *p));
        peers
    }

    /// The broker crashed: what waited was never handled.
    pub(crate) fn clear(&mut self) {
        self.queues.clear();
        self.since.clear();
    }
}

impl Oracle {
    /// How many events of `peer`'s input wait in the broker.
    pub(super) fn input_waiting(&self, peer: PeerId, core: &Broker) -> usize {
        self.conn_ids
            .get(&peer)
            .map_or(0, |&id| core.input_waiting(id))
    }

    /// Models what the broker took up of every connection's waiting input
    /// (after each of its turns: a subscriber's acknowledgement, a timer or
    /// a close lets paused publishers go on).
    pub(super) fn catch_up(&mut self, now: Instant, core: &Broker) {
        for peer in self.waiting.peers() {
            let left = self.input_waiting(peer, core);
            self.take_up(now, peer, left);
        }
        // A wait that went on, or ended and began again, in this turn.
        for peer in self.waiting.peers() {
            self.note_wait(peer, core);
        }
    }

    /// Notes when the broker's wait of `peer`'s input began.
    pub(super) fn note_wait(&mut self, peer: PeerId, core: &Broker) {
        let since = self
            .conn_ids
            .get(&peer)
            .and_then(|&id| core.input_waiting_since(id));
        self.waiting.began(peer, since);
    }

    /// Models the packets of `peer` the broker took up at `now`, now that
    /// `left` wait. A QoS 2 PUBLISH among them was new to the broker: it
    /// made an event (a resend of one it has makes none).
    pub(super) fn take_up(&mut self, now: Instant, peer: PeerId, left: usize) {
        for (read_at, packet) in self.waiting.taken(peer, left) {
            if self.trace {
                eprintln!(
                    "{:>9} peer {peer:>3} => broker takes up (read at {} ms) {}",
                    now.as_millis(),
                    read_at.as_millis(),
                    trace::packet(&packet)
                );
            }
            self.handle(now, read_at, peer, &packet, true);
        }
    }

    /// The broker closed `peer`'s connection: everything that waited was
    /// handled before (its end lets the waiting input through, in order).
    pub(super) fn flush(&mut self, now: Instant, peer: PeerId) {
        self.take_up(now, peer, 0);
    }

    /// The broker crashed: what waited in it was never handled.
    pub(super) fn forget_waiting(&mut self) {
        self.waiting.clear();
    }

    /// Models `packet` of `peer`, read at `read_at`, as the broker handles
    /// it at `now`; `fresh`: a PUBLISH the broker took as a new message.
    pub(super) fn handle(
        &mut self,
        now: Instant,
        read_at: Instant,
        peer: PeerId,
        packet: &Packet,
        fresh: bool,
    ) {
        match packet {
            Packet::Connect(c) => {
                // A takeover: the broker ends the connection it takes the
                // session from first, and what waited in it goes through
                // before the new connection has the session.
                let client = self.model.intern(c.client_id.as_str());
                let held = self.model.sessions.get(&client).and_then(|s| s.conn);
                if let Some(q) = held.filter(|q| *q != peer) {
                    self.flush(now, q);
                }
                self.on_connect(now, peer, c)
            }
            Packet::Publish(p) => self.on_publish((now, read_at), peer, p, fresh),
            Packet::Subscribe(s) => self.on_subscribe(now, peer, s),
            Packet::Unsubscribe(u) => self.on_unsubscribe(peer, u),
            Packet::Disconnect(x) => self.model.disconnect(peer, x.reason),
            Packet::PubRel(a) => self.model.pubrel(peer, a.id.get()),
            Packet::PingReq
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubComp(_)
            | Packet::Auth(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => {}
        }
    }
}

/// Whether the broker handles `packet` as an event of its connection's
/// input, which may wait, rather than in the connection itself (answered
/// at once, whatever waits).
pub(crate) fn is_input_event(packet: &Packet) -> bool {
    match packet {
        Packet::Connect(_)
        | Packet::Publish(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::Auth(_)
        | Packet::Disconnect(_) => true,
        Packet::PingReq
        | Packet::PubAck(_)
        | Packet::PubRec(_)
        | Packet::PubRel(_)
        | Packet::PubComp(_)
        | Packet::ConnAck(_)
        | Packet::SubAck(_)
        | Packet::UnsubAck(_)
        | Packet::PingResp => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the broker took up is handed back oldest first, and what still
    /// waits stays in order.
    #[test]
    fn taken_packets_come_oldest_first_and_the_rest_keep_waiting() {
        let mut w = Waiting::default();
        for ms in [1, 2, 3] {
            w.push(7, Instant::from_millis(ms), Packet::PingReq);
        }
        let taken = w.taken(7, 1);
        let at: Vec<u64> = taken.iter().map(|(at, _)| at.as_millis()).collect();
        assert_eq!(at, [1, 2]);
        assert_eq!(w.len(7), 1);
        assert_eq!(w.taken(7, 0)[0].0.as_millis(), 3);
        assert!(w.peers().is_empty(), "an empty queue is forgotten");
    }

    /// Connections are taken up in the order their waits began, not in
    /// connection order (seed 12143).
    #[test]
    fn the_connection_waiting_longest_comes_first() {
        let mut w = Waiting::default();
        for (peer, since) in [(3, 9), (5, 4), (4, 6)] {
            w.push(peer, Instant::from_millis(1), Packet::PingReq);
            w.began(peer, Some(since));
        }
        assert_eq!(w.peers(), [5, 4, 3]);
        w.taken(5, 0);
        w.push(5, Instant::from_millis(2), Packet::PingReq);
        w.began(5, Some(10));
        assert_eq!(w.peers(), [4, 3, 5], "a new wait comes last");
    }
}
