//! Text mode: font loading, cells, attributes, cursor and blink, and change rectangles.

use super::*;
use crate::vga::render::text::{CHAR_BLINK_HALF_NS, CURSOR_BLINK_HALF_NS};

const TEXT: u64 = 0xb8000;

/// The test font: 16 lines per glyph, a pattern every glyph and line differ in.
fn glyph(ch: u8, line: u32) -> u8 {
    let v = u32::from(ch)
        .wrapping_mul(0x9e37)
        .wrapping_add(line.wrapping_mul(0x85eb))
        .rotate_left(line + u32::from(ch));
    (v ^ (v >> 11)) as u8
}

/// Loads the test font into plane 2 the way a VGA BIOS does, then restores text-mode access.
fn load_font(r: &Rig) {
    r.seq(0, 0x01);
    r.seq(2, 0x04); // plane 2 only
    r.seq(4, 0x07); // sequential, no odd/even
    r.seq(0, 0x03);
    r.gr(4, 0x02);
    r.gr(5, 0x00);
    r.gr(6, 0x04); // A0000, 64K
    for ch in 0..=255u8 {
        for line in 0..32u32 {
            let v = if line < 16 { glyph(ch, line) } else { 0 };
            r.writeb(0xa0000 + u64::from(ch) * 32 + u64::from(line), v);
        }
    }
    r.seq(0, 0x01);
    r.seq(2, 0x03);
    r.seq(4, 0x02);
    r.seq(0, 0x03);
    r.gr(4, 0x00);
    r.gr(5, 0x10);
    r.gr(6, 0x0e);
}

fn mode3() -> Rig {
    let r = Rig::new();
    r.set_mode(&MODE3);
    load_font(&r);
    r
}

fn put(r: &Rig, row: u32, col: u32, ch: u8, attr: u8) {
    let a = TEXT + u64::from(row * 80 + col) * 2;
    r.writeb(a, ch);
    r.writeb(a + 1, attr);
}

fn set_cursor(r: &Rig, row: u32, col: u32) {
    let loc = row * 80 + col;
    r.crtc(0x0e, (loc >> 8) as u8);
    r.crtc(0x0f, loc as u8);
}

/// The colour of attribute-palette entry `i` in mode 3 (AR0-15 as set by MODE3, test DAC).
fn color(i: u8) -> u32 {
    let (r, g, b) = test_dac(MODE3.attr[usize::from(i & 15)]);
    rgb6(r, g, b)
}

/// What cell (row, col) with `ch`/`attr` looks like, 9×16, drawn from the font and palette bytes.
/// `cursor`: draw scan lines 13-14 (MODE3's CR0A/CR0B) in the foreground. `blink_on`: blink phase.
fn golden_cell(ch: u8, attr: u8, cursor: bool, blink_on: bool) -> Vec<u32> {
    let fg = color(attr & 15);
    let bg = color((attr >> 4) & 7);
    let hidden = attr & 0x80 != 0 && !blink_on;
    let mut out = Vec::new();
    for line in 0..16 {
        let g = glyph(ch, line);
        for x in 0..9 {
            let bit = if x < 8 {
                g & (0x80 >> x) != 0
            } else {
                (0xc0..=0xdf).contains(&ch) && g & 1 != 0
            };
            let on = (cursor && (13..=14).contains(&line)) || (!hidden && bit);
            out.push(if on { fg } else { bg });
        }
    }
    out
}

fn cell_pixels(r: &Rig, row: u32, col: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for y in row * 16..row * 16 + 16 {
        for x in col * 9..col * 9 + 9 {
            out.push(r.pixel(x, y));
        }
    }
    out
}

fn cell_rect(row: u32, col: u32) -> Rect {
    Rect {
        x: col * 9,
        y: row * 16,
        w: 9,
        h: 16,
    }
}

fn screen(i: u32) -> (u8, u8) {
    ((i * 7 + 3) as u8, ((i * 13) as u8) & 0x7f)
}

#[test]
fn mode3_renders_cells_from_the_font_in_plane_2() {
    let mut r = mode3();
    for i in 0..80 * 25 {
        let (ch, attr) = screen(i);
        put(&r, i / 80, i % 80, ch, attr);
    }
    set_cursor(&r, 3, 5);
    let rects = r.refresh();
    assert_eq!((r.frame.width, r.frame.height), (720, 400));
    assert_eq!(rects, vec![Rect::full(720, 400)]);
    for i in 0..80 * 25 {
        let (row, col) = (i / 80, i % 80);
        let (ch, attr) = screen(i);
        let cursor = (row, col) == (3, 5);
        assert_eq!(
            cell_pixels(&r, row, col),
            golden_cell(ch, attr, cursor, true),
            "cell {row},{col} ch {ch:#x} attr {attr:#x}"
        );
    }
    // Reading text memory back goes through odd/even too.
    assert_eq!(r.readb(TEXT + 2), screen(1).0);
    assert_eq!(r.readb(TEXT + 3), screen(1).1);
    // Nothing changed: nothing to send.
    assert!(r.refresh().is_empty());
}

