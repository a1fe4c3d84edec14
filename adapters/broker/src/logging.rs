//! Logs a client can trigger: rate-limited, and showing client input only
//! bounded and escaped. A client that fails to log in a thousand times a
//! second, or names itself with a megabyte of control characters, must not
//! fill the disk or forge log lines.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest piece of client input a log line shows, in characters.
pub(crate) const SHOWN_CHARS: usize = 64;

/// At most a number of lines per second for one kind of event, all sources
/// together; the first line after a second with suppressed ones says how
/// many went unlogged.
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_second: u32,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl RateLimit {
    /// A limit of `per_second` lines a second.
    pub(crate) const fn new(per_second: u32) -> RateLimit {
        RateLimit {
            per_second,
            state: Mutex::new(Window {
                started: None,
                logged: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether a line may be logged at `now`: `Some(n)` with the number of
    /// lines suppressed since the last one logged, `None` to drop it.
    pub(crate) fn check(&self, now: Instant) -> Option<u64> {
        // A panic while holding the lock leaves a window that is still valid.
        let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = w
            .started
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1));
        if fresh {
            w.started = Some(now);
            w.logged = 0;
        }
        if w.logged >= self.per_second {
            w.suppressed += 1;
            return None;
        }
        w.logged += 1;
        Some(std::mem::take(&mut w.suppressed))
    }

    /// [`RateLimit::check`] now.
    pub(crate) fn allow(&self) -> Option<u64> {
        self.check(Instant::now())
    }
}

/// Client input as a log shows it: at most [`SHOWN_CHARS`] characters,
/// control characters (line breaks included) and quotes escaped, and what
/// was cut said.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shown<'a>(pub(crate) &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.char_indices();
        for (_, c) in chars.by_ref().take(SHOWN_CHARS) {
            if c.is_control() || c == '"' || c == '\\' {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if let Some((at, _)) = chars.next() {
            write!(f, "…({} more bytes)", self.0.len() - at)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_is_logged_each_second_and_the_rest_is_counted() {
        let limit = RateLimit::new(3);
        let t0 = Instant::now();
        let logged: Vec<_> = (0..10).map(|_| limit.check(t0)).collect();
        assert_eq!(&logged[..3], &[Some(0), Some(0), Some(0)]);
        assert!(logged[3..].iter().all(Option::is_none));
        // The next second's first line says how many were dropped.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(limit.check(t1), Some(7));
        assert_eq!(limit.check(t1), Some(0));
    }

    #[test]
    fn client_input_is_cut_to_64_characters() {
        let long = "a".repeat(1000);
        let shown = Shown(&long).to_string();
        assert!(shown.starts_with(&"a".repeat(SHOWN_CHARS)));
        assert!(shown.ends_with("…(936 more bytes)"), "{shown}");
        assert_eq!(Shown("short").to_string(), "short");
        // Exactly the limit is not cut.
        assert_eq!(Shown(&long[..SHOWN_CHARS]).to_string(), long[..SHOWN_CHARS]);
    }

    #[test]
    fn control_characters_cannot_forge_a_log_line() {
        let forged = "x\n2026-01-01T00:00:00Z  INFO fake line\u{1b}[31m\"";
        let shown = Shown(forged).to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert!(shown.contains("\\n"), "{shown}");
        assert!(shown.ends_with("\\\""), "{shown}");
    }
}
