//! The guest screen and the user's keyboard and pointer, as display front-ends (the VNC server, the SDL
//! window) see them. Front-ends depend on these traits and types only, never on the VGA device or the PS/2 and
//! USB devices behind them.
//!
//! The emulated display adapter implements [`DisplaySource`]. A [`DisplayHub`] owns the one rendered
//! [`Frame`]: the machine's display refresh (about 30 times a second) calls [`DisplayHub::refresh`], which asks
//! the source to render what changed and hands the changed rectangles to every [`DisplayConsumer`]. Each consumer
//! (a VNC client, the SDL window) accumulates its own dirty region and takes it when it is ready to send, so a
//! slow client never holds up the others and never makes the hub buffer more than one frame.

use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard, Weak};

use serde::{Deserialize, Serialize};

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl Rect {
    /// The whole of a `width` × `height` screen.
    pub fn full(width: u32, height: u32) -> Rect {
        Rect {
            x: 0,
            y: 0,
            w: width,
            h: height,
        }
    }

    /// This rectangle cut to a `width` × `height` screen (empty when wholly outside).
    pub fn clamp(self, width: u32, height: u32) -> Rect {
        let x = self.x.min(width);
        let y = self.y.min(height);
        Rect {
            x,
            y,
            w: self.w.min(width - x),
            h: self.h.min(height - y),
        }
    }

    /// Whether it covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }
}

/// The largest screen a source may render, in pixels per side; bounds the frame's memory.
pub const MAX_SIDE: u32 = 4096;

/// The rendered screen: `width` × `height` pixels, row-major, each `0x00RRGGBB`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` pixels.
    pub pixels: Vec<u32>,
}

impl Frame {
    /// A black frame of `width` × `height` (each side capped at [`MAX_SIDE`]).
    pub fn new(width: u32, height: u32) -> Frame {
        let (width, height) = (width.min(MAX_SIDE), height.min(MAX_SIDE));
        Frame {
            width,
            height,
            pixels: vec![0; width as usize * height as usize],
        }
    }

    /// Makes the frame `width` × `height` (capped), black; returns whether the size changed.
    pub fn resize(&mut self, width: u32, height: u32) -> bool {
        let (width, height) = (width.min(MAX_SIDE), height.min(MAX_SIDE));
        if width == self.width && height == self.height {
            return false;
        }
        *self = Frame::new(width, height);
        true
    }

    /// One row of pixels, if `y` is on the screen.
    pub fn row(&self, y: u32) -> Option<&[u32]> {
        let start = y.checked_mul(self.width)? as usize;
        self.pixels.get(start..start + self.width as usize)
    }
}

/// The emulated display adapter, seen from the hub.
pub trait DisplaySource: Send + Sync {
    /// Renders into `frame` what changed since the last call (resizing it on a mode change) and returns the
    /// changed rectangles: the whole frame after a resize.
    fn refresh(&self, frame: &mut Frame) -> Vec<Rect>;
}

/// PC keyboard input from a front-end.
pub trait KeyboardInput: Send + Sync {
    /// A key went down or up. `scancode` is a PC set-1 scancode; keys with an 0xE0 prefix are `0xE0nn`.
    fn key(&self, scancode: u16, down: bool);
    /// The keyboard LEDs the guest last set: bit 0 Scroll Lock, bit 1 Num Lock, bit 2 Caps Lock.
    fn leds(&self) -> u8 {
        0
    }
}

/// Mouse buttons in a pointer event: bit 0 left, 1 middle, 2 right, 3 wheel up, 4 wheel down.
pub type Buttons = u8;

/// Pointer input from a front-end.
pub trait PointerInput: Send + Sync {
    /// Relative motion in pixels and wheel steps (a PS/2 mouse).
    fn relative(&self, dx: i32, dy: i32, dz: i32, buttons: Buttons);
    /// An absolute position on a `width` × `height` screen (a USB tablet). Returns false when the machine has no
    /// absolute pointing device, so the front-end falls back to relative motion.
    fn absolute(&self, x: u32, y: u32, width: u32, height: u32, buttons: Buttons) -> bool;
}

struct ConsumerState {
    dirty: Vec<Rect>,
    resized: bool,
    closed: bool,
}

