//! A Linux tap device as a NIC's host side.
//!
//! A tap interface is the host's end of a virtual Ethernet cable: every frame the guest's NIC transmits is
//! written to the tap descriptor and appears on the host as received on the interface (and, with the tap on
//! a bridge, is switched to the bridge's other ports); every frame the host sends out of the interface is
//! read from the descriptor and offered to the NIC. This is how qemu-dm connected HVM NICs (`-net tap`),
//! one tap per NIC, named `tap<domid>.<n>` by xend.
//!
//! [`TapBackend::open`] gives two halves, as the character back-ends do:
//!
//! - [`TapBackend`], the [`NetBackend`] a NIC calls on a vCPU thread. `send` is one non-blocking `write(2)`:
//!   a frame the kernel will not take now (`EAGAIN`/`ENOBUFS`, or `EIO` while the interface is down) is
//!   dropped, counted, and reported as [`NetError::WouldBlock`]; a vCPU never waits on the host network.
//! - [`TapSubscriber`], the event-loop half. When the descriptor is readable it reads at most [`RX_BATCH`]
//!   frames per wake-up (so one busy interface cannot starve the loop; epoll is level-triggered and comes
//!   back for the rest) and offers each to the NIC. While [`NetReceiver::can_receive`] says no, it drops
//!   `EPOLLIN` interest and leaves frames in the kernel's queue, which is bounded by the interface's
//!   `txqueuelen` (the kernel drops beyond it, as a switch port does); [`NetBackend::rx_ready`] writes an
//!   eventfd that turns reading back on. Frames the NIC refuses in `receive` are dropped and counted.
//!
//! Link state is the interface's `IFF_UP` flag: [`TapBackend::set_link`] sets or clears it, and
//! [`NetBackend::link_up`] reports it as the kernel has it (an administrator's `ip link set down` shows too).
//!
//! Creating a tap needs `CAP_NET_ADMIN`, unless the administrator made a persistent tap of that name for our
//! user (`ip tuntap add NAME mode tap user U`), which `open` then attaches to.

mod sys;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use vmm_sys_util::eventfd::EventFd;

pub use sys::{valid_ifname, MAX_IFNAME};

use super::{NetBackend, NetError, NetReceiver, MAX_FRAME};
use sys::InterfaceControl;

/// Frames read per wake-up of the event loop at most.
pub const RX_BATCH: usize = 32;
/// An Ethernet header: the shortest frame a tap takes or gives.
const ETH_HLEN: usize = 14;
/// Read buffer: larger than any frame a tap can hand us without offloads (even with a jumbo MTU set on the
/// host side), so that an oversized frame is seen whole and dropped rather than delivered cut short.
const READ_BUFFER: usize = 64 * 1024;

/// Why a tap device could not be opened or configured.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The interface name is not one Linux accepts.
    #[error("'{0}' is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)")]
    BadName(String),
    /// `/dev/net/tun` could not be opened.
    #[error("cannot open /dev/net/tun for tap device {name}: {source} (the tun module must be loaded, and the device model needs CAP_NET_ADMIN)")]
    OpenTun {
        /// The tap's name.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// `TUNSETIFF` refused the name.
    #[error("cannot create tap device {name}: {source}{}", create_hint(.source))]
    Create {
        /// The tap's name.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// An interface ioctl failed.
    #[error("tap device {name}: {what}: {source}")]
    Control {
        /// The tap's name.
        name: String,
        /// What was being done.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The wake-up eventfd could not be created.
    #[error("tap device {name}: eventfd: {source}")]
    EventFd {
        /// The tap's name.
        name: String,
        /// Why.
        source: io::Error,
    },
}

fn create_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EBUSY) => " (a tap of that name is already in use by another process)",
        Some(libc::EINVAL) => " (an interface of that name exists and is not a tap device)",
        Some(libc::EPERM) => {
            " (creating a tap needs CAP_NET_ADMIN, or a persistent tap made for this user with `ip tuntap add NAME mode tap user USER`)"
        }
        _ => "",
    }
}

