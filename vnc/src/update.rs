//! The writer side of a connection: FramebufferUpdates, sent only when the client asked.
//!
//! RFB is pull-based: the server answers a FramebufferUpdateRequest with one update and then waits for the next
//! request. That is the throttle: a client on a slow link asks less often, while changes keep accumulating in
//! its bounded [`DirtyRegion`], so a slow client costs at most one full screen of work per request and never
//! more memory. An incremental request is answered only once something in its area changed; a
//! non-incremental one gets its whole area.
//!
//! An update's changes are taken from the hub and all its rectangles' pixels copied out of the frame under
//! one read lock; they are then converted to the client's format, encoded and written without it, so the lock
//! is never held while writing to the socket. Taking and copying under one lock means the client receives
//! exactly the frame those changes lead to, which CopyRect relies on (below).
//!
//! CopyRect: for a client that lists it (encoding 1) the consumer accepts moves, and when the hub finds that
//! the screen scrolled, the update starts with a CopyRect rectangle (the move's destination, with its source
//! position), followed by the rectangles to repaint in the client's preferred encoding; clients apply
//! rectangles in order, so the copy comes before the paint. The copy reads the client's own framebuffer, so
//! it must be up to date in the source area except where it will be repainted anyway: when a move arrives
//! while some rectangles are still unsent (outside an earlier request's area), the parts of them inside the
//! move's source are also marked dirty where the move puts them, and a move arriving while another is unsent
//! is composed with it ([`Move::compose`]). A move is sent as plain dirty rectangles instead when the client
//! does not list CopyRect, when its destination is not wholly inside the requested area, when the rectangles
//! sent cover it anyway, or when the screen size changed.
//!
//! Pseudo-rectangles ride on updates too: DesktopSize or ExtendedDesktopSize when the guest changed mode (alone
//! with other pseudo-rectangles, never with pixels, so the client resizes before drawing), ExtendedDesktopSize
//! replies (SetDesktopSize is always refused: the guest decides its mode), the QEMU Extended Key Event ack,
//! QEMU LED state whenever the guest's LEDs change, and QEMU pointer motion change when the guest turns out to
//! have no absolute pointer.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use devices::display::{DisplayChanges, DisplayConsumer, Frame, Move, Rect};

use crate::client::{ClientError, Control};
use crate::dirty::{self, DirtyRegion};
use crate::encodings::{copyrect, hextile, raw, tight, zrle, Encoding};
use crate::pixel::{bgr233_palette, PixelFormat, PixelWriter};
use crate::protocol::{self, encoding};
use crate::server::Inner;

/// How long the writer waits for changes while a request is outstanding before it re-checks the client's
/// other wishes (new encodings, LED changes).
const PENDING_POLL: Duration = Duration::from_millis(40);
/// How long it waits for a request before re-checking.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// zlib level when the client gives no compression-level hint.
pub const DEFAULT_ZLIB_LEVEL: u32 = 5;

/// What the client's SetEncodings enabled.
#[derive(Debug, Default, Clone, Copy)]
struct Features {
    encoding: Option<Encoding>,
    copy_rect: bool,
    desktop_size: bool,
    extended_desktop: bool,
    ext_key: bool,
    pointer_change: bool,
    leds: bool,
    zlib_level: Option<u32>,
}

impl Features {
    fn from_list(list: &[i32]) -> Features {
        let has = |e| list.contains(&e);
        Features {
            encoding: Some(Encoding::preferred(list)),
            copy_rect: has(encoding::COPY_RECT),
            desktop_size: has(encoding::DESKTOP_SIZE),
            extended_desktop: has(encoding::EXTENDED_DESKTOP_SIZE),
            ext_key: has(encoding::QEMU_EXTENDED_KEY_EVENT),
            pointer_change: has(encoding::QEMU_POINTER_MOTION_CHANGE),
            leds: has(encoding::QEMU_LED_STATE),
            zlib_level: list
                .iter()
                .find(|&&e| (encoding::COMPRESS_LEVEL_0..=encoding::COMPRESS_LEVEL_9).contains(&e))
                .map(|&e| (e - encoding::COMPRESS_LEVEL_0) as u32),
        }
    }
}

