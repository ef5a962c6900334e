//! BARs backed by host memory: how a function says "this BAR is RAM", and how the machine makes it so.
//!
//! A linear framebuffer is memory to the guest: drivers stream megabytes into it and read it back. Served as
//! trapped MMIO, every access is a VM exit, which on real hardware makes a full-screen redraw cost about a
//! million exits. A function whose BAR is plain memory therefore hands the root a [`BarMemory`] (its own
//! host mapping, kept alive by an `Arc`, and whether writes to it must be logged), and a machine that can map
//! host memory into the guest installs a [`GuestMemoryMapper`] on the root ([`super::PciRoot::set_memory_mapper`]).
//! The root then calls the mapper whenever such a BAR starts to decode, moves or stops decoding (COMMAND
//! memory decode toggled, BAR reprogrammed, platform reset), and the guest reaches the memory without exits.
//!
//! Writes that no longer pass through the device must still reach its change tracking: a mapper that logs
//! dirty pages (KVM's `KVM_MEM_LOG_DIRTY_PAGES`) also implements [`DirtySource`], and the device asks it for
//! the pages written since it last looked before it reads the memory.
//!
//! Without a mapper (the no-vCPU harness, unit tests) nothing changes: the BAR is trapped MMIO, served by
//! [`super::PciFunction::bar_read`]/[`super::PciFunction::bar_write`]. With a mapper the root keeps the
//! trapped bus mapping as well, underneath: the mapper's mapping takes precedence for guest accesses (KVM
//! looks up memory slots before it reports an MMIO exit), and the bus mapping keeps conflict detection
//! between BARs exactly as without a mapper and serves the BAR whenever the mapper refuses it (the guest put
//! it over RAM, the host cannot log dirty pages), so such a BAR still works, only slower.

use std::sync::Arc;

/// Host memory a BAR can be backed by: an anonymous mapping in this process (vm-memory's `MmapRegion`, the
/// same type that maps guest RAM, so its pointer and length are valid by construction for as long as it
/// lives).
pub type HostMemory = vm_memory::MmapRegion<()>;

/// One BAR's backing memory, as a function describes it in [`super::PciFunction::bar_memory`].
#[derive(Clone)]
pub struct BarMemory {
    memory: Arc<HostMemory>,
    log_dirty: bool,
}

impl std::fmt::Debug for BarMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarMemory")
            .field("host", &self.memory.as_ptr())
            .field("len", &self.len())
            .field("log_dirty", &self.log_dirty)
            .finish()
    }
}

impl BarMemory {
    /// `memory` backs the BAR; with `log_dirty` the mapper must record which pages the guest writes and
    /// report them through [`DirtySource`].
    pub fn new(memory: Arc<HostMemory>, log_dirty: bool) -> BarMemory {
        BarMemory { memory, log_dirty }
    }

    /// The mapping (clone the `Arc` to keep it alive while the guest can reach it).
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.memory
    }

    /// The host address of the first byte, for the ioctl that maps it into the guest.
    pub fn host_addr(&self) -> *mut u8 {
        self.memory.as_ptr()
    }

    /// Length in bytes (the BAR's size: the root backs a BAR only when the two are equal).
    pub fn len(&self) -> u64 {
        self.memory.size() as u64
    }

    /// Whether the mapping is empty (never, for memory a BAR decodes).
    pub fn is_empty(&self) -> bool {
        self.memory.size() == 0
    }

    /// Whether guest writes must be logged.
    pub fn log_dirty(&self) -> bool {
        self.log_dirty
    }

    /// Whether this is `memory` (the same mapping, not merely equal contents).
    pub fn is(&self, memory: &Arc<HostMemory>) -> bool {
        Arc::ptr_eq(&self.memory, memory)
    }
}

/// Why a mapper could not map a BAR; the root then keeps serving it as trapped MMIO.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct MapError(pub String);

