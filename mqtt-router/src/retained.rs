//! Retained messages: at most one per topic name, looked up by topic filter.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use mqtt_codec::bytes::Bytes;
use mqtt_codec::{Publish, TopicFilter, TopicName};

use crate::error::RetainError;
use crate::level::{levels, Edges, LevelKey, LevelStr, NodeIdx, Slab, NIL, ROOT};
use crate::seed::SplitMix64;
use crate::Instant;

/// What the store needs to know about a message: whether its payload is empty.
///
/// A retained PUBLISH with an empty payload removes the topic's retained
/// message and is not stored itself (3.1.1 [MQTT-3.3.1-10], [MQTT-3.3.1-11];
/// 5.0 [MQTT-3.3.1-6], [MQTT-3.3.1-7]); [`Retained::store`] applies that rule.
pub trait RetainedMessage {
    /// True if the application payload has no bytes.
    fn is_empty_payload(&self) -> bool;
}

impl RetainedMessage for Bytes {
    fn is_empty_payload(&self) -> bool {
        self.is_empty()
    }
}

impl RetainedMessage for Vec<u8> {
    fn is_empty_payload(&self) -> bool {
        self.is_empty()
    }
}

impl RetainedMessage for Box<[u8]> {
    fn is_empty_payload(&self) -> bool {
        self.is_empty()
    }
}

impl RetainedMessage for &[u8] {
    fn is_empty_payload(&self) -> bool {
        self.is_empty()
    }
}

impl<B: AsRef<[u8]>> RetainedMessage for Publish<B> {
    fn is_empty_payload(&self) -> bool {
        self.payload.as_ref().is_empty()
    }
}

/// A retained message handed out by a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainedRef<'a, M> {
    /// The topic name the message was published to.
    pub topic: &'a str,
    /// The message as stored.
    pub message: &'a M,
    /// When it expires, if it does: a 5.0 message is sent on with the
    /// remaining interval, `expires_at - now` rounded up to seconds
    /// (section 3.3.2.3.3).
    pub expires_at: Option<Instant>,
}

/// "Never expires", in the node's expiry field.
const NEVER: u64 = u64::MAX;

/// The most nodes the store holds: below `NIL`.
const MAX_NODES: usize = (NIL - 1) as usize;

/// One trie node: a topic name prefix, maybe with a retained message.
struct Node<M> {
    level: LevelStr,
    parent: NodeIdx,
    /// Children as a doubly linked list, for `+` and `#` lookups, which
    /// visit every child; exact levels go through the edge table instead.
    first_child: NodeIdx,
    next_sibling: NodeIdx,
    prev_sibling: NodeIdx,
    /// Expiry deadline in milliseconds, [`NEVER`] if none.
    expires_at: u64,
    message: Option<M>,
}

impl<M> Node<M> {
    fn new(parent: NodeIdx, level: LevelStr) -> Self {
        Node {
            level,
            parent,
            first_child: NIL,
            next_sibling: NIL,
            prev_sibling: NIL,
            expires_at: NEVER,
            message: None,
        }
    }

    /// The message, unless it has expired: a message whose deadline has come
    /// is gone [MQTT-3.3.2-5].
    fn live(&self, now: Instant) -> Option<&M> {
        self.message
            .as_ref()
            .filter(|_| self.expires_at == NEVER || now.as_millis() < self.expires_at)
    }

    fn is_expired(&self, now: Instant) -> bool {
        self.message.is_some() && self.live(now).is_none()
    }

    fn expiry(&self) -> Option<Instant> {
        (self.expires_at != NEVER).then_some(Instant::from_millis(self.expires_at))
    }
}

