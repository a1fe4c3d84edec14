//! The order in which the core takes what the connections read: the order
//! in which their reads became ready, across connections.
//!
//! Each connection's task reads, decodes and hands over on its own, on any
//! worker thread, so two connections whose bytes arrived in one order could
//! reach the core in the other: tokio runs the task it woke last first (its
//! LIFO slot) and lets another worker steal the one before, and the two
//! hand-overs then race on the channel. A SUBSCRIBE read before a PUBLISH
//! on another connection could be handled after it, and the message would
//! miss the subscription.
//!
//! So every read carries a [`Stamp`] from one counter per broker, taken
//! when the reactor wakes the task for its socket (in the order the
//! operating system reported the sockets ready), or, for a read that needed
//! no wake, when it is read. A wake takes a stamp while the task runs or
//! waits for its socket, so a task that a thread switch holds between two
//! steps is still stamped when its bytes arrive (`Parking` in
//! `connection`); while it waits for anything else (a write to a slow
//! client, room in the core's input) a wake takes none, and the stamp one
//! took while it ran is released ([`Stamps::release`]). The core takes
//! stamped commands in stamp order ([`Reorder`]); a wake that brought
//! nothing to hand over (a partial packet, a spurious wake) is released so
//! the stamps after it need not wait. When the core's input budget is full
//! a read releases its stamp and takes a new one once it has room, and a
//! stamp that nobody settles within [`HOLD_LIMIT`] is skipped, so the order
//! can cost a little latency, never liveness: the core never waits more
//! than [`HOLD_LIMIT`] for a read, and meanwhile handles its timers and
//! bridges.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use super::ToCore;

/// A read's place in the order of the core's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Stamp(u64);

/// The broker's stamp counter, shared by every connection, and the stamps
/// given up where no command can be sent (see [`Stamps::release`]).
#[derive(Debug, Default)]
pub(super) struct Stamps {
    /// Off: no wake takes a stamp and the core takes commands as they come
    /// (the order costs throughput: see BENCHMARKS.md).
    ordered: bool,
    next: AtomicU64,
    released: Mutex<Vec<Stamp>>,
    notify: Notify,
}

impl Stamps {
    /// The counter; `ordered` says whether reads are put in order at all.
    pub(super) fn new(ordered: bool) -> Stamps {
        Stamps {
            ordered,
            ..Stamps::default()
        }
    }

    /// Whether reads are put in the order their sockets became ready.
    pub(super) fn ordered(&self) -> bool {
        self.ordered
    }

