//! The subscription index: every subscription of every client, in a trie
//! keyed by topic level, matched against topic names.

use alloc::vec::Vec;
use core::fmt;
use core::hash::Hash;

use hashbrown::{HashMap, HashTable};
use mqtt_codec::{SubscriptionId, SubscriptionOptions, TopicFilter, TopicName};

use crate::error::SubscribeError;
use crate::level::{levels, Edges, LevelKey, LevelStr, NodeIdx, Slab, NIL, ROOT};
use crate::matches::{Hit, Matches, Run};
use crate::seed::{KeyedState, QuickHasher, SplitMix64};
use crate::shared::{Group, SharedStrategy};
use crate::subscribers::{Entry, PackedOptions, Subscribers};

use clients::{ClientList, ClientRef};

mod clients;
mod groups;

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

/// One trie node: a topic filter prefix. 48 bytes for a `u32` client key.
///
/// Most nodes are leaves holding one or a few subscriptions, so everything a
/// leaf does not need (the `+` and `#` children, the count of literal
/// children, shared groups) lives in a separate [`Links`] record that only
/// inner nodes and nodes with shared groups have. Those records are few and
/// small, so the slab of them stays in cache while matching.
struct Node<C> {
    /// The level this node stands for under its parent (empty for `+`, `#`).
    level: LevelStr,
    parent: NodeIdx,
    /// Index of this node's [`Links`], or NIL.
    links: u32,
    /// The non-shared subscriptions whose filter ends here.
    subscribers: Subscribers<C>,
}

/// The part of a node that leaves do not need.
#[derive(Clone, Copy)]
struct Links {
    /// The `+` child, or NIL.
    plus: NodeIdx,
    /// The `#` child, or NIL: a leaf, since `#` is always the last level.
    hash: NodeIdx,
    /// First shared-subscription group on this filter, or NIL.
    groups: u32,
    /// Number of literal children (found through the edge table).
    children: u32,
}

impl Links {
    const NONE: Links = Links {
        plus: NIL,
        hash: NIL,
        groups: NIL,
        children: 0,
    };

    fn is_empty(&self) -> bool {
        self.plus == NIL && self.hash == NIL && self.groups == NIL && self.children == 0
    }
}

