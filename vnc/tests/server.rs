//! The server over real loopback sockets: handshakes, updates, input, pseudo-encodings, several clients.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use devices::display::Rect;
use vnc::{Keymap, PixelFormat, SharePolicy};

const VERSIONS: [&[u8; 12]; 3] = [b"RFB 003.003\n", b"RFB 003.007\n", b"RFB 003.008\n"];

#[test]
fn every_version_without_password_reaches_server_init() {
    let st = setup();
    for v in VERSIONS {
        let c = Client::connect(st.server.local_addr(), v, None, true).unwrap();
        assert_eq!((c.width, c.height), (96, 64));
        assert_eq!(c.format, PixelFormat::NATIVE);
        assert_eq!(c.name, "test-guest");
    }
}

#[test]
fn every_version_with_password_good_and_wrong() {
    let mut cfg = config();
    cfg.password = Some("secret12".into());
    let st = setup_with(cfg, 32, 16);
    let addr = st.server.local_addr();
    for v in VERSIONS {
        let c = Client::connect(addr, v, Some("secret12"), true).unwrap();
        assert_eq!((c.width, c.height), (32, 16));
        // Only the first 8 bytes count.
        Client::connect(addr, v, Some("secret12-and-more"), true).unwrap();
        let err = Client::connect(addr, v, Some("secret13"), true)
            .err()
            .unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        if v == b"RFB 003.008\n" {
            assert_eq!(err.to_string(), "authentication failed");
        } else {
            assert_eq!(err.to_string(), "", "no reason before 3.8");
        }
    }
    // A failed login does not hurt the next one.
    let mut c = Client::connect(addr, b"RFB 003.008\n", Some("secret12"), true).unwrap();
    c.request_all(false);
    let rects = c.read_update().unwrap();
    assert_eq!(covered(&rects), 32 * 16);
}

#[test]
fn full_update_in_each_encoding_and_format() {
    let st = setup_with(config(), 150, 90);
    let source = st.source.pixels();
    for enc in [0, 5, 16, 7] {
        for (fname, f) in formats() {
            let mut c = Client::simple(st.server.local_addr());
            c.set_pixel_format(f);
            c.set_encodings(&[enc, 0]);
            c.request_all(false);
            let rects = c.read_update().unwrap();
            assert!(rects.iter().all(|r| r.encoding == enc), "{fname}: {enc}");
            assert_eq!(covered(&rects), 150 * 90, "{fname} {enc}");
            check_rects(&rects, &source, 150, &f);
            if !f.true_colour {
                let map = c.colour_map.as_ref().expect("colour map sent");
                assert_eq!(map.len(), 256);
                assert_eq!(map[0x07], [65535, 0, 0]);
            }
        }
    }
}

#[test]
fn incremental_updates_send_only_changes_and_only_when_asked() {
    let st = setup();
    let mut c = Client::simple(st.server.local_addr());
    c.set_encodings(&[16]);
    c.request_all(false);
    assert_eq!(covered(&c.read_update().unwrap()), 96 * 64);
    // Nothing changed: an incremental request is not answered.
    c.request_all(true);
    c.expect_silence(Duration::from_millis(300));
    let change = Rect {
        x: 10,
        y: 20,
        w: 5,
        h: 6,
    };
    st.source.fill(change, 0x00FF_0000);
    st.hub.refresh();
    let rects = c.read_update().unwrap();
    assert_eq!(rects.len(), 1);
    let r = &rects[0];
    assert_eq!((r.x, r.y, r.w, r.h), (10, 20, 5, 6));
    check_rects(&rects, &st.source.pixels(), 96, &PixelFormat::NATIVE);
    // A change while no request is outstanding is held back until the next request.
    st.source.fill(
        Rect {
            x: 0,
            y: 0,
            w: 2,
            h: 2,
        },
        0x0000_FF00,
    );
    st.hub.refresh();
    c.expect_silence(Duration::from_millis(300));
    c.request_all(true);
    let rects = c.read_update().unwrap();
    assert_eq!(covered(&rects), 4);
    // Requests for part of the screen get that part; the rest stays pending.
    st.source.fill(
        Rect {
            x: 0,
            y: 0,
            w: 96,
            h: 1,
        },
        0x0000_00FF,
    );
    st.hub.refresh();
    c.request(true, 0, 0, 48, 64);
    let rects = c.read_update().unwrap();
    assert_eq!(covered(&rects), 48);
    c.request(true, 48, 0, 48, 64);
    let rects = c.read_update().unwrap();
    assert_eq!(covered(&rects), 48);
    assert_eq!((rects[0].x, rects[0].y), (48, 0));
}

