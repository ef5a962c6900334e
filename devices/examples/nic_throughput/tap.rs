//! The real tap back-end, end to end, inside a private network namespace (the caller runs these functions
//! on the thread [`devices::net::testing::netns::run_isolated`] moved into a fresh namespace; the host's
//! own network is never touched).
//!
//! The peer is an `AF_PACKET` socket bound to the tap interface:
//!
//! - **Transmit**: NIC → [`TapBackend::send`] (`write(2)` on the tap) → the namespace's kernel receives the
//!   frame on the interface → the packet socket, drained with `recv(2)` every [`DRAIN_EVERY`] frames and
//!   checked (count, length, EtherType; the first frame byte for byte).
//! - **Receive**: the packet socket `send(2)`s a burst out of the interface → the tun driver queues it for
//!   the tap → the machine's event loop (rust-vmm `EventManager`, as the device model runs it) wakes the
//!   [`devices::net::tap::TapSubscriber`], which `read(2)`s each frame and offers it to the NIC → the
//!   simulated driver's interrupt handler consumes the ring.
//!
//! Everything runs on one thread, so the peer's own system calls are on the same CPU clock: they are timed
//! separately (thread CPU time around each peer phase) and reported apart from the device side's CPU time.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use devices::net::tap::TapBackend;
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};

use crate::common::{frame, thread_cpu, ETHERTYPE, NIC_MAC, PEER_MAC};
use crate::{open_guest, Model, Sample};

/// The taps' names inside the namespace: this and a number. Each run has its own tap, because the test
/// bed's chipset is a cycle of `Arc`s that is never freed (harmless for one machine per process), so the
/// NIC and the tap it holds live until the process ends.
const TAP_PREFIX: &str = "nicbench";
/// Transmitted frames between two drains of the peer socket (well within its receive buffer).
const DRAIN_EVERY: u64 = 32;
/// How long the peer waits for a frame that should be on its way before declaring it lost.
const LOST_AFTER: Duration = Duration::from_secs(5);
/// `PACKET_IGNORE_OUTGOING` (Linux 4.20): the socket does not see frames the kernel sends out.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// Turns IPv6 off in the namespace, so that the kernel sends no router solicitations or MLD reports into
/// the tap (they would be frames the benchmark did not send). Best effort: without IPv6 nothing is sent.
pub fn quiet_namespace() {
    for which in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{which}/disable_ipv6"), "1");
    }
}

/// An `AF_PACKET` socket bound to one interface, seeing every EtherType.
struct PacketSocket {
    fd: OwnedFd,
}

fn check(ret: libc::c_int, what: &str) -> io::Result<()> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn set_int_option(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
    what: &str,
) -> io::Result<()> {
    // SAFETY: setsockopt(2) reads one c_int of the given size from `value`, which outlives the call.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(ret, what)
}

impl PacketSocket {
    fn bind(interface: &str) -> io::Result<PacketSocket> {
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: socket(2) with constant arguments; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(protocol),
            )
        };
        check(raw, "socket(AF_PACKET)")?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let name = std::ffi::CString::new(interface)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name"))?;
        // SAFETY: if_nametoindex(3) reads the NUL-terminated name, which `name` is.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: all-zero bytes are a valid sockaddr_ll (plain integers and a byte array).
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = index as libc::c_int;
        // SAFETY: bind(2) reads a sockaddr_ll of the given size from `addr`, which outlives the call.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check(ret, "bind(AF_PACKET)")?;
        // Room for every frame between two drains, whatever their size (root may exceed rmem_max).
        set_int_option(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            8 << 20,
            "SO_RCVBUFFORCE",
        )?;
        set_int_option(
            &fd,
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            1,
            "PACKET_IGNORE_OUTGOING",
        )?;
        Ok(PacketSocket { fd })
    }

    /// Sends one frame out of the interface, retrying while the socket's buffer is full.
    fn send(&self, frame: &[u8]) {
        let deadline = Instant::now() + LOST_AFTER;
        loop {
            // SAFETY: send(2) reads `frame.len()` bytes from `frame`, which outlives the call.
            let n =
                unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            if n >= 0 {
                assert_eq!(n as usize, frame.len(), "short send on the packet socket");
                return;
            }
            let e = io::Error::last_os_error();
            let retry = e.kind() == io::ErrorKind::WouldBlock
                || e.kind() == io::ErrorKind::Interrupted
                || e.raw_os_error() == Some(libc::ENOBUFS);
            assert!(
                retry && Instant::now() < deadline,
                "packet socket send: {e}"
            );
        }
    }

    /// One frame if one is queued.
    fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        loop {
            // SAFETY: recv(2) writes at most `buf.len()` bytes into `buf`, which outlives the call.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n >= 0 {
                return Some(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return None,
                io::ErrorKind::Interrupted => continue,
                _ => panic!("packet socket recv: {e}"),
            }
        }
    }

    /// Frames the socket dropped for want of buffer space since the last call.
    fn drops(&self) -> u32 {
        let mut stats = [0u32; 2];
        let mut len = std::mem::size_of_val(&stats) as libc::socklen_t;
        // SAFETY: getsockopt(2) writes at most `len` bytes (a tpacket_stats: two u32) into `stats`.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                stats.as_mut_ptr().cast(),
                &mut len,
            )
        };
        assert_eq!(ret, 0, "PACKET_STATISTICS: {}", io::Error::last_os_error());
        stats[1]
    }
}

