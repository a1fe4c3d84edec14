//! The `config` target: the broker's TOML configuration file.
//!
//! The input is either text as it is, or a file assembled from the
//! configuration's own tables, keys and telling values (so that the checks
//! behind the TOML parser are reached, not only the parser). Checks:
//!
//! - `Config::from_toml` never panics;
//! - a file that is not valid TOML for the configuration is refused with an
//!   error naming the line (and column);
//! - a file that is refused for its values says what is wrong;
//! - an accepted file gives a broker configuration within the checked
//!   ranges (QoS at most 2, windows of at least 1, packets of at least 64
//!   bytes), at least one listener, every TLS listener has its files, takes
//!   a user name from client certificates only where it requires them and
//!   a CRL only with a CA file, and a JWT section has exactly one key (a
//!   secret of at least 32 bytes).

use arbitrary::{Arbitrary, Unstructured};
use mqtt_broker::{Config, ConfigError};

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Text(&'a str),
    Built(Vec<Entry>),
}

/// One line of a built file: a table header (when `table` changes or
/// `again` repeats an array table) and one `key = value`.
#[derive(Arbitrary, Debug)]
struct Entry {
    table: u8,
    again: bool,
    key: u8,
    value: Value,
}

#[derive(Arbitrary, Debug)]
enum Value {
    Int(u8),
    Str(u8),
    Bool(bool),
    Float(u8),
    Array(Vec<u8>),
    Raw(String),
}

const TABLES: &[(&str, &[&str])] = &[
    (
        "",
        &["listener", "limits", "sys", "auth", "bridge", "unknown"],
    ),
    (
        "[limits]",
        &[
            "max_connections",
            "max_packet_size",
            "max_inflight",
            "receive_maximum",
            "max_queued_messages",
            "max_queued_qos0_messages",
            "queue_full",
            "topic_alias_maximum",
            "max_keep_alive",
            "connect_timeout",
            "max_session_expiry",
            "max_retained",
            "max_retained_payload",
            "maximum_qos",
            "retain_available",
        ],
    ),
    ("[sys]", &["interval"]),
    ("[auth]", &["allow_anonymous", "password_file", "acl_file"]),
    (
        "[auth.jwt]",
        &[
            "secret",
            "public_key_file",
            "username_claim",
            "topics_claim",
            "audience",
            "issuer",
            "leeway_secs",
            "require_exp",
        ],
    ),
    (
        "[[listener]]",
        &[
            "bind",
            "protocol",
            "certfile",
            "keyfile",
            "cafile",
            "require_certificate",
            "path",
            "tls_version",
            "crlfile",
            "use_identity_as_username",
            "use_subject_as_username",
        ],
    ),
    (
        "[[bridge]]",
        &[
            "name",
            "address",
            "protocol",
            "client_id",
            "username",
            "password",
            "local_username",
            "local_password",
            "keep_alive",
            "clean_start",
            "session_expiry",
            "cafile",
            "certfile",
            "keyfile",
            "queue_limit",
            "reconnect_delay",
            "reconnect_delay_max",
        ],
    ),
    (
        "[[bridge.topic]]",
        &["topic", "direction", "qos", "local_prefix", "remote_prefix"],
    ),
];

const INTS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "64",
    "65535",
    "65536",
    "-1",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "10000001",
];
const STRINGS: &[&str] = &[
    "127.0.0.1:0",
    "[::1]:1883",
    "127.0.0.1",
    "mqtt",
    "mqtts",
    "ws",
    "wss",
    "quic",
    "/mqtt",
    "mqtt-path",
    "s.crt",
    "a/#",
    "#",
    "+",
    "a/+/b",
    "a#",
    "",
    "in",
    "out",
    "both",
    "3.1.1",
    "5.0",
    "mqtt://h:1",
    "mqtts://h",
    "ws://h:80/mqtt",
    "h:1",
    "oldest",
    "new",
    "b1",
    "a/b",
    "nul\\u0000",
    "x/",
    "tlsv1.2",
    "tlsv1.3",
    "tlsv1.1",
    "sub",
    "0123456789abcdef0123456789abcdef",
];
const FLOATS: &[&str] = &[
    "0.001", "0.01", "1.5", "86400.0", "86400.5", "inf", "nan", "-1.0",
];