/// Maps host memory into the guest-physical address space (KVM memory slots in production).
///
/// Called by the root with its own lock held, from whichever thread made the configuration write (a vCPU
/// thread, the event loop at reset): implementations must not call back into the root.
pub trait GuestMemoryMapper: Send + Sync {
    /// Makes `memory` appear at guest-physical `guest_addr` (page-aligned; the whole of `memory`).
    fn map(&self, guest_addr: u64, memory: &BarMemory) -> Result<(), MapError>;

    /// Removes the mapping [`GuestMemoryMapper::map`] made at `guest_addr`. A dirty-logging mapper keeps the
    /// pages written until now and reports them at the next [`DirtySource::take_dirty`].
    fn unmap(&self, guest_addr: u64, memory: &BarMemory);
}

/// Reports which parts of a device's host memory were written behind the device's back (by the guest,
/// through a mapping a [`GuestMemoryMapper`] made).
pub trait DirtySource: Send + Sync {
    /// Calls `dirty(offset, len)` for every range of `memory` written since the last call, and forgets them.
    /// Ranges are page-granular and may be reported more than once; an unknown `memory` reports nothing.
    fn take_dirty(&self, memory: &Arc<HostMemory>, dirty: &mut dyn FnMut(u64, u64));
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use vm_memory::VolatileMemory;

    use super::*;
    use crate::pci::config::{BarKind, ConfigSpace, COMMAND};
    use crate::pci::testing::{MapperCall, PciTestbed, RecordingMapper};
    use crate::pci::{PciAddress, PciFunction, RegionId};

    const RAM_LEN: u64 = 0x1_0000;

    /// A framebuffer-like function: BAR0 is 64 KiB of memory (served trapped through the same bytes), BAR1
    /// 16 I/O ports. `offered` is the memory BAR0 offers (normally its own, the wrong size in one test).
    struct RamBar {
        config: ConfigSpace,
        ram: Arc<HostMemory>,
        offered: Option<BarMemory>,
    }

    impl RamBar {
        fn new() -> Arc<Mutex<RamBar>> {
            let mut config = ConfigSpace::new(0x1234, 0x1111, 0x030000, 0);
            config
                .add_bar(0, BarKind::Memory32 { prefetchable: true }, RAM_LEN)
                .unwrap();
            config.add_bar(1, BarKind::Io, 16).unwrap();
            let ram = Arc::new(HostMemory::new(RAM_LEN as usize).unwrap());
            let offered = Some(BarMemory::new(ram.clone(), true));
            Arc::new(Mutex::new(RamBar {
                config,
                ram,
                offered,
            }))
        }
    }

    impl PciFunction for RamBar {
        fn config(&self) -> &ConfigSpace {
            &self.config
        }
        fn config_mut(&mut self) -> &mut ConfigSpace {
            &mut self.config
        }
        fn bar_read(&mut self, region: RegionId, offset: u64, data: &mut [u8]) {
            assert_eq!(region, RegionId::Bar(0), "only BAR0 is read in these tests");
            self.ram
                .get_slice(offset as usize, data.len())
                .unwrap()
                .copy_to(data);
        }
        fn bar_write(&mut self, region: RegionId, offset: u64, data: &[u8]) {
            assert_eq!(region, RegionId::Bar(0));
            self.ram
                .get_slice(offset as usize, data.len())
                .unwrap()
                .copy_from(data);
        }
        fn bar_memory(&self, region: RegionId) -> Option<BarMemory> {
            match region {
                RegionId::Bar(0) => self.offered.clone(),
                // The root must never ask about I/O BARs.
                other => panic!("bar_memory asked for {other:?}"),
            }
        }
    }

    fn map(addr: u64) -> MapperCall {
        MapperCall::Map {
            addr,
            len: RAM_LEN,
            log_dirty: true,
        }
    }

    fn unmap(addr: u64) -> MapperCall {
        MapperCall::Unmap { addr, len: RAM_LEN }
    }

