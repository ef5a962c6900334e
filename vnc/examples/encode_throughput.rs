//! Encoder throughput: megapixels per second and bytes for a full 1024×768 screen in each encoding, for three
//! kinds of screen content (a text console, a desktop of flat areas, a photo-like gradient), 32-bpp true colour.
//!
//! `cargo run --release -p vnc --example encode_throughput [ZLIB_LEVEL]` (default: the server's default level)

use std::time::Instant;

use vnc::encodings::{hextile, raw, tight, zrle};
use vnc::pixel::{PixelFormat, PixelWriter};

const W: usize = 1024;
const H: usize = 768;

/// Deterministic pseudo-random numbers (xorshift), so every run encodes the same screens.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// White-on-black 8×16 character cells, about half of them holding a random "glyph".
fn text_screen() -> Vec<u32> {
    let mut rng = Rng(0x1234_5678);
    let mut px = vec![0u32; W * H];
    for cy in 0..H / 16 {
        for cx in 0..W / 8 {
            if rng.next().is_multiple_of(2) {
                continue;
            }
            for y in 2..14 {
                let bits = rng.next() as u8;
                for x in 0..8 {
                    if bits & (0x80 >> x) != 0 {
                        px[(cy * 16 + y) * W + cx * 8 + x] = 0xaaaaaa;
                    }
                }
            }
        }
    }
    px
}

/// Flat rectangles of a few colours, as a desktop with windows.
fn desktop_screen() -> Vec<u32> {
    let mut rng = Rng(0x9e37_79b9);
    let mut px = vec![0x3a6ea5u32; W * H];
    for _ in 0..40 {
        let (x, y) = (
            (rng.next() % W as u64) as usize,
            (rng.next() % H as u64) as usize,
        );
        let (w, h) = (
            (rng.next() % 300) as usize + 20,
            (rng.next() % 200) as usize + 20,
        );
        let colour = [0xffffff, 0xc0c0c0, 0x000080, 0x808080][(rng.next() % 4) as usize];
        for row in y..(y + h).min(H) {
            for p in &mut px[row * W + x..row * W + (x + w).min(W)] {
                *p = colour;
            }
        }
    }
    px
}

/// A smooth gradient with noise: little repetition, as a photo.
fn photo_screen() -> Vec<u32> {
    let mut rng = Rng(0xdead_beef);
    (0..W * H)
        .map(|i| {
            let (x, y) = (i % W, i / W);
            let n = (rng.next() % 16) as u32;
            (((x * 255 / W) as u32 + n).min(255) << 16)
                | (((y * 255 / H) as u32 + n).min(255) << 8)
                | ((((x + y) * 255 / (W + H)) as u32 + n).min(255))
        })
        .collect()
}

fn measure(name: &str, mut encode: impl FnMut(&mut Vec<u8>)) -> (f64, usize) {
    let mut out = Vec::new();
    encode(&mut out); // warm-up (zlib streams, buffers)
    let runs = 5;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..runs {
        out.clear();
        encode(&mut out);
        bytes = out.len();
    }
    let secs = start.elapsed().as_secs_f64() / runs as f64;
    let mpix = (W * H) as f64 / 1e6 / secs;
    println!("  {name:<8} {mpix:>9.1} Mpixel/s {bytes:>10} bytes");
    (mpix, bytes)
}

fn main() {
    let level: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(vnc::DEFAULT_ZLIB_LEVEL);
    println!("zlib level {level}");
    let pw = PixelWriter::new(PixelFormat::NATIVE);
    for (screen, pixels) in [
        ("text console", text_screen()),
        ("desktop", desktop_screen()),
        ("photo", photo_screen()),
    ] {
        println!("{screen} {W}x{H}, 32 bpp:");
        let mut values = Vec::new();
        pw.convert(&pixels, &mut values);
        measure("Raw", |out| raw::encode(&values, &pw, out));
        measure("Hextile", |out| hextile::encode(&values, W, H, &pw, out));
        let mut z = zrle::ZrleEncoder::new(level);
        measure("ZRLE", |out| {
            z.encode(&values, W, H, &pw, out).expect("zrle");
        });
        let mut t = tight::TightEncoder::new(level);
        let mut sub = Vec::new();
        measure("Tight", |out| {
            for (x, y, w, h) in tight::split(0, 0, W, H) {
                sub.clear();
                for row in y..y + h {
                    sub.extend_from_slice(&values[row * W + x..row * W + x + w]);
                }
                t.encode(&sub, w, h, &pw, out).expect("tight");
            }
        });
    }
}
