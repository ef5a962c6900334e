//! Finding vertical scrolls between two rendered frames, so that front-ends able to copy pixels they already
//! have (VNC's CopyRect) are told "these rows moved" instead of being sent them again.
//!
//! Display adapters report *changed* rectangles, never moves: a guest that scrolls its console or a terminal
//! window rewrites every line, and the adapter (text cells, a linear framebuffer) sees a large change. The hub
//! keeps the previous frame ([`History`]) and, after a large change, looks for a vertical shift `k` such that
//! new row `y` equals old row `y + k` over the changed columns for a long run of rows.
//!
//! How it stays cheap:
//! - Nothing beyond copying the changed rectangles into the kept frame happens unless the changed area is large:
//!   its bounding box spans at least a quarter of the screen's height and width and [`MIN_ROWS`] rows. Small
//!   changes (typing, a blinking cursor, a clock) cost exactly that copy.
//! - Candidates for `k` come from row hashes: a dozen rows of the new frame that carry detail (not a single
//!   colour) are hashed and looked up among the old frame's row hashes over the changed columns; every hit
//!   votes for a shift. When nothing matches (a new picture, a video) the work ends there, after one pass over
//!   the old rows of the band's columns.
//! - The best-voted shifts (at most three, stopping at one that explains three quarters of the changed rows) are
//!   checked by comparing each changed row with its source row pixel by pixel, which stops at the first
//!   difference for rows that do not match. A move is only reported for rows whose pixels really match, so a
//!   hash collision can never make a front-end show wrong pixels.
//!
//! Measured with `cargo run --release -p devices --example scroll_detect` (1024x768 text screen): a one-line
//! scroll or a whole new picture costs the refresh about a millisecond more than without a consumer that
//! accepts moves (the kept frame's copy, one hashing pass, the compares); a small change costs nothing
//! measurable.
//!
//! The result is one move (the longest run of changed rows explained by one shift, gaps of up to [`MAX_GAP`]
//! rows that do not match being repainted) and the residual rectangles: the changed rows outside the move and
//! the rows inside it that differ from their source. Copying the move in the old frame and then painting the
//! residual rectangles from the new frame gives exactly the new frame.

use super::{Frame, Move, Rect};

/// Fewest changed rows a move must explain to be reported: smaller moves save little over sending pixels.
pub const MIN_ROWS: u32 = 8;
/// Rows of the new frame hashed to find candidate shifts.
const SAMPLES: usize = 12;
/// Candidate shifts checked, best-voted first.
const CANDIDATES: usize = 3;
/// Longest run of non-matching rows a move may bridge (one text line); those rows are repainted after the copy.
pub const MAX_GAP: u32 = 16;

/// A scroll found between two frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scroll {
    /// The rows that moved.
    pub moved: Move,
    /// What the move does not explain, to paint after the copy.
    pub rects: Vec<Rect>,
}

/// A hash of one row segment. Written here rather than taken from a crate because it only needs to be fast and
/// spread row contents well; collisions are harmless (rows are compared pixel by pixel before a move is
/// accepted). Multiply-rotate as in FxHash, on four independent lanes of two pixels each so that the
/// multiplications overlap instead of waiting for one another.
fn hash_row(px: &[u32]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, v: u64| (h.rotate_left(5) ^ v).wrapping_mul(K);
    let mut lanes = [px.len() as u64, 1, 2, 3];
    let mut chunks = px.chunks_exact(8);
    for c in &mut chunks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane = step(*lane, u64::from(c[2 * i]) | (u64::from(c[2 * i + 1]) << 32));
        }
    }
    let mut h = lanes
        .iter()
        .enumerate()
        .fold(0, |h, (i, &l)| step(h, l.rotate_left(16 * i as u32)));
    for &p in chunks.remainder() {
        h = step(h, u64::from(p));
    }
    h
}

/// Whether a row segment is a single colour (such rows match each other everywhere and say nothing about a
/// shift).
fn uniform(px: &[u32]) -> bool {
    px.first().is_none_or(|&p| px.iter().all(|&q| q == p))
}

/// Columns `x0..x1` of row `y`.
fn strip(f: &Frame, y: u32, x0: usize, x1: usize) -> &[u32] {
    f.row(y).and_then(|r| r.get(x0..x1)).unwrap_or(&[])
}

fn bounding_box(rects: &[Rect]) -> Option<Rect> {
    let x0 = rects.iter().map(|r| r.x).min()?;
    let y0 = rects.iter().map(|r| r.y).min()?;
    let x1 = rects.iter().map(Rect::right).max()?;
    let y1 = rects.iter().map(Rect::bottom).max()?;
    Some(Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    })
}

/// Where new row `y` would come from with shift `k`, if that row exists.
fn source_row(y: u32, k: i64, h: u32) -> Option<u32> {
    let s = i64::from(y) + k;
    (0..i64::from(h))
        .contains(&s)
        .then(|| u32::try_from(s).ok())
        .flatten()
}

