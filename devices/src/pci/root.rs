//! PCI bus 0: the functions by address, and the mapping of their windows onto the buses.
//!
//! On hardware a function decodes a BAR the moment the BAR holds an address and the matching COMMAND bit
//! is set. Here the root re-asks the function for its decoded windows ([`super::PciFunction::regions`]) after
//! every configuration write to it and brings the port-I/O and MMIO [`Bus`]es in line: windows that moved
//! or were disabled are removed, new ones inserted with an adapter that forwards accesses to
//! [`super::PciFunction::bar_read`]/[`super::PciFunction::bar_write`] under the function's lock.
//!
//! A guest may choose an address that collides with another device (a fixed ISA port range, another
//! BAR). Hardware would then have two devices answering; here the insertion is refused, a rate-limited
//! warning is logged and the window stays unmapped. The root remembers it and tries again whenever some
//! other window is removed, so a guest that resolves the conflict by moving the other BAR gets both.
//!
//! **Expansion ROMs.** A function added with [`PciRoot::add_with_rom`] gets a ROM BAR sized for the image
//! (a power of two of at least 2 KiB) and, while the guest enables it, the root serves the image itself,
//! read-only, without locking the function. The image is not part of the function's state (it is
//! configuration, and can be large). Reads inside the window but past the image return 0xFF, as an
//! erased flash part would; SeaBIOS only reads as far as the ROM header's size field says.
//!
//! **RAM-backed BARs.** With a [`GuestMemoryMapper`] installed ([`PciRoot::set_memory_mapper`]), a memory
//! window whose function offers [`super::PciFunction::bar_memory`] of exactly the window's size is also
//! handed to the mapper each time it goes on the bus, and taken back (before it leaves the bus) each time it
//! moves or stops decoding. The bus mapping stays underneath (see [`super::bar_memory`] for why), so a
//! window the bus refuses is not mapped either, and one the mapper refuses still works, trapped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::bus::{Bus, BusDevice};

use super::bar_memory::{BarMemory, GuestMemoryMapper};
use super::{AddressSpace, PciAddress, PciError, Region, RegionId, SharedFunction};

/// Guest-physical granularity a mapper works in: a backed window must start on such a boundary.
const PAGE_SIZE: u64 = 4096;

struct Slot {
    address: PciAddress,
    function: SharedFunction,
    rom: Option<Arc<[u8]>>,
    /// What the function last said it decodes.
    wanted: Vec<Region>,
    /// The subset of `wanted` that is on a bus.
    mapped: Vec<Region>,
    /// The subset of `mapped` the mapper also backs with host memory, with that memory.
    backed: Vec<(Region, BarMemory)>,
}

/// Bus 0 and its functions. See the module documentation.
pub struct PciRoot {
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    /// devfn → slot. Held across a configuration write and the remapping that follows, so that two
    /// vCPUs reprogramming BARs cannot interleave their bus updates.
    slots: Mutex<BTreeMap<u8, Slot>>,
    /// Maps RAM-backed windows into the guest; `None` keeps every window trapped. Locked after `slots`.
    mapper: Mutex<Option<Arc<dyn GuestMemoryMapper>>>,
}

/// Forwards a window's accesses to its function.
struct WindowAdapter {
    function: SharedFunction,
    id: RegionId,
}

impl BusDevice for WindowAdapter {
    fn read(&self, offset: u64, data: &mut [u8]) {
        let mut f = self.function.lock().unwrap_or_else(|e| e.into_inner());
        f.bar_read(self.id, offset, data);
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let mut f = self.function.lock().unwrap_or_else(|e| e.into_inner());
        f.bar_write(self.id, offset, data);
    }

    // A string access (one `rep ins`/`rep outs` exit) takes the function's lock once, not once per element.
    fn read_repeated(&self, offset: u64, width: usize, data: &mut [u8]) {
        let mut f = self.function.lock().unwrap_or_else(|e| e.into_inner());
        f.bar_read_repeated(self.id, offset, width, data);
    }

    fn write_repeated(&self, offset: u64, width: usize, data: &[u8]) {
        let mut f = self.function.lock().unwrap_or_else(|e| e.into_inner());
        f.bar_write_repeated(self.id, offset, width, data);
    }
}

/// Serves an expansion ROM image read-only.
struct RomAdapter {
    image: Arc<[u8]>,
}

