//! Requests a device makes of the whole machine: reset, power-off, crash.
//!
//! Devices do not reset vCPUs or end the process themselves; they ask through [`SystemEvents`] and the
//! machine (or a test's [`RecordingSystem`]) decides what follows, e.g. from `on_reboot`/`on_poweroff`.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Something only the machine as a whole can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemRequest {
    /// A platform reset (0xCF9, port 0x92 bit 0, keyboard controller 0xFE, or a guest reboot).
    Reset,
    /// The guest powered off (ACPI S5).
    PowerOff,
    /// The guest crashed (a triple fault, or a fatal error a device saw); the text says why.
    Crash(String),
}

/// Where devices send [`SystemRequest`]s.
pub trait SystemEvents: Send + Sync {
    /// Asks the machine to do `request`. Must not block: the machine acts on it from its own thread.
    fn request(&self, request: SystemRequest);
}

/// Records requests, for tests.
#[derive(Default)]
pub struct RecordingSystem {
    requests: Mutex<Vec<SystemRequest>>,
}

impl RecordingSystem {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }
    /// Every request so far, oldest first, clearing the record.
    pub fn take(&self) -> Vec<SystemRequest> {
        std::mem::take(&mut *self.requests.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl SystemEvents for RecordingSystem {
    fn request(&self, request: SystemRequest) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request);
    }
}