/// A new tap, up, and a peer socket on it.
fn open_tap() -> (
    Arc<TapBackend>,
    devices::net::tap::TapSubscriber,
    PacketSocket,
) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("{TAP_PREFIX}{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let (tap, sub) = TapBackend::open(&name).unwrap_or_else(|e| panic!("{e}"));
    tap.set_link(true).unwrap_or_else(|e| panic!("{e}"));
    let peer = PacketSocket::bind(&name).unwrap_or_else(|e| panic!("peer socket on {name}: {e}"));
    (tap, sub, peer)
}

/// NIC transmit through the tap to the peer socket: `warmup` untimed frames (the first checked byte for
/// byte at the peer), then `frames` timed.
pub fn tx(model: Model, len: usize, frames: u64, warmup: u64) -> Sample {
    let (tap, _sub, peer) = open_tap();
    let mut guest = open_guest(model, tap.clone());
    let f = frame(PEER_MAC, NIC_MAC, len);
    guest.prepare_tx(&f);
    let mut expect = f.clone();
    expect.resize(len.max(60), 0);
    let mut buf = vec![0u8; 4096];

    // The peer drains what was sent; returns how many benchmark frames it found.
    let mut drain = |want: u64, check_first: bool| {
        let deadline = Instant::now() + LOST_AFTER;
        let mut got = 0;
        while got < want {
            match peer.recv(&mut buf) {
                Some(n) => {
                    let ours = n == expect.len() && buf[12..14] == ETHERTYPE.to_be_bytes();
                    if ours {
                        if check_first && got == 0 {
                            assert_eq!(&buf[..n], &expect[..], "frame at the peer");
                        }
                        got += 1;
                    }
                }
                None => assert!(
                    Instant::now() < deadline,
                    "the peer received {got} of {want} frames"
                ),
            }
        }
    };

    let mut done = 0;
    while done < warmup {
        let n = DRAIN_EVERY.min(warmup - done);
        for _ in 0..n {
            guest.transmit(&f);
        }
        drain(n, done == 0);
        done += n;
    }
    let mut peer_cpu = Duration::ZERO;
    let wall0 = Instant::now();
    let cpu0 = thread_cpu();
    let mut sent = 0;
    while sent < frames {
        let n = DRAIN_EVERY.min(frames - sent);
        for _ in 0..n {
            guest.transmit(&f);
        }
        let p0 = thread_cpu();
        drain(n, false);
        peer_cpu += thread_cpu() - p0;
        sent += n;
    }
    let cpu = thread_cpu() - cpu0;
    let wall = wall0.elapsed();

    let stats = tap.stats();
    assert_eq!(
        stats.tx_frames,
        warmup + frames,
        "frames written to the tap"
    );
    assert_eq!(stats.tx_dropped + stats.tx_errors, 0, "tap transmit losses");
    assert_eq!(
        guest.device_counts().1,
        warmup + frames,
        "NIC transmit count"
    );
    assert_eq!(peer.drops(), 0, "the peer socket dropped frames");
    Sample {
        wall,
        cpu,
        peer_cpu,
    }
}

/// The peer sends bursts into the tap; the event loop feeds them to the NIC; the driver consumes them.
pub fn rx(model: Model, len: usize, frames: u64, warmup: u64) -> Sample {
    let (tap, sub, peer) = open_tap();
    let mut guest = open_guest(model, tap.clone());
    let mut events: EventManager<Box<dyn MutEventSubscriber + Send>> =
        EventManager::new().unwrap_or_else(|e| panic!("event manager: {e}"));
    events.add_subscriber(Box::new(sub));
    // The attach-time kick.
    events
        .run_with_timeout(0)
        .unwrap_or_else(|e| panic!("event loop: {e}"));
    let f = frame(NIC_MAC, PEER_MAC, len);
    let burst = guest.rx_burst(len) as u64;
    let mut taken = tap.stats().rx_frames;

    // One burst: the peer sends `n` frames, the loop runs until the NIC took them, the driver consumes
    // them. Returns the peer's CPU time.
    let mut one_burst = |n: u64, compare: Option<&[u8]>| -> Duration {
        let p0 = thread_cpu();
        for _ in 0..n {
            peer.send(&f);
        }
        let peer_cpu = thread_cpu() - p0;
        let target = taken + n;
        let mut spins = 0u32;
        let mut deadline = None;
        loop {
            let s = tap.stats();
            assert_eq!(
                s.rx_dropped + s.rx_bad_length,
                0,
                "the tap back-end dropped frames"
            );
            if s.rx_frames >= target {
                break;
            }
            events
                .run_with_timeout(0)
                .unwrap_or_else(|e| panic!("event loop: {e}"));
            spins += 1;
            if spins & 1023 == 0 {
                let d = *deadline.get_or_insert_with(|| Instant::now() + LOST_AFTER);
                assert!(
                    Instant::now() < d,
                    "the NIC took {} of {n} frames",
                    s.rx_frames - taken
                );
            }
        }
        taken = target;
        let got = guest.service_rx(len, compare) as u64;
        assert_eq!(got, n, "frames the driver found in the ring");
        peer_cpu
    };

    let mut done = 0;
    while done < warmup {
        let n = burst.min(warmup - done);
        one_burst(n, (done == 0).then_some(&f[..]));
        done += n;
    }
    let mut peer_cpu = Duration::ZERO;
    let wall0 = Instant::now();
    let cpu0 = thread_cpu();
    let mut done = 0;
    while done < frames {
        let n = burst.min(frames - done);
        peer_cpu += one_burst(n, None);
        done += n;
    }
    let cpu = thread_cpu() - cpu0;
    let wall = wall0.elapsed();
    assert_eq!(
        guest.device_counts().0,
        warmup + frames,
        "NIC receive count"
    );
    Sample {
        wall,
        cpu,
        peer_cpu,
    }
}
