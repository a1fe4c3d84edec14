//! Topic names and topic filters (section 4.7), and shared subscriptions (section 4.8.2).

use core::fmt;

use bytes::Bytes;

use crate::reason::ReasonCode;
use crate::scan::{any_byte, filter_scan, is_wildcard, nul_or_non_ascii, FilterScan};
use crate::string::{check_str, Str, StrError};

/// Why a string is not a valid topic name or topic filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Topic names and filters are at least one character long [MQTT-4.7.3-1].
    #[error("topics and topic filters must be at least one character long [MQTT-4.7.3-1]")]
    Empty,
    /// The string itself breaks the MQTT string rules.
    #[error(transparent)]
    String(#[from] StrError),
    /// Topic names carry no wildcard characters [MQTT-4.7.3-2], [MQTT-3.3.2-2].
    #[error("a topic name must not contain the wildcards '+' or '#' [MQTT-4.7.3-2]")]
    WildcardInName,
    /// '#' must stand alone in the last level of a filter [MQTT-4.7.1-1].
    #[error("'#' must be the whole of the last level of a topic filter [MQTT-4.7.1-1]")]
    MisplacedMultiLevelWildcard,
    /// '+' must fill a whole level [MQTT-4.7.1-2].
    #[error("'+' must be the whole of a topic filter level [MQTT-4.7.1-2]")]
    MisplacedSingleLevelWildcard,
    /// A ShareName is at least one character and has no '/', '+' or '#' [MQTT-4.8.2-1].
    #[error("the ShareName of a shared subscription must be non-empty and contain no '/', '+' or '#' [MQTT-4.8.2-1]")]
    InvalidShareName,
    /// `$share/{ShareName}` must be followed by '/' and a topic filter [MQTT-4.8.2-2].
    #[error("a shared subscription must be '$share/{{ShareName}}/{{filter}}' with a non-empty filter [MQTT-4.8.2-2]")]
    MissingSharedFilter,
}

impl TopicError {
    /// The reason code for a packet carrying this topic as a topic name.
    pub const fn name_reason(self) -> ReasonCode {
        match self {
            TopicError::String(_) => ReasonCode::MALFORMED_PACKET,
            _ => ReasonCode::TOPIC_NAME_INVALID,
        }
    }

    /// The reason code for a packet carrying this topic as a topic filter.
    pub const fn filter_reason(self) -> ReasonCode {
        match self {
            TopicError::String(_) => ReasonCode::MALFORMED_PACKET,
            _ => ReasonCode::TOPIC_FILTER_INVALID,
        }
    }
}

/// Checks a topic name's bytes: a non-empty MQTT string without wildcards.
#[inline]
pub(crate) fn check_topic_name(b: &[u8]) -> Result<(), TopicError> {
    if b.is_empty() {
        return Err(TopicError::Empty);
    }
    // One vectorised pass settles the common case, an ASCII topic: no U+0000,
    // no wildcard and nothing that needs the UTF-8 check.
    if b.len() <= u16::MAX as usize && !any_byte(b, |c| nul_or_non_ascii(c) || is_wildcard(c)) {
        return Ok(());
    }
    check_topic_name_exact(b)
}

