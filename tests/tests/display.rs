//! Real-guest display and input tests on KVM: the real `devmodel` binary runs SeaBIOS and GRUB with `vnc=1`,
//! and real VNC clients look at the screen (`gvnccapture`) and type (`vncdotool`). Text screens are read back
//! cell by cell with the VGA BIOS's own font and compared with the text GRUB wrote; GRUB reads keys with its
//! `at_keyboard` driver, so typed keys travel VNC → PS/2 keyboard → i8042 → GRUB.
//!
//! Set `DEVMODEL_SKIP_KVM=1` to skip these where `/dev/kvm` is missing; otherwise they fail loudly.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::images::{clean_serial, grub_iso_with_modules, DISPLAY_MODULES as MODULES, MENU_CFG};
use common::screen::{
    gvnccapture, menu_row, read_text, text_lines, vga_font, vncdotool, wait_screen, Shot,
};
use common::{kvm_available, Guest};

/// A VBE graphics mode through the VGA BIOS (GRUB's `vbe` driver), filled with known colours: the border
/// (0,128,255) by `background_color`, the text area blue by `color_normal`.
const GRAPHICS_CFG: &str = "serial --unit=0 --speed=115200\n\
terminal_input serial\n\
terminal_output serial\n\
insmod vbe\n\
insmod gfxterm\n\
insmod gfxterm_background\n\
set gfxmode=800x600x32\n\
terminal_output --append gfxterm\n\
echo GFX-MODE-SET\n\
background_color 0,128,255\n\
set color_normal=white/blue\n\
clear\n\
echo GFX-DRAWN\n\
sleep 600\n";

fn guest_config(
    name: &str,
    iso: &std::path::Path,
    serial: &std::path::Path,
    extra: &str,
) -> String {
    format!(
        "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{name}'\nmemory = 128\nvcpus = 1\n\
         disk = ['file:{},hdc:cdrom,r']\nboot = 'd'\nserial = 'file:{}'\nvnc = 1\nvnclisten = '127.0.0.1'\n\
         stdvga = 1\nacpi = 1\n{extra}\n",
        iso.display(),
        serial.display()
    )
}

fn serial_text(path: &std::path::Path) -> String {
    clean_serial(&std::fs::read(path).unwrap_or_default())
}

