//! The pure parts of the load generator: the stamp every payload carries, the
//! per-publisher correctness counters, latency percentiles, `/proc` parsing and
//! the summary record.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Bytes of the stamp at the front of every payload: publisher (4), sequence
/// number (8), send time (8), little-endian.
pub(crate) const STAMP_LEN: usize = 20;

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The publisher's number within the run.
    pub(crate) publisher: u32,
    /// The message's place in that publisher's stream, from 0.
    pub(crate) seq: u64,
    /// When it was (scheduled to be) sent, in nanoseconds since the run's base instant.
    pub(crate) sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp over the first [`STAMP_LEN`] bytes of `payload`.
    ///
    /// Panics if `payload` is shorter; the generator refuses such payload
    /// sizes when it parses its arguments.
    pub(crate) fn write(&self, payload: &mut [u8]) {
        payload[0..4].copy_from_slice(&self.publisher.to_le_bytes());
        payload[4..12].copy_from_slice(&self.seq.to_le_bytes());
        payload[12..20].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    /// Reads the stamp from the front of a payload; `None` if it is too short.
    pub(crate) fn read(payload: &[u8]) -> Option<Stamp> {
        let head: &[u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
        let (p, rest) = head.split_at(4);
        let (s, t) = rest.split_at(8);
        Some(Stamp {
            publisher: u32::from_le_bytes(p.try_into().ok()?),
            seq: u64::from_le_bytes(s.try_into().ok()?),
            sent_ns: u64::from_le_bytes(t.try_into().ok()?),
        })
    }
}

/// What one subscriber saw of one publisher's stream.
///
/// Messages are numbered from 0 by their publisher. A message above the next
/// expected number leaves a gap (messages missing so far); one that later
/// fills a gap arrived out of order; one seen before is a duplicate. Gaps are
/// kept as ranges, so memory grows with the number of gaps, never with the
/// number of messages.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stream {
    /// One past the highest sequence number seen.
    next: u64,
    /// Gaps below `next`: start → end (exclusive).
    holes: BTreeMap<u64, u64>,
    /// Deliveries, duplicates included.
    received: u64,
    /// Deliveries of a message already delivered.
    duplicates: u64,
    /// Deliveries that filled a gap, i.e. came after a later message.
    out_of_order: u64,
}

impl Stream {
    /// Counts the delivery of message `seq`.
    pub(crate) fn record(&mut self, seq: u64) {
        self.received += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.holes.insert(self.next, seq);
            self.next = seq + 1;
        } else {
            let hole = self
                .holes
                .range(..=seq)
                .next_back()
                .map(|(&s, &e)| (s, e))
                .filter(|&(_, e)| seq < e);
            match hole {
                Some((start, end)) => {
                    self.out_of_order += 1;
                    self.holes.remove(&start);
                    if start < seq {
                        self.holes.insert(start, seq);
                    }
                    if seq + 1 < end {
                        self.holes.insert(seq + 1, end);
                    }
                }
                None => self.duplicates += 1,
            }
        }
    }

    /// Distinct messages delivered.
    pub(crate) fn distinct(&self) -> u64 {
        self.received - self.duplicates
    }

    /// Messages missing below the highest one delivered: dropped on the
    /// way, as opposed to never sent on after some point.
    pub(crate) fn in_gaps(&self) -> u64 {
        self.holes.iter().map(|(s, e)| e - s).sum()
    }
}

/// Correctness counters of one subscriber, or of a whole run once merged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    /// PUBLISH packets delivered, duplicates included.
    pub(crate) received: u64,
    /// Distinct messages delivered.
    pub(crate) distinct: u64,
    /// Messages delivered more than once (beyond the first).
    pub(crate) duplicates: u64,
    /// Messages delivered after a later message of the same publisher.
    pub(crate) out_of_order: u64,
    /// Messages missing between delivered ones (the rest of the lost ones
    /// are missing at the end of their stream).
    pub(crate) in_gaps: u64,
    /// Deliveries at another QoS than min(publish QoS, granted QoS).
    pub(crate) wrong_qos: u64,
    /// Deliveries whose payload carries no valid stamp or names an unknown publisher.
    pub(crate) foreign: u64,
}