impl BusDevice for RomAdapter {
    fn read(&self, offset: u64, data: &mut [u8]) {
        for (i, d) in data.iter_mut().enumerate() {
            *d = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| self.image.get(o))
                .copied()
                .unwrap_or(0xff);
        }
    }

    fn write(&self, offset: u64, _data: &[u8]) {
        crate::rate_limited!(
            log::Level::Warn,
            "pci: write to expansion ROM at offset {:#x} ignored",
            offset
        );
    }
}

impl PciRoot {
    /// An empty bus 0 whose windows go on `pio` and `mmio`.
    pub fn new(pio: Arc<Bus>, mmio: Arc<Bus>) -> Arc<Self> {
        Arc::new(PciRoot {
            pio,
            mmio,
            slots: Mutex::new(BTreeMap::new()),
            mapper: Mutex::new(None),
        })
    }

    /// Installs the mapper that backs RAM-like windows with host memory (replacing any earlier one, whose
    /// mappings are taken back first), and hands it every such window already on the bus.
    pub fn set_memory_mapper(&self, mapper: Arc<dyn GuestMemoryMapper>) {
        let mut slots = self.slots();
        for slot in slots.values_mut() {
            self.unback_all(slot);
        }
        *self.mapper.lock().unwrap_or_else(|e| e.into_inner()) = Some(mapper);
        for slot in slots.values_mut() {
            for region in slot.mapped.clone() {
                self.back(slot, region);
            }
        }
    }

