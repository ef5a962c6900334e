//! Text mode: character cells from planes 0 (code) and 1 (attribute), glyphs from the font in plane 2.
//!
//! A cell is 8 or 9 dots wide (SR1 bit 0) and CR09 + 1 scan lines tall; the screen is CR01 + 1 columns
//! by as many rows as fit in the visible scan lines. Each glyph line is one byte of plane 2 at the
//! character map's base + 32 × code + line; SR3 picks map A (attribute bit 3 set) and map B (clear),
//! which is how 512-character fonts work. In 9-dot mode the ninth column repeats the eighth for the
//! line-drawing codes 0xC0-0xDF when AR10 bit 2 is set, and is background otherwise.
//!
//! The attribute's low nibble is the foreground and the high nibble the background colour, through the
//! attribute palette. With AR10 bit 3 set, attribute bit 7 blinks the character instead of brightening
//! the background. An attribute of foreground 1 and background 0 (mod 8) is underlined on scan line
//! CR14. The cursor covers scan lines CR0A..=CR0B of the cell at CR0E/CR0F (none when CR0A bit 5 is set
//! or start > end).
//!
//! Blinking follows the machine clock: on real VGA the cursor toggles every 16 frames and blinking
//! characters every 32, which at 60 Hz is [`CURSOR_BLINK_HALF_NS`] and [`CHAR_BLINK_HALF_NS`].

use crate::display::{Frame, Rect};

use super::super::regs::{
    Regs, AR_MODE, CR_CURSOR_END, CR_CURSOR_HI, CR_CURSOR_LO, CR_CURSOR_START, CR_UNDERLINE,
    SR_CHAR_MAP, SR_CLOCKING,
};
use super::super::Core;
use super::Addressing;

/// How long the cursor stays on (then off): 8 frames at 60 Hz.
pub const CURSOR_BLINK_HALF_NS: u64 = 133_333_333;
/// How long blinking characters stay visible (then hidden): 16 frames at 60 Hz.
pub const CHAR_BLINK_HALF_NS: u64 = 266_666_667;

/// Plane-2 offsets of the eight character maps SR3 can select.
const FONT_BASES: [u32; 8] = [
    0x0000, 0x4000, 0x8000, 0xc000, 0x2000, 0x6000, 0xa000, 0xe000,
];

/// Text-mode geometry and the registers that shape cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextGeom {
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
    /// Cell width in dots (8 or 9).
    pub cell_w: u32,
    /// Cell height in scan lines.
    pub cell_h: u32,
    /// Start address (counter units).
    pub start: u32,
    /// Counter units per row.
    pub pitch: u32,
    /// Counter → plane offset.
    pub addr: Addressing,
    /// Plane-2 font base for attribute bit 3 clear (map B) and set (map A).
    pub fonts: [u32; 2],
    /// AR10 bit 2: line graphics in the ninth column.
    pub line_graphics: bool,
    /// AR10 bit 3: attribute bit 7 blinks.
    pub blink: bool,
    /// Underline scan line.
    pub underline: u32,
}

impl TextGeom {
    /// The geometry the registers describe.
    pub fn new(
        r: &Regs,
        cols: u32,
        lines: u32,
        cell_h: u32,
        start: u32,
        pitch: u32,
        addr: Addressing,
    ) -> TextGeom {
        let sr3 = r.sr(SR_CHAR_MAP);
        let map_a = usize::from(((sr3 >> 3) & 4) | ((sr3 >> 2) & 3));
        let map_b = usize::from(((sr3 >> 2) & 4) | (sr3 & 3));
        let ar10 = r.ar(AR_MODE);
        TextGeom {
            cols,
            rows: (lines / cell_h).max(1),
            cell_w: if r.sr(SR_CLOCKING) & 1 != 0 { 8 } else { 9 },
            cell_h,
            start,
            pitch,
            addr,
            fonts: [FONT_BASES[map_b & 7], FONT_BASES[map_a & 7]],
            line_graphics: ar10 & 0x04 != 0,
            blink: ar10 & 0x08 != 0,
            underline: u32::from(r.cr(CR_UNDERLINE) & 0x1f),
        }
    }

    /// Frame width.
    pub fn width(&self) -> u32 {
        self.cols * self.cell_w
    }

    /// Frame height.
    pub fn height(&self) -> u32 {
        self.rows * self.cell_h
    }

    /// The plane offset of cell (`row`, `col`).
    fn cell_offset(&self, row: u32, col: u32) -> u64 {
        let counter = self
            .start
            .wrapping_add(row.wrapping_mul(self.pitch))
            .wrapping_add(col);
        self.addr.plane_offset(counter, 0)
    }

    /// The cell the cursor location `loc` falls on, if it is on screen.
    fn cursor_cell(&self, loc: u32) -> Option<usize> {
        let d = loc.wrapping_sub(self.start) & 0xffff;
        let (row, col) = match (d.checked_div(self.pitch), d.checked_rem(self.pitch)) {
            (Some(row), Some(col)) => (row, col),
            _ => (0, d),
        };
        (row < self.rows && col < self.cols).then(|| (row * self.cols + col) as usize)
    }
}

