use super::scroll::{detect, Scroll, MIN_ROWS};
use super::*;

/// A source that draws one changing pixel per refresh, and changes size when told.
struct Pattern(Mutex<(u32, u32, u32)>);
impl DisplaySource for Pattern {
    fn refresh(&self, frame: &mut Frame) -> Vec<Rect> {
        let mut st = self.0.lock().unwrap();
        if frame.resize(st.0, st.1) {
            return vec![Rect::full(frame.width, frame.height)];
        }
        st.2 += 1;
        frame.pixels[0] = st.2;
        vec![Rect {
            x: 0,
            y: 0,
            w: 1,
            h: 1,
        }]
    }
}

fn r(x: u32, y: u32, w: u32, h: u32) -> Rect {
    Rect { x, y, w, h }
}

#[test]
fn refresh_renders_only_while_someone_watches() {
    use crate::timer::Timed;
    let source = Arc::new(Pattern(Mutex::new((8, 4, 0))));
    let hub = DisplayHub::new(source.clone(), "guest");
    let refresh = DisplayRefresh::new(hub.clone());
    assert_eq!(refresh.advance(1000), Some(1000 + REFRESH_PERIOD_NS));
    // Nobody subscribed: the source was not asked to render (still 640x480, counter untouched).
    assert_eq!(hub.frame().width, 640);
    assert_eq!(source.0.lock().unwrap().2, 0);
    // Subscribing renders at once (the mode change to 8x4).
    let consumer = hub.subscribe();
    assert!(hub.has_consumers());
    assert_eq!((hub.frame().width, hub.frame().height), (8, 4));
    assert_eq!(source.0.lock().unwrap().2, 0);
    // Changes keep the refresh fast for a while.
    assert_eq!(refresh.advance(2000), Some(2000 + ACTIVE_REFRESH_PERIOD_NS));
    refresh.advance(3000);
    assert_eq!(source.0.lock().unwrap().2, 2);
    drop(consumer);
    assert!(!hub.has_consumers());
    refresh.advance(4000);
    assert_eq!(source.0.lock().unwrap().2, 2);
}

#[test]
fn consumers_accumulate_changes_independently() {
    let source = Arc::new(Pattern(Mutex::new((8, 4, 0))));
    let hub = DisplayHub::new(source.clone(), "guest");
    let a = hub.subscribe(); // renders the mode change to 8x4
    let changes = a.take();
    assert!(changes.resized);
    assert_eq!(changes.rects, vec![Rect::full(8, 4)]);
    let b = hub.subscribe(); // renders pixel 0 = 1
    hub.refresh();
    hub.refresh();
    assert_eq!(
        a.take(),
        DisplayChanges {
            resized: false,
            moved: None,
            rects: vec![r(0, 0, 1, 1); 3]
        }
    );
    assert!(a.take().is_empty());
    assert_eq!(
        b.take().rects,
        vec![Rect::full(8, 4), r(0, 0, 1, 1), r(0, 0, 1, 1)],
        "a new consumer starts with the whole screen"
    );
    assert_eq!(hub.frame().pixels[0], 3);
}

#[test]
fn a_slow_consumer_holds_a_bounded_list() {
    let hub = DisplayHub::new(Arc::new(Pattern(Mutex::new((8, 4, 0)))), "guest");
    let slow = hub.subscribe();
    for _ in 0..10_000 {
        hub.refresh();
    }
    assert!(slow.take().rects.len() <= MAX_PENDING_RECTS);
}

#[test]
fn frames_are_bounded_and_rects_clamped() {
    let mut f = Frame::new(100_000, 100_000);
    assert_eq!((f.width, f.height), (MAX_SIDE, MAX_SIDE));
    assert!(f.resize(10, 10));
    assert_eq!(r(8, 8, 100, 100).clamp(10, 10), r(8, 8, 2, 2));
    assert!(r(20, 0, 5, 5).clamp(10, 10).is_empty());
    assert_eq!(f.row(9).map(<[u32]>::len), Some(10));
    assert!(f.row(10).is_none());
}

