//! Hostile and odd input, construction errors, snapshots and the PCI function.

use super::*;
use crate::display::DisplayChanges;
use crate::pci::testing::PciTestbed;
use crate::pci::PciAddress;
use crate::vga::vbe::*;

#[test]
fn videoram_sizes() {
    let clock = Arc::new(FakeClock::new());
    assert_eq!(
        StdVga::new(0, clock.clone()).err(),
        Some(VgaError::VideoRam(0))
    );
    assert_eq!(
        StdVga::new(257, clock.clone()).err(),
        Some(VgaError::VideoRam(257))
    );
    assert_eq!(StdVga::new(3, clock.clone()).unwrap().vram_size(), 4 << 20);
    assert_eq!(StdVga::new(1, clock.clone()).unwrap().vram_size(), 1 << 20);
    assert_eq!(StdVga::new(256, clock).unwrap().vram_size(), 256 << 20);
}

#[test]
fn bad_vbe_values_are_refused_and_the_mode_stays_valid() {
    let mut r = Rig::with_mib(1);
    r.set_mode(&MODE3);
    r.refresh();
    r.dispi(INDEX_XRES, 0xffff);
    assert_eq!(r.dispi_read(INDEX_XRES), 640);
    r.dispi(INDEX_XRES, 0);
    assert_eq!(r.dispi_read(INDEX_XRES), 640);
    r.dispi(INDEX_YRES, MAX_YRES + 1);
    assert_eq!(r.dispi_read(INDEX_YRES), 480);
    r.dispi(INDEX_BPP, 7);
    assert_eq!(r.dispi_read(INDEX_BPP), 8);
    r.dispi(INDEX_BANK, 16);
    assert_eq!(r.dispi_read(INDEX_BANK), 0, "1 MiB has 16 banks");
    // 1024×768×32 needs 3 MiB: refused, VGA text stays.
    r.dispi(INDEX_BPP, 32);
    r.dispi(INDEX_XRES, 1024);
    r.dispi(INDEX_YRES, 768);
    r.dispi(INDEX_ENABLE, ENABLED | LFB_ENABLED);
    assert_eq!(r.dispi_read(INDEX_ENABLE) & ENABLED, 0);
    assert!(r.refresh().is_empty(), "still the same text screen");
    assert_eq!((r.frame.width, r.frame.height), (720, 400));
    // 640×480×16 fits (600 KiB); then panning and pitch past VRAM are refused.
    r.dispi(INDEX_BPP, 16);
    r.dispi(INDEX_XRES, 640);
    r.dispi(INDEX_YRES, 480);
    r.dispi(INDEX_ENABLE, ENABLED | LFB_ENABLED);
    assert_eq!(r.dispi_read(INDEX_ENABLE) & ENABLED, ENABLED);
    r.dispi(INDEX_Y_OFFSET, 0xffff);
    assert_eq!(r.dispi_read(INDEX_Y_OFFSET), 0);
    r.dispi(INDEX_Y_OFFSET, 338); // (338 + 480) × 1280 = 1 047 040 ≤ 1 MiB: fits
    assert_eq!(r.dispi_read(INDEX_Y_OFFSET), 338);
    r.dispi(INDEX_Y_OFFSET, 340);
    assert_eq!(r.dispi_read(INDEX_Y_OFFSET), 338);
    r.dispi(INDEX_X_OFFSET, 1);
    assert_eq!(r.dispi_read(INDEX_X_OFFSET), 0, "x + xres > virtual width");
    r.dispi(INDEX_VIRT_WIDTH, 0xffff);
    assert_eq!(r.dispi_read(INDEX_VIRT_WIDTH), 640);
    r.dispi(INDEX_XRES, 2048); // 2048 × 480 × 2 = 1.9 MiB
    assert_eq!(r.dispi_read(INDEX_XRES), 640);
    r.dispi(INDEX_BPP, 32); // 640 × 480 × 4 = 1.2 MiB
    assert_eq!(r.dispi_read(INDEX_BPP), 16);
    r.dispi(0x55, 1);
    assert_eq!(r.dispi_read(0x55), 0);
    assert_eq!(r.refresh(), vec![Rect::full(640, 480)]);
}

