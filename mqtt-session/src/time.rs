//! Time as the engine sees it: milliseconds handed in by the caller.

use core::time::Duration;

/// A point in time: milliseconds since an epoch the adapter chooses.
///
/// The core crates never read a clock; every input carries `now: Instant`
/// and every deadline comes back as an `Instant`. A `u64` of milliseconds does
/// not wrap in any realistic uptime and needs no `std`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);

    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This instant plus `d`, saturating instead of overflowing.
    pub fn saturating_add(self, d: Duration) -> Self {
        Instant(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// This instant plus `secs` seconds.
    pub const fn plus_secs(self, secs: u64) -> Self {
        Instant(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(u64::MAX - 1);
        assert_eq!(
            t.saturating_add(Duration::from_secs(5)).as_millis(),
            u64::MAX
        );
        assert_eq!(
            Instant::from_millis(5).saturating_duration_since(t),
            Duration::ZERO
        );
        assert_eq!(Instant::from_millis(1500).plus_secs(2).as_millis(), 3500);
    }
}