#[test]
fn rect_and_move_geometry() {
    assert_eq!(
        r(0, 0, 10, 10).intersect(&r(5, 5, 10, 10)),
        Some(r(5, 5, 5, 5))
    );
    assert_eq!(r(0, 0, 10, 10).intersect(&r(10, 0, 5, 5)), None);
    assert!(r(0, 0, 10, 10).contains(&r(2, 2, 8, 8)));
    assert!(!r(0, 0, 10, 10).contains(&r(2, 2, 9, 8)));
    let m = Move {
        dst: r(0, 0, 100, 50),
        src_x: 0,
        src_y: 16,
    };
    assert_eq!(m.src(), r(0, 16, 100, 50));
    // The part of a stale rectangle inside the source lands 16 rows higher; the rest is not carried.
    assert_eq!(m.carried(&r(10, 60, 5, 20)), Some(r(10, 44, 5, 6)));
    assert_eq!(m.carried(&r(10, 0, 5, 10)), None);
}

// ---- Scroll detection ----

/// xorshift, for deterministic content.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const CELL_H: u32 = 16;

/// `rows` pixel rows of `w`-wide text: 8×16 cells, about half with a random glyph in one of a few colours on
/// black; glyph rows 0, 1, 14 and 15 are blank, as in a console font.
fn text_rows(w: u32, rows: u32, rng: &mut Rng) -> Vec<u32> {
    let mut px = vec![0u32; (w * rows) as usize];
    for cy in 0..rows / CELL_H {
        for cx in 0..w / 8 {
            if rng.next().is_multiple_of(2) {
                continue;
            }
            let colour = [0x00AA_AAAA, 0x0055_FF55, 0x00FF_FF55][(rng.next() % 3) as usize];
            for y in 2..14 {
                let bits = rng.next() as u8;
                for x in 0..8 {
                    if bits & (0x80 >> x) != 0 {
                        px[((cy * CELL_H + y) * w + cx * 8 + x) as usize] = colour;
                    }
                }
            }
        }
    }
    px
}

fn text_frame(w: u32, h: u32, seed: u64) -> Frame {
    Frame {
        width: w,
        height: h,
        pixels: text_rows(w, h, &mut Rng(seed)),
    }
}

/// `old` with rows `band` scrolled up by `k` (negative: down), the exposed rows filled from `fill`.
fn scrolled(old: &Frame, top: u32, bottom: u32, x0: u32, x1: u32, k: i32, fill: &Frame) -> Frame {
    let mut new = old.clone();
    for y in top..bottom {
        let s = y as i64 + i64::from(k);
        let from = if (i64::from(top)..i64::from(bottom)).contains(&s) {
            &old.row(s as u32).unwrap()[x0 as usize..x1 as usize]
        } else {
            &fill.row(y).unwrap()[x0 as usize..x1 as usize]
        };
        let start = (y * new.width + x0) as usize;
        new.pixels[start..start + (x1 - x0) as usize].copy_from_slice(from);
    }
    new
}

/// Copies `m` within `picture` (source read whole first).
fn apply_move(picture: &mut [u32], width: u32, m: &Move) {
    let w = width as usize;
    let src: Vec<u32> = (0..m.dst.h as usize)
        .flat_map(|y| {
            let start = (m.src_y as usize + y) * w + m.src_x as usize;
            picture[start..start + m.dst.w as usize].to_vec()
        })
        .collect();
    for (y, row) in src.chunks(m.dst.w as usize).enumerate() {
        let start = (m.dst.y as usize + y) * w + m.dst.x as usize;
        picture[start..start + row.len()].copy_from_slice(row);
    }
}

fn paint(picture: &mut [u32], frame: &Frame, rects: &[Rect]) {
    let w = frame.width as usize;
    for r in rects {
        for y in r.y as usize..r.bottom() as usize {
            let s = y * w + r.x as usize;
            picture[s..s + r.w as usize].copy_from_slice(&frame.pixels[s..s + r.w as usize]);
        }
    }
}

/// The scroll turns `old` into `new`, and its residual rectangles plus move cover every changed rectangle.
fn check_scroll(old: &Frame, new: &Frame, changed: &[Rect], s: &Scroll) {
    let mut picture = old.pixels.clone();
    apply_move(&mut picture, old.width, &s.moved);
    paint(&mut picture, new, &s.rects);
    assert!(
        picture == new.pixels,
        "move + residual does not give the new frame"
    );
    for c in changed {
        for y in c.y..c.bottom() {
            for x in c.x..c.right() {
                let p = r(x, y, 1, 1);
                assert!(
                    s.moved.dst.contains(&p) || s.rects.iter().any(|q| q.contains(&p)),
                    "changed pixel ({x}, {y}) reported nowhere"
                );
            }
        }
    }
}

