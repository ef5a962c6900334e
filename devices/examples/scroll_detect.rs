//! What scroll detection costs the display refresh, on a 1024x768 text-like screen: the time of
//! `DisplayHub::refresh` for a small change, a one-line scroll of the whole screen and a whole new picture,
//! with a consumer that accepts moves (the hub keeps the previous frame and searches) and with one that does not.
//!
//! `cargo run --release -p devices --example scroll_detect`

use std::sync::{Arc, Mutex};
use std::time::Instant;

use devices::display::{DisplayHub, DisplaySource, Frame, Rect};

const W: u32 = 1024;
const H: u32 = 768;

/// xorshift, so every run renders the same screens.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `rows` rows of 8×16 text cells, about half holding a random glyph.
fn text_rows(rows: u32, rng: &mut Rng) -> Vec<u32> {
    let mut px = vec![0u32; (W * rows) as usize];
    for cy in 0..rows / 16 {
        for cx in 0..W / 8 {
            if rng.next().is_multiple_of(2) {
                continue;
            }
            for y in 2..14 {
                let bits = rng.next() as u8;
                for x in 0..8 {
                    if bits & (0x80 >> x) != 0 {
                        px[((cy * 16 + y) * W + cx * 8 + x) as usize] = 0x00AA_AAAA;
                    }
                }
            }
        }
    }
    px
}

/// A source whose next picture and changed rectangles the benchmark sets.
struct Screen(Mutex<(Vec<u32>, Vec<Rect>)>);

impl DisplaySource for Screen {
    fn refresh(&self, frame: &mut Frame) -> Vec<Rect> {
        let st = &mut *self.0.lock().unwrap_or_else(|e| e.into_inner());
        if frame.resize(W, H) {
            frame.pixels.copy_from_slice(&st.0);
            return vec![Rect::full(W, H)];
        }
        // Copy only what changed, as a real adapter renders only what changed.
        for r in &st.1 {
            for y in r.y..r.y + r.h {
                let s = (y * W + r.x) as usize;
                frame.pixels[s..s + r.w as usize].copy_from_slice(&st.0[s..s + r.w as usize]);
            }
        }
        std::mem::take(&mut st.1)
    }
}

fn main() {
    let mut rng = Rng(7);
    const ROUNDS: u32 = 200;
    for accept in [true, false] {
        let screen = Arc::new(Screen(Mutex::new((text_rows(H, &mut rng), Vec::new()))));
        let hub = DisplayHub::new(screen.clone(), "bench");
        let consumer = hub.subscribe();
        consumer.accept_moves(accept);
        println!(
            "consumer {} moves:",
            if accept { "accepting" } else { "not accepting" }
        );
        let cases: [(&str, u32); 3] = [
            ("small change", 0),
            ("one-line scroll", 1),
            ("new picture", 2),
        ];
        for (name, case) in cases {
            let mut total = 0u128;
            let mut moves = 0;
            for _ in 0..ROUNDS {
                {
                    let st = &mut *screen.0.lock().unwrap_or_else(|e| e.into_inner());
                    match case {
                        0 => {
                            let i = (rng.next() % u64::from(W * H)) as usize;
                            st.0[i] ^= 0x00FF_FFFF;
                            let (x, y) = (i as u32 % W, i as u32 / W);
                            st.1.push(Rect { x, y, w: 1, h: 1 });
                        }
                        1 => {
                            st.0.drain(..(16 * W) as usize);
                            st.0.extend(text_rows(16, &mut rng));
                            st.1.push(Rect::full(W, H));
                        }
                        _ => {
                            st.0 = text_rows(H, &mut rng);
                            st.1.push(Rect::full(W, H));
                        }
                    }
                }
                let t = Instant::now();
                hub.refresh();
                total += t.elapsed().as_nanos();
                moves += usize::from(consumer.take().moved.is_some());
            }
            println!(
                "  {name:16} {:8.1} us per refresh ({moves}/{ROUNDS} moves)",
                total as f64 / f64::from(ROUNDS) / 1000.0
            );
        }
    }
}