/// The rules one at a time, in the order that decides which error a topic
/// breaking several of them gets: string rules first, then wildcards.
#[inline(never)]
fn check_topic_name_exact(b: &[u8]) -> Result<(), TopicError> {
    check_str(b)?;
    if any_byte(b, is_wildcard) {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

const SHARE_PREFIX: &[u8] = b"$share/";

/// Checks a topic filter's bytes, including the `$share/{ShareName}/{filter}` form.
#[inline]
pub(crate) fn check_topic_filter(b: &[u8]) -> Result<(), TopicError> {
    if b.is_empty() {
        return Err(TopicError::Empty);
    }
    // The common case, an ordinary ASCII filter with well-placed wildcards,
    // in one pass; anything else gets the exact checks and their errors.
    if b.len() <= u16::MAX as usize
        && !b.starts_with(SHARE_PREFIX)
        && filter_scan(b) == FilterScan::Valid
    {
        return Ok(());
    }
    check_topic_filter_exact(b)
}

/// The rules one at a time, in the order that decides the error: string
/// rules, then the shared-subscription form, then the levels.
#[inline(never)]
fn check_topic_filter_exact(b: &[u8]) -> Result<(), TopicError> {
    check_str(b)?;
    let filter = match b.strip_prefix(SHARE_PREFIX) {
        Some(rest) => {
            let slash = rest.iter().position(|&c| c == b'/');
            let name = &rest[..slash.unwrap_or(rest.len())];
            if name.is_empty() || any_byte(name, is_wildcard) {
                return Err(TopicError::InvalidShareName);
            }
            match slash {
                Some(i) if i + 1 < rest.len() => &rest[i + 1..],
                _ => return Err(TopicError::MissingSharedFilter),
            }
        }
        None => b,
    };
    if filter_scan(filter) == FilterScan::Valid {
        return Ok(());
    }
    check_filter_levels(filter)
}

/// Level by level, so that the first offending level decides the error, and
/// within a level a misplaced '#' before a misplaced '+'.
fn check_filter_levels(b: &[u8]) -> Result<(), TopicError> {
    let mut levels = b.split(|&c| c == b'/').peekable();
    while let Some(level) = levels.next() {
        if level.contains(&b'#') && (level != b"#" || levels.peek().is_some()) {
            return Err(TopicError::MisplacedMultiLevelWildcard);
        }
        if level.contains(&b'+') && level != b"+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

/// A topic name: what a PUBLISH is published to. Non-empty, no wildcards.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName<B = Bytes>(Str<B>);

/// A topic filter: what a SUBSCRIBE asks for. `+` and `#` only as whole levels,
/// `#` only last; `$share/{ShareName}/{filter}` for a shared subscription.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter<B = Bytes>(Str<B>);

/// Methods shared by [`TopicName`] and [`TopicFilter`].
macro_rules! topic_common {
    ($ty:ident, $check:ident, $what:literal) => {
        impl<B: AsRef<[u8]>> $ty<B> {
            #[doc = concat!("Validates `bytes` as a ", $what, ".")]
            pub fn new(bytes: B) -> Result<Self, TopicError> {
                $check(bytes.as_ref())?;
                Ok($ty(Str::new_unchecked(bytes)))
            }

            /// Wraps bytes that already passed the matching check.
            #[inline]
            pub(crate) fn new_unchecked(bytes: B) -> Self {
                $ty(Str::new_unchecked(bytes))
            }

            #[doc = concat!("Validates an MQTT string as a ", $what, ".")]
            pub fn from_mqtt_str(s: Str<B>) -> Result<Self, TopicError> {
                $check(s.as_bytes())?;
                Ok($ty(s))
            }

            #[doc = concat!("The ", $what, " as text.")]
            #[inline]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            #[doc = concat!("The ", $what, "'s bytes.")]
            #[inline]
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }

            /// The same value over borrowed storage: no check, no copy, no
            /// reference count touched.
            #[inline]
            pub fn borrowed(&self) -> $ty<&[u8]> {
                $ty(self.0.borrowed())
            }

            /// The validated string underneath.
            #[inline]
            pub fn as_mqtt_str(&self) -> &Str<B> {
                &self.0
            }

            /// The validated string underneath, by value.
            #[inline]
            pub fn into_mqtt_str(self) -> Str<B> {
                self.0
            }

            /// Length in bytes.
            #[inline]
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Always false: topics are at least one character long. Present for symmetry with `len`.
            #[inline]
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// The levels, split at '/' (empty levels included).
            pub fn levels(&self) -> core::str::Split<'_, char> {
                self.as_str().split('/')
            }
        }

        impl $ty<Bytes> {
            #[doc = concat!("A ", $what, " from a literal.")]
            ///
            /// # Panics
            /// If the literal is invalid: that is a bug in the calling program.
            pub fn from_static(s: &'static str) -> Self {
                match Self::new(Bytes::from_static(s.as_bytes())) {
                    Ok(t) => t,
                    Err(e) => panic!("invalid {} literal {s:?}: {e}", $what),
                }
            }
        }

        impl TryFrom<&str> for $ty<Bytes> {
            type Error = TopicError;
            fn try_from(s: &str) -> Result<Self, TopicError> {
                $check(s.as_bytes())?;
                Ok($ty(Str::new_unchecked(Bytes::copy_from_slice(
                    s.as_bytes(),
                ))))
            }
        }

        impl<'a> TryFrom<&'a str> for $ty<&'a [u8]> {
            type Error = TopicError;
            fn try_from(s: &'a str) -> Result<Self, TopicError> {
                Self::new(s.as_bytes())
            }
        }

        impl<B: AsRef<[u8]>> AsRef<str> for $ty<B> {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl<B: AsRef<[u8]>> PartialEq<str> for $ty<B> {
            fn eq(&self, other: &str) -> bool {
                self.as_bytes() == other.as_bytes()
            }
        }

        impl<B: AsRef<[u8]>> PartialEq<&str> for $ty<B> {
            fn eq(&self, other: &&str) -> bool {
                self.as_bytes() == other.as_bytes()
            }
        }

        impl<B: fmt::Debug> fmt::Debug for $ty<B> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<B: AsRef<[u8]>> fmt::Display for $ty<B> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

topic_common!(TopicName, check_topic_name, "topic name");
topic_common!(TopicFilter, check_topic_filter, "topic filter");

impl<B: AsRef<[u8]>> TopicName<B> {
    /// True for topics starting with '$' (such as `$SYS/...`), which filters
    /// starting with a wildcard do not match [MQTT-4.7.2-1].
    pub fn is_dollar(&self) -> bool {
        self.as_bytes().first() == Some(&b'$')
    }
}

impl TopicName<Bytes> {
    /// Copies a borrowed topic name into owned storage.
    pub fn copy_from(t: &TopicName<&[u8]>) -> Self {
        TopicName(Str::copy_from(&t.0))
    }
}

impl TopicFilter<Bytes> {
    /// Copies a borrowed topic filter into owned storage.
    pub fn copy_from(t: &TopicFilter<&[u8]>) -> Self {
        TopicFilter(Str::copy_from(&t.0))
    }
}

/// A `$share/{ShareName}/{filter}` subscription split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    /// The ShareName: the group of subscribers that share the messages.
    pub share_name: &'a str,
    /// The topic filter that selects the messages.
    pub filter: &'a str,
}

impl<B: AsRef<[u8]>> TopicFilter<B> {
    /// True if the filter has a '+' or '#' level (the part after `$share/{ShareName}/` for shared ones).
    pub fn has_wildcards(&self) -> bool {
        let f = self.shared().map_or(self.as_str(), |s| s.filter);
        f.bytes().any(|c| c == b'+' || c == b'#')
    }

    /// True for a shared subscription, `$share/{ShareName}/{filter}` (section 4.8.2).
    pub fn is_shared(&self) -> bool {
        self.as_bytes().starts_with(SHARE_PREFIX)
    }

    /// The ShareName and filter of a shared subscription; `None` for an ordinary filter.
    pub fn shared(&self) -> Option<SharedFilter<'_>> {
        let rest = self.as_str().strip_prefix("$share/")?;
        // Invariant: validation guarantees `{ShareName}/{filter}` after the prefix.
        let (share_name, filter) = rest.split_once('/')?;
        Some(SharedFilter { share_name, filter })
    }

    /// True if this filter matches `topic` (section 4.7), judged level by level.
    ///
    /// A shared subscription matches by its filter part. Filters starting with a
    /// wildcard do not match topics starting with '$' [MQTT-4.7.2-1]. This is the
    /// straightforward reference matcher; brokers index filters in a trie instead.
    pub fn matches<T: AsRef<[u8]>>(&self, topic: &TopicName<T>) -> bool {
        let filter = self.shared().map_or(self.as_str(), |s| s.filter);
        let topic = topic.as_str();
        if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
            return false;
        }
        let mut f = filter.split('/');
        let mut t = topic.split('/');
        loop {
            match (f.next(), t.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(fl), Some(tl)) if fl == tl => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The checks as they were written before the fast paths, one rule at a
    /// time: the fast paths must give the same answer, error included.
    mod reference {
        use super::super::*;

        pub(super) fn check_str(b: &[u8]) -> Result<(), StrError> {
            if b.len() > u16::MAX as usize {
                return Err(StrError::TooLong { len: b.len() });
            }
            if b.is_ascii() {
                return if b.contains(&0) {
                    Err(StrError::ContainsNull)
                } else {
                    Ok(())
                };
            }
            core::str::from_utf8(b).map_err(|_| StrError::InvalidUtf8)?;
            if b.contains(&0) {
                return Err(StrError::ContainsNull);
            }
            Ok(())
        }

        pub(super) fn check_topic_name(b: &[u8]) -> Result<(), TopicError> {
            if b.is_empty() {
                return Err(TopicError::Empty);
            }
            check_str(b)?;
            if b.iter().any(|&c| c == b'+' || c == b'#') {
                return Err(TopicError::WildcardInName);
            }
            Ok(())
        }

        pub(super) fn check_topic_filter(b: &[u8]) -> Result<(), TopicError> {
            if b.is_empty() {
                return Err(TopicError::Empty);
            }
            check_str(b)?;
            let filter = match b.strip_prefix(SHARE_PREFIX) {
                Some(rest) => {
                    let slash = rest.iter().position(|&c| c == b'/');
                    let name = &rest[..slash.unwrap_or(rest.len())];
                    if name.is_empty() || name.iter().any(|&c| c == b'+' || c == b'#') {
                        return Err(TopicError::InvalidShareName);
                    }
                    match slash {
                        Some(i) if i + 1 < rest.len() => &rest[i + 1..],
                        _ => return Err(TopicError::MissingSharedFilter),
                    }
                }
                None => b,
            };
            check_filter_levels(filter)
        }
    }

    /// Every string of up to five bytes over the bytes that matter to some
    /// rule (including a two-byte UTF-8 sequence, its halves and U+0000),
    /// alone, behind a `$share/` prefix and in longer topics, so that each
    /// scan block size and overlap is exercised.
    #[test]
    fn fast_paths_agree_with_the_rules_one_at_a_time() {
        let alphabet: [&[u8]; 8] = [b"a", b"/", b"+", b"#", b"\0", "é".as_bytes(), b"\xC3", b"$"];
        let mut all: Vec<Vec<u8>> = alloc::vec![Vec::new()];
        let mut shorter = all.clone();
        for _ in 0..5 {
            let longer: Vec<Vec<u8>> = shorter
                .iter()
                .flat_map(|p| {
                    alphabet.iter().map(move |c| {
                        let mut q = p.clone();
                        q.extend_from_slice(c);
                        q
                    })
                })
                .collect();
            all.extend_from_slice(&longer);
            shorter = longer;
        }
        let affixes: [&[u8]; 5] = [
            b"",
            b"$share/g/",
            b"$share/",
            b"sensors/building-7/",
            b"x/y",
        ];
        for p in &all {
            for before in affixes {
                for after in [&b""[..], b"/level/and/more/room-12", b"/#"] {
                    let mut b = before.to_vec();
                    b.extend_from_slice(p);
                    b.extend_from_slice(after);
                    assert_eq!(check_str(&b), reference::check_str(&b), "{b:?}");
                    assert_eq!(
                        check_topic_name(&b),
                        reference::check_topic_name(&b),
                        "{b:?}"
                    );
                    assert_eq!(
                        check_topic_filter(&b),
                        reference::check_topic_filter(&b),
                        "{b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn long_strings_are_judged_by_length_first() {
        for len in [65_535, 65_536] {
            for fill in [b'a', b'+', 0] {
                let b = alloc::vec![fill; len];
                assert_eq!(check_str(&b), reference::check_str(&b));
                assert_eq!(check_topic_name(&b), reference::check_topic_name(&b));
                assert_eq!(check_topic_filter(&b), reference::check_topic_filter(&b));
            }
        }
    }

    fn filter(s: &str) -> Result<TopicFilter<&[u8]>, TopicError> {
        TopicFilter::new(s.as_bytes())
    }
    fn name(s: &str) -> TopicName<&[u8]> {
        TopicName::new(s.as_bytes()).unwrap()
    }

    // Examples of section 4.7.1.2 (multi-level wildcard) of 3.1.1 and 5.0.
    #[test]
    fn spec_4_7_1_2_multi_level_wildcard() {
        let f = filter("sport/tennis/player1/#").unwrap();
        for t in [
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
        ] {
            assert!(f.matches(&name(t)), "{t}");
        }
        assert!(filter("sport/#").unwrap().matches(&name("sport")));
        assert!(filter("#").is_ok());
        assert!(filter("sport/tennis/#").is_ok());
        assert_eq!(
            filter("sport/tennis#").unwrap_err(),
            TopicError::MisplacedMultiLevelWildcard
        );
        assert_eq!(
            filter("sport/tennis/#/ranking").unwrap_err(),
            TopicError::MisplacedMultiLevelWildcard
        );
    }

    // Examples of section 4.7.1.3 (single-level wildcard).
    #[test]
    fn spec_4_7_1_3_single_level_wildcard() {
        let f = filter("sport/tennis/+").unwrap();
        assert!(f.matches(&name("sport/tennis/player1")));
        assert!(f.matches(&name("sport/tennis/player2")));
        assert!(!f.matches(&name("sport/tennis/player1/ranking")));
        assert!(!filter("sport/+").unwrap().matches(&name("sport")));
        assert!(filter("sport/+").unwrap().matches(&name("sport/")));
        for ok in ["+", "+/tennis/#", "sport/+/player1", "/+", "+/+"] {
            assert!(filter(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            filter("sport+").unwrap_err(),
            TopicError::MisplacedSingleLevelWildcard
        );
        assert!(filter("/finance").unwrap().matches(&name("/finance")));
        assert!(filter("+/+").unwrap().matches(&name("/finance")));
        assert!(filter("/+").unwrap().matches(&name("/finance")));
        assert!(!filter("+").unwrap().matches(&name("/finance")));
    }

    // Section 4.7.2: topics beginning with '$'.
    #[test]
    fn mqtt_4_7_2_1_wildcards_do_not_match_dollar_topics() {
        assert!(!filter("#").unwrap().matches(&name("$SYS/broker/uptime")));
        assert!(!filter("+/monitor/Clients")
            .unwrap()
            .matches(&name("$SYS/monitor/Clients")));
        assert!(filter("$SYS/#")
            .unwrap()
            .matches(&name("$SYS/monitor/Clients")));
        assert!(filter("$SYS/monitor/+")
            .unwrap()
            .matches(&name("$SYS/monitor/Clients")));
    }

    #[test]
    fn mqtt_4_7_3_1_empty_topics_are_refused_but_empty_levels_are_fine() {
        assert_eq!(filter("").unwrap_err(), TopicError::Empty);
        assert_eq!(TopicName::new(&b""[..]).unwrap_err(), TopicError::Empty);
        assert!(TopicName::new(&b"/"[..]).is_ok());
        assert!(TopicName::new(&b"a//b"[..]).is_ok());
        assert!(filter("a//b").unwrap().matches(&name("a//b")));
    }

    #[test]
    fn mqtt_4_7_3_2_topic_names_have_no_wildcards() {
        assert_eq!(
            TopicName::new(&b"a/+"[..]).unwrap_err(),
            TopicError::WildcardInName
        );
        assert_eq!(
            TopicName::new(&b"#"[..]).unwrap_err(),
            TopicError::WildcardInName
        );
    }

    #[test]
    fn topics_are_case_sensitive_and_spaces_count() {
        assert!(!filter("ACCOUNTS").unwrap().matches(&name("Accounts")));
        assert!(filter("Accounts payable")
            .unwrap()
            .matches(&name("Accounts payable")));
    }

    #[test]
    fn spec_4_8_2_shared_subscriptions() {
        let f = filter("$share/consumer1/sport/tennis/+").unwrap();
        assert_eq!(
            f.shared(),
            Some(SharedFilter {
                share_name: "consumer1",
                filter: "sport/tennis/+"
            })
        );
        assert!(f.has_wildcards());
        assert!(f.matches(&name("sport/tennis/x")));
        assert!(filter("$share/consumer1//finance").is_ok());
        assert_eq!(
            filter("$share//a").unwrap_err(),
            TopicError::InvalidShareName
        );
        assert_eq!(
            filter("$share/a+/a").unwrap_err(),
            TopicError::InvalidShareName
        );
        assert_eq!(
            filter("$share/group").unwrap_err(),
            TopicError::MissingSharedFilter
        );
        assert_eq!(
            filter("$share/group/").unwrap_err(),
            TopicError::MissingSharedFilter
        );
        assert_eq!(
            filter("$share/g/a/#/b").unwrap_err(),
            TopicError::MisplacedMultiLevelWildcard
        );
        assert!(!filter("$shared/g/a").unwrap().is_shared());
    }
}
