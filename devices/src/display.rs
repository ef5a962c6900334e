//! The guest screen and the user's keyboard and pointer, as display front-ends (the VNC server, the SDL
//! window) see them. Front-ends depend on these traits and types only, never on the VGA device or the PS/2 and
//! USB devices behind them.
//!
//! The emulated display adapter implements [`DisplaySource`]. A [`DisplayHub`] owns the one rendered
//! [`Frame`]: the machine's display refresh (about 30 times a second) calls [`DisplayHub::refresh`], which asks
//! the source to render what changed and hands the changed rectangles to every [`DisplayConsumer`]. Each consumer
//! (a VNC client, the SDL window) accumulates its own dirty region and takes it when it is ready to send, so a
//! slow client never holds up the others and never makes the hub buffer more than one frame.
//!
//! Moves: while some consumer can copy pixels it already has ([`DisplayConsumer::accept_moves`]; a VNC client
//! that lists CopyRect), the hub keeps the previous frame and, after a large change, looks for a vertical scroll
//! ([`scroll`]). A consumer then takes a [`Move`] ("copy this area from there") plus the rectangles to paint
//! after the copy. The rules that keep a consumer's picture right:
//! - A consumer's pending changes always mean: apply the move (if any) to the picture as it was at the last
//!   `take`, then paint the rectangles from the current frame.
//! - A move arriving while rectangles are pending: those rectangles are kept, and the parts of them inside the
//!   move's source are also added where the move puts them (the consumer's copy of them is stale, so the copy
//!   carries stale pixels along).
//! - A second move before the consumer took the first: pending rectangles are carried along by it as above,
//!   and the two moves become one ([`Move::compose`]): a guest that scrolls a line per refresh while a client
//!   takes every few refreshes still costs one copy plus the new lines. Moves that do not compose (different
//!   columns) become dirty rectangles.
//! - A move while a resize is pending, or for a consumer that does not accept moves: its destination becomes
//!   a dirty rectangle (always correct, merely more pixels).
//! - `take` drops a move whose destination is wholly inside a pending rectangle (it would be painted over).
//!
//! The hub tells consumers about a refresh before it releases the frame's write lock, so a consumer that
//! takes its changes and reads the frame under one read lock ([`DisplayHub::frame`]) reads exactly the frame
//! those changes lead to. Front-ends that send moves need that: the pixels they sent earlier are the source of
//! a later copy.

pub mod scroll;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, Weak};

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

    /// One past the right edge.
    pub fn right(&self) -> u32 {
        self.x.saturating_add(self.w)
    }

    /// One past the bottom edge.
    pub fn bottom(&self) -> u32 {
        self.y.saturating_add(self.h)
    }

    /// The overlap with `other`, if any.
    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        (x1 > x0 && y1 > y0).then(|| Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        })
    }

    /// Whether `other` lies wholly inside.
    pub fn contains(&self, other: &Rect) -> bool {
        self.x <= other.x
            && self.y <= other.y
            && self.right() >= other.right()
            && self.bottom() >= other.bottom()
    }
}

/// An area that moved on the screen: `dst` now shows what the previous frame had at (`src_x`, `src_y`), an area
/// of the same size. A front-end applies it by copying within its own picture (reading all of the source before
/// writing, as the two may overlap). The hub finds vertical scrolls ([`scroll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// Where the pixels are now.
    pub dst: Rect,
    /// Left edge of where they were.
    pub src_x: u32,
    /// Top edge of where they were.
    pub src_y: u32,
}

impl Move {
    /// Where the pixels were.
    pub fn src(&self) -> Rect {
        Rect {
            x: self.src_x,
            y: self.src_y,
            ..self.dst
        }
    }

    /// Where the move puts the part of `r` inside its source, if any: a front-end whose copy of `r` is stale
    /// must repaint that too after applying the move.
    pub fn carried(&self, r: &Rect) -> Option<Rect> {
        let part = r.intersect(&self.src())?;
        // `part` lies inside the source, so the subtractions cannot wrap.
        Some(Rect {
            x: (part.x - self.src_x).saturating_add(self.dst.x),
            y: (part.y - self.src_y).saturating_add(self.dst.y),
            ..part
        })
    }

    /// How far up the pixels went (negative: down).
    fn rows_up(&self) -> i64 {
        i64::from(self.src_y) - i64::from(self.dst.y)
    }

