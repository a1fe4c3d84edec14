//! Flow control: publishers slowed to the pace of the subscribers they
//! feed, by holding their acknowledgements while a subscriber drains, and
//! by not taking anything more from a publisher while one of its
//! acknowledgements is held ([`Throttle`]): its events wait in the core and
//! the adapter stops reading its socket ([`Broker::poll_reading`]), so TCP
//! slows it down too. A subscriber here is a client connection or a bridge
//! ([`Sink`]); both keep a [`Flow`].
//!
//! Holding acknowledgements alone did not hold: a 3.1.1 publisher has no
//! Receive Maximum and does not wait for them, and eight 5.0 publishers
//! with a window of 100 each overrun the headroom between the high-water
//! mark and the queue limit (500 at the defaults), so a subscriber that read
//! as fast as it could still lost a fifth of what its publishers were told
//! was delivered. Now a publisher is paused at its first held
//! acknowledgement, and a publish that would reach a subscriber already
//! past its high-water mark is not routed at all until it drains (it waits
//! first in its publisher's input), so a live subscriber's queue grows past
//! the high-water mark by one message, however many publishers feed it.
//! Only a subscriber that makes no progress for [`STALL`] stops holding
//! publishers back: its queue's policy then applies (counted in
//! `Stats::subscribers_stalled` and `messages_dropped`).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::time::Duration;

use mqtt_codec::{PacketId, ReasonCode};
use mqtt_session::{Message, ServerEvent, Session};

use super::bridges::bridge_index;
use super::{BridgeId, Broker, ConnId, Policy, SessionKey, Timer};
use crate::Instant;

/// How long a subscriber past its high-water mark may go without taking any
/// message before it counts as stalled and stops holding publishers back.
/// Five seconds, not one: a subscriber's acknowledgements reach the core
/// behind whatever input was read before its publishers were paused (the
/// adapter's input budget), and with one second a subscriber reading as
/// fast as it could was taken for stalled under a flood.
pub(super) const STALL: Duration = Duration::from_secs(5);

/// The queue that flow control keeps a subscriber within: the configured
/// limit, but never more than half the packet identifiers, since every QoS
/// 1/2 message queued for a session holds one (65,535 at most), so the
/// publishers' unacknowledged windows still fit after the high-water mark.
pub(super) fn flow_capacity(max_queued: usize) -> usize {
    max_queued.min(32_768)
}

/// A subscriber that can hold publishers' acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sink {
    /// A connected client's session.
    Conn(ConnId),
    /// A bridge: its queue in the core plus what its driver has in flight.
    Bridge(BridgeId),
}

/// One subscriber's side of flow control.
#[derive(Debug)]
pub(super) struct Flow {
    /// Acknowledgements of publishes that reached this subscriber while it
    /// was past its high-water mark, held until it drains or stalls. See
    /// [`Broker::flow_control`].
    /// An entry without a packet identifier is a publish that was not
    /// routed at all: it waits, first in its publisher's input.
    pub(super) held_acks: Vec<(ConnId, Option<PacketId>)>,
    /// Messages waiting for this subscriber when last looked at, and when
    /// that number last went down: a subscriber that drains is slow, one
    /// that does not is stalled and does not hold publishers back.
    backlog: usize,
    progress_at: Instant,
}

impl Flow {
    pub(super) fn new(now: Instant) -> Flow {
        Flow {
            held_acks: Vec::new(),
            backlog: 0,
            progress_at: now,
        }
    }

    /// Notes that `backlog` messages wait, out of `capacity`: progress when
    /// the number went down, or is at or below the low-water mark.
    pub(super) fn observe(&mut self, backlog: usize, capacity: usize, now: Instant) {
        if backlog < self.backlog || backlog <= capacity / 4 {
            self.progress_at = now;
        }
        self.backlog = backlog;
    }

    /// Past the high-water mark and still draining: a publisher's
    /// acknowledgement waits for it.
    pub(super) fn congested(&self, capacity: usize, now: Instant) -> bool {
        self.backlog > capacity / 2 && !self.stalled(now)
    }

    /// Down to the low-water mark: held acknowledgements may go.
    pub(super) fn drained(&self, capacity: usize) -> bool {
        self.backlog <= capacity / 4
    }

    /// No progress for [`STALL`].
    pub(super) fn stalled(&self, now: Instant) -> bool {
        now >= self.stalled_at()
    }

    /// When it counts as stalled if it makes no progress until then.
    pub(super) fn stalled_at(&self) -> Instant {
        self.progress_at.saturating_add(STALL)
    }
}

/// One connection's side of flow control as a publisher: while any of its
/// acknowledgements is held, what it sent waits here and its socket is not
/// read.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    /// Its acknowledgements held by subscribers.
    held: u32,
    /// Events of its input not handled yet, in order: they come after a
    /// publish whose acknowledgement is held.
    deferred: VecDeque<ServerEvent>,
    /// Its input ended (`Closed` is among the deferred events): what waits
    /// goes through, paused or not.
    ending: bool,
    /// Listed for [`Broker::poll_reading`].
    announced: bool,
}

