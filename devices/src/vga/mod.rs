//! The standard VGA with Bochs VBE extensions: QEMU's `-vga std`, PCI 1234:1111, the adapter SeaVGABIOS's
//! `vgabios-stdvga.bin`, Linux `vgacon`/`bochs-drm` and the Windows Bochs/VBE drivers drive.
//!
//! # What a guest sees
//!
//! - **Legacy VGA registers** ([`regs`]) at ports 0x3B4/0x3B5/0x3BA (monochrome), 0x3C0-0x3CF and
//!   0x3D4/0x3D5/0x3DA (colour), the monochrome or colour set chosen by MISC bit 0. The VGA BIOS sets
//!   every mode through them, and text-mode consoles keep using them (cursor, start address, palette).
//! - **The legacy memory window** ([`memory`]) at 0xA0000-0xBFFFF, with the planar, odd/even and chain-4
//!   data paths real VGA software depends on: text mode at 0xB8000 with the font in plane 2, the
//!   16-colour planar modes with their write modes and latches, and mode 13h.
//! - **Bochs VBE "DISPI"** ([`vbe`]) at ports 0x1CE (index)/0x1CF (data), 16-bit: sets SVGA modes of up
//!   to 2560×1600 at 8/15/16/24/32 bpp (and 4 bpp planar) without any VGA timing programming.
//! - **PCI function** 1234:1111 rev 2, class 0x030000, subsystem 1AF4:1100 (as QEMU). BAR0 is the
//!   prefetchable 32-bit linear framebuffer, all of VRAM. BAR2 (QEMU's MMIO register/EDID BAR) is left
//!   out: SeaVGABIOS then skips EDID and everything else uses the ports. The expansion ROM (the VGA BIOS)
//!   is served by the PCI root ([`crate::pci::PciRoot::add_with_rom`]).
//!
//! # What the host sees
//!
//! [`StdVga`] implements [`DisplaySource`]: each refresh renders what changed into a 0x00RRGGBB frame,
//! resizing it on a mode change, and returns the changed rectangles. Text modes compare each character
//! cell with what was last drawn (so a typed character is a one-cell rectangle); graphics modes re-read
//! only the scan lines that touch VRAM blocks written since the last refresh; a change of mode, palette
//! or display registers redraws everything. See [`render`].
//!
//! # Design
//!
//! The device is one state machine ([`Core`]: registers, DISPI registers, VRAM, render cache) behind one
//! mutex. The bus adapters ([`StdVga::legacy_ports`], [`StdVga::vga_window`], the PCI function) lock it
//! per access; the display refresh locks it while it renders. Lock order: PCI function → core; the
//! refresh reads the dirty source before it takes the core, never while holding it. Every
//! value the guest controls is checked before it indexes anything: register indexes are masked, window
//! and BAR offsets are bounds-checked against VRAM, and a VBE mode is only ever active when its whole
//! visible area fits in VRAM.
//!
//! VRAM is its own host mapping (see [`memory`] for the plane layout and why), which BAR0 offers to the
//! PCI root as RAM ([`crate::pci::bar_memory`]): on KVM the machine maps it into the guest with dirty-page
//! logging and installs the log as the VGA's [`DirtySource`] ([`StdVga::set_dirty_source`]); every
//! refresh first folds the pages the guest wrote into the renderer's dirty blocks. Without that (tests,
//! the no-vCPU harness) BAR0 is trapped MMIO and marks its blocks as it writes. The snapshot
//! ([`VgaState`]) holds the registers, and VRAM is saved separately ([`StdVga::vram_contents`],
//! [`StdVga::load_vram`]), because at 16-256 MiB it does not belong in a serialised register dump.

pub mod memory;
pub mod regs;
pub mod render;
pub mod vbe;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::bus::{le_value, put_le_value, BusDevice};
use crate::clock::Clock;
use crate::display::{DisplaySource, Frame, Rect};
use crate::pci::config::ConfigSpace;
use crate::pci::{
    BarKind, BarMemory, DirtySource, HostMemory, PciFunction, RegionId, SharedFunction,
};

use memory::Vram;
use regs::{Regs, WriteEffect};
use vbe::{Vbe, VbeEffect};