struct Writer<'a> {
    inner: &'a Inner,
    control: &'a Control,
    consumer: &'a DisplayConsumer,
    out: TcpStream,
    pw: PixelWriter,
    features: Features,
    size: (u32, u32),
    dirty: DirtyRegion,
    /// A move taken from the hub and not yet sent: it applies before everything in `dirty`.
    moved: Option<Move>,
    zrle: Option<zrle::ZrleEncoder>,
    tight: Option<tight::TightEncoder>,
    ext_key_ack: bool,
    leds_sent: Option<u8>,
    pointer_mode: Option<bool>,
    relative_announced: bool,
    eds_reply: Option<(u16, u16)>,
    /// The native pixels of the rectangles being sent, one after the other.
    native: Vec<u32>,
    values: Vec<u32>,
    buf: Vec<u8>,
}

/// Serves updates until the connection closes.
pub(crate) fn write_loop(
    inner: &Arc<Inner>,
    control: &Arc<Control>,
    consumer: &DisplayConsumer,
    out: TcpStream,
) -> Result<(), ClientError> {
    let size = control.lock().size;
    let mut w = Writer {
        inner,
        control,
        consumer,
        out,
        pw: PixelWriter::new(PixelFormat::NATIVE),
        features: Features::default(),
        size,
        dirty: DirtyRegion::new(),
        moved: None,
        zrle: None,
        tight: None,
        ext_key_ack: false,
        leds_sent: None,
        pointer_mode: None,
        relative_announced: false,
        eds_reply: None,
        native: Vec::new(),
        values: Vec::new(),
        buf: Vec::new(),
    };
    loop {
        let (request, gen, full) = {
            let mut p = control.lock();
            if p.closed || inner.stopping() {
                return Ok(());
            }
            if let Some(f) = p.format.take() {
                drop(p);
                w.set_format(f)?;
                continue;
            }
            if let Some(list) = p.encodings.take() {
                w.set_encodings(&list);
            }
            if std::mem::take(&mut p.desktop_size_reply) {
                // Reason 1 (this client asked), status 1 (administratively prohibited).
                w.eds_reply = Some((1, 1));
            }
            if p.want_relative && w.features.pointer_change && !w.relative_announced {
                w.pointer_mode = Some(false);
            }
            let Some(request) = p.request else {
                let _ = control.cond.wait_timeout(p, IDLE_POLL);
                continue;
            };
            (request, p.request_gen, p.full.take())
        };
        if let Some(f) = full {
            w.dirty.add(f);
            if w.features.extended_desktop && w.eds_reply.is_none() {
                w.eds_reply = Some((0, 0));
            }
        }
        if w.features.leds {
            let leds = inner.keyboard.leds() & 7;
            if w.leds_sent != Some(leds) {
                w.leds_sent = None;
            }
        }
        if w.send_update(request)? {
            let mut p = control.lock();
            if p.request_gen == gen {
                p.request = None;
            }
            p.size = w.size;
        } else {
            consumer.wait(PENDING_POLL);
        }
    }
}

