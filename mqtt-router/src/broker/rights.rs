//! Rights: what one client may publish, subscribe to and receive, as plain
//! data its driver hands over when it authenticates the client
//! ([`AuthAnswer::Success`](super::AuthAnswer::Success)). The core checks
//! them; no policy code runs inside it.
//!
//! The semantics are Mosquitto's ACL file's: a `Deny` rule matching a topic
//! wins over any grant, whatever the order; otherwise a rule with the access
//! grants it; with rules, whatever none grants is denied. Read access is
//! checked per delivery, so a subscription that could carry a denied topic
//! is granted and the denied topic is simply not delivered.

use alloc::sync::Arc;
use alloc::vec::Vec;

use hashbrown::HashMap;
use mqtt_codec::{TopicFilter, TopicName};

use crate::seed::KeyedState;
use crate::topic_sets::{covers, intersects};

/// What one rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Subscribe and receive.
    Read,
    /// Publish.
    Write,
    /// Both.
    ReadWrite,
    /// Nothing, and takes away what any other rule grants.
    Deny,
}

impl Access {
    fn reads(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }

    fn writes(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

/// One rule: a topic filter (already substituted for this client) and what
/// it grants or denies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    filter: TopicFilter,
    access: Access,
}

impl Rule {
    /// A rule for `filter`.
    pub fn new(filter: TopicFilter, access: Access) -> Self {
        Rule { filter, access }
    }

    /// The rule's topic filter.
    pub fn filter(&self) -> &TopicFilter {
        &self.filter
    }

    /// What it grants.
    pub fn access(&self) -> Access {
        self.access
    }
}

/// A client's rights: everything, or an ordered list of rules. Cheap to
/// clone (the rules are shared).
///
/// Mosquitto's ACL semantics: a [`Access::Deny`] rule matching a topic wins
/// over any grant, whatever the order; otherwise a rule with the access
/// grants it; with rules, whatever none grants is denied. Read access is
/// checked per delivery, so a subscription that could carry a denied topic
/// is granted and the denied topic is simply not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    All,
    Rules(Arc<[Rule]>),
}

impl Default for Rights {
    /// Everything allowed: the broker without authentication.
    fn default() -> Self {
        Rights::allow_all()
    }
}

impl Rights {
    /// Everything allowed; deliveries then cost no check at all.
    pub fn allow_all() -> Self {
        Rights(Kind::All)
    }

    /// Nothing allowed: no rules.
    pub fn deny_all() -> Self {
        Rights(Kind::Rules(Arc::from(Vec::new())))
    }

    /// Exactly what `rules` grant (see [`Rights`]).
    pub fn from_rules(rules: impl IntoIterator<Item = Rule>) -> Self {
        Rights(Kind::Rules(rules.into_iter().collect()))
    }

    /// Whether everything is allowed.
    pub fn is_allow_all(&self) -> bool {
        matches!(self.0, Kind::All)
    }

    /// The rules; empty for [`Rights::allow_all`] (see [`Rights::is_allow_all`]).
    pub fn rules(&self) -> &[Rule] {
        match &self.0 {
            Kind::All => &[],
            Kind::Rules(r) => r,
        }
    }

    /// Whether the client may publish to `topic`.
    pub fn may_publish<B: AsRef<[u8]>>(&self, topic: &TopicName<B>) -> bool {
        self.decide(|r| r.filter.matches(topic), Access::writes)
    }

    /// Whether the client may receive a message published to `topic`.
    pub fn may_read<B: AsRef<[u8]>>(&self, topic: &TopicName<B>) -> bool {
        self.decide(|r| r.filter.matches(topic), Access::reads)
    }

    /// Whether the client may subscribe to `filter` (a shared subscription
    /// by its filter part): some read rule can match a topic it matches,
    /// and no deny rule matches every one of them. What the subscription
    /// then carries is checked per message ([`Rights::may_read`]), so
    /// `a/#` beside a deny rule for `a/secret` is granted and never
    /// delivers `a/secret`.
    pub fn may_subscribe<B: AsRef<[u8]>>(&self, filter: &TopicFilter<B>) -> bool {
        let Kind::Rules(rules) = &self.0 else {
            return true;
        };
        let f = filter.shared().map_or(filter.as_str(), |s| s.filter);
        fn rule_filter(r: &Rule) -> &str {
            r.filter.as_str()
        }
        if rules
            .iter()
            .any(|r| r.access == Access::Deny && covers(rule_filter(r), f))
        {
            return false;
        }
        rules
            .iter()
            .any(|r| r.access.reads() && intersects(rule_filter(r), f))
    }

    /// False if a deny rule hits, else true if a rule with the access hits.
    fn decide(&self, hits: impl Fn(&Rule) -> bool, grants: fn(Access) -> bool) -> bool {
        let Kind::Rules(rules) = &self.0 else {
            return true;
        };
        if rules.iter().any(|r| r.access == Access::Deny && hits(r)) {
            return false;
        }
        rules.iter().any(|r| grants(r.access) && hits(r))
    }
}

