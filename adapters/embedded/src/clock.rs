//! Time, injected: the client reads no clock of its own.

use mqtt_session::Instant;

/// The client's source of time and of waiting.
///
/// `now` is monotonic milliseconds since an epoch the implementation
/// chooses; `sleep_until` waits until `now()` has reached `deadline`
/// (returning at once if it has). The sleep is raced against the transport
/// and dropped when bytes arrive first, so it must be cancel-safe, as timer
/// futures are.
///
/// Under embassy, with `embassy-time`:
/// ```text
/// struct EmbassyClock;
/// impl mqtt_embedded::Clock for EmbassyClock {
///     fn now(&self) -> mqtt_embedded::Instant {
///         mqtt_embedded::Instant::from_millis(embassy_time::Instant::now().as_millis())
///     }
///     async fn sleep_until(&self, deadline: mqtt_embedded::Instant) {
///         embassy_time::Timer::at(embassy_time::Instant::from_millis(deadline.as_millis())).await
///     }
/// }
/// ```
// Like `embedded-io-async`, meant for executors that need no `Send` futures.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;

    /// Waits until `deadline`.
    async fn sleep_until(&self, deadline: Instant);
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }

    async fn sleep_until(&self, deadline: Instant) {
        (**self).sleep_until(deadline).await
    }
}
