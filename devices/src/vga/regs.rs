//! The legacy VGA register file: miscellaneous output, sequencer, graphics controller, CRT controller,
//! attribute controller, DAC and the input status registers, as the CPU sees them through ports
//! 0x3B4/0x3B5/0x3BA, 0x3C0-0x3CF and 0x3D4/0x3D5/0x3DA.
//!
//! # Addressing
//!
//! Most groups are an index port followed by a data port (sequencer 0x3C4/0x3C5, graphics 0x3CE/0x3CF,
//! CRTC 0x3D4/0x3D5). Software often writes both with one 16-bit `OUT` (index in the low byte); the
//! adapter splits every wider access into bytes at consecutive ports, which gives exactly that.
//!
//! The CRTC and input status 1 answer at 0x3Dx when MISC bit 0 (I/O address select) is 1 (colour) and at
//! 0x3Bx when it is 0 (monochrome); the other set is not decoded (reads float, writes are dropped), so a
//! colour card does not collide with an MDA at 0x3B4.
//!
//! The attribute controller has a single port for index and data: a flip-flop says which the next write
//! to 0x3C0 is. Reading input status 1 resets it to "index", which is how every driver starts an attribute
//! access. Index bit 5 (PAS, palette address source) must be set for the screen to show anything; BIOSes
//! clear it while they load the palette.
//!
//! CR11 bit 7 write-protects CRTC registers 0-7 (the horizontal timing), except the line-compare bit 8
//! in CR07 bit 4, as on real VGA. Reserved bits of every register read back as 0 (the masks below).
//!
//! # Input status 1 (retrace)
//!
//! Nothing here scans a real beam, but software polls bit 3 (vertical retrace) and bit 0 (display
//! disabled) to time palette updates and page flips, with loops like "wait while in retrace, then wait
//! for retrace". So the bits are derived from a counter of status reads: out of every
//! [`RETRACE_PERIOD`] reads the last [`RETRACE_READS`] report vertical retrace, and bit 0 toggles on
//! every read (it is also set during vertical retrace). Any polling loop for either edge therefore ends
//! within a few reads, whatever the host's speed, and the behaviour is deterministic for tests. A clock
//! would be more faithful but a guest spinning with a stopped clock (or a test clock) would hang.
//!
//! # DAC
//!
//! 256 entries of red, green, blue. Writing 0x3C8 sets the write index, writing 0x3C7 the read index;
//! each 0x3C9 access moves through R, G, B and then to the next entry. Values are 6 bits, or 8 bits
//! while the Bochs VBE "8-bit DAC" flag is set.

use serde::{Deserialize, Serialize};

/// Sequencer registers (SR0-SR4).
pub const SEQ_COUNT: usize = 5;
/// Graphics controller registers (GR0-GR8).
pub const GC_COUNT: usize = 9;
/// CRT controller registers (CR00-CR18).
pub const CRTC_COUNT: usize = 25;
/// Attribute controller registers (AR00-AR14).
pub const ATTR_COUNT: usize = 21;
/// Entries in the DAC.
pub const DAC_ENTRIES: usize = 256;

/// Status reads per simulated frame; see the module documentation.
pub const RETRACE_PERIOD: u32 = 16;
/// Status reads per frame that report vertical retrace.
pub const RETRACE_READS: u32 = 2;

/// Writable bits of SR0-SR4.
const SEQ_MASK: [u8; SEQ_COUNT] = [0x03, 0x3d, 0x0f, 0x3f, 0x0e];
/// Writable bits of GR0-GR8.
const GC_MASK: [u8; GC_COUNT] = [0x0f, 0x0f, 0x0f, 0x1f, 0x03, 0x7b, 0x0f, 0x0f, 0xff];

