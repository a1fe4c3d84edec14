//! The delay between reconnection attempts. [`ClientDriver`](crate::driver::ClientDriver)
//! uses it after a lost connection, with
//! [`ClientConfig::for_resumption`](mqtt_session::ClientConfig::for_resumption)
//! for the configuration that resumes the session; a caller that
//! reconnects by hand (as `mqtt-embedded`'s does) does the same:
//! ```text
//! let session = conn.take_session();                 // in flight + queued
//! sleep(backoff.next_delay(random()));
//! let next = config.for_resumption(caps.as_ref());   // caps from the last Connected
//! conn = Connection::<Client>::new(next, now, session);
//! // on Connected: backoff.reset()
//! ```

use core::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