/// The retained messages of a broker: at most one per topic name.
///
/// Generic over the stored message `M`, which is whatever the broker sends to
/// new subscribers (a `Publish<Bytes>`, a session-layer message type, or just
/// the payload `Bytes`). To not pin the read buffers of the connection the
/// message came in on, store copies (`Bytes::copy_from_slice`) rather than
/// slices of them.
///
/// # Structure
/// A trie keyed by topic level, in a slab `Vec` linked by `u32` indices;
/// exact levels are found through one hash table keyed from the seed (topic
/// names are chosen by clients), while `+` and `#` walk the child lists of
/// only the branches the filter reaches. `a/+/c/#` therefore touches `a`,
/// its children, their `c` children and everything below those, and nothing
/// else.
///
/// # Expiry
/// Each message may carry an absolute deadline. A message whose deadline is
/// at or before `now` is never returned; a lookup that meets one removes it.
/// [`purge_expired`](Self::purge_expired) removes all of them at once.
///
/// # Example
/// ```
/// use mqtt_codec::bytes::Bytes;
/// use mqtt_codec::{TopicFilter, TopicName};
/// use mqtt_router::{Instant, Retained};
///
/// let mut retained = Retained::<Bytes>::new(7);
/// let now = Instant::from_millis(0);
/// let deadline = Some(Instant::from_millis(60_000));
/// retained.store(now, &TopicName::from_static("site/1/temp"), Bytes::from("21"), None)?;
/// retained.store(now, &TopicName::from_static("site/2/temp"), Bytes::from("19"), deadline)?;
///
/// let mut found = Vec::new();
/// retained.for_each_match(now, &TopicFilter::from_static("site/+/temp"), |r| found.push(r.topic.to_owned()));
/// found.sort();
/// assert_eq!(found, ["site/1/temp", "site/2/temp"]);
///
/// // After the deadline the second message is gone.
/// let later = Instant::from_millis(60_000);
/// let mut n = 0;
/// retained.for_each_match(later, &TopicFilter::from_static("#"), |_| n += 1);
/// assert_eq!((n, retained.len()), (1, 1));
///
/// // An empty payload clears.
/// retained.store(later, &TopicName::from_static("site/1/temp"), Bytes::new(), None)?;
/// assert!(retained.is_empty());
/// # Ok::<(), mqtt_router::RetainError>(())
/// ```
pub struct Retained<M> {
    nodes: Slab<Node<M>>,
    edges: Edges,
    len: usize,
    scratch: Scratch,
}

/// Buffers reused by lookups, so that they do not allocate in the steady state.
#[derive(Default)]
struct Scratch {
    frontier: Vec<NodeIdx>,
    next: Vec<NodeIdx>,
    stack: Vec<NodeIdx>,
    expired: Vec<NodeIdx>,
    path: Vec<NodeIdx>,
    topic: String,
}

impl<M> fmt::Debug for Retained<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retained")
            .field("messages", &self.len)
            .field("nodes", &self.nodes.live())
            .finish_non_exhaustive()
    }
}

impl<M> Retained<M> {
    /// An empty store; `seed` keys the hash of topic levels.
    pub fn new(seed: u64) -> Self {
        let mut nodes = Slab::new();
        nodes.insert(Node::new(NIL, LevelStr::EMPTY));
        Retained {
            nodes,
            edges: Edges::new(SplitMix64::new(seed).keyed_state()),
            len: 0,
            scratch: Scratch::default(),
        }
    }