#[test]
fn two_clients_track_changes_independently() {
    let st = setup();
    let addr = st.server.local_addr();
    let mut a = Client::simple(addr);
    let mut b = Client::simple(addr);
    for c in [&mut a, &mut b] {
        c.set_encodings(&[5]);
        c.request_all(false);
        assert_eq!(covered(&c.read_update().unwrap()), 96 * 64);
    }
    let one = Rect {
        x: 0,
        y: 0,
        w: 4,
        h: 4,
    };
    let two = Rect {
        x: 80,
        y: 50,
        w: 8,
        h: 8,
    };
    st.source.fill(one, 0x0011_1111);
    st.hub.refresh();
    a.request_all(true);
    let ra = a.read_update().unwrap();
    assert_eq!(covered(&ra), 16);
    st.source.fill(two, 0x0022_2222);
    st.hub.refresh();
    a.request_all(true);
    let ra = a.read_update().unwrap();
    assert_eq!(covered(&ra), 64);
    assert_eq!((ra[0].x, ra[0].y), (80, 50));
    // B never asked in between, so it gets both changes.
    b.request_all(true);
    let rb = b.read_update().unwrap();
    assert_eq!(covered(&rb), 16 + 64);
    check_rects(&rb, &st.source.pixels(), 96, &PixelFormat::NATIVE);
    assert_eq!(st.server.client_count(), 2);
}

#[test]
fn keysyms_go_through_the_keymap() {
    let mut cfg = config();
    cfg.keymap = Keymap::De;
    let st = setup_with(cfg, 16, 16);
    let mut c = Client::simple(st.server.local_addr());
    c.key(true, u32::from(b'y'));
    c.key(false, u32::from(b'y'));
    c.key(true, 0xff52); // Up
    c.key(true, 0x1234_5678); // unknown: ignored
    c.key(false, 0xff52);
    let ev = st.input.wait_for(4);
    assert_eq!(
        ev,
        vec![
            Event::Key(0x2C, true),
            Event::Key(0x2C, false),
            Event::Key(0xE048, true),
            Event::Key(0xE048, false)
        ]
    );
}

#[test]
fn extended_key_events_are_acknowledged_and_carry_scancodes() {
    let st = setup();
    let mut c = Client::simple(st.server.local_addr());
    c.set_encodings(&[0, -258]);
    c.request_all(false);
    let rects = c.read_update().unwrap();
    assert!(rects.iter().any(|r| r.encoding == -258), "ack sent");
    c.ext_key(true, 0xff53, 0xCD); // Right arrow, E0 4D
    c.ext_key(true, 0x61, 0x1E);
    c.ext_key(false, 0x61, 0); // unknown keycode: keysym fallback
    c.ext_key(true, 0, 0xC6); // Pause
    let ev = st.input.wait_for(4);
    assert_eq!(
        ev,
        vec![
            Event::Key(0xE04D, true),
            Event::Key(0x1E, true),
            Event::Key(0x1E, false),
            Event::Key(0xE046, true)
        ]
    );
}

