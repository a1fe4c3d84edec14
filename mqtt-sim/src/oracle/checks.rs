//! What the oracle checks, how often each check ran, and what failed.

use core::fmt;

use mqtt_router::Instant;

/// One kind of check the oracle makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// CONNACK's Session Present says whether the broker still had the
    /// session: kept across reconnections until it expires exactly at its
    /// Session Expiry Interval [MQTT-3.2.2-2], [MQTT-3.2.2-3], [MQTT-4.1.0-1].
    SessionPresent,
    /// Every delivery is due to a subscription the client had when the
    /// broker accepted the message (so: nothing after UNSUBACK
    /// [MQTT-3.10.4-1], nothing back to the publisher under No Local
    /// [MQTT-3.8.3-3], retained messages only as Retain Handling says
    /// [MQTT-3.3.1-9]..[MQTT-3.3.1-11], wills only when due).
    DeliveryDue,
    /// The topic delivered is the topic published (aliases resolved).
    Topic,
    /// QoS, RETAIN and Subscription Identifiers are as the subscription
    /// says: the minimum QoS [MQTT-3.8.4-8], Retain As Published
    /// [MQTT-3.3.1-12], [MQTT-3.3.1-13], RETAIN on subscribe
    /// [MQTT-3.3.1-8], the matching identifiers [MQTT-3.3.4-3].
    DeliveryOptions,
    /// A QoS 2 message reaches each matching subscription of one client
    /// process at most once [MQTT-4.3.3-10] (a crashed client's new process,
    /// or another process racing for its client identifier, has no memory
    /// of what the first one received).
    ExactlyOnce,
    /// A QoS 1/2 message reaches every subscription that matched when it
    /// was accepted, across reconnections of a persistent session
    /// [MQTT-4.3.2-1], [MQTT-4.4.0-1]; excused when the session ended
    /// (expiry, clean start, broker crash), the message expired, or the
    /// broker reported the drop.
    AtLeastOnce,
    /// Messages from one publisher on one topic arrive at a subscriber (each
    /// of its client processes) at QoS 1/2 in the order the broker accepted
    /// them [MQTT-4.6.0-5], [MQTT-4.6.0-6].
    Order,
    /// A message to a shared subscription group reaches one member
    /// (section 4.8.2): never two, and one unless excused as above.
    SharedOnce,
    /// The retained messages a new subscriber finally gets are the last
    /// retained publish of each topic, not cleared and not expired
    /// [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-7].
    Retained,
    /// The broker has published exactly the wills the rules make due by
    /// now: at the end of a connection without a normal DISCONNECT, after
    /// the Will Delay Interval unless the session was resumed, at the
    /// latest when the session ends [MQTT-3.1.2-8], [MQTT-3.1.3-9]; never
    /// twice.
    Wills,
    /// The broker's sessions, whether each is connected, when each expires
    /// and when its will is due are the model's, at every rest point.
    Sessions,
    /// Memory within the configured limits: each session's queue within
    /// `max_queued`, deliveries in flight within `max_inflight`, retained
    /// messages and connections within theirs.
    Bounds,
    /// A 5.0 PUBACK/PUBREC says 0x10 No matching subscribers exactly when
    /// no subscription matched (3.4.2.1, 3.5.2.1).
    AckReason,
    /// SUBACK grants each filter the requested QoS, the broker's maximum at
    /// most [MQTT-3.9.3-1]; a 5.0 UNSUBACK says 0x11 for a filter that had
    /// no subscription (3.11.3).
    SubscribeResults,
    /// The broker ends a well-behaved client's connection only on a keep
    /// alive timeout that really passed [MQTT-3.1.2-24] or a takeover
    /// [MQTT-3.1.4-3], and never accuses it of breaking a rule.
    BrokerClose,
    /// A client never finds the broker breaking a rule (its own state
    /// machine checks every packet), and never has more in flight than
    /// the broker's Receive Maximum [MQTT-3.3.4-7].
    ClientView,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 16] = [
        Check::SessionPresent,
        Check::DeliveryDue,
        Check::Topic,
        Check::DeliveryOptions,
        Check::ExactlyOnce,
        Check::AtLeastOnce,
        Check::Order,
        Check::SharedOnce,
        Check::Retained,
        Check::Wills,
        Check::Sessions,
        Check::Bounds,
        Check::AckReason,
        Check::SubscribeResults,
        Check::BrokerClose,
        Check::ClientView,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which check.
    pub check: Check,
    /// When (virtual time).
    pub at: Instant,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} at {} ms] {}",
            self.check,
            self.at.as_millis(),
            self.message
        )
    }
}

/// Counts of checks made and the violations found.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    counts: [u64; Check::ALL.len()],
    /// The first violations found (at most [`Checks::KEPT`]).
    pub violations: Vec<Violation>,
    /// How many checks failed in all.
    pub failed: u64,
    /// The virtual time stamped on violations.
    pub(crate) now: Instant,
}

impl Checks {
    /// Violations kept in full.
    pub const KEPT: usize = 20;

    /// Counts a check of kind `c`; when `ok` is false, records a violation
    /// described by `message`.
    pub fn check(&mut self, c: Check, ok: bool, message: impl FnOnce() -> String) {
        self.counts[c.index()] += 1;
        if !ok {
            self.fail_counted(c, message());
        }
    }

    /// Counts `n` checks of kind `c` that passed.
    pub fn passed(&mut self, c: Check, n: u64) {
        self.counts[c.index()] += n;
    }

    /// Records a failed check of kind `c`.
    pub fn fail(&mut self, c: Check, message: String) {
        self.counts[c.index()] += 1;
        self.fail_counted(c, message);
    }

    fn fail_counted(&mut self, check: Check, message: String) {
        self.failed += 1;
        if self.violations.len() < Self::KEPT {
            self.violations.push(Violation {
                check,
                at: self.now,
                message,
            });
        }
    }

    /// How many checks of kind `c` were made.
    pub fn count(&self, c: Check) -> u64 {
        self.counts[c.index()]
    }

    /// How many checks were made in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `other`'s counts and violations to these.
    pub fn merge(&mut self, other: &Checks) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.failed += other.failed;
        let room = Self::KEPT.saturating_sub(self.violations.len());
        self.violations
            .extend(other.violations.iter().take(room).cloned());
    }
}
