//! The listener, the client registry and the public server handle.
//!
//! Threads: one listener thread accepts connections; each client gets a connection thread that runs the
//! handshake and then sends updates, plus a reader thread that parses the client's messages and feeds input to
//! the guest. Two threads per client keep both directions simple blocking code: the reader can sit in a read
//! for as long as the client is quiet, while the writer waits for the client's next request and the hub's
//! changes. Clients are few (a VNC viewer or two per guest, capped by [`VncConfig::max_clients`]), so threads
//! cost little, and a slow or stalled client only ever blocks its own threads. No thread holds the frame lock
//! for more than copying one update's pixels out of the frame, so the guest's display refresh is not held up.
//!
//! Shutdown: dropping [`VncServer`] stops the listener, shuts every client socket down (which unblocks the
//! reader at once) and joins all threads.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use devices::display::{DisplayHub, KeyboardInput, PointerInput};
use thiserror::Error;

use crate::client::{self, Control};
use crate::keymap::Keymap;

/// The first VNC port: display N listens on 5900 + N.
pub const BASE_PORT: u16 = 5900;
/// How many displays `vncunused` tries before giving up.
pub const UNUSED_TRIES: u16 = 100;

/// Where to listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// `addr`, port 5900 + `display` (Xen's `vnclisten` and `vncdisplay`, usually the domain id).
    Display {
        /// Address to bind.
        addr: IpAddr,
        /// Display number.
        display: u16,
    },
    /// An explicit socket address (port 0 picks a free port; for tests).
    Socket(SocketAddr),
}

/// What ClientInit's shared flag does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SharePolicy {
    /// As the RFB spec says: a client asking for exclusive access disconnects all others, and while it is
    /// connected, clients asking to share are refused (QEMU's `allow-exclusive`).
    #[default]
    AllowExclusive,
    /// Every client shares, whatever it asks (QEMU's `force-shared`). TigerVNC's and gtk-vnc's viewers ask for
    /// exclusive access by default.
    ForceShared,
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct VncConfig {
    /// Where to listen.
    pub listen: Listen,
    /// Xen's `vncunused`: if the display's port is taken, try the following displays.
    pub unused: bool,
    /// VNC Authentication password (only the first 8 bytes count); `None` for no authentication.
    pub password: Option<String>,
    /// The guest's keyboard layout, for clients that send keysyms only.
    pub keymap: Keymap,
    /// Shared/exclusive policy.
    pub share: SharePolicy,
    /// Most simultaneous connections (including ones still in the handshake); more are closed at once.
    pub max_clients: usize,
    /// How long a client may stall inside a message or a write before it is disconnected (the handshake gets
    /// three times this in total). A client that is quiet between messages is never timed out.
    pub io_timeout: Duration,
}