#[test]
fn pointer_absolute_and_relative_fallback() {
    let st = setup();
    let mut c = Client::simple(st.server.local_addr());
    c.pointer(1, 10, 20);
    c.pointer(0, 500, 500); // clamped to the screen
    assert_eq!(
        st.input.wait_for(2),
        vec![Event::Abs(10, 20, 96, 64, 1), Event::Abs(95, 63, 96, 64, 0)]
    );
    st.input.take();
    // No tablet: absolute positions become deltas.
    st.input.absolute.store(false, Ordering::SeqCst);
    c.pointer(0, 50, 50);
    c.pointer(0, 53, 45);
    c.pointer(8, 53, 45); // wheel up
    assert_eq!(
        st.input.wait_for(3),
        vec![
            Event::Rel(-450, -450, 0, 0),
            Event::Rel(3, -5, 0, 0),
            Event::Rel(0, 0, -1, 8)
        ]
    );
}

#[test]
fn pointer_motion_change_switches_capable_clients_to_relative() {
    let st = setup();
    st.input.absolute.store(false, Ordering::SeqCst);
    let mut c = Client::simple(st.server.local_addr());
    c.set_encodings(&[0, -257]);
    c.request_all(false);
    c.read_update().unwrap();
    c.pointer(0, 30, 30);
    st.input.wait_for(1);
    c.request_all(true);
    let rects = c.read_update().unwrap();
    let pm = rects
        .iter()
        .find(|r| r.encoding == -257)
        .expect("pointer mode change");
    assert_eq!(pm.x, 0, "0 = relative");
    st.input.take();
    c.pointer(0, 0x7FFF + 5, 0x7FFF - 3);
    assert_eq!(st.input.wait_for(1), vec![Event::Rel(5, -3, 0, 0)]);
}

#[test]
fn led_state_is_sent_and_follows_the_guest() {
    let st = setup();
    st.input.leds.store(0b010, Ordering::SeqCst);
    let mut c = Client::simple(st.server.local_addr());
    c.set_encodings(&[0, -261]);
    c.request_all(false);
    let rects = c.read_update().unwrap();
    let led = rects
        .iter()
        .find(|r| r.encoding == -261)
        .expect("LED state");
    assert_eq!(led.data, vec![0b010]);
    c.request_all(true);
    c.expect_silence(Duration::from_millis(200));
    st.input.leds.store(0b110, Ordering::SeqCst);
    let rects = c.read_update().unwrap();
    assert_eq!(rects.len(), 1);
    assert_eq!(rects[0].encoding, -261);
    assert_eq!(rects[0].data, vec![0b110]);
}

#[test]
fn mode_switch_sends_desktop_size_then_the_new_screen() {
    let st = setup();
    let mut c = Client::simple(st.server.local_addr());
    c.set_encodings(&[16, -223]);
    c.request_all(false);
    c.read_update().unwrap();
    st.source.resize(40, 30, picture(40, 30, 9));
    st.hub.refresh();
    c.request_all(true);
    let rects = c.read_update().unwrap();
    assert_eq!(rects.len(), 1, "DesktopSize comes alone");
    assert_eq!((rects[0].encoding, rects[0].w, rects[0].h), (-223, 40, 30));
    c.request_all(true);
    let rects = c.read_update().unwrap();
    assert_eq!(covered(&rects), 40 * 30);
    check_rects(&rects, &st.source.pixels(), 40, &PixelFormat::NATIVE);
}

