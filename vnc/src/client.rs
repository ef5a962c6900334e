//! One client connection: handshake, then a reader thread for the client's messages and the connection thread
//! as the writer of updates (see [`crate::update`]).
//!
//! The two threads share a [`Control`]: the reader records what the client asked for (an update request, a
//! new pixel format or encoding list, a desktop-size request) and the writer picks it up. Input events never
//! wait for the writer: the reader hands keys and pointer events straight to the guest's devices.
//!
//! Timeouts: the socket's read timeout is a short poll interval, so the reader notices a closed connection
//! quickly; a client may be silent between messages for as long as it likes, but once a message has begun it
//! must keep sending, or it is dropped after the configured I/O timeout. The handshake as a whole has a
//! deadline. Writes time out the same way, so a client that stops reading cannot hold its threads forever.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use devices::display::{DisplayConsumer, Rect};
use thiserror::Error;

use crate::encodings::EncodeError;
use crate::handshake::{self, HandshakeError};
use crate::keymap::xt_to_scancode;
use crate::pixel::PixelFormat;
use crate::protocol::{self, encoding, ClientMessage, ProtocolError};
use crate::server::Inner;
use crate::{auth, dirty, update};

/// How often a blocked read checks whether the connection was closed.
const POLL: Duration = Duration::from_millis(200);

/// Why a connection ended.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The client broke the protocol.
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    /// Writing failed or timed out.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// An encoder failed.
    #[error("encoding: {0}")]
    Encode(#[from] EncodeError),
    /// Refused by the share policy (another client has exclusive access).
    #[error("refused: another client has exclusive access")]
    Refused,
}

/// What the reader has seen and the writer has not yet acted on.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The connection is over.
    pub closed: bool,
    /// The area of outstanding update requests.
    pub request: Option<Rect>,
    /// Bumped by every request.
    pub request_gen: u64,
    /// Areas asked for non-incrementally.
    pub full: Option<Rect>,
    /// A new pixel format.
    pub format: Option<PixelFormat>,
    /// A new encoding list.
    pub encodings: Option<Vec<i32>>,
    /// A SetDesktopSize awaits its (refusing) reply.
    pub desktop_size_reply: bool,
    /// The guest has no absolute pointer: ask the client for relative motion.
    pub want_relative: bool,
    /// The client was told to send relative motion.
    pub relative_announced: bool,
    /// The framebuffer size the client knows.
    pub size: (u32, u32),
}

/// The reader/writer rendezvous of one connection (also used by the server to close it).
#[derive(Debug, Default)]
pub(crate) struct Control {
    state: Mutex<Pending>,
    pub(crate) cond: Condvar,
}

impl Control {
    pub(crate) fn new() -> Control {
        Control::default()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the connection: both threads stop at their next check.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.cond.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// A socket reader that turns poll timeouts into waiting: forever between messages (`idle_ok`), up to
/// `stall` without progress inside one, and never past `deadline`.
struct TimedReader {
    stream: TcpStream,
    control: Arc<Control>,
    stall: Duration,
    deadline: Option<Instant>,
    idle_ok: bool,
}

impl Read for TimedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = Instant::now();
        loop {
            if self.control.is_closed() {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "connection closed",
                ));
            }
            match self.stream.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let late = self.deadline.is_some_and(|d| Instant::now() >= d);
                    if late || (!self.idle_ok && start.elapsed() >= self.stall) {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "client stalled"));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The connection thread.
pub(crate) fn run(
    inner: Arc<Inner>,
    id: u64,
    stream: TcpStream,
    control: Arc<Control>,
    peer: String,
) {
    match serve(&inner, id, &stream, &control) {
        Ok(()) => devices::rate_limited!(log::Level::Info, "vnc: {peer} disconnected"),
        Err(e) => devices::rate_limited!(log::Level::Info, "vnc: {peer} disconnected: {e}"),
    }
    control.close();
    let _ = stream.shutdown(Shutdown::Both);
    inner.remove(id);
}

