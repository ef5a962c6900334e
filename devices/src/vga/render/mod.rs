//! Turning VRAM and registers into pixels, and finding out what changed.
//!
//! # Which picture
//!
//! 1. A Bochs VBE mode, if enabled: packed pixels from VRAM at 8 bpp (through the DAC), 15/16 bpp
//!    (5-5-5/5-6-5), 24/32 bpp (blue, green, red byte order), with the virtual width as pitch and the X/Y
//!    offsets as start ([`linear`]); 4 bpp goes through the planar renderer with the same geometry.
//! 2. Otherwise blank (black, keeping the frame's size) while the attribute controller's PAS bit is clear
//!    or the sequencer's screen-off bit (SR1 bit 5) is set, as on hardware.
//! 3. Text mode when GR6 bit 0 is clear ([`text`]), else VGA graphics ([`planar`]): 16-colour planar,
//!    CGA 4-colour (GR5 bit 5, the interleaved shift mode) or 256 colours (GR5 bit 6).
//!
//! # VGA geometry from the CRTC
//!
//! Visible character clocks per line are CR01 + 1; visible scan lines CR12 with overflow bits 8 and 9
//! from CR07, plus one, halved by double scan (CR09 bit 7). A character clock shows 8 (or 9) text dots,
//! 8 planar pixels or 4 256-colour pixels. The CRTC's address counter starts at the start address
//! (CR0C/CR0D) and advances by 2 × CR13 per character row. In word mode (CR17 bit 6 clear) the counter is
//! shifted left into the memory address with bit 13 or 15 (CR17 bit 5) rotated into bit 0; in byte mode
//! it is used as is; in doubleword mode (CR14 bit 6) it addresses the chain-4 layout directly (see
//! [`super::memory`]). With CR17 bits 0/1 clear, address bits 13/14 come from the row-scan counter: that
//! is how the CGA-compatible modes interleave even and odd lines. Graphics modes whose character rows
//! are several scan lines tall without that substitution repeat each line (mode 13h: 400 scan lines of
//! 200 distinct rows); the frame gets the distinct rows only (320×200).
//!
//! Colours go through the attribute controller (16-entry palette, colour plane enable, colour select
//! with AR10 bit 7) and the DAC with its pixel mask; 256-colour pixels index the DAC directly. Not
//! modelled: horizontal pel panning (AR13), the line-compare split screen (CR18), cursor skew and
//! the overscan border.
//!
//! # Change tracking
//!
//! Each refresh derives a [`Mode`] (geometry plus every register the picture depends on). When it differs
//! from the last one, or the DAC changed, or the frame was resized, everything is redrawn. Otherwise text
//! modes redraw the cells whose character, attribute, blink or cursor state changed (returning one
//! rectangle per row spanning its changed cells), and graphics modes redraw the scan lines that read a
//! VRAM block written since the last refresh (one rectangle per run of lines). Graphics modes never
//! compare pixels, so the cost of an unchanged frame is a walk over the dirty bitmap.

pub mod linear;
pub mod planar;
pub mod text;

use crate::display::{Frame, Rect};

use super::regs::{
    Regs, AR_COLOR_SELECT, AR_MODE, AR_PLANE_ENABLE, ATTR_COUNT, ATTR_PAS, CR_H_DISPLAY_END,
    CR_MAX_SCAN, CR_MODE, CR_OFFSET, CR_OVERFLOW, CR_START_HI, CR_START_LO, CR_UNDERLINE,
    CR_V_DISPLAY_END, GR_MISC, GR_MODE, SR_CLOCKING,
};
use super::vbe::Geometry;
use super::Core;

/// How the CRTC's address counter becomes a plane offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressing {
    /// 0 byte, 1 word, 2 doubleword.
    pub size: u8,
    /// Word mode rotates bit 15 (true) or bit 13 (false) into bit 0.
    pub wrap15: bool,
    /// Address bit 13 comes from row-scan bit 0 (CR17 bit 0 clear).
    pub cga: bool,
    /// Address bit 14 comes from row-scan bit 1 (CR17 bit 1 clear).
    pub hercules: bool,
}

impl Addressing {
    fn from_regs(r: &Regs) -> Addressing {
        let cr17 = r.cr(CR_MODE);
        let size = if r.cr(CR_UNDERLINE) & 0x40 != 0 {
            2
        } else if cr17 & 0x40 == 0 {
            1
        } else {
            0
        };
        Addressing {
            size,
            wrap15: cr17 & 0x20 != 0,
            cga: cr17 & 0x01 == 0,
            hercules: cr17 & 0x02 == 0,
        }
    }

