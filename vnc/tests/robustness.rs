//! Hostile and broken clients: each must only lose its own connection, and the server must keep serving.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use common::*;

/// A fresh client still gets a full, correct screen.
fn still_serves(st: &Setup) {
    let mut c = Client::simple(st.server.local_addr());
    c.set_encodings(&[16]);
    c.request_all(false);
    let rects = c.read_update().unwrap();
    assert_eq!(covered(&rects), u64::from(c.width) * u64::from(c.height));
    check_rects(
        &rects,
        &st.source.pixels(),
        u32::from(c.width),
        &vnc::PixelFormat::NATIVE,
    );
}

fn set_pixel_format_bytes(bpp: u8, shift: u8) -> Vec<u8> {
    let mut f = vnc::PixelFormat::NATIVE.to_bytes();
    f[0] = bpp;
    f[10] = shift;
    let mut m = vec![0, 0, 0, 0];
    m.extend_from_slice(&f);
    m
}

#[test]
fn bad_messages_close_only_that_connection() {
    let st = setup();
    let mut sds = vec![251, 0, 0, 10, 0, 10, 1, 0];
    sds.extend_from_slice(&[0; 16]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown type", vec![7, 1, 2, 3]),
        ("unknown QEMU subtype", vec![255, 9, 0, 0]),
        ("huge cut text", vec![6, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF]),
        (
            "extended clipboard length",
            vec![6, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xF0],
        ),
        ("too many encodings", vec![2, 0, 0xFF, 0xFF]),
        ("24 bpp", set_pixel_format_bytes(24, 16)),
        ("shift outside the pixel", set_pixel_format_bytes(16, 16)),
        ("SetDesktopSize without ExtendedDesktopSize", sds),
    ];
    for (what, bytes) in cases {
        let mut c = Client::simple(st.server.local_addr());
        c.s.write_all(&bytes).unwrap();
        assert!(
            closed_by_server(&mut c.s),
            "{what}: connection should close"
        );
        still_serves(&st);
    }
    wait_clients(&st.server, 0);
}

#[test]
fn allowed_cut_text_is_read_and_dropped() {
    let st = setup();
    let mut c = Client::simple(st.server.local_addr());
    let len = 300_000u32;
    let mut m = vec![6, 0, 0, 0];
    m.extend_from_slice(&len.to_be_bytes());
    m.resize(m.len() + len as usize, b'x');
    c.s.write_all(&m).unwrap();
    c.request_all(false);
    assert_eq!(covered(&c.read_update().unwrap()), 96 * 64);
}

#[test]
fn truncated_messages_then_eof_close_cleanly() {
    let st = setup();
    let messages: Vec<Vec<u8>> = vec![
        set_pixel_format_bytes(32, 16),
        vec![2, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0],
        vec![3, 0, 0, 0, 0, 0, 0, 10, 0, 10],
        vec![4, 1, 0, 0, 0, 0, 0, 0x61],
        vec![5, 1, 0, 1, 0, 1],
        vec![6, 0, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4],
        vec![255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1E],
    ];
    for m in &messages {
        for cut in [1, m.len() / 2, m.len() - 1] {
            let mut c = Client::simple(st.server.local_addr());
            c.s.write_all(&m[..cut]).unwrap();
            c.s.shutdown(Shutdown::Write).unwrap();
            assert!(closed_by_server(&mut c.s), "{m:?} cut at {cut}");
        }
    }
    // No half-read key or pointer event reached the guest.
    assert!(st.input.take().is_empty());
    wait_clients(&st.server, 0);
    still_serves(&st);
}

#[test]
fn a_client_stalling_inside_a_message_is_dropped() {
    let mut cfg = config();
    cfg.io_timeout = Duration::from_millis(500);
    let st = setup_with(cfg, 32, 32);
    let mut c = Client::simple(st.server.local_addr());
    let start = Instant::now();
    c.s.write_all(&[3, 0, 0]).unwrap(); // 3 of 10 bytes, then nothing
    assert!(closed_by_server(&mut c.s));
    assert!(start.elapsed() >= Duration::from_millis(400));
    // A client that is merely quiet between messages stays.
    let mut quiet = Client::simple(st.server.local_addr());
    quiet.expect_silence(Duration::from_millis(1200));
    quiet.request_all(false);
    assert_eq!(covered(&quiet.read_update().unwrap()), 32 * 32);
}

