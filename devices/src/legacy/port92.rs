//! System Control Port A (port 0x92), the "fast A20 and reset" port of PS/2-era and later chipsets.
//!
//! Bit 1 gates address line 20 and bit 0 ("fast init") resets the processor when it goes from 0 to 1; the
//! other bits (security lock, disk activity LEDs) are plain storage on the chipsets that have them, so the
//! whole byte reads back as written. Firmware reads this port to learn whether A20 is on: after power-on it
//! reads 0x02 (A20 enabled, no reset pending), which is what SeaBIOS expects.
//!
//! A20 is stored and reported, not enforced: KVM runs the guest with A20 always enabled, as every modern
//! chipset does after firmware has set it. The reset goes to the machine as [`SystemRequest::Reset`].

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::bus::BusDevice;
use crate::system::{SystemEvents, SystemRequest};

/// Bit 0: fast processor reset on a 0 → 1 transition.
pub const FAST_RESET: u8 = 0x01;
/// Bit 1: A20 gate enabled.
pub const A20: u8 = 0x02;
/// The port's value after power-on and after a platform reset.
pub const DEFAULT: u8 = A20;

/// The port's state: the last byte written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port92State {
    value: u8,
}

impl Default for Port92State {
    fn default() -> Self {
        Port92State { value: DEFAULT }
    }
}

impl Port92State {
    /// Stores a guest write; returns whether it asks for a reset (bit 0 went from 0 to 1).
    pub fn write(&mut self, value: u8) -> bool {
        let old = self.value;
        self.value = value;
        old & FAST_RESET == 0 && value & FAST_RESET != 0
    }

    /// What a guest read returns.
    pub fn read(&self) -> u8 {
        self.value
    }

    /// Whether the A20 gate is on.
    pub fn a20(&self) -> bool {
        self.value & A20 != 0
    }
}

/// Port 0x92 on the port bus (length 1, max width 1).
pub struct Port92 {
    state: Mutex<Port92State>,
    system: Arc<dyn SystemEvents>,
}

impl Port92 {
    /// The port after power-on; resets go to `system`.
    pub fn new(system: Arc<dyn SystemEvents>) -> Self {
        Port92 {
            state: Mutex::new(Port92State::default()),
            system,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Port92State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Back to the power-on value, so that the next write of bit 0 resets again.
    pub fn reset(&self) {
        *self.lock() = Port92State::default();
    }

    /// Whether the A20 gate is on.
    pub fn a20(&self) -> bool {
        self.lock().a20()
    }

    /// The state, for saving.
    pub fn state(&self) -> Port92State {
        *self.lock()
    }

    /// Restores a saved state.
    pub fn restore(&self, state: Port92State) {
        *self.lock() = state;
    }
}

impl BusDevice for Port92 {
    fn read(&self, _offset: u64, data: &mut [u8]) {
        let value = self.lock().read();
        data.fill(0xff);
        if let Some(b) = data.first_mut() {
            *b = value;
        }
    }

    fn write(&self, _offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else {
            return;
        };
        let reset = self.lock().write(value);
        if reset {
            self.system.request(SystemRequest::Reset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Bus;
    use crate::system::RecordingSystem;

    fn setup() -> (Bus, Arc<Port92>, Arc<RecordingSystem>) {
        let system = Arc::new(RecordingSystem::new());
        let port = Arc::new(Port92::new(system.clone()));
        let bus = Bus::new("pio");
        bus.insert(0x92, 1, 1, port.clone()).unwrap();
        (bus, port, system)
    }

    fn inb(bus: &Bus) -> u8 {
        let mut b = [0u8];
        bus.read(0x92, &mut b);
        b[0]
    }

    #[test]
    fn reads_a20_on_after_power_on_and_stores_writes() {
        let (bus, port, system) = setup();
        assert_eq!(inb(&bus), 0x02);
        assert!(port.a20());
        bus.write(0x92, &[0x00]);
        assert_eq!(inb(&bus), 0x00);
        assert!(!port.a20());
        bus.write(0x92, &[0xc2]);
        assert_eq!(inb(&bus), 0xc2);
        assert!(system.take().is_empty());
    }

    #[test]
    fn bit0_rising_requests_one_reset() {
        let (bus, port, system) = setup();
        // The usual guest sequence: read, OR in bit 0, write back.
        let v = inb(&bus);
        bus.write(0x92, &[v | FAST_RESET]);
        assert_eq!(system.take(), vec![SystemRequest::Reset]);
        // Still 1: no new edge, no new reset.
        bus.write(0x92, &[0x03]);
        assert!(system.take().is_empty());
        bus.write(0x92, &[0x02]);
        bus.write(0x92, &[0x03]);
        assert_eq!(system.take(), vec![SystemRequest::Reset]);
        // The machine's reset puts the port back, so the next write of bit 0 resets again.
        port.reset();
        assert_eq!(inb(&bus), 0x02);
        bus.write(0x92, &[0x03]);
        assert_eq!(system.take(), vec![SystemRequest::Reset]);
    }

    #[test]
    fn odd_accesses_do_no_harm() {
        let (bus, port, system) = setup();
        let mut w = [0u8; 2];
        assert_eq!(bus.read(0x92, &mut w), crate::bus::Access::Refused);
        assert_eq!(bus.write(0x92, &[1, 1]), crate::bus::Access::Refused);
        port.write(0, &[]);
        let mut wide = [0u8; 4];
        port.read(0, &mut wide);
        assert_eq!(wide, [0x02, 0xff, 0xff, 0xff]);
        assert!(system.take().is_empty());
        let saved = port.state();
        bus.write(0x92, &[0x00]);
        port.restore(saved);
        assert_eq!(inb(&bus), 0x02);
    }
}
