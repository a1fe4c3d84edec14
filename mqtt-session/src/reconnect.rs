//! What every client adapter needs to reconnect: the delay between attempts
//! and the configuration that resumes the session on the next connection.
//!
//! An adapter with automatic reconnection does, after a lost connection:
//! ```text
//! let session = conn.take_session();                 // in flight + queued
//! sleep(backoff.next_delay(random()));
//! let next = config.for_resumption(caps.as_ref());   // caps from the last Connected
//! conn = Connection::<Client>::new(next, now, session);
//! // on Connected: backoff.reset()
//! ```

use core::time::Duration;

use crate::config::{ClientConfig, ServerCaps};

/// Exponential backoff between reconnection attempts, with jitter.
///
/// The delay doubles with each failed attempt, from `initial` up to `max`;
/// each delay is then shortened by a random part of up to half of it, so that
/// the many clients a broker restart disconnects at once do not all come back
/// in the same instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempts: u32,
}

impl Backoff {
    /// A backoff starting at `initial` and growing to at most `max` (a `max`
    /// below `initial` is raised to it).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempts: 0,
        }
    }

    /// The delay before the next attempt, counting it as made. `random` is any
    /// random number (the core has no randomness of its own); it picks the
    /// delay between half and all of the exponential value.
    pub fn next_delay(&mut self, random: u32) -> Duration {
        // 2^16 times any sensible initial delay is past any sensible maximum.
        let factor = 1u32 << self.attempts.min(16);
        self.attempts = self.attempts.saturating_add(1);
        let full = self.initial.saturating_mul(factor).min(self.max);
        let half = full / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let jitter = if jitter_ms == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(u64::from(random) % (jitter_ms + 1))
        };
        full - jitter
    }

    /// Attempts made since the last [`reset`](Backoff::reset).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over from the initial delay: call it once a connection succeeds.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

impl Default for Backoff {
    /// From 100 milliseconds up to 30 seconds.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl ClientConfig {
    /// Whether the server keeps this client's session after the connection
    /// ends, so that a new connection can resume it: under 5.0 a non-zero
    /// Session Expiry Interval (the one CONNACK set, when `caps` is given),
    /// under 3.1/3.1.1 Clean Session 0.
    pub fn keeps_session(&self, caps: Option<&ServerCaps>) -> bool {
        if self.version.is_v5() {
            caps.map_or(self.session_expiry_interval, |c| c.session_expiry_interval) > 0
        } else {
            !self.clean_start
        }
    }

    /// The configuration of the next connection after this one was lost:
    /// Clean Start 0 when the server keeps the session, so it resumes
    /// [MQTT-3.1.2-5]; and the client identifier the server assigned (in
    /// `caps`, from the last CONNACK), since the session belongs to it.
    /// With that connection, pass the session taken from the old one.
    pub fn for_resumption(&self, caps: Option<&ServerCaps>) -> ClientConfig {
        let mut next = self.clone();
        if self.keeps_session(caps) {
            next.clean_start = false;
        }
        if let Some(id) = caps.and_then(|c| c.assigned_client_identifier.as_ref()) {
            next.client_id = id.clone();
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{ProtocolVersion, QoS, Str};

    #[test]
    fn delays_double_up_to_the_maximum_with_jitter_within_half() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        // No jitter (random 0): the exponential value itself.
        let plain: [u64; 6] = [100, 200, 400, 800, 1000, 1000];
        for want in plain {
            assert_eq!(b.next_delay(0), Duration::from_millis(want));
        }
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert_eq!(b.attempts(), 0);
        // Any random value keeps the delay between half and all of it.
        for r in [1u32, 49, 50, 51, 12345, u32::MAX] {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
            let d = b.next_delay(r);
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100));
        }
        // Many attempts neither overflow nor pass the maximum.
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(b.next_delay(7) <= Duration::from_secs(60));
        }
        // A maximum below the initial delay is raised to it.
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(b.next_delay(0), Duration::from_secs(2));
        // A zero initial delay stays zero.
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::ZERO).next_delay(9),
            Duration::ZERO
        );
    }

    fn caps(session_expiry_interval: u32, assigned: Option<&'static str>) -> ServerCaps {
        ServerCaps {
            receive_maximum: 10,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            maximum_packet_size: 1000,
            topic_alias_maximum: 0,
            wildcard_subscription_available: true,
            subscription_identifiers_available: true,
            shared_subscription_available: true,
            keep_alive: 60,
            assigned_client_identifier: assigned.map(Str::from_static),
            session_expiry_interval,
        }
    }

    #[test]
    fn resumption_asks_for_the_session_only_when_the_server_keeps_it() {
        let mut v5 = ClientConfig::new(ProtocolVersion::V5, Str::from_static(""));
        v5.session_expiry_interval = 60;
        let next = v5.for_resumption(Some(&caps(60, Some("auto-1"))));
        assert!(!next.clean_start);
        assert_eq!(next.client_id, "auto-1");
        // CONNACK cut the expiry to 0: nothing to resume.
        assert!(v5.for_resumption(Some(&caps(0, None))).clean_start);
        // Before any CONNACK, the configured interval counts.
        assert!(!v5.for_resumption(None).clean_start);

        let mut v311 = ClientConfig::new(ProtocolVersion::V311, Str::from_static("c"));
        assert!(v311.for_resumption(None).clean_start);
        v311.clean_start = false;
        let next = v311.for_resumption(Some(&caps(0, None)));
        assert!(!next.clean_start);
        assert_eq!(next.client_id, "c");
    }
}
