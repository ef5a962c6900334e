//! The PCI NE2000 (`ne2k_pci`): a Realtek RTL8029AS, 10EC:8029, class 0x020000 (Ethernet).
//!
//! BAR0 is a 32-byte I/O window holding the same ports as the ISA card ([`super::Ne2000`] serves both);
//! there is no memory BAR and no expansion ROM. Interrupt pin A goes through the PIIX3's PIRQ router.
//!
//! The NIC raises its interrupt from two threads: vCPUs (register writes, inside the PCI function's lock)
//! and the back-end's receive (outside it). So the INTx state is not kept in the function: [`PciIntx`] holds
//! the pending level and COMMAND.INTX_DISABLE, drives the PIRQ line, and the function copies the pending
//! level into STATUS.INTERRUPT when configuration space is read. Lock order: function → NIC state → INTx.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::{Model, Ne2000, Ne2kError, Ne2kState, NE2K_PORTS};
use crate::bus::BusDevice;
use crate::irq::IrqLine;
use crate::net::NetBackend;
use crate::pci::{BarKind, ConfigSpace, PciError, PciFunction, RegionId, SharedFunction};

/// Realtek's vendor ID.
pub const VENDOR_ID: u16 = 0x10ec;
/// RTL8029.
pub const DEVICE_ID: u16 = 0x8029;
/// Network controller, Ethernet.
pub const CLASS: u32 = 0x02_00_00;

#[derive(Default)]
struct IntxState {
    pending: bool,
    disabled: bool,
    driven: bool,
}

/// The function's INTx output as the NIC sees it. See the module documentation.
struct PciIntx {
    state: Mutex<IntxState>,
    line: Option<Arc<dyn IrqLine>>,
}

impl PciIntx {
    fn lock(&self) -> MutexGuard<'_, IntxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drives the line from the state, under its lock so that concurrent updates cannot reorder.
    fn drive(&self, st: &mut IntxState) {
        let level = st.pending && !st.disabled;
        if level != st.driven {
            st.driven = level;
            if let Some(line) = &self.line {
                line.set_level(level);
            }
        }
    }

    fn pending(&self) -> bool {
        self.lock().pending
    }

    fn set_disabled(&self, disabled: bool) {
        let mut st = self.lock();
        st.disabled = disabled;
        self.drive(&mut st);
    }
}

impl IrqLine for PciIntx {
    fn set_level(&self, high: bool) {
        let mut st = self.lock();
        st.pending = high;
        self.drive(&mut st);
    }
}

/// The configuration-space side the PCI root locks.
struct Ne2kPciFunction {
    config: ConfigSpace,
    nic: Arc<Ne2000>,
    intx: Arc<PciIntx>,
}

impl PciFunction for Ne2kPciFunction {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn config_read(&mut self, offset: usize, data: &mut [u8]) {
        let pending = self.intx.pending();
        self.config.set_interrupt_status(pending);
        self.config.read(offset, data);
    }

    fn config_write(&mut self, offset: usize, data: &[u8]) {
        self.write_config_space(offset, data);
        self.intx.set_disabled(self.config.intx_disabled());
    }

    fn bar_read(&mut self, region: RegionId, offset: u64, data: &mut [u8]) {
        match region {
            RegionId::Bar(0) => self.nic.read(offset, data),
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, region: RegionId, offset: u64, data: &[u8]) {
        if region == RegionId::Bar(0) {
            self.nic.write(offset, data);
        }
    }

    fn bar_read_repeated(&mut self, region: RegionId, offset: u64, width: usize, data: &mut [u8]) {
        match region {
            // The NIC moves a data-port string under one lock (ne2k-pci's `insl` of a whole frame).
            RegionId::Bar(0) => self.nic.read_repeated(offset, width, data),
            _ => data.fill(0xff),
        }
    }

    fn bar_write_repeated(&mut self, region: RegionId, offset: u64, width: usize, data: &[u8]) {
        if region == RegionId::Bar(0) {
            self.nic.write_repeated(offset, width, data);
        }
    }

    fn reset(&mut self) {
        self.config.reset();
        self.intx.set_disabled(self.config.intx_disabled());
        self.nic.reset();
    }
}

/// What a snapshot of the PCI NE2000 holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ne2kPciState {
    /// Configuration space.
    pub config: ConfigSpace,
    /// The NIC.
    pub nic: Ne2kState,
}

/// The PCI NE2000. See the module documentation.
pub struct Ne2kPci {
    function: Arc<Mutex<Ne2kPciFunction>>,
    nic: Arc<Ne2000>,
}

impl Ne2kPci {
    /// An RTL8029 with station address `mac` on `backend` (it attaches itself as the receiver), interrupting
    /// through `intx` (from [`crate::chipset::piix3::Piix3Handle::intx_line`] for its slot and pin 1;
    /// `None` leaves it without an interrupt).
    pub fn new(
        mac: [u8; 6],
        backend: Arc<dyn NetBackend>,
        intx: Option<Arc<dyn IrqLine>>,
    ) -> Result<Ne2kPci, PciError> {
        let mut config = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS, 0);
        config.add_bar(0, BarKind::Io, NE2K_PORTS)?;
        config.set_interrupt_pin(1)?;
        let intx = Arc::new(PciIntx {
            state: Mutex::new(IntxState::default()),
            line: intx,
        });
        let nic = Ne2000::with_model(Model::Rtl8029, mac, backend, intx.clone());
        let function = Arc::new(Mutex::new(Ne2kPciFunction {
            config,
            nic: nic.clone(),
            intx,
        }));
        Ok(Ne2kPci { function, nic })
    }

    fn lock(&self) -> MutexGuard<'_, Ne2kPciFunction> {
        self.function.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The function, for [`crate::pci::PciRoot::add`].
    pub fn function(&self) -> SharedFunction {
        self.function.clone()
    }

    /// The NIC (statistics, and the receiver the back-end was attached to).
    pub fn nic(&self) -> &Arc<Ne2000> {
        &self.nic
    }

    /// Platform reset: configuration space and NIC to power-on state.
    pub fn reset(&self) {
        self.lock().reset();
    }

    /// A snapshot.
    pub fn snapshot(&self) -> Ne2kPciState {
        let f = self.lock();
        Ne2kPciState {
            config: f.config.clone(),
            nic: f.nic.state(),
        }
    }

    /// Restores a snapshot. The caller refreshes the PCI root's mappings afterwards
    /// ([`crate::pci::PciRoot::refresh`]), since BAR0 may have moved.
    pub fn restore(&self, state: Ne2kPciState) -> Result<(), Ne2kError> {
        let mut f = self.lock();
        // INTX_DISABLE first, so that the NIC's restore drives the line through the restored gate.
        let old_config = std::mem::replace(&mut f.config, state.config);
        f.intx.set_disabled(f.config.intx_disabled());
        if let Err(e) = f.nic.restore(state.nic) {
            f.config = old_config;
            f.intx.set_disabled(f.config.intx_disabled());
            return Err(e);
        }
        Ok(())
    }
}
