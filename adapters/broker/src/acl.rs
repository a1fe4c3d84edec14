//! Access control lists in Mosquitto's `acl_file` format, so a Mosquitto ACL
//! file can be used as it is.
//!
//! ```text
//! # Before any `user` line: rules for clients without a user name.
//! topic read $SYS/#
//!
//! user alice
//! topic readwrite alice/#      # only for the user alice
//! topic deny alice/secret
//!
//! # For every client, whatever `user` line came before.
//! pattern write sensors/%u/data    # %u: the client's user name
//! pattern readwrite clients/%c/#   # %c: the client identifier
//! ```
//!
//! `topic [read|write|readwrite|deny] <filter>`: the access defaults to
//! `readwrite`; the filter may hold `+` and `#`. `deny` takes away what a
//! broader rule grants. With an ACL file, whatever no rule grants is denied.
//!
//! # Checks, and where they differ from Mosquitto
//!
//! The file gives each client its [`Rights`] when it authenticates (plain
//! data the broker core checks, see `mqtt_router::broker::Rights`):
//!
//! - Publishing to a topic needs a `write` or `readwrite` rule matching it,
//!   and no `deny` rule matching it (as in Mosquitto).
//! - Receiving a message needs a `read` or `readwrite` rule matching its
//!   topic and no `deny` rule matching it, checked for each message
//!   delivered (as in Mosquitto). So with `topic read a/#` and
//!   `topic deny a/secret`, a subscription to `a/#` is granted and carries
//!   `a/ok` but never `a/secret`.
//! - Subscribing to a filter needs a read rule that could match one of its
//!   topics, and no deny rule matching all of them: a subscription that
//!   could never carry anything is refused (SUBACK 0x87, 3.1.1: 0x80) where
//!   Mosquitto grants it and delivers nothing. A shared subscription is
//!   judged by its filter part.
//! - `%c` and `%u` are replaced by the client identifier and user name in
//!   one pass from left to right: a substituted value is a literal, never
//!   searched again. A pattern with `%u` does not apply to a client without
//!   a user name (as in Mosquitto). A client identifier (or user name)
//!   holding `+`, `#`, `/` or `%` gets no rights at all when some pattern
//!   would substitute it: substituted, those characters would widen the
//!   pattern or cross into another client's levels. Mosquitto denies such
//!   clients on `+` and `#` too, but substitutes a `/` or `%`.
//! - Leading blanks before a comment are allowed, and blanks are spaces or tabs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mqtt_codec::{TopicFilter, TopicName};
pub use mqtt_router::broker::Access;
use mqtt_router::broker::{Rights, Rule as RightsRule};
pub use mqtt_router::topic_sets::{covers, intersects, matches};

/// One `topic` or `pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    access: Access,
    /// A valid topic filter; for a pattern, before `%c` / `%u` substitution.
    filter: String,
}

/// Why an ACL file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The file could not be read.
    #[error("cannot read ACL file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A line is not a valid rule.
    #[error("ACL file {path}, line {line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: AclLineError,
    },
}

/// What is wrong with one line of an ACL file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclLineError {
    /// The line starts with neither `topic`, `pattern`, `user` nor `#`.
    #[error("unknown keyword {0:?} (expected topic, pattern or user)")]
    UnknownKeyword(String),
    /// `topic` or `pattern` without a topic.
    #[error("missing topic")]
    MissingTopic,
    /// The word before the topic is not an access type.
    #[error("unknown access {0:?} (expected read, write, readwrite or deny)")]
    UnknownAccess(String),
    /// The topic is not a valid topic filter.
    #[error("invalid topic {topic:?}: {error}")]
    InvalidTopic {
        /// The topic as written.
        topic: String,
        /// Why it is not a valid filter.
        error: mqtt_codec::TopicError,
    },
    /// `user` without a name.
    #[error("missing user name")]
    MissingUser,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct AclFile {
    /// `topic` rules before the first `user` line.
    anonymous: Vec<Rule>,
    /// `topic` rules per user name.
    users: HashMap<String, Vec<Rule>>,
    /// `pattern` rules, for everyone.
    patterns: Vec<Rule>,
    /// Whether some pattern uses `%c` / `%u`.
    patterns_use_client_id: bool,
    patterns_use_username: bool,
}

