//! `$SYS/broker/...`: the broker's figures, and each bridge's under
//! `$SYS/broker/bridges/<name>/`, published retained at the configured
//! interval.

use alloc::string::String;
use core::time::Duration;

use mqtt_codec::QoS;
use mqtt_session::Message;

use super::Broker;
use crate::Instant;

impl Broker {
    // ----- $SYS ----------------------------------------------------------------------

    pub(super) fn publish_sys(&mut self, now: Instant) {
        let uptime = self
            .started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
            .as_secs();
        let connected = self
            .sessions
            .iter()
            .flatten()
            .filter(|s| s.conn.is_some())
            .count();
        let total = self.client_ids.len();
        let values: [(&str, String); 12] = [
            ("uptime", alloc::format!("{uptime} seconds")),
            ("version", self.config.version.clone()),
            ("clients/connected", alloc::format!("{connected}")),
            (
                "clients/disconnected",
                alloc::format!("{}", total - connected),
            ),
            ("clients/total", alloc::format!("{total}")),
            (
                "messages/received",
                alloc::format!("{}", self.stats.messages_received),
            ),
            (
                "messages/sent",
                alloc::format!("{}", self.stats.messages_sent),
            ),
            (
                "messages/dropped",
                alloc::format!("{}", self.stats.messages_dropped),
            ),
            (
                "bytes/received",
                alloc::format!("{}", self.stats.bytes_received),
            ),
            ("bytes/sent", alloc::format!("{}", self.stats.bytes_sent)),
            (
                "subscriptions/count",
                alloc::format!("{}", self.index.len()),
            ),
            (
                "retained messages/count",
                alloc::format!("{}", self.retained.len()),
            ),
        ];
        for (name, value) in values {
            self.publish_sys_value(now, name, value);
        }
        self.publish_limit_counters(now);
        self.publish_counts_by_kind(now);
        self.publish_mosquitto_figures(now);
        if let Some(d) = self.store.as_deref() {
            let failing = if d.is_failing() { "1" } else { "0" };
            self.publish_sys_value(now, "store/failing", failing.into());
        }
        for (name, value) in self.bridge_sys_values() {
            self.publish_sys_value(now, &name, value);
        }
    }

    /// `$SYS/broker/limits/...`: how often each limit was hit, and what
    /// the byte limits bound now.
    fn publish_limit_counters(&mut self, now: Instant) {
        self.retained_bytes.sweep();
        let s = &self.stats;
        let values: [(&str, u64); 10] = [
            ("limits/subscriptions", s.subscriptions_over_limit),
            ("limits/shared groups", s.shared_groups_over_limit),
            ("limits/topic levels", s.topic_levels_over_limit),
            ("limits/properties", s.properties_over_limit),
            ("limits/retained", s.retained_refused),
            ("limits/queued bytes", s.queued_bytes_over_limit),
            ("limits/offline bytes", s.offline_bytes_over_limit),
            ("limits/persistent sessions", s.persistent_sessions_refused),
            (
                "retained messages/bytes",
                self.retained_bytes.total() as u64,
            ),
            ("clients/offline bytes", self.offline_bytes as u64),
        ];
        for (name, value) in values {
            self.publish_sys_value(now, name, alloc::format!("{value}"));
        }
    }

