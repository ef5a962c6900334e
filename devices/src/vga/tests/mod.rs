//! Tests of the standard VGA, driven through the buses the way SeaVGABIOS, Linux `vgacon` and
//! `bochs-drm` drive it. Golden pictures are drawn by the tests themselves from the same font and
//! palette bytes they load into the device.

mod graphics;
mod mapped;
mod regs;
mod robust;
mod text;
mod vbe;

use std::sync::Arc;

use super::*;
use crate::bus::{Access, Bus};
use crate::clock::FakeClock;
use crate::display::{Frame, Rect};

/// The standard register set of one BIOS mode.
pub struct ModeRegs {
    pub misc: u8,
    pub seq: [u8; 5],
    pub crtc: [u8; 25],
    pub attr: [u8; 21],
    pub gc: [u8; 9],
}

/// Mode 3: 80×25 text, 9×16 cells, 720×400.
pub const MODE3: ModeRegs = ModeRegs {
    misc: 0x67,
    seq: [0x03, 0x00, 0x03, 0x00, 0x02],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00,
        0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
    ],
    attr: [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e,
        0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00,
    ],
    gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff],
};

/// Mode 12h: 640×480, 16 colours, planar.
pub const MODE12: ModeRegs = ModeRegs {
    misc: 0xe3,
    seq: [0x03, 0x01, 0x0f, 0x00, 0x06],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff,
    ],
    attr: [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e,
        0x3f, 0x01, 0x00, 0x0f, 0x00, 0x00,
    ],
    gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff],
};

/// Mode 13h: 320×200, 256 colours, chain-4.
pub const MODE13: ModeRegs = ModeRegs {
    misc: 0x63,
    seq: [0x03, 0x01, 0x0f, 0x00, 0x0e],
    crtc: [
        0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff,
    ],
    attr: [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f, 0x41, 0x00, 0x0f, 0x00, 0x00,
    ],
    gc: [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff],
};

/// `rects` is the one rectangle of a change on line `y`: full width, covering `y`, at most two lines
/// (a dirty block can straddle a line boundary).
pub fn assert_line_rect(rects: &[Rect], y: u32, width: u32) {
    assert_eq!(rects.len(), 1, "{rects:?}");
    let r = rects[0];
    assert_eq!((r.x, r.w), (0, width), "{r:?}");
    assert!(r.y <= y && y < r.y + r.h && r.h <= 2, "{r:?} for line {y}");
}

/// A 6-bit DAC value as the renderer shows it.
pub fn rgb6(r: u8, g: u8, b: u8) -> u32 {
    let s = |v: u8| {
        let v = u32::from(v & 0x3f);
        (v << 2) | (v >> 4)
    };
    (s(r) << 16) | (s(g) << 8) | s(b)
}

/// The DAC entry the tests program at index `i`.
pub fn test_dac(i: u8) -> (u8, u8, u8) {
    (i & 0x3f, i.wrapping_mul(3) & 0x3f, 63 - (i & 0x3f))
}

/// A VGA on its own port and MMIO buses, with a fake clock and a frame.
pub struct Rig {
    pub vga: Arc<StdVga>,
    pub pio: Bus,
    pub mmio: Bus,
    pub clock: Arc<FakeClock>,
    pub frame: Frame,
}

impl Rig {
    pub fn new() -> Rig {
        Self::with_mib(16)
    }

    pub fn with_mib(mib: u32) -> Rig {
        let clock = Arc::new(FakeClock::new());
        let vga = StdVga::new(mib, clock.clone()).unwrap();
        let pio = Bus::new("pio");
        for r in vga.legacy_ports() {
            pio.insert(r.base, r.len, r.max_width, r.device).unwrap();
        }
        let mmio = Bus::new("mmio");
        mmio.insert(
            VGA_WINDOW_BASE,
            VGA_WINDOW_LEN,
            VGA_WINDOW_MAX_WIDTH,
            vga.vga_window(),
        )
        .unwrap();
        Rig {
            vga,
            pio,
            mmio,
            clock,
            frame: Frame::new(640, 480),
        }
    }

