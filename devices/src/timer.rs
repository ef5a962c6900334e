//! Time-driven device work (RTC periodic and update interrupts, PM timer overflow, ...).
//!
//! A device with timers implements [`Timed`]: the machine's timer loop calls [`Timed::advance`] when the
//! device's deadline has come and learns the next one from the return value. When a guest write changes a
//! device's deadline (a new periodic rate, say), the device calls its [`TimerKick`] so that the loop
//! recomputes its sleep. In tests there is no loop: the harness steps a `FakeClock` and calls `advance`.

use std::sync::Arc;

/// A device that has work to do at certain machine times.
pub trait Timed: Send + Sync {
    /// Does everything due at or before `now_ns` and returns the next deadline (absolute machine time), if any.
    fn advance(&self, now_ns: u64) -> Option<u64>;
}

/// Tells the timer loop that a device's next deadline changed.
#[derive(Clone, Default)]
pub struct TimerKick(Option<Arc<dyn Fn() + Send + Sync>>);

impl TimerKick {
    /// A kick that calls `f` (the event loop writes its wake-up eventfd).
    pub fn new(f: Arc<dyn Fn() + Send + Sync>) -> Self {
        TimerKick(Some(f))
    }
    /// A kick that does nothing (tests step time themselves).
    pub fn none() -> Self {
        TimerKick(None)
    }
    /// Wakes the timer loop, if there is one.
    pub fn kick(&self) {
        if let Some(f) = &self.0 {
            f();
        }
    }
}
