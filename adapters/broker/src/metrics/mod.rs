//! Metrics and health on an optional HTTP listener (`[http] bind`):
//! `GET /metrics` in the Prometheus text format, `GET /healthz` and
//! `GET /readyz`.
//!
//! The core stays clock-free and only counts: after its turns, at most once
//! a second (and once a second when idle), the core task copies the core's
//! counters and sizes into a [`Snapshot`] here; the driver measures time
//! (each turn's duration, each store commit's) into histograms. A scrape
//! reads the last snapshot and never touches the core task, so a slow
//! scraper cannot slow the broker. `/healthz` is the core task's heartbeat:
//! a snapshot older than [`STALE_AFTER`] means the core is not turning.

mod collect;
mod http;

pub use http::HttpError;
pub(crate) use http::HttpServer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mqtt_router::broker::{BridgeStats, Broker, Sizes, Stats};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// How often the core task refreshes the snapshot.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);
/// A snapshot older than this makes `/healthz` answer 503.
const STALE_AFTER: Duration = Duration::from_secs(5);

/// The core's figures at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    stats: Stats,
    sizes: Sizes,
    /// Sessions with a connection.
    connected: usize,
    /// Messages queued over every session, and the deepest queue.
    queued_sum: u64,
    queued_max: u64,
    /// Each bridge by name.
    bridges: Vec<(String, BridgeStats)>,
}

/// What the core task, the store thread and the HTTP listener share.
#[derive(Debug)]
pub(crate) struct Monitor {
    /// Whether anything reads the snapshot (an HTTP listener is on):
    /// without one the core task does not refresh it.
    watched: bool,
    snapshot: Mutex<(Snapshot, Instant)>,
    ready: AtomicBool,
    turn_seconds: Histogram,
    commit_seconds: Histogram,
    commit_records: Histogram,
}

impl Monitor {
    /// A monitor; `watched`: an HTTP listener will read it.
    pub(crate) fn new(watched: bool) -> Monitor {
        Monitor {
            watched,
            snapshot: Mutex::new((Snapshot::default(), Instant::now())),
            ready: AtomicBool::new(false),
            // 10 µs to ~10 s, ×4 a bucket.
            turn_seconds: Histogram::new(exponential_buckets(1e-5, 4.0, 11)),
            commit_seconds: Histogram::new(exponential_buckets(1e-4, 4.0, 10)),
            commit_records: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
        }
    }

    /// Whether the core task should refresh the snapshot.
    pub(crate) fn is_watched(&self) -> bool {
        self.watched
    }

    /// Copies the core's figures; called by the core task.
    pub(crate) fn refresh(&self, broker: &Broker) {
        let mut snapshot = Snapshot {
            stats: broker.stats().clone(),
            sizes: broker.sizes(),
            bridges: broker
                .bridges_stats()
                .map(|(name, s)| (name.to_string(), s))
                .collect(),
            ..Snapshot::default()
        };
        for s in broker.sessions() {
            snapshot.connected += usize::from(s.connected);
            snapshot.queued_sum += s.queued as u64;
            snapshot.queued_max = snapshot.queued_max.max(s.queued as u64);
        }
        *self.lock() = (snapshot, Instant::now());
    }

    /// Records how long one turn of the core task took.
    pub(crate) fn observe_turn(&self, took: Duration) {
        self.turn_seconds.observe(took.as_secs_f64());
    }

    /// Records one store commit: its duration and how many records it held.
    pub(crate) fn observe_commit(&self, took: Duration, records: usize) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.commit_records.observe(records as f64);
    }

    /// Says whether the broker takes clients: after its listeners are bound
    /// and its store is open, until it begins to stop.
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// How long ago the core task last refreshed the snapshot.
    fn heartbeat_age(&self) -> Duration {
        self.lock().1.elapsed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Snapshot, Instant)> {
        // A panic while holding it left plain data: still readable.
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_turns_503_when_the_core_stops_refreshing() {
        let m = Monitor::new(true);
        assert_eq!(http::health(&m).0, 200);
        m.lock().1 = Instant::now() - STALE_AFTER - Duration::from_secs(1);
        let (status, _, body) = http::health(&m);
        assert_eq!(status, 503);
        assert!(body.contains("has not turned for 6 s"), "{body}");
    }

    #[test]
    fn labelled_families_render_every_method_reason_and_qos() {
        let m = std::sync::Arc::new(Monitor::new(true));
        let mut stats = Stats::default();
        stats.auth_failures.password = 1;
        let scram = mqtt_codec::Str::try_from("SCRAM-SHA-256").unwrap();
        stats.auth_failures.methods.push((scram, 2));
        stats.dropped_by_reason[mqtt_router::broker::DropReason::TooLarge.index()] = 3;
        stats.connections_refused_by_reason[0x8A - 0x80] = 4;
        stats.messages_sent_by_qos = [5, 6, 7];
        m.lock().0.stats = stats;
        let mut body = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut body, &collect::registry(&m))
            .unwrap();
        for line in [
            "mqtt_broker_auth_failures_total{method=\"password\"} 1",
            "mqtt_broker_auth_failures_total{method=\"SCRAM-SHA-256\"} 2",
            "mqtt_broker_messages_dropped_total{reason=\"too_large\"} 3",
            "mqtt_broker_connections_refused_total{reason=\"banned\",code=\"0x8a\"} 4",
            "mqtt_broker_publish_messages_sent_total{qos=\"2\"} 7",
            "mqtt_broker_shared_groups 0",
        ] {
            assert!(body.lines().any(|l| l == line), "no {line} in:\n{body}");
        }
        // 0x8B is not a CONNACK code (DISCONNECT only): no series for it.
        assert!(!body.contains("code=\"0x8b\""), "{body}");
    }

    #[test]
    fn ready_only_between_start_and_stop() {
        let m = Monitor::new(true);
        assert_eq!(http::ready(&m).0, 503);
        m.set_ready(true);
        assert_eq!(http::ready(&m).0, 200);
        m.set_ready(false);
        assert_eq!(http::ready(&m).0, 503);
    }
}