    pub fn outb(&self, port: u16, v: u8) {
        assert_eq!(self.pio.write(u64::from(port), &[v]), Access::Handled);
    }
    pub fn outw(&self, port: u16, v: u16) {
        assert_eq!(
            self.pio.write(u64::from(port), &v.to_le_bytes()),
            Access::Handled
        );
    }
    pub fn inb(&self, port: u16) -> u8 {
        let mut b = [0u8];
        self.pio.read(u64::from(port), &mut b);
        b[0]
    }
    pub fn inw(&self, port: u16) -> u16 {
        let mut b = [0u8; 2];
        self.pio.read(u64::from(port), &mut b);
        u16::from_le_bytes(b)
    }
    pub fn writeb(&self, addr: u64, v: u8) {
        assert_eq!(self.mmio.write(addr, &[v]), Access::Handled);
    }
    pub fn readb(&self, addr: u64) -> u8 {
        let mut b = [0u8];
        self.mmio.read(addr, &mut b);
        b[0]
    }

    pub fn seq(&self, i: u8, v: u8) {
        self.outw(0x3c4, u16::from(i) | (u16::from(v) << 8));
    }
    pub fn gr(&self, i: u8, v: u8) {
        self.outw(0x3ce, u16::from(i) | (u16::from(v) << 8));
    }
    pub fn crtc(&self, i: u8, v: u8) {
        self.outw(0x3d4, u16::from(i) | (u16::from(v) << 8));
    }
    pub fn crtc_read(&self, i: u8) -> u8 {
        self.outb(0x3d4, i);
        self.inb(0x3d5)
    }
    /// An attribute register, then the display re-enabled (PAS), as drivers do.
    pub fn attr(&self, i: u8, v: u8) {
        self.inb(0x3da);
        self.outb(0x3c0, i);
        self.outb(0x3c0, v);
        self.outb(0x3c0, 0x20);
    }
    pub fn dac(&self, index: u8, rgb: (u8, u8, u8)) {
        self.outb(0x3c8, index);
        self.outb(0x3c9, rgb.0);
        self.outb(0x3c9, rgb.1);
        self.outb(0x3c9, rgb.2);
    }
    pub fn dispi(&self, index: u16, v: u16) {
        self.outw(0x1ce, index);
        self.outw(0x1cf, v);
    }
    pub fn dispi_read(&self, index: u16) -> u16 {
        self.outw(0x1ce, index);
        self.inw(0x1cf)
    }

    /// Programs a standard mode the way a VGA BIOS does, and loads the test palette into the DAC.
    pub fn set_mode(&self, m: &ModeRegs) {
        self.inb(0x3da);
        self.outb(0x3c0, 0x00); // PAS off while programming
        self.outb(0x3c2, m.misc);
        for (i, &v) in m.seq.iter().enumerate() {
            self.seq(i as u8, v);
        }
        self.crtc(0x11, 0x00); // unprotect CR0-7
        for (i, &v) in m.crtc.iter().enumerate() {
            self.crtc(i as u8, v);
        }
        self.inb(0x3da);
        for (i, &v) in m.attr.iter().enumerate() {
            self.outb(0x3c0, i as u8);
            self.outb(0x3c0, v);
        }
        for (i, &v) in m.gc.iter().enumerate() {
            self.gr(i as u8, v);
        }
        for i in 0..=255u8 {
            self.dac(i, test_dac(i));
        }
        self.inb(0x3da);
        self.outb(0x3c0, 0x20);
    }

    pub fn refresh(&mut self) -> Vec<Rect> {
        self.vga.refresh(&mut self.frame)
    }

    pub fn pixel(&self, x: u32, y: u32) -> u32 {
        self.frame.pixels[(y * self.frame.width + x) as usize]
    }

    pub fn lfb_write(&self, offset: u64, data: &[u8]) {
        let f = self.vga.pci_function();
        f.lock().unwrap().bar_write(RegionId::Bar(0), offset, data);
    }

    pub fn lfb_read(&self, offset: u64, len: usize) -> Vec<u8> {
        let f = self.vga.pci_function();
        let mut d = vec![0; len];
        f.lock().unwrap().bar_read(RegionId::Bar(0), offset, &mut d);
        d
    }
}
