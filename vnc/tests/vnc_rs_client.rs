//! A third-party client (the `vnc-rs` crate) against the server: VNC authentication, Raw, ZRLE and Tight
//! frames decoded by someone else's code, a mode switch, a key press, and CopyRect for a scroll.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use vncrs::{PixelFormat, VncConnector, VncEncoding, VncEvent, X11Event};

async fn connect(addr: std::net::SocketAddr, encoding: VncEncoding) -> vncrs::VncClient {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    VncConnector::new(tcp)
        .set_auth_method(async { Ok("secret12".to_string()) })
        .add_encoding(encoding)
        .add_encoding(VncEncoding::Raw)
        .add_encoding(VncEncoding::DesktopSizePseudo)
        .allow_shared(true)
        .set_pixel_format(PixelFormat::bgra())
        .build()
        .unwrap()
        .try_start()
        .await
        .unwrap()
        .finish()
        .unwrap()
}

/// Collects events until every pixel of a `w` × `h` screen was painted; returns the screen as 0x00RRGGBB.
async fn read_screen(client: &vncrs::VncClient, w: usize, h: usize) -> Vec<u32> {
    let mut screen = vec![0u32; w * h];
    let mut painted = vec![false; w * h];
    let mut left = w * h;
    while left > 0 {
        let ev = tokio::time::timeout(WAIT, client.recv_event())
            .await
            .expect("an event in time")
            .unwrap();
        if let VncEvent::RawImage(r, bytes) = ev {
            let (rw, rh) = (r.width as usize, r.height as usize);
            assert_eq!(bytes.len(), rw * rh * 4);
            for y in 0..rh {
                for x in 0..rw {
                    let i = (r.y as usize + y) * w + r.x as usize + x;
                    let b = &bytes[(y * rw + x) * 4..(y * rw + x) * 4 + 4];
                    // B, G, R, X in memory; compare colour only.
                    screen[i] = u32::from(b[2]) << 16 | u32::from(b[1]) << 8 | u32::from(b[0]);
                    if !std::mem::replace(&mut painted[i], true) {
                        left -= 1;
                    }
                }
            }
        }
    }
    screen
}

#[test]
fn vnc_rs_decodes_raw_zrle_and_tight_and_sends_keys() {
    let mut cfg = config();
    cfg.password = Some("secret12".into());
    let st = setup_with(cfg, 200, 120);
    let addr = st.server.local_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for enc in [VncEncoding::Raw, VncEncoding::Zrle, VncEncoding::Tight] {
            let client = connect(addr, enc).await;
            let screen = read_screen(&client, 200, 120).await;
            assert_eq!(screen, st.source.pixels(), "{enc:?}");
            client.close().await.unwrap();
        }
        // A key and a mode switch with ZRLE.
        let client = connect(addr, VncEncoding::Zrle).await;
        read_screen(&client, 200, 120).await;
        client
            .input(X11Event::KeyEvent((0xff0d, true).into()))
            .await
            .unwrap();
        st.source.resize(64, 32, picture(64, 32, 3));
        st.hub.refresh();
        client.input(X11Event::Refresh).await.unwrap();
        loop {
            let ev = tokio::time::timeout(WAIT, client.recv_event())
                .await
                .expect("a resize in time")
                .unwrap();
            if let VncEvent::SetResolution(s) = ev {
                assert_eq!((s.width, s.height), (64, 32));
                break;
            }
        }
        client.input(X11Event::Refresh).await.unwrap();
        let screen = read_screen(&client, 64, 32).await;
        assert_eq!(screen, st.source.pixels());
        client.close().await.unwrap();
    });
    assert_eq!(st.input.wait_for(1)[0], Event::Key(0x1C, true));
}

/// vnc-rs with CopyRect: the screen scrolls by one 16-row band, the client is told to copy and gets the new
/// rows, and its picture (built from its own events) equals the server's.
#[test]
fn vnc_rs_applies_copyrect_for_a_scroll() {
    let (w, h) = (200usize, 120usize);
    let mut cfg = config();
    cfg.password = Some("secret12".into());
    let st = setup_with(cfg, w as u32, h as u32);
    let addr = st.server.local_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let client = VncConnector::new(tcp)
            .set_auth_method(async { Ok("secret12".to_string()) })
            .add_encoding(VncEncoding::CopyRect)
            .add_encoding(VncEncoding::Zrle)
            .add_encoding(VncEncoding::Raw)
            .allow_shared(true)
            .set_pixel_format(PixelFormat::bgra())
            .build()
            .unwrap()
            .try_start()
            .await
            .unwrap()
            .finish()
            .unwrap();
        let mut screen = read_screen(&client, w, h).await;
        assert_eq!(screen, st.source.pixels());
        // Scroll everything up by 16 rows; new rows at the bottom.
        let old = st.source.pixels();
        let mut new = old[16 * w..].to_vec();
        new.extend(picture(w as u32, 16, 42));
        st.source.show(
            new.clone(),
            vec![devices::display::Rect::full(w as u32, h as u32)],
        );
        st.hub.refresh();
        client.input(X11Event::Refresh).await.unwrap();
        let mut copies = Vec::new();
        while screen != new {
            let ev = tokio::time::timeout(WAIT, client.recv_event())
                .await
                .expect("an event in time")
                .unwrap();
            match ev {
                VncEvent::Copy(dst, src) => {
                    copies.push((dst.x, dst.y, dst.width, dst.height, src.x, src.y));
                    let (cw, ch) = (usize::from(dst.width), usize::from(dst.height));
                    let from: Vec<u32> = (0..ch)
                        .flat_map(|y| {
                            let s = (usize::from(src.y) + y) * w + usize::from(src.x);
                            screen[s..s + cw].to_vec()
                        })
                        .collect();
                    for y in 0..ch {
                        let d = (usize::from(dst.y) + y) * w + usize::from(dst.x);
                        screen[d..d + cw].copy_from_slice(&from[y * cw..][..cw]);
                    }
                }
                VncEvent::RawImage(r, bytes) => {
                    assert!(!copies.is_empty(), "the copy comes before the paint");
                    let (rw, rh) = (r.width as usize, r.height as usize);
                    for y in 0..rh {
                        for x in 0..rw {
                            let b = &bytes[(y * rw + x) * 4..][..4];
                            screen[(r.y as usize + y) * w + r.x as usize + x] =
                                u32::from(b[2]) << 16 | u32::from(b[1]) << 8 | u32::from(b[0]);
                        }
                    }
                }
                _ => {}
            }
        }
        assert_eq!(copies, vec![(0, 0, 200, 104, 0, 16)]);
        client.close().await.unwrap();
    });
}
