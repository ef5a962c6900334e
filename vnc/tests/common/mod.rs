//! Test fixtures: a controllable display source, input recorders, and a small RFB client over real sockets.
#![allow(dead_code)]

pub mod decode;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use devices::display::{DisplayHub, DisplaySource, Frame, KeyboardInput, PointerInput, Rect};
use vnc::{Listen, PixelFormat, VncConfig, VncServer};

pub use decode::{expected_value, Decoder};

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// xorshift, for deterministic noise.
pub fn noise(seed: &mut u64) -> u32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 16) as u32 & 0x00FF_FFFF
}

/// A test picture: flat areas, a two-colour "text" band, a gradient and a noise block.
pub fn picture(w: u32, h: u32, seed: u64) -> Vec<u32> {
    let mut s = seed | 1;
    let mut px = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let v = match (y * 4 / h.max(1), x * 4 / w.max(1)) {
                (0, _) => 0x0020_4080,
                (1, c) if c < 2 => {
                    if (x / 3 + y / 5) % 3 == 0 {
                        0x00FF_FFFF
                    } else {
                        0x0000_0000
                    }
                }
                (1, _) => [0x00FF_0000, 0x0000_FF00, 0x0000_00FF, 0x00FF_FF00]
                    [((x / 7 + y / 4) % 4) as usize],
                (2, _) => ((x * 255 / w.max(1)) << 16) | ((y * 255 / h.max(1)) << 8) | 0x40,
                _ => noise(&mut s),
            };
            px.push(v);
        }
    }
    px
}

struct SourceState {
    w: u32,
    h: u32,
    pixels: Vec<u32>,
    dirty: Vec<Rect>,
}

/// A display source whose picture the test sets.
pub struct TestSource(Mutex<SourceState>);

impl TestSource {
    pub fn new(w: u32, h: u32, pixels: Vec<u32>) -> Arc<TestSource> {
        Arc::new(TestSource(Mutex::new(SourceState {
            w,
            h,
            pixels,
            dirty: Vec::new(),
        })))
    }

    /// Paints `rect` with `color` and reports it dirty at the next refresh.
    pub fn fill(&self, rect: Rect, color: u32) {
        let mut s = self.0.lock().unwrap();
        let w = s.w;
        for y in rect.y..rect.y + rect.h {
            for x in rect.x..rect.x + rect.w {
                s.pixels[(y * w + x) as usize] = color;
            }
        }
        s.dirty.push(rect);
    }

    /// Shows a new picture of the same size, reporting `dirty` changed at the next refresh.
    pub fn show(&self, pixels: Vec<u32>, dirty: Vec<Rect>) {
        let mut s = self.0.lock().unwrap();
        assert_eq!(pixels.len(), s.pixels.len());
        s.pixels = pixels;
        s.dirty.extend(dirty);
    }

    /// Changes the mode.
    pub fn resize(&self, w: u32, h: u32, pixels: Vec<u32>) {
        let mut s = self.0.lock().unwrap();
        s.w = w;
        s.h = h;
        s.pixels = pixels;
        s.dirty.clear();
    }

    pub fn pixels(&self) -> Vec<u32> {
        self.0.lock().unwrap().pixels.clone()
    }
}

impl DisplaySource for TestSource {
    fn refresh(&self, frame: &mut Frame) -> Vec<Rect> {
        let mut s = self.0.lock().unwrap();
        let resized = frame.resize(s.w, s.h);
        frame.pixels.copy_from_slice(&s.pixels);
        let dirty = std::mem::take(&mut s.dirty);
        if resized {
            vec![Rect::full(s.w, s.h)]
        } else {
            dirty
        }
    }
}

/// Input events seen by the guest side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Key(u16, bool),
    Abs(u32, u32, u32, u32, u8),
    Rel(i32, i32, i32, u8),
}