#[test]
fn extended_desktop_size_and_refused_set_desktop_size() {
    let st = setup();
    let mut c = Client::simple(st.server.local_addr());
    c.set_encodings(&[0, -223, -308]);
    c.request_all(false);
    // A non-incremental request first gets the screen layout, then the pixels.
    let rects = c.read_update().unwrap();
    assert_eq!(rects.len(), 1);
    assert_eq!((rects[0].encoding, rects[0].x, rects[0].y), (-308, 0, 0));
    assert_eq!(rects[0].data[0], 1, "one screen");
    c.request_all(true);
    assert_eq!(covered(&c.read_update().unwrap()), 96 * 64);
    // SetDesktopSize is answered with reason 1 (this client), status 1 (prohibited).
    let mut m = vec![251, 0, 0, 200, 0, 100, 1, 0];
    m.extend_from_slice(&[0; 16]);
    c.s.write_all(&m).unwrap();
    c.request_all(true);
    let rects = c.read_update().unwrap();
    assert_eq!(
        (rects[0].encoding, rects[0].x, rects[0].y, rects[0].w),
        (-308, 1, 1, 96)
    );
    // A mode switch uses the extended form only.
    st.source.resize(50, 20, picture(50, 20, 1));
    st.hub.refresh();
    c.request_all(true);
    let rects = c.read_update().unwrap();
    assert_eq!(
        (rects.len(), rects[0].encoding, rects[0].w, rects[0].h),
        (1, -308, 50, 20)
    );
}

#[test]
fn exclusive_client_disconnects_the_others_and_keeps_sharers_out() {
    let st = setup();
    let addr = st.server.local_addr();
    let mut a = Client::connect(addr, b"RFB 003.008\n", None, true).unwrap();
    let _b = Client::connect(addr, b"RFB 003.008\n", None, false).unwrap();
    assert!(
        closed_by_server(&mut a.s),
        "shared client kicked by the exclusive one"
    );
    let mut c = tcp(addr);
    // A sharer is refused after ClientInit while the exclusive client is there.
    let mut buf = [0u8; 12];
    std::io::Read::read_exact(&mut c, &mut buf).unwrap();
    c.write_all(b"RFB 003.008\n\x01\x01").unwrap();
    assert!(closed_by_server(&mut c));
    wait_clients(&st.server, 1);
}

#[test]
fn force_shared_ignores_exclusive_requests() {
    let mut cfg = config();
    cfg.share = SharePolicy::ForceShared;
    let st = setup_with(cfg, 16, 16);
    let addr = st.server.local_addr();
    let mut a = Client::connect(addr, b"RFB 003.008\n", None, false).unwrap();
    let mut b = Client::connect(addr, b"RFB 003.008\n", None, false).unwrap();
    for c in [&mut a, &mut b] {
        c.request_all(false);
        assert_eq!(covered(&c.read_update().unwrap()), 256);
    }
    wait_clients(&st.server, 2);
}

#[test]
fn vncunused_moves_to_the_next_free_display() {
    // Find a free port above 5900 and occupy it.
    let taken = (0..200)
        .filter_map(|_| std::net::TcpListener::bind("127.0.0.1:0").ok())
        .find(|l| l.local_addr().unwrap().port() > 6000 && l.local_addr().unwrap().port() < 65000)
        .expect("an ephemeral port above 6000");
    let display = taken.local_addr().unwrap().port() - 5900;
    let listen = vnc::Listen::Display {
        addr: "127.0.0.1".parse().unwrap(),
        display,
    };
    let src = TestSource::new(8, 8, vec![0; 64]);
    let hub = devices::display::DisplayHub::new(src, "g");
    let input = Recorder::new(true);
    let strict = vnc::VncConfig::new(listen);
    let err = vnc::VncServer::start(strict.clone(), hub.clone(), input.clone(), input.clone())
        .unwrap_err();
    assert!(matches!(err, vnc::VncError::Bind { .. }), "{err}");
    let mut cfg = strict;
    cfg.unused = true;
    let server = vnc::VncServer::start(cfg, hub, input.clone(), input).unwrap();
    assert!(server.display().unwrap() > display);
    Client::simple(server.local_addr());
}

#[test]
fn dropping_the_server_disconnects_clients() {
    let st = setup();
    let mut c = Client::simple(st.server.local_addr());
    c.request_all(false);
    c.read_update().unwrap();
    let Setup { server, .. } = st;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(server);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(WAIT).expect("drop finished");
    assert!(closed_by_server(&mut c.s));
}
