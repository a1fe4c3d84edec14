//! MQTT topics and filters as NATS subjects, reversibly.
//!
//! A topic's levels become a subject's tokens: `a/b` is `<prefix>.a.b`.
//! NATS tokens cannot be empty and cannot hold `.`, `*`, `>` or
//! whitespace, which MQTT levels can, so a level is escaped: every byte
//! outside `A-Z a-z 0-9 -` (the escape character `_` included) is written
//! `_` and two upper-case hex digits, and an empty level is `_` alone
//! (which no escaped level can be). `+` and `#` in a filter become `*` and
//! `>`; since MQTT's `a/#` also matches `a` itself [MQTT-4.7.1-2], it takes
//! two subjects, `a.>` and `a`. The receiving node matches the topic again
//! itself, so the subjects only need to cover at least what the filter
//! matches. The same escaped form, without the prefix, is a retained
//! message's key in the cluster's key-value bucket (whose keys allow
//! `-/_=.A-Za-z0-9`).

use std::fmt::Write;

/// One level escaped as a NATS token.
fn escape_level(level: &str, out: &mut String) {
    if level.is_empty() {
        out.push('_');
        return;
    }
    for b in level.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "_{b:02X}");
        }
    }
}

/// The key of `topic` (its levels escaped, joined by `.`).
pub(crate) fn topic_key(topic: &str) -> String {
    let mut out = String::with_capacity(topic.len() + 8);
    for (i, level) in topic.split('/').enumerate() {
        if i > 0 {
            out.push('.');
        }
        escape_level(level, &mut out);
    }
    out
}

/// The subject a message on `topic` is published to.
pub(crate) fn topic_subject(prefix: &str, topic: &str) -> String {
    format!("{prefix}.{}", topic_key(topic))
}

/// The topic a key names, or `None` for a key no topic gives.
pub(crate) fn key_topic(key: &str) -> Option<String> {
    let mut topic = Vec::with_capacity(key.len());
    for (i, token) in key.split('.').enumerate() {
        if i > 0 {
            topic.push(b'/');
        }
        if token == "_" {
            continue;
        }
        let bytes = token.as_bytes();
        let mut k = 0;
        while k < bytes.len() {
            match bytes[k] {
                b'_' => {
                    let hex = token.get(k + 1..k + 3)?;
                    let b = u8::from_str_radix(hex, 16).ok()?;
                    // Only what `escape_level` writes: upper-case digits
                    // for a byte that needs them.
                    if b.is_ascii_alphanumeric() || b == b'-' || hex != format!("{b:02X}") {
                        return None;
                    }
                    topic.push(b);
                    k += 3;
                }
                b if b.is_ascii_alphanumeric() || b == b'-' => {
                    topic.push(b);
                    k += 1;
                }
                _ => return None,
            }
        }
        if bytes.is_empty() {
            return None;
        }
    }
    String::from_utf8(topic).ok()
}

/// The subjects that carry every message `filter` matches (one, or two for
/// a filter ending in `#`). A shared subscription is given as its filter.
pub(crate) fn filter_subjects(prefix: &str, filter: &str) -> Vec<String> {
    let mut base = String::from(prefix);
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        match *level {
            "#" => {
                // `a/#` matches `a` too; `#` alone matches every topic.
                let parent = (i > 0).then(|| base.clone());
                base.push_str(".>");
                return std::iter::once(base).chain(parent).collect();
            }
            "+" => base.push_str(".*"),
            l => {
                base.push('.');
                escape_level(l, &mut base);
            }
        }
    }
    vec![base]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn plain_levels_are_tokens_and_the_rest_is_escaped() {
        assert_eq!(topic_subject("m", "a/b-2/C"), "m.a.b-2.C");
        assert_eq!(topic_key("/a//b/"), "_.a._.b._");
        assert_eq!(topic_key("x.y z*>_"), "x_2Ey_20z_2A_3E_5F");
        assert_eq!(topic_key("é"), "_C3_A9");
    }

    #[test]
    fn filters_cover_what_they_match() {
        assert_eq!(filter_subjects("m", "a/+/c"), ["m.a.*.c"]);
        assert_eq!(filter_subjects("m", "a/#"), ["m.a.>", "m.a"]);
        assert_eq!(filter_subjects("m", "#"), ["m.>"]);
        assert_eq!(filter_subjects("m", "+"), ["m.*"]);
        assert_eq!(filter_subjects("m", "/#"), ["m._.>", "m._"]);
    }

    #[test]
    fn keys_that_no_topic_gives_are_refused() {
        for bad in ["", "a..b", "_5f", "_41", "_4", "a b", "_zz", "a*"] {
            assert_eq!(key_topic(bad), None, "{bad:?}");
        }
    }

    proptest! {
        /// Every topic comes back from its key; every key is a valid NATS
        /// subject part and KV key.
        #[test]
        fn escaping_is_reversible(topic in "[a-z/._ #+*>\u{e9}\u{1F600}-]{1,40}") {
            let key = topic_key(&topic);
            prop_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            prop_assert!(!key.starts_with('.') && !key.ends_with('.') && !key.contains(".."));
            prop_assert_eq!(key_topic(&key), Some(topic));
        }

        /// A topic a filter matches is published to a subject one of the
        /// filter's subjects matches (NATS's token rules).
        #[test]
        fn a_matching_topic_lands_on_a_filter_subject(
            levels in proptest::collection::vec("[ab.]{0,2}", 1..5),
            mask in proptest::collection::vec(0u8..4, 1..5),
        ) {
            let topic = levels.join("/");
            let mut filter: Vec<String> = levels.clone();
            for (i, m) in mask.iter().enumerate().take(filter.len()) {
                match m {
                    1 => filter[i] = "+".into(),
                    2 => { filter.truncate(i); filter.push("#".into()); break; }
                    _ => {}
                }
            }
            let filter = filter.join("/");
            prop_assume!(mqtt_router::topic_sets::matches(&filter, &topic));
            let subject = topic_subject("m", &topic);
            let subjects = filter_subjects("m", &filter);
            prop_assert!(
                subjects.iter().any(|s| nats_matches(s, &subject)),
                "{} -> {:?} does not cover {} -> {}", filter, subjects, topic, subject
            );
        }
    }

    /// NATS subject matching: `*` one token, `>` one or more at the end.
    fn nats_matches(pattern: &str, subject: &str) -> bool {
        let p: Vec<&str> = pattern.split('.').collect();
        let s: Vec<&str> = subject.split('.').collect();
        for (i, t) in p.iter().enumerate() {
            match *t {
                ">" => return s.len() > i,
                "*" if i < s.len() => {}
                t if s.get(i) == Some(&t) => {}
                _ => return false,
            }
        }
        p.len() == s.len()
    }
}
