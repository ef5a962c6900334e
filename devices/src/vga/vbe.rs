//! The Bochs VBE "DISPI" interface: a 16-bit index port (0x1CE) and data port (0x1CF) through which
//! SeaVGABIOS, Linux `bochs-drm` and the Windows Bochs display driver set SVGA modes without touching
//! the VGA timing registers.
//!
//! # Registers
//!
//! | index | register | notes |
//! |---|---|---|
//! | 0 | ID | reads back what was written if it is 0xB0C0-0xB0C5 (the interface versions); drivers probe it |
//! | 1, 2 | XRES, YRES | 1..=[`MAX_XRES`] × 1..=[`MAX_YRES`] |
//! | 3 | BPP | 4 (planar), 8 (through the DAC), 15, 16, 24, 32; 0 means 8 |
//! | 4 | ENABLE | [`ENABLED`], [`GETCAPS`], [`DAC_8BIT`], [`LFB_ENABLED`], [`NOCLEARMEM`] |
//! | 5 | BANK | which 64 KiB of VRAM the 0xA0000 window shows |
//! | 6, 7 | VIRT_WIDTH, VIRT_HEIGHT | the virtual screen (pitch in pixels; height follows from VRAM) |
//! | 8, 9 | X_OFFSET, Y_OFFSET | the top left visible pixel (panning, page flipping) |
//! | 10 | VIDEO_MEMORY_64K | VRAM size in 64 KiB units, read-only |
//!
//! While [`GETCAPS`] is set in ENABLE, XRES, YRES and BPP read as the maxima; SeaVGABIOS uses that to drop
//! modes from its list.
//!
//! # Validation
//!
//! A guest controls every value, and a mode is VRAM offsets for the renderer, so a mode is only ever
//! active when it fits: writing ENABLE with [`ENABLED`] (from disabled) resets the virtual width to XRES
//! and the offsets to 0 and enables the mode only if `xres × yres × bytes per pixel` fits in VRAM;
//! otherwise the write is refused and the previous state (usually VGA) stays, as Bochs refuses modes
//! larger than its memory. While a mode is enabled, a write that would make the visible area leave
//! VRAM (a larger XRES, a virtual width or offset past the end) is refused and the register keeps its
//! value. Out-of-range values (XRES 0 or above the maximum, BPP 7, a bank past VRAM) are refused
//! whether or not a mode is enabled. Refusals are logged, rate-limited.
//!
//! Enabling a mode clears VRAM unless [`NOCLEARMEM`] is given. [`LFB_ENABLED`] is only recorded: the
//! linear framebuffer BAR always decodes, and the 0xA0000 window always shows the selected bank.

use serde::{Deserialize, Serialize};

/// Index of the ID register.
pub const INDEX_ID: u16 = 0;
/// Index of XRES.
pub const INDEX_XRES: u16 = 1;
/// Index of YRES.
pub const INDEX_YRES: u16 = 2;
/// Index of BPP.
pub const INDEX_BPP: u16 = 3;
/// Index of ENABLE.
pub const INDEX_ENABLE: u16 = 4;
/// Index of BANK.
pub const INDEX_BANK: u16 = 5;
/// Index of VIRT_WIDTH.
pub const INDEX_VIRT_WIDTH: u16 = 6;
/// Index of VIRT_HEIGHT.
pub const INDEX_VIRT_HEIGHT: u16 = 7;
/// Index of X_OFFSET.
pub const INDEX_X_OFFSET: u16 = 8;
/// Index of Y_OFFSET.
pub const INDEX_Y_OFFSET: u16 = 9;
/// Index of VIDEO_MEMORY_64K.
pub const INDEX_VIDEO_MEMORY_64K: u16 = 10;

/// The oldest interface version ID.
pub const ID0: u16 = 0xb0c0;
/// The newest interface version ID (with VIDEO_MEMORY_64K).
pub const ID5: u16 = 0xb0c5;

/// ENABLE: a VBE mode is active.
pub const ENABLED: u16 = 0x01;
/// ENABLE: XRES/YRES/BPP read as the maxima.
pub const GETCAPS: u16 = 0x02;
/// ENABLE: the DAC takes and returns 8-bit components.
pub const DAC_8BIT: u16 = 0x20;
/// ENABLE: the guest uses the linear framebuffer.
pub const LFB_ENABLED: u16 = 0x40;
/// ENABLE: do not clear VRAM when enabling.
pub const NOCLEARMEM: u16 = 0x80;
const ENABLE_BITS: u16 = ENABLED | GETCAPS | DAC_8BIT | LFB_ENABLED | NOCLEARMEM;

/// Widest mode.
pub const MAX_XRES: u16 = 2560;
/// Tallest mode.
pub const MAX_YRES: u16 = 1600;
/// Deepest mode.
pub const MAX_BPP: u16 = 32;
/// Bank size.
pub const BANK_SIZE: u64 = 0x1_0000;