#[test]
fn detects_a_text_line_scroll() {
    let (w, h) = (640, 400);
    let old = text_frame(w, h, 1);
    let new = scrolled(&old, 0, h, 0, w, 16, &text_frame(w, h, 2));
    let changed = [Rect::full(w, h)];
    let s = detect(&old, &new, &changed).expect("a scroll");
    assert_eq!(
        s.moved,
        Move {
            dst: r(0, 0, w, h - 16),
            src_x: 0,
            src_y: 16
        }
    );
    assert_eq!(
        s.rects,
        vec![r(0, h - 16, w, 16)],
        "exactly the exposed rows"
    );
    check_scroll(&old, &new, &changed, &s);
}

#[test]
fn detects_a_one_row_scroll_reported_as_text_spans() {
    let (w, h) = (640, 400);
    let old = text_frame(w, h, 3);
    let new = scrolled(&old, 0, h, 0, w, 1, &text_frame(w, h, 4));
    // Reported the way the text renderer does: one span per row of cells, from first to last changed cell.
    let changed: Vec<Rect> = (0..h / CELL_H)
        .map(|row| r(8 * (row % 3), row * CELL_H, w - 8 * (row % 3), CELL_H))
        .collect();
    let s = detect(&old, &new, &changed).expect("a scroll");
    assert_eq!(s.moved.src_y - s.moved.dst.y, 1);
    assert_eq!(s.moved.dst.h, h - 1);
    check_scroll(&old, &new, &changed, &s);
    // Every residual row is the exposed last row.
    assert!(s.rects.iter().all(|q| q.y == h - 1 && q.h == 1));
}

#[test]
fn detects_a_downward_scroll_in_a_window() {
    let (w, h) = (640, 480);
    let old = text_frame(w, h, 5);
    // A terminal window in columns 160..480, rows 48..432, scrolls back (content moves down) by 32 rows.
    let new = scrolled(&old, 48, 432, 160, 480, -32, &text_frame(w, h, 6));
    let changed = [r(160, 48, 320, 384)];
    let s = detect(&old, &new, &changed).expect("a scroll");
    let m = s.moved;
    assert_eq!((m.dst.x, m.dst.w, m.src_x), (160, 320, 160));
    assert_eq!(m.src_y + 32, m.dst.y);
    assert_eq!(m.dst.bottom(), 432);
    // Every moved row is in the move. The exposed rows' last blank glyph rows (cell rows 14 and 15) also
    // match the blank rows 32 above them, so the move may start there.
    assert!((78..=80).contains(&m.dst.y), "{m:?}");
    assert_eq!(s.rects, vec![r(160, 48, 320, m.dst.y - 48)]);
    check_scroll(&old, &new, &changed, &s);
}

#[test]
fn rows_that_do_not_follow_the_scroll_are_repainted() {
    let (w, h) = (640, 400);
    let old = text_frame(w, h, 7);
    let mut new = scrolled(&old, 0, h, 0, w, 16, &text_frame(w, h, 8));
    // One line in the middle is redrawn differently (a highlighted search hit).
    for p in &mut new.pixels[(160 * w) as usize..(176 * w) as usize] {
        *p ^= 0x00FF_0000;
    }
    let changed = [Rect::full(w, h)];
    let s = detect(&old, &new, &changed).expect("a scroll");
    assert_eq!(s.moved.dst, r(0, 0, w, h - 16));
    assert!(s.rects.contains(&r(0, 160, w, 16)), "{:?}", s.rects);
    check_scroll(&old, &new, &changed, &s);
}

#[test]
fn a_change_in_place_is_not_a_scroll() {
    let (w, h) = (640, 400);
    let old = text_frame(w, h, 9);
    // Every line rewritten with new text.
    let new = text_frame(w, h, 10);
    assert_eq!(detect(&old, &new, &[Rect::full(w, h)]), None);
    // Every line recoloured where it stands.
    let mut recoloured = old.clone();
    for p in &mut recoloured.pixels {
        if *p != 0 {
            *p = 0x0000_00AA;
        }
    }
    assert_eq!(detect(&old, &recoloured, &[Rect::full(w, h)]), None);
    // Cleared to black: nothing to recognise.
    let black = Frame::new(w, h);
    assert_eq!(detect(&old, &black, &[Rect::full(w, h)]), None);
}

#[test]
fn a_different_picture_gives_no_move() {
    let (w, h) = (320, 200);
    let old = text_frame(w, h, 11);
    let mut rng = Rng(12);
    let new = Frame {
        width: w,
        height: h,
        pixels: (0..w * h)
            .map(|_| rng.next() as u32 & 0x00FF_FFFF)
            .collect(),
    };
    assert_eq!(detect(&old, &new, &[Rect::full(w, h)]), None);
}

