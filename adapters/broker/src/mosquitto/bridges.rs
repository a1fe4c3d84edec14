//! The keys of a Mosquitto `connection` section, into a `[[bridge]]` and
//! its `[[bridge.topic]]` rules.

use super::directives::Directive;
use super::draft::{DraftBridge, Table};
use super::{MosquittoError, Remark};

/// Keys read and left out, with what this broker does instead.
const IGNORED: &[(&str, &str)] = &[
    (
        "local_clientid",
        "ignored: a bridge is part of the broker here, not a local client",
    ),
    (
        "local_cleansession",
        "ignored: a bridge is part of the broker here, not a local client",
    ),
    (
        "bridge_insecure",
        "ignored: the remote broker's certificate is always verified",
    ),
    ("bridge_require_ocsp", "not supported"),
    (
        "bridge_tls_version",
        "ignored: TLS 1.2 or 1.3, whichever both ends speak",
    ),
    ("bridge_alpn", "not supported"),
    (
        "notifications",
        "ignored: the bridge's state is in $SYS/broker/bridges/<name>/",
    ),
    (
        "notifications_local_only",
        "ignored: the bridge's state is in $SYS/broker/bridges/<name>/",
    ),
    (
        "notification_topic",
        "ignored: the bridge's state is in $SYS/broker/bridges/<name>/",
    ),
    (
        "start_type",
        "ignored: a bridge connects at start and reconnects after a cut",
    ),
    (
        "idle_timeout",
        "ignored: a bridge connects at start and reconnects after a cut",
    ),
    (
        "threshold",
        "ignored: a bridge connects at start and reconnects after a cut",
    ),
    ("round_robin", "ignored: one remote address is used"),
    ("bridge_attempt_unsubscribe", "ignored"),
    (
        "bridge_outgoing_retain",
        "not supported: the retain flag crosses as it is",
    ),
    ("bridge_max_packet_size", "not supported"),
    ("bridge_bind_address", "not supported"),
    ("bridge_reload_type", "not supported"),
];

/// Keys whose absence would change who can connect where.
const REFUSED: &[(&str, &str)] = &[
    ("bridge_identity", "TLS pre-shared keys are not supported"),
    ("bridge_psk", "TLS pre-shared keys are not supported"),
];

const KEYS: &[&str] = &[
    "address",
    "addresses",
    "topic",
    "remote_username",
    "remote_password",
    "remote_clientid",
    "clientid",
    "local_username",
    "local_password",
    "bridge_protocol_version",
    "try_private",
    "cleansession",
    "keepalive_interval",
    "bridge_cafile",
    "bridge_capath",
    "bridge_certfile",
    "bridge_keyfile",
    "restart_timeout",
];

/// Whether `key` belongs to a `connection` section.
pub(super) fn is_bridge_key(key: &str) -> bool {
    KEYS.contains(&key)
        || IGNORED.iter().any(|(k, _)| *k == key)
        || REFUSED.iter().any(|(k, _)| *k == key)
}

/// One key of the latest bridge.
pub(super) fn apply(
    b: &mut DraftBridge,
    d: &Directive,
    remarks: &mut Vec<Remark>,
) -> Result<(), MosquittoError> {
    let key = d.key.as_str();
    if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == key) {
        return Err(d.invalid(*why));
    }
    if let Some((_, why)) = IGNORED.iter().find(|(k, _)| *k == key) {
        remarks.push(Remark::new(d, why));
        return Ok(());
    }
    let t = &mut b.table;
    match key {
        "address" | "addresses" => address(b, d, remarks)?,
        "topic" => b.topics.push(topic(d)?),
        "remote_username" => t.set_str("username", d.text()?, d),
        "remote_password" => t.set_str("password", d.text()?, d),
        "remote_clientid" | "clientid" => t.set_str("client_id", d.value()?, d),
        "local_username" => t.set_str("local_username", d.text()?, d),
        "local_password" => t.set_str("local_password", d.text()?, d),
        "bridge_protocol_version" => protocol(t, d, remarks)?,
        "try_private" => {
            if !d.boolean()? {
                remarks.push(Remark::new(
                    d,
                    "ignored: a 3.1.1 bridge always marks itself",
                ));
            }
        }
        "cleansession" => t.set("clean_start", d.boolean()?.to_string(), d),
        "keepalive_interval" => t.set("keep_alive", d.number_in(0, 65535)?.to_string(), d),
        "bridge_cafile" => {
            b.tls = true;
            t.set_str("cafile", d.text()?, d);
        }
        "bridge_capath" => {
            b.tls = true;
            remarks.push(Remark::new(
                d,
                "a CA directory is not supported: the remote certificate is verified against Mozilla's roots; name your CA in bridge_cafile",
            ));
        }
        "bridge_certfile" => t.set_str("certfile", d.text()?, d),
        "bridge_keyfile" => t.set_str("keyfile", d.text()?, d),
        "restart_timeout" => restart_timeout(t, d)?,
        other => return Err(d.invalid(format!("{other} is not a bridge setting"))),
    }
    Ok(())
}

