//! Bochs VBE: detection as SeaVGABIOS does it, mode sets as SeaVGABIOS and bochs-drm do them, the
//! linear framebuffer at every depth, panning, banked access and the 4 bpp planar modes.

use super::*;
use crate::vga::vbe::*;

/// SeaVGABIOS's `bochsvga_set_mode` for a packed-pixel mode.
fn seavgabios_set_mode(r: &Rig, xres: u16, yres: u16, bpp: u16, flags: u16) {
    r.dispi(INDEX_ENABLE, 0);
    r.dispi(INDEX_BPP, bpp);
    r.dispi(INDEX_XRES, xres);
    r.dispi(INDEX_YRES, yres);
    r.dispi(INDEX_BANK, 0);
    r.dispi(INDEX_ENABLE, ENABLED | flags);
    // Its VGA compatibility programming afterwards.
    r.crtc(0x11, 0x00);
    r.crtc(0x01, (xres / 8 - 1) as u8);
    r.crtc(0x09, 0x00);
    r.gr(0x06, 0x05);
    r.seq(0x02, 0x0f);
    r.seq(0x04, 0x0e);
    r.inb(0x3da);
    r.outb(0x3c0, 0x20);
}

/// Linux bochs-drm's `bochs_hw_setmode`.
fn bochs_drm_set_mode(r: &Rig, xres: u16, yres: u16, virt_height: u16) {
    r.dispi(INDEX_ENABLE, 0);
    r.dispi(INDEX_BPP, 32);
    r.dispi(INDEX_XRES, xres);
    r.dispi(INDEX_YRES, yres);
    r.dispi(INDEX_BANK, 0);
    r.dispi(INDEX_VIRT_WIDTH, xres);
    r.dispi(INDEX_VIRT_HEIGHT, virt_height);
    r.dispi(INDEX_X_OFFSET, 0);
    r.dispi(INDEX_Y_OFFSET, 0);
    r.dispi(INDEX_ENABLE, ENABLED | LFB_ENABLED);
}

#[test]
fn detection_and_capabilities_as_seavgabios_reads_them() {
    let r = Rig::new();
    r.dispi(INDEX_ID, ID0);
    assert_eq!(r.dispi_read(INDEX_ID), ID0);
    r.dispi(INDEX_ID, ID5);
    assert_eq!(r.dispi_read(INDEX_ID), ID5);
    r.dispi(INDEX_ID, 0x1234);
    assert_eq!(r.dispi_read(INDEX_ID), ID5, "unknown IDs are not taken");
    assert_eq!(r.dispi_read(INDEX_VIDEO_MEMORY_64K), 256);
    let en = r.dispi_read(INDEX_ENABLE);
    r.dispi(INDEX_ENABLE, en | GETCAPS);
    assert_eq!(r.dispi_read(INDEX_XRES), MAX_XRES);
    assert_eq!(r.dispi_read(INDEX_YRES), MAX_YRES);
    assert_eq!(r.dispi_read(INDEX_BPP), 32);
    r.dispi(INDEX_ENABLE, en);
    assert_eq!(r.dispi_read(INDEX_XRES), 640);
    // The index port reads back, and byte accesses to it work.
    r.outb(0x1ce, 3);
    assert_eq!(r.inw(0x1ce), 3);
    assert_eq!(Rig::with_mib(3).dispi_read(INDEX_VIDEO_MEMORY_64K), 64);
}

#[test]
fn lfb_pixels_at_every_depth() {
    type Case = (u16, Vec<u8>, u32);
    let cases: Vec<Case> = vec![
        (15, vec![0x1f, 0x00], 0x0000ff),
        (15, vec![0xe0, 0x03], 0x00ff00),
        (15, vec![0x00, 0x7c], 0xff0000),
        (15, vec![0x10, 0x42], 0x848484),
        (16, vec![0x00, 0xf8], 0xff0000),
        (16, vec![0xe0, 0x07], 0x00ff00),
        (16, vec![0x1f, 0x00], 0x0000ff),
        (24, vec![0x11, 0x22, 0x33], 0x332211),
        (32, vec![0x44, 0x55, 0x66, 0x77], 0x665544),
    ];
    for (bpp, bytes, rgb) in cases {
        let mut r = Rig::new();
        seavgabios_set_mode(&r, 800, 600, bpp, LFB_ENABLED);
        assert_eq!(r.dispi_read(INDEX_ENABLE), ENABLED | LFB_ENABLED);
        let bypp = bytes.len() as u64;
        let pitch = 800 * bypp;
        let (x, y) = (123u64, 456u64);
        r.lfb_write(y * pitch + x * bypp, &bytes);
        assert_eq!(r.lfb_read(y * pitch + x * bypp, bytes.len()), bytes);
        assert_eq!(r.refresh(), vec![Rect::full(800, 600)]);
        assert_eq!((r.frame.width, r.frame.height), (800, 600), "bpp {bpp}");
        assert_eq!(r.pixel(x as u32, y as u32), rgb, "bpp {bpp}");
        assert_eq!(r.pixel(x as u32 + 1, y as u32), 0, "bpp {bpp}");
        // One more pixel: exactly that pixel is reported changed.
        r.lfb_write(10 * pitch, &bytes);
        assert_eq!(
            r.refresh(),
            vec![Rect {
                x: 0,
                y: 10,
                w: 1,
                h: 1
            }],
            "bpp {bpp}"
        );
        assert_eq!(r.pixel(0, 10), rgb);
    }
}