/// Most topics one session remembers read decisions for; past it the
/// cache starts over (a client reading many distinct topics pays the rule
/// check again, never unbounded memory).
const READ_CACHE_MAX: usize = 256;

/// A session's rights as a reader, with its read decisions cached per
/// topic, so fan-out to a client with rules costs a lookup, and to a client
/// with every right a branch.
#[derive(Debug, Clone, Default)]
pub(super) struct Reader {
    rights: Rights,
    cache: Option<HashMap<TopicName, bool, KeyedState>>,
}

impl Reader {
    pub(super) fn new(rights: Rights) -> Self {
        Reader {
            rights,
            cache: None,
        }
    }

    pub(super) fn rights(&self) -> &Rights {
        &self.rights
    }

    /// Whether the session may receive `topic`, cached per topic.
    #[inline]
    pub(super) fn may_read(&mut self, topic: &TopicName, hasher: &KeyedState) -> bool {
        if self.rights.is_allow_all() {
            return true;
        }
        let cache = self
            .cache
            .get_or_insert_with(|| HashMap::with_hasher(hasher.clone()));
        if let Some(&ok) = cache.get(topic) {
            return ok;
        }
        let ok = self.rights.may_read(topic);
        if cache.len() >= READ_CACHE_MAX {
            cache.clear();
        }
        // The key keeps its own memory, not the publisher's read buffer.
        let key = TopicName::try_from(topic.as_str()).unwrap_or_else(|_| topic.clone());
        cache.insert(key, ok);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(rules: &[(&'static str, Access)]) -> Rights {
        Rights::from_rules(
            rules
                .iter()
                .map(|(f, a)| Rule::new(TopicFilter::from_static(f), *a)),
        )
    }

    fn t(s: &'static str) -> TopicName {
        TopicName::from_static(s)
    }

    fn f(s: &'static str) -> TopicFilter {
        TopicFilter::from_static(s)
    }

    #[test]
    fn deny_wins_over_a_broader_grant_whatever_the_order() {
        for r in [
            rights(&[("a/#", Access::ReadWrite), ("a/secret", Access::Deny)]),
            rights(&[("a/secret", Access::Deny), ("a/#", Access::ReadWrite)]),
        ] {
            assert!(r.may_publish(&t("a/ok")) && r.may_read(&t("a/ok")));
            assert!(!r.may_publish(&t("a/secret")) && !r.may_read(&t("a/secret")));
            assert!(!r.may_read(&t("b")));
        }
    }

    #[test]
    fn read_and_write_are_separate_rights() {
        let r = rights(&[("in/#", Access::Read), ("out/#", Access::Write)]);
        assert!(r.may_read(&t("in/x")) && !r.may_publish(&t("in/x")));
        assert!(r.may_publish(&t("out/x")) && !r.may_read(&t("out/x")));
        assert!(r.may_subscribe(&f("in/#")) && !r.may_subscribe(&f("out/#")));
    }

    #[test]
    fn a_wildcard_subscription_beside_a_deny_is_granted_a_denied_one_is_not() {
        let r = rights(&[("a/#", Access::Read), ("a/secret", Access::Deny)]);
        assert!(r.may_subscribe(&f("a/#")));
        assert!(r.may_subscribe(&f("+/+")));
        assert!(r.may_subscribe(&f("$share/g/a/#")));
        assert!(!r.may_subscribe(&f("a/secret")));
        assert!(!r.may_subscribe(&f("b/#")));
    }

    #[test]
    fn no_rules_deny_everything_and_allow_all_allows_everything() {
        let none = Rights::deny_all();
        assert!(!none.may_publish(&t("x")) && !none.may_read(&t("x")));
        assert!(!none.may_subscribe(&f("#")));
        let all = Rights::allow_all();
        assert!(all.may_publish(&t("x")) && all.may_read(&t("$SYS/x")));
        assert!(all.may_subscribe(&f("#")) && all.is_allow_all());
    }

    #[test]
    fn the_read_cache_answers_as_the_rules_and_stays_bounded() {
        let r = rights(&[("a/#", Access::Read), ("a/secret", Access::Deny)]);
        let mut reader = Reader::new(r);
        let hasher = crate::seed::SplitMix64::new(1).keyed_state();
        for _ in 0..2 {
            assert!(reader.may_read(&t("a/ok"), &hasher));
            assert!(!reader.may_read(&t("a/secret"), &hasher));
        }
        for i in 0..1000 {
            let topic = TopicName::try_from(alloc::format!("a/{i}").as_str()).unwrap();
            assert!(reader.may_read(&topic, &hasher));
        }
        assert!(reader.cache.as_ref().unwrap().len() <= READ_CACHE_MAX);
    }
}
