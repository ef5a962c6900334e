//! RFB pixel formats and the conversion from the hub's `0x00RRGGBB` frame to what each client asked for.
//!
//! A client states its pixel format with SetPixelFormat (or keeps the one from ServerInit): bits per pixel
//! (8, 16 or 32), byte order, and for true colour a maximum and a shift per channel. A channel value is the
//! 8-bit intensity scaled to `0..=max` (rounded), shifted left by the channel's shift; the three are ORed and
//! written in `bits-per-pixel / 8` bytes in the client's byte order. Clients differ a lot here (noVNC uses red
//! at shift 0, Java viewers big-endian, "low colour" modes 8 bpp BGR233), and swapped channels are the most
//! common server bug, so the conversion is table-driven per client and tested per format.
//!
//! Colour-map formats (true-colour flag 0) are answered the way QEMU does: the server fixes a 256-entry BGR233
//! palette, sends it with SetColourMapEntries, and from then on sends palette indexes.
//!
//! ZRLE and Tight have compact pixel forms (`CPIXEL`, `TPIXEL`) that drop the unused byte of 32-bit pixels;
//! [`PixelWriter`] knows when they apply.

use thiserror::Error;

/// Why a client's pixel format was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PixelFormatError {
    /// Bits per pixel other than 8, 16 or 32.
    #[error("unsupported bits-per-pixel {0}")]
    BitsPerPixel(u8),
    /// A channel shift that puts the channel outside the pixel.
    #[error("channel shift {0} does not fit a {1}-bit pixel")]
    Shift(u8, u8),
}

/// An RFB PIXEL_FORMAT (16 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    /// 8, 16 or 32.
    pub bits_per_pixel: u8,
    /// Number of useful bits (informational).
    pub depth: u8,
    /// Multi-byte pixels are big-endian.
    pub big_endian: bool,
    /// True colour (channels with max and shift) rather than colour-map indexes.
    pub true_colour: bool,
    /// Largest red value.
    pub red_max: u16,
    /// Largest green value.
    pub green_max: u16,
    /// Largest blue value.
    pub blue_max: u16,
    /// Bit position of red.
    pub red_shift: u8,
    /// Bit position of green.
    pub green_shift: u8,
    /// Bit position of blue.
    pub blue_shift: u8,
}

impl PixelFormat {
    /// The server's own format, sent in ServerInit: 32 bpp, depth 24, little-endian, `0x00RRGGBB`. It is the
    /// hub's frame layout, so a client that keeps it gets pixels without channel arithmetic.
    pub const NATIVE: PixelFormat = PixelFormat {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        red_max: 255,
        green_max: 255,
        blue_max: 255,
        red_shift: 16,
        green_shift: 8,
        blue_shift: 0,
    };

    /// The fixed palette layout used for colour-map clients: index = `bbgggrrr`.
    pub const BGR233: PixelFormat = PixelFormat {
        bits_per_pixel: 8,
        depth: 8,
        big_endian: false,
        true_colour: true,
        red_max: 7,
        green_max: 7,
        blue_max: 3,
        red_shift: 0,
        green_shift: 3,
        blue_shift: 6,
    };

    /// Parses and validates the 16 wire bytes.
    pub fn from_bytes(b: &[u8; 16]) -> Result<PixelFormat, PixelFormatError> {
        let pf = PixelFormat {
            bits_per_pixel: b[0],
            depth: b[1],
            big_endian: b[2] != 0,
            true_colour: b[3] != 0,
            red_max: u16::from_be_bytes([b[4], b[5]]),
            green_max: u16::from_be_bytes([b[6], b[7]]),
            blue_max: u16::from_be_bytes([b[8], b[9]]),
            red_shift: b[10],
            green_shift: b[11],
            blue_shift: b[12],
        };
        pf.validate()?;
        Ok(pf)
    }

    /// Checks that the format can be produced.
    pub fn validate(&self) -> Result<(), PixelFormatError> {
        if !matches!(self.bits_per_pixel, 8 | 16 | 32) {
            return Err(PixelFormatError::BitsPerPixel(self.bits_per_pixel));
        }
        if self.true_colour {
            for s in [self.red_shift, self.green_shift, self.blue_shift] {
                if s >= self.bits_per_pixel {
                    return Err(PixelFormatError::Shift(s, self.bits_per_pixel));
                }
            }
        }
        Ok(())
    }

