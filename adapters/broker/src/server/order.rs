//! The stamps that keep the order across connections (DESIGN.md, "Order
//! across connections"), without holding any input back.
//!
//! Each connection's task reads, decodes and hands over on its own, on any
//! worker thread, so two connections whose bytes arrived in one order can
//! reach the core in the other: a SUBSCRIBE read before a PUBLISH on
//! another connection can be handled after it. The core does not reorder
//! its input for that; instead both sides are stamped from one counter:
//!
//! - a read, as EARLY as the broker can tell its bytes were there: when the
//!   reactor wakes the connection for its socket (the connection's
//!   `Outbox` is the socket's waker and takes the stamp), or, for a read
//!   that needed no wake, when it is read;
//! - each turn of the core, as LATE as it can be before the turn's input
//!   takes effect: after the commands were received, before they are
//!   handled ([`mqtt_router::broker::Broker::set_order`]).
//!
//! Every command a turn handles was received before the turn's stamp, and
//! its read stamped before it was sent: its stamp is below the turn's.
//! Only the core's turns advance the counter; a read reads it (one writer:
//! the connections' tasks do not contend for it), so a read's stamp is the
//! last turn's, and a turn's is one above every read stamped before it. The
//! core ([`mqtt_router::broker::Broker::handle_packets_read_at`]) then
//! gives a SUBSCRIBE the messages routed at stamps above its read's before
//! it got to it ("late subscriber catch-up"), as if it had taken effect
//! when its bytes were seen. A client cannot see a message's routing and
//! then have its SUBSCRIBE stamped before it: its bytes come after.

use std::sync::atomic::{AtomicU64, Ordering};

/// A read's or a turn's place in the order of what the broker saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Stamp(pub(super) u64);

/// The broker's stamp counter, advanced by the core's turns and read by
/// every connection.
#[derive(Debug, Default)]
pub(super) struct Stamps {
    /// Off: nothing is stamped and nothing caught up
    /// (`limits.order_across_connections = false`).
    ordered: bool,
    next: AtomicU64,
}

impl Stamps {
    /// The counter; `ordered` says whether the order is kept at all.
    pub(super) fn new(ordered: bool) -> Stamps {
        Stamps {
            ordered,
            next: AtomicU64::new(0),
        }
    }

    /// Whether reads and turns are stamped.
    pub(super) fn ordered(&self) -> bool {
        self.ordered
    }

    /// A core turn's stamp: above every stamp taken before it, turn or
    /// read (always 0 when the order is off).
    pub(super) fn turn(&self) -> Stamp {
        if !self.ordered {
            return Stamp(0);
        }
        Stamp(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// A read's stamp: the last turn's. Below every turn stamped after it,
    /// and at least every turn stamped before it (the atomic's one order of
    /// changes agrees with what happened before what). A load, not a
    /// change: the connections' tasks do not contend for the counter.
    pub(super) fn read(&self) -> Stamp {
        if !self.ordered {
            return Stamp(0);
        }
        Stamp(self.next.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_is_stamped_above_the_reads_before_it_and_below_those_after() {
        let on = Stamps::new(true);
        let before = on.read();
        let turn = on.turn();
        let after = on.read();
        // The core catches up what it routed at `turn` to a SUBSCRIBE read
        // at a lower stamp only.
        assert!(before < turn, "read before the turn: caught up");
        assert!(after >= turn, "read after the turn: not caught up");
        assert!(on.turn() > turn);
        let off = Stamps::new(false);
        assert_eq!((off.read(), off.turn()), (Stamp(0), Stamp(0)));
    }
}