fn serve(
    inner: &Arc<Inner>,
    id: u64,
    stream: &TcpStream,
    control: &Arc<Control>,
) -> Result<(), ClientError> {
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(POLL.min(inner.io_timeout)))?;
    stream.set_write_timeout(Some(inner.io_timeout))?;
    let mut reader = TimedReader {
        stream: stream.try_clone()?,
        control: control.clone(),
        stall: inner.io_timeout,
        deadline: Some(Instant::now() + inner.io_timeout * 3),
        idle_ok: false,
    };
    let mut out = stream.try_clone()?;
    let hs = handshake::run(
        &mut reader,
        &mut out,
        inner.password.as_deref(),
        auth::challenge,
    )?;
    if inner.stopping() || !inner.admit(id, hs.shared) {
        return Err(ClientError::Refused);
    }
    reader.deadline = None;
    let consumer = inner.hub.subscribe();
    let (w, h) = {
        let f = inner.hub.frame();
        (f.width, f.height)
    };
    control.lock().size = (w, h);
    out.write_all(&protocol::server_init(
        w as u16,
        h as u16,
        &PixelFormat::NATIVE,
        &inner.hub.name,
    ))?;
    let (ri, rc, rcons) = (inner.clone(), control.clone(), consumer.clone());
    let reader_thread = std::thread::Builder::new()
        .name(format!("vnc-reader-{id}"))
        .spawn(move || {
            let mut input = Input::new(ri, rc.clone());
            let res = input.read_loop(&rcons, BufReader::with_capacity(4096, reader));
            input.release_all();
            rc.close();
            res
        })?;
    let written = update::write_loop(inner, control, &consumer, out);
    control.close();
    let _ = stream.shutdown(Shutdown::Both);
    let read = reader_thread.join();
    // The reader's error explains most ends (the writer then just sees the close).
    match read {
        Ok(Err(ProtocolError::Io(e)))
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionAborted
            ) => {}
        Ok(Err(e)) => return Err(e.into()),
        _ => {}
    }
    written
}

/// The reader's view of the client: its features and the input it has pressed.
struct Input {
    inner: Arc<Inner>,
    control: Arc<Control>,
    pointer_change: bool,
    extended_desktop: bool,
    /// Keys down, indexed by `code & 0x7F | 0x80 if 0xE0-prefixed`.
    pressed: [bool; 256],
    buttons: u8,
    last: Option<(u16, u16)>,
    last_absolute: bool,
}

fn key_index(sc: u16) -> usize {
    usize::from(sc & 0x7F) | if sc & 0xFF00 == 0xE000 { 0x80 } else { 0 }
}

fn index_key(i: usize) -> u16 {
    if i & 0x80 != 0 {
        0xE000 | (i as u16 & 0x7F)
    } else {
        i as u16
    }
}

impl Input {
    fn new(inner: Arc<Inner>, control: Arc<Control>) -> Input {
        Input {
            inner,
            control,
            pointer_change: false,
            extended_desktop: false,
            pressed: [false; 256],
            buttons: 0,
            last: None,
            last_absolute: true,
        }
    }

    fn read_loop(
        &mut self,
        consumer: &DisplayConsumer,
        mut r: BufReader<TimedReader>,
    ) -> Result<(), ProtocolError> {
        loop {
            r.get_mut().idle_ok = true;
            let mut t = [0u8; 1];
            r.read_exact(&mut t)?;
            r.get_mut().idle_ok = false;
            let msg = protocol::read_message_body(t[0], &mut r)?;
            self.handle(msg, consumer)?;
        }
    }