/// At most this many rectangles wait per consumer; more are merged into one bounding box.
const MAX_PENDING_RECTS: usize = 64;

/// One front-end's view of the hub: the rectangles changed since it last looked.
pub struct DisplayConsumer {
    hub: Weak<DisplayHub>,
    state: Mutex<ConsumerState>,
    changed: Condvar,
}

impl DisplayConsumer {
    fn lock(&self) -> std::sync::MutexGuard<'_, ConsumerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, rects: &[Rect], resized: bool) {
        let mut st = self.lock();
        st.resized |= resized;
        st.dirty.extend_from_slice(rects);
        if st.dirty.len() > MAX_PENDING_RECTS {
            let merged = bounding_box(&st.dirty);
            st.dirty = vec![merged];
        }
        self.changed.notify_all();
    }

    /// Takes the accumulated changes: (whether the screen size changed, changed rectangles).
    pub fn take(&self) -> (bool, Vec<Rect>) {
        let mut st = self.lock();
        (
            std::mem::take(&mut st.resized),
            std::mem::take(&mut st.dirty),
        )
    }

    /// Waits up to `timeout` for a change; returns whether there is one.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let st = self.lock();
        let (st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |s| {
                s.dirty.is_empty() && !s.resized && !s.closed
            })
            .unwrap_or_else(|e| e.into_inner());
        !st.dirty.is_empty() || st.resized
    }

    /// Marks the whole screen changed (a client asked for a non-incremental update).
    pub fn invalidate(&self) {
        if let Some(hub) = self.hub.upgrade() {
            let frame = hub.frame();
            let rect = Rect::full(frame.width, frame.height);
            drop(frame);
            self.add(&[rect], false);
        }
    }

    /// The current frame, for reading pixels.
    pub fn frame(&self) -> Option<Arc<DisplayHub>> {
        self.hub.upgrade()
    }
}

fn bounding_box(rects: &[Rect]) -> Rect {
    let x0 = rects.iter().map(|r| r.x).min().unwrap_or(0);
    let y0 = rects.iter().map(|r| r.y).min().unwrap_or(0);
    let x1 = rects.iter().map(|r| r.x + r.w).max().unwrap_or(0);
    let y1 = rects.iter().map(|r| r.y + r.h).max().unwrap_or(0);
    Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

/// The rendered screen shared by all front-ends.
pub struct DisplayHub {
    source: Arc<dyn DisplaySource>,
    frame: RwLock<Frame>,
    consumers: Mutex<Vec<Weak<DisplayConsumer>>>,
    /// When a front-end last passed user input to the guest, or the last refresh found a change: the refresh
    /// runs fast for a while after either, since the guest's answer (an echoed key, a moved cursor) follows.
    activity: Mutex<Option<std::time::Instant>>,
    /// The domain name, for window titles and RFB's ServerInit.
    pub name: String,
}

impl DisplayHub {
    /// A hub rendering `source` for a domain called `name`.
    pub fn new(source: Arc<dyn DisplaySource>, name: &str) -> Arc<DisplayHub> {
        Arc::new(DisplayHub {
            source,
            frame: RwLock::new(Frame::new(640, 480)),
            consumers: Mutex::new(Vec::new()),
            activity: Mutex::new(None),
            name: name.to_string(),
        })
    }

    /// A new front-end; the first `take` returns the whole screen, rendered now: while nobody watched, the
    /// machine's refresh did not render, so the frame may be stale.
    pub fn subscribe(self: &Arc<Self>) -> Arc<DisplayConsumer> {
        self.refresh();
        let frame = self.frame();
        let consumer = Arc::new(DisplayConsumer {
            hub: Arc::downgrade(self),
            state: Mutex::new(ConsumerState {
                dirty: vec![Rect::full(frame.width, frame.height)],
                resized: true,
                closed: false,
            }),
            changed: Condvar::new(),
        });
        drop(frame);
        self.consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&consumer));
        consumer
    }

    /// A front-end passed a key or pointer event to the guest: refresh fast for a while, so that what the guest
    /// draws in answer reaches the user sooner.
    pub fn note_input(&self) {
        *self.activity.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    /// Whether input arrived, or the screen changed, within [`ACTIVE_WINDOW`].
    pub fn recently_active(&self) -> bool {
        self.activity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < ACTIVE_WINDOW)
    }

    /// Renders what changed and tells every consumer. Called by the machine's display refresh.
    pub fn refresh(&self) {
        let (resized, rects) = {
            let mut frame = self.frame.write().unwrap_or_else(|e| e.into_inner());
            let (w, h) = (frame.width, frame.height);
            let rects: Vec<Rect> = self
                .source
                .refresh(&mut frame)
                .into_iter()
                .map(|r| r.clamp(frame.width, frame.height))
                .filter(|r| !r.is_empty())
                .collect();
            ((w, h) != (frame.width, frame.height), rects)
        };
        if rects.is_empty() && !resized {
            return;
        }
        *self.activity.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        let mut consumers = self.consumers.lock().unwrap_or_else(|e| e.into_inner());
        consumers.retain(|c| match c.upgrade() {
            Some(c) => {
                c.add(&rects, resized);
                true
            }
            None => false,
        });
    }

    /// Read access to the rendered frame.
    pub fn frame(&self) -> RwLockReadGuard<'_, Frame> {
        self.frame.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether some front-end is subscribed (dropped consumers do not count).
    pub fn has_consumers(&self) -> bool {
        self.consumers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|c| c.strong_count() > 0)
    }
}