/// Whose rules to apply.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The client identifier.
    pub client_id: &'a str,
    /// The user name, if the client gave one.
    pub username: Option<&'a str>,
}

fn blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl AclFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<AclFile, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Read {
            path: path.to_owned(),
            source,
        })?;
        AclFile::parse(&text, path)
    }

    /// Reads an ACL file's text; errors name `path` and the line.
    pub fn parse(text: &str, path: &Path) -> Result<AclFile, AclError> {
        let mut acl = AclFile::default();
        let mut user: Option<String> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_matches(blank);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason| AclError::Line {
                path: path.to_owned(),
                line: n + 1,
                reason,
            };
            let (keyword, rest) = line.split_once(blank).unwrap_or((line, ""));
            let rest = rest.trim_start_matches(blank);
            match keyword {
                "topic" | "pattern" => {
                    let rule = parse_rule(rest).map_err(err)?;
                    if keyword == "pattern" {
                        acl.patterns_use_client_id |= rule.filter.contains("%c");
                        acl.patterns_use_username |= rule.filter.contains("%u");
                        acl.patterns.push(rule);
                    } else {
                        match &user {
                            Some(u) => acl.users.entry(u.clone()).or_default().push(rule),
                            None => acl.anonymous.push(rule),
                        }
                    }
                }
                "user" => {
                    if rest.is_empty() {
                        return Err(err(AclLineError::MissingUser));
                    }
                    user = Some(rest.to_string());
                }
                other => return Err(err(AclLineError::UnknownKeyword(other.to_string()))),
            }
        }
        Ok(acl)
    }

    /// The rights of `client`: the `topic` rules of its user (or the
    /// anonymous ones), then every `pattern` substituted for it, in file
    /// order. No rights when a pattern would substitute a value holding
    /// `+`, `#`, `/` or `%` (see the [module documentation](self)).
    pub fn rights(&self, client: Client<'_>) -> Rights {
        let unsafe_value = |v: &str| v.contains(['+', '#', '/', '%']);
        if (self.patterns_use_client_id && unsafe_value(client.client_id))
            || (self.patterns_use_username && client.username.is_some_and(unsafe_value))
        {
            return Rights::deny_all();
        }
        let topic_rules = match client.username {
            None => &self.anonymous[..],
            Some(u) => self.users.get(u).map_or(&[][..], Vec::as_slice),
        };
        let mut rules = Vec::with_capacity(topic_rules.len() + self.patterns.len());
        for rule in topic_rules {
            // Checked when the file was read.
            let Ok(f) = TopicFilter::try_from(rule.filter.as_str()) else {
                return Rights::deny_all();
            };
            rules.push(RightsRule::new(f, rule.access));
        }
        let mut filter = String::new();
        for rule in &self.patterns {
            let uses_username = rule.filter.contains("%u");
            let username = match client.username {
                Some(u) => u,
                None if uses_username => continue,
                None => "",
            };
            substitute(&mut filter, &rule.filter, client.client_id, username);
            // A value holding a control character makes no valid filter:
            // nothing is granted rather than a rule (maybe a deny) skipped.
            let Ok(f) = TopicFilter::try_from(filter.as_str()) else {
                return Rights::deny_all();
            };
            rules.push(RightsRule::new(f, rule.access));
        }
        Rights::from_rules(rules)
    }

    /// Whether `client` may publish to `topic` (a valid topic name).
    pub fn may_publish(&self, client: Client<'_>, topic: &str) -> bool {
        TopicName::<&[u8]>::try_from(topic).is_ok_and(|t| self.rights(client).may_publish(&t))
    }

    /// Whether `client` may receive a message published to `topic`.
    pub fn may_read(&self, client: Client<'_>, topic: &str) -> bool {
        TopicName::<&[u8]>::try_from(topic).is_ok_and(|t| self.rights(client).may_read(&t))
    }

    /// Whether `client` may subscribe to `filter` (a valid topic filter):
    /// some read rule could match one of its topics, and no deny rule
    /// matches them all.
    pub fn may_subscribe(&self, client: Client<'_>, filter: &str) -> bool {
        TopicFilter::<&[u8]>::try_from(filter).is_ok_and(|f| self.rights(client).may_subscribe(&f))
    }
}

