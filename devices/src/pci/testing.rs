//! A ready-made PCI machine for device tests: port and MMIO buses, the chipset on them, recording
//! interrupt and system sinks and a fake clock, plus helpers that perform configuration cycles through
//! ports 0xCF8/0xCFC exactly as firmware does.
//!
//! [`RecordingMapper`] stands in for the KVM memory-slot mapper of RAM-backed BARs: it records the root's
//! calls, and lets a test write to a mapped BAR the way a vCPU does once the BAR is guest RAM (straight into
//! the host memory, logging the page, with no device involved).
//!
//! Compiled for this crate's tests and, for other crates' tests, with the `test-util` feature.
//! It panics on set-up failures (it is test code).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use vm_memory::VolatileMemory;

use crate::bus::{le_value, put_le_value, Bus};
use crate::chipset::piix3::Piix3Handle;
use crate::chipset::piix4_pm::Piix4PmHandle;
use crate::chipset::{self, PmWiring};
use crate::clock::FakeClock;
use crate::irq::{IrqLine, IrqMux, RecordingGsi};
use crate::system::RecordingSystem;
use crate::timer::TimerKick;

use super::bar_memory::{BarMemory, DirtySource, GuestMemoryMapper, HostMemory, MapError};
use super::{PciAddress, PciHost, PciRoot, SharedFunction};

/// See the module documentation.
pub struct PciTestbed {
    /// The port bus (0xCF8 host ports, fixed chipset ports, I/O BARs).
    pub pio: Arc<Bus>,
    /// The MMIO bus (memory BARs, ROM BARs).
    pub mmio: Arc<Bus>,
    /// GSI levels as the in-kernel irqchip would see them.
    pub gsi: Arc<RecordingGsi>,
    /// The IRQ mux in front of `gsi` (for ISA lines in tests: `mux.line(n)`).
    pub mux: Arc<IrqMux>,
    /// Reset and power-off requests.
    pub system: Arc<RecordingSystem>,
    /// Machine time.
    pub clock: Arc<FakeClock>,
    /// PCI bus 0.
    pub root: Arc<PciRoot>,
    /// The configuration ports.
    pub host: Arc<PciHost>,
    /// The PIIX3 (INTx lines).
    pub piix3: Piix3Handle,
    /// The PM function, with [`PciTestbed::with_pm`].
    pub pm: Option<Piix4PmHandle>,
}

impl Default for PciTestbed {
    fn default() -> Self {
        Self::new()
    }
}

impl PciTestbed {
    /// i440FX and PIIX3, no PM function.
    pub fn new() -> Self {
        Self::build(false)
    }

    /// i440FX, PIIX3 and the PIIX4 PM function at 00:01.3.
    pub fn with_pm() -> Self {
        Self::build(true)
    }

    fn build(pm: bool) -> Self {
        let pio = Arc::new(Bus::new("pio"));
        let mmio = Arc::new(Bus::new("mmio"));
        let gsi = RecordingGsi::new();
        let mux = IrqMux::new(gsi.clone());
        let system = Arc::new(RecordingSystem::new());
        let clock = Arc::new(FakeClock::new());
        let wiring = pm.then(|| PmWiring {
            clock: clock.clone(),
            kick: TimerKick::none(),
        });
        let cs = chipset::build(pio.clone(), mmio.clone(), &mux, system.clone(), wiring)
            .expect("building the test chipset");
        PciTestbed {
            pio,
            mmio,
            gsi,
            mux,
            system,
            clock,
            root: cs.root,
            host: cs.host,
            piix3: cs.piix3,
            pm: cs.pm,
        }
    }

    /// Adds `function` at 00:`device`.`function_number` and returns its address.
    pub fn add(&self, device: u8, function_number: u8, function: SharedFunction) -> PciAddress {
        let address = PciAddress::new(0, device, function_number).expect("valid test address");
        self.root
            .add(address, function)
            .expect("adding a test function");
        address
    }

