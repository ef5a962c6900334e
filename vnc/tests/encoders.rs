//! Every encoder, round-tripped through the independent decoders in `common::decode`, for many pixel formats
//! and picture shapes.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{expected_value, formats, noise, picture, Decoder};
use vnc::encodings::{hextile, raw, tight, zrle};
use vnc::pixel::PixelWriter;

/// Pictures that exercise each encoder's branches.
fn pictures() -> Vec<(&'static str, u32, u32, Vec<u32>)> {
    let mut s = 99u64;
    let noise_px: Vec<u32> = (0..70 * 33).map(|_| noise(&mut s)).collect();
    let few: Vec<u32> = (0..130 * 70)
        .map(|i| [0x0010_2030, 0x00FF_EEDD, 0x0000_7F00][(i / 5 % 3) as usize])
        .collect();
    let many_runs: Vec<u32> = (0..200 * 40)
        .map(|i| (i / 37 % 200) * 0x0001_0101)
        .collect();
    // Hextile tiles: two colours, three colours (coloured subrects), two colours with the first tile's
    // foreground again: the foreground must be re-sent after a coloured tile.
    let fg_carry: Vec<u32> = (0..48 * 16)
        .map(|i| {
            let (x, y) = (i % 48, i / 48);
            match (x / 16, (x + y) % 5) {
                (1, 0) => 0x0000_00FF,
                (_, 0 | 1) => 0x00FF_0000,
                _ => 0x0000_0000,
            }
        })
        .collect();
    vec![
        ("hextile-fg-carry", 48, 16, fg_carry),
        ("1x1", 1, 1, vec![0x0012_3456]),
        ("solid", 40, 20, vec![0x00AB_CDEF; 800]),
        ("picture", 150, 90, picture(150, 90, 3)),
        ("noise-odd", 70, 33, noise_px),
        ("three-colours", 130, 70, few),
        ("long-runs-200-colours", 200, 40, many_runs),
        ("tall", 3, 300, picture(3, 300, 5)),
    ]
}

fn expected(f: &vnc::PixelFormat, px: &[u32]) -> Vec<u32> {
    px.iter().map(|&p| expected_value(f, p)).collect()
}

#[test]
fn raw_round_trips() {
    for (fname, f) in formats() {
        let pw = PixelWriter::new(f);
        for (pname, w, h, px) in pictures() {
            let mut values = Vec::new();
            pw.convert(&px, &mut values);
            assert_eq!(values, expected(&f, &px), "conversion {fname} {pname}");
            let mut out = Vec::new();
            raw::encode(&values, &pw, &mut out);
            let got = Decoder::new(f)
                .decode(0, w as usize, h as usize, &mut &out[..])
                .unwrap();
            assert_eq!(got, values, "{fname} {pname}");
        }
    }
}

#[test]
fn hextile_round_trips() {
    for (fname, f) in formats() {
        let pw = PixelWriter::new(f);
        // One stream of rectangles, as on a connection (hextile has no cross-rectangle state, but check anyway).
        for (pname, w, h, px) in pictures() {
            let mut values = Vec::new();
            pw.convert(&px, &mut values);
            let mut out = Vec::new();
            hextile::encode(&values, w as usize, h as usize, &pw, &mut out);
            let mut r = &out[..];
            let got = Decoder::new(f)
                .decode(5, w as usize, h as usize, &mut r)
                .unwrap();
            assert!(r.is_empty(), "{fname} {pname}: trailing bytes");
            assert_eq!(got, values, "{fname} {pname}");
            assert!(
                out.len()
                    <= values.len() * pw.bytes_per_pixel() + values.len().div_ceil(256) * 2 + 16
            );
        }
    }
}

