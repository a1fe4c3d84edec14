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

/// One subscription as stored: 16 bytes for a `u32` client key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<C> {
    pub(crate) client: C,
    pub(crate) id: Option<SubscriptionId>,
    pub(crate) options: PackedOptions,
    /// The client's reference to this subscription in the index's list of
    /// its subscriptions, so an UNSUBSCRIBE unlinks it in constant time
    /// instead of walking that list.
    pub(crate) slot: u32,
}

/// Up to this many subscribers a node keeps them in an exact-size boxed
/// slice, found by a linear scan; beyond it, in a vector with a hash index
/// from client to position, so that subscribing and unsubscribing stay O(1)
/// on filters that whole fleets share (`devices/all/commands`).
const LINEAR_MAX: usize = 16;

/// The subscriptions ending at a node: 24 bytes for a `u32` client key.
///
/// A single subscriber, by far the most common case for exact filters, is
/// stored inline. A few are one exact-size heap slice, one cache miss away
/// from the node. Only crowded nodes pay for a growable vector and an index.
#[derive(Debug, Default)]
pub(crate) enum Subscribers<C> {
    #[default]
    Empty,
    One(Entry<C>),
    Few(Box<[Entry<C>]>),
    Many(Box<Many<C>>),
}

/// More than [`LINEAR_MAX`] subscribers: contiguous entries (what matching
/// iterates) and a client → position index.
#[derive(Debug)]
pub(crate) struct Many<C> {
    entries: Vec<Entry<C>>,
    positions: HashTable<u32>,
}

impl<C: Copy + Eq + Hash> Many<C> {
    fn new(entries: Vec<Entry<C>>, state: &KeyedState) -> Self {
        let mut positions = HashTable::with_capacity(entries.len());
        for (p, e) in entries.iter().enumerate() {
            positions.insert_unique(hash_one(state, &e.client), p as u32, |&p| {
                hash_one(state, &entries[p as usize].client)
            });
        }
        Many { entries, positions }
    }

    fn position(&self, client: C, state: &KeyedState) -> Option<usize> {
        let entries = &self.entries;
        self.positions
            .find(hash_one(state, &client), |&p| {
                entries[p as usize].client == client
            })
            .map(|&p| p as usize)
    }

    fn push(&mut self, entry: Entry<C>, state: &KeyedState) {
        self.entries.push(entry);
        let last = self.entries.len() - 1;
        let entries = &self.entries;
        self.positions
            .insert_unique(hash_one(state, &entry.client), last as u32, |&p| {
                hash_one(state, &entries[p as usize].client)
            });
    }

    fn swap_remove(&mut self, pos: usize, state: &KeyedState) -> Entry<C> {
        let last = self.entries.len() - 1;
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
        self.entries.swap_remove(pos)
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
            Subscribers::Few(f) => f,
            Subscribers::Many(m) => &m.entries,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Entry<C>] {
        match self {
            Subscribers::Empty => &mut [],
            Subscribers::One(e) => core::slice::from_mut(e),
            Subscribers::Few(f) => f,
            Subscribers::Many(m) => &mut m.entries,
        }
    }

    pub(crate) fn position(&self, client: C, state: &KeyedState) -> Option<usize> {
        match self {
            Subscribers::Many(m) => m.position(client, state),
            _ => self.as_slice().iter().position(|e| e.client == client),
        }
    }

    pub(crate) fn get(&self, client: C, state: &KeyedState) -> Option<&Entry<C>> {
        self.position(client, state).map(|p| &self.as_slice()[p])
    }

    /// Adds `entry`, or replaces the client's existing subscription here and
    /// returns it [MQTT-3.8.4-3].
    /// A replacing entry keeps the list reference of the one it replaces.
    pub(crate) fn upsert(&mut self, mut entry: Entry<C>, state: &KeyedState) -> Option<Entry<C>> {
        if let Some(p) = self.position(entry.client, state) {
            let old = &mut self.as_mut_slice()[p];
            entry.slot = old.slot;
            return Some(core::mem::replace(old, entry));
        }
        *self = match core::mem::take(self) {
            Subscribers::Empty => Subscribers::One(entry),
            Subscribers::One(e) => Subscribers::Few(Box::new([e, entry])),
            Subscribers::Few(f) if f.len() < LINEAR_MAX => {
                Subscribers::Few(f.iter().copied().chain([entry]).collect())
            }
            Subscribers::Few(f) => {
                let mut entries = Vec::with_capacity(2 * LINEAR_MAX);
                entries.extend_from_slice(&f);
                entries.push(entry);
                Subscribers::Many(Box::new(Many::new(entries, state)))
            }
            Subscribers::Many(mut m) => {
                m.push(entry, state);
                Subscribers::Many(m)
            }
        };
        None
    }

    /// Removes the client's subscription here, if it has one.
    pub(crate) fn remove(&mut self, client: C, state: &KeyedState) -> Option<Entry<C>> {
        let p = self.position(client, state)?;
        let removed = self.as_slice()[p];
        *self = match core::mem::take(self) {
            Subscribers::Few(f) if f.len() == 2 => Subscribers::One(f[1 - p]),
            Subscribers::Few(f) => Subscribers::Few(
                f.iter()
                    .enumerate()
                    .filter(|&(i, _)| i != p)
                    .map(|(_, e)| *e)
                    .collect(),
            ),
            Subscribers::Many(mut m) => {
                m.swap_remove(p, state);
                if m.entries.len() <= LINEAR_MAX {
                    Subscribers::Few(m.entries.as_slice().into())
                } else {
                    if m.entries.capacity() > 2 * m.entries.len() {
                        m.entries.shrink_to(m.entries.len() + m.entries.len() / 2);
                    }
                    Subscribers::Many(m)
                }
            }
            // One (the client's own) or Empty (unreachable: a position was found).
            _ => Subscribers::Empty,
        };
        Some(removed)
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
            slot: 0,
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
        assert_eq!(core::mem::size_of::<Entry<u32>>(), 16);
        assert_eq!(core::mem::size_of::<Subscribers<u32>>(), 24);
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