    /// The INTx line of pin `pin` in slot `slot`.
    pub fn intx_line(&self, slot: u8, pin: u8) -> Arc<dyn IrqLine> {
        self.piix3.intx_line(slot, pin).expect("valid slot and pin")
    }

    /// Routes PIRQA-D to IRQs 10, 10, 11, 11 as SeaBIOS does.
    pub fn route_pirqs_like_seabios(&self) {
        for (n, irq) in [10u32, 10, 11, 11].into_iter().enumerate() {
            self.cfg_write(1, 0, 0x60 + n as u8, 1, irq);
        }
    }

    /// An `IN` of `width` bytes.
    pub fn pio_read(&self, port: u64, width: usize) -> u32 {
        let mut d = vec![0u8; width];
        self.pio.read(port, &mut d);
        le_value(&d) as u32
    }

    /// An `OUT` of `width` bytes.
    pub fn pio_write(&self, port: u64, width: usize, value: u32) {
        let mut d = vec![0u8; width];
        put_le_value(&mut d, u64::from(value));
        self.pio.write(port, &d);
    }

    /// A memory read of `width` bytes.
    pub fn mmio_read(&self, addr: u64, width: usize) -> u64 {
        let mut d = vec![0u8; width];
        self.mmio.read(addr, &mut d);
        le_value(&d)
    }

    /// A memory write of `width` bytes.
    pub fn mmio_write(&self, addr: u64, width: usize, value: u64) {
        let mut d = vec![0u8; width];
        put_le_value(&mut d, value);
        self.mmio.write(addr, &d);
    }

    fn select(&self, device: u8, function: u8, offset: u8) {
        let a = 0x8000_0000
            | u32::from(device & 0x1f) << 11
            | u32::from(function & 7) << 8
            | u32::from(offset & 0xfc);
        self.pio_write(0xcf8, 4, a);
    }

    /// A configuration read of bus 0, as firmware does it: CONFIG_ADDRESS, then 0xCFC + (offset & 3).
    pub fn cfg_read(&self, device: u8, function: u8, offset: u8, width: usize) -> u32 {
        self.select(device, function, offset);
        self.pio_read(0xcfc + u64::from(offset & 3), width)
    }

    /// A configuration write of bus 0.
    pub fn cfg_write(&self, device: u8, function: u8, offset: u8, width: usize, value: u32) {
        self.select(device, function, offset);
        self.pio_write(0xcfc + u64::from(offset & 3), width, value);
    }
}

/// A call the root made on a [`RecordingMapper`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapperCall {
    /// `map(addr, memory)` of `len` bytes.
    Map {
        /// Guest-physical address.
        addr: u64,
        /// Bytes mapped.
        len: u64,
        /// Whether the function asked for dirty logging.
        log_dirty: bool,
    },
    /// `unmap(addr, memory)` of `len` bytes.
    Unmap {
        /// Guest-physical address.
        addr: u64,
        /// Bytes unmapped.
        len: u64,
    },
}

#[derive(Default)]
struct MapperState {
    calls: Vec<MapperCall>,
    mapped: Vec<(u64, BarMemory)>,
    /// Pages written through a mapping and not yet taken, by memory (identity) and page index.
    dirty: Vec<(Arc<HostMemory>, BTreeSet<u64>)>,
    refuse: bool,
}

/// A [`GuestMemoryMapper`] and [`DirtySource`] that keeps its "memory slots" in a list, as KVM does: it
/// refuses a mapping that overlaps another, and keeps the pages written through a mapping that goes away
/// until they are taken. See the module documentation.
#[derive(Default)]
pub struct RecordingMapper {
    state: Mutex<MapperState>,
}

/// The page size the recording mapper logs in.
pub const PAGE: u64 = 4096;

impl RecordingMapper {
    /// A mapper with nothing mapped.
    pub fn new() -> Arc<RecordingMapper> {
        Arc::new(RecordingMapper::default())
    }

