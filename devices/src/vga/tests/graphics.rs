//! VGA graphics: the planar data path (write modes 0-3, read modes 0-1, latches), chain-4 mode 13h,
//! unchained 256-colour, CGA line interleave, and line-based change rectangles.

use super::*;

const A0000: u64 = 0xa0000;

fn color12(i: u8) -> u32 {
    let (r, g, b) = test_dac(MODE12.attr[usize::from(i & 15)]);
    rgb6(r, g, b)
}

fn mode12() -> Rig {
    let r = Rig::new();
    r.set_mode(&MODE12);
    r
}

/// The four plane bytes at `offset`, read with read mode 0 and GR4.
fn planes(r: &Rig, offset: u64) -> [u8; 4] {
    let mut out = [0; 4];
    for (p, o) in out.iter_mut().enumerate() {
        r.gr(4, p as u8);
        *o = r.readb(A0000 + offset);
    }
    r.gr(4, 0);
    out
}

#[test]
fn write_mode_0_with_rotate_set_reset_function_and_bit_mask() {
    let r = mode12();
    // Plain: all planes get the byte.
    r.writeb(A0000, 0xa5);
    assert_eq!(planes(&r, 0), [0xa5; 4]);
    // Map mask limits the planes.
    r.seq(2, 0x05);
    r.writeb(A0000 + 1, 0x3c);
    assert_eq!(planes(&r, 1), [0x3c, 0, 0x3c, 0]);
    r.seq(2, 0x0f);
    // Enable set/reset on planes 0 and 1 with set/reset 0b0001: plane 0 all ones, plane 1 zeros,
    // planes 2/3 take the CPU byte, rotated right by 4.
    r.gr(0, 0x01);
    r.gr(1, 0x03);
    r.gr(3, 0x04);
    r.writeb(A0000 + 2, 0x0f);
    assert_eq!(planes(&r, 2), [0xff, 0x00, 0xf0, 0xf0]);
    r.gr(1, 0);
    r.gr(3, 0);
    // Bit mask keeps latched bits: latch offset 0 (0xa5), write 0x00 with mask 0x0f.
    let _ = r.readb(A0000);
    r.gr(8, 0x0f);
    r.writeb(A0000, 0x00);
    assert_eq!(planes(&r, 0), [0xa0; 4]);
    // XOR with the latches.
    let _ = r.readb(A0000);
    r.gr(8, 0xff);
    r.gr(3, 0x18);
    r.writeb(A0000, 0xff);
    assert_eq!(planes(&r, 0), [0x5f; 4]);
    // AND and OR.
    let _ = r.readb(A0000);
    r.gr(3, 0x08);
    r.writeb(A0000, 0x0f);
    assert_eq!(planes(&r, 0), [0x0f; 4]);
    let _ = r.readb(A0000);
    r.gr(3, 0x10);
    r.writeb(A0000, 0x30);
    assert_eq!(planes(&r, 0), [0x3f; 4]);
}

#[test]
fn write_mode_1_copies_latches() {
    let r = mode12();
    r.gr(0, 0x06);
    r.gr(1, 0x0f);
    r.writeb(A0000 + 10, 0); // colour 6 everywhere
    r.gr(1, 0);
    r.gr(5, 0x01);
    let _ = r.readb(A0000 + 10);
    r.writeb(A0000 + 500, 0x12); // the CPU byte is ignored
    assert_eq!(planes(&r, 500), [0x00, 0xff, 0xff, 0x00]);
}

#[test]
fn write_modes_2_and_3() {
    let r = mode12();
    r.gr(5, 0x02);
    r.gr(8, 0xf0);
    r.writeb(A0000 + 20, 0x0c); // colour 12 in the left four pixels
    r.gr(8, 0xff);
    assert_eq!(planes(&r, 20), [0x00, 0x00, 0xf0, 0xf0]);
    // Write mode 3: set/reset is the colour, the rotated CPU byte ANDs the bit mask.
    r.gr(5, 0x03);
    r.gr(0, 0x09);
    r.gr(3, 0x01); // rotate right by 1
    let _ = r.readb(A0000 + 20); // latches: colour 12 left, 0 right
    r.writeb(A0000 + 20, 0x06); // rotated: 0x03, so the two rightmost pixels become colour 9
    assert_eq!(planes(&r, 20), [0x03, 0x00, 0xf0, 0xf3]);
}

#[test]
fn read_mode_1_compares_colours() {
    let r = mode12();
    r.gr(5, 0x02);
    for (bit, colour) in [(0x80u8, 5u8), (0x40, 5), (0x20, 7), (0x01, 13)] {
        r.gr(8, bit);
        let _ = r.readb(A0000 + 30); // load the latches, or the masked bits would be cleared
        r.writeb(A0000 + 30, colour);
    }
    r.gr(8, 0xff);
    r.gr(5, 0x08);
    r.gr(2, 5);
    r.gr(7, 0x0f);
    assert_eq!(r.readb(A0000 + 30), 0xc0);
    r.gr(2, 0);
    assert_eq!(r.readb(A0000 + 30), 0x1e, "colour 0 in the middle pixels");
    // Don't-care on plane 1 makes 7 match 5.
    r.gr(2, 5);
    r.gr(7, 0x0d);
    assert_eq!(r.readb(A0000 + 30), 0xe0);
    r.gr(7, 0);
    assert_eq!(r.readb(A0000 + 30), 0xff, "nothing to compare: all match");
}