// Register numbers used elsewhere in the device.
/// SR1: clocking mode (bit 0 8-dot characters, bit 3 dot clock / 2, bit 5 screen off).
pub const SR_CLOCKING: usize = 1;
/// SR2: map mask (planes the CPU writes).
pub const SR_MAP_MASK: usize = 2;
/// SR3: character map select.
pub const SR_CHAR_MAP: usize = 3;
/// SR4: memory mode (bit 2 sequential/no odd-even, bit 3 chain-4).
pub const SR_MEMORY_MODE: usize = 4;
/// GR0: set/reset.
pub const GR_SET_RESET: usize = 0;
/// GR1: enable set/reset.
pub const GR_ENABLE_SET_RESET: usize = 1;
/// GR2: colour compare.
pub const GR_COLOR_COMPARE: usize = 2;
/// GR3: data rotate (bits 2:0) and function select (bits 4:3).
pub const GR_DATA_ROTATE: usize = 3;
/// GR4: read map select.
pub const GR_READ_MAP: usize = 4;
/// GR5: mode (write mode, read mode, odd/even, shift modes).
pub const GR_MODE: usize = 5;
/// GR6: miscellaneous (graphics, chain odd/even, memory map select).
pub const GR_MISC: usize = 6;
/// GR7: colour don't care.
pub const GR_COLOR_DONT_CARE: usize = 7;
/// GR8: bit mask.
pub const GR_BIT_MASK: usize = 8;
/// CR01: horizontal display end.
pub const CR_H_DISPLAY_END: usize = 0x01;
/// CR07: overflow.
pub const CR_OVERFLOW: usize = 0x07;
/// CR09: maximum scan line (bits 4:0), double scan (bit 7).
pub const CR_MAX_SCAN: usize = 0x09;
/// CR0A: cursor start (bits 4:0), cursor off (bit 5).
pub const CR_CURSOR_START: usize = 0x0a;
/// CR0B: cursor end.
pub const CR_CURSOR_END: usize = 0x0b;
/// CR0C: start address high.
pub const CR_START_HI: usize = 0x0c;
/// CR0D: start address low.
pub const CR_START_LO: usize = 0x0d;
/// CR0E: cursor location high.
pub const CR_CURSOR_HI: usize = 0x0e;
/// CR0F: cursor location low.
pub const CR_CURSOR_LO: usize = 0x0f;
/// CR11: vertical retrace end; bit 7 protects CR00-CR07.
pub const CR_V_RETRACE_END: usize = 0x11;
/// CR12: vertical display end (low 8 bits).
pub const CR_V_DISPLAY_END: usize = 0x12;
/// CR13: offset (line pitch).
pub const CR_OFFSET: usize = 0x13;
/// CR14: underline location; bit 6 doubleword addressing.
pub const CR_UNDERLINE: usize = 0x14;
/// CR17: mode control (bits 0/1 CGA/Hercules address substitution, bit 5 address wrap, bit 6 byte mode).
pub const CR_MODE: usize = 0x17;
/// AR10: attribute mode control.
pub const AR_MODE: usize = 0x10;
/// AR12: colour plane enable.
pub const AR_PLANE_ENABLE: usize = 0x12;
/// AR14: colour select.
pub const AR_COLOR_SELECT: usize = 0x14;
/// Attribute index bit 5: palette address source (display enabled).
pub const ATTR_PAS: u8 = 0x20;

/// The DAC (RAMDAC): palette, its index registers and the pixel mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dac {
    /// Pixel mask (0x3C6), ANDed with every colour index.
    pub pel_mask: u8,
    /// Entry the next 0x3C9 write goes to.
    pub write_index: u8,
    /// Entry the next 0x3C9 read comes from.
    pub read_index: u8,
    /// Colour component (0 red, 1 green, 2 blue) of the next 0x3C9 access.
    pub component: u8,
    /// Whether the last index write was to 0x3C7 (reported by reading 0x3C7).
    pub reading: bool,
    /// Components written so far for the entry being written.
    pub latch: [u8; 3],
    /// `DAC_ENTRIES` × (R, G, B).
    pub palette: Vec<u8>,
}

impl Default for Dac {
    fn default() -> Self {
        Dac {
            pel_mask: 0xff,
            write_index: 0,
            read_index: 0,
            component: 0,
            reading: false,
            latch: [0; 3],
            palette: vec![0; DAC_ENTRIES * 3],
        }
    }
}

impl Dac {
    /// The colour of entry `index` as 0x00RRGGBB; `eight_bit` when the DAC is in 8-bit mode.
    pub fn rgb(&self, index: u8, eight_bit: bool) -> u32 {
        let i = usize::from(index) * 3;
        let scale = |v: u8| -> u32 {
            if eight_bit {
                u32::from(v)
            } else {
                let v = u32::from(v & 0x3f);
                (v << 2) | (v >> 4)
            }
        };
        let c = |k: usize| scale(self.palette.get(i + k).copied().unwrap_or(0));
        (c(0) << 16) | (c(1) << 8) | c(2)
    }
}

