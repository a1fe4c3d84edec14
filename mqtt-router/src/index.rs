//! The subscription index: every subscription of every client, in a trie
//! keyed by topic level, matched against topic names.

use alloc::vec::Vec;
use core::fmt;
use core::hash::Hash;

use hashbrown::HashMap;
use mqtt_codec::{SubscriptionId, SubscriptionOptions, TopicFilter, TopicName};

use crate::error::SubscribeError;
use crate::level::{Edges, LevelStr, NodeIdx, NIL, ROOT};
use crate::matches::{Hit, Matches, Slot};
use crate::seed::{KeyedState, SplitMix64};
use crate::shared::{Group, SharedStrategy};
use crate::subscribers::{Entry, PackedOptions, Subscribers};

/// A subscription's options and its 5.0 Subscription Identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Subscription {
    /// Maximum QoS, No Local, Retain As Published and Retain Handling.
    pub options: SubscriptionOptions,
    /// The Subscription Identifier of the SUBSCRIBE that made it, if any
    /// (section 3.8.2.1.2); always `None` under 3.1 and 3.1.1.
    pub id: Option<SubscriptionId>,
}

impl Subscription {
    /// A subscription with these options and identifier.
    pub fn new(options: SubscriptionOptions, id: Option<SubscriptionId>) -> Self {
        Subscription { options, id }
    }
}

impl<C> From<Entry<C>> for Subscription {
    fn from(e: Entry<C>) -> Self {
        Subscription {
            options: e.options.unpack(),
            id: e.id,
        }
    }
}

/// What [`SubscriptionIndex::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insertion {
    /// The client had no subscription with this filter; one was added.
    New,
    /// The client already had this filter; its subscription was replaced
    /// [MQTT-3.8.4-3] and the previous one is returned. Retain Handling 1
    /// sends retained messages only for [`Insertion::New`].
    Replaced(Subscription),
}

impl Insertion {
    /// True if the subscription did not exist before.
    pub fn is_new(&self) -> bool {
        matches!(self, Insertion::New)
    }
}

/// One trie node: a topic filter prefix.
///
/// Literal children are found through the shared [`Edges`] table; the `+` and
/// `#` children, at most one each, are linked directly so that matching
/// reaches them without hashing. 64 bytes for a `u32` client key.
struct Node<C> {
    /// The level this node stands for under its parent (empty for `+`, `#`).
    level: LevelStr,
    parent: NodeIdx,
    /// The `+` child, or NIL.
    plus: NodeIdx,
    /// The `#` child, or NIL: a leaf, since `#` is always the last level.
    hash: NodeIdx,
    /// Number of literal children, so that an empty node is recognised without
    /// looking into the edge table, and leaves skip the edge lookup entirely.
    children: u32,
    /// First shared-subscription group on this filter, or NIL.
    groups: u32,
    /// The non-shared subscriptions whose filter ends here.
    subscribers: Subscribers<C>,
}

impl<C> Node<C> {
    fn new(parent: NodeIdx, level: LevelStr) -> Self {
        Node {
            level,
            parent,
            plus: NIL,
            hash: NIL,
            children: 0,
            groups: NIL,
            subscribers: Subscribers::Empty,
        }
    }

    fn is_unused(&self) -> bool {
        self.subscribers.is_empty()
            && self.plus == NIL
            && self.hash == NIL
            && self.children == 0
            && self.groups == NIL
    }
}

/// In a client's list of subscriptions, marks a shared-group reference (the
/// other 31 bits are the group index) as opposed to a trie node index.
const GROUP_BIT: u32 = 1 << 31;

/// The most nodes or groups the index holds: indices must stay below
/// [`GROUP_BIT`] so that a client's list can tell them apart.
const MAX_SLOTS: usize = (GROUP_BIT - 1) as usize;