    /// `self` followed by `next`, as one move: for pending changes that already hold `self` when `next`
    /// arrives (the pending rectangles must also be carried along by `next`, see [`Move::carried`]). Returns the
    /// move replacing both, if any, and the rectangles to paint because it does not cover them.
    ///
    /// Two vertical moves over the same columns compose: row `y` of `next`'s destination shows what row
    /// `y + next_up` showed after `self`, which was row `y + next_up + self_up` before, for the rows where
    /// `y + next_up` is in `self`'s destination. The other rows of both destinations are repainted. Otherwise
    /// both destinations are repainted.
    pub fn compose(&self, next: &Move) -> (Option<Move>, Vec<Rect>) {
        let vertical = |m: &Move| m.src_x == m.dst.x;
        let apart = || (None, vec![self.dst, next.dst]);
        if !vertical(self)
            || !vertical(next)
            || (self.dst.x, self.dst.w) != (next.dst.x, next.dst.w)
        {
            return apart();
        }
        let (d1, d2) = (self.rows_up(), next.rows_up());
        let lo = i64::from(next.dst.y).max(i64::from(self.dst.y) - d2);
        let hi = i64::from(next.dst.bottom()).min(i64::from(self.dst.bottom()) - d2);
        let (Ok(lo), Ok(hi)) = (u32::try_from(lo), u32::try_from(hi)) else {
            return apart();
        };
        if lo >= hi {
            return apart();
        }
        let rows_outside = |r: &Rect| {
            let mut out = Vec::new();
            if r.y < lo {
                out.push(Rect {
                    h: r.bottom().min(lo) - r.y,
                    ..*r
                });
            }
            if r.bottom() > hi {
                let y = r.y.max(hi);
                out.push(Rect {
                    y,
                    h: r.bottom() - y,
                    ..*r
                });
            }
            out
        };
        let mut paint = rows_outside(&self.dst);
        paint.extend(rows_outside(&next.dst));
        let src_y = i64::from(lo) + d1 + d2;
        let moved = match u32::try_from(src_y) {
            // Up and back down by as much: the rows are where they were.
            Ok(src_y) if src_y == lo => None,
            Ok(src_y) => Some(Move {
                dst: Rect {
                    y: lo,
                    h: hi - lo,
                    ..next.dst
                },
                src_x: next.dst.x,
                src_y,
            }),
            Err(_) => return apart(),
        };
        (moved, paint)
    }
}

/// What a consumer takes: apply `moved` first, then paint `rects` from the current frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisplayChanges {
    /// The screen size changed (front-ends redraw everything).
    pub resized: bool,
    /// An area to copy within the front-end's picture before painting (only for consumers that accept moves).
    pub moved: Option<Move>,
    /// Rectangles to paint from the frame.
    pub rects: Vec<Rect>,
}

impl DisplayChanges {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        !self.resized && self.moved.is_none() && self.rects.is_empty()
    }

    /// The changes as rectangles to paint only, for a front-end that redraws rather than copies: the move's
    /// destination joins them.
    pub fn into_rects(self) -> Vec<Rect> {
        let mut rects = self.rects;
        rects.extend(self.moved.map(|m| m.dst));
        rects
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
    moved: Option<Move>,
    resized: bool,
    closed: bool,
}

/// At most this many rectangles wait per consumer; more are merged into one bounding box.
const MAX_PENDING_RECTS: usize = 64;

/// One front-end's view of the hub: the changes since it last looked.
pub struct DisplayConsumer {
    hub: Weak<DisplayHub>,
    state: Mutex<ConsumerState>,
    changed: Condvar,
    accepts_moves: AtomicBool,
}

impl DisplayConsumer {
    fn lock(&self) -> MutexGuard<'_, ConsumerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds one refresh's changes, following the rules in the [module docs](self).
    fn add(&self, moved: Option<&Move>, rects: &[Rect], resized: bool) {
        let mut st = self.lock();
        st.resized |= resized;
        if resized {
            // A new mode: everything is redrawn, and a pending move belongs to the old one.
            if let Some(m) = st.moved.take() {
                st.dirty.push(m.dst);
            }
        }
        if let Some(m) = moved {
            if !self.accepts_moves.load(Ordering::Acquire) || st.resized {
                st.dirty.push(m.dst);
            } else {
                let carried: Vec<Rect> = st.dirty.iter().filter_map(|d| m.carried(d)).collect();
                st.dirty.extend(carried);
                st.moved = match st.moved.take() {
                    None => Some(*m),
                    Some(first) => {
                        let (both, paint) = first.compose(m);
                        st.dirty.extend(paint);
                        both
                    }
                };
            }
        }
        st.dirty.extend_from_slice(rects);
        if st.dirty.len() > MAX_PENDING_RECTS {
            let merged = bounding_box(&st.dirty);
            st.dirty = vec![merged];
        }
        self.changed.notify_all();
    }

