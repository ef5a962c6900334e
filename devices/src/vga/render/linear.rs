//! Bochs VBE packed-pixel modes, read straight from VRAM: 8 bpp through the DAC; 15 bpp
//! `x:5 r:5 g:5 b:5` and 16 bpp `r:5 g:6 b:5` little-endian words; 24 and 32 bpp blue, green, red (and
//! an unused byte). Line `y` starts at `start + y × pitch`; the geometry was checked against VRAM
//! when the mode was enabled, and every read is bounds-checked again anyway. Each line is copied out of
//! VRAM (which the guest may be writing at the same moment) into a scratch buffer before it is converted.

use crate::display::{Frame, Rect};

use super::super::vbe::Geometry;
use super::super::Core;
use super::span_runs;

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
    // For each redrawn line, the columns whose pixels really changed: a dirty VRAM block covers whole lines
    // (and guests rewrite unchanged pixels, GRUB's gfxterm redraws its whole double buffer), so comparing the
    // converted line with what the frame holds keeps the reported rectangles, and what front-ends send, small.
    let mut spans: Vec<Option<(u32, u32)>> = vec![None; height as usize];
    let mut scratch = Vec::with_capacity(line_len.min(1 << 16));
    let mut line: Vec<u32> = Vec::with_capacity(width);
    for y in 0..height {
        let first = g.start + u64::from(y) * g.pitch;
        if !full && !core.vram.range_dirty(first, line_bytes) {
            continue;
        }
        let start = y as usize * fw as usize;
        let (Some(row), Some(src)) = (
            frame.pixels.get_mut(start..start + width),
            core.vram.read_exact(first, line_len, &mut scratch),
        ) else {
            continue;
        };
        line.clear();
        match g.bpp {
            8 => line.extend(
                src.iter()
                    .map(|&b| dac.get(usize::from(b)).copied().unwrap_or(0)),
            ),
            15 | 16 => {
                let green = if g.bpp == 15 { 5 } else { 6 };
                line.extend(src.chunks_exact(2).map(|w| {
                    let v = u32::from(u16::from_le_bytes([w[0], w[1]]));
                    let b = expand(v & 0x1f, 5);
                    let gr = expand((v >> 5) & ((1 << green) - 1), green);
                    let r = expand((v >> (5 + green)) & 0x1f, 5);
                    (r << 16) | (gr << 8) | b
                }));
            }
            _ => line.extend(
                src.chunks_exact(bpp.max(1) as usize)
                    .map(|c| (u32::from(c[2]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[0])),
            ),
        }
        let n = line.len().min(row.len());
        let (new, old) = (&line[..n], &mut row[..n]);
        let first_diff = new.iter().zip(old.iter()).position(|(a, b)| a != b);
        if let Some(x0) = first_diff {
            let x1 = n - new
                .iter()
                .rev()
                .zip(old.iter().rev())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            old[x0..x1].copy_from_slice(&new[x0..x1]);
            if let Some(s) = spans.get_mut(y as usize) {
                *s = Some((x0 as u32, x1 as u32));
            }
        }
    }
    if full {
        return vec![Rect::full(fw, fh)];
    }
    span_runs(&spans)
}
