//! Hextile encoding.
//!
//! The rectangle is cut into 16×16 tiles (smaller at the right and bottom edges), sent left to right, top to
//! bottom. Each tile starts with a mask byte: Raw (1) means the tile's pixels follow as they are; otherwise
//! BackgroundSpecified (2) and ForegroundSpecified (4) bring a new background or foreground pixel, and
//! AnySubrects (8) a count of subrectangles, each with its own pixel when SubrectsColoured (16) is set, then
//! a position byte (x << 4 | y) and a size byte ((w-1) << 4 | h-1). Background and foreground carry over
//! from the previous tile when not specified, but not across a raw tile, and the foreground not across a
//! tile with coloured subrectangles.
//!
//! The encoder picks per tile: one colour (just the background, often nothing at all), two colours (one
//! foreground with uncoloured subrectangles), or more (coloured subrectangles found greedily); whenever the
//! subrectangles would cost more than the raw tile, the tile goes raw.

use crate::pixel::PixelWriter;

const RAW: u8 = 1;
const BACKGROUND: u8 = 2;
const FOREGROUND: u8 = 4;
const ANY_SUBRECTS: u8 = 8;
const COLOURED: u8 = 16;

struct State {
    bg: Option<u32>,
    fg: Option<u32>,
}

/// Appends `values` (`width` × `height` client pixels) in Hextile.
pub fn encode(values: &[u32], width: usize, height: usize, pw: &PixelWriter, out: &mut Vec<u8>) {
    let mut st = State { bg: None, fg: None };
    let mut tile = [0u32; 256];
    for ty in (0..height).step_by(16) {
        let th = (height - ty).min(16);
        for tx in (0..width).step_by(16) {
            let tw = (width - tx).min(16);
            for row in 0..th {
                let start = (ty + row) * width + tx;
                tile[row * tw..row * tw + tw].copy_from_slice(&values[start..start + tw]);
            }
            encode_tile(&tile[..tw * th], tw, th, pw, &mut st, out);
        }
    }
}

fn encode_tile(
    px: &[u32],
    tw: usize,
    th: usize,
    pw: &PixelWriter,
    st: &mut State,
    out: &mut Vec<u8>,
) {
    let bpp = pw.bytes_per_pixel();
    let raw_size = 1 + px.len() * bpp;
    // Distinct colours: one, two, or more.
    let c0 = px[0];
    let mut c1 = None;
    let mut many = false;
    for &p in px {
        if p != c0 {
            match c1 {
                None => c1 = Some(p),
                Some(c) if c != p => {
                    many = true;
                    break;
                }
                _ => {}
            }
        }
    }
    let start = out.len();
    let Some(c1) = c1 else {
        // Solid tile.
        if st.bg == Some(c0) {
            out.push(0);
        } else {
            out.push(BACKGROUND);
            pw.put(out, c0);
            st.bg = Some(c0);
        }
        return;
    };
    let bg = if many {
        most_frequent(px)
    } else {
        let n0 = px.iter().filter(|&&p| p == c0).count();
        if n0 * 2 >= px.len() {
            c0
        } else {
            c1
        }
    };
    let mut mask = ANY_SUBRECTS;
    out.push(0);
    if st.bg != Some(bg) {
        mask |= BACKGROUND;
        pw.put(out, bg);
    }
    let fg = if many {
        None
    } else {
        Some(if bg == c0 { c1 } else { c0 })
    };
    if let Some(fg) = fg {
        if st.fg != Some(fg) {
            mask |= FOREGROUND;
            pw.put(out, fg);
        }
    } else {
        mask |= COLOURED;
    }
    let count_at = out.len();
    out.push(0);
    let mut count = 0usize;
    let mut covered = [false; 256];
    let fits = 'scan: {
        for y in 0..th {
            for x in 0..tw {
                let c = px[y * tw + x];
                if covered[y * tw + x] || c == bg {
                    continue;
                }
                let mut x2 = x;
                while x2 + 1 < tw && px[y * tw + x2 + 1] == c && !covered[y * tw + x2 + 1] {
                    x2 += 1;
                }
                let mut y2 = y;
                'down: while y2 + 1 < th {
                    for xx in x..=x2 {
                        let i = (y2 + 1) * tw + xx;
                        if px[i] != c || covered[i] {
                            break 'down;
                        }
                    }
                    y2 += 1;
                }
                for yy in y..=y2 {
                    for xx in x..=x2 {
                        covered[yy * tw + xx] = true;
                    }
                }
                if fg.is_none() {
                    pw.put(out, c);
                }
                out.push(((x as u8) << 4) | y as u8);
                out.push((((x2 - x) as u8) << 4) | (y2 - y) as u8);
                count += 1;
                if out.len() - start >= raw_size || count > 255 {
                    break 'scan false;
                }
            }
        }
        true
    };
    if !fits {
        out.truncate(start);
        out.push(RAW);
        for &p in px {
            pw.put(out, p);
        }
        st.bg = None;
        st.fg = None;
        return;
    }
    out[start] = mask;
    out[count_at] = count as u8;
    st.bg = Some(bg);
    st.fg = fg;
}

fn most_frequent(px: &[u32]) -> u32 {
    let mut sorted = [0u32; 256];
    let s = &mut sorted[..px.len()];
    s.copy_from_slice(px);
    s.sort_unstable();
    let (mut best, mut best_n) = (s[0], 0usize);
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j < s.len() && s[j] == s[i] {
            j += 1;
        }
        if j - i > best_n {
            best = s[i];
            best_n = j - i;
        }
        i = j;
    }
    best
}
