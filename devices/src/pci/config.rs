//! One function's 256-byte configuration space (type 0 header).
//!
//! Real PCI hardware implements each configuration register as a mix of read-only, read/write and
//! write-1-to-clear bits. This model stores the bytes plus two per-byte masks and derives everything from
//! them, so that a write of any width at any offset, even one that spans several fields (a dword write at
//! 0x04 hits COMMAND and STATUS at once), behaves as on hardware:
//!
//! `new = (old & !wmask) | (value & wmask)`, then `new &= !(value & w1c)`.
//!
//! **BAR sizing.** A BAR of size `S` has the address bits below `S` read-only zero and the type bits
//! (bit 0 = I/O, bits 2:1 = memory type, bit 3 = prefetchable) read-only. Software writes all ones and
//! reads back `!(S - 1) | type`, which is exactly what the write mask produces. I/O BARs keep their upper
//! 16 bits writable (x86 has 64 KiB of ports, but the register is 32 bits wide and SeaBIOS derives the size
//! from all 32 bits); an address beyond 0xFFFF is simply not decoded.
//!
//! **Expansion ROM BAR** (0x30): address bits above the ROM size are writable from bit 11 up (the
//! smallest ROM window is 2 KiB), bit 0 enables decoding; bits 10:1 read zero.
//!
//! **Reset.** Device set-up goes through the `init_*`/`add_bar`/`set_*` methods, which record power-on
//! values; [`ConfigSpace::reset`] returns to them.

use serde::{Deserialize, Serialize};

use super::{AddressSpace, PciError, Region, RegionId};

/// Size of a conventional configuration space.
pub const CONFIG_SPACE_SIZE: usize = 256;

/// Vendor ID (16 bits, read-only).
pub const VENDOR_ID: usize = 0x00;
/// Device ID (16 bits, read-only).
pub const DEVICE_ID: usize = 0x02;
/// Command register (16 bits).
pub const COMMAND: usize = 0x04;
/// Status register (16 bits; error bits are write-1-to-clear).
pub const STATUS: usize = 0x06;
/// Revision ID.
pub const REVISION_ID: usize = 0x08;
/// Programming interface, then sub-class at 0x0A and base class at 0x0B.
pub const CLASS_PROG: usize = 0x09;
/// Cache line size (read/write, no effect here).
pub const CACHE_LINE_SIZE: usize = 0x0c;
/// Latency timer (read/write, no effect here).
pub const LATENCY_TIMER: usize = 0x0d;
/// Header type; bit 7 = multi-function device.
pub const HEADER_TYPE: usize = 0x0e;
/// BAR 0; BAR n is at `BAR0 + 4 * n`.
pub const BAR0: usize = 0x10;
/// Subsystem vendor ID.
pub const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
/// Subsystem ID.
pub const SUBSYSTEM_ID: usize = 0x2e;
/// Expansion ROM base address.
pub const ROM_ADDRESS: usize = 0x30;
/// Interrupt line (read/write scratch register for the OS: the IRQ firmware routed the pin to).
pub const INTERRUPT_LINE: usize = 0x3c;
/// Interrupt pin (read-only; 0 = none, 1-4 = INTA#-INTD#).
pub const INTERRUPT_PIN: usize = 0x3d;

/// COMMAND: respond to I/O BARs.
pub const COMMAND_IO: u16 = 1 << 0;
/// COMMAND: respond to memory BARs and the ROM BAR.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// COMMAND: may master the bus (DMA).
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// COMMAND: parity error response.
pub const COMMAND_PARITY: u16 = 1 << 6;
/// COMMAND: SERR# enable.
pub const COMMAND_SERR: u16 = 1 << 8;
/// COMMAND: INTx emulation disable (PCI 2.3).
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// The COMMAND bits a guest can change.
const COMMAND_WRITABLE: u16 = COMMAND_IO
    | COMMAND_MEMORY
    | COMMAND_BUS_MASTER
    | COMMAND_PARITY
    | COMMAND_SERR
    | COMMAND_INTX_DISABLE;

/// STATUS: the function's INTx condition is pending (read-only).
pub const STATUS_INTERRUPT: u16 = 1 << 3;
/// STATUS: error bits (master data parity error, signalled/received target abort, received master
/// abort, signalled system error, detected parity error), all write-1-to-clear.
pub const STATUS_W1C: u16 = 0xf900;