    /// The plane offset (0..64 Ki) the counter value `counter` reads on row-scan line `row_scan`.
    pub fn plane_offset(&self, counter: u32, row_scan: u32) -> u64 {
        let mut a = match self.size {
            0 => counter,
            1 => {
                let bit = if self.wrap15 { 15 } else { 13 };
                (counter << 1) | ((counter >> bit) & 1)
            }
            _ => counter & 0x3fff,
        };
        if self.cga {
            a = (a & !(1 << 13)) | ((row_scan & 1) << 13);
        }
        if self.hercules {
            a = (a & !(1 << 14)) | (((row_scan >> 1) & 1) << 14);
        }
        u64::from(a & 0xffff)
    }
}

/// Registers that colour the picture (part of every [`Mode`] but the direct-colour VBE ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColorKey {
    /// The attribute registers.
    pub attr: [u8; ATTR_COUNT],
    /// The DAC pixel mask.
    pub pel_mask: u8,
    /// DAC in 8-bit mode.
    pub dac8: bool,
}

/// Everything one picture depends on except VRAM contents and the DAC entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Display disabled.
    Blank,
    /// VGA text.
    Text(text::TextGeom, ColorKey),
    /// VGA graphics, or a 4 bpp VBE mode.
    Graphics(planar::GfxGeom, ColorKey),
    /// A VBE packed-pixel mode; the colour key matters only at 8 bpp.
    Linear(Geometry, Option<ColorKey>),
}

/// What the last refresh drew.
#[derive(Debug, Default)]
pub struct Cache {
    /// Its mode, `None` before the first refresh or after an invalidation.
    pub mode: Option<Mode>,
    /// Text: (character, attribute) of each cell.
    pub cells: Vec<u16>,
    /// Text: the cell and shape of the cursor as drawn (visible only).
    pub cursor: Option<(usize, u32, u32)>,
    /// Text: whether blinking characters were drawn visible.
    pub blink_on: bool,
}

/// The visible scan lines (CR12 + CR07 overflow, plus one).
fn vertical_display(r: &Regs) -> u32 {
    let ov = u32::from(r.cr(CR_OVERFLOW));
    let v = u32::from(r.cr(CR_V_DISPLAY_END)) | ((ov & 0x02) << 7) | ((ov & 0x40) << 3);
    v + 1
}

impl Core {
    fn color_key(&self) -> ColorKey {
        ColorKey {
            attr: self.regs.attr,
            pel_mask: self.regs.dac.pel_mask,
            dac8: self.vbe.dac8(),
        }
    }

    /// The picture the registers describe now.
    pub fn mode(&self) -> Mode {
        let r = &self.regs;
        if let Some(g) = self.vbe.geometry(self.vram.len()) {
            if g.bpp == 4 {
                return Mode::Graphics(planar::GfxGeom::vbe(&g), self.color_key());
            }
            return Mode::Linear(g, (g.bpp == 8).then(|| self.color_key()));
        }
        if r.attr_index & ATTR_PAS == 0 || r.sr(SR_CLOCKING) & 0x20 != 0 {
            return Mode::Blank;
        }
        let chars = u32::from(r.cr(CR_H_DISPLAY_END)) + 1;
        let cr09 = r.cr(CR_MAX_SCAN);
        let mut lines = vertical_display(r);
        if cr09 & 0x80 != 0 {
            lines = (lines / 2).max(1);
        }
        let scan_per_row = u32::from(cr09 & 0x1f) + 1;
        let start = (u32::from(r.cr(CR_START_HI)) << 8) | u32::from(r.cr(CR_START_LO));
        let pitch = 2 * u32::from(r.cr(CR_OFFSET));
        let addr = Addressing::from_regs(r);
        if r.gr(GR_MISC) & 1 == 0 {
            return Mode::Text(
                text::TextGeom::new(r, chars, lines, scan_per_row, start, pitch, addr),
                self.color_key(),
            );
        }
        let gr5 = r.gr(GR_MODE);
        let shift = if gr5 & 0x40 != 0 {
            planar::Shift::Vga256
        } else if gr5 & 0x20 != 0 {
            planar::Shift::Cga4
        } else {
            planar::Shift::Planar16
        };
        Mode::Graphics(
            planar::GfxGeom::vga(chars, lines, scan_per_row, start, pitch, addr, shift),
            self.color_key(),
        )
    }