/// What a tap back-end has counted since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames written to the tap.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames the host side would not take now (full queue, interface down); dropped.
    pub tx_dropped: u64,
    /// Frames refused for their length before reaching the host side.
    pub tx_bad_length: u64,
    /// Frames whose write failed otherwise.
    pub tx_errors: u64,
    /// Frames read from the tap and taken by the NIC.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames read from the tap that the NIC refused (or that arrived with no NIC attached); dropped.
    pub rx_dropped: u64,
    /// Frames read from the tap that are shorter than an Ethernet header or longer than [`MAX_FRAME`].
    pub rx_bad_length: u64,
}

#[derive(Default)]
struct Counters {
    tx_frames: AtomicU64,
    tx_bytes: AtomicU64,
    tx_dropped: AtomicU64,
    tx_bad_length: AtomicU64,
    tx_errors: AtomicU64,
    rx_frames: AtomicU64,
    rx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    rx_bad_length: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// What the vCPU side and the event side share.
struct Shared {
    name: String,
    tap: File,
    control: Option<InterfaceControl>,
    wake: EventFd,
    receiver: Mutex<Option<Weak<dyn NetReceiver>>>,
    /// The NIC has room again: the event side should resume reading.
    rx_resume: AtomicBool,
    /// The link state last set or seen, for when the kernel cannot be asked.
    link_cache: AtomicBool,
    counters: Counters,
}

impl Shared {
    fn receiver(&self) -> Option<Arc<dyn NetReceiver>> {
        self.receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade)
    }

    fn kick(&self) {
        if let Err(e) = self.wake.write(1) {
            crate::rate_limited!(
                log::Level::Warn,
                "tap {}: cannot wake the event loop: {e}",
                self.name
            );
        }
    }
}

/// The NIC-facing half of a tap device. Cheap to share (`Arc`); the tap goes away when both halves are gone.
pub struct TapBackend {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TapBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapBackend")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl TapBackend {
    /// Opens (creating if needed) the tap interface `name` in the calling thread's network namespace. The
    /// interface starts down and on no bridge; see [`TapBackend::set_link`] and
    /// [`TapBackend::add_to_bridge`]. Add the returned subscriber to the machine's `EventManager`.
    pub fn open(name: &str) -> Result<(Arc<TapBackend>, TapSubscriber), TapError> {
        if !valid_ifname(name) {
            return Err(TapError::BadName(name.to_string()));
        }
        let tap = sys::open_tun().map_err(|source| TapError::OpenTun {
            name: name.to_string(),
            source,
        })?;
        sys::make_tap(&tap, name).map_err(|source| TapError::Create {
            name: name.to_string(),
            source,
        })?;
        let control = InterfaceControl::new().map_err(|source| TapError::Control {
            name: name.to_string(),
            what: "creating the control socket",
            source,
        })?;
        let backend = Self::from_parts(name, tap, Some(control))?;
        let subscriber = backend.subscriber();
        // A persistent tap may have been up already.
        backend.link_up();
        Ok((backend, subscriber))
    }

