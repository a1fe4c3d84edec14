//! The result of matching a topic: who receives a message, and how.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hash::Hash;
use core::iter::FusedIterator;
use core::slice;

use mqtt_codec::{QoS, SubscriptionId};

use crate::level::{NodeIdx, NIL};
use crate::seed::QuickHasher;
use crate::subscribers::Entry;

/// One receiver of a message, as reported by [`Matches`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a, C> {
    /// The subscribed client.
    pub client: C,
    /// The highest maximum QoS among the client's matching subscriptions
    /// [MQTT-3.3.4-2]. The message goes out at the lower of this and the QoS
    /// it was published with [MQTT-3.8.4-8].
    pub qos: QoS,
    /// True if a matching subscription has Retain As Published set: the
    /// forwarded message keeps the RETAIN flag it was published with
    /// [MQTT-3.3.1-13]; otherwise the flag is cleared [MQTT-3.3.1-12].
    pub retain_as_published: bool,
    /// The Subscription Identifiers of the matching subscriptions that have
    /// one, in no particular order [MQTT-3.3.4-4]; empty if none has.
    pub subscription_ids: &'a [SubscriptionId],
}

impl<'a, C: Copy> Delivery<'a, C> {
    /// The delivery for exactly one subscription.
    fn of(e: &'a Entry<C>) -> Self {
        Delivery {
            client: e.client,
            qos: e.options.qos(),
            retain_as_published: e.options.retain_as_published(),
            subscription_ids: e.id.as_slice(),
        }
    }
}

/// A client with several matching subscriptions, merged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<C> {
    client: C,
    qos: QoS,
    retain_as_published: bool,
    ids_start: u32,
    ids_len: u32,
}

/// One matching subscription.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<C> {
    pub(crate) entry: Entry<C>,
    /// The client's bit in the merge filter.
    bit: u16,
    /// The client may have other hits: reported through a merged slot.
    merged: bool,
}

impl<C> Hit<C> {
    #[inline]
    pub(crate) fn new(entry: Entry<C>) -> Self {
        Hit {
            entry,
            bit: 0,
            merged: false,
        }
    }
}

/// Bits of the client filter used by the merge: 2^14, so that a fan-out of
/// a few hundred clients rarely has two of them on one bit.
const FILTER_BITS: u32 = 14;
const FILTER_WORDS: usize = 1 << (FILTER_BITS - 6);

/// The merge filter: which bits hits have set, and which were set twice.
#[derive(Debug, Clone)]
struct Filter {
    seen: [u64; FILTER_WORDS],
    repeated: [u64; FILTER_WORDS],
}

/// The hits that one trie node contributed: `hits[start..]` up to the next
/// run, in the order of the node's entries, less the entry at `skipped`
/// (a No Local subscription of the publisher) if that is not NIL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    pub(crate) node: NodeIdx,
    pub(crate) start: u32,
    pub(crate) skipped: u32,
}

/// Reusable output and scratch space of
/// [`SubscriptionIndex::match_topic`](crate::SubscriptionIndex::match_topic).
///
/// Keep one per routing loop and pass it to every match: its buffers grow to
/// the largest fan-out seen and are then reused, so matching does not
/// allocate in the steady state.
#[derive(Debug, Clone)]
pub struct Matches<C> {
    /// Every matching non-shared subscription.
    pub(crate) hits: Vec<Hit<C>>,
    /// Which node each stretch of `hits` came from.
    pub(crate) runs: Vec<Run>,
    /// Allocated on first use; all zero between matches.
    filter: Option<Box<Filter>>,
    /// How many hits are `merged`.
    merged_hits: usize,
    /// One slot per client that had several hits.
    slots: Vec<Slot<C>>,
    ids: Vec<SubscriptionId>,
    /// The member picked in each matching shared group.
    pub(crate) shared: Vec<Entry<C>>,
    suspects: Vec<Entry<C>>,
    pub(crate) frontier: Vec<NodeIdx>,
    pub(crate) next: Vec<NodeIdx>,
}

impl<C> Default for Matches<C> {
    fn default() -> Self {
        Matches {
            hits: Vec::new(),
            runs: Vec::new(),
            filter: None,
            merged_hits: 0,
            slots: Vec::new(),
            ids: Vec::new(),
            shared: Vec::new(),
            suspects: Vec::new(),
            frontier: Vec::new(),
            next: Vec::new(),
        }
    }
}

impl<C: Copy> Matches<C> {
    /// Empty buffers; they grow on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the previous result, keeping the buffers.
    pub fn clear(&mut self) {
        self.hits.clear();
        self.runs.clear();
        self.merged_hits = 0;
        self.slots.clear();
        self.ids.clear();
        self.shared.clear();
    }

    /// Number of deliveries: non-shared subscribers plus shared groups served.
    pub fn len(&self) -> usize {
        self.hits.len() - self.merged_hits + self.slots.len() + self.shared.len()
    }

    /// True if the message goes nowhere.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The non-shared subscribers: each matching client once, with the
    /// highest QoS and every Subscription Identifier of its matching
    /// subscriptions, clients whose only matches are No Local subscriptions of
    /// the publisher left out [MQTT-3.8.3-3]. In no particular order.
    pub fn subscribers(&self) -> Deliveries<'_, C> {
        Deliveries {
            hits: self.hits.iter(),
            slots: self.slots.iter(),
            ids: &self.ids,
            remaining: self.hits.len() - self.merged_hits + self.slots.len(),
        }
    }

    /// The shared subscriptions served: one delivery per matching
    /// `$share/{ShareName}/{filter}` group, to the member the group's strategy
    /// picked. A client picked by two groups appears twice, because each
    /// shared subscription is delivered separately (section 4.8.2); it
    /// carries that member's Subscription Identifier, if any.
    pub fn shared(&self) -> impl ExactSizeIterator<Item = Delivery<'_, C>> + '_ {
        self.shared.iter().map(Delivery::of)
    }
}

