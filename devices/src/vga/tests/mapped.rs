//! BAR0 as guest RAM: the VGA offers VRAM to the PCI root's memory mapper, stores through the mapping
//! bypass the device (as a vCPU's do once KVM maps the framebuffer), and the dirty source brings them to
//! the renderer. The recording mapper stands in for KVM, which the `devices` crate does not know.

use super::*;
use crate::pci::testing::{MapperCall, PciTestbed, RecordingMapper};
use crate::pci::PciAddress;
use crate::vga::vbe::*;

const LFB: u64 = 0xfd00_0000;

struct MappedVga {
    tb: PciTestbed,
    vga: Arc<StdVga>,
    mapper: Arc<RecordingMapper>,
    frame: Frame,
}

impl MappedVga {
    /// A VGA at 00:02.0 whose BAR0 SeaBIOS put at [`LFB`], on a root with a recording mapper; the mapper is
    /// the VGA's dirty source when `with_source`.
    fn new(with_source: bool) -> MappedVga {
        let tb = PciTestbed::new();
        let mapper = RecordingMapper::new();
        tb.root.set_memory_mapper(mapper.clone());
        let vga = StdVga::new(16, tb.clock.clone()).unwrap();
        if with_source {
            vga.set_dirty_source(mapper.clone());
        }
        for r in vga.legacy_ports() {
            tb.pio.insert(r.base, r.len, r.max_width, r.device).unwrap();
        }
        tb.root
            .add(PciAddress::new(0, 2, 0).unwrap(), vga.pci_function())
            .unwrap();
        tb.cfg_write(2, 0, 0x10, 4, LFB as u32);
        tb.cfg_write(2, 0, 0x04, 2, 0x0003);
        MappedVga {
            tb,
            vga,
            mapper,
            frame: Frame::new(640, 480),
        }
    }

    fn dispi(&self, index: u16, v: u16) {
        self.tb.pio_write(0x1ce, 2, u32::from(index));
        self.tb.pio_write(0x1cf, 2, u32::from(v));
    }

    /// Linux bochs-drm's mode set, 32 bpp.
    fn set_mode(&self, xres: u16, yres: u16) {
        self.dispi(INDEX_ENABLE, 0);
        self.dispi(INDEX_BPP, 32);
        self.dispi(INDEX_XRES, xres);
        self.dispi(INDEX_YRES, yres);
        self.dispi(INDEX_VIRT_WIDTH, xres);
        self.dispi(INDEX_ENABLE, ENABLED | LFB_ENABLED);
    }

    fn refresh(&mut self) -> Vec<Rect> {
        self.vga.refresh(&mut self.frame)
    }
}

/// The test picture: a 32 bpp pixel (B, G, R, X) for every position.
fn pattern(x: u32, y: u32) -> [u8; 4] {
    [(x * 7) as u8, (y * 3) as u8, (x ^ y) as u8, 0xee]
}

#[test]
fn bar0_offers_vram_to_the_mapper_with_dirty_logging() {
    let m = MappedVga::new(true);
    assert_eq!(
        m.mapper.take_calls(),
        vec![MapperCall::Map {
            addr: LFB,
            len: 16 << 20,
            log_dirty: true
        }]
    );
    // The mapping is VRAM itself: what the guest stores there, the device and the trapped path read back.
    assert!(m.mapper.guest_write(LFB + 0x1000, &[1, 2, 3, 4]));
    assert_eq!(&m.vga.vram_contents()[0x1000..0x1004], &[1, 2, 3, 4]);
    assert_eq!(m.tb.mmio_read(LFB + 0x1000, 4), 0x0403_0201);
    // And the other way round: VRAM written by the device (a VBE clear) is what the guest reads there.
    m.tb.mmio_write(LFB + 0x2000, 2, 0xbeef);
    let mut d = [0u8; 2];
    assert!(m.mapper.guest_read(LFB + 0x2000, &mut d));
    assert_eq!(d, [0xef, 0xbe]);
    m.set_mode(640, 480);
    assert!(m.mapper.guest_read(LFB + 0x2000, &mut d));
    assert_eq!(d, [0, 0], "enabling the mode cleared VRAM");
}