#[test]
fn a_silent_handshake_times_out() {
    let mut cfg = config();
    cfg.io_timeout = Duration::from_millis(300);
    let st = setup_with(cfg, 8, 8);
    let mut s = tcp(st.server.local_addr());
    let start = Instant::now();
    assert!(closed_by_server(&mut s));
    assert!(start.elapsed() < WAIT);
    // Trickling one byte at a time does not extend the handshake past its deadline.
    let mut s = tcp(st.server.local_addr());
    let start = Instant::now();
    let mut closed = false;
    for b in b"RFB 003.008\n".iter().cycle().take(200) {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if start.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    assert!(closed || closed_by_server(&mut s));
    assert!(start.elapsed() < Duration::from_secs(5));
    still_serves(&st);
}

#[test]
fn a_client_that_stops_reading_is_dropped_without_blocking_others() {
    let mut cfg = config();
    cfg.io_timeout = Duration::from_millis(500);
    let st = setup_with(cfg, 1024, 768);
    let mut slow = Client::simple(st.server.local_addr());
    slow.set_encodings(&[0]);
    let other = Client::simple(st.server.local_addr());
    drop(other);
    // The guest keeps changing the whole screen and the client keeps asking for raw updates (3 MiB each) but
    // never reads: the socket buffers fill, the server's write stalls and the client is dropped. The guest side
    // keeps refreshing meanwhile, never blocked by it.
    let full = devices::display::Rect::full(1024, 768);
    let deadline = Instant::now() + WAIT;
    let mut colour = 0u32;
    while st.server.client_count() > 0 {
        assert!(Instant::now() < deadline, "stalled client not dropped");
        colour = colour.wrapping_add(0x0001_0203) & 0x00FF_FFFF;
        st.source.fill(full, colour);
        st.hub.refresh();
        let _ = slow.s.write_all(&[3, 1, 0, 0, 0, 0, 4, 0, 3, 0]);
        std::thread::sleep(Duration::from_millis(20));
    }
    still_serves(&st);
}

#[test]
fn connections_beyond_the_limit_are_closed() {
    let mut cfg = config();
    cfg.max_clients = 2;
    let st = setup_with(cfg, 8, 8);
    let a = Client::simple(st.server.local_addr());
    let b = Client::simple(st.server.local_addr());
    let mut c = tcp(st.server.local_addr());
    assert!(closed_by_server(&mut c));
    drop((a, b));
    wait_clients(&st.server, 0);
    // Slots are given back once clients leave.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut s = tcp(st.server.local_addr());
        let mut v = [0u8; 12];
        if s.read_exact(&mut v).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn disconnect_in_every_protocol_state() {
    let mut cfg = config();
    cfg.password = Some("pw".into());
    let st = setup_with(cfg, 64, 48);
    let addr = st.server.local_addr();
    // (bytes to send after reading the server's greeting, bytes to read first)
    let steps: Vec<Vec<u8>> = vec![
        vec![],
        b"RFB 003.008\n".to_vec(),
        b"RFB 003.008\n\x02".to_vec(),
        b"RFB 003.008\n\x02\x00\x01".to_vec(),
    ];
    for pre in &steps {
        let mut s = tcp(addr);
        let mut v = [0u8; 12];
        s.read_exact(&mut v).unwrap();
        s.write_all(pre).unwrap();
        drop(s);
    }
    // Past the handshake: after ClientInit, after SetEncodings, with a request outstanding, mid-update,
    // and with a key and a button held down.
    for stage in 0..5 {
        let mut c = Client::connect(addr, b"RFB 003.008\n", Some("pw"), true).unwrap();
        if stage >= 1 {
            c.set_encodings(&[16, 0]);
        }
        if stage >= 2 {
            c.request_all(false);
        }
        if stage >= 3 {
            let mut part = [0u8; 10];
            c.s.read_exact(&mut part).unwrap();
        }
        if stage == 4 {
            c.key(true, 0x61);
            c.pointer(1, 5, 5);
            st.input.wait_for(2);
        }
        drop(c);
    }
    wait_clients(&st.server, 0);
    // The held key and button were released when that client went away.
    let ev = st.input.wait_for(4);
    assert!(ev.contains(&Event::Key(0x1E, false)), "{ev:?}");
    assert!(ev.contains(&Event::Abs(5, 5, 64, 48, 0)), "{ev:?}");
    let mut c = Client::connect(addr, b"RFB 003.008\n", Some("pw"), true).unwrap();
    c.request_all(false);
    assert_eq!(covered(&c.read_update().unwrap()), 64 * 48);
}

#[test]
fn random_bytes_after_the_handshake_never_hurt_the_server() {
    let st = setup();
    let mut seed = 0x1234_5678_9ABC_DEF1u64;
    for round in 0..30 {
        let mut c = Client::simple(st.server.local_addr());
        let mut junk = Vec::new();
        for _ in 0..512 {
            junk.extend_from_slice(&noise(&mut seed).to_le_bytes()[..2]);
        }
        // Steer the first byte to known message types half of the time.
        if round % 2 == 0 {
            junk[0] = [0, 2, 3, 4, 5, 6, 251, 255][round / 2 % 8];
        }
        let _ = c.s.write_all(&junk);
        let _ = c.s.shutdown(Shutdown::Write);
        // Drain until the server hangs up (it may send updates first if the junk asked for them).
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + WAIT;
        loop {
            match c.s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => assert!(Instant::now() < deadline, "server kept the connection"),
            }
        }
    }
    wait_clients(&st.server, 0);
    still_serves(&st);
}