/// Every subscription of every client, ready to be matched against topics.
///
/// `C` is the key the broker uses for a client or session (a connection id,
/// a session slot): small, `Copy`, hashable and ordered.
///
/// # Structure
/// A trie keyed by topic level, whose nodes live in one slab `Vec` linked by
/// `u32` indices; each level string is stored once, in its node. Literal
/// edges share one hash table keyed from the seed; `+` and `#` children are
/// direct links. A node keeps its non-shared subscriptions inline when there
/// is one, in a vector (indexed by client beyond 16) when there are more, and
/// links its shared-subscription groups. Nodes left empty by an unsubscribe
/// are removed at once. Each client has the list of its subscriptions, so
/// [`remove_client`](Self::remove_client) does not scan the index.
///
/// # Cost
/// [`match_topic`](Self::match_topic) walks only the branches that can
/// match: per topic level, one hash probe per frontier node plus its `+` and
/// `#` links, then one step per matching subscription. It does not depend on
/// the number of subscriptions in the index and does not allocate once the
/// [`Matches`] buffers have grown. Insert and remove cost one hash probe per
/// filter level.
///
/// # Example
/// ```
/// use mqtt_codec::{QoS, SubscriptionId, SubscriptionOptions, TopicFilter, TopicName};
/// use mqtt_router::{Matches, Subscription, SubscriptionIndex};
///
/// let mut index = SubscriptionIndex::<u32>::new(0x5eed);
/// let sub = |qos, id| Subscription::new(SubscriptionOptions::new(qos), SubscriptionId::new(id));
/// index.insert(1, &TopicFilter::from_static("sport/tennis/+"), sub(QoS::AtLeastOnce, 7))?;
/// index.insert(1, &TopicFilter::from_static("sport/#"), sub(QoS::AtMostOnce, 8))?;
/// index.insert(2, &TopicFilter::from_static("$share/team/sport/#"), sub(QoS::ExactlyOnce, 9))?;
///
/// let mut matches = Matches::new();
/// index.match_topic(&TopicName::from_static("sport/tennis/player1"), None, &mut matches);
/// let d: Vec<_> = matches.subscribers().collect();
/// assert_eq!(d.len(), 1); // client 1 once, for both of its filters
/// assert_eq!((d[0].client, d[0].qos), (1, QoS::AtLeastOnce));
/// assert_eq!(d[0].subscription_ids.len(), 2);
/// assert_eq!(matches.shared().next().map(|d| d.client), Some(2));
/// # Ok::<(), mqtt_router::SubscribeError>(())
/// ```
pub struct SubscriptionIndex<C> {
    nodes: Vec<Node<C>>,
    free_nodes: Vec<NodeIdx>,
    edges: Edges,
    /// Shared-subscription groups; a free slot has no members and node NIL.
    groups: Vec<Group<C>>,
    free_groups: Vec<u32>,
    /// Each client's subscriptions: node indices, or `GROUP_BIT | group`.
    clients: HashMap<C, Vec<u32>, KeyedState>,
    /// Hashes client keys inside nodes with many subscribers.
    state: KeyedState,
    strategy: SharedStrategy,
    rng: SplitMix64,
    len: usize,
}

