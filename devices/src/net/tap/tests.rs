//! Tap back-end tests. Everything runs in a private network namespace (see `net::testing::netns`), with the
//! kernel of that namespace, a bridge and a real `dnsmasq` as the peers.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};

use super::*;
use crate::net::testing::client::{BackendDriver, TestHost};
use crate::net::testing::netns::{self, ip, DHCP_FIRST, DHCP_LAST, LAB_ADDRESS};
use crate::net::testing::{packets, FrameQueue};

const TIMEOUT: Duration = Duration::from_secs(20);

/// An event loop on its own thread, stopped and joined on drop.
struct LoopThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl LoopThread {
    fn start(subscriber: TapSubscriber) -> LoopThread {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut manager: EventManager<Box<dyn MutEventSubscriber + Send>> =
                EventManager::new().unwrap();
            manager.add_subscriber(Box::new(subscriber));
            while !flag.load(Ordering::SeqCst) {
                manager.run_with_timeout(20).unwrap();
            }
        });
        LoopThread {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for LoopThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn mac_of(interface: &str) -> packets::Mac {
    let out = ip(&["-o", "link", "show", interface]);
    let text = out.split("link/ether ").nth(1).unwrap();
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(text[..17].split(':')) {
        *b = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A tap, up, with `10.9.0.1/24` on it, so that the namespace's kernel sends frames into it.
fn addressed_tap(name: &str) -> (Arc<TapBackend>, TapSubscriber, UdpSocket) {
    let (tap, sub) = TapBackend::open(name).unwrap();
    ip(&["addr", "add", "10.9.0.1/24", "dev", name]);
    tap.set_link(true).unwrap();
    let socket = UdpSocket::bind("10.9.0.1:0").unwrap();
    socket.set_broadcast(true).unwrap();
    (tap, sub, socket)
}

/// The kernel sends `count` UDP broadcasts out of the tap (no ARP needed), each carrying `tag` and its index.
fn kernel_broadcasts(socket: &UdpSocket, tag: &str, count: usize) {
    for i in 0..count {
        socket
            .send_to(format!("{tag} {i}").as_bytes(), "10.9.0.255:9")
            .unwrap();
    }
}

/// How many of `frames` are the kernel broadcasts tagged `tag`.
fn tagged(frames: &[Vec<u8>], tag: &str) -> usize {
    frames
        .iter()
        .filter(|f| {
            packets::parse_ethernet(f)
                .and_then(|e| packets::parse_ipv4(e.payload).map(|p| p.payload.to_vec()))
                .is_some_and(|udp| udp.windows(tag.len()).any(|w| w == tag.as_bytes()))
        })
        .count()
}

#[test]
fn dhcp_arp_ping_and_udp_with_dnsmasq_and_the_kernel_through_a_bridged_tap() {
    netns::with_lab(|lab| {
        let (tap, sub) = TapBackend::open("tap7.0").unwrap();
        tap.add_to_bridge(lab.bridge()).unwrap();
        tap.set_link(true).unwrap();
        assert!(ip(&["-o", "link", "show", "tap7.0"]).contains("master xenbr0"));
        let _loop = LoopThread::start(sub);
        let mut driver = BackendDriver::new(tap.clone());
        let mac = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];
        let mut host = TestHost::new(mac);

        let lease = host
            .dhcp(&mut driver, TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}; dnsmasq says:\n{}", lab.log()));
        let leased = u32::from(lease.ip);
        assert!(
            (u32::from(DHCP_FIRST)..=u32::from(DHCP_LAST)).contains(&leased),
            "{lease:?}"
        );
        assert_eq!(lease.server, LAB_ADDRESS);
        assert_eq!(lease.server_mac, mac_of("xenbr0"));
        assert_eq!(lease.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(lease.router, Some(LAB_ADDRESS));
        assert_eq!(lease.lease_time, Some(3600));
        let leases = lab.leases();
        assert!(
            leases.contains(&format!("00:16:3e:12:34:56 {}", lease.ip)),
            "{leases}"
        );

        // ARP for the bridge, then ICMP echo to the namespace's kernel.
        let bridge_mac = host.arp(&mut driver, LAB_ADDRESS, TIMEOUT).unwrap();
        assert_eq!(bridge_mac, mac_of("xenbr0"));
        let rtt = host
            .ping(&mut driver, LAB_ADDRESS, b"0123456789abcdef", TIMEOUT)
            .unwrap();
        assert!(rtt < TIMEOUT);

        // The kernel, having forgotten us, must ARP for the leased address before it can send to it; the
        // host answers and the datagram arrives.
        ip(&["neigh", "flush", "dev", "xenbr0"]);
        let socket = UdpSocket::bind((LAB_ADDRESS, 0)).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        let before = host.stats.arp_answered;
        socket.send_to(b"hello guest", (lease.ip, 4000)).unwrap();
        let (from, payload) = host.receive_udp(&mut driver, 4000, TIMEOUT).unwrap();
        assert_eq!(payload, b"hello guest");
        assert_eq!(from, (LAB_ADDRESS, socket.local_addr().unwrap().port()));
        assert!(host.stats.arp_answered > before, "{:?}", host.stats);
        let neigh = ip(&["neigh", "show", &lease.ip.to_string()]);
        assert!(neigh.contains("00:16:3e:12:34:56"), "{neigh}");

        // And back: a datagram from the guest side reaches the kernel's socket.
        host.send_udp(&mut driver, 4001, from, b"hello host", TIMEOUT)
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, src) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello host");
        assert_eq!(src, (lease.ip, 4001).into());

        let stats = tap.stats();
        assert!(stats.tx_frames >= 5 && stats.rx_frames >= 4, "{stats:?}");
        assert_eq!(
            (stats.tx_dropped, stats.tx_errors, stats.rx_dropped),
            (0, 0, 0)
        );
    });
}

#[test]
fn a_missing_bridge_is_enodev_and_a_non_bridge_is_refused() {
    netns::run_isolated(|| {
        let (tap, _sub) = TapBackend::open("tap1.0").unwrap();
        assert!(!tap.interface_exists("xenbr0").unwrap());
        assert!(tap.interface_exists("lo").unwrap());
        let e = tap.add_to_bridge("xenbr0").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        let e = tap.add_to_bridge("lo").unwrap_err();
        assert!(
            matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOTTY)
            ),
            "{e}"
        );
        ip(&["link", "add", "br9", "type", "bridge"]);
        tap.add_to_bridge("br9").unwrap();
        assert!(ip(&["-o", "link", "show", "tap1.0"]).contains("master br9"));
    });
}