/// `address host[:port] [host[:port] ...]`: the first one is used.
fn address(
    b: &mut DraftBridge,
    d: &Directive,
    remarks: &mut Vec<Remark>,
) -> Result<(), MosquittoError> {
    let mut all = d.rest.split([' ', '\t', ',']).filter(|s| !s.is_empty());
    let first = all
        .next()
        .ok_or_else(|| d.invalid("an address is missing"))?;
    if all.next().is_some() {
        remarks.push(Remark::new(d, "only the first address is used"));
    }
    b.address = Some((first.to_string(), super::draft::Source::of(d)));
    Ok(())
}

fn protocol(t: &mut Table, d: &Directive, remarks: &mut Vec<Remark>) -> Result<(), MosquittoError> {
    let version = match d.value()? {
        "mqttv311" => "3.1.1",
        "mqttv50" => "5.0",
        "mqttv31" => {
            remarks.push(Remark::new(
                d,
                "3.1 bridges are not offered: 3.1.1 is spoken",
            ));
            "3.1.1"
        }
        v => return Err(d.invalid(format!("{v:?} is not mqttv31, mqttv311 or mqttv50"))),
    };
    t.set_str("protocol", version, d);
    Ok(())
}

/// `restart_timeout base [cap]`: one value is a constant delay.
fn restart_timeout(t: &mut Table, d: &Directive) -> Result<(), MosquittoError> {
    let secs = |s: &str| -> Result<u64, MosquittoError> {
        s.parse::<u64>()
            .ok()
            .filter(|&n| n > 0 && n <= 86_400)
            .ok_or_else(|| d.invalid(format!("{s:?} is not a number of seconds (1..=86400)")))
    };
    let (base, cap) = match d.args.as_slice() {
        [a] => (secs(a)?, secs(a)?),
        [a, b] => (secs(a)?, secs(b)?),
        _ => return Err(d.invalid("expected `restart_timeout base [cap]`")),
    };
    t.set("reconnect_delay", format!("{base}.0"), d);
    t.set("reconnect_delay_max", format!("{}.0", cap.max(base)), d);
    Ok(())
}

/// `topic pattern [[[out|in|both] qos] local-prefix remote-prefix]`; `""`
/// stands for an empty pattern or prefix.
fn topic(d: &Directive) -> Result<Table, MosquittoError> {
    let word = |s: &String| {
        if s == "\"\"" {
            String::new()
        } else {
            s.clone()
        }
    };
    let mut t = Table::default();
    let args = &d.args;
    if args.is_empty() || args.len() == 4 || args.len() > 5 {
        return Err(
            d.invalid("expected `topic pattern [[[out|in|both] qos] local-prefix remote-prefix]`")
        );
    }
    t.set_str("topic", &word(&args[0]), d);
    if let Some(dir) = args.get(1) {
        if !matches!(dir.as_str(), "in" | "out" | "both") {
            return Err(d.invalid(format!("direction {dir:?} is not in, out or both")));
        }
        t.set_str("direction", dir, d);
    }
    if let Some(qos) = args.get(2) {
        let q: u8 = qos
            .parse()
            .ok()
            .filter(|&q| q <= 2)
            .ok_or_else(|| d.invalid(format!("QoS {qos:?} is not 0, 1 or 2")))?;
        t.set("qos", q.to_string(), d);
    }
    if let (Some(local), Some(remote)) = (args.get(3), args.get(4)) {
        t.set_str("local_prefix", &word(local), d);
        t.set_str("remote_prefix", &word(remote), d);
    }
    Ok(t)
}