#[test]
fn guest_stores_through_the_mapping_reach_the_screen_through_the_dirty_log() {
    let mut m = MappedVga::new(false);
    m.set_mode(1024, 768);
    assert_eq!(m.refresh(), vec![Rect::full(1024, 768)]);
    assert!(m.refresh().is_empty());
    // A store to line 300 (one 4 KiB page is exactly one 1024 × 32 bpp line).
    let offset = (300 * 1024 + 10) * 4;
    assert!(m.mapper.guest_write(LFB + offset, &[0x11, 0x22, 0x33, 0]));
    // Without the dirty source the device cannot know: nothing is redrawn, the pixel stays black.
    assert!(m.refresh().is_empty());
    assert_eq!(m.frame.pixels[300 * 1024 + 10], 0);
    // With it, that line is redrawn, once, and the changed pixel is the rectangle reported.
    m.vga.set_dirty_source(m.mapper.clone());
    assert_eq!(
        m.refresh(),
        vec![Rect {
            x: 10,
            y: 300,
            w: 1,
            h: 1
        }]
    );
    assert_eq!(m.frame.pixels[300 * 1024 + 10], 0x332211);
    assert!(m.refresh().is_empty());
    // Two stores far apart: two small rectangles (the second store straddles lines 700 and 701, whose changed
    // pixels are at opposite ends of the lines, so they are reported separately too).
    assert!(m.mapper.guest_write(LFB, &[0xff; 8]));
    assert!(m.mapper.guest_write(LFB + 700 * 4096 + 4092, &[0x80; 8]));
    let rect = |x, y, w, h| Rect { x, y, w, h };
    assert_eq!(
        m.refresh(),
        vec![rect(0, 0, 2, 1), rect(1023, 700, 1, 1), rect(0, 701, 1, 1)]
    );
    assert_eq!(m.frame.pixels[1], 0xffffff);
    assert_eq!(m.frame.pixels[701 * 1024], 0x808080);
}

#[test]
fn a_picture_drawn_through_the_mapping_renders_exactly_like_one_drawn_trapped() {
    let (w, h) = (800u32, 600u32);
    let golden: Vec<u32> = (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                let p = pattern(x, y);
                (u32::from(p[2]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[0])
            })
        })
        .collect();
    // Mapped: the guest draws every line straight into VRAM, after a first refresh of the blank mode.
    let mut mapped = MappedVga::new(true);
    mapped.set_mode(w as u16, h as u16);
    mapped.refresh();
    for y in 0..h {
        let line: Vec<u8> = (0..w).flat_map(|x| pattern(x, y)).collect();
        assert!(mapped.mapper.guest_write(LFB + u64::from(y * w * 4), &line));
    }
    let rects = mapped.refresh();
    assert_eq!(rects, vec![Rect::full(w, h)], "every line was written");
    assert_eq!(mapped.frame.pixels, golden);
    // Trapped: the same picture through BAR0 accesses, 4 bytes at a time as a CPU store would.
    let mut trapped = MappedVga::new(false);
    trapped.mapper.refuse(true);
    trapped.tb.cfg_write(2, 0, 0x04, 2, 0);
    trapped.tb.cfg_write(2, 0, 0x04, 2, 3);
    assert!(trapped.mapper.mapped().is_empty());
    trapped.set_mode(w as u16, h as u16);
    trapped.refresh();
    for y in 0..h {
        for x in 0..w {
            let v = u32::from_le_bytes(pattern(x, y));
            trapped
                .tb
                .mmio_write(LFB + u64::from((y * w + x) * 4), 4, u64::from(v));
        }
    }
    assert_eq!(trapped.refresh(), vec![Rect::full(w, h)]);
    assert_eq!(trapped.frame.pixels, golden);
}