/// Header type bit 7: the device has functions beyond 0, so software scans functions 1-7.
pub const HEADER_TYPE_MULTIFUNCTION: u8 = 0x80;

/// ROM BAR bit 0: decoding enabled (with COMMAND.MEMORY).
pub const ROM_ENABLE: u32 = 1;

/// What a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BarKind {
    /// Port I/O, 4 to 256 bytes.
    Io,
    /// 32-bit memory, 16 bytes to 2 GiB.
    Memory32 {
        /// Bit 3: reads have no side effects (a framebuffer, say).
        prefetchable: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct BarDef {
    kind: BarKind,
    size: u32,
}

/// Serialises a 256-byte array as a sequence (serde derives arrays only up to 32 elements).
mod bytes256 {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 256], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(bytes.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 256], D::Error> {
        let v = Vec::<u8>::deserialize(d)?;
        let len = v.len();
        v.try_into()
            .map_err(|_| D::Error::custom(format!("config space of {len} bytes, expected 256")))
    }
}

/// The configuration space of one function. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSpace {
    #[serde(with = "bytes256")]
    bytes: [u8; CONFIG_SPACE_SIZE],
    #[serde(with = "bytes256")]
    wmask: [u8; CONFIG_SPACE_SIZE],
    #[serde(with = "bytes256")]
    w1c: [u8; CONFIG_SPACE_SIZE],
    #[serde(with = "bytes256")]
    defaults: [u8; CONFIG_SPACE_SIZE],
    bars: [Option<BarDef>; 6],
    rom_size: Option<u32>,
}

impl ConfigSpace {
    /// A type 0 header with the given IDs, `class` as 0xCCSSPP (base class, sub-class, programming
    /// interface) and revision. COMMAND, cache line size, latency timer and interrupt line are writable,
    /// STATUS's error bits are write-1-to-clear, everything else is read-only until declared otherwise.
    pub fn new(vendor: u16, device: u16, class: u32, revision: u8) -> Self {
        let mut c = ConfigSpace {
            bytes: [0; CONFIG_SPACE_SIZE],
            wmask: [0; CONFIG_SPACE_SIZE],
            w1c: [0; CONFIG_SPACE_SIZE],
            defaults: [0; CONFIG_SPACE_SIZE],
            bars: [None; 6],
            rom_size: None,
        };
        c.init_u16(VENDOR_ID, vendor);
        c.init_u16(DEVICE_ID, device);
        c.init_u8(REVISION_ID, revision);
        let class = class.to_le_bytes();
        c.init_u8(CLASS_PROG, class[0]);
        c.init_u8(CLASS_PROG + 1, class[1]);
        c.init_u8(CLASS_PROG + 2, class[2]);
        c.set_wmask(COMMAND, &COMMAND_WRITABLE.to_le_bytes());
        c.set_w1c(STATUS, &STATUS_W1C.to_le_bytes());
        c.set_wmask(CACHE_LINE_SIZE, &[0xff, 0xff]);
        c.set_wmask(INTERRUPT_LINE, &[0xff]);
        c
    }

    /// Sets the header-type multi-function bit (function 0 of a device with several functions).
    pub fn set_multifunction(&mut self, multi: bool) {
        let h = self.read_u8(HEADER_TYPE) & !HEADER_TYPE_MULTIFUNCTION;
        self.init_u8(
            HEADER_TYPE,
            h | if multi { HEADER_TYPE_MULTIFUNCTION } else { 0 },
        );
    }

    /// Sets the subsystem vendor and subsystem IDs.
    pub fn set_subsystem(&mut self, vendor: u16, id: u16) {
        self.init_u16(SUBSYSTEM_VENDOR_ID, vendor);
        self.init_u16(SUBSYSTEM_ID, id);
    }

    /// Declares the interrupt pin: 0 = none, 1-4 = INTA#-INTD#.
    pub fn set_interrupt_pin(&mut self, pin: u8) -> Result<(), PciError> {
        if pin > 4 {
            return Err(PciError::Pin(pin));
        }
        self.init_u8(INTERRUPT_PIN, pin);
        Ok(())
    }

    /// Sets a power-on byte (bytes past the end are ignored).
    pub fn init_u8(&mut self, offset: usize, value: u8) {
        self.init_bytes(offset, &[value]);
    }

    /// Sets a power-on word.
    pub fn init_u16(&mut self, offset: usize, value: u16) {
        self.init_bytes(offset, &value.to_le_bytes());
    }