#[test]
fn names_are_checked_and_a_busy_tap_is_explained() {
    for bad in ["", "a/b", "sixteen-chars-xx", "has space", "a:b"] {
        assert!(
            matches!(TapBackend::open(bad), Err(TapError::BadName(_))),
            "{bad:?}"
        );
    }
    netns::run_isolated(|| {
        let (_tap, _sub) = TapBackend::open("tap3.1").unwrap();
        let e = TapBackend::open("tap3.1").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("tap3.1") && text.contains("already in use"),
            "{text}"
        );
        ip(&["link", "add", "dummyish", "type", "bridge"]);
        let text = TapBackend::open("dummyish").unwrap_err().to_string();
        assert!(text.contains("not a tap device"), "{text}");
    });
}

#[test]
fn link_down_and_up_follow_iff_up_and_a_down_link_drops_without_blocking() {
    netns::run_isolated(|| {
        let (tap, _sub) = TapBackend::open("tap2.0").unwrap();
        let frame = packets::arp_request(
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(10, 9, 0, 2),
            Ipv4Addr::new(10, 9, 0, 1),
        );
        assert!(!tap.link_up(), "a new tap starts down");
        let start = Instant::now();
        assert!(matches!(tap.send(&frame), Err(NetError::WouldBlock)));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(tap.stats().tx_dropped, 1);

        tap.set_link(true).unwrap();
        assert!(tap.link_up());
        assert!(ip(&["-o", "link", "show", "tap2.0"]).contains(",UP"));
        tap.send(&frame).unwrap();
        assert_eq!(
            (tap.stats().tx_frames, tap.stats().tx_bytes),
            (1, frame.len() as u64)
        );

        tap.set_link(false).unwrap();
        assert!(!tap.link_up());
        assert!(!ip(&["-o", "link", "show", "tap2.0"]).contains(",UP"));
        assert!(matches!(tap.send(&frame), Err(NetError::WouldBlock)));
        assert_eq!(tap.stats().tx_dropped, 2);

        // What an administrator does on the host shows too.
        ip(&["link", "set", "tap2.0", "up"]);
        assert!(tap.link_up());

        // Lengths are checked before anything reaches the kernel.
        assert!(matches!(
            tap.send(&frame[..13]),
            Err(NetError::BadLength(13))
        ));
        assert!(matches!(
            tap.send(&[0u8; MAX_FRAME + 1]),
            Err(NetError::BadLength(_))
        ));
        assert_eq!(tap.stats().tx_bad_length, 2);
        assert_eq!(tap.stats().tx_frames, 1);
    });
}

