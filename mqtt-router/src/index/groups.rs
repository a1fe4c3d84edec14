//! Shared-subscription groups in the index: found by (node, ShareName)
//! through a hash table, linked per node for matching, joined and left in
//! constant expected time.

use core::hash::Hash;

use super::SubscriptionIndex;
use crate::level::{NodeIdx, NIL};
use crate::seed::hash_one;
use crate::shared::Group;
use crate::subscribers::Entry;

impl<C: Copy + Eq + Hash + Ord> SubscriptionIndex<C> {
    /// The group `$share/{share_name}/...` on node `n`, if it exists.
    pub(super) fn find_group(&self, n: NodeIdx, share_name: &str) -> Option<u32> {
        let groups = &self.groups;
        self.group_table
            .find(hash_one(&self.state, &(n, share_name)), |&g| {
                let group = groups.get(g);
                group.node == n && &*group.share_name == share_name
            })
            .copied()
    }

    /// Creates the group `share_name` on node `n`, first in its list.
    pub(super) fn add_group(&mut self, n: NodeIdx, share_name: &str) -> u32 {
        let mut group = Group::new(n, share_name);
        let head = self.links_of(n).groups;
        group.next = head;
        let g = self.groups.insert(group);
        if head != NIL {
            self.groups.get_mut(head).prev = g;
        }
        self.links_mut(n).groups = g;
        let (groups, state) = (&self.groups, &self.state);
        self.group_table
            .insert_unique(hash_one(state, &(n, share_name)), g, |&g| {
                let group = groups.get(g);
                hash_one(state, &(group.node, &*group.share_name))
            });
        g
    }

    /// Adds `entry` to group `g`, or replaces the client's membership there
    /// (keeping its list reference) and returns the previous one.
    pub(super) fn join_group(&mut self, g: u32, mut entry: Entry<C>) -> Option<Entry<C>> {
        let group = self.groups.get_mut(g);
        match group.position(entry.client, &self.state) {
            Some(p) => {
                entry.slot = group.members[p].slot;
                Some(core::mem::replace(&mut group.members[p], entry))
            }
            None => {
                group.push(entry, &self.state);
                None
            }
        }
    }

    /// Removes member `p` of group `g`; an empty group is removed with it,
    /// in constant time, and so is its node if nothing else holds it.
    pub(super) fn leave_group(&mut self, g: u32, p: usize) -> Entry<C> {
        let group = self.groups.get_mut(g);
        let removed = group.remove_at(p, &self.state);
        if !group.members.is_empty() {
            return removed;
        }
        let (n, next, prev) = (group.node, group.next, group.prev);
        let hash = hash_one(&self.state, &(n, &*group.share_name));
        if let Ok(e) = self.group_table.find_entry(hash, |&x| x == g) {
            e.remove();
        }
        *self.groups.get_mut(g) = Group::new(NIL, "");
        self.groups.release(g);
        if next != NIL {
            self.groups.get_mut(next).prev = prev;
        }
        if prev == NIL {
            self.links_mut(n).groups = next;
        } else {
            self.groups.get_mut(prev).next = next;
        }
        self.trim_links(n);
        self.prune(n);
        removed
    }
}
