//! Flow control's publisher side: a publisher with an acknowledgement held
//! by a subscriber ([`super::flow`]) is throttled. Its input waits in the
//! core, in order ([`Throttle`]), and the adapter is told to stop reading
//! its socket ([`Broker::poll_reading`]) so that TCP slows it down; a
//! publish that would reach a subscriber already past its high-water mark
//! waits unrouted, first in its publisher's input.
//!
//! A client feeding its own subscription has its input wait but is still
//! read: unread, it could not acknowledge what it receives and would never
//! drain. Its waiting input is bounded ([`DEFERRED_EVENTS`],
//! [`DEFERRED_BYTES`]); past that it is not read either. Two clients
//! feeding each other can wait on each other: the stall time ends that.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cmp::Reverse;

use mqtt_session::{Message, ServerEvent};

use super::bridges::bridge_index;
use super::flow::Sink;
use super::{Broker, ConnId, SessionKey, Timer};
use crate::Instant;

/// Events of one client's input that may wait while it is still read.
pub(super) const DEFERRED_EVENTS: usize = 256;
/// Bytes (topics and payloads) of one client's input that may wait while
/// it is still read.
pub(super) const DEFERRED_BYTES: usize = 1024 * 1024;

/// One connection's side of flow control as a publisher.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    /// Its publishes held by subscribers (its own subscription included):
    /// while there are any, its input waits.
    held: u32,
    /// Of those, held by other subscribers: while there are any, its socket
    /// is not read either.
    held_by_others: u32,
    /// Events of its input not handled yet, in order.
    deferred: VecDeque<ServerEvent>,
    /// What the deferred events carry (see [`event_bytes`]).
    deferred_bytes: usize,
    /// Its input ended (`Closed` is among the deferred events): what waits
    /// goes through, throttled or not.
    pub(super) ending: bool,
    /// Listed for [`Broker::poll_reading`].
    announced: bool,
    /// When its waiting input began to wait, in the broker's count of
    /// waits ([`Throttles::waits`]): resumed publishers are handled oldest
    /// wait first.
    since: u64,
}

impl Throttle {
    /// Whether its input waits.
    pub(super) fn paused(&self) -> bool {
        self.held > 0
    }

    /// Events of its input read and not handled yet.
    pub(super) fn waiting(&self) -> usize {
        self.deferred.len()
    }

    /// Whether its socket should not be read.
    fn reading_stopped(&self) -> bool {
        self.held_by_others > 0 || self.over_limit()
    }

    fn over_limit(&self) -> bool {
        self.deferred.len() > DEFERRED_EVENTS || self.deferred_bytes > DEFERRED_BYTES
    }

    /// Queues `ev` (last, or first when it goes back), `wait` numbering
    /// the wait it begins if nothing waited; true when that put the waiting
    /// input over its limit.
    fn defer(&mut self, ev: ServerEvent, first: bool, wait: &mut u64) -> bool {
        let was = self.over_limit();
        if self.deferred.is_empty() {
            *wait += 1;
            self.since = *wait;
        }
        self.deferred_bytes += event_bytes(&ev);
        if first {
            self.deferred.push_front(ev);
        } else {
            self.deferred.push_back(ev);
        }
        !was && self.over_limit()
    }

    /// The first waiting event, and whether taking it brought the waiting
    /// input back under its limit.
    fn take(&mut self) -> (Option<ServerEvent>, bool) {
        let was = self.over_limit();
        let ev = self.deferred.pop_front();
        if let Some(ev) = &ev {
            self.deferred_bytes = self.deferred_bytes.saturating_sub(event_bytes(ev));
        }
        (ev, was && !self.over_limit())
    }
}

/// What a waiting event holds beyond its fixed size: a publish's topic and
/// payload.
fn event_bytes(ev: &ServerEvent) -> usize {
    match ev {
        ServerEvent::Publish { msg, .. } => msg.topic.as_str().len() + msg.payload.len(),
        ServerEvent::Connect(_)
        | ServerEvent::Subscribe { .. }
        | ServerEvent::Unsubscribe { .. }
        | ServerEvent::Auth { .. }
        | ServerEvent::Closed(_) => 0,
    }
}

