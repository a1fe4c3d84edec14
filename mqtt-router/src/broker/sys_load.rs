//! `$SYS/broker/load/...`: Mosquitto's moving averages of how much happens
//! per minute, over 1, 5 and 15 minutes.
//!
//! At each `$SYS` publication the rate since the last one (per minute) is
//! folded into each average with the weight an exponential decay gives the
//! time that passed: `avg = avg·e^(−t/T) + rate·(1 − e^(−t/T))`, T being 1,
//! 5 or 15 minutes — the figure Mosquitto publishes under the same names,
//! so dashboards made for it keep working. Time comes in as an argument.

use core::time::Duration;

use super::Stats;

/// The averaging windows, in seconds, and their topic suffixes.
const WINDOWS: [(f64, &str); 3] = [(60.0, "1min"), (300.0, "5min"), (900.0, "15min")];

/// Reads one counter.
type Counter = fn(&Stats) -> u64;

/// What is averaged: the `$SYS/broker/load/<name>/...` name and the counter.
const FIGURES: [(&str, Counter); 6] = [
    ("messages/received", |s| s.messages_received),
    ("messages/sent", |s| s.messages_sent),
    ("publish/dropped", |s| s.messages_dropped),
    ("bytes/received", |s| s.bytes_received),
    ("bytes/sent", |s| s.bytes_sent),
    ("connections", |s| s.connections_total),
];

/// The averages and the counters they were last fed.
#[derive(Debug, Clone, Default)]
pub(super) struct Load {
    last: [u64; FIGURES.len()],
    averages: [[f64; WINDOWS.len()]; FIGURES.len()],
}

impl Load {
    /// Folds in what `stats` counted over the `elapsed` since the last call.
    pub(super) fn update(&mut self, stats: &Stats, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (i, (_, counter)) in FIGURES.iter().enumerate() {
            let now = counter(stats);
            let delta = now.saturating_sub(self.last[i]) as f64;
            self.last[i] = now;
            if secs <= 0.0 {
                continue;
            }
            let per_minute = delta * 60.0 / secs;
            for (w, (window, _)) in WINDOWS.iter().enumerate() {
                let keep = decay(secs / window);
                let avg = &mut self.averages[i][w];
                *avg = *avg * keep + per_minute * (1.0 - keep);
            }
        }
    }

    /// Each `load/<figure>/<window>` name with its value, rounded as
    /// Mosquitto prints it (two decimals).
    pub(super) fn values(
        &self,
    ) -> impl Iterator<Item = (alloc::string::String, alloc::string::String)> + '_ {
        FIGURES.iter().enumerate().flat_map(move |(i, (name, _))| {
            WINDOWS.iter().enumerate().map(move |(w, (_, suffix))| {
                (
                    alloc::format!("load/{name}/{suffix}"),
                    alloc::format!("{:.2}", self.averages[i][w]),
                )
            })
        })
    }
}

/// e^(−x) for x ≥ 0 without `std`: a short series on a small argument,
/// squared back up (e^(−x) = (e^(−x/2ᵏ))^(2ᵏ)).
fn decay(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    if x > 50.0 {
        return 0.0;
    }
    let mut halvings = 0;
    let mut y = x;
    while y > 0.125 {
        y /= 2.0;
        halvings += 1;
    }
    // Taylor series to y⁵: the error is below 1e-8 for y ≤ 1/8.
    let mut e =
        1.0 - y + y * y / 2.0 - y * y * y / 6.0 + y * y * y * y / 24.0 - y * y * y * y * y / 120.0;
    for _ in 0..halvings {
        e *= e;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_is_e_to_the_minus_x() {
        for (x, want) in [
            (0.0, 1.0),
            (1.0 / 6.0, 0.846_481_724_890_614),
            (1.0, 0.367_879_441_171_442),
            (5.0, 0.006_737_946_999_085),
        ] {
            assert!(
                (decay(x) - want).abs() < 1e-7,
                "e^-{x}: {} vs {want}",
                decay(x)
            );
        }
        assert_eq!(decay(1000.0), 0.0);
    }

    #[test]
    fn a_steady_rate_is_what_the_averages_converge_to() {
        let mut load = Load::default();
        let mut stats = Stats::default();
        // 100 messages every 10 s: 600 a minute, for an hour.
        for _ in 0..360 {
            stats.messages_received += 100;
            load.update(&stats, Duration::from_secs(10));
        }
        let v: alloc::collections::BTreeMap<_, _> = load.values().collect();
        assert_eq!(v["load/messages/received/1min"], "600.00");
        let fifteen: f64 = v["load/messages/received/15min"].parse().unwrap();
        assert!((580.0..=600.0).contains(&fifteen), "{fifteen}");
        assert_eq!(v["load/bytes/sent/5min"], "0.00");
    }

    #[test]
    fn one_burst_fades_faster_over_one_minute_than_over_fifteen() {
        let mut load = Load::default();
        let stats = Stats {
            connections_total: 60,
            ..Stats::default()
        };
        load.update(&stats, Duration::from_secs(60));
        for _ in 0..6 {
            load.update(&stats, Duration::from_secs(60));
        }
        let v: alloc::collections::BTreeMap<_, _> = load.values().collect();
        let one: f64 = v["load/connections/1min"].parse().unwrap();
        let fifteen: f64 = v["load/connections/15min"].parse().unwrap();
        assert!(one < 0.1 && fifteen > 1.0, "{one} {fifteen}");
    }
}