#[test]
fn a_one_character_change_is_a_one_cell_rectangle() {
    let mut r = mode3();
    set_cursor(&r, 24, 79);
    r.refresh();
    put(&r, 10, 40, b'A', 0x1e);
    assert_eq!(r.refresh(), vec![cell_rect(10, 40)]);
    assert_eq!(
        cell_pixels(&r, 10, 40),
        golden_cell(b'A', 0x1e, false, true)
    );
    // Two characters on one row: one rectangle spanning them; another row: its own.
    put(&r, 10, 42, b'B', 0x1e);
    put(&r, 10, 43, b'C', 0x1e);
    put(&r, 12, 0, b'D', 0x07);
    let rects = r.refresh();
    assert_eq!(
        rects,
        vec![
            Rect {
                x: 42 * 9,
                y: 160,
                w: 18,
                h: 16
            },
            cell_rect(12, 0)
        ]
    );
    // Rewriting the same value is not a change.
    put(&r, 10, 40, b'A', 0x1e);
    assert!(r.refresh().is_empty());
}

#[test]
fn cursor_follows_its_registers_and_blinks_with_the_clock() {
    let mut r = mode3();
    put(&r, 2, 2, b'x', 0x07);
    set_cursor(&r, 2, 2);
    r.refresh();
    assert_eq!(cell_pixels(&r, 2, 2), golden_cell(b'x', 0x07, true, true));
    // Half a cursor period later the cursor is off: only its cell is redrawn.
    r.clock.advance(CURSOR_BLINK_HALF_NS);
    assert_eq!(r.refresh(), vec![cell_rect(2, 2)]);
    assert_eq!(cell_pixels(&r, 2, 2), golden_cell(b'x', 0x07, false, true));
    r.clock.advance(CURSOR_BLINK_HALF_NS);
    assert_eq!(r.refresh(), vec![cell_rect(2, 2)]);
    assert_eq!(cell_pixels(&r, 2, 2), golden_cell(b'x', 0x07, true, true));
    // Moving it redraws the old and the new cell.
    set_cursor(&r, 5, 7);
    assert_eq!(r.refresh(), vec![cell_rect(2, 2), cell_rect(5, 7)]);
    assert_eq!(cell_pixels(&r, 2, 2), golden_cell(b'x', 0x07, false, true));
    // CR0A bit 5 hides it.
    r.crtc(0x0a, 0x2d);
    assert_eq!(r.refresh(), vec![cell_rect(5, 7)]);
    assert!(r.refresh().is_empty());
}

#[test]
fn blinking_characters_follow_the_clock() {
    let mut r = mode3();
    set_cursor(&r, 24, 79);
    r.crtc(0x0a, 0x20);
    put(&r, 1, 1, b'Z', 0x8c);
    put(&r, 1, 3, b'Y', 0x0c);
    r.refresh();
    assert_eq!(cell_pixels(&r, 1, 1), golden_cell(b'Z', 0x8c, false, true));
    r.clock.advance(CHAR_BLINK_HALF_NS);
    assert_eq!(r.refresh(), vec![cell_rect(1, 1)]);
    assert_eq!(cell_pixels(&r, 1, 1), golden_cell(b'Z', 0x8c, false, false));
    // With AR10 bit 3 clear, bit 7 is background intensity and nothing blinks.
    r.attr(0x10, 0x04);
    r.refresh();
    let fg = color(0x0c);
    let bg = color(0x08);
    let px = cell_pixels(&r, 1, 1);
    assert!(px.iter().all(|&p| p == fg || p == bg) && px.contains(&bg));
    r.clock.advance(CHAR_BLINK_HALF_NS);
    assert!(r.refresh().is_empty());
}

#[test]
fn start_address_scrolls_and_8_dot_mode_narrows_cells() {
    let mut r = mode3();
    set_cursor(&r, 24, 79);
    put(&r, 1, 0, b'Q', 0x07);
    r.refresh();
    r.crtc(0x0c, 0);
    r.crtc(0x0d, 80); // start at row 1
    let rects = r.refresh();
    assert_eq!(
        rects,
        vec![Rect::full(720, 400)],
        "a register change redraws all"
    );
    assert_eq!(cell_pixels(&r, 0, 0), golden_cell(b'Q', 0x07, false, true));
    r.seq(1, 0x01);
    assert_eq!(r.refresh(), vec![Rect::full(640, 400)]);
    assert_eq!((r.frame.width, r.frame.height), (640, 400));
}

#[test]
fn font_and_palette_changes_redraw_everything() {
    let mut r = mode3();
    set_cursor(&r, 24, 79);
    r.refresh();
    r.dac(7, (1, 2, 3));
    assert_eq!(r.refresh(), vec![Rect::full(720, 400)]);
    load_font(&r);
    assert_eq!(r.refresh(), vec![Rect::full(720, 400)]);
    assert!(r.refresh().is_empty());
    // The display disabled (PAS clear) is black at the same size.
    r.inb(0x3da);
    r.outb(0x3c0, 0x00);
    assert_eq!(r.refresh(), vec![Rect::full(720, 400)]);
    assert!(r.frame.pixels.iter().all(|&p| p == 0));
}