impl Counts {
    /// Adds another subscriber's counts.
    pub(crate) fn add(&mut self, o: &Counts) {
        self.received += o.received;
        self.distinct += o.distinct;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.in_gaps += o.in_gaps;
        self.wrong_qos += o.wrong_qos;
        self.foreign += o.foreign;
    }
}

/// Every publisher's stream as one subscriber sees it.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    streams: HashMap<u32, Stream>,
    wrong_qos: u64,
    foreign: u64,
    publishers: u32,
}

impl Tracker {
    /// A tracker for publishers numbered `0..publishers`.
    pub(crate) fn new(publishers: u32) -> Self {
        Tracker {
            publishers,
            ..Tracker::default()
        }
    }

    /// Counts one delivery: its payload stamp (if any) and whether it came at
    /// the QoS expected.
    pub(crate) fn record(&mut self, stamp: Option<Stamp>, qos_ok: bool) {
        if !qos_ok {
            self.wrong_qos += 1;
        }
        match stamp {
            Some(s) if s.publisher < self.publishers => {
                self.streams.entry(s.publisher).or_default().record(s.seq)
            }
            _ => self.foreign += 1,
        }
    }

    /// The totals over every stream.
    pub(crate) fn counts(&self) -> Counts {
        let mut c = Counts {
            wrong_qos: self.wrong_qos,
            foreign: self.foreign,
            ..Counts::default()
        };
        for s in self.streams.values() {
            c.received += s.received;
            c.distinct += s.distinct();
            c.duplicates += s.duplicates;
            c.out_of_order += s.out_of_order;
            c.in_gaps += s.in_gaps();
        }
        c.received += self.foreign;
        c
    }
}

/// Latencies in nanoseconds: 1 ns to 60 s with two significant digits
/// (1 % precision), about 30 KiB whatever the number of samples, so 500
/// subscribers can each keep one.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 2).expect("constant bounds are valid")
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Percentiles {
    /// Samples.
    pub(crate) count: u64,
    /// Median.
    pub(crate) p50_us: f64,
    /// 99th percentile.
    pub(crate) p99_us: f64,
    /// 99.9th percentile.
    pub(crate) p999_us: f64,
    /// Largest sample.
    pub(crate) max_us: f64,
}

impl Percentiles {
    /// The percentiles of `h` (`None` when it is empty).
    pub(crate) fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Percentiles {
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.50)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }
}

/// Clock ticks per second of `/proc/PID/stat` times (Linux's USER_HZ, 100 on
/// every architecture Linux exports to user space).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of a process, from the text of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may itself contain spaces
/// and parentheses, so fields are counted after the last `)`: utime and
/// stime are fields 14 and 15 of the line.
pub(crate) fn parse_stat_cpu_seconds(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // Fields 3.. follow the name; utime is field 14, i.e. the 12th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Resident memory in KiB (`VmRSS`), from the text of `/proc/PID/status`.
pub(crate) fn parse_status_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut it = line["VmRSS:".len()..].split_whitespace();
    let value = it.next()?.parse().ok()?;
    (it.next()? == "kB").then_some(value)
}

/// CPU seconds of process `pid` (`"self"` for this one), if readable.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    parse_stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Resident memory of process `pid` in KiB, if readable.
pub(crate) fn rss_kib(pid: &str) -> Option<u64> {
    parse_status_rss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// One value of the summary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A count.
    Int(u64),
    /// A measurement.
    Float(f64),
    /// A name.
    Text(String),
}

/// The run's result: ordered `key=value` pairs, printed as one line and
/// appended to a file as one JSON object.
#[derive(Debug, Default, Clone)]
pub(crate) struct Summary {
    fields: Vec<(String, Value)>,
}