impl<C> Node<C> {
    fn new(parent: NodeIdx, level: LevelStr) -> Self {
        Node {
            level,
            parent,
            links: NIL,
            subscribers: Subscribers::Empty,
        }
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
/// A trie keyed by topic level, whose nodes live in a slab (one vector)
/// linked by `u32` indices; each level string is stored once, in its node,
/// inline when it is up to 15 bytes. Literal edges of the whole trie share
/// one hash table keyed from the seed; `+` and `#` children are direct
/// links. A node keeps one non-shared subscription inline, up to 16 in an
/// exact-size slice, more in a vector indexed by client, and links its
/// shared-subscription groups. Nodes left empty by an unsubscribe are
/// removed at once. Each client has a linked list of its subscriptions, so
/// [`remove_client`](Self::remove_client) does not scan the index.
///
/// # Cost
/// [`match_topic`](Self::match_topic) walks only the branches that can
/// match: per topic level, one hash probe per frontier node plus its `+` and
/// `#` links, then one step per matching subscription. It does not depend on
/// the number of subscriptions in the index and does not allocate once the
/// [`Matches`] buffers have grown. Insert and remove cost one hash probe per
/// filter level (plus, for remove, a walk of that client's own list).
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
    nodes: Slab<Node<C>>,
    links: Slab<Links>,
    edges: Edges,
    /// Shared-subscription groups; a free slot has no members and node NIL.
    groups: Slab<Group<C>>,
    /// Each client's list of subscriptions, with its counts.
    clients: HashMap<C, ClientList, KeyedState>,
    refs: Slab<ClientRef>,
    /// The shared groups by (node, ShareName): joining a group does not
    /// walk the groups on its filter.
    group_table: HashTable<u32>,
    /// Hashes client keys inside nodes with many subscribers.
    state: KeyedState,
    /// Hashes client keys in the per-match merge.
    merge_hasher: QuickHasher,
    strategy: SharedStrategy,
    rng: SplitMix64,
    len: usize,
}

impl<C> fmt::Debug for SubscriptionIndex<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionIndex")
            .field("subscriptions", &self.len)
            .field("clients", &self.clients.len())
            .field("nodes", &self.nodes.live())
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
        let merge_hasher = QuickHasher::new(rng.next_u64());
        let mut nodes = Slab::new();
        nodes.insert(Node::new(NIL, LevelStr::EMPTY));
        SubscriptionIndex {
            nodes,
            links: Slab::new(),
            edges,
            groups: Slab::new(),
            clients,
            refs: Slab::new(),
            group_table: HashTable::new(),
            state,
            merge_hasher,
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

    /// Number of shared-subscription groups (each with at least one member:
    /// a group goes with its last member).
    pub fn shared_group_count(&self) -> usize {
        self.group_table.len()
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
        let mut entry = Entry {
            client,
            id: subscription.id,
            options: PackedOptions::pack(subscription.options),
            slot: NIL,
        };
        let shared = filter.shared();
        if shared.is_some() && subscription.options.no_local {
            return Err(SubscribeError::NoLocalOnSharedSubscription);
        }
        let path = shared.map_or(filter.as_str(), |s| s.filter);
        // Room for a new node per level, each with links, one group and one
        // client reference, checked before anything changes.
        let levels = levels(path).count();
        if !(self.nodes.has_room(levels, MAX_SLOTS)
            && self.links.has_room(levels, MAX_SLOTS)
            && self.groups.has_room(1, MAX_SLOTS)
            && self.refs.has_room(1, MAX_SLOTS))
        {
            return Err(SubscribeError::CapacityExceeded);
        }
        let n = self.ensure_path(path);
        // The client's reference, linked into its list only if the
        // subscription is new (a replacement keeps the one it had).
        entry.slot = self.refs.insert(ClientRef::UNLINKED);
        let (previous, target) = match shared {
            None => {
                let previous = self.nodes.get_mut(n).subscribers.upsert(entry, &self.state);
                (previous, n)
            }
            Some(shared) => {
                let g = match self.find_group(n, shared.share_name) {
                    Some(g) => g,
                    None => self.add_group(n, shared.share_name),
                };
                (self.join_group(g, entry), GROUP_BIT | g)
            }
        };
        Ok(match previous {
            Some(previous) => {
                self.refs.release(entry.slot);
                Insertion::Replaced(previous.into())
            }
            None => {
                self.remember(client, entry.slot, target);
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
                let removed = self
                    .nodes
                    .get_mut(n)
                    .subscribers
                    .remove(client, &self.state)?;
                self.forget(client, removed.slot, false);
                self.prune(n);
                removed
            }
            Some(shared) => {
                let n = self.find_node(shared.filter)?;
                let g = self.find_group(n, shared.share_name)?;
                let p = self.groups.get(g).position(client, &self.state)?;
                let removed = self.leave_group(g, p);
                self.forget(client, removed.slot, true);
                removed
            }
        };
        self.len -= 1;
        Some(removed.into())
    }

    /// Removes every subscription of `client` (session end), returning how
    /// many there were. Costs one step per subscription of that client.
    pub fn remove_client(&mut self, client: C) -> usize {
        let Some(list) = self.clients.remove(&client) else {
            return 0;
        };
        let mut r = list.head;
        let mut count = 0;
        // Each reference names a node or group where this client still has a
        // subscription, so none of them is freed before its turn comes.
        while r != NIL {
            let ClientRef { target, next, .. } = *self.refs.get(r);
            self.refs.release(r);
            if target & GROUP_BIT == 0 {
                self.nodes
                    .get_mut(target)
                    .subscribers
                    .remove(client, &self.state);
                self.prune(target);
            } else {
                let g = target & !GROUP_BIT;
                if let Some(p) = self.groups.get(g).position(client, &self.state) {
                    self.leave_group(g, p);
                }
            }
            count += 1;
            r = next;
        }
        self.len -= count;
        count
    }

    /// The subscription of `client` to exactly `filter`, if it has one.
    pub fn get<B: AsRef<[u8]>>(&self, client: C, filter: &TopicFilter<B>) -> Option<Subscription> {
        match filter.shared() {
            None => {
                let n = self.find_node(filter.as_str())?;
                self.nodes
                    .get(n)
                    .subscribers
                    .get(client, &self.state)
                    .map(|e| (*e).into())
            }
            Some(shared) => {
                let n = self.find_node(shared.filter)?;
                let group = self.groups.get(self.find_group(n, shared.share_name)?);
                group
                    .position(client, &self.state)
                    .map(|p| group.members[p].into())
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
            links,
            edges,
            groups,
            strategy,
            rng,
            merge_hasher,
            state,
            ..
        } = self;
        let Matches {
            hits,
            runs,
            shared,
            frontier,
            next,
            ..
        } = &mut *out;
        Collector {
            nodes,
            links,
            groups,
            strategy: *strategy,
            rng,
            publisher,
            hits,
            runs,
            shared,
        }
        .walk(edges, topic.as_str(), frontier, next);
        out.merge_hits(*merge_hasher, |n, client| {
            nodes.get(n).subscribers.position(client, state)
        });
    }

    fn links_of(&self, n: NodeIdx) -> Links {
        match self.nodes.get(n).links {
            NIL => Links::NONE,
            l => *self.links.get(l),
        }
    }

    /// The links of node `n`, created if it has none.
    fn links_mut(&mut self, n: NodeIdx) -> &mut Links {
        let mut l = self.nodes.get(n).links;
        if l == NIL {
            l = self.links.insert(Links::NONE);
            self.nodes.get_mut(n).links = l;
        }
        self.links.get_mut(l)
    }

    /// Frees the links of node `n` if they link nothing any more.
    fn trim_links(&mut self, n: NodeIdx) {
        let l = self.nodes.get(n).links;
        if l != NIL && self.links.get(l).is_empty() {
            self.links.release(l);
            self.nodes.get_mut(n).links = NIL;
        }
    }

    /// The node of `filter` (no `$share` prefix), if it exists.
    fn find_node(&self, filter: &str) -> Option<NodeIdx> {
        let mut n = ROOT;
        for level in levels(filter) {
            let links = self.links_of(n);
            n = match level {
                b"+" => links.plus,
                b"#" => links.hash,
                _ if links.children == 0 => NIL,
                _ => self.literal_child(n, &LevelKey::new(level, &self.edges))?,
            };
            if n == NIL {
                return None;
            }
        }
        Some(n)
    }

    fn literal_child(&self, parent: NodeIdx, key: &LevelKey<'_>) -> Option<NodeIdx> {
        let nodes = &self.nodes;
        self.edges.find(Edges::edge_hash(key.hash, parent), |&c| {
            let c = nodes.get(c);
            c.parent == parent && c.level.is(key)
        })
    }

    /// The node of `filter`, created with its missing ancestors. The caller
    /// checked that there is room.
    fn ensure_path(&mut self, filter: &str) -> NodeIdx {
        let mut n = ROOT;
        for level in levels(filter) {
            let links = self.links_of(n);
            n = match level {
                b"+" if links.plus != NIL => links.plus,
                b"+" => {
                    let c = self.nodes.insert(Node::new(n, LevelStr::EMPTY));
                    self.links_mut(n).plus = c;
                    c
                }
                b"#" if links.hash != NIL => links.hash,
                b"#" => {
                    let c = self.nodes.insert(Node::new(n, LevelStr::EMPTY));
                    self.links_mut(n).hash = c;
                    c
                }
                _ => {
                    let key = LevelKey::new(level, &self.edges);
                    let existing = if links.children == 0 {
                        None
                    } else {
                        self.literal_child(n, &key)
                    };
                    match existing {
                        Some(c) => c,
                        None => {
                            let c = self.nodes.insert(Node::new(n, LevelStr::new(&key)));
                            self.links_mut(n).children += 1;
                            let nodes = &self.nodes;
                            self.edges.insert(Edges::edge_hash(key.hash, n), c, |i| {
                                let node = nodes.get(i);
                                (node.parent, node.level.as_bytes())
                            });
                            c
                        }
                    }
                }
            };
        }
        n
    }

    /// Removes `n` and its ancestors as long as they hold nothing.
    fn prune(&mut self, mut n: NodeIdx) {
        loop {
            let node = self.nodes.get(n);
            if n == ROOT || node.links != NIL || !node.subscribers.is_empty() {
                return;
            }
            let parent = node.parent;
            let node = core::mem::replace(self.nodes.get_mut(n), Node::new(NIL, LevelStr::EMPTY));
            self.nodes.release(n);
            let links = self.links_mut(parent);
            if links.plus == n {
                links.plus = NIL;
            } else if links.hash == n {
                links.hash = NIL;
            } else {
                links.children -= 1;
                self.edges.remove(parent, node.level.as_bytes(), n);
            }
            self.trim_links(parent);
            n = parent;
        }
    }
}

/// What matching collects on its way down the tree: the subscriptions that
/// end at each matching node, and one member of each matching group.
struct Collector<'a, C> {
    nodes: &'a Slab<Node<C>>,
    links: &'a Slab<Links>,
    groups: &'a mut Slab<Group<C>>,
    strategy: SharedStrategy,
    rng: &'a mut SplitMix64,
    publisher: Option<C>,
    hits: &'a mut Vec<Hit<C>>,
    runs: &'a mut Vec<Run>,
    shared: &'a mut Vec<Entry<C>>,
}

impl<C: Copy + Eq + Hash + Ord> Collector<'_, C> {
    /// Walks the tree down `topic`'s levels, visiting every node whose
    /// filter matches: '#' nodes on the way (they match whatever follows),
    /// then the nodes that match all of `topic`. `frontier` and `next` are
    /// scratch space, kept between calls so matching allocates nothing.
    fn walk(
        &mut self,
        edges: &Edges,
        topic: &str,
        frontier: &mut Vec<NodeIdx>,
        next: &mut Vec<NodeIdx>,
    ) {
        frontier.clear();
        frontier.push(ROOT);
        for level in levels(topic) {
            let key = LevelKey::new(level, edges);
            next.clear();
            for &n in frontier.iter() {
                self.step(edges, &key, n, next);
            }
            core::mem::swap(frontier, next);
            if frontier.is_empty() {
                break;
            }
        }
        for &n in frontier.iter() {
            self.visit(n);
            // "sport/#" also matches "sport": '#' includes the parent level.
            let l = self.nodes.get(n).links;
            if l != NIL && self.links.get(l).hash != NIL {
                self.visit(self.links.get(l).hash);
            }
        }
    }

    /// One level down from node `n`: its '#' child matches now, its '+'
    /// child and the child named `key` go on to the next level.
    fn step(&mut self, edges: &Edges, key: &LevelKey, n: NodeIdx, next: &mut Vec<NodeIdx>) {
        let l = self.nodes.get(n).links;
        if l == NIL {
            return; // a leaf: nothing below it
        }
        let Links {
            plus,
            hash,
            children,
            ..
        } = *self.links.get(l);
        // [MQTT-4.7.2-1]: at the root, a '$' topic skips '+' and '#'.
        if !(n == ROOT && key.is_dollar()) {
            if hash != NIL {
                // '#' matches the remaining levels, however many.
                self.visit(hash);
            }
            if plus != NIL {
                next.push(plus);
            }
        }
        if children != 0 {
            let nodes = self.nodes;
            let child = edges.find(Edges::edge_hash(key.hash, n), |&c| {
                let c = nodes.get(c);
                c.parent == n && c.level.is(key)
            });
            next.extend(child);
        }
    }

    /// Collects the subscriptions ending at node `n`, and serves its groups.
    fn visit(&mut self, n: NodeIdx) {
        let node = self.nodes.get(n);
        let entries = node.subscribers.as_slice();
        let start = self.hits.len() as u32;
        let mut skipped = NIL;
        match self.publisher {
            None => self.hits.extend(entries.iter().map(|&e| Hit::new(e))),
            Some(p) => {
                for (i, &e) in entries.iter().enumerate() {
                    if e.options.no_local() && e.client == p {
                        skipped = i as u32;
                    } else {
                        self.hits.push(Hit::new(e));
                    }
                }
            }
        }
        if self.hits.len() as u32 > start {
            self.runs.push(Run {
                node: n,
                start,
                skipped,
            });
        }
        if node.links == NIL {
            return;
        }
        let mut g = self.links.get(node.links).groups;
        while g != NIL {
            let group = self.groups.get_mut(g);
            self.shared
                .extend(group.pick(self.strategy, self.rng).copied());
            g = group.next;
        }
    }
}

#[cfg(test)]
mod tests;