#[test]
fn small_changes_are_not_searched() {
    let (w, h) = (640, 400);
    let old = text_frame(w, h, 13);
    // A scroll of a small area (under a quarter of the screen's height) is left to plain rectangles.
    let new = scrolled(&old, 0, 96, 0, w, 16, &text_frame(w, h, 14));
    assert_eq!(detect(&old, &new, &[r(0, 0, w, 96)]), None);
    // As is a scroll of fewer than MIN_ROWS rows.
    let tiny = Frame {
        width: w,
        height: MIN_ROWS - 1,
        pixels: old.pixels[..(w * (MIN_ROWS - 1)) as usize].to_vec(),
    };
    let mut moved = tiny.clone();
    moved.pixels.rotate_left(w as usize);
    assert_eq!(detect(&tiny, &moved, &[Rect::full(w, MIN_ROWS - 1)]), None);
}

// ---- The hub and its consumers ----

/// A source showing whatever picture the test sets, reporting the rectangles the test names.
struct Scripted(Mutex<(Frame, Vec<Rect>)>);

impl Scripted {
    fn new(f: Frame) -> Arc<Scripted> {
        Arc::new(Scripted(Mutex::new((f, Vec::new()))))
    }

    fn show(&self, f: Frame, changed: Vec<Rect>) {
        let mut st = self.0.lock().unwrap();
        st.0 = f;
        st.1.extend(changed);
    }

    fn picture(&self) -> Frame {
        self.0.lock().unwrap().0.clone()
    }
}

impl DisplaySource for Scripted {
    fn refresh(&self, frame: &mut Frame) -> Vec<Rect> {
        let mut st = self.0.lock().unwrap();
        if frame.resize(st.0.width, st.0.height) {
            st.1.clear();
            frame.pixels.copy_from_slice(&st.0.pixels);
            return vec![Rect::full(frame.width, frame.height)];
        }
        frame.pixels.copy_from_slice(&st.0.pixels);
        std::mem::take(&mut st.1)
    }
}

/// A hub on a 640x400 text screen with a consumer that accepts moves and took the first picture.
fn text_hub() -> (Arc<Scripted>, Arc<DisplayHub>, Arc<DisplayConsumer>) {
    let source = Scripted::new(text_frame(640, 400, 21));
    let hub = DisplayHub::new(source.clone(), "guest");
    let c = hub.subscribe();
    c.accept_moves(true);
    hub.refresh();
    c.take();
    (source, hub, c)
}

fn scroll_source(source: &Scripted, k: i32, seed: u64) {
    let old = source.picture();
    let (w, h) = (old.width, old.height);
    let new = scrolled(&old, 0, h, 0, w, k, &text_frame(w, h, seed));
    source.show(new, vec![Rect::full(w, h)]);
}

#[test]
fn consumers_that_accept_moves_get_them_others_get_rects() {
    let (source, hub, copier) = text_hub();
    let painter = hub.subscribe();
    hub.refresh();
    painter.take();
    scroll_source(&source, 16, 22);
    hub.refresh();
    let c = copier.take();
    assert_eq!(
        c.moved,
        Some(Move {
            dst: r(0, 0, 640, 384),
            src_x: 0,
            src_y: 16
        })
    );
    assert_eq!(c.rects, vec![r(0, 384, 640, 16)]);
    let p = painter.take();
    assert_eq!(p.moved, None);
    assert_eq!(p.rects, vec![r(0, 0, 640, 384), r(0, 384, 640, 16)]);
    // Nobody accepts moves any more: no move is looked for, and the kept frame is dropped.
    copier.accept_moves(false);
    scroll_source(&source, 16, 23);
    hub.refresh();
    assert_eq!(copier.take().moved, None);
}

#[test]
fn a_move_carries_pending_rects_along() {
    let (source, hub, c) = text_hub();
    // A small change the consumer has not taken yet, inside what will scroll.
    let mut f = source.picture();
    f.pixels[(100 * 640 + 10) as usize] = 0x00FF_0000;
    source.show(f, vec![r(10, 100, 1, 1)]);
    hub.refresh();
    scroll_source(&source, 16, 24);
    hub.refresh();
    let ch = c.take();
    assert!(ch.moved.is_some());
    // Kept where it was, and added where the copy puts the consumer's stale pixel.
    assert!(ch.rects.contains(&r(10, 100, 1, 1)));
    assert!(ch.rects.contains(&r(10, 84, 1, 1)));
}

