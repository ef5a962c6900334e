//! The SDL window (`sdl=1`) on a real X server: each test starts its own `Xvfb`, runs the `devmodel` binary
//! built with the `sdl` feature, finds the window by the domain name with `xdotool`, photographs it with
//! ImageMagick's `import` and reads the VGA text back with the VGA BIOS font, types into it with `xdotool`
//! (GRUB reads the keys with its own i8042 driver), resizes it, and closes it the way a window manager does.
//!
//! Needs KVM (set `DEVMODEL_SKIP_KVM=1` to skip where `/dev/kvm` is missing), libsdl2-dev, xvfb, xdotool and
//! imagemagick (scripts/setup.sh installs them).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::images::{clean_serial, grub_iso_with_modules, DISPLAY_MODULES, MENU_CFG};
use common::screen::{menu_row, screen_text_if_text_mode, wait_for_shot, Shot};
use common::{devmodel_sdl_bin, kvm_available, Guest, TempDir};

/// A private X server (and window manager, when one was started), stopped at drop.
struct Xvfb {
    child: Child,
    window_manager: Option<Child>,
    /// `:N`, for `DISPLAY`.
    display: String,
}

impl Xvfb {
    /// Starts Xvfb with a `screen` (`WxHxDEPTH`) on a free display number (it picks one and reports it
    /// through `-displayfd`).
    fn start(screen: &str) -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", screen])
            .args(["-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (Debian package xvfb; scripts/setup.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let number: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb reported no display number: {line:?}"));
        Xvfb {
            child,
            window_manager: None,
            display: format!(":{number}"),
        }
    }

    /// Starts openbox, an EWMH window manager (full screen is a window manager's job on X11), and waits
    /// until it has taken the screen.
    fn start_window_manager(&mut self) {
        let child = Command::new("openbox")
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openbox (scripts/setup.sh installs it)");
        self.window_manager = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self
            .run("xprop", &["-root", "_NET_SUPPORTING_WM_CHECK"])
            .1
            .contains("window id")
        {
            assert!(Instant::now() < deadline, "openbox did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The window's size, as the X server has it.
    fn window_size(&self, window: &str) -> (u32, u32) {
        let out = self.xdotool(&["getwindowgeometry", "--shell", window]);
        let field = |name: &str| -> u32 {
            out.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} not in {out}"))
        };
        (field("WIDTH"), field("HEIGHT"))
    }

    /// Runs an X client `program` on this display; panics when it cannot start.
    fn run(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {program}: {e} (scripts/setup.sh installs xdotool and imagemagick)"
                )
            });
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let (ok, out) = self.run("xdotool", args);
        assert!(ok, "xdotool {args:?}: {out}");
        out.trim().to_string()
    }

    /// The id of the window titled with the domain `name` (and maybe the grab hint), waiting for it to appear.
    fn find_window(&self, guest: &mut Guest, name: &str) -> String {
        let title = name;
        let pattern = format!("^{name}( - .*)?$");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (ok, out) = self.run("xdotool", &["search", "--name", &pattern]);
            if let Some(id) = out.lines().next().filter(|_| ok) {
                return id.trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no window titled {title:?}\n{}",
                guest.report()
            );
            if let Some(status) = guest.try_exit() {
                panic!("devmodel exited ({status})\n{}", guest.report());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn title(&self, window: &str) -> String {
        self.xdotool(&["getwindowname", window])
    }

    /// Waits until the window's title is `title`.
    fn wait_title(&self, window: &str, title: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.title(window) != title {
            assert!(
                Instant::now() < deadline,
                "title stayed {:?}, expected {title:?}",
                self.title(window)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A photograph of the window's contents.
    fn shot(&self, window: &str, dir: &Path, n: usize) -> Shot {
        let path = dir.join(format!("window-{n}.png"));
        // PNG24: 8-bit RGB even when the screen holds only greys (what Shot::load reads).
        let target = format!("PNG24:{}", path.display());
        let (ok, out) = self.run("import", &["-window", window, &target]);
        assert!(ok, "import -window {window}: {out}");
        Shot::load(&path)
    }

    /// Photographs the window until `accept` likes it; panics with the last screen's text after `timeout`.
    fn wait_shot(
        &self,
        window: &str,
        dir: &Path,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&Shot) -> bool,
    ) -> Shot {
        wait_for_shot(
            timeout,
            Duration::from_millis(300),
            &format!("the window showing {what}"),
            |n| self.shot(window, dir, n),
            accept,
        )
    }

    /// Asks the window to close as a window manager does (WM_DELETE_WINDOW), through Xlib from Python.
    fn close_window(&self, window: &str) {
        const SCRIPT: &str = r#"
import ctypes, sys
x = ctypes.cdll.LoadLibrary("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
x.XCloseDisplay.argtypes = [ctypes.c_void_p]
class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]
class XEvent(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]
d = x.XOpenDisplay(None)
if not d:
    sys.exit("cannot open the display")
win = int(sys.argv[1])
ev = XEvent()
ev.xclient.type = 33  # ClientMessage
ev.xclient.window = win
ev.xclient.message_type = x.XInternAtom(d, b"WM_PROTOCOLS", 0)
ev.xclient.format = 32
ev.xclient.data[0] = x.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
x.XSendEvent(d, win, 0, 0, ctypes.byref(ev))
x.XFlush(d)
x.XCloseDisplay(d)
"#;
        let (ok, out) = self.run("python3", &["-c", SCRIPT, window]);
        assert!(ok, "sending WM_DELETE_WINDOW: {out}");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        if let Some(mut wm) = self.window_manager.take() {
            let _ = wm.kill();
            let _ = wm.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text_of(shot: &Shot) -> Vec<String> {
    screen_text_if_text_mode(shot)
}

fn shows(shot: &Shot, text: &str) -> bool {
    text_of(shot).iter().any(|l| l.contains(text))
}

/// Every `factor`-th pixel: a screen scaled up by a whole factor with nearest-pixel scaling, back at its size.
fn downscale(shot: &Shot, factor: u32) -> Shot {
    let (width, height) = (shot.width / factor, shot.height / factor);
    let pixels = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| shot.pixel(x * factor, y * factor))
        .collect();
    Shot {
        width,
        height,
        pixels,
    }
}

/// The notice a binary built without the window prints.
const NOT_BUILT: &str = "built without it";

fn start_guest(x: &Xvfb, tag: &str, config: &str, args: &[&str]) -> Guest {
    let guest = Guest::start_with(
        &devmodel_sdl_bin(),
        tag,
        config,
        args,
        &[("DISPLAY", &x.display)],
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(!guest.stderr().contains(NOT_BUILT), "{}", guest.stderr());
    guest
}

#[test]
fn the_window_shows_seabios_scales_grabs_and_closes_like_a_power_off() {
    if !kvm_available() {
        return;
    }
    let x = Xvfb::start("1600x1200x24");
    let name = "sdl-bios";
    let config = format!(
        "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{name}'\nmemory = 128\nvcpus = 1\n\
         boot = 'c'\nserial = 'null'\nvnc = 0\nsdl = 1\nnographic = 0\nstdvga = 1\nacpi = 1\n"
    );
    let mut guest = start_guest(&x, name, &config, &["--boot-fail-wait", "600000"]);
    let window = x.find_window(&mut guest, name);
    assert_eq!(x.title(&window), name);
    guest.wait_firmware("No bootable device", Duration::from_secs(60));
    let shots = TempDir::new("sdl-bios-shots");

    // The text mode at its own size (the window follows the guest's 720x400), read cell by cell.
    let shot = x.wait_shot(
        &window,
        shots.path(),
        Duration::from_secs(20),
        "SeaBIOS's verdict at 720x400",
        |s| (s.width, s.height) == (720, 400) && shows(s, "No bootable device"),
    );
    assert!(shows(&shot, "SeaBIOS (version"), "{:?}", text_of(&shot));

    // A click grabs the pointer (the guest has only a PS/2 mouse); the title says how to get out.
    x.xdotool(&["mousemove", "--window", &window, "100", "100", "click", "1"]);
    x.wait_title(
        &window,
        &format!("{name} - press Ctrl-Alt-G to release the mouse"),
    );
    x.xdotool(&["key", "--window", &window, "ctrl+alt+g"]);
    x.wait_title(&window, name);

    // Resized by the user to twice the size: the screen is scaled with it (nearest pixel: every second pixel
    // is the guest's).
    // (Moved to the corner first: `import` sees only what is on the screen.)
    x.xdotool(&["windowmove", &window, "0", "0"]);
    x.xdotool(&["windowsize", &window, "1440", "800"]);
    let shot = x.wait_shot(
        &window,
        shots.path(),
        Duration::from_secs(10),
        "the screen scaled to 1440x800",
        |s| (s.width, s.height) == (1440, 800) && shows(&downscale(s, 2), "No bootable device"),
    );
    assert!(shows(&downscale(&shot, 2), "SeaBIOS (version"));

    // Closing the window powers the machine off, and the device model ends.
    x.close_window(&window);
    let status = guest.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", guest.report());
    let log = guest.stderr();
    assert!(log.contains("SDL window closed"), "{log}");
    assert!(log.contains("guest powered off"), "{log}");
}

#[test]
fn keys_typed_into_the_window_choose_a_grub_menu_entry() {
    if !kvm_available() {
        return;
    }
    let x = Xvfb::start("1600x1200x24");
    let iso = grub_iso_with_modules("display-menu", MENU_CFG, &[], DISPLAY_MODULES);
    let tmp = TempDir::new("sdl-menu");
    let serial = tmp.path().join("com1.txt");
    let name = "sdl-menu";
    let config = format!(
        "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{name}'\nmemory = 128\nvcpus = 1\n\
         disk = ['file:{},hdc:cdrom,r']\nboot = 'd'\nserial = 'file:{}'\nvnc = 0\nsdl = 1\nstdvga = 1\n\
         acpi = 1\n",
        iso.display(),
        serial.display()
    );
    let mut guest = start_guest(&x, name, &config, &[]);
    let window = x.find_window(&mut guest, name);
    let serial_text = || clean_serial(&std::fs::read(&serial).unwrap_or_default());
    let menu = |s: &Shot| (s.width, s.height) == (720, 400) && shows(s, "Charlie entry");
    let shot = x.wait_shot(
        &window,
        tmp.path(),
        Duration::from_secs(120),
        "the GRUB menu",
        menu,
    );
    assert!(shows(&shot, "GNU GRUB  version"), "{:?}", text_of(&shot));
    assert!(
        menu_row(&shot, "Alpha entry").1,
        "the first entry starts highlighted"
    );

    // Keys go to the guest without a grab: SDL scancode -> set 1 -> i8042 -> GRUB's at_keyboard.
    x.xdotool(&["key", "--window", &window, "Down"]);
    x.wait_shot(
        &window,
        tmp.path(),
        Duration::from_secs(20),
        "the highlight on Bravo",
        |s| menu(s) && menu_row(s, "Bravo entry").1 && !menu_row(s, "Alpha entry").1,
    );
    x.xdotool(&["key", "--window", &window, "Return"]);
    let path = serial.clone();
    guest.wait_for(
        "COM1 to show CHOSEN-BRAVO",
        Duration::from_secs(30),
        move |_, _| {
            clean_serial(&std::fs::read(&path).unwrap_or_default()).contains("CHOSEN-BRAVO")
        },
    );
    let text = serial_text();
    assert!(
        !text.contains("CHOSEN-ALPHA") && !text.contains("CHOSEN-CHARLIE"),
        "{text}"
    );
}

#[test]
fn full_screen_at_start_and_ctrl_alt_f_back_to_a_window() {
    if !kvm_available() {
        return;
    }
    // A screen of exactly twice the text mode, so that the full-screen picture is the guest's scaled by 2.
    let mut x = Xvfb::start("1440x800x24");
    x.start_window_manager();
    let name = "sdl-full";
    let config = format!(
        "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{name}'\nmemory = 128\nvcpus = 1\n\
         boot = 'c'\nserial = 'null'\nvnc = 0\nsdl = 1\nfullscreen = 1\nstdvga = 1\n"
    );
    let mut guest = start_guest(&x, name, &config, &["--boot-fail-wait", "600000"]);
    let window = x.find_window(&mut guest, name);
    guest.wait_firmware("No bootable device", Duration::from_secs(60));
    let shots = TempDir::new("sdl-full-shots");
    x.wait_shot(
        &window,
        shots.path(),
        Duration::from_secs(20),
        "SeaBIOS full screen",
        |s| (s.width, s.height) == (1440, 800) && shows(&downscale(s, 2), "No bootable device"),
    );
    // Full screen starts with the pointer grabbed, as QEMU's -full-screen does.
    assert_eq!(
        x.title(&window),
        format!("{name} - press Ctrl-Alt-G to release the mouse")
    );

    // Ctrl-Alt-F: back to a window of the guest's size, showing it 1:1.
    x.xdotool(&["key", "--window", &window, "ctrl+alt+f"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while x.window_size(&window) != (720, 400) {
        assert!(
            Instant::now() < deadline,
            "window stayed {:?}",
            x.window_size(&window)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    x.wait_shot(
        &window,
        shots.path(),
        Duration::from_secs(10),
        "SeaBIOS in a 720x400 window",
        |s| (s.width, s.height) == (720, 400) && shows(s, "No bootable device"),
    );
    // Ctrl-Alt-G lets the pointer go (the hot keys stay with the window: the title tells).
    x.xdotool(&["key", "--window", &window, "ctrl+alt+g"]);
    x.wait_title(&window, name);
}