/// Writes `pattern` into `out` with `%c` and `%u` replaced, in one pass:
/// a substituted value is a literal, never searched again, so a client
/// identifier holding `%u` does not become the user name (nor the other
/// way round) and widen the pattern.
fn substitute(out: &mut String, pattern: &str, client_id: &str, username: &str) {
    out.clear();
    let mut rest = pattern;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let (value, skip) = if after.starts_with("%c") {
            (client_id, 2)
        } else if after.starts_with("%u") {
            (username, 2)
        } else {
            ("%", 1)
        };
        out.push_str(value);
        rest = &after[skip..];
    }
    out.push_str(rest);
}

fn parse_rule(rest: &str) -> Result<Rule, AclLineError> {
    if rest.is_empty() {
        return Err(AclLineError::MissingTopic);
    }
    // As Mosquitto: one word is the topic; with more, the first is the access
    // and the rest of the line (which may hold spaces) the topic.
    let (access, topic) = match rest.split_once(blank) {
        None => (Access::ReadWrite, rest),
        Some((word, topic)) => {
            let access = match word {
                "read" => Access::Read,
                "write" => Access::Write,
                "readwrite" => Access::ReadWrite,
                "deny" => Access::Deny,
                other => return Err(AclLineError::UnknownAccess(other.to_string())),
            };
            (access, topic.trim_matches(blank))
        }
    };
    if let Err(error) = TopicFilter::<&[u8]>::try_from(topic) {
        return Err(AclLineError::InvalidTopic {
            topic: topic.to_string(),
            error,
        });
    }
    Ok(Rule {
        access,
        filter: topic.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AclFile, AclError> {
        AclFile::parse(text, Path::new("acl"))
    }

    fn anon(client_id: &str) -> Client<'_> {
        Client {
            client_id,
            username: None,
        }
    }

    fn user<'a>(client_id: &'a str, username: &'a str) -> Client<'a> {
        Client {
            client_id,
            username: Some(username),
        }
    }

    /// Mosquitto's own example, `/usr/share/doc/mosquitto/examples/aclfile.example`.
    const MOSQUITTO_EXAMPLE: &str = "\
# This affects access control for clients with no username.
topic read $SYS/#

# This only affects clients with username \"roger\".
user roger
topic foo/bar

# This affects all clients.
pattern write $SYS/broker/connection/%c/state
";

    #[test]
    fn mosquitto_example_file() {
        let acl = parse(MOSQUITTO_EXAMPLE).unwrap();
        assert!(acl.may_subscribe(anon("c"), "$SYS/#"));
        assert!(acl.may_subscribe(anon("c"), "$SYS/broker/uptime"));
        assert!(!acl.may_publish(anon("c"), "$SYS/broker/uptime"));
        assert!(!acl.may_subscribe(anon("c"), "foo/bar"));
        assert!(!acl.may_subscribe(anon("c"), "#"));
        // roger: foo/bar read and write (no access given), not $SYS.
        assert!(acl.may_publish(user("c", "roger"), "foo/bar"));
        assert!(acl.may_subscribe(user("c", "roger"), "foo/bar"));
        // A wildcard that can carry foo/bar is granted; reads are per topic.
        assert!(acl.may_subscribe(user("c", "roger"), "foo/+"));
        assert!(!acl.may_read(user("c", "roger"), "foo/baz"));
        assert!(!acl.may_subscribe(user("c", "roger"), "$SYS/#"));
        // Another user has only the pattern.
        assert!(!acl.may_publish(user("c", "ann"), "foo/bar"));
        assert!(acl.may_publish(user("b1", "ann"), "$SYS/broker/connection/b1/state"));
        assert!(!acl.may_publish(user("b1", "ann"), "$SYS/broker/connection/b2/state"));
        assert!(acl.may_publish(anon("b2"), "$SYS/broker/connection/b2/state"));
    }

    #[test]
    fn access_types_and_deny() {
        let acl = parse(
            "topic read r/#\ntopic write w/#\ntopic readwrite rw/#\ntopic rw2/#\n\
             topic deny rw/secret\n",
        )
        .unwrap();
        let c = anon("c");
        assert!(acl.may_subscribe(c, "r/x") && !acl.may_publish(c, "r/x"));
        assert!(!acl.may_subscribe(c, "w/x") && acl.may_publish(c, "w/x"));
        assert!(acl.may_subscribe(c, "rw/x") && acl.may_publish(c, "rw/x"));
        assert!(acl.may_subscribe(c, "rw2/x") && acl.may_publish(c, "rw2/x"));
        // Deny wins over the broader grant for publish, read and a
        // subscription it covers; a wider subscription is granted and the
        // denied topic is left out per message (Mosquitto's semantics).
        assert!(!acl.may_publish(c, "rw/secret"));
        assert!(!acl.may_read(c, "rw/secret"));
        assert!(!acl.may_subscribe(c, "rw/secret"));
        assert!(acl.may_subscribe(c, "rw/#"));
        assert!(acl.may_subscribe(c, "rw/+"));
        assert!(acl.may_read(c, "rw/public"));
        assert!(acl.may_subscribe(c, "rw/public"));
        assert!(acl.may_subscribe(c, "rw/+/deeper"));
        assert!(acl.may_publish(c, "rw/secret/deeper"));
        // Nothing granted: denied.
        assert!(!acl.may_publish(c, "other"));
        assert!(!acl.may_subscribe(c, "other"));
    }

    #[test]
    fn user_sections_and_anonymous_rules_are_separate() {
        let acl = parse(
            "topic anon/#\nuser alice\ntopic alice/#\nuser bob\ntopic bob/#\n\
             topic read shared/#\nuser alice\ntopic read more/#\n",
        )
        .unwrap();
        assert!(acl.may_publish(anon("c"), "anon/1"));
        assert!(!acl.may_publish(anon("c"), "alice/1"));
        assert!(acl.may_publish(user("c", "alice"), "alice/1"));
        assert!(!acl.may_publish(user("c", "alice"), "anon/1"));
        assert!(!acl.may_publish(user("c", "alice"), "bob/1"));
        assert!(acl.may_subscribe(user("c", "alice"), "more/#"));
        assert!(acl.may_subscribe(user("c", "bob"), "shared/#"));
        assert!(!acl.may_subscribe(user("c", "alice"), "shared/#"));
        // A user with no section gets nothing; nor do anonymous rules apply to them.
        assert!(!acl.may_publish(user("c", "carol"), "anon/1"));
    }

    #[test]
    fn patterns_substitute_client_id_and_username() {
        let acl = parse(
            "user alice\ntopic read x\n\
             pattern readwrite clients/%c/#\npattern read users/%u/+\n\
             pattern write mixed/%u-%c\n",
        )
        .unwrap();
        let a = user("dev1", "alice");
        assert!(acl.may_publish(a, "clients/dev1/status"));
        assert!(acl.may_subscribe(a, "clients/dev1/#"));
        assert!(acl.may_subscribe(a, "clients/+/status"));
        assert!(acl.may_read(a, "clients/dev1/status"));
        assert!(!acl.may_read(a, "clients/dev2/status"));
        assert!(!acl.may_publish(a, "clients/dev2/status"));
        assert!(acl.may_subscribe(a, "users/alice/+"));
        assert!(acl.may_subscribe(a, "users/alice/inbox"));
        assert!(!acl.may_read(a, "users/alice/a/b"));
        assert!(!acl.may_subscribe(a, "users/bob/inbox"));
        assert!(acl.may_publish(a, "mixed/alice-dev1"));
        // %u patterns do not apply without a user name; %c ones do.
        let n = anon("dev9");
        assert!(!acl.may_subscribe(n, "users//inbox"));
        assert!(acl.may_publish(n, "clients/dev9/x"));
        assert!(!acl.may_publish(n, "mixed/-dev9"));
    }

    #[test]
    fn identifiers_that_would_widen_a_pattern_get_nothing() {
        let acl = parse("topic read public/#\npattern readwrite clients/%c/#\n").unwrap();
        assert!(acl.may_subscribe(anon("ok"), "public/#"));
        for bad in ["+", "#", "a/b", "x+", "%", "a%c"] {
            assert!(
                !acl.may_publish(anon(bad), &format!("clients/{bad}/x")),
                "{bad}"
            );
            assert!(!acl.may_subscribe(anon(bad), "public/#"), "{bad}");
        }
        // Without %u in any pattern, a user name with '/' is harmless.
        assert!(acl.may_subscribe(user("ok", "a/b"), "clients/ok/#"));
        let acl = parse("pattern read users/%u/#\n").unwrap();
        assert!(!acl.may_subscribe(user("ok", "a/b"), "users/a/b/#"));
        assert!(acl.may_subscribe(user("a/b", "u"), "users/u/#"));
    }

    /// Found by the `files` fuzz target (input in
    /// `fuzz/regressions/files/`): `%c` was replaced first and the result
    /// searched again for `%u`, so a client calling itself `%u` got the
    /// topics of its user name's pattern, and one with a user name holding
    /// `%c` the other way round. Substitution is one pass, and a value
    /// holding `%` gets nothing at all (issue #18).
    #[test]
    fn a_substituted_value_is_a_literal_and_never_substituted_again() {
        let mut out = String::new();
        substitute(&mut out, "c/%c/u/%u/%x%", "%u", "%c");
        assert_eq!(out, "c/%u/u/%c/%x%");
        let acl = parse("pattern readwrite clients/%c/#\npattern read users/%u/#\n").unwrap();
        let c = user("%u", "alice");
        assert!(!acl.may_publish(c, "clients/alice/x"));
        assert!(!acl.may_read(c, "users/alice/x"));
        let u = user("dev1", "%c");
        assert!(!acl.may_subscribe(u, "users/dev1/#"));
        assert!(!acl.may_publish(u, "clients/dev1/x"));
    }

    /// Issue #18's two injections and variants: with `pattern readwrite
    /// clients/%c/#`, neither a client `%u` with user name `#` nor an
    /// anonymous `vic%utim` reaches `clients/#` or `clients/victim/#`.
    #[test]
    fn substitution_injections_gain_nothing() {
        let acl = parse("pattern readwrite clients/%c/#\npattern readwrite users/%u/#\n").unwrap();
        let victim = "clients/victim/x";
        let cases = [
            user("%u", "#"),
            anon("vic%utim"),
            user("vic%utim", ""),
            user("%c", "victim"),
            user("victim/../x", "u"),
            user("+", "u"),
            user("c", "+"),
            user("c", "vic%ctim"),
        ];
        for c in cases {
            let rights = acl.rights(c);
            for topic in [victim, "clients/other", "users/victim/x", "users/#/x"] {
                assert!(!acl.may_publish(c, topic), "{c:?} publishes {topic}");
                assert!(!acl.may_read(c, topic), "{c:?} reads {topic}");
            }
            assert!(!acl.may_subscribe(c, "clients/#"), "{c:?}");
            assert!(!acl.may_subscribe(c, "clients/victim/#"), "{c:?}");
            assert!(rights
                .rules()
                .iter()
                .all(|r| !r.filter().as_str().starts_with("clients/#")));
        }
        // The honest client keeps its own.
        assert!(acl.may_publish(user("victim", "u"), victim));
    }

    #[test]
    fn layout_follows_mosquitto() {
        let acl = parse(
            "  # indented comment\n\n\
             topic  read   with space/#  \n\
             user  two words \n\
             topic\twrite\ttabs/x\r\n",
        )
        .unwrap();
        assert!(acl.may_subscribe(anon("c"), "with space/x"));
        assert!(acl.may_publish(user("c", "two words"), "tabs/x"));
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        let cases = [
            (
                "# ok\nfoo bar\n",
                2,
                AclLineError::UnknownKeyword("foo".into()),
            ),
            ("topic\n", 1, AclLineError::MissingTopic),
            ("pattern   \n", 1, AclLineError::MissingTopic),
            (
                "topic foo bar\n",
                1,
                AclLineError::UnknownAccess("foo".into()),
            ),
            ("topic read a\nuser\n", 2, AclLineError::MissingUser),
        ];
        for (text, line, reason) in cases {
            match parse(text) {
                Err(AclError::Line {
                    line: l, reason: r, ..
                }) => assert_eq!((l, &r), (line, &reason), "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        for bad in ["topic read a/#/b", "topic read a+", "pattern write #x"] {
            match parse(bad) {
                Err(
                    e @ AclError::Line {
                        line: 1,
                        reason: AclLineError::InvalidTopic { .. },
                        ..
                    },
                ) => assert!(e
                    .to_string()
                    .starts_with("ACL file acl, line 1: invalid topic")),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let e = AclFile::load(Path::new("/nonexistent/acl")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/acl"), "{e}");
    }
}