#[test]
fn a_full_host_queue_is_would_block_counted_and_never_waits() {
    // The tun driver takes every frame a write offers (it hands it to the stack or drops it itself), so
    // EAGAIN cannot be provoked through a real tap; a non-blocking SEQPACKET socket whose peer's buffer is
    // full returns EAGAIN from the same write(2) path.
    let mut fds = [0; 2];
    // SAFETY: socketpair(2) writes two descriptors into `fds`, which has room for them.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: both descriptors are fresh and owned by nothing else.
    let (ours, _peer) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    let backend = TapBackend::from_parts("fake0", ours, None).unwrap();
    let frame = [0x5au8; 1514];
    let start = Instant::now();
    let mut sent = 0u64;
    let mut blocked = 0u64;
    for _ in 0..100_000 {
        match backend.send(&frame) {
            Ok(()) => sent += 1,
            Err(NetError::WouldBlock) => {
                blocked += 1;
                if blocked == 3 {
                    break;
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent > 0 && blocked == 3, "sent {sent}, blocked {blocked}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let stats = backend.stats();
    assert_eq!((stats.tx_frames, stats.tx_dropped), (sent, 3));
    // Without a control socket the link state is the last one set (never set: down).
    assert!(!backend.link_up());
}

#[test]
fn refused_frames_are_dropped_and_counted() {
    netns::run_isolated(|| {
        let (tap, sub, socket) = addressed_tap("tap4.0");
        let _loop = LoopThread::start(sub);
        let queue = FrameQueue::new();
        let weak: Weak<FrameQueue> = Arc::downgrade(&queue);
        tap.attach(weak);
        queue.set_refuse(true);
        kernel_broadcasts(&socket, "refused", 5);
        wait_until("five refused frames", || tap.stats().rx_dropped >= 5);
        assert!(queue.is_empty());
        assert_eq!(tap.stats().rx_frames, 0);
        assert_eq!(queue.offered(), tap.stats().rx_dropped);

        queue.set_refuse(false);
        kernel_broadcasts(&socket, "taken", 3);
        let mut frames = Vec::new();
        wait_until("three taken frames", || {
            frames.extend(queue.take_all());
            tagged(&frames, "taken") == 3
        });
        assert_eq!(tagged(&frames, "refused"), 0);
        let stats = tap.stats();
        assert_eq!(stats.rx_frames as usize, frames.len());
        assert!(stats.rx_bytes >= 3 * 42);
    });
}

#[test]
fn polling_stops_while_the_nic_is_full_and_resumes_on_rx_ready_in_bounded_batches() {
    netns::run_isolated(|| {
        let (tap, sub, socket) = addressed_tap("tap5.0");
        let mut manager: EventManager<Box<dyn MutEventSubscriber + Send>> =
            EventManager::new().unwrap();
        manager.add_subscriber(Box::new(sub));
        let queue = FrameQueue::new();
        queue.set_full(true);
        let weak: Weak<FrameQueue> = Arc::downgrade(&queue);
        tap.attach(weak);

        kernel_broadcasts(&socket, "held", RX_BATCH + 8);
        // The attach wake-up and the readable tap: the subscriber asks the NIC, hears "full", and drops its
        // interest in the tap.
        for _ in 0..3 {
            manager.run_with_timeout(50).unwrap();
        }
        assert_eq!(queue.offered(), 0);
        // Frames are waiting in the kernel, yet the loop sees no event: it is not polling the tap, so a
        // full NIC costs no CPU.
        let start = Instant::now();
        assert_eq!(manager.run_with_timeout(200).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert_eq!(tap.stats().rx_frames + tap.stats().rx_dropped, 0);

        // Room again: rx_ready wakes the loop, which reads one bounded batch per wake-up.
        queue.set_full(false);
        tap.rx_ready();
        let mut batches = Vec::new();
        while batches.iter().sum::<usize>() < RX_BATCH + 8 {
            let events = manager.run_with_timeout(1000).unwrap();
            assert!(events > 0, "no event with frames waiting");
            let got = queue.len() - batches.iter().sum::<usize>();
            assert!(got <= RX_BATCH, "{got} frames in one wake-up");
            batches.push(got);
            assert!(batches.len() < 10);
        }
        assert!(batches.contains(&RX_BATCH), "{batches:?}");
        let frames = queue.take_all();
        assert_eq!(tagged(&frames, "held"), RX_BATCH + 8);
        assert_eq!(tap.stats().rx_dropped, 0);

        // Full again in the middle of a burst: reading stops at once, nothing is dropped.
        queue.set_full(true);
        kernel_broadcasts(&socket, "later", 4);
        for _ in 0..3 {
            manager.run_with_timeout(50).unwrap();
        }
        assert!(queue.is_empty());
        queue.set_full(false);
        tap.rx_ready();
        for _ in 0..3 {
            manager.run_with_timeout(50).unwrap();
        }
        assert_eq!(tagged(&queue.take_all(), "later"), 4);
        assert_eq!(tap.stats().rx_dropped, 0);
    });
}

#[test]
fn frames_from_a_deleted_interface_stop_without_spinning() {
    netns::run_isolated(|| {
        let (tap, sub, _socket) = addressed_tap("tap6.0");
        let mut manager: EventManager<Box<dyn MutEventSubscriber + Send>> =
            EventManager::new().unwrap();
        manager.add_subscriber(Box::new(sub));
        let queue = FrameQueue::new();
        let weak: Weak<FrameQueue> = Arc::downgrade(&queue);
        tap.attach(weak);
        manager.run_with_timeout(50).unwrap();
        ip(&["link", "del", "tap6.0"]);
        // The descriptor reports an error once; after that the loop is quiet.
        for _ in 0..3 {
            manager.run_with_timeout(50).unwrap();
        }
        let start = Instant::now();
        let mut events = 0;
        while start.elapsed() < Duration::from_millis(200) {
            events += manager.run_with_timeout(50).unwrap();
        }
        assert_eq!(events, 0);
        assert!(!tap.link_up());
    });
}

#[test]
fn two_taps_on_one_bridge_lease_and_ping_each_other() {
    netns::with_lab(|lab| {
        let (a, sub_a) = TapBackend::open("tap8.0").unwrap();
        let (b, sub_b) = TapBackend::open("tap9.0").unwrap();
        for tap in [&a, &b] {
            tap.add_to_bridge(lab.bridge()).unwrap();
            tap.set_link(true).unwrap();
        }
        let _loop_a = LoopThread::start(sub_a);
        let _loop_b = LoopThread::start(sub_b);
        let (tx, rx) = std::sync::mpsc::channel();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut driver = BackendDriver::new(b.clone());
                let mut host = TestHost::new([0x00, 0x16, 0x3e, 0x00, 0x00, 0x0b]);
                let lease = host.dhcp(&mut driver, TIMEOUT).unwrap();
                tx.send(lease.ip).unwrap();
                // Answer ARP and pings until the other side is done (or has given up).
                let until = Instant::now() + 3 * TIMEOUT;
                while !done.load(Ordering::SeqCst) && Instant::now() < until {
                    host.serve(&mut driver, Duration::from_millis(20));
                }
                assert!(host.stats.echo_answered >= 3, "{:?}", host.stats);
            });
            let mut driver = BackendDriver::new(a.clone());
            let mut host = TestHost::new([0x00, 0x16, 0x3e, 0x00, 0x00, 0x0a]);
            let lease = host.dhcp(&mut driver, TIMEOUT).unwrap();
            let peer = rx.recv_timeout(TIMEOUT).unwrap();
            assert_ne!(lease.ip, peer);
            for i in 0..3u8 {
                host.ping(&mut driver, peer, &[i; 100], TIMEOUT).unwrap();
            }
            assert_eq!(
                host.neighbour(peer),
                Some([0x00, 0x16, 0x3e, 0x00, 0x00, 0x0b])
            );
            done.store(true, Ordering::SeqCst);
        });
    });
}
