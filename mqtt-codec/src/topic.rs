//! Topic names and topic filters (section 4.7), and shared subscriptions (section 4.8.2).

use core::fmt;

use bytes::Bytes;

use crate::reason::ReasonCode;
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
    check_str(b)?;
    if b.iter().any(|&c| c == b'+' || c == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

const SHARE_PREFIX: &[u8] = b"$share/";

/// Checks a topic filter's bytes, including the `$share/{ShareName}/{filter}` form.
pub(crate) fn check_topic_filter(b: &[u8]) -> Result<(), TopicError> {
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