impl Summary {
    /// Adds a count.
    pub(crate) fn int(&mut self, key: &str, v: u64) -> &mut Self {
        self.fields.push((key.to_string(), Value::Int(v)));
        self
    }

    /// Adds a measurement.
    pub(crate) fn float(&mut self, key: &str, v: f64) -> &mut Self {
        self.fields.push((key.to_string(), Value::Float(v)));
        self
    }

    /// Adds a name.
    pub(crate) fn text(&mut self, key: &str, v: &str) -> &mut Self {
        self.fields
            .push((key.to_string(), Value::Text(v.to_string())));
        self
    }

    /// Looks a value up (the last one under `key`).
    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// `key=value key=value ...`; floats with up to three decimals, text
    /// with spaces replaced so the line splits on spaces.
    pub(crate) fn line(&self) -> String {
        let mut s = String::new();
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            let _ = match v {
                Value::Int(n) => write!(s, "{k}={n}"),
                Value::Float(f) => write!(s, "{k}={}", round3(*f)),
                Value::Text(t) => write!(s, "{k}={}", t.replace(char::is_whitespace, "_")),
            };
        }
        s
    }

    /// The same pairs as one JSON object (non-finite floats become null).
    pub(crate) fn json(&self) -> String {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.fields {
            let v = match v {
                Value::Int(n) => serde_json::Value::from(*n),
                Value::Float(f) => serde_json::Number::from_f64(round3(*f))
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                Value::Text(t) => serde_json::Value::from(t.as_str()),
            };
            m.insert(k.clone(), v);
        }
        serde_json::Value::Object(m).to_string()
    }
}

