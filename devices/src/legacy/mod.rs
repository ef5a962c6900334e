//! Legacy ISA platform devices every PC has at fixed ports: the MC146818 RTC/CMOS (0x70/0x71), System Control
//! Port A (0x92), the firmware debug console (0x402) and the i8042 keyboard controller (0x60/0x64) with its PS/2
//! keyboard and mouse.
//!
//! SeaBIOS touches all of them during POST: it reads the time, memory size and boot order from CMOS, needs the
//! RTC's periodic interrupt for INT 15h waits, reads 0x92 for the A20 state, switches its debug output off
//! unless 0x402 reads 0xE9, and initialises the keyboard controller. Guests reset the machine through 0x92 and
//! through the i8042's 0xFE command.
//!
//! Every device here is a plain state machine with a serialisable `State`, plus a `BusDevice` adapter that
//! locks it. Interrupt lines are driven through `LevelSync` (below), which orders level changes without holding the
//! device's state lock while the line's back-end runs.

pub mod debugcon;
pub mod i8042;
pub mod port92;
pub mod rtc;

use std::sync::{Arc, Mutex};

use crate::irq::IrqLine;

/// Drives one level-triggered output line from a device's state without holding the state lock while the
/// line's back-end (an `IrqMux`, KVM) runs.
///
/// Computing the level under the state lock and setting it after the lock is dropped would let two vCPUs
/// apply their levels in the wrong order and leave a line high with nothing pending. So [`LevelSync::sync`]
/// takes this object's own small lock first, then asks the device for its level (the closure locks and
/// unlocks the state), then sets the line if the level changed. The lock order is always sync lock → state
/// lock, and the state lock is never held while the line is set.
pub(crate) struct LevelSync {
    line: Arc<dyn IrqLine>,
    level: Mutex<bool>,
}

impl LevelSync {
    /// A line that is low now.
    pub(crate) fn new(line: Arc<dyn IrqLine>) -> Self {
        LevelSync {
            line,
            level: Mutex::new(false),
        }
    }

    /// Sets the line to `desired()` if that differs from the level last set.
    pub(crate) fn sync(&self, desired: impl FnOnce() -> bool) {
        let mut level = self.level.lock().unwrap_or_else(|e| e.into_inner());
        let want = desired();
        if want != *level {
            *level = want;
            self.line.set_level(want);
        }
    }

    /// Like [`LevelSync::sync`], but when `new_edge` says that the condition behind a high level ended and a new
    /// one began (a byte was read and the next one loaded at once), the line is dropped and raised again, so
    /// that an edge-triggered interrupt controller sees the new event.
    pub(crate) fn sync_edge(&self, new_edge: bool, desired: impl FnOnce() -> bool) {
        let mut level = self.level.lock().unwrap_or_else(|e| e.into_inner());
        let want = desired();
        if new_edge && want && *level {
            self.line.set_level(false);
            self.line.set_level(true);
        } else if want != *level {
            self.line.set_level(want);
        }
        *level = want;
    }

    /// Sets the line to `desired()` even if it seems unchanged (after a restore, when the line's real level is
    /// unknown).
    pub(crate) fn force(&self, desired: impl FnOnce() -> bool) {
        let mut level = self.level.lock().unwrap_or_else(|e| e.into_inner());
        *level = desired();
        self.line.set_level(*level);
    }
}