/// Every legacy VGA register; part of the device's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    /// Miscellaneous output (0x3C2 write, 0x3CC read).
    pub misc: u8,
    /// Feature control (0x3BA/0x3DA write, 0x3CA read).
    pub feature: u8,
    /// Sequencer index (0x3C4).
    pub seq_index: u8,
    /// Sequencer registers.
    pub seq: [u8; SEQ_COUNT],
    /// Graphics controller index (0x3CE).
    pub gc_index: u8,
    /// Graphics controller registers.
    pub gc: [u8; GC_COUNT],
    /// CRTC index (0x3B4/0x3D4).
    pub crtc_index: u8,
    /// CRTC registers.
    pub crtc: [u8; CRTC_COUNT],
    /// Attribute index including PAS (0x3C0).
    pub attr_index: u8,
    /// The attribute flip-flop: true when the next 0x3C0 write is data.
    pub attr_data_next: bool,
    /// Attribute registers.
    pub attr: [u8; ATTR_COUNT],
    /// The DAC.
    pub dac: Dac,
    /// Input status 1 reads so far (drives the retrace bits).
    pub status_reads: u32,
    /// The four plane latches, plane 0 in the low byte.
    pub latch: u32,
}

impl Default for Regs {
    fn default() -> Self {
        Regs {
            misc: 0,
            feature: 0,
            seq_index: 0,
            seq: [0; SEQ_COUNT],
            gc_index: 0,
            gc: [0; GC_COUNT],
            crtc_index: 0,
            crtc: [0; CRTC_COUNT],
            attr_index: 0,
            attr_data_next: false,
            attr: [0; ATTR_COUNT],
            dac: Dac::default(),
            status_reads: 0,
            latch: 0,
        }
    }
}

/// What a register write changed, for the renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteEffect {
    /// Nothing the renderer does not notice by itself (it compares the registers it uses).
    None,
    /// A DAC entry or the pixel mask changed: the whole screen must be redrawn.
    Palette,
}

impl Regs {
    /// Whether the CRTC and status registers are at 0x3Dx (colour) rather than 0x3Bx.
    pub fn color(&self) -> bool {
        self.misc & 1 != 0
    }

    /// A sequencer register (0 when out of range).
    pub fn sr(&self, i: usize) -> u8 {
        self.seq.get(i).copied().unwrap_or(0)
    }

    /// A graphics controller register (0 when out of range).
    pub fn gr(&self, i: usize) -> u8 {
        self.gc.get(i).copied().unwrap_or(0)
    }

    /// A CRTC register (0 when out of range).
    pub fn cr(&self, i: usize) -> u8 {
        self.crtc.get(i).copied().unwrap_or(0)
    }

    /// An attribute register (0 when out of range).
    pub fn ar(&self, i: usize) -> u8 {
        self.attr.get(i).copied().unwrap_or(0)
    }

    /// Whether `port` is the CRTC index/data or status port of the set MISC bit 0 selects.
    fn decodes(&self, port: u16) -> bool {
        match port {
            0x3b4 | 0x3b5 | 0x3ba => !self.color(),
            0x3d4 | 0x3d5 | 0x3da => self.color(),
            _ => true,
        }
    }

    /// A one-byte read of `port`. `dac8` says whether the DAC is in 8-bit mode.
    pub fn read(&mut self, port: u16, dac8: bool) -> u8 {
        if !self.decodes(port) {
            return 0xff;
        }
        match port {
            0x3c0 => self.attr_index,
            0x3c1 => self.ar(usize::from(self.attr_index & 0x1f)),
            // Input status 0: no interrupt pending, switch sense 0.
            0x3c2 => 0x00,
            0x3c3 => 0x01,
            0x3c4 => self.seq_index,
            0x3c5 => self.sr(usize::from(self.seq_index)),
            0x3c6 => self.dac.pel_mask,
            0x3c7 => {
                if self.dac.reading {
                    0x03
                } else {
                    0x00
                }
            }
            0x3c8 => self.dac.write_index,
            0x3c9 => self.dac_read(dac8),
            0x3ca => self.feature,
            0x3cc => self.misc,
            0x3ce => self.gc_index,
            0x3cf => self.gr(usize::from(self.gc_index)),
            0x3b4 | 0x3d4 => self.crtc_index,
            0x3b5 | 0x3d5 => self.cr(usize::from(self.crtc_index)),
            0x3ba | 0x3da => self.input_status_1(),
            _ => 0xff,
        }
    }

    fn input_status_1(&mut self) -> u8 {
        self.attr_data_next = false;
        let n = self.status_reads;
        self.status_reads = n.wrapping_add(1);
        let vretrace = n % RETRACE_PERIOD >= RETRACE_PERIOD - RETRACE_READS;
        let mut v = 0;
        if vretrace {
            v |= 0x08 | 0x01;
        }
        if n & 1 != 0 {
            v |= 0x01;
        }
        v
    }

