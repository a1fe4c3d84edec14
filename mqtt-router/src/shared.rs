//! Shared subscriptions (section 4.8.2): groups of subscribers that take
//! turns receiving the messages matching one filter.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::level::NodeIdx;
use crate::seed::SplitMix64;
use crate::subscribers::Entry;

/// How a shared subscription group picks the member that receives a message.
///
/// Every message that matches a group goes to exactly one of its members
/// (section 4.8.2); the strategy only chooses which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SharedStrategy {
    /// Members take turns in the order they joined; over any run of messages
    /// the counts of any two members differ by at most one while the
    /// membership is unchanged. A member that leaves does not disturb the
    /// turn of the others.
    #[default]
    RoundRobin,
    /// A uniformly random member for each message, drawn from the index's
    /// seeded generator: the same seed and the same calls give the same picks.
    Random,
}

/// One group: the subscribers of `$share/{share_name}/{filter}`. The filter is
/// the trie node the group hangs off; groups on the same node form a list.
#[derive(Debug)]
pub(crate) struct Group<C> {
    /// The trie node of the filter.
    pub(crate) node: NodeIdx,
    /// The next group on the same node, or `NIL`.
    pub(crate) next: u32,
    /// The ShareName.
    pub(crate) share_name: Box<str>,
    /// The members in the order they joined, at most one entry per client.
    pub(crate) members: Vec<Entry<C>>,
    /// The member whose turn is next under round robin.
    cursor: u32,
}

impl<C: Copy + Eq> Group<C> {
    pub(crate) fn new(node: NodeIdx, share_name: &str) -> Self {
        Group {
            node,
            next: crate::level::NIL,
            share_name: share_name.into(),
            members: Vec::new(),
            cursor: 0,
        }
    }

    pub(crate) fn position(&self, client: C) -> Option<usize> {
        self.members.iter().position(|m| m.client == client)
    }

    /// Removes the member at `pos`, keeping the turn order of the others.
    pub(crate) fn remove_at(&mut self, pos: usize) -> Entry<C> {
        let removed = self.members.remove(pos);
        let cursor = self.cursor as usize;
        if pos < cursor {
            self.cursor -= 1;
        }
        if self.cursor as usize >= self.members.len() {
            self.cursor = 0;
        }
        removed
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
        }
    }

    #[test]
    fn a_leaving_member_keeps_the_turn_order_of_the_others() {
        let mut g = Group::new(1, "g");
        g.members
            .extend([member(10), member(11), member(12), member(13)]);
        let mut rng = SplitMix64::new(0);
        let mut pick =
            |g: &mut Group<u32>| g.pick(SharedStrategy::RoundRobin, &mut rng).unwrap().client;
        assert_eq!(pick(&mut g), 10);
        assert_eq!(pick(&mut g), 11);
        // 10 (already served) leaves: 12 is still next.
        g.remove_at(0);
        assert_eq!(pick(&mut g), 12);
        // 13, the next in turn, leaves: the turn passes to the first again.
        g.remove_at(2);
        assert_eq!(pick(&mut g), 11);
        assert_eq!(pick(&mut g), 12);
        g.remove_at(1);
        g.remove_at(0);
        assert!(g.pick(SharedStrategy::RoundRobin, &mut rng).is_none());
    }
}