/// The broker's side of throttled publishers.
#[derive(Debug, Default)]
pub(super) struct Throttles {
    /// Connections whose reading may have changed since the adapter last
    /// asked: each listed once, so the list is bounded by the connections
    /// even for a driver that never asks.
    changes: VecDeque<ConnId>,
    /// Publishers no longer held: their waiting input is handled next.
    resumed: Vec<ConnId>,
    /// Resumed publishers are being handled (resuming does not nest).
    resuming: bool,
    /// Subscribers holding publishes: while there are none, a publish goes
    /// straight to routing.
    pub(super) holding: usize,
    /// Waits begun so far: numbers each connection's wait
    /// ([`Throttle::since`]).
    waits: u64,
}

impl Broker {
    /// Connections whose socket the adapter should stop reading (`false`)
    /// or read again (`true`): a publisher is not read while flow control
    /// holds one of its publishes for another subscriber, so TCP slows it
    /// to the pace of the subscribers it feeds. Reading a connection that
    /// should not be read costs only memory ([`Broker::handle_packets`]
    /// still takes its packets, and they wait), so an adapter may act on
    /// this late.
    pub fn poll_reading(&mut self) -> Option<(ConnId, bool)> {
        while let Some(id) = self.throttles.changes.pop_front() {
            if let Some(c) = self.conns.get_mut(id) {
                c.throttle.announced = false;
                return Some((id, !c.throttle.reading_stopped()));
            }
        }
        None
    }

    /// Lists a connection whose reading may have changed for the adapter.
    fn announce(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if !c.throttle.announced {
            c.throttle.announced = true;
            self.throttles.changes.push_back(id);
        }
    }

    /// A publish of `publisher` is now held (`by_other`: by another
    /// connection or a bridge).
    pub(super) fn throttle(&mut self, publisher: ConnId, by_other: bool) {
        let Some(c) = self.conns.get_mut(publisher) else {
            return;
        };
        c.throttle.held += 1;
        if by_other {
            c.throttle.held_by_others += 1;
            if c.throttle.held_by_others == 1 {
                self.announce(publisher);
            }
        }
    }

    /// A held publish of `publisher` went; the last one resumes it.
    pub(super) fn unthrottle(&mut self, publisher: ConnId, by_other: bool) {
        let Some(c) = self.conns.get_mut(publisher) else {
            return;
        };
        let t = &mut c.throttle;
        t.held = t.held.saturating_sub(1);
        let read_again = by_other && {
            t.held_by_others = t.held_by_others.saturating_sub(1);
            t.held_by_others == 0
        };
        let resumed = t.held == 0;
        if read_again {
            self.announce(publisher);
        }
        if resumed {
            if self.throttles.resumed.is_empty() && !self.throttles.resuming {
                // Handled at once where the caller has the time
                // ([`Broker::run_resumed`]), else at the next turn.
                self.timers.push(Reverse((Instant::ZERO, Timer::Resumed)));
            }
            self.throttles.resumed.push(publisher);
        }
    }

    /// Handles the input that resumed publishers had waiting, the input
    /// that has waited longest first (publishers resumed meanwhile, after
    /// them): the publisher paused longest is not the one that waits
    /// longer still, and the order does not depend on the order in which
    /// the subscribers' held acknowledgements were kept.
    pub(super) fn run_resumed(&mut self, now: Instant) {
        if self.throttles.resuming {
            return;
        }
        self.throttles.resuming = true;
        while !self.throttles.resumed.is_empty() {
            let mut batch = core::mem::take(&mut self.throttles.resumed);
            batch.sort_by_key(|&id| self.input_waiting_since(id).unwrap_or(u64::MAX));
            for id in batch {
                self.drain(id, now);
            }
        }
        self.throttles.resuming = false;
    }

    /// Runs `f`, and the publishers it resumed only after it: one event's
    /// handling is not interleaved with other connections' input.
    pub(super) fn resuming_after(&mut self, now: Instant, f: impl FnOnce(&mut Self)) {
        let outer = core::mem::replace(&mut self.throttles.resuming, true);
        f(self);
        self.throttles.resuming = outer;
        if !outer {
            self.run_resumed(now);
        }
    }

    /// When connection `id`'s waiting input began to wait, counted in
    /// waits begun in the broker (a lower number waited longer); `None`
    /// when nothing of its input waits. When several paused publishers
    /// resume at once, their waiting input is handled in this order, so an
    /// observer that models the broker (the simulator's oracle) can take it
    /// up in the same order.
    pub fn input_waiting_since(&self, id: ConnId) -> Option<u64> {
        let t = &self.conns.get(id)?.throttle;
        (t.waiting() > 0).then_some(t.since)
    }

