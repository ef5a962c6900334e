//! CopyRect over real sockets: the guest's screen scrolls, clients that list CopyRect get a copy plus the new
//! rows and end with exactly the server's frame; clients that do not get plain rectangles. Also the byte counts
//! a one-line scroll of a 1024x768 text screen costs with and without CopyRect.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use devices::display::Rect;
use vnc::PixelFormat;

/// xorshift, for deterministic text.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A `w` × `h` text screen: 8×16 cells, about half holding a random glyph in one of a few colours, on blue.
fn text(w: u32, h: u32, seed: u64) -> Vec<u32> {
    let mut rng = Rng(seed | 1);
    let mut px = vec![0x0000_00AAu32; (w * h) as usize];
    for cy in 0..h / 16 {
        for cx in 0..w / 8 {
            if rng.next().is_multiple_of(2) {
                continue;
            }
            let colour = [0x00AA_AAAA, 0x00FF_FFFF, 0x00FF_FF55][(rng.next() % 3) as usize];
            for y in 2..14 {
                let bits = rng.next() as u8;
                for x in 0..8 {
                    if bits & (0x80 >> x) != 0 {
                        px[((cy * 16 + y) * w + cx * 8 + x) as usize] = colour;
                    }
                }
            }
        }
    }
    px
}

/// `old` with rows `top..bottom` of columns `x0..x1` scrolled up by `k` rows (down if negative), the exposed
/// rows taken from `fill`.
fn scrolled(
    old: &[u32],
    w: u32,
    (top, bottom): (u32, u32),
    (x0, x1): (u32, u32),
    k: i32,
    fill: &[u32],
) -> Vec<u32> {
    let mut new = old.to_vec();
    let len = (x1 - x0) as usize;
    for y in top..bottom {
        let s = i64::from(y) + i64::from(k);
        let (from, sy) = if (i64::from(top)..i64::from(bottom)).contains(&s) {
            (old, s as u32)
        } else {
            (fill, y)
        };
        let (d, o) = ((y * w + x0) as usize, (sy * w + x0) as usize);
        new[d..d + len].copy_from_slice(&from[o..o + len]);
    }
    new
}

/// A server showing a `w` × `h` text screen.
fn text_setup(w: u32, h: u32) -> Setup {
    let st = setup_with(config(), w, h);
    st.source.show(text(w, h, 99), vec![Rect::full(w, h)]);
    st.hub.refresh();
    st
}

/// Scrolls the whole screen of `st` up by `k` rows and refreshes the hub.
fn scroll_screen(st: &Setup, w: u32, h: u32, k: i32, seed: u64) {
    let new = scrolled(&st.source.pixels(), w, (0, h), (0, w), k, &text(w, h, seed));
    st.source.show(new, vec![Rect::full(w, h)]);
    st.hub.refresh();
}

/// A client with `encodings` in format `f` that received the whole screen.
fn connected(st: &Setup, f: PixelFormat, encodings: &[i32]) -> (Client, Screen) {
    let mut c = Client::simple(st.server.local_addr());
    c.set_pixel_format(f);
    c.set_encodings(encodings);
    c.request_all(false);
    let mut screen = Screen::new(c.width, c.height);
    let rects = c.read_update().unwrap();
    assert!(rects.iter().all(|r| r.encoding != 1));
    screen.apply(&rects);
    screen.assert_shows(&st.source.pixels(), &f, "first update");
    (c, screen)
}

fn copy_rects(rects: &[UpdateRect]) -> Vec<(u16, u16, u16, u16, u32, u32)> {
    rects
        .iter()
        .filter(|r| r.encoding == 1)
        .map(|r| (r.x, r.y, r.w, r.h, r.data[0], r.data[1]))
        .collect()
}

