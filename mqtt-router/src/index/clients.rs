//! Each client's list of its subscriptions: what a session's end removes
//! without scanning the index, and the counts the broker's per-client
//! limits read.

use alloc::string::String;
use alloc::vec::Vec;
use core::hash::Hash;

use super::{SubscriptionIndex, GROUP_BIT};
use crate::level::{NodeIdx, NIL, ROOT};

/// One entry of a client's list of subscriptions: a node index (non-shared)
/// or `GROUP_BIT | group`, and its neighbours in the client's list. The
/// subscription's [`Entry`](crate::subscribers::Entry) holds this entry's
/// index, so an UNSUBSCRIBE unlinks it in constant time.
#[derive(Clone, Copy)]
pub(super) struct ClientRef {
    pub(super) target: u32,
    pub(super) next: u32,
    pub(super) prev: u32,
}

impl ClientRef {
    /// A reference not linked into any list yet.
    pub(super) const UNLINKED: ClientRef = ClientRef {
        target: NIL,
        next: NIL,
        prev: NIL,
    };
}

/// A client's list of subscriptions and how many of them there are.
#[derive(Clone, Copy)]
pub(super) struct ClientList {
    pub(super) head: u32,
    /// Subscriptions, shared ones included.
    pub(super) subscriptions: u32,
    /// Of those, shared-subscription groups joined.
    pub(super) shared: u32,
}

impl<C: Copy + Eq + Hash + Ord> SubscriptionIndex<C> {
    /// How many subscriptions `client` holds, shared ones included.
    pub fn subscriptions_of(&self, client: C) -> usize {
        self.clients
            .get(&client)
            .map_or(0, |l| l.subscriptions as usize)
    }

    /// How many shared-subscription groups `client` is a member of.
    pub fn shared_groups_of(&self, client: C) -> usize {
        self.clients.get(&client).map_or(0, |l| l.shared as usize)
    }

    /// The topic filters `client` is subscribed to, once per subscription;
    /// a shared subscription as the filter after `$share/{ShareName}/`.
    /// Costs one step per subscription and filter level: for a session's
    /// end when the cluster keeps count of this node's interest.
    pub fn filters_of(&self, client: C) -> Vec<String> {
        let mut out = Vec::new();
        let Some(list) = self.clients.get(&client) else {
            return out;
        };
        let mut r = list.head;
        while r != NIL {
            let ClientRef { target, next, .. } = *self.refs.get(r);
            let node = if target & GROUP_BIT == 0 {
                target
            } else {
                self.groups.get(target & !GROUP_BIT).node
            };
            out.push(self.filter_at(node));
            r = next;
        }
        out
    }

    /// The filter trie node `n` stands for, rebuilt from its ancestors.
    fn filter_at(&self, mut n: NodeIdx) -> String {
        let mut levels: Vec<&str> = Vec::new();
        while n != ROOT && n != NIL {
            let node = self.nodes.get(n);
            let links = self.links_of(node.parent);
            levels.push(if links.plus == n {
                "+"
            } else if links.hash == n {
                "#"
            } else {
                node.level.as_str()
            });
            n = node.parent;
        }
        levels.reverse();
        levels.join("/")
    }

    /// Links reference `r` (allocated by the caller) for a new subscription
    /// of `client` at `target` to the front of the client's list.
    pub(super) fn remember(&mut self, client: C, r: u32, target: u32) {
        let list = self.clients.entry(client).or_insert(ClientList {
            head: NIL,
            subscriptions: 0,
            shared: 0,
        });
        let head = list.head;
        list.head = r;
        list.subscriptions += 1;
        list.shared += u32::from(target & GROUP_BIT != 0);
        *self.refs.get_mut(r) = ClientRef {
            target,
            next: head,
            prev: NIL,
        };
        if head != NIL {
            self.refs.get_mut(head).prev = r;
        }
    }

    /// Unlinks and frees reference `r` from `client`'s list, in constant time.
    pub(super) fn forget(&mut self, client: C, r: u32, shared: bool) {
        let ClientRef { next, prev, .. } = *self.refs.get(r);
        self.refs.release(r);
        if next != NIL {
            self.refs.get_mut(next).prev = prev;
        }
        let Some(list) = self.clients.get_mut(&client) else {
            return;
        };
        if prev == NIL {
            list.head = next;
        } else {
            self.refs.get_mut(prev).next = next;
        }
        list.subscriptions -= 1;
        list.shared -= u32::from(shared);
        if list.head == NIL {
            self.clients.remove(&client);
        }
    }
}