    /// The next event of a connection's input to handle: the waiting ones
    /// first; none while it is throttled, except that its end (a `Closed`
    /// event) lets everything before it through, in order.
    pub(super) fn next_event(&mut self, id: ConnId) -> Option<ServerEvent> {
        let c = self.conns.get_mut(id)?;
        let t = &mut c.throttle;
        let mut crossed = false;
        if t.paused() && !t.ending {
            while let Some(ev) = c.conn.poll_event() {
                let closed = matches!(ev, ServerEvent::Closed(_));
                crossed |= t.defer(ev, false, &mut self.throttles.waits);
                if closed {
                    t.ending = true;
                    break;
                }
            }
            if !t.ending {
                if crossed {
                    self.announce(id);
                }
                return None;
            }
        }
        let (ev, under) = t.take();
        if crossed || under {
            self.announce(id);
        }
        let c = self.conns.get_mut(id)?;
        ev.or_else(|| c.conn.poll_event())
    }

    /// A live subscriber past its high-water mark, other than the publisher
    /// itself, that a publish of `publisher` on `msg`'s topic would reach,
    /// if any: the publish then waits (not routed) until it drains, so that
    /// however many publishers feed it, its queue grows past the high-water
    /// mark by the one publish that found it below. Only looked for while
    /// some subscriber holds publishes, and never for a publisher whose
    /// input ended (what it sent is routed as it is).
    pub(super) fn congested_target(
        &mut self,
        publisher: ConnId,
        msg: &Message,
        now: Instant,
    ) -> Option<Sink> {
        if self.throttles.holding == 0 || !self.config.pause_publishers {
            return None;
        }
        let c = self.conns.get(publisher)?;
        if c.throttle.ending {
            return None;
        }
        let origin = c.session;
        let capacity = self.flow_capacity();
        let mut matches = core::mem::take(&mut self.matches);
        self.index.match_topic(&msg.topic, origin, &mut matches);
        let found = matches
            .subscribers()
            .chain(matches.shared())
            .filter_map(|d| self.congested_sink(d.client, capacity, now))
            .find(|sink| *sink != Sink::Conn(publisher));
        self.matches = matches;
        found
    }

    /// The subscriber under `key` if it is past its high-water mark and
    /// still draining.
    fn congested_sink(&self, key: SessionKey, capacity: usize, now: Instant) -> Option<Sink> {
        if let Some(index) = bridge_index(key) {
            let (id, b) = self.bridges.by_index(index)?;
            return b.congested(now).then_some(Sink::Bridge(id));
        }
        let cid = self.sessions.get(key as usize)?.as_ref()?.conn?;
        let c = self.conns.get(cid)?;
        c.flow.congested(capacity, now).then_some(Sink::Conn(cid))
    }

    /// A publish of `publisher` that would reach `sub`, congested: it goes
    /// back first in the publisher's input, which waits until `sub` drains
    /// or stalls.
    pub(super) fn wait_for(
        &mut self,
        sub: Sink,
        publisher: ConnId,
        event: ServerEvent,
        now: Instant,
    ) {
        let Some(c) = self.conns.get_mut(publisher) else {
            return;
        };
        if c.throttle.defer(event, true, &mut self.throttles.waits) {
            self.announce(publisher);
        }
        self.hold_ack(sub, publisher, None, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::PacketId;

    fn event() -> ServerEvent {
        ServerEvent::Unsubscribe {
            id: PacketId::new(1).unwrap(),
            filters: Vec::new(),
        }
    }

    /// A client's waiting input is bounded: past the limit its socket is
    /// no longer read, and below it again it is.
    #[test]
    fn waiting_input_past_its_limit_stops_the_reading() {
        let mut t = Throttle::default();
        let mut waits = 0;
        for _ in 0..DEFERRED_EVENTS {
            assert!(!t.defer(event(), false, &mut waits));
        }
        assert!(!t.reading_stopped());
        assert!(
            t.defer(event(), false, &mut waits),
            "one more crosses the limit"
        );
        assert!(t.reading_stopped());
        let (ev, under) = t.take();
        assert!(ev.is_some() && under, "back under the limit");
        assert!(!t.reading_stopped());
    }
}
