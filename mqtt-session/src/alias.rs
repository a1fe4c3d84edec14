//! Topic aliases (section 3.3.2.3.4): per-connection maps in each direction.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::num::NonZeroU16;

use bytes::Bytes;
use mqtt_codec::TopicName;

use crate::error::Violation;

/// Aliases the peer set on this connection, resolved before any event.
#[derive(Debug, Default)]
pub(crate) struct InboundAliases {
    /// Index `alias - 1`; grows only up to the maximum we announced.
    topics: Vec<Option<TopicName>>,
}

impl InboundAliases {
    /// Resolves the topic of a received PUBLISH: sets the alias when a topic
    /// comes with it, looks it up when the topic is empty [MQTT-3.3.2-12].
    pub(crate) fn resolve(
        &mut self,
        topic: Option<TopicName>,
        alias: Option<NonZeroU16>,
        maximum: u16,
    ) -> Result<TopicName, Violation> {
        let Some(alias) = alias else {
            // The decoder guarantees a topic when there is no alias.
            return topic.ok_or(Violation::TopicAliasUnknown(0));
        };
        let a = alias.get();
        if a > maximum {
            return Err(Violation::TopicAliasInvalid(a));
        }
        let slot = usize::from(a - 1);
        match topic {
            Some(t) => {
                if self.topics.len() <= slot {
                    self.topics.resize(slot + 1, None);
                }
                self.topics[slot] = Some(t.clone());
                Ok(t)
            }
            None => self
                .topics
                .get(slot)
                .and_then(Clone::clone)
                .ok_or(Violation::TopicAliasUnknown(a)),
        }
    }
}

/// Aliases this side assigns to outgoing topics, least recently used giving
/// way. Every step is a lookup in two ordered maps, so a peer announcing a
/// large maximum costs at most the configured number of topics, never a
/// scan per message. Topics are copied in, so the table never pins a read
/// buffer the message came in.
#[derive(Debug, Default)]
pub(crate) struct OutboundAliases {
    /// Index `alias - 1`: the topic and when it was last used; `None` once
    /// forgotten.
    slots: Vec<Option<(TopicName, u64)>>,
    /// Topic → index into `slots`.
    by_topic: BTreeMap<TopicName, usize>,
    /// Last use → index into `slots`: the first entry is the least recently used.
    by_use: BTreeMap<u64, usize>,
    /// Forgotten slots, taken again first.
    free: Vec<usize>,
    clock: u64,
}

/// What to put in an outgoing PUBLISH.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AliasUse {
    /// Send the topic and set this alias for it.
    Set(NonZeroU16),
    /// Send only the alias: the peer already knows the topic.
    Reuse(NonZeroU16),
}

impl OutboundAliases {
    /// Picks an alias for `topic` within `maximum` (the smaller of the
    /// peer's Topic Alias Maximum and our own bound).
    pub(crate) fn assign(&mut self, topic: &TopicName, maximum: u16) -> Option<AliasUse> {
        let alias = |i: usize| NonZeroU16::new(u16::try_from(i + 1).ok()?);
        self.clock += 1;
        if let Some(&i) = self.by_topic.get(topic) {
            self.touch(i);
            return alias(i).map(AliasUse::Reuse);
        }
        let i = if let Some(i) = self.free.pop() {
            i
        } else if self.slots.len() < usize::from(maximum) {
            self.slots.push(None);
            self.slots.len() - 1
        } else {
            let (_, i) = self.by_use.pop_first()?;
            if let Some((old, _)) = self.slots[i].take() {
                self.by_topic.remove(&old);
            }
            i
        };
        let owned = TopicName::new(Bytes::copy_from_slice(topic.as_bytes())).ok()?;
        self.by_topic.insert(owned.clone(), i);
        self.by_use.insert(self.clock, i);
        self.slots[i] = Some((owned, self.clock));
        alias(i).map(AliasUse::Set)
    }

    /// Marks slot `i` as used now.
    fn touch(&mut self, i: usize) {
        if let Some((_, used)) = &mut self.slots[i] {
            self.by_use.remove(used);
            *used = self.clock;
            self.by_use.insert(self.clock, i);
        }
    }

    /// Forgets `alias`: the PUBLISH that was to set it was never sent, so
    /// the peer does not know it and the next use of its topic sets it again.
    pub(crate) fn forget(&mut self, alias: NonZeroU16) {
        let i = usize::from(alias.get() - 1);
        if let Some((topic, used)) = self.slots.get_mut(i).and_then(Option::take) {
            self.by_topic.remove(&topic);
            self.by_use.remove(&used);
            self.free.push(i);
        }
    }
}

/// Both directions' aliases of one connection, allocated when the first
/// alias is used: most connections use none and pay one pointer.
#[derive(Debug, Default)]
pub(crate) struct Aliases(Option<Box<(InboundAliases, OutboundAliases)>>);

impl Aliases {
    fn tables(&mut self) -> &mut (InboundAliases, OutboundAliases) {
        self.0.get_or_insert_with(Default::default)
    }