    /// The rest of Mosquitto's `$SYS/broker/...` names, with the same
    /// meaning where this broker has the figure, so dashboards made for
    /// Mosquitto keep working: the peak and expired clients, PUBLISH counts
    /// under `publish/messages/`, what is held (`messages/stored`,
    /// `store/messages/...`), and the `load/...` moving averages.
    fn publish_mosquitto_figures(&mut self, now: Instant) {
        let elapsed = self
            .load_at
            .or(self.started)
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.load_at = Some(now);
        self.load.update(&self.stats, elapsed);
        let (mut queued, mut queued_bytes) = (0u64, 0u64);
        for e in self.sessions.iter().flatten() {
            if let Some(s) = self.held_session(e) {
                queued += s.queued() as u64;
                queued_bytes += s.queued_bytes() as u64;
            }
        }
        let stored = queued + self.retained.len() as u64;
        let stored_bytes = queued_bytes + self.retained_bytes.total() as u64;
        let s = &self.stats;
        let values: [(&str, u64); 8] = [
            ("clients/maximum", self.conns.peak as u64),
            ("clients/expired", s.sessions_expired),
            ("publish/messages/received", s.messages_received),
            ("publish/messages/sent", s.messages_sent),
            ("publish/messages/dropped", s.messages_dropped),
            ("messages/stored", stored),
            ("store/messages/count", stored),
            ("store/messages/bytes", stored_bytes),
        ];
        let mut all: alloc::vec::Vec<(String, String)> = values
            .iter()
            .map(|(n, v)| (String::from(*n), alloc::format!("{v}")))
            .collect();
        all.push((
            "limits/stalled subscribers".into(),
            alloc::format!("{}", s.subscribers_stalled),
        ));
        all.extend(self.load.values());
        for (name, value) in all {
            self.publish_sys_value(now, &name, value);
        }
    }

    /// The counters kept by QoS and by reason: Mosquitto's
    /// `publish/bytes/{received,sent}` (payload bytes), and under this
    /// broker's own names `messages/{received,sent}/qos<n>`,
    /// `publish/bytes/{received,sent}/qos<n>`, `messages/dropped/<reason>`,
    /// `publish/refused/<reason>`, `clients/refused` and
    /// `clients/refused/<reason>`, `clients/auth failures/<method>` and
    /// `subscriptions/shared groups`.
    fn publish_counts_by_kind(&mut self, now: Instant) {
        let s = &self.stats;
        let mut all: alloc::vec::Vec<(String, u64)> = alloc::vec![
            (
                "publish/bytes/received".into(),
                s.payload_bytes_received_by_qos.iter().sum(),
            ),
            (
                "publish/bytes/sent".into(),
                s.payload_bytes_sent_by_qos.iter().sum(),
            ),
            ("clients/refused".into(), s.connections_refused),
            (
                "clients/auth failures/password".into(),
                s.auth_failures.password,
            ),
            (
                "subscriptions/shared groups".into(),
                self.index.shared_group_count() as u64,
            ),
        ];
        for q in 0..3 {
            all.push((
                alloc::format!("messages/received/qos{q}"),
                s.messages_received_by_qos[q],
            ));
            all.push((
                alloc::format!("messages/sent/qos{q}"),
                s.messages_sent_by_qos[q],
            ));
            all.push((
                alloc::format!("publish/bytes/received/qos{q}"),
                s.payload_bytes_received_by_qos[q],
            ));
            all.push((
                alloc::format!("publish/bytes/sent/qos{q}"),
                s.payload_bytes_sent_by_qos[q],
            ));
        }
        for r in super::DropReason::ALL {
            let name = alloc::format!("messages/dropped/{}", r.name());
            all.push((name, s.dropped_for(r)));
        }
        for r in super::PublishRefusal::ALL {
            let name = alloc::format!("publish/refused/{}", r.name());
            all.push((name, s.publishes_refused[r.index()]));
        }
        for (code, n) in s.refusals() {
            let name = alloc::format!("clients/refused/{}", super::reason_name(code));
            all.push((name, n));
        }
        for (method, n) in &s.auth_failures.methods {
            all.push((alloc::format!("clients/auth failures/{method}"), *n));
        }
        for (name, value) in all {
            self.publish_sys_value(now, &name, alloc::format!("{value}"));
        }
    }

    /// Publishes `$SYS/broker/<name>` = `value`, retained, at QoS 0.
    fn publish_sys_value(&mut self, now: Instant, name: &str, value: String) {
        let topic = alloc::format!("$SYS/broker/{name}");
        let Ok(topic) = mqtt_codec::TopicName::try_from(topic.as_str()) else {
            return;
        };
        let msg = Message::new(
            topic,
            bytes::Bytes::from(value.into_bytes()),
            QoS::AtMostOnce,
            true,
        );
        self.publish(now, msg);
    }
}