    /// The next stamp: later than every stamp taken before it.
    pub(super) fn take(&self) -> Stamp {
        Stamp(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Gives up a stamp without waiting: a connection's task that is about
    /// to wait for something other than its socket releases the stamp a
    /// wake took meanwhile, so the core does not hold later reads for it.
    /// The core takes these on its next turn.
    pub(super) fn release(&self, stamp: Stamp) {
        self.released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stamp);
        self.notify.notify_one();
    }

    /// The stamps released since the last call.
    pub(super) fn take_released(&self) -> Vec<Stamp> {
        std::mem::take(&mut *self.released.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until a stamp is released.
    pub(super) async fn released(&self) {
        self.notify.notified().await;
    }
}

/// How long the core holds later reads back for a stamp that nobody has
/// settled. Only a task that was woken and has not run for this long (an
/// overloaded machine) or a bug leaves one unsettled; the order is given up
/// for it then, and what it brings later is taken at once. Short, so that
/// an overloaded machine loses order, not throughput.
pub(super) const HOLD_LIMIT: Duration = Duration::from_millis(10);

/// The core's side: stamped commands put back in stamp order, the others
/// (registrations, writers ready) taken as they come.
#[derive(Default)]
pub(super) struct Reorder {
    /// Off: every command is due as it comes (releases are dropped).
    unordered: bool,
    /// Every stamp below this one has been taken or released.
    next: u64,
    /// Stamps above `next` already settled: a command, or `None` for a
    /// release.
    held: BTreeMap<u64, Option<ToCore>>,
    /// Commands due, in order.
    due: VecDeque<ToCore>,
    /// Since when `next` has been waited for, while later stamps are held.
    waiting_since: Option<tokio::time::Instant>,
}

impl Reorder {
    /// Commands put in stamp order, or (not `ordered`) taken as they come.
    pub(super) fn new(ordered: bool) -> Reorder {
        Reorder {
            unordered: !ordered,
            ..Reorder::default()
        }
    }

    /// Takes a command from a connection.
    pub(super) fn push(&mut self, cmd: ToCore) {
        let Some(Stamp(s)) = cmd.stamp() else {
            return self.due.push_back(cmd);
        };
        if self.unordered {
            if !matches!(cmd, ToCore::Release(_)) {
                self.due.push_back(cmd);
            }
            return;
        }
        let cmd = match cmd {
            ToCore::Release(_) => None,
            cmd => Some(cmd),
        };
        if s < self.next {
            // Skipped after `HOLD_LIMIT`: late, but never lost.
            self.due.extend(cmd);
            return;
        }
        if s == self.next && self.held.is_empty() {
            // In order, the common case.
            self.next += 1;
            self.due.extend(cmd);
            return;
        }
        self.held.insert(s, cmd);
        self.advance();
    }

    /// Moves what is now in order from `held` to `due`.
    fn advance(&mut self) {
        let before = self.next;
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            self.due.extend(entry.remove());
            self.next += 1;
        }
        if self.held.is_empty() {
            self.waiting_since = None;
        } else if self.next != before || self.waiting_since.is_none() {
            self.waiting_since = Some(tokio::time::Instant::now());
        }
    }

    /// The next command due, if any.
    pub(super) fn pop(&mut self) -> Option<ToCore> {
        self.due.pop_front()
    }

    /// Whether a command is due.
    pub(super) fn has_due(&self) -> bool {
        !self.due.is_empty()
    }

    /// When the stamp waited for is given up, while later ones are held.
    pub(super) fn deadline(&self) -> Option<tokio::time::Instant> {
        self.waiting_since.map(|t| t + HOLD_LIMIT)
    }

    /// Gives up the stamps that held the others back for [`HOLD_LIMIT`].
    pub(super) fn skip_missing(&mut self) {
        if let Some((&first, _)) = self.held.first_key_value() {
            tracing::debug!(
                skipped = first - self.next,
                "reads not handed over in time: taken out of order"
            );
            self.next = first;
            self.waiting_since = None;
            self.advance();
        }
    }
}

#[cfg(test)]
mod tests {
    use mqtt_router::broker::ConnId;

    use super::*;

    fn eof(s: u64) -> ToCore {
        ToCore::Eof(conn(), Stamp(s))
    }

    fn conn() -> ConnId {
        let mut b = mqtt_router::broker::Broker::new(Default::default());
        b.open(mqtt_session::Instant::ZERO, Default::default())
            .unwrap()
    }

    fn drained(r: &mut Reorder) -> Vec<u64> {
        std::iter::from_fn(|| r.pop())
            .map(|c| c.stamp().map_or(u64::MAX, |Stamp(s)| s))
            .collect()
    }

    #[tokio::test]
    async fn stamped_commands_are_taken_in_stamp_order() {
        let mut r = Reorder::default();
        r.push(eof(2));
        r.push(eof(1));
        assert!(!r.has_due(), "0 is still to come");
        assert!(r.deadline().is_some());
        r.push(ToCore::Release(Stamp(0)));
        assert_eq!(drained(&mut r), [1, 2]);
        assert!(r.deadline().is_none());
        r.push(eof(3));
        assert_eq!(drained(&mut r), [3]);
    }

    #[tokio::test]
    async fn a_stamp_never_settled_is_skipped_and_taken_late() {
        let mut r = Reorder::default();
        r.push(eof(1));
        r.push(eof(3));
        assert!(!r.has_due());
        r.skip_missing();
        assert_eq!(drained(&mut r), [1], "2 is still awaited");
        r.skip_missing();
        assert_eq!(drained(&mut r), [3]);
        r.push(eof(0));
        r.push(eof(2));
        assert_eq!(drained(&mut r), [0, 2], "late, not lost");
    }

    #[tokio::test]
    async fn a_stamp_released_without_a_command_lets_the_later_ones_through() {
        let stamps = Stamps::default();
        let (first, second) = (stamps.take(), stamps.take());
        let mut r = Reorder::default();
        r.push(ToCore::Eof(conn(), second));
        assert!(!r.has_due());
        stamps.release(first);
        // The core wakes for it, and takes it on its turn.
        tokio::time::timeout(Duration::from_secs(1), stamps.released())
            .await
            .expect("the core is woken");
        for s in stamps.take_released() {
            r.push(ToCore::Release(s));
        }
        assert_eq!(drained(&mut r), [1]);
        assert!(stamps.take_released().is_empty());
    }

    #[tokio::test]
    async fn unstamped_commands_are_not_held() {
        let mut r = Reorder::default();
        r.push(eof(1));
        r.push(ToCore::Writable(conn()));
        assert_eq!(drained(&mut r), [u64::MAX]);
    }
}