/// The DISPI registers; part of the device's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vbe {
    /// The selected index (0x1CE).
    pub index: u16,
    /// ID.
    pub id: u16,
    /// XRES.
    pub xres: u16,
    /// YRES.
    pub yres: u16,
    /// BPP.
    pub bpp: u16,
    /// ENABLE.
    pub enable: u16,
    /// BANK.
    pub bank: u16,
    /// VIRT_WIDTH.
    pub virt_width: u16,
    /// VIRT_HEIGHT.
    pub virt_height: u16,
    /// X_OFFSET.
    pub x_offset: u16,
    /// Y_OFFSET.
    pub y_offset: u16,
}

impl Default for Vbe {
    fn default() -> Self {
        Vbe {
            index: 0,
            id: ID0,
            xres: 640,
            yres: 480,
            bpp: 8,
            enable: 0,
            bank: 0,
            virt_width: 640,
            virt_height: 480,
            x_offset: 0,
            y_offset: 0,
        }
    }
}

/// An enabled mode, checked against VRAM: every visible byte is inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Visible width in pixels.
    pub xres: u32,
    /// Visible height in pixels.
    pub yres: u32,
    /// Bits per pixel: 4, 8, 15, 16, 24 or 32.
    pub bpp: u32,
    /// Bytes from one line to the next: for 4 bpp, in plane bytes (each covering 8 pixels).
    pub pitch: u64,
    /// Offset of the top left visible pixel: for 4 bpp, a plane offset, else a VRAM byte offset.
    pub start: u64,
}

impl Geometry {
    /// Bytes per pixel, 0 for planar 4 bpp.
    pub fn bytes_per_pixel(&self) -> u64 {
        u64::from(self.bpp).div_ceil(8) * u64::from(self.bpp != 4)
    }
}

fn valid_bpp(bpp: u16) -> bool {
    matches!(bpp, 4 | 8 | 15 | 16 | 24 | 32)
}

/// The checked geometry of a mode, or `None` when it does not fit `vram` bytes.
fn geometry(
    xres: u16,
    yres: u16,
    bpp: u16,
    virt_width: u16,
    x_offset: u16,
    y_offset: u16,
    vram: u64,
) -> Option<Geometry> {
    if xres == 0 || yres == 0 || xres > MAX_XRES || yres > MAX_YRES || !valid_bpp(bpp) {
        return None;
    }
    let vw = u64::from(virt_width.max(xres));
    let (x, y) = (u64::from(x_offset), u64::from(y_offset));
    let (pitch, start, last_end, limit) = if bpp == 4 {
        // Planar: each plane byte holds 8 pixels; VRAM holds four planes of vram/4 bytes.
        let pitch = vw.div_ceil(8);
        let start = (y * vw + x) / 8;
        let last = u64::from(xres).div_ceil(8);
        (pitch, start, last, vram / 4)
    } else {
        let bpp_bytes = u64::from(bpp).div_ceil(8);
        let pitch = vw * bpp_bytes;
        (
            pitch,
            y * pitch + x * bpp_bytes,
            u64::from(xres) * bpp_bytes,
            vram,
        )
    };
    let end = start + (u64::from(yres) - 1) * pitch + last_end;
    if u64::from(x_offset) + u64::from(xres) > vw || end > limit {
        return None;
    }
    Some(Geometry {
        xres: u32::from(xres),
        yres: u32::from(yres),
        bpp: u32::from(bpp),
        pitch,
        start,
    })
}

/// What a DISPI write did, for the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VbeEffect {
    /// Nothing beyond the register.
    None,
    /// A mode was enabled; VRAM must be cleared when `clear`.
    Enabled {
        /// Clear VRAM.
        clear: bool,
    },
    /// The display changed (mode off, panning, pitch, DAC width): redraw.
    Changed,
}

impl Vbe {
    /// Whether a mode is enabled.
    pub fn enabled(&self) -> bool {
        self.enable & ENABLED != 0
    }

    /// Whether the DAC is in 8-bit mode.
    pub fn dac8(&self) -> bool {
        self.enable & DAC_8BIT != 0
    }

    /// The active mode's geometry (`None` when disabled).
    pub fn geometry(&self, vram: u64) -> Option<Geometry> {
        if !self.enabled() {
            return None;
        }
        geometry(
            self.xres,
            self.yres,
            self.bpp,
            self.virt_width,
            self.x_offset,
            self.y_offset,
            vram,
        )
    }

    /// VRAM offset of the selected bank.
    pub fn bank_offset(&self) -> u64 {
        u64::from(self.bank) * BANK_SIZE
    }

    /// A read of the data port.
    pub fn read(&self, vram: u64) -> u16 {
        let caps = self.enable & GETCAPS != 0;
        match self.index {
            INDEX_ID => self.id,
            INDEX_XRES if caps => MAX_XRES,
            INDEX_YRES if caps => MAX_YRES,
            INDEX_BPP if caps => MAX_BPP,
            INDEX_XRES => self.xres,
            INDEX_YRES => self.yres,
            INDEX_BPP => self.bpp,
            INDEX_ENABLE => self.enable,
            INDEX_BANK => self.bank,
            INDEX_VIRT_WIDTH => self.virt_width,
            INDEX_VIRT_HEIGHT => self.virt_height,
            INDEX_X_OFFSET => self.x_offset,
            INDEX_Y_OFFSET => self.y_offset,
            INDEX_VIDEO_MEMORY_64K => u16::try_from(vram / BANK_SIZE).unwrap_or(u16::MAX),
            _ => 0,
        }
    }