#[test]
fn mode12_renders_through_the_attribute_palette_and_tracks_lines() {
    let mut r = mode12();
    r.gr(5, 0x02);
    for x in 0..16u8 {
        // Pixel x of line 0 gets colour x.
        r.gr(8, 0x80 >> (x % 8));
        let _ = r.readb(A0000 + u64::from(x / 8));
        r.writeb(A0000 + u64::from(x / 8), x);
    }
    r.gr(8, 0xff);
    let rects = r.refresh();
    assert_eq!((r.frame.width, r.frame.height), (640, 480));
    assert_eq!(rects, vec![Rect::full(640, 480)]);
    for x in 0..16u8 {
        assert_eq!(r.pixel(u32::from(x), 0), color12(x), "pixel {x}");
    }
    assert_eq!(r.pixel(100, 100), color12(0));
    assert!(r.refresh().is_empty());
    // One byte on line 100: one line redrawn.
    r.writeb(A0000 + 100 * 80 + 3, 0x0f);
    assert_line_rect(&r.refresh(), 100, 640);
    assert_eq!(r.pixel(24, 100), color12(0x0f));
    // Colour plane enable masks planes: without plane 3, colour 15 shows as 7.
    r.attr(0x12, 0x07);
    assert_eq!(r.refresh(), vec![Rect::full(640, 480)]);
    assert_eq!(r.pixel(24, 100), color12(7));
}

#[test]
fn mode13_is_chain4_256_colours_at_320x200() {
    let mut r = Rig::new();
    r.set_mode(&MODE13);
    for (x, y, c) in [
        (0u64, 0u64, 1u8),
        (1, 0, 2),
        (319, 0, 3),
        (5, 199, 200),
        (160, 100, 255),
    ] {
        r.writeb(A0000 + y * 320 + x, c);
    }
    assert_eq!(r.readb(A0000 + 5 + 199 * 320), 200);
    assert_eq!(r.refresh(), vec![Rect::full(320, 200)]);
    assert_eq!((r.frame.width, r.frame.height), (320, 200));
    let c = |i: u8| {
        let (r, g, b) = test_dac(i);
        rgb6(r, g, b)
    };
    assert_eq!(r.pixel(0, 0), c(1));
    assert_eq!(r.pixel(1, 0), c(2));
    assert_eq!(r.pixel(319, 0), c(3));
    assert_eq!(r.pixel(5, 199), c(200));
    assert_eq!(r.pixel(160, 100), c(255));
    assert_eq!(r.pixel(2, 0), c(0));
    // A pixel changes: its line only.
    r.writeb(A0000 + 50 * 320 + 7, 9);
    assert_line_rect(&r.refresh(), 50, 320);
    assert_eq!(r.pixel(7, 50), c(9));
    // The pixel mask applies.
    r.outb(0x3c6, 0x0f);
    assert_eq!(r.refresh(), vec![Rect::full(320, 200)]);
    assert_eq!(r.pixel(5, 199), c(200 & 0x0f));
}

#[test]
fn unchained_256_colour_mode_x_shows_the_same_layout() {
    let mut r = Rig::new();
    r.set_mode(&MODE13);
    // Unchain: no chain-4, byte mode, no doubleword.
    r.seq(4, 0x06);
    r.crtc(0x14, 0x00);
    r.crtc(0x17, 0xe3);
    for x in 0..8u64 {
        r.seq(2, 1 << (x & 3));
        r.writeb(A0000 + 10 * 80 + x / 4, 100 + x as u8);
    }
    r.refresh();
    for x in 0..8u32 {
        let (rr, g, b) = test_dac(100 + x as u8);
        assert_eq!(r.pixel(x, 10), rgb6(rr, g, b));
    }
}

#[test]
fn cga_modes_interleave_even_and_odd_lines() {
    let mut r = Rig::new();
    let mode6 = ModeRegs {
        misc: 0x63,
        seq: [0x03, 0x01, 0x01, 0x00, 0x06],
        crtc: [
            0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0xc1, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x00, 0x96, 0xb9, 0xc2, 0xff,
        ],
        attr: [
            0x00, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17,
            0x17, 0x17, 0x01, 0x00, 0x01, 0x00, 0x00,
        ],
        gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x00, 0xff],
    };
    r.set_mode(&mode6);
    // Line 7 is row 3, odd: at 0x2000 + 3 × 80 from B8000.
    r.writeb(0xb8000 + 0x2000 + 3 * 80, 0x80);
    r.writeb(0xb8000 + 3 * 80, 0x01);
    r.refresh();
    assert_eq!((r.frame.width, r.frame.height), (640, 200));
    let c = |i: u8| {
        let (rr, g, b) = test_dac(i);
        rgb6(rr, g, b)
    };
    assert_eq!(r.pixel(0, 7), c(0x17));
    assert_eq!(r.pixel(1, 7), c(0));
    assert_eq!(r.pixel(7, 6), c(0x17));
    assert_eq!(r.pixel(0, 6), c(0));
}

#[test]
fn memory_map_select_decodes_only_its_range() {
    let r = Rig::new();
    r.set_mode(&MODE13);
    r.gr(6, 0x09); // B0000, 32K
    r.writeb(A0000, 0x11);
    r.writeb(0xb0000, 0x22);
    assert_eq!(r.readb(A0000), 0xff, "A0000 not decoded");
    assert_eq!(r.readb(0xb0000), 0x22);
    r.gr(6, 0x05);
    assert_eq!(r.readb(A0000), 0x22, "both hit VRAM offset 0");
    assert_eq!(r.readb(0xb0000), 0xff);
    r.gr(6, 0x01); // 128K at A0000
    assert_eq!(r.readb(0xb0000), r.vga.vram_contents()[0x10000]);
    // Wide accesses are split into bytes.
    assert_eq!(
        r.mmio.write(A0000 + 8, &[1, 2, 3, 4, 5, 6, 7, 8]),
        Access::Handled
    );
    let mut d = [0u8; 4];
    r.mmio.read(A0000 + 10, &mut d);
    assert_eq!(d, [3, 4, 5, 6]);
}