    fn handle(
        &mut self,
        msg: ClientMessage,
        consumer: &DisplayConsumer,
    ) -> Result<(), ProtocolError> {
        match msg {
            ClientMessage::SetPixelFormat(pf) => {
                self.control.lock().format = Some(pf);
                // The client's view is now stale everywhere: redraw (this also wakes the writer).
                consumer.invalidate();
            }
            ClientMessage::SetEncodings(list) => {
                self.pointer_change = list.contains(&encoding::QEMU_POINTER_MOTION_CHANGE);
                self.extended_desktop = list.contains(&encoding::EXTENDED_DESKTOP_SIZE);
                self.control.lock().encodings = Some(list);
                self.control.cond.notify_all();
            }
            ClientMessage::FramebufferUpdateRequest {
                incremental,
                x,
                y,
                w,
                h,
            } => {
                let r = Rect {
                    x: x.into(),
                    y: y.into(),
                    w: w.into(),
                    h: h.into(),
                };
                {
                    let mut p = self.control.lock();
                    p.request = Some(p.request.map_or(r, |q| dirty::union(&q, &r)));
                    p.request_gen += 1;
                    if !incremental {
                        p.full = Some(p.full.map_or(r, |q| dirty::union(&q, &r)));
                    }
                }
                self.control.cond.notify_all();
            }
            ClientMessage::KeyEvent { down, keysym } => {
                if let Some(sc) = self.inner.keymap.scancode(keysym) {
                    self.key(sc, down);
                }
            }
            ClientMessage::ExtendedKeyEvent {
                down,
                keysym,
                keycode,
            } => match xt_to_scancode(keycode) {
                Some(sc) => self.key(sc, down),
                None => {
                    if let Some(sc) = self.inner.keymap.scancode(keysym) {
                        self.key(sc, down);
                    }
                }
            },
            ClientMessage::PointerEvent { buttons, x, y } => self.pointer(buttons, x, y),
            ClientMessage::ClientCutText { .. } => {}
            ClientMessage::SetDesktopSize { .. } => {
                if !self.extended_desktop {
                    return Err(ProtocolError::UnknownMessage(251));
                }
                self.control.lock().desktop_size_reply = true;
                self.control.cond.notify_all();
            }
        }
        Ok(())
    }

    fn key(&mut self, sc: u16, down: bool) {
        self.pressed[key_index(sc)] = down;
        self.inner.keyboard.key(sc, down);
        self.inner.hub.note_input();
    }

    fn pointer(&mut self, mask: u8, x: u16, y: u16) {
        let pressed = mask & !self.buttons;
        let dz = if pressed & 0x08 != 0 {
            -1
        } else if pressed & 0x10 != 0 {
            1
        } else {
            0
        };
        let buttons = mask & 0x1F;
        self.inner.hub.note_input();
        let (relative_announced, (w, h)) = {
            let p = self.control.lock();
            (p.relative_announced, p.size)
        };
        let pointer = &self.inner.pointer;
        if relative_announced {
            // QEMU pointer motion change, relative mode: positions are deltas + 0x7FFF.
            let dx = i32::from(x) - 0x7FFF;
            let dy = i32::from(y) - 0x7FFF;
            pointer.relative(dx, dy, dz, buttons);
            self.last_absolute = false;
        } else {
            let cx = u32::from(x).min(w.saturating_sub(1));
            let cy = u32::from(y).min(h.saturating_sub(1));
            if pointer.absolute(cx, cy, w, h, buttons) {
                self.last_absolute = true;
            } else {
                let (dx, dy) = self.last.map_or((0, 0), |(lx, ly)| {
                    (i32::from(x) - i32::from(lx), i32::from(y) - i32::from(ly))
                });
                pointer.relative(dx, dy, dz, buttons);
                self.last_absolute = false;
                if self.pointer_change {
                    let mut p = self.control.lock();
                    if !p.want_relative {
                        p.want_relative = true;
                        self.control.cond.notify_all();
                    }
                }
            }
            self.last = Some((x, y));
        }
        self.buttons = mask;
    }

    /// Lifts every key and button the client left pressed, so the guest does not see a stuck key.
    fn release_all(&mut self) {
        for i in 0..self.pressed.len() {
            if std::mem::take(&mut self.pressed[i]) {
                self.inner.keyboard.key(index_key(i), false);
            }
        }
        if self.buttons & 0x07 != 0 {
            let (w, h) = self.control.lock().size;
            let (x, y) = self.last.unwrap_or((0, 0));
            let abs = self.last_absolute
                && self.inner.pointer.absolute(
                    u32::from(x).min(w.saturating_sub(1)),
                    u32::from(y).min(h.saturating_sub(1)),
                    w,
                    h,
                    0,
                );
            if !abs {
                self.inner.pointer.relative(0, 0, 0, 0);
            }
            self.buttons = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_indexes_round_trip() {
        for sc in [0x01u16, 0x1E, 0x7F, 0xE01D, 0xE053, 0xE07F] {
            assert_eq!(index_key(key_index(sc)), sc);
        }
    }
}