impl VncConfig {
    /// Defaults for `listen`: no password, en-us, spec share policy, 16 clients, 10 s timeout.
    pub fn new(listen: Listen) -> VncConfig {
        VncConfig {
            listen,
            unused: false,
            password: None,
            keymap: Keymap::EnUs,
            share: SharePolicy::AllowExclusive,
            max_clients: 16,
            io_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum VncError {
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address tried.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// Display number too large for a port.
    #[error("display {0} is out of range (port 5900 + display must fit in 16 bits)")]
    BadDisplay(u16),
    /// `vncunused` found no free port.
    #[error("no free VNC display from {first} to {last}")]
    NoFreeDisplay {
        /// First display tried.
        first: u16,
        /// Last display tried.
        last: u16,
    },
    /// A thread could not be started.
    #[error("starting a thread: {0}")]
    Thread(io::Error),
}

/// One connection in the registry.
struct Entry {
    id: u64,
    stream: TcpStream,
    control: Arc<Control>,
    /// `None` while in the handshake; then whether the client has exclusive access.
    exclusive: Option<bool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    entries: Vec<Entry>,
}

/// State shared by the listener and the client threads.
pub(crate) struct Inner {
    pub(crate) hub: Arc<DisplayHub>,
    pub(crate) keyboard: Arc<dyn KeyboardInput>,
    pub(crate) pointer: Arc<dyn PointerInput>,
    pub(crate) password: Option<Vec<u8>>,
    pub(crate) keymap: Keymap,
    pub(crate) share: SharePolicy,
    pub(crate) max_clients: usize,
    pub(crate) io_timeout: Duration,
    stop: AtomicBool,
    registry: Mutex<Registry>,
}

impl Inner {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the server is shutting down.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Applies the share policy to a client that finished its handshake; false means refuse it.
    pub(crate) fn admit(&self, id: u64, shared: bool) -> bool {
        let mut reg = self.registry();
        let exclusive = !shared && self.share == SharePolicy::AllowExclusive;
        let other_exclusive = reg
            .entries
            .iter()
            .any(|e| e.id != id && e.exclusive == Some(true));
        if self.share == SharePolicy::AllowExclusive && other_exclusive && !exclusive {
            return false;
        }
        for e in reg.entries.iter_mut() {
            if e.id == id {
                e.exclusive = Some(exclusive);
            } else if exclusive {
                e.control.close();
                let _ = e.stream.shutdown(std::net::Shutdown::Both);
            }
        }
        true
    }

    /// Removes a finished connection.
    pub(crate) fn remove(&self, id: u64) {
        self.registry().entries.retain(|e| e.id != id);
    }

    /// Clients past the handshake.
    fn active(&self) -> usize {
        self.registry()
            .entries
            .iter()
            .filter(|e| e.exclusive.is_some() && !e.control.is_closed())
            .count()
    }
}

/// A running VNC server. Dropping it disconnects every client and stops all its threads.
///
/// The server does not render: the machine must call [`DisplayHub::refresh`] periodically (about every 30 ms;
/// every 15–50 ms is reasonable) for clients to see changes. Clients get what changed since their last update,
/// and only when they ask for it.
pub struct VncServer {
    inner: Arc<Inner>,
    addr: SocketAddr,
    listener: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for VncServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VncServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn bind(config: &VncConfig) -> Result<TcpListener, VncError> {
    match config.listen {
        Listen::Socket(addr) => {
            TcpListener::bind(addr).map_err(|source| VncError::Bind { addr, source })
        }
        Listen::Display { addr, display } => {
            let tries = if config.unused { UNUSED_TRIES } else { 1 };
            let mut last = display;
            for d in display..display.saturating_add(tries) {
                let port = BASE_PORT.checked_add(d).ok_or(VncError::BadDisplay(d))?;
                let sa = SocketAddr::new(addr, port);
                match TcpListener::bind(sa) {
                    Ok(l) => return Ok(l),
                    Err(e) if config.unused && e.kind() == io::ErrorKind::AddrInUse => last = d,
                    Err(source) => return Err(VncError::Bind { addr: sa, source }),
                }
            }
            Err(VncError::NoFreeDisplay {
                first: display,
                last,
            })
        }
    }
}

impl VncServer {
    /// Binds the listening socket and starts serving `hub`'s screen; keys and pointer events go to `keyboard`
    /// and `pointer`.
    pub fn start(
        config: VncConfig,
        hub: Arc<DisplayHub>,
        keyboard: Arc<dyn KeyboardInput>,
        pointer: Arc<dyn PointerInput>,
    ) -> Result<VncServer, VncError> {
        let listener = bind(&config)?;
        let addr = listener.local_addr().map_err(|source| VncError::Bind {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            source,
        })?;
        if let Some(pw) = &config.password {
            if pw.len() > 8 {
                log::warn!(
                    "vnc: the password is longer than 8 bytes; VNC authentication only uses the first 8"
                );
            }
        }
        let inner = Arc::new(Inner {
            hub,
            keyboard,
            pointer,
            password: config.password.map(String::into_bytes),
            keymap: config.keymap,
            share: config.share,
            max_clients: config.max_clients.max(1),
            io_timeout: config.io_timeout.max(Duration::from_millis(100)),
            stop: AtomicBool::new(false),
            registry: Mutex::new(Registry::default()),
        });
        let li = inner.clone();
        let thread = std::thread::Builder::new()
            .name("vnc-listen".into())
            .spawn(move || listen(li, listener))
            .map_err(VncError::Thread)?;
        log::info!("vnc: listening on {addr}");
        Ok(VncServer {
            inner,
            addr,
            listener: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The display number (port - 5900), when the port is in the display range.
    pub fn display(&self) -> Option<u16> {
        self.addr.port().checked_sub(BASE_PORT)
    }

    /// Clients connected past the handshake.
    pub fn client_count(&self) -> usize {
        self.inner.active()
    }
}

impl Drop for VncServer {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        // Wake the listener out of accept() with a connection of our own.
        let wake = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.addr.port())
            }
            _ => self.addr,
        };
        let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(2)).is_ok();
        if let Some(t) = self.listener.take() {
            if woke {
                let _ = t.join();
            } else {
                log::warn!("vnc: could not wake the listener thread; leaving it behind");
            }
        }
        let entries = std::mem::take(&mut self.inner.registry().entries);
        for e in &entries {
            e.control.close();
            let _ = e.stream.shutdown(std::net::Shutdown::Both);
        }
        for mut e in entries {
            if let Some(t) = e.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn listen(inner: Arc<Inner>, listener: TcpListener) {
    for conn in listener.incoming() {
        if inner.stopping() {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                devices::rate_limited!(log::Level::Warn, "vnc: accept failed: {e}");
                // Out of file descriptors and the like: do not spin.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string());
        let (id, control) = {
            let mut reg = inner.registry();
            if reg.entries.len() >= inner.max_clients {
                devices::rate_limited!(
                    log::Level::Warn,
                    "vnc: refusing {peer}: {} connections already",
                    reg.entries.len()
                );
                continue;
            }
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            reg.next_id += 1;
            let id = reg.next_id;
            let control = Arc::new(Control::new());
            reg.entries.push(Entry {
                id,
                stream: clone,
                control: control.clone(),
                exclusive: None,
                thread: None,
            });
            (id, control)
        };
        let ci = inner.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("vnc-client-{id}"))
            .spawn(move || client::run(ci, id, stream, control, peer));
        match spawned {
            Ok(handle) => {
                let mut reg = inner.registry();
                if let Some(e) = reg.entries.iter_mut().find(|e| e.id == id) {
                    e.thread = Some(handle);
                }
            }
            Err(e) => {
                log::warn!("vnc: cannot start a client thread: {e}");
                inner.remove(id);
            }
        }
    }
}
