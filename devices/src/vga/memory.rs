//! VRAM and the CPU's view of it through the 0xA0000-0xBFFFF window.
//!
//! # Layout
//!
//! VGA memory is four planes. VRAM here is one byte array in which byte `4 × offset + plane` holds
//! `plane` at `offset`. With that layout chain-4 (mode 13h), where CPU address `a` selects plane `a & 3`,
//! is simply VRAM byte `a`, and the Bochs VBE linear framebuffer (BAR0) is the same bytes read straight
//! through, so a packed-pixel mode set through either path shows the same picture. (Real chain-4
//! hardware puts address `a` at plane offset `a & !3`; nothing that runs on a VGA can tell, because the
//! CRTC in doubleword mode reads those same bytes back, and the renderer follows this layout.)
//!
//! # The window
//!
//! GR6 bits 3:2 choose what the window decodes: 128 KiB at A0000, 64 KiB at A0000, 32 KiB at B0000 (mono
//! text) or 32 KiB at B8000 (colour text); addresses outside read 0xFF and drop writes. Then, by
//! the sequencer's memory mode:
//! - chain-4 (SR4 bit 3): the address is the VRAM byte, written if its plane is in the map mask;
//! - odd/even (SR4 bit 2 clear for writes, GR5 bit 4 for reads): address bit 0 selects the odd or even
//!   planes (0/2 or 1/3; reads take the pair from GR4 bit 1) and the plane offset is the address with
//!   bit 0 cleared. Text modes use it: characters in plane 0, attributes in plane 1, the font in plane 2;
//! - planar: the address is the plane offset. A read loads all four latches and returns plane GR4 (read
//!   mode 0) or the colour-compare result (read mode 1). Writes go to the planes in the map mask,
//!   through write modes 0-3: data rotate, set/reset, the logical function with the latches and the bit
//!   mask, exactly as the graphics controller's data path does.
//!
//! While a Bochs VBE mode of 8 bpp or more is enabled, the window is instead a 64 KiB view of VRAM at
//! BANK × 64 KiB (the VBE "window A"). In the 4 bpp VBE modes the VGA data path stays and BANK moves the
//! plane offset.
//!
//! # Dirty tracking
//!
//! Every write through the window or the linear framebuffer marks its VRAM block dirty. The renderer
//! re-reads only the scan lines that touch dirty blocks. Blocks are [`DIRTY_BLOCK`] bytes rather than
//! 4 KiB pages because VGA lines are short: a page holds twelve lines of mode 13h or 12h, so a single
//! changed pixel would cost twelve lines; with 256-byte blocks it costs one or two, for a bitmap of 8 KiB
//! per 16 MiB. When the machine maps VRAM into the guest as RAM (the linear framebuffer on KVM), guest
//! writes bypass the device; the display refresh then feeds the mapper's page-granular dirty log in
//! through [`Vram::mark_dirty`] before it renders.
//!
//! # The memory itself
//!
//! VRAM is its own anonymous mapping ([`HostMemory`], vm-memory's `MmapRegion`), not a `Vec`, so that the
//! very same host pages can be a KVM memory slot. A vCPU may then write them at any moment, so the device
//! never forms a Rust reference to them: every access is a volatile access or a vm-memory copy into or
//! out of a plain buffer (the renderers copy a scan line into a scratch buffer before converting it). A
//! torn read can at worst show a pixel half-updated for one frame, and the dirty log brings the finished
//! write to the next frame.
//!
//! The mapping is private anonymous memory, exactly what vm-memory (and so the machine) uses for guest
//! RAM: KVM follows this process's page tables, so device and guest see the same pages, and pages nobody
//! wrote are never allocated, even when read (a 256 MiB VRAM costs nothing until the guest draws).

use std::sync::Arc;

use vm_memory::VolatileMemory;

use super::regs::{
    GR_BIT_MASK, GR_COLOR_COMPARE, GR_COLOR_DONT_CARE, GR_DATA_ROTATE, GR_ENABLE_SET_RESET,
    GR_MISC, GR_MODE, GR_READ_MAP, GR_SET_RESET, SR_MAP_MASK, SR_MEMORY_MODE,
};
use super::Core;
use crate::pci::HostMemory;

/// Size of a dirty-tracking block.
pub const DIRTY_BLOCK: u64 = 256;
const BLOCK_SHIFT: u32 = 8;

/// Bytes zeroed or compared per step by [`Vram::clear`] and [`Vram::load`].
const CHUNK: usize = 64 * 1024;

