//! Back-ends over file descriptors (pty, stdio, Unix and TCP sockets) and their event-loop side.
//!
//! A [`StreamBackend`] is the half the UART calls on a vCPU thread: a non-blocking write straight to the
//! descriptor when nothing is queued, else into a bounded queue; and the "receiver has room" notification.
//! Both wake the event thread through an eventfd when it has something to do. The [`CharSubscriber`] is the
//! half the event thread owns: it reads input, drains the queue when the descriptor is writable, accepts
//! socket clients, and keeps the epoll interest set to exactly what is needed (no `EPOLLIN` while the
//! receiver is full, `EPOLLOUT` only while output is queued), so it never spins.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use vmm_sys_util::eventfd::EventFd;

use super::{CharBackend, CharError, CharFrontend, OUTPUT_BUFFER};

/// Bytes read from a descriptor at a time (further capped by the receiver's room).
const READ_CHUNK: usize = 256;

/// One open byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    /// A pty master or a standard descriptor.
    File(File),
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream connection.
    Unix(UnixStream),
}

impl Stream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::File(f) => (&*f).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::File(f) => (&*f).write(buf),
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => {
                // std writes Unix sockets with write(2); send with MSG_NOSIGNAL so that a departed client
                // yields EPIPE rather than SIGPIPE, whatever the process's signal disposition.
                // SAFETY: `buf` is valid for reads of `buf.len()` bytes; the descriptor is owned by `s`.
                let n = unsafe {
                    libc::send(
                        s.as_raw_fd(),
                        buf.as_ptr().cast(),
                        buf.len(),
                        libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                    )
                };
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            }
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::File(f) => f.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn is_socket(&self) -> bool {
        !matches!(self, Stream::File(_))
    }
}