    /// A testbed with a mapper and the RAM function at 00:05.0, BARs assigned the way SeaBIOS does it
    /// (sizing with decoding off, then addresses, then COMMAND).
    fn setup() -> (PciTestbed, Arc<RecordingMapper>, Arc<Mutex<RamBar>>) {
        let tb = PciTestbed::new();
        let mapper = RecordingMapper::new();
        tb.root.set_memory_mapper(mapper.clone());
        let f = RamBar::new();
        tb.add(5, 0, f.clone());
        tb.cfg_write(5, 0, 0x10, 4, 0xffff_ffff);
        assert_eq!(tb.cfg_read(5, 0, 0x10, 4), 0xffff_0008);
        tb.cfg_write(5, 0, 0x10, 4, 0xfd00_0000);
        tb.cfg_write(5, 0, 0x14, 4, 0xc000);
        assert!(mapper.take_calls().is_empty(), "nothing decodes yet");
        tb.cfg_write(5, 0, COMMAND as u8, 2, 0x0003);
        (tb, mapper, f)
    }

    #[test]
    fn enabling_moving_disabling_and_reset_map_and_unmap_the_memory() {
        let (tb, mapper, f) = setup();
        assert_eq!(mapper.take_calls(), vec![map(0xfd00_0000)]);
        // The mapping is the function's own memory: a guest store through it is what a trapped read sees.
        assert!(mapper.guest_write(0xfd00_0010, &[1, 2, 3, 4]));
        assert_eq!(tb.mmio_read(0xfd00_0010, 4), 0x0403_0201);
        // The bus mapping stays underneath.
        assert!(tb.mmio.is_claimed(0xfd00_0000));
        // Moving the BAR: the old mapping goes before the new one comes.
        tb.cfg_write(5, 0, 0x10, 4, 0xfe00_0000);
        assert_eq!(
            mapper.take_calls(),
            vec![unmap(0xfd00_0000), map(0xfe00_0000)]
        );
        assert_eq!(mapper.mapped(), vec![(0xfe00_0000, RAM_LEN)]);
        // I/O decoding off only: the memory BAR is untouched.
        tb.cfg_write(5, 0, COMMAND as u8, 2, 0x0002);
        assert!(mapper.take_calls().is_empty());
        // Memory decoding off, then on again.
        tb.cfg_write(5, 0, COMMAND as u8, 2, 0x0000);
        assert_eq!(mapper.take_calls(), vec![unmap(0xfe00_0000)]);
        assert!(mapper.mapped().is_empty());
        tb.cfg_write(5, 0, COMMAND as u8, 2, 0x0002);
        assert_eq!(mapper.take_calls(), vec![map(0xfe00_0000)]);
        // Sizing with decoding on: the all-ones pattern reads back as the BAR's top-most position, where it
        // decodes for that moment (as on hardware); the mapper follows it there and back.
        tb.cfg_write(5, 0, 0x10, 4, 0xffff_ffff);
        assert_eq!(
            mapper.take_calls(),
            vec![unmap(0xfe00_0000), map(0xffff_0000)]
        );
        tb.cfg_write(5, 0, 0x10, 4, 0xfe00_0000);
        assert_eq!(
            mapper.take_calls(),
            vec![unmap(0xffff_0000), map(0xfe00_0000)]
        );
        // Platform reset: the BAR stops decoding.
        tb.host.reset();
        assert_eq!(mapper.take_calls(), vec![unmap(0xfe00_0000)]);
        assert!(mapper.mapped().is_empty());
        assert!(!tb.mmio.is_claimed(0xfe00_0000));
        // Pages written through the mapping before it went are still reported.
        let mut dirty = Vec::new();
        let ram = f.lock().unwrap().ram.clone();
        mapper.take_dirty(&ram, &mut |o, l| dirty.push((o, l)));
        assert_eq!(dirty, vec![(0, 4096)]);
    }

