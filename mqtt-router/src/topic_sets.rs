//! Sets of topics described by topic filters: whether a filter matches a
//! topic, covers every topic another filter matches, or shares a topic with
//! it. Access rights ([`crate::broker::Rights`]) decide subscriptions with
//! these, and the broker binary's ACL file uses them too.
//!
//! The filters are valid topic filters given as text (a shared
//! subscription's filter part, without `$share/{ShareName}/`).

/// Whether `filter` matches `topic` (section 4.7): `+` one level, `#` any
/// number of levels including none; a filter starting with a wildcard does not
/// match a topic starting with `$` [MQTT-4.7.2-1].
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) | (None, None) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Whether `grant` matches every topic that `filter` matches: the test for
/// granting a subscription to `filter` under a read rule for `grant`.
///
/// Both are valid topic filters. `a/#` covers `a`, `a/+/c` and `a/#`; `a/+`
/// covers `a/b` but not `a/#`; `#` does not cover `$SYS/#` [MQTT-4.7.2-1].
/// Judged on valid topic names only, so `+/#` covers `#` (no topic has zero
/// levels) and `/+/#` covers `/#` (the empty topic does not exist).
pub fn covers(grant: &str, filter: &str) -> bool {
    // A filter starting with a `$` level matches only `$` topics, which a
    // grant starting with a wildcard never matches.
    if grant.starts_with(['+', '#']) && filter.starts_with('$') {
        return false;
    }
    let first_empty = filter.starts_with('/');
    let mut g = grant.split('/');
    let mut f = filter.split('/');
    let mut level = 0;
    loop {
        match (g.next(), f.next()) {
            // `#` covers the rest, and the parent level ("a/#" matches "a").
            (Some("#"), _) | (None, None) => return true,
            // The filter's `#` matches the parent level too, which `+/#`
            // cannot match, unless that parent is no topic at all: none at
            // level 0, the empty topic at level 1 after an empty level.
            (Some("+"), Some("#")) => {
                let rest_is_hash = g.next() == Some("#") && g.next().is_none();
                return rest_is_hash && (level == 0 || (level == 1 && first_empty));
            }
            // One of them needs more levels than the other can have; a
            // filter `#` also matches levels a literal cannot.
            (None, Some(_)) | (Some(_), None) | (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
        level += 1;
    }
}

/// Whether some topic matches both filters: the test for refusing a
/// subscription to `b` under a deny rule for `a` (and the other way round).
pub fn intersects(a: &str, b: &str) -> bool {
    if (a.starts_with(['+', '#']) && b.starts_with('$'))
        || (b.starts_with(['+', '#']) && a.starts_with('$'))
    {
        return false;
    }
    // With an empty first level on either side, a shared topic of one level
    // would be the empty topic, which does not exist.
    let first_empty = a.starts_with('/') || b.starts_with('/');
    let mut x = a.split('/');
    let mut y = b.split('/');
    let mut level = 0;
    loop {
        match (x.next(), y.next()) {
            // `#` matches the parent level: the shared topic ends here.
            (Some("#"), None) | (None, Some("#")) => return !(level == 1 && first_empty),
            // `#` matches whatever the other allows from here.
            (Some("#"), _) | (_, Some("#")) | (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
        level += 1;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::vec::Vec;
    use mqtt_codec::{TopicFilter, TopicName};
    use proptest::prelude::*;

    #[test]
    fn covers_examples() {
        for (g, f) in [
            ("#", "#"),
            ("#", "a/+/c"),
            ("a/#", "a"),
            ("a/#", "a/#"),
            ("a/#", "a/+/#"),
            ("a/+", "a/b"),
            ("a/+", "a/+"),
            ("+/+", "a/b"),
            ("$SYS/#", "$SYS/broker/+"),
            ("a//b", "a//b"),
        ] {
            assert!(covers(g, f), "{g} should cover {f}");
        }
        for (g, f) in [
            ("a/+", "a/#"),
            ("a/+", "a"),
            ("a", "a/#"),
            ("a/b", "a/+"),
            ("#", "$SYS/#"),
            ("+/x", "$SYS/x"),
            ("a/+/c", "a/b"),
            ("a/b", "a/b/c"),
        ] {
            assert!(!covers(g, f), "{g} should not cover {f}");
        }
    }

    #[test]
    fn intersects_examples() {
        for (a, b) in [
            ("a/secret", "a/#"),
            ("a/secret", "+/secret"),
            ("a/#", "a"),
            ("#", "+/+"),
            ("a/+/c", "a/b/+"),
            ("$SYS/x", "$SYS/+"),
        ] {
            assert!(intersects(a, b) && intersects(b, a), "{a} and {b}");
        }
        for (a, b) in [
            ("a/secret", "a/public"),
            ("a/secret", "a/+/x"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("a", "a/+"),
        ] {
            assert!(!intersects(a, b) && !intersects(b, a), "{a} and {b}");
        }
    }

    // ----- property tests against the codec's reference matcher ------------

    /// Every topic of up to four levels over the literals the filters use
    /// plus fresh ones (with and without a leading `$`): enough to hold a
    /// witness for any difference between filters of up to three levels.
    fn topics() -> Vec<String> {
        const LEVELS: [&str; 6] = ["a", "b", "", "$s", "z", "$z"];
        let mut out: Vec<String> = LEVELS.iter().map(|s| s.to_string()).collect();
        let mut last = out.clone();
        for _ in 1..4 {
            let mut next = Vec::new();
            for t in &last {
                for l in LEVELS {
                    next.push(format!("{t}/{l}"));
                }
            }
            out.extend(next.iter().cloned());
            last = next;
        }
        out.retain(|t| !t.is_empty());
        out
    }

    fn filter() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(prop::sample::select(vec!["a", "b", "", "$s", "+"]), 0..=3),
            any::<bool>(),
        )
            .prop_map(|(mut levels, hash)| {
                if hash || levels.is_empty() {
                    levels.push("#");
                }
                levels.join("/")
            })
            .prop_filter("a valid filter", |f| {
                TopicFilter::<&[u8]>::try_from(f.as_str()).is_ok()
            })
    }

    fn reference(filter: &str, topic: &str) -> bool {
        let f = TopicFilter::<&[u8]>::try_from(filter).unwrap();
        let t = TopicName::<&[u8]>::try_from(topic).unwrap();
        f.matches(&t)
    }

    proptest! {
        #[test]
        fn matches_agrees_with_the_codec(f in filter()) {
            for t in topics() {
                prop_assert_eq!(matches(&f, &t), reference(&f, &t), "{} {}", f, t);
            }
        }

        #[test]
        fn covers_is_topic_set_inclusion(g in filter(), f in filter()) {
            let all = topics();
            let included = all.iter().all(|t| !reference(&f, t) || reference(&g, t));
            prop_assert_eq!(covers(&g, &f), included, "grant {} filter {}", g, f);
        }

        #[test]
        fn intersects_is_a_shared_topic(a in filter(), b in filter()) {
            let all = topics();
            let shared = all.iter().any(|t| reference(&a, t) && reference(&b, t));
            prop_assert_eq!(intersects(&a, &b), shared, "{} and {}", a, b);
            prop_assert_eq!(intersects(&b, &a), shared);
        }

        #[test]
        fn a_filter_covers_itself_and_hash_covers_non_dollar_filters(f in filter()) {
            prop_assert!(covers(&f, &f));
            prop_assert!(intersects(&f, &f));
            prop_assert_eq!(covers("#", &f), !f.starts_with('$'));
        }
    }
}