    fn from_parts(
        name: &str,
        tap: File,
        control: Option<InterfaceControl>,
    ) -> Result<Arc<TapBackend>, TapError> {
        let wake = EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(|source| {
            TapError::EventFd {
                name: name.to_string(),
                source,
            }
        })?;
        Ok(Arc::new(TapBackend {
            shared: Arc::new(Shared {
                name: name.to_string(),
                tap,
                control,
                wake,
                receiver: Mutex::new(None),
                rx_resume: AtomicBool::new(false),
                link_cache: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        }))
    }

    fn subscriber(&self) -> TapSubscriber {
        TapSubscriber {
            shared: self.shared.clone(),
            reading: true,
            detached: false,
            registered: Vec::new(),
            buf: vec![0; READ_BUFFER],
        }
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    fn control(&self, what: &'static str) -> Result<&InterfaceControl, TapError> {
        self.shared
            .control
            .as_ref()
            .ok_or_else(|| TapError::Control {
                name: self.shared.name.clone(),
                what,
                source: io::Error::from_raw_os_error(libc::ENOTSUP),
            })
    }

    /// Brings the interface up or down (`IFF_UP`), as `ip link set NAME up|down` does. While it is down the
    /// host neither delivers frames to it nor takes frames from it.
    pub fn set_link(&self, up: bool) -> Result<(), TapError> {
        let what = if up {
            "bringing the link up"
        } else {
            "taking the link down"
        };
        self.control(what)?
            .set_up(&self.shared.name, up)
            .map_err(|source| TapError::Control {
                name: self.shared.name.clone(),
                what,
                source,
            })?;
        self.shared.link_cache.store(up, Ordering::Relaxed);
        Ok(())
    }

    /// Adds the interface to the bridge `bridge`, in the namespace the tap was opened in. The raw OS error
    /// lets the caller explain it: `ENODEV` when there is no interface `bridge`, `EOPNOTSUPP`/`EINVAL` when
    /// it is not a bridge.
    pub fn add_to_bridge(&self, bridge: &str) -> io::Result<()> {
        let control = self
            .shared
            .control
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTSUP))?;
        control.add_to_bridge(bridge, &self.shared.name)
    }

    /// Whether an interface called `name` exists in the namespace the tap was opened in.
    pub fn interface_exists(&self, name: &str) -> io::Result<bool> {
        let control = self
            .shared
            .control
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTSUP))?;
        match control.index(name) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> TapStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TapStats {
            tx_frames: get(&c.tx_frames),
            tx_bytes: get(&c.tx_bytes),
            tx_dropped: get(&c.tx_dropped),
            tx_bad_length: get(&c.tx_bad_length),
            tx_errors: get(&c.tx_errors),
            rx_frames: get(&c.rx_frames),
            rx_bytes: get(&c.rx_bytes),
            rx_dropped: get(&c.rx_dropped),
            rx_bad_length: get(&c.rx_bad_length),
        }
    }
}

impl NetBackend for TapBackend {
    fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        let shared = &self.shared;
        let c = &shared.counters;
        if !(ETH_HLEN..=MAX_FRAME).contains(&frame.len()) {
            bump(&c.tx_bad_length, 1);
            return Err(NetError::BadLength(frame.len()));
        }
        loop {
            return match (&shared.tap).write(frame) {
                Ok(_) => {
                    bump(&c.tx_frames, 1);
                    bump(&c.tx_bytes, frame.len() as u64);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EIO)) =>
                {
                    // EIO is the tun driver's answer while the interface is down: no carrier, so the frame
                    // is lost as on an unplugged cable.
                    bump(&c.tx_dropped, 1);
                    Err(NetError::WouldBlock)
                }
                Err(e) => {
                    bump(&c.tx_errors, 1);
                    crate::rate_limited!(
                        log::Level::Warn,
                        "tap {}: transmit failed: {e}",
                        shared.name
                    );
                    Err(NetError::Io(e))
                }
            };
        }
    }

    fn link_up(&self) -> bool {
        let shared = &self.shared;
        match shared.control.as_ref().map(|c| c.flags(&shared.name)) {
            Some(Ok(flags)) => {
                let up = flags & libc::IFF_UP != 0;
                shared.link_cache.store(up, Ordering::Relaxed);
                up
            }
            // The interface was deleted on the host: the cable is cut for good.
            Some(Err(e)) if e.raw_os_error() == Some(libc::ENODEV) => {
                shared.link_cache.store(false, Ordering::Relaxed);
                false
            }
            _ => shared.link_cache.load(Ordering::Relaxed),
        }
    }

    fn rx_ready(&self) {
        self.shared.rx_resume.store(true, Ordering::SeqCst);
        self.shared.kick();
    }

    fn attach(&self, receiver: Weak<dyn NetReceiver>) {
        *self
            .shared
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(receiver);
        // Frames may be waiting already; let the loop look.
        self.rx_ready();
    }
}

