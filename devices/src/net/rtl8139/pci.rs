//! The RTL8139's PCI face: configuration space, BAR0 (I/O) and BAR1 (memory) onto the register window.

use std::sync::Arc;

use crate::irq::IrqLine;
use crate::pci::config::STATUS;
use crate::pci::{BarKind, ConfigSpace, PciError, PciFunction, RegionId};

use super::{Nic, CLASS, DEVICE_ID, REGS_LEN, REVISION, SUBSYSTEM, VENDOR_ID};

/// STATUS bit 13: the function's own DMA was master-aborted (a DMA address outside guest memory).
const STATUS_RECEIVED_MASTER_ABORT: u16 = 1 << 13;

/// The PCI function (see [`super::Rtl8139::pci_function`]).
pub struct Rtl8139Pci {
    pub(super) config: ConfigSpace,
    pub(super) nic: Arc<Nic>,
}

/// The configuration space at power-on.
pub(super) fn config_space() -> Result<ConfigSpace, PciError> {
    let mut config = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS, REVISION);
    config.set_subsystem(SUBSYSTEM.0, SUBSYSTEM.1);
    config.add_bar(0, BarKind::Io, REGS_LEN)?;
    config.add_bar(
        1,
        BarKind::Memory32 {
            prefetchable: false,
        },
        REGS_LEN,
    )?;
    config.set_interrupt_pin(1)?;
    Ok(config)
}

impl Rtl8139Pci {
    /// Brings STATUS up to date with the chip: the interrupt condition and a master abort.
    fn sync_status(&mut self) {
        let (pending, abort) = {
            let mut chip = self.nic.lock();
            (chip.irq_pending(), std::mem::take(&mut chip.master_abort))
        };
        self.config.set_interrupt_status(pending);
        if abort {
            let s = self.config.status() | STATUS_RECEIVED_MASTER_ABORT;
            self.config.set_u16(STATUS, s);
        }
    }
}

impl PciFunction for Rtl8139Pci {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn config_read(&mut self, offset: usize, data: &mut [u8]) {
        self.sync_status();
        self.config.read(offset, data);
    }

    fn config_write(&mut self, offset: usize, data: &[u8]) {
        // The chip drives INTx itself (from ISR & IMR); it only needs COMMAND's bits.
        self.sync_status();
        self.config.write(offset, data);
        let bus_master = self.config.bus_master_enabled();
        let intx_disabled = self.config.intx_disabled();
        self.nic.lock().set_pci_command(bus_master, intx_disabled);
    }

    fn bar_read(&mut self, region: RegionId, offset: u64, data: &mut [u8]) {
        match region {
            RegionId::Bar(0) | RegionId::Bar(1) => self.nic.reg_read(offset, data),
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, region: RegionId, offset: u64, data: &[u8]) {
        if let RegionId::Bar(0) | RegionId::Bar(1) = region {
            self.nic.reg_write(offset, data);
        }
    }

    fn reset(&mut self) {
        self.config.reset();
        self.nic.lock().hard_reset();
    }

    fn intx_line(&self) -> Option<&dyn IrqLine> {
        Some(&*self.nic.intx)
    }
}
