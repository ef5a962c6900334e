//! Independent decoders for the encodings the server sends, written from the RFB specification (not from the
//! server's encoders), producing client pixel values.

use std::io::{self, Read};

use flate2::{Decompress, FlushDecompress};
use vnc::PixelFormat;

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_n(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut v = vec![0; n];
    r.read_exact(&mut v)?;
    Ok(v)
}

fn u8_(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

/// The client value the server should send for `rgb` in `f`: each channel `round(c * max / 255) << shift`,
/// or a BGR233 index for colour-map formats.
pub fn expected_value(f: &PixelFormat, rgb: u32) -> u32 {
    let ch = |c: u32, max: u32, shift: u32| ((c * max + 127) / 255).checked_shl(shift).unwrap_or(0);
    let (r, g, b) = ((rgb >> 16) & 0xFF, (rgb >> 8) & 0xFF, rgb & 0xFF);
    let v = if f.true_colour {
        ch(r, f.red_max.into(), f.red_shift.into())
            | ch(g, f.green_max.into(), f.green_shift.into())
            | ch(b, f.blue_max.into(), f.blue_shift.into())
    } else {
        ch(r, 7, 0) | ch(g, 7, 3) | ch(b, 3, 6)
    };
    match f.bits_per_pixel {
        8 => v & 0xFF,
        16 => v & 0xFFFF,
        _ => v,
    }
}

/// Reads one PIXEL.
pub fn pixel(f: &PixelFormat, b: &[u8]) -> u32 {
    match (f.bits_per_pixel, f.big_endian) {
        (8, _) => u32::from(b[0]),
        (16, false) => u32::from(u16::from_le_bytes([b[0], b[1]])),
        (16, true) => u32::from(u16::from_be_bytes([b[0], b[1]])),
        (_, false) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        (_, true) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
    }
}

fn cpixel_len(f: &PixelFormat) -> (usize, u8) {
    // 0 = full, 1 = low 3 bytes, 2 = high 3 bytes
    if f.true_colour && f.bits_per_pixel == 32 && f.depth <= 24 {
        let m = (u64::from(f.red_max) << f.red_shift)
            | (u64::from(f.green_max) << f.green_shift)
            | (u64::from(f.blue_max) << f.blue_shift);
        if m < (1 << 24) {
            return (3, 1);
        }
        if m & 0xFF == 0 {
            return (3, 2);
        }
    }
    (f.bits_per_pixel as usize / 8, 0)
}

fn cpixel(f: &PixelFormat, b: &[u8]) -> u32 {
    let (b0, b1, b2) = (
        u32::from(b[0]),
        u32::from(b.get(1).copied().unwrap_or(0)),
        u32::from(b.get(2).copied().unwrap_or(0)),
    );
    match (cpixel_len(f).1, f.big_endian) {
        (0, _) => pixel(f, b),
        (1, false) => b0 | b1 << 8 | b2 << 16,
        (1, true) => b0 << 16 | b1 << 8 | b2,
        (_, false) => b0 << 8 | b1 << 16 | b2 << 24,
        (_, true) => b0 << 24 | b1 << 16 | b2 << 8,
    }
}

fn tpixel_rgb(f: &PixelFormat) -> bool {
    f.true_colour
        && f.bits_per_pixel == 32
        && f.depth == 24
        && f.red_max == 255
        && f.green_max == 255
        && f.blue_max == 255
}

fn tpixel_len(f: &PixelFormat) -> usize {
    if tpixel_rgb(f) {
        3
    } else {
        f.bits_per_pixel as usize / 8
    }
}

fn tpixel(f: &PixelFormat, b: &[u8]) -> u32 {
    if tpixel_rgb(f) {
        u32::from(b[0]) << f.red_shift
            | u32::from(b[1]) << f.green_shift
            | u32::from(b[2]) << f.blue_shift
    } else {
        pixel(f, b)
    }
}

fn inflate(d: &mut Decompress, input: &[u8], expect: Option<usize>) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(expect.unwrap_or(input.len() * 4) + 64);
    let mut consumed = 0;
    loop {
        let before = d.total_in();
        let out_before = out.len();
        d.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            .map_err(|e| bad(&format!("inflate: {e}")))?;
        consumed += (d.total_in() - before) as usize;
        if consumed == input.len() && out.len() < out.capacity() {
            break;
        }
        if consumed < input.len() && out.len() == out_before && out.len() < out.capacity() {
            return Err(bad("inflate stalled"));
        }
        out.reserve(64 * 1024);
    }
    if let Some(n) = expect {
        if out.len() != n {
            return Err(bad(&format!("inflated {} bytes, expected {n}", out.len())));
        }
    }
    Ok(out)
}

