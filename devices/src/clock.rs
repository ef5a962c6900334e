//! Machine time, injected into every device that measures time.
//!
//! Devices never call `Instant::now()` themselves: they ask a [`Clock`], so that tests can step time with a
//! [`FakeClock`] and see exact interrupt rates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Nanoseconds of monotonic machine time since the machine was created.
pub trait Clock: Send + Sync {
    /// The current machine time in nanoseconds.
    fn now_ns(&self) -> u64;
}

/// The host's monotonic clock, counted from when this value was made.
pub struct HostClock {
    start: Instant,
}

impl HostClock {
    /// A clock that reads 0 now.
    pub fn new() -> Self {
        HostClock {
            start: Instant::now(),
        }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to.
#[derive(Default)]
pub struct FakeClock {
    ns: AtomicU64,
}

impl FakeClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }
    /// Moves the clock forward by `ns` (saturating).
    pub fn advance(&self, ns: u64) {
        let now = self.ns.load(Ordering::SeqCst);
        self.ns.store(now.saturating_add(ns), Ordering::SeqCst);
    }
    /// Sets the clock; time never goes backwards, so an earlier value is ignored.
    pub fn set(&self, ns: u64) {
        self.ns.fetch_max(ns, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.ns.load(Ordering::SeqCst)
    }
}

/// Nanoseconds in a second.
pub const NS_PER_SEC: u64 = 1_000_000_000;