impl<C> fmt::Debug for SubscriptionIndex<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionIndex")
            .field("subscriptions", &self.len)
            .field("clients", &self.clients.len())
            .field("nodes", &(self.nodes.len() - self.free_nodes.len()))
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl<C: Copy + Eq + Hash + Ord> SubscriptionIndex<C> {
    /// An empty index whose shared groups take turns ([`SharedStrategy::RoundRobin`]).
    ///
    /// `seed` keys the hashers and drives [`SharedStrategy::Random`]; give a
    /// fixed one in tests and a random one (e.g. from `getrandom`) in a broker.
    pub fn new(seed: u64) -> Self {
        Self::with_strategy(seed, SharedStrategy::default())
    }

    /// An empty index whose shared groups pick members by `strategy`.
    pub fn with_strategy(seed: u64, strategy: SharedStrategy) -> Self {
        let mut rng = SplitMix64::new(seed);
        let edges = Edges::new(rng.keyed_state());
        let clients = HashMap::with_hasher(rng.keyed_state());
        let state = rng.keyed_state();
        SubscriptionIndex {
            nodes: alloc::vec![Node::new(NIL, LevelStr::EMPTY)],
            free_nodes: Vec::new(),
            edges,
            groups: Vec::new(),
            free_groups: Vec::new(),
            clients,
            state,
            strategy,
            rng,
            len: 0,
        }
    }

    /// Number of subscriptions, shared ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of clients with at least one subscription.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Adds a subscription of `client` to `filter`, or replaces the client's
    /// subscription to the identical filter [MQTT-3.8.4-3].
    ///
    /// `$share/{ShareName}/{filter}` joins the client to that shared group;
    /// a client can hold a shared and a non-shared subscription to the same
    /// filter, and be a member of several groups.
    ///
    /// # Errors
    /// [`SubscribeError::NoLocalOnSharedSubscription`] for a shared filter with
    /// No Local set [MQTT-3.8.3-4]; [`SubscribeError::CapacityExceeded`] when
    /// the index has no room for the filter's levels. Either way nothing
    /// changes.
    pub fn insert<B: AsRef<[u8]>>(
        &mut self,
        client: C,
        filter: &TopicFilter<B>,
        subscription: Subscription,
    ) -> Result<Insertion, SubscribeError> {
        let entry = Entry {
            client,
            id: subscription.id,
            options: PackedOptions::pack(subscription.options),
        };
        let Some(shared) = filter.shared() else {
            let n = self.ensure_path(filter.as_str())?;
            return Ok(
                match self.nodes[n as usize]
                    .subscribers
                    .upsert(entry, &self.state)
                {
                    Some(previous) => Insertion::Replaced(previous.into()),
                    None => {
                        self.clients.entry(client).or_default().push(n);
                        self.len += 1;
                        Insertion::New
                    }
                },
            );
        };
        if subscription.options.no_local {
            return Err(SubscribeError::NoLocalOnSharedSubscription);
        }
        if self.free_groups.is_empty() && self.groups.len() >= MAX_SLOTS {
            return Err(SubscribeError::CapacityExceeded);
        }
        let n = self.ensure_path(shared.filter)?;
        let g = match self.find_group(n, shared.share_name) {
            Some(g) => g,
            None => self.add_group(n, shared.share_name),
        };
        let group = &mut self.groups[g as usize];
        Ok(match group.position(client) {
            Some(p) => Insertion::Replaced(core::mem::replace(&mut group.members[p], entry).into()),
            None => {
                group.members.push(entry);
                self.clients.entry(client).or_default().push(GROUP_BIT | g);
                self.len += 1;
                Insertion::New
            }
        })
    }

    /// Removes the subscription of `client` to `filter` (UNSUBSCRIBE),
    /// returning it, or `None` if the client had none.
    pub fn remove<B: AsRef<[u8]>>(
        &mut self,
        client: C,
        filter: &TopicFilter<B>,
    ) -> Option<Subscription> {
        let removed = match filter.shared() {
            None => {
                let n = self.find_node(filter.as_str())?;
                let removed = self.nodes[n as usize]
                    .subscribers
                    .remove(client, &self.state)?;
                self.forget(client, n);
                self.prune(n);
                removed
            }
            Some(shared) => {
                let n = self.find_node(shared.filter)?;
                let g = self.find_group(n, shared.share_name)?;
                let p = self.groups[g as usize].position(client)?;
                let removed = self.leave_group(g, p);
                self.forget(client, GROUP_BIT | g);
                removed
            }
        };
        self.len -= 1;
        Some(removed.into())
    }

    /// Removes every subscription of `client` (session end), returning how
    /// many there were. Costs one step per subscription of that client.
    pub fn remove_client(&mut self, client: C) -> usize {
        let Some(refs) = self.clients.remove(&client) else {
            return 0;
        };
        // Each reference names a node or group where this client still has a
        // subscription, so none of them is freed before its turn comes.
        for &r in &refs {
            if r & GROUP_BIT == 0 {
                self.nodes[r as usize]
                    .subscribers
                    .remove(client, &self.state);
                self.prune(r);
            } else {
                let g = r & !GROUP_BIT;
                if let Some(p) = self.groups[g as usize].position(client) {
                    self.leave_group(g, p);
                }
            }
        }
        self.len -= refs.len();
        refs.len()
    }

    /// The subscription of `client` to exactly `filter`, if it has one.
    pub fn get<B: AsRef<[u8]>>(&self, client: C, filter: &TopicFilter<B>) -> Option<Subscription> {
        match filter.shared() {
            None => {
                let n = self.find_node(filter.as_str())?;
                self.nodes[n as usize]
                    .subscribers
                    .get(client, &self.state)
                    .map(|e| (*e).into())
            }
            Some(shared) => {
                let n = self.find_node(shared.filter)?;
                let group = &self.groups[self.find_group(n, shared.share_name)? as usize];
                group.position(client).map(|p| group.members[p].into())
            }
        }
    }

    /// Finds who receives a message published to `topic` by `publisher`,
    /// replacing the contents of `out`.
    ///
    /// - Non-shared subscriptions: [`Matches::subscribers`] lists each
    ///   matching client once, with the highest QoS of its matching
    ///   subscriptions [MQTT-3.3.4-2] and all their Subscription Identifiers
    ///   [MQTT-3.3.4-4]. A subscription with No Local set does not match a
    ///   message its own client published [MQTT-3.8.3-3]; pass the
    ///   publisher's key as `publisher` (`None` for messages the broker
    ///   originates).
    /// - Shared subscriptions: [`Matches::shared`] lists one member of each
    ///   matching group, picked by the index's [`SharedStrategy`]; this is why
    ///   matching takes `&mut self`.
    ///
    /// Filters starting with a wildcard do not match topics starting with `$`
    /// [MQTT-4.7.2-1]. No allocation once `out` has grown to the fan-out.
    pub fn match_topic<B: AsRef<[u8]>>(
        &mut self,
        topic: &TopicName<B>,
        publisher: Option<C>,
        out: &mut Matches<C>,
    ) {
        out.clear();
        let SubscriptionIndex {
            nodes,
            edges,
            groups,
            strategy,
            rng,
            ..
        } = self;
        let nodes = &nodes[..];
        let dollar = topic.is_dollar();
        let mut hit_nodes = 0u32;
        {
            let Matches {
                shared,
                ids,
                hits,
                frontier,
                next,
                ..
            } = &mut *out;
            let mut visit = |n: NodeIdx, hits: &mut Vec<Hit<C>>| {
                let node = &nodes[n as usize];
                let before = hits.len();
                for e in node.subscribers.as_slice() {
                    if e.options.no_local() && Some(e.client) == publisher {
                        continue;
                    }
                    hits.push(Hit {
                        client: e.client,
                        qos: e.options.qos(),
                        retain_as_published: e.options.retain_as_published(),
                        id: e.id,
                    });
                }
                hit_nodes += u32::from(hits.len() > before);
                let mut g = node.groups;
                while g != NIL {
                    let group = &mut groups[g as usize];
                    if let Some(m) = group.pick(*strategy, rng) {
                        let ids_start = ids.len() as u32;
                        ids.extend(m.id);
                        shared.push(Slot {
                            client: m.client,
                            qos: m.options.qos(),
                            retain_as_published: m.options.retain_as_published(),
                            ids_start,
                            ids_len: ids.len() as u32 - ids_start,
                        });
                    }
                    g = group.next;
                }
            };

            frontier.clear();
            frontier.push(ROOT);
            for level in topic.as_str().split('/') {
                let level_hash = edges.level_hash(level);
                next.clear();
                for &n in frontier.iter() {
                    let node = &nodes[n as usize];
                    // [MQTT-4.7.2-1]: at the root, a '$' topic skips '+' and '#'.
                    if !(dollar && n == ROOT) {
                        if node.hash != NIL {
                            // '#' matches the remaining levels, however many.
                            visit(node.hash, hits);
                        }
                        if node.plus != NIL {
                            next.push(node.plus);
                        }
                    }
                    if node.children != 0 {
                        let child = edges.find(Edges::edge_hash(level_hash, n), |&c| {
                            let c = &nodes[c as usize];
                            c.parent == n && c.level.is(level)
                        });
                        next.extend(child);
                    }
                }
                core::mem::swap(frontier, next);
                if frontier.is_empty() {
                    break;
                }
            }
            for &n in frontier.iter() {
                visit(n, hits);
                // "sport/#" also matches "sport": '#' includes the parent level.
                let hash = nodes[n as usize].hash;
                if hash != NIL {
                    visit(hash, hits);
                }
            }
        }
        out.merge_hits(hit_nodes <= 1);
    }

    /// The node of `filter` (no `$share` prefix), if it exists.
    fn find_node(&self, filter: &str) -> Option<NodeIdx> {
        let mut n = ROOT;
        for level in filter.split('/') {
            let node = &self.nodes[n as usize];
            n = match level {
                "+" => node.plus,
                "#" => node.hash,
                _ => self.literal_child(n, level, self.edges.level_hash(level))?,
            };
            if n == NIL {
                return None;
            }
        }
        Some(n)
    }

    fn literal_child(&self, parent: NodeIdx, level: &str, level_hash: u64) -> Option<NodeIdx> {
        if self.nodes[parent as usize].children == 0 {
            return None;
        }
        let nodes = &self.nodes;
        self.edges.find(Edges::edge_hash(level_hash, parent), |&c| {
            let c = &nodes[c as usize];
            c.parent == parent && c.level.is(level)
        })
    }

    /// The node of `filter`, created with its missing ancestors.
    fn ensure_path(&mut self, filter: &str) -> Result<NodeIdx, SubscribeError> {
        let levels = filter.split('/').count();
        if self.free_nodes.len() < levels && self.nodes.len() + levels > MAX_SLOTS {
            return Err(SubscribeError::CapacityExceeded);
        }
        let mut n = ROOT;
        for level in filter.split('/') {
            n = match level {
                "+" => match self.nodes[n as usize].plus {
                    NIL => {
                        let c = self.alloc_node(n, LevelStr::EMPTY);
                        self.nodes[n as usize].plus = c;
                        c
                    }
                    c => c,
                },
                "#" => match self.nodes[n as usize].hash {
                    NIL => {
                        let c = self.alloc_node(n, LevelStr::EMPTY);
                        self.nodes[n as usize].hash = c;
                        c
                    }
                    c => c,
                },
                _ => {
                    let level_hash = self.edges.level_hash(level);
                    match self.literal_child(n, level, level_hash) {
                        Some(c) => c,
                        None => {
                            let c = self.alloc_node(n, LevelStr::new(level));
                            self.nodes[n as usize].children += 1;
                            let nodes = &self.nodes;
                            self.edges.insert(Edges::edge_hash(level_hash, n), c, |i| {
                                let node = &nodes[i as usize];
                                (node.parent, node.level.as_str())
                            });
                            c
                        }
                    }
                }
            };
        }
        Ok(n)
    }

    fn alloc_node(&mut self, parent: NodeIdx, level: LevelStr) -> NodeIdx {
        let node = Node::new(parent, level);
        match self.free_nodes.pop() {
            Some(n) => {
                self.nodes[n as usize] = node;
                n
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as NodeIdx
            }
        }
    }

    /// Removes `n` and its ancestors as long as they hold nothing.
    fn prune(&mut self, mut n: NodeIdx) {
        while n != ROOT && self.nodes[n as usize].is_unused() {
            let node = &mut self.nodes[n as usize];
            let parent = node.parent;
            let level = core::mem::replace(&mut node.level, LevelStr::EMPTY);
            node.parent = NIL;
            let p = &mut self.nodes[parent as usize];
            if p.plus == n {
                p.plus = NIL;
            } else if p.hash == n {
                p.hash = NIL;
            } else {
                p.children -= 1;
                let hash = Edges::edge_hash(self.edges.level_hash(level.as_str()), parent);
                self.edges.remove(hash, n);
            }
            self.free_nodes.push(n);
            n = parent;
        }
    }

    fn find_group(&self, n: NodeIdx, share_name: &str) -> Option<u32> {
        let mut g = self.nodes[n as usize].groups;
        while g != NIL {
            let group = &self.groups[g as usize];
            if &*group.share_name == share_name {
                return Some(g);
            }
            g = group.next;
        }
        None
    }

    fn add_group(&mut self, n: NodeIdx, share_name: &str) -> u32 {
        let mut group = Group::new(n, share_name);
        group.next = self.nodes[n as usize].groups;
        let g = match self.free_groups.pop() {
            Some(g) => {
                self.groups[g as usize] = group;
                g
            }
            None => {
                self.groups.push(group);
                (self.groups.len() - 1) as u32
            }
        };
        self.nodes[n as usize].groups = g;
        g
    }

    /// Removes member `p` of group `g`; an empty group is removed with it,
    /// and so is its node if nothing else holds it.
    fn leave_group(&mut self, g: u32, p: usize) -> Entry<C> {
        let group = &mut self.groups[g as usize];
        let removed = group.remove_at(p);
        if group.members.is_empty() {
            let n = group.node;
            let next = group.next;
            self.groups[g as usize] = Group::new(NIL, "");
            let mut link = self.nodes[n as usize].groups;
            if link == g {
                self.nodes[n as usize].groups = next;
            } else {
                while link != NIL {
                    let group = &mut self.groups[link as usize];
                    if group.next == g {
                        group.next = next;
                        break;
                    }
                    link = group.next;
                }
            }
            self.free_groups.push(g);
            self.prune(n);
        }
        removed
    }

    /// Drops `r` from the list of `client`'s subscriptions.
    fn forget(&mut self, client: C, r: u32) {
        if let Some(refs) = self.clients.get_mut(&client) {
            if let Some(p) = refs.iter().position(|&x| x == r) {
                refs.swap_remove(p);
            }
            if refs.is_empty() {
                self.clients.remove(&client);
            } else if refs.capacity() > 4 * refs.len() {
                refs.shrink_to(2 * refs.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::QoS;

    const FILTERS: [&str; 9] = [
        "a/b/c",
        "a/+/c",
        "a/#",
        "#",
        "+",
        "a//",
        "$SYS/#",
        "$share/g/a/b/c",
        "$share/h/a/+/c",
    ];

    fn live_nodes<C>(index: &SubscriptionIndex<C>) -> usize {
        index.nodes.len() - index.free_nodes.len()
    }

    #[test]
    fn a_node_is_64_bytes_for_u32_client_keys() {
        assert_eq!(core::mem::size_of::<Node<u32>>(), 64);
    }

    #[test]
    fn unsubscribing_everything_frees_every_node_edge_and_group() {
        let mut index = SubscriptionIndex::<u32>::new(1);
        let sub = Subscription::new(SubscriptionOptions::new(QoS::AtLeastOnce), None);
        for round in 0..3 {
            for client in 0..4 {
                for f in FILTERS {
                    assert!(index
                        .insert(client, &TopicFilter::from_static(f), sub)
                        .unwrap()
                        .is_new());
                }
            }
            let slots = index.nodes.len();
            assert!(live_nodes(&index) > 1);
            // Half by UNSUBSCRIBE, half by session end.
            for f in FILTERS {
                assert!(index.remove(0, &TopicFilter::from_static(f)).is_some());
                assert!(index.remove(1, &TopicFilter::from_static(f)).is_some());
            }
            assert_eq!(index.remove_client(2), FILTERS.len());
            assert_eq!(index.remove_client(3), FILTERS.len());
            assert_eq!(live_nodes(&index), 1, "round {round}");
            assert_eq!(index.edges.len(), 0);
            assert_eq!(index.free_groups.len(), index.groups.len());
            assert!(index.clients.is_empty() && index.is_empty());
            let root = &index.nodes[ROOT as usize];
            assert!(root.is_unused());
            // Freed slots are reused rather than the slab growing.
            assert!(round == 0 || index.nodes.len() == slots);
        }
    }

    #[test]
    fn a_refused_subscription_changes_nothing() {
        let mut index = SubscriptionIndex::<u32>::new(1);
        let mut options = SubscriptionOptions::new(QoS::AtMostOnce);
        options.no_local = true;
        let f = TopicFilter::from_static("$share/g/x/y/z");
        assert_eq!(
            index.insert(1, &f, Subscription::new(options, None)),
            Err(SubscribeError::NoLocalOnSharedSubscription)
        );
        assert_eq!(live_nodes(&index), 1);
        assert!(index.groups.is_empty() && index.clients.is_empty());
    }
}
