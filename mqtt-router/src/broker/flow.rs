//! Flow control: publishers slowed to the pace of the subscribers they
//! feed, by holding their acknowledgements while a subscriber drains, and
//! by not taking anything more from a publisher while one of its
//! acknowledgements is held (`throttle.rs`): its events wait in the core and
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

use alloc::vec::Vec;
use core::cmp::Reverse;
use core::time::Duration;

use mqtt_codec::{PacketId, ReasonCode};
use mqtt_session::Session;

use super::{BridgeId, Broker, ConnId, Timer};
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

impl Broker {
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
        if self.config.pause_publishers {
            self.throttle(publisher, sub != Sink::Conn(publisher));
        }
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
        self.send_acks(sub, held);
    }

    /// Acknowledges each `(publisher, pid)` that `sub` held with success,
    /// for publishers still connected, and resumes them.
    pub(super) fn send_acks(&mut self, sub: Sink, held: Vec<(ConnId, Option<PacketId>)>) {
        for (publisher, pid) in held {
            if let Some(p) = self.conns.get_mut(publisher) {
                if let Some(pid) = pid {
                    let _ = p.conn.ack(pid, ReasonCode::SUCCESS);
                }
                if self.config.pause_publishers {
                    self.unthrottle(publisher, sub != Sink::Conn(publisher));
                }
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
