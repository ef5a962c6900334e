//! Tight encoding (without JPEG).
//!
//! Each Tight rectangle starts with a compression-control byte. Its low four bits ask the client to reset zlib
//! streams 0–3 (this encoder never needs to); the high bits pick the method:
//!
//! - `0x80` **fill**: one `TPIXEL` paints the whole rectangle;
//! - basic compression `0b0Fss_0000`: stream `ss`, and with `F` a filter byte follows: 0 copy (plain
//!   `TPIXEL`s), 1 palette (a count-1 byte and `TPIXEL`s, then 1-bit rows padded to bytes for two colours or
//!   one index byte per pixel otherwise).
//!
//! The filtered data goes through the chosen zlib stream and is sent as a compact length (1–3 bytes, 7 bits
//! per byte, low bits first) plus the compressed bytes, except that data shorter than 12 bytes is sent as it
//! is. Like TightVNC, full colour uses stream 0, two-colour data stream 1 and indexed data stream 2, so each
//! stream sees data of one kind. `TPIXEL` is 3 bytes (R, G, B) for 32-bpp depth-24 formats with 8-bit
//! channels, else a full PIXEL.
//!
//! Tight rectangles may be at most 2048 pixels wide, and the compact length caps one piece's data, so the
//! caller splits rectangles with [`split`] first.

use std::collections::HashMap;

use flate2::{Compress, Compression};

use super::{deflate_sync, EncodeError};
use crate::pixel::PixelWriter;

/// Widest Tight rectangle.
pub const MAX_WIDTH: usize = 2048;
/// Most pixels in one Tight rectangle (as TightVNC), keeping data far below the 4 MiB compact-length limit.
pub const MAX_AREA: usize = 65536;
/// Data shorter than this is sent uncompressed.
const MIN_TO_COMPRESS: usize = 12;
/// Largest palette used; more colours go full colour.
const MAX_PALETTE: usize = 64;

/// Splits a `w` × `h` rectangle at (`x`, `y`) into pieces Tight can carry: (x, y, w, h) each.
pub fn split(x: usize, y: usize, w: usize, h: usize) -> Vec<(usize, usize, usize, usize)> {
    let mut pieces = Vec::new();
    if w == 0 || h == 0 {
        return pieces;
    }
    let pw = w.min(MAX_WIDTH);
    let ph = (MAX_AREA / pw).max(1);
    for py in (0..h).step_by(ph) {
        for px in (0..w).step_by(pw) {
            pieces.push((x + px, y + py, pw.min(w - px), ph.min(h - py)));
        }
    }
    pieces
}

/// The per-connection Tight state: four zlib streams.
pub struct TightEncoder {
    streams: [Compress; 4],
    buf: Vec<u8>,
}

impl std::fmt::Debug for TightEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TightEncoder").finish_non_exhaustive()
    }
}

fn put_compact_len(out: &mut Vec<u8>, len: usize) {
    let len = len as u32;
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x4000 {
        out.push((len & 0x7F) as u8 | 0x80);
        out.push((len >> 7) as u8);
    } else {
        out.push((len & 0x7F) as u8 | 0x80);
        out.push(((len >> 7) & 0x7F) as u8 | 0x80);
        out.push((len >> 14) as u8);
    }
}

impl TightEncoder {
    /// Fresh streams at zlib `level` (0–9).
    pub fn new(level: u32) -> TightEncoder {
        let level = Compression::new(level.min(9));
        TightEncoder {
            streams: std::array::from_fn(|_| Compress::new(level, true)),
            buf: Vec::new(),
        }
    }

    /// Appends one Tight rectangle of `values` (`width` × `height` client pixels; at most [`MAX_WIDTH`] wide
    /// and [`MAX_AREA`] pixels, see [`split`]).
    pub fn encode(
        &mut self,
        values: &[u32],
        width: usize,
        height: usize,
        pw: &PixelWriter,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        debug_assert!(width <= MAX_WIDTH && width * height <= MAX_AREA);
        let Some(&first) = values.first() else {
            // An empty rectangle: a fill of black.
            out.push(0x80);
            pw.put_tpixel(out, 0);
            return Ok(());
        };
        let mut palette: Vec<u32> = Vec::new();
        let mut index: HashMap<u32, u8> = HashMap::new();
        let mut prev = None;
        for &p in values {
            if prev == Some(p) {
                continue;
            }
            prev = Some(p);
            if let std::collections::hash_map::Entry::Vacant(e) = index.entry(p) {
                if palette.len() == MAX_PALETTE {
                    palette.clear();
                    break;
                }
                e.insert(palette.len() as u8);
                palette.push(p);
            }
        }
        self.buf.clear();
        let stream = match palette.len() {
            1 => {
                out.push(0x80);
                pw.put_tpixel(out, first);
                return Ok(());
            }
            2 => {
                out.extend_from_slice(&[0x40 | 0x10, 1, 1]);
                for &c in &palette {
                    pw.put_tpixel(out, c);
                }
                for row in values.chunks_exact(width) {
                    let mut byte = 0u8;
                    let mut used = 0;
                    for p in row {
                        byte = (byte << 1) | u8::from(*p == palette[1]);
                        used += 1;
                        if used == 8 {
                            self.buf.push(byte);
                            byte = 0;
                            used = 0;
                        }
                    }
                    if used > 0 {
                        self.buf.push(byte << (8 - used));
                    }
                }
                1
            }
            n if n > 2 && n * 4 < values.len() => {
                out.extend_from_slice(&[0x40 | 0x20, 1, (n - 1) as u8]);
                for &c in &palette {
                    pw.put_tpixel(out, c);
                }
                for p in values {
                    self.buf.push(index.get(p).copied().unwrap_or(0));
                }
                2
            }
            _ => {
                out.push(0x00);
                for &p in values {
                    pw.put_tpixel(&mut self.buf, p);
                }
                0
            }
        };
        if self.buf.len() < MIN_TO_COMPRESS {
            out.extend_from_slice(&self.buf);
        } else {
            let mut z = Vec::new();
            deflate_sync(&mut self.streams[stream], &self.buf, &mut z)?;
            put_compact_len(out, z.len());
            out.extend_from_slice(&z);
        }
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_lengths() {
        let enc = |n| {
            let mut v = Vec::new();
            put_compact_len(&mut v, n);
            v
        };
        assert_eq!(enc(10), [10]);
        assert_eq!(enc(127), [127]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(10000), [0x90, 0x4E]);
        assert_eq!(enc(16384), [0x80, 0x80, 0x01]);
        assert_eq!(enc(4_194_303), [0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn split_respects_the_limits() {
        let pieces = split(10, 20, 4096, 300);
        let area: usize = pieces.iter().map(|p| p.2 * p.3).sum();
        assert_eq!(area, 4096 * 300);
        for p in &pieces {
            assert!(p.2 <= MAX_WIDTH && p.2 * p.3 <= MAX_AREA, "{p:?}");
            assert!(p.0 >= 10 && p.0 + p.2 <= 4106 && p.1 >= 20 && p.1 + p.3 <= 320);
        }
        assert!(split(0, 0, 0, 5).is_empty());
        assert_eq!(split(0, 0, 1, 1), vec![(0, 0, 1, 1)]);
    }
}