/// PCI vendor ID (the Bochs/QEMU "stdvga" ID).
pub const VENDOR_ID: u16 = 0x1234;
/// PCI device ID.
pub const DEVICE_ID: u16 = 0x1111;
/// PCI revision.
pub const REVISION: u8 = 2;
/// PCI class: display controller, VGA compatible.
pub const CLASS: u32 = 0x03_00_00;
/// Default VRAM size in MiB (QEMU's default).
pub const DEFAULT_VIDEORAM_MIB: u32 = 16;
/// Largest VRAM size in MiB.
pub const MAX_VIDEORAM_MIB: u32 = 256;

/// Guest-physical base of the legacy memory window.
pub const VGA_WINDOW_BASE: u64 = 0xa_0000;
/// Length of the legacy memory window.
pub const VGA_WINDOW_LEN: u64 = 0x2_0000;
/// Widest access the window adapter accepts (wider ones are split into bytes inside).
pub const VGA_WINDOW_MAX_WIDTH: usize = 8;
/// Bochs VBE DISPI index port; the data port is the next one.
pub const VBE_PORT: u16 = 0x1ce;

/// Why a VGA could not be built or restored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VgaError {
    /// `videoram` outside 1..=256 MiB.
    #[error("videoram {0} MiB out of range (1-{MAX_VIDEORAM_MIB} MiB)")]
    VideoRam(u32),
    /// The host would not give VRAM its mapping.
    #[error("cannot map {size} bytes of VRAM: {reason}")]
    VramMap {
        /// The size asked for.
        size: u64,
        /// The host's answer.
        reason: String,
    },
    /// A snapshot taken with a different VRAM size.
    #[error("snapshot has {snapshot} bytes of VRAM, device has {device}")]
    VramSize {
        /// VRAM size in the snapshot.
        snapshot: u64,
        /// VRAM size of this device.
        device: u64,
    },
}

/// A port range to insert on the port bus: `bus.insert(base, len, max_width, device)`.
pub struct PortRange {
    /// First port.
    pub base: u64,
    /// Number of ports.
    pub len: u64,
    /// Widest access accepted.
    pub max_width: usize,
    /// The adapter.
    pub device: Arc<dyn BusDevice>,
}

/// The device's state machine. See the module documentation.
pub struct Core {
    regs: Regs,
    vbe: Vbe,
    vram: Vram,
    cache: render::Cache,
    /// The DAC changed since the last refresh.
    palette_changed: bool,
    /// Plane 2 (the text font) was written since the last refresh.
    font_written: bool,
}

impl Core {
    fn new(vram: Vram) -> Core {
        Core {
            regs: Regs::default(),
            vbe: Vbe::default(),
            vram,
            cache: render::Cache::default(),
            palette_changed: true,
            font_written: true,
        }
    }

    fn reset(&mut self) {
        self.regs = Regs::default();
        self.vbe = Vbe::default();
        self.invalidate();
    }

    fn invalidate(&mut self) {
        self.cache = render::Cache::default();
        self.palette_changed = true;
        self.font_written = true;
        self.vram.mark_all_dirty();
    }

    /// A one-byte read of a legacy VGA port.
    pub fn port_read(&mut self, port: u16) -> u8 {
        let dac8 = self.vbe.dac8();
        self.regs.read(port, dac8)
    }

    /// A one-byte write of a legacy VGA port.
    pub fn port_write(&mut self, port: u16, value: u8) {
        let dac8 = self.vbe.dac8();
        if self.regs.write(port, value, dac8) == WriteEffect::Palette {
            self.palette_changed = true;
        }
    }

    /// A read of the DISPI index (`data == false`) or data port.
    pub fn vbe_read(&mut self, data: bool) -> u16 {
        if data {
            self.vbe.read(self.vram.len())
        } else {
            self.vbe.index
        }
    }

    /// A write of the DISPI index or data port.
    pub fn vbe_write(&mut self, data: bool, value: u16) {
        if !data {
            self.vbe.index = value;
            return;
        }
        match self.vbe.write(value, self.vram.len()) {
            VbeEffect::None => {}
            VbeEffect::Enabled { clear } => {
                if clear {
                    self.vram.clear();
                }
                self.palette_changed = true;
            }
            VbeEffect::Changed => self.palette_changed = true,
        }
    }

