//! A FIFO for a connection's outgoing packets and events that keeps its
//! buffer while the connection is busy and gives it back when it goes quiet.
//!
//! Freeing the buffer every time the queue empties keeps an idle connection
//! small, but makes a busy one allocate and regrow its buffer (copying every
//! element again) on every turn; keeping it makes every connection hold its
//! largest burst forever. This queue frees its buffer when a turn that
//! emptied it took only a few elements: busy connections keep theirs, and a
//! connection that quiets down lets go at its next small turn (a PINGRESP).

use alloc::collections::VecDeque;
use core::ops::{Deref, DerefMut};

/// A turn that took at most this many elements counts as quiet.
const QUIET: u32 = 2;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct ElasticQueue<T> {
    items: VecDeque<T>,
    /// Elements taken since the queue was last empty.
    taken: u32,
}

impl<T> ElasticQueue<T> {
    pub(crate) const fn new() -> Self {
        ElasticQueue {
            items: VecDeque::new(),
            taken: 0,
        }
    }

    /// Takes the front element.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.items.pop_front();
        if item.is_some() {
            self.taken = self.taken.saturating_add(1);
        }
        item
    }

    /// Ends a turn: an empty queue after a quiet turn frees its buffer.
    pub(crate) fn settle(&mut self) {
        if !self.items.is_empty() {
            return;
        }
        if self.taken <= QUIET && self.items.capacity() > 0 {
            self.items = VecDeque::new();
        }
        self.taken = 0;
    }
}

impl<T> Default for ElasticQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Deref for ElasticQueue<T> {
    type Target = VecDeque<T>;
    fn deref(&self) -> &VecDeque<T> {
        &self.items
    }
}

impl<T> DerefMut for ElasticQueue<T> {
    fn deref_mut(&mut self) -> &mut VecDeque<T> {
        &mut self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_turn_frees_the_buffer() {
        let mut q = ElasticQueue::new();
        q.push_back(1);
        assert_eq!(q.pop_front(), Some(1));
        q.settle();
        assert_eq!(q.capacity(), 0);
    }

    #[test]
    fn a_busy_turn_keeps_it_until_a_quiet_one() {
        let mut q = ElasticQueue::new();
        for i in 0..10 {
            q.push_back(i);
        }
        while q.pop_front().is_some() {}
        q.settle();
        assert!(q.capacity() >= 10);
        q.push_back(1);
        q.pop_front();
        q.settle();
        assert_eq!(q.capacity(), 0);
    }

    #[test]
    fn settling_a_queue_that_still_holds_elements_keeps_it() {
        let mut q = ElasticQueue::new();
        q.push_back(1);
        q.push_back(2);
        q.pop_front();
        q.settle();
        assert_eq!(q.len(), 1);
        assert!(q.capacity() > 0);
    }
}