    /// Number of stored messages, counting expired ones no lookup has met yet.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes `message` the retained message of `topic`, expiring at
    /// `expires_at` (`None`: never), and returns the one it replaces, if that
    /// had not expired by `now`.
    ///
    /// This does not look at the payload; [`store`](Self::store) does.
    ///
    /// # Errors
    /// [`RetainError::CapacityExceeded`] if the store has no room for the
    /// topic's levels; nothing changes then.
    pub fn insert<B: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        topic: &TopicName<B>,
        message: M,
        expires_at: Option<Instant>,
    ) -> Result<Option<M>, RetainError> {
        if !self
            .nodes
            .has_room(levels(topic.as_str()).count(), MAX_NODES)
        {
            return Err(RetainError::CapacityExceeded);
        }
        let n = self.ensure_path(topic.as_str());
        let node = self.nodes.get_mut(n);
        let live = node.live(now).is_some();
        let previous = node.message.replace(message);
        node.expires_at = expires_at.map_or(NEVER, Instant::as_millis);
        if previous.is_none() {
            self.len += 1;
        }
        Ok(previous.filter(|_| live))
    }

    /// Removes the retained message of `topic`, returning it unless it had
    /// expired by `now`.
    pub fn remove<B: AsRef<[u8]>>(&mut self, now: Instant, topic: &TopicName<B>) -> Option<M> {
        let n = self.find(topic.as_str())?;
        let live = self.nodes.get(n).live(now).is_some();
        let message = self.take(n)?;
        live.then_some(message)
    }

    /// The retained message of exactly `topic`, if it has not expired; an
    /// expired one is removed.
    pub fn get<B: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        topic: &TopicName<B>,
    ) -> Option<RetainedRef<'_, M>> {
        let n = self.find(topic.as_str())?;
        if self.nodes.get(n).is_expired(now) {
            self.take(n);
            return None;
        }
        self.scratch.topic.clear();
        self.scratch.topic.push_str(topic.as_str());
        let node = self.nodes.get(n);
        Some(RetainedRef {
            topic: &self.scratch.topic,
            message: node.message.as_ref()?,
            expires_at: node.expiry(),
        })
    }

    /// Calls `f` with every unexpired retained message whose topic matches
    /// `filter`, in no particular order; expired ones met on the way are
    /// removed.
    ///
    /// Only the branches of the trie that the filter can match are visited.
    /// A filter starting with a wildcard does not match topics starting with
    /// `$` [MQTT-4.7.2-1]. A shared filter is matched by its filter part, but
    /// note that retained messages are not sent for new shared subscriptions
    /// (5.0 section 4.8.2), so a broker does not call this for them.
    pub fn for_each_match<B: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        filter: &TopicFilter<B>,
        mut f: impl FnMut(RetainedRef<'_, M>),
    ) {
        let filter = filter.shared().map_or(filter.as_str(), |s| s.filter);
        let Retained {
            nodes,
            edges,
            scratch,
            ..
        } = self;
        let nodes = &*nodes;
        let Scratch {
            frontier,
            next,
            stack,
            expired,
            path,
            topic,
        } = scratch;
        expired.clear();
        let mut emit = |n: NodeIdx| {
            let node = nodes.get(n);
            let Some(message) = node.message.as_ref() else {
                return;
            };
            if node.live(now).is_none() {
                expired.push(n);
                return;
            }
            build_topic(nodes, n, path, topic);
            f(RetainedRef {
                topic,
                message,
                expires_at: node.expiry(),
            });
        };
        // [MQTT-4.7.2-1]: a wildcard first level skips the root's '$' children.
        let visible = |parent: NodeIdx, child: &Node<M>| {
            parent != ROOT || !child.level.as_bytes().starts_with(b"$")
        };

        frontier.clear();
        frontier.push(ROOT);
        let mut multi_level = false;
        for level in levels(filter) {
            next.clear();
            match level {
                b"#" => {
                    // '#' matches the parent level and everything below it.
                    multi_level = true;
                    for &n in frontier.iter() {
                        emit(n);
                        stack.clear();
                        push_children(nodes, n, stack, |c| visible(n, c));
                        while let Some(c) = stack.pop() {
                            emit(c);
                            push_children(nodes, c, stack, |_| true);
                        }
                    }
                    break;
                }
                b"+" => {
                    for &n in frontier.iter() {
                        push_children(nodes, n, next, |c| visible(n, c));
                    }
                }
                _ => {
                    let key = LevelKey::new(level, edges);
                    for &n in frontier.iter() {
                        if nodes.get(n).first_child == NIL {
                            continue;
                        }
                        let child = edges.find(Edges::edge_hash(key.hash, n), |&c| {
                            let c = nodes.get(c);
                            c.parent == n && c.level.is(&key)
                        });
                        next.extend(child);
                    }
                }
            }
            core::mem::swap(frontier, next);
            if frontier.is_empty() {
                break;
            }
        }
        if !multi_level {
            for &n in frontier.iter() {
                emit(n);
            }
        }
        let mut expired = core::mem::take(&mut self.scratch.expired);
        for &n in &expired {
            self.take(n);
        }
        expired.clear();
        self.scratch.expired = expired;
    }

    /// Removes every expired message, returning how many. Visits the whole
    /// store: for periodic housekeeping, not for every publish.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let mut expired = core::mem::take(&mut self.scratch.expired);
        expired.clear();
        expired.extend(
            self.nodes
                .iter()
                .filter(|(_, node)| node.is_expired(now))
                .map(|(n, _)| n),
        );
        let count = expired.len();
        for &n in &expired {
            self.take(n);
        }
        expired.clear();
        self.scratch.expired = expired;
        count
    }

    /// Takes the message out of node `n` and prunes what is left empty.
    fn take(&mut self, n: NodeIdx) -> Option<M> {
        let node = self.nodes.get_mut(n);
        let message = node.message.take()?;
        node.expires_at = NEVER;
        self.len -= 1;
        self.prune(n);
        Some(message)
    }

    fn find(&self, topic: &str) -> Option<NodeIdx> {
        let mut n = ROOT;
        for level in levels(topic) {
            n = self.child(n, &LevelKey::new(level, &self.edges))?;
        }
        Some(n)
    }

    fn child(&self, parent: NodeIdx, key: &LevelKey<'_>) -> Option<NodeIdx> {
        if self.nodes.get(parent).first_child == NIL {
            return None;
        }
        let nodes = &self.nodes;
        self.edges.find(Edges::edge_hash(key.hash, parent), |&c| {
            let c = nodes.get(c);
            c.parent == parent && c.level.is(key)
        })
    }

    /// The node of `topic`, created with its missing ancestors. The caller
    /// checked that there is room.
    fn ensure_path(&mut self, topic: &str) -> NodeIdx {
        let mut n = ROOT;
        for level in levels(topic) {
            let key = LevelKey::new(level, &self.edges);
            n = match self.child(n, &key) {
                Some(c) => c,
                None => self.add_child(n, &key),
            };
        }
        n
    }

    fn add_child(&mut self, parent: NodeIdx, key: &LevelKey<'_>) -> NodeIdx {
        let mut node = Node::new(parent, LevelStr::new(key));
        let first = self.nodes.get(parent).first_child;
        node.next_sibling = first;
        let c = self.nodes.insert(node);
        if first != NIL {
            self.nodes.get_mut(first).prev_sibling = c;
        }
        self.nodes.get_mut(parent).first_child = c;
        let nodes = &self.nodes;
        self.edges
            .insert(Edges::edge_hash(key.hash, parent), c, |i| {
                let node = nodes.get(i);
                (node.parent, node.level.as_bytes())
            });
        c
    }

    /// Removes `n` and its ancestors as long as they hold nothing.
    fn prune(&mut self, mut n: NodeIdx) {
        loop {
            let node = self.nodes.get(n);
            if n == ROOT || node.message.is_some() || node.first_child != NIL {
                return;
            }
            let node = core::mem::replace(self.nodes.get_mut(n), Node::new(NIL, LevelStr::EMPTY));
            self.nodes.release(n);
            let (parent, prev, next) = (node.parent, node.prev_sibling, node.next_sibling);
            if prev == NIL {
                self.nodes.get_mut(parent).first_child = next;
            } else {
                self.nodes.get_mut(prev).next_sibling = next;
            }
            if next != NIL {
                self.nodes.get_mut(next).prev_sibling = prev;
            }
            self.edges.remove(parent, node.level.as_bytes(), n);
            n = parent;
        }
    }
}