/// Video memory: its own host mapping plus a bitmap of blocks written since the renderer last looked.
pub struct Vram {
    memory: Arc<HostMemory>,
    dirty: Vec<u64>,
}

impl Vram {
    /// `size` bytes of zeroed VRAM.
    pub fn new(size: usize) -> Result<Vram, vm_memory::mmap::MmapRegionError> {
        let blocks = size.div_ceil(DIRTY_BLOCK as usize);
        Ok(Vram {
            memory: Arc::new(HostMemory::new(size)?),
            dirty: vec![0; blocks.div_ceil(64)],
        })
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.memory.size() as u64
    }

    /// Whether there is no VRAM at all (never, for a constructed device).
    pub fn is_empty(&self) -> bool {
        self.memory.size() == 0
    }

    /// The mapping, for a machine that maps it into the guest.
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.memory
    }

    /// `offset..offset + len` as a host range, if it lies wholly inside VRAM.
    fn range(&self, offset: u64, len: usize) -> Option<usize> {
        let start = usize::try_from(offset).ok()?;
        (start.checked_add(len)? <= self.memory.size()).then_some(start)
    }

    /// The byte at `i`, or 0xFF past the end.
    pub fn get(&self, i: u64) -> u8 {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.memory.get_ref::<u8>(i).ok())
            .map_or(0xff, |b| b.load())
    }

    /// The four bytes at `i` (the four planes of plane offset `i / 4`); bytes past the end read 0xFF.
    pub fn get4(&self, i: u64) -> [u8; 4] {
        let mut out = [0xff; 4];
        self.read(i, &mut out);
        out
    }

    /// Writes the byte at `i` (dropped past the end) and marks its block dirty.
    pub fn set(&mut self, i: u64, value: u8) {
        if let Some(b) = usize::try_from(i)
            .ok()
            .and_then(|i| self.memory.get_ref::<u8>(i).ok())
        {
            b.store(value);
            self.mark_block(i >> BLOCK_SHIFT);
        }
    }

    fn mark_block(&mut self, block: u64) {
        if let Some(w) = usize::try_from(block / 64)
            .ok()
            .and_then(|i| self.dirty.get_mut(i))
        {
            *w |= 1 << (block % 64);
        }
    }

    /// How many of `len` bytes at `offset` lie inside VRAM.
    fn inside(&self, offset: u64, len: usize) -> usize {
        let left = self.len().saturating_sub(offset);
        usize::try_from(left).map_or(len, |left| left.min(len))
    }

    /// Reads `data.len()` bytes at `offset`; bytes past the end read 0xFF.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        let n = self.inside(offset, data.len());
        let (inside, past) = data.split_at_mut(n);
        if let Some(start) = self.range(offset, n).filter(|_| n > 0) {
            if let Ok(src) = self.memory.get_slice(start, n) {
                src.copy_to(inside);
            }
        }
        past.fill(0xff);
    }

    /// Copies the `len` bytes at `offset` into `buf` (resized to `len`) and returns them, or `None` (and
    /// leaves `buf` alone) when they do not lie wholly inside VRAM. The renderers' way to read a scan line.
    pub fn read_exact<'a>(
        &self,
        offset: u64,
        len: usize,
        buf: &'a mut Vec<u8>,
    ) -> Option<&'a [u8]> {
        let src = self.memory.get_slice(self.range(offset, len)?, len).ok()?;
        buf.resize(len, 0);
        src.copy_to(buf.as_mut_slice());
        Some(buf.as_slice())
    }

    /// Writes `data` at `offset`; bytes past the end are dropped.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let n = self.inside(offset, data.len());
        let Some(start) = self.range(offset, n).filter(|_| n > 0) else {
            return;
        };
        if let Ok(dst) = self.memory.get_slice(start, n) {
            dst.copy_from(&data[..n]);
            self.mark_dirty(offset, n as u64);
        }
    }

    /// Marks `len` bytes at `offset` dirty (clipped to VRAM).
    pub fn mark_dirty(&mut self, offset: u64, len: u64) {
        if len == 0 || offset >= self.len() {
            return;
        }
        let end = offset.saturating_add(len).min(self.len());
        for block in (offset >> BLOCK_SHIFT)..=((end - 1) >> BLOCK_SHIFT) {
            self.mark_block(block);
        }
    }

    /// Marks all of VRAM dirty.
    pub fn mark_all_dirty(&mut self) {
        self.dirty.fill(u64::MAX);
    }

    /// Whether any byte of `offset..offset + len` was written since [`Vram::clear_dirty`].
    pub fn range_dirty(&self, offset: u64, len: u64) -> bool {
        if len == 0 {
            return false;
        }
        let end = offset.saturating_add(len - 1);
        (offset >> BLOCK_SHIFT..=end >> BLOCK_SHIFT).any(|block| {
            usize::try_from(block / 64)
                .ok()
                .and_then(|i| self.dirty.get(i))
                .is_some_and(|w| w & (1 << (block % 64)) != 0)
        })
    }

    /// Whether any block is dirty.
    pub fn any_dirty(&self) -> bool {
        self.dirty.iter().any(|&w| w != 0)
    }

    /// Forgets which blocks were written.
    pub fn clear_dirty(&mut self) {
        self.dirty.fill(0);
    }

    /// Zeroes VRAM and marks it all dirty.
    pub fn clear(&mut self) {
        self.zero_from(0);
        self.mark_all_dirty();
    }

    /// Zeroes everything from `offset` on. Chunks that already read as zero are left unwritten, so pages
    /// nobody wrote stay unallocated.
    fn zero_from(&self, offset: usize) {
        let zeros = vec![0u8; CHUNK];
        let mut seen = vec![0u8; CHUNK];
        let mut at = offset;
        while at < self.memory.size() {
            let n = CHUNK.min(self.memory.size() - at);
            let Ok(chunk) = self.memory.get_slice(at, n) else {
                return;
            };
            chunk.copy_to(&mut seen[..n]);
            // A slice comparison (memcmp) rather than a byte loop: this runs over all of VRAM.
            if seen[..n] != zeros[..n] {
                chunk.copy_from(&zeros[..n]);
            }
            at += n;
        }
    }

    /// Replaces the contents with `data` (the rest zeroed); marks everything dirty.
    pub fn load(&mut self, data: &[u8]) {
        let n = data.len().min(self.memory.size());
        if let Ok(dst) = self.memory.get_slice(0, n) {
            dst.copy_from(&data[..n]);
        }
        self.zero_from(n);
        self.mark_all_dirty();
    }

    /// A copy of all of VRAM.
    pub fn contents(&self) -> Vec<u8> {
        let mut out = vec![0; self.memory.size()];
        self.read(0, &mut out);
        out
    }
}