    fn dac_read(&mut self, dac8: bool) -> u8 {
        let i = usize::from(self.dac.read_index) * 3 + usize::from(self.dac.component.min(2));
        let v = self.dac.palette.get(i).copied().unwrap_or(0);
        self.dac.component += 1;
        if self.dac.component >= 3 {
            self.dac.component = 0;
            self.dac.read_index = self.dac.read_index.wrapping_add(1);
        }
        if dac8 {
            v
        } else {
            v & 0x3f
        }
    }

    /// A one-byte write of `value` to `port`.
    pub fn write(&mut self, port: u16, value: u8, dac8: bool) -> WriteEffect {
        if !self.decodes(port) {
            return WriteEffect::None;
        }
        match port {
            0x3c0 => self.attr_write(value),
            0x3c2 => self.misc = value,
            0x3c4 => self.seq_index = value & 0x07,
            0x3c5 => {
                let i = usize::from(self.seq_index);
                if let (Some(r), Some(m)) = (self.seq.get_mut(i), SEQ_MASK.get(i)) {
                    *r = value & m;
                }
            }
            0x3c6 if self.dac.pel_mask != value => {
                self.dac.pel_mask = value;
                return WriteEffect::Palette;
            }
            0x3c7 => {
                self.dac.read_index = value;
                self.dac.component = 0;
                self.dac.reading = true;
            }
            0x3c8 => {
                self.dac.write_index = value;
                self.dac.component = 0;
                self.dac.reading = false;
            }
            0x3c9 => return self.dac_write(value, dac8),
            0x3ce => self.gc_index = value & 0x0f,
            0x3cf => {
                let i = usize::from(self.gc_index);
                if let (Some(r), Some(m)) = (self.gc.get_mut(i), GC_MASK.get(i)) {
                    *r = value & m;
                }
            }
            0x3b4 | 0x3d4 => self.crtc_index = value & 0x3f,
            0x3b5 | 0x3d5 => self.crtc_write(value),
            0x3ba | 0x3da => self.feature = value,
            // 0x3C1 is read-only on VGA, 0x3C3 (subsystem enable) has no effect, the rest are reserved.
            _ => {}
        }
        WriteEffect::None
    }

    fn attr_write(&mut self, value: u8) {
        if !self.attr_data_next {
            self.attr_index = value & 0x3f;
        } else {
            let i = usize::from(self.attr_index & 0x1f);
            let mask = match i {
                0x00..=0x0f => 0x3f,
                0x10 => 0xef,
                0x11 => 0xff,
                0x12 => 0x3f,
                0x13 | 0x14 => 0x0f,
                _ => 0,
            };
            if let Some(r) = self.attr.get_mut(i) {
                *r = value & mask;
            }
        }
        self.attr_data_next = !self.attr_data_next;
    }

    fn crtc_write(&mut self, value: u8) {
        let i = usize::from(self.crtc_index);
        let protected = self.cr(CR_V_RETRACE_END) & 0x80 != 0;
        let value = if protected && i <= 7 {
            if i != CR_OVERFLOW {
                return;
            }
            // Only the line-compare bit 8 stays writable.
            (self.cr(CR_OVERFLOW) & !0x10) | (value & 0x10)
        } else {
            value
        };
        if let Some(r) = self.crtc.get_mut(i) {
            *r = value;
        }
    }

    fn dac_write(&mut self, value: u8, dac8: bool) -> WriteEffect {
        let c = usize::from(self.dac.component.min(2));
        self.dac.latch[c] = if dac8 { value } else { value & 0x3f };
        self.dac.component += 1;
        if self.dac.component < 3 {
            return WriteEffect::None;
        }
        self.dac.component = 0;
        let i = usize::from(self.dac.write_index) * 3;
        if let Some(entry) = self.dac.palette.get_mut(i..i + 3) {
            entry.copy_from_slice(&self.dac.latch);
        }
        self.dac.write_index = self.dac.write_index.wrapping_add(1);
        WriteEffect::Palette
    }

    /// Repairs a restored snapshot: indexes and the palette length made consistent.
    pub fn sanitize(&mut self) {
        self.seq_index &= 0x07;
        self.gc_index &= 0x0f;
        self.crtc_index &= 0x3f;
        self.attr_index &= 0x3f;
        self.dac.component = self.dac.component.min(2);
        self.dac.palette.resize(DAC_ENTRIES * 3, 0);
        for (r, m) in self.seq.iter_mut().zip(SEQ_MASK) {
            *r &= m;
        }
        for (r, m) in self.gc.iter_mut().zip(GC_MASK) {
            *r &= m;
        }
    }
}