impl Value {
    fn toml(&self) -> String {
        match self {
            Value::Int(i) => INTS[usize::from(*i) % INTS.len()].to_string(),
            Value::Str(i) => format!("\"{}\"", STRINGS[usize::from(*i) % STRINGS.len()]),
            Value::Bool(b) => b.to_string(),
            Value::Float(i) => FLOATS[usize::from(*i) % FLOATS.len()].to_string(),
            Value::Array(items) => {
                let items: Vec<String> = items
                    .iter()
                    .take(4)
                    .map(|&i| format!("\"{}\"", STRINGS[usize::from(i) % STRINGS.len()]))
                    .collect();
                format!("[{}]", items.join(", "))
            }
            Value::Raw(s) => s.clone(),
        }
    }
}

fn build(entries: &[Entry]) -> String {
    let mut text = String::new();
    let mut table = 0;
    for e in entries.iter().take(64) {
        let t = usize::from(e.table) % TABLES.len();
        if t != table || (e.again && TABLES[t].0.starts_with("[[")) {
            text.push_str(TABLES[t].0);
            text.push('\n');
            table = t;
        }
        let keys = TABLES[t].1;
        let key = keys[usize::from(e.key) % keys.len()];
        text.push_str(&format!("{key} = {}\n", e.value.toml()));
    }
    text
}

/// Runs one input; see the [module documentation](self).
pub fn config(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    crate::debug(&input);
    let text = match input {
        Input::Text(t) => t.to_string(),
        Input::Built(entries) => build(&entries),
    };
    check(&text);
}

fn check(text: &str) {
    match Config::from_toml(text) {
        Ok(c) => {
            let b = c.broker_config(7);
            let l = &b.server.limits;
            assert!(
                l.max_inflight >= 1 && l.receive_maximum >= 1,
                "a zero window"
            );
            assert!(l.max_packet_size >= 64, "packets below 64 bytes");
            assert!(b.server.maximum_qos as u8 <= 2);
            let listeners = c.listeners();
            assert!(!listeners.is_empty(), "no listener");
            for l in &listeners {
                assert!(
                    !l.protocol.is_tls() || (l.certfile.is_some() && l.keyfile.is_some()),
                    "a TLS listener without its files"
                );
                assert!(l.path.starts_with('/'));
                assert!(
                    l.require_certificate
                        || !(l.use_identity_as_username || l.use_subject_as_username),
                    "a user name from a certificate that is not required"
                );
                assert!(
                    l.crlfile.is_none() || l.cafile.is_some(),
                    "a CRL without a CA"
                );
            }
            if let Some(jwt) = &c.auth.jwt {
                assert!(
                    jwt.secret.is_some() != jwt.public_key_file.is_some(),
                    "a JWT section without exactly one key"
                );
                assert!(jwt.secret.as_ref().is_none_or(|s| s.len() >= 32));
            }
            for bridge in &c.bridges {
                assert!(!bridge.topics.is_empty(), "a bridge without rules");
                assert!(!bridge.name.is_empty());
            }
        }
        Err(ConfigError::Parse { source, .. }) => {
            let message = source.to_string();
            let lines = text.lines().count().max(1);
            let line = line_of(&message).unwrap_or_else(|| {
                panic!("a parse error names no line: {message}\n--- for ---\n{text}")
            });
            assert!(
                (1..=lines + 1).contains(&line),
                "line {line} of a {lines}-line file: {message}"
            );
        }
        Err(ConfigError::Invalid(what)) => assert!(!what.is_empty(), "an empty reason"),
        Err(e @ ConfigError::Read { .. }) => panic!("nothing is read from text: {e}"),
    }
}

/// The line number in a TOML error's "at line N, column M".
fn line_of(message: &str) -> Option<usize> {
    let at = message.find("line ")?;
    let digits: String = message[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
