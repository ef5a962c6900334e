//! Rate-limited logging for messages a guest can trigger at will.
//!
//! A guest that pokes a bad register a million times a second must not fill the log or slow the vCPU down.
//! [`rate_limited!`] lets a call site log a burst of messages per interval, then counts what it suppressed and
//! says so with the next message it lets through.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Messages one call site may log per interval.
pub const BURST: u64 = 10;
/// The interval, in seconds.
pub const INTERVAL_SECS: u64 = 5;

/// The per-call-site state behind [`rate_limited!`].
pub struct RateLimit {
    window: AtomicU64,
    count: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// A limit with an empty history.
    pub const fn new() -> Self {
        RateLimit {
            window: AtomicU64::new(0),
            count: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether a message may be logged now; `Some(n)` carries how many were suppressed since the last one.
    pub fn check(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.check_at(now)
    }

    /// [`RateLimit::check`] at a given time in seconds.
    pub fn check_at(&self, now_secs: u64) -> Option<u64> {
        let now = now_secs / INTERVAL_SECS;
        if self.window.swap(now, Ordering::Relaxed) != now {
            self.count.store(0, Ordering::Relaxed);
        }
        if self.count.fetch_add(1, Ordering::Relaxed) < BURST {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

/// `log!` with a per-call-site rate limit: `rate_limited!(log::Level::Warn, "fmt", args...)`.
#[macro_export]
macro_rules! rate_limited {
    ($level:expr, $($arg:tt)+) => {{
        static LIMIT: $crate::ratelimit::RateLimit = $crate::ratelimit::RateLimit::new();
        if let Some(suppressed) = LIMIT.check() {
            if suppressed > 0 {
                log::log!($level, "({} similar messages suppressed)", suppressed);
            }
            log::log!($level, $($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_messages_are_suppressed_and_counted() {
        let limit = RateLimit::new();
        let t = 1_000 * INTERVAL_SECS;
        let passed = (0..BURST + 5)
            .filter(|_| limit.check_at(t).is_some())
            .count();
        assert_eq!(passed as u64, BURST);
        assert_eq!(limit.check_at(t + INTERVAL_SECS), Some(5));
        assert_eq!(limit.check_at(t + INTERVAL_SECS), Some(0));
    }
}