/// A listening socket of a `server` back-end.
#[derive(Debug)]
pub(crate) enum Listener {
    /// `tcp:...,server`.
    Tcp(TcpListener),
    /// `unix:PATH,server`; the path is removed when the back-end goes away.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    /// Accepts one client; `Ok(None)` when none is waiting.
    pub(crate) fn accept(&self) -> io::Result<Option<Stream>> {
        let result = match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                s.set_nonblocking(true).map(|()| Stream::Tcp(s))
            }),
            Listener::Unix(l, _) => l
                .accept()
                .map(|(s, _)| s.set_nonblocking(true).map(|()| Stream::Unix(s))),
        };
        match result {
            Ok(stream) => stream.map(Some),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

struct Inner {
    /// Where output goes; `None` while a socket has no client (output is then dropped).
    out: Option<Arc<Stream>>,
    /// Output the descriptor would not take yet.
    queue: VecDeque<u8>,
    /// A write was cut short; tell the frontend when the queue has drained.
    want_tx_ready: bool,
    /// The frontend has room for input again.
    rx_resume: bool,
}

/// What the vCPU side and the event side share.
pub(crate) struct Shared {
    name: String,
    inner: Mutex<Inner>,
    frontend: Mutex<Option<Weak<dyn CharFrontend>>>,
    wake: EventFd,
    /// Restores the terminal state of stdin when the back-end goes away (stdio only).
    restore: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let restore = self.restore.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = restore.take() {
            f();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn frontend(&self) -> Option<Arc<dyn CharFrontend>> {
        self.frontend
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }

    fn kick(&self) {
        if let Err(e) = self.wake.write(1) {
            crate::rate_limited!(
                log::Level::Warn,
                "{}: cannot wake the event loop: {e}",
                self.name
            );
        }
    }
}

/// The vCPU-side half of a descriptor back-end.
pub struct StreamBackend {
    shared: Arc<Shared>,
}

impl CharBackend for StreamBackend {
    fn write(&self, data: &[u8]) -> usize {
        let shared = &self.shared;
        let mut wake = false;
        let taken = {
            let mut inner = shared.lock();
            let Some(out) = inner.out.clone() else {
                // A socket without a client: dropped, as qemu did.
                return data.len();
            };
            let mut written = 0;
            if inner.queue.is_empty() {
                match out.write(data) {
                    Ok(n) => written = n.min(data.len()),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        // The reader is gone for good (EPIPE, reset); the event thread cleans up.
                        crate::rate_limited!(
                            log::Level::Warn,
                            "{}: output failed: {e}; dropping output",
                            shared.name
                        );
                        inner.out = None;
                        inner.queue.clear();
                        drop(inner);
                        shared.kick();
                        return data.len();
                    }
                }
            }
            let rest = &data[written..];
            let take = rest
                .len()
                .min(OUTPUT_BUFFER.saturating_sub(inner.queue.len()));
            if take > 0 {
                wake = inner.queue.is_empty();
                inner.queue.extend(&rest[..take]);
            }
            let taken = written + take;
            if taken < data.len() {
                inner.want_tx_ready = true;
            }
            taken
        };
        if wake {
            shared.kick();
        }
        taken
    }

    fn rx_ready(&self) {
        self.shared.lock().rx_resume = true;
        self.shared.kick();
    }

    fn attach(&self, frontend: Weak<dyn CharFrontend>) {
        *self
            .shared
            .frontend
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(frontend);
        // Input may be waiting already; let the loop look.
        self.rx_ready();
    }
}

/// The event-loop half of a descriptor back-end; add it to the machine's `EventManager`.
pub struct CharSubscriber {
    shared: Arc<Shared>,
    listener: Option<Listener>,
    input: Option<Arc<Stream>>,
    output: Option<Arc<Stream>>,
    /// Polling for input (the receiver had room when last asked).
    reading: bool,
    /// Bytes read that the receiver did not take (only possible if it shrank in between; at most one chunk).
    pending_in: Vec<u8>,
    /// The interest currently registered with epoll, per descriptor.
    registered: Vec<(RawFd, EventSet)>,
    /// Closed streams kept open until their epoll registration is removed.
    retired: Vec<Arc<Stream>>,
    /// Held open and never read: a pty slave, so that the master never sees a hang-up.
    _keep: Option<File>,
}

/// How [`new_stream_backend`] should set a back-end up.
pub(crate) struct StreamParts {
    pub name: String,
    pub input: Option<Stream>,
    pub output: Option<Stream>,
    /// When input and output are one descriptor (pty master, socket).
    pub duplex: Option<Stream>,
    pub listener: Option<Listener>,
    pub keep: Option<File>,
    pub restore: Option<Box<dyn FnOnce() + Send>>,
}

/// Builds the two halves of a descriptor back-end.
pub(crate) fn new_stream_backend(
    parts: StreamParts,
) -> Result<(Arc<StreamBackend>, CharSubscriber), CharError> {
    let wake = EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(CharError::EventFd)?;
    let (input, output) = match parts.duplex {
        Some(s) => {
            let s = Arc::new(s);
            (Some(s.clone()), Some(s))
        }
        None => (parts.input.map(Arc::new), parts.output.map(Arc::new)),
    };
    let shared = Arc::new(Shared {
        name: parts.name,
        inner: Mutex::new(Inner {
            out: output.clone(),
            queue: VecDeque::new(),
            want_tx_ready: false,
            rx_resume: false,
        }),
        frontend: Mutex::new(None),
        wake,
        restore: Mutex::new(parts.restore),
    });
    let subscriber = CharSubscriber {
        shared: shared.clone(),
        listener: parts.listener,
        reading: input.is_some(),
        input,
        output,
        pending_in: Vec::new(),
        registered: Vec::new(),
        retired: Vec::new(),
        _keep: parts.keep,
    };
    Ok((Arc::new(StreamBackend { shared }), subscriber))
}

impl CharSubscriber {
    /// Makes `stream` the connected client of a server back-end.
    pub(crate) fn connect(&mut self, stream: Stream) {
        let s = Arc::new(stream);
        self.input = Some(s.clone());
        self.output = Some(s.clone());
        self.reading = true;
        self.pending_in.clear();
        let mut inner = self.shared.lock();
        inner.out = Some(s);
        inner.queue.clear();
    }

    fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        match listener.accept() {
            Ok(Some(stream)) => {
                log::info!("{}: client connected", self.shared.name);
                self.connect(stream);
            }
            Ok(None) => {}
            Err(e) => crate::rate_limited!(log::Level::Warn, "{}: accept: {e}", self.shared.name),
        }
    }

    /// The client (or stdin) has gone: stop reading, and for a socket stop writing too.
    fn input_closed(&mut self) {
        let Some(input) = self.input.take() else {
            return;
        };
        self.pending_in.clear();
        if input.is_socket() {
            log::info!("{}: client disconnected", self.shared.name);
            self.output_closed();
        }
        self.retired.push(input);
    }

    /// Output can no longer be delivered: drop what is queued and release the UART.
    fn output_closed(&mut self) {
        if let Some(out) = self.output.take() {
            self.retired.push(out);
        }
        let notify = {
            let mut inner = self.shared.lock();
            inner.out = None;
            inner.queue.clear();
            std::mem::take(&mut inner.want_tx_ready)
        };
        if notify {
            if let Some(f) = self.shared.frontend() {
                f.tx_ready();
            }
        }
    }

    /// Hands bytes read earlier to the frontend; whether all are delivered.
    fn deliver_pending(&mut self, frontend: &dyn CharFrontend) -> bool {
        if !self.pending_in.is_empty() {
            let n = frontend
                .receive(&self.pending_in)
                .min(self.pending_in.len());
            self.pending_in.drain(..n);
        }
        self.pending_in.is_empty()
    }

    fn read_input(&mut self) {
        let Some(input) = self.input.clone() else {
            return;
        };
        let Some(frontend) = self.shared.frontend() else {
            // Nothing to deliver to yet; attach() wakes us.
            self.reading = false;
            return;
        };
        if !self.deliver_pending(frontend.as_ref()) {
            self.reading = false;
            return;
        }
        let room = frontend.rx_room().min(READ_CHUNK);
        if room == 0 {
            // The UART remembered that it refused and will call rx_ready.
            self.reading = false;
            return;
        }
        let mut buf = [0u8; READ_CHUNK];
        match input.read(&mut buf[..room]) {
            Ok(0) => self.input_closed(),
            Ok(n) => {
                let taken = frontend.receive(&buf[..n]).min(n);
                if taken < n {
                    self.pending_in.extend_from_slice(&buf[taken..n]);
                    self.reading = false;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                crate::rate_limited!(log::Level::Warn, "{}: input: {e}", self.shared.name);
                self.input_closed();
            }
        }
    }

    fn drain_output(&mut self) {
        let mut failed = false;
        let notify = {
            let mut inner = self.shared.lock();
            let Some(out) = inner.out.clone() else {
                return;
            };
            while !inner.queue.is_empty() {
                let (front, _) = inner.queue.as_slices();
                match out.write(front) {
                    Ok(0) => break,
                    Ok(n) => {
                        let n = n.min(front.len());
                        inner.queue.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        crate::rate_limited!(log::Level::Warn, "{}: output: {e}", self.shared.name);
                        failed = true;
                        break;
                    }
                }
            }
            let notify = inner.want_tx_ready && inner.queue.len() <= OUTPUT_BUFFER / 2;
            if notify {
                inner.want_tx_ready = false;
            }
            notify
        };
        if failed {
            self.output_closed();
        } else if notify {
            // Our lock is released: the UART may call write() from here.
            if let Some(f) = self.shared.frontend() {
                f.tx_ready();
            }
        }
    }

    /// The interest each descriptor should have now.
    fn wanted(&self) -> Vec<(RawFd, EventSet)> {
        let mut want: Vec<(RawFd, EventSet)> = vec![(self.shared.wake.as_raw_fd(), EventSet::IN)];
        let mut add = |fd: RawFd, set: EventSet| {
            if let Some(entry) = want.iter_mut().find(|(f, _)| *f == fd) {
                entry.1 |= set;
            } else {
                want.push((fd, set));
            }
        };
        match (&self.listener, &self.input) {
            // One client at a time: further clients wait in the backlog until this one leaves.
            (Some(l), None) => add(l.fd(), EventSet::IN),
            (_, Some(input)) if self.reading => add(input.fd(), EventSet::IN),
            _ => {}
        }
        if let Some(out) = &self.output {
            if !self.shared.lock().queue.is_empty() {
                add(out.fd(), EventSet::OUT);
            }
        }
        want
    }

    /// Brings the epoll registrations in line with [`CharSubscriber::wanted`], then closes retired streams.
    fn update_interest(&mut self, ops: &mut EventOps) {
        let want = self.wanted();
        let mut kept = Vec::with_capacity(want.len());
        for &(fd, set) in &self.registered {
            match want.iter().find(|(f, _)| *f == fd) {
                None => {
                    if let Err(e) = ops.remove(Events::empty_raw(fd)) {
                        log::warn!("{}: epoll remove: {e}", self.shared.name);
                    }
                }
                Some(&(_, new)) if new != set => {
                    if let Err(e) = ops.modify(Events::new_raw(fd, new)) {
                        log::warn!("{}: epoll modify: {e}", self.shared.name);
                    }
                    kept.push((fd, new));
                }
                Some(_) => kept.push((fd, set)),
            }
        }
        for &(fd, set) in &want {
            if !kept.iter().any(|(f, _)| *f == fd) {
                match ops.add(Events::new_raw(fd, set)) {
                    Ok(()) => kept.push((fd, set)),
                    Err(e) => log::warn!("{}: epoll add: {e}", self.shared.name),
                }
            }
        }
        self.registered = kept;
        self.retired.clear();
    }

    fn is_input(&self, fd: RawFd) -> bool {
        self.input.as_ref().is_some_and(|s| s.fd() == fd)
    }

    fn is_output(&self, fd: RawFd) -> bool {
        self.output.as_ref().is_some_and(|s| s.fd() == fd)
    }
}

impl MutEventSubscriber for CharSubscriber {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let fd = events.fd();
        let set = events.event_set();
        let trouble = set.intersects(EventSet::HANG_UP | EventSet::ERROR | EventSet::READ_HANG_UP);
        if fd == self.shared.wake.as_raw_fd() {
            let _ = self.shared.wake.read();
            if std::mem::take(&mut self.shared.lock().rx_resume) && self.input.is_some() {
                self.reading = true;
            }
        } else if self.listener.as_ref().is_some_and(|l| l.fd() == fd) {
            self.accept();
        } else {
            if self.is_output(fd) && set.contains(EventSet::OUT) {
                self.drain_output();
            }
            if self.is_input(fd) && (set.contains(EventSet::IN) || trouble) {
                if self.reading {
                    self.read_input();
                } else if self.is_output(fd) {
                    // A hang-up while the receiver is full: output is dead, input is read to its end later.
                    self.output_closed();
                }
            } else if self.is_output(fd) && trouble {
                self.output_closed();
            }
        }
        self.update_interest(ops);
    }

    fn init(&mut self, ops: &mut EventOps) {
        self.update_interest(ops);
    }
}