#[test]
fn eight_bpp_goes_through_the_dac_in_6_or_8_bit_mode() {
    let mut r = Rig::new();
    seavgabios_set_mode(&r, 640, 480, 8, LFB_ENABLED);
    r.dac(7, (0x3f, 0x00, 0x20));
    r.lfb_write(5, &[7]);
    r.refresh();
    assert_eq!(r.pixel(5, 0), rgb6(0x3f, 0, 0x20));
    r.dispi(INDEX_ENABLE, ENABLED | LFB_ENABLED | DAC_8BIT);
    r.dac(7, (0x12, 0x34, 0xff));
    r.outb(0x3c7, 7);
    assert_eq!(r.inb(0x3c9), 0x12);
    assert_eq!(r.refresh(), vec![Rect::full(640, 480)]);
    assert_eq!(r.pixel(5, 0), 0x1234ff);
}

#[test]
fn bochs_drm_mode_set_panning_and_pitch() {
    let mut r = Rig::new();
    bochs_drm_set_mode(&r, 1024, 768, 1536);
    assert_eq!(r.dispi_read(INDEX_VIRT_WIDTH), 1024);
    assert_eq!(
        r.dispi_read(INDEX_VIRT_HEIGHT),
        4096,
        "16 MiB / 4096-byte lines"
    );
    let pitch = 1024 * 4;
    r.lfb_write(768 * pitch, &[1, 2, 3, 0]); // second page, top left
    r.refresh();
    assert_eq!(r.pixel(0, 0), 0);
    // Page flip.
    r.dispi(INDEX_Y_OFFSET, 768);
    assert_eq!(r.dispi_read(INDEX_Y_OFFSET), 768);
    assert_eq!(r.refresh(), vec![Rect::full(1024, 768)]);
    assert_eq!(r.pixel(0, 0), 0x030201);
    // A wider virtual screen changes the pitch; X offset pans.
    r.dispi(INDEX_Y_OFFSET, 0);
    r.dispi(INDEX_VIRT_WIDTH, 2048);
    r.dispi(INDEX_X_OFFSET, 16);
    r.lfb_write((2048 * 2 + 16) * 4, &[9, 9, 9, 0]);
    r.refresh();
    assert_eq!(r.pixel(0, 2), 0x090909);
    // Disabling goes back to VGA (blank here: PAS is clear after reset).
    r.dispi(INDEX_ENABLE, 0);
    assert_eq!(r.refresh(), vec![Rect::full(1024, 768)]);
}

#[test]
fn a_mode_change_resizes_and_redraws_everything() {
    let mut r = Rig::new();
    r.set_mode(&MODE3);
    r.refresh();
    assert_eq!((r.frame.width, r.frame.height), (720, 400));
    seavgabios_set_mode(&r, 1024, 768, 16, LFB_ENABLED);
    assert_eq!(r.refresh(), vec![Rect::full(1024, 768)]);
    assert!(r.refresh().is_empty());
    seavgabios_set_mode(&r, 640, 480, 32, LFB_ENABLED);
    assert_eq!(r.refresh(), vec![Rect::full(640, 480)]);
    r.dispi(INDEX_ENABLE, 0);
    r.set_mode(&MODE3);
    assert_eq!(r.refresh(), vec![Rect::full(720, 400)]);
}

#[test]
fn enabling_clears_vram_unless_told_not_to() {
    let r = Rig::new();
    r.lfb_write(100, &[0xaa]);
    seavgabios_set_mode(&r, 640, 480, 8, NOCLEARMEM);
    assert_eq!(r.lfb_read(100, 1), vec![0xaa]);
    seavgabios_set_mode(&r, 640, 480, 8, 0);
    assert_eq!(r.lfb_read(100, 1), vec![0]);
}

#[test]
fn banked_access_through_the_a0000_window() {
    let r = Rig::new();
    seavgabios_set_mode(&r, 640, 480, 8, 0);
    r.dispi(INDEX_BANK, 1);
    assert_eq!(r.dispi_read(INDEX_BANK), 1);
    r.writeb(0xa0005, 0x5a);
    assert_eq!(r.lfb_read(0x1_0005, 1), vec![0x5a]);
    assert_eq!(r.readb(0xa0005), 0x5a);
    r.dispi(INDEX_BANK, 255);
    r.writeb(0xaffff, 0x77);
    assert_eq!(r.lfb_read(0xff_ffff, 1), vec![0x77]);
    // A bank past VRAM is refused, as SeaVGABIOS's read-back check expects.
    r.dispi(INDEX_BANK, 256);
    assert_eq!(r.dispi_read(INDEX_BANK), 255);
}

#[test]
fn four_bpp_modes_use_the_planar_path() {
    let mut r = Rig::new();
    // SeaVGABIOS sets the VGA planar mode first, then the DISPI geometry.
    r.set_mode(&MODE12);
    r.dispi(INDEX_ENABLE, 0);
    r.dispi(INDEX_BPP, 4);
    r.dispi(INDEX_XRES, 1024);
    r.dispi(INDEX_YRES, 768);
    r.dispi(INDEX_BANK, 0);
    r.dispi(INDEX_ENABLE, ENABLED);
    r.gr(0x06, 0x05);
    r.inb(0x3da);
    r.outb(0x3c0, 0x20);
    // 128 plane bytes per line; line 700 is at plane offset 89600: bank 1, offset 24064.
    r.dispi(INDEX_BANK, 1);
    r.gr(5, 0x02);
    r.writeb(0xa0000 + 700 * 128 - 0x1_0000 + 2, 0x09);
    r.refresh();
    assert_eq!((r.frame.width, r.frame.height), (1024, 768));
    let (rr, g, b) = test_dac(MODE12.attr[9]);
    assert_eq!(r.pixel(16, 700), rgb6(rr, g, b));
    assert_eq!(r.pixel(16, 699), {
        let (rr, g, b) = test_dac(MODE12.attr[0]);
        rgb6(rr, g, b)
    });
}