#[test]
fn scrolls_arrive_as_copyrect_and_the_client_screen_matches_the_frame() {
    let (w, h) = (320u32, 240u32);
    let st = text_setup(w, h);
    let rgb565 = formats()
        .into_iter()
        .find(|(n, _)| *n == "rgb565le")
        .unwrap()
        .1;
    for enc in [0, 5, 16, 7] {
        for f in [PixelFormat::NATIVE, rgb565] {
            let what = format!("encoding {enc}, {}-bpp", f.bits_per_pixel);
            let (mut c, mut screen) = connected(&st, f, &[1, enc]);
            // One text line up: copy 224 rows from row 16, paint the new bottom line.
            scroll_screen(&st, w, h, 16, u64::from(enc as u32) * 10 + 1);
            c.request_all(true);
            let rects = c.read_update().unwrap();
            assert_eq!(rects[0].encoding, 1, "{what}: CopyRect comes first");
            assert_eq!(copy_rects(&rects), vec![(0, 0, 320, 224, 0, 16)], "{what}");
            assert_eq!(
                covered(&rects),
                u64::from(w) * 16,
                "{what}: only the new line"
            );
            assert!(rects.iter().skip(1).all(|r| r.encoding == enc));
            screen.apply(&rects);
            screen.assert_shows(&st.source.pixels(), &f, &what);
            // One pixel row up.
            scroll_screen(&st, w, h, 1, u64::from(enc as u32) * 10 + 2);
            c.request_all(true);
            let rects = c.read_update().unwrap();
            assert_eq!(copy_rects(&rects), vec![(0, 0, 320, 239, 0, 1)], "{what}");
            screen.apply(&rects);
            screen.assert_shows(&st.source.pixels(), &f, &what);
            // A window scrolls back down by two lines.
            let new = scrolled(
                &st.source.pixels(),
                w,
                (16, 224),
                (40, 280),
                -32,
                &text(w, h, 77),
            );
            st.source.show(
                new,
                vec![Rect {
                    x: 40,
                    y: 16,
                    w: 240,
                    h: 208,
                }],
            );
            st.hub.refresh();
            c.request_all(true);
            let rects = c.read_update().unwrap();
            let copies = copy_rects(&rects);
            assert_eq!(copies.len(), 1, "{what}");
            let (x, y, cw, ch, sx, sy) = copies[0];
            assert_eq!((x, cw, sx, y + ch), (40, 240, 40, 224), "{what}");
            assert_eq!(u32::from(y), sy + 32, "{what}");
            screen.apply(&rects);
            screen.assert_shows(&st.source.pixels(), &f, &what);
            // A small change is just a rectangle.
            st.source.fill(
                Rect {
                    x: 3,
                    y: 5,
                    w: 7,
                    h: 9,
                },
                0x0012_3456,
            );
            st.hub.refresh();
            c.request_all(true);
            let rects = c.read_update().unwrap();
            assert!(copy_rects(&rects).is_empty());
            screen.apply(&rects);
            screen.assert_shows(&st.source.pixels(), &f, &what);
        }
    }
}

#[test]
fn clients_without_copyrect_get_plain_rectangles() {
    let (w, h) = (320u32, 240u32);
    let st = text_setup(w, h);
    let f = PixelFormat::NATIVE;
    let (mut copier, mut copier_screen) = connected(&st, f, &[1, 16]);
    let (mut painter, mut painter_screen) = connected(&st, f, &[16, 0]);
    for (i, k) in [16, 1, -16, 48].into_iter().enumerate() {
        scroll_screen(&st, w, h, k, 500 + i as u64);
        copier.request_all(true);
        painter.request_all(true);
        let rc = copier.read_update().unwrap();
        let rp = painter.read_update().unwrap();
        assert_eq!(copy_rects(&rc).len(), 1, "scroll by {k}");
        assert!(rp.iter().all(|r| r.encoding == 16), "scroll by {k}");
        assert_eq!(covered(&rp), u64::from(w * h));
        copier_screen.apply(&rc);
        painter_screen.apply(&rp);
        copier_screen.assert_shows(&st.source.pixels(), &f, "copier");
        painter_screen.assert_shows(&st.source.pixels(), &f, "painter");
        let (a, b) = (copier.last_update_bytes, painter.last_update_bytes);
        assert!(
            a * 2 < b,
            "scroll by {k}: {a} bytes with CopyRect, {b} without"
        );
    }
}

