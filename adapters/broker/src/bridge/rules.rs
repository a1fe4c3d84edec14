//! A bridge's topic rules, checked: which local topics go out, which
//! remote ones come in, and the prefixes swapped on the way.
//!
//! The mapping stays in the adapter, beside the configuration it comes
//! from: the broker core sees a bridge's local filters and local topics
//! only, so it needs no notion of prefixes, and renaming a message (a new
//! topic, so a new message per bridge) happens outside the core's routing.

use mqtt_codec::{QoS, TopicFilter, TopicName};

use super::{Direction, TopicRuleConfig};

/// One topic rule, checked: the filter on each side and the prefixes to swap.
#[derive(Debug, Clone)]
pub(crate) struct TopicRule {
    direction: Direction,
    qos: QoS,
    local_prefix: String,
    remote_prefix: String,
    /// `local_prefix + topic`: what the bridge subscribes to in this broker.
    local_filter: TopicFilter,
    /// `remote_prefix + topic`: what the remote end subscribes to.
    remote_filter: TopicFilter,
}

impl TopicRule {
    fn parse(c: &TopicRuleConfig) -> Result<TopicRule, String> {
        let qos = QoS::from_u8(c.qos).ok_or_else(|| format!("qos {} is not 0, 1 or 2", c.qos))?;
        for (what, prefix) in [
            ("local_prefix", &c.local_prefix),
            ("remote_prefix", &c.remote_prefix),
        ] {
            if prefix.contains(['+', '#', '\0']) {
                return Err(format!("{what} {prefix:?} may not contain wildcards"));
            }
        }
        let filter = |prefix: &str| -> Result<TopicFilter, String> {
            let text = format!("{prefix}{}", c.topic);
            let f = TopicFilter::try_from(text.as_str())
                .map_err(|e| format!("{text:?} is not a valid topic filter: {e}"))?;
            if f.is_shared() {
                return Err(format!("{text:?} is a shared subscription"));
            }
            Ok(f)
        };
        Ok(TopicRule {
            direction: c.direction,
            qos,
            local_prefix: c.local_prefix.clone(),
            remote_prefix: c.remote_prefix.clone(),
            local_filter: filter(&c.local_prefix)?,
            remote_filter: filter(&c.remote_prefix)?,
        })
    }

    /// The remote topic of a local one, if this rule carries it out.
    fn to_remote(&self, local: &TopicName) -> Option<TopicName> {
        if !self.direction.is_out() || !self.local_filter.matches(local) {
            return None;
        }
        swap(local.as_str(), &self.local_prefix, &self.remote_prefix)
    }

    /// The local topic of a remote one, if this rule carries it in.
    fn to_local(&self, remote: &TopicName) -> Option<TopicName> {
        if !self.direction.is_in() || !self.remote_filter.matches(remote) {
            return None;
        }
        swap(remote.as_str(), &self.remote_prefix, &self.local_prefix)
    }
}

/// `topic` with its prefix `from` replaced by `to`.
fn swap(topic: &str, from: &str, to: &str) -> Option<TopicName> {
    let rest = topic.strip_prefix(from)?;
    if from.is_empty() && to.is_empty() {
        // Nothing to swap: the topic itself, sharing its storage.
        return TopicName::try_from(topic).ok();
    }
    TopicName::try_from(format!("{to}{rest}").as_str()).ok()
}

/// A bridge's topic rules, in configuration order: the first rule that
/// carries a topic decides its mapping (as in Mosquitto).
#[derive(Debug, Clone)]
pub(crate) struct Rules(Vec<TopicRule>);

