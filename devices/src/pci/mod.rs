//! The PCI core: configuration space, functions, the root bus and configuration mechanism #1.
//!
//! A PC's PCI bus 0 holds up to 32 devices of up to 8 functions each. Software finds and configures them
//! through a 256-byte configuration space per function, reached on a PC through two I/O ports
//! (configuration mechanism #1, [`host::PciHost`]): a dword written to 0xCF8 selects bus, device, function
//! and register, and 0xCFC-0xCFF then read or write that register's bytes.
//!
//! The pieces:
//! - [`config::ConfigSpace`]: the 256 bytes of one function plus per-byte write masks and write-1-to-clear
//!   masks, the standard header fields, up to six BARs and the expansion ROM BAR. Every standard behaviour
//!   (BAR sizing, read-only IDs, W1C status bits, the command register) follows from those masks, so a
//!   device only declares what it has.
//! - [`PciFunction`]: what one function is to the bus. It is a plain state machine (`&mut self`, no locks);
//!   the bus holds it as a [`SharedFunction`] (`Arc<Mutex<dyn PciFunction>>`) and locks it for each access.
//!   The default methods implement a standard function on top of its `ConfigSpace`; a device overrides
//!   `config_write` for its own registers and `bar_read`/`bar_write` for what its BARs decode.
//! - [`root::PciRoot`]: owns the functions by address and maps their decoded windows (BARs, ROM BAR, and
//!   device-specific windows such as the PIIX4 power-management block) onto the port-I/O and MMIO buses
//!   whenever the guest reprograms them.
//! - [`host::PciHost`]: the 0xCF8-0xCFF ports.
//! - [`bar_memory`]: BARs backed by host memory, which a machine with a [`GuestMemoryMapper`] maps into the
//!   guest as RAM (with dirty-page logging) instead of trapping every access.
//!
//! PCI INTx lines do not appear here: on this chipset they go through the PIIX3's PIRQ router
//! ([`crate::chipset::piix3`]), which hands each function an [`IrqLine`].

pub mod bar_memory;
pub mod config;
pub mod host;
pub mod root;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::irq::IrqLine;
pub use bar_memory::{BarMemory, DirtySource, GuestMemoryMapper, HostMemory, MapError};
pub use config::{BarKind, ConfigSpace};
pub use host::PciHost;
pub use root::PciRoot;

/// Why a PCI function, BAR or address was not accepted. These all come from configuration or wiring,
/// never from a guest access (guest accesses cannot fail).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PciError {
    /// A BAR index other than 0-5.
    #[error("BAR index {0} out of range (0-5)")]
    BarIndex(usize),
    /// A BAR size that is not a power of two in the range the BAR kind allows.
    #[error("invalid size {size:#x} for BAR {index}")]
    BarSize { index: usize, size: u64 },
    /// An expansion ROM size that is zero or larger than 16 MiB.
    #[error("invalid expansion ROM size {0:#x}")]
    RomSize(u64),
    /// Device above 31 or function above 7.
    #[error("invalid PCI address: device {device}, function {function}")]
    Address { device: u8, function: u8 },
    /// Only bus 0 exists (there are no PCI-PCI bridges).
    #[error("PCI bus {0} does not exist")]
    Bus(u8),
    /// A function is already registered at this address.
    #[error("PCI address {0} is already in use")]
    InUse(PciAddress),
    /// An interrupt pin other than 1 (INTA#) to 4 (INTD#); 0 means "no interrupt" where allowed.
    #[error("invalid interrupt pin {0}")]
    Pin(u8),
}

/// A bus/device/function triple, valid by construction (device 0-31, function 0-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PciAddress {
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// The address `bus:device.function`.
    pub fn new(bus: u8, device: u8, function: u8) -> Result<Self, PciError> {
        if device > 31 || function > 7 {
            return Err(PciError::Address { device, function });
        }
        Ok(PciAddress {
            bus,
            device,
            function,
        })
    }

    /// The bus number.
    pub fn bus(&self) -> u8 {
        self.bus
    }

    /// The device (slot) number, 0-31.
    pub fn device(&self) -> u8 {
        self.device
    }

    /// The function number, 0-7.
    pub fn function(&self) -> u8 {
        self.function
    }

    /// `device << 3 | function`, the byte the PCI specifications call devfn.
    pub fn devfn(&self) -> u8 {
        (self.device << 3) | self.function
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Which address space a window lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AddressSpace {
    /// x86 port I/O (16-bit addresses).
    Io,
    /// Memory-mapped I/O (32-bit addresses for the BARs modelled here).
    Memory,
}

/// Names one window of a function, passed back to [`PciFunction::bar_read`]/[`PciFunction::bar_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RegionId {
    /// BAR 0-5.
    Bar(u8),
    /// The expansion ROM BAR at 0x30.
    Rom,
    /// A window the device decodes through its own registers rather than a BAR (e.g. the PIIX4 PM block
    /// at PMBA). The number is the device's own.
    Device(u8),
}

/// A window a function currently decodes: what the root inserts on a bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Which window.
    pub id: RegionId,
    /// Port I/O or memory.
    pub space: AddressSpace,
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// Widest access the function accepts; wider ones are refused by the bus.
    pub max_width: usize,
}

