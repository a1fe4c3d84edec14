//! The result of matching a topic: who receives a message, and how.

use alloc::vec::Vec;

use mqtt_codec::{QoS, SubscriptionId};

use crate::level::NodeIdx;

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

/// A delivery before its identifiers are resolved into a slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<C> {
    pub(crate) client: C,
    pub(crate) qos: QoS,
    pub(crate) retain_as_published: bool,
    pub(crate) ids_start: u32,
    pub(crate) ids_len: u32,
}

/// One matching subscription, before the per-client merge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<C> {
    pub(crate) client: C,
    pub(crate) qos: QoS,
    pub(crate) retain_as_published: bool,
    pub(crate) id: Option<SubscriptionId>,
}

/// Reusable output and scratch space of
/// [`SubscriptionIndex::match_topic`](crate::SubscriptionIndex::match_topic).
///
/// Keep one per routing loop and pass it to every match: its buffers grow to
/// the largest fan-out seen and are then reused, so matching does not
/// allocate in the steady state.
#[derive(Debug, Clone)]
pub struct Matches<C> {
    pub(crate) deliveries: Vec<Slot<C>>,
    pub(crate) shared: Vec<Slot<C>>,
    pub(crate) ids: Vec<SubscriptionId>,
    pub(crate) hits: Vec<Hit<C>>,
    pub(crate) frontier: Vec<NodeIdx>,
    pub(crate) next: Vec<NodeIdx>,
}

impl<C> Default for Matches<C> {
    fn default() -> Self {
        Matches {
            deliveries: Vec::new(),
            shared: Vec::new(),
            ids: Vec::new(),
            hits: Vec::new(),
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
        self.deliveries.clear();
        self.shared.clear();
        self.ids.clear();
        self.hits.clear();
    }

    /// Number of deliveries: non-shared subscribers plus shared groups served.
    pub fn len(&self) -> usize {
        self.deliveries.len() + self.shared.len()
    }

    /// True if the message goes nowhere.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The non-shared subscribers: each matching client once, with the
    /// highest QoS and every Subscription Identifier of its matching
    /// subscriptions, clients whose only matches are No Local subscriptions of
    /// the publisher left out [MQTT-3.8.3-3]. In no particular order.
    pub fn subscribers(&self) -> impl ExactSizeIterator<Item = Delivery<'_, C>> + '_ {
        self.deliveries.iter().map(|s| self.resolve(s))
    }

    /// The shared subscriptions served: one delivery per matching
    /// `$share/{ShareName}/{filter}` group, to the member the group's strategy
    /// picked. A client picked by two groups appears twice, because each
    /// shared subscription is delivered separately (section 4.8.2); it
    /// carries that member's Subscription Identifier, if any.
    pub fn shared(&self) -> impl ExactSizeIterator<Item = Delivery<'_, C>> + '_ {
        self.shared.iter().map(|s| self.resolve(s))
    }

    fn resolve(&self, s: &Slot<C>) -> Delivery<'_, C> {
        let start = s.ids_start as usize;
        Delivery {
            client: s.client,
            qos: s.qos,
            retain_as_published: s.retain_as_published,
            subscription_ids: &self.ids[start..start + s.ids_len as usize],
        }
    }
}

impl<C: Copy + Ord> Matches<C> {
    /// Merges the collected hits into one delivery per client.
    /// `single_node`: every hit came from one trie node, so the clients are
    /// already distinct and no sort is needed.
    pub(crate) fn merge_hits(&mut self, single_node: bool) {
        let Matches {
            deliveries,
            ids,
            hits,
            ..
        } = self;
        if !single_node {
            hits.sort_unstable_by_key(|h| h.client);
        }
        let mut i = 0;
        while i < hits.len() {
            let first = hits[i];
            let mut slot = Slot {
                client: first.client,
                qos: first.qos,
                retain_as_published: first.retain_as_published,
                ids_start: ids.len() as u32,
                ids_len: 0,
            };
            let mut j = i;
            while j < hits.len() && hits[j].client == first.client {
                let h = hits[j];
                slot.qos = slot.qos.max(h.qos);
                slot.retain_as_published |= h.retain_as_published;
                if let Some(id) = h.id {
                    ids.push(id);
                    slot.ids_len += 1;
                }
                j += 1;
            }
            deliveries.push(slot);
            i = j;
        }
    }
}
