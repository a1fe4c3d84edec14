//! The snapshot as Prometheus metrics: counters and gauges made at each
//! scrape from the last snapshot, beside the driver's histograms.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use mqtt_router::broker::{reason_name, DropReason, PublishRefusal};

use super::{Monitor, Snapshot};

/// The registry a scrape encodes: the snapshot's figures and the histograms.
pub(super) fn registry(monitor: &Arc<Monitor>) -> Registry {
    let mut r = Registry::with_prefix("mqtt_broker");
    r.register_with_unit(
        "core_turn",
        "Time the core task took for one turn (a batch of commands and its writes)",
        Unit::Seconds,
        monitor.turn_seconds.clone(),
    );
    r.register_with_unit(
        "store_commit",
        "Time one store commit (transaction and fsync) took",
        Unit::Seconds,
        monitor.commit_seconds.clone(),
    );
    r.register(
        "store_commit_records",
        "Records in one store commit (group commit)",
        monitor.commit_records.clone(),
    );
    r.register_collector(Box::new(Figures(monitor.clone())));
    r
}

/// The snapshot, encoded at each scrape.
#[derive(Debug)]
struct Figures(Arc<Monitor>);

impl Collector for Figures {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot: Snapshot = self.0.lock().0.clone();
        let s = &snapshot.stats;
        let counters: [(&str, &str, u64); 18] = [
            (
                "messages_received",
                "PUBLISH packets received from clients",
                s.messages_received,
            ),
            (
                "messages_sent",
                "Messages handed to subscribers' connections",
                s.messages_sent,
            ),
            (
                "retained_refused",
                "Retained messages kept out by the retained limits",
                s.retained_refused,
            ),
            (
                "bytes_received",
                "Bytes read from clients",
                s.bytes_received,
            ),
            ("bytes_sent", "Bytes written to clients", s.bytes_sent),
            (
                "connections",
                "Connections accepted since start",
                s.connections_total,
            ),
            ("subscribes", "SUBSCRIBE packets handled", s.subscribes),
            ("wills_published", "Wills published", s.wills_published),
            (
                "acks_held",
                "Acknowledgements held back by flow control",
                s.acks_held,
            ),
            (
                "sessions_expired",
                "Sessions ended by their expiry interval",
                s.sessions_expired,
            ),
            (
                "subscribers_stalled",
                "Subscribers that made no progress while holding publishers back",
                s.subscribers_stalled,
            ),
            (
                "limit_subscriptions",
                "Filters refused at max_subscriptions_per_client",
                s.subscriptions_over_limit,
            ),
            (
                "limit_shared_groups",
                "Shared subscriptions refused at max_shared_groups_per_client",
                s.shared_groups_over_limit,
            ),
            (
                "limit_topic_levels",
                "Topics, filters and wills refused past max_topic_levels",
                s.topic_levels_over_limit,
            ),
            (
                "limit_properties",
                "Publishes and wills refused past the property limits",
                s.properties_over_limit,
            ),
            (
                "limit_queued_bytes",
                "Messages not queued past max_queued_bytes",
                s.queued_bytes_over_limit,
            ),
            (
                "limit_offline_bytes",
                "Messages not queued past max_offline_bytes",
                s.offline_bytes_over_limit,
            ),
            (
                "limit_persistent_sessions",
                "CONNECTs refused at max_persistent_sessions",
                s.persistent_sessions_refused,
            ),
        ];
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value);
            metric.encode(e.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        let z = &snapshot.sizes;
        let gauges: [(&str, &str, u64); 12] = [
            ("connections_open", "Open connections", z.connections as u64),
            (
                "connections_peak",
                "The most connections open at once since start",
                z.peak_connections as u64,
            ),
            (
                "retained_bytes",
                "Bytes of the retained messages (topics, payloads, properties)",
                z.retained_bytes as u64,
            ),
            (
                "offline_bytes",
                "Bytes queued for clients that are away",
                z.offline_bytes as u64,
            ),
            (
                "persistent_sessions",
                "Persistent sessions, connected or not",
                z.persistent_sessions as u64,
            ),
            (
                "clients_connected",
                "Sessions with a connection",
                snapshot.connected as u64,
            ),
            (
                "sessions",
                "Sessions, connected or waiting for their client",
                z.sessions as u64,
            ),
            (
                "subscriptions",
                "Subscriptions in the index",
                z.subscriptions as u64,
            ),
            (
                "retained_messages",
                "Retained messages kept",
                z.retained as u64,
            ),
            (
                "shared_groups",
                "Shared-subscription groups with at least one member",
                z.shared_groups as u64,
            ),
            (
                "queued_messages",
                "Messages queued over every session",
                snapshot.queued_sum,
            ),
            (
                "queued_messages_max",
                "Messages queued in the deepest session queue",
                snapshot.queued_max,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            metric.encode(e.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        labelled(&snapshot, &mut e)?;
        bridges(&snapshot, &mut e)
    }
}

/// One counter family with a series per label set.
fn family<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Vec<(&'a str, String)>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The counters the core keeps by QoS and by reason, as labelled series.
fn labelled(snapshot: &Snapshot, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let s = &snapshot.stats;
    let by_qos: [(&str, &str, &[u64; 3]); 4] = [
        (
            "publish_messages_received",
            "PUBLISH packets received from clients and bridges, by QoS",
            &s.messages_received_by_qos,
        ),
        (
            "publish_messages_sent",
            "Messages handed to subscribers, by the QoS they went out at",
            &s.messages_sent_by_qos,
        ),
        (
            "publish_bytes_received",
            "Payload bytes of the PUBLISH packets received, by QoS",
            &s.payload_bytes_received_by_qos,
        ),
        (
            "publish_bytes_sent",
            "Payload bytes of the messages handed to subscribers, by QoS",
            &s.payload_bytes_sent_by_qos,
        ),
    ];
    for (name, help, values) in by_qos {
        let series = (0..3).map(|q| (vec![("qos", q.to_string())], values[q]));
        family(e, name, help, series)?;
    }
    family(
        e,
        "messages_dropped",
        "Messages not delivered to a subscriber, by reason",
        DropReason::ALL
            .iter()
            .map(|r| (vec![("reason", r.name().to_string())], s.dropped_for(*r))),
    )?;
    family(
        e,
        "publishes_refused",
        "Publishes not routed at all, by reason",
        PublishRefusal::ALL.iter().map(|r| {
            let labels = vec![("reason", r.name().to_string())];
            (labels, s.publishes_refused[r.index()])
        }),
    )?;
    family(
        e,
        "connections_refused",
        "CONNECTs refused, by CONNACK reason code",
        s.refusals().map(|(code, n)| {
            let labels = vec![
                ("reason", reason_name(code)),
                ("code", format!("0x{:02x}", code.0)),
            ];
            (labels, n)
        }),
    )?;
    let methods = s
        .auth_failures
        .methods
        .iter()
        .map(|(m, n)| (m.as_str().to_string(), *n));
    family(
        e,
        "auth_failures",
        "Authentications the authenticator refused, by method (password: none named)",
        std::iter::once(("password".to_string(), s.auth_failures.password))
            .chain(methods)
            .map(|(m, n)| (vec![("method", m)], n)),
    )
}

/// Each bridge's figures, labelled with its name.
fn bridges(snapshot: &Snapshot, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if snapshot.bridges.is_empty() {
        return Ok(());
    }
    type Get = fn(&mqtt_router::broker::BridgeStats) -> i64;
    let figures: [(&str, &str, Get); 5] = [
        (
            "bridge_connected",
            "1 while the bridge's remote connection is up",
            |s| i64::from(s.state == mqtt_router::broker::BridgeState::Connected),
        ),
        (
            "bridge_messages_sent",
            "Messages the remote broker took",
            |s| s.messages_sent as i64,
        ),
        (
            "bridge_messages_received",
            "Messages the bridge brought in",
            |s| s.messages_received as i64,
        ),
        (
            "bridge_messages_dropped",
            "Messages the bridge dropped",
            |s| s.messages_dropped as i64,
        ),
        (
            "bridge_queued",
            "Messages waiting for the remote broker",
            |s| s.queued as i64,
        ),
    ];
    for (name, help, get) in figures {
        let mut family = e.encode_descriptor(
            name,
            help,
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (bridge, stats) in &snapshot.bridges {
            let labels = [("bridge", bridge.as_str())];
            ConstGauge::new(get(stats)).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}