    fn refuse(&self, what: &str, value: u16) -> VbeEffect {
        crate::rate_limited!(
            log::Level::Warn,
            "vga: VBE {} {:#x} refused (mode {}x{}x{}, enable {:#x})",
            what,
            value,
            self.xres,
            self.yres,
            self.bpp,
            self.enable
        );
        VbeEffect::None
    }

    /// Applies `candidate` if, while a mode is enabled, it still fits VRAM.
    fn apply(&mut self, candidate: Vbe, what: &str, value: u16, vram: u64) -> VbeEffect {
        if self.enabled() {
            if candidate.geometry(vram).is_none() {
                return self.refuse(what, value);
            }
            *self = candidate;
            self.virt_height = self.max_virt_height(vram);
            return VbeEffect::Changed;
        }
        *self = candidate;
        VbeEffect::None
    }

    fn max_virt_height(&self, vram: u64) -> u16 {
        let vw = u64::from(self.virt_width.max(1));
        let pitch = if self.bpp == 4 {
            vw.div_ceil(8) * 4
        } else {
            vw * u64::from(self.bpp.max(1)).div_ceil(8)
        };
        u16::try_from(vram / pitch.max(1)).unwrap_or(u16::MAX)
    }

    /// A write of the data port.
    pub fn write(&mut self, value: u16, vram: u64) -> VbeEffect {
        let mut c = self.clone();
        match self.index {
            INDEX_ID => {
                if (ID0..=ID5).contains(&value) {
                    self.id = value;
                } else {
                    return self.refuse("ID", value);
                }
                VbeEffect::None
            }
            INDEX_XRES => {
                if value == 0 || value > MAX_XRES {
                    return self.refuse("XRES", value);
                }
                c.xres = value;
                c.virt_width = c.virt_width.max(value);
                self.apply(c, "XRES", value, vram)
            }
            INDEX_YRES => {
                if value == 0 || value > MAX_YRES {
                    return self.refuse("YRES", value);
                }
                c.yres = value;
                self.apply(c, "YRES", value, vram)
            }
            INDEX_BPP => {
                let value = if value == 0 { 8 } else { value };
                if !valid_bpp(value) {
                    return self.refuse("BPP", value);
                }
                c.bpp = value;
                self.apply(c, "BPP", value, vram)
            }
            INDEX_ENABLE => self.write_enable(value, vram),
            INDEX_BANK => {
                if u64::from(value) * BANK_SIZE >= vram {
                    return self.refuse("BANK", value);
                }
                self.bank = value;
                VbeEffect::None
            }
            INDEX_VIRT_WIDTH => {
                c.virt_width = value.max(c.xres);
                self.apply(c, "VIRT_WIDTH", value, vram)
            }
            INDEX_VIRT_HEIGHT => {
                // Informational: the height follows from VRAM; keep what fits.
                self.virt_height = value.max(self.yres).min(self.max_virt_height(vram));
                VbeEffect::None
            }
            INDEX_X_OFFSET => {
                c.x_offset = value;
                self.apply(c, "X_OFFSET", value, vram)
            }
            INDEX_Y_OFFSET => {
                c.y_offset = value;
                self.apply(c, "Y_OFFSET", value, vram)
            }
            _ => self.refuse("write to index", self.index),
        }
    }

    fn write_enable(&mut self, value: u16, vram: u64) -> VbeEffect {
        let value = value & ENABLE_BITS;
        let was = self.enabled();
        if value & ENABLED == 0 {
            self.enable = value;
            return if was {
                VbeEffect::Changed
            } else {
                VbeEffect::None
            };
        }
        if was {
            // Already on: only the flags change (DAC width, GETCAPS).
            self.enable = value;
            return VbeEffect::Changed;
        }
        let mut c = self.clone();
        c.virt_width = c.xres;
        c.x_offset = 0;
        c.y_offset = 0;
        c.enable = value;
        if c.geometry(vram).is_none() {
            return self.refuse("mode enable", value);
        }
        c.virt_height = c.max_virt_height(vram);
        *self = c;
        VbeEffect::Enabled {
            clear: value & NOCLEARMEM == 0,
        }
    }

    /// Repairs a restored snapshot: an enabled mode that does not fit is switched off.
    pub fn sanitize(&mut self, vram: u64) {
        if u64::from(self.bank) * BANK_SIZE >= vram {
            self.bank = 0;
        }
        if self.enabled() && self.geometry(vram).is_none() {
            self.enable &= !ENABLED;
        }
        self.enable &= ENABLE_BITS;
    }
}
