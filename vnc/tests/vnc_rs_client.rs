//! A third-party client (the `vnc-rs` crate) against the server: VNC authentication, Raw, ZRLE and Tight
//! frames decoded by someone else's code, a mode switch, and a key press.
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