impl Rules {
    /// Checks and parses rules; the error says which rule and why.
    pub(crate) fn parse(rules: &[TopicRuleConfig]) -> Result<Rules, String> {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| TopicRule::parse(r).map_err(|e| format!("topic rule {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()
            .map(Rules)
    }

    /// The remote topic a local message goes to, if any rule carries it out.
    pub(crate) fn outgoing(&self, local: &TopicName) -> Option<TopicName> {
        self.0.iter().find_map(|r| r.to_remote(local))
    }

    /// The local topic a remote message goes to, if any rule carries it in.
    pub(crate) fn incoming(&self, remote: &TopicName) -> Option<TopicName> {
        self.0.iter().find_map(|r| r.to_local(remote))
    }

    /// What the bridge subscribes to in this broker: the local filters of
    /// the `out` and `both` rules, each once, with its highest QoS.
    pub(crate) fn local_subscriptions(&self) -> Vec<(TopicFilter, QoS)> {
        dedup(
            self.0
                .iter()
                .filter(|r| r.direction.is_out())
                .map(|r| (r.local_filter.clone(), r.qos)),
        )
    }

    /// What the remote end subscribes to: the remote filters of the `in`
    /// and `both` rules, each once, with its highest QoS.
    pub(crate) fn remote_subscriptions(&self) -> Vec<(TopicFilter, QoS)> {
        dedup(
            self.0
                .iter()
                .filter(|r| r.direction.is_in())
                .map(|r| (r.remote_filter.clone(), r.qos)),
        )
    }
}

/// One entry per filter (a SUBSCRIBE may not name a filter twice usefully),
/// with the highest QoS asked for it.
fn dedup(items: impl Iterator<Item = (TopicFilter, QoS)>) -> Vec<(TopicFilter, QoS)> {
    let mut out: Vec<(TopicFilter, QoS)> = Vec::new();
    for (f, q) in items {
        match out.iter_mut().find(|(g, _)| g.as_str() == f.as_str()) {
            Some((_, have)) => *have = (*have).max(q),
            None => out.push((f, q)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(topic: &str, direction: Direction, local: &str, remote: &str) -> TopicRuleConfig {
        TopicRuleConfig {
            topic: topic.into(),
            direction,
            qos: 1,
            local_prefix: local.into(),
            remote_prefix: remote.into(),
        }
    }

    fn t(s: &str) -> TopicName {
        TopicName::try_from(s).unwrap()
    }

    fn mapped(t: Option<TopicName>) -> Option<String> {
        t.map(|t| t.as_str().to_owned())
    }

    #[test]
    fn prefixes_are_swapped_each_way() {
        let rules = Rules::parse(&[rule("sensors/#", Direction::Both, "", "site1/")]).unwrap();
        assert_eq!(
            mapped(rules.outgoing(&t("sensors/1/temp"))).as_deref(),
            Some("site1/sensors/1/temp")
        );
        assert_eq!(
            mapped(rules.incoming(&t("site1/sensors/2"))).as_deref(),
            Some("sensors/2")
        );
        // Outside the filters: nothing crosses.
        assert_eq!(rules.outgoing(&t("other/1")), None);
        assert_eq!(rules.incoming(&t("sensors/1")), None);
        assert_eq!(rules.incoming(&t("site2/sensors/1")), None);

        let rules = Rules::parse(&[rule("#", Direction::In, "cmd/", "cmd/site1/")]).unwrap();
        assert_eq!(
            mapped(rules.incoming(&t("cmd/site1/reboot"))).as_deref(),
            Some("cmd/reboot")
        );
        // An "in" rule carries nothing out.
        assert_eq!(rules.outgoing(&t("cmd/reboot")), None);
    }

    #[test]
    fn directions_decide_what_crosses() {
        let rules = Rules::parse(&[
            rule("a/#", Direction::Out, "", ""),
            rule("b/#", Direction::In, "", ""),
        ])
        .unwrap();
        assert!(rules.outgoing(&t("a/1")).is_some());
        assert!(rules.incoming(&t("a/1")).is_none());
        assert!(rules.incoming(&t("b/1")).is_some());
        assert!(rules.outgoing(&t("b/1")).is_none());
        let subs = |v: Vec<(TopicFilter, QoS)>| {
            v.into_iter()
                .map(|(f, q)| (f.as_str().to_owned(), q))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            subs(rules.local_subscriptions()),
            vec![("a/#".to_owned(), QoS::AtLeastOnce)]
        );
        assert_eq!(
            subs(rules.remote_subscriptions()),
            vec![("b/#".to_owned(), QoS::AtLeastOnce)]
        );
    }

    #[test]
    fn the_first_rule_that_carries_a_topic_decides() {
        let rules = Rules::parse(&[
            rule("x/#", Direction::Out, "", "first/"),
            rule("#", Direction::Out, "", "second/"),
        ])
        .unwrap();
        assert_eq!(
            mapped(rules.outgoing(&t("x/1"))).as_deref(),
            Some("first/x/1")
        );
        assert_eq!(
            mapped(rules.outgoing(&t("y/1"))).as_deref(),
            Some("second/y/1")
        );
        // The same filter twice is subscribed once, at the higher QoS.
        let mut a = rule("s/#", Direction::Out, "", "");
        a.qos = 0;
        let mut b = rule("s/#", Direction::Both, "", "r/");
        b.qos = 2;
        let rules = Rules::parse(&[a, b]).unwrap();
        let local = rules.local_subscriptions();
        assert_eq!(local.len(), 1);
        assert_eq!(local[0].1, QoS::ExactlyOnce);
    }

    #[test]
    fn an_empty_pattern_makes_the_prefix_the_topic() {
        let rules =
            Rules::parse(&[rule("", Direction::Both, "here/status", "there/status")]).unwrap();
        assert_eq!(
            mapped(rules.outgoing(&t("here/status"))).as_deref(),
            Some("there/status")
        );
        assert_eq!(
            mapped(rules.incoming(&t("there/status"))).as_deref(),
            Some("here/status")
        );
        assert_eq!(rules.outgoing(&t("here/status/x")), None);
    }

    #[test]
    fn a_filter_matching_above_its_prefix_does_not_cross() {
        // "a/#" also matches "a", which does not start with "a/".
        let rules = Rules::parse(&[rule("#", Direction::Out, "a/", "b/")]).unwrap();
        assert_eq!(rules.outgoing(&t("a")), None);
        assert_eq!(mapped(rules.outgoing(&t("a/x"))).as_deref(), Some("b/x"));
    }

    #[test]
    fn invalid_rules_are_refused_with_the_reason() {
        let refused = |r: TopicRuleConfig| Rules::parse(&[r]).unwrap_err();
        assert!(refused(rule("a/#/b", Direction::Out, "", "")).contains("not a valid topic filter"));
        assert!(refused(rule("a", Direction::Out, "x/+/", "")).contains("wildcards"));
        assert!(refused(rule("a", Direction::Out, "", "#")).contains("remote_prefix"));
        assert!(refused(rule("", Direction::Out, "", "")).contains("not a valid topic filter"));
        assert!(refused(rule("$share/g/a", Direction::Out, "", "")).contains("shared"));
        let mut q = rule("a", Direction::Out, "", "");
        q.qos = 3;
        assert!(refused(q).contains("qos 3"));
        let e = Rules::parse(&[
            rule("a", Direction::In, "", ""),
            rule("b/#x", Direction::In, "", ""),
        ])
        .unwrap_err();
        assert!(e.starts_with("topic rule 2:"), "{e}");
    }
}