    /// The 16 wire bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.bits_per_pixel;
        b[1] = self.depth;
        b[2] = u8::from(self.big_endian);
        b[3] = u8::from(self.true_colour);
        b[4..6].copy_from_slice(&self.red_max.to_be_bytes());
        b[6..8].copy_from_slice(&self.green_max.to_be_bytes());
        b[8..10].copy_from_slice(&self.blue_max.to_be_bytes());
        b[10] = self.red_shift;
        b[11] = self.green_shift;
        b[12] = self.blue_shift;
        b
    }

    /// Bytes per pixel on the wire.
    pub fn bytes_per_pixel(&self) -> usize {
        usize::from(self.bits_per_pixel / 8)
    }
}

/// How ZRLE's `CPIXEL` relates to a full pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactPixel {
    /// Same as a PIXEL.
    Full,
    /// The three least significant bytes of a 32-bit pixel.
    Low3,
    /// The three most significant bytes of a 32-bit pixel.
    High3,
}

/// Scales 8-bit intensities to one client's format and writes the pixels in its byte order.
#[derive(Clone)]
pub struct PixelWriter {
    format: PixelFormat,
    red: [u32; 256],
    green: [u32; 256],
    blue: [u32; 256],
    cpixel: CompactPixel,
    tpixel_rgb: bool,
}

impl std::fmt::Debug for PixelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PixelWriter")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

fn channel_table(max: u16, shift: u8) -> [u32; 256] {
    let mut t = [0u32; 256];
    for (c, v) in t.iter_mut().enumerate() {
        let scaled = (c as u32 * u32::from(max) + 127) / 255;
        *v = scaled.checked_shl(u32::from(shift)).unwrap_or(0);
    }
    t
}

impl PixelWriter {
    /// A writer for `format` (which should have passed [`PixelFormat::validate`]; an invalid one writes native
    /// pixels).
    pub fn new(format: PixelFormat) -> PixelWriter {
        let format = if format.validate().is_ok() {
            format
        } else {
            PixelFormat::NATIVE
        };
        let effective = if format.true_colour {
            format
        } else {
            PixelFormat {
                bits_per_pixel: format.bits_per_pixel,
                big_endian: format.big_endian,
                ..PixelFormat::BGR233
            }
        };
        let cpixel = if format.true_colour && format.bits_per_pixel == 32 && format.depth <= 24 {
            let mask = (u64::from(format.red_max) << format.red_shift)
                | (u64::from(format.green_max) << format.green_shift)
                | (u64::from(format.blue_max) << format.blue_shift);
            if mask <= 0x00FF_FFFF {
                CompactPixel::Low3
            } else if mask & 0xFF == 0 && mask <= 0xFFFF_FFFF {
                CompactPixel::High3
            } else {
                CompactPixel::Full
            }
        } else {
            CompactPixel::Full
        };
        let tpixel_rgb = format.true_colour
            && format.bits_per_pixel == 32
            && format.depth == 24
            && format.red_max == 255
            && format.green_max == 255
            && format.blue_max == 255;
        PixelWriter {
            format,
            red: channel_table(effective.red_max, effective.red_shift),
            green: channel_table(effective.green_max, effective.green_shift),
            blue: channel_table(effective.blue_max, effective.blue_shift),
            cpixel,
            tpixel_rgb,
        }
    }

    /// The client's format.
    pub fn format(&self) -> &PixelFormat {
        &self.format
    }

    /// Bytes per PIXEL.
    pub fn bytes_per_pixel(&self) -> usize {
        self.format.bytes_per_pixel()
    }

    /// Bytes per ZRLE `CPIXEL`.
    pub fn bytes_per_cpixel(&self) -> usize {
        match self.cpixel {
            CompactPixel::Full => self.bytes_per_pixel(),
            _ => 3,
        }
    }

    /// The `CPIXEL` form for this format.
    pub fn compact_pixel(&self) -> CompactPixel {
        self.cpixel
    }