/// What is known about the rows of the band (`first..first + changed.len()`) of the new frame.
struct Band {
    first: u32,
    /// The row is in a changed rectangle.
    changed: Vec<bool>,
    /// The row has more than one colour over the band's columns.
    detail: Vec<bool>,
}

/// A move for one shift, checked pixel by pixel.
struct Candidate {
    /// First destination row.
    first: u32,
    /// One past the last.
    end: u32,
    /// Per destination row: its pixels equal its source's.
    ok: Vec<bool>,
    /// Changed rows with detail copied correctly.
    score: u32,
}

/// The best move for shift `k` within the band: the run of rows whose pixels equal their source rows `k` below
/// (above for negative `k`) explaining the most changed rows with detail. Single-colour rows match one another
/// anywhere, so they neither start nor end a run, although one may cross them; a run bridges at most
/// [`MAX_GAP`] rows that do not match, which are repainted after the copy. The run is then widened over the
/// changed rows next to it that match too (blank lines at its ends).
fn evaluate(
    old: &Frame,
    new: &Frame,
    (x0, x1): (usize, usize),
    k: i64,
    band: &Band,
) -> Option<Candidate> {
    let h = new.height;
    let ok: Vec<bool> = (0..band.changed.len() as u32)
        .map(|i| {
            let y = band.first + i;
            source_row(y, k, h).is_some_and(|s| strip(new, y, x0, x1) == strip(old, s, x0, x1))
        })
        .collect();
    let useful = |i: usize| ok[i] && band.changed[i] && band.detail[i];
    // (first, end, score) of the current and the best run, as band indexes.
    let mut best: Option<(usize, usize, u32)> = None;
    let mut cur: Option<(usize, usize, u32)> = None;
    let mut misses = 0u32;
    for (i, &matched) in ok.iter().enumerate() {
        if !matched {
            misses += 1;
            if misses > MAX_GAP {
                if let Some(c) = cur.take() {
                    best = best.filter(|b| b.2 >= c.2).or(Some(c));
                }
            }
        } else if useful(i) {
            misses = 0;
            cur = Some(cur.map_or((i, i + 1, 1), |(a, _, n)| (a, i + 1, n + 1)));
        }
    }
    if let Some(c) = cur {
        best = best.filter(|b| b.2 >= c.2).or(Some(c));
    }
    let (mut a, mut b, score) = best?;
    while a > 0 && band.changed[a - 1] && ok[a - 1] {
        a -= 1;
    }
    while b < ok.len() && band.changed[b] && ok[b] {
        b += 1;
    }
    Some(Candidate {
        first: band.first + a as u32,
        end: band.first + b as u32,
        ok: ok[a..b].to_vec(),
        score,
    })
}