    /// A linear-framebuffer (BAR0) read.
    pub fn lfb_read(&self, offset: u64, data: &mut [u8]) {
        self.vram.read(offset, data);
    }

    /// A linear-framebuffer (BAR0) write.
    pub fn lfb_write(&mut self, offset: u64, data: &[u8]) {
        self.vram.write(offset, data);
    }
}

/// The device's snapshot, without VRAM (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VgaState {
    /// VRAM size in bytes (a restore into a device of another size is refused).
    pub vram_size: u64,
    /// The legacy registers.
    pub regs: Regs,
    /// The DISPI registers.
    pub vbe: Vbe,
    /// PCI configuration space.
    pub config: ConfigSpace,
}

/// The PCI side: configuration space and BAR0.
struct VgaPci {
    config: ConfigSpace,
    core: Arc<Mutex<Core>>,
    /// VRAM's mapping, BAR0's backing memory.
    vram: Arc<HostMemory>,
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}

impl PciFunction for VgaPci {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn bar_read(&mut self, region: RegionId, offset: u64, data: &mut [u8]) {
        match region {
            RegionId::Bar(0) => lock(&self.core).lfb_read(offset, data),
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, region: RegionId, offset: u64, data: &[u8]) {
        if region == RegionId::Bar(0) {
            lock(&self.core).lfb_write(offset, data);
        }
    }

    fn bar_memory(&self, region: RegionId) -> Option<BarMemory> {
        (region == RegionId::Bar(0)).then(|| BarMemory::new(Arc::clone(&self.vram), true))
    }