/// Per-connection decoder state: the ZRLE stream and Tight's four.
pub struct Decoder {
    /// The client's pixel format.
    pub format: PixelFormat,
    zrle: Decompress,
    tight: [Decompress; 4],
}

impl Decoder {
    pub fn new(format: PixelFormat) -> Decoder {
        Decoder {
            format,
            zrle: Decompress::new(true),
            tight: std::array::from_fn(|_| Decompress::new(true)),
        }
    }

    /// Decodes one rectangle body of `encoding` into `w * h` client values.
    pub fn decode(
        &mut self,
        encoding: i32,
        w: usize,
        h: usize,
        r: &mut impl Read,
    ) -> io::Result<Vec<u32>> {
        match encoding {
            0 => self.raw(w, h, r),
            5 => self.hextile(w, h, r),
            16 => self.zrle(w, h, r),
            7 => self.tight(w, h, r),
            e => Err(bad(&format!("unexpected encoding {e}"))),
        }
    }

    fn raw(&self, w: usize, h: usize, r: &mut impl Read) -> io::Result<Vec<u32>> {
        let bpp = self.format.bits_per_pixel as usize / 8;
        let data = read_n(r, w * h * bpp)?;
        Ok(data
            .chunks_exact(bpp)
            .map(|c| pixel(&self.format, c))
            .collect())
    }

    fn hextile(&self, w: usize, h: usize, r: &mut impl Read) -> io::Result<Vec<u32>> {
        let f = self.format;
        let bpp = f.bits_per_pixel as usize / 8;
        let mut out = vec![0u32; w * h];
        let (mut bg, mut fg): (Option<u32>, Option<u32>) = (None, None);
        for ty in (0..h).step_by(16) {
            for tx in (0..w).step_by(16) {
                let (tw, th) = ((w - tx).min(16), (h - ty).min(16));
                let mask = u8_(r)?;
                if mask & 1 != 0 {
                    let data = read_n(r, tw * th * bpp)?;
                    for (i, c) in data.chunks_exact(bpp).enumerate() {
                        out[(ty + i / tw) * w + tx + i % tw] = pixel(&f, c);
                    }
                    bg = None;
                    fg = None;
                    continue;
                }
                if mask & 2 != 0 {
                    bg = Some(pixel(&f, &read_n(r, bpp)?));
                }
                let b = bg.ok_or_else(|| bad("hextile: background not specified"))?;
                for y in 0..th {
                    for x in 0..tw {
                        out[(ty + y) * w + tx + x] = b;
                    }
                }
                if mask & 4 != 0 {
                    if mask & 16 != 0 {
                        return Err(bad("hextile: foreground and coloured subrects"));
                    }
                    fg = Some(pixel(&f, &read_n(r, bpp)?));
                }
                if mask & 8 != 0 {
                    let n = u8_(r)?;
                    for _ in 0..n {
                        let c = if mask & 16 != 0 {
                            pixel(&f, &read_n(r, bpp)?)
                        } else {
                            fg.ok_or_else(|| bad("hextile: foreground not specified"))?
                        };
                        let xy = u8_(r)?;
                        let wh = u8_(r)?;
                        let (sx, sy) = ((xy >> 4) as usize, (xy & 15) as usize);
                        let (sw, sh) = ((wh >> 4) as usize + 1, (wh & 15) as usize + 1);
                        if sx + sw > tw || sy + sh > th {
                            return Err(bad("hextile: subrect outside the tile"));
                        }
                        for y in sy..sy + sh {
                            for x in sx..sx + sw {
                                out[(ty + y) * w + tx + x] = c;
                            }
                        }
                    }
                }
                if mask & 16 != 0 {
                    fg = None;
                }
            }
        }
        Ok(out)
    }

