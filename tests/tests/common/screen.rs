//! Looking at a guest's screen through real VNC clients: `gvnccapture` (package `gvncviewer`) saves a PNG,
//! `vncdotool` (PyPI) types keys and captures with a password. The screenshot of a VGA text mode is read back
//! as text with the glyphs of the very font the guest's VGA BIOS loads (the 8×16 font inside Debian's
//! `vgabios-stdvga.bin`), so a test compares the screen with the text the guest wrote, cell by cell.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A decoded screenshot, `0xRRGGBB` per pixel.
pub struct Shot {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u32>,
}

impl Shot {
    /// Decodes a PNG (RGB or RGBA, 8 bits per channel: what gvnccapture and vncdotool write).
    pub fn load(path: &Path) -> Shot {
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        ));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("{}: unexpected PNG colour type {other:?}", path.display()),
        };
        let pixels = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2]))
            .collect();
        Shot {
            width: info.width,
            height: info.height,
            pixels,
        }
    }

    pub fn pixel(&self, x: u32, y: u32) -> u32 {
        self.pixels[(y * self.width + x) as usize]
    }
}

/// The VGA BIOS's 8×16 font: 256 glyphs of 16 row bytes, found in the ROM by the well-known shape of glyph 1
/// (the smiling face) after the blank glyph 0.
pub fn vga_font() -> Vec<[u8; 16]> {
    let rom = std::fs::read("/usr/share/seabios/vgabios-stdvga.bin")
        .expect("read /usr/share/seabios/vgabios-stdvga.bin (apt-get install seabios)");
    let smiley = [
        0x00, 0x00, 0x7e, 0x81, 0xa5, 0x81, 0x81, 0xbd, 0x99, 0x81, 0x81, 0x7e,
    ];
    let at = rom
        .windows(smiley.len())
        .position(|w| w == smiley)
        .expect("the 8x16 font in the VGA BIOS");
    let start = at - 16;
    assert!(rom[start..at].iter().all(|&b| b == 0), "glyph 0 is blank");
    (0..256)
        .map(|g| rom[start + g * 16..start + g * 16 + 16].try_into().unwrap())
        .collect()
}

/// One character cell read off a text-mode screenshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// The character (CP437 code), or `None` when no glyph matches (a cursor over it, say).
    pub code: Option<u8>,
    /// Foreground and background colour (equal for a blank cell).
    pub fg: u32,
    pub bg: u32,
}

/// Reads an 80×25 (or any size) text screen with 9×16 or 8×16 cells. A cell with one colour is blank (a space);
/// otherwise both assignments of its two colours are tried against the font, so inverse video reads too.
pub fn read_text(shot: &Shot, font: &[[u8; 16]]) -> Vec<Vec<Cell>> {
    let cell_w = if shot.width.is_multiple_of(9) && shot.width / 9 <= 132 {
        9
    } else {
        8
    };
    let (cols, rows) = (shot.width / cell_w, shot.height / 16);
    let mut screen = Vec::new();
    for row in 0..rows {
        let mut line = Vec::new();
        for col in 0..cols {
            let (x0, y0) = (col * cell_w, row * 16);
            let mut colours: Vec<u32> = Vec::new();
            for y in 0..16 {
                for x in 0..8 {
                    let p = shot.pixel(x0 + x, y0 + y);
                    if !colours.contains(&p) {
                        colours.push(p);
                    }
                }
            }
            let cell = match colours[..] {
                [only] => Cell {
                    code: Some(b' '),
                    fg: only,
                    bg: only,
                },
                [a, b] => {
                    let glyph_with = |fg: u32| -> [u8; 16] {
                        std::array::from_fn(|y| {
                            (0..8).fold(0u8, |bits, x| {
                                bits << 1 | u8::from(shot.pixel(x0 + x, y0 + y as u32) == fg)
                            })
                        })
                    };
                    let find = |g: [u8; 16]| font.iter().position(|f| *f == g).map(|c| c as u8);
                    match (find(glyph_with(a)), find(glyph_with(b))) {
                        (Some(c), _) => Cell {
                            code: Some(c),
                            fg: a,
                            bg: b,
                        },
                        (None, Some(c)) => Cell {
                            code: Some(c),
                            fg: b,
                            bg: a,
                        },
                        (None, None) => Cell {
                            code: None,
                            fg: a,
                            bg: b,
                        },
                    }
                }
                _ => Cell {
                    code: None,
                    fg: colours[0],
                    bg: colours[1],
                },
            };
            line.push(cell);
        }
        screen.push(line);
    }
    screen
}