    /// Bytes per Tight `TPIXEL`.
    pub fn bytes_per_tpixel(&self) -> usize {
        if self.tpixel_rgb {
            3
        } else {
            self.bytes_per_pixel()
        }
    }

    /// The client pixel value of a `0x00RRGGBB` colour (a palette index for colour-map clients).
    #[inline]
    pub fn value(&self, rgb: u32) -> u32 {
        self.red[((rgb >> 16) & 0xFF) as usize]
            | self.green[((rgb >> 8) & 0xFF) as usize]
            | self.blue[(rgb & 0xFF) as usize]
    }

    /// Converts native pixels to client values.
    pub fn convert(&self, native: &[u32], out: &mut Vec<u32>) {
        out.clear();
        out.extend(native.iter().map(|&p| self.value(p)));
    }

    /// Appends one PIXEL.
    #[inline]
    pub fn put(&self, out: &mut Vec<u8>, v: u32) {
        match (self.format.bits_per_pixel, self.format.big_endian) {
            (8, _) => out.push(v as u8),
            (16, false) => out.extend_from_slice(&(v as u16).to_le_bytes()),
            (16, true) => out.extend_from_slice(&(v as u16).to_be_bytes()),
            (_, false) => out.extend_from_slice(&v.to_le_bytes()),
            (_, true) => out.extend_from_slice(&v.to_be_bytes()),
        }
    }

    /// Appends one ZRLE `CPIXEL`.
    #[inline]
    pub fn put_cpixel(&self, out: &mut Vec<u8>, v: u32) {
        let b = v.to_le_bytes();
        match (self.cpixel, self.format.big_endian) {
            (CompactPixel::Full, _) => self.put(out, v),
            (CompactPixel::Low3, false) => out.extend_from_slice(&[b[0], b[1], b[2]]),
            (CompactPixel::Low3, true) => out.extend_from_slice(&[b[2], b[1], b[0]]),
            (CompactPixel::High3, false) => out.extend_from_slice(&[b[1], b[2], b[3]]),
            (CompactPixel::High3, true) => out.extend_from_slice(&[b[3], b[2], b[1]]),
        }
    }

    /// Appends one Tight `TPIXEL`.
    #[inline]
    pub fn put_tpixel(&self, out: &mut Vec<u8>, v: u32) {
        if self.tpixel_rgb {
            let f = &self.format;
            out.extend_from_slice(&[
                (v >> f.red_shift) as u8,
                (v >> f.green_shift) as u8,
                (v >> f.blue_shift) as u8,
            ]);
        } else {
            self.put(out, v);
        }
    }
}