    fn reset(&mut self) {
        self.config.reset();
        lock(&self.core).reset();
    }
}

/// The standard VGA. See the module documentation.
pub struct StdVga {
    core: Arc<Mutex<Core>>,
    pci: Arc<Mutex<VgaPci>>,
    clock: Arc<dyn Clock>,
    vram_size: u64,
    /// VRAM's mapping (the key the dirty source knows it by).
    vram: Arc<HostMemory>,
    /// Where guest writes that bypass the device are logged, when BAR0 is mapped as RAM.
    dirty_source: Mutex<Option<Arc<dyn DirtySource>>>,
}

impl StdVga {
    /// A VGA with `videoram_mib` MiB of VRAM (1-256, rounded up to a power of two), timing text blink
    /// from `clock`.
    pub fn new(videoram_mib: u32, clock: Arc<dyn Clock>) -> Result<Arc<StdVga>, VgaError> {
        if !(1..=MAX_VIDEORAM_MIB).contains(&videoram_mib) {
            return Err(VgaError::VideoRam(videoram_mib));
        }
        let vram_size = u64::from(videoram_mib.next_power_of_two()) << 20;
        let bad = |_| VgaError::VideoRam(videoram_mib);
        let mut config = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS, REVISION);
        config.set_subsystem(0x1af4, 0x1100);
        config
            .add_bar(0, BarKind::Memory32 { prefetchable: true }, vram_size)
            .map_err(bad)?;
        let size = usize::try_from(vram_size).map_err(|_| VgaError::VideoRam(videoram_mib))?;
        let vram = Vram::new(size).map_err(|e| VgaError::VramMap {
            size: vram_size,
            reason: e.to_string(),
        })?;
        let memory = Arc::clone(vram.memory());
        let core = Arc::new(Mutex::new(Core::new(vram)));
        let pci = Arc::new(Mutex::new(VgaPci {
            config,
            core: Arc::clone(&core),
            vram: Arc::clone(&memory),
        }));
        Ok(Arc::new(StdVga {
            core,
            pci,
            clock,
            vram_size,
            vram: memory,
            dirty_source: Mutex::new(None),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    /// VRAM size in bytes (also BAR0's size).
    pub fn vram_size(&self) -> u64 {
        self.vram_size
    }

    /// The PCI function, for [`crate::pci::PciRoot::add_with_rom`] with the VGA BIOS image.
    pub fn pci_function(&self) -> SharedFunction {
        self.pci.clone()
    }

    /// The port ranges to insert on the port bus:
    /// - 0x3B4, 2 ports, max width 2 (mono CRTC index/data);
    /// - 0x3BA, 1 port, max width 1 (mono input status 1 / feature control);
    /// - 0x3C0, 16 ports, max width 2 (attribute, misc, sequencer, DAC, graphics);
    /// - 0x3D4, 2 ports, max width 2 (colour CRTC index/data);
    /// - 0x3DA, 1 port, max width 1 (colour input status 1 / feature control);
    /// - 0x1CE, 3 ports, max width 2 (VBE DISPI: index at 0x1CE, data at 0x1CF; 0x1D0 is a byte-wide
    ///   alias of the data port so that the 16-bit data access at 0x1CF fits in the range).
    ///
    /// Accesses wider than a byte to the VGA ports act as byte accesses to consecutive ports (a word
    /// write to an index port writes index and data).
    pub fn legacy_ports(&self) -> Vec<PortRange> {
        let vga = |base: u16, len: u64, max_width: usize| PortRange {
            base: u64::from(base),
            len,
            max_width,
            device: Arc::new(VgaPorts {
                core: Arc::clone(&self.core),
                base,
            }),
        };
        vec![
            vga(0x3b4, 2, 2),
            vga(0x3ba, 1, 1),
            vga(0x3c0, 16, 2),
            vga(0x3d4, 2, 2),
            vga(0x3da, 1, 1),
            PortRange {
                base: u64::from(VBE_PORT),
                len: 3,
                max_width: 2,
                device: Arc::new(VbePorts {
                    core: Arc::clone(&self.core),
                }),
            },
        ]
    }

    /// The legacy memory window: insert on the MMIO bus at [`VGA_WINDOW_BASE`], length
    /// [`VGA_WINDOW_LEN`], max width [`VGA_WINDOW_MAX_WIDTH`].
    pub fn vga_window(&self) -> Arc<dyn BusDevice> {
        Arc::new(VgaWindow {
            core: Arc::clone(&self.core),
        })
    }

    /// Marks `len` bytes of VRAM at `offset` as written behind the device's back (for a machine that
    /// maps the framebuffer as guest RAM and reads KVM's dirty log).
    pub fn mark_vram_dirty(&self, offset: u64, len: u64) {
        self.lock().vram.mark_dirty(offset, len);
    }

    /// Installs where guest writes to VRAM that bypass the device are logged (the machine's mapper, once it
    /// maps BAR0 as RAM); every refresh then asks it first.
    pub fn set_dirty_source(&self, source: Arc<dyn DirtySource>) {
        *self.dirty_source.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// Folds the dirty source's log into the renderer's dirty blocks. The log is read before the core is
    /// locked (the source may make a system call), and before anything is rendered, so a guest write that
    /// lands after this is in the next log.
    fn pull_dirty(&self) -> Option<Vec<(u64, u64)>> {
        let source = self
            .dirty_source
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let mut ranges = Vec::new();
        source.take_dirty(&self.vram, &mut |offset, len| ranges.push((offset, len)));
        Some(ranges)
    }

    /// A platform reset: registers to power-on values (VRAM keeps its contents, as on hardware).
    pub fn reset(&self) {
        let mut pci = self.pci.lock().unwrap_or_else(|e| e.into_inner());
        pci.config.reset();
        lock(&pci.core).reset();
    }

    /// The registers to save (VRAM separately: [`StdVga::vram_contents`]).
    pub fn snapshot(&self) -> VgaState {
        let pci = self.pci.lock().unwrap_or_else(|e| e.into_inner());
        let core = lock(&pci.core);
        VgaState {
            vram_size: self.vram_size,
            regs: core.regs.clone(),
            vbe: core.vbe.clone(),
            config: pci.config.clone(),
        }
    }

    /// Restores saved registers; values out of range are repaired, a mode that no longer fits is
    /// switched off. The caller should refresh the PCI root's mappings afterwards
    /// ([`crate::pci::PciRoot::refresh`]), since BAR0 may have moved.
    pub fn restore(&self, state: VgaState) -> Result<(), VgaError> {
        if state.vram_size != self.vram_size {
            return Err(VgaError::VramSize {
                snapshot: state.vram_size,
                device: self.vram_size,
            });
        }
        let mut pci = self.pci.lock().unwrap_or_else(|e| e.into_inner());
        let mut core = lock(&pci.core);
        core.regs = state.regs;
        core.regs.sanitize();
        core.vbe = state.vbe;
        core.vbe.sanitize(self.vram_size);
        core.invalidate();
        drop(core);
        pci.config = state.config;
        Ok(())
    }

    /// Writes VRAM bytes without marking them dirty, as a vCPU storing through a mapped framebuffer does.
    #[cfg(test)]
    pub(crate) fn load_vram_range_for_test(&self, offset: usize, data: &[u8]) {
        use vm_memory::VolatileMemory;
        let core = self.lock();
        if let Ok(dst) = core.vram.memory().get_slice(offset, data.len()) {
            dst.copy_from(data);
        }
    }

    /// A copy of VRAM.
    pub fn vram_contents(&self) -> Vec<u8> {
        self.lock().vram.contents()
    }

    /// Replaces VRAM with `data`; must be exactly the VRAM size.
    pub fn load_vram(&self, data: &[u8]) -> Result<(), VgaError> {
        if data.len() as u64 != self.vram_size {
            return Err(VgaError::VramSize {
                snapshot: data.len() as u64,
                device: self.vram_size,
            });
        }
        let mut core = self.lock();
        core.vram.load(data);
        core.invalidate();
        Ok(())
    }
}

impl DisplaySource for StdVga {
    fn refresh(&self, frame: &mut Frame) -> Vec<Rect> {
        let now = self.clock.now_ns();
        let dirty = self.pull_dirty();
        let mut core = self.lock();
        for (offset, len) in dirty.into_iter().flatten() {
            core.vram.mark_dirty(offset, len);
        }
        core.refresh(frame, now)
    }
}

/// Legacy VGA ports starting at `base`; wide accesses become byte accesses at consecutive ports.
struct VgaPorts {
    core: Arc<Mutex<Core>>,
    base: u16,
}

impl VgaPorts {
    fn port(&self, offset: u64, i: usize) -> Option<u16> {
        let p = offset
            .checked_add(i as u64)?
            .checked_add(u64::from(self.base))?;
        u16::try_from(p).ok()
    }
}

impl BusDevice for VgaPorts {
    fn read(&self, offset: u64, data: &mut [u8]) {
        let mut core = lock(&self.core);
        for (i, d) in data.iter_mut().enumerate() {
            *d = self.port(offset, i).map_or(0xff, |p| core.port_read(p));
        }
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let mut core = lock(&self.core);
        for (i, &d) in data.iter().enumerate() {
            if let Some(p) = self.port(offset, i) {
                core.port_write(p, d);
            }
        }
    }
}

/// The DISPI ports: offset 0 is the index, offsets 1 and 2 the data.
struct VbePorts {
    core: Arc<Mutex<Core>>,
}

impl BusDevice for VbePorts {
    fn read(&self, offset: u64, data: &mut [u8]) {
        let v = lock(&self.core).vbe_read(offset != 0);
        put_le_value(data, u64::from(v));
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let v = le_value(data) as u16;
        lock(&self.core).vbe_write(offset != 0, v);
    }
}

/// The 0xA0000-0xBFFFF window; accesses are split into bytes.
struct VgaWindow {
    core: Arc<Mutex<Core>>,
}

impl BusDevice for VgaWindow {
    fn read(&self, offset: u64, data: &mut [u8]) {
        let mut core = lock(&self.core);
        for (i, d) in data.iter_mut().enumerate() {
            let a = offset.saturating_add(i as u64);
            *d = if a < VGA_WINDOW_LEN {
                core.window_read(a)
            } else {
                0xff
            };
        }
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let mut core = lock(&self.core);
        for (i, &d) in data.iter().enumerate() {
            let a = offset.saturating_add(i as u64);
            if a < VGA_WINDOW_LEN {
                core.window_write(a, d);
            }
        }
    }
}