/// The row showing `label` and whether it is drawn highlighted (brighter background than the menu's).
pub fn menu_row(shot: &Shot, label: &str) -> (usize, bool) {
    let screen = read_text(shot, &vga_font());
    let lines = text_lines(&screen);
    let row = lines
        .iter()
        .position(|l| l.contains(label))
        .unwrap_or_else(|| panic!("{label:?} not on the screen:\n{}", lines.join("\n")));
    let col = lines[row].find(label).unwrap();
    let cell = screen[row][col];
    (row, cell.bg != 0x000000)
}

/// The screen as lines of text: printable ASCII as is, every other code or unreadable cell as `?`.
pub fn text_lines(screen: &[Vec<Cell>]) -> Vec<String> {
    screen
        .iter()
        .map(|line| {
            line.iter()
                .map(|c| match c.code {
                    Some(b) if (0x20..0x7f).contains(&b) => char::from(b),
                    _ => '?',
                })
                .collect()
        })
        .collect()
}

/// Runs a client command; panics with its output when it fails or cannot start (the packages are missing).
fn client(cmd: &mut Command, what: &str) -> std::process::Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {shown}: {e} ({what}; scripts/setup.sh installs it)")
    });
    out
}

/// Saves the screen of the VNC server at `addr` (`host:port`) with `gvnccapture`, into `dir/name.png`.
pub fn gvnccapture(addr: &str, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.png"));
    let (host, port) = addr.rsplit_once(':').unwrap();
    let display = port.parse::<u16>().unwrap() - 5900;
    let result = client(
        Command::new("gvnccapture")
            .arg(format!("{host}:{display}"))
            .arg(&out),
        "gvnccapture is in Debian's gvncviewer package",
    );
    assert!(
        result.status.success() && out.exists(),
        "gvnccapture {host}:{display} failed: {}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// Runs `vncdotool -s host::port [-p password] ARGS...` with a timeout; returns whether it succeeded and its
/// output.
pub fn vncdotool(addr: &str, password: Option<&str>, args: &[&str]) -> (bool, String) {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut cmd = Command::new("timeout");
    cmd.arg("60")
        .arg("vncdotool")
        .arg("-s")
        .arg(format!("{host}::{port}"));
    if let Some(pw) = password {
        cmd.arg("-p").arg(pw);
    }
    let out = client(
        cmd.args(args),
        "vncdotool is on PyPI: pip install vncdotool",
    );
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The text of a screenshot that is a VGA text screen (9×16 cells), else nothing.
pub fn screen_text_if_text_mode(shot: &Shot) -> Vec<String> {
    if !shot.width.is_multiple_of(9) || !shot.height.is_multiple_of(16) {
        return Vec::new();
    }
    text_lines(&read_text(shot, &vga_font()))
}

/// Takes screenshots with `capture(n)` (n = 0, 1, ...) every `poll` until `accept` likes one, for at most
/// `timeout`; returns that screenshot, or panics with the last one's size and text.
pub fn wait_for_shot(
    timeout: Duration,
    poll: Duration,
    what: &str,
    mut capture: impl FnMut(usize) -> Shot,
    accept: impl Fn(&Shot) -> bool,
) -> Shot {
    let deadline = Instant::now() + timeout;
    let mut n = 0;
    loop {
        let shot = capture(n);
        if accept(&shot) {
            return shot;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for the screen to show {what}; last screen {}x{}:\n{}",
                shot.width,
                shot.height,
                screen_text_if_text_mode(&shot).join("\n")
            );
        }
        n += 1;
        std::thread::sleep(poll);
    }
}

/// Captures the VNC server's screen with `gvnccapture` until `accept` likes it (see [`wait_for_shot`]).
pub fn wait_screen(
    addr: &str,
    dir: &Path,
    timeout: Duration,
    what: &str,
    accept: impl Fn(&Shot) -> bool,
) -> Shot {
    wait_for_shot(
        timeout,
        Duration::from_millis(500),
        what,
        |n| Shot::load(&gvnccapture(addr, dir, &format!("wait-{n}"))),
        accept,
    )
}