/// Each byte of `v` (0-255) repeated in all four latch lanes.
fn spread(v: u8) -> u32 {
    u32::from(v) * 0x0101_0101
}

/// Plane `p`'s lane of a 4-lane value.
fn lane(v: u32, p: u32) -> u8 {
    (v >> (8 * p)) as u8
}

/// Four lanes, each 0xFF where bit `p` of `bits` is set, else 0.
fn expand_bits(bits: u8) -> u32 {
    (0..4)
        .filter(|p| bits & (1 << p) != 0)
        .fold(0, |acc, p| acc | (0xff << (8 * p)))
}

impl Core {
    /// Window offset → offset inside the range GR6 maps, if it maps this address.
    fn decode_window(&self, addr: u64) -> Option<u64> {
        let (base, len) = match (self.regs.gr(GR_MISC) >> 2) & 3 {
            0 => (0, 0x2_0000),
            1 => (0, 0x1_0000),
            2 => (0x1_0000, 0x8000),
            _ => (0x1_8000, 0x8000),
        };
        addr.checked_sub(base).filter(|&o| o < len)
    }

    /// Plane-offset bias from the VBE bank in the planar (4 bpp) VBE modes.
    fn planar_bank(&self) -> u64 {
        if self.vbe.enabled() {
            self.vbe.bank_offset()
        } else {
            0
        }
    }

    /// Whether the window is a linear 64 KiB bank (a VBE mode of 8 bpp or more).
    fn banked_linear(&self) -> bool {
        self.vbe.enabled() && self.vbe.bpp != 4
    }

    fn plane_index(&self, offset: u64, plane: u32) -> Option<u64> {
        let i = offset.checked_mul(4)?.checked_add(u64::from(plane))?;
        (i < self.vram.len()).then_some(i)
    }

