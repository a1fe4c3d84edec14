//! The time type every time-dependent call takes.

use core::time::Duration;

/// Monotonic milliseconds since an epoch the adapter chooses.
///
/// The router reads no clock: every call that depends on time (message
/// expiry of retained messages) takes `now: Instant` as an argument. This
/// mirrors the `Instant` of the workspace design (section 1, "Time and
/// randomness"); it lives here until a shared home for it exists, and has the
/// same shape so that moving it is a re-export. A `u64` of milliseconds never
/// wraps in practice (585 million years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);

    /// `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This instant plus `d`, saturating at the far end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(millis))
    }

    /// The time from `earlier` to this instant, zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(1_000);
        assert_eq!(t.saturating_add(Duration::from_secs(2)).as_millis(), 3_000);
        assert_eq!(
            Instant::from_millis(u64::MAX - 1).saturating_add(Duration::from_secs(1)),
            Instant::from_millis(u64::MAX)
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_millis(400)),
            Duration::from_millis(600)
        );
        assert_eq!(Instant::ZERO.saturating_duration_since(t), Duration::ZERO);
    }
}
