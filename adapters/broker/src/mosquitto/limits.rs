//! Mosquitto's global keys that become `[limits]`, and the global keys that
//! are read and left out with a remark.

use super::directives::Directive;
use super::draft::Table;
use super::{MosquittoError, Remark};

/// What this broker does instead, for keys it reads and leaves out.
const IGNORED: &[(&str, &str)] = &[
    (
        "pid_file",
        "ignored: a service manager keeps the process id",
    ),
    (
        "user",
        "ignored: run the broker as the user it should be (see the systemd unit)",
    ),
    (
        "autosave_interval",
        "ignored: the store commits every change before acknowledging it",
    ),
    (
        "autosave_on_changes",
        "ignored: the store commits every change before acknowledging it",
    ),
    (
        "persistence_file",
        "ignored: the store is broker.redb in the data directory",
    ),
    (
        "set_tcp_nodelay",
        "ignored: Nagle's algorithm is always off",
    ),
    (
        "queue_qos0_messages",
        "ignored: QoS 0 messages are queued for connected clients only",
    ),
    (
        "upgrade_outgoing_qos",
        "not supported: messages go out at the lower of the two QoS",
    ),
    (
        "allow_duplicate_messages",
        "ignored: overlapping subscriptions deliver once, as Mosquitto 2 does",
    ),
    (
        "check_retain_source",
        "not supported: retained messages stay when the publisher loses its rights",
    ),
    (
        "auto_id_prefix",
        "not supported: assigned client ids have their own form",
    ),
    (
        "memory_limit",
        "not supported: each client's queues and the retained store have their own limits",
    ),
    (
        "retry_interval",
        "ignored: unacknowledged messages are resent on reconnection, as MQTT 3.1.1 and 5.0 say",
    ),
    ("store_clean_interval", "ignored"),
    (
        "max_inflight_bytes",
        "not supported: in-flight messages are limited in count",
    ),
    (
        "allow_zero_length_clientid",
        "ignored: a client with an empty client id is given one",
    ),
];

/// A global key: a limit, an ignored key, or an unknown one.
pub(super) fn apply(
    limits: &mut Table,
    d: &Directive,
    remarks: &mut Vec<Remark>,
) -> Result<(), MosquittoError> {
    let key = d.key.as_str();
    if let Some((_, why)) = IGNORED.iter().find(|(k, _)| *k == key) {
        remarks.push(Remark::new(d, why));
        return Ok(());
    }
    match key {
        "max_inflight_messages" => {
            // Mosquitto: also the Receive Maximum a 5.0 client is told; 0 is
            // no limit, which is the protocol's highest here.
            let n = match d.number_in(0, 65535)? {
                0 => 65535,
                n => n,
            };
            limits.set("max_inflight", n.to_string(), d);
            limits.set("receive_maximum", n.to_string(), d);
        }
        "max_queued_messages" => {
            let n = d.number_in(0, i64::from(u32::MAX))?;
            if n == 0 {
                remarks.push(Remark::new(
                    d,
                    "no limit is not offered: the queue is limited to 1000000 messages",
                ));
            }
            let n = if n == 0 { 1_000_000 } else { n };
            limits.set("max_queued_messages", n.to_string(), d);
        }
        "max_queued_bytes" => {
            // Mosquitto: 0 is no limit; here every queue has one in bytes.
            let n = d.number_in(0, i64::MAX)?;
            if n == 0 {
                remarks.push(Remark::new(
                    d,
                    "no limit is not offered: the broker's default byte limit stays",
                ));
            } else {
                limits.set("max_queued_bytes", n.to_string(), d);
            }
        }
        "message_size_limit" => message_size_limit(limits, d, remarks)?,
        "max_packet_size" => {
            let n = d.number_in(0, 268_435_455)?;
            if n > 0 {
                limits.set("max_packet_size", n.max(64).to_string(), d);
            }
        }
        "max_keepalive" => limits.set("max_keep_alive", d.number_in(0, 65535)?.to_string(), d),
        "max_qos" => limits.set("maximum_qos", d.number_in(0, 2)?.to_string(), d),
        "retain_available" => limits.set("retain_available", d.boolean()?.to_string(), d),
        _ => remarks.push(Remark::new(d, "not a setting this broker knows: ignored")),
    }
    Ok(())
}

/// `message_size_limit`: the largest payload Mosquitto takes. The limit here
/// is on the whole packet, so topic and properties get 64 KiB beside it.
fn message_size_limit(
    limits: &mut Table,
    d: &Directive,
    remarks: &mut Vec<Remark>,
) -> Result<(), MosquittoError> {
    let n = d.number_in(0, 268_435_455)?;
    if n == 0 {
        return Ok(());
    }
    let packet = (n + 64 * 1024).min(268_435_455);
    remarks.push(Remark::new(
        d,
        &format!("max_packet_size = {packet}: the limit here counts the whole packet, so 64 KiB are added for the topic and properties"),
    ));
    if limits.get("max_packet_size").is_none() {
        limits.set("max_packet_size", packet.to_string(), d);
    }
    Ok(())
}