/// Looks for a vertical scroll that explains much of the change from `old` to `new` (same size), given the
/// rectangles the source reported changed (clamped to the screen). Returns the move and the residual
/// rectangles; `None` when there is no worthwhile scroll.
pub fn detect(old: &Frame, new: &Frame, changed: &[Rect]) -> Option<Scroll> {
    let (w, h) = (new.width, new.height);
    if (old.width, old.height) != (w, h) {
        return None;
    }
    let band = bounding_box(changed)?.clamp(w, h);
    if band.h < MIN_ROWS || band.h.saturating_mul(4) < h || band.w.saturating_mul(4) < w {
        return None;
    }
    let (x0, x1) = (band.x as usize, band.right() as usize);
    let mut row_changed = vec![false; h as usize];
    for r in changed {
        let r = r.clamp(w, h);
        for c in &mut row_changed[r.y as usize..r.bottom() as usize] {
            *c = true;
        }
    }
    // Sample rows: changed rows with detail, spread over the band.
    let step = (band.h / SAMPLES as u32).max(1);
    let mut samples: Vec<(u64, u32)> = Vec::with_capacity(SAMPLES);
    let mut y = band.y;
    while y < band.bottom() && samples.len() < SAMPLES {
        let sample = (y..(y + step).min(band.bottom()))
            .find(|&yy| row_changed[yy as usize] && !uniform(strip(new, yy, x0, x1)));
        if let Some(yy) = sample {
            samples.push((hash_row(strip(new, yy, x0, x1)), yy));
        }
        y += step;
    }
    if samples.is_empty() {
        return None;
    }
    let old_hash: Vec<u64> = (0..h).map(|y| hash_row(strip(old, y, x0, x1))).collect();
    let mut votes: Vec<i64> = Vec::new();
    for (yo, &ho) in old_hash.iter().enumerate() {
        for &(hs, ys) in &samples {
            if ho == hs && yo as u32 != ys {
                votes.push(yo as i64 - i64::from(ys));
            }
        }
    }
    if votes.is_empty() {
        return None;
    }
    votes.sort_unstable();
    let mut tally: Vec<(usize, i64)> = votes
        .chunk_by(|a, b| a == b)
        .map(|v| (v.len(), v[0]))
        .collect();
    tally.sort_unstable_by_key(|&(n, k)| (std::cmp::Reverse(n), k.unsigned_abs()));
    let rows = band.y..band.bottom();
    let band_rows = Band {
        first: band.y,
        changed: rows.clone().map(|y| row_changed[y as usize]).collect(),
        detail: rows.map(|y| !uniform(strip(new, y, x0, x1))).collect(),
    };
    let wanted = band_rows
        .changed
        .iter()
        .zip(&band_rows.detail)
        .filter(|(c, d)| **c && **d)
        .count() as u32;
    let mut best: Option<(i64, Candidate)> = None;
    for &(_, k) in tally.iter().take(CANDIDATES) {
        let Some(cand) = evaluate(old, new, (x0, x1), k, &band_rows) else {
            continue;
        };
        if best.as_ref().is_none_or(|(_, c)| cand.score > c.score) {
            best = Some((k, cand));
        }
        // Explaining most of the change is good enough: the other candidates are not worth their compares.
        if best
            .as_ref()
            .is_some_and(|(_, c)| c.score * 4 >= wanted * 3)
        {
            break;
        }
    }
    let (k, c) = best?;
    if c.score < MIN_ROWS {
        return None;
    }
    let src_y = source_row(c.first, k, h)?;
    let dst = Rect {
        x: band.x,
        y: c.first,
        w: band.w,
        h: c.end - c.first,
    };
    let mut rects = Vec::new();
    // Changed rows outside the move (the band's columns cover every changed rectangle's columns).
    for r in changed {
        let r = r.clamp(w, h);
        if r.y < dst.y {
            rects.push(Rect {
                h: r.bottom().min(dst.y) - r.y,
                ..r
            });
        }
        if r.bottom() > dst.bottom() {
            let y = r.y.max(dst.bottom());
            rects.push(Rect {
                y,
                h: r.bottom() - y,
                ..r
            });
        }
    }
    // Rows inside the move that do not match their source: repainted after the copy.
    let mut y = 0usize;
    while y < c.ok.len() {
        if c.ok[y] {
            y += 1;
            continue;
        }
        let run = c.ok[y..].iter().take_while(|&&ok| !ok).count();
        rects.push(Rect {
            x: dst.x,
            y: dst.y + y as u32,
            w: dst.w,
            h: run as u32,
        });
        y += run;
    }
    Some(Scroll {
        moved: Move {
            dst,
            src_x: dst.x,
            src_y,
        },
        rects,
    })
}

/// The previous frame, kept only while some front-end can use moves.
#[derive(Debug, Default)]
pub struct History {
    prev: Frame,
}

impl History {
    /// Compares `frame` (just rendered, with `changed` rectangles clamped to it) with the previous frame, then
    /// makes it the previous frame. Returns the move found, if any, and the rectangles to paint after it (the
    /// residual of the move, or `changed` itself).
    pub fn record(
        &mut self,
        frame: &Frame,
        changed: Vec<Rect>,
        resized: bool,
    ) -> (Option<Move>, Vec<Rect>) {
        if resized || !self.matches(frame) {
            // A new mode, or nothing kept yet: start over from this frame.
            self.copy(frame);
            return (None, changed);
        }
        let found = detect(&self.prev, frame, &changed);
        let width = frame.width as usize;
        for r in &changed {
            for y in r.y..r.bottom() {
                let start = y as usize * width + r.x as usize;
                let end = start + r.w as usize;
                if let (Some(dst), Some(src)) = (
                    self.prev.pixels.get_mut(start..end),
                    frame.pixels.get(start..end),
                ) {
                    dst.copy_from_slice(src);
                }
            }
        }
        match found {
            Some(s) => (Some(s.moved), s.rects),
            None => (None, changed),
        }
    }

    /// Starts keeping `frame` (the current one) unless a frame is kept already. The kept frame is always
    /// either the current one or dropped (see [`History::forget`]), so one of the right size is up to date.
    pub fn start(&mut self, frame: &Frame) {
        if !self.matches(frame) {
            self.copy(frame);
        }
    }

    fn matches(&self, frame: &Frame) -> bool {
        (self.prev.width, self.prev.height) == (frame.width, frame.height)
            && self.prev.pixels.len() == frame.pixels.len()
    }

    fn copy(&mut self, frame: &Frame) {
        self.prev.width = frame.width;
        self.prev.height = frame.height;
        self.prev.pixels.clear();
        self.prev.pixels.extend_from_slice(&frame.pixels);
    }

    /// Drops the kept frame (nobody can use moves now).
    pub fn forget(&mut self) {
        self.prev = Frame::default();
    }
}