/// Records input; the pointer answers `absolute` as told.
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    cond: Condvar,
    pub absolute: AtomicBool,
    pub leds: AtomicU8,
}

impl Recorder {
    pub fn new(absolute: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            events: Mutex::new(Vec::new()),
            cond: Condvar::new(),
            absolute: AtomicBool::new(absolute),
            leds: AtomicU8::new(0),
        })
    }

    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
        self.cond.notify_all();
    }

    /// Waits until `n` events were recorded, then returns them all.
    pub fn wait_for(&self, n: usize) -> Vec<Event> {
        let deadline = Instant::now() + WAIT;
        let mut ev = self.events.lock().unwrap();
        while ev.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {n} input events, got {ev:?}"
            );
            ev = self.cond.wait_timeout(ev, left).unwrap().0;
        }
        ev.clone()
    }

    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut self.events.lock().unwrap())
    }
}

impl KeyboardInput for Recorder {
    fn key(&self, scancode: u16, down: bool) {
        self.push(Event::Key(scancode, down));
    }
    fn leds(&self) -> u8 {
        self.leds.load(Ordering::SeqCst)
    }
}

impl PointerInput for Recorder {
    fn relative(&self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        self.push(Event::Rel(dx, dy, dz, buttons));
    }
    fn absolute(&self, x: u32, y: u32, w: u32, h: u32, buttons: u8) -> bool {
        if self.absolute.load(Ordering::SeqCst) {
            self.push(Event::Abs(x, y, w, h, buttons));
            true
        } else {
            false
        }
    }
}

/// A server on an ephemeral loopback port with a test picture.
pub struct Setup {
    pub server: VncServer,
    pub hub: Arc<DisplayHub>,
    pub source: Arc<TestSource>,
    pub input: Arc<Recorder>,
}

pub fn config() -> VncConfig {
    let mut c = VncConfig::new(Listen::Socket("127.0.0.1:0".parse().unwrap()));
    c.io_timeout = Duration::from_secs(2);
    c
}

pub fn setup_with(config: VncConfig, w: u32, h: u32) -> Setup {
    let source = TestSource::new(w, h, picture(w, h, 7));
    let hub = DisplayHub::new(source.clone(), "test-guest");
    hub.refresh();
    let input = Recorder::new(true);
    let server = VncServer::start(config, hub.clone(), input.clone(), input.clone()).unwrap();
    Setup {
        server,
        hub,
        source,
        input,
    }
}

pub fn setup() -> Setup {
    setup_with(config(), 96, 64)
}

/// A rectangle of an update.
#[derive(Debug, Clone)]
pub struct UpdateRect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
    pub encoding: i32,
    /// Decoded client values (pixel encodings) or the pseudo-rect's payload bytes as values.
    pub data: Vec<u32>,
}

/// A small RFB client.
pub struct Client {
    pub s: TcpStream,
    pub width: u16,
    pub height: u16,
    pub name: String,
    pub format: PixelFormat,
    pub decoder: Decoder,
    pub colour_map: Option<Vec<[u16; 3]>>,
    /// Bytes of the last FramebufferUpdate message read (header included).
    pub last_update_bytes: usize,
}

/// A reader that counts what it read.
struct Counting<'a, R> {
    inner: &'a mut R,
    n: usize,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k;
        Ok(k)
    }
}

pub fn read_n(s: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut v = vec![0; n];
    s.read_exact(&mut v)?;
    Ok(v)
}