fn round3(f: f64) -> f64 {
    (f * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_and_needs_twenty_bytes() {
        let s = Stamp {
            publisher: 7,
            seq: 0x0102_0304_0506_0708,
            sent_ns: u64::MAX - 3,
        };
        let mut payload = vec![0xA5; 64];
        s.write(&mut payload);
        assert_eq!(Stamp::read(&payload), Some(s));
        assert_eq!(&payload[STAMP_LEN..], &[0xA5; 64 - STAMP_LEN][..]);
        assert_eq!(Stamp::read(&payload[..STAMP_LEN]), Some(s));
        assert_eq!(Stamp::read(&payload[..STAMP_LEN - 1]), None);
        assert_eq!(&payload[0..4], &[7, 0, 0, 0], "little-endian publisher");
    }

    #[test]
    fn stream_in_order_has_no_anomalies() {
        let mut s = Stream::default();
        for seq in 0..1000 {
            s.record(seq);
        }
        assert_eq!(
            (s.received, s.distinct(), s.duplicates, s.out_of_order),
            (1000, 1000, 0, 0)
        );
        assert!(s.holes.is_empty());
    }

    #[test]
    fn stream_counts_gaps_late_arrivals_and_duplicates() {
        let mut s = Stream::default();
        for seq in [0, 1, 5, 6] {
            s.record(seq);
        }
        // 2, 3, 4 missing so far.
        assert_eq!(s.distinct(), 4);
        assert_eq!(s.holes, BTreeMap::from([(2, 5)]));
        assert_eq!(s.in_gaps(), 3);
        s.record(3); // fills the middle of the gap: out of order
        assert_eq!(s.holes, BTreeMap::from([(2, 3), (4, 5)]));
        s.record(2);
        s.record(4);
        assert!(s.holes.is_empty());
        assert_eq!(s.out_of_order, 3);
        s.record(4); // seen before
        s.record(6);
        assert_eq!(s.duplicates, 2);
        assert_eq!(s.received, 9);
        assert_eq!(s.distinct(), 7);
    }

    #[test]
    fn stream_gap_edges_split_correctly() {
        let mut s = Stream::default();
        s.record(10); // gap 0..10
        s.record(0); // left edge
        s.record(9); // right edge
        assert_eq!(s.holes, BTreeMap::from([(1, 9)]));
        assert_eq!(s.in_gaps(), 8);
        assert_eq!(s.out_of_order, 2);
        s.record(10);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.distinct(), 3);
    }

    #[test]
    fn tracker_separates_publishers_and_counts_wrong_qos_and_foreign() {
        let mut t = Tracker::new(2);
        let st = |p, seq| {
            Some(Stamp {
                publisher: p,
                seq,
                sent_ns: 0,
            })
        };
        t.record(st(0, 0), true);
        t.record(st(1, 0), true); // another stream: not a duplicate
        t.record(st(0, 1), false);
        t.record(st(2, 0), true); // no such publisher
        t.record(None, true); // no stamp
        t.record(st(1, 0), true); // duplicate
        let c = t.counts();
        assert_eq!(
            c,
            Counts {
                received: 6,
                distinct: 3,
                duplicates: 1,
                out_of_order: 0,
                in_gaps: 0,
                wrong_qos: 1,
                foreign: 2,
            }
        );
        let mut total = Counts::default();
        total.add(&c);
        total.add(&c);
        assert_eq!(total.received, 12);
        assert_eq!(total.distinct, 6);
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = new_histogram();
        assert_eq!(Percentiles::of(&h), None);
        // 1..=1000 µs, one sample each.
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let p = Percentiles::of(&h).unwrap();
        assert_eq!(p.count, 1000);
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.01 + 0.001;
        assert!(near(p.p50_us, 500.0), "p50 {}", p.p50_us);
        assert!(near(p.p99_us, 990.0), "p99 {}", p.p99_us);
        assert!(near(p.p999_us, 999.0), "p99.9 {}", p.p999_us);
        assert!(near(p.max_us, 1000.0), "max {}", p.max_us);
    }

    #[test]
    fn percentiles_see_a_rare_slow_tail() {
        let mut h = new_histogram();
        h.record_n(100_000, 9_990).unwrap(); // 100 µs
        h.record_n(50_000_000, 10).unwrap(); // 50 ms, 0.1 %
        let p = Percentiles::of(&h).unwrap();
        assert!((p.p99_us - 100.0).abs() <= 1.0, "p99 {}", p.p99_us);
        assert!(
            (p.p999_us - 100.0).abs() <= 1.0,
            "p99.9 at the boundary {}",
            p.p999_us
        );
        assert!((p.max_us - 50_000.0).abs() <= 500.0, "max {}", p.max_us);
        h.record(50_000_000).unwrap();
        let p = Percentiles::of(&h).unwrap();
        assert!(p.p999_us > 49_000.0, "p99.9 in the tail {}", p.p999_us);
    }

    #[test]
    fn stat_parsing_counts_fields_after_the_name() {
        // A name with spaces and a parenthesis; utime 250, stime 50 ticks.
        let stat = "4242 (my (odd) broker) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12345 100000000 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_stat_cpu_seconds("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_seconds("no name here"), None);
    }

    #[test]
    fn status_parsing_reads_vmrss() {
        let status = "Name:\tmosquitto\nVmPeak:\t   10000 kB\nVmRSS:\t    6789 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss_kib(status), Some(6789));
        assert_eq!(parse_status_rss_kib("Name:\tx\n"), None);
        assert_eq!(parse_status_rss_kib("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn this_process_is_readable_in_proc() {
        assert!(cpu_seconds("self").is_some());
        assert!(rss_kib("self").unwrap() > 0);
    }

    #[test]
    fn summary_line_and_json_carry_the_same_pairs() {
        let mut s = Summary::default();
        s.text("scenario", "fan in")
            .int("delivered", 42)
            .float("msg_per_s", 1234.56789)
            .float("nan", f64::NAN);
        assert_eq!(
            s.line(),
            "scenario=fan_in delivered=42 msg_per_s=1234.568 nan=NaN"
        );
        let v: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(v["scenario"], "fan in");
        assert_eq!(v["delivered"], 42);
        assert_eq!(v["msg_per_s"], 1234.568);
        assert!(v["nan"].is_null());
        assert_eq!(s.get("delivered"), Some(&Value::Int(42)));
    }
}