    /// See [`InboundAliases::resolve`].
    pub(crate) fn resolve(
        &mut self,
        topic: Option<TopicName>,
        alias: Option<NonZeroU16>,
        maximum: u16,
    ) -> Result<TopicName, Violation> {
        match (topic, alias) {
            (Some(t), None) => Ok(t),
            (None, None) => Err(Violation::TopicAliasUnknown(0)),
            // Refused before anything is allocated for it.
            (_, Some(a)) if a.get() > maximum => Err(Violation::TopicAliasInvalid(a.get())),
            (topic, alias) => self.tables().0.resolve(topic, alias, maximum),
        }
    }

    /// See [`OutboundAliases::assign`].
    pub(crate) fn assign(&mut self, topic: &TopicName, maximum: u16) -> Option<AliasUse> {
        if maximum == 0 {
            return None;
        }
        self.tables().1.assign(topic, maximum)
    }

    /// See [`OutboundAliases::forget`].
    pub(crate) fn forget(&mut self, alias: NonZeroU16) {
        if let Some(tables) = &mut self.0 {
            tables.1.forget(alias);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &'static str) -> TopicName {
        TopicName::from_static(s)
    }
    fn nz(n: u16) -> Option<NonZeroU16> {
        NonZeroU16::new(n)
    }

    #[test]
    fn mqtt_3_3_2_12_an_alias_is_set_then_used() {
        let mut a = InboundAliases::default();
        assert_eq!(a.resolve(Some(t("a/b")), nz(2), 5), Ok(t("a/b")));
        assert_eq!(a.resolve(None, nz(2), 5), Ok(t("a/b")));
        assert_eq!(a.resolve(Some(t("c")), nz(2), 5), Ok(t("c")));
        assert_eq!(a.resolve(None, nz(2), 5), Ok(t("c")));
    }

    #[test]
    fn unknown_and_out_of_range_aliases_are_refused() {
        let mut a = InboundAliases::default();
        assert_eq!(
            a.resolve(None, nz(1), 5),
            Err(Violation::TopicAliasUnknown(1))
        );
        assert_eq!(
            a.resolve(Some(t("x")), nz(6), 5),
            Err(Violation::TopicAliasInvalid(6))
        );
        assert_eq!(
            a.resolve(Some(t("x")), nz(1), 0),
            Err(Violation::TopicAliasInvalid(1))
        );
    }

    #[test]
    fn outbound_aliases_reuse_and_evict_the_least_recently_used() {
        let mut o = OutboundAliases::default();
        assert_eq!(o.assign(&t("a"), 2), Some(AliasUse::Set(nz(1).unwrap())));
        assert_eq!(o.assign(&t("b"), 2), Some(AliasUse::Set(nz(2).unwrap())));
        assert_eq!(o.assign(&t("a"), 2), Some(AliasUse::Reuse(nz(1).unwrap())));
        // "b" is least recently used, so "c" takes its alias.
        assert_eq!(o.assign(&t("c"), 2), Some(AliasUse::Set(nz(2).unwrap())));
        assert_eq!(o.assign(&t("b"), 2), Some(AliasUse::Set(nz(1).unwrap())));
        // A forgotten alias is set again by the next use of its topic.
        o.forget(nz(1).unwrap());
        assert_eq!(o.assign(&t("d"), 2), Some(AliasUse::Set(nz(1).unwrap())));
        assert_eq!(o.assign(&t("c"), 2), Some(AliasUse::Reuse(nz(2).unwrap())));
        assert_eq!(o.assign(&t("b"), 2), Some(AliasUse::Set(nz(1).unwrap())));
    }

    #[test]
    fn outbound_aliases_stay_within_the_maximum_whatever_the_topics() {
        let mut o = OutboundAliases::default();
        for round in 0..3u32 {
            for n in 0..100u32 {
                let topic = TopicName::new(Bytes::from(alloc::format!("t/{n}"))).unwrap();
                match o.assign(&topic, 16) {
                    Some(AliasUse::Set(a) | AliasUse::Reuse(a)) => assert!(a.get() <= 16),
                    None => panic!("round {round}, topic {n}: no alias"),
                }
            }
        }
        assert!(o.slots.len() <= 16 && o.by_topic.len() <= 16 && o.by_use.len() <= 16);
    }

    #[test]
    fn the_tables_are_allocated_by_the_first_alias() {
        let mut a = Aliases::default();
        assert_eq!(a.resolve(Some(t("a")), None, 5), Ok(t("a")));
        assert_eq!(
            a.resolve(None, None, 5),
            Err(Violation::TopicAliasUnknown(0))
        );
        assert_eq!(a.assign(&t("a"), 0), None);
        assert_eq!(
            a.resolve(Some(t("a")), nz(6), 5),
            Err(Violation::TopicAliasInvalid(6))
        );
        assert!(a.0.is_none());
        assert_eq!(a.resolve(Some(t("b")), nz(1), 5), Ok(t("b")));
        assert_eq!(a.resolve(None, nz(1), 5), Ok(t("b")));
        assert_eq!(a.assign(&t("c"), 3), Some(AliasUse::Set(nz(1).unwrap())));
        assert!(a.0.is_some());
    }
}
