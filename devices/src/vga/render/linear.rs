//! Bochs VBE packed-pixel modes, read straight from VRAM: 8 bpp through the DAC; 15 bpp
//! `x:5 r:5 g:5 b:5` and 16 bpp `r:5 g:6 b:5` little-endian words; 24 and 32 bpp blue, green, red (and
//! an unused byte). Line `y` starts at `start + y × pitch`; the geometry was checked against VRAM
//! when the mode was enabled, and every read is bounds-checked again anyway. Each line is copied out of
//! VRAM (which the guest may be writing at the same moment) into a scratch buffer before it is converted.

use crate::display::{Frame, Rect};

use super::super::vbe::Geometry;
use super::super::Core;
use super::line_runs;

/// Expands a `bits`-wide colour component to 8 bits.
fn expand(v: u32, bits: u32) -> u32 {
    (v << (8 - bits)) | (v >> (2 * bits - 8))
}

/// Redraws the lines whose bytes are on dirty blocks (all when `full`).
pub fn refresh(core: &mut Core, g: &Geometry, frame: &mut Frame, full: bool) -> Vec<Rect> {
    let bpp = g.bytes_per_pixel();
    let dac = if g.bpp == 8 {
        core.dac_colors()
    } else {
        Vec::new()
    };
    let (fw, fh) = (frame.width, frame.height);
    let height = g.yres.min(fh);
    let width = g.xres.min(fw) as usize;
    let line_bytes = u64::from(g.xres) * bpp;
    let line_len = usize::try_from(line_bytes).unwrap_or(usize::MAX);
    let mut changed = vec![false; height as usize];
    let mut scratch = Vec::with_capacity(line_len.min(1 << 16));
    for y in 0..height {
        let first = g.start + u64::from(y) * g.pitch;
        if !full && !core.vram.range_dirty(first, line_bytes) {
            continue;
        }
        if let Some(c) = changed.get_mut(y as usize) {
            *c = true;
        }
        let start = y as usize * fw as usize;
        let (Some(row), Some(src)) = (
            frame.pixels.get_mut(start..start + width),
            core.vram.read_exact(first, line_len, &mut scratch),
        ) else {
            continue;
        };
        match g.bpp {
            8 => {
                for (p, &b) in row.iter_mut().zip(src) {
                    *p = dac.get(usize::from(b)).copied().unwrap_or(0);
                }
            }
            15 | 16 => {
                let green = if g.bpp == 15 { 5 } else { 6 };
                for (p, w) in row.iter_mut().zip(src.chunks_exact(2)) {
                    let v = u32::from(u16::from_le_bytes([w[0], w[1]]));
                    let b = expand(v & 0x1f, 5);
                    let gr = expand((v >> 5) & ((1 << green) - 1), green);
                    let r = expand((v >> (5 + green)) & 0x1f, 5);
                    *p = (r << 16) | (gr << 8) | b;
                }
            }
            _ => {
                for (p, c) in row.iter_mut().zip(src.chunks_exact(bpp.max(1) as usize)) {
                    *p = (u32::from(c[2]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[0]);
                }
            }
        }
    }
    if full {
        return vec![Rect::full(fw, fh)];
    }
    line_runs(&changed, fw)
}