/// After a mode change the client is told the new size first; scrolls in the new mode are copies in it.
#[test]
fn scrolls_after_a_mode_change_use_the_new_size() {
    let st = text_setup(320, 240);
    let f = PixelFormat::NATIVE;
    let (mut c, _) = connected(&st, f, &[1, 16, -223]);
    // Scroll, then change mode before the client asks: the move belongs to the old mode and is dropped.
    scroll_screen(&st, 320, 240, 16, 800);
    st.source.resize(256, 192, text(256, 192, 801));
    st.hub.refresh();
    c.request_all(true);
    let rects = c.read_update().unwrap();
    assert_eq!(rects.len(), 1);
    assert_eq!(
        (rects[0].encoding, rects[0].w, rects[0].h),
        (-223, 256, 192)
    );
    let mut screen = Screen::new(256, 192);
    c.request_all(true);
    let rects = c.read_update().unwrap();
    assert!(copy_rects(&rects).is_empty());
    screen.apply(&rects);
    screen.assert_shows(&st.source.pixels(), &f, "new mode");
    scroll_screen(&st, 256, 192, 16, 802);
    c.request_all(true);
    let rects = c.read_update().unwrap();
    assert_eq!(copy_rects(&rects), vec![(0, 0, 256, 176, 0, 16)]);
    screen.apply(&rects);
    screen.assert_shows(&st.source.pixels(), &f, "scrolled in the new mode");
}

/// A change the client has not received yet (outside the area it asked for) lies in the source of a scroll:
/// the copy carries the client's stale pixels along, so those rows are repainted where they land.
#[test]
fn unsent_changes_inside_the_scrolled_area_are_repainted_where_they_land() {
    let (w, h) = (320u32, 240u32);
    let st = text_setup(w, h);
    let f = PixelFormat::NATIVE;
    let (mut c, mut screen) = connected(&st, f, &[1, 5]);
    // A change near the bottom, then a request for the top 224 rows only: nothing to send yet.
    st.source.fill(
        Rect {
            x: 100,
            y: 228,
            w: 20,
            h: 4,
        },
        0x00FF_0000,
    );
    st.hub.refresh();
    c.request(true, 0, 0, 320, 224);
    c.expect_silence(std::time::Duration::from_millis(200));
    // The screen scrolls a line: the copy into rows 0..224 is inside the requested area.
    scroll_screen(&st, w, h, 16, 600);
    let rects = c.read_update().unwrap();
    assert_eq!(copy_rects(&rects), vec![(0, 0, 320, 224, 0, 16)]);
    assert!(
        rects
            .iter()
            .any(|r| r.encoding == 5 && (r.y..r.y + r.h).contains(&212)),
        "the red box's new place is repainted: {:?}",
        rects
            .iter()
            .map(|r| (r.x, r.y, r.w, r.h))
            .collect::<Vec<_>>()
    );
    screen.apply(&rects);
    let expected = st.source.pixels();
    let top = (224 * w) as usize;
    let mut top_screen = Screen::new(w as u16, 224);
    top_screen.px = screen.px[..top].to_vec();
    top_screen.assert_shows(&expected[..top], &f, "requested area");
    // The rest follows on the next request.
    c.request_all(true);
    screen.apply(&c.read_update().unwrap());
    screen.assert_shows(&expected, &f, "whole screen");
}