    /// Sets a power-on dword.
    pub fn init_u32(&mut self, offset: usize, value: u32) {
        self.init_bytes(offset, &value.to_le_bytes());
    }

    fn init_bytes(&mut self, offset: usize, values: &[u8]) {
        for (i, &v) in values.iter().enumerate() {
            let o = offset.saturating_add(i);
            if let (Some(b), Some(d)) = (self.bytes.get_mut(o), self.defaults.get_mut(o)) {
                *b = v;
                *d = v;
            }
        }
    }

    /// Makes the bits set in `mask` (one byte per config byte from `offset`) guest-writable, replacing
    /// the previous mask of those bytes.
    pub fn set_wmask(&mut self, offset: usize, mask: &[u8]) {
        for (i, &m) in mask.iter().enumerate() {
            if let Some(w) = self.wmask.get_mut(offset.saturating_add(i)) {
                *w = m;
            }
        }
    }

    /// Makes the bits set in `mask` write-1-to-clear, replacing the previous W1C mask of those bytes.
    pub fn set_w1c(&mut self, offset: usize, mask: &[u8]) {
        for (i, &m) in mask.iter().enumerate() {
            if let Some(w) = self.w1c.get_mut(offset.saturating_add(i)) {
                *w = m;
            }
        }
    }

    /// Declares BAR `index` (0-5) with the given kind and size (a power of two: 4-256 bytes for I/O,
    /// 16 bytes to 2 GiB for memory). Its address starts at 0.
    pub fn add_bar(&mut self, index: usize, kind: BarKind, size: u64) -> Result<(), PciError> {
        if index >= 6 {
            return Err(PciError::BarIndex(index));
        }
        let (min, max, type_bits, low_mask) = match kind {
            BarKind::Io => (4u64, 256u64, 0x1u32, 0x3u32),
            BarKind::Memory32 { prefetchable } => {
                (16, 0x8000_0000, if prefetchable { 0x8 } else { 0 }, 0xf)
            }
        };
        if !size.is_power_of_two() || size < min || size > max {
            return Err(PciError::BarSize { index, size });
        }
        let size32 = u32::try_from(size).map_err(|_| PciError::BarSize { index, size })?;
        let offset = BAR0 + 4 * index;
        self.init_u32(offset, type_bits);
        self.set_wmask(offset, &(!(size32 - 1) & !low_mask).to_le_bytes());
        self.bars[index] = Some(BarDef { kind, size: size32 });
        Ok(())
    }

    /// Declares the expansion ROM BAR with a window of `size` bytes, rounded up to a power of two of at
    /// least 2 KiB; at most 16 MiB.
    pub fn set_rom_bar(&mut self, size: u64) -> Result<(), PciError> {
        if size == 0 || size > 16 << 20 {
            return Err(PciError::RomSize(size));
        }
        let size = size.next_power_of_two().max(2048);
        let size32 = u32::try_from(size).map_err(|_| PciError::RomSize(size))?;
        self.init_u32(ROM_ADDRESS, 0);
        self.set_wmask(
            ROM_ADDRESS,
            &((!(size32 - 1) & 0xffff_f800) | ROM_ENABLE).to_le_bytes(),
        );
        self.rom_size = Some(size32);
        Ok(())
    }

    /// The ROM BAR's window size, if declared.
    pub fn rom_size(&self) -> Option<u64> {
        self.rom_size.map(u64::from)
    }

    /// Reads `data.len()` bytes at `offset`; bytes past the end read as all ones.
    pub fn read(&self, offset: usize, data: &mut [u8]) {
        for (i, d) in data.iter_mut().enumerate() {
            *d = self
                .bytes
                .get(offset.saturating_add(i))
                .copied()
                .unwrap_or(0xff);
        }
    }