    /// A CPU read of one byte at window offset `addr` (0..0x20000).
    pub fn window_read(&mut self, addr: u64) -> u8 {
        let Some(off) = self.decode_window(addr) else {
            return 0xff;
        };
        if self.banked_linear() {
            return self.vram.get(self.vbe.bank_offset() + off);
        }
        let mode = self.regs.sr(SR_MEMORY_MODE);
        if mode & 0x08 != 0 {
            return self.vram.get(off);
        }
        let gr5 = self.regs.gr(GR_MODE);
        let (offset, odd_even) = if gr5 & 0x10 != 0 {
            (off & !1, true)
        } else {
            (off, false)
        };
        let offset = offset + self.planar_bank();
        let Some(base) = self.plane_index(offset, 0) else {
            return 0xff;
        };
        if base + 3 >= self.vram.len() {
            return 0xff;
        }
        let latch = (0..4u32).fold(0u32, |acc, p| {
            acc | (u32::from(self.vram.get(base + u64::from(p))) << (8 * p))
        });
        self.regs.latch = latch;
        if gr5 & 0x08 != 0 {
            // Read mode 1: colour compare over the planes that are not "don't care".
            let care = self.regs.gr(GR_COLOR_DONT_CARE) & 0x0f;
            let compare = self.regs.gr(GR_COLOR_COMPARE) & 0x0f;
            let diff = latch ^ expand_bits(compare);
            let diff = diff & expand_bits(care);
            let any = (0..4).fold(0u8, |acc, p| acc | lane(diff, p));
            return !any;
        }
        let plane = if odd_even {
            u32::from(self.regs.gr(GR_READ_MAP) & 2) | (off & 1) as u32
        } else {
            u32::from(self.regs.gr(GR_READ_MAP) & 3)
        };
        lane(latch, plane)
    }

    /// A CPU write of one byte at window offset `addr` (0..0x20000).
    pub fn window_write(&mut self, addr: u64, value: u8) {
        let Some(off) = self.decode_window(addr) else {
            return;
        };
        if self.banked_linear() {
            self.vram.set(self.vbe.bank_offset() + off, value);
            return;
        }
        let map_mask = self.regs.sr(SR_MAP_MASK) & 0x0f;
        let mode = self.regs.sr(SR_MEMORY_MODE);
        if mode & 0x08 != 0 {
            if map_mask & (1 << (off & 3)) != 0 {
                self.vram.set(off, value);
                self.font_written |= off & 3 == 2;
            }
            return;
        }
        if mode & 0x04 == 0 {
            // Odd/even: even addresses reach planes 0 and 2, odd ones 1 and 3.
            let pair = if off & 1 == 0 { 0b0101 } else { 0b1010 };
            let mask = map_mask & pair;
            let offset = (off & !1) + self.planar_bank();
            for p in 0..4u32 {
                if mask & (1 << p) != 0 {
                    if let Some(i) = self.plane_index(offset, p) {
                        self.vram.set(i, value);
                    }
                }
            }
            self.font_written |= mask & 0b0100 != 0;
            return;
        }
        let offset = off + self.planar_bank();
        let Some(base) = self.plane_index(offset, 0) else {
            return;
        };
        let data = self.graphics_data_path(value);
        for p in 0..4u32 {
            if map_mask & (1 << p) != 0 {
                self.vram.set(base + u64::from(p), lane(data, p));
            }
        }
        self.font_written |= map_mask & 0b0100 != 0;
    }

    /// The four plane bytes the graphics controller produces for a CPU byte, per write mode.
    fn graphics_data_path(&self, value: u8) -> u32 {
        let r = &self.regs;
        let latch = r.latch;
        let rotate = u32::from(r.gr(GR_DATA_ROTATE) & 7);
        let function = (r.gr(GR_DATA_ROTATE) >> 3) & 3;
        let set_reset = r.gr(GR_SET_RESET) & 0x0f;
        let mut bit_mask = r.gr(GR_BIT_MASK);
        let data = match r.gr(GR_MODE) & 3 {
            0 => {
                let v = spread(value.rotate_right(rotate));
                let enable = expand_bits(r.gr(GR_ENABLE_SET_RESET) & 0x0f);
                (v & !enable) | (expand_bits(set_reset) & enable)
            }
            1 => return latch,
            2 => expand_bits(value & 0x0f),
            _ => {
                bit_mask &= value.rotate_right(rotate);
                expand_bits(set_reset)
            }
        };
        let data = match function {
            0 => data,
            1 => data & latch,
            2 => data | latch,
            _ => data ^ latch,
        };
        let mask = spread(bit_mask);
        (data & mask) | (latch & !mask)
    }
}