    fn zrle(&mut self, w: usize, h: usize, r: &mut impl Read) -> io::Result<Vec<u32>> {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let data = read_n(r, u32::from_be_bytes(len) as usize)?;
        let plain = inflate(&mut self.zrle, &data, None)?;
        let f = self.format;
        let (cp, _) = cpixel_len(&f);
        let mut p = &plain[..];
        let mut out = vec![0u32; w * h];
        let take = |p: &mut &[u8], n: usize| -> io::Result<Vec<u8>> {
            if p.len() < n {
                return Err(bad("zrle: tile data truncated"));
            }
            let (a, b) = p.split_at(n);
            *p = b;
            Ok(a.to_vec())
        };
        let run_len = |p: &mut &[u8]| -> io::Result<usize> {
            let mut n = 1;
            loop {
                let b = take(p, 1)?[0];
                n += b as usize;
                if b != 255 {
                    return Ok(n);
                }
            }
        };
        for ty in (0..h).step_by(64) {
            for tx in (0..w).step_by(64) {
                let (tw, th) = ((w - tx).min(64), (h - ty).min(64));
                let mut tile = Vec::with_capacity(tw * th);
                let sub = take(&mut p, 1)?[0];
                let palette_size = (sub & 127) as usize;
                let mut palette = Vec::new();
                for _ in 0..palette_size {
                    palette.push(cpixel(&f, &take(&mut p, cp)?));
                }
                match sub {
                    0 => {
                        for _ in 0..tw * th {
                            tile.push(cpixel(&f, &take(&mut p, cp)?));
                        }
                    }
                    1 => tile.resize(tw * th, palette[0]),
                    2..=16 => {
                        let bits = match palette_size {
                            2 => 1,
                            3 | 4 => 2,
                            _ => 4,
                        };
                        let row_bytes = (tw * bits).div_ceil(8);
                        for _ in 0..th {
                            let row = take(&mut p, row_bytes)?;
                            for x in 0..tw {
                                let bit = x * bits;
                                let i = (row[bit / 8] >> (8 - bits - bit % 8)) & ((1 << bits) - 1);
                                tile.push(
                                    *palette.get(i as usize).ok_or_else(|| bad("zrle: index"))?,
                                );
                            }
                        }
                    }
                    128 => {
                        while tile.len() < tw * th {
                            let c = cpixel(&f, &take(&mut p, cp)?);
                            let n = run_len(&mut p)?;
                            tile.resize(tile.len() + n, c);
                        }
                    }
                    130..=255 => {
                        while tile.len() < tw * th {
                            let i = take(&mut p, 1)?[0];
                            let c = *palette
                                .get((i & 127) as usize)
                                .ok_or_else(|| bad("zrle: index"))?;
                            let n = if i & 128 != 0 { run_len(&mut p)? } else { 1 };
                            tile.resize(tile.len() + n, c);
                        }
                    }
                    _ => return Err(bad(&format!("zrle: subencoding {sub}"))),
                }
                if tile.len() != tw * th {
                    return Err(bad("zrle: run past the tile"));
                }
                for y in 0..th {
                    out[(ty + y) * w + tx..(ty + y) * w + tx + tw]
                        .copy_from_slice(&tile[y * tw..y * tw + tw]);
                }
            }
        }
        if !p.is_empty() {
            return Err(bad("zrle: trailing data"));
        }
        Ok(out)
    }

    fn tight(&mut self, w: usize, h: usize, r: &mut impl Read) -> io::Result<Vec<u32>> {
        if w > 2048 {
            return Err(bad("tight: rectangle wider than 2048"));
        }
        let f = self.format;
        let tp = tpixel_len(&f);
        let ctl = u8_(r)?;
        for s in 0..4 {
            if ctl & (1 << s) != 0 {
                self.tight[s] = Decompress::new(true);
            }
        }
        let method = ctl >> 4;
        if method == 8 {
            let c = tpixel(&f, &read_n(r, tp)?);
            return Ok(vec![c; w * h]);
        }
        if method & 8 != 0 {
            return Err(bad(&format!("tight: method {method:#x} not expected")));
        }
        let stream = (method & 3) as usize;
        let filter = if method & 4 != 0 { u8_(r)? } else { 0 };
        let (palette, size) = match filter {
            0 => (Vec::new(), w * h * tp),
            1 => {
                let n = u8_(r)? as usize + 1;
                let mut pal = Vec::new();
                for _ in 0..n {
                    pal.push(tpixel(&f, &read_n(r, tp)?));
                }
                let size = if n == 2 { w.div_ceil(8) * h } else { w * h };
                (pal, size)
            }
            other => return Err(bad(&format!("tight: filter {other}"))),
        };
        let data = if size < 12 {
            read_n(r, size)?
        } else {
            let mut len = 0usize;
            for i in 0..3 {
                let b = u8_(r)?;
                if i == 2 {
                    len |= (b as usize) << 14;
                    break;
                }
                len |= ((b & 0x7F) as usize) << (7 * i);
                if b & 0x80 == 0 {
                    break;
                }
            }
            let z = read_n(r, len)?;
            inflate(&mut self.tight[stream], &z, Some(size))?
        };
        Ok(match (filter, palette.len()) {
            (0, _) => data.chunks_exact(tp).map(|c| tpixel(&f, c)).collect(),
            (_, 2) => {
                let row_bytes = w.div_ceil(8);
                let mut out = Vec::with_capacity(w * h);
                for y in 0..h {
                    for x in 0..w {
                        let bit = (data[y * row_bytes + x / 8] >> (7 - x % 8)) & 1;
                        out.push(palette[bit as usize]);
                    }
                }
                out
            }
            _ => data
                .iter()
                .map(|&i| {
                    palette
                        .get(i as usize)
                        .copied()
                        .ok_or_else(|| bad("tight: index"))
                })
                .collect::<io::Result<Vec<u32>>>()?,
        })
    }
}
