//! The first copy of each message from another node, the others dropped.
//!
//! A node whose subjects overlap (`a.>` and `a.b`) gets a message once per
//! subject that matches it, each subscription's copies in the order the
//! origin published them. Keeping the first copy of each keeps that order:
//! whichever subscription brings message n+1 first brought message n
//! before it. Each origin (a node's run) numbers its messages; this
//! remembers, per origin, which of the last [`WINDOW`] numbers were seen.
//! A first copy can only arrive that far behind if a subscription lags
//! the others by more than the client's buffers hold, so a number older
//! than the window is taken for a copy already seen (and counted).

use std::collections::{HashMap, VecDeque};

/// Numbers remembered per origin.
const WINDOW: u64 = 1 << 17;

/// Origins remembered: the nodes of a cluster, with room for their
/// restarts (the oldest is forgotten first).
const ORIGINS: usize = 256;

/// One origin's window: the numbers below `next` seen in the last
/// [`WINDOW`].
#[derive(Debug)]
struct Window {
    next: u64,
    bits: Vec<u64>,
}

impl Window {
    fn new() -> Window {
        Window {
            next: 0,
            bits: vec![0; (WINDOW / 64) as usize],
        }
    }

    fn bit(seq: u64) -> (usize, u64) {
        let at = seq % WINDOW;
        ((at / 64) as usize, 1 << (at % 64))
    }

    /// Whether `seq` is seen for the first time; marks it seen.
    fn first(&mut self, seq: u64) -> bool {
        if seq >= self.next {
            if seq - self.next >= WINDOW {
                self.bits.iter_mut().for_each(|w| *w = 0);
            } else {
                for s in self.next..seq {
                    let (w, b) = Self::bit(s);
                    self.bits[w] &= !b;
                }
            }
            let (w, b) = Self::bit(seq);
            self.bits[w] |= b;
            self.next = seq + 1;
            return true;
        }
        if self.next - seq > WINDOW {
            return false;
        }
        let (w, b) = Self::bit(seq);
        let seen = self.bits[w] & b != 0;
        self.bits[w] |= b;
        !seen
    }
}

/// The windows of the origins heard from.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    windows: HashMap<(String, u64), Window>,
    order: VecDeque<(String, u64)>,
}

impl Seen {
    /// Whether message `seq` of `node`'s run `incarnation` arrives for the
    /// first time.
    pub(crate) fn first(&mut self, node: &str, incarnation: u64, seq: u64) -> bool {
        let key = (node.to_owned(), incarnation);
        if !self.windows.contains_key(&key) {
            if self.order.len() == ORIGINS {
                if let Some(old) = self.order.pop_front() {
                    self.windows.remove(&old);
                }
            }
            self.order.push_back(key.clone());
            self.windows.insert(key.clone(), Window::new());
        }
        self.windows.get_mut(&key).is_some_and(|w| w.first(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_is_taken_once_whatever_the_interleaving() {
        let mut seen = Seen::default();
        // Two subscriptions' copies of 0..5, interleaved.
        let arrivals = [0, 1, 0, 2, 1, 3, 2, 4, 3, 4];
        let taken: Vec<u64> = arrivals
            .iter()
            .copied()
            .filter(|&s| seen.first("a", 1, s))
            .collect();
        assert_eq!(taken, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_late_first_copy_within_the_window_is_taken() {
        let mut seen = Seen::default();
        assert!(seen.first("a", 1, 10));
        assert!(seen.first("a", 1, 3), "never seen: a gap, not a copy");
        assert!(!seen.first("a", 1, 3));
        assert!(seen.first("a", 1, 10 + WINDOW));
        assert!(!seen.first("a", 1, 9), "older than the window");
    }

    #[test]
    fn nodes_and_their_runs_are_told_apart_and_forgotten_oldest_first() {
        let mut seen = Seen::default();
        assert!(seen.first("a", 1, 0));
        assert!(
            seen.first("a", 2, 0),
            "a restarted node numbers from 0 again"
        );
        assert!(seen.first("b", 1, 0));
        for n in 0..ORIGINS as u64 {
            seen.first("c", n, 0);
        }
        assert!(seen.first("a", 1, 0), "forgotten: taken again");
        assert!(seen.windows.len() <= ORIGINS);
    }
}