#[test]
fn zrle_round_trips_through_one_stream() {
    for (fname, f) in formats() {
        let pw = PixelWriter::new(f);
        let mut enc = zrle::ZrleEncoder::new(6);
        let mut dec = Decoder::new(f);
        // All rectangles through the same zlib streams, in order, as on a connection.
        for (pname, w, h, px) in pictures().into_iter().chain(pictures()) {
            let mut values = Vec::new();
            pw.convert(&px, &mut values);
            let mut out = Vec::new();
            enc.encode(&values, w as usize, h as usize, &pw, &mut out)
                .unwrap();
            let mut r = &out[..];
            let got = dec.decode(16, w as usize, h as usize, &mut r).unwrap();
            assert!(r.is_empty(), "{fname} {pname}: trailing bytes");
            assert_eq!(got, values, "{fname} {pname}");
        }
    }
}

#[test]
fn tight_round_trips_through_its_streams() {
    for (fname, f) in formats() {
        let pw = PixelWriter::new(f);
        let mut enc = tight::TightEncoder::new(6);
        let mut dec = Decoder::new(f);
        for (pname, w, h, px) in pictures().into_iter().chain(pictures()) {
            let mut values = Vec::new();
            pw.convert(&px, &mut values);
            for (x, y, pw_, ph) in tight::split(0, 0, w as usize, h as usize) {
                let piece: Vec<u32> = (y..y + ph)
                    .flat_map(|yy| values[yy * w as usize + x..yy * w as usize + x + pw_].to_vec())
                    .collect();
                let mut out = Vec::new();
                enc.encode(&piece, pw_, ph, &pw, &mut out).unwrap();
                let mut r = &out[..];
                let got = dec.decode(7, pw_, ph, &mut r).unwrap();
                assert!(r.is_empty(), "{fname} {pname}: trailing bytes");
                assert_eq!(got, piece, "{fname} {pname}");
            }
        }
    }
}

#[test]
fn tight_splits_wide_rectangles() {
    let f = vnc::PixelFormat::NATIVE;
    let pw = PixelWriter::new(f);
    let (w, h) = (3000usize, 40usize);
    let px = picture(w as u32, h as u32, 11);
    let mut values = Vec::new();
    pw.convert(&px, &mut values);
    let mut enc = tight::TightEncoder::new(1);
    let mut dec = Decoder::new(f);
    let mut rebuilt = vec![0u32; w * h];
    for (x, y, pw_, ph) in tight::split(0, 0, w, h) {
        let piece: Vec<u32> = (y..y + ph)
            .flat_map(|yy| values[yy * w + x..yy * w + x + pw_].to_vec())
            .collect();
        let mut out = Vec::new();
        enc.encode(&piece, pw_, ph, &pw, &mut out).unwrap();
        let got = dec.decode(7, pw_, ph, &mut &out[..]).unwrap();
        for yy in 0..ph {
            rebuilt[(y + yy) * w + x..(y + yy) * w + x + pw_]
                .copy_from_slice(&got[yy * pw_..yy * pw_ + pw_]);
        }
    }
    assert_eq!(rebuilt, values);
}

#[test]
fn compressing_encoders_beat_raw_on_flat_pictures() {
    let f = vnc::PixelFormat::NATIVE;
    let pw = PixelWriter::new(f);
    let (w, h) = (256usize, 128usize);
    let px: Vec<u32> = (0..w * h)
        .map(|i| {
            if (i / w) % 16 < 8 {
                0x0080_8080
            } else {
                0x00FF_FFFF
            }
        })
        .collect();
    let mut values = Vec::new();
    pw.convert(&px, &mut values);
    let raw_len = values.len() * 4;
    let mut out = Vec::new();
    hextile::encode(&values, w, h, &pw, &mut out);
    assert!(out.len() * 20 < raw_len, "hextile {}", out.len());
    out.clear();
    zrle::ZrleEncoder::new(6)
        .encode(&values, w, h, &pw, &mut out)
        .unwrap();
    assert!(out.len() * 100 < raw_len, "zrle {}", out.len());
    out.clear();
    let mut t = tight::TightEncoder::new(6);
    for (x, y, pw_, ph) in tight::split(0, 0, w, h) {
        let piece: Vec<u32> = (y..y + ph)
            .flat_map(|yy| values[yy * w + x..yy * w + x + pw_].to_vec())
            .collect();
        t.encode(&piece, pw_, ph, &pw, &mut out).unwrap();
    }
    assert!(out.len() * 100 < raw_len, "tight {}", out.len());
}