#[test]
fn a_second_move_before_take_is_composed_with_the_first() {
    let (source, hub, c) = text_hub();
    scroll_source(&source, 16, 25);
    hub.refresh();
    scroll_source(&source, 32, 26);
    hub.refresh();
    let ch = c.take();
    // One copy of everything that is still on the screen, from 48 rows down; the 48 new rows are painted.
    assert_eq!(
        ch.moved,
        Some(Move {
            dst: r(0, 0, 640, 352),
            src_x: 0,
            src_y: 48
        })
    );
    let mut rows = vec![false; 400];
    for q in &ch.rects {
        assert_eq!((q.x, q.w), (0, 640));
        rows[q.y as usize..q.bottom() as usize].fill(true);
    }
    assert_eq!(rows.iter().position(|&p| p), Some(352));
    assert!(rows[352..].iter().all(|&p| p));
}

#[test]
fn moves_compose_over_the_same_columns_only() {
    let up = |dst: Rect, by: u32| Move {
        dst,
        src_x: dst.x,
        src_y: dst.y + by,
    };
    let down = |dst: Rect, by: u32| Move {
        dst,
        src_x: dst.x,
        src_y: dst.y - by,
    };
    // Up by 10 then down by 10: rows 10..100 are back where they were, so no move is left; rows 0..10 still
    // show what the first move put there and are painted.
    let (m, paint) = up(r(0, 0, 100, 90), 10).compose(&down(r(0, 10, 100, 90), 10));
    assert_eq!(m, None);
    assert_eq!(paint, vec![r(0, 0, 100, 10)]);
    // Different columns: both destinations are painted.
    let (m, paint) = up(r(0, 0, 100, 90), 10).compose(&up(r(10, 0, 90, 90), 10));
    assert_eq!(m, None);
    assert_eq!(paint, vec![r(0, 0, 100, 90), r(10, 0, 90, 90)]);
    // Up 40 then up 60 of 100 rows: nothing of the first copy survives the second.
    let (m, paint) = up(r(0, 0, 100, 60), 40).compose(&up(r(0, 0, 100, 40), 60));
    assert_eq!(m, None);
    assert_eq!(paint, vec![r(0, 0, 100, 60), r(0, 0, 100, 40)]);
}

/// Wherever the composed move is not told to be painted, it gives the pixels of the two moves applied one
/// after the other.
#[test]
fn a_composed_move_equals_the_two_moves_in_turn() {
    let (w, h) = (40u32, 64u32);
    let mut rng = Rng(77);
    let random_move = |rng: &mut Rng| {
        let x = (rng.next() % 2) as u32 * 4;
        let top = (rng.next() % 8) as u32;
        let bottom = h - (rng.next() % 8) as u32;
        let by = (rng.next() % 20) as u32 + 1;
        let dst_h = bottom - top - by;
        if rng.next().is_multiple_of(2) {
            Move {
                dst: r(x, top, w - 2 * x, dst_h),
                src_x: x,
                src_y: top + by,
            }
        } else {
            Move {
                dst: r(x, top + by, w - 2 * x, dst_h),
                src_x: x,
                src_y: top,
            }
        }
    };
    let mut composed = 0;
    for _ in 0..500 {
        let (a, b) = (random_move(&mut rng), random_move(&mut rng));
        let before: Vec<u32> = (0..w * h).collect();
        let mut in_turn = before.clone();
        apply_move(&mut in_turn, w, &a);
        apply_move(&mut in_turn, w, &b);
        let (m, paint) = a.compose(&b);
        let mut at_once = before.clone();
        if let Some(m) = &m {
            apply_move(&mut at_once, w, m);
            composed += 1;
        }
        for y in 0..h {
            for x in 0..w {
                let p = r(x, y, 1, 1);
                if !paint.iter().any(|q| q.contains(&p)) {
                    let i = (y * w + x) as usize;
                    assert_eq!(at_once[i], in_turn[i], "({x}, {y}) for {a:?} then {b:?}");
                }
            }
        }
    }
    assert!(composed > 150, "only {composed} compositions");
}

