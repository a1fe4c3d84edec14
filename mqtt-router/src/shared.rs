//! Shared subscriptions (section 4.8.2): groups of subscribers that take
//! turns receiving the messages matching one filter.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hash::Hash;

use hashbrown::HashTable;

use crate::level::NodeIdx;
use crate::seed::{hash_one, KeyedState, SplitMix64};
use crate::subscribers::Entry;

/// How a shared subscription group picks the member that receives a message.
///
/// Every message that matches a group goes to exactly one of its members
/// (section 4.8.2); the strategy only chooses which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SharedStrategy {
    /// Members take turns in rounds, each member once per round, starting
    /// in the order they joined; over any run of messages the counts of any
    /// two members differ by at most one. A member that leaves costs no
    /// other member its turn in the round (the order within later rounds may
    /// change: leaving takes constant time, not a shift of every member).
    #[default]
    RoundRobin,
    /// A uniformly random member for each message, drawn from the index's
    /// seeded generator: the same seed and the same calls give the same picks.
    Random,
}

/// One group: the subscribers of `$share/{share_name}/{filter}`. The filter is
/// the trie node the group hangs off; groups on the same node form a doubly
/// linked list, so a group leaves it in constant time.
#[derive(Debug)]
pub(crate) struct Group<C> {
    /// The trie node of the filter.
    pub(crate) node: NodeIdx,
    /// The next group on the same node, or `NIL`.
    pub(crate) next: u32,
    /// The previous group on the same node, or `NIL` for the first.
    pub(crate) prev: u32,
    /// The ShareName.
    pub(crate) share_name: Box<str>,
    /// The members, at most one entry per client: those served in the
    /// current round before `cursor`, those still to be served from it.
    pub(crate) members: Vec<Entry<C>>,
    /// Client → index in `members`, so joining and leaving a group of any
    /// size take constant expected time.
    positions: HashTable<u32>,
    /// The member whose turn is next under round robin.
    cursor: u32,
}

impl<C: Copy + Eq + Hash> Group<C> {
    pub(crate) fn new(node: NodeIdx, share_name: &str) -> Self {
        Group {
            node,
            next: crate::level::NIL,
            prev: crate::level::NIL,
            share_name: share_name.into(),
            members: Vec::new(),
            positions: HashTable::new(),
            cursor: 0,
        }
    }

    pub(crate) fn position(&self, client: C, state: &KeyedState) -> Option<usize> {
        let members = &self.members;
        self.positions
            .find(hash_one(state, &client), |&p| {
                members[p as usize].client == client
            })
            .map(|&p| p as usize)
    }

    /// Adds a member (the caller checked it is not one yet); it is served
    /// last in the current round.
    pub(crate) fn push(&mut self, entry: Entry<C>, state: &KeyedState) {
        self.members.push(entry);
        let last = (self.members.len() - 1) as u32;
        let members = &self.members;
        self.positions
            .insert_unique(hash_one(state, &entry.client), last, |&p| {
                hash_one(state, &members[p as usize].client)
            });
    }

    /// Removes the member at `pos` in constant time. The round stays fair:
    /// a member already served this round takes the leaver's place among
    /// the served, and one still waiting takes that member's place, so
    /// every remaining member keeps its turn in the round.
    pub(crate) fn remove_at(&mut self, pos: usize, state: &KeyedState) -> Entry<C> {
        let removed = self.members[pos];
        if let Ok(e) = self
            .positions
            .find_entry(hash_one(state, &removed.client), |&p| p as usize == pos)
        {
            e.remove();
        }
        let last = self.members.len() - 1;
        let cursor = self.cursor as usize;
        if pos < cursor {
            self.move_member(cursor - 1, pos, state);
            self.move_member(last, cursor - 1, state);
            self.cursor -= 1;
        } else {
            self.move_member(last, pos, state);
        }
        self.members.truncate(last);
        if self.cursor as usize >= self.members.len() {
            self.cursor = 0;
        }
        removed
    }

    /// Moves the member at `from` into slot `to` (whose member has gone or
    /// moved already), repointing its index entry.
    fn move_member(&mut self, from: usize, to: usize, state: &KeyedState) {
        if from == to {
            return;
        }
        let moved = self.members[from];
        if let Some(p) = self
            .positions
            .find_mut(hash_one(state, &moved.client), |&p| p as usize == from)
        {
            *p = to as u32;
        }
        self.members[to] = moved;
    }

    /// The member that receives the next message. The group is not empty:
    /// empty groups are removed as soon as their last member leaves.
    pub(crate) fn pick(
        &mut self,
        strategy: SharedStrategy,
        rng: &mut SplitMix64,
    ) -> Option<&Entry<C>> {
        let len = self.members.len() as u32;
        if len == 0 {
            return None;
        }
        let i = match strategy {
            SharedStrategy::RoundRobin => {
                let i = self.cursor % len;
                self.cursor = (i + 1) % len;
                i
            }
            SharedStrategy::Random => rng.below(len),
        };
        self.members.get(i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::PackedOptions;
    use mqtt_codec::SubscriptionOptions;

    fn member(client: u32) -> Entry<u32> {
        Entry {
            client,
            id: None,
            options: PackedOptions::pack(SubscriptionOptions::default()),
            slot: 0,
        }
    }

    #[test]
    fn a_leaving_member_costs_no_other_member_its_turn() {
        let state = KeyedState::with_seed(3);
        let mut g = Group::new(1, "g");
        for c in 10..14 {
            g.push(member(c), &state);
        }
        let mut rng = SplitMix64::new(0);
        let mut pick =
            |g: &mut Group<u32>| g.pick(SharedStrategy::RoundRobin, &mut rng).unwrap().client;
        assert_eq!(pick(&mut g), 10);
        assert_eq!(pick(&mut g), 11);
        // 10 (already served) leaves: 12 and 13 still get this round's turns.
        g.remove_at(g.position(10, &state).unwrap(), &state);
        let mut rest = [pick(&mut g), pick(&mut g)];
        rest.sort_unstable();
        assert_eq!(rest, [12, 13]);
        // A new round serves each of the three once.
        let mut round = [pick(&mut g), pick(&mut g), pick(&mut g)];
        round.sort_unstable();
        assert_eq!(round, [11, 12, 13]);
        for c in [12, 11, 13] {
            g.remove_at(g.position(c, &state).unwrap(), &state);
            assert!(g.position(c, &state).is_none());
        }
        assert!(g.pick(SharedStrategy::RoundRobin, &mut rng).is_none());
    }
}