impl Region {
    /// Whether the window can be decoded at all: non-empty, not at address 0 (which firmware and QEMU
    /// treat as "not assigned"; a BAR is 0 at reset), and inside the 64 KiB port space or the 4 GiB
    /// memory space that the 32-bit BARs modelled here can reach. A guest sizing a BAR while decoding is
    /// on writes all ones; that address runs past the end of the space and is simply not decoded.
    pub fn is_decodable(&self) -> bool {
        let limit = match self.space {
            AddressSpace::Io => 0x1_0000,
            AddressSpace::Memory => 0x1_0000_0000,
        };
        self.len > 0
            && self.base != 0
            && self
                .base
                .checked_add(self.len)
                .is_some_and(|end| end <= limit)
    }
}

/// A function as the bus shares it between the configuration ports and its BAR windows.
pub type SharedFunction = Arc<Mutex<dyn PciFunction>>;

/// One PCI function: a plain state machine the root locks for every access.
///
/// The provided methods make a standard function out of the [`ConfigSpace`] alone; a device overrides
/// what it needs. Methods are called with the function's lock held: they must not call into the PCI root
/// (they may drive their interrupt line: the lock order is function → PIRQ router → IRQ mux → sink).
pub trait PciFunction: Send {
    /// The function's configuration space.
    fn config(&self) -> &ConfigSpace;

    /// The function's configuration space, mutably.
    fn config_mut(&mut self) -> &mut ConfigSpace;

    /// Reads `data.len()` (1, 2 or 4) bytes of configuration space at `offset` (0-255). Override to
    /// compute registers on the fly; the default reads the stored bytes.
    fn config_read(&mut self, offset: usize, data: &mut [u8]) {
        self.config().read(offset, data);
    }

    /// Writes configuration bytes at `offset`. Override for device-specific registers, calling
    /// [`PciFunction::write_config_space`] for the standard part. After every write the root asks
    /// [`PciFunction::regions`] again and remaps what changed.
    fn config_write(&mut self, offset: usize, data: &[u8]) {
        self.write_config_space(offset, data);
    }

    /// The standard write: applies the masks, then re-drives the INTx line if the write changed
    /// COMMAND.INTX_DISABLE. Not meant to be overridden.
    fn write_config_space(&mut self, offset: usize, data: &[u8]) {
        let before = self.config().intx_level();
        self.config_mut().write(offset, data);
        let after = self.config().intx_level();
        if before != after {
            if let Some(line) = self.intx_line() {
                line.set_level(after);
            }
        }
    }

    /// The windows the function decodes now. The default lists the BARs and the ROM BAR that are
    /// programmed and enabled in COMMAND. Override to add [`RegionId::Device`] windows.
    fn regions(&self) -> Vec<Region> {
        self.config().decoded_regions()
    }

    /// A read of `data.len()` bytes at `offset` inside window `region`. The default floats high.
    fn bar_read(&mut self, region: RegionId, offset: u64, data: &mut [u8]) {
        let _ = (region, offset);
        data.fill(0xff);
    }

    /// A write inside window `region`. The default drops it.
    fn bar_write(&mut self, region: RegionId, offset: u64, data: &[u8]) {
        let _ = (region, offset, data);
    }

    /// String input (`rep insb/insw/insd`) from an I/O window: `data.len() / width` reads of `width` bytes
    /// at `offset`, in order, all under the one lock the root took. The default reads element by element
    /// through [`PciFunction::bar_read`]; a function with a data port overrides it to move the whole string
    /// at once (see [`crate::bus::BusDevice::read_repeated`]).
    fn bar_read_repeated(&mut self, region: RegionId, offset: u64, width: usize, data: &mut [u8]) {
        for chunk in data.chunks_exact_mut(width.max(1)) {
            self.bar_read(region, offset, chunk);
        }
    }

    /// String output (`rep outsb/outsw/outsd`) to an I/O window, the counterpart of
    /// [`PciFunction::bar_read_repeated`].
    fn bar_write_repeated(&mut self, region: RegionId, offset: u64, width: usize, data: &[u8]) {
        for chunk in data.chunks_exact(width.max(1)) {
            self.bar_write(region, offset, chunk);
        }
    }

    /// The host memory behind memory window `region`, if the window is plain memory that the machine may
    /// map into the guest as RAM (see [`bar_memory`]). Must be exactly the window's size. The default: none,
    /// every access goes through [`PciFunction::bar_read`]/[`PciFunction::bar_write`]. A function that
    /// returns memory still serves those two for the same bytes: they are used whenever the machine has no
    /// mapper or its mapper refuses the window.
    fn bar_memory(&self, region: RegionId) -> Option<BarMemory> {
        let _ = region;
        None
    }

    /// A platform reset: back to power-on state. The default resets the configuration space only, and
    /// drops the INTx line.
    fn reset(&mut self) {
        self.config_mut().reset();
        if let Some(line) = self.intx_line() {
            line.set_level(false);
        }
    }

    /// The function's INTx output, if it has one (from [`crate::chipset::piix3::Piix3Handle::intx_line`]).
    fn intx_line(&self) -> Option<&dyn IrqLine> {
        None
    }

    /// Sets the function's interrupt condition: records it in STATUS.INTERRUPT (bit 3) and drives the
    /// INTx line high while it is pending and COMMAND.INTX_DISABLE (bit 10) is clear, as PCI 2.3 requires.
    /// Not meant to be overridden.
    fn set_intx(&mut self, pending: bool) {
        self.config_mut().set_interrupt_status(pending);
        let level = self.config().intx_level();
        if let Some(line) = self.intx_line() {
            line.set_level(level);
        }
    }
}
