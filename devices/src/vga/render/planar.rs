//! VGA graphics modes: each character clock reads the four planes at one plane offset and shifts out
//! pixels according to GR5's shift mode:
//! - 16-colour planar (modes 0Dh-12h, and the 4 bpp VBE modes): 8 pixels, pixel bit *n* of plane *p*
//!   is bit *p* of the colour, MSB first, through the attribute palette;
//! - CGA 4-colour (GR5 bit 5, modes 4/5): 4 two-bit pixels from plane 0 then 4 from plane 1 (planes
//!   2/3 give the upper bits), through the attribute palette;
//! - 256 colours (GR5 bit 6, mode 13h and unchained "mode X"): 4 pixels, one byte from each plane,
//!   straight into the DAC.

use crate::display::{Frame, Rect};

use super::super::vbe::Geometry;
use super::super::Core;
use super::{line_runs, Addressing};

/// How a character clock's four plane bytes become pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    /// 8 pixels of 4 bits, one bit per plane.
    Planar16,
    /// 8 pixels of 2 bits (CGA interleave).
    Cga4,
    /// 4 pixels of 8 bits.
    Vga256,
}

impl Shift {
    fn pixels(self) -> u32 {
        match self {
            Shift::Vga256 => 4,
            _ => 8,
        }
    }
}

/// Where scan lines live in the planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// The CRTC: a row's counter is `start + row × pitch`; with `repeat` each distinct row spans
    /// `scan_per_row` scan lines (shown once); otherwise every scan line is shown and its row-scan
    /// counter feeds the CGA address substitution.
    Crtc {
        /// Scan lines per character row (CR09 + 1).
        scan_per_row: u32,
        /// Whether the rows are shown once rather than per scan line.
        repeat: bool,
        /// Counter → plane offset.
        addr: Addressing,
    },
    /// A 4 bpp VBE mode: line `y` starts at plane offset `start + y × pitch`, with no wrapping.
    Flat,
}

/// Graphics geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GfxGeom {
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Character clocks per line.
    pub chars: u32,
    /// Start (counter units or, for [`Lines::Flat`], a plane offset).
    pub start: u64,
    /// Step per row.
    pub pitch: u64,
    /// Line addressing.
    pub lines: Lines,
    /// Shift mode.
    pub shift: Shift,
}

impl GfxGeom {
    /// A VGA graphics mode from CRTC values.
    pub fn vga(
        chars: u32,
        lines: u32,
        scan_per_row: u32,
        start: u32,
        pitch: u32,
        addr: Addressing,
        shift: Shift,
    ) -> GfxGeom {
        let repeat = !addr.cga && !addr.hercules;
        let height = if repeat {
            (lines / scan_per_row).max(1)
        } else {
            lines
        };
        GfxGeom {
            width: chars * shift.pixels(),
            height,
            chars,
            start: u64::from(start),
            pitch: u64::from(pitch),
            lines: Lines::Crtc {
                scan_per_row,
                repeat,
                addr,
            },
            shift,
        }
    }

    /// A 4 bpp VBE mode.
    pub fn vbe(g: &Geometry) -> GfxGeom {
        GfxGeom {
            width: g.xres,
            height: g.yres,
            chars: g.xres.div_ceil(8),
            start: g.start,
            pitch: g.pitch,
            lines: Lines::Flat,
            shift: Shift::Planar16,
        }
    }

    /// The plane offset character clock `c` of frame line `y` reads.
    fn offset(&self, y: u32, c: u32) -> u64 {
        match self.lines {
            Lines::Flat => self.start + u64::from(y) * self.pitch + u64::from(c),
            Lines::Crtc {
                scan_per_row,
                repeat,
                addr,
            } => {
                let (row, scan) = if repeat {
                    (y, 0)
                } else {
                    (y / scan_per_row, y % scan_per_row)
                };
                let counter = (self.start as u32)
                    .wrapping_add(row.wrapping_mul(self.pitch as u32))
                    .wrapping_add(c);
                addr.plane_offset(counter, scan)
            }
        }
    }
}

/// Redraws the lines that read dirty blocks (all when `full`).
pub fn refresh(core: &mut Core, g: &GfxGeom, frame: &mut Frame, full: bool) -> Vec<Rect> {
    let colors16 = core.attribute_colors();
    let colors256 = if g.shift == Shift::Vga256 {
        core.dac_colors()
    } else {
        Vec::new()
    };
    let (fw, fh) = (frame.width, frame.height);
    let height = g.height.min(fh);
    let mut changed = vec![false; height as usize];
    for y in 0..height {
        if !full && !line_dirty(core, g, y) {
            continue;
        }
        if let Some(c) = changed.get_mut(y as usize) {
            *c = true;
        }
        let start = y as usize * fw as usize;
        let Some(row) = frame.pixels.get_mut(start..start + fw as usize) else {
            continue;
        };
        let mut x = 0usize;
        for c in 0..g.chars {
            let base = g.offset(y, c) * 4;
            let p = core.vram.get4(base);
            match g.shift {
                Shift::Planar16 => {
                    for bit in (0..8).rev() {
                        let v = (0..4)
                            .fold(0usize, |acc, k| acc | (usize::from((p[k] >> bit) & 1) << k));
                        put(row, &mut x, colors16[v]);
                    }
                }
                Shift::Cga4 => {
                    for (lo, hi) in [(p[0], p[2]), (p[1], p[3])] {
                        for i in 0..4 {
                            let s = 6 - 2 * i;
                            let v = usize::from((lo >> s) & 3) | (usize::from((hi >> s) & 3) << 2);
                            put(row, &mut x, colors16[v]);
                        }
                    }
                }
                Shift::Vga256 => {
                    for b in p {
                        put(
                            row,
                            &mut x,
                            colors256.get(usize::from(b)).copied().unwrap_or(0),
                        );
                    }
                }
            }
            if x >= row.len() {
                break;
            }
        }
    }
    if full {
        return vec![Rect::full(fw, fh)];
    }
    line_runs(&changed, fw)
}

fn put(row: &mut [u32], x: &mut usize, rgb: u32) {
    if let Some(p) = row.get_mut(*x) {
        *p = rgb;
    }
    *x += 1;
}

fn line_dirty(core: &Core, g: &GfxGeom, y: u32) -> bool {
    if let Lines::Flat = g.lines {
        let first = g.offset(y, 0) * 4;
        return core.vram.range_dirty(first, u64::from(g.chars) * 4);
    }
    let mut last_block = u64::MAX;
    (0..g.chars).any(|c| {
        let i = g.offset(y, c) * 4;
        let block = i / super::super::memory::DIRTY_BLOCK;
        if block == last_block {
            return false;
        }
        last_block = block;
        core.vram.range_dirty(i, 4)
    })
}
