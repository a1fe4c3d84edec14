//! Flow control: publishers slowed to the pace of the subscribers they
//! feed, by holding their acknowledgements while a subscriber drains. A
//! subscriber here is a client connection or a bridge ([`Sink`]); both keep
//! a [`Flow`].

use alloc::vec::Vec;
use core::cmp::Reverse;
use core::time::Duration;

use mqtt_codec::{PacketId, ReasonCode};
use mqtt_session::Session;

use super::{BridgeId, Broker, ConnId, Timer};
use crate::Instant;

/// How long a subscriber past its high-water mark may go without taking any
/// message before it counts as stalled and stops holding publishers back.
pub(super) const STALL: Duration = Duration::from_secs(1);

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
    pub(super) held_acks: Vec<(ConnId, PacketId)>,
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
    /// stalls; the first one held arms the stall timer.
    pub(super) fn hold_ack(&mut self, sub: Sink, publisher: ConnId, pid: PacketId, now: Instant) {
        let Some(flow) = self.flow_mut(sub) else {
            return;
        };
        let first = flow.held_acks.is_empty();
        flow.held_acks.push((publisher, pid));
        let at = flow.progress_at.max(now).saturating_add(STALL);
        if first {
            self.arm_stall_timer(sub, at);
        }
        self.stats.acks_held += 1;
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
        self.send_acks(held);
    }

    /// Acknowledges each `(publisher, pid)` with success, for publishers
    /// still connected.
    pub(super) fn send_acks(&mut self, held: Vec<(ConnId, PacketId)>) {
        for (publisher, pid) in held {
            if let Some(p) = self.conns.get_mut(publisher) {
                let _ = p.conn.ack(pid, ReasonCode::SUCCESS);
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
            self.release_acks(sub);
        } else if !flow.held_acks.is_empty() {
            let at = flow.stalled_at();
            self.arm_stall_timer(sub, at);
        }
    }
}
