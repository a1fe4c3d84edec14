//! The subscriptions that end at one trie node, one per client.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hash::Hash;

use hashbrown::HashTable;
use mqtt_codec::{QoS, RetainHandling, SubscriptionId, SubscriptionOptions};

use crate::seed::{hash_one, KeyedState};

/// Subscription options packed into one byte, laid out as on the 5.0 wire
/// (section 3.8.3.1): bits 0-1 maximum QoS, bit 2 No Local, bit 3 Retain As
/// Published, bits 4-5 Retain Handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedOptions(u8);

impl PackedOptions {
    pub(crate) fn pack(o: SubscriptionOptions) -> Self {
        PackedOptions(
            o.qos as u8
                | (u8::from(o.no_local) << 2)
                | (u8::from(o.retain_as_published) << 3)
                | ((o.retain_handling as u8) << 4),
        )
    }

    pub(crate) fn unpack(self) -> SubscriptionOptions {
        SubscriptionOptions {
            qos: self.qos(),
            no_local: self.no_local(),
            retain_as_published: self.retain_as_published(),
            retain_handling: match (self.0 >> 4) & 0b11 {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendAtSubscribeIfNew,
                _ => RetainHandling::DoNotSend,
            },
        }
    }

    #[inline]
    pub(crate) fn qos(self) -> QoS {
        match self.0 & 0b11 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }

    #[inline]
    pub(crate) fn no_local(self) -> bool {
        self.0 & 0b0100 != 0
    }

    #[inline]
    pub(crate) fn retain_as_published(self) -> bool {
        self.0 & 0b1000 != 0
    }
}

/// One subscription as stored: 12 bytes for a `u32` client key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<C> {
    pub(crate) client: C,
    pub(crate) id: Option<SubscriptionId>,
    pub(crate) options: PackedOptions,
}

/// Above this many subscribers a node keeps a hash index from client to
/// position, so that subscribing and unsubscribing stay O(1) on filters that
/// whole fleets share (`devices/all/commands`); below it a linear scan of the
/// contiguous entries is faster than hashing.
const LINEAR_MAX: usize = 16;

/// The subscriptions ending at a node. A single subscriber, by far the most
/// common case for exact filters, is stored inline without a heap allocation.
#[derive(Debug, Default)]
pub(crate) enum Subscribers<C> {
    #[default]
    Empty,
    One(Entry<C>),
    Many(Box<Many<C>>),
}

/// Two or more subscribers: contiguous entries (what matching iterates), plus
/// a client → position index once there are more than [`LINEAR_MAX`].
#[derive(Debug)]
pub(crate) struct Many<C> {
    entries: Vec<Entry<C>>,
    positions: HashTable<u32>,
}

impl<C: Copy + Eq + Hash> Many<C> {
    fn position(&self, client: C, state: &KeyedState) -> Option<usize> {
        if self.entries.len() <= LINEAR_MAX {
            self.entries.iter().position(|e| e.client == client)
        } else {
            let entries = &self.entries;
            self.positions
                .find(hash_one(state, &client), |&p| {
                    entries[p as usize].client == client
                })
                .map(|&p| p as usize)
        }
    }

    fn index(&mut self, pos: usize, state: &KeyedState) {
        let entries = &self.entries;
        self.positions
            .insert_unique(hash_one(state, &entries[pos].client), pos as u32, |&p| {
                hash_one(state, &entries[p as usize].client)
            });
    }

    fn push(&mut self, entry: Entry<C>, state: &KeyedState) {
        self.entries.push(entry);
        let len = self.entries.len();
        if len == LINEAR_MAX + 1 {
            for pos in 0..len {
                self.index(pos, state);
            }
        } else if len > LINEAR_MAX + 1 {
            self.index(len - 1, state);
        }
    }

    fn swap_remove(&mut self, pos: usize, state: &KeyedState) -> Entry<C> {
        let indexed = self.entries.len() > LINEAR_MAX;
        let last = self.entries.len() - 1;
        if indexed {
            let client = self.entries[pos].client;
            if let Ok(e) = self
                .positions
                .find_entry(hash_one(state, &client), |&p| p as usize == pos)
            {
                e.remove();
            }
            if pos != last {
                // The last entry moves into `pos`: repoint its index entry.
                let moved = self.entries[last].client;
                if let Some(p) = self
                    .positions
                    .find_mut(hash_one(state, &moved), |&p| p as usize == last)
                {
                    *p = pos as u32;
                }
            }
        }
        let removed = self.entries.swap_remove(pos);
        if indexed && self.entries.len() <= LINEAR_MAX {
            // Back to linear scans: drop the index and its memory.
            self.positions = HashTable::new();
        }
        removed
    }
}