impl Throttle {
    /// Whether its input waits.
    pub(super) fn paused(&self) -> bool {
        self.held > 0
    }
}

/// The broker's side of throttled publishers.
#[derive(Debug, Default)]
pub(super) struct Throttles {
    /// Connections whose reading changed (stopped or resumed) since the
    /// adapter last asked: each listed once, so the list is bounded by the
    /// connections even for a driver that never asks.
    changes: VecDeque<ConnId>,
    /// Publishers whose last held acknowledgement went: their deferred
    /// input is handled next.
    resumed: Vec<ConnId>,
    /// Resumed publishers are being handled (resuming does not nest).
    resuming: bool,
    /// Subscribers holding acknowledgements: while there are none, a
    /// publish goes straight to routing.
    holding: usize,
}

impl<P: Policy> Broker<P> {
    /// Connections whose socket the adapter should stop reading (`false`)
    /// or read again (`true`), in order: a publisher is not read while
    /// flow control holds one of its acknowledgements, so TCP slows it to
    /// the pace of the subscribers it feeds. Reading a connection that is
    /// paused costs only memory ([`Broker::handle_packets`] still takes its
    /// packets, and they wait), so an adapter may act on this late.
    pub fn poll_reading(&mut self) -> Option<(ConnId, bool)> {
        while let Some(id) = self.throttles.changes.pop_front() {
            if let Some(c) = self.conns.get_mut(id) {
                c.throttle.announced = false;
                return Some((id, !c.throttle.paused()));
            }
        }
        None
    }

    /// Lists a publisher whose reading changed for the adapter.
    fn announce(&mut self, publisher: ConnId) {
        let Some(c) = self.conns.get_mut(publisher) else {
            return;
        };
        if !c.throttle.announced {
            c.throttle.announced = true;
            self.throttles.changes.push_back(publisher);
        }
    }

    /// A publisher's acknowledgement is now held: the first one pauses it.
    fn throttle(&mut self, publisher: ConnId) {
        let Some(c) = self.conns.get_mut(publisher) else {
            return;
        };
        c.throttle.held += 1;
        if c.throttle.held == 1 {
            self.announce(publisher);
        }
    }

    /// A publisher's held acknowledgement went: the last one resumes it.
    fn unthrottle(&mut self, publisher: ConnId) {
        let Some(c) = self.conns.get_mut(publisher) else {
            return;
        };
        c.throttle.held = c.throttle.held.saturating_sub(1);
        if c.throttle.held == 0 {
            self.announce(publisher);
            if self.throttles.resumed.is_empty() && !self.throttles.resuming {
                // Handled at once where the caller has the time
                // ([`Broker::run_resumed`]), else at the next turn.
                self.timers.push(Reverse((Instant::ZERO, Timer::Resumed)));
            }
            self.throttles.resumed.push(publisher);
        }
    }

    /// Handles the input that resumed publishers had waiting.
    pub(super) fn run_resumed(&mut self, now: Instant) {
        if self.throttles.resuming {
            return;
        }
        self.throttles.resuming = true;
        while let Some(id) = self.throttles.resumed.pop() {
            self.drain(id, now);
        }
        self.throttles.resuming = false;
    }

    /// The next event of a connection's input to handle: the deferred ones
    /// first; none while it is paused, except that its end (a `Closed`
    /// event) lets everything before it through, in order.
    pub(super) fn next_event(&mut self, id: ConnId) -> Option<ServerEvent> {
        let c = self.conns.get_mut(id)?;
        let t = &mut c.throttle;
        if t.paused() && !t.ending {
            while let Some(ev) = c.conn.poll_event() {
                t.ending = matches!(ev, ServerEvent::Closed(_));
                t.deferred.push_back(ev);
                if t.ending {
                    break;
                }
            }
            if !t.ending {
                return None;
            }
        }
        t.deferred.pop_front().or_else(|| c.conn.poll_event())
    }

    /// Flow control: a publish that reaches a subscriber whose queue is past
    /// half its limit (`limits.max_queued`) is acknowledged only once that
    /// subscriber has drained below a quarter, so publishers slow down to
    /// the pace of the subscribers they feed instead of overflowing their
    /// queues (nothing accepted at QoS 1/2 is dropped for a subscriber that
    /// keeps up eventually). A subscriber that takes nothing for [`STALL`]
    /// counts as stalled: its held acknowledgements go out, it holds no one
    /// back any more, and its queue sheds load by the queue-full policy, so a
    /// subscriber that reads nothing never stalls the others. Each publisher
    /// has at most its Receive Maximum (or in-flight window) of publishes
    /// unacknowledged, so what is held is bounded.
    pub(super) fn flow_control(&mut self, id: ConnId, now: Instant) {
        let capacity = self.flow_capacity();
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let backlog = c.conn.session().map_or(0, Session::queued);
        c.flow.observe(backlog, capacity, now);
        if !c.flow.held_acks.is_empty() && (c.flow.drained(capacity) || c.closed) {
            self.release_acks(Sink::Conn(id));
            self.run_resumed(now);
        }
    }