/// The `host:port` the device model printed for its VNC server.
fn vnc_address(guest: &mut Guest) -> String {
    const PREFIX: &str = "VNC server listening on ";
    guest.wait_for("the VNC address", Duration::from_secs(20), |_, out| {
        out.contains(PREFIX)
    });
    let out = guest.stdout();
    let line = out.lines().find(|l| l.starts_with(PREFIX)).unwrap();
    line[PREFIX.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn wait_serial(guest: &mut Guest, serial: &std::path::Path, needle: &str, timeout: Duration) {
    let path = serial.to_path_buf();
    let n = needle.to_string();
    guest.wait_for(&format!("COM1 to show {needle:?}"), timeout, move |_, _| {
        serial_text(&path).contains(&n)
    });
}

/// The text rows of a text-mode screenshot.
fn screen_text(shot: &Shot) -> Vec<String> {
    assert_eq!(
        (shot.width, shot.height),
        (720, 400),
        "a VGA text mode (80x25, 9x16 cells)"
    );
    text_lines(&read_text(shot, &vga_font()))
}

fn require_kvm() -> bool {
    if !kvm_available() {
        eprintln!("skipped: /dev/kvm missing and DEVMODEL_SKIP_KVM=1");
        return false;
    }
    true
}

#[test]
fn vnc_shows_the_grub_menu_and_typed_keys_choose_an_entry() {
    if !require_kvm() {
        return;
    }
    let iso = grub_iso_with_modules("display-menu", MENU_CFG, &[], MODULES);
    let tmp = common::TempDir::new("display-menu-serial");
    let serial = tmp.path().join("com1.txt");
    let mut guest = Guest::start(
        "display-menu",
        &guest_config("menu", &iso, &serial, ""),
        &[],
    );
    let addr = vnc_address(&mut guest);
    wait_serial(
        &mut guest,
        &serial,
        "Charlie entry",
        Duration::from_secs(120),
    );

    // What GRUB drew on the VGA text screen, read back through a real client, cell by cell.
    let shot = wait_screen(
        &addr,
        tmp.path(),
        Duration::from_secs(20),
        "the GRUB menu",
        |s| {
            s.height == 400
                && text_lines(&read_text(s, &vga_font()))
                    .iter()
                    .any(|l| l.contains("Charlie entry"))
        },
    );
    let lines = screen_text(&shot);
    assert!(
        lines.iter().any(|l| l.contains("GNU GRUB  version")),
        "{}",
        lines.join("\n")
    );
    let (alpha, alpha_lit) = menu_row(&shot, "Alpha entry");
    let (bravo, bravo_lit) = menu_row(&shot, "Bravo entry");
    assert_eq!(bravo, alpha + 1);
    assert!(
        alpha_lit && !bravo_lit,
        "the first entry starts highlighted"
    );

    // Down moves the highlight (the keyboard path: VNC key event → PS/2 scancodes → GRUB's i8042 driver).
    let (ok, out) = vncdotool(&addr, None, &["key", "down"]);
    assert!(ok, "vncdotool: {out}");
    let shot = wait_screen(
        &addr,
        tmp.path(),
        Duration::from_secs(30),
        "the highlight on Bravo",
        |s| s.height == 400 && menu_row(s, "Bravo entry").1,
    );
    assert!(!menu_row(&shot, "Alpha entry").1);

    // Enter boots the highlighted entry, which says so on COM1.
    let (ok, out) = vncdotool(&addr, None, &["key", "enter"]);
    assert!(ok, "vncdotool: {out}");
    wait_serial(&mut guest, &serial, "CHOSEN-BRAVO", Duration::from_secs(30));
    let text = serial_text(&serial);
    assert!(
        !text.contains("CHOSEN-ALPHA") && !text.contains("CHOSEN-CHARLIE"),
        "{text}"
    );
}

#[test]
fn a_vbe_graphics_mode_shows_up_as_pixels() {
    if !require_kvm() {
        return;
    }
    let iso = grub_iso_with_modules("display-gfx", GRAPHICS_CFG, &[], MODULES);
    let tmp = common::TempDir::new("display-gfx-serial");
    let serial = tmp.path().join("com1.txt");
    let mut guest = Guest::start("display-gfx", &guest_config("gfx", &iso, &serial, ""), &[]);
    let addr = vnc_address(&mut guest);
    wait_serial(&mut guest, &serial, "GFX-DRAWN", Duration::from_secs(300));
    let shot = wait_screen(
        &addr,
        tmp.path(),
        Duration::from_secs(30),
        "800x600 with the border colour",
        |s| s.width == 800 && s.height == 600 && s.pixel(2, 2) == 0x0080ff,
    );
    // The text area GRUB cleared with color_normal's background: VGA palette blue.
    let centre = shot.pixel(400, 300);
    assert!(
        centre & 0xffff00 == 0 && centre & 0xff >= 0xa0,
        "centre pixel {centre:06x} should be blue"
    );
    assert_eq!(shot.pixel(799, 599), 0x0080ff, "bottom-right border");
}

/// A SeaBIOS-only guest (no disks: the BIOS ends at "No bootable device") with a VNC password.
fn seabios_vnc_guest(tag: &str, extra: &str) -> (Guest, String) {
    let config = format!(
        "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{tag}'\nmemory = 128\nvcpus = 1\n\
         boot = 'c'\nserial = 'null'\nvnc = 1\nvnclisten = '127.0.0.1'\nstdvga = 1\n{extra}\n"
    );
    let mut guest = Guest::start(tag, &config, &["--boot-fail-wait", "600000"]);
    let addr = vnc_address(&mut guest);
    (guest, addr)
}

#[test]
fn password_protected_vnc_refuses_a_wrong_password() {
    if !require_kvm() {
        return;
    }
    let (mut guest, addr) = seabios_vnc_guest("display-pw", "vncpasswd = 'sesame'");
    guest.wait_firmware("No bootable device", Duration::from_secs(60));
    let tmp = common::TempDir::new("display-pw-shots");
    let wrong = tmp.path().join("wrong.png");
    let (ok, out) = vncdotool(
        &addr,
        Some("nottheone"),
        &["capture", wrong.to_str().unwrap()],
    );
    assert!(
        !ok && !wrong.exists(),
        "a wrong password was accepted: {out}"
    );
    let right = tmp.path().join("right.png");
    let (ok, out) = vncdotool(&addr, Some("sesame"), &["capture", right.to_str().unwrap()]);
    assert!(
        ok && right.exists(),
        "the right password was refused: {out}"
    );
    // SeaBIOS printed its banner and its verdict on the VGA text screen.
    let lines = screen_text(&Shot::load(&right));
    let all = lines.join("\n");
    assert!(all.contains("SeaBIOS (version"), "{all}");
    assert!(all.contains("No bootable device"), "{all}");
}

/// Reads the 12-byte RFB version greeting.
fn greeting(stream: &mut TcpStream) -> [u8; 12] {
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn connections_dropped_in_every_protocol_state_leave_the_server_healthy() {
    if !require_kvm() {
        return;
    }
    let (mut guest, addr) = seabios_vnc_guest("display-states", "");
    guest.wait_firmware("No bootable device", Duration::from_secs(60));
    let connect = || {
        let s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    // 1. Closed before reading the greeting.
    drop(connect());
    // 2. Closed after the greeting.
    let mut s = connect();
    assert_eq!(&greeting(&mut s), b"RFB 003.008\n");
    drop(s);
    // 3. Closed in the middle of the version reply.
    let mut s = connect();
    greeting(&mut s);
    s.write_all(b"RFB 00").unwrap();
    drop(s);
    // 4. A version that is not one; the server closes.
    let mut s = connect();
    greeting(&mut s);
    s.write_all(b"HTTP/1.1 200").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    // 5. Closed after the security types.
    let mut s = connect();
    greeting(&mut s);
    s.write_all(b"RFB 003.008\n").unwrap();
    let mut n = [0u8; 1];
    s.read_exact(&mut n).unwrap();
    assert!(n[0] >= 1);
    drop(s);
    // 6. Closed after ServerInit, and 7. a client message of an unknown type.
    for junk in [&b""[..], &[0xee, 1, 2, 3][..]] {
        let mut s = connect();
        greeting(&mut s);
        s.write_all(b"RFB 003.008\n").unwrap();
        let mut types = vec![0u8; 1];
        s.read_exact(&mut types).unwrap();
        let mut list = vec![0u8; usize::from(types[0])];
        s.read_exact(&mut list).unwrap();
        assert!(list.contains(&1), "security None offered: {list:?}");
        s.write_all(&[1]).unwrap();
        let mut result = [0u8; 4];
        s.read_exact(&mut result).unwrap();
        assert_eq!(result, [0, 0, 0, 0]);
        s.write_all(&[1]).unwrap(); // ClientInit: shared
        let mut init = [0u8; 24];
        s.read_exact(&mut init).unwrap();
        let name_len = u32::from_be_bytes(init[20..24].try_into().unwrap()) as usize;
        let mut name = vec![0u8; name_len];
        s.read_exact(&mut name).unwrap();
        assert_eq!(name, b"display-states", "ServerInit names the domain");
        s.write_all(junk).unwrap();
        if !junk.is_empty() {
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
        }
    }
    // The server still serves a real client, and the guest still runs.
    let tmp = common::TempDir::new("display-states-shots");
    let shot = Shot::load(&gvnccapture(&addr, tmp.path(), "after"));
    assert!(screen_text(&shot).join("\n").contains("No bootable device"));
}
