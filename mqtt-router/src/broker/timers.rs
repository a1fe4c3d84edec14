//! The timer heap: connection deadlines, stalled subscribers (connections
//! and bridges), session expiry and will delays, and `$SYS` publication.

use core::cmp::Reverse;

use super::flow::Sink;
use super::{BridgeId, Broker, ConnId, SessionKey};
use crate::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A connection's own deadline.
    Conn(ConnId),
    /// Held acknowledgements of a subscriber that made no progress since.
    Stalled(ConnId),
    /// The same, for a bridge.
    BridgeStalled(BridgeId),
    /// A detached session's expiry or its will's delay (stale once the
    /// session's generation moved on).
    Session(SessionKey, u32),
    /// `$SYS` publication.
    Sys,
    /// Publishers resumed where no clock reading was at hand (a closed
    /// bridge or connection released their acknowledgements): queued as
    /// due at once, so their waiting input is handled at the next turn.
    Resumed,
}

impl Broker {
    /// Acts on every deadline that has passed: connection timers, wills,
    /// session expiry and `$SYS` publication.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.replay_turn(now);
        while let Some(&Reverse((at, timer))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Conn(id) => self.connection_timer(id, at, now),
                Timer::Session(key, generation) => self.session_timer(key, generation, at, now),
                Timer::Stalled(sub) => self.stall_timer(Sink::Conn(sub), now),
                Timer::BridgeStalled(sub) => self.stall_timer(Sink::Bridge(sub), now),
                Timer::Sys => self.sys_timer(at, now),
                Timer::Resumed => self.run_resumed(now),
            }
        }
    }

    /// A connection's deadline (keep alive, CONNECT timeout, ...), if the
    /// entry fired is still its live one.
    fn connection_timer(&mut self, id: ConnId, at: Instant, now: Instant) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.timer_at != Some(at) {
            return;
        }
        c.timer_at = None;
        // Compared with the entry's own instant, not `now`: when deadlines
        // are acted on late (a late call, a clock that jumped), a deadline
        // that moved later since this entry was queued (keep alive after
        // each read) is queued again at its real instant, so it is acted on
        // in its turn, after the session deadlines that fall before it.
        if c.conn.poll_timeout().is_some_and(|due| due <= at) {
            c.conn.handle_timeout(now);
            self.drain(id, now);
        } else {
            self.rearm(id);
        }
    }

    /// `$SYS` is due: published, and the next publication queued.
    fn sys_timer(&mut self, at: Instant, now: Instant) {
        if self.sys_at != Some(at) {
            return;
        }
        self.publish_sys(now);
        if let Some(every) = self.config.sys_interval {
            let next = now.saturating_add(every);
            self.sys_at = Some(next);
            self.timers.push(Reverse((next, Timer::Sys)));
        }
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        match (timer, self.replay_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