    /// The 16 colours of the attribute palette through the DAC.
    pub fn attribute_colors(&self) -> [u32; 16] {
        let r = &self.regs;
        let enable = r.ar(AR_PLANE_ENABLE) & 0x0f;
        let mode = r.ar(AR_MODE);
        let select = r.ar(AR_COLOR_SELECT);
        let mut out = [0; 16];
        for (i, o) in out.iter_mut().enumerate() {
            let p = r.ar(i & usize::from(enable)) & 0x3f;
            let idx = if mode & 0x80 != 0 {
                (p & 0x0f) | ((select & 0x03) << 4)
            } else {
                p
            };
            let idx = idx | ((select & 0x0c) << 4);
            *o = self.dac_rgb(idx);
        }
        out
    }

    /// The 256 DAC colours, through the pixel mask.
    pub fn dac_colors(&self) -> Vec<u32> {
        (0..=255u8).map(|i| self.dac_rgb(i)).collect()
    }

    fn dac_rgb(&self, index: u8) -> u32 {
        self.regs
            .dac
            .rgb(index & self.regs.dac.pel_mask, self.vbe.dac8())
    }

    /// Renders what changed into `frame`; `now_ns` times text blinking.
    pub fn refresh(&mut self, frame: &mut Frame, now_ns: u64) -> Vec<Rect> {
        let mode = self.mode();
        let palette_matters = !matches!(&mode, Mode::Linear(_, None) | Mode::Blank);
        let mut full =
            self.cache.mode.as_ref() != Some(&mode) || (palette_matters && self.palette_changed);
        let rects = match &mode {
            Mode::Blank => {
                if full {
                    frame.pixels.fill(0);
                    vec![Rect::full(frame.width, frame.height)]
                } else {
                    Vec::new()
                }
            }
            Mode::Text(g, _) => {
                full |= frame.resize(g.width(), g.height()) || self.font_written;
                text::refresh(self, g, frame, full, now_ns)
            }
            Mode::Graphics(g, _) => {
                full |= frame.resize(g.width, g.height);
                planar::refresh(self, g, frame, full)
            }
            Mode::Linear(g, _) => {
                full |= frame.resize(g.xres, g.yres);
                linear::refresh(self, g, frame, full)
            }
        };
        self.cache.mode = Some(mode);
        self.vram.clear_dirty();
        self.palette_changed = false;
        self.font_written = false;
        rects
    }
}

/// One rectangle per run of consecutive changed lines, as wide as the union of their changed spans
/// (`spans[y]` = the columns `x0..x1` of line `y` whose pixels changed, `None` for an unchanged line). A run is
/// split where a line's span is far from the run's, so two changes in different corners of a band stay two
/// small rectangles rather than one box spanning both.
pub fn span_runs(spans: &[Option<(u32, u32)>]) -> Vec<Rect> {
    /// Spans further apart than this (pixels) start a new rectangle.
    const GAP: u32 = 64;
    let mut out = Vec::new();
    let mut run: Option<(u32, u32, u32)> = None; // first line, x0, x1
    let close = |run: (u32, u32, u32), end: u32, out: &mut Vec<Rect>| {
        out.push(Rect {
            x: run.1,
            y: run.0,
            w: run.2 - run.1,
            h: end - run.0,
        })
    };
    for (y, span) in spans.iter().enumerate() {
        let y = y as u32;
        run = match (run, *span) {
            (None, None) => None,
            (Some(r), None) => {
                close(r, y, &mut out);
                None
            }
            (None, Some((a, b))) => Some((y, a, b)),
            (Some(r), Some((a, b))) => {
                if a > r.2.saturating_add(GAP) || b.saturating_add(GAP) < r.1 {
                    close(r, y, &mut out);
                    Some((y, a, b))
                } else {
                    Some((r.0, r.1.min(a), r.2.max(b)))
                }
            }
        };
    }
    if let Some(r) = run {
        close(r, spans.len() as u32, &mut out);
    }
    out
}

/// One rectangle per run of consecutive `true` lines, full width.
pub fn line_runs(changed: &[bool], width: u32) -> Vec<Rect> {
    let mut out = Vec::new();
    let mut start = None;
    for (y, &c) in changed.iter().chain(std::iter::once(&false)).enumerate() {
        match (c, start) {
            (true, None) => start = Some(y),
            (false, Some(s)) => {
                out.push(Rect {
                    x: 0,
                    y: s as u32,
                    w: width,
                    h: (y - s) as u32,
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}