    fn lock(&self) -> MutexGuard<'_, MapperState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calls since the last `take_calls`.
    pub fn take_calls(&self) -> Vec<MapperCall> {
        std::mem::take(&mut self.lock().calls)
    }

    /// From now on refuse (`true`) or accept new mappings.
    pub fn refuse(&self, refuse: bool) {
        self.lock().refuse = refuse;
    }

    /// The guest-physical ranges mapped now, as (address, length).
    pub fn mapped(&self) -> Vec<(u64, u64)> {
        self.lock()
            .mapped
            .iter()
            .map(|(a, m)| (*a, m.len()))
            .collect()
    }

    /// A vCPU store of `data` at guest-physical `addr`, if a mapping covers all of it: written straight
    /// into the host memory, the pages logged when the mapping logs dirty pages. Returns whether it hit.
    pub fn guest_write(&self, addr: u64, data: &[u8]) -> bool {
        let mut st = self.lock();
        let Some((base, memory)) = st
            .mapped
            .iter()
            .find(|(base, m)| addr >= *base && addr + data.len() as u64 <= *base + m.len())
            .cloned()
        else {
            return false;
        };
        let offset = addr - base;
        memory
            .memory()
            .get_slice(offset as usize, data.len())
            .expect("inside the mapping")
            .copy_from(data);
        if memory.log_dirty() && !data.is_empty() {
            let pages = offset / PAGE..=(offset + data.len() as u64 - 1) / PAGE;
            let i = match st.dirty.iter().position(|(m, _)| memory.is(m)) {
                Some(i) => i,
                None => {
                    st.dirty
                        .push((Arc::clone(memory.memory()), BTreeSet::new()));
                    st.dirty.len() - 1
                }
            };
            st.dirty[i].1.extend(pages);
        }
        true
    }

    /// A vCPU load of `data.len()` bytes at `addr`, if a mapping covers them.
    pub fn guest_read(&self, addr: u64, data: &mut [u8]) -> bool {
        let st = self.lock();
        let Some((base, memory)) = st
            .mapped
            .iter()
            .find(|(base, m)| addr >= *base && addr + data.len() as u64 <= *base + m.len())
        else {
            return false;
        };
        memory
            .memory()
            .get_slice((addr - base) as usize, data.len())
            .expect("inside the mapping")
            .copy_to(data);
        true
    }
}

impl GuestMemoryMapper for RecordingMapper {
    fn map(&self, guest_addr: u64, memory: &BarMemory) -> Result<(), MapError> {
        let mut st = self.lock();
        st.calls.push(MapperCall::Map {
            addr: guest_addr,
            len: memory.len(),
            log_dirty: memory.log_dirty(),
        });
        if st.refuse {
            return Err(MapError("refused by the test".into()));
        }
        let end = guest_addr + memory.len();
        if st
            .mapped
            .iter()
            .any(|(a, m)| guest_addr < a + m.len() && *a < end)
        {
            return Err(MapError(format!("{guest_addr:#x} overlaps a mapping")));
        }
        st.mapped.push((guest_addr, memory.clone()));
        Ok(())
    }

    fn unmap(&self, guest_addr: u64, memory: &BarMemory) {
        let mut st = self.lock();
        st.calls.push(MapperCall::Unmap {
            addr: guest_addr,
            len: memory.len(),
        });
        st.mapped
            .retain(|(a, m)| !(*a == guest_addr && m.is(memory.memory())));
    }
}

impl DirtySource for RecordingMapper {
    fn take_dirty(&self, memory: &Arc<HostMemory>, dirty: &mut dyn FnMut(u64, u64)) {
        let pages = {
            let mut st = self.lock();
            match st.dirty.iter_mut().find(|(m, _)| Arc::ptr_eq(m, memory)) {
                Some((_, pages)) => std::mem::take(pages),
                None => return,
            }
        };
        for page in pages {
            dirty(page * PAGE, PAGE);
        }
    }
}