    /// A guest write of `data` at `offset` through the write and W1C masks; bytes past the end are ignored.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        for (i, &v) in data.iter().enumerate() {
            let o = offset.saturating_add(i);
            let (Some(b), Some(&wm), Some(&wc)) =
                (self.bytes.get_mut(o), self.wmask.get(o), self.w1c.get(o))
            else {
                continue;
            };
            *b = ((*b & !wm) | (v & wm)) & !(v & wc);
        }
    }

    /// The byte at `offset` (0xFF past the end).
    pub fn read_u8(&self, offset: usize) -> u8 {
        let mut b = [0u8; 1];
        self.read(offset, &mut b);
        b[0]
    }

    /// The word at `offset`.
    pub fn read_u16(&self, offset: usize) -> u16 {
        let mut b = [0u8; 2];
        self.read(offset, &mut b);
        u16::from_le_bytes(b)
    }

    /// The dword at `offset`.
    pub fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    /// A device-side store (hardware updating its own register), ignoring the guest masks.
    pub fn set_u8(&mut self, offset: usize, value: u8) {
        if let Some(b) = self.bytes.get_mut(offset) {
            *b = value;
        }
    }

    /// A device-side store of a word.
    pub fn set_u16(&mut self, offset: usize, value: u16) {
        for (i, v) in value.to_le_bytes().into_iter().enumerate() {
            self.set_u8(offset.saturating_add(i), v);
        }
    }

    /// A device-side store of a dword.
    pub fn set_u32(&mut self, offset: usize, value: u32) {
        for (i, v) in value.to_le_bytes().into_iter().enumerate() {
            self.set_u8(offset.saturating_add(i), v);
        }
    }

    /// The COMMAND register.
    pub fn command(&self) -> u16 {
        self.read_u16(COMMAND)
    }

    /// The STATUS register.
    pub fn status(&self) -> u16 {
        self.read_u16(STATUS)
    }

    /// COMMAND.IO.
    pub fn io_enabled(&self) -> bool {
        self.command() & COMMAND_IO != 0
    }

    /// COMMAND.MEMORY.
    pub fn memory_enabled(&self) -> bool {
        self.command() & COMMAND_MEMORY != 0
    }

    /// COMMAND.BUS_MASTER: the function may DMA.
    pub fn bus_master_enabled(&self) -> bool {
        self.command() & COMMAND_BUS_MASTER != 0
    }

    /// COMMAND.INTX_DISABLE.
    pub fn intx_disabled(&self) -> bool {
        self.command() & COMMAND_INTX_DISABLE != 0
    }

    /// Records the function's interrupt condition in STATUS.INTERRUPT.
    pub fn set_interrupt_status(&mut self, pending: bool) {
        let s = self.status() & !STATUS_INTERRUPT;
        self.set_u16(STATUS, s | if pending { STATUS_INTERRUPT } else { 0 });
    }

    /// The level INTx should have: an interrupt pending and INTx not disabled.
    pub fn intx_level(&self) -> bool {
        self.status() & STATUS_INTERRUPT != 0 && !self.intx_disabled()
    }

    /// The kind of BAR `index`, if declared.
    pub fn bar_kind(&self, index: usize) -> Option<BarKind> {
        self.bars.get(index).copied().flatten().map(|b| b.kind)
    }

    /// The size of BAR `index`, if declared.
    pub fn bar_size(&self, index: usize) -> Option<u64> {
        self.bars
            .get(index)
            .copied()
            .flatten()
            .map(|b| u64::from(b.size))
    }

    /// The address BAR `index` is programmed to (type bits stripped), if declared. It may not be
    /// decodable; see [`Region::is_decodable`].
    pub fn bar_address(&self, index: usize) -> Option<u64> {
        let bar = self.bars.get(index).copied().flatten()?;
        let raw = self.read_u32(BAR0 + 4 * index);
        // I/O BARs carry one type bit (bits 1:0 not address), memory BARs four; a 4- or 8-byte I/O BAR
        // has address bits 2 and 3.
        let type_bits = match bar.kind {
            BarKind::Io => 0x3,
            BarKind::Memory32 { .. } => 0xf,
        };
        Some(u64::from(raw & !(bar.size - 1) & !type_bits))
    }

    /// The ROM BAR's programmed address (enable bit stripped), if declared.
    pub fn rom_address(&self) -> Option<u64> {
        let size = self.rom_size?;
        Some(u64::from(
            self.read_u32(ROM_ADDRESS) & !(size - 1) & 0xffff_f800,
        ))
    }

    /// Whether the ROM BAR decodes: its enable bit and COMMAND.MEMORY.
    pub fn rom_enabled(&self) -> bool {
        self.rom_size.is_some()
            && self.read_u32(ROM_ADDRESS) & ROM_ENABLE != 0
            && self.memory_enabled()
    }

    /// The BAR and ROM windows decoded now: programmed to a decodable address with the matching COMMAND
    /// bit set. I/O windows accept up to 4-byte accesses, memory windows up to 8.
    pub fn decoded_regions(&self) -> Vec<Region> {
        let mut out = Vec::new();
        for index in 0..6u8 {
            let i = usize::from(index);
            let (Some(kind), Some(base), Some(len)) =
                (self.bar_kind(i), self.bar_address(i), self.bar_size(i))
            else {
                continue;
            };
            let (space, enabled, max_width) = match kind {
                BarKind::Io => (AddressSpace::Io, self.io_enabled(), 4),
                BarKind::Memory32 { .. } => (AddressSpace::Memory, self.memory_enabled(), 8),
            };
            let region = Region {
                id: RegionId::Bar(index),
                space,
                base,
                len,
                max_width,
            };
            if enabled && region.is_decodable() {
                out.push(region);
            }
        }
        if let (true, Some(base), Some(len)) =
            (self.rom_enabled(), self.rom_address(), self.rom_size())
        {
            let region = Region {
                id: RegionId::Rom,
                space: AddressSpace::Memory,
                base,
                len,
                max_width: 8,
            };
            if region.is_decodable() {
                out.push(region);
            }
        }
        out
    }

    /// Back to the power-on values.
    pub fn reset(&mut self) {
        self.bytes = self.defaults;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> ConfigSpace {
        let mut c = ConfigSpace::new(0x10ec, 0x8139, 0x020000, 0x20);
        c.add_bar(0, BarKind::Io, 256).unwrap();
        c.add_bar(
            1,
            BarKind::Memory32 {
                prefetchable: false,
            },
            256,
        )
        .unwrap();
        c.add_bar(2, BarKind::Memory32 { prefetchable: true }, 16 << 20)
            .unwrap();
        c.set_rom_bar(40_000).unwrap();
        c.set_interrupt_pin(1).unwrap();
        c
    }

    #[test]
    fn ids_and_class_are_read_only() {
        let mut c = dev();
        c.write(0, &[0xff; 4]);
        c.write(8, &[0xff; 4]);
        assert_eq!(c.read_u32(0), 0x8139_10ec);
        assert_eq!(c.read_u32(8), 0x0200_0020);
        c.write(INTERRUPT_LINE, &[0x0b, 0x04, 0xff, 0xff]);
        assert_eq!(
            c.read_u32(INTERRUPT_LINE),
            0x0000_010b,
            "line writable, pin read-only"
        );
    }

    #[test]
    fn bar_sizing_reads_back_mask_and_type_bits() {
        let mut c = dev();
        for bar in 0..3 {
            c.write(BAR0 + 4 * bar, &[0xff; 4]);
        }
        assert_eq!(c.read_u32(BAR0), 0xffff_ff01);
        assert_eq!(c.read_u32(BAR0 + 4), 0xffff_ff00);
        assert_eq!(c.read_u32(BAR0 + 8), 0xff00_0008);
        assert_eq!(c.read_u32(BAR0 + 12), 0, "undeclared BAR reads 0");
        c.write(ROM_ADDRESS, &[0xff; 4]);
        assert_eq!(
            c.read_u32(ROM_ADDRESS),
            0xffff_0001,
            "40000 bytes round up to 64 KiB"
        );
    }

    #[test]
    fn small_io_bars_keep_address_bits_2_and_3() {
        let mut c = ConfigSpace::new(1, 2, 0, 0);
        c.add_bar(4, BarKind::Io, 4).unwrap();
        c.add_bar(5, BarKind::Io, 8).unwrap();
        c.write(BAR0 + 16, &[0xff; 4]);
        assert_eq!(c.read_u32(BAR0 + 16), 0xffff_fffd);
        c.write(BAR0 + 16, &0x0c0cu32.to_le_bytes());
        c.write(BAR0 + 20, &0x0c18u32.to_le_bytes());
        assert_eq!(c.bar_address(4), Some(0x0c0c));
        assert_eq!(c.bar_address(5), Some(0x0c18));
    }

    #[test]
    fn partial_writes_to_bars_merge_bytes() {
        let mut c = dev();
        c.write(BAR0 + 1, &[0xc1]);
        assert_eq!(c.read_u32(BAR0), 0x0000_c101);
        c.write(BAR0 + 2, &[0x12, 0x00]);
        assert_eq!(c.bar_address(0), Some(0x12_c100));
    }

    #[test]
    fn status_error_bits_are_write_one_to_clear() {
        let mut c = dev();
        c.set_u16(STATUS, 0xf900 | STATUS_INTERRUPT);
        // A dword write at 0x04 sets COMMAND and clears only the STATUS bits written as one.
        c.write(COMMAND, &0x2000_0007u32.to_le_bytes());
        assert_eq!(c.command(), 0x0007);
        assert_eq!(c.status(), 0xd900 | STATUS_INTERRUPT);
        c.write(STATUS, &[0xff, 0xff]);
        assert_eq!(
            c.status(),
            STATUS_INTERRUPT,
            "interrupt status is read-only"
        );
        c.write(COMMAND, &[0xff, 0xff]);
        assert_eq!(c.command(), 0x0547);
    }

    #[test]
    fn decoded_regions_follow_command_and_validity() {
        let mut c = dev();
        c.write(BAR0, &0xc000u32.to_le_bytes());
        c.write(BAR0 + 4, &0xfebf_1000u32.to_le_bytes());
        c.write(BAR0 + 8, &0xfd00_0000u32.to_le_bytes());
        c.write(ROM_ADDRESS, &0xfebe_0001u32.to_le_bytes());
        assert!(c.decoded_regions().is_empty());
        c.write(COMMAND, &[COMMAND_IO as u8]);
        let r = c.decoded_regions();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].id, r[0].base, r[0].len),
            (RegionId::Bar(0), 0xc000, 256)
        );
        c.write(COMMAND, &[(COMMAND_IO | COMMAND_MEMORY) as u8]);
        let ids: Vec<_> = c.decoded_regions().iter().map(|r| (r.id, r.base)).collect();
        assert_eq!(
            ids,
            vec![
                (RegionId::Bar(0), 0xc000),
                (RegionId::Bar(1), 0xfebf_1000),
                (RegionId::Bar(2), 0xfd00_0000),
                (RegionId::Rom, 0xfebe_0000)
            ]
        );
        // An I/O BAR above 64 KiB (mid-sizing) is not decoded.
        c.write(BAR0, &[0xff; 4]);
        assert!(c.decoded_regions().iter().all(|r| r.id != RegionId::Bar(0)));
    }

    #[test]
    fn out_of_range_accesses_do_not_panic() {
        let mut c = dev();
        let mut d = [0u8; 4];
        c.read(254, &mut d);
        assert_eq!(d[2..], [0xff, 0xff]);
        c.write(usize::MAX, &[1, 2, 3, 4]);
        c.write(255, &[1, 2, 3, 4]);
        c.init_u32(usize::MAX - 1, 5);
        c.set_wmask(usize::MAX, &[1, 2]);
        assert_eq!(c.read_u8(usize::MAX), 0xff);
    }

    #[test]
    fn invalid_declarations_are_errors() {
        let mut c = ConfigSpace::new(1, 2, 0, 0);
        assert_eq!(c.add_bar(6, BarKind::Io, 16), Err(PciError::BarIndex(6)));
        assert!(c.add_bar(0, BarKind::Io, 24).is_err());
        assert!(c.add_bar(0, BarKind::Io, 512).is_err());
        assert!(c
            .add_bar(
                0,
                BarKind::Memory32 {
                    prefetchable: false
                },
                8
            )
            .is_err());
        assert!(c
            .add_bar(
                0,
                BarKind::Memory32 {
                    prefetchable: false
                },
                1 << 32
            )
            .is_err());
        assert!(c.set_rom_bar(0).is_err());
        assert!(c.set_rom_bar((16 << 20) + 1).is_err());
        assert_eq!(c.set_interrupt_pin(5), Err(PciError::Pin(5)));
    }

    #[test]
    fn reset_restores_power_on_values() {
        let mut c = dev();
        c.write(COMMAND, &[7]);
        c.write(BAR0, &0xc000u32.to_le_bytes());
        c.write(INTERRUPT_LINE, &[11]);
        c.reset();
        assert_eq!(c.command(), 0);
        assert_eq!(c.read_u32(BAR0), 1);
        assert_eq!(c.read_u8(INTERRUPT_LINE), 0);
        assert_eq!(c.read_u16(VENDOR_ID), 0x10ec);
    }

    #[test]
    fn snapshot_bytes_of_the_wrong_length_are_rejected() {
        use serde::de::value::{Error, SeqDeserializer};
        let ok: SeqDeserializer<_, Error> = SeqDeserializer::new(0..=255u8);
        let bytes = bytes256::deserialize(ok).unwrap();
        assert_eq!(bytes[255], 255);
        let short: SeqDeserializer<_, Error> = SeqDeserializer::new(0..255u8);
        assert!(bytes256::deserialize(short).is_err());
    }
}
