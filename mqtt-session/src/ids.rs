//! The set of packet identifiers a session has in use on the way out.
//!
//! Identifiers are handed out in sequence, so those in use cluster in a
//! few runs of consecutive numbers: a bitmap per page of 1,024 identifiers,
//! allocated while the page has one in use, answers in constant time where
//! a tree spent a large share of a busy broker's time rebalancing, and holds
//! nothing for an idle session.

use alloc::boxed::Box;
use alloc::vec::Vec;

use mqtt_codec::PacketId;

const PAGE_BITS: usize = 1024;
const WORDS: usize = PAGE_BITS / 64;

#[derive(Debug, Clone)]
struct Page {
    /// Which 1,024 identifiers: `id / 1024`.
    number: u8,
    used: u16,
    bits: Box<[u64; WORDS]>,
}

/// A set of packet identifiers (see the module documentation).
#[derive(Debug, Clone, Default)]
pub(crate) struct IdSet {
    pages: Vec<Page>,
    len: usize,
}

fn split(id: PacketId) -> (u8, usize, u64) {
    let n = usize::from(id.get());
    (
        (n / PAGE_BITS) as u8,
        (n % PAGE_BITS) / 64,
        1u64 << (n % 64),
    )
}

impl IdSet {
    pub(crate) const fn new() -> Self {
        IdSet {
            pages: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn page(&self, number: u8) -> Option<usize> {
        // Newest pages last: sequential identifiers hit the last one.
        self.pages.iter().rposition(|p| p.number == number)
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, id: PacketId) -> bool {
        let (number, word, bit) = split(id);
        self.page(number)
            .is_some_and(|i| self.pages[i].bits[word] & bit != 0)
    }

    /// Adds `id`; false if it was already in.
    pub(crate) fn insert(&mut self, id: PacketId) -> bool {
        let (number, word, bit) = split(id);
        let i = match self.page(number) {
            Some(i) => i,
            None => {
                self.pages.push(Page {
                    number,
                    used: 0,
                    bits: Box::new([0; WORDS]),
                });
                self.pages.len() - 1
            }
        };
        let page = &mut self.pages[i];
        if page.bits[word] & bit != 0 {
            return false;
        }
        page.bits[word] |= bit;
        page.used += 1;
        self.len += 1;
        true
    }

    /// Removes `id`; false if it was not in.
    pub(crate) fn remove(&mut self, id: PacketId) -> bool {
        let (number, word, bit) = split(id);
        let Some(i) = self.page(number) else {
            return false;
        };
        let page = &mut self.pages[i];
        if page.bits[word] & bit == 0 {
            return false;
        }
        page.bits[word] &= !bit;
        page.used -= 1;
        self.len -= 1;
        if page.used == 0 {
            self.pages.swap_remove(i);
            if self.pages.is_empty() {
                self.pages = Vec::new();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use proptest::prelude::*;

    proptest! {
        /// The set answers like a `BTreeSet` for any sequence of changes.
        #[test]
        fn behaves_like_a_set(ops in proptest::collection::vec((any::<bool>(), 1u16..), 0..400)) {
            let mut ours = IdSet::new();
            let mut model = BTreeSet::new();
            for (add, n) in ops {
                let id = PacketId::new(n).unwrap();
                if add {
                    prop_assert_eq!(ours.insert(id), model.insert(id));
                } else {
                    prop_assert_eq!(ours.remove(id), model.remove(&id));
                }
                prop_assert_eq!(ours.len(), model.len());
                prop_assert_eq!(ours.contains(id), model.contains(&id));
            }
            for id in model.clone() {
                prop_assert!(ours.remove(id));
            }
            prop_assert_eq!(ours.len(), 0);
            prop_assert!(ours.pages.is_empty());
        }
    }

    #[test]
    fn an_empty_set_holds_no_page() {
        let mut s = IdSet::new();
        let id = PacketId::new(65535).unwrap();
        assert!(s.insert(id));
        assert!(!s.insert(id));
        assert!(s.contains(id));
        assert!(s.remove(id));
        assert!(!s.remove(id));
        assert_eq!(s.pages.capacity(), 0);
    }
}