    fn mapper(&self) -> Option<Arc<dyn GuestMemoryMapper>> {
        self.mapper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<u8, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bus(&self, space: AddressSpace) -> &Bus {
        match space {
            AddressSpace::Io => &self.pio,
            AddressSpace::Memory => &self.mmio,
        }
    }

    /// Puts `function` at `address` (bus 0 only). Windows it already decodes are mapped at once.
    pub fn add(&self, address: PciAddress, function: SharedFunction) -> Result<(), PciError> {
        self.insert(address, function, None)
    }

    /// Like [`PciRoot::add`], and declares the function's ROM BAR to serve `rom` (at most 16 MiB).
    pub fn add_with_rom(
        &self,
        address: PciAddress,
        function: SharedFunction,
        rom: Vec<u8>,
    ) -> Result<(), PciError> {
        function
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config_mut()
            .set_rom_bar(rom.len() as u64)?;
        self.insert(address, function, Some(rom.into()))
    }

    fn insert(
        &self,
        address: PciAddress,
        function: SharedFunction,
        rom: Option<Arc<[u8]>>,
    ) -> Result<(), PciError> {
        if address.bus() != 0 {
            return Err(PciError::Bus(address.bus()));
        }
        let mut slots = self.slots();
        if slots.contains_key(&address.devfn()) {
            return Err(PciError::InUse(address));
        }
        let wanted = function.lock().unwrap_or_else(|e| e.into_inner()).regions();
        let mut slot = Slot {
            address,
            function,
            rom,
            wanted: Vec::new(),
            mapped: Vec::new(),
            backed: Vec::new(),
        };
        self.update(&mut slots, &mut slot, wanted);
        slots.insert(address.devfn(), slot);
        Ok(())
    }

    /// The function at `address`, if any.
    pub fn function(&self, address: PciAddress) -> Option<SharedFunction> {
        if address.bus() != 0 {
            return None;
        }
        self.slots()
            .get(&address.devfn())
            .map(|s| Arc::clone(&s.function))
    }

    /// A configuration read. Absent functions (and every bus but 0) read all ones, so the vendor ID is
    /// 0xFFFF, which is how software knows nothing is there.
    pub fn config_read(&self, address: PciAddress, offset: usize, data: &mut [u8]) {
        let Some(function) = self.function(address) else {
            data.fill(0xff);
            return;
        };
        let mut f = function.lock().unwrap_or_else(|e| e.into_inner());
        f.config_read(offset, data);
    }

    /// A configuration write, then remapping of whatever windows it changed. Writes to absent functions
    /// are dropped.
    pub fn config_write(&self, address: PciAddress, offset: usize, data: &[u8]) {
        if address.bus() != 0 {
            return;
        }
        let mut slots = self.slots();
        let Some(mut slot) = slots.remove(&address.devfn()) else {
            return;
        };
        let wanted = {
            let mut f = slot.function.lock().unwrap_or_else(|e| e.into_inner());
            f.config_write(offset, data);
            f.regions()
        };
        self.update(&mut slots, &mut slot, wanted);
        slots.insert(address.devfn(), slot);
    }

    /// Re-reads the windows of the function at `address`: for a device whose windows change other than
    /// by a configuration write, and after restoring a function's state from a snapshot.
    pub fn refresh(&self, address: PciAddress) {
        let mut slots = self.slots();
        let Some(mut slot) = slots.remove(&address.devfn()) else {
            return;
        };
        let wanted = slot
            .function
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .regions();
        self.update(&mut slots, &mut slot, wanted);
        slots.insert(address.devfn(), slot);
    }

    /// Platform reset: every function back to power-on state (which unmaps its BARs).
    pub fn reset(&self) {
        let mut slots = self.slots();
        let keys: Vec<u8> = slots.keys().copied().collect();
        for key in keys {
            let Some(mut slot) = slots.remove(&key) else {
                continue;
            };
            let wanted = {
                let mut f = slot.function.lock().unwrap_or_else(|e| e.into_inner());
                f.reset();
                f.regions()
            };
            self.update(&mut slots, &mut slot, wanted);
            slots.insert(key, slot);
        }
    }

    /// The windows of the function at `address` that are on a bus now.
    pub fn mapped_regions(&self, address: PciAddress) -> Vec<Region> {
        self.slots()
            .get(&address.devfn())
            .map(|s| s.mapped.clone())
            .unwrap_or_default()
    }

    /// Brings `slot` (taken out of `others`) to `wanted`; if that freed any range, retries the windows
    /// other functions could not map before.
    fn update(&self, others: &mut BTreeMap<u8, Slot>, slot: &mut Slot, wanted: Vec<Region>) {
        let mut freed = false;
        let mut kept = Vec::with_capacity(slot.mapped.len());
        for region in std::mem::take(&mut slot.mapped) {
            if wanted.contains(&region) {
                kept.push(region);
            } else {
                // The mapper lets go first: until the bus mapping goes too, accesses still reach the function.
                self.unback(slot, &region);
                if let Err(e) = self.bus(region.space).remove(region.base) {
                    log::error!("pci {}: unmapping {:?}: {}", slot.address, region.id, e);
                }
                freed = true;
            }
        }
        slot.mapped = kept;
        slot.wanted = wanted;
        if freed {
            for other in others.values_mut() {
                self.map_pending(other);
            }
        }
        self.map_pending(slot);
    }

    /// Hands mapped window `region` of `slot` to the mapper, if there is one and the function backs the
    /// window with memory of its size.
    fn back(&self, slot: &mut Slot, region: Region) {
        if region.space != AddressSpace::Memory
            || region.id == RegionId::Rom
            || slot.backed.iter().any(|(r, _)| *r == region)
        {
            return;
        }
        let Some(mapper) = self.mapper() else {
            return;
        };
        let memory = slot
            .function
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bar_memory(region.id);
        let Some(memory) = memory else {
            return;
        };
        if memory.len() != region.len || region.base & (PAGE_SIZE - 1) != 0 {
            // A device bug (memory of the wrong size) or a window smaller than a page: stays trapped.
            log::error!(
                "pci {}: {:?} of {:#x} bytes at {:#x} cannot be backed by {:#x} bytes of memory",
                slot.address,
                region.id,
                region.len,
                region.base,
                memory.len()
            );
            return;
        }
        match mapper.map(region.base, &memory) {
            Ok(()) => slot.backed.push((region, memory)),
            Err(e) => crate::rate_limited!(
                log::Level::Warn,
                "pci {}: {:?} at {:#x} stays trapped MMIO: {}",
                slot.address,
                region.id,
                region.base,
                e
            ),
        }
    }

    /// Takes `region` back from the mapper, if it backs it.
    fn unback(&self, slot: &mut Slot, region: &Region) {
        let Some(i) = slot.backed.iter().position(|(r, _)| r == region) else {
            return;
        };
        let (region, memory) = slot.backed.swap_remove(i);
        if let Some(mapper) = self.mapper() {
            mapper.unmap(region.base, &memory);
        }
    }

    fn unback_all(&self, slot: &mut Slot) {
        for (region, _) in slot.backed.clone() {
            self.unback(slot, &region);
        }
    }

    /// Inserts every wanted window of `slot` that is not mapped yet.
    fn map_pending(&self, slot: &mut Slot) {
        for region in slot.wanted.clone() {
            if slot.mapped.contains(&region) || !region.is_decodable() {
                continue;
            }
            let device: Arc<dyn BusDevice> = match (&region.id, &slot.rom) {
                (RegionId::Rom, Some(image)) => Arc::new(RomAdapter {
                    image: Arc::clone(image),
                }),
                _ => Arc::new(WindowAdapter {
                    function: Arc::clone(&slot.function),
                    id: region.id,
                }),
            };
            match self
                .bus(region.space)
                .insert(region.base, region.len, region.max_width, device)
            {
                Ok(()) => {
                    slot.mapped.push(region);
                    self.back(slot, region);
                }
                Err(e) => crate::rate_limited!(
                    log::Level::Warn,
                    "pci {}: guest placed {:?} where it cannot be decoded: {}",
                    slot.address,
                    region.id,
                    e
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::IrqLine;
    use crate::pci::config::{BarKind, ConfigSpace, COMMAND, STATUS_INTERRUPT};
    use crate::pci::testing::PciTestbed;
    use crate::pci::PciFunction;

    /// A function with a 16-byte I/O BAR 0 (a register file) and a 4 KiB memory BAR 1 (reads return the
    /// offset, writes are logged), as a NIC-like device would have.
    struct Scratch {
        config: ConfigSpace,
        regs: [u8; 16],
        writes: Vec<(RegionId, u64, Vec<u8>)>,
        intx: Option<Arc<dyn IrqLine>>,
    }

    impl Scratch {
        fn new() -> Arc<Mutex<Self>> {
            let mut config = ConfigSpace::new(0x1234, 0x5678, 0x020000, 1);
            config.add_bar(0, BarKind::Io, 16).unwrap();
            config
                .add_bar(
                    1,
                    BarKind::Memory32 {
                        prefetchable: false,
                    },
                    4096,
                )
                .unwrap();
            config.set_interrupt_pin(1).unwrap();
            Arc::new(Mutex::new(Scratch {
                config,
                regs: [0; 16],
                writes: Vec::new(),
                intx: None,
            }))
        }
    }

    impl PciFunction for Scratch {
        fn config(&self) -> &ConfigSpace {
            &self.config
        }
        fn config_mut(&mut self) -> &mut ConfigSpace {
            &mut self.config
        }
        fn bar_read(&mut self, region: RegionId, offset: u64, data: &mut [u8]) {
            match region {
                RegionId::Bar(0) => {
                    for (i, d) in data.iter_mut().enumerate() {
                        *d = self.regs[(offset as usize + i) % 16];
                    }
                }
                _ => crate::bus::put_le_value(data, offset),
            }
        }
        fn bar_write(&mut self, region: RegionId, offset: u64, data: &[u8]) {
            if region == RegionId::Bar(0) {
                for (i, &d) in data.iter().enumerate() {
                    self.regs[(offset as usize + i) % 16] = d;
                }
            }
            self.writes.push((region, offset, data.to_vec()));
        }
        fn intx_line(&self) -> Option<&dyn IrqLine> {
            self.intx.as_deref()
        }
    }

    /// Sizes and assigns the scratch BARs the way SeaBIOS's pciinit does, then enables decoding.
    fn assign(tb: &PciTestbed, dev: u8, io: u32, mem: u32) {
        tb.cfg_write(dev, 0, 0x10, 4, 0xffff_ffff);
        assert_eq!(tb.cfg_read(dev, 0, 0x10, 4), 0xffff_fff1);
        tb.cfg_write(dev, 0, 0x10, 4, io);
        tb.cfg_write(dev, 0, 0x14, 4, 0xffff_ffff);
        assert_eq!(tb.cfg_read(dev, 0, 0x14, 4), 0xffff_f000);
        tb.cfg_write(dev, 0, 0x14, 4, mem);
        tb.cfg_write(dev, 0, COMMAND as u8, 2, 0x0103);
    }

    #[test]
    fn bars_are_sized_mapped_and_reached_through_the_buses() {
        let tb = PciTestbed::new();
        let dev = Scratch::new();
        let a = tb.add(3, 0, dev.clone());
        assert!(
            !tb.pio.is_claimed(0xc000),
            "nothing mapped before COMMAND enables decoding"
        );
        assign(&tb, 3, 0xc000, 0xfebf_f000);
        tb.pio_write(0xc004, 4, 0xdead_beef);
        assert_eq!(tb.pio_read(0xc004, 4), 0xdead_beef);
        assert_eq!(tb.pio_read(0xc006, 1), 0xad);
        assert_eq!(tb.mmio_read(0xfebf_f010, 4), 0x10);
        tb.mmio_write(0xfebf_fff8, 8, 7);
        let writes = dev.lock().unwrap().writes.clone();
        assert_eq!(
            writes.last(),
            Some(&(RegionId::Bar(1), 0xff8, vec![7, 0, 0, 0, 0, 0, 0, 0]))
        );
        assert_eq!(tb.root.mapped_regions(a).len(), 2);
        // An access running past the end of the BAR is refused by the bus, not passed on.
        assert_eq!(tb.pio_read(0xc00e, 4), 0xffff_ffff);
    }

    #[test]
    fn string_io_through_a_window_is_element_by_element_by_default() {
        let tb = PciTestbed::new();
        let dev = Scratch::new();
        tb.add(3, 0, dev.clone());
        assign(&tb, 3, 0xc000, 0xfebf_f000);
        // `rep outsw` of three words to port 0xC004: three 2-byte writes at offset 4, the last one stays.
        tb.pio.write_repeated(0xc004, 2, &[1, 2, 3, 4, 5, 6]);
        let writes = dev.lock().unwrap().writes.clone();
        assert_eq!(
            writes,
            vec![
                (RegionId::Bar(0), 4, vec![1, 2]),
                (RegionId::Bar(0), 4, vec![3, 4]),
                (RegionId::Bar(0), 4, vec![5, 6]),
            ]
        );
        // `rep insw` of two words reads offset 4 twice.
        let mut data = [0u8; 4];
        tb.pio.read_repeated(0xc004, 2, &mut data);
        assert_eq!(data, [5, 6, 5, 6]);
    }

    #[test]
    fn moving_and_disabling_bars_remaps() {
        let tb = PciTestbed::new();
        tb.add(3, 0, Scratch::new());
        assign(&tb, 3, 0xc000, 0xfebf_f000);
        tb.cfg_write(3, 0, 0x10, 4, 0xc101); // type bit written as 1 is harmless
        assert_eq!(tb.cfg_read(3, 0, 0x10, 4), 0xc101);
        assert!(!tb.pio.is_claimed(0xc000));
        assert!(tb.pio.is_claimed(0xc100) && tb.pio.is_claimed(0xc10f));
        // Byte write of the BAR's high byte moves it too.
        tb.cfg_write(3, 0, 0x11, 1, 0xd0);
        assert!(tb.pio.is_claimed(0xd000) && !tb.pio.is_claimed(0xc100));
        tb.cfg_write(3, 0, COMMAND as u8, 2, 0x0002);
        assert!(!tb.pio.is_claimed(0xd000), "I/O decoding off");
        assert!(tb.mmio.is_claimed(0xfebf_f000));
        tb.cfg_write(3, 0, COMMAND as u8, 2, 0);
        assert!(!tb.mmio.is_claimed(0xfebf_f000));
        // Sizing with decoding on neither panics nor maps garbage.
        tb.cfg_write(3, 0, COMMAND as u8, 2, 3);
        tb.cfg_write(3, 0, 0x10, 4, 0xffff_ffff);
        assert!(!tb.pio.is_claimed(0xd000));
        assert_eq!(tb.pio_read(0xfff0, 1), 0xff);
    }

    #[test]
    fn conflicting_bars_are_refused_then_mapped_when_the_conflict_goes() {
        let tb = PciTestbed::new();
        let first = Scratch::new();
        let second = Scratch::new();
        tb.add(3, 0, first.clone());
        let b = tb.add(4, 0, second.clone());
        assign(&tb, 3, 0xc000, 0xfebf_f000);
        assign(&tb, 4, 0xc000, 0xfebf_e000);
        assert_eq!(
            tb.root
                .mapped_regions(b)
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            vec![RegionId::Bar(1)],
            "the second I/O BAR collides and stays unmapped"
        );
        tb.pio_write(0xc000, 1, 0x55);
        assert_eq!(first.lock().unwrap().regs[0], 0x55);
        assert_eq!(second.lock().unwrap().regs[0], 0);
        // The first device moves away: the second one's BAR now decodes.
        tb.cfg_write(3, 0, 0x10, 4, 0xc100);
        tb.pio_write(0xc000, 1, 0x66);
        assert_eq!(second.lock().unwrap().regs[0], 0x66);
        assert_eq!(tb.root.mapped_regions(b).len(), 2);
        // A BAR over the configuration ports themselves is refused; the host keeps working.
        tb.cfg_write(3, 0, 0x10, 4, 0x0cf0);
        assert_eq!(tb.cfg_read(3, 0, 0, 4), 0x5678_1234);
    }

    #[test]
    fn rom_bar_serves_the_image_when_enabled() {
        let tb = PciTestbed::new();
        let mut image = vec![0u8; 3000];
        image[0] = 0x55;
        image[1] = 0xaa;
        image[2] = 6;
        image[2999] = 0x42;
        let a = PciAddress::new(0, 2, 0).unwrap();
        tb.root.add_with_rom(a, Scratch::new(), image).unwrap();
        tb.cfg_write(2, 0, 0x30, 4, 0xffff_fffe);
        assert_eq!(
            tb.cfg_read(2, 0, 0x30, 4),
            0xffff_f000,
            "4 KiB window, enable bit stays 0"
        );
        tb.cfg_write(2, 0, 0x30, 4, 0xfebe_0000);
        tb.cfg_write(2, 0, COMMAND as u8, 2, 0x0002);
        assert!(
            !tb.mmio.is_claimed(0xfebe_0000),
            "ROM enable bit still clear"
        );
        tb.cfg_write(2, 0, 0x30, 4, 0xfebe_0001);
        assert_eq!(tb.mmio_read(0xfebe_0000, 2), 0xaa55);
        assert_eq!(tb.mmio_read(0xfebe_0002, 1), 6);
        assert_eq!(tb.mmio_read(0xfebe_0000 + 2996, 4), 0x4200_0000);
        assert_eq!(
            tb.mmio_read(0xfebe_0000 + 2998, 4),
            0xffff_4200,
            "past the image: 0xFF"
        );
        tb.mmio_write(0xfebe_0000, 4, 0);
        assert_eq!(tb.mmio_read(0xfebe_0000, 2), 0xaa55, "read-only");
        tb.cfg_write(2, 0, 0x30, 4, 0xfebe_0000);
        assert!(!tb.mmio.is_claimed(0xfebe_0000));
    }

    #[test]
    fn intx_follows_status_and_intx_disable() {
        let tb = PciTestbed::new();
        tb.route_pirqs_like_seabios();
        let dev = Scratch::new();
        dev.lock().unwrap().intx = Some(tb.intx_line(3, 1)); // link C → IRQ 11
        tb.add(3, 0, dev.clone());
        dev.lock().unwrap().set_intx(true);
        assert!(tb.gsi.level(11));
        assert_eq!(
            tb.cfg_read(3, 0, 0x06, 2) as u16 & STATUS_INTERRUPT,
            STATUS_INTERRUPT
        );
        tb.cfg_write(3, 0, COMMAND as u8, 2, 0x0400);
        assert!(!tb.gsi.level(11), "INTX_DISABLE masks the line");
        tb.cfg_write(3, 0, COMMAND as u8, 2, 0);
        assert!(tb.gsi.level(11));
        dev.lock().unwrap().set_intx(false);
        assert!(!tb.gsi.level(11));
    }

    #[test]
    fn reset_unmaps_everything_and_restores_headers() {
        let tb = PciTestbed::new();
        let dev = Scratch::new();
        dev.lock().unwrap().intx = Some(tb.intx_line(3, 1));
        tb.add(3, 0, dev.clone());
        tb.route_pirqs_like_seabios();
        assign(&tb, 3, 0xc000, 0xfebf_f000);
        dev.lock().unwrap().set_intx(true);
        tb.host.reset();
        assert_eq!(tb.pio_read(0xcf8, 4), 0, "CONFIG_ADDRESS cleared");
        assert!(!tb.pio.is_claimed(0xc000));
        assert!(!tb.mmio.is_claimed(0xfebf_f000));
        assert_eq!(tb.cfg_read(3, 0, 0x10, 4), 1);
        assert_eq!(tb.cfg_read(3, 0, 0x04, 2), 0);
        assert!(!tb.gsi.level(11));
    }

    #[test]
    fn wiring_errors() {
        let tb = PciTestbed::new();
        let a = PciAddress::new(0, 1, 0).unwrap();
        assert_eq!(tb.root.add(a, Scratch::new()), Err(PciError::InUse(a)));
        let b1 = PciAddress::new(1, 3, 0).unwrap();
        assert_eq!(tb.root.add(b1, Scratch::new()), Err(PciError::Bus(1)));
        assert!(PciAddress::new(0, 32, 0).is_err());
        assert!(PciAddress::new(0, 0, 8).is_err());
        let big = vec![0u8; (16 << 20) + 1];
        let c = PciAddress::new(0, 5, 0).unwrap();
        assert!(tb.root.add_with_rom(c, Scratch::new(), big).is_err());
        assert_eq!(format!("{}", PciAddress::new(0, 1, 3).unwrap()), "00:01.3");
    }
}