/// The SetColourMapEntries colours of the fixed BGR233 palette (index `bbgggrrr`), as 16-bit RGB.
pub fn bgr233_palette() -> Vec<[u16; 3]> {
    (0u32..256)
        .map(|i| {
            let r = (i & 7) * 65535 / 7;
            let g = ((i >> 3) & 7) * 65535 / 7;
            let b = ((i >> 6) & 3) * 65535 / 3;
            [r as u16, g as u16, b as u16]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(bpp: u8, depth: u8, be: bool, max: [u16; 3], shift: [u8; 3]) -> PixelFormat {
        PixelFormat {
            bits_per_pixel: bpp,
            depth,
            big_endian: be,
            true_colour: true,
            red_max: max[0],
            green_max: max[1],
            blue_max: max[2],
            red_shift: shift[0],
            green_shift: shift[1],
            blue_shift: shift[2],
        }
    }

    fn bytes(w: &PixelWriter, rgb: u32) -> Vec<u8> {
        let mut out = Vec::new();
        w.put(&mut out, w.value(rgb));
        out
    }

    #[test]
    fn native_is_little_endian_xrgb() {
        let w = PixelWriter::new(PixelFormat::NATIVE);
        assert_eq!(bytes(&w, 0x0012_3456), [0x56, 0x34, 0x12, 0]);
        assert_eq!(w.bytes_per_cpixel(), 3);
        assert_eq!(w.compact_pixel(), CompactPixel::Low3);
        assert_eq!(w.bytes_per_tpixel(), 3);
        let mut t = Vec::new();
        w.put_tpixel(&mut t, w.value(0x0012_3456));
        assert_eq!(
            t,
            [0x12, 0x34, 0x56],
            "TPIXEL is R, G, B whatever the shifts"
        );
    }

    #[test]
    fn rgbx_as_novnc_asks_keeps_red_first() {
        let w = PixelWriter::new(fmt(32, 24, false, [255; 3], [0, 8, 16]));
        assert_eq!(bytes(&w, 0x00FF_0000), [0xFF, 0, 0, 0]);
        assert_eq!(bytes(&w, 0x0000_00FF), [0, 0, 0xFF, 0]);
    }

    #[test]
    fn big_endian_32_and_high_cpixel() {
        let w = PixelWriter::new(fmt(32, 24, true, [255; 3], [24, 16, 8]));
        assert_eq!(bytes(&w, 0x0011_2233), [0x11, 0x22, 0x33, 0]);
        assert_eq!(w.compact_pixel(), CompactPixel::High3);
        let mut c = Vec::new();
        w.put_cpixel(&mut c, w.value(0x0011_2233));
        assert_eq!(c, [0x11, 0x22, 0x33]);
        let le = PixelWriter::new(fmt(32, 24, false, [255; 3], [24, 16, 8]));
        let mut c = Vec::new();
        le.put_cpixel(&mut c, le.value(0x0011_2233));
        assert_eq!(c, [0x33, 0x22, 0x11]);
    }

    #[test]
    fn rgb565_both_byte_orders() {
        let le = PixelWriter::new(fmt(16, 16, false, [31, 63, 31], [11, 5, 0]));
        assert_eq!(le.value(0x00FF_FFFF), 0xFFFF);
        assert_eq!(le.value(0x00FF_0000), 0xF800);
        assert_eq!(bytes(&le, 0x00FF_0000), [0x00, 0xF8]);
        let be = PixelWriter::new(fmt(16, 16, true, [31, 63, 31], [11, 5, 0]));
        assert_eq!(bytes(&be, 0x00FF_0000), [0xF8, 0x00]);
        assert_eq!(be.bytes_per_cpixel(), 2);
        assert_eq!(be.bytes_per_tpixel(), 2);
        // Mid-grey rounds to the nearest step.
        assert_eq!(le.value(0x0080_8080), (16 << 11) | (32 << 5) | 16);
    }

    #[test]
    fn bgr233_and_colour_map() {
        let w = PixelWriter::new(PixelFormat::BGR233);
        assert_eq!(bytes(&w, 0x00FF_0000), [0x07]);
        assert_eq!(bytes(&w, 0x0000_FF00), [0x38]);
        assert_eq!(bytes(&w, 0x0000_00FF), [0xC0]);
        let map = PixelFormat {
            true_colour: false,
            ..fmt(8, 8, false, [0; 3], [0; 3])
        };
        let w = PixelWriter::new(map);
        assert_eq!(w.value(0x00FF_FFFF), 0xFF);
        let pal = bgr233_palette();
        assert_eq!(pal.len(), 256);
        assert_eq!(pal[0xFF], [65535; 3]);
        assert_eq!(pal[0x07], [65535, 0, 0]);
    }

    #[test]
    fn validation_rejects_impossible_formats() {
        let mut b = PixelFormat::NATIVE.to_bytes();
        assert_eq!(PixelFormat::from_bytes(&b), Ok(PixelFormat::NATIVE));
        b[0] = 24;
        assert_eq!(
            PixelFormat::from_bytes(&b),
            Err(PixelFormatError::BitsPerPixel(24))
        );
        let mut b = PixelFormat::NATIVE.to_bytes();
        b[10] = 40;
        assert!(matches!(
            PixelFormat::from_bytes(&b),
            Err(PixelFormatError::Shift(40, 32))
        ));
        // Huge maxes and top shifts do not overflow.
        let w = PixelWriter::new(fmt(32, 32, false, [65535; 3], [31, 31, 31]));
        let _ = w.value(0x00FF_FFFF);
        let w = PixelWriter::new(fmt(8, 8, false, [65535; 3], [7, 0, 3]));
        let _ = bytes(&w, 0x00FF_FFFF);
    }
}