#[test]
fn moves_are_dropped_when_everything_is_painted_anyway() {
    let (source, hub, c) = text_hub();
    // A pending resize: the front-end redraws everything.
    let resized = text_frame(640, 480, 27);
    source.show(resized, Vec::new());
    hub.refresh();
    scroll_source(&source, 16, 28);
    hub.refresh();
    let ch = c.take();
    assert!(ch.resized);
    assert_eq!(ch.moved, None);
    // A full invalidate after the move.
    scroll_source(&source, 16, 29);
    hub.refresh();
    c.invalidate();
    let ch = c.take();
    assert_eq!(ch.moved, None);
    assert!(ch.rects.contains(&Rect::full(640, 480)));
    // Turning moves off turns a pending one into a rectangle.
    scroll_source(&source, 16, 30);
    hub.refresh();
    c.accept_moves(false);
    let ch = c.take();
    assert_eq!(ch.moved, None);
    assert!(ch.rects.contains(&r(0, 0, 640, 464)));
}

/// A front-end that applies what it takes (copy, then paint from the frame) always ends with the frame's
/// pixels, however scrolls, small changes, new pictures and takes interleave.
#[test]
fn a_copying_front_end_always_shows_the_frame() {
    let (w, h) = (320, 240);
    let source = Scripted::new(text_frame(w, h, 40));
    let hub = DisplayHub::new(source.clone(), "guest");
    let c = hub.subscribe();
    c.accept_moves(true);
    let mut picture = vec![0u32; (w * h) as usize];
    let mut rng = Rng(41);
    let mut moves = 0;
    for step in 0..400 {
        let old = source.picture();
        match rng.next() % 6 {
            0 | 1 => {
                // A scroll of a band, up or down, by 1..48 rows.
                let top = (rng.next() % 40) as u32;
                let bottom = h - (rng.next() % 40) as u32;
                let x0 = (rng.next() % 40) as u32 * 2;
                let x1 = w - (rng.next() % 40) as u32;
                let k = (rng.next() % 48) as i32 + 1;
                let k = if rng.next().is_multiple_of(2) { k } else { -k };
                let new = scrolled(&old, top, bottom, x0, x1, k, &text_frame(w, h, step));
                source.show(new, vec![r(x0, top, x1 - x0, bottom - top)]);
            }
            2 | 3 => {
                // A small box.
                let mut new = old;
                let b = r(
                    (rng.next() % (u64::from(w) - 20)) as u32,
                    (rng.next() % (u64::from(h) - 20)) as u32,
                    (rng.next() % 20) as u32 + 1,
                    (rng.next() % 20) as u32 + 1,
                );
                let colour = rng.next() as u32 & 0x00FF_FFFF;
                for y in b.y..b.bottom() {
                    for x in b.x..b.right() {
                        new.pixels[(y * w + x) as usize] = colour;
                    }
                }
                source.show(new, vec![b]);
            }
            4 => source.show(text_frame(w, h, step + 1000), vec![Rect::full(w, h)]),
            _ => {}
        }
        hub.refresh();
        if rng.next().is_multiple_of(3) {
            continue; // the front-end is slow this time
        }
        let ch = c.take();
        let frame = hub.frame();
        if let Some(m) = &ch.moved {
            apply_move(&mut picture, w, m);
            moves += 1;
        }
        paint(&mut picture, &frame, &ch.rects);
        assert!(picture == frame.pixels, "wrong pixels after step {step}");
    }
    assert!(moves > 20, "only {moves} moves were found");
}

/// A source whose picture never changes after the first render.
struct Still(Mutex<bool>);
impl DisplaySource for Still {
    fn refresh(&self, frame: &mut Frame) -> Vec<Rect> {
        let mut drawn = self.0.lock().unwrap();
        if frame.resize(4, 4) || !*drawn {
            *drawn = true;
            return vec![Rect::full(4, 4)];
        }
        Vec::new()
    }
}

#[test]
fn refresh_is_fast_after_input_and_slow_when_idle() {
    use crate::timer::Timed;
    let hub = DisplayHub::new(Arc::new(Still(Mutex::new(false))), "guest");
    let refresh = DisplayRefresh::new(hub.clone());
    let _consumer = hub.subscribe();
    // Idle: nothing happened within the active window → the normal period.
    *hub.activity.lock().unwrap() = None;
    assert_eq!(refresh.advance(0), Some(REFRESH_PERIOD_NS));
    hub.note_input();
    assert_eq!(refresh.advance(10), Some(10 + ACTIVE_REFRESH_PERIOD_NS));
    *hub.activity.lock().unwrap() =
        Some(std::time::Instant::now() - ACTIVE_WINDOW - std::time::Duration::from_millis(1));
    assert_eq!(refresh.advance(20), Some(20 + REFRESH_PERIOD_NS));
}