/// How often the display is refreshed when nothing happens: about 30 times a second, as QEMU's and Xen's
/// qemu-dm's graphic consoles did.
pub const REFRESH_PERIOD_NS: u64 = 33_000_000;
/// How often it is refreshed within [`ACTIVE_WINDOW`] of user input or of a change on the screen. A refresh
/// that finds nothing costs little (text modes compare cells, linear modes read KVM's dirty log), and this
/// puts a typed character on the user's screen a few milliseconds after the guest draws it, not up to a whole
/// period later.
pub const ACTIVE_REFRESH_PERIOD_NS: u64 = 5_000_000;
/// How long input or a change keeps the refresh fast.
pub const ACTIVE_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

/// The machine's display refresh, as a [`Timed`](crate::timer::Timed) device on the timer loop: every
/// [`REFRESH_PERIOD_NS`] it renders what changed, but only while some front-end is watching. With nobody
/// connected nothing is rendered; the adapter keeps accumulating its changes, so the first refresh after a
/// client connects draws everything that changed meanwhile.
pub struct DisplayRefresh {
    hub: Arc<DisplayHub>,
}

impl DisplayRefresh {
    /// A refresh for `hub`.
    pub fn new(hub: Arc<DisplayHub>) -> Arc<DisplayRefresh> {
        Arc::new(DisplayRefresh { hub })
    }
}