/// xorshift64*, for reproducible garbage.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn garbage_on_every_port_and_window_never_panics() {
    let mut r = Rig::with_mib(1);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let ports: Vec<u64> = (0x3b0..0x3e0).chain(0x1ce..0x1d1).collect();
    for i in 0..60_000u32 {
        let v = rng.next();
        let width = [1usize, 2, 4][(v % 3) as usize];
        let mut data = vec![0u8; width];
        put_le_value(&mut data, v >> 8);
        match (v >> 40) % 8 {
            0..=3 => {
                let port = ports[((v >> 16) as usize) % ports.len()];
                r.pio.write(port, &data);
            }
            4 => {
                let port = ports[((v >> 16) as usize) % ports.len()];
                r.pio.read(port, &mut data);
            }
            5 => {
                // DISPI with values near the interesting edges.
                let index = ((v >> 16) % 12) as u16;
                let value = match (v >> 24) % 4 {
                    0 => (v >> 32) as u16,
                    1 => ((v >> 32) % 2600) as u16,
                    2 => 0xffff,
                    _ => (v >> 32) as u16 & 0x3f,
                };
                r.dispi(index, value);
            }
            6 => {
                let addr = VGA_WINDOW_BASE + (v >> 16) % VGA_WINDOW_LEN;
                let w = [1usize, 2, 4, 8][((v >> 12) % 4) as usize];
                let mut d = vec![0u8; w];
                if v & 1 == 0 {
                    r.mmio.write(addr, &d);
                } else {
                    r.mmio.read(addr, &mut d);
                }
            }
            _ => {
                let off = (v >> 16) % (2 << 20);
                if v & 1 == 0 {
                    r.lfb_write(off, &data);
                } else {
                    r.lfb_read(off, 8);
                }
            }
        }
        if i % 500 == 0 {
            r.clock.advance(50_000_000);
            let rects = r.refresh();
            assert!(r.frame.width <= crate::display::MAX_SIDE);
            assert!(r.frame.height <= crate::display::MAX_SIDE);
            assert_eq!(
                r.frame.pixels.len(),
                (r.frame.width * r.frame.height) as usize
            );
            for rect in rects {
                assert!(rect.x + rect.w <= r.frame.width && rect.y + rect.h <= r.frame.height);
            }
            let st = r.vga.snapshot();
            if st.vbe.enabled() {
                assert!(st.vbe.geometry(r.vga.vram_size()).is_some());
            }
        }
    }
}

#[test]
fn extreme_crtc_values_render_bounded_frames() {
    let mut r = Rig::new();
    r.set_mode(&MODE3);
    // Widest and tallest the registers allow, 1-line cells, start near the top of the address space.
    r.crtc(0x11, 0x00);
    r.crtc(0x01, 0xff);
    r.crtc(0x12, 0xff);
    r.crtc(0x07, 0x42);
    r.crtc(0x09, 0x00);
    r.crtc(0x0c, 0xff);
    r.crtc(0x0d, 0xff);
    r.crtc(0x13, 0xff);
    r.refresh();
    assert_eq!((r.frame.width, r.frame.height), (256 * 9, 1024));
    r.gr(6, 0x05);
    r.gr(5, 0x40);
    r.crtc(0x14, 0x40);
    r.refresh();
    assert_eq!((r.frame.width, r.frame.height), (1024, 1024));
    // Zero everything.
    for i in 0..25 {
        r.crtc(i, 0);
    }
    r.refresh();
    assert!(r.frame.width >= 1 && r.frame.height >= 1);
}

#[test]
fn snapshot_and_restore() {
    let mut r = Rig::new();
    r.set_mode(&MODE13);
    r.writeb(0xa0000 + 321, 77);
    r.dispi(INDEX_BANK, 3);
    r.refresh();
    let before = r.frame.clone();
    let state = r.vga.snapshot();
    let vram = r.vga.vram_contents();
    r.vga.reset();
    r.vga.load_vram(&vec![0; vram.len()]).unwrap();
    r.refresh();
    assert_ne!(r.frame, before);
    r.vga.restore(state.clone()).unwrap();
    r.vga.load_vram(&vram).unwrap();
    assert_eq!(r.refresh(), vec![Rect::full(320, 200)]);
    assert_eq!(r.frame, before);
    assert_eq!(r.vga.snapshot(), state);
    // Wrong sizes are refused; broken values are repaired.
    assert!(r.vga.load_vram(&[0; 10]).is_err());
    let mut other = state.clone();
    other.vram_size = 1 << 20;
    assert!(r.vga.restore(other).is_err());
    let mut bad = state;
    bad.regs.dac.palette.truncate(5);
    bad.regs.seq_index = 0xff;
    bad.vbe.enable = ENABLED;
    bad.vbe.xres = 0xffff;
    bad.vbe.bank = 0xffff;
    r.vga.restore(bad).unwrap();
    let fixed = r.vga.snapshot();
    assert_eq!(fixed.regs.dac.palette.len(), 768);
    assert_eq!(fixed.regs.seq_index, 7);
    assert!(!fixed.vbe.enabled());
    assert_eq!(fixed.vbe.bank, 0);
    r.refresh();
}