/// The event-loop half of a tap device; add it to the machine's `EventManager`.
pub struct TapSubscriber {
    shared: Arc<Shared>,
    /// Polling the tap for frames (the NIC had room when last asked).
    reading: bool,
    /// The tap was detached from its interface (deleted on the host); it is no longer polled.
    detached: bool,
    /// The interest currently registered with epoll, per descriptor.
    registered: Vec<(RawFd, EventSet)>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for TapSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapSubscriber")
            .field("name", &self.shared.name)
            .field("reading", &self.reading)
            .field("detached", &self.detached)
            .finish_non_exhaustive()
    }
}

impl TapSubscriber {
    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Reads up to [`RX_BATCH`] frames and offers them to the NIC.
    fn read_frames(&mut self) {
        let shared = &self.shared;
        let c = &shared.counters;
        let receiver = shared.receiver();
        for _ in 0..RX_BATCH {
            if let Some(r) = &receiver {
                if !r.can_receive() {
                    // The NIC remembers that it refused and calls rx_ready when it has room.
                    self.reading = false;
                    return;
                }
            }
            let n = match (&shared.tap).read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // EBADFD: the interface was deleted under us. Nothing more will come; stop polling
                    // rather than spin on a descriptor that stays in error.
                    log::warn!(
                        "tap {}: receive failed: {e}; no longer reading",
                        shared.name
                    );
                    self.detached = true;
                    return;
                }
            };
            let frame = &self.buf[..n];
            if !(ETH_HLEN..=MAX_FRAME).contains(&n) {
                bump(&c.rx_bad_length, 1);
                crate::rate_limited!(
                    log::Level::Debug,
                    "tap {}: dropped a received frame of {n} bytes",
                    shared.name
                );
            } else if receiver.as_ref().is_some_and(|r| r.receive(frame)) {
                bump(&c.rx_frames, 1);
                bump(&c.rx_bytes, n as u64);
            } else {
                bump(&c.rx_dropped, 1);
            }
        }
    }

    /// The interest each descriptor should have now.
    fn wanted(&self) -> Vec<(RawFd, EventSet)> {
        let mut want = vec![(self.shared.wake.as_raw_fd(), EventSet::IN)];
        if self.reading && !self.detached {
            want.push((self.shared.tap.as_raw_fd(), EventSet::IN));
        }
        want
    }

    /// Brings the epoll registrations in line with [`TapSubscriber::wanted`].
    fn update_interest(&mut self, ops: &mut EventOps) {
        let want = self.wanted();
        let mut kept = Vec::with_capacity(want.len());
        for &(fd, set) in &self.registered {
            if want.iter().any(|&(f, s)| f == fd && s == set) {
                kept.push((fd, set));
            } else if let Err(e) = ops.remove(Events::empty_raw(fd)) {
                log::warn!("tap {}: epoll remove: {e}", self.shared.name);
            }
        }
        for &(fd, set) in &want {
            if !kept.iter().any(|&(f, _)| f == fd) {
                match ops.add(Events::new_raw(fd, set)) {
                    Ok(()) => kept.push((fd, set)),
                    Err(e) => log::warn!("tap {}: epoll add: {e}", self.shared.name),
                }
            }
        }
        self.registered = kept;
    }
}

impl MutEventSubscriber for TapSubscriber {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let fd = events.fd();
        if fd == self.shared.wake.as_raw_fd() {
            let _ = self.shared.wake.read();
            if self.shared.rx_resume.swap(false, Ordering::SeqCst) {
                self.reading = true;
            }
        } else if fd == self.shared.tap.as_raw_fd() {
            let set = events.event_set();
            if set.contains(EventSet::IN) && self.reading {
                self.read_frames();
            } else if set.intersects(EventSet::ERROR | EventSet::HANG_UP) {
                log::warn!(
                    "tap {}: the interface went away; no longer reading",
                    self.shared.name
                );
                self.detached = true;
            }
        }
        self.update_interest(ops);
    }

    fn init(&mut self, ops: &mut EventOps) {
        self.update_interest(ops);
    }
}