    #[test]
    fn a_refused_mapping_stays_trapped_and_is_retried_when_the_bar_moves() {
        let tb = PciTestbed::new();
        let mapper = RecordingMapper::new();
        mapper.refuse(true);
        tb.root.set_memory_mapper(mapper.clone());
        let f = RamBar::new();
        tb.add(5, 0, f.clone());
        tb.cfg_write(5, 0, 0x10, 4, 0xfd00_0000);
        tb.cfg_write(5, 0, COMMAND as u8, 2, 0x0002);
        assert_eq!(mapper.take_calls(), vec![map(0xfd00_0000)]);
        assert!(mapper.mapped().is_empty());
        // Trapped: the guest reaches the memory through the function.
        assert!(!mapper.guest_write(0xfd00_0100, &[9]));
        tb.mmio_write(0xfd00_0100, 1, 0x5a);
        let mut b = [0u8];
        f.lock()
            .unwrap()
            .ram
            .get_slice(0x100, 1)
            .unwrap()
            .copy_to(&mut b[..]);
        assert_eq!(b[0], 0x5a);
        // Nothing to take back when it goes.
        tb.cfg_write(5, 0, 0x10, 4, 0xfc00_0000);
        assert_eq!(mapper.take_calls(), vec![map(0xfc00_0000)]);
        mapper.refuse(false);
        tb.cfg_write(5, 0, 0x10, 4, 0xfd00_0000);
        assert_eq!(mapper.take_calls(), vec![map(0xfd00_0000)]);
        let mut d = [0u8];
        assert!(mapper.guest_read(0xfd00_0100, &mut d));
        assert_eq!(d[0], 0x5a);
    }

    #[test]
    fn a_mapper_installed_late_gets_the_windows_already_decoded_and_a_new_one_takes_over() {
        let tb = PciTestbed::new();
        let f = RamBar::new();
        tb.add(5, 0, f);
        tb.cfg_write(5, 0, 0x10, 4, 0xfd00_0000);
        tb.cfg_write(5, 0, COMMAND as u8, 2, 0x0002);
        let first = RecordingMapper::new();
        tb.root.set_memory_mapper(first.clone());
        assert_eq!(first.take_calls(), vec![map(0xfd00_0000)]);
        let second = RecordingMapper::new();
        tb.root.set_memory_mapper(second.clone());
        assert_eq!(first.take_calls(), vec![unmap(0xfd00_0000)]);
        assert_eq!(second.take_calls(), vec![map(0xfd00_0000)]);
    }

    #[test]
    fn memory_of_the_wrong_size_or_a_bar_the_bus_refuses_is_not_mapped() {
        let (tb, mapper, f) = setup();
        mapper.take_calls();
        // A second function whose BAR collides with the first: refused by the bus, so not mapped either.
        let other = RamBar::new();
        tb.add(6, 0, other.clone());
        tb.cfg_write(6, 0, 0x10, 4, 0xfd00_0000);
        tb.cfg_write(6, 0, COMMAND as u8, 2, 0x0002);
        assert!(mapper.take_calls().is_empty());
        // The first one moves away: the second one decodes, and is mapped, at the address it asked for.
        tb.cfg_write(5, 0, 0x10, 4, 0xfe00_0000);
        assert_eq!(
            mapper.take_calls(),
            vec![unmap(0xfd00_0000), map(0xfd00_0000), map(0xfe00_0000)]
        );
        // A function offering memory smaller than its BAR stays trapped.
        let short = Arc::new(HostMemory::new(4096).unwrap());
        f.lock().unwrap().offered = Some(BarMemory::new(short, true));
        tb.cfg_write(5, 0, 0x10, 4, 0xfc00_0000);
        assert_eq!(mapper.take_calls(), vec![unmap(0xfe00_0000)]);
        assert!(tb.mmio.is_claimed(0xfc00_0000));
        let a = PciAddress::new(0, 5, 0).unwrap();
        assert_eq!(tb.root.mapped_regions(a).len(), 2);
    }
}