pub fn read_u32(s: &mut impl Read) -> io::Result<u32> {
    let b = read_n(s, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Connects a TCP socket with the test timeouts.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Whether the server closed the connection (EOF or reset) within [`WAIT`].
pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
    false
}

/// Waits until the server counts `n` clients.
pub fn wait_clients(server: &VncServer, n: usize) {
    let deadline = Instant::now() + WAIT;
    while server.client_count() != n {
        assert!(
            Instant::now() < deadline,
            "server has {} clients, expected {n}",
            server.client_count()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Client {
    /// Handshake with `version` ("RFB 003.00x\n"), optional password, shared flag.
    pub fn connect(
        addr: SocketAddr,
        version: &[u8; 12],
        password: Option<&str>,
        shared: bool,
    ) -> io::Result<Client> {
        let mut s = tcp(addr);
        let v = read_n(&mut s, 12)?;
        assert_eq!(&v, b"RFB 003.008\n");
        s.write_all(version)?;
        let v33 = version == b"RFB 003.003\n";
        let v38 = version == b"RFB 003.008\n";
        let ty = if v33 {
            read_u32(&mut s)? as u8
        } else {
            let n = read_n(&mut s, 1)?[0];
            let types = read_n(&mut s, n as usize)?;
            assert_eq!(types.len(), 1);
            s.write_all(&types)?;
            types[0]
        };
        if ty == 2 {
            let ch: [u8; 16] = read_n(&mut s, 16)?.try_into().unwrap();
            let resp = vnc::auth::response(password.unwrap_or("").as_bytes(), &ch);
            s.write_all(&resp)?;
            let result = read_u32(&mut s)?;
            if result != 0 {
                let reason = if v38 {
                    let n = read_u32(&mut s)?;
                    String::from_utf8(read_n(&mut s, n as usize)?).unwrap()
                } else {
                    String::new()
                };
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, reason));
            }
        } else {
            assert_eq!(ty, 1);
            assert!(password.is_none());
            if v38 {
                assert_eq!(read_u32(&mut s)?, 0);
            }
        }
        s.write_all(&[u8::from(shared)])?;
        let init = read_n(&mut s, 24)?;
        let width = u16::from_be_bytes([init[0], init[1]]);
        let height = u16::from_be_bytes([init[2], init[3]]);
        let format = PixelFormat::from_bytes(&init[4..20].try_into().unwrap()).unwrap();
        let n = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
        let name = String::from_utf8(read_n(&mut s, n as usize)?).unwrap();
        Ok(Client {
            s,
            width,
            height,
            name,
            format,
            decoder: Decoder::new(format),
            colour_map: None,
            last_update_bytes: 0,
        })
    }

    pub fn simple(addr: SocketAddr) -> Client {
        Client::connect(addr, b"RFB 003.008\n", None, true).unwrap()
    }

    pub fn set_pixel_format(&mut self, f: PixelFormat) {
        let mut m = vec![0, 0, 0, 0];
        m.extend_from_slice(&f.to_bytes());
        self.s.write_all(&m).unwrap();
        self.format = f;
        self.decoder.format = f;
    }

    pub fn set_encodings(&mut self, list: &[i32]) {
        let mut m = vec![2, 0];
        m.extend_from_slice(&(list.len() as u16).to_be_bytes());
        for e in list {
            m.extend_from_slice(&e.to_be_bytes());
        }
        self.s.write_all(&m).unwrap();
    }

    pub fn request(&mut self, incremental: bool, x: u16, y: u16, w: u16, h: u16) {
        let mut m = vec![3, u8::from(incremental)];
        for v in [x, y, w, h] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        self.s.write_all(&m).unwrap();
    }

    pub fn request_all(&mut self, incremental: bool) {
        let (w, h) = (self.width, self.height);
        self.request(incremental, 0, 0, w, h);
    }

    pub fn key(&mut self, down: bool, keysym: u32) {
        let mut m = vec![4, u8::from(down), 0, 0];
        m.extend_from_slice(&keysym.to_be_bytes());
        self.s.write_all(&m).unwrap();
    }

    pub fn ext_key(&mut self, down: bool, keysym: u32, keycode: u32) {
        let mut m = vec![255, 0, 0, u8::from(down)];
        m.extend_from_slice(&keysym.to_be_bytes());
        m.extend_from_slice(&keycode.to_be_bytes());
        self.s.write_all(&m).unwrap();
    }

    pub fn pointer(&mut self, buttons: u8, x: u16, y: u16) {
        let mut m = vec![5, buttons];
        m.extend_from_slice(&x.to_be_bytes());
        m.extend_from_slice(&y.to_be_bytes());
        self.s.write_all(&m).unwrap();
    }

    /// Reads server messages until a FramebufferUpdate arrives and decodes it.
    pub fn read_update(&mut self) -> io::Result<Vec<UpdateRect>> {
        loop {
            let t = read_n(&mut self.s, 1)?[0];
            match t {
                0 => break,
                1 => {
                    let h = read_n(&mut self.s, 5)?;
                    let n = u16::from_be_bytes([h[3], h[4]]) as usize;
                    let data = read_n(&mut self.s, n * 6)?;
                    self.colour_map = Some(
                        data.chunks_exact(6)
                            .map(|c| {
                                [
                                    u16::from_be_bytes([c[0], c[1]]),
                                    u16::from_be_bytes([c[2], c[3]]),
                                    u16::from_be_bytes([c[4], c[5]]),
                                ]
                            })
                            .collect(),
                    );
                }
                other => panic!("unexpected server message {other}"),
            }
        }
        let mut s = Counting {
            inner: &mut self.s,
            n: 1,
        };
        let h = read_n(&mut s, 3)?;
        let n = u16::from_be_bytes([h[1], h[2]]);
        let mut rects = Vec::new();
        for _ in 0..n {
            let b = read_n(&mut s, 12)?;
            let u = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
            let (x, y, w, h) = (u(0), u(2), u(4), u(6));
            let encoding = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
            let data = match encoding {
                -223 | -258 | -257 => Vec::new(),
                -261 => vec![u32::from(read_n(&mut s, 1)?[0])],
                -308 => {
                    let head = read_n(&mut s, 4)?;
                    let body = read_n(&mut s, head[0] as usize * 16)?;
                    let mut v = vec![u32::from(head[0])];
                    v.extend(body.iter().map(|&b| u32::from(b)));
                    v
                }
                // CopyRect: the source position.
                1 => {
                    let p = read_n(&mut s, 4)?;
                    vec![
                        u32::from(u16::from_be_bytes([p[0], p[1]])),
                        u32::from(u16::from_be_bytes([p[2], p[3]])),
                    ]
                }
                _ => self.decoder.decode(encoding, w.into(), h.into(), &mut s)?,
            };
            if encoding == -223 || encoding == -308 {
                self.width = w;
                self.height = h;
            }
            rects.push(UpdateRect {
                x,
                y,
                w,
                h,
                encoding,
                data,
            });
        }
        self.last_update_bytes = s.n;
        Ok(rects)
    }

    /// Asserts that nothing arrives for `d` (the server must stay quiet), then restores the timeout.
    pub fn expect_silence(&mut self, d: Duration) {
        self.s.set_read_timeout(Some(d)).unwrap();
        let mut b = [0u8; 1];
        match self.s.read(&mut b) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            other => panic!("expected no data, got {other:?}"),
        }
        self.s.set_read_timeout(Some(WAIT)).unwrap();
    }
}

/// Checks decoded pixel rects against the source picture (width `fw`) in format `f`.
pub fn check_rects(rects: &[UpdateRect], source: &[u32], fw: u32, f: &PixelFormat) {
    for r in rects.iter().filter(|r| is_painted(r)) {
        for y in 0..r.h as u32 {
            for x in 0..r.w as u32 {
                let src = source[((r.y as u32 + y) * fw + r.x as u32 + x) as usize];
                let got = r.data[(y * r.w as u32 + x) as usize];
                assert_eq!(
                    got,
                    expected_value(f, src),
                    "pixel ({}, {}) of rect {:?} encoding {}",
                    r.x as u32 + x,
                    r.y as u32 + y,
                    (r.x, r.y, r.w, r.h),
                    r.encoding
                );
            }
        }
    }
}

/// The client's framebuffer, in client values, built from the updates it received.
pub struct Screen {
    pub w: usize,
    pub h: usize,
    pub px: Vec<u32>,
}

impl Screen {
    pub fn new(w: u16, h: u16) -> Screen {
        Screen {
            w: w.into(),
            h: h.into(),
            px: vec![0; usize::from(w) * usize::from(h)],
        }
    }

    /// Applies an update's rectangles in order, as a client does: CopyRect reads the framebuffer as it is
    /// before the copy.
    pub fn apply(&mut self, rects: &[UpdateRect]) {
        for r in rects {
            let (x, y, w, h) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
            assert!(
                x + w <= self.w && y + h <= self.h,
                "rect {x},{y} {w}x{h} off screen"
            );
            match r.encoding {
                1 => {
                    let (sx, sy) = (r.data[0] as usize, r.data[1] as usize);
                    assert!(
                        sx + w <= self.w && sy + h <= self.h,
                        "CopyRect source off screen"
                    );
                    let src: Vec<u32> = (0..h)
                        .flat_map(|i| self.px[(sy + i) * self.w + sx..][..w].to_vec())
                        .collect();
                    for i in 0..h {
                        self.px[(y + i) * self.w + x..][..w].copy_from_slice(&src[i * w..][..w]);
                    }
                }
                e if e >= 0 => {
                    for i in 0..h {
                        self.px[(y + i) * self.w + x..][..w].copy_from_slice(&r.data[i * w..][..w]);
                    }
                }
                _ => {}
            }
        }
    }

    /// Asserts that the screen shows `source` in format `f`.
    pub fn assert_shows(&self, source: &[u32], f: &PixelFormat, what: &str) {
        for (i, (&got, &rgb)) in self.px.iter().zip(source).enumerate() {
            assert_eq!(
                got,
                expected_value(f, rgb),
                "{what}: pixel ({}, {})",
                i % self.w,
                i / self.w
            );
        }
    }
}

/// Whether a rect carries pixels (not a pseudo-rect, not a CopyRect).
pub fn is_painted(r: &UpdateRect) -> bool {
    r.encoding >= 0 && r.encoding != 1
}

/// The area covered by pixel rects.
pub fn covered(rects: &[UpdateRect]) -> u64 {
    rects
        .iter()
        .filter(|r| is_painted(r))
        .map(|r| u64::from(r.w) * u64::from(r.h))
        .sum()
}

/// Common pixel formats for tests.
pub fn formats() -> Vec<(&'static str, PixelFormat)> {
    let tc = |bpp, depth, be, max: [u16; 3], shift: [u8; 3]| PixelFormat {
        bits_per_pixel: bpp,
        depth,
        big_endian: be,
        true_colour: true,
        red_max: max[0],
        green_max: max[1],
        blue_max: max[2],
        red_shift: shift[0],
        green_shift: shift[1],
        blue_shift: shift[2],
    };
    vec![
        ("native", PixelFormat::NATIVE),
        ("rgbx", tc(32, 24, false, [255; 3], [0, 8, 16])),
        ("be32-high", tc(32, 24, true, [255; 3], [24, 16, 8])),
        ("be32-low", tc(32, 24, true, [255; 3], [16, 8, 0])),
        ("32-depth16", tc(32, 16, false, [31, 63, 31], [11, 5, 0])),
        ("rgb565le", tc(16, 16, false, [31, 63, 31], [11, 5, 0])),
        ("rgb565be", tc(16, 16, true, [31, 63, 31], [11, 5, 0])),
        ("rgb555le", tc(16, 15, false, [31, 31, 31], [10, 5, 0])),
        ("bgr233", PixelFormat::BGR233),
        (
            "colour-map",
            PixelFormat {
                true_colour: false,
                ..tc(8, 8, false, [0; 3], [0; 3])
            },
        ),
    ]
}