    /// Whether this front-end applies [`Move`]s (copies within its own picture). Off by default: moved areas
    /// then arrive as dirty rectangles. Turning it off turns a pending move into a dirty rectangle.
    pub fn accept_moves(&self, on: bool) {
        self.accepts_moves.store(on, Ordering::Release);
        if on {
            if let Some(hub) = self.hub.upgrade() {
                hub.start_history();
            }
        } else {
            let mut st = self.lock();
            if let Some(m) = st.moved.take() {
                st.dirty.push(m.dst);
            }
        }
    }

    /// Takes the accumulated changes.
    pub fn take(&self) -> DisplayChanges {
        let mut st = self.lock();
        let moved = st.moved.take();
        let rects = std::mem::take(&mut st.dirty);
        // A move painted over anyway is not worth copying.
        let moved = moved.filter(|m| !rects.iter().any(|r| r.contains(&m.dst)));
        DisplayChanges {
            resized: std::mem::take(&mut st.resized),
            moved,
            rects,
        }
    }

    /// Waits up to `timeout` for a change; returns whether there is one.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let st = self.lock();
        let pending = |s: &ConsumerState| !s.dirty.is_empty() || s.moved.is_some() || s.resized;
        let (st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |s| !pending(s) && !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        pending(&st)
    }

    /// Marks the whole screen changed (a client asked for a non-incremental update).
    pub fn invalidate(&self) {
        if let Some(hub) = self.hub.upgrade() {
            let frame = hub.frame();
            let rect = Rect::full(frame.width, frame.height);
            drop(frame);
            self.add(None, &[rect], false);
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
    let x1 = rects.iter().map(Rect::right).max().unwrap_or(0);
    let y1 = rects.iter().map(Rect::bottom).max().unwrap_or(0);
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
    /// The previous frame for scroll detection; locked only while `frame` is write-locked.
    history: Mutex<scroll::History>,
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
            history: Mutex::new(scroll::History::default()),
            consumers: Mutex::new(Vec::new()),
            activity: Mutex::new(None),
            name: name.to_string(),
        })
    }

    /// A new front-end; the first `take` returns the whole screen, rendered now: while nobody watched, the
    /// machine's refresh did not render, so the frame may be stale. It does not accept moves until it says so
    /// ([`DisplayConsumer::accept_moves`]).
    pub fn subscribe(self: &Arc<Self>) -> Arc<DisplayConsumer> {
        self.refresh();
        let frame = self.frame();
        let consumer = Arc::new(DisplayConsumer {
            hub: Arc::downgrade(self),
            state: Mutex::new(ConsumerState {
                dirty: vec![Rect::full(frame.width, frame.height)],
                moved: None,
                resized: true,
                closed: false,
            }),
            changed: Condvar::new(),
            accepts_moves: AtomicBool::new(false),
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

    fn history(&self) -> MutexGuard<'_, scroll::History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts keeping the previous frame (from the current one), so the next refresh can find a scroll.
    fn start_history(&self) {
        let frame = self.frame();
        self.history().start(&frame);
    }

    /// Renders what changed and tells every consumer. Called by the machine's display refresh.
    pub fn refresh(&self) {
        // Held until every consumer has been told (see the module docs).
        let mut frame = self.frame.write().unwrap_or_else(|e| e.into_inner());
        let (w, h) = (frame.width, frame.height);
        let rects: Vec<Rect> = self
            .source
            .refresh(&mut frame)
            .into_iter()
            .map(|r| r.clamp(frame.width, frame.height))
            .filter(|r| !r.is_empty())
            .collect();
        let resized = (w, h) != (frame.width, frame.height);
        let mut consumers = self.consumers.lock().unwrap_or_else(|e| e.into_inner());
        let live: Vec<Arc<DisplayConsumer>> = consumers.iter().filter_map(Weak::upgrade).collect();
        consumers.retain(|c| c.strong_count() > 0);
        drop(consumers);
        let moves_wanted = live.iter().any(|c| c.accepts_moves.load(Ordering::Acquire));
        let (moved, rects) = if moves_wanted {
            self.history().record(&frame, rects, resized)
        } else {
            self.history().forget();
            (None, rects)
        };
        if rects.is_empty() && moved.is_none() && !resized {
            return;
        }
        *self.activity.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        for c in &live {
            c.add(moved.as_ref(), &rects, resized);
        }
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
            // Nobody watches: the previous frame kept for scroll detection is not needed.
            self.hub.history().forget();
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