    pub(super) fn flow_capacity(&self) -> usize {
        flow_capacity(self.config.server.limits.max_queued)
    }

    /// The flow control state of a subscriber, if it is still there.
    fn flow_mut(&mut self, sub: Sink) -> Option<&mut Flow> {
        match sub {
            Sink::Conn(id) => self.conns.get_mut(id).map(|c| &mut c.flow),
            Sink::Bridge(id) => self.bridges.get_mut(id).map(|b| &mut b.flow),
        }
    }

    /// Holds `publisher`'s acknowledgement of `pid` until `sub` drains or
    /// stalls (without `pid`: only pauses the publisher until then); the
    /// first one held arms the stall timer.
    pub(super) fn hold_ack(
        &mut self,
        sub: Sink,
        publisher: ConnId,
        pid: Option<PacketId>,
        now: Instant,
    ) {
        let Some(flow) = self.flow_mut(sub) else {
            return;
        };
        let first = flow.held_acks.is_empty();
        flow.held_acks.push((publisher, pid));
        let at = flow.progress_at.max(now).saturating_add(STALL);
        if first {
            self.throttles.holding += 1;
            self.arm_stall_timer(sub, at);
        }
        self.throttle(publisher);
        if pid.is_some() {
            self.stats.acks_held += 1;
        }
    }

    /// A subscriber's held acknowledgements are about to go.
    pub(super) fn forget_holder(&mut self, flow: &Flow) {
        if !flow.held_acks.is_empty() {
            self.throttles.holding = self.throttles.holding.saturating_sub(1);
        }
    }

    /// A live subscriber past its high-water mark that a publish of
    /// `publisher` on `msg`'s topic would reach, if any: the publish then
    /// waits (not routed) until it drains, so that however many publishers
    /// feed it, its queue grows past the high-water mark by at most the
    /// one publish that found it below. Only looked for while some
    /// subscriber holds acknowledgements, and never for a publisher whose
    /// input ended (what it sent is routed as it is).
    pub(super) fn congested_target(
        &mut self,
        publisher: ConnId,
        msg: &Message,
        now: Instant,
    ) -> Option<Sink> {
        if self.throttles.holding == 0 {
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
            .find_map(|d| self.congested_sink(d.client, capacity, now));
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
        c.throttle.deferred.push_front(event);
        self.hold_ack(sub, publisher, None, now);
    }

    pub(super) fn arm_stall_timer(&mut self, sub: Sink, at: Instant) {
        let timer = match sub {
            Sink::Conn(id) => Timer::Stalled(id),
            Sink::Bridge(id) => Timer::BridgeStalled(id),
        };
        self.timers.push(Reverse((at, timer)));
    }

    /// Sends every acknowledgement `sub` holds.
    pub(super) fn release_acks(&mut self, sub: Sink) {
        let Some(flow) = self.flow_mut(sub) else {
            return;
        };
        let held = core::mem::take(&mut flow.held_acks);
        if !held.is_empty() {
            self.throttles.holding = self.throttles.holding.saturating_sub(1);
        }
        self.send_acks(held);
    }

    /// Acknowledges each `(publisher, pid)` with success, for publishers
    /// still connected.
    pub(super) fn send_acks(&mut self, held: Vec<(ConnId, Option<PacketId>)>) {
        for (publisher, pid) in held {
            if let Some(p) = self.conns.get_mut(publisher) {
                if let Some(pid) = pid {
                    let _ = p.conn.ack(pid, ReasonCode::SUCCESS);
                }
                self.unthrottle(publisher);
                self.note_change(publisher);
            }
        }
    }

    /// A subscriber holding acknowledgements: released when it has made no
    /// progress for [`STALL`], looked at again later otherwise.
    pub(super) fn stall_timer(&mut self, sub: Sink, now: Instant) {
        let Some(flow) = self.flow_mut(sub) else {
            return;
        };
        if flow.stalled(now) {
            if !flow.held_acks.is_empty() {
                // Counted for `$SYS` and the adapter's log: from here its
                // queue's policy applies to what its publishers send.
                self.stats.subscribers_stalled += 1;
            }
            self.release_acks(sub);
            self.run_resumed(now);
        } else if !flow.held_acks.is_empty() {
            let at = flow.stalled_at();
            self.arm_stall_timer(sub, at);
        }
    }
}