impl crate::timer::Timed for DisplayRefresh {
    fn advance(&self, now_ns: u64) -> Option<u64> {
        if !self.hub.has_consumers() {
            return Some(now_ns.saturating_add(REFRESH_PERIOD_NS));
        }
        self.hub.refresh();
        let period = if self.hub.recently_active() {
            ACTIVE_REFRESH_PERIOD_NS
        } else {
            REFRESH_PERIOD_NS
        };
        Some(now_ns.saturating_add(period))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that draws one changing pixel per refresh, and changes size when told.
    struct Pattern(Mutex<(u32, u32, u32)>);
    impl DisplaySource for Pattern {
        fn refresh(&self, frame: &mut Frame) -> Vec<Rect> {
            let mut st = self.0.lock().unwrap();
            if frame.resize(st.0, st.1) {
                return vec![Rect::full(frame.width, frame.height)];
            }
            st.2 += 1;
            frame.pixels[0] = st.2;
            vec![Rect {
                x: 0,
                y: 0,
                w: 1,
                h: 1,
            }]
        }
    }

    #[test]
    fn refresh_renders_only_while_someone_watches() {
        use crate::timer::Timed;
        let source = Arc::new(Pattern(Mutex::new((8, 4, 0))));
        let hub = DisplayHub::new(source.clone(), "guest");
        let refresh = DisplayRefresh::new(hub.clone());
        assert_eq!(refresh.advance(1000), Some(1000 + REFRESH_PERIOD_NS));
        // Nobody subscribed: the source was not asked to render (still 640x480, counter untouched).
        assert_eq!(hub.frame().width, 640);
        assert_eq!(source.0.lock().unwrap().2, 0);
        // Subscribing renders at once (the resize to 8x4), so the first picture is current.
        let consumer = hub.subscribe();
        assert!(hub.has_consumers());
        assert_eq!((hub.frame().width, hub.frame().height), (8, 4));
        assert_eq!(source.0.lock().unwrap().2, 0);
        // Changes keep the refresh fast for a while.
        assert_eq!(refresh.advance(2000), Some(2000 + ACTIVE_REFRESH_PERIOD_NS));
        assert_eq!(source.0.lock().unwrap().2, 1);
        refresh.advance(3000);
        assert_eq!(source.0.lock().unwrap().2, 2);
        drop(consumer);
        assert!(!hub.has_consumers());
        refresh.advance(4000);
        assert_eq!(source.0.lock().unwrap().2, 2);
    }

    /// A source whose picture never changes after the first render.
    struct Still(Mutex<bool>);
    impl DisplaySource for Still {
        fn refresh(&self, frame: &mut Frame) -> Vec<Rect> {
            let mut drawn = self.0.lock().unwrap();
            if frame.resize(4, 4) || !*drawn {
                *drawn = true;
                return vec![Rect::full(4, 4)];
            }
            Vec::new()
        }
    }

    #[test]
    fn refresh_is_fast_after_input_and_slow_when_idle() {
        use crate::timer::Timed;
        let hub = DisplayHub::new(Arc::new(Still(Mutex::new(false))), "guest");
        let refresh = DisplayRefresh::new(hub.clone());
        let _consumer = hub.subscribe();
        // Idle: nothing is reported for longer than the active window → the normal period.
        *hub.activity.lock().unwrap() = None;
        assert_eq!(refresh.advance(0), Some(REFRESH_PERIOD_NS));
        hub.note_input();
        assert_eq!(refresh.advance(10), Some(10 + ACTIVE_REFRESH_PERIOD_NS));
        *hub.activity.lock().unwrap() =
            Some(std::time::Instant::now() - ACTIVE_WINDOW - std::time::Duration::from_millis(1));
        assert_eq!(refresh.advance(20), Some(20 + REFRESH_PERIOD_NS));
    }

    #[test]
    fn consumers_accumulate_changes_independently() {
        let source = Arc::new(Pattern(Mutex::new((8, 4, 0))));
        let hub = DisplayHub::new(source.clone(), "guest");
        let a = hub.subscribe(); // renders: the resize to 8x4
        let (resized, rects) = a.take();
        assert!(resized);
        assert!(rects.contains(&Rect::full(8, 4)));
        let b = hub.subscribe(); // renders: pixel 0 becomes 1
        a.take();
        hub.refresh();
        hub.refresh();
        assert_eq!(
            a.take(),
            (
                false,
                vec![
                    Rect {
                        x: 0,
                        y: 0,
                        w: 1,
                        h: 1
                    };
                    2
                ]
            )
        );
        let (_, rects_b) = b.take();
        assert!(
            rects_b.contains(&Rect::full(8, 4)),
            "a new consumer starts with the whole screen"
        );
        assert_eq!(hub.frame().pixels[0], 3);
    }

    #[test]
    fn a_slow_consumer_holds_a_bounded_list() {
        let hub = DisplayHub::new(Arc::new(Pattern(Mutex::new((8, 4, 0)))), "guest");
        let slow = hub.subscribe();
        for _ in 0..10_000 {
            hub.refresh();
        }
        let (_, rects) = slow.take();
        assert!(rects.len() <= MAX_PENDING_RECTS);
    }

    #[test]
    fn frames_are_bounded_and_rects_clamped() {
        let mut f = Frame::new(100_000, 100_000);
        assert_eq!((f.width, f.height), (MAX_SIDE, MAX_SIDE));
        assert!(f.resize(10, 10));
        assert_eq!(
            Rect {
                x: 8,
                y: 8,
                w: 100,
                h: 100
            }
            .clamp(10, 10),
            Rect {
                x: 8,
                y: 8,
                w: 2,
                h: 2
            }
        );
        assert!(Rect {
            x: 20,
            y: 0,
            w: 5,
            h: 5
        }
        .clamp(10, 10)
        .is_empty());
        assert_eq!(f.row(9).map(<[u32]>::len), Some(10));
        assert!(f.row(10).is_none());
    }
}
