//! The i440FX/PIIX3 chipset as QEMU's "pc" machine (and Xen's qemu-dm) lays it out on PCI bus 0:
//!
//! | address | function |
//! |---|---|
//! | 00:00.0 | [`i440fx`] host bridge (PAM, SMRAM) |
//! | 00:01.0 | [`piix3`] ISA bridge (PIRQ routing, reset control at 0xCF9) |
//! | 00:01.1 | PIIX3 IDE (its own module) |
//! | 00:01.3 | [`piix4_pm`] ACPI power management (SCI on IRQ 9, PM timer) |
//!
//! [`build`] creates the PCI root with these functions and puts their fixed ports on the port bus; the
//! machine then adds the other PCI devices to [`Chipset::root`] and wires their INTx pins through
//! [`piix3::Piix3Handle::intx_line`].

pub mod i440fx;
pub mod piix3;
pub mod piix4_pm;

use std::sync::{Arc, Mutex};

use crate::bus::{Bus, BusError};
use crate::clock::Clock;
use crate::irq::IrqMux;
use crate::pci::{PciAddress, PciError, PciHost, PciRoot};
use crate::system::SystemEvents;
use crate::timer::TimerKick;

use i440fx::I440fx;
use piix3::Piix3Handle;
use piix4_pm::Piix4PmHandle;

/// Slot of the PIIX3 functions (ISA bridge, IDE, USB, PM).
pub const PIIX_SLOT: u8 = 1;
/// ISA IRQ of the ACPI SCI.
pub const SCI_IRQ: u32 = 9;

/// Why the chipset could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChipsetError {
    /// A PCI function could not be added.
    #[error("PCI: {0}")]
    Pci(#[from] PciError),
    /// A fixed port range is already taken.
    #[error("port bus: {0}")]
    Bus(#[from] BusError),
}

/// What the PM function needs besides buses and interrupts.
pub struct PmWiring {
    /// Machine time, for the PM timer.
    pub clock: Arc<dyn Clock>,
    /// Wakes the timer loop when the PM timer's deadline changes.
    pub kick: TimerKick,
}

/// The chipset's parts, for wiring the rest of the machine.
pub struct Chipset {
    /// PCI bus 0; add further functions here.
    pub root: Arc<PciRoot>,
    /// The 0xCF8-0xCFF ports (already on the port bus). Call [`PciHost::reset`] on platform reset: it
    /// resets every PCI function.
    pub host: Arc<PciHost>,
    /// The host bridge at 00:00.0.
    pub i440fx: Arc<Mutex<I440fx>>,
    /// The ISA bridge at 00:01.0: INTx lines for PCI devices.
    pub piix3: Piix3Handle,
    /// The PM function at 00:01.3, when ACPI is on: register it with the timer loop (it is
    /// [`crate::timer::Timed`]) and use it for the power button.
    pub pm: Option<Piix4PmHandle>,
}

fn addr(device: u8, function: u8) -> Result<PciAddress, PciError> {
    PciAddress::new(0, device, function)
}

/// Builds the chipset: the root with i440FX at 00:00.0, PIIX3 at 00:01.0 and, with `pm`, PIIX4 PM at
/// 00:01.3 (SCI = `mux` line 9, APM ports 0xB2-0xB3, GPE0 at 0xAFE0-0xAFE3); the configuration ports at
/// 0xCF8-0xCFF. PCI interrupt links and the SCI go through `mux`; resets and power-off go to `system`.
pub fn build(
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    mux: &Arc<IrqMux>,
    system: Arc<dyn SystemEvents>,
    pm: Option<PmWiring>,
) -> Result<Chipset, ChipsetError> {
    let root = PciRoot::new(Arc::clone(&pio), mmio);
    let i440fx = Arc::new(Mutex::new(I440fx::new()));
    root.add(addr(0, 0)?, i440fx.clone())?;
    let piix3 = Piix3Handle::new(Arc::clone(mux), Arc::clone(&system));
    root.add(addr(PIIX_SLOT, 0)?, piix3.function())?;
    let pm = match pm {
        Some(w) => {
            let handle = Piix4PmHandle::new(w.clock, mux.line(SCI_IRQ), system, w.kick);
            root.add(addr(PIIX_SLOT, 3)?, handle.function())?;
            pio.insert(piix4_pm::APM_PORT, 2, 2, handle.apm_port())?;
            pio.insert(piix4_pm::GPE0_PORT, 4, 4, handle.gpe0_block())?;
            Some(handle)
        }
        None => None,
    };
    let host = PciHost::new(Arc::clone(&root), Some(piix3.reset_control()));
    pio.insert(
        PciHost::BASE,
        PciHost::LEN,
        PciHost::MAX_WIDTH,
        host.clone(),
    )?;
    Ok(Chipset {
        root,
        host,
        i440fx,
        piix3,
        pm,
    })
}
