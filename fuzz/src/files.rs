//! The `files` target: the Mosquitto password file and ACL file parsers of
//! the broker, and the ACL's decisions.
//!
//! - Password files and ACL files as arbitrary text: the parsers never
//!   panic, refuse a bad line with an error naming it (a line of the
//!   text), and a password file that is accepted reads back the same from
//!   the text it writes.
//! - An ACL file as arbitrary text, asked arbitrary questions (any client
//!   identifier, user name, topic or filter): no panic.
//! - `acl::matches`, `acl::covers` and `acl::intersects` agree with each
//!   other on any filters and topic: a filter covering another matches
//!   every topic the other does, and two filters matching one topic
//!   intersect.
//! - An ACL built from rules whose levels hold `%c` and `%u`, asked about
//!   client identifiers and user names holding `+`, `#`, `/` and `%`: the
//!   decision is never wider than a model of the documented semantics, in
//!   which a substituted value is a literal (substituted once, both
//!   placeholders at the same time) and a value with `+`, `#`, `/` or `%` for a
//!   placeholder that some pattern uses denies the client everything. A
//!   value may not widen a pattern.

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use mqtt_broker::acl::{self, AclError, AclFile, Client};
use mqtt_broker::passwd::{PasswordFile, PasswordFileError};
use mqtt_codec::{TopicFilter, TopicName};

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Passwd(&'a str),
    Acl(&'a str),
    AclAsk {
        text: &'a str,
        client_id: &'a str,
        username: Option<&'a str>,
        topic: &'a str,
    },
    Match {
        a: Vec<u8>,
        b: Vec<u8>,
        topic: Vec<u8>,
    },
    Model(Model),
}

/// Runs one input; see the [module documentation](self).
pub fn files(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    crate::debug(&input);
    match input {
        Input::Passwd(text) => passwd(text),
        Input::Acl(text) => {
            if let Some(acl) = acl_file(text) {
                for (c, u) in [("c", None), ("c", Some("u")), ("a/b", Some("+"))] {
                    ask(&acl, c, u, "a/b");
                }
            }
        }
        Input::AclAsk {
            text,
            client_id,
            username,
            topic,
        } => {
            if let Some(acl) = acl_file(text) {
                ask(&acl, client_id, username, topic);
            }
        }
        Input::Match { a, b, topic } => matching(
            &levels(&a, FILTER_LEVELS),
            &levels(&b, FILTER_LEVELS),
            &levels(&topic, TOPIC_LEVELS),
        ),
        Input::Model(m) => m.check(),
    }
}

fn passwd(text: &str) {
    match PasswordFile::parse(text, Path::new("passwd")) {
        Ok(file) => {
            let written = file.to_string();
            let again = PasswordFile::parse(&written, Path::new("passwd"))
                .unwrap_or_else(|e| panic!("a written file does not read back: {e}"));
            let users: Vec<&str> = file.users().collect();
            assert_eq!(users, again.users().collect::<Vec<_>>(), "users read back");
            for u in users {
                let (h1, h2) = (file.get(u).unwrap(), again.get(u).unwrap());
                assert_eq!(h1, h2, "the hash of {u:?} reads back");
                assert_eq!(h1.to_string(), h2.to_string());
            }
        }
        Err(PasswordFileError::Line { line, .. }) => line_in(text, line),
        Err(e) => panic!("parsing text fails only on a line: {e}"),
    }
}

fn acl_file(text: &str) -> Option<AclFile> {
    match AclFile::parse(text, Path::new("acl")) {
        Ok(acl) => Some(acl),
        Err(AclError::Line { line, .. }) => {
            line_in(text, line);
            None
        }
        Err(e) => panic!("parsing text fails only on a line: {e}"),
    }
}

/// An error's line is one of the text's lines.
fn line_in(text: &str, line: usize) {
    let lines = text.lines().count();
    assert!(
        (1..=lines).contains(&line),
        "error on line {line} of a {lines}-line text"
    );
}

/// The ACL's decisions, where the question is well formed.
fn ask(acl: &AclFile, client_id: &str, username: Option<&str>, topic: &str) {
    let client = Client {
        client_id,
        username,
    };
    if TopicName::<&[u8]>::try_from(topic).is_ok() {
        let _ = acl.may_publish(client, topic);
    }
    if TopicFilter::<&[u8]>::try_from(topic).is_ok() && !topic.starts_with("$share/") {
        let _ = acl.may_subscribe(client, topic);
    }
}

const FILTER_LEVELS: &[&str] = &["a", "b", "+", "#", "", "$SYS", "%c", "%u", "x%c", "%"];
const TOPIC_LEVELS: &[&str] = &["a", "b", "", "$SYS", "%c", "%u", "c", "u", "%", "a%u"];
/// Pieces of client identifiers and user names.
const VALUE_PIECES: &[&str] = &["a", "b", "c", "u", "+", "#", "/", "%", "%c", "%u", ""];

fn levels(picks: &[u8], from: &[&str]) -> String {
    let picks = if picks.is_empty() { &[0][..] } else { picks };
    picks
        .iter()
        .take(5)
        .map(|&p| from[usize::from(p) % from.len()])
        .collect::<Vec<_>>()
        .join("/")
}

fn valid_filter(f: &str) -> bool {
    TopicFilter::<&[u8]>::try_from(f).is_ok() && !f.starts_with("$share/")
}

fn valid_topic(t: &str) -> bool {
    TopicName::<&[u8]>::try_from(t).is_ok()
}

fn matching(a: &str, b: &str, topic: &str) {
    if !valid_filter(a) || !valid_filter(b) || !valid_topic(topic) {
        return;
    }
    let (ma, mb) = (acl::matches(a, topic), acl::matches(b, topic));
    if acl::covers(a, b) && mb {
        assert!(
            ma,
            "{a:?} covers {b:?}, which matches {topic:?}, but {a:?} does not"
        );
    }
    if ma && mb {
        assert!(
            acl::intersects(a, b),
            "{a:?} and {b:?} both match {topic:?}"
        );
        assert!(acl::intersects(b, a), "intersects is symmetric");
    }
    assert!(acl::covers(a, a), "{a:?} covers itself");
}

/// An ACL as rules, to render as a file and to judge with the model.
#[derive(Arbitrary, Debug)]
struct Model {
    lines: Vec<Line>,
    client_id: Vec<u8>,
    username: Option<Vec<u8>>,
    topic: Vec<u8>,
    subscribe: bool,
}

#[derive(Arbitrary, Debug)]
enum Line {
    User(bool),
    Topic { access: u8, filter: Vec<u8> },
    Pattern { access: u8, filter: Vec<u8> },
}

const ACCESS: &[&str] = &["read", "write", "readwrite", "deny"];

#[derive(Debug)]
struct Rule {
    access: &'static str,
    filter: String,
}

impl Model {
    fn check(&self) {
        let mut text = String::new();
        // Rules by owner: None for anonymous, Some(user); patterns apart.
        let mut topics: Vec<(Option<&str>, Rule)> = Vec::new();
        let mut patterns: Vec<Rule> = Vec::new();
        let mut user = None;
        for line in self.lines.iter().take(8) {
            match line {
                Line::User(b) => {
                    let u = if *b { "u1" } else { "u0" };
                    text.push_str(&format!("user {u}\n"));
                    user = Some(u);
                }
                Line::Topic { access, filter } | Line::Pattern { access, filter } => {
                    let access = ACCESS[usize::from(*access) % ACCESS.len()];
                    let filter = levels(filter, FILTER_LEVELS);
                    if !valid_filter(&filter) {
                        continue;
                    }
                    let pattern = matches!(line, Line::Pattern { .. });
                    let keyword = if pattern { "pattern" } else { "topic" };
                    text.push_str(&format!("{keyword} {access} {filter}\n"));
                    let rule = Rule { access, filter };
                    if pattern {
                        patterns.push(rule);
                    } else {
                        topics.push((user, rule));
                    }
                }
            }
        }
        let acl = AclFile::parse(&text, Path::new("acl"))
            .unwrap_or_else(|e| panic!("valid rules refused: {e}\n{text}"));
        let client_id = levels_joined(&self.client_id);
        let username = self.username.as_ref().map(|u| levels_joined(u));
        let topic = levels(
            &self.topic,
            if self.subscribe {
                FILTER_LEVELS
            } else {
                TOPIC_LEVELS
            },
        );
        let client = Client {
            client_id: &client_id,
            username: username.as_deref(),
        };
        let (decided, valid) = if self.subscribe {
            (
                valid_filter(&topic).then(|| acl.may_subscribe(client, &topic)),
                valid_filter(&topic),
            )
        } else {
            (
                valid_topic(&topic).then(|| acl.may_publish(client, &topic)),
                valid_topic(&topic),
            )
        };
        let Some(decided) = decided.filter(|_| valid) else {
            return;
        };
        let model = model_decision(
            &topics,
            &patterns,
            &client_id,
            username.as_deref(),
            &topic,
            self.subscribe,
        );
        assert!(
            !decided || model,
            "the ACL grants what its rules do not: client id {client_id:?}, user name \
             {username:?}, {} {topic:?}\n--- ACL ---\n{text}",
            if self.subscribe {
                "subscribe"
            } else {
                "publish"
            }
        );
    }
}

fn levels_joined(picks: &[u8]) -> String {
    picks
        .iter()
        .take(4)
        .map(|&p| VALUE_PIECES[usize::from(p) % VALUE_PIECES.len()])
        .collect()
}

/// The documented semantics, with substitution as a literal.
fn model_decision(
    topics: &[(Option<&str>, Rule)],
    patterns: &[Rule],
    client_id: &str,
    username: Option<&str>,
    topic: &str,
    subscribe: bool,
) -> bool {
    let unsafe_value = |v: &str| v.contains(['+', '#', '/', '%']);
    let uses = |p: &str| patterns.iter().any(|r| r.filter.contains(p));
    if (uses("%c") && unsafe_value(client_id)) || (uses("%u") && username.is_some_and(unsafe_value))
    {
        return false;
    }
    let judge = |filter: &str, access: &str| -> (bool, bool) {
        let deny = access == "deny";
        if subscribe {
            // Read is checked per message: a subscription is refused when a
            // deny rule matches all it could carry, and granted when a read
            // rule could match one of its topics.
            if deny {
                (acl::covers(filter, topic), false)
            } else {
                (false, access != "write" && acl::intersects(filter, topic))
            }
        } else {
            let hit = acl::matches(filter, topic);
            (
                hit && deny,
                hit && (access == "write" || access == "readwrite"),
            )
        }
    };
    let mut granted = false;
    for (owner, rule) in topics {
        if *owner == username {
            let (denies, grants) = judge(&rule.filter, rule.access);
            if denies {
                return false;
            }
            granted |= grants;
        }
    }
    for rule in patterns {
        if rule.filter.contains("%u") && username.is_none() {
            continue;
        }
        let filter = substitute(&rule.filter, client_id, username.unwrap_or(""));
        let (denies, grants) = judge(&filter, rule.access);
        if denies {
            return false;
        }
        granted |= grants;
    }
    granted
}

/// `%c` and `%u` replaced in one pass: what is substituted is not looked at again.
fn substitute(pattern: &str, client_id: &str, username: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(r) = after.strip_prefix("%c") {
            out.push_str(client_id);
            rest = r;
        } else if let Some(r) = after.strip_prefix("%u") {
            out.push_str(username);
            rest = r;
        } else {
            out.push('%');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}