/// Bytes for a one-line scroll of a 1024x768 text screen, per encoding, with and without CopyRect, and for
/// three one-line scrolls in three refreshes before the client asks (the moves are composed into one copy)
/// (`cargo test -p vnc --test copyrect -- --nocapture` prints them).
#[test]
fn a_one_line_scroll_costs_a_copy_and_one_line() {
    let (w, h) = (1024u32, 768u32);
    let st = text_setup(w, h);
    let f = PixelFormat::NATIVE;
    println!("{w}x{h} text screen, 32 bpp: bytes of the update after the screen scrolled");
    println!("| encoding | 1 line, CopyRect | 1 line, without | 3 lines in 3 refreshes, CopyRect | without |");
    println!("|---|---|---|---|---|");
    for (name, enc) in [("Raw", 0), ("Hextile", 5), ("ZRLE", 16), ("Tight", 7)] {
        let (mut with, mut with_screen) = connected(&st, f, &[1, enc]);
        let (mut without, mut without_screen) = connected(&st, f, &[enc]);
        let mut bytes = Vec::new();
        for lines in [1, 3] {
            for i in 0..lines {
                scroll_screen(&st, w, h, 16, 700 + enc as u64 * 10 + i);
            }
            with.request_all(true);
            without.request_all(true);
            let rw = with.read_update().unwrap();
            let ro = without.read_update().unwrap();
            with_screen.apply(&rw);
            without_screen.apply(&ro);
            with_screen.assert_shows(&st.source.pixels(), &f, name);
            without_screen.assert_shows(&st.source.pixels(), &f, name);
            assert_eq!(
                copy_rects(&rw),
                vec![(0, 0, 1024, 768 - 16 * lines as u16, 0, 16 * lines as u32)]
            );
            // With CopyRect the pixels sent are the new lines only.
            assert_eq!(covered(&rw), u64::from(w) * 16 * lines);
            let (a, b) = (with.last_update_bytes, without.last_update_bytes);
            assert!(
                a * 10 < b,
                "{name}, {lines} lines: {a} bytes with CopyRect, {b} without"
            );
            bytes.push((a, b));
        }
        println!(
            "| {name} | {} | {} | {} | {} |",
            bytes[0].0, bytes[0].1, bytes[1].0, bytes[1].1
        );
    }
}

/// Scrolls that follow each other closely: the client has asked for an update, the screen scrolls twice in
/// quick succession (so the writer, woken by the first refresh, works while the second renders), then a marker
/// pixel changes; once the client sees the marker it must show exactly the frame. This holds only because the
/// hub tells consumers about a refresh before releasing the frame, and the writer takes changes and copies
/// pixels under one read lock: otherwise the client gets pixels of the second scroll with the first's changes,
/// and the second scroll's CopyRect then copies them again.
#[test]
fn back_to_back_scrolls_leave_the_client_with_the_frame() {
    let (w, h) = (320u32, 240u32);
    let st = text_setup(w, h);
    let f = PixelFormat::NATIVE;
    let (mut c, mut screen) = connected(&st, f, &[1, 16]);
    let mut rng = Rng(5);
    let mut copies = 0;
    for round in 0..24u32 {
        let mut pictures = Vec::new();
        let mut old = st.source.pixels();
        let up = rng.next().is_multiple_of(2);
        for i in 0..2 {
            let k = (rng.next() % 24) as i32 + 1;
            let top = 8 + (rng.next() % 24) as u32;
            let seed = u64::from(round) * 2 + i;
            let new = scrolled(
                &old,
                w,
                (top, h),
                (0, w),
                if up { k } else { -k },
                &text(w, h, seed),
            );
            pictures.push((new.clone(), top));
            old = new;
        }
        c.request_all(true);
        std::thread::sleep(std::time::Duration::from_millis(20));
        for (pixels, top) in pictures {
            let band = Rect {
                x: 0,
                y: top,
                w,
                h: h - top,
            };
            st.source.show(pixels, vec![band]);
            st.hub.refresh();
        }
        let marker = 0x0010_0000 | round;
        st.source.fill(
            Rect {
                x: 0,
                y: 0,
                w: 1,
                h: 1,
            },
            marker,
        );
        st.hub.refresh();
        loop {
            let rects = c.read_update().unwrap();
            copies += copy_rects(&rects).len();
            screen.apply(&rects);
            if screen.px[0] == expected_value(&f, marker) {
                break;
            }
            c.request_all(true);
        }
        screen.assert_shows(&st.source.pixels(), &f, &format!("round {round}"));
    }
    println!("{copies} CopyRects in 24 rounds");
    assert!(copies >= 12, "only {copies} CopyRects");
}