#[test]
fn pci_function_ids_bar0_and_rom() {
    let tb = PciTestbed::new();
    let vga = StdVga::new(16, tb.clock.clone()).unwrap();
    let rom: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let addr = PciAddress::new(0, 2, 0).unwrap();
    tb.root
        .add_with_rom(addr, vga.pci_function(), rom.clone())
        .unwrap();
    assert_eq!(tb.cfg_read(2, 0, 0x00, 4), 0x1111_1234);
    assert_eq!(tb.cfg_read(2, 0, 0x08, 4), 0x0300_0002);
    assert_eq!(tb.cfg_read(2, 0, 0x2c, 4), 0x1100_1af4);
    // BAR0: 16 MiB prefetchable memory; BAR2 absent.
    assert_eq!(tb.cfg_read(2, 0, 0x10, 4), 0x8);
    tb.cfg_write(2, 0, 0x10, 4, 0xffff_ffff);
    assert_eq!(tb.cfg_read(2, 0, 0x10, 4), 0xff00_0008);
    tb.cfg_write(2, 0, 0x18, 4, 0xffff_ffff);
    assert_eq!(tb.cfg_read(2, 0, 0x18, 4), 0);
    // Program as SeaBIOS does and reach VRAM.
    tb.cfg_write(2, 0, 0x10, 4, 0xfd00_0000);
    tb.cfg_write(2, 0, 0x30, 4, 0xfebf_0001);
    tb.cfg_write(2, 0, 0x04, 2, 0x0003);
    tb.mmio_write(0xfd00_1000, 4, 0xdead_beef);
    assert_eq!(tb.mmio_read(0xfd00_1000, 4), 0xdead_beef);
    assert_eq!(
        &vga.vram_contents()[0x1000..0x1004],
        &[0xef, 0xbe, 0xad, 0xde]
    );
    assert_eq!(tb.mmio_read(0xfdff_fff8, 8), 0);
    // The ROM is served by the root.
    assert_eq!(tb.mmio_read(0xfebf_0000 + 300, 1), u64::from(rom[300]));
    // A platform reset through the root resets the VGA registers.
    vga.lock().regs.misc = 0x67;
    tb.root.reset();
    assert_eq!(vga.snapshot().regs.misc, 0);
}

#[test]
fn external_dirty_marks_reach_the_renderer() {
    let mut r = Rig::new();
    r.dispi(INDEX_BPP, 32);
    r.dispi(INDEX_ENABLE, ENABLED | LFB_ENABLED);
    r.refresh();
    assert!(r.refresh().is_empty());
    // A mark over unchanged bytes makes the renderer look, and it reports nothing: the pixels are the same.
    r.vga.mark_vram_dirty(640 * 4 * 100, 4);
    assert!(r.refresh().is_empty());
    // Bytes changed behind the device's back (as a vCPU writes a mapped framebuffer) show once marked.
    r.vga
        .load_vram_range_for_test(640 * 4 * 100 + 7 * 4, &[0xff, 0, 0, 0]);
    assert!(r.refresh().is_empty(), "unmarked changes are not seen");
    r.vga.mark_vram_dirty(640 * 4 * 100, 640 * 4);
    assert_eq!(
        r.refresh(),
        vec![Rect {
            x: 7,
            y: 100,
            w: 1,
            h: 1
        }]
    );
}

#[test]
fn works_as_a_display_hub_source() {
    let r = Rig::new();
    r.set_mode(&MODE13);
    let hub = crate::display::DisplayHub::new(r.vga.clone(), "guest");
    let consumer = hub.subscribe();
    hub.refresh();
    let DisplayChanges { resized, rects, .. } = consumer.take();
    assert!(resized);
    assert!(rects.contains(&Rect::full(320, 200)));
    r.writeb(0xa0000 + 320 * 199 + 319, 42);
    hub.refresh();
    let DisplayChanges { resized, rects, .. } = consumer.take();
    assert!(!resized);
    assert_line_rect(&rects, 199, 320);
    let (rr, g, b) = test_dac(42);
    assert_eq!(hub.frame().pixels[320 * 199 + 319], rgb6(rr, g, b));
}