impl<C: Copy + Ord + Hash> Matches<C> {
    /// Merges the hits of clients that matched more than once.
    ///
    /// A client can appear once per matching filter, that is once per run.
    /// Sorting every hit to find those repeats would cost O(n log n) on every
    /// fan-out. Instead:
    /// - the largest run is left alone: a node has one entry per client, so
    ///   its hits are distinct, and a repeat involving it shows up as a hit
    ///   of another run whose client `position_in(node, client)` finds there
    ///   (an index probe on a crowded node);
    /// - the other hits are hashed into a 16384-bit filter, and those whose bit
    ///   was set twice (real repeats, and rare collisions) are suspects too.
    ///
    /// Only the suspects are sorted and merged into one slot per client; every
    /// other hit is reported as it is. A broadcast filter with thousands of
    /// subscribers therefore costs a copy, not a hash, per subscriber.
    pub(crate) fn merge_hits(
        &mut self,
        hasher: QuickHasher,
        position_in: impl Fn(NodeIdx, C) -> Option<usize>,
    ) {
        if self.runs.len() <= 1 {
            return;
        }
        let Matches {
            hits,
            runs,
            filter,
            merged_hits,
            slots,
            ids,
            suspects,
            ..
        } = self;
        let filter = filter.get_or_insert_with(|| {
            Box::new(Filter {
                seen: [0; FILTER_WORDS],
                repeated: [0; FILTER_WORDS],
            })
        });
        let end = |i: usize| runs.get(i + 1).map_or(hits.len(), |r| r.start as usize);
        let largest = (0..runs.len())
            .max_by_key(|&i| end(i) - runs[i].start as usize)
            .unwrap_or(0);
        let big = runs[largest];
        let big_hits = big.start as usize..end(largest);
        let others = (0..hits.len()).filter(|i| !big_hits.contains(i));

        suspects.clear();
        let mut suspect = |h: &mut Hit<C>| {
            if !h.merged {
                h.merged = true;
                suspects.push(h.entry);
            }
        };
        let mut any_repeat = false;
        for i in others.clone() {
            let h = &mut hits[i];
            h.bit = (hasher.hash(&h.entry.client) >> (64 - FILTER_BITS)) as u16;
            let (w, m) = (usize::from(h.bit >> 6) % FILTER_WORDS, 1u64 << (h.bit & 63));
            if filter.seen[w] & m != 0 {
                filter.repeated[w] |= m;
                any_repeat = true;
            }
            filter.seen[w] |= m;
            // Also a subscriber of the largest run's node, with a hit there?
            if let Some(p) = position_in(big.node, h.entry.client) {
                if p as u32 != big.skipped {
                    let p = if big.skipped != NIL && p as u32 > big.skipped {
                        p - 1
                    } else {
                        p
                    };
                    suspect(h);
                    suspect(&mut hits[big_hits.start + p]);
                }
            }
        }
        if any_repeat {
            for i in others.clone() {
                let h = &mut hits[i];
                let (w, m) = (usize::from(h.bit >> 6) % FILTER_WORDS, 1u64 << (h.bit & 63));
                if filter.repeated[w] & m != 0 {
                    suspect(h);
                }
            }
        }
        // Leave the filter all zero for the next match.
        for i in others {
            let w = usize::from(hits[i].bit >> 6) % FILTER_WORDS;
            filter.seen[w] = 0;
            filter.repeated[w] = 0;
        }
        *merged_hits = suspects.len();
        suspects.sort_unstable_by_key(|e| e.client);
        for run in suspects.chunk_by(|a, b| a.client == b.client) {
            let mut slot = Slot {
                client: run[0].client,
                qos: QoS::AtMostOnce,
                retain_as_published: false,
                ids_start: ids.len() as u32,
                ids_len: 0,
            };
            for e in run {
                slot.qos = slot.qos.max(e.options.qos());
                slot.retain_as_published |= e.options.retain_as_published();
                if let Some(id) = e.id {
                    ids.push(id);
                    slot.ids_len += 1;
                }
            }
            slots.push(slot);
        }
    }
}

/// The non-shared deliveries of a [`Matches`], from [`Matches::subscribers`].
#[derive(Debug, Clone)]
pub struct Deliveries<'a, C> {
    hits: slice::Iter<'a, Hit<C>>,
    slots: slice::Iter<'a, Slot<C>>,
    ids: &'a [SubscriptionId],
    remaining: usize,
}

impl<'a, C: Copy> Iterator for Deliveries<'a, C> {
    type Item = Delivery<'a, C>;

    fn next(&mut self) -> Option<Self::Item> {
        let d = match self.hits.find(|h| !h.merged) {
            Some(h) => Delivery::of(&h.entry),
            None => {
                let s = self.slots.next()?;
                let start = s.ids_start as usize;
                Delivery {
                    client: s.client,
                    qos: s.qos,
                    retain_as_published: s.retain_as_published,
                    subscription_ids: &self.ids[start..start + s.ids_len as usize],
                }
            }
        };
        self.remaining -= 1;
        Some(d)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<C: Copy> ExactSizeIterator for Deliveries<'_, C> {}

impl<C: Copy> FusedIterator for Deliveries<'_, C> {}
