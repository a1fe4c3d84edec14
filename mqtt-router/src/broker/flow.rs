//! Flow control: publishers slowed to the pace of the subscribers they
//! feed, by holding their acknowledgements while a subscriber drains.

use core::cmp::Reverse;
use core::time::Duration;

use mqtt_codec::{PacketId, ReasonCode};
use mqtt_session::Session;

use super::{Broker, ConnId, Policy, Timer};
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

impl<P: Policy> Broker<P> {
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
        let low = self.flow_capacity() / 4;
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        let backlog = c.conn.session().map_or(0, Session::queued);
        // Progress: draining, or not behind at all.
        if backlog < c.backlog || backlog <= low {
            c.progress_at = now;
        }
        c.backlog = backlog;
        if !c.held_acks.is_empty() && (backlog <= low || c.closed) {
            self.release_acks(id);
        }
    }

    pub(super) fn flow_capacity(&self) -> usize {
        flow_capacity(self.config.server.limits.max_queued)
    }

    pub(super) fn hold_ack(&mut self, sub: ConnId, publisher: ConnId, pid: PacketId, now: Instant) {
        let Some(c) = self.conns.get_mut(sub) else {
            return;
        };
        if c.held_acks.is_empty() {
            let at = c.progress_at.max(now).saturating_add(STALL);
            self.timers.push(Reverse((at, Timer::Stalled(sub))));
        }
        if let Some(c) = self.conns.get_mut(sub) {
            c.held_acks.push((publisher, pid));
        }
        self.stats.acks_held += 1;
    }

    pub(super) fn release_acks(&mut self, sub: ConnId) {
        let Some(c) = self.conns.get_mut(sub) else {
            return;
        };
        for (publisher, pid) in core::mem::take(&mut c.held_acks) {
            if let Some(p) = self.conns.get_mut(publisher) {
                let _ = p.conn.ack(pid, ReasonCode::SUCCESS);
                self.note_change(publisher);
            }
        }
    }
}