impl<C> Subscribers<C> {
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Subscribers::Empty)
    }
}

impl<C: Copy + Eq + Hash> Subscribers<C> {
    /// The subscriptions, for matching.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[Entry<C>] {
        match self {
            Subscribers::Empty => &[],
            Subscribers::One(e) => core::slice::from_ref(e),
            Subscribers::Many(m) => &m.entries,
        }
    }

    pub(crate) fn get(&self, client: C, state: &KeyedState) -> Option<&Entry<C>> {
        match self {
            Subscribers::Empty => None,
            Subscribers::One(e) => (e.client == client).then_some(e),
            Subscribers::Many(m) => m.position(client, state).map(|p| &m.entries[p]),
        }
    }

    /// Adds `entry`, or replaces the client's existing subscription here and
    /// returns it [MQTT-3.8.4-3].
    pub(crate) fn upsert(&mut self, entry: Entry<C>, state: &KeyedState) -> Option<Entry<C>> {
        match self {
            Subscribers::Empty => {
                *self = Subscribers::One(entry);
                None
            }
            Subscribers::One(e) if e.client == entry.client => Some(core::mem::replace(e, entry)),
            Subscribers::One(e) => {
                let first = *e;
                *self = Subscribers::Many(Box::new(Many {
                    entries: alloc::vec![first, entry],
                    positions: HashTable::new(),
                }));
                None
            }
            Subscribers::Many(m) => match m.position(entry.client, state) {
                Some(p) => Some(core::mem::replace(&mut m.entries[p], entry)),
                None => {
                    m.push(entry, state);
                    None
                }
            },
        }
    }

    /// Removes the client's subscription here, if it has one.
    pub(crate) fn remove(&mut self, client: C, state: &KeyedState) -> Option<Entry<C>> {
        match self {
            Subscribers::Empty => None,
            Subscribers::One(e) if e.client == client => {
                let e = *e;
                *self = Subscribers::Empty;
                Some(e)
            }
            Subscribers::One(_) => None,
            Subscribers::Many(m) => {
                let pos = m.position(client, state)?;
                let removed = m.swap_remove(pos, state);
                if m.entries.len() == 1 {
                    *self = Subscribers::One(m.entries[0]);
                } else if m.entries.capacity() > 4 * m.entries.len() {
                    m.entries.shrink_to(2 * m.entries.len());
                }
                Some(removed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(client: u32, qos: QoS) -> Entry<u32> {
        Entry {
            client,
            id: SubscriptionId::new(client + 1),
            options: PackedOptions::pack(SubscriptionOptions::new(qos)),
        }
    }

    #[test]
    fn options_round_trip_through_one_byte() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for rh in [
                RetainHandling::SendAtSubscribe,
                RetainHandling::SendAtSubscribeIfNew,
                RetainHandling::DoNotSend,
            ] {
                for (no_local, retain_as_published) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    let o = SubscriptionOptions {
                        qos,
                        no_local,
                        retain_as_published,
                        retain_handling: rh,
                    };
                    assert_eq!(PackedOptions::pack(o).unpack(), o);
                }
            }
        }
    }

    #[test]
    fn one_subscriber_is_inline_and_small() {
        assert_eq!(core::mem::size_of::<Entry<u32>>(), 12);
        assert_eq!(core::mem::size_of::<Subscribers<u32>>(), 16);
    }

    #[test]
    fn upsert_and_remove_across_the_indexed_threshold() {
        let state = KeyedState::with_seed(1);
        let mut s = Subscribers::default();
        let n = 3 * LINEAR_MAX as u32;
        for c in 0..n {
            assert!(s.upsert(entry(c, QoS::AtMostOnce), &state).is_none());
        }
        assert_eq!(s.as_slice().len(), n as usize);
        // Replacing keeps one entry per client and hands back the old one.
        let old = s.upsert(entry(5, QoS::ExactlyOnce), &state).unwrap();
        assert_eq!(old.options.qos(), QoS::AtMostOnce);
        assert_eq!(s.get(5, &state).unwrap().options.qos(), QoS::ExactlyOnce);
        assert_eq!(s.as_slice().len(), n as usize);
        // Remove in an order that moves entries around, checking every lookup.
        for c in (0..n).rev().step_by(2).chain((0..n).step_by(2)) {
            assert_eq!(s.remove(c, &state).unwrap().client, c);
            assert!(s.get(c, &state).is_none());
            assert!(s.remove(c, &state).is_none());
            for e in s.as_slice() {
                assert_eq!(s.get(e.client, &state).unwrap().client, e.client);
            }
        }
        assert!(s.is_empty());
    }
}
