//! ZRLE encoding.
//!
//! The rectangle is cut into 64×64 tiles; each tile is one of: raw `CPIXEL`s (0), a single colour (1), a
//! packed palette of 2–16 colours with 1, 2 or 4-bit indexes per pixel, rows padded to bytes (2–16), plain
//! run-length (128: pixel + length), or palette run-length (130–255: index, with the top bit set when a length
//! follows). Run lengths are `len - 1` written as 255s plus a final byte below 255; runs cross rows. All tiles
//! of a rectangle go through the connection's single zlib stream, and the rectangle is a `u32` length plus the
//! compressed bytes. The encoder computes the size of each applicable form and writes the smallest.

use std::collections::HashMap;

use flate2::{Compress, Compression};

use super::{deflate_sync, EncodeError};
use crate::pixel::PixelWriter;

/// The per-connection ZRLE state: one zlib stream.
pub struct ZrleEncoder {
    z: Compress,
    buf: Vec<u8>,
}

impl std::fmt::Debug for ZrleEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZrleEncoder").finish_non_exhaustive()
    }
}

impl ZrleEncoder {
    /// A fresh stream at zlib `level` (0–9).
    pub fn new(level: u32) -> ZrleEncoder {
        ZrleEncoder {
            z: Compress::new(Compression::new(level.min(9)), true),
            buf: Vec::new(),
        }
    }

    /// Appends `values` (`width` × `height` client pixels) in ZRLE.
    pub fn encode(
        &mut self,
        values: &[u32],
        width: usize,
        height: usize,
        pw: &PixelWriter,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.buf.clear();
        let mut tile = Vec::with_capacity(64 * 64);
        for ty in (0..height).step_by(64) {
            let th = (height - ty).min(64);
            for tx in (0..width).step_by(64) {
                let tw = (width - tx).min(64);
                tile.clear();
                for row in 0..th {
                    let start = (ty + row) * width + tx;
                    tile.extend_from_slice(&values[start..start + tw]);
                }
                encode_tile(&tile, tw, th, pw, &mut self.buf);
            }
        }
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        deflate_sync(&mut self.z, &self.buf, out)?;
        let len = (out.len() - len_at - 4) as u32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        // Do not keep a huge buffer around after a full-screen update.
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }
}

fn run_bytes(len: usize) -> usize {
    (len - 1) / 255 + 1
}

fn put_run(out: &mut Vec<u8>, len: usize) {
    let mut n = len - 1;
    while n >= 255 {
        out.push(255);
        n -= 255;
    }
    out.push(n as u8);
}

fn encode_tile(px: &[u32], tw: usize, th: usize, pw: &PixelWriter, out: &mut Vec<u8>) {
    let cp = pw.bytes_per_cpixel();
    // Runs and palette (up to 127 colours, then give up on palettes).
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for &p in px {
        match runs.last_mut() {
            Some((c, n)) if *c == p => *n += 1,
            _ => runs.push((p, 1)),
        }
    }
    let mut palette: Vec<u32> = Vec::new();
    let mut index: HashMap<u32, u8> = HashMap::new();
    for &(c, _) in &runs {
        if palette.len() > 127 {
            break;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = index.entry(c) {
            e.insert(palette.len() as u8);
            palette.push(c);
        }
    }
    if palette.len() == 1 {
        out.push(1);
        pw.put_cpixel(out, palette[0]);
        return;
    }
    let raw = px.len() * cp;
    let plain_rle: usize = runs.iter().map(|&(_, n)| cp + run_bytes(n)).sum();
    let n = palette.len();
    let palette_rle = (n <= 127).then(|| {
        n * cp
            + runs
                .iter()
                .map(|&(_, len)| if len == 1 { 1 } else { 1 + run_bytes(len) })
                .sum::<usize>()
    });
    let bits = match n {
        2 => 1,
        3..=4 => 2,
        5..=16 => 4,
        _ => 0,
    };
    let packed = (bits > 0).then(|| n * cp + (tw * bits).div_ceil(8) * th);
    let best = [Some(raw), Some(plain_rle), palette_rle, packed]
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (s, i)))
        .min()
        .map_or(0, |(_, i)| i);
    match best {
        1 => {
            out.push(128);
            for &(c, len) in &runs {
                pw.put_cpixel(out, c);
                put_run(out, len);
            }
        }
        2 => {
            out.push(128 + n as u8);
            for &c in &palette {
                pw.put_cpixel(out, c);
            }
            for &(c, len) in &runs {
                let i = index.get(&c).copied().unwrap_or(0);
                if len == 1 {
                    out.push(i);
                } else {
                    out.push(i | 128);
                    put_run(out, len);
                }
            }
        }
        3 => {
            out.push(n as u8);
            for &c in &palette {
                pw.put_cpixel(out, c);
            }
            for row in px.chunks_exact(tw) {
                let mut byte = 0u8;
                let mut used = 0;
                for p in row {
                    let i = index.get(p).copied().unwrap_or(0);
                    byte = (byte << bits) | i;
                    used += bits;
                    if used == 8 {
                        out.push(byte);
                        byte = 0;
                        used = 0;
                    }
                }
                if used > 0 {
                    out.push(byte << (8 - used));
                }
            }
        }
        _ => {
            out.push(0);
            for &p in px {
                pw.put_cpixel(out, p);
            }
        }
    }
}