impl Writer<'_> {
    fn set_format(&mut self, f: PixelFormat) -> Result<(), ClientError> {
        self.pw = PixelWriter::new(f);
        if !f.true_colour {
            self.out
                .write_all(&protocol::set_colour_map_entries(&bgr233_palette()))?;
        }
        self.dirty.add(Rect::full(self.size.0, self.size.1));
        Ok(())
    }

    fn set_encodings(&mut self, list: &[i32]) {
        let old = self.features;
        let new = Features::from_list(list);
        if new.ext_key && !old.ext_key {
            self.ext_key_ack = true;
        }
        if new.leds && !old.leds {
            self.leds_sent = None;
        }
        if !new.pointer_change {
            self.pointer_mode = None;
        }
        self.consumer.accept_moves(new.copy_rect);
        if !new.copy_rect {
            if let Some(m) = self.moved.take() {
                self.dirty.add(m.dst);
            }
        }
        self.features = Features {
            zlib_level: old.zlib_level.or(new.zlib_level),
            ..new
        };
    }

    /// The pseudo-rectangles due now: (count, bytes).
    fn pseudo_rects(&mut self) -> (u16, Vec<u8>) {
        let mut n = 0u16;
        let mut out = Vec::new();
        let (w, h) = (self.size.0 as u16, self.size.1 as u16);
        if std::mem::take(&mut self.ext_key_ack) {
            protocol::rect_header(&mut out, 0, 0, w, h, encoding::QEMU_EXTENDED_KEY_EVENT);
            n += 1;
        }
        if self.features.leds && self.leds_sent.is_none() {
            let leds = self.inner.keyboard.leds() & 7;
            protocol::rect_header(&mut out, 0, 0, 0, 0, encoding::QEMU_LED_STATE);
            out.push(leds);
            self.leds_sent = Some(leds);
            n += 1;
        }
        if let Some(absolute) = self.pointer_mode.take() {
            protocol::rect_header(
                &mut out,
                u16::from(absolute),
                0,
                w,
                h,
                encoding::QEMU_POINTER_MOTION_CHANGE,
            );
            self.relative_announced = !absolute;
            // Before the bytes leave: the client may answer with relative motion as soon as it reads them.
            self.control.lock().relative_announced = !absolute;
            n += 1;
        }
        (n, out)
    }

    fn eds_rect(&self, out: &mut Vec<u8>, reason: u16, status: u16) {
        let (w, h) = (self.size.0 as u16, self.size.1 as u16);
        protocol::rect_header(out, reason, status, w, h, encoding::EXTENDED_DESKTOP_SIZE);
        out.extend_from_slice(&[1, 0, 0, 0]);
        protocol::put_u32(out, 0); // screen id
        protocol::put_u16(out, 0);
        protocol::put_u16(out, 0);
        protocol::put_u16(out, w);
        protocol::put_u16(out, h);
        protocol::put_u32(out, 0); // flags
    }

    /// Adds changes taken from the hub, for a frame of `frame_size`.
    fn absorb(&mut self, changes: DisplayChanges, frame_size: (u32, u32)) {
        if let Some(m) = changes.moved {
            if self.features.copy_rect && !changes.resized && frame_size == self.size {
                // Unsent rectangles are stale in the client's framebuffer: where the copy carries them, they
                // must be repainted too.
                let carried: Vec<Rect> = self
                    .dirty
                    .rects()
                    .iter()
                    .filter_map(|d| m.carried(d))
                    .collect();
                for r in carried {
                    self.dirty.add(r);
                }
                self.moved = match self.moved.take() {
                    None => Some(m),
                    Some(first) => {
                        let (both, paint) = first.compose(&m);
                        for r in paint {
                            self.dirty.add(r);
                        }
                        both
                    }
                };
            } else {
                self.dirty.add(m.dst);
            }
        }
        for r in changes.rects {
            self.dirty.add(r);
        }
    }

    /// The pending move, if it can go out in an update for `area`; otherwise it becomes a dirty rectangle.
    fn sendable_move(&mut self, area: &Rect) -> Option<Move> {
        let m = self.moved.take()?;
        let painted_anyway = self
            .dirty
            .rects()
            .iter()
            .any(|d| dirty::contains(d, &m.dst));
        if self.features.copy_rect && dirty::contains(area, &m.dst) && !painted_anyway {
            Some(m)
        } else {
            self.dirty.add(m.dst);
            None
        }
    }

    /// Whether the client must be told of a new screen size before anything else.
    fn must_resize(&self, frame_size: (u32, u32)) -> bool {
        frame_size != self.size && (self.features.extended_desktop || self.features.desktop_size)
    }

    /// Answers the outstanding request if there is anything to send; returns whether it did.
    fn send_update(&mut self, request: Rect) -> Result<bool, ClientError> {
        let (frame_size, moved, pieces) = {
            let frame = self.inner.hub.frame();
            let frame_size = (frame.width, frame.height);
            let changes = self.consumer.take();
            self.absorb(changes, frame_size);
            if self.must_resize(frame_size) || self.eds_reply.is_some() {
                (frame_size, None, Vec::new())
            } else {
                let area = request.clamp(self.size.0, self.size.1);
                let moved = if area.is_empty() {
                    None
                } else {
                    self.sendable_move(&area)
                };
                let rects = if area.is_empty() {
                    Vec::new()
                } else {
                    self.dirty.take_within(&area)
                };
                // The rectangles taken may have been merged into one that covers the copy's destination.
                let moved = moved.filter(|m| !rects.iter().any(|r| dirty::contains(r, &m.dst)));
                let pieces = self.split(&rects);
                self.native.clear();
                for r in &pieces {
                    copy_pixels(&frame, *r, &mut self.native);
                }
                (frame_size, moved, pieces)
            }
        };
        if self.must_resize(frame_size) {
            self.size = frame_size;
            self.moved = None;
            self.dirty.clear();
            self.dirty.add(Rect::full(frame_size.0, frame_size.1));
            let (n, mut body) = self.pseudo_rects();
            if self.features.extended_desktop {
                self.eds_reply = None;
                self.eds_rect(&mut body, 0, 0);
            } else {
                let (w, h) = (self.size.0 as u16, self.size.1 as u16);
                protocol::rect_header(&mut body, 0, 0, w, h, encoding::DESKTOP_SIZE);
            }
            self.write_pseudo_update(n + 1, &body)?;
            return Ok(true);
        }
        if let Some((reason, status)) = self.eds_reply.take() {
            let (n, mut body) = self.pseudo_rects();
            self.eds_rect(&mut body, reason, status);
            self.write_pseudo_update(n + 1, &body)?;
            return Ok(true);
        }
        let (n, mut body) = self.pseudo_rects();
        if pieces.is_empty() && moved.is_none() && n == 0 {
            return Ok(false);
        }
        let n = n + u16::from(moved.is_some());
        if let Some(m) = moved {
            protocol::rect_header(
                &mut body,
                m.dst.x as u16,
                m.dst.y as u16,
                m.dst.w as u16,
                m.dst.h as u16,
                encoding::COPY_RECT,
            );
            copyrect::encode(m.src_x as u16, m.src_y as u16, &mut body);
        }
        let enc = self.features.encoding.unwrap_or(Encoding::Raw);
        let count = u16::try_from(pieces.len() + usize::from(n)).unwrap_or(u16::MAX);
        let mut head = Vec::with_capacity(4 + body.len());
        protocol::update_header(&mut head, count);
        head.extend_from_slice(&body);
        self.out.write_all(&head)?;
        let mut offset = 0;
        for r in pieces.iter().take(usize::from(count - n)) {
            let len = r.w as usize * r.h as usize;
            self.write_rect(*r, offset, enc)?;
            offset += len;
        }
        Ok(true)
    }

    /// The rectangles as the encoding sends them (Tight limits a rectangle's size).
    fn split(&self, rects: &[Rect]) -> Vec<Rect> {
        if self.features.encoding != Some(Encoding::Tight) {
            return rects.to_vec();
        }
        rects
            .iter()
            .flat_map(|r| {
                tight::split(r.x as usize, r.y as usize, r.w as usize, r.h as usize)
                    .into_iter()
                    .map(|(x, y, w, h)| Rect {
                        x: x as u32,
                        y: y as u32,
                        w: w as u32,
                        h: h as u32,
                    })
            })
            .collect()
    }

    fn write_pseudo_update(&mut self, n: u16, body: &[u8]) -> Result<(), ClientError> {
        let mut head = Vec::with_capacity(4 + body.len());
        protocol::update_header(&mut head, n);
        head.extend_from_slice(body);
        self.out.write_all(&head)?;
        Ok(())
    }

    /// Encodes and writes rectangle `r`, whose native pixels start at `offset` in `native`.
    fn write_rect(&mut self, r: Rect, offset: usize, enc: Encoding) -> Result<(), ClientError> {
        let len = r.w as usize * r.h as usize;
        let native = self.native.get(offset..offset + len).unwrap_or(&[]);
        self.pw.convert(native, &mut self.values);
        let (w, h) = (r.w as usize, r.h as usize);
        self.buf.clear();
        protocol::rect_header(
            &mut self.buf,
            r.x as u16,
            r.y as u16,
            r.w as u16,
            r.h as u16,
            enc.number(),
        );
        let level = self.features.zlib_level.unwrap_or(DEFAULT_ZLIB_LEVEL);
        match enc {
            Encoding::Raw => raw::encode(&self.values, &self.pw, &mut self.buf),
            Encoding::Hextile => hextile::encode(&self.values, w, h, &self.pw, &mut self.buf),
            Encoding::Zrle => self
                .zrle
                .get_or_insert_with(|| zrle::ZrleEncoder::new(level))
                .encode(&self.values, w, h, &self.pw, &mut self.buf)?,
            Encoding::Tight => self
                .tight
                .get_or_insert_with(|| tight::TightEncoder::new(level))
                .encode(&self.values, w, h, &self.pw, &mut self.buf)?,
        }
        self.out.write_all(&self.buf)?;
        if self.buf.capacity() > 4 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }
}

/// Appends the pixels of `r` (rows past the frame's edge as black).
fn copy_pixels(f: &Frame, r: Rect, out: &mut Vec<u32>) {
    out.reserve(r.w as usize * r.h as usize);
    for y in r.y..r.y + r.h {
        let row = f.row(y).unwrap_or(&[]);
        let x0 = (r.x as usize).min(row.len());
        let x1 = ((r.x + r.w) as usize).min(row.len());
        out.extend_from_slice(&row[x0..x1]);
        let missing = r.w as usize - (x1 - x0);
        out.resize(out.len() + missing, 0);
    }
}