impl<M: RetainedMessage> Retained<M> {
    /// Applies a retained PUBLISH: an empty payload removes the topic's
    /// retained message and is not stored (3.1.1 [MQTT-3.3.1-10],
    /// [MQTT-3.3.1-11]; 5.0 [MQTT-3.3.1-6], [MQTT-3.3.1-7]); any other
    /// message replaces it. Returns the unexpired message it replaced or
    /// removed.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn store<B: AsRef<[u8]>>(
        &mut self,
        now: Instant,
        topic: &TopicName<B>,
        message: M,
        expires_at: Option<Instant>,
    ) -> Result<Option<M>, RetainError> {
        if message.is_empty_payload() {
            Ok(self.remove(now, topic))
        } else {
            self.insert(now, topic, message, expires_at)
        }
    }
}

/// Pushes the children of `n` that pass `keep` onto `out`.
fn push_children<M>(
    nodes: &Slab<Node<M>>,
    n: NodeIdx,
    out: &mut Vec<NodeIdx>,
    keep: impl Fn(&Node<M>) -> bool,
) {
    let mut c = nodes.get(n).first_child;
    while c != NIL {
        let child = nodes.get(c);
        if keep(child) {
            out.push(c);
        }
        c = child.next_sibling;
    }
}

/// Writes the topic name of node `n` into `topic`, from its parent chain.
fn build_topic<M>(nodes: &Slab<Node<M>>, n: NodeIdx, path: &mut Vec<NodeIdx>, topic: &mut String) {
    path.clear();
    let mut i = n;
    while i != ROOT {
        path.push(i);
        i = nodes.get(i).parent;
    }
    topic.clear();
    for (k, &i) in path.iter().rev().enumerate() {
        if k > 0 {
            topic.push('/');
        }
        topic.push_str(nodes.get(i).level.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearing_every_topic_frees_every_node_and_edge() {
        let mut store = Retained::<Bytes>::new(5);
        let topics = ["a/b/c", "a/b", "a//c", "/", "$SYS/x", "a/b/c/d/e"];
        for round in 0..3 {
            for t in topics {
                let t = TopicName::from_static(t);
                store
                    .insert(Instant::ZERO, &t, Bytes::from_static(b"m"), None)
                    .unwrap();
            }
            assert_eq!(store.len(), topics.len());
            let slots = store.nodes.iter().count();
            for t in topics {
                assert!(store
                    .remove(Instant::ZERO, &TopicName::from_static(t))
                    .is_some());
            }
            assert!(store.is_empty());
            assert_eq!(store.nodes.live(), 1, "round {round}");
            assert_eq!(store.edges.len(), 0);
            assert_eq!(store.nodes.get(ROOT).first_child, NIL);
            assert!(round == 0 || store.nodes.iter().count() == slots);
        }
    }

    #[test]
    fn expired_messages_met_by_a_lookup_are_removed() {
        let mut store = Retained::<Bytes>::new(5);
        let deadline = Some(Instant::from_millis(10));
        for t in ["x/1", "x/2", "y/1"] {
            store
                .insert(
                    Instant::ZERO,
                    &TopicName::from_static(t),
                    Bytes::from_static(b"m"),
                    deadline,
                )
                .unwrap();
        }
        let mut seen = 0;
        store.for_each_match(
            Instant::from_millis(9),
            &TopicFilter::from_static("+/1"),
            |_| seen += 1,
        );
        assert_eq!((seen, store.len()), (2, 3));
        // At the deadline the message is gone; only the branches looked at are cleaned.
        store.for_each_match(
            Instant::from_millis(10),
            &TopicFilter::from_static("x/#"),
            |_| seen += 1,
        );
        assert_eq!((seen, store.len()), (2, 1));
        assert_eq!(store.purge_expired(Instant::from_millis(10)), 1);
        assert_eq!(store.nodes.live(), 1);
    }
}