/// What one cell looks like, beyond its character and attribute.
struct CellStyle {
    cursor: Option<(u32, u32)>,
    blink_on: bool,
}

/// Redraws changed cells (all of them when `full`).
pub fn refresh(
    core: &mut Core,
    g: &TextGeom,
    frame: &mut Frame,
    full: bool,
    now: u64,
) -> Vec<Rect> {
    let r = &core.regs;
    let cells = (g.cols * g.rows) as usize;
    let cursor_on = (now / CURSOR_BLINK_HALF_NS) & 1 == 0;
    let blink_on = (now / CHAR_BLINK_HALF_NS) & 1 == 0;
    let cstart = u32::from(r.cr(CR_CURSOR_START));
    let cend = u32::from(r.cr(CR_CURSOR_END) & 0x1f);
    let loc = (u32::from(r.cr(CR_CURSOR_HI)) << 8) | u32::from(r.cr(CR_CURSOR_LO));
    let cursor = if cstart & 0x20 == 0 && (cstart & 0x1f) <= cend && cursor_on {
        g.cursor_cell(loc).map(|c| (c, cstart & 0x1f, cend))
    } else {
        None
    };
    let colors = core.attribute_colors();
    let full = full || core.cache.cells.len() != cells;
    if full {
        core.cache.cells = vec![0; cells];
    }
    let blink_changed = core.cache.blink_on != blink_on && g.blink;
    let cursor_changed = core.cache.cursor != cursor;
    let old_cursor = core.cache.cursor.map(|c| c.0);
    let mut rects = Vec::new();
    for row in 0..g.rows {
        let mut span: Option<(u32, u32)> = None;
        for col in 0..g.cols {
            let i = (row * g.cols + col) as usize;
            let off = g.cell_offset(row, col) * 4;
            let (code, attr) = (core.vram.get(off), core.vram.get(off + 1));
            let cell = u16::from(code) | (u16::from(attr) << 8);
            let is_cursor = cursor.is_some_and(|c| c.0 == i);
            let changed = full
                || core.cache.cells.get(i) != Some(&cell)
                || (blink_changed && attr & 0x80 != 0)
                || (cursor_changed && (is_cursor || old_cursor == Some(i)));
            if !changed {
                continue;
            }
            if let Some(c) = core.cache.cells.get_mut(i) {
                *c = cell;
            }
            let style = CellStyle {
                cursor: cursor.filter(|_| is_cursor).map(|c| (c.1, c.2)),
                blink_on,
            };
            draw_cell(core, g, frame, &colors, row, col, code, attr, &style);
            span = Some(span.map_or((col, col), |(a, _)| (a, col)));
        }
        if let Some((a, b)) = span {
            rects.push(Rect {
                x: a * g.cell_w,
                y: row * g.cell_h,
                w: (b - a + 1) * g.cell_w,
                h: g.cell_h,
            });
        }
    }
    core.cache.cursor = cursor;
    core.cache.blink_on = blink_on;
    if full {
        return vec![Rect::full(frame.width, frame.height)];
    }
    rects
}

#[allow(clippy::too_many_arguments)]
fn draw_cell(
    core: &Core,
    g: &TextGeom,
    frame: &mut Frame,
    colors: &[u32; 16],
    row: u32,
    col: u32,
    code: u8,
    attr: u8,
    style: &CellStyle,
) {
    let fg = colors[usize::from(attr & 0x0f)];
    let bg = if g.blink {
        colors[usize::from((attr >> 4) & 0x07)]
    } else {
        colors[usize::from(attr >> 4)]
    };
    let hidden = g.blink && attr & 0x80 != 0 && !style.blink_on;
    let font = u64::from(g.fonts[usize::from((attr >> 3) & 1)]) + u64::from(code) * 32;
    let ninth = g.cell_w == 9 && g.line_graphics && (0xc0..=0xdf).contains(&code);
    let underlined = attr & 0x77 == 0x01;
    let (fw, fh) = (frame.width as usize, frame.height);
    for line in 0..g.cell_h {
        let y = row * g.cell_h + line;
        if y >= fh {
            break;
        }
        let glyph = if line < 32 {
            core.vram.get((font + u64::from(line)) * 4 + 2)
        } else {
            0
        };
        let underline = underlined && line == g.underline;
        let cursor = style.cursor.is_some_and(|(s, e)| (s..=e).contains(&line));
        let x0 = (col * g.cell_w) as usize;
        let start = y as usize * fw + x0;
        let Some(px) = frame.pixels.get_mut(start..start + g.cell_w as usize) else {
            continue;
        };
        if x0 + g.cell_w as usize > fw {
            continue;
        }
        for (x, p) in px.iter_mut().enumerate() {
            let bit = if x < 8 {
                glyph & (0x80 >> x) != 0
            } else {
                ninth && glyph & 1 != 0
            };
            let on = cursor || (!hidden && (bit || underline));
            *p = if on { fg } else { bg };
        }
    }
}
